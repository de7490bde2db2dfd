//! Connector jobs for agents, on the appliance: the queue per agent group, the lease of a
//! taken job to one agent, and [`RemoteConnector`], the `Connector` the runner uses for a
//! connector with `agent_group`. The engine does not change: it calls the trait; the
//! remote connector queues the job and, on the runner's thread, feeds what the agent sends
//! back into the runner's sink.
//!
//! Flow control: the agent sends an import's changes in batches and waits for each batch's
//! answer, which comes only after the runner's sink took every change of it; so at most one
//! batch is in flight per job, on either side, however slow the appliance.
//!
//! Only an agent of the job's group can take it, and only the agent holding the lease can
//! send its changes or its end: the group is the one named by the agent's certificate in
//! the register, never anything the agent says.

use std::collections::{HashMap, VecDeque};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::config::LdapConfig;
use crate::connector::{
    Connector, ConnectorError, ConnectorErrorKind, ImportEnd, ImportSink, SpaceView, WatchEvent,
    WatchSink, Watcher,
};
use crate::model::{Anchor, ConnectorName, Dn, ExportItem, ExportOutcome, ImportChange, Watermark};

/// How long a queued job waits for an agent of its group before the run fails.
const PICKUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a taken job may stay silent (a page of a slow directory) before it is lost.
const SILENCE_TIMEOUT: Duration = Duration::from_secs(300);
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

    fn into_event(self, via: &str) -> WatchEvent {
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
    /// [`ImportSink::knows`].
    Knows(Anchor),
    /// [`ImportSink::dn_of`].
    DnOf(Anchor),
    /// [`ImportSink::holds_at_least`].
    HoldsAtLeast(u64),
    /// [`ImportSink::now_ms`].
    NowMs,
    /// [`ImportSink::string_referrers`].
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

    fn into_error(self, connector: &ConnectorName, via: &str) -> ConnectorError {
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
enum Msg {
    Taken(String),
    Changes(Vec<ImportChange>, SyncSender<Result<(), String>>),
    Ask(Ask, SyncSender<Result<serde_json::Value, String>>),
    Outcomes(Vec<ExportOutcome>, SyncSender<Result<(), String>>),
    Event(WireEvent),
    Done(Outcome),
    Lost(String),
}

/// How one attempt at a job ended short of an outcome.
enum Attempt {
    /// The agent holding the lease was lost: the job may go to another agent.
    Lost(String),
    /// The job failed for good.
    Failed(ConnectorError),
}

/// How many times a job whose agent was lost is handed to another one.
const ATTEMPTS: usize = 3;

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

    fn submit(&self, group: &str, mut job: Job) -> (u64, Receiver<Msg>) {
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

    fn withdraw(&self, group: &str, id: u64) {
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

/// A connector run by agents of a group, as the runner sees it.
pub struct RemoteConnector {
    name: ConnectorName,
    group: String,
    settings: LdapConfig,
    jobs: Jobs,
}

impl RemoteConnector {
    /// For connector `name` with these settings (bind password included, read on the
    /// appliance), run by agents of `group`.
    pub fn new(name: ConnectorName, group: String, settings: LdapConfig, jobs: Jobs) -> Self {
        RemoteConnector {
            name,
            group,
            settings,
            jobs,
        }
    }

    fn unreachable(&self, message: String) -> ConnectorError {
        ConnectorError {
            connector: self.name.clone(),
            kind: ConnectorErrorKind::Unreachable,
            message,
        }
    }

    /// Runs a job, handing it to another agent of the group when the one holding it is lost
    /// (an import starts again from the watermark it was given: replayed changes are
    /// upserts by anchor and set operations, harmless twice).
    fn run(
        &self,
        op: Op,
        mut sink: Option<&mut dyn ImportSink>,
    ) -> Result<Outcome, ConnectorError> {
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            match self.run_once(op.clone(), sink.as_deref_mut(), &mut Vec::new()) {
                Ok(o) => return Ok(o),
                Err(Attempt::Failed(e)) => return Err(e),
                Err(Attempt::Lost(why)) => {
                    tracing::warn!(connector = %self.name, attempt, "{why}; the job goes to another agent of group {}", self.group);
                    last = why;
                }
            }
        }
        Err(self.unreachable(format!(
            "{last}; given up after {ATTEMPTS} agents were lost"
        )))
    }

    /// Queues the job once and serves its messages until it ends.
    fn run_once<'s>(
        &self,
        op: Op,
        mut sink: Option<&mut (dyn ImportSink + 's)>,
        outcomes: &mut Vec<ExportOutcome>,
    ) -> Result<Outcome, Attempt> {
        let job = Job {
            id: 0,
            connector: self.name.clone(),
            settings: self.settings.clone(),
            password: self
                .settings
                .agent_password_file
                .is_none()
                .then(|| self.settings.bind_password.expose().to_string()),
            op,
        };
        let (id, rx) = self.jobs.submit(&self.group, job);
        let mut agent = None::<String>;
        loop {
            let wait = if agent.is_none() {
                PICKUP_TIMEOUT
            } else {
                SILENCE_TIMEOUT
            };
            let msg = match rx.recv_timeout(wait) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => {
                    self.jobs.withdraw(&self.group, id);
                    return Err(Attempt::Failed(self.unreachable(match &agent {
                        None => format!(
                            "no agent of group {:?} took the job within {} s: is one \
                             connected (status page, Agents)?",
                            self.group,
                            PICKUP_TIMEOUT.as_secs()
                        ),
                        Some(a) => format!(
                            "agent {a} sent nothing for {} s; the job was given up",
                            SILENCE_TIMEOUT.as_secs()
                        ),
                    })));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(Attempt::Failed(
                        self.unreachable("the job queue was closed".into()),
                    ));
                }
            };
            match msg {
                Msg::Taken(a) => {
                    tracing::info!(connector = %self.name, agent = %a, "job taken by an agent");
                    agent = Some(a);
                }
                Msg::Changes(changes, reply) => {
                    let result = match sink.as_deref_mut() {
                        Some(s) => changes.into_iter().try_for_each(|c| s.push(c)),
                        None => Err("changes sent for a job that is not an import".into()),
                    };
                    let failed = result.as_ref().err().cloned();
                    let _ = reply.send(result);
                    if let Some(e) = failed {
                        return Err(Attempt::Failed(ConnectorError {
                            connector: self.name.clone(),
                            kind: ConnectorErrorKind::BadData,
                            message: format!("the import could not be stored: {e}"),
                        }));
                    }
                }
                Msg::Ask(ask, reply) => {
                    let answer = match sink.as_deref_mut() {
                        Some(s) => answer_ask(s, ask),
                        None => Err("a question for a job that is not an import".into()),
                    };
                    let _ = reply.send(answer);
                }
                Msg::Event(_) => {}
                Msg::Outcomes(mut chunk, reply) => {
                    outcomes.append(&mut chunk);
                    let _ = reply.send(Ok(()));
                }
                Msg::Done(outcome) => return Ok(outcome),
                Msg::Lost(why) => {
                    return Err(Attempt::Lost(format!("{why} in the middle of the job")));
                }
            }
        }
    }

    fn via(&self) -> String {
        format!("of group {}", self.group)
    }
}

/// The outcomes so far, the rest of `total` items marked not tried (they stay pending).
fn not_tried(mut done: Vec<ExportOutcome>, total: usize, why: &str) -> Vec<ExportOutcome> {
    while done.len() < total {
        done.push(ExportOutcome::NotTried {
            reason: why.to_string(),
        });
    }
    done
}

fn answer_ask(sink: &mut dyn ImportSink, ask: Ask) -> Result<serde_json::Value, String> {
    let json = |v: Result<serde_json::Value, serde_json::Error>| v.map_err(|e| e.to_string());
    match ask {
        Ask::Knows(a) => json(serde_json::to_value(sink.knows(&a)?)),
        Ask::DnOf(a) => json(serde_json::to_value(sink.dn_of(&a)?)),
        Ask::HoldsAtLeast(n) => json(serde_json::to_value(sink.holds_at_least(n))),
        Ask::NowMs => json(serde_json::to_value(sink.now_ms())),
        Ask::StringReferrers(a, now_at) => json(serde_json::to_value(
            sink.string_referrers(&a, now_at.as_ref())?,
        )),
    }
}

impl Connector for RemoteConnector {
    fn name(&self) -> &ConnectorName {
        &self.name
    }

    fn check(&mut self) -> Result<(), ConnectorError> {
        match self.run(Op::Check, None)? {
            Outcome::Checked => Ok(()),
            Outcome::Failed(e) => Err(e.into_error(&self.name, &self.via())),
            other => Err(self.unreachable(format!("the agent answered a check with {other:?}"))),
        }
    }

    fn import(
        &mut self,
        watermark: Option<&Watermark>,
        full: bool,
        sink: &mut dyn ImportSink,
    ) -> Result<ImportEnd, ConnectorError> {
        let op = Op::Import {
            watermark: watermark.cloned(),
            full,
        };
        match self.run(op, Some(sink))? {
            Outcome::Imported {
                watermark,
                complete,
            } => Ok(ImportEnd {
                watermark,
                complete,
            }),
            Outcome::Failed(e) => Err(e.into_error(&self.name, &self.via())),
            _ => Err(self.unreachable("the agent answered an import with something else".into())),
        }
    }

    fn export(&mut self, items: &[ExportItem]) -> Result<Vec<ExportOutcome>, ConnectorError> {
        // The agent reports outcomes chunk by chunk; when it is lost, only the items
        // without an outcome go to the next agent.
        let mut done: Vec<ExportOutcome> = Vec::with_capacity(items.len());
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            let op = Op::Export {
                items: items[done.len()..].to_vec(),
            };
            match self.run_once(op, None, &mut done) {
                Ok(Outcome::Exported(_)) if done.len() == items.len() => return Ok(done),
                Ok(Outcome::Exported(_)) => {
                    return Err(self.unreachable(format!(
                        "the agent returned {} outcomes for {} exports",
                        done.len(),
                        items.len()
                    )));
                }
                Ok(Outcome::Failed(e)) if done.is_empty() => {
                    return Err(e.into_error(&self.name, &self.via()));
                }
                Ok(Outcome::Failed(e)) => return Ok(not_tried(done, items.len(), &e.message)),
                Ok(_) => {
                    return Err(
                        self.unreachable("the agent answered an export with something else".into())
                    );
                }
                Err(Attempt::Failed(e)) if done.is_empty() => return Err(e),
                Err(Attempt::Failed(e)) => return Ok(not_tried(done, items.len(), &e.message)),
                Err(Attempt::Lost(why)) => {
                    tracing::warn!(
                        connector = %self.name,
                        attempt,
                        confirmed = done.len(),
                        "{why}; the exports without an outcome go to another agent of group {}",
                        self.group
                    );
                    last = why;
                }
            }
        }
        let why = format!("{last}; given up after {ATTEMPTS} agents were lost");
        if done.is_empty() {
            Err(self.unreachable(why))
        } else {
            Ok(not_tried(done, items.len(), &why))
        }
    }

    fn finish_export(
        &mut self,
        _space: &dyn SpaceView,
    ) -> Result<Option<Watermark>, ConnectorError> {
        // Only ad/ldap connectors run through agents, and an LDAP export never moves the
        // watermark (the confirming import does): nothing to ask the agent.
        Ok(None)
    }

    fn watcher(&self) -> Option<Box<dyn Watcher>> {
        self.settings.watch.then(|| {
            Box::new(RemoteWatcher {
                name: self.name.clone(),
                group: self.group.clone(),
                settings: self.settings.clone(),
                jobs: self.jobs.clone(),
            }) as Box<dyn Watcher>
        })
    }
}

/// The near-real-time watch of a connector run by agents: a long-running job on one agent
/// of the group, whose events reach the runner's watch sink; when that agent is lost the
/// watch is queued again for another, and reported as resumed (a delta import is due).
struct RemoteWatcher {
    name: ConnectorName,
    group: String,
    settings: LdapConfig,
    jobs: Jobs,
}

impl Watcher for RemoteWatcher {
    fn batch_window(&self) -> Duration {
        self.settings.watch_window
    }

    fn run(self: Box<Self>, sink: Box<dyn WatchSink>) {
        let mut lost_before = false;
        while !sink.stopping() {
            let job = Job {
                id: 0,
                connector: self.name.clone(),
                settings: self.settings.clone(),
                password: self
                    .settings
                    .agent_password_file
                    .is_none()
                    .then(|| self.settings.bind_password.expose().to_string()),
                op: Op::Watch,
            };
            let (id, rx) = self.jobs.submit(&self.group, job);
            let mut agent = String::new();
            loop {
                if sink.stopping() {
                    self.jobs.withdraw(&self.group, id);
                    return;
                }
                match rx.recv_timeout(Duration::from_millis(250)) {
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => break,
                    Ok(Msg::Taken(a)) => {
                        tracing::info!(connector = %self.name, agent = %a, "watch taken by an agent");
                        agent = a;
                    }
                    Ok(Msg::Event(e)) => {
                        let mut e = e.into_event(&agent);
                        if let (true, WatchEvent::Watching { resumed, .. }) = (lost_before, &mut e)
                        {
                            *resumed = true;
                            lost_before = false;
                        }
                        sink.report(e);
                    }
                    Ok(Msg::Lost(why)) => {
                        sink.report(WatchEvent::Lost {
                            reason: format!("{why}; the watch goes to another agent"),
                            retry: Duration::ZERO,
                        });
                        lost_before = true;
                        break;
                    }
                    Ok(Msg::Done(_)) => break,
                    Ok(Msg::Changes(_, reply) | Msg::Outcomes(_, reply)) => {
                        let _ = reply.send(Err("not an import or export job".into()));
                    }
                    Ok(Msg::Ask(_, reply)) => {
                        let _ = reply.send(Err("not an import job".into()));
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
