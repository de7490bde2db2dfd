//! The deletion threshold against a real slapd target: 600 people deleted in the source
//! with the default threshold (500) delete nothing and report the block; `bridgehead
//! approve` then releases exactly those 600; with `deletion_threshold = 1000` they go at
//! once. Every count is taken at the target with ldapsearch.

use std::collections::BTreeSet;

use super::safety_lab::{Options, Person, count_people, read_back, write_config, write_source};
use crate::support::lab::LdapServer;
use crate::support::lab::slapd;
use crate::support::{Must, TestDir, connector_counts, cycle_json, norm_dn, run};

const PEOPLE: usize = 700;
const DELETED: usize = 600;

fn people(range: std::ops::Range<usize>) -> Vec<Person> {
    range.map(Person::numbered).collect()
}

/// A source of 700 people synced into a fresh OU; returns the folder, config and OU.
fn synced(name: &str, target_keys: &str) -> (TestDir, std::path::PathBuf, String) {
    let dst = slapd::shared();
    let ou = dst.create_ou(name);
    let dir = TestDir::new(name);
    write_source(&dir.join("hr.ldif"), "hr", &people(0..PEOPLE), &[]);
    let cfg = write_config(
        &dir,
        dst,
        &ou,
        &Options {
            sources: vec!["hr".into()],
            target_keys: target_keys.into(),
            ..Options::default()
        },
    );
    let first = cycle_json(&cfg, false);
    first.ok();
    assert_eq!(connector_counts(&first.json())["dst"].1.adds, PEOPLE as u64);
    assert_eq!(count_people(dst, &ou), PEOPLE);
    (dir, cfg, ou)
}

#[test]
fn safety_deleting_600_waits_for_approval_then_deletes_exactly_those() {
    let dst = slapd::shared();
    let _hold = dst.hold();
    let (dir, cfg, ou) = synced("threshold-default", "");
    let before = read_back(dst, &ou);

    // 600 people leave the source.
    write_source(&dir.join("hr.ldif"), "hr", &people(DELETED..PEOPLE), &[]);
    let blocked = cycle_json(&cfg, false);
    // Held deletes are reported as a run that needs attention (exit 1), not a failure.
    blocked.expect_code(1);
    let json = blocked.json();
    let dst_run = json["connectors"]
        .as_array()
        .must("connectors")
        .iter()
        .find(|c| c["connector"] == "dst")
        .must("the dst connector's run")
        .clone();
    assert_eq!(dst_run["blocked_deletes"], DELETED, "{json}");
    assert_eq!(dst_run["export"]["deletes"], 0, "{json}");
    assert_eq!(
        read_back(dst, &ou),
        before,
        "the blocked export changed the target"
    );
    assert!(
        blocked
            .stderr
            .contains("bridgehead approve --connector dst"),
        "the log says how to release them:\n{}",
        blocked.stderr
    );

    // The plain summary says so too, and another cycle still holds them.
    let cfg_arg = cfg.to_string_lossy().into_owned();
    let text = run(&["cycle", "-c", &cfg_arg]);
    text.expect_code(1);
    assert!(
        text.stdout
            .contains("dst: 600 deletes held back by the deletion threshold"),
        "{}",
        text.stdout
    );
    assert_eq!(count_people(dst, &ou), PEOPLE);

    // `approve` lists exactly the 600 people that left.
    let approved = run(&["approve", "-c", &cfg_arg, "--connector", "dst"]);
    approved.ok();
    let released: BTreeSet<String> = approved
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("released: "))
        .map(norm_dn)
        .collect();
    let want: BTreeSet<String> = people(0..DELETED)
        .iter()
        .map(|p| norm_dn(&format!("uid={},{ou}", p.uid)))
        .collect();
    assert_eq!(released, want, "approve released another batch");

    let after = cycle_json(&cfg, false);
    after.ok();
    assert_eq!(
        connector_counts(&after.json())["dst"].1.deletes,
        DELETED as u64
    );
    let left = read_back(dst, &ou);
    let kept: BTreeSet<String> = people(DELETED..PEOPLE)
        .iter()
        .map(|p| norm_dn(&format!("uid={},{ou}", p.uid)))
        .collect();
    assert_eq!(
        left.keys().cloned().collect::<BTreeSet<_>>(),
        kept,
        "exactly the 600 went"
    );
    // The survivors are untouched (same entryUUIDs and values).
    for (dn, attrs) in &left {
        assert_eq!(Some(attrs), before.get(dn), "{dn} changed");
    }
    // The approval was used up: nothing is held or pending any more.
    let quiet = cycle_json(&cfg, false);
    quiet.ok();
    assert_eq!(connector_counts(&quiet.json())["dst"].1, Default::default());
    let errors = run(&["errors", "-c", &cfg_arg]);
    errors.ok();
}

#[test]
fn safety_deleting_600_under_a_threshold_of_1000_goes_at_once() {
    let dst = slapd::shared();
    let _hold = dst.hold();
    let (dir, cfg, ou) = synced("threshold-1000", "deletion_threshold = 1000");
    write_source(&dir.join("hr.ldif"), "hr", &people(DELETED..PEOPLE), &[]);
    let once = cycle_json(&cfg, false);
    once.ok();
    let counts = connector_counts(&once.json());
    assert_eq!(counts["dst"].1.deletes, DELETED as u64, "{counts:?}");
    assert_eq!(once.json()["connectors"][1]["blocked_deletes"], 0);
    assert_eq!(count_people(dst, &ou), PEOPLE - DELETED);
}
