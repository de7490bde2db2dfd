//! Outbound sync: provisioning, DN templates, attribute flows, deprovisioning and the
//! computation of pending exports as the difference between the desired state and the
//! hologram. Recomputing from the hologram (never accumulating) makes exports idempotent.

use std::collections::HashMap;

use super::flows;
use super::{SyncContext, SyncStats, record_error};
use crate::model::{
    AttrChange, AttrName, Attributes, ChangeOp, ConnectorName, CsId, Dn, ExportKind, MvId, ValueSet,
};
use crate::rules::{Deprovision, OutboundRule, rule_in_scope};
use crate::store::write::LinkKind;
use crate::store::{CsRecord, MvRecord, PendingExportRecord, StoreError, WriteTx};
use flows::FlowValue;

/// Syncs one MV object out to every target connector.
pub fn sync_mv(
    tx: &WriteTx,
    ctx: &SyncContext<'_>,
    mv: MvId,
    stats: &mut SyncStats,
) -> Result<(), StoreError> {
    let Some(mut mvrec) = tx.mv(mv)? else {
        return Ok(());
    };
    stats.outbound += 1;
    let mut targets: Vec<&ConnectorName> = Vec::new();
    for r in ctx
        .rules
        .outbound
        .iter()
        .filter(|r| r.object_type == mvrec.object_type)
    {
        if !targets.contains(&&r.connector) {
            targets.push(&r.connector);
        }
    }
    let mut mv_error: Option<String> = None;
    for conn in targets {
        let existing: Option<(CsId, CsRecord)> = match tx.link_in(mv, conn.as_str())? {
            Some(cs) => tx.cs(cs)?.map(|rec| (cs, rec)),
            None => None,
        };
        let rules: Vec<&OutboundRule> = ctx
            .rules
            .outbound
            .iter()
            .filter(|r| &r.connector == conn && r.object_type == mvrec.object_type)
            .collect();
        let in_scope: Vec<&OutboundRule> = if mvrec.deleted {
            Vec::new()
        } else {
            rules
                .iter()
                .copied()
                .filter(|r| {
                    rule_in_scope(
                        &r.scope,
                        r.scope_expression.as_ref(),
                        &mvrec.attrs,
                        None,
                        ctx.now_ms / 1000,
                    )
                })
                .collect()
        };
        let merged;
        let in_scope_rule = match in_scope.as_slice() {
            [] => None,
            [one] => Some(*one),
            [first, rest @ ..] => {
                merged = merge_rules(first, rest);
                Some(&merged)
            }
        };
        let result = match (existing, in_scope_rule) {
            (None, Some(rule)) if rule.provision => provision(tx, ctx, mv, &mvrec, rule, stats)?,
            (None, _) => Ok(()),
            (Some((cs, rec)), Some(rule)) => update(tx, ctx, mv, &mvrec, cs, rec, rule)?,
            (Some((cs, rec)), None) => {
                let action = rules.first().map(|r| (&r.deprovision, r.name.as_str()));
                deprovision(tx, mv, cs, rec, action)?;
                stats.deprovisioned += 1;
                Ok(())
            }
        };
        if let Err(message) = result {
            mv_error = Some(message);
        }
    }
    if mvrec.deleted {
        if tx.links_of(mv)?.is_empty() {
            tx.delete_mv(mv)?;
        }
        return Ok(());
    }
    let new_error = match mv_error {
        Some(m) => {
            stats.errors += 1;
            Some(record_error(mvrec.error.take(), m, ctx.now_ms))
        }
        None => None,
    };
    if new_error != mvrec.error {
        mvrec.error = new_error;
        tx.put_mv(mv, &mvrec)?;
    }
    Ok(())
}

/// Several rules in scope for one target: the first supplies the object class, DN,
/// provisioning and deprovisioning; each attribute flows from the first rule that writes
/// it. Admin rules come before the out-of-box ones, so they override a default flow.
fn merge_rules(first: &OutboundRule, rest: &[&OutboundRule]) -> OutboundRule {
    let mut merged = first.clone();
    for r in rest {
        for f in &r.flows {
            if !merged.flows.iter().any(|m| m.target == f.target) {
                merged.flows.push(f.clone());
            }
        }
    }
    merged
}

