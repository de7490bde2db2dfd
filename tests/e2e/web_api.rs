//! The status page of a real `bridgehead run`: HTTPS with the generated certificate, the
//! JSON API with a bearer token, /metrics and /healthz, login, and `bridgehead passwd`
//! changing the password of the running daemon.

use std::io::Write as _;
use std::process::{Command, Stdio};

use super::web_client::{https, start_run};
use crate::support::{Must, TestDir, bin, demo_once};

fn login(d: &super::web_client::Daemon, password: &str) -> Option<String> {
    let form = https(d, "GET", "/login", &[], "");
    let cookie = form
        .headers
        .iter()
        .find(|(n, v)| n == "set-cookie" && v.starts_with("__Host-bh_login="))
        .map(|(_, v)| v.split(';').next().unwrap_or_default().to_string())
        .must("login cookie");
    let token = cookie.trim_start_matches("__Host-bh_login=").to_string();
    let body = format!("csrf={token}&user=admin&password={password}");
    let r = https(
        d,
        "POST",
        "/login",
        &[
            ("Cookie", &cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        &body,
    );
    (r.status == 303).then(|| {
        r.headers
            .iter()
            .find(|(n, v)| n == "set-cookie" && v.starts_with("__Host-bh_session="))
            .map(|(_, v)| v.split(';').next().unwrap_or_default().to_string())
            .must("session cookie")
    })
}

#[test]
fn web_api_over_https_and_passwd_while_running() {
    let dir = TestDir::new("web-api");
    demo_once(&dir);
    let d = start_run(&dir, Some("script-token-0123456789"));

    let h = https(&d, "GET", "/healthz", &[], "");
    assert_eq!((h.status, h.body.as_str()), (200, "ok\n"));
    assert_eq!(https(&d, "GET", "/api/overview", &[], "").status, 401);

    let auth = [("Authorization", "Bearer script-token-0123456789")];
    let o = https(&d, "GET", "/api/overview", &auth, "");
    assert_eq!(o.status, 200, "{}", o.body);
    assert_eq!(o.header("cache-control"), Some("no-store"));
    let o = o.json();
    assert!(o["counts"]["mv"].as_u64().must("mv count") > 2000, "{o}");
    assert!(o["last_cycle"]["id"].is_u64(), "{o}");
    let s = https(&d, "GET", "/api/objects?q=j%C3%BCrgen", &auth, "").json();
    let hits = s["mv"].as_array().must("mv hits");
    assert!(!hits.is_empty(), "{s}");
    let id = hits[0]["id"].as_u64().must("id");
    let m = https(&d, "GET", &format!("/api/objects/mv/{id}"), &auth, "").json();
    assert_eq!(
        m["links"].as_array().map(Vec::len),
        Some(2),
        "source and target: {m}"
    );
    let metrics = https(&d, "GET", "/metrics", &auth, "");
    assert!(
        metrics
            .body
            .contains("bridgehead_connector_space_objects{connector=\"contoso\"}"),
        "{}",
        metrics.body
    );
    // Without an Accept header: the classic text format, which has no `# EOF`.
    assert_eq!(
        metrics.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );

    // A cycle asked for over the API shows up in the history with who asked.
    let r = https(&d, "POST", "/api/actions/cycle", &auth, "");
    assert_eq!(r.status, 202, "{}", r.body);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let runs = https(&d, "GET", "/api/runs", &auth, "").json();
        if runs
            .as_array()
            .is_some_and(|a| a.iter().any(|r| r["trigger"] == "api token"))
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the requested cycle never ran: {runs}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    // The generated password logs in; `passwd` replaces it in the running daemon.
    let first = std::fs::read_to_string(dir.join("state.admin-password")).must("password file");
    assert!(
        login(&d, first.trim()).is_some(),
        "the generated password works"
    );
    let mut child = Command::new(bin())
        .args(["passwd", "-c", &dir.config().to_string_lossy()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .must("starting passwd");
    child
        .stdin
        .take()
        .must("stdin")
        .write_all(b"a brand new password\n")
        .must("writing the password");
    let out = child.wait_with_output().must("passwd");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("took the new admin password"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        login(&d, first.trim()).is_none(),
        "the old password still works"
    );
    let cookie = login(&d, "a+brand+new+password").must("logging in with the new password");
    let page = https(&d, "GET", "/", &[("Cookie", &cookie)], "");
    assert_eq!(page.status, 200);
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
}
