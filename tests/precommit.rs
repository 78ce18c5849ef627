//! The shipped pre-commit hook (`pre-commit-hook.yaml`), run by the real
//! `pre-commit` framework in a scratch deployment repository: a commit that leaves
//! a password ungenerated is blocked with the finding printed; a consistent one
//! passes. The scratch repository reaches this workspace the way an operator's
//! does: a `.cargo/config.toml` alias with `--manifest-path`, and an `xtask.toml`
//! at its root.

mod common;

use common::*;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

fn run(dir: &Path, program: &str, args: &[&str], home: &Path) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("PRE_COMMIT_HOME", home.join("pre-commit-home"))
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .env("GIT_CONFIG_GLOBAL", home.join("gitconfig"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("GIT_DIR")
        .env_remove("GIT_INDEX_FILE")
        .env_remove("GIT_WORK_TREE")
        .output()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"))
}

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn the_hook_blocks_an_ungenerated_password_and_passes_a_consistent_commit() {
    let probe = Command::new("pre-commit").arg("--version").output();
    if probe.is_err() && std::env::var_os("CI").is_none() {
        eprintln!("skipped: `pre-commit` is not installed (bash .ci/run installs it)");
        return;
    }
    let work = scratch("precommit");
    copy_tree(&root().join("tests/fixtures/check/split"), &work);
    let repo = work.join("phalanx");
    fs::write(
        work.join("gitconfig"),
        "[init]\n\tdefaultBranch = main\n[commit]\n\tgpgsign = false\n",
    )
    .unwrap();
    fs::create_dir_all(repo.join(".cargo")).unwrap();
    fs::write(
        repo.join(".cargo/config.toml"),
        format!(
            "[alias]\nxtask = \"run --quiet --manifest-path {} --package xtask --\"\n",
            root().join("Cargo.toml").display()
        ),
    )
    .unwrap();
    fs::write(
        repo.join("xtask.toml"),
        "phalanx = \".\"\ncharts = \"../charts\"\n",
    )
    .unwrap();
    fs::copy(
        root().join("pre-commit-hook.yaml"),
        repo.join(".pre-commit-config.yaml"),
    )
    .unwrap();

    ok(&run(&repo, "git", &["init", "-q"], &work), "git init");
    ok(
        &run(&repo, "pre-commit", &["install"], &work),
        "pre-commit install",
    );
    ok(&run(&repo, "git", &["add", "."], &work), "git add");
    ok(
        &run(
            &repo,
            "git",
            &["commit", "-q", "-m", "a consistent deployment"],
            &work,
        ),
        "the consistent commit",
    );

    // A values entry whose password nothing generates: blocked, finding printed.
    let values = repo.join("services/postgres/values-summit.yaml");
    let text_before = fs::read_to_string(&values).unwrap();
    let added = text_before.replace(
        "postgres:\n",
        "postgres:\n  narrativelog_db:\n    user: \"narrativelog\"\n    db: \"narrativelog\"\n",
    );
    fs::write(&values, &added).unwrap();
    let generator = repo.join("installer/generate_secrets.py");
    let without = fs::read_to_string(&generator)
        .unwrap()
        .replace("        self._set_generated(\n            \"postgres\", \"narrativelog_password\", secrets.token_hex(32)\n        )\n", "");
    fs::write(&generator, without).unwrap();
    ok(&run(&repo, "git", &["add", "."], &work), "git add");
    let out = run(
        &repo,
        "git",
        &["commit", "-q", "-m", "narrativelog in summit"],
        &work,
    );
    let shown = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(!out.status.success(), "the commit went through:\n{shown}");
    assert!(
        shown.contains(
            "charts/postgres/templates/deployment.yaml:62: error[password-not-generated]: the block for \
             `narrativelog_db` reads the secret key `narrativelog_password`"
        ),
        "{shown}"
    );
    assert!(shown.contains("1 error, 0 warnings"), "{shown}");

    // Put the password back: the commit passes.
    let restored = fs::read_to_string(
        root().join("tests/fixtures/check/split/phalanx/installer/generate_secrets.py"),
    )
    .unwrap();
    fs::write(&generator, restored).unwrap();
    ok(&run(&repo, "git", &["add", "."], &work), "git add");
    let out = run(
        &repo,
        "git",
        &["commit", "-q", "-m", "narrativelog in summit"],
        &work,
    );
    ok(&out, "the consistent commit");
    let log = run(&repo, "git", &["log", "--oneline"], &work);
    assert_eq!(text(&log.stdout).lines().count(), 2);

    // A commit that touches no managed file does not run the hook.
    fs::write(repo.join("README.md"), "notes\n").unwrap();
    ok(&run(&repo, "git", &["add", "README.md"], &work), "git add");
    let out = run(&repo, "git", &["commit", "-m", "notes"], &work);
    ok(&out, "an unrelated commit");
    let shown = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(shown.contains("(no files to check)Skipped"), "{shown}");
}
