//! What the differential test compares: each target and the metaverse, read independently
//! of the engine (the tools for OpenLDAP, plain HTTP for SCIM, the state file read-only) and
//! normalised so that two correct runs give equal values: target-generated ids (SCIM `id`,
//! metaverse ids, entryUUID) are replaced by the object's sourceAnchor or DN, and the
//! target's base DN is cut off.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use base64::Engine as _;
use serde_json::Value as Json;

use super::world::{Targets, ldap_entries};
use crate::support::norm_dn;

/// Name → attributes (name → values), for one kind of object.
pub type Objects = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

/// Everything compared at a checkpoint.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub ldap: Objects,
    pub scim_users: Objects,
    pub scim_groups: Objects,
    pub metaverse: Objects,
}

impl Snapshot {
    /// Reads the targets and the (closed) state file.
    pub fn take(targets: &Targets, state: &Path) -> Snapshot {
        let (scim_users, scim_groups) = scim(targets);
        Snapshot {
            ldap: ldap(&targets.ldap_base),
            scim_users,
            scim_groups,
            metaverse: metaverse(state),
        }
    }

    /// The differences, one line each, at most `limit` of them.
    pub fn diff(&self, reference: &Snapshot, limit: usize) -> Vec<String> {
        let mut out = Vec::new();
        for (what, a, b) in [
            ("openldap", &self.ldap, &reference.ldap),
            ("scim user", &self.scim_users, &reference.scim_users),
            ("scim group", &self.scim_groups, &reference.scim_groups),
            ("metaverse", &self.metaverse, &reference.metaverse),
        ] {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) if x == y => {}
                    (Some(x), Some(y)) => {
                        let names: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
                        for n in names {
                            if x.get(n) != y.get(n) {
                                out.push(format!(
                                    "{what} {k}: {n} is {:?} after the deltas, {:?} after a full cycle",
                                    x.get(n),
                                    y.get(n)
                                ));
                            }
                        }
                    }
                    (Some(_), None) => out.push(format!(
                        "{what} {k}: present after the deltas, absent after a full cycle"
                    )),
                    (None, Some(_)) => out.push(format!(
                        "{what} {k}: absent after the deltas, present after a full cycle"
                    )),
                    (None, None) => {}
                }
            }
        }
        out.truncate(limit);
        out
    }
}

/// A DN below `base` as a relative, normalised name.
fn relative(dn: &str, base: &str) -> String {
    let dn = norm_dn(dn);
    let base = norm_dn(base);
    dn.strip_suffix(&base)
        .map(|s| s.trim_end_matches(',').to_string())
        .unwrap_or(dn)
}

fn ldap(base: &str) -> Objects {
    let mut out = Objects::new();
    for e in ldap_entries(base) {
        let mut attrs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (name, value) in &e.attrs {
            let name = name.to_ascii_lowercase();
            let text = value.as_text();
            let text = if name == "member" || name == "manager" {
                relative(&text, base)
            } else {
                text
            };
            attrs.entry(name).or_default().insert(text);
        }
        out.insert(relative(&e.dn, base), attrs);
    }
    out
}

/// A JSON value with arrays of objects in a canonical order (SCIM gives no order).
fn canonical(v: &Json) -> String {
    match v {
        Json::Array(items) => {
            let mut parts: Vec<String> = items.iter().map(canonical).collect();
            parts.sort();
            format!("[{}]", parts.join(","))
        }
        Json::Object(map) => {
            let mut parts: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}={}", canonical(v)))
                .collect();
            parts.sort();
            format!("{{{}}}", parts.join(","))
        }
        other => other.to_string(),
    }
}

fn scim(targets: &Targets) -> (Objects, Objects) {
    let users = targets.scim.all("/Users");
    let groups = targets.scim.all("/Groups");
    let mut key_of: BTreeMap<String, String> = BTreeMap::new();
    for r in users.iter().chain(&groups) {
        if let (Some(id), Some(ext)) = (r["id"].as_str(), r["externalId"].as_str()) {
            key_of.insert(id.to_string(), ext.to_string());
        }
    }
    let by_key = |id: &str| {
        key_of
            .get(id)
            .cloned()
            .unwrap_or_else(|| format!("unknown id {id}"))
    };
    let mut out_users = Objects::new();
    for u in &users {
        let mut attrs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (k, v) in u.as_object().into_iter().flatten() {
            if matches!(k.as_str(), "id" | "meta" | "schemas" | "groups") {
                continue;
            }
            let mut v = v.clone();
            if let Some(m) = v.get_mut("manager").and_then(|m| m.as_object_mut()) {
                let key = m.get("value").and_then(|x| x.as_str()).map(&by_key);
                m.remove("$ref");
                m.remove("displayName");
                if let Some(key) = key {
                    m.insert("value".into(), Json::String(key));
                }
            }
            attrs.entry(k.clone()).or_default().insert(canonical(&v));
        }
        let key = u["externalId"].as_str().unwrap_or("(no externalId)");
        out_users.insert(key.to_string(), attrs);
    }
    let mut out_groups = Objects::new();
    for g in &groups {
        let mut attrs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        attrs
            .entry("displayName".into())
            .or_default()
            .insert(g["displayName"].as_str().unwrap_or_default().to_string());
        let members = attrs.entry("members".into()).or_default();
        for m in g["members"].as_array().into_iter().flatten() {
            members.insert(by_key(m["value"].as_str().unwrap_or_default()));
        }
        let key = g["externalId"].as_str().unwrap_or("(no externalId)");
        out_groups.insert(key.to_string(), attrs);
    }
    (out_users, out_groups)
}

fn metaverse(state: &Path) -> Objects {
    use bridgehead::model::{RefTarget, Value};
    let store = bridgehead::store::Store::open_read_only(state)
        .unwrap_or_else(|e| panic!("opening {} read-only: {e}", state.display()));
    let read = store
        .read()
        .unwrap_or_else(|e| panic!("reading {}: {e}", state.display()));
    let mut records = Vec::new();
    read.for_each_mv(&mut |id, rec| {
        records.push((id, rec));
        Ok(())
    })
    .unwrap_or_else(|e| panic!("listing the metaverse of {}: {e}", state.display()));
    let key_of: BTreeMap<_, String> = records
        .iter()
        .map(|(id, rec)| {
            let anchor = rec
                .attrs
                .first_text("sourceAnchor")
                .unwrap_or_else(|| format!("(no sourceAnchor: {:?})", rec.attrs.first_text("cn")));
            (*id, anchor)
        })
        .collect();
    let mut out = Objects::new();
    for (id, rec) in &records {
        if rec.deleted {
            continue;
        }
        let mut attrs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        attrs
            .entry("(type)".into())
            .or_default()
            .insert(format!("{:?}", rec.object_type));
        for (name, values) in rec.attrs.iter() {
            let set = attrs
                .entry(name.to_string().to_ascii_lowercase())
                .or_default();
            for v in values {
                set.insert(match v {
                    Value::String(s) => s.clone(),
                    Value::Binary(b) => base64::engine::general_purpose::STANDARD.encode(b),
                    Value::Reference(RefTarget::Mv(m)) => format!(
                        "-> {}",
                        key_of
                            .get(m)
                            .cloned()
                            .unwrap_or_else(|| format!("missing {m}"))
                    ),
                    Value::Reference(RefTarget::Dn(dn)) => {
                        format!("dn {}", norm_dn(&dn.to_string()))
                    }
                    other => format!("{other:?}"),
                });
            }
        }
        let key = key_of.get(id).cloned().unwrap_or_default();
        out.insert(key, attrs);
    }
    out
}
