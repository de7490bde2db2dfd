//! Settings the running appliance changes itself, kept in the state file so that a backup
//! carries them: the status page's admin password hash and the "left staging mode" override.
//!
//! Only the writer process writes them (the daemon through its runner, or `bridgehead
//! passwd` while no daemon runs); the status page reads them through a read snapshot.

use serde::{Deserialize, Serialize};

use super::records::encode;
use super::tables::ADMIN;
use super::{DbContext, ReadTx, StoreError, WriteTx, decode_at};

const PASSWORD: &str = "admin_password";
const STAGING: &str = "staging_override";

/// The admin password as stored: an argon2id PHC string, never the password.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminPasswordRecord {
    /// `$argon2id$v=19$m=...$salt$hash`.
    pub phc: String,
    /// Unix ms when it was set.
    pub set_ms: i64,
    /// Who set it ("first start", "bridgehead passwd", "status page").
    pub set_by: String,
}

/// Staging mode was left at run time although the config file still says `staging = true`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagingOverrideRecord {
    /// Unix ms when it was left.
    pub left_ms: i64,
    /// Who left it.
    pub left_by: String,
}

impl WriteTx {
    /// Stores the admin password hash.
    pub fn set_admin_password(&self, rec: &AdminPasswordRecord) -> Result<(), StoreError> {
        let mut t = self.tx.open_table(ADMIN).ctx(&self.path)?;
        t.insert(PASSWORD, encode(rec).as_slice()).ctx(&self.path)?;
        Ok(())
    }

    /// Records that staging mode was left (Some) or forgets it (None).
    pub fn set_staging_override(
        &self,
        rec: Option<&StagingOverrideRecord>,
    ) -> Result<(), StoreError> {
        let mut t = self.tx.open_table(ADMIN).ctx(&self.path)?;
        match rec {
            Some(r) => {
                t.insert(STAGING, encode(r).as_slice()).ctx(&self.path)?;
            }
            None => {
                t.remove(STAGING).ctx(&self.path)?;
            }
        }
        Ok(())
    }
}

impl ReadTx {
    fn admin_record<T: serde::de::DeserializeOwned>(
        &self,
        key: &'static str,
    ) -> Result<Option<T>, StoreError> {
        // Files written before the status page existed have no such table yet.
        let t = match self.tx.open_table(ADMIN) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e).ctx(&self.path),
        };
        match t.get(key).ctx(&self.path)? {
            Some(g) => decode_at(&self.path, "admin", key, g.value()).map(Some),
            None => Ok(None),
        }
    }

    /// The admin password hash, if one was set.
    pub fn admin_password(&self) -> Result<Option<AdminPasswordRecord>, StoreError> {
        self.admin_record(PASSWORD)
    }

    /// Whether staging mode was left at run time.
    pub fn staging_override(&self) -> Result<Option<StagingOverrideRecord>, StoreError> {
        self.admin_record(STAGING)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::store::Store;

    #[test]
    fn password_and_override_round_trip_and_reach_a_reader() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let store = Store::open(&path).unwrap();
        let reader = Store::open_read_only(&path).unwrap();
        assert_eq!(reader.read().unwrap().admin_password().unwrap(), None);
        let rec = AdminPasswordRecord {
            phc: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            set_ms: 5,
            set_by: "test".into(),
        };
        let ov = StagingOverrideRecord {
            left_ms: 7,
            left_by: "admin".into(),
        };
        let tx = store.write().unwrap();
        tx.set_admin_password(&rec).unwrap();
        tx.set_staging_override(Some(&ov)).unwrap();
        tx.commit().unwrap();
        let r = reader.read().unwrap();
        assert_eq!(r.admin_password().unwrap(), Some(rec.clone()));
        assert_eq!(r.staging_override().unwrap(), Some(ov));
        let tx = store.write().unwrap();
        tx.set_staging_override(None).unwrap();
        tx.commit().unwrap();
        assert_eq!(reader.read().unwrap().staging_override().unwrap(), None);
        // A backup carries the password.
        let copy = dir.path().join("b.redb");
        store.backup_to(&copy).unwrap();
        let b = Store::open_read_only(&copy).unwrap();
        assert_eq!(b.read().unwrap().admin_password().unwrap(), Some(rec));
    }
}
