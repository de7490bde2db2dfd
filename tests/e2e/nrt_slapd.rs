//! Near-real-time mode against OpenLDAP: a slapd source watched with syncrepl
//! refreshAndPersist carries a modify to the slapd target within seconds, with the
//! schedule set to hours; after the source restarts, the watch resumes from its cookie and
//! changes keep arriving.

use std::time::Duration;

use super::nrt_lab::{
    Daemon, ldap_person, set_description, slapd_config, slapd_value, wait_for_value,
};
use crate::support::TestDir;
use crate::support::lab::LdapServer;
use crate::support::lab::slapd::{self, SlapdOptions};

#[test]
fn nrt_slapd_persist_modify_arrives_within_seconds_and_after_a_restart() {
    let src = slapd::start(SlapdOptions {
        syncprov: true,
        refint: false,
    });
    let target = slapd::shared();
    let src_ou = src.create_ou("nrt-src");
    let target_ou = target.create_ou("nrt-slapd-target");
    src.ldapadd(&ldap_person(&src_ou, "nrt-bob", "first"));
    let bob = format!("uid=nrt-bob,{src_ou}");

    let dir = TestDir::new("nrt-slapd");
    let config = slapd_config(&dir, &src, &src_ou, target, &target_ou);
    let daemon = Daemon::start(&dir, &config);
    assert!(
        daemon
            .text()
            .contains("watching for changes (syncrepl refreshAndPersist)"),
        "log:\n{}",
        daemon.text()
    );
    let read = || slapd_value(target, &target_ou, "nrt-bob", "description");
    assert_eq!(read().as_deref(), Some("first"));

    src.ldapmodify(&set_description(&bob, "second"));
    let took = wait_for_value(Duration::from_secs(10), "second", read)
        .unwrap_or_else(|e| panic!("{e}; log:\n{}", daemon.text()));
    eprintln!("slapd modify visible in the target after {took:?}");

    {
        let _alone = src.exclusive();
        src.stop();
        daemon.wait_log("watch lost", Duration::from_secs(10));
        // Changed while nobody watches: the resumed watch's delta import must find it.
        src.start();
    }
    src.ldapmodify(&set_description(&bob, "third"));
    wait_for_value(Duration::from_secs(30), "third", read)
        .unwrap_or_else(|e| panic!("{e}; log:\n{}", daemon.text()));
    daemon.wait_log("watch re-established", Duration::from_secs(30));
    src.ldapmodify(&set_description(&bob, "fourth"));
    let took = wait_for_value(Duration::from_secs(10), "fourth", read)
        .unwrap_or_else(|e| panic!("{e}; log:\n{}", daemon.text()));
    eprintln!("slapd modify after the restart visible after {took:?}");
    let log = daemon.stop();
    assert_eq!(
        log.matches("scheduled cycle finished").count(),
        1,
        "only the watch carried changes; log:\n{log}"
    );
}
