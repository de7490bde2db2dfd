//! A Microsoft Graph test double: no Entra tenant can be reached from the lab, so the
//! connector is tested against this server, which follows Microsoft's documentation of the
//! calls it uses, and which Microsoft's own Python SDK is run against
//! (`tests/e2e/graph_sdk.rs`) so that it cannot drift from what real clients accept.
//!
//! One double per test, on a free loopback port, HTTPS with a lab certificate (HTTP/2 and
//! HTTP/1.1), in this process on its own thread:
//! - `POST /{tenant}/oauth2/v2.0/token` (client credentials with a secret) and the
//!   authority's `/{tenant}/v2.0/.well-known/openid-configuration`, so MSAL finds it;
//! - `/v1.0/…`: [`api`] (users, groups, members, owners, manager, `$batch`,
//!   extension properties, contacts, devices) and [`delta`];
//! - a write budget ([`Budget`]: 429 with `Retry-After` past it), a replication lag after
//!   creates (404 for reads, "references do not exist" for links), tokens that expire.
//!
//! What a test checks goes through [`GraphDouble::with`], reading the double's state
//! directly, never through the connector.

pub mod api;
pub mod delta;
pub mod directory;
pub mod writes;

pub use directory::{Budget, Directory, Kind, Logged, Obj};

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value as Json, json};

use super::{free_port, tls};
use crate::support::Must;

/// How the double behaves.
#[derive(Clone, Debug)]
pub struct Options {
    /// The directory write budget; None: unlimited.
    pub budget: Option<Budget>,
    /// How long a new object stays unreadable (eventual consistency).
    pub create_lag: Duration,
    /// How long an access token is valid (Entra: about an hour).
    pub token_lifetime: Duration,
    /// Tokens stop working this long after they were issued while `expires_in` still says
    /// `token_lifetime` (as when Entra revokes a token): the client meets a 401.
    pub revoke_after: Option<Duration>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            budget: None,
            create_lag: Duration::ZERO,
            token_lifetime: Duration::from_secs(3599),
            revoke_after: None,
        }
    }
}

/// One running double.
pub struct GraphDouble {
    /// `https://127.0.0.1:PORT`: both the authority host and the Graph host.
    pub base: String,
    /// The tenant id it serves.
    pub tenant_id: String,
    /// The application (client) id it accepts.
    pub client_id: String,
    /// That application's client secret.
    pub client_secret: String,
    /// The lab CA that signed its certificate.
    pub ca_file: PathBuf,
    state: Arc<Mutex<Directory>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Starts a double with default options.
pub fn start() -> GraphDouble {
    start_with(Options::default())
}

/// Starts a double.
pub fn start_with(options: Options) -> GraphDouble {
    let port = free_port();
    let cert = tls::server_cert("graph", "127.0.0.1", "graph.lab");
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert.cert)
        .and_then(|it| it.collect())
        .must("reading the double's certificate");
    let key = PrivateKeyDer::from_pem_file(&cert.key).must("reading the double's key");
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .must("TLS versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .must("the double's certificate");
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let state = Arc::new(Mutex::new(Directory {
        budget: options.budget,
        create_lag: options.create_lag,
        ..Directory::default()
    }));
    let mut double = GraphDouble {
        base: format!("https://127.0.0.1:{port}"),
        tenant_id: uuid::Uuid::new_v4().to_string(),
        client_id: uuid::Uuid::new_v4().to_string(),
        client_secret: format!("secret~{}", uuid::Uuid::new_v4().simple()),
        ca_file: tls::ca().cert.clone(),
        state: Arc::clone(&state),
        stop: None,
    };
    let server = Server {
        base: double.base.clone(),
        tenant: double.tenant_id.clone(),
        client_id: double.client_id.clone(),
        secret: double.client_secret.clone(),
        token_lifetime: options.token_lifetime,
        revoke_after: options.revoke_after,
        state,
    };
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).must("binding the double");
    listener.set_nonblocking(true).must("non-blocking listener");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(format!("graph-double-{port}"))
        .spawn(move || serve(listener, Arc::new(config), Arc::new(server), stop_rx))
        .must("starting the double's thread");
    double.stop = Some(stop_tx);
    double
}

impl Drop for GraphDouble {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

impl GraphDouble {
    /// `{base}/v1.0`, what a Graph client is pointed at.
    pub fn graph_url(&self) -> String {
        format!("{}/v1.0", self.base)
    }

