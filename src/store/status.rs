//! Read queries the status page needs beyond the engine's own: scans that look at raw keys
//! and record bytes before decoding, so that a search over 100,000 objects stays fast, and
//! single lookups (one run, one link with its kind).

use std::collections::BTreeMap;

use redb::{ReadableTable, ReadableTableMetadata};

use super::tables::{CS_ANCHOR, CS_DN, CS_MV, MV, RUNS};
use super::{DbContext, MvRecord, ReadTx, RunRecord, StoreError, decode_at};
use crate::model::{CsId, MvId};

impl ReadTx {
    /// Calls `f` for each MV object whose raw record bytes pass `prefilter` (a cheap test
    /// that must accept every record the caller wants), until `f` returns false.
    pub fn scan_mv(
        &self,
        prefilter: &mut dyn FnMut(&[u8]) -> bool,
        f: &mut dyn FnMut(MvId, MvRecord) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        let t = self.tx.open_table(MV).ctx(&self.path)?;
        for row in t.iter().ctx(&self.path)? {
            let (k, v) = row.ctx(&self.path)?;
            if !prefilter(v.value()) {
                continue;
            }
            let id = MvId(k.value());
            if !f(id, decode_at(&self.path, "mv_objects", id, v.value())?)? {
                break;
            }
        }
        Ok(())
    }

    /// Calls `f(connector, normalised DN, id)` for every CS object's DN index entry, without
    /// decoding records, until `f` returns false.
    pub fn scan_cs_dns(
        &self,
        f: &mut dyn FnMut(&str, &str, CsId) -> bool,
    ) -> Result<(), StoreError> {
        let t = self.tx.open_table(CS_DN).ctx(&self.path)?;
        for row in t.iter().ctx(&self.path)? {
            let (k, v) = row.ctx(&self.path)?;
            let (conn, dn) = k.value();
            if !f(conn, dn, CsId(v.value())) {
                break;
            }
        }
        Ok(())
    }

    /// Calls `f(connector, anchor bytes, id)` for every anchored CS object until it returns
    /// false.
    pub fn scan_anchors(
        &self,
        f: &mut dyn FnMut(&str, &[u8], CsId) -> bool,
    ) -> Result<(), StoreError> {
        let t = self.tx.open_table(CS_ANCHOR).ctx(&self.path)?;
        for row in t.iter().ctx(&self.path)? {
            let (k, v) = row.ctx(&self.path)?;
            let (conn, anchor) = k.value();
            if !f(conn, anchor, CsId(v.value())) {
                break;
            }
        }
        Ok(())
    }

    /// One run from the history.
    pub fn run(&self, id: u64) -> Result<Option<RunRecord>, StoreError> {
        let t = self.tx.open_table(RUNS).ctx(&self.path)?;
        match t.get(id).ctx(&self.path)? {
            Some(g) => decode_at(&self.path, "run_history", id, g.value()).map(Some),
            None => Ok(None),
        }
    }

    /// How many runs the history holds.
    pub fn run_count(&self) -> Result<u64, StoreError> {
        let t = self.tx.open_table(RUNS).ctx(&self.path)?;
        t.len().ctx(&self.path)
    }

    /// The MV object a CS object is linked to, and whether it was provisioned from it
    /// (true) rather than joined or projected (false).
    pub fn link_with_kind(&self, id: CsId) -> Result<Option<(MvId, bool)>, StoreError> {
        let t = self.tx.open_table(CS_MV).ctx(&self.path)?;
        Ok(t.get(id.0)
            .ctx(&self.path)?
            .map(|g| (MvId(g.value().0), g.value().1 == 1)))
    }

    /// Objects in one connector space, counted on the anchor index's keys (nothing decoded).
    pub fn cs_count(&self, connector: &crate::model::ConnectorName) -> Result<u64, StoreError> {
        let t = self.tx.open_table(CS_ANCHOR).ctx(&self.path)?;
        // Every key of this connector sorts between (name, []) and (name + NUL, []).
        let next = format!("{}\0", connector.as_str());
        let empty: &[u8] = &[];
        let mut n = 0;
        for row in t
            .range((connector.as_str(), empty)..(next.as_str(), empty))
            .ctx(&self.path)?
        {
            row.ctx(&self.path)?;
            n += 1;
        }
        Ok(n)
    }

    /// Linked CS objects (connectors, in the engine's sense) per connector.
    pub fn linked_counts(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let t = self.tx.open_table(CS_MV).ctx(&self.path)?;
        let mut out = BTreeMap::new();
        for row in t.iter().ctx(&self.path)? {
            let (_, v) = row.ctx(&self.path)?;
            *out.entry(v.value().2.to_string()).or_insert(0) += 1;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::{AttrName, ObjectType, Value};
    use crate::store::Store;

    #[test]
    fn the_prefilter_sees_raw_bytes_and_the_scan_stops_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let tx = store.write().unwrap();
        for name in ["Ann Smith", "Bob Jones", "Ann Other"] {
            let id = tx.new_mv_id().unwrap();
            let mut rec = MvRecord::new(ObjectType::Person);
            rec.attrs
                .add(&AttrName::new("displayName"), Value::str(name));
            tx.put_mv(id, &rec).unwrap();
        }
        tx.commit().unwrap();
        let r = store.read().unwrap();
        let mut seen = Vec::new();
        r.scan_mv(
            &mut |raw| raw.windows(3).any(|w| w == b"Ann"),
            &mut |id, _| {
                seen.push(id.0);
                Ok(true)
            },
        )
        .unwrap();
        assert_eq!(seen, [1, 3]);
        let mut first = Vec::new();
        r.scan_mv(&mut |_| true, &mut |id, _| {
            first.push(id.0);
            Ok(false)
        })
        .unwrap();
        assert_eq!(first, [1]);
        assert_eq!(r.run_count().unwrap(), 0);
        assert!(r.run(1).unwrap().is_none());
    }

    #[test]
    fn cs_count_counts_one_connector_and_not_one_whose_name_it_begins() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("s.redb")).unwrap();
        let tx = store.write().unwrap();
        for (conn, anchor) in [("a", 1u8), ("a", 2), ("ab", 3), ("b", 4), ("a", 255)] {
            let id = tx.new_cs_id().unwrap();
            let rec = crate::store::CsRecord {
                connector: conn.into(),
                anchor: Some(vec![anchor, 0xff]),
                dn: crate::model::Dn::parse(&format!("cn=x{anchor},dc=example")).unwrap(),
                object_class: "user".into(),
                attrs: crate::model::Attributes::new(),
                deleted: false,
                object_type: None,
                export: None,
                error: None,
                unresolved: Vec::new(),
                unconfirmed: false,
                claims: Vec::new(),
            };
            tx.put_cs(id, &rec).unwrap();
        }
        tx.commit().unwrap();
        let r = store.read().unwrap();
        let count = |c: &str| {
            r.cs_count(&crate::model::ConnectorName::new(c).unwrap())
                .unwrap()
        };
        assert_eq!(
            (count("a"), count("ab"), count("b"), count("c")),
            (3, 1, 1, 0)
        );
    }
}
