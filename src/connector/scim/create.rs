//! Creates: a soft match first (externalId, then userName or displayName), taking over
//! what it finds; then the create, one by one or in bulk (`bulk.rs`); then what had to
//! wait for the new object (members beyond the first chunk, references to objects created
//! in the same batch).

use hyper::Method;
use serde_json::Value as Json;

use super::export::{applied, find, refused, resolve, unservable, update};
use super::http::{HttpError, Reply, Retry};
use super::late::send_late;
use super::resource::{self, DnKey, Late, create_body, dn_key, referenced_dns};
use super::schema::Kind;
use super::{Client, Lookup};
use crate::model::{
    AttrChange, AttrName, Attributes, ChangeOp, ExportItem, ExportOutcome, Value, ValueSet,
};

/// What a soft match found for an object about to be created.
enum Match {
    /// Nothing: create it.
    None,
    /// This resource is the object: take it over.
    Existing(String),
    /// The natural key is held by a resource that belongs to another object.
    Taken(String),
}

/// Soft match (as Entra ID does it): externalId first, then userName (users) or
/// displayName (groups). From the import's index, or from the service when the index
/// cannot tell or `ask` says to.
async fn soft_match(
    client: &Client,
    kind: Kind,
    external_id: &str,
    attrs: &Attributes,
    ask: bool,
) -> Result<Match, HttpError> {
    let dn = resource::dn_for(kind, Some(external_id), "");
    let by_ext = match client.lookup_dn(&dn) {
        Lookup::Found(id) if !ask => Some(id),
        Lookup::Absent if !ask => None,
        _ => find(client, kind, "externalId", external_id)
            .await?
            .map(|(id, _)| id),
    };
    if let Some(id) = by_ext {
        return Ok(Match::Existing(id));
    }
    let key = match kind {
        Kind::User => "userName",
        Kind::Group => "displayName",
    };
    let Some(value) = attrs.first_text(key) else {
        return Ok(Match::None);
    };
    let holder = match client.lookup_name(kind, &value) {
        Lookup::Found(found) if !ask => Some(found),
        Lookup::Absent if !ask => None,
        _ => find(client, kind, key, &value).await?.map(|(id, r)| {
            let ext = r
                .get("externalId")
                .and_then(Json::as_str)
                .map(str::to_string);
            (id, ext)
        }),
    };
    match holder {
        None => Ok(Match::None),
        Some((id, Some(other))) if !other.is_empty() && other != external_id => {
            Ok(Match::Taken(format!(
                "{key} {value:?} is already held by {id} (externalId {other:?}), another object; \
                 not creating a duplicate"
            )))
        }
        Some((id, _)) => Ok(Match::Existing(id)),
    }
}

/// A create, prepared: the body to POST and what to send once the object exists.
pub(super) struct Create {
    /// User or Group.
    pub kind: Kind,
    external_id: String,
    attrs: Attributes,
    /// The resource body.
    pub body: Json,
    later: Vec<Late>,
}

/// What preparing an add came to.
pub(super) enum Prepared {
    /// Settled without a create: taken over (soft match) or refused.
    Done(ExportOutcome, Vec<Late>),
    /// To be created.
    Create(Create),
}

