//! `check --new-only` and `check --baseline FILE`: the findings the working tree
//! introduces, the old ones only counted.
//!
//! A finding is the same finding when its rule, repository, path and subject are
//! the same (its line may move as lines are added above it); as many old findings
//! are set aside as there were, so a second copy of an old mistake is new.
//!
//! - `--new-only` compares with a revision of the deployment repository: `--base REV`,
//!   else in a GitHub pull-request job the merge base with `origin/$GITHUB_BASE_REF`,
//!   else the merge base of `HEAD` with its upstream branch (`@{upstream}`, else
//!   `origin/HEAD`, else `origin/main`), else `HEAD` itself (a repository without a
//!   remote: what the commit being made changes). That revision's tree is exported
//!   (`git archive`) into a temporary folder and checked with the same rules. The
//!   charts repository of the split layout is compared with its own base the same
//!   way (the merge base with its upstream, else its `HEAD`; as it is outside git).
//! - `--baseline FILE` reads the old findings from FILE, the output of
//!   `check --format json` (only `rule`, `repo`, `path` and `subject` of each entry
//!   of `findings` are read): for repositories without history.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::{Finding, Report};
use crate::config::Config;
use crate::error::bad_input;
use crate::layout::Layout;

/// What makes two findings the same, whatever their line.
pub type Key = (String, String, String, String);

pub fn key(f: &Finding) -> Key {
    (
        f.rule.to_string(),
        f.repo.as_str().to_string(),
        f.path.clone(),
        f.subject.clone(),
    )
}

/// Keeps the findings of `report` that `old` does not hold (each old finding sets
/// aside one); returns the count set aside.
pub fn subtract(report: &mut Report, old: &[Key]) -> usize {
    let mut left: BTreeMap<&Key, usize> = BTreeMap::new();
    for k in old {
        *left.entry(k).or_default() += 1;
    }
    let before = report.findings.len();
    report.findings.retain(|f| {
        let k = key(f);
        match left.get_mut(&k) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        }
    });
    before - report.findings.len()
}

/// The old findings of a baseline file: `check --format json`'s output.
pub fn parse_baseline(text: &str, file: &Path) -> Result<Vec<Key>> {
    let bad = |why: String| bad_input(format!("{}: {why}", file.display()));
    let root: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| {
        let at = e
            .location()
            .map_or_else(String::new, |l| format!(":{}", l.line()));
        bad_input(format!(
            "{}{at}: not the JSON of `check --format json`: {e}",
            file.display()
        ))
    })?;
    let findings = root
        .get("findings")
        .and_then(|f| f.as_sequence())
        .ok_or_else(|| {
            bad("no `findings` list: write it with `check --format json > FILE`".into())
        })?;
    findings
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let field = |name: &str| {
                f.get(name)
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
                    .ok_or_else(|| bad(format!("finding {}: no string `{name}`", i + 1)))
            };
            Ok((
                field("rule")?,
                field("repo")?,
                field("path")?,
                field("subject")?,
            ))
        })
        .collect()
}

/// The merge base of `HEAD` and `other` in the repository at `root`, if both exist.
pub fn merge_base(root: &Path, other: &str) -> Option<String> {
    let out = crate::git::git(root, &["merge-base", "HEAD", other]).ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|c| !c.is_empty())
}

/// The revision `--new-only` compares with, and how it was chosen.
pub fn default_base(root: &Path) -> Option<(String, &'static str)> {
    let merge_base = |other: &str| merge_base(root, other);
    for (other, how) in [
        ("@{upstream}", "the merge base with the upstream branch"),
        ("origin/HEAD", "the merge base with origin/HEAD"),
        ("origin/main", "the merge base with origin/main"),
    ] {
        if let Some(commit) = merge_base(other) {
            return Some((commit, how));
        }
    }
    crate::git::commit_of(root, "HEAD").map(|c| (c, "HEAD (no upstream branch)"))
}

/// Whether `check` reads the file at this repository-relative path: what the base's
/// export holds (the hook's `files:` pattern says the same).
pub fn read_by_check(path: &str) -> bool {
    let yaml_named = |name: &str, stem: &str| {
        name.starts_with(stem) && (name.ends_with(".yaml") || name.ends_with(".yml"))
    };
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["services" | "applications", "postgres", ..] => true,
        ["installer", "generate_secrets.py"] | ["xtask.toml"] => true,
        ["applications", _, name] => *name == "secrets.yaml" || yaml_named(name, "values"),
        ["environments", name] => yaml_named(name, "values"),
        _ => false,
    }
}

/// A temporary folder removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Exports the files of `root` at `rev` that `keep` accepts into `dir` (`git ls-tree`,
/// `git archive`, `tar`); false when there is none.
fn export(root: &Path, rev: &str, keep: impl Fn(&str) -> bool, dir: &Path) -> Result<bool> {
    let run = |args: &[&str]| {
        crate::git::git(root, args)
            .map_err(|e| bad_input(format!("--new-only needs git, which did not run: {e}")))
    };
    let listed = run(&["ls-tree", "-r", "-z", "--name-only", rev])?;
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    let files: Vec<&str> = listed.split('\0').filter(|f| keep(f)).collect();
    if files.is_empty() {
        return Ok(false);
    }
    let mut args = vec!["archive", "--format=tar", rev, "--"];
    args.extend(files);
    let archive = run(&args)?;
    if !archive.status.success() {
        return Err(bad_input(format!(
            "--new-only: `git archive {rev}` failed in {}: {}",
            root.display(),
            String::from_utf8_lossy(&archive.stderr).trim()
        )));
    }
    std::fs::create_dir_all(dir)?;
    untar(&archive.stdout, dir)?;
    Ok(true)
}

