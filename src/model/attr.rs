//! Attribute names (case-insensitive, as LDAP), typed values and value sets.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::hash::{Hash, Hasher};

use base64::Engine;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Anchor, Dn, MvId};

/// An attribute name that keeps its spelling but compares like LDAP: ASCII case-insensitive.
#[derive(Clone)]
pub struct AttrName {
    name: String,
    key: String,
}

impl AttrName {
    /// Makes a name; spelling is kept for output, comparison ignores case.
    pub fn new(name: &str) -> Self {
        AttrName {
            name: name.to_string(),
            key: name.to_ascii_lowercase(),
        }
    }

    /// The name as first spelled.
    pub fn as_str(&self) -> &str {
        &self.name
    }

    /// The lower-case comparison key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Whether this name equals `other` ignoring ASCII case.
    pub fn is(&self, other: &str) -> bool {
        self.key.eq_ignore_ascii_case(other)
    }
}

impl PartialEq for AttrName {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl Eq for AttrName {}
impl Hash for AttrName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key.hash(state)
    }
}
impl PartialOrd for AttrName {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for AttrName {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key.cmp(&other.key)
    }
}
impl Borrow<str> for AttrName {
    fn borrow(&self) -> &str {
        &self.key
    }
}
impl fmt::Display for AttrName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}
impl fmt::Debug for AttrName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.name)
    }
}
impl Serialize for AttrName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name)
    }
}
impl<'de> Deserialize<'de> for AttrName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(AttrName::new(&String::deserialize(d)?))
    }
}

/// What a reference value points at: a DN in a connector space, an object of a connector
/// space by its anchor, an MV object in the metaverse.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RefTarget {
    /// A DN in the directory's own namespace, as imported or as to be exported: the
    /// directory holds the reference as a string (LDAP `member` without refint, files).
    Dn(Dn),
    /// A metaverse object.
    Mv(MvId),
    /// A link to an object of the same directory, held by that object's anchor (AD linked
    /// attributes read with the extended-DN control): a move, rename, delete or re-create of
    /// the target changes what it resolves to exactly as the directory does. `dn` is where
    /// the target was when last seen, for people and for expressions that read DNs.
    /// (Appended last: postcard numbers variants, so older records keep decoding.)
    Anchored {
        /// The referenced object's anchor.
        anchor: Anchor,
        /// Its DN as last seen.
        dn: Dn,
    },
}

/// One attribute value.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Value {
    /// Text (directory string).
    String(String),
    /// Octets (objectGUID, objectSid, jpegPhoto, ...).
    Binary(Vec<u8>),
    /// An integer (userAccountControl, ...).
    Integer(i64),
    /// A boolean.
    Boolean(bool),
    /// A point in time, as Unix seconds UTC.
    DateTime(i64),
    /// A reference to another object (member, manager).
    Reference(RefTarget),
}

impl Value {
    /// Shorthand for a string value.
    pub fn str(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }

    /// The value as text for output and DN templates; binary as base64.
    pub fn to_text(&self) -> String {
        match self {
            Value::String(s) => s.clone(),
            Value::Binary(b) => base64::engine::general_purpose::STANDARD.encode(b),
            Value::Integer(i) => i.to_string(),
            Value::Boolean(b) => if *b { "TRUE" } else { "FALSE" }.to_string(),
            Value::DateTime(t) => t.to_string(),
            Value::Reference(RefTarget::Dn(dn)) => dn.to_string(),
            Value::Reference(RefTarget::Mv(id)) => id.to_string(),
            Value::Reference(RefTarget::Anchored { dn, .. }) => dn.to_string(),
        }
    }

    /// The anchor this value links to, if it is an anchored reference.
    pub fn as_anchor_ref(&self) -> Option<&Anchor> {
        match self {
            Value::Reference(RefTarget::Anchored { anchor, .. }) => Some(anchor),
            _ => None,
        }
    }

    /// The DN a DN or anchored reference names (for an anchored one, where it was last seen).
    pub fn ref_dn(&self) -> Option<&Dn> {
        match self {
            Value::Reference(RefTarget::Dn(dn) | RefTarget::Anchored { dn, .. }) => Some(dn),
            _ => None,
        }
    }

