//! What each page and API endpoint shows, read from one store snapshot per request and the
//! runner's live status. Plain serialisable structs: the HTML templates and the JSON API
//! render the same values.

use std::collections::BTreeMap;

use serde::Serialize;

use super::objects::display_name;
use crate::config::Config;
use crate::model::ConnectorName;
use crate::runner::handle::{LiveStatus, RunningCycle};
use crate::store::{
    ChangeCounts, ConnectorRunStats, CsRecord, ErrorRecord, PhaseTime, ReadTx, RunRecord,
    StoreError,
};

/// Runs on the overview.
const RECENT_RUNS: usize = 8;
/// Runs on the history page (and scanned for each connector's last runs).
pub const HISTORY_RUNS: usize = 200;

/// One run in a list.
#[derive(Clone, Debug, Serialize)]
pub struct RunSummary {
    /// Its id.
    pub id: u64,
    /// Unix ms start.
    pub started_ms: i64,
    /// Wall time.
    pub duration_ms: i64,
    /// full, delta, approve-deletes or leave-staging.
    pub mode: String,
    /// Who started it.
    pub trigger: String,
    /// Imports over all connectors.
    pub import: ChangeCounts,
    /// Exports over all connectors.
    pub export: ChangeCounts,
    /// Objects that failed.
    pub errors: u64,
    /// Deletes held back (or, for approve-deletes, released).
    pub blocked_deletes: u64,
    /// Why it stopped, if it did.
    pub failure: Option<String>,
    /// Ran in staging mode.
    pub staging: bool,
}

fn add(a: &mut ChangeCounts, b: &ChangeCounts) {
    a.adds += b.adds;
    a.updates += b.updates;
    a.deletes += b.deletes;
    a.renames += b.renames;
}

impl RunSummary {
    fn of(id: u64, r: &RunRecord) -> RunSummary {
        let mut import = ChangeCounts::default();
        let mut export = ChangeCounts::default();
        for c in &r.connectors {
            add(&mut import, &c.import);
            add(&mut export, &c.export);
        }
        RunSummary {
            id,
            started_ms: r.started_ms,
            duration_ms: r.finished_ms - r.started_ms,
            mode: r.mode.clone(),
            trigger: r.trigger.clone(),
            import,
            export,
            errors: r.connectors.iter().map(|c| c.errors).sum(),
            blocked_deletes: r.connectors.iter().map(|c| c.blocked_deletes).sum(),
            failure: r.failure.clone(),
            staging: r.staging,
        }
    }

    /// A cycle (not an admin action).
    pub fn is_cycle(&self) -> bool {
        self.mode == "full" || self.mode == "delta"
    }
}

/// Deletes held for one connector.
#[derive(Clone, Debug, Serialize)]
pub struct Blocked {
    /// The connector.
    pub connector: String,
    /// How many.
    pub count: u64,
    /// Other pending exports held with the deletes: the threshold holds the whole export
    /// run (0 when the connector holds only the deletes).
    pub held_exports: u64,
    /// An import the empty-import guard stopped: (objects the space holds, objects found).
    pub held_import: Option<(u64, u64)>,
}

/// Object totals.
#[derive(Clone, Debug, Serialize)]
pub struct Counts {
    /// Connector-space objects over all connectors.
    pub cs: u64,
    /// Metaverse objects.
    pub mv: u64,
    /// Pending exports.
    pub pending: u64,
}

/// The overview page.
#[derive(Clone, Debug, Serialize)]
pub struct Overview {
    /// "ok" or "degraded".
    pub health: String,
    /// Why degraded.
    pub problems: Vec<String>,
    /// The cycle running now.
    pub running: Option<RunningCycle>,
    /// The last finished cycle.
    pub last_cycle: Option<RunSummary>,
    /// Unix ms of the next scheduled cycle.
    pub next_cycle_ms: Option<i64>,
    /// Staging mode as applied now.
    pub staging: bool,
    /// Staging mode as the config file says.
    pub staging_in_config: bool,
    /// Held deletes per connector (only those with some).
    pub blocked: Vec<Blocked>,
    /// Object errors in the last cycle.
    pub errors_last_cycle: u64,
    /// Totals.
    pub counts: Counts,
    /// The latest runs and actions, newest first.
    pub recent: Vec<RunSummary>,
    /// Requests waiting for the runner.
    pub queued: usize,
}

