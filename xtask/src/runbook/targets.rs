//! Which environments a runbook covers and what it takes as deployed: the checked
//! role and database of each, whether the deployed revision already holds it, and the
//! warning for a named environment without the database.

use anyhow::Result;
use std::path::Path;

use super::model::Target;
use crate::deployment::Deployment;
use crate::error::bad_input;
use crate::git::Upstream;
use crate::names::{DbName, SqlIdent};
use crate::shell::quote;

/// Whether the database is in the deployed version (`upstream`) of an environment's
/// values file; false without one (then every step is printed, each with its check).
pub(super) fn committed(
    dep: &Deployment,
    env: &str,
    values_key: &str,
    upstream: Option<&Upstream>,
) -> bool {
    let (Some(values), Some(upstream)) = (dep.env(env), upstream) else {
        return false;
    };
    let root: &Path = &dep.layout.phalanx;
    crate::git::show(root, &upstream.rev, &values.env.values.relative).is_some_and(|text| {
        crate::files::values::parse(&text, dep.layout.nesting)
            .is_ok_and(|v| v.entry(values_key).is_some())
    })
}

/// The runbook's header line on what it takes as deployed.
pub fn compared_with(upstream: Option<&Upstream>) -> String {
    match upstream {
        Some(u) => format!(
            "What is deployed: {} ({}, commit {}); an environment whose values file there already \
             has the database only gets the verification.",
            u.rev, u.source, u.commit
        ),
        None => {
            "What is deployed: unknown (no origin/HEAD or origin/main, and no --deployed REV): \
                 every step is printed, and each checks before it changes anything."
                .to_string()
        }
    }
}

/// The targets of a database in the named environments (or every one that has it).
pub fn targets(
    dep: &Deployment,
    db: &DbName,
    envs: &[String],
    upstream: Option<&Upstream>,
) -> Result<Vec<Target>> {
    let key = db.values_key();
    let names: Vec<String> = if envs.is_empty() {
        dep.envs
            .iter()
            .filter(|e| e.parsed.entry(&key).is_some())
            .map(|e| e.env.name.clone())
            .collect()
    } else {
        dep.layout
            .select_environments(envs)?
            .into_iter()
            .map(|e| e.name)
            .collect()
    };
    if names.is_empty() {
        return Err(bad_input(format!(
            "no environment has `{key}`; add it with `{} add-db {}` or name environments with --env",
            crate::flags::program_name(),
            quote(&db.name)
        )));
    }
    names
        .into_iter()
        .map(|env| {
            let loaded = dep.env(&env);
            let values = loaded.map(|e| &e.parsed);
            let entry = values.and_then(|v| v.entry(&key));
            // A value from the file becomes SQL and shell words only once checked,
            // refused at its file and line.
            let at = match (loaded, entry) {
                (Some(l), Some(e)) => format!("{}:{}", l.env.values, e.line),
                _ => format!("values-{env}.yaml"),
            };
            let checked = |what: &str, value: Option<&String>| {
                SqlIdent::parse_at(&at, what, value.unwrap_or(&db.name))
            };
            let user = checked("user", entry.and_then(|e| e.user.as_ref()))?;
            let database = checked("db", entry.and_then(|e| e.db.as_ref()))?;
            let role_shared = values.is_some_and(|v| {
                v.entries
                    .iter()
                    .any(|e| e.key != key && e.user.as_deref() == Some(user.as_str()))
            });
            let exists = committed(dep, &env, &key, upstream);
            Ok(Target {
                env,
                user,
                database,
                role_shared,
                exists,
            })
        })
        .collect()
}

/// A warning per named environment whose values file lacks the database: adding or
/// rotating there would restart postgres for nothing and then not find the database.
pub(super) fn envs_without_entry(dep: &Deployment, db: &DbName, targets: &[Target]) -> Vec<String> {
    let key = db.values_key();
    targets
        .iter()
        .filter_map(|t| dep.env(&t.env))
        .filter(|e| e.parsed.entry(&key).is_none())
        .map(|e| {
            format!(
                "{}: {} has no `{key}`: its steps are for once `{} add-db {} --env {}` has added it",
                e.env.name,
                e.env.values.relative,
                crate::flags::program_name(),
                quote(&db.name),
                quote(&e.env.name)
            )
        })
        .collect()
}
