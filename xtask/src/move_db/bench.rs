//! `bench --move-copy MB`: the throughput of a move's copy between two real local
//! PostgreSQL servers. Starts two throwaway clusters under `target/xtask/bench/move/`
//! (as `postgres` through runuser when we are root), fills the old one with about MB
//! megabytes (rows of random text, times and numbers with an index, a sequence, a large object), then times the
//! commands of the runbook's `copy` and `verify` phases: `pg_dump -Fc` to a file,
//! its sha256, `pg_restore --no-owner --role --exit-on-error --single-transaction`,
//! and the state query on both servers. Prints each step's time and the copy's
//! throughput in MB/s of database size.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};

use crate::config::workspace_root;

/// A program of PostgreSQL: on PATH, else under Debian's `/usr/lib/postgresql/*/bin`.
fn tool(name: &str) -> Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    let mut debian: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
        .map(|e| {
            e.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    debian.sort();
    dirs.extend(debian.into_iter().rev());
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            anyhow!("{name} is not installed: the benchmark needs PostgreSQL's programs")
        })
}

fn as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// A server program, as `postgres` when we are root.
fn server_cmd(program: &Path) -> Command {
    if as_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

fn run(mut cmd: Command, what: &str) -> Result<Output> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        return Err(anyhow!(
            "{what} failed: {}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        ));
    }
    Ok(out)
}

struct Cluster {
    dir: PathBuf,
    port: u16,
}

impl Cluster {
    fn start(dir: PathBuf) -> Result<Cluster> {
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir)?;
        if as_root() {
            let mut chown = Command::new("chown");
            chown.args(["-R", "postgres:postgres"]).arg(&dir);
            run(chown, "chown")?;
        }
        let data = dir.join("data");
        let mut initdb = server_cmd(&tool("initdb")?);
        initdb
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "--no-locale",
                "-E",
                "UTF8",
            ])
            .current_dir("/");
        run(initdb, "initdb")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let conf = format!(
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n\
             shared_buffers = '128MB'\nmax_wal_size = '2GB'\n"
        );
        let mut text = fs::read_to_string(data.join("postgresql.conf"))?;
        text.push_str(&conf);
        fs::write(data.join("postgresql.conf"), text)?;
        let mut start = server_cmd(&tool("pg_ctl")?);
        start
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.join("log"))
            .args(["-w", "-t", "60", "start"])
            .current_dir("/");
        run(start, "pg_ctl start")?;
        Ok(Cluster { dir, port })
    }

    /// A client program against this server as the superuser.
    fn client(&self, program: &str) -> Result<Command> {
        let mut cmd = Command::new(tool(program)?);
        cmd.env("PGHOST", "127.0.0.1")
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", "postgres");
        Ok(cmd)
    }

    fn sql(&self, db: &str, sql: &str) -> Result<String> {
        let mut cmd = self.client("psql")?;
        cmd.args([
            "-X",
            "-q",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            db,
            "-c",
            sql,
        ]);
        let out = run(cmd, "psql")?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Ok(pg_ctl) = tool("pg_ctl") {
            let mut stop = server_cmd(&pg_ctl);
            stop.arg("-D")
                .arg(self.dir.join("data"))
                .args(["-m", "fast", "-w", "stop"])
                .current_dir("/");
            let _ = run(stop, "pg_ctl stop");
        }
    }
}

fn timed<T>(label: &str, f: impl FnOnce() -> Result<T>) -> Result<(T, Duration)> {
    let start = Instant::now();
    let value = f()?;
    let took = start.elapsed();
    outln!("  {label:<34} {:>8.2} s", took.as_secs_f64());
    Ok((value, took))
}

