//! `check`: proves that the files of a deployment agree with each other.
//!
//! NAME
//!     cargo xtask check [--format text|json] [--base GIT-REV]
//!
//! DESCRIPTION
//!     Works in three steps, kept apart so that no rule knows where a fact was read:
//!
//!     1. [`gather`] reads each managed file once, with the parser of its kind from
//!        `crate::files` (the same parsers the edits use), into [`Facts`]. A file
//!        that does not parse becomes a `yaml-syntax` finding and adds no facts.
//!     2. [`rules`] runs one function per rule of DESIGN.md's table over the facts.
//!     3. [`Report`] sorts the findings by path and line and prints them as text
//!        (`path:line: error[rule]: message`, `  = help: ...`, a summary) or JSON.
//!
//!     Exit status 0 without errors (warnings allowed), 1 with errors, 2 when the
//!     check could not run (no layout, an unreadable file, a bad `--base`).

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use anyhow::Result;
use semver::Version;

use crate::config::Config;
use crate::deployment::read;
use crate::error::bad_input;
use crate::files::helm_template::{self, Block, EnvVar};
use crate::files::{chart, generator, secrets_yaml, values, FileError};
use crate::flags::{self, Format};
use crate::layout::{Layout, RepoFile, SecretKind};
use crate::names::{env_id_of, identifier_problem, name_of_secret_key, name_of_values_key};

impl flags::Check {
    pub fn run(self, config: Config) -> Result<u8> {
        let report = check(&config, self.base.as_deref())?;
        match self.format {
            Format::Text => out!("{}", report.text()),
            Format::Json => outln!("{}", report.json()),
            Format::Github => out!("{}", report.github()),
        }
        Ok(u8::from(report.errors() > 0))
    }
}

/// Runs every rule over the configured deployment.
pub fn check(config: &Config, base: Option<&str>) -> Result<Report> {
    let layout = Layout::detect(config)?;
    let facts = gather(&layout, base)?;
    Ok(Report::new(rules(&facts)))
}

// ---------------------------------------------------------------------------
// Findings and the report
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One problem, where it is, and what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub rule: &'static str,
    pub severity: Severity,
    /// Relative to the repository the file belongs to.
    pub path: String,
    /// 1-based.
    pub line: usize,
    /// What the finding is about: a secret key, values key, id, role, chart,
    /// environment or path, depending on the rule.
    pub subject: String,
    pub message: String,
    pub help: String,
}

impl Finding {
    fn new(rule: &'static str, path: &str, line: usize, subject: impl Into<String>) -> Finding {
        let severity = match rule {
            "unused-password" | "shared-role" | "missing-vault-path" => Severity::Warning,
            _ => Severity::Error,
        };
        Finding {
            rule,
            severity,
            path: path.to_string(),
            line,
            subject: subject.into(),
            message: String::new(),
            help: String::new(),
        }
    }

    fn says(mut self, message: impl Into<String>, help: impl Into<String>) -> Finding {
        self.message = message.into();
        self.help = help.into();
        self
    }
}

/// Every finding of one run, sorted by path and line.
#[derive(Clone, Debug)]
pub struct Report {
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn new(mut findings: Vec<Finding>) -> Report {
        findings.sort_by(|a, b| {
            (&a.path, a.line, a.rule, &a.subject).cmp(&(&b.path, b.line, b.rule, &b.subject))
        });
        findings.dedup();
        Report { findings }
    }

    pub fn errors(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count()
    }

    pub fn warnings(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
            .count()
    }

    /// The findings, each with its help line, then a one-line summary.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for f in &self.findings {
            let _ = writeln!(
                out,
                "{}:{}: {}[{}]: {}",
                f.path,
                f.line,
                f.severity.as_str(),
                f.rule,
                f.message
            );
            let _ = writeln!(out, "  = help: {}", f.help);
        }
        let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        let _ = writeln!(
            out,
            "{}, {}",
            plural(self.errors(), "error"),
            plural(self.warnings(), "warning")
        );
        out
    }

    /// `{"findings": [...], "errors": N, "warnings": N}` on one line.
    pub fn json(&self) -> String {
        let mut out = String::from("{\"findings\": [");
        for (i, f) in self.findings.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            let _ = write!(
                out,
                "{{\"rule\": {}, \"severity\": {}, \"path\": {}, \"line\": {}, \"subject\": {}, \"message\": {}}}",
                json_string(f.rule),
                json_string(f.severity.as_str()),
                json_string(&f.path),
                f.line,
                json_string(&f.subject),
                json_string(&f.message)
            );
        }
        let _ = write!(
            out,
            "], \"errors\": {}, \"warnings\": {}}}",
            self.errors(),
            self.warnings()
        );
        out
    }
}

