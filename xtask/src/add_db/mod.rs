//! `add-db`: every edit that gives a service its database, at once.
//!
//! Plans the edits in memory (template block, chart version and umbrella dependency
//! in the split layout, secret source, one values entry per chosen environment),
//! each verified by its file module, refuses collisions, then prints the diffs,
//! writes all files or none, and prints the runbook. Only what is missing is
//! added, so a second run changes nothing and a partial state is completed.

mod edits;
mod refuse;

use anyhow::Result;

use crate::config::Config;
use crate::db_edit;
use crate::deployment::{Deployment, Secrets};
use crate::error::bad_input;
use crate::files::chart::{self, Bump};
use crate::flags::RunbookMode;
use crate::flags::{self, AppCopy, EnvChoice, SecretChoice};
use crate::fsio::{command_line, Intent, Session};
use crate::names::{parse_db_name, DbName, SqlIdent};
use crate::plan::Plan;
use crate::runbook::{self, Target};
use edits::plan;
use refuse::{refuse_collisions, refuse_copy_source, refuse_new_unresolved, refuse_secret_choice};

impl flags::AddDb {
    pub fn run(self, config: Config) -> Result<()> {
        let (db, user, database) = self.resolve_names()?;
        let session = Session::begin(
            &config.repositories(),
            &command_line(),
            Intent::of(self.dry_run),
        )?;
        let dep = Deployment::load(config)?;
        let request = Request {
            envs: self.chosen_environments(&dep)?,
            db,
            user,
            database,
        };
        let db = &request.db;
        refuse_secret_choice(&dep.secrets, &self.secret, self.app.as_ref())?;
        if let SecretChoice::Copy { application, key } = &self.secret {
            refuse_copy_source(&dep, application, key)?;
        }
        refuse_collisions(&dep, &request)?;
        let (plan, notes) = plan(&dep, &request, self.bump, (&self.secret, self.app.as_ref()))?;
        refuse_new_unresolved(&dep, &plan)?;

        let json = self.format == flags::Format::Json;
        if plan.is_empty() && json {
            return print_json(db, &dep, &plan, self.dry_run, None);
        }
        if plan.is_empty() {
            print_nothing_to_change(db, &request.envs);
            return Ok(());
        }
        let pending = self.pending(&dep, db);
        let runbook = runbook::build(&dep, db, &request.targets(), RunbookMode::Add, &pending)?;
        if json {
            plan.write_quietly(&session)?;
            let runbook = (!self.no_runbook).then_some(&runbook);
            return print_json(db, &dep, &plan, self.dry_run, runbook);
        }
        plan.print_diff();
        plan.apply(&session)?;
        print_notes(&dep, db, &notes);
        if !self.no_runbook {
            db_edit::print_runbook(&runbook, &dep);
        }
        Ok(())
    }

    /// The database's name and its role and database, each checked (the role and
    /// database default to the name).
    fn resolve_names(&self) -> Result<(DbName, SqlIdent, SqlIdent)> {
        let db = parse_db_name(&self.name)?;
        let user = self.user.clone().unwrap_or_else(|| db.name.clone());
        let database = self.database.clone().unwrap_or_else(|| db.name.clone());
        let user = SqlIdent::parse("user", &user)?;
        let database = SqlIdent::parse("database", &database)?;
        Ok((db, user, database))
    }

    /// The environments chosen by `--env`/`--all-envs`; none at all is bad input.
    fn chosen_environments(&self, dep: &Deployment) -> Result<Vec<String>> {
        let envs: Vec<String> = match &self.envs {
            EnvChoice::All => dep.layout.environments()?,
            EnvChoice::Listed(names) => dep.layout.select_environments(names)?,
        }
        .into_iter()
        .map(|e| e.name)
        .collect();
        if envs.is_empty() {
            return Err(bad_input(format!(
                "{}: there is no values-<env>.yaml",
                dep.layout.values_dir
            )));
        }
        Ok(envs)
    }

    /// What the planned edits change for the runbook: the chart version they give
    /// the chart (the split layout's runbook waits until it is published) and the
    /// application that --app makes copy the password.
    fn pending(&self, dep: &Deployment, db: &DbName) -> runbook::Pending {
        runbook::Pending {
            chart_version: (dep.layout.publishes_chart()
                && dep.template.parsed.block(&db.values_key()).is_none())
            .then(|| chart::bump_version(&dep.chart.text, self.bump.unwrap_or(Bump::Patch)))
            .and_then(|r| r.ok())
            .map(|(_, v)| v.to_string()),
            consumers: self.app.iter().map(|a| a.application.clone()).collect(),
            copies: self
                .app
                .iter()
                .map(|a| (a.application.clone(), app_key(a)))
                .collect(),
        }
    }
}

