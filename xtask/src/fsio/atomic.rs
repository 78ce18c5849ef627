//! Replacing files so that a reader sees the old bytes or the new, never a mix:
//! the checks before a replacement (the real path, hard links, immutable files and,
//! as root, paths other users control), temporary files staged beside their target
//! (`O_EXCL|O_NOFOLLOW`, unpredictable names, mode and owner set on the open
//! descriptor, fsynced). The renames and the folder fsyncs are the session's
//! (`mod.rs`), between the journal's steps. The no-follow primitives ([`create_new`],
//! [`hand_over`], [`set_mode`], [`write_synced`], [`temp_name`]) are local-db's too.

use anyhow::{anyhow, Result};
use std::borrow::Cow;
use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::journal::Fingerprint;
use super::read::{denormalize, kind_of, normalize, read_bytes, shape_of, Shape, BOM};
use crate::error::{bad_input, refused};

/// One planned write: the text the file held when it was read (normalized, as
/// [`read_text`] returns it), if the plan read it, and the new text. A file that
/// does not exist yet (with no or an empty `before`) is created.
#[derive(Clone, Copy, Debug)]
pub struct Write<'a> {
    pub path: &'a Path,
    pub before: Option<&'a str>,
    pub text: &'a str,
}

/// A checked target: its real path, its new bytes in the file's shape, its
/// metadata and the fingerprint of the bytes it holds (none for a new file).
pub(super) struct Prepared<'a> {
    pub real: PathBuf,
    pub bytes: Cow<'a, [u8]>,
    pub meta: Option<fs::Metadata>,
    pub old: Option<Fingerprint>,
}

/// Resolves and checks a target (see [`Prepared`]).
pub(super) fn prepare<'a>(w: &Write<'a>) -> Result<Prepared<'a>> {
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
    refuse_unsafe_target(w.path, &real, &meta)?;
    let current = read_bytes(&real).map_err(bad_input)?;
    let bytes = in_its_shape(w, &current)?;
    Ok(Prepared {
        real,
        bytes,
        meta: Some(meta),
        old: Some(Fingerprint::of(&current)),
    })
}

/// Refuses an existing target (`path`, resolved to `real`) that is not a regular
/// file, has several hard links, cannot be replaced or, as root, lies on a path
/// another user controls.
fn refuse_unsafe_target(path: &Path, real: &Path, meta: &fs::Metadata) -> Result<()> {
    let shown = path.display();
    if !meta.file_type().is_file() {
        return Err(bad_input(format!(
            "{shown}: not a regular file ({}); nothing was changed",
            kind_of(meta)
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
        refuse_foreign_path(path, Some(meta))?;
        if real != path {
            refuse_foreign_path(real, Some(meta))?;
        }
    }
    refuse_unreplaceable(real, meta)
}

/// The new text of `w` laid out in the shape (byte order mark, CRLF) of the bytes
/// its file holds now, refusing a file changed since the plan read it.
fn in_its_shape<'a>(w: &Write<'a>, current: &[u8]) -> Result<Cow<'a, [u8]>> {
    let shown = w.path.display();
    let current_text =
        std::str::from_utf8(current).map_err(|_| bad_input(format!("{shown}: not UTF-8 text")))?;
    let shape =
        shape_of(current_text).map_err(|(line, m)| bad_input(format!("{shown}:{line}: {m}")))?;
    if let Some(before) = w.before {
        let unchanged = if shape == Shape::default() {
            current_text == before
        } else {
            normalize(current).map_err(|(_, m)| bad_input(format!("{shown}: {m}")))? == before
        };
        if !unchanged {
            return Err(refused(format!(
                "{shown}: changed by another program while this run was planning; nothing was changed. Run again"
            )));
        }
    }
    Ok(if shape == Shape::default() && !w.text.starts_with(BOM) {
        Cow::Borrowed(w.text.as_bytes())
    } else {
        Cow::Owned(denormalize(w.text, shape).into_bytes())
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

pub(super) fn is_root() -> bool {
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
pub(crate) fn temp_name(target: &Path) -> PathBuf {
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
/// target's mode (and owner, as root), and fsyncs it. A file or link already at
/// that name is an error, never followed or reused (see [`create_new`]).
pub(super) fn stage(
    temp: &Path,
    target: &Path,
    bytes: &[u8],
    meta: Option<&fs::Metadata>,
) -> Result<()> {
    let mode = meta.map_or(0o644, |m| m.permissions().mode() & 0o7777);
    let file = create_new(temp, mode).map_err(|e| {
        anyhow!(
            "cannot create a temporary file beside {}: {e}",
            target.display()
        )
    })?;
    let owner = meta.filter(|m| is_root() && (m.uid() != 0 || m.gid() != 0));
    let result = owner
        .map_or(Ok(()), |m| hand_over(&file, m.uid(), m.gid()))
        .and_then(|()| set_mode(&file, mode))
        .and_then(|()| write_synced(&file, bytes));
    result.map_err(|e| {
        let _ = fs::remove_file(temp);
        anyhow!("cannot write {}: {e}", temp.display())
    })
}

/// Creates the new file `path` for writing with `O_EXCL|O_NOFOLLOW`: a file or a
/// link already at that name is an error, never followed or reused. The umask may
/// narrow `mode`; [`set_mode`] sets it exactly.
pub(crate) fn create_new(path: &Path, mode: u32) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode & 0o777)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
}

/// Gives the open `file` to user `uid` and group `gid`, through its descriptor (a
/// name swapped in the meantime is not affected). Before [`set_mode`], which
/// restores the set-id bits a change of owner clears.
pub(crate) fn hand_over(file: &File, uid: u32, gid: u32) -> io::Result<()> {
    std::os::unix::fs::fchown(file, Some(uid), Some(gid))
}

/// Sets the open `file`'s mode to exactly `mode`, whatever the umask was.
pub(crate) fn set_mode(file: &File, mode: u32) -> io::Result<()> {
    file.set_permissions(fs::Permissions::from_mode(mode))
}

/// Writes all of `bytes` to `file` and fsyncs it.
pub(crate) fn write_synced(mut file: &File, bytes: &[u8]) -> io::Result<()> {
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_files_never_follow_or_reuse_a_name_and_get_their_exact_mode() {
        let dir = std::env::temp_dir().join(format!("xtask-atomic-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let victim = dir.join("victim");
        fs::write(&victim, "kept").unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        assert!(create_new(&link, 0o600).is_err(), "a link was followed");
        assert!(create_new(&victim, 0o600).is_err(), "a file was reused");
        assert_eq!(fs::read_to_string(&victim).unwrap(), "kept");

        let fresh = dir.join("fresh");
        let file = create_new(&fresh, 0o640).unwrap();
        set_mode(&file, 0o640).unwrap();
        write_synced(&file, b"new").unwrap();
        assert_eq!(fs::read_to_string(&fresh).unwrap(), "new");
        assert_eq!(fs::metadata(&fresh).unwrap().mode() & 0o7777, 0o640);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn temporary_names_are_hidden_beside_their_target_and_differ() {
        let target = Path::new("/repo/values.yaml");
        let (a, b) = (temp_name(target), temp_name(target));
        assert_ne!(a, b);
        assert_eq!(a.parent(), target.parent());
        let name = a.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with(".values.yaml.xtask-") && name.ends_with(".tmp"),
            "{name}"
        );
    }
}
