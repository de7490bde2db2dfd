//! `run` under systemd's notify protocol, with a stand-in for systemd: a datagram socket
//! named by `NOTIFY_SOCKET` that records every message. READY=1 comes only once the status
//! page listens, WATCHDOG=1 at half of `WATCHDOG_USEC`, and SIGHUP reloads the config: a bad
//! file is refused with the error logged and the running config stays, a good one is taken.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::web_client::{Daemon, https, wait_for_status_page};
use crate::support::{Background, Must, TestDir, demo_once};

/// One notification as the stand-in saw it.
struct Note {
    at: Instant,
    text: String,
    /// Whether the daemon's log said "status page listening" when the message arrived.
    page_was_listening: bool,
}

/// Records every datagram on `socket` until the test ends.
fn record(socket: UnixDatagram, log: &Path) -> mpsc::Receiver<Note> {
    let (tx, rx) = mpsc::channel();
    let log = log.to_path_buf();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = socket.recv(&mut buf) {
            let note = Note {
                at: Instant::now(),
                text: String::from_utf8_lossy(&buf[..n]).into_owned(),
                page_was_listening: std::fs::read_to_string(&log)
                    .is_ok_and(|t| t.contains("status page listening")),
            };
            if tx.send(note).is_err() {
                return;
            }
        }
    });
    rx
}

/// The next message that is not a watchdog ping, within `limit`.
fn next_state(rx: &mpsc::Receiver<Note>, limit: Duration) -> Note {
    let end = Instant::now() + limit;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        let note = rx
            .recv_timeout(left)
            .must("a notification other than WATCHDOG=1");
        if note.text != "WATCHDOG=1" {
            return note;
        }
    }
}

fn metrics(d: &Daemon) -> String {
    let auth = [("Authorization", "Bearer notify-token-0123456789")];
    let m = https(d, "GET", "/metrics", &auth, "");
    assert_eq!(m.status, 200, "{}", m.body);
    m.body
}

fn staging_metric(d: &Daemon) -> String {
    metrics(d)
        .lines()
        .find(|l| l.starts_with("bridgehead_staging "))
        .must("bridgehead_staging in /metrics")
        .to_string()
}

fn count(log: &Path, needle: &str) -> usize {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .matches(needle)
        .count()
}