fn render_dn(rule: &OutboundRule, mvrec: &MvRecord, now_secs: i64) -> Result<Dn, String> {
    rule.dn_template
        .render(&mvrec.attrs, now_secs)
        .map_err(|e| format!("outbound rule {:?}: {e}", rule.name))
}

fn requeue_referrers(tx: &WriteTx, mv: MvId) -> Result<(), StoreError> {
    for r in tx.mv_referrers(mv)? {
        tx.mark_outbound(r)?;
    }
    Ok(())
}

/// The values the rule's flows want in the target; Err quarantines (an expression Error).
fn desired_values(
    tx: &WriteTx,
    ctx: &SyncContext<'_>,
    mvrec: &MvRecord,
    rule: &OutboundRule,
    creating: bool,
) -> Result<Result<Vec<(AttrName, ValueSet)>, String>, StoreError> {
    let mut cache = HashMap::new();
    // Apply-once flows are written by the add only; later the target owns the value (a
    // password the user changed, say), and it is never read back to compare.
    let later: Vec<crate::rules::Flow>;
    let rule_flows = if creating || !rule.flows.iter().any(|f| f.apply_once) {
        &rule.flows
    } else {
        later = rule
            .flows
            .iter()
            .filter(|f| !f.apply_once)
            .cloned()
            .collect();
        &later
    };
    let result = flows::outbound(
        tx,
        &mvrec.attrs,
        rule_flows,
        &rule.connector,
        ctx.now_ms / 1000,
        &mut cache,
    )?;
    if let Some(message) = result.error {
        return Ok(Err(format!("outbound rule {:?}: {message}", rule.name)));
    }
    Ok(Ok(result
        .values
        .into_iter()
        .filter_map(|(attr, v)| match v {
            FlowValue::Values(vs) => Some((attr, vs)),
            FlowValue::AuthoritativeNull => Some((attr, ValueSet::new())),
            FlowValue::Ignore => None,
        })
        .collect()))
}

