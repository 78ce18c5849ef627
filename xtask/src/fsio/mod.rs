//! Reading and writing the files of repositories that other programs share.
//!
//! Reading ([`read_text`]): regular files only (a FIFO or a device is refused after
//! a non-blocking open, so nothing hangs), at most [`read::MAX_FILE_SIZE`] bytes, UTF-8;
//! a byte order mark is dropped and CRLF line endings become LF, so every parser
//! sees one shape. A file mixing CRLF and LF is refused at the first line that
//! differs.
//!
//! Writing ([`Session::write_all`]): every edit command first takes an exclusive
//! lock per repository ([`Session::begin`]), held for its whole read-plan-write,
//! and finishes what an interrupted run left (the journal, below). Then, for a set
//! of files:
//!
//! 1. each target is resolved (a symlink is edited at its target); a target with
//!    several hard links, an immutable file, a target changed since it was read or,
//!    when running as root, a path another user could redirect is refused;
//! 2. a journal listing each target, its temporary file, and the fingerprints of
//!    the bytes it holds and of its new bytes is written and fsynced, naming each
//!    temporary file before it exists;
//! 3. each new text (with the file's byte order mark and CRLF endings put back)
//!    goes to its temporary file beside its target, created with
//!    `O_EXCL|O_NOFOLLOW` under an unpredictable name, with the target's mode (and
//!    owner, as root) set on the open descriptor, and fsynced. A failure here
//!    removes the temporary files and the journal: nothing changed;
//! 4. each temporary file is renamed over its target and the folders fsynced;
//! 5. the journal is removed.
//!
//! A run that finds a journal finishes the renames, but only over the exact bytes
//! they were planned against, or drops the change if no rename happened yet; if
//! files changed in between it stops and touches nothing (see the `journal`
//! module). A dry run and `check` only report a journal.
//!
//! Ctrl-C and SIGTERM during the writes are recorded, not obeyed, until the files
//! are all old or all new (see the `interrupt` module).
//!
//! The rooms: `read` (reading and file shapes), `lock` (the per-state-folder lock),
//! `journal` (the journal and the recovery), `atomic` (checks before a replacement,
//! staged temporary files; its no-follow primitives are also local-db's),
//! `interrupt` (signals while writing); this file is the [`Session`] that ties them
//! together in the order above: the journal, the staging, the renames, the folder
//! fsyncs.

use anyhow::{anyhow, Context, Result};
use std::fs::{self, File};
use std::path::{Path, PathBuf};

mod atomic;
mod interrupt;
mod journal;
mod lock;
mod read;

pub use atomic::Write;
// The no-follow primitives local-db writes its cluster folder with.
pub(crate) use atomic::{create_new, hand_over, set_mode, temp_name, write_synced};
pub(crate) use lock::{flock_exclusive, open_lock_file, Wait};
pub use read::read_text;
#[cfg(feature = "bench")]
pub use read::MAX_FILE_SIZE;

use atomic::{prepare, stage};
use journal::{Entry, Fingerprint};
use lock::{journal_path, lock_path, lock_timeout, Lock};

/// The locks of one edit command, held until it ends.
pub struct Session {
    _locks: Vec<Lock>,
    journal: Option<PathBuf>,
    intent: Intent,
}

/// What a session is for: writing its edits, or showing them (a dry run, which never
/// writes: not even an interrupted run's journal is followed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Intent {
    Write,
    DryRun,
}

impl Intent {
    /// `--dry-run` given or not.
    pub fn of(dry_run: bool) -> Intent {
        if dry_run {
            Intent::DryRun
        } else {
            Intent::Write
        }
    }
}

impl Session {
    /// Locks each repository's state folder (in a fixed order, so two runs cannot
    /// deadlock) and finishes any change an interrupted run left; for a dry run that
    /// journal is only reported, never followed.
    pub fn begin(repos: &[&Path], command: &str, intent: Intent) -> Result<Session> {
        let repos: Vec<PathBuf> = repos
            .iter()
            .filter(|r| r.is_dir())
            .map(|r| fs::canonicalize(r).unwrap_or_else(|_| r.to_path_buf()))
            .collect();
        // The journal lives with the first repository (the deployment's).
        let journal = repos.first().map(|r| journal_path(r));
        // One lock per state folder: two repositories may resolve to one.
        let mut by_lock: Vec<(PathBuf, &PathBuf)> =
            repos.iter().map(|r| (lock_path(r), r)).collect();
        by_lock.sort();
        by_lock.dedup_by(|a, b| a.0 == b.0);
        let timeout = lock_timeout()?;
        let mut locks = Vec::new();
        for (_, repo) in &by_lock {
            locks.push(Lock::acquire(repo, command, timeout)?);
        }
        for (_, repo) in &by_lock {
            let pending = journal_path(repo);
            if intent == Intent::Write {
                journal::recover(&pending)?;
            } else if fs::symlink_metadata(&pending).is_ok() {
                eprintln!("warning: {}", journal::describe_pending(&pending));
            }
        }
        // From here on Ctrl-C leaves every file old or new, and says which.
        interrupt::install();
        Ok(Session {
            _locks: locks,
            journal,
            intent,
        })
    }

    /// Whether the session writes or only shows.
    pub fn intent(&self) -> Intent {
        self.intent
    }