/// Fills the old server's `benchdb`, owned by `bench`, with about `mb` megabytes.
fn fill(old: &Cluster, mb: u64) -> Result<()> {
    old.sql("postgres", "CREATE ROLE bench LOGIN")?;
    old.sql("postgres", "CREATE DATABASE benchdb OWNER bench")?;
    let rows = mb * 1024 * 1024 / 330;
    old.sql(
        "benchdb",
        &format!(
            "SET ROLE bench;
             CREATE TABLE event (id bigserial PRIMARY KEY, at timestamptz NOT NULL, kind int NOT NULL,
                                 score double precision, body text);
             INSERT INTO event (at, kind, score, body)
               SELECT now() - i * interval '1 second', i % 17, random(), md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(i::text) || md5(random()::text) || md5(random()::text)
               FROM generate_series(1, {rows}) AS i;
             CREATE INDEX ON event (at);
             CREATE SEQUENCE ticket; SELECT setval('ticket', 4242);
             SELECT lo_from_bytea(0, convert_to(repeat('large object ', 100000), 'UTF8'));"
        ),
    )?;
    Ok(())
}

/// verify's state query (from the helpers) run on each server, as it prints.
fn state_query(dir: &Path, servers: [&Cluster; 2]) -> Result<Vec<Vec<u8>>> {
    let helpers = include_str!("../../../templates/runbook-move-helpers.sh");
    let query = helpers
        .split("MOVE_STATE_SQL=\"$(cat <<'SQL'\n")
        .nth(1)
        .and_then(|rest| rest.split("\nSQL\n").next())
        .ok_or_else(|| anyhow!("internal error: the state query is not in the helpers"))?;
    let file = dir.join("state.sql");
    fs::write(&file, query)?;
    let mut states = Vec::new();
    for server in servers {
        let mut cmd = server.client("psql")?;
        cmd.args([
            "-X",
            "-q",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            "benchdb",
            "-f",
        ])
        .arg(&file);
        states.push(run(cmd, "the state query")?.stdout);
    }
    Ok(states)
}

/// The benchmark (see the module's documentation).
pub fn move_copy(mb: u64) -> Result<()> {
    let dir = workspace_root().join("target/xtask/bench/move");
    let old = Cluster::start(dir.join("old"))?;
    let new = Cluster::start(dir.join("new"))?;
    outln!("Filling a database of about {mb} MB on the old server...");
    fill(&old, mb)?;
    let bytes: u64 = old
        .sql("benchdb", "SELECT pg_database_size('benchdb')")?
        .parse()
        .unwrap_or(0);
    let size_mb = bytes as f64 / 1_048_576.0;
    outln!("Database size: {size_mb:.0} MB. The copy phase's commands:");
    let dump = dir.join("benchdb.dump");
    let (_, t_dump) = timed("pg_dump -Fc", || {
        let mut cmd = old.client("pg_dump")?;
        cmd.args(["-Fc", "-d", "benchdb", "-f"]).arg(&dump);
        run(cmd, "pg_dump")
    })?;
    let (_, t_sum) = timed("sha256sum", || {
        let mut cmd = Command::new("sha256sum");
        cmd.arg(&dump);
        run(cmd, "sha256sum")
    })?;
    new.sql("postgres", "CREATE ROLE bench LOGIN")?;
    new.sql("postgres", "CREATE DATABASE benchdb OWNER bench")?;
    let (_, t_restore) = timed("pg_restore --single-transaction", || {
        let mut cmd = new.client("pg_restore")?;
        cmd.args([
            "--no-owner",
            "--role=bench",
            "--exit-on-error",
            "--single-transaction",
        ])
        .args(["-d", "benchdb"])
        .arg(&dump);
        run(cmd, "pg_restore")
    })?;
    let (states, t_verify) = timed("verify's state query, both servers", || {
        state_query(&dir, [&old, &new])
    })?;
    if states[0] != states[1] || states[0].is_empty() {
        return Err(anyhow!(
            "the two servers differ after the copy: the benchmark is wrong"
        ));
    }
    let dump_mb = fs::metadata(&dump).map(|m| m.len()).unwrap_or(0) as f64 / 1_048_576.0;
    let copy = t_dump + t_sum + t_restore;
    outln!(
        "Copy: {size_mb:.0} MB database ({dump_mb:.0} MB dump) in {:.1} s: {:.1} MB/s; with verify {:.1} s.",
        copy.as_secs_f64(),
        size_mb / copy.as_secs_f64(),
        (copy + t_verify).as_secs_f64()
    );
    let _ = fs::remove_file(&dump);
    Ok(())
}
