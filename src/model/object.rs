//! Connector-space and metaverse objects as the engine sees them.

use serde::{Deserialize, Serialize};

use super::{Anchor, Attributes, ConnectorName, CsId, Dn};

/// A connector-space object: the last imported state of one directory object (the hologram).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CsObject {
    /// Internal id, stable across renames.
    pub id: CsId,
    /// The connector whose space holds it.
    pub connector: ConnectorName,
    /// The directory's immutable id; None for a provisioned object not yet exported.
    pub anchor: Option<Anchor>,
    /// Current DN in the directory.
    pub dn: Dn,
    /// The structural object class (user, group, inetOrgPerson, ...).
    pub object_class: String,
    /// Attribute values as imported.
    pub attrs: Attributes,
}

/// Which connector and rule supplied an MV attribute's current value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contribution {
    /// The connector whose CS object supplied the value.
    pub connector: ConnectorName,
    /// The inbound rule's name.
    pub rule: String,
    /// That rule's precedence (lower wins).
    pub precedence: u32,
}
