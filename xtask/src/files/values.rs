//! `values-<env>.yaml`: the database entries of one environment.
//!
//! An entry is `<name>_db: {user: U, db: D}` in flow or block style. In the `split`
//! layout the entries sit under the top-level key `postgres:` (the umbrella chart
//! passes them to its dependency); elsewhere at the top level. The text is scanned
//! line by line for positions and style, and parsed with serde_yaml for meaning; an
//! edit is verified by comparing the two parses before and after.

use serde_yaml::{Mapping, Value};

use super::{
    indent_of, indent_step, is_blank, is_blank_or_comment, parse_yaml, split_key, FileError,
    FileResult, TextLines,
};

/// Where a layout keeps its database entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nesting {
    /// Under the top-level key `postgres:` (`split`).
    UnderPostgres,
    /// At the top level (`in-tree`, `applications`).
    TopLevel,
}

/// How an entry writes its scalars.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quote {
    Plain,
    Single,
    Double,
}

impl Quote {
    fn wrap(self, word: &str) -> String {
        // YAML 1.1, which Helm reads with, takes these words for booleans or null.
        const SPECIAL: &[&str] = &["y", "n", "yes", "no", "on", "off", "true", "false", "null"];
        match self {
            Quote::Single => format!("'{word}'"),
            Quote::Double => format!("\"{word}\""),
            Quote::Plain if SPECIAL.contains(&word) => format!("\"{word}\""),
            Quote::Plain => word.to_string(),
        }
    }
}

/// One `<name>_db` key with what it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbEntry {
    pub key: String,
    /// 1-based line of the key.
    pub line: usize,
    /// 0-based first and last line of the entry's text.
    pub first: usize,
    pub last: usize,
    pub indent: usize,
    /// Indentation of the entry's children, for block style.
    pub child_indent: Option<usize>,
    pub user: Option<String>,
    pub db: Option<String>,
    /// Why the entry cannot be used (not a mapping, lacks `user` or `db`).
    pub problem: Option<String>,
    pub quote: Quote,
}

/// What one values file says about databases.
#[derive(Clone, Debug)]
pub struct ValuesFile {
    pub entries: Vec<DbEntry>,
    /// The Vault path of the `postgres` secret, from `vault_secrets.path` next to the
    /// entries or from `global.vaultSecretsPath`.
    pub vault_path: Option<String>,
    /// 0-based line of the `postgres:` key (`UnderPostgres` only).
    container_index: Option<usize>,
    /// Whether the `postgres:` key holds an inline value (`postgres: {}`).
    container_inline: bool,
    root: Value,
}

impl ValuesFile {
    pub fn entry(&self, key: &str) -> Option<&DbEntry> {
        self.entries.iter().find(|e| e.key == key)
    }

    /// 1-based line of the `postgres:` key (`UnderPostgres` only).
    pub fn container_line(&self) -> Option<usize> {
        self.container_index.map(|i| i + 1)
    }
}

/// Where the database entries are: the container's mapping (`postgres:` or the root),
/// the 0-based line of `postgres:`, and the range of lines below it.
fn container<'a>(
    root: &'a Value,
    lines: &[&str],
    nesting: Nesting,
) -> (Option<&'a Value>, Option<usize>, std::ops::Range<usize>) {
    match nesting {
        Nesting::TopLevel => (Some(root), None, 0..lines.len()),
        Nesting::UnderPostgres => {
            let index = lines.iter().position(|l| {
                indent_of(l) == 0 && split_key(l).is_some_and(|(k, _)| k == "postgres")
            });
            let end = index.map_or(0, |i| {
                (i + 1..lines.len())
                    .find(|&j| !is_blank_or_comment(lines[j]) && indent_of(lines[j]) == 0)
                    .unwrap_or(lines.len())
            });
            let range = index.map_or(0..0, |i| i + 1..end);
            (root.get("postgres"), index, range)
        }
    }
}

/// The `X_db` keys of a mapping.
fn db_keys(mapping: &Mapping) -> impl Iterator<Item = &str> {
    mapping
        .keys()
        .filter_map(Value::as_str)
        .filter(|k| k.ends_with("_db"))
}

