//! Reading each of the generator's shapes from its tokens: the setter calls (methods
//! and module calls) and their place, the returned dict's items, and the reads of a
//! postgres password by other components.

use super::{Copy, Method, SecretCall};
use crate::files::python::{Source, Tok, Token};
use crate::files::{FileError, FileResult};

/// The index of the bracket closing the one at `open`, if any.
fn closing(tokens: &[Token], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, t) in tokens.iter().enumerate().skip(open) {
        match &t.tok {
            Tok::Op(o) if o == "(" || o == "[" || o == "{" => depth += 1,
            Tok::Op(o) if o == ")" || o == "]" || o == "}" => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// The component a function's name stands for: `_gafaelfawr` and
/// `generate_gafaelfawr_secrets` are `gafaelfawr`.
fn component_of(function: &str) -> String {
    let name = function.trim_start_matches('_');
    name.strip_prefix("generate_")
        .and_then(|n| n.strip_suffix("_secrets"))
        .unwrap_or(name)
        .to_string()
}

/// The component a statement stores into, when it says: the first argument of
/// `self._set("C", ...)` or `set_secret(s, "C", ...)`, or the target of
/// `self.secrets["C"][...] = ...` / `s["C"][...] = ...`.
fn target_component(t: &[Token]) -> Option<String> {
    let str_at = |i: usize| t.get(i).and_then(Token::string).map(str::to_string);
    let name_at = |i: usize| t.get(i).and_then(Token::name);
    if name_at(0) == Some("self") && t.get(1).is_some_and(|x| x.is_op(".")) {
        match name_at(2) {
            Some("_set" | "_set_generated") if t.get(3).is_some_and(|x| x.is_op("(")) => {
                return str_at(4)
            }
            Some("secrets") if t.get(3).is_some_and(|x| x.is_op("[")) => {
                return t.iter().any(|x| x.is_op("=")).then(|| str_at(4)).flatten();
            }
            _ => {}
        }
    }
    match name_at(0) {
        Some("set_secret" | "set_generated_secret") if t.get(1).is_some_and(|x| x.is_op("(")) => {
            str_at(4)
        }
        Some(_) if t.get(1).is_some_and(|x| x.is_op("[")) && t.iter().any(|x| x.is_op("=")) => {
            str_at(2)
        }
        _ => None,
    }
}

/// Parses the generator.
/// The place a `def` at statement `stmt` gives: its lines and body indentation.
pub(super) fn method_of(src: &Source, stmt: usize) -> Method {
    let body = src.body(stmt);
    let first_body = src.statements.get(body.start).filter(|_| !body.is_empty());
    let def = &src.statements[stmt];
    let step_guess = if def.indent.contains('\t') {
        "\t"
    } else {
        "    "
    };
    Method {
        def_line: def.first,
        last: if body.is_empty() {
            def.last
        } else {
            src.statements[body.end - 1].last
        },
        body_indent: first_body.map_or(def.width + 4, |s| s.width),
        body_indent_text: first_body.map_or_else(
            || format!("{}{step_guess}", def.indent),
            |s| s.indent.clone(),
        ),
    }
}

/// Whether the statement runs unconditionally at the top level of the `def` at
/// `def` (or of the module, without one).
fn unconditional_in(src: &Source, stmt: usize, def: Option<usize>) -> bool {
    let chain = src.enclosing(stmt);
    match def {
        Some(d) => chain.first() == Some(&d),
        None => chain.is_empty(),
    }
}

/// A call that sets a secret starting at token `i`: `self._set_generated(` /
/// `self._set(` / `set_generated_secret(` / `set_secret(`, as (generated, module
/// call, index of its opening parenthesis).
fn setter_at(toks: &[Token], i: usize) -> Option<(bool, bool, usize)> {
    match toks[i].name()? {
        "self"
            if toks.get(i + 1).is_some_and(|t| t.is_op("."))
                && toks.get(i + 3).is_some_and(|t| t.is_op("(")) =>
        {
            match toks[i + 2].name() {
                Some("_set_generated") => Some((true, false, i + 3)),
                Some("_set") => Some((false, false, i + 3)),
                _ => None,
            }
        }
        n @ ("set_generated_secret" | "set_secret")
            if toks.get(i + 1).is_some_and(|t| t.is_op("("))
                && !(i > 0 && (toks[i - 1].is_op(".") || toks[i - 1].is_name("def"))) =>
        {
            Some((n == "set_generated_secret", true, i + 1))
        }
        _ => None,
    }
}

/// The arguments of a setter call when they set a key of `postgres`: (the module
/// call's target, the key, its quote character, its 0-based line).
fn postgres_key(args: &[Token], module: bool) -> Option<(String, String, char, usize)> {
    let (target, rest) = if module {
        match args {
            [t, c, rest @ ..] if c.is_op(",") => (t.name().unwrap_or("").to_string(), rest),
            _ => return None,
        }
    } else {
        (String::new(), args)
    };
    let [c, comma, k, comma2, ..] = rest else {
        return None;
    };
    if !(comma.is_op(",") && comma2.is_op(",")) {
        return None;
    }
    match (&c.tok, &k.tok) {
        (
            Tok::Str { content, .. },
            Tok::Str {
                content: key,
                quote,
            },
        ) if content == "postgres" => Some((target, key.clone(), *quote, k.line)),
        _ => None,
    }
}

/// Every setter call of a `postgres` key (methods and module calls), and whether any
/// was a module call.
pub(super) fn secret_calls(
    src: &Source,
    postgres_def: Option<usize>,
) -> FileResult<(Vec<SecretCall>, bool)> {
    let toks = &src.tokens;
    let mut calls = Vec::new();
    let mut module_calls = false;
    for i in 0..toks.len() {
        let Some((generated, module, open)) = setter_at(toks, i) else {
            continue;
        };
        let close = closing(toks, open).ok_or_else(|| {
            FileError::at(toks[i].line + 1, "this call's parenthesis is never closed")
        })?;
        let Some((target, key, quote, key_line)) = postgres_key(&toks[open + 1..close], module)
        else {
            continue;
        };
        module_calls |= module;
        let Some(stmt) = src.statement_of(i) else {
            continue;
        };
        let statement = &src.statements[stmt];
        let in_source = if module {
            let holder = src
                .enclosing(stmt)
                .first()
                .copied()
                .filter(|&d| src.def_name(d).is_some());
            unconditional_in(src, stmt, holder)
        } else {
            postgres_def.is_some() && unconditional_in(src, stmt, postgres_def)
        };
        calls.push(SecretCall {
            key,
            line: key_line + 1,
            generated,
            first: statement.first,
            last: statement.last.max(toks[close].line),
            in_postgres_method: in_source,
            quote,
            indent: statement.indent.clone(),
            target,
            value_end: 0,
            comma: false,
        });
    }
    Ok((calls, module_calls))
}

/// The statement whose first line is `first`.
fn statement_starting(src: &Source, first: usize) -> usize {
    src.statements
        .iter()
        .position(|s| s.first == first)
        .unwrap_or(0)
}

/// The module calls' place: the function holding the first unconditional one, or the
/// module itself; only the calls in that place keep `in_postgres_method`.
pub(super) fn module_place(src: &Source, calls: &mut [SecretCall]) -> Option<Method> {
    let first = calls
        .iter()
        .find(|c| c.in_postgres_method)
        .or(calls.first())?
        .clone();
    let holder = src
        .enclosing(statement_starting(src, first.first))
        .first()
        .copied();
    let method = match holder.filter(|&d| src.def_name(d).is_some()) {
        Some(d) => method_of(src, d),
        None => Method {
            def_line: first.first,
            last: calls.iter().map(|c| c.last).max().unwrap_or(first.last),
            body_indent: 0,
            body_indent_text: String::new(),
        },
    };
    let holder_line = holder.map(|d| src.statements[d].first);
    for c in calls.iter_mut().filter(|c| c.in_postgres_method) {
        let s = statement_starting(src, c.first);
        let h = src.enclosing(s).first().map(|&d| src.statements[d].first);
        c.in_postgres_method = h == holder_line;
    }
    Some(method)
}

/// Whether the token after a subscript assigns to it (`=`, `+=`, ...), not compares.
fn assigns(t: Option<&Token>) -> bool {
    t.is_some_and(|t| {
        matches!(&t.tok, Tok::Op(o) if o == "="
            || (o.len() == 2 && o.ends_with('=') && !["==", "!=", "<=", ">="].contains(&o.as_str())))
    })
}

/// Copies: `X["postgres"]["K"]` read (not assigned) outside postgres' own place.
pub(super) fn copies(src: &Source, text: &str) -> Vec<Copy> {
    let toks = &src.tokens;
    let mut copies = Vec::new();
    for i in 1..toks.len() {
        let window = &toks[i..toks.len().min(i + 6)];
        let [o1, pg, c1, o2, key, c2] = window else {
            continue;
        };
        if !(o1.is_op("[") && c1.is_op("]") && o2.is_op("[") && c2.is_op("]"))
            || pg.string() != Some("postgres")
            || !matches!(toks[i - 1].tok, Tok::Name(_))
                && !toks[i - 1].is_op("]")
                && !toks[i - 1].is_op(")")
        {
            continue;
        }
        let Some(key) = key.string() else { continue };
        let Some(stmt) = src.statement_of(i).filter(|_| !assigns(toks.get(i + 6))) else {
            continue;
        };
        let function = src
            .enclosing(stmt)
            .into_iter()
            .find_map(|d| src.def_name(d))
            .unwrap_or("module");
        let component = target_component(src.tokens_of(&src.statements[stmt]))
            .unwrap_or_else(|| component_of(function));
        if component == "postgres" {
            continue;
        }
        // The receiver: `NAME(.NAME)*` before the subscripts.
        let mut start = i - 1;
        while start >= 2 && toks[start - 1].is_op(".") && toks[start - 2].name().is_some() {
            start -= 2;
        }
        copies.push(Copy {
            key: key.to_string(),
            line: o1.line + 1,
            component,
            function: if function == "module" {
                "module level".to_string()
            } else {
                function.to_string()
            },
            expression: text[toks[start].start..c2.end].to_string(),
        });
    }
    copies
}

/// The smallest indentation step of the file: `\t` when its statements are
/// indented with tabs, else that many spaces (4 if none).
pub(super) fn file_step(src: &Source) -> String {
    if src.statements.iter().any(|s| s.indent.starts_with('\t')) {
        return "\t".to_string();
    }
    let step = src
        .statements
        .iter()
        .map(|s| s.width)
        .filter(|&w| w > 0)
        .min()
        .unwrap_or(4);
    " ".repeat(step)
}

/// The items of the dict literal that `def generate_postgres_secrets()` returns.
pub(super) fn dict_items(src: &Source, def: usize) -> FileResult<Vec<SecretCall>> {
    let toks = &src.tokens;
    let mut out = Vec::new();
    for stmt in src.body(def) {
        if src.enclosing(stmt).first() != Some(&def) {
            continue;
        }
        let range = src.statements[stmt].tokens.clone();
        let t = &toks[range.clone()];
        if !(t.len() >= 2 && t[0].is_name("return") && t[1].is_op("{")) {
            continue;
        }
        let open = range.start + 1;
        let close = closing(toks, open).ok_or_else(|| {
            FileError::at(toks[open].line + 1, "this dict's brace is never closed")
        })?;
        let mut i = open + 1;
        while i < close {
            // KEY : VALUE [,]
            let key_tok = &toks[i];
            let (Some(key), Some(colon)) = (key_tok.string(), toks.get(i + 1)) else {
                break;
            };
            if !colon.is_op(":") {
                break;
            }
            let mut j = i + 2;
            let mut depth = 0usize;
            let mut generated = false;
            while j < close {
                match &toks[j].tok {
                    Tok::Op(o) if o == "(" || o == "[" || o == "{" => depth += 1,
                    Tok::Op(o) if o == ")" || o == "]" || o == "}" => depth -= 1,
                    Tok::Op(o) if o == "," && depth == 0 => break,
                    Tok::Name(n) if n == "secrets" || n.starts_with("token_") => generated = true,
                    _ => {}
                }
                j += 1;
            }
            let value_last = j - 1;
            let comma = j < close;
            let quote = match &key_tok.tok {
                Tok::Str { quote, .. } => *quote,
                _ => '"',
            };
            out.push(SecretCall {
                key: key.to_string(),
                line: key_tok.line + 1,
                generated,
                first: key_tok.line,
                last: toks[if comma { j } else { value_last }].line,
                in_postgres_method: true,
                quote,
                indent: String::new(),
                target: String::new(),
                value_end: toks[value_last].end,
                comma,
            });
            i = if comma { j + 1 } else { j };
        }
        break;
    }
    Ok(out)
}
