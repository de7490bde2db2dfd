//! Consistent copy of the state file from one read snapshot (redb has no backup API, and a
//! byte copy of a live file can be torn).

use std::path::Path;

use redb::{
    Database, Key, MultimapTableDefinition, ReadableMultimapTable, ReadableTable, TableDefinition,
    Value,
};

use super::tables::*;
use super::{DbContext, StoreError};

fn copy_table<K: Key + 'static, V: Value + 'static>(
    from: &redb::ReadTransaction,
    to: &redb::WriteTransaction,
    def: TableDefinition<K, V>,
    path: &Path,
) -> Result<(), StoreError>
where
    for<'a> K::SelfType<'a>: Clone,
{
    let src = match from.open_table(def) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
        Err(e) => return Err(e).ctx(path),
    };
    let mut dst = to.open_table(def).ctx(path)?;
    for row in src.iter().ctx(path)? {
        let (k, v) = row.ctx(path)?;
        dst.insert(k.value(), v.value()).ctx(path)?;
    }
    Ok(())
}

fn copy_multimap<K: Key + 'static, V: Key + 'static>(
    from: &redb::ReadTransaction,
    to: &redb::WriteTransaction,
    def: MultimapTableDefinition<K, V>,
    path: &Path,
) -> Result<(), StoreError> {
    let src = match from.open_multimap_table(def) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(()),
        Err(e) => return Err(e).ctx(path),
    };
    let mut dst = to.open_multimap_table(def).ctx(path)?;
    for row in src.iter().ctx(path)? {
        let (k, vs) = row.ctx(path)?;
        for v in vs {
            dst.insert(k.value(), v.ctx(path)?.value()).ctx(path)?;
        }
    }
    Ok(())
}

/// Copies every table into `dest` (written as `dest.tmp`, fsynced, renamed).
pub fn copy(from: &redb::ReadTransaction, path: &Path, dest: &Path) -> Result<(), StoreError> {
    let tmp = dest.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    {
        let out = Database::create(&tmp).ctx(&tmp)?;
        let to = out.begin_write().ctx(&tmp)?;
        copy_table(from, &to, META, path)?;
        copy_table(from, &to, CS, path)?;
        copy_table(from, &to, CS_ANCHOR, path)?;
        copy_table(from, &to, CS_DN, path)?;
        copy_table(from, &to, CS_MV, path)?;
        copy_table(from, &to, CS_DIGEST, path)?;
        copy_table(from, &to, MV, path)?;
        copy_table(from, &to, DIRTY_IN, path)?;
        copy_table(from, &to, DIRTY_OUT, path)?;
        copy_table(from, &to, PENDING, path)?;
        copy_table(from, &to, WATERMARK, path)?;
        copy_table(from, &to, BLOCKED_DELETES, path)?;
        copy_table(from, &to, UNIQUE, path)?;
        copy_table(from, &to, NOT_KEPT, path)?;
        copy_table(from, &to, JOIN_WAIT, path)?;
        copy_multimap(from, &to, UNIQUE_WAIT, path)?;
        copy_table(from, &to, APPROVED_DELETES, path)?;
        copy_table(from, &to, IMPORT_GUARD, path)?;
        copy_table(from, &to, RUNS, path)?;
        copy_table(from, &to, ADMIN, path)?;
        copy_multimap(from, &to, MV_CS, path)?;
        copy_multimap(from, &to, JOIN, path)?;
        copy_multimap(from, &to, DN_REFS, path)?;
        copy_multimap(from, &to, ANCHOR_REFS, path)?;
        copy_multimap(from, &to, MV_REFS, path)?;
        copy_table(from, &to, MV_SEARCH, path)?;
        to.commit().ctx(&tmp)?;
    }
    // The copy is complete and synced before it takes the destination's name.
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .ctx(&tmp)?;
    std::fs::rename(&tmp, dest).ctx(dest)?;
    Ok(())
}
