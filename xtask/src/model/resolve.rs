//! Secret resolution per environment, as `phalanx secrets sync` resolves.
//!
//! In an environment, each enabled application needs the keys of its
//! `secrets.yaml` (with `secrets-ENV.yaml` over it) whose `if:` holds in its merged
//! values; a `copy:` or `generate:` with its own false `if:` does not apply. A
//! generated key, a fixed `value:` and a static key (neither: its value comes from
//! the static store, which the tool cannot see) resolve; a copy resolves once its
//! source key has, which needs the source application enabled there and its key
//! needed there. What never resolves makes `sync` refuse the whole environment.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::values::truthy_at;
use super::Model;
use crate::layout::RepoFile;

/// Where a needed key's value comes from in one environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Generate,
    Copy {
        application: String,
        key: String,
    },
    /// Static (from the environment's static secrets) or a fixed `value:`.
    Static,
}

/// A key an application needs in an environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Required {
    pub app: String,
    pub key: String,
    pub file: RepoFile,
    pub line: usize,
    pub source: Source,
}

impl Required {
    /// Whether it belongs to postgres or copies from postgres: the part the
    /// tool judges.
    pub fn postgres_related(&self) -> bool {
        self.app == "postgres"
            || matches!(&self.source, Source::Copy { application, .. } if application == "postgres")
    }
}

/// Why a copy does not resolve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The source application is not enabled in the environment.
    AppNotEnabled,
    /// The source application runs and declares the key, but its `if:` is
    /// false there.
    KeyAbsent,
    /// The source application has no such key at all.
    KeyUndeclared,
    /// The source key is needed but does not resolve either (a chain or a loop).
    KeyUnresolved,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unresolved {
    pub required: Required,
    pub reason: Reason,
}

/// One environment's verdict.
#[derive(Clone, Debug, Default)]
pub struct Resolution {
    pub env: String,
    pub unresolved: Vec<Unresolved>,
}

fn holds(values: &serde_yaml::Value, condition: &Option<String>) -> bool {
    condition
        .as_deref()
        .is_none_or(|c| c.is_empty() || truthy_at(values, c))
}

impl Model {
    /// The keys each enabled application needs in `env`.
    pub fn required(&self, env: &str) -> Vec<Required> {
        let mut out = Vec::new();
        for app in self.apps.values().filter(|a| self.enables(env, &a.name)) {
            let values = app.merged_values(env);
            for (file, spec) in app.secret_specs(env) {
                if !holds(&values, &spec.condition) {
                    continue;
                }
                let copy = spec.copy.as_ref().filter(|c| holds(&values, &c.condition));
                let generate = spec.generate.as_ref().is_some_and(|c| holds(&values, c));
                let source = match copy {
                    Some(c) => Source::Copy {
                        application: c.application.clone(),
                        key: c.key.clone(),
                    },
                    None if generate => Source::Generate,
                    None => Source::Static,
                };
                out.push(Required {
                    app: app.name.clone(),
                    key: spec.key.clone(),
                    file: file.clone(),
                    line: spec.line,
                    source,
                });
            }
        }
        out
    }

    /// Resolves `env` as `phalanx secrets sync ENV` would.
    pub fn resolve(&self, env: &str) -> Resolution {
        let required = self.required(env);
        let needed: HashSet<(&str, &str)> = required
            .iter()
            .map(|r| (r.app.as_str(), r.key.as_str()))
            .collect();
        let mut resolved: HashSet<(&str, &str)> = required
            .iter()
            .filter(|r| !matches!(r.source, Source::Copy { .. }))
            .map(|r| (r.app.as_str(), r.key.as_str()))
            .collect();
        loop {
            let before = resolved.len();
            for r in &required {
                if let Source::Copy { application, key } = &r.source {
                    if resolved.contains(&(application.as_str(), key.as_str())) {
                        resolved.insert((r.app.as_str(), r.key.as_str()));
                    }
                }
            }
            if resolved.len() == before {
                break;
            }
        }
        let unresolved = required
            .iter()
            .filter(|r| !resolved.contains(&(r.app.as_str(), r.key.as_str())))
            .filter_map(|r| {
                let Source::Copy { application, key } = &r.source else {
                    return None;
                };
                let reason =
                    if !self.enables(env, application) || !self.apps.contains_key(application) {
                        Reason::AppNotEnabled
                    } else if !self.declares(env, application, key) {
                        Reason::KeyUndeclared
                    } else if !needed.contains(&(application.as_str(), key.as_str())) {
                        Reason::KeyAbsent
                    } else {
                        Reason::KeyUnresolved
                    };
                Some(Unresolved {
                    required: r.clone(),
                    reason,
                })
            })
            .collect();
        Resolution {
            env: env.to_string(),
            unresolved,
        }
    }

