//! Import by delta query: `/users/delta`, `/groups/delta` (with `members`) and
//! `/contacts/delta`. A first import runs each from the start (every object, then a
//! deltaLink); later ones run from the deltaLinks, which together are the watermark.
//! `@removed` entries are deletes; a deltaLink Graph no longer knows (410,
//! `syncStateNotFound`, `resyncRequired`) means a full import, logged.

use serde_json::{Value as Json, json};

use super::Index;
use super::client::{Graph, PagesError};
use super::resource::{Kind, attributes, dn_for};
use crate::connector::ImportSink;
use crate::connector::http::HttpError;
use crate::model::{
    Anchor, AttrChange, AttrName, ChangeOp, Dn, ImportChange, ImportedObject, PartialObject,
    RefTarget, Value, ValueSet, Watermark,
};

/// The kinds imported, in order: members and managers name users read before them.
const KINDS: [Kind; 3] = [Kind::User, Kind::Group, Kind::Contact];

/// Why an import stopped.
pub enum ImportError {
    /// Graph failed or refused.
    Http(HttpError),
    /// The store refused a change.
    Sink(String),
}

/// Whether Graph refused a deltaLink as unknown or expired: start over.
fn expired(e: &HttpError) -> bool {
    e.status() == Some(410) || matches!(e.scim_type(), Some("syncStateNotFound" | "resyncRequired"))
}

/// The deltaLinks in a watermark, per kind.
fn links(w: &Watermark) -> Option<Vec<String>> {
    let v: Json = serde_json::from_slice(&w.0).ok()?;
    KINDS
        .iter()
        .map(|k| {
            v.get(k.collection())
                .and_then(Json::as_str)
                .map(str::to_string)
        })
        .collect()
}

/// Runs the import; returns the new watermark and whether it was a full one.
pub async fn run(
    graph: &Graph,
    index: &mut Index,
    watermark: Option<&Watermark>,
    full: bool,
    sink: &mut dyn ImportSink,
) -> Result<(Watermark, bool), ImportError> {
    let from = if full {
        None
    } else {
        watermark.and_then(links)
    };
    match rounds(graph, index, from.as_deref(), sink).await {
        Err(ImportError::Http(e)) if from.is_some() && expired(&e) => {
            tracing::warn!(
                "Graph refused the stored deltaLink ({e}); running a full import instead"
            );
            rounds(graph, index, None, sink).await
        }
        other => other,
    }
}

async fn rounds(
    graph: &Graph,
    index: &mut Index,
    from: Option<&[String]>,
    sink: &mut dyn ImportSink,
) -> Result<(Watermark, bool), ImportError> {
    if from.is_none() {
        index.clear();
    }
    let mut out = serde_json::Map::new();
    for (n, kind) in KINDS.iter().enumerate() {
        let first = match from {
            Some(l) => graph.relative(&l[n]).map_err(ImportError::Http)?,
            None => format!("/{}/delta?$select={}", kind.collection(), kind.select()),
        };
        let mut entries = Vec::new();
        let link = graph
            .pages(&first, &mut |values| {
                entries.extend(values);
                Ok(())
            })
            .await
            .map_err(|e| match e {
                PagesError::Http(h) => ImportError::Http(h),
                PagesError::Sink(m) => ImportError::Sink(m),
            })?;
        // Members may be objects later in the same round (a nested group): every new object
        // is named in the index first, so that references to it get its DN.
        let olds: Vec<Option<Json>> = entries
            .iter()
            .map(|e| {
                e.get("id")
                    .and_then(Json::as_str)
                    .and_then(|id| index.props(id).cloned())
            })
            .collect();
        for (e, old) in entries.iter().zip(&olds) {
            if let (Some(id), None, None) =
                (e.get("id").and_then(Json::as_str), old, e.get("@removed"))
            {
                index.remember(*kind, id, &dn_for(*kind, e, id), e.clone());
            }
        }
        for (e, old) in entries.iter().zip(olds) {
            deliver(*kind, e, old, index, sink).map_err(ImportError::Sink)?;
        }
        let link = link.ok_or_else(|| {
            ImportError::Http(HttpError::Network(format!(
                "/{}/delta ended without a deltaLink",
                kind.collection()
            )))
        })?;
        out.insert(kind.collection().into(), json!(link));
    }
    let w = Watermark(Json::Object(out).to_string().into_bytes());
    Ok((w, from.is_none()))
}

