//! Certificate checks on both ends of the channel.
//!
//! - The listener's [`AgentClientVerifier`]: a client certificate must chain to the agent CA
//!   (rustls's webpki verifier) and belong to an enrolled, unrevoked agent of the registry;
//!   otherwise the handshake fails. A connection without a certificate is let through the
//!   handshake, and may then only enrol.
//! - An enrolling agent's [`PinnedCa`]: it has no CA yet, only the fingerprint the admin
//!   gave; the listener's chain must hold a certificate with that fingerprint, and the
//!   server certificate is then checked against it as the one trusted root (name included).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, Error, SignatureScheme};

use super::fingerprint;
use super::registry::Registry;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Roots holding one CA certificate.
fn roots_of(ca: &CertificateDer<'_>) -> Result<Arc<rustls::RootCertStore>, Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone().into_owned())?;
    Ok(Arc::new(roots))
}

/// The listener's client-certificate check.
#[derive(Debug)]
pub struct AgentClientVerifier {
    inner: Arc<dyn ClientCertVerifier>,
    registry: RegistryRef,
}

/// The registry, with a Debug that does not print it.
#[derive(Clone)]
struct RegistryRef(Registry);

impl std::fmt::Debug for RegistryRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Registry")
    }
}

impl AgentClientVerifier {
    /// A verifier trusting `ca` and asking `registry` at each handshake.
    pub fn new(ca: &CertificateDer<'_>, registry: Registry) -> Result<Arc<Self>, String> {
        let roots = roots_of(ca).map_err(|e| format!("the agent CA: {e}"))?;
        let inner = rustls::server::WebPkiClientVerifier::builder_with_provider(roots, provider())
            .allow_unauthenticated()
            .build()
            .map_err(|e| format!("the agent CA: {e}"))?;
        Ok(Arc::new(AgentClientVerifier {
            inner,
            registry: RegistryRef(registry),
        }))
    }
}

impl ClientCertVerifier for AgentClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, Error> {
        let ok = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        // Issued by our CA is not enough: the register must know it, unrevoked.
        match self.registry.0.trusted(&fingerprint(end_entity.as_ref())) {
            Some(_) => Ok(ok),
            None => Err(Error::InvalidCertificate(CertificateError::Revoked)),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// An enrolling agent's check of the listener: the chain must contain the pinned CA.
#[derive(Debug)]
pub struct PinnedCa {
    fingerprint: String,
    schemes: Vec<SignatureScheme>,
}

impl PinnedCa {
    /// Pins the CA with this fingerprint (canonical form, see
    /// [`super::normalise_fingerprint`]).
    pub fn new(fingerprint: String) -> Arc<Self> {
        let schemes = provider()
            .signature_verification_algorithms
            .supported_schemes();
        Arc::new(PinnedCa {
            fingerprint,
            schemes,
        })
    }
}

impl ServerCertVerifier for PinnedCa {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let Some(ca) = intermediates
            .iter()
            .find(|c| fingerprint(c.as_ref()) == self.fingerprint)
        else {
            return Err(Error::General(format!(
                "the appliance's certificate chain holds no CA with fingerprint {}: wrong \
                 --ca-fingerprint, or not a Bridgehead agent listener",
                self.fingerprint
            )));
        };
        let v =
            rustls::client::WebPkiServerVerifier::builder_with_provider(roots_of(ca)?, provider())
                .build()
                .map_err(|e| Error::General(e.to_string()))?;
        v.verify_server_cert(end_entity, &[], server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes.clone()
    }
}

/// The agent's check of the listener once enrolled: its stored CA is the one root.
pub fn enrolled_verifier(ca: &CertificateDer<'_>) -> Result<Arc<dyn ServerCertVerifier>, String> {
    let roots = roots_of(ca).map_err(|e| format!("the stored appliance CA: {e}"))?;
    let v = rustls::client::WebPkiServerVerifier::builder_with_provider(roots, provider())
        .build()
        .map_err(|e| format!("the stored appliance CA: {e}"))?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::agent::ca::AgentCa;
    use crate::agent::registry::AgentRecord;
    use crate::model::FixedClock;
    use rustls::pki_types::pem::PemObject;

    #[test]
    fn unknown_and_revoked_certificates_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let ca = AgentCa::load_or_create(d.path()).unwrap();
        let reg = Registry::open(d.path(), Arc::new(FixedClock::at(0)), 1000).unwrap();
        let v = AgentClientVerifier::new(ca.cert_der(), reg.clone()).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let csr = rcgen::CertificateParams::new(Vec::<String>::new())
            .unwrap()
            .serialize_request(&key)
            .unwrap()
            .pem()
            .unwrap();
        let pem = ca.issue_client(&csr, "a1", "fab").unwrap();
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        let now = UnixTime::now();
        // Issued by the CA but not in the register (enrolment never finished).
        assert!(v.verify_client_cert(&der, &[], now).is_err());
        reg.add(AgentRecord {
            id: "a1".into(),
            group: "fab".into(),
            fingerprint: fingerprint(der.as_ref()),
            host: "h".into(),
            enrolled_ms: 0,
            revoked: None,
        })
        .unwrap();
        v.verify_client_cert(&der, &[], now).unwrap();
        reg.revoke("a1", "test").unwrap();
        assert!(v.verify_client_cert(&der, &[], now).is_err());
        // A certificate of another CA never passes.
        let other = tempfile::tempdir().unwrap();
        let other_ca = AgentCa::load_or_create(other.path()).unwrap();
        let pem = other_ca.issue_client(&csr, "a1", "fab").unwrap();
        let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
        assert!(v.verify_client_cert(&der, &[], now).is_err());
    }

    #[test]
    fn the_pin_must_match_a_ca_in_the_chain() {
        let d = tempfile::tempdir().unwrap();
        let ca = AgentCa::load_or_create(d.path()).unwrap();
        let (chain, _) = ca.server_cert(&["localhost".into()]).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let now = UnixTime::now();
        PinnedCa::new(ca.fingerprint())
            .verify_server_cert(&chain[0], &chain[1..], &name, &[], now)
            .unwrap();
        let wrong = PinnedCa::new(fingerprint(b"another"));
        let e = wrong
            .verify_server_cert(&chain[0], &chain[1..], &name, &[], now)
            .unwrap_err();
        assert!(e.to_string().contains("no CA with fingerprint"), "{e}");
        // The right pin, the wrong name.
        let other = ServerName::try_from("bh.example.com").unwrap();
        assert!(
            PinnedCa::new(ca.fingerprint())
                .verify_server_cert(&chain[0], &chain[1..], &other, &[], now)
                .is_err()
        );
    }
}
