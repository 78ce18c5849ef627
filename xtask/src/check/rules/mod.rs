//! The second stage of `check`: one function per rule, grouped by the family of
//! files it judges. Every rule reads only [`Facts`] and pushes [`Finding`]s.

mod chart;
mod consumers;
mod secrets;
mod syntax;
mod template;
mod values;

use super::{Facts, Finding};

/// Every rule over the facts, in one place.
pub fn rules(facts: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    syntax::yaml_syntax(facts, &mut out);
    secrets::password_not_generated(facts, &mut out);
    template::db_without_template(facts, &mut out);
    secrets::unused_password(facts, &mut out);
    template::malformed_block(facts, &mut out);
    template::env_ids(facts, &mut out);
    values::bad_values_entry(facts, &mut out);
    values::shared_role(facts, &mut out);
    chart::stale_dependency(facts, &mut out);
    chart::chart_not_bumped(facts, &mut out);
    secrets::secret_condition_mismatch(facts, &mut out);
    values::missing_vault_path(facts, &mut out);
    secrets::secret_source_absent(facts, &mut out);
    secrets::copy_without_source(facts, &mut out);
    values::stray_values_file(facts, &mut out);
    consumers::unresolved_copies(facts, &mut out);
    consumers::pointers(facts, &mut out);
    consumers::unused_database(facts, &mut out);
    out
}

/// The key with `-` read as `_`, as `secret_key_matches` compares them.
fn normalized(key: &str) -> String {
    key.replace('-', "_")
}
