//! A fast reader for the plain subset of YAML that values files are written in.
//!
//! Block mappings of simple keys, one line per key, whose values are plain or quoted
//! scalars or one-line flow collections. That covers the bulk of a deployment's
//! values files, and reading them this way is several times faster than a full YAML
//! parse, which matters to `check` on every commit. Anything outside the subset (a
//! sequence, a block scalar, an anchor, a tab, a duplicate key, an odd indentation)
//! makes it answer `None`, and the caller falls back to serde_yaml, which then also
//! produces the error message. On what it accepts, it yields exactly serde_yaml's
//! value: scalars it cannot type by looking (numbers, flow collections, escapes) are
//! handed to serde_yaml one by one.

use serde_yaml::{Mapping, Value};

/// The document's value, or `None` when the text is outside the subset.
pub fn parse(text: &str) -> Option<Value> {
    let mut lines = Vec::new();
    for line in text.lines() {
        let body = super::strip_comment(line).trim_end();
        if body.trim_start().is_empty() {
            continue;
        }
        if line.contains('\t') {
            return None;
        }
        lines.push((super::indent_of(line), body.trim_start()));
    }
    if lines.is_empty() {
        return Some(Value::Null);
    }
    if lines[0].0 != 0 {
        return None;
    }
    let mut pos = 0;
    let map = block(&lines, &mut pos, 0, 0)?;
    (pos == lines.len()).then_some(Value::Mapping(map))
}

/// Deeper mappings are left to serde_yaml, whose recursion limit (128) turns them
/// into a parse error instead of a stack overflow.
const MAX_DEPTH: usize = 100;

/// The mapping whose keys stand at `indent`, from `lines[*pos]` on, `depth` levels
/// below the top.
fn block(lines: &[(usize, &str)], pos: &mut usize, indent: usize, depth: usize) -> Option<Mapping> {
    if depth > MAX_DEPTH {
        return None;
    }
    let mut map = Mapping::new();
    while let Some(&(line_indent, body)) = lines.get(*pos) {
        if line_indent < indent {
            break;
        }
        if line_indent > indent {
            return None;
        }
        let (key, rest) = key_and_rest(body)?;
        *pos += 1;
        let value = if rest.is_empty() {
            match lines.get(*pos) {
                Some(&(child, _)) if child > indent => {
                    Value::Mapping(block(lines, pos, child, depth + 1)?)
                }
                _ => Value::Null,
            }
        } else {
            scalar(rest)?
        };
        if map.insert(Value::String(key), value).is_some() {
            return None;
        }
    }
    Some(map)
}

const SPECIAL_WORDS: &[&str] = &[
    "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE",
];

fn is_plain_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c))
        && !SPECIAL_WORDS.contains(&key)
}

/// `key: rest` with a plain or simply quoted key.
fn key_and_rest(body: &str) -> Option<(String, &str)> {
    let (key, rest) = match body.chars().next()? {
        q @ ('"' | '\'') => {
            let end = body[1..].find(q)? + 1;
            let key = &body[1..end];
            if key.contains(['\\', '"', '\'']) {
                return None;
            }
            (key, body[end + 1..].strip_prefix(':')?)
        }
        _ => {
            let colon = body.find(':')?;
            let key = &body[..colon];
            if !is_plain_key(key) {
                return None;
            }
            (key, &body[colon + 1..])
        }
    };
    if !(rest.is_empty() || rest.starts_with(' ')) {
        return None;
    }
    Some((key.to_string(), rest.trim()))
}

/// A one-line value, typed as serde_yaml types it.
fn scalar(text: &str) -> Option<Value> {
    let first = text.chars().next()?;
    match first {
        '\'' => {
            let inner = text.strip_prefix('\'')?.strip_suffix('\'')?;
            if inner.replace("''", "").contains('\'') {
                return None;
            }
            Some(Value::String(inner.replace("''", "'")))
        }
        '"' => {
            let inner = text.strip_prefix('"')?.strip_suffix('"')?;
            if inner.contains(['"', '\\']) {
                return serde_yaml::from_str(text).ok();
            }
            Some(Value::String(inner.to_string()))
        }
        _ if ["null", "Null", "NULL"].contains(&text) => Some(Value::Null),
        _ if ["true", "True", "TRUE"].contains(&text) => Some(Value::Bool(true)),
        _ if ["false", "False", "FALSE"].contains(&text) => Some(Value::Bool(false)),
        c if c.is_ascii_alphabetic() => {
            let plain = text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || " _./-+=@()".contains(c) || c == ':')
                && !text.contains(": ")
                && !text.ends_with(':');
            if !plain || SPECIAL_WORDS.contains(&text) {
                return None;
            }
            Some(Value::String(text.to_string()))
        }
        '{' | '[' | '0'..='9' | '-' | '+' | '.' | '~' => {
            if text.starts_with("- ") || text == "-" {
                return None;
            }
            serde_yaml::from_str(text).ok()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serde(text: &str) -> Value {
        serde_yaml::from_str(text).unwrap()
    }

    #[test]
    fn same_value_as_serde_yaml_on_the_subset() {
        let texts = [
            "",
            "# only a comment\n",
            "a: 1\nb: 1Gi\nc: true\nd: ~\ne:\nf: 'it''s'\ng: \"x\"\nh: \"a\\tb\"\ni: {user: jovyan, db: 'x'}\nj: [1, 2]\n",
            "postgres:\n  debug: \"true\"\n  jupyterhub_db:\n    user: 'jovyan'  # the hub\n    db: 'jupyterhub'\n\n  vault_secrets:\n    path: secret/k8s_operator/x.y/postgres\n",
            "url: https://example.org/a\nname: Postgres RDBMS for LSP\nversion: 0.1.0\nv2: -1\nf: .5\nx: 0x1F\nnum: 007\n",
            "\"quoted_key\": x\n'single': y\nyes: no\non: off\n",
            "a:\n    deep:\n        deeper: 1\n    back: 2\nz: 3",
        ];
        for text in texts {
            assert_eq!(parse(text), Some(serde(text)), "{text:?}");
        }
    }

    #[test]
    fn outside_the_subset_is_left_to_serde_yaml() {
        for text in [
            "a: 1\na: 2\n",
            "list:\n  - a\n  - b\n",
            "a: |\n  text\n",
            "a: &anchor x\nb: *anchor\n",
            "---\na: 1\n",
            "a:\n\tb: 1\n",
            "  a: 1\n",
            "a: 1\n    b: 2\n",
            "a: b: c\n",
            "a: 'unterminated\n",
            "a: {b: 1\n",
            "true: 1\n",
            "a: multi\n  line\n",
            "? complex\n: key\n",
            "a: !tag x\n",
        ] {
            assert_eq!(parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn every_yaml_file_of_the_repository_reads_the_same() {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                    out.push(path);
                }
            }
        }
        let root = crate::config::workspace_root();
        let mut files = Vec::new();
        for dir in ["sample", "tests"] {
            walk(&root.join(dir), &mut files);
        }
        assert!(files.len() > 50, "{} files", files.len());
        let mut fast = 0;
        for file in &files {
            let text = std::fs::read_to_string(file).unwrap();
            let Ok(expected) = serde_yaml::from_str::<Value>(&text) else {
                continue;
            };
            if let Some(value) = parse(&text) {
                assert_eq!(value, expected, "{}", file.display());
                fast += 1;
            } else if std::env::var_os("SHOW_SLOW_YAML").is_some() {
                eprintln!("slow: {}", file.display());
            }
        }
        assert!(
            fast * 2 > files.len(),
            "only {fast} of {} files were read fast",
            files.len()
        );
    }
}
