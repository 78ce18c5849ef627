//! The pure edits of a move (`&str -> Result<String>`, no I/O): a consumer's values
//! pointed at the new server in its own shape, and the password sources of
//! `secrets.yaml` turned away from postgres. Each edit re-parses its output and
//! compares it with the input changed by exactly that edit (as a YAML tree), so a
//! file is never written in a shape the edit did not intend.
//!
//! - [`moved_url`]: a connection URL with the new host, port, user and database,
//!   keeping its scheme (`postgresql+asyncpg`) and query.
//! - [`set_path`]: a dotted key path of a block-YAML values file set to a scalar,
//!   in place when the key is there (its quoting and comment kept), else added under
//!   its deepest existing parent, with the file's indentation.
//! - [`copy_to_generate`], [`generate_to_copy`], [`drop_condition`]: the sources of
//!   `secrets.yaml` entries.

use serde_yaml::{Mapping, Value};

use super::target::MoveTarget;
use crate::files::secrets_yaml::{self, Source};
use crate::files::{
    indent_of, indent_step, is_blank_or_comment, parse_yaml, split_key, strip_comment, FileError,
    FileResult,
};

/// Words that YAML 1.1 (PyYAML, which phalanx reads values with) takes for a boolean
/// or null: never written plain.
const YAML11_WORDS: &[&str] = &["y", "n", "yes", "no", "on", "off", "true", "false", "null"];

/// A scalar to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scalar<'a> {
    Bool(bool),
    Number(u64),
    Text(&'a str),
}

impl Scalar<'_> {
    fn value(self) -> Value {
        match self {
            Scalar::Bool(b) => Value::Bool(b),
            Scalar::Number(n) => Value::from(n),
            Scalar::Text(t) => Value::String(t.to_string()),
        }
    }

    /// Its YAML form; a text in the quote style of `like` (the value it replaces)
    /// when that style can hold it, else plain when YAML reads it back as the same
    /// string, else double-quoted.
    fn render(self, like: &str) -> String {
        let text = match self {
            Scalar::Bool(b) => return b.to_string(),
            Scalar::Number(n) => return n.to_string(),
            Scalar::Text(t) => t,
        };
        let plain_ok = !text.is_empty()
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_./:@+%=,".contains(&b))
            && text.starts_with(|c: char| c.is_ascii_alphabetic())
            && !YAML11_WORDS.contains(&text.to_ascii_lowercase().as_str())
            && serde_yaml::from_str::<Value>(text).ok() == Some(Value::String(text.into()));
        if like.starts_with('\'') && !text.contains('\'') {
            format!("'{text}'")
        } else if like.starts_with('"') || !plain_ok {
            let escaped = text.replace('\\', "\\\\").replace('"', "\\\"");
            format!("\"{escaped}\"")
        } else {
            text.to_string()
        }
    }
}

/// The URL `old` pointed at the new server: `SCHEME://USER@HOST[:PORT]/DB[?QUERY]`.
/// `None` when `old` is no URL this can rewrite (a password in it, no `://`).
pub fn moved_url(old: &str, to: &MoveTarget, user: &str, database: &str) -> Option<String> {
    let (scheme, rest) = old.split_once("://")?;
    if !scheme.starts_with("postgres") {
        return None;
    }
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (rest, String::new()),
    };
    let authority = before_query.split('/').next().unwrap_or("");
    if authority
        .rsplit_once('@')
        .is_some_and(|(info, _)| info.contains(':'))
    {
        return None;
    }
    let host = to.host_port();
    Some(format!("{scheme}://{user}@{host}/{database}{query}"))
}

/// Where a dotted path is in a block-YAML text.
enum Place {
    /// 0-based line of the last key.
    Found(usize),
    /// Absent from `depth` on: insert the missing keys before 0-based `at`, the
    /// first of them indented by `indent`.
    Missing {
        depth: usize,
        at: usize,
        indent: usize,
    },
}

/// The end (exclusive) of the block that the key on line `j` opens: the lines
/// after it that are blank, comments or indented deeper.
fn block_end(lines: &[&str], j: usize) -> usize {
    let indent = indent_of(lines[j]);
    let mut end = j + 1;
    for (k, line) in lines.iter().enumerate().skip(j + 1) {
        if is_blank_or_comment(line) {
            continue;
        }
        if indent_of(line) <= indent {
            break;
        }
        end = k + 1;
    }
    end
}

