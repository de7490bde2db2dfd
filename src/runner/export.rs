//! Export: pending exports to the directory in batches, outcomes applied to the
//! connector space, in the order [`rank`] gives: deletes, updates, adds, then updates
//! that reference the adds. Failures stay pending with the directory's message.

use std::collections::HashSet;

use super::{RunError, Shutdown};
use crate::config::{DeletionThreshold, ThresholdHolds};
use crate::connector::{Connector, ConnectorError, ConnectorErrorKind, SpaceView};
use crate::model::{
    Anchor, AttrChange, ChangeOp, ConnectorName, CsObject, ExportItem, ExportKind, ExportOutcome,
    ObjectType,
};
use crate::store::{ChangeCounts, CsRecord, Store, StoreError, WriteTx};
use crate::sync::{apply_changes, record_error};

/// Exports per write transaction (and per call to the connector).
const BATCH: usize = 2000;

/// Counts of one export.
#[derive(Debug, Default, Clone)]
pub struct ExportStats {
    /// Applied changes.
    pub counts: ChangeCounts,
    /// Objects the directory refused.
    pub errors: u64,
    /// Deletes held back by the deletion threshold.
    pub blocked_deletes: u64,
    /// Other pending exports held back with them: the threshold tripped and holds the
    /// connector's whole export run ([`ThresholdHolds::Export`]).
    pub held_exports: u64,
    /// Exports not tried this time because they failed recently (backoff).
    pub deferred: u64,
    /// For an export of chosen objects only: each one's answer from the directory (None:
    /// applied; else its message).
    pub answers: Vec<(crate::model::CsId, Option<String>)>,
}

/// How long to wait before retrying an export that failed `attempts` times in a row:
/// 30 s, doubling, at most an hour.
pub fn retry_delay_ms(attempts: u32) -> i64 {
    let doublings = attempts.saturating_sub(1).min(7);
    (30_000i64 << doublings).min(3_600_000)
}

struct TxView<'a> {
    tx: &'a WriteTx,
    conn: &'a ConnectorName,
}

impl SpaceView for TxView<'_> {
    fn for_each(&self, f: &mut dyn FnMut(&CsObject)) -> Result<(), String> {
        self.tx
            .for_each_cs(self.conn, &mut |id, rec| {
                if let Some(obj) = to_object(id, rec) {
                    f(&obj);
                }
                Ok(())
            })
            .map_err(|e| e.to_string())
    }
}

fn to_object(id: crate::model::CsId, rec: &CsRecord) -> Option<CsObject> {
    Some(CsObject {
        id,
        connector: ConnectorName::new(&rec.connector).ok()?,
        anchor: rec.anchor.clone().map(Anchor::new),
        dn: rec.dn.clone(),
        object_class: rec.object_class.clone(),
        attrs: rec.attrs.clone(),
    })
}

/// Where an export goes in the order: what frees a DN or a unique value before what may
/// need it. Deletes first, then updates (renames and changed values give theirs up), then
/// adds (members before the groups that list them), and last the updates that reference
/// an object this same export adds, so that the reference is written now, not a cycle later.
///
/// The second part is (waits, type): how many updates of this export an update must
/// follow because they give up what it takes ([`super::order`]), then the object type.
fn rank(rec: &CsRecord, adds: &HashSet<String>, waits: u8) -> (u8, (u8, u8)) {
    let kind = match rec.export.as_ref() {
        Some(e) if e.kind == ExportKind::Delete => DELETE_STAGE,
        Some(e) if e.kind == ExportKind::Add => 2,
        Some(e) if references_any(&e.changes, adds) => 3,
        _ => 1,
    };
    let ty = rec
        .object_type
        .and_then(|t| ObjectType::ALL.iter().position(|x| *x == t))
        .unwrap_or(0) as u8;
    (kind, (waits, ty))
}

fn references_any(changes: &[AttrChange], dns: &HashSet<String>) -> bool {
    !dns.is_empty()
        && changes.iter().any(|c| match &c.op {
            ChangeOp::Add(v) | ChangeOp::Replace(v) => v
                .iter()
                .any(|x| x.as_dn_ref().is_some_and(|d| dns.contains(d.norm()))),
            ChangeOp::Remove(_) => false,
        })
}

/// The stage of a delete in [`rank`]'s order.
const DELETE_STAGE: u8 = 0;

