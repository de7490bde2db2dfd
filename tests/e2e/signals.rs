//! `run` mode answers SIGTERM and SIGINT by finishing the current batch and exiting 0 within
//! seconds; nothing committed is lost, and the next cycle completes the interrupted work.

use std::time::Duration;

use crate::support::{
    Background, TestDir, assert_quiet_cycle, assert_same_target, cycle_json, demo_once, fresh_copy,
    read_target, run, wait_for_log,
};

#[test]
fn signals_stop_run_between_batches_and_lose_nothing() {
    let template = TestDir::new("signal-template");
    demo_once(&template);
    let baseline = fresh_copy(&template, "signal-baseline");
    cycle_json(&baseline.config(), false).ok();
    let want = read_target(&baseline.join("directory.ldif"), true);

    for (n, signal) in ["TERM", "INT"].into_iter().enumerate() {
        let dir = fresh_copy(&template, &format!("signal-{n}"));
        let config = dir.config().to_string_lossy().into_owned();
        let log = dir.join("run.stderr");
        let mut daemon = Background::start(&["run", "-c", &config], &log);
        // Interrupt the first (full) cycle after its source import, in the middle of sync.
        assert!(
            wait_for_log(&log, "import connector=directory", Duration::from_secs(60)),
            "run never reached the target import: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        daemon.signal(signal);
        let code = daemon.wait_for_exit(Duration::from_secs(10));
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        assert_eq!(
            code,
            Some(0),
            "SIG{signal}: exit within 10 s with 0; log:\n{text}"
        );
        assert!(
            text.contains(&format!("SIG{signal}")),
            "the log names the signal:\n{text}"
        );
        drop(daemon);

        // The next cycle finishes the work: the target equals an uninterrupted run's.
        run(&["cycle", "-c", &config]).ok();
        let got = read_target(&dir.join("directory.ldif"), true);
        assert_same_target(&got, &want, &format!("after SIG{signal} and one cycle"));
        assert_quiet_cycle(&cycle_json(&dir.config(), false));
    }
}
