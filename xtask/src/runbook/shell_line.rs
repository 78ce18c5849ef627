//! A small model of the shell lines a runbook prints: a program and its words, each
//! word either a value (from a file, the command line or the deployment), which is
//! always shell-quoted, or shell text the runbook writes itself (flags, variable
//! names, `${VAR:?message}` expansions). Rendering happens here and only here, so a
//! value cannot reach a pasted line without its quotes.

use std::fmt;

use crate::shell::quote;

/// One word of a shell line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Word {
    /// A value: rendered through [`quote`].
    Quoted(String),
    /// Shell text the runbook writes itself, rendered as it is (one word or several
    /// literal words, such as `-n postgres rollout restart deployment/postgres`).
    Raw(String),
}

impl Word {
    /// A value, quoted when rendered.
    pub fn quoted(value: impl Into<String>) -> Word {
        Word::Quoted(value.into())
    }

    /// Shell text written by the runbook, rendered as it is.
    pub fn raw(text: impl Into<String>) -> Word {
        Word::Raw(text.into())
    }
}

impl fmt::Display for Word {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Word::Quoted(value) => f.write_str(&quote(value)),
            Word::Raw(text) => f.write_str(text),
        }
    }
}

impl From<&Word> for Word {
    fn from(word: &Word) -> Word {
        word.clone()
    }
}

/// A shell line: a program (a helper of `templates/runbook-helpers.sh`, `kubectl`,
/// `phalanx`, ...) and its words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    program: &'static str,
    words: Vec<Word>,
}

/// A line that runs `program`, to be given its words with [`Line::arg`] and
/// [`Line::raw`].
pub fn cmd(program: &'static str) -> Line {
    Line {
        program,
        words: Vec::new(),
    }
}

impl Line {
    /// A value as the next word (quoted).
    pub fn arg(mut self, value: impl Into<String>) -> Line {
        self.words.push(Word::quoted(value));
        self
    }

    /// Shell text written by the runbook as the next word(s) (as it is).
    pub fn raw(mut self, text: impl Into<String>) -> Line {
        self.words.push(Word::raw(text));
        self
    }

    /// A word made elsewhere (a value or an expansion).
    pub fn word(mut self, word: impl Into<Word>) -> Line {
        self.words.push(word.into());
        self
    }
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.program)?;
        for word in &self.words {
            write!(f, " {word}")?;
        }
        Ok(())
    }
}

impl From<Line> for String {
    fn from(line: Line) -> String {
        line.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_and_the_runbooks_own_text_is_not() {
        let line = cmd("vault_login")
            .arg("base")
            .arg("https://vault.example.org")
            .raw("\"${X:?unset}\"");
        assert_eq!(
            line.to_string(),
            "vault_login base https://vault.example.org \"${X:?unset}\""
        );
        assert_eq!(
            cmd("check_database").arg("it's; rm -rf /").to_string(),
            "check_database \"it's; rm -rf /\""
        );
        assert_eq!(cmd("true").to_string(), "true");
    }

    #[test]
    fn a_value_with_a_line_break_stays_one_word() {
        let line = cmd("phalanx").raw("secrets sync").arg("a\nb");
        assert_eq!(line.to_string(), "phalanx secrets sync $'a\\nb'");
    }

    #[test]
    fn a_word_made_elsewhere_renders_as_it_would_alone() {
        let word = Word::quoted("a b");
        let line = cmd("echo").word(&word).word(Word::raw("$HOME"));
        assert_eq!(line.to_string(), format!("echo {word} $HOME"));
        assert_eq!(word.to_string(), "'a b'");
    }
}
