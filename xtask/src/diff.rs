//! Unified diffs of planned edits, coloured only on a terminal without `NO_COLOR`.

use similar::{ChangeTag, TextDiff};
use std::io::IsTerminal;

/// Whether to colour what goes to standard output.
pub fn use_color() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()) && std::io::stdout().is_terminal()
}

/// A unified diff of `before` and `after` with three lines of context.
pub fn unified(path: &str, before: &str, after: &str, color: bool) -> String {
    let diff = TextDiff::from_lines(before, after);
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
        out.push_str(&paint("36", &format!("{}\n", hunk.header())));
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
    fn plain_diff_with_missing_newline() {
        let out = unified("v.yaml", "a: 1\nb: 2", "a: 1\nb: 2\nc: 3", false);
        assert_eq!(
            out,
            "--- a/v.yaml\n+++ b/v.yaml\n@@ -1,2 +1,3 @@\n a: 1\n-b: 2\n\\ No newline at end of file\n+b: 2\n+c: 3\n\\ No newline at end of file\n"
        );
    }
}
