//! Turns filter text into tokens, each tagged with its 0-based character position. Owns the
//! literal syntax (strings, escapes, numbers, keywords, variables); knows nothing of fields.

use super::QueryError;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Contains,
    NotContains,
}

impl CmpOp {
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Contains => "~",
            CmpOp::NotContains => "!~",
        }
    }
}

/// A numeric literal: integers stay exact, anything with a fraction or exponent is a float.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Number {
    Int(i64),
    Float(f64),
}

/// A variable the caller supplies at compile time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Var {
    Me,
    Now,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    Ident(String),
    Str(String),
    Num(Number),
    True,
    False,
    Null,
    Var(Var),
    Cmp(CmpOp),
    And,
    Or,
    Not,
    LParen,
    RParen,
}

impl Tok {
    /// How the token reads in an error message.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Ident(name) => format!("field {name:?}"),
            Tok::Str(_) => "a string".into(),
            Tok::Num(_) => "a number".into(),
            Tok::True => "true".into(),
            Tok::False => "false".into(),
            Tok::Null => "null".into(),
            Tok::Var(Var::Me) => "@me".into(),
            Tok::Var(Var::Now) => "@now".into(),
            Tok::Cmp(op) => format!("'{}'", op.symbol()),
            Tok::And => "'&&'".into(),
            Tok::Or => "'||'".into(),
            Tok::Not => "'!'".into(),
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
        }
    }
}

/// A token and the character offset where it starts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub pos: usize,
}

/// Split `input` into tokens. The caller has already bounded the input's size.
pub(crate) fn tokenize(input: &str) -> Result<Vec<Token>, QueryError> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start = i;
        let next = chars.get(i + 1).copied();
        let tok = match c {
            ' ' | '\t' | '\r' | '\n' => {
                i += 1;
                continue;
            }
            '(' => one(&mut i, Tok::LParen),
            ')' => one(&mut i, Tok::RParen),
            '=' => one(&mut i, Tok::Cmp(CmpOp::Eq)),
            '~' => one(&mut i, Tok::Cmp(CmpOp::Contains)),
            '!' => match next {
                Some('=') => two(&mut i, Tok::Cmp(CmpOp::Ne)),
                Some('~') => two(&mut i, Tok::Cmp(CmpOp::NotContains)),
                _ => one(&mut i, Tok::Not),
            },
            '>' if next == Some('=') => two(&mut i, Tok::Cmp(CmpOp::Ge)),
            '>' => one(&mut i, Tok::Cmp(CmpOp::Gt)),
            '<' if next == Some('=') => two(&mut i, Tok::Cmp(CmpOp::Le)),
            '<' => one(&mut i, Tok::Cmp(CmpOp::Lt)),
            '&' if next == Some('&') => two(&mut i, Tok::And),
            '|' if next == Some('|') => two(&mut i, Tok::Or),
            '&' => return Err(QueryError::new(start, "expected '&&'")),
            '|' => return Err(QueryError::new(start, "expected '||'")),
            '"' | '\'' => Tok::Str(string(&chars, &mut i)?),
            '@' => variable(&chars, &mut i)?,
            '0'..='9' => Tok::Num(number(&chars, &mut i)?),
            '-' if next.is_some_and(|n| n.is_ascii_digit()) => Tok::Num(number(&chars, &mut i)?),
            c if c.is_ascii_alphabetic() || c == '_' => word(&chars, &mut i),
            c => {
                return Err(QueryError::new(
                    start,
                    format!("unexpected character {c:?}"),
                ));
            }
        };
        tokens.push(Token { tok, pos: start });
    }
    Ok(tokens)
}

fn one(i: &mut usize, tok: Tok) -> Tok {
    *i += 1;
    tok
}

