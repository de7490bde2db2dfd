//! RFC 4533 syncrepl refreshOnly for LDAP servers with syncprov: changed entries whole,
//! deletes as syncIdSets or delete states, and the present phase as a complete snapshot.

use std::collections::BTreeSet;

use super::{Ctx, Position, container_filter, is_container, push_entry, reread_subtrees, sink_err};
use crate::connector::ldap::controls::{self, SyncInfo, SyncStateKind};
use crate::connector::ldap::session::{Failure, Item, Search, Session};
use crate::model::{Anchor, Dn, ImportChange};

/// The filter of the position and of every delta: the imported objects and the containers
/// (a renamed subtree is reported by its top entry alone).
fn sync_filter(ctx: &Ctx<'_>) -> String {
    format!("(|{}{})", ctx.scope.full_filter(), container_filter())
}

/// The entryUUID text form of a 16-octet syncUUID.
fn uuid_text(b: &[u8]) -> Option<String> {
    uuid::Uuid::from_slice(b)
        .ok()
        .map(|u| u.hyphenated().to_string())
}

pub(super) async fn syncrepl_position(
    session: &mut Session,
    ctx: &mut Ctx<'_>,
) -> Result<Position, Failure> {
    // Same base and filter as the deltas, but no attributes: only DNs and UUIDs travel.
    let s = Search {
        base: ctx.cfg.base_dn.as_str().to_string(),
        subtree: true,
        filter: sync_filter(ctx),
        attrs: vec!["1.1".into()],
        controls: Vec::new(),
    };
    let mut last_cookie = None;
    let done = session
        .stream(&s, vec![controls::sync_refresh_only(None)], &mut |item| {
            if let Item::Intermediate(name, v) = item {
                if name == controls::SYNC_INFO {
                    if let Some(SyncInfo::NewCookie(c)) = controls::parse_sync_info(&v) {
                        last_cookie = Some(c);
                    }
                }
            }
            Ok(())
        })
        .await?;
    let cookie = done
        .controls
        .iter()
        .find(|c| c.ctype == controls::SYNC_DONE)
        .and_then(|c| c.val.as_deref())
        .and_then(controls::parse_sync_done)
        .and_then(|d| d.cookie)
        .or(last_cookie)
        .ok_or_else(|| Failure::BadData("syncrepl answer without a cookie".into()))?;
    Ok(Position::Syncrepl { cookie })
}

