//! `cargo xtask check` beyond its cases (`tests/cases/check-*`: a clean base tree
//! under `tests/fixtures/check/`, the `edits` that break it, the whole expected
//! output): every rule covered, the JSON document, `--base`, bad input.

use crate::cases::{case_dir, prepare};
use crate::common::*;
use std::fs;
use std::path::Path;

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
    assert_eq!(rules.len(), 23, "{rules:?}");
    for rule in rules.iter().filter(|r| *r != "chart-not-bumped") {
        let stdout = fs::read_to_string(case_dir(&format!("check-{rule}")).join("stdout"))
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
            fs::read_to_string(case_dir(&format!("check-{clean}")).join("stdout")).unwrap(),
            "0 errors, 0 warnings\n"
        );
    }
}

/// The JSON output is one document that YAML (a superset of JSON) reads, with the
/// counts matching the findings.
#[test]
fn json_is_well_formed() {
    let work = prepare("check-several-json");
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
    copy_tree(&root().join("tests/fixtures/check/split"), &work);
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
