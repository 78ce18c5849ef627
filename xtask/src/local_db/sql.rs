//! The text `local-db` hands to the server and prints: the SQL the container would
//! run (made idempotent, with quoted identifiers), the settings file and the
//! connection URLs. Pure functions.

use anyhow::{anyhow, Result};
use std::collections::{BTreeMap, BTreeSet};

use super::cluster::Wanted;
use crate::names::check_sql_identifier;

/// The PostgreSQL major version the cluster's container runs.
pub const CLUSTER_MAJOR: u32 = 12;

/// `"name"`, doubling any `"`.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'text'` for SQL, doubling any `'` (the server's `standard_conforming_strings` is on).
pub fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// `'text'` for the server's settings file, where a backslash starts an escape:
/// backslashes doubled and `'` doubled. Control characters cannot be written there.
pub fn quote_setting(text: &str) -> Result<String> {
    if text.chars().any(char::is_control) {
        return Err(anyhow!(
            "`{}` holds a control character, which the server's settings file cannot hold",
            text.escape_debug()
        ));
    }
    Ok(format!(
        "'{}'",
        text.replace('\\', "\\\\").replace('\'', "''")
    ))
}

/// The SQL the container applies, for psql as the superuser, for entries in the
/// container's order (`cluster::order`): per entry, its role created if missing and
/// given its login password again (the password of its secret key, so a role shared
/// by two keys ends with the last one's, as there), its database created if missing
/// and owned by its role. On a server of version 15 or newer, `public` is first made
/// PostgreSQL 12's (`pg12_public_sql`) in `template1` and `postgres`, and after in
/// every database of `ordered`.
pub fn apply_sql(
    ordered: &[Wanted],
    passwords: &BTreeMap<String, String>,
    major: u32,
) -> Result<String> {
    let mut sql = String::new();
    let mut dbs = BTreeSet::new();
    if major >= 15 {
        sql.push_str(&pg12_public_sql("template1"));
        sql.push_str(&pg12_public_sql("postgres"));
    }
    for w in ordered {
        check_sql_identifier("user", &w.user)?;
        check_sql_identifier("database", &w.db)?;
        let password = passwords
            .get(&w.secret_key)
            .ok_or_else(|| anyhow!("no password for the secret key `{}`", w.secret_key))?;
        sql.push_str(&create_if_missing("ROLE", "pg_roles", "rolname", &w.user));
        sql.push_str(&format!(
            "ALTER ROLE {} WITH LOGIN PASSWORD {};\n",
            quote_ident(&w.user),
            quote_literal(password)
        ));
        sql.push_str(&create_if_missing(
            "DATABASE",
            "pg_database",
            "datname",
            &w.db,
        ));
        sql.push_str(&format!(
            "ALTER DATABASE {} OWNER TO {};\n",
            quote_ident(&w.db),
            quote_ident(&w.user)
        ));
        dbs.insert(w.db.as_str());
    }
    if major >= 15 {
        for db in dbs {
            sql.push_str(&pg12_public_sql(db));
        }
    }
    Ok(sql)
}

/// psql lines that give `db`'s schema `public` PostgreSQL 12's owner and rights:
/// owned by the superuser `postgres`, CREATE and USAGE for every role (15 makes it
/// `pg_database_owner`'s with USAGE alone). Only a `public` still owned by
/// `pg_database_owner` changes owner; `db` is a checked plain identifier or a
/// system database, which psql's `\connect` takes as is.
pub fn pg12_public_sql(db: &str) -> String {
    format!(
        "\\connect {db}\n\
         SELECT 'ALTER SCHEMA public OWNER TO postgres' FROM pg_namespace \
         WHERE nspname = 'public' AND nspowner = 'pg_database_owner'::regrole\\gexec\n\
         SELECT 'GRANT CREATE ON SCHEMA public TO PUBLIC' \
         WHERE EXISTS (SELECT FROM pg_namespace WHERE nspname = 'public')\\gexec\n"
    )
}

/// A psql line that runs `CREATE KIND name` only when no row of `catalog` has
/// `column` equal to `name` (neither statement takes `IF NOT EXISTS`).
fn create_if_missing(kind: &str, catalog: &str, column: &str, name: &str) -> String {
    let create = format!("CREATE {kind} {}", quote_ident(name));
    format!(
        "SELECT {} WHERE NOT EXISTS (SELECT FROM {catalog} WHERE {column} = {})\\gexec\n",
        quote_literal(&create),
        quote_literal(name)
    )
}

/// The settings `postgresql.conf` includes: where the server listens, and md5
/// passwords as on the cluster.
pub fn conf_text(port: u16, socket_dir: &str) -> Result<String> {
    Ok(format!(
        "# Written by `cargo xtask local-db up`; rewritten by every start.\n\
         listen_addresses = '127.0.0.1'\n\
         port = {port}\n\
         unix_socket_directories = {}\n\
         unix_socket_permissions = 0700\n\
         password_encryption = md5\n",
        quote_setting(socket_dir)?
    ))
}

/// The line that tells `postgresql.conf` to read [`conf_text`]'s file.
pub const INCLUDE_LINE: &str = "include = 'xtask.conf'";

/// The one-line notice of what still differs when the local server is not the
/// cluster's version, if it is not.
pub fn version_notice(major: u32) -> Option<String> {
    if major == CLUSTER_MAJOR {
        return None;
    }
    let newer = if major > CLUSTER_MAJOR {
        "trusted extensions (13: `CREATE EXTENSION pgcrypto` without a superuser), \
         gen_random_uuid() (13), jsonb subscripting and multiranges (14), MERGE (15) work here \
         and fail there (README: local-db)"
    } else {
        "SQL features of 12 that your server lacks fail here but work there"
    };
    Some(format!(
        "note: the local server is PostgreSQL {major}, the cluster runs {CLUSTER_MAJOR} \
         (md5 passwords and 12's `public` are set as there): {newer}"
    ))
}

