//! The move runbook rehearsed for real: two PostgreSQL 15 clusters started here (the
//! old server holding the database as the postgres container creates it: a role with
//! an md5 password owning the database, with tables, rows, a sequence and a large
//! object; the new server a second cluster with SCRAM logins), OpenBao as Vault
//! holding the password, and the generated script's phases run by bash under strace.
//! There is no Kubernetes cluster here: a stand-in `kubectl` (a script this test
//! writes) runs the command after `exec ... --` locally against the old server, logs
//! every other call and answers `get deployments` from a file; a stand-in `argocd`
//! logs its calls.

mod servers;

use crate::common::*;
use servers::*;
use std::fs;
use std::process::Command;

/// The servers (kept alive by the caller) and the script of `runbook gafaelfawr
/// --env base --move-to` the new server.
fn rehearsal() -> (Rehearsal, Pg, Pg, OpenBao) {
    let work = sample_copy("move-db-rehearsal");
    let bin = work.join("bin");
    fs::create_dir_all(&bin).unwrap();
    let source = Pg::start(work.join("old"), "md5");
    let target = Pg::start(work.join("new"), "scram-sha-256");
    let (bao, addr) = start_bao(&work, &bin);
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
    let text = ok(xtask_on(&work, &args), "runbook --move-to");
    fs::write(work.join("move.txt"), text).unwrap();
    let r = Rehearsal {
        work: work.clone(),
        bin: bin.clone(),
        script,
        dumps: work.join("dumps"),
        vault_addr: addr,
    };
    (r, source, target, bao)
}

#[test]
fn preflight_copy_verify_and_rollback_run_for_real() {
    tool("strace");
    let (r, source, target, _bao) = rehearsal();
    pasted_preflight(&r);
    preflight_and_freeze(&r);
    copy(&r, &source, &target);
    verify(&r, &source);
    rollback(&r);
    failed_restore(&r, &source, &target);
    cleanup(&r, &source, &target);
}

/// The text form's helpers and preflight blocks, run as pasted, say the same.
fn pasted_preflight(r: &Rehearsal) {
    let text = fs::read_to_string(r.work.join("move.txt")).unwrap();
    let end = text.find("\n# === freeze").expect("a freeze phase");
    let pasted = r.work.join("pasted.sh");
    fs::write(&pasted, &text[..end]).unwrap();
    let out = r.run_file(&pasted, &[]);
    let said = both(&out);
    assert!(out.status.success(), "pasted preflight: {said}");
    assert!(said.contains("absent from the new server"), "{said}");
    assert!(said.contains("Versions: old server 15"), "{said}");
}

fn preflight_and_freeze(r: &Rehearsal) {
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
}

fn copy(r: &Rehearsal, source: &Pg, target: &Pg) {
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
}

fn verify(r: &Rehearsal, source: &Pg) {
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
}

/// rollback: the old database is still there; each consumer synced and scaled back
/// to its recorded counts.
fn rollback(r: &Rehearsal) {
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
}

