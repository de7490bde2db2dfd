//! Status-page latency under load: fills a store with a generated company (100,000 users by
//! default), then runs a full cycle and meanwhile times the overview page and object
//! searches over loopback HTTPS, in a bounded loop; prints p50/p99.
//!
//! `cargo bench --bench web` runs the full size (`BRIDGEHEAD_BENCH_USERS` overrides it).
//! Without `--bench` (as `cargo test --all-targets` runs it) it does a small smoke run.

use std::io::{BufWriter, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bridgehead::cli::demo_data::{DemoSize, demo_config, write_company_ldif};
use bridgehead::config::Config;
use bridgehead::model::{Clock, SystemClock};
use bridgehead::runner::{CycleOptions, Runner, Shutdown, handle};
use bridgehead::store::admin::AdminPasswordRecord;
use bridgehead::web;

type Tls = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

/// One keep-alive HTTPS connection that trusts exactly the generated certificate.
fn connect(addr: &str, cert: &std::path::Path) -> Result<Tls, Box<dyn std::error::Error>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_file(cert)?)?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let conn = rustls::ClientConnection::new(Arc::new(config), "127.0.0.1".try_into()?)?;
    let tcp = TcpStream::connect(addr)?;
    tcp.set_nodelay(true)?;
    tcp.set_read_timeout(Some(Duration::from_secs(60)))?;
    Ok(rustls::StreamOwned::new(conn, tcp))
}

/// Sends one request and reads the response; (status, headers, body).
fn request(
    s: &mut Tls,
    method: &str,
    path: &str,
    extra: &str,
    body: &str,
) -> Result<(u16, String, Vec<u8>), Box<dyn std::error::Error>> {
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n{extra}\r\n{body}",
        body.len()
    )?;
    s.flush()?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16384];
    loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Err("connection closed".into());
        }
        raw.extend_from_slice(&buf[..n]);
        let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&raw[..end]).to_string();
        let len: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().to_string())
            })
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if raw.len() >= end + 4 + len {
            let status = head
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            return Ok((status, head, raw[end + 4..end + 4 + len].to_vec()));
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn report(name: &str, mut v: Vec<Duration>) {
    v.sort();
    println!(
        "  {name:<28} {:>5} requests  p50 {:>8.1} ms  p99 {:>8.1} ms  max {:>8.1} ms",
        v.len(),
        percentile(&v, 0.5).as_secs_f64() * 1000.0,
        percentile(&v, 0.99).as_secs_f64() * 1000.0,
        v.last().copied().unwrap_or_default().as_secs_f64() * 1000.0
    );
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let full = std::env::args().any(|a| a == "--bench");
    let users = if full {
        std::env::var("BRIDGEHEAD_BENCH_USERS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(100_000)
    } else {
        1_000
    };
    let size = DemoSize {
        users,
        groups: (users / 50).max(10),
    };
    let dir = tempfile::tempdir()?;
    {
        let mut w = BufWriter::new(std::fs::File::create(dir.path().join("contoso.ldif"))?);
        write_company_ldif(&mut w, size)?;
        w.flush()?;
    }
    let text = format!("{}\n[web]\nlisten = \"127.0.0.1:0\"\n", demo_config());
    std::fs::write(dir.path().join("bridgehead.toml"), text)?;
    let config = Config::load(&dir.path().join("bridgehead.toml"))?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = bridgehead::store::Store::open(&config.state_file)?;
    let mut runner = Runner::new(
        config.clone(),
        store,
        Arc::clone(&clock),
        Shutdown::default(),
    );
    let opts = CycleOptions {
        full: true,
        only: None,
        trigger: "bench".into(),
        progress: false,
    };
    let t = Instant::now();
    let first = runner.cycle(&opts)?;
    let (cs, mv, _) = runner.store().read()?.counts()?;
    println!(
        "filled the store: {users} users, {cs} CS + {mv} MV objects in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    drop(first);
    let password = "benchmark password 123";
    {
        let tx = runner.store().write()?;
        tx.set_admin_password(&AdminPasswordRecord {
            phc: web::auth::hash_password(password)?,
            set_ms: clock.now_ms(),
            set_by: "bench".into(),
        })?;
        tx.commit()?;
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let shutdown = Shutdown::default();
    let (h, _inbox) = handle::channel(Arc::clone(&clock));
    runner.attach(h.live());
    let (bound, serve) =
        rt.block_on(web::bind(&config, h, Arc::clone(&clock), shutdown.clone()))?;
    let server = rt.spawn(serve);
    let addr = bound
        .url
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_string();

    // Log in once; the load loop reuses the session over one keep-alive connection.
    let mut s = connect(&addr, &bound.certificate)?;
    let (_, head, body) = request(&mut s, "GET", "/login", "", "")?;
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: __Host-bh_login="))
        .and_then(|v| v.split(';').next())
        .ok_or("no login cookie")?
        .to_string();
    let html = String::from_utf8_lossy(&body).to_string();
    let at = html.find("name=\"csrf\" value=\"").ok_or("no csrf field")? + 19;
    let csrf = html[at..].split('"').next().unwrap_or_default().to_string();
    let form = format!(
        "csrf={csrf}&user=admin&password={}",
        password.replace(' ', "+")
    );
    let (status, head, _) = request(
        &mut s,
        "POST",
        "/login",
        &format!(
            "Cookie: __Host-bh_login={cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        ),
        &form,
    )?;
    if status != 303 {
        return Err(format!("login failed: {status}").into());
    }
    let session = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: __Host-bh_session="))
        .and_then(|v| v.split(';').next())
        .ok_or("no session cookie")?
        .to_string();
    let auth = format!("Cookie: __Host-bh_session={session}\r\n");

    // The full cycle runs on its own thread; the load loop runs while it does.
    let cycle = std::thread::spawn(move || runner.cycle(&opts).map(|r| (r, runner)));
    let paths = [
        ("overview /", "/".to_string()),
        (
            "search (a name)",
            "/objects?q=J%C3%BCrgen+Patel".to_string(),
        ),
        (
            "search (no match)",
            "/objects?q=no-such-person-xyz".to_string(),
        ),
        (
            "api search (a mail)",
            "/api/objects?q=jpatel2%40corp".to_string(),
        ),
    ];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); paths.len()];
    let limit = if full { 300 } else { 20 };
    let deadline = Instant::now() + Duration::from_secs(if full { 300 } else { 60 });
    let mut during = 0;
    let mut i = 0;
    while Instant::now() < deadline
        && times.iter().map(Vec::len).sum::<usize>() < limit * paths.len()
    {
        let (name, path) = &paths[i % paths.len()];
        let t = Instant::now();
        let (status, _, body) = request(&mut s, "GET", path, &auth, "")?;
        let took = t.elapsed();
        if status != 200 || body.is_empty() {
            return Err(format!("{name}: status {status}").into());
        }
        times[i % paths.len()].push(took);
        if !cycle.is_finished() {
            during += 1;
        } else if full {
            // Only latency beside a running cycle counts in the full run.
            break;
        }
        i += 1;
    }
    let (rec, _runner) = cycle.join().map_err(|_| "the cycle panicked")??;
    println!(
        "full cycle beside the load: {:.1} s; {during} of {i} requests were answered while it ran",
        (rec.finished_ms - rec.started_ms) as f64 / 1000.0
    );
    for ((name, _), t) in paths.iter().zip(times) {
        report(name, t);
    }
    shutdown.request();
    let _ = rt.block_on(async { tokio::time::timeout(Duration::from_secs(15), server).await });
    Ok(())
}
