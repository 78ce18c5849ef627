//! Adding and removing a key of the `postgres` secret in each of the generator's
//! shapes, each edit verified by parsing its result.

use super::{display_width, parse, Generator, Method, SecretCall, Shape};
use crate::files::{sorted_position, FileError, FileResult, TextLines};
use crate::render::{
    render, GENERATOR_CALL_WRAPPED, GENERATOR_DICT_ITEM, GENERATOR_LINE, GENERATOR_MODULE_CALL,
};

/// The leading white space of a line.
pub(super) fn indent_text(line: &str) -> &str {
    &line[..line.len() - line.trim_start_matches([' ', '\t']).len()]
}

/// Adds a generated `key` in the file's shape.
pub fn add_line(text: &str, key: &str) -> FileResult<String> {
    let generator = parse(text)?;
    if let Some(call) = generator.call(key) {
        return Err(FileError::at(
            call.line,
            format!("`{key}` is already set here"),
        ));
    }
    let method = generator.method.clone().ok_or_else(|| match generator.shape {
        Shape::ModuleCalls => FileError::whole(
            "the generator's `set_generated_secret(..., \"postgres\", ...)` calls have no unconditional place; add the call by hand",
        ),
        _ => FileError::whole(
            "the generator has no method `def _postgres(self)` (nor `generate_postgres_secrets()` nor \
             `set_generated_secret(s, \"postgres\", ...)` calls); add it by hand first",
        ),
    })?;
    let result = match generator.shape {
        Shape::DictLiteral => add_dict_item(text, &generator, key)?,
        _ => add_call(text, &generator, &method, key)?,
    };
    verify(&generator, &result, key, Change::Added)?;
    Ok(result)
}

/// Whether a call of `single_len` columns is wrapped in a file whose calls are
/// `calls`: its line length lies between its longest one-line call and its shortest
/// wrapped one; where the new call falls between them, assume the smallest common
/// formatter limit in that range (black's 79, 88, ...).
fn needs_wrapping(lines: &[&str], calls: &[&SecretCall], single_len: usize) -> bool {
    let joined_len = |c: &SecretCall| -> usize {
        let joined: String = lines[c.first..=c.last.min(lines.len() - 1)]
            .iter()
            .map(|l| l.trim())
            .collect::<Vec<_>>()
            .join(" ");
        display_width(&c.indent)
            + joined
                .replace("( ", "(")
                .replace(" )", ")")
                .replace(", )", ")")
                .len()
    };
    let shortest_wrapped = calls
        .iter()
        .filter(|c| c.last > c.first)
        .map(|c| joined_len(c))
        .min();
    let longest_single = calls
        .iter()
        .filter(|c| c.last == c.first)
        .map(|c| joined_len(c))
        .max()
        .unwrap_or(0);
    match shortest_wrapped {
        None => false,
        Some(_) if single_len <= longest_single => false,
        Some(shortest) if single_len >= shortest => true,
        Some(shortest) => {
            let limit = [79, 88, 99, 100, 119, 120]
                .into_iter()
                .find(|l| (longest_single..shortest).contains(l))
                .unwrap_or((longest_single + shortest) / 2);
            single_len > limit
        }
    }
}

/// The calls a new one is placed among: generated, run unconditionally in the place.
fn siblings(generator: &Generator) -> Vec<&SecretCall> {
    generator
        .calls
        .iter()
        .filter(|c| c.in_postgres_method && c.generated)
        .collect()
}

