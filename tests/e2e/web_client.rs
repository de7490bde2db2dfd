//! Helpers for the status-page tests: start `run`/`demo` with the status page on a free
//! port, learn its URL from the log, and talk HTTPS to it with a client that trusts exactly
//! the generated certificate (no verification switched off).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::support::{Background, Must, TestDir, wait_for_log};

/// A running daemon with its status page.
pub struct Daemon {
    /// The process, killed when this is dropped.
    _process: Background,
    /// `https://127.0.0.1:PORT/`.
    pub url: String,
    /// host:port.
    pub addr: String,
    /// The certificate file the daemon serves.
    pub cert: PathBuf,
    /// The private key file.
    pub key: PathBuf,
}

impl Daemon {
    /// Sends the daemon a signal by name (`HUP`, `TERM`).
    pub fn signal(&self, name: &str) {
        self._process.signal(name);
    }

    /// Waits up to `limit` for the daemon to exit; its exit code, or None if still running.
    pub fn wait_for_exit(&mut self, limit: Duration) -> Option<i32> {
        self._process.wait_for_exit(limit)
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self._process.id()
    }
}

/// Waits for the "status page listening" line and reads the URL and fingerprint from it.
pub fn wait_for_status_page(process: Background, log: &Path, state_dir: &Path) -> Daemon {
    assert!(
        wait_for_log(log, "status page listening", Duration::from_secs(120)),
        "the status page never came up:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
    let text = std::fs::read_to_string(log).must("reading the log");
    let line = text
        .lines()
        .find(|l| l.contains("status page listening"))
        .must("the listening line");
    let field = |name: &str| -> String {
        let at = line.find(&format!("{name}=")).must(name) + name.len() + 1;
        line[at..].split_whitespace().next().must(name).to_string()
    };
    let url = field("url");
    let addr = url
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_string();
    let cert = state_dir.join("state.web-cert.pem");
    // The fingerprint in the log is the SHA-256 of the certificate actually served.
    let der = cert_der(&cert);
    let fp: Vec<String> = Sha256::digest(&der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    assert_eq!(field("sha256"), fp.join(":"), "logged fingerprint");
    Daemon {
        _process: process,
        url,
        addr,
        key: state_dir.join("state.web-key.pem"),
        cert,
    }
}

/// `bridgehead run` on a demo folder with the status page on a free port (and, when given,
/// an API token file).
pub fn start_run(dir: &TestDir, token: Option<&str>) -> Daemon {
    let mut extra = String::from("\n[web]\nlisten = \"127.0.0.1:0\"\n");
    if let Some(t) = token {
        std::fs::write(dir.join("api.token"), t).must("writing the token");
        extra.push_str("api_token_file = \"api.token\"\n");
    }
    let config = dir.config();
    let mut text = std::fs::read_to_string(&config).must("reading the config");
    text.push_str(&extra);
    std::fs::write(&config, text).must("writing the config");
    let log = dir.join("run.stderr");
    let process = Background::start(&["run", "-c", &config.to_string_lossy()], &log);
    wait_for_status_page(process, &log, dir.path())
}

/// The first certificate in a PEM file, DER.
pub fn cert_der(path: &Path) -> Vec<u8> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_file(path)
        .must("reading the served certificate")
        .to_vec()
}

/// base64(SHA-256(SubjectPublicKeyInfo)) of a PEM key: what Chromium's
/// `--ignore-certificate-errors-spki-list` pins.
pub fn spki_hash(key_pem: &Path) -> String {
    let pem = std::fs::read_to_string(key_pem).must("reading the key");
    let key = rcgen::KeyPair::from_pem(&pem).must("parsing the key");
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(
        rcgen::PublicKeyData::subject_public_key_info(&key),
    ))
}

/// One HTTP response.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// A header's value (name in lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).must(&format!("JSON body: {}", self.body))
    }
}

/// Sends one HTTP/1.1 request over TLS, trusting only `cert`.
pub fn https(
    d: &Daemon,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Response {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(cert_der(&d.cert)))
        .must("trusting the generated certificate");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .must("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").must("server name");
    let conn = rustls::ClientConnection::new(Arc::new(config), name).must("TLS client");
    let tcp = TcpStream::connect(&d.addr).must("connecting to the status page");
    tcp.set_read_timeout(Some(Duration::from_secs(60))).ok();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        d.addr,
        body.len()
    );
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    tls.write_all(req.as_bytes()).must("sending the request");
    let mut raw = Vec::new();
    // A peer that closes without close_notify is an error in rustls; the bytes are there.
    let _ = tls.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").must("an HTTP response");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .must("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Response {
        status,
        headers,
        body: body.to_string(),
    }
}
