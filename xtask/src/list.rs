//! `list`: every database of the deployment and the environments that have it.
//!
//! NAME
//!     cargo xtask list [--format text|json]
//!
//! DESCRIPTION
//!     One row per database key (from the template's blocks, the values files and
//!     the secret source's `*_password` keys): its user, database, secret key,
//!     whether the template has a block and how the secret source provides the
//!     password, then one column per environment. The header names the layout and
//!     the secret source. Reads the files strictly, like the edits: a file that does
//!     not parse stops it with `path:line` (run `check` for a full report).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use anyhow::Result;

use crate::check::json_string;
use crate::config::Config;
use crate::deployment::Deployment;
use crate::flags::{self, Format};
use crate::names::{name_of_secret_key, name_of_values_key};

/// One database key and where it appears.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub key: String,
    pub user: String,
    pub database: String,
    pub secret_key: String,
    pub template: bool,
    /// How the secret source provides the password, if it does.
    pub secret: Option<String>,
    /// Per environment (in header order): `(user, db)` when present.
    pub envs: Vec<Option<(String, String)>>,
}

impl flags::List {
    pub fn run(self, config: Config) -> Result<()> {
        let dep = Deployment::load(config)?;
        let rows = rows(&dep);
        let homes = crate::move_db::homes::homes(&dep, &rows);
        let envs: Vec<&str> = dep.envs.iter().map(|e| e.env.name.as_str()).collect();
        let source = match &dep.secrets {
            crate::deployment::Secrets::Absent(file) => {
                format!(
                    "none ({} absent: passwords are put into Vault by hand)",
                    file.relative
                )
            }
            other => other.file().relative.clone(),
        };
        let layout = dep.layout.kind.to_string();
        match self.format {
            Format::Text | Format::Github => {
                out!("{}", text(&layout, &source, &envs, &rows));
                out!("{}", crate::move_db::homes::text(&homes));
            }
            Format::Json => {
                let repositories = crate::check::repositories_json(&dep.layout);
                let list = json(&layout, &source, &envs, &rows, &repositories);
                outln!("{}", crate::move_db::homes::with_json(list, &homes))
            }
        }
        Ok(())
    }
}

/// The rows of a deployment, sorted by key.
pub fn rows(dep: &Deployment) -> Vec<Row> {
    let mut keys: BTreeSet<String> = BTreeSet::new();
    keys.extend(
        dep.template
            .parsed
            .blocks
            .iter()
            .map(|b| b.values_key.clone()),
    );
    keys.extend(
        dep.envs
            .iter()
            .flat_map(|e| e.parsed.entries.iter().map(|x| x.key.clone())),
    );
    let secret_keys: Vec<String> = match &dep.secrets {
        crate::deployment::Secrets::Generator(g) => {
            g.parsed.calls.iter().map(|c| c.key.clone()).collect()
        }
        crate::deployment::Secrets::Yaml(y) => {
            y.parsed.entries.iter().map(|e| e.key.clone()).collect()
        }
        crate::deployment::Secrets::Absent(_) => Vec::new(),
    };
    for key in &secret_keys {
        if key == "root_password" {
            continue;
        }
        if let Some(name) = name_of_secret_key(key) {
            let values_key = format!("{}_db", name.replace('-', "_"));
            let read = dep
                .template
                .parsed
                .blocks
                .iter()
                .any(|b| b.secret_keys.iter().any(|(k, _)| k == key));
            if !read {
                keys.insert(values_key);
            }
        }
    }
    keys.into_iter()
        .map(|key| {
            let name = name_of_values_key(&key).unwrap_or(&key).to_string();
            let block = dep.template.parsed.block(&key);
            let secret_key = block
                .and_then(|b| b.secret_key())
                .map(str::to_string)
                .unwrap_or_else(|| {
                    secret_keys
                        .iter()
                        .find(|k| crate::files::helm_template::secret_key_matches(k, &name))
                        .cloned()
                        .unwrap_or_else(|| format!("{name}_password"))
                });
            let envs: Vec<Option<(String, String)>> = dep
                .envs
                .iter()
                .map(|e| {
                    e.parsed.entry(&key).map(|x| {
                        (
                            x.user.clone().unwrap_or_else(|| "?".into()),
                            x.db.clone().unwrap_or_else(|| "?".into()),
                        )
                    })
                })
                .collect();
            let distinct = |pick: fn(&(String, String)) -> &String| {
                let mut seen: Vec<&String> = Vec::new();
                for v in envs.iter().flatten().map(pick) {
                    if !seen.contains(&v) {
                        seen.push(v);
                    }
                }
                if seen.is_empty() {
                    "-".to_string()
                } else {
                    seen.iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join("|")
                }
            };
            Row {
                user: distinct(|p| &p.0),
                database: distinct(|p| &p.1),
                template: block.is_some(),
                secret: dep.secrets.provision(&secret_key),
                secret_key,
                envs,
                key,
            }
        })
        .collect()
}

/// An aligned table under a header line.
pub fn text(layout: &str, source: &str, envs: &[&str], rows: &[Row]) -> String {
    let mut table: Vec<Vec<String>> = Vec::new();
    let mut header: Vec<String> = [
        "DATABASE KEY",
        "USER",
        "DATABASE",
        "SECRET KEY",
        "TEMPLATE",
        "SECRET",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    header.extend(envs.iter().map(|e| e.to_string()));
    table.push(header);
    for row in rows {
        let mut cells = vec![
            row.key.clone(),
            row.user.clone(),
            row.database.clone(),
            row.secret_key.clone(),
            if row.template { "yes" } else { "missing" }.to_string(),
            row.secret.clone().unwrap_or_else(|| "missing".into()),
        ];
        cells.extend(
            row.envs
                .iter()
                .map(|e| if e.is_some() { "yes" } else { "-" }.to_string()),
        );
        table.push(cells);
    }
    let columns = table[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            table
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = format!("layout: {layout}; secret source: {source}\n");
    for row in &table {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == columns {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ", width = widths[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    if rows.is_empty() {
        out.push_str("(no databases)\n");
    }
    out
}

/// `{"layout", "secret_source", "environments", "databases": [...]}` on one line.
/// The table as one JSON line; `repositories` is the `{"phalanx": DIR, ...}` object.
pub fn json(layout: &str, source: &str, envs: &[&str], rows: &[Row], repositories: &str) -> String {
    let mut out = format!(
        "{{\"layout\": {}, \"secret_source\": {}, \"environments\": [{}], \"databases\": [",
        json_string(layout),
        json_string(source),
        envs.iter()
            .map(|e| json_string(e))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let per_env: Vec<String> = envs
            .iter()
            .zip(&row.envs)
            .map(|(env, present)| match present {
                Some((user, db)) => {
                    format!(
                        "{}: {{\"user\": {}, \"db\": {}}}",
                        json_string(env),
                        json_string(user),
                        json_string(db)
                    )
                }
                None => format!("{}: null", json_string(env)),
            })
            .collect();
        let _ = write!(
            out,
            "{{\"key\": {}, \"user\": {}, \"database\": {}, \"secret_key\": {}, \"template\": {}, \"secret\": {}, \
             \"environments\": {{{}}}}}",
            json_string(&row.key),
            json_string(&row.user),
            json_string(&row.database),
            json_string(&row.secret_key),
            row.template,
            row.secret.as_deref().map_or_else(|| "null".to_string(), json_string),
            per_env.join(", ")
        );
    }
    let _ = write!(out, "], \"repositories\": {repositories}}}");
    out
}
