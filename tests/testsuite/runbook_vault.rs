//! The runbook's script run for real: its Vault phases against an OpenBao dev server
//! (`vault` runs `bao`), traced with strace to prove that no password is ever
//! an argument; and every generated script, for every layout and mode, clean under
//! `shellcheck` and `bash -n`. The kubectl and Argo CD phases need a cluster and are
//! not run here.

use crate::common::openbao::{tool, write_vault_wrapper, OpenBao, ROOT_TOKEN};
use crate::common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const BASE_PATH: &str = "secret/k8s_operator/base-lsp.lsst.codes/postgres";

#[test]
fn a_shim_that_dispatches_on_its_name_runs_as_bao() {
    let work = scratch("runbook-vault-shim");
    let real = tool("bao");
    // A version manager in the style of mise: one program, linked under each
    // tool's name, that runs the tool its own name says.
    let manager = work.join("manager");
    fs::write(
        &manager,
        format!(
            "#!/bin/sh\ncase \"$(basename \"$0\")\" in\n  bao) exec '{}' \"$@\" ;;\n  \
             *) echo \"manager: no tool named $(basename \"$0\")\" >&2; exit 127 ;;\nesac\n",
            real.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&manager, fs::Permissions::from_mode(0o755)).unwrap();
    let shims = work.join("shims");
    fs::create_dir_all(&shims).unwrap();
    std::os::unix::fs::symlink(&manager, shims.join("bao")).unwrap();
    // A symlink named `vault` to the shim is what fails.
    let linked = work.join("linked");
    fs::create_dir_all(&linked).unwrap();
    std::os::unix::fs::symlink(shims.join("bao"), linked.join("vault")).unwrap();
    let out = Command::new(linked.join("vault"))
        .arg("version")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(127), "{}", text(&out.stderr));
    let bin_dir = work.join("bin");
    fs::create_dir_all(&bin_dir).unwrap();
    write_vault_wrapper(&shims.join("bao"), &bin_dir);
    let out = Command::new(bin_dir.join("vault"))
        .arg("version")
        .output()
        .unwrap();
    assert!(
        out.status.success() && text(&out.stdout).contains("OpenBao"),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

fn hex64(value: &str) -> bool {
    value.len() == 64
        && value
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// Every 64-hex-character run in a text.
fn hex_runs(text: &str) -> Vec<String> {
    let mut runs = Vec::new();
    let mut current = String::new();
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_hexdigit() {
            current.push(c);
        } else {
            if current.len() >= 64 {
                runs.push(current.clone());
            }
            current.clear();
        }
    }
    runs
}

/// A scratch copy of the sample whose xtask.toml points the runbook at the dev server.
fn sample_work(name: &str, addr: &str) -> PathBuf {
    let work = sample_copy(name);
    fs::write(
        work.join("xtask.toml"),
        format!("phalanx = \"phalanx\"\ncharts = \"charts\"\nvault_addr = \"{addr}\"\n"),
    )
    .unwrap();
    work
}

/// Writes `runbook ARGS --script` to a file.
fn script(work: &Path, args: &[&str], file: &str) -> PathBuf {
    let mut all = vec!["runbook"];
    all.extend_from_slice(args);
    all.push("--script");
    let out = xtask(work, &all);
    assert!(
        out.status.success(),
        "runbook {args:?}: {}",
        text(&out.stderr)
    );
    let path = work.join(file);
    fs::write(&path, &out.stdout).unwrap();
    path
}

/// Runs a script phase under strace; returns the output and every execve line.
fn run_traced(bao: &OpenBao, work: &Path, script: &Path, args: &[&str]) -> (Output, String) {
    let trace = work.join("trace.txt");
    let _ = fs::remove_file(&trace);
    let out = Command::new(tool("strace"))
        .args(["-f", "-e", "trace=execve", "-s", "4096", "-o"])
        .arg(&trace)
        .arg("bash")
        .arg(script)
        .args(args)
        .current_dir(work)
        .env("PATH", bao.path_env())
        .env("VAULT_TOKEN", ROOT_TOKEN)
        .env_remove("VAULT_ADDR")
        .env_remove("BAO_ADDR")
        .env_remove("BAO_TOKEN")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let trace = fs::read_to_string(&trace).unwrap_or_default();
    (out, trace)
}

fn assert_no_password_in_argv(trace: &str, context: &str) {
    let execs: String = trace
        .lines()
        .filter(|l| l.contains("execve("))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(!execs.is_empty(), "{context}: strace saw no execve");
    let runs = hex_runs(&execs);
    assert!(
        runs.is_empty(),
        "{context}: a password-like value is in an argv: {runs:?}\n{execs}"
    );
}

#[test]
fn vault_phases_run_for_real_and_never_put_a_password_on_argv() {
    tool("strace");
    let work0 = scratch("runbook-vault-server");
    let bao = OpenBao::start(&work0, &work0.join("bin"));
    let work = sample_work("runbook-vault", &bao.addr);
    // Existing values, one with quotes, spaces and a newline (JSON for `kv put -`).
    let existing = concat!(
        r#"{"root_password": "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","#,
        r#" "jupyterhub_password": "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1","#,
        r#" "gafaelfawr_password": "with spaces, quotes ' \" and a newline\n","#,
        r#" "narrativelog_password": "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2"}"#
    );
    let put = bao.vault(&["kv", "put", BASE_PATH, "-"], Some(existing));
    assert!(put.status.success(), "{}", text(&put.stderr));
    // The applications that copy postgres passwords have Vault secrets of their own.
    for app in ["nublado", "gafaelfawr"] {
        let path = BASE_PATH.replace("/postgres", &format!("/{app}"));
        let put = bao.vault(&["kv", "put", &path, "other=kept"], None);
        assert!(put.status.success(), "{}", text(&put.stderr));
    }
    let before = bao.secret(BASE_PATH);

    // add-db, then the runbook's before-merge phase puts the new key into Vault.
    let out = xtask(&work, &["add-db", "exposurelog", "--env", "base"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let add = script(&work, &["exposurelog", "--env", "base"], "add.sh");
    let (out, trace) = run_traced(&bao, &work, &add, &["before-merge"]);
    assert!(
        out.status.success(),
        "before-merge failed:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_no_password_in_argv(&trace, "before-merge");
    let after = bao.secret(BASE_PATH);
    let new = after["exposurelog_password"].as_str();
    assert!(
        hex64(new),
        "not 64 hex characters without a newline: {new:?}"
    );
    for (key, value) in &before {
        assert_eq!(&after[key], value, "{key} changed");
    }
    assert_eq!(after.len(), before.len() + 1);

    // A second run changes nothing: not even a new version.
    let version = bao.version(BASE_PATH);
    let (out, _) = run_traced(&bao, &work, &add, &["before-merge"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("exposurelog_password is already in"),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(bao.version(BASE_PATH), version);
    assert_eq!(bao.secret(BASE_PATH), after);

    // An existing database's key is never touched.
    let existing_db = script(&work, &["jupyterhub", "--env", "base"], "existing.sh");
    let (out, _) = run_traced(&bao, &work, &existing_db, &["before-merge"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(bao.version(BASE_PATH), version);
    // The generator's copy (`self.secrets["nublado"]["hub_db_password"]`) gets the
    // same value, Vault to Vault, and the application's other keys stay.
    let nublado = bao.secret(&BASE_PATH.replace("/postgres", "/nublado"));
    assert_eq!(nublado["hub_db_password"], before["jupyterhub_password"]);
    assert_eq!(nublado["other"], "kept");

    // --rotate: without --yes and nobody to answer, it stops and changes nothing;
    // with --yes, only that key changes.
    let rotate = script(
        &work,
        &["exposurelog", "--env", "base", "--rotate"],
        "rotate.sh",
    );
    let (out, _) = run_traced(&bao, &work, &rotate, &["new-password"]);
    assert!(!out.status.success(), "an unconfirmed rotation went ahead");
    assert_eq!(bao.version(BASE_PATH), version);
    let (out, trace) = run_traced(&bao, &work, &rotate, &["--yes", "new-password"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_no_password_in_argv(&trace, "new-password");
    let rotated = bao.secret(BASE_PATH);
    let value = rotated["exposurelog_password"].as_str();
    assert!(hex64(value) && value != new, "{value:?}");
    for (key, value) in &before {
        assert_eq!(&rotated[key], value, "{key} changed by the rotation");
    }

    // --remove's delete-key phase deletes only that key.
    let remove = script(
        &work,
        &["exposurelog", "--env", "base", "--remove"],
        "remove.sh",
    );
    let (out, trace) = run_traced(&bao, &work, &remove, &["--yes", "delete-key"]);
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_no_password_in_argv(&trace, "delete-key");
    assert_eq!(bao.secret(BASE_PATH), before);

    // The text form's helpers and before-merge blocks, run as they would be pasted, do
    // the same; nothing after them runs without a confirmed cluster.
    // (`runbook` refuses a name no file holds: add it first.)
    let out = xtask(&work, &["add-db", "lovelog", "--env", "base"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = xtask(&work, &["runbook", "lovelog", "--env", "base"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let runbook = text(&out.stdout);
    let end = runbook
        .find("\n# === chart-published")
        .expect("the split runbook has a chart-published phase");
    let pasted = work.join("pasted.sh");
    fs::write(&pasted, &runbook[..end]).unwrap();
    let before_text = bao.secret(BASE_PATH);
    let (out, trace) = run_traced(&bao, &work, &pasted, &[]);
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_no_password_in_argv(&trace, "the pasted text form");
    let after_text = bao.secret(BASE_PATH);
    assert!(hex64(&after_text["lovelog_password"]));
    for (key, value) in &before_text {
        assert_eq!(
            &after_text[key], value,
            "{key} changed by the pasted text form"
        );
    }

    // A missing secret path stops with a clear message and writes nothing.
    let idfdev_path = "secret/k8s_operator/data-dev.lsst.cloud/postgres";
    let missing = script(&work, &["exposurelog", "--env", "idfdev"], "missing.sh");
    let (out, _) = run_traced(&bao, &work, &missing, &["before-merge"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(&format!("There is no secret at {idfdev_path}")),
        "{}",
        text(&out.stderr)
    );
    let out = bao.vault(&["kv", "get", idfdev_path], None);
    assert!(!out.status.success(), "a secret appeared at {idfdev_path}");
}

/// Every layout's fixture tree, as (name, tree).
fn layouts() -> Vec<(String, PathBuf)> {
    let mut trees = vec![("split-sample".to_string(), root().join("sample"))];
    for entry in fs::read_dir(root().join("tests/fixtures/layouts")).unwrap() {
        let entry = entry.unwrap();
        trees.push((
            entry.file_name().to_string_lossy().into_owned(),
            entry.path(),
        ));
    }
    trees.push((
        "runbook-applications".into(),
        root().join("tests/runbook/applications"),
    ));
    trees.sort();
    trees
}

/// Writes `script` to `steps.sh` in `work` and asserts that shellcheck finds nothing
/// in it and that bash parses it.
fn assert_clean_script(shellcheck: &Path, work: &Path, script: &[u8], context: &str) {
    let file = work.join("steps.sh");
    fs::write(&file, script).unwrap();
    let check = Command::new(shellcheck).arg(&file).output().unwrap();
    assert!(
        check.status.success(),
        "{context}: shellcheck:\n{}",
        text(&check.stdout)
    );
    assert_bash_syntax(&file, &format!("{context}: "));
}

#[test]
fn every_generated_script_is_clean_under_shellcheck() {
    let shellcheck = tool("shellcheck");
    for (name, tree) in layouts() {
        let work = scratch(&format!("runbook-shellcheck-{name}"));
        copy_tree(&tree, &work);
        let repo = repo_args(&work);
        let repo: Vec<&str> = repo.iter().map(String::as_str).collect();
        let list = xtask(&work, &[&["list", "--format", "json"][..], &repo].concat());
        assert!(list.status.success(), "{name}: {}", text(&list.stderr));
        let db = first_database(&text(&list.stdout));
        // A database just added (`runbook` refuses a name no file holds).
        let env = first_env(&text(&list.stdout));
        let add = xtask(
            &work,
            &[&["add-db", "newdb", "--env", &env][..], &repo].concat(),
        );
        assert!(add.status.success(), "{name}: {}", text(&add.stderr));
        for mode in [&[][..], &["--rotate"][..], &["--remove"][..]] {
            for fresh in [false, true] {
                let name_arg = if fresh { "newdb" } else { db.as_str() };
                let env_args: Vec<String> = vec!["--env".into(), first_env(&text(&list.stdout))];
                let mut args = vec!["runbook", name_arg];
                args.extend(env_args.iter().map(String::as_str));
                args.extend_from_slice(mode);
                args.push("--script");
                args.extend_from_slice(&repo);
                let out = xtask(&work, &args);
                assert!(
                    out.status.success(),
                    "{name} {args:?}: {}",
                    text(&out.stderr)
                );
                assert_clean_script(&shellcheck, &work, &out.stdout, &format!("{name} {args:?}"));
            }
        }
    }
    // Two environments, one with a configured context: the other's confirmation
    // first takes the configured cluster (`remember_context`).
    let work = sample_copy("runbook-shellcheck-mixed-contexts");
    fs::write(
        work.join("xtask.toml"),
        "[kube_contexts]\nbase = \"base's cluster\"\n",
    )
    .unwrap();
    let repo = repo_args(&work);
    for mode in [&[][..], &["--rotate"][..], &["--remove"][..]] {
        let mut args = vec!["runbook", "jupyterhub", "--env", "base", "--env", "idfdev"];
        args.extend_from_slice(mode);
        args.push("--script");
        args.extend(repo.iter().map(String::as_str));
        let out = xtask(&work, &args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains("remember_context base \"base's cluster\""),
            "{args:?}"
        );
        assert_clean_script(&shellcheck, &work, &out.stdout, &format!("{args:?}"));
    }
}

fn first_database(list_json: &str) -> String {
    let value: serde_yaml::Value = serde_yaml::from_str(list_json).unwrap();
    let key = value["databases"][0]["key"]
        .as_str()
        .unwrap_or_else(|| panic!("list names no database: {list_json}"));
    key.trim_end_matches("_db").to_string()
}

fn first_env(list_json: &str) -> String {
    let value: serde_yaml::Value = serde_yaml::from_str(list_json).unwrap();
    value["environments"][0]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| panic!("list names no environment: {list_json}"))
}
