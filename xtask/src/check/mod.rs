//! `check`: proves that the files of a deployment agree with each other.
//!
//! NAME
//!     cargo xtask check [--format text|json|github] [--base GIT-REV]
//!
//! DESCRIPTION
//!     Works in three stages, one file each, kept apart so that no rule knows where
//!     a fact was read:
//!
//!     1. [`facts`]: [`gather`] reads each managed file once, with the parser of its
//!        kind from `crate::files` (the same parsers the edits use), into [`Facts`].
//!        A file that does not parse becomes a `yaml-syntax` fact and adds no facts.
//!     2. [`rules`]: one function per rule, grouped by family, over the facts only.
//!     3. [`report`]: [`Report`] sorts the findings by path and line and prints them
//!        as text (`path:line: error[rule]: message`, `  = help: ...`, a summary) or JSON.
//!
//!     Paths in text and GitHub output are relative to the current folder (so
//!     `../charts/...` from the deployment repository); JSON keeps each path relative
//!     to its repository, names it in `repo`, and lists the repositories' folders.
//!     Without `--base`, a GitHub Actions pull-request job (`GITHUB_BASE_REF` set)
//!     compares with `origin/$GITHUB_BASE_REF`.
//!
//!     Exit status 0 without errors (warnings allowed), 1 with errors, 2 when the
//!     check could not run (no layout, an unreadable file, a bad `--base`).

mod facts;
mod report;
mod rule;
mod rules;
mod side;

use anyhow::Result;

use crate::config::Config;
use crate::flags::{self, Format};

pub use facts::{gather, Facts};
pub use report::{json_string, repositories_json, Report};
pub use rule::Rule;
pub use rules::rules;

impl flags::Check {
    pub fn run(self, config: Config) -> Result<u8> {
        let base = match self.base.clone() {
            Some(rev) => Some(Base::Given(rev)),
            None => {
                default_base(std::env::var("GITHUB_BASE_REF").ok().as_deref()).map(Base::FromGithub)
            }
        };
        let report = check(&config, base.as_ref())?;
        match self.format {
            Format::Text => out!("{}", report.text()),
            Format::Json => outln!("{}", report.json()),
            Format::Github => out!("{}", report.github()),
        }
        Ok(u8::from(report.errors() > 0))
    }
}

/// Runs every rule over the configured deployment. The report shows paths relative
/// to the current folder.
pub fn check(config: &Config, base: Option<&Base>) -> Result<Report> {
    let model = crate::model::Model::load(config.clone())?;
    let facts = gather(&model, base)?;
    let cwd = std::env::current_dir().ok();
    Ok(Report::new(rules(&facts)).located(&model.layout, cwd))
}

/// The revision the chart's version is compared with (`chart-not-bumped`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Base {
    /// `--base REV`: it must exist in the charts repository.
    Given(String),
    /// `origin/$GITHUB_BASE_REF`: the pull request's target branch in the repository
    /// the job runs for, which the charts repository may not have (then the rule is
    /// skipped with a note).
    FromGithub(String),
}

impl Base {
    pub fn rev(&self) -> &str {
        match self {
            Base::Given(rev) | Base::FromGithub(rev) => rev,
        }
    }
}

/// The revision `--base` means when it is not given: `origin/$GITHUB_BASE_REF` in a
/// GitHub Actions pull-request job (where that variable names the target branch).
pub fn default_base(github_base_ref: Option<&str>) -> Option<String> {
    github_base_ref
        .filter(|b| !b.is_empty())
        .map(|b| format!("origin/{b}"))
}

/// Which repository a file belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Repository {
    /// The deployment repository (`--phalanx`).
    Phalanx,
    /// The charts repository of the split layout (`--charts`).
    Charts,
}

impl Repository {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Repository::Phalanx => "phalanx",
            Repository::Charts => "charts",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub(crate) fn as_str(self) -> &'static str {
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
    /// That repository (set by `Report::located`; `Phalanx` until then).
    pub repo: Repository,
    /// 1-based.
    pub line: usize,
    /// What the finding is about: a secret key, values key, id, role, chart,
    /// environment or path, depending on the rule.
    pub subject: String,
    pub message: String,
    pub help: String,
}

impl Finding {
    pub(crate) fn new(
        rule: &'static str,
        path: &str,
        line: usize,
        subject: impl Into<String>,
    ) -> Finding {
        let severity = Rule::of(rule).map_or(Severity::Error, Rule::severity);
        Finding {
            rule,
            severity,
            path: path.to_string(),
            repo: Repository::Phalanx,
            line,
            subject: subject.into(),
            message: String::new(),
            help: String::new(),
        }
    }

    pub(crate) fn says(mut self, message: impl Into<String>, help: impl Into<String>) -> Finding {
        self.message = message.into();
        self.help = help.into();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Config {
        let root = crate::config::workspace_root().join("sample");
        crate::config::Config::for_repositories(
            Some(root.join("phalanx")),
            Some(root.join("charts")),
        )
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
            ("secret-source-absent", Severity::Warning),
            ("stray-values-file", Severity::Warning),
            ("copy-without-source", Severity::Error),
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
