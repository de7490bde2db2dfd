//! The HTTPS server: hyper 1 (HTTP/1.1 and HTTP/2 by ALPN) over tokio-rustls, one task per
//! connection, graceful stop. Page work runs on blocking threads, since it reads the store.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::app::App;
use super::http::{Method, Req, Resp};
use crate::runner::Shutdown;

/// The largest request body accepted (forms and JSON actions are tiny).
const MAX_BODY: usize = 64 * 1024;
/// A TLS handshake must finish within this (hyper's header timeout starts after it).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

async fn handle(
    app: Arc<App>,
    peer: SocketAddr,
    req: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let method = match parts.method {
        hyper::Method::GET => Method::Get,
        hyper::Method::HEAD => Method::Head,
        hyper::Method::POST => Method::Post,
        _ => Method::Other,
    };
    let headers = parts
        .headers
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_string(), v.to_str().ok()?.to_string())))
        .chain(
            // HTTP/2 carries the host in the URI's authority, not a Host header.
            parts
                .uri
                .authority()
                .filter(|_| !parts.headers.contains_key(hyper::header::HOST))
                .map(|a| ("host".to_string(), a.to_string())),
        )
        .collect();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes().to_vec(),
        Err(_) => {
            return Ok(to_hyper(
                Resp::text(413, "request body too large").secured(false),
            ));
        }
    };
    let r = Req {
        method,
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or_default().to_string(),
        headers,
        body,
        peer: peer.ip(),
    };
    // Store reads and password hashing block: keep them off the reactor.
    let resp = tokio::task::spawn_blocking(move || app.respond(&r))
        .await
        .unwrap_or_else(|e| Resp::text(500, &format!("the page failed: {e}")).secured(false));
    Ok(to_hyper(resp))
}

fn to_hyper(r: Resp) -> hyper::Response<Full<Bytes>> {
    let mut out = hyper::Response::new(Full::new(Bytes::from(r.body)));
    *out.status_mut() =
        hyper::StatusCode::from_u16(r.status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    for (n, v) in r.headers {
        if let (Ok(n), Ok(v)) = (
            hyper::header::HeaderName::from_bytes(n.as_bytes()),
            hyper::header::HeaderValue::from_str(&v),
        ) {
            out.headers_mut().append(n, v);
        }
    }
    out
}

/// Serves until `shutdown` is requested, then lets open connections finish (up to 10 s).
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Arc<App>,
    shutdown: Shutdown,
) {
    let acceptor = TlsAcceptor::from(tls);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10))
        .max_buf_size(64 * 1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(64)
        .keep_alive_interval(Duration::from_secs(30));
    let graceful = GracefulShutdown::new();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // EMFILE and friends: log, breathe, go on; never take the daemon down.
                        tracing::warn!("status page: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let (acceptor, builder, app) = (acceptor.clone(), builder.clone(), Arc::clone(&app));
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, "TLS handshake failed: {e}");
                            return;
                        }
                        Err(_) => return,
                    };
                    let service = service_fn(move |req| handle(Arc::clone(&app), peer, req));
                    let conn = builder.serve_connection(TokioIo::new(tls), service);
                    let _ = watcher.watch(conn.into_owned()).await;
                });
            }
            _ = tick.tick() => {
                if shutdown.requested() {
                    break;
                }
            }
        }
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(10)) => {}
    }
}
