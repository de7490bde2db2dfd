//! The `scim` connector: Users and Groups of a SCIM 2.0 service (RFC 7643/7644) as a source
//! and a target. Import lists every resource (SCIM has no standard delta), export creates,
//! PATCHes only what changed, and deletes; membership changes go as member add/remove
//! operations in chunks. See `path.rs` for how attributes are named.

mod bulk;
mod create;
mod export;
mod import;
mod late;
pub mod path;
mod put;
mod resource;
pub mod schema;

use std::collections::HashMap;
use std::sync::Mutex;

use hyper::Method;
use serde_json::Value as Json;

use self::schema::{Kind, Service};
use super::http::{self, Http, HttpError, Retry};
use super::{Connector, ConnectorError, ConnectorErrorKind, ImportEnd, ImportSink, SpaceView};
use crate::config::ScimConfig;
use crate::model::{ConnectorName, Dn, ExportItem, ExportKind, ExportOutcome, Watermark};

/// A SCIM service connector.
pub struct ScimConnector {
    name: ConnectorName,
    cfg: ScimConfig,
    runtime: Option<tokio::runtime::Runtime>,
    client: Option<Client>,
    /// Resources this connector created or changed since its last import: the confirming
    /// import reads back these, not the whole service.
    written: HashMap<String, Kind>,
    /// An export ran since the last import: the next import is its confirming import.
    confirm_due: bool,
}

/// What the connector keeps between calls: the HTTP client, what discovery found, and
/// the ids and ETags the service handed out.
struct Client {
    http: Http,
    service: Service,
    cfg: ScimConfig,
    /// What the service holds, from the last import and this client's own writes.
    index: Mutex<Index>,
    /// The service's id → its latest ETag.
    etags: Mutex<HashMap<String, String>>,
    /// References of written objects that wait for objects a later batch of the same
    /// export creates.
    late: Mutex<Vec<late::Waiting>>,
}

impl ScimConnector {
    /// A connector for this config; nothing is contacted until it is used.
    pub fn new(name: ConnectorName, cfg: ScimConfig) -> Self {
        ScimConnector {
            name,
            cfg,
            runtime: None,
            client: None,
            written: HashMap::new(),
            confirm_due: false,
        }
    }

    fn error(&self, kind: ConnectorErrorKind, message: impl Into<String>) -> ConnectorError {
        ConnectorError {
            connector: self.name.clone(),
            kind,
            message: message.into(),
        }
    }

    fn http_error(&self, e: &HttpError) -> ConnectorError {
        let kind = match e.status() {
            None | Some(401) | Some(403) | Some(429) => ConnectorErrorKind::Unreachable,
            Some(s) if s >= 500 => ConnectorErrorKind::Unreachable,
            Some(_) => ConnectorErrorKind::BadData,
        };
        self.error(kind, format!("{}: {e}", self.cfg.url))
    }

    /// The runtime and a discovered client, made on first use.
    fn session(&mut self) -> Result<(&tokio::runtime::Runtime, &Client), ConnectorError> {
        if self.runtime.is_none() {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| {
                    self.error(
                        ConnectorErrorKind::Unsupported,
                        format!("cannot start the I/O runtime: {e}"),
                    )
                })?;
            self.runtime = Some(rt);
        }
        if self.client.is_none() {
            let http =
                Http::new(&self.cfg).map_err(|m| self.error(ConnectorErrorKind::Unsupported, m))?;
            let Some(rt) = self.runtime.as_ref() else {
                return Err(self.error(ConnectorErrorKind::Unsupported, "no runtime"));
            };
            let service = rt
                .block_on(discover(&http))
                .map_err(|e| self.http_error(&e))?;
            self.client = Some(Client {
                http,
                service,
                cfg: self.cfg.clone(),
                index: Mutex::new(Index::default()),
                etags: Mutex::new(HashMap::new()),
                late: Mutex::new(Vec::new()),
            });
        }
        match (self.runtime.as_ref(), self.client.as_ref()) {
            (Some(rt), Some(c)) => Ok((rt, c)),
            _ => Err(self.error(ConnectorErrorKind::Unsupported, "no session")),
        }
    }
}

