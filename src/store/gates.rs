//! The state behind the safety gates: deletes held back by the threshold and their
//! approvals, and the unique values each target object holds (with the objects waiting for
//! one to free up).

use super::tables::{APPROVED_DELETES, BLOCKED_DELETES, IMPORT_GUARD, UNIQUE, UNIQUE_WAIT};
use redb::ReadableTable;

use super::{DbContext, StoreError, WriteTx};
use crate::model::{ConnectorName, CsId, MvId};

/// A snapshot import stopped by the empty-import guard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeldImport {
    /// Objects the connector space held.
    pub held: u64,
    /// Objects the import found.
    pub found: u64,
    /// An admin approved it: the next such import goes through.
    pub approved: bool,
}

impl HeldImport {
    pub(super) fn from_row((held, found, approved): (u64, u64, u8)) -> HeldImport {
        HeldImport {
            held,
            found,
            approved: approved != 0,
        }
    }
}

impl WriteTx {
    /// The import the empty-import guard holds for a connector, if any.
    pub fn held_import(&self, conn: &ConnectorName) -> Result<Option<HeldImport>, StoreError> {
        let t = self.tx.open_table(IMPORT_GUARD).ctx(&self.path)?;
        Ok(t.get(conn.as_str())
            .ctx(&self.path)?
            .map(|g| HeldImport::from_row(g.value())))
    }

    /// Records (or, with `None`, forgets) the import the guard holds for a connector.
    pub fn set_held_import(
        &self,
        conn: &ConnectorName,
        held: Option<HeldImport>,
    ) -> Result<(), StoreError> {
        let mut t = self.tx.open_table(IMPORT_GUARD).ctx(&self.path)?;
        match held {
            Some(h) => {
                t.insert(conn.as_str(), (h.held, h.found, u8::from(h.approved)))
                    .ctx(&self.path)?;
            }
            None => {
                t.remove(conn.as_str()).ctx(&self.path)?;
            }
        }
        Ok(())
    }

    /// Deletes an admin approved for a connector.
    pub fn approved_deletes(&self, conn: &ConnectorName) -> Result<Vec<CsId>, StoreError> {
        self.id_set(APPROVED_DELETES, conn)
    }

    /// Deletes held back for a connector.
    pub fn blocked_deletes(&self, conn: &ConnectorName) -> Result<Vec<CsId>, StoreError> {
        self.id_set(BLOCKED_DELETES, conn)
    }

    /// Replaces the set of deletes held back for a connector.
    pub fn set_blocked_deletes(
        &self,
        conn: &ConnectorName,
        ids: &[CsId],
    ) -> Result<(), StoreError> {
        let p = &self.path;
        let old = self.blocked_deletes(conn)?;
        let mut t = self.tx.open_table(BLOCKED_DELETES).ctx(p)?;
        for id in old {
            t.remove((conn.as_str(), id.0)).ctx(p)?;
        }
        for id in ids {
            t.insert((conn.as_str(), id.0), 1).ctx(p)?;
        }
        Ok(())
    }

    /// Approves exactly the deletes now held back; returns them.
    pub fn approve_deletes(&self, conn: &ConnectorName) -> Result<Vec<CsId>, StoreError> {
        let held = self.blocked_deletes(conn)?;
        let mut t = self.tx.open_table(APPROVED_DELETES).ctx(&self.path)?;
        for id in &held {
            t.insert((conn.as_str(), id.0), 1).ctx(&self.path)?;
        }
        drop(t);
        self.set_blocked_deletes(conn, &[])?;
        Ok(held)
    }

    /// Forgets an approval once its delete was exported (or is no longer pending).
    pub fn consume_approval(&self, conn: &ConnectorName, id: CsId) -> Result<(), StoreError> {
        let mut t = self.tx.open_table(APPROVED_DELETES).ctx(&self.path)?;
        t.remove((conn.as_str(), id.0)).ctx(&self.path)?;
        Ok(())
    }

    /// The CS object holding a unique value in a connector, if any.
    pub fn unique_holder(
        &self,
        conn: &str,
        attr: &str,
        value: &str,
    ) -> Result<Option<CsId>, StoreError> {
        let t = self.tx.open_table(UNIQUE).ctx(&self.path)?;
        Ok(t.get((conn, attr, value))
            .ctx(&self.path)?
            .map(|g| CsId(g.value())))
    }

    /// Records that `cs` holds a unique value.
    pub fn claim_unique(
        &self,
        conn: &str,
        attr: &str,
        value: &str,
        cs: CsId,
    ) -> Result<(), StoreError> {
        let mut t = self.tx.open_table(UNIQUE).ctx(&self.path)?;
        t.insert((conn, attr, value), cs.0).ctx(&self.path)?;
        Ok(())
    }

    /// Gives a unique value up (if `cs` holds it) and queues the MV objects waiting for it.
    pub fn release_unique(
        &self,
        conn: &str,
        attr: &str,
        value: &str,
        cs: CsId,
    ) -> Result<(), StoreError> {
        let p = &self.path;
        if self.unique_holder(conn, attr, value)? != Some(cs) {
            return Ok(());
        }
        self.tx
            .open_table(UNIQUE)
            .ctx(p)?
            .remove((conn, attr, value))
            .ctx(p)?;
        let waiters: Vec<u64> = {
            let mut w = self.tx.open_multimap_table(UNIQUE_WAIT).ctx(p)?;
            let mut out = Vec::new();
            for v in w.remove_all((conn, attr, value)).ctx(p)? {
                out.push(v.ctx(p)?.value());
            }
            out
        };
        for mv in waiters {
            self.mark_outbound(MvId(mv))?;
        }
        Ok(())
    }

    /// Remembers that `mv` waits for a unique value to become free.
    pub fn wait_for_unique(
        &self,
        conn: &str,
        attr: &str,
        value: &str,
        mv: MvId,
    ) -> Result<(), StoreError> {
        let mut w = self.tx.open_multimap_table(UNIQUE_WAIT).ctx(&self.path)?;
        w.insert((conn, attr, value), mv.0).ctx(&self.path)?;
        Ok(())
    }
}
