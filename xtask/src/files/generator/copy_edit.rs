//! An application's copy of a postgres password in the generator
//! (`self._set("<app>", "<app_key>", self.secrets["postgres"]["<key>"])`), and what
//! the generator already sets for a component.

use super::edit::indent_text;
use super::{display_width, parse, Generator, Shape};
use crate::files::{FileError, FileResult, TextLines};
use crate::render::{render, GENERATOR_APP_COPY};

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
    let method_name = format!("_{}", app.replace('-', "_"));
    let existing = generator.functions.iter().find(|(n, ..)| *n == method_name);
    let body_indent = existing.map_or(postgres.body_indent_text.as_str(), |f| f.3.as_str());
    let copy_lines = wrap_like_black(&generator, copy.trim_end(), body_indent);
    let copy_at = |indent: &str| -> Vec<String> {
        copy_lines.iter().map(|l| format!("{indent}{l}")).collect()
    };
    let mut doc = TextLines::new(text);
    match existing {
        Some((_, _, last, body_indent)) => doc.insert(last + 1, copy_at(body_indent)),
        None => {
            let body = copy_at(&postgres.body_indent_text);
            insert_method(&mut doc, text, &generator, &method_name, body);
        }
    }
    let result = doc.render();
    verify_copy(&generator, &result, app, &method_name, key)?;
    Ok(result)
}

/// The copy's lines: one, or, in a black-formatted file (one with wrapped calls),
/// wrapped as black would to keep within 88 columns: the arguments on one line,
/// else one per line.
fn wrap_like_black(generator: &Generator, copy: &str, body_indent: &str) -> Vec<String> {
    let wrapped_file = generator.calls.iter().any(|c| c.last > c.first);
    if !wrapped_file || display_width(body_indent) + copy.len() <= 88 {
        return vec![copy.to_string()];
    }
    let open = copy.find('(').map_or(0, |i| i + 1);
    let args = &copy[open..copy.len() - 1];
    let inner = format!("{body_indent}{}", generator.step);
    let mut out = vec![copy[..open].to_string()];
    if display_width(&inner) + args.len() <= 88 {
        out.push(format!("{}{args}", generator.step));
    } else {
        out.extend(
            split_arguments(args)
                .iter()
                .map(|p| format!("{}{},", generator.step, p.trim())),
        );
    }
    out.push(")".to_string());
    out
}

/// Inserts a new component method `def NAME(self):` holding `body` after the class's
/// last method, and its call at the end of `generate()` when there is one.
fn insert_method(
    doc: &mut TextLines,
    text: &str,
    generator: &Generator,
    method_name: &str,
    body: Vec<String>,
) {
    let lines: Vec<&str> = text.lines().collect();
    let Some(postgres) = &generator.method else {
        return;
    };
    let def_indent = indent_text(lines[postgres.def_line]).to_string();
    let of_class = |def: usize| indent_text(lines[def]) == def_indent;
    let last_method = generator
        .functions
        .iter()
        .filter(|(_, def, ..)| of_class(*def))
        .map(|(_, _, last, _)| *last)
        .max()
        .unwrap_or(postgres.last);
    let method = [
        String::new(),
        format!("{def_indent}def {method_name}(self):"),
    ]
    .into_iter()
    .chain(body)
    .collect();
    let mut inserts = vec![(last_method + 1, method)];
    let generate = generator
        .functions
        .iter()
        .find(|(n, def, ..)| n == "generate" && of_class(*def));
    if let Some((_, _, generate_last, generate_indent)) = generate {
        inserts.push((
            generate_last + 1,
            vec![format!("{generate_indent}self.{method_name}()")],
        ));
    }
    // The lower insertion first: the lines above it stay put.
    inserts.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
    for (at, new_lines) in inserts {
        doc.insert(at, new_lines);
    }
}

/// The edited text still parses, copies `key` in the application's method, and sets
/// every postgres key as before.
fn verify_copy(
    before: &Generator,
    after: &str,
    app: &str,
    method_name: &str,
    key: &str,
) -> FileResult<()> {
    let after =
        parse(after).map_err(|_| FileError::unverified("the edited generator no longer parses"))?;
    let copied = after
        .copies_of(key)
        .any(|c| c.component == app && c.function == method_name);
    let calls = |g: &Generator| {
        g.calls
            .iter()
            .map(|c| (c.key.clone(), c.generated, c.in_postgres_method))
            .collect::<Vec<_>>()
    };
    if !copied || calls(&after) != calls(before) {
        return Err(FileError::unverified(
            "the edited generator does not copy the key in the application's method",
        ));
    }
    Ok(())
}
