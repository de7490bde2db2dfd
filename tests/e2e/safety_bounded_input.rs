//! Unbounded sources against the real binary: an LDIF connector whose `path` is
//! `/dev/zero` fails at once with exit 4 and an error naming the file and line 1 (and
//! without growing), and a source that never ends (a pipe fed forever) stops on SIGTERM.

use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::safety_state_file::setup_with;
use crate::support::{Background, Must, TestDir, run, tail, wait_for_log};

/// Points the config's source at `path`.
fn source_at(config: &Path, path: &str) {
    let text = std::fs::read_to_string(config).must("the config");
    std::fs::write(
        config,
        text.replace("path = \"hr.ldif\"", &format!("path = \"{path}\"")),
    )
    .must("writing the config");
}

#[test]
fn safety_dev_zero_as_ldif_fails_fast_with_the_line() {
    let dir = TestDir::new("input-dev-zero");
    let config = setup_with(dir.path(), &dir.join("state.redb"), 0);
    source_at(&config, "/dev/zero");
    let started = Instant::now();
    let r = run(&["cycle", "-c", &config.to_string_lossy()]);
    let took = started.elapsed();
    eprintln!(
        "/dev/zero: exit {:?} after {took:?}: {}",
        r.code(),
        r.stderr.trim()
    );
    r.expect_code(4);
    assert!(took < Duration::from_secs(20), "{took:?}");
    for w in ["/dev/zero", "line 1", "longer than 16 MiB"] {
        assert!(r.stderr.contains(w), "{w}: {}", tail(&r.stderr));
    }
}

#[test]
fn safety_a_source_that_never_ends_stops_on_sigterm() {
    let dir = TestDir::new("input-endless");
    let config = setup_with(dir.path(), &dir.join("state.redb"), 0);
    let fifo = dir.join("endless.ldif");
    let made = Command::new("mkfifo").arg(&fifo).status().must("mkfifo");
    assert!(made.success());
    source_at(&config, &fifo.to_string_lossy());
    // Entries for ever, until the reader goes away (the write then fails: EPIPE).
    let writer = std::thread::spawn({
        let fifo = fifo.clone();
        move || {
            let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&fifo) else {
                return 0u64;
            };
            let mut n = 0u64;
            while write!(
                f,
                "dn: uid=p{n},ou=people,dc=hr\nobjectClass: inetOrgPerson\nuid: p{n}\ncn: P {n}\nsn: P\n\n"
            )
            .is_ok()
            {
                n += 1;
            }
            n
        }
    });
    let log = dir.join("cycle.stderr");
    let mut cycle = Background::start(&["cycle", "-c", &config.to_string_lossy()], &log);
    // Well into the import: some batches committed, the source still going.
    assert!(
        wait_for_log(&log, "import connector=hr", Duration::from_secs(60)),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(cycle.running(), "the cycle ended by itself");
    let asked = Instant::now();
    cycle.signal("TERM");
    let code = cycle.wait_for_exit(Duration::from_secs(15));
    let took = asked.elapsed();
    let written = writer.join().unwrap_or_default();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    eprintln!(
        "stopped {took:?} after SIGTERM, exit {code:?}, {written} entries written:\n{}",
        tail(&text)
    );
    assert!(code.is_some(), "still running 15 s after SIGTERM");
    assert_ne!(code, Some(0), "an interrupted cycle is not a success");
    assert!(text.contains("shutdown"), "{}", tail(&text));
}
