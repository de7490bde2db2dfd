//! What the service says about itself (RFC 7644 §4): /ServiceProviderConfig, /ResourceTypes
//! and /Schemas. Exports are checked against it, so an attribute the service does not have
//! is refused with a clear message instead of being dropped by the server.

use std::collections::HashMap;

use serde_json::Value as Json;

use super::path::{AttrPath, CORE_GROUP, CORE_USER};

/// A SCIM attribute's data type (RFC 7643 §2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttrType {
    /// Text.
    String,
    /// true / false.
    Boolean,
    /// A whole number.
    Integer,
    /// A decimal number.
    Decimal,
    /// An xsd:dateTime.
    DateTime,
    /// A URI or resource reference.
    Reference,
    /// A complex attribute with sub-attributes.
    Complex,
    /// Base64 octets.
    Binary,
}

impl AttrType {
    fn parse(s: &str) -> AttrType {
        match s.to_ascii_lowercase().as_str() {
            "boolean" => AttrType::Boolean,
            "integer" => AttrType::Integer,
            "decimal" => AttrType::Decimal,
            "datetime" => AttrType::DateTime,
            "reference" => AttrType::Reference,
            "complex" => AttrType::Complex,
            "binary" => AttrType::Binary,
            _ => AttrType::String,
        }
    }
}

/// One attribute definition.
#[derive(Clone, Debug)]
pub struct AttrDef {
    /// Its data type.
    pub ty: AttrType,
    /// Whether it holds a list.
    pub multi: bool,
    /// readOnly attributes cannot be written.
    pub read_only: bool,
    /// Sub-attributes of a complex attribute, by lower-case name.
    pub subs: HashMap<String, AttrDef>,
}

impl AttrDef {
    fn parse(j: &Json) -> Option<(String, AttrDef)> {
        let name = j.get("name")?.as_str()?.to_string();
        let subs = j
            .get("subAttributes")
            .and_then(Json::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(AttrDef::parse)
                    .map(|(n, d)| (n.to_ascii_lowercase(), d))
                    .collect()
            })
            .unwrap_or_default();
        Some((
            name,
            AttrDef {
                ty: AttrType::parse(j.get("type").and_then(Json::as_str).unwrap_or("string")),
                multi: j
                    .get("multiValued")
                    .and_then(Json::as_bool)
                    .unwrap_or(false),
                read_only: j.get("mutability").and_then(Json::as_str) == Some("readOnly"),
                subs,
            },
        ))
    }
}

/// The two resource types the connector syncs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// /Users.
    User,
    /// /Groups.
    Group,
}

impl Kind {
    /// The connector-space object class.
    pub fn class(self) -> &'static str {
        match self {
            Kind::User => "User",
            Kind::Group => "Group",
        }
    }

    /// The DN container (`ou=Users`).
    pub fn ou(self) -> &'static str {
        match self {
            Kind::User => "Users",
            Kind::Group => "Groups",
        }
    }

    /// The kind for an object class, ignoring case.
    pub fn of_class(class: &str) -> Option<Kind> {
        if class.eq_ignore_ascii_case("User") {
            Some(Kind::User)
        } else if class.eq_ignore_ascii_case("Group") {
            Some(Kind::Group)
        } else {
            None
        }
    }
}

/// A resource type as the service describes it.
#[derive(Clone, Debug)]
pub struct ResourceType {
    /// Its endpoint, like `/Users`.
    pub endpoint: String,
    /// Its core schema URN.
    pub schema: String,
    /// Extension schema URNs it accepts.
    pub extensions: Vec<String>,
}

/// What discovery found.
#[derive(Clone, Debug)]
pub struct Service {
    /// PATCH is supported (else changes are sent as PUT of the whole resource).
    pub patch: bool,
    /// ETags are supported (then If-Match is sent).
    pub etag: bool,
    /// Filtering is supported (needed for soft match).
    pub filter: bool,
    /// Bulk requests (RFC 7644 §3.7), when supported: at most this many operations and
    /// bytes per request.
    pub bulk: Option<(usize, usize)>,
    /// The Users resource type.
    pub users: ResourceType,
    /// The Groups resource type, if the service has groups.
    pub groups: Option<ResourceType>,
    /// Schemas by lower-case URN: attribute definitions by lower-case name. Empty when the
    /// service does not publish /Schemas (then nothing is refused up front).
    schemas: HashMap<String, HashMap<String, AttrDef>>,
}

