//! The write transaction: records plus every index that depends on them, kept in step.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use redb::{Database, Durability, ReadableMultimapTable, ReadableTable};

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
    pub(super) tx: redb::WriteTransaction,
    pub(super) path: PathBuf,
    join_attrs: Vec<String>,
}

fn norm_join_value(v: &Value) -> String {
    v.to_text().trim().to_lowercase()
}

fn referenced_dns(attrs: &crate::model::Attributes) -> BTreeSet<String> {
    attrs
        .iter()
        .flat_map(|(_, vs)| vs.iter())
        .filter_map(|v| v.as_dn_ref().map(|d| d.norm().to_string()))
        .collect()
}

fn mv_refs(attrs: &crate::model::Attributes) -> BTreeSet<u64> {
    attrs
        .iter()
        .flat_map(|(_, vs)| vs.iter())
        .filter_map(|v| v.as_mv_ref().map(|m| m.0))
        .collect()
}

impl WriteTx {
    pub(super) fn begin(db: &Database, path: &Path) -> Result<WriteTx, StoreError> {
        let mut tx = db.begin_write().ctx(path)?;
        tx.set_durability(Durability::Immediate).ctx(path)?;
        let join_attrs = {
            let meta = tx.open_table(META).ctx(path)?;
            match meta.get("join_attrs").ctx(path)? {
                Some(g) => decode_at(path, "meta", "join_attrs", g.value())?,
                None => Vec::new(),
            }
        };
        Ok(WriteTx {
            tx,
            path: path.to_path_buf(),
            join_attrs,
        })
    }