fn locate(lines: &[&str], path: &[&str], step: usize) -> FileResult<Place> {
    let (mut from, mut to, mut indent) = (0, lines.len(), 0);
    for (depth, segment) in path.iter().enumerate() {
        let children: Vec<usize> = (from..to)
            .filter(|&k| !is_blank_or_comment(lines[k]) && indent_of(lines[k]) == indent)
            .collect();
        let found = children
            .iter()
            .copied()
            .find(|&k| split_key(lines[k]).is_some_and(|(key, _)| key == *segment));
        let Some(j) = found else {
            let at = children.last().map_or(from, |&k| block_end(lines, k));
            return Ok(Place::Missing { depth, at, indent });
        };
        if lines[j].trim_start().starts_with("- ") {
            return Err(FileError::at(
                j + 1,
                "a list item on the path: edit it by hand",
            ));
        }
        if depth + 1 == path.len() {
            return Ok(Place::Found(j));
        }
        let rest = split_key(lines[j]).map(|(_, r)| r).unwrap_or_default();
        if !rest.is_empty() {
            return Err(FileError::at(
                j + 1,
                format!("`{segment}` holds `{rest}`, not a block mapping: edit it by hand"),
            ));
        }
        from = j + 1;
        to = block_end(lines, j);
        indent = (from..to)
            .find(|&k| !is_blank_or_comment(lines[k]))
            .map_or(indent + step, |k| indent_of(lines[k]));
    }
    Err(FileError::whole("an empty key path"))
}

/// Sets `path` (`a.b.c`) in a tree, making the missing mappings.
fn set_in_tree(root: &mut Value, path: &[&str], value: Value) -> bool {
    let mut node = root;
    for (i, segment) in path.iter().enumerate() {
        if node.is_null() {
            *node = Value::Mapping(Mapping::new());
        }
        let Some(map) = node.as_mapping_mut() else {
            return false;
        };
        let key = Value::String(segment.to_string());
        if i + 1 == path.len() {
            map.insert(key, value);
            return true;
        }
        node = map.entry(key).or_insert(Value::Null);
    }
    false
}

/// Sets the dotted `path` of a block-YAML file to `value` (see the module's
/// documentation); the result is verified as the input's tree with that one change.
pub fn set_path(text: &str, path: &str, value: Scalar) -> FileResult<String> {
    let segments: Vec<&str> = path.split('.').collect();
    let lines: Vec<&str> = text.lines().collect();
    let step = indent_step(text);
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    match locate(&lines, &segments, step)? {
        Place::Found(j) => {
            let line = lines[j];
            let (_, rest) = split_key(line).expect("located on a key");
            if rest.is_empty() || rest.starts_with(['|', '>', '{', '[', '&', '*', '!']) {
                return Err(FileError::at(
                    j + 1,
                    format!("`{path}` is not a plain scalar here: edit it by hand"),
                ));
            }
            let raw_end = line.find(": ").unwrap_or(line.len() - 1);
            let head = &line[..raw_end];
            let after_colon = &line[raw_end + 1..];
            let value_text = strip_comment(after_colon);
            let comment = &after_colon[value_text.len()..];
            let old = value_text.trim();
            let lead = &value_text[..value_text.len() - value_text.trim_start().len()];
            let rendered = value.render(old);
            let gap = &value_text[value_text.trim_end().len()..];
            out[j] = format!("{head}:{lead}{rendered}{gap}{comment}");
        }
        Place::Missing { depth, at, indent } => {
            let mut new = Vec::new();
            for (k, segment) in segments.iter().enumerate().skip(depth) {
                let pad = " ".repeat(indent + (k - depth) * step);
                if k + 1 == segments.len() {
                    new.push(format!("{pad}{segment}: {}", value.render("")));
                } else {
                    new.push(format!("{pad}{segment}:"));
                }
            }
            out.splice(at..at, new);
        }
    }
    let mut result = out.join("\n");
    if text.ends_with('\n') || text.is_empty() {
        result.push('\n');
    }
    let mut expected = parse_yaml(text)?;
    let set = set_in_tree(&mut expected, &segments, value.value());
    if !set || parse_yaml(&result).ok() != Some(expected) {
        return Err(FileError::unverified(&format!("setting `{path}`")));
    }
    Ok(result)
}

/// The 0-based lines `first..=last` of entry `key`, and its children's indentation.
fn entry_lines(text: &str, key: &str) -> FileResult<(usize, usize, usize)> {
    let parsed = secrets_yaml::parse(text)?;
    let entry = parsed
        .entry(key)
        .ok_or_else(|| FileError::whole(format!("there is no entry `{key}`")))?;
    let lines: Vec<&str> = text.lines().collect();
    let child = (entry.first + 1..=entry.last)
        .find(|&k| !is_blank_or_comment(lines[k]))
        .map_or(indent_step(text), |k| indent_of(lines[k]));
    Ok((entry.first, entry.last, child))
}

