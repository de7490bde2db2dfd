//! A small HTTP/1.1 client for one JSON web service (a SCIM service, Microsoft Graph and its
//! token endpoint) on hyper and rustls: keep-alive where the server allows it, a timeout on
//! every request, and retries that honour Retry-After on 429/503 and back off with jitter
//! on other passing failures.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::config::{HttpUrl, ScimConfig, TlsVerify};

/// The longest Retry-After we wait for; a longer one ends the attempt like an outage.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(120);
/// The first backoff step; doubled per attempt, with up to 50% jitter.
const BACKOFF_BASE: Duration = Duration::from_millis(250);
/// The SCIM media type (RFC 7644 §3.1).
const SCIM_JSON: &str = "application/scim+json";
/// Largest response body read: a page of 1,000 users or a bulk answer is a few MB; more
/// is not a service's answer, and must not be read into memory whole.
const MAX_RESPONSE: usize = 64 << 20;

/// A response with a success or redirect status.
#[derive(Debug)]
pub struct Reply {
    /// The status code.
    pub status: u16,
    /// The `ETag` header, if any.
    pub etag: Option<String>,
    /// The body.
    pub body: Bytes,
}

/// Why a request failed after its retries.
#[derive(Debug, Clone)]
pub enum HttpError {
    /// No answer: connection refused or reset, TLS failure, timeout.
    Network(String),
    /// The service answered with an error status.
    Status {
        /// The HTTP status.
        status: u16,
        /// The error's code when the body has one: the SCIM error type (`uniqueness`,
        /// `noTarget`, ...), Graph's `error.code`, or OAuth's `error`.
        scim_type: Option<String>,
        /// The service's own words (the SCIM `detail`, Graph's `error.message`, OAuth's
        /// `error_description`, else the body).
        detail: String,
    },
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Network(m) => f.write_str(m),
            HttpError::Status {
                status,
                scim_type,
                detail,
            } => match scim_type {
                Some(t) => write!(f, "HTTP {status} ({t}): {detail}"),
                None => write!(f, "HTTP {status}: {detail}"),
            },
        }
    }
}

impl HttpError {
    /// The HTTP status, if the service answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            HttpError::Status { status, .. } => Some(*status),
            HttpError::Network(_) => None,
        }
    }

    /// The error's code (SCIM error type, Graph or OAuth code), if the service gave one.
    pub fn scim_type(&self) -> Option<&str> {
        match self {
            HttpError::Status { scim_type, .. } => scim_type.as_deref(),
            HttpError::Network(_) => None,
        }
    }

    /// Whether a later attempt may succeed (outage, throttling) rather than never.
    pub fn is_passing(&self) -> bool {
        match self {
            HttpError::Network(_) => true,
            HttpError::Status { status, .. } => *status == 429 || *status >= 500,
        }
    }
}

/// Whether a failed request may be sent again without risk of doing it twice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// Safe to repeat (GET, PUT, PATCH with set semantics, DELETE).
    Idempotent,
    /// A create: repeated only when the service certainly did not act on it (the
    /// connection was refused, or it answered 429/503). The caller looks before retrying.
    Create,
}

/// How to reach one service.
pub struct Settings<'a> {
    /// The base URL; request paths are relative to it.
    pub url: &'a HttpUrl,
    /// How the server's certificate is checked.
    pub tls_verify: TlsVerify,
    /// A PEM file of CA certificates to trust instead of the system's.
    pub ca_file: Option<&'a std::path::Path>,
    /// How long one request may take.
    pub timeout: Duration,
    /// Retries of a request that failed for a passing reason.
    pub max_retries: u32,
    /// The media type sent as Accept and as the Content-Type of JSON bodies.
    pub media_type: &'static str,
}

/// One service's connection settings and its idle keep-alive connections.
pub struct Http {
    url: HttpUrl,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    /// Replaced when a token is refreshed.
    authorization: Mutex<Option<HeaderValue>>,
    media_type: &'static str,
    host_header: HeaderValue,
    timeout: Duration,
    max_retries: u32,
    idle: Mutex<Vec<SendRequest<Full<Bytes>>>>,
    requests: AtomicU64,
}

/// How one attempt failed.
enum Attempt {
    /// The connection could not be opened: the request was never sent.
    NotSent(String),
    /// The server's certificate was refused: trying again cannot help.
    Untrusted(String),
    /// Sent, then no (complete) answer.
    Lost(String),
}

