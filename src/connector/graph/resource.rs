//! Graph objects in the connector space. Attribute names are Graph's property names
//! (`userPrincipalName`, `onPremisesImmutableId`, `accountEnabled`); the members of
//! `onPremisesExtensionAttributes` are `extensionAttribute1` … `extensionAttribute15`;
//! `manager` and `members` are references. Objects are named by a property Graph keeps
//! unique without regard to case, as DNs compare: `userPrincipalName=<upn>,ou=Users`,
//! `mailNickname=<nickname>,ou=Groups`, else `id=<object id>,ou=<kind>`. (Not by
//! onPremisesImmutableId: base64 is case-sensitive, and two anchors differing in case only
//! would name one DN.)

use serde_json::{Map, Value as Json, json};

use crate::model::{Anchor, AttrName, Attributes, Dn, RefTarget, Value, ValueSet};

/// The kinds of object the connector reads; `orgContact` is read-only in Graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `user`.
    User,
    /// `group`.
    Group,
    /// `orgContact`: imported for joins, never written.
    Contact,
}

impl Kind {
    /// The collection below the version root.
    pub fn collection(self) -> &'static str {
        match self {
            Kind::User => "users",
            Kind::Group => "groups",
            Kind::Contact => "contacts",
        }
    }

    /// The connector-space object class.
    pub fn class(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Group => "group",
            Kind::Contact => "orgContact",
        }
    }

    /// The kind an object class names.
    pub fn of_class(class: &str) -> Option<Kind> {
        match class.to_ascii_lowercase().as_str() {
            "user" => Some(Kind::User),
            "group" => Some(Kind::Group),
            "orgcontact" | "contact" => Some(Kind::Contact),
            _ => None,
        }
    }

    fn ou(self) -> &'static str {
        match self {
            Kind::User => "Users",
            Kind::Group => "Groups",
            Kind::Contact => "Contacts",
        }
    }

    /// The properties import asks for (`$select`), what the rules map.
    pub fn select(self) -> &'static str {
        match self {
            Kind::User => {
                "id,userPrincipalName,displayName,givenName,surname,mail,mailNickname,\
                 accountEnabled,onPremisesImmutableId,onPremisesExtensionAttributes,\
                 usageLocation,employeeId,jobTitle,department,companyName,otherMails,manager"
            }
            Kind::Group => {
                "id,displayName,description,mailNickname,mailEnabled,securityEnabled,\
                 groupTypes,members"
            }
            Kind::Contact => "id,displayName,mail,mailNickname,givenName,surname,proxyAddresses",
        }
    }
}

/// Properties that are references, and so never in a JSON body as values.
pub const REFERENCES: &[&str] = &["manager", "members"];

/// The DN of an object read from Graph.
pub fn dn_for(kind: Kind, props: &Json, id: &str) -> Dn {
    let key = match kind {
        Kind::User => "userPrincipalName",
        Kind::Group => "mailNickname",
        Kind::Contact => "",
    };
    let (attr, value) = match props.get(key).and_then(Json::as_str) {
        Some(v) if !v.is_empty() => (key, v),
        _ => ("id", id),
    };
    let text = format!(
        "{attr}={},ou={}",
        crate::model::dn::escape_value(value),
        kind.ou()
    );
    Dn::parse(&text).unwrap_or_else(|_| Dn::root())
}

/// The plain (non-reference) attributes of a Graph object.
pub fn attributes(props: &Json) -> Attributes {
    let mut out = Attributes::new();
    let Some(map) = props.as_object() else {
        return out;
    };
    for (k, v) in map {
        if k == "id" || k.starts_with('@') || k.contains('@') || REFERENCES.contains(&k.as_str()) {
            continue;
        }
        if k == "onPremisesExtensionAttributes" {
            for (ek, ev) in v.as_object().into_iter().flatten() {
                if let Some(s) = ev.as_str() {
                    out.set(AttrName::new(ek), ValueSet::one(Value::str(s)));
                }
            }
            continue;
        }
        let values = to_values(v);
        if !values.is_empty() {
            out.set(AttrName::new(k), values);
        }
    }
    out
}