impl Service {
    /// What a service that publishes nothing is assumed to be: RFC 7643's defaults.
    pub fn assumed() -> Service {
        Service {
            patch: true,
            etag: false,
            filter: true,
            bulk: None,
            users: ResourceType {
                endpoint: "/Users".into(),
                schema: CORE_USER.into(),
                extensions: vec![super::path::ENTERPRISE.into()],
            },
            groups: Some(ResourceType {
                endpoint: "/Groups".into(),
                schema: CORE_GROUP.into(),
                extensions: Vec::new(),
            }),
            schemas: HashMap::new(),
        }
    }

    /// Reads the discovery documents' JSON; missing parts keep the assumed defaults.
    pub fn from_documents(
        config: Option<&Json>,
        types: Option<&Json>,
        schemas: Option<&Json>,
    ) -> Service {
        let mut s = Service::assumed();
        if let Some(c) = config {
            let supported = |k: &str| {
                c.get(k)
                    .and_then(|v| v.get("supported"))
                    .and_then(Json::as_bool)
            };
            s.patch = supported("patch").unwrap_or(s.patch);
            s.etag = supported("etag").unwrap_or(s.etag);
            s.filter = supported("filter").unwrap_or(s.filter);
            if supported("bulk") == Some(true) {
                let limit = |k: &str| {
                    c.get("bulk")
                        .and_then(|b| b.get(k))
                        .and_then(Json::as_u64)
                        .and_then(|n| usize::try_from(n).ok())
                        .filter(|n| *n > 0)
                };
                s.bulk = limit("maxOperations").zip(limit("maxPayloadSize"));
            }
        }
        if let Some(list) = types.and_then(resources) {
            let mut groups = None;
            for t in list {
                let Some(name) = t.get("name").and_then(Json::as_str) else {
                    continue;
                };
                let rt = ResourceType {
                    endpoint: t
                        .get("endpoint")
                        .and_then(Json::as_str)
                        .unwrap_or_default()
                        .trim_end_matches('/')
                        .to_string(),
                    schema: t
                        .get("schema")
                        .and_then(Json::as_str)
                        .unwrap_or_default()
                        .to_string(),
                    extensions: t
                        .get("schemaExtensions")
                        .and_then(Json::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(|e| e.get("schema").and_then(Json::as_str))
                                .map(str::to_string)
                                .collect()
                        })
                        .unwrap_or_default(),
                };
                if !rt.endpoint.starts_with('/') {
                    continue;
                }
                if name.eq_ignore_ascii_case("User") {
                    s.users = rt;
                } else if name.eq_ignore_ascii_case("Group") {
                    groups = Some(rt);
                }
            }
            s.groups = groups;
        }
        if let Some(list) = schemas.and_then(resources) {
            for sch in list {
                let Some(id) = sch.get("id").and_then(Json::as_str) else {
                    continue;
                };
                let attrs = sch
                    .get("attributes")
                    .and_then(Json::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(AttrDef::parse)
                            .map(|(n, d)| (n.to_ascii_lowercase(), d))
                            .collect()
                    })
                    .unwrap_or_default();
                s.schemas.insert(id.to_ascii_lowercase(), attrs);
            }
        }
        s
    }

    /// The resource type of a kind, or why the service has none.
    pub fn resource(&self, kind: Kind) -> Result<&ResourceType, String> {
        match kind {
            Kind::User => Ok(&self.users),
            Kind::Group => self
                .groups
                .as_ref()
                .ok_or_else(|| "the service has no Group resource type".to_string()),
        }
    }

    /// The definition of the attribute a path names (the sub-attribute's, for a path with
    /// one), or why the service would not take it. Ok(None): the service publishes no
    /// schemas, so nothing can be checked.
    pub fn check(&self, kind: Kind, path: &AttrPath) -> Result<Option<AttrDef>, String> {
        if self.schemas.is_empty() {
            return Ok(None);
        }
        // A common attribute of every resource (RFC 7643 §3.1), in no schema.
        if path.is_plain("externalId") {
            return Ok(Some(AttrDef {
                ty: AttrType::String,
                multi: false,
                read_only: false,
                subs: HashMap::new(),
            }));
        }
        let rt = self.resource(kind)?;
        let urn = path.urn.clone().unwrap_or_else(|| rt.schema.clone());
        let allowed = urn.eq_ignore_ascii_case(&rt.schema)
            || rt.extensions.iter().any(|e| e.eq_ignore_ascii_case(&urn));
        if !allowed {
            return Err(format!(
                "the service's {} resource type does not accept schema {urn} (GET /ResourceTypes)",
                kind.class()
            ));
        }
        let Some(attrs) = self.schemas.get(&urn.to_ascii_lowercase()) else {
            return Err(format!(
                "the service publishes no schema {urn} (GET /Schemas)"
            ));
        };
        let name = path.name();
        let Some(def) = attrs.get(&path.attr.to_ascii_lowercase()) else {
            return Err(format!(
                "the service's schema {urn} has no attribute {:?}, so {name} cannot be exported \
                 (GET /Schemas)",
                path.attr
            ));
        };
        let leaf = match &path.sub {
            None => def,
            Some(sub) => def.subs.get(&sub.to_ascii_lowercase()).ok_or_else(|| {
                format!(
                    "the service's attribute {} has no sub-attribute {sub:?}, so {name} cannot be \
                     exported (GET /Schemas)",
                    path.attr
                )
            })?,
        };
        if def.read_only || leaf.read_only {
            return Err(format!(
                "the service's attribute {name} is read-only (GET /Schemas)"
            ));
        }
        Ok(Some(leaf.clone()))
    }
}

