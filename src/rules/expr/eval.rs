//! Evaluation of a checked tree over one object's attributes.
//!
//! Every intermediate result is a [`Vals`]: null, one value, or a list of values that came
//! from one multi-valued source. Single-valued functions and operators apply to each value
//! of a list ("the function operates over every value", Microsoft's multi-valued rule);
//! two lists from the same source are walked together (so `IIF(InStr([p],"SIP:")=1, NULL,
//! [p])` decides per value), lists from different sources are combined pairwise (every
//! value with every value), bounded by [`MAX_VALUES`]. Control signals (`AuthoritativeNull`,
//! `IgnoreThisFlow`, `Error`) and run-time type errors travel as [`Stop`] in `Err`.
//!
//! Nothing here panics: indexes are checked, arithmetic is checked, and every string or list
//! a function builds is bounded ([`MAX_TEXT`], [`MAX_VALUES`]).

use std::borrow::Cow;

use super::AttrSource;
use super::datetime;
use super::functions::{FUNCS, Imp, Special};
use super::parser::{BinOp, Kind, Node, SignalKind, UnOp};
use crate::model::{AttrName, RefTarget, Value};

/// The longest string (in bytes) any operation may produce.
pub(super) const MAX_TEXT: usize = 1 << 20;
/// The most values any intermediate list may hold.
pub(super) const MAX_VALUES: usize = 10_000;

/// Why evaluation stopped early.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Stop {
    /// `AuthoritativeNull` was reached.
    AuthoritativeNull,
    /// `IgnoreThisFlow` was reached.
    IgnoreThisFlow,
    /// `Error("...")` was reached, or a run-time error (type mismatch, overflow, bounds).
    Error(String),
}

/// Shorthand for a run-time error.
pub(super) fn fail<T>(message: impl Into<String>) -> Result<T, Stop> {
    Err(Stop::Error(message.into()))
}

/// An intermediate result.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Vals {
    /// No value (a missing attribute, `NULL`).
    Null,
    /// One value.
    One(Value),
    /// Values from one multi-valued source; `origin` identifies the source so that lists
    /// derived from the same source line up. `None` items keep positions aligned.
    Many {
        origin: u32,
        items: Vec<Option<Value>>,
    },
}

impl Vals {
    /// The non-null values, in order.
    pub(super) fn values(&self) -> Box<dyn Iterator<Item = &Value> + '_> {
        match self {
            Vals::Null => Box::new(std::iter::empty()),
            Vals::One(v) => Box::new(std::iter::once(v)),
            Vals::Many { items, .. } => Box::new(items.iter().flatten()),
        }
    }

    /// Whether there is no value at all.
    pub(super) fn is_null(&self) -> bool {
        self.values().next().is_none()
    }

    /// The value when there is exactly one item (null or not); None for a list.
    pub(super) fn scalar(&self) -> Option<Option<&Value>> {
        match self {
            Vals::Null => Some(None),
            Vals::One(v) => Some(Some(v)),
            Vals::Many { .. } => None,
        }
    }

    /// Null or one value from an optional value.
    pub(super) fn from_opt(v: Option<Value>) -> Vals {
        match v {
            Some(v) => Vals::One(v),
            None => Vals::Null,
        }
    }
}

/// Evaluation state for one run of one expression.
pub(super) struct Env<'s> {
    pub src: &'s dyn AttrSource,
    pub now: i64,
    pub attrs: &'s [AttrName],
    /// Values bound by `Select`, `Where` and `With`, innermost last.
    pub vars: Vec<Vals>,
    next_origin: u32,
}

/// Origins below this are attribute slots + 1; fresh lists count up from here.
const FRESH_ORIGIN: u32 = 1 << 20;

impl<'s> Env<'s> {
    /// A fresh environment.
    pub(super) fn new(src: &'s dyn AttrSource, now: i64, attrs: &'s [AttrName]) -> Self {
        Env {
            src,
            now,
            attrs,
            vars: Vec::new(),
            next_origin: FRESH_ORIGIN,
        }
    }

    /// A new list origin, unrelated to every other list.
    pub(super) fn fresh(&mut self) -> u32 {
        self.next_origin = self.next_origin.wrapping_add(1).max(FRESH_ORIGIN);
        self.next_origin
    }