/// Health: degraded when the last cycle failed or cycles stopped coming.
pub fn health(
    last_cycle: Option<&RunSummary>,
    live: &LiveStatus,
    interval_ms: i64,
    started_ms: i64,
    now: i64,
) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(f) = last_cycle.and_then(|c| c.failure.as_ref()) {
        problems.push(format!("the last cycle failed: {f}"));
    }
    // Allow a slow cycle three intervals (plus five minutes) before calling it stuck.
    let grace = 3 * interval_ms + 300_000;
    let since = last_cycle.map_or(started_ms, |c| c.started_ms + c.duration_ms.max(0));
    let running_since = live.running.as_ref().map(|r| r.started_ms);
    let stale = now - since.max(started_ms) > grace;
    if stale && running_since.is_none_or(|s| now - s > grace) {
        problems.push(format!(
            "no cycle has finished for {} minutes",
            (now - since) / 60_000
        ));
    }
    problems
}

/// Reads the overview.
pub fn overview(
    tx: &ReadTx,
    config: &Config,
    live: &LiveStatus,
    started_ms: i64,
    now: i64,
) -> Result<Overview, StoreError> {
    let runs = tx.runs(RECENT_RUNS * 4)?;
    let summaries: Vec<RunSummary> = runs.iter().map(|(id, r)| RunSummary::of(*id, r)).collect();
    let last_cycle = summaries.iter().find(|s| s.is_cycle()).cloned();
    let mut blocked = Vec::new();
    for c in &config.connectors {
        let n = tx.blocked_deletes(&c.name)?.len() as u64;
        let held_import = tx
            .held_import(&c.name)?
            .filter(|h| !h.approved)
            .map(|h| (h.held, h.found));
        if n > 0 || held_import.is_some() {
            let whole = c.deletion_threshold.holds == crate::config::ThresholdHolds::Export;
            blocked.push(Blocked {
                connector: c.name.to_string(),
                count: n,
                held_exports: match whole && n > 0 {
                    true => tx.pending_count(&c.name)?.saturating_sub(n),
                    false => 0,
                },
                held_import,
            });
        }
    }
    let (cs, mv, pending) = tx.counts()?;
    let interval_ms = config.schedule.interval.as_millis() as i64;
    let problems = health(last_cycle.as_ref(), live, interval_ms, started_ms, now);
    Ok(Overview {
        health: if problems.is_empty() {
            "ok"
        } else {
            "degraded"
        }
        .into(),
        problems,
        running: live.running.clone(),
        errors_last_cycle: last_cycle.as_ref().map_or(0, |c| c.errors),
        last_cycle,
        next_cycle_ms: live.next_cycle_ms,
        staging: live.staging,
        staging_in_config: config.staging,
        blocked,
        counts: Counts { cs, mv, pending },
        recent: summaries.into_iter().take(RECENT_RUNS).collect(),
        queued: live.queued,
    })
}

/// The history page.
pub fn runs(tx: &ReadTx) -> Result<Vec<RunSummary>, StoreError> {
    Ok(tx
        .runs(HISTORY_RUNS)?
        .iter()
        .map(|(id, r)| RunSummary::of(*id, r))
        .collect())
}

/// An object's error, for the run drill-down.
#[derive(Clone, Debug, Serialize)]
pub struct ObjectError {
    /// "cs" or "mv".
    pub space: String,
    /// The object's id number.
    pub id: u64,
    /// The connector (connector-space objects).
    pub connector: Option<String>,
    /// DN or display name.
    pub name: String,
    /// The directory's (or rule's) own words.
    pub message: String,
    /// Unix ms.
    pub first_seen_ms: i64,
    /// Unix ms.
    pub last_seen_ms: i64,
    /// Failed attempts.
    pub attempts: u32,
}