/// Checks an add and soft-matches it (from the index, or from the service when `ask`);
/// a match is taken over here.
pub(super) async fn prepare_add(
    client: &Client,
    kind: Kind,
    item: &ExportItem,
    ask: bool,
) -> Result<Prepared, HttpError> {
    let external_id = match dn_key(&item.dn) {
        Some((k, DnKey::ExternalId(x))) if k == kind => x,
        _ => {
            return Ok(Prepared::Done(
                refused(format!(
                    "{}: a scim connector's objects are named externalId=<sourceAnchor>,ou={} \
                     (set the outbound rule's dn so)",
                    item.dn,
                    kind.ou()
                )),
                Vec::new(),
            ));
        }
    };
    let mut attrs = item.add_attributes();
    if attrs.get("externalId").is_none() {
        attrs.set(
            AttrName::new("externalId"),
            ValueSet::one(Value::String(external_id.clone())),
        );
    }
    let ids = resolve(client, &referenced_dns(&item.changes)).await?;
    match soft_match(client, kind, &external_id, &attrs, ask).await? {
        Match::Taken(m) => return Ok(Prepared::Done(refused(m), Vec::new())),
        Match::Existing(id) => {
            if !ask {
                tracing::info!(
                    "{}: soft-matched to existing {} {id}",
                    item.dn,
                    kind.class()
                );
            }
            client.remember(&item.dn, &id);
            let changes: Vec<AttrChange> = attrs
                .iter()
                .map(|(n, v)| AttrChange {
                    attr: n.clone(),
                    op: ChangeOp::Replace(v.clone()),
                })
                .collect();
            let (outcome, late) = match update(client, kind, &id, &changes).await? {
                (ExportOutcome::Applied { .. }, late) => (applied(Some(id)), late),
                other => other,
            };
            return Ok(Prepared::Done(outcome, late));
        }
        Match::None => {}
    }
    match create_body(kind, &attrs, &client.service, &ids, client.cfg.member_chunk) {
        Ok((body, later)) => Ok(Prepared::Create(Create {
            kind,
            external_id,
            attrs,
            body,
            later,
        })),
        Err(m) => Ok(Prepared::Done(refused(m), Vec::new())),
    }
}

/// Records a created object and sends what had to wait for it (members beyond the first
/// chunk, references to objects not there before).
pub(super) async fn created(
    client: &Client,
    item: &ExportItem,
    create: Create,
    id: String,
    etag: Option<&str>,
) -> Result<(ExportOutcome, Vec<Late>), HttpError> {
    client.set_etag(&id, etag);
    client.remember(&item.dn, &id);
    let key = match create.kind {
        Kind::User => "userName",
        Kind::Group => "displayName",
    };
    if let Some(name) = create.attrs.first_text(key) {
        client.remember_name(create.kind, &name, &id, Some(&create.external_id));
    }
    let waiting = send_late(client, create.kind, &id, create.later).await?;
    Ok((applied(Some(id)), waiting))
}

/// One add on its own: look, create, and if the create's fate is unknown (the connection
/// broke after it was sent) look again, so that what the first attempt made is found.
pub(super) async fn add(
    client: &Client,
    kind: Kind,
    item: &ExportItem,
    ask_first: bool,
) -> Result<(ExportOutcome, Vec<Late>), HttpError> {
    for attempt in 0..2 {
        let create = match prepare_add(client, kind, item, ask_first || attempt > 0).await? {
            Prepared::Done(outcome, late) => return Ok((outcome, late)),
            Prepared::Create(c) => c,
        };
        let endpoint = client.endpoint(kind).map_err(unservable)?;
        match client
            .http
            .call(
                Method::POST,
                endpoint,
                Some(&create.body),
                None,
                Retry::Create,
            )
            .await
        {
            Ok(reply) => {
                let Some(id) = created_id(&reply) else {
                    return Ok((
                        refused(format!(
                            "POST {endpoint} answered {} without an id",
                            reply.status
                        )),
                        Vec::new(),
                    ));
                };
                return created(client, item, create, id, reply.etag.as_deref()).await;
            }
            Err(HttpError::Network(m)) if attempt == 0 => {
                tracing::warn!("{}: {m}; looking whether the create happened", item.dn);
            }
            Err(e) => return Err(e),
        }
    }
    Err(HttpError::Network(format!(
        "{}: the create's outcome stayed unknown",
        item.dn
    )))
}

fn created_id(reply: &Reply) -> Option<String> {
    let body: Json = serde_json::from_slice(&reply.body).ok()?;
    body.get("id")
        .and_then(Json::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}