impl Report {
    /// GitHub Actions workflow commands: one `::error` or `::warning` annotation per
    /// finding, then the summary line.
    pub fn github(&self) -> String {
        let mut out = String::new();
        for f in &self.findings {
            let _ = writeln!(
                out,
                "::{} file={},line={},title={}::{}",
                f.severity.as_str(),
                github_property(&f.path),
                f.line,
                github_property(f.rule),
                github_data(&format!("{} (help: {})", f.message, f.help))
            );
        }
        let _ = writeln!(
            out,
            "{} errors, {} warnings",
            self.errors(),
            self.warnings()
        );
        out
    }
}

/// Escapes an annotation's message as GitHub's workflow commands require.
fn github_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes an annotation property (`file=`, `title=`): also `:` and `,`.
fn github_property(text: &str) -> String {
    github_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// A JSON string literal.
pub fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ---------------------------------------------------------------------------
// Facts
// ---------------------------------------------------------------------------

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
    pub keys: Vec<SecretKeyFact>,
}

/// A key the secret source generates, copies or declares.
#[derive(Clone, Debug)]
pub struct SecretKeyFact {
    pub key: String,
    pub line: usize,
    /// The `if:` of a `secrets.yaml` entry, with its line.
    pub condition: Option<(String, usize)>,
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
pub fn gather(layout: &Layout, base: Option<&str>) -> Result<Facts> {
    let mut facts = Facts {
        published_chart: layout.publishes_chart(),
        ..Facts::default()
    };
    let mut unparsable = Vec::new();
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
            let text = read(&layout.secret_source)?;
            let secrets = match layout.secret_kind {
                SecretKind::Generator => tolerate(
                    &mut unparsable,
                    &layout.secret_source,
                    generator::parse(&text),
                )
                .map(|g| SecretFacts {
                    path: layout.secret_source.relative.clone(),
                    kind: SecretSourceKind::Generator,
                    keys: g
                        .calls
                        .into_iter()
                        .map(|c| SecretKeyFact {
                            key: c.key,
                            line: c.line,
                            condition: None,
                        })
                        .collect(),
                }),
                SecretKind::SecretsYaml => tolerate(
                    &mut unparsable,
                    &layout.secret_source,
                    secrets_yaml::parse(&text),
                )
                .map(|y| SecretFacts {
                    path: layout.secret_source.relative.clone(),
                    kind: SecretSourceKind::SecretsYaml,
                    keys: y
                        .entries
                        .into_iter()
                        .map(|e| SecretKeyFact {
                            condition: e.condition.map(|c| (c, e.condition_line.unwrap_or(e.line))),
                            key: e.key,
                            line: e.line,
                        })
                        .collect(),
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
    if base.is_some() && layout.charts.is_none() {
        eprintln!(
            "note: --base is ignored: the {} layout does not publish its chart, so its version need not move",
            layout.kind
        );
    }
    if let (Some(rev), Some(root)) = (base, layout.charts.as_deref()) {
        facts.base = Some(base_facts(root, &layout.chart, rev)?);
    }
    Ok(facts)
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

/// Runs git in the charts repository, without the variables a git hook sets for
/// the repository being committed.
fn git(root: &Path, args: &[&str]) -> Result<std::process::Output> {
    let mut cmd = Command::new("git");
    cmd.arg("-C").arg(root).args(args);
    for var in [
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_PREFIX",
        "GIT_OBJECT_DIRECTORY",
        "GIT_COMMON_DIR",
    ] {
        cmd.env_remove(var);
    }
    cmd.output()
        .map_err(|e| bad_input(format!("--base needs git, which did not run: {e}")))
}

/// The chart's templates and version at `rev` of the charts repository.
fn base_facts(root: &Path, chart_file: &RepoFile, rev: &str) -> Result<BaseFacts> {
    let chart_dir = chart_file
        .relative
        .strip_suffix("/Chart.yaml")
        .unwrap_or("charts/postgres");
    let verify = git(
        root,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{rev}^{{commit}}"),
        ],
    )?;
    if !verify.status.success() {
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

// ---------------------------------------------------------------------------
// Rules
// ---------------------------------------------------------------------------

/// Every rule over the facts.
pub fn rules(facts: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    yaml_syntax(facts, &mut out);
    password_not_generated(facts, &mut out);
    db_without_template(facts, &mut out);
    unused_password(facts, &mut out);
    malformed_block(facts, &mut out);
    env_ids(facts, &mut out);
    bad_values_entry(facts, &mut out);
    shared_role(facts, &mut out);
    stale_dependency(facts, &mut out);
    chart_not_bumped(facts, &mut out);
    secret_condition_mismatch(facts, &mut out);
    missing_vault_path(facts, &mut out);
    out
}

const ROOT_PASSWORD: &str = "root_password";

fn yaml_syntax(facts: &Facts, out: &mut Vec<Finding>) {
    for (path, error) in &facts.unparsable {
        out.push(
            Finding::new("yaml-syntax", path, error.line.unwrap_or(1), path.as_str()).says(
                error.message.clone(),
                "fix the file so that it parses (no duplicate keys); the other rules skipped it",
            ),
        );
    }
}

/// The key with `-` read as `_`, as `secret_key_matches` compares them.
fn normalized(key: &str) -> String {
    key.replace('-', "_")
}

impl SecretFacts {
    fn how_to_add(&self, key: &str, values_key: &str) -> String {
        match self.kind {
            SecretSourceKind::Generator => format!(
                "add `self._set_generated(\"postgres\", \"{key}\", secrets.token_hex(32))` to `_postgres` in {}",
                self.path
            ),
            SecretSourceKind::SecretsYaml => format!(
                "add the entry `{key}:` with `if: {values_key}` and `generate: {{type: password}}` to {}",
                self.path
            ),
        }
    }
}

fn password_not_generated(facts: &Facts, out: &mut Vec<Finding>) {
    let Some(secrets) = &facts.secrets else {
        return;
    };
    let provided: HashSet<&str> = secrets.keys.iter().map(|k| k.key.as_str()).collect();
    let provided_normalized: HashSet<String> =
        secrets.keys.iter().map(|k| normalized(&k.key)).collect();
    let mut blocks: HashSet<&str> = HashSet::new();
    if let Some(template) = &facts.template {
        for block in &template.blocks {
            blocks.insert(&block.values_key);
            for (key, line) in &block.secret_keys {
                if !provided.contains(key.as_str()) {
                    out.push(Finding::new("password-not-generated", &template.path, *line, key.as_str()).says(
                        format!(
                            "the block for `{}` reads the secret key `{key}`, which {} neither generates nor copies \
                             nor declares; postgres cannot start where `{}` is set",
                            block.values_key, secrets.path, block.values_key
                        ),
                        secrets.how_to_add(key, &block.values_key),
                    ));
                }
            }
        }
    }
    // Entries without a block need the key their name implies.
    let mut reported: HashSet<&str> = HashSet::new();
    for env in &facts.envs {
        for entry in &env.entries {
            if facts.template.is_some() && blocks.contains(entry.key.as_str()) {
                continue;
            }
            let Some(name) = name_of_values_key(&entry.key) else {
                continue;
            };
            let key = format!("{name}_password");
            if provided_normalized.contains(&key) || !reported.insert(&entry.key) {
                continue;
            }
            out.push(Finding::new("password-not-generated", &env.path, entry.line, key.as_str()).says(
                format!(
                    "`{}` needs the secret key `{key}`, which {} neither generates nor copies nor declares",
                    entry.key, secrets.path
                ),
                secrets.how_to_add(&key, &entry.key),
            ));
        }
    }
}

fn db_without_template(facts: &Facts, out: &mut Vec<Finding>) {
    let Some(template) = &facts.template else {
        return;
    };
    let blocks: HashSet<&str> = template
        .blocks
        .iter()
        .map(|b| b.values_key.as_str())
        .collect();
    for env in &facts.envs {
        for entry in &env.entries {
            if blocks.contains(entry.key.as_str()) {
                continue;
            }
            let name = name_of_values_key(&entry.key).unwrap_or("NAME");
            out.push(Finding::new("db-without-template", &env.path, entry.line, entry.key.as_str()).says(
                format!(
                    "`{}` is set, but {} has no block for it: the database is silently never created",
                    entry.key, template.path
                ),
                format!(
                    "add the block with `cargo xtask add-db {name} --env {}` (it adds only what is missing), \
                     or remove the entry",
                    env.name
                ),
            ));
        }
    }
}

fn unused_password(facts: &Facts, out: &mut Vec<Finding>) {
    let (Some(template), Some(secrets)) = (&facts.template, &facts.secrets) else {
        return;
    };
    let read: HashSet<&str> = template.read_keys.iter().map(String::as_str).collect();
    for key in &secrets.keys {
        if key.key == ROOT_PASSWORD
            || name_of_secret_key(&key.key).is_none()
            || read.contains(key.key.as_str())
        {
            continue;
        }
        out.push(Finding::new("unused-password", &secrets.path, key.line, key.key.as_str()).says(
            format!("{} makes `{}`, but no block of {} reads it", secrets.path, key.key, template.path),
            format!(
                "remove it if its database is gone (`cargo xtask remove-db {}`), or add the database's block",
                name_of_secret_key(&key.key).unwrap_or("NAME")
            ),
        ));
    }
}

fn malformed_block(facts: &Facts, out: &mut Vec<Finding>) {
    let Some(template) = &facts.template else {
        return;
    };
    for block in &template.blocks {
        let Some(problem) = block.malformation() else {
            continue;
        };
        let help = match block.name() {
            Some(name) => format!(
                "write the block as `cargo xtask add-db` does: VRO_DB_{id}_USER, VRO_DB_{id}_DB and \
                 VRO_DB_{id}_PASSWORD, the last from the secret key `{name}_password`",
                id = env_id_of(name)
            ),
            None => "a database block is `{{- with .Values.<name>_db }}` with VRO_DB_<ID>_USER, _DB and _PASSWORD"
                .to_string(),
        };
        out.push(
            Finding::new(
                "malformed-block",
                &template.path,
                block.line,
                block.values_key.as_str(),
            )
            .says(problem, help),
        );
    }
}

/// `env-id-underscore` and `env-id-collision`.
fn env_ids(facts: &Facts, out: &mut Vec<Finding>) {
    let Some(template) = &facts.template else {
        return;
    };
    let path = &template.path;
    let underscore = |id: &str, line: usize, out: &mut Vec<Finding>| {
        out.push(Finding::new("env-id-underscore", path, line, id).says(
            format!(
                "`VRO_DB_{id}_*` has `_` in its id; the container takes the third `_`-separated field as the id, \
                 so it skips this database"
            ),
            format!("use `VRO_DB_{}_*` (the values and secret keys keep their `_`)", id.replace('_', "")),
        ));
    };
    let mut seen: HashMap<&str, &Block> = HashMap::new();
    for block in &template.blocks {
        let mut ids: Vec<(&str, usize)> = Vec::new();
        for var in &block.vars {
            if !ids.iter().any(|(id, _)| *id == var.id) {
                ids.push((&var.id, var.line));
            }
        }
        for (id, line) in ids {
            if id.contains('_') {
                underscore(id, line, out);
            }
            match seen.get(id) {
                Some(first) => out.push(Finding::new("env-id-collision", path, line, id).says(
                    format!(
                        "`VRO_DB_{id}_*` is also set by the block for `{}` at line {}: the container sees one \
                         database where two are meant",
                        first.values_key, first.line
                    ),
                    format!("rename one of `{}` and `{}`", first.values_key, block.values_key),
                )),
                None => {
                    seen.insert(id, block);
                }
            }
        }
    }
    let mut stray_ids: HashSet<&str> = HashSet::new();
    for var in &template.stray {
        if var.id.contains('_') && stray_ids.insert(&var.id) {
            underscore(&var.id, var.line, out);
        }
    }
}

fn bad_values_entry(facts: &Facts, out: &mut Vec<Finding>) {
    // The same users and databases recur in every environment: judge each once.
    let mut judged: HashMap<&str, Option<String>> = HashMap::new();
    for env in &facts.envs {
        for entry in &env.entries {
            let finding = || {
                Finding::new(
                    "bad-values-entry",
                    &env.path,
                    entry.line,
                    entry.key.as_str(),
                )
            };
            let help = format!(
                "write `{}:` as a mapping with `user:` and `db:`, each a lower-case SQL identifier \
                 (letters, digits, `_`; not a reserved word)",
                entry.key
            );
            if name_of_values_key(&entry.key).is_none() {
                out.push(finding().says(format!("`{}` names no database", entry.key), help));
                continue;
            }
            if let Some(problem) = &entry.problem {
                out.push(finding().says(problem.clone(), help));
                continue;
            }
            for (field, value) in [("user", &entry.user), ("db", &entry.db)] {
                let Some(value) = value.as_deref() else {
                    continue;
                };
                let problem = judged
                    .entry(value)
                    .or_insert_with(|| identifier_problem(value));
                if let Some(problem) = problem {
                    out.push(
                        finding().says(format!("`{}` {field}: {problem}", entry.key), help.clone()),
                    );
                }
            }
        }
    }
}

fn shared_role(facts: &Facts, out: &mut Vec<Finding>) {
    let block_keys: HashMap<&str, &str> = facts
        .template
        .iter()
        .flat_map(|t| t.blocks.iter())
        .filter_map(|b| b.secret_key().map(|k| (b.values_key.as_str(), k)))
        .collect();
    for env in &facts.envs {
        let mut roles: HashMap<&str, (&values::DbEntry, String)> = HashMap::new();
        for entry in &env.entries {
            let (Some(user), None) = (entry.user.as_deref(), &entry.problem) else {
                continue;
            };
            let Some(name) = name_of_values_key(&entry.key) else {
                continue;
            };
            let key = block_keys
                .get(entry.key.as_str())
                .map_or_else(|| format!("{name}_password"), |k| k.to_string());
            match roles.get(user) {
                Some((first, first_key)) if normalized(first_key) != normalized(&key) => {
                    out.push(Finding::new("shared-role", &env.path, entry.line, user).says(
                        format!(
                            "`{}` and `{}` (line {}) both use the role `{user}`, with the passwords `{key}` and \
                             `{first_key}`: a role has one password, so one of them cannot log in",
                            entry.key, first.key, first.line
                        ),
                        format!("give `{}` its own user, or let both blocks read the same secret key", entry.key),
                    ));
                }
                Some(_) => {}
                None => {
                    roles.insert(user, (entry, key));
                }
            }
        }
    }
}

fn stale_dependency(facts: &Facts, out: &mut Vec<Finding>) {
    let (Some(umbrella), Some(chart)) = (&facts.umbrella, &facts.chart) else {
        return;
    };
    let Some((version, version_line)) = &chart.version else {
        return;
    };
    let name = chart.name.as_str();
    let Some(dep) = umbrella.dependencies.iter().find(|d| d.name == name) else {
        out.push(Finding::new("stale-dependency", &umbrella.path, 1, name).says(
            format!("the umbrella chart has no dependency named `{name}`, so no environment gets the chart"),
            format!("add `{name}` with `version: \">={version}\"` under `dependencies:`"),
        ));
        return;
    };
    let problem = match chart::admits(&dep.requirement, version) {
        Ok(true) => return,
        Ok(false) => format!(
            "the umbrella requires `{name}` `{}`, which does not admit the chart's version {version} ({}:{version_line})",
            dep.requirement, chart.path
        ),
        Err(e) => e,
    };
    out.push(Finding::new("stale-dependency", &umbrella.path, dep.line, name).says(
        problem,
        format!("move the requirement so that it admits {version}, keeping its operator (e.g. `\">={version}\"`)"),
    ));
}

fn chart_not_bumped(facts: &Facts, out: &mut Vec<Finding>) {
    let (Some(base), Some(chart)) = (&facts.base, &facts.chart) else {
        return;
    };
    if !facts.published_chart || base.changed_templates.is_empty() {
        return;
    }
    let (Some((current, line)), Some(old)) = (&chart.version, &base.version) else {
        return;
    };
    if current > old {
        return;
    }
    let next = chart::Bump::Patch.apply(old);
    out.push(Finding::new("chart-not-bumped", &chart.path, *line, chart.name.as_str()).says(
        format!(
            "the chart's templates changed since {} ({}), but its version is {current}, not above {old}",
            base.rev,
            base.changed_templates.join(", ")
        ),
        format!(
            "bump `version:` to {next} (a patch bump) and move the umbrella's `{}` dependency to admit it",
            chart.name
        ),
    ));
}

fn secret_condition_mismatch(facts: &Facts, out: &mut Vec<Finding>) {
    let Some(secrets) = &facts.secrets else {
        return;
    };
    for key in &secrets.keys {
        let (Some((condition, line)), Some(name)) = (&key.condition, name_of_secret_key(&key.key))
        else {
            continue;
        };
        if key.key == ROOT_PASSWORD {
            continue;
        }
        let expected = format!("{}_db", normalized(name));
        if normalized(condition) == expected {
            continue;
        }
        out.push(Finding::new("secret-condition-mismatch", &secrets.path, *line, key.key.as_str()).says(
            format!(
                "`{}` is made only `if: {condition}`, but the database that reads it is `{expected}`: where \
                 `{expected}` is set without `{condition}`, the password is missing and postgres cannot start",
                key.key
            ),
            format!("write `if: {expected}`"),
        ));
    }
}

fn missing_vault_path(facts: &Facts, out: &mut Vec<Finding>) {
    if !facts.published_chart {
        return;
    }
    for env in &facts.envs {
        if env.entries.is_empty() || env.vault_path.is_some() {
            continue;
        }
        out.push(Finding::new("missing-vault-path", &env.path, env.section_line, env.name.as_str()).says(
            format!(
                "{} has database entries but no `vault_secrets.path`: the runbook cannot say where {}'s passwords go",
                env.path, env.name
            ),
            "add `vault_secrets:` with `enabled: true` and `path: secret/k8s_operator/<instance>/postgres` under `postgres:`",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Config {
        let root = crate::config::workspace_root().join("sample");
        crate::config::Config {
            file: None,
            phalanx: Some(root.join("phalanx")),
            charts: Some(root.join("charts")),
            vault_addr: crate::config::DEFAULT_VAULT_ADDR.to_string(),
            local_env: None,
            vault_paths: Default::default(),
        }
    }

    /// `cargo test` holds the embedded sample to the rules `check` enforces.
    #[test]
    fn the_sample_passes_its_own_check() {
        let report = check(&sample(), None).expect("check runs on the sample");
        assert!(
            report.findings.is_empty(),
            "the sample has findings:\n{}",
            report.text()
        );
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(
            json_string("a\"b\\c\nd\u{1}é"),
            "\"a\\\"b\\\\c\\nd\\u0001é\""
        );
    }

    #[test]
    fn severities_follow_the_table() {
        for (rule, severity) in [
            ("unused-password", Severity::Warning),
            ("shared-role", Severity::Warning),
            ("missing-vault-path", Severity::Warning),
            ("password-not-generated", Severity::Error),
            ("yaml-syntax", Severity::Error),
        ] {
            assert_eq!(Finding::new(rule, "p", 1, "s").severity, severity, "{rule}");
        }
    }

    #[test]
    fn summary_counts_and_plurals() {
        let f = |rule| Finding::new(rule, "a", 1, "s").says("m", "h");
        let report = Report::new(vec![
            f("unused-password"),
            f("yaml-syntax"),
            f("db-without-template"),
        ]);
        assert!(
            report.text().ends_with("2 errors, 1 warning\n"),
            "{}",
            report.text()
        );
        assert_eq!(Report::new(vec![]).text(), "0 errors, 0 warnings\n");
    }
}