/// The database `add-db` is asked to give: its name, its checked role and
/// database, and the environments chosen.
struct Request {
    db: DbName,
    user: SqlIdent,
    database: SqlIdent,
    envs: Vec<String>,
}

impl Request {
    /// The runbook's targets: the database is new in each chosen environment.
    fn targets(&self) -> Vec<Target> {
        self.envs
            .iter()
            .map(|env| Target {
                env: env.clone(),
                user: self.user.clone(),
                database: self.database.clone(),
                role_shared: false,
                exists: false,
            })
            .collect()
    }
}

/// The answer when every edit is already in place.
fn print_nothing_to_change(db: &DbName, envs: &[String]) {
    outln!(
        "Nothing to change: `{}` is already complete in {}.\nSee `{} runbook {} --env {}` for the deployment steps.",
        db.name,
        envs.join(", "),
        crate::flags::program_name(),
        crate::shell::quote(&db.name),
        envs.iter()
            .map(|e| crate::shell::quote(e))
            .collect::<Vec<_>>()
            .join(" --env ")
    );
}

/// The plan's notes on stdout and, without a secret source, where the password
/// goes on stderr.
fn print_notes(dep: &Deployment, db: &DbName, notes: &[String]) {
    for note in notes {
        outln!("note: {note}");
    }
    if let Secrets::Absent(file) = &dep.secrets {
        eprintln!(
            "note: {} does not exist, so nothing generates `{}`: the password goes into Vault by hand \
             (the runbook's Vault step)",
            file.relative,
            dep.secret_key_of(db)
        );
    }
}

/// The key of an application's copy when `--app APP` names none.
const DEFAULT_APP_KEY: &str = "database-password";

/// The key of the application's copy: the one `--app APP:KEY` names, else the default.
fn app_key(app: &AppCopy) -> String {
    app.key
        .clone()
        .unwrap_or_else(|| DEFAULT_APP_KEY.to_string())
}

/// Prints `plan_json` on stdout, the runbook's warnings on stderr.
fn print_json(
    db: &DbName,
    dep: &Deployment,
    plan: &Plan,
    dry_run: bool,
    runbook: Option<&runbook::Runbook>,
) -> Result<()> {
    for w in runbook.iter().flat_map(|r| &r.warnings) {
        eprintln!("warning: {w}");
    }
    outln!("{}", plan_json(db, dep, plan, dry_run, runbook).pretty());
    Ok(())
}

/// `add-db --format json`: the files with their diffs, whether they were written,
/// and the runbook (`null` with `--no-runbook` or when nothing changes).
fn plan_json(
    db: &DbName,
    dep: &Deployment,
    plan: &Plan,
    dry_run: bool,
    runbook: Option<&runbook::Runbook>,
) -> runbook::json::Json {
    use runbook::json::Json;
    let charts = dep.layout.charts.as_deref();
    let files = plan
        .diffs()
        .into_iter()
        .map(|(file, diff)| {
            let repo = match charts {
                Some(c) if file.path.starts_with(c) => "charts",
                _ => "phalanx",
            };
            Json::Object(vec![
                ("repo", Json::string(repo)),
                ("path", Json::string(file.relative.as_str())),
                ("diff", Json::String(diff)),
            ])
        })
        .collect::<Vec<_>>();
    let written = !dry_run && !files.is_empty();
    Json::Object(vec![
        (
            "schema_version",
            Json::Number(runbook::json::SCHEMA_VERSION),
        ),
        ("database", Json::string(db.name.as_str())),
        ("dry_run", Json::Bool(dry_run)),
        ("written", Json::Bool(written)),
        ("files", Json::Array(files)),
        (
            "runbook",
            runbook.map_or(Json::Null, |r| runbook::to_json(r, dep)),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_application_copy_without_a_key_takes_the_usual_one() {
        let mut app = AppCopy {
            application: "nublado".to_string(),
            key: None,
        };
        assert_eq!(app_key(&app), "database-password");
        app.key = Some("pw".to_string());
        assert_eq!(app_key(&app), "pw");
    }

    #[test]
    fn every_chosen_environment_gets_a_new_target() {
        let request = Request {
            db: parse_db_name("shop").unwrap(),
            user: SqlIdent::parse("user", "alice").unwrap(),
            database: SqlIdent::parse("database", "shop").unwrap(),
            envs: vec!["dev".to_string(), "prod".to_string()],
        };
        let targets = request.targets();
        assert_eq!(targets.len(), 2);
        for (target, env) in targets.iter().zip(&request.envs) {
            assert_eq!(&target.env, env);
            assert_eq!(target.user, request.user);
            assert_eq!(target.database, request.database);
            assert!(!target.role_shared && !target.exists);
        }
    }
}