fn two(i: &mut usize, tok: Tok) -> Tok {
    *i += 2;
    tok
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// A quoted string starting at `*i`; escapes `\" \' \\ \n \t`.
fn string(chars: &[char], i: &mut usize) -> Result<String, QueryError> {
    let start = *i;
    let quote = chars[start];
    let mut out = String::new();
    let mut j = start + 1;
    loop {
        let Some(&c) = chars.get(j) else {
            return Err(QueryError::new(start, "unterminated string"));
        };
        match c {
            c if c == quote => break,
            '\\' => {
                let escaped = match chars.get(j + 1) {
                    Some('"') => '"',
                    Some('\'') => '\'',
                    Some('\\') => '\\',
                    Some('n') => '\n',
                    Some('t') => '\t',
                    Some(other) => {
                        return Err(QueryError::new(j, format!("invalid escape \\{other}")));
                    }
                    None => return Err(QueryError::new(start, "unterminated string")),
                };
                out.push(escaped);
                j += 2;
            }
            // Raw control characters (NUL, newlines…) are refused; escapes cover the useful ones.
            c if c.is_control() => {
                return Err(QueryError::new(
                    j,
                    format!("control character {c:?} in string"),
                ));
            }
            c => {
                out.push(c);
                j += 1;
            }
        }
    }
    *i = j + 1;
    Ok(out)
}

/// `@me` or `@now`.
fn variable(chars: &[char], i: &mut usize) -> Result<Tok, QueryError> {
    let start = *i;
    let mut j = start + 1;
    while chars.get(j).is_some_and(|c| is_word_char(*c)) {
        j += 1;
    }
    let name: String = chars[start + 1..j].iter().collect();
    let tok = match name.as_str() {
        "me" => Tok::Var(Var::Me),
        "now" => Tok::Var(Var::Now),
        _ => {
            return Err(QueryError::new(
                start,
                format!("unknown variable \"@{name}\" (use @me or @now)"),
            ));
        }
    };
    *i = j;
    Ok(tok)
}

/// `-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?`, not followed by a word character or a dot.
fn number(chars: &[char], i: &mut usize) -> Result<Number, QueryError> {
    let start = *i;
    let mut j = start;
    let digits = |j: &mut usize| {
        let from = *j;
        while chars.get(*j).is_some_and(|c| c.is_ascii_digit()) {
            *j += 1;
        }
        *j > from
    };
    if chars.get(j) == Some(&'-') {
        j += 1;
    }
    digits(&mut j);
    let mut float = false;
    if chars.get(j) == Some(&'.') {
        j += 1;
        float = true;
        if !digits(&mut j) {
            return Err(QueryError::new(start, "invalid number"));
        }
    }
    if matches!(chars.get(j), Some('e' | 'E')) {
        j += 1;
        float = true;
        if matches!(chars.get(j), Some('+' | '-')) {
            j += 1;
        }
        if !digits(&mut j) {
            return Err(QueryError::new(start, "invalid number"));
        }
    }
    if chars.get(j).is_some_and(|c| is_word_char(*c) || *c == '.') {
        return Err(QueryError::new(start, "invalid number"));
    }
    let text: String = chars[start..j].iter().collect();
    let number = if float {
        text.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Number::Float)
    } else {
        text.parse::<i64>().ok().map(Number::Int)
    };
    let number = number.ok_or_else(|| QueryError::new(start, "number out of range"))?;
    *i = j;
    Ok(number)
}

