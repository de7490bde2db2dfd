//! References that wait: values left out of a write because the object they name is
//! not in the service yet (created later in the same batch, or in a later batch of the same
//! export). They are sent as soon as it is, and at the end of the export at the latest.

use std::sync::atomic::{AtomicBool, Ordering};

use super::Client;
use super::export::{failure, patch, resolve, unservable};
use super::http::HttpError;
use super::resource::{Ids, Late, patch_requests};
use super::schema::Kind;
use crate::model::{AttrChange, ChangeOp, Dn, ExportOutcome, RefTarget, Value, ValueSet};

/// References of an object already written, waiting for the objects they name.
pub(super) struct Waiting {
    /// The object's connector-space DN, for the log.
    pub dn: Dn,
    /// User or Group.
    pub kind: Kind,
    /// The service's id of the object.
    pub id: String,
    /// The references still to send.
    pub refs: Vec<Late>,
}

/// Sends the waiting references that resolve now; returns those that still wait.
pub(super) async fn send_waiting(
    client: &Client,
    late: Vec<Waiting>,
    down: &AtomicBool,
) -> Vec<Waiting> {
    let mut still = Vec::new();
    for w in late {
        if down.load(Ordering::Relaxed) {
            still.push(w);
            continue;
        }
        match send_late(client, w.kind, &w.id, w.refs).await {
            Ok(refs) if refs.is_empty() => {}
            Ok(refs) => still.push(Waiting { refs, ..w }),
            Err(e) => {
                let reason = e.to_string();
                if matches!(failure(e), ExportOutcome::NotTried { .. }) {
                    down.store(true, Ordering::Relaxed);
                }
                tracing::warn!("{}: setting references after the write: {reason}", w.dn);
            }
        }
    }
    still
}

/// Logs the references that wait at the end of an export: the objects they name are not
/// in the service, and the confirming import shows them missing, so a later sync sends
/// them once those objects exist.
pub(super) async fn finish(client: &Client) {
    let late = client
        .late
        .lock()
        .ok()
        .map(|mut l| std::mem::take(&mut *l))
        .unwrap_or_default();
    let waiting = send_waiting(client, late, &AtomicBool::new(false)).await;
    for w in waiting {
        tracing::info!(
            "{}: {} references wait for objects not in the service yet",
            w.dn,
            w.refs.len()
        );
    }
}

/// Sends the references left out of a create that resolve now (members as adds in chunks,
/// single references as replaces); returns those still waiting.
pub(super) async fn send_late(
    client: &Client,
    kind: Kind,
    id: &str,
    late: Vec<Late>,
) -> Result<Vec<Late>, HttpError> {
    if late.is_empty() {
        return Ok(late);
    }
    let dns: Vec<Dn> = late.iter().map(|(_, dn)| dn.clone()).collect();
    let ids = resolve(client, &dns).await?;
    let (ready, waiting): (Vec<Late>, Vec<Late>) = late
        .into_iter()
        .partition(|(_, dn)| ids.contains_key(dn.norm()));
    let mut changes: Vec<AttrChange> = Vec::new();
    for (attr, dn) in ready {
        let v = Value::Reference(RefTarget::Dn(dn));
        if attr.is("members") {
            match changes.iter_mut().find(|c| c.attr == attr) {
                Some(AttrChange {
                    op: ChangeOp::Add(set),
                    ..
                }) => {
                    set.insert(v);
                }
                _ => changes.push(AttrChange {
                    attr,
                    op: ChangeOp::Add(ValueSet::one(v)),
                }),
            }
        } else {
            changes.push(AttrChange {
                attr,
                op: ChangeOp::Replace(ValueSet::one(v)),
            });
        }
    }
    let requests = patch_requests(
        kind,
        &changes,
        &client.service,
        &ids,
        client.cfg.member_chunk,
    )
    .map_err(unservable)?;
    for ops in requests {
        patch(client, kind, id, &ops).await?;
    }
    Ok(waiting)
}

/// Splits off reference values that point at objects the service does not hold (yet):
/// they are sent once those exist, or a later cycle sends them.
pub(super) fn only_resolved(changes: &[AttrChange], ids: &Ids) -> (Vec<AttrChange>, Vec<Late>) {
    let mut late = Vec::new();
    let mapped: Vec<AttrChange> = changes
        .iter()
        .map(|c| {
            let mut keep = |v: &ValueSet, adding: bool| -> ValueSet {
                v.iter()
                    .filter(|x| match x.as_dn_ref() {
                        Some(dn) if !ids.contains_key(dn.norm()) => {
                            if adding {
                                late.push((c.attr.clone(), dn.clone()));
                            }
                            false
                        }
                        _ => true,
                    })
                    .cloned()
                    .collect()
            };
            let op = match &c.op {
                ChangeOp::Add(v) => ChangeOp::Add(keep(v, true)),
                ChangeOp::Remove(v) => ChangeOp::Remove(keep(v, false)),
                ChangeOp::Replace(v) => ChangeOp::Replace(keep(v, true)),
            };
            AttrChange {
                attr: c.attr.clone(),
                op,
            }
        })
        .collect();
    let kept = mapped
        .into_iter()
        .filter(|c| match &c.op {
            ChangeOp::Add(v) | ChangeOp::Remove(v) => !v.is_empty(),
            // A reference replaced by one not there yet is set when it is, not cleared now.
            ChangeOp::Replace(v) => !v.is_empty() || !late.iter().any(|(a, _)| *a == c.attr),
        })
        .collect();
    (kept, late)
}
