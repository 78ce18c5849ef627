//! Running `git` in a managed repository, through xshell.
//!
//! The variables a git hook sets for the repository being committed (`GIT_DIR`,
//! `GIT_INDEX_FILE`, ...) are removed, so a pre-commit run in the deployment
//! repository can still ask the charts repository about its history.

use std::path::Path;
use std::process::Output;

use xshell::{cmd, Shell};

/// What a git hook exports that would point git at another repository.
const HOOK_VARIABLES: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_PREFIX",
    "GIT_OBJECT_DIRECTORY",
    "GIT_COMMON_DIR",
];

/// `git -C ROOT ARGS...`, its status left to the caller, its stderr captured.
pub fn git(root: &Path, args: &[&str]) -> std::io::Result<Output> {
    let sh = Shell::new().map_err(std::io::Error::other)?;
    let mut command = cmd!(sh, "git -C {root} {args...}").quiet().ignore_status();
    for var in HOOK_VARIABLES {
        command = command.env_remove(var);
    }
    command.output().map_err(std::io::Error::other)
}

/// The revision that stands for what is deployed, and how it was chosen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Upstream {
    /// What `git show REV:path` takes (`origin/main`, or the `--deployed` word).
    pub rev: String,
    /// Its commit, abbreviated, for the runbook's header.
    pub commit: String,
    /// `--deployed`, `origin/HEAD` or `origin/main`.
    pub source: &'static str,
}

/// Whether `rev` names a commit in the repository at `root` (false outside git).
pub fn commit_of(root: &Path, rev: &str) -> Option<String> {
    let spec = format!("{rev}^{{commit}}");
    let out = git(
        root,
        &["rev-parse", "--verify", "--quiet", "--short", &spec],
    )
    .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|c| !c.is_empty())
}

/// The remote's default branch as a remote-tracking name (`origin/main`), read from
/// `refs/remotes/origin/HEAD` (set by `git clone`, or `git remote set-head origin -a`).
fn origin_head(root: &Path) -> Option<String> {
    let out = git(
        root,
        &[
            "symbolic-ref",
            "--quiet",
            "--short",
            "refs/remotes/origin/HEAD",
        ],
    )
    .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|r| !r.is_empty())
}

/// Whether git tracks any file below `root`: a deployment folder that lies untracked
/// (or ignored) inside another repository is not that repository's content, so that
/// repository's upstream says nothing about what is deployed.
fn tracks_files_below(root: &Path) -> bool {
    git(root, &["ls-files", "--", "."])
        .is_ok_and(|out| out.status.success() && !out.stdout.is_empty())
}

/// What is deployed: `given` (`--deployed REV`, which must exist: exit 2 otherwise),
/// else the remote's default branch (`origin/HEAD`), else `origin/main`; `None` when
/// the repository has neither (no clone of an upstream, or not git at all), or when
/// the deployment's folder is not tracked by the repository around it. Local `HEAD`
/// never counts: a commit made for a pull request is not deployed.
pub fn upstream(root: &Path, given: Option<&str>) -> anyhow::Result<Option<Upstream>> {
    if let Some(rev) = given {
        let commit = commit_of(root, rev).ok_or_else(|| {
            crate::error::bad_input(format!(
                "--deployed {rev}: not a revision of {}; give the commit, branch or tag that is deployed",
                root.display()
            ))
        })?;
        return Ok(Some(Upstream {
            rev: rev.to_string(),
            commit,
            source: "--deployed",
        }));
    }
    if !tracks_files_below(root) {
        return Ok(None);
    }
    let candidates = [
        (origin_head(root), "origin/HEAD"),
        (Some("origin/main".to_string()), "origin/main"),
    ];
    for (rev, source) in candidates {
        let Some(rev) = rev else { continue };
        if let Some(commit) = commit_of(root, &rev) {
            return Ok(Some(Upstream {
                rev,
                commit,
                source,
            }));
        }
    }
    Ok(None)
}

/// The text of `path` (relative to `root`) at `rev`, or `None` when it has no such
/// file there.
pub fn show(root: &Path, rev: &str, path: &str) -> Option<String> {
    let spec = format!("{rev}:./{path}");
    let out = git(root, &["show", &spec]).ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}
