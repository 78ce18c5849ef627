use super::*;

fn db(name: &str) -> DbName {
    DbName {
        name: name.to_string(),
    }
}

const ROOT_PLAIN_2: &str = "\
env:
  - name: ROOT_PASSWORD
    valueFrom:
      secretKeyRef:
        name: postgres
        key: root_password
";

const BLOCK_PLAIN_2: &str = "  {{- with .Values.jupyterhub_db }}
  - name: VRO_DB_JUPYTERHUB_USER
    value: {{ .user }}
  - name: VRO_DB_JUPYTERHUB_DB
    value: {{ .db }}
  - name: VRO_DB_JUPYTERHUB_PASSWORD
    valueFrom:
      secretKeyRef:
        name: postgres
        key: jupyterhub_password
  {{- end }}
";

const TAIL: &str = "volumeMounts:\n  - name: storage\n";

const ROOT_QUOTED_4: &str = "            env:
                - name: \"ROOT_PASSWORD\"
                  valueFrom:
                      secretKeyRef:
                          name: \"postgres\"
                          key: \"root_password\"
";

const BLOCK_QUOTED_4: &str = "                {{ with .Values.gafaelfawr_db }}
                - name: \"VRO_DB_GAFAELFAWR_USER\"
                  value: {{ .user | quote }}
                - name: \"VRO_DB_GAFAELFAWR_DB\"
                  value: {{ .db | quote }}
                - name: \"VRO_DB_GAFAELFAWR_PASSWORD\"
                  valueFrom:
                      secretKeyRef:
                          name: \"postgres\"
                          key: \"gafaelfawr_password\"
                {{ end }}
";

fn cat(parts: &[&str]) -> String {
    parts.concat()
}

/// `block` for another database: `from` becomes `to` in its keys, and `from` in
/// capitals becomes `to_id` in its variables.
fn renamed(block: &str, from: &str, to: &str, to_id: &str) -> String {
    block.replace(&from.to_uppercase(), to_id).replace(from, to)
}

/// A case where `add_block` puts `new` between `before` and `after`.
fn inserted(
    what: &'static str,
    before: &[&str],
    new: &str,
    after: &[&str],
) -> (&'static str, String, String) {
    let input = cat(&[before, after].concat());
    let output = cat(&[before, &[new], after].concat());
    (what, input, output)
}

