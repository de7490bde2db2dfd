//! Export: creates (after a soft match on externalId, then userName or displayName), PATCHes
//! of exactly the changed attributes (PUT where the service has no PATCH), and deletes;
//! several requests in flight, outcomes in order.

use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::stream::{self, StreamExt};
use hyper::Method;
use serde_json::Value as Json;

use super::create::{Create, Prepared, add, prepare_add};
use super::http::{HttpError, Retry};
use super::late::{Waiting, only_resolved, send_waiting};
use super::path::json_string;
use super::resource::{
    DnKey, Ids, Late, Op, add_missing_entries, dn_key, patch_message, patch_requests,
    referenced_dns,
};
use super::schema::Kind;
use super::{Client, Lookup};
use crate::model::{
    Anchor, AttrChange, AttrName, Attributes, ChangeOp, Dn, ExportItem, ExportKind, ExportOutcome,
    Value, ValueSet,
};

/// Applies a batch; one outcome per item, in order. The items come in the runner's order
/// (deletes, updates, adds, updates that reference the adds), in stages; each stage is done
/// before the next starts, so a userName a delete or another update frees is free when the
/// request that takes it is sent, even with several requests in flight.
pub async fn export_all(client: &Client, items: &[ExportItem]) -> Vec<ExportOutcome> {
    let down = AtomicBool::new(false);
    let mut results: Vec<(ExportOutcome, Vec<Late>)> = Vec::with_capacity(items.len());
    let mut start = 0;
    while start < items.len() {
        let (kind, stage) = (items[start].kind, items[start].stage);
        let len = items[start..]
            .iter()
            .take_while(|i| i.kind == kind && i.stage == stage)
            .count();
        let run = &items[start..start + len];
        results.extend(one_run(client, run, &down).await);
        start += len;
    }
    let mut outcomes = Vec::with_capacity(results.len());
    let mut late = Vec::new();
    for (i, (outcome, refs)) in results.into_iter().enumerate() {
        if let ExportOutcome::Applied { anchor, .. } = &outcome {
            let id = anchor_id(anchor.as_ref().or(items[i].anchor.as_ref()));
            if let (Some(id), false) = (id, refs.is_empty()) {
                if let Some(kind) = Kind::of_class(&items[i].object_class) {
                    late.push(Waiting {
                        dn: items[i].dn.clone(),
                        kind,
                        id,
                        refs,
                    });
                }
            }
        }
        outcomes.push(outcome);
    }
    // References to objects created in this batch, and those still waiting from earlier
    // batches of the same export (a manager in the next batch of 2,000).
    if let Some(mut earlier) = client.late.lock().ok().map(|mut l| std::mem::take(&mut *l)) {
        late.append(&mut earlier);
    }
    let waiting = send_waiting(client, late, &down).await;
    if let Ok(mut l) = client.late.lock() {
        l.extend(waiting);
    }
    outcomes
}