/// A confirming import reads back what was written while the service holds at least this
/// many times as many resources; otherwise it lists the service.
const READ_BACK_RATIO: usize = 10;

/// How a watermark names the time of the last full listing.
const LISTED: &str = "listed at ";

/// The Unix ms of the last full listing a watermark names.
/// Passes changes on, noting whether the resource was there (an upsert) or gone.
struct FoundSink<'a> {
    inner: &'a mut dyn ImportSink,
    upserted: bool,
}

impl ImportSink for FoundSink<'_> {
    fn push(&mut self, change: crate::model::ImportChange) -> Result<(), String> {
        self.upserted |= matches!(change, crate::model::ImportChange::Upsert(_));
        self.inner.push(change)
    }

    fn knows(&mut self, anchor: &crate::model::Anchor) -> Result<bool, String> {
        self.inner.knows(anchor)
    }

    fn dn_of(&mut self, anchor: &crate::model::Anchor) -> Result<Option<Dn>, String> {
        self.inner.dn_of(anchor)
    }
}

fn listed_at(w: &Watermark) -> Option<i64> {
    std::str::from_utf8(&w.0)
        .ok()?
        .strip_prefix(LISTED)?
        .parse()
        .ok()
}

/// Reads the three discovery endpoints. A service that lacks one is taken at RFC 7643's
/// defaults for it; an unreachable or refusing service is an error.
async fn discover(http: &Http) -> Result<Service, HttpError> {
    let mut docs: Vec<Option<Json>> = Vec::new();
    for path in ["/ServiceProviderConfig", "/ResourceTypes", "/Schemas"] {
        match http
            .call(Method::GET, path, None, None, Retry::Idempotent)
            .await
        {
            Ok(r) => docs.push(serde_json::from_slice(&r.body).ok()),
            Err(e) if matches!(e.status(), Some(404) | Some(501)) => {
                tracing::info!(
                    "{}{path} is not offered ({e}); assuming RFC 7643 defaults",
                    http.base()
                );
                docs.push(None);
            }
            Err(e) => return Err(e),
        }
    }
    let service = Service::from_documents(docs[0].as_ref(), docs[1].as_ref(), docs[2].as_ref());
    tracing::debug!(
        "{}: patch {}, etag {}, filter {}",
        http.base(),
        service.patch,
        service.etag,
        service.filter
    );
    Ok(service)
}

impl Client {
    fn with_index<T>(&self, f: impl FnOnce(&mut Index) -> T) -> Option<T> {
        self.index.lock().ok().map(|mut i| f(&mut i))
    }

    fn remember(&self, dn: &Dn, id: &str) {
        self.with_index(|i| i.by_dn.insert(dn.norm().to_string(), id.to_string()));
    }

    fn remember_name(&self, kind: Kind, name: &str, id: &str, external_id: Option<&str>) {
        self.with_index(|i| {
            i.by_name.insert(
                (kind, name.to_lowercase()),
                (id.to_string(), external_id.map(str::to_string)),
            )
        });
    }

    fn forget(&self, id: &str) {
        self.with_index(|i| {
            let gone: Vec<String> = i
                .by_dn
                .iter()
                .filter(|(_, v)| *v == id)
                .map(|(k, _)| k.clone())
                .collect();
            for dn in gone {
                i.by_dn.remove(&dn);
                i.gone.insert(dn, id.to_string());
            }
            i.by_name.retain(|_, (v, _)| v != id);
        });
    }

    /// Notes the id a deleted resource had (see [`Client::gone_id`]).
    fn remember_gone(&self, dn: &Dn, id: &str) {
        self.with_index(|i| i.gone.insert(dn.norm().to_string(), id.to_string()));
    }

    /// How many resources the index knows of.
    fn known(&self) -> usize {
        self.with_index(|i| i.by_dn.len()).unwrap_or(0)
    }

    /// id → the (normalised) DN the index knows each resource by.
    fn dns_by_id(&self) -> HashMap<String, String> {
        self.with_index(|i| {
            i.by_dn
                .iter()
                .map(|(dn, id)| (id.clone(), dn.clone()))
                .collect()
        })
        .unwrap_or_default()
    }

