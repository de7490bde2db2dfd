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

/// A duration as the config file spells it ("90s", "15m", "1h30m"), for command-line flags.
pub fn parse_duration(s: &str) -> Option<Duration> {
    load::parse_interval(s)
}
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
    /// The HTTPS status page.
    pub web: WebConfig,
    /// The listener for lightweight agents (`[agents]`); None: no agent may connect.
    pub agents: Option<AgentsConfig>,
}

/// Where agents connect (`[agents]`): one TLS port with mutual TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentsConfig {
    /// Address and port (default 0.0.0.0:8444; port 0 picks a free one).
    pub listen: std::net::SocketAddr,
    /// Extra DNS names or addresses agents use to reach the appliance, put in the
    /// certificate the listener presents (localhost, the loopback and listen addresses and
    /// the host name are always in it).
    pub names: Vec<String>,
    /// How long a token from `bridgehead agent-token` stays usable (default 15 minutes).
    pub token_lifetime: Duration,
    /// How often an agent reports (default 10 s); one missed for three times this is lost.
    pub heartbeat: Duration,
}

impl Default for AgentsConfig {
    fn default() -> Self {
        AgentsConfig {
            listen: std::net::SocketAddr::from(([0, 0, 0, 0], 8444)),
            names: Vec::new(),
            token_lifetime: Duration::from_secs(15 * 60),
            heartbeat: Duration::from_secs(10),
        }
    }
}

/// The HTTPS status page (`[web]`).
#[derive(Clone, Debug)]
pub struct WebConfig {
    /// Serve it at all (default true).
    pub enabled: bool,
    /// Address and port (default 127.0.0.1:8443; port 0 picks a free one).
    pub listen: std::net::SocketAddr,
    /// A configured certificate; None = a self-signed one generated beside the state file.
    pub tls: Option<TlsFiles>,
    /// Bearer token that scripts may use for `/api/` and `/metrics` instead of a login.
    pub api_token: Option<Secret>,
    /// A login session ends after this long without a request (default 30 minutes).
    pub session_idle: Duration,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            enabled: true,
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 8443)),
            tls: None,
            api_token: None,
            session_idle: Duration::from_secs(30 * 60),
        }
    }
}

/// A PEM certificate chain and its private key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub certificate: PathBuf,
    /// The private key.
    pub key: PathBuf,
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
    /// The agent group whose agents run this connector (`agent_group`); None: the
    /// appliance contacts the directory itself.
    pub agent_group: Option<String>,
}

/// The accidental-deletion guard of one connector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeletionThreshold {
    /// More deletes than this in one export are held (default 500, as Azure AD Connect).
    pub count: u64,
    /// Also held when the deletes exceed this percentage of the connector's objects.
    pub percent: Option<u8>,
    /// What a tripped threshold holds back.
    pub holds: ThresholdHolds,
}

/// What a tripped deletion threshold holds back until `approve`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ThresholdHolds {
    /// The connector's whole export run, as Entra Connect does: the target keeps the state
    /// from before the mass delete instead of a mix of before and after.
    #[default]
    Export,
    /// Only the deletes; the rest of the export goes on (`deletion_threshold_holds =
    /// "deletes"`).
    Deletes,
}

impl Default for DeletionThreshold {
    fn default() -> Self {
        DeletionThreshold {
            count: 500,
            percent: None,
            holds: ThresholdHolds::Export,
        }
    }
}

/// Type-specific connector settings.
#[derive(Clone, Debug)]
pub enum ConnectorKind {
    /// LDIF files in or out.
    Ldif(LdifConfig),
    /// Active Directory or another LDAP directory, read and written over LDAP.
    Ldap(Box<LdapConfig>),
    /// A SCIM 2.0 service (RFC 7643/7644): Users and Groups over HTTPS.
    Scim(Box<ScimConfig>),
    /// Microsoft Entra ID through Microsoft Graph.
    Graph(Box<GraphConfig>),
}