/// One run of items of one kind: several requests in flight, creates in bulk.
async fn one_run(
    client: &Client,
    items: &[ExportItem],
    down: &AtomicBool,
) -> Vec<(ExportOutcome, Vec<Late>)> {
    let bulk = client.cfg.bulk_size > 0 && client.service.bulk.is_some();
    let steps: Vec<Step> = stream::iter(items)
        .map(|item| async {
            if down.load(Ordering::Relaxed) {
                return Step::Ready(
                    not_tried("the service stopped answering earlier in this batch"),
                    Vec::new(),
                );
            }
            let kind = Kind::of_class(&item.object_class);
            let result = match (kind, item.kind) {
                (Some(kind), ExportKind::Add) if bulk => {
                    match prepare_add(client, kind, item, false).await {
                        Ok(Prepared::Create(c)) => return Step::Pending(c),
                        Ok(Prepared::Done(outcome, late)) => (outcome, late),
                        Err(e) => (failure(e), Vec::new()),
                    }
                }
                _ => match one(client, item).await {
                    Ok(r) => r,
                    Err(e) => (failure(e), Vec::new()),
                },
            };
            if matches!(result.0, ExportOutcome::NotTried { .. }) {
                down.store(true, Ordering::Relaxed);
            }
            Step::Ready(result.0, result.1)
        })
        .buffered(client.cfg.in_flight)
        .collect()
        .await;
    let mut results: Vec<(ExportOutcome, Vec<Late>)> = Vec::with_capacity(items.len());
    let mut pending = Vec::new();
    for (i, step) in steps.into_iter().enumerate() {
        match step {
            Step::Ready(outcome, late) => results.push((outcome, late)),
            Step::Pending(c) => {
                results.push((not_tried("not sent"), Vec::new()));
                pending.push((i, c));
            }
        }
    }
    if !pending.is_empty() && !down.load(Ordering::Relaxed) {
        for (i, result) in super::bulk::create_all(client, items, pending).await {
            let result = result.unwrap_or_else(|e| (failure(e), Vec::new()));
            if matches!(result.0, ExportOutcome::NotTried { .. }) {
                down.store(true, Ordering::Relaxed);
            }
            results[i] = result;
        }
    }
    results
}

/// An item after the first pass: settled, or a create waiting for its bulk request.
enum Step {
    Ready(ExportOutcome, Vec<Late>),
    Pending(Create),
}

pub(super) fn not_tried(reason: &str) -> ExportOutcome {
    ExportOutcome::NotTried {
        reason: reason.to_string(),
    }
}

/// What an error means for the object: an outage leaves it pending untouched; anything
/// else is the service's answer, kept on the object.
pub(super) fn failure(e: HttpError) -> ExportOutcome {
    if e.is_passing() {
        return not_tried(&e.to_string());
    }
    ExportOutcome::Failed {
        retryable: matches!(e.status(), Some(404 | 412)),
        message: e.to_string(),
    }
}

pub(super) fn refused(message: String) -> ExportOutcome {
    ExportOutcome::Failed {
        message,
        retryable: false,
    }
}

/// One item: its outcome, and for a created group the members still to add.
async fn one(client: &Client, item: &ExportItem) -> Result<(ExportOutcome, Vec<Late>), HttpError> {
    let Some(kind) = Kind::of_class(&item.object_class) else {
        return Ok((
            refused(format!(
                "object class {:?}: a scim connector exports User or Group objects",
                item.object_class
            )),
            Vec::new(),
        ));
    };
    match item.kind {
        ExportKind::Add => add(client, kind, item, false).await,
        ExportKind::Update => {
            let Some(id) = anchor_id(item.anchor.as_ref()) else {
                return Ok((
                    refused("an update without the service's id".into()),
                    Vec::new(),
                ));
            };
            let mut changes = item.changes.clone();
            if let Some(new_dn) = &item.new_dn {
                if let Some(c) = rename_change(new_dn, &changes) {
                    changes.push(c);
                }
            }
            update(client, kind, &id, &changes).await
        }
        ExportKind::Delete => {
            let Some(id) = anchor_id(item.anchor.as_ref()) else {
                return Ok((applied(None), Vec::new()));
            };
            let outcome = delete(client, kind, &id).await?;
            // Groups that listed it still do: their removal of it must find its id
            // even when no import indexed it.
            client.remember_gone(&item.dn, &id);
            Ok((outcome, Vec::new()))
        }
    }
}

fn anchor_id(anchor: Option<&Anchor>) -> Option<String> {
    anchor
        .and_then(|a| std::str::from_utf8(a.as_bytes()).ok())
        .map(str::to_string)
}

pub(super) fn applied(anchor: Option<String>) -> ExportOutcome {
    ExportOutcome::Applied {
        anchor: anchor.map(|id| Anchor::new(id.into_bytes())),
        server_attrs: Attributes::new(),
    }
}

