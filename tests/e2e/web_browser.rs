//! The status page in a real browser: headless Chromium, driven through chromedriver's W3C
//! WebDriver API, against a running `bridgehead demo`. Logs in, opens the overview, searches
//! a user, opens its lineage, runs a cycle and finds it in the history; screenshots every
//! page into a folder it prints. A table that should hold data but is empty fails the test.
//!
//! Chromium trusts exactly the generated certificate's key (`--ignore-certificate-errors-
//! spki-list` with its SPKI hash, honoured only with a fresh `--user-data-dir`); the test
//! first checks that the logged fingerprint is that certificate's.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

use super::web_client::{spki_hash, wait_for_status_page};
use crate::support::{Background, Must, TestDir};

/// The W3C element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .must("finding a free port")
}

/// chromedriver, killed when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Plain HTTP/1.1 JSON to chromedriver on loopback.
fn call(port: u16, method: &str, path: &str, body: Option<&Value>) -> Value {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut s = TcpStream::connect(("127.0.0.1", port)).must("connecting to chromedriver");
    s.set_read_timeout(Some(Duration::from_secs(120))).ok();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).must("sending to chromedriver");
    let rest = read_response(&mut s);
    let v: Value = serde_json::from_str(&rest).must(&format!("JSON from chromedriver: {rest}"));
    if let Some(err) = v["value"]["error"].as_str() {
        panic!(
            "WebDriver {method} {path}: {err}: {}",
            v["value"]["message"]
        );
    }
    v
}

/// Reads one response by its Content-Length (or chunks): chromedriver may keep the
/// connection open whatever `Connection: close` says.
fn read_response(s: &mut TcpStream) -> String {
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        let n = s.read(&mut buf).must("reading from chromedriver");
        raw.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&raw).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let head = head.to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            match length {
                Some(len) if body.len() >= len => return body[..len].to_string(),
                None if head.contains("transfer-encoding: chunked")
                    && body.ends_with("0\r\n\r\n") =>
                {
                    return dechunk(body);
                }
                _ => {}
            }
        }
        if n == 0 {
            let text = String::from_utf8_lossy(&raw).into_owned();
            return text
                .split_once("\r\n\r\n")
                .map(|(_, b)| b.to_string())
                .unwrap_or_default();
        }
    }
}

