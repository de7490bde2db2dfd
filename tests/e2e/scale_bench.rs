//! Scale benchmark (ignored by default; it prints numbers): the demo company at appliance
//! size, LDIF → LDIF through the release binary. A full cycle of N users and N/50 groups,
//! then 100 changed users and a delta cycle in that store. Prints objects/s per phase, wall
//! and CPU time, the child's peak RSS and the state file's bytes per source object.
//!
//! ```text
//! BRIDGEHEAD_SCALE_USERS=1000000 cargo test --release --test main bench_scale -- --ignored --nocapture
//! ```
//!
//! The default is 100,000 users (2,000 groups), which runs in a few minutes.
//! `BRIDGEHEAD_SCALE_DIR=/some/folder` keeps the data and the state there (for profiling).

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bridgehead::cli::demo_data::{DemoSize, demo_config, write_company_ldif};

use crate::support::{Must, TestDir, bin};

/// What one run of the binary cost, measured from outside.
struct Measured {
    json: serde_json::Value,
    wall: Duration,
    /// User + system CPU seconds of the child.
    cpu_s: f64,
    /// Peak resident set (VmHWM) in MiB, sampled every 20 ms while it ran.
    peak_rss_mib: f64,
}

/// A field of /proc/PID/status, in kB.
fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// (state, user + system ticks) from /proc/PID/stat; a zombie still reports its CPU time.
fn stat(pid: u32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after its closing parenthesis do not.
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let state = f.first()?.chars().next()?;
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some((state, utime + stime))
}

/// Runs `bridgehead cycle -c CONFIG [--full] --json`, sampling its memory until it exits.
fn cycle(config: &Path, full: bool) -> Measured {
    let mut cmd = Command::new(bin());
    cmd.arg("cycle").arg("-c").arg(config);
    if full {
        cmd.arg("--full");
    }
    cmd.arg("--json")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let t = Instant::now();
    let mut child = cmd.spawn().must("starting bridgehead");
    let pid = child.id();
    // Drain the pipes on threads so a chatty child never blocks on a full pipe.
    let mut out = child.stdout.take().must("child stdout");
    let mut err = child.stderr.take().must("child stderr");
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut s);
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut s);
        s
    });
    let mut peak_kb = 0u64;
    let mut ticks = 0u64;
    loop {
        if let Some(kb) = status_kb(pid, "VmHWM:") {
            peak_kb = peak_kb.max(kb);
        }
        match stat(pid) {
            // Exited but not reaped yet: its final CPU time is still readable.
            Some(('Z', t)) => {
                ticks = t;
                break;
            }
            Some((_, t)) => ticks = t,
            None => break,
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = child.wait().must("waiting for bridgehead");
    let wall = t.elapsed();
    let stdout = out_t.join().unwrap_or_default();
    let stderr = err_t.join().unwrap_or_default();
    assert!(
        status.success(),
        "cycle failed: {status}\n{stdout}\n{stderr}"
    );
    let json = serde_json::from_str(stdout.trim()).must("cycle --json output");
    Measured {
        json,
        wall,
        // Linux reports CPU time in clock ticks of 100 Hz (USER_HZ).
        cpu_s: ticks as f64 / 100.0,
        peak_rss_mib: peak_kb as f64 / 1024.0,
    }
}

fn print_phases(label: &str, m: &Measured) {
    println!(
        "{label}: {:.2} s wall, {:.1} s CPU, peak RSS {:.0} MiB",
        m.wall.as_secs_f64(),
        m.cpu_s,
        m.peak_rss_mib
    );
    for p in m.json["phases"].as_array().into_iter().flatten() {
        let ms = p["ms"].as_u64().unwrap_or(0);
        let n = p["objects"].as_u64().unwrap_or(0);
        let rate = if ms > 0 {
            format!("{:.0}", n as f64 * 1000.0 / ms as f64)
        } else {
            "-".into()
        };
        println!(
            "  {:<8} {:<10} {:>9} objects {:>9.2} s {:>10} objects/s",
            p["phase"].as_str().unwrap_or("?"),
            p["connector"].as_str().unwrap_or("-"),
            n,
            ms as f64 / 1000.0,
            rate
        );
    }
}

/// Sum of one count over all connectors, e.g. ("import", "adds").
fn total(json: &serde_json::Value, side: &str) -> u64 {
    json["connectors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            ["adds", "updates", "deletes", "renames"]
                .iter()
                .map(|k| c[side][*k].as_u64().unwrap_or(0))
                .sum::<u64>()
        })
        .sum()
}

