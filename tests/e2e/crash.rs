//! A first full cycle killed with SIGKILL at points spread over its run, then a normal cycle:
//! the target ends up exactly as after an uninterrupted run, entryUUIDs included.

use std::time::Duration;

use crate::support::{
    TestDir, assert_quiet_cycle, assert_same_target, cycle_json, demo_once, fresh_copy,
    read_target, run, run_and_kill,
};

#[test]
fn kill_nine_converges() {
    let template = TestDir::new("crash-template");
    demo_once(&template);

    // An uninterrupted first full run: the reference result and the time scale for the kills.
    let baseline = fresh_copy(&template, "crash-baseline");
    let first = cycle_json(&baseline.config(), true);
    first.ok();
    let want = read_target(&baseline.join("directory.ldif"), true);
    let took = first.took;
    eprintln!("an uninterrupted first full cycle took {took:?}");

    // Kill points spread over the run, denser towards the end where exports are written.
    // Run times vary a lot with machine load (tests run in parallel), so whenever a run
    // finishes before its kill, its own duration becomes the new time scale.
    let mut scale = took;
    for (n, fraction) in [0.05, 0.3, 0.55, 0.8, 0.95].into_iter().enumerate() {
        let mut attempt = 0;
        let (dir, config_arg, delay) = loop {
            let delay = scale.mul_f64(fraction).max(Duration::from_millis(5));
            let dir = fresh_copy(&template, &format!("crash-{n}-{attempt}"));
            let config_arg = dir.config().to_string_lossy().into_owned();
            match run_and_kill(&["cycle", "-c", &config_arg, "--full"], delay) {
                None => break (dir, config_arg, delay),
                Some(finished) => {
                    eprintln!(
                        "the cycle finished after {finished:?}, before the kill at {delay:?}; \
                         retrying on that time scale"
                    );
                    scale = finished;
                }
            }
            attempt += 1;
            assert!(attempt < 5, "the cycle kept finishing before its kill");
        };
        run(&["cycle", "-c", &config_arg]).ok();
        assert!(
            dir.join("directory.ldif").is_file(),
            "killed after {delay:?} ({fraction} of a {scale:?} run), then one cycle that exited 0: \
             there is no directory.ldif (files: {:?})",
            std::fs::read_dir(dir.path())
                .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
                .unwrap_or_default()
        );
        let got = read_target(&dir.join("directory.ldif"), true);
        assert_same_target(
            &got,
            &want,
            &format!("killed after {delay:?} ({fraction} of a {scale:?} run), then one cycle"),
        );
        assert_quiet_cycle(&cycle_json(&dir.config(), false));
    }
}