fn add_call(text: &str, generator: &Generator, method: &Method, key: &str) -> FileResult<String> {
    let lines: Vec<&str> = text.lines().collect();
    let in_method = siblings(generator);
    let keys: Vec<&str> = in_method.iter().map(|c| c.key.as_str()).collect();
    let before = sorted_position(&keys, key).filter(|&p| p < in_method.len());
    let (at, indent, quote) = match (before, in_method.last()) {
        (Some(p), _) => (
            in_method[p].first,
            in_method[p].indent.clone(),
            in_method[p].quote,
        ),
        (None, Some(last)) => (last.last + 1, last.indent.clone(), last.quote),
        (None, None) => (method.last + 1, method.body_indent_text.clone(), '"'),
    };
    let q = quote.to_string();
    let target = in_method
        .first()
        .map_or("s".to_string(), |c| c.target.clone());
    let vars = [("q", q.as_str()), ("secret_key", key), ("target", &target)];
    let single = if generator.shape == Shape::ModuleCalls {
        render(GENERATOR_MODULE_CALL, &vars)
    } else {
        render(GENERATOR_LINE, &vars)
    };
    let single_len = display_width(&indent) + single.trim_end().len();
    let wrap = generator.shape == Shape::Methods && needs_wrapping(&lines, &in_method, single_len);
    let snippet = if wrap {
        render(GENERATOR_CALL_WRAPPED, &vars)
    } else {
        single
    };
    let inner = in_method
        .iter()
        .find(|c| c.last > c.first)
        .and_then(|c| {
            let next = indent_text(lines[c.first + 1]);
            next.strip_prefix(c.indent.as_str()).map(str::to_string)
        })
        .unwrap_or_else(|| generator.step.clone());
    let new_lines: Vec<String> = snippet
        .lines()
        .map(|l| {
            let extra = if l.starts_with(' ') {
                inner.as_str()
            } else {
                ""
            };
            format!("{indent}{extra}{}", l.trim_start())
        })
        .collect();
    let mut doc = TextLines::new(text);
    doc.insert(at, new_lines);
    Ok(doc.render())
}

/// The calls in the place, which in a dict-literal generator are the returned
/// dict's items.
fn calls_in_place(generator: &Generator) -> Vec<&SecretCall> {
    generator
        .calls
        .iter()
        .filter(|c| c.in_postgres_method)
        .collect()
}

fn add_dict_item(text: &str, generator: &Generator, key: &str) -> FileResult<String> {
    let items = calls_in_place(generator);
    let Some(last) = items.last() else {
        return Err(FileError::whole(
            "`generate_postgres_secrets()` returns no dict items to imitate; add the key by hand",
        ));
    };
    let lines: Vec<&str> = text.lines().collect();
    let keys: Vec<&str> = items.iter().map(|c| c.key.as_str()).collect();
    let before = sorted_position(&keys, key).filter(|&p| p < items.len());
    let one_line = items.windows(2).any(|w| w[0].last == w[1].first)
        || items.len() == 1 && {
            let l = lines[last.first];
            l.contains('{') || l.contains('}')
        };
    let q = last.quote.to_string();
    let item = render(
        GENERATOR_DICT_ITEM,
        &[("q", q.as_str()), ("secret_key", key)],
    );
    let item = item.trim_end();
    if one_line {
        // `{"a": x, "b": y}`: a new item after the last (or before one) on its line.
        let (offset, insert) = match before {
            Some(p) => {
                let start = key_start(text, items[p]);
                (start, format!("{item}, "))
            }
            None => (last.value_end, format!(", {item}")),
        };
        let mut out = text.to_string();
        out.insert_str(offset, &insert);
        return Ok(out);
    }
    let indent = indent_text(lines[last.first]).to_string();
    let mut doc_text = text.to_string();
    let (at, with_comma) = match before {
        Some(p) => (items[p].first, true),
        None => (last.last + 1, last.comma),
    };
    if before.is_none() && !last.comma {
        doc_text.insert(last.value_end, ',');
    }
    let mut doc = TextLines::new(&doc_text);
    let comma = if with_comma { "," } else { "" };
    doc.insert(at, [format!("{indent}{item}{comma}")]);
    Ok(doc.render())
}