    /// A list of new values with a fresh origin (null when empty, one value when one).
    pub(super) fn list(&mut self, values: Vec<Value>) -> Result<Vals, Stop> {
        if values.len() > MAX_VALUES {
            return fail(format!("more than {MAX_VALUES} values"));
        }
        Ok(match values.len() {
            0 => Vals::Null,
            1 => Vals::from_opt(values.into_iter().next()),
            _ => Vals::Many {
                origin: self.fresh(),
                items: values.into_iter().map(Some).collect(),
            },
        })
    }
}

/// Checks that a produced value stays within the size bounds.
fn bounded(v: Option<Value>) -> Result<Option<Value>, Stop> {
    match &v {
        Some(Value::String(s)) if s.len() > MAX_TEXT => {
            fail(format!("result longer than {MAX_TEXT} bytes"))
        }
        Some(Value::Binary(b)) if b.len() > MAX_TEXT => {
            fail(format!("result longer than {MAX_TEXT} bytes"))
        }
        _ => Ok(v),
    }
}

/// One step of [`map_n`]: single argument values in, one value (or null) out.
pub(super) type Step<'a> = dyn FnMut(&[Option<&Value>]) -> Result<Option<Value>, Stop> + 'a;

/// Applies `f` to each combination of argument values (see the module docs).
pub(super) fn map_n(env: &mut Env<'_>, args: &[Vals], f: &mut Step<'_>) -> Result<Vals, Stop> {
    // Distinct list origins with their lengths, in order of first appearance.
    let mut dims: Vec<(u32, usize)> = Vec::new();
    for a in args {
        if let Vals::Many { origin, items } = a {
            if !dims.iter().any(|(o, _)| o == origin) {
                dims.push((*origin, items.len()));
            }
        }
    }
    let mut scratch: Vec<Option<&Value>> = Vec::with_capacity(args.len());
    if dims.is_empty() {
        for a in args {
            scratch.push(a.scalar().flatten());
        }
        return Ok(Vals::from_opt(bounded(f(&scratch)?)?));
    }
    let mut total: usize = 1;
    for (_, len) in &dims {
        total = match total.checked_mul(*len) {
            Some(t) if t <= MAX_VALUES => t,
            _ => {
                return fail(format!(
                    "combining multi-valued inputs gives more than {MAX_VALUES} values"
                ));
            }
        };
    }
    let mut items = Vec::with_capacity(total);
    let mut index = vec![0usize; dims.len()];
    for _ in 0..total {
        scratch.clear();
        for a in args {
            scratch.push(match a {
                Vals::Null => None,
                Vals::One(v) => Some(v),
                Vals::Many { origin, items } => {
                    let d = dims.iter().position(|(o, _)| o == origin).unwrap_or(0);
                    let i = index.get(d).copied().unwrap_or(0);
                    items.get(i).and_then(Option::as_ref)
                }
            });
        }
        items.push(bounded(f(&scratch)?)?);
        // Advance the mixed-radix counter, last dimension fastest.
        for d in (0..dims.len()).rev() {
            if let (Some(i), Some((_, len))) = (index.get_mut(d), dims.get(d)) {
                *i += 1;
                if *i < *len {
                    break;
                }
                *i = 0;
            }
        }
    }
    let origin = match dims.as_slice() {
        [(o, _)] => *o,
        _ => env.fresh(),
    };
    Ok(Vals::Many { origin, items })
}

// ---- coercions -------------------------------------------------------------------------

/// A short name of a value's type, for messages.
pub(super) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Binary(_) => "binary",
        Value::Integer(_) => "a number",
        Value::Boolean(_) => "a boolean",
        Value::DateTime(_) => "a date",
        Value::Reference(_) => "a reference",
    }
}

fn mismatch<T>(func: &str, arg: usize, v: &Value, want: &str) -> Result<T, Stop> {
    fail(format!(
        "{func}: argument {arg} is {}, expected {want}",
        type_name(v)
    ))
}

