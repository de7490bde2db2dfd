//! `run` mode: cycles on a fixed interval, never overlapping, until a shutdown request;
//! between them, the delta cycles that near-real-time watches ask for ([`super::watch`]).
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

/// Runs cycles every `interval` until `shutdown` is requested, what `inbox` asks for in
/// between, and — for connectors in near-real-time mode — a delta cycle soon after their
/// watch reports a change. A cycle that overruns the interval delays the next one instead
/// of overlapping it.
pub async fn run(
    runner: Arc<Mutex<Runner>>,
    mut interval: Duration,
    shutdown: Shutdown,
    mut inbox: Inbox,
) {
    let mut watches = lock(&runner).start_watches();
    'cycles: loop {
        if shutdown.requested() {
            break;
        }
        let r = Arc::clone(&runner);
        let started = tokio::time::Instant::now();
        inbox.next_cycle_in(None);
        // The scheduled cycle imports every connector: the changes seen so far are in it.
        watches.take();
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
                break 'cycles;
            }
            let now = tokio::time::Instant::now();
            if now >= next {
                break;
            }
            let due = watches.due();
            if due.is_some_and(|d| now >= d) {
                let imports = watches.take();
                match watch_cycle(&runner, imports.clone()).await {
                    Outcome::Done => watches.succeeded(),
                    Outcome::Failed => watches.retry(imports),
                    Outcome::Stopped => break 'cycles,
                }
                continue;
            }
            inbox.next_cycle_in(Some(next - now));
            // Poll the flag at a short period so SIGTERM is answered promptly.
            let mut nap = (next - now).min(Duration::from_millis(250));
            if let Some(d) = due {
                nap = nap.min(d - now);
            }
            tokio::select! {
                _ = tokio::time::sleep(nap) => {}
                (index, event) = watches.next() => watches.note(index, event),
                Some((req, reply)) = inbox.next() => {
                    let is_cycle = matches!(req, Request::Cycle { .. });
                    let is_reload = matches!(req, Request::Reload(_));
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
                    if is_reload && answer.is_ok() {
                        // The new connectors' watchers replace the old ones; what the old
                        // ones saw and no cycle took yet is in the next scheduled cycle.
                        interval = lock(&runner).config().schedule.interval;
                        let old = watches;
                        let _ = tokio::task::spawn_blocking(move || old.retire()).await;
                        watches = lock(&runner).start_watches();
                    }
                    // The asker may have stopped waiting; that is fine.
                    let _ = reply.send(answer);
                }
            }
        }
    }
    // The watchers see the same flag and end within a tick. The runner goes down on a
    // blocking thread too: LDAP connectors own runtimes, which must not be dropped from
    // async code.
    let _ = tokio::task::spawn_blocking(move || {
        watches.join();
        drop(runner);
    })
    .await;
}

/// How a watch cycle ended.
enum Outcome {
    Done,
    /// Failed as a whole (a directory unreachable, say): worth another try.
    Failed,
    /// A shutdown interrupted it.
    Stopped,
}

/// Runs the delta cycle a watch asked for.
async fn watch_cycle(runner: &Arc<Mutex<Runner>>, imports: Vec<usize>) -> Outcome {
    let r = Arc::clone(runner);
    let outcome = tokio::task::spawn_blocking(move || lock(&r).watch_cycle(&imports)).await;
    match outcome {
        Ok(Ok(rec)) => {
            let imported: u64 = rec.connectors.iter().map(|c| c.import.total()).sum();
            let exported: u64 = rec.connectors.iter().map(|c| c.export.total()).sum();
            let errors: u64 = rec.connectors.iter().map(|c| c.errors).sum();
            tracing::info!(
                ms = rec.finished_ms - rec.started_ms,
                imported,
                exported,
                errors,
                "watch cycle finished"
            );
        }
        Ok(Err(RunError::Interrupted)) => return Outcome::Stopped,
        // The changes stay in the directory: a later watch or scheduled cycle takes them.
        Ok(Err(e)) => {
            tracing::error!("watch cycle failed: {e}");
            return Outcome::Failed;
        }
        Err(e) => {
            tracing::error!("watch cycle panicked: {e}");
            return Outcome::Failed;
        }
    }
    Outcome::Done
}
