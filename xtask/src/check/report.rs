//! The last stage of `check`: the findings sorted and printed as text, JSON or
//! GitHub Actions annotations. Text from files and file names is shown with its
//! control characters escaped in every format, so a hostile file cannot drive the
//! terminal or the log viewer.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::{Finding, Repository, Severity};
use crate::config::relative_path;
use crate::layout::Layout;
use crate::shell::{escape, escape_but};

/// Every finding of one run, sorted by path and line.
#[derive(Clone, Debug)]
pub struct Report {
    pub findings: Vec<Finding>,
    /// The repositories' folders (absolute), once `located`.
    pub repositories: Vec<(Repository, PathBuf)>,
    /// The folder the paths are shown relative to.
    pub cwd: Option<PathBuf>,
}

impl Report {
    pub fn new(mut findings: Vec<Finding>) -> Report {
        findings.sort_by(|a, b| {
            (&a.path, a.line, a.rule, &a.subject).cmp(&(&b.path, b.line, b.rule, &b.subject))
        });
        findings.dedup();
        Report {
            findings,
            repositories: Vec::new(),
            cwd: None,
        }
    }

    /// Names the repository of each finding, from the layout: in the split layout the
    /// chart's folder (`charts/postgres/`) is in the charts repository. Paths are then
    /// shown relative to `cwd`.
    pub fn located(mut self, layout: &Layout, cwd: Option<PathBuf>) -> Report {
        self.repositories = vec![(Repository::Phalanx, layout.phalanx.clone())];
        if let Some(charts) = &layout.charts {
            self.repositories.push((Repository::Charts, charts.clone()));
            let chart_dir = layout
                .chart
                .relative
                .rsplit_once('/')
                .map_or("", |(dir, _)| dir);
            for f in &mut self.findings {
                if f.path.starts_with(&format!("{chart_dir}/")) {
                    f.repo = Repository::Charts;
                }
            }
        }
        self.cwd = cwd;
        self
    }

    /// Where a finding is, for people and editors: relative to the current folder
    /// once located, else relative to its repository.
    pub fn shown_path(&self, f: &Finding) -> String {
        let root = self.repositories.iter().find(|(r, _)| *r == f.repo);
        match (root, &self.cwd) {
            (Some((_, root)), Some(cwd)) => relative_path(cwd, &root.join(&f.path))
                .display()
                .to_string(),
            _ => f.path.clone(),
        }
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

    /// The lines `finding` writes for each finding, then the summary line `summary`
    /// makes of the counts of errors and warnings.
    fn per_finding(
        &self,
        finding: impl Fn(&Finding) -> String,
        summary: impl FnOnce(usize, usize) -> String,
    ) -> String {
        let mut out: String = self.findings.iter().map(finding).collect();
        out.push_str(&summary(self.errors(), self.warnings()));
        out.push('\n');
        out
    }

    /// The findings, each with its help line, then a one-line summary.
    pub fn text(&self) -> String {
        self.per_finding(
            |f| {
                format!(
                    "{}:{}: {}[{}]: {}\n  = help: {}\n",
                    escape(&self.shown_path(f)),
                    f.line,
                    f.severity.as_str(),
                    f.rule,
                    escape(&f.message),
                    escape(&f.help)
                )
            },
            counts,
        )
    }

    /// `{"findings": [...], "errors": N, "warnings": N, "repositories": {...}}` on one
    /// line; each finding's `path` is relative to the repository its `repo` names.
    pub fn json(&self) -> String {
        let mut out = String::from("{\"findings\": [");
        for (i, f) in self.findings.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            let _ = write!(
                out,
                "{{\"rule\": {}, \"severity\": {}, \"path\": {}, \"line\": {}, \"subject\": {}, \"message\": {}, \"repo\": {}}}",
                json_string(f.rule),
                json_string(f.severity.as_str()),
                json_string(&f.path),
                f.line,
                json_string(&f.subject),
                json_string(&f.message),
                json_string(f.repo.as_str())
            );
        }
        let _ = write!(
            out,
            "], \"errors\": {}, \"warnings\": {}, \"repositories\": ",
            self.errors(),
            self.warnings()
        );
        out.push_str(&repositories_object(&self.repositories));
        out.push('}');
        out
    }
}

impl Report {
    /// GitHub Actions workflow commands: one `::error` or `::warning` annotation per
    /// finding, then the summary line. GitHub resolves an annotation's `file=` from
    /// the workspace, so paths are relative to `GITHUB_WORKSPACE` when it is set,
    /// else to the finding's repository, whatever the current folder.
    pub fn github(&self) -> String {
        let workspace = std::env::var_os("GITHUB_WORKSPACE")
            .filter(|w| !w.is_empty())
            .map(|w| std::fs::canonicalize(&w).unwrap_or_else(|_| PathBuf::from(w)));
        self.github_from(workspace.as_deref())
    }

    /// [`Report::github`] with the workspace given.
    fn github_from(&self, workspace: Option<&std::path::Path>) -> String {
        let path = |f: &Finding| {
            let root = self.repositories.iter().find(|(r, _)| *r == f.repo);
            match (root, workspace) {
                (Some((_, root)), Some(ws)) => {
                    relative_path(ws, &root.join(&f.path)).display().to_string()
                }
                _ => f.path.clone(),
            }
        };
        self.per_finding(
            |f| {
                format!(
                    "::{} file={},line={},title={}::{}\n",
                    f.severity.as_str(),
                    github_property(&escape(&path(f))),
                    f.line,
                    github_property(f.rule),
                    github_data(&escape_but(
                        &format!("{} (help: {})", f.message, f.help),
                        &['\r', '\n']
                    ))
                )
            },
            counts,
        )
    }
}

