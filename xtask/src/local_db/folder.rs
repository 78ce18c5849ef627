//! Where a local cluster lives, and the file operations that are safe there.
//!
//! Beside the deployment: `.git/pgdb/<env>/` of the deployment checkout (a `.git`
//! file, as in a worktree, is followed to its git folder), else
//! `$XDG_STATE_HOME/pgdb/<checkout folder>-<hash of its canonical path>-<env>/`, else
//! the same below `~/.local/state/pgdb/`, so two checkouts with an environment of the
//! same name never share a cluster. Older versions kept clusters in the tool's own
//! `target/xtask/local-db/<checkout folder>-<hash>-<env>/` (or below
//! `$CARGO_TARGET_DIR`); `old_dir` names that place, for the move on first use.
//!
//! | path | owner | what |
//! |---|---|---|
//! | `./` | the invoking user | mode 0700 (0711 as root, so the server's user may pass) |
//! | `passwords.env` | the invoking user | `KEY=PASSWORD` lines (one per secret key), mode 0600 |
//! | `port` | the invoking user | the port of the last successful start |
//! | `lock` | the invoking user | held by each `up` and `down` for its whole run |
//! | `data/` | the server's user | the cluster (`initdb`); `data/xtask.conf` holds the settings |
//! | `run/` | the server's user | mode 0700: the server's log and Unix socket |
//!
//! When we run as root the server runs as `postgres`, which owns `data/` and `run/`:
//! anything in there may have been replaced by a link. Files there are therefore
//! created with `O_EXCL | O_NOFOLLOW` after removing the old name (with `fsio`'s
//! primitives, which the edit commands stage their files with), appended to with
//! `O_NOFOLLOW` and only when they are plain files of the expected owner, and read
//! with `O_NOFOLLOW`. Folders are created with explicit modes, whatever the umask.

use anyhow::{anyhow, Context, Result};
use std::fs;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::bad_input;
use crate::fsio::{self, Wait};

/// The name of the passwords file in a cluster's folder.
pub const PASSWORDS_FILE: &str = "passwords.env";

/// Every path of one cluster.
pub struct Paths {
    pub env: String,
    /// The cluster's folder.
    pub dir: PathBuf,
    pub data: PathBuf,
    /// The server's log and socket folder.
    pub run: PathBuf,
    pub passwords: PathBuf,
    pub log: PathBuf,
    /// The port of the last successful start.
    pub port_file: PathBuf,
}

impl Paths {
    /// The cluster of the deployment checkout at `checkout` and environment `env`.
    pub fn new(checkout: &Path, env: &str) -> Result<Paths> {
        let dir = match git_dir(checkout) {
            Some(git) => git.join("pgdb").join(env),
            None => state_home()?
                .join("pgdb")
                .join(cluster_folder_name(checkout, env)?),
        };
        Ok(Paths::at(dir, env))
    }

    /// The paths of a cluster whose folder is `dir`.
    pub fn at(dir: PathBuf, env: &str) -> Paths {
        let run = dir.join("run");
        Paths {
            env: env.to_string(),
            data: dir.join("data"),
            passwords: dir.join(PASSWORDS_FILE),
            log: run.join("server.log"),
            port_file: dir.join("port"),
            run,
            dir,
        }
    }

    pub fn socket(&self, port: u16) -> PathBuf {
        self.run.join(format!(".s.PGSQL.{port}"))
    }

    pub fn conf(&self) -> PathBuf {
        self.data.join("xtask.conf")
    }

    pub fn pid_file(&self) -> PathBuf {
        self.data.join("postmaster.pid")
    }

    /// Whether `initdb` has run (the data folder holds `PG_VERSION`).
    pub fn initialized(&self) -> bool {
        fs::symlink_metadata(self.data.join("PG_VERSION")).is_ok_and(|m| m.is_file())
    }

