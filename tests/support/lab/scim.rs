//! scim2-server (PyPI, python-scim; LAB.md): a real, independent SCIM 2.0 service, one
//! in-memory instance per test on a free loopback port. The checks a test makes go through
//! [`ScimServer::get`] and friends, plain HTTP/1.0 over `std::net`, not through our
//! connector, so a connector bug cannot hide itself. The server's own request log (one
//! line per request) is what tests count requests from.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value as Json;

use super::process::{ServerProcess, signal_group};
use super::{free_port, root, wait_until};
use crate::support::Must;

/// One running scim2-server.
pub struct ScimServer {
    /// Its base URL, `http://127.0.0.1:PORT/v2`.
    pub url: String,
    /// Its port.
    pub port: u16,
    /// Its log: startup lines and one line per request.
    pub log: PathBuf,
    /// A bearer token it demands, when started with one.
    pub token: Option<String>,
    name: String,
    process: Mutex<Option<ServerProcess>>,
}

/// An HTTP response as the test client read it.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The body parsed as JSON (Null when empty or not JSON).
    pub json: Json,
}

/// The scim2-server program: `BRIDGEHEAD_SCIM_SERVER` (set by scripts/test.sh), else the
/// venv scripts/test.sh makes under target/.
fn program() -> PathBuf {
    if let Some(p) = std::env::var_os("BRIDGEHEAD_SCIM_SERVER") {
        return PathBuf::from(p);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/scim-venv/bin/scim2-server");
    assert!(
        venv.is_file(),
        "scim2-server is not installed: run `bash scripts/test.sh --deps-only` (it installs \
         scim2-server==0.8.3 into target/scim-venv), or set BRIDGEHEAD_SCIM_SERVER"
    );
    venv
}

/// Starts a fresh, empty scim2-server.
pub fn start() -> ScimServer {
    start_with(None)
}

/// Starts a fresh scim2-server that demands this bearer token.
pub fn start_with(token: Option<&str>) -> ScimServer {
    static N: AtomicUsize = AtomicUsize::new(0);
    let name = format!("scim-{}", N.fetch_add(1, Ordering::Relaxed));
    let dir = root().join(&name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).must("creating the scim server folder");
    let port = free_port();
    let server = ScimServer {
        url: format!("http://127.0.0.1:{port}/v2"),
        port,
        log: dir.join("scim.log"),
        token: token.map(str::to_string),
        name,
        process: Mutex::new(None),
    };
    server.start();
    server
}

impl ScimServer {
    /// Starts the process (again, after [`ScimServer::stop`]: empty, as it keeps nothing).
    pub fn start(&self) {
        let mut process = self.process.lock().unwrap_or_else(|e| e.into_inner());
        if process.is_some() {
            return;
        }
        let started = Instant::now();
        let mut cmd = Command::new(program());
        cmd.args(["--hostname", "127.0.0.1", "--port", &self.port.to_string()]);
        if let Some(t) = &self.token {
            cmd.args(["--bearer-token", t]);
        }
        // Python buffers a piped stderr; the request log must be complete when read.
        cmd.env("PYTHONUNBUFFERED", "1");
        let mut p = ServerProcess::spawn(&self.name, &mut cmd, &self.log, false);
        let ready = wait_until(
            &format!("scim2-server at {}", self.url),
            Duration::from_secs(30),
            || {
                if let Some(status) = p.exited() {
                    return Ok(Some(status));
                }
                self.try_request("GET", "/ServiceProviderConfig", None)
                    .map(|_| None)
            },
        );
        match ready {
            Ok(None) => {
                eprintln!(
                    "bridgehead lab: started {} in {:.2} s ({})",
                    self.name,
                    started.elapsed().as_secs_f64(),
                    self.url
                );
                *process = Some(p);
            }
            Ok(Some(status)) => panic!(
                "scim2-server exited during startup ({status})\n{}",
                self.log_text()
            ),
            Err(e) => {
                p.stop(Duration::from_secs(2));
                panic!("{e}\n{}", self.log_text());
            }
        }
    }

    /// Stops the process (its data is gone: it keeps everything in memory).
    pub fn stop(&self) {
        let taken = self
            .process
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(p) = taken {
            p.stop(Duration::from_secs(5));
        }
    }

    /// Freezes the process (SIGSTOP): connections are accepted by the kernel and never
    /// answered, as with a hung service. Its data stays.
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// Thaws a paused process (SIGCONT); it then answers what queued meanwhile.
    pub fn resume(&self) {
        self.signal("CONT");
    }

    fn signal(&self, sig: &str) {
        let process = self.process.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = process.as_ref() {
            signal_group(p.pgid(), sig);
        }
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The requests the server logged so far, as `METHOD /path?query` with their status,
    /// in order (wsgiref's access log: `"PATCH /v2/Groups/x HTTP/1.1" 204 0`).
    pub fn requests(&self) -> Vec<(String, String, u16)> {
        self.log_text()
            .lines()
            .filter_map(|l| {
                let start = l.find('"')?;
                let end = l[start + 1..].find('"')? + start + 1;
                let mut req = l[start + 1..end].split_whitespace();
                let (method, target) = (req.next()?, req.next()?);
                let status = l[end + 1..].split_whitespace().next()?.parse().ok()?;
                Some((method.to_string(), target.to_string(), status))
            })
            .collect()
    }

    /// One request; Err when the server cannot be reached or the answer is not HTTP.
    pub fn try_request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Json>,
    ) -> Result<Response, String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let auth = self
            .token
            .as_ref()
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let req = format!(
            "{method} /v2{path} HTTP/1.0\r\nHost: 127.0.0.1:{}\r\nAccept: application/scim+json\r\n\
             Content-Type: application/scim+json\r\nContent-Length: {}\r\n{auth}\r\n{body}",
            self.port,
            body.len()
        );
        s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&raw);
        let (head, body) = text.split_once("\r\n\r\n").ok_or("no header end")?;
        let status = head
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("not an HTTP status line: {head:?}"))?;
        Ok(Response {
            status,
            json: serde_json::from_str(body).unwrap_or(Json::Null),
        })
    }

    /// One request that must reach the server.
    pub fn request(&self, method: &str, path: &str, body: Option<&Json>) -> Response {
        self.try_request(method, path, body)
            .must(&format!("{method} {}{path}", self.url))
    }

    /// Every resource of an endpoint (`/Users`), read page by page.
    pub fn all(&self, endpoint: &str) -> Vec<Json> {
        let mut out = Vec::new();
        let mut start = 1;
        loop {
            let r = self.request(
                "GET",
                &format!("{endpoint}?startIndex={start}&count=1000"),
                None,
            );
            assert_eq!(r.status, 200, "GET {endpoint}: {:?}", r.json);
            let page = r.json["Resources"].as_array().cloned().unwrap_or_default();
            let total = r.json["totalResults"].as_u64().unwrap_or(0) as usize;
            start += page.len();
            let empty = page.is_empty();
            out.extend(page);
            if empty || out.len() >= total {
                return out;
            }
        }
    }

    /// Creates a resource as another provisioning client would, returning its body.
    pub fn create(&self, endpoint: &str, body: &Json) -> Json {
        let r = self.request("POST", endpoint, Some(body));
        assert_eq!(r.status, 201, "POST {endpoint}: {:?}", r.json);
        r.json
    }
}

