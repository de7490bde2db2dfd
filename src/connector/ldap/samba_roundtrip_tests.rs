//! Round trips through a real Samba 4.17 AD DC (Debian 12), recorded: `sent.ldif` was added
//! with ldapadd, and `returned.ldif` is what ldapsearch read back with the extended-DN
//! control, as the `ad` connector reads (tests/data/samba-4.17/). Samba rewrites DN values
//! to the referenced object's own spelling (`cn=Bob\2C Jr., ou=RoundTrip, dc=CORP` comes
//! back `CN=Bob\, Jr.,OU=roundtrip,DC=corp`, `\;` as `\3B`) and prefixes them with the
//! target's GUID and SID; integers come back as text. Mapped as the connector maps them and
//! compared as the outbound diff compares them, what comes back must be what was sent, or
//! a quiet cycle into AD would write again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::connector::ldif::format::{LdifEntry, LdifReader, LdifValue};
use crate::model::ValueSet;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/samba-4.17/");

fn entries(name: &str) -> Vec<LdifEntry> {
    let text = std::fs::read_to_string(format!("{DIR}{name}")).unwrap();
    LdifReader::new(text.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

fn bytes(v: &LdifValue) -> Vec<u8> {
    match v {
        LdifValue::Text(s) => s.clone().into_bytes(),
        LdifValue::Bytes(b) => b.clone(),
    }
}

fn mapper() -> Mapper {
    Mapper {
        flavor: LdapFlavor::Ad,
        classes: vec!["user".into(), "group".into()],
        excluded: Vec::new(),
        references: vec![AttrName::new("member"), AttrName::new("manager")],
        binary: vec![AttrName::new("thumbnailPhoto"), AttrName::new("objectGUID")],
    }
}

/// A value as a rule flows it into AD: references as DNs, userAccountControl as a number.
fn sent_value(attr: &str, v: &LdifValue) -> Value {
    let text = String::from_utf8(bytes(v)).unwrap_or_default();
    match attr.to_ascii_lowercase().as_str() {
        "member" | "manager" => Value::Reference(RefTarget::Dn(Dn::parse(&text).unwrap())),
        "useraccountcontrol" => Value::Integer(text.parse().unwrap()),
        "thumbnailphoto" => Value::Binary(bytes(v)),
        _ => Value::String(text),
    }
}

fn values(e: &LdifEntry, attr: &str, read: impl Fn(&str, &LdifValue) -> Value) -> ValueSet {
    e.attrs
        .iter()
        .filter(|(a, _)| a.eq_ignore_ascii_case(attr))
        .map(|(a, v)| read(a, v))
        .collect()
}

fn plain_dn(e: &LdifEntry) -> Dn {
    let text = e.dn.as_str();
    let plain = split_extended(text).map_or(text, |(_, p)| p);
    Dn::parse(plain).unwrap()
}

#[test]
fn what_samba_returns_matches_what_was_added() {
    let sent = entries("sent.ldif");
    let back = entries("returned.ldif");
    let m = mapper();
    let mut compared = 0;
    for b in &back {
        let dn = plain_dn(b);
        let s = sent
            .iter()
            .find(|s| Dn::parse(&s.dn).unwrap() == dn)
            .unwrap_or_else(|| panic!("{dn} was not added"));
        for (attr, _) in &s.attrs {
            if attr.eq_ignore_ascii_case("objectClass") {
                continue;
            }
            let want = values(s, attr, sent_value);
            let got = values(b, attr, |a, v| m.value(a, &bytes(v)));
            // As the outbound diff does: links held by anchor compare as the DNs they name.
            let got = got.links_as_dns().unwrap_or(got);
            assert!(
                want.same_as(&got),
                "{dn} {attr}: sent {want:?}, Samba returned {got:?}"
            );
            compared += 1;
        }
    }
    assert!(compared >= 15, "only {compared} values compared");
}

#[test]
fn samba_links_carry_the_targets_guid() {
    let back = entries("returned.ldif");
    let m = mapper();
    let staff = back
        .iter()
        .find(|e| plain_dn(e).to_string().starts_with("CN=rt-staff"))
        .unwrap();
    let members = values(staff, "member", |a, v| m.value(a, &bytes(v)));
    assert_eq!(members.len(), 3);
    // Each is held by the anchor of the entry it names, whatever its DN says.
    for link in members.iter() {
        let anchor = link.as_anchor_ref().unwrap();
        let target = back
            .iter()
            .find(|e| plain_dn(e) == *link.ref_dn().unwrap())
            .unwrap();
        let guid = values(target, "objectGUID", |a, v| m.value(a, &bytes(v)));
        assert_eq!(
            guid.first(),
            Some(&Value::Binary(anchor.as_bytes().to_vec()))
        );
    }
}
