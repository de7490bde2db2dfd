//! The status page against bad clients, without sockets: a login flood that must not lock
//! the owner out, wrong API tokens, the password form, long searches and a client that
//! leaves, and answer times that do not tell user names apart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::time::Instant;

use super::tests::{PASSWORD, body, cookie_value, fixture, login, login_form, req};
use super::*;
use crate::web::throttle::{ATTACK_HOLD_MS, DEVICE_COOKIE};

/// A login attempt from `peer`, with extra cookies (a device cookie) if given.
fn attempt(app: &App, peer: [u8; 4], user: &str, password: &str, device: Option<&str>) -> Resp {
    let (csrf, form_cookie) = login_form(app);
    let cookies = match device {
        Some(d) => format!("{form_cookie}; {DEVICE_COOKIE}={d}"),
        None => form_cookie,
    };
    let form = format!("csrf={csrf}&user={user}&password={}", url_encode(password));
    let mut r = req(Method::Post, "/login", &cookies, &form);
    r.peer = IpAddr::from(peer);
    app.respond(&r)
}

#[test]
fn a_login_flood_from_many_addresses_does_not_lock_the_owner_out() {
    let f = fixture(None);
    // The owner logged in from this browser before, and keeps its device cookie.
    let first = attempt(&f.app, [192, 168, 1, 10], "admin", PASSWORD, None);
    assert_eq!(first.status, 303, "{}", body(&first));
    let device = cookie_value(&first, DEVICE_COOKIE).expect("a device cookie");
    // 20 attacker addresses fail 5 times each within a second: far past the account's
    // budget for untrusted clients.
    for a in 0..20u8 {
        for _ in 0..5 {
            let r = attempt(&f.app, [10, 9, 0, a], "admin", "guess guess guess", None);
            assert!(matches!(r.status, 401 | 429), "{}", r.status);
        }
    }
    f.clock.advance(1_000);
    // The attackers are refused without a check, also with the right password.
    let r = attempt(&f.app, [10, 9, 0, 3], "admin", PASSWORD, None);
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").is_some());
    // The owner's browser gets in at once.
    let r = attempt(&f.app, [192, 168, 1, 10], "admin", PASSWORD, Some(&device));
    assert_eq!((r.status, r.hold_ms), (303, 0), "{}", body(&r));
    // From a fresh address (a new laptop) the right password gets in too, held back a
    // little; the answer to a wrong one is held the same, so the hold says nothing.
    let r = attempt(&f.app, [172, 16, 0, 5], "admin", PASSWORD, None);
    assert_eq!((r.status, r.hold_ms), (303, ATTACK_HOLD_MS), "{}", body(&r));
    assert!(cookie_value(&r, SESSION_COOKIE).is_some());
    let r = attempt(&f.app, [172, 16, 0, 6], "admin", "one more guess", None);
    assert_eq!((r.status, r.hold_ms), (401, ATTACK_HOLD_MS));
    // That fresh address had its one try while the attack goes on.
    let r = attempt(&f.app, [172, 16, 0, 6], "admin", PASSWORD, None);
    assert_eq!(r.status, 429);
    // A forged device cookie is just another untrusted client.
    let r = attempt(&f.app, [10, 9, 0, 4], "admin", PASSWORD, Some("forged"));
    assert_eq!(r.status, 429);
    // The attack ends with the window; everything is normal again.
    f.clock.advance(61_000);
    let r = attempt(&f.app, [10, 9, 0, 3], "admin", PASSWORD, None);
    assert_eq!((r.status, r.hold_ms), (303, 0));
}

#[test]
fn a_password_change_forgets_trusted_devices() {
    let f = fixture(None);
    let r = attempt(&f.app, [192, 168, 1, 10], "admin", PASSWORD, None);
    let device = cookie_value(&r, DEVICE_COOKIE).unwrap();
    f.app.logout_all();
    for _ in 0..5 {
        attempt(
            &f.app,
            [192, 168, 1, 10],
            "admin",
            "guess guess guess",
            None,
        );
    }
    // No longer trusted: the address's own budget applies.
    let r = attempt(&f.app, [192, 168, 1, 10], "admin", PASSWORD, Some(&device));
    assert_eq!(r.status, 429);
}

