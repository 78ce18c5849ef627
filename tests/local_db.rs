//! `local-db` against a real PostgreSQL server: the roles log in with the passwords
//! from the file, data survives `down` and `up`, a database added to the values file
//! appears on the next `up`, and a wrong password is refused. Nothing here is skipped
//! when the server is missing: `.ci/run` installs it.
//!
//! Each test owns a scratch copy of `tests/fixtures/local-db/` and its own
//! `CARGO_TARGET_DIR`, so the tests' clusters never meet; a [`Cluster`] guard stops
//! its server when the test ends, passed or failed.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{copy_tree, repo_args, root, scratch, text};

/// One test's deployment copy and cluster.
struct Cluster {
    scratch: PathBuf,
    target: PathBuf,
    env: String,
}

impl Cluster {
    fn new(name: &str, env: &str) -> Cluster {
        let scratch = scratch(name);
        copy_tree(&root().join("tests/fixtures/local-db"), &scratch);
        // As root the server runs as `postgres`, which must pass through every
        // folder above its cluster: open the ones the build made for us.
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let build_target = tmp.parent().unwrap_or(tmp);
        for dir in scratch.ancestors().filter(|d| d.starts_with(build_target)) {
            let mode = fs::metadata(dir).unwrap().permissions().mode();
            if mode & 0o001 == 0 {
                fs::set_permissions(dir, fs::Permissions::from_mode(mode | 0o011)).unwrap();
            }
        }
        // The cluster lives below the system's temporary folder: a short path keeps
        // the socket within the system's limit, and the `postgres` user can reach
        // it wherever the checkout is (even below a private home folder).
        let target =
            std::env::temp_dir().join(format!("xtask-local-db-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&target);
        Cluster {
            scratch,
            target,
            env: env.to_string(),
        }
    }

    /// Runs `cargo xtask local-db ACTION --env ENV ARGS` on this test's copy.
    fn local_db(&self, action: &str, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
        cmd.args(["local-db", action, "--env", &self.env])
            .args(args)
            .args(repo_args(&self.scratch))
            .current_dir(&self.scratch)
            .env("CARGO_TARGET_DIR", &self.target)
            .env("NO_COLOR", "1");
        cmd.output().expect("the xtask binary runs")
    }

    /// Like [`Cluster::local_db`], and the command must succeed.
    fn ok(&self, action: &str, args: &[&str]) -> String {
        let out = self.local_db(action, args);
        assert!(
            out.status.success(),
            "local-db {action} failed ({}):\n{}{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    fn dir(&self) -> PathBuf {
        self.target.join("xtask/local-db").join(&self.env)
    }

    fn passwords_file(&self) -> PathBuf {
        self.dir().join("passwords.env")
    }

    fn passwords(&self) -> BTreeMap<String, String> {
        let text = fs::read_to_string(self.passwords_file()).unwrap();
        text.lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|l| {
                let (role, password) = l.split_once('=').unwrap();
                (role.to_string(), password.to_string())
            })
            .collect()
    }

    fn values_file(&self) -> PathBuf {
        self.scratch.join(format!(
            "phalanx/services/postgres/values-{}.yaml",
            self.env
        ))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.local_db("down", &[]);
        // Should `down` itself be broken, stop the server by its pid (SIGINT: fast shutdown).
        if let Ok(pid) = fs::read_to_string(self.dir().join("data/postmaster.pid")) {
            if let Some(pid) = pid.lines().next() {
                let _ = Command::new("kill").args(["-INT", pid.trim()]).status();
            }
        }
        let _ = fs::remove_dir_all(&self.target);
    }
}

/// `psql` as the binary finds it: on PATH, else Debian's folders.
fn psql() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    let mut debian: Vec<PathBuf> = fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    debian.sort();
    debian.reverse();
    dirs.extend(debian);
    dirs.into_iter()
        .map(|d| d.join("psql"))
        .find(|p| p.is_file())
        .expect("psql is installed (`.ci/run` installs Debian's postgresql)")
}

/// Logs in over TCP as `user` with `password` and runs `sql`.
fn sql_as(port: u16, user: &str, db: &str, password: &str, sql: &str) -> Output {
    let mut cmd = Command::new(psql());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PG") {
            cmd.env_remove(key);
        }
    }
    cmd.args([
        "-X",
        "-q",
        "-A",
        "-t",
        "-w",
        "-v",
        "ON_ERROR_STOP=1",
        "-c",
        sql,
    ])
    .env("PGHOST", "127.0.0.1")
    .env("PGPORT", port.to_string())
    .env("PGUSER", user)
    .env("PGDATABASE", db)
    .env("PGSSLMODE", "disable")
    .env("PGCONNECT_TIMEOUT", "10")
    .env("PGPASSWORD", password);
    cmd.output().expect("psql runs")
}

