//! The runbook of a move to another server (`runbook NAME --env ENV --move-to URL`,
//! also printed by `move-db`), phase by phase: `preflight` (the new server answers,
//! its database is absent or empty, versions, size), `freeze` (each consumer's
//! Deployments scaled to zero, their replica counts recorded), `copy` (`pg_dump -Fc`
//! inside the postgres pod to a local file with its checksum; the role on the new
//! server with the same password, from Vault through a pipe; the database owned by
//! it; `pg_restore --no-owner --role` in one transaction), `verify` (the same query
//! on both servers and the schemas; a match is recorded), `switch` (only after a
//! recorded match: secrets, each consumer synced and scaled back, rollouts waited
//! on), `cleanup` (after a period the operator chooses: a final dump, the drop on the
//! old server, then the Vault key) and `rollback` (the consumers back on the old
//! server while cleanup has not run). The shell helpers are
//! `templates/runbook-move-helpers.sh`.

use anyhow::Result;

use super::builder::{consumers, Builder};
use super::model::{Pending, Phase, Runbook, Target};
use super::shell_line::{cmd, Word};
use super::site::{context_word, kubectl, site, EnvSite};
use crate::deployment::{Deployment, Secrets};
use crate::error::bad_input;
use crate::flags::RunbookMode;
use crate::move_db::target::MoveTarget;
use crate::names::{DbName, SqlIdent};

/// The helpers a move's runbook adds to the common ones.
pub const MOVE_HELPERS: &str = include_str!("../../../templates/runbook-move-helpers.sh");

/// The folder of the dumps and records, outside any repository.
const MOVE_DIR: &str = "\"${PGDB_MOVE_DIR:-$HOME/pgdb-move}\"";

/// What every step of a move needs to know.
struct Move<'a> {
    env: &'a str,
    site: &'a EnvSite,
    target: &'a Target,
    to: &'a MoveTarget,
    /// The host and port of the new server.
    host: Word,
    port: Word,
    /// The user and database on the new server.
    user: Word,
    database: Word,
    /// The path of the local dump.
    dump: Word,
    consumers: Vec<String>,
}

impl Move<'_> {
    /// A file of the move's folder: the folder's expansion, then the quoted name.
    fn file(&self, suffix: &str) -> Word {
        let name = format!("{}-{}{suffix}", self.target.database, self.env);
        Word::Raw(format!("{MOVE_DIR}/{}", Word::quoted(name)))
    }

    /// The file recording an application's replica counts.
    fn record(&self, app: &str) -> Word {
        self.file(&format!("-replicas-{app}.txt"))
    }
}

/// The move runbook of one database in one environment.
pub fn build_move(
    dep: &Deployment,
    db: &DbName,
    targets: &[Target],
    to: &MoveTarget,
    pending: &Pending,
) -> Result<Runbook> {
    let mut warnings = Vec::new();
    let [target] = targets else {
        return Err(bad_input(
            "a move is planned for one environment at a time: give exactly one --env",
        ));
    };
    let target = &source_names(dep, db, target, &mut warnings);
    let site = site(dep, &dep.config.kube_contexts, &target.env)?;
    let mut b = Builder {
        dep,
        pending,
        db,
        secret_key: dep.secret_key_of(db),
        steps: Vec::new(),
        warnings,
        configured: site
            .context
            .iter()
            .map(|c| (site.env.clone(), c.clone()))
            .collect(),
    };
    // The names of --to become SQL and shell words only once checked, as the entry's.
    let checked = |what: &str, given: &Option<String>, default: &SqlIdent| match given {
        Some(name) => SqlIdent::parse(what, name),
        None => Ok(default.clone()),
    };
    let user = checked("the user of --to", &to.user, &target.user)?;
    let database = checked("the database of --to", &to.database, &target.database)?;
    let mut m = Move {
        env: &target.env,
        site: &site,
        target,
        to,
        host: Word::quoted(&to.host),
        port: Word::quoted(to.port.to_string()),
        user: Word::quoted(user.as_str()),
        database: Word::quoted(database.as_str()),
        dump: Word::raw(""),
        consumers: move_consumers(dep, pending, &b.secret_key, target, &db.values_key()),
    };
    m.dump = m.file(".dump");
    preflight(&mut b, &m);
    freeze(&mut b, &m);
    copy(&mut b, &m);
    verify(&mut b, &m);
    switch(&mut b, &m, Phase::Switch);
    cleanup(&mut b, &m);
    switch(&mut b, &m, Phase::Rollback);
    if m.consumers.is_empty() {
        b.warnings.push(format!(
            "{}: no application copies {}: freeze and switch have no consumer to stop and start; \
             stop by hand whatever else connects to {}",
            target.env, b.secret_key, target.database
        ));
    }
    Ok(Runbook {
        title: format!(
            "moving the `{}` database of {} to {}",
            db.name,
            target.env,
            to.url(&user, &database)
        ),
        mode: RunbookMode::Move,
        steps: b.steps,
        warnings: b.warnings,
        compared: None,
        database: db.name.clone(),
        upstream: None,
    })
}

