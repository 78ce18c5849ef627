//! `cargo xtask check` end to end: each folder of `tests/fixtures/check/cases/`
//! names a clean base tree (`base`: `split` or `applications`, under
//! `tests/fixtures/check/`), the `edits` that break (or keep) it, optional extra
//! `args`, and the whole expected `stdout` and exit `status` (0 when absent).
//!
//! An `edits` file holds replacements, each `@@ PATH`, the old lines, `@@ ->`, the
//! new lines, `@@ end`; the old text must occur exactly once. Run with
//! `BLESS=1` to rewrite the expected output after a deliberate change (and read
//! the diff before committing it).

mod common;

use common::*;
use std::fs;
use std::path::Path;

fn fixtures() -> std::path::PathBuf {
    root().join("tests/fixtures/check")
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

/// A scratch copy of a case's base tree with its edits applied.
fn prepare(case: &Path, name: &str) -> std::path::PathBuf {
    let base = fs::read_to_string(case.join("base")).unwrap();
    let work = scratch(&format!("check-{name}"));
    copy_tree(&fixtures().join(base.trim()), &work);
    let edits = fs::read_to_string(case.join("edits")).unwrap_or_default();
    apply_edits(&work, &edits).unwrap_or_else(|e| panic!("{name}: {e}"));
    work
}

fn run_case(case: &Path) -> Result<(), String> {
    let name = case.file_name().unwrap().to_string_lossy().into_owned();
    let work = prepare(case, &name);
    let mut args: Vec<String> = vec!["check".into()];
    if let Ok(extra) = fs::read_to_string(case.join("args")) {
        args.extend(extra.split_whitespace().map(String::from));
    }
    args.extend(repo_args(&work));
    let arg_refs: Vec<&str> = args.iter().map(String::as_str).collect();
    // Run from the deployment repository's root, as an operator does: paths of the
    // charts repository show as `../charts/...`; the scratch folder shows as `$WORK`.
    let output = xtask(&work.join("phalanx"), &arg_refs);
    let stdout = text(&output.stdout).replace(&work.display().to_string(), "$WORK");
    let stderr = text(&output.stderr);
    let status = output.status.code().unwrap_or(-1);
    if std::env::var_os("BLESS").is_some() {
        fs::write(case.join("stdout"), &stdout).unwrap();
        if status == 0 {
            let _ = fs::remove_file(case.join("status"));
        } else {
            fs::write(case.join("status"), format!("{status}\n")).unwrap();
        }
        return Ok(());
    }
    let expected = fs::read_to_string(case.join("stdout"))
        .map_err(|e| format!("{name}: no stdout file: {e}"))?;
    let expected_status: i32 =
        fs::read_to_string(case.join("status")).map_or(0, |s| s.trim().parse().unwrap());
    if stdout != expected || status != expected_status {
        return Err(format!(
            "{name}: exit status {status} (expected {expected_status})\n--- expected stdout\n{expected}--- actual stdout\n{stdout}--- stderr\n{stderr}"
        ));
    }
    if !stderr.is_empty() {
        return Err(format!("{name}: unexpected stderr:\n{stderr}"));
    }
    Ok(())
}

#[test]
fn every_case() {
    let mut cases: Vec<_> = fs::read_dir(fixtures().join("cases"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    assert!(cases.len() >= 15, "the check cases are missing");
    let failures: Vec<String> = cases.iter().filter_map(|c| run_case(c).err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

/// The rules `check --help` lists (the one table of rules), in order.
fn listed_rules() -> Vec<String> {
    let help = text(&xtask(&root(), &["check", "--help"]).stdout);
    let rules = help
        .split("RULES:\n")
        .nth(1)
        .expect("check --help lists its rules");
    rules
        .lines()
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

/// Every rule has a case named after it that triggers it (`chart-not-bumped`
/// needs a git base: `chart_not_bumped_against_a_git_base`), and the clean bases
/// trigger none.
#[test]
fn every_rule_is_covered() {
    let rules = listed_rules();
    assert_eq!(rules.len(), 22, "{rules:?}");
    let cases = fixtures().join("cases");
    for rule in rules.iter().filter(|r| *r != "chart-not-bumped") {
        let stdout = fs::read_to_string(cases.join(rule).join("stdout"))
            .unwrap_or_else(|e| panic!("{rule}: no case: {e}"));
        assert!(
            stdout.contains(&format!("[{rule}]")),
            "{rule}: its case does not trigger it:\n{stdout}"
        );
    }
    for clean in [
        "clean-split",
        "clean-applications",
        "clean-ranges",
        "clean-consumers",
    ] {
        assert_eq!(
            fs::read_to_string(cases.join(clean).join("stdout")).unwrap(),
            "0 errors, 0 warnings\n"
        );
    }
}

/// The JSON output is one document that YAML (a superset of JSON) reads, with the
/// counts matching the findings.
#[test]
fn json_is_well_formed() {
    let case = fixtures().join("cases/several-json");
    let work = prepare(&case, "json-well-formed");
    let mut args = vec!["check".to_string(), "--format".into(), "json".into()];
    args.extend(repo_args(&work));
    let output = xtask(&work, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let doc: serde_yaml::Value = serde_yaml::from_slice(&output.stdout).expect("JSON parses");
    let findings = doc["findings"].as_sequence().unwrap();
    assert_eq!(findings.len(), 2);
    assert_eq!(doc["errors"].as_u64(), Some(1));
    assert_eq!(doc["warnings"].as_u64(), Some(1));
    for f in findings {
        for field in ["rule", "severity", "path", "subject", "message"] {
            assert!(f[field].is_string(), "{field} in {f:?}");
        }
        assert!(f["line"].as_u64().is_some_and(|l| l >= 1));
    }
    assert_eq!(output.status.code(), Some(1));
}

/// `chart-not-bumped`: with `--base`, a template change needs a higher version.
#[test]
fn chart_not_bumped_against_a_git_base() {
    let work = scratch("check-chart-not-bumped");
    copy_tree(&fixtures().join("split"), &work);
    let charts = work.join("charts");
    git(&charts, &["init", "-q", "-b", "main"]);
    git(&charts, &["add", "."]);
    git(&charts, &["commit", "-q", "-m", "chart 0.1.4"]);
    let run = |work: &Path| xtask_on(work, &["check", "--base", "HEAD"]);

    // Nothing changed: fine.
    let out = run(&work);
    assert_eq!(
        (text(&out.stdout).as_str(), out.status.code()),
        ("0 errors, 0 warnings\n", Some(0))
    );

    // A template change without a bump: refused.
    let template = charts.join("charts/postgres/templates/deployment.yaml");
    let changed = fs::read_to_string(&template)
        .unwrap()
        .replace("replicas: 1", "replicas: 1 # one server");
    fs::write(&template, changed).unwrap();
    let out = run(&work);
    assert_eq!(
        text(&out.stdout),
        // Run from the folder holding both repositories: paths start with the repository's folder.
        "charts/charts/postgres/Chart.yaml:3: error[chart-not-bumped]: the chart's templates changed since HEAD \
         (charts/postgres/templates/deployment.yaml), but its version is 0.1.4, not above 0.1.4\n  = help: bump \
         `version:` to 0.1.5 (a patch bump) and move the umbrella's `postgres` dependency to admit it\n1 error, 0 warnings\n"
    );
    assert_eq!(out.status.code(), Some(1));

    // A new template file counts as a change too, even before `git add`.
    let chart = charts.join("charts/postgres/Chart.yaml");
    fs::write(
        &template,
        fs::read_to_string(&template)
            .unwrap()
            .replace(" # one server", ""),
    )
    .unwrap();
    fs::write(
        charts.join("charts/postgres/templates/service.yaml"),
        "kind: Service\n",
    )
    .unwrap();
    let out = run(&work);
    assert!(
        text(&out.stdout).contains("(charts/postgres/templates/service.yaml)"),
        "{}",
        text(&out.stdout)
    );

    // Bumped: fine (the umbrella's `>=0.1.4` admits 0.1.5).
    fs::write(
        &chart,
        fs::read_to_string(&chart)
            .unwrap()
            .replace("version: 0.1.4", "version: 0.1.5"),
    )
    .unwrap();
    let out = run(&work);
    assert_eq!(
        (text(&out.stdout).as_str(), out.status.code()),
        ("0 errors, 0 warnings\n", Some(0))
    );

    // A revision the repository lacks: could not run.
    let out = xtask_on(&work, &["check", "--base", "no-such-rev"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--base no-such-rev: not a revision"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());
}

/// It could not run: exit 2 with the reason, nothing on stdout.
#[test]
fn bad_input_exits_2() {
    let work = scratch("check-bad-input");
    let out = xtask(
        &work,
        &["check", "--phalanx", work.join("nowhere").to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(
        text(&out.stderr).contains("no such folder"),
        "{}",
        text(&out.stderr)
    );
    let out = xtask(&work, &["check", "--format", "yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("unknown format `yaml`"),
        "{}",
        text(&out.stderr)
    );
}
