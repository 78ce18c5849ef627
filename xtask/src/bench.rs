//! `bench`: measures `check` on the sample and on generated trees.
//!
//! NAME
//!     cargo xtask-bench [--runs N]
//!
//! DESCRIPTION
//!     Writes split-layout trees of 50 databases x 20 environments and 200 x 80
//!     (16,000 values entries) under `target/xtask/bench/`, then runs `check`
//!     in-process N times on the sample and on each tree and prints the median.
//!     Each generated tree must check clean, so the figure is for a full pass.
//!     Then big files: `add-db` run as a child process on a tree whose values
//!     file is just under the size limit (15 MiB), and on one of 50 MB (refused by
//!     the limit), printing each run's time and peak memory (`getrusage`).
//!     Last, the YAML reader on texts of just under 16 MiB in hostile and plain
//!     shapes (deep brackets, deep blocks, long lines, many keys, aliases): each
//!     must be read or refused in under a second (the reader is linear).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::config::{workspace_root, Config};
use crate::error::bad_input;
use crate::flags;

impl flags::Bench {
    pub fn run(self) -> Result<()> {
        if self.runs == 0 {
            return Err(bad_input("--runs must be at least 1"));
        }
        if let Some(mb) = self.move_copy_mb {
            return crate::move_db::bench::move_copy(mb);
        }
        if cfg!(debug_assertions) {
            outln!("(a debug build: run `cargo xtask-bench` for real figures)");
        }
        let sample = workspace_root().join("sample");
        let out = workspace_root().join("target/xtask/bench");
        // First, while this process is small: a child's peak memory counts the
        // pages it shares with us when it starts.
        big_files(&out)?;
        yaml_shapes()?;
        let mut trees: Vec<(String, PathBuf, usize)> = vec![("sample".into(), sample, 0)];
        for (dbs, envs) in [(50, 20), (200, 80)] {
            let dir = out.join(format!("{dbs}x{envs}"));
            generate(&dir, dbs, envs)?;
            trees.push((format!("{dbs} dbs x {envs} envs"), dir, dbs * envs));
        }
        outln!(
            "\n{:<22} {:>8} {:>12}  ({} runs each)",
            "tree",
            "entries",
            "median",
            self.runs
        );
        for (label, dir, entries) in trees {
            let config = config_for(&dir);
            let mut times = Vec::with_capacity(self.runs);
            for _ in 0..self.runs {
                let start = Instant::now();
                let report = crate::check::check(&config, None)?;
                times.push(start.elapsed());
                if report.errors() + report.warnings() > 0 {
                    return Err(bad_input(format!(
                        "{label}: check found problems:\n{}",
                        report.text()
                    )));
                }
            }
            times.sort();
            let entries = if entries == 0 {
                "-".to_string()
            } else {
                entries.to_string()
            };
            outln!(
                "{label:<22} {entries:>8} {:>12}",
                show(times[times.len() / 2])
            );
        }
        Ok(())
    }
}

