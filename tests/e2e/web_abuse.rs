//! The status page of a real `bridgehead run` against bad clients on loopback (each from
//! its own 127.0.0.x address): a login flood that must not lock the owner out and must
//! not flood the log, slow headers and bodies cut within their timeouts, and the
//! per-address connection cap.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::web_client::{Daemon, cert_der, start_run};
use crate::support::{Must, TestDir, demo_once};

/// A TLS connection to the daemon from `from` (a 127.0.0.0/8 address).
pub type Conn = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// Opens a TCP connection from `from` to the status page (no TLS yet).
pub fn tcp_from(d: &Daemon, from: [u8; 4]) -> std::io::Result<TcpStream> {
    let to: SocketAddr = d.addr.parse().must("the status page address");
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::new(IpAddr::from(from), 0).into())?;
    socket.connect_timeout(&to.into(), Duration::from_secs(5))?;
    let tcp: TcpStream = socket.into();
    tcp.set_read_timeout(Some(Duration::from_secs(30)))?;
    Ok(tcp)
}

/// A TLS connection from `from`, handshake done.
pub fn connect_from(d: &Daemon, from: [u8; 4]) -> std::io::Result<Conn> {
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
    let mut tls = rustls::StreamOwned::new(conn, tcp_from(d, from)?);
    while tls.conn.is_handshaking() {
        tls.conn.complete_io(&mut tls.sock)?;
    }
    Ok(tls)
}

/// One response read from a keep-alive connection: status, headers (lower case), body.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    /// The value of a `Set-Cookie` for `name` (`name=value`).
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .filter(|(n, v)| n == "set-cookie" && v.starts_with(&format!("{name}=")))
            .map(|(_, v)| v.split(';').next().unwrap_or_default().to_string())
            .next()
    }
}

