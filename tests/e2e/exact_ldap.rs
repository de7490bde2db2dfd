//! Exact deltas into OpenLDAP (issue 14): the confirming import of a first export finds
//! what was written and marks nothing for sync, so the next delta cycle handles nothing
//! and writes nothing.

use super::nrt_lab::{ldap_person, slapd_config};
use crate::support::lab::LdapServer;
use crate::support::lab::slapd;
use crate::support::{Must, TestDir, connector_counts, cycle_json};

const PEOPLE: usize = 300;

/// The `sync` phase's object count: inbound plus outbound syncs the cycle ran.
fn synced(json: &serde_json::Value) -> u64 {
    json["phases"]
        .as_array()
        .must("phases")
        .iter()
        .find(|p| p["phase"] == "sync")
        .and_then(|p| p["objects"].as_u64())
        .must("a sync phase")
}

#[test]
fn exact_ldap_the_delta_cycle_after_a_first_export_into_slapd_processes_nothing() {
    let server = slapd::shared();
    let src_ou = server.create_ou("exact-src");
    let target_ou = server.create_ou("exact-target");
    let ldif: String = (0..PEOPLE)
        .map(|i| ldap_person(&src_ou, &format!("exact-{i:04}"), &format!("Person {i}")))
        .collect();
    server.ldapadd(&ldif);
    let dir = TestDir::new("exact-ldap-first-export");
    let config = slapd_config(&dir, server, &src_ou, server, &target_ou);

    let first = cycle_json(&config, false);
    first.ok();
    let json = first.json();
    assert_eq!(
        connector_counts(&json)["target"].1.adds,
        PEOPLE as u64,
        "{json}"
    );
    assert_eq!(json["connectors"][1]["no_op_exports"], 0, "{json}");

    let second = cycle_json(&config, false);
    second.ok();
    let json = second.json();
    let counts = connector_counts(&json);
    assert_eq!(
        counts["target"].1,
        Default::default(),
        "nothing exported: {json}"
    );
    assert_eq!(
        counts["target"].0,
        Default::default(),
        "nothing imported: {json}"
    );
    assert_eq!(synced(&json), 0, "the delta cycle synced objects: {json}");
}

#[test]
fn exact_ldap_a_person_deleted_and_recreated_at_the_same_dn_is_one_cycle_without_error() {
    let server = slapd::shared();
    let src_ou = server.create_ou("exact-recreate-src");
    let target_ou = server.create_ou("exact-recreate-target");
    let ldif: String = (0..5)
        .map(|i| ldap_person(&src_ou, &format!("re-{i}"), &format!("Person {i}")))
        .collect();
    server.ldapadd(&ldif);
    let dir = TestDir::new("exact-ldap-recreate");
    let config = slapd_config(&dir, server, &src_ou, server, &target_ou);
    cycle_json(&config, false).ok();

    // The same DN, a new entry (a new entryUUID) with other values.
    server.ldapdelete(&format!("uid=re-2,{src_ou}"));
    server.ldapadd(&ldap_person(&src_ou, "re-2", "The new one"));
    let run = cycle_json(&config, false);
    run.ok();
    let json = run.json();
    let target = &json["connectors"][1];
    assert_eq!(target["errors"], 0, "{json}");
    assert_eq!(target["pending"], 0, "{json}");
    let found = server.ldapsearch(
        &target_ou,
        crate::support::lab::Scope::One,
        "(uid=re-2)",
        &["description"],
    );
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0].first("description").as_deref(),
        Some("The new one")
    );
    let quiet = cycle_json(&config, false);
    quiet.ok();
    let json = quiet.json();
    assert_eq!(
        connector_counts(&json)["target"].1,
        Default::default(),
        "{json}"
    );
}
