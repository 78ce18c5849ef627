//! `local-db`: a real PostgreSQL on this machine holding the roles and databases
//! of one environment, for running a service against before anything is deployed.
//!
//! ```text
//! cargo xtask local-db up|down|status [--env ENV] [--port N] [--show-passwords]
//! ```
//!
//! Everything lives in `target/xtask/local-db/<env>/` (or under `$CARGO_TARGET_DIR`):
//!
//! | path | what |
//! |---|---|
//! | `data/` | the cluster (`initdb`), with `data/xtask.conf` holding port, address and socket folder |
//! | `passwords.env` | one `role=password` line per role, mode 0600, generated once and reused |
//! | `server.log` | the server's log |
//! | `.s.PGSQL.<port>` | the server's Unix socket, through which the superuser applies the SQL |
//!
//! The superuser `postgres` has no password: it may connect through the socket only
//! (the folder is mode 0700); every role logs in over TCP on 127.0.0.1 with
//! `scram-sha-256`. The SQL is what the postgres container applies for each values
//! entry (create the role, set its password, create the database, make the role its
//! owner), made idempotent and with quoted identifiers, and goes to `psql` on standard
//! input. Passwords reach child processes through `PGPASSWORD`, never their arguments.
//!
//! The server refuses to run as root, so as root `initdb` and `pg_ctl` run as the
//! `postgres` system user (through `runuser`, else `setpriv`), which then owns the
//! folder.

use anyhow::{anyhow, Context, Result};
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fs;
use std::io::Write as _;
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::config::Config;
use crate::deployment::Deployment;
use crate::error::bad_input;
use crate::flags::{self, LocalDbAction};
use crate::names::check_sql_identifier;

/// The name of the passwords file in an environment's folder.
const PASSWORDS_FILE: &str = "passwords.env";
/// The settings file the cluster's `postgresql.conf` includes.
const CONF_FILE: &str = "xtask.conf";
const INCLUDE_LINE: &str = "include = 'xtask.conf'";
/// The system user that runs the server when we are root.
const SERVER_USER: &str = "postgres";
/// The longest Unix socket path Linux accepts (`sun_path` less its final NUL).
const MAX_SOCKET_PATH: usize = 107;
/// Bytes of randomness in a generated password.
const PASSWORD_BYTES: usize = 32;

impl flags::LocalDb {
    pub fn run(self, config: Config) -> Result<()> {
        // `down` needs nothing from the deployment when the environment is known.
        if self.action == LocalDbAction::Down {
            if let Some(env) = self.env.clone().or_else(|| config.local_env.clone()) {
                check_env_name(&env)?;
                return down(&Paths::new(&env)?);
            }
        }
        let dep = Deployment::load(config)?;
        let env = choose_env(&dep, self.env.as_deref())?;
        let paths = Paths::new(&env)?;
        match self.action {
            LocalDbAction::Up => up(&dep, &env, &paths, self.port, self.show_passwords),
            LocalDbAction::Down => down(&paths),
            LocalDbAction::Status => status(&dep, &env, &paths),
        }
    }
}

// ---------------------------------------------------------------------------
// What the environment asks for

/// One database entry of a values file: the role and database the container makes.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Wanted {
    key: String,
    user: String,
    db: String,
}

