//! The runbook's blocks run by bash as an operator would paste them, against stand-in
//! `kubectl` and `argocd` commands first on PATH (small scripts this test writes: they
//! print a fixed current context and a fixed `postgres` secret, and log every call).
//! What is checked is the helpers' own logic: a cluster confirmed for one environment
//! is refused for a second, a sync is never offered while the secret lacks the key, and
//! a stuck ReplicaSet is deleted only once confirmed.

use crate::common::*;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The stand-in commands' folder: `context` holds what `kubectl config current-context`
/// prints, `secret` the JSON of `kubectl get secret postgres -o json`; every call is
/// appended to `calls`.
fn stand_ins(work: &Path) -> PathBuf {
    let bin = work.join("bin");
    fs::create_dir_all(&bin).unwrap();
    let kubectl = r#"#!/bin/sh
dir=$(dirname "$0")
echo "kubectl $*" >> "$dir/calls"
case "$*" in
  "config current-context") cat "$dir/context" ;;
  *"get secret postgres -o json") cat "$dir/secret" ;;
esac
"#;
    let argocd = "#!/bin/sh\necho \"argocd $*\" >> \"$(dirname \"$0\")/calls\"\n";
    for (name, body) in [("kubectl", kubectl), ("argocd", argocd)] {
        let file = bin.join(name);
        fs::write(&file, body).unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&file, fs::Permissions::from_mode(0o755)).unwrap();
    }
    fs::write(bin.join("calls"), "").unwrap();
    bin
}

/// The runbook of `args` on a scratch copy of the sample deployment, in the scratch folder.
fn runbook(name: &str, args: &[&str]) -> (PathBuf, String) {
    let work = sample_copy(name);
    let out = xtask_on(&work, args);
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    (work, text(&out.stdout))
}

/// The helpers at the top of a text runbook.
fn helpers(runbook: &str) -> &str {
    &runbook[..runbook.find("\n# === ").expect("a phase")]
}

/// The block (up to its blank line) whose heading is `## heading`.
fn block<'a>(runbook: &'a str, heading: &str) -> &'a str {
    runbook
        .split("\n\n")
        .find(|b| b.starts_with(&format!("## {heading}\n")))
        .unwrap_or_else(|| panic!("no block {heading}:\n{runbook}"))
}

