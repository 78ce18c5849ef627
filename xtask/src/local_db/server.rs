//! Server control: finding PostgreSQL's programs, running them (as `postgres` when
//! we are root), starting, stopping, and talking SQL to the server.
//!
//! Every program runs through `xshell`, quietly, with the status checked here.
//! Passwords travel only in a child's environment (`PGPASSWORD`) or on its
//! standard input, never in its arguments. A `postmaster.pid` counts as this
//! cluster's running server only when the process it names has the cluster's data
//! folder as its current folder (the server's own), so a stale file naming some
//! other live process is never signalled.

use anyhow::{anyhow, Context, Result};
use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use xshell::{cmd, Cmd, Shell};

use super::folder::{self, Paths};
use crate::error::bad_input;

/// The system user that runs the server when we are root.
pub const SERVER_USER: &str = "postgres";
/// The longest Unix socket path Linux accepts (`sun_path` less its final NUL).
const MAX_SOCKET_PATH: usize = 107;

pub struct Tools {
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
                    let major = e.file_name().to_str()?.split('.').next()?.parse().ok()?;
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
pub fn find_tools(paths: &Paths) -> Result<Tools> {
    let mut dirs = tool_dirs(std::env::var_os("PATH"));
    if let Some(major) = paths.major_version() {
        dirs.insert(
            0,
            Path::new("/usr/lib/postgresql")
                .join(major.to_string())
                .join("bin"),
        );
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
pub enum RunAs {
    /// The invoking user.
    Me,
    /// The `postgres` system user, when we are root.
    User { uid: u32, gid: u32, via: Via },
}

pub enum Via {
    Runuser(PathBuf),
    Setpriv(PathBuf),
}

/// The effective user id.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// A shell whose commands start in `/`: the current folder may be one the server's
/// user cannot enter, and PostgreSQL's programs refuse to run there.
fn shell() -> Result<Shell> {
    let sh = Shell::new().context("cannot read the current folder and environment")?;
    sh.change_dir("/");
    Ok(sh)
}

/// Runs a command to its end, quietly; its status is the caller's to judge.
fn output(cmd: Cmd<'_>, what: &str) -> Result<Output> {
    cmd.quiet()
        .ignore_status()
        .output()
        .with_context(|| format!("cannot run {what}"))
}

/// Runs a command that must succeed; a failure shows its output.
fn output_ok(cmd: Cmd<'_>, what: &str) -> Result<Output> {
    let out = output(cmd, what)?;
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

impl RunAs {
    pub fn detect() -> Result<RunAs> {
        if effective_uid() != 0 {
            return Ok(RunAs::Me);
        }
        let sh = shell()?;
        let id = |flag: &str| -> Option<u32> {
            let out = output(cmd!(sh, "id {flag} {SERVER_USER}"), "id").ok()?;
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
        Ok(RunAs::User { uid, gid, via })
    }

    /// `program` run as the server's user.
    fn cmd<'a>(&self, sh: &'a Shell, program: &Path) -> Cmd<'a> {
        match self {
            RunAs::Me => sh.cmd(program),
            RunAs::User {
                via: Via::Runuser(runuser),
                ..
            } => cmd!(sh, "{runuser} -u {SERVER_USER} -- {program}"),
            RunAs::User {
                via: Via::Setpriv(setpriv),
                ..
            } => {
                let reuid = format!("--reuid={SERVER_USER}");
                let regid = format!("--regid={SERVER_USER}");
                cmd!(sh, "{setpriv} {reuid} {regid} --init-groups -- {program}")
            }
        }
    }

    /// The user and group id that own the server's files.
    pub fn owner(&self) -> (u32, u32) {
        match self {
            RunAs::Me => (effective_uid(), unsafe_getegid()),
            RunAs::User { uid, gid, .. } => (*uid, *gid),
        }
    }

    /// The owner to hand a just-created file to, when it is not us.
    pub fn handover(&self) -> Option<(u32, u32)> {
        match self {
            RunAs::Me => None,
            RunAs::User { uid, gid, .. } => Some((*uid, *gid)),
        }
    }

    /// As root, every folder above the cluster must let the server's user through.
    pub fn check_reachable(&self, dir: &Path) -> Result<()> {
        use std::os::unix::fs::MetadataExt;
        let RunAs::User { uid, gid, .. } = self else {
            return Ok(());
        };
        let blocking: Vec<(PathBuf, u32)> = dir
            .ancestors()
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
            "the `{SERVER_USER}` user that runs the server (we are root) cannot enter {}; \
             allow it with `chmod o+x {}`, or keep the deployment checkout (whose .git/pgdb/ holds the cluster) \
             in a folder it can reach",
            listed.join(", "),
            words.join(" ")
        )))
    }
}

