//! What the cluster's postgres container would create for one environment.
//!
//! The container sees the environment variables the chart's template renders: each
//! `{{- with .Values.<key> }}` block whose values entry exists passes its
//! `VRO_DB_<ID>_USER`, `_DB` and `_PASSWORD` (the later block wins when two set the
//! same name). Its start-up script takes every `VRO_DB_..._USER` variable, reads
//! `<ID>` as the third `_`-separated field, and creates the role and database only when
//! `VRO_DB_<ID>_USER`, `_DB` and `_PASSWORD` are all set. This module replays that on
//! the parsed template and values file (the same parsers `check` uses, no Helm), so
//! `local-db up` creates exactly those entries and names the ones the container skips.

use anyhow::Result;
use std::collections::BTreeMap;

use crate::error::bad_input;
use crate::files::helm_template::{Field, Template};
use crate::files::values::DbEntry;
use crate::names::{check_sql_identifier, container};

/// A values entry the container would create: its role and database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    pub key: String,
    pub user: String,
    pub db: String,
}

/// A values entry the container would skip, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub key: String,
    /// 1-based line of the entry in its values file.
    pub line: usize,
    pub reason: String,
}

/// What the container would do with an environment's entries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub wanted: Vec<Wanted>,
    pub skipped: Vec<Skipped>,
}

fn field_suffix(field: Field) -> &'static str {
    match field {
        Field::User => "USER",
        Field::Db => "DB",
        Field::Password => "PASSWORD",
    }
}

/// Replays the container's start-up on `entries` rendered through `template`.
/// `file` names the values file in errors: an entry the container would create but
/// whose user or database is no plain SQL identifier is bad input (exit 2).
pub fn outcome(template: &Template, entries: &[DbEntry], file: &str) -> Result<Outcome> {
    // The rendered environment: variable name -> the values key whose block set it.
    let present: Vec<&str> = entries.iter().map(|e| e.key.as_str()).collect();
    let mut rendered: BTreeMap<String, &str> = BTreeMap::new();
    for block in &template.blocks {
        if !present.contains(&block.values_key.as_str()) {
            continue;
        }
        for var in &block.vars {
            let name = container::var(&var.id, field_suffix(var.field));
            rendered.insert(name, block.values_key.as_str());
        }
    }

    let mut out = Outcome::default();
    for entry in entries {
        let at = |message: String| {
            bad_input(format!(
                "{file}:{}: {message}; see `{} check`",
                entry.line,
                crate::flags::program_name()
            ))
        };
        if let Some(problem) = &entry.problem {
            return Err(at(format!("`{}`: {problem}", entry.key)));
        }
        match skip_reason(template, &rendered, entry) {
            Some(reason) => out.skipped.push(Skipped {
                key: entry.key.clone(),
                line: entry.line,
                reason,
            }),
            None => {
                let (Some(user), Some(db)) = (&entry.user, &entry.db) else {
                    unreachable!("skip_reason skips an entry without user or db")
                };
                check_sql_identifier("user", user)
                    .map_err(|e| at(format!("`{}`: {e}", entry.key)))?;
                check_sql_identifier("database", db)
                    .map_err(|e| at(format!("`{}`: {e}", entry.key)))?;
                out.wanted.push(Wanted {
                    key: entry.key.clone(),
                    user: user.clone(),
                    db: db.clone(),
                });
            }
        }
    }
    Ok(out)
}

