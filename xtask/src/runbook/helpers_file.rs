//! The runbook's shell helpers as one file outside the repository, written once and
//! sourced by the pasted text, so that what is pasted is the steps alone and the
//! helpers are reviewed in one place.
//!
//! The file is `runbook-helpers-<hash>.sh` (the hash of its content, so a changed
//! helper is a new file and two runs never disagree) in `$XDG_RUNTIME_DIR/pgdb/`, else
//! `$XDG_CACHE_HOME/pgdb/`, else `~/.cache/pgdb/`; the folder is made mode 0700 and the
//! file 0600, written under a temporary name and renamed. An existing file with the
//! same name and content is left as it is.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// 64-bit FNV-1a: stable across Rust versions (the standard hasher is not).
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The file's name for this content.
pub fn file_name(content: &str) -> String {
    format!("runbook-helpers-{:016x}.sh", fnv1a(content))
}

/// The folder the helpers go to, from the environment (absolute paths only).
pub fn folder(var: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let absolute = |v: Option<String>| v.map(PathBuf::from).filter(|p| p.is_absolute());
    if let Some(run) = absolute(var("XDG_RUNTIME_DIR")).filter(|p| p.is_dir()) {
        return Some(run.join("pgdb"));
    }
    absolute(var("XDG_CACHE_HOME"))
        .or_else(|| absolute(var("HOME")).map(|h| h.join(".cache")))
        .map(|c| c.join("pgdb"))
}

/// Writes `content` into the helpers folder (unless the same file is there) and
/// returns its path; `None` when no folder can be made or written, or when it lies
/// inside `repository` (then the text embeds the helpers).
pub fn write(content: &str, repository: &Path) -> Option<PathBuf> {
    let dir = folder(|v| std::env::var(v).ok())?;
    let real = |q: &Path| fs::canonicalize(q).unwrap_or_else(|_| q.to_path_buf());
    // Checked before anything is created (the folder may not exist yet), then again
    // once it does (a link on the way).
    if dir.starts_with(repository) || dir.starts_with(real(repository)) {
        return None;
    }
    fs::create_dir_all(&dir).ok()?;
    if real(&dir).starts_with(real(repository)) {
        return None;
    }
    let meta = fs::symlink_metadata(&dir).ok()?;
    if !meta.is_dir() {
        return None;
    }
    let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(0o700));
    let file = dir.join(file_name(content));
    if fs::read_to_string(&file).is_ok_and(|old| old == content) {
        let mode = fs::symlink_metadata(&file).ok()?.permissions().mode() & 0o777;
        if mode == 0o600 {
            return Some(file);
        }
    }
    let temporary = dir.join(format!(".{}.{}", file_name(content), std::process::id()));
    let written = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&temporary)
        .and_then(|mut f| {
            f.write_all(content.as_bytes())?;
            f.sync_all()
        })
        .and_then(|()| fs::rename(&temporary, &file));
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
        return None;
    }
    Some(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_follows_the_content() {
        assert_eq!(file_name("a"), file_name("a"));
        assert_ne!(file_name("a"), file_name("b"));
        assert!(file_name("").starts_with("runbook-helpers-"));
    }

    #[test]
    fn the_folder_prefers_the_runtime_folder_then_the_cache() {
        let tmp = std::env::temp_dir().display().to_string();
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(
            folder(env(&[("HOME", "/home/u")])),
            Some(PathBuf::from("/home/u/.cache/pgdb"))
        );
        assert_eq!(
            folder(env(&[("HOME", "/home/u"), ("XDG_CACHE_HOME", "/c")])),
            Some(PathBuf::from("/c/pgdb"))
        );
        // A relative or missing runtime folder is not used.
        assert_eq!(
            folder(env(&[("HOME", "/h"), ("XDG_RUNTIME_DIR", "rel")])),
            Some(PathBuf::from("/h/.cache/pgdb"))
        );
        let with_run = move |k: &str| match k {
            "XDG_RUNTIME_DIR" => Some(tmp.clone()),
            _ => None,
        };
        assert_eq!(folder(with_run), Some(std::env::temp_dir().join("pgdb")));
        assert_eq!(folder(env(&[])), None);
    }
}
