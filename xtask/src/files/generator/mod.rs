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
//!
//! Here: the model and [`parse`]; `read` reads each shape from the tokens, `edit` adds
//! and removes a key in each shape, `copy_edit` writes an application's copy.

mod copy_edit;
mod edit;
mod read;

use super::python::tokenize;
use super::FileResult;

pub use copy_edit::{add_copy, has_component, sets_component_key};
pub use edit::{add_line, remove_line};

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

/// The columns a line's text takes, tabs to the next multiple of 8 (as black counts).
fn display_width(s: &str) -> usize {
    s.chars()
        .fold(0, |w, c| if c == '\t' { (w / 8 + 1) * 8 } else { w + 1 })
}

/// Parses the generator.
pub fn parse(text: &str) -> FileResult<Generator> {
    let src = tokenize(text);
    let def_named = |name: &str| (0..src.statements.len()).find(|&s| src.def_name(s) == Some(name));
    let postgres_def = def_named("_postgres");
    let dict_def = def_named("generate_postgres_secrets");
    let (mut calls, module_calls) = read::secret_calls(&src, postgres_def)?;
    let shape = match (postgres_def, dict_def) {
        (Some(_), _) => Shape::Methods,
        (None, Some(_)) => Shape::DictLiteral,
        (None, None) if module_calls => Shape::ModuleCalls,
        (None, None) => Shape::Methods,
    };
    let method = match shape {
        Shape::Methods => postgres_def.map(|d| read::method_of(&src, d)),
        Shape::DictLiteral => dict_def.map(|d| read::method_of(&src, d)),
        Shape::ModuleCalls => read::module_place(&src, &mut calls),
    };
    if let (Shape::DictLiteral, Some(def)) = (shape, dict_def) {
        calls.extend(read::dict_items(&src, def)?);
    }
    let functions = (0..src.statements.len())
        .filter_map(|s| {
            let name = src.def_name(s)?;
            let m = read::method_of(&src, s);
            Some((name.to_string(), m.def_line, m.last, m.body_indent_text))
        })
        .collect();
    Ok(Generator {
        shape,
        method,
        calls,
        copies: read::copies(&src, text),
        functions,
        step: read::file_step(&src),
    })
}

#[cfg(test)]
mod tests;
