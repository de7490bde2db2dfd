//! The syntax tree and the recursive-descent parser that builds it from tokens.
//!
//! Precedence, loosest first (see the module docs of `expr` for why):
//! `||`/`Or`, then `&&`/`And`, then `!`/`Not`, then the comparisons, then
//! `& + - * /` all on one level evaluated left to right as Microsoft documents, then unary `-`.
//! Names are not resolved here: the checker turns call names into functions and
//! variables into slots.

use super::ExprError;
use super::lexer::{Tok, Token};
use crate::model::Value;

/// How deeply parentheses, calls and unary operators may nest; deeper input is refused so
/// that parsing, checking and evaluation (all recursive) stay within a thread's stack.
pub(super) const MAX_DEPTH: usize = 64;

/// A unary operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum UnOp {
    /// `-x`
    Neg,
    /// `!x`, `Not x`
    Not,
}

/// A binary operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum BinOp {
    Concat,
    Add,
    Sub,
    Mul,
    Div,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
}

impl BinOp {
    /// The operator as written, for messages.
    pub(super) fn symbol(self) -> &'static str {
        match self {
            BinOp::Concat => "&",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Eq => "=",
            BinOp::Ne => "<>",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::And => "&&",
            BinOp::Or => "||",
        }
    }
}

/// A control signal written as a bare constant or a zero-argument call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum SignalKind {
    AuthoritativeNull,
    IgnoreThisFlow,
}

/// How tall the tree may grow (a long `a & b & c ...` chain is as tall as it is long); the
/// checker and evaluator recurse over the tree, so its height bounds their stack use.
pub(super) const MAX_HEIGHT: usize = 160;

/// One node of the syntax tree with the byte offset of its first token.
#[derive(Clone, Debug)]
pub(super) struct Node {
    pub kind: Kind,
    pub offset: usize,
    /// 1 for a leaf, else 1 + the tallest child.
    pub height: usize,
}

impl Node {
    /// Builds a node, refusing trees taller than [`MAX_HEIGHT`]; `at` is blamed if too tall.
    pub(super) fn new(kind: Kind, offset: usize, at: usize) -> Result<Node, ExprError> {
        let height = 1 + match &kind {
            Kind::Unary(_, a) => a.height,
            Kind::Binary(_, a, b) => a.height.max(b.height),
            Kind::Call { args, .. } => args.iter().map(|a| a.height).max().unwrap_or(0),
            _ => 0,
        };
        if height > MAX_HEIGHT {
            return Err(ExprError {
                offset: at,
                message: format!(
                    "expression is too large (more than {MAX_HEIGHT} nested operations)"
                ),
                hint: Some("split it into simpler flows".to_string()),
            });
        }
        Ok(Node {
            kind,
            offset,
            height,
        })
    }
}

/// What a node is.
#[derive(Clone, Debug)]
pub(super) enum Kind {
    /// A string, number or boolean literal (`CRLF` is a string literal).
    Lit(Value),
    /// `NULL` / `Nothing`.
    Null,
    /// `[name]`; `slot` indexes the expression's attribute list (set by the checker).
    Attr { name: String, slot: usize },
    /// `[dn]`: the object's DN as a string.
    Dn,
    /// `$name`; `slot` is its binding's place on the variable stack (set by the checker).
    Var { name: String, slot: usize },
    /// A bare word in an argument position: an enum constant such as `CaseInsensitive`.
    Enum(String),
    /// `AuthoritativeNull` / `IgnoreThisFlow`.
    Signal(SignalKind),
    /// A unary operation.
    Unary(UnOp, Box<Node>),
    /// A binary operation.
    Binary(BinOp, Box<Node>, Box<Node>),
    /// `Name(args)`; `func` indexes the function table (set by the checker), `close` is the
    /// offset of the closing parenthesis.
    Call {
        name: String,
        func: usize,
        args: Vec<Node>,
        close: usize,
    },
}

/// Parses a token list (ending in [`Tok::End`]) into a tree.
pub(super) fn parse(tokens: &[Token]) -> Result<Node, ExprError> {
    let mut p = Parser {
        tokens,
        pos: 0,
        depth: 0,
    };
    let node = p.or()?;
    let t = p.peek();
    if t.tok != Tok::End {
        return Err(ExprError {
            offset: t.offset,
            message: format!(
                "unexpected {} after a complete expression",
                describe(&t.tok)
            ),
            hint: Some(match t.tok {
                Tok::RParen => "this ')' has no matching '('".to_string(),
                _ => "join parts with an operator such as & or &&".to_string(),
            }),
        });
    }
    Ok(node)
}

