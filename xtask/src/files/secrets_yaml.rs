//! `applications/postgres/secrets.yaml`: the secret keys the application declares.
//!
//! Each top-level key is a secret key with a `description`, usually an `if:` naming
//! the values key that needs it, and `generate:` or `copy:`; an entry with neither
//! is set by hand. New entries follow the file's order (sorted files stay sorted, and loosely
//! sorted ones, with `_` and `-` compared alike and an exception or two, too),
//! indentation, quoting and blank lines.

use serde_yaml::Value;

use super::{
    indent_of, indent_step, is_blank, is_blank_or_comment, parse_yaml, sorted_position, split_key,
    FileError, FileResult, TextLines,
};
use crate::names::DbName;
use crate::render::{
    render, SECRETS_ENTRY_APP_COPY, SECRETS_ENTRY_COPY, SECRETS_ENTRY_GENERATE,
    SECRETS_ENTRY_STATIC,
};

/// Where a password comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Generate,
    Copy {
        application: String,
        key: String,
    },
    /// Neither `generate` nor `copy`: set by hand.
    Manual,
}

/// One top-level entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretEntry {
    pub key: String,
    /// 1-based line of the key.
    pub line: usize,
    /// 0-based first and last line.
    pub first: usize,
    pub last: usize,
    pub condition: Option<String>,
    /// 1-based line of `if:`.
    pub condition_line: Option<usize>,
    pub source: Source,
}

#[derive(Clone, Debug)]
pub struct SecretsYaml {
    pub entries: Vec<SecretEntry>,
}

impl SecretsYaml {
    pub fn entry(&self, key: &str) -> Option<&SecretEntry> {
        self.entries.iter().find(|e| e.key == key)
    }
}

/// Parses `secrets.yaml`.
pub fn parse(text: &str) -> FileResult<SecretsYaml> {
    let root = parse_yaml(text)?;
    let mapping = match &root {
        Value::Null => {
            return Ok(SecretsYaml {
                entries: Vec::new(),
            })
        }
        Value::Mapping(m) => m,
        _ => return Err(FileError::at(1, "the file is not a YAML mapping")),
    };
    let lines: Vec<&str> = text.lines().collect();
    let mut entries = Vec::new();
    for (j, line) in lines.iter().enumerate() {
        if is_blank_or_comment(line) || indent_of(line) != 0 || line.trim() == "---" {
            continue;
        }
        let Some((key, _)) = split_key(line) else {
            continue;
        };
        let mut last = j;
        let mut condition_line = None;
        for (k, l) in lines.iter().enumerate().skip(j + 1) {
            if is_blank_or_comment(l) {
                continue;
            }
            if indent_of(l) == 0 {
                break;
            }
            last = k;
            if split_key(l).is_some_and(|(k, _)| k == "if") {
                condition_line = Some(k + 1);
            }
        }
        let value = mapping.get(key.as_str()).cloned().unwrap_or(Value::Null);
        let text_of = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
        let source = if value.get("generate").is_some() {
            Source::Generate
        } else if let Some(copy) = value.get("copy") {
            Source::Copy {
                application: text_of(copy.get("application")).unwrap_or_default(),
                key: text_of(copy.get("key")).unwrap_or_default(),
            }
        } else {
            Source::Manual
        };
        entries.push(SecretEntry {
            condition: text_of(value.get("if")),
            condition_line,
            key,
            line: j + 1,
            first: j,
            last,
            source,
        });
    }
    Ok(SecretsYaml { entries })
}

/// Adds the entry for `db`'s password, generated or copied.
pub fn add_entry(text: &str, db: &DbName, source: &Source) -> FileResult<String> {
    let parsed = parse(text)?;
    let key = db.secret_key();
    if let Some(e) = parsed.entry(&key) {
        return Err(FileError::at(
            e.line,
            format!("`{key}` is already declared"),
        ));
    }
    let quote = description_quote(text);
    let (snippet, copy_app, copy_key) = match source {
        Source::Copy { application, key } => {
            (SECRETS_ENTRY_COPY, application.as_str(), key.as_str())
        }
        Source::Manual => (SECRETS_ENTRY_STATIC, "", ""),
        Source::Generate => (SECRETS_ENTRY_GENERATE, "", ""),
    };
    let rendered = render(
        snippet,
        &[
            ("secret_key", &key),
            ("values_key", &db.values_key()),
            ("name", &db.name),
            ("q", &quote),
            ("copy_app", copy_app),
            ("copy_key", &super::app_copy::yaml_word(copy_key)),
        ],
    );
    place_verified(text, &parsed, &key, &rendered, |e| {
        &e.source == source && e.condition.as_deref() == Some(&db.values_key())
    })
}