/// `--env`, else `xtask.toml`'s `local_env`, else the first environment.
fn choose_env(dep: &Deployment, given: Option<&str>) -> Result<String> {
    let known = || {
        dep.envs
            .iter()
            .map(|e| e.env.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
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
        return Err(bad_input(format!(
            "unknown environment `{name}`: {} has no values-{name}.yaml; environments: {}",
            dep.layout.values_dir,
            known()
        )));
    }
    check_env_name(&name)?;
    Ok(name)
}

/// An environment's name becomes a folder name: refuse anything that could escape.
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

/// The entries of an environment's values file, validated as the container needs them.
fn wanted(dep: &Deployment, env: &str) -> Result<Vec<Wanted>> {
    let values = dep
        .env(env)
        .ok_or_else(|| bad_input(format!("unknown environment `{env}`")))?;
    let file = &values.env.values;
    let mut out = Vec::new();
    for entry in &values.parsed.entries {
        let at = |message: String| {
            bad_input(format!(
                "{file}:{}: {message}; see `cargo xtask check`",
                entry.line
            ))
        };
        if let Some(problem) = &entry.problem {
            return Err(at(format!("`{}`: {problem}", entry.key)));
        }
        let (Some(user), Some(db)) = (&entry.user, &entry.db) else {
            return Err(at(format!("`{}` lacks `user` or `db`", entry.key)));
        };
        check_sql_identifier("user", user).map_err(|e| at(format!("`{}`: {e}", entry.key)))?;
        check_sql_identifier("database", db).map_err(|e| at(format!("`{}`: {e}", entry.key)))?;
        out.push(Wanted {
            key: entry.key.clone(),
            user: user.clone(),
            db: db.clone(),
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Where things are

struct Paths {
    env: String,
    dir: PathBuf,
    data: PathBuf,
    passwords: PathBuf,
    log: PathBuf,
}

impl Paths {
    fn new(env: &str) -> Result<Paths> {
        let dir = target_dir()?.join("xtask").join("local-db").join(env);
        Ok(Paths {
            env: env.to_string(),
            data: dir.join("data"),
            passwords: dir.join(PASSWORDS_FILE),
            log: dir.join("server.log"),
            dir,
        })
    }

    fn socket(&self, port: u16) -> PathBuf {
        self.dir.join(format!(".s.PGSQL.{port}"))
    }

    fn conf(&self) -> PathBuf {
        self.data.join(CONF_FILE)
    }

    fn initialized(&self) -> bool {
        self.data.join("PG_VERSION").is_file()
    }
}

/// `$CARGO_TARGET_DIR` (relative to the current folder), else the workspace's `target/`.
fn target_dir() -> Result<PathBuf> {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                Ok(dir)
            } else {
                Ok(std::env::current_dir()
                    .context("cannot read the current folder")?
                    .join(dir))
            }
        }
        None => Ok(crate::config::workspace_root().join("target")),
    }
}

// ---------------------------------------------------------------------------
// The PostgreSQL programs and who runs them

struct Tools {
    initdb: PathBuf,
    pg_ctl: PathBuf,
    psql: PathBuf,
}

const TOOL_NAMES: [&str; 3] = ["initdb", "pg_ctl", "psql"];

/// Folders to look in: `PATH` in order, then Debian's `/usr/lib/postgresql/<major>/bin`,
/// newest major first.
fn tool_dirs(path_var: Option<OsString>) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = path_var
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    let mut debian: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .filter_map(|e| {
                    let major = e
                        .file_name()
                        .to_str()?
                        .split('.')
                        .next()?
                        .parse::<u32>()
                        .ok()?;
                    Some((major, e.path().join("bin")))
                })
                .collect()
        })
        .unwrap_or_default();
    debian.sort_by_key(|(major, _)| std::cmp::Reverse(*major));
    dirs.extend(debian.into_iter().map(|(_, dir)| dir));
    dirs
}

/// The first folder holding all three programs, so that they share one version;
/// Debian's folder of the cluster's own major version first, when it has one.
fn find_tools(paths: &Paths) -> Result<Tools> {
    let mut dirs = tool_dirs(std::env::var_os("PATH"));
    let cluster_major = fs::read_to_string(paths.data.join("PG_VERSION")).ok();
    if let Some(major) = cluster_major
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()))
    {
        dirs.insert(0, Path::new("/usr/lib/postgresql").join(major).join("bin"));
    }
    let has = |dir: &Path, name: &str| {
        fs::metadata(dir.join(name))
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if let Some(dir) = dirs
        .iter()
        .find(|dir| TOOL_NAMES.iter().all(|name| has(dir, name)))
    {
        return Ok(Tools {
            initdb: dir.join("initdb"),
            pg_ctl: dir.join("pg_ctl"),
            psql: dir.join("psql"),
        });
    }
    let missing: Vec<&str> = TOOL_NAMES
        .iter()
        .copied()
        .filter(|name| !dirs.iter().any(|dir| has(dir, name)))
        .collect();
    let what = if missing.is_empty() {
        "initdb, pg_ctl and psql are not all in one folder".to_string()
    } else {
        format!("cannot find {}", missing.join(", "))
    };
    Err(bad_input(format!(
        "{what} on PATH or under /usr/lib/postgresql/*/bin: local-db needs a PostgreSQL server \
         installed; on Debian or Ubuntu: `sudo apt-get install postgresql`"
    )))
}

/// Who runs `initdb` and `pg_ctl`.
enum RunAs {
    /// The invoking user.
    Me,
    /// The `postgres` system user, when we are root.
    User {
        name: String,
        uid: u32,
        gid: u32,
        via: Via,
    },
}

enum Via {
    Runuser(PathBuf),
    Setpriv(PathBuf),
}

impl RunAs {
    fn detect() -> Result<RunAs> {
        if effective_uid() != 0 {
            return Ok(RunAs::Me);
        }
        let id = |flag: &str| -> Option<u32> {
            let out = Command::new("id").args([flag, SERVER_USER]).output().ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
                .flatten()
        };
        let (Some(uid), Some(gid)) = (id("-u"), id("-g")) else {
            return Err(bad_input(format!(
                "running as root, but PostgreSQL refuses to run as root and there is no `{SERVER_USER}` \
                 system user to run it as; install Debian's `postgresql` package (it creates that user) \
                 or run as a normal user"
            )));
        };
        let find = |name: &str| {
            ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
                .iter()
                .map(|d| Path::new(d).join(name))
                .find(|p| p.is_file())
        };
        let via = match (find("runuser"), find("setpriv")) {
            (Some(runuser), _) => Via::Runuser(runuser),
            (None, Some(setpriv)) => Via::Setpriv(setpriv),
            (None, None) => {
                return Err(bad_input(format!(
                    "running as root: need `runuser` or `setpriv` (util-linux) to run the server as `{SERVER_USER}`"
                )))
            }
        };
        Ok(RunAs::User {
            name: SERVER_USER.to_string(),
            uid,
            gid,
            via,
        })
    }

