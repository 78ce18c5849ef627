//! The runbook follows the copy graph: where a postgres password is made (its
//! source, through `copy:` entries both ways; `rotate.rs` renews it there), how the
//! generator layout hands the one new value to every copy, and which applications use
//! the database in an environment (to restart them). It reads; it builds no step.

use std::collections::BTreeSet;

use super::model::Pending;
use super::shell_line::Word;
use super::site::EnvSite;
use crate::deployment::{Deployment, Secrets};
use crate::model::apps::SecretSpec;
use crate::model::consumers::Via;
use crate::shell::quote;

/// How a password's source makes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Made {
    /// `generate:` in `app`'s secrets.yaml, under `key`.
    Generated { app: String, key: String },
    /// Static (the environment's static store) in `app`, under `key`.
    Static { app: String, key: String },
    /// A copy chain that ends nowhere (a loop or a missing key).
    Nowhere,
}

fn spec<'a>(dep: &'a Deployment, app: &str, key: &str) -> Option<&'a SecretSpec> {
    dep.apps
        .get(app)?
        .secrets
        .as_ref()?
        .specs
        .iter()
        .find(|s| s.key == key)
}

/// The source of postgres's `key` in the `secrets.yaml` layout, following
/// copies (postgres may copy from an application, which may copy on).
pub fn source_of(dep: &Deployment, key: &str) -> Made {
    let (mut app, mut key) = ("postgres".to_string(), key.to_string());
    let mut seen = BTreeSet::new();
    while seen.insert((app.clone(), key.clone())) {
        let Some(spec) = spec(dep, &app, &key) else {
            return Made::Nowhere;
        };
        match (&spec.copy, &spec.generate) {
            (Some(copy), _) => {
                (app, key) = (copy.application.clone(), copy.key.clone());
            }
            (None, Some(_)) => return Made::Generated { app, key },
            (None, None) => return Made::Static { app, key },
        }
    }
    Made::Nowhere
}

/// The Vault path of `app`'s secret: beside postgres's (`.../ENV/postgres` ->
/// `.../ENV/APP`).
pub(super) fn app_path(site: &EnvSite, app: &str) -> Option<String> {
    let path = site.vault_path.as_deref()?;
    let (parent, _) = path.rsplit_once('/')?;
    Some(format!("{parent}/{app}"))
}

/// The generator layout's copy of `key` into other applications: one command per
/// copy that takes the value from postgres's Vault secret (through a pipe), else a
/// warning naming the copy the tool could not read. Only the applications that run
/// in the site's environment (`environments/`, where the repository has it) take part.
pub(super) fn generator_copies(
    dep: &Deployment,
    pending: &Pending,
    key: &str,
    postgres_path: &Word,
    site: &EnvSite,
) -> (Vec<String>, Vec<String>) {
    let Secrets::Generator(g) = &dep.secrets else {
        return (Vec::new(), Vec::new());
    };
    let (mut commands, mut warnings) = (Vec::new(), Vec::new());
    let pipe = |path: &str, app_key: &str| {
        format!(
            "vault kv get -field={} {postgres_path} | vault kv patch {} {}=-",
            quote(key),
            quote(path),
            quote(app_key)
        )
    };
    for (app, app_key) in &pending.copies {
        if !runs_in(dep, &site.env, app) {
            continue;
        }
        match app_path(site, app) {
            Some(path) => commands.push(pipe(&path, app_key)),
            None => warnings.push(format!(
                "no Vault path: give {app} its copy `{app_key}` of {key} by hand, from postgres's"
            )),
        }
    }
    for copy in g.parsed.copies_of(key) {
        let target = copy_target(&g.text, copy.line);
        let app = copy.component.replace('_', "-");
        if !runs_in(dep, &site.env, &copy.component) {
            continue;
        }
        match (target, app_path(site, &app)) {
            (Some((set_app, app_key)), Some(path)) => {
                let path = app_path(site, &set_app).unwrap_or(path);
                let command = pipe(&path, &app_key);
                if !commands.contains(&command) {
                    commands.push(command);
                }
            }
            _ => warnings.push(format!(
                "{}:{}: the tool cannot tell where this copy of {key} goes in {}'s Vault secret: give it the new \
                 value by hand, from postgres's",
                g.file.relative, copy.line, app
            )),
        }
    }
    (commands, warnings)
}

