//! Pending exports as LDAP operations: add (AD users with a password: add disabled, set
//! unicodePwd, then set userAccountControl, as Windows requires), modify with value-level
//! adds and removes, modrdn for renames and moves, delete. Replays after a crash are
//! harmless: an existing value added or a missing one removed is not an error, and a
//! delete of an object already gone succeeds.

use std::collections::HashSet;

use ldap3::Mod;

use super::LdapConnector;
use super::entry::Mapper;
use super::session::{Failure, Session};
use crate::config::LdapFlavor;
use crate::model::{
    AttrChange, AttrName, Attributes, ChangeOp, Dn, ExportItem, ExportKind, ExportOutcome,
    RefTarget, UtcTime, Value,
};

/// The value octets LDAP carries for a model value.
pub(super) fn octets(attr: &AttrName, v: &Value, flavor: LdapFlavor) -> Result<Vec<u8>, String> {
    if flavor == LdapFlavor::Ad && attr.is("unicodePwd") {
        if let Value::String(pw) = v {
            // AD wants the password in double quotes, UTF-16LE, no BOM.
            return Ok(format!("\"{pw}\"")
                .encode_utf16()
                .flat_map(|u| u.to_le_bytes())
                .collect());
        }
    }
    Ok(match v {
        Value::String(s) => s.clone().into_bytes(),
        Value::Binary(b) => b.clone(),
        Value::Integer(i) => i.to_string().into_bytes(),
        Value::Boolean(b) => if *b { "TRUE" } else { "FALSE" }.as_bytes().to_vec(),
        Value::DateTime(t) => {
            format!("{}.0Z", UtcTime::from_unix(*t).generalized_digits()).into_bytes()
        }
        Value::Reference(RefTarget::Dn(dn) | RefTarget::Anchored { dn, .. }) => {
            dn.as_str().as_bytes().to_vec()
        }
        Value::Reference(RefTarget::Mv(id)) => {
            return Err(format!(
                "{attr}: reference to metaverse object {} has no DN here",
                id.0
            ));
        }
    })
}

fn value_set(
    attr: &AttrName,
    values: &crate::model::ValueSet,
    flavor: LdapFlavor,
) -> Result<HashSet<Vec<u8>>, String> {
    values.iter().map(|v| octets(attr, v, flavor)).collect()
}

fn mods(changes: &[AttrChange], flavor: LdapFlavor) -> Result<Vec<Mod<Vec<u8>>>, String> {
    let mut out = Vec::new();
    for c in changes {
        let name = c.attr.as_str().as_bytes().to_vec();
        out.push(match &c.op {
            ChangeOp::Add(v) => Mod::Add(name, value_set(&c.attr, v, flavor)?),
            ChangeOp::Remove(v) => Mod::Delete(name, value_set(&c.attr, v, flavor)?),
            ChangeOp::Replace(v) => Mod::Replace(name, value_set(&c.attr, v, flavor)?),
        });
    }
    Ok(out)
}

fn outcome(f: Failure) -> ExportOutcome {
    match f {
        Failure::Unreachable(reason) => ExportOutcome::NotTried { reason },
        other => ExportOutcome::Failed {
            retryable: other.retryable(),
            message: other.to_string(),
        },
    }
}

impl LdapConnector {
    /// Applies the items in waves of up to `in_flight` operations on the one connection:
    /// LDAP lets a client send requests before the earlier answers arrive (RFC 4511 §3.1),
    /// and a directory works on them at once, so a wave costs about one round trip instead
    /// of one per item. A wave holds only items that cannot affect each other (see
    /// [`wave_end`]); its outcomes are reported in item order.
    pub(super) async fn export_async(&mut self, items: &[ExportItem]) -> Vec<ExportOutcome> {
        let mut out = Vec::with_capacity(items.len());
        let mut stopped: Option<String> = None;
        let mut start = 0;
        while start < items.len() {
            if let Some(reason) = &stopped {
                out.extend(items[start..].iter().map(|_| ExportOutcome::NotTried {
                    reason: reason.clone(),
                }));
                break;
            }
            let session = match Self::session(&mut self.session, &self.cfg).await {
                Ok(s) => s.clone(),
                Err(f) => {
                    let o = outcome(f);
                    if let ExportOutcome::NotTried { reason } = &o {
                        stopped = Some(reason.clone());
                    }
                    out.push(o);
                    start += 1;
                    continue;
                }
            };
            let end = wave_end(items, start, self.cfg.in_flight);
            let flavor = self.cfg.flavor;
            let mapper = &self.mapper;
            let wave = items[start..end].iter().map(|item| {
                let mut session = session.clone();
                async move { apply(&mut session, item, flavor, mapper).await }
            });
            for o in futures_util::future::join_all(wave).await {
                match o {
                    ExportOutcome::NotTried { reason } => {
                        let reason = format!("{}: {reason}", self.cfg.url);
                        stopped.get_or_insert_with(|| reason.clone());
                        out.push(ExportOutcome::NotTried { reason });
                    }
                    o => out.push(o),
                }
            }
            start = end;
        }
        out
    }
}

