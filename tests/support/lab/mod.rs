//! The lab: real directory servers for the integration tests, started by the tests themselves.
//!
//! - [`tls`]: one lab CA for every server; per server a certificate whose subjectAltName
//!   holds both its IP address and its host name, so a client that verifies by IP (rustls)
//!   and one that verifies by name both accept it.
//! - [`samba`]: two disconnected Samba AD forests, `corp` on 127.0.0.1 and `fabrikam` on
//!   127.0.0.2, provisioned and started once per test process on first use.
//! - [`slapd`]: private OpenLDAP instances on free ports: one shared (syncprov on), more on
//!   demand for tests that need their own configuration.
//! - [`client`]: the OpenLDAP command-line tools pointed at one lab server with the CA
//!   verified; the checks a test makes on a directory go through them, not through our own
//!   LDAP code, so a bug in the connectors cannot hide itself.
//! - [`process`]: server processes, the watchdog, and cleaning up after crashed runs.
//! - [`gate`]: one server shared by tests running as threads.
//! - this file: the lab root, free ports, waiting with a deadline, running commands.
//!
//! Where things are: everything a process starts lives under [`root`]
//! (`$TMPDIR/bridgehead-lab-<pid>/`, printed once), which is kept after the run for its logs
//! and removed by the next run.
//!
//! Lifetime: servers run as our children, each in its own process group, and are registered
//! with a watchdog process that kills those groups when the test process ends in any way
//! (even SIGKILL: the watchdog notices its stdin pipe closing). Each server's process group
//! is also written to [`process::PID_DIR`], so a later run can kill what a watchdog missed before it
//! needs the same addresses (Samba's are fixed: 127.0.0.1 and 127.0.0.2, ports 389/636;
//! a second test run on the machine waits for the first to release them).
//!
//! Typical use in a test:
//!
//! ```ignore
//! use crate::support::lab::{LdapServer as _, samba};
//! let corp = samba::corp();
//! let _up = corp.hold(); // no other test stops corp while this one runs
//! let ou = corp.create_ou("import-renames");
//! corp.ldapadd(&format!("dn: CN=Ann,{ou}\nobjectClass: user\nsAMAccountName: ann1\n"));
//! // … point the connector at corp.ldaps_url / bind_dn / password_file / ca_file …
//! ```
//!
//! Sharing: tests are threads of one process. Each works in its own OU
//! ([`LdapServer::create_ou`]). A [`Gate`] per server lets a test that stops a shared server
//! or bulk-loads it (which stops it) wait until no other test is using it, and makes the
//! others wait while it is down.

pub mod client;
pub mod gate;
pub mod graph;
pub mod process;
pub mod samba;
pub mod scim;
pub mod slapd;
pub mod tls;

#[cfg(test)]
mod tests;

pub use client::{LdapServer, Scope};
pub use gate::{Gate, GateHold};
pub use process::ServerProcess;

use std::collections::BTreeSet;
use std::io::{Read, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::support::Must;

/// How long one command-line tool may run before the test gives up on it.
pub const TOOL_LIMIT: Duration = Duration::from_secs(300);

// ---------------------------------------------------------------------------------------------
// The lab root.

/// This process's lab folder, created (and stale ones of dead processes removed) on first use.
pub fn root() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        process::sweep_leftovers();
        let root = std::env::temp_dir().join(format!("bridgehead-lab-{}", std::process::id()));
        std::fs::create_dir_all(&root).must(&format!("creating {}", root.display()));
        eprintln!("bridgehead lab: servers and logs under {}", root.display());
        root
    })
}

// ---------------------------------------------------------------------------------------------
// Small helpers.