/// A reference to the object with this id, as the DN the connector space knows it by
/// (what exports name it by, so that a confirming import's removal matches).
fn link(index: &Index, id: &str) -> Value {
    let dn = index
        .dn_of(id)
        .unwrap_or_else(|| Dn::parse(&format!("id={id},ou=Users")).unwrap_or_else(|_| Dn::root()));
    Value::Reference(RefTarget::Dn(dn))
}

/// The ids in `members@delta` / `manager@delta`, split into added and removed.
fn deltas(e: &Json, nav: &str) -> (Vec<String>, Vec<String>) {
    let (mut added, mut removed) = (Vec::new(), Vec::new());
    for m in e
        .get(format!("{nav}@delta"))
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(id) = m.get("id").and_then(Json::as_str) {
            if m.get("@removed").is_some() {
                removed.push(id.to_string());
            } else {
                added.push(id.to_string());
            }
        }
    }
    (added, removed)
}

fn deliver(
    kind: Kind,
    e: &Json,
    old: Option<Json>,
    index: &mut Index,
    sink: &mut dyn ImportSink,
) -> Result<(), String> {
    let Some(id) = e.get("id").and_then(Json::as_str) else {
        return Ok(());
    };
    let anchor = Anchor::new(id.as_bytes().to_vec());
    if e.get("@removed").is_some() {
        index.forget(id);
        return sink.push(ImportChange::Delete(anchor));
    }
    let known = sink.knows(&anchor)?;
    // Delta entries carry at least what changed; merged over what was seen before.
    let mut props = old.clone().unwrap_or_else(|| json!({}));
    if let (Some(p), Some(n)) = (props.as_object_mut(), e.as_object()) {
        for (k, v) in n {
            if !k.contains('@') {
                p.insert(k.clone(), v.clone());
            }
        }
    }
    let dn = dn_for(kind, &props, id);
    index.remember(kind, id, &dn, props.clone());
    let nav = if kind == Kind::Group {
        "members"
    } else {
        "manager"
    };
    let (added, removed) = deltas(e, nav);
    if kind == Kind::Group {
        for m in &added {
            index.set_member(id, m, true);
        }
        for m in &removed {
            index.set_member(id, m, false);
        }
    } else if kind == Kind::User && (!added.is_empty() || !removed.is_empty()) {
        index.set_manager(id, added.first().cloned());
    }
    let mut attrs = attributes(&props);
    if known && old.is_some() {
        let mut changes: Vec<AttrChange> = attrs
            .iter()
            .map(|(n, v)| AttrChange {
                attr: n.clone(),
                op: ChangeOp::Replace(v.clone()),
            })
            .collect();
        // What the old state had and the new lacks is cleared.
        for (n, _) in attributes(old.as_ref().unwrap_or(&Json::Null)).iter() {
            if attrs.get(n.as_str()).is_none() {
                changes.push(AttrChange {
                    attr: n.clone(),
                    op: ChangeOp::Replace(ValueSet::new()),
                });
            }
        }
        let set = |ids: &[String]| {
            let mut s = ValueSet::new();
            for i in ids {
                s.insert(link(index, i));
            }
            s
        };
        if kind == Kind::User && (!added.is_empty() || !removed.is_empty()) {
            changes.push(AttrChange {
                attr: AttrName::new("manager"),
                op: ChangeOp::Replace(set(&added)),
            });
        } else if kind == Kind::Group {
            if !added.is_empty() {
                changes.push(AttrChange {
                    attr: AttrName::new("members"),
                    op: ChangeOp::Add(set(&added)),
                });
            }
            if !removed.is_empty() {
                changes.push(AttrChange {
                    attr: AttrName::new("members"),
                    op: ChangeOp::Remove(set(&removed)),
                });
            }
        }
        return sink.push(ImportChange::Merge(PartialObject {
            anchor,
            dn,
            changes,
        }));
    }
    if !added.is_empty() {
        let mut s = ValueSet::new();
        for i in &added {
            s.insert(link(index, i));
        }
        attrs.set(AttrName::new(nav), s);
    }
    sink.push(ImportChange::Upsert(ImportedObject {
        anchor,
        dn,
        object_class: kind.class().to_string(),
        attrs,
    }))
}