    /// The cluster's major version (`PG_VERSION`), once initialized.
    pub fn major_version(&self) -> Option<u32> {
        read_no_follow(&self.data.join("PG_VERSION"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

/// The git folder of the checkout at `checkout`: `.git` when it is a folder, the
/// `gitdir:` a `.git` file names (relative to the checkout) when it is a file.
pub fn git_dir(checkout: &Path) -> Option<PathBuf> {
    let dot_git = checkout.join(".git");
    let meta = fs::metadata(&dot_git).ok()?;
    if meta.is_dir() {
        return Some(dot_git);
    }
    let text = fs::read_to_string(&dot_git).ok()?;
    let target = gitdir_of(&text)?;
    let dir = checkout.join(target);
    dir.is_dir().then_some(dir)
}

/// The path of a `.git` file's `gitdir: PATH` line.
pub fn gitdir_of(text: &str) -> Option<&str> {
    text.lines()
        .find_map(|l| l.strip_prefix("gitdir:"))
        .map(str::trim)
        .filter(|p| !p.is_empty())
}

/// `$XDG_STATE_HOME` when it is an absolute path, else `~/.local/state`.
fn state_home() -> Result<PathBuf> {
    let xdg = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    if let Some(xdg) = xdg {
        return Ok(xdg);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .ok_or_else(|| {
            bad_input(
                "the deployment checkout has no .git folder, and neither XDG_STATE_HOME nor HOME \
                 is set: local-db has nowhere to keep its cluster; set XDG_STATE_HOME",
            )
        })?;
    Ok(home.join(".local").join("state"))
}

/// Where older versions kept this cluster: `target/xtask/local-db/<name>-<hash>-<env>`.
pub fn old_dir(checkout: &Path, env: &str) -> Result<PathBuf> {
    Ok(local_db_root()?.join(cluster_folder_name(checkout, env)?))
}

/// `target/xtask/local-db` of older versions: below `$CARGO_TARGET_DIR` (relative
/// to the current folder), else the workspace's `target/`.
fn local_db_root() -> Result<PathBuf> {
    let target = match std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => std::env::current_dir()
            .context("cannot read the current folder")?
            .join(dir),
        None => crate::config::workspace_root().join("target"),
    };
    Ok(target.join("xtask").join("local-db"))
}

/// `<checkout folder name>-<8 hex digits of its canonical path>-<env>`.
pub fn cluster_folder_name(checkout: &Path, env: &str) -> Result<String> {
    let canonical = fs::canonicalize(checkout)
        .map_err(|e| bad_input(format!("{}: cannot resolve: {e}", checkout.display())))?;
    let name: String = canonical
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "root".to_string())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let hash = fnv1a(canonical.as_os_str().as_encoded_bytes());
    Ok(format!("{name}-{:08x}-{env}", (hash ^ (hash >> 32)) as u32))
}

/// FNV-1a, 64 bits: a stable hash (std's hasher may change between releases).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Creates `dir` and its missing ancestors with mode `mode` whatever the umask;
/// an existing folder is left as it is.
pub fn create_dirs(dir: &Path, mode: u32) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(())
}

/// Creates the folder `dir` with exactly `mode` unless it exists; an existing one
/// must be a real folder (not a link) owned by `owner`. Returns whether it was created.
pub fn create_private_dir(dir: &Path, mode: u32, owner: u32) -> Result<bool> {
    match fs::DirBuilder::new().mode(mode).create(dir) {
        Ok(()) => {
            fs::set_permissions(dir, fs::Permissions::from_mode(mode))
                .with_context(|| format!("cannot set the mode of {}", dir.display()))?;
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let meta = fs::symlink_metadata(dir)
                .with_context(|| format!("cannot read {}", dir.display()))?;
            if !meta.is_dir() {
                return Err(bad_input(format!(
                    "{}: is not a folder (a link?); remove it and run `up` again",
                    dir.display()
                )));
            }
            if meta.uid() != owner {
                return Err(bad_input(format!(
                    "{}: belongs to user id {}, expected {owner}; remove it and run `up` again",
                    dir.display(),
                    meta.uid()
                )));
            }
            Ok(false)
        }
        Err(e) => Err(anyhow!("cannot create {}: {e}", dir.display())),
    }
}

/// Opens an existing file without following a link at its last component.
fn open_no_follow(path: &Path, options: &mut fs::OpenOptions) -> Result<fs::File> {
    options
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                anyhow!(
                    "{}: is a symbolic link; refusing to follow it (remove it and run `up` again)",
                    path.display()
                )
            } else {
                anyhow!("cannot open {}: {e}", path.display())
            }
        })
}

/// Reads a file, refusing a symbolic link.
pub fn read_no_follow(path: &Path) -> Result<String> {
    let mut text = String::new();
    open_no_follow(path, fs::OpenOptions::new().read(true))?
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(text)
}

/// Whether `path` exists (a link counts, and is not followed).
pub fn exists(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok()
}

