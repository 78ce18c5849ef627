//! `installer/generate_secrets.py`: the passwords the installer generates.
//!
//! Every `self._set_generated("postgres", KEY, ...)` call generates KEY; a
//! `self._set("postgres", KEY, ...)` call sets it by hand (declared). New lines go
//! into the method `_postgres`, after its last `_set_generated` call, in that call's
//! quote character and indentation, on one line or wrapped as black wraps them.

use super::{indent_of, is_blank, FileError, FileResult, TextLines};
use crate::render::{render, GENERATOR_CALL_WRAPPED, GENERATOR_LINE};

/// One call that sets a key of the `postgres` secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretCall {
    pub key: String,
    /// 1-based line of the key.
    pub line: usize,
    /// `_set_generated` (true) or `_set` (false).
    pub generated: bool,
    /// 0-based first and last line of the call.
    pub first: usize,
    pub last: usize,
    pub in_postgres_method: bool,
    quote: char,
}

/// The `_postgres` method's place in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Method {
    /// 0-based line of `def _postgres(self)`.
    pub def_line: usize,
    /// 0-based last line of the body.
    pub last: usize,
    pub body_indent: usize,
}

#[derive(Clone, Debug)]
pub struct Generator {
    pub method: Option<Method>,
    pub calls: Vec<SecretCall>,
}

impl Generator {
    pub fn call(&self, key: &str) -> Option<&SecretCall> {
        self.calls.iter().find(|c| c.key == key)
    }
}

/// Whether a line is `def _postgres(self)`.
fn is_postgres_def(line: &str) -> bool {
    let Some(rest) = line.trim_start().strip_prefix("def") else {
        return false;
    };
    let compact: String = rest.chars().filter(|c| !c.is_whitespace()).collect();
    rest.starts_with(char::is_whitespace) && compact.starts_with("_postgres(self)")
}

/// A Python string literal without escapes at the start of `text` (after white
/// space): its quote, its content and the rest of the text.
fn string_literal(text: &str) -> Option<(char, &str, &str)> {
    let text = text.trim_start();
    let quote = text.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let end = text[1..].find(['"', '\'', '\\'])? + 1;
    (text[end..].starts_with(quote)).then(|| (quote, &text[1..end], &text[end + 1..]))
}

/// The component and key of a call's arguments `"postgres", "KEY", ...`, with the
/// quote character and the key's byte offset in `args`.
fn component_and_key(args: &str) -> Option<(&str, &str, char, usize)> {
    let (quote, component, rest) = string_literal(args)?;
    let rest = rest.trim_start().strip_prefix(',')?;
    let (_, key, rest) = string_literal(rest)?;
    rest.trim_start().starts_with(',').then_some(())?;
    let key_offset = key.as_ptr() as usize - args.as_ptr() as usize;
    Some((component, key, quote, key_offset))
}

/// The byte offset just past the parenthesis that closes the one opened before
/// `start`, skipping string literals.
fn closing_paren(text: &str, start: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 1;
    let mut i = start;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let b = bytes[i];
        match quote {
            Some(_) if b == b'\\' => i += 1,
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None => match b {
                b'"' | b'\'' => quote = Some(b),
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(i + 1);
                    }
                }
                b'#' => {
                    while i < bytes.len() && bytes[i] != b'\n' {
                        i += 1;
                    }
                }
                _ => {}
            },
        }
        i += 1;
    }
    None
}

/// Parses the generator.
pub fn parse(text: &str) -> FileResult<Generator> {
    let lines: Vec<&str> = text.lines().collect();
    let method = lines
        .iter()
        .position(|l| is_postgres_def(l))
        .map(|def_line| {
            let def_indent = indent_of(lines[def_line]);
            let mut last = def_line;
            let mut body_indent = None;
            for (j, line) in lines.iter().enumerate().skip(def_line + 1) {
                if is_blank(line) {
                    continue;
                }
                if indent_of(line) <= def_indent {
                    break;
                }
                body_indent.get_or_insert(indent_of(line));
                last = j;
            }
            Method {
                def_line,
                last,
                body_indent: body_indent.unwrap_or(def_indent + 4),
            }
        });
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let line_of = |offset: usize| line_starts.partition_point(|&s| s <= offset) - 1;

    let mut calls = Vec::new();
    for (start, _) in text.match_indices("self._set") {
        let after = &text[start + "self._set".len()..];
        let (generated, open) = if after.starts_with("_generated(") {
            (true, "_generated(".len())
        } else if after.starts_with('(') {
            (false, 1)
        } else {
            continue;
        };
        let args_start = start + "self._set".len() + open;
        let first = line_of(start);
        if text[line_starts[first]..start].contains('#') {
            continue;
        }
        let end = closing_paren(text, args_start)
            .ok_or_else(|| FileError::at(first + 1, "this call's parenthesis is never closed"))?;
        let args = &text[args_start..end - 1];
        let Some((component, key, quote, key_offset)) = component_and_key(args) else {
            continue;
        };
        if component != "postgres" {
            continue;
        }
        let in_postgres_method = method
            .as_ref()
            .is_some_and(|md| first > md.def_line && first <= md.last);
        calls.push(SecretCall {
            key: key.to_string(),
            line: line_of(args_start + key_offset) + 1,
            generated,
            first,
            last: line_of(end - 1),
            in_postgres_method,
            quote,
        });
    }
    Ok(Generator { method, calls })
}

