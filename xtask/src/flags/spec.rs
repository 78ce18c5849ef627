//! The declaration of the command line: what an option takes (`Kind`), each option
//! (`Opt`) and command (`Spec`) with its help lines and description, the options every
//! command accepts (`GLOBAL`), every command (`COMMANDS`) and local-db's actions.
//! Parsing, help and shell completion are all derived from these tables.

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

pub(super) fn find_command(name: &str) -> Option<&'static Spec> {
    COMMANDS.iter().copied().find(|s| s.name == name)
}

pub(super) fn find_action(name: &str) -> Option<&'static Spec> {
    LOCAL_DB_ACTIONS.iter().find(|s| s.name == name)
}

pub(super) fn all_options() -> impl Iterator<Item = &'static Opt> {
    GLOBAL
        .iter()
        .chain(COMMANDS.iter().flat_map(|s| s.options.iter()))
        .chain(LOCAL_DB_ACTIONS.iter().flat_map(|s| s.options.iter()))
}

pub(super) fn lookup_long(name: &str) -> Option<&'static Opt> {
    all_options().find(|o| o.long == name)
}
