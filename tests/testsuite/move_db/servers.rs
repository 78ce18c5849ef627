//! What `tests/move_db.rs` runs against: two real PostgreSQL clusters, an OpenBao
//! dev server, the stand-in `kubectl` and `argocd`, and the script run under strace.

use crate::common::*;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub use crate::common::openbao::{tool, OpenBao, ROOT_TOKEN as TOKEN};
pub const BASE_PATH: &str = "secret/k8s_operator/base-lsp.lsst.codes/postgres";
pub const PASSWORD: &str = "5e2b0c41d9a8f7e6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2";

pub fn as_root() -> bool {
    extern "C" {
        fn geteuid() -> u32;
    }
    // SAFETY: geteuid has no preconditions.
    unsafe { geteuid() == 0 }
}

/// A program run as the server's owner: `postgres` through runuser when we are root.
pub fn server_cmd(program: &Path) -> Command {
    if as_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// A PostgreSQL cluster on 127.0.0.1 and a socket folder of its own; stopped on drop.
pub struct Pg {
    pub dir: PathBuf,
    pub port: u16,
}

impl Pg {
    /// initdb with `auth_host` for TCP logins (the admin `postgres` is trusted on
    /// 127.0.0.1, as a pod's local socket is), then start.
    pub fn start(dir: PathBuf, auth_host: &str) -> Pg {
        fs::create_dir_all(&dir).unwrap();
        if as_root() {
            ok(
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(&dir)
                    .output()
                    .unwrap(),
                "chown",
            );
        }
        let data = dir.join("data");
        ok(
            server_cmd(&tool("initdb"))
                .arg("-D")
                .arg(&data)
                .args(["-U", "postgres", "--auth-local=trust", "--no-locale"])
                .arg(format!("--auth-host={auth_host}"))
                .args(["--encoding=UTF8", "--no-instructions"])
                .output()
                .unwrap(),
            "initdb",
        );
        let hba = data.join("pg_hba.conf");
        let rest = fs::read_to_string(&hba).unwrap();
        fs::write(
            &hba,
            format!("host all postgres 127.0.0.1/32 trust\n{rest}"),
        )
        .unwrap();
        let port = free_port();
        let conf = format!(
            "port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             password_encryption = '{auth_host}'\nfsync = off\n",
            dir.display()
        );
        let mut file = fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .unwrap();
        file.write_all(conf.as_bytes()).unwrap();
        ok(
            server_cmd(&tool("pg_ctl"))
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(dir.join("log"))
                .args(["-w", "-t", "60", "start"])
                .output()
                .unwrap(),
            "pg_ctl start",
        );
        Pg { dir, port }
    }

    /// psql as `user` (the password, if any, in the environment) on `db`, SQL on stdin.
    pub fn psql(&self, user: &str, db: &str, password: Option<&str>, sql: &str) -> Output {
        let mut cmd = Command::new(tool("psql"));
        cmd.args([
            "-X",
            "-q",
            "-At",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
        ])
        .args(["-p", &self.port.to_string(), "-U", user, "-d", db, "-w"])
        .env_remove("PGPASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        if let Some(password) = password {
            cmd.env("PGPASSWORD", password);
        }
        let mut child = cmd.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(sql.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    pub fn admin(&self, db: &str, sql: &str) -> String {
        ok(self.psql("postgres", db, None, sql), sql)
    }

    /// `pg_dump --data-only` of a database, without the random `\restrict` key lines.
    pub fn data_dump(&self, db: &str) -> String {
        let out = Command::new(tool("pg_dump"))
            .args([
                "--data-only",
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
            ])
            .args(["-U", "postgres", "-d", db])
            .output()
            .unwrap();
        ok(out, "pg_dump --data-only")
            .lines()
            .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
            .map(|l| format!("{l}\n"))
            .collect()
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        let _ = server_cmd(&tool("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

/// An OpenBao dev server holding the postgres secret; `vault` in `bin` is `bao`.
pub fn start_bao(work: &Path, bin: &Path) -> (OpenBao, String) {
    let bao = OpenBao::start(work, bin);
    let secret =
        format!("{{\"gafaelfawr_password\": \"{PASSWORD}\", \"root_password\": \"r00t-not-hex\"}}");
    let put = bao.vault(&["kv", "put", BASE_PATH, "-"], Some(&secret));
    ok(put, "vault kv put");
    let addr = bao.addr.clone();
    (bao, addr)
}

/// The stand-in `kubectl` and `argocd` (see the module's documentation).
pub fn stand_ins(bin: &Path, source: &Pg) {
    let kubectl = format!(
        r#"#!/bin/bash
dir=$(dirname "$0")
echo "kubectl $*" >> "$dir/calls"
case " $* " in
  *" exec "*)
    while [ "$1" != "--" ]; do shift; done
    shift
    PGHOST={socket} PGPORT={port} exec "$@"
    ;;
  *" get deployments "*"spec.replicas"*) cat "$dir/deployments" ;;
  *" get deployments "*) echo "0" ;;
esac
"#,
        socket = source.dir.display(),
        port = source.port
    );
    let argocd = "#!/bin/sh\necho \"argocd $*\" >> \"$(dirname \"$0\")/calls\"\n";
    for (name, body) in [("kubectl", kubectl.as_str()), ("argocd", argocd)] {
        fs::write(bin.join(name), body).unwrap();
        fs::set_permissions(bin.join(name), fs::Permissions::from_mode(0o755)).unwrap();
    }
    fs::write(
        bin.join("deployments"),
        "gafaelfawr 3\ngafaelfawr-operator 1\n",
    )
    .unwrap();
    fs::write(bin.join("calls"), "").unwrap();
}

/// The database as the container creates it, then the application's own tables.
pub fn fill_source(source: &Pg) {
    source.admin(
        "postgres",
        &format!(
            "CREATE ROLE gafaelfawr WITH LOGIN PASSWORD '{PASSWORD}';\n\
             CREATE DATABASE gafaelfawr OWNER gafaelfawr;\n"
        ),
    );
    let schema = "\
        CREATE TABLE token (id serial PRIMARY KEY, name text NOT NULL, created timestamptz NOT NULL,
                            scopes jsonb, score double precision, blob bytea);
        INSERT INTO token (name, created, scopes, score, blob)
          SELECT 'token ' || i, timestamptz '2026-01-01 00:00:00+00' + i * interval '1 minute',
                 jsonb_build_object('scopes', jsonb_build_array('read:all', i)), i / 7.0,
                 decode(md5(i::text), 'hex')
          FROM generate_series(1, 2000) AS i;
        CREATE TABLE history (token_id int REFERENCES token, event text, at date);
        INSERT INTO history SELECT i, 'event ' || i, date '2026-02-01' + i FROM generate_series(1, 500) AS i;
        CREATE SEQUENCE ticket;
        SELECT setval('ticket', 4242);
        SELECT lo_from_bytea(0, convert_to(repeat('large object ', 10000), 'UTF8'));
        CREATE INDEX ON token (created);
        CREATE VIEW recent AS SELECT name FROM token WHERE created > '2026-01-02';
    ";
    let out = source.psql("gafaelfawr", "gafaelfawr", Some(PASSWORD), schema);
    ok(out, "the application's schema");
}

pub struct Rehearsal {
    pub work: PathBuf,
    pub bin: PathBuf,
    pub script: PathBuf,
    pub dumps: PathBuf,
    pub vault_addr: String,
}

impl Rehearsal {
    /// Runs a phase of the script under strace; asserts no 64-hex value in any argv.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_file(&self.script, args)
    }

    /// Runs a bash file (a script, or pasted blocks of the text form) under strace.
    pub fn run_file(&self, file: &Path, args: &[&str]) -> Output {
        let trace = self.work.join("trace.txt");
        let _ = fs::remove_file(&trace);
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let out = Command::new(tool("strace"))
            .args(["-f", "-e", "trace=execve", "-s", "4096", "-o"])
            .arg(&trace)
            .arg("bash")
            .arg(file)
            .args(args)
            .current_dir(&self.work)
            .env("PATH", path)
            .env("VAULT_TOKEN", TOKEN)
            .env("PGDB_MOVE_DIR", &self.dumps)
            .env_remove("PGPASSWORD")
            .env_remove("VAULT_ADDR")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let trace = fs::read_to_string(&trace).unwrap();
        let execs: Vec<&str> = trace.lines().filter(|l| l.contains("execve(")).collect();
        assert!(!execs.is_empty(), "{args:?}: strace saw no execve");
        for line in execs {
            assert!(
                !line.contains(PASSWORD) && !hex64_run(line),
                "{args:?}: a password is in an argv: {line}"
            );
        }
        out
    }

    /// The secret's JSON as `vault kv get -format=json` prints it.
    pub fn vault_secret(&self, path: &str) -> String {
        let out = Command::new(self.bin.join("vault"))
            .args(["kv", "get", "-format=json", path])
            .env("VAULT_ADDR", &self.vault_addr)
            .env("VAULT_TOKEN", TOKEN)
            .output()
            .unwrap();
        ok(out, "vault kv get")
    }

    pub fn calls(&self) -> String {
        fs::read_to_string(self.bin.join("calls")).unwrap()
    }
}

/// Whether a line holds a run of 64 or more hex digits.
pub fn hex64_run(line: &str) -> bool {
    let mut run = 0;
    for c in line.chars() {
        run = if c.is_ascii_hexdigit() { run + 1 } else { 0 };
        if run >= 64 {
            return true;
        }
    }
    false
}

pub fn both(out: &Output) -> String {
    format!("{}\n{}", text(&out.stdout), text(&out.stderr))
}
