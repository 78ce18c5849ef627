//! Every parser and edit of `files/` on thousands of damaged variants of the
//! fixture files: each may refuse, none may panic.

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
            let run = std::panic::catch_unwind(|| {
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
                let _ = helm_template::add_block(&text, &db);
                let _ = helm_template::remove_block(
                    &text,
                    &DbName {
                        name: "jupyterhub".into(),
                    },
                );
                let _ = chart::parse(&text);
                let _ = chart::bump_version(&text, chart::Bump::Minor);
                let _ = chart::move_dependency(&text, "postgres", None, &version);
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
                let _ = secrets_yaml::add_entry(&text, &db, &secrets_yaml::Source::Generate);
                let _ = secrets_yaml::remove_entry(&text, "gafaelfawr_password");
                let _ = secrets_yaml::add_app_copy(
                    &text,
                    "database-password",
                    "exposurelog",
                    "x_password",
                );
            });
            assert!(run.is_ok(), "panicked on {context}");
        }
    }
}
