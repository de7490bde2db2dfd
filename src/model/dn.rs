//! Distinguished names per RFC 4514: parsed, escaped and compared as a directory would.
//!
//! Attribute types compare case-insensitively; values compare case-insensitively too, since
//! every naming attribute of AD and the usual LDAP ones (cn, ou, dc, uid, o, l, c) use
//! caseIgnoreMatch. Two spellings of one DN (`CN=A\,B` and `cn=a\2cb`) have the same
//! [`Dn::norm`] key.

use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a DN could not be parsed; `at` is the byte offset of the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid DN {dn:?} at byte {at}: {reason}")]
pub struct DnError {
    /// The DN text as given.
    pub dn: String,
    /// Byte offset where parsing stopped.
    pub at: usize,
    /// What was expected.
    pub reason: &'static str,
}

/// One attribute-value assertion inside an RDN, unescaped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ava {
    /// The attribute type as written (`CN`, `ou`, or an OID).
    pub attr: String,
    /// The value with escapes removed; `#hex` values keep their raw bytes.
    pub value: AvaValue,
}

/// An RDN value: text, or the BER bytes of a `#hex` form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AvaValue {
    /// An ordinary string value.
    Text(String),
    /// A `#`-prefixed hex value (the BER encoding, kept as bytes).
    Hex(Vec<u8>),
}

/// A parsed distinguished name. The empty DN (root DSE) is valid and has no RDNs.
#[derive(Clone)]
pub struct Dn {
    raw: String,
    norm: String,
    /// Start of each RDN in `raw` and in `norm`, so that parent() is a cheap slice.
    raw_bounds: Vec<usize>,
    norm_bounds: Vec<usize>,
}

impl Dn {
    /// Parses a DN in RFC 4514 string form (also accepting RFC 2253's `;` separator and
    /// spaces around separators, as old servers emit them).
    pub fn parse(text: &str) -> Result<Dn, DnError> {
        let rdns = parse_rdns(text)?;
        Ok(Dn::from_parsed(trim_unescaped(text), &rdns))
    }

    /// Builds a DN from RDNs, escaping each value canonically.
    pub fn from_rdns(rdns: &[Vec<Ava>]) -> Dn {
        let raw = rdns
            .iter()
            .map(|r| rdn_string(r, false))
            .collect::<Vec<_>>()
            .join(",");
        Dn::from_parsed(&raw, rdns)
    }

    fn from_parsed(raw_text: &str, rdns: &[Vec<Ava>]) -> Dn {
        let mut norm_bounds = Vec::with_capacity(rdns.len());
        let mut norm = String::with_capacity(raw_text.len());
        for (i, rdn) in rdns.iter().enumerate() {
            if i > 0 {
                norm.push(',');
            }
            norm_bounds.push(norm.len());
            norm.push_str(&rdn_string(rdn, true));
        }
        let raw_bounds = if rdns.is_empty() {
            Vec::new()
        } else {
            separators(raw_text)
        };
        Dn {
            raw: raw_text.to_string(),
            norm,
            raw_bounds,
            norm_bounds,
        }
    }

    /// The DN as the directory spelled it.
    pub fn as_str(&self) -> &str {
        &self.raw
    }

    /// The comparison key: lower-case types and values, canonical escapes, no spaces.
    pub fn norm(&self) -> &str {
        &self.norm
    }

    /// Whether this is the empty DN.
    pub fn is_root(&self) -> bool {
        self.raw_bounds.is_empty()
    }

    /// Number of RDNs.
    pub fn depth(&self) -> usize {
        self.raw_bounds.len()
    }

    /// The DN one level up; the root's parent is the root.
    pub fn parent(&self) -> Dn {
        if self.raw_bounds.len() <= 1 {
            return Dn::root();
        }
        let rb = self.raw_bounds[1];
        let nb = self.norm_bounds[1];
        Dn {
            raw: self.raw[rb..].to_string(),
            norm: self.norm[nb..].to_string(),
            raw_bounds: self.raw_bounds[1..].iter().map(|b| b - rb).collect(),
            norm_bounds: self.norm_bounds[1..].iter().map(|b| b - nb).collect(),
        }
    }

