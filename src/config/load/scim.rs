//! Checks the settings of `scim` connectors.

use super::*;
use crate::config::{HttpUrl, ScimConfig};

/// A whole number within `range`, or the default when the key is absent.
pub(super) fn bounded(
    ctx: &mut Ctx<'_>,
    v: Option<&Spanned<i64>>,
    key: &str,
    range: std::ops::RangeInclusive<i64>,
    default: i64,
    what: &str,
) -> Option<i64> {
    match v {
        None => Some(default),
        Some(v) if range.contains(v.get_ref()) => Some(*v.get_ref()),
        Some(v) => {
            ctx.report(
                v.span().start,
                key,
                format!(
                    "expected {what} from {} to {}, found {}",
                    range.start(),
                    range.end(),
                    v.get_ref()
                ),
            );
            None
        }
    }
}

pub(super) fn check_scim(
    ctx: &mut Ctx<'_>,
    c: &RawConnector,
    span: &Range<usize>,
    p: &str,
) -> Option<ScimConfig> {
    let key = |field: &str| format!("{p}.{field}");
    let danger_plaintext = c.danger_plaintext.as_ref().is_some_and(|v| *v.get_ref());
    let url = ctx
        .required(
            &c.url,
            span,
            &key("url"),
            "the service's base URL, like \"https://scim.example.com/v2\"",
        )
        .and_then(|v| match HttpUrl::parse(v.get_ref()) {
            Err(m) => {
                ctx.report(
                    v.span().start,
                    &key("url"),
                    format!("{m}, found {:?}", v.get_ref()),
                );
                None
            }
            Ok(u) if !u.tls && !danger_plaintext => {
                ctx.report(
                    v.span().start,
                    &key("url"),
                    "an http:// URL sends the bearer token and everyone's data in clear text; \
                     use https://",
                );
                None
            }
            Ok(u) if !u.tls && !u.is_loopback() => {
                ctx.report(
                    v.span().start,
                    &key("danger_plaintext"),
                    format!(
                        "plain http:// is allowed only to a loopback address, not to {:?}",
                        u.host
                    ),
                );
                None
            }
            Ok(u) => Some(u),
        });
    let bearer_token = match resolve_secret(
        c.bearer_token_file.as_ref(),
        c.bearer_token_env.as_ref(),
        &key("bearer_token"),
        ctx,
    ) {
        Ok(t) => Some(t),
        Err(e) => {
            let at = c
                .bearer_token_file
                .as_ref()
                .or(c.bearer_token_env.as_ref())
                .map_or(span.start, |v| v.span().start);
            ctx.push_at(at, e);
            None
        }
    };
    let (tls_verify, ca_file) = super::ldap::tls_settings(ctx, c, p);
    let in_flight = bounded(
        ctx,
        c.in_flight.as_ref(),
        &key("in_flight"),
        1..=64,
        4,
        "a number of requests",
    );
    let page_size = bounded(
        ctx,
        c.page_size.as_ref(),
        &key("page_size"),
        1..=10_000,
        500,
        "a page size",
    );
    let max_retries = bounded(
        ctx,
        c.max_retries.as_ref(),
        &key("max_retries"),
        0..=20,
        5,
        "a number of retries",
    );
    let member_chunk = bounded(
        ctx,
        c.member_chunk.as_ref(),
        &key("member_chunk"),
        1..=10_000,
        100,
        "a number of members",
    );
    let bulk_size = bounded(
        ctx,
        c.bulk_size.as_ref(),
        &key("bulk_size"),
        0..=10_000,
        1000,
        "a number of operations",
    );
    let timeout = super::ldap::timeout_setting(ctx, c, p, Duration::from_secs(30));
    let full_import_every = match &c.full_import_every {
        None => Some(None),
        Some(v) => match super::parse_interval(v.get_ref()) {
            Some(d) if d >= Duration::from_secs(1) => Some(Some(d)),
            _ => {
                ctx.report(
                    v.span().start,
                    &key("full_import_every"),
                    format!(
                        "expected a duration like \"1h\" or \"30m\", found {:?}",
                        v.get_ref()
                    ),
                );
                None
            }
        },
    };
    let extension_urn = match &c.extension_urn {
        None => Some(None),
        Some(v) => {
            let urn = v.get_ref();
            if urn.starts_with("urn:") && !urn.ends_with(':') && !urn.contains(char::is_whitespace)
            {
                Some(Some(urn.clone()))
            } else {
                ctx.report(
                    v.span().start,
                    &key("extension_urn"),
                    format!(
                        "expected a schema URN like \
                         \"urn:ietf:params:scim:schemas:extension:contoso:2.0:User\", found {urn:?}"
                    ),
                );
                None
            }
        }
    };
    Some(ScimConfig {
        url: url?,
        bearer_token: bearer_token?,
        tls_verify: tls_verify?,
        ca_file: ca_file?,
        in_flight: usize::try_from(in_flight?).ok()?,
        page_size: u32::try_from(page_size?).ok()?,
        timeout: timeout?,
        max_retries: u32::try_from(max_retries?).ok()?,
        member_chunk: usize::try_from(member_chunk?).ok()?,
        bulk_size: usize::try_from(bulk_size?).ok()?,
        extension_urn: extension_urn?,
        full_import_every: full_import_every?,
    })
}
