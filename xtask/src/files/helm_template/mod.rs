//! `templates/deployment.yaml` (or `.yml`) of the postgres chart: the database blocks.
//!
//! A block is `{{- with .Values.<name>_db }}` ... `{{- end }}` holding the three
//! environment variables `VRO_DB_<ID>_USER`, `_DB` and `_PASSWORD`, the last read
//! from the `postgres` secret under `<name>_password`. New blocks copy the quoting,
//! indentation and `end` form of the blocks already in the file.
//!
//! Here: the model and [`parse`]; `edit` adds and removes a block in the file's style.

mod edit;

use super::{indent_of, is_blank, split_key, strip_comment, unquote, FileError, FileResult};
use crate::names::{name_of_values_key, DbName};

#[cfg(test)]
use edit::style;
pub use edit::{add_block, remove_block};

/// Which of the triplet a variable is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    User,
    Db,
    Password,
}

/// One `- name: VRO_DB_<ID>_<FIELD>` item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvVar {
    pub id: String,
    pub field: Field,
    /// 1-based line.
    pub line: usize,
}

/// A `with .Values.<key>` block that passes a database to the container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    pub values_key: String,
    /// 1-based line of the `with`.
    pub line: usize,
    /// 0-based first (the `with`) and last (the `end`) line.
    pub first: usize,
    pub last: usize,
    pub vars: Vec<EnvVar>,
    /// The `secretKeyRef` keys inside, with their 1-based lines.
    pub secret_keys: Vec<(String, usize)>,
    /// How many `if`/`with`/`range`/`define` actions enclose the block.
    pub depth: usize,
}

impl Block {
    /// The database name the values key implies (`exposurelog_db` -> `exposurelog`).
    pub fn name(&self) -> Option<&str> {
        name_of_values_key(&self.values_key)
    }

    /// Why the block would not give the container a working database, if it would not.
    pub fn malformation(&self) -> Option<String> {
        let Some(name) = self.name() else {
            return Some(format!(
                "`.Values.{}` does not end in `_db`",
                self.values_key
            ));
        };
        let mut missing = Vec::new();
        for (field, suffix) in [
            (Field::User, "USER"),
            (Field::Db, "DB"),
            (Field::Password, "PASSWORD"),
        ] {
            if !self.vars.iter().any(|v| v.field == field) {
                missing.push(suffix);
            }
        }
        if !missing.is_empty() {
            return Some(format!(
                "the block for `{}` lacks VRO_DB_*_{}",
                self.values_key,
                missing.join(" and ")
            ));
        }
        let mut ids: Vec<&str> = self.vars.iter().map(|v| v.id.as_str()).collect();
        ids.dedup();
        if ids.len() > 1 {
            return Some(format!(
                "the block for `{}` mixes the ids {}",
                self.values_key,
                ids.join(", ")
            ));
        }
        let implied = DbName {
            name: name.to_string(),
        }
        .env_id();
        if ids[0].replace('_', "") != implied {
            return Some(format!(
                "the block for `{}` uses the id `{}`, its values key implies `{implied}`",
                self.values_key, ids[0]
            ));
        }
        match self.secret_keys.as_slice() {
            [] => Some(format!("the block for `{}` reads no secret key", self.values_key)),
            [(key, _)] if secret_key_matches(key, name) => None,
            [(key, _)] => Some(format!(
                "the block for `{}` reads the secret key `{key}`, its values key implies `{name}_password`",
                self.values_key
            )),
            _ => Some(format!("the block for `{}` reads more than one secret key", self.values_key)),
        }
    }

    /// The secret key the block reads, if it reads exactly one.
    pub fn secret_key(&self) -> Option<&str> {
        match self.secret_keys.as_slice() {
            [(key, _)] => Some(key),
            _ => None,
        }
    }

    /// The `<ID>`s the block sets.
    pub fn ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self.vars.iter().map(|v| v.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }
}

/// Whether a secret key is the one a database name implies; `-` and `_` count as the
/// same (`vo-cutouts_password` for `vo_cutouts_db`).
pub fn secret_key_matches(key: &str, name: &str) -> bool {
    key.replace('-', "_") == format!("{name}_password")
}

/// How the file writes its blocks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Style {
    pub with_indent: usize,
    /// `{{-` or `{{` before `with`.
    pub with_open: String,
    /// The `end` line without indentation (`{{- end }}`).
    pub end: String,
    pub end_indent: usize,
    pub item_indent: usize,
    /// Indentation step under `valueFrom:`.
    pub step: usize,
    pub quoted: bool,
}

