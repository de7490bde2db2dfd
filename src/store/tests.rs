//! Opening, format and backup tests of the state file.

#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;

#[test]
fn a_second_open_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let _first = Store::open(&path).unwrap();
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::InUse(_)), "{err}");
    assert!(err.to_string().contains(&path.display().to_string()));
}

#[test]
fn a_reader_follows_a_running_writer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let writer = Store::open(&path).unwrap();
    let reader = Store::open_read_only(&path).unwrap();
    let tx = writer.write().unwrap();
    let id = tx.new_mv_id().unwrap();
    tx.put_mv(id, &MvRecord::new(crate::model::ObjectType::Group))
        .unwrap();
    tx.commit().unwrap();
    assert!(reader.read().unwrap().mv(id).unwrap().is_some());
    assert!(reader.write().is_err());
}

#[test]
fn a_file_that_is_not_ours_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, b"hello, this is not a database").unwrap();
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::NotOurs(..)), "{err}");
    // The file is left as it was.
    assert_eq!(
        std::fs::read(&path).unwrap(),
        b"hello, this is not a database"
    );
}

#[test]
fn a_damaged_file_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    {
        let store = Store::open(&path).unwrap();
        let tx = store.write().unwrap();
        tx.new_mv_id().unwrap();
        tx.commit().unwrap();
    }
    let len = std::fs::metadata(&path).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(len / 3).unwrap();
    drop(f);
    let err = Store::open(&path).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StoreError::Corrupted(..)), "{text}");
    assert!(text.contains("bridgehead restore"), "{text}");
}

#[test]
fn a_newer_format_is_refused_with_both_versions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    {
        let db = Database::create(&path).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut meta = tx.open_table(META).unwrap();
            meta.insert("magic", MAGIC).unwrap();
            meta.insert("format", &[FORMAT_VERSION + 1][..]).unwrap();
        }
        tx.commit().unwrap();
    }
    let err = Store::open(&path).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StoreError::TooNew { .. }), "{text}");
    assert!(
        text.contains(&format!("format {}", FORMAT_VERSION + 1)),
        "{text}"
    );
}

#[test]
fn backup_copies_a_consistent_snapshot_that_opens() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("a.redb")).unwrap();
    let tx = store.write().unwrap();
    let id = tx.new_mv_id().unwrap();
    tx.put_mv(id, &MvRecord::new(crate::model::ObjectType::Person))
        .unwrap();
    tx.commit().unwrap();
    let dest = dir.path().join("b.redb");
    store.backup_to(&dest).unwrap();
    let copy = Store::open(&dest).unwrap();
    assert!(copy.read().unwrap().mv(id).unwrap().is_some());
}

#[test]
fn a_format_1_file_opens_keeps_its_records_and_is_marked_format_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.redb");
    let id = {
        let store = Store::open(&path).unwrap();
        let tx = store.write().unwrap();
        let id = tx.new_mv_id().unwrap();
        tx.put_mv(id, &MvRecord::new(crate::model::ObjectType::Group))
            .unwrap();
        tx.commit().unwrap();
        id
    };
    {
        // As the first release left it: format 1 in meta and on the record.
        let db = Database::create(&path).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut meta = tx.open_table(META).unwrap();
            meta.insert("format", &[1u8][..]).unwrap();
            let mut mv = tx.open_table(MV).unwrap();
            let mut bytes = mv.get(id.0).unwrap().unwrap().value().to_vec();
            bytes[0] = 1;
            mv.insert(id.0, bytes.as_slice()).unwrap();
        }
        tx.commit().unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert!(store.read().unwrap().mv(id).unwrap().is_some());
    drop(store);
    let db = Database::create(&path).unwrap();
    let tx = db.begin_read().unwrap();
    let meta = tx.open_table(META).unwrap();
    assert_eq!(
        meta.get("format").unwrap().unwrap().value(),
        &[FORMAT_VERSION][..]
    );
}

#[test]
fn damaged_table_metadata_reads_as_a_damaged_file() {
    // What redb says when flipped bytes change a table's stored types (seen in the
    // state-file fuzz test): the file is damaged, not the file system failing.
    for words in [
        "cs_objects has key type u64 and value type &[u0]",
        "Current definition of watermarks does not match stored definition (width=Some(3))",
        "mv_join_index is not a multimap table",
    ] {
        assert!(super::damaged(words), "{words}");
    }
    assert!(!super::damaged("No space left on device (os error 28)"));
}
