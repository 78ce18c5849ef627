//! Reading and writing the files of repositories that other programs share.
//!
//! Reading ([`read_text`]): regular files only (a FIFO or a device is refused after
//! a non-blocking open, so nothing hangs), at most [`MAX_FILE_SIZE`] bytes, UTF-8;
//! a byte order mark is dropped and CRLF line endings become LF, so every parser
//! sees one shape. A file mixing CRLF and LF is refused at the first line that
//! differs.
//!
//! Writing ([`Session::write_all`]): every edit command first takes an exclusive
//! lock per repository ([`Session::begin_with`]), held for its whole read-plan-write,
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

use anyhow::{anyhow, Context, Result};
use std::borrow::Cow;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write as _};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::error::{bad_input, refused};

mod journal;
use journal::{Entry, Fingerprint};

/// The largest file the tool reads: far above any real values file.
pub const MAX_FILE_SIZE: u64 = 16 * 1024 * 1024;

/// How long a run waits for another run's lock, unless `XTASK_LOCK_TIMEOUT` (in
/// seconds) says otherwise.
const LOCK_TIMEOUT: Duration = Duration::from_secs(30);

const BOM: &str = "\u{feff}";

// ---------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------

/// Reads a managed text file: regular, at most [`MAX_FILE_SIZE`], UTF-8, one kind
/// of line ending. The text comes back without its byte order mark and with LF
/// endings. The error names the path (and the line for an encoding problem).
pub fn read_text(path: &Path) -> std::result::Result<String, String> {
    let bytes = read_bytes(path)?;
    normalize(&bytes).map_err(|(line, message)| match line {
        Some(line) => format!("{}:{line}: {message}", path.display()),
        None => format!("{}: {message}", path.display()),
    })
}

/// A regular file's bytes, refusing special files and oversized ones.
fn read_bytes(path: &Path) -> std::result::Result<Vec<u8>, String> {
    let shown = path.display();
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| format!("{shown}: cannot read: {e}"))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("{shown}: cannot read: {e}"))?;
    if !meta.file_type().is_file() {
        return Err(format!(
            "{shown}: not a regular file ({}); only regular files are read",
            kind_of(&meta)
        ));
    }
    if meta.len() > MAX_FILE_SIZE {
        return Err(format!(
            "{shown}: {} bytes is more than the {} MiB this tool reads",
            meta.len(),
            MAX_FILE_SIZE >> 20
        ));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{shown}: cannot read: {e}"))?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(format!(
            "{shown}: more than the {} MiB this tool reads",
            MAX_FILE_SIZE >> 20
        ));
    }
    Ok(bytes)
}

fn kind_of(meta: &fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a folder"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

/// How a file's bytes are laid out, so a new text can be written the same way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shape {
    pub bom: bool,
    pub crlf: bool,
}

/// The text of a file's bytes as the parsers see it: no byte order mark, LF endings.
/// An error carries the 1-based line when it has one.
pub fn normalize(bytes: &[u8]) -> std::result::Result<String, (Option<usize>, String)> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        (Some(line), "not UTF-8 text".to_string())
    })?;
    let shape = shape_of(text).map_err(|(line, m)| (Some(line), m))?;
    let text = text.strip_prefix(BOM).unwrap_or(text);
    Ok(if shape.crlf {
        text.replace("\r\n", "\n")
    } else {
        text.to_string()
    })
}