/// The value as text: strings as is, numbers in decimal, booleans `True`/`False`, DN
/// references as the DN, dates in ISO 8601. Binary is a type error.
pub(super) fn text<'v>(v: &'v Value, func: &str, arg: usize) -> Result<Cow<'v, str>, Stop> {
    Ok(match v {
        Value::String(s) => Cow::Borrowed(s.as_str()),
        Value::Integer(i) => Cow::Owned(i.to_string()),
        Value::Boolean(b) => Cow::Borrowed(if *b { "True" } else { "False" }),
        Value::DateTime(t) => Cow::Owned(datetime::iso(*t)),
        Value::Reference(RefTarget::Dn(dn)) => Cow::Borrowed(dn.as_str()),
        Value::Reference(RefTarget::Mv(id)) => Cow::Owned(id.to_string()),
        Value::Reference(RefTarget::Anchored { dn, .. }) => Cow::Borrowed(dn.as_str()),
        Value::Binary(_) => return mismatch(func, arg, v, "a string"),
    })
}

/// Parses an integer as `CNum` does: optional sign, decimal digits or `&H` hex, spaces around.
pub(super) fn parse_num(s: &str) -> Option<i64> {
    let t = s.trim();
    if let Some(h) = t.strip_prefix("&H").or_else(|| t.strip_prefix("&h")) {
        if h.is_empty() || h.len() > 16 {
            return None;
        }
        return u64::from_str_radix(h, 16).ok().map(|v| v as i64);
    }
    let digits = t.strip_prefix('+').unwrap_or(t);
    if digits.is_empty() || digits.starts_with(['+', '-']) && digits.len() == 1 {
        return None;
    }
    digits.parse::<i64>().ok()
}

/// The value as a number: integers, and strings that read as integers.
pub(super) fn num(v: &Value, func: &str, arg: usize) -> Result<i64, Stop> {
    match v {
        Value::Integer(i) => Ok(*i),
        Value::String(s) => match parse_num(s) {
            Some(n) => Ok(n),
            None => fail(format!("{func}: argument {arg} ({s:?}) is not a number")),
        },
        _ => mismatch(func, arg, v, "a number"),
    }
}

/// The value as a boolean: booleans; numbers are true when non-zero; strings `True`/`False`
/// (any case) or numeric strings.
pub(super) fn boolean(v: &Value, func: &str, arg: usize) -> Result<bool, Stop> {
    match v {
        Value::Boolean(b) => Ok(*b),
        Value::Integer(i) => Ok(*i != 0),
        Value::String(s) => {
            let t = s.trim();
            if t.eq_ignore_ascii_case("true") {
                Ok(true)
            } else if t.eq_ignore_ascii_case("false") {
                Ok(false)
            } else if let Some(n) = parse_num(t) {
                Ok(n != 0)
            } else {
                fail(format!("{func}: argument {arg} ({s:?}) is not a boolean"))
            }
        }
        _ => mismatch(func, arg, v, "a boolean"),
    }
}

/// The value as bytes: binary values only.
pub(super) fn bytes<'v>(v: &'v Value, func: &str, arg: usize) -> Result<&'v [u8], Stop> {
    match v {
        Value::Binary(b) => Ok(b),
        _ => mismatch(func, arg, v, "binary"),
    }
}

/// The value as a date: dates, and strings `CDate` accepts.
pub(super) fn date(v: &Value, func: &str, arg: usize) -> Result<i64, Stop> {
    match v {
        Value::DateTime(t) => Ok(*t),
        Value::String(s) => match datetime::parse_date(s) {
            Some(t) => Ok(t),
            None => fail(format!("{func}: argument {arg} ({s:?}) is not a date")),
        },
        _ => mismatch(func, arg, v, "a date"),
    }
}

/// Truth of a condition: null is false.
pub(super) fn truthy(v: Option<&Value>, func: &str) -> Result<bool, Stop> {
    match v {
        None => Ok(false),
        Some(v) => boolean(v, func, 1),
    }
}

// ---- evaluation ------------------------------------------------------------------------

