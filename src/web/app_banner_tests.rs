//! The danger banner: every page of a status page whose config has `danger_*` TLS settings
//! names each one, with its connector; a config without them shows none.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::tests::{body, fixture, fixture_with, login, req};
use super::*;

const PAGES: [&str; 7] = [
    "/",
    "/connectors",
    "/runs",
    "/objects",
    "/config",
    "/host",
    "/account",
];

#[test]
fn danger_settings_put_a_banner_on_every_page() {
    let f = fixture_with(None, |dir| {
        std::fs::write(dir.join("pw"), "s3cret\n").unwrap();
        std::fs::write(dir.join("scim.token"), "t0ken\n").unwrap();
        r#"
[[connector]]
name = "lab-ldap"
type = "ldap"
url = "ldap://127.0.0.1:3389"
danger_plaintext = true
bind_dn = "cn=admin,dc=example,dc=com"
bind_password_file = "pw"
base_dn = "dc=example,dc=com"

[[connector]]
name = "cloud"
type = "scim"
url = "https://127.0.0.1:9443/v2"
tls_verify = "danger_accept_invalid_certs"
bearer_token_file = "scim.token"
"#
        .to_string()
    });
    let (cookie, _) = login(&f.app);
    for page in PAGES {
        let r = f.app.respond(&req(Method::Get, page, &cookie, ""));
        assert_eq!(r.status, 200, "{page}");
        let html = body(&r);
        assert_eq!(
            html.matches(r#"class="banner danger""#).count(),
            2,
            "{page}: one banner per setting\n{html}"
        );
        assert!(
            html.contains("connector lab-ldap: danger_plaintext"),
            "{page}:\n{html}"
        );
        assert!(
            html.contains("connector cloud: tls_verify = danger_accept_invalid_certs"),
            "{page}"
        );
    }
}

#[test]
fn no_danger_settings_no_banner() {
    let f = fixture(None);
    let (cookie, _) = login(&f.app);
    for page in PAGES {
        let html = body(&f.app.respond(&req(Method::Get, page, &cookie, "")));
        assert!(!html.contains("banner danger"), "{page}");
    }
}
