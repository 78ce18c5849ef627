//! The one model of a deployment: every file the tool reads, read once, tolerantly.
//!
//! [`Model::load`] detects the layout and reads the postgres application's files
//! (template, charts, secret source, values of each environment), every other
//! application's values and `secrets.yaml` ([`apps`]) and which applications each
//! environment enables ([`environments`]). A file that does not parse is set aside
//! in [`Model::unreadable`] with `path:line`; an unreadable managed file (I/O)
//! stops the load. On top of it:
//!
//! - [`resolve`]: which secret keys resolve in each environment, as `phalanx
//!   secrets sync` resolves them (conditions, copies both ways);
//! - [`consumers`]: the applications that use each database, per environment.
//!
//! `check` is rules over this model (its facts are a view of it); the commands that
//! edit or report take the strict view, [`Model::strict`] (a
//! [`crate::deployment::Deployment`]), which refuses while a managed file is
//! unreadable.

pub mod apps;
mod broken;
pub mod consumers;
pub mod environments;
pub mod resolve;
pub mod values;

use std::collections::BTreeMap;

use anyhow::Result;

use crate::config::Config;
use crate::deployment::{locate, read, Deployment, EnvValues, Loaded, Secrets};
use crate::error::bad_input;
use crate::files::{chart, generator, helm_template, parse_yaml, secrets_yaml, FileError};
use crate::layout::{Layout, RepoFile, SecretKind};

pub use apps::App;
pub use environments::Environments;

/// A file the model could not read, and why.
#[derive(Clone, Debug)]
pub struct Unreadable {
    pub file: RepoFile,
    pub error: FileError,
    /// A file of the postgres application that the edits manage (`true`), or
    /// another application's or `environments/` file (`false`): only the former
    /// stop the strict commands.
    pub managed: bool,
}

impl Unreadable {
    fn managed(file: &RepoFile, error: FileError) -> Unreadable {
        Unreadable {
            file: file.clone(),
            error,
            managed: true,
        }
    }

    pub(crate) fn other(file: &RepoFile, error: FileError) -> Unreadable {
        Unreadable {
            file: file.clone(),
            error,
            managed: false,
        }
    }
}

/// The deployment as read.
#[derive(Clone, Debug)]
pub struct Model {
    pub config: Config,
    pub layout: Layout,
    pub template: Option<Loaded<helm_template::Template>>,
    pub chart: Option<Loaded<chart::Chart>>,
    pub umbrella: Option<Loaded<chart::Chart>>,
    /// `None` when the secret source exists but does not parse.
    pub secrets: Option<Secrets>,
    /// The postgres values of each environment that parsed, sorted by environment.
    pub envs: Vec<EnvValues>,
    /// `applications/<app>/secrets.yaml` of every other application that parsed.
    pub app_secrets: Vec<(String, Loaded<secrets_yaml::SecretsYaml>)>,
    /// Which applications each environment enables.
    pub environments: Environments,
    /// Every application of `applications/` (postgres too), by name.
    pub apps: BTreeMap<String, App>,
    pub unreadable: Vec<Unreadable>,
}

/// Reads and parses one managed file, setting a parse failure aside.
fn tolerant<T>(
    file: &RepoFile,
    parse: impl Fn(&str) -> crate::files::FileResult<T>,
    unreadable: &mut Vec<Unreadable>,
) -> Result<Option<Loaded<T>>> {
    let text = read(file)?;
    Ok(match parse(&text) {
        Ok(parsed) => Some(Loaded {
            file: file.clone(),
            text,
            parsed,
        }),
        Err(e) => {
            unreadable.push(Unreadable::managed(file, e));
            None
        }
    })
}

