//! Near-real-time watch of an `ad` or `ldap` directory: a long-lived search on a connection
//! of its own that tells the runner *that* something changed, never *what*. The runner
//! answers with an ordinary delta import (DirSync, syncrepl), whose watermark makes it
//! cheap, so a watch that misses or repeats a notification costs a little time and never
//! correctness.
//!
//! - AD: the change-notification control (1.2.840.113556.1.4.528) on the naming context
//!   (or up to five included OUs); where the server refuses it, a DirSync poll
//!   ([`ad`]).
//! - LDAP: RFC 4533 syncrepl refreshAndPersist from a cookie of its own ([`persist`]).
//!
//! The watch runs on its own thread with its own single-threaded runtime. A lost
//! connection is re-established with exponential backoff (1 s doubling, at most 30 s) and
//! reported as resumed, which makes the runner run a delta import for what was missed.

mod ad;
mod persist;

use std::time::Duration;

use ldap3::LdapError;
use tokio::time::Instant;

use super::session::{Failure, Session};
use super::wire::Guard;
use crate::config::{LdapConfig, LdapFlavor};
use crate::connector::{WatchEvent, WatchSink, Watcher};
use crate::model::ConnectorName;

/// How often a watch looks at the shutdown flag while it waits.
const TICK: Duration = Duration::from_millis(200);

/// The first wait after a failure; doubled after each further failure.
const BACKOFF_START: Duration = Duration::from_secs(1);

/// The longest wait between two attempts.
const BACKOFF_CAP: Duration = Duration::from_secs(30);

/// A search the server has not refused within this time is taken as established (AD
/// answers a notification search only when something changes).
const SETTLE: Duration = Duration::from_millis(300);

/// How long closing the connection may take at shutdown.
const CLOSE_LIMIT: Duration = Duration::from_secs(2);

/// The watch of one `ad` or `ldap` connector.
pub struct LdapWatcher {
    name: ConnectorName,
    cfg: LdapConfig,
}

impl LdapWatcher {
    /// A watcher for these settings; nothing is contacted until it runs.
    pub fn new(name: ConnectorName, cfg: LdapConfig) -> Self {
        LdapWatcher { name, cfg }
    }
}

/// Why one watch session ended.
enum End {
    /// The daemon is stopping.
    Stopping,
    /// The connection or the search broke: try again after a pause.
    Lost(String),
    /// The server refused the push mechanism itself (AD falls back to polling).
    Refused(String),
}

/// Which mechanism the watch uses.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Change notification (AD) or refreshAndPersist (LDAP).
    Push,
    /// AD without notifications: a DirSync poll.
    Poll,
}

/// Exponential backoff between attempts.
struct Backoff(Duration);

impl Backoff {
    fn next(&mut self) -> Duration {
        let d = self.0;
        self.0 = (self.0 * 2).min(BACKOFF_CAP);
        d
    }

    fn reset(&mut self) {
        self.0 = BACKOFF_START;
    }
}

/// What a watch session shares with the loop around it.
struct Watch<'a> {
    sink: &'a dyn WatchSink,
    /// A watch was established before: the next one resumes after a gap.
    established_before: bool,
    backoff: Backoff,
}

impl Watch<'_> {
    /// Reports the watch as established (once per session).
    fn established(&mut self, how: &str) {
        self.sink.report(WatchEvent::Watching {
            how: how.to_string(),
            resumed: self.established_before,
        });
        self.established_before = true;
        self.backoff.reset();
    }

    /// Sleeps `d`, waking early (false) when the daemon stops.
    async fn pause(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        while Instant::now() < until {
            if self.sink.stopping() {
                return false;
            }
            tokio::time::sleep_until(until.min(Instant::now() + TICK)).await;
        }
        !self.sink.stopping()
    }
}

/// Returns once the daemon is stopping.
async fn until_stopping(sink: &dyn WatchSink) {
    while !sink.stopping() {
        tokio::time::sleep(TICK).await;
    }
}

/// An ldap3 error as a failure with the server's own words, or the reason the connection was
/// cut under ldap3 (see `wire`).
fn ldap_failure(guard: &Guard, e: LdapError) -> Failure {
    guard.explain(match e {
        LdapError::LdapResult { result } => Failure::Refused {
            rc: result.rc,
            text: result.text,
        },
        other => Failure::Unreachable(other.to_string()),
    })
}

impl Watcher for LdapWatcher {
    fn batch_window(&self) -> Duration {
        self.cfg.watch_window
    }

    fn run(self: Box<Self>, sink: Box<dyn WatchSink>) {
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                tracing::error!(
                    connector = %self.name,
                    "cannot start the watch's runtime: {e}; only the schedule carries changes"
                );
                return;
            }
        };
        rt.block_on(self.watch(sink.as_ref()));
    }
}

impl LdapWatcher {
    async fn watch(&self, sink: &dyn WatchSink) {
        let mut w = Watch {
            sink,
            established_before: false,
            backoff: Backoff(BACKOFF_START),
        };
        let mut mode = Mode::Push;
        // syncrepl resumes from the last cookie it saw, so a reconnect replays the gap.
        let mut cookie: Option<Vec<u8>> = None;
        loop {
            if sink.stopping() {
                return;
            }
            // A server that does not answer must not hold up a shutdown for the whole
            // connect timeout.
            let connected = tokio::select! {
                c = Session::connect(&self.cfg) => c,
                () = until_stopping(sink) => return,
            };
            let end = match connected {
                Err(f) => End::Lost(f.to_string()),
                Ok(mut s) => {
                    let end = match (self.cfg.flavor, mode) {
                        (LdapFlavor::Ad, Mode::Push) => ad::notify(self, &mut s, &mut w).await,
                        (LdapFlavor::Ad, Mode::Poll) => ad::poll(self, &mut s, &mut w).await,
                        (LdapFlavor::Ldap, _) => {
                            persist::persist(self, &mut s, &mut w, &mut cookie).await
                        }
                    };
                    // Unbinding ends the open searches on the server as well.
                    let _ = tokio::time::timeout(CLOSE_LIMIT, s.close()).await;
                    end
                }
            };
            match end {
                End::Stopping => return,
                End::Refused(reason) if self.cfg.flavor == LdapFlavor::Ad && mode == Mode::Push => {
                    tracing::warn!(
                        connector = %self.name,
                        "change notification refused ({reason}); polling DirSync every {} s instead",
                        ad::POLL.as_secs()
                    );
                    mode = Mode::Poll;
                }
                End::Lost(reason) | End::Refused(reason) => {
                    let retry = w.backoff.next();
                    sink.report(WatchEvent::Lost { reason, retry });
                    if !w.pause(retry).await {
                        return;
                    }
                }
            }
        }
    }

    /// The connector's name, for log lines.
    fn name(&self) -> &str {
        self.name.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_and_resets() {
        let mut b = Backoff(BACKOFF_START);
        let waits: Vec<u64> = (0..7).map(|_| b.next().as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 16, 30, 30]);
        b.reset();
        assert_eq!(b.next(), BACKOFF_START);
    }
}
