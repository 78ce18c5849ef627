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
//!
//! The container then processes the ids of `env | sort -r` in turn (`order`): a role
//! shared by two entries keeps the password of the one processed last, a shared
//! database is owned by the last `ALTER DATABASE ... OWNER` (`conflicts`). Every
//! function here takes the parsed triplets, so another command can reuse them.

use anyhow::Result;
use std::collections::BTreeMap;

use crate::error::bad_input;
use crate::files::helm_template::{Field, Template};
use crate::files::values::DbEntry;
use crate::names::check_sql_identifier;

/// A values entry the container would create: its role and database, the `<ID>` of
/// its `VRO_DB_<ID>_*` variables and the secret key its password comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted {
    pub key: String,
    pub user: String,
    pub db: String,
    pub id: String,
    pub secret_key: String,
}

/// A secret key that a rendered block reads (the pod cannot start without it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretRef {
    pub values_key: String,
    pub secret_key: String,
    /// 1-based line of the key in the template.
    pub line: usize,
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
    /// Every secret key the rendered blocks read, created or skipped.
    pub secret_refs: Vec<SecretRef>,
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
            let name = format!("VRO_DB_{}_{}", var.id, field_suffix(var.field));
            rendered.insert(name, block.values_key.as_str());
        }
    }

    let mut out = Outcome::default();
    for block in &template.blocks {
        if present.contains(&block.values_key.as_str()) {
            out.secret_refs
                .extend(block.secret_keys.iter().map(|(key, line)| SecretRef {
                    values_key: block.values_key.clone(),
                    secret_key: key.clone(),
                    line: *line,
                }));
        }
    }
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
                let (Some(user), Some(db), Some(block)) =
                    (&entry.user, &entry.db, template.block(&entry.key))
                else {
                    unreachable!("skip_reason skips an entry without user, db or block")
                };
                for (what, name) in [("user", user), ("database", db)] {
                    check_sql_identifier(what, name)
                        .map_err(|e| at(format!("`{}`: {e}{}", entry.key, on_the_cluster(name))))?;
                }
                let id = block.vars.iter().find(|v| v.field == Field::User);
                out.wanted.push(Wanted {
                    key: entry.key.clone(),
                    user: user.clone(),
                    db: db.clone(),
                    id: id.map(|v| v.id.clone()).unwrap_or_default(),
                    secret_key: block.secret_key().unwrap_or_default().to_string(),
                });
            }
        }
    }
    Ok(out)
}

/// What the cluster's container does with a name local-db refuses: its SQL is
/// unquoted, so PostgreSQL folds upper case; anything else fails there, silently.
fn on_the_cluster(name: &str) -> String {
    let folded = name.to_lowercase();
    if folded != name && check_sql_identifier("name", &folded).is_ok() {
        format!(
            " (the cluster's container would create `{folded}`: its unquoted SQL folds \
             `{name}` to lower case; write `{folded}`)"
        )
    } else {
        " (the cluster's container would fail on it and skip the entry silently: \
         its SQL runs with ON_ERROR_STOP=0)"
            .to_string()
    }
}

/// The line `env | sort -r` sorts `w` by: `VRO_DB_<ID>_USER=<user>`.
fn env_line(w: &Wanted) -> String {
    format!("VRO_DB_{}_USER={}", w.id, w.user)
}

/// The entries in the order the container processes them: its `env | sort -r`
/// (byte order, reversed).
pub fn order(wanted: &[Wanted]) -> Vec<Wanted> {
    let mut ordered = wanted.to_vec();
    ordered.sort_by_key(|w| std::cmp::Reverse(env_line(w)));
    ordered
}

