//! The state file: the only code that touches redb.
//!
//! Typed tables ([`tables`]), versioned records ([`records`]), and two transaction types:
//! [`WriteTx`] keeps every index in step with the records it writes (anchor, DN, links,
//! join index, reference indexes), so callers never maintain an index by hand; [`ReadTx`] is
//! an MVCC snapshot that never blocks the writer. Nothing here knows rules or protocols.

pub mod admin;
mod backup;
mod gates;
mod join_wait;
mod not_kept;
mod open;
mod queues;
pub mod records;
mod refs;
mod search;
mod status;
mod tables;
pub mod write;

use std::path::{Path, PathBuf};

use redb::{
    Builder, ConcurrencyMode, Database, ReadOnlyDatabase, ReadableDatabase, ReadableTable,
    ReadableTableMetadata,
};

use crate::model::{ConnectorName, CsId, Dn, MvId};
pub use gates::HeldImport;
pub use records::{
    ChangeCounts, ConnectorRunStats, CsRecord, ErrorRecord, MvRecord, PendingExportRecord,
    PhaseTime, RunRecord,
};
use records::{CodecError, FORMAT_VERSION, decode};
pub use search::words as search_words;
use tables::*;
pub use write::WriteTx;

const MAGIC: &[u8] = b"bridgehead-state";

/// redb's page cache (read cache and write buffer together).
const CACHE_BYTES: usize = 256 << 20;

/// What went wrong with the state file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another process holds the file.
    #[error(
        "state file {0} is in use by another bridgehead process (stop it, or use its status page)"
    )]
    InUse(PathBuf),
    /// The file is not a Bridgehead state file.
    #[error(
        "{0} is not a Bridgehead state file: {1}; if `state_file` names the right file, it is damaged: restore the last backup with `bridgehead restore`, or move it away and run `bridgehead cycle --full` to rebuild it from the directories"
    )]
    NotOurs(PathBuf, String),
    /// Written by a newer version.
    #[error(
        "state file {path} has format {found}, newer than this build's {supported}; run the newer bridgehead or restore a backup"
    )]
    TooNew {
        /// The file.
        path: PathBuf,
        /// Its format.
        found: u8,
        /// Ours.
        supported: u8,
    },
    /// A record could not be decoded.
    #[error("state file {path}: {table} record {key}: {source}{advice}", advice = record_advice(source))]
    Record {
        /// The file.
        path: PathBuf,
        /// The table.
        table: &'static str,
        /// The key, printed.
        key: String,
        /// Why.
        source: CodecError,
    },
    /// The file is damaged.
    #[error(
        "state file {0} is damaged ({1}); restore the last backup with `bridgehead restore`, or move the file away and run `bridgehead cycle --full` to rebuild it from the directories"
    )]
    Corrupted(PathBuf, String),
    /// The file cannot be opened for writing.
    #[error(
        "state file {0} cannot be opened: {1}; check that the service user owns it and that its file system is writable and not full"
    )]
    Unwritable(PathBuf, String),
    /// redb reported an error (IO, corruption, full disk).
    #[error("state file {path}: {message}{hint}", hint = io_hint(message))]
    Db {
        /// The file.
        path: PathBuf,
        /// redb's words.
        message: String,
    },
}

/// An empty file is not a new state file: redb would quietly make it one, and a cycle
/// would then re-provision everything. It is what a crashed copy or a full disk leaves.
fn refuse_empty(path: &Path) -> Result<(), StoreError> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() && m.len() == 0 => Err(StoreError::Corrupted(
            path.to_path_buf(),
            "the file is empty (0 bytes)".into(),
        )),
        _ => Ok(()),
    }
}

/// redb's refusal to open an existing file: damaged bytes, or not a redb file at all.
fn not_ours_or_damaged(path: &Path, e: redb::DatabaseError) -> StoreError {
    let message = e.to_string();
    if damaged(&message) {
        StoreError::Corrupted(path.to_path_buf(), message)
    } else {
        StoreError::NotOurs(path.to_path_buf(), message)
    }
}

