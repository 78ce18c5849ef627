//! The secret source's rules: `password-not-generated`, `unused-password`,
//! `secret-condition-mismatch`, `secret-source-absent`, `copy-without-source`.

use std::collections::HashSet;

use super::normalized;
use crate::check::facts::{SecretFacts, SecretSourceKind};
use crate::check::{Facts, Finding};
use crate::files::generator::Shape;
use crate::names::name_of_secret_key;
use crate::names::name_of_values_key;

const ROOT_PASSWORD: &str = "root_password";

impl SecretFacts {
    fn how_to_add(&self, key: &str, values_key: &str) -> String {
        match self.kind {
            SecretSourceKind::Generator => match self.generator_shape {
                Some(Shape::ModuleCalls) => format!(
                    "add `set_generated_secret(s, \"postgres\", \"{key}\", secrets.token_hex(32))` beside the other \
                     calls in {}",
                    self.path
                ),
                Some(Shape::DictLiteral) => format!(
                    "add `\"{key}\": secrets.token_hex(32),` to the dict `generate_postgres_secrets()` returns in {}",
                    self.path
                ),
                _ => format!(
                    "add `self._set_generated(\"postgres\", \"{key}\", secrets.token_hex(32))` to `_postgres` in {}",
                    self.path
                ),
            },
            SecretSourceKind::SecretsYaml => format!(
                "add the entry `{key}:` with `if: {values_key}` and `generate: {{type: password}}` to {}",
                self.path
            ),
        }
    }
}

pub(super) fn password_not_generated(facts: &Facts, out: &mut Vec<Finding>) {
    let Some(secrets) = &facts.secrets else {
        return;
    };
    let provided: HashSet<&str> = secrets.keys.iter().map(|k| k.key.as_str()).collect();
    let provided_normalized: HashSet<String> =
        secrets.keys.iter().map(|k| normalized(&k.key)).collect();
    let mut blocks: HashSet<&str> = HashSet::new();
    if let Some(template) = &facts.template {
        for block in &template.blocks {
            blocks.insert(&block.values_key);
            for (key, line) in &block.secret_keys {
                if !provided.contains(key.as_str()) {
                    out.push(Finding::new("password-not-generated", &template.path, *line, key.as_str()).says(
                        format!(
                            "the block for `{}` reads the secret key `{key}`, which {} neither generates nor copies \
                             nor declares; postgres cannot start where `{}` is set",
                            block.values_key, secrets.path, block.values_key
                        ),
                        secrets.how_to_add(key, &block.values_key),
                    ));
                }
            }
        }
    }
    // Entries without a block need the key their name implies.
    let mut reported: HashSet<&str> = HashSet::new();
    for env in &facts.envs {
        for entry in &env.entries {
            if facts.template.is_some() && blocks.contains(entry.key.as_str()) {
                continue;
            }
            let Some(name) = name_of_values_key(&entry.key) else {
                continue;
            };
            let key = format!("{name}_password");
            if provided_normalized.contains(&key) || !reported.insert(&entry.key) {
                continue;
            }
            out.push(Finding::new("password-not-generated", &env.path, entry.line, key.as_str()).says(
                format!(
                    "`{}` needs the secret key `{key}`, which {} neither generates nor copies nor declares",
                    entry.key, secrets.path
                ),
                secrets.how_to_add(&key, &entry.key),
            ));
        }
    }
}

pub(super) fn unused_password(facts: &Facts, out: &mut Vec<Finding>) {
    let (Some(template), Some(secrets)) = (&facts.template, &facts.secrets) else {
        return;
    };
    let read: HashSet<&str> = template.read_keys.iter().map(String::as_str).collect();
    for key in &secrets.keys {
        if key.key == ROOT_PASSWORD
            || name_of_secret_key(&key.key).is_none()
            || read.contains(key.key.as_str())
        {
            continue;
        }
        out.push(Finding::new("unused-password", &secrets.path, key.line, key.key.as_str()).says(
            format!("{} makes `{}`, but no block of {} reads it", secrets.path, key.key, template.path),
            format!(
                "remove it if its database is gone (`{} remove-db {}`), or add the database's block",
                crate::flags::program_name(),
                crate::shell::quote(name_of_secret_key(&key.key).unwrap_or("NAME"))
            ),
        ));
    }
}

pub(super) fn secret_condition_mismatch(facts: &Facts, out: &mut Vec<Finding>) {
    let Some(secrets) = &facts.secrets else {
        return;
    };
    for key in &secrets.keys {
        let (Some((condition, line)), Some(name)) = (&key.condition, name_of_secret_key(&key.key))
        else {
            continue;
        };
        if key.key == ROOT_PASSWORD {
            continue;
        }
        let expected = format!("{}_db", normalized(name));
        if normalized(condition) == expected {
            continue;
        }
        out.push(Finding::new("secret-condition-mismatch", &secrets.path, *line, key.key.as_str()).says(
            format!(
                "`{}` is made only `if: {condition}`, but the database that reads it is `{expected}`: where \
                 `{expected}` is set without `{condition}`, the password is missing and postgres cannot start",
                key.key
            ),
            format!("write `if: {expected}`"),
        ));
    }
}

