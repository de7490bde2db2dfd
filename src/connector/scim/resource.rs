//! SCIM resources and connector-space attributes, both ways: a resource read on import
//! becomes flat attributes named by SCIM paths; an add becomes a resource body and an
//! update becomes PATCH operations (RFC 7644 §3.5.2) touching only what changed.

use std::collections::HashMap;

use serde_json::{Map, Value as Json, json};

use super::path::{AttrPath, json_string};
use super::schema::{AttrType, Kind, Service};
use crate::model::{
    AttrChange, AttrName, Attributes, ChangeOp, Dn, RefTarget, UtcTime, Value, ValueSet,
};

/// Attributes never imported: server-managed (`id`, `meta`), derived (`groups`) or secret.
const SKIPPED: &[&str] = &["schemas", "id", "meta", "groups", "password"];

/// The connector-space DN of a resource: by externalId when it has one, else by id.
pub fn dn_for(kind: Kind, external_id: Option<&str>, id: &str) -> Dn {
    let (attr, value) = match external_id {
        Some(x) if !x.is_empty() => ("externalId", x),
        _ => ("id", id),
    };
    let text = format!(
        "{attr}={},ou={}",
        crate::model::dn::escape_value(value),
        kind.ou()
    );
    Dn::parse(&text).unwrap_or_else(|_| Dn::root())
}

/// What a connector-space DN says about its resource: `externalId=…` or `id=…`.
pub enum DnKey {
    /// The service's id.
    Id(String),
    /// The externalId (our sourceAnchor).
    ExternalId(String),
}

/// Reads a DN made by [`dn_for`] (or written by an outbound rule's DN template).
pub fn dn_key(dn: &Dn) -> Option<(Kind, DnKey)> {
    let value = dn.rdn_value()?;
    let attr = dn.rdn().split('=').next()?.trim();
    let ou = dn.parent().rdn_value()?;
    let kind = if ou.eq_ignore_ascii_case("Users") {
        Kind::User
    } else if ou.eq_ignore_ascii_case("Groups") {
        Kind::Group
    } else {
        return None;
    };
    if attr.eq_ignore_ascii_case("id") {
        Some((kind, DnKey::Id(value)))
    } else if attr.eq_ignore_ascii_case("externalId") {
        Some((kind, DnKey::ExternalId(value)))
    } else {
        None
    }
}

/// Flattens a resource into connector-space attributes; `dn_of` turns a referenced id
/// (members, manager) into the DN the connector space knows it by.
pub fn flatten(res: &Json, dn_of: &dyn Fn(&str) -> Dn) -> Attributes {
    let mut out = Attributes::new();
    let Some(obj) = res.as_object() else {
        return out;
    };
    for (key, val) in obj {
        if SKIPPED.iter().any(|s| s.eq_ignore_ascii_case(key)) {
            continue;
        }
        if key.to_ascii_lowercase().starts_with("urn:") {
            if let Some(ext) = val.as_object() {
                for (sub, v) in ext {
                    let name = format!("{key}:{sub}");
                    flatten_value(&mut out, &name, v, dn_of);
                }
            }
            continue;
        }
        if key.eq_ignore_ascii_case("members") {
            let refs: ValueSet = val
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|m| m.get("value").and_then(Json::as_str))
                .map(|id| Value::Reference(RefTarget::Dn(dn_of(id))))
                .collect();
            put(&mut out, key, refs);
            continue;
        }
        flatten_value(&mut out, key, val, dn_of);
    }
    out
}

