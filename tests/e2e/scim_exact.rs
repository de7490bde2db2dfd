//! Exact deltas into a real scim2-server (issue 14): a quiet cycle writes nothing whatever
//! the flow shapes (typed sub-attributes with `primary`, booleans and numbers from
//! expressions), a value the service rewrites is reported once instead of sent forever, a
//! manager created in the same export is set in that export, and a userName a delete
//! frees is taken by a create in the same cycle.

use serde_json::Value as Json;

use super::scim::{
    Group, Person, assert_matches, config, cycle, people, person_anchor, setup_with, source_ldif,
    writes,
};
use crate::support::lab::scim;
use crate::support::{Must, TestDir, connector_counts, run};

/// The standard SCIM config with more user flows in place of the plain `active` one.
fn config_with_flows(url: &str, cloud_extra: &str, flows: &str) -> String {
    let plain = r#"{ target = "active", source = "accountEnabled" },"#;
    let cfg = config(url, cloud_extra, "");
    assert!(cfg.contains(plain), "the base config changed");
    cfg.replace(plain, flows)
}

/// The flow shapes of the issue: `primary` of a typed entry from an expression, `active`
/// as the text of a boolean, a number into a string attribute.
const SHAPES: &str = r#"{ target = 'emails[type eq "work"].primary', expression = '"True"' },
  { target = "active", expression = 'CStr([accountEnabled])' },
  { target = 'phoneNumbers[type eq "work"].value', expression = 'CNum(Mid([employeeID], 2, 5))' },
  { target = 'phoneNumbers[type eq "work"].primary', expression = '"False"' },
  { target = 'emails[type eq "home"].value', source = "mail" },
  { target = 'emails[type eq "home"].primary', expression = 'IIF([title] = "Chief", "True", "False")' },"#;

/// Per connector, the no-op exports a `cycle --json` reports.
fn no_ops(json: &Json, connector: &str) -> u64 {
    json["connectors"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["connector"] == connector)
        .and_then(|c| c["no_op_exports"].as_u64())
        .must("no_op_exports in the cycle JSON")
}

fn write_source(dir: &TestDir, ppl: &[Person]) {
    std::fs::write(dir.join("hr.ldif"), source_ldif(ppl, &[])).must("writing hr.ldif");
}

#[test]
fn scim_exact_a_cycle_without_source_changes_writes_nothing_whatever_the_flow_shapes() {
    let server = scim::start();
    let ppl = people(30);
    let cfg = config_with_flows(&server.url, "", SHAPES);
    let dir = setup_with("scim-exact-quiet", &cfg, &ppl, &[]);
    let (code, json) = cycle(&dir);
    assert_eq!(code, Some(0), "{json}");
    assert_eq!(connector_counts(&json)["cloud"].1.adds, 30, "{json}");
    assert_eq!(no_ops(&json, "cloud"), 0, "{json}");
    let u = server
        .all("/Users")
        .into_iter()
        .find(|u| u["externalId"] == person_anchor(4))
        .must("user 4");
    let work = u["emails"]
        .as_array()
        .and_then(|a| a.iter().find(|e| e["type"] == "work"))
        .must("a work email");
    assert_eq!(work["primary"], Json::Bool(true), "{u}");
    assert_eq!(u["active"], Json::Bool(true), "{u}");
    assert_eq!(u["phoneNumbers"][0]["value"], "4", "{u}");

    for round in 0..2 {
        let before = server.requests().len();
        let (code, json) = cycle(&dir);
        assert_eq!(code, Some(0), "{json}");
        assert_eq!(writes(&server, before), vec![], "quiet cycle {round} wrote");
        let counts = connector_counts(&json);
        assert_eq!(counts["cloud"].0.updates, 0, "{json}");
        assert_eq!(counts["cloud"].1.updates, 0, "{json}");
        assert_eq!(no_ops(&json, "cloud"), 0, "{json}");
    }
}

