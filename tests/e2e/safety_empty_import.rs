//! The empty-import guard against a real slapd source: after a full sync of 150 people,
//! the source connector is pointed at an empty OU (a wrong base DN). The full import that
//! follows finds nothing; it must delete nothing, in the connector space or the target,
//! and stop with an error naming the counts — with a deletion threshold high enough to let
//! all 150 deletes through. `bridgehead approve` then lets that import through once.

use super::ldap_slapd::config_to_ldif;
use crate::support::lab::LdapServer;
use crate::support::lab::slapd;
use crate::support::{Must, TestDir, connector_counts, cycle_json, read_ldif, run};

const PEOPLE: usize = 150;

fn people_under(ou: &str) -> String {
    (0..PEOPLE)
        .map(|i| {
            format!(
                "dn: uid=e{i:04},{ou}\nobjectClass: inetOrgPerson\nuid: e{i:04}\ncn: E {i}\n\
                 sn: E\nmail: e{i:04}@example.test\n\n"
            )
        })
        .collect()
}

fn people_in(path: &std::path::Path) -> usize {
    read_ldif(path)
        .iter()
        .filter(|e| e.class().eq_ignore_ascii_case("inetOrgPerson"))
        .count()
}

#[test]
fn safety_a_source_pointed_at_an_empty_base_deletes_nothing_until_approved() {
    let src = slapd::shared();
    let _hold = src.hold();
    let ou = src.create_ou("empty-guard-people");
    let empty = src.create_ou("empty-guard-nothing");
    src.ldapadd(&people_under(&ou));
    let dir = TestDir::new("empty-import-guard");
    let cfg = config_to_ldif(&dir, src, &ou, "syncrepl");
    // A threshold that would let every delete through: the guard must not depend on it.
    let text = std::fs::read_to_string(&cfg).must("reading the config");
    let text = text.replace(
        "mode = \"target\"",
        "mode = \"target\"\ndeletion_threshold = 1000",
    );
    std::fs::write(&cfg, &text).must("writing the config");
    let first = cycle_json(&cfg, false);
    first.ok();
    let out = dir.join("out.ldif");
    assert_eq!(people_in(&out), PEOPLE);
    let before = std::fs::read(&out).must("reading the target");

    // The wrong base: an OU with nothing in it.
    let wrong = text.replace(
        &format!("include_ous = [\"{ou}\"]"),
        &format!("include_ous = [\"{empty}\"]"),
    );
    assert_ne!(wrong, text, "the config names the OU");
    std::fs::write(&cfg, &wrong).must("writing the config");
    let cfg_arg = cfg.to_string_lossy().into_owned();
    for _ in 0..2 {
        let stopped = run(&["cycle", "-c", &cfg_arg]);
        assert_ne!(stopped.code(), Some(0), "{}", stopped.stderr);
        assert!(
            stopped.stderr.contains(&format!(
                "connector src: the import found 0 objects where the connector space holds {PEOPLE}"
            )) && stopped
                .stderr
                .contains("`bridgehead approve --connector src`"),
            "the error names the counts and the way on:\n{}",
            stopped.stderr
        );
        assert_eq!(
            std::fs::read(&out).must("reading the target"),
            before,
            "a stopped import changed the target"
        );
    }
    // The connector space still holds everyone: nothing was recorded deleted.
    let search = run(&["search", "-c", &cfg_arg, "e0042"]);
    search.ok();
    assert!(
        search.stdout.to_ascii_lowercase().contains("uid=e0042"),
        "{}",
        search.stdout
    );

    // Approved, the import goes through and its deletes follow.
    let approved = run(&["approve", "-c", &cfg_arg, "--connector", "src"]);
    approved.ok();
    assert!(
        approved.stdout.contains(&format!(
            "the import that found 0 of {PEOPLE} objects is approved"
        )),
        "{}",
        approved.stdout
    );
    let after = cycle_json(&cfg, false);
    after.ok();
    let counts = connector_counts(&after.json());
    assert_eq!(counts["src"].0.deletes, PEOPLE as u64, "{counts:?}");
    assert_eq!(counts["out"].1.deletes, PEOPLE as u64, "{counts:?}");
    assert_eq!(people_in(&out), 0);
    // The approval was used once: pointing back and away again stops again.
    std::fs::write(&cfg, &text).must("writing the config");
    cycle_json(&cfg, false).ok();
    assert_eq!(people_in(&out), PEOPLE);
    std::fs::write(&cfg, &wrong).must("writing the config");
    let again = run(&["cycle", "-c", &cfg_arg]);
    assert_ne!(again.code(), Some(0), "{}", again.stderr);
    assert_eq!(people_in(&out), PEOPLE);
}
