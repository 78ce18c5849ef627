//! The move runbook rehearsed for real: two PostgreSQL 15 clusters started here (the
//! old server holding the database as the postgres container creates it: a role with
//! an md5 password owning the database, with tables, rows, a sequence and a large
//! object; the new server a second cluster with SCRAM logins), OpenBao as Vault
//! holding the password, and the generated script's phases run by bash under strace.
//! There is no Kubernetes cluster here: a stand-in `kubectl` (a script this test
//! writes) runs the command after `exec ... --` locally against the old server, logs
//! every other call and answers `get deployments` from a file; a stand-in `argocd`
//! logs its calls.

mod common;

use common::*;
use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

const TOKEN: &str = "move-db-test-root";
const BASE_PATH: &str = "secret/k8s_operator/base-lsp.lsst.codes/postgres";
const PASSWORD: &str = "5e2b0c41d9a8f7e6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2";

/// A tool on PATH (with the workspace's venv first), or a failure saying how to get it.
fn tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::iter::once(root().join("target/venv/bin"))
        .chain(std::env::split_paths(&path))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("`{name}` is missing: run `bash .ci/run`, which installs it"))
}

fn as_root() -> bool {
    extern "C" {
        fn geteuid() -> u32;
    }
    // SAFETY: geteuid has no preconditions.
    unsafe { geteuid() == 0 }
}

