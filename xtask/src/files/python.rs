//! A small Python tokenizer for the generator: enough of the language to tell code
//! from strings, docstrings and comments, to join the physical lines of one
//! statement, and to know each statement's indentation and the `def`/`if` that
//! encloses it. It never fails: unterminated strings and brackets end at the end
//! of the text.

/// One token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tok {
    /// An identifier, keyword or number.
    Name(String),
    /// A string literal: its content (escapes left as written) and quote character.
    Str { content: String, quote: char },
    /// An operator or bracket; `==`, `!=`, `<=`, `>=`, `+=`, ... are one token.
    Op(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    pub tok: Tok,
    /// Byte offsets in the text.
    pub start: usize,
    pub end: usize,
    /// 0-based line of the first and of the last byte.
    pub line: usize,
    pub end_line: usize,
}

impl Token {
    pub fn is_op(&self, op: &str) -> bool {
        matches!(&self.tok, Tok::Op(o) if o == op)
    }

    pub fn is_name(&self, name: &str) -> bool {
        matches!(&self.tok, Tok::Name(n) if n == name)
    }

    pub fn name(&self) -> Option<&str> {
        match &self.tok {
            Tok::Name(n) => Some(n),
            _ => None,
        }
    }

    pub fn string(&self) -> Option<&str> {
        match &self.tok {
            Tok::Str { content, .. } => Some(content),
            _ => None,
        }
    }
}

/// One logical line (a statement, or a compound statement's header).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    /// 0-based first and last physical line.
    pub first: usize,
    pub last: usize,
    /// The leading white space of the first line, as written.
    pub indent: String,
    /// Its width, a tab counting up to the next multiple of 8.
    pub width: usize,
    /// Indexes into [`Source::tokens`].
    pub tokens: std::ops::Range<usize>,
}

/// A tokenized Python text.
#[derive(Clone, Debug)]
pub struct Source {
    pub tokens: Vec<Token>,
    pub statements: Vec<Statement>,
}

impl Source {
    pub fn tokens_of(&self, statement: &Statement) -> &[Token] {
        &self.tokens[statement.tokens.clone()]
    }

    /// The index of the statement that holds token `index`.
    pub fn statement_of(&self, index: usize) -> Option<usize> {
        let i = self.statements.partition_point(|s| s.tokens.end <= index);
        (i < self.statements.len() && self.statements[i].tokens.contains(&index)).then_some(i)
    }

    /// The statements whose header encloses statement `index`, innermost first: each
    /// is the nearest earlier statement of a smaller width.
    pub fn enclosing(&self, index: usize) -> Vec<usize> {
        let mut out = Vec::new();
        let mut width = self.statements[index].width;
        for j in (0..index).rev() {
            if self.statements[j].width < width {
                out.push(j);
                width = self.statements[j].width;
                if width == 0 {
                    break;
                }
            }
        }
        out
    }

    /// The body of the compound statement `index`: the statements after it that are
    /// wider, as a range of statement indexes.
    pub fn body(&self, index: usize) -> std::ops::Range<usize> {
        let width = self.statements[index].width;
        let end = (index + 1..self.statements.len())
            .find(|&j| self.statements[j].width <= width)
            .unwrap_or(self.statements.len());
        index + 1..end
    }

    /// `def NAME(` at the start of statement `index`: NAME.
    pub fn def_name(&self, index: usize) -> Option<&str> {
        let t = self.tokens_of(&self.statements[index]);
        let t = if t.first().is_some_and(|t| t.is_name("async")) {
            &t[1..]
        } else {
            t
        };
        (t.len() >= 3 && t[0].is_name("def") && t[2].is_op("("))
            .then(|| t[1].name())
            .flatten()
    }
}

/// The columns a line's leading text takes, tabs to the next multiple of 8 (as Python
/// and black count them).
pub fn width_of(indent: &str) -> usize {
    indent
        .chars()
        .fold(0, |w, c| if c == '\t' { (w / 8 + 1) * 8 } else { w + 1 })
}

/// The statement being read: its first line, indentation and first token.
type OpenStatement = Option<(usize, String, usize)>;

/// Ends the statement being read, if it has tokens.
fn close_statement(open: &mut OpenStatement, statements: &mut Vec<Statement>, tokens: &[Token]) {
    let Some((first, indent, start)) = open.take() else {
        return;
    };
    if let Some(end) = tokens.last().filter(|_| start < tokens.len()) {
        statements.push(Statement {
            first,
            last: end.end_line,
            width: width_of(&indent),
            indent,
            tokens: start..tokens.len(),
        });
    }
}

/// The length of a line continuation (`\` and a line break) at the start of `rest`.
fn continuation(rest: &[u8]) -> Option<usize> {
    match rest {
        [b'\\', b'\n', ..] => Some(2),
        [b'\\', b'\r', b'\n', ..] => Some(3),
        _ => None,
    }
}

