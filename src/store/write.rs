//! The write transaction: records plus every index that depends on them, kept in step.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use redb::{Database, Durability, ReadableMultimapTable, ReadableTable, TableHandle};

use super::open::{TxCell, with_table};
use super::records::{CsRecord, MvRecord, RunRecord, encode};
use super::tables::*;
use super::{DbContext, StoreError, decode_at};
use crate::model::{Anchor, AttrName, ConnectorName, CsId, Dn, MvId, ObjectType, Value};

/// How a CS object came to be linked to its MV object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkKind {
    /// Joined or projected by an inbound rule: it keeps the MV object alive.
    Inbound,
    /// Created by provisioning: it follows the MV object.
    Provisioned,
}

/// One write transaction. Dropped without [`WriteTx::commit`] it rolls back.
pub struct WriteTx {
    pub(super) tx: TxCell,
    pub(super) path: PathBuf,
    join_attrs: Vec<String>,
}

fn norm_join_value(v: &Value) -> String {
    v.to_text().trim().to_lowercase()
}

impl WriteTx {
    pub(super) fn begin(db: &Database, path: &Path) -> Result<WriteTx, StoreError> {
        let mut tx = db.begin_write().ctx(path)?;
        tx.set_durability(Durability::Immediate).ctx(path)?;
        let mut w = WriteTx {
            tx: TxCell::wrap(tx),
            path: path.to_path_buf(),
            join_attrs: Vec::new(),
        };
        w.join_attrs = with_table!(w, meta, |meta, path| {
            match meta.get("join_attrs").ctx(path)? {
                Some(g) => decode_at(path, "meta", "join_attrs", g.value()),
                None => Ok(Vec::new()),
            }
        })?;
        Ok(w)
    }

    /// Makes the transaction durable (one fsync).
    pub fn commit(self) -> Result<(), StoreError> {
        self.tx.finish().commit().ctx(&self.path)
    }

    fn next_id(&self, key: &str) -> Result<u64, StoreError> {
        with_table!(self, meta, |meta, path| {
            let next = meta
                .get(key)
                .ctx(path)?
                .and_then(|g| <[u8; 8]>::try_from(g.value()).ok())
                .map(u64::from_le_bytes)
                .unwrap_or(1);
            meta.insert(key, &(next + 1).to_le_bytes()[..]).ctx(path)?;
            Ok(next)
        })
    }

    /// Allocates a CS id.
    pub fn new_cs_id(&self) -> Result<CsId, StoreError> {
        self.next_id("next_cs").map(CsId)
    }

    /// Allocates an MV id.
    pub fn new_mv_id(&self) -> Result<MvId, StoreError> {
        self.next_id("next_mv").map(MvId)
    }

    /// One CS object.
    pub fn cs(&self, id: CsId) -> Result<Option<CsRecord>, StoreError> {
        with_table!(self, cs, |t, path| match t.get(id.0).ctx(path)? {
            Some(g) => decode_at(path, "cs_objects", id, g.value()).map(Some),
            None => Ok(None),
        })
    }

    /// Writes a CS object and updates the anchor, DN, reference and pending-export indexes.
    pub fn put_cs(&self, id: CsId, rec: &CsRecord) -> Result<(), StoreError> {
        let p = &self.path;
        let old = self.cs(id)?;
        let conn = rec.connector.as_str();
        // Index entries are written only when they would change: an insert of the same
        // row still dirties its page, and most puts keep anchor and DN.
        let old_anchor = old.as_ref().and_then(|o| o.anchor.as_ref());
        with_table!(self, cs_anchor, |anchors, path| {
            if let Some(a) = old_anchor {
                if rec.anchor.as_ref() != Some(a) {
                    anchors.remove((conn, a.as_slice())).ctx(path)?;
                }
            }
            if let Some(a) = &rec.anchor {
                let current = anchors
                    .get((conn, a.as_slice()))
                    .ctx(path)?
                    .map(|g| g.value());
                if current != Some(id.0) {
                    anchors.insert((conn, a.as_slice()), id.0).ctx(path)?;
                }
            }
            Ok(())
        })?;
        let new_norm = rec.dn.norm();
        with_table!(self, cs_dn, |dns, path| {
            if let Some(o) = &old {
                let old_norm = o.dn.norm();
                if old_norm != new_norm {
                    // Only drop the index entry if it still points at us (a new object may
                    // already own the DN).
                    let ours = dns.get((conn, old_norm)).ctx(path)?.map(|g| g.value());
                    if ours == Some(id.0) {
                        dns.remove((conn, old_norm)).ctx(path)?;
                    }
                }
            }
            let current = dns.get((conn, new_norm)).ctx(path)?.map(|g| g.value());
            if current != Some(id.0) {
                dns.insert((conn, new_norm), id.0).ctx(path)?;
            }
            Ok(())
        })?;
        self.reindex_cs_refs(conn, id, old.as_ref().map(|o| &o.attrs), Some(&rec.attrs))?;
        let had_export = old.as_ref().is_some_and(|o| o.export.is_some());
        if rec.export.is_some() != had_export {
            with_table!(self, pending, |pending, path| {
                if rec.export.is_some() {
                    pending.insert((conn, id.0), 1).ctx(path)?;
                } else {
                    pending.remove((conn, id.0)).ctx(path)?;
                }
                Ok(())
            })?;
        }
        if let Some(o) = &old {
            let hologram_changed = o.deleted != rec.deleted
                || o.dn.as_str() != rec.dn.as_str()
                || o.object_class != rec.object_class
                || o.attrs != rec.attrs;
            if hologram_changed {
                with_table!(self, cs_digest, |t, path| t
                    .remove(id.0)
                    .ctx(path)
                    .map(|_| ()))?;
            }
        }
        with_table!(self, cs, |t, path| t
            .insert(id.0, encode(rec).as_slice())
            .ctx(path)
            .map(|_| ()))?;
        let _ = p;
        Ok(())
    }

