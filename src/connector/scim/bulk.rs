//! Creates in bulk (RFC 7644 §3.7): many POSTs in one request, within the operation and
//! payload limits the service publishes. Per-request costs dominate on many services, so
//! an initial provisioning goes several times faster. Anything whose fate a bulk answer
//! leaves open is done again one by one, looking first, so nothing is created twice.

use futures_util::stream::{self, StreamExt};
use hyper::Method;
use serde_json::{Value as Json, json};

use super::Client;
use super::create::{Create, add, created};
use super::export::refused;
use super::http::{HttpError, Retry};
use super::resource::Late;
use super::schema::Kind;
use crate::model::{ExportItem, ExportOutcome};

type Done = Result<(ExportOutcome, Vec<Late>), HttpError>;

/// Creates the prepared objects; one result per entry of `pending`, by item index.
pub async fn create_all(
    client: &Client,
    items: &[ExportItem],
    pending: Vec<(usize, Create)>,
) -> Vec<(usize, Done)> {
    let Some((max_ops, max_bytes)) = client.service.bulk else {
        return Vec::new();
    };
    let max_ops = max_ops.min(client.cfg.bulk_size).max(1);
    // Leave room for the envelope and each operation's own members.
    let budget = max_bytes.saturating_mul(9) / 10;
    let mut requests: Vec<Vec<(usize, Create)>> = Vec::new();
    let mut size = 0usize;
    for (i, c) in pending {
        let op_size = c.body.to_string().len() + 120;
        let full = requests
            .last()
            .is_none_or(|r| r.len() >= max_ops || size + op_size > budget);
        if full {
            requests.push(Vec::new());
            size = 0;
        }
        size += op_size;
        if let Some(last) = requests.last_mut() {
            last.push((i, c));
        }
    }
    let per_request: Vec<Vec<(usize, Done)>> = stream::iter(requests)
        .map(|ops| one_request(client, items, ops))
        .buffered(client.cfg.in_flight)
        .collect()
        .await;
    per_request.into_iter().flatten().collect()
}

async fn one_request(
    client: &Client,
    items: &[ExportItem],
    ops: Vec<(usize, Create)>,
) -> Vec<(usize, Done)> {
    let mut operations = Vec::with_capacity(ops.len());
    for (i, c) in &ops {
        let Ok(endpoint) = client.endpoint(c.kind) else {
            continue;
        };
        operations.push(json!({
            "method": "POST",
            "path": endpoint,
            "bulkId": bulk_id(*i),
            "data": c.body,
        }));
    }
    let request = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": operations,
    });
    let answer = client
        .http
        .call(Method::POST, "/Bulk", Some(&request), None, Retry::Create)
        .await;
    let results: Vec<Json> = match answer {
        Ok(reply) => serde_json::from_slice::<Json>(&reply.body)
            .ok()
            .and_then(|b| b.get("Operations").and_then(Json::as_array).cloned())
            .unwrap_or_default(),
        // A refusal of the whole request (too large, bulk switched off) or a lost answer:
        // each object goes again on its own, looking first.
        Err(e) => {
            tracing::warn!(
                "a bulk request of {} creates failed ({e}); sending them one by one",
                ops.len()
            );
            Vec::new()
        }
    };
    let mut out = Vec::with_capacity(ops.len());
    for (i, c) in ops {
        let item = &items[i];
        let result = results
            .iter()
            .find(|r| r.get("bulkId").and_then(Json::as_str) == Some(bulk_id(i).as_str()));
        let status = result
            .and_then(|r| r.get("status"))
            .and_then(|s| {
                s.as_str()
                    .map(str::to_string)
                    .or(s.as_u64().map(|n| n.to_string()))
            })
            .and_then(|s| s.parse::<u16>().ok());
        let done = match (status, result) {
            (Some(201), Some(r)) => match created_id(r) {
                Some(id) => {
                    let etag = r.get("version").and_then(Json::as_str).map(str::to_string);
                    created(client, item, c, id, etag.as_deref()).await
                }
                None => Ok((
                    refused(format!(
                        "{}: the bulk answer reports the create without a location",
                        item.dn
                    )),
                    Vec::new(),
                )),
            },
            // Refused for this object alone: a conflict is looked at one by one (the
            // message then names the object holding the value); other refusals stay.
            (Some(s), Some(r)) if (400..500).contains(&s) && s != 409 && s != 429 => {
                let detail = r
                    .get("response")
                    .and_then(|x| x.get("detail"))
                    .and_then(Json::as_str)
                    .unwrap_or("refused");
                let scim_type = r
                    .get("response")
                    .and_then(|x| x.get("scimType"))
                    .and_then(Json::as_str);
                let message = match scim_type {
                    Some(t) => format!("HTTP {s} ({t}): {detail}"),
                    None => format!("HTTP {s}: {detail}"),
                };
                Ok((refused(message), Vec::new()))
            }
            _ => match Kind::of_class(&item.object_class) {
                Some(kind) => add(client, kind, item, true).await,
                None => Ok((refused("not a User or Group".into()), Vec::new())),
            },
        };
        out.push((i, done));
    }
    out
}

fn bulk_id(i: usize) -> String {
    format!("item{i}")
}

/// The new resource's id: from the operation's location (`…/Users/<id>`), or its
/// response body.
fn created_id(r: &Json) -> Option<String> {
    r.get("location")
        .and_then(Json::as_str)
        .and_then(|l| l.trim_end_matches('/').rsplit('/').next())
        .or_else(|| {
            r.get("response")
                .and_then(|x| x.get("id"))
                .and_then(Json::as_str)
        })
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}