/// Tokenizes `text`.
pub fn tokenize(text: &str) -> Source {
    let bytes = text.as_bytes();
    let mut tokens: Vec<Token> = Vec::new();
    let mut statements: Vec<Statement> = Vec::new();
    let (mut i, mut line, mut line_start, mut depth) = (0, 0, 0, 0usize);
    let mut open: OpenStatement = None;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\n' || continuation(&bytes[i..]).is_some() {
            if b == b'\n' && depth == 0 {
                close_statement(&mut open, &mut statements, &tokens);
            }
            line += 1;
            i += continuation(&bytes[i..]).unwrap_or(1);
            line_start = i;
            continue;
        }
        match b {
            b' ' | b'\t' | b'\r' | b'\x0c' => i += 1,
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            _ => {
                if open.is_none() {
                    let indent = &text[line_start..i];
                    let indent = if indent.trim().is_empty() { indent } else { "" };
                    open = Some((line, indent.to_string(), tokens.len()));
                }
                let (start, start_line) = (i, line);
                let tok = if let Some((quote, prefix)) = string_start(&bytes[i..]) {
                    read_string(text, &mut i, &mut line, quote, prefix)
                } else if b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80 {
                    read_name(text, &mut i)
                } else {
                    match b {
                        b'(' | b'[' | b'{' => depth += 1,
                        b')' | b']' | b'}' => depth = depth.saturating_sub(1),
                        _ => {}
                    }
                    read_op(text, &mut i)
                };
                tokens.push(Token {
                    tok,
                    start,
                    end: i,
                    line: start_line,
                    end_line: line,
                });
            }
        }
    }
    close_statement(&mut open, &mut statements, &tokens);
    Source { tokens, statements }
}

/// The string literal at `*i` (its prefix of `prefix` bytes, then `quote`), moving
/// `*i` past it and `*line` over the lines it spans. An unclosed one ends at its line's
/// end (a single-quoted string) or at the end of the text.
fn read_string(text: &str, i: &mut usize, line: &mut usize, quote: u8, prefix: usize) -> Tok {
    let bytes = text.as_bytes();
    *i += prefix;
    let triple = bytes[*i..].starts_with(&[quote, quote, quote]);
    let q = if triple { 3 } else { 1 };
    *i += q;
    let content_start = *i;
    let mut content_end = bytes.len();
    while *i < bytes.len() {
        if bytes[*i] == b'\\' {
            if bytes.get(*i + 1) == Some(&b'\n') {
                *line += 1;
            }
            *i += 2;
            continue;
        }
        if bytes[*i] == b'\n' {
            if !triple {
                content_end = *i;
                break;
            }
            *line += 1;
        }
        if bytes[*i] == quote && (!triple || bytes[*i..].starts_with(&[quote, quote, quote])) {
            content_end = *i;
            *i += q;
            break;
        }
        *i += 1;
    }
    *i = (*i).min(bytes.len());
    Tok::Str {
        content: text
            .get(content_start.min(content_end)..content_end)
            .unwrap_or("")
            .to_string(),
        quote: quote as char,
    }
}

/// The name (identifier or number) at `*i`, moving `*i` past it.
fn read_name(text: &str, i: &mut usize) -> Tok {
    let bytes = text.as_bytes();
    let start = *i;
    while *i < bytes.len()
        && (bytes[*i].is_ascii_alphanumeric() || bytes[*i] == b'_' || bytes[*i] >= 0x80)
    {
        *i += 1;
    }
    while !text.is_char_boundary(*i) {
        *i += 1;
    }
    Tok::Name(text[start..*i].to_string())
}

/// The operator at `*i` (`==`, `->`, `+=` ... or one character), moving `*i` past it.
fn read_op(text: &str, i: &mut usize) -> Tok {
    let bytes = text.as_bytes();
    let (start, b) = (*i, bytes[*i]);
    let two = bytes.get(*i + 1) == Some(&b'=') && b"=!<>+-*/%&|^:@".contains(&b);
    let arrow = b == b'-' && bytes.get(*i + 1) == Some(&b'>');
    *i += if two || arrow { 2 } else { 1 };
    while !text.is_char_boundary(*i) {
        *i += 1;
    }
    Tok::Op(text[start..*i].to_string())
}

/// A string literal's quote and the length of its prefix (`r`, `b`, `f`, `rb`, ...).
fn string_start(rest: &[u8]) -> Option<(u8, usize)> {
    let prefix = rest
        .iter()
        .take(3)
        .take_while(|b| b"rRbBfFuU".contains(b))
        .count();
    if prefix > 2 {
        return None;
    }
    let quote = *rest.get(prefix)?;
    if quote != b'"' && quote != b'\'' {
        return None;
    }
    // A prefix only counts when it starts the token (not the end of a name).
    Some((quote, prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_comments_and_statements() {
        let text = "def f(self):\n    \"\"\"Doc with self._x(\"a\")\n    more.\"\"\"\n    x = [1,\n         2]  # c ]\n    if a == 'b':\n\ty = r'q\\'s'\n";
        let src = tokenize(text);
        assert_eq!(src.statements.len(), 5);
        assert_eq!(src.statements[1].first, 1);
        assert_eq!(src.statements[1].last, 2);
        assert_eq!(src.statements[2].first, 3);
        assert_eq!(src.statements[2].last, 4);
        assert_eq!(src.statements[4].width, 8);
        assert_eq!(src.statements[4].indent, "\t");
        assert_eq!(src.def_name(0), Some("f"));
        let doc = &src.tokens_of(&src.statements[1])[0];
        assert_eq!(doc.string(), Some("Doc with self._x(\"a\")\n    more."));
        assert!(src.tokens_of(&src.statements[3])[2].is_op("=="));
        assert_eq!(src.enclosing(4), vec![3, 0]);
        assert_eq!(src.body(0), 1..5);
    }

    #[test]
    fn damaged_text_ends_quietly() {
        for text in ["x = '''abc", "f(1, [2", "'\\", "\"", "ab\\", "é'x'"] {
            let _ = tokenize(text);
        }
    }
}