/// The (attribute, normalised value) pairs of `desired` that must be unique in `conn`.
fn unique_claims(
    ctx: &SyncContext<'_>,
    conn: &ConnectorName,
    desired: &[(AttrName, ValueSet)],
) -> Vec<(String, String)> {
    let Some(unique) = ctx.unique.get(conn).filter(|u| !u.is_empty()) else {
        return Vec::new();
    };
    let mut out: Vec<(String, String)> = desired
        .iter()
        .filter(|(attr, _)| unique.contains(attr))
        .flat_map(|(attr, vs)| {
            vs.iter()
                .map(|v| (attr.key().to_string(), v.to_text().trim().to_lowercase()))
        })
        .filter(|(_, v)| !v.is_empty())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// A unique value that another object already holds: the message naming both objects.
/// The MV object is recorded as waiting, so it is synced again when the value frees up.
fn conflict(
    tx: &WriteTx,
    conn: &ConnectorName,
    claims: &[(String, String)],
    me: Option<CsId>,
    mv: MvId,
) -> Result<Option<String>, StoreError> {
    for (attr, value) in claims {
        let Some(holder) = tx.unique_holder(conn.as_str(), attr, value)? else {
            continue;
        };
        if Some(holder) == me {
            continue;
        }
        tx.wait_for_unique(conn.as_str(), attr, value, mv)?;
        let holder_dn = tx.cs(holder)?.map(|r| r.dn.to_string()).unwrap_or_default();
        let owner = tx
            .link_of(holder)?
            .map(|(m, _)| m.to_string())
            .unwrap_or_else(|| "no metaverse object".into());
        return Ok(Some(format!(
            "conflict in {conn}: {attr} value {value:?} is already held by {holder_dn} ({owner}); \
             {mv} is quarantined until one of them changes"
        )));
    }
    Ok(None)
}

fn provision(
    tx: &WriteTx,
    ctx: &SyncContext<'_>,
    mv: MvId,
    mvrec: &MvRecord,
    rule: &OutboundRule,
    stats: &mut SyncStats,
) -> Result<Result<(), String>, StoreError> {
    let dn = match render_dn(rule, mvrec, ctx.now_ms / 1000) {
        Ok(dn) => dn,
        Err(e) => return Ok(Err(e)),
    };
    // A value another object holds stops provisioning before anything is created.
    let desired = match desired_values(tx, ctx, mvrec, rule, true)? {
        Ok(d) => d,
        Err(e) => return Ok(Err(e)),
    };
    let claims = unique_claims(ctx, &rule.connector, &desired);
    // An unlinked object already at the DN would be adopted: its own values are no conflict.
    let adoptable = tx.cs_by_dn(&rule.connector, &dn)?;
    if let Some(message) = conflict(tx, &rule.connector, &claims, adoptable, mv)? {
        return Ok(Err(message));
    }
    let (cs, rec) = match tx.cs_by_dn(&rule.connector, &dn)? {
        Some(cs) => {
            if let Some((owner, _)) = tx.link_of(cs)? {
                return Ok(Err(format!(
                    "target {} already has {dn} for {owner}; not provisioning a duplicate",
                    rule.connector
                )));
            }
            // An unlinked object already at that DN is adopted (soft match by DN) rather
            // than duplicated.
            match tx.cs(cs)? {
                Some(rec) if !rec.deleted => (cs, rec),
                _ => {
                    return Ok(Err(format!(
                        "target {} DN {dn} is being deleted",
                        rule.connector
                    )));
                }
            }
        }
        None => {
            let cs = tx.new_cs_id()?;
            let rec = CsRecord {
                connector: rule.connector.as_str().to_string(),
                anchor: None,
                dn: dn.clone(),
                object_class: rule.object_class.clone(),
                attrs: Attributes::new(),
                deleted: false,
                object_type: Some(mvrec.object_type),
                export: None,
                error: None,
                unresolved: Vec::new(),
                unconfirmed: false,
                claims: Vec::new(),
            };
            (cs, rec)
        }
    };
    let _ = ctx;
    tx.link(cs, rule.connector.as_str(), mv, LinkKind::Provisioned)?;
    stats.provisioned += 1;
    let desired = Desired {
        rule,
        values: desired,
    };
    let r = apply_desired(tx, ctx, mv, mvrec, cs, rec, desired)?;
    requeue_referrers(tx, mv)?;
    Ok(r)
}

/// What one outbound rule wants a target object to hold.
struct Desired<'r> {
    rule: &'r OutboundRule,
    values: Vec<(AttrName, ValueSet)>,
}

/// Computes the pending export of a linked target object.
fn update(
    tx: &WriteTx,
    ctx: &SyncContext<'_>,
    mv: MvId,
    mvrec: &MvRecord,
    cs: CsId,
    rec: CsRecord,
    rule: &OutboundRule,
) -> Result<Result<(), String>, StoreError> {
    // Not yet in the directory: the pending add is recomputed whole, apply-once included.
    let creating = rec.anchor.is_none();
    let values = match desired_values(tx, ctx, mvrec, rule, creating)? {
        Ok(d) => d,
        // Quarantined: the pending export stays as it was until the expression passes.
        Err(e) => return Ok(Err(e)),
    };
    apply_desired(tx, ctx, mv, mvrec, cs, rec, Desired { rule, values })
}

