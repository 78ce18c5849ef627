//! The journal of a multi-file replacement, and the recovery that reads it.
//!
//! Before its temporary files exist, a run writes (and fsyncs) one line per file:
//! the target, the temporary file, and the fingerprint (FNV-1a hash and size) of
//! both the bytes the plan was made against (`-` for a file that did not exist)
//! and the new bytes; an `end` line closes it. The next run that finds it:
//!
//! - if no rename happened yet (some temporary file is missing or cut short and no
//!   target holds its new bytes), removes the temporary files: every file stays as
//!   it is now, including edits made since;
//! - else finishes the renames, but only where the target still holds exactly the
//!   bytes the interrupted run planned against (a target already holding the new
//!   bytes is left). If any target holds something else (an edit, a `git pull`,
//!   another checkout's run), it stops (exit 1) touching nothing, and says per file
//!   what changed and the commands that finish or discard the change by hand;
//! - the journal is written beside its place (`<journal>.new`) and renamed there
//!   once complete, so a run killed while writing it leaves only that file, which
//!   the next run removes with a note (no temporary file existed yet). A journal
//!   it cannot read (empty, no `end`, an unknown version, a damaged line) stops
//!   the run, touching nothing.
//!
//! Every step it takes is said on stderr, one line per file.

use anyhow::{Context, Result};
use std::ffi::OsStr;
use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::read::read_bytes;
use super::{distinct_parents, sync_dir};
use crate::error::refused;
use crate::shell::{escape, quote};

const HEADER: &str = "xtask journal 2";

/// What identifies a file's bytes: their FNV-1a hash and their length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Fingerprint {
    pub hash: u64,
    pub size: u64,
}

impl Fingerprint {
    pub fn of(bytes: &[u8]) -> Fingerprint {
        Fingerprint {
            hash: fnv1a(bytes),
            size: bytes.len() as u64,
        }
    }

    fn field(self) -> String {
        format!("{:016x}:{}", self.hash, self.size)
    }

    fn parse(field: &str) -> Option<Fingerprint> {
        let (hash, size) = field.split_once(':')?;
        if hash.len() != 16 {
            return None;
        }
        Some(Fingerprint {
            hash: u64::from_str_radix(hash, 16).ok()?,
            size: size.parse().ok()?,
        })
    }
}

/// FNV-1a, 64 bits: with the size, enough to tell the planned bytes from others.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// One file of a replacement: where its new bytes wait, what it held before
/// (`None`: it did not exist) and what it will hold.
#[derive(Clone, Debug)]
pub(super) struct Entry {
    pub target: PathBuf,
    pub temp: PathBuf,
    pub old: Option<Fingerprint>,
    pub new: Fingerprint,
}

/// The journal's text for these entries.
pub(super) fn render(entries: &[Entry]) -> String {
    let mut text = format!("{HEADER}\n");
    for e in entries {
        text.push_str(&format!(
            "{}\t{}\t{}\t{}\n",
            hex::encode(e.target.as_os_str().as_bytes()),
            hex::encode(e.temp.as_os_str().as_bytes()),
            e.old.map_or("-".to_string(), Fingerprint::field),
            e.new.field()
        ));
    }
    text.push_str("end\n");
    text
}

/// Where the journal is written before it is renamed into place.
fn draft(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".new");
    PathBuf::from(name)
}

