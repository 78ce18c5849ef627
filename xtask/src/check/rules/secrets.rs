//! The secret source's rules: `password-not-generated`, `unused-password`,
//! `secret-condition-mismatch`.

use std::collections::HashSet;

use super::normalized;
use crate::check::facts::{SecretFacts, SecretSourceKind};
use crate::check::{Facts, Finding};
use crate::names::name_of_secret_key;
use crate::names::name_of_values_key;

const ROOT_PASSWORD: &str = "root_password";

impl SecretFacts {
    fn how_to_add(&self, key: &str, values_key: &str) -> String {
        match self.kind {
            SecretSourceKind::Generator => format!(
                "add `self._set_generated(\"postgres\", \"{key}\", secrets.token_hex(32))` to `_postgres` in {}",
                self.path
            ),
            SecretSourceKind::SecretsYaml => format!(
                "add the entry `{key}:` with `if: {values_key}` and `generate: {{type: password}}` to {}",
                self.path
            ),
        }
    }
}

pub(super) fn password_not_generated(facts: &Facts, out: &mut Vec<Finding>) {
    let Some(secrets) = &facts.secrets else {
        return;
    };
    let provided: HashSet<&str> = secrets.keys.iter().map(|k| k.key.as_str()).collect();
    let provided_normalized: HashSet<String> =
        secrets.keys.iter().map(|k| normalized(&k.key)).collect();
    let mut blocks: HashSet<&str> = HashSet::new();
    if let Some(template) = &facts.template {
        for block in &template.blocks {
            blocks.insert(&block.values_key);
            for (key, line) in &block.secret_keys {
                if !provided.contains(key.as_str()) {
                    out.push(Finding::new("password-not-generated", &template.path, *line, key.as_str()).says(
                        format!(
                            "the block for `{}` reads the secret key `{key}`, which {} neither generates nor copies \
                             nor declares; postgres cannot start where `{}` is set",
                            block.values_key, secrets.path, block.values_key
                        ),
                        secrets.how_to_add(key, &block.values_key),
                    ));
                }
            }
        }
    }
    // Entries without a block need the key their name implies.
    let mut reported: HashSet<&str> = HashSet::new();
    for env in &facts.envs {
        for entry in &env.entries {
            if facts.template.is_some() && blocks.contains(entry.key.as_str()) {
                continue;
            }
            let Some(name) = name_of_values_key(&entry.key) else {
                continue;
            };
            let key = format!("{name}_password");
            if provided_normalized.contains(&key) || !reported.insert(&entry.key) {
                continue;
            }
            out.push(Finding::new("password-not-generated", &env.path, entry.line, key.as_str()).says(
                format!(
                    "`{}` needs the secret key `{key}`, which {} neither generates nor copies nor declares",
                    entry.key, secrets.path
                ),
                secrets.how_to_add(&key, &entry.key),
            ));
        }
    }
}

pub(super) fn unused_password(facts: &Facts, out: &mut Vec<Finding>) {
    let (Some(template), Some(secrets)) = (&facts.template, &facts.secrets) else {
        return;
    };
    let read: HashSet<&str> = template.read_keys.iter().map(String::as_str).collect();
    for key in &secrets.keys {
        if key.key == ROOT_PASSWORD
            || name_of_secret_key(&key.key).is_none()
            || read.contains(key.key.as_str())
        {
            continue;
        }
        out.push(Finding::new("unused-password", &secrets.path, key.line, key.key.as_str()).says(
            format!("{} makes `{}`, but no block of {} reads it", secrets.path, key.key, template.path),
            format!(
                "remove it if its database is gone (`cargo xtask remove-db {}`), or add the database's block",
                name_of_secret_key(&key.key).unwrap_or("NAME")
            ),
        ));
    }
}

pub(super) fn secret_condition_mismatch(facts: &Facts, out: &mut Vec<Finding>) {
    let Some(secrets) = &facts.secrets else {
        return;
    };
    for key in &secrets.keys {
        let (Some((condition, line)), Some(name)) = (&key.condition, name_of_secret_key(&key.key))
        else {
            continue;
        };
        if key.key == ROOT_PASSWORD {
            continue;
        }
        let expected = format!("{}_db", normalized(name));
        if normalized(condition) == expected {
            continue;
        }
        out.push(Finding::new("secret-condition-mismatch", &secrets.path, *line, key.key.as_str()).says(
            format!(
                "`{}` is made only `if: {condition}`, but the database that reads it is `{expected}`: where \
                 `{expected}` is set without `{condition}`, the password is missing and postgres cannot start",
                key.key
            ),
            format!("write `if: {expected}`"),
        ));
    }
}
