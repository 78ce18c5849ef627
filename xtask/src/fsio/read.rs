//! Reading a managed text file: regular files only, at most [`MAX_FILE_SIZE`],
//! UTF-8, one kind of line ending; and the file shapes (byte order mark, CRLF) that
//! [`normalize`] takes away for the parsers and [`denormalize`] puts back for the
//! write.

use std::fs::{self, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The largest file the tool reads: far above any real values file.
pub const MAX_FILE_SIZE: u64 = 16 * 1024 * 1024;

/// The byte order mark a file may start with.
pub(super) const BOM: &str = "\u{feff}";

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
pub(super) fn read_bytes(path: &Path) -> std::result::Result<Vec<u8>, String> {
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

/// What a file that is not a regular file is, for messages.
pub(super) fn kind_of(meta: &fs::Metadata) -> &'static str {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
