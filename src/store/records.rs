//! On-disk record types and their codec: one format-version byte, then postcard.
//!
//! postcard is not self-describing, so a field added to a record is a new format version
//! with an explicit migration; [`FORMAT_VERSION`] names the version this build writes.

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::model::{AttrChange, Attributes, Contribution, Dn, ExportKind, ObjectType};

/// The record format this build writes.
///
/// - 1: the first release.
/// - 2: reference values may be [`crate::model::RefTarget::Anchored`] (a variant appended
///   last, so every format-1 record is a valid format-2 record and decodes unchanged; the
///   version moved so that a format-1 build refuses a file holding such values by name
///   instead of calling its records damaged).
pub const FORMAT_VERSION: u8 = 2;

/// The oldest record format this build still reads.
pub const OLDEST_FORMAT: u8 = 1;

/// A connector-space object as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CsRecord {
    /// Owning connector.
    pub connector: String,
    /// Directory anchor; None while a provisioned add waits for export.
    pub anchor: Option<Vec<u8>>,
    /// Current DN in the directory (or the DN an add will create).
    pub dn: Dn,
    /// Structural object class.
    pub object_class: String,
    /// The hologram.
    pub attrs: Attributes,
    /// Set by an import that saw the object go; inbound sync finishes the delete.
    pub deleted: bool,
    /// The MV type this object was provisioned or projected as, for export ordering.
    pub object_type: Option<ObjectType>,
    /// The export still to be applied, recomputed by outbound sync.
    pub export: Option<PendingExportRecord>,
    /// The last export failure, kept until an export succeeds.
    pub error: Option<ErrorRecord>,
    /// References that name an object not (yet) in the metaverse: (attribute, DN).
    pub unresolved: Vec<(String, String)>,
    /// The hologram holds exported values not yet seen by a confirming import.
    pub unconfirmed: bool,
    /// Unique values this object holds in its connector: (attribute key, normalised value).
    pub claims: Vec<(String, String)>,
}

/// A pending export as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PendingExportRecord {
    /// Add, update or delete.
    pub kind: ExportKind,
    /// Rename target, if any.
    pub new_dn: Option<Dn>,
    /// Attribute changes.
    pub changes: Vec<AttrChange>,
    /// The outbound rule that computed it.
    pub rule: String,
}

/// An error kept on an object, with the directory's own words.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorRecord {
    /// The message.
    pub message: String,
    /// Unix ms of the first occurrence.
    pub first_seen_ms: i64,
    /// Unix ms of the latest occurrence.
    pub last_seen_ms: i64,
    /// How many attempts failed.
    pub attempts: u32,
}

/// A metaverse object as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MvRecord {
    /// person, group, contact, device.
    pub object_type: ObjectType,
    /// Joined attributes.
    pub attrs: Attributes,
    /// The distinct (connector, rule) pairs that supplied attributes.
    pub sources: Vec<Contribution>,
    /// For each attribute, in `attrs` order, its index in `sources`: lineage in one byte
    /// per attribute instead of three names.
    pub attr_sources: Vec<u8>,
    /// Set when no connector contributes any more; outbound sync deprovisions, then removes.
    pub deleted: bool,
    /// A sync error on the object (ambiguous join, DN template, conflict).
    pub error: Option<ErrorRecord>,
}

impl MvRecord {
    /// A new, empty MV object.
    pub fn new(object_type: ObjectType) -> Self {
        MvRecord {
            object_type,
            attrs: Attributes::new(),
            sources: Vec::new(),
            attr_sources: Vec::new(),
            deleted: false,
            error: None,
        }
    }

    /// Which connector and rule supplied `attr`.
    pub fn contributor(&self, attr: &str) -> Option<&Contribution> {
        let pos = self.attrs.iter().position(|(name, _)| name.is(attr))?;
        self.sources.get(usize::from(*self.attr_sources.get(pos)?))
    }
}

/// One run of one profile on one connector, for history and the cycle summary.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Unix ms start.
    pub started_ms: i64,
    /// Unix ms end.
    pub finished_ms: i64,
    /// "full" or "delta".
    pub mode: String,
    /// Who asked: "scheduler", "cli", ...
    pub trigger: String,
    /// Per-connector counts.
    pub connectors: Vec<ConnectorRunStats>,
    /// Fatal error that stopped the cycle, if any.
    pub failure: Option<String>,
    /// How long each phase took, in order.
    pub phases: Vec<PhaseTime>,
    /// The cycle ran in staging mode: nothing was exported.
    pub staging: bool,
}

