//! The attribute-flow expression language of Azure AD Connect's declarative provisioning:
//! compiled once from config text ([`Expr::compile`]), then evaluated per object
//! ([`Expr::eval`]) over its attributes and DN. Owns lexing, parsing, the compile-time check,
//! evaluation and the function table; reads only `model` values, never the store or a clock
//! (the caller passes the time that `Now()` returns).
//!
//! # Language
//! - `[attr]` reads an attribute (name case-insensitive, as LDAP); `[dn]` is the object's
//!   DN as a string. A missing attribute is null.
//! - `"text"` is a string; `""` or `\"` inside is a quote; other backslashes stay as written
//!   (`Replace` reads `\n`, `\r`, `\t` itself). Numbers are 64-bit integers, decimal or `&H`
//!   hex. Constants: `True`, `False`, `NULL` (also `Nothing`), `CRLF`, `AuthoritativeNull`,
//!   `IgnoreThisFlow`. Bare words such as `CaseInsensitive`, `vbTextCompare`, `UTF8` are
//!   enum arguments of the functions that take them. `%Parameters%` are not supported.
//! - `$name` is a variable bound by `Select`, `Where` or `With`.
//! - Function names and keywords are case-insensitive (AAD Connect wants exact case; being
//!   lenient loses nothing since names cannot collide).
//!
//! ## Operators and precedence
//! Microsoft documents that operators "are evaluated left to right and have the same
//! evaluation priority" (`2*5+3` is not `2*(5+3)`), and we follow that for the arithmetic and
//! concatenation operators `& + - * /`, which share one level evaluated strictly left to right
//! (`1+2*3` is 9). Comparisons and the logical operators cannot share that level and still
//! read Microsoft's own default rules as intended (`IsPresent([sAMAccountName]) = False ||
//! Left([mailNickname], 14) = "SystemMailbox{"`), so, loosest first:
//! `||` (`Or`) < `&&` (`And`) < `!` (`Not`) < `= <> < <= > >=` < `& + - * /` < unary `-`.
//! `!`/`Not` are an extension (Microsoft lists only `&&` and `||`), as are `And`/`Or`/`Not`.
//!
//! - String comparison is case-sensitive and ordinal (as AAD Connect's `=` and `Contains`);
//!   use `LCase` on both sides, or `Contains(..., CaseInsensitive)`, to ignore case. A number
//!   and a numeric string compare as numbers; DN references compare as normalised DNs.
//! - Arithmetic is on 64-bit integers; `/` truncates toward zero; overflow and division by
//!   zero are run-time errors (the object is quarantined with the message), never a panic.
//! - Null follows VBA: `&` treats null as "" (both null gives null), `&&`/`||` and conditions
//!   treat null as false, other operators and most functions give null for a null input.
//!
//! ## Multi-valued attributes
//! As Microsoft documents, "the function operates over every value": `Trim([proxyAddresses])`
//! trims every value, `Word([proxyAddresses],1,"@") & "@contoso.com"` rewrites every value,
//! and `IIF(InStr([proxyAddresses],"SIP:")=1,NULL,[proxyAddresses])` drops the SIP values —
//! uses of one attribute inside one expression see the same value at a time. Two different
//! multi-valued attributes combine every value with every value (at most 10,000 results).
//! `Count`, `Item`, `ItemOrNull`, `Join`, `Contains`, `RemoveDuplicates`, `IsPresent`,
//! `IsNull`, `IsNullOrEmpty`, `IsEmpty`, `Coalesce`, `Select` and `Where` take the whole list.
//! Values of a multi-valued attribute are in [`ValueSet`] order (sorted), so `Item` indexes
//! that order.
//!
//! ## Results
//! [`Expr::eval`] gives the values (an empty set is null, "no contribution"), or
//! `AuthoritativeNull`, `IgnoreThisFlow`, or an `Error` — from `Error("...")` or a run-time
//! failure such as a type mismatch. These signals win even from inside `IIF`, but only when
//! the branch holding them is taken.
//!
//! The function table with every function's arguments and result is in `functions.rs`.

mod check;
mod datetime;
mod eval;
mod functions;
mod lexer;
mod parser;

#[cfg(test)]
mod tests;

use crate::model::{AttrName, Dn, ValueSet};

use eval::{Env, Stop};
use functions::Ty;
use parser::Node;

/// A compiled expression.
#[derive(Clone, Debug)]
pub struct Expr {
    text: String,
    root: Node,
    attrs: Vec<AttrName>,
    ty: Ty,
    reads_dn: bool,
}

/// What the checker knows about the attributes an expression may read.
#[derive(Clone, Copy, Default)]
pub struct CompileContext<'a> {
    /// Whether an attribute name exists; None accepts any attribute name.
    pub attributes: Option<&'a dyn Fn(&str) -> bool>,
}

impl std::fmt::Debug for CompileContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompileContext")
            .field("attributes", &self.attributes.map(|_| "<fn>"))
            .finish()
    }
}

/// A compile error: byte offset into the expression text, message, optional hint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("column {}: {message}{}", .offset + 1, .hint.as_ref().map(|h| format!(" (hint: {h})")).unwrap_or_default())]
pub struct ExprError {
    /// Byte offset of the offending token in the expression text.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it, when there is a likely fix.
    pub hint: Option<String>,
}