/// The entries written in block style in `range` at `child_indent`; every `X_db` of
/// the mapping must be found there.
fn block_entries(
    mapping: &Mapping,
    lines: &[&str],
    range: std::ops::Range<usize>,
    child_indent: usize,
    container_line: usize,
) -> FileResult<Vec<DbEntry>> {
    let mut entries = Vec::new();
    for j in range.clone() {
        let line = lines[j];
        if is_blank_or_comment(line) || indent_of(line) != child_indent {
            continue;
        }
        let Some((key, _)) = split_key(line).filter(|(k, _)| k.ends_with("_db")) else {
            continue;
        };
        let last = (j + 1..range.end)
            .filter(|&k| !is_blank_or_comment(lines[k]))
            .take_while(|&k| indent_of(lines[k]) > child_indent)
            .last()
            .unwrap_or(j);
        let value = mapping.get(key.as_str()).cloned().unwrap_or(Value::Null);
        entries.push(entry_from(key, j, last, child_indent, lines, &value));
    }
    if let Some(key) = db_keys(mapping).find(|k| !entries.iter().any(|e| e.key == *k)) {
        return Err(FileError::at(
            container_line,
            format!("cannot find where `{key}` is written; write the entries in block style, one key per line"),
        ));
    }
    Ok(entries)
}

/// Parses a values file.
pub fn parse(text: &str, nesting: Nesting) -> FileResult<ValuesFile> {
    let root = parse_yaml(text)?;
    let root = match root {
        Value::Null => Value::Mapping(Mapping::new()),
        Value::Mapping(_) => root,
        _ => return Err(FileError::at(1, "the file is not a YAML mapping")),
    };
    let lines: Vec<&str> = text.lines().collect();
    let (container, container_index, range) = container(&root, &lines, nesting);
    let container_inline = container_index
        .is_some_and(|i| split_key(lines[i]).is_some_and(|(_, rest)| !rest.is_empty()));
    let container_line = container_index.map_or(1, |i| i + 1);
    let mapping = match container {
        None | Some(Value::Null) => None,
        Some(Value::Mapping(m)) => Some(m),
        Some(_) => {
            return Err(FileError::at(
                container_line,
                "`postgres:` is not a mapping",
            ))
        }
    };
    let child_indent = range
        .clone()
        .find(|&j| !is_blank_or_comment(lines[j]) && lines[j].trim() != "---")
        .map(|j| indent_of(lines[j]));
    let entries = match (mapping, container_index, child_indent) {
        // `postgres: {a_db: {...}}`: every entry is on the container's line.
        (Some(mapping), Some(index), _) if container_inline => db_keys(mapping)
            .map(|key| {
                let value = mapping.get(key).cloned().unwrap_or(Value::Null);
                entry_from(key.to_string(), index, index, 0, &lines, &value)
            })
            .collect(),
        (Some(mapping), _, Some(indent)) => {
            block_entries(mapping, &lines, range, indent, container_line)?
        }
        _ => Vec::new(),
    };
    let vault_path = mapping
        .and_then(|m| m.get("vault_secrets"))
        .and_then(|v| v.get("path"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| {
            root.get("global")
                .and_then(|g| g.get("vaultSecretsPath"))
                .and_then(Value::as_str)
                .map(|base| format!("{}/postgres", base.trim_end_matches('/')))
        });
    Ok(ValuesFile {
        entries,
        vault_path,
        container_index,
        container_inline,
        root,
    })
}

fn entry_from(
    key: String,
    first: usize,
    last: usize,
    indent: usize,
    lines: &[&str],
    value: &Value,
) -> DbEntry {
    let child_indent = (first + 1..=last)
        .find(|&k| !is_blank_or_comment(lines[k]))
        .map(|k| indent_of(lines[k]));
    let text = lines[first..=last].join("\n");
    let quote = ["user:", "db:"]
        .iter()
        .filter_map(|field| {
            text.find(field)
                .map(|at| text[at + field.len()..].trim_start())
        })
        .find_map(|rest| match rest.chars().next() {
            Some('\'') => Some(Quote::Single),
            Some('"') => Some(Quote::Double),
            _ => None,
        })
        .unwrap_or(Quote::Plain);
    let field = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_string);
    let (user, db) = (field("user"), field("db"));
    let problem = match value {
        Value::Mapping(m) => {
            let missing: Vec<&str> = ["user", "db"]
                .into_iter()
                .filter(|f| !m.get(*f).is_some_and(Value::is_string))
                .collect();
            (!missing.is_empty())
                .then(|| format!("`{key}` lacks a string `{}`", missing.join("` and `")))
        }
        _ => Some(format!("`{key}` is not a mapping with `user` and `db`")),
    };
    DbEntry {
        key,
        line: first + 1,
        first,
        last,
        indent,
        child_indent,
        user,
        db,
        problem,
        quote,
    }
}

