//! Which of the three repository layouts a deployment uses, and where its files are.
//!
//! | layout | chart | values | secret source |
//! |---|---|---|---|
//! | `split` | `<charts>/charts/postgres/` | `services/postgres/`, under `postgres:` | generator |
//! | `in-tree` | `services/postgres/` | `services/postgres/`, top level | generator |
//! | `applications` | `applications/postgres/` | `applications/postgres/`, top level | `secrets.yaml` or generator |

use anyhow::Result;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::error::bad_input;
use crate::files::values::Nesting;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Split,
    InTree,
    Applications,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Split => "split",
            Kind::InTree => "in-tree",
            Kind::Applications => "applications",
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretKind {
    /// `installer/generate_secrets.py`
    Generator,
    /// `applications/postgres/secrets.yaml`
    SecretsYaml,
}

/// A file of a repository: its full path and its path inside the repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoFile {
    pub path: PathBuf,
    pub relative: String,
}

impl RepoFile {
    pub fn new(root: &Path, relative: &str) -> RepoFile {
        RepoFile {
            path: root.join(relative),
            relative: relative.to_string(),
        }
    }
}

impl fmt::Display for RepoFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())
    }
}

/// The detected layout and its files.
#[derive(Clone, Debug)]
pub struct Layout {
    pub kind: Kind,
    pub phalanx: PathBuf,
    pub charts: Option<PathBuf>,
    pub template: RepoFile,
    pub chart: RepoFile,
    /// The file that declares the umbrella chart's dependency on `postgres` (`split`
    /// only): `services/postgres/Chart.yaml`, or `requirements.yaml` beside it in a
    /// Helm 2 chart.
    pub umbrella: Option<RepoFile>,
    pub values_dir: RepoFile,
    pub secret_kind: SecretKind,
    /// Where the passwords come from; it may be absent (`secret_source_present`):
    /// before the generator existed (the early split layout), passwords were put
    /// into Vault by hand.
    pub secret_source: RepoFile,
    pub secret_source_present: bool,
    pub nesting: Nesting,
    /// `values-<env>.yaml` files in a postgres folder without a chart, beside the
    /// folder that has one: never deployed (`stray-values-file`).
    pub stray_values: Vec<RepoFile>,
}

/// One environment: its name and values file.
#[derive(Clone, Debug)]
pub struct Environment {
    pub name: String,
    pub values: RepoFile,
}

/// Where the umbrella chart declares its dependencies: `Chart.yaml`, or in a Helm 2
/// chart (whose `Chart.yaml` has no `dependencies:`) `requirements.yaml`.
fn umbrella_of(phalanx: &Path) -> RepoFile {
    let chart = RepoFile::new(phalanx, "services/postgres/Chart.yaml");
    let requirements = RepoFile::new(phalanx, "services/postgres/requirements.yaml");
    let declares = |file: &RepoFile| {
        std::fs::read_to_string(&file.path)
            .is_ok_and(|text| text.lines().any(|l| l.trim_end() == "dependencies:"))
    };
    if !declares(&chart) && declares(&requirements) {
        requirements
    } else {
        chart
    }
}

/// Fails with the reason when a folder cannot be listed or entered (permissions),
/// rather than letting its files look missing.
fn readable_dir(dir: &Path, what: &str) -> Result<()> {
    std::fs::read_dir(dir)
        .and_then(|_| std::fs::metadata(dir.join(".")))
        .map(|_| ())
        .map_err(|e| bad_input(format!("{}: cannot read {what}: {e}", dir.display())))
}

fn template_in(root: &Path, chart_dir: &str) -> Option<RepoFile> {
    ["yaml", "yml"]
        .iter()
        .map(|ext| RepoFile::new(root, &format!("{chart_dir}/templates/deployment.{ext}")))
        .find(|f| f.path.is_file())
}

/// The `values-<env>.yaml` (or `.yml`) files of a folder, with their environments,
/// sorted by environment.
/// Says once per run that a `values-*.yaml` file whose name is no environment
/// name (a line break, a `;`, an escape...) is skipped: such a name would reach
/// shell lines, so it never becomes an environment.
fn warn_skipped(file: &str, problem: &str) {
    static WARNED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut warned = WARNED.lock().unwrap_or_else(|e| e.into_inner());
    if !warned.iter().any(|w| w == file) {
        eprintln!(
            "warning: {}: skipped, not an environment: {problem}; rename the file",
            crate::shell::escape(file)
        );
        warned.push(file.to_string());
    }
}