/// Evaluates a node.
pub(super) fn eval(node: &Node, env: &mut Env<'_>) -> Result<Vals, Stop> {
    match &node.kind {
        Kind::Lit(v) => Ok(Vals::One(v.clone())),
        Kind::Null => Ok(Vals::Null),
        Kind::Enum(name) => Ok(Vals::One(Value::String(name.clone()))),
        Kind::Signal(SignalKind::AuthoritativeNull) => Err(Stop::AuthoritativeNull),
        Kind::Signal(SignalKind::IgnoreThisFlow) => Err(Stop::IgnoreThisFlow),
        Kind::Dn => Ok(match env.src.dn() {
            Some(dn) => Vals::One(Value::String(dn.as_str().to_string())),
            None => Vals::Null,
        }),
        Kind::Attr { slot, .. } => {
            let Some(name) = env.attrs.get(*slot) else {
                return Ok(Vals::Null);
            };
            Ok(match env.src.get(name.as_str()) {
                None => Vals::Null,
                Some(set) if set.is_empty() => Vals::Null,
                Some(set) if set.len() == 1 => Vals::from_opt(set.first().cloned()),
                Some(set) => {
                    if set.len() > MAX_VALUES {
                        return fail(format!("[{name}] has more than {MAX_VALUES} values"));
                    }
                    Vals::Many {
                        origin: u32::try_from(*slot).unwrap_or(0).saturating_add(1),
                        items: set.iter().cloned().map(Some).collect(),
                    }
                }
            })
        }
        Kind::Var { slot, .. } => Ok(env.vars.get(*slot).cloned().unwrap_or(Vals::Null)),
        Kind::Unary(op, inner) => {
            let v = eval(inner, env)?;
            let op = *op;
            map_n(env, &[v], &mut |a| unary(op, a.first().copied().flatten()))
        }
        Kind::Binary(op, l, r) => binary(*op, l, r, env),
        Kind::Call { func, args, .. } => call(*func, args, env),
    }
}

fn unary(op: UnOp, v: Option<&Value>) -> Result<Option<Value>, Stop> {
    let Some(v) = v else { return Ok(None) };
    match op {
        UnOp::Neg => match num(v, "-", 1)?.checked_neg() {
            Some(n) => Ok(Some(Value::Integer(n))),
            None => fail("numeric overflow in -"),
        },
        UnOp::Not => Ok(Some(Value::Boolean(!boolean(v, "!", 1)?))),
    }
}

fn binary(op: BinOp, l: &Node, r: &Node, env: &mut Env<'_>) -> Result<Vals, Stop> {
    let left = eval(l, env)?;
    // && and || look at the right side only when the (single) left value does not decide.
    if let (BinOp::And | BinOp::Or, Some(v)) = (op, left.scalar()) {
        let b = truthy(v, op.symbol())?;
        if v.is_some() && (op == BinOp::And) != b {
            return Ok(Vals::One(Value::Boolean(b)));
        }
    }
    let right = eval(r, env)?;
    map_n(env, &[left, right], &mut |a| {
        let x = a.first().copied().flatten();
        let y = a.get(1).copied().flatten();
        apply_binary(op, x, y)
    })
}

/// One binary operation on single values. Null handling follows VBA: `&` treats null as an
/// empty string (null only when both are), `&&`/`||` treat null as false, every other
/// operator gives null when either side is null.
fn apply_binary(op: BinOp, x: Option<&Value>, y: Option<&Value>) -> Result<Option<Value>, Stop> {
    let sym = op.symbol();
    match op {
        BinOp::Concat => {
            if x.is_none() && y.is_none() {
                return Ok(None);
            }
            let a = match x {
                Some(v) => text(v, sym, 1)?,
                None => Cow::Borrowed(""),
            };
            let b = match y {
                Some(v) => text(v, sym, 2)?,
                None => Cow::Borrowed(""),
            };
            if a.len() + b.len() > MAX_TEXT {
                return fail(format!("result longer than {MAX_TEXT} bytes"));
            }
            let mut s = String::with_capacity(a.len() + b.len());
            s.push_str(&a);
            s.push_str(&b);
            Ok(Some(Value::String(s)))
        }
        BinOp::And => Ok(Some(Value::Boolean(truthy(x, sym)? && truthy(y, sym)?))),
        BinOp::Or => Ok(Some(Value::Boolean(truthy(x, sym)? || truthy(y, sym)?))),
        _ => {
            let (Some(x), Some(y)) = (x, y) else {
                return Ok(None);
            };
            match op {
                BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div => {
                    let a = num(x, sym, 1)?;
                    let b = num(y, sym, 2)?;
                    let r = match op {
                        BinOp::Add => a.checked_add(b),
                        BinOp::Sub => a.checked_sub(b),
                        BinOp::Mul => a.checked_mul(b),
                        _ => {
                            if b == 0 {
                                return fail("division by zero");
                            }
                            a.checked_div(b)
                        }
                    };
                    match r {
                        Some(r) => Ok(Some(Value::Integer(r))),
                        None => fail(format!("numeric overflow in {sym}")),
                    }
                }
                _ => {
                    let ord = compare(x, y)?;
                    use std::cmp::Ordering::*;
                    let b = match op {
                        BinOp::Eq => ord == Equal,
                        BinOp::Ne => ord != Equal,
                        BinOp::Lt => ord == Less,
                        BinOp::Le => ord != Greater,
                        BinOp::Gt => ord == Greater,
                        _ => ord != Less,
                    };
                    Ok(Some(Value::Boolean(b)))
                }
            }
        }
    }
}