/// One run with its per-connector counts, phases and the errors seen during it.
#[derive(Clone, Debug, Serialize)]
pub struct RunDetail {
    /// The totals.
    pub summary: RunSummary,
    /// Per connector.
    pub connectors: Vec<ConnectorRunStats>,
    /// Phase timings.
    pub phases: Vec<PhaseTime>,
    /// Objects whose error was last seen during this run.
    pub errors: Vec<ObjectError>,
}

/// Errors shown per run at most.
const MAX_ERRORS: usize = 500;

fn object_error(
    space: &str,
    id: u64,
    connector: Option<String>,
    name: String,
    e: &ErrorRecord,
) -> ObjectError {
    ObjectError {
        space: space.into(),
        id,
        connector,
        name,
        message: e.message.clone(),
        first_seen_ms: e.first_seen_ms,
        last_seen_ms: e.last_seen_ms,
        attempts: e.attempts,
    }
}

/// Reads one run and the errors recorded while it ran.
pub fn run_detail(tx: &ReadTx, id: u64) -> Result<Option<RunDetail>, StoreError> {
    let Some(r) = tx.run(id)? else {
        return Ok(None);
    };
    let summary = RunSummary::of(id, &r);
    let mut errors = Vec::new();
    if summary.errors > 0 {
        // Errors carry their last time seen; those inside the run's window are its own.
        let within = |e: &ErrorRecord| {
            e.last_seen_ms >= r.started_ms && e.last_seen_ms <= r.finished_ms + 1000
        };
        tx.for_each_cs(None, &mut |cs, rec| {
            if let Some(e) = rec.error.as_ref().filter(|e| within(e)) {
                if errors.len() < MAX_ERRORS {
                    errors.push(object_error(
                        "cs",
                        cs.0,
                        Some(rec.connector.clone()),
                        rec.dn.to_string(),
                        e,
                    ));
                }
            }
            Ok(())
        })?;
        tx.for_each_mv(&mut |mv, rec| {
            if let Some(e) = rec.error.as_ref().filter(|e| within(e)) {
                if errors.len() < MAX_ERRORS {
                    errors.push(object_error("mv", mv.0, None, display_name(&rec), e));
                }
            }
            Ok(())
        })?;
    }
    Ok(Some(RunDetail {
        summary,
        connectors: r.connectors,
        phases: r.phases,
        errors,
    }))
}

/// The last run of one profile on one connector.
#[derive(Clone, Debug, Serialize)]
pub struct ProfileRun {
    /// The run.
    pub run_id: u64,
    /// Unix ms it started.
    pub at_ms: i64,
    /// Objects handled in that phase.
    pub objects: u64,
    /// Phase wall time.
    pub ms: u64,
}

/// One connector's page section.
#[derive(Clone, Debug, Serialize)]
pub struct ConnectorView {
    /// Its name.
    pub name: String,
    /// ldif, ad, ldap, scim, graph.
    pub kind: String,
    /// Objects in its connector space.
    pub objects: u64,
    /// Objects by metaverse type or, unlinked, by object class.
    pub by_type: BTreeMap<String, u64>,
    /// Linked to a metaverse object.
    pub connectors: u64,
    /// Not linked.
    pub disconnectors: u64,
    /// Pending exports.
    pub pending: u64,
    /// Deletes held back.
    pub blocked_deletes: u64,
    /// Objects with an error.
    pub errors: u64,
    /// Watermark size in bytes (None: no watermark yet).
    pub watermark_bytes: Option<usize>,
    /// When an import last completed (and so last confirmed or moved the watermark).
    pub watermark_ms: Option<i64>,
    /// Last full import.
    pub last_full_import: Option<ProfileRun>,
    /// Last delta import.
    pub last_delta_import: Option<ProfileRun>,
    /// Last full sync (all connectors).
    pub last_full_sync: Option<ProfileRun>,
    /// Last delta sync (all connectors).
    pub last_delta_sync: Option<ProfileRun>,
    /// Last export.
    pub last_export: Option<ProfileRun>,
    /// Of the last cycle that exported here, the exported changes the confirming import
    /// found were no-ops (churn: 0 when every export took).
    pub no_op_exports: Option<u64>,
}

