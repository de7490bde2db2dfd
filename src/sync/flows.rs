//! Evaluating attribute flows: inbound with reference resolution through the metaverse,
//! outbound with references rendered as the target's own DNs. Expressions add three
//! outcomes beyond values: AuthoritativeNull (win with no value), IgnoreThisFlow (supply
//! nothing), and Error (quarantine the object with a message).

use std::collections::HashMap;

use crate::model::{AttrName, Attributes, ConnectorName, Dn, MvId, RefTarget, Value, ValueSet};
use crate::rules::expr::Outcome;
use crate::rules::{Flow, FlowSource, ObjectView, dn_part};
use crate::store::{CsRecord, StoreError, WriteTx};

/// What one flow produced.
#[derive(Debug, Clone, PartialEq)]
pub enum FlowValue {
    /// These values (empty = no value, which loses to any rule that has one).
    Values(ValueSet),
    /// No value, and it wins by precedence like a value would.
    AuthoritativeNull,
    /// This flow supplies nothing at all.
    Ignore,
}

/// Result of evaluating one rule's flows on one object.
pub struct FlowResult {
    /// Attribute → outcome, in flow order.
    pub values: Vec<(AttrName, FlowValue)>,
    /// References that could not be resolved yet: (attribute, DN).
    pub unresolved: Vec<(String, String)>,
    /// An `Error("...")` raised by an expression: the object is quarantined.
    pub error: Option<String>,
}

fn outcome(flow: &Flow, o: Outcome, error: &mut Option<String>) -> FlowValue {
    match o {
        Outcome::Values(vs) => FlowValue::Values(vs),
        Outcome::AuthoritativeNull => FlowValue::AuthoritativeNull,
        Outcome::IgnoreThisFlow => FlowValue::Ignore,
        Outcome::Error(message) => {
            if error.is_none() {
                *error = Some(format!("flow to {}: {message}", flow.target));
            }
            FlowValue::Ignore
        }
    }
}

/// Evaluates inbound flows; DN references resolve to MV references through the store.
pub fn inbound(
    tx: &WriteTx,
    rec: &CsRecord,
    flows: &[Flow],
    partitions: &[Dn],
    now_secs: i64,
) -> Result<FlowResult, StoreError> {
    let conn = ConnectorName::new(&rec.connector).ok();
    let mut out = FlowResult {
        values: Vec::with_capacity(flows.len()),
        unresolved: Vec::new(),
        error: None,
    };
    let view = ObjectView {
        attrs: &rec.attrs,
        dn: Some(&rec.dn),
    };
    for flow in flows {
        let raw = match &flow.source {
            FlowSource::Constant(v) => FlowValue::Values(ValueSet::one(v.clone())),
            FlowSource::Dn(part) => {
                FlowValue::Values(dn_part(&rec.dn, *part, partitions).into_iter().collect())
            }
            FlowSource::Attribute(a) => {
                FlowValue::Values(rec.attrs.get(a.key()).cloned().unwrap_or_default())
            }
            FlowSource::Expression(e) => outcome(flow, e.eval(&view, now_secs), &mut out.error),
        };
        let value = match raw {
            FlowValue::Values(vs) => {
                let attr = match &flow.source {
                    FlowSource::Attribute(a) => a.as_str(),
                    _ => flow.target.as_str(),
                };
                let mut set = ValueSet::new();
                for v in vs.iter() {
                    match v {
                        Value::Reference(
                            r @ (RefTarget::Dn(target) | RefTarget::Anchored { dn: target, .. }),
                        ) => {
                            let resolved = match &conn {
                                Some(c) => resolve(tx, c, r)?,
                                None => None,
                            };
                            match resolved {
                                Some(mv) => {
                                    set.insert(Value::Reference(RefTarget::Mv(mv)));
                                }
                                None => out.unresolved.push((attr.to_string(), target.to_string())),
                            }
                        }
                        other => {
                            set.insert(other.clone());
                        }
                    }
                }
                FlowValue::Values(set)
            }
            other => other,
        };
        out.values.push((flow.target.clone(), value));
    }
    Ok(out)
}

fn resolve(
    tx: &WriteTx,
    conn: &ConnectorName,
    target: &RefTarget,
) -> Result<Option<MvId>, StoreError> {
    // A deleted object still linked here resolves for now; its inbound sync unlinks it and
    // queues this referrer again, so the reference drops then. A link resolves by anchor
    // only: another object that now holds the DN is not the one linked to.
    let found = match target {
        RefTarget::Anchored { anchor, .. } => tx.cs_by_anchor(conn, anchor)?,
        RefTarget::Dn(dn) => tx.cs_by_dn(conn, dn)?,
        RefTarget::Mv(mv) => return Ok(Some(*mv)),
    };
    let Some(cs) = found else {
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

/// Evaluates outbound flows on an MV object for target connector `conn`. Attributes whose
/// flow said IgnoreThisFlow are left out (the target keeps what it has); AuthoritativeNull
/// becomes an empty set (the target value is cleared).
pub fn outbound(
    tx: &WriteTx,
    mv_attrs: &Attributes,
    flows: &[Flow],
    conn: &ConnectorName,
    now_secs: i64,
    cache: &mut HashMap<MvId, Option<Dn>>,
) -> Result<FlowResult, StoreError> {
    let mut out = FlowResult {
        values: Vec::with_capacity(flows.len()),
        unresolved: Vec::new(),
        error: None,
    };
    let view = ObjectView {
        attrs: mv_attrs,
        dn: None,
    };
    for flow in flows {
        let raw = match &flow.source {
            FlowSource::Constant(v) => FlowValue::Values(ValueSet::one(v.clone())),
            // Config refuses DN parts on outbound rules.
            FlowSource::Dn(_) => FlowValue::Ignore,
            FlowSource::Attribute(a) => {
                FlowValue::Values(mv_attrs.get(a.key()).cloned().unwrap_or_default())
            }
            FlowSource::Expression(e) => outcome(flow, e.eval(&view, now_secs), &mut out.error),
        };
        let value = match raw {
            FlowValue::Values(vs) => {
                let mut set = ValueSet::new();
                for v in vs.iter() {
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
                            match dn {
                                Some(dn) => {
                                    set.insert(Value::Reference(RefTarget::Dn(dn)));
                                }
                                None => out
                                    .unresolved
                                    .push((flow.target.to_string(), id.to_string())),
                            }
                        }
                        other => {
                            set.insert(other.clone());
                        }
                    }
                }
                FlowValue::Values(set)
            }
            other => other,
        };
        out.values.push((flow.target.clone(), value));
    }
    Ok(out)
}
