//! Inbound sync: scope, join, projection, disconnection and precedence-aware attribute
//! flow from connector spaces into the metaverse.

use std::collections::{BTreeMap, BTreeSet};

use super::flows;
use super::{SyncContext, SyncStats, record_error};
use crate::model::{
    Anchor, AttrName, Attributes, ConnectorName, Contribution, CsId, MvId, ValueSet,
};
use crate::rules::{InboundRule, rule_in_scope};
use crate::store::write::LinkKind;
use crate::store::{CsRecord, MvRecord, StoreError, WriteTx};
use flows::FlowValue;

/// Every inbound rule whose scope holds for this CS object, lowest precedence number
/// first. As in Azure AD Connect, all of them apply: their flows meet by precedence, and
/// the first one whose join finds a match joins.
fn rules_for<'a>(
    ctx: &SyncContext<'a>,
    rec: &CsRecord,
    conn: &ConnectorName,
) -> Vec<&'a InboundRule> {
    let mut rules: Vec<&InboundRule> = ctx
        .rules
        .inbound_for(conn, &rec.object_class)
        .filter(|r| {
            rule_in_scope(
                &r.scope,
                r.scope_expression.as_ref(),
                &rec.attrs,
                Some(&rec.dn),
                ctx.now_ms / 1000,
            )
        })
        .collect();
    // Stable: rules of equal precedence keep their config order.
    rules.sort_by_key(|r| r.precedence);
    rules
}

/// Queues every CS object that references `rec` (by its DN, or by its anchor for links): it
/// came into or went out of the metaverse, so their references resolve differently now.
/// This is what carries a scope change to the groups and managers that name the object,
/// whether or not the delta reported them.
fn requeue_referrers(tx: &WriteTx, rec: &CsRecord) -> Result<(), StoreError> {
    let conn = rec.connector.as_str();
    for r in tx.dn_referrers(conn, rec.dn.norm())? {
        tx.mark_inbound(conn, r)?;
    }
    if let Some(a) = &rec.anchor {
        for r in tx.anchor_referrers(conn, &Anchor::new(a.clone()))? {
            tx.mark_inbound(conn, r)?;
        }
    }
    Ok(())
}

/// Syncs one CS object into the metaverse. An object whose join-only rule finds nothing
/// to join is recorded as waiting (the store's join-waiting set), for a later projection.
pub fn sync_cs(
    tx: &WriteTx,
    ctx: &SyncContext<'_>,
    id: CsId,
    stats: &mut SyncStats,
) -> Result<(), StoreError> {
    let Some(mut rec) = tx.cs(id)? else {
        return Ok(());
    };
    stats.inbound += 1;
    let Ok(conn) = ConnectorName::new(&rec.connector) else {
        return Ok(());
    };
    let link = tx.link_of(id)?;
    if rec.deleted {
        tx.set_join_waiting(conn.as_str(), id, false)?;
        if let Some((mv, _)) = link {
            tx.unlink(id)?;
            stats.disconnected += 1;
            recompute(tx, ctx, mv, None, stats)?;
            // Even if no MV attribute changed, outbound must see the object gone: a target
            // object deleted in its directory is provisioned again.
            tx.mark_outbound(mv)?;
        }
        requeue_referrers(tx, &rec)?;
        tx.delete_cs(id)?;
        return Ok(());
    }
    let rules = rules_for(ctx, &rec, &conn);
    // Only a rule that joins or projects links an object; a rule with neither (project =
    // false, no join) adds flows to objects other rules linked, as an override.
    let linking = rules
        .iter()
        .copied()
        .find(|r| r.project || !r.join.is_empty());
    match (link, linking) {
        (Some((mv, LinkKind::Provisioned)), _) => {
            // A target object changed in its directory: outbound recomputes its export
            // against the new hologram; a rule reading it back may contribute too.
            tx.mark_outbound(mv)?;
            if !rules.is_empty() {
                recompute(tx, ctx, mv, Some((id, &rec)), stats)?;
            }
        }
        (Some((mv, LinkKind::Inbound)), Some(_)) => {
            recompute(tx, ctx, mv, Some((id, &rec)), stats)?
        }
        (Some((mv, LinkKind::Inbound)), None) => {
            tx.unlink(id)?;
            stats.disconnected += 1;
            recompute(tx, ctx, mv, None, stats)?;
            tx.mark_outbound(mv)?;
            requeue_referrers(tx, &rec)?;
        }
        (None, Some(_)) => {
            let mut joined = Ok(None);
            for rule in &rules {
                joined = join(tx, rule, &rec, &conn)?;
                if !matches!(joined, Ok(None)) {
                    break;
                }
            }
            let mv = match joined {
                Ok(Some(mv)) => {
                    stats.joined += 1;
                    mv
                }
                Ok(None) => match rules.iter().find(|r| r.project) {
                    Some(rule) => {
                        let mv = tx.new_mv_id()?;
                        tx.put_mv(mv, &MvRecord::new(rule.object_type))?;
                        stats.projected += 1;
                        mv
                    }
                    None => {
                        // Kept across syncs: a later projection from any connector may be
                        // what it joins, as a full sync would find.
                        tx.set_join_waiting(conn.as_str(), id, true)?;
                        return Ok(());
                    }
                },
                Err(message) => {
                    rec.error = Some(record_error(rec.error.take(), message, ctx.now_ms));
                    tx.put_cs(id, &rec)?;
                    stats.errors += 1;
                    return Ok(());
                }
            };
            tx.link(id, conn.as_str(), mv, LinkKind::Inbound)?;
            tx.set_join_waiting(conn.as_str(), id, false)?;
            recompute(tx, ctx, mv, Some((id, &rec)), stats)?;
            requeue_referrers(tx, &rec)?;
        }
        (None, None) => tx.set_join_waiting(conn.as_str(), id, false)?,
    }
    Ok(())
}

