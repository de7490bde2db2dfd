//! Connector jobs for agents, on the appliance: what a job and its messages are on the
//! wire, the queue per agent group, and the lease of a taken job to one agent. The runner's
//! side of a job is [`super::remote`].
//!
//! Only an agent of the job's group can take it, and only the agent holding the lease can
//! send its changes, outcomes, events or end: the group is the one named by the agent's
//! certificate in the register, never anything the agent says.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::config::LdapConfig;
use crate::connector::{ConnectorError, ConnectorErrorKind, WatchEvent};
use crate::model::{Anchor, ConnectorName, Dn, ExportItem, ExportOutcome, ImportChange, Watermark};

/// How long an agent's long poll for work waits before it is answered "nothing".
pub const POLL_WAIT: Duration = Duration::from_secs(20);

/// What a job asks the agent to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Op {
    /// Check that the directory can be reached and read.
    Check,
    /// Import since the watermark (everything when `full`).
    Import {
        /// The connector's watermark.
        watermark: Option<Watermark>,
        /// A full import.
        full: bool,
    },
    /// Apply these exports.
    Export {
        /// The items, in order.
        items: Vec<ExportItem>,
    },
    /// Watch the directory (near-real-time mode) until the appliance gives the job up.
    Watch,
}

/// A watcher's report as it travels (see [`WatchEvent`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum WireEvent {
    /// [`WatchEvent::Changed`].
    Changed,
    /// [`WatchEvent::Watching`].
    Watching {
        /// The mechanism.
        how: String,
        /// After a lost connection.
        resumed: bool,
    },
    /// [`WatchEvent::Lost`].
    Lost {
        /// The directory's words.
        reason: String,
        /// Milliseconds to the next attempt.
        retry_ms: u64,
    },
}

impl WireEvent {
    /// From a watcher's event.
    pub fn from_event(e: &WatchEvent) -> WireEvent {
        match e {
            WatchEvent::Changed => WireEvent::Changed,
            WatchEvent::Watching { how, resumed } => WireEvent::Watching {
                how: how.clone(),
                resumed: *resumed,
            },
            WatchEvent::Lost { reason, retry } => WireEvent::Lost {
                reason: reason.clone(),
                retry_ms: retry.as_millis() as u64,
            },
        }
    }

    pub(super) fn into_event(self, via: &str) -> WatchEvent {
        match self {
            WireEvent::Changed => WatchEvent::Changed,
            WireEvent::Watching { how, resumed } => WatchEvent::Watching {
                how: format!("{how}, through agent {via}"),
                resumed,
            },
            WireEvent::Lost { reason, retry_ms } => WatchEvent::Lost {
                reason,
                retry: Duration::from_millis(retry_ms),
            },
        }
    }
}

/// A job as the agent receives it: the connector's settings travel with it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    /// The job's id.
    pub id: u64,
    /// The connector.
    pub connector: ConnectorName,
    /// Its settings (no secret in them).
    pub settings: LdapConfig,
    /// Its bind password, read on the appliance; it travels only inside the agent's mutual
    /// TLS connection and is kept nowhere on the agent. None when the agent reads it from
    /// its own file (`agent_bind_password_file`).
    pub password: Option<String>,
    /// What to do.
    pub op: Op,
}

/// A question the connector asks its import sink, sent back to the appliance.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Ask {
    /// [`crate::connector::ImportSink::knows`].
    Knows(Anchor),
    /// [`crate::connector::ImportSink::dn_of`].
    DnOf(Anchor),
    /// [`crate::connector::ImportSink::holds_at_least`].
    HoldsAtLeast(u64),
    /// [`crate::connector::ImportSink::now_ms`].
    NowMs,
    /// [`crate::connector::ImportSink::string_referrers`].
    StringReferrers(Anchor, Option<Dn>),
}

/// A connector failure as it travels.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireError {
    /// "unreachable", "bad_data" or "unsupported".
    pub kind: String,
    /// The connector's message.
    pub message: String,
}

impl WireError {
    /// From a connector's error.
    pub fn from_error(e: &ConnectorError) -> WireError {
        let kind = match e.kind {
            ConnectorErrorKind::Unreachable => "unreachable",
            ConnectorErrorKind::BadData => "bad_data",
            ConnectorErrorKind::Unsupported => "unsupported",
        };
        WireError {
            kind: kind.into(),
            message: e.message.clone(),
        }
    }

    pub(super) fn into_error(self, connector: &ConnectorName, via: &str) -> ConnectorError {
        ConnectorError {
            connector: connector.clone(),
            kind: match self.kind.as_str() {
                "bad_data" => ConnectorErrorKind::BadData,
                "unsupported" => ConnectorErrorKind::Unsupported,
                _ => ConnectorErrorKind::Unreachable,
            },
            message: format!("{} (through agent {via})", self.message),
        }
    }
}

/// How a job ended, as the agent reports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Outcome {
    /// A check passed.
    Checked,
    /// An import ended.
    Imported {
        /// The new watermark.
        watermark: Option<Watermark>,
        /// A complete snapshot.
        complete: bool,
    },
    /// An export's outcomes, one per item.
    Exported(Vec<ExportOutcome>),
    /// The connector failed as a whole.
    Failed(WireError),
}

/// What reaches the runner's thread while a job runs.
pub(super) enum Msg {
    Taken(String),
    Changes(Vec<ImportChange>, SyncSender<Result<(), String>>),
    Ask(Ask, SyncSender<Result<serde_json::Value, String>>),
    Outcomes(Vec<ExportOutcome>, SyncSender<Result<(), String>>),
    Event(WireEvent),
    Done(Outcome),
    Lost(String),
}

struct Queued {
    job: Job,
    tx: SyncSender<Msg>,
}

