//! Export: one stage at a time, in two rounds of `$batch` requests. The first round creates,
//! updates and deletes objects; the second sets what needs their ids: the manager
//! (`/manager/$ref`), members added 20 per request by `members@odata.bind`, members removed
//! one by one. Before a create, soft match: a user already in Graph with the same
//! `onPremisesImmutableId`, else the same `userPrincipalName` or `mail` (a group: the same
//! `mailNickname`) is taken over instead of duplicated. Nothing is sent for a change that
//! changes nothing in Graph.

use std::time::Duration;

use hyper::Method;
use serde_json::{Map, Value as Json, json};

use super::Index;
use super::client::{Answer, BATCH_LIMIT, Call, Graph};
use super::resource::{self, Kind, REFERENCES, anchor_id, object_url, put, ref_id};
use crate::model::{Anchor, Attributes, ChangeOp, ExportItem, ExportKind, ExportOutcome, ValueSet};

/// How often a reference to a just-created object is tried again while Graph's
/// replicas catch up (Microsoft documents a few seconds), with the wait doubling from 1 s.
const REPLICATION_RETRIES: u32 = 5;

/// What one item needs sent in the second round, as reference values: they are resolved to
/// ids only then, when the first round has created what they may name.
#[derive(Default)]
struct Later {
    /// The new manager (an empty set: remove the manager).
    manager: Option<ValueSet>,
    /// Members to add.
    add: Vec<crate::model::Value>,
    /// Members to remove.
    remove: Vec<crate::model::Value>,
    /// The whole membership, when a change replaces it.
    replace: Option<ValueSet>,
    /// Member ids the create already carried.
    sent: Vec<String>,
}

/// One item's progress.
struct Work {
    kind: Kind,
    id: Option<String>,
    outcome: Option<ExportOutcome>,
    later: Later,
}

fn failed(message: String, retryable: bool) -> Option<ExportOutcome> {
    Some(ExportOutcome::Failed { message, retryable })
}

/// Exports the items; one outcome each, in order.
pub async fn run(
    graph: &Graph,
    root: &str,
    index: &mut Index,
    items: &[ExportItem],
) -> Vec<ExportOutcome> {
    let mut outcomes: Vec<Option<ExportOutcome>> = (0..items.len()).map(|_| None).collect();
    let mut stages: Vec<u16> = items.iter().map(|i| i.stage).collect();
    stages.sort_unstable();
    stages.dedup();
    for stage in stages {
        let at: Vec<usize> = (0..items.len())
            .filter(|i| items[*i].stage == stage)
            .collect();
        let done = export_stage(
            graph,
            root,
            index,
            &at.iter().map(|i| &items[*i]).collect::<Vec<_>>(),
        )
        .await;
        for (i, o) in at.into_iter().zip(done) {
            outcomes[i] = Some(o);
        }
    }
    outcomes
        .into_iter()
        .map(|o| {
            o.unwrap_or(ExportOutcome::NotTried {
                reason: "not reached".into(),
            })
        })
        .collect()
}

async fn export_stage(
    graph: &Graph,
    root: &str,
    index: &mut Index,
    items: &[&ExportItem],
) -> Vec<ExportOutcome> {
    let mut work = Vec::new();
    let mut calls: Vec<(usize, Call)> = Vec::new();
    for (n, item) in items.iter().enumerate() {
        let (w, call) = plan(root, index, item);
        if let Some(c) = call {
            calls.push((n, c));
        }
        work.push(w);
    }
    let answers = graph
        .batch(&calls.iter().map(|(_, c)| c.clone()).collect::<Vec<_>>())
        .await;
    for ((n, call), answer) in calls.iter().zip(answers) {
        let w = &mut work[*n];
        match answer {
            Ok((_, body)) => {
                if call.method == Method::POST {
                    let id = body.get("id").and_then(Json::as_str).map(str::to_string);
                    if let Some(id) = &id {
                        let item = items[*n];
                        index.remember(
                            w.kind,
                            id,
                            &item.dn,
                            call.body.clone().unwrap_or(Json::Null),
                        );
                    }
                    w.id = id;
                } else if call.method == Method::DELETE {
                    if let Some(id) = &w.id {
                        index.forget(id);
                    }
                } else if let (Some(id), Some(b)) = (&w.id, &call.body) {
                    index.merge(id, b);
                }
            }
            Err(e) => {
                w.outcome = failed(
                    format!("{} {}: {e}", call.method, call.path),
                    e.is_passing(),
                );
            }
        }
    }
    second_round(graph, root, index, items, &mut work).await;
    work.into_iter()
        .zip(items)
        .map(|(w, item)| {
            w.outcome.unwrap_or(ExportOutcome::Applied {
                anchor: if item.kind == ExportKind::Add {
                    w.id.map(|i| Anchor::new(i.into_bytes()))
                } else {
                    None
                },
                server_attrs: Attributes::new(),
            })
        })
        .collect()
}

