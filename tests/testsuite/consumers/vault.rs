//! The runbook's Vault phases on a real OpenBao dev server, with a stand-in
//! `phalanx` (`tests/phalanx_standin.py`: the documented `secrets sync` and
//! `secrets audit`, resolving as phalanx does) and `vault` being `bao`.

use super::*;
use crate::common::openbao::{tool, OpenBao};
use std::collections::BTreeMap;
use std::process::{Output, Stdio};

pub const PREFIX: &str = "secret/phalanx/idfdev";

/// An OpenBao dev server whose `bin/` also holds the stand-in `phalanx`.
pub struct Server {
    bao: OpenBao,
    pub addr: String,
}

impl Server {
    /// A dev server on a free port; `bin/` holds `vault` (bao) and `phalanx`.
    pub fn start(work: &Path) -> Server {
        let bao = OpenBao::start(work, &work.join("bin"));
        let phalanx = bao.bin.join("phalanx");
        std::fs::write(
            &phalanx,
            format!(
                "#!/bin/sh\nexec {} {} \"$@\"\n",
                tool("python3").display(),
                root().join("tests/phalanx_standin.py").display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&phalanx, std::fs::Permissions::from_mode(0o755)).unwrap();
        let addr = bao.addr.clone();
        Server { bao, addr }
    }

    /// Runs a program of `bin/` (or the shell) with the server's address and token.
    pub fn run(&self, args: &[&str], cwd: Option<&Path>) -> Output {
        let program = self.bao.bin.join(args[0]);
        let mut cmd = self.bao.command(&if program.exists() {
            program
        } else {
            PathBuf::from(args[0])
        });
        cmd.args(&args[1..]).stdin(Stdio::null());
        if let Some(dir) = cwd {
            cmd.current_dir(dir);
        }
        cmd.output().unwrap()
    }

    /// An application's secret in idfdev, empty if it has none.
    pub fn secret(&self, app: &str) -> BTreeMap<String, String> {
        self.bao
            .secret_if_any(&format!("{PREFIX}/{app}"))
            .unwrap_or_default()
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