/// Times `add-db` on a values file of 50 MB (refused by the size limit), then of
/// 15 MiB, each in a child process, with the child's peak memory. The 50 MB run
/// goes first: the kernel reports the largest child so far.
fn big_files(out: &Path) -> Result<()> {
    outln!(
        "{:<22} {:>10} {:>12} {:>14}  {}",
        "add-db on a values file",
        "size",
        "time",
        "peak memory",
        "result"
    );
    for size in [50_000_000, crate::fsio::MAX_FILE_SIZE as usize - (1 << 20)] {
        let dir = out.join(format!("big-{size}"));
        generate(&dir, 3, 2)?;
        let values = dir.join("phalanx/services/postgres/values-env0.yaml");
        // Written line by line, never held whole: a child's peak memory counts the
        // pages it shares with this process when it starts.
        let head = std::fs::read_to_string(&values)?;
        let mut file = std::io::BufWriter::new(
            std::fs::File::create(&values)
                .with_context(|| format!("cannot write {}", values.display()))?,
        );
        let mut bytes = head.len() + 10;
        std::io::Write::write_all(&mut file, format!("{head}  filler:\n").as_bytes())?;
        let mut i = 0;
        while bytes < size {
            let line = format!("    key{i:08}: \"a value that fills the file to size\"\n");
            std::io::Write::write_all(&mut file, line.as_bytes())?;
            bytes += line.len();
            i += 1;
        }
        std::io::Write::flush(&mut file)?;
        drop(file);
        let start = Instant::now();
        let run = std::process::Command::new(std::env::current_exe()?)
            .args(["--quiet", "add-db", "big_one", "--env", "env0", "--phalanx"])
            .arg(dir.join("phalanx"))
            .arg("--charts")
            .arg(dir.join("charts"))
            .stdout(std::process::Stdio::null())
            .output()
            .context("cannot run the xtask binary")?;
        let elapsed = start.elapsed();
        let result = if run.status.success() {
            "written".to_string()
        } else {
            let stderr = String::from_utf8_lossy(&run.stderr);
            format!("refused: {}", stderr.lines().next().unwrap_or("").trim())
        };
        outln!(
            "{:<22} {:>10} {:>12} {:>14}  {}",
            "",
            format!("{:.1} MB", bytes as f64 / 1e6),
            show(elapsed),
            format!("{:.1} MB", children_peak_kib() as f64 / 1024.0),
            result.chars().take(90).collect::<String>()
        );
    }
    Ok(())
}

/// A text of about `size` bytes: `head`, then `unit` repeated, then `tail`.
fn repeated(head: &str, unit: &str, tail: &str, size: usize) -> String {
    let count = size.saturating_sub(head.len() + tail.len()) / unit.len().max(1);
    format!("{head}{}{tail}", unit.repeat(count))
}

/// `head`, then distinct `kNNNNNNNNNN: v` lines up to about `size` bytes.
fn keys(head: &str, size: usize) -> String {
    let mut text = String::from(head);
    let mut i = 0;
    while text.len() < size {
        let _ = writeln!(text, "k{i:010}: v");
        i += 1;
    }
    text
}

/// Times `files::parse_yaml` on texts just under the size limit, in shapes that
/// make a YAML parser slow, and fails if one takes a second or more.
fn yaml_shapes() -> Result<()> {
    let size = crate::fsio::MAX_FILE_SIZE as usize - 1024;
    let deep = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
    let block: String = (0..60)
        .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
        .collect();
    let shapes: Vec<(&str, String)> = vec![
        ("`[` x 16 Mi", repeated("a: ", "[", "", size)),
        ("`{a: ` x 4 Mi", repeated("a: ", "{a: ", "", size)),
        ("`- ` x 8 Mi", repeated("", "- ", "x\n", size)),
        (
            "brackets 60 deep, many",
            repeated("a: [", &format!("{}, ", deep(60)), "1]\n", size),
        ),
        (
            "blocks 60 deep, many",
            repeated("", &block.replacen("k0:", "- k0:", 1), "", size),
        ),
        ("plain keys", keys("", size)),
        (
            "flow maps per line",
            repeated("", "- {user: a, db: [b, c], n: 1}\n", "", size),
        ),
        ("one long string", repeated("a: '", "x", "'\n", size)),
        (
            "aliases",
            repeated("a: &x [1, 2]\nb:\n", "  - *x\n", "", size),
        ),
        ("block sequence", repeated("a:\n", "  - 1\n", "", size)),
        ("plain keys at the limit", keys("", 399_000 * 15)),
        (
            "keys at the full-parse limit",
            keys("anchored: &x 1\n", 149_000 * 15),
        ),
        (
            "sequence at that limit",
            repeated("a:\n", "  - an item\n", "", 74_000 * 12),
        ),
        (
            "flow at that limit",
            repeated("a: [", "[1, 2, 3, text], ", "1]\n", 29_000 * 17),
        ),
    ];
    outln!(
        "\n{:<26} {:>10} {:>12}  result",
        "YAML reader on",
        "size",
        "time"
    );
    for (label, text) in shapes {
        let start = Instant::now();
        let result = crate::files::parse_yaml(&text);
        let elapsed = start.elapsed();
        let result = match result {
            Ok(_) => "read".to_string(),
            Err(e) => format!("refused at line {}: {}", e.line.unwrap_or(0), e.message),
        };
        outln!(
            "{label:<26} {:>10} {:>12}  {}",
            format!("{:.1} MB", text.len() as f64 / 1e6),
            show(elapsed),
            result.chars().take(70).collect::<String>()
        );
        if elapsed >= Duration::from_secs(1) && !cfg!(debug_assertions) {
            return Err(bad_input(format!(
                "the YAML reader took {elapsed:?} on {label}"
            )));
        }
    }
    Ok(())
}