/// Writes the journal whole (a draft, fsynced, renamed into place; never over an
/// existing file) and fsyncs its folder.
pub(super) fn write(path: &Path, entries: &[Entry]) -> Result<()> {
    let draft = draft(path);
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&draft)
        .with_context(|| format!("cannot create the journal {}", draft.display()))?;
    let written = (&file)
        .write_all(render(entries).as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write the journal {}", draft.display()))
        .and_then(|()| {
            if fs::symlink_metadata(path).is_ok() {
                anyhow::bail!("{} exists already", path.display());
            }
            fs::rename(&draft, path).with_context(|| format!("cannot create {}", path.display()))
        });
    if written.is_err() {
        let _ = fs::remove_file(&draft);
    }
    written?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

pub(super) fn remove(path: &Path) -> Result<()> {
    fs::remove_file(path).with_context(|| format!("cannot remove {}", path.display()))?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Reads a journal's text; an error names the line and what is wrong with it.
pub(super) fn parse(text: &str) -> std::result::Result<Vec<Entry>, String> {
    if text.is_empty() {
        return Err("it is empty".into());
    }
    let mut lines = text.split_inclusive('\n');
    let header = lines.next().unwrap_or("");
    if header.trim_end_matches('\n') != HEADER {
        return Err(format!(
            "line 1: {:?} is not {HEADER:?} (written by another version of this tool?)",
            escape(header.trim_end_matches('\n'))
        ));
    }
    let mut entries = Vec::new();
    let mut number = 1;
    while let Some(line) = lines.next() {
        number += 1;
        let Some(line) = line.strip_suffix('\n') else {
            return Err(format!("line {number}: cut short"));
        };
        if line == "end" {
            if lines.next().is_some() {
                return Err(format!("line {}: text after `end`", number + 1));
            }
            return Ok(entries);
        }
        entries.push(parse_entry(line).map_err(|m| format!("line {number}: {m}"))?);
    }
    Err(format!("no `end` line after line {number}"))
}

fn parse_entry(line: &str) -> std::result::Result<Entry, String> {
    let fields: Vec<&str> = line.split('\t').collect();
    let [target, temp, old, new] = fields[..] else {
        return Err(format!(
            "{} fields where 4 (target, temporary file, old and new fingerprint) belong",
            fields.len()
        ));
    };
    let path = |s: &str, what: &str| {
        hex::decode(s)
            .ok()
            .filter(|b| !b.is_empty() && !b.contains(&0))
            .map(|b| PathBuf::from(OsStr::from_bytes(&b)))
            .ok_or_else(|| format!("the {what} is not a hex-encoded path"))
    };
    let fingerprint = |s: &str, what: &str| {
        Fingerprint::parse(s)
            .ok_or_else(|| format!("the {what} fingerprint {:?} is damaged", escape(s)))
    };
    let entry = Entry {
        target: path(target, "target")?,
        temp: path(temp, "temporary file")?,
        old: if old == "-" {
            None
        } else {
            Some(fingerprint(old, "old")?)
        },
        new: fingerprint(new, "new")?,
    };
    if !is_temp_of_target(&entry) {
        return Err(format!(
            "{} is not a temporary file this tool names beside {}",
            escape(&entry.temp.to_string_lossy()),
            escape(&entry.target.to_string_lossy())
        ));
    }
    Ok(entry)
}

/// Whether a journal entry's temporary file is named as this tool names them,
/// beside its target: `.<target name>.xtask-<16 hex digits>.tmp`.
pub(super) fn is_temp_of_target(e: &Entry) -> bool {
    let (Some(name), Some(temp_name)) = (e.target.file_name(), e.temp.file_name()) else {
        return false;
    };
    let expected = format!(".{}.xtask-", name.to_string_lossy());
    let temp_name = temp_name.to_string_lossy();
    e.temp.parent() == e.target.parent()
        && temp_name
            .strip_prefix(&expected)
            .and_then(|rest| rest.strip_suffix(".tmp"))
            .is_some_and(|hex| hex.len() == 16 && hex.chars().all(|c| c.is_ascii_hexdigit()))
}

/// A regular file this user owns.
pub(super) fn is_ours(path: &Path) -> bool {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file() && m.uid() == euid)
}

/// What a target holds now, compared with the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Now {
    /// The bytes the interrupted run planned against (or still no file).
    Old,
    /// The new bytes.
    New,
    /// Something else, described.
    Other(String),
}

fn target_now(e: &Entry) -> Now {
    let Ok(meta) = fs::symlink_metadata(&e.target) else {
        return if e.old.is_none() {
            Now::Old
        } else {
            Now::Other("was removed since".into())
        };
    };
    if !meta.file_type().is_file() {
        return Now::Other("is no longer a regular file".into());
    }
    let Ok(bytes) = read_bytes(&e.target) else {
        return Now::Other("cannot be read".into());
    };
    let now = Fingerprint::of(&bytes);
    if Some(now) == e.old {
        Now::Old
    } else if now == e.new {
        Now::New
    } else {
        let before = e.old.map_or("did not exist".to_string(), |f| {
            format!("held {} bytes", f.size)
        });
        Now::Other(format!(
            "was changed since (it {before} when the interrupted run read it, would have held {} \
             bytes after it, and holds {} other bytes now)",
            e.new.size, now.size
        ))
    }
}

