//! The installed name: the `pgdb` binary (what `cargo install --path .` and the
//! pre-commit hook install) runs the same program, found from the deployment
//! repository it is started in, and its help and advice name `pgdb`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        } else {
            fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// A fresh folder outside the workspace.
fn outside(name: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join(format!("pgdb-test-{}", std::process::id()))
        .join(name);
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir.canonicalize().unwrap()
}

fn pgdb(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pgdb"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the pgdb binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn pgdb_works_from_inside_a_deployment_and_names_itself() {
    let work = outside("inside");
    copy_tree(&Path::new(env!("CARGO_MANIFEST_DIR")).join("sample"), &work);
    let out = pgdb(&work.join("phalanx/services"), &["list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        format!(
            "using phalanx {} (split layout), charts {}\n",
            work.join("phalanx").display(),
            work.join("charts").display()
        )
    );
    assert!(text(&out.stdout).contains("narrativelog"));
    let out = pgdb(&work.join("phalanx"), &["check"]);
    assert!(out.status.success(), "{}", text(&out.stdout));

    let out = pgdb(&work, &["--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    assert!(help.starts_with("pgdb: "), "{help}");
    assert!(
        help.contains("\n    pgdb [GLOBAL OPTIONS] <COMMAND>"),
        "{help}"
    );
    assert!(!help.contains("cargo xtask"), "{help}");

    let out = pgdb(&work, &["list"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("`pgdb init --phalanx DIR`"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn pgdb_advice_names_pgdb_not_cargo_xtask() {
    let work = outside("advice");
    copy_tree(&Path::new(env!("CARGO_MANIFEST_DIR")).join("sample"), &work);
    let phalanx = work.join("phalanx");
    let values = phalanx.join("services/postgres/values-base.yaml");
    let mut content = fs::read_to_string(&values).unwrap();
    content = content.replace(
        "  vault_secrets:",
        "  lovelog_db:\n    user: lovelog\n    db: lovelog\n  vault_secrets:",
    );
    fs::write(&values, content).unwrap();
    // check's help lines: a deployment repository has no `cargo xtask`.
    let out = pgdb(&phalanx, &["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let found = text(&out.stdout);
    assert!(
        found.contains("`pgdb add-db lovelog --env base`"),
        "{found}"
    );
    assert!(!found.contains("cargo xtask"), "{found}");
    // add-db's "nothing to change" points at the runbook under the same name.
    let out = pgdb(
        &phalanx,
        &["add-db", "jupyterhub", "--user", "jovyan", "--env", "base"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout) + &text(&out.stderr);
    assert!(
        said.contains("`pgdb runbook jupyterhub --env base`"),
        "{said}"
    );
    assert!(!said.contains("cargo xtask"), "{said}");
    let out = pgdb(&phalanx, &["runbook", "nosuch"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("`pgdb add-db nosuch`"),
        "{}",
        text(&out.stderr)
    );
    let out = pgdb(&phalanx, &["runbook", "jupyterhub", "--script"]);
    assert!(!text(&out.stdout).contains("cargo xtask"));
}
