//! The edited generator runs under the real `python3` and makes the new key: on
//! each of the generator's shapes (methods, module calls, a returned dict; tabs,
//! a docstring holding an example call, a conditional call), `add-db` writes a call
//! that Python executes unconditionally, and `remove-db` takes it out again.
//! `tests/generator_run.py` imports the file and runs its postgres part.

use crate::common::*;
use std::path::Path;
use std::process::Command;

/// The postgres keys and values the generator makes in `environment`.
fn run_generator(file: &Path, environment: &str) -> serde_json_lite::Map {
    run_generator_for(file, environment, None)
}

/// With a component: the whole `generate()`, that component's keys and postgres'
/// (prefixed `postgres.`).
fn run_generator_for(
    file: &Path,
    environment: &str,
    component: Option<&str>,
) -> serde_json_lite::Map {
    let out = Command::new("python3")
        .arg(root().join("tests/generator_run.py"))
        .arg(file)
        .arg(environment)
        .args(component)
        .output()
        .expect("python3 runs (run `bash .ci/run` to install what is missing)");
    assert!(
        out.status.success(),
        "{}: the generator failed:\n{}",
        file.display(),
        text(&out.stderr)
    );
    serde_json_lite::parse_flat(&text(&out.stdout))
}

/// Just enough JSON for `{"k": "v", ...}` with plain strings.
mod serde_json_lite {
    pub type Map = Vec<(String, String)>;

    pub fn parse_flat(text: &str) -> Map {
        let body = text.trim().trim_start_matches('{').trim_end_matches('}');
        body.split(", ")
            .filter(|p| !p.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once(": ").expect("a JSON pair");
                (
                    k.trim_matches('"').to_string(),
                    v.trim_matches('"').to_string(),
                )
            })
            .collect()
    }
}

fn check_fixture(fixture: &Path, environments: &[&str]) {
    let label = fixture
        .to_string_lossy()
        .replace(&root().display().to_string(), "")
        .replace('/', "-");
    let work = scratch(&format!("python{label}"));
    copy_tree(fixture, &work);
    let generator = work.join("phalanx/installer/generate_secrets.py");
    let before = run_generator(&generator, environments[0]);
    let out = xtask_on(&work, &["add-db", "exposurelog", "--all-envs"]);
    assert!(
        out.status.success(),
        "{label}: add-db failed:\n{}",
        text(&out.stderr)
    );
    for env in environments {
        let after = run_generator(&generator, env);
        let new = after
            .iter()
            .find(|(k, _)| k == "exposurelog_password")
            .unwrap_or_else(|| {
                panic!("{label} ({env}): the edited generator does not make the key: {after:?}")
            });
        assert!(
            new.1.len() == 64 && new.1.bytes().all(|b| b.is_ascii_hexdigit()),
            "{label}: {new:?}"
        );
        let others: Vec<&String> = after
            .iter()
            .map(|(k, _)| k)
            .filter(|k| *k != "exposurelog_password")
            .collect();
        let mut expected: Vec<&String> = if *env == environments[0] {
            before.iter().map(|(k, _)| k).collect()
        } else {
            others.clone()
        };
        expected.sort();
        let mut others_sorted = others.clone();
        others_sorted.sort();
        assert_eq!(others_sorted, expected, "{label}: other keys changed");
    }
    let out = xtask_on(&work, &["remove-db", "exposurelog"]);
    assert!(
        out.status.success(),
        "{label}: remove-db failed:\n{}",
        text(&out.stderr)
    );
    let after = run_generator(&generator, environments[0]);
    assert!(
        after.iter().all(|(k, _)| k != "exposurelog_password"),
        "{label}: the key is still made after remove-db"
    );
}

#[test]
fn every_generator_shape_makes_the_new_key_under_python() {
    let layouts = root().join("tests/fixtures/layouts");
    for (fixture, envs) in [
        (
            root().join("tests/cases/split-add-one-env/in"),
            &["base"][..],
        ),
        (layouts.join("split-module-calls"), &["base"]),
        (layouts.join("split-dict"), &["base"]),
        // The call must not land under `if self.environment != "minikube":`.
        (
            layouts.join("split-tabs-conditional"),
            &["minikube", "base"],
        ),
        (layouts.join("intree"), &["idfint"]),
        (layouts.join("applications-generator"), &["idfdev"]),
    ] {
        check_fixture(&fixture, envs);
    }
}

/// `add-db --app APP[:KEY]` writes a copy that the generator's `generate()` runs: the
/// application's key holds the very value postgres has.
#[test]
fn the_application_copy_holds_the_postgres_password() {
    for (app_arg, component, key) in [
        ("exposurelog", "exposurelog", "database-password"),
        (
            "gafaelfawr:exposurelog-password",
            "gafaelfawr",
            "exposurelog-password",
        ),
    ] {
        let work = scratch(&format!("python-app-copy-{component}"));
        copy_tree(&root().join("tests/fixtures/split-methods"), &work);
        let out = xtask_on(
            &work,
            &["add-db", "exposurelog", "--env", "base", "--app", app_arg],
        );
        assert!(out.status.success(), "{app_arg}: {}", text(&out.stderr));
        let got = run_generator_for(
            &work.join("phalanx/installer/generate_secrets.py"),
            "base",
            Some(component),
        );
        let value = |k: &str| got.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        let copied = value(key).unwrap_or_else(|| panic!("{app_arg}: no `{key}` in {got:?}"));
        assert_eq!(
            Some(copied.clone()),
            value("postgres.exposurelog_password"),
            "{app_arg}"
        );
        assert_eq!(copied.len(), 64, "{app_arg}");
    }
}
