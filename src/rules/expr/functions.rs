//! Every function of the expression language in one place: its name, arguments, result type
//! and implementation. The checker reads [`FUNCS`] for arity and argument types; the
//! evaluator calls the implementations. Semantics follow Microsoft's "Azure AD Connect sync:
//! Functions Reference"; where it is vague the choice is stated beside the function.
//!
//! Positions and indexes are 1-based, lengths and positions count Unicode characters (not
//! UTF-16 units). "each" functions apply to every value of a multi-valued input; "whole"
//! functions read the whole list. A null (missing) input gives null unless stated.
//!
//! | Function | Arguments | Result | Description |
//! |---|---|---|---|
//! | `AuthoritativeNull` | — | — | Removes the target value even when a lower-precedence rule contributes one (also a bare constant). |
//! | `BitAnd` | num, num | num | Bitwise AND. `BitAnd(&HF, &HF7)` = 7. |
//! | `BitOr` | num, num | num | Bitwise OR. |
//! | `CBool` | exp | bool | True when the value is true or a non-zero number. |
//! | `CDate` | str | dt | Parses a date (`yyyy-MM-dd[ HH:mm[:ss]]`, `MM/dd/yyyy`, AM/PM, zone `Z`/`±H[H[:mm]]`, `yyyyMMddHHmmss.0Z`) to UTC. |
//! | `CGuid` | str | bin | `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` or `{...}` → 16 bytes in AD (little-endian) order. |
//! | `CNum` | str | num | Parses an integer (decimal or `&H` hex). |
//! | `Coalesce` | var, var, ... | var | The first argument that is present (not null, not an empty string). |
//! | `Contains` | mvstr, str [, CaseSensitive\|CaseInsensitive] | num | 1-based index of the first value containing the string (references: equal to it), 0 if none. |
//! | `ConvertFromBase64` | str [, Unicode\|ASCII\|UTF8] | str | Decodes base64; the bytes are UTF-16LE text unless another encoding is named. |
//! | `ConvertFromUTF8Hex` | str | str | Decodes hex-encoded UTF-8. |
//! | `ConvertToBase64` | str or bin | str | Base64 of the string's UTF-16LE bytes, or of binary bytes. |
//! | `ConvertToUTF8Hex` | str | str | Upper-case hex of the UTF-8 bytes. |
//! | `Count` | mvstr | num | Number of values (0 for null). |
//! | `CRef` | str | ref | A DN string as a reference. |
//! | `CStr` | num, ref, bool or dt | str | The value as text (booleans `True`/`False`, dates ISO 8601). |
//! | `DateAdd` | str interval, num, dt | dt | Adds `yyyy`, `q`, `m`, `y`, `d`, `w`, `ww`, `h`, `n` or `s` intervals. |
//! | `DateFromNum` | num | dt | AD integer date (100 ns ticks since 1601) → date. |
//! | `DNComponent` | ref, num | str | Value of the n-th RDN from the left. |
//! | `DNComponentRev` | ref, num [, "DC"] | str | Value of the n-th RDN from the right; `DC` skips `dc=` RDNs. |
//! | `Error` | str | — | Stops the flow with an error on the object. |
//! | `EscapeDNComponent` | str | str | Escapes the value of one RDN (`cn=Smith, Ann` → `cn=Smith\, Ann`). |
//! | `FormatDateTime` | dt, str | str | Formats a date with a .NET date format (`yyyyMMddHHmmss.0Z`). |
//! | `Guid` | — | str | A new random GUID. |
//! | `IgnoreThisFlow` | — | — | This flow contributes nothing (also a bare constant). |
//! | `IIF` | exp, var, var | var | The second argument when the condition holds, else the third. |
//! | `InStr` | str, str [, num start [, vbTextCompare\|vbBinaryCompare]] | num | Position of the first occurrence, 0 if none. |
//! | `InStrRev` | str, str [, num start [, compare]] | num | Position of the last occurrence (ending at or before start), 0 if none. |
//! | `IsBitSet` | num, num | bool | Whether every bit of the flag is set in the value. |
//! | `IsDate` | var | bool | Whether `CDate` would succeed. |
//! | `IsEmpty` | var | bool | Present but an empty string. |
//! | `IsGuid` | var | bool | Whether `CGuid` would succeed. |
//! | `IsNull` | var | bool | Whether the value is null (attribute absent). |
//! | `IsNullOrEmpty` | var | bool | Null or an empty string. |
//! | `IsNumeric` | var | bool | Whether `CNum` would succeed. |
//! | `IsPresent` | var | bool | Not null and not an empty string. |
//! | `IsString` | var | bool | Whether `CStr` would succeed. |
//! | `Item` | mvstr, num | var | The n-th value; an error when out of range. |
//! | `ItemOrNull` | mvstr, num | var | The n-th value; null when out of range. |
//! | `Join` | mvstr [, str] | str | Values joined with the delimiter (default a space). |
//! | `LCase` | str | str | Lower case. |
//! | `Left` | str, num | str | The first n characters (n < 0: all; null: ""). |
//! | `Len` | str | num | Number of characters. |
//! | `LTrim` | str | str | Without leading white space. |
//! | `Mid` | str, num start [, num n] | str | n characters from start (without n: to the end). |
//! | `Now` | — | dt | The current time (injected by the caller). |
//! | `NumFromDate` | dt | num | Date → AD integer date. |
//! | `PadLeft` | str, num, str | str | Left-pads to a length with one pad character (at most 65,536). |
//! | `PadRight` | str, num, str | str | Right-pads to a length with one pad character. |
//! | `PCase` (`ProperCase`) | str | str | Upper-cases the first letter of each word, lower-cases the rest; all-capital words stay. |
//! | `RandomNum` | num, num | num | A random number in the inclusive range. |
//! | `RemoveDuplicates` | mvstr | mvstr | The values without repeats. |
//! | `Replace` | str, str old, str new | str | Replaces every occurrence; `\n`, `\r`, `\t` in old/new are line feed, return, tab. |
//! | `ReplaceChars` | str, str pattern | str | Replaces characters per `s1:t1,s2:t2` (targets may be empty). |
//! | `Right` | str, num | str | The last n characters. |
//! | `RTrim` | str | str | Without trailing white space. |
//! | `Select` | $item, mv, exp | mv | Each value transformed by the expression. |
//! | `Split` | str, str delimiter [, num limit] | mvstr | Splits at a one-character delimiter, at most `limit` values. |
//! | `StringFromGuid` | bin | str | 16-byte GUID → `{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}`. |
//! | `StringFromSid` | bin | str | Binary SID → `S-1-5-21-...`. |
//! | `Switch` | exp, var [, exp, var ...] | var | The value paired with the first true condition, else null. |
//! | `Trim` | str | str | Without leading and trailing white space. |
//! | `UCase` | str | str | Upper case. |
//! | `Where` | $item, mv, exp | mv | The values for which the condition holds. |
//! | `With` | $var, var, exp | var | Evaluates the expression with `$var` bound to the value. |
//! | `Word` | str, num, str delimiters | str | The n-th word between any of the delimiter characters ("" if none). |

