//! The runbook's Vault phases on a real OpenBao dev server, with a stand-in
//! `phalanx` (`tests/phalanx_standin.py`: the documented `secrets sync` and
//! `secrets audit`, resolving as phalanx does) and `vault` being `bao`.

use super::*;
use std::collections::BTreeMap;
use std::process::{Child, Command, Output, Stdio};

const TOKEN: &str = "consumers-test-root";
pub const PREFIX: &str = "secret/phalanx/idfdev";

/// A program of the workspace's `target/venv/bin` (what `.ci/run` installs), else of PATH.
fn venv_bin(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::iter::once(root().join("target/venv/bin"))
        .chain(std::env::split_paths(&path))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("`{name}` is missing: run `bash .ci/run`, which installs it"))
}

pub struct Server {
    child: Child,
    pub addr: String,
    pub bin: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// A dev server on a free port; `bin/` holds `vault` (bao) and `phalanx`.
    pub fn start(work: &Path) -> Server {
        let bao = venv_bin("bao");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(work.join("bao.log")).unwrap();
        let child = Command::new(&bao)
            .args(["server", "-dev", &format!("-dev-root-token-id={TOKEN}")])
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("bao starts");
        let bin = work.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink(&bao, bin.join("vault")).unwrap();
        let phalanx = bin.join("phalanx");
        std::fs::write(
            &phalanx,
            format!(
                "#!/bin/sh\nexec {} {} \"$@\"\n",
                venv_bin("python3").display(),
                root().join("tests/phalanx_standin.py").display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&phalanx, std::fs::Permissions::from_mode(0o755)).unwrap();
        let server = Server {
            child,
            addr: format!("http://127.0.0.1:{port}"),
            bin,
        };
        for _ in 0..300 {
            if server.run(&["vault", "status"], None).status.success() {
                return server;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!(
            "OpenBao did not come up: {}",
            std::fs::read_to_string(work.join("bao.log")).unwrap_or_default()
        );
    }

    /// Runs a program of `bin/` (or the shell) with the server's address and token.
    pub fn run(&self, args: &[&str], cwd: Option<&Path>) -> Output {
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let program = self.bin.join(args[0]);
        let mut cmd = Command::new(if program.exists() {
            program
        } else {
            PathBuf::from(args[0])
        });
        cmd.args(&args[1..])
            .env("PATH", path)
            .env("VAULT_ADDR", &self.addr)
            .env("VAULT_TOKEN", TOKEN)
            .env_remove("BAO_ADDR")
            .env_remove("BAO_TOKEN")
            .stdin(Stdio::null());
        if let Some(dir) = cwd {
            cmd.current_dir(dir);
        }
        cmd.output().unwrap()
    }

    pub fn secret(&self, app: &str) -> BTreeMap<String, String> {
        let out = self.run(
            &[
                "vault",
                "kv",
                "get",
                "-format=json",
                &format!("{PREFIX}/{app}"),
            ],
            None,
        );
        if !out.status.success() {
            return BTreeMap::new();
        }
        let value: serde_yaml::Value = serde_yaml::from_slice(&out.stdout).unwrap();
        value["data"]["data"]
            .as_mapping()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().unwrap().to_string(),
                    v.as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
}

/// The static secrets of idfdev (what 1Password holds in a real environment).
pub fn put_static(server: &Server) {
    let path = format!("{PREFIX}/times-square");
    let out = server.run(
        &[
            "vault",
            "kv",
            "put",
            &path,
            "TS_GITHUB_APP_PRIVATE_KEY=static",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// The consumers tree with idfdev's Vault at this server.
pub fn tree(name: &str, server_addr: &str) -> PathBuf {
    let work = work(name);
    let env = work.join("phalanx/environments/values-idfdev.yaml");
    let text = std::fs::read_to_string(&env).unwrap();
    std::fs::write(
        &env,
        format!("{text}vaultUrl: \"{server_addr}\"\nvaultPathPrefix: \"{PREFIX}\"\n"),
    )
    .unwrap();
    work
}

/// Runs phase `phase` of `runbook ARGS --script` from the phalanx checkout.
pub fn phase(server: &Server, work: &Path, args: &[&str], phase: &[&str]) -> Output {
    let mut all = vec!["runbook"];
    all.extend_from_slice(args);
    all.push("--script");
    let out = xtask_on(work, &all);
    assert!(
        out.status.success(),
        "runbook {args:?}: {}",
        text(&out.stderr)
    );
    let script = work.join("steps.sh");
    std::fs::write(&script, &out.stdout).unwrap();
    let script = script.display().to_string();
    let mut run = vec!["bash", script.as_str()];
    run.extend_from_slice(phase);
    server.run(&run, Some(&work.join("phalanx")))
}

#[test]
fn rotation_follows_the_copy_to_its_source_on_openbao() {
    let scratch_dir = scratch("consumers-vault-server");
    let server = Server::start(&scratch_dir);
    let work = tree("vault-rotate", &server.addr);
    let phalanx = work.join("phalanx");
    put_static(&server);
    // The environment as installed: the sync makes every secret.
    let out = server.run(&["phalanx", "secrets", "sync", "idfdev"], Some(&phalanx));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let gafaelfawr = server.secret("gafaelfawr");
    let postgres = server.secret("postgres");
    assert_eq!(
        postgres["gafaelfawr_password"],
        gafaelfawr["database-password"]
    );

    // postgres copies gafaelfawr_password from gafaelfawr's database-password: the
    // rotation renews it there, and the sync carries it to postgres.
    let out = phase(
        &server,
        &work,
        &["gafaelfawr", "--env", "idfdev", "--rotate"],
        &["--yes", "new-password"],
    );
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let rotated = server.secret("gafaelfawr");
    let new = &rotated["database-password"];
    assert_ne!(
        new, &gafaelfawr["database-password"],
        "the source was not renewed"
    );
    assert_eq!(new.len(), 64);
    assert_eq!(
        &server.secret("postgres")["gafaelfawr_password"],
        new,
        "postgres's copy did not follow"
    );
    assert_eq!(rotated["bootstrap-token"], gafaelfawr["bootstrap-token"]);
    assert_eq!(rotated["redis-password"], gafaelfawr["redis-password"]);
    for (key, value) in &postgres {
        if key != "gafaelfawr_password" {
            assert_eq!(&server.secret("postgres")[key], value, "{key} changed");
        }
    }
}

#[test]
fn audit_is_shown_and_a_failing_sync_stops_the_runbook() {
    let scratch_dir = scratch("consumers-vault-server-audit");
    let server = Server::start(&scratch_dir);
    let work = tree("vault-audit", &server.addr);
    let phalanx = work.join("phalanx");
    put_static(&server);
    let out = server.run(&["phalanx", "secrets", "sync", "idfdev"], Some(&phalanx));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = edit(&work, &["add-db", "ook", "--env", "idfdev"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The audit reports the key the sync is about to make (exit 1); the runbook goes on.
    let audit = server.run(&["phalanx", "secrets", "audit", "idfdev"], Some(&phalanx));
    assert_eq!(audit.status.code(), Some(1));
    assert!(text(&audit.stdout).contains("postgres/ook_password"));
    let out = phase(
        &server,
        &work,
        &["ook", "--env", "idfdev"],
        &["before-merge"],
    );
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(server.secret("postgres")["ook_password"].len(), 64);
    // An unresolvable key makes the sync refuse: the runbook stops with its message.
    let secrets = phalanx.join("applications/postgres/secrets.yaml");
    let text_before = std::fs::read_to_string(&secrets).unwrap();
    std::fs::write(
        &secrets,
        text_before.replace(
            "  if: ook_db\n  generate:\n    type: password\n",
            "  if: ook_db\n  copy:\n    application: times-square\n    key: NOT_THERE\n",
        ),
    )
    .unwrap();
    let out = phase(
        &server,
        &work,
        &["ook", "--env", "idfdev"],
        &["before-merge"],
    );
    assert!(!out.status.success(), "the runbook went past a failed sync");
    assert!(
        text(&out.stderr).contains("Some secrets could not be resolved: postgres/ook_password"),
        "{}",
        text(&out.stderr)
    );
}
