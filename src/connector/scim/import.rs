//! Import: every User and Group, page by page (startIndex/count, RFC 7644 §3.4.2.4).
//! A first light pass learns each resource's id and externalId, so that member and manager
//! references become the DNs the connector space knows their targets by. A confirming
//! import reads back only the resources the export wrote.

use std::collections::HashMap;

use hyper::Method;
use serde_json::Value as Json;

use super::Client;
use super::http::{HttpError, Retry};
use super::resource::{dn_for, flatten};
use super::schema::Kind;
use crate::connector::ImportSink;
use crate::model::{Anchor, Dn, ImportChange, ImportedObject};

/// Why an import stopped.
pub enum ImportError {
    /// The service failed or refused.
    Http(HttpError),
    /// The store refused a change.
    Sink(String),
}

/// Reads one page: its resources and the total the service reports.
async fn page(
    client: &Client,
    endpoint: &str,
    start: u64,
    extra: &str,
) -> Result<(Vec<Json>, Option<u64>), HttpError> {
    let path = format!(
        "{endpoint}?startIndex={start}&count={}{extra}",
        client.cfg.page_size
    );
    let reply = client
        .http
        .call(Method::GET, &path, None, None, Retry::Idempotent)
        .await?;
    let body: Json = serde_json::from_slice(&reply.body).map_err(|e| HttpError::Status {
        status: reply.status,
        scim_type: None,
        detail: format!("GET {path}: the list response is not JSON: {e}"),
    })?;
    let total = body.get("totalResults").and_then(Json::as_u64);
    let resources = match body.get("Resources") {
        Some(Json::Array(a)) => a.clone(),
        None | Some(Json::Null) => Vec::new(),
        Some(_) => {
            return Err(HttpError::Status {
                status: reply.status,
                scim_type: None,
                detail: format!("GET {path}: Resources is not a list"),
            });
        }
    };
    Ok((resources, total))
}

/// Calls `f` for every resource of an endpoint, in pages.
async fn each(
    client: &Client,
    endpoint: &str,
    extra: &str,
    f: &mut dyn FnMut(Json) -> Result<(), ImportError>,
) -> Result<(), ImportError> {
    let mut start = 1u64;
    loop {
        let (resources, total) = page(client, endpoint, start, extra)
            .await
            .map_err(ImportError::Http)?;
        let n = resources.len() as u64;
        for r in resources {
            f(r)?;
        }
        start += n;
        // The service may cap count below what we asked for: go on until the total.
        let done = n == 0 || total.is_none_or(|t| start > t);
        if done {
            return Ok(());
        }
    }
}

fn id_of(r: &Json) -> Option<&str> {
    r.get("id").and_then(Json::as_str).filter(|s| !s.is_empty())
}

fn external_id(r: &Json) -> Option<&str> {
    r.get("externalId").and_then(Json::as_str)
}

/// Imports everything the service holds.
pub async fn import_all(client: &Client, sink: &mut dyn ImportSink) -> Result<(), ImportError> {
    let mut kinds = vec![Kind::User];
    if client.service.groups.is_some() {
        kinds.push(Kind::Group);
    }
    // Pass 1: id → DN for every resource, and the names soft match looks for.
    let mut dns: HashMap<String, Dn> = HashMap::new();
    client.with_index(|i| *i = super::Index::default());
    for kind in &kinds {
        let endpoint = client
            .endpoint(*kind)
            .map_err(|m| ImportError::Sink(m.to_string()))?
            .to_string();
        let name_attr = match kind {
            Kind::User => "userName",
            Kind::Group => "displayName",
        };
        let extra = format!("&attributes=externalId,{name_attr}");
        each(client, &endpoint, &extra, &mut |r| {
            if let Some(id) = id_of(&r) {
                let dn = dn_for(*kind, external_id(&r), id);
                client.remember(&dn, id);
                if let Some(name) = r.get(name_attr).and_then(Json::as_str) {
                    client.remember_name(*kind, name, id, external_id(&r));
                }
                dns.insert(id.to_string(), dn);
            }
            Ok(())
        })
        .await?;
    }
    // A reference to an id the first pass did not see (created meanwhile) still names it.
    let dn_of = |id: &str| {
        dns.get(id)
            .cloned()
            .unwrap_or_else(|| dn_for(Kind::User, None, id))
    };
    // Pass 2: the resources themselves.
    for kind in kinds {
        let endpoint = client
            .endpoint(kind)
            .map_err(|m| ImportError::Sink(m.to_string()))?
            .to_string();
        each(client, &endpoint, "", &mut |r| {
            let Some(id) = id_of(&r) else {
                tracing::warn!(
                    "{endpoint}: a resource without an id is skipped: {}",
                    r.to_string().chars().take(200).collect::<String>()
                );
                return Ok(());
            };
            let etag = r
                .get("meta")
                .and_then(|m| m.get("version"))
                .and_then(Json::as_str);
            client.set_etag(id, etag);
            let obj = ImportedObject {
                anchor: Anchor::new(id.as_bytes().to_vec()),
                dn: dn_for(kind, external_id(&r), id),
                object_class: kind.class().to_string(),
                attrs: flatten(&r, &dn_of),
            };
            sink.push(ImportChange::Upsert(obj))
                .map_err(ImportError::Sink)
        })
        .await?;
    }
    client.with_index(|i| i.complete = true);
    Ok(())
}

