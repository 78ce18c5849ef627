//! `yaml-syntax`: a managed file that does not parse.

use crate::check::{Facts, Finding};

pub(super) fn yaml_syntax(facts: &Facts, out: &mut Vec<Finding>) {
    for (path, error) in &facts.unparsable {
        out.push(
            Finding::new("yaml-syntax", path, error.line.unwrap_or(1), path.as_str()).says(
                error.message.clone(),
                "fix the file so that it parses (no duplicate keys); the other rules skipped it",
            ),
        );
    }
}
