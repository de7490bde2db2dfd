//! The status page without sockets: auth, CSRF, throttling, session expiry (by the injected
//! clock), API shapes and the metrics text.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::model::{AttrName, ConnectorName, Contribution, Dn, FixedClock, ObjectType, Value};
use crate::runner::handle::channel;
use crate::store::admin::AdminPasswordRecord;
use crate::store::write::LinkKind;
use crate::store::{ConnectorRunStats, CsRecord, ErrorRecord, MvRecord, RunRecord};
use crate::web::auth::hash_password;

pub(super) const PASSWORD: &str = "a good long password";
const T0: i64 = 1_800_000_000_000;

pub(super) struct Fixture {
    _dir: tempfile::TempDir,
    pub(super) _writer: Store,
    pub(super) app: App,
    pub(super) clock: Arc<FixedClock>,
    _inbox: crate::runner::handle::Inbox,
}

fn config(dir: &Path, token: Option<&str>, extra: &str) -> Config {
    let mut text = String::from(
        "state_file = \"state.redb\"\n[[connector]]\nname = \"contoso\"\ntype = \"ldif\"\nmode = \"source\"\npath = \"c.ldif\"\nanchor = \"objectGUID\"\n",
    );
    if let Some(t) = token {
        std::fs::write(dir.join("token"), t).unwrap();
        text.push_str("[web]\napi_token_file = \"token\"\n");
    }
    text.push_str(extra);
    Config::parse(&text, &dir.join("bridgehead.toml")).unwrap()
}

/// A store with one person (mv:1) joined to one source object (cs:1), and one run.
fn seed(store: &Store) {
    let tx = store.write().unwrap();
    tx.set_admin_password(&AdminPasswordRecord {
        phc: hash_password(PASSWORD).unwrap(),
        set_ms: T0,
        set_by: "test".into(),
    })
    .unwrap();
    let mv = tx.new_mv_id().unwrap();
    let mut rec = MvRecord::new(ObjectType::Person);
    rec.attrs.add(
        &AttrName::new("displayName"),
        Value::str("Jürgen Testperson"),
    );
    rec.attrs
        .add(&AttrName::new("mail"), Value::str("jtest@corp.contoso.com"));
    rec.sources.push(Contribution {
        connector: ConnectorName::new("contoso").unwrap(),
        rule: "contoso-users".into(),
        precedence: 10,
    });
    rec.attr_sources = vec![0, 0];
    tx.put_mv(mv, &rec).unwrap();
    let cs = tx.new_cs_id().unwrap();
    let mut attrs = crate::model::Attributes::new();
    attrs.add(&AttrName::new("cn"), Value::str("Jürgen Testperson"));
    tx.put_cs(
        cs,
        &CsRecord {
            connector: "contoso".into(),
            anchor: Some(vec![0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4]),
            dn: Dn::parse("CN=Jürgen Testperson,OU=People,DC=corp,DC=contoso,DC=com").unwrap(),
            object_class: "user".into(),
            attrs,
            deleted: false,
            object_type: Some(ObjectType::Person),
            export: None,
            error: Some(ErrorRecord {
                message: "directory says: constraint violation".into(),
                first_seen_ms: T0 - 500,
                last_seen_ms: T0 - 500,
                attempts: 2,
            }),
            unresolved: Vec::new(),
            unconfirmed: false,
            claims: Vec::new(),
        },
    )
    .unwrap();
    tx.link(cs, "contoso", mv, LinkKind::Inbound).unwrap();
    tx.add_run(&RunRecord {
        started_ms: T0 - 1000,
        finished_ms: T0,
        mode: "delta".into(),
        trigger: "scheduler".into(),
        connectors: vec![ConnectorRunStats {
            connector: "contoso".into(),
            errors: 1,
            ..Default::default()
        }],
        failure: None,
        phases: Vec::new(),
        staging: false,
    })
    .unwrap();
    tx.commit().unwrap();
}

pub(super) fn fixture(token: Option<&str>) -> Fixture {
    fixture_with(token, |_| String::new())
}

/// A fixture whose config has more tables: `extra` gets the folder (for secret files).
pub(super) fn fixture_with(token: Option<&str>, extra: impl FnOnce(&Path) -> String) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let more = extra(dir.path());
    let config = config(dir.path(), token, &more);
    let writer = Store::open(&config.state_file).unwrap();
    seed(&writer);
    let reader = Store::open_read_only(&config.state_file).unwrap();
    let clock = Arc::new(FixedClock::at(T0));
    let (handle, inbox) = channel(clock.clone());
    let app = App::new(config, reader, handle, clock.clone(), "test".into());
    Fixture {
        _dir: dir,
        _writer: writer,
        app,
        clock,
        _inbox: inbox,
    }
}

