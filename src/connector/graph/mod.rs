//! The `graph` connector: Microsoft Entra ID through Microsoft Graph v1.0, as a third-party
//! provisioning engine writes it. Users and security groups are created, updated and
//! deleted through JSON batches ([`client`]), paced under Microsoft's published write limit;
//! import is by delta query ([`import`]); orgContacts are read for joins and never written.
//! Tested against the lab's Graph double and Microsoft's own SDK, not a real tenant.

mod client;
mod export;
mod import;
mod resource;

use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Value as Json};

use self::client::{Call, Graph};
use self::resource::Kind;
use super::{Connector, ConnectorError, ConnectorErrorKind, ImportEnd, ImportSink, SpaceView};
use crate::config::GraphConfig;
use crate::connector::http::HttpError;
use crate::model::{ConnectorName, Dn, ExportItem, ExportOutcome, Watermark};

/// A Microsoft Graph connector.
pub struct GraphConnector {
    name: ConnectorName,
    cfg: GraphConfig,
    runtime: Option<tokio::runtime::Runtime>,
    graph: Option<Graph>,
    index: Index,
}

/// What the connector knows of the tenant, from its imports and its own writes: enough to
/// turn references into ids, soft-match before a create, and leave out of an update what
/// Graph already holds.
#[derive(Default)]
pub struct Index {
    objects: HashMap<String, Known>,
    by_dn: HashMap<String, String>,
}

struct Known {
    kind: Kind,
    dn: Dn,
    props: Json,
    members: BTreeSet<String>,
    manager: Option<String>,
}

impl Index {
    fn clear(&mut self) {
        self.objects.clear();
        self.by_dn.clear();
    }

    fn remember(&mut self, kind: Kind, id: &str, dn: &Dn, props: Json) {
        let (members, manager) = match self.objects.remove(id) {
            Some(k) => {
                self.by_dn.remove(k.dn.norm());
                (k.members, k.manager)
            }
            None => (BTreeSet::new(), None),
        };
        self.by_dn.insert(dn.norm().to_string(), id.to_string());
        self.objects.insert(
            id.to_string(),
            Known {
                kind,
                dn: dn.clone(),
                props,
                members,
                manager,
            },
        );
    }

    fn forget(&mut self, id: &str) {
        if let Some(k) = self.objects.remove(id) {
            self.by_dn.remove(k.dn.norm());
        }
        for k in self.objects.values_mut() {
            k.members.remove(id);
            if k.manager.as_deref() == Some(id) {
                k.manager = None;
            }
        }
    }

    fn merge(&mut self, id: &str, body: &Json) {
        if let (Some(k), Some(b)) = (self.objects.get_mut(id), body.as_object()) {
            if let Some(p) = k.props.as_object_mut() {
                for (n, v) in b {
                    if n == "onPremisesExtensionAttributes" {
                        let ext = p
                            .entry(n.clone())
                            .or_insert_with(|| Json::Object(Map::new()));
                        if let (Some(e), Some(nv)) = (ext.as_object_mut(), v.as_object()) {
                            for (a, x) in nv {
                                e.insert(a.clone(), x.clone());
                            }
                        }
                    } else if !n.contains('@') {
                        p.insert(n.clone(), v.clone());
                    }
                }
            }
        }
    }

    fn props(&self, id: &str) -> Option<&Json> {
        self.objects.get(id).map(|k| &k.props)
    }

    fn dn_of(&self, id: &str) -> Option<Dn> {
        self.objects.get(id).map(|k| k.dn.clone())
    }

    fn id_of_dn(&self, dn: &Dn) -> Option<String> {
        self.by_dn.get(dn.norm()).cloned()
    }

