//! One builder per command: turns the validated options of a command into its typed
//! flags (`AddDb`, `Runbook`, ...), refusing combinations the declaration cannot say.

use std::path::PathBuf;

use anyhow::Result;

use super::help::{one_of, suggestion};
use super::parse::{positional, Given};
use super::spec::{Spec, LOCAL_DB_ACTIONS};
use super::*;
use crate::error::bad_input;
use crate::files::chart::Bump;

/// Turns the validated options of one command into its typed flags.
pub(super) fn build(spec: &Spec, rest: &[String], given: &Given) -> Result<Command> {
    let name = spec.name;
    Ok(match name {
        "add-db" => Command::AddDb(add_db(rest, given)?),
        "remove-db" => Command::RemoveDb(RemoveDb {
            name: positional(name, rest, "a database NAME", 1)?.remove(0),
            envs: given.values("env"),
            dry_run: given.has("dry-run"),
        }),
        "move-db" => Command::MoveDb(move_db(rest, given)?),
        "check" => Command::Check(check(rest, given)?),
        "list" => {
            positional(name, rest, "", 0)?;
            Command::List(List {
                format: format(given),
                envs: given.values("env"),
            })
        }
        "runbook" => Command::Runbook(runbook(rest, given)?),
        "local-db" => Command::LocalDb(local_db(rest, given)?),
        "init" => {
            positional(name, rest, "", 0)?;
            if !given.has("phalanx") {
                return Err(bad_input("`init` needs --phalanx DIR"));
            }
            Command::Init(Init {
                vault_addr: given.value("vault-addr"),
            })
        }
        "bench" => Command::Bench(bench(rest, given)?),
        "completion" => Command::Print(completion(rest)?),
        _ => unreachable!("every declared command is built above"),
    })
}

/// `--format`: text unless json or github is given.
fn format(given: &Given) -> Format {
    match given.value("format").as_deref() {
        Some("json") => Format::Json,
        Some("github") => Format::Github,
        _ => Format::Text,
    }
}

/// `--env` (repeatable) or `--all-envs`: exactly one of them.
fn env_choice(db: &str, given: &Given) -> Result<EnvChoice> {
    let envs = given.values("env");
    match (given.has("all-envs"), envs.is_empty()) {
        (true, false) => Err(bad_input("give either --env or --all-envs, not both")),
        (true, true) => Ok(EnvChoice::All),
        (false, true) => Err(bad_input(format!(
            "`add-db {db}` needs the environments: --env ENV (repeatable) or --all-envs"
        ))),
        (false, false) => Ok(EnvChoice::Listed(envs)),
    }
}

fn add_db(rest: &[String], given: &Given) -> Result<AddDb> {
    let db = positional("add-db", rest, "a database NAME", 1)?.remove(0);
    let envs = env_choice(&db, given)?;
    let bump = given
        .value("bump")
        .map(|b| b.parse::<Bump>().map_err(bad_input))
        .transpose()?;
    Ok(AddDb {
        name: db,
        envs,
        user: given.value("user"),
        database: given.value("database"),
        bump,
        secret: secret_choice(given.value("secret").as_deref())?,
        app: given.value("app").map(|a| app_copy(&a)).transpose()?,
        dry_run: given.has("dry-run"),
        format: format(given),
        no_runbook: given.has("no-runbook"),
    })
}

fn move_db(rest: &[String], given: &Given) -> Result<MoveDb> {
    let db = positional("move-db", rest, "a database NAME", 1)?.remove(0);
    let (Some(env), Some(to)) = (given.value("env"), given.value("to")) else {
        return Err(bad_input(format!(
            "`move-db {db}` needs the environment and the new server: --env ENV --to URL"
        )));
    };
    Ok(MoveDb {
        name: db,
        env,
        to,
        allow_manual: given.has("allow-manual"),
        dry_run: given.has("dry-run"),
    })
}

fn check(rest: &[String], given: &Given) -> Result<Check> {
    positional("check", rest, "", 0)?;
    if given.has("new-only") && given.has("baseline") {
        return Err(bad_input("give either --new-only or --baseline, not both"));
    }
    Ok(Check {
        format: format(given),
        base: given.value("base"),
        new_only: given.has("new-only"),
        baseline: given.value("baseline").map(PathBuf::from),
    })
}

/// `--rotate`, `--remove` and `--move-to` exclude each other; none: the add runbook.
fn runbook_mode(given: &Given) -> Result<RunbookMode> {
    let mode = match (given.has("rotate"), given.has("remove")) {
        (true, true) => return Err(bad_input("give either --rotate or --remove, not both")),
        (true, false) => RunbookMode::Rotate,
        (false, true) => RunbookMode::Remove,
        (false, false) => RunbookMode::Add,
    };
    match (mode, given.has("move-to")) {
        (RunbookMode::Add, true) => Ok(RunbookMode::Move),
        (_, true) => Err(bad_input(
            "--move-to plans a move: give it without --rotate or --remove",
        )),
        (mode, false) => Ok(mode),
    }
}

