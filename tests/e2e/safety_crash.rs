//! Crash torture with a real slapd target: 30 first cycles, each killed with SIGKILL at a
//! random moment of its import, sync or export phase (10 runs each), then one normal cycle.
//! Every run's target OU must end identical to an uninterrupted run's, and slapd's own
//! operation log must show each entry added exactly once across the kill and the recovery.
//!
//! What is counted at the target (slapd's `-d stats` log, per DN under the run's OU):
//! successful ADDs (must be exactly 1 per entry), successful DELs (must be 0: nothing is
//! ever deleted here), refused ADDs (a replay the directory turned away; reported, allowed
//! because it changed nothing) and MODs (a replayed modify is allowed: the final content
//! check proves it was idempotent).
//!
//! The seed is printed; `BRIDGEHEAD_CRASH_SEED=<n>` replays a run's kill moments.

use std::collections::BTreeMap;
use std::io::BufRead as _;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::safety_lab::{Content, Group, Options, Person, read_back, write_config, write_source};
use crate::support::lab::LdapServer;
use crate::support::lab::slapd::{self, SlapdOptions};
use crate::support::{Must, TestDir, bin, connector_counts, cycle_json, norm_dn};

const PEOPLE: usize = 400;
const GROUPS: usize = 8;
const RUNS: usize = 30;

/// A small deterministic generator (xorshift64*): the kill moments follow from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A fraction in [0, 1).
    fn fraction(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The phase a kill aims at: the log line that opens it, and the log line that opens the
/// next one (to measure how long it lasts in the uninterrupted run).
#[derive(Clone, Copy, Debug)]
enum Phase {
    Import,
    Sync,
    Export,
}

impl Phase {
    fn start_marker(self) -> &'static str {
        match self {
            Phase::Import => "import connector=hr",
            Phase::Sync => "import connector=dst",
            Phase::Export => "sync done",
        }
    }
}