/// Places the rendered entry `key` (see `place`) and reads the result back: it must
/// parse, its entry `key` must be `added`, and every other entry must keep its key
/// and source.
fn place_verified(
    text: &str,
    parsed: &SecretsYaml,
    key: &str,
    rendered: &str,
    added: impl FnOnce(&SecretEntry) -> bool,
) -> FileResult<String> {
    let result = place(text, parsed, key, rendered);
    let after = parse(&result)
        .map_err(|_| FileError::unverified("the edited secrets.yaml does not parse"))?;
    let others = |s: &SecretsYaml| {
        s.entries
            .iter()
            .filter(|e| e.key != key)
            .map(|e| (e.key.clone(), e.source.clone()))
            .collect::<Vec<_>>()
    };
    if !after.entry(key).is_some_and(added) || others(&after) != others(parsed) {
        return Err(FileError::unverified(
            "the edited secrets.yaml does not read back",
        ));
    }
    Ok(result)
}

/// The file's quote character for descriptions (none when they are plain).
fn description_quote(text: &str) -> String {
    text.lines()
        .filter_map(|l| {
            split_key(l)
                .filter(|(k, _)| k == "description")
                .map(|(_, v)| v.chars().next())
        })
        .next()
        .flatten()
        .filter(|c| *c == '"' || *c == '\'')
        .map_or(String::new(), String::from)
}

/// Inserts a rendered entry (written with 2-space steps) for `key` in the file's
/// indentation, at its alphabetical place when the entries are (loosely) sorted,
/// else after the last one, with the file's blank-line separation.
fn place(text: &str, parsed: &SecretsYaml, key: &str, rendered: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let step = indent_step(text);
    let mut block: Vec<String> = rendered
        .lines()
        .map(|l| format!("{}{}", " ".repeat(indent_of(l) / 2 * step), l.trim_start()))
        .collect();
    let separated = parsed
        .entries
        .windows(2)
        .any(|w| (w[0].last + 1..w[1].first).any(|k| is_blank(lines[k])));
    let keys: Vec<&str> = parsed.entries.iter().map(|e| e.key.as_str()).collect();
    let next = sorted_position(&keys, key).and_then(|p| parsed.entries.get(p));
    let at = match (next, parsed.entries.last()) {
        (Some(next), _) => {
            let mut at = next.first;
            while at > 0 && lines[at - 1].trim_start().starts_with('#') {
                at -= 1;
            }
            if separated {
                block.push(String::new());
            }
            at
        }
        (None, Some(last)) => {
            if separated {
                block.insert(0, String::new());
            }
            last.last + 1
        }
        (None, None) => lines
            .iter()
            .rposition(|l| !is_blank(l))
            .map_or(0, |i| i + 1),
    };
    let mut doc = TextLines::new(text);
    doc.insert(at, block);
    doc.render()
}

/// Adds to an application's `secrets.yaml` the entry `app_key` that copies the
/// postgres password `secret_key` of the database `name`. An empty text makes a new
/// file. The same entry already there is no change; another entry of that key is an
/// error.
pub fn add_app_copy(text: &str, app_key: &str, name: &str, secret_key: &str) -> FileResult<String> {
    let parsed = parse(text)?;
    let wanted = Source::Copy {
        application: "postgres".to_string(),
        key: secret_key.to_string(),
    };
    if let Some(e) = parsed.entry(app_key) {
        if e.source == wanted {
            return Ok(text.to_string());
        }
        return Err(FileError::at(
            e.line,
            format!("`{app_key}` is already declared, and not as a copy of postgres' `{secret_key}`; choose another KEY in --app APP:KEY"),
        ));
    }
    let quote = if text.trim().is_empty() {
        "\"".to_string()
    } else {
        description_quote(text)
    };
    let rendered = render(
        SECRETS_ENTRY_APP_COPY,
        &[
            ("app_key", &super::app_copy::yaml_word(app_key)),
            ("name", name),
            ("q", &quote),
            ("secret_key", secret_key),
        ],
    );
    place_verified(text, &parsed, app_key, &rendered, |e| e.source == wanted)
}

/// Removes the entry `key` with its comment lines and one separating blank line.
pub fn remove_entry(text: &str, key: &str) -> FileResult<String> {
    let parsed = parse(text)?;
    let Some(entry) = parsed.entry(key) else {
        return Err(FileError::whole(format!("`{key}` is not declared")));
    };
    let mut doc = TextLines::new(text);
    let mut first = entry.first;
    while first > 0 && doc.lines[first - 1].trim_start().starts_with('#') {
        first -= 1;
    }
    let mut last = entry.last;
    let blank_after = doc.lines.get(last + 1).is_some_and(|l| is_blank(l));
    if blank_after
        && (first == 0
            || is_blank(&doc.lines[first - 1])
            || entry.first != parsed.entries.last().map_or(0, |e| e.first))
    {
        last += 1;
    } else if first > 0 && is_blank(&doc.lines[first - 1]) {
        first -= 1;
    }
    doc.remove(first..=last);
    let result = doc.render();
    let after = parse(&result)
        .map_err(|_| FileError::unverified("the edited secrets.yaml does not parse"))?;
    let expected: Vec<&str> = parsed
        .entries
        .iter()
        .map(|e| e.key.as_str())
        .filter(|k| *k != key)
        .collect();
    if after
        .entries
        .iter()
        .map(|e| e.key.as_str())
        .collect::<Vec<_>>()
        != expected
    {
        return Err(FileError::unverified(
            "the edited secrets.yaml does not read back",
        ));
    }
    Ok(result)
}

#[cfg(test)]
mod tests;