/// A pending export's place in the export order, and its id.
pub(super) type Planned = (u8, (u8, u8), crate::model::CsId);

/// The pending exports `ids` in the order an export sends them (unsorted: sort the
/// result). `get` reads a CS record; each is read twice rather than all held at once.
pub(super) fn plan(
    ids: &[crate::model::CsId],
    get: &mut dyn FnMut(crate::model::CsId) -> Result<Option<CsRecord>, StoreError>,
) -> Result<Vec<Planned>, StoreError> {
    let mut adds = HashSet::new();
    let mut claims = Vec::new();
    for id in ids {
        if let Some(rec) = get(*id)? {
            if rec
                .export
                .as_ref()
                .is_some_and(|e| e.kind == ExportKind::Add)
            {
                adds.insert(rec.dn.norm().to_string());
            }
            if let Some(c) = super::order::claims(&rec) {
                claims.push((*id, c));
            }
        }
    }
    let waits = super::order::update_depths(&claims);
    drop(claims);
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(rec) = get(*id)? {
            let (k, t) = rank(&rec, &adds, waits.get(id).copied().unwrap_or(0));
            out.push((k, t, *id));
        }
    }
    Ok(out)
}

/// The export item of a CS record with a pending export, at its place in the order.
pub(super) fn item_of(rec: &CsRecord, planned: &Planned) -> Option<ExportItem> {
    let (kind, (waits, _), id) = planned;
    let export = rec.export.as_ref()?;
    Some(ExportItem {
        cs_id: *id,
        kind: export.kind,
        anchor: rec.anchor.clone().map(Anchor::new),
        dn: rec.dn.clone(),
        new_dn: export.new_dn.clone(),
        object_class: rec.object_class.clone(),
        changes: export.changes.clone(),
        stage: u16::from(*kind) << 8 | u16::from(*waits),
    })
}

/// The deletion threshold over one export run: which of the `planned` exports go now.
/// Records the deletes it holds (exactly what `approve` releases) and uses up approvals
/// that stopped being pending.
fn gate(
    tx: &WriteTx,
    conn: &ConnectorName,
    threshold: DeletionThreshold,
    planned: Vec<Planned>,
    stats: &mut ExportStats,
) -> Result<Vec<Planned>, StoreError> {
    let (deletes, mut v): (Vec<_>, Vec<_>) = planned
        .into_iter()
        .partition(|(k, _, _)| *k == DELETE_STAGE);
    let approved = tx.approved_deletes(conn)?;
    let (approved_now, unapproved): (Vec<_>, Vec<_>) = deletes
        .into_iter()
        .partition(|(_, _, id)| approved.contains(id));
    let n = unapproved.len() as u64;
    let over = n > threshold.count
        || match threshold.percent {
            // The connector's size is read only when a percentage can matter.
            Some(p) if n > 0 => {
                let population = tx.anchored_count(conn)?;
                n * 100 > u64::from(p) * population.max(1)
            }
            _ => false,
        };
    let held: Vec<crate::model::CsId> = if over {
        unapproved.iter().map(|(_, _, id)| *id).collect()
    } else {
        Vec::new()
    };
    // The batch held back is exactly what `approve` will release; it is replaced each
    // export, so deletes that stopped being pending are no longer held.
    tx.set_blocked_deletes(conn, &held)?;
    for id in &approved {
        if !approved_now.iter().any(|(_, _, a)| a == id) {
            tx.consume_approval(conn, *id)?;
        }
    }
    stats.blocked_deletes = held.len() as u64;
    v.extend(approved_now);
    if over && threshold.holds == ThresholdHolds::Export {
        // Nothing goes: half an export (the users gone from their groups, the users
        // themselves still there) matches neither the state before nor after.
        stats.held_exports = v.len() as u64;
        v.clear();
    }
    if !over {
        v.extend(unapproved);
    }
    Ok(v)
}

