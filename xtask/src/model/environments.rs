//! Which applications each environment enables, from `environments/`.
//!
//! Today's trees: the `applications:` map of `environments/values.yaml` (the
//! defaults, such as `gafaelfawr: true`, `postgres: false`) overridden by the
//! `applications:` map of `environments/values-ENV.yaml`. Trees of 2023 enable an
//! application with a top-level `NAME: {enabled: true}` in `values-ENV.yaml`. A
//! repository without `environments/values-*.yaml` says nothing about it: then every
//! application counts as enabled everywhere (see [`Environments::enables`]).

use std::collections::{BTreeMap, BTreeSet};

use serde_yaml::Value;

use super::values::{merge_file, truthy};
use crate::layout::RepoFile;

/// One environment of `environments/`.
#[derive(Clone, Debug)]
pub struct EnvironmentApps {
    pub file: RepoFile,
    /// The enabled applications, sorted.
    pub enabled: BTreeSet<String>,
    /// 1-based line of each application's switch in the environment's file, when
    /// it has one (else the default in `values.yaml` decided).
    pub lines: BTreeMap<String, usize>,
}

/// The environments of `environments/`, by name; empty when the repository has none.
#[derive(Clone, Debug, Default)]
pub struct Environments {
    pub envs: BTreeMap<String, EnvironmentApps>,
}

impl EnvironmentApps {
    /// Where the environment switches `app` on or off: `path:line` of its switch,
    /// else the environment's file (the default of `values.yaml` holds).
    pub fn switch_site(&self, app: &str) -> String {
        match self.lines.get(app) {
            Some(line) => format!("{}:{line}", self.file.relative),
            None => self.file.relative.clone(),
        }
    }
}

impl Environments {
    /// Whether the repository says which applications each environment enables.
    pub fn known(&self) -> bool {
        !self.envs.is_empty()
    }

    /// Whether `app` runs in `env`. Without `environments/`, every application
    /// counts as enabled; an environment `environments/` does not list runs nothing.
    pub fn enables(&self, env: &str, app: &str) -> bool {
        if !self.known() {
            return true;
        }
        self.envs.get(env).is_some_and(|e| e.enabled.contains(app))
    }
}

/// The applications a merged environment document enables.
pub fn enabled(defaults: &Value, env: &Value) -> BTreeSet<String> {
    let merged = merge_file(defaults, env);
    let mut out = BTreeSet::new();
    if let Some(apps) = merged.get("applications").and_then(Value::as_mapping) {
        for (name, on) in apps {
            if let (Some(name), true) = (name.as_str(), switch(on)) {
                out.insert(name.to_string());
            }
        }
    }
    // 2023: `NAME: {enabled: true}` at the top level.
    if let Some(top) = env.as_mapping() {
        for (name, body) in top {
            if let (Some(name), Some(on)) = (name.as_str(), body.get("enabled")) {
                if switch(on) {
                    out.insert(name.to_string());
                } else {
                    out.remove(name);
                }
            }
        }
    }
    out
}

/// A switch as pydantic reads a bool: YAML booleans, and the words and numbers
/// it accepts for true.
fn switch(value: &Value) -> bool {
    match value {
        Value::String(s) => matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "yes" | "on" | "1" | "y"
        ),
        Value::Mapping(m) => m.get("enabled").is_some_and(switch),
        other => truthy(other),
    }
}

/// 1-based lines of the application switches of an environment's text: keys
/// directly under `applications:` and top-level keys with `enabled:` below.
pub fn switch_lines(text: &str) -> BTreeMap<String, usize> {
    use crate::files::{indent_of, is_blank_or_comment, split_key};
    let mut out = BTreeMap::new();
    let mut in_apps = false;
    let mut child: Option<usize> = None;
    let mut top: Option<(String, usize)> = None;
    for (i, line) in text.lines().enumerate() {
        if is_blank_or_comment(line) {
            continue;
        }
        let indent = indent_of(line);
        let Some((key, _)) = split_key(line) else {
            continue;
        };
        if indent == 0 {
            in_apps = key == "applications";
            child = None;
            top = Some((key, i + 1));
            continue;
        }
        if in_apps && *child.get_or_insert(indent) == indent {
            out.insert(key, i + 1);
        } else if key == "enabled" {
            if let Some((name, line)) = &top {
                out.entry(name.clone()).or_insert(*line);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        serde_yaml::from_str(text).unwrap()
    }

    #[test]
    fn environment_overrides_defaults() {
        let defaults =
            yaml("applications:\n  gafaelfawr: true\n  postgres: false\n  nublado: false\n");
        let env = yaml("name: usdfdev\napplications:\n  postgres: true\n  gafaelfawr: false\n  exposurelog: true\n");
        let on: Vec<String> = enabled(&defaults, &env).into_iter().collect();
        assert_eq!(on, ["exposurelog", "postgres"]);
        let on: Vec<String> = enabled(&defaults, &Value::Null).into_iter().collect();
        assert_eq!(on, ["gafaelfawr"]);
    }

    #[test]
    fn trees_of_2023_use_enabled_keys() {
        let env = yaml("postgres:\n  enabled: true\nnublado2:\n  enabled: false\ngafaelfawr: {enabled: 'true'}\n");
        let on: Vec<String> = enabled(&Value::Null, &env).into_iter().collect();
        assert_eq!(on, ["gafaelfawr", "postgres"]);
    }

    #[test]
    fn lines_of_the_switches() {
        let text = "name: x\napplications:\n  # the database\n  postgres: true\n  nublado: false\nold:\n  enabled: true\n";
        let lines = switch_lines(text);
        assert_eq!(lines.get("postgres"), Some(&4));
        assert_eq!(lines.get("nublado"), Some(&5));
        assert_eq!(lines.get("old"), Some(&6));
    }

    #[test]
    fn without_environments_everything_is_enabled() {
        let envs = Environments::default();
        assert!(envs.enables("any", "thing"));
    }
}