/// One item on the connection.
async fn apply(
    session: &mut Session,
    item: &ExportItem,
    flavor: LdapFlavor,
    mapper: &Mapper,
) -> ExportOutcome {
    let r = match item.kind {
        ExportKind::Add => add(session, item, flavor, mapper).await,
        ExportKind::Update => update(session, item, flavor).await,
        ExportKind::Delete => match session.delete(item.dn.as_str()).await {
            Ok(()) | Err(Failure::Refused { rc: 32, .. }) => Ok(ExportOutcome::Applied {
                anchor: None,
                server_attrs: Attributes::new(),
            }),
            Err(f) => Err(f),
        },
    };
    r.unwrap_or_else(outcome)
}

/// The end of the wave that starts at `start`: at most `limit` items of one kind and stage
/// (the runner's order: what frees a DN or value goes a stage before what takes it), none
/// of whose DNs (old or new) equals, contains or lies under another's, so that no item's
/// result depends on another of its wave (a parent OU and its children, a rename into a
/// DN another item names). Always at least one item.
fn wave_end(items: &[ExportItem], start: usize, limit: usize) -> usize {
    let (kind, stage) = (items[start].kind, items[start].stage);
    let related = |a: &str, b: &str| {
        a == b
            || a.strip_suffix(b).is_some_and(|r| r.ends_with(','))
            || b.strip_suffix(a).is_some_and(|r| r.ends_with(','))
            || a.is_empty()
            || b.is_empty()
    };
    let mut names: Vec<&str> = Vec::new();
    let mut end = start;
    while end < items.len() && end - start < limit.max(1) {
        let item = &items[end];
        if item.kind != kind || item.stage != stage {
            break;
        }
        let mine: Vec<&str> = std::iter::once(&item.dn)
            .chain(item.new_dn.as_ref())
            .map(Dn::norm)
            .collect();
        if mine.iter().any(|m| names.iter().any(|n| related(m, n))) {
            break;
        }
        names.extend(mine);
        end += 1;
    }
    end.max(start + 1)
}

/// What an add sends: the entry's attributes (with its structural class), and what follows
/// as modifies. AD: a user is created without its password and account control, which
/// follow (a password that fails policy must not leave an enabled, passwordless user). The
/// `pending` LDIF shows the same operations.
pub(super) fn add_parts(item: &ExportItem, flavor: LdapFlavor) -> (Attributes, Vec<AttrChange>) {
    let mut attrs = item.add_attributes();
    if attrs.get("objectClass").is_none() {
        attrs.add(
            &AttrName::new("objectClass"),
            Value::str(item.object_class.clone()),
        );
    }
    let mut after = Vec::new();
    if flavor == LdapFlavor::Ad {
        for a in ["unicodePwd", "userAccountControl"] {
            if let Some(v) = attrs.remove(a) {
                after.push(AttrChange {
                    attr: AttrName::new(a),
                    op: ChangeOp::Replace(v),
                });
            }
        }
    }
    (attrs, after)
}

async fn add(
    session: &mut Session,
    item: &ExportItem,
    flavor: LdapFlavor,
    mapper: &Mapper,
) -> Result<ExportOutcome, Failure> {
    let (attrs, after) = add_parts(item, flavor);
    let mut list = Vec::new();
    for (name, values) in attrs.iter() {
        let set = value_set(name, values, flavor).map_err(Failure::BadData)?;
        list.push((name.as_str().as_bytes().to_vec(), set));
    }
    let dn = item.dn.as_str();
    let anchor_attr = mapper.anchor_attr();
    let read = match session.add_reading(dn, list, &[anchor_attr]).await {
        Ok(read) => read,
        // entryAlreadyExists: a replay. A run killed with adds in flight leaves the directory
        // to finish them, possibly after the next run's import has read the target; the
        // entry at this DN is this object (the import would adopt it by DN just the same),
        // so it is read back and taken, and what follows the add is applied to it.
        Err(Failure::Refused { rc: 68, .. }) => {
            tracing::info!(%dn, "the entry exists already (a replayed add); adopting it");
            None
        }
        Err(f) => return Err(f),
    };
    for c in after {
        let m = mods(std::slice::from_ref(&c), flavor).map_err(Failure::BadData)?;
        if let Err(f) = session.modify(dn, m).await {
            // The add is undone so that the retry adds again (with the same outcome or,
            // once the cause is fixed, a complete user), rather than finding a
            // half-made object in its place.
            if matches!(f, Failure::Refused { .. }) {
                let _ = session.delete(dn).await;
            }
            return Err(f);
        }
    }
    let e = match read.filter(|e| !e.values(anchor_attr).is_empty()) {
        Some(e) => e,
        None => session
            .read(dn, &[anchor_attr.to_string()], Vec::new())
            .await?
            .ok_or_else(|| Failure::BadData(format!("{dn} was added but cannot be read back")))?,
    };
    let anchor = mapper.anchor(&e).map_err(|m| Failure::BadData(m.0))?;
    Ok(ExportOutcome::Applied {
        anchor: Some(anchor),
        server_attrs: Attributes::new(),
    })
}

