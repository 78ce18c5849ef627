//! What `add-db` refuses before it plans: a `--secret` or `--app` the secret
//! source cannot carry out, a copy source that is no application, a name whose
//! container id or role collides with another database, an `--app` naming no
//! component, and a plan that would leave a secret key unresolved.

use anyhow::Result;

use super::Request;
use crate::deployment::{Deployment, Secrets};
use crate::error::{bad_input, refused};
use crate::files::generator;
use crate::flags::{AppCopy, SecretChoice};
use crate::names::{container, env_id_of, name_of_values_key};
use crate::plan::Plan;

/// Where this deployment's passwords come from, as the refusals name it.
fn password_source(secrets: &Secrets) -> String {
    match secrets {
        Secrets::Absent(file) => format!("Vault by hand ({} does not exist)", file.relative),
        other => other.file().relative.clone(),
    }
}

/// Refuses (exit 2) a `--secret` or `--app` that this deployment's secret source
/// cannot carry out, and `--app postgres`.
pub(super) fn refuse_secret_choice(
    secrets: &Secrets,
    secret: &SecretChoice,
    app: Option<&AppCopy>,
) -> Result<()> {
    match (secrets, secret) {
        (Secrets::Yaml(_), _) | (_, SecretChoice::Generate) => {}
        (_, SecretChoice::Copy { .. }) => {
            return Err(bad_input(format!(
                "--secret copy:APP:KEY needs applications/postgres/secrets.yaml; this deployment's passwords come from {}",
                password_source(secrets)
            )));
        }
        (_, SecretChoice::Static) => {
            return Err(bad_input(format!(
                "--secret static is for applications/postgres/secrets.yaml (an entry set by hand); this \
                 deployment's passwords come from {}",
                password_source(secrets)
            )));
        }
    }
    if let (Secrets::Absent(_), Some(app)) = (secrets, app) {
        return Err(bad_input(format!(
            "--app {}: this deployment has no secret source ({}), so there is nothing to copy from; give the \
             application its password by hand",
            app.application,
            password_source(secrets)
        )));
    }
    if app.is_some_and(|a| a.application == "postgres") {
        return Err(bad_input(
            "--app postgres: postgres holds the password itself; name the application that uses the database",
        ));
    }
    Ok(())
}

/// `--secret copy:APP:KEY` must name another application of the repository:
/// postgres copying from itself is a loop (exit 2), an application without a
/// folder a source that never exists (exit 1). Whether APP runs and has KEY in
/// each chosen environment is judged on the planned model
/// ([`refuse_new_unresolved`]).
pub(super) fn refuse_copy_source(dep: &Deployment, application: &str, key: &str) -> Result<()> {
    if application == "postgres" {
        return Err(bad_input(format!(
            "--secret copy:postgres:{key}: postgres would copy its password from itself; use generate, or \
             copy:APP:KEY naming the application that holds the password"
        )));
    }
    let folder = dep.layout.phalanx.join("applications").join(application);
    if !folder.is_dir() {
        return Err(refused(format!(
            "--secret copy:{application}:{key}: {} does not exist, so nothing would ever hold the password; is \
             `{application}` an application of this repository?",
            folder.display()
        )));
    }
    Ok(())
}

