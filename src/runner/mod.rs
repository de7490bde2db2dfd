//! The runner: run profiles, the cycle and the scheduler — the only place where
//! connectors meet the store.
//!
//! A cycle is delta import → delta sync → export → confirming import, over the connectors
//! in config order. Every step commits in batches; a shutdown request is honoured only
//! between committed batches, and a crash at any point leaves a state from which the next
//! cycle finishes the work.

pub mod approve;
mod confirm;
mod export;
mod guard;
pub mod handle;
mod import;
mod order;
pub mod pending;
pub mod reload;
pub mod scheduler;
pub mod sync_object;
pub mod totals;
pub mod watch;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::config::Config;
use crate::connector::{Connector, ConnectorError, ConnectorErrorKind};
use crate::model::{AttrName, Clock, ConnectorName, Dn};
use crate::store::{ChangeCounts, ConnectorRunStats, PhaseTime, RunRecord, Store, StoreError};
use crate::sync::{self, SyncContext, SyncStats};
use reload::Derived;

/// Objects per sync transaction: larger batches rewrite fewer index pages per object.
const SYNC_BATCH: usize = 2000;

/// A cycle that imported or exported at least this many changes compacts the state file.
const COMPACT_AFTER: u64 = 10_000;

fn phase(
    name: &str,
    connector: Option<&ConnectorName>,
    objects: u64,
    started: Instant,
) -> PhaseTime {
    PhaseTime {
        phase: name.to_string(),
        connector: connector.map(|c| c.to_string()),
        objects,
        ms: started.elapsed().as_millis() as u64,
    }
}

/// Why a cycle stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The state file failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A connector failed as a whole.
    #[error(transparent)]
    Connector(#[from] ConnectorError),
    /// A shutdown was requested; everything committed so far stands.
    #[error("stopped by a shutdown request after the last committed batch")]
    Interrupted,
    /// A connector named on the command line does not exist.
    #[error("no connector named {0:?} in the config")]
    UnknownConnector(String),
    /// What was asked does not apply to this connector.
    #[error("{0}")]
    Unsupported(String),
    /// The empty-import guard stopped a snapshot import; nothing was recorded deleted.
    #[error(
        "connector {connector}: the import found {found} objects where the connector space \
         holds {held} (under {pct}% of at least {min}); nothing was recorded as deleted. Check \
         the base DN, the account and the source; if the directory really is that empty, \
         `bridgehead approve --connector {connector}` lets the next import through",
        pct = guard::MIN_FOUND_PERCENT,
        min = guard::MIN_OBJECTS
    )]
    ImportGuard {
        /// The connector.
        connector: String,
        /// Objects its space held.
        held: u64,
        /// Objects the import found.
        found: u64,
    },
}

impl RunError {
    /// The exit code DESIGN.md assigns: 3 for an unreachable directory, 4 for a source that
    /// sent what cannot be taken (malformed LDIF, a malformed answer), 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Connector(e) if e.kind == ConnectorErrorKind::Unreachable => 3,
            RunError::Connector(e) if e.kind == ConnectorErrorKind::BadData => 4,
            RunError::UnknownConnector(_) | RunError::Unsupported(_) => 2,
            _ => 1,
        }
    }
}

/// A shutdown flag shared by the signal handler, the scheduler and running cycles.
#[derive(Clone, Debug, Default)]
pub struct Shutdown(Arc<AtomicBool>);

