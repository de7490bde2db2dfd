//! The agent's side: enrolment, then one long-lived HTTP/2 connection to the appliance
//! (hyper over tokio-rustls, mutual TLS), hello with versions, heartbeats, HTTP/2 PINGs,
//! and reconnection with capped, jittered backoff. Nothing listens on the agent.
//!
//! The agent's folder holds `key.pem` (0600, made here and never sent), `cert.pem` (issued
//! by the appliance's agent CA), `ca.pem` (that CA, its trust root for the appliance) and
//! `agent.json` (the appliance's URL, the agent's id and group).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::{Deserialize, Serialize};

use super::protocol::{EnrollAnswer, EnrollRequest, HelloAnswer};
use super::{VERSION, VERSION_HEADER, normalise_fingerprint, write_private};

/// Connecting (TCP and TLS) must finish within this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// One request must be answered within this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest wait between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The largest answer taken.
const MAX_ANSWER: usize = 1024 * 1024;

/// The appliance's address as `https://HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Server {
    /// Host name or IP address (no brackets).
    pub host: String,
    /// Port.
    pub port: u16,
}

impl Server {
    /// Parses `https://HOST:PORT` (port 8444 when left out; IPv6 in brackets).
    pub fn parse(url: &str) -> Result<Server, String> {
        let rest = url
            .strip_prefix("https://")
            .ok_or_else(|| format!("--server {url:?}: expected https://HOST:PORT"))?
            .trim_end_matches('/');
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| format!("--server {url:?}: unclosed [ in the address"))?;
            (h, after.strip_prefix(':'))
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            }
        };
        let port = match port {
            Some(p) => p
                .parse()
                .map_err(|_| format!("--server {url:?}: {p:?} is not a port"))?,
            None => 8444,
        };
        if host.is_empty() || host.contains('/') {
            return Err(format!("--server {url:?}: expected https://HOST:PORT"));
        }
        Ok(Server {
            host: host.to_string(),
            port,
        })
    }

    fn url(&self, path: &str) -> String {
        if self.host.contains(':') {
            format!("https://[{}]:{}{path}", self.host, self.port)
        } else {
            format!("https://{}:{}{path}", self.host, self.port)
        }
    }
}

/// What `agent.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Enrolment {
    /// The appliance.
    pub server: Server,
    /// This agent's id.
    pub id: String,
    /// Its group.
    pub group: String,
}

fn files(dir: &Path) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    (
        dir.join("key.pem"),
        dir.join("cert.pem"),
        dir.join("ca.pem"),
        dir.join("agent.json"),
    )
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// One open HTTP/2 connection; its driver runs on a task of its own and leaves here why
/// the connection ended. Clones share the connection (each request is its own stream).
#[derive(Clone)]
struct Conn {
    send: SendRequest<Full<Bytes>>,
    ended: Arc<std::sync::Mutex<Option<String>>>,
}

impl Conn {
    /// Why the connection ended, in the TLS layer's words when it was refused (in TLS 1.3
    /// a refused client certificate is only told after the handshake, by an alert).
    fn why_ended(&self) -> Option<String> {
        self.ended.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// An error with its causes, as one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// Opens one HTTP/2 connection.
async fn connect(server: &Server, tls: Arc<rustls::ClientConfig>) -> Result<Conn, String> {
    let name = ServerName::try_from(server.host.clone())
        .map_err(|e| format!("{}: not a host name: {e}", server.host))?;
    let addr = (server.host.as_str(), server.port);
    let tcp = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| format!("{}: no answer within {CONNECT_TIMEOUT:?}", server.url("")))?
        .map_err(|e| format!("cannot connect to {}: {e}", server.url("")))?;
    let _ = tcp.set_nodelay(true);
    let tls = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio_rustls::TlsConnector::from(tls).connect(name, tcp),
    )
    .await
    .map_err(|_| format!("{}: TLS handshake timed out", server.url("")))?
    .map_err(|e| format!("{}: refused at the TLS handshake: {e}", server.url("")))?;
    let (send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(15))
        .keep_alive_timeout(Duration::from_secs(20))
        .keep_alive_while_idle(true)
        .handshake(TokioIo::new(tls))
        .await
        .map_err(|e| format!("{}: HTTP/2 handshake: {e}", server.url("")))?;
    let ended = Arc::new(std::sync::Mutex::new(None));
    let note = Arc::clone(&ended);
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            let why = chain(&e);
            let why = if why.contains("alert") {
                format!("refused at the TLS handshake: {why}")
            } else {
                why
            };
            *note.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
        }
    });
    Ok(Conn { send, ended })
}