/// `postgresql://USER[:PASSWORD]@127.0.0.1:PORT/DB`, with the password percent-encoded.
pub fn connection_url(user: &str, password: Option<&str>, port: u16, db: &str) -> String {
    let userinfo = match password {
        Some(password) => format!("{}:{}", percent_encode(user), percent_encode(password)),
        None => percent_encode(user),
    };
    format!(
        "postgresql://{userinfo}@127.0.0.1:{port}/{}",
        percent_encode(db)
    )
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want(key: &str, user: &str, db: &str) -> Wanted {
        Wanted {
            key: key.into(),
            user: user.into(),
            db: db.into(),
            id: key.trim_end_matches("_db").to_uppercase(),
            secret_key: key.replace("_db", "_password"),
        }
    }

    #[test]
    fn sql_applies_each_entry_in_order_with_its_key_password() {
        let ordered = [
            want("lab_db", "jovyan", "lab"),
            want("gafaelfawr_db", "gafaelfawr", "gafaelfawr"),
            want("hub_db", "jovyan", "hub"),
        ];
        let passwords: BTreeMap<String, String> = [
            ("lab_password", "pw1"),
            ("gafaelfawr_password", "it's"),
            ("hub_password", "pw3"),
        ]
        .iter()
        .map(|(r, p)| (r.to_string(), p.to_string()))
        .collect();
        let sql = apply_sql(&ordered, &passwords, 12).unwrap();
        let expected = "\
SELECT 'CREATE ROLE \"jovyan\"' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'jovyan')\\gexec
ALTER ROLE \"jovyan\" WITH LOGIN PASSWORD 'pw1';
SELECT 'CREATE DATABASE \"lab\"' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'lab')\\gexec
ALTER DATABASE \"lab\" OWNER TO \"jovyan\";
SELECT 'CREATE ROLE \"gafaelfawr\"' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'gafaelfawr')\\gexec
ALTER ROLE \"gafaelfawr\" WITH LOGIN PASSWORD 'it''s';
SELECT 'CREATE DATABASE \"gafaelfawr\"' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'gafaelfawr')\\gexec
ALTER DATABASE \"gafaelfawr\" OWNER TO \"gafaelfawr\";
SELECT 'CREATE ROLE \"jovyan\"' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'jovyan')\\gexec
ALTER ROLE \"jovyan\" WITH LOGIN PASSWORD 'pw3';
SELECT 'CREATE DATABASE \"hub\"' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'hub')\\gexec
ALTER DATABASE \"hub\" OWNER TO \"jovyan\";
";
        assert_eq!(sql, expected);
        let sql15 = apply_sql(&ordered, &passwords, 15).unwrap();
        let system = format!(
            "{}{}",
            pg12_public_sql("template1"),
            pg12_public_sql("postgres")
        );
        let rest = sql15.strip_prefix(&system).unwrap();
        assert_eq!(
            rest.strip_prefix(expected).unwrap(),
            [
                pg12_public_sql("gafaelfawr"),
                pg12_public_sql("hub"),
                pg12_public_sql("lab")
            ]
            .concat()
        );
        assert!(pg12_public_sql("lab").starts_with("\\connect lab\n"));
    }

    #[test]
    fn sql_refuses_bad_identifiers_and_missing_passwords() {
        let passwords: BTreeMap<String, String> =
            [("k_password".to_string(), "p".to_string())].into();
        for (user, db) in [
            ("a\"; DROP", "x"),
            ("a", "Upper"),
            ("select", "x"),
            ("a", "postgres"),
        ] {
            assert!(
                apply_sql(&[want("k_db", user, db)], &passwords, 15).is_err(),
                "{user} {db}"
            );
        }
        let err = apply_sql(&[want("b_db", "b", "b")], &passwords, 15)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no password for the secret key `b_password`"),
            "{err}"
        );
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
        assert_eq!(quote_setting("/t/a\\b's").unwrap(), "'/t/a\\\\b''s'");
        assert!(quote_setting("a\nb").is_err());
    }

    #[test]
    fn settings_are_md5_and_quoted() {
        let text = conf_text(54321, "/tmp/it's\\here").unwrap();
        assert!(
            text.contains("unix_socket_directories = '/tmp/it''s\\\\here'\n"),
            "{text}"
        );
        assert!(text.contains("listen_addresses = '127.0.0.1'\n"));
        assert!(text.contains("port = 54321\n"));
        assert!(text.contains("password_encryption = md5\n"));
    }

    #[test]
    fn version_notice_names_the_differences() {
        assert_eq!(version_notice(12), None);
        let n = version_notice(15).unwrap();
        assert!(
            n.contains("PostgreSQL 15") && n.contains("trusted") && !n.contains('\n'),
            "{n}"
        );
        assert!(version_notice(11).unwrap().contains("PostgreSQL 11"));
    }

    #[test]
    fn urls() {
        assert_eq!(
            connection_url("jovyan", None, 5432, "jupyterhub"),
            "postgresql://jovyan@127.0.0.1:5432/jupyterhub"
        );
        assert_eq!(
            connection_url("a", Some("p@s/s:"), 1, "b"),
            "postgresql://a:p%40s%2Fs%3A@127.0.0.1:1/b"
        );
    }
}
