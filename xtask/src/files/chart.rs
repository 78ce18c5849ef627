//! `Chart.yaml`: the postgres chart's `version:` and the umbrella chart's dependency.
//!
//! Only the version token changes; its quoting, the operator of a requirement and
//! every other byte of the file stay as they were. Requirements follow Helm's
//! constraint syntax (`0.1.0` exact, `>=0.1.0`, `^0.1.0`, `~0.1`, `>=0.1 <1`,
//! `a || b`, `1.0 - 1.4`); they are read into the `semver` crate's requirements.

use regex::Regex;
use semver::{Version, VersionReq};
use std::sync::OnceLock;

use super::{
    indent_of, is_blank_or_comment, parse_yaml, split_key, unquote, FileError, FileResult,
    TextLines,
};

/// Which part of a version a bump increases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bump {
    Patch,
    Minor,
    Major,
}

impl std::str::FromStr for Bump {
    type Err = String;
    fn from_str(s: &str) -> Result<Bump, String> {
        match s {
            "patch" => Ok(Bump::Patch),
            "minor" => Ok(Bump::Minor),
            "major" => Ok(Bump::Major),
            other => Err(format!("unknown bump `{other}`: use patch, minor or major")),
        }
    }
}

impl Bump {
    pub fn apply(self, v: &Version) -> Version {
        match self {
            Bump::Patch => Version::new(v.major, v.minor, v.patch + 1),
            Bump::Minor => Version::new(v.major, v.minor + 1, 0),
            Bump::Major => Version::new(v.major + 1, 0, 0),
        }
    }
}

/// A dependency of a chart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dependency {
    pub name: String,
    /// The requirement without its YAML quotes.
    pub requirement: String,
    /// 1-based line of `version:`, or of the item when it has none.
    pub line: usize,
}

/// What a `Chart.yaml` says.
#[derive(Clone, Debug)]
pub struct Chart {
    pub name: Option<String>,
    pub version: Option<(Version, usize)>,
    pub dependencies: Vec<Dependency>,
}

impl Chart {
    pub fn dependency(&self, name: &str) -> Option<&Dependency> {
        self.dependencies.iter().find(|d| d.name == name)
    }
}

fn version_line_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r#"^(\s*(?:- )?\s*version:\s*)(["']?)([^"'#]*?)(["']?)(\s*(?:#.*)?)$"#)
            .expect("valid regex")
    })
}

/// Parses a `Chart.yaml`.
pub fn parse(text: &str) -> FileResult<Chart> {
    match parse_yaml(text)? {
        serde_yaml::Value::Mapping(_) => {}
        serde_yaml::Value::Null => {
            return Err(FileError::at(
                1,
                "the file is empty; a chart needs at least `apiVersion`, `name` and `version`",
            ))
        }
        _ => return Err(FileError::at(1, "the file is not a YAML mapping")),
    }
    let lines: Vec<&str> = text.lines().collect();
    let top = |key: &str| {
        lines.iter().enumerate().find_map(|(i, l)| {
            (indent_of(l) == 0)
                .then(|| split_key(l))
                .flatten()
                .filter(|(k, _)| k == key)
                .map(|(_, v)| (unquote(v).to_string(), i + 1))
        })
    };
    let name = top("name").map(|(n, _)| n);
    let version = match top("version") {
        Some((v, line)) => Some((
            Version::parse(&v).map_err(|e| {
                FileError::at(
                    line,
                    format!("`version: {v}` is not a semantic version: {e}"),
                )
            })?,
            line,
        )),
        None => None,
    };
    let dependencies = dependency_items(&lines)
        .into_iter()
        .filter_map(|(first, last)| {
            let mut name = None;
            let mut requirement = None;
            for (j, line) in lines.iter().enumerate().take(last + 1).skip(first) {
                match split_key(line) {
                    Some((k, v)) if k == "name" => name = Some(unquote(v).to_string()),
                    Some((k, v)) if k == "version" => {
                        requirement = Some((unquote(v).to_string(), j + 1))
                    }
                    _ => {}
                }
            }
            let (requirement, line) = requirement.unwrap_or((String::new(), first + 1));
            name.map(|name| Dependency {
                name,
                requirement,
                line,
            })
        })
        .collect();
    Ok(Chart {
        name,
        version,
        dependencies,
    })
}

