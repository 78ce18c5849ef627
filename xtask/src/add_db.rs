//! `add-db`: every edit that gives a service its database, at once.
//!
//! Plans the edits in memory (template block, chart version and umbrella dependency
//! in the split layout, secret source, one values entry per chosen environment),
//! each verified by its file module, refuses collisions, then prints the diffs,
//! writes all files or none, and prints the runbook. Only what is missing is
//! added, so a second run changes nothing and a partial state is completed.

use std::path::Path;

use anyhow::Result;

use crate::config::Config;
use crate::db_edit;
use crate::deployment::{bad_at, Deployment, Loaded, Secrets};
use crate::error::{bad_input, refused};
use crate::files::chart::Bump;
use crate::files::{app_copy, chart, generator, helm_template, secrets_yaml, values};
use crate::flags::RunbookMode;
use crate::flags::{self, AppCopy, SecretChoice};
use crate::fsio::{command_line, Session};
use crate::layout::RepoFile;
use crate::model::resolve::{Reason, Source};
use crate::names::{container, env_id_of, name_of_values_key, parse_db_name, DbName, SqlIdent};
use crate::plan::Plan;
use crate::runbook::{self, Target};

impl flags::AddDb {
    pub fn run(self, config: Config) -> Result<()> {
        let (db, user, database) = self.resolve_names()?;
        let session = Session::begin_with(&config.repositories(), &command_line(), self.dry_run)?;
        let dep = Deployment::load(config)?;
        let envs = self.chosen_environments(&dep)?;
        refuse_secret_choice(&dep.secrets, &self.secret, self.app.as_ref())?;
        if let SecretChoice::Copy { application, key } = &self.secret {
            refuse_copy_source(&dep, application, key)?;
        }
        refuse_collisions(&dep, &db, &user, &database, &envs)?;
        let (plan, notes) = plan(
            &dep,
            &db,
            &user,
            &database,
            &envs,
            self.bump,
            (&self.secret, self.app.as_ref()),
        )?;
        refuse_new_unresolved(&dep, &plan)?;

        let json = self.format == flags::Format::Json;
        if plan.is_empty() && json {
            return print_json(&db, &dep, &plan, self.dry_run, None);
        }
        if plan.is_empty() {
            print_nothing_to_change(&db, &envs);
            return Ok(());
        }
        let targets = new_targets(&envs, &user, &database);
        let pending = self.pending(&dep, &db);
        let runbook = runbook::build(&dep, &db, &targets, RunbookMode::Add, &pending)?;
        if json {
            plan.write_quietly(&session, self.dry_run)?;
            let runbook = (!self.no_runbook).then_some(&runbook);
            return print_json(&db, &dep, &plan, self.dry_run, runbook);
        }
        plan.print_diff();
        plan.apply(&session, self.dry_run)?;
        print_notes(&dep, &db, &notes);
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
        let envs: Vec<String> = dep
            .layout
            .select_environments(&self.envs, self.all_envs)?
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

/// The runbook's targets: the database is new in each chosen environment.
fn new_targets(envs: &[String], user: &SqlIdent, database: &SqlIdent) -> Vec<Target> {
    envs.iter()
        .map(|env| Target {
            env: env.clone(),
            user: user.clone(),
            database: database.clone(),
            role_shared: false,
            exists: false,
        })
        .collect()
}

/// Where this deployment's passwords come from, as the refusals name it.
fn password_source(secrets: &Secrets) -> String {
    match secrets {
        Secrets::Absent(file) => format!("Vault by hand ({} does not exist)", file.relative),
        other => other.file().relative.clone(),
    }
}

/// Refuses (exit 2) a `--secret` or `--app` that this deployment's secret source
/// cannot carry out, and `--app postgres`.
fn refuse_secret_choice(
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

/// Refuses `--app APP` in a generator layout when nothing of the repository is
/// called APP: no `services/APP/` or `applications/APP/` folder and no
/// `def _APP(self)` in the generator (a typo would make a component of its own).
fn refuse_unknown_component(dep: &Deployment, generator_text: &str, app: &str) -> Result<()> {
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

/// The key of an application's copy when `--app APP` names none.
const DEFAULT_APP_KEY: &str = "database-password";

/// The key of the application's copy: the one `--app APP:KEY` names, else the default.
fn app_key(app: &AppCopy) -> String {
    app.key
        .clone()
        .unwrap_or_else(|| DEFAULT_APP_KEY.to_string())
}

/// Refuses what would give the container conflicting instructions (exit 1).
fn refuse_collisions(
    dep: &Deployment,
    db: &DbName,
    user: &str,
    database: &str,
    envs: &[String],
) -> Result<()> {
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

/// Every edit that is missing, computed in memory and verified.
fn plan(
    dep: &Deployment,
    db: &DbName,
    user: &str,
    database: &str,
    envs: &[String],
    bump: Option<Bump>,
    (secret, app): (&SecretChoice, Option<&AppCopy>),
) -> Result<(Plan, Vec<String>)> {
    let mut plan = Plan::default();
    let mut notes = Vec::new();
    let template = &dep.template;
    if template.parsed.block(&db.values_key()).is_none() {
        let text = helm_template::add_block(&template.text, db).map_err(bad_at(&template.file))?;
        db_edit::change_template(&mut plan, dep, text, bump)?;
    }
    let key = dep.secret_key_of(db);
    match &dep.secrets {
        Secrets::Generator(g) => plan_generator(dep, g, &key, app, &mut plan)?,
        Secrets::Yaml(y) => {
            if dep.secrets.provision(&key).is_none() {
                let text = secrets_yaml::add_entry(&y.text, db, &yaml_source(secret))
                    .map_err(bad_at(&y.file))?;
                plan.change(&y.file, &y.text, text);
            }
            if let Some(app) = app {
                let copy = (app.application.as_str(), app_key(app));
                plan_app_copy(
                    dep,
                    db,
                    &key,
                    (copy.0, &copy.1),
                    envs,
                    &mut plan,
                    &mut notes,
                )?;
            }
        }
        Secrets::Absent(_) => {}
    }
    db_edit::change_values(&mut plan, dep, envs, |env| {
        env.parsed.entry(&db.values_key()).is_none().then(|| {
            values::add_entry_parsed(
                &env.text,
                &env.parsed,
                dep.layout.nesting,
                &db.values_key(),
                user,
                database,
            )
        })
    })?;
    Ok((plan, notes))
}

/// The `secrets.yaml` entry's source that `--secret` asks for.
fn yaml_source(secret: &SecretChoice) -> secrets_yaml::Source {
    match secret {
        SecretChoice::Generate => secrets_yaml::Source::Generate,
        SecretChoice::Copy { application, key } => secrets_yaml::Source::Copy {
            application: application.clone(),
            key: key.clone(),
        },
        SecretChoice::Static => secrets_yaml::Source::Manual,
    }
}

/// The generator's edit: the password's line where it is missing and, with
/// `--app`, the application's copy of it.
fn plan_generator(
    dep: &Deployment,
    g: &Loaded<generator::Generator>,
    key: &str,
    app: Option<&AppCopy>,
    plan: &mut Plan,
) -> Result<()> {
    let mut text = g.text.clone();
    if dep.secrets.provision(key).is_none() {
        text = generator::add_line(&text, key).map_err(bad_at(&g.file))?;
    }
    if let Some(app) = app {
        let app_key = app_key(app);
        // add_copy refuses the shapes without component methods and
        // leaves an existing copy alone; a new copy must name a known
        // application and not take over a key it already has.
        let with_copy =
            generator::add_copy(&text, &app.application, &app_key, key).map_err(bad_at(&g.file))?;
        if with_copy != text {
            refuse_unknown_component(dep, &g.text, &app.application)?;
            if let Some(line) = generator::sets_component_key(&g.text, &app.application, &app_key) {
                return Err(refused(format!(
                    "{}:{line}: the generator already sets {}'s `{app_key}`, and not as a \
                     copy of `{key}`; choose another KEY in --app {}:KEY",
                    g.file.relative, app.application, app.application
                )));
            }
        }
        text = with_copy;
    }
    plan.change(&g.file, &g.text, text);
    Ok(())
}

/// Refuses (exit 1) a plan after which some environment of `environments/` has a
/// secret key that `phalanx secrets sync` cannot resolve and could before: the
/// whole environment's sync would fail. Names each key with its `path:line`.
fn refuse_new_unresolved(dep: &Deployment, plan: &Plan) -> Result<()> {
    if !dep.environments.known() {
        return Ok(());
    }
    let model = dep.model();
    let after = model.with_planned(plan.planned());
    let new = model.newly_unresolved(&after);
    if new.is_empty() {
        return Ok(());
    }
    let lines: Vec<String> = new
        .iter()
        .map(|(env, u)| {
            let r = &u.required;
            let source = match &r.source {
                Source::Copy { application, key } => format!("{application}/{key}"),
                _ => "?".to_string(),
            };
            let why = match u.reason {
                Reason::AppNotEnabled => {
                    let app = source.split('/').next().unwrap_or_default();
                    let site = model
                        .environments
                        .envs
                        .get(env)
                        .map(|e| e.switch_site(app))
                        .unwrap_or_default();
                    format!("{app} is not enabled in {env} ({site})")
                }
                Reason::KeyAbsent => {
                    format!("{source} does not exist in {env} (its `if:` is false there)")
                }
                Reason::KeyUndeclared => format!("{source} is declared nowhere"),
                Reason::KeyUnresolved => format!("{source} does not resolve in {env}"),
            };
            format!(
                "  {}:{}: {}/{} copies {source}, but {why}",
                r.file.relative, r.line, r.app, r.key
            )
        })
        .collect();
    Err(refused(format!(
        "this add-db would leave keys that `phalanx secrets sync` cannot resolve, so it would refuse those \
         environments:\n{}\nnothing was written; choose environments where the source exists, or another --secret",
        lines.join("\n")
    )))
}

/// The application's copy of the password (`--app APP[:KEY]`, `secrets.yaml`
/// layout), guarded by an `if:` that holds exactly where the database is set: the
/// flag that already guards its database password when its `secrets.yaml` has one
/// (`config.internalDatabase`, `hub.internalDatabase`), else `internalDatabase`,
/// set true in `applications/APP/values-ENV.yaml` of the chosen environments.
fn plan_app_copy(
    dep: &Deployment,
    db: &DbName,
    key: &str,
    (application, app_key): (&str, &str),
    envs: &[String],
    plan: &mut Plan,
    notes: &mut Vec<String>,
) -> Result<()> {
    let file = dep.layout.application_secrets_file(application);
    let folder = file
        .path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    if !folder.is_dir() {
        return Err(refused(format!(
            "--app {}: {} does not exist; is `{}` an application of this repository?",
            application,
            folder.display(),
            application
        )));
    }
    let before = if file.path.is_file() {
        crate::deployment::read(&file)?
    } else {
        String::new()
    };
    let parsed = secrets_yaml::parse(&before).map_err(bad_at(&file))?;
    if let Some(entry) = parsed.entry(app_key) {
        let copy = secrets_yaml::Source::Copy {
            application: "postgres".to_string(),
            key: key.to_string(),
        };
        if entry.source != copy {
            return Err(refused(format!(
                "{}:{}: `{app_key}` is already declared, and not as a copy of postgres' \
                             `{key}`; choose another KEY in --app {}:KEY",
                file.relative, entry.line, application
            )));
        }
    }
    let text =
        secrets_yaml::add_app_copy(&before, app_key, &db.name, key).map_err(bad_at(&file))?;
    let condition = app_copy::existing_flag(&before).unwrap_or_else(|| app_copy::FLAG.to_string());
    let text = app_copy::with_condition(&text, app_key, &condition).map_err(bad_at(&file))?;
    plan.change(&file, &before, text);
    if condition != app_copy::FLAG {
        notes.push(format!(
            "{}'s copy `{app_key}` holds where its existing flag `{condition}` is true; set it true in \
             applications/{application}/values-ENV.yaml of {} if it is not",
            application,
            envs.join(", ")
        ));
        return Ok(());
    }
    for env in envs {
        let values = RepoFile::new(
            &dep.layout.phalanx,
            &format!("applications/{application}/values-{env}.yaml"),
        );
        let before = if values.path.is_file() {
            crate::deployment::read(&values)?
        } else {
            String::new()
        };
        let after = app_copy::set_flag(&before).map_err(bad_at(&values))?;
        plan.change(&values, &before, after);
    }
    notes.push(format!(
        "{application}'s copy `{app_key}` has `if: {}`, which holds exactly where the database is set: \
         `{}: true` is in applications/{application}/values-ENV.yaml of {}",
        app_copy::FLAG,
        app_copy::FLAG,
        envs.join(", ")
    ));
    Ok(())
}

/// `--secret copy:APP:KEY` must name another application of the repository:
/// postgres copying from itself is a loop (exit 2), an application without a
/// folder a source that never exists (exit 1). Whether APP runs and has KEY in
/// each chosen environment is judged on the planned model
/// ([`refuse_new_unresolved`]).
fn refuse_copy_source(dep: &Deployment, application: &str, key: &str) -> Result<()> {
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
