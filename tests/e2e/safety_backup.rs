//! `bridgehead backup` beside a running daemon whose first cycle is writing, and
//! `bridgehead restore` of each copy on a fresh path (a second machine pointed at the same
//! source and slapd target): the restored appliance's next cycle exports nothing new (no
//! add, no delete reaches the target) and ends with the original's counts. `restore`
//! refuses while the daemon holds the state file.

use std::path::Path;
use std::time::{Duration, Instant};

use super::safety_lab::{Options, Person, count_people, write_config, write_source};
use crate::support::lab::LdapServer;
use crate::support::lab::slapd;
use crate::support::{Background, Must, TestDir, connector_counts, cycle_json, run, wait_for_log};

const PEOPLE: usize = 3000;

/// The counts `backup` prints after verifying its copy: (CS, MV, pending).
fn backup_counts(stdout: &str) -> (u64, u64, u64) {
    let words: Vec<&str> = stdout.split_whitespace().collect();
    let before = |label: &str| -> u64 {
        words
            .windows(2)
            .find(|w| w[1] == label)
            .and_then(|w| w[0].parse().ok())
            .must(&format!("`{label}` count in {stdout:?}"))
    };
    (
        before("connector-space"),
        before("metaverse"),
        before("pending"),
    )
}

fn backup(config: &str, dest: &Path) -> (u64, u64, u64) {
    let b = run(&["backup", "-c", config, &dest.to_string_lossy()]);
    b.ok();
    assert!(b.stdout.contains("written and verified"), "{}", b.stdout);
    backup_counts(&b.stdout)
}

#[test]
fn safety_backup_while_running_then_restore_elsewhere() {
    let dst = slapd::shared();
    let _hold = dst.hold();
    let ou = dst.create_ou("backup-live");
    let dir = TestDir::new("backup-live");
    let people: Vec<Person> = (0..PEOPLE).map(Person::numbered).collect();
    write_source(&dir.join("hr.ldif"), "hr", &people, &[]);
    let opts = Options {
        sources: vec!["hr".into()],
        target_keys: String::new(),
        top: "[web]\nenabled = false\n\n[schedule]\ninterval = \"1h\"\n".into(),
    };
    let cfg = write_config(&dir, dst, &ou, &opts);
    let cfg_arg = cfg.to_string_lossy().into_owned();
    let log = dir.join("run.stderr");
    let mut daemon = Background::start(&["run", "-c", &cfg_arg], &log);
    assert!(
        wait_for_log(&log, "import connector=hr", Duration::from_secs(60)),
        "the daemon never started its cycle:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );

    // Copies while the first cycle writes: each is verified by `backup` itself (it opens
    // the copy and counts it). Taken until the cycle is over, at least one mid-export.
    let mut copies = Vec::new();
    let mut mid_export = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let finished = std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("scheduled cycle finished");
        if finished {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon's cycle did not finish"
        );
        let exported = count_people(dst, &ou);
        let dest = dir.join(&format!("copy-{}.redb", copies.len()));
        let counts = backup(&cfg_arg, &dest);
        if exported > 0 && exported < PEOPLE {
            mid_export.push(copies.len());
        }
        eprintln!(
            "backup {} with {exported} people at the target: {counts:?}",
            copies.len()
        );
        copies.push(dest);
        std::thread::sleep(Duration::from_millis(150));
    }
    assert!(
        copies.len() >= 2 && !mid_export.is_empty(),
        "{} copies, {} taken during the export: the cycle was too quick to back up while it \
         was writing",
        copies.len(),
        mid_export.len()
    );
    // Restoring each takes a cycle: restore the first and last copy, two taken during the
    // export and two more from the middle of the cycle.
    let mut chosen = vec![0, copies.len() - 1, copies.len() / 3];
    chosen.extend(mid_export.iter().take(2));
    chosen.push(mid_export[0] / 2);
    chosen.sort();
    chosen.dedup();

    // restore refuses while the daemon holds the state file.
    let refused = run(&["restore", "-c", &cfg_arg, &copies[0].to_string_lossy()]);
    refused.expect_code(2);
    assert!(
        refused.stderr.contains("in use") && refused.stderr.contains("state.redb"),
        "{}",
        refused.stderr
    );

    // The original, finished: its counts, from a backup taken while it still runs.
    let original = backup(&cfg_arg, &dir.join("final.redb"));
    assert_eq!(original.2, 0, "the original has nothing pending");
    daemon.signal("TERM");
    assert_eq!(daemon.wait_for_exit(Duration::from_secs(10)), Some(0));
    drop(daemon);
    assert_eq!(count_people(dst, &ou), PEOPLE);
    let writes_before = dst
        .logged_writes()
        .into_iter()
        .filter(|w| w.dn.ends_with(&ou) && w.op != "MOD")
        .count();

    // Each copy restored on a fresh path: the next cycle adds and deletes nothing at the
    // target and ends with the original's counts.
    for (n, copy) in copies
        .iter()
        .enumerate()
        .filter(|(n, _)| chosen.contains(n))
    {
        let fresh = TestDir::new(&format!("backup-restored-{n}"));
        std::fs::copy(dir.join("hr.ldif"), fresh.join("hr.ldif")).must("copying the source");
        let fresh_cfg = write_config(&fresh, dst, &ou, &opts);
        let fresh_arg = fresh_cfg.to_string_lossy().into_owned();
        let restored = run(&["restore", "-c", &fresh_arg, &copy.to_string_lossy()]);
        restored.ok();
        let next = cycle_json(&fresh_cfg, false);
        next.ok();
        let counts = connector_counts(&next.json());
        let export = counts["dst"].1;
        assert_eq!(
            (export.adds, export.deletes, counts["dst"].2),
            (0, 0, 0),
            "copy {n}: the restored appliance exported again: {counts:?}"
        );
        assert_eq!(
            backup(&fresh_arg, &fresh.join("check.redb")),
            original,
            "copy {n}: the restored appliance's counts differ from the original's"
        );
    }
    assert_eq!(count_people(dst, &ou), PEOPLE);
    let writes_after = dst
        .logged_writes()
        .into_iter()
        .filter(|w| w.dn.ends_with(&ou) && w.op != "MOD")
        .count();
    assert_eq!(
        writes_after, writes_before,
        "a restored appliance added, deleted or renamed at the target"
    );
}
