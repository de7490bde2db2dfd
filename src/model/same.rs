//! Value equivalence: whether a value a directory hands back is the value that was sent,
//! allowing for the normalisation directories do (a boolean sent as `"True"` comes back as
//! JSON `true`, an integer as its digits, a date in another notation, binary as base64, a
//! DN in another case or escaping). The outbound diff and the confirming import compare
//! with this, so a quiet cycle writes nothing; text that differs in any other way, case
//! included, stays a real difference.

use base64::Engine;

use super::{Attributes, Dn, RefTarget, Value, ValueSet, civil_from_days};

impl Value {
    /// Whether `self` and `other` are the same value in different notations.
    pub fn same_as(&self, other: &Value) -> bool {
        if self == other {
            return true;
        }
        match (self, other) {
            (Value::String(s), v) | (v, Value::String(s)) => text_is(s, v),
            (Value::Boolean(b), Value::Integer(i)) | (Value::Integer(i), Value::Boolean(b)) => {
                (*i != 0) == *b
            }
            (Value::Reference(RefTarget::Dn(a)), Value::Reference(RefTarget::Dn(b))) => a == b,
            // Links held by anchor are the same link whatever DN they were last seen at.
            (
                Value::Reference(RefTarget::Anchored { anchor: a, .. }),
                Value::Reference(RefTarget::Anchored { anchor: b, .. }),
            ) => a == b,
            (
                Value::Reference(RefTarget::Dn(a)),
                Value::Reference(RefTarget::Anchored { dn: b, .. }),
            )
            | (
                Value::Reference(RefTarget::Anchored { dn: b, .. }),
                Value::Reference(RefTarget::Dn(a)),
            ) => a == b,
            _ => false,
        }
    }
}

/// Whether the text `s` is a notation of the typed value `v`.
fn text_is(s: &str, v: &Value) -> bool {
    let t = s.trim();
    match v {
        Value::String(o) => o == s,
        Value::Boolean(b) => parse_bool(t) == Some(*b),
        Value::Integer(i) => t.parse::<i64>().ok() == Some(*i),
        Value::DateTime(secs) => parse_time(t) == Some(*secs),
        Value::Binary(b) => {
            base64::engine::general_purpose::STANDARD
                .decode(t)
                .ok()
                .as_ref()
                == Some(b)
        }
        Value::Reference(RefTarget::Dn(dn) | RefTarget::Anchored { dn, .. }) => {
            Dn::parse(t).ok().as_ref() == Some(dn)
        }
        Value::Reference(RefTarget::Mv(_)) => false,
    }
}

