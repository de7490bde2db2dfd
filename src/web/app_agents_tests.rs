//! The Agents page without sockets: it lists the register, and revocation is an action
//! like the others (a session's CSRF token or the API token; a forged form is refused).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::tests::{body, fixture, login, req};
use super::*;
use crate::agent::registry::{AgentRecord, Registry};
use crate::model::FixedClock;

fn register(dir: &std::path::Path) -> Registry {
    let r = Registry::open(dir, Arc::new(FixedClock::at(1_800_000_000_000)), 10_000).unwrap();
    r.add(AgentRecord {
        id: "agent-0a1b".into(),
        group: "fab".into(),
        fingerprint: "FP".into(),
        host: "dc-east".into(),
        enrolled_ms: 1_800_000_000_000,
        revoked: None,
    })
    .unwrap();
    r.connected("agent-0a1b", "0.1.0", "169.254.7.2:40000");
    r
}

#[test]
fn agents_are_listed_and_revoked_with_the_csrf_token() {
    let dir = tempfile::tempdir().unwrap();
    let mut f = fixture(Some("script-token-0123456789"));
    let reg = register(dir.path());
    f.app.agents = Some(reg.clone());
    let (cookie, csrf) = login(&f.app);
    let page = f.app.respond(&req(Method::Get, "/agents", &cookie, ""));
    assert_eq!(page.status, 200);
    let html = body(&page);
    for text in [
        "agent-0a1b",
        "fab",
        "dc-east",
        "connected",
        "169.254.7.2:40000",
        "0.1.0",
    ] {
        assert!(html.contains(text), "{text} in {html}");
    }
    // A form without the session's token, or from another origin, changes nothing.
    let forged = f.app.respond(&req(
        Method::Post,
        "/actions/revoke-agent",
        &cookie,
        "agent=agent-0a1b&csrf=forged",
    ));
    assert_eq!(forged.status, 403);
    let mut cross = req(
        Method::Post,
        "/actions/revoke-agent",
        &cookie,
        &format!("agent=agent-0a1b&csrf={csrf}"),
    );
    cross
        .headers
        .push(("origin".into(), "https://evil.example".into()));
    assert_eq!(f.app.respond(&cross).status, 403);
    assert!(reg.trusted("FP").is_some());
    let done = f.app.respond(&req(
        Method::Post,
        "/actions/revoke-agent",
        &cookie,
        &format!("agent=agent-0a1b&csrf={csrf}"),
    ));
    assert_eq!(done.status, 200, "{}", body(&done));
    assert!(reg.trusted("FP").is_none());
    // The API lists it as revoked; revoking again is a conflict.
    let mut api = req(Method::Get, "/api/agents", "", "");
    api.headers.push((
        "authorization".into(),
        "Bearer script-token-0123456789".into(),
    ));
    let list: serde_json::Value = serde_json::from_slice(&f.app.respond(&api).body).unwrap();
    assert_eq!(list[0]["state"], "revoked");
    let mut again = req(
        Method::Post,
        "/api/actions/revoke-agent",
        "",
        "agent=agent-0a1b",
    );
    again.headers.push((
        "authorization".into(),
        "Bearer script-token-0123456789".into(),
    ));
    assert_eq!(f.app.respond(&again).status, 409);
}

#[test]
fn without_an_agents_table_the_page_says_so() {
    let f = fixture(None);
    let (cookie, csrf) = login(&f.app);
    let page = f.app.respond(&req(Method::Get, "/agents", &cookie, ""));
    assert!(body(&page).contains("no agent can connect"));
    let r = f.app.respond(&req(
        Method::Post,
        "/actions/revoke-agent",
        &cookie,
        &format!("agent=x&csrf={csrf}"),
    ));
    assert_eq!(r.status, 409);
}
