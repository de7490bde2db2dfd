//! The store's indexes, kept by the writes themselves: anchors and DNs of connector-space
//! objects (across a rename and a delete), the join index of metaverse attributes (across a
//! change of value, of object type and a delete), the links both ways, and pending exports.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::model::{Anchor, AttrName, ConnectorName, Dn, ExportKind, ObjectType, Value, ValueSet};
use crate::store::write::LinkKind;

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state.redb")).unwrap();
    (dir, store)
}

fn cs(conn: &str, anchor: Option<&[u8]>, dn: &str) -> CsRecord {
    CsRecord {
        connector: conn.into(),
        anchor: anchor.map(<[u8]>::to_vec),
        dn: Dn::parse(dn).unwrap(),
        object_class: "inetOrgPerson".into(),
        attrs: Default::default(),
        deleted: false,
        object_type: None,
        export: None,
        error: None,
        unresolved: Vec::new(),
        unconfirmed: false,
        claims: Vec::new(),
    }
}

fn name(s: &str) -> ConnectorName {
    ConnectorName::new(s).unwrap()
}

#[test]
fn anchors_and_dns_follow_renames_and_deletes() {
    let (_d, store) = open();
    let tx = store.write().unwrap();
    let id = tx.new_cs_id().unwrap();
    tx.put_cs(id, &cs("hr", Some(b"a1"), "uid=ada,ou=p,dc=hr"))
        .unwrap();
    let other = tx.new_cs_id().unwrap();
    tx.put_cs(other, &cs("crm", Some(b"a1"), "uid=ada,ou=p,dc=hr"))
        .unwrap();
    // Per connector: the same anchor and DN in another space is another object.
    assert_eq!(
        tx.cs_by_anchor(&name("hr"), &Anchor::new(b"a1".to_vec()))
            .unwrap(),
        Some(id)
    );
    assert_eq!(
        tx.cs_by_anchor(&name("crm"), &Anchor::new(b"a1".to_vec()))
            .unwrap(),
        Some(other)
    );
    // DNs are found by their normal form.
    assert_eq!(
        tx.cs_by_dn(&name("hr"), &Dn::parse("UID=Ada, OU=p, DC=hr").unwrap())
            .unwrap(),
        Some(id)
    );
    // A rename moves the DN index entry.
    tx.put_cs(id, &cs("hr", Some(b"a1"), "uid=ada.l,ou=p,dc=hr"))
        .unwrap();
    assert_eq!(
        tx.cs_by_dn(&name("hr"), &Dn::parse("uid=ada,ou=p,dc=hr").unwrap())
            .unwrap(),
        None
    );
    assert_eq!(
        tx.cs_by_dn(&name("hr"), &Dn::parse("uid=ada.l,ou=p,dc=hr").unwrap())
            .unwrap(),
        Some(id)
    );
    // A provisioned object has a DN before it has an anchor.
    let new = tx.new_cs_id().unwrap();
    tx.put_cs(new, &cs("hr", None, "uid=new,ou=p,dc=hr"))
        .unwrap();
    assert_eq!(
        tx.cs_by_dn(&name("hr"), &Dn::parse("uid=new,ou=p,dc=hr").unwrap())
            .unwrap(),
        Some(new)
    );
    assert_eq!(tx.anchored_count(&name("hr")).unwrap(), 1);
    // A delete removes both entries.
    tx.delete_cs(id).unwrap();
    assert_eq!(
        tx.cs_by_anchor(&name("hr"), &Anchor::new(b"a1".to_vec()))
            .unwrap(),
        None
    );
    assert_eq!(
        tx.cs_by_dn(&name("hr"), &Dn::parse("uid=ada.l,ou=p,dc=hr").unwrap())
            .unwrap(),
        None
    );
    assert_eq!(tx.anchored_count(&name("hr")).unwrap(), 0);
    tx.commit().unwrap();
}