impl Model {
    /// Detects the layout and reads every file.
    pub fn load(config: Config) -> Result<Model> {
        let layout = Layout::detect(&config)?;
        let mut bad = Vec::new();
        let template = tolerant(&layout.template, helm_template::parse, &mut bad)?;
        let chart = tolerant(&layout.chart, chart::parse, &mut bad)?;
        let umbrella = match &layout.umbrella {
            Some(file) => tolerant(file, chart::parse, &mut bad)?,
            None => None,
        };
        let secrets = match layout.secret_kind {
            _ if !layout.secret_source_present => {
                Some(Secrets::Absent(layout.secret_source.clone()))
            }
            SecretKind::Generator => {
                tolerant(&layout.secret_source, generator::parse, &mut bad)?.map(Secrets::Generator)
            }
            SecretKind::SecretsYaml => {
                tolerant(&layout.secret_source, secrets_yaml::parse, &mut bad)?.map(Secrets::Yaml)
            }
        };
        let envs = load_env_values(&layout, &mut bad)?;
        let mut app_secrets = Vec::new();
        for (app, file) in layout.application_secrets() {
            if let Some(loaded) = tolerant(&file, secrets_yaml::parse, &mut bad)? {
                app_secrets.push((app, loaded));
            }
        }
        let apps = apps::load(&layout.phalanx, &mut bad);
        let environments = load_environments(&layout, &mut bad);
        Ok(Model {
            config,
            layout,
            template,
            chart,
            umbrella,
            secrets,
            envs,
            app_secrets,
            environments,
            apps,
            unreadable: bad,
        })
    }

    /// The strict view: fails with the first managed file's `path:line` when one
    /// did not parse.
    pub fn strict(self) -> Result<Deployment> {
        if let Some(first) = self.unreadable.iter().find(|u| u.managed) {
            return Err(bad_input(locate(&first.file, &first.error)));
        }
        let missing = || bad_input("internal error: a managed file is missing from the model");
        Ok(Deployment {
            template: self.template.ok_or_else(missing)?,
            chart: self.chart.ok_or_else(missing)?,
            umbrella: self.umbrella,
            secrets: self.secrets.ok_or_else(missing)?,
            config: self.config,
            layout: self.layout,
            envs: self.envs,
            app_secrets: self.app_secrets,
            environments: self.environments,
            apps: self.apps,
        })
    }

    /// Whether `app` runs in `env` (always, without `environments/`).
    pub fn enables(&self, env: &str, app: &str) -> bool {
        self.environments.enables(env, app)
    }
}

/// The postgres values files, parsed on several threads when there are many.
fn load_env_values(layout: &Layout, bad: &mut Vec<Unreadable>) -> Result<Vec<EnvValues>> {
    let environments = layout.environments()?;
    let texts = environments
        .iter()
        .map(|env| read(&env.values))
        .collect::<Result<Vec<_>>>()?;
    let nesting = layout.nesting;
    let parsed = parse_all(&texts, |t| crate::files::values::parse(t, nesting));
    let mut out = Vec::new();
    for ((env, text), result) in environments.into_iter().zip(texts).zip(parsed) {
        match result {
            Ok(parsed) => out.push(EnvValues { env, text, parsed }),
            Err(e) => bad.push(Unreadable::managed(&env.values, e)),
        }
    }
    Ok(out)
}

/// `environments/values.yaml` and `values-ENV.yaml`: the enabled applications.
fn load_environments(layout: &Layout, bad: &mut Vec<Unreadable>) -> Environments {
    let dir = layout.phalanx.join("environments");
    let mut out = Environments::default();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return out;
    };
    let read_value =
        |file: &RepoFile, bad: &mut Vec<Unreadable>| -> Option<(String, serde_yaml::Value)> {
            let text = crate::fsio::read_text(&file.path)
                .map_err(|e| {
                    bad.push(Unreadable::other(
                        file,
                        FileError::whole(format!("cannot read: {e}")),
                    ))
                })
                .ok()?;
            let value = parse_yaml(&text)
                .map_err(|e| bad.push(Unreadable::other(file, e)))
                .ok()?;
            Some((text, value))
        };
    let defaults_file = RepoFile::new(&layout.phalanx, "environments/values.yaml");
    let defaults = if defaults_file.path.is_file() {
        read_value(&defaults_file, bad).map(|(_, v)| v)
    } else {
        None
    }
    .unwrap_or(serde_yaml::Value::Null);
    let mut names: Vec<(String, String)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let file = e.file_name().to_str()?.to_string();
            let env = file
                .strip_prefix("values-")?
                .strip_suffix(".yaml")?
                .to_string();
            Some((env, file))
        })
        .collect();
    names.sort();
    for (name, file) in names {
        let file = RepoFile::new(&layout.phalanx, &format!("environments/{file}"));
        if let Some((text, value)) = read_value(&file, bad) {
            let env = environments::EnvironmentApps {
                enabled: environments::enabled(&defaults, &value),
                lines: environments::switch_lines(&text),
                file,
            };
            out.envs.insert(name, env);
        }
    }
    out
}

