//! The command line: `cargo xtask [GLOBAL OPTIONS] COMMAND [OPTIONS]`.
//!
//! Every command is declared once, in [`COMMANDS`]: its arguments, its options with
//! their value kinds and help lines, and its description. Parsing, every `--help`
//! text and the "did you mean" suggestions are derived from that declaration, so an
//! option cannot be accepted without being documented. lexopt splits the words;
//! options may stand before or after the command word, `--opt value` and
//! `--opt=value` both work, an option given twice is refused unless it is
//! repeatable, and each command accepts only its own options and the global ones.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Result;

use crate::error::bad_input;
use crate::files::chart::Bump;

/// What an option takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A switch: present or absent.
    Switch,
    /// A value shown as this placeholder (`DIR`, `ENV`), checked by the command.
    Value(&'static str),
    /// One of these words.
    Choice(&'static [&'static str]),
    /// A whole number (`N`), checked by the command for its range.
    Number,
}

/// One declared option.
#[derive(Debug)]
pub struct Opt {
    pub long: &'static str,
    pub short: Option<char>,
    pub kind: Kind,
    /// Given more than once, its values add up (`--env a --env b`).
    pub repeatable: bool,
    pub help: &'static str,
}

const fn opt(long: &'static str, kind: Kind, help: &'static str) -> Opt {
    Opt {
        long,
        short: None,
        kind,
        repeatable: false,
        help,
    }
}

const fn repeated(long: &'static str, kind: Kind, help: &'static str) -> Opt {
    Opt {
        long,
        short: None,
        kind,
        repeatable: true,
        help,
    }
}

/// One declared command (or local-db action).
#[derive(Debug)]
pub struct Spec {
    pub name: &'static str,
    pub summary: &'static str,
    /// The positional arguments, each with its help line.
    pub args: &'static [(&'static str, &'static str)],
    pub options: &'static [Opt],
    pub description: &'static str,
}

pub const FORMATS: &[&str] = &["text", "json"];
pub const CHECK_FORMATS: &[&str] = &["text", "json", "github"];
pub const BUMPS: &[&str] = &["patch", "minor", "major"];

/// Options every command accepts.
pub const GLOBAL: &[Opt] = &[
    opt(
        "phalanx",
        Kind::Value("DIR"),
        "The deployment repository (default: the one holding the current folder, else xtask.toml's)",
    ),
    opt(
        "charts",
        Kind::Value("DIR"),
        "The charts repository of the split layout (default: xtask.toml's, else ../charts)",
    ),
    opt(
        "quiet",
        Kind::Switch,
        "Do not print which repositories and layout are used",
    ),
    Opt {
        short: Some('h'),
        ..opt("help", Kind::Switch, "Print help (also `help COMMAND`)")
    },
    Opt {
        short: Some('V'),
        ..opt("version", Kind::Switch, "Print the version")
    },
];

const ENV_ONE: Opt = opt(
    "env",
    Kind::Value("ENV"),
    "The environment (default: xtask.toml's local_env, else the first)",
);
const DRY_RUN: Opt = opt("dry-run", Kind::Switch, "Print the diff, write nothing");

