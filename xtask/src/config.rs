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
//! `--phalanx` (with `--charts`, or none) replaces the configured pair.

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
    pub phalanx: Option<PathBuf>,
    pub charts: Option<PathBuf>,
    pub vault_addr: String,
    pub local_env: Option<String>,
    pub vault_paths: BTreeMap<String, String>,
}

impl Config {
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

/// `xtask.toml` in the current folder or an ancestor, else the workspace's own.
pub fn find_file() -> Option<PathBuf> {
    let cwd = std::env::current_dir().ok()?;
    cwd.ancestors()
        .map(|dir| dir.join(FILE_NAME))
        .chain(std::iter::once(workspace_root().join(FILE_NAME)))
        .find(|p| p.is_file())
}

/// Reads the settings, with `--phalanx`/`--charts` applied.
pub fn load(phalanx: Option<PathBuf>, charts: Option<PathBuf>) -> Result<Config> {
    let mut config = Config {
        file: None,
        phalanx: None,
        charts: None,
        vault_addr: DEFAULT_VAULT_ADDR.to_string(),
        local_env: None,
        vault_paths: BTreeMap::new(),
    };
    if let Some(file) = find_file() {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let doc: DocumentMut = text
            .parse()
            .map_err(|e| bad_input(format!("{}: not valid TOML: {e}", file.display())))?;
        let base = file.parent().unwrap_or(Path::new("."));
        let string = |key: &str| -> Result<Option<String>> {
            match doc.get(key) {
                None => Ok(None),
                Some(item) => item.as_str().map(|s| Some(s.to_string())).ok_or_else(|| {
                    bad_input(format!("{}: `{key}` must be a string", file.display()))
                }),
            }
        };
        config.phalanx = string("phalanx")?.map(|p| base.join(p));
        config.charts = string("charts")?.map(|p| base.join(p));
        if let Some(addr) = string("vault_addr")? {
            config.vault_addr = addr;
        }
        config.local_env = string("local_env")?;
        config.vault_paths = string_table(&doc, &file, "vault_paths")?;
        config.file = Some(file);
    }
    if let Some(phalanx) = phalanx {
        config.phalanx = Some(phalanx);
        config.charts = charts;
    } else if charts.is_some() {
        config.charts = charts;
    }
    Ok(config)
}

/// `[kube_contexts]`: the runbook's `kubectl --context` per environment (read
/// apart from `load`, as only the runbook needs it).
pub fn kube_contexts(config: &Config) -> Result<BTreeMap<String, String>> {
    let Some(file) = &config.file else {
        return Ok(BTreeMap::new());
    };
    let text =
        std::fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    let doc: DocumentMut = text
        .parse()
        .map_err(|e| bad_input(format!("{}: not valid TOML: {e}", file.display())))?;
    string_table(&doc, file, "kube_contexts")
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

/// Rewrites the keys `phalanx`, `charts` and `vault_addr` of an `xtask.toml`,
/// keeping its comments and every other key.
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
    match charts {
        Some(charts) => set_keeping_decor(&mut doc, "charts", charts),
        None => {
            doc.remove("charts");
        }
    }
    if let Some(addr) = vault_addr {
        set_keeping_decor(&mut doc, "vault_addr", addr);
    } else if doc.get("vault_addr").is_none() {
        set_keeping_decor(&mut doc, "vault_addr", DEFAULT_VAULT_ADDR);
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
        assert!(out.contains("vault_addr = \"https://vault.lsst.codes\""));
        let out = update_text(&out, "p", None, Some("https://vault.example")).unwrap();
        assert!(!out.contains("charts ="), "{out}");
        assert!(out.contains("vault_addr = \"https://vault.example\""));
    }

    #[test]
    fn bad_toml_is_bad_input() {
        assert!(update_text("phalanx = ", "p", None, None).is_err());
    }
}