/// The findings of the deployment repository at `rev` and, in the split layout, of
/// the charts repository at its own base (`default_base`; as it is outside git), each
/// exported into a temporary folder.
pub fn findings_at(config: &Config, layout: &Layout, rev: &str) -> Result<Vec<Key>> {
    let dir = std::env::temp_dir().join(format!(
        "pgdb-base-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir(&dir)?;
    let scratch = Scratch(dir);
    let phalanx = scratch.0.join("phalanx");
    if !export(&layout.phalanx, rev, read_by_check, &phalanx)? {
        // No deployment at the base (the first commit of one): every finding is new.
        return Ok(Vec::new());
    }
    let mut old_config = config.clone();
    old_config.phalanx = Some(phalanx);
    old_config.charts = layout.charts.clone();
    if let (Some(charts), Some((charts_rev, _))) = (
        &layout.charts,
        layout.charts.as_deref().and_then(default_base),
    ) {
        let chart_dir = layout
            .chart
            .relative
            .rsplit_once('/')
            .map_or(String::new(), |(d, _)| format!("{d}/"));
        let old_charts = scratch.0.join("charts");
        let keep = |f: &str| f.starts_with(&chart_dir);
        if export(charts, &charts_rev, keep, &old_charts)? {
            old_config.charts = Some(old_charts);
        }
    }
    // A deployment the check cannot read at the base: every finding is new.
    let old = Layout::detect(&old_config).and_then(|_| super::check(&old_config, None));
    match old {
        Ok(report) => Ok(report.findings.iter().map(key).collect()),
        Err(e) => {
            eprintln!(
                "note: --new-only: the check could not run at {rev} ({e}): every finding is new"
            );
            Ok(Vec::new())
        }
    }
}

/// Unpacks a tar archive into `dir` with the system's `tar`.
fn untar(archive: &[u8], dir: &Path) -> Result<()> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(dir)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| bad_input(format!("--new-only needs tar, which did not run: {e}")))?;
    let written = child.stdin.take().map(|mut s| s.write_all(archive));
    let out = child.wait_with_output()?;
    if !out.status.success() || matches!(written, Some(Err(_))) {
        return Err(bad_input(format!(
            "--new-only: tar could not unpack the base revision: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(rule: &'static str, line: usize) -> Finding {
        Finding::new(rule, "a.yaml", line, "s").says("m", "h")
    }

    #[test]
    fn an_old_finding_that_moved_is_old_and_a_second_copy_is_new() {
        let mut report = Report::new(vec![
            finding("yaml-syntax", 7),
            finding("yaml-syntax", 9),
            finding("unused-password", 1),
        ]);
        let old = vec![key(&finding("yaml-syntax", 3))];
        assert_eq!(subtract(&mut report, &old), 1);
        let rules: Vec<_> = report.findings.iter().map(|f| (f.rule, f.line)).collect();
        assert_eq!(rules, [("unused-password", 1), ("yaml-syntax", 9)]);
    }

    #[test]
    fn the_export_holds_what_check_reads() {
        for path in [
            "services/postgres/values-base.yaml",
            "applications/postgres/templates/deployment.yaml",
            "applications/gafaelfawr/secrets.yaml",
            "applications/gafaelfawr/values-idfdev.yml",
            "environments/values.yaml",
            "installer/generate_secrets.py",
            "xtask.toml",
        ] {
            assert!(read_by_check(path), "{path}");
        }
        for path in [
            "applications/gafaelfawr/templates/deployment.yaml",
            "applications/gafaelfawr/README.md",
            "environments/templates/x.yaml",
            "docs/index.rst",
            "installer/other.py",
        ] {
            assert!(!read_by_check(path), "{path}");
        }
    }

    #[test]
    fn a_baseline_is_the_json_of_check() {
        let file = Path::new("b.json");
        let json = r#"{"findings": [{"rule": "yaml-syntax", "severity": "error", "path": "a.yaml", "line": 3, "subject": "s", "message": "m", "repo": "phalanx"}], "errors": 1, "warnings": 0, "repositories": {}}"#;
        assert_eq!(
            parse_baseline(json, file).unwrap(),
            [key(&finding("yaml-syntax", 1))]
        );
        for (text, says) in [
            ("{", "b.json"),
            ("{\"errors\": 1}", "no `findings` list"),
            (
                "{\"findings\": [{\"rule\": 1}]}",
                "finding 1: no string `rule`",
            ),
        ] {
            let message = parse_baseline(text, file).unwrap_err().to_string();
            assert!(message.contains(says), "{text}: {message}");
        }
    }
}
