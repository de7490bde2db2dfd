//! The daemon under a bounded attack on loopback: failed logins on keep-alive connections,
//! slow bodies up to the per-address cap, and long searches, from their own 127.0.0.x
//! addresses for 30 s. Meanwhile scheduled cycles (every 5 s) must keep finishing and
//! `/healthz` must answer within 100 ms (p99 printed, on a kept-alive connection and on a
//! fresh connection per probe).

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::web_abuse::{connect_from, exchange, login_cookie, try_login};
use super::web_client::start_run;
use crate::support::{Must, TestDir, demo_once};

const ATTACK: Duration = Duration::from_secs(30);
const TOKEN: &str = "load-token-0123456789";

fn p(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn cycles(dir: &TestDir) -> usize {
    std::fs::read_to_string(dir.join("run.stderr"))
        .unwrap_or_default()
        .matches("scheduled cycle finished")
        .count()
}

#[test]
fn web_load_daemon_keeps_syncing_and_healthz_stays_fast_under_attack() {
    let dir = TestDir::new("web-load");
    demo_once(&dir);
    let config = dir.config();
    let text = std::fs::read_to_string(&config).must("the config");
    assert!(
        text.contains("interval = \"1m\""),
        "the demo's schedule changed"
    );
    std::fs::write(
        &config,
        text.replace("interval = \"1m\"", "interval = \"5s\""),
    )
    .must("writing the config");
    let d = Arc::new(start_run(&dir, Some(TOKEN)));
    // The first scheduled cycle, before the attack.
    let deadline = Instant::now() + Duration::from_secs(60);
    while cycles(&dir) == 0 {
        assert!(Instant::now() < deadline, "no scheduled cycle");
        std::thread::sleep(Duration::from_millis(100));
    }

    let stop = Arc::new(AtomicBool::new(false));
    let attempts = Arc::new(AtomicU64::new(0));
    let mut attackers = Vec::new();
    // Failed logins, as fast as they are answered, on keep-alive connections.
    for a in 60..64u8 {
        let (d, stop, n) = (Arc::clone(&d), Arc::clone(&stop), Arc::clone(&attempts));
        attackers.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let Ok(mut conn) = connect_from(&d, [127, 0, 0, a]) else {
                    continue;
                };
                let (cookie, token) = login_cookie(&mut conn);
                while !stop.load(Ordering::Relaxed) {
                    try_login(&mut conn, &cookie, &token, "wrong");
                    n.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    // Slow bodies: announced, never sent, up to the per-address cap, reopened when cut.
    for a in 70..72u8 {
        let (d, stop, n) = (Arc::clone(&d), Arc::clone(&stop), Arc::clone(&attempts));
        attackers.push(std::thread::spawn(move || {
            let mut held = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                held.retain_mut(|c: &mut super::web_abuse::Conn| {
                    c.write_all(b"").and_then(|()| c.flush()).is_ok()
                });
                if held.len() < 20 {
                    if let Ok(mut c) = connect_from(&d, [127, 0, 0, a]) {
                        let _ = c.write_all(
                            b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n\r\n",
                        );
                        let _ = c.flush();
                        n.fetch_add(1, Ordering::Relaxed);
                        held.push(c);
                    }
                } else {
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }));
    }
    // Long searches: the longest accepted (a scan of every record) and far too long ones.
    for a in 80..82u8 {
        let (d, stop, n) = (Arc::clone(&d), Arc::clone(&stop), Arc::clone(&attempts));
        attackers.push(std::thread::spawn(move || {
            let auth = format!("Bearer {TOKEN}");
            let accepted = format!("/api/objects?q={}", "zq".repeat(128));
            let refused = format!("/api/objects?q={}", "x".repeat(60_000));
            while !stop.load(Ordering::Relaxed) {
                let Ok(mut conn) = connect_from(&d, [127, 0, 0, a]) else {
                    continue;
                };
                for path in [&accepted, &refused].into_iter().cycle() {
                    if stop.load(Ordering::Relaxed)
                        || exchange(&mut conn, "GET", path, &[("Authorization", &auth)], "")
                            .is_err()
                    {
                        break;
                    }
                    n.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }

    let cycles_before = cycles(&dir);
    let started = Instant::now();
    let mut kept = connect_from(&d, [127, 0, 0, 1]).must("the probe's connection");
    let (mut warm, mut fresh) = (Vec::new(), Vec::new());
    while started.elapsed() < ATTACK {
        let t = Instant::now();
        let h = exchange(&mut kept, "GET", "/healthz", &[], "");
        let took = t.elapsed();
        match h {
            Ok(a) => {
                assert_eq!(a.status, 200, "{}", a.body);
                warm.push(took);
            }
            Err(_) => kept = connect_from(&d, [127, 0, 0, 1]).must("reconnecting the probe"),
        }
        let t = Instant::now();
        let mut c = connect_from(&d, [127, 0, 0, 1]).must("a fresh probe connection");
        let a = exchange(&mut c, "GET", "/healthz", &[], "").must("healthz");
        assert_eq!(a.status, 200, "{}", a.body);
        fresh.push(t.elapsed());
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    for t in attackers {
        let _ = t.join();
    }
    let ran = cycles(&dir) - cycles_before;
    warm.sort();
    fresh.sort();
    eprintln!(
        "under attack for {:?} ({} attacker requests/connections): {ran} scheduled cycles; \
         /healthz kept-alive p50 {:?} p99 {:?} max {:?} ({} probes); fresh connection p50 {:?} p99 {:?} max {:?}",
        ATTACK,
        attempts.load(Ordering::Relaxed),
        p(&warm, 0.5),
        p(&warm, 0.99),
        warm.last().copied().unwrap_or_default(),
        warm.len(),
        p(&fresh, 0.5),
        p(&fresh, 0.99),
        fresh.last().copied().unwrap_or_default(),
    );
    // Every 5 s over 30 s: 6, less the time cycles themselves take.
    assert!(
        ran >= 4,
        "only {ran} scheduled cycles finished during the attack"
    );
    assert!(
        p(&warm, 0.99) < Duration::from_millis(100),
        "{:?}",
        p(&warm, 0.99)
    );
    assert!(
        p(&fresh, 0.99) < Duration::from_millis(100),
        "{:?}",
        p(&fresh, 0.99)
    );
}