/// Runs `bridgehead cycle` and SIGKILLs it `delay` after the first stderr line containing
/// `marker`. Returns whether it was killed (false: it finished first, or never logged the
/// marker) and the stderr seen.
fn cycle_killed_after(config: &str, marker: &str, delay: Duration) -> (bool, String) {
    let mut child = Command::new(bin())
        .args(["cycle", "-c", config])
        .env("BRIDGEHEAD_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .must("starting bridgehead cycle");
    let stderr = child.stderr.take().must("the cycle's stderr");
    let (tx, rx) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut log = String::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = None;
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(1)) {
            Ok(line) => {
                if seen.is_none() && line.contains(marker) {
                    seen = Some(Instant::now());
                }
                log.push_str(&line);
                log.push('\n');
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if seen.is_some_and(|t| t.elapsed() >= delay) {
            break;
        }
    }
    let killed = matches!(child.try_wait(), Ok(None)) && seen.is_some();
    // SIGKILL (std's kill on Unix): no chance to clean up.
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    for line in rx.try_iter() {
        log.push_str(&line);
        log.push('\n');
    }
    (killed, log)
}

/// The content with the run's OU cut off every DN, so runs in different OUs compare;
/// entryUUID is left out (each OU has its own entries).
fn relative(content: &Content, ou: &str) -> Content {
    let suffix = format!(",{}", norm_dn(ou));
    let cut = |dn: &str| dn.strip_suffix(&suffix).unwrap_or(dn).to_string();
    content
        .iter()
        .map(|(dn, attrs)| {
            let attrs = attrs
                .iter()
                .filter(|(name, _)| name.as_str() != "entryuuid")
                .map(|(name, values)| {
                    let values = if name == "member" {
                        values.iter().map(|v| cut(v)).collect()
                    } else {
                        values.clone()
                    };
                    (name.clone(), values)
                })
                .collect();
            (cut(dn), attrs)
        })
        .collect()
}

/// Per-DN counts of what slapd applied under `ou`.
#[derive(Debug, Default)]
struct Applied {
    adds: BTreeMap<String, usize>,
    refused_adds: usize,
    deletes: usize,
    modifies: usize,
}

fn applied(dst: &slapd::Slapd, ou: &str) -> Applied {
    let suffix = format!(",{}", norm_dn(ou));
    let mut out = Applied::default();
    for w in dst.logged_writes() {
        let dn = norm_dn(&w.dn);
        if !dn.ends_with(&suffix) {
            continue;
        }
        match (w.op.as_str(), w.rc) {
            ("ADD", 0) => *out.adds.entry(dn).or_default() += 1,
            ("ADD", _) => out.refused_adds += 1,
            ("DEL", 0) => out.deletes += 1,
            ("MOD", 0) | ("MODRDN", 0) => out.modifies += 1,
            _ => {}
        }
    }
    out
}

#[test]
fn safety_crash_torture_kill_nine_thirty_times() {
    let started = Instant::now();
    let seed = std::env::var("BRIDGEHEAD_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                | 1
        });
    eprintln!("crash torture: seed {seed} (BRIDGEHEAD_CRASH_SEED={seed} replays it)");
    let mut rng = Rng(seed);

    let dst = slapd::start(SlapdOptions::default());
    let people: Vec<Person> = (0..PEOPLE).map(Person::numbered).collect();
    let groups: Vec<Group> = (0..GROUPS)
        .map(|g| Group {
            cn: format!("team{g}"),
            members: people
                .iter()
                .skip(g)
                .step_by(GROUPS / 2)
                .map(|p| p.uid.clone())
                .collect(),
        })
        .collect();
    let setup = |name: &str| {
        let ou = dst.create_ou(name);
        let dir = TestDir::new(name);
        write_source(&dir.join("hr.ldif"), "hr", &people, &groups);
        let cfg = write_config(
            &dir,
            &dst,
            &ou,
            &Options {
                sources: vec!["hr".into()],
                target_keys: "deletion_threshold = 5000".into(),
                ..Options::default()
            },
        );
        (dir, cfg, ou)
    };

    // The uninterrupted reference, and how long each phase took in it.
    let (_ref_dir, ref_cfg, ref_ou) = setup("crash-reference");
    let reference = cycle_json(&ref_cfg, false);
    reference.ok();
    let json = reference.json();
    let phase_ms = |name: &str, connector: Option<&str>| -> u64 {
        json["phases"]
            .as_array()
            .must("phases")
            .iter()
            .filter(|p| p["phase"] == name && connector.is_none_or(|c| p["connector"] == c))
            .map(|p| p["ms"].as_u64().unwrap_or(0))
            .sum()
    };
    // Per phase: (time from its marker line to its start, how long it lasts).
    let durations = [
        (Phase::Import, (0, phase_ms("import", Some("hr")))),
        (
            Phase::Sync,
            (phase_ms("import", Some("dst")), phase_ms("sync", None)),
        ),
        (
            Phase::Export,
            (0, phase_ms("export", None) + phase_ms("confirm", None)),
        ),
    ];
    eprintln!("crash torture: uninterrupted phases (ms): {durations:?}");
    let want = relative(&read_back(&dst, &ref_ou), &ref_ou);
    assert_eq!(want.len(), PEOPLE + GROUPS, "the reference run is complete");

    let mut survived = 0;
    let (mut lost, mut doubled) = (0usize, 0usize);
    let mut report = Vec::new();
    let mut landed: BTreeMap<&str, usize> = BTreeMap::new();
    for n in 0..RUNS {
        let (phase, (offset, span)) = durations[n % 3];
        let mut fraction = rng.fraction();
        let mut attempt = 0;
        let (dir, cfg, ou, killed_at, reached) = loop {
            // Each attempt in a fresh OU and folder, so that the kill hits a first cycle
            // and the target's log holds only this attempt's operations.
            let (dir, cfg, ou) = setup(&format!("crash-{n}-{attempt}"));
            let cfg_arg = cfg.to_string_lossy().into_owned();
            // At least 1 ms: the marker line itself still belongs to the phase before.
            let delay =
                Duration::from_micros(offset * 1000 + ((span * 1000) as f64 * fraction) as u64)
                    .max(Duration::from_millis(1));
            let (killed, log) = cycle_killed_after(&cfg_arg, phase.start_marker(), delay);
            if killed {
                // Where the cycle really was, by its last log lines (timing varies).
                let reached = if log.contains("sync done") {
                    "export/confirm"
                } else if log.contains("import connector=dst") {
                    "target import/sync"
                } else {
                    "source import"
                };
                break (dir, cfg, ou, delay, reached);
            }
            // Finished first (the machine was faster this time): aim earlier in the phase.
            attempt += 1;
            assert!(
                attempt < 6,
                "run {n}: the cycle kept finishing before its kill in {phase:?}\n{log}"
            );
            fraction /= 2.0;
        };
        *landed.entry(reached).or_default() += 1;
        let at_kill = applied(&dst, &ou);
        let recovery = cycle_json(&cfg, false);
        let recovered_ok = recovery.code() == Some(0);
        let got = relative(&read_back(&dst, &ou), &ou);
        let after = applied(&dst, &ou);
        let run_lost = want.keys().filter(|k| !got.contains_key(*k)).count();
        let run_doubled = after.adds.values().filter(|c| **c > 1).count();
        let same = got == want;
        lost += run_lost;
        doubled += run_doubled;
        let quiet = recovered_ok && {
            let again = cycle_json(&cfg, false);
            again.code() == Some(0)
                && connector_counts(&again.json())["dst"].1 == Default::default()
        };
        let ok = recovered_ok && same && run_doubled == 0 && after.deletes == 0 && quiet;
        if ok {
            survived += 1;
        }
        let line = format!(
            "run {n:2}: {phase:?} +{killed_at:?} (in {reached}): {} adds before the kill, {} after recovery \
             ({} refused replays, {} modifies, {} deletes); same target: {same}; quiet \
             afterwards: {quiet}",
            at_kill.adds.len(),
            after.adds.len(),
            after.refused_adds,
            after.modifies,
            after.deletes
        );
        eprintln!("crash torture: {line}");
        if !ok {
            report.push(format!(
                "{line}\n  recovery exit {:?}: {}\n  missing: {run_lost}, doubled: {run_doubled}, \
                 differing: {:?}",
                recovery.code(),
                crate::support::tail(&recovery.stderr),
                got.iter()
                    .filter(|(k, v)| want.get(*k) != Some(*v))
                    .map(|(k, _)| k)
                    .take(5)
                    .collect::<Vec<_>>()
            ));
        }
        drop(dir);
    }
    eprintln!(
        "crash torture: seed {seed}: {survived}/{RUNS} runs survived; {lost} objects lost, \
         {doubled} added twice; kills landed in {landed:?}; {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        report.is_empty(),
        "seed {seed}: {} of {RUNS} runs did not converge:\n{}",
        report.len(),
        report.join("\n")
    );
}