/// Like [`sql_as`], and the query must succeed; returns what it printed.
fn sql_ok(port: u16, user: &str, db: &str, password: &str, sql: &str) -> String {
    let out = sql_as(port, user, db, password, sql);
    assert!(
        out.status.success(),
        "{user}@{db}: `{sql}` failed: {}",
        text(&out.stderr)
    );
    text(&out.stdout).trim().to_string()
}

/// The port in `up`'s first line (`... on 127.0.0.1:PORT, ...`).
fn port_of(up_output: &str) -> u16 {
    let rest = up_output
        .split("127.0.0.1:")
        .nth(1)
        .expect("up prints the address");
    rest.chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

#[test]
fn up_down_up_keeps_data_and_adds_new_databases() {
    let cluster = Cluster::new("ldb_life", "dev");
    let out = cluster.ok("up", &[]);
    let port = port_of(&out);
    assert!(
        out.contains(&format!("postgresql://explorer@127.0.0.1:{port}/notebook")),
        "{out}"
    );
    assert!(
        out.contains(&format!("postgresql://ledger@127.0.0.1:{port}/ledger")),
        "{out}"
    );
    assert!(
        out.contains(&cluster.passwords_file().display().to_string()),
        "{out}"
    );

    // Passwords: one per role, 32 random bytes in hex, in a file the owner alone reads,
    // and never printed.
    let mode = fs::metadata(cluster.passwords_file())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "passwords.env must be mode 0600");
    let passwords = cluster.passwords();
    assert_eq!(passwords.keys().collect::<Vec<_>>(), ["explorer", "ledger"]);
    for password in passwords.values() {
        assert_eq!(password.len(), 64);
        assert!(password.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(
            !out.contains(password.as_str()),
            "a password was printed:\n{out}"
        );
    }
    assert_ne!(passwords["explorer"], passwords["ledger"]);

    // Each role logs in to its database and owns it: it can create tables there.
    for (user, db) in [("explorer", "notebook"), ("ledger", "ledger")] {
        let sql = format!("CREATE TABLE kept_{user} (id int); INSERT INTO kept_{user} VALUES (7)");
        sql_ok(port, user, db, &passwords[user], &sql);
        let owner = sql_ok(
            port,
            user,
            db,
            &passwords[user],
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()",
        );
        assert_eq!(owner, user);
    }

    // The server refuses a wrong password, and the superuser cannot log in over TCP.
    let wrong = sql_as(port, "explorer", "notebook", "not-the-password", "SELECT 1");
    assert!(!wrong.status.success(), "a wrong password was accepted");
    assert!(
        text(&wrong.stderr).contains("password authentication failed"),
        "{}",
        text(&wrong.stderr)
    );
    let superuser = sql_as(
        port,
        "postgres",
        "postgres",
        &passwords["explorer"],
        "SELECT 1",
    );
    assert!(
        !superuser.status.success(),
        "the superuser logged in over TCP"
    );

    // `down` stops it; `up` brings back the same data, port and passwords.
    let out = cluster.ok("down", &[]);
    assert!(out.contains("stopped"), "{out}");
    assert!(!cluster.dir().join("data/postmaster.pid").exists());
    let refused = sql_as(
        port,
        "explorer",
        "notebook",
        &passwords["explorer"],
        "SELECT 1",
    );
    assert!(
        !refused.status.success(),
        "the server still answers after `down`"
    );
    let out = cluster.ok("status", &[]);
    assert!(out.contains("stopped"), "{out}");

    let out = cluster.ok("up", &[]);
    let port = port_of(&out);
    assert!(
        out.contains("(kept)") && !out.contains("(created)"),
        "{out}"
    );
    assert_eq!(
        cluster.passwords(),
        passwords,
        "`up` again must reuse the passwords"
    );
    for (user, db) in [("explorer", "notebook"), ("ledger", "ledger")] {
        let got = sql_ok(
            port,
            user,
            db,
            &passwords[user],
            &format!("SELECT id FROM kept_{user}"),
        );
        assert_eq!(got, "7", "{user}'s table did not survive `down` and `up`");
    }

    // A database added to the values file since: `up` on the running server adds it.
    let mut values = fs::read_to_string(cluster.values_file()).unwrap();
    values.push_str("journal_db:\n  user: journal\n  db: journal\n");
    fs::write(cluster.values_file(), values).unwrap();
    let out = cluster.ok("status", &[]);
    assert!(out.contains("journal_db: missing"), "{out}");
    let out = cluster.ok("up", &[]);
    assert_eq!(port_of(&out), port, "a running server keeps its port");
    assert!(
        out.contains(&format!(
            "postgresql://journal@127.0.0.1:{port}/journal  (created)"
        )),
        "{out}"
    );
    let now = cluster.passwords();
    assert_eq!(now.len(), 3);
    assert_eq!(now["explorer"], passwords["explorer"]);
    assert_eq!(now["ledger"], passwords["ledger"]);
    sql_ok(
        port,
        "journal",
        "journal",
        &now["journal"],
        "CREATE TABLE entries (id int)",
    );
    assert_eq!(
        sql_ok(
            port,
            "ledger",
            "ledger",
            &now["ledger"],
            "SELECT count(*) FROM kept_ledger"
        ),
        "1"
    );
    let mode = fs::metadata(cluster.passwords_file())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "passwords.env must stay mode 0600");

    let out = cluster.ok("status", &[]);
    assert!(
        out.contains(&format!("running on 127.0.0.1:{port}")),
        "{out}"
    );
    for key in [
        "notebook_db: present",
        "ledger_db: present",
        "journal_db: present",
    ] {
        assert!(out.contains(key), "{out}");
    }
    cluster.ok("down", &[]);
}

