//! The agent's side of a job: it builds the connector from the settings the job carries
//! (the ad/ldap code of this same binary, next to the directory), runs the operation on a
//! blocking thread, and sends back what the connector produces. The import sink here
//! forwards: changes go to the appliance in batches by a sender thread, one batch on the
//! wire and one waiting at most while the connector reads the next (so the directory's
//! paging slows down when the appliance does, and memory stays at three batches), and the
//! sink's questions are asked of the appliance after the changes before them were taken.

use std::sync::Mutex;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use serde::Serialize;

use super::jobs::{Ask, Job, Op, Outcome, WireError};
use crate::config::Secret;
use crate::connector::ldap::LdapConnector;
use crate::connector::{Connector, ImportSink, WatchEvent, WatchSink};
use crate::model::{Anchor, Dn, ImportChange};

/// Changes per batch sent to the appliance.
const BATCH: usize = 200;
/// Exports per chunk whose outcomes are reported before the next chunk starts.
const EXPORT_CHUNK: usize = 50;

/// How the worker talks to the appliance: one POST with a JSON body, blocking, answered
/// with the JSON reply (a non-200 answer is an error with the appliance's words).
pub trait Channel: Sync {
    /// Sends `body` to `path` and waits for the answer.
    fn post(&self, path: &str, body: serde_json::Value) -> Result<serde_json::Value, String>;

    /// A flag that turns false when the session this channel belongs to ends.
    fn alive(&self) -> std::sync::Arc<std::sync::atomic::AtomicBool>;
}

/// The watch sink on the agent: events are queued for the reporting thread.
struct AgentWatchSink {
    tx: SyncSender<WatchEvent>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    session: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl WatchSink for AgentWatchSink {
    fn report(&self, event: WatchEvent) {
        if self.tx.try_send(event).is_err() {
            // Sixty-four reports not yet sent: the appliance is gone or stuck; a change
            // report dropped here is covered by the resumed watch's delta import.
            tracing::warn!("watch reports are not getting through; dropping one");
        }
    }

    fn stopping(&self) -> bool {
        self.stop.load(std::sync::atomic::Ordering::Relaxed)
            || !self.session.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// What the sink hands its sender thread.
enum ToSender {
    Batch(Vec<ImportChange>),
    /// Answered once every batch before it was taken.
    Drain(SyncSender<()>),
}

struct ForwardingSink<'a> {
    id: u64,
    channel: &'a dyn Channel,
    batch: Vec<ImportChange>,
    queue: SyncSender<ToSender>,
    failed: &'a Mutex<Option<String>>,
}

/// Sends the batches in order until the queue closes; the first failure is kept and the
/// batches after it are dropped (the import then fails).
fn sender(
    id: u64,
    channel: &dyn Channel,
    queue: Receiver<ToSender>,
    failed: &Mutex<Option<String>>,
) {
    for msg in queue {
        match msg {
            ToSender::Batch(changes) => {
                if failed.lock().unwrap_or_else(|p| p.into_inner()).is_some() {
                    continue;
                }
                let sent = serde_json::to_value(&changes)
                    .map_err(|e| format!("changes: {e}"))
                    .and_then(|body| channel.post(&format!("/v1/job/{id}/changes"), body));
                if let Err(e) = sent {
                    *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                }
            }
            ToSender::Drain(done) => {
                let _ = done.send(());
            }
        }
    }
}

impl ForwardingSink<'_> {
    fn check(&self) -> Result<(), String> {
        match self
            .failed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Hands the batch being built to the sender (waiting while one is already queued).
    fn flush(&mut self) -> Result<(), String> {
        self.check()?;
        if self.batch.is_empty() {
            return Ok(());
        }
        let changes = std::mem::take(&mut self.batch);
        self.queue
            .send(ToSender::Batch(changes))
            .map_err(|_| "the sender stopped".to_string())
    }

    /// Waits until every change so far was taken by the appliance.
    fn drain(&mut self) -> Result<(), String> {
        self.flush()?;
        let (tx, rx) = sync_channel(1);
        self.queue
            .send(ToSender::Drain(tx))
            .map_err(|_| "the sender stopped".to_string())?;
        rx.recv().map_err(|_| "the sender stopped".to_string())?;
        self.check()
    }

    fn ask<T: serde::de::DeserializeOwned>(&mut self, ask: Ask) -> Result<T, String> {
        self.drain()?;
        let body = serde_json::to_value(&ask).map_err(|e| format!("question: {e}"))?;
        let answer = self
            .channel
            .post(&format!("/v1/job/{}/ask", self.id), body)?;
        serde_json::from_value(answer).map_err(|e| format!("answer: {e}"))
    }
}

impl ImportSink for ForwardingSink<'_> {
    fn push(&mut self, change: ImportChange) -> Result<(), String> {
        self.batch.push(change);
        if self.batch.len() >= BATCH {
            self.flush()?;
        }
        Ok(())
    }

    fn knows(&mut self, anchor: &Anchor) -> Result<bool, String> {
        self.ask(Ask::Knows(anchor.clone()))
    }

    fn dn_of(&mut self, anchor: &Anchor) -> Result<Option<Dn>, String> {
        self.ask(Ask::DnOf(anchor.clone()))
    }

    fn holds_at_least(&mut self, n: u64) -> bool {
        self.ask(Ask::HoldsAtLeast(n)).unwrap_or(false)
    }

    fn now_ms(&self) -> Option<i64> {
        // `now_ms` takes `&self`: asked without flushing (it does not depend on the changes).
        let body = serde_json::to_value(Ask::NowMs).ok()?;
        let answer = self
            .channel
            .post(&format!("/v1/job/{}/ask", self.id), body)
            .ok()?;
        serde_json::from_value(answer).ok()?
    }

    fn string_referrers(
        &mut self,
        anchor: &Anchor,
        now_at: Option<&Dn>,
    ) -> Result<Vec<Dn>, String> {
        self.ask(Ask::StringReferrers(anchor.clone(), now_at.cloned()))
    }
}

fn to_value(v: impl Serialize) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_default()
}

