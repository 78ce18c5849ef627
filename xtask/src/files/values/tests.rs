use super::*;

/// One `in -> out` case of `add_entry`.
struct Case {
    what: &'static str,
    nesting: Nesting,
    input: &'static str,
    key: &'static str,
    user: &'static str,
    db: &'static str,
    output: &'static str,
}

const UNDER: Nesting = Nesting::UnderPostgres;
const TOP: Nesting = Nesting::TopLevel;

const CASES: &[Case] = &[
    Case {
        what: "plain block entries, other keys after",
        nesting: UNDER,
        input: "postgres:\n  a_db:\n    user: a\n    db: a\n  vault_secrets:\n    path: secret/x/postgres\n",
        key: "exposurelog_db",
        user: "exposurelog",
        db: "exposurelog",
        output: "postgres:\n  a_db:\n    user: a\n    db: a\n  exposurelog_db:\n    user: exposurelog\n    db: exposurelog\n  vault_secrets:\n    path: secret/x/postgres\n",
    },
    Case {
        what: "single quotes are copied",
        nesting: UNDER,
        input: "postgres:\n  a_db:\n    user: 'a'\n    db: 'a'\n",
        key: "b_db",
        user: "jovyan",
        db: "b",
        output: "postgres:\n  a_db:\n    user: 'a'\n    db: 'a'\n  b_db:\n    user: 'jovyan'\n    db: 'b'\n",
    },
    Case {
        what: "double quotes, 4-space indentation",
        nesting: UNDER,
        input: "postgres:\n    a_db:\n        user: \"a\"\n        db: \"a\"\n    volume_size: 1Gi\n",
        key: "b_db",
        user: "b",
        db: "b",
        output: "postgres:\n    a_db:\n        user: \"a\"\n        db: \"a\"\n    b_db:\n        user: \"b\"\n        db: \"b\"\n    volume_size: 1Gi\n",
    },
    Case {
        what: "mixed quotes: the last entry's style wins, other keys keep theirs",
        nesting: UNDER,
        input: "postgres:\n  debug: \"true\"\n  a_db:\n    user: \"a\"\n    db: \"a\"\n  c_db:\n    user: 'c'\n    db: 'c'\n  vault_secrets:\n    path: \"secret/x\"\n",
        key: "b_db",
        user: "b",
        db: "b",
        output: "postgres:\n  debug: \"true\"\n  a_db:\n    user: \"a\"\n    db: \"a\"\n  c_db:\n    user: 'c'\n    db: 'c'\n  b_db:\n    user: 'b'\n    db: 'b'\n  vault_secrets:\n    path: \"secret/x\"\n",
    },
    Case {
        what: "mixed quotes: the majority's style wins over the last entry's",
        nesting: UNDER,
        input: "postgres:\n  a_db:\n    user: \"a\"\n    db: \"a\"\n  b_db:\n    user: \"b\"\n    db: \"b\"\n  c_db:\n    user: c\n    db: c\n",
        key: "d_db",
        user: "d",
        db: "d",
        output: "postgres:\n  a_db:\n    user: \"a\"\n    db: \"a\"\n  b_db:\n    user: \"b\"\n    db: \"b\"\n  c_db:\n    user: c\n    db: c\n  d_db:\n    user: \"d\"\n    db: \"d\"\n",
    },
    Case {
        what: "entries mostly separated by blank lines: the new one is too",
        nesting: TOP,
        input: "a_db:\n  user: a\n  db: a\n\nb_db:\n  user: b\n  db: b\n\nc_db:\n  user: c\n  db: c\nd_db:\n  user: d\n  db: d\n",
        key: "e_db",
        user: "e",
        db: "e",
        output: "a_db:\n  user: a\n  db: a\n\nb_db:\n  user: b\n  db: b\n\nc_db:\n  user: c\n  db: c\nd_db:\n  user: d\n  db: d\n\ne_db:\n  user: e\n  db: e\n",
    },
    Case {
        what: "blank lines between entries are kept up",
        nesting: UNDER,
        input: "postgres:\n  a_db:\n    user: a\n    db: a\n\n  c_db:\n    user: c\n    db: c\n\n  vault_secrets:\n    path: x\n",
        key: "b_db",
        user: "b",
        db: "b",
        output: "postgres:\n  a_db:\n    user: a\n    db: a\n\n  c_db:\n    user: c\n    db: c\n\n  b_db:\n    user: b\n    db: b\n\n  vault_secrets:\n    path: x\n",
    },
    Case {
        what: "comments stay where they are",
        nesting: UNDER,
        input: "# The base environment.\npostgres:\n  # The notebook hub.\n  a_db:\n    user: a # the hub's role\n    db: a\n  # Storage.\n  volume_size: 1Gi\n",
        key: "b_db",
        user: "b",
        db: "b",
        output: "# The base environment.\npostgres:\n  # The notebook hub.\n  a_db:\n    user: a # the hub's role\n    db: a\n  b_db:\n    user: b\n    db: b\n  # Storage.\n  volume_size: 1Gi\n",
    },
    Case {
        what: "no final newline, entry last",
        nesting: UNDER,
        input: "postgres:\n  a_db:\n    user: \"a\"\n    db: \"a\"",
        key: "b_db",
        user: "b",
        db: "b",
        output: "postgres:\n  a_db:\n    user: \"a\"\n    db: \"a\"\n  b_db:\n    user: \"b\"\n    db: \"b\"",
    },
    Case {
        what: "no final newline, other keys last",
        nesting: UNDER,
        input: "postgres:\n  a_db:\n    user: a\n    db: a\n  vault_secrets:\n    path: 'secret/x'",
        key: "b_db",
        user: "b",
        db: "b",
        output: "postgres:\n  a_db:\n    user: a\n    db: a\n  b_db:\n    user: b\n    db: b\n  vault_secrets:\n    path: 'secret/x'",
    },
    Case {
        what: "postgres: with no entries yet, other keys",
        nesting: UNDER,
        input: "postgres:\n  vault_secrets:\n    enabled: true\n    path: secret/x\n",
        key: "b_db",
        user: "b",
        db: "b",
        output: "postgres:\n  b_db:\n    user: b\n    db: b\n  vault_secrets:\n    enabled: true\n    path: secret/x\n",
    },
    Case {
        what: "postgres: with no entries yet, 4 spaces",
        nesting: UNDER,
        input: "postgres:\n    volume_size: 1Gi\n",
        key: "b_db",
        user: "b",
        db: "b",
        output: "postgres:\n    b_db:\n        user: b\n        db: b\n    volume_size: 1Gi\n",
    },
    Case {
        what: "empty postgres: key",
        nesting: UNDER,
        input: "postgres:\nother: 1\n",
        key: "b_db",
        user: "b",
        db: "b",
        output: "postgres:\n  b_db:\n    user: b\n    db: b\nother: 1\n",
    },
    Case {
        what: "no postgres: key at all",
        nesting: UNDER,
        input: "other: 1\n",
        key: "b_db",
        user: "b",
        db: "b",
        output: "other: 1\npostgres:\n  b_db:\n    user: b\n    db: b\n",
    },
    Case {
        what: "flow-style entries: the new one in block style after them",
        nesting: UNDER,
        input: "postgres:\n  # CI.\n  a_db: {user: a, db: a}\n  c_db: {user: jovyan, db: c}\n  vault_secrets:\n    path: x\n",
        key: "b_db",
        user: "b",
        db: "b",
        output: "postgres:\n  # CI.\n  a_db: {user: a, db: a}\n  c_db: {user: jovyan, db: c}\n  b_db:\n    user: b\n    db: b\n  vault_secrets:\n    path: x\n",
    },
    Case {
        what: "top level, other keys after",
        nesting: TOP,
        input: "a_db:\n  user: a\n  db: a\nvolume_size: 1Gi\n",
        key: "b_db",
        user: "jovyan",
        db: "b",
        output: "a_db:\n  user: a\n  db: a\nb_db:\n  user: jovyan\n  db: b\nvolume_size: 1Gi\n",
    },
    Case {
        what: "top level, no entry yet",
        nesting: TOP,
        input: "volume_size: 1Gi\n",
        key: "b_db",
        user: "b",
        db: "b",
        output: "volume_size: 1Gi\nb_db:\n  user: b\n  db: b\n",
    },
    Case {
        what: "top level, blank-line separated keys",
        nesting: TOP,
        input: "image: x\n\nvolume_size: 1Gi\n",
        key: "b_db",
        user: "b",
        db: "b",
        output: "image: x\n\nvolume_size: 1Gi\n\nb_db:\n  user: b\n  db: b\n",
    },
    Case {
        what: "a word YAML 1.1 reads as a boolean is quoted",
        nesting: TOP,
        input: "a_db:\n  user: a\n  db: a\n",
        key: "b_db",
        user: "on",
        db: "b",
        output: "a_db:\n  user: a\n  db: a\nb_db:\n  user: \"on\"\n  db: b\n",
    },
];

