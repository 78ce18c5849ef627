//! Values that point an application at a PostgreSQL server: found in a values
//! file's text, with the line and dotted key path of each, so that `check` can
//! judge them and an edit can rewrite them.
//!
//! Two shapes:
//!
//! - `Url`: a scalar `postgresql://USER[:PASSWORD]@HOST[:PORT]/DB` (also
//!   `postgres://` and `postgresql+DRIVER://`), whatever its key (gafaelfawr's and
//!   times-square's `databaseUrl`, nublado's `hub.db.url`).
//! - `Host`: a key named `host`, `hostname` (or ending in `Host`/`Hostname`) whose
//!   value is the internal server, with the user and database read from its
//!   sibling keys (`user`/`username`, `database`/`db`/`name`), as exposurelog,
//!   narrativelog, nightreport and consdb (`host:`) or cm-service (`hostname:`)
//!   write it.
//!
//! The internal server is the service `postgres` in the namespace `postgres`:
//! `postgres.postgres`, `postgres.postgres.svc` or
//! `postgres.postgres.svc.cluster.local`, with or without `:5432`. A URL naming
//! another server is still a pointer (`internal()` is false); a host key naming
//! another server is not collected. Block-style YAML only (what values files use);
//! flow mappings and block scalars are skipped. Pure: no I/O, never fails.

use super::{indent_of, is_blank_or_comment, split_key, unquote};

/// How a pointer is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A connection URL in one scalar.
    Url,
    /// A host key beside user and database keys.
    Host,
}

/// One place that points at a server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pointer {
    /// 1-based line of the URL or host key.
    pub line: usize,
    /// Dotted key path of the URL or host key (`config.databaseUrl`); a list item
    /// shows as `[]`.
    pub path: String,
    pub shape: Shape,
    /// The host as written, without the port.
    pub host: String,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub database: Option<String>,
    /// `Host` shape: 1-based lines of the sibling user and database keys.
    pub user_line: Option<usize>,
    pub database_line: Option<usize>,
}

impl Pointer {
    /// Whether it names the internal server (`postgres.postgres...`).
    pub fn internal(&self) -> bool {
        is_internal_host(&self.host) && self.port.is_none_or(|p| p == 5432)
    }
}

/// Whether a host (without port) is the internal server's service name.
pub fn is_internal_host(host: &str) -> bool {
    matches!(
        host.to_ascii_lowercase().as_str(),
        "postgres.postgres" | "postgres.postgres.svc" | "postgres.postgres.svc.cluster.local"
    )
}

/// Splits `HOST[:PORT]`; `None` when the port is not a number.
fn host_port(text: &str) -> Option<(String, Option<u16>)> {
    match text.rsplit_once(':') {
        Some((host, port)) => Some((host.to_string(), Some(port.parse().ok()?))),
        None => Some((text.to_string(), None)),
    }
}

/// The parts of a connection URL (the password is dropped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    pub database: Option<String>,
}

/// Reads `postgresql://USER[:PW]@HOST[:PORT]/DB[?...]`.
pub fn parse_url(value: &str) -> Option<Url> {
    let (scheme, rest) = value.split_once("://")?;
    let base = scheme.split('+').next()?;
    if base != "postgresql" && base != "postgres" {
        return None;
    }
    let rest = rest.split(['?', '#']).next().unwrap_or(rest);
    let (authority, db) = match rest.split_once('/') {
        Some((a, d)) => (a, (!d.is_empty()).then(|| d.to_string())),
        None => (rest, None),
    };
    let (user, hostport) = match authority.rsplit_once('@') {
        Some((userinfo, hp)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            ((!user.is_empty()).then(|| user.to_string()), hp)
        }
        None => (None, authority),
    };
    let (host, port) = host_port(hostport)?;
    if host.is_empty() || host.contains(char::is_whitespace) {
        return None;
    }
    Some(Url {
        user,
        host,
        port,
        database: db,
    })
}

fn is_host_key(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    lower == "host" || lower == "hostname" || key.ends_with("Host") || key.ends_with("Hostname")
}

fn is_user_key(key: &str) -> bool {
    matches!(
        key.to_ascii_lowercase().as_str(),
        "user" | "username" | "dbuser" | "databaseuser" | "db_user"
    )
}

fn is_database_key(key: &str) -> bool {
    matches!(
        key.to_ascii_lowercase().as_str(),
        "database" | "db" | "name" | "dbname" | "databasename" | "db_name"
    )
}

/// A scalar `key: value` line with its place in the tree.
struct Scalar {
    line: usize,
    parent: String,
    key: String,
    value: String,
}

/// Every scalar of a block-style YAML text, with its parent's dotted path.
fn scalars(text: &str) -> Vec<Scalar> {
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut out = Vec::new();
    let mut skip_deeper_than: Option<usize> = None;
    for (i, line) in text.lines().enumerate() {
        if is_blank_or_comment(line) || line.trim() == "---" {
            continue;
        }
        let mut indent = indent_of(line);
        if let Some(limit) = skip_deeper_than {
            if indent > limit {
                continue;
            }
            skip_deeper_than = None;
        }
        let trimmed = line.trim_start();
        let item = trimmed.starts_with("- ") || trimmed == "-";
        if item {
            while stack.last().is_some_and(|(d, _)| *d > indent) {
                stack.pop();
            }
            stack.push((indent + 1, "[]".to_string()));
            indent += 2;
        }
        let Some((key, value)) = split_key(line) else {
            continue;
        };
        while stack.last().is_some_and(|(d, _)| *d >= indent) {
            stack.pop();
        }
        let parent = stack
            .iter()
            .map(|(_, k)| k.as_str())
            .collect::<Vec<_>>()
            .join(".");
        if value.is_empty() {
            stack.push((indent, key));
        } else if value.starts_with('|') || value.starts_with('>') {
            skip_deeper_than = Some(indent);
        } else if !value.starts_with('{') && !value.starts_with('[') && !value.starts_with('&') {
            out.push(Scalar {
                line: i + 1,
                parent,
                key,
                value: unquote(value).to_string(),
            });
        }
    }
    out
}