/// A restore that fails (a grant to a role the new server lacks) leaves the new
/// database empty, and switch refuses to start anything.
fn failed_restore(r: &Rehearsal, source: &Pg, target: &Pg) {
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
    // After the move is merged, the names of the old server's role and database come
    // from another environment's entry, with a warning.
    let moved = scratch("move-db-runbook-after-merge");
    copy_tree(
        &root().join("tests/cases/move-db-host-with-keys-new-user/out"),
        &moved,
    );
    let args = [
        "runbook",
        "exposurelog",
        "--env",
        "usdfdev",
        "--move-to",
        "postgresql://h",
    ];
    let out = xtask_on(&moved, &args);
    assert!(out.status.success(), "{}", both(&out));
    assert!(
        text(&out.stderr).contains("usdfdev: the values have no `exposurelog_db` (moved already?)"),
        "{}",
        both(&out)
    );
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

/// cleanup refuses without a verified copy on the new server; after copy and verify
/// pass again, it dumps, drops the database and its role on the old server and deletes
/// the key from Vault.
fn cleanup(r: &Rehearsal, source: &Pg, target: &Pg) {
    let out = r.run(&["--yes", "cleanup"]);
    assert!(!out.status.success(), "cleanup ran without a verified copy");
    assert!(
        both(&out).contains("verify has not passed"),
        "{}",
        both(&out)
    );
    assert_eq!(
        source.admin(
            "postgres",
            "SELECT count(*) FROM pg_database WHERE datname = 'gafaelfawr';"
        ),
        "1\n"
    );

    source.admin(
        "gafaelfawr",
        "REVOKE SELECT ON token FROM reporter; DROP ROLE reporter;",
    );
    target.admin("postgres", "DROP DATABASE gafaelfawr;");
    for file in ["gafaelfawr-base.dump", "gafaelfawr-base.dump.sha256"] {
        fs::remove_file(r.dumps.join(file)).unwrap();
    }
    for phase in ["copy", "verify"] {
        let out = r.run(&[phase]);
        assert!(out.status.success(), "{phase}: {}", both(&out));
    }
    let out = r.run(&["--yes", "cleanup"]);
    assert!(out.status.success(), "cleanup: {}", both(&out));
    assert!(
        r.dumps
            .join("gafaelfawr-base-final.dump")
            .metadata()
            .unwrap()
            .len()
            > 1000
    );
    let left = source.admin(
        "postgres",
        "SELECT (SELECT count(*) FROM pg_database WHERE datname = 'gafaelfawr') \
         + (SELECT count(*) FROM pg_roles WHERE rolname = 'gafaelfawr');",
    );
    assert_eq!(left, "0\n", "the database or role stayed on the old server");
    let secret = r.vault_secret(BASE_PATH);
    assert!(!secret.contains("gafaelfawr_password"), "{secret}");
    assert!(secret.contains("root_password"), "{secret}");
}

/// The benchmark of the copy runs end to end (on a small database here; the figure in
/// README is for 300 MB) and finds both servers equal afterwards.
/// The benchmark is development-only (the `bench` feature): `.ci/run` runs this with
/// `--features bench`; without it, `bench` says how to get it.
#[cfg(feature = "bench")]
#[test]
fn the_copy_benchmark_runs() {
    let work = scratch("move-db-bench");
    let out = xtask(&work, &["bench", "--move-copy", "3"]);
    let said = ok(out, "bench --move-copy 3");
    assert!(said.contains("pg_restore --single-transaction"), "{said}");
    assert!(said.contains(" MB/s; with verify "), "{said}");
    let out = xtask(&work, &["bench", "--move-copy", "0"]);
    assert_refused(&out, 2, "invalid --move-copy `0`", "bench --move-copy 0");
}

#[cfg(not(feature = "bench"))]
#[test]
fn the_benchmark_is_not_in_the_shipped_binary() {
    let work = scratch("move-db-no-bench");
    let out = xtask(&work, &["bench", "--move-copy", "3"]);
    assert_refused(
        &out,
        2,
        "`bench` is development-only",
        "bench without the feature",
    );
}

/// `local-db` keeps working for what remains in the environment after a move: the
/// moved database is no longer created, every other one is.
#[test]
fn local_db_serves_what_remains_after_a_move() {
    let work = scratch("move-db-local-db");
    copy_tree(
        &root().join("tests/cases/move-db-url-in-values-env/out"),
        &work,
    );
    let target = std::env::temp_dir().join(format!("xtask-move-db-{}", std::process::id()));
    let _ = fs::remove_dir_all(&target);
    let local_db = |action: &str, extra: &[&str]| {
        let mut cmd = xtask_command(&work);
        cmd.args(["--quiet", "local-db", action, "--env", "idfdev"])
            .args(extra)
            .args(repo_args(&work))
            .env("XDG_STATE_HOME", target.join("state"));
        cmd.output().unwrap()
    };
    let up = local_db("up", &["--port", "0"]);
    let down = local_db("down", &[]);
    let _ = fs::remove_dir_all(&target);
    let said = ok(up, "local-db up");
    ok(down, "local-db down");
    for db in [
        "exposurelog_db",
        "gafaelfawr_db",
        "nublado3_db",
        "ook_db",
        "plot_db",
    ] {
        assert!(said.contains(&format!("  {db} ")), "{db}: {said}");
    }
    assert!(!said.contains("times_square_db"), "{said}");
}
