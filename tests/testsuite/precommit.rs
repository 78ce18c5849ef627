//! The pre-commit hooks, run by the real `pre-commit` framework in scratch
//! deployment repositories: a commit that leaves a password ungenerated is blocked
//! with the finding printed; a consistent one passes.
//!
//! - The remote hook (`.pre-commit-hooks.yaml`): the deployment's config names only
//!   `repo:` (a scratch clone of this workspace's files), `rev:` and the hook id;
//!   pre-commit builds `pgdb` itself. That build happens once: the clone's commit is
//!   reproducible and `PRE_COMMIT_HOME` persists under the target folder, so a later
//!   run of unchanged sources reuses it.
//! - The local snippet (`pre-commit-hook.yaml`): the deployment reaches this
//!   workspace through a `.cargo/config.toml` alias with `--manifest-path`.
//!
//! Neither deployment has an `xtask.toml`: the hook finds the repository it runs in,
//! and the charts repository beside it.

use crate::common::*;
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

/// `pre-commit`, or a failure saying how to get it.
fn require_pre_commit() {
    let probe = Command::new("pre-commit").arg("--version").output();
    assert!(
        probe.is_ok_and(|o| o.status.success()),
        "`pre-commit` is not on PATH: run `bash .ci/run` (it installs pre-commit into \
         target/venv and puts target/venv/bin first on PATH)"
    );
}

/// A scratch split deployment (`phalanx/` and `charts/` beside it) and a git config
/// for the commits, under `work`.
fn deployment(work: &Path) -> std::path::PathBuf {
    copy_tree(&root().join("tests/fixtures/check/split"), work);
    fs::write(
        work.join("gitconfig"),
        "[init]\n\tdefaultBranch = main\n[commit]\n\tgpgsign = false\n",
    )
    .unwrap();
    work.join("phalanx")
}

#[test]
fn the_remote_hook_installs_from_this_repository_and_blocks_a_bad_commit() {
    require_pre_commit();
    let work = scratch("precommit-remote");
    let repo = deployment(&work);

    // This workspace's files (tracked and new, not ignored), committed in a clone.
    let home = Path::new(env!("CARGO_TARGET_TMPDIR")).join("precommit-remote-home");
    fs::create_dir_all(&home).unwrap();
    fs::copy(work.join("gitconfig"), home.join("gitconfig")).unwrap();
    let hooks_repo = Path::new(env!("CARGO_TARGET_TMPDIR")).join("precommit-hooks-repo");
    let _ = fs::remove_dir_all(&hooks_repo);
    let files = run(
        &root(),
        "git",
        &[
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ],
        &home,
    );
    ok(&files, "git ls-files");
    for name in text(&files.stdout).split('\0').filter(|n| !n.is_empty()) {
        let from = root().join(name);
        if from.is_file() {
            fs::create_dir_all(hooks_repo.join(name).parent().unwrap()).unwrap();
            fs::copy(&from, hooks_repo.join(name)).unwrap();
        }
    }
    ok(&run(&hooks_repo, "git", &["init", "-q"], &home), "git init");
    ok(&run(&hooks_repo, "git", &["add", "."], &home), "git add");
    let commit = Command::new("git")
        .args(["commit", "-q", "-m", "the hooks"])
        .current_dir(&hooks_repo)
        .env("GIT_CONFIG_GLOBAL", home.join("gitconfig"))
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .env("GIT_AUTHOR_DATE", "2025-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2025-01-01T00:00:00Z")
        .output()
        .unwrap();
    ok(&commit, "git commit");
    let rev = run(&hooks_repo, "git", &["rev-parse", "HEAD"], &home);
    ok(&rev, "git rev-parse");

    // The deployment's whole configuration: repo, rev, hook id.
    fs::write(
        repo.join(".pre-commit-config.yaml"),
        format!(
            "repos:\n  - repo: {}\n    rev: {}\n    hooks:\n      - id: pgdb-check\n",
            hooks_repo.display(),
            text(&rev.stdout).trim()
        ),
    )
    .unwrap();
    blocks_a_bad_commit_and_passes_a_good_one(&repo, &home);
    // Drop the builds of earlier sources from the persistent cache.
    ok(&run(&repo, "pre-commit", &["gc"], &home), "pre-commit gc");
}

#[test]
fn the_local_snippet_blocks_an_ungenerated_password_and_passes_a_consistent_commit() {
    require_pre_commit();
    let work = scratch("precommit");
    let repo = deployment(&work);
    fs::create_dir_all(repo.join(".cargo")).unwrap();
    fs::write(
        repo.join(".cargo/config.toml"),
        format!(
            "[alias]\nxtask = \"run --quiet --manifest-path {} --package xtask --bin xtask --\"\n",
            root().join("Cargo.toml").display()
        ),
    )
    .unwrap();
    fs::copy(
        root().join("pre-commit-hook.yaml"),
        repo.join(".pre-commit-config.yaml"),
    )
    .unwrap();
    blocks_a_bad_commit_and_passes_a_good_one(&repo, &work);
}

