//! `bridgehead demo --once` produces exactly the target the demo rules describe, and a second
//! cycle has nothing left to do.

use std::collections::BTreeSet;

use crate::support::{
    TestDir, assert_quiet_cycle, assert_same_target, by_dn, cycle_json, demo_once, expected_target,
    read_ldif, read_target,
};

#[test]
fn demo_end_to_end() {
    let dir = TestDir::new("demo");
    demo_once(&dir);

    let source = read_ldif(&dir.join("contoso.ldif"));
    let expected = by_dn(&expected_target(&source));
    // The expectation itself must cover the interesting cases, or the comparison proves little.
    assert!(
        expected.len() > 2000,
        "only {} expected entries",
        expected.len()
    );
    let with = |attr: &str| expected.values().filter(|a| a.contains_key(attr)).count();
    assert!(
        with("manager") > 1000,
        "{} entries with a manager",
        with("manager")
    );
    assert!(
        with("member") >= 100,
        "{} groups with members",
        with("member")
    );
    assert!(
        expected
            .keys()
            .any(|dn| dn.starts_with("cn=smith\\+jones\\, ann,"))
    );
    assert!(expected.keys().any(|dn| !dn.is_ascii()));

    let target = dir.join("directory.ldif");
    let actual = read_target(&target, false);
    assert_same_target(&actual, &expected, "after `demo --once`");

    // Each target entry carries exactly one entryUUID, and no two share one.
    let with_uuid = read_target(&target, true);
    let mut uuids = BTreeSet::new();
    for (dn, attrs) in &with_uuid {
        let values = attrs.get("entryuuid").cloned().unwrap_or_default();
        assert_eq!(values.len(), 1, "{dn} has entryUUID values {values:?}");
        assert!(
            uuids.insert(values),
            "{dn} repeats another entry's entryUUID"
        );
    }

    assert_quiet_cycle(&cycle_json(&dir.config(), false));
}
