//! The server a database moves to: `postgresql://[USER@]HOST[:PORT][/DB]`, parsed
//! strictly (pure). A password in the URL is refused: the role's password comes from
//! Vault, through a pipe, never from a word on a command line.

use anyhow::Result;

use crate::error::bad_input;

/// Where a database moves to. `user` and `database` default to the entry's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MoveTarget {
    pub user: Option<String>,
    pub host: String,
    pub port: u16,
    pub database: Option<String>,
}

impl MoveTarget {
    /// The URL a consumer uses, with the entry's user and database filled in.
    pub fn url(&self, user: &str, database: &str) -> String {
        let host = self.host_port();
        format!("postgresql://{user}@{host}/{database}")
    }

    /// `HOST` or `HOST:PORT` (the port only when it is not 5432).
    pub fn host_port(&self) -> String {
        if self.port == 5432 {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// A user or database name in the URL: letters, digits, `_`, `-` and `.`.
fn name_ok(word: &str) -> bool {
    !word.is_empty()
        && word.len() <= 63
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

/// A host name or IPv4 address (letters, digits, `-`, `.`), or `[IPv6]`.
fn host_ok(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return !inner.is_empty() && inner.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
    }
    !host.is_empty()
        && host.len() <= 253
        && !host.starts_with(['-', '.'])
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b))
}

/// Parses `--to`/`--move-to`; errors name the bad part (exit 2).
pub fn parse(url: &str) -> Result<MoveTarget> {
    let bad = |why: &str| {
        bad_input(format!(
            "--to {url:?}: {why}; expected postgresql://[USER@]HOST[:PORT][/DB]"
        ))
    };
    let rest = url
        .strip_prefix("postgresql://")
        .or_else(|| url.strip_prefix("postgres://"))
        .ok_or_else(|| bad("the scheme must be postgresql://"))?;
    if rest.contains(['?', '#']) {
        return Err(bad("no query or fragment is taken"));
    }
    let (authority, database) = match rest.split_once('/') {
        Some((a, "")) => (a, None),
        Some((a, db)) if name_ok(db) => (a, Some(db.to_string())),
        Some((_, db)) => return Err(bad(&format!("the database name {db:?} is not valid"))),
        None => (rest, None),
    };
    let (user, host_port) = match authority.rsplit_once('@') {
        Some((user, _)) if user.contains(':') => {
            return Err(bad(
                "a password in the URL is refused: the role's password is read from Vault",
            ))
        }
        Some((user, hp)) if name_ok(user) => (Some(user.to_string()), hp),
        Some((user, _)) => return Err(bad(&format!("the user name {user:?} is not valid"))),
        None => (None, authority),
    };
    let (host, port) = match host_port.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') && (!h.starts_with('[') || h.ends_with(']')) => {
            let port =
                p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                    bad(&format!("the port {p:?} is not a number from 1 to 65535"))
                })?;
            (h, port)
        }
        _ => (host_port, 5432),
    };
    if !host_ok(host) {
        return Err(bad(&format!("the host {host:?} is not valid")));
    }
    Ok(MoveTarget {
        user,
        host: host.to_string(),
        port,
        database,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A URL and its user, host, port and database.
    type Parsed<'a> = (&'a str, Option<&'a str>, &'a str, u16, Option<&'a str>);

    #[test]
    fn urls_parse_into_their_parts() {
        let table: &[Parsed] = &[
            (
                "postgresql://db.example.org",
                None,
                "db.example.org",
                5432,
                None,
            ),
            (
                "postgresql://db.example.org/",
                None,
                "db.example.org",
                5432,
                None,
            ),
            ("postgres://h:6543", None, "h", 6543, None),
            (
                "postgresql://gafaelfawr@cnpg-rw.cnpg:5433/gafaelfawr",
                Some("gafaelfawr"),
                "cnpg-rw.cnpg",
                5433,
                Some("gafaelfawr"),
            ),
            (
                "postgresql://u@10.0.0.7/d_b",
                Some("u"),
                "10.0.0.7",
                5432,
                Some("d_b"),
            ),
            ("postgresql://[::1]:5544/x", None, "[::1]", 5544, Some("x")),
            ("postgresql://[::1]", None, "[::1]", 5432, None),
        ];
        for (url, user, host, port, db) in table {
            let t = parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
            assert_eq!(
                (
                    t.user.as_deref(),
                    t.host.as_str(),
                    t.port,
                    t.database.as_deref()
                ),
                (*user, *host, *port, *db),
                "{url}"
            );
        }
    }

    #[test]
    fn bad_urls_name_the_bad_part() {
        let table = [
            ("http://h/x", "scheme"),
            ("h:5432", "scheme"),
            ("postgresql://u:secret@h/x", "password in the URL"),
            ("postgresql://h:0", "port \"0\""),
            ("postgresql://h:99999", "port \"99999\""),
            ("postgresql://h:abc", "port \"abc\""),
            ("postgresql://", "host \"\""),
            ("postgresql://-h", "host \"-h\""),
            ("postgresql://h$(x)", "host"),
            ("postgresql://h/a b", "database name \"a b\""),
            ("postgresql://h/a/b", "database name \"a/b\""),
            ("postgresql://u;x@h", "user name \"u;x\""),
            ("postgresql://h/x?sslmode=require", "query"),
        ];
        for (url, needle) in table {
            let message = parse(url).expect_err(url).to_string();
            assert!(message.contains(needle), "{url}: {message}");
            assert!(message.contains(url), "{url}: {message}");
        }
    }

    #[test]
    fn the_url_of_a_consumer_fills_in_the_entry() {
        let t = parse("postgresql://cnpg-rw.cnpg").unwrap();
        assert_eq!(t.url("ex", "exdb"), "postgresql://ex@cnpg-rw.cnpg/exdb");
        let t = parse("postgresql://cnpg-rw.cnpg:6000").unwrap();
        assert_eq!(t.host_port(), "cnpg-rw.cnpg:6000");
    }
}
