use super::*;

fn db(name: &str) -> DbName {
    DbName {
        name: name.to_string(),
    }
}

const A: &str = "alpha_password:\n  description: \"Password for the alpha database.\"\n  if: alpha_db\n  generate:\n    type: password\n";
const Z: &str = "zeta_password:\n  description: \"Password for the zeta database.\"\n  if: zeta_db\n  copy:\n    application: zeta\n    key: database-password\n";
const ROOT: &str = "root_password:\n  description: \"The superuser's password.\"\n  generate:\n    type: password\n";
const NEW: &str = "exposurelog_password:\n  description: \"Password for the exposurelog database.\"\n  if: exposurelog_db\n  generate:\n    type: password\n";
const NEW_COPY: &str = "exposurelog_password:\n  description: \"Password for the exposurelog database, owned by exposurelog.\"\n  if: exposurelog_db\n  copy:\n    application: exposurelog\n    key: db-password\n";

fn cat(parts: &[&str]) -> String {
    parts.concat()
}

fn copy() -> Source {
    Source::Copy {
        application: "exposurelog".into(),
        key: "db-password".into(),
    }
}

fn cases() -> Vec<(&'static str, String, Source, String)> {
    vec![
        (
            "sorted, no blank lines",
            cat(&[A, ROOT, Z]),
            Source::Generate,
            cat(&[A, NEW, ROOT, Z]),
        ),
        (
            "sorted, blank lines",
            cat(&[A, "\n", ROOT, "\n", Z]),
            Source::Generate,
            cat(&[A, "\n", NEW, "\n", ROOT, "\n", Z]),
        ),
        (
            "sorted, last place",
            cat(&[A]),
            Source::Generate,
            cat(&[A, NEW]),
        ),
        (
            "sorted, blank lines, last place",
            cat(&[A, "\n", A.replace("alpha", "beta").as_str()]),
            Source::Generate,
            cat(&[A, "\n", A.replace("alpha", "beta").as_str(), "\n", NEW]),
        ),
        (
            "unsorted: at the end",
            cat(&[ROOT, A, Z]),
            Source::Generate,
            cat(&[ROOT, A, Z, NEW]),
        ),
        (
            "unsorted, blank lines",
            cat(&[Z, "\n", A]),
            Source::Generate,
            cat(&[Z, "\n", A, "\n", NEW]),
        ),
        (
            "copy, sorted",
            cat(&[A, ROOT]),
            copy(),
            cat(&[A, NEW_COPY, ROOT]),
        ),
        (
            "a comment above the next entry stays with it",
            cat(&[A, "# The superuser.\n", ROOT]),
            Source::Generate,
            cat(&[A, NEW, "# The superuser.\n", ROOT]),
        ),
        (
            "4-space indentation, unquoted descriptions",
            cat(&[
                &A.replace("  ", "    ").replace('"', ""),
                &Z.replace("  ", "    ").replace('"', ""),
            ]),
            Source::Generate,
            cat(&[
                &A.replace("  ", "    ").replace('"', ""),
                &NEW.replace("  ", "    ").replace('"', ""),
                &Z.replace("  ", "    ").replace('"', ""),
            ]),
        ),
        (
            "no final newline",
            cat(&[A, ROOT.trim_end()]),
            Source::Generate,
            cat(&[A, NEW, ROOT.trim_end()]),
        ),
    ]
}

#[test]
fn add_entry_table() {
    for (what, input, source, output) in cases() {
        let got = add_entry(&input, &db("exposurelog"), &source)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(got, output, "{what}");
        let entry = parse(&got)
            .unwrap()
            .entry("exposurelog_password")
            .cloned()
            .unwrap();
        assert_eq!(
            (entry.source, entry.condition.as_deref()),
            (source, Some("exposurelog_db")),
            "{what}"
        );
    }
}

#[test]
fn add_then_remove_gives_the_original_bytes() {
    for (what, input, source, _) in cases() {
        let added = add_entry(&input, &db("exposurelog"), &source).unwrap();
        let removed =
            remove_entry(&added, "exposurelog_password").unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(removed, input, "{what}");
    }
}

#[test]
fn an_empty_file_gets_its_first_entry() {
    // No description to copy the quoting of: plain.
    assert_eq!(
        add_entry("", &db("exposurelog"), &Source::Generate).unwrap(),
        NEW.replace('"', "")
    );
}