/// The advice after a record that cannot be decoded: a damaged record means a damaged
/// file; a newer one a newer build.
fn record_advice(e: &records::CodecError) -> &'static str {
    match e {
        records::CodecError::Damaged(_) => {
            "; the file is damaged: restore the last backup with `bridgehead restore`, or move \
             the file away and run `bridgehead cycle --full` to rebuild it from the directories"
        }
        records::CodecError::TooNew { .. } => "; run the newer bridgehead or restore a backup",
    }
}

/// Whether redb's words mean the file's bytes are damaged (as opposed to the file system
/// failing): a truncated file reads short, a damaged page fails its checks, and a file
/// that needs repair cannot be repaired read-only. Our tables are always opened with the
/// same definitions (the format version guards changes), so a table whose stored key or
/// value type, or kind, differs from ours has damaged metadata too.
fn damaged(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "failed to fill whole buffer",
        "corrupt",
        "repair",
        "invalid",
        "unexpected end",
        "has key type",
        "does not match stored definition",
        "is a multimap table",
        "is not a multimap table",
    ]
    .iter()
    .any(|w| m.contains(w))
}

/// What to do about an I/O error from the file system under the state file. redb's errors
/// keep the `std::io::Error` only as text, whose "(os error N)" suffix is the stable errno.
fn io_hint(message: &str) -> &'static str {
    if message.contains("(os error 28)") || message.contains("(os error 122)") {
        // ENOSPC, EDQUOT
        "; its file system is full: free space there (or move the file to a larger one) and \
         run again. Nothing after the last committed batch was kept; the next cycle finishes \
         the work"
    } else if message.contains("(os error 30)")
        || message.contains("(os error 13)")
        || message.contains("(os error 1)")
    {
        // EROFS, EACCES, EPERM
        "; the file cannot be written: check that the service user owns it and that its file \
         system is mounted read-write"
    } else if message.contains("(os error 5)") {
        // EIO
        "; the disk reported an I/O error: check the disk, then restore the last backup with \
         `bridgehead restore` if the file no longer opens"
    } else {
        ""
    }
}

/// Converts any redb error into a [`StoreError`] naming the file.
pub(crate) trait DbContext<T> {
    fn ctx(self, path: &Path) -> Result<T, StoreError>;
}

impl<T, E: std::fmt::Display> DbContext<T> for Result<T, E> {
    fn ctx(self, path: &Path) -> Result<T, StoreError> {
        self.map_err(|e| {
            let message = e.to_string();
            if damaged(&message) {
                StoreError::Corrupted(path.to_path_buf(), message)
            } else {
                StoreError::Db {
                    path: path.to_path_buf(),
                    message,
                }
            }
        })
    }
}

/// The open file: the single writer, or a read-only follower of a running writer.
enum Db {
    Writer(Database),
    Reader(ReadOnlyDatabase),
}

/// An open state file.
pub struct Store {
    db: Db,
    path: PathBuf,
}

/// One process writes (the daemon or a CLI cycle); others may follow its commits read-only
/// (`search`, `backup`). Every opener must use the same mode.
fn builder() -> Builder {
    let mut b = Builder::new();
    b.set_concurrency_mode(ConcurrencyMode::SingleWriter);
    // redb's default cache is 1 GiB, which a million-object state file fills: the appliance
    // must stay under 1 GB resident. The OS page cache still holds the rest of the file.
    b.set_cache_size(CACHE_BYTES);
    b
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({})", self.path.display())
    }
}

