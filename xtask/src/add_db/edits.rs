//! The edits of `add-db`, computed in memory and verified: the template block
//! (with the chart bump), the secret source's entry or line, the application's
//! copy of the password (`--app`), and one values entry per chosen environment.

use std::path::Path;

use anyhow::Result;

use super::app_key;
use super::refuse::refuse_unknown_component;
use super::Request;
use crate::db_edit;
use crate::deployment::{bad_at, Deployment, Loaded, Secrets};
use crate::error::refused;
use crate::files::chart::Bump;
use crate::files::{app_copy, generator, helm_template, secrets_yaml, values};
use crate::flags::{AppCopy, SecretChoice};
use crate::layout::RepoFile;
use crate::names::DbName;
use crate::plan::Plan;

/// Every edit that is missing, computed in memory and verified.
pub(super) fn plan(
    dep: &Deployment,
    request: &Request,
    bump: Option<Bump>,
    (secret, app): (&SecretChoice, Option<&AppCopy>),
) -> Result<(Plan, Vec<String>)> {
    let (db, user, database, envs) = (
        &request.db,
        request.user.as_str(),
        request.database.as_str(),
        request.envs.as_slice(),
    );
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
    let before = read_or_empty(&file)?;
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
        let before = read_or_empty(&values)?;
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

/// An application's file as it is, or empty where it does not exist yet.
fn read_or_empty(file: &RepoFile) -> Result<String> {
    if file.path.is_file() {
        crate::deployment::read(file)
    } else {
        Ok(String::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_secret_choice_has_its_secrets_yaml_source() {
        assert_eq!(
            yaml_source(&SecretChoice::Generate),
            secrets_yaml::Source::Generate
        );
        assert_eq!(
            yaml_source(&SecretChoice::Static),
            secrets_yaml::Source::Manual
        );
        let copy = SecretChoice::Copy {
            application: "nublado".to_string(),
            key: "pw".to_string(),
        };
        assert_eq!(
            yaml_source(&copy),
            secrets_yaml::Source::Copy {
                application: "nublado".to_string(),
                key: "pw".to_string(),
            }
        );
    }
}
