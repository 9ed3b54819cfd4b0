//! Builds the syntax tree from tokens by recursive descent, enforcing the depth and term limits.
//! Precedence, loosest first: `||`, `&&`, `!`/parentheses, comparisons. Comparisons are always
//! `field op value`; whether the field exists and the value fits is `check`'s business.

use super::lexer::{CmpOp, Number, Tok, Token, Var, tokenize};
use super::{MAX_DEPTH, MAX_TERMS, QueryError, check_input_size};

/// A boolean tree whose leaves are comparisons of type `C` (syntactic, then checked).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tree<C> {
    And(Vec<Tree<C>>),
    Or(Vec<Tree<C>>),
    Not(Box<Tree<C>>),
    Cmp(C),
}

impl<C> Tree<C> {
    /// Rebuild the tree with every leaf converted by `f`, stopping at the first error.
    pub(crate) fn try_map<D, E>(self, f: &mut impl FnMut(C) -> Result<D, E>) -> Result<Tree<D>, E> {
        Ok(match self {
            Tree::And(items) => Tree::And(
                items
                    .into_iter()
                    .map(|t| t.try_map(f))
                    .collect::<Result<_, _>>()?,
            ),
            Tree::Or(items) => Tree::Or(
                items
                    .into_iter()
                    .map(|t| t.try_map(f))
                    .collect::<Result<_, _>>()?,
            ),
            Tree::Not(inner) => Tree::Not(Box::new(inner.try_map(f)?)),
            Tree::Cmp(c) => Tree::Cmp(f(c)?),
        })
    }
}

/// A literal or variable on the right of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Literal {
    Str(String),
    Num(Number),
    Bool(bool),
    Null,
    Var(Var),
}

/// A comparison as written, with the positions errors point at.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawCmp {
    pub field: String,
    pub field_pos: usize,
    pub op: CmpOp,
    pub op_pos: usize,
    pub value: Literal,
    pub value_pos: usize,
}

/// Parse filter text into a syntax tree (no schema involved yet).
pub(crate) fn parse(input: &str) -> Result<Tree<RawCmp>, QueryError> {
    check_input_size(input)?;
    let tokens = tokenize(input)?;
    let mut parser = Parser {
        tokens,
        next: 0,
        end: input.chars().count(),
        depth: 0,
        terms: 0,
    };
    if parser.tokens.is_empty() {
        return Err(QueryError::new(0, "empty filter"));
    }
    let tree = parser.or()?;
    if let Some(token) = parser.peek() {
        return Err(QueryError::new(
            token.pos,
            format!("unexpected {}", token.tok.describe()),
        ));
    }
    Ok(tree)
}

