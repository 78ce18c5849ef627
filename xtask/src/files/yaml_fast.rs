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

/// The deepest nesting a YAML text may have: far above real files (a values file
/// nests four levels), below serde_yaml's recursion limit (128). serde_yaml's
/// scanner does work proportional to the nesting depth for every token, so a
/// text nested without bound (`[` x 100,000) takes time quadratic in its size;
/// bounded, every text reads in time linear in its size.
pub const MAX_DEPTH_ANY: usize = 64;

/// The most nodes (lines, flow and anchor indicators) any text may have: this
/// reader spends about a microsecond per key, so this bounds it to well under a
/// second; the largest values files have a few thousand.
pub const MAX_NODES: usize = 400_000;

/// The most nodes a text outside the plain subset may have: serde_yaml spends up
/// to 2 microseconds per node (a mapping key), so this bounds its time to about
/// half a second. A values file has a few thousand.
pub const MAX_NODES_FULL_PARSE: usize = 150_000;

/// The fragments (one-line flow values, escaped strings) the fast reader hands
/// to serde_yaml one by one, in number and in bytes, before it leaves the whole
/// text to it instead (which then has to pass [`MAX_NODES_FULL_PARSE`]).
const MAX_FRAGMENTS: usize = 20_000;
const MAX_FRAGMENT_BYTES: usize = 512 * 1024;

/// What the fast reader handed to serde_yaml so far: fragments and bytes.
#[derive(Default)]
struct Fragments {
    count: usize,
    bytes: usize,
}

/// What a linear scan learns of a text before any YAML parser sees it.
#[derive(Debug, PartialEq, Eq)]
pub struct Scan {
    /// The first line where the text may nest deeper than [`MAX_DEPTH_ANY`].
    pub too_deep: Option<(usize, String)>,
    /// An upper bound of its nodes: its non-blank lines and its flow, anchor and
    /// alias indicators.
    pub nodes: usize,
}

/// Scans a text in linear time (see [`Scan`]). The depth is an upper bound: the
/// stack of increasing indentations, the block indicators (`- `, `? `) that open a
/// line, and the open flow brackets (anywhere, also in quotes and comments: only
/// unbalanced ones in real text would count).
pub fn scan(text: &str) -> Scan {
    let mut indents: Vec<usize> = Vec::new();
    let mut flow: usize = 0;
    let mut nodes = 0;
    for (index, line) in text.lines().enumerate() {
        let body = line.trim_start_matches(' ');
        let indent = line.len() - body.len();
        let mut block = 0;
        if flow == 0 && !body.is_empty() && !body.starts_with('#') {
            while indents.last().is_some_and(|&i| i >= indent) {
                indents.pop();
            }
            indents.push(indent);
            let mut rest = body;
            while let Some(after) = ["- ", "? ", ": "].iter().find_map(|p| rest.strip_prefix(p)) {
                block += 1;
                rest = after.trim_start_matches(' ');
            }
        }
        let mut deepest = flow;
        nodes += usize::from(!body.is_empty()) + block;
        for b in body.bytes() {
            match b {
                b'[' | b'{' => {
                    flow += 1;
                    deepest = deepest.max(flow);
                    nodes += 1;
                }
                b']' | b'}' => flow = flow.saturating_sub(1),
                b',' | b'&' | b'*' => nodes += 1,
                _ => {}
            }
        }
        let depth = indents.len() + block + deepest;
        if depth > MAX_DEPTH_ANY {
            return Scan {
                too_deep: Some((
                    index + 1,
                    format!(
                        "nested more than {MAX_DEPTH_ANY} levels deep (indentation, `- ` and brackets); \
                         no values file nests so deep, so it is not read"
                    ),
                )),
                nodes,
            };
        }
    }
    Scan {
        too_deep: None,
        nodes,
    }
}

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
    let mut fragments = Fragments::default();
    let map = block(&lines, &mut pos, 0, 0, &mut fragments)?;
    (pos == lines.len()).then_some(Value::Mapping(map))
}

/// Deeper mappings are left to serde_yaml, whose recursion limit (128) turns them
/// into a parse error instead of a stack overflow.
const MAX_DEPTH: usize = 100;

/// The mapping whose keys stand at `indent`, from `lines[*pos]` on, `depth` levels
/// below the top.
fn block(
    lines: &[(usize, &str)],
    pos: &mut usize,
    indent: usize,
    depth: usize,
    fragments: &mut Fragments,
) -> Option<Mapping> {
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
                    Value::Mapping(block(lines, pos, child, depth + 1, fragments)?)
                }
                _ => Value::Null,
            }
        } else {
            scalar(rest, fragments)?
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

/// A one-line value, typed as serde_yaml types it; `fragments` counts what is
/// handed to serde_yaml, up to [`MAX_FRAGMENTS`] and [`MAX_FRAGMENT_BYTES`].
fn scalar(text: &str, fragments: &mut Fragments) -> Option<Value> {
    let mut serde = |text: &str| {
        fragments.count += 1;
        fragments.bytes += text.len();
        if fragments.count > MAX_FRAGMENTS || fragments.bytes > MAX_FRAGMENT_BYTES {
            return None;
        }
        serde_yaml::from_str(text).ok()
    };
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
                return serde(text);
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
            serde(text)
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
    fn nesting_is_bounded_before_any_parser_runs() {
        for text in [
            "a: 1\n",
            "a:\n  b:\n    c: [1, {d: [2]}]\n",
            "# [[[[ a comment's brackets are counted, and balanced ]]]]\n",
            &"- - - - x\n".repeat(10),
            &format!("a: {}{}\n", "[".repeat(60), "]".repeat(60)),
        ] {
            assert_eq!(scan(text).too_deep, None, "{text:?}");
        }
        let deep_block: String = (0..70)
            .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
            .collect();
        for (text, line) in [
            (format!("a:\n  b: {}\n", "[".repeat(100_000)), 2),
            (format!("x: {}", "{a: ".repeat(100)), 1),
            (format!("ok: 1\n{}x\n", "- ".repeat(100)), 2),
            (deep_block, 65),
        ] {
            assert_eq!(
                scan(&text).too_deep.map(|(l, _)| l),
                Some(line),
                "{}",
                &text[..40]
            );
        }
    }

    #[test]
    fn big_texts_outside_the_subset_are_refused_by_size_not_time() {
        let text = format!("a:\n{}", "  - 1\n".repeat(MAX_NODES_FULL_PARSE));
        assert!(scan(&text).nodes > MAX_NODES_FULL_PARSE);
        let start = std::time::Instant::now();
        let error = super::super::parse_yaml(&text).unwrap_err();
        assert!(
            error.message.contains("nodes outside the plain subset"),
            "{error:?}"
        );
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
        // `[` x 100,000: refused at once, in a debug build too.
        let start = std::time::Instant::now();
        let error = super::super::parse_yaml(&"[".repeat(100_000)).unwrap_err();
        assert!(error.message.contains("nested more than"), "{error:?}");
        assert!(start.elapsed() < std::time::Duration::from_millis(500));
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
