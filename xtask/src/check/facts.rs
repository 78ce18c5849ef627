//! The first stage of `check`: the facts the rules judge, a view of the one
//! [`Model`] (every file read once, with the parser of its kind from
//! `crate::files`): what the files say, with the paths and lines findings point
//! at. Rules see only these facts.

use super::Base;
use std::path::Path;

use anyhow::Result;
use semver::Version;

use crate::deployment::Secrets;
use crate::error::bad_input;
use crate::files::helm_template::{Block, EnvVar};
use crate::files::{chart, generator, secrets_yaml, values, FileError};
use crate::layout::RepoFile;
use crate::model::Model;

/// What the files say, with the paths (relative to their repositories) and lines
/// the findings point at. Built by [`gather`]; fixtures can build it by hand.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    /// The chart is published on its own (`split`): its version must move with its
    /// templates, and the values files must name their Vault path.
    pub published_chart: bool,
    pub template: Option<TemplateFacts>,
    pub secrets: Option<SecretFacts>,
    pub envs: Vec<EnvFacts>,
    pub chart: Option<ChartFacts>,
    /// The umbrella chart and its dependencies (`split`).
    pub umbrella: Option<UmbrellaFacts>,
    /// The chart at `--base`.
    pub base: Option<BaseFacts>,
    /// Copies of postgres passwords into other components (`copy-without-source`).
    pub copies: Vec<CopyFact>,
    /// The other applications' `secrets.yaml` files.
    pub app_secrets: Vec<AppSecretFacts>,
    /// Values files in a postgres folder that is not the chart's (`stray-values-file`).
    pub stray_values: Vec<String>,
    /// `values-*.yaml` files whose name is no environment name, with the reason
    /// (`bad-environment-name`).
    pub bad_env_files: Vec<(String, String)>,
    /// The secret source's path when it does not exist (`secret-source-absent`).
    pub secret_source_absent: Option<String>,
    /// Files that did not parse (`yaml-syntax`).
    pub unparsable: Vec<(String, FileError)>,
    /// The applications on the other side, per environment (empty without
    /// `environments/`).
    pub other_side: Vec<super::side::EnvSide>,
}