/// What two entries sharing a role or a database do on the cluster, for entries in
/// the container's order: `(values key, warning)`; the key is that of an entry
/// whose service cannot log in, or whose role does not own its database.
pub fn conflicts(ordered: &[Wanted]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let last_with = |same: &dyn Fn(&Wanted) -> bool| ordered.iter().rev().find(|w| same(w));
    for w in ordered {
        let after = |other: &Wanted| {
            format!(
                "`VRO_DB_{}_*` (`{}`) is processed after `VRO_DB_{}_*` (`{}`): the container takes ids in \
                 reverse sorted order",
                other.id, other.key, w.id, w.key
            )
        };
        let role_winner = last_with(&|o: &Wanted| o.user == w.user);
        if let Some(winner) = role_winner.filter(|o| o.secret_key != w.secret_key && o.key != w.key)
        {
            out.push((
                w.key.clone(),
                format!(
                    "`{}` cannot log in on the cluster: its role `{}` ends with the password of `{}`, not `{}`; {}",
                    w.key,
                    w.user,
                    winner.secret_key,
                    w.secret_key,
                    after(winner)
                ),
            ));
        }
        let owner = last_with(&|o: &Wanted| o.db == w.db);
        if let Some(owner) = owner.filter(|o| o.user != w.user && o.key != w.key) {
            out.push((
                w.key.clone(),
                format!(
                    "`{}`: database `{}` is owned by `{}` on the cluster, not by `{}`: `ALTER DATABASE {} OWNER TO {}` \
                     comes last; {}",
                    w.key,
                    w.db,
                    owner.user,
                    w.user,
                    w.db,
                    owner.user,
                    after(owner)
                ),
            ));
        }
    }
    out
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
    if let Some((read, _)) = id.split_once('_') {
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
        let name = format!("VRO_DB_{id}_{}", field_suffix(field));
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
                db: "notebook".into(),
                id: "NOTEBOOK".into(),
                secret_key: "notebook_password".into(),
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
        assert!(
            err.contains("the cluster's container would create `explorer`"),
            "{err}"
        );
        let parsed = values::parse(
            "notebook_db: {user: no-tebook, db: notebook}\n",
            values::Nesting::TopLevel,
        )
        .unwrap();
        let err = outcome(&template, &parsed.entries, "values-dev.yaml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("skip the entry silently"), "{err}");
    }

    fn w(key: &str, id: &str, user: &str, db: &str, secret_key: &str) -> Wanted {
        Wanted {
            key: key.into(),
            user: user.into(),
            db: db.into(),
            id: id.into(),
            secret_key: secret_key.into(),
        }
    }

    #[test]
    fn ids_in_reverse_byte_order_as_env_sort_r() {
        let wanted = [
            w("a_db", "A", "a", "a", "a_password"),
            w("ab_db", "AB", "ab", "ab", "ab_password"),
            w("b_db", "B", "b", "b", "b_password"),
            w("a2_db", "A2", "a2", "a2", "a2_password"),
        ];
        let ids: Vec<String> = order(&wanted).into_iter().map(|w| w.id).collect();
        // `_` (0x5F) sorts after letters and digits: `A_USER` > `AB_USER` > `A2_USER`.
        assert_eq!(ids, ["B", "A", "AB", "A2"]);
    }

    #[test]
    fn shared_roles_and_databases_warn_for_the_losers() {
        let ordered = order(&[
            w("lab_db", "LAB", "jovyan", "lab", "lab_password"),
            w("hub_db", "HUB", "jovyan", "hub", "hub_password"),
            w("same_db", "SAME", "same", "same", "same_password"),
            w("other_db", "OTHER", "other", "same", "other_password"),
        ]);
        let found = conflicts(&ordered);
        let keys: Vec<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
        // LAB > HUB in reverse order: HUB is processed last and keeps the role.
        // SAME > OTHER: OTHER's owner change comes last.
        assert_eq!(keys, ["same_db", "lab_db"]);
        assert!(
            found[1].1.starts_with(
                "`lab_db` cannot log in on the cluster: its role `jovyan` ends with the password of \
                 `hub_password`, not `lab_password`"
            ),
            "{}",
            found[1].1
        );
        assert!(
            found[0]
                .1
                .contains("database `same` is owned by `other` on the cluster"),
            "{}",
            found[0].1
        );
        // One password key for both entries: both log in.
        let shared_key = order(&[
            w("lab_db", "LAB", "jovyan", "lab", "pw"),
            w("hub_db", "HUB", "jovyan", "hub", "pw"),
        ]);
        assert!(conflicts(&shared_key).is_empty());
    }
}
