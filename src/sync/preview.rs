//! Preview: what sync would do to one connector-space object, computed by the real sync
//! code inside a write transaction that is then rolled back, so the preview and a real sync
//! cannot disagree.

use super::{SyncContext, SyncStats, inbound, outbound};
use crate::model::{AttrChange, ConnectorName, Contribution, CsId, Dn, ExportKind, MvId, ValueSet};
use crate::rules::rule_in_scope;
use crate::store::{StoreError, WriteTx};

/// One inbound rule's verdict on the object.
#[derive(Debug, Clone)]
pub struct RuleVerdict {
    /// The rule.
    pub rule: String,
    /// Whether its scope holds.
    pub in_scope: bool,
}

/// What happens to the object's link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Already joined; attributes flow.
    StaysJoined(MvId),
    /// Joins an existing MV object.
    Joins(MvId),
    /// Projects a new MV object.
    Projects,
    /// Leaves the metaverse (deleted or out of scope).
    Disconnects(MvId),
    /// Stays a disconnector: no rule in scope, or no join and no projection.
    StaysDisconnector,
}

/// One export the sync would leave pending.
#[derive(Debug, Clone)]
pub struct PreviewExport {
    /// Target connector.
    pub connector: String,
    /// Add, update or delete.
    pub kind: ExportKind,
    /// The DN now (or to be created).
    pub dn: Dn,
    /// A rename, if any.
    pub new_dn: Option<Dn>,
    /// Attribute changes.
    pub changes: Vec<AttrChange>,
}

/// The whole preview.
#[derive(Debug, Clone)]
pub struct Preview {
    /// The CS object.
    pub cs: CsId,
    /// Inbound rules for its object class and whether each is in scope.
    pub rules: Vec<RuleVerdict>,
    /// The link decision.
    pub decision: Decision,
    /// The MV object's attributes afterwards, each with its contributor.
    pub attributes: Vec<(String, ValueSet, Option<Contribution>)>,
    /// Exports pending afterwards in each target.
    pub exports: Vec<PreviewExport>,
    /// Errors the sync would record (object or MV).
    pub errors: Vec<String>,
    /// References still waiting for their object.
    pub unresolved: Vec<(String, String)>,
}

/// Runs inbound and outbound sync for one object in `tx`; the caller must drop `tx`
/// without committing. None when no object has that DN.
pub fn preview(
    tx: &WriteTx,
    ctx: &SyncContext<'_>,
    conn: &ConnectorName,
    dn: &Dn,
) -> Result<Option<Preview>, StoreError> {
    let Some(cs) = tx.cs_by_dn(conn, dn)? else {
        return Ok(None);
    };
    let Some(rec) = tx.cs(cs)? else {
        return Ok(None);
    };
    let rules = ctx
        .rules
        .inbound_for(conn, &rec.object_class)
        .map(|r| RuleVerdict {
            rule: r.name.clone(),
            in_scope: rule_in_scope(
                &r.scope,
                r.scope_expression.as_ref(),
                &rec.attrs,
                Some(&rec.dn),
                ctx.now_ms / 1000,
            ),
        })
        .collect();
    let before = tx.link_of(cs)?.map(|(mv, _)| mv);
    let mut stats = SyncStats::default();
    inbound::sync_cs(tx, ctx, cs, &mut stats)?;
    let after = tx.link_of(cs)?.map(|(mv, _)| mv);
    let decision = match (before, after) {
        (Some(b), Some(a)) if a == b => Decision::StaysJoined(a),
        (_, Some(a)) if stats.projected > 0 => {
            let _ = a;
            Decision::Projects
        }
        (_, Some(a)) => Decision::Joins(a),
        (Some(b), None) => Decision::Disconnects(b),
        (None, None) => Decision::StaysDisconnector,
    };
    let mut preview = Preview {
        cs,
        rules,
        decision,
        attributes: Vec::new(),
        exports: Vec::new(),
        errors: Vec::new(),
        unresolved: Vec::new(),
    };
    if let Some(rec) = tx.cs(cs)? {
        preview.unresolved = rec.unresolved.clone();
        if let Some(e) = rec.error {
            preview.errors.push(e.message);
        }
    }
    let Some(mv) = after.or(before) else {
        return Ok(Some(preview));
    };
    outbound::sync_mv(tx, ctx, mv, &mut stats)?;
    if let Some(m) = tx.mv(mv)? {
        for (name, values) in m.attrs.iter() {
            preview.attributes.push((
                name.as_str().to_string(),
                values.clone(),
                m.contributor(name.key()).cloned(),
            ));
        }
        if let Some(e) = &m.error {
            preview.errors.push(e.message.clone());
        }
    }
    let mut targets = tx.links_of(mv)?;
    // A deprovisioned object is unlinked but keeps its pending delete or disable.
    if let Some(prev) = before {
        targets.extend(tx.links_of(prev)?);
    }
    for (connector, id) in targets {
        if id == cs {
            continue;
        }
        let Some(t) = tx.cs(id)? else { continue };
        if let Some(e) = t.export {
            preview.exports.push(PreviewExport {
                connector,
                kind: e.kind,
                dn: t.dn,
                new_dn: e.new_dn,
                changes: e.changes,
            });
        }
    }
    Ok(Some(preview))
}
