//! Every redb table, in one place. Keys are built for the engine's queries.

use redb::{MultimapTableDefinition, TableDefinition};

/// Format version, magic, id counters, join-index attribute list.
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// CS object by id.
pub const CS: TableDefinition<u64, &[u8]> = TableDefinition::new("cs_objects");
/// (connector, anchor) → CS id.
pub const CS_ANCHOR: TableDefinition<(&str, &[u8]), u64> = TableDefinition::new("cs_by_anchor");
/// (connector, normalised DN) → CS id.
pub const CS_DN: TableDefinition<(&str, &str), u64> = TableDefinition::new("cs_by_dn");
/// CS id → digest of (DN, object class, attributes) as last imported, present only while
/// the hologram still equals that import: an unchanged object is recognised without decoding.
pub const CS_DIGEST: TableDefinition<u64, &[u8]> = TableDefinition::new("cs_import_digest");
/// CS id → (MV id, link kind: 0 joined/projected, 1 provisioned, connector).
pub const CS_MV: TableDefinition<u64, (u64, u8, &str)> = TableDefinition::new("link_cs_mv");
/// MV id → (connector, CS id) linked to it; the connector is here so that finding an MV
/// object's object in one connector space decodes no record.
pub const MV_CS: MultimapTableDefinition<u64, (&str, u64)> =
    MultimapTableDefinition::new("link_mv_cs");
/// MV object by id.
pub const MV: TableDefinition<u64, &[u8]> = TableDefinition::new("mv_objects");
/// (type, attribute, normalised value) → MV ids, for join rules.
pub const JOIN: MultimapTableDefinition<(&str, &str, &str), u64> =
    MultimapTableDefinition::new("mv_join_index");
/// (connector, normalised DN) → CS ids whose hologram references that DN.
pub const DN_REFS: MultimapTableDefinition<(&str, &str), u64> =
    MultimapTableDefinition::new("cs_dn_referrers");
/// (connector, anchor) → CS ids whose hologram links to the object with that anchor (AD
/// links held by anchor; the target need not be in the connector space).
pub const ANCHOR_REFS: MultimapTableDefinition<(&str, &[u8]), u64> =
    MultimapTableDefinition::new("cs_anchor_referrers");
/// MV id → MV ids that reference it.
pub const MV_REFS: MultimapTableDefinition<u64, u64> = MultimapTableDefinition::new("mv_referrers");
/// (connector, CS id) → 1: CS objects waiting for inbound sync (pending import).
pub const DIRTY_IN: TableDefinition<(&str, u64), u8> = TableDefinition::new("dirty_inbound");
/// MV id → 1: MV objects waiting for outbound sync.
pub const DIRTY_OUT: TableDefinition<u64, u8> = TableDefinition::new("dirty_outbound");
/// (connector, CS id) → 1: CS objects with a pending export.
pub const PENDING: TableDefinition<(&str, u64), u8> = TableDefinition::new("pending_exports");
/// (connector, CS id) → 1: deletes held back by the deletion threshold, awaiting approval.
pub const BLOCKED_DELETES: TableDefinition<(&str, u64), u8> =
    TableDefinition::new("blocked_deletes");
/// (connector, CS id) → 1: held deletes an admin approved; consumed when exported.
pub const APPROVED_DELETES: TableDefinition<(&str, u64), u8> =
    TableDefinition::new("approved_deletes");
/// connector → (objects its space held, objects the import found, approved 0/1): a
/// snapshot import that found far fewer objects than the space held, stopped by the
/// empty-import guard; approval lets the next such import through once.
pub const IMPORT_GUARD: TableDefinition<&str, (u64, u64, u8)> =
    TableDefinition::new("import_guard");
/// (connector, attribute, normalised value) → the CS object that holds a unique value.
pub const UNIQUE: TableDefinition<(&str, &str, &str), u64> = TableDefinition::new("unique_values");
/// (connector, attribute, normalised value) → MV objects quarantined waiting for it.
pub const UNIQUE_WAIT: MultimapTableDefinition<(&str, &str, &str), u64> =
    MultimapTableDefinition::new("unique_waiters");
/// CS id → the values of its last export that the directory did not keep (Attributes).
pub const NOT_KEPT: TableDefinition<u64, &[u8]> = TableDefinition::new("export_not_kept");
/// (connector, CS id) → 0: disconnectors whose join-only rules found nothing to join yet.
pub const JOIN_WAIT: TableDefinition<(&str, u64), u8> = TableDefinition::new("join_waiting");
/// connector → watermark bytes.
pub const WATERMARK: TableDefinition<&str, &[u8]> = TableDefinition::new("watermarks");
/// run id → RunRecord.
pub const RUNS: TableDefinition<u64, &[u8]> = TableDefinition::new("run_history");
/// Appliance settings changed at run time, not in the config file: the admin password hash
/// (argon2id PHC string) and a staging-mode override, as versioned records.
pub const ADMIN: TableDefinition<&str, &[u8]> = TableDefinition::new("admin");

/// Search index: (lower-case word or whole value of a name-like attribute, MV id).
pub const MV_SEARCH: TableDefinition<(&str, u64), u8> = TableDefinition::new("mv_search");
