//! Imports: full (paged, ranged, bounded memory) and delta (AD DirSync or uSNChanged
//! polling; LDAP syncrepl refreshOnly or modifyTimestamp polling). The delta position is
//! taken *before* a full read, so a change made during the read is seen again, never
//! missed. A position that is lost, refused or made for other scope settings falls back
//! to a full import with a log line saying why.

mod dirsync;
mod syncrepl;
mod timestamp;
mod usn;

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::entry::{RawEntry, split_extended};
use super::session::{Failure, Search, Session};
use super::{LdapConnector, Mapper, Scope};
use crate::config::{DeltaMethod, LdapConfig, LdapFlavor};
use crate::connector::{ConnectorError, ImportEnd, ImportSink};
use crate::model::{Anchor, Dn, ImportChange, Watermark};
use dirsync::{dirsync_delta, dirsync_position};
use syncrepl::{syncrepl_delta, syncrepl_position};
use timestamp::{timestamp_delta, timestamp_position};
use usn::{usn_delta, usn_position};

/// 2: AD links are read with the extended-DN control and held by anchor, and deltas follow
/// container renames; a position of version 1 leads to one full import, which re-reads
/// every hologram that way.
const MARK_VERSION: u8 = 2;

/// The watermark as stored: the scope it was taken for and the delta position.
#[derive(Serialize, Deserialize, Debug)]
struct Mark {
    version: u8,
    scope: u64,
    position: Position,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
enum Position {
    DirSync {
        flags: u32,
        cookie: Vec<u8>,
    },
    Usn {
        service: String,
        invocation: Vec<u8>,
        usn: u64,
    },
    Syncrepl {
        cookie: Vec<u8>,
    },
    Timestamp {
        since: String,
    },
    None,
}

fn encode(scope: u64, position: Position) -> Watermark {
    let m = Mark {
        version: MARK_VERSION,
        scope,
        position,
    };
    Watermark(postcard::to_stdvec(&m).unwrap_or_default())
}

fn sink_err(e: String) -> Failure {
    Failure::BadData(format!("the state file refused the import: {e}"))
}

struct Ctx<'a> {
    cfg: &'a LdapConfig,
    mapper: &'a Mapper,
    scope: &'a Scope,
    sink: &'a mut dyn ImportSink,
    attrs: Vec<String>,
    name: &'a str,
}

impl LdapConnector {
    pub(super) async fn import_async(
        &mut self,
        watermark: Option<&Watermark>,
        full: bool,
        sink: &mut dyn ImportSink,
    ) -> Result<ImportEnd, ConnectorError> {
        let session = match Self::session(&mut self.session, &self.cfg).await {
            Ok(s) => s,
            Err(f) => {
                let e = self.fail(f);
                return Err(e);
            }
        };
        // The filter group's members decide scope for every object: read them first.
        if let Some((g, members)) = &mut self.scope.group {
            let list = read_members(session, g, self.cfg.range_size).await;
            match list {
                Ok(m) => *members = m,
                Err(f) => {
                    let e = Failure::BadData(format!("filter group {g}: {f}"));
                    return Err(super::connector_error(&self.name, &self.cfg.url, e));
                }
            }
        }
        let fingerprint = self.scope.fingerprint();
        let mut ctx = Ctx {
            cfg: &self.cfg,
            mapper: &self.mapper,
            scope: &self.scope,
            sink,
            attrs: attr_list(&self.cfg, &self.mapper),
            name: self.name.as_str(),
        };
        let previous = match (full, watermark) {
            (true, _) | (_, None) => None,
            (false, Some(w)) => match postcard::from_bytes::<Mark>(&w.0) {
                Ok(m) if m.version == MARK_VERSION && m.scope == fingerprint => Some(m.position),
                Ok(m) if m.version == MARK_VERSION => {
                    tracing::info!(
                        connector = ctx.name,
                        "scope settings changed since the last import: full import"
                    );
                    None
                }
                Ok(m) if m.version < MARK_VERSION => {
                    tracing::info!(
                        connector = ctx.name,
                        "the stored delta position is from an older release: full import"
                    );
                    None
                }
                _ => {
                    tracing::warn!(
                        connector = ctx.name,
                        "the stored delta position is unreadable: full import"
                    );
                    None
                }
            },
        };
        let r = match previous {
            Some(p) if !matches!(p, Position::None) => match delta(session, &mut ctx, p).await {
                Ok(Some((end, pos))) => Ok(ImportEnd {
                    watermark: Some(encode(fingerprint, pos)),
                    complete: end,
                }),
                Ok(None) => full_import(session, &mut ctx).await.map(|pos| ImportEnd {
                    watermark: Some(encode(fingerprint, pos)),
                    complete: true,
                }),
                Err(e) => Err(e),
            },
            _ => full_import(session, &mut ctx).await.map(|pos| ImportEnd {
                watermark: Some(encode(fingerprint, pos)),
                complete: true,
            }),
        };
        r.map_err(|f| super::connector_error(&self.name, &self.cfg.url, f))
    }
}