/// Characters quoted on each side of an error's position.
const EXCERPT_CHARS: usize = 30;

/// The text around byte `offset` of `text` (at most [`EXCERPT_CHARS`] characters each
/// side, `…` where cut), for error messages: an expression may be megabytes long, and the
/// reader needs the place, not the whole.
pub fn excerpt(text: &str, offset: usize) -> String {
    let mut at = offset.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let (before, after) = text.split_at(at);
    let start = before
        .char_indices()
        .rev()
        .nth(EXCERPT_CHARS - 1)
        .map_or(0, |(i, _)| i);
    let end = after
        .char_indices()
        .nth(EXCERPT_CHARS)
        .map_or(after.len(), |(i, _)| i);
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    out.push_str(&before[start..]);
    out.push_str(&after[..end]);
    if end < after.len() {
        out.push('…');
    }
    out
}

/// A name from the expression as an error shows it: long ones cut.
pub(crate) fn short_name(name: &str) -> String {
    if name.chars().count() <= 2 * EXCERPT_CHARS {
        return name.to_string();
    }
    let head: String = name.chars().take(2 * EXCERPT_CHARS).collect();
    format!("{head}…")
}

/// The values an expression reads: an object's attributes and its DN.
pub trait AttrSource {
    /// The values of attribute `name` (any case), if present.
    fn get(&self, name: &str) -> Option<&ValueSet>;
    /// The object's DN, if it has one.
    fn dn(&self) -> Option<&Dn>;
}

/// Result of evaluating a flow expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The values to flow; empty means null (no contribution).
    Values(ValueSet),
    /// Remove the target's value even if a lower-precedence rule contributes one.
    AuthoritativeNull,
    /// This flow contributes nothing; other rules decide.
    IgnoreThisFlow,
    /// `Error("...")` was reached or evaluation failed: the object is quarantined.
    Error(String),
}

impl Expr {
    /// Parses and checks `text`.
    pub fn compile(text: &str, ctx: &CompileContext) -> Result<Expr, ExprError> {
        let tokens = lexer::lex(text)?;
        let mut root = parser::parse(&tokens)?;
        let checked = check::check(&mut root, ctx)?;
        Ok(Expr {
            text: text.to_string(),
            root,
            attrs: checked.attrs,
            ty: checked.ty,
            reads_dn: checked.reads_dn,
        })
    }

    /// Evaluates over one object at time `now_unix_secs` (what `Now()` returns). Never panics.
    pub fn eval(&self, src: &dyn AttrSource, now_unix_secs: i64) -> Outcome {
        let mut env = Env::new(src, now_unix_secs, &self.attrs);
        match eval::eval(&self.root, &mut env) {
            Ok(v) => Outcome::Values(v.values().cloned().collect()),
            Err(Stop::AuthoritativeNull) => Outcome::AuthoritativeNull,
            Err(Stop::IgnoreThisFlow) => Outcome::IgnoreThisFlow,
            Err(Stop::Error(m)) => Outcome::Error(m),
        }
    }

    /// Evaluates a scope-filter condition: null (and AuthoritativeNull/IgnoreThisFlow) is
    /// false; several values are true when any is; Err carries an error's message.
    pub fn eval_bool(&self, src: &dyn AttrSource, now_unix_secs: i64) -> Result<bool, String> {
        match self.eval(src, now_unix_secs) {
            Outcome::Values(set) => {
                let mut any = false;
                for v in set.iter() {
                    match eval::truthy(Some(v), "condition") {
                        Ok(b) => any |= b,
                        Err(Stop::Error(m)) => return Err(m),
                        Err(_) => {}
                    }
                }
                Ok(any)
            }
            Outcome::AuthoritativeNull | Outcome::IgnoreThisFlow => Ok(false),
            Outcome::Error(m) => Err(m),
        }
    }

    /// Attributes referenced with `[name]`, in first-use order (`[dn]` is not one; see
    /// [`Expr::reads_dn`]).
    pub fn attributes(&self) -> Vec<AttrName> {
        self.attrs.clone()
    }

    /// Whether the expression reads the object's DN with `[dn]`.
    pub fn reads_dn(&self) -> bool {
        self.reads_dn
    }

    /// The expression as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether the result type is boolean (usable as a scope filter).
    pub fn is_boolean(&self) -> bool {
        self.ty == Ty::Bool
    }
}

/// Two expressions are equal when their text is: compilation is deterministic.
impl PartialEq for Expr {
    fn eq(&self, other: &Self) -> bool {
        self.text() == other.text()
    }
}

#[cfg(test)]
mod excerpt_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_error_quotes_a_window_around_its_position() {
        let long = format!("Left({}, 2) + ", "\"x\" & ".repeat(100_000));
        let err = Expr::compile(&long, &CompileContext::default()).unwrap_err();
        let shown = excerpt(&long, err.offset);
        assert!(shown.chars().count() <= 2 * EXCERPT_CHARS + 2, "{shown}");
        assert!(shown.starts_with('…') && shown.ends_with('…'), "{shown}");
        assert_eq!(excerpt("Trim([cn]", 4), "Trim([cn]");
        assert_eq!(excerpt("ü".repeat(100).as_str(), 101).chars().count(), 62);
        let name = "a".repeat(1000);
        assert_eq!(short_name(&name).chars().count(), 2 * EXCERPT_CHARS + 1);
    }
}
