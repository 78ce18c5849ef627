//! The command line as a user meets it: `--help` texts, where options may stand,
//! and what an edit leaves behind (a generator that Python still reads, the
//! generator's permissions, a refusal of an empty name).

use crate::common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A scratch copy of a shared fixture tree.
fn fixture(name: &str, test: &str) -> PathBuf {
    let work = scratch(test);
    copy_tree(&root().join("tests/fixtures").join(name), &work);
    work
}

/// Runs the binary on a scratch tree, the repository options first.
fn run(work: &Path, args: &[&str]) -> Output {
    let mut all = repo_args(work);
    all.extend(args.iter().map(|a| a.to_string()));
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    xtask(work, &refs)
}

#[test]
fn main_help_describes_every_command_and_global_option() {
    for args in [&["--help"][..], &["-h"][..]] {
        let out = xtask(&root(), args);
        assert!(out.status.success(), "{args:?}");
        let help = text(&out.stdout);
        for word in [
            "add-db",
            "remove-db",
            "check",
            "list",
            "runbook",
            "local-db",
            "init",
            "--phalanx DIR",
            "--charts DIR",
            "--help",
            "EXIT STATUS",
        ] {
            assert!(
                help.contains(word),
                "{args:?}: the help lacks `{word}`:\n{help}"
            );
        }
    }
}

#[test]
fn add_db_help_describes_every_option() {
    for args in [
        &["add-db", "--help"][..],
        &["--help", "add-db"][..],
        &["add-db", "-h"][..],
    ] {
        let out = xtask(&root(), args);
        assert!(out.status.success(), "{args:?}");
        let help = text(&out.stdout);
        for word in [
            "NAME",
            "--env ENV",
            "--all-envs",
            "--user U",
            "--database D",
            "--bump",
            "patch, minor or major",
            "--dry-run",
            "--secret",
            "--phalanx DIR",
            "--charts DIR",
        ] {
            assert!(
                help.contains(word),
                "{args:?}: the add-db help lacks `{word}`:\n{help}"
            );
        }
        assert!(
            !help.contains("remove-db"),
            "{args:?}: the main help instead of add-db's"
        );
    }
}