    /// The first RDN as written (e.g. `CN=Smith\, Ann`).
    pub fn rdn(&self) -> &str {
        match self.raw_bounds.get(1) {
            Some(&end) => self.raw[..end - 1]
                .trim_end_matches([' ', ',', ';'])
                .trim_end(),
            None => &self.raw,
        }
    }

    /// The unescaped value of the first AVA of the first RDN (`Smith, Ann`).
    pub fn rdn_value(&self) -> Option<String> {
        let rdns = parse_rdns(self.rdn()).ok()?;
        match &rdns.first()?.first()?.value {
            AvaValue::Text(t) => Some(t.clone()),
            AvaValue::Hex(_) => None,
        }
    }

    /// The root (empty) DN.
    pub fn root() -> Dn {
        Dn {
            raw: String::new(),
            norm: String::new(),
            raw_bounds: Vec::new(),
            norm_bounds: Vec::new(),
        }
    }

    /// Whether `self` equals `ancestor` or lies below it.
    pub fn is_within(&self, ancestor: &Dn) -> bool {
        if ancestor.is_root() {
            return true;
        }
        if self.norm.len() == ancestor.norm.len() {
            return self.norm == ancestor.norm;
        }
        self.norm.ends_with(&ancestor.norm)
            && self.norm.as_bytes()[self.norm.len() - ancestor.norm.len() - 1] == b','
            && self
                .norm_bounds
                .contains(&(self.norm.len() - ancestor.norm.len()))
    }

    /// The RDNs of `self` above `ancestor`, as written (`ou=Sales,ou=People`), or None when
    /// `self` is not within `ancestor`.
    pub fn relative_to(&self, ancestor: &Dn) -> Option<String> {
        if !self.is_within(ancestor) {
            return None;
        }
        let keep = self.depth() - ancestor.depth();
        if keep == 0 {
            return Some(String::new());
        }
        let end = self.raw_bounds.get(keep).copied().unwrap_or(self.raw.len());
        Some(
            self.raw[..end]
                .trim_end()
                .trim_end_matches([',', ';'])
                .trim_end()
                .to_string(),
        )
    }
}

impl PartialEq for Dn {
    fn eq(&self, other: &Self) -> bool {
        self.norm == other.norm
    }
}
impl Eq for Dn {}
impl Hash for Dn {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.norm.hash(state)
    }
}
impl PartialOrd for Dn {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Dn {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.norm.cmp(&other.norm)
    }
}

impl fmt::Display for Dn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}
impl fmt::Debug for Dn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Dn({:?})", self.raw)
    }
}

/// Start offsets of the RDNs in a DN string: after each unescaped, unquoted `,` or `;`
/// (and the spaces that follow it).
fn separators(text: &str) -> Vec<usize> {
    let bytes = text.as_bytes();
    let mut bounds = vec![0];
    let mut in_quotes = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b'"' => in_quotes = !in_quotes,
            b',' | b';' if !in_quotes => {
                let mut start = i + 1;
                while start < bytes.len() && bytes[start] == b' ' {
                    start += 1;
                }
                bounds.push(start);
            }
            _ => {}
        }
        i += 1;
    }
    bounds
}

// Stored as (as written, normalised): decoding a record then costs no DN parsing, which
// matters for groups with thousands of member references.
impl Serialize for Dn {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (&self.raw, &self.norm).serialize(s)
    }
}
impl<'de> Deserialize<'de> for Dn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (raw, norm) = <(String, String)>::deserialize(d)?;
        if raw.is_empty() {
            return Ok(Dn::root());
        }
        let raw_bounds = separators(&raw);
        let norm_bounds = separators(&norm);
        if raw_bounds.len() != norm_bounds.len() {
            return Dn::parse(&raw).map_err(serde::de::Error::custom);
        }
        Ok(Dn {
            raw,
            norm,
            raw_bounds,
            norm_bounds,
        })
    }
}

