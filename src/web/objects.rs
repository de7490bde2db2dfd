//! The object pages: search over the metaverse and connector spaces, and one object's
//! lineage (CS ↔ MV ↔ CS with each attribute's contributing connector and rule).

use aho_corasick::AhoCorasick;
use serde::Serialize;

use crate::model::{Anchor, CsId, MvId};
use crate::store::{ErrorRecord, MvRecord, ReadTx, StoreError};

/// A metaverse object in search results.
#[derive(Clone, Debug, Serialize)]
pub struct MvHit {
    /// Its id number.
    pub id: u64,
    /// person, group, contact, device.
    pub object_type: String,
    /// displayName or cn.
    pub name: String,
    /// mail, if any.
    pub mail: Option<String>,
    /// Deleted, waiting for deprovisioning.
    pub deleted: bool,
}

/// A connector-space object in search results.
#[derive(Clone, Debug, Serialize)]
pub struct CsHit {
    /// Its id number.
    pub id: u64,
    /// The connector.
    pub connector: String,
    /// Its DN (normalised).
    pub dn: String,
    /// The MV object it is linked to (None: a disconnector).
    pub mv: Option<u64>,
}

/// Search results.
#[derive(Clone, Debug, Serialize)]
pub struct SearchResult {
    /// The query.
    pub query: String,
    /// Matching metaverse objects.
    pub mv: Vec<MvHit>,
    /// Connector-space objects matching by DN or anchor.
    pub cs: Vec<CsHit>,
    /// More matched than shown.
    pub truncated: bool,
    /// Records looked at (index hits, scanned records, DNs and anchors).
    #[serde(skip)]
    pub checked: u64,
    /// The search gave up early because its client had gone.
    #[serde(skip)]
    pub abandoned: bool,
}

/// [`search`] for a request: it stops when the request's client goes, and the log says so
/// (the one sign, outside the process, that the work really stopped).
pub fn search_for(
    tx: &ReadTx,
    query: &str,
    limit: usize,
    gone: &super::http::Gone,
) -> Result<SearchResult, StoreError> {
    let r = search(tx, query, limit, &|| !gone.is_set())?;
    if r.abandoned {
        tracing::info!(
            target: "web",
            checked = r.checked,
            query_chars = query.chars().count(),
            "search stopped early: its client went away"
        );
    }
    Ok(r)
}

/// displayName, else cn.
pub fn display_name(rec: &MvRecord) -> String {
    rec.attrs
        .first_text("displayName")
        .or_else(|| rec.attrs.first_text("cn"))
        .unwrap_or_default()
}

/// Hex digits (with optional dashes, as GUIDs print) as bytes.
fn hex_bytes(q: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = q.bytes().filter(|b| *b != b'-').collect();
    if digits.len() < 8 || digits.len() % 2 != 0 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    digits
        .chunks(2)
        .map(|c| u8::from_str_radix(std::str::from_utf8(c).ok()?, 16).ok())
        .collect()
}

/// At most this many index hits are checked before the search stops looking.
const CANDIDATES: usize = 5_000;