/// Runs `shell` in bash with the stand-ins first on PATH, `answers` as what is typed.
fn bash(bin: &Path, args: &[&str], answers: &str) -> Output {
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut child = Command::new("bash")
        .args(args)
        .current_dir(bin)
        .env("PATH", path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(answers.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn calls(bin: &Path) -> String {
    fs::read_to_string(bin.join("calls")).unwrap()
}

#[test]
fn one_context_is_not_confirmed_for_two_environments() {
    let (work, runbook) = runbook(
        "runbook-paste-contexts",
        &["runbook", "jupyterhub", "--env", "base", "--env", "idfdev"],
    );
    let bin = stand_ins(&work);
    fs::write(bin.join("context"), "shared-cluster\n").unwrap();
    let base = block(&runbook, "base: Confirm the cluster");
    let idfdev = block(&runbook, "idfdev: Confirm the cluster");
    // The operator confirms base, forgets to switch, and confirms idfdev; then switches
    // and runs idfdev's block again. Confirming base again in the same cluster is fine.
    let shell = format!(
        "{}\n{base}\n{idfdev}\necho \"idfdev refused: $? ${{KUBE_CONTEXT_idfdev-unset}}\"\n\
         {base}\necho \"base again: $? $KUBE_CONTEXT_base\"\n\
         echo other-cluster > context\n{idfdev}\necho \"idfdev switched: $? $KUBE_CONTEXT_idfdev\"\n",
        helpers(&runbook)
    );
    let out = bash(&bin, &["-c", &shell], "y\ny\ny\n");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        stderr.contains(
            "The kubectl context shared-cluster is the cluster of base in this shell: \
             it cannot also be the cluster of idfdev."
        ),
        "{stderr}"
    );
    assert!(
        stdout.contains("idfdev refused: 1 unset"),
        "{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("base again: 0 shared-cluster"),
        "{stdout}\n{stderr}"
    );
    // Three answers for four blocks: the refusal came before its question, else the
    // last block would have read no answer and not confirmed.
    assert!(
        stdout.contains("idfdev switched: 0 other-cluster"),
        "{stdout}\n{stderr}"
    );
}

#[test]
fn the_sync_block_does_nothing_while_the_secret_lacks_the_key() {
    let (work, runbook) = runbook(
        "runbook-paste-sync",
        &["runbook", "jupyterhub", "--env", "base"],
    );
    let bin = stand_ins(&work);
    let sync = block(&runbook, "base: Sync postgres and wait for it");
    let shell = format!("{}\nKUBE_CONTEXT_base=ctx\n{sync}\n", helpers(&runbook));
    // Pasted after a refresh whose check failed, and confirmed: argocd must not run.
    fs::write(bin.join("secret"), r#"{"data": {"root_password": "eA=="}}"#).unwrap();
    let out = bash(&bin, &["-c", &shell], "y\n");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("jupyterhub_password is not in the postgres secret"),
        "{stderr}"
    );
    assert!(stderr.contains("Not syncing"), "{stderr}");
    assert!(
        !stderr.contains("Sync postgres in base?"),
        "asked: {stderr}"
    );
    assert!(!calls(&bin).contains("argocd"), "{}", calls(&bin));
    // With the key, the same block asks and syncs.
    fs::write(
        bin.join("secret"),
        r#"{"data": {"root_password": "eA==", "jupyterhub_password": "eQ=="}}"#,
    )
    .unwrap();
    let out = bash(&bin, &["-c", &shell], "y\n");
    let calls = calls(&bin);
    assert!(
        calls.contains("argocd app sync argocd/postgres --core --kube-context ctx"),
        "{calls}\n{}",
        text(&out.stderr)
    );
}

#[test]
fn the_script_stops_before_the_sync_while_the_secret_lacks_the_key() {
    let (work, script) = runbook(
        "runbook-paste-script",
        &["runbook", "jupyterhub", "--env", "base", "--script"],
    );
    let bin = stand_ins(&work);
    fs::write(bin.join("context"), "ctx\n").unwrap();
    fs::write(bin.join("secret"), r#"{"data": {"root_password": "eA=="}}"#).unwrap();
    let file = bin.join("steps.sh");
    fs::write(&file, &script).unwrap();
    let out = bash(&bin, &[file.to_str().unwrap(), "after-merge"], "y\n");
    let stderr = text(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("jupyterhub_password is not in the postgres secret"),
        "{stderr}"
    );
    assert!(!calls(&bin).contains("argocd"), "{}", calls(&bin));
    assert!(!stderr.contains("== base: Verify"), "went on: {stderr}");
}

#[test]
fn a_configured_context_is_not_confirmed_for_another_environment() {
    let (work, runbook) = runbook(
        "runbook-paste-configured",
        &["runbook", "jupyterhub", "--env", "base", "--env", "idfdev"],
    );
    // base has its context in xtask.toml; idfdev's is confirmed by hand.
    let work_toml = work.join("xtask.toml");
    fs::write(&work_toml, "[kube_contexts]\nbase = \"base-cluster\"\n").unwrap();
    let mut args = vec!["runbook", "jupyterhub", "--env", "base", "--env", "idfdev"];
    let repo = repo_args(&work);
    args.extend(repo.iter().map(String::as_str));
    let out = xtask(&work, &args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let configured = text(&out.stdout);
    assert_ne!(configured, runbook, "xtask.toml was not read");
    let bin = stand_ins(&work);
    let idfdev = block(&configured, "idfdev: Confirm the cluster");
    let shell = format!(
        "{}\n{idfdev}\necho \"idfdev: $? ${{KUBE_CONTEXT_idfdev-unset}}\"\n",
        helpers(&configured)
    );
    // Still in base's cluster: refused. In another: confirmed.
    fs::write(bin.join("context"), "base-cluster\n").unwrap();
    let out = bash(&bin, &["-c", &shell], "y\n");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        stderr.contains(
            "The kubectl context base-cluster is the cluster of base in this shell: \
             it cannot also be the cluster of idfdev."
        ),
        "{stderr}"
    );
    assert!(stdout.contains("idfdev: 1 unset"), "{stdout}\n{stderr}");
    fs::write(bin.join("context"), "idfdev-cluster\n").unwrap();
    let out = bash(&bin, &["-c", &shell], "y\n");
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("idfdev: 0 idfdev-cluster"),
        "{stdout}\n{}",
        text(&out.stderr)
    );
}

/// Issue 21, item 6: pasted, there is no pipefail; every helper checks each command
/// itself. A stand-in `vault` whose writes fail (reads succeed) must not be reported
/// as a key added, rotated or deleted.
#[test]
fn a_failed_vault_write_is_never_reported_as_done() {
    let (work, runbook) = runbook(
        "runbook-paste-vault-fails",
        &["runbook", "narrativelog", "--env", "base", "--remove"],
    );
    let bin = stand_ins(&work);
    let vault = r#"#!/bin/sh
echo "vault $*" >> "$(dirname "$0")/calls"
case "$*" in
  "kv get -field=gone "*) exit 2 ;;
  "kv get -field=absent "*) exit 1 ;;
  "kv get -format=json "*) echo '{"data": {"data": {"k": "v", "other": "w"}}}' ;;
  "kv get "*) exit 0 ;;
  "kv put "* | "kv patch "*) cat > /dev/null; echo "permission denied" >&2; exit 2 ;;