/// Orders two values for the comparison operators. Strings compare case-sensitively by
/// code point (as .NET's ordinal comparison); a number and a numeric string compare as
/// numbers; a boolean and `"True"`/`"False"` as booleans; DN references (and a reference
/// with a DN string) by normalised DN, so case and escaping do not matter; dates with dates
/// or date strings; otherwise both sides as text.
pub(super) fn compare(x: &Value, y: &Value) -> Result<std::cmp::Ordering, Stop> {
    use Value::*;
    // Two links are the same object when their anchors are; a link against anything else
    // compares as the DN it was last seen at.
    match (x, y) {
        (
            Reference(RefTarget::Anchored { anchor: a, .. }),
            Reference(RefTarget::Anchored { anchor: b, .. }),
        ) => return Ok(a.cmp(b)),
        (Reference(RefTarget::Anchored { dn, .. }), _) => {
            return compare(&Reference(RefTarget::Dn(dn.clone())), y);
        }
        (_, Reference(RefTarget::Anchored { dn, .. })) => {
            return compare(x, &Reference(RefTarget::Dn(dn.clone())));
        }
        _ => {}
    }
    Ok(match (x, y) {
        (String(a), String(b)) => a.cmp(b),
        (Integer(a), Integer(b)) => a.cmp(b),
        (Boolean(a), Boolean(b)) => a.cmp(b),
        (DateTime(a), DateTime(b)) => a.cmp(b),
        (Binary(a), Binary(b)) => a.cmp(b),
        (Integer(a), String(s)) => match parse_num(s) {
            Some(b) => a.cmp(&b),
            None => a.to_string().as_str().cmp(s.as_str()),
        },
        (String(s), Integer(b)) => match parse_num(s) {
            Some(a) => a.cmp(b),
            None => s.as_str().cmp(b.to_string().as_str()),
        },
        (Boolean(a), String(_)) => a.cmp(&boolean(y, "=", 2)?),
        (String(_), Boolean(b)) => boolean(x, "=", 1)?.cmp(b),
        (DateTime(a), String(_)) => a.cmp(&date(y, "=", 2)?),
        (String(_), DateTime(b)) => date(x, "=", 1)?.cmp(b),
        (Reference(RefTarget::Dn(a)), Reference(RefTarget::Dn(b))) => a.norm().cmp(b.norm()),
        (Reference(RefTarget::Dn(a)), String(s)) => match crate::model::Dn::parse(s) {
            Ok(b) => a.norm().cmp(b.norm()),
            Err(_) => a.as_str().cmp(s.as_str()),
        },
        (String(s), Reference(RefTarget::Dn(b))) => match crate::model::Dn::parse(s) {
            Ok(a) => a.norm().cmp(b.norm()),
            Err(_) => s.as_str().cmp(b.as_str()),
        },
        (Reference(a), Reference(b)) => a.cmp(b),
        _ => {
            let a = text(x, "=", 1)?;
            let b = text(y, "=", 2)?;
            a.cmp(&b)
        }
    })
}