fn parse_bool(t: &str) -> Option<bool> {
    match t.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

/// Unix seconds of an RFC 3339 date (`2026-11-26T04:50:51Z`, with a fraction or an
/// offset) or an LDAP GeneralizedTime (`20261126045051.0Z`); fractions are dropped, as
/// [`Value::DateTime`] holds whole seconds.
pub fn parse_time(t: &str) -> Option<i64> {
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    let (fields, rest) = if digits == 14 {
        let n = |a: usize, b: usize| t.get(a..b)?.parse::<i64>().ok();
        (
            [
                n(0, 4)?,
                n(4, 6)?,
                n(6, 8)?,
                n(8, 10)?,
                n(10, 12)?,
                n(12, 14)?,
            ],
            &t[14..],
        )
    } else {
        let b = t.as_bytes();
        if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
            return None;
        }
        let n = |a: usize, z: usize| t.get(a..z)?.parse::<i64>().ok();
        (
            [
                n(0, 4)?,
                n(5, 7)?,
                n(8, 10)?,
                n(11, 13)?,
                n(14, 16)?,
                n(17, 19)?,
            ],
            t.get(19..)?,
        )
    };
    let [y, mo, d, h, mi, s] = fields;
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let rest = match rest.strip_prefix(['.', ',']) {
        Some(r) => r.trim_start_matches(|c: char| c.is_ascii_digit()),
        None => rest,
    };
    let offset = match rest {
        "Z" | "z" => 0,
        r if r.len() >= 3 && (r.starts_with('+') || r.starts_with('-')) => {
            let sign = if r.starts_with('-') { -1 } else { 1 };
            let hm: String = r[1..].chars().filter(char::is_ascii_digit).collect();
            let oh = hm.get(0..2)?.parse::<i64>().ok()?;
            let om = hm
                .get(2..4)
                .and_then(|m| m.parse::<i64>().ok())
                .unwrap_or(0);
            sign * (oh * 3600 + om * 60)
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    // Check the day exists (no 31 February) by going back to the calendar.
    if civil_from_days(days) != (y, mo as u32, d as u32) {
        return None;
    }
    Some(days * 86_400 + h * 3600 + mi * 60 + s - offset)
}

/// (year, month, day) → days since 1970-01-01; the inverse of [`civil_from_days`].
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl ValueSet {
    /// Values of `self` with no equivalent in `other`.
    pub fn unmatched<'a>(&'a self, other: &'a ValueSet) -> impl Iterator<Item = &'a Value> + 'a {
        self.iter()
            .filter(move |v| !other.contains(v) && !other.iter().any(|o| v.same_as(o)))
    }

    /// Whether both sets hold the same values, up to notation.
    pub fn same_as(&self, other: &ValueSet) -> bool {
        self == other
            || (self.unmatched(other).next().is_none() && other.unmatched(self).next().is_none())
    }
}

impl Attributes {
    /// The attributes whose values differ for real between `self` and `other`, looking
    /// only at the names `self` holds (what was sent), or at both sides when `both`.
    pub fn differences(&self, other: &Attributes, both: bool) -> Vec<super::AttrName> {
        let empty = ValueSet::new();
        let mut out: Vec<super::AttrName> = self
            .iter()
            .filter(|(name, v)| !v.same_as(other.get(name.key()).unwrap_or(&empty)))
            .map(|(name, _)| name.clone())
            .collect();
        if both {
            out.extend(
                other
                    .iter()
                    .filter(|(name, _)| self.get(name.key()).is_none())
                    .map(|(name, _)| name.clone()),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dn(s: &str) -> Value {
        match Dn::parse(s) {
            Ok(d) => Value::Reference(RefTarget::Dn(d)),
            Err(e) => panic!("{s}: {e}"),
        }
    }

    #[test]
    fn notations_of_one_value_are_the_same() {
        let same = [
            (Value::str("True"), Value::Boolean(true)),
            (Value::str("FALSE"), Value::Boolean(false)),
            (Value::Integer(1), Value::Boolean(true)),
            (Value::Integer(42), Value::str("42")),
            (Value::Integer(-7), Value::str(" -7")),
            (
                Value::DateTime(1_764_132_651),
                Value::str("2025-11-26T04:50:51Z"),
            ),
            (
                Value::DateTime(1_764_132_651),
                Value::str("2025-11-26T04:50:51.000+00:00"),
            ),
            (
                Value::DateTime(1_764_132_651),
                Value::str("2025-11-26T05:50:51+01:00"),
            ),
            (
                Value::DateTime(1_764_132_651),
                Value::str("20251126045051.0Z"),
            ),
            (
                Value::DateTime(1_764_132_651),
                Value::str("20251126045051Z"),
            ),
            (Value::Binary(vec![0, 1, 2]), Value::str("AAEC")),
            (
                dn("CN=Ann Lee,OU=Staff,DC=corp"),
                dn("cn=ann lee, ou=staff,dc=CORP"),
            ),
            (dn("CN=a\\3Bb,DC=corp"), dn("cn=a\\;b,dc=corp")),
            (dn("cn=x,dc=corp"), Value::str("CN=X,DC=corp")),
        ];
        for (a, b) in same {
            assert!(a.same_as(&b), "{a:?} ≡ {b:?}");
            assert!(b.same_as(&a), "{b:?} ≡ {a:?}");
        }
    }

    #[test]
    fn real_differences_stay_different() {
        let differ = [
            (Value::str("Ann"), Value::str("ann")),
            (Value::str("yes please"), Value::Boolean(true)),
            (Value::Boolean(true), Value::Boolean(false)),
            (Value::Integer(42), Value::str("42.0")),
            (
                Value::DateTime(1_764_132_651),
                Value::str("2025-11-26T04:50:52Z"),
            ),
            (Value::DateTime(0), Value::str("1970-02-31T00:00:00Z")),
            (Value::Binary(vec![0, 1, 2]), Value::str("AAED")),
            (dn("cn=x,dc=corp"), dn("cn=y,dc=corp")),
        ];
        for (a, b) in differ {
            assert!(!a.same_as(&b), "{a:?} ≢ {b:?}");
        }
    }

    #[test]
    fn sets_match_up_to_notation() {
        let sent: ValueSet = [Value::Integer(1), Value::str("x")].into_iter().collect();
        let back: ValueSet = [Value::str("1"), Value::str("x")].into_iter().collect();
        assert!(sent.same_as(&back));
        let more: ValueSet = [Value::str("1"), Value::str("x"), Value::str("y")]
            .into_iter()
            .collect();
        assert!(!sent.same_as(&more));
        assert_eq!(
            more.unmatched(&sent).collect::<Vec<_>>(),
            vec![&Value::str("y")]
        );
    }
}
