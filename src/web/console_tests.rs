//! The operator's console on the status page: the pending-exports review (the page, its
//! downloads, the answers for a connector without one) and the object page's sync-now
//! button.

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

#[test]
fn an_object_page_offers_to_sync_it_now_with_a_dry_run() {
    let f = fixture(None);
    let (cookie, csrf) = login(&f.app);
    let r = f
        .app
        .respond(&req(Method::Get, "/objects/cs/1", &cookie, ""));
    assert_eq!(r.status, 200, "{}", body(&r));
    let html = body(&r);
    assert_eq!(
        html.matches("action=\"/actions/sync-object\"").count(),
        2,
        "{html}"
    );
    assert!(
        html.contains("name=\"connector\" value=\"contoso\""),
        "{html}"
    );
    assert!(html.contains("name=\"dry_run\" value=\"1\""), "{html}");
    assert!(
        html.contains(&format!("name=\"csrf\" value=\"{csrf}\"")),
        "{html}"
    );
    // Without the session's CSRF token the action is refused before reaching the runner.
    let r = f.app.respond(&req(
        Method::Post,
        "/actions/sync-object",
        &cookie,
        "connector=contoso&dn=CN%3Dx",
    ));
    assert_eq!(r.status, 403, "{}", body(&r));
}

#[test]
fn the_overview_shows_what_the_safety_gates_hold_with_a_way_to_review_and_approve() {
    use crate::model::{ConnectorName, CsId};
    use crate::store::HeldImport;
    let f = fixture(None);
    let (cookie, _) = login(&f.app);
    let conn = ConnectorName::new("contoso").unwrap();
    let tx = f._writer.write().unwrap();
    tx.set_blocked_deletes(&conn, &[CsId(1)]).unwrap();
    tx.set_held_import(
        &conn,
        Some(HeldImport {
            held: 700,
            found: 0,
            approved: false,
        }),
    )
    .unwrap();
    tx.commit().unwrap();
    let html = body(&f.app.respond(&req(Method::Get, "/", &cookie, "")));
    assert!(html.contains("Held by the safety gates"), "{html}");
    assert!(html.contains("stopped: found 0 of 700 objects"), "{html}");
    assert!(
        html.contains("href=\"/connectors/contoso/pending\""),
        "{html}"
    );
    assert!(html.contains("action=\"/actions/approve\""), "{html}");
    // The review page says the same, first.
    let page = body(&f.app.respond(&req(
        Method::Get,
        "/connectors/contoso/pending",
        &cookie,
        "",
    )));
    assert!(
        page.contains("The deletion threshold holds 1 deletes and with them this whole export run"),
        "{page}"
    );
    assert!(page.contains("found 0 of 700 objects"), "{page}");
}