/// Replaces the `generate:`/`copy:` block of entry `key` (0-based lines) with `new`
/// (lines without indentation; nested ones start with two spaces per level).
fn replace_source(text: &str, key: &str, new: &[&str]) -> FileResult<String> {
    let (first, last, child) = entry_lines(text, key)?;
    let lines: Vec<&str> = text.lines().collect();
    let step = indent_step(text);
    let start = (first + 1..=last)
        .find(|&k| {
            indent_of(lines[k]) == child
                && split_key(lines[k]).is_some_and(|(k, _)| k == "copy" || k == "generate")
        })
        .ok_or_else(|| FileError::at(first + 1, format!("`{key}` has no copy or generate")))?;
    let end = block_end(&lines, start).min(last + 1);
    let rendered: Vec<String> = new
        .iter()
        .map(|l| {
            let nested = (l.len() - l.trim_start().len()) / 2;
            format!("{}{}", " ".repeat(child + nested * step), l.trim_start())
        })
        .collect();
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    out.splice(start..end, rendered);
    Ok(out.join("\n") + if text.ends_with('\n') { "\n" } else { "" })
}

/// The YAML tree of every entry but `key`, for verification.
fn others(text: &str, key: &str) -> Option<Mapping> {
    let mut map = parse_yaml(text).ok()?.as_mapping()?.clone();
    map.remove(key);
    Some(map)
}

fn verified(before: &str, after: String, key: &str, source: Source) -> FileResult<String> {
    let parsed = secrets_yaml::parse(&after)?;
    let ok = others(before, key) == others(&after, key)
        && parsed.entry(key).map(|e| &e.source) == Some(&source);
    if ok {
        Ok(after)
    } else {
        Err(FileError::unverified(&format!(
            "changing the source of `{key}`"
        )))
    }
}

/// Entry `key` of an application's `secrets.yaml` made to generate its own password
/// instead of copying postgres's: its `copy:` block becomes `generate: {type:
/// password}` (phalanx keeps the value already in Vault), and an `if:` naming
/// `flag` (the internal-database flag the move turns off) is dropped.
pub fn copy_to_generate(text: &str, key: &str, flag: Option<&str>) -> FileResult<String> {
    let mut after = replace_source(text, key, &["generate:", "  type: password"])?;
    if let Some(flag) = flag {
        after = drop_condition(&after, key, flag)?;
    }
    verified(text, after, key, Source::Generate)
}

/// Entry `key` of postgres's `secrets.yaml` made to copy the application's
/// password (`copy: {application: APP, key: APP_KEY}`) instead of generating its own:
/// the two are equal today, and stay equal where the database stays.
pub fn generate_to_copy(text: &str, key: &str, app: &str, app_key: &str) -> FileResult<String> {
    let application = format!("  application: {}", Scalar::Text(app).render(""));
    let copied = format!("  key: {}", Scalar::Text(app_key).render(""));
    let after = replace_source(text, key, &["copy:", &application, &copied])?;
    let source = Source::Copy {
        application: app.to_string(),
        key: app_key.to_string(),
    };
    verified(text, after, key, source)
}

/// Drops every `if: FLAG` line inside entry `key` (at its top or in its `copy:` or
/// `generate:` block); nothing else changes.
pub fn drop_condition(text: &str, key: &str, flag: &str) -> FileResult<String> {
    let (first, last, _) = entry_lines(text, key)?;
    let lines: Vec<&str> = text.lines().collect();
    let keep: Vec<&str> = lines
        .iter()
        .enumerate()
        .filter(|(k, l)| {
            !(*k > first
                && *k <= last
                && split_key(l)
                    .is_some_and(|(name, v)| name == "if" && crate::files::unquote(v) == flag))
        })
        .map(|(_, l)| *l)
        .collect();
    let after = keep.join("\n") + if text.ends_with('\n') { "\n" } else { "" };
    let parsed = |t: &str| {
        secrets_yaml::parse(t)
            .ok()
            .and_then(|p| p.entry(key).map(|e| e.source.clone()))
    };
    if others(text, key) != others(&after, key) || parsed(text) != parsed(&after) {
        return Err(FileError::unverified(&format!(
            "dropping `if: {flag}` from `{key}`"
        )));
    }
    Ok(after)
}

#[cfg(test)]
mod tests;
