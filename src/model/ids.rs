//! Identifiers: anchors, internal ids, connector names and object types.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The immutable id of an object in its own directory (objectGUID, entryUUID, SCIM id, ...).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Anchor(Vec<u8>);

impl Anchor {
    /// Wraps the directory's raw anchor bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Anchor(bytes.into())
    }

    /// The raw bytes, as the directory gave them.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// A 16-byte GUID in AD's string form (first three fields little-endian, as objectGUID is
/// stored): `4afdf953-…`.
pub fn guid_string(b: &[u8]) -> Option<String> {
    let b: &[u8; 16] = b.try_into().ok()?;
    Some(format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[3],
        b[2],
        b[1],
        b[0],
        b[5],
        b[4],
        b[7],
        b[6],
        b[8],
        b[9],
        b[10],
        b[11],
        b[12],
        b[13],
        b[14],
        b[15]
    ))
}

impl fmt::Display for Anchor {
    /// Text anchors print as text, 16-byte binary ones (objectGUID) in AD's GUID form,
    /// other binary ones as hex.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match std::str::from_utf8(&self.0) {
            Ok(s) if s.chars().all(|c| !c.is_control()) => f.write_str(s),
            _ if self.0.len() == 16 => f.write_str(&guid_string(&self.0).unwrap_or_default()),
            _ => {
                for b in &self.0 {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Debug for Anchor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Anchor({self})")
    }
}

/// Id of a metaverse object; allocated from a counter in the store, never reused.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct MvId(pub u64);

impl fmt::Display for MvId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "mv:{}", self.0)
    }
}

/// Id of a connector-space object; stable across renames and before the directory assigns
/// an anchor (a provisioned object waiting for its add to be exported has none yet).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct CsId(pub u64);

impl fmt::Display for CsId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cs:{}", self.0)
    }
}

/// Why a name was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct NameError(String);

/// A configured connector's name: 1-64 characters of `[A-Za-z0-9_-]`, compared exactly.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct ConnectorName(String);

impl ConnectorName {
    /// Checks the spelling rules; names appear in file paths, URLs and store keys.
    pub fn new(name: &str) -> Result<Self, NameError> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if ok {
            Ok(ConnectorName(name.to_string()))
        } else {
            Err(NameError(format!(
                "connector name {name:?} must be 1-64 characters of letters, digits, '_' or '-'"
            )))
        }
    }

    /// The name as configured.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ConnectorName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The kind of identity a metaverse object stands for.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub enum ObjectType {
    /// A user account.
    Person,
    /// A security or distribution group.
    Group,
    /// A mail contact without an account.
    Contact,
    /// A computer or device.
    Device,
}

impl ObjectType {
    /// All types, in the order exports are applied (members before the groups that list them).
    pub const ALL: [ObjectType; 4] = [
        ObjectType::Person,
        ObjectType::Contact,
        ObjectType::Device,
        ObjectType::Group,
    ];

    /// The lower-case name used in config and output.
    pub fn as_str(self) -> &'static str {
        match self {
            ObjectType::Person => "person",
            ObjectType::Group => "group",
            ObjectType::Contact => "contact",
            ObjectType::Device => "device",
        }
    }

    /// Parses the config spelling.
    pub fn parse(s: &str) -> Option<Self> {
        ObjectType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for ObjectType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