fn wait_until(limit: Duration, what: &str, log: &Path, mut done: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "{what} within {limit:?}; log:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

#[test]
fn systemd_notify_ready_watchdog_and_reload_on_sighup() {
    let dir = TestDir::new("systemd-notify");
    demo_once(&dir);
    std::fs::write(dir.join("api.token"), "notify-token-0123456789").must("token file");
    let config = dir.config();
    let good = std::fs::read_to_string(&config)
        .must("reading the config")
        .replace("interval = \"1m\"", "interval = \"2s\"")
        + "\n[web]\nlisten = \"127.0.0.1:0\"\napi_token_file = \"api.token\"\n";
    std::fs::write(&config, &good).must("writing the config");

    let log = dir.join("run.stderr");
    let socket_path = dir.join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).must("binding the notify socket");
    let notes = record(socket, &log);
    let process = Background::start_with_env(
        &["run", "-c", &config.to_string_lossy()],
        &log,
        &[
            ("NOTIFY_SOCKET", socket_path.as_os_str()),
            ("WATCHDOG_USEC", "1000000".as_ref()),
        ],
    );
    let mut d = wait_for_status_page(process, &log, dir.path());

    // READY=1 first, and only after the page listens.
    let ready = next_state(&notes, Duration::from_secs(30));
    assert!(
        ready.text.starts_with("READY=1\n"),
        "first: {:?}",
        ready.text
    );
    assert!(
        ready.page_was_listening,
        "READY=1 arrived before the status page listened"
    );

    // The watchdog: a ping every 0.5 s for WATCHDOG_USEC=1 s.
    let mut pings = Vec::new();
    let until = Instant::now() + Duration::from_millis(2600);
    while let Ok(n) = notes.recv_timeout(until.saturating_duration_since(Instant::now())) {
        assert_eq!(n.text, "WATCHDOG=1", "only pings while nothing happens");
        pings.push(n.at);
    }
    assert!(pings.len() >= 4, "{} pings in 2.6 s", pings.len());
    for w in pings.windows(2) {
        let gap = w[1] - w[0];
        assert!(
            gap > Duration::from_millis(350) && gap < Duration::from_millis(800),
            "watchdog gap {gap:?}, want about 500 ms"
        );
    }
    assert_eq!(staging_metric(&d), "bridgehead_staging 0");

    // A bad config (staging on, but an interval that does not parse): refused, logged,
    // the running config stays and the schedule goes on.
    let bad = format!("staging = true\n{}", good.replace("\"2s\"", "\"soon\""));
    std::fs::write(&config, bad).must("writing the bad config");
    d.signal("HUP");
    let reloading = next_state(&notes, Duration::from_secs(30));
    assert!(
        reloading.text.starts_with("RELOADING=1"),
        "{:?}",
        reloading.text
    );
    let back = next_state(&notes, Duration::from_secs(30));
    assert!(back.text.starts_with("READY=1"), "{:?}", back.text);
    let text = std::fs::read_to_string(&log).must("reading the log");
    let refused = text
        .lines()
        .find(|l| l.contains("new config refused, the running one stays"))
        .must("the refusal in the log");
    assert!(
        refused.contains("soon"),
        "the error names the bad value: {refused}"
    );
    assert_eq!(staging_metric(&d), "bridgehead_staging 0");
    let cycles = count(&log, "scheduled cycle finished");
    wait_until(
        Duration::from_secs(30),
        "a scheduled cycle after the refused reload",
        &log,
        || count(&log, "scheduled cycle finished") > cycles,
    );

    // A good config (staging on, one more target): taken for the next cycle, and the
    // status page shows the new connector.
    let extra = "\n[[connector]]\nname = \"extra\"\ntype = \"ldif\"\nmode = \"target\"\npath = \"extra.ldif\"\nanchor = \"entryUUID\"\n";
    let with_extra = good.replacen("\n[web]", &format!("{extra}\n[web]"), 1);
    assert!(!metrics(&d).contains("connector=\"extra\""));
    std::fs::write(&config, format!("staging = true\n{with_extra}")).must("writing the new config");
    d.signal("HUP");
    let reloading = next_state(&notes, Duration::from_secs(30));
    assert!(
        reloading.text.starts_with("RELOADING=1"),
        "{:?}",
        reloading.text
    );
    let back = next_state(&notes, Duration::from_secs(60));
    assert!(back.text.starts_with("READY=1"), "{:?}", back.text);
    assert!(
        count(&log, "SIGHUP: config reloaded") == 1,
        "the reload is logged"
    );
    assert_eq!(staging_metric(&d), "bridgehead_staging 1");
    assert!(
        metrics(&d).contains("bridgehead_connector_space_objects{connector=\"extra\"} 0"),
        "the reloaded config's connector on the status page"
    );
    let cycles = count(&log, "scheduled cycle finished");
    wait_until(
        Duration::from_secs(30),
        "a scheduled cycle after the reload",
        &log,
        || count(&log, "scheduled cycle finished") > cycles,
    );
    assert!(
        d.wait_for_exit(Duration::from_millis(10)).is_none(),
        "still running"
    );

    d.signal("TERM");
    assert_eq!(d.wait_for_exit(Duration::from_secs(20)), Some(0));
    let mut stopping = false;
    while let Ok(n) = notes.recv_timeout(Duration::from_millis(200)) {
        stopping |= n.text == "STOPPING=1";
    }
    assert!(stopping, "STOPPING=1 on SIGTERM");
}

/// The shipped unit is what systemd accepts (`systemd-analyze verify`, with ExecStart
/// pointed at the binary under test), and it asks for what `run` provides: notify
/// readiness from the main process, the watchdog, and reload by SIGHUP.
#[test]
fn systemd_notify_unit_file_verifies() {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/bridgehead.service"),
    )
    .must("reading systemd/bridgehead.service");
    for line in [
        "Type=notify",
        "NotifyAccess=main",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "WatchdogSec=60s",
    ] {
        assert!(unit.lines().any(|l| l == line), "the unit lacks {line}");
    }
    let dir = TestDir::new("systemd-unit");
    let path = dir.join("bridgehead.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/bridgehead", crate::support::bin()),
    )
    .must("writing the unit");
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .must("running systemd-analyze (Debian package systemd, scripts/deps.sh)");
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !said.contains("bridgehead.service:"),
        "systemd-analyze verify:\n{said}"
    );
}