    /// Makes the transaction durable (one fsync).
    pub fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().ctx(&self.path)
    }

    fn next_id(&self, key: &str) -> Result<u64, StoreError> {
        let mut meta = self.tx.open_table(META).ctx(&self.path)?;
        let next = meta
            .get(key)
            .ctx(&self.path)?
            .and_then(|g| <[u8; 8]>::try_from(g.value()).ok())
            .map(u64::from_le_bytes)
            .unwrap_or(1);
        meta.insert(key, &(next + 1).to_le_bytes()[..])
            .ctx(&self.path)?;
        Ok(next)
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
        let t = self.tx.open_table(CS).ctx(&self.path)?;
        match t.get(id.0).ctx(&self.path)? {
            Some(g) => decode_at(&self.path, "cs_objects", id, g.value()).map(Some),
            None => Ok(None),
        }
    }

    /// Writes a CS object and updates the anchor, DN, reference and pending-export indexes.
    pub fn put_cs(&self, id: CsId, rec: &CsRecord) -> Result<(), StoreError> {
        let p = &self.path;
        let old = self.cs(id)?;
        let conn = rec.connector.as_str();
        {
            let mut anchors = self.tx.open_table(CS_ANCHOR).ctx(p)?;
            if let Some(a) = old.as_ref().and_then(|o| o.anchor.as_ref()) {
                if rec.anchor.as_ref() != Some(a) {
                    anchors.remove((conn, a.as_slice())).ctx(p)?;
                }
            }
            if let Some(a) = &rec.anchor {
                anchors.insert((conn, a.as_slice()), id.0).ctx(p)?;
            }
        }
        {
            let mut dns = self.tx.open_table(CS_DN).ctx(p)?;
            let new_norm = rec.dn.norm();
            if let Some(o) = &old {
                let old_norm = o.dn.norm();
                if old_norm != new_norm {
                    // Only drop the index entry if it still points at us (a new object may
                    // already own the DN).
                    let ours = dns.get((conn, old_norm)).ctx(p)?.map(|g| g.value());
                    if ours == Some(id.0) {
                        dns.remove((conn, old_norm)).ctx(p)?;
                    }
                }
            }
            dns.insert((conn, new_norm), id.0).ctx(p)?;
        }
        {
            let before = old
                .as_ref()
                .map(|o| referenced_dns(&o.attrs))
                .unwrap_or_default();
            let after = referenced_dns(&rec.attrs);
            if before != after {
                let mut refs = self.tx.open_multimap_table(DN_REFS).ctx(p)?;
                for d in before.difference(&after) {
                    refs.remove((conn, d.as_str()), id.0).ctx(p)?;
                }
                for d in after.difference(&before) {
                    refs.insert((conn, d.as_str()), id.0).ctx(p)?;
                }
            }
        }
        {
            let mut pending = self.tx.open_table(PENDING).ctx(p)?;
            if rec.export.is_some() {
                pending.insert((conn, id.0), 1).ctx(p)?;
            } else if old.as_ref().is_some_and(|o| o.export.is_some()) {
                pending.remove((conn, id.0)).ctx(p)?;
            }
        }
        if let Some(o) = &old {
            let hologram_changed = o.deleted != rec.deleted
                || o.dn.as_str() != rec.dn.as_str()
                || o.object_class != rec.object_class
                || o.attrs != rec.attrs;
            if hologram_changed {
                self.tx.open_table(CS_DIGEST).ctx(p)?.remove(id.0).ctx(p)?;
            }
        }
        let mut t = self.tx.open_table(CS).ctx(p)?;
        t.insert(id.0, encode(rec).as_slice()).ctx(p)?;
        Ok(())
    }

    /// The digest of the import the hologram still equals, if any.
    pub fn import_digest(&self, id: CsId) -> Result<Option<Vec<u8>>, StoreError> {
        let t = self.tx.open_table(CS_DIGEST).ctx(&self.path)?;
        Ok(t.get(id.0).ctx(&self.path)?.map(|g| g.value().to_vec()))
    }

    /// Records that the hologram equals an import with this digest.
    pub fn set_import_digest(&self, id: CsId, digest: &[u8]) -> Result<(), StoreError> {
        let mut t = self.tx.open_table(CS_DIGEST).ctx(&self.path)?;
        t.insert(id.0, digest).ctx(&self.path)?;
        Ok(())
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
        if let Some(a) = &old.anchor {
            self.tx
                .open_table(CS_ANCHOR)
                .ctx(p)?
                .remove((conn, a.as_slice()))
                .ctx(p)?;
        }
        {
            let mut dns = self.tx.open_table(CS_DN).ctx(p)?;
            let norm = old.dn.norm();
            let ours = dns.get((conn, norm)).ctx(p)?.map(|g| g.value());
            if ours == Some(id.0) {
                dns.remove((conn, norm)).ctx(p)?;
            }
        }
        {
            let mut refs = self.tx.open_multimap_table(DN_REFS).ctx(p)?;
            for d in referenced_dns(&old.attrs) {
                refs.remove((conn, d.as_str()), id.0).ctx(p)?;
            }
        }
        self.tx
            .open_table(PENDING)
            .ctx(p)?
            .remove((conn, id.0))
            .ctx(p)?;
        self.tx
            .open_table(DIRTY_IN)
            .ctx(p)?
            .remove((conn, id.0))
            .ctx(p)?;
        self.tx.open_table(CS_DIGEST).ctx(p)?.remove(id.0).ctx(p)?;
        self.tx.open_table(CS).ctx(p)?.remove(id.0).ctx(p)?;
        Ok(())
    }

    /// The CS object with this anchor in a connector space.
    pub fn cs_by_anchor(
        &self,
        conn: &ConnectorName,
        anchor: &Anchor,
    ) -> Result<Option<CsId>, StoreError> {
        let t = self.tx.open_table(CS_ANCHOR).ctx(&self.path)?;
        Ok(t.get((conn.as_str(), anchor.as_bytes()))
            .ctx(&self.path)?
            .map(|g| CsId(g.value())))
    }

    /// The CS object at this DN in a connector space.
    pub fn cs_by_dn(&self, conn: &ConnectorName, dn: &Dn) -> Result<Option<CsId>, StoreError> {
        self.cs_by_norm_dn(conn.as_str(), dn.norm())
    }

    fn cs_by_norm_dn(&self, conn: &str, norm: &str) -> Result<Option<CsId>, StoreError> {
        let t = self.tx.open_table(CS_DN).ctx(&self.path)?;
        Ok(t.get((conn, norm))
            .ctx(&self.path)?
            .map(|g| CsId(g.value())))
    }

    /// Ids of every CS object of a connector that has an anchor (for full-import deletes).
    pub fn anchored_cs_ids(&self, conn: &ConnectorName) -> Result<Vec<CsId>, StoreError> {
        let t = self.tx.open_table(CS_ANCHOR).ctx(&self.path)?;
        let mut out = Vec::new();
        for row in t.range((conn.as_str(), &[][..])..).ctx(&self.path)? {
            let (k, v) = row.ctx(&self.path)?;
            if k.value().0 != conn.as_str() {
                break;
            }
            out.push(CsId(v.value()));
        }
        Ok(out)
    }

    /// Links a CS object to an MV object.
    pub fn link(&self, cs: CsId, conn: &str, mv: MvId, kind: LinkKind) -> Result<(), StoreError> {
        let p = &self.path;
        self.unlink(cs)?;
        let k = match kind {
            LinkKind::Inbound => 0u8,
            LinkKind::Provisioned => 1u8,
        };
        self.tx
            .open_table(CS_MV)
            .ctx(p)?
            .insert(cs.0, (mv.0, k, conn))
            .ctx(p)?;
        self.tx
            .open_multimap_table(MV_CS)
            .ctx(p)?
            .insert(mv.0, (conn, cs.0))
            .ctx(p)?;
        Ok(())
    }

    /// Removes a CS object's link, if any; returns the MV object it was linked to.
    pub fn unlink(&self, cs: CsId) -> Result<Option<MvId>, StoreError> {
        let p = &self.path;
        let old = self
            .tx
            .open_table(CS_MV)
            .ctx(p)?
            .remove(cs.0)
            .ctx(p)?
            .map(|g| {
                let (mv, _, conn) = g.value();
                (mv, conn.to_string())
            });
        if let Some((mv, conn)) = &old {
            self.tx
                .open_multimap_table(MV_CS)
                .ctx(p)?
                .remove(*mv, (conn.as_str(), cs.0))
                .ctx(p)?;
        }
        Ok(old.map(|(mv, _)| MvId(mv)))
    }

    /// The MV object a CS object is linked to, and how.
    pub fn link_of(&self, cs: CsId) -> Result<Option<(MvId, LinkKind)>, StoreError> {
        let t = self.tx.open_table(CS_MV).ctx(&self.path)?;
        Ok(t.get(cs.0).ctx(&self.path)?.map(|g| {
            let (mv, k, _) = g.value();
            let kind = if k == 0 {
                LinkKind::Inbound
            } else {
                LinkKind::Provisioned
            };
            (MvId(mv), kind)
        }))
    }

    /// The CS objects linked to an MV object, with their connectors.
    pub fn links_of(&self, mv: MvId) -> Result<Vec<(String, CsId)>, StoreError> {
        let t = self.tx.open_multimap_table(MV_CS).ctx(&self.path)?;
        let mut out = Vec::new();
        for v in t.get(mv.0).ctx(&self.path)? {
            let g = v.ctx(&self.path)?;
            let (conn, cs) = g.value();
            out.push((conn.to_string(), CsId(cs)));
        }
        Ok(out)
    }

    /// The CS object linked to `mv` in connector `conn`, if any.
    pub fn link_in(&self, mv: MvId, conn: &str) -> Result<Option<CsId>, StoreError> {
        Ok(self
            .links_of(mv)?
            .into_iter()
            .find(|(c, _)| c == conn)
            .map(|(_, cs)| cs))
    }

    /// One MV object.
    pub fn mv(&self, id: MvId) -> Result<Option<MvRecord>, StoreError> {
        let t = self.tx.open_table(MV).ctx(&self.path)?;
        match t.get(id.0).ctx(&self.path)? {
            Some(g) => decode_at(&self.path, "mv_objects", id, g.value()).map(Some),
            None => Ok(None),
        }
    }

    /// Writes an MV object and updates the join and reference indexes.
    pub fn put_mv(&self, id: MvId, rec: &MvRecord) -> Result<(), StoreError> {
        let old = self.mv(id)?;
        self.reindex_mv(id, old.as_ref(), Some(rec))?;
        let mut t = self.tx.open_table(MV).ctx(&self.path)?;
        t.insert(id.0, encode(rec).as_slice()).ctx(&self.path)?;
        Ok(())
    }

    /// Removes an MV object with its index entries and queue entry.
    pub fn delete_mv(&self, id: MvId) -> Result<(), StoreError> {
        let old = self.mv(id)?;
        self.reindex_mv(id, old.as_ref(), None)?;
        self.tx
            .open_table(MV)
            .ctx(&self.path)?
            .remove(id.0)
            .ctx(&self.path)?;
        self.tx
            .open_table(DIRTY_OUT)
            .ctx(&self.path)?
            .remove(id.0)
            .ctx(&self.path)?;
        Ok(())
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
        let p = &self.path;
        let (before, after) = (self.join_keys(old), self.join_keys(new));
        if before != after {
            let mut j = self.tx.open_multimap_table(JOIN).ctx(p)?;
            for (t, a, v) in before.difference(&after) {
                j.remove((t.as_str(), a.as_str(), v.as_str()), id.0)
                    .ctx(p)?;
            }
            for (t, a, v) in after.difference(&before) {
                j.insert((t.as_str(), a.as_str(), v.as_str()), id.0)
                    .ctx(p)?;
            }
        }
        super::search::reindex(&self.tx, p, id, old, new)?;
        let rb = old.map(|r| mv_refs(&r.attrs)).unwrap_or_default();
        let ra = new.map(|r| mv_refs(&r.attrs)).unwrap_or_default();
        if rb != ra {
            let mut r = self.tx.open_multimap_table(MV_REFS).ctx(p)?;
            for t in rb.difference(&ra) {
                r.remove(*t, id.0).ctx(p)?;
            }
            for t in ra.difference(&rb) {
                r.insert(*t, id.0).ctx(p)?;
            }
        }
        Ok(())
    }

    /// Makes sure the join index covers exactly `attrs`, rebuilding it when the rules changed.
    pub fn ensure_join_index(&mut self, attrs: &[AttrName]) -> Result<bool, StoreError> {
        let wanted: Vec<String> = attrs.iter().map(|a| a.key().to_string()).collect();
        if wanted == self.join_attrs {
            return Ok(false);
        }
        let p = self.path.clone();
        self.tx.delete_multimap_table(JOIN).ctx(&p)?;
        self.join_attrs = wanted;
        self.tx
            .open_table(META)
            .ctx(&p)?
            .insert("join_attrs", encode(&self.join_attrs).as_slice())
            .ctx(&p)?;
        let mut all = Vec::new();
        {
            let t = self.tx.open_table(MV).ctx(&p)?;
            for row in t.iter().ctx(&p)? {
                let (k, v) = row.ctx(&p)?;
                let rec: MvRecord = decode_at(&p, "mv_objects", k.value(), v.value())?;
                all.push((k.value(), rec));
            }
        }
        let mut j = self.tx.open_multimap_table(JOIN).ctx(&p)?;
        for (id, rec) in &all {
            for (t, a, v) in self.join_keys(Some(rec)) {
                j.insert((t.as_str(), a.as_str(), v.as_str()), *id)
                    .ctx(&p)?;
            }
        }
        Ok(true)
    }

    /// MV objects of `object_type` whose `attr` has `value` (normalised compare).
    pub fn join_candidates(
        &self,
        object_type: ObjectType,
        attr: &AttrName,
        value: &Value,
    ) -> Result<Vec<MvId>, StoreError> {
        let t = self.tx.open_multimap_table(JOIN).ctx(&self.path)?;
        let norm = norm_join_value(value);
        let mut out = Vec::new();
        for v in t
            .get((object_type.as_str(), attr.key(), norm.as_str()))
            .ctx(&self.path)?
        {
            out.push(MvId(v.ctx(&self.path)?.value()));
        }
        Ok(out)
    }

    /// CS objects whose hologram references `dn` in connector `conn`.
    pub fn dn_referrers(&self, conn: &str, dn_norm: &str) -> Result<Vec<CsId>, StoreError> {
        let t = self.tx.open_multimap_table(DN_REFS).ctx(&self.path)?;
        let mut out = Vec::new();
        for v in t.get((conn, dn_norm)).ctx(&self.path)? {
            out.push(CsId(v.ctx(&self.path)?.value()));
        }
        Ok(out)
    }

    /// MV objects that reference `mv`.
    pub fn mv_referrers(&self, mv: MvId) -> Result<Vec<MvId>, StoreError> {
        let t = self.tx.open_multimap_table(MV_REFS).ctx(&self.path)?;
        let mut out = Vec::new();
        for v in t.get(mv.0).ctx(&self.path)? {
            out.push(MvId(v.ctx(&self.path)?.value()));
        }
        Ok(out)
    }

    /// Queues a CS object for inbound sync.
    pub fn mark_inbound(&self, conn: &str, cs: CsId) -> Result<(), StoreError> {
        self.tx
            .open_table(DIRTY_IN)
            .ctx(&self.path)?
            .insert((conn, cs.0), 1)
            .ctx(&self.path)?;
        Ok(())
    }

    /// Takes up to `limit` queued CS objects off the inbound queue.
    pub fn take_inbound(&self, limit: usize) -> Result<Vec<(String, CsId)>, StoreError> {
        let mut t = self.tx.open_table(DIRTY_IN).ctx(&self.path)?;
        let mut out = Vec::with_capacity(limit);
        while out.len() < limit {
            match t.pop_first().ctx(&self.path)? {
                Some((k, _)) => {
                    let (c, id) = k.value();
                    out.push((c.to_string(), CsId(id)));
                }
                None => break,
            }
        }
        Ok(out)
    }

    /// Queues an MV object for outbound sync.
    pub fn mark_outbound(&self, mv: MvId) -> Result<(), StoreError> {
        self.tx
            .open_table(DIRTY_OUT)
            .ctx(&self.path)?
            .insert(mv.0, 1)
            .ctx(&self.path)?;
        Ok(())
    }

    /// Takes up to `limit` MV objects off the outbound queue.
    pub fn take_outbound(&self, limit: usize) -> Result<Vec<MvId>, StoreError> {
        let mut t = self.tx.open_table(DIRTY_OUT).ctx(&self.path)?;
        let mut out = Vec::with_capacity(limit);
        while out.len() < limit {
            match t.pop_first().ctx(&self.path)? {
                Some((k, _)) => out.push(MvId(k.value())),
                None => break,
            }
        }
        Ok(out)
    }

    /// Queues every CS object (of every connector) for inbound sync: a full sync.
    pub fn mark_all_inbound(&self) -> Result<u64, StoreError> {
        let p = &self.path;
        let mut rows = Vec::new();
        {
            let t = self.tx.open_table(CS).ctx(p)?;
            for row in t.iter().ctx(p)? {
                let (k, v) = row.ctx(p)?;
                let rec: CsRecord = decode_at(p, "cs_objects", k.value(), v.value())?;
                rows.push((rec.connector, k.value()));
            }
        }
        let mut d = self.tx.open_table(DIRTY_IN).ctx(p)?;
        for (c, id) in &rows {
            d.insert((c.as_str(), *id), 1).ctx(p)?;
        }
        Ok(rows.len() as u64)
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
        let t = self.tx.open_table(def).ctx(&self.path)?;
        super::ids_of(&t, conn, &self.path)
    }

    /// Calls `f` for each CS object of a connector (for writers that render a whole file).
    pub fn for_each_cs(
        &self,
        conn: &ConnectorName,
        f: &mut dyn FnMut(CsId, &CsRecord) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let t = self.tx.open_table(CS_ANCHOR).ctx(&self.path)?;
        let ids: Vec<u64> = {
            let mut v = Vec::new();
            for row in t.range((conn.as_str(), &[][..])..).ctx(&self.path)? {
                let (k, id) = row.ctx(&self.path)?;
                if k.value().0 != conn.as_str() {
                    break;
                }
                v.push(id.value());
            }
            v
        };
        for id in ids {
            if let Some(rec) = self.cs(CsId(id))? {
                f(CsId(id), &rec)?;
            }
        }
        Ok(())
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

    /// Number of objects still queued for inbound and outbound sync.
    pub fn queue_lengths(&self) -> Result<(u64, u64), StoreError> {
        use redb::ReadableTableMetadata;
        let i = self
            .tx
            .open_table(DIRTY_IN)
            .ctx(&self.path)?
            .len()
            .ctx(&self.path)?;
        let o = self
            .tx
            .open_table(DIRTY_OUT)
            .ctx(&self.path)?
            .len()
            .ctx(&self.path)?;
        Ok((i, o))
    }
}