/// An identifier or one of the keywords `true`, `false`, `null`.
fn word(chars: &[char], i: &mut usize) -> Tok {
    let start = *i;
    let mut j = start;
    while chars.get(j).is_some_and(|c| is_word_char(*c)) {
        j += 1;
    }
    *i = j;
    let word: String = chars[start..j].iter().collect();
    match word.as_str() {
        "true" => Tok::True,
        "false" => Tok::False,
        "null" => Tok::Null,
        _ => Tok::Ident(word),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn toks(input: &str) -> Vec<(Tok, usize)> {
        tokenize(input)
            .unwrap()
            .into_iter()
            .map(|t| (t.tok, t.pos))
            .collect()
    }

    fn err(input: &str) -> (usize, String) {
        let e = tokenize(input).unwrap_err();
        (e.position, e.message)
    }

    #[test]
    fn operators_and_punctuation_are_tokenized_with_positions() {
        assert_eq!(
            toks("a=b!=c>d>=e<f<=g~h!~i&&(j||!k)"),
            vec![
                (Tok::Ident("a".into()), 0),
                (Tok::Cmp(CmpOp::Eq), 1),
                (Tok::Ident("b".into()), 2),
                (Tok::Cmp(CmpOp::Ne), 3),
                (Tok::Ident("c".into()), 5),
                (Tok::Cmp(CmpOp::Gt), 6),
                (Tok::Ident("d".into()), 7),
                (Tok::Cmp(CmpOp::Ge), 8),
                (Tok::Ident("e".into()), 10),
                (Tok::Cmp(CmpOp::Lt), 11),
                (Tok::Ident("f".into()), 12),
                (Tok::Cmp(CmpOp::Le), 13),
                (Tok::Ident("g".into()), 15),
                (Tok::Cmp(CmpOp::Contains), 16),
                (Tok::Ident("h".into()), 17),
                (Tok::Cmp(CmpOp::NotContains), 18),
                (Tok::Ident("i".into()), 20),
                (Tok::And, 21),
                (Tok::LParen, 23),
                (Tok::Ident("j".into()), 24),
                (Tok::Or, 25),
                (Tok::Not, 27),
                (Tok::Ident("k".into()), 28),
                (Tok::RParen, 29),
            ]
        );
    }

    #[test]
    fn literals_keywords_and_variables() {
        assert_eq!(
            toks(r#"true false null @me @now 42 -7 3.5 -1e3 2E+2"#),
            vec![
                (Tok::True, 0),
                (Tok::False, 5),
                (Tok::Null, 11),
                (Tok::Var(Var::Me), 16),
                (Tok::Var(Var::Now), 20),
                (Tok::Num(Number::Int(42)), 25),
                (Tok::Num(Number::Int(-7)), 28),
                (Tok::Num(Number::Float(3.5)), 31),
                (Tok::Num(Number::Float(-1000.0)), 35),
                (Tok::Num(Number::Float(200.0)), 40),
            ]
        );
    }

    #[test]
    fn strings_support_both_quotes_and_escapes() {
        assert_eq!(
            toks(r#""a\"b" 'c\'d' "e\\f\ng\th" 'x"y'"#),
            vec![
                (Tok::Str("a\"b".into()), 0),
                (Tok::Str("c'd".into()), 7),
                (Tok::Str("e\\f\ng\th".into()), 14),
                (Tok::Str("x\"y".into()), 27),
            ]
        );
    }

    #[test]
    fn positions_count_characters_not_bytes() {
        assert_eq!(
            toks("\"héllo→\" x"),
            vec![(Tok::Str("héllo→".into()), 0), (Tok::Ident("x".into()), 9)]
        );
        assert_eq!(err("\"é\" é").0, 4);
    }

    #[test]
    fn hostile_inputs_give_positioned_errors() {
        assert_eq!(err(r#"title = "abc"#), (8, "unterminated string".into()));
        assert_eq!(err(r#"title = "abc\"#), (8, "unterminated string".into()));
        assert_eq!(err(r#"t = "a\qb""#), (6, "invalid escape \\q".into()));
        assert_eq!(
            err("t = \"a\0b\""),
            (6, "control character '\\0' in string".into())
        );
        assert_eq!(err("t\0 = 1"), (1, "unexpected character '\\0'".into()));
        assert_eq!(err("t = 1 ; drop"), (6, "unexpected character ';'".into()));
        assert_eq!(err("t = 1 & u = 2"), (6, "expected '&&'".into()));
        assert_eq!(err("t = 1 | u = 2"), (6, "expected '||'".into()));
        assert_eq!(err("t = @you").0, 4);
        assert_eq!(
            err("t = 99999999999999999999"),
            (4, "number out of range".into())
        );
        assert_eq!(err("t = 1e999"), (4, "number out of range".into()));
        assert_eq!(err("t = 12abc"), (4, "invalid number".into()));
        assert_eq!(err("t = 1.2.3"), (4, "invalid number".into()));
        assert_eq!(err("t = 1."), (4, "invalid number".into()));
        assert_eq!(err("t = 1e"), (4, "invalid number".into()));
        assert_eq!(err("t = - 1"), (4, "unexpected character '-'".into()));
        assert_eq!(err("x\" --"), (1, "unterminated string".into()));
    }
}
