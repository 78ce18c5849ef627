//! End-to-end cases, one test each: every folder of `tests/cases/` runs the real
//! binary on a scratch copy of its input tree and compares what it printed and what it
//! left with what the folder expects. One format for every command:
//!
//! - input: `in/` (`phalanx/` and, for the split layout, `charts/`), or a file
//!   `fixture` naming a tree relative to `tests/`; then, optionally, `edits` applied to
//!   it (each `@@ PATH`, the old lines, `@@ ->`, the new lines, `@@ end`; the old text
//!   must occur exactly once), `xtask.toml` copied beside it, `git` (the deployment
//!   repository is committed and pushed to a bare "remote" whose default branch is
//!   what is deployed) and `setup` (a command run first, one argument per line, e.g.
//!   an add-db whose runbook the case prints);
//! - `args`: the command line, one argument per line (the runner adds the repository
//!   options); `cwd` (optional): the folder to run in, relative to the scratch tree;
//! - `status` (optional): the exit status, 0 when absent;
//! - `stdout`, `stderr` (optional): the whole expected stream (`$WORK` stands for the
//!   scratch folder, `$RUNTIME` for the `XDG_RUNTIME_DIR` the case runs with, where a
//!   text runbook's helpers file goes); `stdout-lines`, `stderr-lines` (optional): lines
//!   that must each appear in it;
//! - `out/` (optional): the expected tree; without it the tree must be as it was after
//!   `setup`.
//!
//! A case that changed its tree and exited 0 runs a second time, which must change
//! nothing (idempotence). Where the tree has `environments/`, no edit may leave an
//! environment with a postgres-related key that `phalanx secrets sync` could not
//! resolve and that it could resolve before (the `copy-*` findings of `check`, compared
//! whole before and after). `BLESS=1` rewrites `stdout`, `stderr` and `status` where a
//! case has them (read the diff before committing it). Every folder must be listed in
//! [`cases!`] below, and every listed case must exist (`every_case_folder_is_a_test`).

use crate::common::*;
use std::fs;
use std::path::{Path, PathBuf};

/// The lines of a file, trimmed, without the empty ones.
fn lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// Applies an `edits` file to the tree at `dir`.
fn apply_edits(dir: &Path, edits: &str) -> Result<(), String> {
    let mut lines = edits.lines();
    while let Some(header) = lines.next() {
        if header.trim().is_empty() {
            continue;
        }
        let path = header
            .strip_prefix("@@ ")
            .ok_or_else(|| format!("expected `@@ PATH`, got {header:?}"))?;
        let mut old = String::new();
        for line in lines.by_ref().take_while(|l| *l != "@@ ->") {
            old.push_str(line);
            old.push('\n');
        }
        let mut new = String::new();
        for line in lines.by_ref().take_while(|l| *l != "@@ end") {
            new.push_str(line);
            new.push('\n');
        }
        let file = dir.join(path);
        let text = fs::read_to_string(&file).map_err(|e| format!("{path}: {e}"))?;
        if text.matches(&old).count() != 1 {
            return Err(format!(
                "{path}: the old text occurs {} times:\n{old}",
                text.matches(&old).count()
            ));
        }
        fs::write(&file, text.replacen(&old, &new, 1)).unwrap();
    }
    Ok(())
}

/// The folder of the case `name`.
pub fn case_dir(name: &str) -> PathBuf {
    root().join("tests/cases").join(name)
}

/// A scratch copy of a case's input: its tree, `edits`, `xtask.toml` and `git`
/// applied (not `setup`, which runs the binary).
pub fn prepare(name: &str) -> PathBuf {
    let case = case_dir(name);
    let work = scratch(&format!("case-{name}"));
    let input = match fs::read_to_string(case.join("fixture")) {
        Ok(tree) => root().join("tests").join(tree.trim()),
        Err(_) => case.join("in"),
    };
    assert!(input.is_dir(), "{name}: no input tree {}", input.display());
    copy_tree(&input, &work);
    let edits = fs::read_to_string(case.join("edits")).unwrap_or_default();
    apply_edits(&work, &edits).unwrap_or_else(|e| panic!("{name}: {e}"));
    if case.join("xtask.toml").is_file() {
        fs::copy(case.join("xtask.toml"), work.join("xtask.toml")).unwrap();
    }
    if case.join("git").exists() {
        deployed_upstream(&work);
    }
    work
}

/// The `XDG_RUNTIME_DIR` of a case: beside its tree, never in it.
fn runtime_dir(name: &str) -> PathBuf {
    scratch(&format!("case-{name}-runtime"))
}