fn runbook(rest: &[String], given: &Given) -> Result<Runbook> {
    let db = positional("runbook", rest, "a database NAME", 1)?.remove(0);
    if given.has("script") && given.value("format").as_deref() == Some("json") {
        return Err(bad_input("give either --script or --format json, not both"));
    }
    let mode = runbook_mode(given)?;
    Ok(Runbook {
        name: db,
        envs: given.values("env"),
        mode,
        render: if given.has("script") {
            RenderMode::Script
        } else {
            RenderMode::Text
        },
        deployed: given.value("deployed"),
        format: format(given),
        move_to: given.value("move-to"),
    })
}

/// `--port N`: 0 asks for a free port; absent, the last one (else a free one).
fn port_choice(given: &Given) -> Result<PortChoice> {
    match given.number("port") {
        Ok(None) => Ok(PortChoice::Remembered),
        Ok(Some(0)) => Ok(PortChoice::Free),
        Ok(Some(p)) if p <= u64::from(u16::MAX) => Ok(PortChoice::Fixed(p as u16)),
        _ => Err(bad_input(format!(
            "invalid --port `{}`: a number from 1 to 65535, or 0 for a free one",
            given.value("port").unwrap_or_default()
        ))),
    }
}

fn local_db(rest: &[String], given: &Given) -> Result<LocalDb> {
    let word = positional("local-db", rest, "an action: up, down or status", 1)?.remove(0);
    let action = match word.as_str() {
        "up" => LocalDbAction::Up,
        "down" => LocalDbAction::Down,
        "status" => LocalDbAction::Status,
        other => {
            let hint = suggestion(other, LOCAL_DB_ACTIONS.iter().map(|a| a.name), "");
            return Err(bad_input(format!(
                "unknown local-db action `{other}`{hint}: use up, down or status"
            )));
        }
    };
    let envs = given.values("env");
    if envs.len() > 1 {
        return Err(bad_input(
            "local-db runs one environment at a time: give one --env",
        ));
    }
    let port = port_choice(given)?;
    Ok(LocalDb {
        action,
        env: envs.into_iter().next(),
        port,
        show_passwords: given.has("show-passwords"),
        skip_missing: given.has("skip-missing"),
    })
}

fn bench(rest: &[String], given: &Given) -> Result<Bench> {
    positional("bench", rest, "", 0)?;
    let runs = match given.number("runs") {
        Ok(None) => 21,
        Ok(Some(r)) if r > 0 => r as usize,
        _ => {
            return Err(bad_input(format!(
                "invalid --runs `{}`: a number from 1 up",
                given.value("runs").unwrap_or_default()
            )))
        }
    };
    let move_copy_mb = match given.number("move-copy") {
        Ok(None) => None,
        Ok(Some(mb)) if (1..=100_000).contains(&mb) => Some(mb),
        _ => {
            return Err(bad_input(format!(
                "invalid --move-copy `{}`: a size in MB from 1 to 100000",
                given.value("move-copy").unwrap_or_default()
            )))
        }
    };
    Ok(Bench { runs, move_copy_mb })
}

/// `completion SHELL`: the script itself, printed.
fn completion(rest: &[String]) -> Result<String> {
    let shell = positional("completion", rest, "a SHELL: bash, zsh or fish", 1)?.remove(0);
    crate::completion::script(&shell).ok_or_else(|| {
        let hint = suggestion(&shell, crate::completion::SHELLS.iter().copied(), "");
        bad_input(format!(
            "unknown shell `{shell}`{hint}: use {}",
            one_of(crate::completion::SHELLS)
        ))
    })
}

fn secret_choice(value: Option<&str>) -> Result<SecretChoice> {
    Ok(match value {
        None | Some("generate") => SecretChoice::Generate,
        Some("static") => SecretChoice::Static,
        Some(s) => match s.strip_prefix("copy:").and_then(|r| r.split_once(':')) {
            Some((app, key)) if !app.is_empty() && !key.is_empty() && !key.contains(':') => {
                SecretChoice::Copy {
                    application: app.to_string(),
                    key: key.to_string(),
                }
            }
            _ if s.starts_with("copy:") || s == "copy" => {
                return Err(bad_input(format!(
                    "invalid --secret `{s}`: copy needs APP:KEY (the application and its key: copy:APP:KEY)"
                )))
            }
            _ => {
                let hint = suggestion(s, ["generate", "static", "copy"].into_iter(), "");
                return Err(bad_input(format!(
                    "unknown --secret `{s}`{hint}: use generate, static or copy:APP:KEY"
                )));
            }
        },
    })
}

fn app_copy(value: &str) -> Result<AppCopy> {
    let (application, key) = match value.split_once(':') {
        Some((app, key)) => (app, Some(key)),
        None => (value, None),
    };
    let word = |w: &str| {
        !w.is_empty()
            && w.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    if !word(application) || key.is_some_and(|k| !word(k)) {
        return Err(bad_input(format!(
            "invalid --app `{value}`: use APP or APP:KEY (letters, digits, `-`, `_`)"
        )));
    }
    Ok(AppCopy {
        application: application.to_string(),
        key: key.map(str::to_string),
    })
}
