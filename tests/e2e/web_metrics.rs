//! `/metrics` of a real `bridgehead run` after a cycle: valid for Prometheus (`promtool
//! check metrics`, which also lints names, units and help texts), with the phase histograms,
//! exports by outcome, watch state, no-op exports, `process_*` and the build; and the sample
//! alert rules in `contrib/` pass `promtool check rules` and their own `promtool test rules`.

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::web_client::{Daemon, https, start_run};
use crate::support::{Must, TestDir, demo_once, wait_for_log};

const TOKEN: &str = "metrics-token-0123456789";

fn scrape(d: &Daemon) -> String {
    let m = https(
        d,
        "GET",
        "/metrics",
        &[("Authorization", &format!("Bearer {TOKEN}"))],
        "",
    );
    assert_eq!(m.status, 200, "{}", m.body);
    m.body
}

/// promtool with `args`, `stdin` fed in; (success, stdout + stderr).
fn promtool(args: &[&str], stdin: &str, dir: &Path) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .must("starting promtool (Debian package prometheus, scripts/deps.sh)");
    child
        .stdin
        .take()
        .must("promtool's stdin")
        .write_all(stdin.as_bytes())
        .must("feeding promtool");
    let out = child.wait_with_output().must("waiting for promtool");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// The value of the first sample line that starts with `prefix`.
fn value(text: &str, prefix: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.starts_with(prefix))
        .must(&format!("a sample {prefix}…"));
    line.rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .must(&format!("the value of {line}"))
}

#[test]
fn web_metrics_pass_promtool_and_the_alert_rules_check() {
    let dir = TestDir::new("web-metrics");
    demo_once(&dir);
    let d = start_run(&dir, Some(TOKEN));
    assert!(
        wait_for_log(
            &dir.join("run.stderr"),
            "scheduled cycle finished",
            Duration::from_secs(120)
        ),
        "no cycle finished"
    );
    let text = scrape(&d);
    std::fs::write(dir.join("metrics.txt"), &text).must("saving the scrape");

    let (ok, said) = promtool(&["check", "metrics"], &text, dir.path());
    assert!(
        ok && said.trim().is_empty(),
        "promtool check metrics:\n{said}"
    );
    // What Prometheus itself asks for: OpenMetrics, with counters named as it wants them.
    let om = https(
        &d,
        "GET",
        "/metrics",
        &[
            ("Authorization", &format!("Bearer {TOKEN}")),
            (
                "Accept",
                "application/openmetrics-text;version=1.0.0;q=0.5,*/*;q=0.1",
            ),
        ],
        "",
    );
    assert!(
        om.header("content-type")
            .is_some_and(|t| t.starts_with("application/openmetrics-text")),
        "{:?}",
        om.headers
    );
    assert!(om.body.ends_with("# EOF\n"), "{}", om.body);
    assert!(om.body.contains("# TYPE bridgehead_exports counter\n"));

    for family in [
        "bridgehead_phase_duration_seconds_bucket{le=\"+Inf\",phase=\"import\",connector=\"contoso\"} ",
        "bridgehead_phase_duration_seconds_count{phase=\"export\",connector=\"directory\"} ",
        "bridgehead_exports_total{connector=\"directory\",outcome=\"added\"} ",
        "bridgehead_exports_total{connector=\"directory\",outcome=\"held\"} ",
        "bridgehead_no_op_exports_total{connector=\"directory\"} ",
        "bridgehead_cycles_total{result=\"ok\"} ",
        "bridgehead_build_info{version=\"",
        "process_cpu_seconds_total ",
        "process_resident_memory_bytes ",
        "process_open_fds ",
        "process_max_fds ",
        "process_start_time_seconds ",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(family)),
            "no {family}… in:\n{text}"
        );
    }
    // The demo has no near-real-time watch: bridgehead_watch_state is empty and left out
    // (its series are checked in the unit tests of src/web/metrics.rs).
    assert!(value(&text, "bridgehead_cycles_total{result=\"ok\"}") >= 1.0);
    assert!(
        value(
            &text,
            "bridgehead_phase_duration_seconds_count{phase=\"import\",connector=\"contoso\"}"
        ) >= 1.0
    );
    let rss = value(&text, "process_resident_memory_bytes");
    assert!(rss > 4e6 && rss < 1e9, "resident memory {rss}");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .must("clock")
        .as_secs_f64();
    let start = value(&text, "process_start_time_seconds");
    assert!(
        start <= now + 1.0 && start > now - 300.0,
        "start {start}, now {now}"
    );
    // The first cycle of this daemon imported nothing new: the demo's --once cycle ran before.
    // The counter grows with a cycle that exports: edit the source and ask for a cycle.
    let before = value(
        &text,
        "bridgehead_exports_total{connector=\"directory\",outcome=\"updated\"}",
    );
    let src = dir.join("contoso.ldif");
    let ldif = std::fs::read_to_string(&src).must("reading the source");
    let changed = ldif.replacen("title: ", "title: Chief ", 3);
    assert_ne!(ldif, changed, "the demo source has titles");
    std::fs::write(&src, changed).must("editing the source");
    let cycles = value(&text, "bridgehead_cycles_total{result=\"ok\"}");
    let auth = format!("Bearer {TOKEN}");
    let r = https(
        &d,
        "POST",
        "/api/actions/cycle",
        &[("Authorization", &auth)],
        "",
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let end = std::time::Instant::now() + Duration::from_secs(180);
    let mut after = scrape(&d);
    while value(&after, "bridgehead_cycles_total{result=\"ok\"}") < cycles + 1.0 {
        assert!(
            std::time::Instant::now() < end,
            "no further cycle:\n{after}"
        );
        std::thread::sleep(Duration::from_millis(500));
        after = scrape(&d);
    }
    let updated = value(
        &after,
        "bridgehead_exports_total{connector=\"directory\",outcome=\"updated\"}",
    );
    assert!(updated >= before + 3.0, "updated {before} → {updated}");

    // The sample alert rules: valid, and their unit tests pass.
    let contrib = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib");
    let (ok, said) = promtool(&["check", "rules", "bridgehead.rules.yml"], "", &contrib);
    assert!(ok, "promtool check rules:\n{said}");
    let (ok, said) = promtool(
        &["test", "rules", "bridgehead.rules.test.yml"],
        "",
        &contrib,
    );
    assert!(ok, "promtool test rules:\n{said}");
}
