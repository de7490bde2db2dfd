//! Sync one object now (Entra Connect's `Invoke-ADSyncSingleObjectSync`, Cloud Sync's
//! "provision on demand"): a base-scope import of that one object from its source, the
//! sync it causes, the export of exactly what it causes to every target, and a report of
//! each step. It runs on the runner, so never beside a cycle.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;

use super::pending::{PendingChange, change_views};
use super::{RunError, Runner, export, import, write_only_of};
use crate::config::ThresholdHolds;
use crate::connector::OneObject;
use crate::model::{Anchor, ConnectorName, CsId, Dn, ExportKind};
use crate::store::ChangeCounts;
use crate::sync::{self, Decision};

/// Which object to sync.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Which {
    /// By its DN in the source.
    Dn(Dn),
    /// By its anchor as printed (text, or an objectGUID in its GUID form), looked up in the
    /// connector space.
    Anchor(String),
}

/// An inbound rule's scope verdict.
#[derive(Clone, Debug, Serialize)]
pub struct RuleReport {
    /// The rule.
    pub rule: String,
    /// Whether its scope holds for the object.
    pub in_scope: bool,
}

/// One metaverse attribute after the sync, with where it came from.
#[derive(Clone, Debug, Serialize)]
pub struct AttrReport {
    /// The attribute.
    pub name: String,
    /// Its values.
    pub values: Vec<String>,
    /// The connector that supplied it.
    pub connector: Option<String>,
    /// The rule that supplied it.
    pub rule: Option<String>,
}

/// One export the object caused, with the directory's answer.
#[derive(Clone, Debug, Serialize)]
pub struct ExportReport {
    /// The target connector.
    pub connector: String,
    /// add, update, rename or delete.
    pub op: &'static str,
    /// The object's DN in the target.
    pub dn: String,
    /// Where a rename moves it.
    pub new_dn: Option<String>,
    /// The attribute changes.
    pub changes: Vec<PendingChange>,
    /// Whether the directory took it.
    pub applied: bool,
    /// What became of it: "applied", the directory's refusal, or why it was not sent.
    pub result: String,
}

/// What syncing one object did, step by step.
#[derive(Clone, Debug, Serialize)]
pub struct ObjectReport {
    /// The source connector.
    pub connector: String,
    /// The object's DN there.
    pub dn: String,
    /// Whether the directory had it (in scope); if not, it was recorded deleted.
    pub found: bool,
    /// What the import changed in the connector space.
    pub import: ChangeCounts,
    /// The inbound rules for its object class and their scope verdicts.
    pub rules: Vec<RuleReport>,
    /// Join, projection or disconnection.
    pub decision: String,
    /// The metaverse attributes afterwards, each with its source.
    pub attributes: Vec<AttrReport>,
    /// References waiting for their object: (attribute, DN).
    pub unresolved: Vec<(String, String)>,
    /// Errors the sync recorded on the object.
    pub errors: Vec<String>,
    /// The exports it caused, in every target.
    pub exports: Vec<ExportReport>,
    /// Stopped before export.
    pub dry_run: bool,
}

impl ObjectReport {
    /// The report in a few sentences, for a status-page answer.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "{} {}: {}; {}.",
            self.connector,
            self.dn,
            if self.found {
                "read from the directory"
            } else {
                "not in the directory (or out of scope), recorded deleted"
            },
            self.decision
        );
        if self.exports.is_empty() {
            out.push_str(" No export.");
        }
        for e in &self.exports {
            out.push_str(&format!(
                " Export to {}: {} {}: {}.",
                e.connector, e.op, e.dn, e.result
            ));
        }
        for e in &self.errors {
            out.push_str(&format!(" Error: {e}."));
        }
        out
    }
}

/// The anchors a printed anchor may be: the text itself, and for a GUID in its printed
/// form the 16 bytes of an objectGUID (first three groups little-endian, as AD stores it).
fn anchor_candidates(text: &str) -> Vec<Anchor> {
    let mut out = vec![Anchor::new(text.as_bytes().to_vec())];
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    let groups: Vec<usize> = text.split('-').map(str::len).collect();
    if groups == [8, 4, 4, 4, 12] && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        let b: Vec<u8> = (0..16)
            .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
            .collect();
        if b.len() == 16 {
            let mut g = Vec::with_capacity(16);
            g.extend(b[0..4].iter().rev());
            g.extend(b[4..6].iter().rev());
            g.extend(b[6..8].iter().rev());
            g.extend(&b[8..16]);
            out.push(Anchor::new(g));
        }
    }
    out
}

