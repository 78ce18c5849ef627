//! An application's copy of a postgres password in the generator
//! (`self._set("<app>", "<app_key>", self.secrets["postgres"]["<key>"])`), and what
//! the generator already sets for a component.

use super::edit::indent_text;
use super::{parse, Generator, Shape};
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
