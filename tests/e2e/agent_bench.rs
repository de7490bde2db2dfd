//! Agent footprint (ignored; run with
//! `cargo test --test main bench_agent -- --ignored --nocapture`): how long `bridgehead
//! agent` takes from exec to a connection the appliance has answered, and its resident
//! memory idle, beside the appliance's own in the same run.

use std::time::{Duration, Instant};

use super::agent_trust::{agents, ca_fingerprint, enroll, listener_addr, token, wait_until};
use super::web_client::start_run;
use crate::support::{Background, Must, TestDir, demo_once};

/// VmRSS and VmHWM of a process, in KiB.
fn rss_kib(pid: u32) -> (u64, u64) {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).must("reading /proc status");
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .must(name)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

#[test]
#[ignore = "benchmark: run explicitly, see the module doc"]
fn bench_agent_start_up_and_idle_memory() {
    let dir = TestDir::new("agent-bench");
    demo_once(&dir);
    let config = dir.config();
    let mut text = std::fs::read_to_string(&config).must("reading the config");
    text.push_str("\n[agents]\nlisten = \"127.0.0.1:0\"\nheartbeat = \"1s\"\n");
    std::fs::write(&config, text).must("writing the config");
    let d = start_run(&dir, Some("agent-trust-token-0123456789"));
    let log = dir.join("run.stderr");
    let server = format!("https://{}", listener_addr(&log));
    let fp = ca_fingerprint(dir.path());
    let a = dir.join("agent");
    let r = enroll(&a, &token(&config, "fab", None), &server, &fp);
    assert!(r.status.success(), "{}", r.stderr);

    let mut starts = Vec::new();
    for i in 0..5 {
        let agent_log = dir.join(&format!("agent-{i}.stderr"));
        let started = Instant::now();
        let mut agent = Background::start(&["agent", "--dir", &a.to_string_lossy()], &agent_log);
        // Polled every 2 ms: the wait must not round the figure.
        while !std::fs::read_to_string(&agent_log)
            .is_ok_and(|t| t.contains("connected to the appliance"))
        {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the agent never connected"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        starts.push(started.elapsed());
        if i < 4 {
            agent.signal("TERM");
            assert_eq!(agent.wait_for_exit(Duration::from_secs(10)), Some(0));
        } else {
            wait_until("listed as connected", Duration::from_secs(10), || {
                agents(&d).iter().any(|x| x["state"] == "connected")
            });
            std::thread::sleep(Duration::from_secs(5));
            let (rss, hwm) = rss_kib(agent.id());
            let appliance = rss_kib(d.pid());
            starts.sort();
            println!(
                "agent start-up to connected (5 runs): median {} ms, max {} ms",
                starts[2].as_millis(),
                starts[4].as_millis()
            );
            println!(
                "agent idle after 5 s of heartbeats: RSS {:.1} MiB (peak {:.1} MiB); the appliance (demo, status page, listener): RSS {:.1} MiB (peak {:.1} MiB)",
                rss as f64 / 1024.0,
                hwm as f64 / 1024.0,
                appliance.0 as f64 / 1024.0,
                appliance.1 as f64 / 1024.0
            );
            agent.signal("TERM");
            assert_eq!(agent.wait_for_exit(Duration::from_secs(10)), Some(0));
        }
    }
}