/// Trims surrounding spaces that are not part of a value (an escaped trailing space is).
fn trim_unescaped(text: &str) -> &str {
    let text = text.trim_start_matches(' ');
    let mut end = text.len();
    while end > 0 && text.as_bytes()[end - 1] == b' ' {
        let backslashes = text.as_bytes()[..end - 1]
            .iter()
            .rev()
            .take_while(|&&c| c == b'\\')
            .count();
        if backslashes % 2 == 1 {
            break;
        }
        end -= 1;
    }
    &text[..end]
}

/// Escapes a string for use as an RDN value (RFC 4514 §2.4).
pub fn escape_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 4);
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i == last => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\{b:02x}"));
                }
            }
            c => out.push(c),
        }
    }
    out
}

/// Naming attributes whose values compare case-sensitively: SCIM's `id` and `externalId`
/// (caseExact in RFC 7643; a base64 sourceAnchor differs from another only in case).
fn case_exact(attr: &str) -> bool {
    attr.eq_ignore_ascii_case("externalId") || attr.eq_ignore_ascii_case("id")
}

fn rdn_string(rdn: &[Ava], normalised: bool) -> String {
    let mut parts: Vec<String> = rdn
        .iter()
        .map(|ava| {
            let attr = if normalised {
                ava.attr.to_ascii_lowercase()
            } else {
                ava.attr.clone()
            };
            let value = match &ava.value {
                AvaValue::Text(t) if normalised && !case_exact(&ava.attr) => {
                    escape_value(&t.to_lowercase())
                }
                AvaValue::Text(t) => escape_value(t),
                AvaValue::Hex(bytes) => {
                    let mut s = String::from("#");
                    for b in bytes {
                        s.push_str(&format!("{b:02x}"));
                    }
                    s
                }
            };
            format!("{attr}={value}")
        })
        .collect();
    if normalised {
        parts.sort();
    }
    parts.join("+")
}

fn err(dn: &str, at: usize, reason: &'static str) -> DnError {
    DnError {
        dn: dn.to_string(),
        at,
        reason,
    }
}

