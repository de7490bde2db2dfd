//! Server processes and their lifetime: each server is our child in its own process group;
//! a watchdog process kills those groups when the test process ends, however it ends; and
//! each group is recorded in [`PID_DIR`] so a later run can kill what a watchdog missed.
//! Processes are inspected through /proc and signalled with kill(1): no libc, as the crate
//! forbids unsafe code.
//!
//! (Not `prctl(PR_SET_PDEATHSIG)` through setpriv(1): the signal fires when the spawning
//! *thread* ends, and the first test to use a shared server is a thread that ends long
//! before the process.)

use std::io::{BufRead as _, Write as _};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::support::Must;

/// Where each server's process group is recorded across runs (fixed, not per process, so a
/// later run finds what an earlier one left behind).
pub const PID_DIR: &str = "/tmp/bridgehead-lab-pids";

/// Kills servers registered by test processes that are gone, and removes their lab folders.
pub fn sweep_leftovers() {
    let _ = std::fs::create_dir_all(PID_DIR);
    for entry in std::fs::read_dir(PID_DIR).into_iter().flatten().flatten() {
        let path = entry.path();
        // Records are named <owner pid>.<server>; the locks of `claim` live here too and
        // must stay (deleting a held lock's file would let a second holder in).
        let is_record = entry
            .file_name()
            .to_str()
            .and_then(|n| n.split_once('.'))
            .is_some_and(|(pid, _)| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()));
        if !is_record {
            continue;
        }
        let Some(record) = PidRecord::read(&path) else {
            let _ = std::fs::remove_file(&path);
            continue;
        };
        if record.owner_alive() {
            continue;
        }
        if record.server_alive() {
            eprintln!(
                "bridgehead lab: killing leftover {} (process group {}) of dead test process {}",
                record.name, record.pgid, record.owner
            );
            kill_group_and_wait(record.pgid, Duration::from_secs(10));
        }
        let _ = std::fs::remove_file(&path);
    }
    let tmp = std::env::temp_dir();
    for entry in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("bridgehead-lab-")
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && proc_stat(pid).is_none() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// One server as recorded in [`PID_DIR`]: which test process started it, and its group.
struct PidRecord {
    name: String,
    owner: u32,
    owner_start: u64,
    pgid: u32,
    pgid_start: u64,
}

impl PidRecord {
    fn path(name: &str) -> PathBuf {
        Path::new(PID_DIR).join(format!("{}.{name}", std::process::id()))
    }

    fn read(path: &Path) -> Option<PidRecord> {
        let text = std::fs::read_to_string(path).ok()?;
        let nums: Vec<u64> = text
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        let [owner, owner_start, pgid, pgid_start] = nums[..] else {
            return None;
        };
        let name = path.file_name()?.to_string_lossy().into_owned();
        Some(PidRecord {
            name,
            owner: u32::try_from(owner).ok()?,
            owner_start,
            pgid: u32::try_from(pgid).ok()?,
            pgid_start,
        })
    }

    /// Start times guard against a recycled pid being taken for the process we recorded.
    fn owner_alive(&self) -> bool {
        proc_stat(self.owner).is_some_and(|s| s.start_time == self.owner_start && s.state != 'Z')
    }

    /// The leader we recorded, or (its leader gone) a samba or slapd left in its group: a
    /// group id reused by an unrelated program is never taken for ours.
    fn server_alive(&self) -> bool {
        proc_stat(self.pgid).is_some_and(|s| s.start_time == self.pgid_start && s.state != 'Z')
            || group_members(self.pgid).into_iter().any(|pid| {
                std::fs::read_link(format!("/proc/{pid}/exe"))
                    .is_ok_and(|exe| exe.ends_with("samba") || exe.ends_with("slapd"))
            })
    }
}

/// Records a server's process group (its leader's pid) under `name` for later runs.
pub fn register(name: &str, pgid: u32) {
    let me = std::process::id();
    let (Some(owner), Some(server)) = (proc_stat(me), proc_stat(pgid)) else {
        return;
    };
    let text = format!("{me} {} {pgid} {}\n", owner.start_time, server.start_time);
    let _ = std::fs::create_dir_all(PID_DIR);
    std::fs::write(PidRecord::path(name), text).must("writing the lab's pid record");
}

/// Removes the record written by [`register`].
pub fn unregister(name: &str) {
    let _ = std::fs::remove_file(PidRecord::path(name));
}