/// The largest resident set of any child waited for, in KiB.
fn children_peak_kib() -> i64 {
    // SAFETY: getrusage fills the struct we pass.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage.ru_maxrss
    }
}

fn show(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn config_for(dir: &Path) -> Config {
    Config::for_repositories(Some(dir.join("phalanx")), Some(dir.join("charts")))
}

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Writes a consistent split-layout deployment of `dbs` databases (with `_` in
/// some names) in `envs` environments, every database in every environment.
pub fn generate(dir: &Path, dbs: usize, envs: usize) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    let names: Vec<String> = (0..dbs)
        .map(|i| {
            if i % 3 == 0 {
                format!("svc_{i}")
            } else {
                format!("svc{i}")
            }
        })
        .collect();
    let mut template = String::from(
        "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n        - name: postgres\n          env:\n          - name: ROOT_PASSWORD\n            valueFrom:\n              secretKeyRef:\n                name: postgres\n                key: root_password\n",
    );
    let mut generator = String::from("class SecretGenerator:\n    def _postgres(self):\n        self._set_generated(\"postgres\", \"root_password\", secrets.token_hex(64))\n");
    for name in &names {
        let id = crate::names::env_id_of(name);
        let _ = write!(
            template,
            "          {{{{- with .Values.{name}_db }}}}\n          - name: VRO_DB_{id}_USER\n            value: {{{{ .user }}}}\n          - name: VRO_DB_{id}_DB\n            value: {{{{ .db }}}}\n          - name: VRO_DB_{id}_PASSWORD\n            valueFrom:\n              secretKeyRef:\n                name: postgres\n                key: {name}_password\n          {{{{- end }}}}\n"
        );
        let _ = writeln!(
            generator,
            "        self._set_generated(\"postgres\", \"{name}_password\", secrets.token_hex(32))"
        );
    }
    let files = [
        ("charts/charts/postgres/templates/deployment.yaml", template.as_str()),
        (
            "charts/charts/postgres/Chart.yaml",
            "apiVersion: v2\nname: postgres\nversion: 0.1.4\n",
        ),
        ("phalanx/installer/generate_secrets.py", generator.as_str()),
        (
            "phalanx/services/postgres/Chart.yaml",
            "apiVersion: v2\nname: postgres\nversion: 1.0.0\ndependencies:\n  - name: postgres\n    version: \">=0.1.4\"\n    repository: https://lsst-sqre.github.io/charts/\n",
        ),
    ];
    for (path, text) in files {
        write(&dir.join(path), text)?;
    }
    for e in 0..envs {
        let mut values = String::from("postgres:\n");
        for name in &names {
            let _ = write!(
                values,
                "  {name}_db:\n    user: '{name}'\n    db: '{name}'\n"
            );
        }
        let _ = write!(values, "  vault_secrets:\n    enabled: true\n    path: \"secret/k8s_operator/env{e}/postgres\"\n");
        write(
            &dir.join(format!("phalanx/services/postgres/values-env{e}.yaml")),
            &values,
        )?;
    }
    Ok(())
}