fn dechunk(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

/// One browser session.
struct Browser {
    port: u16,
    session: String,
    shots: PathBuf,
    n: usize,
}

impl Browser {
    fn post(&self, path: &str, body: Value) -> Value {
        call(
            self.port,
            "POST",
            &format!("/session/{}{path}", self.session),
            Some(&body),
        )
    }

    fn get(&self, path: &str) -> Value {
        call(
            self.port,
            "GET",
            &format!("/session/{}{path}", self.session),
            None,
        )
    }

    fn go(&self, url: &str) {
        self.post("/url", json!({ "url": url }));
    }

    /// Waits until the current URL satisfies `ok` (a click's navigation may still run).
    fn wait_url(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let url = self.url();
            if ok(&url) {
                return url;
            }
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "{what}: still at {url}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn url(&self) -> String {
        self.get("/url")["value"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn find_all(&self, css: &str) -> Vec<String> {
        self.post(
            "/elements",
            json!({ "using": "css selector", "value": css }),
        )["value"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|e| e[ELEMENT].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn find(&self, css: &str) -> String {
        // A page still loading after a click or submit: give it a moment.
        let start = Instant::now();
        loop {
            if let Some(el) = self.find_all(css).into_iter().next() {
                return el;
            }
            if start.elapsed() > Duration::from_secs(10) {
                let png = self.get("/screenshot")["value"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let path = self.shots.join("failure.png");
                if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(png) {
                    let _ = std::fs::write(&path, bytes);
                }
                panic!(
                    "no element {css:?} on {} (screenshot {})",
                    self.url(),
                    path.display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn text(&self, el: &str) -> String {
        self.get(&format!("/element/{el}/text"))["value"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    fn click(&self, css: &str) {
        let el = self.find(css);
        self.post(&format!("/element/{el}/click"), json!({}));
    }

    fn type_into(&self, css: &str, text: &str) {
        let el = self.find(css);
        self.post(&format!("/element/{el}/clear"), json!({}));
        self.post(&format!("/element/{el}/value"), json!({ "text": text }));
    }

    fn shot(&mut self, name: &str) -> PathBuf {
        self.n += 1;
        let png = self.get("/screenshot")["value"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png)
            .must("decoding the screenshot");
        let path = self.shots.join(format!("{:02}-{name}.png", self.n));
        std::fs::write(&path, bytes).must("writing the screenshot");
        path
    }

    /// An element's rendered width and height in CSS pixels.
    fn size(&self, el: &str) -> (f64, f64) {
        let r = self.get(&format!("/element/{el}/rect"))["value"].clone();
        (
            r["width"].as_f64().unwrap_or(0.0),
            r["height"].as_f64().unwrap_or(0.0),
        )
    }

    /// A screenshot of one element (a picture) on its own.
    fn element_shot(&mut self, el: &str, name: &str) -> PathBuf {
        self.n += 1;
        let png = self.get(&format!("/element/{el}/screenshot"))["value"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png)
            .must("decoding the element screenshot");
        assert!(bytes.len() > 1000, "{name}: an empty screenshot");
        let path = self.shots.join(format!("{:02}-{name}.png", self.n));
        std::fs::write(&path, bytes).must("writing the screenshot");
        path
    }

    /// Sets the window size (a phone's, a desktop's).
    fn window(&self, width: u32, height: u32) {
        self.post("/window/rect", json!({ "width": width, "height": height }));
    }

    /// Fails (after a screenshot) when a table that should hold data has no rows.
    fn rows(&mut self, table: &str) -> usize {
        // The page may still be loading after a click; an empty table stays empty.
        let start = Instant::now();
        let mut n = 0;
        while start.elapsed() < Duration::from_secs(10) {
            n = self.find_all(&format!("{table} tbody tr")).len();
            if n > 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if n == 0 {
            let shot = self.shot("empty-table");
            panic!(
                "table {table} on {} is empty (screenshot {})",
                self.url(),
                shot.display()
            );
        }
        n
    }
}

fn start_driver(profile: &Path) -> Driver {
    let port = free_port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Chromium keeps its certificate database under $HOME: keep that private too.
        .env("HOME", profile)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start chromedriver ({e}); install Debian's chromium and chromium-driver (scripts/test.sh does)"));
    let driver = Driver { child, port };
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            let status = call(port, "GET", "/status", None);
            if status["value"]["ready"] == true {
                return driver;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("chromedriver did not become ready on port {port}");
}

#[test]
fn web_browser_walkthrough() {
    let dir = TestDir::new("web-browser");
    let log = dir.join("demo.stderr");
    let demo = Background::start(
        &[
            "demo",
            "--dir",
            &dir.path().to_string_lossy(),
            "--listen",
            "127.0.0.1:0",
        ],
        &log,
    );
    let d = wait_for_status_page(demo, &log, dir.path());
    let password = std::fs::read_to_string(dir.join("state.admin-password")).must("password file");
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("web-screenshots-{}", std::process::id()));
    std::fs::create_dir_all(&shots).must("creating the screenshot folder");
    println!("screenshots: {}", shots.display());
    eprintln!("screenshots: {}", shots.display());

    let profile = dir.join("chromium-profile");
    std::fs::create_dir_all(&profile).must("creating the profile folder");
    let driver = start_driver(&profile);
    let args = json!([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
        format!("--user-data-dir={}", profile.display()),
        format!(
            "--ignore-certificate-errors-spki-list={}",
            spki_hash(&d.key)
        ),
    ]);
    let caps = json!({ "capabilities": { "alwaysMatch": {
        "browserName": "chrome",
        "acceptInsecureCerts": false,
        "goog:chromeOptions": { "binary": "/usr/bin/chromium", "args": args }
    }}});
    let s = call(driver.port, "POST", "/session", Some(&caps));
    let session = s["value"]["sessionId"]
        .as_str()
        .must("session id")
        .to_string();
    let mut b = Browser {
        port: driver.port,
        session,
        shots: shots.clone(),
        n: 0,
    };

    // Any page without a session leads to the login form.
    b.go(&d.url);
    b.wait_url("not sent to the login page", |u| u.ends_with("/login"));
    b.shot("login");
    b.type_into("input[name=password]", "wrong password here");
    b.click("body.login button");
    let refusal = b.text(&b.find(".error"));
    assert!(refusal.contains("Wrong user or password"), "{refusal}");
    b.type_into("input[name=password]", password.trim());
    b.click("body.login button");

    // Overview.
    b.wait_url("after login", |u| u == d.url);
    assert_eq!(b.text(&b.find("#health")), "ok");
    b.rows("#recent");
    b.shot("overview");

    // The pictures: drawn, with the demo's two connectors around the metaverse (in a tall
    // window, so that each is on screen whole for its own screenshot).
    b.window(1280, 1800);
    let topology = b.find("#topology svg.topology");
    let (w, h) = b.size(&topology);
    assert!(w >= 500.0 && h >= 100.0, "topology drawn at {w}x{h}");
    assert_eq!(
        b.find_all("#topology g.node").len(),
        3,
        "contoso, metaverse, directory"
    );
    assert_eq!(b.find_all("#topology g.node.source").len(), 1);
    assert_eq!(b.find_all("#topology g.node.target").len(), 1);
    assert_eq!(b.find_all("#topology g.edge").len(), 2, "an arrow each");
    let labels = b.text(&topology);
    assert!(
        labels.contains("contoso") && labels.contains("metaverse") && labels.contains("pending"),
        "topology text: {labels}"
    );
    b.element_shot(&topology, "topology");
    let history = b.find("#history svg.history");
    let (w, h) = b.size(&history);
    assert!(w >= 500.0 && h >= 150.0, "history drawn at {w}x{h}");
    assert!(
        !b.find_all("#history g.run").is_empty(),
        "the first cycle in the history"
    );
    assert!(!b.find_all("#history g.run rect.phase-import").is_empty());
    b.element_shot(&history, "run-history");
    b.window(1280, 1000);
    // On a phone the pictures stay within the page and scroll sideways in their frame.
    b.window(390, 844);
    let frame = b.find("#topology");
    // Headless Chromium lays the page out again a moment after the resize.
    let start = Instant::now();
    let mut fw = b.size(&frame).0;
    while fw > 390.0 && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
        fw = b.size(&frame).0;
    }
    assert!(fw <= 390.0, "topology frame {fw} px wide on a 390 px phone");
    b.shot("overview-phone");
    b.element_shot(&frame, "topology-phone");
    b.window(1280, 1000);

    // Search a user and open the lineage.
    b.click("nav a[href='/objects']");
    b.type_into("input[name=q]", "Jürgen");
    b.click("#search");
    let hits = b.rows("#mv-results");
    assert!(hits >= 2, "{hits} hits for Jürgen");
    b.shot("search");
    let first_hit = b.text(&b.find("#mv-results tbody tr"));
    b.click("#mv-results tbody tr a");
    b.wait_url("lineage", |u| u.contains("/objects/mv/"));
    b.rows("#mv-attributes");
    let lineage = b.find_all("section.cs").len();
    assert!(
        lineage >= 2,
        "lineage shows {lineage} connector-space objects, expected source and target"
    );
    let first_attr = b.text(&b.find("#mv-attributes tbody tr"));
    assert!(
        first_attr.contains("contoso"),
        "contributing connector shown: {first_attr}"
    );
    b.shot("lineage");

    // Sync one object now: its mail changes at the source, the button on its connector-space
    // page takes it through import, sync and export, and the target has the new mail at
    // once, without a cycle.
    let mail = first_hit
        .split_whitespace()
        .find(|w| w.contains('@'))
        .must("the hit's mail")
        .to_string();
    let new_mail = mail.replacen('@', ".synced@", 1);
    let source_path = dir.join("contoso.ldif");
    let source = std::fs::read_to_string(&source_path).must("the demo source");
    let line = format!("mail: {mail}\n");
    assert!(source.contains(&line), "{mail} not in the source");
    std::fs::write(
        &source_path,
        source.replacen(&line, &format!("mail: {new_mail}\n"), 1),
    )
    .must("changing the source");
    let contoso = b
        .find_all("section.cs h3")
        .into_iter()
        .map(|h| b.text(&h))
        .find(|t| t.contains("[contoso]"))
        .must("the source object in the lineage");
    let cs_id = contoso
        .split_whitespace()
        .next()
        .and_then(|w| w.strip_prefix("cs:"))
        .must("its id")
        .to_string();
    b.go(&format!("{}objects/cs/{cs_id}", d.url));
    b.click("#sync-object");
    // The answer is the POST's own page: wait for it before reading (the old page's
    // elements go stale under a reader that is too quick).
    b.wait_url("the sync-object report", |u| {
        u.contains("/actions/sync-object")
    });
    let body = b.text(&b.find("main"));
    assert!(
        body.contains("read from the directory") && body.contains("Export to directory"),
        "the sync-object report: {body}"
    );
    b.shot("sync-object");
    let target = std::fs::read_to_string(dir.join("directory.ldif")).must("the demo target");
    assert!(
        target.contains(&new_mail) && !target.contains(&format!(": {mail}\n")),
        "{new_mail} did not reach the target at once"
    );

    // Connectors: each with its objects over time.
    b.click("nav a[href='/connectors']");
    let charts = b.find_all(".objects-over-time svg.objects");
    assert_eq!(charts.len(), 2, "a chart per connector");
    assert!(
        !b.find_all(".objects-over-time polyline.series").is_empty(),
        "object counts recorded by the first cycle"
    );
    b.element_shot(&charts[0], "objects-over-time");

    // Connectors, config and host pages.
    for (href, table) in [
        ("/connectors", "table.kv"),
        ("/config", "#inbound"),
        ("/host", "#host"),
    ] {
        b.click(&format!("nav a[href='{href}']"));
        b.rows(table);
        b.shot(href.trim_start_matches('/'));
    }

    // Run a cycle and see it in the history.
    b.click("nav a[href='/']");
    b.click("#run-delta");
    b.wait_url("cycle requested", |u| u.contains("notice=cycle"));
    b.shot("cycle-requested");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        b.go(&format!("{}runs", d.url));
        let mine = b
            .find_all("#runs tbody tr")
            .iter()
            .any(|r| b.text(r).contains("admin (status page)"));
        if mine {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the requested cycle never reached the history"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    b.rows("#runs");
    b.shot("history");
    b.click("#runs tbody tr a");
    b.rows("#run-connectors");
    b.shot("run");

    call(
        driver.port,
        "DELETE",
        &format!("/session/{}", b.session),
        None,
    );
    let taken = std::fs::read_dir(&shots).map(|d| d.count()).unwrap_or(0);
    assert!(taken >= 10, "{taken} screenshots in {}", shots.display());
    drop(d);
}