fn flatten_value(out: &mut Attributes, name: &str, val: &Json, dn_of: &dyn Fn(&str) -> Dn) {
    match val {
        Json::Object(o) => {
            // A single-valued reference (manager) is its value; other complex values
            // become one attribute per sub-attribute.
            if name.to_ascii_lowercase().ends_with(":manager") {
                if let Some(id) = o.get("value").and_then(Json::as_str) {
                    let r = Value::Reference(RefTarget::Dn(dn_of(id)));
                    put(out, name, ValueSet::one(r));
                }
                return;
            }
            for (sub, v) in o {
                if let Some(x) = scalar(v) {
                    put(out, &format!("{name}.{sub}"), ValueSet::one(x));
                }
            }
        }
        Json::Array(items) => {
            let mut untyped = ValueSet::new();
            let mut typed: HashMap<String, ValueSet> = HashMap::new();
            for item in items {
                match item {
                    Json::Object(o) => {
                        let ty = o.get("type").and_then(Json::as_str);
                        // `primary` and `display` are kept: a rule that flows them must
                        // see them come back, or it would send them again every cycle.
                        for (sub, v) in o {
                            if sub == "type" || sub == "$ref" {
                                continue;
                            }
                            let Some(x) = scalar(v) else { continue };
                            match ty {
                                Some(t) => {
                                    let n = format!("{name}[type eq {}].{sub}", json_string(t));
                                    typed.entry(n).or_default().insert(x);
                                }
                                None if sub == "value" => {
                                    untyped.insert(x);
                                }
                                None => {}
                            }
                        }
                    }
                    other => {
                        if let Some(x) = scalar(other) {
                            untyped.insert(x);
                        }
                    }
                }
            }
            for (n, v) in typed {
                put(out, &n, v);
            }
            if !untyped.is_empty() {
                let n = if items.iter().any(Json::is_object) {
                    format!("{name}.value")
                } else {
                    name.to_string()
                };
                put(out, &n, untyped);
            }
        }
        other => {
            if let Some(x) = scalar(other) {
                put(out, name, ValueSet::one(x));
            }
        }
    }
}

fn put(out: &mut Attributes, name: &str, values: ValueSet) {
    if !values.is_empty() {
        out.set(AttrName::new(name), values);
    }
}

fn scalar(v: &Json) -> Option<Value> {
    match v {
        Json::String(s) if !s.is_empty() => Some(Value::String(s.clone())),
        Json::Bool(b) => Some(Value::Boolean(*b)),
        Json::Number(n) => Some(match n.as_i64() {
            Some(i) => Value::Integer(i),
            None => Value::String(n.to_string()),
        }),
        _ => None,
    }
}

/// How referenced objects are found: DN (normalised) → the service's id.
pub type Ids = HashMap<String, String>;

/// One attribute's JSON value(s) for the service, converted by the schema's type.
pub(super) fn json_values(
    path: &AttrPath,
    values: &ValueSet,
    ty: Option<AttrType>,
    ids: &Ids,
) -> Result<Vec<Json>, String> {
    values
        .iter()
        .map(|v| json_value(path, v, ty, ids))
        .collect()
}

fn json_value(path: &AttrPath, v: &Value, ty: Option<AttrType>, ids: &Ids) -> Result<Json, String> {
    let name = path.name();
    let bad = |what: &str| {
        format!(
            "{name}: the service wants {what}, and {:?} is not one",
            v.to_text()
        )
    };
    if let Value::Reference(r) = v {
        let RefTarget::Dn(dn) = r else {
            return Err(format!("{name}: an unresolved metaverse reference"));
        };
        let id = ids
            .get(dn.norm())
            .ok_or_else(|| format!("{name}: {dn} is not (yet) in the service"))?;
        return Ok(json!({ "value": id }));
    }
    Ok(match ty {
        Some(AttrType::Boolean) => Json::Bool(match v {
            Value::Boolean(b) => *b,
            Value::Integer(i) => *i != 0,
            other => match other.to_text().to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => true,
                "false" | "0" | "no" => false,
                _ => return Err(bad("true or false")),
            },
        }),
        Some(AttrType::Integer) => match v {
            Value::Integer(i) => json!(i),
            other => json!(
                other
                    .to_text()
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| bad("a whole number"))?
            ),
        },
        Some(AttrType::Decimal) => match v {
            Value::Integer(i) => json!(i),
            other => json!(
                other
                    .to_text()
                    .trim()
                    .parse::<f64>()
                    .map_err(|_| bad("a number"))?
            ),
        },
        Some(AttrType::DateTime) => match v {
            Value::DateTime(t) => Json::String(UtcTime::from_unix(*t).to_rfc3339()),
            other => Json::String(other.to_text()),
        },
        None => match v {
            Value::Boolean(b) => Json::Bool(*b),
            Value::Integer(i) => json!(i),
            other => Json::String(other.to_text()),
        },
        _ => Json::String(v.to_text()),
    })
}