impl Http {
    /// Prepares a client for a SCIM service; nothing is connected yet.
    pub fn new(cfg: &ScimConfig) -> Result<Http, String> {
        let http = Http::with(&Settings {
            url: &cfg.url,
            tls_verify: cfg.tls_verify,
            ca_file: cfg.ca_file.as_deref(),
            timeout: cfg.timeout,
            max_retries: cfg.max_retries,
            media_type: SCIM_JSON,
        })?;
        if let Some(t) = &cfg.bearer_token {
            http.set_bearer(t.expose())?;
        }
        Ok(http)
    }

    /// Prepares a client; nothing is connected yet.
    pub fn with(cfg: &Settings<'_>) -> Result<Http, String> {
        let tls = if cfg.url.tls {
            let config = crate::connector::tls::client_config(cfg.tls_verify, cfg.ca_file)?;
            let name = ServerName::try_from(cfg.url.host.clone())
                .map_err(|e| format!("{} is not a valid TLS server name: {e}", cfg.url.host))?;
            Some((TlsConnector::from(config), name))
        } else {
            None
        };
        let host = if cfg.url.host.contains(':') {
            format!("[{}]:{}", cfg.url.host, cfg.url.port)
        } else {
            format!("{}:{}", cfg.url.host, cfg.url.port)
        };
        Ok(Http {
            url: cfg.url.clone(),
            tls,
            authorization: Mutex::new(None),
            media_type: cfg.media_type,
            host_header: HeaderValue::from_str(&host)
                .map_err(|_| format!("{host} is not a valid Host header"))?,
            timeout: cfg.timeout,
            max_retries: cfg.max_retries,
            idle: Mutex::new(Vec::new()),
            requests: AtomicU64::new(0),
        })
    }