impl Shutdown {
    /// Asks everything to stop after its current batch.
    pub fn request(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether a stop was requested.
    pub fn requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Err(Interrupted) once a stop was requested.
    pub fn check(&self) -> Result<(), RunError> {
        if self.requested() {
            Err(RunError::Interrupted)
        } else {
            Ok(())
        }
    }
}

/// What a cycle should do.
#[derive(Clone, Debug, Default)]
pub struct CycleOptions {
    /// Full import and full sync instead of delta.
    pub full: bool,
    /// Only this connector's import and export (sync covers everything queued).
    pub only: Option<String>,
    /// Who asked (history).
    pub trigger: String,
    /// Show progress on the terminal.
    pub progress: bool,
}

/// Owns the store, the connectors and the config; runs cycles.
pub struct Runner {
    config: Config,
    store: Store,
    connectors: Vec<Box<dyn Connector>>,
    clock: Arc<dyn Clock>,
    shutdown: Shutdown,
    partitions: HashMap<ConnectorName, Vec<Dn>>,
    unique: HashMap<ConnectorName, Vec<AttrName>>,
    /// Per target, the attributes only an add writes (apply-once flows): a confirming
    /// import does not see them, and that is no refusal.
    write_only: HashMap<ConnectorName, Vec<AttrName>>,
    /// Where the status page reads the running cycle's progress, when it runs.
    live: Option<Arc<handle::Live>>,
    /// Builds the connectors that need more than their config (those run by agents), at
    /// start and again after a reload; None for the others.
    special: Option<SpecialConnectors>,
}

/// Whether `connector` has inbound rules (what its imports miss would be deleted from the
/// metaverse, and so from every target).
fn feeds_metaverse(config: &Config, connector: &ConnectorName) -> bool {
    config
        .rules
        .inbound
        .iter()
        .any(|r| &r.connector == connector)
}

/// What the composition root hands the runner to build a connector its config alone cannot
/// (one run by agents): the connector, or None for a connector built as usual.
pub type SpecialConnectors =
    Arc<dyn Fn(&crate::config::ConnectorConfig) -> Option<Box<dyn Connector>> + Send + Sync>;

impl Runner {
    /// Builds the connectors `special` gives in place of the configured ones, now and after
    /// every reload; returns the names of those it replaced.
    pub fn use_special_connectors(&mut self, special: SpecialConnectors) -> Vec<ConnectorName> {
        let built: Vec<_> = self
            .config
            .connectors
            .iter()
            .filter_map(|c| special(c))
            .collect();
        let mut replaced = Vec::new();
        for connector in built {
            let name = connector.name().clone();
            if self.use_connector(connector) {
                replaced.push(name);
            }
        }
        self.special = Some(special);
        replaced
    }

    /// Puts `connector` in place of the configured connector of the same name (the
    /// composition root hands in connectors that need more than their config, such as
    /// one run by agents); false when no connector has that name.
    pub fn use_connector(&mut self, connector: Box<dyn Connector>) -> bool {
        match self
            .connectors
            .iter_mut()
            .find(|c| c.name() == connector.name())
        {
            Some(slot) => {
                *slot = connector;
                true
            }
            None => false,
        }
    }

    /// A runner over an open store.
    pub fn new(config: Config, store: Store, clock: Arc<dyn Clock>, shutdown: Shutdown) -> Runner {
        let Derived {
            connectors,
            partitions,
            unique,
            write_only,
        } = Derived::of(&config);
        let mut runner = Runner {
            config,
            store,
            connectors,
            clock,
            shutdown,
            partitions,
            unique,
            write_only,
            live: None,
            special: None,
        };
        runner.apply_staging_override();
        runner
    }

    /// The store (read access for the CLI and status page).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The store, for maintenance between cycles (compaction).
    pub fn store_mut(&mut self) -> &mut Store {
        &mut self.store
    }

    /// The config.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The import run profile alone, over every connector: changes land in the connector
    /// spaces and wait, queued, for the next sync.
    pub fn import_only(&mut self, full: bool) -> Result<Vec<ChangeCounts>, RunError> {
        let mut out = Vec::with_capacity(self.connectors.len());
        for c in self.connectors.iter_mut() {
            let confirm = import::Confirm {
                now_ms: self.clock.now_ms(),
                write_only: write_only_of(&self.write_only, c.name()),
                guarded: feeds_metaverse(&self.config, c.name()),
            };
            let stats = import::run(&self.store, c.as_mut(), full, &self.shutdown, None, confirm)?;
            out.push(stats.counts);
        }
        Ok(out)
    }

    /// A configured connector's name, or the error a command line shows for a wrong one.
    fn connector_name(&self, name: &str) -> Result<ConnectorName, RunError> {
        ConnectorName::new(name)
            .ok()
            .filter(|c| self.config.connector(c).is_some())
            .ok_or_else(|| RunError::UnknownConnector(name.to_string()))
    }

    /// What the sync engine needs from the config, at the current time.
    fn sync_context(&self) -> SyncContext<'_> {
        SyncContext {
            rules: &self.config.rules,
            partitions: &self.partitions,
            unique: &self.unique,
            now_ms: self.clock.now_ms(),
        }
    }