/// Whether the temporary file holds exactly the new bytes.
fn temp_ready(e: &Entry) -> bool {
    is_ours(&e.temp) && read_bytes(&e.temp).is_ok_and(|b| Fingerprint::of(&b) == e.new)
}

/// Finishes (or drops, if it never reached its renames) what an interrupted run
/// recorded in `journal`, then removes the journal; or stops, touching nothing.
pub(super) fn recover(journal: &Path) -> Result<()> {
    drop_draft(journal)?;
    let Ok(meta) = fs::symlink_metadata(journal) else {
        return Ok(());
    };
    let shown = escape(&journal.to_string_lossy()).into_owned();
    // Only a journal this user wrote is followed: renaming what another user's
    // journal names would let that user replace any file we may write.
    if !is_ours(journal) || meta.nlink() != 1 {
        return Err(refused(format!(
            "{shown}: not a journal of this user (a link, or owned by uid {}); remove it, then run again",
            meta.uid()
        )));
    }
    let parsed = read_bytes(journal)
        .map_err(|e| e.to_string())
        .and_then(|b| String::from_utf8(b).map_err(|_| "not UTF-8 text".to_string()))
        .and_then(|text| parse(&text));
    let entries = parsed.map_err(|problem| unreadable(&shown, &problem))?;
    let now: Vec<(Now, bool)> = entries
        .iter()
        .map(|e| (target_now(e), temp_ready(e)))
        .collect();
    // A rename happened once some target holds its new bytes and its temporary
    // file is gone; renames begin only after every temporary file is complete.
    let renamed = now.iter().any(|(n, ready)| *n == Now::New && !ready);
    let staged = now.iter().all(|(n, ready)| *ready || *n == Now::New);
    let said = if renamed || staged {
        let conflicts: Vec<String> = entries
            .iter()
            .zip(&now)
            .filter_map(|(e, (n, ready))| conflict(e, n, *ready))
            .collect();
        if !conflicts.is_empty() {
            return Err(refused(stop_message(journal, &entries, &now, &conflicts)));
        }
        finish(&entries, &now, &shown)?
    } else {
        drop_staged(&entries, &now)
    };
    for dir in distinct_parents(entries.iter().map(|e| e.target.as_path())) {
        let _ = sync_dir(&dir);
    }
    remove(journal)?;
    let verb = if renamed || staged {
        "finished the change an interrupted run left"
    } else {
        "dropped the change an interrupted run left before replacing any file"
    };
    eprintln!("note: {verb} (journal {shown}):");
    for line in said {
        eprintln!("  {line}");
    }
    Ok(())
}

/// Renames each temporary file over its target, which holds the planned-against
/// bytes (checked), or leaves a target that holds the new bytes; says what per file.
fn finish(entries: &[Entry], now: &[(Now, bool)], shown: &str) -> Result<Vec<String>> {
    let mut said = Vec::new();
    for (e, (n, _)) in entries.iter().zip(now) {
        let target = escape(&e.target.to_string_lossy()).into_owned();
        if *n == Now::Old {
            fs::rename(&e.temp, &e.target).with_context(|| {
                format!("cannot finish the interrupted change recorded in {shown}: cannot replace {target}")
            })?;
            said.push(format!(
                "replaced {target} with the interrupted run's new text"
            ));
        } else {
            let _ = fs::remove_file(&e.temp);
            said.push(format!("{target} already held the new text"));
        }
    }
    Ok(said)
}

