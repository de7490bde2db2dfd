//! The status page's certificate: the configured one, or a self-signed one generated on
//! first start (rcgen, ECDSA P-256) and kept beside the state file. Its SHA-256 fingerprint
//! is logged so the admin can compare it with what the browser shows.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

use crate::config::TlsFiles;

/// Where the generated certificate and key live for a state file.
pub fn generated_paths(state_file: &Path) -> TlsFiles {
    TlsFiles {
        certificate: state_file.with_extension("web-cert.pem"),
        key: state_file.with_extension("web-key.pem"),
    }
}

/// The certificate in use.
pub struct Loaded {
    /// The server config built from it.
    pub server: Arc<rustls::ServerConfig>,
    /// SHA-256 of the leaf certificate, colon-separated upper-case hex.
    pub fingerprint: String,
    /// Its files.
    pub files: TlsFiles,
    /// Whether it was generated just now.
    pub generated: bool,
}

/// SHA-256 fingerprint as browsers show it.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn hostname() -> Option<String> {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let h = h.trim();
    (!h.is_empty()).then(|| h.to_string())
}

/// Writes a fresh self-signed certificate and key (0600) to `files`.
fn generate(files: &TlsFiles, listen: SocketAddr) -> Result<(), String> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    names.extend(hostname());
    if !listen.ip().is_unspecified() && !listen.ip().is_loopback() {
        names.push(listen.ip().to_string());
    }
    let mut params = rcgen::CertificateParams::new(names)
        .map_err(|e| format!("cannot build the certificate request: {e}"))?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Bridgehead status page");
    // Five years from today: long enough not to surprise an appliance; delete the two files
    // and restart to renew.
    let today = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (y, m, d) = crate::model::civil_from_days(today / 86_400);
    params.not_before = rcgen::date_time_ymd(y as i32, m as u8, d as u8);
    params.not_after = rcgen::date_time_ymd(y as i32 + 5, m as u8, d.min(28) as u8);
    let key = rcgen::KeyPair::generate().map_err(|e| format!("cannot generate a key: {e}"))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| format!("cannot sign the certificate: {e}"))?;
    // The key is created 0600 before a byte is written, and never replaces an existing file.
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(&files.key)
        .map_err(|e| format!("cannot create {}: {e}", files.key.display()))?;
    f.write_all(key.serialize_pem().as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", files.key.display()))?;
    std::fs::write(&files.certificate, cert.pem())
        .map_err(|e| format!("cannot write {}: {e}", files.certificate.display()))?;
    Ok(())
}

/// Loads the configured certificate, or the generated one (generating it when missing).
pub fn load(
    configured: Option<&TlsFiles>,
    state_file: &Path,
    listen: SocketAddr,
) -> Result<Loaded, String> {
    let (files, generated) = match configured {
        Some(f) => (f.clone(), false),
        None => {
            let f = generated_paths(state_file);
            let missing = !f.certificate.exists() || !f.key.exists();
            if missing {
                // A half-written pair from an interrupted first start is replaced whole.
                let _ = std::fs::remove_file(&f.certificate);
                let _ = std::fs::remove_file(&f.key);
                generate(&f, listen)?;
            }
            (f, missing)
        }
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.certificate)
        .and_then(|it| it.collect())
        .map_err(|e| {
            format!(
                "{}: not a PEM certificate: {e}",
                files.certificate.display()
            )
        })?;
    let leaf = certs
        .first()
        .ok_or_else(|| format!("{}: no certificate in it", files.certificate.display()))?;
    let fingerprint = fingerprint(leaf.as_ref());
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| format!("{}: not a PEM private key: {e}", files.key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            format!(
                "{} and {} do not make a usable certificate: {e}",
                files.certificate.display(),
                files.key.display()
            )
        })?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Loaded {
        server: Arc::new(server),
        fingerprint,
        files,
        generated,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_generated_certificate_is_kept_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.redb");
        let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let first = load(None, &state, listen).unwrap();
        assert!(first.generated);
        assert_eq!(first.fingerprint.len(), 32 * 3 - 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&first.files.key)
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let second = load(None, &state, listen).unwrap();
        assert!(!second.generated);
        assert_eq!(first.fingerprint, second.fingerprint);
        let bad = TlsFiles {
            certificate: dir.path().join("nope.pem"),
            key: dir.path().join("nope.key"),
        };
        let e = load(Some(&bad), &state, listen).err().unwrap();
        assert!(e.contains("nope.pem"), "{e}");
    }
}