pub const ADD_DB: Spec = Spec {
    name: "add-db",
    summary: "Add a database: template block, chart versions, secret, values entries",
    args: &[("NAME", "Database name: lower-case letters, digits and `_`")],
    options: &[
        repeated(
            "env",
            Kind::Value("ENV"),
            "An environment to add the database to (repeatable, or ENV,ENV)",
        ),
        opt(
            "all-envs",
            Kind::Switch,
            "Every environment that has a values file",
        ),
        opt("user", Kind::Value("U"), "The role (default: NAME)"),
        opt("database", Kind::Value("D"), "The database (default: NAME)"),
        opt(
            "bump",
            Kind::Choice(BUMPS),
            "patch, minor or major (default: patch in the split layout; other layouts bump only when given)",
        ),
        opt(
            "secret",
            Kind::Value("SOURCE"),
            "generate (default), static (set by hand; secrets.yaml) or copy:APP:KEY (secrets.yaml)",
        ),
        opt(
            "app",
            Kind::Value("APP[:KEY]"),
            "The application that uses the database: gets its copy of the password (KEY default: database-password)",
        ),
        opt(
            "dry-run",
            Kind::Switch,
            "Print the diff and the runbook, write nothing",
        ),
        opt(
            "format",
            Kind::Choice(FORMATS),
            "Output: text (default) or json (files, diffs and runbook; see docs/json.md)",
        ),
        opt(
            "no-runbook",
            Kind::Switch,
            "Print only the diff (the runbook later: `runbook NAME --env ENV`)",
        ),
    ],
    description: "\
Adds the template block, bumps the chart and moves the umbrella dependency (split
layout), adds the password to the secret source and the values entry of each chosen
environment. Every edit is verified before any file is written; all files are
written or none. Running it again changes nothing. Prints a diff of each file, then
the runbook of the remaining steps.",
};

pub const REMOVE_DB: Spec = Spec {
    name: "remove-db",
    summary: "Remove a database, or only some environments' values entries",
    args: &[("NAME", "The database's name (its values key without `_db`)")],
    options: &[
        repeated(
            "env",
            Kind::Value("ENV"),
            "Remove only this environment's entry (repeatable, or ENV,ENV)",
        ),
        DRY_RUN,
    ],
    description: "\
Without --env, removes the template block, the secret, every values entry and (split
layout) bumps the chart and moves the dependency. With --env, removes only those
environments' values entries. Refuses while another component copies the password.
The role and database stay in the server until they are dropped: the runbook prints
the steps, a dump first.",
};

pub const MOVE_DB: Spec = Spec {
    name: "move-db",
    summary: "Move a database of one environment to another PostgreSQL server",
    args: &[("NAME", "The database's name (its values key without `_db`)")],
    options: &[
        opt("env", Kind::Value("ENV"), "The environment whose database moves"),
        opt(
            "to",
            Kind::Value("URL"),
            "The new server: postgresql://[USER@]HOST[:PORT][/DB] (user and database default to the entry's)",
        ),
        opt(
            "allow-manual",
            Kind::Switch,
            "Go on when a consumer points at the server in a shape the tool cannot rewrite: you edit it",
        ),
        DRY_RUN,
    ],
    description: "\
Points every consumer of the database in that environment at the new server in its
own shape (a URL, a host beside user and database keys, a flag turned off for an
explicit URL), gives each copy of its password a source that no longer depends on
postgres (the value stays the same), and removes the environment's postgres entry:
one change, all files or none. Refuses (exit 1) while a consumer points at it in a
shape it does not know, unless --allow-manual. Prints the diff, then the runbook of
the move (preflight, freeze, copy, verify, switch, cleanup, rollback).",
};

pub const CHECK: Spec = Spec {
    name: "check",
    summary: "Prove that the deployment's files agree with each other",
    args: &[],
    options: &[
        opt(
            "format",
            Kind::Choice(CHECK_FORMATS),
            "Output: text (default), json, or github (workflow annotations)",
        ),
        opt(
            "base",
            Kind::Value("GIT-REV"),
            "Also check that the chart version increased since this revision when its templates changed (default: origin/$GITHUB_BASE_REF when set)",
        ),
        opt(
            "new-only",
            Kind::Switch,
            "Report only findings the working tree introduces since --base (default: the merge base with the upstream branch); old ones are counted",
        ),
        opt(
            "baseline",
            Kind::Value("FILE"),
            "Report only findings not in FILE (written by `check --format json > FILE`); old ones are counted",
        ),
    ],
    description: "\
Exit status 0 when there is no error (warnings allowed), 1 when there is one, 2 when
the check could not run.",
};