/// The environment a file `values-<env>.yaml` (or `.yml`) is for.
fn env_of_file_name(file_name: &str) -> Option<&str> {
    let env = file_name.strip_prefix("values-")?;
    env.strip_suffix(".yaml")
        .or_else(|| env.strip_suffix(".yml"))
}

fn values_files_in(root: &Path, dir: &str) -> Result<Vec<(String, RepoFile)>> {
    let full = root.join(dir);
    let entries = std::fs::read_dir(&full)
        .map_err(|e| bad_input(format!("{}: cannot list: {e}", full.display())))?;
    let mut out: Vec<(String, RepoFile)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let file_name = e.file_name().to_string_lossy().into_owned();
            let env = env_of_file_name(&file_name)?;
            if let Some(problem) = crate::names::env_name_problem(env) {
                warn_skipped(&format!("{dir}/{file_name}"), &problem);
                return None;
            }
            Some((
                env.to_string(),
                RepoFile::new(root, &format!("{dir}/{file_name}")),
            ))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.path.cmp(&b.1.path)));
    if let Some(pair) = out.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(bad_input(format!(
            "{} and {} both hold the values of the environment `{}`; keep one of them",
            pair[0].1, pair[1].1, pair[0].0
        )));
    }
    Ok(out)
}

/// Which postgres folders a repository has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Folders {
    /// `applications/postgres/`
    applications: bool,
    /// `services/postgres/`
    services: bool,
}

impl Folders {
    /// The postgres folders of `phalanx`, each checked to be readable, and the
    /// `--charts` repository where it exists.
    fn find(phalanx: &Path, config: &Config) -> Result<Folders> {
        let folders = Folders {
            applications: phalanx.join("applications/postgres").is_dir(),
            services: phalanx.join("services/postgres").is_dir(),
        };
        for (exists, dir) in [
            (folders.applications, "applications/postgres"),
            (folders.services, "services/postgres"),
        ] {
            if exists {
                readable_dir(&phalanx.join(dir), "the postgres application")?;
            }
        }
        if let Some(charts) = &config.charts {
            if charts.is_dir() {
                readable_dir(charts, "the --charts repository")?;
            }
        }
        Ok(folders)
    }

    /// A folder holding only values files beside the other one's chart is a
    /// leftover: the folder with the chart is the layout. Returns the folders
    /// that count and the leftover one, if any.
    fn without_stray(self, has_chart: impl Fn(&str) -> bool) -> (Folders, Option<&'static str>) {
        if !(self.applications && self.services) {
            return (self, None);
        }
        match (
            has_chart("applications/postgres"),
            has_chart("services/postgres"),
        ) {
            (true, false) => (
                Folders {
                    services: false,
                    ..self
                },
                Some("services/postgres"),
            ),
            (false, true) => (
                Folders {
                    applications: false,
                    ..self
                },
                Some("applications/postgres"),
            ),
            _ => (self, None),
        }
    }
}

/// Where a layout keeps its chart and its values files.
struct Place {
    kind: Kind,
    /// The repository that holds the chart.
    chart_root: PathBuf,
    /// The chart's folder inside `chart_root`.
    chart_dir: &'static str,
    /// The values files' folder inside the deployment repository.
    values_dir: &'static str,
}

impl Place {
    /// The layout the postgres folders make, or why they make none.
    fn of(phalanx: &Path, config: &Config, folders: Folders) -> Result<Place> {
        let place = |kind, chart_root: &Path, chart_dir, values_dir| Place {
            kind,
            chart_root: chart_root.to_path_buf(),
            chart_dir,
            values_dir,
        };
        match (folders.applications, folders.services) {
            (true, true) => Err(bad_input(format!(
                "{}: both applications/postgres/ and services/postgres/ exist, so the layout is ambiguous; \
                 remove the stale one",
                phalanx.display()
            ))),
            (true, false) => Ok(place(Kind::Applications, phalanx, "applications/postgres", "applications/postgres")),
            (false, true) if template_in(phalanx, "services/postgres").is_some() => {
                Ok(place(Kind::InTree, phalanx, "services/postgres", "services/postgres"))
            }
            (false, true) => {
                let charts = config.charts.clone().ok_or_else(|| {
                    bad_input(format!(
                        "{}: services/postgres/ has no templates/deployment.yaml, so the chart lives in a separate \
                         charts repository (the split layout); give --charts DIR, put that repository at {} (found \
                         there when it holds charts/postgres/), or name it in xtask.toml (`charts = \"DIR\"`)",
                        phalanx.display(),
                        phalanx
                            .parent()
                            .map_or_else(|| "../charts".into(), |p| p.join("charts").display().to_string())
                    ))
                })?;
                Ok(place(Kind::Split, &charts, "charts/postgres", "services/postgres"))
            }
            (false, false) => Err(bad_input(format!(
                "{}: found neither applications/postgres/ nor services/postgres/; is this a Phalanx repository?",
                phalanx.display()
            ))),
        }
    }
}

