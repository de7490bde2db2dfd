//! Import: changes from a connector into its connector space, in batched write
//! transactions, with add / update / delete / move detection by anchor. The watermark is
//! committed in the same transaction as the last changes it covers.

pub use super::confirm::Confirm;
use super::confirm::{Judge, Seen, compare};
use super::{RunError, Shutdown, guard};
use crate::connector::{Connector, ImportSink};
use crate::model::{
    Anchor, ChangeOp, ConnectorName, CsId, Dn, ImportChange, ImportedObject, PartialObject,
    RefTarget, Value, Watermark,
};
use crate::store::{ChangeCounts, CsRecord, Store, StoreError, WriteTx};

/// Changes per write transaction: each commit rewrites the index pages it touched and
/// fsyncs, so larger batches write less per object; 5,000 objects stay a few MB in memory.
const BATCH: usize = 5000;

/// The CS ids an import saw, one bit each: ids are dense, so a million objects take
/// 125 KB where a hash set would take tens of MB. An id past [`SeenIds::DENSE`] (only a
/// damaged index holds one) goes to a set, so that it cannot size the bitset.
#[derive(Default)]
struct SeenIds(Vec<u64>, std::collections::BTreeSet<u64>);

impl SeenIds {
    /// Ids below this are kept as bits (at most 16 MB of them).
    const DENSE: u64 = 1 << 27;

    fn insert(&mut self, id: u64) {
        if id >= Self::DENSE {
            self.1.insert(id);
            return;
        }
        let (word, bit) = ((id / 64) as usize, id % 64);
        if self.0.len() <= word {
            self.0.resize(word + 1, 0);
        }
        self.0[word] |= 1 << bit;
    }

    fn contains(&self, id: u64) -> bool {
        if id >= Self::DENSE {
            return self.1.contains(&id);
        }
        self.0
            .get((id / 64) as usize)
            .is_some_and(|w| w & (1 << (id % 64)) != 0)
    }
}

struct Sink<'a> {
    store: &'a Store,
    conn: &'a ConnectorName,
    buf: Vec<ImportChange>,
    seen: SeenIds,
    counts: ChangeCounts,
    total: u64,
    error: Option<StoreError>,
    progress: Option<&'a indicatif::ProgressBar>,
    confirm: Judge<'a>,
    shutdown: &'a Shutdown,
    stopped: bool,
}

impl Sink<'_> {
    fn flush(&mut self) -> Result<(), StoreError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let tx = self.store.write()?;
        self.apply_buffered(&tx)?;
        tx.commit()
    }

    /// Applies the buffered changes in `tx` (the caller commits).
    fn apply_buffered(&mut self, tx: &WriteTx) -> Result<(), StoreError> {
        for change in self.buf.drain(..) {
            apply(
                tx,
                self.conn,
                change,
                &mut self.counts,
                &mut self.seen,
                &mut self.confirm,
            )?;
        }
        Ok(())
    }
}

impl ImportSink for Sink<'_> {
    fn knows(&mut self, anchor: &Anchor) -> Result<bool, String> {
        // Known: upserted earlier in this import, or live in the connector space.
        Ok(self.dn_of(anchor)?.is_some())
    }

    fn holds_at_least(&mut self, n: u64) -> bool {
        self.store
            .read()
            .and_then(|tx| tx.holds_at_least(self.conn, n))
            .unwrap_or(false)
    }

    fn now_ms(&self) -> Option<i64> {
        Some(self.confirm.rules.now_ms)
    }

    fn dn_of(&mut self, anchor: &Anchor) -> Result<Option<Dn>, String> {
        let buffered = self.buf.iter().find_map(|c| match c {
            ImportChange::Upsert(o) if &o.anchor == anchor => Some(o.dn.clone()),
            _ => None,
        });
        if buffered.is_some() {
            return Ok(buffered);
        }
        let tx = self.store.read().map_err(|e| e.to_string())?;
        let Some(id) = tx
            .cs_by_anchor(self.conn, anchor)
            .map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        Ok(tx
            .cs(id)
            .map_err(|e| e.to_string())?
            .filter(|r| !r.deleted)
            .map(|r| r.dn))
    }

    fn string_referrers(
        &mut self,
        anchor: &Anchor,
        now_at: Option<&Dn>,
    ) -> Result<Vec<Dn>, String> {
        let tx = self.store.read().map_err(|e| e.to_string())?;
        let Some(id) = tx
            .cs_by_anchor(self.conn, anchor)
            .map_err(|e| e.to_string())?
        else {
            return Ok(Vec::new());
        };
        let Some(rec) = tx.cs(id).map_err(|e| e.to_string())? else {
            return Ok(Vec::new());
        };
        if now_at.is_some_and(|d| d == &rec.dn) {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for r in tx
            .dn_referrers(self.conn.as_str(), rec.dn.norm())
            .map_err(|e| e.to_string())?
        {
            if let Some(referrer) = tx.cs(r).map_err(|e| e.to_string())? {
                out.push(referrer.dn);
            }
        }
        Ok(out)
    }

    fn push(&mut self, change: ImportChange) -> Result<(), String> {
        // Checked per change, not per batch: a source that never ends (a pipe, a huge file)
        // must not keep a stop request waiting. What was committed so far stands.
        if self.shutdown.requested() {
            self.stopped = true;
            return Err("stopping: a shutdown was requested".into());
        }
        self.buf.push(change);
        self.total += 1;
        if let Some(p) = self.progress {
            if self.total % 1000 == 0 {
                p.set_message(format!("{}: imported {}", self.conn, self.total));
            }
        }
        if self.buf.len() >= BATCH {
            if let Err(e) = self.flush() {
                let m = e.to_string();
                self.error = Some(e);
                return Err(m);
            }
        }
        Ok(())
    }
}