pub const LIST: Spec = Spec {
    name: "list",
    summary: "Show every database and the environments that have it",
    args: &[],
    options: &[
        opt(
            "format",
            Kind::Choice(FORMATS),
            "Output: text (default) or json",
        ),
        repeated(
            "env",
            Kind::Value("ENV"),
            "Only this environment (repeatable; default: every environment)",
        ),
    ],
    description: "\
One row per database: its user, database, secret key and how the secret source makes
the password, then one column per environment; below, the applications that use each
database in each environment (copies of its password, values pointing at the server,
known flags).",
};

pub const RUNBOOK: Spec = Spec {
    name: "runbook",
    summary: "Print the Vault, kubectl and Argo CD steps for a database",
    args: &[("NAME", "The database's name")],
    options: &[
        repeated(
            "env",
            Kind::Value("ENV"),
            "Only this environment (repeatable; default: every environment whose values file has the database)",
        ),
        opt(
            "rotate",
            Kind::Switch,
            "The steps to rotate the database's password",
        ),
        opt(
            "remove",
            Kind::Switch,
            "The steps to remove the database: dump, drop, delete the Vault key",
        ),
        opt(
            "move-to",
            Kind::Value("URL"),
            "The steps to move the database of one --env to postgresql://[USER@]HOST[:PORT][/DB]",
        ),
        opt(
            "script",
            Kind::Switch,
            "Print the steps as a bash script taking the phase as its argument",
        ),
        opt(
            "deployed",
            Kind::Value("GIT-REV"),
            "The deployed revision of the deployment repository (default: origin/HEAD, else origin/main)",
        ),
        opt(
            "format",
            Kind::Choice(FORMATS),
            "Output: text (default) or json (phases and steps; see docs/json.md)",
        ),
    ],
    description: "\
Without --rotate or --remove: the steps after add-db, in the order that is safe
(passwords into Vault where absent, merge, then per environment refresh, sync, wait,
verify).",
};

pub const LOCAL_DB: Spec = Spec {
    name: "local-db",
    summary: "Run a local PostgreSQL with an environment's roles and databases",
    args: &[(
        "ACTION",
        "up, down or status (`local-db ACTION --help` for each)",
    )],
    options: &[
        ENV_ONE,
        opt(
            "port",
            Kind::Number,
            "up: the TCP port on 127.0.0.1 (default: the last one, else a free one; 0: a free one)",
        ),
        opt(
            "show-passwords",
            Kind::Switch,
            "up: print passwords in the connection URLs",
        ),
        opt(
            "skip-missing",
            Kind::Switch,
            "up: create the rest when a block reads a password key nothing makes (the cluster would not start)",
        ),
    ],
    description: "\
A real PostgreSQL server holding the roles and databases that the cluster's postgres
creates for that environment; its state lives in the deployment checkout's
.git/pgdb/ (else $XDG_STATE_HOME/pgdb/, else ~/.local/state/pgdb/).",
};

pub const LOCAL_DB_ACTIONS: &[Spec] = &[
    Spec {
        name: "up",
        summary: "Start the server and create what the environment's postgres would",
        args: &[],
        options: &[
            ENV_ONE,
            opt(
                "port",
                Kind::Number,
                "The TCP port on 127.0.0.1 (default: the last one, else a free one; 0: a free one)",
            ),
            opt(
                "show-passwords",
                Kind::Switch,
                "Print passwords in the connection URLs",
            ),
            opt(
                "skip-missing",
                Kind::Switch,
                "Create the rest when a block reads a password key nothing makes (refused otherwise: the cluster would not start)",
            ),
        ],
        description: "\
Starts (or reuses) the environment's cluster, creates each role and database the
cluster's container would create, re-applies every password, proves each role can
log in and prints one connection URL per database. Existing data is kept.",
    },
    Spec {
        name: "down",
        summary: "Stop the environment's server (its data is kept)",
        args: &[],
        options: &[ENV_ONE],
        description: "Stops the environment's local server. Its data stays for the next `up`.",
    },
    Spec {
        name: "status",
        summary: "Say whether the environment's server runs, and where",
        args: &[],
        options: &[ENV_ONE],
        description: "Prints whether the environment's local server runs, its port and its folder.",
    },
];

