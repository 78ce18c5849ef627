//! What the `local-db` test binaries share: a scratch deployment with its own state
//! folder (`Cluster`, which stops its server when dropped), `psql` as the superuser
//! or as a role, and reading `up`'s output.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::{copy_tree, repo_args, root, scratch, text};

/// One test's deployment copy and cluster.
pub struct Cluster {
    pub scratch: PathBuf,
    pub target: PathBuf,
    pub env: String,
    /// Whether dropping this removes `target` (a second checkout shares the first's).
    pub owns_target: bool,
}

impl Cluster {
    pub fn new(name: &str, env: &str) -> Cluster {
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
    pub fn local_db(&self, action: &str, args: &[&str]) -> Output {
        self.command(action, args)
            .output()
            .expect("the xtask binary runs")
    }

    /// Like [`Cluster::local_db`], and the command must succeed.
    pub fn ok(&self, action: &str, args: &[&str]) -> String {
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
    pub fn sharing_target(&self, name: &str) -> Cluster {
        let mut other = Cluster::new(name, &self.env);
        other.target = self.target.clone();
        other.owns_target = false;
        other
    }

    /// The cluster's folder (`<checkout>-<hash>-<env>` below `target/xtask/local-db`),
    /// as `status` names it.
    pub fn dir(&self) -> PathBuf {
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

    /// Appends a template block passing `VRO_DB_<ID>_*` for `<key>` to the chart, and
    /// makes its secret key in the generator (as `add-db` would).
    pub fn add_block(&self, key: &str, id: &str, secret_key: &str) {
        self.add_block_only(key, id, secret_key);
        let generator = self.scratch.join("phalanx/installer/generate_secrets.py");
        let mut text = fs::read_to_string(&generator).unwrap();
        text.push_str(&format!(
            "        self._set_generated(\"postgres\", \"{secret_key}\", secrets.token_hex(32))\n"
        ));
        fs::write(&generator, text).unwrap();
    }

    /// Appends a template block, and nothing makes its secret key.
    pub fn add_block_only(&self, key: &str, id: &str, secret_key: &str) {
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
    pub fn add_entry(&self, key: &str, name: &str) {
        self.add_entry_with(key, name, name);
    }

    /// Appends `<key>: {user: <user>, db: <db>}` to the values file.
    pub fn add_entry_with(&self, key: &str, user: &str, db: &str) {
        let mut values = fs::read_to_string(self.values_file()).unwrap();
        values.push_str(&format!("{key}:\n  user: {user}\n  db: {db}\n"));
        fs::write(self.values_file(), values).unwrap();
    }

    /// The `local-db` command with this test's state folders, not yet run.
    pub fn command(&self, action: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
        cmd.args(["local-db", action, "--env", &self.env])
            .args(args)
            .args(repo_args(&self.scratch))
            .current_dir(&self.scratch)
            .env("CARGO_TARGET_DIR", &self.target)
            .env("XDG_STATE_HOME", self.target.join("state"))
            .env("NO_COLOR", "1");
        cmd
    }

    /// Runs SQL as the superuser through the cluster's socket.
    pub fn admin_sql(&self, port: u16, sql: &str) -> String {
        let out = psql_env(port, "postgres", "postgres")
            .env("PGHOST", self.dir().join("run"))
            .args(["-c", sql])
            .output()
            .expect("psql runs");
        assert!(out.status.success(), "`{sql}`: {}", text(&out.stderr));
        text(&out.stdout).trim().to_string()
    }

    pub fn passwords_file(&self) -> PathBuf {
        self.dir().join("passwords.env")
    }

    pub fn passwords(&self) -> BTreeMap<String, String> {
        let text = fs::read_to_string(self.passwords_file()).unwrap();
        text.lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|l| {
                let (role, password) = l.split_once('=').unwrap();
                (role.to_string(), password.to_string())
            })
            .collect()
    }

    pub fn values_file(&self) -> PathBuf {
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
pub fn psql() -> PathBuf {
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
pub fn psql_env(port: u16, user: &str, db: &str) -> Command {
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
pub fn sql_as(port: u16, user: &str, db: &str, password: &str, sql: &str) -> Output {
    psql_env(port, user, db)
        .args(["-c", sql])
        .env("PGHOST", "127.0.0.1")
        .env("PGSSLMODE", "disable")
        .env("PGPASSWORD", password)
        .output()
        .expect("psql runs")
}

/// Like [`sql_as`], and the query must succeed; returns what it printed.
pub fn sql_ok(port: u16, user: &str, db: &str, password: &str, sql: &str) -> String {
    let out = sql_as(port, user, db, password, sql);
    assert!(
        out.status.success(),
        "{user}@{db}: `{sql}` failed: {}",
        text(&out.stderr)
    );
    text(&out.stdout).trim().to_string()
}

/// The port in `up`'s first line (`... on 127.0.0.1:PORT, ...`).
pub fn port_of(up_output: &str) -> u16 {
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
