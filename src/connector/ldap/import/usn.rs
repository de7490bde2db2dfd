//! AD uSNChanged polling, for accounts without DirSync rights and for DCs that refuse it:
//! changed objects read whole, objects that left the scope and tombstones as deletes. The
//! position is only valid on the same DC with the same invocationId.

use std::collections::HashSet;

use super::{
    Ctx, Position, container_filter, full_read_only, push_entry, read_all, reread_subtrees,
    sink_err,
};
use crate::connector::ldap::controls;
use crate::connector::ldap::entry::split_extended;
use crate::connector::ldap::session::{Failure, Search, Session};
use crate::model::{Anchor, Dn, ImportChange};

pub(super) async fn usn_position(session: &mut Session) -> Result<Position, Failure> {
    let root = session
        .read(
            "",
            &["highestCommittedUSN".into(), "dsServiceName".into()],
            Vec::new(),
        )
        .await?
        .ok_or_else(|| Failure::BadData("no rootDSE".into()))?;
    let usn: u64 = root
        .text("highestCommittedUSN")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Failure::BadData("rootDSE has no highestCommittedUSN".into()))?;
    let service = root
        .text("dsServiceName")
        .ok_or_else(|| Failure::BadData("rootDSE has no dsServiceName".into()))?;
    // Asked with the extended-DN control, AD prefixes the GUID; the position keeps the DN.
    let service = match split_extended(&service) {
        Some((_, plain)) => plain.to_string(),
        None => service,
    };
    let ntds = session
        .read(&service, &["invocationId".into()], Vec::new())
        .await?
        .ok_or_else(|| Failure::BadData(format!("cannot read {service}")))?;
    let invocation = ntds
        .values("invocationId")
        .first()
        .cloned()
        .ok_or_else(|| Failure::BadData(format!("{service} has no invocationId")))?;
    Ok(Position::Usn {
        service,
        invocation,
        usn,
    })
}

pub(super) async fn usn_delta(
    session: &mut Session,
    ctx: &mut Ctx<'_>,
    service: String,
    invocation: Vec<u8>,
    usn: u64,
) -> Result<Option<(bool, Position)>, Failure> {
    let now = usn_position(session).await?;
    let Position::Usn {
        service: now_service,
        invocation: now_invocation,
        ..
    } = &now
    else {
        return Ok(None);
    };
    if *now_service != service || *now_invocation != invocation {
        tracing::warn!(
            connector = ctx.name,
            "another domain controller (or a restored one) answers: its USNs mean nothing to \
             the stored position; full import"
        );
        return Ok(None);
    }
    // Membership changes bump the group's USN, not the members': when the filter group
    // changed, the whole scope is read again.
    if let Some((g, _)) = &ctx.scope.group {
        let changed = session
            .read(g.as_str(), &["uSNChanged".into()], Vec::new())
            .await?
            .and_then(|e| e.text("uSNChanged"))
            .and_then(|v| v.parse::<u64>().ok())
            .is_none_or(|v| v > usn);
        if changed {
            tracing::info!(
                connector = ctx.name,
                "the filter group changed: reading the whole scope again"
            );
            full_read_only(session, ctx).await?;
            return Ok(Some((true, now)));
        }
    }
    let since = format!("(uSNChanged>={})", usn + 1);
    let filter = format!("(&{}{since})", ctx.scope.full_filter());
    let attrs = ctx.attrs.clone();
    let mut taken: HashSet<Vec<u8>> = HashSet::new();
    read_all(session, ctx, &filter, &attrs, |ctx, e| {
        if let Some(a) = push_entry(ctx, e)? {
            taken.insert(a.as_bytes().to_vec());
        }
        Ok(())
    })
    .await?;
    // Changed objects the full filter no longer takes (or that moved out of the OUs) are
    // out of scope now.
    let base = ctx.cfg.base_dn.as_str().to_string();
    let out = Search {
        base: base.clone(),
        subtree: true,
        filter: format!("(&{}{since})", ctx.scope.class_filter()),
        attrs: vec!["objectGUID".into()],
        controls: Vec::new(),
    };
    let mut gone = Vec::new();
    let mut cookie = Vec::new();
    loop {
        let (entries, next) = session.page(&out, ctx.cfg.page_size, &cookie).await?;
        for e in entries {
            if let Some(g) = e.values("objectGUID").first() {
                if !taken.contains(g) {
                    gone.push(g.clone());
                }
            }
        }
        if next.is_empty() {
            break;
        }
        cookie = next;
    }
    // Tombstones.
    let tomb = Search {
        base,
        subtree: true,
        filter: format!("(&(isDeleted=TRUE){since})"),
        attrs: vec!["objectGUID".into()],
        controls: vec![controls::show_deleted()],
    };
    let mut tombs = Vec::new();
    let mut cookie = Vec::new();
    loop {
        let (entries, next) = session.page(&tomb, ctx.cfg.page_size, &cookie).await?;
        for e in entries {
            if let Some(g) = e.values("objectGUID").first() {
                tombs.push(g.clone());
            }
        }
        if next.is_empty() {
            break;
        }
        cookie = next;
    }
    for g in gone {
        ctx.sink
            .push(ImportChange::Delete(Anchor::new(g)))
            .map_err(sink_err)?;
    }
    for g in tombs {
        ctx.sink
            .push(ImportChange::Tombstone(Anchor::new(g)))
            .map_err(sink_err)?;
    }
    // A renamed or moved container changes its own USN only, not its children's.
    let changed = Search {
        base: ctx.cfg.base_dn.as_str().to_string(),
        subtree: true,
        filter: format!("(&{}{since})", container_filter()),
        attrs: vec!["1.1".into()],
        controls: Vec::new(),
    };
    let mut containers = Vec::new();
    let mut cookie = Vec::new();
    loop {
        let (entries, next) = session.page(&changed, ctx.cfg.page_size, &cookie).await?;
        containers.extend(entries.iter().filter_map(|e| Dn::parse(&e.dn).ok()));
        if next.is_empty() {
            break;
        }
        cookie = next;
    }
    reread_subtrees(session, ctx, containers).await?;
    Ok(Some((false, now)))
}