    /// The digest of the import the hologram still equals, if any.
    pub fn import_digest(&self, id: CsId) -> Result<Option<Vec<u8>>, StoreError> {
        with_table!(self, cs_digest, |t, path| Ok(t
            .get(id.0)
            .ctx(path)?
            .map(|g| g.value().to_vec())))
    }

    /// Whether the hologram still equals the import with this digest (compared in place).
    pub fn import_digest_is(&self, id: CsId, digest: &[u8]) -> Result<bool, StoreError> {
        with_table!(self, cs_digest, |t, path| Ok(t
            .get(id.0)
            .ctx(path)?
            .is_some_and(|g| g.value() == digest)))
    }

    /// Records that the hologram equals an import with this digest.
    pub fn set_import_digest(&self, id: CsId, digest: &[u8]) -> Result<(), StoreError> {
        with_table!(self, cs_digest, |t, path| t
            .insert(id.0, digest)
            .ctx(path)
            .map(|_| ()))
    }

    /// Removes a CS object with its indexes, link and queue entries.
    pub fn delete_cs(&self, id: CsId) -> Result<(), StoreError> {
        let p = &self.path;
        let Some(old) = self.cs(id)? else {
            return Ok(());
        };
        let conn = old.connector.as_str();
        for (attr, value) in &old.claims {
            self.release_unique(conn, attr, value, id)?;
        }
        self.unlink(id)?;
        self.clear_not_kept(id)?;
        if let Some(a) = &old.anchor {
            with_table!(self, cs_anchor, |t, path| t
                .remove((conn, a.as_slice()))
                .ctx(path)
                .map(|_| ()))?;
        }
        with_table!(self, cs_dn, |dns, path| {
            let norm = old.dn.norm();
            let ours = dns.get((conn, norm)).ctx(path)?.map(|g| g.value());
            if ours == Some(id.0) {
                dns.remove((conn, norm)).ctx(path)?;
            }
            Ok(())
        })?;
        self.reindex_cs_refs(conn, id, Some(&old.attrs), None)?;
        with_table!(self, pending, |t, path| t
            .remove((conn, id.0))
            .ctx(path)
            .map(|_| ()))?;
        with_table!(self, dirty_in, |t, path| t
            .remove((conn, id.0))
            .ctx(path)
            .map(|_| ()))?;
        with_table!(self, cs_digest, |t, path| t
            .remove(id.0)
            .ctx(path)
            .map(|_| ()))?;
        with_table!(self, cs, |t, path| t.remove(id.0).ctx(path).map(|_| ()))?;
        let _ = p;
        Ok(())
    }

    /// The CS object with this anchor in a connector space.
    pub fn cs_by_anchor(
        &self,
        conn: &ConnectorName,
        anchor: &Anchor,
    ) -> Result<Option<CsId>, StoreError> {
        with_table!(self, cs_anchor, |t, path| Ok(t
            .get((conn.as_str(), anchor.as_bytes()))
            .ctx(path)?
            .map(|g| CsId(g.value()))))
    }

    /// The CS object at this DN in a connector space.
    pub fn cs_by_dn(&self, conn: &ConnectorName, dn: &Dn) -> Result<Option<CsId>, StoreError> {
        self.cs_by_norm_dn(conn.as_str(), dn.norm())
    }

