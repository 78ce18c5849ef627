//! `init` rewrites the repository keys of `xtask.toml` and keeps everything else;
//! the other commands then use what it wrote.

use crate::common::*;
use std::fs;

#[test]
fn init_keeps_comments_and_other_keys() {
    let work = scratch("init-keeps");
    copy_tree(
        &root().join("tests/fixtures/layouts/intree"),
        &work.join("deploy"),
    );
    fs::create_dir_all(work.join("charts-repo")).unwrap();
    fs::write(
        work.join("xtask.toml"),
        "# Our deployment.\nphalanx = \"old\" # moved in May\nlocal_env = \"summit\"\n\n[vault_paths]\n# the old cluster\nidfint = \"secret/k8s_operator/x/postgres\"\n",
    )
    .unwrap();
    let out = xtask(
        &work,
        &[
            "init",
            "--phalanx",
            "deploy/phalanx",
            "--vault-addr",
            "https://vault.example.org",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let written = fs::read_to_string(work.join("xtask.toml")).unwrap();
    assert_eq!(
        written,
        "# Our deployment.\nphalanx = \"deploy/phalanx\" # moved in May\nlocal_env = \"summit\"\nvault_addr = \"https://vault.example.org\"\n\n[vault_paths]\n# the old cluster\nidfint = \"secret/k8s_operator/x/postgres\"\n"
    );

    // The other commands now read the deployment and the Vault address from it.
    let out = xtask(&work, &["runbook", "vo_cutouts"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let runbook = text(&out.stdout);
    assert!(
        runbook.contains(" https://vault.example.org\n"),
        "{runbook}"
    );
    assert!(runbook.contains("(layout in-tree;"), "{runbook}");

    let out = xtask(
        &work,
        &[
            "init",
            "--phalanx",
            "deploy/phalanx",
            "--charts",
            "charts-repo",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let written = fs::read_to_string(work.join("xtask.toml")).unwrap();
    assert!(written.contains("charts = \"charts-repo\""), "{written}");
    assert!(
        written.contains("vault_addr = \"https://vault.example.org\""),
        "{written}"
    );
}

#[test]
fn init_writes_only_what_it_is_given() {
    let work = scratch("init-only-given");
    copy_tree(
        &root().join("tests/fixtures/layouts/intree"),
        &work.join("deploy"),
    );
    // An empty file here, so the workspace's own xtask.toml above is not the one found.
    fs::write(work.join("xtask.toml"), "").unwrap();
    let out = xtask(&work, &["init", "--phalanx", "deploy/phalanx"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        fs::read_to_string(work.join("xtask.toml")).unwrap(),
        "phalanx = \"deploy/phalanx\"\n"
    );
    // The runbook still has a Vault address: the built-in default, unwritten.
    let out = xtask(&work, &["runbook", "vo_cutouts"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(" https://vault.lsst.codes\n"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn init_refuses_a_missing_folder_and_changes_nothing() {
    let work = scratch("init-missing");
    let original = "phalanx = \"p\"\n";
    fs::write(work.join("xtask.toml"), original).unwrap();
    let out = xtask(&work, &["init", "--phalanx", "no/such/dir"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no/such/dir"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        fs::read_to_string(work.join("xtask.toml")).unwrap(),
        original
    );
    let out = xtask(&work, &["init"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--phalanx"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn init_keeps_charts_without_charts_and_writes_paths_from_the_file_folder() {
    let work = scratch("init-relative");
    copy_tree(&root().join("sample"), &work.join("repos"));
    fs::create_dir_all(work.join("config/sub")).unwrap();
    fs::write(
        work.join("config/xtask.toml"),
        "phalanx = \"old\"\n# The charts repository, beside the deployment.\ncharts = \"../repos/charts\"\n",
    )
    .unwrap();
    // Run from a subfolder: the paths given are relative to it, the paths written
    // relative to the file's folder; `charts` and its comment stay as they were, and
    // no Vault address is written when none is given.
    let out = xtask(
        &work.join("config/sub"),
        &["init", "--phalanx", "../../repos/phalanx"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        fs::read_to_string(work.join("config/xtask.toml")).unwrap(),
        "phalanx = \"../repos/phalanx\"\n# The charts repository, beside the deployment.\ncharts = \"../repos/charts\"\n"
    );
    let out = xtask(&work.join("config/sub"), &["list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("narrativelog"));

    let out = xtask(
        &work.join("config/sub"),
        &["init", "--phalanx", "../../repos/phalanx", "--charts", "."],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(fs::read_to_string(work.join("config/xtask.toml"))
        .unwrap()
        .contains("# The charts repository, beside the deployment.\ncharts = \"sub\"\n"),);
}
