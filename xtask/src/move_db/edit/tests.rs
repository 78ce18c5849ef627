//! In/out tables of the move's edits.

use super::*;
use crate::move_db::target::parse;

#[test]
fn urls_are_moved_keeping_scheme_and_query() {
    let to = parse("postgresql://cnpg-rw.cnpg:5433").unwrap();
    let table = [
        (
            "postgresql://timessquare@postgres.postgres/timessquare",
            Some("postgresql://timessquare@cnpg-rw.cnpg:5433/timessquare"),
        ),
        (
            "postgresql+asyncpg://ts@postgres.postgres.svc:5432/ts?sslmode=disable",
            Some("postgresql+asyncpg://timessquare@cnpg-rw.cnpg:5433/timessquare?sslmode=disable"),
        ),
        (
            "postgres://postgres.postgres",
            Some("postgres://timessquare@cnpg-rw.cnpg:5433/timessquare"),
        ),
        ("postgresql://ts:hunter2@postgres.postgres/ts", None),
        ("mysql://ts@postgres.postgres/ts", None),
        ("postgres.postgres", None),
    ];
    for (old, new) in table {
        assert_eq!(
            moved_url(old, &to, "timessquare", "timessquare").as_deref(),
            new,
            "{old}"
        );
    }
    let default_port = parse("postgresql://db.example.org").unwrap();
    assert_eq!(
        moved_url(
            "postgresql://a@postgres.postgres/b",
            &default_port,
            "a",
            "b"
        )
        .unwrap(),
        "postgresql://a@db.example.org/b"
    );
}

const NEW: &str = "postgresql://u@cnpg-rw.cnpg/d";

#[test]
fn set_path_replaces_in_place_keeping_quotes_and_comments() {
    let table: &[(&str, &str, Scalar, &str)] = &[
        (
            "config:\n  databaseUrl: \"postgresql://u@postgres.postgres/d\"  # the db\n  x: 1\n",
            "config.databaseUrl",
            Scalar::Text(NEW),
            "config:\n  databaseUrl: \"postgresql://u@cnpg-rw.cnpg/d\"  # the db\n  x: 1\n",
        ),
        (
            "hub:\n    internalDatabase: true\n    db:\n        url: postgresql://n@postgres.postgres.svc.cluster.local:5432/n\n",
            "hub.db.url",
            Scalar::Text(NEW),
            "hub:\n    internalDatabase: true\n    db:\n        url: postgresql://u@cnpg-rw.cnpg/d\n",
        ),
        (
            "hub:\n  internalDatabase: true\n",
            "hub.internalDatabase",
            Scalar::Bool(false),
            "hub:\n  internalDatabase: false\n",
        ),
        (
            "db:\n  host: 'postgres.postgres.svc'\n  port: \"5432\"\n",
            "db.host",
            Scalar::Text("cnpg-rw.cnpg"),
            "db:\n  host: 'cnpg-rw.cnpg'\n  port: \"5432\"\n",
        ),
        (
            "db:\n  port: \"5432\"\n",
            "db.port",
            Scalar::Text("5433"),
            "db:\n  port: \"5433\"\n",
        ),
    ];
    for (before, path, value, after) in table {
        assert_eq!(
            set_path(before, path, *value).as_deref(),
            Ok(*after),
            "{path}"
        );
    }
}

#[test]
fn set_path_adds_missing_keys_under_the_deepest_parent() {
    let table: &[(&str, &str, Scalar, &str)] = &[
        (
            "config:\n  internalDatabase: true\n\n# other\nredis:\n  x: 1\n",
            "config.databaseUrl",
            Scalar::Text(NEW),
            "config:\n  internalDatabase: true\n  databaseUrl: postgresql://u@cnpg-rw.cnpg/d\n\n# other\nredis:\n  x: 1\n",
        ),
        (
            "hub:\n    internalDatabase: true\n",
            "hub.db.url",
            Scalar::Text(NEW),
            "hub:\n    internalDatabase: true\n    db:\n        url: postgresql://u@cnpg-rw.cnpg/d\n",
        ),
        (
            "other: 1\n",
            "config.internalDatabase",
            Scalar::Bool(false),
            "other: 1\nconfig:\n  internalDatabase: false\n",
        ),
        ("", "internalDatabase", Scalar::Bool(false), "internalDatabase: false\n"),
        (
            "config:\n  a: 1\n",
            "config.odd",
            Scalar::Text("yes"),
            "config:\n  a: 1\n  odd: \"yes\"\n",
        ),
    ];
    for (before, path, value, after) in table {
        assert_eq!(
            set_path(before, path, *value).as_deref(),
            Ok(*after),
            "{before:?} {path}"
        );
    }
}

