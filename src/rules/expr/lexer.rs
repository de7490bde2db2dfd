//! Tokens of the expression language: turns expression text into a token list with byte
//! offsets. Knows nothing of functions or types; the parser gives tokens their meaning.

use super::ExprError;

/// What a token is.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Tok {
    /// `[name]`: an attribute reference (name as written, without brackets).
    Attr(String),
    /// `"text"` with escapes resolved.
    Str(String),
    /// A decimal or `&H` hexadecimal integer.
    Num(i64),
    /// A bare word: function name, constant (`True`, `NULL`, ...), keyword or enum constant.
    Ident(String),
    /// `$name`: a variable bound by `Select`, `Where` or `With`.
    Var(String),
    /// `(`
    LParen,
    /// `)`
    RParen,
    /// `,`
    Comma,
    /// `&` (concatenation)
    Amp,
    /// `+`
    Plus,
    /// `-`
    Minus,
    /// `*`
    Star,
    /// `/`
    Slash,
    /// `=`
    Eq,
    /// `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `&&`
    AndAnd,
    /// `||`
    OrOr,
    /// `!`
    Bang,
    /// End of the text.
    End,
}

/// A token and the byte offset where it starts.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Token {
    pub tok: Tok,
    pub offset: usize,
}

fn err(offset: usize, message: impl Into<String>, hint: Option<&str>) -> ExprError {
    ExprError {
        offset,
        message: message.into(),
        hint: hint.map(str::to_string),
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

/// Splits `text` into tokens; the last token is always [`Tok::End`].
pub(super) fn lex(text: &str) -> Result<Vec<Token>, ExprError> {
    let mut out = Vec::new();
    let mut it = text.char_indices().peekable();
    while let Some((start, c)) = it.next() {
        let tok = match c {
            c if c.is_whitespace() => continue,
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            ',' => Tok::Comma,
            '+' => Tok::Plus,
            '-' => Tok::Minus,
            '*' => Tok::Star,
            '/' => Tok::Slash,
            '=' => Tok::Eq,
            '<' => match it.peek() {
                Some((_, '>')) => {
                    it.next();
                    Tok::Ne
                }
                Some((_, '=')) => {
                    it.next();
                    Tok::Le
                }
                _ => Tok::Lt,
            },
            '>' => match it.peek() {
                Some((_, '=')) => {
                    it.next();
                    Tok::Ge
                }
                _ => Tok::Gt,
            },
            '!' => Tok::Bang,
            '|' => match it.peek() {
                Some((_, '|')) => {
                    it.next();
                    Tok::OrOr
                }
                _ => {
                    return Err(err(
                        start,
                        "'|' on its own is not an operator",
                        Some("use || for a logical or"),
                    ));
                }
            },
            '&' => {
                let rest = &text[start + 1..];
                if rest.starts_with('&') {
                    it.next();
                    Tok::AndAnd
                } else if let Some(hex) = hex_literal(rest) {
                    // `&H` followed by hex digits and not by more name characters.
                    for _ in 0..hex.len() + 1 {
                        it.next();
                    }
                    match u64::from_str_radix(hex, 16) {
                        // &HFFFFFFFFFFFFFFFF is -1 as in VBA's two's complement reading.
                        Ok(v) => Tok::Num(v as i64),
                        Err(_) => {
                            return Err(err(
                                start,
                                "hexadecimal number too large",
                                Some("at most 16 hex digits"),
                            ));
                        }
                    }
                } else {
                    Tok::Amp
                }
            }
            '"' => Tok::Str(string_literal(start, &mut it)?),
            '[' => {
                let mut name = String::new();
                let mut closed = false;
                for (_, c) in it.by_ref() {
                    if c == ']' {
                        closed = true;
                        break;
                    }
                    name.push(c);
                }
                if !closed {
                    return Err(err(
                        start,
                        "unterminated attribute reference",
                        Some("close it with ]"),
                    ));
                }
                let trimmed = name.trim();
                if trimmed.is_empty() {
                    return Err(err(
                        start,
                        "empty attribute name",
                        Some("write [attributeName]"),
                    ));
                }
                if !trimmed.chars().all(|c| {
                    c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' || c == ';'
                }) {
                    return Err(err(
                        start,
                        format!("invalid attribute name [{trimmed}]"),
                        Some("attribute names are letters, digits, '-' and ';'"),
                    ));
                }
                Tok::Attr(trimmed.to_string())
            }
            '$' => {
                let mut name = String::new();
                while let Some(&(_, c)) = it.peek() {
                    if !is_ident_char(c) {
                        break;
                    }
                    name.push(c);
                    it.next();
                }
                if name.is_empty() {
                    return Err(err(
                        start,
                        "'$' must be followed by a variable name",
                        Some("for example $item"),
                    ));
                }
                Tok::Var(name)
            }
            '%' => {
                return Err(err(
                    start,
                    "parameters (%Name%) are not supported",
                    Some("write the value as a string literal"),
                ));
            }
            c if c.is_ascii_digit() => {
                let mut end = start + 1;
                while let Some(&(i, c)) = it.peek() {
                    if !c.is_ascii_digit() {
                        break;
                    }
                    end = i + 1;
                    it.next();
                }
                if it.peek().is_some_and(|&(_, c)| is_ident_char(c)) {
                    return Err(err(
                        start,
                        "malformed number",
                        Some("numbers are decimal digits, or &H followed by hex digits"),
                    ));
                }
                match text[start..end].parse::<i64>() {
                    Ok(v) => Tok::Num(v),
                    Err(_) => {
                        return Err(err(
                            start,
                            "number too large",
                            Some("numbers are 64-bit integers"),
                        ));
                    }
                }
            }
            c if is_ident_start(c) => {
                let mut end = start + c.len_utf8();
                while let Some(&(i, c)) = it.peek() {
                    if !is_ident_char(c) {
                        break;
                    }
                    end = i + c.len_utf8();
                    it.next();
                }
                Tok::Ident(text[start..end].to_string())
            }
            '“' | '”' => {
                return Err(err(
                    start,
                    "smart quote",
                    Some("use straight quotes \"...\""),
                ));
            }
            other => {
                return Err(err(start, format!("unexpected character {other:?}"), None));
            }
        };
        out.push(Token { tok, offset: start });
    }
    out.push(Token {
        tok: Tok::End,
        offset: text.len(),
    });
    Ok(out)
}

/// The hex digits of an `&H..` literal (after the `&`), if `rest` starts with one.
fn hex_literal(rest: &str) -> Option<&str> {
    let after = rest.strip_prefix('H').or_else(|| rest.strip_prefix('h'))?;
    let n = after.bytes().take_while(u8::is_ascii_hexdigit).count();
    if n == 0 {
        return None;
    }
    let next = after[n..].chars().next();
    if next.is_some_and(is_ident_char) {
        return None;
    }
    Some(&after[..n])
}

/// Reads a string literal whose opening quote is at `start`. `""` and `\"` are an escaped
/// quote; `\\` stays as written (two backslashes) so that `"a\\"` still ends at its last quote;
/// other backslashes are kept for functions such as `Replace` that read `\n`, `\r`, `\t`.
fn string_literal(
    start: usize,
    it: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
) -> Result<String, ExprError> {
    let mut s = String::new();
    while let Some((_, c)) = it.next() {
        match c {
            '"' => {
                if let Some(&(_, '"')) = it.peek() {
                    it.next();
                    s.push('"');
                } else {
                    return Ok(s);
                }
            }
            '\\' => match it.peek() {
                Some(&(_, '"')) => {
                    it.next();
                    s.push('"');
                }
                Some(&(_, '\\')) => {
                    it.next();
                    s.push_str("\\\\");
                }
                _ => s.push('\\'),
            },
            c => s.push(c),
        }
    }
    Err(err(
        start,
        "unterminated string literal",
        Some("close it with \"; write \"\" for a quote inside"),
    ))
}
