//! The compile-time check: resolves function names against the table in `functions`,
//! checks argument counts, literal and statically known argument types, binds `$variables`
//! and attribute slots, and works out the expression's result type. Attributes are untyped
//! here (their values are checked at run time); everything else is known.

use super::functions::{FUNCS, Func, P, Ty, literal_rule, lookup};
use super::parser::{BinOp, Kind, Node, UnOp};
use super::{CompileContext, ExprError};
use crate::model::{AttrName, Value};

/// What the check learned about an expression.
pub(super) struct Checked {
    /// Attributes read with `[name]`, in first-use order; `Kind::Attr::slot` indexes this.
    pub attrs: Vec<AttrName>,
    /// The result type.
    pub ty: Ty,
    /// Whether `[dn]` is read.
    pub reads_dn: bool,
}

/// Checks `root`, filling in function indexes, attribute slots and variable slots.
pub(super) fn check(root: &mut Node, ctx: &CompileContext<'_>) -> Result<Checked, ExprError> {
    let mut c = Checker {
        ctx,
        attrs: Vec::new(),
        scopes: Vec::new(),
        reads_dn: false,
    };
    let ty = c.node(root)?;
    Ok(Checked {
        attrs: c.attrs,
        ty,
        reads_dn: c.reads_dn,
    })
}

struct Checker<'c, 'a> {
    ctx: &'c CompileContext<'a>,
    attrs: Vec<AttrName>,
    /// Bound variables, innermost last: (name, type).
    scopes: Vec<(String, Ty)>,
    reads_dn: bool,
}

fn err(offset: usize, message: impl Into<String>, hint: Option<String>) -> ExprError {
    ExprError {
        offset,
        message: message.into(),
        hint,
    }
}

fn lit_ty(v: &Value) -> Ty {
    match v {
        Value::String(_) => Ty::Str,
        Value::Binary(_) => Ty::Bin,
        Value::Integer(_) => Ty::Num,
        Value::Boolean(_) => Ty::Bool,
        Value::DateTime(_) => Ty::Date,
        Value::Reference(_) => Ty::Ref,
    }
}

/// The type of "either of two results".
fn join(a: Ty, b: Ty) -> Ty {
    match (a, b) {
        _ if a == b => a,
        (Ty::Null | Ty::Void, _) => b,
        (_, Ty::Null | Ty::Void) => a,
        _ => Ty::Any,
    }
}

fn unknown(t: Ty) -> bool {
    matches!(t, Ty::Any | Ty::Null | Ty::Void)
}

fn numeric(t: Ty) -> bool {
    unknown(t) || t == Ty::Num
}

fn conditional(t: Ty) -> bool {
    unknown(t) || matches!(t, Ty::Bool | Ty::Num)
}

/// Whether a value of static type `t` may be passed where `p` is expected.
fn accepts(p: P, t: Ty) -> bool {
    if unknown(t) {
        return true;
    }
    match p {
        P::Any => true,
        P::Str | P::Choice(_) => matches!(t, Ty::Str | Ty::Ref),
        P::Num => t == Ty::Num,
        P::Bool => matches!(t, Ty::Bool | Ty::Num),
        P::Bin => t == Ty::Bin,
        P::Date => matches!(t, Ty::Date | Ty::Str),
        P::Ref => matches!(t, Ty::Ref | Ty::Str),
        P::StrOrBin => matches!(t, Ty::Str | Ty::Bin | Ty::Ref),
        P::Bind => false,
    }
}

fn want(p: P) -> &'static str {
    match p {
        P::Str => "a string",
        P::Num => "a number",
        P::Bool => "a condition",
        P::Bin => "binary",
        P::Date => "a date",
        P::Ref => "a DN reference",
        P::StrOrBin => "a string or binary",
        P::Any => "a value",
        P::Choice(_) => "one of the listed words",
        P::Bind => "a variable such as $item",
    }
}

