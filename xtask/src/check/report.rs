//! The last stage of `check`: the findings sorted and printed as text, JSON or
//! GitHub workflow annotations.

use std::fmt::Write as _;

use super::{Finding, Severity};

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