    /// Reads or changes the tenant's state (a test's checks and seeds).
    pub fn with<T>(&self, f: impl FnOnce(&mut Directory) -> T) -> T {
        let mut d = self.state.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut d)
    }

    /// Live users' properties, by userPrincipalName.
    pub fn users(&self) -> HashMap<String, Obj> {
        self.live(Kind::User, "userPrincipalName")
    }

    /// Live groups, by displayName.
    pub fn groups(&self) -> HashMap<String, Obj> {
        self.live(Kind::Group, "displayName")
    }

    fn live(&self, kind: Kind, key: &str) -> HashMap<String, Obj> {
        self.with(|d| {
            d.objects
                .values()
                .filter(|o| o.kind == kind && !o.deleted)
                .map(|o| (o.text(key).unwrap_or_default().to_string(), o.clone()))
                .collect()
        })
    }

    /// Accepted directory writes so far.
    pub fn writes(&self) -> u64 {
        self.with(|d| d.writes)
    }

    /// The request log so far.
    pub fn log(&self) -> Vec<Logged> {
        self.with(|d| d.log.clone())
    }

    /// Forgets every delta round and deltaLink (as an expired link is forgotten).
    pub fn expire_delta_links(&self) {
        self.with(|d| d.delta.clear());
    }

    /// Seeds an object (a cloud-created user, an orgContact, a device) as the tenant's own.
    pub fn seed(&self, kind: Kind, props: Json) -> String {
        let props = props
            .as_object()
            .cloned()
            .must("seed properties must be an object");
        self.with(|d| d.insert(kind, props))
    }
}

struct Server {
    base: String,
    tenant: String,
    client_id: String,
    secret: String,
    token_lifetime: Duration,
    revoke_after: Option<Duration>,
    state: Arc<Mutex<Directory>>,
}