impl LdapConnector {
    /// Reads the one object at `which.dn` with a base-scope search under the configured
    /// scope filter, and pushes it as a full import would.
    pub(in crate::connector::ldap) async fn import_one_async(
        &mut self,
        which: &crate::connector::OneObject,
        sink: &mut dyn ImportSink,
    ) -> Result<bool, ConnectorError> {
        let session = match Self::session(&mut self.session, &self.cfg).await {
            Ok(s) => s,
            Err(f) => return Err(self.fail(f)),
        };
        if let Some((g, members)) = &mut self.scope.group {
            match read_members(session, g, self.cfg.range_size).await {
                Ok(m) => *members = m,
                Err(f) => {
                    let e = Failure::BadData(format!("filter group {g}: {f}"));
                    return Err(super::connector_error(&self.name, &self.cfg.url, e));
                }
            }
        }
        let mut ctx = Ctx {
            cfg: &self.cfg,
            mapper: &self.mapper,
            scope: &self.scope,
            sink,
            attrs: attr_list(&self.cfg, &self.mapper),
            name: self.name.as_str(),
        };
        let s = Search {
            base: which.dn.as_str().to_string(),
            subtree: false,
            filter: ctx.scope.full_filter(),
            attrs: ctx.attrs.clone(),
            controls: Vec::new(),
        };
        let r = async {
            let (mut entries, _) = match session.page(&s, 1, &[]).await {
                Ok(found) => found,
                // noSuchObject: the directory has nothing at that DN.
                Err(Failure::Refused { rc: 32, .. }) => return Ok(false),
                Err(f) => return Err(f),
            };
            let Some(e) = entries.first_mut() else {
                // There, but outside the scope filter: as a full import, it is not seen.
                return Ok(false);
            };
            session.complete_ranges(e, ctx.cfg.range_size).await?;
            Ok(push_entry(&mut ctx, e)?.is_some())
        }
        .await;
        r.map_err(|f| super::connector_error(&self.name, &self.cfg.url, f))
    }
}

/// The attributes every search asks for.
fn attr_list(cfg: &LdapConfig, mapper: &Mapper) -> Vec<String> {
    let mut attrs: Vec<String> = if cfg.attributes.is_empty() {
        vec!["*".into()]
    } else {
        cfg.attributes
            .iter()
            .map(|a| a.as_str().to_string())
            .collect()
    };
    attrs.push("objectClass".into());
    attrs.push(mapper.anchor_attr().into());
    if cfg.flavor == LdapFlavor::Ldap {
        attrs.push("structuralObjectClass".into());
    }
    if let Some(n) = cfg.range_size {
        // Ask for linked attributes in ranges, as Windows answers by itself past 1,500.
        for a in &cfg.reference_attributes {
            if a.is("member") || a.is("uniqueMember") {
                attrs.push(format!("{};range=0-{}", a.as_str(), n - 1));
            }
        }
    }
    attrs
}

