//! `local-db` against a real PostgreSQL server: the roles log in with the passwords
//! from the file, data survives `down` and `up`, a database added to the values file
//! appears on the next `up`, and a wrong password is refused. Nothing here is skipped
//! when the server is missing: `.ci/run` installs it.
//!
//! Each test owns a scratch copy of `tests/fixtures/local-db/` and its own
//! `CARGO_TARGET_DIR`, so the tests' clusters never meet; a [`Cluster`] guard stops
//! its server when the test ends, passed or failed.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{copy_tree, repo_args, root, scratch, text};

/// One test's deployment copy and cluster.
struct Cluster {
    scratch: PathBuf,
    target: PathBuf,
    env: String,
    /// Whether dropping this removes `target` (a second checkout shares the first's).
    owns_target: bool,
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
            owns_target: true,
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

    /// A second checkout sharing this one's `CARGO_TARGET_DIR`.
    fn sharing_target(&self, name: &str) -> Cluster {
        let mut other = Cluster::new(name, &self.env);
        other.target = self.target.clone();
        other.owns_target = false;
        other
    }

    /// The cluster's folder (`<checkout>-<hash>-<env>` below `target/xtask/local-db`),
    /// as `status` names it.
    fn dir(&self) -> PathBuf {
        let out = text(&self.local_db("status", &[]).stdout);
        if let Some(rest) = out.split("data in ").nth(1) {
            let data = rest.lines().next().unwrap().trim();
            return PathBuf::from(data.strip_suffix("/data").unwrap());
        }
        if let Some(before) = out
            .split(" holds no cluster")
            .next()
            .filter(|b| b.len() < out.len())
        {
            return PathBuf::from(before.rsplit('(').next().unwrap());
        }
        self.target.join("xtask/local-db/none")
    }

    /// Appends a template block passing `VRO_DB_<ID>_*` for `<key>` to the chart.
    fn add_block(&self, key: &str, id: &str, secret_key: &str) {
        let path = self
            .scratch
            .join("phalanx/services/postgres/templates/deployment.yaml");
        let mut template = fs::read_to_string(&path).unwrap();
        template.push_str(&format!(
            "        {{{{- with .Values.{key} }}}}\n\
             \x20       - name: VRO_DB_{id}_USER\n\
             \x20         value: {{{{ .user }}}}\n\
             \x20       - name: VRO_DB_{id}_DB\n\
             \x20         value: {{{{ .db }}}}\n\
             \x20       - name: VRO_DB_{id}_PASSWORD\n\
             \x20         valueFrom:\n\
             \x20           secretKeyRef:\n\
             \x20             name: postgres\n\
             \x20             key: {secret_key}\n\
             \x20       {{{{- end }}}}\n"
        ));
        fs::write(&path, template).unwrap();
    }

    /// Appends `<key>: {user: <name>, db: <name>}` to the values file.
    fn add_entry(&self, key: &str, name: &str) {
        let mut values = fs::read_to_string(self.values_file()).unwrap();
        values.push_str(&format!("{key}:\n  user: {name}\n  db: {name}\n"));
        fs::write(self.values_file(), values).unwrap();
    }

    /// Runs SQL as the superuser through the cluster's socket.
    fn admin_sql(&self, port: u16, sql: &str) -> String {
        let out = psql_env(port, "postgres", "postgres")
            .env("PGHOST", self.dir().join("run"))
            .args(["-c", sql])
            .output()
            .expect("psql runs");
        assert!(out.status.success(), "`{sql}`: {}", text(&out.stderr));
        text(&out.stdout).trim().to_string()
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
        if self.owns_target {
            let _ = fs::remove_dir_all(&self.target);
        }
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

/// `psql` with no inherited `PG*` variable, for `user` on `db` at `port`.
fn psql_env(port: u16, user: &str, db: &str) -> Command {
    let mut cmd = Command::new(psql());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PG") {
            cmd.env_remove(key);
        }
    }
    cmd.args(["-X", "-q", "-A", "-t", "-w", "-v", "ON_ERROR_STOP=1"])
        .env("PGPORT", port.to_string())
        .env("PGUSER", user)
        .env("PGDATABASE", db)
        .env("PGCONNECT_TIMEOUT", "10");
    cmd
}