/// Runs one job and reports its end; an error only when the appliance could not be told.
pub fn execute(job: Job, channel: &dyn Channel) -> Result<(), String> {
    let Job {
        id,
        connector,
        mut settings,
        password,
        op,
    } = job;
    let secret = match (password, &settings.agent_password_file) {
        (Some(p), _) => Ok(Secret::new(p)),
        (None, Some(file)) => Secret::from_file(file).map_err(|e| {
            format!(
                "cannot read agent_bind_password_file {}: {e}",
                file.display()
            )
        }),
        (None, None) => Err("the job carries no bind password".to_string()),
    };
    let secret = match secret {
        Ok(s) => s,
        Err(message) => {
            let outcome = Outcome::Failed(WireError {
                kind: "unreachable".into(),
                message,
            });
            return channel
                .post(&format!("/v1/job/{id}/done"), to_value(&outcome))
                .map(|_| ());
        }
    };
    settings.bind_password = secret;
    let mut c = LdapConnector::new(connector.clone(), settings);
    let outcome = match op {
        Op::Check => match c.check() {
            Ok(()) => Outcome::Checked,
            Err(e) => Outcome::Failed(WireError::from_error(&e)),
        },
        Op::Import { watermark, full } => {
            let failed = Mutex::new(None);
            let (queue, taken) = sync_channel(1);
            let imported = std::thread::scope(|scope| {
                let failed = &failed;
                scope.spawn(move || sender(id, channel, taken, failed));
                let mut sink = ForwardingSink {
                    id,
                    channel,
                    batch: Vec::new(),
                    queue,
                    failed,
                };
                let result = c.import(watermark.as_ref(), full, &mut sink);
                let drained = sink.drain();
                // Dropping the sink closes the queue, which ends the sender.
                drop(sink);
                (result, drained)
            });
            match imported {
                (Ok(end), Ok(())) => Outcome::Imported {
                    watermark: end.watermark,
                    complete: end.complete,
                },
                (Ok(_), Err(e)) => return Err(e),
                (Err(e), _) => Outcome::Failed(WireError::from_error(&e)),
            }
        }
        Op::Watch => {
            let Some(w) = c.watcher() else {
                let outcome = Outcome::Failed(WireError {
                    kind: "unsupported".into(),
                    message: "the connector's settings have no watch".into(),
                });
                return channel
                    .post(&format!("/v1/job/{id}/done"), to_value(&outcome))
                    .map(|_| ());
            };
            let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
            std::thread::scope(|scope| {
                let (tx, rx) = sync_channel::<WatchEvent>(64);
                let stop2 = std::sync::Arc::clone(&stop);
                // Reports go out on this thread, so that the watcher never waits on the
                // appliance; a report the appliance refuses (the job was given up) stops it.
                scope.spawn(move || {
                    for e in rx {
                        let sent = channel.post(
                            &format!("/v1/job/{id}/event"),
                            to_value(super::jobs::WireEvent::from_event(&e)),
                        );
                        if sent.is_err() {
                            stop2.store(true, std::sync::atomic::Ordering::Relaxed);
                            break;
                        }
                    }
                });
                w.run(Box::new(AgentWatchSink {
                    tx,
                    stop: std::sync::Arc::clone(&stop),
                    session: channel.alive(),
                }));
            });
            tracing::info!(job = id, %connector, "watch ended");
            return Ok(());
        }
        Op::Export { items } => {
            // Chunk by chunk, in order (stages only ever grow along the list), each
            // chunk's outcomes confirmed by the appliance before the next is applied.
            let mut failed = None;
            for chunk in items.chunks(EXPORT_CHUNK) {
                match c.export(chunk) {
                    Ok(outcomes) => {
                        channel.post(&format!("/v1/job/{id}/outcomes"), to_value(&outcomes))?;
                    }
                    Err(e) => {
                        failed = Some(WireError::from_error(&e));
                        break;
                    }
                }
            }
            match failed {
                Some(e) => Outcome::Failed(e),
                None => Outcome::Exported(Vec::new()),
            }
        }
    };
    tracing::info!(job = id, %connector, "job done");
    channel
        .post(&format!("/v1/job/{id}/done"), to_value(&outcome))
        .map(|_| ())
}
