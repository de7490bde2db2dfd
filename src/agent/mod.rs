//! Lightweight agents: the same binary run next to a directory the appliance cannot reach,
//! connecting out to the appliance over one TLS port with mutual TLS.
//!
//! ```text
//! forest B ←LDAPS→ agent ──mTLS, HTTP/2, outbound only──→ appliance :8444 (listener)
//! ```
//!
//! Trust: the appliance keeps its own agent CA ([`ca`]) beside the state file. `bridgehead
//! agent-token --group G` writes a one-time, short-lived token ([`tokens`]); the agent
//! enrols with it over TLS pinned to the CA's SHA-256 fingerprint, sends a certificate
//! request for a key it made and keeps (0600), and gets a client certificate of that CA
//! naming its id and group. From then on it connects with that certificate; the listener's
//! verifier ([`verify`]) refuses at the handshake a certificate the CA did not issue, one
//! the registry does not know, and one revoked ([`registry`]).
//!
//! Channel: one long-lived HTTP/2 connection per agent (hyper), opened by the agent, kept
//! alive by HTTP/2 PINGs, reopened with backoff ([`client`]). The appliance's side is
//! [`listener`]; what each request means is decided without IO in [`protocol`].
//!
//! Work: a connector with `agent_group` is, in `bridgehead run`, a [`remote::RemoteConnector`]:
//! the runner calls the usual `Connector` trait, the remote connector queues a job for the
//! group and feeds what comes back into the runner's sink on the runner's thread. The agent
//! long-polls for work over its connection and runs the job with the ad/ldap code of this
//! binary ([`worker`]): changes travel back in batches, one on the wire and one queued at
//! most; export outcomes chunk by chunk. A job whose agent is lost goes to another agent of
//! the group (an import from its starting watermark, an export with only the items
//! without an outcome).
//!
//! This module owns the agent's files and the appliance's agent files; it never opens the
//! store and knows nothing of rules or the metaverse.

pub mod ca;
pub mod client;
pub mod jobs;
pub mod listener;
pub mod protocol;
pub mod registry;
pub mod remote;
pub mod tokens;
pub mod verify;
pub mod worker;

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// This build's version, as agents and the appliance tell each other.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The oldest agent this appliance works with: the first version that speaks protocol 1.
pub const MIN_AGENT_VERSION: &str = "0.1.0";

/// The header carrying the sender's version on every request and answer.
pub const VERSION_HEADER: &str = "bridgehead-version";

/// The folder beside the state file holding the agent CA, the tokens and the registry.
pub fn appliance_dir(state_file: &Path) -> PathBuf {
    state_file.with_extension("agents")
}

/// A version as three numbers; None when it is not `MAJOR.MINOR.PATCH` (a suffix such as
/// `-rc1` is ignored).
pub fn parse_version(v: &str) -> Option<(u64, u64, u64)> {
    let core = v.trim().split(['-', '+']).next()?;
    let mut it = core.split('.').map(|p| p.parse::<u64>().ok());
    let out = (it.next()??, it.next()??, it.next()??);
    it.next().is_none().then_some(out)
}

/// Why an agent's version is refused, in words that say which version is needed.
pub fn version_refusal(agent: Option<&str>) -> Option<String> {
    let needed = parse_version(MIN_AGENT_VERSION)?;
    match agent.map(|a| (a, parse_version(a))) {
        Some((_, Some(v))) if v >= needed => None,
        Some((a, Some(_))) => Some(format!(
            "agent version {a} is too old: this appliance ({VERSION}) needs agent version \
             {MIN_AGENT_VERSION} or later"
        )),
        Some((a, None)) => Some(format!(
            "agent version {a:?} is not a version: this appliance ({VERSION}) needs agent \
             version {MIN_AGENT_VERSION} or later"
        )),
        None => Some(format!(
            "the agent sent no {VERSION_HEADER} header: this appliance ({VERSION}) needs \
             agent version {MIN_AGENT_VERSION} or later"
        )),
    }
}

/// Creates a folder private to this user (0700), and its parents.
pub fn private_dir(dir: &Path) -> Result<(), String> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
        .map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

/// Writes a file readable by this user only (0600), replacing it whole: written beside it,
/// synced, then renamed over it, so that a crash leaves the old or the new file.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(&tmp)
        .map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Random bytes from the OS.
fn random<const N: usize>() -> Result<[u8; N], String> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| format!("the OS random source failed: {e}"))?;
    Ok(buf)
}

/// Lower-case hex.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of a DER certificate as colon-separated upper-case hex, as browsers and
/// `openssl x509 -fingerprint -sha256` show it.
pub fn fingerprint(der: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A fingerprint as the admin may type it (any case, with or without colons) in the
/// canonical form; None when it is not 32 bytes of hex.
pub fn normalise_fingerprint(given: &str) -> Option<String> {
    let digits: String = given
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .collect();
    let digits = digits.strip_prefix("SHA256=").unwrap_or(&digits);
    if digits.len() != 64 || !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let up = digits.to_ascii_uppercase();
    Some(
        up.as_bytes()
            .chunks(2)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(":"),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn versions_compare_by_number() {
        assert_eq!(parse_version("0.10.2"), Some((0, 10, 2)));
        assert_eq!(parse_version("1.2.3-rc1"), Some((1, 2, 3)));
        assert_eq!(parse_version("1.2"), None);
        assert_eq!(parse_version("1.2.3.4"), None);
        assert!(version_refusal(Some(VERSION)).is_none());
        assert!(version_refusal(Some("99.0.0")).is_none());
        let old = version_refusal(Some("0.0.9")).unwrap();
        assert!(old.contains("0.0.9 is too old"), "{old}");
        assert!(old.contains(&format!("needs agent version {MIN_AGENT_VERSION}")));
        assert!(
            version_refusal(None)
                .unwrap()
                .contains("no bridgehead-version")
        );
        assert!(
            version_refusal(Some("new"))
                .unwrap()
                .contains("not a version")
        );
    }

    #[test]
    fn fingerprints_are_read_as_typed() {
        let f = fingerprint(b"x");
        assert_eq!(normalise_fingerprint(&f).as_deref(), Some(f.as_str()));
        let plain = f.replace(':', "").to_ascii_lowercase();
        assert_eq!(normalise_fingerprint(&plain).as_deref(), Some(f.as_str()));
        assert_eq!(normalise_fingerprint("abcd"), None);
    }

    #[test]
    fn private_files_are_0600_and_replaced_whole() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub").join("key.pem");
        private_dir(p.parent().unwrap()).unwrap();
        write_private(&p, b"one").unwrap();
        write_private(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let mode = std::fs::metadata(p.parent().unwrap())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700);
        }
    }
}
