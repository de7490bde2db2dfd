//! The lab's smoke test: every kind of server the tests need starts, from what
//! scripts/deps.sh installs. scripts/fresh-root.sh runs this test inside a bare Debian root
//! after the project's installer, so a package missing from the list fails CI here, at the
//! named step, instead of in thirty tests at once on a newcomer's machine. On a developer's
//! machine it is an ordinary (quick) test of the same.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use crate::support::lab::{self, LdapServer as _, Scope, samba, scim, slapd};

/// Runs one named step; a panic inside it is reported with the step's name.
fn step<T>(name: &str, f: impl FnOnce() -> T) -> T {
    eprintln!("fresh root: {name} ...");
    let started = std::time::Instant::now();
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(v) => {
            eprintln!(
                "fresh root: {name}: ok in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            v
        }
        Err(e) => {
            let why = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("fresh root: step '{name}' failed: {why}");
        }
    }
}

/// Serves one HTML page on loopback to whoever asks, until the test ends.
fn serve_page(body: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("binding: {e}"));
    let port = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("local address: {e}"))
        .port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn fresh_root_lab_servers_and_browser_start() {
    step("Samba AD forest: provision and start", || {
        let corp = samba::corp();
        let _up = corp.hold();
        let found = corp.ldapsearch(
            &corp.base_dn,
            Scope::Base,
            "(objectClass=domain)",
            &["objectGUID"],
        );
        assert_eq!(found.len(), 1, "the domain object of {}", corp.base_dn);
    });
    step("OpenLDAP slapd: start", || {
        let ldap = slapd::shared();
        let _up = ldap.hold();
        let found = ldap.ldapsearch(ldap.base_dn(), Scope::Base, "(objectClass=*)", &["dn"]);
        assert_eq!(found.len(), 1, "the base entry {}", ldap.base_dn());
    });
    step("SCIM test server: start", || {
        let server = scim::start();
        let answer = server.request("GET", "/Users", None);
        assert_eq!(answer.status, 200, "GET /Users: {:?}", answer.json);
        assert_eq!(answer.json["totalResults"], 0, "{:?}", answer.json);
    });
    step("headless Chromium: load a local page", || {
        let port = serve_page(
            "<!doctype html><title>t</title><p id=m></p>\
             <script>document.getElementById('m').textContent='rendered-' + (6*7);</script>",
        );
        let profile = lab::root().join("fresh-root-chromium");
        let _ = std::fs::create_dir_all(&profile);
        let mut cmd = Command::new("chromium");
        cmd.args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("http://127.0.0.1:{port}/"))
        .env("HOME", &profile);
        let out = lab::try_run(&mut cmd, Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("running chromium: {e}"));
        let dom = String::from_utf8_lossy(&out.stdout);
        // The text exists only if the page's script ran: a real render, not a fetch.
        assert!(
            dom.contains("rendered-42"),
            "chromium exited {} without rendering the page; DOM: {dom}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        lab::require_program("chromedriver", "chromium-driver");
    });
}