use base64::Engine;

use super::datetime;
use super::eval::{
    Env, MAX_TEXT, MAX_VALUES, Stop, Vals, boolean, bytes, date, fail, num, parse_num, text,
};
use crate::model::{Dn, RefTarget, Value, dn};

/// A static type: what the checker knows of a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ty {
    Str,
    Num,
    Bool,
    Bin,
    Date,
    Ref,
    /// Unknown until run time (attributes, `Item`, ...).
    Any,
    /// `NULL`.
    Null,
    /// Never returns a value (`Error`, `AuthoritativeNull`, `IgnoreThisFlow`).
    Void,
}

impl Ty {
    /// The type's name in messages.
    pub(super) fn name(self) -> &'static str {
        match self {
            Ty::Str => "a string",
            Ty::Num => "a number",
            Ty::Bool => "a boolean",
            Ty::Bin => "binary",
            Ty::Date => "a date",
            Ty::Ref => "a reference",
            Ty::Any => "a value",
            Ty::Null => "NULL",
            Ty::Void => "no value",
        }
    }
}

/// What a parameter accepts.
#[derive(Clone, Copy, Debug)]
pub(super) enum P {
    /// Text (a reference's DN is text too).
    Str,
    /// A number.
    Num,
    /// A condition (booleans, or numbers: non-zero is true).
    Bool,
    /// Binary.
    Bin,
    /// A date, or text that reads as one.
    Date,
    /// A DN reference, or DN text.
    Ref,
    /// Text or binary.
    StrOrBin,
    /// Anything.
    Any,
    /// One of the listed words, bare (`CaseInsensitive`) or quoted (`"DC"`), any case.
    Choice(&'static [&'static str]),
    /// A variable name (`$item`) being bound.
    Bind,
}

/// A function applied to single values (null = None) and the current time.
pub(super) type EachFn = fn(&[Option<&Value>], i64) -> Result<Option<Value>, Stop>;

/// How a function runs.
#[derive(Clone, Copy)]
pub(super) enum Imp {
    /// Applied to each combination of argument values; gets the current time.
    Each(EachFn),
    /// Gets the whole argument lists.
    Whole(fn(&mut Env<'_>, &[Vals]) -> Result<Vals, Stop>),
    /// Evaluated lazily by the evaluator itself.
    Special(Special),
}

/// Functions that control evaluation of their own arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Special {
    Iif,
    Switch,
    Select,
    Where,
    With,
}

/// One function of the language.
pub(super) struct Func {
    /// Canonical spelling.
    pub name: &'static str,
    /// Other accepted names.
    pub aliases: &'static [&'static str],
    /// Parameters; with `variadic`, the last one repeats.
    pub params: &'static [P],
    /// How many arguments are required.
    pub min: usize,
    /// Whether the last parameter repeats without limit.
    pub variadic: bool,
    /// Result type (IIF, Switch, Coalesce, With, Where, Item: refined by the checker).
    pub ret: Ty,
    /// Implementation.
    pub imp: Imp,
}

const COMPARE: &[&str] = &["vbTextCompare", "vbBinaryCompare"];
const CASE: &[&str] = &["CaseSensitive", "CaseInsensitive"];
const ENCODING: &[&str] = &["Unicode", "ASCII", "UTF8"];
const DN_OPTS: &[&str] = &["DC"];
const INTERVALS: &[&str] = &["yyyy", "q", "m", "y", "d", "w", "ww", "h", "n", "s"];

/// Longest result of `PadLeft`/`PadRight`, in characters.
pub(super) const MAX_PAD: i64 = 65_536;

macro_rules! f {
    ($name:literal, [$($p:expr),*], $min:expr, $ret:ident, $imp:expr) => {
        f!($name, [], [$($p),*], $min, false, $ret, $imp)
    };
    ($name:literal, [$($alias:literal),*], [$($p:expr),*], $min:expr, $var:expr, $ret:ident, $imp:expr) => {
        Func {
            name: $name,
            aliases: &[$($alias),*],
            params: &[$($p),*],
            min: $min,
            variadic: $var,
            ret: Ty::$ret,
            imp: $imp,
        }
    };
}

use Imp::{Each, Special as Sp, Whole};
use P::*;

