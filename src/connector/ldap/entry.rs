//! LDAP entries as they come off the wire, decoded without panics, and turned into model
//! objects: binary and text values, DN references, anchors, structural classes and
//! ranged (`member;range=0-1499`) attributes.

use lber::structure::{PL, StructureTag};

use crate::config::{LdapConfig, LdapFlavor};
use crate::model::{Anchor, AttrName, Attributes, Dn, ImportedObject, RefTarget, Value};

/// One attribute as the server named it (options such as `;range=` included) with its
/// raw values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawAttr {
    /// The attribute description, e.g. `member;range=0-999`.
    pub name: String,
    /// The values' octets.
    pub values: Vec<Vec<u8>>,
}

/// A search result entry, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawEntry {
    /// The DN as the server wrote it.
    pub dn: String,
    /// Its attributes.
    pub attrs: Vec<RawAttr>,
}

impl RawEntry {
    /// The values of `name` (exact attribute, no options), or an empty slice.
    pub fn values(&self, name: &str) -> &[Vec<u8>] {
        self.attrs
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
            .map_or(&[], |a| &a.values)
    }

    /// The first value of `name` as text.
    pub fn text(&self, name: &str) -> Option<String> {
        self.values(name)
            .first()
            .and_then(|v| String::from_utf8(v.clone()).ok())
    }
}

fn octets(t: StructureTag) -> Option<Vec<u8>> {
    match t.payload {
        PL::P(v) => Some(v),
        PL::C(_) => None,
    }
}

fn children(t: StructureTag) -> Option<Vec<StructureTag>> {
    match t.payload {
        PL::C(v) => Some(v),
        PL::P(_) => None,
    }
}

/// Decodes a SearchResultEntry (application tag 4); None when it is malformed.
pub fn decode_entry(t: StructureTag) -> Option<RawEntry> {
    if t.id != 4 {
        return None;
    }
    let mut parts = children(t)?.into_iter();
    let dn = String::from_utf8(octets(parts.next()?)?).ok()?;
    // The extended-DN control (asked of AD) writes the entry's own DN as
    // `<GUID=…>;<SID=…>;DN` too; the GUID is in objectGUID already.
    let dn = match split_extended(&dn) {
        Some((_, plain)) => plain.to_string(),
        None => dn,
    };
    let mut attrs = Vec::new();
    for pa in children(parts.next()?)? {
        let mut pa = children(pa)?.into_iter();
        let name = String::from_utf8(octets(pa.next()?)?).ok()?;
        let values = children(pa.next()?)?
            .into_iter()
            .map(octets)
            .collect::<Option<Vec<_>>>()?;
        attrs.push(RawAttr { name, values });
    }
    Some(RawEntry { dn, attrs })
}

/// Splits an AD extended DN (`<GUID=…>;<SID=…>;CN=…`, as the extended-DN control writes
/// DN-syntax values) into the object's GUID, as the 16 octets of its objectGUID, and the
/// plain DN. None when the text has no extended components (an RFC 4514 DN never starts
/// with `<`). The GUID is the string form (control flag 1) or 32 hex digits of the octets
/// (flag 0); a component list without a GUID gives None as the GUID.
pub fn split_extended(text: &str) -> Option<(Option<[u8; 16]>, &str)> {
    if !text.starts_with('<') {
        return None;
    }
    let mut rest = text;
    let mut guid = None;
    while let Some(inner) = rest.strip_prefix('<') {
        let end = inner.find('>')?;
        let component = &inner[..end];
        rest = inner[end + 1..]
            .strip_prefix(';')
            .unwrap_or(&inner[end + 1..]);
        let Some((kind, value)) = component.split_once('=') else {
            continue;
        };
        if kind.eq_ignore_ascii_case("GUID") {
            guid = parse_guid(value);
        }
    }
    Some((guid, rest))
}