fn call(func: usize, args: &[Node], env: &mut Env<'_>) -> Result<Vals, Stop> {
    let Some(f) = FUNCS.get(func) else {
        return fail("internal: unresolved function");
    };
    match f.imp {
        Imp::Each(imp) => {
            let mut vals = Vec::with_capacity(args.len());
            for a in args {
                vals.push(eval(a, env)?);
            }
            let now = env.now;
            map_n(env, &vals, &mut |a| imp(a, now))
        }
        Imp::Whole(imp) => {
            let mut vals = Vec::with_capacity(args.len());
            for a in args {
                vals.push(eval(a, env)?);
            }
            imp(env, &vals)
        }
        Imp::Special(s) => special(s, args, env),
    }
}

fn arg(args: &[Node], i: usize) -> Result<&Node, Stop> {
    match args.get(i) {
        Some(n) => Ok(n),
        None => fail("internal: missing argument"),
    }
}

fn special(s: Special, args: &[Node], env: &mut Env<'_>) -> Result<Vals, Stop> {
    match s {
        Special::Iif => iif(arg(args, 0)?, Some(arg(args, 1)?), Some(arg(args, 2)?), env),
        Special::Switch => switch(args, env),
        Special::Select | Special::Where => {
            let source = eval(arg(args, 1)?, env)?;
            let body = arg(args, 2)?;
            let items: Vec<Value> = source.values().cloned().collect();
            let mut out = Vec::new();
            for item in items {
                env.vars.push(Vals::One(item.clone()));
                let r = eval(body, env);
                env.vars.pop();
                let r = r?;
                if s == Special::Select {
                    out.extend(r.values().cloned());
                } else {
                    let keep = match r.scalar() {
                        Some(v) => truthy(v, "Where")?,
                        None => {
                            let mut any = false;
                            for v in r.values() {
                                any |= truthy(Some(v), "Where")?;
                            }
                            any
                        }
                    };
                    if keep {
                        out.push(item);
                    }
                }
                if out.len() > MAX_VALUES {
                    return fail(format!("more than {MAX_VALUES} values"));
                }
            }
            env.list(out)
        }
        Special::With => {
            let bound = eval(arg(args, 1)?, env)?;
            env.vars.push(bound);
            let r = eval(arg(args, 2)?, env);
            env.vars.pop();
            r
        }
    }
}

/// `IIF(cond, a, b)`: only the branches some value of the condition selects are evaluated,
/// so `Error(...)` in an unselected branch does not fire.
fn iif(
    cond: &Node,
    then: Option<&Node>,
    other: Option<&Node>,
    env: &mut Env<'_>,
) -> Result<Vals, Stop> {
    let c = eval(cond, env)?;
    let branch = |n: Option<&Node>, env: &mut Env<'_>| match n {
        Some(n) => eval(n, env),
        None => Ok(Vals::Null),
    };
    if let Some(v) = c.scalar() {
        return if truthy(v, "IIF")? {
            branch(then, env)
        } else {
            branch(other, env)
        };
    }
    let (mut need_t, mut need_f) = (false, false);
    if let Vals::Many { items, .. } = &c {
        for v in items {
            if truthy(v.as_ref(), "IIF")? {
                need_t = true;
            } else {
                need_f = true;
            }
        }
    }
    let t = if need_t {
        branch(then, env)?
    } else {
        Vals::Null
    };
    let f = if need_f {
        branch(other, env)?
    } else {
        Vals::Null
    };
    map_n(env, &[c, t, f], &mut |a| {
        let pick = if truthy(a.first().copied().flatten(), "IIF")? {
            1
        } else {
            2
        };
        Ok(a.get(pick).copied().flatten().cloned())
    })
}

/// `Switch(c1, v1, c2, v2, ...)` as nested IIFs; null when no condition holds.
fn switch(args: &[Node], env: &mut Env<'_>) -> Result<Vals, Stop> {
    match args {
        [] => Ok(Vals::Null),
        [c, v, rest @ ..] => {
            let c = eval(c, env)?;
            if let Some(x) = c.scalar() {
                return if truthy(x, "Switch")? {
                    eval(v, env)
                } else {
                    switch(rest, env)
                };
            }
            let t = eval(v, env)?;
            let f = switch(rest, env)?;
            map_n(env, &[c, t, f], &mut |a| {
                let pick = if truthy(a.first().copied().flatten(), "Switch")? {
                    1
                } else {
                    2
                };
                Ok(a.get(pick).copied().flatten().cloned())
            })
        }
        [_] => fail("Switch: arguments must come in condition, value pairs"),
    }
}
