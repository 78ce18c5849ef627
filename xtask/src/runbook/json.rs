//! The runbook (and `add-db`'s plan) as JSON for tools: a small value type written
//! with two-space indentation, and the runbook's shape. `docs/json.md` documents the
//! shapes with examples that `tests/cli.rs` parses and compares with real output.
//!
//! Every object has the same keys every time: an absent value is `null`, never a
//! missing key or a placeholder string. `schema_version` changes only when a key is
//! removed or changes meaning.

use std::path::Path;

use super::model::{Phase, Runbook, Step};
use crate::check::json_string;
use crate::deployment::{Deployment, Secrets};
use crate::git::Upstream;

/// The version of the JSON shapes of `runbook` and `add-db`.
pub const SCHEMA_VERSION: u64 = 1;

/// A JSON value; objects keep their keys in the order given.
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Number(u64),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(&'static str, Json)>),
}

impl Json {
    pub fn string(text: impl Into<String>) -> Json {
        Json::String(text.into())
    }

    /// `null` for `None`.
    pub fn optional(text: Option<impl Into<String>>) -> Json {
        text.map_or(Json::Null, |t| Json::String(t.into()))
    }

    pub fn strings<'a>(items: impl IntoIterator<Item = &'a String>) -> Json {
        Json::Array(
            items
                .into_iter()
                .map(|s| Json::string(s.as_str()))
                .collect(),
        )
    }

    /// The value with two-space indentation, without a final newline.
    pub fn pretty(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0);
        out
    }

    fn write(&self, out: &mut String, depth: usize) {
        let pad = |n: usize| "  ".repeat(n);
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Number(n) => out.push_str(&n.to_string()),
            Json::String(s) => out.push_str(&json_string(s)),
            Json::Array(items) if items.is_empty() => out.push_str("[]"),
            Json::Object(fields) if fields.is_empty() => out.push_str("{}"),
            Json::Array(items) => {
                out.push_str("[\n");
                for (i, item) in items.iter().enumerate() {
                    out.push_str(&pad(depth + 1));
                    item.write(out, depth + 1);
                    out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
                }
                out.push_str(&pad(depth));
                out.push(']');
            }
            Json::Object(fields) => {
                out.push_str("{\n");
                for (i, (key, value)) in fields.iter().enumerate() {
                    out.push_str(&format!("{}{}: ", pad(depth + 1), json_string(key)));
                    value.write(out, depth + 1);
                    out.push_str(if i + 1 < fields.len() { ",\n" } else { "\n" });
                }
                out.push_str(&pad(depth));
                out.push('}');
            }
        }
    }
}

fn step(step: &Step) -> Json {
    Json::Object(vec![
        ("env", Json::optional(step.env.clone())),
        ("title", Json::string(step.title.as_str())),
        ("notes", Json::strings(&step.notes)),
        ("commands", Json::strings(&step.commands)),
        ("confirm", Json::optional(step.confirm.clone())),
        ("guard", Json::optional(step.guard.clone())),
    ])
}

fn phase(runbook: &Runbook, phase: Phase, dep: &Deployment) -> Json {
    Json::Object(vec![
        ("name", Json::string(phase.name())),
        (
            "precondition",
            Json::string(runbook.precondition(phase, dep)),
        ),
        (
            "steps",
            Json::Array(
                runbook
                    .steps
                    .iter()
                    .filter(|s| s.phase == phase)
                    .map(step)
                    .collect(),
            ),
        ),
    ])
}

/// What was taken as deployed: `{"rev", "commit", "source"}`, or `null`.
fn deployed(upstream: Option<&Upstream>) -> Json {
    upstream.map_or(Json::Null, |u| {
        Json::Object(vec![
            ("rev", Json::string(u.rev.as_str())),
            ("commit", Json::string(u.commit.as_str())),
            ("source", Json::string(u.source)),
        ])
    })
}

/// The runbook as a JSON object. `helpers` is the file that defines the functions
/// its commands call (`null` when it could not be written).
pub fn runbook_json(runbook: &Runbook, dep: &Deployment, helpers: Option<&Path>) -> Json {
    let mode = match runbook.mode {
        crate::flags::RunbookMode::Add => "add",
        crate::flags::RunbookMode::Rotate => "rotate",
        crate::flags::RunbookMode::Remove => "remove",
        crate::flags::RunbookMode::Move => "move",
    };
    let password_source = match &dep.secrets {
        Secrets::Absent(_) => None,
        _ => Some(dep.layout.secret_source.relative.clone()),
    };
    Json::Object(vec![
        ("schema_version", Json::Number(SCHEMA_VERSION)),
        ("database", Json::string(runbook.database.as_str())),
        ("mode", Json::string(mode)),
        ("layout", Json::string(dep.layout.kind.to_string())),
        ("password_source", Json::optional(password_source)),
        ("deployed", deployed(runbook.upstream.as_ref())),
        (
            "helpers_file",
            Json::optional(helpers.map(|p| p.display().to_string())),
        ),
        ("warnings", Json::strings(&runbook.warnings)),
        (
            "phases",
            Json::Array(
                runbook
                    .phases()
                    .into_iter()
                    .map(|p| phase(runbook, p, dep))
                    .collect(),
            ),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::Json;

    #[test]
    fn values_are_written_with_two_space_indentation() {
        let value = Json::Object(vec![
            ("a", Json::Number(1)),
            ("b", Json::Array(vec![Json::Null, Json::string("x\"y")])),
            ("c", Json::Array(vec![])),
            ("d", Json::Bool(false)),
        ]);
        assert_eq!(
            value.pretty(),
            "{\n  \"a\": 1,\n  \"b\": [\n    null,\n    \"x\\\"y\"\n  ],\n  \"c\": [],\n  \"d\": false\n}"
        );
    }
}
