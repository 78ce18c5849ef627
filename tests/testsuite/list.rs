//! `cargo xtask list`: the databases x environments matrix, compared whole.

use crate::common::*;
use std::path::Path;

fn list(work: &Path, format: &str) -> (String, Option<i32>) {
    let mut args = vec!["list".to_string(), "--format".into(), format.into()];
    args.extend(repo_args(work));
    let out = xtask(work, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    // The scratch folder, which JSON names in `repositories`, shows as `$WORK`.
    let stdout = text(&out.stdout).replace(&work.display().to_string(), "$WORK");
    (stdout, out.status.code())
}

#[test]
fn split_text_table() {
    let work = scratch("list-split-text");
    copy_tree(&root().join("tests/fixtures/check/split"), &work);
    let (out, status) = list(&work, "text");
    assert_eq!(status, Some(0));
    assert_eq!(
        out,
        "\
layout: split; secret source: installer/generate_secrets.py
DATABASE KEY         USER             DATABASE         SECRET KEY                 TEMPLATE  SECRET     base  idfdev  minikube  summit
exposure_checker_db  exposurechecker  exposurechecker  exposure_checker_password  yes       generated  yes   -       -         -
gafaelfawr_db        gafaelfawr       gafaelfawr       gafaelfawr_password        yes       generated  yes   yes     yes       yes
jupyterhub_db        jovyan           jupyterhub       jupyterhub_password        yes       generated  yes   yes     yes       yes
narrativelog_db      narrativelog     narrativelog     narrativelog_password      yes       generated  yes   -       yes       -
vo_cutouts_db        vocutouts        vocutouts        vo-cutouts_password        yes       generated  yes   -       -         -
"
    );
}

#[test]
fn applications_json_with_a_copied_secret_and_a_missing_one() {
    let work = scratch("list-applications-json");
    copy_tree(&root().join("tests/fixtures/check/applications"), &work);
    let secrets = work.join("phalanx/applications/postgres/secrets.yaml");
    let text_before = std::fs::read_to_string(&secrets).unwrap();
    std::fs::write(
        &secrets,
        text_before.replace("gafaelfawr_password:", "gafaelfawr_pw:"),
    )
    .unwrap();
    let (out, status) = list(&work, "json");
    assert_eq!(status, Some(0));
    assert_eq!(
        out,
        concat!(
            r#"{"layout": "applications", "secret_source": "applications/postgres/secrets.yaml", "#,
            r#""environments": ["idfdev", "usdfdev"], "databases": ["#,
            r#"{"key": "gafaelfawr_db", "user": "gafaelfawr", "database": "gafaelfawr", "secret_key": "gafaelfawr_password", "#,
            r#""template": true, "secret": null, "environments": {"idfdev": {"user": "gafaelfawr", "db": "gafaelfawr"}, "#,
            r#""usdfdev": {"user": "gafaelfawr", "db": "gafaelfawr"}}}, "#,
            r#"{"key": "times_square_db", "user": "timessquare", "database": "timessquare", "secret_key": "times_square_password", "#,
            r#""template": true, "secret": "copied from times-square/TS_DATABASE_PASSWORD", "#,
            r#""environments": {"idfdev": {"user": "timessquare", "db": "timessquare"}, "usdfdev": null}}], "repositories": {"phalanx": "$WORK/phalanx"}}"#,
            "\n"
        )
    );
    let doc: serde_yaml::Value = serde_yaml::from_str(&out).expect("JSON parses");
    assert_eq!(doc["databases"].as_sequence().map(Vec::len), Some(2));
}

#[test]
fn an_unparsable_file_stops_list_with_its_line() {
    let work = scratch("list-unparsable");
    copy_tree(&root().join("tests/fixtures/check/split"), &work);
    let values = work.join("phalanx/services/postgres/values-summit.yaml");
    std::fs::write(&values, "postgres:\n  a: [\n").unwrap();
    let mut args = vec!["list".to_string()];
    args.extend(repo_args(&work));
    let out = xtask(&work, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("values-summit.yaml:"),
        "{}",
        text(&out.stderr)
    );
}