    /// What sync would do to the object at `dn` in `connector`'s space, changing nothing:
    /// the real sync runs in a write transaction that is rolled back.
    pub fn preview(&self, connector: &str, dn: &Dn) -> Result<Option<sync::Preview>, RunError> {
        let conn = self.connector_name(connector)?;
        let ctx = self.sync_context();
        let tx = self.store.write()?;
        let preview = sync::preview(&tx, &ctx, &conn, dn)?;
        // Dropped uncommitted: the preview leaves no trace.
        drop(tx);
        Ok(preview)
    }

    /// Every pending export of `connector`, in export order (see [`pending`]).
    pub fn pending(&self, connector: &str) -> Result<pending::PendingList, RunError> {
        pending::list(&self.store.read()?, &self.config, connector)
    }

    /// The pending exports of an `ad`/`ldap` connector as LDIF change records.
    pub fn pending_ldif(&self, connector: &str) -> Result<String, RunError> {
        pending::ldif(&self.store.read()?, &self.config, connector)
    }

    /// Replaces one connector (tests drive the runner with scripted directories).
    #[cfg(test)]
    pub(crate) fn replace_connector(&mut self, index: usize, connector: Box<dyn Connector>) {
        self.connectors[index] = connector;
    }

    /// Checks every connector's directory.
    pub fn check_connectors(&mut self) -> Vec<ConnectorError> {
        self.connectors
            .iter_mut()
            .filter_map(|c| c.check().err())
            .collect()
    }

    /// Runs one cycle and records it in the run history.
    pub fn cycle(&mut self, opts: &CycleOptions) -> Result<RunRecord, RunError> {
        self.cycle_with(opts, None)
    }

    /// A near-real-time cycle: delta import of the connectors (by index) whose watch saw
    /// changes, delta sync of what they queued, export to every connector that has
    /// something pending, and the confirming imports.
    pub fn watch_cycle(&mut self, imports: &[usize]) -> Result<RunRecord, RunError> {
        let opts = CycleOptions {
            full: false,
            only: None,
            trigger: "watch".into(),
            progress: false,
        };
        self.cycle_with(&opts, Some(imports))
    }

    /// Starts the near-real-time watchers of the connectors configured for one.
    pub fn start_watches(&self) -> watch::Watches {
        watch::Watches::start(&self.connectors, &self.shutdown, self.live.clone())
    }

    /// A cycle; `imports` limits the import phase to those connectors (by index).
    fn cycle_with(
        &mut self,
        opts: &CycleOptions,
        imports: Option<&[usize]>,
    ) -> Result<RunRecord, RunError> {
        let started_ms = self.clock.now_ms();
        let mut record = RunRecord {
            started_ms,
            finished_ms: started_ms,
            mode: if opts.full { "full" } else { "delta" }.to_string(),
            trigger: opts.trigger.clone(),
            connectors: self
                .config
                .connectors
                .iter()
                .map(|c| ConnectorRunStats {
                    connector: c.name.to_string(),
                    ..Default::default()
                })
                .collect(),
            failure: None,
            phases: Vec::new(),
            staging: self.config.staging,
        };
        if let Some(live) = &self.live {
            live.cycle_started(opts, started_ms);
        }
        let result = self.cycle_inner(opts, imports, &mut record);
        if let Some(live) = &self.live {
            live.cycle_ended();
        }
        let touched: u64 = record
            .connectors
            .iter()
            .map(|c| c.import.total() + c.export.total())
            .sum();
        if result.is_ok() && (opts.full || touched >= COMPACT_AFTER) {
            // Batched rewrites leave free pages behind; give them back while nothing reads.
            match self.store.compact() {
                Ok(true) => tracing::info!("state file compacted"),
                Ok(false) => {}
                Err(e) => tracing::warn!("state file not compacted: {e}"),
            }
        }
        record.finished_ms = self.clock.now_ms();
        if let Err(e) = &result {
            record.failure = Some(e.to_string());
        }
        // Watch cycles come several a second in a burst: counting there would cost more
        // than the picture gains; scheduled and requested cycles record the counts.
        if imports.is_none() {
            self.record_objects(&mut record);
        }
        if let Some(live) = &self.live {
            live.cycle_recorded(&record);
        }
        // History is best effort when the store itself failed.
        if let Ok(tx) = self.store.write() {
            if tx.add_run(&record).is_ok() {
                let _ = tx.commit();
            }
        }
        result.map(|()| record)
    }

