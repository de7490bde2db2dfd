//! Errors an admin will meet: a state file in use, a typo in the config, a broken LDIF line.

use std::time::{Duration, Instant};

use crate::support::{Background, Must, TestDir, demo_once, run};

fn text_of(dir: &std::path::Path) -> String {
    let mut text = String::new();
    if let Ok(read) = std::fs::read_dir(dir) {
        for f in read.flatten() {
            let path = f.path();
            if path.is_dir() {
                text.push_str(&text_of(&path));
            } else if let Ok(t) = std::fs::read_to_string(&path) {
                text.push_str(&t);
            }
        }
    }
    text
}

#[test]
fn errors_state_file_in_use() {
    let dir = TestDir::new("in-use");
    demo_once(&dir);
    let config = dir.config().to_string_lossy().into_owned();
    let stderr_file = dir.join("run.stderr");
    let mut daemon = Background::start(&["run", "-c", &config], &stderr_file);

    // Wait until its log says it is running (stderr, or the log folder), for at most 10 s.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        assert!(
            daemon.running(),
            "`bridgehead run` exited early:\n{}",
            std::fs::read_to_string(&stderr_file).unwrap_or_default()
        );
        let log =
            std::fs::read_to_string(&stderr_file).unwrap_or_default() + &text_of(&dir.join("logs"));
        let log = log.to_lowercase();
        // The daemon logs "bridgehead running state_file=…" once it holds the state file.
        if log.contains("running") || log.contains("started") || Instant::now() > deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // In case the log line came just before the state file was opened.
    std::thread::sleep(Duration::from_millis(300));

    let second = run(&["cycle", "-c", &config]);
    second.expect_code(2);
    let state = dir.join("state.redb");
    assert!(
        second.stderr.contains("in use"),
        "stderr: {}",
        second.stderr
    );
    assert!(
        second.stderr.contains(&state.display().to_string()),
        "stderr does not name {}: {}",
        state.display(),
        second.stderr
    );
    assert!(daemon.running(), "the second process disturbed the first");
}

#[test]
fn errors_config_typo_names_the_line() {
    let dir = TestDir::new("typo");
    demo_once(&dir);
    let good = dir.config();
    run(&["check", "-c", &good.to_string_lossy()]).ok();

    let text = std::fs::read_to_string(&good).must("reading the demo config");
    let mut lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.get(6).copied(),
        Some("interval = \"1m\""),
        "line 7 of the demo config"
    );
    lines[6] = "intervall = \"1m\"";
    let bad = dir.join("typo.toml");
    std::fs::write(&bad, lines.join("\n") + "\n").must("writing the bad config");

    let check = run(&["check", "-c", &bad.to_string_lossy()]);
    check.expect_code(2);
    assert!(check.stderr.contains(":7:"), "stderr: {}", check.stderr);
    assert!(
        check.stderr.contains("intervall"),
        "stderr: {}",
        check.stderr
    );
}

#[test]
fn errors_broken_ldif_names_the_line() {
    let dir = TestDir::new("broken-ldif");
    demo_once(&dir);
    let source = dir.join("contoso.ldif");
    let text = std::fs::read_to_string(&source).must("reading the demo source");
    let mut lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.get(11).copied(),
        Some("objectClass: domainDNS"),
        "line 12 of the source"
    );
    lines[11] = "objectClass domainDNS";
    std::fs::write(&source, lines.join("\n") + "\n").must("writing the broken source");
    let target = dir.join("directory.ldif");
    let target_before = std::fs::read(&target).must("reading the target");

    let cycle = run(&["cycle", "-c", &dir.config().to_string_lossy()]);
    assert_ne!(
        cycle.code(),
        Some(0),
        "a broken source was accepted: {}",
        cycle.stderr
    );
    // Bad data has its own code: 3 means "directory unreachable".
    cycle.expect_code(4);
    assert!(cycle.stderr.contains("line 12"), "stderr: {}", cycle.stderr);
    assert!(
        cycle.stderr.contains("contoso.ldif"),
        "stderr: {}",
        cycle.stderr
    );
    // A half-read source must not be taken as "everything else was deleted".
    assert!(
        std::fs::read(&target).must("reading the target again") == target_before,
        "the target changed after a failed import"
    );
}