/// An `http://` or `https://` base URL, split into what a connection needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpUrl {
    /// https (TLS) or plain http.
    pub tls: bool,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port (default 443 or 80).
    pub port: u16,
    /// The path prefix without a trailing slash, like `/v2` (may be empty).
    pub path: String,
}

impl HttpUrl {
    /// Parses `https://host[:port][/path]`; says what is wrong otherwise.
    pub fn parse(url: &str) -> Result<HttpUrl, String> {
        let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err("expected a URL like \"https://scim.example.com/v2\"".into());
        };
        let (hostport, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if path.contains(['?', '#', ' ']) {
            return Err("the URL must be a base path, without query, fragment or spaces".into());
        }
        let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
            let (h, tail) = h
                .split_once(']')
                .ok_or("an IPv6 host needs its closing ']'")?;
            (h, tail.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            }
        };
        if host.is_empty() {
            return Err("the URL has no host".into());
        }
        let port = match port {
            None => {
                if tls {
                    443
                } else {
                    80
                }
            }
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("the port {p:?} is not a number from 1 to 65535"))?,
        };
        Ok(HttpUrl {
            tls,
            host: host.to_string(),
            port,
            path: path.to_string(),
        })
    }

    /// Whether the host is a loopback address (plain http is allowed only there).
    pub fn is_loopback(&self) -> bool {
        self.host.eq_ignore_ascii_case("localhost")
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

impl std::fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}{}", self.host, self.port, self.path)
        } else {
            write!(f, "{scheme}://{}:{}{}", self.host, self.port, self.path)
        }
    }
}

/// Settings of a `scim` connector.
#[derive(Clone, Debug)]
pub struct ScimConfig {
    /// The service's base URL, like `https://scim.example.com/v2`.
    pub url: HttpUrl,
    /// The bearer token sent with every request, if the service wants one.
    pub bearer_token: Option<Secret>,
    /// How the server's certificate is checked (https only).
    pub tls_verify: TlsVerify,
    /// A PEM file of CA certificates to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// Requests in flight at once during an export.
    pub in_flight: usize,
    /// Resources asked for per page on import.
    pub page_size: u32,
    /// How long one request may take before it counts as failed.
    pub timeout: Duration,
    /// Retries of a request that failed for a passing reason (429, 503, 5xx, network).
    pub max_retries: u32,
    /// Member values per PATCH operation when a group's membership changes.
    pub member_chunk: usize,
    /// Creates per bulk request where the service supports /Bulk (0: one POST each).
    pub bulk_size: usize,
    /// The schema URN of custom extension attributes (`<urn>:<name>` in rules).
    pub extension_urn: Option<String>,
    /// How long a delta import may go without listing the whole service (None: every
    /// delta import lists it). The confirming import after an export never lists: it
    /// reads back what was written.
    pub full_import_every: Option<Duration>,
}

/// Settings of a `graph` connector (Microsoft Entra ID through Microsoft Graph).
#[derive(Clone, Debug)]
pub struct GraphConfig {
    /// The tenant (directory) id or a verified domain of it.
    pub tenant_id: String,
    /// The application (client) id of the app registration.
    pub client_id: String,
    /// The app registration's client secret.
    pub client_secret: Secret,
    /// The token authority, `https://login.microsoftonline.com` unless a national cloud.
    pub authority: HttpUrl,
    /// Graph's v1.0 root, `https://graph.microsoft.com/v1.0` unless a national cloud.
    pub graph_url: HttpUrl,
    /// How the servers' certificates are checked.
    pub tls_verify: TlsVerify,
    /// A PEM file of CA certificates to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// How long one request may take.
    pub timeout: Duration,
    /// Retries of a request that failed for a passing reason (429, 503, network).
    pub max_retries: u32,
    /// `$batch` requests in flight at once during an export.
    pub in_flight: usize,
    /// Directory writes allowed per 150 seconds (Microsoft's published limit per app and
    /// tenant is 3,000); the connector paces itself to stay under it.
    pub write_budget: u32,
    /// Objects asked for per page on import.
    pub page_size: u32,
}