/// A token described for error messages.
pub(super) fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Attr(n) => format!("attribute [{}]", super::short_name(n)),
        Tok::Str(_) => "string".to_string(),
        Tok::Num(_) => "number".to_string(),
        Tok::Ident(n) => format!("name {:?}", super::short_name(n)),
        Tok::Var(n) => format!("variable ${}", super::short_name(n)),
        Tok::LParen => "'('".to_string(),
        Tok::RParen => "')'".to_string(),
        Tok::Comma => "','".to_string(),
        Tok::End => "end of expression".to_string(),
        Tok::Amp => "'&'".to_string(),
        Tok::Plus => "'+'".to_string(),
        Tok::Minus => "'-'".to_string(),
        Tok::Star => "'*'".to_string(),
        Tok::Slash => "'/'".to_string(),
        Tok::Eq => "'='".to_string(),
        Tok::Ne => "'<>'".to_string(),
        Tok::Lt => "'<'".to_string(),
        Tok::Le => "'<='".to_string(),
        Tok::Gt => "'>'".to_string(),
        Tok::Ge => "'>='".to_string(),
        Tok::AndAnd => "'&&'".to_string(),
        Tok::OrOr => "'||'".to_string(),
        Tok::Bang => "'!'".to_string(),
    }
}

struct Parser<'t> {
    tokens: &'t [Token],
    pos: usize,
    depth: usize,
}

fn is_word(tok: &Tok, word: &str) -> bool {
    matches!(tok, Tok::Ident(n) if n.eq_ignore_ascii_case(word))
}