/// The text form's first block (a block ends at a blank line) in which a line that
/// reads an answer from the terminal (`vault_login`'s token, `confirm_context`) is
/// followed by another command: pasted at once, that command would become the answer.
/// (A question inside `if confirm ...; fi` is safe: bash reads the whole `if` first.)
pub fn prompt_before_other_lines(runbook: &str) -> Option<String> {
    if runbook.starts_with("#!") {
        return None; // a script reads its answers from the terminal, not from its own text
    }
    runbook
        .split("\n\n")
        .find(|block| {
            let commands: Vec<&str> = block
                .lines()
                .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
                .collect();
            commands
                .iter()
                .rev()
                .skip(1)
                .any(|l| l.starts_with("vault_login ") || l.starts_with("confirm_context "))
        })
        .map(str::to_string)
}

/// Runs `args` (plus the repository options) in the case's folder.
fn run(work: &Path, case: &Path, args: &[String], runtime: &Path) -> std::process::Output {
    let cwd = match fs::read_to_string(case.join("cwd")) {
        Ok(dir) => work.join(dir.trim()),
        Err(_) => work.to_path_buf(),
    };
    xtask_command(&cwd)
        .arg("--quiet")
        .args(args)
        .args(repo_args(work))
        .env("XDG_RUNTIME_DIR", runtime)
        .output()
        .expect("the xtask binary runs")
}

/// The file a text runbook sources exists in the case's `XDG_RUNTIME_DIR`, outside
/// the repository, mode 0600, and holds the helpers (a script embeds them and sources
/// nothing).
fn helpers_file_is_private(runtime: &Path, runbook: &str) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let Some(line) = runbook.lines().find(|l| l.starts_with(". ")) else {
        return if runbook.starts_with("#!") {
            Ok(())
        } else {
            Err(format!("the text sources no helpers file:\n{runbook}"))
        };
    };
    let path = line
        .trim_start_matches(". ")
        .trim_matches('\'')
        .replace("$RUNTIME", &runtime.display().to_string());
    let path = Path::new(&path);
    if !path.starts_with(runtime.join("pgdb")) {
        return Err(format!(
            "{} is not in $XDG_RUNTIME_DIR/pgdb",
            path.display()
        ));
    }
    let meta = fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.permissions().mode() & 0o777 != 0o600 {
        return Err(format!(
            "{} has mode {:o}",
            path.display(),
            meta.permissions().mode()
        ));
    }
    let content = fs::read_to_string(path).unwrap();
    for helper in ["delete_vault_key()", "confirm()", "PGDB_DUMP_DIR="] {
        if !content.contains(helper) {
            return Err(format!("{} lacks {helper}", path.display()));
        }
    }
    if runbook.contains("delete_vault_key() {") {
        return Err("the text repeats the helpers it sources".into());
    }
    Ok(())
}

/// Compares one stream with the case's `NAME` (whole) and `NAME-lines` files.
fn compare_stream(case: &Path, stream: &str, actual: &str, shown: &str) -> Result<(), String> {
    let whole = case.join(stream);
    if whole.is_file() {
        if std::env::var_os("BLESS").is_some() {
            fs::write(&whole, actual).unwrap();
        }
        let expected = fs::read_to_string(&whole).unwrap();
        if expected != actual {
            let at = actual
                .lines()
                .zip(expected.lines())
                .position(|(a, e)| a != e)
                .map_or_else(
                    || "(one is a prefix of the other)".to_string(),
                    |i| format!("line {}", i + 1),
                );
            return Err(format!(
                "{stream} differs from {} at {at}\n--- expected {stream}\n{expected}\n{shown}",
                whole.display()
            ));
        }
    }
    for line in lines(&case.join(format!("{stream}-lines"))) {
        if !actual.contains(&line) {
            return Err(format!("{stream} lacks `{line}`\n{shown}"));
        }
    }
    Ok(())
}

/// The postgres-related keys that some environment could not resolve: `(rule,
/// subject, message)` of `check`'s `copy-source-not-enabled`, `copy-source-missing` and
/// `copy-needs-database` findings (the message names the environment).
fn unresolved(work: &Path) -> std::collections::BTreeSet<(String, String, String)> {
    let out = xtask_on(work, &["check", "--format", "json"]);
    let doc: serde_yaml::Value = serde_yaml::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("check's JSON does not parse: {e}\n{}", text(&out.stderr)));
    let field = |f: &serde_yaml::Value, name: &str| f[name].as_str().unwrap_or("").to_string();
    doc["findings"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter(|f| {
            let rule = f["rule"].as_str().unwrap_or("");
            [
                "copy-source-not-enabled",
                "copy-source-missing",
                "copy-needs-database",
            ]
            .contains(&rule)
        })
        .map(|f| (field(f, "rule"), field(f, "subject"), field(f, "message")))
        .collect()
}

