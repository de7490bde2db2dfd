//! The appliance's agent CA (rcgen, ECDSA P-256): made on first use and kept beside the
//! state file (key 0600). It signs the agents' client certificates and, at every start of
//! the listener, a fresh server certificate for the names agents use.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::{fingerprint, write_private};

/// How long the CA is valid: the appliance's life; renewing it means enrolling again.
const CA_YEARS: i32 = 20;
/// How long an agent's certificate is valid.
const AGENT_YEARS: i32 = 5;

/// The agent CA.
pub struct AgentCa {
    key_pem: String,
    cert_pem: String,
    cert_der: CertificateDer<'static>,
}

fn today() -> (i32, u8, u8) {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (y, m, d) = crate::model::civil_from_days(secs / 86_400);
    (y as i32, m as u8, d as u8)
}

/// Valid from yesterday (clocks of agents drift) for `years`.
fn validity(params: &mut CertificateParams, years: i32) {
    let (y, m, d) = today();
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (py, pm, pd) = crate::model::civil_from_days(secs / 86_400 - 1);
    params.not_before = rcgen::date_time_ymd(py as i32, pm as u8, pd as u8);
    params.not_after = rcgen::date_time_ymd(y + years, m, d.min(28));
}

impl AgentCa {
    fn files(dir: &Path) -> (PathBuf, PathBuf) {
        (dir.join("ca-key.pem"), dir.join("ca-cert.pem"))
    }

    /// The CA in `dir`, made there when it has none.
    pub fn load_or_create(dir: &Path) -> Result<AgentCa, String> {
        super::private_dir(dir)?;
        let (key_file, cert_file) = Self::files(dir);
        if !key_file.exists() || !cert_file.exists() {
            Self::create(&key_file, &cert_file)?;
        }
        let key_pem = std::fs::read_to_string(&key_file)
            .map_err(|e| format!("cannot read the agent CA key {}: {e}", key_file.display()))?;
        let cert_pem = std::fs::read_to_string(&cert_file)
            .map_err(|e| format!("cannot read the agent CA {}: {e}", cert_file.display()))?;
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| format!("{}: not a PEM certificate: {e}", cert_file.display()))?;
        KeyPair::from_pem(&key_pem)
            .map_err(|e| format!("{}: not a usable key: {e}", key_file.display()))?;
        Ok(AgentCa {
            key_pem,
            cert_pem,
            cert_der,
        })
    }

    fn create(key_file: &Path, cert_file: &Path) -> Result<(), String> {
        let key = KeyPair::generate().map_err(|e| format!("cannot make the CA key: {e}"))?;
        let mut params = CertificateParams::new(Vec::<String>::new())
            .map_err(|e| format!("cannot build the agent CA: {e}"))?;
        params
            .distinguished_name
            .push(DnType::CommonName, "Bridgehead agent CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut params, CA_YEARS);
        let cert = params
            .self_signed(&key)
            .map_err(|e| format!("cannot sign the agent CA: {e}"))?;
        // The key first: a certificate without its key is replaced on the next start.
        write_private(key_file, key.serialize_pem().as_bytes())?;
        write_private(cert_file, cert.pem().as_bytes())
    }

    /// The CA certificate (DER).
    pub fn cert_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// The CA certificate (PEM), as agents keep it.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA's SHA-256 fingerprint, what `agent --enroll --ca-fingerprint` pins.
    pub fn fingerprint(&self) -> String {
        fingerprint(self.cert_der.as_ref())
    }

    fn key(&self) -> Result<KeyPair, String> {
        KeyPair::from_pem(&self.key_pem).map_err(|e| format!("the agent CA key: {e}"))
    }

    /// Signs a client certificate for the key in `csr_pem`: the request's own names and
    /// uses are ignored; the certificate names the agent's id and group and allows client
    /// authentication only.
    pub fn issue_client(
        &self,
        csr_pem: &str,
        agent_id: &str,
        group: &str,
    ) -> Result<String, String> {
        let csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| format!("the certificate request cannot be read: {e}"))?;
        let mut params = CertificateParams::new(Vec::<String>::new())
            .map_err(|e| format!("cannot build the agent certificate: {e}"))?;
        params.distinguished_name.push(DnType::CommonName, agent_id);
        params
            .distinguished_name
            .push(DnType::OrganizationalUnitName, group);
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        validity(&mut params, AGENT_YEARS);
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, self.key()?)
            .map_err(|e| format!("the agent CA cannot sign: {e}"))?;
        let cert = params
            .signed_by(&csr.public_key, &issuer)
            .map_err(|e| format!("cannot sign the agent certificate: {e}"))?;
        Ok(cert.pem())
    }

    /// A fresh server certificate for the listener, valid for `names` (DNS names or IP
    /// addresses), with its key; the chain ends with the CA so that an enrolling agent can
    /// find the certificate it pins.
    pub fn server_cert(
        &self,
        names: &[String],
    ) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
        let key = KeyPair::generate().map_err(|e| format!("cannot make a key: {e}"))?;
        let mut params = CertificateParams::new(names.to_vec())
            .map_err(|e| format!("cannot build the listener certificate: {e}"))?;
        params
            .distinguished_name
            .push(DnType::CommonName, "Bridgehead agent listener");
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        validity(&mut params, 1);
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, self.key()?)
            .map_err(|e| format!("the agent CA cannot sign: {e}"))?;
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(|e| format!("cannot sign the listener certificate: {e}"))?;
        let key_der = PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes())
            .map_err(|e| format!("the listener key: {e}"))?;
        Ok((vec![cert.der().clone(), self.cert_der.clone()], key_der))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_ca_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let a = AgentCa::load_or_create(dir.path()).unwrap();
        let b = AgentCa::load_or_create(dir.path()).unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("ca-key.pem"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_client_certificate_names_the_agent_and_chains_to_the_ca() {
        let dir = tempfile::tempdir().unwrap();
        let ca = AgentCa::load_or_create(dir.path()).unwrap();
        let key = KeyPair::generate().unwrap();
        let asked = CertificateParams::new(vec!["evil.example".to_string()]).unwrap();
        let csr = asked.serialize_request(&key).unwrap().pem().unwrap();
        let pem = ca.issue_client(&csr, "agent-1", "fab").unwrap();
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        // The request's own names are not taken over.
        let text = String::from_utf8_lossy(der.as_ref()).into_owned();
        assert!(!text.contains("evil.example") && text.contains("agent-1"));
        // The CA's roots verify it as a client certificate.
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.cert_der().clone()).unwrap();
        let v = rustls::server::WebPkiClientVerifier::builder_with_provider(
            std::sync::Arc::new(roots),
            std::sync::Arc::new(rustls::crypto::ring::default_provider()),
        )
        .build()
        .unwrap();
        v.verify_client_cert(&der, &[], rustls::pki_types::UnixTime::now())
            .unwrap();
        assert!(ca.issue_client("not a request", "a", "g").is_err());
    }
}