struct Parser {
    tokens: Vec<Token>,
    next: usize,
    /// Position reported for "unexpected end of filter": the input's length in characters.
    end: usize,
    depth: usize,
    terms: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next)
    }

    fn bump(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.next).cloned();
        self.next += 1;
        token
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        if self.peek().is_some_and(|t| &t.tok == tok) {
            self.next += 1;
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Tree<RawCmp>, QueryError> {
        let mut items = vec![self.and()?];
        while self.eat(&Tok::Or) {
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.swap_remove(0)
        } else {
            Tree::Or(items)
        })
    }

    fn and(&mut self) -> Result<Tree<RawCmp>, QueryError> {
        let mut items = vec![self.unary()?];
        while self.eat(&Tok::And) {
            items.push(self.unary()?);
        }
        Ok(if items.len() == 1 {
            items.swap_remove(0)
        } else {
            Tree::And(items)
        })
    }

    /// `!x`, `(x)` or a comparison. Only this level recurses, so bounding depth here bounds
    /// the stack.
    fn unary(&mut self) -> Result<Tree<RawCmp>, QueryError> {
        let Some(token) = self.peek().cloned() else {
            return Err(self.unexpected_end("a comparison"));
        };
        match token.tok {
            Tok::Not => {
                self.next += 1;
                self.enter(token.pos)?;
                let inner = self.unary()?;
                self.depth -= 1;
                Ok(Tree::Not(Box::new(inner)))
            }
            Tok::LParen => {
                self.next += 1;
                self.enter(token.pos)?;
                let inner = self.or()?;
                match self.bump() {
                    Some(Token {
                        tok: Tok::RParen, ..
                    }) => {}
                    Some(other) => {
                        return Err(QueryError::new(
                            other.pos,
                            format!("expected ')', found {}", other.tok.describe()),
                        ));
                    }
                    None => return Err(self.unexpected_end("')'")),
                }
                self.depth -= 1;
                Ok(inner)
            }
            _ => self.comparison(),
        }
    }

    fn enter(&mut self, pos: usize) -> Result<(), QueryError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(QueryError::new(
                pos,
                format!("filter is nested too deeply (at most {MAX_DEPTH} levels)"),
            ));
        }
        Ok(())
    }

    fn comparison(&mut self) -> Result<Tree<RawCmp>, QueryError> {
        let Some(token) = self.bump() else {
            return Err(self.unexpected_end("a comparison"));
        };
        let field_pos = token.pos;
        let field = match token.tok {
            Tok::Ident(name) => name,
            other => {
                return Err(QueryError::new(
                    field_pos,
                    format!(
                        "expected a field name, found {} (write comparisons as `field op value`)",
                        other.describe()
                    ),
                ));
            }
        };
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(QueryError::new(
                field_pos,
                format!("filter has too many comparisons (at most {MAX_TERMS})"),
            ));
        }
        let (op, op_pos) = match self.bump() {
            Some(Token {
                tok: Tok::Cmp(op),
                pos,
            }) => (op, pos),
            Some(other) => {
                return Err(QueryError::new(
                    other.pos,
                    format!(
                        "expected a comparison operator after field {field:?}, found {}",
                        other.tok.describe()
                    ),
                ));
            }
            None => return Err(self.unexpected_end("a comparison operator")),
        };
        let Some(token) = self.bump() else {
            return Err(self.unexpected_end("a value"));
        };
        let value = match token.tok {
            Tok::Str(s) => Literal::Str(s),
            Tok::Num(n) => Literal::Num(n),
            Tok::True => Literal::Bool(true),
            Tok::False => Literal::Bool(false),
            Tok::Null => Literal::Null,
            Tok::Var(v) => Literal::Var(v),
            Tok::Ident(name) => {
                return Err(QueryError::new(
                    token.pos,
                    format!(
                        "cannot compare field {field:?} with field {name:?}: the right side must be a value"
                    ),
                ));
            }
            other => {
                return Err(QueryError::new(
                    token.pos,
                    format!("expected a value, found {}", other.describe()),
                ));
            }
        };
        Ok(Tree::Cmp(RawCmp {
            field,
            field_pos,
            op,
            op_pos,
            value,
            value_pos: token.pos,
        }))
    }

    fn unexpected_end(&self, expected: &str) -> QueryError {
        QueryError::new(
            self.end,
            format!("unexpected end of filter, expected {expected}"),
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn err(input: &str) -> (usize, String) {
        let e = parse(input).unwrap_err();
        (e.position, e.message)
    }

    fn cmp(field: &str, pos: usize, op: CmpOp, value: Literal) -> Tree<RawCmp> {
        let op_pos = pos + field.len() + 1;
        Tree::Cmp(RawCmp {
            field: field.into(),
            field_pos: pos,
            op,
            op_pos,
            value,
            value_pos: op_pos + op.symbol().len() + 1,
        })
    }

    #[test]
    fn and_binds_tighter_than_or_and_not_tighter_than_and() {
        let tree = parse("a = 1 || b = 2 && !c = 3").unwrap();
        assert_eq!(
            tree,
            Tree::Or(vec![
                cmp("a", 0, CmpOp::Eq, Literal::Num(Number::Int(1))),
                Tree::And(vec![
                    cmp("b", 9, CmpOp::Eq, Literal::Num(Number::Int(2))),
                    Tree::Not(Box::new(cmp(
                        "c",
                        19,
                        CmpOp::Eq,
                        Literal::Num(Number::Int(3))
                    ))),
                ]),
            ])
        );
    }

    #[test]
    fn parentheses_group() {
        let tree = parse("(a = 1 || b = 2) && c = null").unwrap();
        let Tree::And(items) = tree else {
            panic!("expected and")
        };
        assert!(matches!(items[0], Tree::Or(_)));
        assert_eq!(items[1], cmp("c", 20, CmpOp::Eq, Literal::Null));
    }

    #[test]
    fn syntax_errors_point_at_the_offending_token() {
        assert_eq!(err(""), (0, "empty filter".into()));
        assert_eq!(err("   ").0, 0);
        assert_eq!(
            err("a ="),
            (3, "unexpected end of filter, expected a value".into())
        );
        assert_eq!(
            err("(a = 1"),
            (6, "unexpected end of filter, expected ')'".into())
        );
        assert_eq!(err("a = 1)"), (5, "unexpected ')'".into()));
        assert_eq!(err("a = 1 b = 2"), (6, "unexpected field \"b\"".into()));
        assert_eq!(err("a 1").0, 2);
        assert_eq!(err("a = 1 &&").0, 8);
        assert_eq!(err("1 = a").0, 0);
        assert_eq!(err("\"x\" = a").0, 0);
        assert_eq!(err("a = b").0, 4);
        assert!(err("a = b").1.contains("cannot compare field"));
        assert_eq!(err("a = (1)").0, 4);
        assert_eq!(err("()").0, 1);
        assert_eq!(err("a = 1 || || b = 2").0, 9);
        assert_eq!(err("featured").0, 8);
    }

    #[test]
    fn depth_is_limited_to_32() {
        let ok = format!("{}a = 1{}", "(".repeat(32), ")".repeat(32));
        assert!(parse(&ok).is_ok());
        let deep = format!("{}a = 1{}", "(".repeat(33), ")".repeat(33));
        assert_eq!(err(&deep).0, 32);
        let nots = format!("{}a = 1", "!".repeat(33));
        assert_eq!(err(&nots).0, 32);
        // Thousands of parentheses fail fast at the limit instead of overflowing the stack.
        let hostile = "(".repeat(4000);
        assert_eq!(err(&hostile).0, 32);
    }

    #[test]
    fn terms_are_limited_to_64() {
        let ok = vec!["a = 1"; 64].join(" && ");
        assert!(parse(&ok).is_ok());
        let many = vec!["a = 1"; 65].join(" && ");
        assert_eq!(
            err(&many),
            (
                64 * 9,
                "filter has too many comparisons (at most 64)".into()
            )
        );
    }

    #[test]
    fn input_is_limited_to_4096_bytes() {
        let padded = format!("a = \"{}\"", "x".repeat(4096 - 6));
        assert_eq!(padded.len(), 4096);
        assert!(parse(&padded).is_ok());
        let long = format!("a = \"{}\"", "x".repeat(4096 - 5));
        assert_eq!(long.len(), 4097);
        assert_eq!(err(&long).0, 4096);
        // Multi-byte characters: the position is in characters.
        let wide = format!("a = \"{}\"", "é".repeat(3000));
        // 5 ASCII characters, then 2-byte characters starting at bytes 5, 7, …, 4095.
        assert_eq!(err(&wide).0, 5 + 2046);
    }
}