/// The function table.
pub(super) static FUNCS: &[Func] = &[
    f!("AuthoritativeNull", [], 0, Void, Each(authoritative_null)),
    f!("BitAnd", [Num, Num], 2, Num, Each(bit_and)),
    f!("BitOr", [Num, Num], 2, Num, Each(bit_or)),
    f!("CBool", [Bool], 1, Bool, Each(cbool)),
    f!("CDate", [Date], 1, Date, Each(cdate)),
    f!("CGuid", [Str], 1, Bin, Each(cguid)),
    f!("CNum", [Any], 1, Num, Each(cnum)),
    f!("Coalesce", [], [Any, Any], 1, true, Any, Whole(coalesce)),
    f!(
        "Contains",
        [Any, Str, Choice(CASE)],
        2,
        Num,
        Whole(contains)
    ),
    f!(
        "ConvertFromBase64",
        [Str, Choice(ENCODING)],
        1,
        Str,
        Each(convert_from_base64)
    ),
    f!(
        "ConvertFromUTF8Hex",
        [Str],
        1,
        Str,
        Each(convert_from_utf8_hex)
    ),
    f!(
        "ConvertToBase64",
        [StrOrBin],
        1,
        Str,
        Each(convert_to_base64)
    ),
    f!("ConvertToUTF8Hex", [Str], 1, Str, Each(convert_to_utf8_hex)),
    f!("Count", [Any], 1, Num, Whole(count)),
    f!("CRef", [Ref], 1, Ref, Each(cref)),
    f!("CStr", [Any], 1, Str, Each(cstr)),
    f!(
        "DateAdd",
        [Choice(INTERVALS), Num, Date],
        3,
        Date,
        Each(date_add)
    ),
    f!("DateFromNum", [Num], 1, Date, Each(date_from_num)),
    f!("DNComponent", [Ref, Num], 2, Str, Each(dn_component)),
    f!(
        "DNComponentRev",
        [Ref, Num, Choice(DN_OPTS)],
        2,
        Str,
        Each(dn_component_rev)
    ),
    f!("Error", [Str], 1, Void, Each(error)),
    f!(
        "EscapeDNComponent",
        [Str],
        1,
        Str,
        Each(escape_dn_component)
    ),
    f!(
        "FormatDateTime",
        [Date, Str],
        2,
        Str,
        Each(format_date_time)
    ),
    f!("Guid", [], 0, Str, Each(guid)),
    f!("IgnoreThisFlow", [], 0, Void, Each(ignore_this_flow)),
    f!("IIF", [Bool, Any, Any], 3, Any, Sp(Special::Iif)),
    f!(
        "InStr",
        [Str, Str, Num, Choice(COMPARE)],
        2,
        Num,
        Each(instr)
    ),
    f!(
        "InStrRev",
        [Str, Str, Num, Choice(COMPARE)],
        2,
        Num,
        Each(instr_rev)
    ),
    f!("IsBitSet", [Num, Num], 2, Bool, Each(is_bit_set)),
    f!("IsDate", [Any], 1, Bool, Each(is_date)),
    f!("IsEmpty", [Any], 1, Bool, Whole(is_empty)),
    f!("IsGuid", [Any], 1, Bool, Each(is_guid)),
    f!("IsNull", [Any], 1, Bool, Whole(is_null)),
    f!("IsNullOrEmpty", [Any], 1, Bool, Whole(is_null_or_empty)),
    f!("IsNumeric", [Any], 1, Bool, Each(is_numeric)),
    f!("IsPresent", [Any], 1, Bool, Whole(is_present_fn)),
    f!("IsString", [Any], 1, Bool, Each(is_string)),
    f!("Item", [Any, Num], 2, Any, Whole(item)),
    f!("ItemOrNull", [Any, Num], 2, Any, Whole(item_or_null)),
    f!("Join", [Any, Str], 1, Str, Whole(join)),
    f!("LCase", [Str], 1, Str, Each(lcase)),
    f!("Left", [Str, Num], 2, Str, Each(left)),
    f!("Len", [Str], 1, Num, Each(len)),
    f!("LTrim", [Str], 1, Str, Each(ltrim)),
    f!("Mid", [Str, Num, Num], 2, Str, Each(mid)),
    f!("Now", [], 0, Date, Each(now)),
    f!("NumFromDate", [Date], 1, Num, Each(num_from_date)),
    f!("PadLeft", [Str, Num, Str], 3, Str, Each(pad_left)),
    f!("PadRight", [Str, Num, Str], 3, Str, Each(pad_right)),
    f!("PCase", ["ProperCase"], [Str], 1, false, Str, Each(pcase)),
    f!("RandomNum", [Num, Num], 2, Num, Each(random_num)),
    f!("RemoveDuplicates", [Any], 1, Any, Whole(remove_duplicates)),
    f!("Replace", [Str, Str, Str], 3, Str, Each(replace)),
    f!("ReplaceChars", [Str, Str], 2, Str, Each(replace_chars)),
    f!("Right", [Str, Num], 2, Str, Each(right)),
    f!("RTrim", [Str], 1, Str, Each(rtrim)),
    f!("Select", [Bind, Any, Any], 3, Any, Sp(Special::Select)),
    f!("Split", [Str, Str, Num], 2, Str, Whole(split)),
    f!("StringFromGuid", [Bin], 1, Str, Each(string_from_guid)),
    f!("StringFromSid", [Bin], 1, Str, Each(string_from_sid)),
    f!("Switch", [], [Bool, Any], 2, true, Any, Sp(Special::Switch)),
    f!("Trim", [Str], 1, Str, Each(trim)),
    f!("UCase", [Str], 1, Str, Each(ucase)),
    f!("Where", [Bind, Any, Bool], 3, Any, Sp(Special::Where)),
    f!("With", [Bind, Any, Any], 3, Any, Sp(Special::With)),
    f!("Word", [Str, Num, Str], 3, Str, Each(word)),
];

/// The function called `name` (any case, aliases included), with its table index.
pub(super) fn lookup(name: &str) -> Option<(usize, &'static Func)> {
    FUNCS.iter().enumerate().find(|(_, f)| {
        f.name.eq_ignore_ascii_case(name) || f.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
    })
}

/// Checks a literal argument beyond its type (a one-character delimiter, a parseable
/// ReplaceChars pattern, ...): the message of what is wrong, if anything.
pub(super) fn literal_rule(func: &str, arg: usize, v: &Value) -> Option<String> {
    let s = match v {
        Value::String(s) => s.as_str(),
        _ => return None,
    };
    match (func, arg) {
        ("Split", 2) if s.chars().count() != 1 => {
            Some("the Split delimiter must be exactly one character".to_string())
        }
        ("PadLeft" | "PadRight", 3) if s.chars().count() != 1 => Some(format!(
            "the {func} pad character must be exactly one character"
        )),
        ("ReplaceChars", 2) => parse_pattern(s).err(),
        ("CGuid", 1) if parse_guid(s).is_none() => Some(format!("{s:?} is not a GUID")),
        ("CDate", 1) if datetime::parse_date(s).is_none() => {
            Some(format!("{s:?} is not a date CDate understands"))
        }
        ("FormatDateTime", 2) => datetime::format(0, s).err(),
        _ => None,
    }
}

// ---- helpers -----------------------------------------------------------------------------

fn a<'v>(args: &[Option<&'v Value>], i: usize) -> Option<&'v Value> {
    args.get(i).copied().flatten()
}

fn s(v: String) -> Result<Option<Value>, Stop> {
    Ok(Some(Value::String(v)))
}

fn n(v: i64) -> Result<Option<Value>, Stop> {
    Ok(Some(Value::Integer(v)))
}

fn b(v: bool) -> Result<Option<Value>, Stop> {
    Ok(Some(Value::Boolean(v)))
}

/// Case folding that keeps one character per character, so positions survive.
fn fold(c: char) -> char {
    let mut l = c.to_lowercase();
    match (l.next(), l.next()) {
        (Some(x), None) => x,
        _ => c,
    }
}

fn fold_str(s: &str) -> String {
    s.chars().map(fold).collect()
}

/// Byte offset of the `n`-th character (0-based), or the length when past the end.
fn char_byte(s: &str, n: usize) -> usize {
    s.char_indices().nth(n).map_or(s.len(), |(i, _)| i)
}

fn char_pos(s: &str, byte: usize) -> i64 {
    s.get(..byte).map_or(0, |p| p.chars().count()) as i64
}

/// The single value of a whole-function argument (lists are an error).
fn single<'v>(v: Option<&'v Vals>, func: &str, arg: usize) -> Result<Option<&'v Value>, Stop> {
    match v {
        None => Ok(None),
        Some(v) => match v.scalar() {
            Some(x) => Ok(x),
            None => fail(format!("{func}: argument {arg} must be a single value")),
        },
    }
}

