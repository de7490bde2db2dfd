//! Connector-space and metaverse objects as the engine sees them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Anchor, AttrName, Attributes, ConnectorName, CsId, Dn, MvId, ObjectType};

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

/// A metaverse object: one real identity, joined from any number of connector spaces.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MvObject {
    /// Its id.
    pub id: MvId,
    /// person, group, contact or device.
    pub object_type: ObjectType,
    /// The joined attribute values; references are [`super::RefTarget::Mv`].
    pub attrs: Attributes,
    /// For each attribute, who supplied it (lineage for preview and the status page).
    pub contributors: BTreeMap<AttrName, Contribution>,
}