/// `in -> out` cases of `add_block` for `exposure_log`.
fn cases() -> Vec<(&'static str, String, String)> {
    let new_plain_2 = &renamed(BLOCK_PLAIN_2, "jupyterhub", "exposure_log", "EXPOSURELOG");
    let new_quoted_4 = &renamed(BLOCK_QUOTED_4, "gafaelfawr", "exposure_log", "EXPOSURELOG");
    // After a root-password entry in the quoted 4-space style the style comes from
    // the entry, so `{{-` and `{{- end }}`.
    let new_quoted_4_from_root = &new_quoted_4
        .replace("{{ with", "{{- with")
        .replace("{{ end", "{{- end");
    let commented_block = &format!(
        "  {{{{/*\n{}  */}}}}\n",
        renamed(BLOCK_PLAIN_2, "jupyterhub", "old", "OLD")
    );
    let commented_one_line = "  {{- /* {{- with .Values.old_db }} {{- end }} */}}\n";
    let wrapped = |open: &str| {
        format!(
            "  {open}\n{}  {{{{- end }}}}\n",
            renamed(BLOCK_PLAIN_2, "jupyterhub", "gafaelfawr", "GAFAELFAWR")
        )
    };
    let if_wrapped = &wrapped("{{- if .Values.gafaelfawr_enabled }}");
    let range_wrapped = &wrapped("{{- range $i := until 1 }}");
    let second_quoted_4 = &renamed(BLOCK_QUOTED_4, "gafaelfawr", "narrativelog", "NARRATIVELOG");
    vec![
        inserted(
            "a commented-out block after the last block: the new one goes before the comment",
            &[ROOT_PLAIN_2, BLOCK_PLAIN_2],
            new_plain_2,
            &[commented_block, TAIL],
        ),
        inserted(
            "a one-line comment holding a block",
            &[ROOT_PLAIN_2, BLOCK_PLAIN_2],
            new_plain_2,
            &[commented_one_line, TAIL],
        ),
        inserted(
            "the last block inside an `if`: the new one goes after the `if`'s end",
            &[ROOT_PLAIN_2, BLOCK_PLAIN_2, if_wrapped],
            new_plain_2,
            &[TAIL],
        ),
        inserted(
            "the last block inside a `range`",
            &[ROOT_PLAIN_2, BLOCK_PLAIN_2, range_wrapped],
            new_plain_2,
            &[TAIL],
        ),
        inserted(
            "the whole env list inside an `if`: the new block stays inside it",
            &[
                "{{- if .Values.enabled }}\n",
                ROOT_PLAIN_2,
                BLOCK_PLAIN_2,
                if_wrapped,
            ],
            new_plain_2,
            &[TAIL, "{{- end }}\n"],
        ),
        inserted(
            "plain, 2 spaces, after the last block",
            &[ROOT_PLAIN_2, BLOCK_PLAIN_2],
            new_plain_2,
            &[TAIL],
        ),
        inserted(
            "plain, only the root-password entry",
            &[ROOT_PLAIN_2],
            new_plain_2,
            &[TAIL],
        ),
        (
            "plain, no final newline",
            cat(&[ROOT_PLAIN_2, BLOCK_PLAIN_2.trim_end()]),
            cat(&[ROOT_PLAIN_2, BLOCK_PLAIN_2, new_plain_2.trim_end()]),
        ),
        inserted(
            "quoted, 4 spaces, `{{ end }}`",
            &[ROOT_QUOTED_4, BLOCK_QUOTED_4],
            new_quoted_4,
            &[TAIL],
        ),
        inserted(
            "quoted, 4 spaces, only the root-password entry",
            &[ROOT_QUOTED_4],
            new_quoted_4_from_root,
            &[TAIL],
        ),
        inserted(
            "after the last of two blocks, not the first",
            &[ROOT_QUOTED_4, BLOCK_QUOTED_4, second_quoted_4],
            new_quoted_4,
            &[TAIL],
        ),
    ]
}

#[test]
fn add_block_table() {
    for (what, input, output) in cases() {
        let got = add_block(&input, &db("exposure_log")).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(got, output, "{what}");
        let parsed = parse(&got).unwrap();
        let block = parsed.block("exposure_log_db").unwrap();
        assert_eq!(block.malformation(), None, "{what}");
        assert_eq!(block.ids(), ["EXPOSURELOG"], "{what}");
    }
}

#[test]
fn add_then_remove_gives_the_original_bytes() {
    for (what, input, _) in cases() {
        let added = add_block(&input, &db("exposure_log")).unwrap();
        let removed =
            remove_block(&added, &db("exposure_log")).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(removed, input, "{what}");
    }
}

#[test]
fn remove_block_takes_its_comment() {
    let commented = BLOCK_PLAIN_2.replacen(
        "  {{- with",
        "  {{- /* The notebook hub. */}}\n  {{- with",
        1,
    );
    let input = cat(&[ROOT_PLAIN_2, &commented, TAIL]);
    assert_eq!(
        remove_block(&input, &db("jupyterhub")).unwrap(),
        cat(&[ROOT_PLAIN_2, TAIL])
    );
    let err = remove_block(&input, &db("nothing")).unwrap_err();
    assert!(err.message.contains("nothing_db"), "{err}");
}

#[test]
fn a_present_block_is_refused_with_its_line() {
    let input = cat(&[ROOT_PLAIN_2, BLOCK_PLAIN_2]);
    let err = add_block(&input, &db("jupyterhub")).unwrap_err();
    assert_eq!(err.line, Some(7));
    assert!(err.message.contains("already present"), "{err}");
}