#[test]
fn scim_exact_a_value_the_service_rewrites_is_reported_once_not_sent_every_cycle() {
    let server = scim::start();
    let mut ppl = people(6);
    let cfg = config_with_flows(&server.url, "", SHAPES);
    let dir = setup_with("scim-exact-rewrite", &cfg, &ppl, &[]);
    let (code, json) = cycle(&dir);
    assert_eq!(code, Some(0), "{json}");

    // A second primary email: scim2-server takes it and clears the first one's primary,
    // which the rule still wants. No sending can make both hold.
    ppl[2].title = "Chief".into();
    write_source(&dir, &ppl);
    let before = server.requests().len();
    let (_, json) = cycle(&dir);
    let w = writes(&server, before);
    assert_eq!(w.len(), 1, "one PATCH: {w:?}");
    assert_eq!(no_ops(&json, "cloud"), 1, "{json}");
    let found = run(&[
        "search",
        "-c",
        &dir.config().to_string_lossy(),
        &person_anchor(2),
    ]);
    assert!(
        found.stdout.contains("did not keep what was exported")
            && found.stdout.contains("emails[type eq \"work\"].primary"),
        "the object's error names the value the service did not keep:\n{}",
        found.stdout
    );

    for round in 0..2 {
        let before = server.requests().len();
        let (_, json) = cycle(&dir);
        assert_eq!(
            writes(&server, before),
            vec![],
            "cycle {round} after the rewrite wrote"
        );
        assert_eq!(no_ops(&json, "cloud"), 0, "{json}");
    }

    // A real change to that value goes out again.
    ppl[2].title = "Title 2".into();
    write_source(&dir, &ppl);
    let before = server.requests().len();
    let (code, json) = cycle(&dir);
    assert_eq!(code, Some(0), "{json}");
    assert_eq!(writes(&server, before).len(), 1, "{json}");
    let before = server.requests().len();
    let (code, json) = cycle(&dir);
    assert_eq!(code, Some(0), "{json}");
    assert_eq!(writes(&server, before), vec![], "quiet again");
}

#[test]
fn scim_exact_a_manager_created_in_a_later_batch_of_the_same_export_is_set_in_it() {
    let server = scim::start();
    // More users than one export batch (2,000): user 0's manager is created in the last
    // batch, after user 0 itself.
    let mut ppl: Vec<Person> = people(2100)
        .into_iter()
        .map(|p| Person { manager: None, ..p })
        .collect();
    ppl[0].manager = Some(2099);
    ppl[1].manager = Some(0);
    ppl[2099].manager = Some(2098);
    let dir = setup_with(
        "scim-exact-manager",
        &config(&server.url, "", ""),
        &ppl,
        &[],
    );
    let first = run(&["cycle", "-c", &dir.config().to_string_lossy()]);
    assert_eq!(first.code(), Some(0), "{}", first.stderr);
    assert!(
        first.stderr.contains("export") && !first.stderr.contains("wait for objects"),
        "a reference waited:\n{}",
        first.stderr
    );
    assert_matches(&server, &ppl, &[], "after the first cycle");
    let before = server.requests().len();
    let (code, json) = cycle(&dir);
    assert_eq!(code, Some(0), "{json}");
    assert_eq!(writes(&server, before), vec![], "the second cycle wrote");
}

fn deleted_and_recreated(name: &str, cloud_extra: &str) {
    let server = scim::start();
    let mut ppl = people(8);
    let dir = setup_with(name, &config(&server.url, cloud_extra, ""), &ppl, &[]);
    let (code, json) = cycle(&dir);
    assert_eq!(code, Some(0), "{json}");

    // User 3 leaves and a new account, user 100, gets the same userPrincipalName.
    let upn = ppl[3].upn();
    ppl.retain(|p| p.n != 3);
    let mut new = Person::new(100);
    new.manager = None;
    new.upn = Some(upn.clone());
    ppl.push(new);
    write_source(&dir, &ppl);
    let (code, json) = cycle(&dir);
    assert_eq!(code, Some(0), "one cycle, no error: {json}");
    let counts = connector_counts(&json);
    assert_eq!(
        (counts["cloud"].1.adds, counts["cloud"].1.deletes),
        (1, 1),
        "{json}"
    );
    assert_matches(&server, &ppl, &[], "after the delete and the create");
    let holder = server
        .all("/Users")
        .into_iter()
        .find(|u| u["userName"] == upn.as_str())
        .must("the userName's holder");
    assert_eq!(holder["externalId"], person_anchor(100));
    let before = server.requests().len();
    let (code, json) = cycle(&dir);
    assert_eq!(code, Some(0), "{json}");
    assert_eq!(writes(&server, before), vec![], "the next cycle wrote");
}

