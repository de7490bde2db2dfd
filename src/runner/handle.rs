//! The runner as other parts of the daemon see it: a [`RunnerHandle`] to ask for work (a
//! cycle now, approving held deletes, leaving staging mode, a new admin password hash) and
//! to read the current cycle's live progress, without ever waiting for the runner's lock.
//!
//! Requests travel over a channel to the scheduler, the only task that drives the
//! [`Runner`]; so a request never runs beside a cycle, and one made during a cycle waits for
//! it to end. The live status is a small shared snapshot the runner updates at each phase.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};

use super::totals::CycleTotals;
use super::{CycleOptions, Runner};
use crate::config::Config;
use crate::model::{Clock, ConnectorName};
use crate::store::admin::{AdminPasswordRecord, StagingOverrideRecord};
use crate::store::{ConnectorRunStats, RunRecord};

/// Work the status page (or an API client) asks of the runner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Run a cycle now.
    Cycle {
        /// Full import and full sync instead of delta.
        full: bool,
        /// Who asked, for the run history.
        who: String,
    },
    /// Release the deletes the deletion threshold holds back for one connector.
    ApproveDeletes {
        /// The connector.
        connector: String,
        /// Who approved, for the run history.
        who: String,
    },
    /// Sync one object now (between cycles) and report what it did.
    SyncObject {
        /// Its source connector.
        connector: String,
        /// Its DN there.
        dn: String,
        /// Stop before export.
        dry_run: bool,
        /// Who asked, for the run history.
        who: String,
    },
    /// Leave staging mode: exports run from the next cycle on.
    LeaveStaging {
        /// Who decided, for the run history.
        who: String,
    },
    /// Store a new admin password hash (argon2id PHC string).
    SetAdminPassword {
        /// The hash; never the password.
        phc: String,
        /// Who set it.
        who: String,
    },
    /// Take a new config (read and checked from its file) for the next cycle.
    Reload(super::reload::NewConfig),
}

/// What became of a request: a message for the admin, or why it failed.
pub type Reply = Result<String, String>;

/// How long a caller waited for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The runner did it (or refused, with the reason).
    Done(Reply),
    /// Still queued behind a running cycle; it runs when that ends.
    Queued,
    /// The runner is gone (shutting down).
    Stopped,
}

/// The cycle running now, as far as the status page needs it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RunningCycle {
    /// Who started it.
    pub trigger: String,
    /// "full" or "delta".
    pub mode: String,
    /// Unix ms start.
    pub started_ms: i64,
    /// import, sync, export or confirm.
    pub phase: String,
    /// The connector of a per-connector phase.
    pub connector: Option<String>,
    /// The latest progress line ("contoso: imported 52000").
    pub detail: String,
}

/// A snapshot of what the runner is doing.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct LiveStatus {
    /// The cycle running now.
    pub running: Option<RunningCycle>,
    /// Unix ms of the next scheduled cycle.
    pub next_cycle_ms: Option<i64>,
    /// Staging mode as the runner applies it (the config, less a run-time override).
    pub staging: bool,
    /// Requests waiting for the runner.
    pub queued: usize,
    /// Near-real-time watches: connector name and state ("watching (change
    /// notification)", "lost: …"), in config order.
    pub watches: Vec<(String, String)>,
}

#[derive(Default)]
struct LiveState {
    status: LiveStatus,
    bar: Option<indicatif::ProgressBar>,
}

/// Shared between the runner (writes) and the status page (reads).
pub struct Live {
    state: Mutex<LiveState>,
    clock: Arc<dyn Clock>,
    /// What the finished cycles added up to since the process started (`/metrics`).
    totals: Mutex<CycleTotals>,
    /// The config file as last loaded (at start or by a reload), for the status page.
    config: Mutex<Option<Arc<Config>>>,
}

impl Live {
    fn lock(&self) -> MutexGuard<'_, LiveState> {
        // A panic elsewhere cannot leave this plain data half-written in a harmful way.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current snapshot, with the running cycle's latest progress line.
    pub fn status(&self) -> LiveStatus {
        let st = self.lock();
        let mut out = st.status.clone();
        if let (Some(r), Some(bar)) = (out.running.as_mut(), st.bar.as_ref()) {
            r.detail = bar.message();
        }
        out
    }

    pub(super) fn cycle_started(&self, opts: &CycleOptions, started_ms: i64) {
        let mut st = self.lock();
        st.status.running = Some(RunningCycle {
            trigger: opts.trigger.clone(),
            mode: if opts.full { "full" } else { "delta" }.into(),
            started_ms,
            phase: "starting".into(),
            connector: None,
            detail: String::new(),
        });
        st.bar = None;
    }

