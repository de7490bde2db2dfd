//! `/metrics`: Prometheus/OpenMetrics text, built fresh from one snapshot per scrape: the
//! store's counts, the runner's totals since start (phase histograms, exports by outcome)
//! and the conventional `process_*` figures.

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::AtomicU64;

use super::views::{ObjectStats, RunSummary};
use crate::config::Config;
use crate::runner::handle::LiveStatus;
use crate::runner::totals::{CycleTotals, PHASE_BUCKETS, PhaseHistogram};
use crate::store::{ReadTx, StoreError};

type Labels = Vec<(String, String)>;
type FloatGauge = Gauge<f64, AtomicU64>;
type FloatCounter = Counter<f64, AtomicU64>;

/// The phase histograms as they stand, one labelled series each.
#[derive(Debug)]
struct PhaseHistograms(Vec<(Labels, PhaseHistogram)>);

impl EncodeMetric for PhaseHistograms {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for (labels, h) in &self.0 {
            let buckets: Vec<(f64, u64)> = PHASE_BUCKETS
                .iter()
                .copied()
                .chain([f64::INFINITY])
                .zip(h.buckets.iter().copied())
                .collect();
            encoder
                .encode_family(labels)?
                .encode_histogram::<NoLabelSet>(h.sum_seconds, h.count, &buckets, None)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// The runner's totals since the process started.
fn register_totals(reg: &mut Registry, config: &Config, totals: &CycleTotals) {
    let mut phases: Vec<(Labels, PhaseHistogram)> = totals
        .phases
        .iter()
        .map(|((phase, connector), h)| {
            let mut l = vec![("phase".to_string(), phase.clone())];
            if !connector.is_empty() {
                l.push(("connector".into(), connector.clone()));
            }
            (l, h.clone())
        })
        .collect();
    phases.sort_by(|a, b| a.0.cmp(&b.0));
    reg.register_with_unit(
        "phase_duration",
        "Wall time of each cycle phase (per connector where the phase is), since start",
        Unit::Seconds,
        PhaseHistograms(phases),
    );
    let exports = Family::<Labels, Counter>::default();
    let no_ops = Family::<Labels, Counter>::default();
    for c in &config.connectors {
        let name = c.name.as_str();
        for outcome in crate::runner::totals::EXPORT_OUTCOMES {
            let n = totals
                .exports
                .get(&(name.to_string(), *outcome))
                .copied()
                .unwrap_or(0);
            exports
                .get_or_create(&vec![
                    ("connector".into(), name.into()),
                    ("outcome".into(), (*outcome).into()),
                ])
                .inc_by(n);
        }
        no_ops
            .get_or_create(&by_connector(name))
            .inc_by(totals.no_op_exports.get(name).copied().unwrap_or(0));
    }
    reg.register(
        "exports",
        "Exported changes since start, by outcome: added, updated, deleted, renamed; failed \
         (objects whose export or sync failed); held (deletes held by the deletion threshold)",
        exports,
    );
    reg.register(
        "no_op_exports",
        "Exported changes that the confirming import found the directory did not keep, since start",
        no_ops,
    );
    let cycles = Family::<Labels, Counter>::default();
    for result in ["ok", "failed"] {
        cycles
            .get_or_create(&vec![("result".into(), result.into())])
            .inc_by(totals.cycles.get(result).copied().unwrap_or(0));
    }
    reg.register("cycles", "Cycles finished since start, by result", cycles);
}

/// Each near-real-time watch's state, one series per possible state (1 for the current).
fn register_watches(reg: &mut Registry, live: &LiveStatus) {
    let watch = Family::<Labels, Gauge>::default();
    for (connector, state) in &live.watches {
        let now = if state.starts_with("watching") {
            "watching"
        } else if state.starts_with("lost") {
            "lost"
        } else {
            "starting"
        };
        for s in ["starting", "watching", "lost"] {
            watch
                .get_or_create(&vec![
                    ("connector".into(), connector.clone()),
                    ("state".into(), s.into()),
                ])
                .set(i64::from(s == now));
        }
    }
    reg.register(
        "watch_state",
        "Near-real-time watch per connector: 1 for its current state (starting, watching, lost)",
        watch,
    );
}

/// `process_*` as Prometheus client libraries name them, and the build.
fn register_process(reg: &mut Registry) {
    let info = Family::<Labels, Gauge>::default();
    info.get_or_create(&vec![(
        "version".to_string(),
        env!("CARGO_PKG_VERSION").to_string(),
    )])
    .set(1);
    reg.register(
        "bridgehead_build_info",
        "The running build (always 1)",
        info,
    );
    let Some(p) = super::process::read() else {
        return;
    };
    let cpu = FloatCounter::default();
    cpu.inc_by(p.cpu_seconds);
    reg.register_with_unit(
        "process_cpu",
        "Total user and system CPU time spent",
        Unit::Seconds,
        cpu,
    );
    let gauge = |v: u64| {
        let g = Gauge::<i64>::default();
        g.set(i64::try_from(v).unwrap_or(i64::MAX));
        g
    };
    reg.register_with_unit(
        "process_resident_memory",
        "Resident memory size",
        Unit::Bytes,
        gauge(p.resident_bytes),
    );
    reg.register_with_unit(
        "process_virtual_memory",
        "Virtual memory size",
        Unit::Bytes,
        gauge(p.virtual_bytes),
    );
    reg.register(
        "process_open_fds",
        "Open file descriptors",
        gauge(p.open_fds),
    );
    if let Some(max) = p.max_fds {
        reg.register(
            "process_max_fds",
            "Limit on open file descriptors",
            gauge(max),
        );
    }
    let start = FloatGauge::default();
    start.set(p.start_time_seconds);
    reg.register_with_unit(
        "process_start_time",
        "When the process started, since the Unix epoch",
        Unit::Seconds,
        start,
    );
}

fn by_connector(name: &str) -> Labels {
    vec![("connector".into(), name.into())]
}

/// The OpenMetrics text for the current state.
pub fn render(
    tx: &ReadTx,
    config: &Config,
    live: &LiveStatus,
    totals: &CycleTotals,
    stats: &ObjectStats,
    health_ok: bool,
) -> Result<String, StoreError> {
    let mut root = Registry::default();
    register_process(&mut root);
    let reg = root.sub_registry_with_prefix("bridgehead");
    register_totals(reg, config, totals);
    register_watches(reg, live);
    let objects = Family::<Labels, Gauge>::default();
    let pending = Family::<Labels, Gauge>::default();
    let blocked = Family::<Labels, Gauge>::default();
    let errors = Family::<Labels, Gauge>::default();
    for c in &config.connectors {
        let l = by_connector(c.name.as_str());
        objects
            .get_or_create(&l)
            .set(stats.objects.get(c.name.as_str()).copied().unwrap_or(0) as i64);
        pending
            .get_or_create(&l)
            .set(tx.pending_count(&c.name)? as i64);
        blocked
            .get_or_create(&l)
            .set(tx.blocked_deletes(&c.name)?.len() as i64);
        errors
            .get_or_create(&l)
            .set(stats.errors.get(c.name.as_str()).copied().unwrap_or(0) as i64);
    }
    reg.register(
        "connector_space_objects",
        "Objects in each connector space",
        objects,
    );
    reg.register("exports_pending", "Pending exports per connector", pending);
    reg.register(
        "deletes_blocked",
        "Deletes held back by the deletion threshold per connector",
        blocked,
    );
    reg.register(
        "object_errors",
        "Connector-space objects carrying an error, per connector",
        errors,
    );
    let (_, mv, _) = tx.counts()?;
    let g = Gauge::<i64>::default();
    g.set(mv as i64);
    reg.register("metaverse_objects", "Objects in the metaverse", g);

    let runs: Vec<RunSummary> = super::views::runs(tx)?;
    let cycles: Vec<&RunSummary> = runs.iter().filter(|r| r.is_cycle()).collect();
    let duration = FloatGauge::default();
    let run_errors = Gauge::<i64>::default();
    if let Some(last) = cycles.first() {
        duration.set(last.duration_ms as f64 / 1000.0);
        run_errors.set(last.errors as i64);
    }
    reg.register(
        "last_cycle_duration_seconds",
        "Wall time of the last finished cycle",
        duration,
    );
    reg.register(
        "last_cycle_object_errors",
        "Objects that failed in the last finished cycle",
        run_errors,
    );
    let success = FloatGauge::default();
    if let Some(ok) = cycles.iter().find(|r| r.failure.is_none()) {
        success.set((ok.started_ms + ok.duration_ms) as f64 / 1000.0);
    }
    reg.register(
        "last_successful_cycle_timestamp_seconds",
        "Unix time when the last cycle without a failure finished (0: none yet)",
        success,
    );
    let running = Gauge::<i64>::default();
    running.set(i64::from(live.running.is_some()));
    reg.register("cycle_running", "1 while a cycle runs", running);
    let staging = Gauge::<i64>::default();
    staging.set(i64::from(live.staging));
    reg.register(
        "staging",
        "1 in staging mode (nothing is exported)",
        staging,
    );
    let up = Gauge::<i64>::default();
    up.set(i64::from(health_ok));
    reg.register("healthy", "1 when /healthz says ok", up);

    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut out, &root);
    Ok(out)
}

/// OpenMetrics text as the classic Prometheus text format (0.0.4): a counter's HELP and TYPE
/// lines name its `_total` series, and there are no UNIT lines and no `# EOF`.
pub fn classic_text(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|p| {
            let rest = line.strip_prefix(p)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{p}{name}_total {tail}"))
        });
        match renamed {
            Some(l) => out.push_str(&l),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn watch_states_are_one_series_each_and_counters_get_classic_names() {
        let live = LiveStatus {
            watches: vec![
                ("corp".into(), "watching (change notification)".into()),
                ("ldap".into(), "lost: connection reset".into()),
            ],
            ..Default::default()
        };
        let mut root = Registry::default();
        register_watches(root.sub_registry_with_prefix("bridgehead"), &live);
        let c = Counter::<u64>::default();
        c.inc_by(7);
        root.register_with_unit("work", "Work done", Unit::Seconds, c);
        let mut om = String::new();
        encode(&mut om, &root).unwrap();
        for want in [
            "bridgehead_watch_state{connector=\"corp\",state=\"watching\"} 1",
            "bridgehead_watch_state{connector=\"corp\",state=\"lost\"} 0",
            "bridgehead_watch_state{connector=\"ldap\",state=\"lost\"} 1",
            "bridgehead_watch_state{connector=\"ldap\",state=\"starting\"} 0",
        ] {
            assert!(om.contains(want), "{want} in\n{om}");
        }
        let classic = classic_text(&om);
        assert!(
            classic.contains("# HELP work_seconds_total Work done.\n"),
            "{classic}"
        );
        assert!(classic.contains("# TYPE work_seconds_total counter\nwork_seconds_total 7\n"));
        assert!(
            !classic.contains("# EOF") && !classic.contains("# UNIT"),
            "{classic}"
        );
        assert!(classic.contains("# TYPE bridgehead_watch_state gauge\n"));
    }
}
