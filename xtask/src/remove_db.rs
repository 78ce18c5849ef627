//! `remove-db`: the inverse of `add-db`.
//!
//! Without `--env`, removes the template block, the secret source's entry and every
//! values entry and, in the split layout, bumps the chart and moves the umbrella
//! dependency. With `--env`, removes only those environments' values entries. The
//! same guarantees as `add-db`: verified edits, all files or none, idempotent.
//! The role and database stay in the server: the runbook prints the SQL to drop them.
//!
//! While another component still copies the password (a `self.secrets["postgres"][KEY]`
//! read in the generator, or a `copy:` entry in an application's `secrets.yaml`),
//! removing it would break that component's secrets, so `remove-db` refuses (exit 1)
//! and names each copy: remove those first. It refuses the same way while an
//! application enabled in an environment it would leave still points at the
//! database there (a connection URL or host naming postgres.postgres, a known
//! flag such as gafaelfawr's `config.internalDatabase`), naming each `path:line`.

use anyhow::Result;

use crate::config::Config;
use crate::db_edit;
use crate::deployment::{bad_at, Deployment, Secrets};
use crate::error::refused;
use crate::files::{generator, helm_template, secrets_yaml, values};
use crate::flags;
use crate::flags::RunbookMode;
use crate::fsio::{command_line, Intent, Session};
use crate::model::consumers::Via;
use crate::names::{parse_db_name, DbName};
use crate::plan::Plan;
use crate::runbook::{self, targets, Target};

impl flags::RemoveDb {
    pub fn run(self, config: Config) -> Result<()> {
        let db = parse_db_name(&self.name)?;
        let session = Session::begin(
            &config.repositories(),
            &command_line(),
            Intent::of(self.dry_run),
        )?;
        let dep = Deployment::load(config)?;
        refuse_unknown_name(&dep, &db)?;
        let key = db.values_key();
        let scope = self.scope();
        let chosen = chosen_environments(&dep, &self.envs)?;
        let having: Vec<String> = chosen
            .iter()
            .filter(|env| dep.env(env).is_some_and(|e| e.parsed.entry(&key).is_some()))
            .cloned()
            .collect();
        refuse_while_used(&dep, &key, &having, scope)?;
        let runbook_targets: Vec<Target> = if having.is_empty() {
            Vec::new()
        } else {
            targets(&dep, &db, &having, None)?
        };

        let mut plan = Plan::default();
        db_edit::change_values(&mut plan, &dep, &having, |env| {
            Some(values::remove_entry_parsed(
                &env.text,
                &env.parsed,
                dep.layout.nesting,
                &key,
            ))
        })?;
        if scope == Scope::Deployment {
            plan_shared_files(&dep, &db, &mut plan)?;
        }

        if plan.is_empty() {
            let scope = match scope {
                Scope::Deployment => "the deployment".to_string(),
                Scope::Environments => chosen.join(", "),
            };
            outln!("Nothing to change: `{}` is not in {scope}.", db.name);
            return Ok(());
        }
        plan.print_diff();
        plan.apply(&session)?;
        if !runbook_targets.is_empty() {
            let runbook = runbook::build(
                &dep,
                &db,
                &runbook_targets,
                RunbookMode::Remove,
                &Default::default(),
            )?;
            db_edit::print_runbook(&runbook, &dep);
        }
        Ok(())
    }

    /// What this removal takes the database out of.
    fn scope(&self) -> Scope {
        if self.envs.is_empty() {
            Scope::Deployment
        } else {
            Scope::Environments
        }
    }
}

/// What a removal takes the database out of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    /// No `--env`: every environment, the template block and the secret source.
    Deployment,
    /// `--env`: only those environments' values entries.
    Environments,
}

/// A name no file holds is a typo unless history shows it was removed already
/// (then there is nothing to change); without history, only a note.
fn refuse_unknown_name(dep: &Deployment, db: &DbName) -> Result<()> {
    if crate::known::is_known(dep, db) {
        return Ok(());
    }
    match crate::known::in_history(dep, db) {
        Some(false) => crate::known::require(dep, db, "nothing to remove")?,
        Some(true) => {}
        None => {
            let hint = crate::known::did_you_mean(dep, &db.name);
            if !hint.is_empty() {
                eprintln!("note: no file of this deployment names `{}`{hint}", db.name);
            }
        }
    }
    Ok(())
}

/// The environments `--env` names, or every environment without it.
fn chosen_environments(dep: &Deployment, names: &[String]) -> Result<Vec<String>> {
    if names.is_empty() {
        return Ok(dep.envs.iter().map(|e| e.env.name.clone()).collect());
    }
    Ok(dep
        .layout
        .select_environments(names)?
        .into_iter()
        .map(|e| e.name)
        .collect())
}

/// The edits of a whole-deployment removal beside the values entries: the
/// template block (with the chart bump) and the secret source's entry, refused
/// while another component still copies the password.
fn plan_shared_files(dep: &Deployment, db: &DbName, plan: &mut Plan) -> Result<()> {
    let template = &dep.template;
    if template.parsed.block(&db.values_key()).is_some() {
        let text =
            helm_template::remove_block(&template.text, db).map_err(bad_at(&template.file))?;
        db_edit::change_template(plan, dep, text, None)?;
    }
    let secret_key = dep.secret_key_of(db);
    refuse_while_copied(dep, &secret_key)?;
    match &dep.secrets {
        Secrets::Generator(g) if g.parsed.call(&secret_key).is_some() => {
            let text = generator::remove_line(&g.text, &secret_key).map_err(bad_at(&g.file))?;
            plan.change(&g.file, &g.text, text);
        }
        Secrets::Yaml(y) if y.parsed.entry(&secret_key).is_some() => {
            let text = secrets_yaml::remove_entry(&y.text, &secret_key).map_err(bad_at(&y.file))?;
            plan.change(&y.file, &y.text, text);
        }
        _ => {}
    }
    Ok(())
}

