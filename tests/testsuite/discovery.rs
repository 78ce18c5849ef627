//! Which repositories a command works on, from where it is run: inside a deployment
//! repository without any `xtask.toml`, inside a git repository that is not one,
//! anywhere else, and with `--phalanx`. Scratch trees live in the system's temporary
//! folder, outside this workspace, as an operator's repositories do; the workspace's
//! `sample/` must come out byte-identical every time.

use crate::common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A fresh folder outside the workspace (so no `xtask.toml` of ours is above it).
fn outside(name: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("xtask-discovery-{}", std::process::id()))
        .join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let dir = dir.canonicalize().unwrap();
    assert!(
        !dir.starts_with(root()),
        "the temporary folder must be outside the workspace"
    );
    assert!(
        dir.ancestors().all(|d| !d.join("xtask.toml").exists()),
        "{}: an xtask.toml above the temporary folder would be used",
        dir.display()
    );
    dir
}

/// The binary without `--quiet`, so that stderr carries the line naming the repositories.
fn run(cwd: &Path, args: &[&str]) -> Output {
    xtask_command(cwd)
        .args(args)
        .output()
        .expect("the xtask binary runs")
}

/// A split deployment (`phalanx/` and a sibling `charts/`, copied from the sample)
/// whose generator no longer makes `narrativelog_password`.
fn split_with_a_mistake(work: &Path) {
    copy_tree(&root().join("sample"), work);
    let generator = work.join("phalanx/installer/generate_secrets.py");
    let text = fs::read_to_string(&generator).unwrap();
    let planted = text.replace(
        "        self._set_generated(\n            \"postgres\", \"narrativelog_password\", secrets.token_hex(32)\n        )\n",
        "",
    );
    assert_ne!(
        planted, text,
        "the sample's generator changed: update the test"
    );
    fs::write(&generator, planted).unwrap();
}

fn using_line(work: &Path) -> String {
    format!(
        "using phalanx {} (split layout), charts {}\n",
        work.join("phalanx").display(),
        work.join("charts").display()
    )
}