/// Exports everything pending for one connector. When the deletes are more than the
/// threshold allows (and an admin did not approve exactly those), the whole export run is
/// held, or only the deletes when the connector opted in to that.
pub fn run(
    store: &Store,
    connector: &mut dyn Connector,
    threshold: DeletionThreshold,
    now_ms: i64,
    shutdown: &Shutdown,
    only: Option<&HashSet<crate::model::CsId>>,
) -> Result<ExportStats, RunError> {
    let conn = connector.name().clone();
    let mut stats = ExportStats::default();
    let mut ids: Vec<Planned> = {
        let tx = store.write()?;
        let mut pending = tx.pending_exports(&conn)?;
        if let Some(only) = only {
            pending.retain(|id| only.contains(id));
        }
        let planned = plan(&pending, &mut |id| tx.cs(id))?;
        let v = match only {
            // One object's exports (sync-object): the threshold's bookkeeping belongs to
            // the connector's whole export run, which the caller checked is not held.
            Some(_) => planned,
            None => gate(&tx, &conn, threshold, planned, &mut stats)?,
        };
        tx.commit()?;
        v
    };
    if ids.is_empty() {
        return Ok(stats);
    }
    ids.sort();
    let previous = store.read()?.watermark(&conn)?;
    let mut first = true;
    for chunk in ids.chunks(BATCH) {
        shutdown.check()?;
        let tx = store.write()?;
        if first {
            // Until the export finishes, the directory may differ from our watermark's
            // picture of it; a crash in between then forces a full confirming import.
            tx.clear_watermark(&conn)?;
            first = false;
        }
        let mut items = Vec::with_capacity(chunk.len());
        for planned in chunk {
            let id = &planned.2;
            let Some(rec) = tx.cs(*id)? else { continue };
            let Some(item) = item_of(&rec, planned) else {
                continue;
            };
            // An error about values the directory did not keep is no refusal: sync holds
            // those values back, and what is pending now is a change of its own.
            let refused = rec
                .error
                .as_ref()
                .filter(|_| !matches!(tx.not_kept(*id), Ok(Some(_))));
            if let Some(e) = refused {
                if now_ms < e.last_seen_ms.saturating_add(retry_delay_ms(e.attempts)) {
                    // Refused recently: wait before asking the directory again.
                    stats.deferred += 1;
                    continue;
                }
            }
            items.push(item);
        }
        let outcomes = connector.export(&items)?;
        let mut stopped = None;
        for (item, outcome) in items.iter().zip(outcomes) {
            if only.is_some() {
                stats.answers.push((
                    item.cs_id,
                    match &outcome {
                        ExportOutcome::Applied { .. } => None,
                        ExportOutcome::Failed { message, .. } => Some(message.clone()),
                        ExportOutcome::NotTried { reason } => Some(reason.clone()),
                    },
                ));
            }
            if let ExportOutcome::NotTried { reason } = outcome {
                stopped.get_or_insert(reason);
                continue;
            }
            apply_outcome(&tx, item, outcome, now_ms, &mut stats)?;
        }
        // What the directory took is committed before the failure is reported, so the
        // next cycle neither loses nor repeats it.
        tx.commit()?;
        if let Some(reason) = stopped {
            return Err(ConnectorError {
                connector: conn.clone(),
                kind: ConnectorErrorKind::Unreachable,
                message: reason,
            }
            .into());
        }
    }
    let tx = store.write()?;
    let mark = connector.finish_export(&TxView {
        tx: &tx,
        conn: &conn,
    })?;
    match mark.map(|m| m.0).or(previous) {
        Some(m) => tx.set_watermark(&conn, &m)?,
        None => tx.clear_watermark(&conn)?,
    }
    tx.commit()?;
    Ok(stats)
}

