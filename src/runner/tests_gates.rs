//! The safety gates driven through the runner with LDIF files: a tripped deletion
//! threshold holds the connector's whole export run, and the empty-import guard stops a
//! snapshot that lost nearly everything; `approve` releases both.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::tests::{AD, Lab, config, users};
use super::{CycleOptions, RunError};

fn with_threshold(n: u64) -> String {
    config(AD, "delete").replace(
        "anchor = \"entryUUID\"",
        &format!("anchor = \"entryUUID\"\ndeletion_threshold = {n}"),
    )
}

fn group(members: std::ops::Range<usize>) -> String {
    let mut g = "dn: cn=All,dc=ad\nuuid: g-all\nobjectClass: group\ncn: All\n".to_string();
    for i in members {
        g.push_str(&format!("member: cn=U{i},dc=ad\n"));
    }
    g + "\n"
}

#[test]
fn a_tripped_threshold_holds_the_whole_export_run_until_approved_then_everything_goes() {
    let mut lab = Lab::new(
        &with_threshold(5),
        &[("ad.ldif", &format!("{}{}", users(0..20), group(0..20)))],
    );
    lab.cycle();
    let before = lab.target();
    assert_eq!(before.len(), 21);
    // Seven users leave (and so the group), one arrives, one changes title: the deletes
    // are over the threshold, so nothing at all is exported, not even the other changes.
    let changed = users(8..20).replace("employeeID: E-u8\n", "employeeID: E-u8\ntitle: Boss\n");
    lab.write(
        "ad.ldif",
        &format!(
            "{}{changed}{}{}",
            users(7..8),
            users(100..101),
            group(7..20)
        ),
    );
    let run = lab.cycle();
    assert_eq!(run.connectors[1].blocked_deletes, 7);
    assert_eq!(
        run.connectors[1].export.total(),
        0,
        "{:?}",
        run.connectors[1]
    );
    assert_eq!(lab.target(), before, "a held export run changed the target");
    // Still held on the next cycle; what waits is pending, deletes and the rest.
    let run = lab.cycle();
    assert_eq!(run.connectors[1].blocked_deletes, 7);
    assert_eq!(run.connectors[1].pending, 7 + 3);
    assert_eq!(lab.target(), before);
    // Approval names exactly those seven; then the whole run goes.
    let approval = lab.runner.approve("out").unwrap();
    let mut dns: Vec<String> = approval.deletes.iter().map(|r| r.dn.clone()).collect();
    dns.sort();
    let mut want: Vec<String> = (0..7).map(|i| format!("uid=u{i},ou=people,o=t")).collect();
    want.sort();
    assert_eq!(dns, want);
    assert!(approval.import.is_none());
    let run = lab.cycle();
    let out = &run.connectors[1];
    assert_eq!(
        (out.export.deletes, out.export.adds, out.export.updates),
        (7, 1, 2),
        "{out:?}"
    );
    assert_eq!(out.blocked_deletes, 0);
    assert_eq!(out.pending, 0);
    let after = lab.target();
    assert_eq!(after.len(), 15);
    assert_eq!(
        after["uid=u8,ou=people,o=t"]["title"],
        vec!["Boss".to_string()]
    );
    assert_eq!(after["cn=all,ou=groups,o=t"]["member"].len(), 13);
    // The approval is used up: the next mass delete is held again.
    lab.write(
        "ad.ldif",
        &format!("{}{}", users(100..101), group(100..101)),
    );
    assert_eq!(lab.cycle().connectors[1].blocked_deletes, 13);
    assert_eq!(lab.target(), after);
}

#[test]
fn approving_several_connectors_refuses_an_unknown_name_before_approving_any() {
    let mut lab = Lab::new(&with_threshold(5), &[("ad.ldif", &users(0..20))]);
    lab.cycle();
    lab.write("ad.ldif", &users(10..20));
    assert_eq!(lab.cycle().connectors[1].blocked_deletes, 10);
    let err = lab
        .runner
        .approve_all(&["out".into(), "nope".into()])
        .unwrap_err();
    assert!(
        matches!(err, RunError::UnknownConnector(ref n) if n == "nope"),
        "{err}"
    );
    // Nothing was approved: the deletes are still held.
    assert_eq!(lab.cycle().connectors[1].blocked_deletes, 10);
    let all = lab
        .runner
        .approve_all(&["ad".into(), "out".into()])
        .unwrap();
    assert!(all[0].is_empty());
    assert_eq!(all[1].deletes.len(), 10);
    assert_eq!(lab.cycle().connectors[1].export.deletes, 10);
}

#[test]
fn an_import_that_finds_almost_nothing_deletes_nothing_until_approved() {
    let mut lab = Lab::new(&with_threshold(1000), &[("ad.ldif", &users(0..150))]);
    lab.cycle();
    let before = lab.target();
    assert_eq!(before.len(), 150);
    // The source now shows 5 of 150 (a wrong base, an empty file): under 10% of at least
    // 100, so the import stops with the counts, whatever the threshold (1000) says.
    lab.write("ad.ldif", &users(0..5));
    let opts = CycleOptions {
        trigger: "test".into(),
        ..Default::default()
    };
    for _ in 0..2 {
        let err = lab.runner.cycle(&opts).unwrap_err();
        match &err {
            RunError::ImportGuard {
                connector,
                held,
                found,
            } => assert_eq!((connector.as_str(), *held, *found), ("ad", 150, 5)),
            other => panic!("expected the import guard, got {other}"),
        }
        let text = err.to_string();
        assert!(
            text.contains("found 5 objects") && text.contains("holds 150"),
            "{text}"
        );
        assert_eq!(lab.target(), before, "a stopped import deleted something");
    }
    let tx = lab.runner.store().read().unwrap();
    assert_eq!(
        tx.held_import(&crate::model::ConnectorName::new("ad").unwrap())
            .unwrap()
            .map(|h| (h.held, h.found, h.approved)),
        Some((150, 5, false))
    );
    drop(tx);
    // Approved, the next import goes through once and the deletes follow.
    let approval = lab.runner.approve("ad").unwrap();
    assert_eq!(approval.import.map(|i| (i.held, i.found)), Some((150, 5)));
    let run = lab.cycle();
    assert_eq!(run.connectors[0].import.deletes, 145);
    assert_eq!(run.connectors[1].export.deletes, 145);
    assert_eq!(lab.target().len(), 5);
    // A source that shrinks by less than that is believed at once.
    lab.write("ad.ldif", &users(0..4));
    assert_eq!(lab.cycle().connectors[1].export.deletes, 1);
}