    fn cs_by_norm_dn(&self, conn: &str, norm: &str) -> Result<Option<CsId>, StoreError> {
        with_table!(self, cs_dn, |t, path| Ok(t
            .get((conn, norm))
            .ctx(path)?
            .map(|g| CsId(g.value()))))
    }

    /// Ids of every CS object of a connector that has an anchor (for full-import deletes).
    pub fn anchored_cs_ids(&self, conn: &ConnectorName) -> Result<Vec<CsId>, StoreError> {
        let mut out = Vec::new();
        self.anchored_cs_ids_where(conn, &mut |_| true, &mut out)?;
        Ok(out)
    }

    /// Ids of the CS objects of a connector that have an anchor and pass `keep`, in anchor
    /// order, without holding the others in memory (full-import deletes keep few).
    pub fn anchored_cs_ids_where(
        &self,
        conn: &ConnectorName,
        keep: &mut dyn FnMut(CsId) -> bool,
        out: &mut Vec<CsId>,
    ) -> Result<(), StoreError> {
        with_table!(self, cs_anchor, |t, path| {
            for row in t.range((conn.as_str(), &[][..])..).ctx(path)? {
                let (k, v) = row.ctx(path)?;
                if k.value().0 != conn.as_str() {
                    break;
                }
                let id = CsId(v.value());
                if keep(id) {
                    out.push(id);
                }
            }
            Ok(())
        })
    }

    /// Number of CS objects of a connector that have an anchor.
    pub fn anchored_count(&self, conn: &ConnectorName) -> Result<u64, StoreError> {
        let mut n = 0u64;
        self.anchored_cs_ids_where(
            conn,
            &mut |_| {
                n += 1;
                false
            },
            &mut Vec::new(),
        )?;
        Ok(n)
    }

    /// Links a CS object to an MV object.
    pub fn link(&self, cs: CsId, conn: &str, mv: MvId, kind: LinkKind) -> Result<(), StoreError> {
        let p = &self.path;
        self.unlink(cs)?;
        let k = match kind {
            LinkKind::Inbound => 0u8,
            LinkKind::Provisioned => 1u8,
        };
        with_table!(self, cs_mv, |t, path| t
            .insert(cs.0, (mv.0, k, conn))
            .ctx(path)
            .map(|_| ()))?;
        with_table!(self, mv_cs, |t, path| t
            .insert(mv.0, (conn, cs.0))
            .ctx(path)
            .map(|_| ()))?;
        let _ = p;
        Ok(())
    }

    /// Removes a CS object's link, if any; returns the MV object it was linked to.
    pub fn unlink(&self, cs: CsId) -> Result<Option<MvId>, StoreError> {
        let old = with_table!(self, cs_mv, |t, path| Ok(t.remove(cs.0).ctx(path)?.map(
            |g| {
                let (mv, _, conn) = g.value();
                (mv, conn.to_string())
            }
        )))?;
        if let Some((mv, conn)) = &old {
            with_table!(self, mv_cs, |t, path| t
                .remove(*mv, (conn.as_str(), cs.0))
                .ctx(path)
                .map(|_| ()))?;
        }
        Ok(old.map(|(mv, _)| MvId(mv)))
    }

    /// The MV object a CS object is linked to, and how.
    pub fn link_of(&self, cs: CsId) -> Result<Option<(MvId, LinkKind)>, StoreError> {
        with_table!(self, cs_mv, |t, path| Ok(t.get(cs.0).ctx(path)?.map(|g| {
            let (mv, k, _) = g.value();
            let kind = if k == 0 {
                LinkKind::Inbound
            } else {
                LinkKind::Provisioned
            };
            (MvId(mv), kind)
        })))
    }

    /// The CS objects linked to an MV object, with their connectors.
    pub fn links_of(&self, mv: MvId) -> Result<Vec<(String, CsId)>, StoreError> {
        with_table!(self, mv_cs, |t, path| {
            let mut out = Vec::new();
            for v in t.get(mv.0).ctx(path)? {
                let g = v.ctx(path)?;
                let (conn, cs) = g.value();
                out.push((conn.to_string(), CsId(cs)));
            }
            Ok(out)
        })
    }

    /// The CS object linked to `mv` in connector `conn`, if any.
    pub fn link_in(&self, mv: MvId, conn: &str) -> Result<Option<CsId>, StoreError> {
        with_table!(self, mv_cs, |t, path| {
            for v in t.get(mv.0).ctx(path)? {
                let g = v.ctx(path)?;
                let (c, cs) = g.value();
                if c == conn {
                    return Ok(Some(CsId(cs)));
                }
            }
            Ok(None)
        })
    }

