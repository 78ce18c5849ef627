//! The facts of the other side, per environment of `environments/`: whether
//! postgres runs there, its database entries with their secret keys, the
//! postgres-related keys that do not resolve, and every consumer. A view of the
//! model's resolver ([`crate::model::resolve`]) and consumers
//! ([`crate::model::consumers`]).

use crate::files::values::DbEntry;
use crate::model::consumers::Consumer;
use crate::model::resolve::Unresolved;
use crate::model::Model;

/// One environment of `environments/`.
#[derive(Clone, Debug)]
pub struct EnvSide {
    pub env: String,
    /// `environments/values-ENV.yaml`.
    pub env_file: String,
    pub postgres_enabled: bool,
    /// postgres's values file of the environment, when it has one.
    pub values_path: Option<String>,
    /// The database entries with their secret keys (none where postgres is off).
    pub entries: Vec<(DbEntry, String)>,
    /// The postgres-related keys that do not resolve there.
    pub unresolved: Vec<Unresolved>,
    pub consumers: Vec<Consumer>,
}

/// Every environment's side; empty without `environments/`.
pub fn gather(model: &Model) -> Vec<EnvSide> {
    let mut out = Vec::new();
    for (name, env) in &model.environments.envs {
        let postgres_enabled = model.enables(name, "postgres");
        let values = model.envs.iter().find(|e| &e.env.name == name);
        let entries = match values {
            Some(v) if postgres_enabled => v
                .parsed
                .entries
                .iter()
                .filter(|e| e.problem.is_none())
                .map(|e| (e.clone(), model.secret_key_of_entry(&e.key)))
                .collect(),
            _ => Vec::new(),
        };
        out.push(EnvSide {
            env: name.clone(),
            env_file: env.file.relative.clone(),
            postgres_enabled,
            values_path: values.map(|v| v.env.values.relative.clone()),
            entries,
            unresolved: model
                .resolve(name)
                .unresolved
                .into_iter()
                .filter(|u| u.required.postgres_related())
                .collect(),
            consumers: model.consumers(name),
        });
    }
    out
}
