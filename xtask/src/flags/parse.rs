//! From words to typed flags: lexopt splits the words (options may stand before or
//! after the command word, `--opt value` and `--opt=value` both work), each given
//! option is checked against its command's declaration (`Given`: an option given twice
//! is refused unless it is repeatable, each command accepts only its own options and
//! the global ones), and `parse` hands the command to its builder in `build`.

use std::path::PathBuf;

use anyhow::Result;

use super::build::build;
use super::help::{
    command_hint, help_for, main_help, one_of, program_name, suggestion, version_text,
};
use super::spec::{all_options, find_action, find_command, lookup_long, Kind, Opt, Spec, GLOBAL};
use super::{Command, Flags};
use crate::error::bad_input;

/// What lexopt found: words and options, before any command knows them.
struct Raw {
    words: Vec<String>,
    options: Vec<(&'static Opt, Option<String>)>,
}

fn split_words(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Raw> {
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_iter(std::iter::once("xtask".into()).chain(args));
    let mut raw = Raw {
        words: Vec::new(),
        options: Vec::new(),
    };
    // Where to look: the command's own help once its word has been seen.
    let see = |words: &[String]| match words.first().and_then(|w| find_command(w)) {
        Some(spec) => format!("see `{} {} --help`", program_name(), spec.name),
        None => format!("see `{} --help`", program_name()),
    };
    let usage = |e: lexopt::Error, words: &[String]| {
        let problem = match e {
            lexopt::Error::MissingValue {
                option: Some(option),
            } => format!("`{option}` needs a value"),
            other => other.to_string(),
        };
        bad_input(format!("{problem}; {}", see(words)))
    };
    while let Some(arg) = parser.next().map_err(|e| usage(e, &raw.words))? {
        let found = match arg {
            Short(c) => GLOBAL
                .iter()
                .find(|o| o.short == Some(c))
                .ok_or_else(|| bad_input(format!("unknown option `-{c}`; {}", see(&raw.words))))?,
            Long(name) => lookup_long(name).ok_or_else(|| {
                let command = raw.words.first().and_then(|w| find_command(w));
                let hint = match command {
                    Some(spec) => suggestion(
                        name,
                        spec.options.iter().chain(GLOBAL).map(|o| o.long),
                        "--",
                    ),
                    None => suggestion(name, all_options().map(|o| o.long), "--"),
                };
                bad_input(format!(
                    "unknown option `--{name}`{hint}; {}",
                    see(&raw.words)
                ))
            })?,
            Value(v) => {
                let word = v.string().map_err(|e| usage(e, &raw.words))?;
                raw.words.push(word);
                continue;
            }
        };
        let value = match found.kind {
            Kind::Switch => None,
            _ => Some(
                parser
                    .value()
                    .and_then(|v| v.string())
                    .map_err(|e| usage(e, &raw.words))?,
            ),
        };
        raw.options.push((found, value));
    }
    Ok(raw)
}

/// The options of one parsed command line, validated against its declaration.
pub(super) struct Given {
    options: Vec<(&'static Opt, Option<String>)>,
}

impl Given {
    pub(super) fn value(&self, long: &str) -> Option<String> {
        self.options
            .iter()
            .find(|(o, _)| o.long == long)
            .and_then(|(_, v)| v.clone())
    }

    pub(super) fn has(&self, long: &str) -> bool {
        self.options.iter().any(|(o, _)| o.long == long)
    }

    /// Every value of a repeatable option, `a,b` lists split.
    pub(super) fn values(&self, long: &str) -> Vec<String> {
        self.options
            .iter()
            .filter(|(o, _)| o.long == long)
            .filter_map(|(_, v)| v.as_deref())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
            .collect()
    }

    pub(super) fn number(&self, long: &str) -> Result<Option<u64>> {
        self.value(long)
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    bad_input(format!("invalid --{long} `{v}`: expected a whole number"))
                })
            })
            .transpose()
    }
}

