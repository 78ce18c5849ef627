//! The applications of `applications/`: their values files (for `if:` conditions
//! and pointers at the server) and their `secrets.yaml` (`secrets-ENV.yaml`
//! overrides), read tolerantly: a file that cannot be read or parsed is set aside
//! with its reason and the rest of the application still counts.

use std::collections::BTreeMap;
use std::path::Path;

use serde_yaml::Value;

use super::values::merge_file;
use super::Unreadable;
use crate::files::{parse_yaml, secrets_yaml, FileError, FileResult};
use crate::layout::RepoFile;

/// A YAML file's text and document.
#[derive(Clone, Debug)]
pub struct Doc {
    pub file: RepoFile,
    pub text: String,
    pub value: Value,
}

/// Where a secret key's value comes from, before its conditions are evaluated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretSpec {
    pub key: String,
    /// 1-based line of the key.
    pub line: usize,
    /// The entry's `if:`.
    pub condition: Option<String>,
    /// `copy: {application, key, if}`.
    pub copy: Option<CopySpec>,
    /// `generate:`, with its own `if:` when it has one.
    pub generate: Option<Option<String>>,
    /// A fixed `value:`.
    pub value: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CopySpec {
    pub application: String,
    pub key: String,
    pub condition: Option<String>,
}

/// One `secrets.yaml` (or `secrets-ENV.yaml`).
#[derive(Clone, Debug)]
pub struct SecretsDoc {
    pub file: RepoFile,
    pub specs: Vec<SecretSpec>,
}

/// One application's files.
#[derive(Clone, Debug, Default)]
pub struct App {
    pub name: String,
    pub values: Option<Doc>,
    pub env_values: BTreeMap<String, Doc>,
    pub secrets: Option<SecretsDoc>,
    pub env_secrets: BTreeMap<String, SecretsDoc>,
}

impl App {
    /// `values.yaml` merged with `values-ENV.yaml`, as phalanx resolves it.
    pub fn merged_values(&self, env: &str) -> Value {
        let base = self
            .values
            .as_ref()
            .map_or(Value::Mapping(Default::default()), |d| d.value.clone());
        match self.env_values.get(env) {
            Some(over) => merge_file(&base, &over.value),
            None => base,
        }
    }

    /// The secret specifications of an environment: `secrets.yaml`, with the keys
    /// of `secrets-ENV.yaml` replacing or adding to them. Each with its file.
    pub fn secret_specs(&self, env: &str) -> Vec<(&RepoFile, &SecretSpec)> {
        let mut out: Vec<(&RepoFile, &SecretSpec)> = Vec::new();
        for doc in [self.secrets.as_ref(), self.env_secrets.get(env)]
            .into_iter()
            .flatten()
        {
            for spec in &doc.specs {
                out.retain(|(_, s)| s.key != spec.key);
                out.push((&doc.file, spec));
            }
        }
        out
    }

    /// The file and 1-based line that set a dotted values path in an
    /// environment: `values-ENV.yaml` when it sets it, else `values.yaml`.
    pub fn value_site(&self, env: &str, dotted: &str) -> Option<(&RepoFile, usize)> {
        [self.env_values.get(env), self.values.as_ref()]
            .into_iter()
            .flatten()
            .find(|doc| super::values::get(&doc.value, dotted).is_some())
            .map(|doc| (&doc.file, line_of_path(&doc.text, dotted).unwrap_or(1)))
    }
}

/// Replaces (or adds) the document of `file` by `text` when it is one of an
/// application's values or secrets files (`applications/APP/values[-ENV].yaml`,
/// `secrets[-ENV].yaml`): the model as it would be after an edit. A text that
/// does not parse leaves the model as it was (the edit verifies its own output).
pub fn replace(apps: &mut BTreeMap<String, App>, file: &RepoFile, text: &str) {
    let mut parts = file.relative.splitn(3, '/');
    let (Some("applications"), Some(app), Some(name)) = (parts.next(), parts.next(), parts.next())
    else {
        return;
    };
    let Some(stem) = name.strip_suffix(".yaml") else {
        return;
    };
    let Ok(value) = parse_yaml(text) else {
        return;
    };
    let entry = apps.entry(app.to_string()).or_insert_with(|| App {
        name: app.to_string(),
        ..App::default()
    });
    let doc = Doc {
        file: file.clone(),
        text: text.to_string(),
        value,
    };
    let secrets = |doc: Doc| {
        parse_specs(&doc.text).ok().map(|specs| SecretsDoc {
            file: doc.file,
            specs,
        })
    };
    match stem.split_once('-') {
        None if stem == "values" => entry.values = Some(doc),
        None if stem == "secrets" => entry.secrets = secrets(doc),
        Some(("values", env)) => {
            entry.env_values.insert(env.to_string(), doc);
        }
        Some(("secrets", env)) => {
            if let Some(s) = secrets(doc) {
                entry.env_secrets.insert(env.to_string(), s);
            }
        }
        _ => {}
    }
}

/// 1-based line of the key a dotted path ends in, in block-style YAML.
pub fn line_of_path(text: &str, dotted: &str) -> Option<usize> {
    use crate::files::{indent_of, is_blank_or_comment, split_key};
    let mut stack: Vec<(usize, String)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if is_blank_or_comment(line) {
            continue;
        }
        let indent = indent_of(line);
        let Some((key, _)) = split_key(line) else {
            continue;
        };
        while stack.last().is_some_and(|(d, _)| *d >= indent) {
            stack.pop();
        }
        stack.push((indent, key));
        let path: Vec<&str> = stack.iter().map(|(_, k)| k.as_str()).collect();
        if path.join(".") == dotted {
            return Some(i + 1);
        }
    }
    None
}