struct Leased {
    agent: String,
    tx: SyncSender<Msg>,
}

#[derive(Default)]
struct Inner {
    queued: HashMap<String, VecDeque<Queued>>,
    leased: HashMap<u64, Leased>,
    next_id: u64,
    /// Agents whose connection ended, until they say hello again.
    gone: std::collections::HashSet<String>,
}

/// The job queue; cheap to share.
#[derive(Clone, Default)]
pub struct Jobs {
    inner: Arc<(Mutex<Inner>, Condvar)>,
}

impl Jobs {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn submit(&self, group: &str, mut job: Job) -> (u64, Receiver<Msg>) {
        let (tx, rx) = sync_channel(1);
        let mut inner = self.lock();
        inner.next_id += 1;
        job.id = inner.next_id;
        inner
            .queued
            .entry(group.to_string())
            .or_default()
            .push_back(Queued { job, tx });
        let id = inner.next_id;
        drop(inner);
        self.inner.1.notify_all();
        (id, rx)
    }

    pub(super) fn withdraw(&self, group: &str, id: u64) {
        let mut inner = self.lock();
        if let Some(q) = inner.queued.get_mut(group) {
            q.retain(|j| j.job.id != id);
        }
        inner.leased.remove(&id);
    }

    /// An agent of `group` asks for work: the oldest job of its group, leased to it, or
    /// None after [`POLL_WAIT`].
    pub fn take(&self, group: &str, agent: &str) -> Option<Job> {
        let deadline = Instant::now() + POLL_WAIT;
        let mut inner = self.lock();
        loop {
            if inner.gone.contains(agent) {
                return None;
            }
            if let Some(q) = inner.queued.get_mut(group).and_then(VecDeque::pop_front) {
                // The runner may have given up on it meanwhile; then skip it.
                if q.tx.send(Msg::Taken(agent.to_string())).is_err() {
                    continue;
                }
                let id = q.job.id;
                inner.leased.insert(
                    id,
                    Leased {
                        agent: agent.to_string(),
                        tx: q.tx,
                    },
                );
                return Some(q.job);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            inner = self
                .inner
                .1
                .wait_timeout(inner, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// The lease of job `id`, if `agent` holds it.
    fn lease(&self, id: u64, agent: &str) -> Result<SyncSender<Msg>, String> {
        match self.lock().leased.get(&id) {
            Some(l) if l.agent == agent => Ok(l.tx.clone()),
            Some(_) => Err(format!("job {id} is leased to another agent")),
            None => Err(format!("there is no job {id} in progress")),
        }
    }

    /// An agent sends a batch of an import's changes; returns once the runner took them.
    pub fn changes(&self, id: u64, agent: &str, changes: Vec<ImportChange>) -> Result<(), String> {
        let tx = self.lease(id, agent)?;
        let (reply, answer) = sync_channel(1);
        tx.send(Msg::Changes(changes, reply))
            .map_err(|_| format!("job {id} was given up by the appliance"))?;
        answer
            .recv()
            .map_err(|_| format!("job {id} was given up by the appliance"))?
    }

    /// An agent's connector asks its sink a question.
    pub fn ask(&self, id: u64, agent: &str, ask: Ask) -> Result<serde_json::Value, String> {
        let tx = self.lease(id, agent)?;
        let (reply, answer) = sync_channel(1);
        tx.send(Msg::Ask(ask, reply))
            .map_err(|_| format!("job {id} was given up by the appliance"))?;
        answer
            .recv()
            .map_err(|_| format!("job {id} was given up by the appliance"))?
    }

    /// An agent reports the outcomes of a chunk of an export; returns once the runner has
    /// them (from then on they are not sent again, whatever happens to the agent).
    pub fn outcomes(
        &self,
        id: u64,
        agent: &str,
        outcomes: Vec<ExportOutcome>,
    ) -> Result<(), String> {
        let tx = self.lease(id, agent)?;
        let (reply, answer) = sync_channel(1);
        tx.send(Msg::Outcomes(outcomes, reply))
            .map_err(|_| format!("job {id} was given up by the appliance"))?;
        answer
            .recv()
            .map_err(|_| format!("job {id} was given up by the appliance"))?
    }

    /// An agent's watcher reports an event (not waiting for the runner to act on it).
    pub fn event(&self, id: u64, agent: &str, event: WireEvent) -> Result<(), String> {
        let tx = self.lease(id, agent)?;
        tx.send(Msg::Event(event))
            .map_err(|_| format!("job {id} was given up by the appliance"))
    }

    /// An agent reports how a job ended; the lease ends.
    pub fn done(&self, id: u64, agent: &str, outcome: Outcome) -> Result<(), String> {
        let tx = self.lease(id, agent)?;
        self.lock().leased.remove(&id);
        tx.send(Msg::Done(outcome))
            .map_err(|_| format!("job {id} was given up by the appliance"))
    }

    /// An agent said hello on a new connection: it may take jobs again.
    pub fn agent_back(&self, agent: &str) {
        self.lock().gone.remove(agent);
    }

    /// An agent's connection ended: the jobs it held fail now rather than at a timeout.
    pub fn agent_gone(&self, agent: &str) {
        let mut inner = self.lock();
        // Its long poll may still be waiting here: it must not take a job for a dead peer.
        inner.gone.insert(agent.to_string());
        let ids: Vec<u64> = inner
            .leased
            .iter()
            .filter(|(_, l)| l.agent == agent)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(l) = inner.leased.remove(&id) {
                // Sent from a thread of its own: the job's channel may be full (a watch
                // event not yet taken), and this runs on the listener's task.
                let why = format!("the connection of agent {agent} ended");
                std::thread::spawn(move || {
                    let _ = l.tx.send(Msg::Lost(why));
                });
            }
        }
    }
}