pub const INIT: Spec = Spec {
    name: "init",
    summary: "Write xtask.toml: where the repositories are",
    args: &[],
    options: &[opt(
        "vault-addr",
        Kind::Value("URL"),
        "The Vault server to write (nothing is written without it; the default is https://vault.lsst.codes)",
    )],
    description: "\
Needs --phalanx DIR (and --charts DIR for the split layout). Writes xtask.toml in the
current folder, or the one found above it, keeping its comments and other keys.",
};

pub const BENCH: Spec = Spec {
    name: "bench",
    summary: "Measure `check` on the sample and on generated trees",
    args: &[],
    options: &[
        opt(
            "runs",
            Kind::Number,
            "Runs per tree (default: 21); the median is printed",
        ),
        opt(
            "move-copy",
            Kind::Number,
            "Instead: time a move's copy and verify of a database of about N MB between two local servers",
        ),
    ],
    description: "Run with `cargo xtask-bench` for real figures.",
};

pub const COMPLETION: Spec = Spec {
    name: "completion",
    summary: "Print a shell completion script (bash, zsh or fish)",
    args: &[("SHELL", "bash, zsh or fish")],
    options: &[],
    description: "\
Prints the completion script of the installed `pgdb` for the shell, e.g.
`pgdb completion bash > ~/.local/share/bash-completion/completions/pgdb`,
`pgdb completion zsh > \"${fpath[1]}/_pgdb\"`, or
`pgdb completion fish > ~/.config/fish/completions/pgdb.fish`.",
};

pub const HELP: Spec = Spec {
    name: "help",
    summary: "Print help of the tool or of a command",
    args: &[("[COMMAND]", "The command (and local-db action) to describe")],
    options: &[],
    description: "",
};

/// Every command, in the order the main help lists them.
pub const COMMANDS: &[&Spec] = &[
    &ADD_DB,
    &REMOVE_DB,
    &MOVE_DB,
    &CHECK,
    &LIST,
    &RUNBOOK,
    &LOCAL_DB,
    &INIT,
    &BENCH,
    &COMPLETION,
    &HELP,
];

/// Commands for the tool's developers: runnable, left out of the main help.
pub const HIDDEN: &[&str] = &["bench"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Github,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretChoice {
    Generate,
    /// Set by hand: a `secrets.yaml` entry with neither `generate` nor `copy`.
    Static,
    Copy {
        application: String,
        key: String,
    },
}

/// `--app APP[:KEY]`: the application that gets a copy of the password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppCopy {
    pub application: String,
    /// The key in the application's secret (None: the file's usual key).
    pub key: Option<String>,
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
    pub app: Option<AppCopy>,
    pub dry_run: bool,
    /// `--format json`: one JSON object (files, diffs, runbook) on stdout.
    pub format: Format,
    /// `--no-runbook`: the diff alone.
    pub no_runbook: bool,
}

#[derive(Clone, Debug)]
pub struct MoveDb {
    pub name: String,
    pub env: String,
    pub to: String,
    pub allow_manual: bool,
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
    /// `--new-only`: findings introduced since the base revision.
    pub new_only: bool,
    /// `--baseline FILE`: findings not in FILE.
    pub baseline: Option<PathBuf>,
}

