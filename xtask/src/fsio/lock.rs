//! The per-state-folder lock of an edit command: an exclusive `flock` on
//! `.git/xtask.lock` (else `.xtask.lock`), waited for up to `XTASK_LOCK_TIMEOUT`
//! seconds, recording its holder (pid, command, start time) for the message a
//! waiting run gives up with; and where the state folder (and so the journal) is.

use anyhow::Result;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write as _};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::error::{bad_input, refused};

/// How long a run waits for another run's lock, unless `XTASK_LOCK_TIMEOUT` (in
/// seconds) says otherwise.
const LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a repository keeps the tool's lock and journal: inside `.git/` when the
/// repository has one (never committed), else dotfiles in its root; `true` when it
/// is a `.git` folder. The folder is resolved (a `.git` symlink, or a `.git` file
/// naming its `gitdir:`), so two paths to one state folder share one lock.
pub(super) fn state_dir(repo: &Path) -> (PathBuf, bool) {
    let resolve = |dir: PathBuf| fs::canonicalize(&dir).unwrap_or(dir);
    let git = repo.join(".git");
    if git.is_dir() {
        return (resolve(git), true);
    }
    // A worktree or submodule: `.git` is a file saying `gitdir: <dir>`.
    if let Ok(text) = fs::read_to_string(&git) {
        if let Some(dir) = text.trim().strip_prefix("gitdir:") {
            let dir = repo.join(dir.trim());
            if dir.is_dir() {
                return (resolve(dir), true);
            }
        }
    }
    (resolve(repo.to_path_buf()), false)
}

/// The tool's state file `name` for a repository: in its state folder, or as a
/// dotfile when that folder is the repository's root.
pub(super) fn state_file(repo: &Path, name: &str) -> PathBuf {
    match state_dir(repo) {
        (dir, true) => dir.join(name),
        (dir, false) => dir.join(format!(".{name}")),
    }
}

pub(super) fn lock_path(repo: &Path) -> PathBuf {
    state_file(repo, "xtask.lock")
}

pub(super) fn journal_path(repo: &Path) -> PathBuf {
    state_file(repo, "xtask-journal")
}

/// An exclusive `flock` on a repository's lock file, released (and the file
/// removed) when dropped.
pub(super) struct Lock {
    path: PathBuf,
    file: File,
}

impl Lock {
    pub(super) fn acquire(repo: &Path, command: &str, timeout: Duration) -> Result<Lock> {
        let path = lock_path(repo);
        let start = Instant::now();
        loop {
            let file = open_lock_file(&path, 0o644).map_err(|e| {
                bad_input(format!(
                    "{}: cannot open the lock file: {e}",
                    path.display()
                ))
            })?;
            refuse_planted(&path, &file)?;
            match flock_exclusive(&file, Wait::No) {
                Ok(()) => {
                    // The holder before us may have removed the file after we opened
                    // it: then our lock is on a name nobody else sees. Start again.
                    if !still_named(&path, &file) {
                        continue;
                    }
                    let mut lock = Lock { path, file };
                    lock.record(command);
                    return Ok(lock);
                }
                Err(error) if error.raw_os_error() == Some(libc::EWOULDBLOCK) => {}
                Err(error) => {
                    return Err(bad_input(format!(
                        "{}: cannot lock: {error}",
                        path.display()
                    )))
                }
            }
            if start.elapsed() >= timeout {
                return Err(held_by_another(repo, &file, timeout));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Writes who holds the lock: pid, command, start time.
    fn record(&mut self, command: &str) {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let text = format!(
            "pid {}, `{command}`, since {} (Unix time {since})\n",
            std::process::id(),
            utc(since)
        );
        let _ = self.file.set_len(0);
        let _ = (&self.file).write_all(text.as_bytes());
    }
}

/// Never write into a file planted under the lock's name (a hard link to another
/// file, or another user's file).
fn refuse_planted(path: &Path, file: &File) -> Result<()> {
    let meta = file
        .metadata()
        .map_err(|e| bad_input(format!("{}: {e}", path.display())))?;
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if !meta.file_type().is_file() || meta.nlink() != 1 || meta.uid() != euid {
        return Err(refused(format!(
            "{}: not a lock file of this user (a link, or owned by uid {}); remove it if no run is going on",
            path.display(),
            meta.uid()
        )));
    }
    Ok(())
}

/// Whether the open lock `file` is still the one at `path`.
fn still_named(path: &Path, file: &File) -> bool {
    fs::symlink_metadata(path)
        .ok()
        .zip(file.metadata().ok())
        .is_some_and(|(a, b)| a.ino() == b.ino() && a.dev() == b.dev())
}

/// The refusal after waiting `timeout` for the run that holds `file`, naming it.
fn held_by_another(repo: &Path, mut file: &File, timeout: Duration) -> anyhow::Error {
    let mut holder = String::new();
    let _ = file.read_to_string(&mut holder);
    let holder = holder.trim();
    refused(format!(
        "{} is locked by another run of this tool ({}); waited {} s (XTASK_LOCK_TIMEOUT). Wait for \
         it to finish, or if no such process is running, run again",
        repo.display(),
        if holder.is_empty() { "holder unknown" } else { holder },
        timeout.as_secs_f64()
    ))
}

/// Opens (creating it with `mode`) a lock file for reading and writing, without
/// truncating it and never following a link at its name.
pub(crate) fn open_lock_file(path: &Path, mode: u32) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Whether taking a lock waits for the run that holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Fail at once with `EWOULDBLOCK` when it is held.
    No,
    /// Block until it is free.
    UntilFree,
}

/// An exclusive `flock` on the open `file`, held until the file is closed.
pub(crate) fn flock_exclusive(file: &File, wait: Wait) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let how = match wait {
        Wait::No => libc::LOCK_EX | libc::LOCK_NB,
        Wait::UntilFree => libc::LOCK_EX,
    };
    // SAFETY: flock on a descriptor we own; no memory is passed.
    if unsafe { libc::flock(file.as_raw_fd(), how) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Removed while still held, so a waiting run that opened the old name
        // notices (see `acquire`) and a finished run leaves nothing behind.
        let _ = fs::remove_file(&self.path);
    }
}

/// `YYYY-MM-DD HH:MM:SS UTC` of a Unix time.
fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `XTASK_LOCK_TIMEOUT` in seconds (a number from 0 up), else 30 s; any other value
/// is bad input rather than a silent default.
pub(super) fn lock_timeout() -> Result<Duration> {
    let Ok(value) = std::env::var("XTASK_LOCK_TIMEOUT") else {
        return Ok(LOCK_TIMEOUT);
    };
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e9)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| {
            bad_input(format!(
                "XTASK_LOCK_TIMEOUT={value:?}: expected a number of seconds, such as 30"
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_refused_without_waiting_and_free_once_closed() {
        let dir = std::env::temp_dir().join(format!("xtask-lock-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("lock");
        let first = open_lock_file(&path, 0o600).unwrap();
        flock_exclusive(&first, Wait::No).unwrap();
        let second = open_lock_file(&path, 0o600).unwrap();
        let busy = flock_exclusive(&second, Wait::No).unwrap_err();
        assert_eq!(busy.raw_os_error(), Some(libc::EWOULDBLOCK));
        drop(first);
        flock_exclusive(&second, Wait::UntilFree).unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert!(open_lock_file(&link, 0o600).is_err(), "a link was followed");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
    }
}
