//! The review of what would be written (the `csexport` job): every pending export of one
//! connector, in the order the export sends them, with its operation and exact attribute
//! changes, and for `ad`/`ldap` targets the LDIF change records the export amounts to.
//! Reads a snapshot only; nothing here changes the state file.

use serde::Serialize;

use super::RunError;
use super::export::{Planned, item_of, plan};
use crate::config::{Config, ConnectorConfig, ConnectorKind, LdapFlavor, ThresholdHolds};
use crate::connector::ldap::change_ldif;
use crate::model::{ChangeOp, ConnectorName, ExportKind};
use crate::store::{ReadTx, StoreError};

/// Attributes whose values a review never shows.
const SECRET: &[&str] = &["unicodePwd", "userPassword"];

/// One attribute change of a pending export.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PendingChange {
    /// The target's attribute name.
    pub attr: String,
    /// add, remove or replace (a replace with no values clears the attribute).
    pub op: &'static str,
    /// The values, as the directory gets them (references as DNs).
    pub values: Vec<String>,
}

/// One pending export.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PendingExport {
    /// add, update, rename or delete.
    pub op: &'static str,
    /// The object's DN in the target.
    pub dn: String,
    /// Where a rename moves it.
    pub new_dn: Option<String>,
    /// Its object class.
    pub object_class: String,
    /// A name an admin recognises (display name, UPN or mail), from the export or the
    /// object as last imported.
    pub name: Option<String>,
    /// The attribute changes (an add lists every attribute it writes).
    pub changes: Vec<PendingChange>,
    /// A delete the deletion threshold holds back.
    pub held: bool,
    /// The directory's last refusal of it, if any.
    pub error: Option<String>,
}

/// Everything pending for one connector.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PendingList {
    /// The connector.
    pub connector: String,
    /// ldif, ad, ldap or scim.
    pub kind: &'static str,
    /// Deletes the threshold holds back.
    pub held_deletes: u64,
    /// Whether the whole export run waits with them for `approve`.
    pub export_held: bool,
    /// An import the empty-import guard stopped: (objects held, objects found).
    pub held_import: Option<(u64, u64)>,
    /// The exports, in the order the export sends them.
    pub exports: Vec<PendingExport>,
}

/// Attribute changes as a review shows them (passwords as set, never their value).
pub fn change_views(changes: &[crate::model::AttrChange]) -> Vec<PendingChange> {
    changes
        .iter()
        .map(|ch| {
            let (op, values) = match &ch.op {
                ChangeOp::Add(v) => ("add", v),
                ChangeOp::Remove(v) => ("remove", v),
                ChangeOp::Replace(v) => ("replace", v),
            };
            let values = if SECRET.iter().any(|s| ch.attr.is(s)) {
                vec!["(a value is set; not shown)".to_string()]
            } else {
                values.iter().map(|v| v.to_text()).collect()
            };
            PendingChange {
                attr: ch.attr.to_string(),
                op,
                values,
            }
        })
        .collect()
}

/// The connector's type as the config names it.
pub fn kind_of(c: &ConnectorConfig) -> &'static str {
    match &c.kind {
        ConnectorKind::Ldif(_) => "ldif",
        ConnectorKind::Ldap(l) if l.flavor == LdapFlavor::Ad => "ad",
        ConnectorKind::Ldap(_) => "ldap",
        ConnectorKind::Scim(_) => "scim",
        ConnectorKind::Graph(_) => "graph",
    }
}

fn connector<'a>(config: &'a Config, name: &str) -> Result<&'a ConnectorConfig, RunError> {
    ConnectorName::new(name)
        .ok()
        .and_then(|c| config.connector(&c))
        .ok_or_else(|| RunError::UnknownConnector(name.to_string()))
}

fn ordered(tx: &ReadTx, conn: &ConnectorName) -> Result<Vec<Planned>, StoreError> {
    let ids = tx.pending_exports(conn)?;
    let mut planned = plan(&ids, &mut |id| tx.cs(id))?;
    planned.sort();
    Ok(planned)
}

/// Every pending export of `name`, in export order.
pub fn list(tx: &ReadTx, config: &Config, name: &str) -> Result<PendingList, RunError> {
    let c = connector(config, name)?;
    let held = tx.blocked_deletes(&c.name)?;
    let mut exports = Vec::new();
    for planned in ordered(tx, &c.name)? {
        let Some(rec) = tx.cs(planned.2)? else {
            continue;
        };
        let Some(item) = item_of(&rec, &planned) else {
            continue;
        };
        let changes = change_views(&item.changes);
        // The name from what the export writes, else from the object as last imported.
        let mut named = rec.clone();
        for (attr, values) in item.add_attributes().iter() {
            named.attrs.set(attr.clone(), values.clone());
        }
        exports.push(PendingExport {
            op: match item.kind {
                ExportKind::Add => "add",
                ExportKind::Delete => "delete",
                ExportKind::Update if item.new_dn.is_some() => "rename",
                ExportKind::Update => "update",
            },
            dn: item.dn.to_string(),
            new_dn: item.new_dn.as_ref().map(|d| d.to_string()),
            object_class: item.object_class.clone(),
            name: super::approve::released(&named).name,
            changes,
            held: held.contains(&planned.2),
            error: rec.error.as_ref().map(|e| e.message.clone()),
        });
    }
    Ok(PendingList {
        connector: c.name.to_string(),
        kind: kind_of(c),
        held_deletes: held.len() as u64,
        export_held: !held.is_empty() && c.deletion_threshold.holds == ThresholdHolds::Export,
        held_import: tx
            .held_import(&c.name)?
            .filter(|h| !h.approved)
            .map(|h| (h.held, h.found)),
        exports,
    })
}

/// The pending exports of an `ad` or `ldap` connector as LDIF change records, in export
/// order: applied with `ldapmodify`, they make the changes the export would.
pub fn ldif(tx: &ReadTx, config: &Config, name: &str) -> Result<String, RunError> {
    let c = connector(config, name)?;
    let ConnectorKind::Ldap(l) = &c.kind else {
        return Err(RunError::Unsupported(format!(
            "connector {name} is a {} connector: LDIF change records are for ad and ldap \
             targets; use --format text or json",
            kind_of(c)
        )));
    };
    let mut items = Vec::new();
    for planned in ordered(tx, &c.name)? {
        if let Some(rec) = tx.cs(planned.2)? {
            items.extend(item_of(&rec, &planned));
        }
    }
    change_ldif::change_records(&items, l.flavor).map_err(|e| {
        RunError::Unsupported(format!("connector {name}: pending exports as LDIF: {e}"))
    })
}
