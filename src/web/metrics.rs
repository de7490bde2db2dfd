//! `/metrics`: Prometheus/OpenMetrics text, built fresh from one snapshot per scrape.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

use super::views::{ObjectStats, RunSummary};
use crate::config::Config;
use crate::runner::handle::LiveStatus;
use crate::store::{ReadTx, StoreError};

type Labels = Vec<(String, String)>;
type FloatGauge = Gauge<f64, AtomicU64>;

fn by_connector(name: &str) -> Labels {
    vec![("connector".into(), name.into())]
}

/// The OpenMetrics text for the current state.
pub fn render(
    tx: &ReadTx,
    config: &Config,
    live: &LiveStatus,
    stats: &ObjectStats,
    health_ok: bool,
) -> Result<String, StoreError> {
    let mut reg = Registry::with_prefix("bridgehead");
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
    let _ = encode(&mut out, &reg);
    Ok(out)
}