/// The configured deployment repository, which must be a readable folder.
fn phalanx_of(config: &Config) -> Result<PathBuf> {
    let phalanx = config.phalanx.clone().ok_or_else(|| {
        bad_input(format!(
            "no deployment repository: give --phalanx DIR, or run `{} init --phalanx DIR`",
            crate::flags::program_name()
        ))
    })?;
    if !phalanx.is_dir() {
        return Err(bad_input(format!(
            "{}: no such folder (the --phalanx repository)",
            phalanx.display()
        )));
    }
    readable_dir(&phalanx, "the --phalanx repository")?;
    Ok(phalanx)
}

/// Where the passwords come from: `secrets.yaml` in the applications layout when
/// it exists, else the generator (which may be absent).
fn secret_source_of(phalanx: &Path, kind: Kind) -> (SecretKind, RepoFile) {
    let generator = RepoFile::new(phalanx, "installer/generate_secrets.py");
    let secrets_yaml = RepoFile::new(phalanx, "applications/postgres/secrets.yaml");
    if kind == Kind::Applications && secrets_yaml.path.is_file() {
        (SecretKind::SecretsYaml, secrets_yaml)
    } else {
        (SecretKind::Generator, generator)
    }
}

impl Layout {
    /// Detects the layout of the configured repositories.
    pub fn detect(config: &Config) -> Result<Layout> {
        let phalanx = phalanx_of(config)?;
        let has_chart = |dir: &str| {
            let dir = phalanx.join(dir);
            dir.join("Chart.yaml").is_file() || dir.join("templates").is_dir()
        };
        let (folders, stray_dir) = Folders::find(&phalanx, config)?.without_stray(has_chart);
        let Place {
            kind,
            chart_root,
            chart_dir,
            values_dir,
        } = Place::of(&phalanx, config, folders)?;
        let template = template_in(&chart_root, chart_dir).ok_or_else(|| {
            bad_input(format!(
                "{}: missing {chart_dir}/templates/deployment.yaml (or .yml) of the {kind} layout",
                chart_root.display()
            ))
        })?;
        let (secret_kind, secret_source) = secret_source_of(&phalanx, kind);
        let mut layout = Layout {
            kind,
            charts: (kind == Kind::Split).then(|| chart_root.clone()),
            chart: RepoFile::new(&chart_root, &format!("{chart_dir}/Chart.yaml")),
            umbrella: (kind == Kind::Split).then(|| umbrella_of(&phalanx)),
            values_dir: RepoFile::new(&phalanx, values_dir),
            nesting: if kind == Kind::Split {
                Nesting::UnderPostgres
            } else {
                Nesting::TopLevel
            },
            phalanx,
            template,
            secret_kind,
            secret_source_present: secret_source.path.is_file(),
            secret_source,
            stray_values: Vec::new(),
        };
        if let Some(dir) = stray_dir {
            layout.stray_values = values_files_in(&layout.phalanx, dir)?
                .into_iter()
                .map(|(_, file)| file)
                .collect();
        }
        layout.require_chart_files()?;
        Ok(layout)
    }

    /// Fails when the chart's `Chart.yaml` or, in the split layout, the umbrella's
    /// dependency file is missing.
    fn require_chart_files(&self) -> Result<()> {
        let kind = self.kind;
        for required in [Some(&self.chart), self.umbrella.as_ref()]
            .into_iter()
            .flatten()
        {
            if !required.path.is_file() {
                return Err(bad_input(format!(
                    "{required}: missing, but the {kind} layout needs it"
                )));
            }
        }
        Ok(())
    }

