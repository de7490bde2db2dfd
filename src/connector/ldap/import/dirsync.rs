//! AD DirSync deltas: changed attributes merged into the hologram (linked attributes as
//! value-level adds and removes), tombstones as deletes, objects whose scope depends on
//! the whole object read again by objectGUID.

use std::collections::HashSet;

use super::{
    Ctx, Position, container_filter, full_read_only, is_container, push_entry, read_all,
    reread_subtrees, sink_err,
};

/// How many objects one re-read search asks for by GUID.
const REREAD_BATCH: usize = 50;
use crate::connector::ldap::controls;
use crate::connector::ldap::entry::{Mapper, RawEntry, split_range};
use crate::connector::ldap::scope::escape_bytes;
use crate::connector::ldap::session::{Failure, Item, Search, Session};
use crate::model::{
    Anchor, AttrChange, AttrName, ChangeOp, Dn, ImportChange, PartialObject, ValueSet,
};

fn dirsync_search(ctx: &Ctx<'_>, filter: String) -> Search {
    Search {
        base: ctx.cfg.base_dn.as_str().to_string(),
        subtree: true,
        filter,
        attrs: ctx
            .attrs
            .iter()
            .filter(|a| !a.contains(";range="))
            .cloned()
            .collect(),
        controls: Vec::new(),
    }
}

/// One DirSync round trip: entries to `f`, then the server's answer.
async fn dirsync_call(
    session: &mut Session,
    s: &Search,
    flags: u32,
    cookie: &[u8],
    f: &mut dyn FnMut(RawEntry) -> Result<(), Failure>,
) -> Result<controls::DirSyncResponse, Failure> {
    let done = session
        .stream(
            s,
            vec![controls::dirsync(flags, 0, cookie)],
            &mut |item| match item {
                Item::Entry(e, _) => f(e),
                Item::Intermediate(..) => Ok(()),
            },
        )
        .await?;
    done.controls
        .iter()
        .find(|c| c.ctype == controls::DIRSYNC)
        .and_then(|c| c.val.as_deref())
        .and_then(controls::parse_dirsync)
        .ok_or_else(|| Failure::BadData("DirSync answer without a valid DirSync control".into()))
}

/// A DirSync cookie for "now", taken with a filter that matches nothing so that no object
/// is transferred twice.
pub(super) async fn dirsync_position(
    session: &mut Session,
    ctx: &mut Ctx<'_>,
) -> Result<Position, Failure> {
    let s = dirsync_search(ctx, "(&(objectClass=user)(!(objectClass=user)))".into());
    for flags in [
        controls::DIRSYNC_INCREMENTAL_VALUES,
        controls::DIRSYNC_INCREMENTAL_VALUES | controls::DIRSYNC_OBJECT_SECURITY,
    ] {
        let mut cookie = Vec::new();
        let r = loop {
            match dirsync_call(session, &s, flags, &cookie, &mut |_| Ok(())).await {
                Ok(resp) => {
                    cookie = resp.cookie;
                    if !resp.more {
                        break Ok(());
                    }
                }
                Err(e) => break Err(e),
            }
        };
        match r {
            Ok(()) => return Ok(Position::DirSync { flags, cookie }),
            // Without replication rights: try again with the caller's own read rights.
            Err(Failure::Refused { rc: 50, .. })
                if flags & controls::DIRSYNC_OBJECT_SECURITY == 0 =>
            {
                continue;
            }
            Err(e) => return Err(e),
        }
    }
    Err(Failure::BadData("DirSync refused".into()))
}

/// The changes of one DirSync entry as value-level attribute changes.
fn dirsync_changes(mapper: &Mapper, e: &RawEntry) -> Vec<AttrChange> {
    let mut out = Vec::new();
    for a in &e.attrs {
        let (base, range) = split_range(&a.name);
        if mapper.excluded(base) || base.eq_ignore_ascii_case("objectClass") {
            continue;
        }
        let values: ValueSet = a.values.iter().map(|v| mapper.value(base, v)).collect();
        let attr = AttrName::new(base);
        let op = match range {
            // INCREMENTAL_VALUES: range=1-1 lists added values, range=0-0 removed ones.
            Some(r) if r.low == 1 && r.high == Some(1) => ChangeOp::Add(values),
            Some(r) if r.low == 0 && r.high == Some(0) => ChangeOp::Remove(values),
            _ => ChangeOp::Replace(values),
        };
        out.push(AttrChange { attr, op });
    }
    out
}