/// Reads back the resources an export wrote (one GET each) and delivers them; one gone
/// meanwhile is delivered as deleted. References name the DNs the connector space or the
/// client's index knows their targets by.
pub async fn read_back(
    client: &Client,
    written: &HashMap<String, Kind>,
    sink: &mut dyn ImportSink,
) -> Result<(), ImportError> {
    let mut ids: Vec<(&String, &Kind)> = written.iter().collect();
    ids.sort_by(|a, b| a.0.cmp(b.0));
    let indexed = client.dns_by_id();
    for (id, kind) in ids {
        let endpoint = client
            .endpoint(*kind)
            .map_err(|m| ImportError::Sink(m.to_string()))?;
        let path = format!("{endpoint}/{id}");
        let reply = match client
            .http
            .call(Method::GET, &path, None, None, Retry::Idempotent)
            .await
        {
            Ok(r) => r,
            Err(e) if e.status() == Some(404) => {
                sink.push(ImportChange::Delete(Anchor::new(id.as_bytes().to_vec())))
                    .map_err(ImportError::Sink)?;
                continue;
            }
            Err(e) => return Err(ImportError::Http(e)),
        };
        let r: Json = serde_json::from_slice(&reply.body).map_err(|e| {
            ImportError::Http(HttpError::Status {
                status: reply.status,
                scim_type: None,
                detail: format!("GET {path}: not JSON: {e}"),
            })
        })?;
        client.set_etag(id, reply.etag.as_deref());
        let mut known: HashMap<String, Dn> = HashMap::new();
        for other in referenced_ids(&r) {
            let dn = match indexed.get(&other).and_then(|d| Dn::parse(d).ok()) {
                Some(dn) => Some(dn),
                None => sink
                    .dn_of(&Anchor::new(other.as_bytes().to_vec()))
                    .map_err(ImportError::Sink)?,
            };
            if let Some(dn) = dn {
                known.insert(other, dn);
            }
        }
        let dn_of = |other: &str| {
            known
                .get(other)
                .cloned()
                .unwrap_or_else(|| dn_for(Kind::User, None, other))
        };
        let obj = ImportedObject {
            anchor: Anchor::new(id.as_bytes().to_vec()),
            dn: dn_for(*kind, external_id(&r), id),
            object_class: kind.class().to_string(),
            attrs: flatten(&r, &dn_of),
        };
        sink.push(ImportChange::Upsert(obj))
            .map_err(ImportError::Sink)?;
    }
    Ok(())
}

/// The ids a resource references: its members and its manager.
fn referenced_ids(r: &Json) -> Vec<String> {
    let mut out: Vec<String> = r
        .get("members")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("value").and_then(Json::as_str))
        .map(str::to_string)
        .collect();
    if let Some(m) = r
        .get(super::path::ENTERPRISE)
        .and_then(|e| e.get("manager"))
        .and_then(|m| m.get("value"))
        .and_then(Json::as_str)
    {
        out.push(m.to_string());
    }
    out
}