impl Store {
    /// Opens (or creates) the state file, refusing a file in use, not ours, or too new.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let existed = path.exists();
        if existed {
            refuse_empty(path)?;
        }
        let db = match builder().create(path) {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(StoreError::InUse(path.to_path_buf()));
            }
            Err(redb::DatabaseError::Storage(redb::StorageError::Corrupted(m))) if existed => {
                return Err(StoreError::Corrupted(path.to_path_buf(), m));
            }
            Err(redb::DatabaseError::Storage(redb::StorageError::Io(e)))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::PermissionDenied
                        | std::io::ErrorKind::ReadOnlyFilesystem
                        | std::io::ErrorKind::StorageFull
                ) =>
            {
                return Err(StoreError::Unwritable(path.to_path_buf(), e.to_string()));
            }
            Err(e) if existed => return Err(not_ours_or_damaged(path, e)),
            Err(e) => return Err(e).ctx(path),
        };
        let store = Store {
            db: Db::Writer(db),
            path: path.to_path_buf(),
        };
        store.check_format(existed)?;
        store.ensure_search_index()?;
        Ok(store)
    }

    /// Opens an existing state file read-only, beside a running writer if there is one.
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        if !path.exists() {
            return Err(StoreError::Db {
                path: path.to_path_buf(),
                message: "no such file (has a cycle run yet?)".into(),
            });
        }
        refuse_empty(path)?;
        let db = match builder().open_read_only(path) {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(StoreError::InUse(path.to_path_buf()));
            }
            Err(e) => return Err(not_ours_or_damaged(path, e)),
        };
        let store = Store {
            db: Db::Reader(db),
            path: path.to_path_buf(),
        };
        let tx = store.read()?;
        let meta = tx.tx.open_table(META).ctx(path)?;
        if !check_magic_and_format(&meta, path)? {
            return Err(StoreError::NotOurs(path.to_path_buf(), "no magic".into()));
        }
        drop(meta);
        drop(tx);
        Ok(store)
    }

    fn writer(&self) -> Result<&Database, StoreError> {
        match &self.db {
            Db::Writer(db) => Ok(db),
            Db::Reader(_) => Err(StoreError::Db {
                path: self.path.clone(),
                message: "opened read-only; cannot write".into(),
            }),
        }
    }

    fn check_format(&self, existed: bool) -> Result<(), StoreError> {
        let path = &self.path;
        let tx = self.writer()?.begin_write().ctx(path)?;
        {
            let mut meta = tx.open_table(META).ctx(path)?;
            let has_magic = meta.get("magic").ctx(path)?.is_some();
            match has_magic {
                true if check_magic_and_format(&meta, path)? => {
                    // An older format's records all decode as they are (see
                    // `records::FORMAT_VERSION`); the file is marked with ours from now on,
                    // since this build may write values the older one cannot read.
                    let found = meta
                        .get("format")
                        .ctx(path)?
                        .and_then(|g| g.value().first().copied());
                    if found != Some(FORMAT_VERSION) {
                        meta.insert("format", &[FORMAT_VERSION][..]).ctx(path)?;
                    }
                }
                true => {
                    return Err(StoreError::NotOurs(path.clone(), "wrong magic".into()));
                }
                false if existed && meta.len().ctx(path)? > 0 => {
                    return Err(StoreError::NotOurs(path.clone(), "no magic".into()));
                }
                false => {
                    if existed && tx.list_tables().ctx(path)?.count() > 1 {
                        return Err(StoreError::NotOurs(
                            path.clone(),
                            "a redb file with other tables".into(),
                        ));
                    }
                    meta.insert("magic", MAGIC).ctx(path)?;
                    meta.insert("format", &[FORMAT_VERSION][..]).ctx(path)?;
                }
            }
        }
        // Readers open tables that writers may not have created yet; create them all once.
        tx.open_table(CS).ctx(path)?;
        tx.open_table(CS_ANCHOR).ctx(path)?;
        tx.open_table(CS_DN).ctx(path)?;
        tx.open_table(CS_MV).ctx(path)?;
        tx.open_table(CS_DIGEST).ctx(path)?;
        tx.open_table(MV).ctx(path)?;
        tx.open_table(DIRTY_IN).ctx(path)?;
        tx.open_table(DIRTY_OUT).ctx(path)?;
        tx.open_table(PENDING).ctx(path)?;
        tx.open_table(WATERMARK).ctx(path)?;
        tx.open_table(BLOCKED_DELETES).ctx(path)?;
        tx.open_table(UNIQUE).ctx(path)?;
        tx.open_table(NOT_KEPT).ctx(path)?;
        tx.open_table(JOIN_WAIT).ctx(path)?;
        tx.open_multimap_table(UNIQUE_WAIT).ctx(path)?;
        tx.open_table(APPROVED_DELETES).ctx(path)?;
        tx.open_table(IMPORT_GUARD).ctx(path)?;
        tx.open_table(RUNS).ctx(path)?;
        tx.open_multimap_table(MV_CS).ctx(path)?;
        tx.open_multimap_table(JOIN).ctx(path)?;
        tx.open_multimap_table(DN_REFS).ctx(path)?;
        tx.open_multimap_table(ANCHOR_REFS).ctx(path)?;
        tx.open_multimap_table(MV_REFS).ctx(path)?;
        tx.open_table(MV_SEARCH).ctx(path)?;
        tx.commit().ctx(path)?;
        Ok(())
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts the (single) write transaction; blocks while another one is open.
    pub fn write(&self) -> Result<WriteTx, StoreError> {
        WriteTx::begin(self.writer()?, &self.path)
    }

    /// A consistent read snapshot.
    pub fn read(&self) -> Result<ReadTx, StoreError> {
        Ok(ReadTx {
            tx: match &self.db {
                Db::Writer(db) => db.begin_read(),
                Db::Reader(db) => db.begin_read(),
            }
            .ctx(&self.path)?,
            path: self.path.clone(),
        })
    }

    /// Gives free pages back to the file system; needs no transaction in flight.
    pub fn compact(&mut self) -> Result<bool, StoreError> {
        let path = self.path.clone();
        match &mut self.db {
            Db::Writer(db) => db.compact().ctx(&path),
            Db::Reader(_) => Ok(false),
        }
    }

    /// Copies every table into a new file from one snapshot; see [`backup`].
    pub fn backup_to(&self, dest: &Path) -> Result<(), StoreError> {
        backup::copy(&self.read()?.tx, &self.path, dest)
    }
}

