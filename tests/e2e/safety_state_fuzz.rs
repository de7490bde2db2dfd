//! The state-file fuzz test: seeded byte flips, truncations and zeroed pages of a real state
//! file (made by a cycle). Most cases open and read the file in this process through the
//! store's own API, as every command does (open, every record decoded, the run history, a
//! backup copy); a sample runs the real binary's `cycle --full`, `search`, `errors` and
//! `backup` on it, two at a time, each under a memory limit (prlimit) and a time limit.
//! Nothing may panic outside redb (whose panics the binary turns into the damaged-file
//! error), abort, hang or allocate past the limit; every refusal names the file and says to
//! restore a backup, with exit 1.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bridgehead::store::{Store, StoreError};

use super::safety_state_file::setup_with;
use crate::support::{Must, TestDir, bin, cycle_json};

/// Damaged copies read in this process.
const IN_PROCESS: u64 = 3000;
/// Damaged copies given to the binary (each to four commands).
const BINARY: u64 = 200;
/// A command on a damaged copy of a small file finishes well within this.
const COMMAND_LIMIT: Duration = Duration::from_secs(30);
/// Address space each command may use: far above what it needs (~300 MB), far below
/// what an unbounded length from the file would ask for.
const MEMORY_LIMIT: &str = "4000000000";

/// splitmix64: a seeded, dependency-free source of case parameters.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Case `seed`'s damage to `good`, and what it was.
fn damage(good: &[u8], seed: u64) -> (Vec<u8>, String) {
    let mut rng = Rng(seed);
    let mut b = good.to_vec();
    match seed % 3 {
        0 => {
            let n = 1 + rng.below(16);
            for _ in 0..n {
                let at = rng.below(b.len());
                b[at] ^= 1 << rng.below(8);
            }
            (b, format!("{n} bit flips"))
        }
        1 => {
            let len = rng.below(b.len());
            b.truncate(len);
            (b, format!("truncated to {len} bytes"))
        }
        _ => {
            let page = rng.below(b.len() / 4096) * 4096;
            b[page..(page + 4096).min(good.len())].fill(0);
            (b, format!("page at {page} zeroed"))
        }
    }
}

/// What the in-process cases saw.
#[derive(Default)]
struct Tally {
    read_fine: AtomicUsize,
    refused: AtomicUsize,
    redb_panics: AtomicUsize,
}

thread_local! {
    /// Where the latest panic on this thread happened.
    static PANICKED_AT: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Notes each panic's location for [`in_process`], then lets the previous hook report it.
fn note_panic_locations() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let at = info.location().map(|l| l.file().to_string());
            PANICKED_AT.with(|p| *p.borrow_mut() = at);
            previous(info);
        }));
    });
}

/// Everything a command reads, done through the store's API.
fn read_everything(file: &Path, backup: &Path) -> Result<(), StoreError> {
    let store = Store::open_read_only(file)?;
    let tx = store.read()?;
    tx.counts()?;
    tx.for_each_cs(None, &mut |_, _| Ok(()))?;
    tx.for_each_mv(&mut |_, _| Ok(()))?;
    tx.runs(1000)?;
    drop(tx);
    let _ = std::fs::remove_file(backup);
    store.backup_to(backup)?;
    drop(store);
    // The writer's open (what `cycle` does first) checks the format and the search index.
    Store::open(file).map(drop)
}

/// One in-process case; Err says what went wrong.
fn in_process(good: &[u8], seed: u64, dir: &Path, tally: &Tally) -> Result<(), String> {
    let (bytes, what) = damage(good, seed);
    let file = dir.join(format!("case-{seed}.redb"));
    let backup = dir.join(format!("case-{seed}.backup.redb"));
    std::fs::write(&file, &bytes).map_err(|e| e.to_string())?;
    let outcome = std::panic::catch_unwind(|| read_everything(&file, &backup));
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_file(&backup);
    match outcome {
        Ok(Ok(())) => {
            tally.read_fine.fetch_add(1, Ordering::Relaxed);
            Ok(())
        }
        Ok(Err(e)) => {
            let text = e.to_string();
            let named = text.contains(&file.display().to_string());
            if named && text.contains("restore") {
                tally.refused.fetch_add(1, Ordering::Relaxed);
                Ok(())
            } else {
                Err(format!("case {seed} ({what}): unclear error: {text}"))
            }
        }
        Err(_) => {
            let at = PANICKED_AT
                .with(|p| p.borrow_mut().take())
                .unwrap_or_default();
            if at.contains("/redb-") {
                tally.redb_panics.fetch_add(1, Ordering::Relaxed);
                Ok(())
            } else {
                Err(format!("case {seed} ({what}): panicked at {at}"))
            }
        }
    }
}

