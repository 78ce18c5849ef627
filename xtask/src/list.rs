//! `list`: every database of the deployment and the environments that have it.
//!
//! NAME
//!     cargo xtask list [--format text|json] [--env ENV]...
//!
//! DESCRIPTION
//!     One row per database key (from the template's blocks, the values files and
//!     the secret source's `*_password` keys): its user, database, secret key,
//!     whether the template has a block and how the secret source provides the
//!     password, then one column per environment (`--env`: only those). The header
//!     names the layout and the secret source. Below the table, the consumers: per
//!     environment and database, each application that uses it and how (a copy of
//!     its password, a value pointing at postgres.postgres, a known flag), with
//!     `path:line`. `--format json` gives the same as one document whose shape
//!     `docs/list.md` describes (`schema_version` 1). Reads the files strictly,
//!     like the edits: a file that does not parse stops it with `path:line` (run
//!     `check` for a full report).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use anyhow::Result;

use crate::check::json_string;
use crate::config::Config;
use crate::deployment::{Deployment, Secrets};
use crate::files::secrets_yaml;
use crate::flags::{self, Format};
use crate::model::consumers::{Consumer, Via};
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
    /// The same, machine-readable.
    pub source: Option<Provision>,
    /// Per environment (in header order): `(user, db)` when present.
    pub envs: Vec<Option<(String, String)>>,
    /// Per environment (in header order): the applications that use the database.
    pub consumers: Vec<Vec<Consumer>>,
}

/// How the secret source provides a password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Provision {
    Generate,
    /// Set by hand (a `secrets.yaml` entry without `generate`/`copy`, a generator call
    /// that does not generate).
    Static,
    Copy {
        application: String,
        key: String,
    },
    /// No secret source: put into Vault by hand.
    VaultByHand,
}

impl Provision {
    fn of(secrets: &Secrets, key: &str) -> Option<Provision> {
        match secrets {
            Secrets::Generator(g) => g.parsed.call(key).map(|c| {
                if c.generated {
                    Provision::Generate
                } else {
                    Provision::Static
                }
            }),
            Secrets::Yaml(y) => y.parsed.entry(key).map(|e| match &e.source {
                secrets_yaml::Source::Generate => Provision::Generate,
                secrets_yaml::Source::Copy { application, key } => Provision::Copy {
                    application: application.clone(),
                    key: key.clone(),
                },
                secrets_yaml::Source::Manual => Provision::Static,
            }),
            Secrets::Absent(_) => Some(Provision::VaultByHand),
        }
    }

    fn json(&self) -> String {
        match self {
            Provision::Generate => "{\"kind\": \"generate\"}".to_string(),
            Provision::Static => "{\"kind\": \"static\"}".to_string(),
            Provision::VaultByHand => "{\"kind\": \"vault-by-hand\"}".to_string(),
            Provision::Copy { application, key } => format!(
                "{{\"kind\": \"copy\", \"application\": {}, \"key\": {}}}",
                json_string(application),
                json_string(key)
            ),
        }
    }
}

impl flags::List {
    pub fn run(self, config: Config) -> Result<()> {
        let mut dep = Deployment::load(config)?;
        if !self.envs.is_empty() {
            let chosen: Vec<String> = dep
                .layout
                .select_environments(&self.envs)?
                .into_iter()
                .map(|e| e.name)
                .collect();
            dep.envs.retain(|e| chosen.contains(&e.env.name));
        }
        // With --env, the databases those environments have (without it, every one any
        // file names, so that an orphan template block or secret key shows too).
        let rows: Vec<Row> = rows(&dep)
            .into_iter()
            .filter(|r| self.envs.is_empty() || r.envs.iter().any(Option::is_some))
            .collect();
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
                out!("{}", consumers_text(&envs, &rows));
                out!("{}", crate::move_db::homes::text(&homes));
            }
            Format::Json => {
                let repositories = crate::check::repositories_json(&dep.layout);
                let source = source_json(&dep.secrets);
                let list = json(&layout, &source, &envs, &rows, &repositories);
                outln!("{}", crate::move_db::homes::with_json(list, &homes))
            }
        }
        Ok(())
    }
}

/// The rows of a deployment, sorted by key.
pub fn rows(dep: &Deployment) -> Vec<Row> {
    let model = dep.model();
    // Each environment's consumers, found once (the scan reads every values file).
    let found: Vec<Vec<Consumer>> = dep
        .envs
        .iter()
        .map(|e| model.consumers(&e.env.name))
        .collect();
    let (keys, secret_keys) = database_keys(dep);
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
            let consumers = consumers_of(dep, &found, &key, &secret_key);
            Row {
                user: distinct(|p| &p.0),
                database: distinct(|p| &p.1),
                template: block.is_some(),
                secret: dep.secrets.provision(&secret_key),
                source: Provision::of(&dep.secrets, &secret_key),
                secret_key,
                envs,
                consumers,
                key,
            }
        })
        .collect()
}

/// Every database key (template blocks, values entries, and the `X_db` of each
/// `X_password` no block reads), and the secret source's keys.
fn database_keys(dep: &Deployment) -> (BTreeSet<String>, Vec<String>) {
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
    (keys, secret_keys)
}

