//! The TOML file's shape as serde reads it: every key optional and spanned, so that all
//! problems are found and each is reported at its place.

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "the config document")]
pub(super) struct RawConfig {
    pub(super) state_file: Option<Spanned<String>>,
    pub(super) log_dir: Option<Spanned<String>>,
    pub(super) schedule: Option<Spanned<RawSchedule>>,
    pub(super) staging: Option<Spanned<bool>>,
    pub(super) web: Option<Spanned<RawWeb>>,
    pub(super) agents: Option<Spanned<RawAgents>>,
    #[serde(default)]
    pub(super) connector: Vec<Spanned<RawConnector>>,
    #[serde(default)]
    pub(super) inbound: Vec<Spanned<RawInbound>>,
    #[serde(default)]
    pub(super) outbound: Vec<Spanned<RawOutbound>>,
    /// The out-of-box rule set (`rule_set.rs`).
    pub(super) rule_set: Option<Spanned<String>>,
    pub(super) rule_set_sources: Option<Vec<Spanned<String>>>,
    pub(super) directory_extensions: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [schedule] table")]
pub(super) struct RawSchedule {
    pub(super) interval: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[connector]] table")]
pub(super) struct RawConnector {
    pub(super) name: Option<Spanned<String>>,
    #[serde(rename = "type")]
    pub(super) kind: Option<Spanned<String>>,
    pub(super) mode: Option<Spanned<String>>,
    pub(super) path: Option<Spanned<String>>,
    pub(super) anchor: Option<Spanned<String>>,
    pub(super) partitions: Option<Vec<Spanned<String>>>,
    pub(super) reference_attributes: Option<Vec<Spanned<String>>>,
    pub(super) binary_attributes: Option<Vec<Spanned<String>>>,
    pub(super) deletion_threshold: Option<Spanned<i64>>,
    pub(super) deletion_threshold_percent: Option<Spanned<i64>>,
    pub(super) deletion_threshold_holds: Option<Spanned<String>>,
    pub(super) unique_attributes: Option<Vec<Spanned<String>>>,
    // ad / ldap
    pub(super) url: Option<Spanned<String>>,
    pub(super) starttls: Option<Spanned<bool>>,
    pub(super) danger_plaintext: Option<Spanned<bool>>,
    pub(super) bind_dn: Option<Spanned<String>>,
    pub(super) bind_password_file: Option<Spanned<String>>,
    pub(super) bind_password_env: Option<Spanned<String>>,
    pub(super) tls_verify: Option<Spanned<String>>,
    pub(super) ca_file: Option<Spanned<String>>,
    pub(super) base_dn: Option<Spanned<String>>,
    pub(super) include_ous: Option<Vec<Spanned<String>>>,
    pub(super) exclude_ous: Option<Vec<Spanned<String>>>,
    pub(super) member_of: Option<Spanned<String>>,
    pub(super) object_classes: Option<Vec<Spanned<String>>>,
    pub(super) filters: Option<Spanned<std::collections::BTreeMap<String, Spanned<String>>>>,
    pub(super) attributes: Option<Vec<Spanned<String>>>,
    pub(super) exclude_attributes: Option<Vec<Spanned<String>>>,
    pub(super) page_size: Option<Spanned<i64>>,
    pub(super) range_size: Option<Spanned<i64>>,
    pub(super) delta: Option<Spanned<String>>,
    pub(super) timeout: Option<Spanned<String>>,
    // scim
    pub(super) bearer_token_file: Option<Spanned<String>>,
    pub(super) bearer_token_env: Option<Spanned<String>>,
    pub(super) in_flight: Option<Spanned<i64>>,
    pub(super) max_retries: Option<Spanned<i64>>,
    pub(super) member_chunk: Option<Spanned<i64>>,
    pub(super) bulk_size: Option<Spanned<i64>>,
    pub(super) extension_urn: Option<Spanned<String>>,
    pub(super) full_import_every: Option<Spanned<String>>,
    pub(super) watch: Option<Spanned<bool>>,
    // graph
    pub(super) tenant_id: Option<Spanned<String>>,
    pub(super) client_id: Option<Spanned<String>>,
    pub(super) client_secret_file: Option<Spanned<String>>,
    pub(super) client_secret_env: Option<Spanned<String>>,
    pub(super) authority: Option<Spanned<String>>,
    pub(super) graph_url: Option<Spanned<String>>,
    pub(super) write_budget: Option<Spanned<i64>>,
    pub(super) watch_window: Option<Spanned<String>>,
    pub(super) agent_group: Option<Spanned<String>>,
    pub(super) agent_bind_password_file: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "an [[inbound]] rule table")]