fn unsafe_getegid() -> u32 {
    // SAFETY: getegid has no preconditions and cannot fail.
    unsafe { libc::getegid() }
}

/// Whether a user may pass through a folder with these mode and owners
/// (supplementary groups aside).
pub fn can_traverse(mode: u32, owner: u32, group: u32, uid: u32, gid: u32) -> bool {
    if owner == uid {
        mode & 0o100 != 0
    } else if group == gid {
        mode & 0o010 != 0
    } else {
        mode & 0o001 != 0
    }
}

/// The last lines of the server's log, for errors.
fn log_tail(paths: &Paths) -> String {
    let text = folder::read_no_follow(&paths.log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(10)..].join("\n  ");
    if tail.is_empty() {
        String::new()
    } else {
        format!("\n  {} ends with:\n  {tail}", paths.log.display())
    }
}

/// The cluster's server, if it runs: the pid in `postmaster.pid`, provided that
/// process's current folder is our data folder.
pub fn server_pid(paths: &Paths) -> Option<u32> {
    let text = folder::read_no_follow(&paths.pid_file()).ok()?;
    let pid: u32 = text.lines().next()?.trim().parse().ok()?;
    if pid == 0 {
        return None;
    }
    let cwd = fs::read_link(format!("/proc/{pid}/cwd")).ok()?;
    let ours = fs::canonicalize(&paths.data).ok()?;
    (cwd == ours).then_some(pid)
}

/// The port a running server listens on (line 4 of `postmaster.pid`).
pub fn running_port(paths: &Paths) -> Option<u16> {
    let text = folder::read_no_follow(&paths.pid_file()).ok()?;
    text.lines().nth(3)?.trim().parse().ok()
}

/// The port of the last successful start.
pub fn saved_port(paths: &Paths) -> Option<u16> {
    folder::read_no_follow(&paths.port_file)
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The locale the cluster's image initialises with (`en_US.utf8`), as this machine
/// spells it, when `locale -a` lists it.
pub const CLUSTER_LOCALE: &str = "en_US.UTF-8";
/// The locale used when the machine lacks [`CLUSTER_LOCALE`].
pub const FALLBACK_LOCALE: &str = "C.UTF-8";

/// [`CLUSTER_LOCALE`] when `locale -a`'s output lists it (in any spelling:
/// `en_US.utf8`, `en_US.UTF-8`), else `None`.
pub fn cluster_locale_in(locale_a: &str) -> Option<&'static str> {
    let norm = |name: &str| name.trim().to_ascii_lowercase().replace('-', "");
    locale_a
        .lines()
        .any(|l| norm(l) == norm(CLUSTER_LOCALE))
        .then_some(CLUSTER_LOCALE)
}

/// The locale for a new cluster, and a one-line notice when it is not the cluster's.
fn choose_locale(sh: &Shell) -> (&'static str, Option<String>) {
    let listed = output(cmd!(sh, "locale -a"), "locale -a")
        .ok()
        .filter(|out| out.status.success())
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
        .unwrap_or_default();
    match cluster_locale_in(&listed) {
        Some(locale) => (locale, None),
        None => (
            FALLBACK_LOCALE,
            Some(format!(
                "note: this machine has no {CLUSTER_LOCALE} locale (`locale -a`), which the cluster's image \
                 uses; the local cluster sorts text by {FALLBACK_LOCALE} (byte order) instead"
            )),
        ),
    }
}