/// Turns the desired values into the pending export (a diff against the hologram), after
/// the unique-value check; keeps the object's unique-value claims in step.
fn apply_desired(
    tx: &WriteTx,
    ctx: &SyncContext<'_>,
    mv: MvId,
    mvrec: &MvRecord,
    cs: CsId,
    mut rec: CsRecord,
    desired: Desired<'_>,
) -> Result<Result<(), String>, StoreError> {
    let Desired {
        rule,
        values: desired,
    } = desired;
    let claims = unique_claims(ctx, &rule.connector, &desired);
    if let Some(message) = conflict(tx, &rule.connector, &claims, Some(cs), mv)? {
        return Ok(Err(message));
    }
    for (attr, value) in &rec.claims {
        if !claims.contains(&(attr.clone(), value.clone())) {
            tx.release_unique(rule.connector.as_str(), attr, value, cs)?;
        }
    }
    for (attr, value) in &claims {
        tx.claim_unique(rule.connector.as_str(), attr, value, cs)?;
    }
    let claims_changed = claims != rec.claims;
    rec.claims = claims;
    let mut problem = None;
    let desired_dn = match render_dn(rule, mvrec, ctx.now_ms / 1000) {
        Ok(dn) => Some(dn),
        Err(e) => {
            problem = Some(e);
            None
        }
    };
    let old_target_dn = rec
        .export
        .as_ref()
        .and_then(|e| e.new_dn.clone())
        .unwrap_or_else(|| rec.dn.clone());
    let export = if rec.anchor.is_none() {
        // Never exported yet: the add carries everything, at the current desired DN.
        if let Some(dn) = &desired_dn {
            rec.dn = dn.clone();
        }
        let changes = desired
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(a, v)| AttrChange {
                attr: a.clone(),
                op: ChangeOp::Replace(v.clone()),
            })
            .collect();
        Some(PendingExportRecord {
            kind: ExportKind::Add,
            new_dn: None,
            changes,
            rule: rule.name.clone(),
        })
    } else {
        let changes = diff(&rec.attrs, &desired);
        let new_dn = desired_dn.filter(|d| d != &rec.dn);
        if changes.is_empty() && new_dn.is_none() {
            None
        } else {
            Some(PendingExportRecord {
                kind: ExportKind::Update,
                new_dn,
                changes,
                rule: rule.name.clone(),
            })
        }
    };
    let new_target_dn = export
        .as_ref()
        .and_then(|e| e.new_dn.clone())
        .unwrap_or_else(|| rec.dn.clone());
    let moved = old_target_dn != new_target_dn;
    if export != rec.export || moved || rec.object_type.is_none() || claims_changed {
        rec.export = export;
        rec.object_type = Some(mvrec.object_type);
        tx.put_cs(cs, &rec)?;
    }
    if moved {
        // Objects that reference this one must now name its new DN.
        requeue_referrers(tx, mv)?;
    }
    Ok(match problem {
        Some(p) => Err(p),
        None => Ok(()),
    })
}

fn deprovision(
    tx: &WriteTx,
    mv: MvId,
    cs: CsId,
    mut rec: CsRecord,
    action: Option<(&Deprovision, &str)>,
) -> Result<(), StoreError> {
    tx.unlink(cs)?;
    requeue_referrers(tx, mv)?;
    let (action, rule) = match action {
        Some((a, r)) => (a.clone(), r.to_string()),
        None => (Deprovision::Delete, String::new()),
    };
    match action {
        Deprovision::Delete if rec.anchor.is_none() => {
            // The add never reached the directory: nothing to delete there.
            tx.delete_cs(cs)?;
        }
        Deprovision::Delete => {
            rec.export = Some(PendingExportRecord {
                kind: ExportKind::Delete,
                new_dn: None,
                changes: Vec::new(),
                rule,
            });
            tx.put_cs(cs, &rec)?;
        }
        Deprovision::Disable { attr, value } => {
            let want = ValueSet::one(value);
            rec.export = if rec.attrs.get(attr.key()) == Some(&want) {
                None
            } else {
                Some(PendingExportRecord {
                    kind: ExportKind::Update,
                    new_dn: None,
                    changes: vec![AttrChange {
                        attr,
                        op: ChangeOp::Replace(want),
                    }],
                    rule,
                })
            };
            tx.put_cs(cs, &rec)?;
        }
        Deprovision::Keep => {
            if rec.export.is_some() {
                rec.export = None;
                tx.put_cs(cs, &rec)?;
            }
        }
    }
    Ok(())
}