pub(super) async fn syncrepl_delta(
    session: &mut Session,
    ctx: &mut Ctx<'_>,
    cookie: Vec<u8>,
) -> Result<Option<(bool, Position)>, Failure> {
    let s = Search {
        base: ctx.cfg.base_dn.as_str().to_string(),
        subtree: true,
        filter: sync_filter(ctx),
        attrs: {
            let mut a = ctx.attrs.clone();
            a.push("entryUUID".into());
            a
        },
        controls: Vec::new(),
    };
    let mut newest: Option<Vec<u8>> = None;
    let mut present_phase = false;
    let mut delivered = 0u64;
    let mut containers: Vec<Dn> = Vec::new();
    // Entries naming a renamed or deleted one by DN, to read again (see below).
    let mut referrers: BTreeSet<Dn> = BTreeSet::new();
    let r = {
        let mapper = ctx.mapper;
        let scope = ctx.scope;
        let sink = &mut *ctx.sink;
        let name = ctx.name;
        session
            .stream(
                &s,
                vec![controls::sync_refresh_only(Some(&cookie))],
                &mut |item| match item {
                    Item::Entry(e, ctrls) => {
                        let state = ctrls
                            .iter()
                            .find(|c| c.ctype == controls::SYNC_STATE)
                            .and_then(|c| c.val.as_deref())
                            .and_then(controls::parse_sync_state)
                            .ok_or_else(|| {
                                Failure::BadData(format!("{}: no valid syncState", e.dn))
                            })?;
                        if let Some(c) = state.cookie {
                            newest = Some(c);
                        }
                        let anchor = match uuid_text(&state.uuid) {
                            Some(u) => Anchor::new(u.into_bytes()),
                            None => {
                                return Err(Failure::BadData(format!("{}: bad syncUUID", e.dn)));
                            }
                        };
                        delivered += 1;
                        match state.state {
                            SyncStateKind::Delete => {
                                referrers.extend(
                                    sink.string_referrers(&anchor, None).map_err(sink_err)?,
                                );
                                sink.push(ImportChange::Delete(anchor)).map_err(sink_err)
                            }
                            SyncStateKind::Present => {
                                sink.push(ImportChange::Present(anchor)).map_err(sink_err)
                            }
                            SyncStateKind::Add | SyncStateKind::Modify
                                if mapper.class(&e).is_none() && is_container(&e) =>
                            {
                                if let Ok(dn) = Dn::parse(&e.dn) {
                                    containers.push(dn);
                                }
                                Ok(())
                            }
                            SyncStateKind::Add | SyncStateKind::Modify => match mapper.object(&e) {
                                Ok(Some(obj)) if scope.contains(&obj.dn) => {
                                    referrers.extend(
                                        sink.string_referrers(&anchor, Some(&obj.dn))
                                            .map_err(sink_err)?,
                                    );
                                    sink.push(ImportChange::Upsert(obj)).map_err(sink_err)
                                }
                                Ok(_) => sink.push(ImportChange::Delete(anchor)).map_err(sink_err),
                                Err(err) => {
                                    tracing::warn!(connector = name, "skipped: {}", err.0);
                                    Ok(())
                                }
                            },
                        }
                    }
                    Item::Intermediate(n, v) if n == controls::SYNC_INFO => {
                        match controls::parse_sync_info(&v) {
                            Some(SyncInfo::NewCookie(c)) => newest = Some(c),
                            Some(SyncInfo::RefreshDone { cookie, present }) => {
                                if present {
                                    present_phase = true;
                                }
                                if let Some(c) = cookie {
                                    newest = Some(c);
                                }
                            }
                            Some(SyncInfo::IdSet {
                                cookie,
                                deletes,
                                uuids,
                            }) => {
                                if let Some(c) = cookie {
                                    newest = Some(c);
                                }
                                if !deletes {
                                    present_phase = true;
                                }
                                for u in uuids {
                                    let Some(t) = uuid_text(&u) else { continue };
                                    let a = Anchor::new(t.into_bytes());
                                    delivered += 1;
                                    if deletes {
                                        referrers.extend(
                                            sink.string_referrers(&a, None).map_err(sink_err)?,
                                        );
                                    }
                                    let c = if deletes {
                                        ImportChange::Delete(a)
                                    } else {
                                        ImportChange::Present(a)
                                    };
                                    sink.push(c).map_err(sink_err)?;
                                }
                            }
                            None => {
                                return Err(Failure::BadData("malformed syncInfo message".into()));
                            }
                        }
                        Ok(())
                    }
                    Item::Intermediate(..) => Ok(()),
                },
            )
            .await
    };
    let done = match r {
        Ok(d) => d,
        Err(Failure::Refused { rc: 4096, .. }) => {
            tracing::warn!(
                connector = ctx.name,
                "the server wants a full refresh (e-syncRefreshRequired): full import"
            );
            return Ok(None);
        }
        Err(Failure::Refused { rc, text }) => {
            tracing::warn!(
                connector = ctx.name,
                "syncrepl refused the stored cookie ({} {rc}: {text}): full import",
                crate::connector::ldap::session::rc_name(rc)
            );
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let sync_done = done
        .controls
        .iter()
        .find(|c| c.ctype == controls::SYNC_DONE)
        .and_then(|c| c.val.as_deref())
        .and_then(controls::parse_sync_done)
        .unwrap_or_default();
    if let Some(c) = sync_done.cookie {
        newest = Some(c);
    }
    // The present phase names every unchanged entry; anything it did not name is gone.
    // With nothing delivered at all the server simply had no changes to report.
    let complete = present_phase && delivered > 0;
    // Present states name the children of a renamed container by UUID only: their DNs
    // come from reading them again either way.
    reread_subtrees(session, ctx, containers).await?;
    // slapd's refint overlay rewrites a renamed member's DN in its groups and drops a
    // deleted one, but leaves the groups' entryCSN as it was (seen on slapd 2.5), so
    // syncrepl never sends them: read again whatever named the old DN. Without refint
    // they come back unchanged, as the directory still holds the old DN.
    for dn in referrers {
        let attrs = ctx.attrs.clone();
        if let Some(e) = session.read(dn.as_str(), &attrs, Vec::new()).await? {
            push_entry(ctx, &e)?;
        }
    }
    Ok(Some((
        complete,
        Position::Syncrepl {
            cookie: newest.unwrap_or(cookie),
        },
    )))
}