/// Finds objects by name, mail, any attribute value, DN or anchor (case-insensitive).
/// Stops early, with what it found so far, as soon as `keep_going` says false (the
/// client has gone). Each record is compared once against the query, so the work is
/// linear in records times the (bounded) query length.
pub fn search(
    tx: &ReadTx,
    query: &str,
    limit: usize,
    keep_going: &dyn Fn() -> bool,
) -> Result<SearchResult, StoreError> {
    let q = query.trim().to_lowercase();
    let mut out = SearchResult {
        query: query.trim().to_string(),
        mv: Vec::new(),
        cs: Vec::new(),
        truncated: false,
        checked: 0,
        abandoned: false,
    };
    // Every place that polls the client also counts what it has looked at.
    let checked = std::cell::Cell::new(0u64);
    let abandoned = std::cell::Cell::new(false);
    let keep_going = || {
        let go = keep_going();
        if !go {
            abandoned.set(true);
        }
        go
    };
    if q.is_empty() {
        return Ok(out);
    }
    let matches = |rec: &MvRecord| {
        rec.attrs
            .iter()
            .flat_map(|(_, vs)| vs.iter())
            .any(|v| v.to_text().to_lowercase().contains(&q))
    };
    let take = |out: &mut SearchResult, id: MvId, rec: MvRecord| {
        if out.mv.len() >= limit {
            out.truncated = true;
            return false;
        }
        out.mv.push(MvHit {
            id: id.0,
            object_type: rec.object_type.to_string(),
            name: display_name(&rec),
            mail: rec.attrs.first_text("mail"),
            deleted: rec.deleted,
        });
        true
    };
    // The search index finds names, mail addresses and ids by the beginning of a word or
    // of the whole value: first the whole query, else its longest word.
    let mut candidates: Vec<MvId> = Vec::new();
    let mut seen: std::collections::HashSet<MvId> = std::collections::HashSet::new();
    let mut indexed = false;
    let longest = crate::store::search_words(&q)
        .into_iter()
        .max_by_key(|w| w.chars().count())
        .unwrap_or_default();
    for prefix in [q.as_str(), longest.as_str()] {
        if prefix.is_empty() || !candidates.is_empty() {
            continue;
        }
        indexed = tx.mv_by_prefix(prefix, &mut |id| {
            if seen.insert(id) {
                candidates.push(id);
            }
            candidates.len() < CANDIDATES && (candidates.len() % 256 != 1 || keep_going())
        })?;
    }
    candidates.sort();
    let mut found = false;
    for (i, id) in candidates.into_iter().enumerate() {
        checked.set(checked.get() + 1);
        if i % 256 == 0 && !keep_going() {
            out.truncated = true;
            out.checked = checked.get();
            out.abandoned = abandoned.get();
            return Ok(out);
        }
        if let Some(rec) = tx.mv(id)? {
            if matches(&rec) {
                found = true;
                if !take(&mut out, id, rec) {
                    break;
                }
            }
        }
    }
    if !found || !indexed {
        // Not the beginning of any indexed word: a scan over every record, comparing the
        // raw bytes with the query's longest ASCII run before decoding.
        let needle = q
            .split(|c: char| !c.is_ascii())
            .max_by_key(|s| s.len())
            .unwrap_or_default()
            .to_string();
        let finder = (needle.len() >= 2)
            .then(|| {
                AhoCorasick::builder()
                    .ascii_case_insensitive(true)
                    .build([needle.as_bytes()])
                    .ok()
            })
            .flatten();
        // The prefilter cannot stop the scan, so a gone client lets the next record through
        // to the callback, which can.
        let mut scanned = 0u64;
        let stopped = std::cell::Cell::new(false);
        tx.scan_mv(
            &mut |raw| {
                scanned += 1;
                checked.set(checked.get() + 1);
                if scanned % 1024 == 1 && !keep_going() {
                    stopped.set(true);
                }
                stopped.get() || finder.as_ref().is_none_or(|f| f.is_match(raw))
            },
            &mut |id, rec| {
                if stopped.get() {
                    out.truncated = true;
                    return Ok(false);
                }
                if matches(&rec) {
                    return Ok(take(&mut out, id, rec));
                }
                Ok(true)
            },
        )?;
    }
    // A DN query (it has an `=`) also looks through the connector spaces' DN index.
    let dn_like = q.contains('=');
    // Connector-space objects by DN (the index keys, no record decoded) ...
    let mut ids: Vec<(String, String, CsId)> = Vec::new();
    let mut scanned = 0u64;
    let mut go_on = || {
        scanned += 1;
        checked.set(checked.get() + 1);
        scanned % 1024 != 1 || keep_going()
    };
    if dn_like {
        tx.scan_cs_dns(&mut |conn, dn, id| {
            if !go_on() {
                out.truncated = true;
                return false;
            }
            if dn.contains(&q) {
                if ids.len() >= limit {
                    out.truncated = true;
                    return false;
                }
                ids.push((conn.to_string(), dn.to_string(), id));
            }
            true
        })?;
    }
    // ... and by anchor, when the query looks like one (hex digits with optional dashes:
    // objectGUID and entryUUID both print so).
    let hex = hex_bytes(&q);
    let looks_like_anchor = hex.is_some();
    if looks_like_anchor && ids.len() < limit {
        tx.scan_anchors(&mut |conn, anchor, id| {
            if !go_on() {
                out.truncated = true;
                return false;
            }
            let text_hit = Anchor::new(anchor).to_string().to_lowercase().contains(&q);
            let hex_hit = hex
                .as_ref()
                .is_some_and(|h| anchor.windows(h.len()).any(|w| w == h.as_slice()));
            if (text_hit || hex_hit) && !ids.iter().any(|(_, _, i)| *i == id) {
                if ids.len() >= limit {
                    out.truncated = true;
                    return false;
                }
                ids.push((conn.to_string(), String::new(), id));
            }
            true
        })?;
    }
    for (connector, dn, id) in ids {
        let dn = if dn.is_empty() {
            tx.cs(id)?.map(|r| r.dn.to_string()).unwrap_or_default()
        } else {
            dn
        };
        out.cs.push(CsHit {
            id: id.0,
            connector,
            dn,
            mv: tx.link_of(id)?.map(|m| m.0),
        });
    }
    out.checked = checked.get();
    out.abandoned = abandoned.get();
    Ok(out)
}

