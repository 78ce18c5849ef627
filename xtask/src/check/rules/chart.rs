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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::facts::tests::summary;
    use crate::check::facts::{BaseFacts, ChartFacts, UmbrellaFacts};
    use semver::Version;

    const CHART: &str = "charts/postgres/Chart.yaml";
    const UMBRELLA: &str = "applications/postgres/Chart.yaml";

    /// The chart at `version` (line 3), the umbrella from its text, the base if any.
    fn facts(version: &str, umbrella: &str, base: Option<&str>) -> Facts {
        Facts {
            published_chart: true,
            chart: Some(ChartFacts {
                path: CHART.to_string(),
                name: "postgres".to_string(),
                version: Some((Version::parse(version).unwrap(), 3)),
            }),
            umbrella: Some(UmbrellaFacts {
                path: UMBRELLA.to_string(),
                dependencies: chart::parse(umbrella).unwrap().dependencies,
            }),
            base: base.map(|old| BaseFacts {
                rev: "main".to_string(),
                changed_templates: vec!["charts/postgres/templates/deployment.yaml".to_string()],
                version: Some(Version::parse(old).unwrap()),
            }),
            ..Facts::default()
        }
    }

    fn umbrella(requirement: &str) -> String {
        format!(
            "apiVersion: v2\nname: postgres\nversion: 1.0.0\ndependencies:\n  - name: postgres\n    version: \"{requirement}\"\n"
        )
    }

    fn findings(facts: &Facts) -> Vec<Finding> {
        let mut out = Vec::new();
        stale_dependency(facts, &mut out);
        chart_not_bumped(facts, &mut out);
        out
    }

    #[test]
    fn a_clean_chart_has_none() {
        assert!(findings(&facts("1.2.0", &umbrella(">=1.2.0"), Some("1.1.0"))).is_empty());
        assert!(findings(&Facts::default()).is_empty());
    }

    #[test]
    fn stale_dependency_at_the_requirement_or_the_missing_dependency() {
        let found = findings(&facts("1.2.0", &umbrella("<1.2.0"), None));
        assert_eq!(
            summary(&found),
            [("stale-dependency", UMBRELLA, 6, "postgres")]
        );
        let found = findings(&facts(
            "1.2.0",
            "apiVersion: v2\nname: postgres\nversion: 1.0.0\n",
            None,
        ));
        assert_eq!(
            summary(&found),
            [("stale-dependency", UMBRELLA, 1, "postgres")]
        );
        assert!(found[0].message.contains("no dependency named `postgres`"));
    }

    #[test]
    fn chart_not_bumped_when_templates_changed_but_not_the_version() {
        let found = findings(&facts("1.1.0", &umbrella(">=1.1.0"), Some("1.1.0")));
        assert_eq!(
            summary(&found),
            [("chart-not-bumped", CHART, 3, "postgres")]
        );
        assert!(
            found[0].help.contains("bump `version:` to 1.1.1"),
            "{}",
            found[0].help
        );
        // Not published on its own: the version need not move.
        let mut unpublished = facts("1.1.0", &umbrella(">=1.1.0"), Some("1.1.0"));
        unpublished.published_chart = false;
        assert!(findings(&unpublished).is_empty());
    }
}