/// Reads the secret specifications of a `secrets.yaml` text.
pub fn parse_specs(text: &str) -> FileResult<Vec<SecretSpec>> {
    let parsed = secrets_yaml::parse(text)?;
    let root = parse_yaml(text)?;
    let cond = |v: Option<&Value>| {
        v.and_then(|v| v.get("if"))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let text_of = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_string();
    Ok(parsed
        .entries
        .into_iter()
        .map(|entry| {
            let value = root.get(entry.key.as_str()).cloned().unwrap_or(Value::Null);
            let copy = value.get("copy").map(|c| CopySpec {
                application: text_of(c.get("application")),
                key: text_of(c.get("key")),
                condition: cond(Some(c)),
            });
            SecretSpec {
                line: entry.line,
                condition: entry.condition,
                generate: value.get("generate").map(|g| cond(Some(g))),
                value: value.get("value").is_some_and(|v| !v.is_null()),
                copy,
                key: entry.key,
            }
        })
        .collect())
}

/// `PREFIX-ENV.yaml` (or `.yml`) files of a folder, by environment, sorted.
fn env_files(dir: &Path, prefix: &str) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, String)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let env = name.strip_prefix(prefix)?.strip_prefix('-')?;
            let env = env
                .strip_suffix(".yaml")
                .or_else(|| env.strip_suffix(".yml"))?;
            Some((env.to_string(), name))
        })
        .collect();
    out.sort();
    out.dedup_by(|a, b| a.0 == b.0);
    out
}

fn read_doc(file: RepoFile, unreadable: &mut Vec<Unreadable>) -> Option<Doc> {
    let text = match crate::fsio::read_text(&file.path) {
        Ok(text) => text,
        Err(e) => {
            unreadable.push(Unreadable::other(
                &file,
                FileError::whole(format!("cannot read: {e}")),
            ));
            return None;
        }
    };
    match parse_yaml(&text) {
        Ok(value) => Some(Doc { file, text, value }),
        Err(e) => {
            unreadable.push(Unreadable::other(&file, e));
            None
        }
    }
}

fn read_secrets(file: RepoFile, unreadable: &mut Vec<Unreadable>) -> Option<SecretsDoc> {
    let doc = read_doc(file, unreadable)?;
    match parse_specs(&doc.text) {
        Ok(specs) => Some(SecretsDoc {
            file: doc.file,
            specs,
        }),
        Err(e) => {
            unreadable.push(Unreadable::other(&doc.file, e));
            None
        }
    }
}

/// Every folder of `applications/` with its values and secrets files.
pub fn load(phalanx: &Path, unreadable: &mut Vec<Unreadable>) -> BTreeMap<String, App> {
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(phalanx.join("applications")) else {
        return out;
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    names.sort();
    for name in names {
        let dir = format!("applications/{name}");
        let file = |f: &str| RepoFile::new(phalanx, &format!("{dir}/{f}"));
        let mut app = App {
            name: name.clone(),
            ..App::default()
        };
        let values = file("values.yaml");
        if values.path.is_file() {
            app.values = read_doc(values, unreadable);
        }
        for (env, f) in env_files(&phalanx.join(&dir), "values") {
            if let Some(doc) = read_doc(file(&f), unreadable) {
                app.env_values.insert(env, doc);
            }
        }
        let secrets = file("secrets.yaml");
        if secrets.path.is_file() {
            app.secrets = read_secrets(secrets, unreadable);
        }
        for (env, f) in env_files(&phalanx.join(&dir), "secrets") {
            if let Some(doc) = read_secrets(file(&f), unreadable) {
                app.env_secrets.insert(env, doc);
            }
        }
        out.insert(name, app);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_keep_copy_and_generate_conditions() {
        let text = "\
database-password:
  description: d
  if: config.internalDatabase
  generate:
    type: password
    if: config.generate
nublado:
  description: d
  copy:
    application: postgres
    key: nublado3_password
    if: hub.internalDatabase
fixed:
  description: d
  value: x
";
        let specs = parse_specs(text).unwrap();
        assert_eq!(
            specs[0].condition.as_deref(),
            Some("config.internalDatabase")
        );
        assert_eq!(specs[0].generate, Some(Some("config.generate".into())));
        let copy = specs[1].copy.as_ref().unwrap();
        assert_eq!(
            (copy.application.as_str(), copy.key.as_str()),
            ("postgres", "nublado3_password")
        );
        assert_eq!(copy.condition.as_deref(), Some("hub.internalDatabase"));
        assert_eq!(specs[1].line, 7);
        assert!(specs[2].value && specs[2].copy.is_none() && specs[2].generate.is_none());
    }

    #[test]
    fn lines_of_dotted_paths() {
        let text =
            "a: 1\nhub:\n  x: 2\n  internalDatabase: true\nconfig:\n  internalDatabase: false\n";
        assert_eq!(line_of_path(text, "hub.internalDatabase"), Some(4));
        assert_eq!(line_of_path(text, "config.internalDatabase"), Some(6));
        assert_eq!(line_of_path(text, "internalDatabase"), None);
        assert_eq!(line_of_path(text, "a"), Some(1));
    }
}
