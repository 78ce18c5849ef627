//! The command line: `cargo xtask [GLOBAL OPTIONS] COMMAND [OPTIONS]`.
//!
//! Every command is declared once, in [`COMMANDS`]: its arguments, its options with
//! their value kinds and help lines, and its description. Parsing, every `--help`
//! text and the "did you mean" suggestions are derived from that declaration, so an
//! option cannot be accepted without being documented. lexopt splits the words;
//! options may stand before or after the command word, `--opt value` and
//! `--opt=value` both work, an option given twice is refused unless it is
//! repeatable, and each command accepts only its own options and the global ones.
//!
//! The folder: `spec` (the declaration), `parse` (words to validated options),
//! `build` (one builder per command), `help` (every help text and suggestion); this
//! file holds the typed flags that the commands read.

use std::path::PathBuf;

use crate::files::chart::Bump;

mod build;
mod help;
mod parse;
mod spec;
#[cfg(test)]
mod tests;

pub use help::program_name;
pub(crate) use help::suggestion;
pub use parse::parse;
pub use spec::{Kind, Opt, Spec, COMMANDS, GLOBAL, HIDDEN, LOCAL_DB_ACTIONS};

/// `--format`: how a command prints its result.
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

/// add-db's environments: those named with `--env`, or every one (`--all-envs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnvChoice {
    Listed(Vec<String>),
    All,
}

#[derive(Clone, Debug)]
pub struct AddDb {
    pub name: String,
    pub envs: EnvChoice,
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

/// How a runbook is printed: the text to paste, or a bash script (`--script`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RenderMode {
    Text,
    Script,
}

#[derive(Clone, Debug)]
pub struct Runbook {
    pub name: String,
    pub envs: Vec<String>,
    pub mode: RunbookMode,
    /// `--script`: a bash script instead of the text to paste.
    pub render: RenderMode,
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

/// local-db up's port on 127.0.0.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortChoice {
    /// No `--port`: the last one while it is free, else a free one.
    Remembered,
    /// `--port 0`: a free one.
    Free,
    /// `--port N`.
    Fixed(u16),
}

#[derive(Clone, Debug)]
pub struct LocalDb {
    pub action: LocalDbAction,
    pub env: Option<String>,
    /// `--port N`, `--port 0` (a free one) or none (the last one).
    pub port: PortChoice,
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