fn to_values(v: &Json) -> ValueSet {
    let mut set = ValueSet::new();
    match v {
        Json::String(s) => {
            set.insert(Value::str(s));
        }
        Json::Bool(b) => {
            set.insert(Value::Boolean(*b));
        }
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                set.insert(Value::Integer(i));
            }
        }
        Json::Array(a) => {
            for x in a {
                if let Some(s) = x.as_str() {
                    set.insert(Value::str(s));
                }
            }
        }
        _ => {}
    }
    set
}

/// Whether a connector-space attribute is one of `onPremisesExtensionAttributes`.
pub fn is_extension_attribute(name: &str) -> bool {
    name.strip_prefix("extensionAttribute")
        .and_then(|n| n.parse::<u8>().ok())
        .is_some_and(|n| (1..=15).contains(&n))
}

/// Properties whose Graph type is a collection of strings.
const MULTI: &[&str] = &[
    "otherMails",
    "businessPhones",
    "groupTypes",
    "proxyAddresses",
    "imAddresses",
];

/// The JSON of one attribute's values for a create or an update (Null clears).
pub fn to_json(name: &str, values: &ValueSet) -> Json {
    let texts: Vec<Json> = values
        .iter()
        .filter_map(|v| match v {
            Value::String(s) => Some(json!(s)),
            Value::Boolean(b) => Some(json!(b)),
            Value::Integer(i) => Some(json!(i)),
            // Octets (a sourceAnchor from objectGUID) travel base64, as immutableId does.
            Value::Binary(b) => {
                use base64::Engine as _;
                Some(json!(base64::engine::general_purpose::STANDARD.encode(b)))
            }
            _ => None,
        })
        .collect();
    if MULTI.contains(&name) {
        return Json::Array(texts);
    }
    texts.into_iter().next().unwrap_or(Json::Null)
}

/// Puts one attribute into a create or update body: extension attributes go inside
/// `onPremisesExtensionAttributes`.
pub fn put(body: &mut Map<String, Json>, name: &str, values: &ValueSet) {
    let v = to_json(name, values);
    if is_extension_attribute(name) {
        let ext = body
            .entry("onPremisesExtensionAttributes")
            .or_insert_with(|| json!({}));
        if let Some(m) = ext.as_object_mut() {
            m.insert(name.to_string(), v);
        }
    } else {
        body.insert(name.to_string(), v);
    }
}

/// A reference value's target: the object id it names, when the value or the index
/// can tell.
pub fn ref_id(v: &Value, id_of_dn: &dyn Fn(&Dn) -> Option<String>) -> Option<String> {
    match v {
        Value::Reference(RefTarget::Anchored { anchor, .. }) => anchor_id(anchor),
        Value::Reference(RefTarget::Dn(dn)) => id_of_dn(dn).or_else(|| {
            // `id=<object id>,ou=…` names the object itself.
            (dn.rdn().split('=').next().map(str::trim) == Some("id"))
                .then(|| dn.rdn_value())
                .flatten()
        }),
        _ => None,
    }
}

/// The object id an anchor holds.
pub fn anchor_id(a: &Anchor) -> Option<String> {
    std::str::from_utf8(a.as_bytes()).ok().map(str::to_string)
}

/// The `directoryObjects` URL Graph wants in `@odata.id` and `members@odata.bind`.
pub fn object_url(root: &str, id: &str) -> String {
    format!("{root}/directoryObjects/{id}")
}

/// A random password for a new cloud user: Graph insists on one at create; the user signs
/// in with the on-premises password (hash sync or federation), never with this.
pub fn random_password() -> String {
    let mut b = [0u8; 24];
    let _ = getrandom::fill(&mut b);
    let body: String = b
        .iter()
        .map(|x| {
            let c = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
            c[(*x as usize) % c.len()] as char
        })
        .collect();
    // Graph's complexity rule wants three of four classes; the suffix guarantees them.
    format!("{body}#9aZ")
}