pub(super) fn req(method: Method, path: &str, cookies: &str, body: &str) -> Req {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let mut headers = vec![("host".to_string(), "127.0.0.1:8443".to_string())];
    if !cookies.is_empty() {
        headers.push(("cookie".into(), cookies.into()));
    }
    Req {
        method,
        path: path.into(),
        query: query.into(),
        headers,
        body: body.as_bytes().to_vec(),
        peer: IpAddr::from([127, 0, 0, 1]),
        gone: Default::default(),
    }
}

pub(super) fn cookie_value(resp: &Resp, name: &str) -> Option<String> {
    resp.headers
        .iter()
        .filter(|(n, _)| n == "set-cookie")
        .filter_map(|(_, v)| v.split(';').next()?.split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_string())
}

pub(super) fn body(resp: &Resp) -> String {
    String::from_utf8_lossy(&resp.body).into_owned()
}

/// A login form's CSRF token and cookie.
pub(super) fn login_form(app: &App) -> (String, String) {
    let r = app.respond(&req(Method::Get, "/login", "", ""));
    assert_eq!(r.status, 200);
    let cookie = cookie_value(&r, LOGIN_COOKIE).unwrap();
    let html = body(&r);
    let at = html.find("name=\"csrf\" value=\"").unwrap() + 19;
    let field = html[at..].split('"').next().unwrap().to_string();
    assert_eq!(cookie, field);
    (field, format!("{LOGIN_COOKIE}={cookie}"))
}

pub(super) fn try_login(app: &App, password: &str) -> Resp {
    let (csrf, cookie) = login_form(app);
    let form = format!("csrf={csrf}&user=admin&password={}", url_encode(password));
    app.respond(&req(Method::Post, "/login", &cookie, &form))
}

/// Logs in; the session cookie header and the session's CSRF token.
pub(super) fn login(app: &App) -> (String, String) {
    let r = try_login(app, PASSWORD);
    assert_eq!(r.status, 303, "{}", body(&r));
    let cookie = format!(
        "{SESSION_COOKIE}={}",
        cookie_value(&r, SESSION_COOKIE).unwrap()
    );
    let page = app.respond(&req(Method::Get, "/", &cookie, ""));
    assert_eq!(page.status, 200);
    let html = body(&page);
    let at = html.find("name=\"csrf\" value=\"").unwrap() + 19;
    (cookie, html[at..].split('"').next().unwrap().to_string())
}

#[test]
fn auth_wrong_password_is_refused_and_pages_need_a_login() {
    let f = fixture(None);
    let r = f.app.respond(&req(Method::Get, "/", "", ""));
    assert_eq!((r.status, r.header("location")), (303, Some("/login")));
    let r = try_login(&f.app, "not the password");
    assert_eq!(r.status, 401);
    assert!(cookie_value(&r, SESSION_COOKIE).is_none());
    assert!(body(&r).contains("Wrong user or password"));
    // A login form without its cookie (a forged cross-site form) is refused.
    let r = f.app.respond(&req(
        Method::Post,
        "/login",
        "",
        &format!("csrf=x&user=admin&password={PASSWORD}"),
    ));
    assert_eq!(r.status, 403);
    let (cookie, _) = login(&f.app);
    let set = try_login(&f.app, PASSWORD);
    let flags = set
        .headers
        .iter()
        .find(|(n, v)| n == "set-cookie" && v.starts_with(SESSION_COOKIE))
        .unwrap();
    for flag in [
        "Secure",
        "HttpOnly",
        "SameSite=Strict",
        "Path=/",
        "Max-Age=",
    ] {
        assert!(flags.1.contains(flag), "{}", flags.1);
    }
    let r = f.app.respond(&req(Method::Get, "/", &cookie, ""));
    assert_eq!(r.status, 200);
    for (h, v) in [
        ("x-frame-options", "DENY"),
        ("cache-control", "no-store"),
        ("x-content-type-options", "nosniff"),
    ] {
        assert_eq!(r.header(h), Some(v), "{h}");
    }
    let csp = r.header("content-security-policy").unwrap();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(
        !body(&r).contains("<script"),
        "pages must work without JavaScript"
    );
}

