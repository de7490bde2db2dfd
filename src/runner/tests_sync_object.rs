//! Syncing one object through the runner with LDIF files: exactly that object goes
//! through import, sync and export, the report names every step, `--dry-run` stops
//! before export.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::sync_object::Which;
use super::tests::{AD, Lab, config, users};
use crate::model::Dn;

fn user_with_title(i: usize, title: &str) -> String {
    format!(
        "dn: cn=U{i},dc=ad\nuuid: u{i}\nobjectClass: user\nuid: u{i}\nemployeeID: E-u{i}\ntitle: {title}\n\n"
    )
}

#[test]
fn one_changed_object_goes_through_alone_and_a_dry_run_exports_nothing() {
    let mut lab = Lab::new(&config(AD, "delete"), &[("ad.ldif", &users(0..5))]);
    lab.cycle();
    // Two changes in the source; only u1 is synced now.
    lab.write(
        "ad.ldif",
        &format!(
            "{}{}{}{}",
            users(0..1),
            user_with_title(1, "Chief"),
            users(2..5),
            user_with_title(7, "New")
        ),
    );
    let dn = Dn::parse("cn=U1,dc=ad").unwrap();
    let r = lab
        .runner
        .sync_object("ad", &Which::Dn(dn.clone()), false)
        .unwrap();
    assert!(r.found);
    assert_eq!(r.import.updates, 1, "{r:?}");
    assert!(
        r.rules.iter().any(|v| v.rule == "ad-users" && v.in_scope),
        "{r:?}"
    );
    assert!(r.decision.starts_with("stays joined"), "{}", r.decision);
    let title = r.attributes.iter().find(|a| a.name == "title").unwrap();
    assert_eq!(title.values, vec!["Chief".to_string()]);
    assert_eq!(title.connector.as_deref(), Some("ad"));
    assert_eq!(title.rule.as_deref(), Some("ad-users"));
    assert_eq!(r.exports.len(), 1, "{:?}", r.exports);
    let e = &r.exports[0];
    assert_eq!((e.connector.as_str(), e.op), ("out", "update"));
    assert!(e.applied, "{}", e.result);
    assert!(
        e.changes
            .iter()
            .any(|c| c.attr == "title" && c.values == ["Chief"])
    );
    let target = lab.target();
    assert_eq!(
        target["uid=u1,ou=people,o=t"]["title"],
        vec!["Chief".to_string()]
    );
    assert_eq!(target.len(), 5, "u7 was not synced: {target:?}");

    // A dry run of the new user imports and syncs it, and exports nothing.
    let r = lab
        .runner
        .sync_object("ad", &Which::Dn(Dn::parse("cn=U7,dc=ad").unwrap()), true)
        .unwrap();
    assert!(r.dry_run && r.found);
    assert_eq!(r.decision, "projects a new metaverse object");
    assert_eq!(r.exports.len(), 1);
    assert_eq!(r.exports[0].op, "add");
    assert!(!r.exports[0].applied);
    assert_eq!(r.exports[0].result, "not exported: --dry-run");
    assert_eq!(lab.target().len(), 5);
    // It stays pending; the next cycle exports it.
    assert_eq!(lab.cycle().connectors[1].export.adds, 1);
    assert_eq!(lab.target().len(), 6);

    // By anchor; an object gone from the source is recorded deleted and deleted.
    lab.write("ad.ldif", &users(0..1));
    let r = lab
        .runner
        .sync_object("ad", &Which::Anchor("u2".into()), false)
        .unwrap();
    assert!(!r.found);
    assert_eq!(r.import.deletes, 1);
    assert_eq!(r.exports.len(), 1, "{:?}", r.exports);
    assert_eq!((r.exports[0].op, r.exports[0].applied), ("delete", true));
    assert!(!lab.target().contains_key("uid=u2,ou=people,o=t"));
    // An anchor the space does not hold is named.
    let err = lab
        .runner
        .sync_object("ad", &Which::Anchor("nobody".into()), false)
        .unwrap_err();
    assert!(
        err.to_string().contains("no object with anchor nobody"),
        "{err}"
    );
}

#[test]
fn the_status_page_request_syncs_the_object_and_records_who_asked() {
    use crate::runner::handle::Request;
    let mut lab = Lab::new(&config(AD, "delete"), &[("ad.ldif", &users(0..3))]);
    lab.cycle();
    lab.write(
        "ad.ldif",
        &format!("{}{}", users(0..2), user_with_title(2, "Lead")),
    );
    let reply = lab
        .runner
        .execute(Request::SyncObject {
            connector: "ad".into(),
            dn: "cn=U2,dc=ad".into(),
            dry_run: false,
            who: "admin".into(),
        })
        .unwrap();
    assert!(
        reply.contains("Export to out: update uid=u2,ou=people,o=t: applied"),
        "{reply}"
    );
    assert_eq!(
        lab.target()["uid=u2,ou=people,o=t"]["title"],
        vec!["Lead".to_string()]
    );
    let runs = lab.runner.store().read().unwrap().runs(1).unwrap();
    let (_, last) = &runs[0];
    assert_eq!(
        (last.mode.as_str(), last.trigger.as_str()),
        ("sync-object", "admin")
    );
    // A DN that does not parse is refused with the reason, changing nothing.
    let err = lab
        .runner
        .execute(Request::SyncObject {
            connector: "ad".into(),
            dn: "not a dn".into(),
            dry_run: false,
            who: "admin".into(),
        })
        .unwrap_err();
    assert!(err.starts_with("not a dn:"), "{err}");
}