/// Adds the entry `key: {user, db}` in block style after the last database entry,
/// in the file's quoting and indentation. The key must not be present yet.
#[cfg(test)]
pub fn add_entry(
    text: &str,
    nesting: Nesting,
    key: &str,
    user: &str,
    db: &str,
) -> FileResult<String> {
    add_entry_parsed(text, &parse(text, nesting)?, nesting, key, user, db)
}

/// `add_entry` for a text already parsed (`parsed` must be `parse(text)`), so a
/// large file is not parsed once more.
pub fn add_entry_parsed(
    text: &str,
    parsed: &ValuesFile,
    nesting: Nesting,
    key: &str,
    user: &str,
    db: &str,
) -> FileResult<String> {
    if parsed.entry(key).is_some() {
        return Err(FileError::whole(format!("`{key}` is already present")));
    }
    if parsed.container_inline {
        let line = parsed.container_index.map_or(1, |i| i + 1);
        return Err(FileError::at(
            line,
            "`postgres:` is written inline; write it in block style to add entries",
        ));
    }
    let mut doc = TextLines::new(text);
    let step = indent_step(text);
    let last_entry = parsed.entries.last();
    let indent = match (last_entry, nesting) {
        (Some(e), _) => e.indent,
        (None, Nesting::TopLevel) => 0,
        (None, Nesting::UnderPostgres) => {
            let children = parsed.container_index.map(|i| {
                doc.lines[i + 1..]
                    .iter()
                    .take_while(|l| is_blank_or_comment(l) || indent_of(l) > 0)
                    .find(|l| !is_blank_or_comment(l))
                    .map(|l| indent_of(l))
            });
            children.flatten().unwrap_or(step)
        }
    };
    let child_step = last_entry
        .and_then(|e| e.child_indent.map(|c| c - e.indent))
        .unwrap_or(step);
    let quote = majority_quote(&parsed.entries);
    let pad = " ".repeat(indent);
    let child_pad = " ".repeat(indent + child_step);
    let mut block = vec![
        format!("{pad}{key}:"),
        format!("{child_pad}user: {}", quote.wrap(user)),
        format!("{child_pad}db: {}", quote.wrap(db)),
    ];

    let at = match (last_entry, parsed.container_index) {
        (Some(last), _) => {
            if entries_separated(&parsed.entries, &doc.lines) {
                block.insert(0, String::new());
            }
            last.last + 1
        }
        (None, Some(container)) => container + 1,
        (None, None) => {
            let end = doc
                .lines
                .iter()
                .rposition(|l| !is_blank(l))
                .map_or(0, |i| i + 1);
            if nesting == Nesting::UnderPostgres {
                // The block is already indented by `step` (there are no children to copy).
                block = std::iter::once("postgres:".to_string())
                    .chain(block)
                    .collect();
            }
            if end > 0 && top_level_keys_separated(&doc.lines[..end]) {
                block.insert(0, String::new());
            }
            end
        }
    };
    doc.insert(at, block);
    let result = doc.render();
    drop(doc);
    verify_change(parsed, &result, nesting, key, Some((user, db)))?;
    Ok(result)
}

/// The quoting most entries use (the last entry's among equals), plain if none.
fn majority_quote(entries: &[DbEntry]) -> Quote {
    let count = |q: Quote| entries.iter().filter(|e| e.quote == q).count();
    let mut best: Option<(usize, Quote)> = None;
    for e in entries.iter().rev() {
        let n = count(e.quote);
        if best.is_none_or(|(m, _)| n > m) {
            best = Some((n, e.quote));
        }
    }
    best.map_or(Quote::Plain, |(_, q)| q)
}

/// Whether most pairs of neighbouring entries have a blank line between them.
fn entries_separated(entries: &[DbEntry], lines: &[String]) -> bool {
    let gaps = entries.windows(2).count();
    let blank = entries
        .windows(2)
        .filter(|w| (w[0].last + 1..w[1].first).any(|k| is_blank(&lines[k])))
        .count();
    gaps > 0 && blank * 2 >= gaps
}

/// Whether the top-level keys of a file are separated by blank lines.
fn top_level_keys_separated<S: AsRef<str>>(lines: &[S]) -> bool {
    lines
        .iter()
        .enumerate()
        .skip(1)
        .filter(|(_, l)| !is_blank_or_comment(l.as_ref()) && indent_of(l.as_ref()) == 0)
        .any(|(i, _)| is_blank(lines[i - 1].as_ref()))
}