#[test]
fn auth_failed_logins_are_rate_limited() {
    let f = fixture(None);
    for _ in 0..5 {
        assert_eq!(try_login(&f.app, "wrong wrong wrong").status, 401);
    }
    // Even the right password waits now.
    let r = try_login(&f.app, PASSWORD);
    assert_eq!(r.status, 429, "{}", body(&r));
    assert!(r.header("retry-after").is_some());
    assert!(cookie_value(&r, SESSION_COOKIE).is_none());
    f.clock.advance(61_000);
    assert_eq!(try_login(&f.app, PASSWORD).status, 303);
}

#[test]
fn auth_expired_session_goes_back_to_login() {
    let f = fixture(None);
    let (cookie, _) = login(&f.app);
    f.clock.advance(29 * 60_000);
    assert_eq!(
        f.app
            .respond(&req(Method::Get, "/runs", &cookie, ""))
            .status,
        200
    );
    // 30 minutes idle (the default timeout) ends it.
    f.clock.advance(30 * 60_000);
    let r = f.app.respond(&req(Method::Get, "/runs", &cookie, ""));
    assert_eq!((r.status, r.header("location")), (303, Some("/login")));
    let r = f
        .app
        .respond(&req(Method::Get, "/api/overview", &cookie, ""));
    assert_eq!(r.status, 401);
}

#[test]
fn auth_posts_need_the_csrf_token() {
    let f = fixture(None);
    let (cookie, csrf) = login(&f.app);
    let r = f
        .app
        .respond(&req(Method::Post, "/actions/cycle", &cookie, "mode=delta"));
    assert_eq!(r.status, 403, "missing token");
    let r = f.app.respond(&req(
        Method::Post,
        "/actions/cycle",
        &cookie,
        "mode=delta&csrf=forged",
    ));
    assert_eq!(r.status, 403, "wrong token");
    let mut cross = req(
        Method::Post,
        "/actions/cycle",
        &cookie,
        &format!("mode=delta&csrf={csrf}"),
    );
    cross
        .headers
        .push(("origin".into(), "https://evil.example".into()));
    assert_eq!(f.app.respond(&cross).status, 403, "other origin");
    let r = f.app.respond(&req(
        Method::Post,
        "/actions/cycle",
        &cookie,
        &format!("mode=delta&csrf={csrf}"),
    ));
    assert_eq!(
        (r.status, r.header("location")),
        (303, Some("/?notice=cycle"))
    );
    let r = f.app.respond(&req(
        Method::Post,
        "/logout",
        &cookie,
        &format!("csrf={csrf}"),
    ));
    assert_eq!(r.status, 303);
    assert_eq!(
        f.app.respond(&req(Method::Get, "/", &cookie, "")).status,
        303
    );
}

fn api(f: &Fixture, path: &str) -> serde_json::Value {
    let mut r = req(Method::Get, path, "", "");
    r.headers
        .push(("authorization".into(), "Bearer tok-123".into()));
    let resp = f.app.respond(&r);
    assert_eq!(resp.status, 200, "{path}: {}", body(&resp));
    assert_eq!(resp.header("content-type"), Some("application/json"));
    serde_json::from_slice(&resp.body).unwrap()
}