/// Tries the rule's join rules in order. Ok(None) = no match; Err = ambiguous.
fn join(
    tx: &WriteTx,
    rule: &InboundRule,
    rec: &CsRecord,
    conn: &ConnectorName,
) -> Result<Result<Option<MvId>, String>, StoreError> {
    for (i, jr) in rule.join.iter().enumerate() {
        let mut candidates: Option<BTreeSet<MvId>> = None;
        for cond in &jr.conditions {
            let mut found = BTreeSet::new();
            for v in rec.attrs.get(cond.cs.key()).into_iter().flatten() {
                found.extend(tx.join_candidates(rule.object_type, &cond.mv, v)?);
            }
            candidates = Some(match candidates {
                None => found,
                Some(prev) => prev.intersection(&found).copied().collect(),
            });
        }
        let mut matches = Vec::new();
        for mv in candidates.unwrap_or_default() {
            // One MV object holds at most one object of each connector space.
            let taken = tx.link_in(mv, conn.as_str())?.is_some();
            if !taken && tx.mv(mv)?.is_some_and(|m| !m.deleted) {
                matches.push(mv);
            }
        }
        match matches.len() {
            0 => continue,
            1 => return Ok(Ok(Some(matches[0]))),
            _ => {
                let list: Vec<String> = matches.iter().map(|m| m.to_string()).collect();
                return Ok(Err(format!(
                    "ambiguous join: rule {:?} join #{} matches {} metaverse objects ({})",
                    rule.name,
                    i + 1,
                    matches.len(),
                    list.join(", ")
                )));
            }
        }
    }
    Ok(Ok(None))
}