/// Removes the temporary files of a change that never reached its renames,
/// leaving every target as it is now; says what per file.
fn drop_staged(entries: &[Entry], now: &[(Now, bool)]) -> Vec<String> {
    let mut said = Vec::new();
    for (e, (n, _)) in entries.iter().zip(now) {
        let target = escape(&e.target.to_string_lossy()).into_owned();
        let removed = is_ours(&e.temp) && fs::remove_file(&e.temp).is_ok();
        let what = match n {
            Now::Old => "left as it was (not replaced yet)".to_string(),
            Now::New => "already held the new text".to_string(),
            Now::Other(change) => format!("left as it is now: it {change}"),
        };
        let temp = if removed {
            "; removed its temporary file"
        } else {
            ""
        };
        said.push(format!("{target}: {what}{temp}"));
    }
    said
}

/// Why a file stops the roll-forward, if it does.
fn conflict(e: &Entry, now: &Now, ready: bool) -> Option<String> {
    let target = escape(&e.target.to_string_lossy()).into_owned();
    match now {
        Now::New => None,
        Now::Old if ready => None,
        Now::Old => Some(format!(
            "{target} holds its text from before the change, but the new text's temporary file {} is \
             gone or damaged (restored by hand, or by git?)",
            escape(&e.temp.to_string_lossy())
        )),
        Now::Other(change) => Some(format!("{target} {change}")),
    }
}

/// The refusal when files changed after the kill: what changed, and both ways out.
fn stop_message(
    journal: &Path,
    entries: &[Entry],
    now: &[(Now, bool)],
    conflicts: &[String],
) -> String {
    let q = |p: &Path| quote(&p.to_string_lossy());
    let mut message = format!(
        "{} records a change an interrupted run began (some files already hold their new text), but \
         files changed since, so nothing was touched:\n",
        escape(&journal.to_string_lossy())
    );
    for c in conflicts {
        message.push_str(&format!("  {c}\n"));
    }
    let temps: Vec<String> = entries
        .iter()
        .filter(|e| e.temp.exists())
        .map(|e| q(&e.temp))
        .collect();
    message.push_str(
        "To keep every file as it is now and drop the rest of the interrupted change (then run the \
         command again: it adds only what is missing):\n",
    );
    message.push_str(
        &format!("  rm -f -- {} {}\n", temps.join(" "), q(journal)).replace("--  ", "-- "),
    );
    let finish: Vec<String> = entries
        .iter()
        .zip(now)
        .filter(|(_, (n, ready))| *n != Now::New && *ready)
        .map(|(e, _)| format!("  mv -f -- {} {}\n", q(&e.temp), q(&e.target)))
        .collect();
    if !finish.is_empty() {
        message.push_str(
            "Or to finish it, replacing the files named above with the interrupted run's text (edits \
             made since are lost):\n",
        );
        for line in finish {
            message.push_str(&line);
        }
        message.push_str(&format!("  rm -f -- {}", q(journal)));
    }
    message.trim_end().to_string()
}

/// Removes the draft of a journal a run was killed while writing: it never
/// reached its place, so that run had not created any temporary file.
fn drop_draft(journal: &Path) -> Result<()> {
    let draft = draft(journal);
    let Ok(meta) = fs::symlink_metadata(&draft) else {
        return Ok(());
    };
    let shown = escape(&draft.to_string_lossy()).into_owned();
    if !is_ours(&draft) || meta.nlink() != 1 {
        return Err(refused(format!(
            "{shown}: not a journal of this user (a link, or owned by uid {}); remove it, then run again",
            meta.uid()
        )));
    }
    remove(&draft)?;
    eprintln!(
        "note: removed {shown}, the unfinished journal of a run killed while writing it (before it \
         created any temporary file or changed any file)"
    );
    Ok(())
}

fn unreadable(shown: &str, problem: &str) -> anyhow::Error {
    refused(format!(
        "{shown}: cannot read this journal of an interrupted run ({problem}); nothing was touched. Look \
         at the files it names (temporary files are named `.<file>.xtask-<16 hex digits>.tmp` beside \
         their file), finish or undo the change by hand, then remove {shown}",
    ))
}

/// A journal an interrupted run left, described for a run that must not touch it
/// (`check`, `--dry-run`).
pub(super) fn describe_pending(journal: &Path) -> String {
    format!(
        "{} records a change an interrupted run did not finish; this run changes nothing, the next \
         add-db or remove-db (without --dry-run) finishes it",
        escape(&journal.to_string_lossy())
    )
}

#[cfg(test)]
mod tests;
