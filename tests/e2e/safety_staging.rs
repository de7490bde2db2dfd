//! Staging mode against a real slapd target: a full cycle in staging changes nothing at the
//! target (read back with ldapsearch, entryUUIDs included), and once staging is switched
//! off the next cycle sends exactly the exports staging listed — compared operation by
//! operation with slapd's own log.

use std::collections::BTreeSet;
use std::path::Path;

use super::safety_lab::{Group, Options, Person, read_back, write_config, write_source};
use crate::support::lab::LdapServer;
use crate::support::lab::slapd::{self, Slapd};
use crate::support::{TestDir, connector_counts, cycle_json, norm_dn, run};

/// (operation as slapd logs it, normalised DN) of every export pending for `dst`, as
/// `bridgehead search` lists them object by object.
fn listed_exports(config: &Path, ou: &str) -> BTreeSet<(String, String)> {
    let cfg = config.to_string_lossy();
    let ou_rdn = ou.split(',').next().unwrap_or(ou);
    let r = run(&["search", "-c", &cfg, ou_rdn, "--limit", "100000"]);
    r.ok();
    let mut out = BTreeSet::new();
    let mut current: Option<String> = None;
    for line in r.stdout.lines() {
        // "  ↔ cs:12 [dst] uid=…,ou=… anchor=…" or "disconnector cs:12 [dst] …"
        if let Some((_, rest)) = line.split_once(" [dst] ") {
            current = rest.rsplit_once(" anchor=").map(|(dn, _)| norm_dn(dn));
            continue;
        }
        if line.contains(" [") && line.contains("] ") && line.contains(" anchor=") {
            current = None;
            continue;
        }
        let Some(kind) = line
            .trim_start()
            .strip_prefix("pending ")
            .and_then(|l| l.split(':').next())
        else {
            continue;
        };
        if let Some(dn) = &current {
            let op = match kind {
                "Add" => "ADD",
                "Delete" => "DEL",
                _ => "MOD",
            };
            out.insert((op.to_string(), dn.clone()));
        }
    }
    out
}

/// The writes slapd applied under `ou` after the first `skip` log entries.
fn writes_since(dst: &Slapd, ou: &str, skip: usize) -> BTreeSet<(String, String)> {
    let suffix = format!(",{}", norm_dn(ou));
    dst.logged_writes()
        .into_iter()
        .skip(skip)
        .filter(|w| w.rc == 0)
        .map(|w| (w.op, norm_dn(&w.dn)))
        .filter(|(_, dn)| dn.ends_with(&suffix))
        .collect()
}

fn pending_shown(stdout: &str) -> u64 {
    stdout
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("dst: ")
                .and_then(|r| r.strip_suffix(" pending exports"))
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn safety_staging_exports_nothing_then_exactly_what_it_showed() {
    let dst = slapd::shared();
    let _hold = dst.hold();
    let ou = dst.create_ou("staging");
    let dir = TestDir::new("staging");
    let mut people: Vec<Person> = (0..40).map(Person::numbered).collect();
    let group = |members: &[Person]| Group {
        cn: "staff".into(),
        members: members.iter().map(|p| p.uid.clone()).collect(),
    };
    write_source(&dir.join("hr.ldif"), "hr", &people, &[group(&people[..10])]);
    let staged = Options {
        sources: vec!["hr".into()],
        top: "staging = true\n".into(),
        ..Options::default()
    };
    let live = Options {
        top: String::new(),
        ..staged.clone()
    };
    let cfg = write_config(&dir, dst, &ou, &staged);
    let cfg_arg = cfg.to_string_lossy().into_owned();

    for round in ["first full cycle", "changes"] {
        if round == "changes" {
            // Back in staging, with changes of every kind waiting in the source.
            write_config(&dir, dst, &ou, &staged);
            for p in people.iter_mut().take(5) {
                p.mail = format!("{}@new.example.test", p.uid);
            }
            people.drain(30..33);
            people.extend((100..104).map(Person::numbered));
            write_source(
                &dir.join("hr.ldif"),
                "hr",
                &people,
                &[group(&people[5..15])],
            );
        }
        let before = read_back(dst, &ou);
        let log_mark = dst.logged_writes().len();
        let mut args = vec!["cycle", "-c", cfg_arg.as_str()];
        if round == "first full cycle" {
            args.push("--full");
        }
        let staging = run(&args);
        staging.ok();
        assert!(
            staging.stdout.contains("STAGING MODE"),
            "{round}: {}",
            staging.stdout
        );
        assert_eq!(
            read_back(dst, &ou),
            before,
            "{round}: staging changed the target"
        );
        assert!(
            writes_since(dst, &ou, log_mark).is_empty(),
            "{round}: staging wrote to slapd"
        );
        let listed = listed_exports(&cfg, &ou);
        assert_eq!(
            listed.len() as u64,
            pending_shown(&staging.stdout),
            "{round}: the object listing and the cycle's summary disagree:\n{}",
            staging.stdout
        );
        assert!(!listed.is_empty(), "{round}: nothing to export?");
        if round == "changes" {
            let kinds = |k: &str| listed.iter().filter(|(op, _)| op == k).count();
            // 4 new people, 3 gone, 5 new mails and the group's new members.
            assert_eq!((kinds("ADD"), kinds("DEL"), kinds("MOD")), (4, 3, 6));
        }

        // Out of staging: exactly the listed exports reach slapd, nothing else.
        write_config(&dir, dst, &ou, &live);
        let mark = dst.logged_writes().len();
        let out = cycle_json(&cfg, false);
        out.ok();
        let counts = connector_counts(&out.json());
        assert_eq!(counts["dst"].2, 0, "{round}: {counts:?}");
        assert_eq!(
            writes_since(dst, &ou, mark),
            listed,
            "{round}: what arrived differs from what staging showed"
        );
        let quiet = cycle_json(&cfg, false);
        quiet.ok();
        assert_eq!(connector_counts(&quiet.json())["dst"].1, Default::default());
        let uids: BTreeSet<String> = read_back(dst, &ou)
            .values()
            .filter_map(|a| a.get("uid").and_then(|u| u.first().cloned()))
            .collect();
        let want: BTreeSet<String> = people.iter().map(|p| p.uid.clone()).collect();
        assert_eq!(uids, want, "{round}: the target holds the source's people");
    }
}