#[test]
fn add_entry_table() {
    for case in CASES {
        let got = add_entry(case.input, case.nesting, case.key, case.user, case.db)
            .unwrap_or_else(|e| panic!("{}: {e}", case.what));
        assert_eq!(got, case.output, "{}", case.what);
        let parsed = parse(&got, case.nesting).unwrap();
        let entry = parsed
            .entry(case.key)
            .unwrap_or_else(|| panic!("{}: the new entry does not parse", case.what));
        assert_eq!(
            (entry.user.as_deref(), entry.db.as_deref()),
            (Some(case.user), Some(case.db)),
            "{}",
            case.what
        );
    }
}

#[test]
fn add_then_remove_gives_the_original_bytes() {
    // Files whose state before the edit the removal can restore exactly (the ones that
    // create `postgres:` or an empty container cannot be told apart afterwards).
    for case in CASES
        .iter()
        .filter(|c| !c.what.starts_with("no postgres") && !c.what.starts_with("empty"))
    {
        let added = add_entry(case.input, case.nesting, case.key, case.user, case.db).unwrap();
        let removed = remove_entry(&added, case.nesting, case.key)
            .unwrap_or_else(|e| panic!("{}: {e}", case.what));
        assert_eq!(removed, case.input, "{}", case.what);
    }
}