    /// Sends `Authorization: Bearer <token>` from now on (a refreshed token replaces the
    /// last one).
    pub fn set_bearer(&self, token: &str) -> Result<(), String> {
        let mut v = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| "the bearer token holds characters a header cannot carry")?;
        v.set_sensitive(true);
        if let Ok(mut a) = self.authorization.lock() {
            *a = Some(v);
        }
        Ok(())
    }

    /// The base URL, for messages.
    pub fn base(&self) -> &HttpUrl {
        &self.url
    }

    /// Requests sent so far (each attempt counts).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Sends a request to `path` (relative to the base URL, starting with `/`), with
    /// retries; returns 2xx/3xx replies and the service's error otherwise.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&serde_json::Value>,
        if_match: Option<&str>,
        retry: Retry,
    ) -> Result<Reply, HttpError> {
        let body = match body {
            Some(b) => Some(Bytes::from(serde_json::to_vec(b).map_err(|e| {
                HttpError::Network(format!("cannot encode the request body: {e}"))
            })?)),
            None => None,
        };
        self.call_bytes(method, path, body, self.media_type, if_match, retry)
            .await
    }

    /// [`Http::call`] with a body already encoded as `content_type` (a form, for a token).
    pub async fn call_bytes(
        &self,
        method: Method,
        path: &str,
        body: Option<Bytes>,
        content_type: &str,
        if_match: Option<&str>,
        retry: Retry,
    ) -> Result<Reply, HttpError> {
        let mut attempt = 0u32;
        loop {
            let wait = match self
                .once(&method, path, body.clone(), content_type, if_match)
                .await
            {
                Ok((status, etag, retry_after, bytes)) => {
                    if status < 400 {
                        return Ok(Reply {
                            status,
                            etag,
                            body: bytes,
                        });
                    }
                    let err = scim_error(status, &bytes);
                    let throttled = status == 429 || status == 503;
                    let server_error = status >= 500 && retry == Retry::Idempotent;
                    if attempt >= self.max_retries || !(throttled || server_error) {
                        return Err(err);
                    }
                    match retry_after {
                        Some(d) if d > MAX_RETRY_AFTER => return Err(err),
                        Some(d) => {
                            tracing::info!(
                                "{} {} answered {status}; retrying after {d:?} as it asked",
                                method,
                                self.url_of(path)
                            );
                            d
                        }
                        None => backoff(attempt),
                    }
                }
                Err(Attempt::Untrusted(m)) => return Err(HttpError::Network(m)),
                Err(Attempt::NotSent(m)) => {
                    if attempt >= self.max_retries {
                        return Err(HttpError::Network(m));
                    }
                    backoff(attempt)
                }
                Err(Attempt::Lost(m)) => {
                    if attempt >= self.max_retries || retry == Retry::Create {
                        return Err(HttpError::Network(m));
                    }
                    backoff(attempt)
                }
            };
            attempt += 1;
            tokio::time::sleep(wait).await;
        }
    }

    fn url_of(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, Attempt> {
        let addr = (self.url.host.as_str(), self.url.port);
        let tcp = tokio::time::timeout(self.timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| Attempt::NotSent(format!("connecting to {} timed out", self.url)))?
            .map_err(|e| Attempt::NotSent(format!("cannot connect to {}: {e}", self.url)))?;
        // Small requests and responses: do not wait for more bytes before sending.
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            Some((connector, name)) => {
                let stream =
                    tokio::time::timeout(self.timeout, connector.connect(name.clone(), tcp))
                        .await
                        .map_err(|_| {
                            Attempt::NotSent(format!("TLS handshake with {} timed out", self.url))
                        })?
                        .map_err(|e| {
                            let m = format!("TLS handshake with {} failed: {e}", self.url);
                            // rustls reports a refused certificate as invalid data.
                            if e.kind() == std::io::ErrorKind::InvalidData {
                                Attempt::Untrusted(m)
                            } else {
                                Attempt::NotSent(m)
                            }
                        })?;
                handshake(TokioIo::new(stream)).await
            }
            None => handshake(TokioIo::new(tcp)).await,
        }
        .map_err(|e| Attempt::NotSent(format!("HTTP handshake with {} failed: {e}", self.url)))
    }

    /// One attempt: status, ETag, Retry-After and body.
    async fn once(
        &self,
        method: &Method,
        path: &str,
        body: Option<Bytes>,
        content_type: &str,
        if_match: Option<&str>,
    ) -> Result<(u16, Option<String>, Option<Duration>, Bytes), Attempt> {
        let reused = self.take_idle();
        let mut sender = match reused {
            Some(s) => s,
            None => self.connect().await?,
        };
        let uri = format!("{}{path}", self.url.path);
        let mut req = Request::builder()
            .method(method.clone())
            .uri(&uri)
            .header(header::HOST, self.host_header.clone())
            .header(header::ACCEPT, self.media_type);
        let authorization = self.authorization.lock().ok().and_then(|a| a.clone());
        if let Some(a) = authorization {
            req = req.header(header::AUTHORIZATION, a);
        }
        if body.is_some() {
            req = req.header(header::CONTENT_TYPE, content_type);
        }
        if let Some(tag) = if_match {
            req = req.header(header::IF_MATCH, tag);
        }
        let req = req
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| Attempt::NotSent(format!("cannot build the request for {uri}: {e}")))?;
        self.requests.fetch_add(1, Ordering::Relaxed);
        let what = format!("{method} {}", self.url_of(path));
        let exchange = async {
            let resp = sender
                .send_request(req)
                .await
                .map_err(|e| format!("{what}: {e}"))?;
            let status = resp.status();
            let keep = keeps_alive(&resp);
            let etag = resp
                .headers()
                .get(header::ETAG)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let retry_after = resp
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_retry_after);
            let bytes = Limited::new(resp.into_body(), MAX_RESPONSE)
                .collect()
                .await
                .map_err(|e| {
                    format!(
                        "{what}: reading the response (at most {} MiB): {e}",
                        MAX_RESPONSE >> 20
                    )
                })?
                .to_bytes();
            Ok::<_, String>((status, keep, etag, retry_after, bytes))
        };
        let (status, keep, etag, retry_after, bytes) =
            match tokio::time::timeout(self.timeout, exchange).await {
                Err(_) => {
                    return Err(Attempt::Lost(format!(
                        "{what}: no answer within {:?}",
                        self.timeout
                    )));
                }
                Ok(Err(m)) => return Err(Attempt::Lost(m)),
                Ok(Ok(r)) => r,
            };
        if keep && !sender.is_closed() {
            self.put_idle(sender);
        }
        Ok((status.as_u16(), etag, retry_after, bytes))
    }

    fn take_idle(&self) -> Option<SendRequest<Full<Bytes>>> {
        let mut idle = self.idle.lock().ok()?;
        while let Some(s) = idle.pop() {
            if !s.is_closed() {
                return Some(s);
            }
        }
        None
    }

    fn put_idle(&self, s: SendRequest<Full<Bytes>>) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(s);
        }
    }
}

