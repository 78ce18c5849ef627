//! The command line: `cargo xtask [--phalanx DIR] [--charts DIR] COMMAND ...`.
//!
//! Parsed with lexopt in one pass: options may stand before or after the command
//! word, `--opt value` and `--opt=value` both work, and each command accepts only
//! its own options. The help texts below are what `--help` prints.

use std::path::PathBuf;

use anyhow::Result;

use crate::error::bad_input;
use crate::files::chart::Bump;

pub const MAIN_HELP: &str = "\
cargo xtask: add, remove and check the databases of a Phalanx-style internal PostgreSQL

USAGE:
    cargo xtask [--phalanx DIR] [--charts DIR] <COMMAND> [OPTIONS]

COMMANDS:
    add-db      Add a database: template block, chart versions, secret, values entries
    remove-db   Remove a database, or only some environments' values entries
    check       Prove that the deployment's files agree with each other
    list        Show every database and the environments that have it
    runbook     Print the Vault, kubectl and Argo CD steps for a database
    local-db    Run a local PostgreSQL with an environment's roles and databases
    init        Write xtask.toml: where the repositories are
    bench       Measure `check` on the sample and on generated trees

GLOBAL OPTIONS (before or after the command):
    --phalanx DIR   The deployment repository; replaces xtask.toml's `phalanx` and `charts`
    --charts DIR    The charts repository (split layout only)
    -h, --help      Print help (also `cargo xtask COMMAND --help`)

EXIT STATUS:
    0 success, also when nothing needed changing; 1 `check` found errors or the
    repositories refuse the operation; 2 bad usage or bad input.
";

pub const ADD_DB_HELP: &str = "\
cargo xtask add-db: add a database to the deployment, all edits at once

USAGE:
    cargo xtask add-db NAME (--env ENV ... | --all-envs) [OPTIONS]

Adds the template block, bumps the chart and moves the umbrella dependency (split
layout), adds the password to the secret source and the values entry of each chosen
environment. Every edit is verified before any file is written; all files are
written or none. Running it again changes nothing. Prints a diff of each file, then
the runbook of the remaining steps.

ARGUMENTS:
    NAME                 Database name: lower-case letters, digits and `_`

OPTIONS:
    --env ENV            An environment to add the database to (repeatable, or ENV,ENV)
    --all-envs           Every environment that has a values file
    --user U             The role (default: NAME)
    --database D         The database (default: NAME)
    --bump LEVEL         patch, minor or major (default: patch; other layouts bump only
                         when given)
    --secret SOURCE      generate (default), static (set by hand) or copy:APP:KEY
                         (static and copy: secrets.yaml only)
    --dry-run            Print the diff and runbook, write nothing
    --phalanx DIR, --charts DIR
";

pub const REMOVE_DB_HELP: &str = "\
cargo xtask remove-db: remove a database, the inverse of add-db

USAGE:
    cargo xtask remove-db NAME [--env ENV ...] [--dry-run]

Without --env, removes the template block, the secret, every values entry and (split
layout) bumps the chart and moves the dependency. With --env, removes only those
environments' values entries. The role and database stay in the server until they
are dropped by hand: the runbook prints the SQL.

OPTIONS:
    --env ENV            Remove only this environment's entry (repeatable)
    --dry-run            Print the diff, write nothing
    --phalanx DIR, --charts DIR
";

pub const CHECK_HELP: &str = "\
cargo xtask check: prove that the deployment's files agree with each other

USAGE:
    cargo xtask check [--format text|json] [--base GIT-REV]

Exit status 0 when there is no error (warnings allowed), 1 when there is one, 2 when
the check could not run.

OPTIONS:
    --format FORMAT      text (default) or json
    --base GIT-REV       Also check that the chart version increased since this revision
                         of the charts repository when its templates changed
    --phalanx DIR, --charts DIR
";

pub const LIST_HELP: &str = "\
cargo xtask list: every database and the environments that have it

USAGE:
    cargo xtask list [--format text|json]

OPTIONS:
    --format FORMAT      text (default) or json
    --phalanx DIR, --charts DIR
";

pub const RUNBOOK_HELP: &str = "\
cargo xtask runbook: the Vault, kubectl and Argo CD steps for a database

USAGE:
    cargo xtask runbook NAME [--env ENV ...] [--rotate | --remove] [--script]

Adding (the default): the password into Vault where it is absent, the merge, then per
environment: refresh the postgres secret, sync, wait, verify. An environment whose
committed values file already has the database only gets the verification.

