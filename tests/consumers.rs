//! The applications on the other side, end to end on a tree modeled on today's
//! phalanx (`tests/fixtures/check/consumers`: `environments/` enabling different
//! applications per environment; gafaelfawr-, nublado-, times-square- and
//! exposurelog-shaped consumers in each pointer shape; copies both ways; `if:`
//! flags; applications enabled where the database is not).
//!
//! Every add-db and remove-db case compares the resolver's verdicts per
//! environment before and after: the `copy-*` findings of `check --format json`
//! (the keys `phalanx secrets sync` could not resolve, with their environments)
//! may shrink, never grow; a refused case leaves the tree byte for byte.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn fixture() -> PathBuf {
    root().join("tests/fixtures/check/consumers")
}

fn work(name: &str) -> PathBuf {
    let work = scratch(&format!("consumers-{name}"));
    copy_tree(&fixture(), &work);
    work
}

/// The unresolvable keys per environment: `(rule, subject, environment)` of
/// every `copy-*` finding, one per environment its message names.
fn verdicts(work: &Path) -> BTreeSet<(String, String, String)> {
    let out = xtask_on(work, &["check", "--format", "json"]);
    let doc: serde_yaml::Value = serde_yaml::from_slice(&out.stdout).expect("check's JSON parses");
    let envs = ["idfdev", "usdfdev", "usdfint", "usdfprod"];
    let mut set = BTreeSet::new();
    for f in doc["findings"].as_sequence().unwrap() {
        let rule = f["rule"].as_str().unwrap();
        if !rule.starts_with("copy-") || rule == "copy-without-source" {
            continue;
        }
        let message = f["message"].as_str().unwrap();
        for env in envs.iter().filter(|e| message.contains(*e)) {
            set.insert((
                rule.to_string(),
                f["subject"].as_str().unwrap().to_string(),
                env.to_string(),
            ));
        }
    }
    set
}

/// Runs an edit command; on success, no environment may gain an unresolvable key.
fn edit(work: &Path, args: &[&str]) -> std::process::Output {
    let before = verdicts(work);
    let tree = read_tree(work);
    let out = xtask_on(work, args);
    let after = verdicts(work);
    if out.status.success() {
        let new: Vec<_> = after.difference(&before).collect();
        assert!(new.is_empty(), "{args:?} made keys unresolvable: {new:?}");
    } else {
        assert_eq!(read_tree(work), tree, "{args:?} failed but changed files");
        assert_eq!(after, before);
    }
    out
}

fn file(work: &Path, relative: &str) -> String {
    std::fs::read_to_string(work.join("phalanx").join(relative)).unwrap_or_default()
}

#[test]
fn the_fixture_is_clean_and_resolves_everywhere() {
    let work = work("clean");
    let out = xtask_on(&work, &["check"]);
    assert_eq!(text(&out.stdout), "0 errors, 0 warnings\n");
    assert!(verdicts(&work).is_empty());
}