esac
"#;
    fs::write(bin.join("vault"), vault).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(bin.join("vault"), fs::Permissions::from_mode(0o755)).unwrap();
    let shell = format!(
        "{}\ndelete_vault_key secret/p k; echo \"delete: $?\"\n\
         put_password_if_absent secret/p absent; echo \"put: $?\"\n\
         rotate_password secret/p k; echo \"rotate: $?\"\n",
        helpers(&runbook)
    );
    let out = bash(&bin, &["-c", &shell], "");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    for said in ["delete: 1", "put: 1", "rotate: 1"] {
        assert!(stdout.contains(said), "{said}\n{stdout}\n{stderr}");
    }
    for claim in ["deleted from", "added to", "has a new value"] {
        assert!(!stdout.contains(claim), "{claim}\n{stdout}\n{stderr}");
    }
    assert!(
        stderr.contains("vault kv put secret/p failed: k was not deleted"),
        "{stderr}"
    );
    assert!(
        stderr.contains("vault kv patch secret/p failed"),
        "{stderr}"
    );
    // What was written is the rest of the secret, never a value in an argument.
    assert!(
        calls(&bin).contains("vault kv put secret/p -"),
        "{}",
        calls(&bin)
    );
}

/// Issue 16: no step is a comment that `--yes` runs past. Where the Deployment does
/// not use `Recreate`, `unstick_rollout` finds the postgres pod stuck in Terminating
/// (a stand-in `kubectl` reports one and its owner) and deletes the ReplicaSet that
/// owns it only once the operator says "y".
#[test]
fn a_stuck_replicaset_is_deleted_only_after_yes() {
    let (work, runbook) = runbook(
        "runbook-paste-unstick",
        &["runbook", "jupyterhub", "--env", "base"],
    );
    let bin = stand_ins(&work);
    let kubectl = r#"#!/bin/sh
dir=$(dirname "$0")
echo "kubectl $*" >> "$dir/calls"
case "$*" in
  *"get pods -o jsonpath="*) cat "$dir/terminating" ;;
  *"get pod postgres-old-x1 -o jsonpath="*) printf 'postgres-5d8c' ;;
esac
"#;
    fs::write(bin.join("kubectl"), kubectl).unwrap();
    fs::write(bin.join("terminating"), "postgres-old-x1\n").unwrap();
    let shell = format!(
        "{}\nunstick_rollout ctx; echo \"unstick: $?\"\n",
        helpers(&runbook)
    );
    // Refused: the owner is named, nothing is deleted, and the status says so.
    let out = bash(&bin, &["-c", &shell], "n\n");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        stdout.contains("the ReplicaSet postgres-5d8c owns it"),
        "{stdout}\n{stderr}"
    );
    assert!(stdout.contains("unstick: 1"), "{stdout}\n{stderr}");
    assert!(!calls(&bin).contains("delete"), "{}", calls(&bin));
    // Confirmed: deleted, then the rollout waited for.
    fs::write(bin.join("calls"), "").unwrap();
    let out = bash(&bin, &["-c", &shell], "y\n");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(stdout.contains("unstick: 0"), "{stdout}\n{stderr}");
    let calls_made = calls(&bin);
    let delete = calls_made
        .find("kubectl --context ctx -n postgres delete replicaset postgres-5d8c")
        .unwrap_or_else(|| panic!("not deleted:\n{calls_made}"));
    assert!(
        calls_made[delete..].contains("rollout status deployment/postgres --timeout=10m"),
        "{calls_made}"
    );
    // Nothing stuck: nothing asked, nothing deleted.
    fs::write(bin.join("calls"), "").unwrap();
    fs::write(bin.join("terminating"), "").unwrap();
    let out = bash(&bin, &["-c", &shell], "y\n");
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("No postgres pod hangs in Terminating: nothing to do."),
        "{stdout}"
    );
    assert!(stdout.contains("unstick: 0"), "{stdout}");
    assert!(!calls(&bin).contains("delete"), "{}", calls(&bin));
}