/// The direct members of a group (normalised DNs).
async fn read_members(
    session: &mut Session,
    group: &Dn,
    range: Option<u32>,
) -> Result<HashSet<String>, Failure> {
    let want = match range {
        Some(n) => vec![format!("member;range=0-{}", n - 1), "uniqueMember".into()],
        None => vec!["member".into(), "uniqueMember".into()],
    };
    let mut e = session
        .read(group.as_str(), &want, Vec::new())
        .await?
        .ok_or_else(|| Failure::BadData("no such group".into()))?;
    session.complete_ranges(&mut e, range).await?;
    let mut out = HashSet::new();
    for a in &e.attrs {
        for v in &a.values {
            // AD answers extended DNs (`<GUID=…>;…;DN`); scope compares the plain DN.
            let text = std::str::from_utf8(v)
                .ok()
                .map(|s| split_extended(s).map_or(s, |(_, plain)| plain));
            if let Some(dn) = text.and_then(|s| Dn::parse(s).ok()) {
                out.insert(dn.norm().to_string());
            }
        }
    }
    Ok(out)
}

/// Pushes one whole entry: Upsert when in scope, Delete when it has left it.
fn push_entry(ctx: &mut Ctx<'_>, e: &RawEntry) -> Result<Option<Anchor>, Failure> {
    let obj = match ctx.mapper.object(e) {
        Ok(Some(o)) => o,
        Ok(None) => return Ok(None),
        Err(err) => {
            // One odd entry is reported and skipped; the rest of the import goes on.
            tracing::warn!(connector = ctx.name, "skipped: {}", err.0);
            return Ok(None);
        }
    };
    let anchor = obj.anchor.clone();
    if ctx.scope.contains(&obj.dn) {
        ctx.sink.push(ImportChange::Upsert(obj)).map_err(sink_err)?;
    } else {
        ctx.sink
            .push(ImportChange::Delete(anchor.clone()))
            .map_err(sink_err)?;
    }
    Ok(Some(anchor))
}