/// What one import did.
#[derive(Debug, Default, Clone, Copy)]
pub struct ImportStats {
    /// Changes seen.
    pub counts: ChangeCounts,
    /// Exported objects whose confirming import did not show what was sent: the export
    /// changed nothing, and sending it again would not either.
    pub not_kept: u64,
}

/// Runs one import of `connector` and returns its counts.
pub fn run(
    store: &Store,
    connector: &mut dyn Connector,
    full: bool,
    shutdown: &Shutdown,
    progress: Option<&indicatif::ProgressBar>,
    confirm: Confirm<'_>,
) -> Result<ImportStats, RunError> {
    let conn = connector.name().clone();
    let watermark = store.read()?.watermark(&conn)?.map(Watermark);
    let mut sink = Sink {
        store,
        conn: &conn,
        buf: Vec::with_capacity(BATCH),
        seen: SeenIds::default(),
        counts: ChangeCounts::default(),
        total: 0,
        error: None,
        progress,
        confirm: Judge {
            rules: confirm,
            not_kept: 0,
        },
        shutdown,
        stopped: false,
    };
    let end = connector.import(watermark.as_ref(), full, &mut sink);
    if let Some(e) = sink.error.take() {
        return Err(e.into());
    }
    if sink.stopped {
        return Err(RunError::Interrupted);
    }
    let end = end?;
    shutdown.check()?;
    let tx = store.write()?;
    sink.apply_buffered(&tx)?;
    if end.complete {
        // A snapshot: whatever it did not deliver is gone from the directory. Objects not
        // yet exported (no anchor) are not in the anchor index and are left alone.
        let mut unseen = Vec::new();
        tx.anchored_cs_ids_where(&conn, &mut |id| !sink.seen.contains(id.0), &mut unseen)?;
        let mut gone = Vec::with_capacity(unseen.len());
        let mut deleted_before = 0u64;
        for id in unseen {
            match tx.cs(id)? {
                Some(rec) if !rec.deleted => gone.push(id),
                Some(_) => deleted_before += 1,
                None => {}
            }
        }
        let live = tx.anchored_count(&conn)?.saturating_sub(deleted_before);
        let found = live.saturating_sub(gone.len() as u64);
        let verdict = if sink.confirm.rules.guarded {
            guard::judge(&tx, &conn, live, found)?
        } else {
            guard::Verdict::Proceed
        };
        if let guard::Verdict::Stop(e) = verdict {
            // What the import did find stands; the watermark stays where it was, so the
            // next import reads the snapshot again.
            tx.commit()?;
            return Err(e);
        }
        for id in gone {
            if let Some(mut rec) = tx.cs(id)? {
                rec.deleted = true;
                tx.put_cs(id, &rec)?;
                tx.mark_inbound(conn.as_str(), id)?;
                sink.counts.deletes += 1;
            }
        }
    }
    match &end.watermark {
        Some(w) => tx.set_watermark(&conn, &w.0)?,
        None => tx.clear_watermark(&conn)?,
    }
    tx.commit()?;
    Ok(ImportStats {
        counts: sink.counts,
        not_kept: sink.confirm.not_kept,
    })
}