/// Sends one request on `conn` and reads its response (by Content-Length).
pub fn exchange(
    conn: &mut Conn,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<Answer> {
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    conn.write_all(req.as_bytes())?;
    conn.flush()?;
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        if conn.read(&mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        raw.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&raw).into_owned();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or(std::io::ErrorKind::InvalidData)?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    conn.read_exact(&mut body)?;
    Ok(Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// The login form's cookie (`__Host-bh_login=TOKEN`) and its token.
pub fn login_cookie(conn: &mut Conn) -> (String, String) {
    let form = exchange(conn, "GET", "/login", &[], "").must("the login form");
    let cookie = form.cookie("__Host-bh_login").must("the login cookie");
    let token = cookie.trim_start_matches("__Host-bh_login=").to_string();
    (cookie, token)
}

/// One login attempt on `conn` with the form cookie (and any other cookies) given.
pub fn try_login(conn: &mut Conn, cookies: &str, token: &str, password: &str) -> Answer {
    exchange(
        conn,
        "POST",
        "/login",
        &[
            ("Cookie", cookies),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &format!("csrf={token}&user=admin&password={password}"),
    )
    .must("a login answer")
}

/// A login from a fresh connection from `from`; the answer and how long it took.
fn login_from(
    d: &Daemon,
    from: [u8; 4],
    password: &str,
    device: Option<&str>,
) -> (Answer, Duration) {
    let mut conn = connect_from(d, from).must("connecting");
    let (cookie, token) = login_cookie(&mut conn);
    let cookies = match device {
        Some(dev) => format!("{cookie}; {dev}"),
        None => cookie,
    };
    let started = Instant::now();
    let a = try_login(&mut conn, &cookies, &token, password);
    (a, started.elapsed())
}

/// Lines of the daemon's log about logins (a scheduled cycle may log meanwhile).
fn login_log_lines(dir: &TestDir) -> usize {
    std::fs::read_to_string(dir.join("run.stderr"))
        .must("reading the log")
        .lines()
        .filter(|l| l.contains("login"))
        .count()
}

#[test]
fn web_abuse_login_flood_lets_the_owner_in_and_logs_a_few_lines() {
    let dir = TestDir::new("web-abuse-login");
    demo_once(&dir);
    let d = start_run(&dir, None);
    let password = std::fs::read_to_string(dir.join("state.admin-password")).must("password file");
    let password = password.trim();

    // The owner logs in once from this browser and keeps the device cookie.
    let (first, _) = login_from(&d, [127, 0, 0, 1], password, None);
    assert_eq!(first.status, 303, "{}", first.body);
    let device = first.cookie("__Host-bh_device").must("a device cookie");

    // One keep-alive connection sends 2,000 wrong logins, as fast as it is answered.
    let before = login_log_lines(&dir);
    let mut conn = connect_from(&d, [127, 0, 0, 2]).must("connecting");
    let (cookie, token) = login_cookie(&mut conn);
    let started = Instant::now();
    let mut statuses = std::collections::BTreeMap::new();
    for _ in 0..2000 {
        *statuses
            .entry(try_login(&mut conn, &cookie, &token, "wrong").status)
            .or_insert(0) += 1;
    }
    eprintln!(
        "2,000 logins from one connection in {:.1} s: {statuses:?}",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(statuses.get(&401), Some(&5), "{statuses:?}");
    let one = login_log_lines(&dir) - before;
    eprintln!("log lines for 2,000 logins from one address: {one}");
    // 3 failed and 3 throttled in full; the rest wait for the minute's summary line.
    assert!(one <= 6, "{one} log lines");
    // Then 10 more addresses fail 6 times each: the account is under attack.
    for a in 10..20u8 {
        let mut conn = connect_from(&d, [127, 0, 0, a]).must("connecting");
        let (cookie, token) = login_cookie(&mut conn);
        for _ in 0..6 {
            let s = try_login(&mut conn, &cookie, &token, "wrong").status;
            assert!(matches!(s, 401 | 429), "{s}");
        }
    }
    let grown = login_log_lines(&dir) - before;
    eprintln!("log lines written during the flood: {grown}");
    // 3 in full per kind and address, 30 in full per minute in all.
    assert!(
        grown <= 30,
        "{grown} log lines:\n{}",
        crate::support::tail(&std::fs::read_to_string(dir.join("run.stderr")).unwrap_or_default())
    );

    // The attacker's address is refused, also with the right password.
    let (a, _) = login_from(&d, [127, 0, 0, 2], password, None);
    assert_eq!(a.status, 429);
    // The owner's browser gets in at once ...
    let (a, took) = login_from(&d, [127, 0, 0, 2], password, Some(&device));
    assert_eq!(a.status, 303, "{}", a.body);
    eprintln!("owner with device cookie: {} ms", took.as_millis());
    assert!(took < Duration::from_millis(900), "{took:?}");
    // ... and from a fresh address the right password gets in after a short hold.
    let (a, took) = login_from(&d, [127, 0, 0, 50], password, None);
    assert_eq!(a.status, 303, "{}", a.body);
    eprintln!(
        "owner from a fresh address under attack: {} ms",
        took.as_millis()
    );
    assert!(
        (Duration::from_millis(950)..Duration::from_secs(5)).contains(&took),
        "{took:?}"
    );
}

/// How long until the server ends a connection on which `send` writes (and then nothing
/// more is sent), reading whatever it answers.
fn time_until_closed(
    d: &Daemon,
    from: [u8; 4],
    send: impl FnOnce(&mut Conn),
) -> (Duration, String) {
    let mut conn = connect_from(d, from).must("connecting");
    let started = Instant::now();
    send(&mut conn);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
        if started.elapsed() > Duration::from_secs(60) {
            break;
        }
    }
    (
        started.elapsed(),
        String::from_utf8_lossy(&got).into_owned(),
    )
}

/// What a slow client does: a name, its address, what it sends.
type SlowCase = (&'static str, [u8; 4], fn(&mut Conn));

#[test]
fn web_abuse_slow_headers_and_bodies_are_cut_within_the_timeout() {
    let dir = TestDir::new("web-abuse-slow");
    demo_once(&dir);
    let d = Arc::new(start_run(&dir, None));
    let cases: Vec<SlowCase> = vec![
        ("a body announced and never sent", [127, 0, 0, 21], |c| {
            c.write_all(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n\r\n")
                .must("sending");
            c.flush().must("flushing");
        }),
        ("a body sent a byte every 2 s", [127, 0, 0, 22], |c| {
            c.write_all(b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n\r\n")
                .must("sending");
            c.flush().must("flushing");
            // Waiting for an answer 2 s at a time, a byte between the waits.
            c.sock
                .set_read_timeout(Some(Duration::from_secs(2)))
                .must("read timeout");
            let mut buf = [0u8; 1];
            for _ in 0..15 {
                match c.read(&mut buf) {
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    _ => break,
                }
                if c.write_all(b"a").and_then(|()| c.flush()).is_err() {
                    break;
                }
            }
        }),
        ("half a header", [127, 0, 0, 23], |c| {
            c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow:")
                .must("sending");
            c.flush().must("flushing");
        }),
        ("an idle connection", [127, 0, 0, 24], |_| {}),
    ];
    let threads: Vec<_> = cases
        .into_iter()
        .map(|(what, from, send)| {
            let d = Arc::clone(&d);
            std::thread::spawn(move || (what, time_until_closed(&d, from, send)))
        })
        .collect();
    for t in threads {
        let (what, (took, answer)) = t.join().map_err(|_| "it panicked").must("a slow client");
        eprintln!(
            "{what}: closed after {:.1} s, answer {:?}",
            took.as_secs_f64(),
            answer.lines().next().unwrap_or("")
        );
        // 10 s for headers and for the body, with room for a loaded machine.
        assert!(took < Duration::from_secs(16), "{what}: {took:?}");
        assert!(
            took > Duration::from_secs(8),
            "{what}: cut too early, {took:?}"
        );
    }
}

#[test]
fn web_abuse_connections_per_address_are_capped_and_wrong_tokens_throttled() {
    let dir = TestDir::new("web-abuse-conns");
    demo_once(&dir);
    let d = start_run(&dir, Some("the-right-token-0123456789"));
    // Wrong API tokens: 10 from one address, then its token requests wait.
    let mut guesser = connect_from(&d, [127, 0, 0, 33]).must("connecting");
    for i in 0..10 {
        let wrong = format!("Bearer guess-{i}");
        let a = exchange(
            &mut guesser,
            "GET",
            "/api/overview",
            &[("Authorization", &wrong)],
            "",
        )
        .must("an answer");
        assert_eq!(a.status, 401);
    }
    let right = [("Authorization", "Bearer the-right-token-0123456789")];
    let a = exchange(&mut guesser, "GET", "/api/overview", &right, "").must("an answer");
    assert_eq!(a.status, 429, "{}", a.body);
    let mut script = connect_from(&d, [127, 0, 0, 34]).must("connecting");
    let a = exchange(&mut script, "GET", "/api/overview", &right, "").must("an answer");
    assert_eq!(a.status, 200, "another address is not affected");
    drop((guesser, script));

    let held: Vec<Conn> = (0..16)
        .map(|_| connect_from(&d, [127, 0, 0, 31]).must("one of the first 16 connections"))
        .collect();
    // The 17th from the same address is closed before its handshake.
    let refused = connect_from(&d, [127, 0, 0, 31]);
    assert!(
        refused.is_err(),
        "a 17th connection from one address was served"
    );
    // Another address is served meanwhile.
    let mut other = connect_from(&d, [127, 0, 0, 32]).must("another address");
    let h = exchange(&mut other, "GET", "/healthz", &[], "").must("healthz");
    assert_eq!(h.status, 200);
    // Closing them frees the address again.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut c) = connect_from(&d, [127, 0, 0, 31]) {
            if exchange(&mut c, "GET", "/healthz", &[], "").is_ok_and(|a| a.status == 200) {
                break;
            }
        }
        assert!(Instant::now() < deadline, "the address stayed refused");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn web_abuse_a_search_stops_when_its_client_goes() {
    // A store big enough that a search over every record takes a while: 10,000 people.
    const PEOPLE: u64 = 10_000;
    let dir = TestDir::new("web-gone-client");
    let config =
        super::safety_state_file::setup_with(dir.path(), &dir.join("state.redb"), PEOPLE as usize);
    crate::support::run(&["cycle", "-c", &config.to_string_lossy()]).expect_code(0);
    std::fs::write(dir.join("api.token"), "gone-client-token-0123456789").must("the token");
    let mut text = std::fs::read_to_string(&config).must("the config");
    text.push_str("\n[web]\nlisten = \"127.0.0.1:0\"\napi_token_file = \"api.token\"\n");
    std::fs::write(&config, text).must("writing the config");
    let log = dir.join("run.stderr");
    let process =
        crate::support::Background::start(&["run", "-c", &config.to_string_lossy()], &log);
    let d = super::web_client::wait_for_status_page(process, &log, dir.path());
    let auth = [("Authorization", "Bearer gone-client-token-0123456789")];
    // No indexed word begins with the query, and it has no ASCII for the byte prefilter, so
    // the search decodes and compares every record: the costliest query there is.
    let path = format!("/api/objects?q={}", "%C3%A9".repeat(200));
    let path = path.as_str();

    let mut conn = connect_from(&d, [127, 0, 0, 1]).must("connecting");
    let started = Instant::now();
    let whole = exchange(&mut conn, "GET", path, &auth, "").must("a whole search");
    let took = started.elapsed();
    assert_eq!(whole.status, 200, "{}", whole.body);
    eprintln!("a whole search over {PEOPLE} records took {took:?}");

    // The same search, and the client hangs up a tenth of the way through.
    let mut conn = connect_from(&d, [127, 0, 0, 2]).must("connecting");
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {}\r\n\r\n",
        auth[0].1
    );
    conn.write_all(req.as_bytes()).must("sending the search");
    conn.flush().must("sending the search");
    std::thread::sleep(took / 10);
    let _ = conn.sock.shutdown(std::net::Shutdown::Both);
    drop(conn);
    assert!(
        crate::support::wait_for_log(&log, "search stopped early", Duration::from_secs(20)),
        "no sign that the search stopped:\n{}",
        crate::support::tail(&std::fs::read_to_string(&log).unwrap_or_default())
    );
    let text = std::fs::read_to_string(&log).must("the log");
    let line = text
        .lines()
        .find(|l| l.contains("search stopped early"))
        .must("the line");
    let checked: u64 = line
        .split("checked=")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .must("the count of records checked");
    eprintln!("the abandoned search stopped after {checked} of {PEOPLE} records: {line}");
    assert!(checked < PEOPLE, "{line}");
    // The daemon goes on answering.
    let mut conn = connect_from(&d, [127, 0, 0, 3]).must("connecting");
    let health = exchange(&mut conn, "GET", "/healthz", &[], "").must("healthz");
    assert_eq!(health.status, 200);
}
