//! The runbook as a bash script: the same steps as the text form, one function per
//! phase, the phase named as the argument. It asks before each destructive step
//! unless given `--yes`, and stops at the first failure (`set -euo pipefail`). The
//! static part is the template `templates/runbook-script.sh`.

use super::model::{Phase, Runbook};
use super::text::{comment, heading, helpers, step_body};
use crate::deployment::Deployment;
use crate::render::render;
use crate::shell::quote;

/// The question before a destructive step, in the script: "no" stops the script.
const CONFIRM_SCRIPT: &str = confirm_function!(
    "Asks before a destructive step (unless --yes); anything but y or yes stops.",
    r#"  if [ -n "$ASSUME_YES" ]; then
    echo "$1 yes (--yes)" >&2
    return 0
  fi
"#,
    "  echo \"Not confirmed: stopping.\" >&2\n  exit 1\n"
);

fn function_name(phase: &str) -> String {
    format!("phase_{}", phase.replace('-', "_"))
}

/// The script's skeleton: header, argument parsing, then the helpers, one function
/// per phase and the dispatch on the phase named, as `@@name@@` placeholders.
const SKELETON: &str = include_str!("../../../templates/runbook-script.sh");

/// The runbook as a bash script: [`SKELETON`] with the runbook's phases and steps.
pub fn render_script(runbook: &Runbook, dep: &Deployment) -> String {
    let phases = runbook.phases();
    let names: Vec<&str> = phases.iter().map(|p| p.name()).collect();
    let layout = dep.layout.kind.to_string();
    let source = super::site::password_source(dep);
    let compared = runbook
        .compared
        .as_deref()
        .map_or_else(String::new, comment);
    let program = crate::flags::program_name();
    let phase_list: String = phases
        .iter()
        .map(|phase| {
            format!(
                "#   {:<16} {}\n",
                phase.name(),
                runbook.precondition(*phase, dep)
            )
        })
        .collect();
    let usage = quote(&format!(
        "usage: bash {} [--yes] {}",
        "steps.sh",
        names.join("|")
    ));
    let helpers = helpers(runbook);
    let functions: String = phases
        .iter()
        .map(|phase| phase_function(runbook, *phase))
        .collect();
    let cases: String = names
        .iter()
        .map(|name| format!("  {name}) {} ;;\n", function_name(name)))
        .collect();
    render(
        SKELETON,
        &[
            // Every name here is a placeholder of the skeleton (see the test below).
            ("title", &runbook.title),
            ("layout", &layout),
            ("password_source", &source),
            ("compared", &compared),
            ("program", &program),
            ("phase_list", &phase_list),
            ("usage", &usage),
            ("phase_pattern", &names.join(" | ")),
            ("confirm", CONFIRM_SCRIPT),
            ("helpers", &helpers),
            ("phase_functions", &functions),
            ("phase_cases", &cases),
        ],
    )
}

/// One phase as a bash function: each step's heading, notes as comments, an `echo`
/// of the heading, then its lines (a guard as a line of its own).
fn phase_function(runbook: &Runbook, phase: Phase) -> String {
    let mut out = format!("\n{}() {{\n", function_name(phase.name()));
    for step in runbook.steps.iter().filter(|s| s.phase == phase) {
        out.push_str(&format!("\n## {}\n", heading(step)));
        for note in &step.notes {
            out.push_str(&comment(note));
        }
        out.push_str(&format!(
            "echo {} >&2\n",
            quote(&format!("== {}", heading(step)))
        ));
        // A failed check inside `if` would only skip the step, and the script go
        // on: as a line of its own, `set -e` stops there.
        match &step.guard {
            Some(guard) => {
                out.push_str(guard);
                out.push('\n');
                let mut unguarded = step.clone();
                unguarded.guard = None;
                out.push_str(&step_body(&unguarded));
            }
            None => out.push_str(&step_body(step)),
        }
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::SKELETON;
    use crate::render::render;

    #[test]
    fn the_skeleton_has_only_the_placeholders_render_script_fills() {
        let names = [
            "title",
            "layout",
            "password_source",
            "compared",
            "program",
            "phase_list",
            "usage",
            "phase_pattern",
            "confirm",
            "helpers",
            "phase_functions",
            "phase_cases",
        ];
        for name in names {
            assert!(SKELETON.contains(&format!("@@{name}@@")), "{name}");
        }
        let vars: Vec<(&str, &str)> = names.iter().map(|n| (*n, "")).collect();
        let out = render(SKELETON, &vars);
        assert!(!out.contains("@@"), "{out}");
        assert!(out.starts_with("#!/usr/bin/env bash\n") && out.ends_with("esac\n"));
    }
}
