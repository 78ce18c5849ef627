//! The tool against the things that happen to shared files: concurrent runs,
//! failing and killed runs (real faults injected with `strace`), symlinks, hard
//! links, other owners, read-only folders, odd bytes and special files, and a
//! property test over random sequences of edits.
//!
//! Every case runs the real binary on a scratch copy of the sample (or a layout
//! fixture) and looks at the files it left.

use crate::common::*;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A scratch copy of a fixture and the arguments that point the tool at it.
struct Tree {
    dir: PathBuf,
    repos: Vec<String>,
}

impl Tree {
    fn sample(name: &str) -> Tree {
        Tree::of(&root().join("sample"), name)
    }

    fn of(fixture: &Path, name: &str) -> Tree {
        let dir = scratch(&format!("adversarial-{name}"));
        copy_tree(fixture, &dir);
        let repos = repo_args(&dir);
        Tree { dir, repos }
    }

    fn values(&self, env: &str) -> PathBuf {
        self.dir
            .join(format!("phalanx/services/postgres/values-{env}.yaml"))
    }

    fn args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut all = args.to_vec();
        all.extend(self.repos.iter().map(String::as_str));
        all
    }

    fn run(&self, args: &[&str]) -> Output {
        xtask(&self.dir, &self.args(args))
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} failed ({:?}):\n{}{}",
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// The tool under `strace -f` with the given `-e` expressions.
    fn strace(&self, expressions: &[&str], args: &[&str]) -> Output {
        let mut command = Command::new("strace");
        command.args(["-f", "-qq", "-o", "/dev/null"]);
        for e in expressions {
            command.args(["-e", e]);
        }
        command
            .arg(env!("CARGO_BIN_EXE_xtask"))
            .args(self.args(args))
            .current_dir(&self.dir)
            .env("NO_COLOR", "1");
        command
            .output()
            .expect("strace is missing: run `bash .ci/run` to install it")
    }

    /// `check` exits 0 with no error.
    fn assert_clean(&self, context: &str) {
        let out = self.run(&["check"]);
        assert!(
            out.status.success() && text(&out.stdout).contains("0 errors"),
            "{context}: check is not clean:\n{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }

    /// No temporary file, journal or lock file anywhere in the tree.
    fn assert_no_leftovers(&self, context: &str) {
        for name in read_tree(&self.dir).keys() {
            assert!(
                !name.contains(".xtask-") && !name.contains("xtask.lock"),
                "{context}: {name} was left behind"
            );
        }
    }
}

const ADD: &[&str] = &["add-db", "alpha", "--all-envs"];

#[test]
fn concurrent_runs_keep_every_database() {
    for round in 0..20 {
        let tree = Tree::sample("concurrent");
        let names = ["alpha", "beta", "gamma"];
        let children: Vec<_> = names
            .iter()
            .map(|name| {
                Command::new(env!("CARGO_BIN_EXE_xtask"))
                    .args(tree.args(&["add-db", name, "--all-envs"]))
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "round {round}: {}", text(&out.stderr));
        }
        let list = tree.ok(&["list"]);
        for name in names {
            assert!(
                list.contains(&format!("{name}_db")),
                "round {round}: {name} is lost:\n{list}"
            );
        }
        tree.assert_clean(&format!("round {round}"));
        tree.assert_no_leftovers(&format!("round {round}"));
    }
}

#[test]
fn a_second_run_waits_then_names_the_holder() {
    let tree = Tree::sample("lock");
    // The first run sleeps 3 s on its first file's rename (the journal's is the
    // first), holding the lock.
    let mut first = Command::new("strace")
        .args([
            "-f",
            "-qq",
            "-o",
            "/dev/null",
            "-e",
            "inject=rename:delay_enter=3000000:when=2",
        ])
        .arg(env!("CARGO_BIN_EXE_xtask"))
        .args(tree.args(ADD))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("strace is missing: run `bash .ci/run` to install it");
    let journal = tree.dir.join("phalanx/.xtask-journal");
    while !journal.exists() {
        assert!(
            first.try_wait().unwrap().is_none(),
            "the first run ended early"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let second = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(tree.args(&["add-db", "beta", "--all-envs"]))
        .env("XTASK_LOCK_TIMEOUT", "0.2")
        .output()
        .unwrap();
    let message = text(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{message}");
    assert!(
        message.contains("locked by another run")
            && message.contains("pid ")
            && message.contains("add-db alpha"),
        "{message}"
    );
    assert!(first.wait().unwrap().success());
    let list = tree.ok(&["list"]);
    assert!(
        list.contains("alpha_db") && !list.contains("beta_db"),
        "{list}"
    );
    tree.assert_no_leftovers("after both runs");
}

/// A failure at each rename, fsync or write of a multi-file change (`command` on
/// the sample), then a plain re-run: the tree ends byte for byte as an undisturbed
/// run leaves it, with nothing left behind.
fn faults_converge(label: &str, command: &[&str], renames: usize) {
    let reference = Tree::sample(&format!("{label}-reference"));
    reference.ok(command);
    let calls = file_calls(label, command);
    assert!(
        calls.iter().filter(|(s, _)| s == "rename").count() == renames
            && calls.iter().filter(|(s, _)| s == "write").count() > renames,
        "{label}: an undisturbed run makes other file calls than expected: {calls:?}"
    );
    let mut faults = Vec::new();
    for (syscall, n) in &calls {
        let error = if syscall == "write" { "ENOSPC" } else { "EIO" };
        faults.push(format!("inject={syscall}:error={error}:when={n}"));
        faults.push(format!("inject={syscall}:signal=SIGKILL:when={n}"));
    }
    for fault in &faults {
        let tree = Tree::sample(&format!("{label}-fault"));
        let out = tree.strace(&[fault], command);
        if !out.status.success() {
            // Whatever it said, the next run must finish (or redo) the job.
            let stderr = text(&out.stderr);
            assert!(!stderr.contains("panicked"), "{label} {fault}: {stderr}");
        }
        let again = tree.run(command);
        assert!(
            again.status.success(),
            "{label} {fault}: the re-run failed:\n{}",
            text(&again.stderr)
        );
        assert_same_tree(&tree.dir, &reference.dir, &format!("{label} {fault}"));
        tree.assert_no_leftovers(fault);
    }
}

#[test]
fn every_injected_fault_in_add_db_converges_on_the_next_run() {
    faults_converge("add", ADD, 9);
}

#[test]
fn every_injected_fault_in_remove_db_converges_on_the_next_run() {
    // The journal; the template block, both charts, the generator and two values files.
    faults_converge("remove", &["remove-db", "narrativelog"], 7);
}

/// The `rename`, `fsync` and file (not standard output or error) `write` calls
/// of an undisturbed run of `command`, each as (syscall, its 1-based count among
/// calls of that syscall), as `strace`'s `when=` counts them.
fn file_calls(label: &str, args: &[&str]) -> Vec<(String, usize)> {
    let tree = Tree::sample(&format!("{label}-count-calls"));
    let log = tree
        .dir
        .parent()
        .unwrap()
        .join(format!("adversarial-{label}-count-calls.log"));
    let mut command = Command::new("strace");
    command
        .args(["-f", "-qq", "-e", "trace=rename,fsync,write", "-o"])
        .arg(&log)
        .arg(env!("CARGO_BIN_EXE_xtask"))
        .args(tree.args(args))
        .stdout(Stdio::null());
    let status = command
        .status()
        .expect("strace is missing: run `bash .ci/run` to install it");
    assert!(status.success());
    let mut counts = std::collections::HashMap::new();
    let mut calls = Vec::new();
    for line in fs::read_to_string(&log).unwrap().lines() {
        let call = line
            .split_once(' ')
            .map_or(line, |(_, rest)| rest)
            .trim_start();
        for syscall in ["rename", "fsync", "write"] {
            if let Some(args) = call.strip_prefix(&format!("{syscall}(")) {
                let n = counts.entry(syscall).or_insert(0);
                *n += 1;
                let fd = args
                    .split(|c: char| !c.is_ascii_digit())
                    .next()
                    .unwrap_or("");
                if syscall != "write" || !(fd == "1" || fd == "2") {
                    calls.push((syscall.to_string(), *n));
                }
            }
        }
    }
    calls
}

#[test]
fn check_warns_about_an_unfinished_change() {
    let tree = Tree::sample("unfinished");
    let out = tree.strace(&["inject=rename:error=EIO:when=3"], ADD);
    assert_eq!(out.status.code(), Some(2));
    let message = text(&out.stderr);
    assert!(
        message.contains("already replaced")
            && message.contains("next add-db or remove-db finishes"),
        "{message}"
    );
    let check = tree.run(&["check"]);
    assert!(
        text(&check.stderr).contains("did not finish"),
        "{}",
        text(&check.stderr)
    );
    // The umbrella's dependency too is moved by the next run.
    tree.ok(&["list"]);
    tree.ok(&["remove-db", "nothing_here"]);
    let umbrella =
        fs::read_to_string(tree.dir.join("phalanx/services/postgres/Chart.yaml")).unwrap();
    assert!(umbrella.contains(">=0.1.5"), "{umbrella}");
    tree.assert_no_leftovers("after the re-run");
}

#[test]
fn a_symlinked_values_file_is_edited_at_its_target() {
    let tree = Tree::sample("symlink");
    let values = tree.values("base");
    let shared = tree.dir.join("phalanx/linked-base.yaml");
    fs::rename(&values, &shared).unwrap();
    std::os::unix::fs::symlink("../../linked-base.yaml", &values).unwrap();
    tree.ok(ADD);
    assert!(fs::symlink_metadata(&values)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(fs::read_to_string(&shared).unwrap().contains("alpha_db"));
    tree.assert_clean("after add-db");
    tree.ok(&["remove-db", "alpha"]);
    assert!(fs::symlink_metadata(&values)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(!fs::read_to_string(&shared).unwrap().contains("alpha_db"));
}

#[test]
fn a_hard_linked_file_is_refused_before_anything_is_written() {
    let tree = Tree::sample("hardlink");
    let before = read_tree(&tree.dir);
    fs::hard_link(tree.values("summit"), tree.dir.join("summit-copy.yaml")).unwrap();
    let out = tree.run(ADD);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("hard links"),
        "{}",
        text(&out.stderr)
    );
    fs::remove_file(tree.dir.join("summit-copy.yaml")).unwrap();
    assert_eq!(read_tree(&tree.dir), before, "a file changed");
}

fn uid_of(user: &str) -> u32 {
    let out = Command::new("id").args(["-u", user]).output().unwrap();
    text(&out.stdout).trim().parse().unwrap()
}

fn am_root() -> bool {
    text(&Command::new("id").arg("-u").output().unwrap().stdout).trim() == "0"
}

/// For the tests of what happens only as root: they fail (never pass unrun) elsewhere.
fn require_root(test: &str) {
    assert!(
        am_root(),
        "{test} needs root (it plants files of another user): run the suite as root, as .ci/run does"
    );
}

#[test]
fn owner_and_mode_are_kept() {
    let tree = Tree::sample("owner");
    let values = tree.values("idfdev");
    fs::set_permissions(&values, fs::Permissions::from_mode(0o640)).unwrap();
    let nobody = uid_of("nobody");
    if am_root() {
        std::os::unix::fs::chown(&values, Some(nobody), None).unwrap();
    }
    tree.ok(ADD);
    let meta = fs::metadata(&values).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o640);
    if am_root() {
        assert_eq!(meta.uid(), nobody, "the owner changed");
    }
    assert!(fs::read_to_string(&values).unwrap().contains("alpha_db"));
}

#[test]
fn as_root_a_symlink_in_a_folder_of_another_user_is_not_followed() {
    require_root("as_root_a_symlink_in_a_folder_of_another_user_is_not_followed");
    let tree = Tree::sample("foreign-link");
    let secret = tree.dir.join("root-only.yaml");
    let values = tree.values("base");
    fs::rename(&values, &secret).unwrap();
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink(&secret, &values).unwrap();
    let folder = tree.dir.join("phalanx/services/postgres");
    std::os::unix::fs::chown(&folder, Some(uid_of("nobody")), None).unwrap();
    let before = read_tree(&tree.dir);
    let out = tree.run(ADD);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("running as root"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(read_tree(&tree.dir), before, "a file changed");
    assert_eq!(fs::metadata(&secret).unwrap().mode() & 0o777, 0o600);
}

#[test]
fn a_read_only_folder_is_found_before_any_file_is_written() {
    let tree = Tree::sample("read-only");
    if am_root() {
        // The tool runs as `nobody` (see `as_nobody`), on a tree it owns.
        let status = Command::new("chown")
            .args(["-R", "nobody"])
            .arg(&tree.dir)
            .status()
            .unwrap();
        assert!(status.success());
    }
    fs::set_permissions(
        tree.dir.parent().unwrap(),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let folder = tree.dir.join("phalanx/services/postgres");
    fs::set_permissions(&folder, fs::Permissions::from_mode(0o555)).unwrap();
    let before = read_tree(&tree.dir);
    let out = as_nobody(&tree, ADD);
    fs::set_permissions(&folder, fs::Permissions::from_mode(0o755)).unwrap();
    assert_refused(&out, 2, "nothing was changed", "add-db as nobody");
    assert_eq!(read_tree(&tree.dir), before, "a file changed");
}

#[test]
fn bom_and_crlf_are_read_and_kept() {
    let tree = Tree::sample("bytes");
    let values = tree.values("base");
    let original = fs::read_to_string(&values).unwrap();
    let crlf = format!("\u{feff}{}", original.replace('\n', "\r\n"));
    fs::write(&values, &crlf).unwrap();
    let chart = tree.dir.join("phalanx/services/postgres/Chart.yaml");
    let chart_text = fs::read_to_string(&chart).unwrap();
    fs::write(&chart, format!("\u{feff}{chart_text}")).unwrap();
    let list = tree.ok(&["list"]);
    assert!(list.contains("gafaelfawr_db"), "{list}");
    tree.ok(ADD);
    let after = fs::read_to_string(&values).unwrap();
    assert!(
        after.starts_with('\u{feff}') && after.contains("alpha_db"),
        "{after:?}"
    );
    assert_eq!(after.matches('\n').count(), after.matches("\r\n").count());
    assert!(fs::read_to_string(&chart).unwrap().starts_with('\u{feff}'));
    tree.assert_clean("after add-db");
    tree.ok(&["remove-db", "alpha"]);
    assert_eq!(fs::read_to_string(&values).unwrap(), crlf);
}

#[test]
fn mixed_line_endings_are_an_error_at_the_line() {
    let tree = Tree::sample("mixed");
    let generator = tree.dir.join("phalanx/installer/generate_secrets.py");
    let text_before = fs::read_to_string(&generator).unwrap();
    fs::write(&generator, text_before.replacen('\n', "\r\n", 1)).unwrap();
    let before = read_tree(&tree.dir);
    for args in [ADD, &["remove-db", "gafaelfawr"], &["check"]] {
        let out = tree.run(args);
        assert_refused(
            &out,
            2,
            "generate_secrets.py:2: mixed line endings",
            &format!("{args:?}"),
        );
    }
    assert_eq!(read_tree(&tree.dir), before);
}

#[test]
fn special_files_are_refused_without_hanging() {
    for (label, make) in [("fifo", 0), ("dev-zero", 1)] {
        let tree = Tree::sample(label);
        let values = tree.values("idfdev");
        fs::remove_file(&values).unwrap();
        if make == 0 {
            let status = Command::new("mkfifo").arg(&values).status().unwrap();
            assert!(status.success());
        } else {
            std::os::unix::fs::symlink("/dev/zero", &values).unwrap();
        }
        for args in [ADD, &["check"], &["list"]] {
            let out = tree.run(args);
            assert_refused(&out, 2, "not a regular file", &format!("{label} {args:?}"));
        }
    }
}

#[test]
fn deep_nesting_and_huge_files_are_clear_errors() {
    let tree = Tree::sample("deep");
    let values = tree.values("base");
    let mut deep = String::from("postgres:\n");
    for i in 0..5000 {
        deep.push_str(&format!("{}k{i}:\n", " ".repeat(i + 1)));
    }
    deep.push_str(&format!("{}v: 1\n", " ".repeat(5001)));
    fs::write(&values, &deep).unwrap();
    for args in [ADD, &["list"]] {
        let out = tree.run(args);
        assert_refused(&out, 2, "nested more than 64 levels", &format!("{args:?}"));
    }
    let check = tree.run(&["check"]);
    assert_eq!(check.status.code(), Some(1), "{}", text(&check.stderr));
    assert!(text(&check.stdout).contains("nested more than 64 levels"));

    let flow = format!("postgres: {}1{}\n", "{a: ".repeat(5000), "}".repeat(5000));
    fs::write(&values, flow).unwrap();
    assert_eq!(tree.run(ADD).status.code(), Some(2));

    let big = "#".repeat(17 << 20);
    fs::write(&values, big).unwrap();
    let out = tree.run(ADD);
    assert_refused(&out, 2, "MiB", "a 17 MiB values file");
}

#[test]
fn invisible_content_is_seen() {
    let tree = Tree::sample("invisible");
    fs::write(
        tree.values("base"),
        "postgres: {orphan_db: {user: orphan, db: orphan}}\n",
    )
    .unwrap();
    let out = tree.run(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("orphan_db"),
        "{}",
        text(&out.stdout)
    );

    let tree = Tree::sample("empty-chart");
    fs::write(tree.dir.join("charts/charts/postgres/Chart.yaml"), "").unwrap();
    let out = tree.run(&["check"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("empty"), "{}", text(&out.stdout));

    let tree = Tree::sample("both-extensions");
    fs::copy(
        tree.values("base"),
        tree.dir.join("phalanx/services/postgres/values-base.yml"),
    )
    .unwrap();
    let out = tree.run(ADD);
    assert_eq!(out.status.code(), Some(2));
    let message = text(&out.stderr);
    assert!(
        message.contains("values-base.yaml") && message.contains("values-base.yml"),
        "{message}"
    );
}

#[test]
fn a_closed_or_full_stdout_ends_quietly() {
    let tree = Tree::sample("stdout");
    let full = fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(tree.args(&["check"]))
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        !text(&out.stderr).contains("panicked"),
        "{}",
        text(&out.stderr)
    );

    // `| head -0`: the reading end is closed before the tool writes.
    let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(tree.args(ADD))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("panicked"));
    assert!(fs::read_to_string(tree.values("base"))
        .unwrap()
        .contains("alpha_db"));
}

/// A small deterministic generator (xorshift), so the property test needs no
/// dependency and each failure names its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_edits_keep_check_clean() {
    let mut fixtures = vec![root().join("sample")];
    let mut layouts: Vec<PathBuf> = fs::read_dir(root().join("tests/fixtures/layouts"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    layouts.sort();
    fixtures.extend(layouts);
    // Only trees that start clean (some fixtures hold problems on purpose).
    fixtures.retain(|f| {
        let out = xtask(
            f,
            &repo_args(f)
                .iter()
                .map(String::as_str)
                .chain(["check"])
                .collect::<Vec<_>>(),
        );
        out.status.success() && text(&out.stdout).contains("0 errors")
    });
    assert!(fixtures.len() >= 5, "too few clean fixtures: {fixtures:?}");
    let names = ["alpha", "beta", "gamma", "delta"];
    for seed in [1_u64, 7, 42, 2024, 99_991, 5, 31_337, 8_675_309] {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let fixture = &fixtures[rng.below(fixtures.len())];
        let tree = Tree::of(fixture, "property");
        // Random byte shapes: some files get CRLF endings, some a byte order mark.
        let mut shaped = Vec::new();
        for name in read_tree(&tree.dir).keys() {
            let path = tree.dir.join(name);
            let original = fs::read_to_string(&path).unwrap();
            let (crlf, bom) = (rng.below(4) == 0, rng.below(4) == 0);
            if !crlf && !bom {
                continue;
            }
            let mut text = original.replace('\n', if crlf { "\r\n" } else { "\n" });
            if bom {
                text.insert(0, '\u{feff}');
            }
            fs::write(&path, text).unwrap();
            shaped.push((path, crlf, bom));
        }
        tree.assert_clean(&format!("seed {seed}: the fixture {}", fixture.display()));
        let envs: Vec<String> = {
            let list = tree.ok(&["list", "--format", "json"]);
            let start = list.find("\"environments\"").map_or(0, |i| i);
            let rest = &list[start..];
            let end = rest.find(']').unwrap_or(0);
            rest[..end]
                .split('"')
                .skip(3)
                .step_by(2)
                .map(str::to_string)
                .collect()
        };
        assert!(!envs.is_empty(), "seed {seed}: no environment in the list");
        for step in 0..8 {
            let name = names[rng.below(names.len())];
            let context = format!("seed {seed}, step {step}");
            let mut args: Vec<String> = if rng.below(3) == 0 {
                vec!["remove-db".into(), name.into()]
            } else {
                vec!["add-db".into(), name.into()]
            };
            if rng.below(2) == 0 {
                args.push("--env".into());
                args.push(envs[rng.below(envs.len())].clone());
            } else if args[0] == "add-db" {
                args.push("--all-envs".into());
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            tree.ok(&args);
            tree.assert_clean(&format!("{context}: {args:?}"));
        }
        tree.assert_no_leftovers(&format!("seed {seed}"));
        for (path, crlf, bom) in shaped {
            let text = fs::read_to_string(&path).unwrap();
            assert_eq!(
                text.starts_with('\u{feff}'),
                bom,
                "seed {seed}: {}",
                path.display()
            );
            if crlf {
                assert_eq!(
                    text.matches('\n').count(),
                    text.matches("\r\n").count(),
                    "seed {seed}: {} lost its CRLF endings",
                    path.display()
                );
            }
        }
    }
}

/// The container env of the split chart rendered by Helm's engine with one
/// environment's values.
fn helm_env(tree: &Tree, env: &str) -> String {
    let out = Command::new("python3")
        .arg(root().join("tests/helm_render.py"))
        .arg(tree.dir.join("charts/charts/postgres"))
        .arg(tree.values(env))
        .arg("yes")
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "the chart does not render (is helm-python-sdk installed? run `bash .ci/run`):\n{}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Rewrites a template (text, first line of the last block, its `end` line).
type Shape = fn(&str, &str, &str) -> String;

#[test]
fn the_new_block_renders_whatever_surrounds_the_last_one() {
    let last_block_start = "          {{- with .Values.narrativelog_db }}\n";
    let end = "          {{- end }}\n";
    let shapes: [(&str, Shape); 3] = [
        ("comment after the last block", |t, _, _| {
            t.replace(
                "          volumeMounts:",
                "          {{- /*\n          {{- with .Values.old_db }}\n          - name: VRO_DB_OLD_USER\n            value: {{ .user }}\n          {{- end }}\n          */}}\n          volumeMounts:",
            )
        }),
        ("if around the last block", |t, start, end| {
            let at = t.find(start).unwrap();
            let close = at + t[at..].find(end).unwrap() + end.len();
            format!(
                "{}          {{{{- if .Values.narrativelog_enabled }}}}\n{}          {{{{- end }}}}\n{}",
                &t[..at],
                &t[at..close],
                &t[close..]
            )
        }),
        ("two ifs around the last block", |t, start, end| {
            let at = t.find(start).unwrap();
            let close = at + t[at..].find(end).unwrap() + end.len();
            format!(
                "{}          {{{{- if .Values.a }}}}\n          {{{{- if .Values.b }}}}\n{}          {{{{- end }}}}\n          {{{{- end }}}}\n{}",
                &t[..at],
                &t[at..close],
                &t[close..]
            )
        }),
    ];
    for (label, shape) in shapes {
        let tree = Tree::sample("placement");
        let template = tree
            .dir
            .join("charts/charts/postgres/templates/deployment.yaml");
        let original = fs::read_to_string(&template).unwrap();
        let shaped = shape(&original, last_block_start, end);
        assert_ne!(shaped, original, "{label}: the shape was not applied");
        fs::write(&template, shaped).unwrap();
        tree.ok(ADD);
        for env in ["base", "idfdev", "minikube", "summit"] {
            let rendered = helm_env(&tree, env);
            for line in [
                "VRO_DB_ALPHA_USER=alpha",
                "VRO_DB_ALPHA_DB=alpha",
                "VRO_DB_ALPHA_PASSWORD<-postgres/alpha_password",
            ] {
                assert!(
                    rendered.lines().any(|l| l == line),
                    "{label}, {env}: {line} is not rendered:\n{rendered}"
                );
            }
        }
        tree.ok(&["remove-db", "alpha"]);
        let after = fs::read_to_string(&template).unwrap();
        assert!(!after.contains("ALPHA"), "{label}: {after}");
    }
}

#[test]
fn a_journal_of_another_user_is_not_followed() {
    require_root("a_journal_of_another_user_is_not_followed");
    let tree = Tree::sample("foreign-journal");
    let evil = tree
        .dir
        .join("phalanx/services/postgres/.values-base.yaml.xtask-0123456789abcdef.tmp");
    fs::write(&evil, "postgres: {}\n").unwrap();
    let hex = |p: &Path| {
        p.as_os_str()
            .as_encoded_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let journal = tree.dir.join("phalanx/.xtask-journal");
    fs::write(
        &journal,
        format!(
            "xtask journal 2\n{}\t{}\t-\t0000000000000000:0\nend\n",
            hex(&tree.values("base")),
            hex(&evil)
        ),
    )
    .unwrap();
    let nobody = uid_of("nobody");
    for file in [&journal, &evil] {
        std::os::unix::fs::chown(file, Some(nobody), None).unwrap();
    }
    let before = read_tree(&tree.dir);
    let out = tree.run(ADD);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("not a journal of this user"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(read_tree(&tree.dir), before, "a file changed");
}

/// The tool run as `nobody` (when we are root; permissions do not bind root).
fn as_nobody(tree: &Tree, args: &[&str]) -> Output {
    // One copy of the binary per tree: tests run in parallel.
    let label = tree.dir.file_name().unwrap().to_string_lossy().into_owned();
    let bin_dir = scratch(&format!("{label}-bin"));
    fs::set_permissions(&bin_dir, fs::Permissions::from_mode(0o755)).unwrap();
    let binary = bin_dir.join("xtask");
    fs::copy(env!("CARGO_BIN_EXE_xtask"), &binary).unwrap();
    let mut command = if am_root() {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid",
            &uid_of("nobody").to_string(),
            "--regid",
            "65534",
            "--clear-groups",
        ])
        .arg(&binary);
        c
    } else {
        Command::new(&binary)
    };
    command.args(tree.args(args)).output().unwrap()
}

#[test]
fn unreadable_folders_say_so() {
    let tree = Tree::sample("unreadable");
    for (folder, says) in [
        ("phalanx", "cannot read the --phalanx repository"),
        (
            "phalanx/services/postgres",
            "cannot read the postgres application",
        ),
    ] {
        let dir = tree.dir.join(folder);
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o000)).unwrap();
        let out = as_nobody(&tree, &["list"]);
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let message = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{folder}: {message}");
        assert!(
            message.contains(says) && message.contains("Permission denied"),
            "{folder}: {message}"
        );
    }
}

// ---------------------------------------------------------------------------
// Files that change between a kill and the next run
// ---------------------------------------------------------------------------

/// The files (relative to the tree) an undisturbed `command` on the sample changes.
fn changed_files(label: &str, command: &[&str]) -> Vec<String> {
    let tree = Tree::sample(&format!("{label}-changed"));
    let before = read_tree(&tree.dir);
    tree.ok(command);
    read_tree(&tree.dir)
        .into_iter()
        .filter(|(name, bytes)| before.get(name) != Some(bytes))
        .map(|(name, _)| name)
        .collect()
}

/// The next run after a kill stopped because files changed: it exited 1 naming
/// `file`, touched nothing, and printed how to keep the files as they are. Runs
/// that command (with bash), as an operator would.
fn keep_as_they_are(tree: &Tree, out: &Output, before: &BTreeMap, file: &Path, context: &str) {
    let message = text(&out.stderr);
    let real = fs::canonicalize(file).unwrap();
    assert!(
        message.contains(&real.display().to_string()) && message.contains("nothing was touched"),
        "{context}: the refusal does not name {}:\n{message}",
        real.display()
    );
    assert_unchanged(&tree.dir, before, &format!("{context}: the refusal"));
    let keep = message
        .lines()
        .find(|l| l.trim_start().starts_with("rm -f -- "))
        .unwrap_or_else(|| panic!("{context}: no command to keep the files:\n{message}"));
    let status = Command::new("bash").args(["-c", keep]).status().unwrap();
    assert!(status.success(), "{context}: {keep}");
}

type BTreeMap = std::collections::BTreeMap<String, Vec<u8>>;

/// The tree below `dir` holds exactly `before` (but for the lock files a killed run
/// left, which the next run removes); the failure names the files that differ.
fn assert_unchanged(dir: &Path, before: &BTreeMap, context: &str) {
    let now = read_tree(dir);
    let differ: Vec<&String> = before
        .keys()
        .chain(now.keys())
        .filter(|k| !k.ends_with("xtask.lock") && before.get(*k) != now.get(*k))
        .collect();
    assert!(
        differ.is_empty(),
        "{context}: these files changed: {differ:?}"
    );
}

/// A kill at every file write, fsync and rename of `command`, then an edit by the
/// user to one of the files it changes, then the next run: the edit survives. The
/// run finishes or drops the interrupted change, or stops (exit 1) naming the file
/// and touching nothing; after the operator keeps the files as they are, the run
/// succeeds.
fn edits_after_a_kill_survive(label: &str, command: &[&str]) {
    let files = changed_files(label, command);
    assert!(files.len() >= 4, "{label}: {files:?}");
    let kills: Vec<String> = file_calls(label, command)
        .iter()
        .map(|(syscall, n)| format!("inject={syscall}:signal=SIGKILL:when={n}"))
        .collect();
    let (mut stopped, mut went_on) = (0, 0);
    for kill in &kills {
        for file in &files {
            let context = format!("{label} {kill}, then {file} edited");
            let tree = Tree::sample(&format!("{label}-edited"));
            let out = tree.strace(&[kill], command);
            assert!(!out.status.success(), "{context}: the kill missed");
            let path = tree.dir.join(file);
            let mark = "# keep me: edited after the kill\n";
            let mut edited = fs::read_to_string(&path).unwrap();
            edited.push_str(mark);
            fs::write(&path, &edited).unwrap();
            let before = read_tree(&tree.dir);
            let again = tree.run(command);
            match again.status.code() {
                Some(0) => went_on += 1,
                Some(1) => {
                    stopped += 1;
                    keep_as_they_are(&tree, &again, &before, &path, &context);
                    let last = tree.run(command);
                    assert!(last.status.success(), "{context}: {}", text(&last.stderr));
                }
                _ => panic!("{context}: {:?}\n{}", again.status, text(&again.stderr)),
            }
            assert!(
                fs::read_to_string(&path).unwrap().contains(mark),
                "{context}: the edit is lost"
            );
            tree.assert_no_leftovers(&context);
        }
    }
    // Kills before the renames end in a dropped change, kills after the first in a stop.
    assert!(
        stopped > 0 && went_on > 0,
        "{label}: {stopped} stopped, {went_on} went on"
    );
}

#[test]
fn an_edit_between_a_kill_and_the_next_add_db_is_kept() {
    edits_after_a_kill_survive("edit-add", ADD);
}

#[test]
fn an_edit_between_a_kill_and_the_next_remove_db_is_kept() {
    edits_after_a_kill_survive("edit-remove", &["remove-db", "narrativelog"]);
}

/// Lines of the files below `dir` that contain `needle`, per file.
fn lines_with(dir: &Path, needle: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    for (name, bytes) in read_tree(dir) {
        for line in String::from_utf8_lossy(&bytes).lines() {
            if line.contains(needle) {
                found.push((name.clone(), line.to_string()));
            }
        }
    }
    found
}

#[test]
fn a_second_checkout_between_a_kill_and_the_next_run_keeps_its_change() {
    // Every kill point: each file write, fsync and rename of add-db.
    for (syscall, n) in file_calls("second-checkout", ADD) {
        let context = format!("a kill at {syscall} {n}");
        let tree = Tree::sample("second-checkout");
        copy_tree(&tree.dir.join("phalanx"), &tree.dir.join("phalanx2"));
        let kill = format!("inject={syscall}:signal=SIGKILL:when={n}");
        assert!(!tree.strace(&[&kill], ADD).status.success(), "{context}");
        // The other checkout of the same charts repository adds its database.
        let charts = tree.dir.join("charts").display().to_string();
        let phalanx2 = tree.dir.join("phalanx2").display().to_string();
        let other = xtask(
            &tree.dir,
            &[
                "add-db",
                "beta",
                "--all-envs",
                "--phalanx",
                &phalanx2,
                "--charts",
                &charts,
            ],
        );
        assert!(other.status.success(), "{context}: {}", text(&other.stderr));
        let theirs = lines_with(&tree.dir.join("charts"), "BETA");
        assert!(!theirs.is_empty(), "{context}: beta is not in the charts");
        let before = read_tree(&tree.dir);
        let again = tree.run(ADD);
        if again.status.code() == Some(1) {
            let chart_file = before
                .keys()
                .find(|k| k.starts_with("charts/") && text(&again.stderr).contains(k.as_str()))
                .unwrap_or_else(|| panic!("{context}: names no chart:\n{}", text(&again.stderr)));
            let chart_file = tree.dir.join(chart_file);
            keep_as_they_are(&tree, &again, &before, &chart_file, &context);
            let last = tree.run(ADD);
            assert!(last.status.success(), "{context}: {}", text(&last.stderr));
        } else {
            assert!(again.status.success(), "{context}: {}", text(&again.stderr));
        }
        let now = lines_with(&tree.dir.join("charts"), "BETA");
        for line in &theirs {
            assert!(
                now.contains(line),
                "{context}: the other checkout's {line:?} is undone"
            );
        }
        assert!(tree.ok(&["list"]).contains("alpha_db"), "{context}");
        tree.assert_no_leftovers(&context);
    }
}

/// A kill at the fifth rename of add-db (the journal's is the first): three files
/// new, the rest old.
fn killed_half_way(name: &str) -> Tree {
    let tree = Tree::sample(name);
    let out = tree.strace(&["inject=rename:signal=SIGKILL:when=5"], ADD);
    assert!(!out.status.success());
    assert!(tree.dir.join("phalanx/.xtask-journal").exists());
    tree
}

#[test]
fn dry_run_and_check_report_a_pending_journal_and_write_nothing() {
    let tree = killed_half_way("dry-run-journal");
    let before = read_tree(&tree.dir);
    for args in [
        &["add-db", "alpha", "--all-envs", "--dry-run"][..],
        &["remove-db", "narrativelog", "--dry-run"],
        &["check"],
    ] {
        let out = tree.run(args);
        let message = text(&out.stderr);
        assert!(
            message.contains("an interrupted run did not finish") && !message.contains("replaced"),
            "{args:?}: {message}"
        );
        assert_unchanged(&tree.dir, &before, &format!("{args:?}"));
    }
    // The next real run finishes it and says so per file.
    let out = tree.run(ADD);
    let message = text(&out.stderr);
    assert!(out.status.success(), "{message}");
    assert_eq!(message.matches("replaced ").count(), 5, "{message}");
    assert_eq!(
        message.matches("already held the new text").count(),
        3,
        "{message}"
    );
}

#[test]
fn a_renamed_file_restored_by_hand_stops_recovery() {
    let pristine = Tree::sample("restored-pristine");
    let tree = killed_half_way("restored");
    let new_file = read_tree(&tree.dir)
        .into_iter()
        .find(|(name, bytes)| {
            !name.contains(".xtask") && read_tree(&pristine.dir).get(name) != Some(bytes)
        })
        .map(|(name, _)| name)
        .unwrap();
    // `git checkout FILE`: the old text is back.
    fs::copy(pristine.dir.join(&new_file), tree.dir.join(&new_file)).unwrap();
    let before = read_tree(&tree.dir);
    let out = tree.run(ADD);
    assert_refused(&out, 1, "is gone or damaged", "restored file");
    keep_as_they_are(
        &tree,
        &out,
        &before,
        &tree.dir.join(&new_file),
        "restored file",
    );
    // Kept as they are: the run completes what is missing; `check` judges the rest.
    tree.ok(ADD);
    tree.assert_no_leftovers("restored file");
}

#[test]
fn a_damaged_journal_is_reported_and_nothing_is_touched() {
    for (label, damage) in [
        (
            "no-end",
            &(|j: &str| j.replace("\nend\n", "\n")) as &dyn Fn(&str) -> String,
        ),
        ("bad-hex", &|j: &str| j.replacen("\t", "\tzz", 1)),
        ("version", &|j: &str| {
            j.replacen("journal 2", "journal 9", 1)
        }),
        ("empty", &|_: &str| String::new()),
    ] {
        let tree = killed_half_way("damaged-journal");
        let journal = tree.dir.join("phalanx/.xtask-journal");
        let damaged = damage(&fs::read_to_string(&journal).unwrap());
        fs::write(&journal, damaged).unwrap();
        let before = read_tree(&tree.dir);
        let out = tree.run(ADD);
        assert_refused(&out, 1, "cannot read this journal", label);
        assert_unchanged(&tree.dir, &before, label);
    }
}

// ---------------------------------------------------------------------------
// Values and file names from pull requests: never code, never terminal controls
// ---------------------------------------------------------------------------

/// The sample with `narrativelog`'s `field` in values-base.yaml (the entry's key is
/// on line 9) set to `value`.
fn with_narrativelog(name: &str, field: &str, value: &str) -> Tree {
    let tree = Tree::sample(name);
    let values = tree.values("base");
    let text = fs::read_to_string(&values).unwrap();
    let old = format!("    {field}: 'narrativelog'\n");
    assert!(text.contains(&old), "{text}");
    fs::write(
        &values,
        text.replace(&old, &format!("    {field}: {value}\n")),
    )
    .unwrap();
    tree
}

#[test]
fn an_sql_value_in_a_values_file_is_refused_at_its_line() {
    for field in ["user", "db"] {
        let tree = with_narrativelog(
            &format!("sql-{field}"),
            field,
            "'narrativelog; DROP DATABASE gafaelfawr; --'",
        );
        let before = read_tree(&tree.dir);
        for args in [
            &["runbook", "narrativelog", "--remove"][..],
            &["runbook", "narrativelog", "--remove", "--script"],
            &["runbook", "narrativelog"],
            &["remove-db", "narrativelog"],
        ] {
            let out = tree.run(args);
            let context = format!("{field} {args:?}");
            assert_refused(&out, 2, "values-base.yaml:9: invalid", &context);
            assert!(
                !text(&out.stdout).contains("DROP DATABASE gafaelfawr"),
                "{context}"
            );
            assert_unchanged(&tree.dir, &before, &context);
        }
    }
}

/// No raw escape, bell or C1 control in what the tool printed.
fn assert_no_controls(out: &Output, context: &str) {
    for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        let shown = text(bytes);
        assert!(
            !shown.contains(['\x1b', '\x07', '\u{9b}', '\r']),
            "{context}: raw control characters on {stream}:\n{shown:?}"
        );
    }
}

#[test]
fn a_file_name_is_never_a_command_nor_a_terminal_control() {
    let tree = Tree::sample("evil-names");
    let folder = tree.dir.join("phalanx/services/postgres");
    let base = fs::read_to_string(tree.values("base")).unwrap();
    for name in [
        "values-evil\ntouch INJECTED #.yaml",
        "values-x\x1b]0;pwned\x07\u{9b}31m.yaml",
    ] {
        fs::write(folder.join(name), &base).unwrap();
    }
    let script = tree.dir.join("steps.sh");
    for args in [
        &["runbook", "narrativelog"][..],
        &["runbook", "narrativelog", "--remove"],
        &["runbook", "narrativelog", "--script"],
        &["list"],
        &["check"],
        &["check", "--format", "github"],
        &["check", "--format", "json"],
        &["add-db", "alpha", "--all-envs"],
    ] {
        let out = tree.run(args);
        let context = format!("{args:?}");
        if args[0] == "check" {
            // Two `bad-environment-name` errors, shown escaped.
            assert_eq!(
                out.status.code(),
                Some(1),
                "{context}: {}",
                text(&out.stderr)
            );
            assert_eq!(text(&out.stdout).matches("bad-environment-name").count(), 2);
            assert!(text(&out.stdout).contains(r"values-evil\ntouch INJECTED #.yaml"));
        } else {
            assert!(out.status.success(), "{context}: {}", text(&out.stderr));
        }
        assert_no_controls(&out, &context);
        let stdout = text(&out.stdout);
        assert!(
            !stdout.lines().any(|l| l.trim_start().starts_with("touch")),
            "{context}: a command from a file name:\n{stdout}"
        );
        assert!(
            text(&out.stderr).contains(r"values-evil\ntouch INJECTED #.yaml: skipped"),
            "{context}: {}",
            text(&out.stderr)
        );
        if args.contains(&"--script") {
            fs::write(&script, &stdout).unwrap();
            assert_bash_syntax(&script, &context);
        }
    }
    // The skipped files are left as they were.
    assert_eq!(
        fs::read_to_string(folder.join("values-evil\ntouch INJECTED #.yaml")).unwrap(),
        base
    );
}

#[test]
fn control_characters_in_values_are_shown_escaped() {
    let tree = with_narrativelog("escaped-values", "user", "\"narr\\e[2J\\a\"");
    for args in [
        &["check"][..],
        &["check", "--format", "github"],
        &["check", "--format", "json"],
        &["list"],
        &["runbook", "narrativelog"],
    ] {
        let out = tree.run(args);
        let context = format!("{args:?}");
        assert_no_controls(&out, &context);
        let all = text(&out.stdout) + &text(&out.stderr);
        assert!(
            all.contains(r"narr\x1b[2J\x07") || all.contains(r"narr\u001b[2J\u0007"),
            "{context}: the value is not shown escaped:\n{all}"
        );
    }
}

#[test]
fn suggested_commands_quote_words_from_files() {
    let tree = Tree::sample("quoted-help");
    let values = tree.values("base");
    let text_before = fs::read_to_string(&values).unwrap();
    fs::write(
        &values,
        text_before.replace(
            "  vault_secrets:",
            "  \"x;touch PASTED_db\":\n    user: xuser\n    db: xdb\n  vault_secrets:",
        ),
    )
    .unwrap();
    let out = tree.run(&["check"]);
    let report = text(&out.stdout);
    assert!(
        report.contains("add-db 'x;touch PASTED' --env base"),
        "{report}"
    );
    assert!(!report.contains("add-db x;touch"), "{report}");
}

#[test]
fn annotations_are_relative_to_the_workspace_from_any_folder() {
    let tree = with_narrativelog("annotations", "user", "'Bad'");
    let sub = tree.dir.join("phalanx/services/postgres");
    let annotation = |cwd: &Path, workspace: Option<&Path>| -> String {
        let mut command = xtask_command(cwd);
        command.args(tree.args(&["check", "--format", "github"]));
        command.env_remove("GITHUB_WORKSPACE");
        if let Some(w) = workspace {
            command.env("GITHUB_WORKSPACE", w);
        }
        let out = command.output().unwrap();
        text(&out.stdout)
            .lines()
            .find(|l| l.starts_with("::error"))
            .unwrap_or_else(|| panic!("no annotation:\n{}", text(&out.stdout)))
            .to_string()
    };
    for cwd in [&tree.dir, &sub] {
        let file = |line: String| {
            line.split("file=")
                .nth(1)
                .unwrap()
                .split(',')
                .next()
                .unwrap()
                .to_string()
        };
        assert_eq!(
            file(annotation(cwd, None)),
            "services/postgres/values-base.yaml",
            "from {}",
            cwd.display()
        );
        assert_eq!(
            file(annotation(cwd, Some(&tree.dir))),
            "phalanx/services/postgres/values-base.yaml",
            "from {}",
            cwd.display()
        );
    }
}

// ---------------------------------------------------------------------------
// Ctrl-C during an edit
// ---------------------------------------------------------------------------

/// add-db sent a real SIGINT (by `strace`, so at a known point) on entering its
/// `when`-th `syscall`; the call itself still runs.
fn interrupted_at(tree: &Tree, syscall: &str, when: usize) -> Output {
    tree.strace(
        &[&format!("inject={syscall}:signal=SIGINT:when={when}")],
        ADD,
    )
}

#[test]
fn ctrl_c_during_the_renames_finishes_them_and_says_so() {
    let reference = Tree::sample("ctrl-c-reference");
    reference.ok(ADD);
    let tree = Tree::sample("ctrl-c-renames");
    // Renames: the journal's, then the first file's; held at the second file's.
    let out = interrupted_at(&tree, "rename", 3);
    let message = text(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{message}");
    assert!(
        message.contains("interrupted by Ctrl-C (SIGINT)")
            && message.contains("the change is complete"),
        "{message}"
    );
    assert_same_tree(&tree.dir, &reference.dir, "after Ctrl-C at a rename");
    tree.assert_no_leftovers("after Ctrl-C at a rename");
}

#[test]
fn ctrl_c_while_staging_changes_no_file_and_says_so() {
    let pristine = Tree::sample("ctrl-c-pristine");
    let tree = Tree::sample("ctrl-c-staging");
    // fsyncs: the journal and its folder, then the first temporary file.
    let out = interrupted_at(&tree, "fsync", 3);
    let message = text(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{message}");
    assert!(
        message.contains("interrupted by Ctrl-C (SIGINT)") && message.contains("no file changed"),
        "{message}"
    );
    assert_same_tree(&tree.dir, &pristine.dir, "after Ctrl-C while staging");
    tree.assert_no_leftovers("after Ctrl-C while staging");
}

#[test]
fn two_repositories_sharing_one_state_folder_share_one_lock() {
    for shape in ["symlink", "gitdir file"] {
        let tree = Tree::sample(&format!("shared-state-{}", shape.replace(' ', "-")));
        fs::create_dir(tree.dir.join("phalanx/.git")).unwrap();
        let charts_git = tree.dir.join("charts/.git");
        if shape == "symlink" {
            std::os::unix::fs::symlink("../phalanx/.git", &charts_git).unwrap();
        } else {
            fs::write(&charts_git, "gitdir: ../phalanx/.git\n").unwrap();
        }
        let mut command = xtask_command(&tree.dir);
        command.args(tree.args(ADD)).env("XTASK_LOCK_TIMEOUT", "1");
        let out = command.output().unwrap();
        assert!(out.status.success(), "{shape}: {}", text(&out.stderr));
        assert!(
            !tree.dir.join("phalanx/.git/xtask.lock").exists(),
            "{shape}"
        );
        assert!(tree.ok(&["list"]).contains("alpha_db"), "{shape}");
    }
}

#[test]
fn ctrl_c_while_planning_ends_the_run_with_no_file_changed() {
    let tree = Tree::sample("ctrl-c-planning");
    let before = read_tree(&tree.dir);
    // Writes: the repositories line and its end on stderr, the two lock records,
    // then the first diff on stdout, while the run is still planning.
    let out = interrupted_at(&tree, "write", 5);
    let message = text(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{message}");
    assert!(
        message.contains("interrupted while planning: no file was changed"),
        "{message}"
    );
    assert_unchanged(&tree.dir, &before, "after Ctrl-C while planning");
    for name in read_tree(&tree.dir).keys() {
        assert!(!name.contains(".xtask-"), "{name} was left behind");
    }
}
