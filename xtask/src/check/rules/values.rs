//! The values files' rules: `bad-values-entry`, `shared-role`, `missing-vault-path`,
//! `stray-values-file`.

use std::collections::HashMap;

use super::normalized;
use crate::check::{Facts, Finding};
use crate::files::values;
use crate::names::{identifier_problem, name_of_values_key};

pub(super) fn bad_values_entry(facts: &Facts, out: &mut Vec<Finding>) {
    // The same users and databases recur in every environment: judge each once.
    let mut judged: HashMap<&str, Option<String>> = HashMap::new();
    for env in &facts.envs {
        for entry in &env.entries {
            let finding = || {
                Finding::new(
                    "bad-values-entry",
                    &env.path,
                    entry.line,
                    entry.key.as_str(),
                )
            };
            let help = format!(
                "write `{}:` as a mapping with `user:` and `db:`, each a lower-case SQL identifier \
                 (letters, digits, `_`; not a reserved word)",
                entry.key
            );
            if name_of_values_key(&entry.key).is_none() {
                out.push(finding().says(format!("`{}` names no database", entry.key), help));
                continue;
            }
            if let Some(problem) = &entry.problem {
                out.push(finding().says(problem.clone(), help));
                continue;
            }
            for (field, value) in [("user", &entry.user), ("db", &entry.db)] {
                let Some(value) = value.as_deref() else {
                    continue;
                };
                let problem = judged
                    .entry(value)
                    .or_insert_with(|| identifier_problem(value));
                if let Some(problem) = problem {
                    out.push(
                        finding().says(format!("`{}` {field}: {problem}", entry.key), help.clone()),
                    );
                }
            }
        }
    }
}

pub(super) fn shared_role(facts: &Facts, out: &mut Vec<Finding>) {
    let block_keys: HashMap<&str, &str> = facts
        .template
        .iter()
        .flat_map(|t| t.blocks.iter())
        .filter_map(|b| b.secret_key().map(|k| (b.values_key.as_str(), k)))
        .collect();
    for env in &facts.envs {
        let mut roles: HashMap<&str, (&values::DbEntry, String)> = HashMap::new();
        for entry in &env.entries {
            let (Some(user), None) = (entry.user.as_deref(), &entry.problem) else {
                continue;
            };
            let Some(name) = name_of_values_key(&entry.key) else {
                continue;
            };
            let key = block_keys
                .get(entry.key.as_str())
                .map_or_else(|| format!("{name}_password"), |k| k.to_string());
            match roles.get(user) {
                Some((first, first_key)) if normalized(first_key) != normalized(&key) => {
                    out.push(Finding::new("shared-role", &env.path, entry.line, user).says(
                        format!(
                            "`{}` and `{}` (line {}) both use the role `{user}`, with the passwords `{key}` and \
                             `{first_key}`: a role has one password, so one of them cannot log in",
                            entry.key, first.key, first.line
                        ),
                        format!("give `{}` its own user, or let both blocks read the same secret key", entry.key),
                    ));
                }
                Some(_) => {}
                None => {
                    roles.insert(user, (entry, key));
                }
            }
        }
    }
}

pub(super) fn missing_vault_path(facts: &Facts, out: &mut Vec<Finding>) {
    if !facts.published_chart {
        return;
    }
    for env in &facts.envs {
        if env.entries.is_empty() || env.vault_path.is_some() {
            continue;
        }
        out.push(Finding::new("missing-vault-path", &env.path, env.section_line, env.name.as_str()).says(
            format!(
                "{} has database entries but no `vault_secrets.path`: the runbook cannot say where {}'s passwords go",
                env.path, env.name
            ),
            "add `vault_secrets:` with `enabled: true` and `path: secret/k8s_operator/<instance>/postgres` under `postgres:`",
        ));
    }
}