    /// The id a DN named before its resource was deleted in this session: a group that
    /// listed it still does (the service keeps no referential integrity) and the removal
    /// of that member must name it.
    fn gone_id(&self, dn: &Dn) -> Option<String> {
        self.with_index(|i| i.gone.get(dn.norm()).cloned())
            .flatten()
    }

    /// The id of the resource a DN names, as far as the index knows.
    fn lookup_dn(&self, dn: &Dn) -> Lookup<String> {
        self.with_index(|i| match i.by_dn.get(dn.norm()) {
            Some(id) => Lookup::Found(id.clone()),
            None if i.complete => Lookup::Absent,
            None => Lookup::Unknown,
        })
        .unwrap_or(Lookup::Unknown)
    }

    /// The resource holding a userName (users) or displayName (groups), with its externalId.
    fn lookup_name(&self, kind: Kind, name: &str) -> Lookup<(String, Option<String>)> {
        self.with_index(|i| match i.by_name.get(&(kind, name.to_lowercase())) {
            Some(v) => Lookup::Found(v.clone()),
            None if i.complete => Lookup::Absent,
            None => Lookup::Unknown,
        })
        .unwrap_or(Lookup::Unknown)
    }

    fn etag(&self, id: &str) -> Option<String> {
        if !self.service.etag {
            return None;
        }
        self.etags.lock().ok()?.get(id).cloned()
    }

    fn set_etag(&self, id: &str, tag: Option<&str>) {
        if let (Some(tag), Ok(mut etags)) = (tag, self.etags.lock()) {
            etags.insert(id.to_string(), tag.to_string());
        }
    }

    fn endpoint(&self, kind: Kind) -> Result<&str, String> {
        Ok(self.service.resource(kind)?.endpoint.as_str())
    }
}

/// What the service holds, as far as the connector saw: after a full listing, a miss here
/// is a miss in the service, so exports need no lookups of their own (each filter query
/// costs a scan of the whole service on some implementations).
#[derive(Default)]
struct Index {
    /// An import listed everything since this client was made.
    complete: bool,
    /// Normalised DN → id.
    by_dn: HashMap<String, String>,
    /// (kind, lower-cased userName or displayName) → (id, externalId).
    by_name: HashMap<(Kind, String), (String, Option<String>)>,
    /// Normalised DN → id of resources this client deleted.
    gone: HashMap<String, String>,
}

/// An index lookup's answer.
enum Lookup<T> {
    /// Known.
    Found(T),
    /// Certainly not in the service.
    Absent,
    /// The index cannot tell: ask the service.
    Unknown,
}

impl Connector for ScimConnector {
    fn name(&self) -> &ConnectorName {
        &self.name
    }

    fn check(&mut self) -> Result<(), ConnectorError> {
        // Discovery itself proves the service answers and takes our token.
        self.client = None;
        let (rt, client) = self.session()?;
        let path = format!("{}?startIndex=1&count=1", client.service.users.endpoint);
        rt.block_on(
            client
                .http
                .call(Method::GET, &path, None, None, Retry::Idempotent),
        )
        .map(|_| ())
        .map_err(|e| self.http_error(&e))
    }

