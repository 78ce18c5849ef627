//! Unit tests of the command line: parsing, usage errors, suggestions, help texts.

use super::help::{command_help, main_help};
use super::spec::*;
use super::*;
use anyhow::Result;
use std::path::PathBuf;

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
    assert_eq!(
        add.envs,
        EnvChoice::Listed(vec!["a".into(), "b".into(), "c".into()])
    );
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
    assert_eq!(l.port, PortChoice::Free);
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
    assert_eq!(
        (r.mode, r.render),
        (RunbookMode::Remove, RenderMode::Script)
    );
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

#[test]
fn choices_are_enums() {
    let Command::AddDb(a) = flags(&["add-db", "x", "--all-envs"]).unwrap().command else {
        panic!()
    };
    assert_eq!(a.envs, EnvChoice::All);
    for (args, expected) in [
        (&["local-db", "up"][..], PortChoice::Remembered),
        (&["local-db", "up", "--port", "0"][..], PortChoice::Free),
        (
            &["local-db", "up", "--port", "5433"][..],
            PortChoice::Fixed(5433),
        ),
        (
            &["local-db", "up", "--port", "65535"][..],
            PortChoice::Fixed(65535),
        ),
    ] {
        let Command::LocalDb(l) = flags(args).unwrap().command else {
            panic!()
        };
        assert_eq!(l.port, expected, "{args:?}");
    }
    for (args, expected) in [
        (&["runbook", "x"][..], (RunbookMode::Add, RenderMode::Text)),
        (
            &["runbook", "x", "--rotate", "--script"][..],
            (RunbookMode::Rotate, RenderMode::Script),
        ),
        (
            &[
                "runbook",
                "x",
                "--env",
                "a",
                "--move-to",
                "postgresql://h/d",
            ][..],
            (RunbookMode::Move, RenderMode::Text),
        ),
    ] {
        let Command::Runbook(r) = flags(args).unwrap().command else {
            panic!()
        };
        assert_eq!((r.mode, r.render), expected, "{args:?}");
    }
    assert!(
        error(&["runbook", "x", "--rotate", "--move-to", "u"]).contains("--move-to plans a move")
    );
}
