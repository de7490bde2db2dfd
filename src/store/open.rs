//! The hot tables of a write transaction, each opened once and kept open until commit.
//!
//! redb's `open_table` looks the table up in the table tree and, when the handle drops,
//! writes its root back; done per record and per index that was about an eighth of an
//! import. A [`TxCell`] owns the redb transaction together with lazily opened handles to
//! the tables every batch touches. The handles borrow the transaction, hence `self_cell`.
//! A table cached here must never be opened directly on the same transaction (redb refuses
//! a second handle), so [`TxCell::open_table`] is only for the tables not listed in [`Open`].

use std::cell::RefCell;
use std::path::Path;

use redb::{
    Key, MultimapTable, MultimapTableDefinition, Table, TableDefinition, TableError, Value,
    WriteTransaction,
};

use super::tables::*;
use super::{DbContext, StoreError};

/// One lazily opened table handle.
pub(super) type Slot<'t, K, V> = RefCell<Option<Table<'t, K, V>>>;
/// One lazily opened multimap handle.
pub(super) type MultiSlot<'t, K, V> = RefCell<Option<MultimapTable<'t, K, V>>>;

/// The tables kept open for the whole transaction.
#[derive(Default)]
pub(super) struct Open<'t> {
    pub meta: Slot<'t, &'static str, &'static [u8]>,
    pub cs: Slot<'t, u64, &'static [u8]>,
    pub cs_anchor: Slot<'t, (&'static str, &'static [u8]), u64>,
    pub cs_dn: Slot<'t, (&'static str, &'static str), u64>,
    pub cs_digest: Slot<'t, u64, &'static [u8]>,
    pub cs_mv: Slot<'t, u64, (u64, u8, &'static str)>,
    pub mv: Slot<'t, u64, &'static [u8]>,
    pub dirty_in: Slot<'t, (&'static str, u64), u8>,
    pub dirty_out: Slot<'t, u64, u8>,
    pub pending: Slot<'t, (&'static str, u64), u8>,
    pub mv_search: Slot<'t, (&'static str, u64), u8>,
    pub mv_cs: MultiSlot<'t, u64, (&'static str, u64)>,
    pub join: MultiSlot<'t, (&'static str, &'static str, &'static str), u64>,
    pub dn_refs: MultiSlot<'t, (&'static str, &'static str), u64>,
    pub anchor_refs: MultiSlot<'t, (&'static str, &'static [u8]), u64>,
    pub mv_refs: MultiSlot<'t, u64, u64>,
}

self_cell::self_cell!(
    /// A redb write transaction with its open hot tables.
    pub(super) struct TxCell {
        owner: WriteTransaction,
        #[not_covariant]
        dependent: Open,
    }
);

impl TxCell {
    /// Wraps a fresh transaction; no table is opened yet.
    pub(super) fn wrap(tx: WriteTransaction) -> TxCell {
        TxCell::new(tx, |_| Open::default())
    }

    /// Closes the cached tables (writing their roots back) and returns the transaction.
    pub(super) fn finish(self) -> WriteTransaction {
        self.into_owner()
    }

    /// Opens a table that is not cached in [`Open`].
    pub(super) fn open_table<K: Key + 'static, V: Value + 'static>(
        &self,
        def: TableDefinition<K, V>,
    ) -> Result<Table<'_, K, V>, TableError> {
        self.borrow_owner().open_table(def)
    }

    /// Opens a multimap table that is not cached in [`Open`].
    pub(super) fn open_multimap_table<K: Key + 'static, V: Key + 'static>(
        &self,
        def: MultimapTableDefinition<K, V>,
    ) -> Result<MultimapTable<'_, K, V>, TableError> {
        self.borrow_owner().open_multimap_table(def)
    }

    /// Drops the cached join index handle and deletes the table (to rebuild it).
    pub(super) fn delete_join_index(&self, path: &Path) -> Result<(), StoreError> {
        self.with_dependent(|tx, open| {
            drop(open.join.borrow_mut().take());
            tx.delete_multimap_table(JOIN).ctx(path).map(|_| ())
        })
    }
}

/// The handle in `slot`, opened by `open` the first time.
pub(super) fn opened<T>(
    slot: &mut Option<T>,
    open: impl FnOnce() -> Result<T, StoreError>,
) -> Result<&mut T, StoreError> {
    match slot {
        Some(t) => Ok(t),
        None => Ok(slot.insert(open()?)),
    }
}

/// Runs `$body` with `$t` bound to the cached table `$field` (opened on first use).
/// The handle is borrowed for the body only: the body must not reach the same table
/// through another `WriteTx` method.
macro_rules! with_table {
    ($s:expr, $field:ident, |$t:ident, $p:ident| $body:expr) => {{
        let $p = &$s.path;
        $s.tx.with_dependent(|tx, open| -> Result<_, StoreError> {
            let mut slot = open.$field.borrow_mut();
            let $t = $crate::store::open::opened(&mut slot, || {
                <redb::WriteTransaction as $crate::store::open::Opener<_>>::open(
                    tx,
                    $crate::store::open::def::$field,
                    $p,
                )
            })?;
            $body
        })
    }};
}
pub(super) use with_table;

/// Opens a table or a multimap table by its definition, so [`with_table`] serves both.
pub(super) trait Opener<'t, D> {
    /// The handle.
    type Handle;
    /// Opens it.
    fn open(tx: &'t WriteTransaction, def: D, path: &Path) -> Result<Self::Handle, StoreError>;
}

impl<'t, K: Key + 'static, V: Value + 'static> Opener<'t, TableDefinition<'static, K, V>>
    for WriteTransaction
{
    type Handle = Table<'t, K, V>;
    fn open(
        tx: &'t WriteTransaction,
        def: TableDefinition<'static, K, V>,
        path: &Path,
    ) -> Result<Table<'t, K, V>, StoreError> {
        tx.open_table(def).ctx(path)
    }
}

impl<'t, K: Key + 'static, V: Key + 'static> Opener<'t, MultimapTableDefinition<'static, K, V>>
    for WriteTransaction
{
    type Handle = MultimapTable<'t, K, V>;
    fn open(
        tx: &'t WriteTransaction,
        def: MultimapTableDefinition<'static, K, V>,
        path: &Path,
    ) -> Result<MultimapTable<'t, K, V>, StoreError> {
        tx.open_multimap_table(def).ctx(path)
    }
}

/// The definitions by field name, for [`with_table`].
#[allow(non_upper_case_globals)]
pub(super) mod def {
    pub use super::super::tables::{
        ANCHOR_REFS as anchor_refs, CS as cs, CS_ANCHOR as cs_anchor, CS_DIGEST as cs_digest,
        CS_DN as cs_dn, CS_MV as cs_mv, DIRTY_IN as dirty_in, DIRTY_OUT as dirty_out,
        DN_REFS as dn_refs, JOIN as join, META as meta, MV as mv, MV_CS as mv_cs,
        MV_REFS as mv_refs, MV_SEARCH as mv_search, PENDING as pending,
    };
}