fn joined(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// Every pointer of a values file's text, in line order.
pub fn scan(text: &str) -> Vec<Pointer> {
    let all = scalars(text);
    let mut out = Vec::new();
    for s in &all {
        if let Some(Url {
            user,
            host,
            port,
            database,
        }) = parse_url(&s.value)
        {
            out.push(Pointer {
                line: s.line,
                path: joined(&s.parent, &s.key),
                shape: Shape::Url,
                host,
                port,
                user,
                database,
                user_line: None,
                database_line: None,
            });
            continue;
        }
        if !is_host_key(&s.key) {
            continue;
        }
        let Some((host, port)) = host_port(&s.value) else {
            continue;
        };
        if !is_internal_host(&host) {
            continue;
        }
        let sibling = |pick: fn(&str) -> bool| {
            all.iter()
                .find(|o| o.parent == s.parent && pick(&o.key))
                .map(|o| (o.value.clone(), o.line))
        };
        let user = sibling(is_user_key);
        let database = sibling(is_database_key);
        out.push(Pointer {
            line: s.line,
            path: joined(&s.parent, &s.key),
            shape: Shape::Host,
            host,
            port,
            user_line: user.as_ref().map(|u| u.1),
            database_line: database.as_ref().map(|d| d.1),
            user: user.map(|u| u.0),
            database: database.map(|d| d.0),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brief(p: &Pointer) -> (usize, &str, Shape, &str, Option<&str>, Option<&str>, bool) {
        (
            p.line,
            p.path.as_str(),
            p.shape,
            p.host.as_str(),
            p.user.as_deref(),
            p.database.as_deref(),
            p.internal(),
        )
    }

    /// Every shape of pointer and its spellings, with lines that only look like one.
    const EVERY_SHAPE: &str = "\
config:
  databaseUrl: \"postgresql://gafaelfawr@postgres.postgres/gafaelfawr\"
hub:
  db:
    url: postgresql://nublado3@postgres.postgres.svc:5432/nublado3
# comment: postgresql://x@postgres.postgres/x
db:
  host: \"postgres.postgres.svc.cluster.local\"
  port: \"5432\"
  user: \"exposurelog\"
  database: \"exposurelog\"
cm:
  hostname: 'postgres.postgres'
  username: cmservice
  name: cmservice
other:
  databaseUrl: postgresql+asyncpg://ts:pw@rsp-db-rw.postgres-db/timessquare?ssl=1
ingress:
  host: data.lsst.cloud
script: |
  url: postgresql://a@postgres.postgres/a
";

    #[test]
    fn every_shape_and_spelling() {
        let found = scan(EVERY_SHAPE);
        let briefs: Vec<_> = found.iter().map(brief).collect();
        assert_eq!(
            briefs,
            vec![
                (
                    2,
                    "config.databaseUrl",
                    Shape::Url,
                    "postgres.postgres",
                    Some("gafaelfawr"),
                    Some("gafaelfawr"),
                    true
                ),
                (
                    5,
                    "hub.db.url",
                    Shape::Url,
                    "postgres.postgres.svc",
                    Some("nublado3"),
                    Some("nublado3"),
                    true
                ),
                (
                    8,
                    "db.host",
                    Shape::Host,
                    "postgres.postgres.svc.cluster.local",
                    Some("exposurelog"),
                    Some("exposurelog"),
                    true
                ),
                (
                    13,
                    "cm.hostname",
                    Shape::Host,
                    "postgres.postgres",
                    Some("cmservice"),
                    Some("cmservice"),
                    true
                ),
                (
                    17,
                    "other.databaseUrl",
                    Shape::Url,
                    "rsp-db-rw.postgres-db",
                    Some("ts"),
                    Some("timessquare"),
                    false
                ),
            ]
        );
        assert_eq!(
            (found[2].user_line, found[2].database_line),
            (Some(10), Some(11))
        );
    }

    #[test]
    fn other_ports_and_lists() {
        assert_eq!(
            scan("url: postgresql://u@postgres.postgres.svc:5432/d\n")[0].port,
            Some(5432)
        );
        let found = scan("a:\n  - url: postgresql://u@postgres.postgres:5433/d\n    x: 1\n");
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].path, "a.[].url");
        assert!(!found[0].internal(), "another port is another server");
        assert!(scan("host: postgres.postgres:abc\n").is_empty());
        assert!(scan("url: http://postgres.postgres/x\n").is_empty());
        assert!(scan("").is_empty());
    }

    #[test]
    fn urls() {
        assert_eq!(
            parse_url("postgres://u:secret@h:5432/d"),
            Some(Url {
                user: Some("u".into()),
                host: "h".into(),
                port: Some(5432),
                database: Some("d".into())
            })
        );
        assert_eq!(
            parse_url("postgresql://h").map(|u| (u.user, u.host, u.database)),
            Some((None, "h".into(), None))
        );
        assert_eq!(parse_url("mysql://u@h/d"), None);
    }
}