/// Plans one item: its first-round call, and what waits for the second round.
fn plan(root: &str, index: &Index, item: &ExportItem) -> (Work, Option<Call>) {
    let kind = Kind::of_class(&item.object_class);
    let mut w = Work {
        kind: kind.unwrap_or(Kind::User),
        id: item.anchor.as_ref().and_then(anchor_id),
        outcome: None,
        later: Later::default(),
    };
    let Some(kind) = kind else {
        w.outcome = failed(
            format!(
                "{}: a graph connector writes users and groups, not {:?}",
                item.dn, item.object_class
            ),
            false,
        );
        return (w, None);
    };
    if kind == Kind::Contact {
        w.outcome = failed(
            "orgContact is read-only in Microsoft Graph (contacts come from Exchange Online or \
             directory sync): the rule that provisions it to this connector cannot be carried out"
                .to_string(),
            false,
        );
        return (w, None);
    }
    let coll = kind.collection();
    if item.kind == ExportKind::Delete {
        return match &w.id {
            Some(id) => {
                let path = format!("/{coll}/{id}");
                (
                    w,
                    Some(Call {
                        method: Method::DELETE,
                        path,
                        body: None,
                    }),
                )
            }
            None => (w, None),
        };
    }
    // The body of plain properties, and the references for later.
    let mut body = Map::new();
    for c in &item.changes {
        let name = c.attr.as_str();
        if REFERENCES.contains(&name) {
            match (name, &c.op) {
                ("manager", ChangeOp::Replace(v) | ChangeOp::Add(v)) => {
                    w.later.manager = Some(v.clone())
                }
                ("manager", ChangeOp::Remove(_)) => w.later.manager = Some(ValueSet::new()),
                (_, ChangeOp::Replace(v)) if item.kind == ExportKind::Add => {
                    w.later.add.extend(v.iter().cloned())
                }
                (_, ChangeOp::Add(v)) => w.later.add.extend(v.iter().cloned()),
                (_, ChangeOp::Remove(v)) => w.later.remove.extend(v.iter().cloned()),
                (_, ChangeOp::Replace(v)) => w.later.replace = Some(v.clone()),
            }
            continue;
        }
        match &c.op {
            ChangeOp::Replace(v) | ChangeOp::Add(v) => put(&mut body, name, v),
            ChangeOp::Remove(_) => put(&mut body, name, &ValueSet::new()),
        }
    }
    // The naming property travels in the DN (as an LDAP RDN would), not among the changes.
    if item.kind == ExportKind::Add {
        let attr = item
            .dn
            .rdn()
            .split('=')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        if ["userPrincipalName", "mailNickname"].contains(&attr.as_str()) {
            if let Some(v) = item.dn.rdn_value() {
                body.entry(attr).or_insert(json!(v));
            }
        }
    }
    if item.kind == ExportKind::Update {
        let Some(id) = w.id.clone() else {
            w.outcome = failed("no Graph id to update".to_string(), false);
            return (w, None);
        };
        let body = index.unchanged_removed(&id, body);
        if body.is_empty() {
            return (w, None);
        }
        let path = format!("/{coll}/{id}");
        return (
            w,
            Some(Call {
                method: Method::PATCH,
                path,
                body: Some(Json::Object(body)),
            }),
        );
    }
    // A create: soft match first.
    let text =
        |body: &Map<String, Json>, k: &str| body.get(k).and_then(Json::as_str).map(str::to_string);
    let matched = match kind {
        Kind::User => text(&body, "onPremisesImmutableId")
            .and_then(|v| index.find(kind, "onPremisesImmutableId", &v))
            .or_else(|| {
                text(&body, "userPrincipalName")
                    .and_then(|v| index.find(kind, "userPrincipalName", &v))
            })
            .or_else(|| text(&body, "mail").and_then(|v| index.find(kind, "mail", &v))),
        _ => text(&body, "mailNickname").and_then(|v| index.find(kind, "mailNickname", &v)),
    };
    if let Some(id) = matched {
        tracing::info!(
            "{}: soft match: taking over Graph {} {id}",
            item.dn,
            kind.class()
        );
        let body = index.unchanged_removed(&id, body);
        w.id = Some(id.clone());
        if body.is_empty() {
            return (w, None);
        }
        let path = format!("/{coll}/{id}");
        return (
            w,
            Some(Call {
                method: Method::PATCH,
                path,
                body: Some(Json::Object(body)),
            }),
        );
    }
    match kind {
        Kind::User => {
            body.entry("accountEnabled").or_insert(json!(true));
            body.entry("passwordProfile").or_insert_with(|| {
                json!({"password": resource::random_password(), "forceChangePasswordNextSignIn": false})
            });
            if !body.contains_key("mailNickname") {
                if let Some(upn) = text(&body, "userPrincipalName") {
                    let nick: String = upn
                        .split('@')
                        .next()
                        .unwrap_or("")
                        .chars()
                        .filter(|c| c.is_ascii_alphanumeric() || "._-".contains(*c))
                        .collect();
                    body.insert("mailNickname".into(), json!(nick));
                }
            }
        }
        _ => {
            body.entry("mailEnabled").or_insert(json!(false));
            body.entry("securityEnabled").or_insert(json!(true));
            // Up to 20 members already in Graph go with the create; the rest follow in the
            // second round.
            let of_dn = |dn: &crate::model::Dn| index.id_of_dn(dn);
            let first: Vec<String> = w
                .later
                .add
                .iter()
                .filter_map(|v| ref_id(v, &of_dn))
                .take(BATCH_LIMIT)
                .collect();
            w.later.sent = first.clone();
            if !first.is_empty() {
                let urls: Vec<Json> = first.iter().map(|m| json!(object_url(root, m))).collect();
                body.insert("members@odata.bind".into(), Json::Array(urls));
            }
        }
    }
    (
        w,
        Some(Call {
            method: Method::POST,
            path: format!("/{coll}"),
            body: Some(Json::Object(body)),
        }),
    )
}