/// The paths of an object's changes, checked against the service's schema.
pub(super) fn checked(
    kind: Kind,
    service: &Service,
    attr: &AttrName,
) -> Result<(AttrPath, Option<AttrType>, bool), String> {
    let path = AttrPath::parse(attr.as_str()).ok_or_else(|| {
        format!(
            "{:?} is not a SCIM attribute path (like \"name.givenName\" or \
             \"emails[type eq \\\"work\\\"].value\")",
            attr.as_str()
        )
    })?;
    if path.is_plain("members") && kind == Kind::User {
        return Err("members belongs to groups, not users".into());
    }
    let def = service.check(kind, &path)?;
    let ty = def.as_ref().map(|d| d.ty);
    let multi =
        def.as_ref().is_some_and(|d| d.multi) || (path.sub.is_none() && path.is_plain("members"));
    Ok((path, ty, multi))
}

/// Every DN the values of these changes reference.
pub fn referenced_dns(changes: &[AttrChange]) -> Vec<Dn> {
    changes
        .iter()
        .flat_map(|c| match &c.op {
            ChangeOp::Add(v) | ChangeOp::Remove(v) | ChangeOp::Replace(v) => v.iter(),
        })
        .filter_map(|v| v.as_dn_ref().cloned())
        .collect()
}

/// A reference value left out of a create, to be sent once its target exists.
pub type Late = (AttrName, Dn);

/// The body of a create: every attribute of the add, placed where SCIM wants it. Member
/// values beyond `first_members` are left for PATCHes after the create, and so are
/// references that do not resolve yet; both are returned.
pub fn create_body(
    kind: Kind,
    attrs: &Attributes,
    service: &Service,
    ids: &Ids,
    first_members: usize,
) -> Result<(Json, Vec<Late>), String> {
    let rt = service.resource(kind)?;
    let mut obj = Map::new();
    let mut schemas = vec![Json::String(rt.schema.clone())];
    let mut later = Vec::new();
    for (name, values) in attrs.iter() {
        let (path, ty, multi) = checked(kind, service, name)?;
        if path.is_plain("members") {
            let mut members = Vec::new();
            for v in values {
                match v.as_dn_ref() {
                    Some(dn) if members.len() < first_members && ids.contains_key(dn.norm()) => {
                        members.push(json_value(&path, v, ty, ids)?);
                    }
                    Some(dn) => later.push((name.clone(), dn.clone())),
                    None => return Err("members: a value that is not a reference".into()),
                }
            }
            if !members.is_empty() {
                obj.insert(path.attr.clone(), Json::Array(members));
            }
            continue;
        }
        // A manager not created yet is set right after it is.
        let mut kept = ValueSet::new();
        for v in values {
            match v.as_dn_ref() {
                Some(dn) if !ids.contains_key(dn.norm()) => later.push((name.clone(), dn.clone())),
                _ => {
                    kept.insert(v.clone());
                }
            }
        }
        let values = kept;
        if values.is_empty() {
            continue;
        }
        let json = json_values(&path, &values, ty, ids)?;
        if let Some(urn) = &path.urn {
            if !schemas.iter().any(|s| s.as_str() == Some(urn)) {
                schemas.push(Json::String(urn.clone()));
            }
        }
        place(&mut obj, &path, one_or_many(json, multi));
    }
    obj.insert("schemas".into(), Json::Array(schemas));
    Ok((Json::Object(obj), later))
}

pub(super) fn one_or_many(mut values: Vec<Json>, multi: bool) -> Json {
    if multi || values.len() > 1 {
        Json::Array(values)
    } else {
        values.pop().unwrap_or(Json::Null)
    }
}

