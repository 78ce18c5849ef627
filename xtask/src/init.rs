//! `init`: writes `xtask.toml` with the repository locations and the Vault address,
//! keeping the file's comments and every other key (`charts` too when `--charts` is
//! not given). The file is the one the other commands read: in the current folder or
//! an ancestor; else a new one at the root of the deployment repository around the
//! current folder, else in the current folder. Paths are written relative to the
//! file's folder.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

use crate::config::{self, update_text, FILE_NAME};
use crate::error::bad_input;
use crate::flags::{self, Flags};

/// `target` (relative to the current folder) written relative to `base`, the config
/// file's folder, with `..` steps where needed.
fn relative_to(base: &Path, target: &Path) -> Result<String> {
    let absolute = std::path::absolute(target)
        .with_context(|| format!("cannot resolve {}", target.display()))?;
    Ok(config::relative_path(base, &absolute).display().to_string())
}

/// The file `init` writes: the `xtask.toml` the other commands would read (the first
/// above the current folder), else a new one at the root of the deployment repository
/// around the current folder, else in the current folder.
fn target_file() -> Result<PathBuf> {
    let cwd = std::env::current_dir().context("cannot read the current folder")?;
    Ok(config::find_file_from(&cwd).unwrap_or_else(|| {
        config::deployment_containing(&cwd)
            .unwrap_or(cwd)
            .join(FILE_NAME)
    }))
}

impl flags::Init {
    pub fn run(self, flags: &Flags) -> Result<()> {
        let phalanx = flags
            .phalanx
            .as_ref()
            .ok_or_else(|| bad_input("`init` needs --phalanx DIR"))?;
        for (what, dir) in [
            ("--phalanx", Some(phalanx)),
            ("--charts", flags.charts.as_ref()),
        ] {
            if let Some(dir) = dir.filter(|d| !d.is_dir()) {
                return Err(bad_input(format!(
                    "{what} {}: no such folder",
                    dir.display()
                )));
            }
        }
        let file = target_file()?;
        let base = file.parent().unwrap_or(Path::new("/"));
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(bad_input(format!("{}: cannot read: {e}", file.display()))),
        };
        let charts = flags
            .charts
            .as_ref()
            .map(|c| relative_to(base, c))
            .transpose()?;
        let new = update_text(
            &text,
            &relative_to(base, phalanx)?,
            charts.as_deref(),
            self.vault_addr.as_deref(),
        )
        .map_err(|e| bad_input(format!("{}: {e}", file.display())))?;
        crate::fsio::write_all(&[crate::fsio::Write {
            path: &file,
            before: None,
            text: &new,
        }])?;
        outln!("Wrote {}.", file.display());
        Ok(())
    }
}