/// The second round: references, with the retries Graph's replication needs.
async fn second_round(
    graph: &Graph,
    root: &str,
    index: &mut Index,
    items: &[&ExportItem],
    work: &mut [Work],
) {
    let mut calls: Vec<(usize, Call)> = Vec::new();
    for (n, w) in work.iter_mut().enumerate() {
        let (Some(id), None) = (w.id.clone(), &w.outcome) else {
            continue;
        };
        let coll = w.kind.collection();
        let resolve = |vals: &[crate::model::Value]| -> Result<Vec<String>, String> {
            vals.iter()
                .map(|v| {
                    ref_id(v, &|dn: &crate::model::Dn| index.id_of_dn(dn))
                        .ok_or_else(|| v.to_text())
                })
                .collect()
        };
        let manager = match &w.later.manager {
            Some(v) => {
                resolve(&v.iter().cloned().collect::<Vec<_>>()).map(|m| Some(m.into_iter().next()))
            }
            None => Ok(None),
        };
        let adds = resolve(&w.later.add);
        // A member that is not (or no longer) in Graph has nothing to remove.
        let removes: Result<Vec<String>, String> = Ok(w
            .later
            .remove
            .iter()
            .filter_map(|v| ref_id(v, &|dn: &crate::model::Dn| index.id_of_dn(dn)))
            .collect());
        let replace = match &w.later.replace {
            Some(v) => resolve(&v.iter().cloned().collect::<Vec<_>>()).map(Some),
            None => Ok(None),
        };
        let (manager, mut adds, mut removes, replace) = match (manager, adds, removes, replace) {
            (Ok(m), Ok(a), Ok(r), Ok(x)) => (m, a, r, x),
            (Err(which), ..) | (_, Err(which), ..) | (_, _, Err(which), _) | (.., Err(which)) => {
                w.outcome = failed(
                    format!("a reference names {which}, which is not in Graph yet"),
                    true,
                );
                continue;
            }
        };
        let now = index.members(&id);
        if let Some(all) = replace {
            removes.extend(now.iter().filter(|m| !all.contains(m)).cloned());
            adds.extend(all.into_iter().filter(|m| !now.contains(m)));
        }
        // Never a write that changes nothing: members already there are not added again.
        adds.retain(|m| !now.contains(m) && !w.later.sent.contains(m));
        removes.retain(|m| now.contains(m));
        match manager {
            Some(Some(m)) if index.manager(&id).as_deref() != Some(m.as_str()) => calls.push((
                n,
                Call {
                    method: Method::PUT,
                    path: format!("/users/{id}/manager/$ref"),
                    body: Some(json!({"@odata.id": object_url(root, &m)})),
                },
            )),
            Some(None) if index.manager(&id).is_some() => calls.push((
                n,
                Call {
                    method: Method::DELETE,
                    path: format!("/users/{id}/manager/$ref"),
                    body: None,
                },
            )),
            _ => {}
        }
        for chunk in adds.chunks(BATCH_LIMIT) {
            let urls: Vec<Json> = chunk.iter().map(|m| json!(object_url(root, m))).collect();
            calls.push((
                n,
                Call {
                    method: Method::PATCH,
                    path: format!("/{coll}/{id}"),
                    body: Some(json!({"members@odata.bind": urls})),
                },
            ));
        }
        for m in &removes {
            calls.push((
                n,
                Call {
                    method: Method::DELETE,
                    path: format!("/{coll}/{id}/members/{m}/$ref"),
                    body: None,
                },
            ));
        }
    }
    let mut pause = Duration::from_secs(1);
    for attempt in 0..=REPLICATION_RETRIES {
        if calls.is_empty() {
            break;
        }
        let answers: Vec<Answer> = graph
            .batch(&calls.iter().map(|(_, c)| c.clone()).collect::<Vec<_>>())
            .await;
        let mut again = Vec::new();
        for ((n, call), answer) in calls.into_iter().zip(answers) {
            match answer {
                Ok(_) => record(index, &work[n], &call),
                Err(e) => {
                    // Just created, not yet everywhere: Graph says 404 or "do not exist".
                    let lag = e.status() == Some(404) || e.to_string().contains("do not exist");
                    if lag && attempt < REPLICATION_RETRIES {
                        again.push((n, call));
                    } else if work[n].outcome.is_none() {
                        work[n].outcome = failed(
                            format!("{}: {} {}: {e}", items[n].dn, call.method, call.path),
                            e.is_passing(),
                        );
                    }
                }
            }
        }
        calls = again;
        if !calls.is_empty() {
            tokio::time::sleep(pause).await;
            pause *= 2;
        }
    }
}

/// Notes in the index what a second-round call changed.
fn record(index: &mut Index, w: &Work, call: &Call) {
    let Some(id) = &w.id else { return };
    if call.path.ends_with("/manager/$ref") {
        let m = call
            .body
            .as_ref()
            .and_then(|b| b.get("@odata.id"))
            .and_then(Json::as_str)
            .and_then(|u| u.rsplit('/').next())
            .map(str::to_string);
        index.set_manager(id, m);
    } else if let Some(b) = &call.body {
        for u in b
            .get("members@odata.bind")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(m) = u.as_str().and_then(|u| u.rsplit('/').next()) {
                index.set_member(id, m, true);
            }
        }
    } else if let Some(m) = call
        .path
        .strip_suffix("/$ref")
        .and_then(|p| p.rsplit('/').next())
    {
        index.set_member(id, m, false);
    }
}