#[test]
fn neither_block_nor_root_entry_is_refused() {
    let err = add_block("env:\n  - name: PGDATA\n    value: /data\n", &db("a")).unwrap_err();
    assert!(err.message.contains("root_password"), "{err}");
    assert!(err.message.contains("by hand"), "{err}");
}

#[test]
fn parse_reads_blocks_with_lines() {
    let text = cat(&[
        ROOT_PLAIN_2,
        BLOCK_PLAIN_2,
        &BLOCK_QUOTED_4.replace("                ", "  "),
    ]);
    let t = parse(&text).unwrap();
    assert_eq!(t.root_entry, Some((1, 5)));
    assert!(t.stray_vars.is_empty());
    let summary: Vec<(&str, usize, usize, usize)> = t
        .blocks
        .iter()
        .map(|b| (b.values_key.as_str(), b.line, b.first, b.last))
        .collect();
    assert_eq!(
        summary,
        [("jupyterhub_db", 7, 6, 16), ("gafaelfawr_db", 18, 17, 27)]
    );
    let hub = &t.blocks[0];
    let vars: Vec<(&str, Field, usize)> = hub
        .vars
        .iter()
        .map(|v| (v.id.as_str(), v.field, v.line))
        .collect();
    assert_eq!(
        vars,
        [
            ("JUPYTERHUB", Field::User, 8),
            ("JUPYTERHUB", Field::Db, 10),
            ("JUPYTERHUB", Field::Password, 12)
        ]
    );
    assert_eq!(hub.secret_keys, [("jupyterhub_password".to_string(), 16)]);
    assert_eq!(t.blocks[1].secret_key(), Some("gafaelfawr_password"));
    assert_eq!(t.blocks[1].malformation(), None);
    assert_eq!(
        t.secret_keys().map(|(k, _)| k).collect::<Vec<_>>(),
        ["jupyterhub_password", "gafaelfawr_password"]
    );
}

#[test]
fn style_of_each_kind() {
    let text = cat(&[ROOT_QUOTED_4, BLOCK_QUOTED_4]);
    let s = style(&text, &parse(&text).unwrap()).unwrap();
    assert_eq!(
        s,
        Style {
            with_indent: 16,
            with_open: "{{".into(),
            end: "{{ end }}".into(),
            end_indent: 16,
            item_indent: 16,
            step: 4,
            quoted: true
        }
    );
    let text = cat(&[ROOT_PLAIN_2, BLOCK_PLAIN_2]);
    let s = style(&text, &parse(&text).unwrap()).unwrap();
    assert_eq!(
        (
            s.with_open.as_str(),
            s.end.as_str(),
            s.item_indent,
            s.step,
            s.quoted
        ),
        ("{{-", "{{- end }}", 2, 2, false)
    );
}

#[test]
fn malformed_blocks_say_why() {
    let block = |body: &str| cat(&["env:\n{{- with .Values.x_db }}\n", body, "{{- end }}\n"]);
    let full = "- name: VRO_DB_X_USER\n  value: {{ .user }}\n- name: VRO_DB_X_DB\n  value: {{ .db }}\n- name: VRO_DB_X_PASSWORD\n  valueFrom:\n    secretKeyRef:\n      name: postgres\n      key: x_password\n";
    let cases = [
        (
            full.replace("- name: VRO_DB_X_DB\n  value: {{ .db }}\n", ""),
            "lacks VRO_DB_*_DB",
        ),
        (full.replace("VRO_DB_X_DB", "VRO_DB_Y_DB"), "mixes the ids"),
        (full.replace("VRO_DB_X_", "VRO_DB_Z_"), "implies `X`"),
        (
            full.replace("key: x_password", "key: y_password"),
            "implies `x_password`",
        ),
        (
            full.replace("      key: x_password\n", ""),
            "reads no secret key",
        ),
    ];
    for (body, expected) in cases {
        let t = parse(&block(&body)).unwrap();
        let why = t.block("x_db").unwrap().malformation().unwrap_or_default();
        assert!(why.contains(expected), "{expected}: {why}");
    }
    let t = parse(&block(full)).unwrap();
    assert_eq!(t.block("x_db").unwrap().malformation(), None);
    // `-` in a secret key counts as `_`.
    let dashed = full
        .replace("key: x_password", "key: \"x-y_password\"")
        .replace("VRO_DB_X_", "VRO_DB_XY_");
    let t = parse(&block(&dashed).replace("x_db", "x_y_db")).unwrap();
    assert_eq!(t.block("x_y_db").unwrap().malformation(), None);
    assert!(secret_key_matches("vo-cutouts_password", "vo_cutouts"));
    assert!(!secret_key_matches("vo_cutouts_pw", "vo_cutouts"));
}

