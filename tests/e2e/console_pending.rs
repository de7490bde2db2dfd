//! `bridgehead pending` in staging against a real slapd target: the LDIF change records
//! it prints, applied with `ldapmodify` to a copy of the target (a second slapd loaded
//! with the target's entries), give exactly the tree that leaving staging gives the
//! target itself. The text and JSON forms list the same exports.

use super::safety_lab::{Group, Options, Person, read_back, write_config, write_source};
use crate::support::lab::LdapServer;
use crate::support::lab::Scope;
use crate::support::lab::slapd::{self, SlapdOptions};
use crate::support::{Must, TestDir, cycle_json, run, write_ldif};

fn people(range: std::ops::Range<usize>) -> Vec<Person> {
    range.map(Person::numbered).collect()
}

fn team(members: &[Person]) -> Vec<Group> {
    vec![Group {
        cn: "team".into(),
        members: members.iter().map(|p| p.uid.clone()).collect(),
    }]
}

/// The tree without entryUUID (a copy's entries have their own).
fn without_uuids(mut c: super::safety_lab::Content) -> super::safety_lab::Content {
    for attrs in c.values_mut() {
        attrs.remove("entryuuid");
    }
    c
}

#[test]
fn console_pending_ldif_applied_to_a_copy_gives_what_leaving_staging_gives() {
    let dst = slapd::shared();
    let _hold = dst.hold();
    let name = "pending-review";
    let ou = dst.create_ou(name);
    let dir = TestDir::new(name);
    let src = dir.join("hr.ldif");
    let first = people(0..40);
    write_source(&src, "hr", &first, &team(&first[..30]));
    let opts = Options {
        sources: vec!["hr".into()],
        ..Options::default()
    };
    let cfg = write_config(&dir, dst, &ou, &opts);
    cycle_json(&cfg, false).ok();

    // Staging from here on: five leave, five arrive, one changes mail, the team changes.
    let staged = Options {
        top: "staging = true".into(),
        ..opts.clone()
    };
    write_config(&dir, dst, &ou, &staged);
    let mut now = people(5..45);
    now[3].mail = "new.mail@example.test".into();
    write_source(&src, "hr", &now, &team(&now[10..35]));
    cycle_json(&cfg, false).ok();

    let cfg_arg = cfg.to_string_lossy().into_owned();
    let ldif = run(&[
        "pending",
        "-c",
        &cfg_arg,
        "--connector",
        "dst",
        "--format",
        "ldif",
    ]);
    ldif.ok();
    assert_eq!(
        ldif.stdout.matches("changetype: delete").count(),
        5,
        "{}",
        ldif.stdout
    );
    assert_eq!(
        ldif.stdout.matches("changetype: add").count(),
        5,
        "{}",
        ldif.stdout
    );
    let json = run(&[
        "pending",
        "-c",
        &cfg_arg,
        "--connector",
        "dst",
        "--format",
        "json",
    ]);
    json.ok();
    let list = json.json();
    let exports = list["exports"].as_array().must("the exports");
    // 5 deletes, 5 adds, the changed mail and the team.
    assert_eq!(exports.len(), 12, "{list}");
    assert!(
        exports
            .iter()
            .any(|e| e["op"] == "update" && e["changes"][0]["values"][0] == "new.mail@example.test"),
        "{list}"
    );
    let text = run(&["pending", "-c", &cfg_arg, "--connector", "dst"]);
    text.ok();
    assert!(
        text.stdout.contains("dst (ldap): 12 pending exports"),
        "{}",
        text.stdout
    );
    // An LDIF review of a non-LDAP connector is a usage error, named.
    let wrong = run(&[
        "pending",
        "-c",
        &cfg_arg,
        "--connector",
        "hr",
        "--format",
        "ldif",
    ]);
    wrong.expect_code(2);
    assert!(wrong.stderr.contains("ldif connector"), "{}", wrong.stderr);

    // A copy of the target as it stands (staging wrote nothing to it).
    let copy = slapd::start(SlapdOptions::default());
    let copy_ou = copy.create_ou(name);
    assert_eq!(copy_ou.to_lowercase(), ou.to_lowercase());
    let entries = dst.ldapsearch(
        &ou,
        Scope::One,
        "(|(objectClass=inetOrgPerson)(objectClass=groupOfNames))",
        &["*"],
    );
    let dump = dir.join("copy.ldif");
    write_ldif(&dump, &entries);
    copy.ldapadd(&std::fs::read_to_string(&dump).must("reading the copy"));
    assert_eq!(
        without_uuids(read_back(&copy, &ou)),
        without_uuids(read_back(dst, &ou)),
        "the copy starts equal"
    );
    copy.ldapmodify(&ldif.stdout);

    // Leaving staging exports what was pending to the target itself.
    write_config(&dir, dst, &ou, &opts);
    cycle_json(&cfg, false).ok();
    let target = without_uuids(read_back(dst, &ou));
    assert_eq!(target.len(), 41, "40 people and the team");
    assert_eq!(
        without_uuids(read_back(&copy, &ou)),
        target,
        "the reviewed LDIF and the export differ"
    );
}
