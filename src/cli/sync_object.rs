//! `bridgehead sync-object`: one object through import, sync and export now, with the
//! report. The state file has one writer: while another process holds it (a running
//! `cycle`), this waits for it rather than run beside it.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{exit, load_config, report_failure, store_exit};
use crate::model::{Dn, SystemClock};
use crate::runner::sync_object::{ObjectReport, Which};
use crate::runner::{Runner, Shutdown};
use crate::store::{Store, StoreError};

/// How long it waits for another process to let go of the state file.
const WAIT: Duration = Duration::from_secs(30 * 60);

/// What the command line asked for.
pub struct Args<'a> {
    /// The config file.
    pub config: &'a Path,
    /// The source connector.
    pub connector: &'a str,
    /// The object's DN.
    pub dn: Option<&'a str>,
    /// Or its anchor.
    pub anchor: Option<&'a str>,
    /// Stop before export.
    pub dry_run: bool,
    /// Print the report as JSON.
    pub json: bool,
}

fn open_waiting(path: &Path) -> Result<Store, u8> {
    let started = Instant::now();
    let mut said = false;
    loop {
        match Store::open(path) {
            Ok(s) => return Ok(s),
            Err(StoreError::InUse(_)) if started.elapsed() < WAIT => {
                if !said {
                    eprintln!(
                        "waiting: the state file {} is in use by another bridgehead process \
                         (a running cycle); the object is synced when it ends",
                        path.display()
                    );
                    said = true;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            Err(e) => {
                eprintln!("error: {e}");
                return Err(store_exit(&e));
            }
        }
    }
}

/// Runs the command; returns the exit code.
pub fn run(a: &Args<'_>) -> u8 {
    let _guard = super::init_logging(None);
    let which = match (a.dn, a.anchor) {
        (Some(dn), None) => match Dn::parse(dn) {
            Ok(d) => Which::Dn(d),
            Err(e) => {
                eprintln!("error: --dn: {e}");
                return exit::CONFIG;
            }
        },
        (None, Some(anchor)) => Which::Anchor(anchor.to_string()),
        _ => {
            eprintln!("error: name the object with exactly one of --dn and --anchor");
            return exit::CONFIG;
        }
    };
    let config = match load_config(a.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let store = match open_waiting(&config.state_file) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let mut runner = Runner::new(config, store, Arc::new(SystemClock), Shutdown::default());
    match runner.sync_object(a.connector, &which, a.dry_run) {
        Ok(report) => {
            if a.json {
                match serde_json::to_string_pretty(&report) {
                    Ok(text) => out!("{text}"),
                    Err(e) => {
                        eprintln!("error: the report as JSON: {e}");
                        return exit::OBJECT_ERRORS;
                    }
                }
            } else {
                print(&report);
            }
            let refused = report
                .exports
                .iter()
                .any(|e| !e.applied && e.result.starts_with("refused"));
            if refused || !report.errors.is_empty() {
                exit::OBJECT_ERRORS
            } else {
                exit::OK
            }
        }
        Err(e) => report_failure(&e),
    }
}

/// The report, step by step.
pub fn print(r: &ObjectReport) {
    out!(
        "{} {}: {}",
        r.connector,
        r.dn,
        if r.found {
            "read from the directory"
        } else {
            "not in the directory (or out of scope): recorded deleted"
        }
    );
    let c = &r.import;
    out!(
        "  import: {} added, {} updated, {} deleted, {} renamed",
        c.adds,
        c.updates,
        c.deletes,
        c.renames
    );
    if r.rules.is_empty() {
        out!("  no inbound rule for its object class");
    }
    for v in &r.rules {
        out!(
            "  rule {:?}: {}",
            v.rule,
            if v.in_scope {
                "in scope"
            } else {
                "out of scope"
            }
        );
    }
    out!("  decision: {}", r.decision);
    for a in &r.attributes {
        let from = match (&a.connector, &a.rule) {
            (Some(c), Some(rule)) => format!("  [{c} / {rule}]"),
            _ => String::new(),
        };
        out!("    {}: {}{from}", a.name, a.values.join("; "));
    }
    for (attr, dn) in &r.unresolved {
        out!("  waiting: {attr} → {dn} (not in the metaverse yet)");
    }
    for e in &r.errors {
        out!("  error: {e}");
    }
    if r.exports.is_empty() {
        out!("  exports: none");
    }
    for e in &r.exports {
        let rename = e
            .new_dn
            .as_ref()
            .map(|d| format!(" → {d}"))
            .unwrap_or_default();
        out!("  export to {}: {} {}{rename}", e.connector, e.op, e.dn);
        for c in &e.changes {
            out!("    {} {}: {}", c.op, c.attr, c.values.join("; "));
        }
        out!("    → {}", e.result);
    }
}
