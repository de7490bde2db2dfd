//! `ad` and `ldap` connector settings: defaults, and each mistake reported at its key.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::config::{DeltaMethod, LdapConfig, TlsVerify};

/// A config with one connector table given as text; the password file is created.
fn config(dir: &Path, connector: &str) -> String {
    std::fs::write(dir.join("pw"), "s3cret\n").unwrap();
    format!("state_file = \"state.redb\"\n\n[[connector]]\n{connector}\n")
}

const AD: &str = r#"name = "corp"
type = "ad"
url = "ldaps://dc1.corp.example.com"
bind_dn = "svc@corp.example.com"
bind_password_file = "pw"
base_dn = "DC=corp,DC=example,DC=com""#;

fn parse(dir: &Path, text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, &dir.join("bridgehead.toml"))
}

fn ldap_of(c: &Config) -> &LdapConfig {
    match &c.connectors[0].kind {
        ConnectorKind::Ldap(l) => l,
        other => panic!("not an ldap connector: {other:?}"),
    }
}

/// (key, message) of every error.
fn errors(dir: &Path, text: &str) -> Vec<(String, String)> {
    fn flatten(e: ConfigError, out: &mut Vec<(String, String)>) {
        match e {
            ConfigError::At { key, message, .. } => out.push((key, message)),
            ConfigError::Many(v) => v.into_iter().for_each(|e| flatten(e, out)),
            ConfigError::Io { .. } => panic!("unexpected io error"),
        }
    }
    let mut out = Vec::new();
    match parse(dir, text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => flatten(e, &mut out),
    }
    out
}

fn has(errors: &[(String, String)], key: &str, contains: &str) {
    assert!(
        errors.iter().any(|(k, m)| k == key && m.contains(contains)),
        "no error at {key} containing {contains:?}: {errors:?}"
    );
}

#[test]
fn ad_connector_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let c = parse(dir.path(), &config(dir.path(), AD)).unwrap();
    let l = ldap_of(&c);
    assert_eq!(l.flavor, LdapFlavor::Ad);
    assert_eq!(l.bind_password.expose(), "s3cret");
    assert_eq!(l.tls_verify, TlsVerify::Full);
    assert_eq!(l.delta, DeltaMethod::Auto);
    assert_eq!(l.page_size, 500);
    assert_eq!(l.range_size, None);
    assert!(
        l.object_classes
            .iter()
            .any(|c| c == "foreignSecurityPrincipal")
    );
    assert!(l.exclude_attributes.iter().any(|a| a.is("uSNChanged")));
    assert_eq!(l.base_dn.as_str(), "DC=corp,DC=example,DC=com");
    // The password never shows in debug output.
    assert!(!format!("{c:?}").contains("s3cret"));
}

#[test]
fn scope_settings_parse() {
    let dir = tempfile::tempdir().unwrap();
    let text = config(
        dir.path(),
        &format!(
            "{AD}\ninclude_ous = [\"OU=Staff,DC=corp,DC=example,DC=com\"]\nexclude_ous = [\"OU=Old,OU=Staff,DC=corp,DC=example,DC=com\"]\nmember_of = \"CN=Pilot,DC=corp,DC=example,DC=com\"\nfilters = {{ user = \"(department=Sales)\" }}\ndelta = \"usn\"\nrange_size = 1000\ntimeout = \"30s\""
        ),
    );
    let c = parse(dir.path(), &text).unwrap();
    let l = ldap_of(&c);
    assert_eq!(l.include_ous.len(), 1);
    assert_eq!(l.exclude_ous.len(), 1);
    assert!(l.member_of.is_some());
    assert_eq!(
        l.filters,
        vec![("user".to_string(), "(department=Sales)".to_string())]
    );
    assert_eq!(l.delta, DeltaMethod::Usn);
    assert_eq!(l.range_size, Some(1000));
    assert_eq!(l.timeout, Duration::from_secs(30));
}

#[test]
fn clear_text_binds_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let plain = AD.replace(
        "ldaps://dc1.corp.example.com",
        "ldap://dc1.corp.example.com",
    );
    let e = errors(dir.path(), &config(dir.path(), &plain));
    has(&e, "connector[0].url", "clear text");
    // StartTLS makes it fine.
    let c = parse(
        dir.path(),
        &config(dir.path(), &format!("{plain}\nstarttls = true")),
    );
    assert!(c.is_ok());
    // danger_plaintext only to loopback.
    let e = errors(
        dir.path(),
        &config(dir.path(), &format!("{plain}\ndanger_plaintext = true")),
    );
    has(&e, "connector[0].danger_plaintext", "loopback");
    let local = plain.replace("dc1.corp.example.com", "127.0.0.1:3389");
    assert!(
        parse(
            dir.path(),
            &config(dir.path(), &format!("{local}\ndanger_plaintext = true"))
        )
        .is_ok()
    );
}