    fn selected(&self, opts: &CycleOptions) -> Result<Vec<usize>, RunError> {
        match &opts.only {
            None => Ok((0..self.connectors.len()).collect()),
            Some(name) => self
                .connectors
                .iter()
                .position(|c| c.name().as_str() == name)
                .map(|i| vec![i])
                .ok_or_else(|| RunError::UnknownConnector(name.clone())),
        }
    }

    fn cycle_inner(
        &mut self,
        opts: &CycleOptions,
        imports: Option<&[usize]>,
        record: &mut RunRecord,
    ) -> Result<(), RunError> {
        let selected = self.selected(opts)?;
        let import_set: Vec<usize> = match imports {
            Some(list) => selected
                .iter()
                .copied()
                .filter(|i| list.contains(i))
                .collect(),
            None => selected.clone(),
        };
        {
            let mut tx = self.store.write()?;
            if tx.ensure_join_index(&self.config.rules.join_attributes())? {
                tracing::info!("join index rebuilt for the configured join rules");
            }
            tx.commit()?;
        }
        let progress = opts
            .progress
            .then(|| {
                let p = indicatif::ProgressBar::new_spinner();
                p.enable_steady_tick(std::time::Duration::from_millis(200));
                p
            })
            // A hidden bar still keeps its message: the status page shows it as live progress.
            .or_else(|| self.live.as_ref().map(|_| indicatif::ProgressBar::hidden()));
        if let (Some(live), Some(p)) = (&self.live, &progress) {
            live.attach_bar(p.clone());
        }
        for &i in &import_set {
            self.shutdown.check()?;
            self.live_phase("import", Some(self.connectors[i].name()));
            let c = self.connectors[i].as_mut();
            tracing::info!(connector = %c.name(), full = opts.full, "import");
            let t = Instant::now();
            let confirm = import::Confirm {
                now_ms: self.clock.now_ms(),
                write_only: write_only_of(&self.write_only, c.name()),
                guarded: feeds_metaverse(&self.config, c.name()),
            };
            let stats = import::run(
                &self.store,
                c,
                opts.full,
                &self.shutdown,
                progress.as_ref(),
                confirm,
            )?;
            let counts = stats.counts;
            record_not_kept(record, c.name(), stats.not_kept);
            record
                .phases
                .push(phase("import", Some(c.name()), counts.total(), t));
            record.connectors[i].import = counts;
        }
        let t = Instant::now();
        self.live_phase("sync", None);
        let stats = self.sync(opts.full, progress.as_ref())?;
        record
            .phases
            .push(phase("sync", None, stats.inbound + stats.outbound, t));
        tracing::info!(?stats, "sync done");
        let now = self.clock.now_ms();
        let mut exported = Vec::new();
        for &i in &selected {
            if self.config.staging {
                // Staging: the pending exports stay for review; nothing reaches a directory.
                break;
            }
            self.shutdown.check()?;
            let threshold = self.config.connectors[i].deletion_threshold;
            self.live_phase("export", Some(self.connectors[i].name()));
            let c = self.connectors[i].as_mut();
            let t = Instant::now();
            let s = export::run(&self.store, c, threshold, now, &self.shutdown, None)?;
            record.connectors[i].blocked_deletes = s.blocked_deletes;
            if s.deferred > 0 {
                tracing::info!(
                    connector = %c.name(),
                    deferred = s.deferred,
                    "exports that failed recently wait for their retry time"
                );
            }
            if s.blocked_deletes > 0 {
                tracing::warn!(
                    connector = %c.name(),
                    held = s.blocked_deletes,
                    threshold = threshold.count,
                    held_with_them = s.held_exports,
                    "deletes held back by the deletion threshold{}; review them with `bridgehead pending --connector {}`, release them with `bridgehead approve --connector {}`",
                    if s.held_exports > 0 { " with the whole export run" } else { "" },
                    c.name(),
                    c.name()
                );
            }
            record.phases.push(phase(
                "export",
                Some(c.name()),
                s.counts.total() + s.errors,
                t,
            ));
            if s.counts.total() > 0 || s.errors > 0 {
                tracing::info!(connector = %c.name(), ?s, "export");
                exported.push(i);
            }
            record.connectors[i].export = s.counts;
            record.connectors[i].errors += s.errors;
        }
        for i in exported {
            self.shutdown.check()?;
            self.live_phase("confirm", Some(self.connectors[i].name()));
            let c = self.connectors[i].as_mut();
            let t = Instant::now();
            let confirm = import::Confirm {
                now_ms: self.clock.now_ms(),
                write_only: write_only_of(&self.write_only, c.name()),
                guarded: feeds_metaverse(&self.config, c.name()),
            };
            let stats = import::run(&self.store, c, false, &self.shutdown, None, confirm)?;
            let counts = stats.counts;
            record_not_kept(record, c.name(), stats.not_kept);
            record
                .phases
                .push(phase("confirm", Some(c.name()), counts.total(), t));
            if counts.total() > 0 {
                tracing::info!(connector = %c.name(), ?counts, "confirming import saw changes");
            }
        }
        if let Some(p) = progress {
            p.finish_and_clear();
        }
        let tx = self.store.read()?;
        for (i, c) in self.connectors.iter().enumerate() {
            record.connectors[i].pending = tx.pending_count(c.name())?;
        }
        Ok(())
    }