fn convert_hint(p: P, t: Ty) -> Option<String> {
    let h = match (p, t) {
        (P::Str | P::StrOrBin, Ty::Num | Ty::Bool | Ty::Date) => "convert it with CStr(...)",
        (P::Str, Ty::Bin) => "use StringFromGuid, StringFromSid or ConvertToBase64",
        (P::Num, Ty::Str) => "convert it with CNum(...)",
        (P::Num, Ty::Bool) => "use IIF(condition, 1, 0)",
        (P::Num, Ty::Date) => "use NumFromDate(...)",
        (P::Date, Ty::Num) => "use DateFromNum(...)",
        (P::Bool, Ty::Str) => "compare it, e.g. [attr] = \"value\", or use CBool(...)",
        (P::Bin, Ty::Str) => "use CGuid(...) or ConvertFromBase64(...)",
        _ => return None,
    };
    Some(h.to_string())
}

/// Levenshtein distance on lower-cased characters.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().map(|c| c.to_ascii_lowercase()).collect();
    let b: Vec<char> = b.chars().map(|c| c.to_ascii_lowercase()).collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

const CONSTANTS: &[&str] = &[
    "True",
    "False",
    "NULL",
    "CRLF",
    "AuthoritativeNull",
    "IgnoreThisFlow",
];

/// The known name closest to `name`, if it is close enough to be a likely typo.
pub(super) fn closest(name: &str, with_constants: bool) -> Option<&'static str> {
    let names = FUNCS
        .iter()
        .flat_map(|f| std::iter::once(f.name).chain(f.aliases.iter().copied()))
        .chain(CONSTANTS.iter().copied().filter(|_| with_constants));
    let (best, d) = names
        .map(|n| (n, distance(name, n)))
        .min_by_key(|(_, d)| *d)?;
    let limit = (name.chars().count() / 3).max(1) + 1;
    (d <= limit).then_some(best)
}

fn signature(f: &Func) -> String {
    let mut parts: Vec<String> = f
        .params
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let w = match p {
                P::Choice(opts) => opts.join("|"),
                P::Bind => "$item".to_string(),
                other => want(*other).trim_start_matches("a ").to_string(),
            };
            if i >= f.min { format!("[{w}]") } else { w }
        })
        .collect();
    if f.variadic {
        parts.push("...".to_string());
    }
    format!("{}({})", f.name, parts.join(", "))
}

impl Checker<'_, '_> {
    fn node(&mut self, n: &mut Node) -> Result<Ty, ExprError> {
        let offset = n.offset;
        match &mut n.kind {
            Kind::Lit(v) => Ok(lit_ty(v)),
            Kind::Null => Ok(Ty::Null),
            Kind::Signal(_) => Ok(Ty::Void),
            Kind::Dn => {
                self.reads_dn = true;
                Ok(Ty::Str)
            }
            Kind::Attr { name, slot } => {
                if self.ctx.attributes.is_some_and(|known| !known(name)) {
                    return Err(err(
                        offset,
                        format!("unknown attribute [{name}]"),
                        Some("check the spelling against the object type's attributes".to_string()),
                    ));
                }
                let an = AttrName::new(name);
                *slot = match self.attrs.iter().position(|a| *a == an) {
                    Some(i) => i,
                    None => {
                        self.attrs.push(an);
                        self.attrs.len() - 1
                    }
                };
                Ok(Ty::Any)
            }
            Kind::Var { name, slot } => {
                match self
                    .scopes
                    .iter()
                    .rposition(|(v, _)| v.eq_ignore_ascii_case(name))
                {
                    Some(i) => {
                        *slot = i;
                        Ok(self.scopes.get(i).map_or(Ty::Any, |(_, t)| *t))
                    }
                    None => Err(err(
                        offset,
                        format!("unknown variable ${name}"),
                        Some("variables are bound by Select($item, ...), Where($item, ...) or With($v, ...)".to_string()),
                    )),
                }
            }
            Kind::Enum(name) => Err(self.unknown_name(name, offset)),
            Kind::Unary(op, inner) => {
                let t = self.node(inner)?;
                match op {
                    UnOp::Neg if !numeric(t) => Err(err(
                        inner.offset,
                        format!("'-' needs a number, found {}", t.name()),
                        convert_hint(P::Num, t),
                    )),
                    UnOp::Neg => Ok(Ty::Num),
                    UnOp::Not if !conditional(t) => Err(err(
                        inner.offset,
                        format!("'!' needs a condition, found {}", t.name()),
                        convert_hint(P::Bool, t),
                    )),
                    UnOp::Not => Ok(Ty::Bool),
                }
            }
            Kind::Binary(op, l, r) => {
                let op = *op;
                let tl = self.node(l)?;
                let tr = self.node(r)?;
                self.binary(op, (tl, l.offset), (tr, r.offset))
            }
            Kind::Call {
                name,
                func,
                args,
                close,
            } => {
                let Some((index, f)) = lookup(name) else {
                    let hint = match closest(name, false) {
                        Some(c) => format!("did you mean {c}?"),
                        None => "see the function list in the documentation".to_string(),
                    };
                    return Err(err(offset, format!("unknown function {name}"), Some(hint)));
                };
                *func = index;
                self.call(f, args, *close, offset)
            }
        }
    }