    /// The DN this value references, if it is a DN reference.
    pub fn as_dn_ref(&self) -> Option<&Dn> {
        match self {
            Value::Reference(RefTarget::Dn(dn)) => Some(dn),
            _ => None,
        }
    }

    /// The MV object this value references, if any.
    pub fn as_mv_ref(&self) -> Option<MvId> {
        match self {
            Value::Reference(RefTarget::Mv(id)) => Some(*id),
            _ => None,
        }
    }
}

/// A multi-valued attribute's values with set semantics: sorted, no duplicates.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ValueSet(Vec<Value>);

impl ValueSet {
    /// An empty set.
    pub fn new() -> Self {
        ValueSet(Vec::new())
    }

    /// A set of one value.
    pub fn one(v: Value) -> Self {
        ValueSet(vec![v])
    }

    /// Adds a value; returns whether it was new.
    pub fn insert(&mut self, v: Value) -> bool {
        match self.0.binary_search(&v) {
            Ok(_) => false,
            Err(pos) => {
                self.0.insert(pos, v);
                true
            }
        }
    }

    /// Removes a value; returns whether it was there.
    pub fn remove(&mut self, v: &Value) -> bool {
        match self.0.binary_search(v) {
            Ok(pos) => {
                self.0.remove(pos);
                true
            }
            Err(_) => false,
        }
    }

    /// Removes a reference the way the directory matches it: an anchored link by its anchor
    /// (whatever DN it was last seen at), any other value exactly. Returns whether one went.
    pub fn remove_ref(&mut self, v: &Value) -> bool {
        match v.as_anchor_ref() {
            Some(a) => {
                let before = self.0.len();
                self.0.retain(|x| x.as_anchor_ref() != Some(a));
                self.0.len() != before
            }
            None => self.remove(v),
        }
    }

    /// Adds a value; an anchored link replaces the link to the same anchor (at an older DN).
    pub fn insert_ref(&mut self, v: Value) -> bool {
        if v.as_anchor_ref().is_some() {
            if self.contains(&v) {
                return false;
            }
            self.remove_ref(&v);
        }
        self.insert(v)
    }

    /// The set with every anchored link replaced by a DN reference to where it was last
    /// seen, or None when it holds no link (for comparing with values written by DN).
    pub fn links_as_dns(&self) -> Option<ValueSet> {
        if !self.0.iter().any(|v| v.as_anchor_ref().is_some()) {
            return None;
        }
        Some(
            self.0
                .iter()
                .map(|v| match v {
                    Value::Reference(RefTarget::Anchored { dn, .. }) => {
                        Value::Reference(RefTarget::Dn(dn.clone()))
                    }
                    other => other.clone(),
                })
                .collect(),
        )
    }

    /// Whether the value is in the set.
    pub fn contains(&self, v: &Value) -> bool {
        self.0.binary_search(v).is_ok()
    }

    /// Values in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Value> {
        self.0.iter()
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first value (for single-valued use).
    pub fn first(&self) -> Option<&Value> {
        self.0.first()
    }

    /// Values in `self` and not in `other`.
    pub fn minus<'a>(&'a self, other: &'a ValueSet) -> impl Iterator<Item = &'a Value> + 'a {
        self.0.iter().filter(move |v| !other.contains(v))
    }
}

impl FromIterator<Value> for ValueSet {
    fn from_iter<I: IntoIterator<Item = Value>>(iter: I) -> Self {
        let mut v: Vec<Value> = iter.into_iter().collect();
        v.sort();
        v.dedup();
        ValueSet(v)
    }
}

impl<'a> IntoIterator for &'a ValueSet {
    type Item = &'a Value;
    type IntoIter = std::slice::Iter<'a, Value>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// An object's attributes: name → non-empty value set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attributes(BTreeMap<AttrName, ValueSet>);

impl Attributes {
    /// No attributes.
    pub fn new() -> Self {
        Attributes(BTreeMap::new())
    }

    /// The values of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&ValueSet> {
        self.0.get(name.to_ascii_lowercase().as_str())
    }

