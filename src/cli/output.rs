//! What the CLI prints: cycle summaries (table or JSON) and search results with lineage.

use std::collections::BTreeSet;

use crate::model::{CsId, MvId};
use crate::store::{ChangeCounts, CsRecord, MvRecord, RunRecord, Store, StoreError};

fn counts(c: &ChangeCounts) -> String {
    format!(
        "{:>6} {:>6} {:>6} {:>6}",
        c.adds, c.updates, c.deletes, c.renames
    )
}

/// A table: one line per connector with import and export counts.
pub fn print_summary(run: &RunRecord) {
    out!(
        "{:<16} {:^27} | {:^27} | {:>6} | {:>6}",
        "connector",
        "import add/upd/del/ren",
        "export add/upd/del/ren",
        "no-ops",
        "errors"
    );
    for c in &run.connectors {
        out!(
            "{:<16} {} | {} | {:>6} | {:>6}",
            c.connector,
            counts(&c.import),
            counts(&c.export),
            run.no_op_exports(&c.connector),
            c.errors
        );
    }
    out!(
        "{} cycle finished in {:.2} s",
        run.mode,
        (run.finished_ms - run.started_ms) as f64 / 1000.0
    );
    if run.staging {
        out!("STAGING MODE: nothing was exported; pending exports wait for review:");
        for c in run.connectors.iter().filter(|c| c.pending > 0) {
            out!("  {}: {} pending exports", c.connector, c.pending);
        }
    }
    for c in run.connectors.iter().filter(|c| c.blocked_deletes > 0) {
        out!(
            "{name}: {n} deletes held back by the deletion threshold; review them with \
             `bridgehead pending --connector {name}`, release them with `bridgehead approve \
             --connector {name}`",
            name = c.connector,
            n = c.blocked_deletes,
        );
    }
}

/// The pending exports of one connector, one block each, in export order.
pub fn print_pending(list: &crate::runner::pending::PendingList) {
    out!(
        "{} ({}): {} pending exports",
        list.connector,
        list.kind,
        list.exports.len()
    );
    if list.held_deletes > 0 {
        out!(
            "HELD: the deletion threshold holds {} deletes{}; `bridgehead approve --connector {}` \
             releases them",
            list.held_deletes,
            if list.export_held {
                " and with them this whole export run"
            } else {
                " (the rest exports)"
            },
            list.connector
        );
    }
    if let Some((held, found)) = list.held_import {
        out!(
            "HELD: the last import found {found} of {held} objects and was stopped by the \
             empty-import guard"
        );
    }
    for e in &list.exports {
        let name = e
            .name
            .as_deref()
            .map(|n| format!("  ({n})"))
            .unwrap_or_default();
        let held = if e.held { "  [held]" } else { "" };
        match &e.new_dn {
            Some(new) => out!("\n{} {} -> {new}{name}{held}", e.op, e.dn),
            None => out!("\n{} {}{name}{held}", e.op, e.dn),
        }
        if e.op == "add" {
            out!("    objectClass {}", e.object_class);
        }
        for c in &e.changes {
            let sign = match c.op {
                "add" => "+",
                "remove" => "-",
                _ => "=",
            };
            if c.values.is_empty() {
                out!("  {sign} {}: (no values)", c.attr);
            }
            for v in &c.values {
                out!("  {sign} {}: {v}", c.attr);
            }
        }
        if let Some(err) = &e.error {
            out!("    last refused: {err}");
        }
    }
}

/// What one connector's approval released, object by object.
pub fn print_approval(a: &crate::runner::approve::Approval) {
    if a.is_empty() {
        out!("connector {}: nothing held back", a.connector);
        return;
    }
    for r in &a.deletes {
        let name = match (&r.name, &r.id) {
            (Some(n), Some(i)) => format!("{n} ({i})"),
            (Some(n), None) => n.clone(),
            _ => "(no name)".to_string(),
        };
        out!("released: {} — {name}", r.dn);
    }
    if !a.deletes.is_empty() {
        out!(
            "{}: {} deletes approved; the next cycle exports them with the rest of the export run",
            a.connector,
            a.deletes.len()
        );
    }
    if let Some(i) = &a.import {
        out!(
            "{}: the import that found {} of {} objects is approved; the next import records the \
             missing ones as deleted",
            a.connector,
            i.found,
            i.held
        );
    }
}

