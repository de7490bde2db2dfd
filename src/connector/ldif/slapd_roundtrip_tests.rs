//! Round trips through a real slapd 2.5.13 (Debian 12), recorded: `sent.ldif` was added
//! with ldapadd and `returned.ldif` is what ldapsearch read back
//! (tests/data/slapd-2.5.13/). slapd rewrites DN values (attribute types lower-cased,
//! spaces around separators dropped, escapes kept as given) and base64-encodes a value
//! with a trailing space; typed as the connectors type them, what comes back must match
//! what was sent up to notation, or a quiet cycle would write again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::format::{LdifEntry, LdifReader, LdifValue};
use crate::model::{Dn, RefTarget, Value, ValueSet, parse_time};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/slapd-2.5.13/");

fn entries(name: &str) -> Vec<LdifEntry> {
    let text = std::fs::read_to_string(format!("{DIR}{name}")).unwrap();
    LdifReader::new(text.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

fn text(v: &LdifValue) -> String {
    match v {
        LdifValue::Text(s) => s.clone(),
        LdifValue::Bytes(b) => String::from_utf8(b.clone()).unwrap(),
    }
}

/// A value as a rule flows it (`sent`) or as the LDAP import reads it (`!sent`): DN-syntax
/// attributes are references either way; numbers are numbers only on the way out.
fn typed(attr: &str, v: &LdifValue, sent: bool) -> Value {
    match attr.to_ascii_lowercase().as_str() {
        "seealso" | "manager" | "member" => {
            Value::Reference(RefTarget::Dn(Dn::parse(&text(v)).unwrap()))
        }
        "jpegphoto" => match v {
            LdifValue::Bytes(b) => Value::Binary(b.clone()),
            LdifValue::Text(t) => Value::Binary(t.clone().into_bytes()),
        },
        "uidnumber" | "gidnumber" if sent => Value::Integer(text(v).parse().unwrap()),
        _ => Value::String(text(v)),
    }
}

fn values(e: &LdifEntry, attr: &str, sent: bool) -> ValueSet {
    e.attrs
        .iter()
        .filter(|(a, _)| a.eq_ignore_ascii_case(attr))
        .map(|(a, v)| typed(a, v, sent))
        .collect()
}

#[test]
fn what_slapd_returns_matches_what_was_added() {
    let sent = entries("sent.ldif");
    let back = entries("returned.ldif");
    let mut compared = 0;
    for b in &back {
        let dn = Dn::parse(&b.dn).unwrap();
        let s = sent
            .iter()
            .find(|s| Dn::parse(&s.dn).unwrap() == dn)
            .unwrap_or_else(|| panic!("{dn} was not added"));
        for (attr, _) in &s.attrs {
            let want = values(s, attr, true);
            let got = values(b, attr, false);
            assert!(
                want.same_as(&got),
                "{dn} {attr}: sent {want:?}, slapd returned {got:?}"
            );
            compared += 1;
        }
    }
    assert!(compared >= 17, "only {compared} values compared");
}

#[test]
fn slapd_rewrites_dn_values_and_they_still_match() {
    let back = entries("returned.ldif");
    let staff = back.iter().find(|e| e.dn.starts_with("cn=staff")).unwrap();
    let members: Vec<String> = staff
        .attrs
        .iter()
        .filter(|(a, _)| a == "member")
        .map(|(_, v)| text(v))
        .collect();
    // As sent: "uid=ann, ou=people, dc=example, dc=test" and
    // "UID=Semi\3Bcolon,OU=People,DC=Example,DC=Test".
    assert!(members.contains(&"uid=ann,ou=people,dc=example,dc=test".to_string()));
    assert!(members.contains(&"uid=Semi\\3Bcolon,ou=People,dc=Example,dc=Test".to_string()));
    let sent = Dn::parse("UID=Semi\\;colon,OU=People,DC=Example,DC=Test").unwrap();
    let got = Dn::parse("uid=Semi\\3Bcolon,ou=People,dc=Example,dc=Test").unwrap();
    assert_eq!(sent, got, "an escape in another notation is the same DN");
}

#[test]
fn slapd_timestamps_parse_as_the_seconds_they_name() {
    let back = entries("returned.ldif");
    let stamp = back[0]
        .attrs
        .iter()
        .find(|(a, _)| a == "createTimestamp")
        .map(|(_, v)| text(v))
        .unwrap();
    let secs = parse_time(&stamp).unwrap();
    assert!(
        Value::DateTime(secs).same_as(&Value::String(stamp.clone())),
        "{stamp}"
    );
    assert!(!Value::DateTime(secs + 1).same_as(&Value::String(stamp)));
}
