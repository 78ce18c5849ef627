//! The runbook beyond its whole-text cases (`tests/cases/runbook-*`): refusals, the
//! script's phases, warnings, what is deployed, the helpers file, and what pasted blocks
//! do when bash runs them.

use crate::common::*;
use std::fs;
use std::path::Path;
use std::process::Command;

#[test]
fn root_password_is_not_rotated() {
    let work = sample_copy("runbook-root");
    let out = xtask_on(&work, &["runbook", "root", "--rotate"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("root_password cannot be rotated this way"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn the_script_refuses_two_phases() {
    let work = sample_copy("runbook-two-phases");
    let out = xtask_on(
        &work,
        &["runbook", "jupyterhub", "--env", "base", "--script"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let file = work.join("steps.sh");
    fs::write(&file, &out.stdout).unwrap();
    // Two phases used to run only the last one, silently.
    let run = Command::new("bash")
        .arg(&file)
        .args(["before-merge", "after-merge"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("one phase at a time"), "{stderr}");
    assert!(!stderr.contains("== "), "a step ran: {stderr}");
}

#[test]
fn a_missing_vault_path_is_warned_about_once_per_environment() {
    let work = scratch("runbook-warn-once");
    copy_tree(
        &root().join("tests/fixtures/layouts/applications-secrets-sorted"),
        &work,
    );
    fs::create_dir_all(work.join("phalanx/applications/exposurelog")).unwrap();
    let repo = repo_args(&work);
    let run = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(repo.iter().map(String::as_str));
        let out = xtask(&work, &all);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stderr)
    };
    run(&[
        "add-db",
        "newapp",
        "--env",
        "idfdev",
        "--app",
        "exposurelog",
    ]);
    // The rotation reads the path twice (the new value, the application's copy).
    let stderr = run(&["runbook", "newapp", "--env", "idfdev", "--rotate"]);
    assert_eq!(
        stderr.matches("idfdev: no Vault path").count(),
        1,
        "{stderr}"
    );
}

#[test]
fn an_environment_without_the_database_is_warned_about() {
    let work = sample_copy("runbook-env-without-db");
    let repo = repo_args(&work);
    let run = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(repo.iter().map(String::as_str));
        let out = xtask(&work, &all);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stderr)
    };
    // idfdev has no narrativelog_db: its steps would sync postgres for nothing and then
    // fail to find the database. Said before the steps, which stay as asked.
    for mode in [&[][..], &["--rotate"][..]] {
        let mut args = vec![
            "runbook",
            "narrativelog",
            "--env",
            "base",
            "--env",
            "idfdev",
        ];
        args.extend_from_slice(mode);
        let stderr = run(&args);
        assert!(
            stderr
                .contains("idfdev: services/postgres/values-idfdev.yaml has no `narrativelog_db`"),
            "{mode:?}: {stderr}"
        );
        assert!(!stderr.contains("base: "), "{mode:?}: {stderr}");
    }
    // Removing: the entry is gone from the values files by then; nothing to say.
    let stderr = run(&["runbook", "narrativelog", "--env", "idfdev", "--remove"]);
    assert!(!stderr.contains("has no"), "{stderr}");
}

#[test]
fn the_text_form_says_at_once_when_pasted_into_another_shell_than_bash() {
    let work = sample_copy("runbook-bash-only");
    let out = xtask_on(&work, &["runbook", "jupyterhub"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let runbook = text(&out.stdout);
    // The helpers use `read -rsp` and `printf -v`: zsh reads `-p` as a coprocess.
    // The line that loads the helpers file, whose first lines are the check.
    let guard = runbook
        .lines()
        .find(|l| l.starts_with(". "))
        .unwrap_or_else(|| panic!("no line loads the helpers:\n{runbook}"));
    let pasted = |shell: &str| {
        let out = Command::new(shell).args(["-c", guard]).output().unwrap();
        text(&out.stderr)
    };
    assert!(pasted("sh").contains("These steps need bash"), "{guard}");
    assert_eq!(pasted("bash"), "", "{guard}");
}

#[test]
fn the_drop_block_does_nothing_without_its_dump() {
    let work = sample_copy("runbook-drop-needs-dump");
    let out = xtask_on(
        &work,
        &["runbook", "narrativelog", "--env", "base", "--remove"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let runbook = text(&out.stdout);
    let helpers = &runbook[..runbook.find("\n# === ").expect("a phase")];
    let drop = runbook
        .split("\n\n")
        .find(|b| b.starts_with("## base: Drop"))
        .unwrap_or_else(|| panic!("no drop block:\n{runbook}"));
    // Pasted after a dump that failed (or was skipped), and confirmed: no kubectl runs
    // (there is none on this PATH: a call would say `command not found`).
    let shell = format!("{helpers}\nKUBE_CONTEXT_base=ctx\n{drop}\n");
    assert!(
        drop.contains("$PGDB_DUMP_DIR/narrativelog-base.dump"),
        "{drop}"
    );
    let mut child = Command::new("/bin/bash")
        .args(["-c", &shell])
        .current_dir(&work)
        .env("PATH", "/nonexistent")
        .env("PGDB_DUMP_DIR", "/dumps")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"y\n").unwrap();
    let ran = child.wait_with_output().unwrap();
    let stderr = text(&ran.stderr);
    assert!(
        stderr.contains("There is no dump /dumps/narrativelog-base.dump"),
        "{stderr}"
    );
    assert!(!stderr.contains("command not found"), "{stderr}");
}

#[test]
fn an_environment_name_is_never_run_as_shell_code() {
    let work = sample_copy("runbook-env-injection");
    let values = work.join("phalanx/services/postgres");
    let env = "x'y $(touch pwned)";
    fs::copy(
        values.join("values-base.yaml"),
        values.join(format!("values-{env}.yaml")),
    )
    .unwrap();
    // A file name that is no environment name is skipped (with a warning), so the
    // name never reaches a shell line.
    for args in [
        &["runbook", "jupyterhub", "--env", env][..],
        &["runbook", "jupyterhub", "--env", env, "--script"],
    ] {
        let out = xtask_on(&work, args);
        assert_refused(&out, 2, "skipped, not an environment", &format!("{args:?}"));
        assert!(text(&out.stdout).is_empty(), "{}", text(&out.stdout));
    }
    let out = xtask_on(&work, &["runbook", "jupyterhub", "--script"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).contains("touch pwned"));
    let file = work.join("steps.sh");
    fs::write(&file, &out.stdout).unwrap();
    assert_bash_syntax(&file, "");
    assert!(!work.join("pwned").exists());
}

#[test]
fn a_vault_path_with_a_line_break_is_refused() {
    let work = sample_copy("runbook-path-newline");
    let repo = repo_args(&work);
    let run = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(repo.iter().map(String::as_str));
        xtask(&work, &all)
    };
    let out = run(&["add-db", "newdb", "--env", "base", "--app", "nublado"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // A Vault path with a newline (a YAML escape): quoted, it spans two lines, so a
    // pasted block would no longer end where it seems to, and in a note (a comment)
    // its second line used to be a command.
    let values = work.join("phalanx/services/postgres/values-base.yaml");
    let content = fs::read_to_string(&values).unwrap().replace(
        "path: \"secret/k8s_operator/base-lsp.lsst.codes/postgres\"",
        "path: \"secret/k8s_operator/base/postgres\\ntouch PWNED\"",
    );
    fs::write(&values, content).unwrap();
    for script in [false, true] {
        let mut args = vec!["runbook", "newdb", "--env", "base"];
        if script {
            args.push("--script");
        }
        let out = run(&args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(
                "base: the Vault path \"secret/k8s_operator/base/postgres\\ntouch PWNED\""
            ),
            "{stderr}"
        );
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn one_configured_context_for_two_environments_is_refused() {
    let work = sample_copy("runbook-same-context");
    fs::write(
        work.join("xtask.toml"),
        "[kube_contexts]\nbase = \"shared\"\nidfdev = \"shared\"\n",
    )
    .unwrap();
    let before = read_tree(&work);
    let repo = repo_args(&work);
    for args in [
        &["runbook", "jupyterhub", "--env", "base", "--env", "idfdev"][..],
        &["add-db", "newdb", "--env", "base", "--env", "idfdev"][..],
    ] {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(repo.iter().map(String::as_str));
        let out = xtask(&work, &all);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(
                "xtask.toml [kube_contexts]: base and idfdev have the same context \"shared\""
            ),
            "{args:?}: {stderr}"
        );
        // Refused before anything is shown: no diff of edits that will not be made.
        assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out.stdout));
    }
    // add-db builds its runbook before it writes anything.
    assert!(read_tree(&work) == before, "a file changed");
    // One of them alone has its own cluster: no refusal.
    let mut all = vec!["runbook", "jupyterhub", "--env", "base"];
    all.extend(repo.iter().map(String::as_str));
    let out = xtask(&work, &all);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// Issue 21, item 1: what is deployed is the remote's default branch, never local
/// HEAD. A database committed locally (for the pull request) still gets every step;
/// once the remote has it, only the verification; `--deployed REV` names another.
#[test]
fn what_is_deployed_comes_from_the_upstream_not_local_head() {
    let work = sample_copy("runbook-upstream");
    let phalanx = work.join("phalanx");
    let repo = repo_args(&work);
    let run = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(repo.iter().map(String::as_str));
        xtask(&work, &all)
    };
    let runbook = |args: &[&str]| {
        let out = run(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    // Not git at all: every step (each with its check), and the header says why.
    let text_form = runbook(&["runbook", "jupyterhub", "--env", "idfdev"]);
    assert!(
        text_form.contains("Put jupyterhub_password into Vault where it is absent"),
        "{text_form}"
    );
    assert!(
        text_form.contains("# What is deployed: unknown"),
        "{text_form}"
    );
    // The remote has the deployment without newdb; then newdb is committed locally.
    git_fixed(&phalanx, &["init", "-q"]);
    git_fixed(&phalanx, &["add", "-A"]);
    git_fixed(&phalanx, &["commit", "-qm", "deployed"]);
    git_fixed(&work, &["init", "-q", "--bare", "remote.git"]);
    git_fixed(&phalanx, &["remote", "add", "origin", "../remote.git"]);
    git_fixed(&phalanx, &["push", "-q", "origin", "main"]);
    let out = run(&["add-db", "newdb", "--env", "idfdev"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    git_fixed(&phalanx, &["commit", "-qam", "newdb, for the pull request"]);
    let full = "Put newdb_password into Vault where it is absent";
    // No origin/HEAD (the remote was not cloned): origin/main, which lacks newdb.
    let text_form = runbook(&["runbook", "newdb", "--env", "idfdev"]);
    assert!(
        text_form.contains(full),
        "local HEAD counted as deployed:\n{text_form}"
    );
    assert!(
        text_form.contains("# What is deployed: origin/main (origin/main, commit "),
        "{text_form}"
    );
    // --deployed main: the local branch, which has newdb: only the verification.
    let text_form = runbook(&["runbook", "newdb", "--env", "idfdev", "--deployed", "main"]);
    assert!(!text_form.contains(full), "{text_form}");
    assert!(text_form.contains("this only verifies it"), "{text_form}");
    assert!(
        text_form.contains("# What is deployed: main (--deployed, commit "),
        "{text_form}"
    );
    // Once the remote's default branch has it: only the verification.
    git_fixed(&phalanx, &["push", "-q", "origin", "main"]);
    git_fixed(&phalanx, &["remote", "set-head", "origin", "main"]);
    let text_form = runbook(&["runbook", "newdb", "--env", "idfdev"]);
    assert!(!text_form.contains(full), "{text_form}");
    assert!(
        text_form.contains("# What is deployed: origin/main (origin/HEAD, commit "),
        "{text_form}"
    );
    // A --deployed that is no revision is bad input.
    let out = run(&[
        "runbook",
        "newdb",
        "--env",
        "idfdev",
        "--deployed",
        "nosuchrev",
    ]);
    assert_refused(
        &out,
        2,
        "--deployed nosuchrev: not a revision of",
        "--deployed",
    );
    assert!(out.stdout.is_empty());
}

/// Where the helpers file cannot go (no writable folder, or a folder inside the
/// deployment repository), the text embeds the helpers instead of loading a file.
#[test]
fn the_helpers_are_embedded_where_no_private_file_can_be_written() {
    let work = sample_copy("runbook-helpers-embedded");
    let inside = work.join("phalanx/.cache");
    let args = ["--quiet", "runbook", "jupyterhub", "--env", "base"];
    for (what, cache, home) in [
        (
            "no writable folder",
            Path::new("/proc/none"),
            Path::new("/proc/none"),
        ),
        (
            "inside the repository",
            inside.as_path(),
            Path::new("/proc/none"),
        ),
    ] {
        let out = xtask_command(&work)
            .args(args)
            .args(repo_args(&work))
            .env_remove("XDG_RUNTIME_DIR")
            .env("XDG_CACHE_HOME", cache)
            .env("HOME", home)
            .output()
            .unwrap();
        assert!(out.status.success(), "{what}: {}", text(&out.stderr));
        let runbook = text(&out.stdout);
        assert!(
            runbook.contains("delete_vault_key() {"),
            "{what}:\n{runbook}"
        );
        assert!(
            !runbook.lines().any(|l| l.starts_with(". ")),
            "{what}:\n{runbook}"
        );
    }
    assert!(!inside.exists(), "a folder was made inside the repository");
}
