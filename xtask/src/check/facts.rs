//! The first stage of `check`: every managed file read once, with the parser of its
//! kind from `crate::files`, into [`Facts`]: what the files say, with the paths and
//! lines findings point at. Rules see only these facts.

use super::Base;
use std::path::Path;

use anyhow::Result;
use semver::Version;

use crate::deployment::read;
use crate::error::bad_input;
use crate::files::helm_template::{self, Block, EnvVar};
use crate::files::{chart, generator, secrets_yaml, values, FileError};
use crate::layout::{Layout, RepoFile, SecretKind};

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

/// Reads every managed file once. Unreadable files stop the check (exit 2);
/// unparsable ones become findings.
pub fn gather(layout: &Layout, base: Option<&Base>) -> Result<Facts> {
    let mut facts = Facts {
        published_chart: layout.publishes_chart(),
        ..Facts::default()
    };
    let mut unparsable = Vec::new();
    let mut copies = Vec::new();
    let environments = layout.environments()?;
    let texts = environments
        .iter()
        .map(|env| read(&env.values))
        .collect::<Result<Vec<_>>>()?;
    let nesting = layout.nesting;
    // The values files are most of the work: parse them on other threads while
    // this one reads the chart, template and secret source.
    let (parsed, (template, chart, umbrella, secrets)) = std::thread::scope(|scope| {
        let values = scope.spawn(|| parse_all(&texts, |t| values::parse(t, nesting)));
        let single = (|| -> Result<_> {
            let text = read(&layout.template)?;
            let template = tolerate(
                &mut unparsable,
                &layout.template,
                helm_template::parse(&text),
            );
            let text = read(&layout.chart)?;
            let chart = tolerate(&mut unparsable, &layout.chart, chart::parse(&text));
            let umbrella = match &layout.umbrella {
                Some(file) => {
                    let text = read(file)?;
                    tolerate(&mut unparsable, file, chart::parse(&text)).map(|c| (file, c))
                }
                None => None,
            };
            let text = if layout.secret_source_present {
                read(&layout.secret_source)?
            } else {
                String::new()
            };
            let secrets = match layout.secret_kind {
                _ if !layout.secret_source_present => None,
                SecretKind::Generator => tolerate(
                    &mut unparsable,
                    &layout.secret_source,
                    generator::parse(&text),
                )
                .map(|g| {
                    let path = layout.secret_source.relative.clone();
                    copies.extend(g.copies.into_iter().map(|c| CopyFact {
                        key: c.key,
                        consumer: c.component,
                        path: path.clone(),
                        line: c.line,
                    }));
                    SecretFacts {
                        path,
                        kind: SecretSourceKind::Generator,
                        generator_shape: Some(g.shape),
                        keys: g
                            .calls
                            .into_iter()
                            .map(|c| SecretKeyFact {
                                key: c.key,
                                line: c.line,
                                condition: None,
                                copied_from: None,
                            })
                            .collect(),
                    }
                }),
                SecretKind::SecretsYaml => tolerate(
                    &mut unparsable,
                    &layout.secret_source,
                    secrets_yaml::parse(&text),
                )
                .map(|y| SecretFacts {
                    path: layout.secret_source.relative.clone(),
                    kind: SecretSourceKind::SecretsYaml,
                    generator_shape: None,
                    keys: y.entries.into_iter().map(key_fact).collect(),
                }),
            };
            Ok((template, chart, umbrella, secrets))
        })();
        let parsed = values
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        single.map(|single| (parsed, single))
    })?;
    let mut envs = Vec::new();
    for (env, result) in environments.into_iter().zip(parsed) {
        if let Some(v) = tolerate(&mut unparsable, &env.values, result) {
            envs.push(EnvFacts {
                section_line: v.container_line().unwrap_or(1),
                name: env.name,
                path: env.values.relative,
                entries: v.entries,
                vault_path: v.vault_path,
            });
        }
    }

    facts.unparsable = unparsable;
    if !layout.secret_source_present {
        facts.secret_source_absent = Some(layout.secret_source.relative.clone());
    }
    facts.template = template.map(|t| TemplateFacts {
        path: layout.template.relative.clone(),
        read_keys: t.secret_keys().map(|(k, _)| k.to_string()).collect(),
        blocks: t.blocks,
        stray: t.stray_vars,
    });
    facts.chart = chart.map(|c| ChartFacts {
        path: layout.chart.relative.clone(),
        name: c.name.unwrap_or_else(|| "postgres".to_string()),
        version: c.version,
    });
    facts.umbrella = umbrella.map(|(file, c)| UmbrellaFacts {
        path: file.relative.clone(),
        dependencies: c.dependencies,
    });
    facts.secrets = secrets;
    facts.envs = envs;
    for (app, file) in layout.application_secrets() {
        let text = read(&file)?;
        if let Some(parsed) = tolerate(&mut facts.unparsable, &file, secrets_yaml::parse(&text)) {
            let keys: Vec<SecretKeyFact> = parsed.entries.into_iter().map(key_fact).collect();
            copies.extend(keys.iter().filter_map(|k| {
                let (from_app, from_key) = k.copied_from.as_ref()?;
                (from_app == "postgres").then(|| CopyFact {
                    key: from_key.clone(),
                    consumer: app.clone(),
                    path: file.relative.clone(),
                    line: k.line,
                })
            }));
            facts.app_secrets.push(AppSecretFacts {
                app,
                path: file.relative.clone(),
                keys,
            });
        }
    }
    facts.copies = copies;
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

/// A parse result, with a failure set aside as a `yaml-syntax` fact.
fn tolerate<T>(
    unparsable: &mut Vec<(String, FileError)>,
    file: &RepoFile,
    result: Result<T, FileError>,
) -> Option<T> {
    match result {
        Ok(parsed) => Some(parsed),
        Err(e) => {
            unparsable.push((file.relative.clone(), e));
            None
        }
    }
}

/// Parses many texts, on several threads when there are many.
fn parse_all<T: Send>(
    texts: &[String],
    parse: impl Fn(&str) -> Result<T, FileError> + Sync,
) -> Vec<Result<T, FileError>> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    if texts.len() < 8 || threads < 2 {
        return texts.iter().map(|t| parse(t)).collect();
    }
    let chunk = texts.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = texts
            .chunks(chunk)
            .map(|part| scope.spawn(|| part.iter().map(|t| parse(t)).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
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
