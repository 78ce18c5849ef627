//! The application's side of `add-db --app APP`: pure edits that make its copy of
//! the password hold exactly where the database is set.
//!
//! - [`with_condition`]: the `if:` on the copy entry of `secrets.yaml`, written
//!   before its `copy:`;
//! - [`set_flag`]: `internalDatabase: true` at the top of a `values-ENV.yaml`
//!   (a new file when the text is empty), the convention phalanx's charts use;
//! - [`existing_flag`]: the flag that already guards the application's database
//!   password (`config.internalDatabase`, `hub.internalDatabase`), to reuse it.
//!
//! Each edit re-parses its output and compares it with what it meant to write.

use serde_yaml::Value;

use super::{indent_of, parse_yaml, secrets_yaml, split_key, FileError, FileResult, TextLines};

/// A key or value word as written into YAML: quoted when YAML 1.1 (which Helm
/// and PyYAML read) would take it for something other than a string: booleans
/// (`yes`, `on`, `true`, ...), null, and numbers in any notation (`012`,
/// `1_000`, `0x1`, `1e3`, `.5`).
pub fn yaml_word(word: &str) -> String {
    const WORDS: &[&str] = &[
        "y", "n", "yes", "no", "on", "off", "true", "false", "null", "~", "",
    ];
    let lower = word.to_ascii_lowercase();
    let numeric = word
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | '.'));
    if WORDS.contains(&lower.as_str()) || numeric {
        format!("\"{word}\"")
    } else {
        word.to_string()
    }
}

/// The flag a new copy uses when the application has none.
pub const FLAG: &str = "internalDatabase";

/// The `if:` of the application's secrets that names an `internalDatabase`
/// flag (on an entry or on its `copy:`), if any.
pub fn existing_flag(text: &str) -> Option<String> {
    let root = parse_yaml(text).ok()?;
    let flag = |v: Option<&Value>| {
        v.and_then(|v| v.get("if"))
            .and_then(Value::as_str)
            .filter(|c| c.rsplit('.').next() == Some(FLAG))
            .map(str::to_string)
    };
    root.as_mapping()?
        .values()
        .find_map(|entry| flag(Some(entry)).or_else(|| flag(entry.get("copy"))))
}

/// Gives the entry `key` the condition `if: condition`, before its `copy:` (or at
/// its end). The same condition already there is no change; another is an error.
pub fn with_condition(text: &str, key: &str, condition: &str) -> FileResult<String> {
    let parsed = secrets_yaml::parse(text)?;
    let entry = parsed
        .entry(key)
        .ok_or_else(|| FileError::whole(format!("no entry `{key}` to give `if: {condition}`")))?;
    match entry.condition.as_deref() {
        Some(c) if c == condition => return Ok(text.to_string()),
        Some(c) => {
            return Err(FileError::at(
                entry.condition_line.unwrap_or(entry.line),
                format!("`{key}` already has `if: {c}`, not `if: {condition}`"),
            ))
        }
        None => {}
    }
    let mut doc = TextLines::new(text);
    let children = (entry.first + 1..=entry.last).filter(|&i| {
        let line = &doc.lines[i];
        !line.trim().is_empty() && !line.trim_start().starts_with('#')
    });
    let indent = children
        .clone()
        .map(|i| indent_of(&doc.lines[i]))
        .min()
        .unwrap_or(2);
    let copy = children.clone().find(|&i| {
        indent_of(&doc.lines[i]) == indent
            && split_key(&doc.lines[i]).is_some_and(|(k, _)| k == "copy")
    });
    let at = copy.unwrap_or(entry.last + 1);
    doc.insert(at, [format!("{}if: {condition}", " ".repeat(indent))]);
    let out = doc.render();
    let check = secrets_yaml::parse(&out)
        .map_err(|_| FileError::unverified("the secrets.yaml with `if:`"))?;
    let same = check.entries.len() == parsed.entries.len()
        && check
            .entry(key)
            .is_some_and(|e| e.condition.as_deref() == Some(condition) && e.source == entry.source);
    if !same {
        return Err(FileError::unverified("the secrets.yaml with `if:`"));
    }
    Ok(out)
}