fn parse_rdns(text: &str) -> Result<Vec<Vec<Ava>>, DnError> {
    let b = text.as_bytes();
    let mut i = 0;
    let mut rdns = Vec::new();
    let skip_spaces = |i: &mut usize| {
        while *i < b.len() && b[*i] == b' ' {
            *i += 1;
        }
    };
    skip_spaces(&mut i);
    if i == b.len() {
        return Ok(rdns);
    }
    let mut rdn = Vec::new();
    loop {
        skip_spaces(&mut i);
        // attribute type: descr or numeric OID
        let start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'-' || b[i] == b'.') {
            i += 1;
        }
        if i == start {
            return Err(err(text, i, "expected an attribute type"));
        }
        let attr = text[start..i].to_string();
        let first = attr.as_bytes()[0];
        let oid_like = first.is_ascii_digit();
        if oid_like && !attr.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
            return Err(err(
                text,
                start,
                "an attribute type starting with a digit must be an OID",
            ));
        }
        if !oid_like && attr.contains('.') {
            return Err(err(text, start, "attribute type contains '.'"));
        }
        skip_spaces(&mut i);
        if i >= b.len() || b[i] != b'=' {
            return Err(err(text, i, "expected '=' after the attribute type"));
        }
        i += 1;
        skip_spaces(&mut i);
        let value = if i < b.len() && b[i] == b'#' {
            i += 1;
            let hs = i;
            while i < b.len() && b[i].is_ascii_hexdigit() {
                i += 1;
            }
            if (i - hs) == 0 || (i - hs) % 2 != 0 {
                return Err(err(
                    text,
                    hs,
                    "a '#' value needs an even number of hex digits",
                ));
            }
            let bytes = (hs..i)
                .step_by(2)
                .map(|k| u8::from_str_radix(&text[k..k + 2], 16).unwrap_or(0))
                .collect();
            skip_spaces(&mut i);
            AvaValue::Hex(bytes)
        } else if i < b.len() && b[i] == b'"' {
            // RFC 2253 quoted value
            i += 1;
            let mut out = Vec::new();
            loop {
                if i >= b.len() {
                    return Err(err(text, i, "unterminated quoted value"));
                }
                match b[i] {
                    b'"' => {
                        i += 1;
                        break;
                    }
                    b'\\' if i + 1 < b.len() => {
                        out.push(b[i + 1]);
                        i += 2;
                    }
                    c => {
                        out.push(c);
                        i += 1;
                    }
                }
            }
            skip_spaces(&mut i);
            AvaValue::Text(
                String::from_utf8(out).map_err(|_| err(text, i, "value is not valid UTF-8"))?,
            )
        } else {
            let mut out: Vec<u8> = Vec::new();
            // Trailing unescaped spaces are not part of the value; remember where the last
            // significant byte ended.
            let mut significant = 0;
            while i < b.len() {
                match b[i] {
                    b',' | b';' | b'+' => break,
                    b'\\' => {
                        if i + 1 < b.len() && b[i + 1].is_ascii_hexdigit() {
                            if i + 2 >= b.len() || !b[i + 2].is_ascii_hexdigit() {
                                return Err(err(
                                    text,
                                    i,
                                    "'\\' must be followed by a special character or two hex digits",
                                ));
                            }
                            let byte = u8::from_str_radix(&text[i + 1..i + 3], 16)
                                .map_err(|_| err(text, i, "bad hex escape"))?;
                            out.push(byte);
                            i += 3;
                        } else if i + 1 < b.len() {
                            let c = b[i + 1];
                            if !matches!(
                                c,
                                b' ' | b'"'
                                    | b'#'
                                    | b'+'
                                    | b','
                                    | b';'
                                    | b'<'
                                    | b'='
                                    | b'>'
                                    | b'\\'
                            ) {
                                return Err(err(
                                    text,
                                    i,
                                    "'\\' must be followed by a special character or two hex digits",
                                ));
                            }
                            out.push(c);
                            i += 2;
                        } else {
                            return Err(err(text, i, "DN ends with a lone '\\'"));
                        }
                        significant = out.len();
                    }
                    c => {
                        out.push(c);
                        if c != b' ' {
                            significant = out.len();
                        }
                        i += 1;
                    }
                }
            }
            out.truncate(significant);
            AvaValue::Text(
                String::from_utf8(out).map_err(|_| err(text, i, "value is not valid UTF-8"))?,
            )
        };
        rdn.push(Ava { attr, value });
        if i >= b.len() {
            rdns.push(rdn);
            break;
        }
        match b[i] {
            b'+' => {
                i += 1;
            }
            b',' | b';' => {
                rdns.push(std::mem::take(&mut rdn));
                i += 1;
                skip_spaces(&mut i);
                if i >= b.len() {
                    return Err(err(text, i, "DN ends with a separator"));
                }
            }
            _ => return Err(err(text, i, "expected ',' or '+'")),
        }
    }
    Ok(rdns)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dn(s: &str) -> Dn {
        match Dn::parse(s) {
            Ok(d) => d,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn spellings_of_one_dn_compare_equal() {
        assert_eq!(
            dn("CN=Smith\\, Ann,OU=Sales,DC=corp"),
            dn("cn=smith\\2c ann, ou=sales,dc=CORP")
        );
        assert_eq!(dn("cn=a+sn=b,dc=x"), dn("SN=B+CN=A,DC=X"));
        assert_ne!(dn("cn=a,dc=x"), dn("cn=a,dc=y"));
        assert_eq!(dn("cn=\"Smith, Ann\",dc=x"), dn("cn=Smith\\, Ann,dc=x"));
    }

    #[test]
    fn scim_ids_keep_their_case() {
        assert_ne!(
            dn("externalId=AbC=,ou=Users"),
            dn("externalId=aBc=,ou=Users")
        );
        assert_eq!(
            dn("EXTERNALID=AbC=,OU=users"),
            dn("externalId=AbC=,ou=Users")
        );
        assert_ne!(dn("id=Xy,ou=Users"), dn("id=xY,ou=Users"));
    }

    #[test]
    fn samba_hex_escapes_are_understood() {
        assert_eq!(
            dn("CN=a\\3Db\\3Bc,DC=x").rdn_value().as_deref(),
            Some("a=b;c")
        );
    }

    #[test]
    fn parent_and_within() {
        let d = dn("CN=Ann\\, B,OU=Sales,OU=People,DC=corp,DC=example");
        assert_eq!(d.parent(), dn("ou=sales,ou=people,dc=corp,dc=example"));
        assert_eq!(d.rdn(), "CN=Ann\\, B");
        assert_eq!(d.rdn_value().as_deref(), Some("Ann, B"));
        assert!(d.is_within(&dn("dc=example")));
        assert!(!d.is_within(&dn("dc=ample")));
        assert_eq!(
            d.parent().relative_to(&dn("dc=corp,dc=example")).as_deref(),
            Some("OU=Sales,OU=People")
        );
        assert_eq!(dn("dc=x").parent(), Dn::root());
    }

    #[test]
    fn non_ascii_and_utf8_escapes() {
        assert_eq!(dn("cn=Jürgen,dc=x"), dn("CN=J\\c3\\bcrgen,DC=X"));
        assert_eq!(dn("cn=ÅSA,dc=x"), dn("cn=åsa,dc=x"));
    }

    #[test]
    fn escaping_round_trips() {
        for v in [" lead", "trail ", "#hash", "a,b+c;d<e>f\"g\\h=i", "plain"] {
            let d = Dn::from_rdns(&[vec![Ava {
                attr: "cn".into(),
                value: AvaValue::Text(v.into()),
            }]]);
            assert_eq!(
                dn(d.as_str()).rdn_value().as_deref(),
                Some(v),
                "{}",
                d.as_str()
            );
        }
    }

    #[test]
    fn stored_form_round_trips_without_parsing() {
        for text in [
            "CN=Smith\\, Ann,OU=Sales;DC=x",
            "cn=a+sn=b, dc=y",
            "cn=\"q,uoted\",dc=z",
            "",
        ] {
            let d = dn(text);
            let bytes = postcard::to_stdvec(&d).unwrap_or_default();
            let back: Dn = postcard::from_bytes(&bytes).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(back.as_str(), d.as_str());
            assert_eq!(back.norm(), d.norm());
            assert_eq!(back.parent().norm(), d.parent().norm());
            assert_eq!(back.rdn(), d.rdn());
        }
    }

    #[test]
    fn random_input_never_panics_and_accepted_dns_round_trip() {
        // xorshift: reproducible without a crate; tokens bias towards the tricky parts.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let tokens = [
            "cn", "OU", "dc", "2.5.4.3", "=", ",", ";", "+", "\\", "\\,", "\\2c", "\\c3\\bc", "#",
            "#04", "\"", " ", "a", "Ä", "李", "\\ ", "\\#", "x=y", "\u{0}", "<", ">",
        ];
        let mut accepted = 0;
        for _ in 0..20_000 {
            let n = (next() % 12) as usize;
            let text: String = (0..n)
                .map(|_| tokens[(next() % tokens.len() as u64) as usize])
                .collect();
            let Ok(d) = Dn::parse(&text) else { continue };
            accepted += 1;
            // What we print parses back to the same DN, and so does the normal form.
            let again = Dn::parse(d.as_str()).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(again, d, "{text:?}");
            let normal = Dn::parse(d.norm()).unwrap_or_else(|e| panic!("{text:?} norm: {e}"));
            assert_eq!(normal.norm(), d.norm(), "{text:?}");
            let _ = (d.parent(), d.rdn(), d.rdn_value(), d.depth());
        }
        assert!(accepted > 1_000, "only {accepted} random DNs parsed");
    }

    #[test]
    fn malformed_dns_are_refused() {
        for bad in ["cn", "cn=a,", "=a", "cn=a\\", "cn=a\\q", "1cn=a", "cn=#abc"] {
            assert!(Dn::parse(bad).is_err(), "{bad}");
        }
        assert!(Dn::parse("").is_ok());
    }
}