#[test]
fn inside_a_deployment_without_xtask_toml_every_command_acts_on_it() {
    let sample = read_tree(&root().join("sample"));
    let work = outside("inside");
    split_with_a_mistake(&work);
    let cwd = work.join("phalanx/services/postgres");

    let out = run(&cwd, &["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), using_line(&work));
    // The path is relative to the current folder, so an editor opens it from here.
    assert!(
        text(&out.stdout).starts_with(
            "../../../charts/charts/postgres/templates/deployment.yaml:62: error[password-not-generated]: \
             the block for `narrativelog_db` reads the secret key `narrativelog_password`"
        ),
        "{}",
        text(&out.stdout)
    );

    let out = run(&cwd, &["list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), using_line(&work));
    assert!(text(&out.stdout).contains("narrativelog"));

    let out = run(&cwd, &["add-db", "exposurelog", "--env", "base"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).starts_with(&using_line(&work)));
    let values =
        fs::read_to_string(work.join("phalanx/services/postgres/values-base.yaml")).unwrap();
    assert!(values.contains("exposurelog_db"), "{values}");
    let template =
        fs::read_to_string(work.join("charts/charts/postgres/templates/deployment.yaml")).unwrap();
    assert!(template.contains("VRO_DB_EXPOSURELOG"), "{template}");

    assert!(
        read_tree(&root().join("sample")) == sample,
        "sample/ changed"
    );
}

#[test]
fn options_name_the_repositories_before_or_after_the_command() {
    let work = outside("flags");
    copy_tree(&root().join("sample"), &work.join("deploy"));
    let deploy = work.join("deploy");
    // A relative --phalanx is printed absolute; the sibling charts repository is found.
    for args in [
        &["--phalanx", "deploy/phalanx", "list"][..],
        &["list", "--phalanx", "deploy/phalanx"][..],
    ] {
        let out = run(&work, args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert_eq!(text(&out.stderr), using_line(&deploy), "{args:?}");
    }
    // --quiet, before or after the command word, silences the line and nothing else.
    for args in [&["--quiet", "list"][..], &["list", "--quiet"][..]] {
        let out = run(&deploy.join("phalanx"), args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert_eq!(text(&out.stderr), "", "{args:?}");
        assert!(text(&out.stdout).contains("narrativelog"));
    }
    // --charts elsewhere replaces the sibling.
    fs::rename(deploy.join("charts"), work.join("elsewhere")).unwrap();
    let out = run(
        &deploy.join("phalanx"),
        &["list", "--charts", "../../elsewhere"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        format!(
            "using phalanx {} (split layout), charts {}\n",
            deploy.join("phalanx").display(),
            work.join("elsewhere").display()
        )
    );
}

#[test]
fn xtask_toml_above_the_current_folder_names_the_repositories() {
    let work = outside("toml");
    copy_tree(&root().join("sample"), &work.join("repos"));
    fs::write(
        work.join("xtask.toml"),
        "phalanx = \"repos/phalanx\"\ncharts = \"repos/charts\"\n",
    )
    .unwrap();
    fs::create_dir_all(work.join("notes")).unwrap();
    let out = run(&work.join("notes"), &["list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), using_line(&work.join("repos")));

    // Inside this workspace, its own xtask.toml names the sample.
    let out = run(&root().join("xtask/src"), &["list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), using_line(&root().join("sample")));
}

#[test]
fn xtask_toml_without_charts_finds_the_charts_repository_beside_the_deployment() {
    let work = outside("toml-no-charts");
    copy_tree(&root().join("sample"), &work.join("repos"));
    fs::write(work.join("xtask.toml"), "phalanx = \"repos/phalanx\"\n").unwrap();
    // As with --phalanx, or from inside the repository: `../charts` holds the chart.
    let out = run(&work, &["list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), using_line(&work.join("repos")));
}

#[test]
fn a_git_repository_that_is_not_a_deployment_is_refused_and_nothing_is_written() {
    let sample = read_tree(&root().join("sample"));
    let own_config = fs::read(root().join("xtask.toml")).unwrap();
    let work = outside("not-a-deployment");
    let repo = work.join("website");
    fs::create_dir_all(repo.join("docs")).unwrap();
    fs::write(repo.join("README.md"), "# A website\n").unwrap();
    git(&repo, &["init", "--quiet"]);
    let before = read_tree(&work);
    for args in [
        &["check"][..],
        &["list"][..],
        &["add-db", "exposurelog", "--env", "base"][..],
        &["runbook", "narrativelog"][..],
    ] {
        let out = run(&repo.join("docs"), args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "{} is a git repository but not a deployment repository",
                repo.display()
            )) && stderr.contains("--phalanx DIR")
                && stderr.contains("cargo xtask init --phalanx DIR"),
            "{args:?}: {stderr}"
        );
        assert!(text(&out.stdout).is_empty(), "{args:?}");
    }
    // A plain folder outside any repository is refused the same way.
    let out = run(&work, &["list"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("is not inside a deployment repository"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        read_tree(&work) == before,
        "a file changed under {}",
        work.display()
    );
    assert!(
        read_tree(&root().join("sample")) == sample,
        "sample/ changed"
    );
    assert_eq!(fs::read(root().join("xtask.toml")).unwrap(), own_config);
}

#[test]
fn in_a_github_pull_request_job_base_defaults_to_the_target_branch() {
    let work = outside("base-ref");
    copy_tree(&root().join("sample"), &work);
    let check = |base_ref: &str| {
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .args(["--quiet", "check"])
            .current_dir(work.join("phalanx"))
            .env("GITHUB_BASE_REF", base_ref)
            .output()
            .expect("the xtask binary runs")
    };
    let charts = work.join("charts");
    let git = |args: &[&str]| git(&charts, args);
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-qm", "chart"]);
    // The pull request's target branch as a fetched remote branch of the charts
    // repository; then a template change without a version bump.
    git(&["update-ref", "refs/remotes/origin/release", "HEAD"]);
    let template = charts.join("charts/postgres/templates/deployment.yaml");
    let changed = fs::read_to_string(&template).unwrap() + "# changed\n";
    fs::write(&template, changed).unwrap();
    let out = check("release");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("chart-not-bumped"),
        "{}",
        text(&out.stdout)
    );
    // A target branch the charts repository does not have (a phalanx pull request
    // to a branch that exists only there): the rule is skipped with a note, and
    // the other rules still decide the status.
    let out = check("feature-only-in-phalanx");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(
            "chart-not-bumped is not checked: origin/feature-only-in-phalanx (from GITHUB_BASE_REF)"
        ),
        "{}",
        text(&out.stderr)
    );
    // Given explicitly, a missing revision is bad input.
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args([
            "--quiet",
            "check",
            "--base",
            "origin/feature-only-in-phalanx",
        ])
        .current_dir(work.join("phalanx"))
        .env_remove("GITHUB_BASE_REF")
        .output()
        .expect("the xtask binary runs");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let out = check("");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn init_inside_a_deployment_without_xtask_toml_writes_it_at_the_repository_root() {
    let work = outside("init");
    copy_tree(&root().join("sample"), &work);
    let out = run(
        &work.join("phalanx/services/postgres"),
        &["init", "--phalanx", "../..", "--charts", "../../../charts"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        fs::read_to_string(work.join("phalanx/xtask.toml")).unwrap(),
        "phalanx = \".\"\ncharts = \"../charts\"\n"
    );
    // The file now names the repositories from anywhere below it.
    let out = run(&work.join("phalanx/installer"), &["list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), using_line(&work));
}
