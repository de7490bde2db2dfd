//! Import: changes from a connector into its connector space, in batched write
//! transactions, with add / update / delete / move detection by anchor. The watermark is
//! committed in the same transaction as the last changes it covers.

use super::{RunError, Shutdown};
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
    shutdown: &'a Shutdown,
    stopped: bool,
}

impl Sink<'_> {
    fn flush(&mut self) -> Result<(), StoreError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let tx = self.store.write()?;
        for change in self.buf.drain(..) {
            apply(&tx, self.conn, change, &mut self.counts, &mut self.seen)?;
        }
        tx.commit()
    }
}

impl ImportSink for Sink<'_> {
    fn knows(&mut self, anchor: &Anchor) -> Result<bool, String> {
        let buffered = self.buf.iter().any(|c| match c {
            ImportChange::Upsert(o) => &o.anchor == anchor,
            _ => false,
        });
        if buffered {
            return Ok(true);
        }
        let tx = self.store.read().map_err(|e| e.to_string())?;
        let Some(id) = tx
            .cs_by_anchor(self.conn, anchor)
            .map_err(|e| e.to_string())?
        else {
            return Ok(false);
        };
        Ok(tx
            .cs(id)
            .map_err(|e| e.to_string())?
            .is_some_and(|r| !r.deleted))
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

/// Runs one import of `connector` and returns its counts.
pub fn run(
    store: &Store,
    connector: &mut dyn Connector,
    full: bool,
    shutdown: &Shutdown,
    progress: Option<&indicatif::ProgressBar>,
) -> Result<ChangeCounts, RunError> {
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
    for change in sink.buf.drain(..) {
        apply(&tx, &conn, change, &mut sink.counts, &mut sink.seen)?;
    }
    if end.complete {
        // A snapshot: whatever it did not deliver is gone from the directory. Objects not
        // yet exported (no anchor) are not in the anchor index and are left alone.
        let mut gone = Vec::new();
        tx.anchored_cs_ids_where(&conn, &mut |id| !sink.seen.contains(id.0), &mut gone)?;
        for id in gone {
            {
                if let Some(mut rec) = tx.cs(id)? {
                    if !rec.deleted {
                        rec.deleted = true;
                        tx.put_cs(id, &rec)?;
                        tx.mark_inbound(conn.as_str(), id)?;
                        sink.counts.deletes += 1;
                    }
                }
            }
        }
    }
    match &end.watermark {
        Some(w) => tx.set_watermark(&conn, &w.0)?,
        None => tx.clear_watermark(&conn)?,
    }
    tx.commit()?;
    Ok(sink.counts)
}

fn apply(
    tx: &WriteTx,
    conn: &ConnectorName,
    change: ImportChange,
    counts: &mut ChangeCounts,
    seen: &mut SeenIds,
) -> Result<(), StoreError> {
    match change {
        ImportChange::Upsert(obj) => {
            let id = upsert(tx, conn, obj, counts)?;
            seen.insert(id.0);
        }
        ImportChange::Merge(part) => {
            if let Some(id) = merge(tx, conn, part, counts)? {
                seen.insert(id.0);
            }
        }
        ImportChange::Present(anchor) => {
            if let Some(id) = tx.cs_by_anchor(conn, &anchor)? {
                seen.insert(id.0);
            }
        }
        ImportChange::Delete(anchor) => {
            if let Some(id) = tx.cs_by_anchor(conn, &anchor)? {
                if let Some(mut rec) = tx.cs(id)? {
                    if !rec.deleted {
                        rec.deleted = true;
                        tx.put_cs(id, &rec)?;
                        tx.mark_inbound(conn.as_str(), id)?;
                        counts.deletes += 1;
                    }
                }
            }
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
            ChangeOp::Add(v) => {
                for x in v.iter() {
                    attrs.add(&c.attr, x.clone());
                }
            }
            ChangeOp::Remove(v) => {
                if let Some(mut set) = attrs.remove(c.attr.key()) {
                    for x in v.iter() {
                        set.remove(x);
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
    upsert(tx, conn, obj, counts).map(Some)
}

fn upsert(
    tx: &WriteTx,
    conn: &ConnectorName,
    obj: ImportedObject,
    counts: &mut ChangeCounts,
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
        tx.put_cs(id, &rec)?;
        tx.set_import_digest(id, &digest)?;
        tx.mark_inbound(conn.as_str(), id)?;
        counts.adds += 1;
        return Ok(id);
    };
    let Some(mut rec) = tx.cs(id)? else {
        return Ok(id);
    };
    let old_dn = rec.dn.clone();
    let adopted = rec.anchor.is_none();
    let moved = !adopted && old_dn != obj.dn;
    let changed = moved
        || adopted
        || rec.deleted
        || rec.attrs != obj.attrs
        || rec.object_class != obj.object_class
        || rec.dn.as_str() != obj.dn.as_str();
    if !changed {
        if rec.unconfirmed {
            rec.unconfirmed = false;
            tx.put_cs(id, &rec)?;
        }
        tx.set_import_digest(id, &digest)?;
        return Ok(id);
    }
    if moved {
        counts.renames += 1;
        repoint(tx, conn, &old_dn, &obj.dn, id)?;
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

/// A moved object keeps its references: holograms that named the old DN now name the new
/// one, as AD does for linked attributes (DirSync reports no change on the referrers).
fn repoint(
    tx: &WriteTx,
    conn: &ConnectorName,
    old: &Dn,
    new: &Dn,
    moved: CsId,
) -> Result<(), StoreError> {
    for r in tx.dn_referrers(conn.as_str(), old.norm())? {
        if r == moved {
            continue;
        }
        let Some(mut rec) = tx.cs(r)? else { continue };
        let old_ref = Value::Reference(RefTarget::Dn(old.clone()));
        let new_ref = Value::Reference(RefTarget::Dn(new.clone()));
        let mut touched = false;
        for vs in rec.attrs.values_mut() {
            if vs.remove(&old_ref) {
                vs.insert(new_ref.clone());
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
    use super::SeenIds;

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