/// One attribute with where it came from.
#[derive(Clone, Debug, Serialize)]
pub struct AttrView {
    /// The attribute.
    pub name: String,
    /// Its values as text.
    pub values: Vec<String>,
    /// The contributing connector (MV attributes).
    pub connector: Option<String>,
    /// The contributing inbound rule.
    pub rule: Option<String>,
    /// That rule's precedence.
    pub precedence: Option<u32>,
}

/// A pending export.
#[derive(Clone, Debug, Serialize)]
pub struct PendingView {
    /// Add, Update or Delete.
    pub kind: String,
    /// Rename target.
    pub new_dn: Option<String>,
    /// Attribute changes as text.
    pub changes: Vec<String>,
    /// The outbound rule.
    pub rule: String,
}

/// A connector-space object with everything it holds.
#[derive(Clone, Debug, Serialize)]
pub struct CsView {
    /// Its id number.
    pub id: u64,
    /// The connector.
    pub connector: String,
    /// Its DN.
    pub dn: String,
    /// Its anchor as text (None: not exported yet).
    pub anchor: Option<String>,
    /// Structural class.
    pub object_class: String,
    /// Deleted in the directory, waiting for sync.
    pub deleted: bool,
    /// The MV object it is linked to.
    pub mv: Option<u64>,
    /// Created by provisioning (rather than joined or projected).
    pub provisioned: bool,
    /// The hologram.
    pub attributes: Vec<AttrView>,
    /// Its pending export.
    pub pending: Option<PendingView>,
    /// Its error.
    pub error: Option<ErrorRecord>,
    /// References waiting for their object: (attribute, DN).
    pub unresolved: Vec<(String, String)>,
}

/// A metaverse object with its lineage.
#[derive(Clone, Debug, Serialize)]
pub struct MvView {
    /// Its id number.
    pub id: u64,
    /// Its type.
    pub object_type: String,
    /// displayName or cn.
    pub name: String,
    /// Waiting for deprovisioning.
    pub deleted: bool,
    /// Every attribute with its contributing connector and rule.
    pub attributes: Vec<AttrView>,
    /// Its error.
    pub error: Option<ErrorRecord>,
    /// The linked connector-space objects.
    pub links: Vec<CsView>,
}

/// One connector-space object.
pub fn cs_view(tx: &ReadTx, id: CsId) -> Result<Option<CsView>, StoreError> {
    let Some(rec) = tx.cs(id)? else {
        return Ok(None);
    };
    let link = tx.link_with_kind(id)?;
    Ok(Some(CsView {
        id: id.0,
        connector: rec.connector.clone(),
        dn: rec.dn.to_string(),
        anchor: rec
            .anchor
            .as_ref()
            .map(|a| Anchor::new(a.clone()).to_string()),
        object_class: rec.object_class.clone(),
        deleted: rec.deleted,
        mv: link.map(|(m, _)| m.0),
        provisioned: link.is_some_and(|(_, p)| p),
        attributes: rec
            .attrs
            .iter()
            .map(|(n, vs)| AttrView {
                name: n.to_string(),
                values: vs.iter().map(|v| v.to_text()).collect(),
                connector: None,
                rule: None,
                precedence: None,
            })
            .collect(),
        pending: rec.export.as_ref().map(|e| PendingView {
            kind: format!("{:?}", e.kind),
            new_dn: e.new_dn.as_ref().map(|d| d.to_string()),
            changes: e.changes.iter().map(|c| c.summary(20)).collect(),
            rule: e.rule.clone(),
        }),
        error: rec.error.clone(),
        unresolved: rec.unresolved.clone(),
    }))
}

/// One metaverse object with every linked connector-space object.
pub fn mv_view(tx: &ReadTx, id: MvId) -> Result<Option<MvView>, StoreError> {
    let Some(rec) = tx.mv(id)? else {
        return Ok(None);
    };
    let attributes = rec
        .attrs
        .iter()
        .map(|(n, vs)| {
            let from = rec.contributor(n.key());
            AttrView {
                name: n.to_string(),
                values: vs.iter().map(|v| v.to_text()).collect(),
                connector: from.map(|c| c.connector.to_string()),
                rule: from.map(|c| c.rule.clone()),
                precedence: from.map(|c| c.precedence),
            }
        })
        .collect();
    let mut links = Vec::new();
    for cs in tx.links_of(id)? {
        links.extend(cs_view(tx, cs)?);
    }
    // Sources (joined, projected) first, then provisioned targets: CS → MV → CS.
    links.sort_by_key(|l| (l.provisioned, l.connector.clone(), l.id));
    Ok(Some(MvView {
        id: id.0,
        object_type: rec.object_type.to_string(),
        name: display_name(&rec),
        deleted: rec.deleted,
        attributes,
        error: rec.error.clone(),
        links,
    }))
}