    /// One MV object.
    pub fn mv(&self, id: MvId) -> Result<Option<MvRecord>, StoreError> {
        with_table!(self, mv, |t, path| match t.get(id.0).ctx(path)? {
            Some(g) => decode_at(path, "mv_objects", id, g.value()).map(Some),
            None => Ok(None),
        })
    }

    /// Writes an MV object and updates the join and reference indexes.
    pub fn put_mv(&self, id: MvId, rec: &MvRecord) -> Result<(), StoreError> {
        let old = self.mv(id)?;
        self.reindex_mv(id, old.as_ref(), Some(rec))?;
        with_table!(self, mv, |t, path| t
            .insert(id.0, encode(rec).as_slice())
            .ctx(path)
            .map(|_| ()))
    }

    /// Removes an MV object with its index entries and queue entry.
    pub fn delete_mv(&self, id: MvId) -> Result<(), StoreError> {
        let old = self.mv(id)?;
        self.reindex_mv(id, old.as_ref(), None)?;
        with_table!(self, mv, |t, path| t.remove(id.0).ctx(path).map(|_| ()))?;
        with_table!(self, dirty_out, |t, path| t
            .remove(id.0)
            .ctx(path)
            .map(|_| ()))
    }

    fn join_keys(&self, rec: Option<&MvRecord>) -> BTreeSet<(String, String, String)> {
        let mut out = BTreeSet::new();
        let Some(rec) = rec else { return out };
        if rec.deleted {
            return out;
        }
        for a in &self.join_attrs {
            if let Some(vs) = rec.attrs.get(a) {
                for v in vs {
                    out.insert((
                        rec.object_type.as_str().to_string(),
                        a.clone(),
                        norm_join_value(v),
                    ));
                }
            }
        }
        out
    }