/// Runs the binary with a memory and a time limit: exit code (None: killed) and stderr.
fn limited(args: &[&str]) -> (Option<i32>, String, Duration) {
    let started = Instant::now();
    let err = tempfile::NamedTempFile::new().must("a stderr file");
    let mut child = Command::new("prlimit")
        .arg(format!("--as={MEMORY_LIMIT}"))
        .arg(bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(err.reopen().must("the stderr file"))
        .spawn()
        .must("starting prlimit bridgehead");
    let status = loop {
        if let Some(s) = child.try_wait().must("waiting") {
            break Some(s);
        }
        if started.elapsed() > COMMAND_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let stderr = std::fs::read_to_string(err.path()).unwrap_or_default();
    (status.and_then(|s| s.code()), stderr, started.elapsed())
}

/// One binary case: four commands on their own copy of the damaged file.
fn with_binary(good: &[u8], seed: u64, template: &Path) -> Result<(), String> {
    let (bytes, what) = damage(good, seed);
    let dir = TestDir::new(&format!("fuzz-bin-{seed}"));
    let state = dir.join("state.redb");
    let config = setup_with(dir.path(), &state, 0);
    // The source with people in it, as the cycle that made the good file saw it.
    std::fs::copy(template.join("hr.ldif"), dir.join("hr.ldif")).map_err(|e| e.to_string())?;
    let cfg = config.to_string_lossy().into_owned();
    let backup = dir.join("backup.redb").to_string_lossy().into_owned();
    let commands: [Vec<&str>; 4] = [
        vec!["search", "-c", &cfg, "person"],
        vec!["errors", "-c", &cfg],
        vec!["backup", "-c", &cfg, &backup],
        vec!["cycle", "--full", "-c", &cfg],
    ];
    for args in commands {
        std::fs::write(&state, &bytes).map_err(|e| e.to_string())?;
        let (code, stderr, took) = limited(&args);
        let named = stderr.contains(&state.display().to_string());
        let clear = code == Some(1) && named && stderr.contains("restore");
        // 0: the damage was where this command does not look (free pages, a record it does
        // not read); the command did its job.
        if !(code == Some(0) || clear) {
            return Err(format!(
                "case {seed} ({what}): `{}` gave {code:?} after {took:?}:\n{}",
                args[0],
                crate::support::tail(&stderr)
            ));
        }
    }
    Ok(())
}

#[test]
fn safety_state_file_fuzz_never_aborts_and_always_says_restore() {
    note_panic_locations();
    let dir = TestDir::new("state-fuzz");
    let state = dir.join("state.redb");
    let config = setup_with(dir.path(), &state, 400);
    cycle_json(&config, false).ok();
    let good = std::fs::read(&state).must("reading the state file");
    eprintln!("state file: {} bytes", good.len());

    let started = Instant::now();
    let tally = Tally::default();
    let failures: Vec<String> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2u64)
            .map(|w| {
                let (good, dir, tally) = (&good, dir.path(), &tally);
                s.spawn(move || {
                    (0..IN_PROCESS)
                        .filter(|i| i % 2 == w)
                        .filter_map(|seed| in_process(good, seed, dir, tally).err())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| {
                w.join()
                    .unwrap_or_else(|_| vec!["a worker panicked".into()])
            })
            .collect()
    });
    eprintln!(
        "in process: {IN_PROCESS} cases in {:.1} s: {} read fine, {} refused clearly, {} redb panics (exit 1 in the binary)",
        started.elapsed().as_secs_f64(),
        tally.read_fine.load(Ordering::Relaxed),
        tally.refused.load(Ordering::Relaxed),
        tally.redb_panics.load(Ordering::Relaxed),
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        tally.refused.load(Ordering::Relaxed) > IN_PROCESS as usize / 4,
        "the damage should be found often"
    );

    let started = Instant::now();
    let template: PathBuf = dir.path().to_path_buf();
    let failures: Vec<String> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2u64)
            .map(|w| {
                let (good, template) = (&good, &template);
                s.spawn(move || {
                    // Other seeds than the in-process cases: more kinds of damage seen.
                    (IN_PROCESS..IN_PROCESS + BINARY)
                        .filter(|i| i % 2 == w)
                        .filter_map(|seed| with_binary(good, seed, template).err())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| {
                w.join()
                    .unwrap_or_else(|_| vec!["a worker panicked".into()])
            })
            .collect()
    });
    eprintln!(
        "binary: {BINARY} cases x 4 commands in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn safety_empty_state_file_is_refused_by_cycle_and_search() {
    let dir = TestDir::new("state-empty");
    let state = dir.join("state.redb");
    let config = setup_with(dir.path(), &state, 10);
    std::fs::write(&state, b"").must("writing an empty state file");
    let cfg = config.to_string_lossy().into_owned();
    for args in [
        vec!["cycle", "-c", &cfg],
        vec!["search", "-c", &cfg, "person"],
        vec!["errors", "-c", &cfg],
        vec!["backup", "-c", &cfg, "/dev/null/nowhere"],
    ] {
        let (code, stderr, _) = limited(&args);
        assert_eq!(code, Some(1), "`{}`: {stderr}", args[0]);
        assert!(
            stderr.contains("is empty") && stderr.contains("restore"),
            "`{}`: {stderr}",
            args[0]
        );
        assert_eq!(
            std::fs::metadata(&state).must("the state file").len(),
            0,
            "`{}` wrote to the empty file",
            args[0]
        );
    }
    assert!(
        !dir.join("out.ldif").exists(),
        "the empty file was taken as new"
    );
}
