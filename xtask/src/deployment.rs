//! A deployment read into memory: every managed file's text and parse.
//!
//! Commands that edit or report (`add-db`, `remove-db`, `list`, `runbook`,
//! `local-db`) load it strictly: the first unreadable or unparsable file stops them
//! with `path:line`. `check` reads the same files with the same parsers but turns
//! each failure into a finding.

use anyhow::Result;

use crate::config::Config;
use crate::error::bad_input;
use crate::files::{chart, generator, helm_template, secrets_yaml, values, FileError, FileResult};
use crate::layout::{Environment, Layout, RepoFile, SecretKind};

/// A file's text and what it says.
#[derive(Clone, Debug)]
pub struct Loaded<T> {
    pub file: RepoFile,
    pub text: String,
    pub parsed: T,
}

/// Where passwords come from.
#[derive(Clone, Debug)]
pub enum Secrets {
    Generator(Loaded<generator::Generator>),
    Yaml(Loaded<secrets_yaml::SecretsYaml>),
}

impl Secrets {
    pub fn file(&self) -> &RepoFile {
        match self {
            Secrets::Generator(g) => &g.file,
            Secrets::Yaml(y) => &y.file,
        }
    }

    /// How the source provides `key`, if it does: `generated`, `set by hand`,
    /// `copied from APP/KEY`.
    pub fn provision(&self, key: &str) -> Option<String> {
        match self {
            Secrets::Generator(g) => g.parsed.call(key).map(|c| {
                if c.generated {
                    "generated"
                } else {
                    "set by hand"
                }
                .to_string()
            }),
            Secrets::Yaml(y) => y.parsed.entry(key).map(|e| match &e.source {
                secrets_yaml::Source::Generate => "generated".to_string(),
                secrets_yaml::Source::Copy { application, key } => {
                    format!("copied from {application}/{key}")
                }
                secrets_yaml::Source::Manual => "set by hand".to_string(),
            }),
        }
    }
}

/// One environment's values file.
#[derive(Clone, Debug)]
pub struct EnvValues {
    pub env: Environment,
    pub text: String,
    pub parsed: values::ValuesFile,
}

#[derive(Clone, Debug)]
pub struct Deployment {
    pub config: Config,
    pub layout: Layout,
    pub template: Loaded<helm_template::Template>,
    pub chart: Loaded<chart::Chart>,
    pub umbrella: Option<Loaded<chart::Chart>>,
    pub secrets: Secrets,
    pub envs: Vec<EnvValues>,
}

/// Reads a managed file: a regular file of bounded size, without its byte order
/// mark and with LF line endings (see `fsio::read_text`).
pub fn read(file: &RepoFile) -> Result<String> {
    crate::fsio::read_text(&file.path).map_err(bad_input)
}

/// `path:line: message` for a file's problem.
pub fn locate(file: &RepoFile, error: &FileError) -> String {
    match error.line {
        Some(line) => format!("{file}:{line}: {}", error.message),
        None => format!("{file}: {}", error.message),
    }
}

/// Turns a file's problem into a bad-input error naming `path:line`.
pub fn bad_at(file: &RepoFile) -> impl Fn(FileError) -> anyhow::Error + '_ {
    move |e| bad_input(locate(file, &e))
}

/// Reads and parses a file, failing with `path:line`.
pub fn load<T>(file: &RepoFile, parse: impl Fn(&str) -> FileResult<T>) -> Result<Loaded<T>> {
    let text = read(file)?;
    let parsed = parse(&text).map_err(|e| bad_input(locate(file, &e)))?;
    Ok(Loaded {
        file: file.clone(),
        text,
        parsed,
    })
}

impl Deployment {
    /// Detects the layout and reads every managed file.
    pub fn load(config: Config) -> Result<Deployment> {
        let layout = Layout::detect(&config)?;
        let template = load(&layout.template, helm_template::parse)?;
        let chart = load(&layout.chart, chart::parse)?;
        let umbrella = layout
            .umbrella
            .as_ref()
            .map(|u| load(u, chart::parse))
            .transpose()?;
        let secrets = match layout.secret_kind {
            SecretKind::Generator => {
                Secrets::Generator(load(&layout.secret_source, generator::parse)?)
            }
            SecretKind::SecretsYaml => {
                Secrets::Yaml(load(&layout.secret_source, secrets_yaml::parse)?)
            }
        };
        let nesting = layout.nesting;
        let envs = layout
            .environments()?
            .into_iter()
            .map(|env| {
                let loaded = load(&env.values, |t| values::parse(t, nesting))?;
                Ok(EnvValues {
                    env,
                    text: loaded.text,
                    parsed: loaded.parsed,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Deployment {
            config,
            layout,
            template,
            chart,
            umbrella,
            secrets,
            envs,
        })
    }

    pub fn env(&self, name: &str) -> Option<&EnvValues> {
        self.envs.iter().find(|e| e.env.name == name)
    }

    /// The Vault path of an environment's `postgres` secret: from its values file,
    /// else from the environment's `vaultPathPrefix` in `environments/values-<env>.yaml`,
    /// else from `xtask.toml`'s `[vault_paths]`.
    pub fn vault_path(&self, env: &str) -> Option<String> {
        self.env(env)
            .and_then(|e| e.parsed.vault_path.clone())
            .or_else(|| {
                self.environment_vault_prefix(env)
                    .map(|p| format!("{}/postgres", p.trim_end_matches('/')))
            })
            .or_else(|| self.config.vault_paths.get(env).cloned())
    }

    fn environment_vault_prefix(&self, env: &str) -> Option<String> {
        let path = self
            .layout
            .phalanx
            .join(format!("environments/values-{env}.yaml"));
        let text = crate::fsio::read_text(&path).ok()?;
        let root: serde_yaml::Value = serde_yaml::from_str(&text).ok()?;
        root.get("vaultPathPrefix")
            .and_then(serde_yaml::Value::as_str)
            .map(str::to_string)
    }

    /// The secret key of a database: the one its template block reads, else the one
    /// its name implies (`vo-cutouts_password` may stand for `vo_cutouts_db`).
    pub fn secret_key_of(&self, db: &crate::names::DbName) -> String {
        self.template
            .parsed
            .block(&db.values_key())
            .and_then(|b| b.secret_key().map(str::to_string))
            .unwrap_or_else(|| db.secret_key())
    }
}