#[test]
fn underscore_ids_and_stray_variables_are_read() {
    let text = "env:\n- name: VRO_DB_EXPOSURE_CHECKER_USER\n  value: a\n{{- if eq 1 1 }}\n- name: VRO_DB_LOOSE_DB\n  value: b\n{{- end }}\n";
    let t = parse(text).unwrap();
    let stray: Vec<(&str, usize)> = t
        .stray_vars
        .iter()
        .map(|v| (v.id.as_str(), v.line))
        .collect();
    assert_eq!(stray, [("EXPOSURE_CHECKER", 2), ("LOOSE", 5)]);
    assert!(t.blocks.is_empty());
    // A values key that is not `_db` but guards variables is a block, and a malformed one.
    let t = parse(&text.replace("if eq 1 1", "if .Values.enabled")).unwrap();
    assert_eq!(t.blocks.len(), 1);
    assert!(t.blocks[0]
        .malformation()
        .unwrap()
        .contains("does not end in `_db`"));
}

#[test]
fn unbalanced_actions_are_errors_with_lines() {
    let err = parse("a: 1\n{{- end }}\n").unwrap_err();
    assert_eq!(err.line, Some(2), "{err}");
    assert!(err.message.contains("without a matching"), "{err}");
    let err = parse("a: 1\n{{- with .Values.x_db }}\nb: 2\n").unwrap_err();
    assert_eq!(err.line, Some(2), "{err}");
    assert!(err.message.contains("no matching `end`"), "{err}");
}

#[test]
fn actions_and_env_vars_are_read_by_hand() {
    let found: Vec<&str> =
        actions("  {{- with .Values.a_db -}} x {{ .user | quote }}{{end}}").collect();
    assert_eq!(found, ["with .Values.a_db", ".user | quote", "end"]);
    assert_eq!(actions("no action {{ here").count(), 0);
    assert_eq!(
        env_var("  - name: VRO_DB_EXPOSURE_CHECKER_DB # the db"),
        Some(("EXPOSURE_CHECKER", Field::Db))
    );
    assert_eq!(
        env_var("- name: \"VRO_DB_X_PASSWORD\""),
        Some(("X", Field::Password))
    );
    assert_eq!(env_var("- name: 'VRO_DB_X_USER'"), Some(("X", Field::User)));
    for line in [
        "- name: VRO_DB_X_HOST",
        "- name: VRO_DB__USER",
        "-name: VRO_DB_X_USER",
        "  name: VRO_DB_X_USER",
        "- name: VRO_DB_X-Y_USER",
    ] {
        assert_eq!(env_var(line), None, "{line}");
    }
}

#[test]
fn a_commented_block_is_not_a_block() {
    let text = cat(&[ROOT_PLAIN_2, "{{/*\n", BLOCK_PLAIN_2, "*/}}\n", TAIL]);
    let parsed = parse(&text).unwrap();
    assert!(parsed.blocks.is_empty(), "{:?}", parsed.blocks);
    assert!(parsed.stray_vars.is_empty());
}