pub(super) struct RawInbound {
    pub(super) name: Option<Spanned<String>>,
    pub(super) connector: Option<Spanned<String>>,
    pub(super) object_class: Option<Spanned<String>>,
    pub(super) object_type: Option<Spanned<String>>,
    pub(super) precedence: Option<Spanned<i64>>,
    pub(super) project: Option<Spanned<bool>>,
    #[serde(default)]
    pub(super) scope: Vec<Spanned<RawClause>>,
    pub(super) scope_expression: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) join: Vec<Spanned<Vec<Spanned<RawCondition>>>>,
    #[serde(default)]
    pub(super) flows: Vec<Spanned<RawFlow>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "an [[outbound]] rule table")]
pub(super) struct RawOutbound {
    pub(super) name: Option<Spanned<String>>,
    pub(super) connector: Option<Spanned<String>>,
    pub(super) object_type: Option<Spanned<String>>,
    pub(super) object_class: Option<Spanned<String>>,
    pub(super) provision: Option<Spanned<bool>>,
    pub(super) dn: Option<Spanned<String>>,
    pub(super) dn_expression: Option<Spanned<String>>,
    pub(super) deprovision: Option<Spanned<String>>,
    pub(super) disable_attribute: Option<Spanned<String>>,
    pub(super) disable_value: Option<Spanned<RawScalar>>,
    #[serde(default)]
    pub(super) scope: Vec<Spanned<RawClause>>,
    pub(super) scope_expression: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) flows: Vec<Spanned<RawFlow>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a scope clause like { attribute = \"department\", operator = \"equal\", value = \"Sales\" }"
)]
pub(super) struct RawClause {
    pub(super) attribute: Option<Spanned<String>>,
    pub(super) operator: Option<Spanned<String>>,
    pub(super) value: Option<Spanned<RawScalar>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a join condition like { cs = \"employeeID\", mv = \"employeeID\" }"
)]
pub(super) struct RawCondition {
    pub(super) cs: Option<Spanned<String>>,
    pub(super) mv: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a flow like { target = \"displayName\", source = \"displayName\" }"
)]
pub(super) struct RawFlow {
    pub(super) target: Option<Spanned<String>>,
    pub(super) source: Option<Spanned<String>>,
    pub(super) constant: Option<Spanned<RawScalar>>,
    pub(super) dn: Option<Spanned<String>>,
    pub(super) expression: Option<Spanned<String>>,
    pub(super) apply_once: Option<Spanned<bool>>,
}

/// A constant as TOML spells it; the TOML type picks the [`Value`] variant.
pub(super) enum RawScalar {
    String(String),
    Integer(i64),
    Boolean(bool),
}

impl RawScalar {
    pub(super) fn to_value(&self) -> Value {
        match self {
            RawScalar::String(s) => Value::String(s.clone()),
            RawScalar::Integer(i) => Value::Integer(*i),
            RawScalar::Boolean(b) => Value::Boolean(*b),
        }
    }
}

impl<'de> Deserialize<'de> for RawScalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl Visitor<'_> for ScalarVisitor {
            type Value = RawScalar;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string, integer or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawScalar, E> {
                Ok(RawScalar::String(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawScalar, E> {
                Ok(RawScalar::Integer(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawScalar, E> {
                i64::try_from(v)
                    .map(RawScalar::Integer)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawScalar, E> {
                Ok(RawScalar::Boolean(v))
            }
        }
        d.deserialize_any(ScalarVisitor)
    }
}

// ---------------------------------------------------------------------------------------------
// Error collection.
