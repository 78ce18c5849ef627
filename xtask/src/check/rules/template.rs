//! The template's rules: `db-without-template`, `malformed-block`,
//! `env-id-underscore`, `env-id-collision`.

use std::collections::{HashMap, HashSet};

use crate::check::{Facts, Finding};
use crate::files::helm_template::Block;
use crate::names::{container, env_id_of, name_of_values_key};

pub(super) fn db_without_template(facts: &Facts, out: &mut Vec<Finding>) {
    let Some(template) = &facts.template else {
        return;
    };
    let blocks: HashSet<&str> = template
        .blocks
        .iter()
        .map(|b| b.values_key.as_str())
        .collect();
    for env in &facts.envs {
        for entry in &env.entries {
            if blocks.contains(entry.key.as_str()) {
                continue;
            }
            let name = name_of_values_key(&entry.key).unwrap_or("NAME");
            out.push(Finding::new("db-without-template", &env.path, entry.line, entry.key.as_str()).says(
                format!(
                    "`{}` is set, but {} has no block for it: the database is silently never created",
                    entry.key, template.path
                ),
                format!(
                    "add the block with `{} add-db {name} --env {}` (it adds only what is missing), \
                     or remove the entry",
                    crate::flags::program_name(),
                    env.name
                ),
            ));
        }
    }
}

pub(super) fn malformed_block(facts: &Facts, out: &mut Vec<Finding>) {
    let Some(template) = &facts.template else {
        return;
    };
    for block in &template.blocks {
        let Some(problem) = block.malformation() else {
            continue;
        };
        let help = match block.name() {
            Some(name) => format!(
                "write the block as `{program} add-db` does: VRO_DB_{id}_USER, VRO_DB_{id}_DB and \
                 VRO_DB_{id}_PASSWORD, the last from the secret key `{name}_password`",
                program = crate::flags::program_name(),
                id = env_id_of(name)
            ),
            None => "a database block is `{{- with .Values.<name>_db }}` with VRO_DB_<ID>_USER, _DB and _PASSWORD"
                .to_string(),
        };
        out.push(
            Finding::new(
                "malformed-block",
                &template.path,
                block.line,
                block.values_key.as_str(),
            )
            .says(problem, help),
        );
    }
}

/// `env-id-underscore` and `env-id-collision`.
pub(super) fn env_ids(facts: &Facts, out: &mut Vec<Finding>) {
    let Some(template) = &facts.template else {
        return;
    };
    let path = &template.path;
    let underscore = |id: &str, line: usize, out: &mut Vec<Finding>| {
        out.push(Finding::new("env-id-underscore", path, line, id).says(
            format!(
                "`VRO_DB_{id}_*` has `_` in its id; the container takes the third `_`-separated field as the id, \
                 so it skips this database"
            ),
            format!("use `VRO_DB_{}_*` (the values and secret keys keep their `_`)", id.replace('_', "")),
        ));
    };
    let mut seen: HashMap<&str, &Block> = HashMap::new();
    for block in &template.blocks {
        let mut ids: Vec<(&str, usize)> = Vec::new();
        for var in &block.vars {
            if !ids.iter().any(|(id, _)| *id == var.id) {
                ids.push((&var.id, var.line));
            }
        }
        for (id, line) in ids {
            if !container::reads_whole(id) {
                underscore(id, line, out);
            }
            match seen.get(id) {
                Some(first) => out.push(Finding::new("env-id-collision", path, line, id).says(
                    format!(
                        "`VRO_DB_{id}_*` is also set by the block for `{}` at line {}: the container sees one \
                         database where two are meant",
                        first.values_key, first.line
                    ),
                    format!("rename one of `{}` and `{}`", first.values_key, block.values_key),
                )),
                None => {
                    seen.insert(id, block);
                }
            }
        }
    }
    let mut stray_ids: HashSet<&str> = HashSet::new();
    for var in &template.stray {
        if !container::reads_whole(&var.id) && stray_ids.insert(&var.id) {
            underscore(&var.id, var.line, out);
        }
    }
}
