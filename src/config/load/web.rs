//! Checks the `[web]` table: the status page's address, certificate, API token and session
//! timeout.

use std::net::SocketAddr;

use super::*;
use crate::config::{TlsFiles, WebConfig};

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [web] table")]
pub(super) struct RawWeb {
    pub(super) enabled: Option<Spanned<bool>>,
    pub(super) listen: Option<Spanned<String>>,
    pub(super) certificate_file: Option<Spanned<String>>,
    pub(super) key_file: Option<Spanned<String>>,
    pub(super) api_token_file: Option<Spanned<String>>,
    pub(super) api_token_env: Option<Spanned<String>>,
    pub(super) session_timeout: Option<Spanned<String>>,
}

/// The `[web]` table as a [`WebConfig`]; None only after reporting why.
pub(super) fn check_web(ctx: &mut Ctx<'_>, raw: Option<&Spanned<RawWeb>>) -> Option<WebConfig> {
    let mut web = WebConfig::default();
    let Some(table) = raw else {
        return Some(web);
    };
    let span = table.span();
    let raw = table.get_ref();
    let mut ok = true;
    if let Some(v) = &raw.enabled {
        web.enabled = *v.get_ref();
    }
    if let Some(v) = &raw.listen {
        match v.get_ref().parse::<SocketAddr>() {
            Ok(addr) => web.listen = addr,
            Err(_) => {
                ctx.report(
                    v.span().start,
                    "web.listen",
                    format!(
                        "expected an address and port like \"127.0.0.1:8443\" or \"[::1]:8443\" \
                         (port 0 picks a free one), found {:?}",
                        v.get_ref()
                    ),
                );
                ok = false;
            }
        }
    }
    match (&raw.certificate_file, &raw.key_file) {
        (None, None) => {}
        (Some(cert), Some(key)) => {
            let cert = ctx.path_value(cert, "web.certificate_file");
            let key = ctx.path_value(key, "web.key_file");
            match (cert, key) {
                (Some(certificate), Some(key)) => web.tls = Some(TlsFiles { certificate, key }),
                _ => ok = false,
            }
        }
        (Some(v), None) | (None, Some(v)) => {
            ctx.report(
                v.span().start,
                if raw.key_file.is_none() {
                    "web.certificate_file"
                } else {
                    "web.key_file"
                },
                "give both certificate_file and key_file (PEM), or neither to use a generated \
                 self-signed certificate",
            );
            ok = false;
        }
    }
    match resolve_secret(
        raw.api_token_file.as_ref(),
        raw.api_token_env.as_ref(),
        "web.api_token",
        ctx,
    ) {
        Ok(token) => web.api_token = token,
        Err(e) => {
            let at = raw
                .api_token_file
                .as_ref()
                .or(raw.api_token_env.as_ref())
                .map_or(span.start, |v| v.span().start);
            ctx.errors.push((at, e));
            ok = false;
        }
    }
    if let Some(v) = &raw.session_timeout {
        match parse_interval(v.get_ref()) {
            Some(d) if d >= Duration::from_secs(60) => web.session_idle = d,
            _ => {
                ctx.report(
                    v.span().start,
                    "web.session_timeout",
                    format!(
                        "expected a duration of at least 1m like \"30m\" or \"1h\", found {:?}",
                        v.get_ref()
                    ),
                );
                ok = false;
            }
        }
    }
    ok.then_some(web)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn parse(extra: &str) -> Result<Config, ConfigError> {
        let text = format!("state_file = \"s.redb\"\n{extra}");
        Config::parse(&text, Path::new("/etc/bh/bridgehead.toml"))
    }

    #[test]
    fn defaults_without_a_web_table() {
        let c = parse("").unwrap();
        assert!(c.web.enabled);
        assert_eq!(c.web.listen.to_string(), "127.0.0.1:8443");
        assert!(c.web.tls.is_none() && c.web.api_token.is_none());
        assert_eq!(c.web.session_idle, Duration::from_secs(1800));
    }

    #[test]
    fn a_full_web_table() {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "s3cret-token\n").unwrap();
        let c = parse(&format!(
            "[web]\nlisten = \"[::1]:0\"\ncertificate_file = \"c.pem\"\nkey_file = \"k.pem\"\n\
             api_token_file = {:?}\nsession_timeout = \"1h\"\nenabled = false\n",
            token.display().to_string()
        ))
        .unwrap();
        assert!(!c.web.enabled);
        assert_eq!(c.web.listen.to_string(), "[::1]:0");
        let tls = c.web.tls.unwrap();
        assert_eq!(tls.certificate, Path::new("/etc/bh/c.pem"));
        assert_eq!(tls.key, Path::new("/etc/bh/k.pem"));
        assert_eq!(c.web.api_token.unwrap().expose(), "s3cret-token");
        assert_eq!(c.web.session_idle, Duration::from_secs(3600));
    }

    #[test]
    fn bad_values_name_their_line() {
        let e = parse("[web]\nlisten = \"localhost\"\ncertificate_file = \"c.pem\"\nsession_timeout = \"5s\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains(":3:") && e.contains("web.listen"), "{e}");
        assert!(e.contains(":4:") && e.contains("key_file"), "{e}");
        assert!(
            e.contains(":5:") && e.contains("web.session_timeout"),
            "{e}"
        );
        let e = parse("[web]\nport = 1\n").unwrap_err().to_string();
        assert!(e.contains("port"), "{e}");
    }
}