#[test]
fn a_copy_from_an_application_the_environment_does_not_enable_is_refused() {
    let work = work("copy-not-enabled");
    // times-square runs in idfdev but not in usdfdev.
    let out = edit(
        &work,
        &[
            "add-db",
            "ook",
            "--env",
            "idfdev",
            "--env",
            "usdfdev",
            "--secret",
            "copy:times-square:TS_GITHUB_APP_PRIVATE_KEY",
        ],
    );
    assert_refused(
        &out,
        1,
        "times-square is not enabled in usdfdev",
        "copy from a disabled application",
    );
    // Where it runs, the copy resolves (a static key) and is written.
    let out = edit(
        &work,
        &[
            "add-db",
            "ook",
            "--env",
            "idfdev",
            "--secret",
            "copy:times-square:TS_GITHUB_APP_PRIVATE_KEY",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(file(&work, "applications/postgres/secrets.yaml")
        .contains("key: TS_GITHUB_APP_PRIVATE_KEY"));
}

/// The first case: postgres's entry copies from exposurelog, and add-db
/// would set the database in usdfint, which does not enable exposurelog.
#[test]
fn adding_a_database_where_its_copy_source_does_not_run_is_refused() {
    let work = work("copy-existing-entry");
    let phalanx = work.join("phalanx");
    let postgres = phalanx.join("applications/postgres/secrets.yaml");
    let copied = std::fs::read_to_string(&postgres).unwrap().replacen(
        "  if: exposurelog_db\n  generate:\n    type: password\n",
        "  if: exposurelog_db\n  copy:\n    application: exposurelog\n    key: exposurelog_password\n",
        1,
    );
    std::fs::write(&postgres, copied).unwrap();
    std::fs::write(
        phalanx.join("applications/exposurelog/secrets.yaml"),
        "exposurelog_password:\n  description: d\n  if: internalDatabase\n  generate:\n    type: password\n",
    )
    .unwrap();
    assert!(verdicts(&work).is_empty());
    let out = edit(
        &work,
        &[
            "add-db",
            "exposurelog",
            "--env",
            "usdfdev",
            "--env",
            "usdfint",
        ],
    );
    assert_refused(
        &out,
        1,
        "exposurelog is not enabled in usdfint",
        "source not running",
    );
    assert!(text(&out.stderr).contains("applications/postgres/secrets.yaml:"));
}

#[test]
fn a_copy_whose_source_key_is_missing_is_refused() {
    let work = work("copy-missing");
    let out = edit(
        &work,
        &[
            "add-db",
            "ook",
            "--env",
            "idfdev",
            "--secret",
            "copy:times-square:NO_SUCH_KEY",
        ],
    );
    assert_refused(
        &out,
        1,
        "times-square/NO_SUCH_KEY is declared nowhere",
        "missing key",
    );
    // gafaelfawr's database-password exists only where config.internalDatabase is true.
    std::fs::write(
        work.join("phalanx/applications/gafaelfawr/values-usdfint.yaml"),
        "config:\n  internalDatabase: false\n",
    )
    .unwrap();
    let before = verdicts(&work);
    assert!(before.contains(&(
        "copy-source-missing".into(),
        "postgres/gafaelfawr_password".into(),
        "usdfint".into()
    )));
    let out = edit(
        &work,
        &[
            "add-db",
            "ook",
            "--env",
            "usdfint",
            "--secret",
            "copy:gafaelfawr:database-password",
        ],
    );
    assert_refused(
        &out,
        1,
        "gafaelfawr/database-password does not exist in usdfint",
        "key under a false if",
    );
}

#[test]
fn copy_loops_and_dangling_sources_are_refused() {
    let work = work("copy-loop");
    let out = edit(
        &work,
        &[
            "add-db",
            "ook",
            "--env",
            "idfdev",
            "--secret",
            "copy:postgres:root_password",
        ],
    );
    assert_refused(
        &out,
        2,
        "postgres would copy its password from itself",
        "loop",
    );
    let out = edit(
        &work,
        &[
            "add-db",
            "ook",
            "--env",
            "idfdev",
            "--secret",
            "copy:nosuchapp:k",
        ],
    );
    assert_refused(&out, 1, "applications/nosuchapp does not exist", "dangling");
}

#[test]
fn app_copies_are_guarded_where_the_database_is_set() {
    let work = work("app-guard");
    // nightreport has no secrets.yaml yet and runs in idfdev and usdfint.
    std::fs::create_dir_all(work.join("phalanx/applications/nightreport")).unwrap();
    for env in ["idfdev", "usdfint"] {
        let path = work.join(format!("phalanx/environments/values-{env}.yaml"));
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(
            &path,
            text.replace(
                "  postgres: true\n",
                "  nightreport: true\n  postgres: true\n",
            ),
        )
        .unwrap();
    }
    let out = edit(
        &work,
        &[
            "add-db",
            "nightreport",
            "--env",
            "idfdev",
            "--app",
            "nightreport",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(
        "`internalDatabase: true` is in applications/nightreport/values-ENV.yaml of idfdev"
    ));
    let secrets = file(&work, "applications/nightreport/secrets.yaml");
    assert!(secrets.contains("database-password:\n"), "{secrets}");
    assert!(
        secrets.contains("  if: internalDatabase\n  copy:\n"),
        "{secrets}"
    );
    assert_eq!(
        file(&work, "applications/nightreport/values-idfdev.yaml"),
        "internalDatabase: true\n"
    );
    assert_eq!(
        file(&work, "applications/nightreport/values-usdfint.yaml"),
        ""
    );
    // Without the `if:`, usdfint (nightreport enabled, no database) would not resolve.
    assert!(verdicts(&work).is_empty());
    let out = xtask_on(&work, &["check"]);
    assert_eq!(text(&out.stdout), "0 errors, 0 warnings\n");
    // A second run changes nothing.
    let tree = read_tree(&work);
    let out = edit(
        &work,
        &[
            "add-db",
            "nightreport",
            "--env",
            "idfdev",
            "--app",
            "nightreport",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(read_tree(&work), tree);
}

#[test]
fn an_existing_flag_is_reused() {
    let work = work("app-flag");
    let out = edit(
        &work,
        &[
            "add-db",
            "hubextra",
            "--env",
            "idfdev",
            "--env",
            "usdfdev",
            "--app",
            "nublado:extra",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let secrets = file(&work, "applications/nublado/secrets.yaml");
    assert!(secrets.contains("extra:\n  description: \"Password of the hubextra database, copied from postgres.\"\n  if: hub.internalDatabase\n"), "{secrets}");
    assert!(text(&out.stdout).contains("existing flag `hub.internalDatabase`"));
    assert!(verdicts(&work).is_empty());
    // Where the flag holds but the database would not be set, the plan is refused.
    let out = edit(
        &work,
        &[
            "add-db",
            "hubonly",
            "--env",
            "idfdev",
            "--app",
            "nublado:only",
        ],
    );
    assert_refused(
        &out,
        1,
        "postgres/hubonly_password does not exist in usdfdev",
        "flag wider than the database",
    );
}

#[test]
fn ambiguous_keys_are_quoted() {
    for (i, key) in [
        "true", "1", "0x1", "1e3", "True", "yes", "012", "1_000", "on",
    ]
    .iter()
    .enumerate()
    {
        let work = work(&format!("quoted-{i}"));
        let out = edit(
            &work,
            &[
                "add-db",
                "ook",
                "--env",
                "idfdev",
                "--env",
                "usdfdev",
                "--app",
                &format!("exposurelog:{key}"),
            ],
        );
        assert!(out.status.success(), "{key}: {}", text(&out.stderr));
        let secrets = file(&work, "applications/exposurelog/secrets.yaml");
        assert!(
            secrets.contains(&format!("\"{key}\":\n")),
            "{key}: {secrets}"
        );
        let doc: serde_yaml::Value = serde_yaml::from_str(&secrets).unwrap();
        assert!(
            doc.get(*key).is_some(),
            "{key} reads back as the string key"
        );
    }
}

#[test]
fn remove_db_refuses_while_an_application_points_at_the_database() {
    let work = work("remove-pointer");
    let out = edit(&work, &["remove-db", "times_square", "--env", "usdfint"]);
    assert_refused(
        &out,
        1,
        "applications/times-square/values-usdfint.yaml:3: times-square in usdfint: config.databaseUrl points at timessquare@postgres.postgres/timessquare",
        "databaseUrl",
    );
    let out = edit(&work, &["remove-db", "exposurelog", "--env", "usdfdev"]);
    assert_refused(
        &out,
        1,
        "applications/exposurelog/values-usdfdev.yaml:3: exposurelog in usdfdev: db.host",
        "host",
    );
    let out = edit(&work, &["remove-db", "gafaelfawr", "--env", "idfdev"]);
    assert_refused(&out, 1, "applications/gafaelfawr/values-idfdev.yaml:2: gafaelfawr in idfdev: config.internalDatabase is true", "flag");
    // Once times-square points elsewhere in usdfint and stops copying, usdfint's entry goes.
    std::fs::write(
        work.join("phalanx/applications/times-square/values-usdfint.yaml"),
        "config:\n  databaseUrl: \"postgresql://timessquare@rsp-db-rw.postgres-db/timessquare\"\n",
    )
    .unwrap();
    let out = edit(&work, &["remove-db", "times_square", "--env", "usdfint"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!file(&work, "applications/postgres/values-usdfint.yaml").contains("times_square_db"));
}

#[path = "consumers/vault.rs"]
mod vault;