/// The run record as one JSON object on stdout.
pub fn print_json(run: &RunRecord) {
    let mut json = match serde_json::to_value(run) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: cannot encode the run as JSON: {e}");
            return;
        }
    };
    // Each connector's no-op exports, next to its other counts.
    if let Some(list) = json.get_mut("connectors").and_then(|c| c.as_array_mut()) {
        for c in list.iter_mut() {
            let name = c
                .get("connector")
                .and_then(|n| n.as_str())
                .unwrap_or_default();
            let n = run.no_op_exports(name);
            if let Some(o) = c.as_object_mut() {
                o.insert("no_op_exports".into(), n.into());
            }
        }
    }
    match serde_json::to_string(&json) {
        Ok(s) => out!("{s}"),
        Err(e) => eprintln!("error: cannot encode the run as JSON: {e}"),
    }
}

fn cs_matches(rec: &CsRecord, q: &str) -> bool {
    rec.dn.as_str().to_lowercase().contains(q)
        || rec.anchor.as_ref().is_some_and(|a| {
            crate::model::Anchor::new(a.clone())
                .to_string()
                .to_lowercase()
                .contains(q)
        })
}

fn mv_matches(rec: &MvRecord, q: &str) -> bool {
    rec.attrs
        .iter()
        .flat_map(|(_, vs)| vs.iter())
        .any(|v| v.to_text().to_lowercase().contains(q))
}

/// Finds MV objects (by any attribute value) and CS objects (by DN or anchor) and prints
/// each MV object's lineage. Returns how many MV objects were printed.
pub fn search(store: &Store, query: &str, limit: usize) -> Result<usize, StoreError> {
    let q = query.to_lowercase();
    let tx = store.read()?;
    let mut hits: BTreeSet<MvId> = BTreeSet::new();
    let mut loose: Vec<(CsId, CsRecord)> = Vec::new();
    tx.for_each_mv(&mut |id, rec| {
        if hits.len() < limit && mv_matches(&rec, &q) {
            hits.insert(id);
        }
        Ok(())
    })?;
    tx.for_each_cs(None, &mut |id, rec| {
        if cs_matches(&rec, &q) {
            match tx.link_of(id)? {
                Some(mv) if hits.len() < limit => {
                    hits.insert(mv);
                }
                Some(_) => {}
                None if loose.len() < limit => loose.push((id, rec)),
                None => {}
            }
        }
        Ok(())
    })?;
    for id in &hits {
        let Some(mv) = tx.mv(*id)? else { continue };
        out!(
            "{id} {}{}",
            mv.object_type,
            if mv.deleted { " (deleted)" } else { "" }
        );
        for (name, values) in mv.attrs.iter() {
            let from = mv
                .contributor(name.key())
                .map(|c| format!("  [{} / {}]", c.connector, c.rule))
                .unwrap_or_default();
            let vals: Vec<String> = values.iter().map(|v| v.to_text()).collect();
            out!("    {name}: {}{from}", vals.join("; "));
        }
        if let Some(e) = &mv.error {
            out!("    error: {} ({} times)", e.message, e.attempts);
        }
        for cs in tx.links_of(*id)? {
            if let Some(rec) = tx.cs(cs)? {
                print_cs(cs, &rec, "  ↔ ");
            }
        }
    }
    for (id, rec) in &loose {
        print_cs(*id, rec, "disconnector ");
    }
    Ok(hits.len() + loose.len())
}