    /// A command that runs `program` as the server's user. It starts in `/`: the
    /// current folder may be one that user cannot enter (a private home folder),
    /// and PostgreSQL's programs refuse to run there.
    fn command(&self, program: &Path) -> Command {
        let mut cmd = self.command_here(program);
        if !matches!(self, RunAs::Me) {
            cmd.current_dir("/");
        }
        cmd
    }

    fn command_here(&self, program: &Path) -> Command {
        match self {
            RunAs::Me => Command::new(program),
            RunAs::User {
                name,
                via: Via::Runuser(runuser),
                ..
            } => {
                let mut cmd = Command::new(runuser);
                cmd.args(["-u", name, "--"]).arg(program);
                cmd
            }
            RunAs::User {
                name,
                via: Via::Setpriv(setpriv),
                ..
            } => {
                let mut cmd = Command::new(setpriv);
                cmd.arg(format!("--reuid={name}"))
                    .arg(format!("--regid={name}"))
                    .arg("--init-groups")
                    .arg("--")
                    .arg(program);
                cmd
            }
        }
    }

    /// Gives a file or folder we made to the server's user.
    fn give(&self, path: &Path) -> Result<()> {
        if let RunAs::User { uid, gid, name, .. } = self {
            std::os::unix::fs::chown(path, Some(*uid), Some(*gid))
                .with_context(|| format!("cannot give {} to the `{name}` user", path.display()))?;
        }
        Ok(())
    }

    /// As root, every folder above the cluster must let the server's user through.
    fn check_reachable(&self, dir: &Path) -> Result<()> {
        let RunAs::User { uid, gid, name, .. } = self else {
            return Ok(());
        };
        let blocking: Vec<(PathBuf, u32)> = dir
            .ancestors()
            .skip(1)
            .filter_map(|ancestor| Some((ancestor, fs::metadata(ancestor).ok()?)))
            .filter(|(_, meta)| !can_traverse(meta.mode(), meta.uid(), meta.gid(), *uid, *gid))
            .map(|(ancestor, meta)| (ancestor.to_path_buf(), meta.mode() & 0o7777))
            .collect();
        if blocking.is_empty() {
            return Ok(());
        }
        let listed: Vec<String> = blocking
            .iter()
            .map(|(d, mode)| format!("{} (mode {mode:o})", d.display()))
            .collect();
        let words: Vec<String> = blocking
            .iter()
            .map(|(d, _)| crate::shell::quote(&d.display().to_string()))
            .collect();
        Err(bad_input(format!(
            "the `{name}` user that runs the server (we are root) cannot enter {}; \
             allow it with `chmod o+x {}`, or set CARGO_TARGET_DIR to a folder it can reach",
            listed.join(", "),
            words.join(" ")
        )))
    }
}

/// Whether a user may pass through a folder with these mode and owners
/// (supplementary groups aside).
fn can_traverse(mode: u32, owner: u32, group: u32, uid: u32, gid: u32) -> bool {
    if owner == uid {
        mode & 0o100 != 0
    } else if group == gid {
        mode & 0o010 != 0
    } else {
        mode & 0o001 != 0
    }
}

/// The effective user id.
fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

// ---------------------------------------------------------------------------
// Running programs

/// Runs a command to the end; a failure shows its output.
fn run(cmd: &mut Command, what: &str, stdin: Option<&str>) -> Result<Output> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd
        .spawn()
        .with_context(|| format!("cannot start {what}"))?;
    if let Some(input) = stdin {
        let mut pipe = child
            .stdin
            .take()
            .ok_or_else(|| anyhow!("no standard input for {what}"))?;
        pipe.write_all(input.as_bytes())
            .with_context(|| format!("cannot write to {what}"))?;
    }
    let out = child
        .wait_with_output()
        .with_context(|| format!("cannot wait for {what}"))?;
    Ok(out)
}

/// Runs a command that must succeed.
fn run_ok(cmd: &mut Command, what: &str, stdin: Option<&str>) -> Result<Output> {
    let out = run(cmd, what, stdin)?;
    if !out.status.success() {
        return Err(anyhow!(
            "{what} failed ({}): {}",
            out.status,
            output_text(&out)
        ));
    }
    Ok(out)
}

fn output_text(out: &Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    text.trim().to_string()
}

/// The last lines of the server's log, for errors.
fn log_tail(paths: &Paths) -> String {
    let text = fs::read_to_string(&paths.log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(15)..].join("\n  ");
    if tail.is_empty() {
        String::new()
    } else {
        format!("\n  {} ends with:\n  {tail}", paths.log.display())
    }
}

/// `psql` with a clean environment: no inherited `PG*` variable can redirect it.
fn psql(tools: &Tools) -> Command {
    let mut cmd = Command::new(&tools.psql);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PG") {
            cmd.env_remove(key);
        }
    }
    cmd.args(["-X", "-q", "-A", "-t", "-w", "-v", "ON_ERROR_STOP=1"])
        .env("PGCONNECT_TIMEOUT", "10");
    cmd
}

