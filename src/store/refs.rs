//! The reference indexes of the write transaction: which holograms name a DN (references
//! held as strings), which link to an anchor (AD links), which MV objects reference an MV
//! object. Kept in step by `put_cs`, `delete_cs` and `put_mv`; read to queue referrers.

use std::collections::BTreeSet;

use redb::ReadableMultimapTable;

use super::open::with_table;
use super::tables::DN_REFS;
use super::write::WriteTx;
use super::{DbContext, ReadTx, StoreError};
use crate::model::{Anchor, Attributes, CsId, MvId};

/// The normalised DNs a hologram references as strings.
fn referenced_dns(attrs: &Attributes) -> BTreeSet<String> {
    attrs
        .iter()
        .flat_map(|(_, vs)| vs.iter())
        .filter_map(|v| v.as_dn_ref().map(|d| d.norm().to_string()))
        .collect()
}

/// The anchors a hologram links to.
fn linked_anchors(attrs: &Attributes) -> BTreeSet<Vec<u8>> {
    attrs
        .iter()
        .flat_map(|(_, vs)| vs.iter())
        .filter_map(|v| v.as_anchor_ref().map(|a| a.as_bytes().to_vec()))
        .collect()
}

/// The MV objects an MV object references.
pub(super) fn mv_refs(attrs: &Attributes) -> BTreeSet<u64> {
    attrs
        .iter()
        .flat_map(|(_, vs)| vs.iter())
        .filter_map(|v| v.as_mv_ref().map(|m| m.0))
        .collect()
}

impl WriteTx {
    /// Moves CS object `id`'s entries in the DN and anchor reference indexes from what
    /// `old` references to what `new` does (None: no hologram), touching only what changed.
    pub(super) fn reindex_cs_refs(
        &self,
        conn: &str,
        id: CsId,
        old: Option<&Attributes>,
        new: Option<&Attributes>,
    ) -> Result<(), StoreError> {
        let before = old.map(referenced_dns).unwrap_or_default();
        let after = new.map(referenced_dns).unwrap_or_default();
        if before != after {
            with_table!(self, dn_refs, |refs, path| {
                for d in before.difference(&after) {
                    refs.remove((conn, d.as_str()), id.0).ctx(path)?;
                }
                for d in after.difference(&before) {
                    refs.insert((conn, d.as_str()), id.0).ctx(path)?;
                }
                Ok(())
            })?;
        }
        let before = old.map(linked_anchors).unwrap_or_default();
        let after = new.map(linked_anchors).unwrap_or_default();
        if before != after {
            with_table!(self, anchor_refs, |refs, path| {
                for a in before.difference(&after) {
                    refs.remove((conn, a.as_slice()), id.0).ctx(path)?;
                }
                for a in after.difference(&before) {
                    refs.insert((conn, a.as_slice()), id.0).ctx(path)?;
                }
                Ok(())
            })?;
        }
        Ok(())
    }

    /// CS objects whose hologram references `dn` in connector `conn`.
    pub fn dn_referrers(&self, conn: &str, dn_norm: &str) -> Result<Vec<CsId>, StoreError> {
        with_table!(self, dn_refs, |t, path| {
            let mut out = Vec::new();
            for v in t.get((conn, dn_norm)).ctx(path)? {
                out.push(CsId(v.ctx(path)?.value()));
            }
            Ok(out)
        })
    }

    /// CS objects of connector `conn` whose hologram links to the object with `anchor`.
    pub fn anchor_referrers(&self, conn: &str, anchor: &Anchor) -> Result<Vec<CsId>, StoreError> {
        with_table!(self, anchor_refs, |t, path| {
            let mut out = Vec::new();
            for v in t.get((conn, anchor.as_bytes())).ctx(path)? {
                out.push(CsId(v.ctx(path)?.value()));
            }
            Ok(out)
        })
    }

    /// MV objects that reference `mv`.
    pub fn mv_referrers(&self, mv: MvId) -> Result<Vec<MvId>, StoreError> {
        with_table!(self, mv_refs, |t, path| {
            let mut out = Vec::new();
            for v in t.get(mv.0).ctx(path)? {
                out.push(MvId(v.ctx(path)?.value()));
            }
            Ok(out)
        })
    }
}

impl ReadTx {
    /// CS objects whose hologram references `dn_norm` as a string in connector `conn`.
    pub fn dn_referrers(&self, conn: &str, dn_norm: &str) -> Result<Vec<CsId>, StoreError> {
        let t = self.tx.open_multimap_table(DN_REFS).ctx(&self.path)?;
        let mut out = Vec::new();
        for v in t.get((conn, dn_norm)).ctx(&self.path)? {
            out.push(CsId(v.ctx(&self.path)?.value()));
        }
        Ok(out)
    }
}