/// Removes the entry `key` with the comment lines directly above it and one of the
/// blank lines that separated it, leaving the rest byte for byte.
#[cfg(test)]
pub fn remove_entry(text: &str, nesting: Nesting, key: &str) -> FileResult<String> {
    remove_entry_parsed(text, &parse(text, nesting)?, nesting, key)
}

/// `remove_entry` for a text already parsed (`parsed` must be `parse(text)`).
pub fn remove_entry_parsed(
    text: &str,
    parsed: &ValuesFile,
    nesting: Nesting,
    key: &str,
) -> FileResult<String> {
    let Some(entry) = parsed.entry(key) else {
        return Err(FileError::whole(format!("`{key}` is not present")));
    };
    if parsed.container_inline {
        return Err(FileError::at(
            entry.line,
            "`postgres:` is written inline; write it in block style to remove entries",
        ));
    }
    let mut doc = TextLines::new(text);
    let section_start = parsed.container_index.map_or(0, |i| i + 1);
    let mut first = entry.first;
    let mut above = first;
    while above > section_start
        && doc.lines[above - 1].trim_start().starts_with('#')
        && indent_of(&doc.lines[above - 1]) == entry.indent
    {
        above -= 1;
    }
    if above > section_start {
        first = above;
    }
    let mut last = entry.last;
    if first > section_start && is_blank(&doc.lines[first - 1]) {
        first -= 1;
    } else if first == section_start && last + 1 < doc.lines.len() && is_blank(&doc.lines[last + 1])
    {
        last += 1;
    }
    doc.remove(first..=last);
    let result = doc.render();
    drop(doc);
    verify_change(parsed, &result, nesting, key, None)?;
    Ok(result)
}

/// Checks that `after` differs from the parsed `before` by exactly `key` (added
/// with `added`, or removed).
fn verify_change(
    before: &ValuesFile,
    after: &str,
    nesting: Nesting,
    key: &str,
    added: Option<(&str, &str)>,
) -> FileResult<()> {
    let fail = |why: &str| Err(FileError::unverified(&format!("the edited file {why}")));
    let Ok(after_parsed) = parse(after, nesting) else {
        return fail("no longer parses");
    };
    let entry = after_parsed.entry(key);
    match added {
        Some((user, db)) => {
            if entry.map(|e| (e.user.as_deref(), e.db.as_deref())) != Some((Some(user), Some(db))) {
                return fail("does not hold the new entry");
            }
        }
        None => {
            if entry.is_some()
                || container_of(&after_parsed.root, nesting).is_some_and(|m| m.contains_key(key))
            {
                return fail("still holds the entry");
            }
        }
    }
    if !same_except(&before.root, &after_parsed.root, nesting, key) {
        return fail("differs from the original by more than the one entry");
    }
    Ok(())
}

/// The mapping that holds the entries, if there is one.
fn container_of(root: &Value, nesting: Nesting) -> Option<&Mapping> {
    match nesting {
        Nesting::TopLevel => root.as_mapping(),
        Nesting::UnderPostgres => root.get("postgres").and_then(Value::as_mapping),
    }
}

/// Whether two documents are equal apart from the entry `key` (and a `postgres:`
/// that is empty in one and absent or null in the other), compared in place
/// rather than on copies, since a values file may be large.
fn same_except(before: &Value, after: &Value, nesting: Nesting, key: &str) -> bool {
    let same_mapping_except = |a: &Mapping, b: &Mapping, skip: &str| {
        let a_len = a.len() - usize::from(a.contains_key(skip));
        let b_len = b.len() - usize::from(b.contains_key(skip));
        a_len == b_len
            && a.iter()
                .filter(|(k, _)| k.as_str() != Some(skip))
                .all(|(k, v)| b.get(k) == Some(v))
    };
    let empty = Mapping::new();
    let (Some(a), Some(b)) = (before.as_mapping(), after.as_mapping()) else {
        return before.is_null() && after.as_mapping().is_some_and(|m| m.len() <= 1);
    };
    match nesting {
        Nesting::TopLevel => same_mapping_except(a, b, key),
        Nesting::UnderPostgres => {
            fn inner<'a>(m: &'a Mapping, empty: &'a Mapping) -> Option<&'a Mapping> {
                match m.get("postgres") {
                    None | Some(Value::Null) => Some(empty),
                    Some(Value::Mapping(inner)) => Some(inner),
                    Some(_) => None,
                }
            }
            let (Some(ia), Some(ib)) = (inner(a, &empty), inner(b, &empty)) else {
                return false;
            };
            same_mapping_except(a, b, "postgres") && same_mapping_except(ia, ib, key)
        }
    }
}

#[cfg(test)]
mod tests;