/// The 0-based first and last line of each item of the top-level `dependencies:` list.
fn dependency_items(lines: &[&str]) -> Vec<(usize, usize)> {
    let Some(start) = lines
        .iter()
        .position(|l| indent_of(l) == 0 && split_key(l).is_some_and(|(k, _)| k == "dependencies"))
    else {
        return Vec::new();
    };
    let mut items: Vec<(usize, usize)> = Vec::new();
    let mut item_indent = None;
    for (j, line) in lines.iter().enumerate().skip(start + 1) {
        if is_blank_or_comment(line) {
            continue;
        }
        let indent = indent_of(line);
        let is_item = line.trim_start().starts_with("- ") || line.trim() == "-";
        if indent == 0 && !is_item {
            break;
        }
        if is_item && item_indent.is_none_or(|i| i == indent) {
            item_indent = Some(indent);
            items.push((j, j));
        } else if let Some(last) = items.last_mut() {
            last.1 = j;
        }
    }
    items
}

/// Replaces the version token on 1-based line `line`, keeping quotes and comment.
fn replace_version_token(text: &str, line: usize, new_token: &str) -> FileResult<String> {
    let mut doc = TextLines::new(text);
    let current = doc.lines[line - 1].clone();
    let caps = version_line_regex()
        .captures(&current)
        .ok_or_else(|| FileError::at(line, "cannot read this `version:` line"))?;
    doc.lines[line - 1] = format!(
        "{}{}{new_token}{}{}",
        &caps[1], &caps[2], &caps[4], &caps[5]
    );
    Ok(doc.render())
}

/// Bumps the chart's own `version:`; returns the new text and version.
pub fn bump_version(text: &str, bump: Bump) -> FileResult<(String, Version)> {
    let chart = parse(text)?;
    let (current, line) = chart
        .version
        .ok_or_else(|| FileError::whole("the chart has no top-level `version:`"))?;
    let new = bump.apply(&current);
    let result = replace_version_token(text, line, &new.to_string())?;
    let after = parse(&result)?;
    if after.version.map(|(v, _)| v) != Some(new.clone()) || after.name != chart.name {
        return Err(FileError::unverified(
            "the bumped Chart.yaml does not read back",
        ));
    }
    Ok((result, new))
}

fn comparator_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r"(>=|<=|!=|~>|>|<|=|\^|~)?(\s*v?)(\d+(?:\.(?:\d+|[xX*]))?(?:\.(?:\d+|[xX*]))?(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?)")
            .expect("valid regex")
    })
}

fn hyphen_regex() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"(\S+)\s+-\s+(\S+)").expect("valid regex"))
}

/// Reads a Helm constraint into one `semver` requirement per `||` alternative.
pub fn read_requirement(requirement: &str) -> Result<Vec<VersionReq>, String> {
    let text = requirement.trim();
    if text.is_empty() || text == "*" {
        return Ok(vec![VersionReq::STAR]);
    }
    text.split("||")
        .map(|alternative| {
            let alternative = hyphen_regex().replace_all(alternative.trim(), ">=$1, <=$2");
            let mut parts = Vec::new();
            let mut consumed = String::new();
            for caps in comparator_regex().captures_iter(&alternative) {
                let op = match caps.get(1).map_or("", |m| m.as_str()) {
                    "" => "=",
                    "~>" => "~",
                    op => op,
                };
                parts.push(format!("{op}{}", &caps[3]));
                consumed.push_str(&caps[0]);
            }
            let leftover: String = alternative
                .chars()
                .filter(|c| !c.is_whitespace() && *c != ',')
                .collect();
            let used: String = consumed.chars().filter(|c| !c.is_whitespace()).collect();
            if parts.is_empty() || leftover.replace('v', "") != used.replace('v', "") {
                return Err(format!(
                    "cannot read the version requirement `{requirement}`"
                ));
            }
            VersionReq::parse(&parts.join(", "))
                .map_err(|e| format!("cannot read the version requirement `{requirement}`: {e}"))
        })
        .collect()
}

/// Whether a Helm constraint admits a version.
pub fn admits(requirement: &str, version: &Version) -> Result<bool, String> {
    Ok(read_requirement(requirement)?
        .iter()
        .any(|r| r.matches(version)))
}

/// What the error of a requirement that cannot be moved says: the repository's
/// state, not the user's input, is at fault.
pub const NOT_ADMITTED: &str = "still does not admit";

/// Whether a version token stands for many versions: `0.1.x`, `0.1.*`, `1.*` or,
/// without an operator, a partial version such as `0.1`.
fn is_wildcard(op: &str, token: &str) -> bool {
    token.contains(['x', 'X', '*']) || (op.is_empty() && token.matches('.').count() < 2)
}

