//! Shared by the integration tests: scratch copies of fixture trees, running the
//! real binary, and comparing whole trees.

pub mod openbao;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A fresh, empty scratch folder named after the test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("scratch")
        .join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// A scratch copy of the workspace's `sample/` deployment, named after the test.
pub fn sample_copy(name: &str) -> PathBuf {
    let work = scratch(name);
    copy_tree(&root().join("sample"), &work);
    work
}

/// Copies a tree, keeping file permissions.
pub fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Every file below `dir`, by relative path, with its bytes.
pub fn read_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                let rel = path
                    .strip_prefix(base)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel, fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Asserts that two trees hold the same files with the same bytes, showing the
/// first difference as text.
pub fn assert_same_tree(actual: &Path, expected: &Path, context: &str) {
    let a = read_tree(actual);
    let e = read_tree(expected);
    let a_names: Vec<&String> = a.keys().collect();
    let e_names: Vec<&String> = e.keys().collect();
    assert_eq!(
        a_names, e_names,
        "{context}: the trees hold different files"
    );
    for (name, bytes) in &e {
        let got = &a[name];
        if got != bytes {
            panic!(
                "{context}: {name} differs\n--- expected\n{}\n--- actual\n{}",
                String::from_utf8_lossy(bytes),
                String::from_utf8_lossy(got)
            );
        }
    }
}

/// The real binary, to run in `cwd` without colour and without the pull-request
/// base and workspace a CI job would give it; the caller adds arguments.
pub fn xtask_command(cwd: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    command
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env_remove("GITHUB_BASE_REF")
        .env_remove("GITHUB_WORKSPACE");
    command
}

/// The real binary, run in `cwd` with `--quiet` (no line naming the repositories on
/// stderr; `tests/discovery.rs` checks that line).
pub fn xtask(cwd: &Path, args: &[&str]) -> Output {
    xtask_command(cwd)
        .arg("--quiet")
        .args(args)
        .output()
        .expect("the xtask binary runs")
}

/// [`xtask`] on the scratch tree `work`, with `args` followed by its [`repo_args`].
pub fn xtask_on(work: &Path, args: &[&str]) -> Output {
    let repo = repo_args(work);
    let mut all = args.to_vec();
    all.extend(repo.iter().map(String::as_str));
    xtask(work, &all)
}

/// Runs git in `dir` as a throwaway committer (no signing, no repository inherited
/// from the environment) and asserts that it succeeded.
pub fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@example.com",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .env_remove("GIT_DIR")
        .env_remove("GIT_INDEX_FILE")
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
}

/// The case folders directly below `dir`, sorted by name.
pub fn case_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    cases
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `--phalanx DIR [--charts DIR]` for a scratch tree holding `phalanx/` and maybe `charts/`.
pub fn repo_args(dir: &Path) -> Vec<String> {
    let mut args = vec![
        "--phalanx".to_string(),
        dir.join("phalanx").display().to_string(),
    ];
    if dir.join("charts").is_dir() {
        args.push("--charts".into());
        args.push(dir.join("charts").display().to_string());
    }
    args
}

/// Asserts that bash parses the script `file` (`bash -n`), naming `context` on failure.
pub fn assert_bash_syntax(file: &Path, context: &str) {
    let syntax = Command::new("bash").arg("-n").arg(file).output().unwrap();
    assert!(syntax.status.success(), "{context}{}", text(&syntax.stderr));
}

/// Asserts that `out` exited with `code` and that its stderr says `needle`;
/// `context` names the run in the failure message.
pub fn assert_refused(out: &Output, code: i32, needle: &str, context: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{context}: {stderr}");
    assert!(stderr.contains(needle), "{context}: {stderr}");
}

/// `git` with a fixed author, committer and dates, so a commit's hash (which the
/// runbook's header names) is the same on every run.
pub fn git_fixed(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
        .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z")
        .env_remove("GIT_DIR")
        .env_remove("GIT_INDEX_FILE")
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
}

/// Commits `work/phalanx` and pushes it to a bare "remote" `work/remote.git`, whose
/// default branch (`origin/HEAD` -> `origin/main`) is then what is deployed.
pub fn deployed_upstream(work: &Path) {
    let phalanx = work.join("phalanx");
    git_fixed(&phalanx, &["init", "-q"]);
    git_fixed(&phalanx, &["add", "-A"]);
    git_fixed(&phalanx, &["commit", "-qm", "fixture"]);
    git_fixed(work, &["init", "-q", "--bare", "remote.git"]);
    git_fixed(&phalanx, &["remote", "add", "origin", "../remote.git"]);
    git_fixed(&phalanx, &["push", "-q", "origin", "HEAD:main"]);
    git_fixed(&phalanx, &["fetch", "-q", "origin"]);
    git_fixed(&phalanx, &["remote", "set-head", "origin", "main"]);
}