/// A program run as the server's owner: `postgres` through runuser when we are root.
fn server_cmd(program: &Path) -> Command {
    if as_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn ok(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// A PostgreSQL cluster on 127.0.0.1 and a socket folder of its own; stopped on drop.
struct Pg {
    dir: PathBuf,
    port: u16,
}

impl Pg {
    /// initdb with `auth_host` for TCP logins (the admin `postgres` is trusted on
    /// 127.0.0.1, as a pod's local socket is), then start.
    fn start(dir: PathBuf, auth_host: &str) -> Pg {
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
    fn psql(&self, user: &str, db: &str, password: Option<&str>, sql: &str) -> Output {
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

    fn admin(&self, db: &str, sql: &str) -> String {
        ok(self.psql("postgres", db, None, sql), sql)
    }

    /// `pg_dump --data-only` of a database, without the random `\restrict` key lines.
    fn data_dump(&self, db: &str) -> String {
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

struct Bao(Child);

impl Drop for Bao {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An OpenBao dev server holding the postgres secret; `vault` in `bin` is `bao`.
fn start_bao(work: &Path, bin: &Path) -> (Bao, String) {
    let port = free_port();
    let log = fs::File::create(work.join("bao.log")).unwrap();
    let child = Command::new(tool("bao"))
        .args(["server", "-dev", &format!("-dev-root-token-id={TOKEN}")])
        .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let bao = Bao(child);
    std::os::unix::fs::symlink(tool("bao"), bin.join("vault")).unwrap();
    let addr = format!("http://127.0.0.1:{port}");
    let secret =
        format!("{{\"gafaelfawr_password\": \"{PASSWORD}\", \"root_password\": \"r00t-not-hex\"}}");
    for _ in 0..300 {
        let mut child = Command::new(bin.join("vault"))
            .args(["kv", "put", BASE_PATH, "-"])
            .env("VAULT_ADDR", &addr)
            .env("VAULT_TOKEN", TOKEN)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(secret.as_bytes())
            .unwrap();
        if child.wait().unwrap().success() {
            return (bao, addr);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("OpenBao did not come up");
}

/// The stand-in `kubectl` and `argocd` (see the module's documentation).
fn stand_ins(bin: &Path, source: &Pg) {
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
fn fill_source(source: &Pg) {
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

struct Rehearsal {
    work: PathBuf,
    bin: PathBuf,
    script: PathBuf,
    dumps: PathBuf,
}

impl Rehearsal {
    /// Runs a phase of the script under strace; asserts no 64-hex value in any argv.
    fn run(&self, args: &[&str]) -> Output {
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
            .arg(&self.script)
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

    fn calls(&self) -> String {
        fs::read_to_string(self.bin.join("calls")).unwrap()
    }
}

/// Whether a line holds a run of 64 or more hex digits.
fn hex64_run(line: &str) -> bool {
    let mut run = 0;
    for c in line.chars() {
        run = if c.is_ascii_hexdigit() { run + 1 } else { 0 };
        if run >= 64 {
            return true;
        }
    }
    false
}

fn both(out: &Output) -> String {
    format!("{}\n{}", text(&out.stdout), text(&out.stderr))
}

#[test]
fn preflight_copy_verify_and_rollback_run_for_real() {
    tool("strace");
    let work = sample_copy("move-db-rehearsal");
    let bin = work.join("bin");
    fs::create_dir_all(&bin).unwrap();
    let source = Pg::start(work.join("old"), "md5");
    let target = Pg::start(work.join("new"), "scram-sha-256");
    let (_bao, addr) = start_bao(&work, &bin);
    stand_ins(&bin, &source);
    fill_source(&source);
    fs::write(
        work.join("xtask.toml"),
        format!("vault_addr = \"{addr}\"\n[kube_contexts]\nbase = \"test-cluster\"\n"),
    )
    .unwrap();
    let url = format!("postgresql://127.0.0.1:{}", target.port);
    let args = ["runbook", "gafaelfawr", "--env", "base", "--move-to", &url];
    let out = xtask_on(&work, &[&args[..], &["--script"]].concat());
    let script = work.join("move.sh");
    fs::write(&script, ok(out, "runbook --move-to --script")).unwrap();
    let r = Rehearsal {
        work: work.clone(),
        bin: bin.clone(),
        script,
        dumps: work.join("dumps"),
    };

    let out = r.run(&["preflight"]);
    let said = both(&out);
    assert!(out.status.success(), "preflight: {said}");
    assert!(said.contains("absent from the new server"), "{said}");
    assert!(said.contains("Size of gafaelfawr: "), "{said}");
    assert!(said.contains("1 large objects"), "{said}");
    assert!(said.contains("Versions: old server 15"), "{said}");

    // freeze records the replica counts before scaling to zero.
    let out = r.run(&["--yes", "freeze"]);
    assert!(out.status.success(), "freeze: {}", both(&out));
    let record = r.dumps.join("gafaelfawr-base-replicas-gafaelfawr.txt");
    assert_eq!(
        fs::read_to_string(&record).unwrap(),
        "gafaelfawr 3\ngafaelfawr-operator 1\n"
    );
    assert!(r.calls().contains(
        "kubectl --context test-cluster -n gafaelfawr scale deployment --all --replicas=0"
    ));

    let out = r.run(&["copy"]);
    assert!(out.status.success(), "copy: {}", both(&out));
    assert_eq!(
        target.data_dump("gafaelfawr"),
        source.data_dump("gafaelfawr")
    );
    // The role on the new server logs in with the same password (SCRAM), owns the
    // database and every object.
    let owner = target.psql(
        "gafaelfawr",
        "gafaelfawr",
        Some(PASSWORD),
        "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database();\n\
         SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relowner <> 'gafaelfawr'::regrole;\n\
         SELECT count(*) FROM pg_largeobject_metadata WHERE lomowner = 'gafaelfawr'::regrole;\n",
    );
    assert_eq!(ok(owner, "login on the new server"), "gafaelfawr\n0\n1\n");
    let verifier = target.admin(
        "postgres",
        "SELECT left(rolpassword, 14) FROM pg_authid WHERE rolname = 'gafaelfawr';",
    );
    assert_eq!(verifier, "SCRAM-SHA-256$\n");

    let out = r.run(&["verify"]);
    assert!(out.status.success(), "verify: {}", both(&out));
    assert!(
        both(&out)
            .contains("Same rows, sequences, large objects and schema on both servers (2 tables)"),
        "{}",
        both(&out)
    );
    assert!(r.dumps.join("gafaelfawr-base.dump.verified").is_file());

    // A row changed on the old server after the copy (same row count) is caught.
    source.admin(
        "gafaelfawr",
        "UPDATE token SET name = 'changed' WHERE id = 17;",
    );
    let out = r.run(&["verify"]);
    assert!(!out.status.success(), "a changed row passed verify");
    assert!(
        both(&out).contains("differs from the old one"),
        "{}",
        both(&out)
    );
    assert!(
        both(&out).contains("table public.token|2000|"),
        "{}",
        both(&out)
    );
    assert!(!r.dumps.join("gafaelfawr-base.dump.verified").exists());
    // A sequence moved on is caught too.
    source.admin(
        "gafaelfawr",
        "UPDATE token SET name = 'token 17' WHERE id = 17;",
    );
    assert!(r.run(&["verify"]).status.success());
    source.admin("gafaelfawr", "SELECT nextval('ticket');");
    let out = r.run(&["verify"]);
    assert!(!out.status.success(), "a moved sequence passed verify");
    assert!(
        both(&out).contains("+sequence public.ticket|4242"),
        "{}",
        both(&out)
    );

    // rollback: the old database is still there; each consumer synced and scaled back
    // to its recorded counts.
    let before = r.calls().len();
    let out = r.run(&["--yes", "rollback"]);
    assert!(out.status.success(), "rollback: {}", both(&out));
    let calls = r.calls()[before..].to_string();
    for expected in [
        "argocd app sync gafaelfawr --core --kube-context test-cluster",
        "kubectl --context test-cluster -n gafaelfawr scale deployment gafaelfawr --replicas=3",
        "kubectl --context test-cluster -n gafaelfawr scale deployment gafaelfawr-operator --replicas=1",
        "kubectl --context test-cluster -n gafaelfawr wait --for=condition=Available deployment --all --timeout=10m",
    ] {
        assert!(calls.contains(expected), "{expected}:\n{calls}");
    }

    // A restore that fails (a grant to a role the new server lacks) leaves the new
    // database empty, and switch refuses to start anything.
    source.admin(
        "gafaelfawr",
        "CREATE ROLE reporter; GRANT SELECT ON token TO reporter;",
    );
    target.admin("postgres", "DROP DATABASE gafaelfawr;");
    for file in ["gafaelfawr-base.dump", "gafaelfawr-base.dump.sha256"] {
        fs::remove_file(r.dumps.join(file)).unwrap();
    }
    let out = r.run(&["copy"]);
    assert!(!out.status.success(), "a failed restore went on");
    assert!(both(&out).contains("pg_restore failed"), "{}", both(&out));
    assert!(
        both(&out).contains("role \"reporter\" does not exist"),
        "{}",
        both(&out)
    );
    let tables = target.admin(
        "gafaelfawr",
        "SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace;",
    );
    assert_eq!(tables, "0\n", "a failed restore left objects behind");
    let before = r.calls().len();
    let out = r.run(&["--yes", "switch"]);
    assert!(!out.status.success(), "switch ran after a failed restore");
    assert!(
        both(&out).contains("verify has not passed"),
        "{}",
        both(&out)
    );
    let calls = r.calls()[before..].to_string();
    assert!(
        !calls.contains("argocd") && !calls.contains(" scale "),
        "switch started something:\n{calls}"
    );
}

#[test]
fn the_move_runbook_is_clean_bash_and_refuses_bad_requests() {
    let work = sample_copy("move-db-shellcheck");
    for (name, args) in [
        ("no-context", &["--env", "base"][..]),
        ("narrativelog", &["--env", "idfdev"][..]),
    ] {
        let db = if name == "narrativelog" {
            "narrativelog"
        } else {
            "gafaelfawr"
        };
        let mut all = vec![
            "runbook",
            db,
            "--move-to",
            "postgresql://u@cnpg-rw.cnpg:5433/d",
        ];
        all.extend_from_slice(args);
        let script = ok(xtask_on(&work, &[&all[..], &["--script"]].concat()), name);
        let file = work.join(format!("{name}.sh"));
        fs::write(&file, &script).unwrap();
        let check = Command::new(tool("shellcheck"))
            .arg(&file)
            .output()
            .unwrap();
        assert!(check.status.success(), "{name}: {}", text(&check.stdout));
        assert_bash_syntax(&file, name);
        assert!(script.contains("#   rollback"), "{name}: {script}");
        let pasted = ok(xtask_on(&work, &all), name);
        let file = work.join(format!("{name}.txt"));
        fs::write(&file, &pasted).unwrap();
        assert_bash_syntax(&file, name);
        // The URL's user and database replace the entry's on the new server only.
        assert!(
            pasted.contains("create_role_on_target cnpg-rw.cnpg 5433 "),
            "{pasted}"
        );
        assert!(pasted.contains(" d u \"${PGDB_MOVE_DIR"), "{pasted}");
    }
    let refusals: &[(&[&str], &str)] = &[
        (
            &["--move-to", "postgresql://h"],
            "one environment at a time",
        ),
        (
            &["--env", "base", "--move-to", "postgresql://u:pw@h"],
            "password in the URL",
        ),
        (
            &["--env", "base", "--move-to", "mysql://h"],
            "postgresql://",
        ),
        (
            &["--env", "base", "--rotate", "--move-to", "postgresql://h"],
            "--move-to plans a move",
        ),
    ];
    for (args, needle) in refusals {
        let out = xtask_on(&work, &[&["runbook", "gafaelfawr"][..], args].concat());
        assert_refused(&out, 2, needle, &format!("{args:?}"));
    }
}

/// After every move-db case of `tests/cases/` (the edit per consumer shape, compared
/// whole there), `check` finds no error and no warning: the moved database is not
/// reported missing, and every environment still resolves; after `--allow-manual`,
/// only the pointer left to the operator.
#[test]
fn check_is_clean_after_every_move() {
    let mut seen = 0;
    for case in case_dirs(&root().join("tests/cases")) {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        if !name.starts_with("move-db-") || !case.join("out").is_dir() {
            continue;
        }
        seen += 1;
        let work = scratch(&format!("move-db-check-{name}"));
        copy_tree(&case.join("out"), &work);
        let out = xtask_on(&work, &["check"]);
        let said = both(&out);
        if name == "move-db-allow-manual" {
            // What --allow-manual left to the operator is the one error, until edited.
            assert!(said.contains("1 error, 0 warnings"), "{name}: {said}");
            assert!(said.contains("config.repos.[].url points at plot@postgres.postgres/plot"));
            continue;
        }
        assert!(out.status.success(), "{name}: {said}");
        assert!(said.contains("0 errors, 0 warnings"), "{name}: {said}");
    }
    assert!(seen >= 7, "only {seen} move-db cases with an out/ tree");
    // list shows where the moved database lives now.
    let work = scratch("move-db-list");
    copy_tree(
        &root().join("tests/cases/move-db-url-in-values-env/out"),
        &work,
    );
    let listed = ok(xtask_on(&work, &["list"]), "list");
    assert!(
        listed.contains(
            "  idfdev  times_square_db  times-square -> cnpg-rw.cnpg:5433/timessquare  \
             (applications/times-square/values-idfdev.yaml:3)"
        ),
        "{listed}"
    );
    let json = ok(
        xtask_on(&work, &["list", "--format", "json"]),
        "list --format json",
    );
    let value: serde_yaml::Value = serde_yaml::from_str(&json).unwrap();
    assert_eq!(
        value["elsewhere"][0]["server"].as_str(),
        Some("cnpg-rw.cnpg:5433/timessquare"),
        "{json}"
    );
}
