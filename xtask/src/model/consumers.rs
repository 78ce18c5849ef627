//! The applications on the other side: who uses each database, per environment.
//!
//! In an environment, an enabled application uses a database when
//!
//! - it copies the database's password from postgres (`copy: {application:
//!   postgres, key: K}` whose conditions hold there; in the generator layout, its
//!   method reads `self.secrets["postgres"][K]`), or postgres copies the password
//!   from it;
//! - one of its values points at the internal server ([`crate::files::pointers`]):
//!   a pointer of `values-ENV.yaml`, or one of `values.yaml` that the environment
//!   does not override;
//! - a known flag is true in its merged values: gafaelfawr's
//!   `config.internalDatabase` (the chart then builds
//!   `postgresql://gafaelfawr@postgres.postgres/gafaelfawr`), nublado's
//!   `hub.internalDatabase`.

use crate::files::pointers::{self, Pointer};
use crate::files::values::DbEntry;
use crate::layout::RepoFile;

use super::resolve::Source;
use super::values::{get, truthy_at};
use super::Model;
use crate::deployment::Secrets;

/// How an application uses the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Via {
    /// It copies the postgres password `key`.
    CopiesFromPostgres { key: String },
    /// postgres's `key` is copied from this application's `app_key`.
    CopiedByPostgres { key: String, app_key: String },
    /// The generator copies the postgres password `key` into it.
    GeneratorCopy { key: String },
    /// A value points at the internal server.
    Pointer(Pointer),
    /// A flag whose chart builds the connection to the internal server.
    Flag { path: String },
}

/// One application's use of the server in one environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Consumer {
    pub app: String,
    pub file: RepoFile,
    /// 1-based.
    pub line: usize,
    pub via: Via,
    /// The user and database it connects as, when it says.
    pub user: Option<String>,
    pub database: Option<String>,
}

impl Consumer {
    /// How it reads, for messages and `list`.
    pub fn describe(&self) -> String {
        match &self.via {
            Via::CopiesFromPostgres { key } => format!("copies postgres/{key}"),
            Via::CopiedByPostgres { key, app_key } => {
                format!("source of postgres/{key} ({app_key})")
            }
            Via::GeneratorCopy { key } => format!("generator copies postgres/{key}"),
            Via::Pointer(p) => format!(
                "{} points at {}@{}/{}",
                p.path,
                self.user.as_deref().unwrap_or("?"),
                p.host,
                self.database.as_deref().unwrap_or("?")
            ),
            Via::Flag { path } => format!("{path} is true"),
        }
    }

    /// Whether it uses the entry whose password is `secret_key`.
    pub fn uses(&self, entry: &DbEntry, secret_key: &str) -> bool {
        match &self.via {
            Via::CopiesFromPostgres { key }
            | Via::GeneratorCopy { key }
            | Via::CopiedByPostgres { key, .. } => key == secret_key,
            Via::Pointer(_) | Via::Flag { .. } => match (&self.database, &self.user) {
                (Some(db), _) => entry.db.as_deref() == Some(db.as_str()),
                (None, Some(user)) => entry.user.as_deref() == Some(user.as_str()),
                (None, None) => false,
            },
        }
    }
}

/// The known flags: (application, dotted path, user and database of the chart's
/// default connection, when it builds one).
const FLAGS: &[(&str, &str, Option<&str>)] = &[
    ("gafaelfawr", "config.internalDatabase", Some("gafaelfawr")),
    ("nublado", "hub.internalDatabase", None),
];

impl Model {
    /// Every use of the internal server by the applications enabled in `env`.
    pub fn consumers(&self, env: &str) -> Vec<Consumer> {
        let mut out = self.pointer_consumers(env);
        out.extend(self.copy_consumers(env));
        for (app_name, path, default) in FLAGS {
            let Some(app) = self.apps.get(*app_name) else {
                continue;
            };
            if !self.enables(env, app_name) || !truthy_at(&app.merged_values(env), path) {
                continue;
            }
            if let Some((file, line)) = app.value_site(env, path) {
                out.push(Consumer {
                    app: app_name.to_string(),
                    file: file.clone(),
                    line,
                    via: Via::Flag {
                        path: path.to_string(),
                    },
                    user: default.map(str::to_string),
                    database: default.map(str::to_string),
                });
            }
        }
        out.sort_by(|a, b| {
            (&a.app, &a.file.relative, a.line).cmp(&(&b.app, &b.file.relative, b.line))
        });
        out
    }