fn parse_guid(value: &str) -> Option<[u8; 16]> {
    if value.len() == 32 && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        let mut out = [0u8; 16];
        for (i, o) in out.iter_mut().enumerate() {
            *o = u8::from_str_radix(&value[2 * i..2 * i + 2], 16).ok()?;
        }
        return Some(out);
    }
    // objectGUID stores the first three fields little-endian.
    uuid::Uuid::parse_str(value).ok().map(|u| u.to_bytes_le())
}

/// Decodes an IntermediateResponse (application tag 25) into (name, value).
pub fn decode_intermediate(t: StructureTag) -> Option<(String, Vec<u8>)> {
    if t.id != 25 {
        return None;
    }
    let mut name = String::new();
    let mut value = Vec::new();
    for c in children(t)? {
        match c.id {
            0 => name = String::from_utf8(octets(c)?).ok()?,
            1 => value = octets(c)?,
            _ => {}
        }
    }
    Some((name, value))
}

/// A `;range=low-high` option on an attribute description.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    /// First value index.
    pub low: u64,
    /// Last value index, None for `*` (the last chunk).
    pub high: Option<u64>,
}

/// Splits `member;range=0-999` into ("member", Some(range)); other options are dropped
/// (`;binary`).
pub fn split_range(desc: &str) -> (&str, Option<Range>) {
    let mut parts = desc.split(';');
    let base = parts.next().unwrap_or(desc);
    let mut range = None;
    for opt in parts {
        if let Some(r) = opt
            .strip_prefix("range=")
            .or_else(|| opt.strip_prefix("Range="))
        {
            if let Some((lo, hi)) = r.split_once('-') {
                if let Ok(low) = lo.parse() {
                    let high = if hi == "*" { None } else { hi.parse().ok() };
                    if hi == "*" || high.is_some() {
                        range = Some(Range { low, high });
                    }
                }
            }
        }
    }
    (base, range)
}

/// How entries of one connector become model objects.
pub struct Mapper {
    flavor: LdapFlavor,
    classes: Vec<String>,
    excluded: Vec<AttrName>,
    references: Vec<AttrName>,
    binary: Vec<AttrName>,
}

/// Why an entry cannot be taken (names the entry and the cause).
#[derive(Debug, PartialEq, Eq)]
pub struct MapError(pub String);

impl Mapper {
    /// A mapper for this connector's settings.
    pub fn new(cfg: &LdapConfig) -> Self {
        Mapper {
            flavor: cfg.flavor,
            classes: cfg.object_classes.clone(),
            excluded: cfg.exclude_attributes.clone(),
            references: cfg.reference_attributes.clone(),
            binary: cfg.binary_attributes.clone(),
        }
    }