#[test]
fn remove_entry_takes_its_comment_and_one_blank_line() {
    let input = "postgres:\n  a_db:\n    user: a\n    db: a\n\n  # Exposure log.\n  b_db: {user: b, db: b}\n\n  c_db:\n    user: c\n    db: c\n";
    let expected =
        "postgres:\n  a_db:\n    user: a\n    db: a\n\n  c_db:\n    user: c\n    db: c\n";
    assert_eq!(remove_entry(input, UNDER, "b_db").unwrap(), expected);
    let err = remove_entry(input, UNDER, "x_db").unwrap_err();
    assert!(err.message.contains("`x_db` is not present"), "{err}");
}

/// `add_entry`'s refusals: why, and the line where the case names one.
#[test]
fn add_entry_refusals_say_why() {
    let cases = [
        (
            "postgres:\n  a_db: {user: a, db: a}\n",
            None,
            "already present",
        ),
        ("# x\npostgres: {volume_size: 1Gi}\n", Some(2), "inline"),
    ];
    for (input, line, why) in cases {
        let err = add_entry(input, UNDER, "a_db", "a", "a").unwrap_err();
        if line.is_some() {
            assert_eq!(err.line, line, "{err}");
        }
        assert!(err.message.contains(why), "{err}");
    }
}

#[test]
fn parse_reads_entries_lines_and_problems() {
    let text = "# env\npostgres:\n  debug: true\n  jupyterhub_db:\n    user: 'jovyan'\n    db: \"jupyterhub\"\n\n  flow_db: {user: f, db: g}\n  bad_db: 3\n  half_db:\n    user: h\n  vault_secrets:\n    path: secret/k8s_operator/x/postgres\nother_db: {user: o, db: o}\n";
    let parsed = parse(text, UNDER).unwrap();
    let keys: Vec<(&str, usize)> = parsed
        .entries
        .iter()
        .map(|e| (e.key.as_str(), e.line))
        .collect();
    assert_eq!(
        keys,
        [
            ("jupyterhub_db", 4),
            ("flow_db", 8),
            ("bad_db", 9),
            ("half_db", 10)
        ]
    );
    let hub = parsed.entry("jupyterhub_db").unwrap();
    assert_eq!(
        (hub.user.as_deref(), hub.db.as_deref()),
        (Some("jovyan"), Some("jupyterhub"))
    );
    assert_eq!(
        (hub.first, hub.last, hub.indent, hub.child_indent),
        (3, 5, 2, Some(4))
    );
    assert_eq!(hub.quote, Quote::Single);
    assert_eq!(parsed.entry("flow_db").unwrap().user.as_deref(), Some("f"));
    assert_eq!(parsed.entry("flow_db").unwrap().problem, None);
    assert!(parsed
        .entry("bad_db")
        .unwrap()
        .problem
        .as_deref()
        .unwrap()
        .contains("not a mapping"));
    assert!(parsed
        .entry("half_db")
        .unwrap()
        .problem
        .as_deref()
        .unwrap()
        .contains("`db`"));
    assert_eq!(
        parsed.vault_path.as_deref(),
        Some("secret/k8s_operator/x/postgres")
    );
    // At the top level the same file holds only `other_db`.
    let top = parse(text, TOP).unwrap();
    assert_eq!(
        top.entries
            .iter()
            .map(|e| e.key.as_str())
            .collect::<Vec<_>>(),
        ["other_db"]
    );
}