/// A running (or about to run) cluster.
struct Server<'a> {
    tools: &'a Tools,
    paths: &'a Paths,
    port: u16,
}

impl Server<'_> {
    /// Runs SQL as the superuser through the Unix socket; returns what it printed.
    fn admin(&self, sql: &str, what: &str) -> Result<String> {
        let mut cmd = psql(self.tools);
        cmd.args(["-f", "-"])
            .env("PGHOST", &self.paths.dir)
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", SERVER_USER)
            .env("PGDATABASE", "postgres");
        let out = run_ok(&mut cmd, what, Some(sql))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Logs in over TCP as a role with its password and runs a query.
    fn login(&self, user: &str, db: &str, password: &str, sql: &str) -> Result<String> {
        let mut cmd = psql(self.tools);
        cmd.args(["-c", sql])
            .env("PGHOST", "127.0.0.1")
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", user)
            .env("PGDATABASE", db)
            .env("PGSSLMODE", "disable")
            .env("PGPASSWORD", password);
        let out = run(&mut cmd, "psql", None)?;
        if !out.status.success() {
            return Err(anyhow!("{}", output_text(&out)));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// The databases the cluster holds, the server's own aside.
    fn databases(&self) -> Result<BTreeSet<String>> {
        let out = self.admin(
            "SELECT datname FROM pg_database WHERE NOT datistemplate AND datname <> 'postgres';\n",
            "psql (listing databases)",
        )?;
        Ok(out
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect())
    }
}

// ---------------------------------------------------------------------------
// The cluster's life

/// Whether the server of a cluster runs (`pg_ctl status`).
fn is_running(tools: &Tools, run_as: &RunAs, paths: &Paths) -> Result<bool> {
    if !paths.initialized() {
        return Ok(false);
    }
    let mut cmd = run_as.command(&tools.pg_ctl);
    cmd.arg("status")
        .arg("-D")
        .arg(&paths.data)
        .current_dir(&paths.dir);
    let out = run(&mut cmd, "pg_ctl status", None)?;
    match out.status.code() {
        Some(0) => Ok(true),
        Some(3) => Ok(false),
        _ => Err(anyhow!(
            "pg_ctl status -D {} failed: {}",
            paths.data.display(),
            output_text(&out)
        )),
    }
}

/// The port a running server listens on (line 4 of `postmaster.pid`).
fn running_port(paths: &Paths) -> Option<u16> {
    let text = fs::read_to_string(paths.data.join("postmaster.pid")).ok()?;
    text.lines().nth(3)?.trim().parse().ok()
}

/// The port the settings file names, if any.
fn saved_port(paths: &Paths) -> Option<u16> {
    conf_port(&fs::read_to_string(paths.conf()).ok()?)
}

fn port_is_free(port: u16) -> bool {
    TcpListener::bind(("127.0.0.1", port)).is_ok()
}

fn free_port() -> Result<u16> {
    let listener =
        TcpListener::bind(("127.0.0.1", 0)).context("cannot find a free port on 127.0.0.1")?;
    Ok(listener.local_addr()?.port())
}

/// The folder, owned by the server's user and private to it.
fn prepare_dir(run_as: &RunAs, paths: &Paths) -> Result<()> {
    fs::create_dir_all(&paths.dir)
        .with_context(|| format!("cannot create {}", paths.dir.display()))?;
    if let RunAs::User { .. } = run_as {
        // Our own folders between `target/` and the cluster: let the server's user through.
        for dir in [
            paths.dir.parent(),
            paths.dir.parent().and_then(Path::parent),
        ]
        .into_iter()
        .flatten()
        {
            let mode = fs::metadata(dir)?.mode();
            if mode & 0o001 == 0 {
                fs::set_permissions(dir, fs::Permissions::from_mode((mode & 0o7777) | 0o055))
                    .with_context(|| {
                        format!("cannot open {} to the server's user", dir.display())
                    })?;
            }
        }
        run_as.check_reachable(&paths.dir)?;
    }
    fs::set_permissions(&paths.dir, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot make {} private", paths.dir.display()))?;
    run_as.give(&paths.dir)
}

fn initdb(tools: &Tools, run_as: &RunAs, paths: &Paths) -> Result<()> {
    if paths.data.exists() {
        return Err(bad_input(format!(
            "{}: exists but holds no cluster (an interrupted first `up`?); remove it and run `up` again",
            paths.data.display()
        )));
    }
    eprintln!("creating the cluster in {}", paths.data.display());
    let mut cmd = run_as.command(&tools.initdb);
    cmd.arg("-D")
        .arg(&paths.data)
        .args([
            "--username",
            SERVER_USER,
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
        ])
        .args(["--encoding=UTF8", "--no-locale", "--no-instructions"])
        .current_dir(&paths.dir);
    run_ok(&mut cmd, "initdb", None)?;
    Ok(())
}

/// Writes the settings file and makes `postgresql.conf` include it (again, should a
/// first `up` have been interrupted right after `initdb`).
fn write_conf(run_as: &RunAs, paths: &Paths, port: u16) -> Result<()> {
    let conf = paths.data.join("postgresql.conf");
    let text =
        fs::read_to_string(&conf).with_context(|| format!("cannot read {}", conf.display()))?;
    if !text.lines().any(|l| l.trim() == INCLUDE_LINE) {
        let mut file = fs::OpenOptions::new()
            .append(true)
            .open(&conf)
            .with_context(|| format!("cannot write {}", conf.display()))?;
        writeln!(file, "\n# Port, address and socket folder, written by `cargo xtask local-db up`.\n{INCLUDE_LINE}")?;
    }
    let path = paths.conf();
    let text = conf_text(port, &paths.dir.to_string_lossy());
    fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    run_as.give(&path)
}

fn start(tools: &Tools, run_as: &RunAs, paths: &Paths, port: u16) -> Result<()> {
    let socket = paths.socket(port);
    if socket.as_os_str().len() > MAX_SOCKET_PATH {
        return Err(bad_input(format!(
            "{}: the server's socket path is {} bytes, the system allows {MAX_SOCKET_PATH}; \
             set CARGO_TARGET_DIR to a shorter folder",
            socket.display(),
            socket.as_os_str().len()
        )));
    }
    write_conf(run_as, paths, port)?;
    let mut cmd = run_as.command(&tools.pg_ctl);
    cmd.arg("start")
        .arg("-D")
        .arg(&paths.data)
        .arg("-l")
        .arg(&paths.log)
        .args(["-w", "-t", "60", "-s"])
        .current_dir(&paths.dir);
    let out = run(&mut cmd, "pg_ctl start", None)?;
    if !out.status.success() {
        return Err(anyhow!(
            "the server did not start: {}{}",
            output_text(&out),
            log_tail(paths)
        ));
    }
    Ok(())
}

fn stop(tools: &Tools, run_as: &RunAs, paths: &Paths) -> Result<()> {
    let mut cmd = run_as.command(&tools.pg_ctl);
    cmd.arg("stop")
        .arg("-D")
        .arg(&paths.data)
        .args(["-m", "fast", "-w", "-t", "60", "-s"])
        .current_dir(&paths.dir);
    let out = run(&mut cmd, "pg_ctl stop", None)?;
    if !out.status.success() {
        return Err(anyhow!(
            "the server did not stop: {}{}",
            output_text(&out),
            log_tail(paths)
        ));
    }
    Ok(())
}

fn up(
    dep: &Deployment,
    env: &str,
    paths: &Paths,
    port: Option<u16>,
    show_passwords: bool,
) -> Result<()> {
    let wanted = wanted(dep, env)?;
    let tools = find_tools(paths)?;
    let run_as = RunAs::detect()?;
    prepare_dir(&run_as, paths)?;
    let mut passwords = match fs::read_to_string(&paths.passwords) {
        Ok(text) => parse_passwords(&text)
            .map_err(|e| bad_input(format!("{}:{e}", paths.passwords.display())))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
        Err(e) => {
            return Err(bad_input(format!(
                "{}: cannot read: {e}",
                paths.passwords.display()
            )))
        }
    };
    let mut added = false;
    for w in &wanted {
        if !passwords.contains_key(&w.user) {
            passwords.insert(w.user.clone(), new_password()?);
            added = true;
        }
    }
    save_passwords(paths, &passwords, added)?;
    if !paths.initialized() {
        initdb(&tools, &run_as, paths)?;
    }
    let running = is_running(&tools, &run_as, paths)?;
    let current = if running {
        running_port(paths).or_else(|| saved_port(paths))
    } else {
        None
    };
    let port = match (running, current, port) {
        (true, Some(current), Some(asked)) if current != asked => {
            check_port_free(asked)?;
            eprintln!("moving the server from port {current} to {asked}");
            stop(&tools, &run_as, paths)?;
            start(&tools, &run_as, paths, asked)?;
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
            start(&tools, &run_as, paths, asked)?;
            asked
        }
        (false, _, None) => {
            let port = match saved_port(paths) {
                Some(saved) if port_is_free(saved) => saved,
                Some(saved) => {
                    let port = free_port()?;
                    eprintln!("port {saved} is taken now; using {port}");
                    port
                }
                None => free_port()?,
            };
            start(&tools, &run_as, paths, port)?;
            port
        }
    };
    let server = Server {
        tools: &tools,
        paths,
        port,
    };

    let before = server.databases()?;
    let sql = apply_sql(&wanted, &passwords)?;
    server.admin(&sql, "psql (creating roles and databases)")?;
    for w in &wanted {
        let password = &passwords[&w.user];
        let got = server
            .login(
                &w.user,
                &w.db,
                password,
                "SELECT current_user || ' ' || current_database()",
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

    println!(
        "local-db {env}: PostgreSQL on 127.0.0.1:{port}, data in {}",
        paths.data.display()
    );
    if wanted.is_empty() {
        println!("  values-{env}.yaml holds no database entries");
    }
    let width = wanted.iter().map(|w| w.key.len()).max().unwrap_or(0);
    for w in &wanted {
        let password = show_passwords.then(|| passwords[&w.user].as_str());
        let state = if before.contains(&w.db) {
            "kept"
        } else {
            "created"
        };
        println!(
            "  {:width$}  {}  ({state})",
            w.key,
            connection_url(&w.user, password, port, &w.db)
        );
    }
    println!(
        "passwords: {} (mode 0600, one ROLE=PASSWORD line per role; also `--show-passwords`)",
        paths.passwords.display()
    );
    println!(
        "stop it with `cargo xtask local-db down --env {}`",
        crate::shell::quote(env)
    );
    Ok(())
}

fn check_port_free(port: u16) -> Result<()> {
    if port_is_free(port) {
        Ok(())
    } else {
        Err(bad_input(format!(
            "port {port} on 127.0.0.1 is in use; choose another --port, or leave it out for a free one"
        )))
    }
}

fn down(paths: &Paths) -> Result<()> {
    if !paths.initialized() {
        println!(
            "local-db {}: no cluster in {}; nothing to stop",
            paths.env,
            paths.dir.display()
        );
        return Ok(());
    }
    let tools = find_tools(paths)?;
    let run_as = RunAs::detect()?;
    if !is_running(&tools, &run_as, paths)? {
        println!("local-db {}: not running", paths.env);
        return Ok(());
    }
    stop(&tools, &run_as, paths)?;
    println!(
        "local-db {}: stopped; `up` starts it again with its data",
        paths.env
    );
    Ok(())
}

fn status(dep: &Deployment, env: &str, paths: &Paths) -> Result<()> {
    let wanted = wanted(dep, env)?;
    if !paths.initialized() {
        println!(
            "local-db {env}: not created ({} holds no cluster); `cargo xtask local-db up --env {}` creates it",
            paths.dir.display(),
            crate::shell::quote(env)
        );
        for w in &wanted {
            println!(
                "  {}: asked for (role {}, database {})",
                w.key, w.user, w.db
            );
        }
        return Ok(());
    }
    let tools = find_tools(paths)?;
    let run_as = RunAs::detect()?;
    let running = is_running(&tools, &run_as, paths)?;
    let port = if running {
        running_port(paths)
    } else {
        saved_port(paths)
    };
    let port_text = port.map_or("unknown".to_string(), |p| p.to_string());
    if !running {
        println!(
            "local-db {env}: stopped (last port {port_text}), data in {}",
            paths.data.display()
        );
        for w in &wanted {
            println!(
                "  {}: asked for (role {}, database {})",
                w.key, w.user, w.db
            );
        }
        println!(
            "`cargo xtask local-db up --env {}` starts it",
            crate::shell::quote(env)
        );
        return Ok(());
    }
    let port = port.ok_or_else(|| {
        anyhow!(
            "{}: the server runs but its port is unknown",
            paths.data.display()
        )
    })?;
    let server = Server {
        tools: &tools,
        paths,
        port,
    };
    let present = server.databases()?;
    println!(
        "local-db {env}: running on 127.0.0.1:{port}, data in {}",
        paths.data.display()
    );
    let mut missing = false;
    for w in &wanted {
        if present.contains(&w.db) {
            println!(
                "  {}: present  {}",
                w.key,
                connection_url(&w.user, None, port, &w.db)
            );
        } else {
            missing = true;
            println!("  {}: missing (role {}, database {})", w.key, w.user, w.db);
        }
    }
    for db in present
        .iter()
        .filter(|db| !wanted.iter().any(|w| &w.db == *db))
    {
        println!("  {db}: present, but values-{env}.yaml does not ask for it");
    }
    if missing {
        println!(
            "`cargo xtask local-db up --env {}` adds what is missing",
            crate::shell::quote(env)
        );
    }
    println!("passwords: {}", paths.passwords.display());
    Ok(())
}

// ---------------------------------------------------------------------------
// Passwords

/// 32 bytes from the operating system's random source, as hex.
fn new_password() -> Result<String> {
    use rand::TryRngCore;
    let mut bytes = [0u8; PASSWORD_BYTES];
    rand::rngs::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| anyhow!("cannot read the operating system's random source: {e}"))?;
    Ok(hex::encode(bytes))
}

/// Parses `passwords.env`: `ROLE=PASSWORD` lines, blank lines and `#` comments.
/// An error reads `LINE: message`.
fn parse_passwords(text: &str) -> std::result::Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let (role, password) = line
            .split_once('=')
            .ok_or_else(|| format!("{number}: expected ROLE=PASSWORD, found `{line}`"))?;
        let role = role.trim();
        let role_ok = role.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && role
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !role_ok {
            return Err(format!("{number}: `{role}` is not a role name"));
        }
        if password.is_empty() || !password.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "{number}: the password of `{role}` must be printable ASCII without spaces; \
                 delete the line to have a new one generated"
            ));
        }
        if out.insert(role.to_string(), password.to_string()).is_some() {
            return Err(format!("{number}: `{role}` appears twice"));
        }
    }
    Ok(out)
}

