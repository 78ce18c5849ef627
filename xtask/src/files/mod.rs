//! One module per kind of file the tool reads and edits.
//!
//! Each module parses its file kind into a small model that records line numbers,
//! and offers pure `&str -> Result<String>` edits built on that same parser, so
//! `check` and `add-db` cannot disagree about what a file says. Nothing here does I/O.

pub mod app_copy;
pub mod chart;
pub mod generator;
pub mod helm_template;
pub mod pointers;
pub mod python;
pub mod secrets_yaml;
pub mod values;
mod yaml_fast;

#[cfg(test)]
mod no_panic_tests;

use std::fmt;

/// A problem with a file's content, at a 1-based line when one is known. The
/// caller adds the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub line: Option<usize>,
    pub message: String,
}

impl FileError {
    pub fn at(line: usize, message: impl Into<String>) -> FileError {
        FileError {
            line: Some(line),
            message: message.into(),
        }
    }
    /// An edit whose result did not verify: a bug of this tool, not of the file.
    pub fn unverified(what: &str) -> FileError {
        FileError::whole(format!("internal error: {what}; nothing was written"))
    }

    pub fn whole(message: impl Into<String>) -> FileError {
        FileError {
            line: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for FileError {}

pub type FileResult<T> = Result<T, FileError>;

/// A file's text as lines, remembering its line ending and whether it ended with
/// one, so that an edit changes only the lines it means to.
#[derive(Debug, Clone)]
pub struct TextLines {
    pub lines: Vec<String>,
    newline: &'static str,
    final_newline: bool,
}

impl TextLines {
    pub fn new(text: &str) -> TextLines {
        let newline = if text.contains("\r\n") { "\r\n" } else { "\n" };
        let final_newline = text.ends_with('\n');
        let body = text.strip_suffix(newline).unwrap_or(text);
        let lines = if text.is_empty() {
            Vec::new()
        } else {
            body.split(newline).map(str::to_string).collect()
        };
        TextLines {
            lines,
            newline,
            final_newline: final_newline || text.is_empty(),
        }
    }

    pub fn insert(&mut self, index: usize, new_lines: impl IntoIterator<Item = String>) {
        let tail = self.lines.split_off(index);
        self.lines.extend(new_lines);
        self.lines.extend(tail);
    }

    pub fn remove(&mut self, range: std::ops::RangeInclusive<usize>) {
        self.lines.drain(range);
    }

    pub fn render(&self) -> String {
        let mut out = self.lines.join(self.newline);
        if self.final_newline && !self.lines.is_empty() {
            out.push_str(self.newline);
        }
        out
    }
}

/// Where a new key goes among `keys` that a human keeps in alphabetical order:
/// the index of the entry it goes before (`keys.len()` for the end), or `None`
/// when the keys are not sorted. Sorting is loose, as humans keep it: `_` and `-`
/// compare equal, and a list counts as sorted when at most two of its entries
/// (and fewer than a third) are out of place.
pub fn sorted_position(keys: &[&str], new: &str) -> Option<usize> {
    let norm = |k: &str| k.replace('-', "_");
    let normalized: Vec<String> = keys.iter().map(|k| norm(k)).collect();
    // The longest non-decreasing run of entries, kept in order (O(n^2) is fine:
    // a generator or secrets.yaml holds tens of keys).
    let n = normalized.len();
    let mut best = vec![1usize; n];
    let mut prev = vec![usize::MAX; n];
    for i in 0..n {
        for j in 0..i {
            if normalized[j] <= normalized[i] && best[j] + 1 > best[i] {
                best[i] = best[j] + 1;
                prev[i] = j;
            }
        }
    }
    let Some(end) = (0..n).max_by_key(|&i| (best[i], std::cmp::Reverse(i))) else {
        return Some(0);
    };
    let out_of_place = n - best[end];
    if n < 2 || out_of_place > 2 || out_of_place * 3 >= n {
        return None;
    }
    let mut in_order = vec![false; n];
    let mut i = end;
    loop {
        in_order[i] = true;
        if prev[i] == usize::MAX {
            break;
        }
        i = prev[i];
    }
    let new = norm(new);
    Some(
        (0..n)
            .find(|&i| in_order[i] && normalized[i] > new)
            .unwrap_or(n),
    )
}

/// The smallest indentation step used anywhere in a YAML text, 2 if none.
pub fn indent_step(text: &str) -> usize {
    text.lines()
        .filter(|l| !is_blank_or_comment(l))
        .map(indent_of)
        .filter(|&i| i > 0)
        .min()
        .unwrap_or(2)
}

/// The number of leading spaces of a line.
pub fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// A line that holds nothing but white space or a comment.
pub fn is_blank_or_comment(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

pub fn is_blank(line: &str) -> bool {
    line.trim().is_empty()
}

/// Splits `key: rest` (after the indentation and an optional `- `) into the
/// unquoted key and the text after the colon, without a trailing comment.
pub fn split_key(line: &str) -> Option<(String, &str)> {
    let t = line.trim_start();
    let t = t.strip_prefix("- ").unwrap_or(t).trim_start();
    let (key, rest) = if let Some(q) = t.chars().next().filter(|c| *c == '"' || *c == '\'') {
        let end = t[1..].find(q)? + 1;
        let rest = t[end + 1..].trim_start().strip_prefix(':')?;
        (t[1..end].to_string(), rest)
    } else {
        let colon = t.find(':')?;
        let key = &t[..colon];
        if key.is_empty() || key.contains(' ') || key.starts_with('#') || key.starts_with('{') {
            return None;
        }
        let rest = &t[colon + 1..];
        if !(rest.is_empty() || rest.starts_with(' ') || rest.starts_with('\t')) {
            return None;
        }
        (key.to_string(), rest)
    };
    Some((key, strip_comment(rest).trim()))
}

/// Drops a YAML comment (`  # ...`) from a value, respecting quotes.
pub fn strip_comment(text: &str) -> &str {
    let mut quote = None;
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        match (quote, b) {
            (None, b'"' | b'\'') => quote = Some(b),
            (Some(q), _) if b == q => quote = None,
            (None, b'#') if i == 0 || bytes[i - 1] == b' ' || bytes[i - 1] == b'\t' => {
                return &text[..i];
            }
            _ => {}
        }
    }
    text
}

/// A scalar's text without its YAML quotes.
pub fn unquote(text: &str) -> &str {
    let t = text.trim();
    for q in ['"', '\''] {
        if t.len() >= 2 && t.starts_with(q) && t.ends_with(q) {
            return &t[1..t.len() - 1];
        }
    }
    t
}

/// Parses YAML text as a document, with duplicate keys refused, for verification and
/// for `yaml-syntax` findings: the plain subset fast, the rest with serde_yaml.
pub fn parse_yaml(text: &str) -> FileResult<serde_yaml::Value> {
    if let Some(value) = yaml_fast::parse(text) {
        return Ok(value);
    }
    serde_yaml::from_str::<serde_yaml::Value>(text).map_err(|e| {
        let location = e.location().map(|l| (l.line(), l.column()));
        let message = e.to_string();
        // serde_yaml places a duplicate key at the start of its mapping: find the key.
        let line = match (location, duplicate_key_of(&message)) {
            (Some((line, column)), Some(key)) => {
                duplicate_line(text, line, column, key).or(Some(line))
            }
            (location, _) => location.map(|(line, _)| line),
        };
        FileError {
            line,
            message: format!("YAML does not parse: {message}"),
        }
    })
}

/// The key of serde_yaml's `duplicate entry with key "K"` message.
fn duplicate_key_of(message: &str) -> Option<&str> {
    let rest = &message[message.find("duplicate entry with key \"")? + 26..];
    rest.get(..rest.find('"')?)
}

/// The 1-based line of the second `key:` of the mapping that starts at `line`, `column`.
fn duplicate_line(text: &str, line: usize, column: usize, key: &str) -> Option<usize> {
    let indent = column.saturating_sub(1);
    let mut seen = false;
    for (i, l) in text.lines().enumerate().skip(line.saturating_sub(1)) {
        if is_blank_or_comment(l) {
            continue;
        }
        let at_indent = if i + 1 == line {
            true
        } else {
            indent_of(l) == indent
        };
        if i + 1 > line && indent_of(l) < indent {
            break;
        }
        if at_indent && split_key(l).is_some_and(|(k, _)| k == key) {
            if seen {
                return Some(i + 1);
            }
            seen = true;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loosely_sorted_keys_give_the_alphabetical_place() {
        let keys = ["a_password", "c_password", "e_password", "g_password"];
        assert_eq!(sorted_position(&keys, "b_password"), Some(1));
        assert_eq!(sorted_position(&keys, "z_password"), Some(4));
        assert_eq!(sorted_position(&keys, "0_password"), Some(0));
        // `_` and `-` compare alike, either way round.
        let keys = ["vo_beta", "vo-cutouts_password", "vo_delta"];
        assert_eq!(sorted_position(&keys, "vo_c"), Some(1));
        assert_eq!(sorted_position(&keys, "vo-cz"), Some(2));
        // One exception in six: still sorted; the exception is not a landmark.
        let keys = ["a", "c", "zz", "e", "g", "i"];
        assert_eq!(sorted_position(&keys, "d"), Some(3));
        assert_eq!(sorted_position(&keys, "h"), Some(5));
        // Two in nine.
        let keys = ["a", "q", "c", "d", "b", "f", "g", "h", "i"];
        assert_eq!(sorted_position(&keys, "e"), Some(5));
        // Not sorted: too many out of place, or too few entries to tell.
        assert_eq!(
            sorted_position(&["jupyterhub", "root", "gafaelfawr", "narrativelog"], "e"),
            None
        );
        assert_eq!(sorted_position(&["b", "a"], "c"), None);
        assert_eq!(sorted_position(&["a", "d", "c", "b", "e", "f"], "c"), None);
        assert_eq!(sorted_position(&["only"], "a"), None);
        assert_eq!(sorted_position(&["a", "b"], "c"), Some(2));
    }

    #[test]
    fn text_lines_round_trip() {
        for text in ["a\nb\n", "a\nb", "", "a\r\nb\r\n", "a\n\n"] {
            assert_eq!(TextLines::new(text).render(), text, "{text:?}");
        }
    }

    #[test]
    fn keys_and_comments() {
        let cases = [
            ("  user: 'jovyan' # the hub", Some(("user", "'jovyan'"))),
            ("\"x_db\": {user: a}", Some(("x_db", "{user: a}"))),
            ("- name: postgres", Some(("name", "postgres"))),
            ("url: https://x", Some(("url", "https://x"))),
            ("# a: b", None),
            ("plain text", None),
        ];
        for (line, expected) in cases {
            let expected = expected.map(|(key, value)| (key.into(), value));
            assert_eq!(split_key(line), expected, "{line}");
        }
        assert_eq!(strip_comment("'a # b' # c"), "'a # b' ");
        assert_eq!(unquote(" \"a\" "), "a");
    }

    #[test]
    fn duplicate_keys_are_errors_with_a_line() {
        let err = parse_yaml("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert!(err.message.contains("duplicate"), "{err}");
        assert_eq!(err.line, Some(3));
    }
}
