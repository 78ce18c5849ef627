//! Adding and removing a database block in the template's own style (quoting,
//! indentation, `end` form), each edit verified by parsing its result.

use super::{parse, Style, Template};
use crate::files::{indent_of, is_blank, Change, FileError, FileResult, TextLines};
use crate::names::DbName;
use crate::render::{render, HELM_BLOCK_PLAIN, HELM_BLOCK_QUOTED};

/// How the file writes its blocks, from its last block or else from the
/// root-password entry.
pub(super) fn style(text: &str, template: &Template) -> FileResult<Style> {
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
fn render_block(db: &DbName, style: &Style) -> Vec<String> {
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
    verify(&template, &result, db, Change::Added)?;
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
    verify(&template, &result, db, Change::Removed)?;
    Ok(result)
}

fn is_template_comment(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with('#') || t.starts_with("{{/*") || t.starts_with("{{- /*")
}

/// Checks that `after` holds the blocks of `before` plus (or minus) exactly the one
/// for `db`, and that an added block is well formed.
fn verify(before: &Template, after: &str, db: &DbName, change: Change) -> FileResult<()> {
    let added = change == Change::Added;
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
