//! `local-db` against a real PostgreSQL server: the roles log in with the passwords
//! from the file, data survives `down` and `up`, a database added to the values file
//! appears on the next `up`, and a wrong password is refused. Nothing here is skipped
//! when the server is missing: `.ci/run` installs it.
//!
//! Each test owns a scratch copy of `tests/fixtures/local-db/` and its own state
//! folder (`XDG_STATE_HOME`; `CARGO_TARGET_DIR` is where older versions kept
//! clusters), so the tests' clusters never meet; a [`Cluster`] guard
//! (`tests/testsuite/local_db_support/`) stops its server when the test ends, passed or failed.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{repo_args, text};
use crate::local_db_support::*;

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
    assert_eq!(
        passwords.keys().collect::<Vec<_>>(),
        ["ledger_password", "notebook_password"]
    );
    for password in passwords.values() {
        assert_eq!(password.len(), 64);
        assert!(password.bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(
            !out.contains(password.as_str()),
            "a password was printed:\n{out}"
        );
    }
    assert_ne!(passwords["notebook_password"], passwords["ledger_password"]);

    // Each role logs in to its database and owns it: it can create tables there.
    for (user, db, key) in [
        ("explorer", "notebook", "notebook_password"),
        ("ledger", "ledger", "ledger_password"),
    ] {
        let sql = format!("CREATE TABLE kept_{user} (id int); INSERT INTO kept_{user} VALUES (7)");
        sql_ok(port, user, db, &passwords[key], &sql);
        let owner = sql_ok(
            port,
            user,
            db,
            &passwords[key],
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
        &passwords["notebook_password"],
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
        &passwords["notebook_password"],
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
    for (user, db, key) in [
        ("explorer", "notebook", "notebook_password"),
        ("ledger", "ledger", "ledger_password"),
    ] {
        let got = sql_ok(
            port,
            user,
            db,
            &passwords[key],
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
    assert_eq!(now["notebook_password"], passwords["notebook_password"]);
    assert_eq!(now["ledger_password"], passwords["ledger_password"]);
    sql_ok(
        port,
        "journal",
        "journal",
        &now["journal_password"],
        "CREATE TABLE entries (id int)",
    );
    assert_eq!(
        sql_ok(
            port,
            "ledger",
            "ledger",
            &now["ledger_password"],
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
        passwords["notebook_password"]
    );
    assert!(
        out.contains(&url),
        "--show-passwords must print the password in the URL:\n{out}"
    );
    sql_ok(
        port,
        "explorer",
        "notebook",
        &passwords["notebook_password"],
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
            &passwords["notebook_password"],
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
        &passwords["notebook_password"],
        "CREATE TABLE public.visitor (id int)",
    );
    let owner = cluster.admin_sql(port, "SELECT 1");
    assert_eq!(owner, "1");
}

#[test]
fn a_password_changed_in_the_file_is_applied_by_the_next_up() {
    let cluster = Cluster::new("ldb_rotate", "dev");
    let port = port_of(&cluster.ok("up", &[]));
    let old = cluster.passwords()["notebook_password"].clone();
    sql_ok(port, "explorer", "notebook", &old, "SELECT 1");
    let text = fs::read_to_string(cluster.passwords_file()).unwrap();
    fs::write(
        cluster.passwords_file(),
        text.replace(
            &format!("notebook_password={old}"),
            "notebook_password=rotated-by-hand",
        ),
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
    sql_ok(
        moved,
        "ledger",
        "ledger",
        &passwords["ledger_password"],
        "SELECT 1",
    );
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
            &passwords["notebook_password"],
            "SELECT 1",
        );
    }
    assert_ne!(
        first.passwords()["notebook_password"],
        second.passwords()["notebook_password"]
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
        .filter(|l| !l.starts_with("ledger_password="))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(cluster.passwords_file(), without_ledger).unwrap();
    cluster.ok("up", &[]);
    assert_untouched(&conf_victim, &conf_bytes);
    assert_untouched(&tmp_victim, &tmp_bytes);
    assert!(fs::symlink_metadata(&conf).unwrap().is_file());
    assert!(cluster.passwords().contains_key("ledger_password"));
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
        &cluster.passwords()["ledger_password"],
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
        .env("XDG_STATE_HOME", cluster.target.join("state"))
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
        .env("XDG_STATE_HOME", cluster.target.join("state"))
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
        &cluster.passwords()["ledger_password"],
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
        (cluster.target.join("state"), 0o755),
        (cluster.target.join("state/pgdb"), 0o755),
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
                    .env("CARGO_TARGET_DIR", &cluster.target)
                    .env("XDG_STATE_HOME", cluster.target.join("state"));
                cmd.spawn().unwrap()
            })
            .collect();
        for mut run in runs {
            assert!(run.wait().unwrap().success(), "a concurrent `up` failed");
        }
        let port = port_of(&cluster.ok("up", &[]));
        let passwords = cluster.passwords();
        for (user, db, key) in [
            ("explorer", "notebook", "notebook_password"),
            ("ledger", "ledger", "ledger_password"),
        ] {
            sql_ok(port, user, db, &passwords[key], "SELECT 1");
        }
    }
}