    /// The `values-*.yaml` files skipped because their name is no environment name:
    /// each file (repository-relative) with the reason, sorted (`bad-environment-name`).
    pub fn skipped_environment_files(&self) -> Vec<(String, String)> {
        let dir = &self.values_dir.relative;
        let Ok(entries) = std::fs::read_dir(self.phalanx.join(dir)) else {
            return Vec::new();
        };
        let mut out: Vec<(String, String)> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let file_name = e.file_name().to_string_lossy().into_owned();
                let env = env_of_file_name(&file_name)?;
                let problem = crate::names::env_name_problem(env)?;
                Some((format!("{dir}/{file_name}"), problem))
            })
            .collect();
        out.sort();
        out
    }

    /// Every environment, from the `values-<env>.yaml` (or `.yml`) files, sorted.
    pub fn environments(&self) -> Result<Vec<Environment>> {
        Ok(values_files_in(&self.phalanx, &self.values_dir.relative)?
            .into_iter()
            .map(|(name, values)| Environment { name, values })
            .collect())
    }

    /// The environments named on the command line.
    pub fn select_environments(&self, names: &[String]) -> Result<Vec<Environment>> {
        let envs = self.environments()?;
        let known = || {
            envs.iter()
                .map(|e| e.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut chosen = Vec::new();
        for name in names {
            let env = envs.iter().find(|e| &e.name == name).ok_or_else(|| {
                bad_input(format!(
                    "unknown environment `{name}`: {} has no values-{name}.yaml; environments: {}",
                    self.values_dir,
                    known()
                ))
            })?;
            if !chosen.iter().any(|c: &Environment| c.name == env.name) {
                chosen.push(env.clone());
            }
        }
        Ok(chosen)
    }

    /// `applications/<app>/secrets.yaml`, whether or not it exists.
    pub fn application_secrets_file(&self, app: &str) -> RepoFile {
        RepoFile::new(&self.phalanx, &format!("applications/{app}/secrets.yaml"))
    }

    /// `applications/<app>/secrets.yaml` of every application but postgres, sorted.
    pub fn application_secrets(&self) -> Vec<(String, RepoFile)> {
        let Ok(entries) = std::fs::read_dir(self.phalanx.join("applications")) else {
            return Vec::new();
        };
        let mut out: Vec<(String, RepoFile)> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let app = e.file_name().to_str()?.to_string();
                let file =
                    RepoFile::new(&self.phalanx, &format!("applications/{app}/secrets.yaml"));
                (app != "postgres" && file.path.is_file()).then_some((app, file))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Whether the chart is published, so that its version moves with every change.
    pub fn publishes_chart(&self) -> bool {
        self.kind == Kind::Split
    }
}

/// The line every command prints on stderr: which repositories, which layout (the
/// charts repository only where the layout uses it).
pub fn describe(config: &Config, layout: Option<Kind>) -> String {
    let mut line = String::from("using phalanx ");
    if let Some(phalanx) = &config.phalanx {
        line.push_str(&phalanx.display().to_string());
    }
    if let Some(kind) = layout {
        line.push_str(&format!(" ({kind} layout)"));
    }
    let charts_used = layout.is_none_or(|k| k == Kind::Split);
    if let (Some(charts), true) = (&config.charts, charts_used) {
        line.push_str(&format!(", charts {}", charts.display()));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: Folders = Folders {
        applications: true,
        services: true,
    };

    #[test]
    fn a_single_folder_is_never_a_leftover() {
        for folders in [
            Folders {
                applications: true,
                services: false,
            },
            Folders {
                applications: false,
                services: true,
            },
        ] {
            assert_eq!(folders.without_stray(|_| false), (folders, None));
        }
    }

    #[test]
    fn the_folder_without_the_chart_is_the_leftover() {
        let (folders, stray) = BOTH.without_stray(|dir| dir == "applications/postgres");
        assert_eq!(
            (folders.applications, folders.services, stray),
            (true, false, Some("services/postgres"))
        );
        let (folders, stray) = BOTH.without_stray(|dir| dir == "services/postgres");
        assert_eq!(
            (folders.applications, folders.services, stray),
            (false, true, Some("applications/postgres"))
        );
    }

    #[test]
    fn two_charts_or_none_stay_ambiguous() {
        assert_eq!(BOTH.without_stray(|_| true), (BOTH, None));
        assert_eq!(BOTH.without_stray(|_| false), (BOTH, None));
    }

    #[test]
    fn only_the_applications_layout_reads_secrets_yaml() {
        let scratch = std::env::temp_dir().join(format!("pgdb-layout-{}", std::process::id()));
        let folder = scratch.join("applications/postgres");
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join("secrets.yaml"), "").unwrap();
        let (kind, file) = secret_source_of(&scratch, Kind::Applications);
        assert_eq!(kind, SecretKind::SecretsYaml);
        assert_eq!(file.relative, "applications/postgres/secrets.yaml");
        for layout in [Kind::Split, Kind::InTree] {
            let (kind, file) = secret_source_of(&scratch, layout);
            assert_eq!(kind, SecretKind::Generator);
            assert_eq!(file.relative, "installer/generate_secrets.py");
        }
        std::fs::remove_dir_all(&scratch).unwrap();
        let (kind, _) = secret_source_of(&scratch, Kind::Applications);
        assert_eq!(kind, SecretKind::Generator);
    }
}