/// Replaces the file `path` with `text`: the old name is removed (a link is removed,
/// never followed), the new file created exclusively with mode `mode` and, when
/// `owner` is given, handed over through its open descriptor (fsio's no-follow
/// primitives).
pub fn replace_file(path: &Path, text: &str, mode: u32, owner: Option<(u32, u32)>) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(anyhow!("cannot remove {}: {e}", path.display())),
    }
    let file = fsio::create_new(path, mode)
        .with_context(|| format!("cannot create {}", path.display()))?;
    if let Some((uid, gid)) = owner {
        fsio::hand_over(&file, uid, gid)
            .with_context(|| format!("cannot give {} to user id {uid}", path.display()))?;
    }
    fsio::set_mode(&file, mode)?;
    fsio::write_synced(&file, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Appends `line` to `path` unless a line equal to it is there already. The file
/// must be a plain file with one link, owned by `owner`; a link is not followed.
pub fn append_line_once(path: &Path, line: &str, preface: &str, owner: u32) -> Result<()> {
    let mut file = open_no_follow(path, fs::OpenOptions::new().read(true).append(true))?;
    let meta = file.metadata()?;
    if !meta.is_file() || meta.nlink() != 1 || meta.uid() != owner {
        return Err(bad_input(format!(
            "{}: expected a plain file of user id {owner} with one link, found {} owned by {} \
             with {} links; refusing to write to it",
            path.display(),
            if meta.is_file() {
                "a file"
            } else {
                "something else"
            },
            meta.uid(),
            meta.nlink()
        )));
    }
    let mut text = String::new();
    file.read_to_string(&mut text)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if text.lines().any(|l| l.trim() == line) {
        return Ok(());
    }
    write!(file, "\n{preface}\n{line}\n")
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Writes a file of our own folder through a temporary file with a name no other
/// run uses (fsio's: created exclusively, mode 0600, links not followed), then a
/// rename.
pub fn write_private(path: &Path, text: &str) -> Result<()> {
    let tmp = fsio::temp_name(path);
    let file = fsio::create_new(&tmp, 0o600)
        .with_context(|| format!("cannot create {}", tmp.display()))?;
    let written = fsio::write_synced(&file, text.as_bytes()).and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(anyhow!("cannot write {}: {e}", path.display()));
    }
    Ok(())
}

/// An exclusive lock on a cluster, held until dropped: two runs on one cluster (two
/// `up` at once would each make passwords for new roles) take turns.
pub struct ClusterLock {
    _file: fs::File,
}

/// Takes the lock file `lock` in the cluster's own folder, waiting for another run
/// that holds it (said once on standard error).
pub fn lock(dir: &Path) -> Result<ClusterLock> {
    let path = dir.join("lock");
    let file = fsio::open_lock_file(&path, 0o600)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match fsio::flock_exclusive(&file, Wait::No) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
            eprintln!(
                "waiting for another `local-db` run on {} to finish",
                dir.display()
            );
            fsio::flock_exclusive(&file, Wait::UntilFree)
                .with_context(|| format!("cannot lock {}", path.display()))?;
        }
        Err(e) => return Err(anyhow!("cannot lock {}: {e}", path.display())),
    }
    Ok(ClusterLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_say_checkout_and_env() {
        let tmp = std::env::temp_dir();
        let name = cluster_folder_name(&tmp, "dev").unwrap();
        let base = fs::canonicalize(&tmp).unwrap();
        let base = base.file_name().unwrap().to_string_lossy();
        assert!(name.starts_with(&format!("{base}-")), "{name}");
        assert!(name.ends_with("-dev"), "{name}");
        assert_eq!(name.len(), base.len() + 1 + 8 + 4);
        assert_eq!(name, cluster_folder_name(&tmp, "dev").unwrap());
        assert_ne!(name, cluster_folder_name(Path::new("/"), "dev").unwrap());
    }

    #[test]
    fn git_files_name_their_folder() {
        assert_eq!(
            gitdir_of("gitdir: /work/main/.git/worktrees/x\n"),
            Some("/work/main/.git/worktrees/x")
        );
        assert_eq!(
            gitdir_of("gitdir: ../.git/modules/p"),
            Some("../.git/modules/p")
        );
        assert_eq!(gitdir_of("something else\n"), None);
        assert_eq!(gitdir_of("gitdir:   \n"), None);
    }

    #[test]
    fn fnv_is_stable() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
