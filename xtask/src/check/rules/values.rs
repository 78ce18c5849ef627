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