/// Per-connector numbers that need a scan of every object: computed once per cycle.
#[derive(Clone, Debug, Default)]
pub struct ObjectStats {
    /// connector → (type or class → count).
    pub by_type: BTreeMap<String, BTreeMap<String, u64>>,
    /// connector → objects with an error.
    pub errors: BTreeMap<String, u64>,
    /// connector → objects.
    pub objects: BTreeMap<String, u64>,
}

/// Scans every connector-space object once.
pub fn object_stats(tx: &ReadTx) -> Result<ObjectStats, StoreError> {
    let mut s = ObjectStats::default();
    tx.for_each_cs(None, &mut |_, rec: CsRecord| {
        let kind = rec
            .object_type
            .map(|t| t.to_string())
            .unwrap_or_else(|| rec.object_class.clone());
        *s.by_type
            .entry(rec.connector.clone())
            .or_default()
            .entry(kind)
            .or_insert(0) += 1;
        *s.objects.entry(rec.connector.clone()).or_insert(0) += 1;
        if rec.error.is_some() {
            *s.errors.entry(rec.connector).or_insert(0) += 1;
        }
        Ok(())
    })?;
    Ok(s)
}

pub(super) fn connector_kind(c: &crate::config::ConnectorConfig) -> String {
    // The variant name, so that new connector types need no change here.
    let dbg = format!("{:?}", c.kind);
    dbg.split(['(', ' ', '{'])
        .next()
        .unwrap_or_default()
        .to_lowercase()
}

/// Reads the connectors page from a snapshot and the cached object stats.
pub fn connectors(
    tx: &ReadTx,
    config: &Config,
    stats: &ObjectStats,
) -> Result<Vec<ConnectorView>, StoreError> {
    let linked = tx.linked_counts()?;
    let runs = tx.runs(HISTORY_RUNS)?;
    let mut out = Vec::new();
    for c in &config.connectors {
        let name = c.name.to_string();
        let objects = stats.objects.get(&name).copied().unwrap_or(0);
        let joined = linked.get(&name).copied().unwrap_or(0);
        let find = |phase: &str, mode: Option<&str>, conn: Option<&ConnectorName>| {
            runs.iter().find_map(|(id, r)| {
                if r.failure.is_some() || mode.is_some_and(|m| r.mode != m) {
                    return None;
                }
                r.phases
                    .iter()
                    .find(|p| {
                        p.phase == phase
                            && p.connector.as_deref() == conn.map(ConnectorName::as_str)
                    })
                    .map(|p| ProfileRun {
                        run_id: *id,
                        at_ms: r.started_ms,
                        objects: p.objects,
                        ms: p.ms,
                    })
            })
        };
        let last_full_import = find("import", Some("full"), Some(&c.name));
        let last_delta_import = find("import", Some("delta"), Some(&c.name));
        let watermark_ms = [&last_full_import, &last_delta_import]
            .iter()
            .filter_map(|p| p.as_ref().map(|p| p.at_ms))
            .max();
        out.push(ConnectorView {
            kind: connector_kind(c),
            objects,
            by_type: stats.by_type.get(&name).cloned().unwrap_or_default(),
            connectors: joined,
            disconnectors: objects.saturating_sub(joined),
            pending: tx.pending_count(&c.name)?,
            blocked_deletes: tx.blocked_deletes(&c.name)?.len() as u64,
            errors: stats.errors.get(&name).copied().unwrap_or(0),
            watermark_bytes: tx.watermark(&c.name)?.map(|w| w.len()),
            watermark_ms,
            last_full_import,
            last_delta_import,
            last_full_sync: find("sync", Some("full"), None),
            last_delta_sync: find("sync", Some("delta"), None),
            last_export: find("export", None, Some(&c.name)),
            no_op_exports: runs
                .iter()
                .find(|(_, r)| {
                    r.phases.iter().any(|p| {
                        p.phase == "export" && p.connector.as_deref() == Some(name.as_str())
                    })
                })
                .map(|(_, r)| r.no_op_exports(&name)),
            name,
        });
    }
    Ok(out)
}