/// Parses many texts, on several threads when there are many.
fn parse_all<T: Send>(
    texts: &[String],
    parse: impl Fn(&str) -> Result<T, FileError> + Sync,
) -> Vec<Result<T, FileError>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    if texts.len() < 8 || threads < 2 {
        return texts.iter().map(|t| parse(t)).collect();
    }
    let chunk = texts.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = texts
            .chunks(chunk)
            .map(|part| scope.spawn(|| part.iter().map(|t| parse(t)).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

impl Model {
    /// The secret key of a database entry (`gafaelfawr_db`): the one its template
    /// block reads, else the secret source's key its name implies, else
    /// `<name>_password`.
    pub fn secret_key_of_entry(&self, values_key: &str) -> String {
        let name = crate::names::name_of_values_key(values_key).unwrap_or(values_key);
        if let Some(key) = self
            .template
            .as_ref()
            .and_then(|t| t.parsed.block(values_key))
            .and_then(|b| b.secret_key())
        {
            return key.to_string();
        }
        let keys: Vec<String> = match &self.secrets {
            Some(Secrets::Generator(g)) => g.parsed.calls.iter().map(|c| c.key.clone()).collect(),
            Some(Secrets::Yaml(y)) => y.parsed.entries.iter().map(|e| e.key.clone()).collect(),
            _ => Vec::new(),
        };
        keys.into_iter()
            .find(|k| crate::files::helm_template::secret_key_matches(k, name))
            .unwrap_or_else(|| format!("{name}_password"))
    }
}

/// The model of the consumers test tree (`tests/fixtures/check/consumers`).
#[cfg(test)]
pub(crate) fn test_model() -> Model {
    let root = crate::config::workspace_root().join("tests/fixtures/check/consumers/phalanx");
    Model::load(Config::for_repositories(Some(root), None)).expect("the consumers fixture loads")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn the_loader_reads_every_side_and_sets_unparsable_files_aside() {
        let model = test_model();
        assert!(model.unreadable.is_empty());
        assert!(model.enables("idfdev", "postgres") && !model.enables("usdfprod", "postgres"));
        assert!(
            model.enables("usdfprod", "gafaelfawr"),
            "the default of environments/values.yaml"
        );
        assert_eq!(model.apps.len(), 5);
        assert_eq!(model.envs.len(), 3);
        assert_eq!(
            model.secret_key_of_entry("times_square_db"),
            "times_square_password"
        );
        // Another application's broken file is set aside, not fatal to the strict view.
        let dir = crate::config::workspace_root().join("target/tmp/model-unreadable");
        let _ = std::fs::remove_dir_all(&dir);
        copy(
            &crate::config::workspace_root().join("tests/fixtures/check/consumers/phalanx"),
            &dir,
        );
        std::fs::write(
            dir.join("applications/nublado/values-idfdev.yaml"),
            "hub: [\n",
        )
        .unwrap();
        let model = Model::load(Config::for_repositories(Some(dir.clone()), None)).unwrap();
        assert_eq!(model.unreadable.len(), 1);
        assert!(!model.unreadable[0].managed);
        assert!(model.strict().is_ok());
        std::fs::write(
            dir.join("applications/postgres/values-idfdev.yaml"),
            "a: [\n",
        )
        .unwrap();
        let err = Model::load(Config::for_repositories(Some(dir), None))
            .unwrap()
            .strict()
            .unwrap_err();
        assert!(err.to_string().contains("values-idfdev.yaml:"), "{err}");
    }

    /// Copies a fixture tree (for the tests that damage a copy of one).
    pub(crate) fn copy(from: &std::path::Path, to: &std::path::Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            let target = to.join(entry.file_name());
            if entry.path().is_dir() {
                copy(&entry.path(), &target);
            } else {
                std::fs::copy(entry.path(), target).unwrap();
            }
        }
    }
}
