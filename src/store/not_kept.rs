//! Exports a directory did not keep: per target object, the values that were sent and
//! did not come back in the confirming import. Outbound sync holds those values back
//! until what it would send changes, so a refusal or rewrite costs one export, not one
//! per cycle forever.

use redb::ReadableTable;

use super::records::encode;
use super::tables::NOT_KEPT;
use super::{DbContext, StoreError, WriteTx, decode_at};
use crate::model::{Attributes, CsId};

impl WriteTx {
    /// Records the values of an object's last export that the directory did not keep.
    pub fn set_not_kept(&self, id: CsId, sent: &Attributes) -> Result<(), StoreError> {
        let mut t = self.tx.open_table(NOT_KEPT).ctx(&self.path)?;
        t.insert(id.0, encode(sent).as_slice()).ctx(&self.path)?;
        Ok(())
    }

    /// The values of the object's last export that the directory did not keep.
    pub fn not_kept(&self, id: CsId) -> Result<Option<Attributes>, StoreError> {
        let t = self.tx.open_table(NOT_KEPT).ctx(&self.path)?;
        match t.get(id.0).ctx(&self.path)? {
            Some(g) => decode_at(&self.path, "not_kept", id, g.value()).map(Some),
            None => Ok(None),
        }
    }

    /// Forgets them: the directory took a later export, or the object is gone.
    pub fn clear_not_kept(&self, id: CsId) -> Result<(), StoreError> {
        let mut t = self.tx.open_table(NOT_KEPT).ctx(&self.path)?;
        t.remove(id.0).ctx(&self.path)?;
        Ok(())
    }
}