fn is_present(v: &Vals) -> bool {
    v.values()
        .any(|v| !matches!(v, Value::String(s) if s.is_empty()))
}

/// Whether a choice argument names `word` (the first option is the default when absent).
fn choice(v: Option<&Value>, options: &[&str], func: &str) -> Result<usize, Stop> {
    let Some(v) = v else { return Ok(0) };
    let t = text(v, func, 0)?;
    match options
        .iter()
        .position(|o| o.eq_ignore_ascii_case(t.trim()))
    {
        Some(i) => Ok(i),
        None => fail(format!(
            "{func}: {t:?} is not one of {}",
            options.join(", ")
        )),
    }
}

// ---- program flow ------------------------------------------------------------------------

fn authoritative_null(_: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    Err(Stop::AuthoritativeNull)
}

fn ignore_this_flow(_: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    Err(Stop::IgnoreThisFlow)
}

fn error(args: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    let msg = match a(args, 0) {
        Some(v) => text(v, "Error", 1)?.into_owned(),
        None => "Error".to_string(),
    };
    Err(Stop::Error(msg))
}

/// Not in Microsoft's AAD Connect reference (it is in Entra app provisioning): the first
/// argument that is present; null when none is.
fn coalesce(_: &mut Env<'_>, args: &[Vals]) -> Result<Vals, Stop> {
    Ok(args
        .iter()
        .find(|v| is_present(v))
        .cloned()
        .unwrap_or(Vals::Null))
}

// ---- evaluation --------------------------------------------------------------------------

fn is_null(_: &mut Env<'_>, args: &[Vals]) -> Result<Vals, Stop> {
    Ok(Vals::One(Value::Boolean(
        args.first().is_none_or(Vals::is_null),
    )))
}

fn is_present_fn(_: &mut Env<'_>, args: &[Vals]) -> Result<Vals, Stop> {
    Ok(Vals::One(Value::Boolean(
        args.first().is_some_and(is_present),
    )))
}

fn is_null_or_empty(_: &mut Env<'_>, args: &[Vals]) -> Result<Vals, Stop> {
    Ok(Vals::One(Value::Boolean(
        !args.first().is_some_and(is_present),
    )))
}

/// Present (not null) and every value an empty string.
fn is_empty(_: &mut Env<'_>, args: &[Vals]) -> Result<Vals, Stop> {
    let v = args.first();
    let empty = v.is_some_and(|v| {
        !v.is_null()
            && v.values()
                .all(|x| matches!(x, Value::String(s) if s.is_empty()))
    });
    Ok(Vals::One(Value::Boolean(empty)))
}

fn is_date(args: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    b(match a(args, 0) {
        Some(Value::DateTime(_)) => true,
        Some(Value::String(s)) => datetime::parse_date(s).is_some(),
        _ => false,
    })
}

fn is_guid(args: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    b(matches!(a(args, 0), Some(Value::String(s)) if parse_guid(s).is_some()))
}

fn is_numeric(args: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    b(match a(args, 0) {
        Some(Value::Integer(_)) => true,
        Some(Value::String(s)) => parse_num(s).is_some(),
        _ => false,
    })
}

/// Whether `CStr` would succeed: anything but binary and null.
fn is_string(args: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    b(!matches!(a(args, 0), None | Some(Value::Binary(_))))
}

/// The documented example `IsBitSet(&HF, 4)` = True reads `flag` as a mask (4 = bit 2);
/// true when every bit of a non-zero mask is set.
fn is_bit_set(args: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    let (Some(v), Some(f)) = (a(args, 0), a(args, 1)) else {
        return Ok(None);
    };
    let v = num(v, "IsBitSet", 1)?;
    let f = num(f, "IsBitSet", 2)?;
    b(f != 0 && v & f == f)
}

// ---- math --------------------------------------------------------------------------------

fn bit_and(args: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    let (Some(x), Some(y)) = (a(args, 0), a(args, 1)) else {
        return Ok(None);
    };
    n(num(x, "BitAnd", 1)? & num(y, "BitAnd", 2)?)
}

fn bit_or(args: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    let (Some(x), Some(y)) = (a(args, 0), a(args, 1)) else {
        return Ok(None);
    };
    n(num(x, "BitOr", 1)? | num(y, "BitOr", 2)?)
}

fn random_num(args: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    let (Some(x), Some(y)) = (a(args, 0), a(args, 1)) else {
        return Ok(None);
    };
    let lo = i128::from(num(x, "RandomNum", 1)?);
    let hi = i128::from(num(y, "RandomNum", 2)?);
    if lo > hi {
        return fail("RandomNum: start is greater than end");
    }
    let span = (hi - lo + 1) as u128;
    let r = uuid::Uuid::new_v4().as_u128() % span;
    n(i64::try_from(lo + r as i128).unwrap_or(0))
}

// ---- conversion --------------------------------------------------------------------------

fn cbool(args: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    match a(args, 0) {
        None => Ok(None),
        Some(v) => b(boolean(v, "CBool", 1)?),
    }
}

fn cdate(args: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    match a(args, 0) {
        None => Ok(None),
        Some(v) => Ok(Some(Value::DateTime(date(v, "CDate", 1)?))),
    }
}

/// The two documented GUID forms: 36 characters with hyphens, or that in braces.
fn parse_guid(s: &str) -> Option<uuid::Uuid> {
    let t = s.trim();
    let inner = match t.strip_prefix('{') {
        Some(rest) => rest.strip_suffix('}')?,
        None => t,
    };
    if inner.len() != 36 {
        return None;
    }
    uuid::Uuid::try_parse(inner).ok()
}

fn cguid(args: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    let Some(v) = a(args, 0) else { return Ok(None) };
    let t = text(v, "CGuid", 1)?;
    match parse_guid(&t) {
        Some(g) => Ok(Some(Value::Binary(g.to_bytes_le().to_vec()))),
        None => fail(format!("CGuid: {t:?} is not a GUID")),
    }
}

fn cnum(args: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    match a(args, 0) {
        None => Ok(None),
        Some(v) => n(num(v, "CNum", 1)?),
    }
}

fn cref(args: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    match a(args, 0) {
        None => Ok(None),
        Some(v @ Value::Reference(_)) => Ok(Some(v.clone())),
        Some(v) => {
            let t = text(v, "CRef", 1)?;
            match Dn::parse(&t) {
                Ok(dn) => Ok(Some(Value::Reference(RefTarget::Dn(dn)))),
                Err(e) => fail(format!("CRef: {e}")),
            }
        }
    }
}

