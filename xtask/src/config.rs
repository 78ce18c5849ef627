//! `xtask.toml`: where the managed repositories are, and the Vault address.
//!
//! ```toml
//! phalanx = "sample/phalanx"      # relative to this file
//! charts = "sample/charts"        # only for the split layout
//! vault_addr = "https://vault.lsst.codes"
//! local_env = "base"              # local-db's default environment
//! [vault_paths]                   # when a values file names no Vault path
//! base = "secret/k8s_operator/base-lsp.lsst.codes/postgres"
//! [kube_contexts]                 # the kubectl context of each environment
//! base = "base-cluster"
//! ```
//!
//! Which repositories a command works on is decided by `load` (see there): `--phalanx`,
//! else the deployment repository around the current folder, else this file's keys.
//! The file is searched from the current folder upwards, never elsewhere.

use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml_edit::{DocumentMut, Item, Value};

use crate::error::bad_input;

pub const FILE_NAME: &str = "xtask.toml";
pub const DEFAULT_VAULT_ADDR: &str = "https://vault.lsst.codes";

/// The settings a command runs with.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file the settings came from, if any.
    pub file: Option<PathBuf>,
    /// The deployment repository, absolute.
    pub phalanx: Option<PathBuf>,
    /// The charts repository (split layout), absolute.
    pub charts: Option<PathBuf>,
    pub vault_addr: String,
    pub local_env: Option<String>,
    pub vault_paths: BTreeMap<String, String>,
    /// `[kube_contexts]`: the runbook's `kubectl --context` per environment.
    pub kube_contexts: BTreeMap<String, String>,
}

impl Config {
    /// The defaults of every setting, for these repositories (no `xtask.toml`).
    pub fn for_repositories(phalanx: Option<PathBuf>, charts: Option<PathBuf>) -> Config {
        Config {
            file: None,
            phalanx,
            charts,
            vault_addr: DEFAULT_VAULT_ADDR.to_string(),
            local_env: None,
            vault_paths: BTreeMap::new(),
            kube_contexts: BTreeMap::new(),
        }
    }

    /// The repositories an edit locks: the deployment's, then the charts'.
    pub fn repositories(&self) -> Vec<&Path> {
        [&self.phalanx, &self.charts]
            .into_iter()
            .flatten()
            .map(PathBuf::as_path)
            .collect()
    }
}

/// The workspace this xtask was built in: the embedded default's home.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// The first `xtask.toml` in `start` or one of its ancestors. Only ancestors:
/// the workspace's own file is found from inside the workspace and nowhere else.
pub fn find_file_from(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join(FILE_NAME))
        .find(|p| p.is_file())
}

/// Whether `dir` holds a deployment: `applications/postgres/` or `services/postgres/`.
pub fn is_deployment(dir: &Path) -> bool {
    dir.join("applications/postgres").is_dir() || dir.join("services/postgres").is_dir()
}

/// The deployment repository containing `start`: the first of it and its ancestors
/// that holds a deployment.
pub fn deployment_containing(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|dir| is_deployment(dir))
        .map(Path::to_path_buf)
}

/// The split layout's charts repository beside a deployment: `../charts` holding
/// `charts/postgres/`.
pub fn sibling_charts(phalanx: &Path) -> Option<PathBuf> {
    let charts = phalanx.parent()?.join("charts");
    charts.join("charts/postgres").is_dir().then_some(charts)
}

fn current_dir() -> Result<PathBuf> {
    std::env::current_dir().map_err(|e| bad_input(format!("cannot read the current folder: {e}")))
}

/// `path` made absolute against the current folder and normalized (see `normalize`),
/// without resolving symbolic links.
fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path)
        .map(|p| normalize(&p))
        .map_err(|e| bad_input(format!("{}: cannot resolve: {e}", path.display())))
}