#[test]
fn scim_exact_a_delete_frees_a_user_name_for_a_create_in_the_same_cycle() {
    deleted_and_recreated("scim-exact-order", "");
}

#[test]
fn scim_exact_a_delete_frees_a_user_name_for_a_create_in_the_same_cycle_without_bulk() {
    deleted_and_recreated("scim-exact-order-nobulk", "bulk_size = 0\nin_flight = 4");
}

#[test]
fn scim_exact_the_confirming_import_reads_back_what_was_written_not_the_service() {
    let server = scim::start();
    let mut ppl = people(200);
    let cfg = config(&server.url, "full_import_every = \"1h\"", "");
    let dir = setup_with("scim-exact-read-back", &cfg, &ppl, &[]);
    let (code, json) = cycle(&dir);
    assert_eq!(code, Some(0), "{json}");
    let listed = |from: usize| {
        server.requests()[from..]
            .iter()
            .filter(|(m, p, _)| m == "GET" && p.contains("startIndex="))
            .count()
    };
    assert!(listed(0) > 0, "the first cycle lists the service");

    // One change: the delta import does not list (the last listing is recent), and the
    // confirming import reads back the one resource the export wrote.
    ppl[7].title = "Chief".into();
    write_source(&dir, &ppl);
    let before = server.requests().len();
    let (code, json) = cycle(&dir);
    assert_eq!(code, Some(0), "{json}");
    let seen = server.requests()[before..].to_vec();
    assert_eq!(listed(before), 0, "a listing in a delta cycle: {seen:?}");
    let patch = seen
        .iter()
        .position(|(m, _, _)| m == "PATCH")
        .must("the PATCH");
    let after: Vec<_> = seen[patch + 1..].iter().collect();
    assert_eq!(after.len(), 1, "one read-back after the PATCH: {seen:?}");
    assert_eq!(after[0].0, "GET");
    assert_eq!(
        after[0].1, seen[patch].1,
        "the read-back is of the written resource"
    );
    assert_eq!(
        connector_counts(&json)["cloud"].0,
        Default::default(),
        "{json}"
    );

    // A quiet cycle does not talk to the service at all until the next listing is due.
    let before = server.requests().len();
    let (code, json) = cycle(&dir);
    assert_eq!(code, Some(0), "{json}");
    assert_eq!(server.requests()[before..].to_vec(), vec![], "{json}");

    // A full cycle lists, and finds everything as exported.
    let before = server.requests().len();
    let full = run(&[
        "cycle",
        "-c",
        &dir.config().to_string_lossy(),
        "--full",
        "--json",
    ]);
    assert_eq!(full.code(), Some(0), "{}", full.stderr);
    assert!(listed(before) > 0, "a full cycle lists the service");
    assert_eq!(writes(&server, before), vec![], "the full cycle wrote");
    assert_matches(&server, &ppl, &[], "after the full cycle");
}

#[test]
fn scim_exact_a_deleted_member_leaves_its_group_in_the_same_cycle_without_a_listing() {
    let server = scim::start();
    let mut ppl = people(6);
    let mut grp = vec![Group {
        name: "Staff".into(),
        people: (0..6).collect(),
        groups: vec![],
    }];
    // No listing between cycles: nothing but this cycle's own writes tells the connector
    // which id the deleted user had.
    let cfg = config(&server.url, "full_import_every = \"1h\"", "");
    let dir = setup_with("scim-exact-member-gone", &cfg, &ppl, &grp);
    let (code, json) = cycle(&dir);
    assert_eq!(code, Some(0), "{json}");

    ppl.retain(|p| p.n != 2);
    grp[0].people.retain(|n| *n != 2);
    std::fs::write(dir.join("hr.ldif"), source_ldif(&ppl, &grp)).must("writing hr.ldif");
    let (code, json) = cycle(&dir);
    assert_eq!(code, Some(0), "{json}");
    assert_matches(&server, &ppl, &grp, "after the delete");
    let before = server.requests().len();
    let (code, json) = cycle(&dir);
    assert_eq!(code, Some(0), "{json}");
    assert_eq!(writes(&server, before), vec![], "the next cycle wrote");
}