/// The parsed template.
#[derive(Clone, Debug)]
pub struct Template {
    pub blocks: Vec<Block>,
    /// `VRO_DB_*` variables outside any block.
    pub stray_vars: Vec<EnvVar>,
    /// 0-based first and last line of the env item that reads `root_password`.
    pub root_entry: Option<(usize, usize)>,
    /// Every `if`/`with`/`range`/`define`/`block` action: 0-based first and last
    /// (`end`) line and how many actions enclose it.
    pub actions: Vec<(usize, usize, usize)>,
    /// How many actions enclose the root-password entry.
    root_depth: usize,
}

impl Template {
    pub fn block(&self, values_key: &str) -> Option<&Block> {
        self.blocks.iter().find(|b| b.values_key == values_key)
    }

    /// Every secret key the template reads, with its 1-based line.
    pub fn secret_keys(&self) -> impl Iterator<Item = (&str, usize)> {
        self.blocks
            .iter()
            .flat_map(|b| b.secret_keys.iter().map(|(k, l)| (k.as_str(), *l)))
    }
}

/// The inside of every `{{ ... }}` action on a line, without its trim markers.
fn actions(line: &str) -> impl Iterator<Item = &str> {
    let mut rest = line;
    std::iter::from_fn(move || {
        let start = rest.find("{{")?;
        let after = &rest[start + 2..];
        let end = after.find("}}")?;
        rest = &after[end + 2..];
        let inside = after[..end].trim();
        let inside = inside.strip_prefix("- ").unwrap_or(inside);
        Some(inside.strip_suffix(" -").unwrap_or(inside).trim())
    })
}

/// The `<ID>` and field of a `- name: VRO_DB_<ID>_<FIELD>` line.
fn env_var(line: &str) -> Option<(&str, Field)> {
    let rest = line.trim_start().strip_prefix('-')?;
    let rest = rest
        .strip_prefix([' ', '\t'])?
        .trim_start()
        .strip_prefix("name:")?;
    let name = unquote(strip_comment(rest)).strip_prefix("VRO_DB_")?;
    let (id, field) = name.rsplit_once('_')?;
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    let field = match field {
        "USER" => Field::User,
        "DB" => Field::Db,
        "PASSWORD" => Field::Password,
        _ => return None,
    };
    Some((id, field))
}

struct Opener {
    line: usize,
    values_key: Option<String>,
    vars: Vec<EnvVar>,
    secret_keys: Vec<(String, usize)>,
}

/// The text with the inside of every Helm comment `{{/* ... */}}` (also with trim
/// markers) replaced by spaces, line breaks kept: the engine never renders it, so
/// nothing in it is a block.
fn blank_comments(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains("/*") {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let open = ["{{/*", "{{- /*"]
            .iter()
            .filter_map(|o| rest.find(o).map(|at| (at, o.len())))
            .min();
        let Some((at, len)) = open else {
            out.push_str(rest);
            break;
        };
        out.push_str(&rest[..at + len]);
        let after = &rest[at + len..];
        let close = ["*/}}", "*/ -}}"]
            .iter()
            .filter_map(|c| after.find(c))
            .min()
            .unwrap_or(after.len());
        out.extend(
            after[..close]
                .chars()
                .map(|c| if c == '\n' { '\n' } else { ' ' }),
        );
        rest = &after[close..];
    }
    std::borrow::Cow::Owned(out)
}

/// What [`parse`] has read so far.
#[derive(Default)]
struct Reader {
    /// Every action pair read: the opener's and the `end`'s 0-based line, the depth.
    actions_seen: Vec<(usize, usize, usize)>,
    root_depth: usize,
    stack: Vec<Opener>,
    blocks: Vec<Block>,
    stray_vars: Vec<EnvVar>,
    root_key_line: Option<usize>,
    /// The indentation of the `secretKeyRef:` being read.
    in_secret_ref: Option<usize>,
}

impl Reader {
    /// An action (`{{ ... }}`) on line `i`: an opener, an `end`, or another.
    fn action(&mut self, i: usize, action: &str) -> FileResult<()> {
        let words: Vec<&str> = action.split_whitespace().collect();
        match words.first().copied() {
            Some("if" | "with" | "range" | "define" | "block") => {
                let values_key = match (words[0], words.get(1)) {
                    ("with" | "if", Some(arg)) if words.len() == 2 => arg
                        .strip_prefix(".Values.")
                        .filter(|k| !k.contains('.'))
                        .map(str::to_string),
                    _ => None,
                };
                self.stack.push(Opener {
                    line: i,
                    values_key,
                    vars: Vec::new(),
                    secret_keys: Vec::new(),
                });
            }
            Some("end") => self.end(i)?,
            _ => {}
        }
        Ok(())
    }

