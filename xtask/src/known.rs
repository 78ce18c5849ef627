//! Which databases a deployment knows, from every file that names one: the values
//! keys of every environment (`<name>_db`), the template's blocks, and the secret
//! source's keys (`<name>_password`). A name none of them holds is a typo until
//! shown otherwise: `runbook` and `remove-db` refuse it (exit 1) with the closest
//! known name. What shows otherwise is history ([`in_history`]): a database that the
//! values files held at the last commit or at the deployed revision was removed
//! already, so a second `remove-db` changes nothing and succeeds.

use anyhow::Result;

use crate::deployment::{Deployment, Secrets};
use crate::error::refused;
use crate::names::{name_of_secret_key, name_of_values_key, DbName};

/// Every database name the deployment's files hold, sorted, each once. A secret key's
/// `-` reads as `_` (`vo-cutouts_password` stands for `vo_cutouts`).
pub fn names(dep: &Deployment) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let values = dep
        .envs
        .iter()
        .flat_map(|e| e.parsed.entries.iter().map(|d| d.key.as_str()));
    let blocks = dep
        .template
        .parsed
        .blocks
        .iter()
        .map(|b| b.values_key.as_str());
    out.extend(
        values
            .chain(blocks)
            .filter_map(name_of_values_key)
            .map(str::to_string),
    );
    let secret_keys: Vec<&str> = match &dep.secrets {
        Secrets::Generator(g) => g.parsed.calls.iter().map(|c| c.key.as_str()).collect(),
        Secrets::Yaml(y) => y.parsed.entries.iter().map(|e| e.key.as_str()).collect(),
        Secrets::Absent(_) => Vec::new(),
    };
    out.extend(
        secret_keys
            .into_iter()
            .filter_map(name_of_secret_key)
            .map(|n| n.replace('-', "_")),
    );
    out.sort();
    out.dedup();
    out
}

/// Whether any file of the deployment names the database.
pub fn is_known(dep: &Deployment, db: &DbName) -> bool {
    names(dep).contains(&db.name) || {
        let key = dep.secret_key_of(db);
        match &dep.secrets {
            Secrets::Generator(g) => g.parsed.call(&key).is_some(),
            Secrets::Yaml(y) => y.parsed.entry(&key).is_some(),
            Secrets::Absent(_) => false,
        }
    }
}

/// " (did you mean `x`?)" with the known name closest to `name`, or nothing.
pub fn did_you_mean(dep: &Deployment, name: &str) -> String {
    let names = names(dep);
    crate::flags::suggestion(name, names.iter().map(String::as_str), "")
}

/// Refuses (exit 1) a database no file of the deployment names, with the closest
/// known name; `what` is the command's own words ("no runbook").
pub fn require(dep: &Deployment, db: &DbName, what: &str) -> Result<()> {
    if is_known(dep, db) {
        return Ok(());
    }
    Err(refused(format!(
        "`{}` is not a database of this deployment{}: no values file, template block or secret \
         key names it; {what}",
        db.name,
        did_you_mean(dep, &db.name)
    )))
}

/// Whether an environment's values file held the database at local `HEAD` or at the
/// deployed revision (`git::upstream`); `None` when git does not track the values
/// files (no repository, a folder it ignores, no commit yet).
pub fn in_history(dep: &Deployment, db: &DbName) -> Option<bool> {
    let root = &dep.layout.phalanx;
    crate::git::commit_of(root, "HEAD")?;
    let mut args = vec!["ls-files", "--"];
    args.extend(dep.envs.iter().map(|e| e.env.values.relative.as_str()));
    let tracked = crate::git::git(root, &args).ok()?;
    if !tracked.status.success() || tracked.stdout.is_empty() {
        return None;
    }
    let upstream = crate::git::upstream(root, None).ok().flatten();
    let revisions: Vec<String> = std::iter::once("HEAD".to_string())
        .chain(upstream.map(|u| u.rev))
        .collect();
    let key = db.values_key();
    Some(revisions.iter().any(|rev| {
        dep.envs.iter().any(|e| {
            crate::git::show(root, rev, &e.env.values.relative).is_some_and(|text| {
                crate::files::values::parse(&text, dep.layout.nesting)
                    .is_ok_and(|v| v.entry(&key).is_some())
            })
        })
    }))
}
