//! `run` mode: cycles on a fixed interval, never overlapping, until a shutdown request.
//!
//! Cycles run on a blocking thread (the store and connectors are synchronous); the async
//! side only waits for the next tick, a request from a [`RunnerHandle`](super::handle), or
//! the shutdown signal. Requests are done between cycles, one at a time, so they never run
//! beside a cycle.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::handle::{Inbox, Request};
use super::{CycleOptions, RunError, Runner, Shutdown};

fn lock(r: &Mutex<Runner>) -> std::sync::MutexGuard<'_, Runner> {
    match r.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Runs cycles every `interval` until `shutdown` is requested, and what `inbox` asks for in
/// between. A cycle that overruns the interval delays the next one instead of overlapping it.
pub async fn run(
    runner: Arc<Mutex<Runner>>,
    interval: Duration,
    shutdown: Shutdown,
    mut inbox: Inbox,
) {
    loop {
        if shutdown.requested() {
            break;
        }
        let r = Arc::clone(&runner);
        let started = tokio::time::Instant::now();
        inbox.next_cycle_in(None);
        let outcome = tokio::task::spawn_blocking(move || {
            lock(&r).cycle(&CycleOptions {
                full: false,
                only: None,
                trigger: "scheduler".into(),
                progress: false,
            })
        })
        .await;
        match outcome {
            Ok(Ok(rec)) => {
                let errors: u64 = rec.connectors.iter().map(|c| c.errors).sum();
                tracing::info!(
                    ms = rec.finished_ms - rec.started_ms,
                    errors,
                    "scheduled cycle finished"
                );
            }
            Ok(Err(RunError::Interrupted)) => break,
            Ok(Err(e)) => tracing::error!("scheduled cycle failed: {e}"),
            Err(e) => tracing::error!("scheduled cycle panicked: {e}"),
        }
        let next = started + interval;
        loop {
            if shutdown.requested() {
                return;
            }
            let now = tokio::time::Instant::now();
            if now >= next {
                break;
            }
            inbox.next_cycle_in(Some(next - now));
            // Poll the flag at a short period so SIGTERM is answered promptly.
            tokio::select! {
                _ = tokio::time::sleep((next - now).min(Duration::from_millis(250))) => {}
                Some((req, reply)) = inbox.next() => {
                    let is_cycle = matches!(req, Request::Cycle { .. });
                    let r = Arc::clone(&runner);
                    let done = tokio::task::spawn_blocking(move || lock(&r).execute(req)).await;
                    inbox.done();
                    let answer = match done {
                        Ok(a) => a,
                        Err(e) => Err(format!("the request panicked: {e}")),
                    };
                    if is_cycle {
                        match &answer {
                            Ok(m) => tracing::info!("requested cycle: {m}"),
                            Err(e) => tracing::error!("requested cycle failed: {e}"),
                        }
                    }
                    // The asker may have stopped waiting; that is fine.
                    let _ = reply.send(answer);
                }
            }
        }
    }
}