/// Why the container would not create this entry, if it would not.
fn skip_reason(
    template: &Template,
    rendered: &BTreeMap<String, &str>,
    entry: &DbEntry,
) -> Option<String> {
    let Some(block) = template.block(&entry.key) else {
        return Some("no template block".to_string());
    };
    let user_ids: Vec<&str> = block
        .vars
        .iter()
        .filter(|v| v.field == Field::User)
        .map(|v| v.id.as_str())
        .collect();
    let Some(id) = user_ids.first().copied() else {
        return Some("the template block sets no `VRO_DB_*_USER`".to_string());
    };
    if !container::reads_whole(id) {
        let read = container::read_id(id);
        return Some(format!("`VRO_DB_{id}_*`: the container reads id `{read}`"));
    }
    let has = |field: Field| block.vars.iter().any(|v| v.id == id && v.field == field);
    if !has(Field::Db) {
        return Some(format!("the template block sets no `VRO_DB_{id}_DB`"));
    }
    if !has(Field::Password) || block.secret_key().is_none() {
        return Some("no password key".to_string());
    }
    for field in [Field::User, Field::Db, Field::Password] {
        let name = container::var(id, field_suffix(field));
        if let Some(winner) = rendered.get(&name).filter(|k| **k != entry.key) {
            return Some(format!(
                "`{name}` is set again by the block of `{winner}`, which wins"
            ));
        }
    }
    if entry.user.is_none() {
        return Some(format!("no `user`: `VRO_DB_{id}_USER` would be empty"));
    }
    if entry.db.is_none() {
        return Some(format!("no `db`: `VRO_DB_{id}_DB` would be empty"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::{helm_template, values};

    /// A template block for `key`: `VRO_DB_<id>_USER` and `_DB`, and `_PASSWORD`
    /// from `secret_key` when there is one.
    fn block(key: &str, id: &str, secret_key: Option<&str>) -> String {
        let mut text = format!(
            "{{{{- with .Values.{key} }}}}\n\
             - name: VRO_DB_{id}_USER\n  value: {{{{ .user }}}}\n\
             - name: VRO_DB_{id}_DB\n  value: {{{{ .db }}}}\n"
        );
        if let Some(secret_key) = secret_key {
            text += &format!(
                "- name: VRO_DB_{id}_PASSWORD\n  valueFrom:\n    secretKeyRef:\n      \
                 name: postgres\n      key: {secret_key}\n"
            );
        }
        text + "{{- end }}\n"
    }

    /// Four blocks: two complete ones, one without a password, and `copy_db` setting
    /// `notebook_db`'s variables again.
    fn template() -> String {
        [
            "env:\n".to_string(),
            block("notebook_db", "NOTEBOOK", Some("notebook_password")),
            block(
                "exposure_checker_db",
                "EXPOSURE_CHECKER",
                Some("exposure_checker_password"),
            ),
            block("nokey_db", "NOKEY", None),
            block("copy_db", "NOTEBOOK", Some("copy_password")),
        ]
        .concat()
    }

    fn run(values_text: &str) -> Outcome {
        let template = helm_template::parse(&template()).unwrap();
        let parsed = values::parse(values_text, values::Nesting::TopLevel).unwrap();
        outcome(&template, &parsed.entries, "values-dev.yaml").unwrap()
    }

    fn reasons(outcome: &Outcome) -> Vec<(&str, usize, &str)> {
        outcome
            .skipped
            .iter()
            .map(|s| (s.key.as_str(), s.line, s.reason.as_str()))
            .collect()
    }

    #[test]
    fn creates_complete_triplets_and_names_the_skipped() {
        let got = run("notebook_db:\n  user: explorer\n  db: notebook\n\
                       exposure_checker_db: {user: checker, db: checker}\n\
                       nokey_db: {user: nokey, db: nokey}\n\
                       orphan_db: {user: orphan, db: orphan}\n");
        assert_eq!(
            got.wanted,
            [Wanted {
                key: "notebook_db".into(),
                user: "explorer".into(),
                db: "notebook".into()
            }]
        );
        assert_eq!(
            reasons(&got),
            [
                (
                    "exposure_checker_db",
                    4,
                    "`VRO_DB_EXPOSURE_CHECKER_*`: the container reads id `EXPOSURE`"
                ),
                ("nokey_db", 5, "no password key"),
                ("orphan_db", 6, "no template block"),
            ]
        );
    }

    #[test]
    fn a_later_block_setting_the_same_names_wins() {
        let got =
            run("notebook_db: {user: explorer, db: notebook}\ncopy_db: {user: copy, db: copy}\n");
        assert_eq!(got.wanted.len(), 1);
        assert_eq!(got.wanted[0].key, "copy_db");
        assert_eq!(
            reasons(&got),
            [(
                "notebook_db",
                1,
                "`VRO_DB_NOTEBOOK_USER` is set again by the block of `copy_db`, which wins"
            )]
        );
        // Without copy_db in the values, its block renders nothing.
        let got = run("notebook_db: {user: explorer, db: notebook}\n");
        assert_eq!(got.wanted.len(), 1);
        assert!(got.skipped.is_empty());
    }

    #[test]
    fn bad_identifiers_of_created_entries_are_bad_input() {
        let template = helm_template::parse(&template()).unwrap();
        let parsed = values::parse(
            "notebook_db: {user: Explorer, db: notebook}\n",
            values::Nesting::TopLevel,
        )
        .unwrap();
        let err = outcome(&template, &parsed.entries, "values-dev.yaml")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("values-dev.yaml:1: `notebook_db`"), "{err}");
    }
}
