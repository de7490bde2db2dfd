//! The agent's side of a job: it builds the connector from the settings the job carries
//! (the ad/ldap code of this same binary, next to the directory), runs the operation on a
//! blocking thread, and sends back what the connector produces. The import sink here
//! forwards: changes go to the appliance in batches, each sent only after the previous
//! one was taken (the appliance's sink answered), and the sink's questions are asked of the
//! appliance, after the changes before them were delivered.

use serde::Serialize;

use super::jobs::{Ask, Job, Op, Outcome, WireError};
use crate::config::Secret;
use crate::connector::ldap::LdapConnector;
use crate::connector::{Connector, ImportSink};
use crate::model::{Anchor, Dn, ImportChange};

/// Changes per batch sent to the appliance.
const BATCH: usize = 200;
/// Exports per chunk whose outcomes are reported before the next chunk starts.
const EXPORT_CHUNK: usize = 50;

/// How the worker talks to the appliance: one POST with a JSON body, blocking, answered
/// with the JSON reply (a non-200 answer is an error with the appliance's words).
pub trait Channel {
    /// Sends `body` to `path` and waits for the answer.
    fn post(&self, path: &str, body: serde_json::Value) -> Result<serde_json::Value, String>;
}

struct ForwardingSink<'a> {
    id: u64,
    channel: &'a dyn Channel,
    batch: Vec<ImportChange>,
}

impl ForwardingSink<'_> {
    fn flush(&mut self) -> Result<(), String> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let changes = std::mem::take(&mut self.batch);
        let body = serde_json::to_value(&changes).map_err(|e| format!("changes: {e}"))?;
        self.channel
            .post(&format!("/v1/job/{}/changes", self.id), body)
            .map(|_| ())
    }

    fn ask<T: serde::de::DeserializeOwned>(&mut self, ask: Ask) -> Result<T, String> {
        self.flush()?;
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
    settings.bind_password = Secret::new(password);
    let mut c = LdapConnector::new(connector.clone(), settings);
    let outcome = match op {
        Op::Check => match c.check() {
            Ok(()) => Outcome::Checked,
            Err(e) => Outcome::Failed(WireError::from_error(&e)),
        },
        Op::Import { watermark, full } => {
            let mut sink = ForwardingSink {
                id,
                channel,
                batch: Vec::new(),
            };
            match c.import(watermark.as_ref(), full, &mut sink) {
                Ok(end) => match sink.flush() {
                    Ok(()) => Outcome::Imported {
                        watermark: end.watermark,
                        complete: end.complete,
                    },
                    Err(e) => return Err(e),
                },
                Err(e) => Outcome::Failed(WireError::from_error(&e)),
            }
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
