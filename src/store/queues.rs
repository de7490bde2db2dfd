//! The sync queues: CS objects waiting for inbound sync, MV objects waiting for outbound.

use redb::{ReadableTable, ReadableTableMetadata};

use super::open::with_table;
use super::tables::*;
use super::write::WriteTx;
use super::{DbContext, StoreError};
use crate::model::{CsId, MvId};

/// The connector name at the start of an encoded `CsRecord` (version byte, then a
/// postcard string: varint length and bytes), read without decoding the hologram.
fn record_connector(bytes: &[u8]) -> Option<&str> {
    let rest = bytes.get(1..)?;
    let (mut len, mut shift, mut used) = (0usize, 0u32, 0usize);
    for b in rest.iter().take(5) {
        used += 1;
        len |= usize::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            let s = rest.get(used..used.checked_add(len)?)?;
            return std::str::from_utf8(s).ok();
        }
        shift += 7;
    }
    None
}

impl WriteTx {
    /// Queues a CS object for inbound sync.
    pub fn mark_inbound(&self, conn: &str, cs: CsId) -> Result<(), StoreError> {
        with_table!(self, dirty_in, |t, path| t
            .insert((conn, cs.0), 1)
            .ctx(path)
            .map(|_| ()))
    }

    /// Takes up to `limit` queued CS objects off the inbound queue.
    pub fn take_inbound(&self, limit: usize) -> Result<Vec<(String, CsId)>, StoreError> {
        with_table!(self, dirty_in, |t, path| {
            let mut out = Vec::with_capacity(limit);
            while out.len() < limit {
                match t.pop_first().ctx(path)? {
                    Some((k, _)) => {
                        let (c, id) = k.value();
                        out.push((c.to_string(), CsId(id)));
                    }
                    None => break,
                }
            }
            Ok(out)
        })
    }

    /// Queues an MV object for outbound sync.
    pub fn mark_outbound(&self, mv: MvId) -> Result<(), StoreError> {
        with_table!(self, dirty_out, |t, path| t
            .insert(mv.0, 1)
            .ctx(path)
            .map(|_| ()))
    }

    /// Takes up to `limit` MV objects off the outbound queue.
    pub fn take_outbound(&self, limit: usize) -> Result<Vec<MvId>, StoreError> {
        with_table!(self, dirty_out, |t, path| {
            let mut out = Vec::with_capacity(limit);
            while out.len() < limit {
                match t.pop_first().ctx(path)? {
                    Some((k, _)) => out.push(MvId(k.value())),
                    None => break,
                }
            }
            Ok(out)
        })
    }

    /// Queues every CS object (of every connector) for inbound sync: a full sync.
    pub fn mark_all_inbound(&self) -> Result<u64, StoreError> {
        // The connector of each object is in the link table for linked objects and in the
        // anchor index for the others; reading the CS records would decode every hologram.
        // Both keep the queue in step row by row, so nothing of size N is held.
        self.tx
            .with_dependent(|tx, open| -> Result<u64, StoreError> {
                let path = &self.path;
                let mut d_slot = open.dirty_in.borrow_mut();
                let d = super::open::opened(&mut d_slot, || tx.open_table(DIRTY_IN).ctx(path))?;
                let mut cs_slot = open.cs.borrow_mut();
                let cs = super::open::opened(&mut cs_slot, || tx.open_table(CS).ctx(path))?;
                let mut n = 0u64;
                for row in cs.iter().ctx(path)? {
                    let (k, v) = row.ctx(path)?;
                    let conn = record_connector(v.value()).ok_or_else(|| StoreError::Record {
                        path: path.clone(),
                        table: "cs_objects",
                        key: k.value().to_string(),
                        source: super::records::CodecError::Damaged("no connector name".into()),
                    })?;
                    d.insert((conn, k.value()), 1).ctx(path)?;
                    n += 1;
                }
                Ok(n)
            })
    }

    /// Number of objects still queued for inbound and outbound sync.
    pub fn queue_lengths(&self) -> Result<(u64, u64), StoreError> {
        let i = with_table!(self, dirty_in, |t, path| t.len().ctx(path))?;
        let o = with_table!(self, dirty_out, |t, path| t.len().ctx(path))?;
        Ok((i, o))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::model::Dn;
    use crate::store::records::{CsRecord, encode};

    fn record(connector: &str) -> CsRecord {
        CsRecord {
            connector: connector.to_string(),
            anchor: Some(b"a".to_vec()),
            dn: Dn::parse("cn=x,dc=example").unwrap(),
            object_class: "person".into(),
            attrs: crate::model::Attributes::new(),
            deleted: false,
            object_type: None,
            export: None,
            error: None,
            unresolved: Vec::new(),
            unconfirmed: false,
            claims: Vec::new(),
        }
    }

    #[test]
    fn the_connector_is_read_from_an_encoded_record_without_decoding_it() {
        // 200 characters: a length that takes two varint bytes.
        let long = "c".repeat(200);
        for name in ["src", long.as_str()] {
            let bytes = encode(&record(name));
            assert_eq!(record_connector(&bytes), Some(name));
        }
        assert_eq!(record_connector(&[1]), None);
        assert_eq!(record_connector(&[1, 5, b'a']), None);
    }

    #[test]
    fn a_full_sync_queues_every_object_with_its_connector() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(&dir.path().join("s.redb")).unwrap();
        let tx = store.write().unwrap();
        for (i, conn) in ["a", "b", "a"].iter().enumerate() {
            let mut rec = record(conn);
            rec.anchor = Some(vec![i as u8]);
            rec.dn = Dn::parse(&format!("cn={i},dc=example")).unwrap();
            let id = tx.new_cs_id().unwrap();
            tx.put_cs(id, &rec).unwrap();
        }
        assert_eq!(tx.mark_all_inbound().unwrap(), 3);
        let queued = tx.take_inbound(10).unwrap();
        let names: Vec<&str> = queued.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(names, ["a", "a", "b"]);
        // The cached tables close cleanly on commit.
        tx.commit().unwrap();
    }
}
