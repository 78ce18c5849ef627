//! Quoting words for a POSIX shell, for commands printed to be pasted, and showing
//! text read from files on a terminal without its control characters acting.

use std::borrow::Cow;

/// Whether a character would act on a terminal instead of showing: C0 and C1
/// controls, DEL, and the bidirectional overrides that reorder what is shown.
fn is_unsafe(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every control character shown as an escape (`\n`, `\t`, `\x1b`,
/// `\u{9b}`) and a backslash before such an escape's own backslash, so nothing read
/// from a file or a file name can move the cursor, ring or recolor a terminal.
pub fn escape(text: &str) -> Cow<'_, str> {
    escape_but(text, &[])
}

/// [`escape`], leaving the characters of `keep` (such as `\n` in a message of
/// several lines) as they are.
pub fn escape_but<'a>(text: &'a str, keep: &[char]) -> Cow<'a, str> {
    if !text.chars().any(|c| is_unsafe(c) && !keep.contains(&c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            c if keep.contains(&c) => out.push(c),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\\' => out.push_str("\\\\"),
            c if is_unsafe(c) && (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if is_unsafe(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `word` as one shell word: bare when it holds only safe characters, else in
/// single quotes; a word holding a control character is written `$'...'` with
/// escapes (bash, zsh, ksh), so it shows, and pastes, as one line.
pub fn quote(word: &str) -> String {
    if word.chars().any(is_unsafe) {
        let mut out = String::from("$'");
        for c in word.chars() {
            match c {
                '\'' => out.push_str("\\'"),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                c if is_unsafe(c) && (c as u32) < 0x80 => {
                    out.push_str(&format!("\\x{:02x}", c as u32))
                }
                c if is_unsafe(c) => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
        out.push('\'');
        return out;
    }
    let safe = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@%+,".contains(&b));
    if safe {
        word.to_string()
    } else if word.contains('\'') && !word.contains(['"', '$', '`', '\\', '!']) {
        format!("\"{word}\"")
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn quoting() {
        assert_eq!(
            quote("secret/k8s_operator/a.b/postgres"),
            "secret/k8s_operator/a.b/postgres"
        );
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), "\"it's\"");
        assert_eq!(quote("it's $HOME"), r"'it'\''s $HOME'");
        assert_eq!(quote("$(rm -rf /)"), "'$(rm -rf /)'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("a\nrm -rf ~ #"), r"$'a\nrm -rf ~ #'");
        assert_eq!(quote("x\x1b[2J'"), r"$'x\x1b[2J\''");
        assert_eq!(quote("\u{9b}31m"), r"$'\u009b31m'");
    }

    #[test]
    fn escaping() {
        use super::escape;
        assert_eq!(escape("plain ü"), "plain ü");
        assert_eq!(escape("a\x1b[31mb\x07"), r"a\x1b[31mb\x07");
        assert_eq!(escape("evil\ntouch X #"), r"evil\ntouch X #");
        assert_eq!(escape("c:\\x\r"), r"c:\\x\r");
        assert_eq!(escape("\u{202e}cod"), r"\u{202e}cod");
        assert_eq!(escape("\u{9b}"), r"\u{9b}");
    }
}