/// The target with the old server's role and database: once the move is merged the
/// environment has no entry, and the names come from another environment's entry
/// (else the database's name), with a warning to check them.
fn source_names(
    dep: &Deployment,
    db: &DbName,
    target: &Target,
    warnings: &mut Vec<String>,
) -> Target {
    let key = db.values_key();
    if dep
        .env(&target.env)
        .is_some_and(|e| e.parsed.entry(&key).is_some())
    {
        return target.clone();
    }
    let other = dep
        .envs
        .iter()
        .find_map(|e| e.parsed.entry(&key).map(|entry| (e, entry)));
    let mut target = target.clone();
    if let Some((env, entry)) = other {
        // Another environment's entry: its names are checked like every entry's.
        let at = format!("{}:{}", env.env.values, entry.line);
        let checked = |what: &str, value: &Option<String>| {
            value
                .as_deref()
                .and_then(|v| SqlIdent::parse_at(&at, what, v).ok())
        };
        target.user = checked("user", &entry.user).unwrap_or(target.user);
        target.database = checked("db", &entry.db).unwrap_or(target.database);
    }
    warnings.push(format!(
        "{}: the values have no `{key}` (moved already?): the old server's role and database are taken to \
         be {} and {}; check them before cleanup or rollback (the runbook move-db printed has the right ones)",
        target.env, target.user, target.database
    ));
    target
}

/// The applications to stop and start: those that copy the password, and those the
/// model finds using the database in the environment (pointers, flags).
fn move_consumers(
    dep: &Deployment,
    pending: &Pending,
    key: &str,
    target: &Target,
    values_key: &str,
) -> Vec<String> {
    let mut apps = consumers(dep, pending, key, &target.env);
    if let Some(entry) = dep
        .env(&target.env)
        .and_then(|e| e.parsed.entry(values_key))
    {
        apps.extend(
            crate::move_db::consumers::find(dep, &target.env, entry, key)
                .into_iter()
                .map(|c| c.app.replace('_', "-")),
        );
    }
    apps.sort();
    apps.dedup();
    apps
}

fn preflight(b: &mut Builder, m: &Move) {
    let context = context_word(m.site);
    b.cluster(Phase::Preflight, m.env, m.site);
    let step = b.step(
        Phase::Preflight,
        Some(m.env),
        format!("Check the new server {}", m.to.host_port()),
    );
    step.notes.extend([
        "The new server is reached from this machine as TARGET_ADMIN_USER (default postgres); libpq \
         takes its password from PGPASSWORD or ~/.pgpass."
            .to_string(),
        "The dumps and replica records go to PGDB_MOVE_DIR (default ~/pgdb-move), outside any repository."
            .to_string(),
        "Needs here: psql, pg_dump, pg_restore and pg_isready (a PostgreSQL client at least as new as the \
         old server), sha256sum, python3, vault."
            .to_string(),
    ]);
    step.run(cmd("move_dir_ready").raw(MOVE_DIR));
    step.run(cmd("check_target_reachable").word(&m.host).word(&m.port));
    step.run(
        cmd("compare_versions")
            .word(&context)
            .word(&m.host)
            .word(&m.port),
    );
    step.run(
        cmd("check_target_empty")
            .word(&m.host)
            .word(&m.port)
            .word(&m.database),
    );
    step.run(
        cmd("show_move_size")
            .word(context)
            .arg(m.target.database.as_str()),
    );
}