    /// The first value of `name` as text.
    pub fn first_text(&self, name: &str) -> Option<String> {
        self.get(name).and_then(|v| v.first()).map(Value::to_text)
    }

    /// Sets `name` to `values`; an empty set removes the attribute.
    pub fn set(&mut self, name: AttrName, values: ValueSet) {
        if values.is_empty() {
            self.0.remove(name.key());
        } else {
            self.0.insert(name, values);
        }
    }

    /// Adds one value to `name`.
    pub fn add(&mut self, name: &AttrName, value: Value) {
        self.0.entry(name.clone()).or_default().insert(value);
    }

    /// Removes `name` entirely.
    pub fn remove(&mut self, name: &str) -> Option<ValueSet> {
        self.0.remove(name.to_ascii_lowercase().as_str())
    }

    /// Attributes in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&AttrName, &ValueSet)> {
        self.0.iter()
    }

    /// Mutable access to every value set, for re-pointing references in place.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut ValueSet> {
        self.0.values_mut()
    }

    /// Removes attributes left without values (after edits through [`Attributes::values_mut`]),
    /// as a directory reports an attribute whose last value went.
    pub fn drop_empty(&mut self) {
        self.0.retain(|_, vs| !vs.is_empty());
    }

    /// Number of attributes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no attributes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl FromIterator<(AttrName, ValueSet)> for Attributes {
    fn from_iter<I: IntoIterator<Item = (AttrName, ValueSet)>>(iter: I) -> Self {
        let mut a = Attributes::new();
        for (k, v) in iter {
            a.set(k, v);
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_compare_case_insensitively() {
        let mut a = Attributes::new();
        a.add(&AttrName::new("givenName"), Value::str("Ann"));
        assert!(a.get("GIVENNAME").is_some());
        assert_eq!(a.iter().next().map(|(k, _)| k.as_str()), Some("givenName"));
    }

    #[test]
    fn anchored_links_match_by_anchor_whatever_their_dn() {
        let link = |a: u8, dn: &str| {
            Value::Reference(RefTarget::Anchored {
                anchor: Anchor::new(vec![a; 16]),
                dn: Dn::parse(dn).unwrap_or_else(|_| Dn::root()),
            })
        };
        let mut s = ValueSet::new();
        s.insert_ref(link(1, "cn=a,dc=x"));
        s.insert_ref(link(2, "cn=b,dc=x"));
        // The same object seen at a new DN replaces its old entry.
        assert!(s.insert_ref(link(1, "cn=a,ou=moved,dc=x")));
        assert_eq!(s.len(), 2);
        assert!(s.contains(&link(1, "cn=a,ou=moved,dc=x")));
        // A removal names the object by anchor; the DN it carries may be another.
        assert!(s.remove_ref(&link(2, "cn=renamed,dc=x")));
        assert_eq!(s.len(), 1);
        assert!(!s.remove_ref(&link(3, "cn=a,ou=moved,dc=x")));
    }

    #[test]
    fn links_compare_with_dn_references_by_the_dn_they_name() {
        let dn = |t: &str| Dn::parse(t).unwrap_or_else(|_| Dn::root());
        let held: ValueSet = [
            Value::Reference(RefTarget::Anchored {
                anchor: Anchor::new(vec![1; 16]),
                dn: dn("CN=Ann,OU=Staff,DC=corp"),
            }),
            Value::str("x"),
        ]
        .into_iter()
        .collect();
        // What an outbound flow wants in an AD target: the DN, in another spelling.
        let wanted: ValueSet = [
            Value::Reference(RefTarget::Dn(dn("cn=ann,ou=staff,dc=corp"))),
            Value::str("x"),
        ]
        .into_iter()
        .collect();
        assert_eq!(held.links_as_dns(), Some(wanted.clone()));
        assert_eq!(wanted.links_as_dns(), None);
    }

    #[test]
    fn value_sets_are_sets() {
        let s: ValueSet = [Value::str("b"), Value::str("a"), Value::str("b")]
            .into_iter()
            .collect();
        assert_eq!(s.len(), 2);
        let t = ValueSet::one(Value::str("a"));
        assert_eq!(s.minus(&t).collect::<Vec<_>>(), vec![&Value::str("b")]);
    }
}