/// Sends one POST with a JSON body; the status and JSON answer.
async fn post(
    conn: &Conn,
    server: &Server,
    path: &str,
    body: &serde_json::Value,
) -> Result<(u16, serde_json::Value), String> {
    post_within(conn, server, path, body, REQUEST_TIMEOUT).await
}

async fn post_within(
    conn: &Conn,
    server: &Server,
    path: &str,
    body: &serde_json::Value,
    limit: Duration,
) -> Result<(u16, serde_json::Value), String> {
    let req = hyper::Request::post(server.url(path))
        .header(VERSION_HEADER, VERSION)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| format!("{path}: {e}"))?;
    let mut send = conn.send.clone();
    let work = async {
        send.ready()
            .await
            .map_err(|e| format!("{}: connection lost: {e}", server.url(path)))?;
        let resp = send
            .send_request(req)
            .await
            .map_err(|e| format!("{}: {e}", server.url(path)))?;
        let status = resp.status().as_u16();
        let bytes = Limited::new(resp.into_body(), MAX_ANSWER)
            .collect()
            .await
            .map_err(|e| format!("{}: reading the answer: {e}", server.url(path)))?
            .to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        Ok((status, json))
    };
    let answer = tokio::time::timeout(limit, work)
        .await
        .map_err(|_| format!("{}: no answer within {limit:?}", server.url(path)))?;
    match answer {
        Ok(a) => Ok(a),
        Err(e) => {
            // The driver may take a moment to record why the connection died.
            tokio::time::sleep(Duration::from_millis(50)).await;
            Err(match conn.why_ended() {
                Some(why) => format!("{e} ({why})"),
                None => e,
            })
        }
    }
}

fn error_text(status: u16, body: &serde_json::Value) -> String {
    body["error"]
        .as_str()
        .map_or_else(|| format!("HTTP {status}"), str::to_string)
}

/// The host name sent at enrolment.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// Enrols with a one-time token: makes a key, asks the appliance (TLS pinned to the CA's
/// fingerprint) for a certificate, and writes the agent's folder. Returns the enrolment.
pub async fn enroll(
    dir: &Path,
    server: &Server,
    token: &str,
    ca_fingerprint: &str,
) -> Result<Enrolment, String> {
    let pin = normalise_fingerprint(ca_fingerprint).ok_or_else(|| {
        format!(
            "--ca-fingerprint {ca_fingerprint:?}: expected the SHA-256 fingerprint (64 hex digits)"
        )
    })?;
    super::private_dir(dir)?;
    let (key_file, cert_file, ca_file, state_file) = files(dir);
    let key = rcgen::KeyPair::generate().map_err(|e| format!("cannot make a key: {e}"))?;
    let csr = rcgen::CertificateParams::new(Vec::<String>::new())
        .and_then(|p| p.serialize_request(&key))
        .and_then(|c| c.pem())
        .map_err(|e| format!("cannot make the certificate request: {e}"))?;
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(super::verify::PinnedCa::new(pin))
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let send = connect(server, Arc::new(tls)).await?;
    let body = serde_json::to_value(EnrollRequest {
        token: token.trim().to_string(),
        csr,
        host: hostname(),
        version: VERSION.to_string(),
    })
    .map_err(|e| format!("enrolment request: {e}"))?;
    let (status, answer) = post(&send, server, "/v1/enroll", &body).await?;
    if status != 200 {
        return Err(format!(
            "enrolment refused: {}",
            error_text(status, &answer)
        ));
    }
    let a: EnrollAnswer =
        serde_json::from_value(answer).map_err(|e| format!("enrolment answer: {e}"))?;
    write_private(&key_file, key.serialize_pem().as_bytes())?;
    write_private(&cert_file, a.certificate.as_bytes())?;
    write_private(&ca_file, a.ca.as_bytes())?;
    let enrolment = Enrolment {
        server: server.clone(),
        id: a.id,
        group: a.group,
    };
    let json = serde_json::to_vec_pretty(&enrolment).map_err(|e| format!("agent.json: {e}"))?;
    write_private(&state_file, &json)?;
    Ok(enrolment)
}