/// Which kind of LDAP directory a connector talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum LdapFlavor {
    /// Active Directory (Windows or Samba): objectGUID anchors, DirSync deltas.
    Ad,
    /// OpenLDAP, 389 DS and the like: entryUUID anchors, syncrepl deltas.
    Ldap,
}

/// How the server's TLS certificate is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TlsVerify {
    /// Chain to a trusted CA and the name or IP in the URL (the default).
    Full,
    /// Chain to the configured CA, any name: for DCs whose certificate has no subjectAltName.
    ChainOnly,
    /// No check at all: anyone on the path can read the bind password. Logged at every start.
    DangerAcceptInvalidCerts,
}

/// How delta imports find changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DeltaMethod {
    /// AD: DirSync; LDAP: syncrepl where the server offers it, else modifyTimestamp.
    Auto,
    /// AD DirSync control (needs replication rights, or falls back to object security).
    DirSync,
    /// AD uSNChanged polling plus a tombstone search, keyed by the DC's invocationId.
    Usn,
    /// RFC 4533 syncrepl refreshOnly.
    Syncrepl,
    /// modifyTimestamp polling plus an entryUUID sweep for deletes.
    Timestamp,
    /// No delta: every import reads everything.
    None,
}

/// Settings of an `ad` or `ldap` connector.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct LdapConfig {
    /// AD or plain LDAP.
    pub flavor: LdapFlavor,
    /// `ldaps://host:port` or `ldap://host:port`.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS (required for a simple bind).
    pub starttls: bool,
    /// Plain `ldap://` without TLS, allowed only to loopback and only when asked for.
    pub danger_plaintext: bool,
    /// The bind identity (a DN, or `user@domain` for AD).
    pub bind_dn: String,
    /// The bind password (never serialised: a job for an agent carries it apart, over
    /// the agent's mutual-TLS channel only).
    #[serde(skip)]
    pub bind_password: Secret,
    /// With `agent_group`: the file on the agents' hosts the agent reads the bind password
    /// from (`agent_bind_password_file`); the appliance then holds and sends none.
    pub agent_password_file: Option<PathBuf>,
    /// How the certificate is checked.
    pub tls_verify: TlsVerify,
    /// A PEM file of CA certificates to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// The naming context (domain) to read.
    pub base_dn: Dn,
    /// Only objects inside these subtrees (empty: the whole base).
    pub include_ous: Vec<Dn>,
    /// Never objects inside these subtrees.
    pub exclude_ous: Vec<Dn>,
    /// Only direct members of this group (and the group itself).
    pub member_of: Option<Dn>,
    /// Structural object classes imported.
    pub object_classes: Vec<String>,
    /// Per object class, an LDAP filter its objects must also match.
    pub filters: Vec<(String, String)>,
    /// Attributes read (empty: all user attributes).
    pub attributes: Vec<AttrName>,
    /// Attributes dropped on import (volatile ones like uSNChanged by default).
    pub exclude_attributes: Vec<AttrName>,
    /// Attributes with DN syntax: imported as references.
    pub reference_attributes: Vec<AttrName>,
    /// Attributes whose values stay binary even when they are valid UTF-8.
    pub binary_attributes: Vec<AttrName>,
    /// Paged-results page size.
    pub page_size: u32,
    /// Export operations in flight at once on the connection (LDAP lets a client send the
    /// next request before the last answer; independent items only, see the export).
    pub in_flight: usize,
    /// Ask for multi-valued attributes in ranges of this many values (AD range retrieval);
    /// None lets the server decide.
    pub range_size: Option<u32>,
    /// Delta import method.
    pub delta: DeltaMethod,
    /// Time limit for connecting and for each operation.
    pub timeout: Duration,
    /// Near-real-time mode: watch the directory for changes (AD change notification or a
    /// DirSync poll, LDAP syncrepl refreshAndPersist) and run a delta cycle soon after one.
    pub watch: bool,
    /// How long changes are collected before the delta cycle they wake starts, at most.
    pub watch_window: Duration,
}