impl Drop for ScimServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One request a [`Proxy`] passed on (or answered itself).
#[derive(Clone, Debug)]
pub struct Seen {
    /// When it arrived, since the proxy started.
    pub at: Duration,
    /// The method.
    pub method: String,
    /// The path and query.
    pub path: String,
    /// The request body.
    pub body: String,
    /// The status the client got.
    pub status: u16,
}

/// A recording HTTP proxy in front of a server: it sees every request's body (which the
/// server's log does not show) and can answer the first few of a method with 429 and a
/// Retry-After, as a throttling service does. One request per connection.
pub struct Proxy {
    /// The URL to give the connector, `http://127.0.0.1:PORT/v2`.
    pub url: String,
    seen: std::sync::Arc<Mutex<Vec<Seen>>>,
}

impl Proxy {
    /// Starts a proxy to `upstream_port`; the first `throttle` requests with method
    /// `throttle_method` get `429 Retry-After: retry_after_s`.
    pub fn start(
        upstream_port: u16,
        throttle_method: &str,
        throttle: usize,
        retry_after_s: u64,
    ) -> Proxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").must("binding the proxy");
        let port = listener.local_addr().must("proxy address").port();
        let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let method = throttle_method.to_string();
        let started = Instant::now();
        std::thread::spawn(move || {
            let throttled = std::sync::Arc::new(AtomicUsize::new(0));
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (log, method, throttled) = (log.clone(), method.clone(), throttled.clone());
                std::thread::spawn(move || {
                    let _ = relay(
                        conn,
                        upstream_port,
                        &log,
                        started,
                        |m| m == method && throttled.fetch_add(1, Ordering::SeqCst) < throttle,
                        retry_after_s,
                    );
                });
            }
        });
        Proxy {
            url: format!("http://127.0.0.1:{port}/v2"),
            seen,
        }
    }

    /// Everything seen so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Forgets what was seen.
    pub fn clear(&self) {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// Reads one request from `conn`, answers 429 or forwards it, records it.
fn relay<S: std::io::Read + std::io::Write>(
    mut conn: S,
    upstream: u16,
    log: &Mutex<Vec<Seen>>,
    started: Instant,
    throttle: impl Fn(&str) -> bool,
    retry_after_s: u64,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    let head_end = loop {
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let mut first = head.lines().next().unwrap_or("").split_whitespace();
    let method = first.next().unwrap_or("").to_string();
    let path = first.next().unwrap_or("").to_string();
    let body = String::from_utf8_lossy(&buf[head_end..]).into_owned();
    let at = started.elapsed();
    let status = if throttle(&method) {
        let msg = br#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"429","detail":"slow down"}"#;
        write!(
            conn,
            "HTTP/1.1 429 Too Many Requests\r\nRetry-After: {retry_after_s}\r\nContent-Type: application/scim+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            msg.len()
        )?;
        conn.write_all(msg)?;
        429
    } else {
        // Forwarded as HTTP/1.0 with the connection closed after the answer.
        let mut up = TcpStream::connect(("127.0.0.1", upstream))?;
        up.set_read_timeout(Some(Duration::from_secs(60)))?;
        let fixed_head = head.replacen("HTTP/1.1", "HTTP/1.0", 1);
        up.write_all(fixed_head.as_bytes())?;
        up.write_all(&buf[head_end..])?;
        let mut answer = Vec::new();
        up.read_to_end(&mut answer)?;
        let text = String::from_utf8_lossy(&answer);
        let status = text
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        conn.write_all(&answer)?;
        status
    };
    log.lock().unwrap_or_else(|e| e.into_inner()).push(Seen {
        at,
        method,
        path,
        body,
        status,
    });
    Ok(())
}

/// An HTTPS front for a server (scim2-server speaks plain HTTP only): TLS with a lab
/// certificate for 127.0.0.1, each request passed on as [`Proxy`] does.
pub struct TlsFront {
    /// `https://127.0.0.1:PORT/v2`.
    pub url: String,
}

impl TlsFront {
    /// Starts it in front of `upstream_port`.
    pub fn start(upstream_port: u16) -> TlsFront {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let cert = super::tls::server_cert("scim-front", "127.0.0.1", "scim.example.test");
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert.cert)
            .must("reading the lab certificate")
            .collect::<Result<_, _>>()
            .must("parsing the lab certificate");
        let key = PrivateKeyDer::from_pem_file(&cert.key).must("reading the lab key");
        let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .must("TLS versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .must("the lab certificate and key");
        let config = std::sync::Arc::new(config);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").must("binding the TLS front");
        let port = listener.local_addr().must("TLS front address").port();
        std::thread::spawn(move || {
            let log = std::sync::Arc::new(Mutex::new(Vec::new()));
            let started = Instant::now();
            for tcp in listener.incoming() {
                let Ok(tcp) = tcp else { continue };
                let (config, log) = (config.clone(), log.clone());
                std::thread::spawn(move || {
                    let _ = tcp.set_read_timeout(Some(Duration::from_secs(60)));
                    let Ok(conn) = rustls::ServerConnection::new(config) else {
                        return;
                    };
                    let stream = rustls::StreamOwned::new(conn, tcp);
                    let _ = relay(stream, upstream_port, &log, started, |_| false, 0);
                });
            }
        });
        TlsFront {
            url: format!("https://127.0.0.1:{port}/v2"),
        }
    }
}
