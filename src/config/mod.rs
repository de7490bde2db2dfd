//! The TOML config file turned into typed, checked values.
//!
//! Parsing happens once, at load, and completely: every error names the file, the line and
//! column, the key, and what was expected. Code after this module never meets an unchecked
//! string. Secrets are read from `*_file` keys or environment variables, held in
//! [`Secret`], and never printed.

mod load;
mod secret;

use std::path::PathBuf;
use std::time::Duration;

use crate::model::{AttrName, ConnectorName, Dn};
use crate::rules::RuleSet;

pub use load::ConfigError;
pub use secret::Secret;

/// The whole configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The file it was read from.
    pub path: PathBuf,
    /// The redb state file (relative paths are resolved against the config file's folder).
    pub state_file: PathBuf,
    /// Where `run` mode writes rolling log files; None = stderr only.
    pub log_dir: Option<PathBuf>,
    /// Scheduler settings.
    pub schedule: Schedule,
    /// Staging mode: import and sync run, exports never do; pending exports wait for review.
    pub staging: bool,
    /// Connectors in config order (the order a cycle runs them).
    pub connectors: Vec<ConnectorConfig>,
    /// Sync rules.
    pub rules: RuleSet,
}

/// When `run` mode starts cycles.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schedule {
    /// Time between the start of one cycle and the next (default 5 minutes).
    pub interval: Duration,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            interval: Duration::from_secs(300),
        }
    }
}

/// One configured connector.
#[derive(Clone, Debug)]
pub struct ConnectorConfig {
    /// Its unique name.
    pub name: ConnectorName,
    /// Type-specific settings.
    pub kind: ConnectorKind,
    /// How many deletes one export may carry before it stops for approval.
    pub deletion_threshold: DeletionThreshold,
    /// Attributes whose values must be unique among this connector's objects (e.g. mail,
    /// userPrincipalName, proxyAddresses): a second object wanting a taken value is
    /// quarantined instead of exported.
    pub unique_attributes: Vec<AttrName>,
}

/// The accidental-deletion guard of one connector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeletionThreshold {
    /// More deletes than this in one export are held (default 500, as Azure AD Connect).
    pub count: u64,
    /// Also held when the deletes exceed this percentage of the connector's objects.
    pub percent: Option<u8>,
}

impl Default for DeletionThreshold {
    fn default() -> Self {
        DeletionThreshold {
            count: 500,
            percent: None,
        }
    }
}

/// Type-specific connector settings.
#[derive(Clone, Debug)]
pub enum ConnectorKind {
    /// LDIF files in or out.
    Ldif(LdifConfig),
}

/// Whether an LDIF connector reads a file or writes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LdifMode {
    /// Read the file; never written.
    Source,
    /// Written whole after each export (write + rename), read back to confirm.
    Target,
}

/// Settings of an `ldif` connector.
#[derive(Clone, Debug)]
pub struct LdifConfig {
    /// The LDIF file.
    pub path: PathBuf,
    /// source or target.
    pub mode: LdifMode,
    /// The attribute holding each entry's anchor (a target connector generates it on add).
    pub anchor: AttrName,
    /// Naming contexts in the file (for the `container` DN part).
    pub partitions: Vec<Dn>,
    /// Attributes with DN syntax: imported as references.
    pub reference_attributes: Vec<AttrName>,
    /// Attributes whose base64 values stay binary even when they are valid UTF-8.
    pub binary_attributes: Vec<AttrName>,
}

/// Reference attributes when none are configured.
pub const DEFAULT_REFERENCE_ATTRIBUTES: &[&str] = &[
    "member",
    "uniqueMember",
    "manager",
    "managedBy",
    "secretary",
    "seeAlso",
    "owner",
    "directReports",
    "memberOf",
];

/// Binary attributes when none are configured.
pub const DEFAULT_BINARY_ATTRIBUTES: &[&str] = &[
    "objectGUID",
    "objectSid",
    "ms-DS-ConsistencyGuid",
    "mS-DS-ConsistencyGuid",
    "jpegPhoto",
    "thumbnailPhoto",
    "userCertificate",
    "sIDHistory",
];

impl Config {
    /// The connector with this name.
    pub fn connector(&self, name: &ConnectorName) -> Option<&ConnectorConfig> {
        self.connectors.iter().find(|c| &c.name == name)
    }
}