/// Reads every in-scope object page by page.
async fn read_all(
    session: &mut Session,
    ctx: &mut Ctx<'_>,
    filter: &str,
    attrs: &[String],
    mut on_entry: impl FnMut(&mut Ctx<'_>, &RawEntry) -> Result<(), Failure>,
) -> Result<(), Failure> {
    for base in ctx.scope.bases() {
        read_under(session, ctx, &base, filter, attrs, &mut on_entry).await?;
    }
    Ok(())
}

/// Reads the subtree under `base` page by page, ranged values completed.
async fn read_under(
    session: &mut Session,
    ctx: &mut Ctx<'_>,
    base: &Dn,
    filter: &str,
    attrs: &[String],
    on_entry: &mut impl FnMut(&mut Ctx<'_>, &RawEntry) -> Result<(), Failure>,
) -> Result<(), Failure> {
    let s = Search {
        base: base.as_str().to_string(),
        subtree: true,
        filter: filter.to_string(),
        attrs: attrs.to_vec(),
        controls: Vec::new(),
    };
    let mut cookie = Vec::new();
    loop {
        let (mut entries, next) = session.page(&s, ctx.cfg.page_size, &cookie).await?;
        for e in &mut entries {
            session.complete_ranges(e, ctx.cfg.range_size).await?;
            on_entry(ctx, e)?;
        }
        if next.is_empty() {
            break;
        }
        cookie = next;
    }
    Ok(())
}

/// Object classes of the containers whose renames and moves a delta looks for.
const CONTAINER_CLASSES: &[&str] = &[
    "organizationalUnit",
    "container",
    "organization",
    "domain",
    "dcObject",
];

/// `(|(objectClass=organizationalUnit)…)`: the containers a delta also asks about.
fn container_filter() -> String {
    let mut f = String::from("(|");
    for c in CONTAINER_CLASSES {
        f.push_str(&format!("(objectClass={c})"));
    }
    f.push(')');
    f
}

/// Whether an entry that lists its classes is a container rather than an imported object.
fn is_container(e: &RawEntry) -> bool {
    e.values("objectClass").iter().any(|v| {
        CONTAINER_CLASSES
            .iter()
            .any(|c| v.eq_ignore_ascii_case(c.as_bytes()))
    })
}

/// Reads again every imported object under containers a delta reported changed. A renamed
/// or moved OU changes the DN of everything below it, and neither DirSync nor syncrepl
/// reports the children (seen on Samba 4.17 and slapd 2.5: only the OU arrives), so their
/// connector-space DNs would stay stale; read whole, they arrive as moves by anchor, and
/// those now outside the configured OUs as deletes.
async fn reread_subtrees(
    session: &mut Session,
    ctx: &mut Ctx<'_>,
    mut containers: Vec<Dn>,
) -> Result<(), Failure> {
    containers.sort_by_key(Dn::depth);
    let mut roots: Vec<Dn> = Vec::new();
    for c in containers {
        // The base entry itself cannot have been renamed (the configured base names it):
        // a change there is an attribute change.
        let inside_base = c.is_within(&ctx.cfg.base_dn) && c != ctx.cfg.base_dn;
        if inside_base && !roots.iter().any(|r| c.is_within(r)) {
            roots.push(c);
        }
    }
    let filter = ctx.scope.full_filter();
    let attrs = ctx.attrs.clone();
    for root in roots {
        tracing::info!(
            connector = ctx.name,
            container = %root,
            "a container changed: reading the objects under it again"
        );
        read_under(session, ctx, &root, &filter, &attrs, &mut |ctx, e| {
            push_entry(ctx, e).map(|_| ())
        })
        .await?;
    }
    Ok(())
}

async fn full_import(session: &mut Session, ctx: &mut Ctx<'_>) -> Result<Position, Failure> {
    let position = take_position(session, ctx).await?;
    let filter = ctx.scope.full_filter();
    let attrs = ctx.attrs.clone();
    let mut n = 0u64;
    read_all(session, ctx, &filter, &attrs, |ctx, e| {
        n += 1;
        push_entry(ctx, e).map(|_| ())
    })
    .await?;
    tracing::info!(connector = ctx.name, entries = n, "full import read");
    Ok(position)
}

/// The current delta position, read before a full import.
async fn take_position(session: &mut Session, ctx: &mut Ctx<'_>) -> Result<Position, Failure> {
    match (ctx.cfg.flavor, ctx.cfg.delta) {
        (_, DeltaMethod::None) => Ok(Position::None),
        (LdapFlavor::Ad, DeltaMethod::Usn) => usn_position(session).await,
        (LdapFlavor::Ad, _) => match dirsync_position(session, ctx).await {
            Ok(p) => Ok(p),
            Err(f) if ctx.cfg.delta == DeltaMethod::Auto && !session.cut() => {
                tracing::warn!(
                    connector = ctx.name,
                    "DirSync refused ({f}); using uSNChanged polling"
                );
                usn_position(session).await
            }
            Err(f) => Err(f),
        },
        (LdapFlavor::Ldap, DeltaMethod::Timestamp) => Ok(timestamp_position()),
        (LdapFlavor::Ldap, _) => match syncrepl_position(session, ctx).await {
            Ok(p) => Ok(p),
            Err(f) if ctx.cfg.delta == DeltaMethod::Auto && !session.cut() => {
                tracing::info!(
                    connector = ctx.name,
                    "no syncrepl here ({f}); using modifyTimestamp polling"
                );
                Ok(timestamp_position())
            }
            Err(f) => Err(f),
        },
    }
}

/// Runs a delta; None means "cannot, do a full import" (already logged). The bool says
/// whether the delta was a complete snapshot.
async fn delta(
    session: &mut Session,
    ctx: &mut Ctx<'_>,
    p: Position,
) -> Result<Option<(bool, Position)>, Failure> {
    match p {
        Position::DirSync { flags, cookie } => dirsync_delta(session, ctx, flags, cookie).await,
        Position::Usn {
            service,
            invocation,
            usn,
        } => usn_delta(session, ctx, service, invocation, usn).await,
        Position::Syncrepl { cookie } => syncrepl_delta(session, ctx, cookie).await,
        Position::Timestamp { since } => timestamp_delta(session, ctx, since).await.map(Some),
        Position::None => Ok(None),
    }
}

/// A full read without taking a new position (the caller keeps its own).
async fn full_read_only(session: &mut Session, ctx: &mut Ctx<'_>) -> Result<(), Failure> {
    let filter = ctx.scope.full_filter();
    let attrs = ctx.attrs.clone();
    read_all(session, ctx, &filter, &attrs, |ctx, e| {
        push_entry(ctx, e).map(|_| ())
    })
    .await
}
