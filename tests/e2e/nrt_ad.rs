//! Near-real-time mode against Samba AD: with the schedule set to hours, a modify reaches
//! the slapd target through the change-notification watch alone; after Samba restarts
//! (the notification connection killed server-side) the watch comes back and changes keep
//! arriving; a burst of 1,000 modifies in one LDIF arrives complete, last write winning.

use std::time::Duration;

use super::nrt_lab::{Daemon, ad_config, ad_user, set_description, slapd_value, wait_for_value};
use crate::support::TestDir;
use crate::support::lab::samba;
use crate::support::lab::slapd;
use crate::support::lab::{LdapServer, Scope};

/// The bound for a change to travel with no scheduled cycle.
const LIMIT: Duration = Duration::from_secs(30);

#[test]
fn nrt_ad_modify_arrives_and_survives_a_samba_restart() {
    let ad = samba::corp();
    let _up = ad.hold();
    let target = slapd::shared();
    let ad_ou = ad.create_ou("nrt-ad");
    let target_ou = target.create_ou("nrt-ad-target");
    ad.ldapadd(&ad_user(&ad_ou, "nrt-ann", "first"));
    let ann = format!("CN=nrt-ann,{ad_ou}");

    let dir = TestDir::new("nrt-ad");
    let config = ad_config(&dir, ad, &ad_ou, target, &target_ou);
    let daemon = Daemon::start(&dir, &config);
    let read = || slapd_value(target, &target_ou, "nrt-ann", "description");
    assert_eq!(
        read().as_deref(),
        Some("first"),
        "the first cycle exported ann"
    );
    assert!(
        daemon
            .text()
            .contains("watching for changes (change notification)"),
        "Samba takes the notification control; log:\n{}",
        daemon.text()
    );

    ad.ldapmodify(&set_description(&ann, "second"));
    let took = wait_for_value(LIMIT, "second", read)
        .unwrap_or_else(|e| panic!("{e}; log:\n{}", daemon.text()));
    eprintln!("AD modify visible in the target after {took:?}");

    // Kill the notification connection from the server side.
    daemon.restart_under(ad);
    ad.ldapmodify(&set_description(&ann, "third"));
    let took = wait_for_value(LIMIT, "third", read)
        .unwrap_or_else(|e| panic!("{e}; log:\n{}", daemon.text()));
    eprintln!("AD modify after the restart visible after {took:?}");

    // Notifications never report a delete; the watch's USN probe sees the tombstone.
    ad.ldapdelete(&ann);
    wait_for_value(LIMIT, "gone", || {
        Some(read().map_or("gone".to_string(), |v| format!("still {v}")))
    })
    .unwrap_or_else(|e| panic!("delete: {e}; log:\n{}", daemon.text()));

    let log = daemon.stop();
    if std::env::var_os("NRT_SHOW_LOG").is_some() {
        eprintln!("{log}");
    }
    // Each loss is logged once and followed by its recovery (a slow stop of Samba can
    // drop the watch twice: once while stopping, once when gone); the schedule never
    // ran a second time.
    let lost = log.matches("watch lost").count();
    assert!(lost >= 1, "log:\n{log}");
    assert_eq!(
        log.matches("watch re-established").count(),
        lost,
        "every loss is followed by one recovery; log:\n{log}"
    );
    assert_eq!(
        log.matches("scheduled cycle finished").count(),
        1,
        "log:\n{log}"
    );
    assert!(log.contains("watch cycle finished"), "log:\n{log}");
}

#[test]
fn nrt_ad_burst_of_1000_modifies_arrives_complete_last_write_wins() {
    let ad = samba::corp();
    let _up = ad.hold();
    let target = slapd::shared();
    let ad_ou = ad.create_ou("nrt-burst");
    let target_ou = target.create_ou("nrt-burst-target");
    const PEOPLE: usize = 200;
    let mut ldif = String::new();
    for i in 0..PEOPLE {
        ldif.push_str(&ad_user(&ad_ou, &format!("nrt-b{i}"), "v0"));
    }
    ad.ldapadd(&ldif);

    let dir = TestDir::new("nrt-burst");
    let config = ad_config(&dir, ad, &ad_ou, target, &target_ou);
    let daemon = Daemon::start(&dir, &config);

    // 1,000 modifies in one LDIF: everyone five times in rounds, so an object's writes are
    // spread through the burst, and the last round differs per person.
    let mut burst = String::new();
    let mut want = vec![String::new(); PEOPLE];
    for round in 1..=5 {
        for (i, w) in want.iter_mut().enumerate() {
            let value = if round == 5 {
                format!("final-{i}")
            } else {
                format!("v{round}")
            };
            burst.push_str(&set_description(&format!("CN=nrt-b{i},{ad_ou}"), &value));
            *w = value;
        }
    }
    let started = std::time::Instant::now();
    ad.ldapmodify(&burst);
    let written = started.elapsed();
    let last = PEOPLE - 1;
    wait_for_value(Duration::from_secs(60), &want[last], || {
        slapd_value(target, &target_ou, &format!("nrt-b{last}"), "description")
    })
    .unwrap_or_else(|e| panic!("{e}; log:\n{}", daemon.text()));
    // Everything, not just the last: one search of the whole target OU.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut wrong = Vec::new();
    while std::time::Instant::now() < deadline {
        let got = target.ldapsearch(
            &target_ou,
            Scope::Sub,
            "(uid=nrt-b*)",
            &["uid", "description"],
        );
        wrong = (0..PEOPLE)
            .filter(|i| {
                let uid = format!("nrt-b{i}");
                !got.iter().any(|e| {
                    e.first("uid").as_deref() == Some(&uid)
                        && e.values("description") == vec![want[*i].clone()]
                })
            })
            .collect();
        if wrong.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let done = started.elapsed();
    assert!(
        wrong.is_empty(),
        "not the last value: {wrong:?}; log:\n{}",
        daemon.text()
    );
    let log = daemon.stop();
    let cycles = log.matches("watch cycle finished").count();
    eprintln!(
        "burst of 1000 AD modifies: written in {written:?}, all visible after {done:?}, {cycles} watch cycles"
    );
    // A burst collapses into batches, not one cycle per change. Samba takes these writes
    // at ~20 a second and the watch samples AD every 0.5 s (the USN probe, plus Samba's
    // own 5 s notification re-runs), so a cycle carries about ten changes here.
    let bound = 1000 / 4;
    assert!(
        (1..=bound).contains(&cycles),
        "{cycles} watch cycles for a {done:?} burst; log:\n{log}"
    );
}