    /// The attribute holding the anchor.
    pub fn anchor_attr(&self) -> &'static str {
        match self.flavor {
            LdapFlavor::Ad => "objectGUID",
            LdapFlavor::Ldap => "entryUUID",
        }
    }

    /// The anchor of an entry: objectGUID's 16 octets (AD) or entryUUID's text (LDAP).
    pub fn anchor(&self, e: &RawEntry) -> Result<Anchor, MapError> {
        let v = e.values(self.anchor_attr()).first().ok_or_else(|| {
            MapError(format!(
                "{}: no {} (is it readable?)",
                e.dn,
                self.anchor_attr()
            ))
        })?;
        match self.flavor {
            LdapFlavor::Ad if v.len() == 16 => Ok(Anchor::new(v.clone())),
            LdapFlavor::Ad => Err(MapError(format!(
                "{}: objectGUID has {} octets, not 16",
                e.dn,
                v.len()
            ))),
            LdapFlavor::Ldap => {
                let s = String::from_utf8(v.clone())
                    .map_err(|_| MapError(format!("{}: entryUUID is not text", e.dn)))?;
                Ok(Anchor::new(s.to_ascii_lowercase().into_bytes()))
            }
        }
    }

    /// The configured structural class of an entry, or None when it is not one we import.
    pub fn class(&self, e: &RawEntry) -> Option<String> {
        let classes = e.values("objectClass");
        let has = |c: &str| classes.iter().any(|v| v.eq_ignore_ascii_case(c.as_bytes()));
        let structural = match self.flavor {
            // AD lists the class hierarchy from top to the most derived class.
            LdapFlavor::Ad => classes
                .last()
                .and_then(|v| String::from_utf8(v.clone()).ok()),
            LdapFlavor::Ldap => e.text("structuralObjectClass"),
        };
        if let Some(s) = structural {
            return self
                .classes
                .iter()
                .find(|c| c.eq_ignore_ascii_case(&s))
                .cloned();
        }
        self.classes.iter().find(|c| has(c)).cloned()
    }

    /// Whether an attribute is dropped on import.
    pub fn excluded(&self, name: &str) -> bool {
        self.excluded.iter().any(|a| a.is(name))
            || name.eq_ignore_ascii_case("parentGUID")
            || name.eq_ignore_ascii_case("structuralObjectClass")
    }

    /// One raw value as a model value for attribute `name`.
    pub fn value(&self, name: &str, raw: &[u8]) -> Value {
        if self.binary.iter().any(|a| a.is(name)) {
            return Value::Binary(raw.to_vec());
        }
        match std::str::from_utf8(raw) {
            Ok(s) if self.references.iter().any(|a| a.is(name)) => {
                // A link read with the extended-DN control is held by the target's
                // objectGUID, as AD itself holds it.
                let (guid, text) = match split_extended(s) {
                    Some((guid, plain)) => (guid, plain),
                    None => (None, s),
                };
                match (Dn::parse(text), guid) {
                    (Ok(dn), Some(g)) if self.flavor == LdapFlavor::Ad => {
                        Value::Reference(RefTarget::Anchored {
                            anchor: Anchor::new(g.to_vec()),
                            dn,
                        })
                    }
                    (Ok(dn), _) => Value::Reference(RefTarget::Dn(dn)),
                    (Err(_), _) => Value::String(s.to_string()),
                }
            }
            // Other DN-syntax attributes (distinguishedName, objectCategory) come with the
            // control's components too; they stay the DN text they always were.
            Ok(s) if self.flavor == LdapFlavor::Ad => match split_extended(s) {
                Some((_, plain)) if Dn::parse(plain).is_ok() => Value::String(plain.to_string()),
                _ => Value::String(s.to_string()),
            },
            Ok(s) => Value::String(s.to_string()),
            Err(_) => Value::Binary(raw.to_vec()),
        }
    }

    /// The model attributes of an entry (ranged attributes under their base name, values
    /// merged), with excluded attributes dropped.
    pub fn attributes(&self, e: &RawEntry) -> Attributes {
        let mut out = Attributes::new();
        for a in &e.attrs {
            let (base, _) = split_range(&a.name);
            if self.excluded(base) {
                continue;
            }
            let name = AttrName::new(base);
            for v in &a.values {
                out.add(&name, self.value(base, v));
            }
        }
        out
    }

    /// A whole entry as an imported object; None when its class is not imported.
    pub fn object(&self, e: &RawEntry) -> Result<Option<ImportedObject>, MapError> {
        let Some(object_class) = self.class(e) else {
            return Ok(None);
        };
        let anchor = self.anchor(e)?;
        let dn = Dn::parse(&e.dn).map_err(|err| {
            MapError(format!(
                "{}: bad DN ({} at byte {})",
                e.dn, err.reason, err.at
            ))
        })?;
        let attrs = self.attributes(e);
        Ok(Some(ImportedObject {
            anchor,
            dn,
            object_class,
            attrs,
        }))
    }
}

