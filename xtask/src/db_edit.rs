//! The steps `add-db` and `remove-db` share: the template edit with the chart bump
//! it needs, one edit per chosen environment's values file, and the runbook printed
//! after the diffs. Each command decides what to edit; this module says how it
//! enters the plan, so both commands bump the chart and print the same way.

use anyhow::Result;

use crate::deployment::{bad_at, Deployment, EnvValues};
use crate::files::chart::Bump;
use crate::files::FileError;
use crate::plan::Plan;
use crate::runbook::{self, Runbook};

/// The chart bump a template edit needs: the level asked for, else a patch where
/// the layout publishes the chart (the split layout), else none.
pub fn chart_bump(asked: Option<Bump>, publishes_chart: bool) -> Option<Bump> {
    match (asked, publishes_chart) {
        (Some(level), _) => Some(level),
        (None, true) => Some(Bump::Patch),
        (None, false) => None,
    }
}

/// Plans the template's new text and the chart bump that goes with it.
pub fn change_template(
    plan: &mut Plan,
    dep: &Deployment,
    after: String,
    asked: Option<Bump>,
) -> Result<()> {
    let template = &dep.template;
    plan.change(&template.file, &template.text, after);
    if let Some(level) = chart_bump(asked, dep.layout.publishes_chart()) {
        plan.bump_chart(dep, level)?;
    }
    Ok(())
}

/// Plans one edit of the values file of each environment named in `envs`, in the
/// deployment's order; `edit` returns `None` where the file stays as it is.
pub fn change_values(
    plan: &mut Plan,
    dep: &Deployment,
    envs: &[String],
    edit: impl Fn(&EnvValues) -> Option<Result<String, FileError>>,
) -> Result<()> {
    for env in dep.envs.iter().filter(|e| envs.contains(&e.env.name)) {
        if let Some(after) = edit(env) {
            let after = after.map_err(bad_at(&env.env.values))?;
            plan.change(&env.env.values, &env.text, after);
        }
    }
    Ok(())
}

/// Prints the runbook as text after the diffs, set apart by a blank line.
pub fn print_runbook(runbook: &Runbook, dep: &Deployment) {
    outln!();
    runbook::print(runbook, dep, crate::flags::RenderMode::Text);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_level_asked_for_wins_else_a_patch_where_the_chart_is_published() {
        assert_eq!(chart_bump(Some(Bump::Minor), false), Some(Bump::Minor));
        assert_eq!(chart_bump(Some(Bump::Major), true), Some(Bump::Major));
        assert_eq!(chart_bump(None, true), Some(Bump::Patch));
        assert_eq!(chart_bump(None, false), None);
    }
}