// ---------------------------------------------------------------------------------------------
// Processes, through /proc and kill(1) (no libc: the crate forbids unsafe code).

/// What this harness needs from /proc/PID/stat.
#[derive(Clone, Copy, Debug)]
pub struct ProcStat {
    /// R, S, D, Z (zombie), …
    pub state: char,
    /// Process group.
    pub pgrp: u32,
    /// Start time in clock ticks since boot (tells a recycled pid from the original).
    pub start_time: u64,
}

/// A process's state, group and start time, or None when there is no such process.
pub fn proc_stat(pid: u32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name in parentheses may contain spaces; the fields after it do not.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(ProcStat {
        state: fields.first()?.chars().next()?,
        pgrp: fields.get(2)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

/// The processes (zombies left out) in process group `pgid`.
fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|pid| proc_stat(*pid).is_some_and(|s| s.pgrp == pgid && s.state != 'Z'))
        .collect()
}

/// Whether any process that is not a zombie is still in process group `pgid`.
fn group_alive(pgid: u32) -> bool {
    !group_members(pgid).is_empty()
}

/// Sends `signal` (e.g. "TERM") to every process in group `pgid`.
pub fn signal_group(pgid: u32, signal: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg("--")
        .arg(format!("-{pgid}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Waits up to `limit` for group `pgid` to be gone; whether it is.
fn group_gone_within(pgid: u32, limit: Duration) -> bool {
    let start = Instant::now();
    while group_alive(pgid) {
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// SIGTERM to a group, SIGKILL after a grace period, then waits until it is gone.
pub fn kill_group_and_wait(pgid: u32, grace: Duration) {
    signal_group(pgid, "TERM");
    if !group_gone_within(pgid, grace) {
        signal_group(pgid, "KILL");
        assert!(
            group_gone_within(pgid, Duration::from_secs(10)),
            "process group {pgid} survives SIGKILL"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The watchdog.

/// The shell script of the watchdog: it collects process groups from its stdin, and when
/// stdin reaches EOF (the test process has exited, however it exited) terminates them and
/// removes its owner's records from [`PID_DIR`].
/// (`kill -SIG -PGID` without `--`: dash's builtin kill rejects `--`.)
/// It ignores SIGINT and SIGHUP and has its own process group, so Ctrl-C on the test run
/// reaches it only through the pipe closing, after which it still does its job.
const WATCHDOG: &str = r#"
trap '' INT HUP
groups=" "
while read -r cmd pgid; do
  case "$cmd" in
    watch) groups="$groups$pgid " ;;
    forget) groups=$(printf '%s' "$groups" | sed "s/ $pgid / /") ;;
  esac
done
for g in $groups; do kill -TERM "-$g" 2>/dev/null; done
n=0
while [ $n -lt 50 ]; do
  alive=""
  for g in $groups; do kill -0 "-$g" 2>/dev/null && alive="$alive $g"; done
  [ -z "$alive" ] && break
  sleep 0.1
  n=$((n + 1))
done
for g in $alive; do kill -KILL "-$g" 2>/dev/null; done
rm -f "$PID_DIR/$OWNER".*
"#;

/// The watchdog process and the write end of its stdin.
struct Watchdog {
    /// Never waited for: it must outlive this process (it runs until our end closes its
    /// stdin); kept so that the handle is not dropped unused.
    _process: std::process::Child,
    stdin: ChildStdin,
}

fn watchdog() -> &'static Mutex<Watchdog> {
    static WATCHDOG_PROCESS: OnceLock<Mutex<Watchdog>> = OnceLock::new();
    WATCHDOG_PROCESS.get_or_init(|| {
        // std creates the pipe with O_CLOEXEC, so no other child inherits its write end
        // (which would keep it open after we die).
        let mut process = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .env("PID_DIR", PID_DIR)
            .env("OWNER", std::process::id().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .must("starting the lab watchdog (sh)");
        let stdin = process.stdin.take().must("the watchdog's stdin");
        Mutex::new(Watchdog {
            _process: process,
            stdin,
        })
    })
}

/// Has the watchdog kill process group `pgid` when this test process ends.
pub(super) fn watch(pgid: u32) {
    let mut w = watchdog().lock().unwrap_or_else(|e| e.into_inner());
    writeln!(w.stdin, "watch {pgid}").must("telling the watchdog");
}

/// Takes `pgid` off the watchdog's list (the server was stopped on purpose).
pub(super) fn forget(pgid: u32) {
    let mut w = watchdog().lock().unwrap_or_else(|e| e.into_inner());
    writeln!(w.stdin, "forget {pgid}").must("telling the watchdog");
}

/// A spawned server process: watched by the watchdog and recorded in [`PID_DIR`] until
/// [`ServerProcess::stop`].
pub struct ServerProcess {
    child: std::process::Child,
    name: String,
    /// Samba exits when its stdin closes; holding the pipe ties it to us a second way.
    stdin: Option<ChildStdin>,
}

impl ServerProcess {
    /// Starts `cmd` in its own process group with output appended to `log`.
    pub fn spawn(name: &str, cmd: &mut Command, log: &Path, keep_stdin: bool) -> ServerProcess {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .must(&format!("opening {}", log.display()));
        let err = out.try_clone().must("duplicating the log handle");
        cmd.stdin(if keep_stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(out)
        .stderr(err)
        .process_group(0);
        let mut child = cmd.spawn().must(&format!("starting {cmd:?}"));
        let pid = child.id();
        watch(pid);
        register(name, pid);
        let stdin = child.stdin.take();
        ServerProcess {
            child,
            name: name.to_string(),
            stdin,
        }
    }

    /// Its process group id (= its pid).
    pub fn pgid(&self) -> u32 {
        self.child.id()
    }

    /// Its exit status if it has already exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Ends it: closes its stdin, then SIGTERM, then after `grace` SIGKILL, to the whole
    /// group; returns once no process of the group is left.
    pub fn stop(mut self, grace: Duration) {
        let pgid = self.child.id();
        drop(self.stdin.take());
        signal_group(pgid, "TERM");
        let started = Instant::now();
        while started.elapsed() < grace && self.exited().is_none() {
            std::thread::sleep(Duration::from_millis(10));
        }
        kill_group_and_wait(pgid, Duration::from_secs(5));
        let _ = self.child.kill();
        let _ = self.child.wait();
        forget(pgid);
        unregister(&self.name);
    }
}

/// A lock held for the rest of this process by a flock(1) child that waits on its stdin:
/// when this process ends, however it ends, the child sees EOF and exits, and the kernel
/// drops the lock. No stale lock file can outlive its owner.
struct Claim {
    _holder: std::process::Child,
    _stdin: ChildStdin,
}

/// Takes the lab-wide lock `name` (e.g. "samba") for the rest of this process,
/// waiting up to `limit` while another test process holds it. Samba's addresses are fixed,
/// so two test runs on one machine take turns instead of fighting over 127.0.0.1:636.
pub fn claim(name: &str, limit: Duration) {
    static HELD: Mutex<Vec<(String, Claim)>> = Mutex::new(Vec::new());
    let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
    if held.iter().any(|(n, _)| n == name) {
        return;
    }
    let _ = std::fs::create_dir_all(PID_DIR);
    let lock = Path::new(PID_DIR).join(format!("{name}.lock"));
    let owner_file = Path::new(PID_DIR).join(format!("{name}.owner"));
    let spawn = |wait: &str| {
        let mut child = Command::new("flock")
            .args(["--exclusive", "--wait", wait])
            .arg(&lock)
            .args(["sh", "-c", "echo locked; exec cat >/dev/null"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .must("starting flock(1) (util-linux)");
        let mut line = String::new();
        let stdout = child.stdout.take().must("flock's stdout");
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        if line.trim() == "locked" {
            let stdin = child.stdin.take().must("flock's stdin");
            Some(Claim {
                _holder: child,
                _stdin: stdin,
            })
        } else {
            let _ = child.wait();
            None
        }
    };
    let claim = match spawn("0") {
        Some(c) => c,
        None => {
            // The owner file names the last process to take the lock; it may be stale.
            let other = std::fs::read_to_string(&owner_file).unwrap_or_default();
            let other = match other.trim().parse::<u32>().ok() {
                Some(pid) if proc_stat(pid).is_some() => format!("test process {pid}"),
                _ => "another test process".to_string(),
            };
            eprintln!("bridgehead lab: {name} is held by {other}; waiting up to {limit:?}");
            spawn(&limit.as_secs().to_string())
                .unwrap_or_else(|| panic!("{name} still held by {other} after {limit:?}"))
        }
    };
    let _ = std::fs::write(&owner_file, std::process::id().to_string());
    held.push((name.to_string(), claim));
}
