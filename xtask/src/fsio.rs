//! Writing a set of files all at once or not at all.
//!
//! Each new text goes to a temporary file beside its target, with the target's
//! permissions; only when every temporary file is written are they renamed over
//! their targets. A failure before that removes the temporary files and leaves
//! every target as it was.

use anyhow::{Context, Result};
use std::fs;
use std::path::{Path, PathBuf};

/// One planned write.
#[derive(Clone, Debug)]
pub struct Write {
    pub path: PathBuf,
    pub text: String,
}

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}.xtask-{}.tmp", std::process::id()))
}

/// Writes every file or none.
pub fn write_all(writes: &[Write]) -> Result<()> {
    let mut staged: Vec<(PathBuf, &Path)> = Vec::new();
    let stage = |w: &Write| -> Result<PathBuf> {
        let temp = temp_path(&w.path);
        let permissions = fs::metadata(&w.path).map(|m| m.permissions()).ok();
        fs::write(&temp, &w.text).with_context(|| format!("cannot write {}", temp.display()))?;
        if let Some(p) = permissions {
            fs::set_permissions(&temp, p)
                .with_context(|| format!("cannot set permissions of {}", temp.display()))?;
        }
        Ok(temp)
    };
    for w in writes {
        match stage(w) {
            Ok(temp) => staged.push((temp, &w.path)),
            Err(e) => {
                for (temp, _) in &staged {
                    let _ = fs::remove_file(temp);
                }
                let _ = fs::remove_file(temp_path(&w.path));
                return Err(e.context("nothing was changed"));
            }
        }
    }
    for (temp, path) in &staged {
        fs::rename(temp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn keeps_permissions_and_writes_all_or_none() {
        let dir = std::env::temp_dir().join(format!("xtask-fsio-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let script = dir.join("gen.py");
        fs::write(&script, "old").unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        write_all(&[Write {
            path: script.clone(),
            text: "new".into(),
        }])
        .unwrap();
        assert_eq!(fs::read_to_string(&script).unwrap(), "new");
        assert_eq!(
            fs::metadata(&script).unwrap().permissions().mode() & 0o777,
            0o755
        );

        let missing = dir.join("no/such/dir/file");
        let err = write_all(&[
            Write {
                path: script.clone(),
                text: "newer".into(),
            },
            Write {
                path: missing,
                text: "x".into(),
            },
        ]);
        assert!(err.is_err());
        assert_eq!(fs::read_to_string(&script).unwrap(), "new");
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            1,
            "temporary files were left behind"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
