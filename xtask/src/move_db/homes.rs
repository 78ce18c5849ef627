//! Where a database lives once it left the internal postgres: in an environment
//! whose postgres values lack a database, an enabled application whose merged
//! values point at another server with that database's name (a URL, or a `host`
//! beside `database`/`db`/`name` and maybe `port` and `user`). `list` shows them; for
//! `check` such a pointer is not an error (it names no internal server).

use serde_yaml::Value;

use crate::deployment::Deployment;
use crate::files::pointers::{is_internal_host, parse_url};
use crate::list::Row;
use crate::model::apps::line_of_path;

/// A database's home outside the internal server, in one environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Home {
    pub env: String,
    /// The database's values key (`exposurelog_db`).
    pub key: String,
    pub app: String,
    /// `HOST[:PORT]/DB`.
    pub server: String,
    /// `path:line` of the pointer (the line when the tool finds it).
    pub site: String,
}

/// A pointer found in merged values: (dotted path, host, port, user, database).
type Found = (String, String, Option<u16>, Option<String>, Option<String>);

fn text_at<'a>(map: &'a serde_yaml::Mapping, keys: &[&str]) -> Option<&'a str> {
    keys.iter()
        .find_map(|k| map.get(*k).and_then(Value::as_str))
        .filter(|s| !s.is_empty())
}

/// Every pointer at another server in a values tree.
fn walk(value: &Value, path: &str, out: &mut Vec<Found>) {
    let join = |k: &str| {
        if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        }
    };
    match value {
        Value::Mapping(map) => {
            if let Some(host) = text_at(map, &["host", "hostname"]) {
                let (host, port) = match host.rsplit_once(':') {
                    Some((h, p)) => (h, p.parse().ok()),
                    None => (host, None),
                };
                let port = port.or_else(|| match map.get("port") {
                    Some(Value::Number(n)) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
                    Some(Value::String(s)) => s.parse().ok(),
                    _ => None,
                });
                let user = text_at(map, &["user", "username"]).map(str::to_string);
                let db = text_at(map, &["database", "db", "name"]).map(str::to_string);
                if !is_internal_host(host) && db.is_some() {
                    out.push((join("host"), host.to_string(), port, user, db));
                }
            }
            for (k, v) in map {
                if let Some(k) = k.as_str() {
                    walk(v, &join(k), out);
                }
            }
        }
        Value::String(s) => {
            if let Some(url) = parse_url(s) {
                if !is_internal_host(&url.host) {
                    out.push((path.to_string(), url.host, url.port, url.user, url.database));
                }
            }
        }
        _ => {}
    }
}

/// The homes of the rows' databases in the environments that lack them.
pub fn homes(dep: &Deployment, rows: &[Row]) -> Vec<Home> {
    let mut out = Vec::new();
    for (i, env) in dep.envs.iter().enumerate() {
        let name = env.env.name.as_str();
        let missing: Vec<&Row> = rows.iter().filter(|r| r.envs[i].is_none()).collect();
        if missing.is_empty() {
            continue;
        }
        for app in dep.apps.values() {
            if app.name == "postgres" || !dep.environments.enables(name, &app.name) {
                continue;
            }
            let mut found = Vec::new();
            walk(&app.merged_values(name), "", &mut found);
            for (path, host, port, user, db) in found {
                let row = missing.iter().find(|r| {
                    db.as_deref()
                        .is_some_and(|d| r.database.split('|').any(|x| x == d))
                        && user
                            .as_deref()
                            .is_none_or(|u| r.user.split('|').any(|x| x == u))
                });
                let Some(row) = row else { continue };
                let site = [app.env_values.get(name), app.values.as_ref()]
                    .into_iter()
                    .flatten()
                    .find_map(|d| Some((d, line_of_path(&d.text, &path)?)))
                    .map_or(path.clone(), |(d, l)| format!("{}:{l}", d.file.relative));
                let port = port.map_or_else(String::new, |p| format!(":{p}"));
                out.push(Home {
                    env: name.to_string(),
                    key: row.key.clone(),
                    app: app.name.clone(),
                    server: format!("{host}{port}/{}", db.unwrap_or_default()),
                    site,
                });
            }
        }
    }
    out.sort_by(|a, b| (&a.key, &a.env, &a.app).cmp(&(&b.key, &b.env, &b.app)));
    out.dedup();
    out
}

/// The text lines `list` prints after its table.
pub fn text(homes: &[Home]) -> String {
    if homes.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\nOn another server (where the environment's postgres lacks the database):\n",
    );
    for h in homes {
        out.push_str(&format!(
            "  {}  {}  {} -> {}  ({})\n",
            h.env, h.key, h.app, h.server, h.site
        ));
    }
    out
}

/// `list --format json` with `"elsewhere": [...]` added when there is a home.
pub fn with_json(list: String, homes: &[Home]) -> String {
    use crate::check::json_string;
    if homes.is_empty() {
        return list;
    }
    let items: Vec<String> = homes
        .iter()
        .map(|h| {
            format!(
                "{{\"environment\": {}, \"key\": {}, \"application\": {}, \"server\": {}, \"site\": {}}}",
                json_string(&h.env),
                json_string(&h.key),
                json_string(&h.app),
                json_string(&h.server),
                json_string(&h.site)
            )
        })
        .collect();
    match list.strip_suffix('}') {
        Some(head) => format!("{head}, \"elsewhere\": [{}]}}", items.join(", ")),
        None => list,
    }
}