#[test]
fn wrong_user_names_take_as_long_as_wrong_passwords() {
    let f = fixture(None);
    let time = |user: &str, peer: u8| {
        let started = Instant::now();
        let r = attempt(&f.app, [10, 1, 0, peer], user, "not the password", None);
        assert_eq!(r.status, 401);
        started.elapsed()
    };
    let mut admin: Vec<_> = (0..3).map(|i| time("admin", i)).collect();
    let mut other: Vec<_> = (0..3).map(|i| time("nobody", 10 + i)).collect();
    admin.sort();
    other.sort();
    // Both verify a password hash (~20 ms); before, an unknown name answered in ~1.7 ms.
    assert!(
        other[1] * 3 > admin[1],
        "admin {:?}, other names {:?}",
        admin,
        other
    );
}

#[test]
fn wrong_api_tokens_are_throttled_per_address() {
    let f = fixture(Some("tok-123"));
    let call = |token: &str, peer: [u8; 4]| {
        let mut r = req(Method::Get, "/api/overview", "", "");
        r.headers
            .push(("authorization".into(), format!("Bearer {token}")));
        r.peer = IpAddr::from(peer);
        f.app.respond(&r)
    };
    for _ in 0..10 {
        assert_eq!(call("tok-guess", [10, 0, 0, 7]).status, 401);
    }
    let r = call("tok-123", [10, 0, 0, 7]);
    assert_eq!(r.status, 429, "{}", body(&r));
    assert!(r.header("retry-after").is_some());
    assert_eq!(call("tok-123", [10, 0, 0, 8]).status, 200);
    f.clock.advance(61_000);
    assert_eq!(call("tok-123", [10, 0, 0, 7]).status, 200);
}

#[test]
fn the_password_form_is_throttled() {
    let f = fixture(None);
    let (cookie, csrf) = login(&f.app);
    let change = |current: &str| {
        let form = format!(
            "csrf={csrf}&current={}&new=another+long+password&again=another+long+password",
            url_encode(current)
        );
        f.app
            .respond(&req(Method::Post, "/account/password", &cookie, &form))
    };
    for _ in 0..5 {
        assert_eq!(change("wrong current password").status, 403);
    }
    let r = change(PASSWORD);
    assert_eq!(r.status, 429, "{}", body(&r));
    assert!(body(&r).contains("Too many wrong current passwords"));
}

#[test]
fn long_queries_are_refused_and_a_gone_client_stops_the_search() {
    let f = fixture(Some("tok-123"));
    let (cookie, _) = login(&f.app);
    let long = "a".repeat(MAX_QUERY + 1);
    let r = f.app.respond(&req(
        Method::Get,
        &format!("/objects?q={long}"),
        &cookie,
        "",
    ));
    assert_eq!(r.status, 400);
    assert!(
        body(&r).contains("longer than 256 characters"),
        "{}",
        body(&r)
    );
    let mut api = req(Method::Get, &format!("/api/objects?q={long}"), "", "");
    api.headers
        .push(("authorization".into(), "Bearer tok-123".into()));
    assert_eq!(f.app.respond(&api).status, 400);
    // At the limit it is answered.
    let ok = "a".repeat(MAX_QUERY);
    let r = f
        .app
        .respond(&req(Method::Get, &format!("/objects?q={ok}"), &cookie, ""));
    assert_eq!(r.status, 200);
    // The search itself gives up with what it has once its client has gone.
    let tx = f.app.read().unwrap();
    let all = objects::search(&tx, "testperson", 50, &|| true).unwrap();
    assert_eq!(all.mv.len(), 1);
    let gone = objects::search(&tx, "=", 50, &|| false).unwrap();
    assert!(gone.cs.is_empty());
}

#[test]
fn a_login_flood_is_logged_in_a_few_lines() {
    let f = fixture(None);
    let lines = capture(|| {
        for _ in 0..300 {
            attempt(&f.app, [127, 0, 0, 2], "admin", "guess guess guess", None);
        }
        f.clock.advance(61_000);
        f.app.flush_log();
    });
    assert!(lines.len() <= 8, "{lines:#?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("295 throttled logins from 127.0.0.2 in the last minute")),
        "{lines:#?}"
    );
}

/// The lines logged while `f` runs on this thread.
fn capture(f: impl FnOnce()) -> Vec<String> {
    use std::sync::{Arc, Mutex};
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let sink = Sink::default();
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8_lossy(&sink.0.lock().unwrap()).into_owned();
    text.lines().map(str::to_string).collect()
}
