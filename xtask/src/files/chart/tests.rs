use super::*;

fn v(text: &str) -> Version {
    Version::parse(text).unwrap()
}

const CHART: &str = "\
apiVersion: v2
name: postgres
# Bumped with every template change.
version: 0.1.4
description: Internal PostgreSQL
appVersion: \"0.0.6\"
";

#[test]
fn bump_version_table() {
    let cases = [
        (CHART, Bump::Patch, "version: 0.1.5", "0.1.5"),
        (CHART, Bump::Minor, "version: 0.2.0", "0.2.0"),
        (CHART, Bump::Major, "version: 1.0.0", "1.0.0"),
        (
            "name: postgres\nversion: \"1.9.9\" # keep\n",
            Bump::Patch,
            "version: \"1.9.10\" # keep",
            "1.9.10",
        ),
        (
            "name: postgres\nversion: '0.1.0'",
            Bump::Minor,
            "version: '0.2.0'",
            "0.2.0",
        ),
    ];
    for (input, bump, line, new) in cases {
        let (out, version) = bump_version(input, bump).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(version, v(new));
        let old_line = input.lines().find(|l| l.starts_with("version:")).unwrap();
        assert_eq!(out, input.replacen(old_line, line, 1), "{input} {bump:?}");
    }
}

#[test]
fn bump_version_errors() {
    let err = bump_version("name: postgres\n", Bump::Patch).unwrap_err();
    assert!(err.message.contains("no top-level `version:`"), "{err}");
    let err = bump_version("name: postgres\nversion: latest\n", Bump::Patch).unwrap_err();
    assert_eq!(err.line, Some(2), "{err}");
    assert!(err.message.contains("not a semantic version"), "{err}");
    let err = bump_version("name: postgres\nversion: [1\n", Bump::Patch).unwrap_err();
    assert!(err.message.contains("does not parse"), "{err}");
}

#[test]
fn move_requirement_table() {
    let new = v("0.1.5");
    for (before, after) in [
        ("0.1.4", "0.1.5"),
        (">=0.1.0", ">=0.1.5"),
        (">= 0.1.0", ">= 0.1.5"),
        ("^0.1.0", "^0.1.5"),
        ("~0.1", "~0.1.5"),
        ("~0.1.4", "~0.1.5"),
        ("=0.1.4", "=0.1.5"),
        (">=0.1.0 <1.0.0", ">=0.1.5 <1.0.0"),
        (">=0.1.0, <1.0.0", ">=0.1.5, <1.0.0"),
        ("v0.1.4", "v0.1.5"),
        (">=v0.1.0", ">=v0.1.5"),
    ] {
        assert_eq!(
            move_requirement(before, None, &new).as_deref(),
            Ok(after),
            "{before}"
        );
    }
    // Caret and tilde keep their operator on a minor or major bump too.
    assert_eq!(
        move_requirement("^0.1.0", None, &Version::new(0, 2, 0)).as_deref(),
        Ok("^0.2.0")
    );
    assert_eq!(
        move_requirement("~0.1", None, &Version::new(1, 0, 0)).as_deref(),
        Ok("~1.0.0")
    );
}

#[test]
fn a_requirement_that_cannot_admit_the_new_version_is_refused() {
    for (before, new) in [
        (">=0.1.0 <0.1.5", "0.1.5"),
        (">=0.1.0, <0.2", "0.2.0"),
        ("<1.0.0", "1.0.0"),
    ] {
        let err = move_requirement(before, None, &v(new)).unwrap_err();
        assert!(
            err.contains("does not admit") && err.contains(before),
            "{before}: {err}"
        );
    }
    let err = move_requirement("latest please", None, &v("1.0.0")).unwrap_err();
    assert!(err.contains("cannot read"), "{err}");
}

#[test]
fn admits_reads_helm_constraints() {
    let cases = [
        ("*", "9.9.9", true),
        ("", "0.0.1", true),
        (">=0.1.0", "0.1.4", true),
        ("0.1.x", "0.1.7", true),
        ("1.0 - 1.4", "1.3.0", true),
        ("<0.1.0 || >=0.2.0", "0.2.1", true),
        ("~> 0.1.2", "0.1.9", true),
        ("0.1.4", "0.1.5", false),
        (">=0.1.0 <1.0.0", "1.0.0", false),
        ("^0.1.0", "0.2.0", false),
        ("1.0 - 1.4", "1.5.0", false),
    ];
    for (req, version, admitted) in cases {
        assert_eq!(admits(req, &v(version)), Ok(admitted), "{req} {version}");
    }
}

const UMBRELLA: &str = "\
apiVersion: v2
name: postgres
version: 1.0.0
dependencies:
  - name: redis
    version: 0.1.0
    repository: https://example.org/charts/
  - name: postgres
    version: @@REQ@@
    repository: https://lsst-sqre.github.io/charts/
";

#[test]
fn move_dependency_table() {
    let cases = [
        ("0.1.4", "0.1.5"),
        ("\">=0.1.0\"", "\">=0.1.5\""),
        ("'>=0.1.0'", "'>=0.1.5'"),
        ("^0.1.0", "^0.1.5"),
        ("\"^0.1.0\"", "\"^0.1.5\""),
        ("~0.1", "~0.1.5"),
        ("\">=0.1.0 <1.0.0\"", "\">=0.1.5 <1.0.0\""),
        ("0.1.4 # pinned", "0.1.5 # pinned"),
    ];
    for (before, after) in cases {
        let input = UMBRELLA.replace("@@REQ@@", before);
        let out = move_dependency(&input, "postgres", None, &v("0.1.5"))
            .unwrap_or_else(|e| panic!("{before}: {e}"));
        assert_eq!(out, UMBRELLA.replace("@@REQ@@", after), "{before}");
    }
    // No final newline, the dependency written last.
    let input = "name: x\nversion: 1.0.0\ndependencies:\n- name: postgres\n  version: \"0.1.0\"";
    let out = move_dependency(input, "postgres", None, &v("0.1.1")).unwrap();
    assert_eq!(
        out,
        "name: x\nversion: 1.0.0\ndependencies:\n- name: postgres\n  version: \"0.1.1\""
    );
}