    /// The model after the planned edits of applications' values and secrets files.
    pub fn with_planned<'a>(
        &self,
        changes: impl IntoIterator<Item = (&'a RepoFile, &'a str)>,
    ) -> Model {
        let mut after = self.clone();
        for (file, text) in changes {
            super::apps::replace(&mut after.apps, file, text);
        }
        after
    }

    /// The keys that resolve in `self` but not in `after`, per environment, each
    /// with why: what an edit must never do.
    pub fn newly_unresolved(&self, after: &Model) -> Vec<(String, Unresolved)> {
        let before = self.verdicts();
        let mut out = Vec::new();
        for r in after.resolve_all() {
            let old = before.get(&r.env);
            for u in r.unresolved {
                let id = format!("{}/{}", u.required.app, u.required.key);
                if !old.is_some_and(|o| o.contains(&id)) {
                    out.push((r.env.clone(), u));
                }
            }
        }
        out
    }

    /// Whether `app`'s secrets files declare `key` for `env`, whatever its `if:`.
    fn declares(&self, env: &str, app: &str, key: &str) -> bool {
        self.apps
            .get(app)
            .is_some_and(|a| a.secret_specs(env).iter().any(|(_, s)| s.key == key))
    }

    /// Every environment of `environments/`, resolved (none without it).
    pub fn resolve_all(&self) -> Vec<Resolution> {
        self.environments
            .envs
            .keys()
            .map(|env| self.resolve(env))
            .collect()
    }

    /// The unresolvable `app/key`s of each environment: what to compare before
    /// and after an edit.
    pub fn verdicts(&self) -> BTreeMap<String, BTreeSet<String>> {
        self.resolve_all()
            .into_iter()
            .map(|r| {
                let keys = r
                    .unresolved
                    .iter()
                    .map(|u| format!("{}/{}", u.required.app, u.required.key))
                    .collect();
                (r.env, keys)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::test_model;

    fn planned(model: &Model, file: &str, text: &str) -> Model {
        let file = RepoFile::new(&model.layout.phalanx, file);
        model.with_planned([(&file, text)])
    }

    #[test]
    fn the_fixture_resolves_everywhere() {
        let model = test_model();
        let verdicts = model.verdicts();
        assert_eq!(
            verdicts.keys().collect::<Vec<_>>(),
            ["idfdev", "usdfdev", "usdfint", "usdfprod"]
        );
        assert!(verdicts.values().all(BTreeSet::is_empty), "{verdicts:?}");
        // gafaelfawr's database-password is needed where config.internalDatabase holds.
        let needs = |env: &str| {
            model
                .required(env)
                .iter()
                .any(|r| r.app == "gafaelfawr" && r.key == "database-password")
        };
        assert!(needs("idfdev") && !needs("usdfprod"));
    }

    #[test]
    fn a_copy_from_postgres_where_the_database_is_not_set() {
        let model = test_model();
        let after = planned(
            &model,
            "applications/postgres/values-usdfint.yaml",
            "gafaelfawr_db:\n  user: gafaelfawr\n  db: gafaelfawr\n",
        );
        let new = model.newly_unresolved(&after);
        assert_eq!(new.len(), 1, "{new:?}");
        let (env, u) = &new[0];
        assert_eq!(
            (env.as_str(), u.required.app.as_str(), &u.reason),
            ("usdfint", "times-square", &Reason::KeyAbsent)
        );
        assert!(u.required.postgres_related());
    }

    #[test]
    fn a_copy_from_a_disabled_or_keyless_source() {
        let model = test_model();
        // postgres copies gafaelfawr's key; without internalDatabase gafaelfawr has none.
        let after = planned(
            &model,
            "applications/gafaelfawr/values-usdfdev.yaml",
            "config:\n  internalDatabase: false\n",
        );
        let new = model.newly_unresolved(&after);
        assert_eq!(new.len(), 1);
        assert_eq!(
            (new[0].0.as_str(), &new[0].1.reason),
            ("usdfdev", &Reason::KeyAbsent)
        );
        // A copy whose `if:` is false does not apply: the entry falls back to static.
        let text = "x:\n  description: d\n  copy:\n    application: nublado\n    key: nope\n    if: never\n";
        let after = planned(&model, "applications/exposurelog/secrets-idfdev.yaml", text);
        assert!(model.newly_unresolved(&after).is_empty());
        // exposurelog copying from an application usdfdev does not enable.
        let text = "x:\n  description: d\n  copy:\n    application: times-square\n    key: TS_GITHUB_APP_PRIVATE_KEY\n";
        let after = planned(
            &model,
            "applications/exposurelog/secrets-usdfdev.yaml",
            text,
        );
        let new = model.newly_unresolved(&after);
        assert_eq!(new[0].1.reason, Reason::AppNotEnabled);
        assert!(!new[0].1.required.postgres_related());
        // A loop never resolves.
        let text = "a:\n  description: d\n  copy:\n    application: exposurelog\n    key: b\nb:\n  description: d\n  copy:\n    application: exposurelog\n    key: a\n";
        let after = planned(&model, "applications/exposurelog/secrets-idfdev.yaml", text);
        let reasons: Vec<Reason> = model
            .newly_unresolved(&after)
            .into_iter()
            .map(|(_, u)| u.reason)
            .collect();
        assert_eq!(reasons, [Reason::KeyUnresolved, Reason::KeyUnresolved]);
    }
}
