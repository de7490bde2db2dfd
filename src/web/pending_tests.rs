//! The pending-exports review on the status page: the page, its downloads and the answers
//! for a connector without one.

#![allow(clippy::unwrap_used)]

use super::tests::{body, fixture, login, req};
use crate::web::http::Method;

#[test]
fn the_review_page_lists_pending_exports_and_refuses_what_does_not_apply() {
    let f = fixture(None);
    let (cookie, _) = login(&f.app);
    let r = f.app.respond(&req(
        Method::Get,
        "/connectors/contoso/pending",
        &cookie,
        "",
    ));
    assert_eq!(r.status, 200, "{}", body(&r));
    let html = body(&r);
    assert!(html.contains("0 pending exports"), "{html}");
    // An LDIF source has no LDIF change records to download: no link, and a clear 400.
    assert!(!html.contains("id=\"ldif\""), "{html}");
    let r = f.app.respond(&req(
        Method::Get,
        "/connectors/contoso/pending?format=ldif",
        &cookie,
        "",
    ));
    assert_eq!(r.status, 400);
    assert!(body(&r).contains("ldif connector"), "{}", body(&r));
    // The JSON download is the same list, as an attachment.
    let r = f.app.respond(&req(
        Method::Get,
        "/connectors/contoso/pending?format=json",
        &cookie,
        "",
    ));
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-disposition")
            .is_some_and(|d| d.contains("contoso-pending.json")),
        "{:?}",
        r.headers
    );
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["connector"], "contoso");
    assert_eq!(v["exports"].as_array().map(Vec::len), Some(0));
    let r = f
        .app
        .respond(&req(Method::Get, "/connectors/nope/pending", &cookie, ""));
    assert_eq!(r.status, 404);
    // Like every page, it needs a login.
    let r = f
        .app
        .respond(&req(Method::Get, "/connectors/contoso/pending", "", ""));
    assert_eq!(r.status, 303);
}