pub(super) fn secret_source_absent(facts: &Facts, out: &mut Vec<Finding>) {
    let Some(path) = &facts.secret_source_absent else {
        return;
    };
    out.push(
        Finding::new("secret-source-absent", path, 1, path.as_str()).says(
            format!(
                "{path} does not exist: nothing generates the database passwords, which are put into Vault by hand"
            ),
            format!(
                "put each database's password into Vault by hand (`{} runbook NAME` says how), \
                 or add the generator",
                crate::flags::program_name()
            ),
        ),
    );
}

/// Where a key of an application comes from, following `copy:` entries.
enum Origin {
    /// Generated, set by hand, or in an application this repository does not hold.
    Made,
    /// The application's `secrets.yaml` (path) has no such key.
    Missing(String, String),
    /// The copies come back to a key already visited.
    Loop(Vec<(String, String)>),
}

fn origin(facts: &Facts, app: &str, key: &str) -> Origin {
    let mut visited: Vec<(String, String)> = Vec::new();
    let (mut app, mut key) = (app.to_string(), key.to_string());
    loop {
        if visited
            .iter()
            .any(|(a, k)| *a == app && normalized(k) == normalized(&key))
        {
            visited.push((app, key));
            return Origin::Loop(visited);
        }
        visited.push((app.clone(), key.clone()));
        let source = if app == "postgres" {
            facts.secrets.as_ref().map(|s| (&s.path, &s.keys))
        } else {
            facts
                .app_secrets
                .iter()
                .find(|a| a.app == app)
                .map(|a| (&a.path, &a.keys))
        };
        let Some((path, keys)) = source else {
            return Origin::Made;
        };
        let Some(found) = keys.iter().find(|k| k.key == key) else {
            return Origin::Missing(path.clone(), key);
        };
        match &found.copied_from {
            Some((from_app, from_key)) => {
                app = from_app.clone();
                key = from_key.clone();
            }
            None => return Origin::Made,
        }
    }
}

fn chain(visited: &[(String, String)]) -> String {
    visited
        .iter()
        .map(|(a, k)| format!("{a}/{k}"))
        .collect::<Vec<_>>()
        .join(" <- ")
}

