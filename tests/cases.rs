//! End-to-end cases: each folder of `tests/cases/` runs the real binary on a scratch
//! copy of its `in/` tree and compares the result with its `out/` tree.
//!
//! A case folder holds:
//! - `in/`: `phalanx/` and, for the split layout, `charts/`; or instead a file
//!   `fixture` naming a shared input tree under `tests/fixtures/`;
//! - `args`: the command line, one argument per line (the repository options are
//!   added by the runner);
//! - `out/` (optional): the expected tree; without it, the tree must not change;
//! - `status` (optional): the expected exit status, 0 when absent;
//! - `stdout`, `stderr` (optional): lines that must each appear in that stream.
//!
//! A case that exits 0 and is not a dry run is run a second time, which must change
//! nothing (idempotence).

mod common;

use common::*;
use std::fs;
use std::path::Path;

fn run_case(case: &Path) -> Result<(), String> {
    let name = case.file_name().unwrap().to_string_lossy().into_owned();
    let work = scratch(&format!("case-{name}"));
    let input = match fs::read_to_string(case.join("fixture")) {
        Ok(name) => root().join("tests/fixtures").join(name.trim()),
        Err(_) => case.join("in"),
    };
    copy_tree(&input, &work);
    let args_text =
        fs::read_to_string(case.join("args")).map_err(|e| format!("{name}: no args file: {e}"))?;
    let mut args: Vec<String> = args_text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    args.extend(repo_args(&work));
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = xtask(&work, &arg_refs);
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    let shown = format!(
        "{name}: `{}`\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        args.join(" ")
    );
    let expected_status: i32 =
        fs::read_to_string(case.join("status")).map_or(0, |s| s.trim().parse().unwrap());
    if output.status.code() != Some(expected_status) {
        return Err(format!(
            "exit status {:?}, expected {expected_status}\n{shown}",
            output.status.code()
        ));
    }
    for (stream, content) in [("stdout", &stdout), ("stderr", &stderr)] {
        if let Ok(lines) = fs::read_to_string(case.join(stream)) {
            for line in lines.lines().filter(|l| !l.is_empty()) {
                let line = line.replace("$WORK", &work.display().to_string());
                if !content.contains(&line) {
                    return Err(format!("{stream} lacks `{line}`\n{shown}"));
                }
            }
        }
    }
    assert!(!stderr.contains("panicked"), "{shown}");
    let expected = if case.join("out").is_dir() {
        case.join("out")
    } else {
        input.clone()
    };
    let result = std::panic::catch_unwind(|| assert_same_tree(&work, &expected, &name));
    if let Err(e) = result {
        let message = e.downcast_ref::<String>().cloned().unwrap_or_default();
        return Err(format!("{message}\n{shown}"));
    }
    if expected_status == 0
        && !args.iter().any(|a| a == "--dry-run")
        && !case.join("no-rerun").exists()
    {
        let again = xtask(&work, &arg_refs);
        if !again.status.success() {
            return Err(format!(
                "{name}: the second run failed\n{}",
                text(&again.stderr)
            ));
        }
        if let Err(e) = std::panic::catch_unwind(|| {
            assert_same_tree(&work, &expected, &format!("{name} (second run)"))
        }) {
            return Err(e.downcast_ref::<String>().cloned().unwrap_or_default());
        }
    }
    Ok(())
}

#[test]
fn every_case() {
    let dir = root().join("tests/cases");
    let cases = case_dirs(&dir);
    let failures: Vec<String> = cases.iter().filter_map(|c| run_case(c).err()).collect();
    println!("{} cases, {} failed", cases.len(), failures.len());
    assert!(failures.is_empty(), "{}", failures.join("\n\n========\n\n"));
}