/// Recomputes an MV object's attributes from every CS object linked to it, applying
/// precedence; deletes it (via outbound) when no inbound link is left. `known` is a linked
/// object the caller already read, so it is not decoded again.
pub fn recompute(
    tx: &WriteTx,
    ctx: &SyncContext<'_>,
    mv: MvId,
    known: Option<(CsId, &CsRecord)>,
    stats: &mut SyncStats,
) -> Result<(), StoreError> {
    let Some(mut mvrec) = tx.mv(mv)? else {
        return Ok(());
    };
    // Only an object a rule could project keeps the MV object: one that merely joins
    // (a foreign security principal) would not create it in a full sync either.
    let mut alive = false;
    let mut joiners: Vec<(CsId, CsRecord)> = Vec::new();
    // attribute → (precedence, order, values or AuthoritativeNull, contribution)
    let mut winners: BTreeMap<AttrName, (u32, usize, Option<ValueSet>, Contribution)> =
        BTreeMap::new();
    let mut order = 0usize;
    for (_, cs) in tx.links_of(mv)? {
        let read = match known {
            Some((id, rec)) if id == cs => Some(rec.clone()),
            _ => tx.cs(cs)?,
        };
        let Some(mut rec) = read else { continue };
        if rec.deleted {
            continue;
        }
        let kind = tx.link_of(cs)?.map(|(_, k)| k);
        let Ok(conn) = ConnectorName::new(&rec.connector) else {
            continue;
        };
        let rules = rules_for(ctx, &rec, &conn);
        if rules.is_empty() {
            continue;
        }
        if kind == Some(LinkKind::Inbound) {
            if rules.iter().any(|r| r.project) {
                alive = true;
            } else {
                joiners.push((cs, rec.clone()));
            }
        }
        let parts = ctx.partitions.get(&conn).map(Vec::as_slice).unwrap_or(&[]);
        let mut results = Vec::with_capacity(rules.len());
        let mut error = None;
        let mut unresolved = Vec::new();
        for rule in &rules {
            let result = flows::inbound(tx, &rec, &rule.flows, parts, ctx.now_ms / 1000)?;
            unresolved.extend(result.unresolved);
            if let Some(message) = result.error {
                error.get_or_insert(format!("inbound rule {:?}: {message}", rule.name));
            }
            results.push((*rule, result.values));
        }
        if rules.len() > 1 {
            unresolved.sort();
            unresolved.dedup();
        }
        let mut touched = unresolved != rec.unresolved;
        rec.unresolved = unresolved;
        if let Some(message) = error {
            // Error("...") quarantines the object: it supplies nothing until it is fixed.
            rec.error = Some(record_error(rec.error.take(), message, ctx.now_ms));
            tx.put_cs(cs, &rec)?;
            stats.errors += 1;
            continue;
        }
        if rec.error.is_some() {
            rec.error = None;
            touched = true;
        }
        if touched {
            tx.put_cs(cs, &rec)?;
        }
        for (rule, values) in results {
            for (attr, value) in values {
                order += 1;
                let vs = match value {
                    FlowValue::Values(vs) if vs.is_empty() => continue,
                    FlowValue::Values(vs) => Some(vs),
                    FlowValue::AuthoritativeNull => None,
                    FlowValue::Ignore => continue,
                };
                let better = match winners.get(&attr) {
                    None => true,
                    Some((p, o, _, _)) => (rule.precedence, order) < (*p, *o),
                };
                if better {
                    let contribution = Contribution {
                        connector: conn.clone(),
                        rule: rule.name.clone(),
                        precedence: rule.precedence,
                    };
                    winners.insert(attr, (rule.precedence, order, vs, contribution));
                }
            }
        }
    }
    if !alive {
        if !mvrec.deleted {
            mvrec.deleted = true;
            tx.put_mv(mv, &mvrec)?;
            stats.mv_deleted += 1;
        }
        // The objects that only joined it go back to waiting for something to join, and
        // what names them resolves to nothing now.
        for (cs, rec) in &joiners {
            tx.unlink(*cs)?;
            stats.disconnected += 1;
            tx.set_join_waiting(&rec.connector, *cs, true)?;
            requeue_referrers(tx, rec)?;
        }
        tx.mark_outbound(mv)?;
        return Ok(());
    }
    let mut attrs = Attributes::new();
    let mut sources: Vec<Contribution> = Vec::new();
    let mut attr_sources = Vec::with_capacity(winners.len());
    // winners and attrs are both ordered by attribute name, so positions line up.
    for (attr, (_, _, vs, c)) in winners {
        // AuthoritativeNull won: the attribute has no value, whatever lower rules say.
        let Some(vs) = vs else { continue };
        let idx = match sources.iter().position(|s| s == &c) {
            Some(i) => i,
            None => {
                sources.push(c);
                sources.len() - 1
            }
        };
        attr_sources.push(u8::try_from(idx).unwrap_or(u8::MAX));
        attrs.set(attr, vs);
    }
    if attrs != mvrec.attrs
        || sources != mvrec.sources
        || attr_sources != mvrec.attr_sources
        || mvrec.deleted
    {
        mvrec.attrs = attrs;
        mvrec.sources = sources;
        mvrec.attr_sources = attr_sources;
        mvrec.deleted = false;
        tx.put_mv(mv, &mvrec)?;
        tx.mark_outbound(mv)?;
    }
    Ok(())
}
