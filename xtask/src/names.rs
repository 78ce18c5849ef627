//! Database names and the identifiers derived from them.
//!
//! A name `exposure_checker` gives the values key `exposure_checker_db`, the secret
//! key `exposure_checker_password` and the container id `EXPOSURECHECKER`, whose
//! environment variables are `VRO_DB_EXPOSURECHECKER_{USER,DB,PASSWORD}`. The
//! container writes unquoted SQL with user and database, so both must be plain
//! lower-case identifiers that are not SQL reserved words.

use anyhow::Result;

use crate::error::bad_input;

/// PostgreSQL's longest identifier, in bytes (NAMEDATALEN - 1).
pub const MAX_IDENTIFIER_BYTES: usize = 63;

/// Words that unquoted SQL cannot use as a role or database name: PostgreSQL's
/// reserved key words (also those reserved except as function or type names) and
/// the role names the server keeps for itself.
const RESERVED: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "authorization",
    "binary",
    "both",
    "case",
    "cast",
    "check",
    "collate",
    "collation",
    "column",
    "concurrently",
    "constraint",
    "create",
    "cross",
    "current_catalog",
    "current_date",
    "current_role",
    "current_schema",
    "current_time",
    "current_timestamp",
    "current_user",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "false",
    "fetch",
    "for",
    "foreign",
    "freeze",
    "from",
    "full",
    "grant",
    "group",
    "having",
    "ilike",
    "in",
    "initially",
    "inner",
    "intersect",
    "into",
    "is",
    "isnull",
    "join",
    "lateral",
    "leading",
    "left",
    "like",
    "limit",
    "localtime",
    "localtimestamp",
    "natural",
    "none",
    "not",
    "notnull",
    "null",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "outer",
    "overlaps",
    "placing",
    "primary",
    "public",
    "references",
    "returning",
    "right",
    "select",
    "session_user",
    "similar",
    "some",
    "symmetric",
    "system_user",
    "table",
    "tablesample",
    "template0",
    "template1",
    "then",
    "to",
    "trailing",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "variadic",
    "verbose",
    "when",
    "where",
    "window",
    "with",
];

/// The identifiers one database entry is known by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbName {
    pub name: String,
}

impl DbName {
    /// The key of the values entry: `exposurelog_db`.
    pub fn values_key(&self) -> String {
        format!("{}_db", self.name)
    }
    /// The key of the password in the `postgres` secret: `exposurelog_password`.
    pub fn secret_key(&self) -> String {
        format!("{}_password", self.name)
    }
    /// The `<ID>` of the container's `VRO_DB_<ID>_*` variables.
    pub fn env_id(&self) -> String {
        env_id_of(&self.name)
    }
}

/// The container id for a name: upper case, underscores dropped.
pub fn env_id_of(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '_')
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// The container's rule for its `VRO_DB_<ID>_<FIELD>` variables, in one place
/// (`add-db`, `local-db` and `check` use it): the start-up script takes each
/// `VRO_DB_..._USER`, splits the name on `_` and reads the third field as the id,
/// so an `<ID>` holding `_` is read short and its database skipped; two blocks
/// whose ids are the same once `_` is dropped are one database to it.
pub mod container {
    /// `VRO_DB_<ID>_<FIELD>`.
    pub fn var(id: &str, field: &str) -> String {
        format!("VRO_DB_{id}_{field}")
    }

    /// The id the container reads for `<ID>`: up to its first `_`.
    pub fn read_id(id: &str) -> &str {
        id.split_once('_').map_or(id, |(read, _)| read)
    }

    /// Whether the container reads `<ID>` whole.
    pub fn reads_whole(id: &str) -> bool {
        read_id(id) == id
    }

    /// Whether two ids stand for the same database (the same once `_` is dropped).
    pub fn same(a: &str, b: &str) -> bool {
        a.replace('_', "") == b.replace('_', "")
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn the_container_reads_the_third_field() {
            assert_eq!(
                var("EXPOSURECHECKER", "USER"),
                "VRO_DB_EXPOSURECHECKER_USER"
            );
            assert_eq!(read_id("EXPOSURE_CHECKER"), "EXPOSURE");
            assert!(reads_whole("GAFAELFAWR") && !reads_whole("VO_CUTOUTS"));
            assert!(same("VO_CUTOUTS", "VOCUTOUTS") && !same("A", "B"));
        }
    }
}

/// The database name a values key stands for (`exposurelog_db` -> `exposurelog`).
pub fn name_of_values_key(key: &str) -> Option<&str> {
    key.strip_suffix("_db").filter(|n| !n.is_empty())
}

/// The name a secret key stands for (`vo-cutouts_password` -> `vo-cutouts`).
pub fn name_of_secret_key(key: &str) -> Option<&str> {
    key.strip_suffix("_password").filter(|n| !n.is_empty())
}

/// Validates a database name given on the command line.
pub fn parse_db_name(name: &str) -> Result<DbName> {
    check_identifier("database name", name, true)?;
    let db = DbName {
        name: name.to_string(),
    };
    for derived in [db.values_key(), db.secret_key()] {
        if derived.len() > MAX_IDENTIFIER_BYTES {
            return Err(bad_input(format!(
                "invalid database name `{name}`: the derived key `{derived}` is {} bytes long, \
                 PostgreSQL and Helm allow at most {MAX_IDENTIFIER_BYTES}; choose a shorter name",
                derived.len()
            )));
        }
    }
    Ok(db)
}

/// Validates a role or database identifier (`--user`, `--database`, or a values file's).
pub fn check_sql_identifier(what: &str, value: &str) -> Result<()> {
    check_identifier(what, value, false)
}