/// A move to a DN with another externalId changes the resource's externalId.
fn rename_change(new_dn: &Dn, changes: &[AttrChange]) -> Option<AttrChange> {
    let (_, DnKey::ExternalId(x)) = dn_key(new_dn)? else {
        return None;
    };
    if changes.iter().any(|c| c.attr.is("externalId")) {
        return None;
    }
    Some(AttrChange {
        attr: AttrName::new("externalId"),
        op: ChangeOp::Replace(ValueSet::one(Value::String(x))),
    })
}

/// Finds the service's id for each referenced DN (known ones from the cache, the rest by
/// an externalId filter); unresolvable ones are left out.
pub(super) async fn resolve(client: &Client, dns: &[Dn]) -> Result<Ids, HttpError> {
    let mut ids = Ids::new();
    for dn in dns {
        if ids.contains_key(dn.norm()) {
            continue;
        }
        match client.lookup_dn(dn) {
            Lookup::Found(id) => {
                ids.insert(dn.norm().to_string(), id);
                continue;
            }
            Lookup::Absent => continue,
            Lookup::Unknown => {}
        }
        let found = match dn_key(dn) {
            Some((_, DnKey::Id(id))) => Some(id),
            Some((kind, DnKey::ExternalId(x))) => find(client, kind, "externalId", &x)
                .await?
                .map(|(id, _)| id),
            None => None,
        };
        if let Some(id) = found {
            client.remember(dn, &id);
            ids.insert(dn.norm().to_string(), id);
        }
    }
    Ok(ids)
}

/// The first resource whose `attr` equals `value`, with its body.
pub(super) async fn find(
    client: &Client,
    kind: Kind,
    attr: &str,
    value: &str,
) -> Result<Option<(String, Json)>, HttpError> {
    if !client.service.filter {
        return Ok(None);
    }
    let endpoint = client.endpoint(kind).map_err(unservable)?;
    let filter = format!("{attr} eq {}", json_string(value));
    let path = format!("{endpoint}?filter={}", url_encode(&filter));
    let reply = client
        .http
        .call(Method::GET, &path, None, None, Retry::Idempotent)
        .await?;
    let body: Json = serde_json::from_slice(&reply.body).unwrap_or(Json::Null);
    let first = body
        .get("Resources")
        .and_then(Json::as_array)
        .and_then(|a| a.first())
        .cloned();
    Ok(first.and_then(|r| {
        let id = r.get("id").and_then(Json::as_str)?.to_string();
        let tag = r
            .get("meta")
            .and_then(|m| m.get("version"))
            .and_then(Json::as_str);
        client.set_etag(&id, tag);
        Some((id, r))
    }))
}

/// A request this service cannot take (no such resource type, a value it cannot hold),
/// as the service's refusal would read: kept on the object, not retried.
pub(super) fn unservable(m: String) -> HttpError {
    HttpError::Status {
        status: 400,
        scim_type: Some("invalidValue".into()),
        detail: m,
    }
}

/// Percent-encodes a query value (RFC 3986 unreserved characters stay).
fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(super) async fn update(
    client: &Client,
    kind: Kind,
    id: &str,
    changes: &[AttrChange],
) -> Result<(ExportOutcome, Vec<Late>), HttpError> {
    let mut ids = resolve(client, &referenced_dns(changes)).await?;
    for c in changes {
        if let ChangeOp::Remove(v) = &c.op {
            for dn in v.iter().filter_map(Value::as_dn_ref) {
                if !ids.contains_key(dn.norm()) {
                    if let Some(id) = client.gone_id(dn) {
                        ids.insert(dn.norm().to_string(), id);
                    }
                }
            }
        }
    }
    let (changes, late) = only_resolved(changes, &ids);
    if changes.is_empty() {
        return Ok((applied(None), late));
    }
    if !client.service.patch {
        return Ok((put(client, kind, id, &changes, &ids).await?, late));
    }
    let requests = match patch_requests(
        kind,
        &changes,
        &client.service,
        &ids,
        client.cfg.member_chunk,
    ) {
        Ok(r) => r,
        Err(m) => return Ok((refused(m), Vec::new())),
    };
    for ops in requests {
        patch(client, kind, id, &ops).await?;
    }
    Ok((applied(None), late))
}