    fn unknown_name(&self, name: &str, offset: usize) -> ExprError {
        let hint = if lookup(name).is_some() {
            format!("{name} is a function: call it as {name}(...)")
        } else if let Some(c) = closest(name, true) {
            format!("did you mean {c}? Attribute names go in brackets: [{name}]")
        } else {
            format!("attribute names go in brackets ([{name}]) and text in quotes (\"{name}\")")
        };
        err(offset, format!("unknown name {name}"), Some(hint))
    }

    fn binary(
        &self,
        op: BinOp,
        (tl, ol): (Ty, usize),
        (tr, or): (Ty, usize),
    ) -> Result<Ty, ExprError> {
        let sym = op.symbol();
        match op {
            BinOp::Concat => {
                for (t, o) in [(tl, ol), (tr, or)] {
                    if t == Ty::Bin {
                        return Err(err(
                            o,
                            "'&' cannot join binary values",
                            convert_hint(P::Str, t),
                        ));
                    }
                }
                Ok(Ty::Str)
            }
            BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div => {
                for (t, o) in [(tl, ol), (tr, or)] {
                    if !numeric(t) {
                        let hint = if op == BinOp::Add && t == Ty::Str {
                            Some("use & to join strings, or CNum(...) to add numbers".to_string())
                        } else {
                            convert_hint(P::Num, t)
                        };
                        return Err(err(
                            o,
                            format!("'{sym}' needs numbers, found {}", t.name()),
                            hint,
                        ));
                    }
                }
                Ok(Ty::Num)
            }
            BinOp::And | BinOp::Or => {
                for (t, o) in [(tl, ol), (tr, or)] {
                    if !conditional(t) {
                        return Err(err(
                            o,
                            format!("'{sym}' needs conditions, found {}", t.name()),
                            convert_hint(P::Bool, t),
                        ));
                    }
                }
                Ok(Ty::Bool)
            }
            _ => {
                let textual = |t: Ty| matches!(t, Ty::Str | Ty::Ref);
                let ok = unknown(tl)
                    || unknown(tr)
                    || tl == tr
                    || (textual(tl) && textual(tr))
                    || (tl == Ty::Str && matches!(tr, Ty::Num | Ty::Bool | Ty::Date))
                    || (tr == Ty::Str && matches!(tl, Ty::Num | Ty::Bool | Ty::Date));
                if !ok {
                    return Err(err(
                        or,
                        format!("cannot compare {} with {}", tl.name(), tr.name()),
                        None,
                    ));
                }
                Ok(Ty::Bool)
            }
        }
    }

