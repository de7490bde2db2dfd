//! The runner's side of jobs for agents: [`RemoteConnector`], the `Connector` the runner
//! uses for a connector with `agent_group`, and its near-real-time watcher. The engine does
//! not change: it calls the trait; the remote connector queues the job and, on the
//! runner's thread, feeds what the agent sends back into the runner's sink.
//!
//! Flow control: an import's batches are answered only after the runner's sink took every
//! change of them, and the agent waits for that answer with at most one more batch queued;
//! so memory stays bounded on both sides however slow the appliance.
//!
//! Failover: a job whose agent is lost is queued again for another agent of the group (an
//! import from the watermark it was given, an export with only the items without an
//! outcome, a watch as resumed), at most three times.

use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

use super::jobs::{Ask, Job, Jobs, Msg, Op, Outcome};
use crate::config::LdapConfig;
use crate::connector::{
    Connector, ConnectorError, ConnectorErrorKind, ImportEnd, ImportSink, SpaceView, WatchEvent,
    WatchSink, Watcher,
};
use crate::model::{ConnectorName, ExportItem, ExportOutcome, Watermark};

/// How long a queued job waits for an agent of its group before the run fails.
const PICKUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a taken job may stay silent (a page of a slow directory) before it is lost.
const SILENCE_TIMEOUT: Duration = Duration::from_secs(300);

/// How one attempt at a job ended short of an outcome.
enum Attempt {
    /// The agent holding the lease was lost: the job may go to another agent.
    Lost(String),
    /// The job failed for good.
    Failed(ConnectorError),
}

/// How many times a job whose agent was lost is handed to another one.
const ATTEMPTS: usize = 3;

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