/// Logs in over TCP as `user` with `password` and runs `sql`.
fn sql_as(port: u16, user: &str, db: &str, password: &str, sql: &str) -> Output {
    psql_env(port, user, db)
        .args(["-c", sql])
        .env("PGHOST", "127.0.0.1")
        .env("PGSSLMODE", "disable")
        .env("PGPASSWORD", password)
        .output()
        .expect("psql runs")
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
    cluster.add_entry("journal_db", "journal");
    cluster.add_block("journal_db", "JOURNAL", "journal_password");
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

#[test]
fn creates_what_the_container_would_with_its_semantics() {
    let cluster = Cluster::new("ldb_container", "dev");
    // An entry without a template block, and one whose id holds `_`.
    cluster.add_entry("orphan_db", "orphan");
    cluster.add_entry("exposure_checker_db", "checker");
    cluster.add_block(
        "exposure_checker_db",
        "EXPOSURE_CHECKER",
        "exposure_checker_password",
    );
    let out = cluster.ok("up", &[]);
    let port = port_of(&out);
    assert!(
        out.contains("orphan_db: not created, the cluster's container skips it: no template block"),
        "{out}"
    );
    assert!(
        out.contains(
            "exposure_checker_db: not created, the cluster's container skips it: \
             `VRO_DB_EXPOSURE_CHECKER_*`: the container reads id `EXPOSURE`"
        ),
        "{out}"
    );
    let roles = cluster.admin_sql(
        port,
        "SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles WHERE rolname !~ '^pg_'",
    );
    assert_eq!(roles, "explorer,ledger,postgres");
    let dbs = cluster.admin_sql(
        port,
        "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database WHERE NOT datistemplate",
    );
    assert_eq!(dbs, "ledger,notebook,postgres");
    let status = cluster.ok("status", &[]);
    assert!(status.contains("orphan_db: not created"), "{status}");

    // md5 passwords, and a login over TCP with it.
    let stored = cluster.admin_sql(
        port,
        "SELECT rolpassword FROM pg_authid WHERE rolname = 'explorer'",
    );
    assert!(stored.starts_with("md5"), "{stored}");
    let hba = fs::read_to_string(cluster.dir().join("data/pg_hba.conf")).unwrap();
    assert!(
        hba.lines()
            .any(|l| l.starts_with("host") && l.trim_end().ends_with("md5")),
        "{hba}"
    );
    let passwords = cluster.passwords();
    assert_eq!(
        sql_ok(
            port,
            "explorer",
            "notebook",
            &passwords["explorer"],
            "SELECT current_user"
        ),
        "explorer"
    );
    // As on the cluster's PostgreSQL 12, a role may create tables in another
    // database's `public`.
    sql_ok(
        port,
        "explorer",
        "ledger",
        &passwords["explorer"],
        "CREATE TABLE public.visitor (id int)",
    );
    let owner = cluster.admin_sql(port, "SELECT 1");
    assert_eq!(owner, "1");
}

#[test]
fn a_password_changed_in_the_file_is_applied_by_the_next_up() {
    let cluster = Cluster::new("ldb_rotate", "dev");
    let port = port_of(&cluster.ok("up", &[]));
    let old = cluster.passwords()["explorer"].clone();
    sql_ok(port, "explorer", "notebook", &old, "SELECT 1");
    let text = fs::read_to_string(cluster.passwords_file()).unwrap();
    fs::write(
        cluster.passwords_file(),
        text.replace(&format!("explorer={old}"), "explorer=rotated-by-hand"),
    )
    .unwrap();
    let port = port_of(&cluster.ok("up", &[]));
    sql_ok(port, "explorer", "notebook", "rotated-by-hand", "SELECT 1");
    let refused = sql_as(port, "explorer", "notebook", &old, "SELECT 1");
    assert!(!refused.status.success(), "the old password still works");
}

#[test]
fn a_failed_start_keeps_the_remembered_port_and_port_0_picks_a_free_one() {
    let cluster = Cluster::new("ldb_failport", "dev");
    let port = port_of(&cluster.ok("up", &[]));
    cluster.ok("down", &[]);

    // A port something else holds: refused before any start.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port().to_string();
    let out = cluster.local_db("up", &["--port", &busy_port]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--port N"),
        "{}",
        text(&out.stderr)
    );

    // A port the server's user may not bind: the server itself fails to start.
    assert!(
        fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start").map_or(true, |v| v
            .trim()
            .parse::<u32>()
            .unwrap_or(1024)
            > 1),
        "this test needs port 1 to be privileged (net.ipv4.ip_unprivileged_port_start > 1)"
    );
    let out = cluster.local_db("up", &["--port", "1"]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("did not start on port 1")
            && stderr.contains("server.log ends with")
            && stderr.contains("--port N"),
        "{stderr}"
    );
    let status = cluster.ok("status", &[]);
    assert!(
        status.contains(&format!("stopped (last port {port})")),
        "{status}"
    );
    let out = cluster.ok("up", &[]);
    assert_eq!(port_of(&out), port, "a plain `up` uses the remembered port");

    // `--port 0` moves the running server to a free port.
    drop(busy);
    let out = cluster.ok("up", &["--port", "0"]);
    let moved = port_of(&out);
    assert!(moved != 0 && moved != port, "{out}");
    let passwords = cluster.passwords();
    sql_ok(moved, "ledger", "ledger", &passwords["ledger"], "SELECT 1");
    let status = cluster.ok("status", &[]);
    assert!(
        status.contains(&format!("running on 127.0.0.1:{moved}")),
        "{status}"
    );
}