impl<'t> Parser<'t> {
    fn peek(&self) -> &'t Token {
        // The list always ends in End and `bump` never moves past it.
        match self.tokens.get(self.pos) {
            Some(t) => t,
            None => &END,
        }
    }

    fn peek2(&self) -> &'t Token {
        match self.tokens.get(self.pos + 1) {
            Some(t) => t,
            None => &END,
        }
    }

    fn bump(&mut self) -> &'t Token {
        let t = self.peek();
        if t.tok != Tok::End {
            self.pos += 1;
        }
        t
    }

    fn enter(&mut self, offset: usize) -> Result<(), ExprError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ExprError {
                offset,
                message: format!("expression nests more than {MAX_DEPTH} levels deep"),
                hint: Some("split it into simpler flows".to_string()),
            });
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Node, ExprError> {
        let mut left = self.and()?;
        loop {
            let t = self.peek();
            if t.tok == Tok::OrOr || is_word(&t.tok, "or") {
                self.bump();
                let right = self.and()?;
                left = binary(BinOp::Or, left, right, t.offset)?;
            } else {
                return Ok(left);
            }
        }
    }

    fn and(&mut self) -> Result<Node, ExprError> {
        let mut left = self.not()?;
        loop {
            let t = self.peek();
            if t.tok == Tok::AndAnd || is_word(&t.tok, "and") {
                self.bump();
                let right = self.not()?;
                left = binary(BinOp::And, left, right, t.offset)?;
            } else {
                return Ok(left);
            }
        }
    }

    fn not(&mut self) -> Result<Node, ExprError> {
        let t = self.peek();
        if t.tok == Tok::Bang || (is_word(&t.tok, "not") && self.peek2().tok != Tok::LParen) {
            self.bump();
            self.enter(t.offset)?;
            let inner = self.not()?;
            self.depth -= 1;
            return Node::new(Kind::Unary(UnOp::Not, Box::new(inner)), t.offset, t.offset);
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Node, ExprError> {
        let mut left = self.arith()?;
        loop {
            let op = match self.peek().tok {
                Tok::Eq => BinOp::Eq,
                Tok::Ne => BinOp::Ne,
                Tok::Lt => BinOp::Lt,
                Tok::Le => BinOp::Le,
                Tok::Gt => BinOp::Gt,
                Tok::Ge => BinOp::Ge,
                _ => return Ok(left),
            };
            let at = self.bump().offset;
            let right = self.arith()?;
            left = binary(op, left, right, at)?;
        }
    }

    fn arith(&mut self) -> Result<Node, ExprError> {
        let mut left = self.unary()?;
        loop {
            let op = match self.peek().tok {
                Tok::Amp => BinOp::Concat,
                Tok::Plus => BinOp::Add,
                Tok::Minus => BinOp::Sub,
                Tok::Star => BinOp::Mul,
                Tok::Slash => BinOp::Div,
                _ => return Ok(left),
            };
            let at = self.bump().offset;
            let right = self.unary()?;
            left = binary(op, left, right, at)?;
        }
    }

    fn unary(&mut self) -> Result<Node, ExprError> {
        let t = self.peek();
        if t.tok == Tok::Minus {
            self.bump();
            // A negative literal is folded, so that -&H8000000000000000 is i64::MIN.
            if let Tok::Num(v) = self.peek().tok {
                self.bump();
                return Node::new(
                    Kind::Lit(Value::Integer(v.wrapping_neg())),
                    t.offset,
                    t.offset,
                );
            }
            self.enter(t.offset)?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Node::new(Kind::Unary(UnOp::Neg, Box::new(inner)), t.offset, t.offset);
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Node, ExprError> {
        let t = self.bump();
        let offset = t.offset;
        let kind = match &t.tok {
            Tok::Num(n) => Kind::Lit(Value::Integer(*n)),
            Tok::Str(s) => Kind::Lit(Value::String(s.clone())),
            Tok::Attr(name) if name.eq_ignore_ascii_case("dn") => Kind::Dn,
            Tok::Attr(name) => Kind::Attr {
                name: name.clone(),
                slot: 0,
            },
            Tok::Var(name) => Kind::Var {
                name: name.clone(),
                slot: 0,
            },
            Tok::LParen => {
                self.enter(offset)?;
                let inner = self.or()?;
                self.depth -= 1;
                self.expect_close(offset)?;
                return Ok(inner);
            }
            Tok::Ident(name) if self.peek().tok == Tok::LParen => {
                let open = self.bump().offset;
                self.enter(offset)?;
                let mut args = Vec::new();
                let close;
                if self.peek().tok == Tok::RParen {
                    close = self.bump().offset;
                } else {
                    loop {
                        args.push(self.or()?);
                        let t = self.bump();
                        match t.tok {
                            Tok::Comma => continue,
                            Tok::RParen => {
                                close = t.offset;
                                break;
                            }
                            Tok::End => {
                                return Err(ExprError {
                                    offset: open,
                                    message: format!("unclosed '(' of {name}"),
                                    hint: Some("add ')'".to_string()),
                                });
                            }
                            _ => {
                                return Err(ExprError {
                                    offset: t.offset,
                                    message: format!(
                                        "expected ',' or ')' in the arguments of {name}, found {}",
                                        describe(&t.tok)
                                    ),
                                    hint: Some("separate arguments with ','".to_string()),
                                });
                            }
                        }
                    }
                }
                self.depth -= 1;
                Kind::Call {
                    name: name.clone(),
                    func: usize::MAX,
                    args,
                    close,
                }
            }
            Tok::Ident(name) => constant(name),
            other => {
                return Err(ExprError {
                    offset,
                    message: format!("expected a value, found {}", describe(other)),
                    hint: Some(
                        match other {
                            Tok::End => "the expression ends too early",
                            Tok::RParen => "an argument or operand is missing",
                            Tok::Comma => "an argument is missing",
                            _ => "write an attribute [name], a \"string\", a number or a function call",
                        }
                        .to_string(),
                    ),
                });
            }
        };
        Node::new(kind, offset, offset)
    }

    fn expect_close(&mut self, open: usize) -> Result<(), ExprError> {
        let t = self.bump();
        if t.tok == Tok::RParen {
            return Ok(());
        }
        Err(ExprError {
            offset: if t.tok == Tok::End { open } else { t.offset },
            message: if t.tok == Tok::End {
                "unclosed '('".to_string()
            } else {
                format!("expected ')', found {}", describe(&t.tok))
            },
            hint: Some("add ')'".to_string()),
        })
    }
}

static END: Token = Token {
    tok: Tok::End,
    offset: 0,
};

fn binary(op: BinOp, left: Node, right: Node, at: usize) -> Result<Node, ExprError> {
    let offset = left.offset;
    Node::new(
        Kind::Binary(op, Box::new(left), Box::new(right)),
        offset,
        at,
    )
}

/// A bare word: a built-in constant, or an enum constant for the checker to place.
fn constant(name: &str) -> Kind {
    match name.to_ascii_lowercase().as_str() {
        "true" => Kind::Lit(Value::Boolean(true)),
        "false" => Kind::Lit(Value::Boolean(false)),
        "null" | "nothing" => Kind::Null,
        "crlf" => Kind::Lit(Value::String("\r\n".to_string())),
        "authoritativenull" => Kind::Signal(SignalKind::AuthoritativeNull),
        "ignorethisflow" => Kind::Signal(SignalKind::IgnoreThisFlow),
        _ => Kind::Enum(name.to_string()),
    }
}