/// The summary line: `1 error, 2 warnings`.
fn counts(errors: usize, warnings: usize) -> String {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    format!(
        "{}, {}",
        plural(errors, "error"),
        plural(warnings, "warning")
    )
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

/// The repositories of a layout, `{"phalanx": DIR, "charts": DIR}` (charts only in the
/// split layout): what `check` and `list` add to their JSON.
pub fn repositories_json(layout: &Layout) -> String {
    let mut repositories = vec![(Repository::Phalanx, layout.phalanx.clone())];
    if let Some(charts) = &layout.charts {
        repositories.push((Repository::Charts, charts.clone()));
    }
    repositories_object(&repositories)
}

fn repositories_object(repositories: &[(Repository, PathBuf)]) -> String {
    let fields: Vec<String> = repositories
        .iter()
        .map(|(repo, root)| {
            format!(
                "{}: {}",
                json_string(repo.as_str()),
                json_string(&root.display().to_string())
            )
        })
        .collect();
    format!("{{{}}}", fields.join(", "))
}

/// A JSON string literal; every control character (also DEL and the C1 range,
/// which JSON allows raw but terminals act on) is a `\u` escape.
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
            c if c.is_control() || ('\u{202a}'..='\u{202e}').contains(&c) => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::super::{default_base, Finding, Repository};
    use super::*;

    #[test]
    fn github_annotations_escape_properties_and_data() {
        let report = Report::new(vec![
            Finding::new("yaml-syntax", "a,b:c.yaml", 3, "s").says("50% off\r\nline 2: x", "h"),
            Finding::new("unused-password", "g.py", 9, "k").says("m", "h, again"),
        ]);
        assert_eq!(
            report.github(),
            "::error file=a%2Cb%3Ac.yaml,line=3,title=yaml-syntax::50%25 off%0D%0Aline 2: x (help: h)\n\
             ::warning file=g.py,line=9,title=unused-password::m (help: h, again)\n\
             1 error, 1 warning\n"
        );
    }

    #[test]
    fn control_characters_from_files_are_escaped_in_every_format() {
        let mut report = Report::new(vec![Finding::new(
            "bad-values-entry",
            "services/postgres/values-\x1b]0;pwned\x07.yaml",
            2,
            "s",
        )
        .says("user `a\x1b[2Jb\u{9b}31m`", "help \x07")]);
        report.repositories = vec![(Repository::Phalanx, PathBuf::from("/r/phalanx"))];
        for (format, out) in [
            ("text", report.text()),
            ("github", report.github_from(None)),
            ("json", report.json()),
        ] {
            assert!(
                !out.contains(['\x1b', '\x07', '\u{9b}']),
                "{format}: {out:?}"
            );
            assert!(
                out.contains("x1b") || out.contains("u001b"),
                "{format}: {out}"
            );
        }
        assert!(report.json().contains("\\u009b31m"));
    }

    #[test]
    fn annotations_are_relative_to_the_workspace_else_the_repository() {
        let mut report = Report::new(vec![
            Finding::new("yaml-syntax", "charts/postgres/Chart.yaml", 1, "s"),
            Finding::new("yaml-syntax", "services/postgres/values-a.yaml", 2, "s"),
        ]);
        report.repositories = vec![
            (Repository::Phalanx, PathBuf::from("/w/phalanx")),
            (Repository::Charts, PathBuf::from("/w/charts")),
        ];
        report.findings[0].repo = Repository::Charts;
        // The current folder does not matter.
        report.cwd = Some(PathBuf::from("/w/phalanx/services/postgres"));
        let files = |out: String| -> Vec<String> {
            out.lines()
                .filter_map(|l| {
                    l.split_once("file=")?
                        .1
                        .split_once(',')
                        .map(|(f, _)| f.to_string())
                })
                .collect()
        };
        assert_eq!(
            files(report.github_from(None)),
            [
                "charts/postgres/Chart.yaml",
                "services/postgres/values-a.yaml"
            ]
        );
        assert_eq!(
            files(report.github_from(Some(std::path::Path::new("/w/phalanx")))),
            [
                "../charts/charts/postgres/Chart.yaml",
                "services/postgres/values-a.yaml"
            ]
        );
    }

    #[test]
    fn paths_are_shown_from_the_current_folder_once_located() {
        let mut report = Report::new(vec![
            Finding::new("yaml-syntax", "charts/postgres/Chart.yaml", 1, "s"),
            Finding::new("yaml-syntax", "services/postgres/values-a.yaml", 1, "s"),
        ]);
        report.repositories = vec![
            (Repository::Phalanx, PathBuf::from("/r/phalanx")),
            (Repository::Charts, PathBuf::from("/r/charts")),
        ];
        report.findings[0].repo = Repository::Charts;
        let shown = |report: &Report| -> Vec<String> {
            report
                .findings
                .iter()
                .map(|f| report.shown_path(f))
                .collect()
        };
        assert_eq!(
            shown(&report),
            [
                "charts/postgres/Chart.yaml",
                "services/postgres/values-a.yaml"
            ]
        );
        report.cwd = Some(PathBuf::from("/r/phalanx/services"));
        assert_eq!(
            shown(&report),
            [
                "../../charts/charts/postgres/Chart.yaml",
                "postgres/values-a.yaml"
            ]
        );
    }

    #[test]
    fn base_defaults_to_the_pull_request_target_in_github_actions() {
        assert_eq!(default_base(Some("main")).as_deref(), Some("origin/main"));
        assert_eq!(default_base(Some("")), None);
        assert_eq!(default_base(None), None);
    }
}
