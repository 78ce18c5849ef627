//! A set of planned file changes: shown as diffs, then written all at once.

use anyhow::Result;

use crate::deployment::{bad_at, locate, Deployment};
use crate::diff::{unified, use_color};
use crate::error::{bad_input, refused};
use crate::files::chart::{self, Bump, NOT_ADMITTED};
use crate::fsio::{Intent, Session, Write};
use crate::layout::RepoFile;

struct Change {
    file: RepoFile,
    before: String,
    after: String,
}

/// The changes one command makes.
#[derive(Default)]
pub struct Plan {
    changes: Vec<Change>,
}

impl Plan {
    /// Records a new text for a file; a later change to the same file replaces the
    /// planned text and keeps the original.
    pub fn change(&mut self, file: &RepoFile, before: &str, after: String) {
        if let Some(existing) = self.changes.iter_mut().find(|c| c.file.path == file.path) {
            existing.after = after;
        } else if before != after {
            self.changes.push(Change {
                file: file.clone(),
                before: before.to_string(),
                after,
            });
        }
    }

    /// Each planned file with its new text.
    pub fn planned(&self) -> impl Iterator<Item = (&RepoFile, &str)> {
        self.changes.iter().map(|c| (&c.file, c.after.as_str()))
    }

    /// Bumps the chart's version and, in the split layout, moves the umbrella's
    /// dependency to it. A requirement that cannot follow is a refusal (exit 1).
    pub fn bump_chart(&mut self, dep: &Deployment, level: Bump) -> Result<()> {
        let (text, version) =
            chart::bump_version(&dep.chart.text, level).map_err(bad_at(&dep.chart.file))?;
        self.change(&dep.chart.file, &dep.chart.text, text);
        if let Some(umbrella) = &dep.umbrella {
            let name = dep.chart.parsed.name.as_deref().unwrap_or("postgres");
            let text = chart::move_dependency(
                &umbrella.text,
                name,
                dep.chart.parsed.version.as_ref().map(|(v, _)| v),
                &version,
            )
            .map_err(|e| {
                let message = locate(&umbrella.file, &e);
                if e.message.contains(NOT_ADMITTED) {
                    refused(message)
                } else {
                    bad_input(message)
                }
            })?;
            self.change(&umbrella.file, &umbrella.text, text);
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.changes.iter().all(|c| c.before == c.after)
    }

    /// Prints a unified diff of every change, paths relative to their repository.
    pub fn print_diff(&self) {
        let color = use_color();
        for c in &self.changes {
            out!("{}", unified(&c.file.relative, &c.before, &c.after, color));
        }
    }

    /// Each change's file and its unified diff (without color), for JSON.
    pub fn diffs(&self) -> Vec<(&RepoFile, String)> {
        self.changes
            .iter()
            .map(|c| {
                (
                    &c.file,
                    unified(&c.file.relative, &c.before, &c.after, false),
                )
            })
            .collect()
    }

    /// Each change as a replacement of the text it was planned against.
    fn writes(&self) -> Vec<Write<'_>> {
        self.changes
            .iter()
            .map(|c| Write {
                path: &c.file.path,
                before: Some(&c.before),
                text: &c.after,
            })
            .collect()
    }

    /// Writes every change (nothing on a dry run) and prints nothing: for JSON output.
    pub fn write_quietly(&self, session: &Session) -> Result<()> {
        if session.intent() == Intent::DryRun {
            return Ok(());
        }
        session.write_all(&self.writes())
    }

    /// Writes every change, or says what would have been written.
    pub fn apply(&self, session: &Session) -> Result<()> {
        let names = self
            .changes
            .iter()
            .map(|c| c.file.relative.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let count = match self.changes.len() {
            1 => "1 file".to_string(),
            n => format!("{n} files"),
        };
        if session.intent() == Intent::DryRun {
            outln!("\nDry run: nothing was written ({count} would change: {names}).");
            return Ok(());
        }
        session.write_all(&self.writes())?;
        outln!("\nWrote {count}: {names}.");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(relative: &str) -> RepoFile {
        RepoFile {
            path: std::path::Path::new("/repo").join(relative),
            relative: relative.to_string(),
        }
    }

    #[test]
    fn an_unchanged_text_is_no_change() {
        let mut plan = Plan::default();
        plan.change(&file("a.yaml"), "x\n", "x\n".to_string());
        assert!(plan.is_empty());
        assert!(plan.changes.is_empty());
    }

    #[test]
    fn a_second_change_of_a_file_keeps_its_original_text() {
        let mut plan = Plan::default();
        plan.change(&file("a.yaml"), "one\n", "two\n".to_string());
        plan.change(&file("a.yaml"), "two\n", "three\n".to_string());
        assert_eq!(plan.changes.len(), 1);
        assert_eq!(plan.changes[0].before, "one\n");
        assert_eq!(plan.changes[0].after, "three\n");
        // Changed back: the file is planned, but nothing differs.
        plan.change(&file("a.yaml"), "three\n", "one\n".to_string());
        assert!(plan.is_empty());
    }

    #[test]
    fn changes_keep_their_order_across_files() {
        let mut plan = Plan::default();
        for name in ["b.yaml", "a.yaml", "c.yaml"] {
            plan.change(&file(name), "", format!("{name}\n"));
        }
        let names: Vec<&str> = plan
            .changes
            .iter()
            .map(|c| c.file.relative.as_str())
            .collect();
        assert_eq!(names, ["b.yaml", "a.yaml", "c.yaml"]);
        assert!(!plan.is_empty());
    }
}