#[test]
fn each_mistake_at_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let text = config(
        dir.path(),
        &format!(
            "{AD}\nmode = \"source\"\ntls_verify = \"chain_only\"\ninclude_ous = [\"OU=Staff,DC=fabrikam,DC=com\"]\nfilters = {{ printer = \"(x=1)\", user = \"department=Sales\" }}\ndelta = \"syncrepl\"\npage_size = 0\nca_file = \".\""
        ),
    );
    let e = errors(dir.path(), &text);
    has(&e, "connector[0].mode", "not a setting of an ad connector");
    has(&e, "connector[0].include_ous[0]", "not inside base_dn");
    has(
        &e,
        "connector[0].filters.printer",
        "not one of this connector's object_classes",
    );
    has(&e, "connector[0].filters.user", "in parentheses");
    has(&e, "connector[0].delta", "\"dirsync\"");
    has(&e, "connector[0].page_size", "from 1 to 100000");
    has(&e, "connector[0].ca_file", "is not a file");
}

#[test]
fn a_ca_file_not_there_yet_is_left_to_the_connector() {
    let dir = tempfile::tempdir().unwrap();
    let text = config(dir.path(), &format!("{AD}\nca_file = \"later/ca.pem\""));
    let c = parse(dir.path(), &text).unwrap();
    assert_eq!(
        ldap_of(&c).ca_file.as_deref(),
        Some(dir.path().join("later/ca.pem").as_path())
    );
}

#[test]
fn chain_only_needs_a_ca_and_the_password_is_required() {
    let dir = tempfile::tempdir().unwrap();
    let no_pw = AD.replace("bind_password_file = \"pw\"\n", "");
    let e = errors(
        dir.path(),
        &config(dir.path(), &format!("{no_pw}\ntls_verify = \"chain_only\"")),
    );
    has(&e, "connector[0].tls_verify", "needs ca_file");
    has(&e, "connector[0].bind_password_file", "bind_password_env");
}

#[test]
fn ldif_rejects_ldap_keys() {
    let dir = tempfile::tempdir().unwrap();
    let text = config(
        dir.path(),
        "name = \"f\"\ntype = \"ldif\"\nmode = \"source\"\npath = \"x.ldif\"\nanchor = \"objectGUID\"\nurl = \"ldaps://x\"",
    );
    has(
        &errors(dir.path(), &text),
        "connector[0].url",
        "not a setting of an ldif connector",
    );
}

#[test]
fn watch_is_off_by_default_with_a_one_second_window() {
    let dir = tempfile::tempdir().unwrap();
    let c = parse(dir.path(), &config(dir.path(), AD)).unwrap();
    let l = ldap_of(&c);
    assert!(!l.watch);
    assert_eq!(l.watch_window, Duration::from_secs(1));
}

#[test]
fn watch_window_takes_milliseconds_and_intervals() {
    let dir = tempfile::tempdir().unwrap();
    for (text, want) in [
        ("250ms", Duration::from_millis(250)),
        ("0s", Duration::ZERO),
        ("2s", Duration::from_secs(2)),
        ("1m30s", Duration::from_secs(90)),
    ] {
        let c = parse(
            dir.path(),
            &config(
                dir.path(),
                &format!("{AD}\nwatch = true\nwatch_window = \"{text}\""),
            ),
        )
        .unwrap();
        let l = ldap_of(&c);
        assert!(l.watch);
        assert_eq!(l.watch_window, want, "{text}");
    }
}

#[test]
fn watch_window_mistakes_are_reported_at_the_key() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["ms", "1.5s", "fast", "10m", "-1s"] {
        let e = errors(
            dir.path(),
            &config(dir.path(), &format!("{AD}\nwatch_window = \"{bad}\"")),
        );
        has(&e, "connector[0].watch_window", "from \"0s\" to \"5m\"");
    }
    // Only ad and ldap connectors watch a directory.
    let text = config(
        dir.path(),
        "name = \"f\"\ntype = \"ldif\"\nmode = \"source\"\npath = \"x.ldif\"\nanchor = \"objectGUID\"\nwatch = true",
    );
    has(
        &errors(dir.path(), &text),
        "connector[0].watch",
        "not a setting of an ldif connector",
    );
}

#[test]
fn in_flight_defaults_to_8_and_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let c = parse(dir.path(), &config(dir.path(), AD)).unwrap();
    assert_eq!(ldap_of(&c).in_flight, 8);
    let one = format!("{AD}\nin_flight = 1");
    let c = parse(dir.path(), &config(dir.path(), &one)).unwrap();
    assert_eq!(ldap_of(&c).in_flight, 1);
    for bad in ["0", "65"] {
        let text = format!("{AD}\nin_flight = {bad}");
        has(
            &errors(dir.path(), &config(dir.path(), &text)),
            "connector[0].in_flight",
            "from 1 to 64",
        );
    }
}