/// Appends " (benchmark)" to the title of the first `n` users: a delta of `n` modifies.
fn edit_titles(path: &Path, n: usize) -> usize {
    let tmp = path.with_extension("edit");
    let mut changed = 0;
    {
        let r = BufReader::new(std::fs::File::open(path).must("opening the source"));
        let mut w = BufWriter::new(std::fs::File::create(&tmp).must("creating the copy"));
        for line in r.lines() {
            let line = line.must("reading the source");
            if changed < n && line.starts_with("title: ") {
                writeln!(w, "{line} (benchmark)").must("writing");
                changed += 1;
            } else {
                writeln!(w, "{line}").must("writing");
            }
        }
        w.flush().must("writing");
    }
    std::fs::rename(&tmp, path).must("replacing the source");
    changed
}

#[test]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
fn bench_scale_ldif_full_and_delta() {
    let users: usize = std::env::var("BRIDGEHEAD_SCALE_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let size = DemoSize {
        users,
        groups: (users / 50).max(1),
    };
    // BRIDGEHEAD_SCALE_DIR keeps the data and state in a named folder (for profiling).
    let tmp = TestDir::new("scale_bench");
    let root = match std::env::var_os("BRIDGEHEAD_SCALE_DIR") {
        Some(d) => {
            let d = std::path::PathBuf::from(d);
            std::fs::create_dir_all(&d).must("creating BRIDGEHEAD_SCALE_DIR");
            let _ = std::fs::remove_file(d.join("state.redb"));
            let _ = std::fs::remove_file(d.join("directory.ldif"));
            d
        }
        None => tmp.path().to_path_buf(),
    };
    let config = root.join("bridgehead.toml");
    let source = root.join("contoso.ldif");
    let t = Instant::now();
    {
        let mut w = BufWriter::new(std::fs::File::create(&source).must("creating the source"));
        write_company_ldif(&mut w, size).must("writing the source");
        w.flush().must("writing the source");
    }
    std::fs::write(&config, demo_config()).must("writing the config");
    println!(
        "generated {} users, {} groups ({:.0} MiB LDIF) in {:.1} s",
        size.users,
        size.groups,
        std::fs::metadata(&source).must("source size").len() as f64 / (1 << 20) as f64,
        t.elapsed().as_secs_f64()
    );

    let full = cycle(&config, true);
    print_phases("full cycle", &full);
    let imported = total(&full.json, "import");
    let exported = total(&full.json, "export");
    assert!(imported > users as u64, "imported only {imported}");
    assert!(exported > users as u64, "exported only {exported}");
    let state = std::fs::metadata(root.join("state.redb"))
        .must("state file")
        .len();
    println!(
        "  overall {:.0} source objects/s ({imported} imported, {exported} exported); state file {:.0} MiB, {:.0} bytes per source object",
        imported as f64 / full.wall.as_secs_f64(),
        state as f64 / (1 << 20) as f64,
        state as f64 / imported as f64
    );

    let edited = edit_titles(&source, 100);
    let delta = cycle(&config, false);
    print_phases(&format!("delta cycle ({edited} changed users)"), &delta);
    let delta_in = total(&delta.json, "import");
    let delta_out = total(&delta.json, "export");
    println!("  imported {delta_in} changes, exported {delta_out}");
    // Every edited user is imported as one update; the rules flow title to the target for
    // the users in scope, so some (not necessarily all) reach it.
    assert_eq!(delta_in, edited as u64, "{}", delta.json);
    assert!(
        delta_out > 0 && delta_out <= edited as u64,
        "{}",
        delta.json
    );
}
