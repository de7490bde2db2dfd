//! Checks the settings of `graph` connectors (Microsoft Entra ID through Microsoft Graph).

use super::scim::bounded;
use super::*;
use crate::config::{GraphConfig, HttpUrl};

/// An https URL setting, or its default when absent.
fn https_url(
    ctx: &mut Ctx<'_>,
    v: Option<&Spanned<String>>,
    key: &str,
    default: &str,
) -> Option<HttpUrl> {
    let (text, at) = match v {
        Some(v) => (v.get_ref().as_str(), v.span().start),
        None => (default, 0),
    };
    match HttpUrl::parse(text) {
        Ok(u) if u.tls => Some(u),
        Ok(_) => {
            ctx.report(
                at,
                key,
                "an http:// URL sends the client secret and everyone's data in clear text; use https://",
            );
            None
        }
        Err(m) => {
            ctx.report(at, key, format!("{m}, found {text:?}"));
            None
        }
    }
}

pub(super) fn check_graph(
    ctx: &mut Ctx<'_>,
    c: &RawConnector,
    span: &Range<usize>,
    p: &str,
) -> Option<GraphConfig> {
    let key = |field: &str| format!("{p}.{field}");
    let id = |ctx: &mut Ctx<'_>, v: &Option<Spanned<String>>, field: &str, what: &str| {
        ctx.required(v, span, &key(field), what).and_then(|v| {
            let t = v.get_ref().trim();
            if !t.is_empty()
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-.".contains(c))
            {
                Some(t.to_string())
            } else {
                ctx.report(
                    v.span().start,
                    &key(field),
                    format!("expected {what}, found {:?}", v.get_ref()),
                );
                None
            }
        })
    };
    let tenant_id = id(
        ctx,
        &c.tenant_id,
        "tenant_id",
        "the directory (tenant) id, a GUID, or a verified domain like \"contoso.onmicrosoft.com\"",
    );
    let client_id = id(
        ctx,
        &c.client_id,
        "client_id",
        "the application (client) id of the app registration, a GUID",
    );
    let client_secret = match resolve_secret(
        c.client_secret_file.as_ref(),
        c.client_secret_env.as_ref(),
        &key("client_secret"),
        ctx,
    ) {
        Ok(Some(s)) => Some(s),
        Ok(None) => {
            ctx.report(
                span.start,
                &key("client_secret_file"),
                "missing required key; expected client_secret_file or client_secret_env, the \
                 app registration's client secret",
            );
            None
        }
        Err(e) => {
            let at = c
                .client_secret_file
                .as_ref()
                .or(c.client_secret_env.as_ref())
                .map_or(span.start, |v| v.span().start);
            ctx.push_at(at, e);
            None
        }
    };
    let authority = https_url(
        ctx,
        c.authority.as_ref(),
        &key("authority"),
        "https://login.microsoftonline.com",
    );
    let graph_url = https_url(
        ctx,
        c.graph_url.as_ref(),
        &key("graph_url"),
        "https://graph.microsoft.com/v1.0",
    );
    let (tls_verify, ca_file) = super::ldap::tls_settings(ctx, c, p);
    let in_flight = bounded(
        ctx,
        c.in_flight.as_ref(),
        &key("in_flight"),
        1..=16,
        4,
        "a number of batches",
    );
    let max_retries = bounded(
        ctx,
        c.max_retries.as_ref(),
        &key("max_retries"),
        0..=20,
        8,
        "a number of retries",
    );
    let write_budget = bounded(
        ctx,
        c.write_budget.as_ref(),
        &key("write_budget"),
        1..=100_000,
        3000,
        "a number of writes per 150 seconds",
    );
    let page_size = bounded(
        ctx,
        c.page_size.as_ref(),
        &key("page_size"),
        1..=999,
        999,
        "a page size (Graph allows up to 999)",
    );
    let timeout = super::ldap::timeout_setting(ctx, c, p, Duration::from_secs(60));
    Some(GraphConfig {
        tenant_id: tenant_id?,
        client_id: client_id?,
        client_secret: client_secret?,
        authority: authority?,
        graph_url: graph_url?,
        tls_verify: tls_verify?,
        ca_file: ca_file?,
        timeout: timeout?,
        max_retries: u32::try_from(max_retries?).ok()?,
        in_flight: usize::try_from(in_flight?).ok()?,
        write_budget: u32::try_from(write_budget?).ok()?,
        page_size: u32::try_from(page_size?).ok()?,
    })
}