fn freeze(b: &mut Builder, m: &Move) {
    let context = context_word(m.site);
    b.cluster(Phase::Freeze, m.env, m.site);
    for app in &m.consumers {
        let step = b.step(
            Phase::Freeze,
            Some(m.env),
            format!("Stop {app}: scale its Deployments to zero"),
        );
        step.notes.push(
            "The replica counts are recorded first; switch and rollback scale back to them.".into(),
        );
        step.confirm = Some(format!(
            "Stop {app} in {}? It is down until switch or rollback.",
            m.env
        ));
        step.run(
            cmd("freeze_app")
                .word(&context)
                .arg(app)
                .word(m.record(app)),
        );
    }
    let step = b.step(
        Phase::Freeze,
        Some(m.env),
        format!("Wait until nothing uses {}", m.target.database),
    );
    step.notes.push(
        "A session left here is an application the runbook does not know: stop it by hand.".into(),
    );
    step.run(
        cmd("wait_no_sessions")
            .word(context)
            .arg(m.target.database.as_str()),
    );
}

fn copy(b: &mut Builder, m: &Move) {
    let context = context_word(m.site);
    let source_db = Word::quoted(m.target.database.as_str());
    b.cluster(Phase::Copy, m.env, m.site);
    let step = b.step(
        Phase::Copy,
        Some(m.env),
        format!("Dump {} inside the postgres pod", m.target.database),
    );
    step.notes.push(
        "pg_dump -Fc runs in the pod; the file and its sha256 checksum are written here.".into(),
    );
    step.run(cmd("move_dir_ready").raw(MOVE_DIR));
    step.run(cmd("wait_no_sessions").word(&context).word(&source_db));
    step.run(
        cmd("dump_for_move")
            .word(&context)
            .word(&source_db)
            .word(&m.dump),
    );
    let key = b.secret_key.clone();
    let (path, step) = b.vault_step(
        Phase::Copy,
        m.env,
        m.site,
        format!("Create the role {} on the new server", m.user),
    );
    step.notes.push(format!(
        "Same password as now ({key} in Vault): the applications keep their secret. Only its SCRAM \
         verifier reaches the server."
    ));
    step.run(
        cmd("create_role_on_target")
            .word(&m.host)
            .word(&m.port)
            .word(path)
            .arg(key)
            .word(&m.user),
    );
    let step = b.step(
        Phase::Copy,
        Some(m.env),
        format!("Create {} owned by it and restore the dump", m.database),
    );
    step.notes.push(
        "pg_restore --no-owner --role runs in one transaction and stops at the first error.".into(),
    );
    step.run(
        cmd("create_database_on_target")
            .word(&m.host)
            .word(&m.port)
            .word(&m.database)
            .word(&m.user),
    );
    step.run(
        cmd("restore_on_target")
            .word(&m.host)
            .word(&m.port)
            .word(&m.database)
            .word(&m.user)
            .word(&m.dump),
    );
}

fn verify(b: &mut Builder, m: &Move) {
    let context = context_word(m.site);
    b.cluster(Phase::Verify, m.env, m.site);
    let step = b.step(Phase::Verify, Some(m.env), "Compare the two servers".into());
    step.notes.push(
        "Every table's row count and row hashes, every sequence's last value, the large objects and \
         the schema (pg_dump --schema-only --no-owner), on both servers; any difference stops."
            .into(),
    );
    step.run(
        cmd("verify_move")
            .word(context)
            .arg(m.target.database.as_str())
            .word(&m.host)
            .word(&m.port)
            .word(&m.database)
            .word(&m.dump),
    );
}