/// Puts a value at its path inside a resource object.
pub(super) fn place(obj: &mut Map<String, Json>, path: &AttrPath, value: Json) {
    let target = match &path.urn {
        Some(urn) => {
            let ext = obj
                .entry(urn.clone())
                .or_insert_with(|| Json::Object(Map::new()));
            if !ext.is_object() {
                *ext = Json::Object(Map::new());
            }
            match ext.as_object_mut() {
                Some(m) => m,
                None => return,
            }
        }
        None => obj,
    };
    match (&path.typed, &path.sub) {
        (None, None) => {
            target.insert(path.attr.clone(), value);
        }
        (None, Some(sub)) => {
            let inner = target
                .entry(path.attr.clone())
                .or_insert_with(|| Json::Object(Map::new()));
            if let Some(m) = inner.as_object_mut() {
                m.insert(sub.clone(), value);
            }
        }
        (Some(ty), sub) => {
            let list = target
                .entry(path.attr.clone())
                .or_insert_with(|| Json::Array(Vec::new()));
            let Some(list) = list.as_array_mut() else {
                return;
            };
            let pos = list
                .iter()
                .position(|e| e.get("type").and_then(Json::as_str) == Some(ty.as_str()));
            let entry = match pos {
                Some(i) => &mut list[i],
                None => {
                    list.push(json!({ "type": ty }));
                    let last = list.len() - 1;
                    &mut list[last]
                }
            };
            if let Some(m) = entry.as_object_mut() {
                let v = match value {
                    Json::Array(mut a) if a.len() == 1 => a.pop().unwrap_or(Json::Null),
                    other => other,
                };
                m.insert(sub.clone().unwrap_or_else(|| "value".into()), v);
            }
        }
    }
}

/// One PATCH operation, and whether it replaces a sub-attribute of a typed entry (which
/// fails with noTarget when the entry does not exist yet).
#[derive(Clone, Debug)]
pub struct Op {
    /// The operation as sent.
    pub json: Json,
    /// For a typed replace: the path, to turn it into an add of the entry when needed.
    pub typed: Option<(AttrPath, Json)>,
}

/// The PATCH requests for an update: all attribute operations in the first, membership
/// changes in chunks of `chunk` values. Empty when nothing is to be sent.
pub fn patch_requests(
    kind: Kind,
    changes: &[AttrChange],
    service: &Service,
    ids: &Ids,
    chunk: usize,
) -> Result<Vec<Vec<Op>>, String> {
    let mut attrs = Vec::new();
    // Each entry is one request. An add carries a chunk of values; a remove names a chunk
    // of values in one path filter joined with `or` (RFC 7644 §3.5.2.2: a remove takes no
    // value). One operation, not one per value: services such as scim2-server check the
    // whole resource once per operation, which for a large group is most of the cost.
    let mut member_ops: Vec<Vec<Op>> = Vec::new();
    let op = |o: &str, p: String, v: Option<Json>| -> Op {
        let mut m = Map::new();
        m.insert("op".into(), Json::String(o.into()));
        m.insert("path".into(), Json::String(p));
        if let Some(v) = v {
            m.insert("value".into(), v);
        }
        Op {
            json: Json::Object(m),
            typed: None,
        }
    };
    for change in changes {
        let (path, ty, multi) = checked(kind, service, &change.attr)?;
        let p = path.patch_path();
        if path.is_plain("members") {
            let resolve = |v: &ValueSet| -> Result<Vec<String>, String> {
                v.iter()
                    .map(|v| {
                        json_value(&path, v, ty, ids).map(|j| {
                            j.get("value")
                                .and_then(Json::as_str)
                                .unwrap_or_default()
                                .to_string()
                        })
                    })
                    .collect()
            };
            match &change.op {
                ChangeOp::Add(v) => {
                    for ids in resolve(v)?.chunks(chunk.max(1)) {
                        let vals = ids.iter().map(|id| json!({ "value": id })).collect();
                        member_ops.push(vec![op("add", p.clone(), Some(Json::Array(vals)))]);
                    }
                }
                ChangeOp::Remove(v) => {
                    for ids in resolve(v)?.chunks(chunk.max(1)) {
                        let filter: Vec<String> = ids
                            .iter()
                            .map(|id| format!("value eq {}", json_string(id)))
                            .collect();
                        let f = format!("members[{}]", filter.join(" or "));
                        member_ops.push(vec![op("remove", f, None)]);
                    }
                }
                ChangeOp::Replace(v) if v.is_empty() => {
                    member_ops.push(vec![op("remove", p, None)])
                }
                ChangeOp::Replace(v) => {
                    let vals = resolve(v)?
                        .into_iter()
                        .map(|id| json!({ "value": id }))
                        .collect();
                    member_ops.push(vec![op("replace", p, Some(Json::Array(vals)))]);
                }
            }
            continue;
        }
        match &change.op {
            ChangeOp::Replace(v) | ChangeOp::Add(v) if !v.is_empty() => {
                let value = one_or_many(json_values(&path, v, ty, ids)?, multi);
                let verb = if matches!(change.op, ChangeOp::Add(_)) && multi {
                    "add"
                } else {
                    "replace"
                };
                let mut o = op(verb, p, Some(value.clone()));
                if path.typed.is_some() {
                    o.typed = Some((path.clone(), value));
                }
                attrs.push(o);
            }
            ChangeOp::Remove(v) if multi && path.typed.is_none() && path.sub.is_none() => {
                for x in json_values(&path, v, ty, ids)? {
                    let f = match &x {
                        Json::Object(o) => o
                            .get("value")
                            .map(|id| format!("{p}[value eq {id}]"))
                            .unwrap_or_else(|| p.clone()),
                        Json::String(s) => format!("{p}[value eq {}]", json_string(s)),
                        other => format!("{p}[value eq {other}]"),
                    };
                    attrs.push(op("remove", f, None));
                }
            }
            // Replace with nothing, Remove of a single value: the attribute goes. A typed
            // entry's value going takes the entry with it.
            _ => {
                let target = match (&path.typed, path.sub.as_deref()) {
                    (Some(_), Some("value")) => path.entry_path().unwrap_or(p),
                    _ => p,
                };
                attrs.push(op("remove", target, None));
            }
        }
    }
    let mut requests = Vec::new();
    if !attrs.is_empty() {
        requests.push(attrs);
    }
    requests.extend(member_ops);
    Ok(requests)
}