/// Whether `work` holds the tree `expected` (a panic of the comparison as an error).
fn same_tree(work: &Path, expected: &Path, label: &str) -> Result<(), String> {
    std::panic::catch_unwind(|| assert_same_tree(work, expected, label))
        .map_err(|e| e.downcast_ref::<String>().cloned().unwrap_or_default())
}

/// Runs the case `name`; the error says what differs.
pub fn run_case(name: &str) -> Result<(), String> {
    let case = case_dir(name);
    let work = prepare(name);
    let runtime = runtime_dir(name);
    if case.join("setup").is_file() {
        let out = run(&work, &case, &lines(&case.join("setup")), &runtime);
        if !out.status.success() {
            return Err(format!("{name}: setup failed: {}", text(&out.stderr)));
        }
    }
    let before = scratch(&format!("case-{name}-before"));
    copy_tree(&work, &before);
    let judged = work.join("phalanx/environments").is_dir();
    let unresolved_before = if judged {
        unresolved(&work)
    } else {
        Default::default()
    };
    let args = lines(&case.join("args"));
    let output = run(&work, &case, &args, &runtime);
    let shown_paths = |bytes: &[u8]| {
        text(bytes)
            .replace(&runtime.display().to_string(), "$RUNTIME")
            .replace(&work.display().to_string(), "$WORK")
    };
    let (stdout, stderr) = (shown_paths(&output.stdout), shown_paths(&output.stderr));
    let shown = format!(
        "{name}: `{}`\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        args.join(" ")
    );
    if stderr.contains("panicked") {
        return Err(format!("a panic\n{shown}"));
    }
    let status = output.status.code().unwrap_or(-1);
    let status_file = case.join("status");
    if std::env::var_os("BLESS").is_some() && (status_file.is_file() || status != 0) {
        fs::write(&status_file, format!("{status}\n")).unwrap();
    }
    let expected_status: i32 =
        fs::read_to_string(&status_file).map_or(0, |s| s.trim().parse().unwrap());
    if status != expected_status {
        return Err(format!(
            "exit status {status}, expected {expected_status}\n{shown}"
        ));
    }
    compare_stream(&case, "stdout", &stdout, &shown)?;
    compare_stream(&case, "stderr", &stderr, &shown)?;
    if args.first().is_some_and(|a| a == "runbook") && !args.iter().any(|a| a == "--format") {
        helpers_file_is_private(&runtime, &stdout).map_err(|e| format!("{name}: {e}"))?;
        if let Some(block) = prompt_before_other_lines(&stdout) {
            return Err(format!(
                "{name}: a block asks a question and goes on with other lines; pasted, the \
                 question would read the next line as its answer:\n{block}"
            ));
        }
    }
    let expected = if case.join("out").is_dir() {
        case.join("out")
    } else {
        before.clone()
    };
    same_tree(&work, &expected, name).map_err(|e| format!("{e}\n{shown}"))?;
    let changed = read_tree(&work) != read_tree(&before);
    if judged && changed {
        let after = unresolved(&work);
        let new: Vec<_> = after.difference(&unresolved_before).collect();
        if !new.is_empty() {
            return Err(format!(
                "{name}: the edit left keys that phalanx could not resolve: {new:?}\n{shown}"
            ));
        }
    }
    if expected_status == 0 && changed && !case.join("no-rerun").exists() {
        let again = run(&work, &case, &args, &runtime);
        if !again.status.success() {
            return Err(format!(
                "{name}: the second run failed\n{}",
                text(&again.stderr)
            ));
        }
        same_tree(&work, &expected, &format!("{name} (second run)"))?;
    }
    Ok(())
}

/// One test per case folder: `name` is the folder's name with `_` for `-`.
macro_rules! cases {
    ($($name:ident)*) => {
        $(
            #[test]
            fn $name() {
                let folder = stringify!($name).replace('_', "-");
                if let Err(e) = run_case(&folder) {
                    panic!("{e}");
                }
            }
        )*
        /// The folders that [`cases!`] lists.
        const LISTED: &[&str] = &[$(stringify!($name)),*];
    };
}

#[test]
fn every_case_folder_is_a_test() {
    let folders: Vec<String> = case_dirs(&root().join("tests/cases"))
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let listed: Vec<String> = LISTED.iter().map(|n| n.replace('_', "-")).collect();
    let unlisted: Vec<&String> = folders.iter().filter(|f| !listed.contains(f)).collect();
    let missing: Vec<&String> = listed.iter().filter(|l| !folders.contains(l)).collect();
    assert!(
        unlisted.is_empty() && missing.is_empty(),
        "tests/cases/ and cases! differ: not listed {unlisted:?}, no folder {missing:?}"
    );
}