fn decision_text(d: &Decision) -> String {
    match d {
        Decision::StaysJoined(mv) => format!("stays joined to {mv}"),
        Decision::Joins(mv) => format!("joins {mv}"),
        Decision::Projects => "projects a new metaverse object".into(),
        Decision::Disconnects(mv) => format!("disconnects from {mv}"),
        Decision::StaysDisconnector => "stays a disconnector".into(),
    }
}

impl Runner {
    /// Where `which` is, and its anchor when the connector space knows it.
    fn locate(&self, conn: &ConnectorName, which: &Which) -> Result<OneObject, RunError> {
        let tx = self.store.read()?;
        match which {
            Which::Dn(dn) => {
                let anchor = match tx.cs_by_dn(conn, dn)? {
                    Some(id) => tx.cs(id)?.and_then(|r| r.anchor).map(Anchor::new),
                    None => None,
                };
                Ok(OneObject {
                    dn: dn.clone(),
                    anchor,
                })
            }
            Which::Anchor(text) => {
                for a in anchor_candidates(text) {
                    if let Some(id) = tx.cs_by_anchor(conn, &a)? {
                        if let Some(rec) = tx.cs(id)? {
                            return Ok(OneObject {
                                dn: rec.dn,
                                anchor: Some(a),
                            });
                        }
                    }
                }
                Err(RunError::Unsupported(format!(
                    "connector {conn}: no object with anchor {text} in its connector space \
                     (name a new object by --dn)"
                )))
            }
        }
    }