/// Sets `internalDatabase: true` at the top level of a values file. Already true:
/// no change; set to something false: an error naming its line.
pub fn set_flag(text: &str) -> FileResult<String> {
    let root = if text.trim().is_empty() {
        Value::Mapping(Default::default())
    } else {
        parse_yaml(text)?
    };
    let Some(map) = root.as_mapping() else {
        return Err(FileError::at(1, "the file is not a YAML mapping"));
    };
    if let Some(value) = map.get(FLAG) {
        if crate::model::values::truthy(value) {
            return Ok(text.to_string());
        }
        let line = text
            .lines()
            .position(|l| indent_of(l) == 0 && split_key(l).is_some_and(|(k, _)| k == FLAG))
            .map_or(1, |i| i + 1);
        return Err(FileError::at(
            line,
            format!("`{FLAG}` is set to something false; the database's copy needs it true"),
        ));
    }
    let out = if text.trim().is_empty() {
        format!("{FLAG}: true\n")
    } else {
        let mut doc = TextLines::new(text);
        doc.insert(0, [format!("{FLAG}: true")]);
        doc.render()
    };
    let mut expected = map.clone();
    expected.insert(Value::from(FLAG), Value::Bool(true));
    match parse_yaml(&out) {
        Ok(Value::Mapping(m)) if m == expected => Ok(out),
        _ => Err(FileError::unverified(
            "the values file with `internalDatabase: true`",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COPY: &str = "\
other:
  description: x
ook-password:
  description: \"Password of the ook database, copied from postgres.\"
  copy:
    application: postgres
    key: ook_password
";

    #[test]
    fn conditions_go_before_the_copy() {
        let out = with_condition(COPY, "ook-password", "internalDatabase").unwrap();
        assert_eq!(
            out,
            COPY.replace("  copy:\n", "  if: internalDatabase\n  copy:\n")
        );
        assert_eq!(
            with_condition(&out, "ook-password", "internalDatabase").unwrap(),
            out
        );
        let err = with_condition(&out, "ook-password", "hub.internalDatabase").unwrap_err();
        assert_eq!(err.line, Some(5));
        assert!(with_condition(COPY, "missing", "x").is_err());
    }

    #[test]
    fn flags_are_found_on_entries_and_copies() {
        let hub = "a:\n  description: x\n  copy:\n    application: postgres\n    key: k\n    if: hub.internalDatabase\n";
        assert_eq!(existing_flag(hub).as_deref(), Some("hub.internalDatabase"));
        let gafaelfawr = "database-password:\n  description: x\n  if: config.internalDatabase\n  generate:\n    type: password\n";
        assert_eq!(
            existing_flag(gafaelfawr).as_deref(),
            Some("config.internalDatabase")
        );
        assert_eq!(existing_flag("a:\n  if: config.other\n"), None);
        assert_eq!(existing_flag(""), None);
    }

    #[test]
    fn ambiguous_words_are_quoted() {
        for word in [
            "yes", "On", "012", "1_000", "true", "0x1", "1e3", "-1", ".5", "~",
        ] {
            let quoted = yaml_word(word);
            assert_eq!(quoted, format!("\"{word}\""));
            let doc: Value = serde_yaml::from_str(&format!("{quoted}: {quoted}\n")).unwrap();
            assert_eq!(doc.get(word).and_then(Value::as_str), Some(word), "{word}");
        }
        assert_eq!(yaml_word("database-password"), "database-password");
        assert_eq!(yaml_word("TS_DATABASE_PASSWORD"), "TS_DATABASE_PASSWORD");
    }

    #[test]
    fn the_flag_is_added_once() {
        assert_eq!(set_flag("").unwrap(), "internalDatabase: true\n");
        let text = "# env\nconfig:\n  a: 1\n";
        let out = set_flag(text).unwrap();
        assert_eq!(out, "internalDatabase: true\n# env\nconfig:\n  a: 1\n");
        assert_eq!(set_flag(&out).unwrap(), out);
        let err = set_flag("a: 1\ninternalDatabase: false\n").unwrap_err();
        assert_eq!(err.line, Some(2));
        assert!(set_flag("- a\n").is_err());
    }
}