/// Imports the one object `which` names (a base-scope read): its change lands in the
/// connector space as any import's would, with no sweep and the watermark untouched, so
/// the next delta import still covers everything. When the directory has no such object
/// (or it left scope), the one the space holds at that DN is recorded deleted. Returns
/// the counts and whether the directory had it.
pub(super) fn run_one(
    store: &Store,
    connector: &mut dyn Connector,
    which: &crate::connector::OneObject,
    shutdown: &Shutdown,
    confirm: Confirm<'_>,
) -> Result<(ChangeCounts, bool), RunError> {
    let conn = connector.name().clone();
    let mut sink = Sink {
        store,
        conn: &conn,
        buf: Vec::new(),
        seen: SeenIds::default(),
        counts: ChangeCounts::default(),
        total: 0,
        error: None,
        progress: None,
        confirm: Judge {
            rules: confirm,
            not_kept: 0,
        },
        shutdown,
        stopped: false,
    };
    let found = connector.import_one(which, &mut sink);
    if let Some(e) = sink.error.take() {
        return Err(e.into());
    }
    let found = found?;
    let tx = store.write()?;
    sink.apply_buffered(&tx)?;
    if !found {
        let anchor = match tx.cs_by_dn(&conn, &which.dn)? {
            Some(id) => tx.cs(id)?.and_then(|r| r.anchor).map(Anchor::new),
            None => None,
        };
        if let Some(a) = anchor.or_else(|| which.anchor.clone()) {
            delete(&tx, &conn, &a, &mut sink.counts)?;
        }
    }
    tx.commit()?;
    Ok((sink.counts, found))
}

fn apply(
    tx: &WriteTx,
    conn: &ConnectorName,
    change: ImportChange,
    counts: &mut ChangeCounts,
    seen: &mut SeenIds,
    confirm: &mut Judge<'_>,
) -> Result<(), StoreError> {
    match change {
        ImportChange::Upsert(obj) => {
            let id = upsert(tx, conn, obj, counts, confirm)?;
            seen.insert(id.0);
        }
        ImportChange::Merge(part) => {
            if let Some(id) = merge(tx, conn, part, counts, confirm)? {
                seen.insert(id.0);
            }
        }
        ImportChange::Present(anchor) => {
            if let Some(id) = tx.cs_by_anchor(conn, &anchor)? {
                seen.insert(id.0);
            }
        }
        ImportChange::Delete(anchor) => delete(tx, conn, &anchor, counts)?,
        ImportChange::Tombstone(anchor) => {
            delete(tx, conn, &anchor, counts)?;
            unlink_all(tx, conn, &anchor)?;
        }
    }
    Ok(())
}

/// Marks the object with this anchor deleted; inbound sync finishes the delete.
fn delete(
    tx: &WriteTx,
    conn: &ConnectorName,
    anchor: &Anchor,
    counts: &mut ChangeCounts,
) -> Result<(), StoreError> {
    if let Some(id) = tx.cs_by_anchor(conn, anchor)? {
        if let Some(mut rec) = tx.cs(id)? {
            if !rec.deleted {
                rec.deleted = true;
                tx.put_cs(id, &rec)?;
                tx.mark_inbound(conn.as_str(), id)?;
                counts.deletes += 1;
            }
        }
    }
    Ok(())
}

/// A deleted object's links go from every hologram that holds them, as the directory drops
/// them (Samba's DirSync reports the tombstone only, never the groups it was a member of).
/// The referrers need not be in any delta: without this a group kept the dead link.
fn unlink_all(tx: &WriteTx, conn: &ConnectorName, anchor: &Anchor) -> Result<(), StoreError> {
    let link = Value::Reference(RefTarget::Anchored {
        anchor: anchor.clone(),
        dn: Dn::root(),
    });
    for r in tx.anchor_referrers(conn.as_str(), anchor)? {
        let Some(mut rec) = tx.cs(r)? else { continue };
        let mut touched = false;
        for vs in rec.attrs.values_mut() {
            touched |= vs.remove_ref(&link);
        }
        if touched {
            rec.attrs.drop_empty();
            tx.put_cs(r, &rec)?;
            tx.mark_inbound(conn.as_str(), r)?;
        }
    }
    Ok(())
}

