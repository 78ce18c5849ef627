//! `installer/generate_secrets.py`: the passwords the installer generates.
//!
//! The generator has had three shapes, all read and written here:
//!
//! - methods (today's): `self._set_generated("postgres", KEY, ...)` generates KEY,
//!   `self._set("postgres", KEY, ...)` sets it by hand; the calls live in the method
//!   `def _postgres(self)`;
//! - module calls (older): `set_generated_secret(s, "postgres", KEY, ...)` (and
//!   `set_secret(...)` for a value set by hand), a module-level helper taking the
//!   secrets dict first;
//! - a dict literal (the oldest): `def generate_postgres_secrets(): return {KEY: ...}`.
//!
//! The file is tokenized ([`super::python`]), so a call inside a docstring or a
//! comment is not a call. A new call goes where Python runs it unconditionally (at
//! the top level of `_postgres`'s body, never under an `if`), beside the existing
//! calls in their quote character, indentation (tabs included) and wrapping, at its
//! alphabetical place when the calls are (loosely) sorted, else after the last one.
//!
//! Other components copy a postgres password (`self.secrets["postgres"]["K"]` read
//! in `def _gafaelfawr(self)`): those reads are [`Copy`]s, so that a key still
//! copied is never removed silently.

use super::python::{tokenize, Source, Tok, Token};
use super::{sorted_position, FileError, FileResult, TextLines};
use crate::render::{
    render, GENERATOR_APP_COPY, GENERATOR_CALL_WRAPPED, GENERATOR_DICT_ITEM, GENERATOR_LINE,
    GENERATOR_MODULE_CALL,
};

/// Which of the three shapes the file has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `self._set_generated("postgres", ...)` in `def _postgres(self)`.
    Methods,
    /// `set_generated_secret(s, "postgres", ...)`.
    ModuleCalls,
    /// `def generate_postgres_secrets(): return {...}`.
    DictLiteral,
}

/// One call (or dict item) that sets a key of the `postgres` secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretCall {
    pub key: String,
    /// 1-based line of the key.
    pub line: usize,
    /// Generated (`_set_generated`, `set_generated_secret`, a `secrets.token_*`
    /// value) or set by hand.
    pub generated: bool,
    /// 0-based first and last line of the call.
    pub first: usize,
    pub last: usize,
    /// Whether Python runs it unconditionally where the file makes postgres'
    /// secrets: at the top level of `_postgres`'s body (methods), of the function
    /// holding the calls (module calls), or in the returned literal (dict).
    pub in_postgres_method: bool,
    quote: char,
    /// The leading white space of its first line.
    indent: String,
    /// The first argument of a module call (`s`).
    target: String,
    /// Dict items: the byte offset just past the value, and whether a comma follows.
    value_end: usize,
    comma: bool,
}

/// A read of a postgres password by another component.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Copy {
    pub key: String,
    /// 1-based line.
    pub line: usize,
    /// The component: `gafaelfawr` for a read inside `def _gafaelfawr(self)` or
    /// `def generate_gafaelfawr_secrets()`.
    pub component: String,
    /// The function that reads it (`_gafaelfawr`), or `module level`.
    pub function: String,
    /// The expression as written: `self.secrets["postgres"]["K"]`.
    pub expression: String,
}

/// The place that makes postgres' secrets: `_postgres`, `generate_postgres_secrets`
/// or the function holding the module calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Method {
    /// 0-based line of the `def` (of the first call at module level).
    pub def_line: usize,
    /// 0-based last line of the body.
    pub last: usize,
    /// Width of the body's indentation.
    pub body_indent: usize,
    body_indent_text: String,
}

#[derive(Clone, Debug)]
pub struct Generator {
    pub shape: Shape,
    pub method: Option<Method>,
    pub calls: Vec<SecretCall>,
    pub copies: Vec<Copy>,
    /// Every function and method: name, 0-based `def` line and last line, body indent.
    functions: Vec<(String, usize, usize, String)>,
    /// One indentation step of the file (`\t` in a tab-indented file).
    step: String,
}

impl Generator {
    pub fn call(&self, key: &str) -> Option<&SecretCall> {
        self.calls.iter().find(|c| c.key == key)
    }