async fn handshake<T>(io: T) -> Result<SendRequest<Full<Bytes>>, hyper::Error>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(async move {
        // The connection ends when the server closes it or the sender is dropped.
        let _ = conn.await;
    });
    Ok(sender)
}

/// Whether the server keeps the connection open after this response.
fn keeps_alive<B>(resp: &hyper::Response<B>) -> bool {
    let conn = resp
        .headers()
        .get(header::CONNECTION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_ascii_lowercase);
    match resp.version() {
        hyper::Version::HTTP_10 => conn.as_deref() == Some("keep-alive"),
        _ => conn.as_deref() != Some("close"),
    }
}

/// Exponential backoff from [`BACKOFF_BASE`] with up to 50% random jitter, at most 30 s.
fn backoff(attempt: u32) -> Duration {
    let base = BACKOFF_BASE
        .saturating_mul(1u32 << attempt.min(7))
        .min(Duration::from_secs(30));
    let mut b = [0u8; 2];
    // Without randomness the retry still happens, only less spread out.
    let _ = getrandom::fill(&mut b);
    let jitter = u32::from(u16::from_le_bytes(b)) * 500 / 65_535;
    base + base * jitter / 1000
}

/// `Retry-After` as delay-seconds or an HTTP date (RFC 9110 §10.2.3).
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = parse_http_date(v)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    Some(Duration::from_secs(at.saturating_sub(now)))
}

/// Seconds since the epoch of an IMF-fixdate like `Sun, 06 Nov 1994 08:49:37 GMT`.
fn parse_http_date(v: &str) -> Option<u64> {
    let parts: Vec<&str> = v.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let m = MONTHS.iter().position(|x| x == month)? as i64 + 1;
    let d: i64 = day.parse().ok()?;
    let y: i64 = year.parse().ok()?;
    let hms: Vec<i64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, mi, s] = hms.as_slice() else {
        return None;
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y2, m2) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(days * 86_400 + h * 3600 + mi * 60 + s).ok()
}

/// The error in a response body: SCIM's (RFC 7644 §3.12), Graph's
/// (`{"error":{"code","message"}}`) or OAuth's (`error`, `error_description`, RFC 6749
/// §5.2); else the body itself.
fn scim_error(status: u16, body: &[u8]) -> HttpError {
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let text = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(str::to_string);
    let p = parsed.as_ref();
    let graph = p.and_then(|v| v.get("error")).filter(|e| e.is_object());
    let scim_type = text(p.and_then(|v| v.get("scimType")))
        .or_else(|| text(graph.and_then(|e| e.get("code"))))
        .or_else(|| text(p.and_then(|v| v.get("error"))));
    let detail = text(p.and_then(|v| v.get("detail")))
        .or_else(|| text(graph.and_then(|e| e.get("message"))))
        .or_else(|| text(p.and_then(|v| v.get("error_description"))))
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() {
                StatusCode::from_u16(status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("error")
                    .to_string()
            } else {
                text.chars().take(500).collect()
            }
        });
    HttpError::Status {
        status,
        scim_type,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(784_111_777)
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 CET"), None);
    }

    #[test]
    fn backoff_doubles_with_bounded_jitter() {
        for attempt in 0..10 {
            let d = backoff(attempt);
            let base = BACKOFF_BASE
                .saturating_mul(1u32 << attempt.min(7))
                .min(Duration::from_secs(30));
            assert!(d >= base && d <= base + base / 2, "{attempt}: {d:?}");
        }
    }

    #[test]
    fn scim_errors_keep_type_and_detail() {
        let e = scim_error(
            409,
            br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"409","scimType":"uniqueness","detail":"userName taken"}"#,
        );
        assert_eq!(e.to_string(), "HTTP 409 (uniqueness): userName taken");
        assert!(!e.is_passing());
        let e = scim_error(502, b"");
        assert_eq!(e.to_string(), "HTTP 502: Bad Gateway");
        assert!(e.is_passing());
        let e = scim_error(
            404,
            br#"{"error":{"code":"Request_ResourceNotFound","message":"Resource 'x' does not exist."}}"#,
        );
        assert_eq!(
            e.to_string(),
            "HTTP 404 (Request_ResourceNotFound): Resource 'x' does not exist."
        );
        let e = scim_error(
            401,
            br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}"#,
        );
        assert_eq!(
            e.to_string(),
            "HTTP 401 (invalid_client): AADSTS7000215: Invalid client secret provided."
        );
        assert!(!e.is_passing());
    }
}