fn print_cs(id: CsId, rec: &CsRecord, prefix: &str) {
    let anchor = rec
        .anchor
        .as_ref()
        .map(|a| crate::model::Anchor::new(a.clone()).to_string())
        .unwrap_or_else(|| "(not exported yet)".into());
    out!(
        "{prefix}{id} [{}] {} anchor={anchor}",
        rec.connector,
        rec.dn
    );
    if let Some(e) = &rec.export {
        out!(
            "      pending {:?}: {} changes{}",
            e.kind,
            e.changes.len(),
            e.new_dn
                .as_ref()
                .map(|d| format!(", rename to {d}"))
                .unwrap_or_default()
        );
    }
    for (attr, dn) in &rec.unresolved {
        out!("      waiting: {attr} → {dn} (not in the metaverse yet)");
    }
    if let Some(e) = &rec.error {
        out!("      error: {} ({} times)", e.message, e.attempts);
    }
}

/// Prints a preview: rules in scope, the join decision, MV attributes with lineage, exports.
pub fn print_preview(connector: &str, dn: &crate::model::Dn, p: &crate::sync::Preview) {
    use crate::sync::Decision;
    out!("{connector} {dn} ({})", p.cs);
    if p.rules.is_empty() {
        out!("  no inbound rule for its object class");
    }
    for r in &p.rules {
        out!(
            "  rule {:?}: {}",
            r.rule,
            if r.in_scope {
                "in scope"
            } else {
                "out of scope"
            }
        );
    }
    let decision = match &p.decision {
        Decision::StaysJoined(mv) => format!("stays joined to {mv}"),
        Decision::Joins(mv) => format!("joins {mv}"),
        Decision::Projects => "projects a new metaverse object".to_string(),
        Decision::Disconnects(mv) => format!("disconnects from {mv}"),
        Decision::StaysDisconnector => "stays a disconnector".to_string(),
    };
    out!("  decision: {decision}");
    for (name, values, from) in &p.attributes {
        let vals: Vec<String> = values.iter().map(|v| v.to_text()).collect();
        let from = from
            .as_ref()
            .map(|c| format!("  [{} / {}]", c.connector, c.rule))
            .unwrap_or_default();
        out!("    {name}: {}{from}", vals.join("; "));
    }
    for (attr, dn) in &p.unresolved {
        out!("  waiting: {attr} → {dn} (not in the metaverse yet)");
    }
    if p.exports.is_empty() {
        out!("  exports: none");
    }
    for e in &p.exports {
        let rename = e
            .new_dn
            .as_ref()
            .map(|d| format!(" → {d}"))
            .unwrap_or_default();
        out!("  export to {}: {:?} {}{rename}", e.connector, e.kind, e.dn);
        for c in &e.changes {
            out!("    {}", c.summary(5));
        }
    }
    for e in &p.errors {
        out!("  error: {e}");
    }
}

fn when(ms: i64) -> String {
    crate::model::UtcTime::from_unix(ms.div_euclid(1000)).readable()
}

fn print_error(e: &crate::store::ErrorRecord) {
    out!(
        "    {} (first {}, last {}, {} attempts)",
        e.message,
        when(e.first_seen_ms),
        when(e.last_seen_ms),
        e.attempts
    );
}

/// Prints every object that carries an error; returns how many.
pub fn errors(store: &Store) -> Result<usize, StoreError> {
    let tx = store.read()?;
    let mut n = 0;
    tx.for_each_cs(None, &mut |id, rec| {
        if let Some(e) = &rec.error {
            n += 1;
            out!("{id} [{}] {}", rec.connector, rec.dn);
            print_error(e);
        }
        Ok(())
    })?;
    tx.for_each_mv(&mut |id, rec| {
        if let Some(e) = &rec.error {
            n += 1;
            let name = rec
                .attrs
                .first_text("displayName")
                .or_else(|| rec.attrs.first_text("cn"))
                .unwrap_or_default();
            out!("{id} {} {name}", rec.object_type);
            print_error(e);
        }
        Ok(())
    })?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_print_as_utc() {
        assert_eq!(super::when(0), "1970-01-01 00:00:00Z");
        assert_eq!(super::when(1_795_654_542_932), "2026-11-26 00:55:42Z");
        assert_eq!(super::when(951_782_400_000), "2000-02-29 00:00:00Z");
    }
}
