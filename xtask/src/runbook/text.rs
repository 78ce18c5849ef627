//! The runbook as text to paste: the line that loads the helpers file (or, when it
//! cannot be written, the helpers themselves) once, then one block per step, phase by
//! phase. Each block is the step's shell lines as they are; a destructive step's lines
//! run only after `confirm` (which, pasted, declines by default).

use std::path::Path;

use super::model::{Phase, Runbook, Step};
use super::move_steps::MOVE_HELPERS;
use crate::deployment::Deployment;
use crate::flags::RunbookMode;
use crate::shell::quote;

/// The shell functions every rendering starts with.
pub const HELPERS: &str = include_str!("../../../templates/runbook-helpers.sh");

/// The shell functions a runbook starts with: a move's add their own.
pub fn helpers(runbook: &Runbook) -> String {
    match runbook.mode {
        RunbookMode::Move => format!("{HELPERS}{}", MOVE_HELPERS),
        _ => HELPERS.to_string(),
    }
}

/// The question before a destructive step, for an interactive shell: "no" skips the
/// block and leaves the shell open.
const CONFIRM_INTERACTIVE: &str = confirm_function!(
    "Asks before a destructive block; anything but y or yes skips it.",
    "",
    "  echo \"Skipped.\" >&2\n  return 1\n"
);

/// Said at once when the helpers are pasted into another shell (zsh's `read -p` reads
/// a coprocess, and it has no `printf -v`), before anything misbehaves.
const BASH_ONLY: &str = r#"if [ -z "${BASH_VERSION:-}" ]; then
  echo "These steps need bash: start bash, then paste the helpers again." >&2
fi

"#;

/// A step's shell lines, inside `if confirm ...` when it is destructive (`if GUARD &&
/// confirm ...` when a check must pass first).
pub(super) fn step_body(step: &Step) -> String {
    let mut out = String::new();
    match &step.confirm {
        Some(question) if !step.commands.is_empty() => {
            let guard = step
                .guard
                .as_ref()
                .map_or_else(String::new, |g| format!("{g} && "));
            out.push_str(&format!("if {guard}confirm {}; then\n", quote(question)));
            for command in &step.commands {
                out.push_str(command);
                out.push('\n');
            }
            out.push_str("fi\n");
        }
        _ => {
            // Without a question, the check is simply the block's first line.
            if let Some(guard) = &step.guard {
                out.push_str(guard);
                out.push('\n');
            }
            for command in &step.commands {
                out.push_str(command);
                out.push('\n');
            }
        }
    }
    out
}

/// A note as shell comment lines: each of its lines gets its `# `, so a value from a
/// file that holds a line break (a quoted path) never becomes a command when pasted.
pub(super) fn comment(note: &str) -> String {
    let mut out = String::new();
    for line in note.split('\n') {
        // Control characters (an escape sequence in a file name) are shown escaped.
        let line = crate::shell::escape(line.trim_end_matches('\r'));
        out.push_str(&format!("# {line}\n"));
    }
    out
}

/// The heading of a step: `## ENV: title`, or `## title` for the whole deployment.
pub(super) fn heading(step: &Step) -> String {
    let heading = match &step.env {
        Some(env) => format!("{env}: {}", step.title),
        None => step.title.clone(),
    };
    crate::shell::escape(&heading).into_owned()
}

/// What the helpers file holds: the bash check, the helpers and `confirm`.
pub fn helpers_file_text(runbook: &Runbook) -> String {
    format!("{BASH_ONLY}{}\n{CONFIRM_INTERACTIVE}", helpers(runbook))
}

/// The text to paste. With `helpers` (the file `helpers_file::write` made), its first
/// block sources that file; without, the helpers are embedded.
pub fn render_text(runbook: &Runbook, dep: &Deployment, helpers: Option<&Path>) -> String {
    let mut out = format!(
        "# Runbook: {} (layout {}; passwords from {})\n",
        runbook.title,
        dep.layout.kind,
        super::site::password_source(dep)
    );
    if let Some(compared) = &runbook.compared {
        out.push_str(&comment(compared));
    }
    out.push_str(
        "#\n# Paste into bash (the helpers use bash; zsh and sh do not run them). Paste the\n\
         # helpers block once per shell, then ONE block at a time (a block ends at a blank\n\
         # line): a block that asks a question reads the answer from what is pasted next.\n\
         # Needs vault, openssl, python3, kubectl, argocd (and helm in the split layout).\n\
         # The same steps as a script: add --script to this command.\n",
    );
    match helpers {
        Some(file) => {
            let file = file.display().to_string();
            out.push_str(&format!(
                "\n# --- helpers: {file} (mode 0600), written by this command; review it there.\n\
                 # Paste this line once per shell; dumps go to $PGDB_DUMP_DIR, which it sets\n\
                 # (default ~/.local/state/pgdb/dumps, outside the repository).\n. {}\n",
                quote(&file)
            ));
        }
        None => {
            out.push_str("\n# --- helpers\n");
            out.push_str(&helpers_file_text(runbook));
        }
    }
    let mut current: Option<Phase> = None;
    for step in &runbook.steps {
        if current != Some(step.phase) {
            current = Some(step.phase);
            out.push_str(&format!(
                "\n# === {}: {}\n",
                step.phase.name(),
                runbook.precondition(step.phase, dep)
            ));
        }
        out.push_str(&format!("\n## {}\n", heading(step)));
        for note in &step.notes {
            out.push_str(&comment(note));
        }
        out.push_str(&step_body(step));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::comment;

    #[test]
    fn every_line_of_a_note_is_a_comment() {
        assert_eq!(comment("one"), "# one\n");
        assert_eq!(
            comment("a 'x\ntouch y' b\r\nc"),
            "# a 'x\n# touch y' b\n# c\n"
        );
    }
}

#[cfg(test)]
mod step_tests {
    use super::step_body;
    use crate::runbook::model::{Phase, Step};

    #[test]
    fn a_step_asks_before_its_commands_only_when_destructive() {
        let mut step = Step {
            phase: Phase::AfterMerge,
            env: Some("base".into()),
            title: "t".into(),
            notes: vec![],
            commands: vec!["a".into(), "b".into()],
            confirm: None,
            guard: None,
        };
        assert_eq!(step_body(&step), "a\nb\n");
        step.confirm = Some("Drop it's data?".into());
        assert_eq!(
            step_body(&step),
            "if confirm \"Drop it's data?\"; then\na\nb\nfi\n"
        );
        step.guard = Some("ready x".into());
        assert_eq!(
            step_body(&step),
            "if ready x && confirm \"Drop it's data?\"; then\na\nb\nfi\n"
        );
    }
}
