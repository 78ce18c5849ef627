//! What a move changes for each consumer of the database in the environment (as
//! [`crate::model::consumers`] finds them), as planned texts per file: pointers in
//! `values-ENV.yaml` (a default of `values.yaml` is overridden there, never edited,
//! since other environments read it), flags turned off for an explicit URL, and the
//! password's sources in `secrets.yaml`. What the tool cannot rewrite is named, not
//! guessed.

use std::collections::BTreeMap;

use serde_yaml::Value;

use super::edit::{self, Scalar};
use super::target::MoveTarget;
use crate::deployment::{Deployment, Secrets};
use crate::files::pointers::{Pointer, Shape};
use crate::files::values::DbEntry;
use crate::files::{secrets_yaml, split_key, unquote, FileError};
use crate::layout::RepoFile;
use crate::model::consumers::{Consumer, Via};
use crate::model::values::{get, truthy_at};
use crate::model::App;

/// A known flag whose chart builds the connection, and the key of the explicit URL
/// that replaces it.
const FLAG_URLS: &[(&str, &str, &str)] = &[
    (
        "gafaelfawr",
        "config.internalDatabase",
        "config.databaseUrl",
    ),
    ("nublado", "hub.internalDatabase", "hub.db.url"),
];

/// The planned texts, by path, and what is left to the operator.
#[derive(Default)]
pub struct Edits {
    pub files: BTreeMap<String, (RepoFile, String, String)>,
    pub manual: Vec<String>,
    /// Internal-database flags (application, dotted path) that the changed
    /// password sources no longer read: turned off where they are on.
    pub flags_off: Vec<(String, String)>,
    /// What the operator should know about the changes (printed after the diff).
    pub notes: Vec<String>,
}

impl Edits {
    fn text(&mut self, file: &RepoFile, original: &str) -> String {
        self.files
            .entry(file.relative.clone())
            .or_insert_with(|| (file.clone(), original.to_string(), original.to_string()))
            .2
            .clone()
    }

    /// Applies `edit` to the planned text of `file`; a failure is left to the operator.
    fn apply(
        &mut self,
        file: &RepoFile,
        original: &str,
        what: &str,
        edit: impl FnOnce(&str) -> Result<String, FileError>,
    ) -> bool {
        let current = self.text(file, original);
        match edit(&current) {
            Ok(after) => {
                self.files.get_mut(&file.relative).expect("just added").2 = after;
                true
            }
            Err(e) => {
                let at = e.line.map_or_else(String::new, |l| format!(":{l}"));
                self.manual
                    .push(format!("{}{at}: {what}: {}", file.relative, e.message));
                false
            }
        }
    }
}

/// What every consumer's edit needs.
pub struct Context<'a> {
    pub dep: &'a Deployment,
    pub env: &'a str,
    pub to: &'a MoveTarget,
    pub user: &'a str,
    pub database: &'a str,
    /// The database's values key (`gafaelfawr_db`).
    pub values_key: &'a str,
    /// Every consumer, to see that a flag's URL key is also a pointer.
    pub all: &'a [Consumer],
}

impl Context<'_> {
    fn app(&self, name: &str) -> Option<&App> {
        self.dep.apps.get(name)
    }

    /// The application's `values-ENV.yaml`, where the environment's values go.
    fn env_doc(&self, app: &str) -> Option<(RepoFile, String)> {
        let doc = self.app(app)?.env_values.get(self.env)?;
        Some((doc.file.clone(), doc.text.clone()))
    }

    /// The text of an application's values or secrets file the model read.
    fn doc_text(&self, app: &str, file: &RepoFile) -> Option<String> {
        let a = self.app(app)?;
        a.values
            .iter()
            .chain(a.env_values.values())
            .find(|d| d.file.path == file.path)
            .map(|d| d.text.clone())
            .or_else(|| {
                self.dep
                    .app_secrets
                    .iter()
                    .find(|(_, l)| l.file.path == file.path)
                    .map(|(_, l)| l.text.clone())
            })
    }
}

/// The line `line` (1-based) of `text`, its key and raw value.
fn key_at(text: &str, line: usize) -> Option<(String, String)> {
    let (key, rest) = split_key(text.lines().nth(line.checked_sub(1)?)?)?;
    Some((key, unquote(rest).to_string()))
}