/// Object classes an `ad` connector imports when none are configured.
pub const AD_OBJECT_CLASSES: &[&str] = &[
    "user",
    "inetOrgPerson",
    "group",
    "contact",
    "computer",
    "foreignSecurityPrincipal",
];

/// Object classes an `ldap` connector imports when none are configured.
pub const LDAP_OBJECT_CLASSES: &[&str] = &[
    "inetOrgPerson",
    "organizationalPerson",
    "person",
    "groupOfNames",
    "groupOfUniqueNames",
    "posixGroup",
    "device",
];

/// Attributes an `ad` connector drops unless configured otherwise: they change without
/// anyone editing the object (logons, replication bookkeeping) or are constructed.
pub const AD_EXCLUDED_ATTRIBUTES: &[&str] = &[
    "uSNChanged",
    "uSNCreated",
    "whenChanged",
    "dSCorePropagationData",
    "lastLogon",
    "lastLogonTimestamp",
    "lastLogoff",
    "logonCount",
    "badPwdCount",
    "badPasswordTime",
    "instanceType",
    "memberOf",
    "replPropertyMetaData",
    "msDS-KeyVersionNumber",
    "isCriticalSystemObject",
];

/// Attributes an `ldap` connector drops unless configured otherwise.
pub const LDAP_EXCLUDED_ATTRIBUTES: &[&str] = &[
    "modifyTimestamp",
    "modifiersName",
    "entryCSN",
    "contextCSN",
    "memberOf",
];

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
    /// Every `danger_*` setting in force, as (connector, what it turns off), in config
    /// order: the status page shows them on every page.
    pub fn danger_settings(&self) -> Vec<(String, &'static str)> {
        let mut out = Vec::new();
        for c in &self.connectors {
            let (plaintext, verify) = match &c.kind {
                ConnectorKind::Ldif(_) => continue,
                ConnectorKind::Ldap(l) => (l.danger_plaintext, l.tls_verify),
                ConnectorKind::Scim(s) => (!s.url.tls, s.tls_verify),
                ConnectorKind::Graph(g) => (!g.graph_url.tls || !g.authority.tls, g.tls_verify),
            };
            if plaintext {
                out.push((
                    c.name.to_string(),
                    "danger_plaintext: no TLS, passwords and data cross the wire in clear text",
                ));
            }
            if verify == TlsVerify::DangerAcceptInvalidCerts {
                out.push((
                    c.name.to_string(),
                    "tls_verify = danger_accept_invalid_certs: the server's certificate is not checked",
                ));
            }
        }
        out
    }

    /// The connector with this name.
    pub fn connector(&self, name: &ConnectorName) -> Option<&ConnectorConfig> {
        self.connectors.iter().find(|c| &c.name == name)
    }
}

/// Host, port (389 or 636 by default) and whether TLS starts at once (`ldaps://`) of an
/// `ldap://` or `ldaps://` URL, or why it is not one: the loader checks a connector's URL with
/// it, and the LDAP connector connects with it.
pub fn ldap_endpoint(url: &str) -> Result<(String, u16, bool), String> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("ldaps://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("ldap://") {
        (false, r)
    } else {
        return Err(
            "expected a URL like \"ldaps://dc1.corp.example.test\" or \"ldap://host:389\"".into(),
        );
    };
    let hostport = rest.split('/').next().unwrap_or("");
    let (host, port) = match hostport.strip_prefix('[') {
        Some(h) => match h.split_once(']') {
            Some((h, after)) => (h, after.strip_prefix(':')),
            None => (h, None),
        },
        None => match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        },
    };
    if host.is_empty() {
        return Err("the URL has no host".into());
    }
    let port = match port {
        None => {
            if tls {
                636
            } else {
                389
            }
        }
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| format!("the port {p:?} is not a number from 1 to 65535"))?,
    };
    Ok((host.to_string(), port, tls))
}
