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