fn cstr(args: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    match a(args, 0) {
        None => Ok(None),
        Some(v) => s(text(v, "CStr", 1)?.into_owned()),
    }
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// Strings are encoded as UTF-16LE first (Microsoft: "converts a string to a Unicode base64
/// string"; `ConvertToBase64("Hello world!")` = `SABlAGwAbABvACAAdwBvAHIAbABkACEA`).
fn convert_to_base64(args: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    match a(args, 0) {
        None => Ok(None),
        Some(Value::Binary(bytes)) => s(b64().encode(bytes)),
        Some(v) => {
            let t = text(v, "ConvertToBase64", 1)?;
            let utf16: Vec<u8> = t.encode_utf16().flat_map(u16::to_le_bytes).collect();
            s(b64().encode(utf16))
        }
    }
}

/// Unicode (UTF-16LE, the default), ASCII (bytes above 127 become `?`, as .NET does) or UTF8.
fn convert_from_base64(args: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    let Some(v) = a(args, 0) else { return Ok(None) };
    let t = text(v, "ConvertFromBase64", 1)?;
    let raw = match b64().decode(t.trim()) {
        Ok(r) => r,
        Err(e) => return fail(format!("ConvertFromBase64: not base64: {e}")),
    };
    match choice(a(args, 1), ENCODING, "ConvertFromBase64")? {
        0 => {
            if raw.len() % 2 != 0 {
                return fail("ConvertFromBase64: odd number of bytes for Unicode (UTF-16) text");
            }
            let units: Vec<u16> = raw
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            match String::from_utf16(&units) {
                Ok(t) => s(t),
                Err(_) => fail("ConvertFromBase64: invalid UTF-16 text"),
            }
        }
        1 => s(raw
            .iter()
            .map(|&b| if b < 128 { char::from(b) } else { '?' })
            .collect()),
        _ => match String::from_utf8(raw) {
            Ok(t) => s(t),
            Err(_) => fail("ConvertFromBase64: invalid UTF-8 text"),
        },
    }
}

fn convert_to_utf8_hex(args: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    let Some(v) = a(args, 0) else { return Ok(None) };
    let t = text(v, "ConvertToUTF8Hex", 1)?;
    let mut out = String::with_capacity(t.len() * 2);
    for byte in t.bytes() {
        out.push_str(&format!("{byte:02X}"));
    }
    s(out)
}

fn convert_from_utf8_hex(args: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    let Some(v) = a(args, 0) else { return Ok(None) };
    let t = text(v, "ConvertFromUTF8Hex", 1)?;
    let digits = t.as_bytes();
    if digits.len() % 2 != 0 {
        return fail("ConvertFromUTF8Hex: odd number of hex digits");
    }
    let mut raw = Vec::with_capacity(digits.len() / 2);
    for pair in digits.chunks_exact(2) {
        let hex = std::str::from_utf8(pair).ok();
        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(byte) => raw.push(byte),
            None => return fail("ConvertFromUTF8Hex: not hexadecimal"),
        }
    }
    match String::from_utf8(raw) {
        Ok(t) => s(t),
        Err(_) => fail("ConvertFromUTF8Hex: invalid UTF-8"),
    }
}

/// The brace form with lower-case hex, as .NET's `Guid.ToString("B")`: the first three
/// fields are little-endian in AD's objectGUID bytes.
fn string_from_guid(args: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    let Some(v) = a(args, 0) else { return Ok(None) };
    let raw = bytes(v, "StringFromGuid", 1)?;
    match <[u8; 16]>::try_from(raw) {
        Ok(arr) => s(uuid::Uuid::from_bytes_le(arr).braced().to_string()),
        Err(_) => fail(format!(
            "StringFromGuid: a GUID is 16 bytes, got {}",
            raw.len()
        )),
    }
}

/// `S-{revision}-{authority}-{sub1}-...`: authority is 48-bit big-endian (hex `0x...` when
/// 2^32 or more, as MS-DTYP says), sub-authorities 32-bit little-endian.
fn string_from_sid(args: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    let Some(v) = a(args, 0) else { return Ok(None) };
    let raw = bytes(v, "StringFromSid", 1)?;
    let (Some(&rev), Some(&count)) = (raw.first(), raw.get(1)) else {
        return fail("StringFromSid: too short for a SID");
    };
    let count = usize::from(count);
    if raw.len() != 8 + 4 * count {
        return fail(format!(
            "StringFromSid: {} bytes do not hold a SID with {count} sub-authorities",
            raw.len()
        ));
    }
    let authority = raw
        .get(2..8)
        .unwrap_or_default()
        .iter()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    let mut out = format!("S-{rev}-");
    if authority >= 1 << 32 {
        out.push_str(&format!("0x{authority:012X}"));
    } else {
        out.push_str(&authority.to_string());
    }
    for chunk in raw.get(8..).unwrap_or_default().chunks_exact(4) {
        let sub = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        out.push_str(&format!("-{sub}"));
    }
    s(out)
}

// ---- date / time -------------------------------------------------------------------------

fn now(_: &[Option<&Value>], now: i64) -> Result<Option<Value>, Stop> {
    Ok(Some(Value::DateTime(now)))
}

fn date_add(args: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    let (Some(i), Some(k), Some(d)) = (a(args, 0), a(args, 1), a(args, 2)) else {
        return Ok(None);
    };
    let interval = text(i, "DateAdd", 1)?;
    let k = num(k, "DateAdd", 2)?;
    let d = date(d, "DateAdd", 3)?;
    match datetime::add(&interval, k, d) {
        Ok(Some(t)) => Ok(Some(Value::DateTime(t))),
        Ok(None) => fail("DateAdd: result outside years 1..9999"),
        Err(e) => fail(format!("DateAdd: {e}")),
    }
}

fn date_from_num(args: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    match a(args, 0) {
        None => Ok(None),
        Some(v) => Ok(Some(Value::DateTime(datetime::from_filetime(num(
            v,
            "DateFromNum",
            1,
        )?)))),
    }
}

fn num_from_date(args: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    let Some(v) = a(args, 0) else { return Ok(None) };
    match datetime::to_filetime(date(v, "NumFromDate", 1)?) {
        Some(t) => n(t),
        None => fail("NumFromDate: date out of range"),
    }
}

/// .NET custom date formats in UTC with the invariant culture (Microsoft's examples:
/// `"yyyy-MM-dd"`, `"yyyyMMddHHmmss.0Z"`).
fn format_date_time(args: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    let (Some(d), Some(f)) = (a(args, 0), a(args, 1)) else {
        return Ok(None);
    };
    let d = date(d, "FormatDateTime", 1)?;
    let f = text(f, "FormatDateTime", 2)?;
    match datetime::format(d, &f) {
        Ok(t) => s(t),
        Err(e) => fail(format!("FormatDateTime: {e}")),
    }
}

// ---- directory ---------------------------------------------------------------------------