/// A wildcard token rewritten for `new`: `0.1.x` -> `0.2.x`.
fn wildcard_for(token: &str, new: &Version) -> String {
    let parts = [new.major, new.minor, new.patch];
    token
        .split('.')
        .enumerate()
        .map(|(i, part)| {
            if part.chars().all(|c| c.is_ascii_digit()) {
                parts.get(i).map_or(part.to_string(), u64::to_string)
            } else {
                part.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// Moves a requirement to a new version, keeping its meaning: in the one `||`
/// alternative that admits the chart's current version `old` (the only one if
/// there is no `||`), the version of every exact or lower-bound comparator becomes
/// `new`; upper bounds, the other alternatives and wildcards that still admit
/// `new` stay. What cannot be moved that way is refused, saying what to write.
pub fn move_requirement(
    requirement: &str,
    old: Option<&Version>,
    new: &Version,
) -> Result<String, String> {
    read_requirement(requirement)?;
    let alternatives: Vec<&str> = requirement.split("||").collect();
    let chosen = if alternatives.len() == 1 {
        0
    } else {
        let admitting: Vec<usize> = match old {
            Some(old) => (0..alternatives.len())
                .filter(|&i| admits(alternatives[i], old).unwrap_or(false))
                .collect(),
            None => Vec::new(),
        };
        match admitting[..] {
            [one] => one,
            _ => {
                let current = old.map_or("its current version".to_string(), |v| v.to_string());
                return Err(format!(
                    "the requirement `{requirement}` has {} alternatives joined by `||`, and not exactly one                      admits the chart's version {current}, so which one to move to {new} is unclear; it {NOT_ADMITTED}                      {new} unless edited by hand",
                    alternatives.len()
                ));
            }
        }
    };
    let mut wildcards = Vec::new();
    let alternative = alternatives[chosen];
    let moved_alternative =
        comparator_regex().replace_all(alternative, |caps: &regex::Captures| {
            let whole = caps.get(0).expect("a match");
            let op = caps.get(1).map_or("", |m| m.as_str());
            let token = &caps[3];
            let upper_of_hyphen = alternative[..whole.start()].trim_end().ends_with(" -")
                || alternative[..whole.start()].trim_end() == "-";
            if is_wildcard(op, token) {
                wildcards.push((token.to_string(), wildcard_for(token, new)));
                return caps[0].to_string();
            }
            match op {
                "" | "=" | ">=" | "^" | "~" | "~>" if !upper_of_hyphen => {
                    format!("{op}{}{new}", &caps[2])
                }
                _ => caps[0].to_string(),
            }
        });
    let mut parts: Vec<String> = alternatives.iter().map(|a| a.to_string()).collect();
    parts[chosen] = moved_alternative.into_owned();
    let moved = parts.join("||");
    if !admits(&moved, new)? {
        let advice = if wildcards.is_empty() {
            "edit it by hand".to_string()
        } else {
            let mut suggestion = parts[chosen].clone();
            for (from, to) in &wildcards {
                suggestion = suggestion.replacen(from.as_str(), to, 1);
            }
            parts[chosen] = suggestion;
            format!("write `{}` instead", parts.join("||").trim())
        };
        let shown = if moved == requirement {
            String::new()
        } else {
            format!(" moved to `{moved}`")
        };
        return Err(format!(
            "the requirement `{requirement}`{shown} {NOT_ADMITTED} {new}; {advice}"
        ));
    }
    Ok(moved)
}

/// Moves the requirement of dependency `name` from the chart's version `old` (if
/// known) to `new`.
pub fn move_dependency(
    text: &str,
    name: &str,
    old: Option<&Version>,
    new: &Version,
) -> FileResult<String> {
    let chart = parse(text)?;
    let dep = chart.dependency(name).ok_or_else(|| {
        FileError::whole(format!(
            "no dependency named `{name}` under `dependencies:`"
        ))
    })?;
    if dep.requirement.is_empty() {
        return Err(FileError::at(
            dep.line,
            format!("the dependency `{name}` has no `version:`"),
        ));
    }
    let moved =
        move_requirement(&dep.requirement, old, new).map_err(|e| FileError::at(dep.line, e))?;
    let result = replace_version_token(text, dep.line, &moved)?;
    let after = parse(&result)?;
    let ok = after
        .dependency(name)
        .is_some_and(|d| d.requirement == moved)
        && after.dependencies.len() == chart.dependencies.len()
        && after.version.map(|v| v.0) == chart.version.map(|v| v.0);
    if !ok {
        return Err(FileError::unverified(
            "the edited Chart.yaml does not read back",
        ));
    }
    Ok(result)
}

#[cfg(test)]
mod tests;
