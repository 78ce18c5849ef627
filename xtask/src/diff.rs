//! Unified diffs of planned edits, coloured only on a terminal without `NO_COLOR`.

use similar::{ChangeTag, TextDiff};
use std::io::IsTerminal;

/// Whether to colour what goes to standard output.
pub fn use_color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

/// The number of whole lines two texts share at their start, and at their end
/// (not overlapping), less the three lines of context a hunk shows.
fn common_lines(before: &str, after: &str) -> (usize, usize) {
    let prefix_bytes = before
        .split_inclusive('\n')
        .zip(after.split_inclusive('\n'))
        .take_while(|(a, b)| a == b && a.ends_with('\n'))
        .map(|(a, _)| a.len())
        .collect::<Vec<_>>();
    let prefix = prefix_bytes.len().saturating_sub(3);
    let skipped: usize = prefix_bytes[..prefix].iter().sum();
    let (b_rest, a_rest) = (&before[skipped..], &after[skipped..]);
    let both = b_rest.len().min(a_rest.len());
    let mut suffix_bytes = Vec::new();
    let mut lines_b = b_rest.split_inclusive('\n').rev();
    let mut lines_a = a_rest.split_inclusive('\n').rev();
    let mut used = 0;
    while let (Some(a), Some(b)) = (lines_b.next(), lines_a.next()) {
        if a != b || used + a.len() >= both {
            break;
        }
        used += a.len();
        suffix_bytes.push(a.len());
    }
    let suffix = suffix_bytes.len().saturating_sub(3);
    (prefix, suffix)
}

/// A hunk header `@@ -a,b +c,d @@` with `offset` added to both start lines.
fn shift_header(header: &str, offset: usize) -> String {
    if offset == 0 {
        return header.to_string();
    }
    header
        .split(' ')
        .map(|word| {
            let (sign, rest) = word.split_at(word.len().min(1));
            if sign != "-" && sign != "+" {
                return word.to_string();
            }
            let (start, count) = rest
                .split_once(',')
                .map_or((rest, None), |(s, c)| (s, Some(c)));
            match start.parse::<usize>() {
                Ok(n) => {
                    let count = count.map_or(String::new(), |c| format!(",{c}"));
                    format!("{sign}{}{count}", n + offset)
                }
                Err(_) => word.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A unified diff of `before` and `after` with three lines of context. Lines the
/// two share at the start and end are set aside first, so a one-line edit of a
/// large file costs little.
pub fn unified(path: &str, before: &str, after: &str, color: bool) -> String {
    let (prefix, suffix) = common_lines(before, after);
    let cut = |text: &'_ str| -> String {
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        lines[prefix..lines.len() - suffix].concat()
    };
    let (before_mid, after_mid) = (cut(before), cut(after));
    let diff = TextDiff::from_lines(&before_mid, &after_mid);
    let mut out = String::new();
    let paint = |code: &str, text: &str| {
        if color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    };
    out.push_str(&paint("1", &format!("--- a/{path}\n+++ b/{path}\n")));
    for hunk in diff.unified_diff().context_radius(3).iter_hunks() {
        let header = shift_header(&hunk.header().to_string(), prefix);
        out.push_str(&paint("36", &format!("{header}\n")));
        for change in hunk.iter_changes() {
            let (sign, code) = match change.tag() {
                ChangeTag::Delete => ("-", "31"),
                ChangeTag::Insert => ("+", "32"),
                ChangeTag::Equal => (" ", ""),
            };
            let mut line = format!("{sign}{}", change.value());
            let missing_newline = !line.ends_with('\n');
            if missing_newline {
                line.push('\n');
            }
            out.push_str(&if code.is_empty() {
                line
            } else {
                paint(code, &line)
            });
            if missing_newline {
                out.push_str("\\ No newline at end of file\n");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::unified;

    #[test]
    fn large_common_parts_keep_their_line_numbers() {
        let lines: Vec<String> = (0..100).map(|i| format!("k{i}: {i}\n")).collect();
        let before = lines.concat();
        let mut changed = lines.clone();
        changed.insert(50, "new: 1\n".to_string());
        changed[80] = "k79: changed\n".to_string();
        let after = changed.concat();
        let got = unified("v.yaml", &before, &after, false);
        let whole = {
            let diff = similar::TextDiff::from_lines(before.as_str(), after.as_str());
            let mut out = String::from("--- a/v.yaml\n+++ b/v.yaml\n");
            for hunk in diff.unified_diff().context_radius(3).iter_hunks() {
                out.push_str(&format!("{}\n", hunk.header()));
                for change in hunk.iter_changes() {
                    let sign = match change.tag() {
                        similar::ChangeTag::Delete => "-",
                        similar::ChangeTag::Insert => "+",
                        similar::ChangeTag::Equal => " ",
                    };
                    out.push_str(&format!("{sign}{}", change.value()));
                }
            }
            out
        };
        assert_eq!(got, whole);
        for (a, b) in [("", "x\n"), ("x\n", ""), ("a\nb\n", "a\nb\n"), ("a", "a\n")] {
            let _ = unified("f", a, b, false);
        }
    }

    #[test]
    fn plain_diff_with_missing_newline() {
        let out = unified("v.yaml", "a: 1\nb: 2", "a: 1\nb: 2\nc: 3", false);
        assert_eq!(
            out,
            "--- a/v.yaml\n+++ b/v.yaml\n@@ -1,2 +1,3 @@\n a: 1\n-b: 2\n\\ No newline at end of file\n+b: 2\n+c: 3\n\\ No newline at end of file\n"
        );
    }
}