/// Refuses (exit 1) while another component copies the password, naming each copy.
fn refuse_while_copied(dep: &Deployment, secret_key: &str) -> Result<()> {
    let copies = dep.copies_of(secret_key);
    if copies.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = copies
        .iter()
        .map(|c| format!("  {}:{}: {}", c.file.relative, c.line, c.what))
        .collect();
    Err(refused(format!(
        "`{secret_key}` is still copied by {}:\n{}\nremove {} first, then run remove-db again \
         (removing the key now would leave {} without its password)",
        dep.consumers_of(secret_key).join(", "),
        list.join("\n"),
        if copies.len() == 1 {
            "that copy"
        } else {
            "those copies"
        },
        if copies.len() == 1 { "it" } else { "them" },
    )))
}

/// Refuses (exit 1) while an application enabled in one of `envs` still points at
/// the database (a value naming postgres.postgres with its database, a known
/// flag) or, for `--env` removals in a repository with `environments/`, copies its
/// password there: removing it would break that application. Names each
/// `path:line`.
fn refuse_while_used(dep: &Deployment, key: &str, envs: &[String], scope: Scope) -> Result<()> {
    let model = dep.model();
    let mut uses = Vec::new();
    for env in envs {
        let Some(entry) = dep.env(env).and_then(|e| e.parsed.entry(key)) else {
            continue;
        };
        let secret_key = model.secret_key_of_entry(key);
        for c in model.consumers_of(env, entry, &secret_key) {
            let counts = match c.via {
                Via::Pointer(_) | Via::Flag { .. } => true,
                Via::CopiesFromPostgres { .. } | Via::GeneratorCopy { .. } => {
                    scope == Scope::Environments && model.environments.known()
                }
                Via::CopiedByPostgres { .. } => false,
            };
            if counts {
                uses.push(format!(
                    "  {}:{}: {} in {env}: {}",
                    c.file.relative,
                    c.line,
                    c.app,
                    c.describe()
                ));
            }
        }
    }
    if uses.is_empty() {
        return Ok(());
    }
    uses.dedup();
    Err(refused(format!(
        "`{key}` is still used by applications enabled where it would be removed:\n{}\npoint them at \
         another server (or turn their internal-database flag off) first, then run remove-db again",
        uses.join("\n")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_model;

    fn deployment() -> Deployment {
        test_model()
            .strict()
            .expect("the consumers fixture is readable")
    }

    fn envs(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn the_scope_is_the_deployment_without_env() {
        let flags = |envs: Vec<String>| flags::RemoveDb {
            name: "a".to_string(),
            envs,
            dry_run: true,
        };
        assert_eq!(flags(Vec::new()).scope(), Scope::Deployment);
        assert_eq!(flags(envs(&["idfdev"])).scope(), Scope::Environments);
    }

    #[test]
    fn chosen_environments_are_every_one_or_those_named() {
        let dep = deployment();
        assert_eq!(
            chosen_environments(&dep, &[]).unwrap(),
            ["idfdev", "usdfdev", "usdfint"]
        );
        assert_eq!(
            chosen_environments(&dep, &envs(&["usdfint"])).unwrap(),
            ["usdfint"]
        );
        assert!(chosen_environments(&dep, &envs(&["nowhere"])).is_err());
    }

    #[test]
    fn refused_while_another_application_copies_the_password() {
        let dep = deployment();
        let err = refuse_while_copied(&dep, "times_square_password").unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("  applications/times-square/secrets.yaml:1: ")
                && message.contains("remove that copy first"),
            "{message}"
        );
        assert!(refuse_while_copied(&dep, "jupyterhub_password").is_ok());
    }

    #[test]
    fn refused_while_an_enabled_application_points_at_the_database() {
        let dep = deployment();
        let err = refuse_while_used(
            &dep,
            "times_square_db",
            &envs(&["idfdev"]),
            Scope::Deployment,
        )
        .unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains(
                "  applications/times-square/values-idfdev.yaml:3: times-square in idfdev: "
            ),
            "{message}"
        );
        // Nobody uses jupyterhub's database.
        assert!(refuse_while_used(
            &dep,
            "jupyterhub_db",
            &envs(&["usdfdev"]),
            Scope::Deployment
        )
        .is_ok());
    }

    #[test]
    fn a_copy_counts_only_for_an_env_removal() {
        let dep = deployment();
        // In idfdev exposurelog only copies the password: a whole removal leaves the
        // copy to refuse_while_copied; an `--env` removal would break it there.
        let used = |scope| refuse_while_used(&dep, "exposurelog_db", &envs(&["idfdev"]), scope);
        assert!(used(Scope::Deployment).is_ok());
        let message = used(Scope::Environments).unwrap_err().to_string();
        assert!(
            message.contains(
                "  applications/exposurelog/secrets.yaml:1: exposurelog in idfdev: copies postgres/exposurelog_password\n"
            ),
            "{message}"
        );
    }
}