/// `switch` (after verify, onto the new server) and `rollback` (back onto the old
/// one): the same sync and scale-up of each consumer after a different check.
fn switch(b: &mut Builder, m: &Move, phase: Phase) {
    let context = context_word(m.site);
    b.cluster(phase, m.env, m.site);
    match phase {
        Phase::Switch => {
            let step = b.step(phase, Some(m.env), "Check that verify passed".into());
            step.run(cmd("move_verified").word(&m.dump));
        }
        _ => {
            let step = b.step(
                phase,
                Some(m.env),
                format!(
                    "Check that {} is still on the old server",
                    m.target.database
                ),
            );
            step.notes.push(
                "Writes made on the new server since switch are not copied back: dump them first if \
                 they matter."
                    .into(),
            );
            step.run(
                cmd("check_database")
                    .word(&context)
                    .arg(m.target.database.as_str()),
            );
        }
    }
    if let Secrets::Yaml(_) = b.dep.secrets {
        b.login_step(phase, m.env, m.site);
        let step = b.step(phase, Some(m.env), "Sync the secrets".into());
        step.notes.extend([
            "From a phalanx checkout of the merged change; its message is the reason when it fails.".into(),
            "A password that became static with the flag turned off keeps the value Vault holds, unless the \
             environment reads static secrets from 1Password: put the same value there before this sync."
                .to_string(),
        ]);
        step.run(cmd("phalanx").raw("secrets sync").arg(m.env));
    }
    for app in &m.consumers {
        let step = b.step(phase, Some(m.env), format!("Sync {app} and scale it back"));
        let settings = if phase == Phase::Switch { "new" } else { "old" };
        step.confirm = Some(format!(
            "Start {app} in {} on its {settings} settings?",
            m.env
        ));
        step.run(
            cmd("argocd")
                .raw("app sync")
                .arg(app)
                .raw("--core --kube-context")
                .word(&context),
        );
        step.run(
            cmd("restore_replicas")
                .word(&context)
                .arg(app)
                .word(m.record(app)),
        );
    }
}

fn cleanup(b: &mut Builder, m: &Move) {
    let context = context_word(m.site);
    let kube = kubectl(m.site);
    let db = &m.target.database;
    b.cluster(Phase::Cleanup, m.env, m.site);
    let final_dump = m.file("-final.dump");
    let step = b.step(
        Phase::Cleanup,
        Some(m.env),
        format!("Final dump of {db} on the old server"),
    );
    step.notes.push(
        "Only after the period you chose (weeks, not hours): until this phase, rollback is possible."
            .into(),
    );
    step.run(cmd("move_verified").word(&m.dump));
    step.run(
        cmd("check_target_holds")
            .word(&m.host)
            .word(&m.port)
            .word(&m.database),
    );
    step.run(
        cmd("dump_for_move")
            .word(&context)
            .arg(db.as_str())
            .word(&final_dump),
    );
    let ident = |name: &str| format!("\"{}\"", name.replace('"', "\"\""));
    let mut sql = format!("DROP DATABASE {};", ident(db));
    if !m.target.role_shared {
        sql.push_str(&format!("\nDROP ROLE {};", ident(&m.target.user)));
    }
    let step = b.step(
        Phase::Cleanup,
        Some(m.env),
        format!("Drop {db} on the old server"),
    );
    step.confirm = Some(format!(
        "Drop {db} on the old server of {}? Rollback is impossible afterwards.",
        m.env
    ));
    let psql =
        kube.raw("-n postgres exec -i deployment/postgres -- psql -U postgres -v ON_ERROR_STOP=1");
    step.commands.push(format!(
        "{} && {psql} <<'SQL'\n{sql}\nSQL",
        cmd("move_dump_exists").word(final_dump)
    ));
    let key = b.secret_key.clone();
    let (path, step) = b.vault_step(
        Phase::Cleanup,
        m.env,
        m.site,
        format!("Delete {key} from the postgres secret"),
    );
    step.notes.push(
        "The applications keep their own copy of the value: only postgres's key goes.".into(),
    );
    step.confirm = Some(format!("Delete {key} from Vault for {}?", m.env));
    step.run(cmd("delete_vault_key").word(path).arg(key));
}