/// RDN walks are quadratic in depth; no real DN comes near this.
const MAX_DN_DEPTH: usize = 512;

fn dn_arg(v: &Value, func: &str) -> Result<Dn, Stop> {
    let dn = match v {
        Value::Reference(RefTarget::Dn(dn) | RefTarget::Anchored { dn, .. }) => dn.clone(),
        Value::Reference(RefTarget::Mv(_)) => {
            return fail(format!("{func}: a metaverse reference has no DN"));
        }
        other => match Dn::parse(&text(other, func, 1)?) {
            Ok(dn) => dn,
            Err(e) => return fail(format!("{func}: {e}")),
        },
    };
    if dn.depth() > MAX_DN_DEPTH {
        return fail(format!("{func}: DN deeper than {MAX_DN_DEPTH} RDNs"));
    }
    Ok(dn)
}

/// (attribute type, unescaped value) of every RDN, left to right.
fn rdns(dn: &Dn) -> Vec<(String, Option<String>)> {
    let mut out = Vec::with_capacity(dn.depth());
    let mut cur = dn.clone();
    while !cur.is_root() {
        let ty = cur
            .rdn()
            .split('=')
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        out.push((ty, cur.rdn_value()));
        cur = cur.parent();
    }
    out
}

/// Out-of-range component numbers give null (the reference does not say).
fn dn_component(args: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    let (Some(d), Some(k)) = (a(args, 0), a(args, 1)) else {
        return Ok(None);
    };
    let dn = dn_arg(d, "DNComponent")?;
    let k = num(k, "DNComponent", 2)?;
    let parts = rdns(&dn);
    let idx = usize::try_from(k).ok().and_then(|k| k.checked_sub(1));
    Ok(idx
        .and_then(|i| parts.into_iter().nth(i))
        .and_then(|(_, v)| v)
        .map(Value::String))
}

fn dn_component_rev(args: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    let (Some(d), Some(k)) = (a(args, 0), a(args, 1)) else {
        return Ok(None);
    };
    let dn = dn_arg(d, "DNComponentRev")?;
    let k = num(k, "DNComponentRev", 2)?;
    let skip_dc = a(args, 2).is_some();
    if skip_dc {
        choice(a(args, 2), DN_OPTS, "DNComponentRev")?;
    }
    let parts: Vec<_> = rdns(&dn)
        .into_iter()
        .filter(|(ty, _)| !(skip_dc && ty.eq_ignore_ascii_case("dc")))
        .collect();
    let idx = usize::try_from(k)
        .ok()
        .filter(|k| *k >= 1)
        .and_then(|k| parts.len().checked_sub(k));
    Ok(idx
        .and_then(|i| parts.into_iter().nth(i))
        .and_then(|(_, v)| v)
        .map(Value::String))
}

/// Given `type=value` (Microsoft's example passes `"cn=" & [displayName]`), escapes the
/// value and keeps the type; text without a leading attribute type is escaped whole.
fn escape_dn_component(args: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    let Some(v) = a(args, 0) else { return Ok(None) };
    let t = text(v, "EscapeDNComponent", 1)?;
    if let Some((ty, val)) = t.split_once('=') {
        let ty_ok = !ty.is_empty()
            && ty
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
        if ty_ok {
            return s(format!("{ty}={}", dn::escape_value(val)));
        }
    }
    s(dn::escape_value(&t))
}

// ---- multi-valued ------------------------------------------------------------------------

fn count(_: &mut Env<'_>, args: &[Vals]) -> Result<Vals, Stop> {
    let c = args.first().map_or(0, |v| v.values().count());
    Ok(Vals::One(Value::Integer(c as i64)))
}

/// Strings match when the search is a substring (CaseSensitive unless told otherwise);
/// references when they are the same DN; other values when their text is equal.
fn contains(_: &mut Env<'_>, args: &[Vals]) -> Result<Vals, Stop> {
    let Some(search) = single(args.get(1), "Contains", 2)? else {
        return Ok(Vals::Null);
    };
    let search = text(search, "Contains", 2)?;
    let insensitive = choice(single(args.get(2), "Contains", 3)?, CASE, "Contains")? == 1;
    let needle = if insensitive {
        fold_str(&search)
    } else {
        search.to_string()
    };
    let mut found = 0;
    if let Some(list) = args.first() {
        for (i, v) in list.values().enumerate() {
            let hit = match v {
                Value::String(h) if insensitive => fold_str(h).contains(&needle),
                Value::String(h) => h.contains(&needle),
                Value::Reference(RefTarget::Dn(dn) | RefTarget::Anchored { dn, .. }) => {
                    match Dn::parse(&search) {
                        Ok(d) => d.norm() == dn.norm(),
                        Err(_) => false,
                    }
                }
                Value::Binary(_) => false,
                other => text(other, "Contains", 1)? == search,
            };
            if hit {
                found = i + 1;
                break;
            }
        }
    }
    Ok(Vals::One(Value::Integer(found as i64)))
}

fn nth(args: &[Vals], func: &str) -> Result<Option<Result<Value, usize>>, Stop> {
    let Some(k) = single(args.get(1), func, 2)? else {
        return Ok(None);
    };
    let k = num(k, func, 2)?;
    let Some(list) = args.first() else {
        return Ok(None);
    };
    if list.is_null() {
        return Ok(None);
    }
    let idx = usize::try_from(k).ok().and_then(|k| k.checked_sub(1));
    Ok(Some(match idx.and_then(|i| list.values().nth(i)) {
        Some(v) => Ok(v.clone()),
        None => Err(list.values().count()),
    }))
}

fn item(_: &mut Env<'_>, args: &[Vals]) -> Result<Vals, Stop> {
    match nth(args, "Item")? {
        None => Ok(Vals::Null),
        Some(Ok(v)) => Ok(Vals::One(v)),
        Some(Err(len)) => fail(format!(
            "Item: index out of range (the attribute has {len} values)"
        )),
    }
}

fn item_or_null(_: &mut Env<'_>, args: &[Vals]) -> Result<Vals, Stop> {
    Ok(match nth(args, "ItemOrNull")? {
        Some(Ok(v)) => Vals::One(v),
        _ => Vals::Null,
    })
}

/// The delimiter defaults to a space; a null delimiter joins with nothing (as documented).
fn join(_: &mut Env<'_>, args: &[Vals]) -> Result<Vals, Stop> {
    let Some(list) = args.first() else {
        return Ok(Vals::Null);
    };
    if list.is_null() {
        return Ok(Vals::Null);
    }
    let delim = match args.get(1) {
        None => " ".to_string(),
        Some(d) => match single(Some(d), "Join", 2)? {
            None => String::new(),
            Some(v) => text(v, "Join", 2)?.into_owned(),
        },
    };
    let mut out = String::new();
    for (i, v) in list.values().enumerate() {
        if i > 0 {
            out.push_str(&delim);
        }
        out.push_str(&text(v, "Join", 1)?);
        if out.len() > MAX_TEXT {
            return fail(format!("Join: result longer than {MAX_TEXT} bytes"));
        }
    }
    Ok(Vals::One(Value::String(out)))
}