    /// The copies of `key`.
    pub fn copies_of<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a Copy> + 'a {
        self.copies.iter().filter(move |c| c.key == key)
    }
}

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
pub fn parse(text: &str) -> FileResult<Generator> {
    let src = tokenize(text);
    let toks = &src.tokens;
    let defs: Vec<(usize, &str)> = (0..src.statements.len())
        .filter_map(|s| src.def_name(s).map(|n| (s, n)))
        .collect();
    let method_of = |stmt: usize| -> Option<Method> {
        let body = src.body(stmt);
        let first_body = src.statements.get(body.start).filter(|_| !body.is_empty());
        let def = &src.statements[stmt];
        let step_guess = if def.indent.contains('\t') {
            "\t"
        } else {
            "    "
        };
        Some(Method {
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
        })
    };
    let unconditional_in = |stmt: usize, def: Option<usize>| -> bool {
        let chain = src.enclosing(stmt);
        match def {
            Some(d) => chain.first() == Some(&d),
            None => chain.is_empty(),
        }
    };
    let step = file_step(&src);

    let postgres_def = defs
        .iter()
        .find(|(_, n)| *n == "_postgres")
        .map(|(s, _)| *s);
    let dict_def = defs
        .iter()
        .find(|(_, n)| *n == "generate_postgres_secrets")
        .map(|(s, _)| *s);
    let mut calls = Vec::new();
    let mut module_calls = false;
    let line_of_tok = |i: usize| toks[i].line;
    for i in 0..toks.len() {
        // `self._set_generated(` / `self._set(` / `set_generated_secret(` / `set_secret(`
        let (generated, module, open) = match toks[i].name() {
            Some("self")
                if toks.get(i + 1).is_some_and(|t| t.is_op("."))
                    && toks.get(i + 3).is_some_and(|t| t.is_op("(")) =>
            {
                match toks[i + 2].name() {
                    Some("_set_generated") => (true, false, i + 3),
                    Some("_set") => (false, false, i + 3),
                    _ => continue,
                }
            }
            Some(n @ ("set_generated_secret" | "set_secret"))
                if toks.get(i + 1).is_some_and(|t| t.is_op("("))
                    && !(i > 0 && (toks[i - 1].is_op(".") || toks[i - 1].is_name("def"))) =>
            {
                (n == "set_generated_secret", true, i + 1)
            }
            _ => continue,
        };
        let close = closing(toks, open).ok_or_else(|| {
            FileError::at(toks[i].line + 1, "this call's parenthesis is never closed")
        })?;
        let args = &toks[open + 1..close];
        let (target, rest) = if module {
            match args {
                [t, c, rest @ ..] if c.is_op(",") => (t.name().unwrap_or("").to_string(), rest),
                _ => continue,
            }
        } else {
            (String::new(), args)
        };
        let (component, key, quote, key_line) = match rest {
            [c, comma, k, comma2, ..] if comma.is_op(",") && comma2.is_op(",") => {
                match (&c.tok, &k.tok) {
                    (
                        Tok::Str { content: c, .. },
                        Tok::Str {
                            content: key,
                            quote,
                        },
                    ) => (c.as_str(), key.clone(), *quote, k.line),
                    _ => continue,
                }
            }
            _ => continue,
        };
        if component != "postgres" {
            continue;
        }
        module_calls |= module;
        let Some(stmt) = src.statement_of(i) else {
            continue;
        };
        let statement = &src.statements[stmt];
        let holder = if module {
            src.enclosing(stmt)
                .first()
                .copied()
                .filter(|&d| src.def_name(d).is_some())
        } else {
            postgres_def
        };
        let in_source = if module {
            unconditional_in(stmt, holder)
        } else {
            postgres_def.is_some() && unconditional_in(stmt, postgres_def)
        };
        calls.push(SecretCall {
            key,
            line: key_line + 1,
            generated,
            first: statement.first,
            last: statement.last.max(line_of_tok(close)),
            in_postgres_method: in_source,
            quote,
            indent: statement.indent.clone(),
            target,
            value_end: 0,
            comma: false,
        });
    }

    let shape = if postgres_def.is_some() {
        Shape::Methods
    } else if dict_def.is_some() {
        Shape::DictLiteral
    } else if module_calls {
        Shape::ModuleCalls
    } else {
        Shape::Methods
    };

    let mut method = match shape {
        Shape::Methods => postgres_def.and_then(method_of),
        Shape::DictLiteral => dict_def.and_then(method_of),
        Shape::ModuleCalls => None,
    };
    if shape == Shape::ModuleCalls {
        // The place of the module calls: the function holding the first one, or
        // the module itself.
        let first = calls
            .iter()
            .find(|c| c.in_postgres_method)
            .or(calls.first());
        if let Some(first) = first {
            let stmt = src
                .statements
                .iter()
                .position(|s| s.first == first.first)
                .unwrap_or(0);
            let holder = src.enclosing(stmt).first().copied();
            method = match holder.filter(|&d| src.def_name(d).is_some()) {
                Some(d) => method_of(d),
                None => Some(Method {
                    def_line: first.first,
                    last: calls.iter().map(|c| c.last).max().unwrap_or(first.last),
                    body_indent: 0,
                    body_indent_text: String::new(),
                }),
            };
            // Only the calls in that place count as its calls.
            let holder_line = holder.map(|d| src.statements[d].first);
            for c in &mut calls {
                if !c.in_postgres_method {
                    continue;
                }
                let s = src
                    .statements
                    .iter()
                    .position(|s| s.first == c.first)
                    .unwrap_or(0);
                let h = src.enclosing(s).first().map(|&d| src.statements[d].first);
                c.in_postgres_method = h == holder_line;
            }
        }
    }
    if let (Shape::DictLiteral, Some(def)) = (shape, dict_def) {
        calls.extend(dict_items(&src, def)?);
    }

    // Copies: `X["postgres"]["K"]` read (not assigned) outside postgres' own place.
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
        if toks.get(i + 6).is_some_and(|t| {
            matches!(&t.tok, Tok::Op(o) if o == "=" || (o.len() == 2 && o.ends_with('=') && !["==", "!=", "<=", ">="].contains(&o.as_str())))
        }) {
            continue;
        }
        let Some(stmt) = src.statement_of(i) else {
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

    let functions = defs
        .iter()
        .filter_map(|&(s, n)| {
            let m = method_of(s)?;
            Some((n.to_string(), m.def_line, m.last, m.body_indent_text))
        })
        .collect();
    Ok(Generator {
        shape,
        method,
        calls,
        copies,
        functions,
        step,
    })
}

/// The smallest indentation step of the file: `\t` when its statements are
/// indented with tabs, else that many spaces (4 if none).
fn file_step(src: &Source) -> String {
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
fn dict_items(src: &Source, def: usize) -> FileResult<Vec<SecretCall>> {
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

/// The leading white space of a line.
fn indent_text(line: &str) -> &str {
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
    verify(&generator, &result, key, true)?;
    Ok(result)
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
    let width = |s: &str| -> usize {
        s.chars()
            .fold(0, |w, c| if c == '\t' { (w / 8 + 1) * 8 } else { w + 1 })
    };
    let single = if generator.shape == Shape::ModuleCalls {
        render(GENERATOR_MODULE_CALL, &vars)
    } else {
        render(GENERATOR_LINE, &vars)
    };
    let single_len = width(&indent) + single.trim_end().len();
    let joined_len = |c: &SecretCall| -> usize {
        let joined: String = lines[c.first..=c.last.min(lines.len() - 1)]
            .iter()
            .map(|l| l.trim())
            .collect::<Vec<_>>()
            .join(" ");
        width(&c.indent)
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
    let wrap = generator.shape == Shape::Methods
        && match wrapped.iter().min() {
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
    verify(&generator, &result, key, false)?;
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

/// Splits call arguments at their top-level commas.
fn split_arguments(args: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start, mut quote) = (0i32, 0, None);
    for (i, c) in args.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '(' | '[' | '{') => depth += 1,
            (None, ')' | ']' | '}') => depth -= 1,
            (None, ',') if depth == 0 => {
                out.push(&args[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&args[start..]);
    out
}

/// The 1-based line where the generator already sets the component `app`'s secret
/// `app_key` (`_set("app", "key", ...)`, `_set_generated(...)` or
/// `self.secrets["app"]["key"] = ...`, wrapped or not), outside comments.
pub fn sets_component_key(text: &str, app: &str, app_key: &str) -> Option<usize> {
    // The code without whitespace or comments, each character's line kept.
    let mut compact = String::new();
    let mut line_of = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let code = line.split('#').next().unwrap_or("");
        for c in code.chars().filter(|c| !c.is_whitespace()) {
            compact.push(c);
            line_of.push(number + 1);
        }
    }
    ['"', '\'']
        .into_iter()
        .flat_map(|q| {
            [
                format!("._set({q}{app}{q},{q}{app_key}{q},"),
                format!("._set_generated({q}{app}{q},{q}{app_key}{q},"),
                format!(".secrets[{q}{app}{q}][{q}{app_key}{q}]="),
            ]
        })
        .filter_map(|pattern| compact.find(&pattern))
        .min()
        .map(|at| line_of[at])
}

/// Whether the generator has a `def _<app>(self)` method for the component.
pub fn has_component(text: &str, app: &str) -> bool {
    let name = format!("_{}", app.replace('-', "_"));
    parse(text).is_ok_and(|g| g.functions.iter().any(|(n, ..)| *n == name))
}

/// Adds the application's copy of a postgres password, in the style of the
/// file's copies: `self._set("<app>", "<app_key>", self.secrets["postgres"]["<key>"])`
/// in `def _<app>(self)`, creating the method (after the class's last method) and
/// its call at the end of `generate()` when absent. Only the methods shape has
/// component methods; the others are refused. An existing copy is no change.
pub fn add_copy(text: &str, app: &str, app_key: &str, key: &str) -> FileResult<String> {
    let generator = parse(text)?;
    let (Shape::Methods, Some(postgres)) = (generator.shape, generator.method.clone()) else {
        return Err(FileError::whole(
            "this generator has no `def _postgres(self)` method, so it has no component methods to copy \
             into; add the application's copy by hand",
        ));
    };
    if generator.copies_of(key).any(|c| c.component == app) {
        return Ok(text.to_string());
    }
    let lines: Vec<&str> = text.lines().collect();
    let q = generator.calls.first().map_or('"', |c| c.quote).to_string();
    let copy = render(
        GENERATOR_APP_COPY,
        &[
            ("q", q.as_str()),
            ("app_component", app),
            ("app_key", app_key),
            ("secret_key", key),
        ],
    );
    let copy = copy.trim_end();
    let method_name = format!("_{}", app.replace('-', "_"));
    // A black-formatted file (one with wrapped calls) keeps lines within 88
    // columns: wrap as black would, the arguments on one line, else one per line.
    let body_indent = generator
        .functions
        .iter()
        .find(|(n, ..)| *n == method_name)
        .map_or(postgres.body_indent_text.clone(), |f| f.3.clone());
    let wrapped_file = generator.calls.iter().any(|c| c.last > c.first);
    let width = |s: &str| -> usize {
        s.chars()
            .fold(0, |w, c| if c == '\t' { (w / 8 + 1) * 8 } else { w + 1 })
    };
    let copy_lines: Vec<String> = if wrapped_file && width(&body_indent) + copy.len() > 88 {
        let open = copy.find('(').map_or(0, |i| i + 1);
        let args = &copy[open..copy.len() - 1];
        let inner = format!("{body_indent}{}", generator.step);
        let parts: Vec<&str> = split_arguments(args);
        let mut out = vec![copy[..open].to_string()];
        if width(&inner) + args.len() <= 88 {
            out.push(format!("{}{args}", generator.step));
        } else {
            out.extend(
                parts
                    .iter()
                    .map(|p| format!("{}{},", generator.step, p.trim())),
            );
        }
        out.push(")".to_string());
        out
    } else {
        vec![copy.to_string()]
    };
    let copy_at = |indent: &str| -> Vec<String> {
        copy_lines.iter().map(|l| format!("{indent}{l}")).collect()
    };
    let mut doc = TextLines::new(text);
    if let Some((_, _, last, body_indent)) =
        generator.functions.iter().find(|(n, ..)| *n == method_name)
    {
        doc.insert(last + 1, copy_at(body_indent));
    } else {
        let def_indent = indent_text(lines[postgres.def_line]).to_string();
        let last_method = generator
            .functions
            .iter()
            .filter(|(_, def, ..)| indent_text(lines[*def]) == def_indent)
            .map(|(_, _, last, _)| *last)
            .max()
            .unwrap_or(postgres.last);
        // The call first: it is above the new method, so the lines below stay put.
        let generate = generator
            .functions
            .iter()
            .find(|(n, def, ..)| n == "generate" && indent_text(lines[*def]) == def_indent);
        let mut inserts = vec![(
            last_method + 1,
            [
                String::new(),
                format!("{def_indent}def {method_name}(self):"),
            ]
            .into_iter()
            .chain(copy_at(&postgres.body_indent_text))
            .collect(),
        )];
        if let Some((_, _, generate_last, generate_indent)) = generate {
            inserts.push((
                generate_last + 1,
                vec![format!("{generate_indent}self.{method_name}()")],
            ));
        }
        inserts.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
        for (at, new_lines) in inserts {
            doc.insert(at, new_lines);
        }
    }
    let result = doc.render();
    let after = parse(&result)
        .map_err(|_| FileError::unverified("the edited generator no longer parses"))?;
    let copied = after
        .copies_of(key)
        .any(|c| c.component == app && c.function == method_name);
    let calls = |g: &Generator| {
        g.calls
            .iter()
            .map(|c| (c.key.clone(), c.generated, c.in_postgres_method))
            .collect::<Vec<_>>()
    };
    if !copied || calls(&after) != calls(&generator) {
        return Err(FileError::unverified(
            "the edited generator does not copy the key in the application's method",
        ));
    }
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
    if added != new.is_some_and(|c| c.generated && c.in_postgres_method) {
        return fail(if added {
            "does not generate the new key where Python always runs it"
        } else {
            "still sets the key"
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