/// `copy-without-source`: a copy of a postgres password that nothing makes.
pub(super) fn copy_without_source(facts: &Facts, out: &mut Vec<Finding>) {
    let Some(secrets) = &facts.secrets else {
        return;
    };
    // Copies into other components of a key postgres does not have at all.
    for copy in &facts.copies {
        if secrets.keys.iter().any(|k| k.key == copy.key) {
            continue;
        }
        out.push(
            Finding::new("copy-without-source", &copy.path, copy.line, copy.key.as_str()).says(
                format!(
                    "{} copies the postgres password `{}`, which {} neither generates nor copies nor declares: \
                     the copy has no source{}",
                    copy.consumer,
                    copy.key,
                    secrets.path,
                    if secrets.kind == SecretSourceKind::Generator {
                        " and the generator fails with KeyError"
                    } else {
                        ""
                    }
                ),
                format!(
                    "remove the copy in {}, or give postgres the key (`{} add-db {}`)",
                    copy.path,
                    crate::flags::program_name(),
                    crate::shell::quote(
                        &name_of_secret_key(&copy.key).map_or("NAME".to_string(), |n| n.replace('-', "_"))
                    )
                ),
            ),
        );
    }
    // Postgres' own `copy:` entries, followed to what makes them.
    for key in &secrets.keys {
        let Some((app, from_key)) = &key.copied_from else {
            continue;
        };
        let problem = match origin(facts, app, from_key) {
            Origin::Made => continue,
            Origin::Missing(path, k) => format!(
                "`{}` is copied from {app}/{from_key}, but {path} has no `{k}`: nothing makes the value",
                key.key
            ),
            Origin::Loop(visited) => format!(
                "`{}` is copied from {app}/{from_key}, which copies it back ({}): a copy loop, so nothing ever makes \
                 the value",
                key.key,
                chain(
                    &std::iter::once(("postgres".to_string(), key.key.clone()))
                        .chain(visited.into_iter().rev().skip(1).rev())
                        .collect::<Vec<_>>()
                )
            ),
        };
        out.push(
            Finding::new("copy-without-source", &secrets.path, key.line, key.key.as_str()).says(
                problem,
                format!(
                    "let one side make the value: `generate: {{type: password}}` in {} (and keep the other's `copy:`), \
                     or a value set by hand",
                    secrets.path
                ),
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::facts::tests::{
        app_keys, block, env_facts, secrets_yaml_facts, summary, template_facts, SECRETS, TEMPLATE,
    };
    use crate::check::facts::{AppSecretFacts, CopyFact};

    const A: &str = "a_db:\n  user: a\n  db: a\n";
    const ROOT: &str = "root_password:\n  description: r\n  generate:\n    type: password\n";

    fn generated(key: &str, condition: &str) -> String {
        format!("{key}:\n  description: d\n  if: {condition}\n  generate:\n    type: password\n")
    }

    /// The postgres application with the block for `a`, the values `A` and `secrets`.
    fn facts(secrets: &str) -> Facts {
        Facts {
            template: Some(template_facts(&block("a", "A", "a_password"))),
            secrets: Some(secrets_yaml_facts(secrets)),
            envs: vec![env_facts("dev", A)],
            ..Facts::default()
        }
    }

    fn findings(facts: &Facts) -> Vec<Finding> {
        let mut out = Vec::new();
        password_not_generated(facts, &mut out);
        unused_password(facts, &mut out);
        secret_condition_mismatch(facts, &mut out);
        secret_source_absent(facts, &mut out);
        copy_without_source(facts, &mut out);
        out
    }

    #[test]
    fn a_clean_source_has_none() {
        assert!(findings(&facts(&format!(
            "{}{ROOT}",
            generated("a_password", "a_db")
        )))
        .is_empty());
    }

    #[test]
    fn password_not_generated_for_a_block_and_for_an_entry_without_one() {
        let found = findings(&facts(ROOT));
        assert_eq!(
            summary(&found),
            [("password-not-generated", TEMPLATE, 10, "a_password")]
        );
        assert!(
            found[0].help.contains("to secrets.yaml"),
            "{}",
            found[0].help
        );
        let mut facts = facts(&format!("{}{ROOT}", generated("a_password", "a_db")));
        facts.envs = vec![env_facts("dev", &format!("{A}b_db:\n  user: b\n  db: b\n"))];
        assert_eq!(
            summary(&findings(&facts)),
            [("password-not-generated", "values-dev.yaml", 4, "b_password")]
        );
    }

    #[test]
    fn unused_password_that_no_block_reads() {
        let text = format!(
            "{}{ROOT}{}",
            generated("a_password", "a_db"),
            generated("b_password", "b_db")
        );
        assert_eq!(
            summary(&findings(&facts(&text))),
            [("unused-password", SECRETS, 10, "b_password")]
        );
    }

    #[test]
    fn secret_condition_mismatch_at_the_if() {
        let text = format!("{}{ROOT}", generated("a_password", "b_db"));
        assert_eq!(
            summary(&findings(&facts(&text))),
            [("secret-condition-mismatch", SECRETS, 3, "a_password")]
        );
    }

    #[test]
    fn secret_source_absent_at_line_one() {
        let facts = Facts {
            secret_source_absent: Some("installer/generate_secrets.py".to_string()),
            ..Facts::default()
        };
        assert_eq!(
            summary(&findings(&facts)),
            [(
                "secret-source-absent",
                "installer/generate_secrets.py",
                1,
                "installer/generate_secrets.py"
            )]
        );
    }

    #[test]
    fn copy_without_source_for_a_copy_of_a_key_postgres_lacks() {
        let mut facts = facts(&format!("{}{ROOT}", generated("a_password", "a_db")));
        facts.copies = vec![CopyFact {
            key: "b_password".to_string(),
            consumer: "b".to_string(),
            path: "applications/b/secrets.yaml".to_string(),
            line: 5,
        }];
        assert_eq!(
            summary(&findings(&facts)),
            [(
                "copy-without-source",
                "applications/b/secrets.yaml",
                5,
                "b_password"
            )]
        );
    }

    #[test]
    fn copy_without_source_for_a_missing_origin_or_a_loop() {
        let copied =
            "a_password:\n  description: d\n  if: a_db\n  copy:\n    application: b\n    key: pw\n";
        let with_b = |b: &str| Facts {
            app_secrets: vec![AppSecretFacts {
                app: "b".to_string(),
                path: "applications/b/secrets.yaml".to_string(),
                keys: app_keys(b),
            }],
            ..facts(&format!("{copied}{ROOT}"))
        };
        let made = with_b("pw:\n  description: d\n  generate:\n    type: password\n");
        assert!(findings(&made).is_empty());
        // An application this repository does not hold makes it.
        assert!(findings(&facts(&format!("{copied}{ROOT}"))).is_empty());
        let found = findings(&with_b("other:\n  description: d\n"));
        assert_eq!(
            summary(&found),
            [("copy-without-source", SECRETS, 1, "a_password")]
        );
        assert!(
            found[0].message.contains("has no `pw`"),
            "{}",
            found[0].message
        );
        let found = findings(&with_b(
            "pw:\n  description: d\n  copy:\n    application: postgres\n    key: a_password\n",
        ));
        assert_eq!(
            summary(&found),
            [("copy-without-source", SECRETS, 1, "a_password")]
        );
        assert!(
            found[0]
                .message
                .contains("(postgres/a_password <- b/pw <- postgres/a_password)"),
            "{}",
            found[0].message
        );
    }
}