#[test]
fn options_are_accepted_before_and_after_the_command_word() {
    let reference = fixture("split-quoted", "cli-reference");
    let out = run(
        &reference,
        &[
            "add-db",
            "exposurelog",
            "--env",
            "dev",
            "--env",
            "prod",
            "--bump",
            "minor",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let orders: [&[&str]; 3] = [
        &[
            "--env",
            "dev",
            "--bump=minor",
            "add-db",
            "exposurelog",
            "--env=prod",
        ],
        &[
            "--bump",
            "minor",
            "--env",
            "dev,prod",
            "add-db",
            "exposurelog",
        ],
        &[
            "add-db",
            "--env",
            "prod",
            "exposurelog",
            "--bump",
            "minor",
            "--env",
            "dev",
        ],
    ];
    for (n, args) in orders.iter().enumerate() {
        let work = fixture("split-quoted", &format!("cli-order-{n}"));
        let out = run(&work, args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert_same_tree(&work, &reference, &format!("{args:?}"));
        // The repository options after the command word this time.
        let work = fixture("split-quoted", &format!("cli-order-after-{n}"));
        let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        all.extend(repo_args(&work));
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        let out = xtask(&work, &refs);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert_same_tree(
            &work,
            &reference,
            &format!("{args:?} then the repositories"),
        );
    }
}

#[test]
fn the_edited_generator_still_parses_as_python_and_stays_executable() {
    for (fixture_name, args) in [
        (
            "split-quoted",
            &["add-db", "exposure_checker", "--all-envs"][..],
        ),
        (
            "split-range",
            &["add-db", "exposurelog", "--env", "base"][..],
        ),
    ] {
        let work = fixture(fixture_name, &format!("cli-python-{fixture_name}"));
        let generator = work.join("phalanx/installer/generate_secrets.py");
        let before = std::fs::read_to_string(&generator).unwrap();
        let out = run(&work, args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let after = std::fs::read_to_string(&generator).unwrap();
        assert_ne!(
            before, after,
            "{fixture_name}: the generator did not change"
        );
        let python = Command::new("python3")
            .args(["-c", "import ast,sys; ast.parse(open(sys.argv[1]).read())"])
            .arg(&generator)
            .output()
            .expect("python3 runs");
        assert!(
            python.status.success(),
            "{fixture_name}: {}\n{after}",
            text(&python.stderr)
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&generator).unwrap().permissions().mode();
            assert_eq!(
                mode & 0o111,
                0o111,
                "{fixture_name}: the generator lost its executable bits ({mode:o})"
            );
        }
    }
}

#[test]
fn an_empty_name_is_refused_and_nothing_changes() {
    let work = fixture("split-quoted", "cli-empty-name");
    let out = run(&work, &["add-db", "", "--env", "dev"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("invalid database name ``: it is empty"),
        "{}",
        text(&out.stderr)
    );
    assert_same_tree(
        &work,
        &root().join("tests/fixtures/split-quoted"),
        "empty name",
    );
}

#[test]
fn unknown_options_and_commands_are_usage_errors() {
    let work = fixture("split-quoted", "cli-usage");
    for (args, expected) in [
        (
            &["add-db", "exposurelog", "--env", "dev", "--frobnicate"][..],
            "unknown option `--frobnicate`",
        ),
        (
            &["add-db", "exposurelog", "--env", "dev", "--all-envs"][..],
            "not both",
        ),
        (
            &["add-db", "exposurelog", "other", "--env", "dev"][..],
            "unexpected argument `other`",
        ),
        (&["add-dbs", "exposurelog"][..], "unknown command `add-dbs`"),
        (&["add-db", "exposurelog", "--env"][..], "--env"),
    ] {
        let out = run(&work, args);
        assert_refused(&out, 2, expected, &format!("{args:?}"));
        assert!(!text(&out.stderr).contains("panicked"), "{args:?}");
    }
    assert_same_tree(
        &work,
        &root().join("tests/fixtures/split-quoted"),
        "usage errors",
    );
}

#[test]
fn a_misspelt_xtask_toml_key_is_bad_input_not_ignored() {
    let work = fixture("split-quoted", "cli-toml-key");
    std::fs::write(
        work.join("xtask.toml"),
        "phalanx = \"phalanx\"\ncharts = \"charts\"\n\n[kube_context]\ndev = \"gke-dev\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["--quiet", "list"])
        .current_dir(&work)
        .output()
        .expect("the xtask binary runs");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("xtask.toml: unknown key `kube_context` (did you mean `kube_contexts`?)"),
        "{stderr}"
    );
}

#[test]
fn a_lock_timeout_that_is_no_number_is_bad_input_and_nothing_changes() {
    let work = fixture("split-quoted", "cli-lock-timeout");
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["--quiet", "add-db", "exposurelog", "--env", "dev"])
        .args(["--phalanx", &work.join("phalanx").display().to_string()])
        .args(["--charts", &work.join("charts").display().to_string()])
        .env("XTASK_LOCK_TIMEOUT", "soon")
        .output()
        .expect("the xtask binary runs");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("XTASK_LOCK_TIMEOUT=\"soon\": expected a number of seconds"),
        "{}",
        text(&out.stderr)
    );
    assert_same_tree(
        &work,
        &root().join("tests/fixtures/split-quoted"),
        "lock timeout",
    );
}

/// Issue 21, item 3: typos that used to succeed.
#[test]
fn typos_fail_and_point_at_the_right_thing() {
    let work = fixture("split-quoted", "cli-typos");
    // Without arguments: the usage, on stderr, exit 2.
    let out = xtask(&root(), &[]);
    assert_refused(&out, 2, "no command given", "no arguments");
    assert!(
        text(&out.stderr).contains("COMMANDS:"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    for (args, code, expected) in [
        (
            &["version"][..],
            2,
            "unknown command `version` (did you mean `--version`?)",
        ),
        (
            &["runbook", "jupyterhb"][..],
            1,
            "`jupyterhb` is not a database of this deployment (did you mean `jupyterhub`?)",
        ),
        (
            &["runbook", "nosuchdb", "--env", "dev"][..],
            1,
            "`nosuchdb` is not a database of this deployment",
        ),
        (
            &["add-db", "x", "--env", "dev", "--secret", "copy:x"][..],
            2,
            "copy needs APP:KEY",
        ),
    ] {
        let out = run(&work, args);
        assert_refused(&out, code, expected, &format!("{args:?}"));
        assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out.stdout));
    }
    assert_same_tree(&work, &root().join("tests/fixtures/split-quoted"), "typos");
    // remove-db: outside git an unknown name may have been removed by an earlier run:
    // nothing to change, with a note of the closest name.
    let out = run(&work, &["remove-db", "vo_cutuots"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Nothing to change"));
    assert!(text(&out.stderr).contains("(did you mean `vo_cutouts`?)"));
    // In git, history tells: a name no commit held is a typo (exit 1); one the last
    // commit held was removed already (a second run succeeds).
    let phalanx = work.join("phalanx");
    git(&phalanx, &["init", "-q"]);
    git(&phalanx, &["add", "-A"]);
    git(&phalanx, &["commit", "-qm", "deployment"]);
    let out = run(&work, &["remove-db", "vo_cutuots"]);
    assert_refused(
        &out,
        1,
        "`vo_cutuots` is not a database of this deployment (did you mean `vo_cutouts`?)",
        "remove-db typo",
    );
    assert!(out.stdout.is_empty());
    for attempt in ["first", "second"] {
        let out = run(&work, &["remove-db", "jupyterhub"]);
        assert!(out.status.success(), "{attempt}: {}", text(&out.stderr));
    }
    let out = run(&work, &["remove-db", "jupyterhub"]);
    assert!(
        text(&out.stdout).contains("Nothing to change"),
        "{}",
        text(&out.stdout)
    );
    // bench is runnable (its help) but not in the operator's help.
    let help = text(&xtask(&root(), &["--help"]).stdout);
    assert!(!help.contains("bench"), "{help}");
    let bench = xtask(&root(), &["bench", "--help"]);
    assert!(bench.status.success() && text(&bench.stdout).contains("--runs"));
}

/// A check fixture as a git repository whose bare "remote" (`origin/main`, the
/// upstream of `main`) holds one old mistake: `oldbad_db` without a template block.
fn deployment_with_an_old_finding(test: &str) -> PathBuf {
    let work = fixture("check/split", test);
    let phalanx = work.join("phalanx");
    let values = phalanx.join("services/postgres/values-base.yaml");
    let text_before = std::fs::read_to_string(&values).unwrap();
    std::fs::write(
        &values,
        text_before.replacen(
            "postgres:\n",
            "postgres:\n  oldbad_db:\n    user: \"oldbad\"\n    db: \"oldbad\"\n",
            1,
        ),
    )
    .unwrap();
    git(&phalanx, &["init", "-q", "-b", "main"]);
    git(&phalanx, &["add", "-A"]);
    git(
        &phalanx,
        &["commit", "-qm", "deployed, with an old mistake"],
    );
    git(&work, &["init", "-q", "--bare", "remote.git"]);
    git(&phalanx, &["remote", "add", "origin", "../remote.git"]);
    git(&phalanx, &["push", "-q", "-u", "origin", "main"]);
    work
}

/// Adds `newbad_db` (no template block either) to the summit values file.
fn add_a_new_mistake(work: &Path) {
    let values = work.join("phalanx/services/postgres/values-summit.yaml");
    let text_before = std::fs::read_to_string(&values).unwrap();
    std::fs::write(
        &values,
        text_before.replacen(
            "postgres:\n",
            "postgres:\n  newbad_db:\n    user: \"newbad\"\n    db: \"newbad\"\n",
            1,
        ),
    )
    .unwrap();
}

/// Issue 21, item 2: `check --new-only` judges the change, not the repository's past.
#[test]
fn check_new_only_reports_what_the_working_tree_introduces() {
    let work = deployment_with_an_old_finding("cli-new-only");
    // The whole check sees the old mistake.
    let out = run(&work, &["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("oldbad_db"));
    // A harmless change passes --new-only; the old finding is counted on stderr.
    std::fs::write(work.join("phalanx/README.md"), "notes\n").unwrap();
    let out = run(&work, &["check", "--new-only"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(!stdout.contains("oldbad_db"), "{stdout}");
    assert!(
        stderr.contains("finding already in ") || stderr.contains("findings already in "),
        "{stderr}"
    );
    assert!(
        stderr.contains("(the merge base with the upstream branch)"),
        "{stderr}"
    );
    // Even when committed locally (the base is the merge base, not HEAD).
    add_a_new_mistake(&work);
    git(&work.join("phalanx"), &["commit", "-qam", "a new mistake"]);
    let out = run(&work, &["check", "--new-only"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("newbad_db"), "{stdout}");
    assert!(!stdout.contains("oldbad_db"), "{stdout}");
    // --base names the revision; one that does not exist is bad input.
    let out = run(&work, &["check", "--new-only", "--base", "HEAD"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let out = run(&work, &["check", "--new-only", "--base", "nosuchrev"]);
    assert_refused(
        &out,
        2,
        "--base nosuchrev: not a revision",
        "--base nosuchrev",
    );
    assert!(out.stdout.is_empty());
}

/// `check --baseline FILE`: the old findings from `check --format json > FILE`, for
/// a repository without history.
#[test]
fn check_baseline_sets_aside_the_findings_of_its_file() {
    let work = deployment_with_an_old_finding("cli-baseline");
    std::fs::remove_dir_all(work.join("phalanx/.git")).unwrap();
    let json = run(&work, &["check", "--format", "json"]);
    let baseline = work.join("baseline.json");
    std::fs::write(&baseline, &json.stdout).unwrap();
    let file = baseline.display().to_string();
    let out = run(&work, &["check", "--baseline", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains(&format!("already in {file} not shown")));
    add_a_new_mistake(&work);
    let out = run(&work, &["check", "--baseline", &file]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("newbad_db") && !stdout.contains("oldbad_db"),
        "{stdout}"
    );
    // A file that is not a check's JSON: bad input, naming it.
    std::fs::write(&baseline, "[1, 2]\n").unwrap();
    let out = run(&work, &["check", "--baseline", &file]);
    assert_refused(
        &out,
        2,
        &format!("{file}: no `findings` list"),
        "bad baseline",
    );
}

/// Issue 21, item 7: `completion bash|zsh|fish`, derived from the declared flags.
/// Bash runs its script (completing a command, an option, a choice and local-db's
/// actions); zsh and fish check their scripts' syntax (`.ci/run` installs both).
#[test]
fn completion_scripts_complete_the_declared_flags() {
    let work = scratch("cli-completion");
    let mut scripts = Vec::new();
    for shell in ["bash", "zsh", "fish"] {
        let out = xtask(&root(), &["completion", shell]);
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
        let file = work.join(format!("pgdb.{shell}"));
        std::fs::write(&file, &out.stdout).unwrap();
        scripts.push((shell, file));
    }
    assert_refused(
        &xtask(&root(), &["completion", "bahs"]),
        2,
        "did you mean `bash`?",
        "bahs",
    );
    assert_bash_syntax(&scripts[0].1, "completion bash");
    let complete = |words: &str| {
        let shell = format!(
            "source {}\nCOMP_WORDS=({words})\nCOMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))\n_pgdb\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
            scripts[0].1.display()
        );
        let out = Command::new("bash").args(["-c", &shell]).output().unwrap();
        assert!(out.status.success(), "{words}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    assert_eq!(complete("pgdb rem"), "remove-db\n");
    assert!(!complete("pgdb b").contains("bench"), "bench is hidden");
    assert_eq!(complete("pgdb check --new"), "--new-only\n");
    assert_eq!(complete("pgdb --quiet check --format j"), "json\n");
    assert_eq!(complete("pgdb add-db x --bump m"), "minor\nmajor\n");
    let actions = complete("pgdb --phalanx /tmp local-db ''");
    for action in ["up", "down", "status"] {
        assert!(actions.lines().any(|l| l == action), "{actions}");
    }
    for (shell, file, check) in [
        ("zsh", &scripts[1].1, vec!["-n"]),
        ("fish", &scripts[2].1, vec!["--no-execute"]),
    ] {
        let out = Command::new(shell)
            .args(&check)
            .arg(file)
            .output()
            .unwrap_or_else(|e| panic!("{shell} runs (.ci/run installs it): {e}"));
        assert!(out.status.success(), "{shell}: {}", text(&out.stderr));
    }
}

/// The key structure of a JSON value: objects by their keys (in order), lists by
/// their first entry, anything else by nothing (a string and `null` may stand for
/// each other: an example shows one case).
fn shape(value: &serde_yaml::Value) -> String {
    match value {
        serde_yaml::Value::Mapping(map) => {
            let fields: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", k.as_str().unwrap_or("?"), shape(v)))
                .collect();
            format!("{{{}}}", fields.join(", "))
        }
        serde_yaml::Value::Sequence(items) => match items.first() {
            Some(first) => format!("[{}]", shape(first)),
            None => "[]".into(),
        },
        _ => "_".into(),
    }
}

/// Issue 21, item 7: the JSON shapes documented in docs/json.md, checked against
/// real output: every example parses and the command above it prints the same keys.
#[test]
fn the_json_examples_in_the_docs_are_what_the_commands_print() {
    let docs = std::fs::read_to_string(root().join("docs/json.md")).unwrap();
    let mut examples = 0;
    for part in docs.split("<!-- example: ").skip(1) {
        let (command, rest) = part
            .split_once(" -->\n```json\n")
            .expect("an example block");
        let example = rest.split("\n```").next().unwrap();
        let documented: serde_yaml::Value =
            serde_yaml::from_str(example).unwrap_or_else(|e| panic!("{command}: {e}"));
        let work = sample_copy(&format!("cli-json-{examples}"));
        // `--deployed HEAD` needs a commit.
        git(&work.join("phalanx"), &["init", "-q"]);
        git(&work.join("phalanx"), &["add", "-A"]);
        git(&work.join("phalanx"), &["commit", "-qm", "deployed"]);
        let args: Vec<&str> = command.split(' ').collect();
        let out = run(&work, &args);
        assert!(out.status.success(), "{command}: {}", text(&out.stderr));
        let printed: serde_yaml::Value = serde_yaml::from_str(&text(&out.stdout))
            .unwrap_or_else(|e| panic!("{command} printed no JSON: {e}\n{}", text(&out.stdout)));
        assert_eq!(shape(&printed), shape(&documented), "{command}");
        assert_eq!(printed["schema_version"], serde_yaml::Value::from(1));
        examples += 1;
    }
    assert_eq!(examples, 2);
}

/// `add-db --no-runbook`: the diff alone on stdout; the runbook is `runbook NAME`'s.
#[test]
fn add_db_no_runbook_prints_the_diff_alone() {
    let work = sample_copy("cli-no-runbook");
    let out = run(
        &work,
        &["add-db", "newdb", "--env", "idfdev", "--no-runbook"],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(stdout.contains("+  newdb_db:"), "{stdout}");
    assert!(stdout.contains("Wrote 5 files"), "{stdout}");
    assert!(!stdout.contains("# Runbook"), "{stdout}");
    let runbook = run(&work, &["runbook", "newdb", "--env", "idfdev"]);
    assert!(text(&runbook.stdout).starts_with("# Runbook: adding the `newdb` database"));
}

/// `--new-only` in the split layout: the charts repository is compared with its own
/// upstream, so a new mistake there is reported (and an old one is not).
#[test]
fn check_new_only_judges_the_charts_repository_against_its_upstream() {
    let work = deployment_with_an_old_finding("cli-new-only-charts");
    let charts = work.join("charts");
    git(&charts, &["init", "-q", "-b", "main"]);
    git(&charts, &["add", "-A"]);
    git(&charts, &["commit", "-qm", "published"]);
    git(&work, &["init", "-q", "--bare", "charts.git"]);
    git(&charts, &["remote", "add", "origin", "../charts.git"]);
    git(&charts, &["push", "-q", "-u", "origin", "main"]);
    let out = run(&work, &["check", "--new-only"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    // The narrativelog block now reads a key nothing makes.
    let template = charts.join("charts/postgres/templates/deployment.yaml");
    let before = std::fs::read_to_string(&template).unwrap();
    let broken = before.replace("key: narrativelog_password", "key: narrativelogx_password");
    assert_ne!(before, broken);
    std::fs::write(&template, broken).unwrap();
    let out = run(&work, &["check", "--new-only"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("templates/deployment.yaml"), "{stdout}");
    assert!(stdout.contains("narrativelogx_password"), "{stdout}");
    assert!(!stdout.contains("oldbad_db"), "{stdout}");
}