impl RunRecord {
    /// The phase under which a cycle counts, per connector, the exported changes its
    /// imports found were no-ops (the directory did not keep them); a phase entry rather
    /// than a new field, so that run records keep their format.
    pub const NO_OP_PHASE: &'static str = "no-op exports";

    /// The phase entry that holds, per connector, the objects in its connector space when
    /// the cycle ended (the status page's objects-over-time picture); as a phase entry for
    /// the same reason.
    pub const OBJECTS_PHASE: &'static str = "objects";

    /// The objects in `connector`'s space when this cycle ended, where it was recorded.
    pub fn objects_at_end(&self, connector: &str) -> Option<u64> {
        self.phases
            .iter()
            .find(|p| p.phase == Self::OBJECTS_PHASE && p.connector.as_deref() == Some(connector))
            .map(|p| p.objects)
    }

    /// How many of `connector`'s exported changes the imports of this cycle found were
    /// no-ops (0 when every export took).
    pub fn no_op_exports(&self, connector: &str) -> u64 {
        self.phases
            .iter()
            .filter(|p| p.phase == Self::NO_OP_PHASE && p.connector.as_deref() == Some(connector))
            .map(|p| p.objects)
            .sum()
    }
}

/// One phase of a cycle, timed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseTime {
    /// import, sync, export or confirm.
    pub phase: String,
    /// The connector, for per-connector phases.
    pub connector: Option<String>,
    /// Objects handled (imported changes, synced objects, exported changes).
    pub objects: u64,
    /// Wall time in milliseconds.
    pub ms: u64,
}

/// Counts for one connector in one cycle.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectorRunStats {
    /// The connector.
    pub connector: String,
    /// Import counts.
    pub import: ChangeCounts,
    /// Export counts.
    pub export: ChangeCounts,
    /// Objects whose export or sync failed.
    pub errors: u64,
    /// Exports left pending at the end (all of them in staging mode).
    pub pending: u64,
    /// Deletes held back by the deletion threshold, awaiting `approve`.
    pub blocked_deletes: u64,
}

/// Adds, updates, deletes, renames.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeCounts {
    /// Objects added.
    pub adds: u64,
    /// Objects changed (attributes).
    pub updates: u64,
    /// Objects deleted.
    pub deletes: u64,
    /// Objects renamed or moved.
    pub renames: u64,
}

impl ChangeCounts {
    /// Sum of all counts.
    pub fn total(&self) -> u64 {
        self.adds + self.updates + self.deletes + self.renames
    }
}

/// Why a record could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// Written by a newer Bridgehead.
    #[error("record format {found} is newer than this build's {supported}")]
    TooNew {
        /// Version in the record.
        found: u8,
        /// Version this build writes.
        supported: u8,
    },
    /// Not decodable.
    #[error("record is damaged: {0}")]
    Damaged(String),
}

/// Encodes a record with its version byte.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let out = vec![FORMAT_VERSION];
    // postcard only fails on types serde cannot express (none of ours) or a full buffer
    // (a Vec grows), so an error here is a programming bug; keep it visible but harmless.
    match postcard::to_extend(value, out) {
        Ok(v) => v,
        Err(e) => {
            tracing::error!("record encoding failed: {e}");
            vec![FORMAT_VERSION]
        }
    }
}

/// Decodes a record, refusing newer versions.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    match bytes.split_first() {
        Some((&v, rest)) if (OLDEST_FORMAT..=FORMAT_VERSION).contains(&v) => {
            postcard::from_bytes(rest).map_err(|e| CodecError::Damaged(e.to_string()))
        }
        Some((&v, _)) if v > FORMAT_VERSION => Err(CodecError::TooNew {
            found: v,
            supported: FORMAT_VERSION,
        }),
        Some((&v, _)) => Err(CodecError::Damaged(format!("unknown record format {v}"))),
        None => Err(CodecError::Damaged("empty record".into())),
    }
}
