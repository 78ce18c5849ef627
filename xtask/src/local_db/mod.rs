//! `local-db`: a real PostgreSQL on this machine holding what the cluster's postgres
//! container would create for one environment, for running a service against before
//! anything is deployed.
//!
//! ```text
//! cargo xtask local-db up|down|status [--env ENV] [--port N] [--show-passwords]
//! ```
//!
//! `up` creates the roles and databases of the complete `VRO_DB_<ID>_*` triplets the
//! environment's rendered template passes (`cluster`), names the entries the
//! container would skip, refuses an environment whose blocks read a secret key
//! nothing makes (`plan`: the cluster's pod would not start), and applies the
//! container's semantics whatever the local version: ids in reverse sorted order,
//! md5 passwords, PostgreSQL 12's `public` (owned by `postgres`, writable by every
//! role) in every database, passwords applied again at every start (`sql`), the
//! image's locale where the machine has it (`server`). The server listens on
//! 127.0.0.1 only; the superuser has no password and connects through a Unix socket
//! in a folder private to the server. Files: `folder`; the passwords file:
//! `passwords`.

mod cluster;
mod folder;
mod passwords;
mod plan;
mod port;
mod server;
mod sql;

use anyhow::{anyhow, Result};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::config::Config;
use crate::deployment::Deployment;
use crate::error::bad_input;
use crate::flags::{self, LocalDbAction};
use cluster::Outcome;
use folder::Paths;
use server::{RunAs, Server};

impl flags::LocalDb {
    pub fn run(self, config: Config) -> Result<()> {
        // `down` needs nothing from the deployment when the environment is known.
        if self.action == LocalDbAction::Down {
            let env = self.env.clone().or_else(|| config.local_env.clone());
            if let (Some(env), Some(checkout)) = (env, config.phalanx.clone()) {
                check_env_name(&env)?;
                let paths = Paths::new(&checkout, &env)?;
                move_from_old_place(&checkout, &paths)?;
                return down(&paths);
            }
        }
        let dep = Deployment::load(config)?;
        let env = choose_env(&dep, self.env.as_deref())?;
        let checkout = dep.layout.phalanx.clone();
        let paths = Paths::new(&checkout, &env)?;
        match self.action {
            LocalDbAction::Up => {
                let plan = plan_up(&dep, &env, self.skip_missing)?;
                move_from_old_place(&checkout, &paths)?;
                up(&plan, &env, &paths, self.port, self.show_passwords)
            }
            LocalDbAction::Down => {
                move_from_old_place(&checkout, &paths)?;
                down(&paths)
            }
            LocalDbAction::Status => {
                let old = folder::old_dir(&checkout, &env)?;
                if !folder::exists(&paths.dir) && old.is_dir() {
                    eprintln!(
                        "note: this cluster is still in {}, where older versions kept it; \
                         `up` or `down` moves it to {}",
                        old.display(),
                        paths.dir.display()
                    );
                    return status(&dep, &env, &Paths::at(old, &env));
                }
                status(&dep, &env, &paths)
            }
        }
    }
}

/// `--env`, else `xtask.toml`'s `local_env`, else the first environment.
fn choose_env(dep: &Deployment, given: Option<&str>) -> Result<String> {
    let name = match given
        .map(str::to_string)
        .or_else(|| dep.config.local_env.clone())
    {
        Some(name) => name,
        None => dep
            .envs
            .first()
            .map(|e| e.env.name.clone())
            .ok_or_else(|| {
                bad_input(format!(
                    "{}: holds no values-<env>.yaml file",
                    dep.layout.values_dir
                ))
            })?,
    };
    if dep.env(&name).is_none() {
        let known: Vec<&str> = dep.envs.iter().map(|e| e.env.name.as_str()).collect();
        return Err(bad_input(format!(
            "unknown environment `{name}`: {} has no values-{name}.yaml; environments: {}",
            dep.layout.values_dir,
            known.join(", ")
        )));
    }
    check_env_name(&name)?;
    Ok(name)
}

/// An environment's name becomes part of a folder name: refuse anything that could escape.
fn check_env_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(bad_input(format!(
            "invalid environment name `{name}`: use letters, digits, `.`, `_` and `-`"
        )))
    }
}

/// What the container would create for `env`, and what it would skip.
fn outcome(dep: &Deployment, env: &str) -> Result<Outcome> {
    let values = dep
        .env(env)
        .ok_or_else(|| bad_input(format!("unknown environment `{env}`")))?;
    cluster::outcome(
        &dep.template.parsed,
        &values.parsed.entries,
        &values.env.values.to_string(),
    )
}

