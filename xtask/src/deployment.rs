//! A deployment read into memory, strictly: the view of [`crate::model::Model`]
//! that the commands that edit or report (`add-db`, `remove-db`, `list`,
//! `runbook`, `local-db`) use. The first unparsable managed file stops them with
//! `path:line`; `check` reads the same model and turns each failure into a finding.

use anyhow::Result;

use crate::config::Config;
use crate::error::bad_input;
use crate::files::{chart, generator, helm_template, secrets_yaml, values, FileError};
use crate::layout::{Environment, Layout, RepoFile};

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
    /// No secret source at all (the early split layout, before the generator): the
    /// passwords are put into Vault by hand. The file is where the generator would be.
    Absent(RepoFile),
}

impl Secrets {
    pub fn file(&self) -> &RepoFile {
        match self {
            Secrets::Generator(g) => &g.file,
            Secrets::Yaml(y) => &y.file,
            Secrets::Absent(file) => file,
        }
    }

    /// How the source provides `key`, if it does: `generated`, `set by hand`,
    /// `copied from APP/KEY`; without a source, every key is `in Vault by hand`.
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
            Secrets::Absent(_) => Some("in Vault by hand".to_string()),
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
    /// `applications/<app>/secrets.yaml` of every other application: where they
    /// copy postgres passwords.
    pub app_secrets: Vec<(String, Loaded<secrets_yaml::SecretsYaml>)>,
    /// Which applications each environment enables (`environments/`).
    pub environments: crate::model::Environments,
    /// Every application's values and secrets files (the other side).
    pub apps: std::collections::BTreeMap<String, crate::model::App>,
}

/// A place that copies a postgres password into another component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopySite {
    /// The component or application that holds the copy.
    pub consumer: String,
    pub file: RepoFile,
    /// 1-based.
    pub line: usize,
    /// How it reads, for messages: `self.secrets["postgres"]["K"]` or
    /// `copy: {application: postgres, key: K}`.
    pub what: String,
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

impl Deployment {
    /// Detects the layout and reads every managed file, strictly.
    pub fn load(config: Config) -> Result<Deployment> {
        crate::model::Model::load(config)?.strict()
    }

    /// The model again (the tolerant view), for the resolver and the consumers,
    /// which read the applications, `environments/` and the secret source but not
    /// postgres's values files: those (which may be large) are left out, not copied.
    pub fn model(&self) -> crate::model::Model {
        crate::model::Model {
            config: self.config.clone(),
            layout: self.layout.clone(),
            template: Some(self.template.clone()),
            chart: Some(self.chart.clone()),
            umbrella: self.umbrella.clone(),
            secrets: Some(self.secrets.clone()),
            envs: Vec::new(),
            app_secrets: self.app_secrets.clone(),
            environments: self.environments.clone(),
            apps: self.apps.clone(),
            unreadable: Vec::new(),
        }
    }

    pub fn env(&self, name: &str) -> Option<&EnvValues> {
        self.envs.iter().find(|e| e.env.name == name)
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

    /// Every place that copies the postgres password `secret_key` into another
    /// component: reads `self.secrets["postgres"][KEY]` in the generator's
    /// `def _<component>(self)` methods, and `copy: {application: postgres, key: KEY}`
    /// entries of `applications/<app>/secrets.yaml`.
    pub fn copies_of(&self, secret_key: &str) -> Vec<CopySite> {
        let mut out = Vec::new();
        if let Secrets::Generator(g) = &self.secrets {
            for copy in g.parsed.copies_of(secret_key) {
                out.push(CopySite {
                    consumer: copy.component.clone(),
                    file: g.file.clone(),
                    line: copy.line,
                    what: format!("`{}` reads `{}`", copy.function, copy.expression),
                });
            }
        }
        for (app, loaded) in &self.app_secrets {
            for entry in &loaded.parsed.entries {
                if let secrets_yaml::Source::Copy { application, key } = &entry.source {
                    if application == "postgres" && key == secret_key {
                        out.push(CopySite {
                            consumer: app.clone(),
                            file: loaded.file.clone(),
                            line: entry.line,
                            what: format!(
                                "`{}` is `copy: {{application: postgres, key: {secret_key}}}`",
                                entry.key
                            ),
                        });
                    }
                }
            }
        }
        out
    }

    /// The names of the components and applications that copy the postgres
    /// password `secret_key`, sorted, each once.
    pub fn consumers_of(&self, secret_key: &str) -> Vec<String> {
        let mut names: Vec<String> = self
            .copies_of(secret_key)
            .into_iter()
            .map(|c| c.consumer)
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(phalanx: &str, charts: Option<&str>) -> Config {
        let root = crate::config::workspace_root();
        Config::for_repositories(Some(root.join(phalanx)), charts.map(|c| root.join(c)))
    }

    #[test]
    fn consumers_in_the_generator_are_the_methods_that_read_the_key() {
        let dep = Deployment::load(config("sample/phalanx", Some("sample/charts"))).unwrap();
        assert_eq!(dep.consumers_of("gafaelfawr_password"), ["gafaelfawr"]);
        assert_eq!(dep.consumers_of("jupyterhub_password"), ["nublado"]);
        assert!(dep.consumers_of("narrativelog_password").is_empty());
        let copy = &dep.copies_of("gafaelfawr_password")[0];
        assert_eq!(copy.file.relative, "installer/generate_secrets.py");
        let Secrets::Generator(g) = &dep.secrets else {
            panic!("the sample has a generator")
        };
        let line = g.text.lines().nth(copy.line - 1).unwrap();
        assert!(
            line.contains("self.secrets[\"postgres\"][\"gafaelfawr_password\"]"),
            "{line}"
        );
    }

    #[test]
    fn consumers_in_applications_are_their_copy_entries() {
        let dep = Deployment::load(config(
            "tests/fixtures/layouts/applications-copies/phalanx",
            None,
        ))
        .unwrap();
        assert_eq!(dep.consumers_of("gafaelfawr_password"), ["gafaelfawr"]);
        assert_eq!(dep.consumers_of("times_square_password"), ["times-square"]);
        assert!(dep.consumers_of("root_password").is_empty());
        let copy = &dep.copies_of("times_square_password")[0];
        assert_eq!(
            (copy.file.relative.as_str(), copy.line),
            ("applications/times-square/secrets.yaml", 1)
        );
    }
}
