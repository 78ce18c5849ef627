//! The help texts derived from the declaration: usage lines, each command's `--help`,
//! the main help, `help COMMAND`, `--version`, and the "did you mean" suggestions.

use std::fmt::Write as _;

use anyhow::Result;

use super::spec::{
    find_action, find_command, Kind, Opt, Spec, CHECK, COMMANDS, GLOBAL, HIDDEN, LOCAL_DB,
    LOCAL_DB_ACTIONS,
};
use crate::error::bad_input;

/// How the user invoked us: `cargo xtask` through the alias, else the binary's name.
pub fn program_name() -> String {
    let arg0 = std::env::args_os().next().unwrap_or_default();
    let stem = std::path::Path::new(&arg0)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    match stem.as_str() {
        "" | "xtask" => "cargo xtask".to_string(),
        other => other.to_string(),
    }
}

pub fn version_text() -> String {
    format!("{} {}\n", program_name(), env!("CARGO_PKG_VERSION"))
}

fn option_lines(out: &mut String, options: &[Opt]) {
    for o in options {
        let mut left = match o.short {
            Some(c) => format!("-{c}, --{}", o.long),
            None => format!("    --{}", o.long),
        };
        match o.kind {
            Kind::Switch => {}
            Kind::Value(v) => write!(left, " {v}").unwrap(),
            Kind::Choice(words) => write!(left, " {}", words.join("|")).unwrap(),
            Kind::Number => left.push_str(" N"),
        }
        if left.len() > 24 {
            writeln!(out, "    {left}\n    {:24} {}", "", o.help).unwrap();
        } else {
            writeln!(out, "    {left:24} {}", o.help).unwrap();
        }
    }
}

fn usage_line(spec: &Spec, prefix: &str) -> String {
    let mut usage = format!("{} {prefix}{}", program_name(), spec.name);
    for (arg, _) in spec.args {
        write!(usage, " {arg}").unwrap();
    }
    if !spec.options.is_empty() {
        usage.push_str(" [OPTIONS]");
    }
    usage
}

/// The `--help` text of a command (or of a local-db action, with `prefix` "local-db ").
pub fn command_help(spec: &Spec, prefix: &str) -> String {
    let program = program_name();
    let mut out = format!("{program} {prefix}{}: {}\n\n", spec.name, spec.summary);
    writeln!(out, "USAGE:\n    {}\n", usage_line(spec, prefix)).unwrap();
    if !spec.description.is_empty() {
        writeln!(out, "{}\n", spec.description).unwrap();
    }
    if !spec.args.is_empty() {
        out.push_str("ARGUMENTS:\n");
        for (arg, help) in spec.args {
            writeln!(out, "    {arg:24} {help}").unwrap();
        }
        out.push('\n');
    }
    if spec.name == LOCAL_DB.name {
        out.push_str("ACTIONS:\n");
        for action in LOCAL_DB_ACTIONS {
            writeln!(out, "    {:24} {}", action.name, action.summary).unwrap();
        }
        out.push('\n');
    }
    if spec.name == CHECK.name {
        out.push_str("RULES:\n");
        for rule in crate::check::Rule::all() {
            let (id, severity) = (rule.id(), rule.severity().as_str());
            writeln!(out, "    {id:26} {severity:8} {}", rule.summary()).unwrap();
        }
        out.push('\n');
    }
    if !spec.options.is_empty() {
        out.push_str("OPTIONS:\n");
        option_lines(&mut out, spec.options);
        out.push('\n');
    }
    out.push_str("GLOBAL OPTIONS (before or after the command):\n");
    option_lines(&mut out, GLOBAL);
    out
}

/// The main help: every command and the global options.
pub fn main_help() -> String {
    let program = program_name();
    let mut out = format!(
        "{program}: add, remove and check the databases of a Phalanx-style internal PostgreSQL\n\n\
         USAGE:\n    {program} [GLOBAL OPTIONS] <COMMAND> [OPTIONS]\n\nCOMMANDS:\n"
    );
    for spec in COMMANDS.iter().filter(|s| !HIDDEN.contains(&s.name)) {
        writeln!(out, "    {:12} {}", spec.name, spec.summary).unwrap();
    }
    out.push_str("\nGLOBAL OPTIONS (before or after the command):\n");
    option_lines(&mut out, GLOBAL);
    out.push_str(
        "\nEXIT STATUS:\n    0 success, also when nothing needed changing; 1 `check` found errors or the\n    \
         repositories refuse the operation; 2 bad usage or bad input.\n",
    );
    out
}

/// Edit distance between two short words (for suggestions).
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// " (did you mean `x`?)" when one candidate is close to `word`.
pub(crate) fn suggestion<'a>(
    word: &str,
    candidates: impl Iterator<Item = &'a str>,
    prefix: &str,
) -> String {
    let best = candidates
        .map(|c| (distance(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3) || c.starts_with(word) && word.len() >= 3)
        .min_by_key(|(d, _)| *d);
    match best {
        Some((_, c)) => format!(" (did you mean `{prefix}{c}`?)"),
        None => String::new(),
    }
}

/// `a, b or c`.
pub(super) fn one_of(words: &[&str]) -> String {
    match words.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// " (did you mean ...?)" for an unknown command word: a global option written
/// as a command (`version`) points at the option.
pub(super) fn command_hint(word: &str) -> String {
    match GLOBAL
        .iter()
        .find(|o| o.long == word && o.kind == Kind::Switch)
    {
        Some(o) => format!(" (did you mean `--{}`?)", o.long),
        None => suggestion(word, COMMANDS.iter().map(|s| s.name), ""),
    }
}

/// `help`, `help COMMAND`, `help local-db ACTION`.
pub(super) fn help_for(words: &[String]) -> Result<String> {
    let Some(first) = words.first() else {
        return Ok(main_help());
    };
    let spec = find_command(first).ok_or_else(|| {
        let hint = suggestion(first, COMMANDS.iter().map(|s| s.name), "");
        bad_input(format!(
            "unknown command `{first}`{hint}; see `{} --help`",
            program_name()
        ))
    })?;
    if spec.name == "local-db" {
        if let Some(action) = words.get(1).and_then(|a| find_action(a)) {
            return Ok(command_help(action, "local-db "));
        }
    }
    if spec.name == "help" {
        return Ok(main_help());
    }
    Ok(command_help(spec, ""))
}
