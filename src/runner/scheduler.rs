//! `run` mode: cycles on a fixed interval, never overlapping, until a shutdown request.
//!
//! Cycles run on a blocking thread (the store and connectors are synchronous); the async
//! side only waits for the next tick or the shutdown signal.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{CycleOptions, RunError, Runner, Shutdown};

/// Runs cycles every `interval` until `shutdown` is requested. A cycle that overruns the
/// interval delays the next one instead of overlapping it.
pub async fn run(runner: Arc<Mutex<Runner>>, interval: Duration, shutdown: Shutdown) {
    loop {
        if shutdown.requested() {
            break;
        }
        let r = Arc::clone(&runner);
        let started = tokio::time::Instant::now();
        let outcome = tokio::task::spawn_blocking(move || {
            let mut guard = match r.lock() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            guard.cycle(&CycleOptions {
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
            // Poll the flag at a short period so SIGTERM is answered promptly.
            tokio::time::sleep((next - now).min(Duration::from_millis(250))).await;
        }
    }
}
