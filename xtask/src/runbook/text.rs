//! The runbook as text to paste: the helpers once, then one block per step, phase by
//! phase. Each block is the step's shell lines as they are; a destructive step's lines
//! run only after `confirm` (which, pasted, declines by default).

use super::{Phase, Runbook, Step};
use crate::deployment::Deployment;
use crate::shell::quote;

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
        out.push_str(&format!("# {}\n", line.trim_end_matches('\r')));
    }
    out
}

/// The heading of a step: `## ENV: title`, or `## title` for the whole deployment.
pub(super) fn heading(step: &Step) -> String {
    match &step.env {
        Some(env) => format!("{env}: {}", step.title),
        None => step.title.clone(),
    }
}

pub fn render_text(runbook: &Runbook, dep: &Deployment) -> String {
    let mut out = format!(
        "# Runbook: {} (layout {}; passwords from {})\n",
        runbook.title,
        dep.layout.kind,
        super::password_source(dep)
    );
    out.push_str(
        "#\n# Paste into bash (the helpers use bash; zsh and sh do not run them). Paste the\n\
         # helpers once per shell, then ONE block at a time (a block ends at a blank\n\
         # line): a block that asks a question reads the answer from what is pasted next.\n\
         # Needs vault, openssl, python3, kubectl, argocd (and helm in the split layout).\n\
         # The same steps as a script: add --script to this command.\n",
    );
    out.push_str("\n# --- helpers\n");
    out.push_str(BASH_ONLY);
    out.push_str(&super::helpers(runbook));
    out.push('\n');
    out.push_str(CONFIRM_INTERACTIVE);
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
