//! SIGTERM and SIGINT in the middle of an export batch to a real slapd target: the daemon
//! (`run`) and a one-shot `cycle` each stop within 10 seconds after finishing the batch
//! they are in; the next cycle completes the export, and slapd's log shows every entry
//! added exactly once.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::safety_lab::{Options, Person, count_people, write_config, write_source};
use crate::support::lab::LdapServer;
use crate::support::lab::slapd::{self, Slapd};
use crate::support::{Background, TestDir, connector_counts, cycle_json, norm_dn};

const PEOPLE: usize = 3000;

/// Waits until the export into `ou` is under way (some people there, not all).
fn wait_mid_export(dst: &Slapd, ou: &str, what: &str) -> usize {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let n = count_people(dst, ou);
        if n > 0 && n < PEOPLE {
            return n;
        }
        assert!(n < PEOPLE, "{what}: the export finished before the signal");
        assert!(
            Instant::now() < deadline,
            "{what}: the export never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Successful ADDs per DN under `ou`, from slapd's own log.
fn adds(dst: &Slapd, ou: &str) -> BTreeMap<String, usize> {
    let suffix = format!(",{}", norm_dn(ou));
    let mut out = BTreeMap::new();
    for w in dst.logged_writes() {
        let dn = norm_dn(&w.dn);
        if w.op == "ADD" && w.rc == 0 && dn.ends_with(&suffix) {
            *out.entry(dn).or_default() += 1;
        }
    }
    out
}

#[test]
fn safety_signals_mid_export_stop_within_ten_seconds() {
    let dst = slapd::shared();
    let _hold = dst.hold();
    for (signal, command) in [("TERM", "run"), ("INT", "cycle")] {
        let name = format!("signal-{}-{command}", signal.to_lowercase());
        let ou = dst.create_ou(&name);
        let dir = TestDir::new(&name);
        let people: Vec<Person> = (0..PEOPLE).map(Person::numbered).collect();
        write_source(&dir.join("hr.ldif"), "hr", &people, &[]);
        let cfg = write_config(
            &dir,
            dst,
            &ou,
            &Options {
                sources: vec!["hr".into()],
                top: "[web]\nenabled = false\n".into(),
                ..Options::default()
            },
        );
        let cfg_arg = cfg.to_string_lossy().into_owned();
        let log = dir.join("stderr");
        let mut process = Background::start(&[command, "-c", &cfg_arg], &log);
        let at = wait_mid_export(dst, &ou, &name);
        let sent = Instant::now();
        process.signal(signal);
        let code = process.wait_for_exit(Duration::from_secs(10));
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let took = sent.elapsed();
        eprintln!(
            "{name}: SIG{signal} with {at} of {PEOPLE} exported; exit {code:?} after {took:?}"
        );
        // The daemon stops cleanly (0); a one-shot cycle reports the interruption (1).
        let want = if command == "run" { 0 } else { 1 };
        assert_eq!(
            code,
            Some(want),
            "{name}: exit {want} within 10 s; log:\n{}",
            crate::support::tail(&text)
        );
        assert!(
            text.contains(&format!("SIG{signal}")),
            "the log names the signal:\n{text}"
        );
        drop(process);
        let stopped_at = count_people(dst, &ou);
        // Signalled before the last batch of 1,000: the stop must not wait for the rest.
        if at < PEOPLE - 1000 {
            assert!(
                stopped_at < PEOPLE,
                "{name}: the stop waited for the whole export"
            );
        }

        // The next cycle finishes the work; nothing was added twice.
        let next = cycle_json(&cfg, false);
        next.ok();
        assert_eq!(connector_counts(&next.json())["dst"].2, 0);
        assert_eq!(count_people(dst, &ou), PEOPLE);
        let added = adds(dst, &ou);
        assert_eq!(added.len(), PEOPLE, "{name}: every person added");
        let twice: Vec<_> = added.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "{name}: added twice: {twice:?}");
    }
}