fn remove_duplicates(env: &mut Env<'_>, args: &[Vals]) -> Result<Vals, Stop> {
    let Some(list) = args.first() else {
        return Ok(Vals::Null);
    };
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for v in list.values() {
        if seen.insert(v) {
            out.push(v.clone());
        }
    }
    env.list(out)
}

/// Splits every value of the first argument; `limit` caps the number of pieces per value,
/// the last piece keeping the rest (as .NET `String.Split(char[], count)`); a limit below 1
/// gives null. Empty pieces are kept.
fn split(env: &mut Env<'_>, args: &[Vals]) -> Result<Vals, Stop> {
    let Some(d) = single(args.get(1), "Split", 2)? else {
        return Ok(Vals::Null);
    };
    let d = text(d, "Split", 2)?;
    let mut chars = d.chars();
    let (Some(delim), None) = (chars.next(), chars.next()) else {
        return fail("Split: the delimiter must be exactly one character");
    };
    let limit = match single(args.get(2), "Split", 3)? {
        None => MAX_VALUES + 1,
        Some(l) => {
            let l = num(l, "Split", 3)?;
            if l < 1 {
                return Ok(Vals::Null);
            }
            usize::try_from(l).unwrap_or(usize::MAX).min(MAX_VALUES + 1)
        }
    };
    let mut out = Vec::new();
    if let Some(list) = args.first() {
        for v in list.values() {
            let t = text(v, "Split", 1)?;
            for piece in t.splitn(limit, delim) {
                out.push(Value::String(piece.to_string()));
                if out.len() > MAX_VALUES {
                    return fail(format!("Split: more than {MAX_VALUES} values"));
                }
            }
        }
    }
    env.list(out)
}

// ---- text --------------------------------------------------------------------------------

fn guid(_: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    s(uuid::Uuid::new_v4().to_string())
}

fn lcase(args: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    match a(args, 0) {
        None => Ok(None),
        Some(v) => s(text(v, "LCase", 1)?.to_lowercase()),
    }
}

fn ucase(args: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    match a(args, 0) {
        None => Ok(None),
        Some(v) => s(text(v, "UCase", 1)?.to_uppercase()),
    }
}

fn trim(args: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    match a(args, 0) {
        None => Ok(None),
        Some(v) => s(text(v, "Trim", 1)?.trim().to_string()),
    }
}

fn ltrim(args: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    match a(args, 0) {
        None => Ok(None),
        Some(v) => s(text(v, "LTrim", 1)?.trim_start().to_string()),
    }
}

fn rtrim(args: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    match a(args, 0) {
        None => Ok(None),
        Some(v) => s(text(v, "RTrim", 1)?.trim_end().to_string()),
    }
}

fn len(args: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    match a(args, 0) {
        None => Ok(None),
        Some(v) => n(text(v, "Len", 1)?.chars().count() as i64),
    }
}

/// Text and count for Left/Right/Mid/Pad: a null string reads as "" (as documented).
fn text_or_empty<'v>(v: Option<&'v Value>, func: &str) -> Result<std::borrow::Cow<'v, str>, Stop> {
    match v {
        None => Ok(std::borrow::Cow::Borrowed("")),
        Some(v) => text(v, func, 1),
    }
}

fn left(args: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    let t = text_or_empty(a(args, 0), "Left")?;
    let Some(k) = a(args, 1) else { return Ok(None) };
    let k = num(k, "Left", 2)?;
    if k < 0 {
        return s(t.into_owned());
    }
    let end = char_byte(&t, usize::try_from(k).unwrap_or(usize::MAX));
    s(t[..end].to_string())
}

fn right(args: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    let t = text_or_empty(a(args, 0), "Right")?;
    let Some(k) = a(args, 1) else { return Ok(None) };
    let k = num(k, "Right", 2)?;
    if k < 0 {
        return s(t.into_owned());
    }
    let total = t.chars().count();
    let skip = total.saturating_sub(usize::try_from(k).unwrap_or(usize::MAX));
    let start = char_byte(&t, skip);
    s(t[start..].to_string())
}

/// As documented: n = 0 gives ""; n < 0, start < 1 or start past the end give the input
/// unchanged; without n, everything from start.
fn mid(args: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    let t = text_or_empty(a(args, 0), "Mid")?;
    let Some(start) = a(args, 1) else {
        return Ok(None);
    };
    let start = num(start, "Mid", 2)?;
    let count = match args.get(2) {
        None => None,
        Some(None) => return Ok(None),
        Some(Some(c)) => Some(num(c, "Mid", 3)?),
    };
    let total = t.chars().count() as i64;
    if count == Some(0) {
        return s(String::new());
    }
    if count.is_some_and(|c| c < 0) || start < 1 || start > total {
        return s(t.into_owned());
    }
    let from = char_byte(&t, (start - 1) as usize);
    let to = match count {
        None => t.len(),
        Some(c) => {
            let end = (start - 1).saturating_add(c).min(total);
            char_byte(&t, end as usize)
        }
    };
    s(t[from..to].to_string())
}

fn pad(args: &[Option<&Value>], func: &str, at_left: bool) -> Result<Option<Value>, Stop> {
    let t = text_or_empty(a(args, 0), func)?;
    let Some(k) = a(args, 1) else { return Ok(None) };
    let k = num(k, func, 2)?;
    let Some(p) = a(args, 2) else {
        return fail(format!("{func}: the pad character cannot be null"));
    };
    let p = text(p, func, 3)?;
    let mut pc = p.chars();
    let (Some(pad_char), None) = (pc.next(), pc.next()) else {
        return fail(format!(
            "{func}: the pad character must be exactly one character"
        ));
    };
    if k > MAX_PAD {
        return fail(format!("{func}: length {k} is more than {MAX_PAD}"));
    }
    let have = t.chars().count() as i64;
    if have >= k {
        return s(t.into_owned());
    }
    let fill: String = std::iter::repeat_n(pad_char, (k - have) as usize).collect();
    s(if at_left {
        format!("{fill}{t}")
    } else {
        format!("{t}{fill}")
    })
}

fn pad_left(args: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    pad(args, "PadLeft", true)
}

fn pad_right(args: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    pad(args, "PadRight", false)
}