/// The consumers of the database entry in `env`: the model's, and the pointers
/// whose user and database are not beside them in the same file but in the
/// application's merged values (a `host` in `values-ENV.yaml`, the rest in
/// `values.yaml`).
pub fn find(dep: &Deployment, env: &str, entry: &DbEntry, secret_key: &str) -> Vec<Consumer> {
    let model = dep.model();
    let mut found = model.consumers_of(env, entry, secret_key);
    for mut c in model.consumers(env) {
        let Via::Pointer(p) = &c.via else { continue };
        if c.user.is_some() || c.database.is_some() || found.contains(&c) {
            continue;
        }
        let merged = dep
            .apps
            .get(&c.app)
            .map(|a| a.merged_values(env))
            .unwrap_or_default();
        let parent = p.path.rsplit_once('.').map_or("", |(parent, _)| parent);
        let sibling = |keys: &[&str]| {
            keys.iter().find_map(|k| {
                let path = if parent.is_empty() {
                    k.to_string()
                } else {
                    format!("{parent}.{k}")
                };
                get(&merged, &path)
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
        };
        c.user = sibling(&["user", "username"]);
        c.database = sibling(&["database", "db", "name"]);
        if c.uses(entry, secret_key) {
            found.push(c);
        }
    }
    found
}

/// Plans the edits of every consumer.
pub fn plan(ctx: &Context, edits: &mut Edits) {
    for c in ctx.all {
        match &c.via {
            Via::Pointer(p) => pointer(ctx, c, p, edits),
            Via::Flag { path } => flag(ctx, &c.app, &site_of(c), path, edits),
            Via::CopiesFromPostgres { key } => copies_from_postgres(ctx, c, key, edits),
            Via::CopiedByPostgres { app_key, .. } => own_password(ctx, &c.app, app_key, edits),
            Via::GeneratorCopy { key } => edits.notes.push(format!(
                "{app}: the generator copied {key} into {app}'s Vault secret when the environment was installed; \
                 that copy stays, with the same value",
                app = c.app
            )),
        }
    }
    flags(ctx, edits);
}

fn site_of(c: &Consumer) -> String {
    format!("{}:{}", c.file.relative, c.line)
}

/// The known flags still on for a consumer (not found as consumers themselves), and
/// the internal-database conditions the new password sources dropped, turned off.
fn flags(ctx: &Context, edits: &mut Edits) {
    let handled = |app: &str, path: &str| {
        ctx.all
            .iter()
            .any(|c| c.app == app && matches!(&c.via, Via::Flag { path: p } if p == path))
    };
    let mut apps: Vec<&str> = ctx.all.iter().map(|c| c.app.as_str()).collect();
    apps.sort();
    apps.dedup();
    let mut pending: Vec<(String, String)> = edits.flags_off.clone();
    for (app, path, _) in FLAG_URLS {
        if apps.contains(app) {
            pending.push((app.to_string(), path.to_string()));
        }
    }
    pending.sort();
    pending.dedup();
    for (app, path) in pending {
        let Some(a) = ctx.app(&app) else { continue };
        if handled(&app, &path) || !truthy_at(&a.merged_values(ctx.env), &path) {
            continue;
        }
        let site = a
            .value_site(ctx.env, &path)
            .map_or_else(|| app.clone(), |(f, l)| format!("{}:{l}", f.relative));
        if FLAG_URLS.iter().any(|(x, p, _)| *x == app && *p == path) {
            flag(ctx, &app, &site, &path, edits);
        } else if let Some((file, original)) = ctx.env_doc(&app) {
            edits.apply(&file, &original, &format!("turning {path} off"), |t| {
                edit::set_path(t, &path, Scalar::Bool(false))
            });
        } else {
            edits.manual.push(format!(
                "{site}: {app} has no values-{}.yaml to turn {path} off in",
                ctx.env
            ));
        }
    }
}

fn pointer(ctx: &Context, c: &Consumer, p: &Pointer, edits: &mut Edits) {
    let site = format!("{}:{}", c.file.relative, c.line);
    if p.path.contains("[]") {
        edits
            .manual
            .push(format!("{site}: {} is in a list: edit it by hand", p.path));
        return;
    }
    let Some((file, original)) = ctx.env_doc(&c.app) else {
        edits.manual.push(format!(
            "{site}: {} has no values-{}.yaml to point {} at the new server",
            c.app, ctx.env, p.path
        ));
        return;
    };
    let source = ctx.doc_text(&c.app, &c.file).unwrap_or_default();
    match p.shape {
        Shape::Url => {
            let raw = key_at(&source, p.line).map(|(_, v)| v).unwrap_or_default();
            let Some(url) = edit::moved_url(&raw, ctx.to, ctx.user, ctx.database) else {
                edits.manual.push(format!(
                    "{site}: {} is a URL the tool does not rewrite (a password in it?)",
                    p.path
                ));
                return;
            };
            let what = format!("pointing {} at the new server", p.path);
            edits.apply(&file, &original, &what, |t| {
                edit::set_path(t, &p.path, Scalar::Text(&url))
            });
        }
        Shape::Host => host(ctx, c, p, &source, &file, &original, edits),
    }
}

fn host(
    ctx: &Context,
    c: &Consumer,
    p: &Pointer,
    source: &str,
    file: &RepoFile,
    original: &str,
    edits: &mut Edits,
) {
    let parent = p.path.rsplit_once('.').map(|(parent, _)| parent);
    let sibling = |key: &str| parent.map_or_else(|| key.to_string(), |p| format!("{p}.{key}"));
    let merged = ctx
        .app(&c.app)
        .map(|a| a.merged_values(ctx.env))
        .unwrap_or_default();
    // A host written with its port (`postgres.postgres:5432`) gets the new one.
    let host = match p.port {
        Some(_) => format!("{}:{}", ctx.to.host, ctx.to.port),
        None => ctx.to.host.clone(),
    };
    let mut sets: Vec<(String, Value)> = vec![(p.path.clone(), Value::from(host))];
    let port_key = sibling("port");
    match get(&merged, &port_key) {
        Some(Value::Number(_)) => sets.push((port_key, Value::from(ctx.to.port))),
        Some(_) => sets.push((port_key, Value::from(ctx.to.port.to_string()))),
        None if ctx.to.port != 5432 && p.port.is_none() => {
            edits.manual.push(format!(
                "{}:{}: {} has no `port` key beside it for port {}: set the port by hand",
                c.file.relative, c.line, p.path, ctx.to.port
            ));
            return;
        }
        None => {}
    }
    for (line, value) in [(p.user_line, ctx.user), (p.database_line, ctx.database)] {
        if let Some((key, old)) = line.and_then(|l| key_at(source, l)) {
            if old != value {
                sets.push((sibling(&key), Value::from(value.to_string())));
            }
        }
    }
    for (path, value) in sets {
        let what = format!("setting {path}");
        edits.apply(file, original, &what, |t| match &value {
            Value::Number(n) => edit::set_path(t, &path, Scalar::Number(n.as_u64().unwrap_or(0))),
            other => edit::set_path(t, &path, Scalar::Text(other.as_str().unwrap_or_default())),
        });
    }
}

fn flag(ctx: &Context, app: &str, site: &str, path: &str, edits: &mut Edits) {
    let Some((_, _, url_path)) = FLAG_URLS
        .iter()
        .find(|(a, flag, _)| *a == app && *flag == path)
    else {
        edits.manual.push(format!(
            "{site}: {} is a flag the tool knows no explicit URL for",
            path
        ));
        return;
    };
    let Some((file, original)) = ctx.env_doc(app) else {
        edits.manual.push(format!(
            "{site}: {app} has no values-{}.yaml to turn {path} off in",
            ctx.env
        ));
        return;
    };
    edits.apply(&file, &original, &format!("turning {path} off"), |t| {
        edit::set_path(t, path, Scalar::Bool(false))
    });
    // A URL key that is itself a pointer is rewritten in its own shape.
    let pointed = ctx
        .all
        .iter()
        .any(|o| o.app == app && matches!(&o.via, Via::Pointer(p) if p.path == *url_path));
    if !pointed {
        let url = ctx.to.url(ctx.user, ctx.database);
        edits.apply(&file, &original, &format!("setting {url_path}"), |t| {
            edit::set_path(t, url_path, Scalar::Text(&url))
        });
    }
}

/// Whether a condition is the internal-database flag that the move turns off.
fn internal_flag(condition: &str) -> bool {
    condition.ends_with("internalDatabase")
}

/// An application that copied postgres's password generates its own (the value in
/// Vault stays), and postgres copies it back where it still keeps the database.
fn copies_from_postgres(ctx: &Context, c: &Consumer, key: &str, edits: &mut Edits) {
    let site = site_of(c);
    let original = ctx
        .doc_text(&c.app, &c.file)
        .or_else(|| crate::deployment::read(&c.file).ok());
    let entry = original.as_deref().and_then(|t| {
        secrets_yaml::parse(t)
            .ok()
            .and_then(|p| p.entries.into_iter().find(|e| e.line == c.line))
    });
    let (Some(original), Some(entry)) = (original, entry) else {
        edits.manual.push(format!(
            "{site}: the copy of postgres/{key} could not be read: give it a source of its own by hand"
        ));
        return;
    };
    let spec = ctx
        .app(&c.app)
        .and_then(|a| a.secrets.as_ref())
        .and_then(|s| s.specs.iter().find(|s| s.key == entry.key));
    // `copy: {..., if: FLAG}`: with the flag off, the key is static, and phalanx keeps
    // the value Vault holds: the secrets.yaml entry stays as it is.
    if let Some(flag) = spec
        .and_then(|s| s.copy.as_ref())
        .and_then(|c| c.condition.clone())
        .filter(|f| internal_flag(f))
    {
        edits.flags_off.push((c.app.clone(), flag.clone()));
        static_note(ctx, &c.app, &entry.key, &flag, edits);
        return;
    }
    let conditions: Vec<String> = spec
        .and_then(|s| s.condition.clone())
        .filter(|f| internal_flag(f))
        .into_iter()
        .collect();
    for flag in &conditions {
        edits.flags_off.push((c.app.clone(), flag.clone()));
    }
    let what = format!("giving {}'s {} its own source", c.app, entry.key);
    edits.apply(&c.file, &original, &what, |t| {
        let mut out = edit::copy_to_generate(t, &entry.key, None)?;
        for flag in &conditions {
            out = edit::drop_condition(&out, &entry.key, flag)?;
        }
        Ok(out)
    });
    let Secrets::Yaml(y) = &ctx.dep.secrets else {
        return;
    };
    let still_needed: Vec<&str> = ctx
        .dep
        .envs
        .iter()
        .filter(|e| e.env.name != ctx.env && e.parsed.entry(ctx.values_key).is_some())
        .map(|e| e.env.name.as_str())
        .collect();
    let everywhere = still_needed
        .iter()
        .all(|env| ctx.dep.environments.enables(env, &c.app));
    if y.parsed.entry(key).map(|e| &e.source) == Some(&secrets_yaml::Source::Generate) && everywhere
    {
        let what = format!("making postgres's {key} copy {}'s {}", c.app, entry.key);
        edits.apply(&y.file, &y.text, &what, |t| {
            edit::generate_to_copy(t, key, &c.app, &entry.key)
        });
    } else {
        edits.notes.push(format!(
            "postgres's {key} still has its own source: it equals {}'s {} today; keep them equal",
            c.app, entry.key
        ));
    }
}

/// The application's own password entry loses the `if:` that made it exist only
/// with the internal database.
fn own_password(ctx: &Context, app: &str, app_key: &str, edits: &mut Edits) {
    let Some(doc) = ctx
        .dep
        .app_secrets
        .iter()
        .find(|(a, _)| a == app)
        .map(|(_, l)| l)
    else {
        return;
    };
    let Some(spec) = ctx
        .app(app)
        .and_then(|a| a.secrets.as_ref())
        .and_then(|s| s.specs.iter().find(|s| s.key == app_key))
    else {
        return;
    };
    // `generate: {if: FLAG}`: with the flag off, the key is static, and phalanx keeps
    // the value Vault holds: the secrets.yaml entry stays as it is.
    if let Some(Some(flag)) = spec
        .generate
        .as_ref()
        .filter(|g| g.as_deref().is_some_and(internal_flag))
    {
        edits.flags_off.push((app.to_string(), flag.clone()));
        static_note(ctx, app, app_key, flag, edits);
        return;
    }
    let conditions: Vec<String> = spec
        .condition
        .iter()
        .filter(|c| internal_flag(c))
        .cloned()
        .collect();
    for flag in conditions {
        edits.flags_off.push((app.to_string(), flag.clone()));
        let what = format!("dropping `if: {flag}` from {app}'s {app_key}");
        edits.apply(&doc.file, &doc.text, &what, |t| {
            edit::drop_condition(t, app_key, &flag)
        });
    }
}

/// What the operator must know about a key that becomes static in the environment.
fn static_note(ctx: &Context, app: &str, key: &str, flag: &str, edits: &mut Edits) {
    edits.notes.push(format!(
        "{app}'s {key} becomes a static secret in {env} ({flag} is off): `phalanx secrets sync {env}` keeps \
         the value Vault holds, unless {env} reads static secrets from 1Password: then put that same value \
         into its 1Password item first (the runbook's switch phase says so too)",
        env = ctx.env
    ));
}