#[test]
fn api_json_shapes() {
    let f = fixture(Some("tok-123"));
    let mut wrong = req(Method::Get, "/api/overview", "", "");
    wrong
        .headers
        .push(("authorization".into(), "Bearer tok-124".into()));
    assert_eq!(f.app.respond(&wrong).status, 401);
    assert_eq!(
        f.app
            .respond(&req(Method::Get, "/api/overview", "", ""))
            .status,
        401
    );

    let o = api(&f, "/api/overview");
    assert_eq!(o["health"], "ok");
    assert_eq!(o["counts"]["mv"], 1);
    assert_eq!(o["counts"]["cs"], 1);
    assert_eq!(o["errors_last_cycle"], 1);
    assert_eq!(o["last_cycle"]["mode"], "delta");
    assert!(o["staging"].is_boolean() && o["blocked"].is_array() && o["running"].is_null());

    let runs = api(&f, "/api/runs");
    let run = &runs[0];
    for k in [
        "id",
        "started_ms",
        "duration_ms",
        "mode",
        "trigger",
        "errors",
    ] {
        assert!(!run[k].is_null(), "runs[0].{k}: {run}");
    }
    for k in ["adds", "updates", "deletes", "renames"] {
        assert!(
            run["import"][k].is_u64() && run["export"][k].is_u64(),
            "{run}"
        );
    }
    let d = api(&f, &format!("/api/runs/{}", run["id"]));
    assert_eq!(
        d["errors"][0]["message"],
        "directory says: constraint violation"
    );
    assert_eq!(d["errors"][0]["connector"], "contoso");

    let s = api(&f, "/api/objects?q=J%C3%9CRGEN");
    assert_eq!(s["mv"][0]["name"], "Jürgen Testperson", "{s}");
    assert_eq!(s["mv"][0]["mail"], "jtest@corp.contoso.com");
    let s = api(&f, "/api/objects?q=ou%3Dpeople");
    assert_eq!(s["cs"][0]["connector"], "contoso", "{s}");
    assert_eq!(s["cs"][0]["mv"], 1);
    let s = api(&f, "/api/objects?q=DEADBEEF");
    assert_eq!(
        s["cs"].as_array().map(Vec::len),
        Some(1),
        "anchor as hex: {s}"
    );
    assert_eq!(
        api(&f, "/api/objects?q=nobody-like-this")["mv"]
            .as_array()
            .map(Vec::len),
        Some(0)
    );

    let m = api(&f, "/api/objects/mv/1");
    assert_eq!(m["attributes"][0]["name"], "displayName");
    assert_eq!(m["attributes"][0]["connector"], "contoso");
    assert_eq!(m["attributes"][0]["rule"], "contoso-users");
    assert_eq!(m["attributes"][0]["precedence"], 10);
    assert_eq!(m["links"][0]["connector"], "contoso");
    assert_eq!(m["links"][0]["anchor"], "deadbeef01020304");
    assert_eq!(m["links"][0]["provisioned"], false);

    let c = api(&f, "/api/connectors");
    assert_eq!(c[0]["name"], "contoso");
    assert_eq!(c[0]["kind"], "ldif");
    assert_eq!(
        (
            c[0]["objects"].as_u64(),
            c[0]["connectors"].as_u64(),
            c[0]["errors"].as_u64()
        ),
        (Some(1), Some(1), Some(1))
    );
    let cfg = api(&f, "/api/config");
    assert_eq!(cfg["api_token"], true);
    assert!(
        !cfg.to_string().contains("tok-123"),
        "the token leaked: {cfg}"
    );
    let h = api(&f, "/api/host");
    assert!(h["memory_total"].as_u64().unwrap() > 0 && h["cpus"].as_u64().unwrap() > 0);

    let mut r = req(Method::Get, "/api/objects/mv/999", "", "");
    r.headers
        .push(("authorization".into(), "Bearer tok-123".into()));
    assert_eq!(f.app.respond(&r).status, 404);
    // Pages are not reachable with the token: it is for scripts, not browsers.
    let mut r = req(Method::Get, "/", "", "");
    r.headers
        .push(("authorization".into(), "Bearer tok-123".into()));
    assert_eq!(f.app.respond(&r).status, 303);
}

/// A strict reader of the Prometheus / OpenMetrics text format: every sample belongs to a
/// family declared by `# TYPE`, names and labels are well formed, values are numbers, and
/// OpenMetrics ends with `# EOF`. Returns (name, labels, value) triples.
pub(crate) fn parse_metrics(text: &str) -> Result<Vec<(String, String, f64)>, String> {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.chars().enumerate().all(|(i, c)| {
                c.is_ascii_alphabetic() || c == '_' || c == ':' || (i > 0 && c.is_ascii_digit())
            })
    };
    let mut types: std::collections::HashMap<String, String> = Default::default();
    let mut out = Vec::new();
    let mut eof = false;
    for (i, line) in text.lines().enumerate() {
        let at = |m: &str| format!("line {}: {m}: {line:?}", i + 1);
        if eof {
            return Err(at("text after # EOF"));
        }
        if line == "# EOF" {
            eof = true;
            continue;
        }
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kind, name, arg) = (parts.next(), parts.next(), parts.next());
            match (kind, name, arg) {
                (Some("TYPE"), Some(n), Some(t)) if name_ok(n) => {
                    if ![
                        "gauge",
                        "counter",
                        "histogram",
                        "summary",
                        "untyped",
                        "unknown",
                        "info",
                        "stateset",
                    ]
                    .contains(&t)
                    {
                        return Err(at("unknown type"));
                    }
                    types.insert(n.to_string(), t.to_string());
                }
                (Some("HELP"), Some(n), _) if name_ok(n) => {}
                (Some("UNIT"), Some(n), _) if name_ok(n) => {}
                _ => return Err(at("bad comment line")),
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').ok_or_else(|| at("no value"))?;
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().map_err(|_| at("value is not a number"))?,
        };
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => {
                let l = l.strip_suffix('}').ok_or_else(|| at("unclosed labels"))?;
                for pair in l.split(',').filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once('=').ok_or_else(|| at("label without ="))?;
                    if !name_ok(k)
                        || k.contains(':')
                        || !(v.len() >= 2 && v.starts_with('"') && v.ends_with('"'))
                    {
                        return Err(at("bad label"));
                    }
                }
                (n, l.to_string())
            }
            None => (series, String::new()),
        };
        if !name_ok(name) {
            return Err(at("bad metric name"));
        }
        let family = ["_total", "_bucket", "_count", "_sum", "_created", "_info"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| types.contains_key(*f)))
            .unwrap_or(name);
        if !types.contains_key(family) {
            return Err(at("sample without a # TYPE line"));
        }
        out.push((name.to_string(), labels, value));
    }
    if !eof {
        return Err("no # EOF at the end".into());
    }
    Ok(out)
}