#[derive(Clone, Debug)]
pub struct List {
    pub format: Format,
    /// `--env`: only these environments (empty: all).
    pub envs: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunbookMode {
    Add,
    Rotate,
    Remove,
    Move,
}

#[derive(Clone, Debug)]
pub struct Runbook {
    pub name: String,
    pub envs: Vec<String>,
    pub mode: RunbookMode,
    pub script: bool,
    /// `--deployed REV`: what is deployed, instead of the remote's default branch.
    pub deployed: Option<String>,
    /// `--format json`: phases and steps as JSON.
    pub format: Format,
    /// `--move-to URL`, unparsed.
    pub move_to: Option<String>,
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
    /// `Some(0)`: pick a free port.
    pub port: Option<u16>,
    pub show_passwords: bool,
    /// `up`: create what it can when a password key is missing from the secret source.
    pub skip_missing: bool,
}

#[derive(Clone, Debug)]
pub struct Init {
    pub vault_addr: Option<String>,
}

/// Read only in a build with the `bench` feature.
#[cfg_attr(not(feature = "bench"), allow(dead_code))]
#[derive(Clone, Debug)]
pub struct Bench {
    pub runs: usize,
    /// `--move-copy MB`.
    pub move_copy_mb: Option<u64>,
}

#[derive(Clone, Debug)]
pub enum Command {
    AddDb(AddDb),
    RemoveDb(RemoveDb),
    MoveDb(MoveDb),
    Check(Check),
    List(List),
    Runbook(Runbook),
    LocalDb(LocalDb),
    Init(Init),
    #[cfg_attr(not(feature = "bench"), allow(dead_code))]
    Bench(Bench),
    /// Print this text (help or version) and succeed.
    Print(String),
}

#[derive(Clone, Debug)]
pub struct Flags {
    pub phalanx: Option<PathBuf>,
    pub charts: Option<PathBuf>,
    #[allow(dead_code)] // until the repository line is printed
    pub quiet: bool,
    pub command: Command,
}

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

fn find_command(name: &str) -> Option<&'static Spec> {
    COMMANDS.iter().copied().find(|s| s.name == name)
}

fn find_action(name: &str) -> Option<&'static Spec> {
    LOCAL_DB_ACTIONS.iter().find(|s| s.name == name)
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

/// What lexopt found: words and options, before any command knows them.
struct Raw {
    words: Vec<String>,
    options: Vec<(&'static Opt, Option<String>)>,
}

fn all_options() -> impl Iterator<Item = &'static Opt> {
    GLOBAL
        .iter()
        .chain(COMMANDS.iter().flat_map(|s| s.options.iter()))
        .chain(LOCAL_DB_ACTIONS.iter().flat_map(|s| s.options.iter()))
}

fn lookup_long(name: &str) -> Option<&'static Opt> {
    all_options().find(|o| o.long == name)
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
struct Given {
    options: Vec<(&'static Opt, Option<String>)>,
}

impl Given {
    fn value(&self, long: &str) -> Option<String> {
        self.options
            .iter()
            .find(|(o, _)| o.long == long)
            .and_then(|(_, v)| v.clone())
    }

    fn has(&self, long: &str) -> bool {
        self.options.iter().any(|(o, _)| o.long == long)
    }