/// What `up` does for `env`: refused (exit 1) when a rendered block reads a secret
/// key the source does not make, unless `skip_missing`.
fn plan_up(dep: &Deployment, env: &str, skip_missing: bool) -> Result<plan::Plan> {
    let outcome = outcome(dep, env)?;
    let values = dep
        .env(env)
        .map(|v| v.env.values.to_string())
        .unwrap_or_default();
    let files = plan::Files {
        env,
        values: &values,
        template: &dep.template.file.relative,
        secret_source: &dep.secrets.file().relative,
    };
    let makes = |key: &str| dep.secrets.provision(key).is_some();
    plan::plan(outcome, &makes, skip_missing, &files)
}

/// Names the secret keys rendered blocks read and nothing makes (for `status`).
fn print_missing(dep: &Deployment, outcome: &Outcome) {
    let makes = |key: &str| dep.secrets.provision(key).is_some();
    for r in plan::missing_keys(&outcome.secret_refs, &makes) {
        outln!(
            "  {}: nothing makes its secret key `{}`: the cluster's postgres would not start; \
             `up` refuses (`--skip-missing` creates the rest)",
            r.values_key,
            r.secret_key
        );
    }
}

/// Moves a cluster that an older version kept below `target/` to `paths.dir`, once
/// (stopping its server first), and says so.
fn move_from_old_place(checkout: &Path, paths: &Paths) -> Result<()> {
    let old = folder::old_dir(checkout, &paths.env)?;
    if folder::exists(&paths.dir) || !fs::symlink_metadata(&old).is_ok_and(|m| m.is_dir()) {
        return Ok(());
    }
    let old_paths = Paths::at(old.clone(), &paths.env);
    let _lock = folder::lock(&old)?;
    if server::server_pid(&old_paths).is_some() {
        eprintln!("stopping the server in {} to move it", old.display());
        server::stop(
            &server::find_tools(&old_paths)?,
            &RunAs::detect()?,
            &old_paths,
        )?;
    }
    if let Some(parent) = paths.dir.parent() {
        folder::create_dirs(parent, 0o755)?;
    }
    fs::rename(&old, &paths.dir).map_err(|e| {
        anyhow!(
            "cannot move the cluster from {} to {}: {e}; move it yourself \
             (`mv {} {}`) and run the command again",
            old.display(),
            paths.dir.display(),
            crate::shell::quote(&old.display().to_string()),
            crate::shell::quote(&paths.dir.display().to_string())
        )
    })?;
    eprintln!(
        "moved the local-db cluster of `{}` from {} to {} (state now lives beside the deployment)",
        paths.env,
        old.display(),
        paths.dir.display()
    );
    Ok(())
}

/// Prints the entries the container would skip.
fn print_skipped(skipped: &[cluster::Skipped], env: &str) {
    for s in skipped {
        let at = if s.line == 0 {
            String::new()
        } else {
            format!(" (values-{env}.yaml:{})", s.line)
        };
        outln!(
            "  {}: not created, the cluster's container skips it: {}{at}",
            s.key,
            s.reason
        );
    }
}

