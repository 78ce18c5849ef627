//! `add-db` then `remove-db` of the same name returns every file to its original
//! bytes, apart from chart versions, on every layout.

use crate::common::*;
use std::path::Path;

/// A tree's files with the version lines of `Chart.yaml` files masked.
fn without_versions(dir: &Path) -> Vec<(String, String)> {
    read_tree(dir)
        .into_iter()
        .map(|(name, bytes)| {
            let text = text(&bytes);
            let text = if name.ends_with("Chart.yaml") {
                text.lines()
                    .map(|l| {
                        if l.trim_start().starts_with("version:") {
                            "version: *"
                        } else {
                            l
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            } else {
                text
            };
            (name, text)
        })
        .collect()
}

fn round_trip(fixture: &Path, name: &str) {
    let label = fixture.file_name().unwrap().to_string_lossy().into_owned();
    let work = scratch(&format!("round-trip-{label}"));
    copy_tree(fixture, &work);
    let repos = repo_args(&work);
    let run = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(repos.iter().map(String::as_str));
        let out = xtask(&work, &all);
        assert!(
            out.status.success(),
            "{label}: {args:?} failed:\n{}",
            text(&out.stderr)
        );
    };
    run(&["add-db", name, "--all-envs"]);
    assert_ne!(
        without_versions(&work),
        without_versions(fixture),
        "{label}: add-db changed nothing"
    );
    run(&["remove-db", name]);
    assert_eq!(
        without_versions(&work),
        without_versions(fixture),
        "{label}: the round trip left a difference"
    );
}

#[test]
fn add_then_remove_restores_every_layout() {
    let layouts = root().join("tests/fixtures/layouts");
    let mut fixtures: Vec<_> = std::fs::read_dir(&layouts)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    fixtures.sort();
    fixtures.push(root().join("tests/cases/split-add-one-env/in"));
    assert!(fixtures.len() >= 5);
    for fixture in &fixtures {
        round_trip(fixture, "exposurelog");
        round_trip(fixture, "exposure_checker");
    }
}

#[test]
fn removing_one_environment_restores_its_file() {
    let fixture = root().join("tests/fixtures/layouts/intree");
    let work = scratch("round-trip-one-env");
    copy_tree(&fixture, &work);
    let repos = repo_args(&work);
    let values = "phalanx/services/postgres/values-summit.yaml";
    let original = std::fs::read(fixture.join(values)).unwrap();
    for args in [
        ["add-db", "exposurelog", "--env", "summit"],
        ["remove-db", "exposurelog", "--env", "summit"],
    ] {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(repos.iter().map(String::as_str));
        let out = xtask(&work, &all);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    }
    assert_eq!(
        text(&std::fs::read(work.join(values)).unwrap()),
        text(&original)
    );
}
