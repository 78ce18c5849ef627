//! The rules of the other side (needs `environments/`): `copy-source-not-enabled`,
//! `copy-source-missing`, `copy-needs-database` (postgres-related keys that
//! `phalanx secrets sync` cannot resolve), `pointer-unknown-database`,
//! `pointer-user-mismatch` (values that point at the internal server) and
//! `unused-database` (an entry no enabled application uses).

use std::collections::BTreeMap;

use crate::check::{Facts, Finding};
use crate::model::consumers::Via;
use crate::model::resolve::{Reason, Source};

/// Findings at the same place in several environments, merged: the rule, path,
/// line and subject with the environments in order, and the message and help of
/// the first.
#[derive(Default)]
struct PerEnv {
    places: BTreeMap<Place, (Vec<String>, String, String)>,
}

/// A finding's rule, path, line and subject.
type Place = (&'static str, String, usize, String);

impl PerEnv {
    fn add(
        &mut self,
        rule: &'static str,
        path: &str,
        line: usize,
        subject: &str,
        env: &str,
        says: (String, String),
    ) {
        let entry = self
            .places
            .entry((rule, path.to_string(), line, subject.to_string()))
            .or_insert_with(|| (Vec::new(), says.0, says.1));
        entry.0.push(env.to_string());
    }

    fn findings(self, out: &mut Vec<Finding>) {
        for ((rule, path, line, subject), (envs, message, help)) in self.places {
            let message = message.replace("@ENVS@", &envs.join(", "));
            let help = help.replace("@ENVS@", &envs.join(", "));
            out.push(Finding::new(rule, &path, line, subject).says(message, help));
        }
    }
}

/// Copies that `phalanx secrets sync` cannot resolve: the postgres-related part.
pub(super) fn unresolved_copies(facts: &Facts, out: &mut Vec<Finding>) {
    let mut per_env = PerEnv::default();
    for side in &facts.other_side {
        for u in &side.unresolved {
            let r = &u.required;
            let Source::Copy { application, key } = &r.source else {
                continue;
            };
            let subject = format!("{}/{}", r.app, r.key);
            let (rule, says) = match (&u.reason, application.as_str()) {
                (Reason::AppNotEnabled, _) => (
                    "copy-source-not-enabled",
                    (
                        format!(
                            "{subject} copies {application}/{key}, but {application} is not enabled in @ENVS@, so \
                             `phalanx secrets sync` refuses the environment"
                        ),
                        if r.app == "postgres" {
                            format!(
                                "remove the database from @ENVS@ (`remove-db NAME --env ENV`), or have postgres \
                                 generate `{}` and {application} copy it from postgres",
                                r.key
                            )
                        } else {
                            format!(
                                "guard the copy with an `if:` that is false in @ENVS@ (e.g. `if: internalDatabase`), \
                                 or enable {application} there"
                            )
                        },
                    ),
                ),
                (Reason::KeyAbsent, "postgres") => (
                    "copy-needs-database",
                    (
                        format!(
                            "{subject} copies postgres/{key}, which postgres does not have in @ENVS@ (the \
                             database is not set there), so `phalanx secrets sync` refuses the environment"
                        ),
                        format!(
                            "guard the copy with an `if:` that holds only where the database is set (e.g. `if: \
                             internalDatabase`, with `internalDatabase: true` in applications/{}/values-ENV.yaml \
                             of those environments), or add the database to @ENVS@",
                            r.app
                        ),
                    ),
                ),
                (reason, _) => (
                    "copy-source-missing",
                    (
                        format!(
                            "{subject} copies {application}/{key}, which {} in @ENVS@, so `phalanx secrets sync` \
                             refuses the environment",
                            match reason {
                                Reason::KeyUnresolved => "does not resolve either",
                                Reason::KeyUndeclared => "is declared nowhere",
                                _ => "does not exist (its `if:` is false)",
                            }
                        ),
                        format!(
                            "make {application}/{key} exist in @ENVS@ (its `if:` must hold there), or guard this copy \
                             with an `if:` that is false there"
                        ),
                    ),
                ),
            };
            per_env.add(rule, &r.file.relative, r.line, &subject, &side.env, says);
        }
    }
    per_env.findings(out);
}

/// Pointers at the internal server that name a database or user the
/// environment's postgres does not define.
pub(super) fn pointers(facts: &Facts, out: &mut Vec<Finding>) {
    let mut per_env = PerEnv::default();
    for side in &facts.other_side {
        for c in &side.consumers {
            if !matches!(c.via, Via::Pointer(_) | Via::Flag { .. }) {
                continue;
            }
            let (user, database) = (c.user.as_deref(), c.database.as_deref());
            let found = side.entries.iter().find(|(e, _)| match (database, user) {
                (Some(db), _) => e.db.as_deref() == Some(db),
                (None, Some(u)) => e.user.as_deref() == Some(u),
                (None, None) => true,
            });
            let what = c.describe();
            let subject = c.app.clone();
            match found {
                None => {
                    let missing = match (database, user) {
                        (Some(db), _) => format!("the database `{db}`"),
                        (None, Some(u)) => format!("the user `{u}`"),
                        (None, None) => continue,
                    };
                    let help = if side.postgres_enabled {
                        format!(
                            "add the database to @ENVS@ (`add-db NAME --env ENV`), or point {} at the server that \
                             holds it",
                            c.app
                        )
                    } else {
                        format!(
                            "enable postgres in {} with the database, or point {} at the server that holds it",
                            side.env_file, c.app
                        )
                    };
                    let message = format!(
                        "{} is enabled in @ENVS@ and {what}, but postgres there {} {missing}",
                        c.app,
                        if side.postgres_enabled {
                            "does not define"
                        } else {
                            "is not enabled, so it lacks"
                        }
                    );
                    per_env.add(
                        "pointer-unknown-database",
                        &c.file.relative,
                        c.line,
                        &subject,
                        &side.env,
                        (message, help),
                    );
                }
                Some((entry, _)) => {
                    let (Some(u), Some(entry_user)) = (user, entry.user.as_deref()) else {
                        continue;
                    };
                    if u == entry_user {
                        continue;
                    }
                    let message = format!(
                        "{} {what}, but the entry `{}` of @ENVS@ has the user `{entry_user}`, so it cannot log in",
                        c.app, entry.key
                    );
                    let help = format!("connect as `{entry_user}`, or change the entry's user");
                    per_env.add(
                        "pointer-user-mismatch",
                        &c.file.relative,
                        c.line,
                        &subject,
                        &side.env,
                        (message, help),
                    );
                }
            }
        }
    }
    per_env.findings(out);
}

/// An entry that no application enabled in its environment uses.
pub(super) fn unused_database(facts: &Facts, out: &mut Vec<Finding>) {
    for side in &facts.other_side {
        let Some(path) = &side.values_path else {
            continue;
        };
        for (entry, secret_key) in &side.entries {
            if side.consumers.iter().any(|c| c.uses(entry, secret_key)) {
                continue;
            }
            out.push(Finding::new("unused-database", path, entry.line, entry.key.as_str()).says(
                format!(
                    "no application enabled in {} uses `{}` (no copy of `{secret_key}`, no value pointing at \
                     postgres.postgres with its database `{}`)",
                    side.env,
                    entry.key,
                    entry.db.as_deref().unwrap_or("?")
                ),
                format!(
                    "remove it from {} (`remove-db {} --env {}`) once its data is saved, or point its application \
                     at it",
                    side.env,
                    crate::names::name_of_values_key(&entry.key).unwrap_or(&entry.key),
                    side.env
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::RepoFile;
    use crate::model::test_model;

    /// The rules of this family over the consumers tree, with one file replaced.
    fn findings(file: &str, text: &str) -> Vec<(&'static str, String, usize, String)> {
        let model = test_model();
        let file = RepoFile::new(&model.layout.phalanx, file);
        let mut model = model.with_planned([(&file, text)]);
        if let Some(env) = file.relative.strip_prefix("applications/postgres/values-") {
            let env = env.trim_end_matches(".yaml");
            let parsed = crate::files::values::parse(text, model.layout.nesting).unwrap();
            let values = model.envs.iter_mut().find(|e| e.env.name == env).unwrap();
            values.parsed = parsed;
        }
        let facts = Facts {
            other_side: crate::check::side::gather(&model),
            ..Facts::default()
        };
        let mut out = Vec::new();
        unresolved_copies(&facts, &mut out);
        pointers(&facts, &mut out);
        unused_database(&facts, &mut out);
        out.into_iter()
            .map(|f| (f.rule, f.path, f.line, f.message))
            .collect()
    }

    #[test]
    fn a_clean_tree_has_none() {
        let text = std::fs::read_to_string(
            crate::config::workspace_root()
                .join("tests/fixtures/check/consumers/phalanx/applications/nublado/values.yaml"),
        )
        .unwrap();
        assert!(findings("applications/nublado/values.yaml", &text).is_empty());
    }

    #[test]
    fn unresolved_copies_name_the_environments() {
        let found = findings(
            "applications/gafaelfawr/values.yaml",
            "config:\n  internalDatabase: false\n",
        );
        assert!(found.is_empty(), "every environment sets it: {found:?}");
        let found = findings(
            "applications/gafaelfawr/values-idfdev.yaml",
            "config:\n  databaseUrl: \"\"\n",
        );
        let rules: Vec<&str> = found.iter().map(|f| f.0).collect();
        // gafaelfawr still counts as the source of postgres's copy: no unused-database.
        assert_eq!(rules, ["copy-source-missing"], "{found:?}");
        assert_eq!(
            (found[0].1.as_str(), found[0].2),
            ("applications/postgres/secrets.yaml", 7)
        );
        assert!(found[0].3.contains("in idfdev,"), "{}", found[0].3);
    }

    #[test]
    fn pointers_at_undefined_databases_and_other_users() {
        let found = findings(
            "applications/times-square/values-idfdev.yaml",
            "internalDatabase: true\nconfig:\n  databaseUrl: postgresql://ts@postgres.postgres/timessquare\n",
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].0, found[0].2), ("pointer-user-mismatch", 3));
        let found = findings(
            "applications/times-square/values-idfdev.yaml",
            "internalDatabase: true\nconfig:\n  databaseUrl: postgresql://timessquare@postgres.postgres/ts2\n",
        );
        assert_eq!(found[0].0, "pointer-unknown-database");
        assert!(found[0].3.contains("the database `ts2`"), "{}", found[0].3);
        // Another server is not judged.
        let found = findings(
            "applications/times-square/values-idfdev.yaml",
            "internalDatabase: true\nconfig:\n  databaseUrl: postgresql://x@rsp-db-rw.postgres-db/y\n",
        );
        assert!(
            found.iter().all(|f| f.0 != "pointer-unknown-database"),
            "{found:?}"
        );
    }

    #[test]
    fn an_entry_nobody_uses_is_a_warning() {
        let text = "exposurelog_db:\n  user: exposurelog\n  db: exposurelog\ngafaelfawr_db:\n  user: gafaelfawr\n  db: gafaelfawr\n\
                    jupyterhub_db:\n  user: jovyan\n  db: jupyterhub\nnublado3_db:\n  user: nublado3\n  db: nublado3\n";
        let found = findings("applications/postgres/values-usdfdev.yaml", text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!((found[0].0, found[0].2), ("unused-database", 7));
    }
}
