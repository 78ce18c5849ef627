//! The applications on the other side, end to end on a tree modeled on today's
//! phalanx (`tests/fixtures/check/consumers`: `environments/` enabling different
//! applications per environment; gafaelfawr-, nublado-, times-square- and
//! exposurelog-shaped consumers in each pointer shape; copies both ways; `if:`
//! flags; applications enabled where the database is not).
//!
//! Every add-db and remove-db case compares the resolver's verdicts per
//! environment before and after: the `copy-*` findings of `check --format json`
//! (the keys `phalanx secrets sync` could not resolve, with their environments)
//! may shrink, never grow; a refused case leaves the tree byte for byte.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn fixture() -> PathBuf {
    root().join("tests/fixtures/check/consumers")
}

fn work(name: &str) -> PathBuf {
    let work = scratch(&format!("consumers-{name}"));
    copy_tree(&fixture(), &work);
    work
}

/// The unresolvable keys per environment: `(rule, subject, environment)` of
/// every `copy-*` finding, one per environment its message names.
fn verdicts(work: &Path) -> BTreeSet<(String, String, String)> {
    let out = xtask_on(work, &["check", "--format", "json"]);
    let doc: serde_yaml::Value = serde_yaml::from_slice(&out.stdout).expect("check's JSON parses");
    let envs = ["idfdev", "usdfdev", "usdfint", "usdfprod"];
    let mut set = BTreeSet::new();
    for f in doc["findings"].as_sequence().unwrap() {
        let rule = f["rule"].as_str().unwrap();
        if !rule.starts_with("copy-") || rule == "copy-without-source" {
            continue;
        }
        let message = f["message"].as_str().unwrap();
        for env in envs.iter().filter(|e| message.contains(*e)) {
            set.insert((
                rule.to_string(),
                f["subject"].as_str().unwrap().to_string(),
                env.to_string(),
            ));
        }
    }
    set
}

/// Runs an edit command; on success, no environment may gain an unresolvable key.
fn edit(work: &Path, args: &[&str]) -> std::process::Output {
    let before = verdicts(work);
    let tree = read_tree(work);
    let out = xtask_on(work, args);
    let after = verdicts(work);
    if out.status.success() {
        let new: Vec<_> = after.difference(&before).collect();
        assert!(new.is_empty(), "{args:?} made keys unresolvable: {new:?}");
    } else {
        assert_eq!(read_tree(work), tree, "{args:?} failed but changed files");
        assert_eq!(after, before);
    }
    out
}

fn file(work: &Path, relative: &str) -> String {
    std::fs::read_to_string(work.join("phalanx").join(relative)).unwrap_or_default()
}

#[test]
fn the_fixture_is_clean_and_resolves_everywhere() {
    let work = work("clean");
    let out = xtask_on(&work, &["check"]);
    assert_eq!(text(&out.stdout), "0 errors, 0 warnings\n");
    assert!(verdicts(&work).is_empty());
}

