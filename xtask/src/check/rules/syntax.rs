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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::facts::tests::summary;
    use crate::files::FileError;

    fn findings(facts: &Facts) -> Vec<Finding> {
        let mut out = Vec::new();
        yaml_syntax(facts, &mut out);
        out
    }

    #[test]
    fn an_unparsable_file_is_named_at_its_line() {
        let facts = Facts {
            unparsable: vec![
                (
                    "values-dev.yaml".to_string(),
                    FileError::at(3, "does not parse"),
                ),
                (
                    "secrets.yaml".to_string(),
                    FileError {
                        line: None,
                        message: "duplicate key".to_string(),
                    },
                ),
            ],
            ..Facts::default()
        };
        let found = findings(&facts);
        assert_eq!(
            summary(&found),
            [
                ("yaml-syntax", "values-dev.yaml", 3, "values-dev.yaml"),
                ("yaml-syntax", "secrets.yaml", 1, "secrets.yaml")
            ]
        );
        assert!(
            found[0].message.contains("does not parse"),
            "{}",
            found[0].message
        );
        assert!(findings(&Facts::default()).is_empty());
    }
}