    /// Writes every file, all or none (see the module's documentation).
    pub fn write_all(&self, writes: &[Write<'_>]) -> Result<()> {
        write_files(writes, self.journal.as_deref())
    }
}

/// The command line, for the lock file's record of who holds it (it never holds a
/// password: those never are arguments).
pub fn command_line() -> String {
    let program = std::env::args_os()
        .next()
        .map(PathBuf::from)
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "xtask".into());
    std::iter::once(program)
        .chain(std::env::args().skip(1))
        .map(|a| {
            if a.is_empty() || a.contains(|c: char| c.is_whitespace() || c == '`') {
                format!("{a:?}")
            } else {
                a
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// What a journal an interrupted run left in one of these repositories says, if
/// there is one (for `check`, which never follows it).
pub fn pending_journal(repos: &[&Path]) -> Option<String> {
    repos
        .iter()
        .map(|r| journal_path(r))
        .find(|j| fs::symlink_metadata(j).is_ok())
        .map(|j| journal::describe_pending(&j))
}

/// Writes every file or none, without a journal (for files outside a repository,
/// such as `xtask.toml`).
pub fn write_all(writes: &[Write<'_>]) -> Result<()> {
    write_files(writes, None)
}

/// [`write_files_now`] with Ctrl-C and SIGTERM recorded rather than obeyed (see
/// `interrupt`): one that came once the renames began stops the run after them.
fn write_files(writes: &[Write<'_>], journal: Option<&Path>) -> Result<()> {
    interrupt::writing();
    let result = write_files_now(writes, journal);
    interrupt::written(match result {
        Ok(()) => interrupt::Outcome::AllWritten,
        Err(_) => interrupt::Outcome::Failed,
    });
    result?;
    if interrupt::pending() {
        return Err(interrupt::stopped(&format!(
            "it came while the files were being replaced, so all {} were: the change is \
             complete, and the command stopped before the rest of its output",
            writes.len()
        )));
    }
    Ok(())
}

fn write_files_now(writes: &[Write<'_>], journal: Option<&Path>) -> Result<()> {
    // 1. Resolve and check every target before anything is written.
    let mut prepared = Vec::new();
    for w in writes {
        prepared.push(prepare(w)?);
    }
    // 2. The journal, naming every temporary file before it exists, so that a run
    //    killed while writing them leaves nothing a later run does not know of.
    let staged: Vec<Entry> = prepared
        .iter()
        .map(|p| Entry {
            target: p.real.clone(),
            temp: temp_name(&p.real),
            old: p.old,
            new: Fingerprint::of(&p.bytes),
        })
        .collect();
    if let Some(journal) = journal {
        if let Err(e) = journal::write(journal, &staged) {
            let _ = fs::remove_file(journal);
            return Err(e.context("nothing was changed"));
        }
    }
    // 3. The temporary files, all or none; an interrupt until the last one is
    //    complete undoes them.
    let undo = |count: usize| {
        for done in &staged[..count] {
            let _ = fs::remove_file(&done.temp);
        }
        if let Some(journal) = journal {
            let _ = journal::remove(journal);
        }
    };
    for (index, (s, p)) in staged.iter().zip(&prepared).enumerate() {
        let staged_now = if interrupt::pending() {
            Err(interrupt::stopped(
                "no file was replaced yet, so none was: no file changed",
            ))
        } else {
            stage(&s.temp, &s.target, &p.bytes, p.meta.as_ref())
                .map_err(|e| e.context("nothing was changed"))
        };
        if let Err(e) = staged_now {
            undo(index);
            return Err(e);
        }
    }
    if interrupt::pending() {
        undo(staged.len());
        return Err(interrupt::stopped(
            "no file was replaced yet, so none was: no file changed",
        ));
    }
    // 4. The renames.
    rename_all(&staged, journal)?;
    for dir in distinct_parents(staged.iter().map(|s| s.target.as_path())) {
        sync_dir(&dir)?;
    }
    // 5. Done.
    if let Some(journal) = journal {
        journal::remove(journal)?;
    }
    Ok(())
}

/// Renames each temporary file over its target; an error names the files
/// already replaced and the journal that lets the next run finish.
fn rename_all(staged: &[Entry], journal: Option<&Path>) -> Result<()> {
    for (index, s) in staged.iter().enumerate() {
        if let Err(e) = fs::rename(&s.temp, &s.target) {
            let done: Vec<String> = staged[..index]
                .iter()
                .map(|s| s.target.display().to_string())
                .collect();
            let already = if done.is_empty() {
                "no file was replaced yet".to_string()
            } else {
                format!("already replaced: {}", done.join(", "))
            };
            let next = match journal {
                Some(j) => format!(
                    "; the next add-db or remove-db finishes the change (recorded in {})",
                    j.display()
                ),
                None => String::new(),
            };
            return Err(anyhow!(
                "cannot replace {}: {e}; {already}{next}",
                s.target.display()
            ));
        }
    }
    Ok(())
}

/// Fsyncs a folder, so the renames in it last.
fn sync_dir(dir: &Path) -> Result<()> {
    let file = File::open(dir).with_context(|| format!("cannot open {}", dir.display()))?;
    file.sync_all()
        .with_context(|| format!("cannot sync {}", dir.display()))
}

/// The folders holding `paths`, each once.
fn distinct_parents<'a>(paths: impl Iterator<Item = &'a Path>) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = paths
        .map(|p| p.parent().unwrap_or(Path::new(".")).to_path_buf())
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("xtask-fsio-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn keeps_permissions_and_writes_all_or_none() {
        let dir = scratch("perm");
        let script = dir.join("gen.py");
        fs::write(&script, "old").unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        write_all(&[Write {
            path: &script,
            before: Some("old"),
            text: "new",
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
                path: &script,
                before: None,
                text: "newer",
            },
            Write {
                path: &missing,
                before: None,
                text: "x",
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