#[test]
fn a_copy_from_an_application_the_environment_does_not_enable_is_refused() {
    let work = work("copy-not-enabled");
    // times-square runs in idfdev but not in usdfdev.
    let out = edit(
        &work,
        &[
            "add-db",
            "ook",
            "--env",
            "idfdev",
            "--env",
            "usdfdev",
            "--secret",
            "copy:times-square:TS_GITHUB_APP_PRIVATE_KEY",
        ],
    );
    assert_refused(
        &out,
        1,
        "times-square is not enabled in usdfdev",
        "copy from a disabled application",
    );
    // Where it runs, the copy resolves (a static key) and is written.
    let out = edit(
        &work,
        &[
            "add-db",
            "ook",
            "--env",
            "idfdev",
            "--secret",
            "copy:times-square:TS_GITHUB_APP_PRIVATE_KEY",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(file(&work, "applications/postgres/secrets.yaml")
        .contains("key: TS_GITHUB_APP_PRIVATE_KEY"));
}

#[test]
fn a_copy_whose_source_key_is_missing_is_refused() {
    let work = work("copy-missing");
    let out = edit(
        &work,
        &[
            "add-db",
            "ook",
            "--env",
            "idfdev",
            "--secret",
            "copy:times-square:NO_SUCH_KEY",
        ],
    );
    assert_refused(
        &out,
        1,
        "times-square/NO_SUCH_KEY is declared nowhere",
        "missing key",
    );
    // gafaelfawr's database-password exists only where config.internalDatabase is true.
    std::fs::write(
        work.join("phalanx/applications/gafaelfawr/values-usdfint.yaml"),
        "config:\n  internalDatabase: false\n",
    )
    .unwrap();
    let before = verdicts(&work);
    assert!(before.contains(&(
        "copy-source-missing".into(),
        "postgres/gafaelfawr_password".into(),
        "usdfint".into()
    )));
    let out = edit(
        &work,
        &[
            "add-db",
            "ook",
            "--env",
            "usdfint",
            "--secret",
            "copy:gafaelfawr:database-password",
        ],
    );
    assert_refused(
        &out,
        1,
        "gafaelfawr/database-password does not exist in usdfint",
        "key under a false if",
    );
}

#[test]
fn copy_loops_and_dangling_sources_are_refused() {
    let work = work("copy-loop");
    let out = edit(
        &work,
        &[
            "add-db",
            "ook",
            "--env",
            "idfdev",
            "--secret",
            "copy:postgres:root_password",
        ],
    );
    assert_refused(
        &out,
        2,
        "postgres would copy its password from itself",
        "loop",
    );
    let out = edit(
        &work,
        &[
            "add-db",
            "ook",
            "--env",
            "idfdev",
            "--secret",
            "copy:nosuchapp:k",
        ],
    );
    assert_refused(&out, 1, "applications/nosuchapp does not exist", "dangling");
}

#[test]
fn app_copies_are_guarded_where_the_database_is_set() {
    let work = work("app-guard");
    // nightreport has no secrets.yaml yet and runs in idfdev and usdfint.
    std::fs::create_dir_all(work.join("phalanx/applications/nightreport")).unwrap();
    for env in ["idfdev", "usdfint"] {
        let path = work.join(format!("phalanx/environments/values-{env}.yaml"));
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(
            &path,
            text.replace(
                "  postgres: true\n",
                "  nightreport: true\n  postgres: true\n",
            ),
        )
        .unwrap();
    }
    let out = edit(
        &work,
        &[
            "add-db",
            "nightreport",
            "--env",
            "idfdev",
            "--app",
            "nightreport",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(
        "`internalDatabase: true` is in applications/nightreport/values-ENV.yaml of idfdev"
    ));
    let secrets = file(&work, "applications/nightreport/secrets.yaml");
    assert!(secrets.contains("database-password:\n"), "{secrets}");
    assert!(
        secrets.contains("  if: internalDatabase\n  copy:\n"),
        "{secrets}"
    );
    assert_eq!(
        file(&work, "applications/nightreport/values-idfdev.yaml"),
        "internalDatabase: true\n"
    );
    assert_eq!(
        file(&work, "applications/nightreport/values-usdfint.yaml"),
        ""
    );
    // Without the `if:`, usdfint (nightreport enabled, no database) would not resolve.
    assert!(verdicts(&work).is_empty());
    let out = xtask_on(&work, &["check"]);
    assert_eq!(text(&out.stdout), "0 errors, 0 warnings\n");
    // A second run changes nothing.
    let tree = read_tree(&work);
    let out = edit(
        &work,
        &[
            "add-db",
            "nightreport",
            "--env",
            "idfdev",
            "--app",
            "nightreport",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(read_tree(&work), tree);
}

#[test]
fn an_existing_flag_is_reused() {
    let work = work("app-flag");
    let out = edit(
        &work,
        &[
            "add-db",
            "hubextra",
            "--env",
            "idfdev",
            "--env",
            "usdfdev",
            "--app",
            "nublado:extra",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let secrets = file(&work, "applications/nublado/secrets.yaml");
    assert!(secrets.contains("extra:\n  description: \"Password of the hubextra database, copied from postgres.\"\n  if: hub.internalDatabase\n"), "{secrets}");
    assert!(text(&out.stdout).contains("existing flag `hub.internalDatabase`"));
    assert!(verdicts(&work).is_empty());
    // Where the flag holds but the database would not be set, the plan is refused.
    let out = edit(
        &work,
        &[
            "add-db",
            "hubonly",
            "--env",
            "idfdev",
            "--app",
            "nublado:only",
        ],
    );
    assert_refused(
        &out,
        1,
        "postgres/hubonly_password does not exist in usdfdev",
        "flag wider than the database",
    );
}

#[test]
fn ambiguous_keys_are_quoted() {
    for (i, key) in [
        "true", "1", "0x1", "1e3", "True", "yes", "012", "1_000", "on",
    ]
    .iter()
    .enumerate()
    {
        let work = work(&format!("quoted-{i}"));
        let out = edit(
            &work,
            &[
                "add-db",
                "ook",
                "--env",
                "idfdev",
                "--env",
                "usdfdev",
                "--app",
                &format!("exposurelog:{key}"),
            ],
        );
        assert!(out.status.success(), "{key}: {}", text(&out.stderr));
        let secrets = file(&work, "applications/exposurelog/secrets.yaml");
        assert!(
            secrets.contains(&format!("\"{key}\":\n")),
            "{key}: {secrets}"
        );
        let doc: serde_yaml::Value = serde_yaml::from_str(&secrets).unwrap();
        assert!(
            doc.get(*key).is_some(),
            "{key} reads back as the string key"
        );
    }
}

#[test]
fn remove_db_refuses_while_an_application_points_at_the_database() {
    let work = work("remove-pointer");
    let out = edit(&work, &["remove-db", "times_square", "--env", "usdfint"]);
    assert_refused(
        &out,
        1,
        "applications/times-square/values-usdfint.yaml:3: times-square in usdfint: config.databaseUrl points at timessquare@postgres.postgres/timessquare",
        "databaseUrl",
    );
    let out = edit(&work, &["remove-db", "exposurelog", "--env", "usdfdev"]);
    assert_refused(
        &out,
        1,
        "applications/exposurelog/values-usdfdev.yaml:3: exposurelog in usdfdev: db.host",
        "host",
    );
    let out = edit(&work, &["remove-db", "gafaelfawr", "--env", "idfdev"]);
    assert_refused(&out, 1, "applications/gafaelfawr/values-idfdev.yaml:2: gafaelfawr in idfdev: config.internalDatabase is true", "flag");
    // Once times-square points elsewhere in usdfint and stops copying, usdfint's entry goes.
    std::fs::write(
        work.join("phalanx/applications/times-square/values-usdfint.yaml"),
        "config:\n  databaseUrl: \"postgresql://timessquare@rsp-db-rw.postgres-db/timessquare\"\n",
    )
    .unwrap();
    let out = edit(&work, &["remove-db", "times_square", "--env", "usdfint"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!file(&work, "applications/postgres/values-usdfint.yaml").contains("times_square_db"));
}

/// The runbook's Vault phases on a real OpenBao dev server, with a stand-in
/// `phalanx` (`tests/phalanx_standin.py`: the documented `secrets sync` and
/// `secrets audit`, resolving as phalanx does) and `vault` being `bao`.
mod vault {
    use super::*;
    use std::collections::BTreeMap;
    use std::process::{Child, Command, Output, Stdio};

    const TOKEN: &str = "consumers-test-root";
    pub const PREFIX: &str = "secret/phalanx/idfdev";

    fn venv_bin(name: &str) -> PathBuf {
        let path = root().join("target/venv/bin").join(name);
        let main = PathBuf::from("/work/main/target/venv/bin").join(name);
        [path, main]
            .into_iter()
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
}

#[test]
fn rotation_follows_the_copy_to_its_source_on_openbao() {
    let scratch_dir = scratch("consumers-vault-server");
    let server = vault::Server::start(&scratch_dir);
    let work = vault::tree("vault-rotate", &server.addr);
    let phalanx = work.join("phalanx");
    vault::put_static(&server);
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
    let out = vault::phase(
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
    let server = vault::Server::start(&scratch_dir);
    let work = vault::tree("vault-audit", &server.addr);
    let phalanx = work.join("phalanx");
    vault::put_static(&server);
    let out = server.run(&["phalanx", "secrets", "sync", "idfdev"], Some(&phalanx));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = edit(&work, &["add-db", "ook", "--env", "idfdev"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The audit reports the key the sync is about to make (exit 1); the runbook goes on.
    let audit = server.run(&["phalanx", "secrets", "audit", "idfdev"], Some(&phalanx));
    assert_eq!(audit.status.code(), Some(1));
    assert!(text(&audit.stdout).contains("postgres/ook_password"));
    let out = vault::phase(
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
    let out = vault::phase(
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