/// The enrolment in `dir` and the TLS config that presents its certificate.
pub fn load(dir: &Path) -> Result<(Enrolment, Arc<rustls::ClientConfig>), String> {
    let (key_file, cert_file, ca_file, state_file) = files(dir);
    let read = |p: &Path| {
        std::fs::read(p).map_err(|e| {
            format!(
                "cannot read {}: {e} (enrol first: bridgehead agent --enroll TOKEN --server \
                 https://APPLIANCE:8444 --ca-fingerprint SHA256)",
                p.display()
            )
        })
    };
    let enrolment: Enrolment = serde_json::from_slice(&read(&state_file)?)
        .map_err(|e| format!("{}: {e}", state_file.display()))?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&read(&cert_file)?)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", cert_file.display()))?;
    let key = PrivateKeyDer::from_pem_slice(&read(&key_file)?)
        .map_err(|e| format!("{}: {e}", key_file.display()))?;
    let ca = CertificateDer::from_pem_slice(&read(&ca_file)?)
        .map_err(|e| format!("{}: {e}", ca_file.display()))?;
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(super::verify::enrolled_verifier(&ca)?)
        .with_client_auth_cert(certs, key)
        .map_err(|e| format!("{}: {e}", cert_file.display()))?;
    tls.alpn_protocols = vec![b"h2".to_vec()];
    Ok((enrolment, Arc::new(tls)))
}

/// How a session with the appliance ended.
enum Ended {
    /// Stop was asked for.
    Stopped,
    /// The appliance refused this agent for good (a version it does not take).
    Refused(String),
    /// The connection failed or was lost; try again. `said_hello`: it had been up.
    Lost { why: String, said_hello: bool },
}

