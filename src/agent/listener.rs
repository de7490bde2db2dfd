//! The appliance's listener for agents: TLS with the agent CA's client-certificate check
//! (rustls), HTTP/2 only (hyper), PINGs every heartbeat interval so that idle NAT entries
//! stay open and a dead peer is noticed. A revoked agent's open connection is closed.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::protocol::{Appliance, Request};
use super::{VERSION, VERSION_HEADER, fingerprint};
use crate::config::AgentsConfig;

/// The largest request body taken: a batch of an import's changes (the agent sends at most
/// a few MiB at a time; this bounds a misbehaving one).
const MAX_BODY: usize = 64 * 1024 * 1024;
/// A TLS handshake must finish within this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The names the listener's certificate carries.
fn names(cfg: &AgentsConfig) -> Vec<String> {
    let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    if let Ok(h) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let h = h.trim();
        if !h.is_empty() {
            names.push(h.to_string());
        }
    }
    if !cfg.listen.ip().is_unspecified() && !cfg.listen.ip().is_loopback() {
        names.push(cfg.listen.ip().to_string());
    }
    for n in &cfg.names {
        if !names.contains(n) {
            names.push(n.clone());
        }
    }
    names
}

/// A bound listener, before it serves.
pub struct Bound {
    /// The address it listens on (the real port when 0 was configured).
    pub addr: SocketAddr,
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    appliance: Arc<Appliance>,
}

/// Builds the TLS config and binds the port.
pub async fn bind(cfg: &AgentsConfig, appliance: Appliance) -> Result<Bound, String> {
    let (chain, key) = appliance.ca.server_cert(&names(cfg))?;
    let verifier = super::verify::AgentClientVerifier::new(
        appliance.ca.cert_der(),
        appliance.registry.clone(),
    )?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| format!("the listener certificate: {e}"))?;
    tls.alpn_protocols = vec![b"h2".to_vec()];
    // No resumption: a resumed handshake skips the certificate check, and a revoked agent
    // would come back in on its old session.
    tls.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    tls.send_tls13_tickets = 0;
    let listener = TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e} (set [agents] listen)", cfg.listen))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    Ok(Bound {
        addr,
        listener,
        tls: Arc::new(tls),
        appliance: Arc::new(appliance),
    })
}

async fn handle(
    app: Arc<Appliance>,
    peer: SocketAddr,
    fingerprint: Option<String>,
    hello: Arc<Mutex<Option<(String, i64)>>>,
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let version = parts
        .headers
        .get(VERSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes().to_vec(),
        Err(_) => {
            return Ok(respond(
                413,
                &serde_json::json!({"error": "body too large"}),
            ));
        }
    };
    // Looked up per request, so that a revocation refuses the next request at once.
    let presented = fingerprint.is_some();
    let agent = fingerprint.and_then(|f| app.registry.trusted(&f));
    let request = Request {
        presented,
        path: parts.uri.path().to_string(),
        post: parts.method == hyper::Method::POST,
        version,
        body,
        peer: peer.to_string(),
        agent,
    };
    // Enrolment signs a certificate and writes files: off the reactor.
    let answer = tokio::task::spawn_blocking(move || app.answer(request)).await;
    Ok(match answer {
        Ok(a) => {
            if let Some(h) = a.hello {
                *hello.lock().unwrap_or_else(|p| p.into_inner()) = Some(h);
            }
            respond(a.status, &a.body)
        }
        Err(e) => respond(
            500,
            &serde_json::json!({"error": format!("the request failed: {e}")}),
        ),
    })
}

fn respond(status: u16, body: &serde_json::Value) -> hyper::Response<Full<Bytes>> {
    let mut r = hyper::Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r.headers_mut().insert(
        VERSION_HEADER,
        hyper::header::HeaderValue::from_static(VERSION),
    );
    r
}

impl Bound {
    /// Serves until `stop()` says so (checked four times a second).
    pub async fn serve(self, stop: impl Fn() -> bool + Send + 'static) {
        let acceptor = TlsAcceptor::from(self.tls);
        let heartbeat = Duration::from_millis(self.appliance.heartbeat_ms.max(1000));
        let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .max_concurrent_streams(64)
            .keep_alive_interval(heartbeat)
            .keep_alive_timeout(heartbeat * 2);
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        loop {
            tokio::select! {
                accepted = self.listener.accept() => {
                    let (tcp, peer) = match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            tracing::warn!("agent listener: accept failed: {e}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                    let _ = tcp.set_nodelay(true);
                    let (acceptor, builder, app) = (acceptor.clone(), builder.clone(), Arc::clone(&self.appliance));
                    let mut stopping = stop_rx.clone();
                    tokio::spawn(async move {
                        let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                            Ok(Ok(tls)) => tls,
                            Ok(Err(e)) => {
                                tracing::warn!(%peer, "agent connection refused at the TLS handshake: {e}");
                                return;
                            }
                            Err(_) => return,
                        };
                        let fp = tls
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|c| c.first())
                            .map(|c| fingerprint(c.as_ref()));
                        let hello = Arc::new(Mutex::new(None));
                        let seen = Arc::clone(&hello);
                        let (app2, fp2) = (Arc::clone(&app), fp.clone());
                        let service = hyper::service::service_fn(move |req| {
                            handle(Arc::clone(&app2), peer, fp2.clone(), Arc::clone(&seen), req)
                        });
                        let conn = builder.serve_connection(TokioIo::new(tls), service);
                        let mut conn = std::pin::pin!(conn);
                        let mut revoked = app.registry.revocations();
                        let mut graceful = false;
                        loop {
                            tokio::select! {
                                _ = conn.as_mut() => break,
                                _ = stopping.wait_for(|s| *s) => {
                                    graceful = true;
                                    break;
                                }
                                changed = revoked.changed() => {
                                    if changed.is_err() {
                                        continue;
                                    }
                                    if fp.as_deref().is_some_and(|f| app.registry.trusted(f).is_none()) {
                                        tracing::warn!(%peer, "closing the connection of a revoked agent");
                                        break;
                                    }
                                }
                            }
                        }
                        if graceful {
                            conn.as_mut().graceful_shutdown();
                            let _ = tokio::time::timeout(Duration::from_secs(5), conn.as_mut()).await;
                        }
                        if let Some((id, since)) = hello.lock().unwrap_or_else(|p| p.into_inner()).take() {
                            app.registry.disconnected(&id, since);
                            app.jobs.agent_gone(&id);
                            tracing::info!(agent = %id, %peer, "agent disconnected");
                        }
                    });
                }
                _ = tick.tick() => {
                    if stop() {
                        break;
                    }
                }
            }
        }
        let _ = stop_tx.send(true);
    }
}
