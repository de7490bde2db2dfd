//! Throughput benchmark: LDIF → LDIF, one full cycle over a generated company, then a
//! delta cycle with 100 changed users. Prints objects/s per phase, peak RSS and state-file
//! bytes per object.
//!
//! `cargo bench --bench sync` runs 100,000 users and 2,000 groups (override with
//! `BRIDGEHEAD_BENCH_USERS` / `BRIDGEHEAD_BENCH_GROUPS`). Without `--bench` (as
//! `cargo test --all-targets` runs it) it does a small smoke run so the code stays tested.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use bridgehead::cli::demo_data::{DemoSize, demo_config, write_company_ldif};
use bridgehead::config::Config;
use bridgehead::model::SystemClock;
use bridgehead::runner::{CycleOptions, Runner, Shutdown};
use bridgehead::store::{RunRecord, Store};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Peak resident set size of this process (VmHWM), in MiB.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn print_run(label: &str, run: &RunRecord) {
    let total = (run.finished_ms - run.started_ms) as f64 / 1000.0;
    println!("{label}: {total:.2} s wall");
    for p in &run.phases {
        let secs = p.ms as f64 / 1000.0;
        let rate = if p.ms > 0 {
            p.objects as f64 / secs
        } else {
            f64::INFINITY
        };
        println!(
            "  {:<8} {:<10} {:>9} objects {:>8.2} s {:>12.0} objects/s",
            p.phase,
            p.connector.as_deref().unwrap_or("-"),
            p.objects,
            secs,
            rate
        );
    }
}

/// Changes the title of the first `n` users in the LDIF (a delta of `n` modifies).
fn edit_titles(path: &Path, n: usize) -> std::io::Result<usize> {
    let tmp = path.with_extension("edit");
    let mut changed = 0;
    {
        let r = BufReader::new(std::fs::File::open(path)?);
        let mut w = BufWriter::new(std::fs::File::create(&tmp)?);
        for line in r.lines() {
            let line = line?;
            if changed < n && line.starts_with("title: ") {
                writeln!(w, "{line} (benchmark)")?;
                changed += 1;
            } else {
                writeln!(w, "{line}")?;
            }
        }
        w.flush()?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(changed)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let full = std::env::args().any(|a| a == "--bench");
    let size = if full {
        DemoSize {
            users: env_usize("BRIDGEHEAD_BENCH_USERS", 100_000),
            groups: env_usize("BRIDGEHEAD_BENCH_GROUPS", 2_000),
        }
    } else {
        DemoSize {
            users: 1_000,
            groups: 50,
        }
    };
    let dir = tempfile::tempdir()?;
    let t = Instant::now();
    {
        let mut w = BufWriter::new(std::fs::File::create(dir.path().join("contoso.ldif"))?);
        write_company_ldif(&mut w, size)?;
        w.flush()?;
    }
    std::fs::write(dir.path().join("bridgehead.toml"), demo_config())?;
    println!(
        "generated {} users, {} groups in {:.2} s",
        size.users,
        size.groups,
        t.elapsed().as_secs_f64()
    );
    let config = Config::load(&dir.path().join("bridgehead.toml"))?;
    let state = config.state_file.clone();
    let store = Store::open(&state)?;
    let mut runner = Runner::new(config, store, Arc::new(SystemClock), Shutdown::default());
    let opts = CycleOptions {
        full: true,
        only: None,
        trigger: "bench".into(),
        progress: false,
    };
    let first = runner.cycle(&opts)?;
    print_run("full cycle", &first);
    let imported: u64 = first.connectors.iter().map(|c| c.import.total()).sum();
    let exported: u64 = first.connectors.iter().map(|c| c.export.total()).sum();
    let wall = (first.finished_ms - first.started_ms) as f64 / 1000.0;
    println!(
        "  overall  {:.0} source objects/s ({imported} imported, {exported} exported)",
        imported as f64 / wall
    );
    let bytes = std::fs::metadata(&state)?.len();
    let (cs, mv, _) = runner.store().read()?.counts()?;
    println!(
        "state file {:.1} MiB: {} CS + {} MV objects, {:.0} bytes per source object",
        bytes as f64 / (1 << 20) as f64,
        cs,
        mv,
        bytes as f64 / imported.max(1) as f64
    );
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    for t in runner.store().read()?.table_sizes()? {
        println!(
            "  table {:<18} {:>9} rows {:>8.1} MiB data {:>6.1} MiB index {:>6.1} MiB fragmented",
            t.name,
            t.rows,
            mib(t.stored_bytes),
            mib(t.metadata_bytes),
            mib(t.fragmented_bytes)
        );
    }
    let edited = edit_titles(&dir.path().join("contoso.ldif"), 100)?;
    let delta = runner.cycle(&CycleOptions {
        full: false,
        ..opts
    })?;
    print_run(&format!("delta cycle ({edited} changed users)"), &delta);
    let exported_delta: u64 = delta.connectors.iter().map(|c| c.export.total()).sum();
    println!("  exported {exported_delta} changes");
    println!("peak RSS {:.0} MiB", peak_rss_mib());
    if !full && exported_delta == 0 {
        return Err("the delta cycle exported nothing".into());
    }
    Ok(())
}