async fn session(
    e: &Enrolment,
    tls: Arc<rustls::ClientConfig>,
    stop: &(dyn Fn() -> bool + Send + Sync),
) -> Ended {
    let lost = |why: String, said_hello: bool| Ended::Lost { why, said_hello };
    let conn = match connect(&e.server, tls).await {
        Ok(s) => s,
        Err(why) => return lost(why, false),
    };
    let hello = match post(&conn, &e.server, "/v1/hello", &serde_json::json!({})).await {
        Ok((200, body)) => match serde_json::from_value::<HelloAnswer>(body) {
            Ok(h) => h,
            Err(why) => return lost(format!("hello answer: {why}"), false),
        },
        Ok((426, body)) => return Ended::Refused(error_text(426, &body)),
        Ok((status, body)) => {
            return lost(
                format!("hello refused: {}", error_text(status, &body)),
                false,
            );
        }
        Err(why) => return lost(why, false),
    };
    tracing::info!(
        agent = %hello.id,
        group = %hello.group,
        appliance_version = %hello.version,
        "connected to the appliance"
    );
    let every = Duration::from_millis(hello.heartbeat_ms.clamp(1000, 300_000));
    // Heartbeats on their own stream of the same connection, beside the work.
    let beat = {
        let (conn, server) = (conn.clone(), e.server.clone());
        async move {
            loop {
                tokio::time::sleep(every).await;
                match post(&conn, &server, "/v1/heartbeat", &serde_json::json!({})).await {
                    Ok((200, _)) => {}
                    Ok((status, body)) => {
                        return format!("heartbeat refused: {}", error_text(status, &body));
                    }
                    Err(why) => return why,
                }
            }
        }
    };
    let work = work_loop(&conn, &e.server);
    let stopping = async {
        while !stop() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::select! {
        why = beat => lost(why, true),
        why = work => lost(why, true),
        () = stopping => Ended::Stopped,
    }
}

/// How long a job's message may wait for the appliance (a batch waits until the runner
/// has stored it).
const JOB_MESSAGE_TIMEOUT: Duration = Duration::from_secs(600);

/// The worker's channel: blocking POSTs over the session's connection.
struct Blocking {
    conn: Conn,
    server: Server,
    rt: tokio::runtime::Handle,
    alive: Arc<std::sync::atomic::AtomicBool>,
}

impl super::worker::Channel for Blocking {
    fn post(&self, path: &str, body: serde_json::Value) -> Result<serde_json::Value, String> {
        let answer = self.rt.block_on(post_within(
            &self.conn,
            &self.server,
            path,
            &body,
            JOB_MESSAGE_TIMEOUT,
        ))?;
        match answer {
            (200, v) => Ok(v),
            (status, v) => Err(format!("{path}: {}", error_text(status, &v))),
        }
    }

    fn alive(&self) -> Arc<std::sync::atomic::AtomicBool> {
        Arc::clone(&self.alive)
    }
}

/// Lowers the session's alive flag when dropped (the session ended, however).
struct SessionAlive(Arc<std::sync::atomic::AtomicBool>);

impl Drop for SessionAlive {
    fn drop(&mut self) {
        self.0.store(false, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Asks for work and runs each job, until the connection fails (the reason).
async fn work_loop(conn: &Conn, server: &Server) -> String {
    let limit = super::jobs::POLL_WAIT + Duration::from_secs(10);
    let alive = SessionAlive(Arc::new(std::sync::atomic::AtomicBool::new(true)));
    loop {
        let job = match post_within(conn, server, "/v1/work", &serde_json::json!({}), limit).await {
            Ok((204, _)) => continue,
            Ok((200, body)) => match serde_json::from_value::<super::jobs::Job>(body) {
                Ok(job) => job,
                Err(e) => return format!("a job that cannot be read: {e}"),
            },
            Ok((status, body)) => return format!("work refused: {}", error_text(status, &body)),
            Err(why) => return why,
        };
        tracing::info!(job = job.id, connector = %job.connector, "job received");
        let channel = Blocking {
            conn: conn.clone(),
            server: server.clone(),
            rt: tokio::runtime::Handle::current(),
            alive: Arc::clone(&alive.0),
        };
        if matches!(job.op, super::jobs::Op::Watch) {
            // A watch runs until the session ends or the appliance gives it up: beside the
            // other jobs, not in their way.
            tokio::task::spawn_blocking(move || {
                if let Err(why) = super::worker::execute(job, &channel) {
                    tracing::warn!("watch: {why}");
                }
            });
            continue;
        }
        // The connector blocks (and owns a runtime of its own): off the reactor.
        let ran = tokio::task::spawn_blocking(move || super::worker::execute(job, &channel)).await;
        match ran {
            Ok(Ok(())) => {}
            Ok(Err(why)) => return format!("a job could not be reported: {why}"),
            Err(e) => return format!("a job failed: {e}"),
        }
    }
}

/// A pseudo-random factor in [0.5, 1.0) for the backoff, so that agents restarted together
/// do not knock at the same instant.
fn jitter() -> f64 {
    let n = super::random::<2>().map_or(0, u16::from_le_bytes);
    0.5 + f64::from(n) / f64::from(u16::MAX) / 2.0
}

/// Runs the agent until `stop()`; an error only when the appliance refuses it for good.
pub async fn run(dir: &Path, stop: impl Fn() -> bool + Send + Sync) -> Result<(), String> {
    let (enrolment, tls) = load(dir)?;
    tracing::info!(
        agent = %enrolment.id,
        group = %enrolment.group,
        server = %enrolment.server.url(""),
        version = VERSION,
        "agent starting"
    );
    let mut backoff = Duration::from_secs(1);
    loop {
        match session(&enrolment, Arc::clone(&tls), &stop).await {
            Ended::Stopped => return Ok(()),
            Ended::Refused(why) => return Err(format!("the appliance refused this agent: {why}")),
            Ended::Lost { why, said_hello } => {
                if said_hello {
                    backoff = Duration::from_secs(1);
                }
                let wait = backoff.mul_f64(jitter());
                tracing::warn!("{why}; connecting again in {} ms", wait.as_millis());
                let until = tokio::time::Instant::now() + wait;
                while tokio::time::Instant::now() < until {
                    if stop() {
                        return Ok(());
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn server_addresses() {
        let s = Server::parse("https://bh.example.com:9000/").unwrap();
        assert_eq!((s.host.as_str(), s.port), ("bh.example.com", 9000));
        let s = Server::parse("https://[fe80::1]:8444").unwrap();
        assert_eq!((s.host.as_str(), s.port), ("fe80::1", 8444));
        assert_eq!(s.url("/v1/hello"), "https://[fe80::1]:8444/v1/hello");
        assert_eq!(Server::parse("https://10.0.0.1").unwrap().port, 8444);
        assert!(Server::parse("http://x:1").is_err());
        assert!(Server::parse("https://x:port").is_err());
    }

    #[test]
    fn jitter_stays_in_range() {
        for _ in 0..100 {
            let j = jitter();
            assert!((0.5..=1.0).contains(&j), "{j}");
        }
    }
}