/// Whether the meta table carries our magic; a newer format is an error naming both versions.
fn check_magic_and_format(
    meta: &impl ReadableTable<&'static str, &'static [u8]>,
    path: &Path,
) -> Result<bool, StoreError> {
    let magic = meta.get("magic").ctx(path)?.map(|g| g.value().to_vec());
    if magic.as_deref() != Some(MAGIC) {
        return Ok(false);
    }
    let found = meta
        .get("format")
        .ctx(path)?
        .and_then(|g| g.value().first().copied())
        .unwrap_or(0);
    if found > FORMAT_VERSION {
        return Err(StoreError::TooNew {
            path: path.to_path_buf(),
            found,
            supported: FORMAT_VERSION,
        });
    }
    Ok(true)
}

/// The CS ids of one connector in a table keyed by (connector, CS id), in id order.
pub(crate) fn ids_of(
    table: &impl ReadableTable<(&'static str, u64), u8>,
    conn: &ConnectorName,
    path: &Path,
) -> Result<Vec<CsId>, StoreError> {
    let mut out = Vec::new();
    for row in table
        .range((conn.as_str(), 0u64)..=(conn.as_str(), u64::MAX))
        .ctx(path)?
    {
        out.push(CsId(row.ctx(path)?.0.value().1));
    }
    Ok(out)
}

/// Decodes a record and names the table and key when it fails.
pub(crate) fn decode_at<T: serde::de::DeserializeOwned>(
    path: &Path,
    table: &'static str,
    key: impl std::fmt::Display,
    bytes: &[u8],
) -> Result<T, StoreError> {
    decode(bytes).map_err(|source| match source {
        CodecError::TooNew { found, supported } => StoreError::TooNew {
            path: path.to_path_buf(),
            found,
            supported,
        },
        source => StoreError::Record {
            path: path.to_path_buf(),
            table,
            key: key.to_string(),
            source,
        },
    })
}

/// How much room one table takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSize {
    /// The table.
    pub name: &'static str,
    /// Rows (for multimaps: values).
    pub rows: u64,
    /// Bytes of keys and values.
    pub stored_bytes: u64,
    /// Bytes of b-tree structure.
    pub metadata_bytes: u64,
    /// Bytes lost to fragmentation.
    pub fragmented_bytes: u64,
}

/// A read snapshot.
pub struct ReadTx {
    tx: redb::ReadTransaction,
    path: PathBuf,
}

impl ReadTx {
    /// One CS object.
    pub fn cs(&self, id: CsId) -> Result<Option<CsRecord>, StoreError> {
        let t = self.tx.open_table(CS).ctx(&self.path)?;
        match t.get(id.0).ctx(&self.path)? {
            Some(g) => decode_at(&self.path, "cs_objects", id, g.value()).map(Some),
            None => Ok(None),
        }
    }