    fn import(
        &mut self,
        watermark: Option<&Watermark>,
        full: bool,
        sink: &mut dyn ImportSink,
    ) -> Result<ImportEnd, ConnectorError> {
        let due = std::mem::take(&mut self.confirm_due);
        // One GET per written resource beats listing the service while the writes are
        // a small part of it (a listing moves every resource, twice); after a first
        // provisioning, listing is cheaper.
        let enough = (self.written.len() * READ_BACK_RATIO) as u64;
        let small = self
            .client
            .as_ref()
            .is_some_and(|c| c.known() as u64 >= enough)
            || sink.holds_at_least(enough);
        if !full && due && self.client.is_some() && small {
            // The confirming import of this connector's own export: what was written is
            // read back, one GET each, so its cost follows the change, not the service.
            let written = std::mem::take(&mut self.written);
            let (rt, client) = self.session()?;
            return match rt.block_on(import::read_back(client, &written, sink)) {
                Ok(()) => Ok(ImportEnd {
                    watermark: watermark.cloned(),
                    complete: false,
                }),
                Err(import::ImportError::Http(e)) => Err(self.http_error(&e)),
                Err(import::ImportError::Sink(m)) => {
                    Err(self.error(ConnectorErrorKind::BadData, m))
                }
            };
        }
        let now = sink.now_ms();
        let every = self.cfg.full_import_every;
        // A confirming import that did not read back lists, whenever the last listing was.
        if let (false, false, Some(every), Some(now), Some(listed)) =
            (full, due, every, now, watermark.and_then(listed_at))
        {
            if now.saturating_sub(listed) < i64::try_from(every.as_millis()).unwrap_or(i64::MAX) {
                // SCIM has no delta: between scheduled listings a delta import reads
                // nothing, and changes made in the service by others wait for the next one.
                return Ok(ImportEnd {
                    watermark: watermark.cloned(),
                    complete: false,
                });
            }
        }
        self.written.clear();
        // The service may have changed its schema since the last run.
        self.client = None;
        let (rt, client) = self.session()?;
        let result = rt.block_on(import::import_all(client, sink));
        match result {
            Ok(()) => Ok(ImportEnd {
                // When listings are scheduled, the watermark is the time of this one.
                watermark: every
                    .and(now)
                    .map(|ms| Watermark(format!("{LISTED}{ms}").into_bytes())),
                complete: true,
            }),
            Err(import::ImportError::Http(e)) => Err(self.http_error(&e)),
            Err(import::ImportError::Sink(m)) => Err(self.error(ConnectorErrorKind::BadData, m)),
        }
    }

    fn import_one(
        &mut self,
        which: &super::OneObject,
        sink: &mut dyn ImportSink,
    ) -> Result<bool, ConnectorError> {
        // The one resource, by its id: the anchor the connector space holds, or an `id=…`
        // DN. A resource known only by externalId would need a filtered listing.
        let kind = resource::dn_key(&which.dn);
        let id = match (&which.anchor, &kind) {
            (Some(a), _) => String::from_utf8(a.as_bytes().to_vec()).ok(),
            (None, Some((_, resource::DnKey::Id(id)))) => Some(id.clone()),
            _ => None,
        };
        let (Some(id), Some((kind, _))) = (id, kind) else {
            return Err(self.error(
                ConnectorErrorKind::Unsupported,
                format!(
                    "{}: not a resource of this connector space (its id is not known yet;                      a cycle imports it)",
                    which.dn
                ),
            ));
        };
        let mut one = HashMap::new();
        one.insert(id, kind);
        let mut seen = FoundSink {
            inner: sink,
            upserted: false,
        };
        let (rt, client) = self.session()?;
        match rt.block_on(import::read_back(client, &one, &mut seen)) {
            Ok(()) => Ok(seen.upserted),
            Err(import::ImportError::Http(e)) => Err(self.http_error(&e)),
            Err(import::ImportError::Sink(m)) => Err(self.error(ConnectorErrorKind::BadData, m)),
        }
    }

    fn export(&mut self, items: &[ExportItem]) -> Result<Vec<ExportOutcome>, ConnectorError> {
        let name = self.name.clone();
        let (rt, client) = self.session()?;
        let before = client.http.requests();
        let outcomes = rt.block_on(export::export_all(client, items));
        tracing::debug!(
            "{name}: {} exports in {} requests",
            items.len(),
            client.http.requests() - before
        );
        self.confirm_due = true;
        for (item, outcome) in items.iter().zip(&outcomes) {
            let ExportOutcome::Applied { anchor, .. } = outcome else {
                continue;
            };
            let id = anchor
                .as_ref()
                .or(item.anchor.as_ref())
                .and_then(|a| std::str::from_utf8(a.as_bytes()).ok());
            match (Kind::of_class(&item.object_class), id) {
                (Some(kind), Some(id)) if item.kind != ExportKind::Delete => {
                    self.written.insert(id.to_string(), kind);
                }
                (_, Some(id)) => {
                    self.written.remove(id);
                }
                _ => {}
            }
        }
        Ok(outcomes)
    }

    fn finish_export(
        &mut self,
        _space: &dyn SpaceView,
    ) -> Result<Option<Watermark>, ConnectorError> {
        if let (Some(rt), Some(client)) = (self.runtime.as_ref(), self.client.as_ref()) {
            rt.block_on(late::finish(client));
        }
        Ok(None)
    }
}