    fn members(&self, id: &str) -> Vec<String> {
        self.objects
            .get(id)
            .map(|k| k.members.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn manager(&self, id: &str) -> Option<String> {
        self.objects.get(id).and_then(|k| k.manager.clone())
    }

    fn set_manager(&mut self, id: &str, m: Option<String>) {
        if let Some(k) = self.objects.get_mut(id) {
            k.manager = m;
        }
    }

    fn set_member(&mut self, group: &str, member: &str, added: bool) {
        if let Some(k) = self.objects.get_mut(group) {
            if added {
                k.members.insert(member.to_string());
            } else {
                k.members.remove(member);
            }
        }
    }

    /// The live object of `kind` whose `prop` equals `value`: case-insensitive as Graph
    /// compares names, but exact for `onPremisesImmutableId` (base64: case is data).
    fn find(&self, kind: Kind, prop: &str, value: &str) -> Option<String> {
        let exact = prop == "onPremisesImmutableId";
        self.objects
            .iter()
            .find(|(_, k)| {
                k.kind == kind
                    && k.props.get(prop).and_then(Json::as_str).is_some_and(|v| {
                        if exact {
                            v == value
                        } else {
                            v.eq_ignore_ascii_case(value)
                        }
                    })
            })
            .map(|(id, _)| id.clone())
    }

    /// `body` without what Graph already holds for this object: never a write that
    /// changes nothing.
    fn unchanged_removed(&self, id: &str, mut body: Map<String, Json>) -> Map<String, Json> {
        let Some(have) = self.props(id) else {
            return body;
        };
        body.retain(|k, v| {
            if k == "onPremisesExtensionAttributes" {
                if let Some(m) = v.as_object_mut() {
                    m.retain(|a, x| have.get(k).and_then(|e| e.get(a)).unwrap_or(&Json::Null) != x);
                    return !m.is_empty();
                }
            }
            have.get(k).unwrap_or(&Json::Null) != v
        });
        body
    }
}

impl GraphConnector {
    /// A connector for this config; nothing is contacted until it is used.
    pub fn new(name: ConnectorName, cfg: GraphConfig) -> Self {
        GraphConnector {
            name,
            cfg,
            runtime: None,
            graph: None,
            index: Index::default(),
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
        self.error(kind, format!("{}: {e}", self.cfg.graph_url))
    }

    fn session(&mut self) -> Result<(), ConnectorError> {
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
        if self.graph.is_none() {
            let g = Graph::new(&self.cfg)
                .map_err(|m| self.error(ConnectorErrorKind::Unsupported, m))?;
            self.graph = Some(g);
        }
        Ok(())
    }
}

impl Connector for GraphConnector {
    fn name(&self) -> &ConnectorName {
        &self.name
    }

    fn check(&mut self) -> Result<(), ConnectorError> {
        self.session()?;
        let (Some(rt), Some(g)) = (&self.runtime, &self.graph) else {
            return Err(self.error(ConnectorErrorKind::Unsupported, "no session"));
        };
        let call = Call {
            method: hyper::Method::GET,
            path: "/users?$top=1&$select=id".into(),
            body: None,
        };
        rt.block_on(g.call(&call))
            .map(|_| ())
            .map_err(|e| self.http_error(&e))
    }

    fn import(
        &mut self,
        watermark: Option<&Watermark>,
        full: bool,
        sink: &mut dyn ImportSink,
    ) -> Result<ImportEnd, ConnectorError> {
        self.session()?;
        let (Some(rt), Some(g)) = (&self.runtime, &self.graph) else {
            return Err(self.error(ConnectorErrorKind::Unsupported, "no session"));
        };
        // Without what an earlier import saw, a delta cannot be merged: start over.
        let full = full || self.index.objects.is_empty();
        match rt.block_on(import::run(g, &mut self.index, watermark, full, sink)) {
            Ok((w, complete)) => Ok(ImportEnd {
                watermark: Some(w),
                complete,
            }),
            Err(import::ImportError::Http(e)) => Err(self.http_error(&e)),
            Err(import::ImportError::Sink(m)) => Err(self.error(ConnectorErrorKind::BadData, m)),
        }
    }

    fn export(&mut self, items: &[ExportItem]) -> Result<Vec<ExportOutcome>, ConnectorError> {
        self.session()?;
        let (Some(rt), Some(g)) = (&self.runtime, &self.graph) else {
            return Err(self.error(ConnectorErrorKind::Unsupported, "no session"));
        };
        let before = g.requests();
        let root = self.cfg.graph_url.to_string();
        let outcomes = rt.block_on(export::run(g, &root, &mut self.index, items));
        tracing::debug!(
            "{}: {} exports in {} requests",
            self.name,
            items.len(),
            g.requests() - before
        );
        Ok(outcomes)
    }

    fn finish_export(
        &mut self,
        _space: &dyn SpaceView,
    ) -> Result<Option<Watermark>, ConnectorError> {
        Ok(None)
    }
}