/// Per environment, the consumers of the entry `key` (none where it is absent).
fn consumers_of(
    dep: &Deployment,
    found: &[Vec<Consumer>],
    key: &str,
    secret_key: &str,
) -> Vec<Vec<Consumer>> {
    dep.envs
        .iter()
        .zip(found)
        .map(|(e, found)| match e.parsed.entry(key) {
            Some(entry) => found
                .iter()
                .filter(|c| c.uses(entry, secret_key))
                .cloned()
                .collect(),
            None => Vec::new(),
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
    // Keys and values come from files: their control characters are shown escaped.
    let table: Vec<Vec<String>> = table
        .into_iter()
        .map(|row| {
            row.into_iter()
                .map(|cell| crate::shell::escape(&cell).into_owned())
                .collect()
        })
        .collect();
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
    let mut out = format!(
        "layout: {layout}; secret source: {}\n",
        crate::shell::escape(source)
    );
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

/// Below the table: per environment and database, each application that uses
/// it, with `path:line` and how; an entry nobody uses says so.
pub fn consumers_text(envs: &[&str], rows: &[Row]) -> String {
    let mut lines: Vec<[String; 5]> = Vec::new();
    for (i, env) in envs.iter().enumerate() {
        for row in rows.iter().filter(|r| r.envs[i].is_some()) {
            if row.consumers[i].is_empty() {
                lines.push([
                    env.to_string(),
                    row.key.clone(),
                    "-".to_string(),
                    String::new(),
                    "no application uses it (no copy of its password, no pointer, no flag)"
                        .to_string(),
                ]);
            }
            for c in &row.consumers[i] {
                lines.push([
                    env.to_string(),
                    row.key.clone(),
                    c.app.clone(),
                    format!("{}:{}", c.file.relative, c.line),
                    c.describe(),
                ]);
            }
        }
    }
    if lines.is_empty() {
        return String::new();
    }
    let width = |n: usize| {
        lines
            .iter()
            .map(|l| l[n].chars().count())
            .max()
            .unwrap_or(0)
    };
    let (w0, w1, w2, w3) = (width(0), width(1), width(2), width(3));
    let mut out = String::from("\nCONSUMERS\n");
    for [env, key, app, at, how] in &lines {
        let line = format!("{env:<w0$}  {key:<w1$}  {app:<w2$}  {at:<w3$}  {how}");
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The secret source as JSON: `{"kind": "generator"|"secrets.yaml"|"absent", "path"}`.
fn source_json(secrets: &Secrets) -> String {
    let kind = match secrets {
        Secrets::Generator(_) => "generator",
        Secrets::Yaml(_) => "secrets.yaml",
        Secrets::Absent(_) => "absent",
    };
    format!(
        "{{\"kind\": {}, \"path\": {}}}",
        json_string(kind),
        json_string(&secrets.file().relative)
    )
}

/// One consumer as JSON.
fn consumer_json(c: &Consumer) -> String {
    let via = match &c.via {
        Via::CopiesFromPostgres { .. } => "copies-from-postgres",
        Via::CopiedByPostgres { .. } => "source-of-postgres-copy",
        Via::GeneratorCopy { .. } => "generator-copy",
        Via::Pointer(_) => "pointer",
        Via::Flag { .. } => "flag",
    };
    let opt = |v: &Option<String>| v.as_deref().map_or_else(|| "null".to_string(), json_string);
    format!(
        "{{\"application\": {}, \"via\": {}, \"path\": {}, \"line\": {}, \"user\": {}, \"database\": {}, \
         \"detail\": {}}}",
        json_string(&c.app),
        json_string(via),
        json_string(&c.file.relative),
        c.line,
        opt(&c.user),
        opt(&c.database),
        json_string(&c.describe())
    )
}

/// The whole listing as one JSON line (`schema_version` 1; see `docs/list.md`);
/// `source` is [`source_json`], `repositories` the `{"phalanx": DIR, ...}` object.
pub fn json(layout: &str, source: &str, envs: &[&str], rows: &[Row], repositories: &str) -> String {
    let mut out = format!(
        "{{\"schema_version\": 1, \"layout\": {}, \"secret_source\": {source}, \"environments\": [{}], \
         \"databases\": [",
        json_string(layout),
        envs.iter()
            .map(|e| json_string(e))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let null_or = |v: &str| {
        if v == "-" {
            "null".to_string()
        } else {
            json_string(v)
        }
    };
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let per_env: Vec<String> = envs
            .iter()
            .zip(&row.envs)
            .zip(&row.consumers)
            .map(|((env, present), consumers)| match present {
                Some((user, db)) => format!(
                    "{}: {{\"user\": {}, \"db\": {}, \"consumers\": [{}]}}",
                    json_string(env),
                    null_or(user),
                    null_or(db),
                    consumers
                        .iter()
                        .map(consumer_json)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                None => format!("{}: null", json_string(env)),
            })
            .collect();
        let _ = write!(
            out,
            "{{\"key\": {}, \"user\": {}, \"database\": {}, \"secret_key\": {}, \"template\": {}, \"secret\": {}, \
             \"environments\": {{{}}}}}",
            json_string(&row.key),
            null_or(&row.user),
            null_or(&row.database),
            json_string(&row.secret_key),
            row.template,
            row.source.as_ref().map_or_else(|| "null".to_string(), Provision::json),
            per_env.join(", ")
        );
    }
    let _ = write!(out, "], \"repositories\": {repositories}}}");
    out
}