fn apply_outcome(
    tx: &WriteTx,
    item: &ExportItem,
    outcome: ExportOutcome,
    now_ms: i64,
    stats: &mut ExportStats,
) -> Result<(), StoreError> {
    let Some(mut rec) = tx.cs(item.cs_id)? else {
        return Ok(());
    };
    match outcome {
        ExportOutcome::Applied {
            anchor,
            server_attrs,
        } => match item.kind {
            ExportKind::Delete => {
                if let Ok(conn) = ConnectorName::new(&rec.connector) {
                    tx.consume_approval(&conn, item.cs_id)?;
                }
                tx.delete_cs(item.cs_id)?;
                stats.counts.deletes += 1;
            }
            ExportKind::Add => {
                let Some(anchor) = anchor.or(item.anchor.clone()) else {
                    rec.error = Some(record_error(
                        rec.error.take(),
                        format!("{}: the directory returned no anchor for the add", item.dn),
                        now_ms,
                    ));
                    tx.put_cs(item.cs_id, &rec)?;
                    stats.errors += 1;
                    return Ok(());
                };
                // A soft match can adopt an object the import already holds as a
                // disconnector: one directory object, so that record goes.
                if let Ok(conn) = ConnectorName::new(&rec.connector) {
                    if let Some(other) = tx.cs_by_anchor(&conn, &anchor)? {
                        if other != item.cs_id && tx.link_of(other)?.is_none() {
                            tx.delete_cs(other)?;
                        }
                    }
                }
                rec.anchor = Some(anchor.as_bytes().to_vec());
                rec.attrs = item.add_attributes();
                for (name, values) in server_attrs.iter() {
                    rec.attrs.set(name.clone(), values.clone());
                }
                rec.export = None;
                rec.error = None;
                rec.unconfirmed = true;
                tx.put_cs(item.cs_id, &rec)?;
                stats.counts.adds += 1;
            }
            ExportKind::Update => {
                apply_changes(&mut rec.attrs, &item.changes);
                if let Some(new_dn) = &item.new_dn {
                    rec.dn = new_dn.clone();
                    stats.counts.renames += 1;
                } else {
                    stats.counts.updates += 1;
                }
                rec.export = None;
                rec.error = None;
                rec.unconfirmed = true;
                tx.put_cs(item.cs_id, &rec)?;
            }
        },
        ExportOutcome::NotTried { .. } => {}
        ExportOutcome::Failed { message, .. } => {
            let dn = item.new_dn.as_ref().unwrap_or(&item.dn);
            rec.error = Some(record_error(
                rec.error.take(),
                format!("{dn}: {message}"),
                now_ms,
            ));
            tx.put_cs(item.cs_id, &rec)?;
            stats.errors += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::{AttrName, Attributes, Dn, RefTarget, Value, ValueSet};
    use crate::store::PendingExportRecord;

    fn rec(kind: ExportKind, changes: Vec<AttrChange>, ty: ObjectType) -> CsRecord {
        CsRecord {
            connector: "t".into(),
            anchor: None,
            dn: Dn::parse("cn=x,dc=t").unwrap(),
            object_class: "c".into(),
            attrs: Attributes::new(),
            deleted: false,
            object_type: Some(ty),
            export: Some(PendingExportRecord {
                kind,
                new_dn: None,
                changes,
                rule: String::new(),
            }),
            error: None,
            unresolved: Vec::new(),
            unconfirmed: false,
            claims: Vec::new(),
        }
    }

    fn member(dn: &str) -> Vec<AttrChange> {
        vec![AttrChange {
            attr: AttrName::new("member"),
            op: ChangeOp::Add(ValueSet::one(Value::Reference(RefTarget::Dn(
                Dn::parse(dn).unwrap(),
            )))),
        }]
    }

    #[test]
    fn what_frees_a_value_goes_before_what_needs_it_and_references_after_their_targets() {
        let adds: HashSet<String> = [Dn::parse("cn=New,dc=t").unwrap().norm().to_string()].into();
        let person = ObjectType::ALL[0];
        let delete = rank(&rec(ExportKind::Delete, Vec::new(), person), &adds, 0);
        let update = rank(
            &rec(ExportKind::Update, member("cn=old,dc=t"), person),
            &adds,
            0,
        );
        let add = rank(&rec(ExportKind::Add, Vec::new(), person), &adds, 0);
        let referrer = rank(
            &rec(ExportKind::Update, member("CN=new, DC=t"), person),
            &adds,
            0,
        );
        let mut order = vec![referrer, add, update, delete];
        order.sort();
        assert_eq!(order, vec![delete, update, add, referrer]);
        // A removal of a value that names a new object needs nothing from it.
        let removal = vec![AttrChange {
            attr: AttrName::new("member"),
            op: ChangeOp::Remove(ValueSet::one(Value::Reference(RefTarget::Dn(
                Dn::parse("cn=new,dc=t").unwrap(),
            )))),
        }];
        assert_eq!(
            rank(&rec(ExportKind::Update, removal, person), &adds, 0),
            update
        );
        // An update that must wait for another update stays among the updates, after it.
        let waiting = rank(
            &rec(ExportKind::Update, member("cn=old,dc=t"), person),
            &adds,
            1,
        );
        assert!(
            update < waiting && waiting < add,
            "{update:?} {waiting:?} {add:?}"
        );
    }
}