/// Reads the settings and decides which repositories to work on, in this order:
///
/// 1. `--phalanx DIR` (charts: `--charts DIR`, else a sibling `../charts`);
/// 2. the deployment repository containing the current folder (charts: `--charts`,
///    else the `charts` key of the `xtask.toml` found above the current folder, else
///    a sibling `../charts`). That file counts only when it lies inside the repository
///    or its `phalanx` key names the repository; any other is ignored, settings too;
/// 3. the `phalanx` and `charts` keys of the `xtask.toml` found above the current
///    folder (`--charts` replaces the latter; without either, a sibling `../charts`).
///
/// Otherwise it refuses with exit 2 and says how to name a repository. The settings
/// other than the locations (Vault address, `local_env`, `[vault_paths]`) always come
/// from that same `xtask.toml`, when there is one.
pub fn load(phalanx: Option<PathBuf>, charts: Option<PathBuf>) -> Result<Config> {
    let cwd = current_dir()?;
    let mut config = read(find_file_from(&cwd))?;
    let charts = charts.map(|c| absolute(&c)).transpose()?;
    if let Some(phalanx) = phalanx {
        let phalanx = absolute(&phalanx)?;
        config.charts = charts.or_else(|| sibling_charts(&phalanx));
        config.phalanx = Some(phalanx);
    } else if let Some(phalanx) = deployment_containing(&cwd) {
        // An `xtask.toml` above the repository that names another one (say, this
        // workspace's own, naming its sample) says nothing about this repository.
        let concerns_it = config
            .file
            .as_ref()
            .is_some_and(|f| f.starts_with(&phalanx))
            || config.phalanx.as_deref() == Some(phalanx.as_path());
        if !concerns_it {
            config = read(None)?;
        }
        config.charts = charts
            .or_else(|| config.charts.take())
            .or_else(|| sibling_charts(&phalanx));
        config.phalanx = Some(phalanx);
    } else if let Some(phalanx) = config.phalanx.clone() {
        config.charts = charts
            .or(config.charts.take())
            .or_else(|| sibling_charts(&phalanx));
    } else {
        return Err(no_repository(&cwd, config.file.as_deref()));
    }
    Ok(config)
}

/// The refusal when nothing names a deployment repository.
fn no_repository(cwd: &Path, file: Option<&Path>) -> anyhow::Error {
    let program = crate::flags::program_name();
    let here = match (file, cwd.ancestors().find(|d| d.join(".git").exists())) {
        (Some(file), _) => format!(
            "{} names no `phalanx` repository, and {} is not inside a deployment repository",
            file.display(),
            cwd.display()
        ),
        (None, Some(git)) => format!(
            "{} is a git repository but not a deployment repository (it has neither \
             applications/postgres/ nor services/postgres/), and no {FILE_NAME} is above {}",
            git.display(),
            cwd.display()
        ),
        (None, None) => format!(
            "{} is not inside a deployment repository (no applications/postgres/ or \
             services/postgres/ in it or above it), and no {FILE_NAME} is above it",
            cwd.display()
        ),
    };
    bad_input(format!(
        "no deployment repository: {here}; cd into the repository, give --phalanx DIR \
         (and --charts DIR for the split layout), or write {FILE_NAME} with \
         `{program} init --phalanx DIR`"
    ))
}

/// Reads one `xtask.toml`, or returns the defaults without one. Its `phalanx` and
/// `charts` keys are resolved against the file's folder.
fn read(file: Option<PathBuf>) -> Result<Config> {
    let mut config = Config::for_repositories(None, None);
    let Some(file) = file else {
        return Ok(config);
    };
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    let doc: DocumentMut = text
        .parse()
        .map_err(|e| bad_input(format!("{}: not valid TOML: {e}", file.display())))?;
    refuse_unknown_keys(&doc, &file)?;
    let base = file.parent().unwrap_or(Path::new("."));
    let string = |key: &str| -> Result<Option<String>> {
        match doc.get(key) {
            None => Ok(None),
            Some(item) => item
                .as_str()
                .map(|s| Some(s.to_string()))
                .ok_or_else(|| bad_input(format!("{}: `{key}` must be a string", file.display()))),
        }
    };
    config.phalanx = string("phalanx")?.map(|p| normalize(&base.join(p)));
    config.charts = string("charts")?.map(|p| normalize(&base.join(p)));
    if let Some(addr) = string("vault_addr")? {
        config.vault_addr = addr;
    }
    config.local_env = string("local_env")?;
    config.vault_paths = string_table(&doc, &file, "vault_paths")?;
    config.kube_contexts = string_table(&doc, &file, "kube_contexts")?;
    config.file = Some(file);
    Ok(config)
}

/// Every key `xtask.toml` may hold.
pub const KNOWN_KEYS: &[&str] = &[
    "phalanx",
    "charts",
    "vault_addr",
    "local_env",
    "vault_paths",
    "kube_contexts",
];