#[test]
fn move_dependency_errors_name_the_line() {
    let input = UMBRELLA.replace("@@REQ@@", "\">=0.1.0 <0.2.0\"");
    let err = move_dependency(&input, "postgres", None, &v("0.2.0")).unwrap_err();
    assert_eq!(err.line, Some(9), "{err}");
    assert!(err.message.contains("does not admit"), "{err}");
    let err = move_dependency(&input, "mysql", None, &v("0.2.0")).unwrap_err();
    assert!(err.message.contains("`mysql`"), "{err}");
    let err = move_dependency(
        "name: x\ndependencies:\n  - name: postgres\n    repository: r\n",
        "postgres",
        None,
        &v("1.0.0"),
    )
    .unwrap_err();
    assert_eq!(err.line, Some(3), "{err}");
    assert!(err.message.contains("no `version:`"), "{err}");
}

#[test]
fn parse_reads_dependencies_with_lines() {
    let chart = parse(&UMBRELLA.replace("@@REQ@@", "\">=0.1.0\"")).unwrap();
    assert_eq!(chart.name.as_deref(), Some("postgres"));
    assert_eq!(chart.version, Some((v("1.0.0"), 3)));
    assert_eq!(
        chart.dependencies,
        [
            Dependency {
                name: "redis".into(),
                requirement: "0.1.0".into(),
                line: 6
            },
            Dependency {
                name: "postgres".into(),
                requirement: ">=0.1.0".into(),
                line: 9
            },
        ]
    );
    // A `version:` nested in another key is not the chart's.
    let chart = parse("name: x\nannotations:\n  version: 9\n").unwrap();
    assert_eq!(chart.version, None);
    // Duplicate keys are refused with the line of the second.
    let err = parse("name: x\nversion: 0.1.0\nversion: 0.1.1\n").unwrap_err();
    assert_eq!(err.line, Some(3), "{err}");
}

#[test]
fn bump_parses() {
    assert_eq!("minor".parse::<Bump>(), Ok(Bump::Minor));
    let err = "huge".parse::<Bump>().unwrap_err();
    assert!(
        err.contains("`huge`") && err.contains("patch, minor or major"),
        "{err}"
    );
    assert_eq!(Bump::Patch.apply(&v("1.2.3-rc.1")), v("1.2.4"));
}

/// Every requirement shape, quoted or not, moved from 0.1.4 to `new`: the result
/// or the refusal's advice.
#[test]
fn requirements_keep_their_meaning() {
    let old = v("0.1.4");
    let cases: &[(&str, &str, Result<&str, &str>)] = &[
        ("0.1.4", "0.1.5", Ok("0.1.5")),
        ("=0.1.4", "0.1.5", Ok("=0.1.5")),
        (">=0.1.4", "0.1.5", Ok(">=0.1.5")),
        ("^0.1.4", "0.1.5", Ok("^0.1.5")),
        ("~0.1.4", "0.1.5", Ok("~0.1.5")),
        (">0.1.3", "0.1.5", Ok(">0.1.3")),
        (">=0.1.4 <1.0.0", "0.1.5", Ok(">=0.1.5 <1.0.0")),
        ("0.1.0 - 0.2.0", "0.1.5", Ok("0.1.5 - 0.2.0")),
        ("=0.1.4 || >=1.0", "0.1.5", Ok("=0.1.5 || >=1.0")),
        (">=2.0.0 || ^0.1.4", "0.1.5", Ok(">=2.0.0 || ^0.1.5")),
        ("0.1.x", "0.1.5", Ok("0.1.x")),
        ("0.1.*", "0.1.5", Ok("0.1.*")),
        ("0.1", "0.1.5", Ok("0.1")),
        ("0.x", "0.2.0", Ok("0.x")),
        ("0.1.x", "0.2.0", Err("write `0.2.x` instead")),
        ("0.1", "1.0.0", Err("write `1.0` instead")),
        (">=0.1.4 <0.1.5", "0.1.5", Err("edit it by hand")),
        (
            "=0.1.3 || =0.1.4 || >=0.1.0",
            "0.1.5",
            Err("not exactly one"),
        ),
        ("=0.1.0 || >=1.0", "0.1.5", Err("not exactly one")),
    ];
    for &(before, new, expected) in cases {
        // A plain YAML scalar cannot start with `>` (folded) or `*` (alias).
        let plain_ok = !before.starts_with(['>', '*']);
        for quoted in [!plain_ok, true] {
            let line = if quoted {
                format!("    version: \"{before}\"")
            } else {
                format!("    version: {before}")
            };
            let text = format!(
                "apiVersion: v2\nname: p\nversion: 1.0.0\ndependencies:\n  - name: postgres\n{line}\n"
            );
            let got = move_dependency(&text, "postgres", Some(&old), &v(new));
            match expected {
                Ok(after) => {
                    let want = text.replace(&line, &line.replace(before, after));
                    assert_eq!(got.as_deref(), Ok(want.as_str()), "{before} -> {new}");
                }
                Err(advice) => {
                    let err = got.unwrap_err().message;
                    assert!(
                        err.contains(advice) && err.contains(NOT_ADMITTED),
                        "{before} -> {new}: {err}"
                    );
                }
            }
        }
    }
}