    /// One MV object.
    pub fn mv(&self, id: MvId) -> Result<Option<MvRecord>, StoreError> {
        let t = self.tx.open_table(MV).ctx(&self.path)?;
        match t.get(id.0).ctx(&self.path)? {
            Some(g) => decode_at(&self.path, "mv_objects", id, g.value()).map(Some),
            None => Ok(None),
        }
    }

    /// The MV object a CS object is linked to.
    pub fn link_of(&self, id: CsId) -> Result<Option<MvId>, StoreError> {
        let t = self.tx.open_table(CS_MV).ctx(&self.path)?;
        Ok(t.get(id.0).ctx(&self.path)?.map(|g| MvId(g.value().0)))
    }

    /// The CS objects linked to an MV object.
    pub fn links_of(&self, id: MvId) -> Result<Vec<CsId>, StoreError> {
        let t = self.tx.open_multimap_table(MV_CS).ctx(&self.path)?;
        let mut out = Vec::new();
        for v in t.get(id.0).ctx(&self.path)? {
            out.push(CsId(v.ctx(&self.path)?.value().1));
        }
        Ok(out)
    }

    /// The CS object with this anchor in a connector space.
    pub fn cs_by_anchor(
        &self,
        connector: &ConnectorName,
        anchor: &crate::model::Anchor,
    ) -> Result<Option<CsId>, StoreError> {
        let t = self.tx.open_table(CS_ANCHOR).ctx(&self.path)?;
        Ok(t.get((connector.as_str(), anchor.as_bytes()))
            .ctx(&self.path)?
            .map(|g| CsId(g.value())))
    }

    /// The CS object at a DN in a connector space.
    pub fn cs_by_dn(&self, connector: &ConnectorName, dn: &Dn) -> Result<Option<CsId>, StoreError> {
        let t = self.tx.open_table(CS_DN).ctx(&self.path)?;
        Ok(t.get((connector.as_str(), dn.norm()))
            .ctx(&self.path)?
            .map(|g| CsId(g.value())))
    }

    /// Calls `f` for every CS object of a connector, in id order, streaming.
    pub fn for_each_cs(
        &self,
        connector: Option<&ConnectorName>,
        f: &mut dyn FnMut(CsId, CsRecord) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let t = self.tx.open_table(CS).ctx(&self.path)?;
        for row in t.iter().ctx(&self.path)? {
            let (k, v) = row.ctx(&self.path)?;
            let id = CsId(k.value());
            let rec: CsRecord = decode_at(&self.path, "cs_objects", id, v.value())?;
            if connector.is_none_or(|c| c.as_str() == rec.connector) {
                f(id, rec)?;
            }
        }
        Ok(())
    }

    /// Calls `f` for every MV object.
    pub fn for_each_mv(
        &self,
        f: &mut dyn FnMut(MvId, MvRecord) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let t = self.tx.open_table(MV).ctx(&self.path)?;
        for row in t.iter().ctx(&self.path)? {
            let (k, v) = row.ctx(&self.path)?;
            let id = MvId(k.value());
            f(id, decode_at(&self.path, "mv_objects", id, v.value())?)?;
        }
        Ok(())
    }

    /// A connector's watermark.
    pub fn watermark(&self, connector: &ConnectorName) -> Result<Option<Vec<u8>>, StoreError> {
        let t = self.tx.open_table(WATERMARK).ctx(&self.path)?;
        Ok(t.get(connector.as_str())
            .ctx(&self.path)?
            .map(|g| g.value().to_vec()))
    }

    /// Objects with a pending export in a connector space, in id order.
    pub fn pending_exports(&self, connector: &ConnectorName) -> Result<Vec<CsId>, StoreError> {
        let t = self.tx.open_table(PENDING).ctx(&self.path)?;
        ids_of(&t, connector, &self.path)
    }

    /// Deletes held back by the deletion threshold for a connector.
    pub fn blocked_deletes(&self, connector: &ConnectorName) -> Result<Vec<CsId>, StoreError> {
        let t = self.tx.open_table(BLOCKED_DELETES).ctx(&self.path)?;
        ids_of(&t, connector, &self.path)
    }

