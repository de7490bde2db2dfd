//! The metaverse search index: the words (and whole values) of name-like attributes, kept
//! in step with every MV write, so that the status page finds "Jürgen Patel" or a mail
//! address by prefix without scanning every record.

use std::collections::BTreeSet;

use redb::ReadableTable;

use super::tables::{META, MV, MV_SEARCH};
use super::{DbContext, MvRecord, ReadTx, Store, StoreError, decode_at};
use crate::model::MvId;

/// The attributes whose values are indexed.
const INDEXED: &[&str] = &[
    "displayName",
    "cn",
    "givenName",
    "sn",
    "mail",
    "uid",
    "sAMAccountName",
    "userPrincipalName",
    "employeeID",
];

/// Longest token kept (longer values are still found by their first 64 characters).
const MAX_TOKEN: usize = 64;

fn cut(s: &str) -> String {
    s.chars().take(MAX_TOKEN).collect()
}

/// The search words of a text: lower case, split at anything not a letter or digit.
pub fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(cut)
        .collect()
}

/// Every token an MV object is found by: each indexed value whole, and its words.
pub fn tokens(rec: &MvRecord) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for a in INDEXED {
        if let Some(vs) = rec.attrs.get(a) {
            for v in vs.iter() {
                let text = v.to_text();
                let whole = text.trim().to_lowercase();
                if !whole.is_empty() {
                    out.insert(cut(&whole));
                }
                out.extend(words(&text));
            }
        }
    }
    out
}

/// The tokens of an MV object, none when it is absent.
pub(crate) fn tokens_of(rec: Option<&MvRecord>) -> BTreeSet<String> {
    rec.map(tokens).unwrap_or_default()
}

impl Store {
    /// Builds the search index once for a state file written before it existed.
    pub(crate) fn ensure_search_index(&self) -> Result<(), StoreError> {
        let path = &self.path;
        let db = self.writer()?;
        let tx = db.begin_write().ctx(path)?;
        let done = tx
            .open_table(META)
            .ctx(path)?
            .get("search_index")
            .ctx(path)?
            .is_some_and(|g| g.value() == [1]);
        if done {
            return Ok(());
        }
        {
            let mv = tx.open_table(MV).ctx(path)?;
            let mut t = tx.open_table(MV_SEARCH).ctx(path)?;
            for row in mv.iter().ctx(path)? {
                let (k, v) = row.ctx(path)?;
                let rec: MvRecord = decode_at(path, "mv_objects", k.value(), v.value())?;
                for w in tokens(&rec) {
                    t.insert((w.as_str(), k.value()), 1).ctx(path)?;
                }
            }
        }
        tx.open_table(META)
            .ctx(path)?
            .insert("search_index", &[1u8][..])
            .ctx(path)?;
        tx.commit().ctx(path)?;
        Ok(())
    }
}

impl ReadTx {
    /// Calls `f` with the MV ids that have a token starting with `prefix`, in token order,
    /// until it returns false. Returns false when the file has no index yet.
    pub fn mv_by_prefix(
        &self,
        prefix: &str,
        f: &mut dyn FnMut(MvId) -> bool,
    ) -> Result<bool, StoreError> {
        let t = match self.tx.open_table(MV_SEARCH) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(false),
            Err(e) => return Err(e).ctx(&self.path),
        };
        for row in t.range((prefix, 0u64)..).ctx(&self.path)? {
            let (k, _) = row.ctx(&self.path)?;
            let (w, id) = k.value();
            if !w.starts_with(prefix) || !f(MvId(id)) {
                break;
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::super::tables::{META, MV_SEARCH};
    use super::*;
    use crate::model::{AttrName, Attributes, ObjectType, Value, ValueSet};

    #[test]
    fn tokens_cover_words_and_whole_values() {
        let mut attrs = Attributes::new();
        attrs.set(
            AttrName::new("displayName"),
            ValueSet::one(Value::str("Jürgen Patel")),
        );
        attrs.set(
            AttrName::new("mail"),
            ValueSet::one(Value::str("J.Patel@Contoso.com")),
        );
        attrs.set(
            AttrName::new("title"),
            ValueSet::one(Value::str("Not indexed")),
        );
        let mut rec = MvRecord::new(ObjectType::Person);
        rec.attrs = attrs;
        let t = tokens(&rec);
        for w in [
            "jürgen patel",
            "jürgen",
            "patel",
            "j.patel@contoso.com",
            "contoso",
            "com",
        ] {
            assert!(t.contains(w), "{w} missing from {t:?}");
        }
        assert!(!t.contains("indexed"));
    }

    fn person(name: &str) -> MvRecord {
        let mut rec = MvRecord::new(ObjectType::Person);
        rec.attrs.set(
            AttrName::new("displayName"),
            ValueSet::one(Value::str(name)),
        );
        rec
    }

    fn found(store: &Store, prefix: &str) -> Vec<u64> {
        let mut ids = Vec::new();
        store
            .read()
            .unwrap()
            .mv_by_prefix(prefix, &mut |id| {
                ids.push(id.0);
                true
            })
            .unwrap();
        ids
    }

    #[test]
    fn the_index_follows_writes_and_is_built_for_older_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.redb");
        let store = Store::open(&path).unwrap();
        let tx = store.write().unwrap();
        tx.put_mv(MvId(1), &person("Ann Smith")).unwrap();
        tx.put_mv(MvId(2), &person("Bob Smithers")).unwrap();
        tx.commit().unwrap();
        assert_eq!(found(&store, "smith"), vec![1, 2]);
        let tx = store.write().unwrap();
        tx.put_mv(MvId(1), &person("Ann Jones")).unwrap();
        tx.delete_mv(MvId(2)).unwrap();
        tx.commit().unwrap();
        assert!(found(&store, "smith").is_empty(), "old words are removed");
        assert_eq!(found(&store, "jon"), vec![1]);
        // A file from before the index: the next open builds it.
        {
            let tx = store.writer().unwrap().begin_write().unwrap();
            tx.delete_table(MV_SEARCH).unwrap();
            tx.open_table(META).unwrap().remove("search_index").unwrap();
            tx.commit().unwrap();
        }
        drop(store);
        let store = Store::open(&path).unwrap();
        assert_eq!(found(&store, "ann jones"), vec![1]);
    }
}