    /// The consumers in `env` of the database entry whose password is `secret_key`.
    pub fn consumers_of(&self, env: &str, entry: &DbEntry, secret_key: &str) -> Vec<Consumer> {
        self.consumers(env)
            .into_iter()
            .filter(|c| c.uses(entry, secret_key))
            .collect()
    }

    fn pointer_consumers(&self, env: &str) -> Vec<Consumer> {
        let mut out = Vec::new();
        for app in self.apps.values() {
            if app.name == "postgres" || !self.enables(env, &app.name) {
                continue;
            }
            let over = app.env_values.get(env);
            let merged = app.merged_values(env);
            for doc in [app.values.as_ref(), over].into_iter().flatten() {
                let is_base = over.is_none_or(|o| !std::ptr::eq(o, doc));
                for p in pointers::scan(&doc.text) {
                    // A default the environment overrides does not count.
                    if is_base && get(&merged, &p.path) != get(&doc.value, &p.path) {
                        continue;
                    }
                    if !p.internal() {
                        continue;
                    }
                    out.push(Consumer {
                        app: app.name.clone(),
                        file: doc.file.clone(),
                        line: p.line,
                        user: p.user.clone(),
                        database: p.database.clone(),
                        via: Via::Pointer(p),
                    });
                }
            }
        }
        out
    }

    fn copy_consumers(&self, env: &str) -> Vec<Consumer> {
        let mut out = Vec::new();
        for r in self.required(env) {
            let Source::Copy { application, key } = &r.source else {
                continue;
            };
            let consumer = |app: &str, via| Consumer {
                app: app.to_string(),
                file: r.file.clone(),
                line: r.line,
                via,
                user: None,
                database: None,
            };
            if application == "postgres" && r.app != "postgres" {
                out.push(consumer(
                    &r.app,
                    Via::CopiesFromPostgres { key: key.clone() },
                ));
            } else if r.app == "postgres"
                && application != "postgres"
                && self.enables(env, application)
            {
                let via = Via::CopiedByPostgres {
                    key: r.key.clone(),
                    app_key: key.clone(),
                };
                out.push(consumer(application, via));
            }
        }
        if let Some(Secrets::Generator(g)) = &self.secrets {
            for copy in &g.parsed.copies {
                if self.enables(env, &copy.component) {
                    out.push(Consumer {
                        app: copy.component.clone(),
                        file: g.file.clone(),
                        line: copy.line,
                        via: Via::GeneratorCopy {
                            key: copy.key.clone(),
                        },
                        user: None,
                        database: None,
                    });
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use crate::model::test_model;

    fn brief(env: &str) -> Vec<(String, String, usize, String)> {
        test_model()
            .consumers(env)
            .into_iter()
            .map(|c| (c.app.clone(), c.file.relative.clone(), c.line, c.describe()))
            .collect()
    }

    #[test]
    fn every_kind_of_consumer() {
        let found = brief("usdfdev");
        let has = |app: &str, file: &str, line: usize, how: &str| {
            assert!(
                found.contains(&(app.into(), file.into(), line, how.into())),
                "{app} {file}:{line} {how} not in {found:#?}"
            )
        };
        has(
            "exposurelog",
            "applications/exposurelog/secrets.yaml",
            1,
            "copies postgres/exposurelog_password",
        );
        has(
            "exposurelog",
            "applications/exposurelog/values-usdfdev.yaml",
            3,
            "db.host points at exposurelog@postgres.postgres.svc/exposurelog",
        );
        has(
            "gafaelfawr",
            "applications/gafaelfawr/values-usdfdev.yaml",
            2,
            "config.internalDatabase is true",
        );
        has(
            "gafaelfawr",
            "applications/postgres/secrets.yaml",
            7,
            "source of postgres/gafaelfawr_password (database-password)",
        );
        has(
            "nublado",
            "applications/nublado/values-usdfdev.yaml",
            2,
            "hub.internalDatabase is true",
        );
        has(
            "nublado",
            "applications/nublado/values-usdfdev.yaml",
            4,
            "hub.db.url points at nublado3@postgres.postgres.svc.cluster.local/nublado3",
        );
        assert_eq!(found.len(), 7, "{found:#?}");
    }

    #[test]
    fn other_servers_overrides_and_disabled_applications_do_not_count() {
        // usdfint: nublado points at rsp-db-rw (another server); exposurelog is off.
        let found = brief("usdfint");
        assert!(
            found
                .iter()
                .all(|c| c.0 != "nublado" && c.0 != "exposurelog"),
            "{found:#?}"
        );
        // usdfprod runs no postgres; times-square's URL names rsp-db-rw.
        let found = brief("usdfprod");
        assert!(found.is_empty(), "{found:#?}");
    }
}