    fn reindex_mv(
        &self,
        id: MvId,
        old: Option<&MvRecord>,
        new: Option<&MvRecord>,
    ) -> Result<(), StoreError> {
        let (before, after) = (self.join_keys(old), self.join_keys(new));
        if before != after {
            with_table!(self, join, |j, path| {
                for (t, a, v) in before.difference(&after) {
                    j.remove((t.as_str(), a.as_str(), v.as_str()), id.0)
                        .ctx(path)?;
                }
                for (t, a, v) in after.difference(&before) {
                    j.insert((t.as_str(), a.as_str(), v.as_str()), id.0)
                        .ctx(path)?;
                }
                Ok(())
            })?;
        }
        let (wb, wa) = (super::search::tokens_of(old), super::search::tokens_of(new));
        if wb != wa {
            with_table!(self, mv_search, |t, path| {
                for w in wb.difference(&wa) {
                    t.remove((w.as_str(), id.0)).ctx(path)?;
                }
                for w in wa.difference(&wb) {
                    t.insert((w.as_str(), id.0), 1).ctx(path)?;
                }
                Ok(())
            })?;
        }
        let rb = old
            .map(|r| super::refs::mv_refs(&r.attrs))
            .unwrap_or_default();
        let ra = new
            .map(|r| super::refs::mv_refs(&r.attrs))
            .unwrap_or_default();
        if rb != ra {
            with_table!(self, mv_refs, |r, path| {
                for t in rb.difference(&ra) {
                    r.remove(*t, id.0).ctx(path)?;
                }
                for t in ra.difference(&rb) {
                    r.insert(*t, id.0).ctx(path)?;
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// Makes sure the join index covers exactly `attrs`, rebuilding it when the rules changed.
    pub fn ensure_join_index(&mut self, attrs: &[AttrName]) -> Result<bool, StoreError> {
        let wanted: Vec<String> = attrs.iter().map(|a| a.key().to_string()).collect();
        if wanted == self.join_attrs {
            return Ok(false);
        }
        self.tx.delete_join_index(&self.path)?;
        self.join_attrs = wanted;
        let encoded = encode(&self.join_attrs);
        with_table!(self, meta, |t, path| t
            .insert("join_attrs", encoded.as_slice())
            .ctx(path)
            .map(|_| ()))?;
        // Both tables stay open side by side: the MV table is read while the index fills.
        self.tx
            .with_dependent(|tx, open| -> Result<(), StoreError> {
                let path = &self.path;
                let mut mv_slot = open.mv.borrow_mut();
                let mv = super::open::opened(&mut mv_slot, || tx.open_table(MV).ctx(path))?;
                let mut join_slot = open.join.borrow_mut();
                let j =
                    super::open::opened(&mut join_slot, || tx.open_multimap_table(JOIN).ctx(path))?;
                for row in mv.iter().ctx(path)? {
                    let (k, v) = row.ctx(path)?;
                    let rec: MvRecord = decode_at(path, "mv_objects", k.value(), v.value())?;
                    for (t, a, v) in self.join_keys(Some(&rec)) {
                        j.insert((t.as_str(), a.as_str(), v.as_str()), k.value())
                            .ctx(path)?;
                    }
                }
                Ok(())
            })?;
        Ok(true)
    }

    /// MV objects of `object_type` whose `attr` has `value` (normalised compare).
    pub fn join_candidates(
        &self,
        object_type: ObjectType,
        attr: &AttrName,
        value: &Value,
    ) -> Result<Vec<MvId>, StoreError> {
        let norm = norm_join_value(value);
        with_table!(self, join, |t, path| {
            let mut out = Vec::new();
            for v in t
                .get((object_type.as_str(), attr.key(), norm.as_str()))
                .ctx(path)?
            {
                out.push(MvId(v.ctx(path)?.value()));
            }
            Ok(out)
        })
    }

    /// Objects with a pending export in a connector space, in id order.
    pub fn pending_exports(&self, conn: &ConnectorName) -> Result<Vec<CsId>, StoreError> {
        self.id_set(PENDING, conn)
    }

    /// The CS ids of one connector in a (connector, CS id) keyed table, in id order.
    pub(super) fn id_set(
        &self,
        def: redb::TableDefinition<(&str, u64), u8>,
        conn: &ConnectorName,
    ) -> Result<Vec<CsId>, StoreError> {
        if def.name() == PENDING.name() {
            return with_table!(self, pending, |t, path| super::ids_of(t, conn, path));
        }
        let t = self.tx.open_table(def).ctx(&self.path)?;
        super::ids_of(&t, conn, &self.path)
    }

    /// Calls `f` for each CS object of a connector (for writers that render a whole file).
    pub fn for_each_cs(
        &self,
        conn: &ConnectorName,
        f: &mut dyn FnMut(CsId, &CsRecord) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        // In anchor order, holding both tables open: `f` must not use this transaction.
        self.tx
            .with_dependent(|tx, open| -> Result<(), StoreError> {
                let path = &self.path;
                let mut a_slot = open.cs_anchor.borrow_mut();
                let anchors =
                    super::open::opened(&mut a_slot, || tx.open_table(CS_ANCHOR).ctx(path))?;
                let mut cs_slot = open.cs.borrow_mut();
                let cs = super::open::opened(&mut cs_slot, || tx.open_table(CS).ctx(path))?;
                for row in anchors.range((conn.as_str(), &[][..])..).ctx(path)? {
                    let (k, id) = row.ctx(path)?;
                    if k.value().0 != conn.as_str() {
                        break;
                    }
                    let id = CsId(id.value());
                    if let Some(g) = cs.get(id.0).ctx(path)? {
                        let rec: CsRecord = decode_at(path, "cs_objects", id, g.value())?;
                        f(id, &rec)?;
                    }
                }
                Ok(())
            })
    }

    /// A connector's watermark.
    pub fn watermark(&self, conn: &ConnectorName) -> Result<Option<Vec<u8>>, StoreError> {
        let t = self.tx.open_table(WATERMARK).ctx(&self.path)?;
        Ok(t.get(conn.as_str())
            .ctx(&self.path)?
            .map(|g| g.value().to_vec()))
    }

    /// Sets a connector's watermark; written with the changes it covers.
    pub fn set_watermark(&self, conn: &ConnectorName, mark: &[u8]) -> Result<(), StoreError> {
        self.tx
            .open_table(WATERMARK)
            .ctx(&self.path)?
            .insert(conn.as_str(), mark)
            .ctx(&self.path)?;
        Ok(())
    }

    /// Clears a connector's watermark (forces a full import next time).
    pub fn clear_watermark(&self, conn: &ConnectorName) -> Result<(), StoreError> {
        self.tx
            .open_table(WATERMARK)
            .ctx(&self.path)?
            .remove(conn.as_str())
            .ctx(&self.path)?;
        Ok(())
    }

    /// Appends a run to the history; returns its id.
    pub fn add_run(&self, run: &RunRecord) -> Result<u64, StoreError> {
        let id = self.next_id("next_run")?;
        self.tx
            .open_table(RUNS)
            .ctx(&self.path)?
            .insert(id, encode(run).as_slice())
            .ctx(&self.path)?;
        Ok(id)
    }
}
