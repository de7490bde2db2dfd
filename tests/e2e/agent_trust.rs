//! Agent trust against the real binary: `bridgehead run` with an `[agents]` listener,
//! `bridgehead agent-token`, `bridgehead agent --enroll` and `bridgehead agent` as separate
//! processes. A wrong CA fingerprint, a reused and an expired token are refused; an
//! enrolled agent connects and is listed with its version and address; a revoked one is
//! refused at the TLS handshake (seen by a TLS client of the test's own presenting the
//! agent's certificate, and by the agent, whose connection is closed), as is a certificate
//! of another CA.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use sha2::{Digest, Sha256};

use super::web_client::{Daemon, https, start_run};
use crate::support::{Background, Must, TestDir, demo_once, run, wait_for_log};

pub(super) const TOKEN: &str = "agent-trust-token-0123456789";

/// The listener's address, from the daemon's log.
pub(super) fn listener_addr(log: &Path) -> String {
    assert!(
        wait_for_log(log, "agent listener ready", Duration::from_secs(60)),
        "no agent listener:\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
    let text = std::fs::read_to_string(log).must("reading the log");
    let line = text
        .lines()
        .find(|l| l.contains("agent listener ready"))
        .must("the listener line");
    let at = line.find("address=").must("address field") + "address=".len();
    line[at..]
        .split_whitespace()
        .next()
        .must("address")
        .to_string()
}

/// SHA-256 of the CA certificate on disk, computed here (not taken from the binary).
pub(super) fn ca_fingerprint(state_dir: &Path) -> String {
    let der = CertificateDer::from_pem_file(state_dir.join("state.agents/ca-cert.pem"))
        .must("reading the agent CA");
    Sha256::digest(der.as_ref())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

pub(super) fn token(config: &Path, group: &str, valid: Option<&str>) -> String {
    let mut args = vec![
        "agent-token".to_string(),
        "-c".into(),
        config.to_string_lossy().into_owned(),
        "--group".into(),
        group.into(),
    ];
    if let Some(v) = valid {
        args.extend(["--valid".to_string(), v.to_string()]);
    }
    let r = run(&args);
    assert!(r.status.success(), "{}: {}", r.what, r.stderr);
    r.stdout.trim().to_string()
}

pub(super) fn enroll(dir: &Path, token: &str, server: &str, fp: &str) -> crate::support::Run {
    run(&[
        "agent",
        "--dir",
        &dir.to_string_lossy(),
        "--enroll",
        token,
        "--server",
        server,
        "--ca-fingerprint",
        fp,
    ])
}

pub(super) fn agents(d: &Daemon) -> Vec<serde_json::Value> {
    let auth = format!("Bearer {TOKEN}");
    let r = https(d, "GET", "/api/agents", &[("Authorization", &auth)], "");
    assert_eq!(r.status, 200, "{}", r.body);
    r.json().as_array().must("agent list").clone()
}

pub(super) fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{what}: not within {limit:?}");
}

/// A TLS handshake with the listener presenting `cert`/`key`, then a read: what the
/// listener said. A refused certificate ends in a fatal alert; an accepted one leaves the
/// connection open (the read times out waiting for HTTP/2) or brings HTTP/2 settings.
fn handshake(
    addr: &str,
    ca: &Path,
    client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<(), String> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(ca).must("reading the CA"))
        .must("trusting the CA");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .must("TLS versions")
        .with_root_certificates(roots);
    let mut config = match client {
        Some((certs, key)) => builder
            .with_client_auth_cert(certs, key)
            .must("client certificate"),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    let name = ServerName::try_from("127.0.0.1").must("server name");
    let conn = rustls::ClientConnection::new(Arc::new(config), name).must("TLS client");
    let tcp = TcpStream::connect(addr).must("connecting to the agent listener");
    tcp.set_read_timeout(Some(Duration::from_secs(2))).ok();
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 64];
    match tls.read(&mut buf) {
        Ok(_) => Ok(()),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// The refusal of a handshake that must fail.
fn refused(r: Result<(), String>, what: &str) -> String {
    match r {
        Ok(()) => panic!("{what} was accepted"),
        Err(e) => e,
    }
}

fn agent_identity(dir: &Path) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    let certs = CertificateDer::pem_file_iter(dir.join("cert.pem"))
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .must("the agent's certificate");
    let key = PrivateKeyDer::from_pem_file(dir.join("key.pem")).must("the agent's key");
    (certs, key)
}

#[test]
fn agent_enrolment_tokens_revocation_and_the_handshake() {
    let dir = TestDir::new("agent-trust");
    demo_once(&dir);
    let config = dir.config();
    let mut text = std::fs::read_to_string(&config).must("reading the config");
    text.push_str("\n[agents]\nlisten = \"127.0.0.1:0\"\nheartbeat = \"1s\"\n");
    std::fs::write(&config, text).must("writing the config");
    let d = start_run(&dir, Some(TOKEN));
    let log = dir.join("run.stderr");
    let addr = listener_addr(&log);
    let server = format!("https://{addr}");
    let fp = ca_fingerprint(dir.path());
    let ca_file = dir.join("state.agents/ca-cert.pem");

    // The token is printed once and is not on disk.
    let t1 = token(&config, "fab", None);
    assert!(t1.starts_with("bh1."), "{t1}");
    let on_disk = std::fs::read_dir(dir.join("state.agents/tokens")).must("token folder");
    for f in on_disk {
        let body = std::fs::read(f.must("token file").path()).must("reading a token file");
        assert!(!String::from_utf8_lossy(&body).contains(&t1[4..]));
    }

    // A wrong fingerprint: the agent refuses the appliance, and the token is not spent.
    let a1 = dir.join("agent-1");
    let wrong = fp.replacen(&fp[..2], if &fp[..2] == "00" { "11" } else { "00" }, 1);
    let r = enroll(&a1, &t1, &server, &wrong);
    assert_eq!(r.status.code(), Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("no CA with fingerprint"), "{}", r.stderr);
    assert!(!a1.join("key.pem").exists());

    // The right one enrols; the key is the agent's alone.
    let r = enroll(&a1, &t1, &server, &fp.replace(':', "").to_ascii_lowercase());
    assert!(r.status.success(), "{}", r.stderr);
    assert!(r.stdout.contains("in group fab"), "{}", r.stdout);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(a1.join("key.pem"))
            .must("the agent key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // The same token again, and an expired one.
    let r = enroll(&dir.join("agent-2"), &t1, &server, &fp);
    assert_eq!(r.status.code(), Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("already used"), "{}", r.stderr);
    let short = token(&config, "fab", Some("1s"));
    std::thread::sleep(Duration::from_millis(2100));
    let r = enroll(&dir.join("agent-3"), &short, &server, &fp);
    assert_eq!(r.status.code(), Some(2), "{}", r.stderr);
    assert!(r.stderr.contains("expired"), "{}", r.stderr);
    assert!(!dir.join("agent-3").join("cert.pem").exists());

    // The agent connects and is listed with its version and address.
    let agent_log = dir.join("agent-1.stderr");
    let _agent = Background::start(&["agent", "--dir", &a1.to_string_lossy()], &agent_log);
    wait_until("the agent connected", Duration::from_secs(30), || {
        agents(&d).iter().any(|a| a["state"] == "connected")
    });
    let list = agents(&d);
    assert_eq!(list.len(), 1, "{list:?}");
    let a = &list[0];
    assert_eq!(a["group"], "fab");
    assert_eq!(a["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        a["address"]
            .as_str()
            .must("address")
            .starts_with("127.0.0.1:"),
        "{a}"
    );
    let id = a["id"].as_str().must("id").to_string();
    // Heartbeats arrive (1 s interval).
    let first = a["heartbeat_ms"].as_i64().must("heartbeat");
    wait_until("a heartbeat", Duration::from_secs(10), || {
        agents(&d)[0]["heartbeat_ms"]
            .as_i64()
            .is_some_and(|h| h > first)
    });

    // Accepted before revocation; a certificate of another CA, never.
    handshake(&addr, &ca_file, Some(agent_identity(&a1))).must("the enrolled agent's handshake");
    handshake(&addr, &ca_file, None).must("a handshake without a certificate (enrolment)");
    let stranger_key = rcgen::KeyPair::generate().must("a key");
    let stranger = rcgen::CertificateParams::new(vec!["agent".to_string()])
        .must("params")
        .self_signed(&stranger_key)
        .must("a self-signed certificate");
    let stranger_id = (
        vec![stranger.der().clone()],
        PrivateKeyDer::from_pem_slice(stranger_key.serialize_pem().as_bytes()).must("key"),
    );
    let e = refused(
        handshake(&addr, &ca_file, Some(stranger_id)),
        "a stranger's certificate",
    );
    assert!(e.contains("alert"), "{e}");

    // Revocation needs the API token (or a session with its CSRF token).
    let r = https(
        &d,
        "POST",
        "/api/actions/revoke-agent",
        &[("Content-Type", "application/json")],
        &format!("{{\"agent\":\"{id}\"}}"),
    );
    assert_eq!(r.status, 401, "{}", r.body);
    let auth = format!("Bearer {TOKEN}");
    let r = https(
        &d,
        "POST",
        "/api/actions/revoke-agent",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        &format!("{{\"agent\":\"{id}\"}}"),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(agents(&d)[0]["state"], "revoked");

    // From now on the agent's certificate is refused at the handshake, and the agent,
    // whose connection was closed, is refused when it comes back.
    let e = refused(
        handshake(&addr, &ca_file, Some(agent_identity(&a1))),
        "a revoked certificate",
    );
    assert!(e.contains("alert"), "{e}");
    assert!(
        wait_for_log(
            &agent_log,
            "refused at the TLS handshake",
            Duration::from_secs(30)
        ),
        "the agent was not refused:\n{}",
        std::fs::read_to_string(&agent_log).unwrap_or_default()
    );
    assert!(wait_for_log(
        &log,
        "closing the connection of a revoked agent",
        Duration::from_secs(5)
    ));
    assert_eq!(agents(&d)[0]["state"], "revoked");
    // No token reached the appliance's log.
    let text = std::fs::read_to_string(&log).must("reading the log");
    assert!(!text.contains(&t1[4..]) && !text.contains(&short[4..]));
}