#[test]
fn the_join_index_follows_values_types_and_deletes() {
    let (_d, store) = open();
    let mut tx = store.write().unwrap();
    let mail = AttrName::new("mail");
    tx.ensure_join_index(std::slice::from_ref(&mail)).unwrap();
    let id = tx.new_mv_id().unwrap();
    let mut rec = MvRecord::new(ObjectType::Person);
    rec.attrs
        .set(mail.clone(), ValueSet::one(Value::str("Ada@X.test")));
    tx.put_mv(id, &rec).unwrap();
    let find = |tx: &WriteTx, ty, v: &str| tx.join_candidates(ty, &mail, &Value::str(v)).unwrap();
    // Case-insensitive, per object type.
    assert_eq!(find(&tx, ObjectType::Person, "ada@x.TEST"), [id]);
    assert!(find(&tx, ObjectType::Group, "ada@x.test").is_empty());
    // A new value replaces the old in the index.
    rec.attrs
        .set(mail.clone(), ValueSet::one(Value::str("lovelace@x.test")));
    tx.put_mv(id, &rec).unwrap();
    assert!(find(&tx, ObjectType::Person, "ada@x.test").is_empty());
    assert_eq!(find(&tx, ObjectType::Person, "lovelace@x.test"), [id]);
    // An attribute that is not a join attribute is not indexed.
    rec.attrs
        .set(AttrName::new("cn"), ValueSet::one(Value::str("Ada")));
    tx.put_mv(id, &rec).unwrap();
    assert!(
        tx.join_candidates(ObjectType::Person, &AttrName::new("cn"), &Value::str("Ada"))
            .unwrap()
            .is_empty()
    );
    // Deleted: gone from the index.
    tx.delete_mv(id).unwrap();
    assert!(find(&tx, ObjectType::Person, "lovelace@x.test").is_empty());
    // A changed set of join attributes rebuilds the index from the records.
    let id = tx.new_mv_id().unwrap();
    tx.put_mv(id, &rec).unwrap();
    assert!(
        tx.ensure_join_index(&[AttrName::new("cn")]).unwrap(),
        "rebuilt"
    );
    assert!(
        !tx.ensure_join_index(&[AttrName::new("cn")]).unwrap(),
        "unchanged"
    );
    assert_eq!(
        tx.join_candidates(ObjectType::Person, &AttrName::new("cn"), &Value::str("ada"))
            .unwrap(),
        [id]
    );
    assert!(find(&tx, ObjectType::Person, "lovelace@x.test").is_empty());
    tx.commit().unwrap();
}

#[test]
fn links_are_kept_both_ways_and_pending_exports_are_listed() {
    let (_d, store) = open();
    let tx = store.write().unwrap();
    let mv = tx.new_mv_id().unwrap();
    tx.put_mv(mv, &MvRecord::new(ObjectType::Person)).unwrap();
    let src = tx.new_cs_id().unwrap();
    tx.put_cs(src, &cs("hr", Some(b"s"), "uid=a,dc=hr"))
        .unwrap();
    let out = tx.new_cs_id().unwrap();
    let mut target = cs("out", None, "uid=a,dc=out");
    target.export = Some(PendingExportRecord {
        kind: ExportKind::Add,
        new_dn: None,
        changes: Vec::new(),
        rule: "out-people".into(),
    });
    tx.put_cs(out, &target).unwrap();
    tx.link(src, "hr", mv, LinkKind::Inbound).unwrap();
    tx.link(out, "out", mv, LinkKind::Provisioned).unwrap();
    assert_eq!(tx.link_of(src).unwrap(), Some((mv, LinkKind::Inbound)));
    assert_eq!(tx.link_in(mv, "out").unwrap(), Some(out));
    let mut links = tx.links_of(mv).unwrap();
    links.sort();
    assert_eq!(links, [("hr".to_string(), src), ("out".to_string(), out)]);
    assert_eq!(tx.pending_exports(&name("out")).unwrap(), [out]);
    assert!(tx.pending_exports(&name("hr")).unwrap().is_empty());
    // The export applied: no longer pending.
    target.export = None;
    tx.put_cs(out, &target).unwrap();
    assert!(tx.pending_exports(&name("out")).unwrap().is_empty());
    // Unlinking says which MV object it left.
    assert_eq!(tx.unlink(src).unwrap(), Some(mv));
    assert_eq!(tx.link_of(src).unwrap(), None);
    assert_eq!(tx.links_of(mv).unwrap(), [("out".to_string(), out)]);
    tx.commit().unwrap();
}
