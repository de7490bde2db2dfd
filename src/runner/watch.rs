//! Near-real-time mode, the runner's side: starts each connector's watcher on a thread of
//! its own, gathers what they report, and says when a delta cycle is due and for which
//! connectors.
//!
//! A change does not import anything by itself. The first change after a quiet spell
//! starts a batch; the batch's cycle starts once the directory has been quiet for
//! [`QUIET`] or, in a stream of changes, when the connector's batch window has passed
//! since the batch began. (A watcher that samples, like the AD USN probe every 0.5 s,
//! reports a continuous stream at most that often: such a stream becomes about two cycles
//! a second, each importing everything written meanwhile.) So a lone change travels at once and a burst of thousands
//! becomes a few cycles, each a delta import whose watermark makes it cheap. Changes that
//! arrive during a cycle start the next batch.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Shutdown;
use super::handle::Live;
use crate::connector::{Connector, WatchEvent, WatchSink};
use crate::model::ConnectorName;

/// A change this long after the last one is taken as the end of a burst.
pub const QUIET: Duration = Duration::from_millis(100);

/// How often a failed watch cycle is tried again before the watch waits for the next
/// change (or the scheduled cycle): a directory that just came back often fails the first
/// cycle on a connection that died with it.
const RETRIES: u32 = 5;

/// Where a watcher's thread reports: the scheduler's channel and the shutdown flag.
struct ChannelSink {
    index: usize,
    tx: mpsc::UnboundedSender<(usize, WatchEvent)>,
    shutdown: Shutdown,
    /// This set of watchers alone: stopped when a reloaded config replaces them.
    retired: Shutdown,
}

impl WatchSink for ChannelSink {
    fn report(&self, event: WatchEvent) {
        // The scheduler is gone only when the daemon is stopping.
        let _ = self.tx.send((self.index, event));
    }

    fn stopping(&self) -> bool {
        self.shutdown.requested() || self.retired.requested()
    }
}

/// One watched connector.
struct Watched {
    index: usize,
    name: ConnectorName,
    window: Duration,
    /// The last state logged ("watching", "lost: …"), so each change is logged once.
    state: String,
}

/// The watchers of a daemon and the batch they are collecting.
pub struct Watches {
    rx: mpsc::UnboundedReceiver<(usize, WatchEvent)>,
    threads: Vec<JoinHandle<()>>,
    watched: Vec<Watched>,
    live: Option<Arc<Live>>,
    /// Connectors with unimported changes (by index).
    pending: BTreeSet<usize>,
    /// When the batch began, and when its latest change arrived.
    first: Option<Instant>,
    last: Option<Instant>,
    /// Watch cycles that failed in a row.
    failures: u32,
    /// Raised to stop these watchers without stopping the daemon.
    retired: Shutdown,
}

impl Watches {
    /// Starts a watcher thread for every connector that has one.
    pub fn start(
        connectors: &[Box<dyn Connector>],
        shutdown: &Shutdown,
        live: Option<Arc<Live>>,
    ) -> Watches {
        let (tx, rx) = mpsc::unbounded_channel();
        let retired = Shutdown::default();
        let mut threads = Vec::new();
        let mut watched = Vec::new();
        for (index, c) in connectors.iter().enumerate() {
            let Some(w) = c.watcher() else { continue };
            let name = c.name().clone();
            let window = w.batch_window();
            let sink = Box::new(ChannelSink {
                index,
                tx: tx.clone(),
                shutdown: shutdown.clone(),
                retired: retired.clone(),
            });
            let spawned = std::thread::Builder::new()
                .name(format!("watch-{name}"))
                .spawn(move || w.run(sink));
            match spawned {
                Ok(t) => {
                    tracing::info!(connector = %name, ?window, "near-real-time watch starting");
                    threads.push(t);
                    if let Some(l) = &live {
                        l.set_watch(&name, "starting");
                    }
                    watched.push(Watched {
                        index,
                        name,
                        window,
                        state: "starting".into(),
                    });
                }
                Err(e) => tracing::error!(
                    connector = %name,
                    "cannot start the watch thread: {e}; the schedule alone carries changes"
                ),
            }
        }
        Watches {
            rx,
            threads,
            watched,
            live,
            pending: BTreeSet::new(),
            first: None,
            last: None,
            failures: 0,
            retired,
        }
    }

    /// The next report of any watcher; pending forever when there is none.
    pub async fn next(&mut self) -> (usize, WatchEvent) {
        match self.rx.recv().await {
            Some(e) => e,
            None => std::future::pending().await,
        }
    }