fn format_passwords(passwords: &BTreeMap<String, String>) -> String {
    let mut text = String::from(
        "# The passwords of the local-db roles (cargo xtask local-db), one ROLE=PASSWORD per line.\n\
         # Generated once and reused by every `up`; delete a line to have a new one made.\n",
    );
    for (role, password) in passwords {
        text.push_str(&format!("{role}={password}\n"));
    }
    text
}

/// Writes the passwords file (mode 0600, through a rename) when something changed,
/// and keeps its mode 0600 in any case.
fn save_passwords(
    paths: &Paths,
    passwords: &BTreeMap<String, String>,
    changed: bool,
) -> Result<()> {
    let file = &paths.passwords;
    if changed || !file.exists() {
        let tmp = file.with_extension("env.tmp");
        let _ = fs::remove_file(&tmp);
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        out.write_all(format_passwords(passwords).as_bytes())
            .and_then(|()| out.sync_all())
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        fs::rename(&tmp, file).with_context(|| format!("cannot replace {}", file.display()))?;
    }
    let mode = fs::metadata(file)?.permissions().mode() & 0o777;
    if mode != 0o600 {
        eprintln!(
            "{}: mode was {mode:o}; made it 0600 (the owner alone may read it)",
            file.display()
        );
        fs::set_permissions(file, fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Pure text: SQL, settings, URLs

/// `"name"`, doubling any `"`.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `'text'`, doubling any `'` (the server's `standard_conforming_strings` is on).
fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The SQL the container applies, for psql: each role created if missing and given
/// its login password, each database created if missing and owned by its role.
fn apply_sql(wanted: &[Wanted], passwords: &BTreeMap<String, String>) -> Result<String> {
    let mut sql = String::new();
    let mut roles_done = BTreeSet::new();
    for w in wanted {
        check_sql_identifier("user", &w.user)?;
        check_sql_identifier("database", &w.db)?;
        if !roles_done.insert(w.user.as_str()) {
            continue;
        }
        let password = passwords
            .get(&w.user)
            .ok_or_else(|| anyhow!("no password for role `{}`", w.user))?;
        let create = format!("CREATE ROLE {}", quote_ident(&w.user));
        sql.push_str(&format!(
            "SELECT {} WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {})\\gexec\n",
            quote_literal(&create),
            quote_literal(&w.user)
        ));
        sql.push_str(&format!(
            "ALTER ROLE {} WITH LOGIN PASSWORD {};\n",
            quote_ident(&w.user),
            quote_literal(password)
        ));
    }
    for w in wanted {
        let create = format!("CREATE DATABASE {}", quote_ident(&w.db));
        sql.push_str(&format!(
            "SELECT {} WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = {})\\gexec\n",
            quote_literal(&create),
            quote_literal(&w.db)
        ));
        sql.push_str(&format!(
            "ALTER DATABASE {} OWNER TO {};\n",
            quote_ident(&w.db),
            quote_ident(&w.user)
        ));
    }
    Ok(sql)
}

/// The settings `postgresql.conf` includes.
fn conf_text(port: u16, socket_dir: &str) -> String {
    format!(
        "# Written by `cargo xtask local-db up`; rewritten by every start.\n\
         listen_addresses = '127.0.0.1'\n\
         port = {port}\n\
         unix_socket_directories = {}\n\
         unix_socket_permissions = 0700\n",
        quote_literal(socket_dir)
    )
}

/// The `port = N` of a settings file.
fn conf_port(text: &str) -> Option<u16> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        if key.trim() != "port" {
            return None;
        }
        value.split('#').next()?.trim().parse().ok()
    })
}

