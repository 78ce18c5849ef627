//! The charts' rules: `stale-dependency`, `chart-not-bumped`.

use crate::check::{Facts, Finding};
use crate::files::chart;

pub(super) fn stale_dependency(facts: &Facts, out: &mut Vec<Finding>) {
    let (Some(umbrella), Some(chart)) = (&facts.umbrella, &facts.chart) else {
        return;
    };
    let Some((version, version_line)) = &chart.version else {
        return;
    };
    let name = chart.name.as_str();
    let Some(dep) = umbrella.dependencies.iter().find(|d| d.name == name) else {
        out.push(Finding::new("stale-dependency", &umbrella.path, 1, name).says(
            format!("the umbrella chart has no dependency named `{name}`, so no environment gets the chart"),
            format!("add `{name}` with `version: \">={version}\"` under `dependencies:`"),
        ));
        return;
    };
    let problem = match chart::admits(&dep.requirement, version) {
        Ok(true) => return,
        Ok(false) => format!(
            "the umbrella requires `{name}` `{}`, which does not admit the chart's version {version} ({}:{version_line})",
            dep.requirement, chart.path
        ),
        Err(e) => e,
    };
    out.push(Finding::new("stale-dependency", &umbrella.path, dep.line, name).says(
        problem,
        format!("move the requirement so that it admits {version}, keeping its operator (e.g. `\">={version}\"`)"),
    ));
}

pub(super) fn chart_not_bumped(facts: &Facts, out: &mut Vec<Finding>) {
    let (Some(base), Some(chart)) = (&facts.base, &facts.chart) else {
        return;
    };
    if !facts.published_chart || base.changed_templates.is_empty() {
        return;
    }
    let (Some((current, line)), Some(old)) = (&chart.version, &base.version) else {
        return;
    };
    if current > old {
        return;
    }
    let next = chart::Bump::Patch.apply(old);
    out.push(Finding::new("chart-not-bumped", &chart.path, *line, chart.name.as_str()).says(
        format!(
            "the chart's templates changed since {} ({}), but its version is {current}, not above {old}",
            base.rev,
            base.changed_templates.join(", ")
        ),
        format!(
            "bump `version:` to {next} (a patch bump) and move the umbrella's `{}` dependency to admit it",
            chart.name
        ),
    ));
}