/// Refuses what would give the container conflicting instructions (exit 1).
pub(super) fn refuse_collisions(dep: &Deployment, request: &Request) -> Result<()> {
    let (db, user, database, envs) = (
        &request.db,
        request.user.as_str(),
        request.database.as_str(),
        request.envs.as_slice(),
    );
    let key = db.values_key();
    let id = db.env_id();
    let template = &dep.template;
    for block in &template.parsed.blocks {
        let clash = block.values_key != key
            && (block.ids().iter().any(|other| container::same(other, &id))
                || name_of_values_key(&block.values_key).is_some_and(|n| env_id_of(n) == id));
        if clash {
            return Err(refused(format!(
                "{}:{}: the block for `{}` already uses VRO_DB_{id}_*, the id `{}` would have; the container \
                 would mix the two. Choose another name",
                template.file, block.line, block.values_key, db.name
            )));
        }
    }
    if let Some(block) = template.parsed.block(&key) {
        if let Some(problem) = block.malformation() {
            return Err(refused(format!(
                "{}:{}: {problem}; fix the block by hand, then run add-db again",
                template.file, block.line
            )));
        }
    }
    for env in dep.envs.iter().filter(|e| envs.contains(&e.env.name)) {
        for entry in &env.parsed.entries {
            let file = &env.env.values;
            if entry.key == key {
                if entry.user.as_deref() != Some(user) || entry.db.as_deref() != Some(database) {
                    return Err(refused(format!(
                        "{file}:{}: `{key}` already exists with user {} and db {}, not {user} and {database}; \
                         give the same --user and --database or edit the entry",
                        entry.line,
                        entry.user.as_deref().unwrap_or("(none)"),
                        entry.db.as_deref().unwrap_or("(none)")
                    )));
                }
                continue;
            }
            if name_of_values_key(&entry.key).is_some_and(|n| env_id_of(n) == id) {
                return Err(refused(format!(
                    "{file}:{}: `{}` has the container id {id} that `{}` would have; choose another name",
                    entry.line, entry.key, db.name
                )));
            }
            if entry.user.as_deref() == Some(user) {
                let other_secret = template
                    .parsed
                    .block(&entry.key)
                    .and_then(|b| b.secret_key().map(str::to_string))
                    .or_else(|| name_of_values_key(&entry.key).map(|n| format!("{n}_password")));
                if other_secret.as_deref() != Some(db.secret_key().as_str()) {
                    return Err(refused(format!(
                        "{file}:{}: the role `{user}` is already used by `{}` with the password `{}`; a role has one \
                         password, so one of the two applications could not log in. Give --user another role",
                        entry.line,
                        entry.key,
                        other_secret.unwrap_or_default()
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Refuses `--app APP` in a generator layout when nothing of the repository is
/// called APP: no `services/APP/` or `applications/APP/` folder and no
/// `def _APP(self)` in the generator (a typo would make a component of its own).
pub(super) fn refuse_unknown_component(
    dep: &Deployment,
    generator_text: &str,
    app: &str,
) -> Result<()> {
    let root = &dep.layout.phalanx;
    let known = ["services", "applications"]
        .iter()
        .any(|folder| root.join(folder).join(app).is_dir())
        || generator::has_component(generator_text, app);
    if known {
        return Ok(());
    }
    Err(refused(format!(
        "--app {app}: this repository has no services/{app}/ or applications/{app}/ folder and the \
         generator no `def _{}(self)`; is `{app}` the application's name?",
        app.replace('-', "_")
    )))
}

/// Refuses (exit 1) a plan after which some environment of `environments/` has a
/// secret key that `phalanx secrets sync` cannot resolve and could before: the
/// whole environment's sync would fail. Names each key with its `path:line`.
pub(super) fn refuse_new_unresolved(dep: &Deployment, plan: &Plan) -> Result<()> {
    let lines = dep.model().broken_by(plan.planned());
    if lines.is_empty() {
        return Ok(());
    }
    Err(refused(format!(
        "this add-db would leave keys that `phalanx secrets sync` cannot resolve, so it would refuse those \
         environments:\n{}\nnothing was written; choose environments where the source exists, or another --secret",
        lines.join("\n")
    )))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::error::exit_status;
    use crate::layout::RepoFile;

    fn absent() -> Secrets {
        Secrets::Absent(RepoFile::new(
            Path::new("/repo"),
            "installer/generate_secrets.py",
        ))
    }

    fn app(application: &str) -> AppCopy {
        AppCopy {
            application: application.to_string(),
            key: None,
        }
    }

    #[test]
    fn without_a_secret_source_the_passwords_go_into_vault_by_hand() {
        assert_eq!(
            password_source(&absent()),
            "Vault by hand (installer/generate_secrets.py does not exist)"
        );
    }

    #[test]
    fn generate_needs_no_secret_source() {
        assert!(refuse_secret_choice(&absent(), &SecretChoice::Generate, None).is_ok());
    }

    #[test]
    fn copy_and_static_need_secrets_yaml() {
        let copy = SecretChoice::Copy {
            application: "nublado".to_string(),
            key: "pw".to_string(),
        };
        for (choice, start) in [
            (
                copy,
                "--secret copy:APP:KEY needs applications/postgres/secrets.yaml",
            ),
            (SecretChoice::Static, "--secret static is for"),
        ] {
            let e = refuse_secret_choice(&absent(), &choice, None).unwrap_err();
            assert!(e.to_string().starts_with(start), "{e}");
            assert!(
                e.to_string().ends_with(
                    "come from Vault by hand (installer/generate_secrets.py does not exist)"
                ),
                "{e}"
            );
            assert_eq!(exit_status(&e), 2);
        }
    }

    #[test]
    fn an_application_copy_needs_a_secret_source() {
        let e = refuse_secret_choice(&absent(), &SecretChoice::Generate, Some(&app("nublado")))
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("--app nublado: this deployment has no secret source"),
            "{e}"
        );
        assert_eq!(exit_status(&e), 2);
    }
}