/// `postgresql://USER[:PASSWORD]@127.0.0.1:PORT/DB`, with the password percent-encoded.
fn connection_url(user: &str, password: Option<&str>, port: u16, db: &str) -> String {
    let userinfo = match password {
        Some(password) => format!("{}:{}", percent_encode(user), percent_encode(password)),
        None => percent_encode(user),
    };
    format!(
        "postgresql://{userinfo}@127.0.0.1:{port}/{}",
        percent_encode(db)
    )
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn want(key: &str, user: &str, db: &str) -> Wanted {
        Wanted {
            key: key.into(),
            user: user.into(),
            db: db.into(),
        }
    }

    #[test]
    fn sql_creates_each_role_once_and_each_database() {
        let wanted = [
            want("jupyterhub_db", "jovyan", "jupyterhub"),
            want("gafaelfawr_db", "gafaelfawr", "gafaelfawr"),
            want("lab_db", "jovyan", "lab"),
        ];
        let passwords: BTreeMap<String, String> = [("jovyan", "pw1"), ("gafaelfawr", "it's")]
            .iter()
            .map(|(r, p)| (r.to_string(), p.to_string()))
            .collect();
        let sql = apply_sql(&wanted, &passwords).unwrap();
        let expected = "\
SELECT 'CREATE ROLE \"jovyan\"' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'jovyan')\\gexec
ALTER ROLE \"jovyan\" WITH LOGIN PASSWORD 'pw1';
SELECT 'CREATE ROLE \"gafaelfawr\"' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'gafaelfawr')\\gexec
ALTER ROLE \"gafaelfawr\" WITH LOGIN PASSWORD 'it''s';
SELECT 'CREATE DATABASE \"jupyterhub\"' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'jupyterhub')\\gexec
ALTER DATABASE \"jupyterhub\" OWNER TO \"jovyan\";
SELECT 'CREATE DATABASE \"gafaelfawr\"' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'gafaelfawr')\\gexec
ALTER DATABASE \"gafaelfawr\" OWNER TO \"gafaelfawr\";
SELECT 'CREATE DATABASE \"lab\"' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'lab')\\gexec
ALTER DATABASE \"lab\" OWNER TO \"jovyan\";
";
        assert_eq!(sql, expected);
    }

    #[test]
    fn sql_refuses_bad_identifiers_and_missing_passwords() {
        let passwords: BTreeMap<String, String> = [("a".to_string(), "p".to_string())].into();
        for (user, db) in [
            ("a\"; DROP", "x"),
            ("a", "Upper"),
            ("select", "x"),
            ("a", "postgres"),
        ] {
            assert!(
                apply_sql(&[want("k_db", user, db)], &passwords).is_err(),
                "{user} {db}"
            );
        }
        let err = apply_sql(&[want("k_db", "b", "b")], &passwords)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no password for role `b`"), "{err}");
    }

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(quote_literal("it's"), "'it''s'");
    }

    #[test]
    fn passwords_round_trip() {
        let passwords: BTreeMap<String, String> = [("jovyan", "ab12"), ("gafaelfawr", "cd34")]
            .iter()
            .map(|(r, p)| (r.to_string(), p.to_string()))
            .collect();
        let text = format_passwords(&passwords);
        assert!(text.starts_with('#'));
        assert!(text.ends_with("gafaelfawr=cd34\njovyan=ab12\n"), "{text}");
        assert_eq!(parse_passwords(&text).unwrap(), passwords);
        assert_eq!(parse_passwords("\n# x\na_1=p=q\r\n").unwrap()["a_1"], "p=q");
    }

    #[test]
    fn passwords_file_errors_name_the_line() {
        for (text, expected) in [
            ("a=1\nnoequals\n", "2: expected ROLE=PASSWORD"),
            ("Bad=1\n", "1: `Bad` is not a role name"),
            ("a=\n", "1: the password of `a`"),
            ("a=has space\n", "1: the password of `a`"),
            ("a=1\na=2\n", "2: `a` appears twice"),
        ] {
            let message = parse_passwords(text).unwrap_err();
            assert!(message.starts_with(expected), "{text:?}: {message}");
        }
    }

    #[test]
    fn new_passwords_are_64_hex_digits_and_differ() {
        let a = new_password().unwrap();
        let b = new_password().unwrap();
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn urls() {
        assert_eq!(
            connection_url("jovyan", None, 5432, "jupyterhub"),
            "postgresql://jovyan@127.0.0.1:5432/jupyterhub"
        );
        assert_eq!(
            connection_url("a", Some("p@s/s:"), 1, "b"),
            "postgresql://a:p%40s%2Fs%3A@127.0.0.1:1/b"
        );
    }

    #[test]
    fn settings_round_trip() {
        let text = conf_text(54321, "/tmp/it's here");
        assert!(
            text.contains("unix_socket_directories = '/tmp/it''s here'\n"),
            "{text}"
        );
        assert!(text.contains("listen_addresses = '127.0.0.1'\n"));
        assert_eq!(conf_port(&text), Some(54321));
        assert_eq!(conf_port("# port = 1\nport=2 # x\n"), Some(2));
        assert_eq!(conf_port("listen_addresses = '*'\n"), None);
    }

    #[test]
    fn traversal() {
        assert!(can_traverse(0o755, 0, 0, 101, 104));
        assert!(!can_traverse(0o750, 0, 0, 101, 104));
        assert!(can_traverse(0o750, 0, 104, 101, 104));
        assert!(can_traverse(0o700, 101, 0, 101, 104));
        assert!(!can_traverse(0o077, 101, 0, 101, 104));
    }

    #[test]
    fn env_names() {
        assert!(check_env_name("idfdev").is_ok());
        assert!(check_env_name("usdf-dev.1").is_ok());
        for bad in ["", "..", ".hidden", "a/b", "a b"] {
            assert!(check_env_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tool_dirs_keep_path_order_first() {
        let dirs = tool_dirs(Some(OsString::from("/opt/pg/bin:/usr/bin")));
        assert_eq!(
            &dirs[..2],
            &[PathBuf::from("/opt/pg/bin"), PathBuf::from("/usr/bin")]
        );
    }
}