fn serve(
    listener: std::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    server: Arc<Server>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("the Graph double's runtime: {e}"),
    };
    rt.block_on(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => panic!("the Graph double's listener: {e}"),
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        loop {
            let (tcp, _) = tokio::select! {
                a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
                _ = &mut stop => return,
            };
            let (acceptor, server) = (acceptor.clone(), Arc::clone(&server));
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |req| {
                    let server = Arc::clone(&server);
                    async move { Ok::<_, std::convert::Infallible>(answer(&server, req).await) }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
}

async fn answer(server: &Server, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().as_str().to_ascii_uppercase();
    let target = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let auth = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let (path, query) = split_target(&target);
    let resp = if let Some(rest) = path.strip_prefix(&format!("/{}/", server.tenant)) {
        authority(server, &method, rest, &body)
    } else if let Some(rest) = path.strip_prefix("/v1.0") {
        let mut dir = server.state.lock().unwrap_or_else(|e| e.into_inner());
        let resp = match check_token(&dir, auth.as_deref()) {
            Some(refused) => refused,
            None => {
                let json = if body.is_empty() {
                    Json::Null
                } else {
                    match serde_json::from_slice(&body) {
                        Ok(j) => j,
                        Err(e) => {
                            let r = api::Resp::error(
                                400,
                                "BadRequest",
                                &format!("Invalid JSON in the request body: {e}"),
                            );
                            return to_http(r);
                        }
                    }
                };
                let r = api::Req {
                    method: method.clone(),
                    path: rest.to_string(),
                    query,
                    body: json,
                    in_batch: false,
                };
                api::handle(&mut dir, &server.base, &r)
            }
        };
        dir.log.push(Logged {
            method,
            target,
            status: resp.status,
            in_batch: false,
        });
        resp
    } else {
        api::Resp::error(404, "NotFound", "No such endpoint on this double.")
    };
    to_http(resp)
}

fn to_http(r: api::Resp) -> Response<Full<Bytes>> {
    let mut b = Response::builder().status(r.status);
    for (k, v) in &r.headers {
        b = b.header(k, v);
    }
    let body = match r.body {
        Some(j) => {
            b = b.header("Content-Type", "application/json; charset=utf-8");
            Bytes::from(j.to_string())
        }
        None => Bytes::new(),
    };
    match b.body(Full::new(body)) {
        Ok(r) => r,
        Err(e) => panic!("the double built a bad response: {e}"),
    }
}

/// Logs a request answered inside a `$batch`.
pub(crate) fn log(dir: &mut Directory, req: &api::Req, url: &str, status: u16) {
    dir.log.push(Logged {
        method: req.method.clone(),
        target: url.to_string(),
        status,
        in_batch: req.in_batch,
    });
}

fn check_token(dir: &Directory, auth: Option<&str>) -> Option<api::Resp> {
    let token = auth.and_then(|a| a.strip_prefix("Bearer ")).unwrap_or("");
    if token.is_empty() {
        return Some(api::Resp::error(
            401,
            "InvalidAuthenticationToken",
            "Access token is empty.",
        ));
    }
    match dir.tokens.get(token) {
        Some(exp) if *exp > Instant::now() => None,
        Some(_) => Some(api::Resp::error(
            401,
            "InvalidAuthenticationToken",
            "Lifetime validation failed, the token is expired.",
        )),
        None => Some(api::Resp::error(
            401,
            "InvalidAuthenticationToken",
            "Access token validation failure. Invalid audience.",
        )),
    }
}

/// The authority's endpoints: OpenID metadata and the token endpoint.
fn authority(server: &Server, method: &str, rest: &str, body: &[u8]) -> api::Resp {
    let issuer = format!("{}/{}/v2.0", server.base, server.tenant);
    match (method, rest) {
        ("GET", "v2.0/.well-known/openid-configuration") => api::Resp::json(
            200,
            json!({
                "issuer": issuer,
                "token_endpoint": format!("{}/{}/oauth2/v2.0/token", server.base, server.tenant),
                "authorization_endpoint": format!("{}/{}/oauth2/v2.0/authorize", server.base, server.tenant),
                "jwks_uri": format!("{}/{}/discovery/v2.0/keys", server.base, server.tenant),
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "tenant_region_scope": "EU"
            }),
        ),
        ("POST", "oauth2/v2.0/token") => token(server, body),
        _ => api::Resp::error(404, "NotFound", "No such authority endpoint."),
    }
}

/// The client-credentials grant (RFC 6749 §4.4 as Entra documents it); errors in OAuth's
/// shape (`error`, `error_description`), not Graph's.
fn token(server: &Server, body: &[u8]) -> api::Resp {
    let form: HashMap<String, String> = split_query(&String::from_utf8_lossy(body), true)
        .into_iter()
        .collect();
    let oauth_error = |status: u16, error: &str, code: u32, text: &str| {
        api::Resp::json(
            status,
            json!({"error": error, "error_description": format!("AADSTS{code}: {text}"),
                "error_codes": [code], "timestamp": "2026-12-08 00:00:00Z",
                "trace_id": uuid::Uuid::new_v4().to_string(),
                "correlation_id": uuid::Uuid::new_v4().to_string()}),
        )
    };
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return oauth_error(
            400,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        );
    }
    if form.get("client_id") != Some(&server.client_id) {
        return oauth_error(
            400,
            "unauthorized_client",
            700016,
            "Application was not found in the directory.",
        );
    }
    if form.get("client_secret") != Some(&server.secret) {
        return oauth_error(
            401,
            "invalid_client",
            7000215,
            "Invalid client secret provided.",
        );
    }
    let scope = form.get("scope").map(String::as_str).unwrap_or("");
    if !scope.ends_with("/.default") {
        return oauth_error(
            400,
            "invalid_scope",
            1002012,
            "The provided value for scope is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier.",
        );
    }
    let access = format!(
        "eyJ0eXAiOiJKV1QifQ.{}.double",
        uuid::Uuid::new_v4().simple()
    );
    let secs = server.token_lifetime.as_secs();
    server
        .state
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .tokens
        .insert(
            access.clone(),
            Instant::now() + server.revoke_after.unwrap_or(server.token_lifetime),
        );
    api::Resp::json(
        200,
        json!({"token_type": "Bearer", "expires_in": secs, "ext_expires_in": secs, "access_token": access}),
    )
}

/// Splits `path?query` into the decoded path and decoded query pairs.
pub(crate) fn split_target(target: &str) -> (String, Vec<(String, String)>) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    (decode(path, false), split_query(query, false))
}

fn split_query(q: &str, form: bool) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k, form), decode(v, form))
        })
        .collect()
}

/// Percent-decoding; `+` is a space only in forms.
fn decode(s: &str, form: bool) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b'+' if form => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encoding of a query value.
pub(crate) fn encode(s: &str) -> String {
    let mut out = String::new();
    for c in s.bytes() {
        match c {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'$' | b',' => {
                out.push(c as char)
            }
            _ => out.push_str(&format!("%{c:02X}")),
        }
    }
    out
}
