//! `move-db NAME --env ENV --to URL`: a database of one environment leaves the
//! internal postgres for another server, in one change: every consumer found in
//! that environment pointed at the new server in its own shape, each copy of the
//! password given a source that no longer depends on postgres (the value stays), and
//! the environment's postgres entry removed (the template block and the secret
//! definition stay: other environments, and until cleanup the runbook, use them).
//! The usual guarantees: every edit verified, all files or none, `--dry-run`; no
//! environment may lose a secret that resolved before. Then the runbook of the move.
//!
//! `target` parses the URL, `edit` holds the pure edits, `consumers` plans them per
//! consumer.

#[cfg(feature = "bench")]
pub mod bench;
pub mod consumers;
pub mod edit;
pub mod homes;
pub mod target;

use anyhow::Result;

use crate::config::Config;
use crate::deployment::{bad_at, Deployment};
use crate::error::{bad_input, refused};
use crate::files::{pointers, values};
use crate::flags;
use crate::fsio::{command_line, Intent, Session};
use crate::names::parse_db_name;
use crate::plan::Plan;
use crate::runbook::{self, Pending};

impl flags::MoveDb {
    pub fn run(self, config: Config) -> Result<()> {
        let db = parse_db_name(&self.name)?;
        let to = target::parse(&self.to)?;
        if pointers::is_internal_host(&to.host) {
            return Err(bad_input(format!(
                "--to {}: that is the internal server itself; name the server the database moves to",
                self.to
            )));
        }
        let session = Session::begin(
            &config.repositories(),
            &command_line(),
            Intent::of(self.dry_run),
        )?;
        let dep = Deployment::load(config)?;
        let env = dep
            .layout
            .select_environments(std::slice::from_ref(&self.env))?
            .remove(0)
            .name;
        let key = db.values_key();
        let Some(values) = dep.env(&env) else {
            return Err(bad_input(format!("{env}: no postgres values file")));
        };
        let model = dep.model();
        let secret_key = model.secret_key_of_entry(&key);
        let Some(entry) = values.parsed.entry(&key) else {
            outln!(
                "Nothing to change: {} has no `{key}` (moved already? `{} list` shows where each database \
                 lives).",
                values.env.values.relative,
                flags::program_name()
            );
            return Ok(());
        };
        let user = to.user.clone().or_else(|| entry.user.clone());
        let database = to.database.clone().or_else(|| entry.db.clone());
        let found = consumers::find(&dep, &env, entry, &secret_key);
        let ctx = consumers::Context {
            dep: &dep,
            env: &env,
            to: &to,
            user: &user.unwrap_or_else(|| db.name.clone()),
            database: &database.unwrap_or_else(|| db.name.clone()),
            values_key: &key,
            all: &found,
        };
        let (plan, edits) = plan_move(&ctx, self.allow_manual)?;
        plan.print_diff();
        plan.apply(&session)?;
        for note in &edits.notes {
            outln!("note: {note}");
        }
        for item in &edits.manual {
            outln!("left to you (--allow-manual): {item}");
        }
        let upstream = crate::git::upstream(&dep.layout.phalanx, None)?;
        let targets = runbook::targets(&dep, &db, std::slice::from_ref(&env), upstream.as_ref())?;
        let pending = Pending {
            consumers: found.iter().map(|c| c.app.clone()).collect(),
            ..Pending::default()
        };
        let runbook = runbook::build_move(&dep, &db, &targets, &to, &pending)?;
        outln!();
        runbook::print(&runbook, &dep, flags::RenderMode::Text);
        Ok(())
    }
}

/// The whole change: each consumer's edits and the environment's entry removed;
/// refused while a pointer is left to the operator without `--allow-manual`, or when
/// an environment would lose a resolvable secret.
fn plan_move(ctx: &consumers::Context, allow_manual: bool) -> Result<(Plan, consumers::Edits)> {
    let (env, key) = (ctx.env, ctx.values_key);
    let mut edits = consumers::Edits::default();
    let dep = ctx.dep;
    if !dep.apps.keys().any(|a| a != "postgres") {
        let mut apps: Vec<String> = ctx.all.iter().map(|c| c.app.clone()).collect();
        apps.dedup();
        let apps = if apps.is_empty() {
            String::new()
        } else {
            format!(
                " (the generator copies its password into {})",
                apps.join(", ")
            )
        };
        edits.manual.push(format!(
            "the {} layout keeps no application's values under applications/, so the values that point \
             at the internal server cannot be found: point every application of {env} that uses `{key}`{apps} \
             at the new server yourself",
            dep.layout.kind
        ));
    }
    consumers::plan(ctx, &mut edits);
    if !edits.manual.is_empty() && !allow_manual {
        return Err(refused(format!(
            "`{key}` in {env}: the tool cannot point these at the new server itself:\n  {}\nedit them in \
             the same change yourself and run again with --allow-manual, or point them elsewhere first; \
             nothing was written",
            edits.manual.join("\n  ")
        )));
    }
    let mut plan = Plan::default();
    for (file, before, after) in edits.files.values() {
        plan.change(file, before, after.clone());
    }
    let values = dep
        .env(env)
        .ok_or_else(|| bad_input(format!("{env}: no postgres values file")))?;
    let text = values::remove_entry_parsed(&values.text, &values.parsed, dep.layout.nesting, key)
        .map_err(bad_at(&values.env.values))?;
    plan.change(&values.env.values, &values.text, text);
    refuse_new_unresolved(dep, &plan)?;
    Ok((plan, edits))
}

/// Refuses (exit 1) a plan after which an environment has a secret that `phalanx
/// secrets sync` could resolve before and cannot after.
fn refuse_new_unresolved(dep: &Deployment, plan: &Plan) -> Result<()> {
    let lines = dep.model().broken_by(plan.planned());
    if lines.is_empty() {
        return Ok(());
    }
    Err(refused(format!(
        "the move would break secrets elsewhere:\n{}\nnothing was written",
        lines.join("\n")
    )))
}
