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
//! container would skip, and applies the container's semantics whatever the local
//! version: md5 passwords, `public` writable by every role, passwords applied again
//! at every start (`sql`). The server listens on 127.0.0.1 only; the superuser has no
//! password and connects through a Unix socket in a folder private to the server.
//! Files: `folder`; server control: `server`; the passwords file: `passwords`.

mod cluster;
mod folder;
mod passwords;
mod server;
mod sql;

use anyhow::{anyhow, Result};
use std::fs;
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

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
                return down(&Paths::new(&checkout, &env)?);
            }
        }
        let dep = Deployment::load(config)?;
        let env = choose_env(&dep, self.env.as_deref())?;
        let paths = Paths::new(&dep.layout.phalanx, &env)?;
        match self.action {
            LocalDbAction::Up => up(&dep, &env, &paths, self.port, self.show_passwords),
            LocalDbAction::Down => down(&paths),
            LocalDbAction::Status => status(&dep, &env, &paths),
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

/// Prints the entries the container would skip.
fn print_skipped(outcome: &Outcome, env: &str) {
    for s in &outcome.skipped {
        outln!(
            "  {}: not created, the cluster's container skips it: {} (values-{env}.yaml:{})",
            s.key,
            s.reason,
            s.line
        );
    }
}

/// The cluster's folders: ours (`target/xtask/local-db/<cluster>/`, passwords, port)
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

/// Whether nothing listens on `port` of 127.0.0.1 (other bind failures, such as a
/// privileged port, are left for the server to report).
fn check_port_free(port: u16) -> Result<()> {
    match TcpListener::bind(("127.0.0.1", port)) {
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => Err(bad_input(format!(
            "port {port} on 127.0.0.1 is in use; choose another with `--port N` \
             (or `--port 0` for a free one)"
        ))),
        _ => Ok(()),
    }
}

fn free_port() -> Result<u16> {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .map_err(|e| anyhow!("cannot find a free port on 127.0.0.1: {e}"))?;
    Ok(listener.local_addr()?.port())
}

fn up(
    dep: &Deployment,
    env: &str,
    paths: &Paths,
    port: Option<u16>,
    show_passwords: bool,
) -> Result<()> {
    let outcome = outcome(dep, env)?;
    let wanted = &outcome.wanted;
    let run_as = RunAs::detect()?;
    let _lock = prepare(&run_as, paths)?;
    let tools = server::find_tools(paths)?;
    let passwords = passwords::load_or_make(&paths.passwords, wanted)?;
    if !paths.initialized() {
        server::initdb(&tools, &run_as, paths)?;
    }
    let major = paths
        .major_version()
        .ok_or_else(|| anyhow!("{}: no readable PG_VERSION", paths.data.display()))?;
    if let Some(notice) = sql::version_notice(major) {
        eprintln!("{notice}");
    }
    let asked = match port {
        Some(0) => Some(free_port()?),
        other => other,
    };
    let running = server::server_pid(paths).is_some();
    let current = if running {
        server::running_port(paths)
    } else {
        None
    };
    let port = match (running, current, asked) {
        (true, Some(current), Some(asked)) if current != asked => {
            check_port_free(asked)?;
            eprintln!("moving the server from port {current} to {asked}");
            server::stop(&tools, &run_as, paths)?;
            if let Err(failed) = server::start(&tools, &run_as, paths, asked) {
                let back = match server::start(&tools, &run_as, paths, current) {
                    Ok(()) => format!("it runs again on port {current}"),
                    Err(e) => format!("and it did not start again on port {current} either: {e:#}"),
                };
                return Err(failed.context(back));
            }
            asked
        }
        (true, Some(current), _) => current,
        (true, None, _) => {
            return Err(anyhow!(
                "{}: the server runs but its port is unknown",
                paths.data.display()
            ))
        }
        (false, _, Some(asked)) => {
            check_port_free(asked)?;
            server::start(&tools, &run_as, paths, asked)?;
            asked
        }
        (false, _, None) => {
            let port = match server::saved_port(paths) {
                Some(saved) if check_port_free(saved).is_ok() => saved,
                Some(saved) => {
                    let port = free_port()?;
                    eprintln!("port {saved} is taken now; using {port}");
                    port
                }
                None => free_port()?,
            };
            server::start(&tools, &run_as, paths, port)?;
            port
        }
    };
    let server = Server {
        tools: &tools,
        paths,
        port,
    };

    let before = server.databases()?;
    let sql = sql::apply_sql(wanted, &passwords, major)?;
    server.admin(&sql, "psql (creating roles and databases)")?;
    for w in wanted {
        let got = server
            .login(
                &w.user,
                &w.db,
                &passwords[&w.user],
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
    }

    outln!(
        "local-db {env}: PostgreSQL {major} on 127.0.0.1:{port}, data in {}",
        paths.data.display()
    );
    if wanted.is_empty() {
        outln!("  values-{env}.yaml holds no database entry the container would create");
    }
    let width = wanted.iter().map(|w| w.key.len()).max().unwrap_or(0);
    for w in wanted {
        let password = show_passwords.then(|| passwords[&w.user].as_str());
        let state = if before.contains(&w.db) {
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
    print_skipped(&outcome, env);
    outln!(
        "passwords: {} (mode 0600, one ROLE=PASSWORD line per role, applied at every `up`; \
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

fn status(dep: &Deployment, env: &str, paths: &Paths) -> Result<()> {
    let outcome = outcome(dep, env)?;
    let asked_for = || {
        for w in &outcome.wanted {
            outln!(
                "  {}: asked for (role {}, database {})",
                w.key,
                w.user,
                w.db
            );
        }
        print_skipped(&outcome, env);
    };
    if !paths.initialized() {
        outln!(
            "local-db {env}: not created ({} holds no cluster); `{} local-db up --env {}` creates it",
            paths.dir.display(),
            crate::flags::program_name(),
            crate::shell::quote(env)
        );
        asked_for();
        return Ok(());
    }
    let running = server::server_pid(paths).is_some();
    if !running {
        let port_text = server::saved_port(paths).map_or("unknown".to_string(), |p| p.to_string());
        outln!(
            "local-db {env}: stopped (last port {port_text}), data in {}",
            paths.data.display()
        );
        asked_for();
        outln!(
            "`{} local-db up --env {}` starts it",
            crate::flags::program_name(),
            crate::shell::quote(env)
        );
        return Ok(());
    }
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
    print_skipped(&outcome, env);
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

    #[test]
    fn a_bound_port_is_in_use() {
        let busy = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = busy.local_addr().unwrap().port();
        let err = check_port_free(port).unwrap_err().to_string();
        assert!(err.contains("in use") && err.contains("--port N"), "{err}");
        drop(busy);
    }
}