/// A misspelt key would otherwise be ignored without a word (`kube_context`).
fn refuse_unknown_keys(doc: &DocumentMut, file: &Path) -> Result<()> {
    for (key, _) in doc.iter() {
        if !KNOWN_KEYS.contains(&key) {
            let hint = crate::flags::suggestion(key, KNOWN_KEYS.iter().copied(), "");
            return Err(bad_input(format!(
                "{}: unknown key `{key}`{hint}; the keys are {}",
                file.display(),
                KNOWN_KEYS.join(", ")
            )));
        }
    }
    Ok(())
}

/// A table of strings (`[vault_paths]`, `[kube_contexts]`), empty when absent.
fn string_table(doc: &DocumentMut, file: &Path, name: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    if let Some(table) = doc.get(name).and_then(Item::as_table_like) {
        for (key, item) in table.iter() {
            let value = item.as_str().ok_or_else(|| {
                bad_input(format!(
                    "{}: `{name}.{key}` must be a string",
                    file.display()
                ))
            })?;
            out.insert(key.to_string(), value.to_string());
        }
    }
    Ok(out)
}

/// `path` without `.` components, and with each `..` removing the component before
/// it when there is one, so that printed paths stay short.
pub fn normalize(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// `path` relative to `base` (both absolute), with `..` steps where needed; the
/// absolute path when they share no root.
pub fn relative_path(base: &Path, path: &Path) -> PathBuf {
    let (base, path_normal) = (normalize(base), normalize(path));
    let base: Vec<_> = base.components().collect();
    let path_parts: Vec<_> = path_normal.components().collect();
    let common = base
        .iter()
        .zip(&path_parts)
        .take_while(|(a, b)| a == b)
        .count();
    if common == 0 {
        return path.to_path_buf();
    }
    let mut out = PathBuf::new();
    for _ in common..base.len() {
        out.push("..");
    }
    for part in &path_parts[common..] {
        out.push(part);
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// Rewrites the keys `phalanx`, `charts` (when given) and `vault_addr` of an
/// `xtask.toml`, keeping its comments and every other key.
pub fn update_text(
    text: &str,
    phalanx: &str,
    charts: Option<&str>,
    vault_addr: Option<&str>,
) -> Result<String> {
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e| bad_input(format!("{FILE_NAME}: not valid TOML: {e}")))?;
    set_keeping_decor(&mut doc, "phalanx", phalanx);
    if let Some(charts) = charts {
        set_keeping_decor(&mut doc, "charts", charts);
    }
    // Only what `init` was given: the built-in Vault address stays a default, unwritten.
    if let Some(addr) = vault_addr {
        set_keeping_decor(&mut doc, "vault_addr", addr);
    }
    Ok(doc.to_string())
}

fn set_keeping_decor(doc: &mut DocumentMut, key: &str, value: &str) {
    match doc.get_mut(key).and_then(Item::as_value_mut) {
        Some(old) => {
            let decor = old.decor().clone();
            *old = Value::from(value);
            *old.decor_mut() = decor;
        }
        None => {
            doc.insert(key, Item::Value(Value::from(value)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_keeps_comments_and_other_keys() {
        let text = "# where things are\nphalanx = \"old\" # the deployment\ncharts = \"c\"\nlocal_env = \"base\"\n\n[vault_paths]\n# idf\nidf = \"secret/x\"\n";
        let out = update_text(text, "../phalanx", Some("../charts"), None).unwrap();
        assert!(out.contains("# where things are\nphalanx = \"../phalanx\" # the deployment\ncharts = \"../charts\"\n"), "{out}");
        assert!(out.contains("local_env = \"base\""));
        assert!(out.contains("[vault_paths]\n# idf\nidf = \"secret/x\""));
        assert!(!out.contains("vault_addr"), "{out}");
        let out = update_text(&out, "p", None, Some("https://vault.example")).unwrap();
        assert!(
            out.contains("phalanx = \"p\" # the deployment\ncharts = \"../charts\"\n"),
            "{out}"
        );
        assert!(out.contains("vault_addr = \"https://vault.example\""));
    }

    #[test]
    fn bad_toml_is_bad_input() {
        assert!(update_text("phalanx = ", "p", None, None).is_err());
    }
}