/// The cluster's folders: ours (`.git/pgdb/<env>/` or the state folder's, passwords, port)
/// and the server's (`data/`, `run/`), each created with an explicit mode. Returns
/// the cluster's lock, taken as soon as its folder exists.
fn prepare(run_as: &RunAs, paths: &Paths) -> Result<folder::ClusterLock> {
    let me = server::effective_uid();
    let root = paths
        .dir
        .parent()
        .ok_or_else(|| anyhow!("{}: has no parent folder", paths.dir.display()))?;
    folder::create_dirs(root, 0o755)?;
    if let RunAs::User { .. } = run_as {
        // Our own folders between `target/` and the cluster: let the server's user through.
        for dir in [Some(root), root.parent()].into_iter().flatten() {
            let meta = fs::symlink_metadata(dir)?;
            if meta.is_dir() && meta.uid() == me && meta.mode() & 0o001 == 0 {
                fs::set_permissions(
                    dir,
                    fs::Permissions::from_mode((meta.mode() & 0o7777) | 0o011),
                )
                .map_err(|e| anyhow!("cannot open {} to the server's user: {e}", dir.display()))?;
            }
        }
        run_as.check_reachable(root)?;
    }
    let dir_mode = if matches!(run_as, RunAs::Me) {
        0o700
    } else {
        0o711
    };
    folder::create_private_dir(&paths.dir, dir_mode, me)?;
    fs::set_permissions(&paths.dir, fs::Permissions::from_mode(dir_mode))
        .map_err(|e| anyhow!("cannot set the mode of {}: {e}", paths.dir.display()))?;
    let lock = folder::lock(&paths.dir)?;
    let (uid, gid) = run_as.owner();
    if folder::create_private_dir(&paths.run, 0o700, uid)? {
        std::os::unix::fs::lchown(&paths.run, Some(uid), Some(gid))?;
    }
    if !paths.initialized() {
        let fresh = folder::create_private_dir(&paths.data, 0o700, uid)?;
        if fresh {
            std::os::unix::fs::lchown(&paths.data, Some(uid), Some(gid))?;
        } else if fs::read_dir(&paths.data)?.next().is_some() {
            return Err(bad_input(format!(
                "{}: exists but holds no cluster (an interrupted first `up`?); remove it and run `up` again",
                paths.data.display()
            )));
        }
    }
    Ok(lock)
}

fn up(
    plan: &plan::Plan,
    env: &str,
    paths: &Paths,
    port: crate::flags::PortChoice,
    show_passwords: bool,
) -> Result<()> {
    let ordered = &plan.ordered;
    let run_as = RunAs::detect()?;
    let _lock = prepare(&run_as, paths)?;
    let tools = server::find_tools(paths)?;
    let passwords = passwords::load_or_make(&paths.passwords, ordered)?;
    if !paths.initialized() {
        server::initdb(&tools, &run_as, paths)?;
    }
    let major = paths
        .major_version()
        .ok_or_else(|| anyhow!("{}: no readable PG_VERSION", paths.data.display()))?;
    if let Some(notice) = sql::version_notice(major) {
        eprintln!("{notice}");
    }
    let port = port::start_on(&tools, &run_as, paths, port)?;
    let server = Server {
        tools: &tools,
        paths,
        port,
    };

    let before = server.databases()?;
    let sql = sql::apply_sql(ordered, &passwords, major)?;
    server.admin(&sql, "psql (creating roles and databases)")?;
    for warning in &plan.warnings {
        eprintln!("{warning}");
    }
    for w in ordered
        .iter()
        .filter(|w| !plan.cannot_log_in.contains(&w.key))
    {
        check_login(&server, w, &passwords[&w.secret_key])?;
    }

    outln!(
        "local-db {env}: PostgreSQL {major} on 127.0.0.1:{port}, data in {}",
        paths.data.display()
    );
    if ordered.is_empty() {
        outln!("  values-{env}.yaml holds no database entry the container would create");
    }
    let width = ordered.iter().map(|w| w.key.len()).max().unwrap_or(0);
    let mut lines: Vec<&cluster::Wanted> = ordered.iter().collect();
    lines.sort_by(|a, b| a.key.cmp(&b.key));
    for w in lines {
        let password = show_passwords.then(|| passwords[&w.secret_key].as_str());
        let state = if plan.cannot_log_in.contains(&w.key) {
            "cannot log in, as on the cluster: see the warning"
        } else if before.contains(&w.db) {
            "kept"
        } else {
            "created"
        };
        outln!(
            "  {:width$}  {}  ({state})",
            w.key,
            sql::connection_url(&w.user, password, port, &w.db)
        );
    }
    print_skipped(&plan.skipped, env);
    outln!(
        "passwords: {} (mode 0600, one KEY=PASSWORD line per secret key, applied at every `up`; \
         also `--show-passwords`)",
        paths.passwords.display()
    );
    outln!(
        "stop it with `{} local-db down --env {}`",
        crate::flags::program_name(),
        crate::shell::quote(env)
    );
    Ok(())
}

/// Logs in as `w`'s role to its database with `password`, as its service would.
fn check_login(server: &Server, w: &cluster::Wanted, password: &str) -> Result<()> {
    let got = server
        .login(
            &w.user,
            &w.db,
            password,
            "SELECT current_user || ' ' || current_database();\n",
        )
        .map_err(|e| {
            anyhow!(
                "role `{}` cannot log in to database `{}` with its password: {e}",
                w.user,
                w.db
            )
        })?;
    let expected = format!("{} {}", w.user, w.db);
    if got != expected {
        return Err(anyhow!(
            "role `{}` logged in to `{}` but the server says `{got}`",
            w.user,
            w.db
        ));
    }
    Ok(())
}

