//! The deletion threshold against a real slapd target: 600 people deleted in the source
//! with the default threshold (500) hold the target's whole export run — nothing at all is
//! written, not the deletes, not the group's shrinking, not the new people — and report
//! the block; `bridgehead approve` then names exactly those 600 and everything goes; with
//! `deletion_threshold = 1000` they go at once. Every count is taken at the target with
//! ldapsearch, and slapd's own log shows which writes it answered.

use std::collections::BTreeSet;

use super::safety_lab::{
    Group, Options, Person, count_people, read_back, write_config, write_source,
};
use crate::support::lab::LdapServer;
use crate::support::lab::slapd;
use crate::support::lab::slapd::Slapd;
use crate::support::{Must, TestDir, connector_counts, cycle_json, norm_dn, run};

const PEOPLE: usize = 700;
const DELETED: usize = 600;

fn people(range: std::ops::Range<usize>) -> Vec<Person> {
    range.map(Person::numbered).collect()
}

fn everyone(people: &[Person]) -> Vec<Group> {
    vec![Group {
        cn: "everyone".into(),
        members: people.iter().map(|p| p.uid.clone()).collect(),
    }]
}

/// The writes slapd answered with success under `ou`, after the first `skip` in its log.
fn writes_under(dst: &Slapd, ou: &str, skip: usize) -> Vec<(String, String)> {
    let suffix = format!(",{}", norm_dn(ou));
    dst.logged_writes()
        .into_iter()
        .skip(skip)
        .filter(|w| w.rc == 0)
        .map(|w| (w.op, norm_dn(&w.dn)))
        .filter(|(_, dn)| dn.ends_with(&suffix))
        .collect()
}

/// A source of 700 people (and a group of them all) synced into a fresh OU; returns the
/// folder, config and OU.
fn synced(name: &str, target_keys: &str) -> (TestDir, std::path::PathBuf, String) {
    let dst = slapd::shared();
    let ou = dst.create_ou(name);
    let dir = TestDir::new(name);
    let all = people(0..PEOPLE);
    write_source(&dir.join("hr.ldif"), "hr", &all, &everyone(&all));
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
    // The people and their group.
    assert_eq!(
        connector_counts(&first.json())["dst"].1.adds,
        PEOPLE as u64 + 1
    );
    assert_eq!(count_people(dst, &ou), PEOPLE);
    (dir, cfg, ou)
}

#[test]
fn safety_deleting_600_holds_the_whole_export_until_approval_then_everything_goes() {
    let dst = slapd::shared();
    let _hold = dst.hold();
    let (dir, cfg, ou) = synced("threshold-default", "");
    let before = read_back(dst, &ou);
    let log_mark = dst.logged_writes().len();

    // 600 people leave the source; at the same time five arrive and one changes mail.
    let mut now = people(DELETED..PEOPLE + 5);
    now[0].mail = "changed@example.test".into();
    write_source(&dir.join("hr.ldif"), "hr", &now, &everyone(&now));
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
    for op in ["adds", "updates", "deletes", "renames"] {
        assert_eq!(dst_run["export"][op], 0, "{op}: {json}");
    }
    assert_eq!(
        read_back(dst, &ou),
        before,
        "the blocked export changed the target"
    );
    assert_eq!(
        writes_under(dst, &ou, log_mark),
        Vec::<(String, String)>::new(),
        "slapd answered writes while the export run was held"
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

    assert_eq!(
        writes_under(dst, &ou, log_mark),
        Vec::<(String, String)>::new()
    );

    // `approve` lists exactly the 600 people that left, by name, mail and DN.
    let approved = run(&["approve", "-c", &cfg_arg, "--connector", "dst"]);
    approved.ok();
    let released: BTreeSet<String> = approved
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("released: "))
        .map(|l| l.to_string())
        .collect();
    let want: BTreeSet<String> = people(0..DELETED)
        .iter()
        .map(|p| format!("uid={},{ou} — Person {} ({})", p.uid, p.uid, p.mail))
        .collect();
    assert_eq!(
        released.len(),
        want.len(),
        "approve released another batch:\n{}",
        approved.stdout
    );
    let norm = |set: &BTreeSet<String>| -> BTreeSet<String> {
        set.iter()
            .map(|l| match l.split_once(" — ") {
                Some((dn, name)) => format!("{} — {name}", norm_dn(dn)),
                None => l.clone(),
            })
            .collect()
    };
    assert_eq!(
        norm(&released),
        norm(&want),
        "approve released another batch"
    );

    // Then everything goes: the deletes, the five new people, the changed mail, the
    // group's new member list.
    let after = cycle_json(&cfg, false);
    after.ok();
    let out = connector_counts(&after.json())["dst"].1;
    assert_eq!(
        (out.deletes, out.adds, out.updates),
        (DELETED as u64, 5, 2),
        "{out:?}"
    );
    let left = read_back(dst, &ou);
    let group_dn = norm_dn(&format!("cn=everyone,{ou}"));
    let kept: BTreeSet<String> = now
        .iter()
        .map(|p| norm_dn(&format!("uid={},{ou}", p.uid)))
        .collect();
    let mut want_keys = kept.clone();
    want_keys.insert(group_dn.clone());
    assert_eq!(
        left.keys().cloned().collect::<BTreeSet<_>>(),
        want_keys,
        "exactly the 600 went and the 5 came"
    );
    assert_eq!(
        left[&group_dn]["member"], kept,
        "the group lists who is left"
    );
    let changed = norm_dn(&format!("uid={},{ou}", now[0].uid));
    assert_eq!(
        left[&changed]["mail"],
        BTreeSet::from(["changed@example.test".to_string()])
    );
    // The other survivors are untouched (same entryUUIDs and values).
    for (dn, attrs) in left
        .iter()
        .filter(|(dn, _)| **dn != group_dn && **dn != changed)
    {
        if let Some(old) = before.get(dn) {
            assert_eq!(attrs, old, "{dn} changed");
        }
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
    let left = people(DELETED..PEOPLE);
    write_source(&dir.join("hr.ldif"), "hr", &left, &everyone(&left));
    let once = cycle_json(&cfg, false);
    once.ok();
    let counts = connector_counts(&once.json());
    assert_eq!(counts["dst"].1.deletes, DELETED as u64, "{counts:?}");
    assert_eq!(once.json()["connectors"][1]["blocked_deletes"], 0);
    assert_eq!(count_people(dst, &ou), PEOPLE - DELETED);
}