    fn call(
        &mut self,
        f: &Func,
        args: &mut [Node],
        close: usize,
        offset: usize,
    ) -> Result<Ty, ExprError> {
        let name = f.name;
        if args.len() < f.min {
            return Err(err(
                close,
                format!(
                    "{name} needs {} {} argument{}, got {}",
                    if f.variadic || f.params.len() > f.min {
                        "at least"
                    } else {
                        ""
                    },
                    f.min,
                    if f.min == 1 { "" } else { "s" },
                    args.len()
                )
                .replace("  ", " "),
                Some(signature(f)),
            ));
        }
        if !f.variadic && args.len() > f.params.len() {
            let extra = args.get(f.params.len()).map_or(close, |a| a.offset);
            return Err(err(
                extra,
                format!(
                    "{name} takes at most {} argument{}, got {}",
                    f.params.len(),
                    if f.params.len() == 1 { "" } else { "s" },
                    args.len()
                ),
                Some(signature(f)),
            ));
        }
        if name == "Switch" && args.len() % 2 != 0 {
            return Err(err(
                close,
                "Switch arguments must come in condition, value pairs",
                Some(signature(f)),
            ));
        }
        if matches!(f.params.first(), Some(P::Bind)) {
            return self.binder(f, args);
        }
        let mut tys = Vec::with_capacity(args.len());
        for (i, a) in args.iter_mut().enumerate() {
            let p = if name == "Switch" {
                if i % 2 == 0 { P::Bool } else { P::Any }
            } else {
                match f.params.get(i).or(f.params.last()) {
                    Some(p) => *p,
                    None => P::Any,
                }
            };
            tys.push(self.argument(f, i, p, a)?);
        }
        let _ = offset;
        Ok(match name {
            "IIF" => join(
                tys.get(1).copied().unwrap_or(Ty::Null),
                tys.get(2).copied().unwrap_or(Ty::Null),
            ),
            "Switch" => tys
                .iter()
                .skip(1)
                .step_by(2)
                .fold(Ty::Null, |acc, t| join(acc, *t)),
            "Coalesce" => tys.iter().fold(Ty::Null, |acc, t| join(acc, *t)),
            "Item" | "ItemOrNull" | "RemoveDuplicates" => match tys.first() {
                Some(t) if !matches!(t, Ty::Null | Ty::Void) => *t,
                _ => Ty::Any,
            },
            _ => f.ret,
        })
    }

    fn argument(&mut self, f: &Func, i: usize, p: P, a: &mut Node) -> Result<Ty, ExprError> {
        let name = f.name;
        if let P::Choice(opts) = p {
            let word = match &a.kind {
                Kind::Enum(w) => Some(w.clone()),
                Kind::Lit(Value::String(s)) => Some(s.clone()),
                _ => None,
            };
            if let Some(w) = word {
                if !opts.iter().any(|o| o.eq_ignore_ascii_case(w.trim())) {
                    return Err(err(
                        a.offset,
                        format!("{name}: {w:?} is not one of {}", opts.join(", ")),
                        Some(signature(f)),
                    ));
                }
                return Ok(Ty::Str);
            }
        }
        let t = self.node(a)?;
        if !accepts(p, t) {
            return Err(err(
                a.offset,
                format!(
                    "{name}: argument {} should be {}, found {}",
                    i + 1,
                    want(p),
                    t.name()
                ),
                convert_hint(p, t).or_else(|| Some(signature(f))),
            ));
        }
        let problem = match &a.kind {
            Kind::Lit(v) => literal_rule(name, i + 1, v),
            _ => None,
        };
        if let Some(problem) = problem {
            return Err(err(a.offset, problem, Some(signature(f))));
        }
        Ok(t)
    }

    /// Select / Where / With: `$name`, a source, then a body checked with `$name` bound.
    fn binder(&mut self, f: &Func, args: &mut [Node]) -> Result<Ty, ExprError> {
        let [var, source, body] = args else {
            return Err(err(
                0,
                format!("{} takes three arguments", f.name),
                Some(signature(f)),
            ));
        };
        let Kind::Var { name: vname, slot } = &mut var.kind else {
            return Err(err(
                var.offset,
                format!(
                    "{}: the first argument must be a variable such as $item",
                    f.name
                ),
                Some(signature(f)),
            ));
        };
        let source_ty = self.node(source)?;
        *slot = self.scopes.len();
        self.scopes.push((vname.clone(), source_ty));
        let body_ty = self.node(body);
        self.scopes.pop();
        let body_ty = body_ty?;
        if f.name == "Where" && !conditional(body_ty) {
            return Err(err(
                body.offset,
                format!(
                    "Where: the condition should be a condition, found {}",
                    body_ty.name()
                ),
                convert_hint(P::Bool, body_ty),
            ));
        }
        Ok(match f.name {
            "With" => body_ty,
            "Where" => source_ty,
            _ => match body_ty {
                Ty::Void | Ty::Null => Ty::Any,
                t => t,
            },
        })
    }
}
