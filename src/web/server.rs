//! The HTTPS server: hyper 1 (HTTP/1.1 and HTTP/2 by ALPN) over tokio-rustls, one task per
//! connection, graceful stop. Page work runs on blocking threads, since it reads the store.
//!
//! What a bad client can hold is bounded here: connections per address and in all, the
//! time to finish a TLS handshake, to send the headers and to send the body, and the
//! lifetime of a connection. A client that goes away raises its request's [`Gone`] flag,
//! so that a long search stops.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
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
use super::http::{Gone, Method, Req, Resp};
use super::limits::{Activity, Counts, RaiseOnDrop, Watched, admit};
use super::quiet_log::Event;
use crate::runner::Shutdown;

/// The largest request body accepted (forms and JSON actions are tiny).
const MAX_BODY: usize = 64 * 1024;
/// A TLS handshake must finish within this (hyper's header timeout starts after it).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The request headers must arrive within this (also bounds an idle keep-alive).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// The whole request body must arrive within this, however slowly it trickles.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection is asked to close after this long, so that none is held for ever.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(300);
/// A connection with no request in progress and nothing read for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

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
    let body =
        match tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, MAX_BODY).collect()).await {
            Ok(Ok(b)) => b.to_bytes().to_vec(),
            Ok(Err(_)) => {
                return Ok(to_hyper(
                    Resp::text(413, "request body too large").secured(false),
                ));
            }
            Err(_) => {
                app.warn_event(
                    Event::SlowRequest,
                    peer.ip(),
                    "request body not sent in time; connection closed",
                );
                return Ok(close(to_hyper(
                    Resp::text(408, "the request body did not arrive in time").secured(false),
                )));
            }
        };
    let gone = Gone::default();
    let mut raise = RaiseOnDrop(Some(gone.clone()));
    let r = Req {
        method,
        path: parts.uri.path().to_string(),
        query: parts.uri.query().unwrap_or_default().to_string(),
        headers,
        body,
        peer: peer.ip(),
        gone,
    };
    // Store reads and password hashing block: keep them off the reactor.
    let resp = tokio::task::spawn_blocking(move || app.respond(&r))
        .await
        .unwrap_or_else(|e| Resp::text(500, &format!("the page failed: {e}")).secured(false));
    raise.0 = None;
    if resp.hold_ms > 0 {
        // Held here, on the reactor, so that a held answer occupies no blocking thread.
        tokio::time::sleep(Duration::from_millis(resp.hold_ms)).await;
    }
    Ok(to_hyper(resp))
}

/// Marks a response as the last on its connection.
fn close(mut r: hyper::Response<Full<Bytes>>) -> hyper::Response<Full<Bytes>> {
    r.headers_mut().insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("close"),
    );
    r
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
        .header_read_timeout(HEADER_TIMEOUT)
        .max_buf_size(64 * 1024);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(64)
        .keep_alive_interval(Duration::from_secs(30));
    let graceful = GracefulShutdown::new();
    let counts = Arc::new(Mutex::new(Counts::default()));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
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
                let admitted = match admit(&counts, peer.ip()) {
                    Ok(a) => a,
                    Err(why) => {
                        // Dropped before the handshake: the cheapest answer there is.
                        app.warn_event(Event::RefusedConnection, peer.ip(), &format!("connection refused: {why}"));
                        drop(tcp);
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let (acceptor, builder, app) = (acceptor.clone(), builder.clone(), Arc::clone(&app));
                let watcher = graceful.watcher();
                let mut stopping = stop_rx.clone();
                tokio::spawn(async move {
                    let _admitted = admitted;
                    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, "TLS handshake failed: {e}");
                            return;
                        }
                        Err(_) => return,
                    };
                    let activity = Activity::new();
                    let requests = Arc::clone(&activity);
                    let service = service_fn(move |req| {
                        let in_flight = requests.request();
                        let app = Arc::clone(&app);
                        async move {
                            let answer = handle(app, peer, req).await;
                            drop(in_flight);
                            answer
                        }
                    });
                    let io = TokioIo::new(Watched::new(tls, Arc::clone(&activity)));
                    let conn = builder.serve_connection(io, service).into_owned();
                    let mut conn = std::pin::pin!(conn);
                    let lifetime = tokio::time::sleep(CONNECTION_LIFETIME);
                    let mut lifetime = std::pin::pin!(lifetime);
                    let mut check = tokio::time::interval(Duration::from_secs(1));
                    loop {
                        tokio::select! {
                            _ = conn.as_mut() => return,
                            _ = lifetime.as_mut() => break,
                            _ = stopping.wait_for(|s| *s) => break,
                            _ = check.tick() => {
                                // hyper's header timeout only starts with a request's first
                                // byte: a connection that sends nothing is closed here.
                                if activity.idle_for(IDLE_TIMEOUT) {
                                    break;
                                }
                            }
                        }
                    }
                    conn.as_mut().graceful_shutdown();
                    // The request in progress may finish; the connection then ends.
                    let _ = tokio::time::timeout(Duration::from_secs(10), conn).await;
                    // The watcher only counts this connection for the final wait.
                    drop(watcher);
                });
            }
            _ = tick.tick() => {
                app.flush_log();
                if shutdown.requested() {
                    break;
                }
            }
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(10)) => {}
    }
}