    /// Every value of a repeatable option, `a,b` lists split.
    fn values(&self, long: &str) -> Vec<String> {
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

    fn number(&self, long: &str) -> Result<Option<u64>> {
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

/// `a, b or c`.
fn one_of(words: &[&str]) -> String {
    match words.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// The positional words after the command word, exactly `count` of them.
fn positional(spec_name: &str, rest: &[String], what: &str, count: usize) -> Result<Vec<String>> {
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

/// " (did you mean ...?)" for an unknown command word: a global option written
/// as a command (`version`) points at the option.
fn command_hint(word: &str) -> String {
    match GLOBAL
        .iter()
        .find(|o| o.long == word && o.kind == Kind::Switch)
    {
        Some(o) => format!(" (did you mean `--{}`?)", o.long),
        None => suggestion(word, COMMANDS.iter().map(|s| s.name), ""),
    }
}

/// `help`, `help COMMAND`, `help local-db ACTION`.
fn help_for(words: &[String]) -> Result<String> {
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

/// Turns the validated options of one command into its typed flags.
fn build(spec: &Spec, rest: &[String], given: &Given) -> Result<Command> {
    let name = spec.name;
    let format = || match given.value("format").as_deref() {
        Some("json") => Format::Json,
        Some("github") => Format::Github,
        _ => Format::Text,
    };
    Ok(match name {
        "add-db" => {
            let db = positional(name, rest, "a database NAME", 1)?.remove(0);
            let envs = given.values("env");
            let all_envs = given.has("all-envs");
            if all_envs && !envs.is_empty() {
                return Err(bad_input("give either --env or --all-envs, not both"));
            }
            if !all_envs && envs.is_empty() {
                return Err(bad_input(format!(
                    "`add-db {db}` needs the environments: --env ENV (repeatable) or --all-envs"
                )));
            }
            let bump = given
                .value("bump")
                .map(|b| b.parse::<Bump>().map_err(bad_input))
                .transpose()?;
            Command::AddDb(AddDb {
                name: db,
                envs,
                all_envs,
                user: given.value("user"),
                database: given.value("database"),
                bump,
                secret: secret_choice(given.value("secret").as_deref())?,
                app: given.value("app").map(|a| app_copy(&a)).transpose()?,
                dry_run: given.has("dry-run"),
                format: format(),
                no_runbook: given.has("no-runbook"),
            })
        }
        "remove-db" => Command::RemoveDb(RemoveDb {
            name: positional(name, rest, "a database NAME", 1)?.remove(0),
            envs: given.values("env"),
            dry_run: given.has("dry-run"),
        }),
        "move-db" => {
            let db = positional(name, rest, "a database NAME", 1)?.remove(0);
            let (Some(env), Some(to)) = (given.value("env"), given.value("to")) else {
                return Err(bad_input(format!(
                    "`move-db {db}` needs the environment and the new server: --env ENV --to URL"
                )));
            };
            Command::MoveDb(MoveDb {
                name: db,
                env,
                to,
                allow_manual: given.has("allow-manual"),
                dry_run: given.has("dry-run"),
            })
        }
        "check" => {
            positional(name, rest, "", 0)?;
            if given.has("new-only") && given.has("baseline") {
                return Err(bad_input("give either --new-only or --baseline, not both"));
            }
            Command::Check(Check {
                format: format(),
                base: given.value("base"),
                new_only: given.has("new-only"),
                baseline: given.value("baseline").map(PathBuf::from),
            })
        }
        "list" => {
            positional(name, rest, "", 0)?;
            Command::List(List {
                format: format(),
                envs: given.values("env"),
            })
        }
        "runbook" => {
            let db = positional(name, rest, "a database NAME", 1)?.remove(0);
            if given.has("script") && given.value("format").as_deref() == Some("json") {
                return Err(bad_input("give either --script or --format json, not both"));
            }
            let mode = match (given.has("rotate"), given.has("remove")) {
                (true, true) => {
                    return Err(bad_input("give either --rotate or --remove, not both"))
                }
                (true, false) => RunbookMode::Rotate,
                (false, true) => RunbookMode::Remove,
                (false, false) => RunbookMode::Add,
            };
            let mode = match (mode, given.has("move-to")) {
                (RunbookMode::Add, true) => RunbookMode::Move,
                (_, true) => {
                    return Err(bad_input(
                        "--move-to plans a move: give it without --rotate or --remove",
                    ))
                }
                (mode, false) => mode,
            };
            Command::Runbook(Runbook {
                name: db,
                envs: given.values("env"),
                mode,
                script: given.has("script"),
                deployed: given.value("deployed"),
                format: format(),
                move_to: given.value("move-to"),
            })
        }
        "local-db" => {
            let word = positional(name, rest, "an action: up, down or status", 1)?.remove(0);
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
            let port = match given.number("port") {
                Ok(None) => None,
                Ok(Some(p)) if p <= u64::from(u16::MAX) => Some(p as u16),
                _ => {
                    return Err(bad_input(format!(
                        "invalid --port `{}`: a number from 1 to 65535, or 0 for a free one",
                        given.value("port").unwrap_or_default()
                    )))
                }
            };
            Command::LocalDb(LocalDb {
                action,
                env: envs.into_iter().next(),
                port,
                show_passwords: given.has("show-passwords"),
                skip_missing: given.has("skip-missing"),
            })
        }
        "init" => {
            positional(name, rest, "", 0)?;
            if !given.has("phalanx") {
                return Err(bad_input("`init` needs --phalanx DIR"));
            }
            Command::Init(Init {
                vault_addr: given.value("vault-addr"),
            })
        }
        "bench" => {
            positional(name, rest, "", 0)?;
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
            Command::Bench(Bench { runs, move_copy_mb })
        }
        "completion" => {
            let shell = positional(name, rest, "a SHELL: bash, zsh or fish", 1)?.remove(0);
            let script = crate::completion::script(&shell).ok_or_else(|| {
                let hint = suggestion(&shell, crate::completion::SHELLS.iter().copied(), "");
                bad_input(format!(
                    "unknown shell `{shell}`{hint}: use {}",
                    one_of(crate::completion::SHELLS)
                ))
            })?;
            Command::Print(script)
        }
        _ => unreachable!("every declared command is built above"),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> Result<Flags> {
        parse(args.iter().map(|a| a.into()))
    }

    fn error(args: &[&str]) -> String {
        flags(args).unwrap_err().to_string()
    }

    fn printed(args: &[&str]) -> String {
        match flags(args).unwrap().command {
            Command::Print(text) => text,
            other => panic!("{args:?}: expected printed text, got {other:?}"),
        }
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
            "--quiet",
        ])
        .unwrap();
        assert_eq!(f.phalanx, Some(PathBuf::from("p")));
        assert_eq!(f.charts, Some(PathBuf::from("c")));
        assert!(f.quiet);
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
                "invalid --secret `copy:a`: copy needs APP:KEY",
            ),
            (
                &["add-db", "x", "--env", "a", "--secret", "genrate"][..],
                "did you mean `generate`?",
            ),
            (
                &["version"][..],
                "unknown command `version` (did you mean `--version`?)",
            ),
            (&[][..], "no command given"),
            (&["check", "--new-only", "--baseline", "f"][..], "not both"),
            (
                &["runbook", "x", "--script", "--format", "json"][..],
                "not both",
            ),
            (
                &["completion", "powershell"][..],
                "unknown shell `powershell`: use bash, zsh or fish",
            ),
            (
                &["add-db", "x", "--env", "a", "--app", "a b"][..],
                "invalid --app",
            ),
            (&["add-db"][..], "needs a database NAME"),
            (&["check", "--env", "a"][..], "not an option of `check`"),
            (&["frobnicate"][..], "unknown command"),
            (&["list", "--format", "xml"][..], "unknown format"),
            (
                &["list", "--format", "github"][..],
                "unknown format `github` for `list`",
            ),
            (&["local-db", "sideways"][..], "unknown local-db action"),
            (&["local-db", "up", "--port", "70000"][..], "invalid --port"),
            (
                &["local-db", "down", "--port", "5"][..],
                "not an option of `local-db down`",
            ),
            (&["list", "--nope"][..], "unknown option `--nope`"),
            (&["runbook", "x", "--rotate", "--remove"][..], "not both"),
            (
                &["add-db", "x", "--env", "a", "--user", "u", "--user", "v"][..],
                "`--user` is given more than once",
            ),
            (
                &["--phalanx", "a", "list", "--phalanx", "b"][..],
                "`--phalanx` is given more than once",
            ),
        ] {
            let message = error(args);
            assert!(message.contains(expected), "{args:?}: {message}");
        }
    }

    #[test]
    fn mistyped_words_get_a_suggestion() {
        assert!(error(&["add-bd", "x"]).contains("did you mean `add-db`?"));
        assert!(error(&["chek"]).contains("did you mean `check`?"));
        assert!(error(&["add-db", "x", "--all-env"]).contains("did you mean `--all-envs`?"));
        assert!(error(&["list", "--formt", "json"]).contains("did you mean `--format`?"));
        assert!(error(&["local-db", "stauts"]).contains("did you mean `status`?"));
        assert!(!error(&["zzzzzzzz"]).contains("did you mean"));
        let message = error(&["add-db", "x", "--evn", "base"]);
        assert!(message.contains("did you mean `--env`?"), "{message}");
        assert!(message.contains("add-db --help`"), "{message}");
        let message = error(&["add-db", "x", "--env"]);
        assert!(
            message.starts_with("`--env` needs a value; see `"),
            "{message}"
        );
    }

    #[test]
    fn values_are_typed() {
        let Command::LocalDb(l) = flags(&["local-db", "up", "--port", "0"]).unwrap().command else {
            panic!()
        };
        assert_eq!(l.port, Some(0));
        let Command::AddDb(a) = flags(&[
            "add-db",
            "x",
            "--all-envs",
            "--secret",
            "static",
            "--app",
            "gafaelfawr:db-pw",
        ])
        .unwrap()
        .command
        else {
            panic!()
        };
        assert_eq!(a.secret, SecretChoice::Static);
        assert_eq!(
            a.app,
            Some(AppCopy {
                application: "gafaelfawr".into(),
                key: Some("db-pw".into())
            })
        );
        let Command::Runbook(r) = flags(&["runbook", "x", "--remove", "--script"])
            .unwrap()
            .command
        else {
            panic!()
        };
        assert_eq!((r.mode, r.script), (RunbookMode::Remove, true));
        let Command::Check(c) = flags(&["check", "--format", "github"]).unwrap().command else {
            panic!()
        };
        assert_eq!(c.format, Format::Github);
    }

    #[test]
    fn help_and_version_everywhere() {
        assert_eq!(printed(&["--help"]), main_help());
        assert!(!main_help().contains("bench"), "bench is for developers");
        assert!(printed(&["bench", "--help"]).contains("--runs"));
        assert_eq!(printed(&["help"]), main_help());
        assert_eq!(printed(&["add-db", "--help"]), command_help(&ADD_DB, ""));
        assert_eq!(printed(&["help", "add-db"]), command_help(&ADD_DB, ""));
        assert_eq!(printed(&["-h", "check"]), command_help(&CHECK, ""));
        let up = &LOCAL_DB_ACTIONS[0];
        assert_eq!(
            printed(&["local-db", "up", "--help"]),
            command_help(up, "local-db ")
        );
        assert_eq!(
            printed(&["help", "local-db", "up"]),
            command_help(up, "local-db ")
        );
        assert!(printed(&["--version"]).contains(env!("CARGO_PKG_VERSION")));
        assert_eq!(printed(&["-V"]), printed(&["--version"]));
        assert!(error(&["help", "nope"]).contains("unknown command `nope`"));
    }

    #[test]
    fn every_declared_option_appears_in_its_help() {
        let specs = COMMANDS
            .iter()
            .map(|s| (*s, ""))
            .chain(LOCAL_DB_ACTIONS.iter().map(|s| (s, "local-db ")));
        for (spec, prefix) in specs {
            let help = command_help(spec, prefix);
            for o in spec.options.iter().chain(GLOBAL) {
                assert!(
                    help.contains(&format!("--{} ", o.long))
                        || help.contains(&format!("--{}\n", o.long)),
                    "{prefix}{}: --{} is not in its help:\n{help}",
                    spec.name,
                    o.long
                );
                assert!(
                    help.contains(o.help),
                    "{}: help line of --{}",
                    spec.name,
                    o.long
                );
            }
            for (arg, _) in spec.args {
                assert!(help.contains(arg), "{}: argument {arg}", spec.name);
            }
        }
        let check = command_help(&CHECK, "");
        for rule in crate::check::Rule::all() {
            assert!(
                check.contains(rule.id()),
                "check --help lacks rule {}",
                rule.id()
            );
        }
        let main = main_help();
        for spec in COMMANDS.iter().filter(|s| !HIDDEN.contains(&s.name)) {
            assert!(main.contains(spec.name), "main help lacks {}", spec.name);
        }
    }

    #[test]
    fn every_option_of_a_local_db_action_is_an_option_of_local_db() {
        for action in LOCAL_DB_ACTIONS {
            for o in action.options {
                assert!(
                    LOCAL_DB.options.iter().any(|d| d.long == o.long),
                    "local-db {}: --{}",
                    action.name,
                    o.long
                );
            }
        }
    }
}
