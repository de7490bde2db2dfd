//! Evaluating attribute flows: inbound with reference resolution through the metaverse,
//! outbound with references rendered as the target's own DNs.

use std::collections::HashMap;

use crate::model::{AttrName, Attributes, ConnectorName, Dn, MvId, RefTarget, Value, ValueSet};
use crate::rules::{Flow, FlowSource, dn_part};
use crate::store::{CsRecord, StoreError, WriteTx};

/// Result of evaluating inbound flows on one CS object.
pub struct InboundValues {
    /// Attribute → values, in flow order.
    pub values: Vec<(AttrName, ValueSet)>,
    /// References that could not be resolved yet: (attribute, DN).
    pub unresolved: Vec<(String, String)>,
}

/// Evaluates inbound flows; DN references resolve to MV references through the store.
pub fn inbound(
    tx: &WriteTx,
    rec: &CsRecord,
    dn: &Dn,
    flows: &[Flow],
    partitions: &[Dn],
) -> Result<InboundValues, StoreError> {
    let conn = ConnectorName::new(&rec.connector).ok();
    let mut out = InboundValues {
        values: Vec::with_capacity(flows.len()),
        unresolved: Vec::new(),
    };
    for flow in flows {
        let vs: ValueSet = match &flow.source {
            FlowSource::Constant(v) => ValueSet::one(v.clone()),
            FlowSource::Dn(part) => dn_part(dn, *part, partitions).into_iter().collect(),
            FlowSource::Attribute(a) => {
                let Some(src) = rec.attrs.get(a.key()) else {
                    out.values.push((flow.target.clone(), ValueSet::new()));
                    continue;
                };
                let mut set = ValueSet::new();
                for v in src {
                    match v {
                        Value::Reference(RefTarget::Dn(target)) => {
                            let resolved = match &conn {
                                Some(c) => resolve(tx, c, target)?,
                                None => None,
                            };
                            match resolved {
                                Some(mv) => {
                                    set.insert(Value::Reference(RefTarget::Mv(mv)));
                                }
                                None => out
                                    .unresolved
                                    .push((a.as_str().to_string(), target.to_string())),
                            }
                        }
                        other => {
                            set.insert(other.clone());
                        }
                    }
                }
                set
            }
        };
        out.values.push((flow.target.clone(), vs));
    }
    Ok(out)
}

fn resolve(tx: &WriteTx, conn: &ConnectorName, dn: &Dn) -> Result<Option<MvId>, StoreError> {
    // A deleted object still linked here resolves for now; its inbound sync unlinks it and
    // queues this referrer again, so the reference drops then.
    let Some(cs) = tx.cs_by_dn(conn, dn)? else {
        return Ok(None);
    };
    Ok(tx.link_of(cs)?.map(|(mv, _)| mv))
}

/// The DN an MV object has (or will have) in a target connector space, if it has an object
/// there; a pending rename counts, so references follow moves.
pub fn target_dn_of(
    tx: &WriteTx,
    mv: MvId,
    conn: &ConnectorName,
) -> Result<Option<Dn>, StoreError> {
    if let Some(cs) = tx.link_in(mv, conn.as_str())? {
        let Some(rec) = tx.cs(cs)? else {
            return Ok(None);
        };
        return Ok(Some(rec.export.and_then(|e| e.new_dn).unwrap_or(rec.dn)));
    }
    Ok(None)
}

/// Evaluates outbound flows on an MV object for target connector `conn`.
pub fn outbound(
    tx: &WriteTx,
    mv_attrs: &Attributes,
    flows: &[Flow],
    conn: &ConnectorName,
    cache: &mut HashMap<MvId, Option<Dn>>,
) -> Result<Vec<(AttrName, ValueSet)>, StoreError> {
    let mut out = Vec::with_capacity(flows.len());
    for flow in flows {
        let vs: ValueSet = match &flow.source {
            FlowSource::Constant(v) => ValueSet::one(v.clone()),
            // Config refuses DN parts on outbound rules.
            FlowSource::Dn(_) => ValueSet::new(),
            FlowSource::Attribute(a) => {
                let mut set = ValueSet::new();
                for v in mv_attrs.get(a.key()).into_iter().flatten() {
                    match v {
                        Value::Reference(RefTarget::Mv(id)) => {
                            let dn = match cache.get(id) {
                                Some(d) => d.clone(),
                                None => {
                                    let d = target_dn_of(tx, *id, conn)?;
                                    cache.insert(*id, d.clone());
                                    d
                                }
                            };
                            // A referenced object without a target object yet waits: the
                            // referrer is queued again when it is provisioned.
                            if let Some(dn) = dn {
                                set.insert(Value::Reference(RefTarget::Dn(dn)));
                            }
                        }
                        other => {
                            set.insert(other.clone());
                        }
                    }
                }
                set
            }
        };
        out.push((flow.target.clone(), vs));
    }
    Ok(out)
}