/// The byte order mark and line ending of a text; mixed endings are an error at the
/// first line whose ending differs from the first line's.
pub fn shape_of(text: &str) -> std::result::Result<Shape, (usize, String)> {
    let bom = text.starts_with(BOM);
    let mut first: Option<bool> = None;
    for (index, line) in text.split_inclusive('\n').enumerate() {
        if !line.ends_with('\n') {
            break;
        }
        let crlf = line.ends_with("\r\n");
        match first {
            None => first = Some(crlf),
            Some(f) if f != crlf => {
                let (this, that) = if crlf { ("CRLF", "LF") } else { ("LF", "CRLF") };
                return Err((
                    index + 1,
                    format!(
                        "mixed line endings: this line ends with {this}, the first line with {that}; \
                         convert the file to one kind (e.g. with dos2unix or unix2dos)"
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(Shape {
        bom,
        crlf: first == Some(true),
    })
}

/// A normalized text laid out in a file's shape.
pub fn denormalize(text: &str, shape: Shape) -> String {
    let text = text.strip_prefix(BOM).unwrap_or(text);
    let body = if shape.crlf {
        text.replace("\r\n", "\n").replace('\n', "\r\n")
    } else {
        text.to_string()
    };
    if shape.bom {
        format!("{BOM}{body}")
    } else {
        body
    }
}

// ---------------------------------------------------------------------------
// Locking
// ---------------------------------------------------------------------------

/// Where a repository keeps the tool's lock and journal: inside `.git/` when the
/// repository has one (never committed), else dotfiles in its root; `true` when it
/// is a `.git` folder. The folder is resolved (a `.git` symlink, or a `.git` file
/// naming its `gitdir:`), so two paths to one state folder share one lock.
fn state_dir(repo: &Path) -> (PathBuf, bool) {
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
fn state_file(repo: &Path, name: &str) -> PathBuf {
    match state_dir(repo) {
        (dir, true) => dir.join(name),
        (dir, false) => dir.join(format!(".{name}")),
    }
}

fn lock_path(repo: &Path) -> PathBuf {
    state_file(repo, "xtask.lock")
}

fn journal_path(repo: &Path) -> PathBuf {
    state_file(repo, "xtask-journal")
}

/// An exclusive `flock` on a repository's lock file, released (and the file
/// removed) when dropped.
struct Lock {
    path: PathBuf,
    file: File,
}

impl Lock {
    fn acquire(repo: &Path, command: &str, timeout: Duration) -> Result<Lock> {
        let path = lock_path(repo);
        let start = Instant::now();
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o644)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&path)
                .map_err(|e| {
                    bad_input(format!(
                        "{}: cannot open the lock file: {e}",
                        path.display()
                    ))
                })?;
            // Never write into a file planted under the lock's name (a hard link to
            // another file, or another user's file).
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
            // SAFETY: flock on a descriptor we own.
            let status = unsafe { libc::flock(fd(&file), libc::LOCK_EX | libc::LOCK_NB) };
            if status == 0 {
                // The holder before us may have removed the file after we opened it:
                // then our lock is on a name nobody else sees. Start again.
                let same = fs::symlink_metadata(&path)
                    .ok()
                    .zip(file.metadata().ok())
                    .is_some_and(|(a, b)| a.ino() == b.ino() && a.dev() == b.dev());
                if !same {
                    continue;
                }
                let mut lock = Lock { path, file };
                lock.record(command);
                return Ok(lock);
            }
            let error = std::io::Error::last_os_error();
            if error.raw_os_error() != Some(libc::EWOULDBLOCK) {
                return Err(bad_input(format!(
                    "{}: cannot lock: {error}",
                    path.display()
                )));
            }
            if start.elapsed() >= timeout {
                let mut holder = String::new();
                let _ = (&file).read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(refused(format!(
                    "{} is locked by another run of this tool ({}); waited {} s (XTASK_LOCK_TIMEOUT). Wait for \
                     it to finish, or if no such process is running, run again",
                    repo.display(),
                    if holder.is_empty() { "holder unknown" } else { holder },
                    timeout.as_secs_f64()
                )));
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

fn fd(file: &File) -> i32 {
    use std::os::fd::AsRawFd;
    file.as_raw_fd()
}

/// `XTASK_LOCK_TIMEOUT` in seconds (a number from 0 up), else 30 s; any other value
/// is bad input rather than a silent default.
fn lock_timeout() -> Result<Duration> {
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

// ---------------------------------------------------------------------------
// A session: locks, recovery, writes
// ---------------------------------------------------------------------------

/// The locks of one edit command, held until it ends.
pub struct Session {
    _locks: Vec<Lock>,
    journal: Option<PathBuf>,
}

impl Session {
    /// Locks each repository's state folder (in a fixed order, so two runs cannot
    /// deadlock) and finishes any change an interrupted run left; for a dry run
    /// (`read_only`) that journal is only reported, never followed.
    pub fn begin_with(repos: &[&Path], command: &str, read_only: bool) -> Result<Session> {
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
            if !read_only {
                journal::recover(&pending)?;
            } else if fs::symlink_metadata(&pending).is_ok() {
                eprintln!("warning: {}", journal::describe_pending(&pending));
            }
        }
        // From here on Ctrl-C leaves every file old or new, and says which.
        crate::interrupt::install();
        Ok(Session {
            _locks: locks,
            journal,
        })
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

/// One planned write: the text the file held when it was read (normalized, as
/// [`read_text`] returns it), if the plan read it, and the new text. A file that
/// does not exist yet (with no or an empty `before`) is created.
#[derive(Clone, Copy, Debug)]
pub struct Write<'a> {
    pub path: &'a Path,
    pub before: Option<&'a str>,
    pub text: &'a str,
}

/// Writes every file or none, without a journal (for files outside a repository,
/// such as `xtask.toml`).
pub fn write_all(writes: &[Write<'_>]) -> Result<()> {
    write_files(writes, None)
}

/// [`write_files_now`] with Ctrl-C and SIGTERM recorded rather than obeyed (see
/// `interrupt`): one that came once the renames began stops the run after them.
fn write_files(writes: &[Write<'_>], journal: Option<&Path>) -> Result<()> {
    crate::interrupt::writing();
    let result = write_files_now(writes, journal);
    crate::interrupt::written(result.is_ok());
    result?;
    if crate::interrupt::pending() {
        return Err(crate::interrupt::stopped(&format!(
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
        let staged_now = if crate::interrupt::pending() {
            Err(crate::interrupt::stopped(
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
    if crate::interrupt::pending() {
        undo(staged.len());
        return Err(crate::interrupt::stopped(
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

/// A checked target: its real path, its new bytes in the file's shape, its
/// metadata and the fingerprint of the bytes it holds (none for a new file).
struct Prepared<'a> {
    real: PathBuf,
    bytes: Cow<'a, [u8]>,
    meta: Option<fs::Metadata>,
    old: Option<Fingerprint>,
}

/// Resolves and checks a target (see [`Prepared`]).
fn prepare<'a>(w: &Write<'a>) -> Result<Prepared<'a>> {
    let shown = w.path.display();
    let real = match fs::canonicalize(w.path) {
        Ok(real) => real,
        // A new file: the plan read nothing (or an empty text) for it.
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                && w.before.is_none_or(str::is_empty)
                && fs::symlink_metadata(w.path).is_err() =>
        {
            if is_root() {
                refuse_foreign_path(w.path, None)?;
            }
            return Ok(Prepared {
                real: w.path.to_path_buf(),
                bytes: Cow::Borrowed(w.text.as_bytes()),
                meta: None,
                old: None,
            });
        }
        Err(e) => return Err(bad_input(format!("{shown}: cannot resolve: {e}"))),
    };
    let meta = fs::metadata(&real).map_err(|e| bad_input(format!("{shown}: {e}")))?;
    if !meta.file_type().is_file() {
        return Err(bad_input(format!(
            "{shown}: not a regular file ({}); nothing was changed",
            kind_of(&meta)
        )));
    }
    if meta.nlink() > 1 {
        return Err(refused(format!(
            "{shown}: has {} hard links; replacing it would split them from this copy and writing in place \
             would lose the all-or-nothing guarantee, so nothing was changed. Make it a plain file \
             (`cp --remove-destination`) or a symlink, then run again",
            meta.nlink()
        )));
    }
    if is_root() {
        refuse_foreign_path(w.path, Some(&meta))?;
        if real != w.path {
            refuse_foreign_path(&real, Some(&meta))?;
        }
    }
    refuse_unreplaceable(&real, &meta)?;
    let current = read_bytes(&real).map_err(bad_input)?;
    let current_text =
        std::str::from_utf8(&current).map_err(|_| bad_input(format!("{shown}: not UTF-8 text")))?;
    let shape =
        shape_of(current_text).map_err(|(line, m)| bad_input(format!("{shown}:{line}: {m}")))?;
    if let Some(before) = w.before {
        let unchanged = if shape == Shape::default() {
            current_text == before
        } else {
            normalize(&current).map_err(|(_, m)| bad_input(format!("{shown}: {m}")))? == before
        };
        if !unchanged {
            return Err(refused(format!(
                "{shown}: changed by another program while this run was planning; nothing was changed. Run again"
            )));
        }
    }
    let bytes = if shape == Shape::default() && !w.text.starts_with(BOM) {
        Cow::Borrowed(w.text.as_bytes())
    } else {
        Cow::Owned(denormalize(w.text, shape).into_bytes())
    };
    Ok(Prepared {
        real,
        bytes,
        meta: Some(meta),
        old: Some(Fingerprint::of(&current)),
    })
}

/// Refuses a target a rename cannot replace: an immutable or append-only file, or
/// one in a sticky folder that neither we nor the file's owner own.
fn refuse_unreplaceable(real: &Path, meta: &fs::Metadata) -> Result<()> {
    let shown = real.display();
    if let Err(e) = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(real)
    {
        if e.raw_os_error() == Some(libc::EPERM) {
            return Err(refused(format!(
                "{shown}: cannot be replaced ({e}; is it immutable or append-only? see lsattr); nothing was changed"
            )));
        }
    }
    let parent = real.parent().unwrap_or(Path::new("/"));
    if let Ok(dir) = fs::metadata(parent) {
        let euid = unsafe { libc::geteuid() };
        let sticky = dir.mode() & 0o1000 != 0;
        if sticky && euid != 0 && meta.uid() != euid && dir.uid() != euid {
            return Err(refused(format!(
                "{shown}: belongs to another user in a sticky folder, so it cannot be replaced; nothing was changed"
            )));
        }
    }
    Ok(())
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// As root, refuses a path whose resolution another user could change: a folder
/// on the way (or holding a symlink on the way) owned by someone other than root
/// or the file's owner, or writable by group or others without the sticky bit.
fn refuse_foreign_path(path: &Path, meta: Option<&fs::Metadata>) -> Result<()> {
    let owner = meta.map_or(0, MetadataExt::uid);
    let mut dir = path.parent();
    while let Some(d) = dir {
        let d_shown = if d.as_os_str().is_empty() {
            Path::new(".")
        } else {
            d
        };
        if let Ok(m) = fs::metadata(d_shown) {
            let mode = m.mode();
            let sticky = mode & 0o1000 != 0;
            let foreign_owner = m.uid() != 0 && m.uid() != owner;
            let open = mode & 0o022 != 0 && !sticky;
            if foreign_owner || open {
                return Err(refused(format!(
                    "{}: running as root, this tool does not write through {}, which {}; nothing was changed. \
                     Run as the owner of the files, or fix the folder's owner and mode",
                    path.display(),
                    d_shown.display(),
                    if foreign_owner {
                        format!("belongs to uid {}", m.uid())
                    } else {
                        "other users can write".to_string()
                    }
                )));
            }
        }
        dir = d.parent();
    }
    Ok(())
}

/// A name no other process can guess: `.<name>.xtask-<random>.tmp`.
fn temp_name(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .unwrap_or(OsStr::new("file"))
        .to_string_lossy();
    use rand::TryRngCore;
    // If the system's random source fails, the clock still makes a name hard to guess.
    let random = rand::rngs::OsRng.try_next_u64().unwrap_or_else(|_| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id()).rotate_left(32)
    });
    target.with_file_name(format!(".{name}.xtask-{random:016x}.tmp"))
}

/// Writes `bytes` to the new temporary file `temp` beside `target`, with the
/// target's mode (and owner, as root), and fsyncs it. `O_EXCL|O_NOFOLLOW`: a file or
/// link already at that name is an error, never followed or reused.
fn stage(temp: &Path, target: &Path, bytes: &[u8], meta: Option<&fs::Metadata>) -> Result<()> {
    let mode = meta.map_or(0o644, |m| m.permissions().mode() & 0o7777);
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode & 0o777)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(temp)
        .map_err(|e| {
            anyhow!(
                "cannot create a temporary file beside {}: {e}",
                target.display()
            )
        })?;
    let result = (|| -> std::io::Result<()> {
        if let Some(m) = meta {
            if is_root() && (m.uid() != 0 || m.gid() != 0) {
                // SAFETY: fchown on a descriptor we own.
                if unsafe { libc::fchown(fd(&file), m.uid(), m.gid()) } != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
        }
        // The umask may have narrowed the mode given at open: set it exactly, on
        // the descriptor.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        (&file).write_all(bytes)?;
        file.sync_all()
    })();
    result.map_err(|e| {
        let _ = fs::remove_file(temp);
        anyhow!("cannot write {}: {e}", temp.display())
    })
}

fn sync_dir(dir: &Path) -> Result<()> {
    let file = File::open(dir).with_context(|| format!("cannot open {}", dir.display()))?;
    file.sync_all()
        .with_context(|| format!("cannot sync {}", dir.display()))
}

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

    #[test]
    fn shapes_are_read_and_restored() {
        for (bytes, text) in [
            ("\u{feff}a: 1\n", "a: 1\n"),
            ("a: 1\r\nb: 2\r\n", "a: 1\nb: 2\n"),
            ("\u{feff}a: 1\r\nb: 2", "a: 1\nb: 2"),
            ("a\n", "a\n"),
            ("", ""),
        ] {
            assert_eq!(normalize(bytes.as_bytes()).unwrap(), text, "{bytes:?}");
            let shape = shape_of(bytes).unwrap();
            assert_eq!(denormalize(text, shape), bytes);
        }
        let err = normalize(b"a\r\nb\nc\r\n").unwrap_err();
        assert_eq!(err.0, Some(2), "{err:?}");
        assert!(err.1.contains("mixed line endings"));
        assert_eq!(normalize(b"a\n\xff\n").unwrap_err().0, Some(2));
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20 UTC");
    }
}