fn resource_path(client: &Client, kind: Kind, id: &str) -> Result<String, HttpError> {
    Ok(format!(
        "{}/{id}",
        client.endpoint(kind).map_err(unservable)?
    ))
}

async fn get(client: &Client, kind: Kind, id: &str) -> Result<Json, HttpError> {
    let path = resource_path(client, kind, id)?;
    let reply = client
        .http
        .call(Method::GET, &path, None, None, Retry::Idempotent)
        .await?;
    client.set_etag(id, reply.etag.as_deref());
    serde_json::from_slice(&reply.body).map_err(|e| HttpError::Status {
        status: reply.status,
        scim_type: None,
        detail: format!("GET {path}: not JSON: {e}"),
    })
}

/// One PATCH, with If-Match; a stale ETag is refreshed once, and typed replaces whose
/// entry does not exist yet are turned into adds.
pub(super) async fn patch(
    client: &Client,
    kind: Kind,
    id: &str,
    ops: &[Op],
) -> Result<(), HttpError> {
    let path = resource_path(client, kind, id)?;
    let mut ops = ops.to_vec();
    let mut refreshed = false;
    let mut rewritten = false;
    loop {
        let tag = client.etag(id);
        let body = patch_message(&ops);
        match client
            .http
            .call(
                Method::PATCH,
                &path,
                Some(&body),
                tag.as_deref(),
                Retry::Idempotent,
            )
            .await
        {
            Ok(reply) => {
                client.set_etag(id, reply.etag.as_deref());
                return Ok(());
            }
            Err(e) if e.status() == Some(412) && !refreshed => {
                refreshed = true;
                get(client, kind, id).await?;
            }
            Err(e)
                if e.status() == Some(400)
                    && e.scim_type() == Some("noTarget")
                    && !rewritten
                    && ops.iter().any(|o| o.typed.is_some()) =>
            {
                rewritten = true;
                let current = get(client, kind, id).await?;
                ops = add_missing_entries(&ops, &current);
            }
            Err(e) => return Err(e),
        }
    }
}

/// For services without PATCH: read, change, write back whole.
async fn put(
    client: &Client,
    kind: Kind,
    id: &str,
    changes: &[AttrChange],
    ids: &Ids,
) -> Result<ExportOutcome, HttpError> {
    let path = resource_path(client, kind, id)?;
    let mut resource = get(client, kind, id).await?;
    if let Err(m) =
        super::put::apply_to_resource(kind, &mut resource, changes, &client.service, ids)
    {
        return Ok(refused(m));
    }
    let tag = client.etag(id);
    let reply = client
        .http
        .call(
            Method::PUT,
            &path,
            Some(&resource),
            tag.as_deref(),
            Retry::Idempotent,
        )
        .await?;
    client.set_etag(id, reply.etag.as_deref());
    Ok(applied(None))
}

async fn delete(client: &Client, kind: Kind, id: &str) -> Result<ExportOutcome, HttpError> {
    let path = resource_path(client, kind, id)?;
    match client
        .http
        .call(Method::DELETE, &path, None, None, Retry::Idempotent)
        .await
    {
        // Already gone is what a delete wants.
        Ok(_) => {
            client.forget(id);
            Ok(applied(None))
        }
        Err(e) if e.status() == Some(404) => {
            client.forget(id);
            Ok(applied(None))
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_percent_encoded() {
        assert_eq!(
            url_encode("externalId eq \"a+b/c=\""),
            "externalId%20eq%20%22a%2Bb%2Fc%3D%22"
        );
    }
}