/// Sets up a process-wide server once. A failure is remembered, so that every later test
/// fails at once with the first error instead of trying again (and again) meanwhile.
pub fn set_up_once<T>(
    cell: &'static OnceLock<Result<T, String>>,
    what: &str,
    make: impl FnOnce() -> T,
) -> &'static T {
    let mut tried_here = false;
    let result = cell.get_or_init(|| {
        tried_here = true;
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(make)).map_err(|p| {
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        })
    });
    match result {
        Ok(server) => server,
        // The panic message was printed once already; this test fails with a short one.
        Err(_) if tried_here => panic!("{what} could not be set up (see the panic above)"),
        Err(e) => panic!("{what} could not be set up earlier in this run: {e}"),
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago and has not been handed out before in
/// this process.
pub fn free_port() -> u16 {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .must("binding 127.0.0.1:0")
            .port();
        if given.insert(port) {
            return port;
        }
    }
}

/// Calls `probe` until it returns Ok or `limit` has passed; on timeout the error says what
/// was awaited, for how long, and the probe's last error.
pub fn wait_until<T>(
    what: &str,
    limit: Duration,
    mut probe: impl FnMut() -> Result<T, String>,
) -> Result<T, String> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(10);
    loop {
        match probe() {
            Ok(v) => return Ok(v),
            Err(e) if start.elapsed() >= limit => {
                return Err(format!(
                    "{what}: not ready after {:.1} s; last error: {e}",
                    start.elapsed().as_secs_f64()
                ));
            }
            Err(_) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(200));
            }
        }
    }
}

/// Runs a command to completion with a time limit. Err when it cannot start or overruns
/// (then it is killed); Ok with its output whatever its exit status.
pub fn try_run(cmd: &mut Command, limit: Duration) -> Result<Output, String> {
    run_limited(cmd, limit, false)
}

/// [`try_run`] for a long job (provisioning, a bulk load): in its own process group and
/// watched, so that it dies with the test process instead of finishing as an orphan.
pub fn try_run_watched(cmd: &mut Command, limit: Duration) -> Result<Output, String> {
    run_limited(cmd, limit, true)
}

fn run_limited(cmd: &mut Command, limit: Duration, watched: bool) -> Result<Output, String> {
    use std::os::unix::process::CommandExt as _;
    if watched {
        cmd.process_group(0);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    let pid = child.id();
    if watched {
        process::watch(pid);
    }
    // Both pipes are read on threads so that neither fills up and blocks the child.
    fn reader(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut bytes);
            }
            bytes
        })
    }
    let out = reader(child.stdout.take());
    let err = reader(child.stderr.take());
    let start = Instant::now();
    let mut pause = Duration::from_millis(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if start.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!("{cmd:?} did not finish within {limit:?}"));
            }
            Ok(None) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            Err(e) => break Err(format!("waiting for {cmd:?}: {e}")),
        }
    };
    if watched {
        process::forget(pid);
    }
    Ok(Output {
        status: status?,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// Runs a command that must succeed; panics with its command line, status and stderr.
pub fn run(cmd: &mut Command) -> Output {
    let out = try_run(cmd, TOOL_LIMIT).must("running a lab command");
    if !out.status.success() {
        panic!(
            "{cmd:?} failed ({})\n--- stderr ---\n{}\n--- stdout ---\n{}",
            out.status,
            crate::support::tail(&String::from_utf8_lossy(&out.stderr)),
            crate::support::tail(&String::from_utf8_lossy(&out.stdout)),
        );
    }
    out
}

/// Panics unless `program` is on PATH (saying which Debian package provides it).
pub fn require_program(program: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        || Path::new("/usr/sbin").join(program).is_file();
    assert!(
        found,
        "`{program}` is not installed: apt-get install {package} (scripts/test.sh installs it)"
    );
}

/// Writes a secret to a file only its owner can read (what configs point at).
pub fn write_secret(path: &Path, secret: &str) {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .must(&format!("creating {}", path.display()));
    f.write_all(secret.as_bytes())
        .must(&format!("writing {}", path.display()));
}

/// The last lines of a log file, for failure messages.
pub fn log_tail(path: &Path) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    format!(
        "--- {} ---\n{}",
        path.display(),
        crate::support::tail(&String::from_utf8_lossy(&text))
    )
}