cases! {
    applications_add_app_copy
    applications_add_app_copy_new_file
    applications_add_app_key_taken_refused
    applications_add_app_unknown_refused
    applications_add_static
    applications_check_finds_errors
    applications_copies_check
    applications_copy_without_source_check
    applications_generator_add
    applications_generator_check
    applications_generator_copy_refused
    applications_generator_list
    applications_mostly_sorted_add
    applications_mostly_sorted_add_middle
    applications_remove_app_copied_refused
    applications_remove_copied_refused
    applications_secrets_sorted_check
    applications_secrets_sorted_list
    applications_secrets_unsorted_check
    applications_secrets_unsorted_list
    applications_sorted_add
    applications_sorted_copy
    applications_sorted_remove
    applications_stray_values_add
    applications_stray_values_check
    applications_stray_values_list
    applications_unsorted_add
    applications_unsorted_remove
    check_bad_environment_name
    check_bad_values_entry
    check_clean_applications
    check_clean_consumers
    check_clean_ranges
    check_clean_split
    check_clean_split_json
    check_copy_needs_database
    check_copy_source_missing
    check_copy_source_not_enabled
    check_copy_without_source
    check_db_without_template
    check_env_id_collision
    check_env_id_underscore
    check_malformed_block
    check_missing_vault_path
    check_password_not_generated
    check_pointer_unknown_database
    check_pointer_user_mismatch
    check_secret_condition_mismatch
    check_secret_source_absent
    check_several_github
    check_several_json
    check_shared_role
    check_stale_dependency
    check_stray_values_file
    check_unused_database
    check_unused_password
    check_yaml_syntax
    check_yaml_syntax_json
    intree_add_all_envs
    intree_add_with_bump
    intree_check
    intree_check_finds_errors
    intree_copy_without_source_check
    intree_list
    intree_remove_copied_refused
    intree_remove_everywhere
    intree_remove_one_env
    layout_ambiguous
    layout_split_without_charts
    move_db_allow_manual
    move_db_dry_run
    move_db_flag_and_url_pointer
    move_db_flag_to_url
    move_db_host_split_across_files
    move_db_host_with_keys_new_user
    move_db_internal_target_refused
    move_db_password_in_url_refused
    move_db_split_layout_allow_manual
    move_db_split_layout_refused
    move_db_unknown_shape_refused
    move_db_url_default_overridden
    move_db_url_in_values_env
    runbook_applications_generator_add
    runbook_applications_rotate_copy
    runbook_applications_static
    runbook_consumers_not_enabled
    runbook_intree_add_contexts
    runbook_rotate_without_vault_path
    runbook_split_add_mixed_contexts
    runbook_split_add_script
    runbook_split_add_two_envs
    runbook_split_existing
    runbook_split_no_generator_add
    runbook_split_remove
    runbook_split_rotate
    split_add_app_copy
    split_add_app_copy_existing_method
    split_add_app_key_taken_refused
    split_add_app_unknown_refused
    split_add_one_env
    split_add_static_refused
    split_already_complete
    split_bad_bump
    split_bad_chart_version
    split_bad_database
    split_bad_database_pg
    split_bad_duplicate_key
    split_bad_generator_no_method
    split_bad_missing_template
    split_bad_missing_umbrella
    split_bad_name_dash
    split_bad_name_db_suffix
    split_bad_name_derived_too_long
    split_bad_name_digit
    split_bad_name_non_ascii
    split_bad_name_password_suffix
    split_bad_name_pg_prefix
    split_bad_name_postgres
    split_bad_name_reserved_select
    split_bad_name_reserved_user
    split_bad_name_root
    split_bad_name_semicolon
    split_bad_name_space
    split_bad_name_too_long
    split_bad_name_upper
    split_bad_no_env
    split_bad_template_no_anchor
    split_bad_template_unbalanced
    split_bad_unknown_env
    split_bad_unparsable_values
    split_bad_unreadable_requirement
    split_bad_user
    split_bad_user_reserved
    split_dict_add
    split_dict_app_copy_refused
    split_dict_check
    split_dict_list
    split_dict_remove
    split_dict_runbook
    split_helm2_requirements
    split_module_calls_add
    split_module_calls_check
    split_module_calls_list
    split_module_calls_remove
    split_module_calls_remove_copied_refused
    split_module_calls_runbook
    split_no_generator_add
    split_no_generator_check
    split_no_generator_list
    split_no_generator_remove
    split_no_generator_runbook
    split_partial_env_missing
    split_partial_generator_missing
    split_quoted_all_envs
    split_quoted_bump_minor
    split_quoted_dry_run
    split_quoted_several_envs_user_database
    split_range_caret_major
    split_range_caret_patch
    split_range_compound
    split_refuse_different_user
    split_refuse_id_collision
    split_refuse_id_collision_block
    split_refuse_id_collision_values_only
    split_refuse_requirement_upper_bound
    split_refuse_shared_role
    split_remove_app_copied_refused
    split_remove_copied_refused
    split_tabs_conditional_add
    split_tabs_conditional_check
}