    /// Imports, syncs and (unless `dry_run`) exports one object of `connector`, and reports
    /// every step. Exports go only for what this object caused; a target whose export run
    /// the deletion threshold holds, or staging mode, keeps them pending.
    pub fn sync_object(
        &mut self,
        connector: &str,
        which: &Which,
        dry_run: bool,
    ) -> Result<ObjectReport, RunError> {
        let conn = self.connector_name(connector)?;
        let one = self.locate(&conn, which)?;
        let i = self
            .connectors
            .iter()
            .position(|c| c.name() == &conn)
            .ok_or_else(|| RunError::UnknownConnector(connector.to_string()))?;
        {
            let mut tx = self.store.write()?;
            tx.ensure_join_index(&self.config.rules.join_attributes())?;
            tx.commit()?;
        }
        let confirm = import::Confirm {
            now_ms: self.clock.now_ms(),
            write_only: write_only_of(&self.write_only, &conn),
            guarded: super::feeds_metaverse(&self.config, &conn),
        };
        let (counts, found) = import::run_one(
            &self.store,
            self.connectors[i].as_mut(),
            &one,
            &self.shutdown,
            confirm,
        )?;
        // The DN as the import left it (the directory may have it elsewhere by now).
        let dn = {
            let tx = self.store.read()?;
            match &one.anchor {
                Some(a) => match tx.cs_by_anchor(&conn, a)? {
                    Some(id) => tx.cs(id)?.map(|r| r.dn),
                    None => None,
                },
                None => None,
            }
            .unwrap_or_else(|| one.dn.clone())
        };
        // What the sync will do, by the real sync code in a transaction rolled back.
        let preview = {
            let ctx = self.sync_context();
            let tx = self.store.write()?;
            let p = sync::preview(&tx, &ctx, &conn, &dn)?;
            drop(tx);
            p
        };
        let Some(preview) = preview else {
            return Err(RunError::Unsupported(format!(
                "connector {conn}: {dn} is neither in the directory (in scope) nor in the \
                 connector space"
            )));
        };
        // The target objects linked now: a delete or disconnection reaches them through the
        // metaverse object this sync may remove.
        let linked_before: Vec<CsId> = {
            let tx = self.store.read()?;
            match tx.cs_by_dn(&conn, &dn)? {
                Some(cs) => match tx.link_of(cs)? {
                    Some(mv) => tx.links_of(mv)?.into_iter().filter(|x| *x != cs).collect(),
                    None => Vec::new(),
                },
                None => Vec::new(),
            }
        };
        self.sync(false, None)?;
        let mut report = ObjectReport {
            connector: conn.to_string(),
            dn: dn.to_string(),
            found,
            import: counts,
            rules: preview
                .rules
                .iter()
                .map(|r| RuleReport {
                    rule: r.rule.clone(),
                    in_scope: r.in_scope,
                })
                .collect(),
            decision: decision_text(&preview.decision),
            attributes: preview
                .attributes
                .iter()
                .map(|(name, values, from)| AttrReport {
                    name: name.clone(),
                    values: values.iter().map(|v| v.to_text()).collect(),
                    connector: from.as_ref().map(|c| c.connector.to_string()),
                    rule: from.as_ref().map(|c| c.rule.clone()),
                })
                .collect(),
            unresolved: preview.unresolved.clone(),
            errors: preview.errors.clone(),
            exports: Vec::new(),
            dry_run,
        };
        // Each export the object caused, as it is pending after the real sync: in the
        // targets it was linked to, and where the sync provisioned it.
        let mut candidates = linked_before;
        {
            let tx = self.store.read()?;
            for e in &preview.exports {
                if let Ok(t) = ConnectorName::new(&e.connector) {
                    candidates.extend(tx.cs_by_dn(&t, &e.dn)?);
                }
            }
        }
        let mut by_target: BTreeMap<usize, Vec<(CsId, usize)>> = BTreeMap::new();
        let mut seen = HashSet::new();
        let tx = self.store.read()?;
        for id in candidates {
            if !seen.insert(id) {
                continue;
            }
            let Some(rec) = tx.cs(id)? else { continue };
            let Some(e) = &rec.export else { continue };
            let Some(j) = self
                .connectors
                .iter()
                .position(|c| c.name().as_str() == rec.connector)
            else {
                continue;
            };
            report.exports.push(ExportReport {
                connector: rec.connector.clone(),
                op: match e.kind {
                    ExportKind::Add => "add",
                    ExportKind::Delete => "delete",
                    ExportKind::Update if e.new_dn.is_some() => "rename",
                    ExportKind::Update => "update",
                },
                dn: rec.dn.to_string(),
                new_dn: e.new_dn.as_ref().map(|d| d.to_string()),
                changes: change_views(&e.changes),
                applied: false,
                result: "not sent".into(),
            });
            by_target
                .entry(j)
                .or_default()
                .push((id, report.exports.len() - 1));
        }
        drop(tx);
        for (j, list) in by_target {
            let why_not = if dry_run {
                Some("not exported: --dry-run".to_string())
            } else if self.config.staging {
                Some("not exported: staging mode".to_string())
            } else {
                let target = self.connectors[j].name().clone();
                let holds = self.config.connectors[j].deletion_threshold.holds;
                let held = !self.store.read()?.blocked_deletes(&target)?.is_empty();
                (held && holds == ThresholdHolds::Export).then(|| {
                    format!(
                        "held: the deletion threshold holds {target}'s export run; review it \
                         with `bridgehead pending --connector {target}` and approve it first"
                    )
                })
            };
            if let Some(why) = why_not {
                for (_, k) in &list {
                    report.exports[*k].result = why.clone();
                }
                continue;
            }
            let ids: HashSet<CsId> = list.iter().map(|(id, _)| *id).collect();
            let threshold = self.config.connectors[j].deletion_threshold;
            let now = self.clock.now_ms();
            let stats = export::run(
                &self.store,
                self.connectors[j].as_mut(),
                threshold,
                now,
                &self.shutdown,
                Some(&ids),
            )?;
            for (id, k) in &list {
                let r = &mut report.exports[*k];
                match stats.answers.iter().find(|(a, _)| a == id) {
                    Some((_, None)) => {
                        r.applied = true;
                        r.result = "applied".into();
                    }
                    Some((_, Some(message))) => r.result = format!("refused: {message}"),
                    None if stats.deferred > 0 => {
                        r.result = "not sent: it failed recently and waits for its retry \
                                    time"
                            .into()
                    }
                    None => {}
                }
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_printed_guid_is_also_tried_as_the_objectguid_bytes_ad_stores() {
        let c = anchor_candidates("01020304-0506-0708-090a-0b0c0d0e0f10");
        assert_eq!(c.len(), 2);
        assert_eq!(
            c[1].as_bytes(),
            &[4, 3, 2, 1, 6, 5, 8, 7, 9, 10, 11, 12, 13, 14, 15, 16]
        );
        assert_eq!(
            c[1].to_string(),
            "01020304-0506-0708-090a-0b0c0d0e0f10",
            "the GUID prints back the same"
        );
        // Anything else is only itself.
        assert_eq!(anchor_candidates("abc").len(), 1);
    }
}