    /// The import the empty-import guard stopped for a connector, if one is held.
    pub fn held_import(&self, connector: &ConnectorName) -> Result<Option<HeldImport>, StoreError> {
        let t = match self.tx.open_table(IMPORT_GUARD) {
            Ok(t) => t,
            // A state file from before the guard: nothing is held.
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e).ctx(&self.path),
        };
        Ok(t.get(connector.as_str())
            .ctx(&self.path)?
            .map(|g| HeldImport::from_row(g.value())))
    }

    /// Whether a connector's space holds at least `n` objects from the directory (counted
    /// no further than that).
    pub fn holds_at_least(&self, connector: &ConnectorName, n: u64) -> Result<bool, StoreError> {
        let t = self.tx.open_table(CS_ANCHOR).ctx(&self.path)?;
        let mut seen = 0u64;
        for row in t.range((connector.as_str(), &[][..])..).ctx(&self.path)? {
            if seen >= n {
                break;
            }
            let (k, _) = row.ctx(&self.path)?;
            if k.value().0 != connector.as_str() {
                break;
            }
            seen += 1;
        }
        Ok(seen >= n)
    }

    /// Number of pending exports of a connector.
    pub fn pending_count(&self, connector: &ConnectorName) -> Result<u64, StoreError> {
        let t = self.tx.open_table(PENDING).ctx(&self.path)?;
        Ok(ids_of(&t, connector, &self.path)?.len() as u64)
    }

    /// Counts: (CS objects, MV objects, pending exports).
    pub fn counts(&self) -> Result<(u64, u64, u64), StoreError> {
        let cs = self
            .tx
            .open_table(CS)
            .ctx(&self.path)?
            .len()
            .ctx(&self.path)?;
        let mv = self
            .tx
            .open_table(MV)
            .ctx(&self.path)?
            .len()
            .ctx(&self.path)?;
        let pe = self
            .tx
            .open_table(PENDING)
            .ctx(&self.path)?
            .len()
            .ctx(&self.path)?;
        Ok((cs, mv, pe))
    }

    /// Size of every table.
    pub fn table_sizes(&self) -> Result<Vec<TableSize>, StoreError> {
        let p = &self.path;
        let mut out = Vec::new();
        macro_rules! table {
            ($def:expr, $name:expr) => {{
                let t = self.tx.open_table($def).ctx(p)?;
                let st = t.stats().ctx(p)?;
                out.push(TableSize {
                    name: $name,
                    rows: t.len().ctx(p)?,
                    stored_bytes: st.stored_bytes(),
                    metadata_bytes: st.metadata_bytes(),
                    fragmented_bytes: st.fragmented_bytes(),
                });
            }};
        }
        macro_rules! multimap {
            ($def:expr, $name:expr) => {{
                let t = self.tx.open_multimap_table($def).ctx(p)?;
                let st = t.stats().ctx(p)?;
                out.push(TableSize {
                    name: $name,
                    rows: t.len().ctx(p)?,
                    stored_bytes: st.stored_bytes(),
                    metadata_bytes: st.metadata_bytes(),
                    fragmented_bytes: st.fragmented_bytes(),
                });
            }};
        }
        table!(CS, "cs_objects");
        table!(CS_ANCHOR, "cs_by_anchor");
        table!(CS_DN, "cs_by_dn");
        table!(CS_DIGEST, "cs_import_digest");
        table!(CS_MV, "link_cs_mv");
        table!(MV, "mv_objects");
        table!(DIRTY_IN, "dirty_inbound");
        table!(DIRTY_OUT, "dirty_outbound");
        table!(PENDING, "pending_exports");
        table!(RUNS, "run_history");
        table!(MV_SEARCH, "mv_search");
        multimap!(MV_CS, "link_mv_cs");
        multimap!(JOIN, "mv_join_index");
        multimap!(DN_REFS, "cs_dn_referrers");
        multimap!(ANCHOR_REFS, "cs_anchor_referrers");
        multimap!(MV_REFS, "mv_referrers");
        Ok(out)
    }

    /// The most recent runs, newest first.
    pub fn runs(&self, limit: usize) -> Result<Vec<(u64, RunRecord)>, StoreError> {
        let t = self.tx.open_table(RUNS).ctx(&self.path)?;
        let mut out = Vec::new();
        for row in t.iter().ctx(&self.path)?.rev().take(limit) {
            let (k, v) = row.ctx(&self.path)?;
            out.push((
                k.value(),
                decode_at(&self.path, "run_history", k.value(), v.value())?,
            ));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod golden_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod write_tests;