#[test]
fn two_checkouts_with_the_same_env_get_two_clusters() {
    let first = Cluster::new("ldb_checkout_a", "dev");
    let second = first.sharing_target("ldb_checkout_b");
    let port_a = port_of(&first.ok("up", &[]));
    let port_b = port_of(&second.ok("up", &[]));
    assert_ne!(first.dir(), second.dir());
    assert_ne!(port_a, port_b);
    for (cluster, port) in [(&first, port_a), (&second, port_b)] {
        let name = cluster
            .dir()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            name.starts_with("phalanx-") && name.ends_with("-dev"),
            "{name}"
        );
        let passwords = cluster.passwords();
        sql_ok(
            port,
            "explorer",
            "notebook",
            &passwords["explorer"],
            "SELECT 1",
        );
    }
    assert_ne!(
        first.passwords()["explorer"],
        second.passwords()["explorer"]
    );
    second.ok("down", &[]);
    assert!(
        first.ok("status", &[]).contains("running"),
        "one `down` stopped both"
    );
}

/// A root-owned file that a planted link points at; it must stay as it is.
fn victim(dir: &Path, name: &str) -> (PathBuf, Vec<u8>) {
    let path = dir.join(name);
    fs::write(&path, "victim: must stay as it is\n").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    (path.clone(), fs::read(&path).unwrap())
}