    /// Releases exactly the deletes the threshold is holding back for `connector`; they go
    /// out with the next export. Returns the objects released.
    pub fn approve_deletes(&self, connector: &str) -> Result<Vec<approve::Released>, RunError> {
        self.approve(connector).map(|a| a.deletes)
    }

    /// Drains the inbound then the outbound queue (a full sync queues everything first).
    fn sync(
        &self,
        full: bool,
        progress: Option<&indicatif::ProgressBar>,
    ) -> Result<SyncStats, RunError> {
        let ctx = self.sync_context();
        let mut stats = SyncStats::default();
        if full {
            let tx = self.store.write()?;
            tx.mark_all_inbound()?;
            tx.commit()?;
        }
        // Objects that only join (foreign security principals, say) may have been synced
        // before the object they join to was projected from another connector in this
        // same pass: after projections, those that found nothing get one more try.
        let mut retried = false;
        loop {
            self.shutdown.check()?;
            let tx = self.store.write()?;
            let n = sync::inbound_batch(&tx, &ctx, SYNC_BATCH, &mut stats)?;
            if n == 0 && !retried && stats.projected > 0 {
                // Those of earlier syncs too: what this sync projected may be what they
                // were waiting for.
                retried = true;
                let waiting = tx.join_waiting()?;
                for (conn, id) in &waiting {
                    tx.mark_inbound(conn, *id)?;
                }
                tx.commit()?;
                if waiting.is_empty() {
                    break;
                }
                continue;
            }
            tx.commit()?;
            if n == 0 {
                break;
            }
            if let Some(p) = progress {
                p.set_message(format!("inbound sync: {} objects", stats.inbound));
            }
        }
        loop {
            self.shutdown.check()?;
            let tx = self.store.write()?;
            let n = sync::outbound_batch(&tx, &ctx, SYNC_BATCH, &mut stats)?;
            tx.commit()?;
            if n == 0 {
                break;
            }
            if let Some(p) = progress {
                p.set_message(format!("outbound sync: {} objects", stats.outbound));
            }
        }
        Ok(stats)
    }
}

fn write_only_of<'a>(
    all: &'a HashMap<ConnectorName, Vec<AttrName>>,
    conn: &ConnectorName,
) -> &'a [AttrName] {
    all.get(conn).map(Vec::as_slice).unwrap_or(&[])
}

/// Adds `n` no-op exports of `conn` to the cycle's record.
fn record_not_kept(record: &mut RunRecord, conn: &ConnectorName, n: u64) {
    if n == 0 {
        return;
    }
    let entry = record.phases.iter_mut().find(|p| {
        p.phase == RunRecord::NO_OP_PHASE && p.connector.as_deref() == Some(conn.as_str())
    });
    match entry {
        Some(p) => p.objects += n,
        None => record.phases.push(crate::store::PhaseTime {
            phase: RunRecord::NO_OP_PHASE.to_string(),
            connector: Some(conn.to_string()),
            objects: n,
            ms: 0,
        }),
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_gates;
#[cfg(test)]
mod tests_sync_object;
