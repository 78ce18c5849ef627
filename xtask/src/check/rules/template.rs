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
                    "add the block with `{} add-db {} --env {}` (it adds only what is missing), \
                     or remove the entry",
                    crate::flags::program_name(),
                    crate::shell::quote(name),
                    crate::shell::quote(&env.name)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::facts::tests::{block, env_facts, summary, template_facts, TEMPLATE};

    fn findings(template: &str, values: &str) -> Vec<Finding> {
        let facts = Facts {
            template: Some(template_facts(template)),
            envs: vec![env_facts("dev", values)],
            ..Facts::default()
        };
        let mut out = Vec::new();
        db_without_template(&facts, &mut out);
        malformed_block(&facts, &mut out);
        env_ids(&facts, &mut out);
        out
    }

    const A: &str = "a_db:\n  user: a\n  db: a\n";

    #[test]
    fn a_clean_template_has_none() {
        assert!(findings(&block("a", "A", "a_password"), A).is_empty());
    }

    #[test]
    fn db_without_template_at_the_values_entry() {
        let values = format!("{A}b_db:\n  user: b\n  db: b\n");
        let found = findings(&block("a", "A", "a_password"), &values);
        assert_eq!(
            summary(&found),
            [("db-without-template", "values-dev.yaml", 4, "b_db")]
        );
    }

    #[test]
    fn malformed_block_at_its_with() {
        let text = block("a", "A", "a_password").replace("VRO_DB_A_DB", "VRO_DB_A_NAME");
        let found = findings(&text, A);
        let rules: Vec<&str> = found.iter().map(|f| f.rule).collect();
        assert!(rules.contains(&"malformed-block"), "{found:?}");
        let malformed = found.iter().find(|f| f.rule == "malformed-block").unwrap();
        assert_eq!(
            (
                malformed.path.as_str(),
                malformed.line,
                malformed.subject.as_str()
            ),
            (TEMPLATE, 1, "a_db")
        );
    }

    #[test]
    fn env_id_underscore_and_collision() {
        let text = block("times_square", "TIMES_SQUARE", "times_square_password");
        let values = "times_square_db:\n  user: ts\n  db: ts\n";
        let found = findings(&text, values);
        assert_eq!(
            summary(&found),
            [("env-id-underscore", TEMPLATE, 2, "TIMES_SQUARE")]
        );
        // `a_b` and `ab` both become the id `AB`.
        let text = format!(
            "{}{}",
            block("a_b", "AB", "a_b_password"),
            block("ab", "AB", "ab_password")
        );
        let values = "a_b_db:\n  user: ab1\n  db: ab1\nab_db:\n  user: ab2\n  db: ab2\n";
        let found = findings(&text, values);
        assert_eq!(summary(&found), [("env-id-collision", TEMPLATE, 13, "AB")]);
        assert!(
            found[0].message.contains("`a_b_db` at line 1"),
            "{}",
            found[0].message
        );
    }
}
