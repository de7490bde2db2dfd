//! Objects waiting to join: CS objects whose only rules join and never project (foreign
//! security principals, say) and that found no metaverse object to join. They are tried
//! again after a sync projects something, whichever connector it came from, so that a
//! delta joins them exactly as a full sync would.

use redb::ReadableTable;

use super::tables::JOIN_WAIT;
use super::{DbContext, StoreError, WriteTx};
use crate::model::CsId;

impl WriteTx {
    /// Records that this object waits for a metaverse object to join (or, with `false`,
    /// that it no longer does: it joined, or it is gone).
    pub fn set_join_waiting(&self, conn: &str, id: CsId, waiting: bool) -> Result<(), StoreError> {
        let mut t = self.tx.open_table(JOIN_WAIT).ctx(&self.path)?;
        if waiting {
            t.insert((conn, id.0), 0u8).ctx(&self.path)?;
        } else {
            t.remove((conn, id.0)).ctx(&self.path)?;
        }
        Ok(())
    }

    /// Every object waiting to join, as (connector, id).
    pub fn join_waiting(&self) -> Result<Vec<(String, CsId)>, StoreError> {
        let t = self.tx.open_table(JOIN_WAIT).ctx(&self.path)?;
        let mut out = Vec::new();
        for row in t.iter().ctx(&self.path)? {
            let (k, _) = row.ctx(&self.path)?;
            let (conn, id) = k.value();
            out.push((conn.to_string(), CsId(id)));
        }
        Ok(out)
    }
}
