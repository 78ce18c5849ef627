//! Every parser and edit of `files/` on thousands of damaged variants of the
//! fixture files: each may refuse, none may panic. Then a fuzz-style property
//! test: random bytes and randomly generated YAML-like structure (deep, wide,
//! flow and block, quoted and not), for a fixed time budget from a fixed seed,
//! through the YAML reader and every edit: none may panic, and none may take
//! more than a bounded time on one input (a superlinear parser shows there).

use super::{chart, generator, helm_template, secrets_yaml, values};
use crate::names::DbName;

/// A small deterministic generator (xorshift), so that a failure reproduces.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// `text` with a few random edits of the kinds that break these formats.
fn damage(text: &str, noise: &mut Noise) -> String {
    const PIECES: &[&str] = &[
        ":",
        "-",
        "'",
        "\"",
        "{",
        "}",
        "{{",
        "}}",
        "#",
        " ",
        "  ",
        "\n",
        "\t",
        "(",
        ")",
        "_db",
        "é",
        "- name: VRO_DB_",
    ];
    let mut out: Vec<char> = text.chars().collect();
    for _ in 0..1 + noise.below(4) {
        let at = noise.below(out.len() + 1);
        match noise.below(4) {
            0 if !out.is_empty() => {
                let end = (at + 1 + noise.below(8)).min(out.len());
                out.drain(at.min(end)..end);
            }
            1 => {
                let piece = PIECES[noise.below(PIECES.len())];
                out.splice(at..at, piece.chars());
            }
            2 => {
                let lines: Vec<String> = out
                    .iter()
                    .collect::<String>()
                    .lines()
                    .map(String::from)
                    .collect();
                if !lines.is_empty() {
                    let (a, b) = (noise.below(lines.len()), noise.below(lines.len()));
                    let mut lines = lines;
                    lines.swap(a, b);
                    out = lines.join("\n").chars().collect();
                }
            }
            _ => out.truncate(at),
        }
    }
    out.into_iter().collect()
}

fn fixture(path: &str) -> String {
    std::fs::read_to_string(crate::config::workspace_root().join(path)).unwrap()
}

#[test]
fn damaged_files_never_panic() {
    let db = DbName {
        name: "exposurelog".into(),
    };
    let files = [
        fixture("sample/phalanx/services/postgres/values-base.yaml"),
        fixture("sample/phalanx/services/postgres/values-idfdev.yaml"),
        fixture("sample/phalanx/services/postgres/values-minikube.yaml"),
        fixture("sample/charts/charts/postgres/templates/deployment.yaml"),
        fixture("tests/fixtures/layouts/applications-secrets-sorted/phalanx/applications/postgres/templates/deployment.yml"),
        fixture("sample/phalanx/services/postgres/Chart.yaml"),
        fixture("sample/charts/charts/postgres/Chart.yaml"),
        fixture("sample/phalanx/installer/generate_secrets.py"),
        fixture("tests/fixtures/layouts/split-module-calls/phalanx/installer/generate_secrets.py"),
        fixture("tests/fixtures/layouts/split-dict/phalanx/installer/generate_secrets.py"),
        fixture("tests/fixtures/layouts/split-tabs-conditional/phalanx/installer/generate_secrets.py"),
        fixture("tests/fixtures/layouts/applications-secrets-sorted/phalanx/applications/postgres/secrets.yaml"),
    ];
    let mut noise = Noise(0x5eed_1234_abcd_0001);
    let version = semver::Version::new(0, 1, 9);
    for round in 0..300 {
        for original in &files {
            let text = damage(original, &mut noise);
            let context = format!("round {round}: {text:?}");
            let run = std::panic::catch_unwind(|| every_edit(&text, &db, &version));
            assert!(run.is_ok(), "panicked on {context}");
        }
    }
}

/// Every parser and pure edit of `files/` on one text; their results do not matter.
fn every_edit(text: &str, db: &DbName, version: &semver::Version) {
    let text = text.to_string();
    let _ = super::parse_yaml(&text);
    for nesting in [values::Nesting::UnderPostgres, values::Nesting::TopLevel] {
        let _ = values::parse(&text, nesting);
        let _ = values::add_entry(
            &text,
            nesting,
            "exposurelog_db",
            "exposurelog",
            "exposurelog",
        );
        let _ = values::remove_entry(&text, nesting, "jupyterhub_db");
    }
    let _ = helm_template::parse(&text);
    let _ = helm_template::add_block(&text, db);
    let _ = helm_template::remove_block(
        &text,
        &DbName {
            name: "jupyterhub".into(),
        },
    );
    let _ = chart::parse(&text);
    let _ = chart::bump_version(&text, chart::Bump::Minor);
    let _ = chart::move_dependency(&text, "postgres", None, version);
    let _ = generator::parse(&text);
    let _ = generator::add_line(&text, "exposurelog_password");
    let _ = generator::remove_line(&text, "jupyterhub_password");
    let _ = generator::add_copy(
        &text,
        "exposurelog",
        "database-password",
        "jupyterhub_password",
    );
    let _ = secrets_yaml::parse(&text);
    let _ = secrets_yaml::add_entry(&text, db, &secrets_yaml::Source::Generate);
    let _ = secrets_yaml::remove_entry(&text, "gafaelfawr_password");
    let _ = secrets_yaml::add_app_copy(&text, "database-password", "exposurelog", "x_password");
}