/// Rewrites typed replaces whose entry the resource lacks into adds of that entry, after
/// the service answered noTarget.
pub fn add_missing_entries(ops: &[Op], resource: &Json) -> Vec<Op> {
    let has_entry = |p: &AttrPath| {
        let holder = match &p.urn {
            Some(urn) => resource.get(urn),
            None => Some(resource),
        };
        holder
            .and_then(|h| h.get(&p.attr))
            .and_then(Json::as_array)
            .is_some_and(|a| {
                a.iter()
                    .any(|e| e.get("type").and_then(Json::as_str) == p.typed.as_deref())
            })
    };
    let mut out: Vec<Op> = Vec::new();
    let mut new_entries: Vec<(AttrPath, Map<String, Json>)> = Vec::new();
    for o in ops {
        match &o.typed {
            Some((p, v)) if !has_entry(p) => {
                let sub = p.sub.clone().unwrap_or_else(|| "value".into());
                match new_entries
                    .iter_mut()
                    .find(|(q, _)| q.attr == p.attr && q.typed == p.typed && q.urn == p.urn)
                {
                    Some((_, m)) => {
                        m.insert(sub, v.clone());
                    }
                    None => {
                        let mut m = Map::new();
                        m.insert("type".into(), json!(p.typed));
                        m.insert(sub, v.clone());
                        new_entries.push((p.clone(), m));
                    }
                }
            }
            _ => out.push(o.clone()),
        }
    }
    for (p, m) in new_entries {
        let path = match &p.urn {
            Some(urn) => format!("{urn}:{}", p.attr),
            None => p.attr.clone(),
        };
        out.push(Op {
            json: json!({ "op": "add", "path": path, "value": [Json::Object(m)] }),
            typed: None,
        });
    }
    out
}

/// The PatchOp message for these operations.
pub fn patch_message(ops: &[Op]) -> Json {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": ops.iter().map(|o| o.json.clone()).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
#[path = "resource_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "roundtrip_tests.rs"]
mod roundtrip_tests;
