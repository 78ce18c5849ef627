//! The edited fixture charts render with Helm's own engine (PyPI's `helm-python-sdk`,
//! through `tests/helm_render.py`), and the Deployment rendered with each chosen
//! environment's values carries the new triplet, while the others do not.

use crate::common::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where a layout keeps its chart and values files.
struct Tree {
    chart: &'static str,
    values: &'static str,
    /// `yes` when the entries sit under `postgres:` (split).
    nested: &'static str,
}

const SPLIT: Tree = Tree {
    chart: "charts/charts/postgres",
    values: "phalanx/services/postgres",
    nested: "yes",
};
const IN_TREE: Tree = Tree {
    chart: "phalanx/services/postgres",
    values: "phalanx/services/postgres",
    nested: "no",
};
const APPLICATIONS: Tree = Tree {
    chart: "phalanx/applications/postgres",
    values: "phalanx/applications/postgres",
    nested: "no",
};

/// The container env of the chart rendered with one values file, one line a variable.
fn render(chart: &Path, values: &Path, nested: &str) -> Vec<String> {
    let out = Command::new("python3")
        .arg(root().join("tests/helm_render.py"))
        .arg(chart)
        .arg(values)
        .arg(nested)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{} with {} does not render (is helm-python-sdk installed? `.ci/run` installs it):\n{}",
        chart.display(),
        values.display(),
        text(&out.stderr)
    );
    text(&out.stdout).lines().map(str::to_string).collect()
}

/// Each environment of a tree with its values file, sorted.
fn environments(work: &Path, tree: &Tree) -> Vec<(String, PathBuf)> {
    let dir = work.join(tree.values);
    let mut envs: Vec<(String, PathBuf)> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let name = p
                .file_name()?
                .to_str()?
                .strip_prefix("values-")?
                .strip_suffix(".yaml")
                .or_else(|| {
                    p.file_name()?
                        .to_str()?
                        .strip_prefix("values-")?
                        .strip_suffix(".yml")
                })?
                .to_string();
            Some((name, p))
        })
        .collect();
    envs.sort();
    envs
}

/// What one add-db run must show in the rendered Deployments.
struct Expect<'a> {
    chosen: &'a [&'a str],
    id: &'a str,
    user: &'a str,
    database: &'a str,
    secret_key: &'a str,
}

/// Adds a database to some environments of a fixture and checks every environment's
/// rendered env against the render before the edit.
fn check(fixture: &str, args: &[&str], expect: Expect) {
    check_tree(fixture, &SPLIT, args, expect);
}

fn check_tree(fixture: &str, tree: &Tree, args: &[&str], expect: Expect) {
    let work = scratch(&format!("helm-{}", fixture.replace('/', "-")));
    copy_tree(&root().join("tests/fixtures").join(fixture), &work);
    let chart = work.join(tree.chart);
    let envs = environments(&work, tree);
    assert!(
        envs.len() > expect.chosen.len(),
        "{fixture}: some environment must stay without the database"
    );
    let before: Vec<Vec<String>> = envs
        .iter()
        .map(|(_, values)| render(&chart, values, tree.nested))
        .collect();

    let out = xtask_on(&work, args);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let prefix = format!("VRO_DB_{}_", expect.id);
    let triplet = [
        format!("{prefix}USER={}", expect.user),
        format!("{prefix}DB={}", expect.database),
        format!("{prefix}PASSWORD<-postgres/{}", expect.secret_key),
    ];
    for ((env, values), before) in envs.iter().zip(before) {
        let after = render(&chart, values, tree.nested);
        let ours: Vec<&String> = after.iter().filter(|l| l.starts_with(&prefix)).collect();
        if expect.chosen.contains(&env.as_str()) {
            assert_eq!(
                ours,
                triplet.iter().collect::<Vec<_>>(),
                "{fixture} {env}: the rendered env:\n{after:#?}"
            );
            let others: Vec<&String> = after.iter().filter(|l| !l.starts_with(&prefix)).collect();
            assert_eq!(
                others,
                before.iter().collect::<Vec<_>>(),
                "{fixture} {env}: the other variables changed"
            );
        } else {
            assert!(
                ours.is_empty(),
                "{fixture} {env}: an environment not chosen has {ours:?}"
            );
            assert_eq!(
                after, before,
                "{fixture} {env}: an environment not chosen renders differently"
            );
        }
        assert!(
            after
                .iter()
                .any(|l| l == "ROOT_PASSWORD<-postgres/root_password"),
            "{fixture} {env}: {after:#?}"
        );
    }
}

#[test]
fn quoted_four_space_yml_chart_renders_the_new_triplet() {
    check(
        "split-quoted",
        &[
            "add-db",
            "exposure_checker",
            "--env",
            "dev",
            "--env",
            "staging",
            "--user",
            "checker",
            "--database",
            "exposures",
        ],
        Expect {
            chosen: &["dev", "staging"],
            id: "EXPOSURECHECKER",
            user: "checker",
            database: "exposures",
            secret_key: "exposure_checker_password",
        },
    );
}

#[test]
fn plain_two_space_chart_renders_the_new_triplet() {
    check(
        "split-range",
        &["add-db", "exposurelog", "--env", "summit"],
        Expect {
            chosen: &["summit"],
            id: "EXPOSURELOG",
            user: "exposurelog",
            database: "exposurelog",
            secret_key: "exposurelog_password",
        },
    );
}

#[test]
fn the_expected_trees_of_the_cases_render() {
    // The whole-tree expectations of the split cases are charts too: each must render.
    let case = root().join("tests/cases/split-quoted-all-envs/out");
    for (env, values) in environments(&case, &SPLIT) {
        let env_lines = render(&case.join(SPLIT.chart), &values, SPLIT.nested);
        assert!(
            env_lines
                .iter()
                .any(|l| l == "VRO_DB_EXPOSURELOG_USER=exposurelog"),
            "{env}: {env_lines:#?}"
        );
    }
}

#[test]
fn in_tree_chart_with_plain_end_renders_the_new_triplet() {
    check_tree(
        "layouts/intree",
        &IN_TREE,
        &["add-db", "exposurelog", "--env", "summit"],
        Expect {
            chosen: &["summit"],
            id: "EXPOSURELOG",
            user: "exposurelog",
            database: "exposurelog",
            secret_key: "exposurelog_password",
        },
    );
}

#[test]
fn applications_charts_render_the_new_triplet() {
    for fixture in [
        "layouts/applications-secrets-sorted",
        "layouts/applications-generator",
    ] {
        check_tree(
            fixture,
            &APPLICATIONS,
            &[
                "add-db",
                "vo_cutouts",
                "--env",
                "idfdev",
                "--user",
                "cutouts",
            ],
            Expect {
                chosen: &["idfdev"],
                id: "VOCUTOUTS",
                user: "cutouts",
                database: "vo_cutouts",
                secret_key: "vo_cutouts_password",
            },
        );
    }
}