/// Applies changed attributes to the hologram of a known object; an unknown or deleted
/// one is left alone (the connector asked [`ImportSink::knows`] first and reads unknown
/// objects whole).
fn merge(
    tx: &WriteTx,
    conn: &ConnectorName,
    part: PartialObject,
    counts: &mut ChangeCounts,
    confirm: &mut Judge<'_>,
) -> Result<Option<CsId>, StoreError> {
    let Some(id) = tx.cs_by_anchor(conn, &part.anchor)? else {
        return Ok(None);
    };
    let Some(rec) = tx.cs(id)? else {
        return Ok(None);
    };
    if rec.deleted {
        return Ok(None);
    }
    let mut attrs = rec.attrs;
    for c in part.changes {
        match c.op {
            ChangeOp::Replace(v) => attrs.set(c.attr, v),
            // Links match by anchor: a removal may name the object at its new DN.
            ChangeOp::Add(v) => {
                let mut set = attrs.remove(c.attr.key()).unwrap_or_default();
                for x in v.iter() {
                    set.insert_ref(x.clone());
                }
                attrs.set(c.attr, set);
            }
            ChangeOp::Remove(v) => {
                if let Some(mut set) = attrs.remove(c.attr.key()) {
                    for x in v.iter() {
                        set.remove_ref(x);
                    }
                    attrs.set(c.attr, set);
                }
            }
        }
    }
    let obj = ImportedObject {
        anchor: part.anchor,
        dn: part.dn,
        object_class: rec.object_class,
        attrs,
    };
    upsert(tx, conn, obj, counts, confirm).map(Some)
}

fn upsert(
    tx: &WriteTx,
    conn: &ConnectorName,
    obj: ImportedObject,
    counts: &mut ChangeCounts,
    confirm: &mut Judge<'_>,
) -> Result<CsId, StoreError> {
    let digest = digest(&obj);
    let found = match tx.cs_by_anchor(conn, &obj.anchor)? {
        Some(id) if tx.import_digest_is(id, &digest)? => {
            // Unchanged since the last import, and the hologram still equals it.
            return Ok(id);
        }
        Some(id) => Some(id),
        // The confirming import of an add: the provisioned object waiting at this DN
        // becomes the directory's object.
        None => match tx.cs_by_dn(conn, &obj.dn)? {
            Some(id) if tx.cs(id)?.is_some_and(|r| r.anchor.is_none()) => Some(id),
            _ => None,
        },
    };
    let Some(id) = found else {
        let id = tx.new_cs_id()?;
        let rec = CsRecord {
            connector: conn.as_str().to_string(),
            anchor: Some(obj.anchor.as_bytes().to_vec()),
            dn: obj.dn,
            object_class: obj.object_class,
            attrs: obj.attrs,
            deleted: false,
            object_type: None,
            export: None,
            error: None,
            unresolved: Vec::new(),
            unconfirmed: false,
            claims: Vec::new(),
        };
        let dn = rec.dn.clone();
        tx.put_cs(id, &rec)?;
        tx.set_import_digest(id, &digest)?;
        tx.mark_inbound(conn.as_str(), id)?;
        counts.adds += 1;
        // Links to it may predate it here (it was out of scope): they name its DN now.
        repoint_links(tx, conn, &obj.anchor, &dn, id)?;
        return Ok(id);
    };
    let Some(mut rec) = tx.cs(id)? else {
        return Ok(id);
    };
    let old_dn = rec.dn.clone();
    let adopted = rec.anchor.is_none();
    let moved = !adopted && old_dn != obj.dn;
    if !moved
        && !adopted
        && !rec.deleted
        && rec.object_class.eq_ignore_ascii_case(&obj.object_class)
    {
        match compare(&rec, &obj.attrs, confirm) {
            Seen::Same => {
                // The directory holds what the hologram holds, maybe in its own notation
                // (or with values it adds itself): take its spelling, sync nothing.
                if rec.unconfirmed || rec.attrs != obj.attrs || rec.dn.as_str() != obj.dn.as_str() {
                    rec.attrs = obj.attrs;
                    rec.dn = obj.dn;
                    rec.object_class = obj.object_class;
                    if rec.unconfirmed {
                        tx.clear_not_kept(id)?;
                    }
                    rec.unconfirmed = false;
                    tx.put_cs(id, &rec)?;
                }
                tx.set_import_digest(id, &digest)?;
                return Ok(id);
            }
            Seen::NotKept { message, sent } => {
                confirm.not_kept += 1;
                tx.set_not_kept(id, &sent)?;
                rec.error = Some(crate::sync::record_error(
                    rec.error.take(),
                    format!("{}: {message}", rec.dn),
                    confirm.rules.now_ms,
                ));
            }
            Seen::Changed => {}
        }
    }
    if moved {
        counts.renames += 1;
        repoint_links(tx, conn, &obj.anchor, &obj.dn, id)?;
        // Referrers that hold a DN as a string resolve differently now: the old DN names
        // nothing (or another object), the new one names this object.
        for dn in [&old_dn, &obj.dn] {
            for r in tx.dn_referrers(conn.as_str(), dn.norm())? {
                if r != id {
                    tx.mark_inbound(conn.as_str(), r)?;
                }
            }
        }
    } else if !adopted {
        counts.updates += 1;
    }
    rec.anchor = Some(obj.anchor.as_bytes().to_vec());
    rec.dn = obj.dn;
    rec.object_class = obj.object_class;
    rec.attrs = obj.attrs;
    rec.deleted = false;
    rec.unconfirmed = false;
    tx.put_cs(id, &rec)?;
    tx.set_import_digest(id, &digest)?;
    tx.mark_inbound(conn.as_str(), id)?;
    Ok(id)
}