#[test]
fn metrics_parse_as_prometheus_text() {
    let f = fixture(Some("tok-123"));
    let mut r = req(Method::Get, "/metrics", "", "");
    assert_eq!(f.app.respond(&r).status, 401);
    r.headers
        .push(("authorization".into(), "Bearer tok-123".into()));
    let classic = f.app.respond(&r);
    assert_eq!(classic.status, 200);
    assert_eq!(
        classic.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(!body(&classic).contains("# EOF"));
    r.headers.push((
        "accept".into(),
        "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.2".into(),
    ));
    let resp = f.app.respond(&r);
    assert_eq!(resp.status, 200);
    assert!(
        resp.header("content-type")
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    let samples = parse_metrics(&body(&resp)).unwrap_or_else(|e| panic!("{e}\n{}", body(&resp)));
    let get = |name: &str, labels: &str| {
        samples
            .iter()
            .find(|(n, l, _)| n == name && l == labels)
            .map(|(_, _, v)| *v)
    };
    assert_eq!(
        get(
            "bridgehead_connector_space_objects",
            "connector=\"contoso\""
        ),
        Some(1.0)
    );
    assert_eq!(
        get("bridgehead_object_errors", "connector=\"contoso\""),
        Some(1.0)
    );
    assert_eq!(get("bridgehead_metaverse_objects", ""), Some(1.0));
    assert_eq!(
        get("bridgehead_exports_pending", "connector=\"contoso\""),
        Some(0.0)
    );
    assert_eq!(get("bridgehead_last_cycle_duration_seconds", ""), Some(1.0));
    assert_eq!(
        get("bridgehead_last_successful_cycle_timestamp_seconds", ""),
        Some(T0 as f64 / 1000.0)
    );
    assert_eq!(get("bridgehead_healthy", ""), Some(1.0));
    // The parser itself refuses what Prometheus would.
    assert!(parse_metrics("x 1\n# EOF\n").is_err());
    assert!(parse_metrics("# TYPE x gauge\nx{a=b} 1\n# EOF\n").is_err());
    assert!(parse_metrics("# TYPE x gauge\nx one\n# EOF\n").is_err());
    assert!(parse_metrics("# TYPE x gauge\nx 1\n").is_err());
}

#[test]
fn healthz_needs_no_login_and_says_only_ok_or_degraded() {
    let f = fixture(None);
    let r = f.app.respond(&req(Method::Get, "/healthz", "", ""));
    assert_eq!((r.status, body(&r).as_str()), (200, "ok\n"));
    // No cycle for far longer than the schedule allows: degraded.
    f.clock.advance(24 * 3600 * 1000);
    let r = f.app.respond(&req(Method::Get, "/healthz", "", ""));
    assert_eq!((r.status, body(&r).as_str()), (503, "degraded\n"));
}

#[test]
fn pages_render_with_data() {
    let f = fixture(None);
    let (cookie, _) = login(&f.app);
    for (path, needle) in [
        ("/", "Jürgen"),
        ("/connectors", "contoso"),
        ("/runs", "scheduler"),
        ("/runs/1", "constraint violation"),
        ("/objects?q=testperson", "mv:1"),
        ("/objects/mv/1", "contoso-users"),
        ("/objects/cs/1", "deadbeef01020304"),
        ("/config", "contoso"),
        ("/host", "CPU"),
        ("/account", "New password"),
    ] {
        let r = f.app.respond(&req(Method::Get, path, &cookie, ""));
        assert_eq!(r.status, 200, "{path}");
        let html = body(&r);
        if path != "/" {
            assert!(html.contains(needle), "{path} lacks {needle:?}");
        }
    }
    let r = f
        .app
        .respond(&req(Method::Get, "/objects?q=%3Cscript%3E", &cookie, ""));
    assert!(!body(&r).contains("<script>"), "the query is escaped");
}