/// The byte offset of a dict item's key.
fn key_start(text: &str, item: &SecretCall) -> usize {
    let line_start: usize = text
        .split_inclusive('\n')
        .take(item.first)
        .map(str::len)
        .sum();
    let q = item.quote;
    text[line_start..]
        .find(&format!("{q}{}{q}", item.key))
        .map_or(line_start, |i| line_start + i)
}

/// Removes the call (or dict item) that generates or sets `key`.
pub fn remove_line(text: &str, key: &str) -> FileResult<String> {
    let generator = parse(text)?;
    let Some(call) = generator.call(key) else {
        return Err(FileError::whole(format!(
            "`{key}` is not set in the generator"
        )));
    };
    let result = match generator.shape {
        Shape::DictLiteral => remove_dict_item(text, &generator, call)?,
        _ => {
            if let Some(method) = &generator.method {
                let others = (method.def_line + 1..=method.last)
                    .filter(|j| *j < call.first || *j > call.last)
                    .any(|j| !text.lines().nth(j).unwrap_or("").trim().is_empty());
                if generator.shape == Shape::Methods && call.in_postgres_method && !others {
                    return Err(FileError::at(
                        call.line,
                        "removing this call would leave `_postgres` empty; edit it by hand",
                    ));
                }
            }
            let mut doc = TextLines::new(text);
            doc.remove(call.first..=call.last);
            doc.render()
        }
    };
    verify(&generator, &result, key, Change::Removed)?;
    Ok(result)
}

fn remove_dict_item(text: &str, generator: &Generator, call: &SecretCall) -> FileResult<String> {
    let items = calls_in_place(generator);
    let index = items.iter().position(|c| c.key == call.key).unwrap_or(0);
    let shares_line = |a: &SecretCall, b: &SecretCall| a.last == b.first;
    let prev = index.checked_sub(1).map(|p| items[p]);
    let next = items.get(index + 1).copied();
    if prev.is_some_and(|p| shares_line(p, call)) || next.is_some_and(|n| shares_line(call, n)) {
        let mut out = text.to_string();
        match (prev, next) {
            // `, "k": v` after the previous item.
            (Some(p), _) if shares_line(p, call) => {
                out.replace_range(p.value_end..call.value_end, "");
            }
            // `"k": v, ` before the next item.
            (_, Some(n)) => {
                out.replace_range(key_start(text, call)..key_start(text, n), "");
            }
            _ => {}
        }
        return Ok(out);
    }
    let mut out = text.to_string();
    if next.is_none() && !call.comma {
        if let Some(p) = prev {
            // The previous item becomes the last, without the comma the new one needed.
            let comma_at = out[p.value_end..].find(',').map(|i| p.value_end + i);
            if let Some(c) = comma_at {
                out.remove(c);
            }
        }
    }
    let mut doc = TextLines::new(&out);
    doc.remove(call.first..=call.last);
    Ok(doc.render())
}

/// What an edit did to its key.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Change {
    Added,
    Removed,
}

/// The edited text still parses in the same shape, every other key is as before, and
/// the key is generated where Python always runs it (added) or gone (removed).
fn verify(before: &Generator, after: &str, key: &str, change: Change) -> FileResult<()> {
    let fail = |why: &str| {
        Err(FileError::unverified(&format!(
            "the edited generator {why}"
        )))
    };
    let Ok(parsed) = parse(after) else {
        return fail("no longer parses");
    };
    if parsed.shape != before.shape || parsed.method.is_none() {
        return fail("lost its place for postgres' secrets");
    }
    let others = |g: &Generator| -> Vec<(String, bool)> {
        g.calls
            .iter()
            .filter(|c| c.key != key)
            .map(|c| (c.key.clone(), c.generated))
            .collect()
    };
    if others(before) != others(&parsed) {
        return fail("changed other keys");
    }
    let new = parsed.call(key);
    let added = change == Change::Added;
    if added != new.is_some_and(|c| c.generated && c.in_postgres_method) {
        return fail(if added {
            "does not generate the new key where Python always runs it"
        } else {
            "still sets the key"
        });
    }
    Ok(())
}