pub(super) async fn dirsync_delta(
    session: &mut Session,
    ctx: &mut Ctx<'_>,
    flags: u32,
    mut cookie: Vec<u8>,
) -> Result<Option<(bool, Position)>, Failure> {
    // Containers too: a renamed or moved OU is the only entry DirSync reports for it.
    let filter = format!("(|{}{})", ctx.scope.class_filter(), container_filter());
    let s = dirsync_search(ctx, filter);
    let mut reread: Vec<Vec<u8>> = Vec::new();
    let mut containers: Vec<Dn> = Vec::new();
    let mut group_changed = false;
    let group_norm = ctx.scope.group.as_ref().map(|(g, _)| g.norm().to_string());
    loop {
        let mapper = ctx.mapper;
        let scope = ctx.scope;
        let needs_reread = scope.needs_reread();
        let sink = &mut *ctx.sink;
        let name = ctx.name;
        let r = dirsync_call(session, &s, flags, &cookie, &mut |e| {
            let Some(guid) = e.values("objectGUID").first().filter(|g| g.len() == 16).cloned() else {
                tracing::warn!(connector = name, dn = %e.dn, "DirSync entry without objectGUID skipped");
                return Ok(());
            };
            let anchor = Anchor::new(guid.clone());
            let deleted = e.dn.is_empty()
                || e.values("isDeleted")
                    .first()
                    .is_some_and(|v| v.eq_ignore_ascii_case(b"TRUE"));
            if deleted {
                // A tombstone: its links leave every group and manager with it (Samba
                // reports the tombstone only, not the groups it was a member of).
                return sink.push(ImportChange::Tombstone(anchor)).map_err(sink_err);
            }
            let dn = match Dn::parse(&e.dn) {
                Ok(d) => d,
                Err(err) => {
                    tracing::warn!(connector = name, dn = %e.dn, "bad DN skipped ({})", err.reason);
                    return Ok(());
                }
            };
            if group_norm.as_deref() == Some(dn.norm()) {
                group_changed = true;
            }
            // A rename or move of an OU arrives without objectClass (only name and
            // parentGUID changed): its RDN says what it is.
            let ou_rdn = dn
                .rdn()
                .split_once('=')
                .is_some_and(|(t, _)| t.trim().eq_ignore_ascii_case("OU"));
            if mapper.class(&e).is_none() && (ou_rdn || is_container(&e)) {
                containers.push(dn);
                return Ok(());
            }
            if !scope.contains(&dn) && scope.group.is_none() {
                return sink.push(ImportChange::Delete(anchor)).map_err(sink_err);
            }
            if !needs_reread && sink.knows(&anchor).map_err(sink_err)? {
                let mut changes = dirsync_changes(mapper, &e);
                // A rename changes the naming attribute (cn), which DirSync may report only
                // as `name`: the DN is authoritative for it.
                if let (Some((attr, _)), Some(value)) = (dn.rdn().split_once('='), dn.rdn_value()) {
                    if !attr.contains('+') {
                        changes.push(AttrChange {
                            attr: AttrName::new(attr.trim()),
                            op: ChangeOp::Replace(ValueSet::one(crate::model::Value::String(value))),
                        });
                    }
                }
                return sink
                    .push(ImportChange::Merge(PartialObject { anchor, dn, changes }))
                    .map_err(sink_err);
            }
            reread.push(guid);
            Ok(())
        })
        .await;
        match r {
            Ok(resp) => {
                cookie = resp.cookie;
                if !resp.more {
                    break;
                }
            }
            Err(Failure::Refused { rc, text }) => {
                tracing::warn!(
                    connector = ctx.name,
                    "DirSync refused the stored cookie ({} {rc}: {text}): full import",
                    crate::connector::ldap::session::rc_name(rc)
                );
                return Ok(None);
            }
            Err(e) => return Err(e),
        }
    }
    if group_changed {
        tracing::info!(
            connector = ctx.name,
            "the filter group changed: reading the whole scope again"
        );
        full_read_only(session, ctx).await?;
        return Ok(Some((true, Position::DirSync { flags, cookie })));
    }
    containers.extend(reread_by_guid(session, ctx, &reread).await?);
    reread_subtrees(session, ctx, containers).await?;
    Ok(Some((false, Position::DirSync { flags, cookie })))
}

/// Reads objects whole by objectGUID, in batches; those the full filter or the OU scope
/// no longer take are reported deleted. Returns the DNs of those that are containers (a
/// `CN=` container renamed arrives like any object), whose subtrees are read next.
async fn reread_by_guid(
    session: &mut Session,
    ctx: &mut Ctx<'_>,
    guids: &[Vec<u8>],
) -> Result<Vec<Dn>, Failure> {
    let mut containers = Vec::new();
    let full = ctx.scope.full_filter();
    let attrs = ctx.attrs.clone();
    for chunk in guids.chunks(REREAD_BATCH) {
        let mut any = String::from("(|");
        for g in chunk {
            any.push_str(&format!("(objectGUID={})", escape_bytes(g)));
        }
        any.push(')');
        let filter = format!("(&{full}{any})");
        let mut seen: HashSet<Vec<u8>> = HashSet::new();
        read_all(session, ctx, &filter, &attrs, |ctx, e| {
            if let Some(a) = push_entry(ctx, e)? {
                seen.insert(a.as_bytes().to_vec());
            }
            Ok(())
        })
        .await?;
        let unseen: Vec<&Vec<u8>> = chunk.iter().filter(|g| !seen.contains(*g)).collect();
        for g in &unseen {
            ctx.sink
                .push(ImportChange::Delete(Anchor::new((*g).clone())))
                .map_err(sink_err)?;
        }
        if !unseen.is_empty() {
            containers.extend(containers_among(session, ctx, &unseen).await?);
        }
    }
    Ok(containers)
}

/// The DNs of the containers among these objectGUIDs.
async fn containers_among(
    session: &mut Session,
    ctx: &mut Ctx<'_>,
    guids: &[&Vec<u8>],
) -> Result<Vec<Dn>, Failure> {
    let mut any = String::from("(|");
    for g in guids {
        any.push_str(&format!("(objectGUID={})", escape_bytes(g)));
    }
    any.push(')');
    let s = Search {
        base: ctx.cfg.base_dn.as_str().to_string(),
        subtree: true,
        filter: format!("(&{}{any})", container_filter()),
        attrs: vec!["1.1".into()],
        controls: Vec::new(),
    };
    let mut out = Vec::new();
    session
        .stream(&s, Vec::new(), &mut |item| {
            if let Item::Entry(e, _) = item {
                if let Ok(dn) = Dn::parse(&e.dn) {
                    out.push(dn);
                }
            }
            Ok(())
        })
        .await?;
    Ok(out)
}
