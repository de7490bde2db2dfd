//! Microsoft Graph over the shared HTTP client: an OAuth2 client-credentials token, cached
//! and refreshed before it expires (and once more on a 401), single requests, and JSON
//! batches of at most 20 requests with several batches in flight, paced by a client-side
//! budget of directory writes so that the tenant's throttling is the exception, and each
//! throttled request inside a batch sent again after its own `Retry-After`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt as _;
use hyper::Method;
use serde_json::{Value as Json, json};

use crate::config::GraphConfig;
use crate::connector::http::{Http, HttpError, Retry, Settings, parse_retry_after};

/// Graph's limit of requests in one `$batch`.
pub const BATCH_LIMIT: usize = 20;
/// The window Microsoft's write limit is counted in (3,000 writes per 2.5 minutes).
const BUDGET_WINDOW: Duration = Duration::from_secs(150);
/// A token is renewed this long before it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(300);
/// Longest wait for a throttled request inside a batch before the item fails as passing.
const MAX_INNER_WAIT: Duration = Duration::from_secs(300);

/// One request for Graph: method, path below the version root, body.
#[derive(Clone, Debug)]
pub struct Call {
    /// The method.
    pub method: Method,
    /// `/users/{id}`, `/groups/{id}/members/{m}/$ref`, …
    pub path: String,
    /// The JSON body, if any.
    pub body: Option<Json>,
}

impl Call {
    /// Whether it writes to the directory (and so counts against the budget).
    fn writes(&self) -> bool {
        self.method != Method::GET
    }
}

/// An answer: status and JSON body (Null when empty).
pub type Answer = Result<(u16, Json), HttpError>;

/// The client: one connection pool for Graph, one for the token authority.
pub struct Graph {
    graph: Http,
    authority: Http,
    token_path: String,
    form: String,
    /// The token's expiry, when one is held.
    token: Mutex<Option<Instant>>,
    budget: Mutex<Bucket>,
    in_flight: usize,
    graph_root: String,
}

/// A token bucket: `capacity` writes, refilled at capacity per [`BUDGET_WINDOW`].
struct Bucket {
    capacity: f64,
    level: f64,
    at: Instant,
}

impl Bucket {
    /// Takes `n` writes; returns how long to wait first.
    fn take(&mut self, n: f64) -> Duration {
        let now = Instant::now();
        let rate = self.capacity / BUDGET_WINDOW.as_secs_f64();
        self.level =
            (self.level + now.duration_since(self.at).as_secs_f64() * rate).min(self.capacity);
        self.at = now;
        self.level -= n;
        if self.level >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.level / rate)
        }
    }
}

fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Graph {
    /// Prepares the client; nothing is contacted yet.
    pub fn new(cfg: &GraphConfig) -> Result<Graph, String> {
        let settings = |url| Settings {
            url,
            tls_verify: cfg.tls_verify,
            ca_file: cfg.ca_file.as_deref(),
            timeout: cfg.timeout,
            max_retries: cfg.max_retries,
            media_type: "application/json",
        };
        let graph = Http::with(&settings(&cfg.graph_url))?;
        let authority = Http::with(&settings(&cfg.authority))?;
        // The token is for the Graph host the connector talks to (national clouds differ).
        let scope = format!("https://{}/.default", resource_host(&cfg.graph_url.host));
        let form = format!(
            "client_id={}&client_secret={}&scope={}&grant_type=client_credentials",
            form_encode(&cfg.client_id),
            form_encode(cfg.client_secret.expose()),
            form_encode(&scope)
        );
        Ok(Graph {
            graph,
            authority,
            token_path: format!("/{}/oauth2/v2.0/token", cfg.tenant_id),
            form,
            token: Mutex::new(None),
            budget: Mutex::new(Bucket {
                capacity: f64::from(cfg.write_budget),
                level: f64::from(cfg.write_budget),
                at: Instant::now(),
            }),
            in_flight: cfg.in_flight,
            graph_root: cfg.graph_url.to_string(),
        })
    }

    /// Requests sent to Graph so far (each attempt counts).
    pub fn requests(&self) -> u64 {
        self.graph.requests()
    }

    /// Gets a token unless a fresh one is held (`force`: a 401 said it is not good).
    async fn authorize(&self, force: bool) -> Result<(), HttpError> {
        let fresh = self
            .token
            .lock()
            .ok()
            .and_then(|t| *t)
            .is_some_and(|exp| exp > Instant::now() + TOKEN_MARGIN);
        if fresh && !force {
            return Ok(());
        }
        let reply = self
            .authority
            .call_bytes(
                Method::POST,
                &self.token_path,
                Some(Bytes::from(self.form.clone())),
                "application/x-www-form-urlencoded",
                None,
                Retry::Idempotent,
            )
            .await
            .map_err(|e| match e {
                HttpError::Status {
                    status,
                    scim_type,
                    detail,
                } => HttpError::Status {
                    status,
                    scim_type,
                    detail: format!("the token endpoint refused the application: {detail}"),
                },
                other => other,
            })?;
        let body: Json = serde_json::from_slice(&reply.body).unwrap_or(Json::Null);
        let (Some(token), Some(secs)) = (
            body.get("access_token").and_then(Json::as_str),
            body.get("expires_in").and_then(Json::as_u64),
        ) else {
            return Err(HttpError::Network(
                "the token endpoint's answer has no access_token and expires_in".into(),
            ));
        };
        self.graph.set_bearer(token).map_err(HttpError::Network)?;
        if let Ok(mut t) = self.token.lock() {
            *t = Some(Instant::now() + Duration::from_secs(secs));
        }
        Ok(())
    }

    /// One request, with a token; a 401 gets one fresh token and one more try.
    pub async fn call(&self, call: &Call) -> Answer {
        self.authorize(false).await?;
        if call.writes() {
            self.pace(1).await;
        }
        let retry = if call.method == Method::POST {
            Retry::Create
        } else {
            Retry::Idempotent
        };
        let mut answer = self
            .graph
            .call(
                call.method.clone(),
                &call.path,
                call.body.as_ref(),
                None,
                retry,
            )
            .await;
        if matches!(&answer, Err(e) if e.status() == Some(401)) {
            tracing::info!("Graph answered 401; getting a new token and trying once more");
            self.authorize(true).await?;
            answer = self
                .graph
                .call(
                    call.method.clone(),
                    &call.path,
                    call.body.as_ref(),
                    None,
                    retry,
                )
                .await;
        }
        let reply = answer?;
        Ok((
            reply.status,
            serde_json::from_slice(&reply.body).unwrap_or(Json::Null),
        ))
    }

    /// Follows `@odata.nextLink` from `first` to the end; returns every page's `value`
    /// entries and the last page's `@odata.deltaLink`, if any.
    pub async fn pages(
        &self,
        first: &str,
        each: &mut (dyn FnMut(Vec<Json>) -> Result<(), String> + Send),
    ) -> Result<Option<String>, PagesError> {
        let mut path = first.to_string();
        loop {
            let call = Call {
                method: Method::GET,
                path: path.clone(),
                body: None,
            };
            let (_, body) = self.call(&call).await.map_err(PagesError::Http)?;
            let values = match body.get("value") {
                Some(Json::Array(a)) => a.clone(),
                _ => Vec::new(),
            };
            each(values).map_err(PagesError::Sink)?;
            if let Some(next) = body.get("@odata.nextLink").and_then(Json::as_str) {
                path = self.relative(next).map_err(PagesError::Http)?;
                continue;
            }
            return Ok(body
                .get("@odata.deltaLink")
                .and_then(Json::as_str)
                .map(str::to_string));
        }
    }

    /// A link Graph handed out, relative to the version root this client talks to.
    pub fn relative(&self, link: &str) -> Result<String, HttpError> {
        link.strip_prefix(&self.graph_root)
            .filter(|p| p.starts_with('/'))
            .map(str::to_string)
            .ok_or_else(|| {
                HttpError::Network(format!(
                    "Graph handed out a link outside {}: {link}",
                    self.graph_root
                ))
            })
    }

    /// Waits until the budget allows `n` more writes.
    async fn pace(&self, n: usize) {
        let wait = self
            .budget
            .lock()
            .map(|mut b| b.take(n as f64))
            .unwrap_or_default();
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Sends calls as `$batch` requests of 20, several in flight; answers in the calls'
    /// order. A throttled inner request (429, 503) goes again after the longest
    /// `Retry-After` of its batch.
    pub async fn batch(&self, calls: &[Call]) -> Vec<Answer> {
        if let Err(e) = self.authorize(false).await {
            return calls.iter().map(|_| Err(e.clone())).collect();
        }
        let chunks: Vec<(usize, &[Call])> = calls
            .chunks(BATCH_LIMIT)
            .enumerate()
            .map(|(i, c)| (i * BATCH_LIMIT, c))
            .collect();
        let mut answers: Vec<Option<Answer>> = (0..calls.len()).map(|_| None).collect();
        let mut results = futures_util::stream::iter(chunks)
            .map(|(start, chunk)| async move { (start, self.one_batch(chunk).await) })
            .buffer_unordered(self.in_flight.max(1));
        while let Some((start, got)) = results.next().await {
            for (i, a) in got.into_iter().enumerate() {
                answers[start + i] = Some(a);
            }
        }
        answers
            .into_iter()
            .map(|a| a.unwrap_or_else(|| Err(HttpError::Network("no answer".into()))))
            .collect()
    }

    /// One `$batch` of at most 20 calls, with the throttled ones sent again.
    async fn one_batch(&self, calls: &[Call]) -> Vec<Answer> {
        let mut answers: Vec<Option<Answer>> = (0..calls.len()).map(|_| None).collect();
        let mut todo: Vec<usize> = (0..calls.len()).collect();
        let started = Instant::now();
        while !todo.is_empty() {
            let writes = todo.iter().filter(|i| calls[**i].writes()).count();
            self.pace(writes).await;
            let requests: Vec<Json> = todo
                .iter()
                .map(|i| {
                    let c = &calls[*i];
                    let mut r =
                        json!({"id": i.to_string(), "method": c.method.as_str(), "url": c.path});
                    if let Some(b) = &c.body {
                        r["body"] = b.clone();
                        r["headers"] = json!({"Content-Type": "application/json"});
                    }
                    r
                })
                .collect();
            let envelope = Call {
                method: Method::POST,
                path: "/$batch".into(),
                body: Some(json!({"requests": requests})),
            };
            // The envelope itself writes nothing: the inner requests were paced above.
            let answer = self
                .graph
                .call(
                    Method::POST,
                    "/$batch",
                    envelope.body.as_ref(),
                    None,
                    Retry::Create,
                )
                .await;
            let answer = match answer {
                Err(e) if e.status() == Some(401) => {
                    if let Err(e) = self.authorize(true).await {
                        Err(e)
                    } else {
                        self.graph
                            .call(
                                Method::POST,
                                "/$batch",
                                envelope.body.as_ref(),
                                None,
                                Retry::Create,
                            )
                            .await
                    }
                }
                other => other,
            };
            let body = match answer {
                Ok(r) => serde_json::from_slice::<Json>(&r.body).unwrap_or(Json::Null),
                Err(e) => {
                    for i in todo.drain(..) {
                        answers[i] = Some(Err(e.clone()));
                    }
                    break;
                }
            };
            let mut again = Vec::new();
            let mut wait = Duration::ZERO;
            let responses = body
                .get("responses")
                .and_then(Json::as_array)
                .cloned()
                .unwrap_or_default();
            for r in responses {
                let Some(i) = r
                    .get("id")
                    .and_then(Json::as_str)
                    .and_then(|s| s.parse::<usize>().ok())
                else {
                    continue;
                };
                if i >= calls.len() {
                    continue;
                }
                let status = r.get("status").and_then(Json::as_u64).unwrap_or(0) as u16;
                let inner = r.get("body").cloned().unwrap_or(Json::Null);
                if (status == 429 || status == 503) && started.elapsed() < MAX_INNER_WAIT {
                    let after = r
                        .pointer("/headers/Retry-After")
                        .or_else(|| r.pointer("/headers/retry-after"))
                        .and_then(Json::as_str)
                        .and_then(parse_retry_after)
                        .unwrap_or(Duration::from_secs(2));
                    wait = wait.max(after);
                    again.push(i);
                    continue;
                }
                answers[i] = Some(if status < 400 {
                    Ok((status, inner))
                } else {
                    Err(graph_error(status, &inner))
                });
            }
            // Anything the batch did not answer counts as lost (it may have acted).
            for i in &todo {
                if answers[*i].is_none() && !again.contains(i) {
                    answers[*i] = Some(Err(HttpError::Network(format!(
                        "{} {}: no answer in the batch",
                        calls[*i].method, calls[*i].path
                    ))));
                }
            }
            if !again.is_empty() {
                tracing::info!(
                    "Graph throttled {} requests of a batch; sending them again after {wait:?}",
                    again.len()
                );
                tokio::time::sleep(wait).await;
            }
            todo = again;
        }
        answers
            .into_iter()
            .map(|a| a.unwrap_or_else(|| Err(HttpError::Network("throttled too long".into()))))
            .collect()
    }
}

/// Why following pages stopped.
pub enum PagesError {
    /// Graph failed or refused.
    Http(HttpError),
    /// The receiver refused the entries.
    Sink(String),
}

/// Graph's error body of an inner batch response as an [`HttpError`].
pub fn graph_error(status: u16, body: &Json) -> HttpError {
    let code = body
        .pointer("/error/code")
        .and_then(Json::as_str)
        .map(str::to_string);
    let message = body
        .pointer("/error/message")
        .and_then(Json::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| format!("HTTP {status}"));
    HttpError::Status {
        status,
        scim_type: code,
        detail: message,
    }
}

/// The resource a token is asked for: Graph's host, as Entra names it.
fn resource_host(host: &str) -> &str {
    // A loopback test double or a proxy stands in for the global service.
    if host.parse::<std::net::IpAddr>().is_ok() || host == "localhost" {
        "graph.microsoft.com"
    } else {
        host
    }
}