/// `stray-values-file`: a values file in a postgres folder without the chart.
/// `bad-environment-name`: a `values-<env>.yaml` whose `<env>` is no environment
/// name; every command skips it, so what it holds is never deployed by this tool.
pub(super) fn bad_environment_name(facts: &Facts, out: &mut Vec<Finding>) {
    for (path, problem) in &facts.bad_env_files {
        out.push(Finding::new("bad-environment-name", path, 1, path.as_str()).says(
            format!("{path} is skipped: {problem}"),
            "rename the file to values-<env>.yaml with <env> of letters, digits, `-`, `_` and `.`, or delete it".to_string(),
        ));
    }
}

pub(super) fn stray_values_file(facts: &Facts, out: &mut Vec<Finding>) {
    let chart_dir = facts
        .envs
        .first()
        .and_then(|e| e.path.rsplit_once('/'))
        .map_or("the chart's folder", |(dir, _)| dir);
    for path in &facts.stray_values {
        out.push(Finding::new("stray-values-file", path, 1, path.as_str()).says(
            format!("{path} is in a postgres folder without a chart: it is never deployed (the chart's values are in {chart_dir})"),
            format!("delete it, or move what it still means into {chart_dir}"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::facts::tests::{block, env_facts, summary, template_facts};

    fn findings(facts: &Facts) -> Vec<Finding> {
        let mut out = Vec::new();
        bad_values_entry(facts, &mut out);
        shared_role(facts, &mut out);
        missing_vault_path(facts, &mut out);
        stray_values_file(facts, &mut out);
        bad_environment_name(facts, &mut out);
        out
    }

    fn env(values: &str) -> Facts {
        Facts {
            envs: vec![env_facts("dev", values)],
            ..Facts::default()
        }
    }

    const A: &str = "a_db:\n  user: a\n  db: a\n";

    #[test]
    fn clean_values_have_none() {
        assert!(findings(&env(A)).is_empty());
        let mut published = env(&format!(
            "{A}vault_secrets:\n  enabled: true\n  path: secret/k8s_operator/x/postgres\n"
        ));
        published.published_chart = true;
        assert!(findings(&published).is_empty());
    }

    #[test]
    fn bad_values_entry_for_a_bad_identifier_or_shape() {
        let found = findings(&env("a_db:\n  user: select\n  db: a\n"));
        assert_eq!(
            summary(&found),
            [("bad-values-entry", "values-dev.yaml", 1, "a_db")]
        );
        assert!(
            found[0].message.starts_with("`a_db` user:"),
            "{}",
            found[0].message
        );
        let found = findings(&env("a_db:\n  user: a\n"));
        assert_eq!(
            summary(&found),
            [("bad-values-entry", "values-dev.yaml", 1, "a_db")]
        );
    }

    #[test]
    fn shared_role_with_two_passwords() {
        let found = findings(&env(&format!("{A}b_db:\n  user: a\n  db: b\n")));
        assert_eq!(
            summary(&found),
            [("shared-role", "values-dev.yaml", 4, "a")]
        );
        // Both blocks reading the same key share the password: no finding.
        let mut facts = env(&format!("{A}b_db:\n  user: a\n  db: b\n"));
        facts.template = Some(template_facts(&format!(
            "{}{}",
            block("a", "A", "a_password"),
            block("b", "B", "a_password")
        )));
        assert!(findings(&facts).is_empty());
    }

    #[test]
    fn missing_vault_path_where_the_chart_is_published() {
        let mut facts = env(A);
        facts.published_chart = true;
        assert_eq!(
            summary(&findings(&facts)),
            [("missing-vault-path", "values-dev.yaml", 1, "dev")]
        );
    }

    #[test]
    fn stray_values_file_and_bad_environment_name_at_line_one() {
        let facts = Facts {
            stray_values: vec!["applications/postgres/values-dev.yaml".to_string()],
            bad_env_files: vec![("values-a b.yaml".to_string(), "a space".to_string())],
            ..env(A)
        };
        assert_eq!(
            summary(&findings(&facts)),
            [
                (
                    "stray-values-file",
                    "applications/postgres/values-dev.yaml",
                    1,
                    "applications/postgres/values-dev.yaml"
                ),
                (
                    "bad-environment-name",
                    "values-a b.yaml",
                    1,
                    "values-a b.yaml"
                )
            ]
        );
    }
}