OPTIONS:
    --env ENV            Only this environment (repeatable; default: every environment
                         whose values file has the database)
    --rotate             A new password: Vault (overwriting), refresh, restart, verify
    --remove             Dump, then drop the database and role, then delete the Vault key
    --script             The same steps as a bash script: `bash steps.sh [--yes] PHASE`
    --phalanx DIR, --charts DIR
";

pub const LOCAL_DB_HELP: &str = "\
cargo xtask local-db: a local PostgreSQL with an environment's roles and databases

USAGE:
    cargo xtask local-db up|down|status [--env ENV] [--port N] [--show-passwords]

OPTIONS:
    --env ENV            The environment (default: xtask.toml's local_env, else the first)
    --port N             The TCP port on 127.0.0.1 (default: a free one)
    --show-passwords     Print passwords in the connection URLs
    --phalanx DIR, --charts DIR
";

pub const INIT_HELP: &str = "\
cargo xtask init: write xtask.toml, keeping its comments and other keys

USAGE:
    cargo xtask init --phalanx DIR [--charts DIR] [--vault-addr URL]

OPTIONS:
    --phalanx DIR        The deployment repository
    --charts DIR         The charts repository (split layout)
    --vault-addr URL     The Vault server (default: https://vault.lsst.codes)
";

pub const BENCH_HELP: &str = "\
cargo xtask bench: measure `check` (run with --release for real figures)

USAGE:
    cargo xtask bench [--runs N]

OPTIONS:
    --runs N             Runs per tree (default: 21); the median is printed
";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretChoice {
    Generate,
    /// Set by hand: the value lives in the environment's static secret store.
    Static,
    Copy {
        application: String,
        key: String,
    },
}

#[derive(Clone, Debug)]
pub struct AddDb {
    pub name: String,
    pub envs: Vec<String>,
    pub all_envs: bool,
    pub user: Option<String>,
    pub database: Option<String>,
    pub bump: Option<Bump>,
    pub secret: SecretChoice,
    pub dry_run: bool,
}

#[derive(Clone, Debug)]
pub struct RemoveDb {
    pub name: String,
    pub envs: Vec<String>,
    pub dry_run: bool,
}

#[derive(Clone, Debug)]
pub struct Check {
    pub format: Format,
    pub base: Option<String>,
}

#[derive(Clone, Debug)]
pub struct List {
    pub format: Format,
}

#[derive(Clone, Debug)]
pub struct Runbook {
    pub name: String,
    pub envs: Vec<String>,
    pub mode: RunbookMode,
    pub script: bool,
}

/// What a runbook is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunbookMode {
    Add,
    Rotate,
    Remove,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalDbAction {
    Up,
    Down,
    Status,
}

#[derive(Clone, Debug)]
pub struct LocalDb {
    pub action: LocalDbAction,
    pub env: Option<String>,
    pub port: Option<u16>,
    pub show_passwords: bool,
}

#[derive(Clone, Debug)]
pub struct Init {
    pub vault_addr: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Bench {
    pub runs: usize,
}

#[derive(Clone, Debug)]
pub enum Command {
    AddDb(AddDb),
    RemoveDb(RemoveDb),
    Check(Check),
    List(List),
    Runbook(Runbook),
    LocalDb(LocalDb),
    Init(Init),
    Bench(Bench),
    Help(&'static str),
}

#[derive(Clone, Debug)]
pub struct Flags {
    pub phalanx: Option<PathBuf>,
    pub charts: Option<PathBuf>,
    pub command: Command,
}

const VALUE_OPTIONS: &[&str] = &[
    "phalanx",
    "charts",
    "env",
    "user",
    "database",
    "bump",
    "secret",
    "format",
    "base",
    "port",
    "vault-addr",
    "runs",
];
const SWITCHES: &[&str] = &[
    "all-envs",
    "dry-run",
    "show-passwords",
    "help",
    "rotate",
    "remove",
    "script",
];

fn help_of(command: &str) -> &'static str {
    match command {
        "add-db" => ADD_DB_HELP,
        "remove-db" => REMOVE_DB_HELP,
        "check" => CHECK_HELP,
        "list" => LIST_HELP,
        "runbook" => RUNBOOK_HELP,
        "local-db" => LOCAL_DB_HELP,
        "init" => INIT_HELP,
        "bench" => BENCH_HELP,
        _ => MAIN_HELP,
    }
}

fn allowed(command: &str) -> &'static [&'static str] {
    match command {
        "add-db" => &[
            "env", "all-envs", "user", "database", "bump", "secret", "dry-run",
        ],
        "remove-db" => &["env", "dry-run"],
        "check" => &["format", "base"],
        "list" => &["format"],
        "runbook" => &["env", "rotate", "remove", "script"],
        "local-db" => &["env", "port", "show-passwords"],
        "init" => &["vault-addr"],
        "bench" => &["runs"],
        _ => &[],
    }
}

/// Parses the arguments after the program name.
pub fn parse(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Flags> {
    use lexopt::prelude::*;
    let mut parser = lexopt::Parser::from_iter(std::iter::once("xtask".into()).chain(args));
    let mut options: Vec<(String, Option<String>)> = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let usage = |e: lexopt::Error| bad_input(format!("{e}; see `cargo xtask --help`"));
    while let Some(arg) = parser.next().map_err(usage)? {
        match arg {
            Short('h') | Long("help") => options.push(("help".into(), None)),
            Long(name) if VALUE_OPTIONS.contains(&name) => {
                let name = name.to_string();
                let value = parser.value().map_err(usage)?.string().map_err(usage)?;
                options.push((name, Some(value)));
            }
            Long(name) if SWITCHES.contains(&name) => options.push((name.to_string(), None)),
            Long(name) => {
                return Err(bad_input(format!(
                    "unknown option `--{name}`; see `cargo xtask --help`"
                )))
            }
            Short(c) => {
                return Err(bad_input(format!(
                    "unknown option `-{c}`; see `cargo xtask --help`"
                )))
            }
            Value(v) => words.push(v.string().map_err(usage)?),
        }
    }
    let command = words.first().cloned().unwrap_or_default();
    let get = |name: &str| {
        options
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| v.clone())
    };
    let has = |name: &str| options.iter().any(|(n, _)| n == name);
    let phalanx = get("phalanx").map(PathBuf::from);
    let charts = get("charts").map(PathBuf::from);
    if has("help") || command.is_empty() {
        return Ok(Flags {
            phalanx,
            charts,
            command: Command::Help(help_of(&command)),
        });
    }
    if !matches!(
        command.as_str(),
        "add-db" | "remove-db" | "check" | "list" | "runbook" | "local-db" | "init" | "bench"
    ) {
        return Err(bad_input(format!(
            "unknown command `{command}`; see `cargo xtask --help`"
        )));
    }
    for (name, _) in &options {
        if name != "phalanx" && name != "charts" && !allowed(&command).contains(&name.as_str()) {
            return Err(bad_input(format!(
                "`--{name}` is not an option of `{command}`; see `cargo xtask {command} --help`"
            )));
        }
    }
    let envs: Vec<String> = options
        .iter()
        .filter(|(n, _)| n == "env")
        .filter_map(|(_, v)| v.as_deref())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
        .collect();
    let format = || -> Result<Format> {
        match get("format").as_deref() {
            None | Some("text") => Ok(Format::Text),
            Some("json") => Ok(Format::Json),
            Some(other) => Err(bad_input(format!(
                "unknown format `{other}`: use text or json"
            ))),
        }
    };
    let positional = |what: &str, count: usize| -> Result<Vec<String>> {
        let rest = &words[1..];
        if rest.len() != count {
            let problem = if rest.len() < count {
                format!("`{command}` needs {what}")
            } else {
                format!("unexpected argument `{}`", rest[count])
            };
            return Err(bad_input(format!(
                "{problem}; see `cargo xtask {command} --help`"
            )));
        }
        Ok(rest.to_vec())
    };
    let command = match command.as_str() {
        "add-db" => {
            let name = positional("a database NAME", 1)?.remove(0);
            let all_envs = has("all-envs");
            if all_envs && !envs.is_empty() {
                return Err(bad_input("give either --env or --all-envs, not both"));
            }
            if !all_envs && envs.is_empty() {
                return Err(bad_input(format!(
                    "`add-db {name}` needs the environments: --env ENV (repeatable) or --all-envs"
                )));
            }
            let bump = get("bump")
                .map(|b| b.parse::<Bump>().map_err(bad_input))
                .transpose()?;
            let secret = match get("secret").as_deref() {
                None | Some("generate") => SecretChoice::Generate,
                Some("static") => SecretChoice::Static,
                Some(s) => match s.strip_prefix("copy:").and_then(|r| r.split_once(':')) {
                    Some((app, key))
                        if !app.is_empty() && !key.is_empty() && !key.contains(':') =>
                    {
                        SecretChoice::Copy {
                            application: app.to_string(),
                            key: key.to_string(),
                        }
                    }
                    _ => {
                        return Err(bad_input(format!(
                            "unknown --secret `{s}`: use generate, static or copy:APP:KEY"
                        )))
                    }
                },
            };
            Command::AddDb(AddDb {
                name,
                envs,
                all_envs,
                user: get("user"),
                database: get("database"),
                bump,
                secret,
                dry_run: has("dry-run"),
            })
        }
        "remove-db" => Command::RemoveDb(RemoveDb {
            name: positional("a database NAME", 1)?.remove(0),
            envs,
            dry_run: has("dry-run"),
        }),
        "check" => {
            positional("", 0)?;
            Command::Check(Check {
                format: format()?,
                base: get("base"),
            })
        }
        "list" => {
            positional("", 0)?;
            Command::List(List { format: format()? })
        }
        "runbook" => {
            let mode = match (has("rotate"), has("remove")) {
                (true, true) => {
                    return Err(bad_input("give either --rotate or --remove, not both"))
                }
                (true, false) => RunbookMode::Rotate,
                (false, true) => RunbookMode::Remove,
                (false, false) => RunbookMode::Add,
            };
            Command::Runbook(Runbook {
                name: positional("a database NAME", 1)?.remove(0),
                envs,
                mode,
                script: has("script"),
            })
        }
        "local-db" => {
            let action = match positional("an action: up, down or status", 1)?[0].as_str() {
                "up" => LocalDbAction::Up,
                "down" => LocalDbAction::Down,
                "status" => LocalDbAction::Status,
                other => {
                    return Err(bad_input(format!(
                        "unknown local-db action `{other}`: use up, down or status"
                    )))
                }
            };
            if envs.len() > 1 {
                return Err(bad_input(
                    "local-db runs one environment at a time: give one --env",
                ));
            }
            let port = get("port")
                .map(|p| {
                    p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                        bad_input(format!("invalid --port `{p}`: a number from 1 to 65535"))
                    })
                })
                .transpose()?;
            Command::LocalDb(LocalDb {
                action,
                env: envs.first().cloned(),
                port,
                show_passwords: has("show-passwords"),
            })
        }
        "init" => {
            positional("", 0)?;
            if phalanx.is_none() {
                return Err(bad_input("`init` needs --phalanx DIR"));
            }
            Command::Init(Init {
                vault_addr: get("vault-addr"),
            })
        }
        "bench" => {
            positional("", 0)?;
            let runs = match get("runs") {
                None => 21,
                Some(r) => r
                    .parse::<usize>()
                    .ok()
                    .filter(|r| *r > 0)
                    .ok_or_else(|| bad_input(format!("invalid --runs `{r}`")))?,
            };
            Command::Bench(Bench { runs })
        }
        _ => unreachable!("commands were matched above"),
    };
    Ok(Flags {
        phalanx,
        charts,
        command,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> Result<Flags> {
        parse(args.iter().map(|a| a.into()))
    }

    #[test]
    fn global_options_before_or_after_the_command() {
        let f = flags(&[
            "--phalanx",
            "p",
            "add-db",
            "x",
            "--env",
            "a,b",
            "--env=c",
            "--charts=c",
        ])
        .unwrap();
        assert_eq!(f.phalanx, Some(PathBuf::from("p")));
        assert_eq!(f.charts, Some(PathBuf::from("c")));
        let Command::AddDb(add) = f.command else {
            panic!()
        };
        assert_eq!(add.envs, ["a", "b", "c"]);
    }

    #[test]
    fn usage_errors() {
        for (args, expected) in [
            (&["add-db", "x"][..], "--all-envs"),
            (&["add-db", "x", "--env", "a", "--all-envs"][..], "not both"),
            (
                &["add-db", "x", "--env", "a", "--bump", "huge"][..],
                "unknown bump `huge`",
            ),
            (
                &["add-db", "x", "--env", "a", "--secret", "copy:a"][..],
                "copy:APP:KEY",
            ),
            (&["add-db"][..], "needs a database NAME"),
            (&["check", "--env", "a"][..], "not an option of `check`"),
            (&["frobnicate"][..], "unknown command"),
            (&["list", "--format", "xml"][..], "unknown format"),
            (&["local-db", "sideways"][..], "unknown local-db action"),
            (&["list", "--nope"][..], "unknown option `--nope`"),
        ] {
            let message = flags(args).unwrap_err().to_string();
            assert!(message.contains(expected), "{args:?}: {message}");
        }
    }

    #[test]
    fn help_everywhere() {
        assert!(matches!(
            flags(&[]).unwrap().command,
            Command::Help(MAIN_HELP)
        ));
        assert!(matches!(
            flags(&["add-db", "--help"]).unwrap().command,
            Command::Help(ADD_DB_HELP)
        ));
    }
}