/// Checks each given option against the command's declaration.
fn validate(
    spec: &Spec,
    command_word: &str,
    options: Vec<(&'static Opt, Option<String>)>,
) -> Result<Given> {
    let program = program_name();
    let mut seen: Vec<&str> = Vec::new();
    for (o, value) in &options {
        let is_global = GLOBAL.iter().any(|g| g.long == o.long);
        let declared = spec.options.iter().find(|d| d.long == o.long);
        if !is_global && declared.is_none() {
            let hint = suggestion(o.long, spec.options.iter().map(|d| d.long), "--");
            return Err(bad_input(format!(
                "`--{}` is not an option of `{command_word}`{hint}; see `{program} {command_word} --help`",
                o.long
            )));
        }
        let repeatable = declared.map_or(o.repeatable, |d| d.repeatable);
        if !repeatable && seen.contains(&o.long) && o.kind != Kind::Switch {
            return Err(bad_input(format!(
                "`--{}` is given more than once; give it once",
                o.long
            )));
        }
        seen.push(o.long);
        let kind = declared.map_or(o.kind, |d| d.kind);
        if let (Kind::Choice(words), Some(v)) = (kind, value) {
            if !words.contains(&v.as_str()) {
                return Err(bad_input(format!(
                    "unknown {} `{v}` for `{command_word}`: use {}",
                    o.long,
                    one_of(words)
                )));
            }
        }
    }
    Ok(Given { options })
}
/// The positional words after the command word, exactly `count` of them.
pub(super) fn positional(
    spec_name: &str,
    rest: &[String],
    what: &str,
    count: usize,
) -> Result<Vec<String>> {
    if rest.len() != count {
        let problem = if rest.len() < count {
            format!("`{spec_name}` needs {what}")
        } else {
            format!("unexpected argument `{}`", rest[count])
        };
        return Err(bad_input(format!(
            "{problem}; see `{} {spec_name} --help`",
            program_name()
        )));
    }
    Ok(rest.to_vec())
}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Flags> {
    let raw = split_words(args)?;
    let global = Given {
        options: raw
            .options
            .iter()
            .filter(|(o, _)| GLOBAL.iter().any(|g| g.long == o.long))
            .cloned()
            .collect(),
    };
    for long in ["phalanx", "charts"] {
        if global
            .options
            .iter()
            .filter(|(o, _)| o.long == long)
            .count()
            > 1
        {
            return Err(bad_input(format!(
                "`--{long}` is given more than once; give it once"
            )));
        }
    }
    let phalanx = global.value("phalanx").map(PathBuf::from);
    let charts = global.value("charts").map(PathBuf::from);
    let quiet = global.has("quiet");
    let flags = |command| Flags {
        phalanx: phalanx.clone(),
        charts: charts.clone(),
        quiet,
        command,
    };
    let word = raw.words.first().cloned().unwrap_or_default();
    if global.has("version") {
        return Ok(flags(Command::Print(version_text())));
    }
    if word.is_empty() && global.has("help") {
        return Ok(flags(Command::Print(main_help())));
    }
    if word.is_empty() {
        return Err(bad_input(format!(
            "no command given; `{} --help` describes them\n\n{}",
            program_name(),
            main_help()
        )));
    }
    let spec = find_command(&word).ok_or_else(|| {
        let hint = command_hint(&word);
        bad_input(format!(
            "unknown command `{word}`{hint}; see `{} --help`",
            program_name()
        ))
    })?;
    let rest = &raw.words[1..];
    if spec.name == "help" {
        return Ok(flags(Command::Print(help_for(rest)?)));
    }
    if global.has("help") {
        return Ok(flags(Command::Print(help_for(&raw.words)?)));
    }
    // A local-db action declares its own options.
    let (checked_spec, label) = match (spec.name, rest.first()) {
        ("local-db", Some(action)) => match find_action(action) {
            Some(a) => (a, format!("local-db {action}")),
            None => (spec, word.clone()),
        },
        _ => (spec, word.clone()),
    };
    let given = validate(checked_spec, &label, raw.options)?;
    let command = build(spec, rest, &given)?;
    Ok(flags(command))
}