#[test]
fn vault_path_from_global() {
    let parsed = parse(
        "global:\n  vaultSecretsPath: secret/k8s_operator/x/\na_db: {user: a, db: a}\n",
        TOP,
    )
    .unwrap();
    assert_eq!(
        parsed.vault_path.as_deref(),
        Some("secret/k8s_operator/x/postgres")
    );
}

#[test]
fn parse_errors_carry_lines() {
    let dup = parse(
        "postgres:\n  a_db: {user: a, db: a}\n  a_db: {user: b, db: b}\n",
        UNDER,
    )
    .unwrap_err();
    assert_eq!(dup.line, Some(3), "{dup}");
    assert!(dup.message.contains("duplicate"), "{dup}");
    let broken = parse("postgres:\n  a_db: {user: a, db: a\n  b: 1\n", UNDER).unwrap_err();
    assert!(broken.line.is_some(), "{broken}");
    assert!(broken.message.contains("does not parse"), "{broken}");
    let not_mapping = parse("- a\n- b\n", TOP).unwrap_err();
    assert_eq!(not_mapping.line, Some(1));
    let scalar = parse("# x\npostgres: 3\n", UNDER).unwrap_err();
    assert_eq!(scalar.line, Some(2), "{scalar}");
    assert!(scalar.message.contains("not a mapping"), "{scalar}");
}

#[test]
fn empty_file_has_no_entries() {
    assert!(parse("", UNDER).unwrap().entries.is_empty());
    assert!(parse("# only a comment\n", TOP).unwrap().entries.is_empty());
}

#[test]
fn an_inline_container_shows_its_entries_and_refuses_edits() {
    let text = "postgres: {orphan_db: {user: orphan, db: orphan}}\n";
    let parsed = parse(text, UNDER).unwrap();
    assert_eq!(parsed.entries.len(), 1);
    assert_eq!(parsed.entries[0].key, "orphan_db");
    assert_eq!(parsed.entries[0].line, 1);
    assert_eq!(parsed.entries[0].user.as_deref(), Some("orphan"));
    assert!(remove_entry(text, UNDER, "orphan_db").is_err());
    assert!(add_entry(text, UNDER, "b_db", "b", "b").is_err());
}
