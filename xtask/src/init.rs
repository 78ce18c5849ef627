//! `init`: writes `xtask.toml` with the repository locations and the Vault address,
//! keeping the file's comments and every other key. The file is the one the other
//! commands read: in the current folder or an ancestor, else the workspace's own.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

use crate::config::{self, update_text, FILE_NAME};
use crate::error::bad_input;
use crate::flags::{self, Flags};

/// `target` relative to `base` when it lies below it, else absolute.
fn relative_to(base: &Path, target: &Path) -> Result<String> {
    let absolute = std::path::absolute(target)
        .with_context(|| format!("cannot resolve {}", target.display()))?;
    let base =
        std::path::absolute(base).with_context(|| format!("cannot resolve {}", base.display()))?;
    Ok(absolute
        .strip_prefix(&base)
        .map_or(absolute.clone(), Path::to_path_buf)
        .display()
        .to_string())
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
        let file: PathBuf =
            config::find_file().unwrap_or_else(|| config::workspace_root().join(FILE_NAME));
        let base = file.parent().unwrap_or(Path::new("."));
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