/// Whether the application `name` (as written, or as its Kubernetes name, `_` as
/// `-`) runs in `env`, so that it takes part in the password's copies and restarts
/// there. Where the repository has no `environments/`, or the environment's file
/// switches no application on (it says nothing about them), every application runs:
/// the behaviour from before the model read `environments/`.
pub(super) fn runs_in(dep: &Deployment, env: &str, name: &str) -> bool {
    let envs = &dep.environments;
    let says = envs.envs.get(env).is_some_and(|e| !e.enabled.is_empty());
    !says || envs.enables(env, name) || envs.enables(env, &name.replace('_', "-"))
}

/// The quoted words of a text, in order.
fn quoted_words(text: &str) -> Vec<&str> {
    text.split(['"', '\'']).skip(1).step_by(2).collect()
}

/// Where one line of the generator puts `value`: `self._set("app", "KEY", value)`
/// (any call whose two quoted words come before it) or
/// `self.secrets["app"]["KEY"] = value`.
fn target_on(line: &str, value: &str) -> Option<(String, String)> {
    let t = line.trim();
    if let Some((left, right)) = t.split_once(" = ") {
        if right.trim() == value && left.starts_with("self.secrets[") {
            let words = quoted_words(left);
            return (words.len() == 2).then(|| (words[0].to_string(), words[1].to_string()));
        }
    }
    let at = t.find(value)?;
    let words = quoted_words(&t[..at]);
    let n = words.len();
    (n >= 2 && t[..at].contains('(')).then(|| (words[n - 2].to_string(), words[n - 1].to_string()))
}

/// The application and key a generator copy of a postgres password (at the
/// 1-based `line`) writes: on the same line, or through the variable it is
/// assigned to, on a later line of the same function.
pub fn copy_target(text: &str, line: usize) -> Option<(String, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let here = lines.get(line.checked_sub(1)?)?;
    let read = &here[here.find("self.secrets[")?..];
    let read = &read[..read
        .find(']')
        .and_then(|i| read[i + 1..].find(']').map(|j| i + j + 2))?];
    if let Some(found) = target_on(here, read) {
        return Some(found);
    }
    let (var, _) = here.trim().split_once(" = ")?;
    let indent = crate::files::indent_of(here);
    lines[line..]
        .iter()
        .take_while(|l| l.trim().is_empty() || crate::files::indent_of(l) >= indent)
        .find_map(|l| target_on(l, var.trim()))
}

/// The applications of `env` that use the database `values_key` whose password is
/// `secret_key` (copies, pointers, flags), for the restart after postgres.
pub fn env_consumers(
    dep: &Deployment,
    values_key: &str,
    secret_key: &str,
    env: &str,
) -> Vec<String> {
    let Some(entry) = dep.env(env).and_then(|e| e.parsed.entry(values_key)) else {
        return Vec::new();
    };
    let model = dep.model();
    model
        .consumers_of(env, entry, secret_key)
        .into_iter()
        .filter(|c| !matches!(c.via, Via::CopiedByPostgres { .. }) || c.app != "postgres")
        .map(|c| c.app.replace('_', "-"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn where_generator_copies_go() {
        let text = "\
    def _gafaelfawr(self):
        # Pluck the password out of the postgres portion.
        db_pass = self.secrets[\"postgres\"][\"gafaelfawr_password\"]
        self._set(\"gafaelfawr\", \"database-password\", db_pass)

    def _nublado(self):
        db_password = self.secrets[\"postgres\"][\"jupyterhub_password\"]
        self.secrets[\"nublado\"][\"hub_db_password\"] = db_password
        self._set('x', 'y', self.secrets['postgres']['k'])
";
        assert_eq!(
            copy_target(text, 3),
            Some(("gafaelfawr".into(), "database-password".into()))
        );
        assert_eq!(
            copy_target(text, 7),
            Some(("nublado".into(), "hub_db_password".into()))
        );
        assert_eq!(copy_target(text, 9), Some(("x".into(), "y".into())));
        assert_eq!(
            copy_target("x = self.secrets[\"postgres\"][\"k\"]\n", 1),
            None
        );
        assert_eq!(copy_target(text, 99), None);
    }
}
