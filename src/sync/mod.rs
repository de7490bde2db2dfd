//! The sync engine: inbound (CS → MV) and outbound (MV → CS) over one store write
//! transaction at a time.
//!
//! Work is queue-driven: imports mark changed CS objects for inbound sync; inbound marks
//! changed MV objects for outbound sync. A delta sync drains those queues, so its cost is
//! proportional to the change, not to the directory. Per-object problems (ambiguous join,
//! DN template without a value, a target DN owned by another object) are recorded on the
//! object and the run goes on; only store errors stop a batch. No IO, no clock: the caller
//! passes the time.

mod diff;
mod flows;
mod inbound;
mod outbound;
mod preview;

use std::collections::HashMap;

use crate::model::{AttrName, ConnectorName, Dn};
use crate::rules::RuleSet;
use crate::store::{ErrorRecord, StoreError, WriteTx};

pub use diff::apply_changes;
pub use preview::{Decision, Preview, PreviewExport, RuleVerdict, preview};

/// What the engine needs besides the store.
pub struct SyncContext<'a> {
    /// The rules.
    pub rules: &'a RuleSet,
    /// Each connector's partitions (for the `container` DN part).
    pub partitions: &'a HashMap<ConnectorName, Vec<Dn>>,
    /// Each target connector's attributes whose values must be unique.
    pub unique: &'a HashMap<ConnectorName, Vec<AttrName>>,
    /// The time, Unix ms, for error records.
    pub now_ms: i64,
}

/// Counts from one sync.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// CS objects processed by inbound sync.
    pub inbound: u64,
    /// MV objects created.
    pub projected: u64,
    /// CS objects joined to existing MV objects.
    pub joined: u64,
    /// CS objects disconnected (deleted or out of scope).
    pub disconnected: u64,
    /// MV objects deleted.
    pub mv_deleted: u64,
    /// MV objects processed by outbound sync.
    pub outbound: u64,
    /// Target objects provisioned.
    pub provisioned: u64,
    /// Target objects deprovisioned.
    pub deprovisioned: u64,
    /// Objects that got an error.
    pub errors: u64,
}

impl SyncStats {
    /// Adds another batch's counts.
    pub fn add(&mut self, o: &SyncStats) {
        self.inbound += o.inbound;
        self.projected += o.projected;
        self.joined += o.joined;
        self.disconnected += o.disconnected;
        self.mv_deleted += o.mv_deleted;
        self.outbound += o.outbound;
        self.provisioned += o.provisioned;
        self.deprovisioned += o.deprovisioned;
        self.errors += o.errors;
    }
}

/// Processes up to `limit` queued CS objects; returns how many were taken.
pub fn inbound_batch(
    tx: &WriteTx,
    ctx: &SyncContext<'_>,
    limit: usize,
    stats: &mut SyncStats,
) -> Result<usize, StoreError> {
    let batch = tx.take_inbound(limit)?;
    let n = batch.len();
    for (_, id) in batch {
        inbound::sync_cs(tx, ctx, id, stats)?;
    }
    Ok(n)
}

/// Processes up to `limit` queued MV objects; returns how many were taken.
pub fn outbound_batch(
    tx: &WriteTx,
    ctx: &SyncContext<'_>,
    limit: usize,
    stats: &mut SyncStats,
) -> Result<usize, StoreError> {
    let batch = tx.take_outbound(limit)?;
    for id in &batch {
        outbound::sync_mv(tx, ctx, *id, stats)?;
    }
    Ok(batch.len())
}

/// Updates an error record: first and last seen, attempts.
pub fn record_error(old: Option<ErrorRecord>, message: String, now_ms: i64) -> ErrorRecord {
    match old {
        Some(e) if e.message == message => ErrorRecord {
            last_seen_ms: now_ms,
            attempts: e.attempts + 1,
            ..e
        },
        Some(e) => ErrorRecord {
            message,
            first_seen_ms: e.first_seen_ms,
            last_seen_ms: now_ms,
            attempts: e.attempts + 1,
        },
        None => ErrorRecord {
            message,
            first_seen_ms: now_ms,
            last_seen_ms: now_ms,
            attempts: 1,
        },
    }
}