/// What an imported object looks like, in 16 bytes: equal digests mean equal objects.
fn digest(obj: &ImportedObject) -> [u8; 16] {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(obj.dn.as_str().as_bytes());
    h.update([0]);
    h.update(obj.object_class.as_bytes());
    h.update([0]);
    // postcard of the sorted attribute map is a canonical encoding.
    h.update(postcard::to_stdvec(&obj.attrs).unwrap_or_default());
    let full = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&full[..16]);
    out
}

/// Links to a moved object name its new DN, as AD shows them (DirSync reports no change on
/// the referrers). Only links held by anchor follow: a DN held as a string (LDAP without
/// refint, files) is what the directory holds, and a full import would read it as it is.
fn repoint_links(
    tx: &WriteTx,
    conn: &ConnectorName,
    anchor: &Anchor,
    new: &Dn,
    moved: CsId,
) -> Result<(), StoreError> {
    let link = Value::Reference(RefTarget::Anchored {
        anchor: anchor.clone(),
        dn: new.clone(),
    });
    for r in tx.anchor_referrers(conn.as_str(), anchor)? {
        if r == moved {
            continue;
        }
        let Some(mut rec) = tx.cs(r)? else { continue };
        let mut touched = false;
        for vs in rec.attrs.values_mut() {
            let stale = vs.iter().any(|v| {
                v.as_anchor_ref() == Some(anchor)
                    && v.ref_dn().map(Dn::as_str) != Some(new.as_str())
            });
            if stale {
                vs.insert_ref(link.clone());
                touched = true;
            }
        }
        if touched {
            tx.put_cs(r, &rec)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::{SeenIds, apply};
    use crate::model::{
        Anchor, AttrChange, AttrName, Attributes, ChangeOp, ConnectorName, Dn, ImportChange,
        ImportedObject, PartialObject, RefTarget, Value, ValueSet,
    };
    use crate::store::{ChangeCounts, Store, WriteTx};

    fn link(a: u8, dn: &str) -> Value {
        Value::Reference(RefTarget::Anchored {
            anchor: Anchor::new(vec![a; 16]),
            dn: Dn::parse(dn).unwrap(),
        })
    }

    fn object(a: u8, dn: &str, class: &str, members: &[Value]) -> ImportChange {
        let mut attrs = Attributes::new();
        attrs.set(AttrName::new("cn"), ValueSet::one(Value::str(dn)));
        if !members.is_empty() {
            attrs.set(AttrName::new("member"), members.iter().cloned().collect());
        }
        ImportChange::Upsert(ImportedObject {
            anchor: Anchor::new(vec![a; 16]),
            dn: Dn::parse(dn).unwrap(),
            object_class: class.into(),
            attrs,
        })
    }

    fn run(tx: &WriteTx, changes: Vec<ImportChange>) {
        let conn = ConnectorName::new("ad").unwrap();
        let mut seen = SeenIds::default();
        let mut judge = crate::runner::confirm::Judge {
            rules: crate::runner::confirm::Confirm {
                now_ms: 0,
                write_only: &[],
                guarded: true,
            },
            not_kept: 0,
        };
        for c in changes {
            apply(
                tx,
                &conn,
                c,
                &mut ChangeCounts::default(),
                &mut seen,
                &mut judge,
            )
            .unwrap();
        }
    }

    fn members(tx: &WriteTx, a: u8) -> Vec<Value> {
        let conn = ConnectorName::new("ad").unwrap();
        let id = tx
            .cs_by_anchor(&conn, &Anchor::new(vec![a; 16]))
            .unwrap()
            .unwrap();
        let rec = tx.cs(id).unwrap().unwrap();
        rec.attrs
            .get("member")
            .map(|m| m.iter().cloned().collect())
            .unwrap_or_default()
    }

    #[test]
    fn a_tombstone_takes_its_links_out_of_every_hologram_the_delta_did_not_report() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let tx = store.write().unwrap();
        // User 1 is in the connector space; user 2 is not (out of scope), both are members.
        run(
            &tx,
            vec![
                object(1, "cn=u1,dc=x", "user", &[]),
                object(
                    9,
                    "cn=g,dc=x",
                    "group",
                    &[link(1, "cn=u1,dc=x"), link(2, "cn=u2,ou=out,dc=x")],
                ),
            ],
        );
        tx.take_inbound(100).unwrap();
        run(&tx, vec![ImportChange::Tombstone(Anchor::new(vec![1; 16]))]);
        assert_eq!(members(&tx, 9), vec![link(2, "cn=u2,ou=out,dc=x")]);
        let queued = tx.take_inbound(100).unwrap();
        assert_eq!(queued.len(), 2, "the tombstone and the group: {queued:?}");
        run(&tx, vec![ImportChange::Tombstone(Anchor::new(vec![2; 16]))]);
        assert_eq!(members(&tx, 9), Vec::<Value>::new());
    }

    #[test]
    fn a_move_repoints_links_and_a_new_object_at_the_old_dn_gets_none() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let tx = store.write().unwrap();
        run(
            &tx,
            vec![
                object(1, "cn=u1,dc=x", "user", &[]),
                object(9, "cn=g,dc=x", "group", &[link(1, "cn=u1,dc=x")]),
            ],
        );
        run(
            &tx,
            vec![
                object(1, "cn=u1,ou=moved,dc=x", "user", &[]),
                object(3, "cn=u1,dc=x", "user", &[]),
            ],
        );
        assert_eq!(members(&tx, 9), vec![link(1, "cn=u1,ou=moved,dc=x")]);
    }

    #[test]
    fn a_delta_removal_names_the_link_by_anchor_at_any_dn() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let tx = store.write().unwrap();
        run(
            &tx,
            vec![object(
                9,
                "cn=g,dc=x",
                "group",
                &[link(1, "cn=u1,dc=x"), link(2, "cn=u2,dc=x")],
            )],
        );
        // DirSync names the removed member at its DN now, which the hologram never saw.
        run(
            &tx,
            vec![ImportChange::Merge(PartialObject {
                anchor: Anchor::new(vec![9; 16]),
                dn: Dn::parse("cn=g,dc=x").unwrap(),
                changes: vec![
                    AttrChange {
                        attr: AttrName::new("member"),
                        op: ChangeOp::Remove(ValueSet::one(link(1, "cn=renamed,dc=x"))),
                    },
                    AttrChange {
                        attr: AttrName::new("member"),
                        op: ChangeOp::Add(ValueSet::one(link(2, "cn=u2,ou=new,dc=x"))),
                    },
                ],
            })],
        );
        assert_eq!(members(&tx, 9), vec![link(2, "cn=u2,ou=new,dc=x")]);
    }

    #[test]
    fn seen_ids_hold_exactly_what_was_inserted() {
        let mut seen = SeenIds::default();
        for id in [0u64, 1, 63, 64, 1_000_003] {
            seen.insert(id);
        }
        for id in [0u64, 1, 63, 64, 1_000_003] {
            assert!(seen.contains(id), "{id}");
        }
        for id in [2u64, 62, 65, 1_000_002, 5_000_000] {
            assert!(!seen.contains(id), "{id}");
        }
    }

    #[test]
    fn an_id_from_a_damaged_index_does_not_size_the_bitset() {
        let mut seen = SeenIds::default();
        seen.insert(1 << 50);
        assert!(seen.contains(1 << 50));
        assert!(!seen.contains((1 << 50) + 1));
        assert!(seen.0.is_empty());
    }
}