    /// Takes one report: a change joins the batch, a state change is logged once.
    pub fn note(&mut self, index: usize, event: WatchEvent) {
        let now = Instant::now();
        let Some(w) = self.watched.iter_mut().find(|w| w.index == index) else {
            return;
        };
        let state = match event {
            WatchEvent::Changed => {
                self.pending.insert(index);
                self.first.get_or_insert(now);
                self.last = Some(now);
                return;
            }
            WatchEvent::Watching { how, resumed } => {
                if resumed {
                    tracing::info!(
                        connector = %w.name,
                        "watch re-established ({how}); a delta import catches up on what was missed"
                    );
                    // Whatever changed while the watch was down was never reported.
                    self.pending.insert(index);
                    self.first.get_or_insert(now);
                    self.last = Some(now);
                } else {
                    tracing::info!(connector = %w.name, "watching for changes ({how})");
                }
                format!("watching ({how})")
            }
            WatchEvent::Lost { reason, retry } => {
                let state = format!("lost: {reason}");
                if !w.state.starts_with("lost") {
                    tracing::warn!(
                        connector = %w.name,
                        "watch lost: {reason}; trying again with backoff (first in {} s)",
                        retry.as_secs()
                    );
                } else {
                    tracing::debug!(connector = %w.name, "watch still down: {reason}");
                }
                state
            }
        };
        if let Some(l) = &self.live {
            l.set_watch(&w.name, &state);
        }
        w.state = state;
    }

    /// When the batch's cycle is due; None when no change waits.
    pub fn due(&self) -> Option<Instant> {
        let (first, last) = (self.first?, self.last?);
        let window = self
            .watched
            .iter()
            .filter(|w| self.pending.contains(&w.index))
            .map(|w| w.window)
            .min()
            .unwrap_or(Duration::ZERO);
        Some((last + QUIET.min(window)).min(first + window))
    }

    /// Ends the batch: the connectors whose changes the cycle must import.
    pub fn take(&mut self) -> Vec<usize> {
        self.first = None;
        self.last = None;
        std::mem::take(&mut self.pending).into_iter().collect()
    }

    /// A watch cycle went through.
    pub fn succeeded(&mut self) {
        self.failures = 0;
    }

    /// A watch cycle failed: its connectors wait for another one after a backoff (1 s,
    /// doubling), at most [`RETRIES`] times in a row.
    pub fn retry(&mut self, imports: Vec<usize>) {
        self.failures += 1;
        if self.failures > RETRIES {
            tracing::warn!(
                "watch cycles failed {RETRIES} times in a row; the next change or the scheduled \
                 cycle tries again"
            );
            self.failures = 0;
            return;
        }
        let at = Instant::now() + Duration::from_secs(1 << (self.failures - 1));
        self.pending.extend(imports);
        self.first = Some(self.first.map_or(at, |f| f.max(at)));
        self.last = Some(self.last.map_or(at, |l| l.max(at)));
    }

    /// Stops these watchers (a reloaded config starts new ones) and waits for them.
    pub fn retire(self) {
        self.retired.request();
        self.join();
    }

    /// Waits for the watcher threads, which end within a tick of the shutdown flag.
    pub fn join(self) {
        for t in self.threads {
            if t.join().is_err() {
                tracing::error!("a watch thread panicked");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watches(window: Duration) -> Watches {
        let mut w = Watches::start(&[], &Shutdown::default(), None);
        w.watched.push(Watched {
            index: 0,
            name: ConnectorName::new("src").unwrap_or_else(|e| panic!("{e}")),
            window,
            state: String::new(),
        });
        w
    }

    #[test]
    fn a_lone_change_goes_after_the_quiet_gap_a_stream_at_the_window() {
        let window = Duration::from_secs(1);
        let mut w = watches(window);
        assert_eq!(w.due(), None);
        w.note(0, WatchEvent::Changed);
        let first = w.first.unwrap_or_else(Instant::now);
        assert_eq!(w.due(), Some(first + QUIET));
        // A change that keeps coming moves the quiet point, never past the window.
        w.last = Some(first + Duration::from_millis(950));
        assert_eq!(w.due(), Some(first + window));
        assert_eq!(w.take(), vec![0]);
        assert_eq!(w.due(), None);
    }

    #[test]
    fn a_resumed_watch_asks_for_a_delta_import_and_a_failure_retries_later() {
        let mut w = watches(Duration::from_secs(1));
        w.note(
            0,
            WatchEvent::Watching {
                how: "test".into(),
                resumed: false,
            },
        );
        assert_eq!(w.due(), None, "a first start needs no catch-up");
        w.note(
            0,
            WatchEvent::Watching {
                how: "test".into(),
                resumed: true,
            },
        );
        assert_eq!(w.take(), vec![0]);
        let before = Instant::now();
        w.retry(vec![0]);
        assert!(
            w.due()
                .is_some_and(|d| d >= before + Duration::from_secs(1))
        );
        // An unknown connector's report is ignored.
        w.take();
        w.note(7, WatchEvent::Changed);
        assert_eq!(w.due(), None);
    }
}