pub fn initdb(tools: &Tools, run_as: &RunAs, paths: &Paths) -> Result<()> {
    eprintln!("creating the cluster in {}", paths.data.display());
    let sh = shell()?;
    let (locale, notice) = choose_locale(&sh);
    if let Some(notice) = notice {
        eprintln!("{notice}");
    }
    let locale = format!("--locale={locale}");
    let data = &paths.data;
    let cmd = run_as.cmd(&sh, &tools.initdb).args([
        "-D".as_ref(),
        data.as_os_str(),
        "--username".as_ref(),
        SERVER_USER.as_ref(),
        "--auth-local=trust".as_ref(),
        "--auth-host=md5".as_ref(),
        "--encoding=UTF8".as_ref(),
        locale.as_ref(),
        "--no-instructions".as_ref(),
    ]);
    output_ok(cmd, "initdb")?;
    Ok(())
}

/// Writes the settings file and makes `postgresql.conf` include it (again, should a
/// first `up` have been interrupted right after `initdb`), never through a link.
fn write_conf(run_as: &RunAs, paths: &Paths, port: u16) -> Result<()> {
    folder::append_line_once(
        &paths.data.join("postgresql.conf"),
        super::sql::INCLUDE_LINE,
        "# Port, address, socket folder and md5 passwords, written by `cargo xtask local-db up`.",
        run_as.owner().0,
    )?;
    let socket_dir = paths.run.to_str().ok_or_else(|| {
        bad_input(format!(
            "{}: the path is not UTF-8; keep the deployment checkout (or XDG_STATE_HOME) in another folder",
            paths.run.display()
        ))
    })?;
    let text = super::sql::conf_text(port, socket_dir).map_err(|e| {
        bad_input(format!(
            "{e:#}; keep the deployment checkout (or XDG_STATE_HOME) in another folder"
        ))
    })?;
    folder::replace_file(&paths.conf(), &text, 0o600, run_as.handover())
}

/// Starts the server on `port`. A failure quotes the server's log; the remembered
/// port changes only after a successful start.
pub fn start(tools: &Tools, run_as: &RunAs, paths: &Paths, port: u16) -> Result<()> {
    let socket = paths.socket(port);
    if socket.as_os_str().len() > MAX_SOCKET_PATH {
        return Err(bad_input(format!(
            "{}: the server's socket path is {} bytes, the system allows {MAX_SOCKET_PATH}; \
             keep the deployment checkout (or XDG_STATE_HOME) in a shorter folder",
            socket.display(),
            socket.as_os_str().len()
        )));
    }
    if folder::exists(&paths.pid_file()) && server_pid(paths).is_none() {
        eprintln!(
            "{}: names no server of this cluster (left by a crash); removing it",
            paths.pid_file().display()
        );
        fs::remove_file(paths.pid_file())
            .with_context(|| format!("cannot remove {}", paths.pid_file().display()))?;
    }
    write_conf(run_as, paths, port)?;
    let log = [OsStr::new("-l"), paths.log.as_os_str()];
    let out = pg_ctl(tools, run_as, paths, "start", &log)?;
    if !out.status.success() {
        return Err(bad_input(format!(
            "the server did not start on port {port}: {}{}\n\
             choose another port with `--port N` (or `--port 0` for a free one)",
            output_text(&out),
            log_tail(paths)
        )));
    }
    folder::write_private(&paths.port_file, &format!("{port}\n"))
}

