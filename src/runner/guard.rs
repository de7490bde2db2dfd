//! The empty-import guard: a snapshot import that finds far fewer objects than the
//! connector space holds is taken for a wrong base DN, an expired account or an empty
//! file, not for "everything was deleted". It stops that import before any delete is
//! recorded, whatever the deletion threshold says, until an admin approves it.

use super::RunError;
use crate::model::ConnectorName;
use crate::store::{HeldImport, StoreError, WriteTx};

/// The guard looks only at connector spaces at least this large: a small directory may
/// well empty itself.
pub const MIN_OBJECTS: u64 = 100;

/// An import that finds fewer than this percentage of what the space holds is held.
pub const MIN_FOUND_PERCENT: u64 = 10;

/// Whether an import that found `found` objects where the space held `held` is suspect.
pub fn trips(held: u64, found: u64) -> bool {
    held >= MIN_OBJECTS && found.saturating_mul(100) < held.saturating_mul(MIN_FOUND_PERCENT)
}

/// What the import may do with the objects it did not find.
#[derive(Debug)]
pub enum Verdict {
    /// Record them deleted.
    Proceed,
    /// Record nothing deleted and stop the connector with this error.
    Stop(RunError),
}

/// Decides, in the import's last transaction, whether the snapshot's deletes may be
/// recorded; an approval is used up by the one import it lets through.
pub fn judge(
    tx: &WriteTx,
    conn: &ConnectorName,
    held: u64,
    found: u64,
) -> Result<Verdict, StoreError> {
    let previous = tx.held_import(conn)?;
    if !trips(held, found) {
        if previous.is_some() {
            tx.set_held_import(conn, None)?;
        }
        return Ok(Verdict::Proceed);
    }
    if previous.is_some_and(|p| p.approved) {
        tx.set_held_import(conn, None)?;
        tracing::warn!(
            connector = %conn, held, found,
            "an approved import found far fewer objects than the connector space held: \
             the missing ones are recorded as deleted"
        );
        return Ok(Verdict::Proceed);
    }
    tx.set_held_import(
        conn,
        Some(HeldImport {
            held,
            found,
            approved: false,
        }),
    )?;
    Ok(Verdict::Stop(RunError::ImportGuard {
        connector: conn.to_string(),
        held,
        found,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_import_finding_under_a_tenth_of_a_large_space_trips_the_guard() {
        assert!(trips(700, 0));
        assert!(trips(100, 9));
        assert!(trips(1000, 99));
        // A tenth or more is believed, and so is anything from a small space.
        assert!(!trips(100, 10));
        assert!(!trips(1000, 100));
        assert!(!trips(700, 100));
        assert!(!trips(99, 0));
        assert!(!trips(0, 0));
        // Grown spaces (more found than held) never trip it.
        assert!(!trips(100, 500));
    }
}