/// Why `value` is not a valid identifier, or `None` when it is. Used by `check`
/// to report values entries without stopping.
pub fn identifier_problem(value: &str) -> Option<String> {
    check_sql_identifier("identifier", value)
        .err()
        .map(|e| e.to_string())
}

/// `; did you mean `a` or `b`?` for the candidates that are valid themselves, or
/// nothing when none is (a name full of punctuation gets no made-up suggestion).
fn did_you_mean(candidates: &[String], is_name: bool) -> String {
    let valid: Vec<String> = candidates
        .iter()
        .filter(|c| check_identifier("name", c, is_name).is_ok())
        .map(|c| format!("`{c}`"))
        .collect();
    if valid.is_empty() {
        "; use lower-case letters, digits and `_`".to_string()
    } else {
        format!("; did you mean {}?", valid.join(" or "))
    }
}

fn check_identifier(what: &str, value: &str, is_name: bool) -> Result<()> {
    let fail = |why: String| Err(bad_input(format!("invalid {what} `{value}`: {why}")));
    if value.is_empty() {
        return fail("it is empty; use lower-case letters, digits and `_`".into());
    }
    if !value.is_ascii() {
        return fail(
            "it holds non-ASCII characters; use lower-case letters, digits and `_`".into(),
        );
    }
    if value.len() > MAX_IDENTIFIER_BYTES {
        return fail(format!(
            "it is {} bytes long, PostgreSQL allows at most {MAX_IDENTIFIER_BYTES}",
            value.len()
        ));
    }
    if value.bytes().any(|b| b.is_ascii_uppercase()) {
        return fail(format!(
            "upper case is not allowed{}",
            did_you_mean(&[value.to_ascii_lowercase().replace('-', "_")], is_name)
        ));
    }
    if value.contains('-') {
        return fail(format!(
            "`-` is not allowed (Helm cannot read such a values key){}",
            did_you_mean(&[value.replace('-', "_"), value.replace('-', "")], is_name)
        ));
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        return fail(format!(
            "the character {bad:?} is not allowed; use lower-case letters, digits and `_`"
        ));
    }
    if !value.as_bytes()[0].is_ascii_lowercase() {
        return fail("it must start with a lower-case letter".into());
    }
    if RESERVED.contains(&value) {
        return fail(format!(
            "it is an SQL reserved word, which the container's unquoted SQL cannot use; try `{value}db` or a more specific name"
        ));
    }
    if value == "postgres" {
        return fail("it is the server's own superuser and maintenance database".into());
    }
    if value.starts_with("pg_") {
        return fail(format!(
            "the `pg_` prefix is reserved by PostgreSQL; try `{}`",
            value.trim_start_matches("pg_")
        ));
    }
    if is_name {
        if value == "root" {
            return fail(
                "it collides with `root_password`, the server's superuser password".into(),
            );
        }
        for suffix in ["_db", "_password"] {
            if let Some(bare) = value.strip_suffix(suffix) {
                return fail(format!(
                    "the tool adds `{suffix}` itself; use the bare name `{bare}`"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_identifiers() {
        let db = parse_db_name("exposure_checker").unwrap();
        assert_eq!(db.values_key(), "exposure_checker_db");
        assert_eq!(db.secret_key(), "exposure_checker_password");
        assert_eq!(db.env_id(), "EXPOSURECHECKER");
        assert_eq!(name_of_values_key("jupyterhub_db"), Some("jupyterhub"));
        assert_eq!(name_of_values_key("_db"), None);
        assert_eq!(
            name_of_secret_key("vo-cutouts_password"),
            Some("vo-cutouts")
        );
    }

    #[test]
    fn refusals_name_the_value_and_suggest() {
        let cases = [
            ("Exposurelog", "did you mean `exposurelog`"),
            ("Narrative-Log", "did you mean `narrative_log`"),
            ("vo-cutouts", "did you mean `vo_cutouts` or `vocutouts`"),
            ("1log", "must start with a lower-case letter"),
            ("my db", "' '"),
            ("a;drop", "';'"),
            ("a;rm -rf /", "use lower-case letters"),
            ("My;Db", "use lower-case letters"),
            ("caf\u{e9}", "non-ASCII"),
            ("", "empty"),
            ("user", "reserved word"),
            ("select", "reserved word"),
            ("postgres", "superuser"),
            ("root", "root_password"),
            ("pg_stats", "try `stats`"),
            ("exposurelog_db", "bare name `exposurelog`"),
            ("exposurelog_password", "bare name `exposurelog`"),
        ];
        for (name, expected) in cases {
            let message = parse_db_name(name).unwrap_err().to_string();
            assert!(message.contains(expected), "{name:?}: {message}");
            assert!(
                message.contains(&format!("`{name}`")),
                "{name:?}: {message}"
            );
        }
        for name in ["a;rm -rf /", "My;Db", "x-Y z"] {
            let message = parse_db_name(name).unwrap_err().to_string();
            assert!(!message.contains("did you mean"), "{name:?}: {message}");
        }
        let long = "a".repeat(55);
        assert!(parse_db_name(&long)
            .unwrap_err()
            .to_string()
            .contains("_password"));
        assert!(parse_db_name(&"a".repeat(64))
            .unwrap_err()
            .to_string()
            .contains("at most 63"));
    }

    #[test]
    fn users_may_end_in_db() {
        check_sql_identifier("user", "jovyan").unwrap();
        check_sql_identifier("database", "exposurelog_db").unwrap();
        check_sql_identifier("user", "root").unwrap();
        assert!(check_sql_identifier("user", "user").is_err());
    }
}