fn resources(list: &Json) -> Option<&Vec<Json>> {
    list.get("Resources").and_then(Json::as_array)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn service() -> Service {
        let schemas = json!({"Resources": [
            {"id": CORE_USER, "attributes": [
                {"name": "userName", "type": "string"},
                {"name": "active", "type": "boolean"},
                {"name": "groups", "type": "complex", "multiValued": true, "mutability": "readOnly",
                 "subAttributes": [{"name": "value", "type": "string"}]},
                {"name": "emails", "type": "complex", "multiValued": true,
                 "subAttributes": [{"name": "value", "type": "string"}, {"name": "type", "type": "string"}]}
            ]},
            {"id": super::super::path::ENTERPRISE, "attributes": [
                {"name": "department", "type": "string"}
            ]}
        ]});
        let types = json!({"Resources": [
            {"name": "User", "endpoint": "/Users", "schema": CORE_USER,
             "schemaExtensions": [{"schema": super::super::path::ENTERPRISE}]},
            {"name": "Group", "endpoint": "/Groups", "schema": CORE_GROUP}
        ]});
        let config = json!({"patch": {"supported": false}, "etag": {"supported": true}});
        Service::from_documents(Some(&config), Some(&types), Some(&schemas))
    }

    #[test]
    fn discovery_decides_patch_etag_and_known_attributes() {
        let s = service();
        assert!(!s.patch);
        assert!(s.etag);
        let ok = |p: &str| s.check(Kind::User, &AttrPath::parse(p).unwrap());
        assert_eq!(ok("active").unwrap().unwrap().ty, AttrType::Boolean);
        assert!(ok("emails[type eq \"work\"].value").is_ok());
        assert!(
            ok("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department").is_ok()
        );
        let e = ok("nickName").unwrap_err();
        assert!(e.contains("no attribute \"nickName\""), "{e}");
        assert!(ok("emails[type eq \"work\"].display").is_err());
        assert!(ok("groups").unwrap_err().contains("read-only"));
        let e = ok("urn:example:ext:1.0:User:x").unwrap_err();
        assert!(e.contains("does not accept schema"), "{e}");
    }

    #[test]
    fn a_silent_service_is_taken_at_its_word() {
        let s = Service::from_documents(None, None, None);
        assert!(s.patch);
        assert!(
            s.check(Kind::User, &AttrPath::parse("anything").unwrap())
                .unwrap()
                .is_none()
        );
    }
}