fn assert_untouched(path: &Path, bytes: &[u8]) {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(path).unwrap();
    assert_eq!(
        fs::read(path).unwrap(),
        bytes,
        "{} was written",
        path.display()
    );
    assert_eq!(
        meta.mode() & 0o777,
        0o600,
        "{} changed mode",
        path.display()
    );
    // SAFETY: geteuid cannot fail.
    assert_eq!(
        meta.uid(),
        unsafe { libc_geteuid() },
        "{} changed owner",
        path.display()
    );
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

#[test]
fn planted_links_are_never_followed() {
    let cluster = Cluster::new("ldb_links", "dev");
    cluster.ok("up", &[]);
    cluster.ok("down", &[]);
    let dir = cluster.dir();
    let outside = cluster.target.join("outside");
    fs::create_dir_all(&outside).unwrap();

    // The settings file replaced by a link: `up` replaces the link, not its target.
    let (conf_victim, conf_bytes) = victim(&outside, "conf-victim");
    let conf = dir.join("data/xtask.conf");
    fs::remove_file(&conf).unwrap();
    std::os::unix::fs::symlink(&conf_victim, &conf).unwrap();
    // The passwords file's old, predictable temporary name, planted as a link.
    let (tmp_victim, tmp_bytes) = victim(&outside, "tmp-victim");
    std::os::unix::fs::symlink(&tmp_victim, dir.join("passwords.env.tmp")).unwrap();
    let file_text = fs::read_to_string(cluster.passwords_file()).unwrap();
    let without_ledger: String = file_text
        .lines()
        .filter(|l| !l.starts_with("ledger="))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(cluster.passwords_file(), without_ledger).unwrap();
    cluster.ok("up", &[]);
    assert_untouched(&conf_victim, &conf_bytes);
    assert_untouched(&tmp_victim, &tmp_bytes);
    assert!(fs::symlink_metadata(&conf).unwrap().is_file());
    assert!(cluster.passwords().contains_key("ledger"));
    cluster.ok("down", &[]);

    // `postgresql.conf` replaced by a link to a file without the include line: the
    // append refuses to follow it.
    let main_conf = dir.join("data/postgresql.conf");
    let original = fs::read_to_string(&main_conf).unwrap();
    let (pg_victim, _) = victim(&outside, "pg-victim");
    fs::write(
        &pg_victim,
        "# a file the server's user must not make us write\n",
    )
    .unwrap();
    let pg_bytes = fs::read(&pg_victim).unwrap();
    fs::remove_file(&main_conf).unwrap();
    std::os::unix::fs::symlink(&pg_victim, &main_conf).unwrap();
    let out = cluster.local_db("up", &[]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("symbolic link"),
        "{}",
        text(&out.stderr)
    );
    assert_untouched(&pg_victim, &pg_bytes);
    fs::remove_file(&main_conf).unwrap();
    fs::write(&main_conf, original).unwrap();
}

#[test]
fn a_stale_pid_file_naming_another_process_is_not_signalled() {
    use std::os::unix::process::CommandExt;
    let cluster = Cluster::new("ldb_stale", "dev");
    cluster.ok("up", &[]);
    cluster.ok("down", &[]);
    // A live process of the server's user (postgres when we are root), not a server.
    let mut sleeper = Command::new("sleep");
    sleeper.arg("300");
    let data = cluster.dir().join("data");
    let owner = {
        use std::os::unix::fs::MetadataExt;
        let meta = fs::metadata(&data).unwrap();
        (meta.uid(), meta.gid())
    };
    sleeper.uid(owner.0).gid(owner.1).current_dir("/");
    let mut sleeper = sleeper.spawn().unwrap();
    let pid_file = data.join("postmaster.pid");
    fs::write(
        &pid_file,
        format!(
            "{}\n{}\n1700000000\n5432\n/tmp\n127.0.0.1\n  0 0\nready\n",
            sleeper.id(),
            data.display()
        ),
    )
    .unwrap();
    let out = cluster.ok("down", &[]);
    assert!(out.contains("stale"), "{out}");
    assert!(
        sleeper.try_wait().unwrap().is_none(),
        "`down` signalled an unrelated process"
    );
    // `up` sets the stale file aside and starts the server.
    let out = cluster.ok("up", &[]);
    let port = port_of(&out);
    assert!(
        sleeper.try_wait().unwrap().is_none(),
        "`up` signalled an unrelated process"
    );
    sql_ok(
        port,
        "ledger",
        "ledger",
        &cluster.passwords()["ledger"],
        "SELECT 1",
    );
    cluster.ok("down", &[]);
    assert!(sleeper.try_wait().unwrap().is_none());
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
}

#[test]
fn no_password_is_in_any_argument_list() {
    let cluster = Cluster::new("ldb_strace", "dev");
    let trace = cluster.target.with_extension("strace");
    let printed = cluster.target.with_extension("out");
    // strace follows the server that `up` leaves running, so it ends only after
    // `down`: wait for `up`'s last line, stop the server, then wait for strace.
    let mut strace = Command::new("strace")
        .args(["-f", "-qq", "-s", "100000", "-e", "trace=execve", "-o"])
        .arg(&trace)
        .arg(env!("CARGO_BIN_EXE_xtask"))
        .args(["local-db", "up", "--env", "dev"])
        .args(repo_args(&cluster.scratch))
        .current_dir(&cluster.scratch)
        .env("CARGO_TARGET_DIR", &cluster.target)
        .stdout(fs::File::create(&printed).unwrap())
        .spawn()
        .expect("strace runs (`.ci/run` installs Debian's strace)");
    let mut up_ended = false;
    for _ in 0..1200 {
        if fs::read_to_string(&printed)
            .unwrap_or_default()
            .contains("stop it with")
        {
            up_ended = true;
            break;
        }
        if let Some(status) = strace.try_wait().unwrap() {
            panic!(
                "`up` under strace ended early ({status}): {}",
                fs::read_to_string(&printed).unwrap_or_default()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    cluster.ok("down", &[]);
    let status = strace.wait().unwrap();
    let _ = fs::remove_file(&printed);
    assert!(
        up_ended && status.success(),
        "`up` under strace failed ({status})"
    );
    let calls = fs::read_to_string(&trace).unwrap();
    let _ = fs::remove_file(&trace);
    for program in ["initdb", "pg_ctl", "psql"] {
        assert!(
            calls.contains(&format!("/{program}\"")),
            "no execve of {program}:\n{calls}"
        );
    }
    let passwords = cluster.passwords();
    assert_eq!(passwords.len(), 2);
    for (role, password) in &passwords {
        assert!(
            !calls.contains(password.as_str()),
            "{role}'s password is in an argument list"
        );
    }
}

#[test]
fn odd_target_paths_and_umask_000_are_handled() {
    use std::os::unix::fs::MetadataExt;
    let mut cluster = Cluster::new("ldb_odd", "dev");
    // A quote and a backslash in the target folder, written into the server's settings.
    cluster.target =
        std::env::temp_dir().join(format!("xtask-ldb-{}-it's\\odd", std::process::id()));
    let _ = fs::remove_dir_all(&cluster.target);
    let out = Command::new("sh")
        .args(["-c", "umask 000 && exec \"$@\"", "sh"])
        .arg(env!("CARGO_BIN_EXE_xtask"))
        .args(["local-db", "up", "--env", "dev"])
        .args(repo_args(&cluster.scratch))
        .current_dir(&cluster.scratch)
        .env("CARGO_TARGET_DIR", &cluster.target)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let port = port_of(&text(&out.stdout));
    sql_ok(
        port,
        "ledger",
        "ledger",
        &cluster.passwords()["ledger"],
        "SELECT 1",
    );
    let dir = cluster.dir();
    assert!(dir.starts_with(&cluster.target), "{}", dir.display());
    let private = if unsafe { libc_geteuid() } == 0 {
        0o711
    } else {
        0o700
    };
    for (path, mode) in [
        (cluster.target.join("xtask"), 0o755),
        (cluster.target.join("xtask/local-db"), 0o755),
        (dir.clone(), private),
        (dir.join("run"), 0o700),
        (dir.join("data"), 0o700),
        (dir.join("passwords.env"), 0o600),
        (dir.join("data/xtask.conf"), 0o600),
    ] {
        let got = fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(got, mode, "{}: mode {got:o}", path.display());
    }
    cluster.ok("down", &[]);
}

#[test]
fn concurrent_ups_agree_on_every_password() {
    let cluster = Cluster::new("ldb_race", "dev");
    for round in 0..2 {
        if round == 1 {
            // New roles again: every run would make passwords for them.
            cluster.ok("down", &[]);
            fs::write(cluster.passwords_file(), "").unwrap();
        }
        let runs: Vec<_> = (0..4)
            .map(|_| {
                let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
                cmd.args(["local-db", "up", "--env", "dev"])
                    .args(repo_args(&cluster.scratch))
                    .current_dir(&cluster.scratch)
                    .env("CARGO_TARGET_DIR", &cluster.target);
                cmd.spawn().unwrap()
            })
            .collect();
        for mut run in runs {
            assert!(run.wait().unwrap().success(), "a concurrent `up` failed");
        }
        let port = port_of(&cluster.ok("up", &[]));
        let passwords = cluster.passwords();
        for (user, db) in [("explorer", "notebook"), ("ledger", "ledger")] {
            sql_ok(port, user, db, &passwords[user], "SELECT 1");
        }
    }
}