/// The changes that turn `holo` into `desired` for the flowed attributes: single values as
/// Replace, multi-valued sets as value-level Add/Remove (a large group never rewritten whole).
fn diff(holo: &Attributes, desired: &[(AttrName, ValueSet)]) -> Vec<AttrChange> {
    let empty = ValueSet::new();
    let mut out = Vec::new();
    let mut seen: Vec<&AttrName> = Vec::new();
    for (attr, want) in desired {
        if seen.contains(&attr) {
            continue;
        }
        seen.push(attr);
        let have = holo.get(attr.key()).unwrap_or(&empty);
        // A directory that holds links by anchor (AD read with extended DNs) is written by
        // DN: its links compare as the DNs they name.
        let as_dns;
        let have = match have.links_as_dns() {
            Some(d) => {
                as_dns = d;
                &as_dns
            }
            None => have,
        };
        let reconciled;
        let want = if want.iter().all(|w| have.contains(w)) {
            want
        } else {
            // A directory hands back text: 512 flowed as a number is the "512" it returns.
            reconciled = want
                .iter()
                .map(
                    |w| match have.iter().find(|h| *h != w && h.to_text() == w.to_text()) {
                        Some(h) => h.clone(),
                        None => w.clone(),
                    },
                )
                .collect::<ValueSet>();
            &reconciled
        };
        if have == want {
            continue;
        }
        if have.len() <= 1 && want.len() <= 1 {
            out.push(AttrChange {
                attr: attr.clone(),
                op: ChangeOp::Replace(want.clone()),
            });
            continue;
        }
        let adds: ValueSet = want.minus(have).cloned().collect();
        let removes: ValueSet = have.minus(want).cloned().collect();
        if !removes.is_empty() {
            out.push(AttrChange {
                attr: attr.clone(),
                op: ChangeOp::Remove(removes),
            });
        }
        if !adds.is_empty() {
            out.push(AttrChange {
                attr: attr.clone(),
                op: ChangeOp::Add(adds),
            });
        }
    }
    out
}

/// Applies attribute changes to a hologram (after the directory took an export).
pub fn apply_changes(attrs: &mut Attributes, changes: &[AttrChange]) {
    for c in changes {
        match &c.op {
            ChangeOp::Replace(v) => attrs.set(c.attr.clone(), v.clone()),
            ChangeOp::Add(v) => {
                for x in v {
                    attrs.add(&c.attr, x.clone());
                }
            }
            ChangeOp::Remove(v) => {
                let mut cur = attrs.get(c.attr.key()).cloned().unwrap_or_default();
                for x in v {
                    cur.remove(x);
                }
                attrs.set(c.attr.clone(), cur);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Value;

    fn set(vals: &[&str]) -> ValueSet {
        vals.iter().map(|v| Value::str(*v)).collect()
    }

    #[test]
    fn diff_uses_value_deltas_for_multi_valued_attributes() {
        let mut holo = Attributes::new();
        holo.set(AttrName::new("member"), set(&["a", "b", "c"]));
        holo.set(AttrName::new("title"), set(&["x"]));
        let desired = vec![
            (AttrName::new("member"), set(&["a", "c", "d"])),
            (AttrName::new("title"), set(&["y"])),
        ];
        let changes = diff(&holo, &desired);
        assert_eq!(
            changes,
            vec![
                AttrChange {
                    attr: AttrName::new("member"),
                    op: ChangeOp::Remove(set(&["b"]))
                },
                AttrChange {
                    attr: AttrName::new("member"),
                    op: ChangeOp::Add(set(&["d"]))
                },
                AttrChange {
                    attr: AttrName::new("title"),
                    op: ChangeOp::Replace(set(&["y"]))
                },
            ]
        );
        apply_changes(&mut holo, &changes);
        assert_eq!(holo.get("member"), Some(&set(&["a", "c", "d"])));
        assert_eq!(holo.get("title"), Some(&set(&["y"])));
        assert!(diff(&holo, &desired).is_empty());
    }
}