    /// An `end` on line `i`: a block when its opener names a values key.
    fn end(&mut self, i: usize) -> FileResult<()> {
        let Some(opener) = self.stack.pop() else {
            return Err(FileError::at(
                i + 1,
                "`end` without a matching `if`, `with` or `range`",
            ));
        };
        self.actions_seen.push((opener.line, i, self.stack.len()));
        if let Some(values_key) = opener.values_key {
            if values_key.ends_with("_db") || !opener.vars.is_empty() {
                self.blocks.push(Block {
                    values_key,
                    line: opener.line + 1,
                    first: opener.line,
                    last: i,
                    vars: opener.vars,
                    secret_keys: opener.secret_keys,
                    depth: self.stack.len(),
                });
            }
        } else if let Some(parent) = self.stack.last_mut() {
            parent.vars.extend(opener.vars);
            parent.secret_keys.extend(opener.secret_keys);
        } else {
            self.stray_vars.extend(opener.vars);
        }
        Ok(())
    }

    /// A `VRO_DB_<ID>_<FIELD>` variable's name on line `i`.
    fn env_var(&mut self, i: usize, line: &str) {
        if let Some((id, field)) = env_var(line) {
            let var = EnvVar {
                id: id.to_string(),
                field,
                line: i + 1,
            };
            match self.stack.last_mut() {
                Some(open) => open.vars.push(var),
                None => self.stray_vars.push(var),
            }
        }
    }

    /// A `secretKeyRef:` and its `key:` (the root password's outside any block).
    fn secret_ref(&mut self, i: usize, line: &str) {
        let Some((key, rest)) = split_key(line) else {
            return;
        };
        match key.as_str() {
            "secretKeyRef" => self.in_secret_ref = Some(indent_of(line)),
            "key" if self.in_secret_ref.is_some_and(|ind| indent_of(line) > ind) => {
                let secret_key = unquote(rest).to_string();
                let in_block = self.stack.iter().any(|o| o.values_key.is_some());
                if secret_key == "root_password" && self.root_key_line.is_none() && !in_block {
                    self.root_key_line = Some(i);
                    self.root_depth = self.stack.len();
                } else if let Some(open) = self.stack.last_mut() {
                    open.secret_keys.push((secret_key, i + 1));
                }
            }
            _ if self.in_secret_ref.is_some_and(|ind| indent_of(line) <= ind) => {
                self.in_secret_ref = None
            }
            _ => {}
        }
    }
}

/// Parses a template.
pub fn parse(text: &str) -> FileResult<Template> {
    let uncommented = blank_comments(text);
    let lines: Vec<&str> = uncommented.lines().collect();
    let mut reader = Reader::default();
    for (i, line) in lines.iter().enumerate() {
        for action in actions(line) {
            reader.action(i, action)?;
        }
        reader.env_var(i, line);
        reader.secret_ref(i, line);
    }
    if let Some(open) = reader.stack.last() {
        return Err(FileError::at(
            open.line + 1,
            "this action has no matching `end`",
        ));
    }
    let root_entry = reader.root_key_line.and_then(|k| item_around(&lines, k));
    reader.actions_seen.sort_unstable();
    Ok(Template {
        blocks: reader.blocks,
        stray_vars: reader.stray_vars,
        root_entry,
        actions: reader.actions_seen,
        root_depth: reader.root_depth,
    })
}

/// The first and last line of the list item (`- name: ...`) that holds line `k`.
fn item_around(lines: &[&str], k: usize) -> Option<(usize, usize)> {
    let start = (0..k).rev().find(|&j| {
        lines[j].trim_start().starts_with("- ") && indent_of(lines[j]) < indent_of(lines[k])
    })?;
    let indent = indent_of(lines[start]);
    let mut last = k;
    for (j, line) in lines.iter().enumerate().skip(k + 1) {
        if is_blank(line) {
            continue;
        }
        if indent_of(line) > indent && !line.trim_start().starts_with("{{") {
            last = j;
        } else {
            break;
        }
    }
    Some((start, last))
}

#[cfg(test)]
mod tests;
