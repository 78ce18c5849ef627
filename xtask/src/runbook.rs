//! `runbook`: the steps that follow an edit, for each environment, as commands to paste.
//!
//! For `add-db`: put the password into Vault (or run the layout's secrets sync),
//! recreate the `postgres` secret, sync postgres, wait, unstick a pod that will not
//! terminate, check the database. For `remove-db`: sync, then the SQL that drops the
//! role and database. Every word that comes from a file is shell-quoted; no password
//! ever appears.

use anyhow::Result;

use crate::config::Config;
use crate::deployment::Deployment;
use crate::error::bad_input;
use crate::flags;
use crate::layout::SecretKind;
use crate::names::DbName;
use crate::render::{
    render, RUNBOOK_DROP, RUNBOOK_HEADER, RUNBOOK_ROLLOUT, RUNBOOK_SECRETS_SYNC,
    RUNBOOK_VAULT_PATCH,
};
use crate::shell::quote;

/// What the runbook follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// The database was added to these environments.
    Add,
    /// The database's entries were removed from these environments.
    Remove,
}

/// One environment's part: which role and database it has.
#[derive(Clone, Debug)]
pub struct Target {
    pub env: String,
    pub user: String,
    pub database: String,
    /// Whether another entry of the environment still uses the role.
    pub role_shared: bool,
}

/// The runbook text and the warnings to show beside it.
pub fn render_runbook(
    dep: &Deployment,
    db: &DbName,
    targets: &[Target],
    purpose: Purpose,
) -> (String, Vec<String>) {
    let mut warnings = Vec::new();
    let first = targets.first();
    let mut out = match purpose {
        Purpose::Add => render(
            RUNBOOK_HEADER,
            &[
                ("name", &db.name),
                ("user", first.map_or(db.name.as_str(), |t| t.user.as_str())),
                (
                    "database",
                    first.map_or(db.name.as_str(), |t| t.database.as_str()),
                ),
                ("layout", &dep.layout.kind.to_string()),
                ("secret_source", &dep.layout.secret_source.relative),
            ],
        ),
        Purpose::Remove => format!(
            "# Runbook: removing the `{}` database (layout {})\n",
            db.name, dep.layout.kind
        ),
    };
    let secret_key = dep.secret_key_of(db);
    for target in targets {
        let env = target.env.as_str();
        match purpose {
            Purpose::Add => {
                let mut section = String::new();
                let vault_path = match dep.vault_path(env) {
                    Some(path) => quote(&path),
                    None if dep.layout.secret_kind == SecretKind::SecretsYaml => String::new(),
                    None => {
                        let warning = format!(
                            "{env}: no Vault path: its values file has no `vault_secrets.path`, and neither \
                             environments/values-{env}.yaml (`vaultPathPrefix`) nor xtask.toml (`[vault_paths]`) \
                             names one; set POSTGRES_VAULT_PATH before running its steps"
                        );
                        section.push_str(&format!("\n# WARNING: {warning}"));
                        warnings.push(warning);
                        format!("\"${{POSTGRES_VAULT_PATH:?set it to the Vault path of the postgres secret of {env}}}\"")
                    }
                };
                let instance = dep
                    .vault_path(env)
                    .and_then(|p| p.split('/').nth(2).map(str::to_string))
                    .unwrap_or_else(|| env.to_string());
                let secret_step = match dep.layout.secret_kind {
                    SecretKind::Generator => RUNBOOK_VAULT_PATCH,
                    SecretKind::SecretsYaml => RUNBOOK_SECRETS_SYNC,
                };
                let vars = [
                    ("env", quote(env)),
                    ("vault_addr", quote(&dep.config.vault_addr)),
                    ("vault_path", vault_path),
                    ("instance", instance),
                    ("secret_key", quote(&secret_key)),
                    ("secret_jsonpath", quote(&format!("{{.data.{secret_key}}}"))),
                    (
                        "sql_check",
                        quote(&format!(
                            "SELECT datname FROM pg_database WHERE datname = '{}'",
                            target.database
                        )),
                    ),
                ];
                let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
                let steps = render(secret_step, &vars);
                let (heading, rest) = steps
                    .trim_start_matches('\n')
                    .split_once('\n')
                    .unwrap_or((&steps, ""));
                out.push_str(&format!("\n{heading}{section}\n{rest}"));
                out.push_str(&render(RUNBOOK_ROLLOUT, &vars));
            }
            Purpose::Remove => {
                let mut sql = format!("DROP DATABASE IF EXISTS {};", target.database);
                if target.role_shared {
                    sql.push_str(&format!(
                        "\n-- the role {} stays: another entry still uses it",
                        target.user
                    ));
                } else {
                    sql.push_str(&format!("\nDROP ROLE IF EXISTS {};", target.user));
                }
                out.push_str(&render(
                    RUNBOOK_DROP,
                    &[("env", &quote(env)), ("drop_sql", &sql)],
                ));
            }
        }
    }
    (out, warnings)
}

/// The targets of a database in the named environments (or every one that has it).
pub fn targets(dep: &Deployment, db: &DbName, envs: &[String]) -> Result<Vec<Target>> {
    let key = db.values_key();
    let names: Vec<String> = if envs.is_empty() {
        dep.envs
            .iter()
            .filter(|e| e.parsed.entry(&key).is_some())
            .map(|e| e.env.name.clone())
            .collect()
    } else {
        dep.layout
            .select_environments(envs, false)?
            .into_iter()
            .map(|e| e.name)
            .collect()
    };
    if names.is_empty() {
        return Err(bad_input(format!(
            "no environment has `{key}`; add it with `cargo xtask add-db {}` or name environments with --env",
            db.name
        )));
    }
    Ok(names
        .into_iter()
        .map(|env| {
            let values = dep.env(&env).map(|e| &e.parsed);
            let entry = values.and_then(|v| v.entry(&key));
            let user = entry
                .and_then(|e| e.user.clone())
                .unwrap_or_else(|| db.name.clone());
            let database = entry
                .and_then(|e| e.db.clone())
                .unwrap_or_else(|| db.name.clone());
            let role_shared = values.is_some_and(|v| {
                v.entries
                    .iter()
                    .any(|e| e.key != key && e.user.as_deref() == Some(user.as_str()))
            });
            Target {
                env,
                user,
                database,
                role_shared,
            }
        })
        .collect())
}

impl flags::Runbook {
    pub fn run(self, config: Config) -> Result<()> {
        let db = crate::names::parse_db_name(&self.name)?;
        let dep = Deployment::load(config)?;
        let targets = targets(&dep, &db, &self.envs)?;
        let (text, warnings) = render_runbook(&dep, &db, &targets, Purpose::Add);
        for w in warnings {
            eprintln!("warning: {w}");
        }
        print!("{text}");
        Ok(())
    }
}