#[test]
fn explicit_port_show_passwords_and_status() {
    let cluster = Cluster::new("ldb_port", "dev");
    let out = cluster.ok("status", &[]);
    assert!(out.contains("not created"), "{out}");
    assert!(out.contains("notebook_db: asked for"), "{out}");
    let out = cluster.ok("down", &[]);
    assert!(out.contains("nothing to stop"), "{out}");

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = cluster.ok("up", &["--port", &port.to_string(), "--show-passwords"]);
    let passwords = cluster.passwords();
    let url = format!(
        "postgresql://explorer:{}@127.0.0.1:{port}/notebook",
        passwords["explorer"]
    );
    assert!(
        out.contains(&url),
        "--show-passwords must print the password in the URL:\n{out}"
    );
    sql_ok(
        port,
        "explorer",
        "notebook",
        &passwords["explorer"],
        "SELECT 1",
    );

    // Moving to a port that something else holds is refused, and the server keeps running.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port().to_string();
    let out = cluster.local_db("up", &["--port", &busy_port]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("in use"),
        "{}",
        text(&out.stderr)
    );
    let out = cluster.ok("status", &[]);
    assert!(
        out.contains(&format!("running on 127.0.0.1:{port}")),
        "{out}"
    );
    cluster.ok("down", &[]);
    let out = cluster.ok("down", &[]);
    assert!(out.contains("not running"), "{out}");
}

#[test]
fn bad_input_is_refused_before_any_server_starts() {
    let nowhere = Cluster::new("ldb_nowhere", "nowhere");
    let out = nowhere.local_db("up", &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("unknown environment `nowhere`"),
        "{}",
        text(&out.stderr)
    );
    assert!(!nowhere.dir().exists());

    let cluster = Cluster::new("ldb_bad", "dev");

    let values = fs::read_to_string(cluster.values_file()).unwrap();
    fs::write(
        cluster.values_file(),
        values.replace("user: \"explorer\"", "user: \"Explorer\""),
    )
    .unwrap();
    let out = cluster.local_db("up", &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("values-dev.yaml:2:") && stderr.contains("`Explorer`"),
        "{stderr}"
    );
    assert!(
        !cluster.dir().exists(),
        "a refused `up` must not create the cluster"
    );
}