#[test]
fn a_declared_key_is_refused_with_its_line() {
    let err = add_entry(&cat(&[A, NEW]), &db("exposurelog"), &Source::Generate).unwrap_err();
    assert_eq!(err.line, Some(6), "{err}");
    assert!(err.message.contains("already declared"), "{err}");
    let err = remove_entry(A, "nothing_password").unwrap_err();
    assert!(err.message.contains("`nothing_password`"), "{err}");
}

#[test]
fn parse_reads_sources_conditions_and_lines() {
    let text = cat(&[
        "# Secrets of postgres.\n",
        A,
        "\n",
        ROOT,
        "manual_password:\n  description: set by hand\n  if: other_db\n",
        Z,
    ]);
    let s = parse(&text).unwrap();
    type Row<'a> = (&'a str, usize, usize, usize, Option<&'a str>, Option<usize>);
    let summary: Vec<Row> = s
        .entries
        .iter()
        .map(|e| {
            (
                e.key.as_str(),
                e.line,
                e.first,
                e.last,
                e.condition.as_deref(),
                e.condition_line,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("alpha_password", 2, 1, 5, Some("alpha_db"), Some(4)),
            ("root_password", 8, 7, 10, None, None),
            ("manual_password", 12, 11, 13, Some("other_db"), Some(14)),
            ("zeta_password", 15, 14, 19, Some("zeta_db"), Some(17)),
        ]
    );
    assert_eq!(s.entry("manual_password").unwrap().source, Source::Manual);
    assert_eq!(
        s.entry("zeta_password").unwrap().source,
        Source::Copy {
            application: "zeta".into(),
            key: "database-password".into()
        }
    );
}

#[test]
fn parse_errors_carry_lines() {
    let err = parse(&cat(&[A, ROOT, A])).unwrap_err();
    assert_eq!(err.line, Some(10), "{err}");
    assert!(err.message.contains("duplicate"), "{err}");
    let err = parse("- a\n").unwrap_err();
    assert_eq!(err.line, Some(1));
    assert!(parse("").unwrap().entries.is_empty());
}

#[test]
fn a_static_entry_has_neither_generate_nor_copy() {
    let out = add_entry(&cat(&[A, ROOT, Z]), &db("exposurelog"), &Source::Manual).unwrap();
    let static_entry = "exposurelog_password:\n  description: \"Password for the exposurelog database, set by hand in the static secret store.\"\n  if: exposurelog_db\n";
    assert_eq!(out, cat(&[A, static_entry, ROOT, Z]));
    assert_eq!(
        parse(&out)
            .unwrap()
            .entry("exposurelog_password")
            .unwrap()
            .source,
        Source::Manual
    );
}

#[test]
fn loosely_sorted_entries_get_the_alphabetical_place() {
    // `-` and `_` ordered either way, and one exception (`root_password` first).
    let entry = |k: &str| format!("{k}:\n  description: \"x\"\n  generate:\n    type: password\n");
    let keys = [
        "root_password",
        "a-one_password",
        "a_two_password",
        "c_password",
        "d-x_password",
        "f_password",
    ];
    let text: String = keys.iter().map(|k| entry(k)).collect();
    let out = add_entry(&text, &db("e"), &Source::Generate).unwrap();
    let order: Vec<String> = parse(&out)
        .unwrap()
        .entries
        .into_iter()
        .map(|e| e.key)
        .collect();
    assert_eq!(
        order,
        [
            "root_password",
            "a-one_password",
            "a_two_password",
            "c_password",
            "d-x_password",
            "e_password",
            "f_password"
        ]
    );
}

#[test]
fn an_application_copy_is_an_entry_copying_from_postgres() {
    let app = "bootstrap-token:\n  description: \"Token.\"\n  generate:\n    type: gafaelfawr-token\nredis-password:\n  description: \"Redis.\"\n  generate:\n    type: password\n";
    let out = add_app_copy(
        app,
        "exposurelog-password",
        "exposurelog",
        "exposurelog_password",
    )
    .unwrap();
    let new = "exposurelog-password:\n  description: \"Password of the exposurelog database, copied from postgres.\"\n  copy:\n    application: postgres\n    key: exposurelog_password\n";
    assert_eq!(
        out,
        app.replace("redis-password:", &format!("{new}redis-password:"))
    );
    assert_eq!(
        add_app_copy(
            &out,
            "exposurelog-password",
            "exposurelog",
            "exposurelog_password"
        )
        .unwrap(),
        out
    );
    assert!(add_app_copy(app, "redis-password", "exposurelog", "exposurelog_password").is_err());
    assert_eq!(
        add_app_copy(
            "",
            "database-password",
            "exposurelog",
            "exposurelog_password"
        )
        .unwrap(),
        new.replace("exposurelog-password:", "database-password:")
    );
}