#[derive(Clone, Debug)]
pub struct TemplateFacts {
    pub path: String,
    pub blocks: Vec<Block>,
    /// Every secret key the blocks read.
    pub read_keys: Vec<String>,
    /// `VRO_DB_*` variables outside any block.
    pub stray: Vec<EnvVar>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretSourceKind {
    Generator,
    SecretsYaml,
}

#[derive(Clone, Debug)]
pub struct SecretFacts {
    pub path: String,
    pub kind: SecretSourceKind,
    /// The generator's shape (methods, module calls, dict literal).
    pub generator_shape: Option<generator::Shape>,
    pub keys: Vec<SecretKeyFact>,
}

/// A key the secret source generates, copies or declares.
#[derive(Clone, Debug)]
pub struct SecretKeyFact {
    pub key: String,
    pub line: usize,
    /// The `if:` of a `secrets.yaml` entry, with its line.
    pub condition: Option<(String, usize)>,
    /// `Some((application, key))` when the entry is a `copy:`.
    pub copied_from: Option<(String, String)>,
}

/// A copy of a postgres password into another component: a generator read of
/// `self.secrets["postgres"][KEY]`, or an application's `copy:` entry from postgres.
#[derive(Clone, Debug)]
pub struct CopyFact {
    pub key: String,
    pub consumer: String,
    pub path: String,
    pub line: usize,
}

/// Another application's `secrets.yaml`: its keys and where each comes from.
#[derive(Clone, Debug)]
pub struct AppSecretFacts {
    pub app: String,
    pub path: String,
    pub keys: Vec<SecretKeyFact>,
}

#[derive(Clone, Debug)]
pub struct EnvFacts {
    pub name: String,
    pub path: String,
    pub entries: Vec<values::DbEntry>,
    pub vault_path: Option<String>,
    /// The line a missing key would be added under (`postgres:`), else 1.
    pub section_line: usize,
}

#[derive(Clone, Debug)]
pub struct ChartFacts {
    pub path: String,
    pub name: String,
    pub version: Option<(Version, usize)>,
}

#[derive(Clone, Debug)]
pub struct UmbrellaFacts {
    pub path: String,
    pub dependencies: Vec<chart::Dependency>,
}

#[derive(Clone, Debug)]
pub struct BaseFacts {
    pub rev: String,
    /// Template files that differ from `rev`.
    pub changed_templates: Vec<String>,
    /// The chart's version at `rev`, if the chart existed then.
    pub version: Option<Version>,
}

/// The facts of a model: what the rules judge. Unparsable files become
/// `yaml-syntax` facts; only the managed ones (the postgres application's).
pub fn gather(model: &Model, base: Option<&Base>) -> Result<Facts> {
    let layout = &model.layout;
    let mut facts = Facts {
        published_chart: layout.publishes_chart(),
        ..Facts::default()
    };
    facts.unparsable = model
        .unreadable
        .iter()
        .filter(|u| u.managed)
        .map(|u| (u.file.relative.clone(), u.error.clone()))
        .collect();
    let mut copies = Vec::new();
    facts.secrets = model
        .secrets
        .as_ref()
        .and_then(|s| secret_facts(s, &mut copies));
    facts.envs = model
        .envs
        .iter()
        .map(|e| EnvFacts {
            section_line: e.parsed.container_line().unwrap_or(1),
            name: e.env.name.clone(),
            path: e.env.values.relative.clone(),
            entries: e.parsed.entries.clone(),
            vault_path: e.parsed.vault_path.clone(),
        })
        .collect();
    if !layout.secret_source_present {
        facts.secret_source_absent = Some(layout.secret_source.relative.clone());
    }
    facts.template = model.template.as_ref().map(|t| TemplateFacts {
        path: t.file.relative.clone(),
        read_keys: t.parsed.secret_keys().map(|(k, _)| k.to_string()).collect(),
        blocks: t.parsed.blocks.clone(),
        stray: t.parsed.stray_vars.clone(),
    });
    facts.chart = model.chart.as_ref().map(|c| ChartFacts {
        path: c.file.relative.clone(),
        name: c
            .parsed
            .name
            .clone()
            .unwrap_or_else(|| "postgres".to_string()),
        version: c.parsed.version.clone(),
    });
    facts.umbrella = model.umbrella.as_ref().map(|c| UmbrellaFacts {
        path: c.file.relative.clone(),
        dependencies: c.parsed.dependencies.clone(),
    });
    facts.app_secrets = app_secret_facts(model, &mut copies);
    facts.copies = copies;
    facts.other_side = super::side::gather(model);
    facts.stray_values = layout
        .stray_values
        .iter()
        .map(|f| f.relative.clone())
        .collect();
    facts.bad_env_files = layout.skipped_environment_files();
    match (base, layout.charts.as_deref()) {
        (Some(Base::Given(_)), None) => eprintln!(
            "note: --base is ignored: the {} layout does not publish its chart, so its version need not move",
            layout.kind
        ),
        (Some(Base::FromGithub(rev)), Some(root)) if !is_revision(root, rev)? => eprintln!(
            "note: chart-not-bumped is not checked: {rev} (from GITHUB_BASE_REF) is not a revision of the \
             charts repository {}; give --base REV to compare with one it has",
            root.display()
        ),
        (Some(base), Some(root)) => facts.base = Some(base_facts(root, &layout.chart, base.rev())?),
        _ => {}
    }
    Ok(facts)
}

/// The other applications' `secrets.yaml` files, with their copies of postgres
/// passwords added to `copies`.
fn app_secret_facts(model: &Model, copies: &mut Vec<CopyFact>) -> Vec<AppSecretFacts> {
    let mut out = Vec::new();
    for (app, loaded) in &model.app_secrets {
        let keys: Vec<SecretKeyFact> = loaded
            .parsed
            .entries
            .iter()
            .cloned()
            .map(key_fact)
            .collect();
        copies.extend(keys.iter().filter_map(|k| {
            let (from_app, from_key) = k.copied_from.as_ref()?;
            (from_app == "postgres").then(|| CopyFact {
                key: from_key.clone(),
                consumer: app.clone(),
                path: loaded.file.relative.clone(),
                line: k.line,
            })
        }));
        out.push(AppSecretFacts {
            app: app.clone(),
            path: loaded.file.relative.clone(),
            keys,
        });
    }
    out
}

/// The secret source's keys, with the generator's copies of postgres passwords
/// added to `copies`; `None` without a source.
fn secret_facts(secrets: &Secrets, copies: &mut Vec<CopyFact>) -> Option<SecretFacts> {
    match secrets {
        Secrets::Absent(_) => None,
        Secrets::Generator(g) => {
            let path = g.file.relative.clone();
            copies.extend(g.parsed.copies.iter().map(|c| CopyFact {
                key: c.key.clone(),
                consumer: c.component.clone(),
                path: path.clone(),
                line: c.line,
            }));
            Some(SecretFacts {
                path,
                kind: SecretSourceKind::Generator,
                generator_shape: Some(g.parsed.shape),
                keys: g
                    .parsed
                    .calls
                    .iter()
                    .map(|c| SecretKeyFact {
                        key: c.key.clone(),
                        line: c.line,
                        condition: None,
                        copied_from: None,
                    })
                    .collect(),
            })
        }
        Secrets::Yaml(y) => Some(SecretFacts {
            path: y.file.relative.clone(),
            kind: SecretSourceKind::SecretsYaml,
            generator_shape: None,
            keys: y.parsed.entries.iter().cloned().map(key_fact).collect(),
        }),
    }
}

fn key_fact(e: secrets_yaml::SecretEntry) -> SecretKeyFact {
    SecretKeyFact {
        condition: e.condition.map(|c| (c, e.condition_line.unwrap_or(e.line))),
        copied_from: match e.source {
            secrets_yaml::Source::Copy { application, key } => Some((application, key)),
            _ => None,
        },
        key: e.key,
        line: e.line,
    }
}

/// Runs git in the charts repository.
fn git(root: &Path, args: &[&str]) -> Result<std::process::Output> {
    crate::git::git(root, args)
        .map_err(|e| bad_input(format!("--base needs git, which did not run: {e}")))
}

/// Whether `rev` names a commit of the repository at `root`.
fn is_revision(root: &Path, rev: &str) -> Result<bool> {
    let commit = format!("{rev}^{{commit}}");
    Ok(git(root, &["rev-parse", "--verify", "--quiet", &commit])?
        .status
        .success())
}

/// The chart's templates and version at `rev` of the charts repository.
fn base_facts(root: &Path, chart_file: &RepoFile, rev: &str) -> Result<BaseFacts> {
    let chart_dir = chart_file
        .relative
        .strip_suffix("/Chart.yaml")
        .unwrap_or("charts/postgres");
    if !is_revision(root, rev)? {
        return Err(bad_input(format!(
            "--base {rev}: not a revision of the charts repository {}; give a commit, branch or tag it has \
             (fetch it first if it is remote)",
            root.display()
        )));
    }
    let templates = format!("{chart_dir}/templates");
    let mut changed = Vec::new();
    for args in [
        vec!["diff", "--name-only", "--relative", rev, "--", &templates],
        vec![
            "ls-files",
            "--others",
            "--exclude-standard",
            "--",
            &templates,
        ],
    ] {
        let out = git(root, &args)?;
        if !out.status.success() {
            return Err(bad_input(format!(
                "--base {rev}: `git {}` failed in {}: {}",
                args.join(" "),
                root.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        changed.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_string),
        );
    }
    changed.sort();
    changed.dedup();
    let shown = git(root, &["show", &format!("{rev}:./{}", chart_file.relative)])?;
    let version = if shown.status.success() {
        chart::parse(&String::from_utf8_lossy(&shown.stdout))
            .ok()
            .and_then(|c| c.version)
            .map(|(v, _)| v)
    } else {
        None
    };
    Ok(BaseFacts {
        rev: rev.to_string(),
        changed_templates: changed,
        version,
    })
}

/// Builders of facts from small texts, for the rules' tests, and what `gather`
/// records for a small tree.
#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::check::Finding;
    use crate::files::helm_template;
    use crate::model::test_model;
    use crate::model::tests::copy;

    pub(crate) const TEMPLATE: &str = "templates/deployment.yaml";
    pub(crate) const SECRETS: &str = "secrets.yaml";

    /// The template's facts from its text.
    pub(crate) fn template_facts(text: &str) -> TemplateFacts {
        let parsed = helm_template::parse(text).expect("the test template parses");
        TemplateFacts {
            path: TEMPLATE.to_string(),
            read_keys: parsed.secret_keys().map(|(k, _)| k.to_string()).collect(),
            blocks: parsed.blocks.clone(),
            stray: parsed.stray_vars.clone(),
        }
    }

    /// A template block for `<name>_db`, with the container id `id`, reading `key`.
    pub(crate) fn block(name: &str, id: &str, key: &str) -> String {
        format!(
            "{{{{- with .Values.{name}_db }}}}\n\
             - name: \"VRO_DB_{id}_USER\"\n  value: {{{{ .user | quote }}}}\n\
             - name: \"VRO_DB_{id}_DB\"\n  value: {{{{ .db | quote }}}}\n\
             - name: \"VRO_DB_{id}_PASSWORD\"\n  valueFrom:\n    secretKeyRef:\n      name: \"postgres\"\n      key: \"{key}\"\n\
             {{{{- end }}}}\n"
        )
    }

    /// An environment's facts from its values text (entries at the top level).
    pub(crate) fn env_facts(name: &str, text: &str) -> EnvFacts {
        let parsed = values::parse(text, values::Nesting::TopLevel).expect("the test values parse");
        EnvFacts {
            section_line: parsed.container_line().unwrap_or(1),
            name: name.to_string(),
            path: format!("values-{name}.yaml"),
            entries: parsed.entries.clone(),
            vault_path: parsed.vault_path.clone(),
        }
    }

    /// The facts of a `secrets.yaml` secret source from its text.
    pub(crate) fn secrets_yaml_facts(text: &str) -> SecretFacts {
        SecretFacts {
            path: SECRETS.to_string(),
            kind: SecretSourceKind::SecretsYaml,
            generator_shape: None,
            keys: app_keys(text),
        }
    }

    /// The keys of a `secrets.yaml` text.
    pub(crate) fn app_keys(text: &str) -> Vec<SecretKeyFact> {
        secrets_yaml::parse(text)
            .expect("the test secrets parse")
            .entries
            .into_iter()
            .map(key_fact)
            .collect()
    }

    /// The findings as (rule, path, line, subject).
    pub(crate) fn summary(found: &[Finding]) -> Vec<(&'static str, &str, usize, &str)> {
        found
            .iter()
            .map(|f| (f.rule, f.path.as_str(), f.line, f.subject.as_str()))
            .collect()
    }

    #[test]
    fn gather_records_what_the_files_say() {
        let facts = gather(&test_model(), None).unwrap();
        assert!(facts.unparsable.is_empty());
        assert!(!facts.published_chart, "the applications layout");
        let envs: Vec<&str> = facts.envs.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(envs, ["idfdev", "usdfdev", "usdfint"]);
        let idfdev = &facts.envs[0];
        assert_eq!(idfdev.path, "applications/postgres/values-idfdev.yaml");
        let keys: Vec<(&str, usize)> = idfdev
            .entries
            .iter()
            .map(|e| (e.key.as_str(), e.line))
            .collect();
        assert_eq!(
            keys,
            [
                ("exposurelog_db", 1),
                ("gafaelfawr_db", 4),
                ("nublado3_db", 7),
                ("times_square_db", 10)
            ]
        );
        let secrets = facts.secrets.as_ref().unwrap();
        assert_eq!(
            (secrets.path.as_str(), secrets.kind),
            (
                "applications/postgres/secrets.yaml",
                SecretSourceKind::SecretsYaml
            )
        );
        let gafaelfawr = secrets
            .keys
            .iter()
            .find(|k| k.key == "gafaelfawr_password")
            .unwrap();
        assert_eq!(
            (
                gafaelfawr.line,
                &gafaelfawr.condition,
                &gafaelfawr.copied_from
            ),
            (
                7,
                &Some(("gafaelfawr_db".to_string(), 9)),
                &Some(("gafaelfawr".to_string(), "database-password".to_string()))
            )
        );
        let template = facts.template.as_ref().unwrap();
        assert_eq!(template.blocks.len(), 5);
        assert!(template
            .read_keys
            .contains(&"times_square_password".to_string()));
        let chart = facts.chart.as_ref().unwrap();
        assert_eq!(
            (
                chart.name.as_str(),
                chart.version.as_ref().map(|(v, l)| (v.to_string(), *l))
            ),
            ("postgres", Some(("1.0.0".to_string(), 3)))
        );
        // The applications copying from postgres are copies of its passwords.
        let mut consumers: Vec<&str> = facts.copies.iter().map(|c| c.consumer.as_str()).collect();
        consumers.sort_unstable();
        assert_eq!(consumers, ["exposurelog", "nublado", "times-square"]);
        let apps: Vec<&str> = facts.app_secrets.iter().map(|a| a.app.as_str()).collect();
        assert_eq!(
            apps,
            ["exposurelog", "gafaelfawr", "nublado", "times-square"]
        );
        assert!(facts.secret_source_absent.is_none() && facts.base.is_none());
    }

    #[test]
    fn a_file_that_does_not_parse_is_a_yaml_syntax_fact() {
        let dir = std::env::temp_dir().join(format!("pgdb-facts-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        copy(
            &crate::config::workspace_root().join("tests/fixtures/check/consumers/phalanx"),
            &dir,
        );
        std::fs::write(
            dir.join("applications/postgres/values-usdfint.yaml"),
            "a: [\n",
        )
        .unwrap();
        // Another application's broken file is not managed: no fact.
        std::fs::write(
            dir.join("applications/nublado/values-idfdev.yaml"),
            "hub: [\n",
        )
        .unwrap();
        let model = Model::load(crate::config::Config::for_repositories(
            Some(dir.clone()),
            None,
        ))
        .unwrap();
        let facts = gather(&model, None).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let unparsable: Vec<&str> = facts.unparsable.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(unparsable, ["applications/postgres/values-usdfint.yaml"]);
        assert!(
            facts.unparsable[0].1.line.is_some(),
            "{:?}",
            facts.unparsable[0].1
        );
        let mut found = Vec::new();
        crate::check::rules::rules(&facts)
            .into_iter()
            .filter(|f| f.rule == "yaml-syntax")
            .for_each(|f| found.push(f));
        assert_eq!(found.len(), 1, "{found:?}");
    }
}