/// An objectSid in its string form `S-1-5-21-…`.
pub fn sid_string(b: &[u8]) -> Option<String> {
    if b.len() < 8 || b[0] != 1 {
        return None;
    }
    let count = b[1] as usize;
    if b.len() != 8 + 4 * count {
        return None;
    }
    let mut auth: u64 = 0;
    for &x in &b[2..8] {
        auth = (auth << 8) | x as u64;
    }
    let mut s = format!("S-1-{auth}");
    for i in 0..count {
        let o = 8 + 4 * i;
        let sub = u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        s.push_str(&format!("-{sub}"));
    }
    Some(s)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(
            split_range("member;range=0-999"),
            (
                "member",
                Some(Range {
                    low: 0,
                    high: Some(999)
                })
            )
        );
        assert_eq!(
            split_range("member;range=1000-*"),
            (
                "member",
                Some(Range {
                    low: 1000,
                    high: None
                })
            )
        );
        assert_eq!(split_range("member"), ("member", None));
        assert_eq!(
            split_range("userCertificate;binary"),
            ("userCertificate", None)
        );
        assert_eq!(split_range("member;range=x-1"), ("member", None));
    }

    #[test]
    fn extended_dns_split_into_guid_and_dn() {
        let text = "<GUID=1ae01076-866f-4c27-ac1e-746e84ce950e>;<SID=S-1-5-21-1-2-3-1102>;CN=u1,OU=A,DC=corp";
        let (guid, dn) = split_extended(text).unwrap();
        // objectGUID order: the first three fields little-endian.
        assert_eq!(
            guid.unwrap(),
            [
                0x76, 0x10, 0xe0, 0x1a, 0x6f, 0x86, 0x27, 0x4c, 0xac, 0x1e, 0x74, 0x6e, 0x84, 0xce,
                0x95, 0x0e
            ]
        );
        assert_eq!(dn, "CN=u1,OU=A,DC=corp");
        // Flag 0: the octets in hex; an OU has no SID.
        let (guid, dn) =
            split_extended("<GUID=7610e01a6f86274cac1e746e84ce950e>;OU=A,DC=corp").unwrap();
        assert_eq!(guid.unwrap()[0], 0x76);
        assert_eq!(dn, "OU=A,DC=corp");
        assert_eq!(split_extended("CN=u1,DC=corp"), None);
    }

    #[test]
    fn ad_links_are_held_by_anchor() {
        let m = Mapper {
            flavor: LdapFlavor::Ad,
            classes: vec!["user".into()],
            excluded: Vec::new(),
            references: vec![AttrName::new("member")],
            binary: Vec::new(),
        };
        let v = m.value(
            "member",
            b"<GUID=1ae01076-866f-4c27-ac1e-746e84ce950e>;<SID=S-1-5-21-1-2-3-1102>;CN=u1,DC=corp",
        );
        assert_eq!(v.as_anchor_ref().map(|a| a.as_bytes()[0]), Some(0x76));
        assert_eq!(v.ref_dn().map(|d| d.as_str()), Some("CN=u1,DC=corp"));
        // Without the control's components the value stays a DN.
        assert!(m.value("member", b"CN=u1,DC=corp").as_dn_ref().is_some());
        // Other DN-syntax attributes keep their DN text.
        assert_eq!(
            m.value(
                "objectCategory",
                b"<GUID=1ae01076-866f-4c27-ac1e-746e84ce950e>;CN=Person,CN=Schema,DC=corp"
            ),
            Value::str("CN=Person,CN=Schema,DC=corp")
        );
    }

    #[test]
    fn sids() {
        // S-1-5-21-1-2-3-1102
        let mut b = vec![1u8, 5, 0, 0, 0, 0, 0, 5];
        for sub in [21u32, 1, 2, 3, 1102] {
            b.extend_from_slice(&sub.to_le_bytes());
        }
        assert_eq!(sid_string(&b).as_deref(), Some("S-1-5-21-1-2-3-1102"));
        assert_eq!(sid_string(&b[..9]), None);
    }

    #[test]
    fn malformed_entries_are_none() {
        use lber::common::TagClass;
        let t = StructureTag {
            class: TagClass::Application,
            id: 4,
            payload: PL::P(vec![1, 2]),
        };
        assert_eq!(decode_entry(t), None);
    }
}

#[cfg(test)]
#[path = "samba_roundtrip_tests.rs"]
mod samba_roundtrip_tests;