/// Runs `pg_ctl ACTION -D DATA ARGS... -w -t 60 -s` as `run_as` (waiting up to a
/// minute, silently) and returns what it said.
fn pg_ctl(
    tools: &Tools,
    run_as: &RunAs,
    paths: &Paths,
    action: &str,
    args: &[&OsStr],
) -> Result<Output> {
    let sh = shell()?;
    let cmd = run_as
        .cmd(&sh, &tools.pg_ctl)
        .arg(action)
        .arg("-D")
        .arg(&paths.data)
        .args(args)
        .args(["-w", "-t", "60", "-s"]);
    output(cmd, &format!("pg_ctl {action}"))
}

pub fn stop(tools: &Tools, run_as: &RunAs, paths: &Paths) -> Result<()> {
    let out = pg_ctl(
        tools,
        run_as,
        paths,
        "stop",
        &["-m", "fast"].map(OsStr::new),
    )?;
    if !out.status.success() {
        return Err(anyhow!(
            "the server did not stop: {}{}",
            output_text(&out),
            log_tail(paths)
        ));
    }
    Ok(())
}

/// A running cluster.
pub struct Server<'a> {
    pub tools: &'a Tools,
    pub paths: &'a Paths,
    pub port: u16,
}

impl Server<'_> {
    /// `psql` with no inherited `PG*` variable that could redirect it.
    fn psql<'s>(&self, sh: &'s Shell) -> Cmd<'s> {
        let mut cmd = sh.cmd(&self.tools.psql);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("PG") {
                cmd = cmd.env_remove(key);
            }
        }
        cmd.args(["-X", "-q", "-A", "-t", "-w"])
            .env("PGCONNECT_TIMEOUT", "10")
            .env("PGPORT", self.port.to_string())
    }

    /// Runs SQL (psql's script, on standard input) as the superuser through the
    /// Unix socket; returns what it printed.
    pub fn admin(&self, sql: &str, what: &str) -> Result<String> {
        let sh = shell()?;
        let cmd = self
            .psql(&sh)
            .args(["-v", "ON_ERROR_STOP=1", "-f", "-"])
            .env("PGHOST", &self.paths.run)
            .env("PGUSER", SERVER_USER)
            .env("PGDATABASE", "postgres")
            .stdin(sql);
        let out = output_ok(cmd, what)?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Logs in over TCP as a role with its password (in the environment) and runs
    /// a query given on standard input.
    pub fn login(&self, user: &str, db: &str, password: &str, sql: &str) -> Result<String> {
        let sh = shell()?;
        let cmd = self
            .psql(&sh)
            .args(["-v", "ON_ERROR_STOP=1", "-f", "-"])
            .env("PGHOST", "127.0.0.1")
            .env("PGUSER", user)
            .env("PGDATABASE", db)
            .env("PGSSLMODE", "disable")
            .env("PGPASSWORD", password)
            .stdin(sql);
        let out = output(cmd, "psql")?;
        if !out.status.success() {
            return Err(anyhow!("{}", output_text(&out)));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// The databases the cluster holds, the server's own aside.
    pub fn databases(&self) -> Result<BTreeSet<String>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal() {
        assert!(can_traverse(0o755, 0, 0, 101, 104));
        assert!(!can_traverse(0o750, 0, 0, 101, 104));
        assert!(can_traverse(0o750, 0, 104, 101, 104));
        assert!(can_traverse(0o700, 101, 0, 101, 104));
        assert!(!can_traverse(0o077, 101, 0, 101, 104));
    }

    #[test]
    fn the_cluster_locale_in_any_spelling() {
        assert_eq!(
            cluster_locale_in("C\nC.utf8\nen_US.utf8\nPOSIX\n"),
            Some(CLUSTER_LOCALE)
        );
        assert_eq!(cluster_locale_in("en_US.UTF-8\n"), Some(CLUSTER_LOCALE));
        assert_eq!(cluster_locale_in("C\nC.utf8\nen_GB.utf8\nen_US\n"), None);
        assert_eq!(cluster_locale_in(""), None);
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
