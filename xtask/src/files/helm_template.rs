//! `templates/deployment.yaml` (or `.yml`) of the postgres chart: the database blocks.
//!
//! A block is `{{- with .Values.<name>_db }}` ... `{{- end }}` holding the three
//! environment variables `VRO_DB_<ID>_USER`, `_DB` and `_PASSWORD`, the last read
//! from the `postgres` secret under `<name>_password`. New blocks copy the quoting,
//! indentation and `end` form of the blocks already in the file.

use super::{
    indent_of, is_blank, split_key, strip_comment, unquote, FileError, FileResult, TextLines,
};
use crate::names::{name_of_values_key, DbName};
use crate::render::{render, HELM_BLOCK_PLAIN, HELM_BLOCK_QUOTED};

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

/// Parses a template.
pub fn parse(text: &str) -> FileResult<Template> {
    let uncommented = blank_comments(text);
    let lines: Vec<&str> = uncommented.lines().collect();
    let mut actions_seen: Vec<(usize, usize, usize)> = Vec::new();
    let mut root_depth = 0;
    let mut stack: Vec<Opener> = Vec::new();
    let mut blocks = Vec::new();
    let mut stray_vars = Vec::new();
    let mut root_key_line = None;
    let mut in_secret_ref: Option<usize> = None;

    for (i, line) in lines.iter().enumerate() {
        for action in actions(line) {
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
                    stack.push(Opener {
                        line: i,
                        values_key,
                        vars: Vec::new(),
                        secret_keys: Vec::new(),
                    });
                }
                Some("end") => {
                    let Some(opener) = stack.pop() else {
                        return Err(FileError::at(
                            i + 1,
                            "`end` without a matching `if`, `with` or `range`",
                        ));
                    };
                    actions_seen.push((opener.line, i, stack.len()));
                    if let Some(values_key) = opener.values_key {
                        if values_key.ends_with("_db") || !opener.vars.is_empty() {
                            blocks.push(Block {
                                values_key,
                                line: opener.line + 1,
                                first: opener.line,
                                last: i,
                                vars: opener.vars,
                                secret_keys: opener.secret_keys,
                                depth: stack.len(),
                            });
                        }
                    } else if let Some(parent) = stack.last_mut() {
                        parent.vars.extend(opener.vars);
                        parent.secret_keys.extend(opener.secret_keys);
                    } else {
                        stray_vars.extend(opener.vars);
                    }
                }
                _ => {}
            }
        }
        if let Some((id, field)) = env_var(line) {
            let var = EnvVar {
                id: id.to_string(),
                field,
                line: i + 1,
            };
            match stack.last_mut() {
                Some(open) => open.vars.push(var),
                None => stray_vars.push(var),
            }
        }
        if let Some((key, rest)) = split_key(line) {
            match key.as_str() {
                "secretKeyRef" => in_secret_ref = Some(indent_of(line)),
                "key" if in_secret_ref.is_some_and(|ind| indent_of(line) > ind) => {
                    let secret_key = unquote(rest).to_string();
                    let in_block = stack.iter().any(|o| o.values_key.is_some());
                    if secret_key == "root_password" && root_key_line.is_none() && !in_block {
                        root_key_line = Some(i);
                        root_depth = stack.len();
                    } else if let Some(open) = stack.last_mut() {
                        open.secret_keys.push((secret_key, i + 1));
                    }
                }
                _ if in_secret_ref.is_some_and(|ind| indent_of(line) <= ind) => {
                    in_secret_ref = None
                }
                _ => {}
            }
        }
    }
    if let Some(open) = stack.last() {
        return Err(FileError::at(
            open.line + 1,
            "this action has no matching `end`",
        ));
    }
    let root_entry = root_key_line.and_then(|k| item_around(&lines, k));
    actions_seen.sort_unstable();
    Ok(Template {
        blocks,
        stray_vars,
        root_entry,
        actions: actions_seen,
        root_depth,
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

/// How the file writes its blocks, from its last block or else from the
/// root-password entry.
pub fn style(text: &str, template: &Template) -> FileResult<Style> {
    let lines: Vec<&str> = text.lines().collect();
    let step_in = |first: usize, last: usize| {
        let value_from =
            (first..=last).find(|&j| lines[j].trim_start().starts_with("valueFrom:"))?;
        let below = (value_from + 1..=last).find(|&j| !is_blank(lines[j]))?;
        Some(indent_of(lines[below]).saturating_sub(indent_of(lines[value_from])))
    };
    if let Some(block) = template.blocks.last() {
        let with_line = lines[block.first];
        let end_line = lines[block.last];
        let first_item = (block.first + 1..block.last)
            .find(|&j| lines[j].trim_start().starts_with("- "))
            .unwrap_or(block.first);
        let item_line = lines[first_item];
        let quoted = item_line.contains("\"VRO_DB_") || item_line.contains("'VRO_DB_");
        return Ok(Style {
            with_indent: indent_of(with_line),
            with_open: if with_line.trim_start().starts_with("{{-") {
                "{{-".into()
            } else {
                "{{".into()
            },
            end: end_line.trim().to_string(),
            end_indent: indent_of(end_line),
            item_indent: indent_of(item_line),
            step: step_in(block.first, block.last)
                .filter(|s| *s > 0)
                .unwrap_or(2),
            quoted,
        });
    }
    if let Some((first, last)) = template.root_entry {
        let item_line = lines[first];
        let indent = indent_of(item_line);
        return Ok(Style {
            with_indent: indent,
            with_open: "{{-".into(),
            end: "{{- end }}".into(),
            end_indent: indent,
            item_indent: indent,
            step: step_in(first, last).filter(|s| *s > 0).unwrap_or(2),
            quoted: item_line.contains('"'),
        });
    }
    Err(FileError::whole(
        "the template has neither a database block (`{{- with .Values.<name>_db }}`) nor an env entry \
         reading `root_password` to place the first block after; add the first block by hand",
    ))
}

/// Renders the block for a database in the given style, as lines.
pub fn render_block(db: &DbName, style: &Style) -> Vec<String> {
    let snippet = if style.quoted {
        HELM_BLOCK_QUOTED
    } else {
        HELM_BLOCK_PLAIN
    };
    let text = render(
        snippet,
        &[
            ("values_key", &db.values_key()),
            ("env_id", &db.env_id()),
            ("secret_key", &db.secret_key()),
        ],
    );
    let lines: Vec<&str> = text.lines().collect();
    let count = lines.len();
    lines
        .iter()
        .enumerate()
        .map(|(n, line)| {
            let body = line.trim_start();
            if n == 0 {
                let rest = body.trim_start_matches("{{-").trim_start_matches("{{");
                format!(
                    "{}{}{}",
                    " ".repeat(style.with_indent),
                    style.with_open,
                    rest
                )
            } else if n + 1 == count {
                format!("{}{}", " ".repeat(style.end_indent), style.end)
            } else {
                let depth = indent_of(line);
                let indent = if depth <= 2 {
                    style.item_indent + depth
                } else {
                    style.item_indent + 2 + (depth - 2) / 2 * style.step
                };
                format!("{}{body}", " ".repeat(indent))
            }
        })
        .collect()
}

/// Adds the block for `db` after the last block (or after the root-password entry).
pub fn add_block(text: &str, db: &DbName) -> FileResult<String> {
    let template = parse(text)?;
    if let Some(block) = template.block(&db.values_key()) {
        return Err(FileError::at(
            block.line,
            format!("a block for `{}` is already present", db.values_key()),
        ));
    }
    let style = style(text, &template)?;
    // `style` has refused a template with neither blocks nor a root-password entry.
    let at = insertion_line(&template);
    let mut doc = TextLines::new(text);
    doc.insert(at, render_block(db, &style));
    let result = doc.render();
    verify(&template, &result, db, true)?;
    Ok(result)
}

/// How many actions enclose the env list: those around the shallowest block or the
/// root-password entry. A new block goes at that depth, so that no `if` or `range`
/// of another block decides whether it renders.
fn list_depth(template: &Template) -> usize {
    template
        .blocks
        .iter()
        .map(|b| b.depth)
        .chain(template.root_entry.map(|_| template.root_depth))
        .min()
        .unwrap_or(0)
}

/// The 0-based line a new block goes before: after the last block or, if an `if`,
/// `range` or other action wraps it, after the outermost such action inside the
/// env list; with no block, after the root-password entry.
fn insertion_line(template: &Template) -> usize {
    let depth = list_depth(template);
    let last = template
        .blocks
        .iter()
        .max_by_key(|b| b.last)
        .map(|b| (b.first, b.last))
        .or(template.root_entry);
    let Some((first, last)) = last else {
        return 0;
    };
    template
        .actions
        .iter()
        .find(|&&(a_first, a_last, a_depth)| a_depth == depth && a_first <= first && a_last >= last)
        .map_or(last + 1, |&(_, a_last, _)| a_last + 1)
}

/// Removes the block for `db`, with the comment lines directly above it.
pub fn remove_block(text: &str, db: &DbName) -> FileResult<String> {
    let template = parse(text)?;
    let Some(block) = template.block(&db.values_key()) else {
        return Err(FileError::whole(format!(
            "no block for `{}`",
            db.values_key()
        )));
    };
    let mut doc = TextLines::new(text);
    let mut first = block.first;
    while first > 0 && is_template_comment(&doc.lines[first - 1]) {
        first -= 1;
    }
    let mut last = block.last;
    if first > 0
        && is_blank(&doc.lines[first - 1])
        && doc.lines.get(last + 1).is_some_and(|l| is_blank(l))
    {
        last += 1;
    }
    doc.remove(first..=last);
    let result = doc.render();
    verify(&template, &result, db, false)?;
    Ok(result)
}

fn is_template_comment(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with('#') || t.starts_with("{{/*") || t.starts_with("{{- /*")
}

/// Checks that `after` holds the blocks of `before` plus (or minus) exactly the one
/// for `db`, and that an added block is well formed.
fn verify(before: &Template, after: &str, db: &DbName, added: bool) -> FileResult<()> {
    let fail = |why: &str| Err(FileError::unverified(&format!("the edited template {why}")));
    let Ok(parsed) = parse(after) else {
        return fail("no longer parses");
    };
    let summary = |t: &Template| -> Vec<(String, Vec<String>, Vec<String>)> {
        t.blocks
            .iter()
            .filter(|b| b.values_key != db.values_key())
            .map(|b| {
                (
                    b.values_key.clone(),
                    b.ids().iter().map(|s| s.to_string()).collect(),
                    b.secret_keys.iter().map(|(k, _)| k.clone()).collect(),
                )
            })
            .collect()
    };
    if summary(before) != summary(&parsed) || parsed.stray_vars.len() != before.stray_vars.len() {
        return fail("changed other blocks");
    }
    let expected = before.blocks.len() as isize + if added { 1 } else { -1 };
    if parsed.blocks.len() as isize != expected {
        return fail("does not hold the expected number of blocks");
    }
    if added {
        match parsed.block(&db.values_key()) {
            Some(b) if b.malformation().is_some() => return fail("holds a malformed new block"),
            Some(b) if b.depth != list_depth(before) => {
                return fail("would put the new block under another action (`if`, `range`, ...)")
            }
            Some(_) => {}
            None => return fail("holds the new block only inside a comment"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