/// .NET `TextInfo.ToTitleCase` as AAD Connect uses it: each white-space-delimited word gets
/// an upper-case first letter and lower-case rest, except words written entirely in capitals,
/// which stay (Microsoft: "does not ... convert a word that is entirely uppercase, such as an
/// acronym"; hence their `PCase(LCase("TEST"))` example).
fn pcase(args: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    let Some(v) = a(args, 0) else { return Ok(None) };
    let t = text(v, "PCase", 1)?;
    let mut out = String::with_capacity(t.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        let all_caps =
            word.chars().any(char::is_uppercase) && !word.chars().any(char::is_lowercase);
        if all_caps {
            out.push_str(word);
        } else {
            let mut cs = word.chars();
            if let Some(first) = cs.next() {
                out.extend(first.to_uppercase());
                out.push_str(&cs.as_str().to_lowercase());
            }
        }
        word.clear();
    };
    for c in t.chars() {
        if c.is_whitespace() {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    s(out)
}

fn monikers(s: &str) -> String {
    s.replace("\\n", "\n")
        .replace("\\r", "\r")
        .replace("\\t", "\t")
}

/// An empty search string leaves the input unchanged.
fn replace(args: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    let Some(v) = a(args, 0) else { return Ok(None) };
    let t = text(v, "Replace", 1)?;
    let Some(old) = a(args, 1) else {
        return s(t.into_owned());
    };
    let old = monikers(&text(old, "Replace", 2)?);
    let new = match a(args, 2) {
        Some(x) => monikers(&text(x, "Replace", 3)?),
        None => String::new(),
    };
    if old.is_empty() {
        return s(t.into_owned());
    }
    let hits = t.matches(old.as_str()).count();
    let size = hits
        .checked_mul(new.len())
        .and_then(|g| g.checked_add(t.len()));
    if size.is_none_or(|sz| sz.saturating_sub(hits * old.len()) > MAX_TEXT) {
        return fail(format!("Replace: result longer than {MAX_TEXT} bytes"));
    }
    s(t.replace(old.as_str(), &new))
}

/// Parses a ReplaceChars pattern `s1:t1,s2:t2,...`. White space is ignored; each source is
/// exactly one character; targets may be empty. Microsoft's example writes its last entry
/// `ö,o` (no colon); we refuse an entry without a colon rather than guess.
fn parse_pattern(p: &str) -> Result<Vec<(char, String)>, String> {
    let compact: String = p.chars().filter(|c| !c.is_whitespace()).collect();
    let mut map = Vec::new();
    for entry in compact.split(',') {
        if entry.is_empty() {
            continue;
        }
        let Some((src, target)) = entry.split_once(':') else {
            return Err(format!("ReplaceChars entry {entry:?} has no ':'"));
        };
        let mut cs = src.chars();
        let (Some(c), None) = (cs.next(), cs.next()) else {
            return Err(format!(
                "ReplaceChars source {src:?} must be exactly one character"
            ));
        };
        map.push((c, target.to_string()));
    }
    Ok(map)
}

fn replace_chars(args: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    let Some(v) = a(args, 0) else { return Ok(None) };
    let t = text(v, "ReplaceChars", 1)?;
    let Some(p) = a(args, 1) else {
        return s(t.into_owned());
    };
    let map = match parse_pattern(&text(p, "ReplaceChars", 2)?) {
        Ok(m) => m,
        Err(e) => return fail(e),
    };
    let mut out = String::with_capacity(t.len());
    for c in t.chars() {
        match map.iter().find(|(from, _)| *from == c) {
            Some((_, to)) => out.push_str(to),
            None => out.push(c),
        }
        if out.len() > MAX_TEXT {
            return fail(format!("ReplaceChars: result longer than {MAX_TEXT} bytes"));
        }
    }
    s(out)
}

/// Words are the non-empty runs between delimiter characters (several delimiters in a row
/// do not make empty words: the reference's `Word("This,string!has&many separators",3,",!&#")`
/// is "has"). A null string or a number below 1 gives "".
fn word(args: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    let t = text_or_empty(a(args, 0), "Word")?;
    let Some(k) = a(args, 1) else { return Ok(None) };
    let k = num(k, "Word", 2)?;
    let delims: Vec<char> = match a(args, 2) {
        Some(d) => text(d, "Word", 3)?.chars().collect(),
        None => Vec::new(),
    };
    if k < 1 {
        return s(String::new());
    }
    let w = t
        .split(|c: char| delims.contains(&c))
        .filter(|w| !w.is_empty())
        .nth((k - 1) as usize)
        .unwrap_or_default();
    s(w.to_string())
}

/// Shared by InStr/InStrRev: (haystack, needle) folded for vbTextCompare.
fn compare_pair(args: &[Option<&Value>], func: &str) -> Result<Option<(String, String)>, Stop> {
    let (Some(h), Some(nd)) = (a(args, 0), a(args, 1)) else {
        return Ok(None);
    };
    let h = text(h, func, 1)?;
    let nd = text(nd, func, 2)?;
    let insensitive = choice(a(args, 3), COMPARE, func)? == 0 && a(args, 3).is_some();
    Ok(Some(if insensitive {
        (fold_str(&h), fold_str(&nd))
    } else {
        (h.into_owned(), nd.into_owned())
    }))
}

/// `start` below 1 is treated as 1 (VBA raises an error; a flow is better served by a
/// search from the beginning). An empty search string is found at `start`.
fn instr(args: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    let Some((h, nd)) = compare_pair(args, "InStr")? else {
        return Ok(None);
    };
    let start = match args.get(2) {
        None => 1,
        Some(None) => return Ok(None),
        Some(Some(v)) => num(v, "InStr", 3)?.max(1),
    };
    let total = h.chars().count() as i64;
    if start > total + 1 {
        return n(0);
    }
    if nd.is_empty() {
        return n(start);
    }
    let from = char_byte(&h, (start - 1) as usize);
    match h[from..].find(nd.as_str()) {
        Some(i) => n(char_pos(&h, from + i) + 1),
        None => n(0),
    }
}

/// `start` is the last position the match may end at; -1 or absent means the end.
fn instr_rev(args: &[Option<&Value>], _: i64) -> Result<Option<Value>, Stop> {
    let Some((h, nd)) = compare_pair(args, "InStrRev")? else {
        return Ok(None);
    };
    let total = h.chars().count() as i64;
    let start = match args.get(2) {
        None => total,
        Some(None) => return Ok(None),
        Some(Some(v)) => match num(v, "InStrRev", 3)? {
            -1 => total,
            x if x < 1 => return n(0),
            x => x.min(total),
        },
    };
    let end = char_byte(&h, start as usize);
    if nd.is_empty() {
        return n(start);
    }
    match h[..end].rfind(nd.as_str()) {
        Some(i) => n(char_pos(&h, i) + 1),
        None => n(0),
    }
}