/// A random YAML-like text of at most `size` bytes: nested block mappings and
/// sequences, flow collections, quoted and plain scalars, anchors, comments, with
/// depth up to 200 (beyond the reader's limit).
fn random_structure(noise: &mut Noise, size: usize) -> String {
    const WORDS: &[&str] = &[
        "a",
        "postgres",
        "user",
        "db",
        "jupyterhub_db",
        "'q''s'",
        "\"e\\t\"",
        "1",
        "-1",
        "0x1F",
        "true",
        "~",
        "&x v",
        "*x",
        "!tag v",
        "|",
        ">",
        "# c",
        "{}",
        "[]",
        "é",
        "key: value",
    ];
    let mut out = String::new();
    let mut depth = 0usize;
    let deepest = 1 + noise.below(200);
    while out.len() < size {
        let indent = "  ".repeat(depth.min(80));
        let word = WORDS[noise.below(WORDS.len())];
        match noise.below(9) {
            0 | 1 if depth < deepest => {
                out.push_str(&format!("{indent}k{}:\n", noise.below(50)));
                depth += 1;
            }
            2 => out.push_str(&format!("{indent}- {word}\n")),
            3 => {
                let n = noise.below(deepest);
                out.push_str(&format!(
                    "{indent}f: {}{word}{}\n",
                    "[".repeat(n),
                    "]".repeat(n)
                ));
            }
            4 => {
                let n = noise.below(deepest);
                out.push_str(&format!(
                    "{indent}m: {}1{}\n",
                    "{a: ".repeat(n),
                    "}".repeat(n)
                ));
            }
            5 => depth = depth.saturating_sub(1 + noise.below(3)),
            6 => out.push_str(&format!(
                "{indent}{}\n",
                "- ".repeat(noise.below(deepest)) + word
            )),
            7 if noise.below(8) == 0 => {
                // A long run of one opener: what made a parser quadratic.
                let run = ["[", "{a: ", "- ", "? "][noise.below(4)];
                out.push_str(&format!(
                    "{indent}r: {}\n",
                    run.repeat(noise.below(size / 4 + 1))
                ));
            }
            _ => out.push_str(&format!("{indent}k{}: {word}\n", noise.below(50))),
        }
    }
    out
}

/// Random bytes, mostly printable, of at most `size` bytes, as text.
fn random_bytes(noise: &mut Noise, size: usize) -> String {
    let bytes: Vec<u8> = (0..noise.below(size))
        .map(|_| match noise.below(4) {
            0 => {
                let marks = b"[]{}:-'\"#&*!|> \n\t";
                marks[noise.below(marks.len())]
            }
            1 => noise.next() as u8,
            _ => b'a' + noise.below(26) as u8,
        })
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn random_texts_never_panic_nor_take_long() {
    use std::time::{Duration, Instant};
    // The CI budget: a fixed seed, as many inputs as fit in it.
    let budget = Duration::from_secs(4);
    // One input of at most 64 KiB, in a debug build: far above what a linear
    // reader needs, far below what a quadratic one takes (`[` x 64 Ki: minutes).
    let per_input = Duration::from_secs(2);
    let db = DbName {
        name: "exposurelog".into(),
    };
    let version = semver::Version::new(0, 1, 9);
    let mut noise = Noise(0x0f0f_5eed_2026_0018);
    let start = Instant::now();
    let mut count = 0;
    let mut slowest = Duration::ZERO;
    while start.elapsed() < budget || count < 50 {
        let size = 1 + noise.below(64 * 1024);
        let text = if count % 2 == 0 {
            random_structure(&mut noise, size)
        } else {
            random_bytes(&mut noise, size)
        };
        let begun = Instant::now();
        let run = std::panic::catch_unwind(|| every_edit(&text, &db, &version));
        let took = begun.elapsed();
        let head: String = text.chars().take(200).collect();
        assert!(run.is_ok(), "input {count} panicked: {head:?}");
        assert!(
            took < per_input,
            "input {count} ({} bytes) took {took:?}: {head:?}",
            text.len()
        );
        slowest = slowest.max(took);
        count += 1;
    }
    eprintln!("{count} random inputs, the slowest took {slowest:?}");
}