/// Installs the hook in `repo`, commits it, then proves the hook refuses a commit
/// with a password nothing generates and passes the repaired one. `home` holds the
/// git config and `pre-commit-home`.
fn blocks_a_bad_commit_and_passes_a_good_one(repo: &Path, home: &Path) {
    let (repo, work) = (repo.to_path_buf(), home.to_path_buf());
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

/// Adds a `NAME_db` entry (which no template block has) to `values`.
fn add_entry(values: &Path, name: &str) {
    let before = fs::read_to_string(values).unwrap();
    let entry = format!("postgres:\n  {name}_db:\n    user: \"{name}\"\n    db: \"{name}\"\n");
    fs::write(values, before.replacen("postgres:\n", &entry, 1)).unwrap();
}

/// A scratch split deployment with the local snippet installed, committed with an old
/// mistake (`oldbad_db`) and pushed to a bare "remote" that `main` tracks.
fn deployment_with_an_upstream(work: &Path) -> std::path::PathBuf {
    let repo = deployment(work);
    fs::create_dir_all(repo.join(".cargo")).unwrap();
    fs::write(
        repo.join(".cargo/config.toml"),
        format!(
            "[alias]\nxtask = \"run --quiet --manifest-path {} --package xtask --bin xtask --\"\n",
            root().join("Cargo.toml").display()
        ),
    )
    .unwrap();
    fs::copy(
        root().join("pre-commit-hook.yaml"),
        repo.join(".pre-commit-config.yaml"),
    )
    .unwrap();
    add_entry(&repo.join("services/postgres/values-base.yaml"), "oldbad");
    let git_ok =
        |dir: &Path, args: &[&str]| ok(&run(dir, "git", args, work), &format!("git {args:?}"));
    git_ok(&repo, &["init", "-q"]);
    git_ok(&repo, &["add", "."]);
    git_ok(
        &repo,
        &["commit", "-q", "-m", "deployed, with an old mistake"],
    );
    git_ok(work, &["init", "-q", "--bare", "remote.git"]);
    git_ok(&repo, &["remote", "add", "origin", "../remote.git"]);
    git_ok(&repo, &["push", "-q", "-u", "origin", "main"]);
    ok(
        &run(&repo, "pre-commit", &["install"], work),
        "pre-commit install",
    );
    repo
}

/// Issue 21, item 2: the hook judges the commit, not the repository's past. The
/// deployment's upstream (a bare "remote") already has a mistake; a harmless commit
/// touching the postgres files passes with the old finding counted, a commit that
/// adds a mistake is blocked showing only that one, and a commit touching only an
/// application's `secrets.yaml` or an environment's values runs the hook.
#[test]
fn the_hook_blocks_new_findings_only_and_runs_for_every_file_check_reads() {
    require_pre_commit();
    let work = scratch("precommit-new-only");
    let repo = deployment_with_an_upstream(&work);
    let values = repo.join("services/postgres/values-base.yaml");
    let git_ok = |args: &[&str]| ok(&run(&repo, "git", args, &work), &format!("git {args:?}"));
    let commit = |message: &str| {
        git_ok(&["add", "-A"]);
        let out = run(&repo, "git", &["commit", "-m", message], &work);
        let shown = format!("{}{}", text(&out.stdout), text(&out.stderr));
        (out.status.success(), shown)
    };

    // A harmless edit of a postgres values file: the hook runs and passes (pre-commit
    // shows a passing hook's output only with --verbose).
    let before = fs::read_to_string(&values).unwrap();
    fs::write(&values, format!("# The base environment.\n{before}")).unwrap();
    let (passed, shown) = commit("a comment");
    assert!(passed, "blocked by an old finding:\n{shown}");
    assert!(shown.contains("postgres databases agree"), "{shown}");

    // A new mistake: blocked, and only it is shown.
    add_entry(&values, "newbad");
    let (passed, shown) = commit("a new mistake");
    assert!(!passed, "the commit went through:\n{shown}");
    assert!(shown.contains("newbad_db"), "{shown}");
    assert!(!shown.contains("oldbad_db"), "{shown}");
    assert!(
        shown.contains("2 findings already in "),
        "the old ones are counted:\n{shown}"
    );
    fs::write(&values, format!("# The base environment.\n{before}")).unwrap();
    git_ok(&["add", "-A"]);

    // Files outside the postgres folders that the check reads run the hook.
    for file in [
        "applications/gafaelfawr/secrets.yaml",
        "applications/gafaelfawr/values-idfdev.yaml",
        "environments/values-idfdev.yaml",
    ] {
        let path = repo.join(file);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, "# touched\n").unwrap();
        let (passed, shown) = commit(file);
        assert!(passed, "{file}:\n{shown}");
        assert!(
            shown.contains("postgres databases agree") && shown.contains("Passed"),
            "{file}: the hook did not run:\n{shown}"
        );
        assert!(!shown.contains("(no files to check)"), "{file}:\n{shown}");
    }
}