/// Adds `self._set_generated("postgres", KEY, secrets.token_hex(32))` to `_postgres`.
pub fn add_line(text: &str, key: &str) -> FileResult<String> {
    let generator = parse(text)?;
    let method = generator.method.clone().ok_or_else(|| {
        FileError::whole("the generator has no method `def _postgres(self)`; add it by hand first")
    })?;
    if let Some(call) = generator.call(key) {
        return Err(FileError::at(
            call.line,
            format!("`{key}` is already set here"),
        ));
    }
    let lines: Vec<&str> = text.lines().collect();
    let in_method: Vec<&SecretCall> = generator
        .calls
        .iter()
        .filter(|c| c.in_postgres_method && c.generated)
        .collect();
    let (at, indent, quote) = match in_method.last() {
        Some(last) => (last.last + 1, indent_of(lines[last.first]), last.quote),
        None => (method.last + 1, method.body_indent, '"'),
    };
    let q = quote.to_string();
    let vars = [("q", q.as_str()), ("secret_key", key)];
    let single = render(GENERATOR_LINE, &vars);
    let single_len = indent + single.trim_end().len();
    let joined_len = |c: &SecretCall| -> usize {
        let joined: String = lines[c.first..=c.last]
            .iter()
            .map(|l| l.trim())
            .collect::<Vec<_>>()
            .join(" ");
        indent_of(lines[c.first])
            + joined
                .replace("( ", "(")
                .replace(" )", ")")
                .replace(", )", ")")
                .len()
    };
    let wrapped: Vec<usize> = in_method
        .iter()
        .filter(|c| c.last > c.first)
        .map(|c| joined_len(c))
        .collect();
    let longest_single = in_method
        .iter()
        .filter(|c| c.last == c.first)
        .map(|c| joined_len(c))
        .max()
        .unwrap_or(0);
    // The file's line length lies between its longest one-line call and its
    // shortest wrapped one; where the new call falls between them, assume the
    // smallest common formatter limit in that range (black's 79, 88, ...).
    let wrap = match wrapped.iter().min() {
        None => false,
        Some(_) if single_len <= longest_single => false,
        Some(&shortest_wrapped) if single_len >= shortest_wrapped => true,
        Some(&shortest_wrapped) => {
            let limit = [79, 88, 99, 100, 119, 120]
                .into_iter()
                .find(|l| (longest_single..shortest_wrapped).contains(l))
                .unwrap_or((longest_single + shortest_wrapped) / 2);
            single_len > limit
        }
    };
    let snippet = if wrap {
        render(GENERATOR_CALL_WRAPPED, &vars)
    } else {
        single
    };
    let inner_indent = in_method.iter().find(|c| c.last > c.first).map_or(4, |c| {
        indent_of(lines[c.first + 1]).saturating_sub(indent_of(lines[c.first]))
    });
    let new_lines: Vec<String> = snippet
        .lines()
        .map(|l| {
            let extra = if indent_of(l) > 0 { inner_indent } else { 0 };
            format!("{}{}", " ".repeat(indent + extra), l.trim_start())
        })
        .collect();
    let mut doc = TextLines::new(text);
    doc.insert(at, new_lines);
    let result = doc.render();
    verify(&generator, &result, key, true)?;
    Ok(result)
}

/// Removes the call that generates or sets `key`.
pub fn remove_line(text: &str, key: &str) -> FileResult<String> {
    let generator = parse(text)?;
    let Some(call) = generator.call(key) else {
        return Err(FileError::whole(format!(
            "`{key}` is not set in the generator"
        )));
    };
    if let Some(method) = &generator.method {
        let others = (method.def_line + 1..=method.last)
            .filter(|j| *j < call.first || *j > call.last)
            .any(|j| !is_blank(text.lines().nth(j).unwrap_or("")));
        if call.in_postgres_method && !others {
            return Err(FileError::at(
                call.line,
                "removing this call would leave `_postgres` empty; edit it by hand",
            ));
        }
    }
    let mut doc = TextLines::new(text);
    doc.remove(call.first..=call.last);
    let result = doc.render();
    verify(&generator, &result, key, false)?;
    Ok(result)
}

fn verify(before: &Generator, after: &str, key: &str, added: bool) -> FileResult<()> {
    let fail = |why: &str| {
        Err(FileError::unverified(&format!(
            "the edited generator {why}"
        )))
    };
    let Ok(parsed) = parse(after) else {
        return fail("no longer parses");
    };
    if parsed.method.is_none() {
        return fail("lost its `_postgres` method");
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
    if added != new.is_some_and(|c| c.generated && c.in_postgres_method) {
        return fail(if added {
            "does not generate the new key"
        } else {
            "still sets the key"
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
