//! The service manager's side of `run`: readiness, reload and watchdog notifications
//! (sd_notify(3)) as datagrams to `$NOTIFY_SOCKET`.
//!
//! Written on the standard library rather than with the sd-notify crate, whose current
//! release pulls in libc for what is one `sendto` here; abstract socket names (`@…`) go
//! through `SocketAddrExt`, so no unsafe code is needed.

use std::ffi::OsString;
use std::os::linux::net::SocketAddrExt as _;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::runner::handle::{Request, RunnerHandle};
use crate::runner::reload::NewConfig;

/// Where notifications go, taken from the environment systemd starts the service with.
pub(super) struct Notifier {
    socket: UnixDatagram,
    addr: SocketAddr,
    shown: String,
}

impl Notifier {
    /// The notifier `$NOTIFY_SOCKET` names, or None when there is none (not started by
    /// systemd with `Type=notify`). A socket that cannot be used is logged once.
    pub(super) fn from_env() -> Option<Notifier> {
        let name = std::env::var_os("NOTIFY_SOCKET")?;
        match Notifier::new(&name) {
            Ok(n) => Some(n),
            Err(e) => {
                tracing::error!(
                    "NOTIFY_SOCKET {}: {e}; systemd gets no readiness or watchdog messages",
                    name.to_string_lossy()
                );
                None
            }
        }
    }

    fn new(name: &OsString) -> std::io::Result<Notifier> {
        let bytes = name.as_bytes();
        let addr = match bytes.strip_prefix(b"@") {
            Some(abstract_name) => SocketAddr::from_abstract_name(abstract_name)?,
            None => SocketAddr::from_pathname(std::path::Path::new(name))?,
        };
        Ok(Notifier {
            socket: UnixDatagram::unbound()?,
            addr,
            shown: name.to_string_lossy().into_owned(),
        })
    }

    /// Sends one message ("READY=1", "WATCHDOG=1", …); a failure is logged, never fatal:
    /// the sync matters more than the service manager's view of it.
    pub(super) fn send(&self, message: &str) {
        if let Err(e) = self.socket.send_to_addr(message.as_bytes(), &self.addr) {
            tracing::warn!(
                "cannot notify systemd through {} ({message:?}): {e}",
                self.shown
            );
        }
    }

    /// READY=1 with a status line for `systemctl status`.
    pub(super) fn ready(&self, status: &str) {
        self.send(&format!("READY=1\nSTATUS={status}"));
    }

    /// RELOADING=1 with the monotonic time systemd (253 and later) asks for.
    pub(super) fn reloading(&self) {
        let usec = monotonic_usec().map_or(String::new(), |u| format!("\nMONOTONIC_USEC={u}"));
        self.send(&format!("RELOADING=1{usec}"));
    }

    /// STOPPING=1: the service is shutting down on purpose.
    pub(super) fn stopping(&self) {
        self.send("STOPPING=1");
    }
}

/// CLOCK_MONOTONIC in microseconds: the clock systemd compares RELOADING=1 against.
fn monotonic_usec() -> Option<u64> {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let secs = u64::try_from(t.tv_sec).ok()?;
    let nanos = u64::try_from(t.tv_nsec).ok()?;
    Some(secs * 1_000_000 + nanos / 1_000)
}

/// How often to send WATCHDOG=1: half of `WATCHDOG_USEC`, as sd_watchdog_enabled(3)
/// advises, when the watchdog is on and meant for this process (`WATCHDOG_PID`, if set, is
/// our pid).
pub(super) fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.trim().parse::<u32>().ok()? != std::process::id() {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

/// Tells systemd the daemon is ready (the state file is open and the status page, when
/// enabled, listens), then keeps the watchdog fed and answers SIGHUP with a config reload.
pub(super) fn started(
    rt: &tokio::runtime::Runtime,
    notifier: Option<Arc<Notifier>>,
    config_path: Option<&Path>,
    handle: RunnerHandle,
) {
    if let Some(n) = &notifier {
        n.ready("syncing");
        if let Some(every) = watchdog_interval() {
            tracing::info!(?every, "systemd watchdog on");
            let n = Arc::clone(n);
            // The watchdog proves the async runtime (scheduler, status page) is alive; a cycle
            // runs on a blocking thread and may rightly take hours, so it does not count.
            rt.spawn(async move {
                let mut tick = tokio::time::interval(every);
                loop {
                    tick.tick().await;
                    n.send("WATCHDOG=1");
                }
            });
        }
    }
    if let Some(path) = config_path {
        rt.spawn(reload_on_hangup(path.to_path_buf(), handle, notifier));
    }
}

/// Each SIGHUP: read and check the config file; a good one goes to the runner for its next
/// cycle, a bad one is logged and the running config stays.
async fn reload_on_hangup(path: PathBuf, handle: RunnerHandle, notifier: Option<Arc<Notifier>>) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(
                "cannot install the SIGHUP handler: {e}; config reloads need a restart"
            );
            return;
        }
    };
    while hup.recv().await.is_some() {
        tracing::info!(config = %path.display(), "SIGHUP: reloading the config");
        if let Some(n) = &notifier {
            n.reloading();
        }
        match reload(&path, &handle).await {
            Ok(message) => tracing::info!("SIGHUP: {message}"),
            Err(e) => tracing::error!(
                config = %path.display(),
                "SIGHUP: new config refused, the running one stays: {e}"
            ),
        }
        if let Some(n) = &notifier {
            n.ready("syncing");
        }
    }
}

async fn reload(path: &Path, handle: &RunnerHandle) -> Result<String, String> {
    let p = path.to_path_buf();
    let config = tokio::task::spawn_blocking(move || Config::load(&p))
        .await
        .map_err(|e| format!("reading the config panicked: {e}"))?
        .map_err(|e| e.to_string())?;
    if handle.status().running.is_some() {
        tracing::info!("SIGHUP: the config is good; it is taken when the running cycle ends");
    }
    let config = Arc::new(config);
    let reply = handle
        .submit(Request::Reload(NewConfig(Arc::clone(&config))))
        .ok_or("the runner is stopping")?;
    let taken = reply
        .await
        .map_err(|_| "the runner stopped".to_string())??;
    // The status page shows the new connectors and settings from now on.
    handle.live().set_config(config);
    Ok(taken)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn receive(server: &UnixDatagram) -> String {
        let mut buf = [0u8; 512];
        let n = server.recv(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn messages_reach_a_path_socket_and_an_abstract_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let server = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::new(&path.clone().into_os_string()).unwrap();
        n.ready("up");
        assert_eq!(receive(&server), "READY=1\nSTATUS=up");

        let name = format!("bridgehead-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let server = UnixDatagram::bind_addr(&addr).unwrap();
        let n = Notifier::new(&OsString::from(format!("@{name}"))).unwrap();
        n.send("WATCHDOG=1");
        assert_eq!(receive(&server), "WATCHDOG=1");
        n.reloading();
        assert!(receive(&server).starts_with("RELOADING=1\nMONOTONIC_USEC="));
    }
}
