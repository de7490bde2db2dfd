//! What the daemon has done since it started, for `/metrics`: per-phase duration
//! histograms and export counts by outcome, added up from each finished cycle's record.
//! Counters only grow while the process lives, as Prometheus expects (the run history in
//! the store is pruned, so it cannot serve as their source).

use std::collections::BTreeMap;

use super::Runner;
use crate::store::{PhaseTime, RunRecord};

/// Upper bounds, in seconds, of the phase-duration buckets: a delta import of a quiet
/// directory takes milliseconds, a full import of a large forest an hour.
pub const PHASE_BUCKETS: &[f64] = &[
    0.005, 0.025, 0.1, 0.25, 1.0, 2.5, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

/// Observations of one phase (on one connector).
#[derive(Clone, Debug, PartialEq)]
pub struct PhaseHistogram {
    /// Observations per bucket of [`PHASE_BUCKETS`], plus one past the last (+Inf);
    /// not cumulative.
    pub buckets: Vec<u64>,
    /// Sum of the observed seconds.
    pub sum_seconds: f64,
    /// Number of observations.
    pub count: u64,
}

impl Default for PhaseHistogram {
    fn default() -> Self {
        PhaseHistogram {
            buckets: vec![0; PHASE_BUCKETS.len() + 1],
            sum_seconds: 0.0,
            count: 0,
        }
    }
}

impl PhaseHistogram {
    fn observe(&mut self, seconds: f64) {
        let i = PHASE_BUCKETS
            .iter()
            .position(|le| seconds <= *le)
            .unwrap_or(PHASE_BUCKETS.len());
        if let Some(b) = self.buckets.get_mut(i) {
            *b += 1;
        }
        self.sum_seconds += seconds;
        self.count += 1;
    }
}

/// How an export ended, the `outcome` label of `bridgehead_exports_total`.
pub const EXPORT_OUTCOMES: &[&str] = &["added", "updated", "deleted", "renamed", "failed", "held"];

/// The totals since the process started.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CycleTotals {
    /// By (phase, connector or "" for a phase over all of them).
    pub phases: BTreeMap<(String, String), PhaseHistogram>,
    /// By (connector, outcome of [`EXPORT_OUTCOMES`]).
    pub exports: BTreeMap<(String, &'static str), u64>,
    /// Per connector, exported changes the confirming import found were no-ops.
    pub no_op_exports: BTreeMap<String, u64>,
    /// Finished cycles by result: "ok" or "failed".
    pub cycles: BTreeMap<&'static str, u64>,
}

impl CycleTotals {
    /// Adds one finished cycle.
    pub fn add(&mut self, rec: &RunRecord) {
        for p in rec
            .phases
            .iter()
            .filter(|p| p.phase != RunRecord::NO_OP_PHASE && p.phase != RunRecord::OBJECTS_PHASE)
        {
            let key = (p.phase.clone(), p.connector.clone().unwrap_or_default());
            self.phases
                .entry(key)
                .or_default()
                .observe(p.ms as f64 / 1000.0);
        }
        for c in &rec.connectors {
            let e = &c.export;
            let counts = [
                e.adds,
                e.updates,
                e.deletes,
                e.renames,
                c.errors,
                c.blocked_deletes,
            ];
            for (outcome, n) in EXPORT_OUTCOMES.iter().zip(counts) {
                *self
                    .exports
                    .entry((c.connector.clone(), outcome))
                    .or_default() += n;
            }
            *self.no_op_exports.entry(c.connector.clone()).or_default() +=
                rec.no_op_exports(&c.connector);
        }
        let result = if rec.failure.is_some() {
            "failed"
        } else {
            "ok"
        };
        *self.cycles.entry(result).or_default() += 1;
    }
}

impl Runner {
    /// Notes each connector space's size at the end of the cycle in its record.
    pub(super) fn record_objects(&self, record: &mut RunRecord) {
        let Ok(tx) = self.store.read() else { return };
        for c in &self.config.connectors {
            match tx.cs_count(&c.name) {
                Ok(n) => record.phases.push(PhaseTime {
                    phase: RunRecord::OBJECTS_PHASE.to_string(),
                    connector: Some(c.name.to_string()),
                    objects: n,
                    ms: 0,
                }),
                Err(e) => tracing::warn!(connector = %c.name, "cannot count its objects: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ChangeCounts, ConnectorRunStats, PhaseTime};

    #[test]
    fn cycles_add_up_into_buckets_and_outcomes() {
        let rec = RunRecord {
            connectors: vec![ConnectorRunStats {
                connector: "directory".into(),
                export: ChangeCounts {
                    adds: 3,
                    updates: 2,
                    deletes: 1,
                    renames: 0,
                },
                errors: 1,
                blocked_deletes: 4,
                ..Default::default()
            }],
            phases: vec![
                PhaseTime {
                    phase: "import".into(),
                    connector: Some("directory".into()),
                    objects: 5,
                    ms: 20,
                },
                PhaseTime {
                    phase: "sync".into(),
                    connector: None,
                    objects: 5,
                    ms: 5000,
                },
                PhaseTime {
                    phase: RunRecord::NO_OP_PHASE.into(),
                    connector: Some("directory".into()),
                    objects: 2,
                    ms: 0,
                },
            ],
            ..Default::default()
        };
        let mut t = CycleTotals::default();
        t.add(&rec);
        t.add(&rec);
        let import = &t.phases[&("import".to_string(), "directory".to_string())];
        assert_eq!(
            (import.count, import.buckets[1]),
            (2, 2),
            "20 ms is in le=0.025"
        );
        let sync = &t.phases[&("sync".to_string(), String::new())];
        assert_eq!(sync.buckets[6], 2, "5 s is in le=10");
        assert!((sync.sum_seconds - 10.0).abs() < 1e-9);
        assert!(!t.phases.keys().any(|(p, _)| p == RunRecord::NO_OP_PHASE));
        let get = |o: &'static str| t.exports[&("directory".to_string(), o)];
        assert_eq!(
            (
                get("added"),
                get("updated"),
                get("deleted"),
                get("failed"),
                get("held")
            ),
            (6, 4, 2, 2, 8)
        );
        assert_eq!(t.no_op_exports["directory"], 4);
        assert_eq!(t.cycles["ok"], 2);
    }
}