async fn update(
    session: &mut Session,
    item: &ExportItem,
    flavor: LdapFlavor,
) -> Result<ExportOutcome, Failure> {
    let mut dn: Dn = item.dn.clone();
    if let Some(new_dn) = &item.new_dn {
        if new_dn.norm() != dn.norm() || new_dn.as_str() != dn.as_str() {
            let parent = new_dn.parent();
            let new_parent =
                (parent.norm() != dn.parent().norm()).then(|| parent.as_str().to_string());
            match session
                .rename(dn.as_str(), new_dn.rdn(), new_parent.as_deref())
                .await
            {
                Ok(()) => {}
                // A replay after a crash: the object already has its new name.
                Err(Failure::Refused { rc: 32, .. })
                    if session
                        .read(new_dn.as_str(), &["1.1".into()], Vec::new())
                        .await?
                        .is_some() => {}
                Err(f) => return Err(f),
            }
            dn = new_dn.clone();
        }
    }
    let all = mods(&item.changes, flavor).map_err(Failure::BadData)?;
    match session.modify(dn.as_str(), all).await {
        Ok(()) => {}
        // attributeOrValueExists / noSuchAttribute: apply one change at a time and skip
        // the ones already in place (a replayed export).
        Err(Failure::Refused { rc: 16 | 20, .. }) => {
            for c in &item.changes {
                let m = mods(std::slice::from_ref(c), flavor).map_err(Failure::BadData)?;
                match session.modify(dn.as_str(), m).await {
                    Ok(()) | Err(Failure::Refused { rc: 16 | 20, .. }) => {}
                    Err(f) => return Err(f),
                }
            }
        }
        Err(f) => return Err(f),
    }
    Ok(ExportOutcome::Applied {
        anchor: None,
        server_attrs: Attributes::new(),
    })
}

#[cfg(test)]
mod wave_tests {
    use super::*;
    use crate::model::CsId;

    fn item(kind: ExportKind, dn: &str, new_dn: Option<&str>, stage: u16) -> ExportItem {
        let parse = |s: &str| Dn::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        ExportItem {
            cs_id: CsId(1),
            kind,
            anchor: None,
            dn: parse(dn),
            new_dn: new_dn.map(parse),
            object_class: "inetOrgPerson".into(),
            changes: Vec::new(),
            stage,
        }
    }

    #[test]
    fn waves_hold_independent_items_of_one_kind_and_stage() {
        use ExportKind::{Add, Delete, Update};
        let items = vec![
            item(Delete, "uid=a,ou=p,dc=x", None, 0),
            item(Delete, "uid=b,ou=p,dc=x", None, 0),
            item(Update, "uid=c,ou=p,dc=x", None, 1),
            // Renamed into the DN the next item holds: not in the same wave.
            item(Update, "uid=d,ou=p,dc=x", Some("uid=e,ou=p,dc=x"), 1),
            item(Update, "UID=E,ou=p,dc=x", None, 1),
            item(Add, "ou=new,dc=x", None, 2),
            // A child of the OU added just before it.
            item(Add, "uid=f,ou=new,dc=x", None, 2),
            item(Add, "uid=g,ou=p,dc=x", None, 2),
            item(Add, "uid=h,ou=p,dc=x", None, 3),
        ];
        let mut waves = Vec::new();
        let mut start = 0;
        while start < items.len() {
            let end = wave_end(&items, start, 8);
            waves.push(end - start);
            start = end;
        }
        assert_eq!(waves, [2, 2, 1, 1, 2, 1]);
        // The limit caps a wave; an item is never left out.
        assert_eq!(wave_end(&items, 0, 1), 1);
        assert_eq!(wave_end(&items, 0, 0), 1);
    }
}