fn down(paths: &Paths) -> Result<()> {
    if !paths.initialized() {
        outln!(
            "local-db {}: no cluster in {}; nothing to stop",
            paths.env,
            paths.dir.display()
        );
        return Ok(());
    }
    let _lock = folder::lock(&paths.dir)?;
    if server::server_pid(paths).is_none() {
        if folder::exists(&paths.pid_file()) {
            outln!(
                "local-db {}: not running ({} is stale: the process it names is not this \
                 cluster's server, and was left alone)",
                paths.env,
                paths.pid_file().display()
            );
        } else {
            outln!("local-db {}: not running", paths.env);
        }
        return Ok(());
    }
    let tools = server::find_tools(paths)?;
    let run_as = RunAs::detect()?;
    server::stop(&tools, &run_as, paths)?;
    outln!(
        "local-db {}: stopped; `up` starts it again with its data",
        paths.env
    );
    Ok(())
}

/// `local-db status`: whether the cluster exists and runs, and each database the
/// values file asks for with whether it is there.
fn status(dep: &Deployment, env: &str, paths: &Paths) -> Result<()> {
    let outcome = outcome(dep, env)?;
    if !paths.initialized() {
        outln!(
            "local-db {env}: not created ({} holds no cluster); `{} local-db up --env {}` creates it",
            paths.dir.display(),
            crate::flags::program_name(),
            crate::shell::quote(env)
        );
        print_asked_for(dep, env, &outcome);
        return Ok(());
    }
    if server::server_pid(paths).is_none() {
        let port_text = server::saved_port(paths).map_or("unknown".to_string(), |p| p.to_string());
        outln!(
            "local-db {env}: stopped (last port {port_text}), data in {}",
            paths.data.display()
        );
        print_asked_for(dep, env, &outcome);
        outln!(
            "`{} local-db up --env {}` starts it",
            crate::flags::program_name(),
            crate::shell::quote(env)
        );
        return Ok(());
    }
    status_running(dep, env, paths, &outcome)
}

/// The databases the values file asks for, without a server to ask whether they
/// exist, then the entries skipped and the passwords nothing makes.
fn print_asked_for(dep: &Deployment, env: &str, outcome: &Outcome) {
    for w in &outcome.wanted {
        outln!(
            "  {}: asked for (role {}, database {})",
            w.key,
            w.user,
            w.db
        );
    }
    print_skipped(&outcome.skipped, env);
    print_missing(dep, outcome);
}

/// `status` of a running server: each database asked for, present or missing,
/// and the databases the server holds that nothing asks for.
fn status_running(dep: &Deployment, env: &str, paths: &Paths, outcome: &Outcome) -> Result<()> {
    let port = server::running_port(paths).ok_or_else(|| {
        anyhow!(
            "{}: the server runs but its port is unknown",
            paths.data.display()
        )
    })?;
    let tools = server::find_tools(paths)?;
    let server = Server {
        tools: &tools,
        paths,
        port,
    };
    let present = server.databases()?;
    outln!(
        "local-db {env}: running on 127.0.0.1:{port}, data in {}",
        paths.data.display()
    );
    let mut missing = false;
    for w in &outcome.wanted {
        if present.contains(&w.db) {
            outln!(
                "  {}: present  {}",
                w.key,
                sql::connection_url(&w.user, None, port, &w.db)
            );
        } else {
            missing = true;
            outln!("  {}: missing (role {}, database {})", w.key, w.user, w.db);
        }
    }
    print_skipped(&outcome.skipped, env);
    print_missing(dep, outcome);
    for db in present
        .iter()
        .filter(|db| !outcome.wanted.iter().any(|w| &w.db == *db))
    {
        outln!("  {db}: present, but the container would not create it for values-{env}.yaml");
    }
    if missing {
        outln!(
            "`{} local-db up --env {}` adds what is missing",
            crate::flags::program_name(),
            crate::shell::quote(env)
        );
    }
    outln!("passwords: {}", paths.passwords.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names() {
        assert!(check_env_name("idfdev").is_ok());
        assert!(check_env_name("usdf-dev.1").is_ok());
        for bad in ["", "..", ".hidden", "a/b", "a b"] {
            assert!(check_env_name(bad).is_err(), "{bad:?}");
        }
    }
}