#[test]
fn set_path_refuses_shapes_it_does_not_know() {
    let table = [
        (
            "config: {databaseUrl: x}\n",
            "config.databaseUrl",
            "not a block mapping",
        ),
        (
            "config:\n  databaseUrl: |\n    x\n",
            "config.databaseUrl",
            "not a plain scalar",
        ),
        (
            "config:\n  - databaseUrl: x\n",
            "config.databaseUrl",
            "list item",
        ),
    ];
    for (before, path, needle) in table {
        let error = set_path(before, path, Scalar::Text(NEW)).unwrap_err();
        assert!(error.to_string().contains(needle), "{before:?}: {error}");
    }
}

const TIMES_SQUARE: &str = "\
TS_DATABASE_PASSWORD:
  description: \"Password of the times-square database.\"
  if: internalDatabase
  copy:
    application: postgres
    key: times_square_password
TS_GITHUB_APP_PRIVATE_KEY:
  description: \"Private key of the GitHub App.\"
";

const NUBLADO: &str = "\
hub-db-password:
  description: \"Password to authenticate to the JupyterHub session database.\"
  copy:
    application: postgres
    key: nublado3_password
    if: hub.internalDatabase
proxy_token:
  description: \"Token used to talk to the JupyterHub proxy.\"
  generate:
    type: password
";

#[test]
fn a_copy_from_postgres_becomes_the_applications_own_password() {
    let out = copy_to_generate(
        TIMES_SQUARE,
        "TS_DATABASE_PASSWORD",
        Some("internalDatabase"),
    );
    assert_eq!(
        out.as_deref(),
        Ok("\
TS_DATABASE_PASSWORD:
  description: \"Password of the times-square database.\"
  generate:
    type: password
TS_GITHUB_APP_PRIVATE_KEY:
  description: \"Private key of the GitHub App.\"
")
    );
    let out = copy_to_generate(NUBLADO, "hub-db-password", Some("hub.internalDatabase"));
    assert_eq!(
        out.as_deref(),
        Ok("\
hub-db-password:
  description: \"Password to authenticate to the JupyterHub session database.\"
  generate:
    type: password
proxy_token:
  description: \"Token used to talk to the JupyterHub proxy.\"
  generate:
    type: password
")
    );
    assert!(copy_to_generate(NUBLADO, "proxy", None).is_err());
}

#[test]
fn postgres_copies_the_password_it_generated_before() {
    let before = "\
exposurelog_password:
    description: \"Password for the exposurelog database.\"
    if: exposurelog_db
    generate:
        type: password

root_password:
    generate:
        type: password
";
    let out = generate_to_copy(
        before,
        "exposurelog_password",
        "exposurelog",
        "exposurelog_password",
    );
    assert_eq!(
        out.as_deref(),
        Ok("\
exposurelog_password:
    description: \"Password for the exposurelog database.\"
    if: exposurelog_db
    copy:
        application: exposurelog
        key: exposurelog_password

root_password:
    generate:
        type: password
")
    );
}

#[test]
fn an_internal_only_generate_condition_is_dropped() {
    let before = "\
database-password:
  description: >-
    Password used to authenticate to the PostgreSQL database.
  generate:
    if: config.internalDatabase
    type: password
redis-password:
  generate:
    if: config.internalDatabase
    type: password
";
    let after = drop_condition(before, "database-password", "config.internalDatabase").unwrap();
    assert_eq!(
        after,
        before.replacen(
            "  generate:\n    if: config.internalDatabase\n",
            "  generate:\n",
            1
        )
    );
}
