//! Changes for services without PATCH: applied to the whole resource, which is then PUT
//! back (RFC 7644 §3.5.1).

use serde_json::{Map, Value as Json};

use super::path::AttrPath;
use super::resource::{Ids, checked, json_values, one_or_many, place};
use super::schema::{Kind, Service};
use crate::model::{AttrChange, ChangeOp};

/// Applies an update's changes to a whole resource, for services without PATCH (PUT).
pub fn apply_to_resource(
    kind: Kind,
    resource: &mut Json,
    changes: &[AttrChange],
    service: &Service,
    ids: &Ids,
) -> Result<(), String> {
    let Some(obj) = resource.as_object_mut() else {
        return Err("the service returned a resource that is not a JSON object".into());
    };
    for key in ["meta", "groups"] {
        obj.remove(key);
    }
    for change in changes {
        let (path, ty, multi) = checked(kind, service, &change.attr)?;
        let plain_list = multi && path.typed.is_none() && path.sub.is_none();
        match &change.op {
            ChangeOp::Replace(v) if v.is_empty() => remove_at(obj, &path),
            ChangeOp::Remove(_) if !plain_list => remove_at(obj, &path),
            ChangeOp::Add(v) if plain_list => {
                let new = json_values(&path, v, ty, ids)?;
                let Some(holder) = holder_mut(obj, &path) else {
                    continue;
                };
                let list = holder
                    .entry(path.attr.clone())
                    .or_insert_with(|| Json::Array(Vec::new()));
                match list.as_array_mut() {
                    Some(a) => a.extend(new),
                    None => *list = Json::Array(new),
                }
            }
            ChangeOp::Remove(v) => {
                let gone = json_values(&path, v, ty, ids)?;
                let Some(holder) = holder_mut(obj, &path) else {
                    continue;
                };
                if let Some(a) = holder.get_mut(&path.attr).and_then(Json::as_array_mut) {
                    a.retain(|x| {
                        !gone.iter().any(|g| {
                            g == x || (g.get("value").is_some() && g.get("value") == x.get("value"))
                        })
                    });
                }
            }
            ChangeOp::Replace(v) | ChangeOp::Add(v) => {
                let json = json_values(&path, v, ty, ids)?;
                place(obj, &path, one_or_many(json, multi));
            }
        }
    }
    Ok(())
}

/// The object an attribute lives in: the resource, or its extension's object (made when
/// missing).
fn holder_mut<'a>(
    obj: &'a mut Map<String, Json>,
    path: &AttrPath,
) -> Option<&'a mut Map<String, Json>> {
    let Some(urn) = &path.urn else {
        return Some(obj);
    };
    let ext = obj
        .entry(urn.clone())
        .or_insert_with(|| Json::Object(Map::new()));
    if !ext.is_object() {
        *ext = Json::Object(Map::new());
    }
    ext.as_object_mut()
}

fn remove_at(obj: &mut Map<String, Json>, path: &AttrPath) {
    let target = match &path.urn {
        Some(urn) => match obj.get_mut(urn).and_then(Json::as_object_mut) {
            Some(m) => m,
            None => return,
        },
        None => obj,
    };
    match (&path.typed, &path.sub) {
        (None, None) => {
            target.remove(&path.attr);
        }
        (None, Some(sub)) => {
            if let Some(m) = target.get_mut(&path.attr).and_then(Json::as_object_mut) {
                m.remove(sub);
            }
        }
        (Some(ty), sub) => {
            if let Some(list) = target.get_mut(&path.attr).and_then(Json::as_array_mut) {
                if sub.as_deref().is_none_or(|s| s == "value") {
                    list.retain(|e| e.get("type").and_then(Json::as_str) != Some(ty.as_str()));
                } else if let Some(sub) = sub {
                    for e in list.iter_mut() {
                        if e.get("type").and_then(Json::as_str) == Some(ty.as_str()) {
                            if let Some(m) = e.as_object_mut() {
                                m.remove(sub);
                            }
                        }
                    }
                }
            }
        }
    }
}