    /// The config file as last loaded, once the daemon published it.
    pub fn config(&self) -> Option<Arc<Config>> {
        self.config
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Publishes the config file as loaded (at start, after a reload): what the status page
    /// shows from then on.
    pub fn set_config(&self, config: Arc<Config>) {
        *self.config.lock().unwrap_or_else(|p| p.into_inner()) = Some(config);
    }

    /// The totals of the cycles finished since the process started.
    pub fn totals(&self) -> CycleTotals {
        self.totals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(super) fn cycle_recorded(&self, rec: &RunRecord) {
        self.totals
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .add(rec);
    }

    pub(super) fn cycle_ended(&self) {
        let mut st = self.lock();
        st.status.running = None;
        st.bar = None;
    }

    pub(super) fn phase(&self, phase: &str, connector: Option<&ConnectorName>) {
        let mut st = self.lock();
        if let Some(r) = st.status.running.as_mut() {
            r.phase = phase.to_string();
            r.connector = connector.map(|c| c.to_string());
        }
        if let Some(bar) = &st.bar {
            bar.set_message(String::new());
        }
    }

    pub(super) fn attach_bar(&self, bar: indicatif::ProgressBar) {
        self.lock().bar = Some(bar);
    }

    pub(super) fn set_watch(&self, connector: &ConnectorName, state: &str) {
        let mut st = self.lock();
        let name = connector.as_str();
        match st.status.watches.iter_mut().find(|(n, _)| n == name) {
            Some(w) => w.1 = state.to_string(),
            None => st
                .status
                .watches
                .push((name.to_string(), state.to_string())),
        }
    }

    pub(super) fn set_staging(&self, staging: bool) {
        self.lock().status.staging = staging;
    }

    fn set_next(&self, ms: Option<i64>) {
        self.lock().status.next_cycle_ms = ms;
    }

    fn queued(&self, delta: isize) {
        let mut st = self.lock();
        st.status.queued = st.status.queued.saturating_add_signed(delta);
    }
}

type Envelope = (Request, oneshot::Sender<Reply>);

/// Asks the runner for work and reads its live status; cheap to clone.
#[derive(Clone)]
pub struct RunnerHandle {
    tx: mpsc::UnboundedSender<Envelope>,
    live: Arc<Live>,
}

/// The scheduler's end of the channel.
pub struct Inbox {
    rx: mpsc::UnboundedReceiver<Envelope>,
    live: Arc<Live>,
    open: bool,
}

/// A connected handle and inbox; `clock` dates the live status.
pub fn channel(clock: Arc<dyn Clock>) -> (RunnerHandle, Inbox) {
    let (tx, rx) = mpsc::unbounded_channel();
    let live = Arc::new(Live {
        state: Mutex::new(LiveState::default()),
        clock,
        totals: Mutex::new(CycleTotals::default()),
        config: Mutex::new(None),
    });
    (
        RunnerHandle {
            tx,
            live: Arc::clone(&live),
        },
        Inbox {
            rx,
            live,
            open: true,
        },
    )
}

impl RunnerHandle {
    /// The live status.
    pub fn status(&self) -> LiveStatus {
        self.live.status()
    }

    /// The shared live status, to attach to the [`Runner`].
    pub fn live(&self) -> Arc<Live> {
        Arc::clone(&self.live)
    }

    /// Queues a request; the receiver gets the reply once the runner has done it.
    pub fn submit(&self, req: Request) -> Option<oneshot::Receiver<Reply>> {
        let (tx, rx) = oneshot::channel();
        self.live.queued(1);
        if self.tx.send((req, tx)).is_err() {
            self.live.queued(-1);
            return None;
        }
        Some(rx)
    }

    /// Queues a request and waits up to `wait` for its reply; for blocking threads.
    pub fn ask_blocking(&self, req: Request, wait: Duration) -> Answer {
        let Some(mut rx) = self.submit(req) else {
            return Answer::Stopped;
        };
        let deadline = std::time::Instant::now() + wait;
        loop {
            match rx.try_recv() {
                Ok(reply) => return Answer::Done(reply),
                Err(oneshot::error::TryRecvError::Closed) => return Answer::Stopped,
                Err(oneshot::error::TryRecvError::Empty) => {}
            }
            if std::time::Instant::now() >= deadline {
                return Answer::Queued;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Inbox {
    /// The next request; pending forever once every handle is gone.
    pub(super) async fn next(&mut self) -> Option<Envelope> {
        if !self.open {
            return std::future::pending().await;
        }
        let got = self.rx.recv().await;
        if got.is_none() {
            self.open = false;
        }
        got
    }

    /// Records when the next scheduled cycle starts.
    pub(super) fn next_cycle_in(&self, d: Option<Duration>) {
        let now = self.live.clock.now_ms();
        self.live
            .set_next(d.map(|d| now + d.as_millis().min(i64::MAX as u128) as i64));
    }

    pub(super) fn done(&self) {
        self.live.queued(-1);
    }
}

impl Runner {
    /// Reports live progress to `live` from now on.
    pub fn attach(&mut self, live: Arc<Live>) {
        live.set_staging(self.config.staging);
        self.live = Some(live);
    }

    /// Applies a run-time "left staging" override from the state file; forgets it once the
    /// config file itself says `staging = false`, so that turning staging on again later works.
    pub(super) fn apply_staging_override(&mut self) {
        let found = self.store.read().and_then(|tx| tx.staging_override());
        match found {
            Ok(Some(ov)) if self.config.staging => {
                tracing::warn!(
                    left_by = %ov.left_by,
                    "staging mode was left at run time; exports run although the config file \
                     says staging = true (set it to false there)"
                );
                self.config.staging = false;
            }
            Ok(Some(_)) => {
                let cleared = self.store.write().and_then(|tx| {
                    tx.set_staging_override(None)?;
                    tx.commit()
                });
                if let Err(e) = cleared {
                    tracing::warn!("cannot clear the staging override: {e}");
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("cannot read the staging override: {e}"),
        }
    }

    pub(super) fn live_phase(&self, phase: &str, connector: Option<&ConnectorName>) {
        if let Some(live) = &self.live {
            live.phase(phase, connector);
        }
    }

    /// Adds an admin action to the run history, so that it shows who did what and when.
    fn record_action(&self, mode: &str, who: &str, connectors: Vec<ConnectorRunStats>) {
        let now = self.clock.now_ms();
        let rec = RunRecord {
            started_ms: now,
            finished_ms: now,
            mode: mode.into(),
            trigger: who.into(),
            connectors,
            failure: None,
            phases: Vec::new(),
            staging: self.config.staging,
        };
        let written = self.store.write().and_then(|tx| {
            tx.add_run(&rec)?;
            tx.commit()
        });
        if let Err(e) = written {
            tracing::warn!("cannot record {mode} by {who} in the run history: {e}");
        }
    }

    /// Does what a [`RunnerHandle`] asked; runs on the scheduler's blocking thread.
    pub fn execute(&mut self, req: Request) -> Reply {
        match req {
            Request::Cycle { full, who } => {
                let opts = CycleOptions {
                    full,
                    only: None,
                    trigger: who,
                    progress: false,
                };
                match self.cycle(&opts) {
                    Ok(rec) => {
                        let errors: u64 = rec.connectors.iter().map(|c| c.errors).sum();
                        Ok(format!("cycle finished with {errors} object errors"))
                    }
                    Err(e) => Err(e.to_string()),
                }
            }
            Request::ApproveDeletes { connector, who } => {
                let approval = self.approve(&connector).map_err(|e| e.to_string())?;
                let n = approval.deletes.len();
                tracing::info!(%connector, %who, released = n, import = approval.import.is_some(), "approved");
                self.record_action(
                    "approve-deletes",
                    &who,
                    vec![ConnectorRunStats {
                        connector: connector.clone(),
                        blocked_deletes: n as u64,
                        ..Default::default()
                    }],
                );
                let mut msg = match n {
                    0 => format!("connector {connector} has no deletes held back"),
                    n => {
                        format!("{n} deletes approved for {connector}; the next cycle exports them")
                    }
                };
                if let Some(i) = approval.import {
                    msg.push_str(&format!(
                        "; the import that found {} of {} objects is approved",
                        i.found, i.held
                    ));
                }
                Ok(msg)
            }
            Request::SyncObject {
                connector,
                dn,
                dry_run,
                who,
            } => {
                let dn = crate::model::Dn::parse(&dn).map_err(|e| format!("{dn}: {e}"))?;
                let which = super::sync_object::Which::Dn(dn);
                let r = self
                    .sync_object(&connector, &which, dry_run)
                    .map_err(|e| e.to_string())?;
                tracing::info!(%connector, dn = %r.dn, %who, dry_run, "object synced");
                self.record_action(
                    "sync-object",
                    &who,
                    vec![ConnectorRunStats {
                        connector: connector.clone(),
                        import: r.import,
                        ..Default::default()
                    }],
                );
                Ok(r.summary())
            }
            Request::LeaveStaging { who } => {
                if !self.config.staging {
                    return Ok("not in staging mode".into());
                }
                let rec = StagingOverrideRecord {
                    left_ms: self.clock.now_ms(),
                    left_by: who.clone(),
                };
                self.store
                    .write()
                    .and_then(|tx| {
                        tx.set_staging_override(Some(&rec))?;
                        tx.commit()
                    })
                    .map_err(|e| e.to_string())?;
                self.config.staging = false;
                if let Some(live) = &self.live {
                    live.set_staging(false);
                }
                tracing::warn!(%who, "staging mode left; the next cycle exports");
                self.record_action("leave-staging", &who, Vec::new());
                Ok("staging mode left; the next cycle exports what is pending".into())
            }
            Request::SetAdminPassword { phc, who } => {
                let rec = AdminPasswordRecord {
                    phc,
                    set_ms: self.clock.now_ms(),
                    set_by: who.clone(),
                };
                self.store
                    .write()
                    .and_then(|tx| {
                        tx.set_admin_password(&rec)?;
                        tx.commit()
                    })
                    .map_err(|e| e.to_string())?;
                tracing::info!(%who, "admin password changed");
                Ok("admin password changed".into())
            }
            Request::Reload(new) => self.reload(&new.0),
        }
    }
}
