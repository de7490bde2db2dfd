//! Checks the settings of `ad` and `ldap` connectors.

use super::*;
use crate::config::{
    AD_EXCLUDED_ATTRIBUTES, AD_OBJECT_CLASSES, DeltaMethod, LDAP_EXCLUDED_ATTRIBUTES,
    LDAP_OBJECT_CLASSES, LdapConfig, TlsVerify,
};

/// A list of DNs; every bad one is reported.
pub(super) fn dn_list(
    ctx: &mut Ctx<'_>,
    list: Option<&Vec<Spanned<String>>>,
    key: &str,
) -> Option<Vec<Dn>> {
    let dns: Vec<Option<Dn>> = list
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(j, v)| dn_value(ctx, v, &format!("{key}[{j}]")))
        .collect();
    dns.into_iter().collect()
}

fn dn_value(ctx: &mut Ctx<'_>, v: &Spanned<String>, key: &str) -> Option<Dn> {
    match Dn::parse(v.get_ref()) {
        Ok(dn) if !dn.is_root() => Some(dn),
        Ok(_) => {
            ctx.report(
                v.span().start,
                key,
                "expected a DN like \"DC=corp,DC=example,DC=test\", found an empty string",
            );
            None
        }
        Err(e) => {
            ctx.report(
                v.span().start,
                key,
                format!(
                    "expected a DN like \"DC=corp,DC=example,DC=test\", found {:?} ({} at byte {})",
                    v.get_ref(),
                    e.reason,
                    e.at
                ),
            );
            None
        }
    }
}

/// An LDAP filter's outline: one parenthesised expression with balanced parentheses. The
/// server judges the rest when `check` connects.
fn filter_value(ctx: &mut Ctx<'_>, v: &Spanned<String>, key: &str) -> Option<String> {
    let f = v.get_ref().trim();
    let mut depth = 0i32;
    let mut closed_at_end = false;
    for (i, ch) in f.char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 {
                    break;
                }
                if depth == 0 {
                    closed_at_end = i + 1 == f.len();
                    if !closed_at_end {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    if !f.starts_with('(') || depth != 0 || !closed_at_end {
        ctx.report(
            v.span().start,
            key,
            format!(
                "expected one LDAP filter in parentheses like \"(department=Sales)\", found {:?}",
                v.get_ref()
            ),
        );
        return None;
    }
    Some(f.to_string())
}

fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost")
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Whether an `ldap://` or `ldaps://` URL starts TLS at once, and its host; or why it is not
/// such a URL.
fn url_host(url: &str) -> Result<(bool, String), String> {
    crate::config::ldap_endpoint(url).map(|(host, _, tls)| (tls, host))
}

pub(super) fn check_ldap(
    ctx: &mut Ctx<'_>,
    c: &RawConnector,
    span: &Range<usize>,
    p: &str,
    flavor: LdapFlavor,
) -> Option<LdapConfig> {
    let key = |field: &str| format!("{p}.{field}");
    let starttls = c.starttls.as_ref().is_some_and(|v| *v.get_ref());
    let danger_plaintext = c.danger_plaintext.as_ref().is_some_and(|v| *v.get_ref());
    let url = ctx
        .required(
            &c.url,
            span,
            &key("url"),
            "a URL like \"ldaps://dc1.corp.example.test\"",
        )
        .and_then(|v| match url_host(v.get_ref()) {
            Err(m) => {
                ctx.report(
                    v.span().start,
                    &key("url"),
                    format!("{m}, found {:?}", v.get_ref()),
                );
                None
            }
            Ok((true, _)) if starttls => {
                ctx.report(
                    v.span().start,
                    &key("starttls"),
                    "starttls upgrades an ldap:// connection; an ldaps:// URL is already TLS",
                );
                None
            }
            Ok((false, host)) if !starttls => {
                if !danger_plaintext {
                    ctx.report(
                        v.span().start,
                        &key("url"),
                        "an ldap:// URL sends the bind password in clear text; use ldaps://, \
                         or starttls = true",
                    );
                    None
                } else if !is_loopback(&host) {
                    ctx.report(
                        v.span().start,
                        &key("danger_plaintext"),
                        format!(
                            "plain ldap:// is allowed only to a loopback address, not to {host:?}"
                        ),
                    );
                    None
                } else {
                    Some(v.get_ref().clone())
                }
            }
            Ok(_) => Some(v.get_ref().clone()),
        });
    let bind_dn = ctx
        .required(
            &c.bind_dn,
            span,
            &key("bind_dn"),
            "the bind identity, like \"CN=sync,OU=Service,DC=corp,DC=example,DC=test\"",
        )
        .and_then(|v| ctx.non_empty(v, &key("bind_dn"), "a DN or user@domain"));
    // A password the agent reads on its own host: the appliance holds none.
    let agent_password_file = match (&c.agent_bind_password_file, &c.agent_group) {
        (None, _) => Some(None),
        (Some(v), None) => {
            ctx.report(
                v.span().start,
                &key("agent_bind_password_file"),
                "only for a connector with agent_group (a file on the agents' hosts)",
            );
            None
        }
        (Some(v), Some(_)) if c.bind_password_file.is_some() || c.bind_password_env.is_some() => {
            ctx.report(
                v.span().start,
                &key("agent_bind_password_file"),
                "give either agent_bind_password_file (read by the agent) or \
                 bind_password_file/bind_password_env (read here and sent to the agent), not both",
            );
            None
        }
        (Some(v), Some(_)) if !v.get_ref().starts_with('/') => {
            ctx.report(
                v.span().start,
                &key("agent_bind_password_file"),
                format!(
                    "expected an absolute path on the agents' hosts, found {:?}",
                    v.get_ref()
                ),
            );
            None
        }
        (Some(v), Some(_)) => Some(Some(PathBuf::from(v.get_ref()))),
    };
    let bind_password = match resolve_secret(
        c.bind_password_file.as_ref(),
        c.bind_password_env.as_ref(),
        &key("bind_password"),
        ctx,
    ) {
        Ok(Some(s)) => Some(s),
        Ok(None) if c.agent_bind_password_file.is_some() => Some(Secret::default()),
        Ok(None) => {
            ctx.report(
                span.start,
                &key("bind_password_file"),
                "missing required key; give bind_password_file or bind_password_env",
            );
            None
        }
        Err(e) => {
            let at = c
                .bind_password_file
                .as_ref()
                .or(c.bind_password_env.as_ref())
                .map_or(span.start, |v| v.span().start);
            ctx.push_at(at, e);
            None
        }
    };
    let (tls_verify, ca_file) = tls_settings(ctx, c, p);
    let base_dn = ctx
        .required(
            &c.base_dn,
            span,
            &key("base_dn"),
            "the naming context, like \"DC=corp,DC=example,DC=test\"",
        )
        .and_then(|v| dn_value(ctx, v, &key("base_dn")));
    let include_ous = dn_list(ctx, c.include_ous.as_ref(), &key("include_ous"));
    let exclude_ous = dn_list(ctx, c.exclude_ous.as_ref(), &key("exclude_ous"));
    if let (Some(base), Some(inc), Some(exc)) = (&base_dn, &include_ous, &exclude_ous) {
        for (list, name, raw) in [
            (inc, "include_ous", &c.include_ous),
            (exc, "exclude_ous", &c.exclude_ous),
        ] {
            for (j, dn) in list.iter().enumerate() {
                if !dn.is_within(base) {
                    let at = raw
                        .as_ref()
                        .and_then(|r| r.get(j))
                        .map_or(span.start, |v| v.span().start);
                    ctx.report(
                        at,
                        &format!("{p}.{name}[{j}]"),
                        format!("{} is not inside base_dn {}", dn, base),
                    );
                }
            }
        }
    }
    let member_of = match &c.member_of {
        None => Some(None),
        Some(v) => dn_value(ctx, v, &key("member_of")).map(Some),
    };
    let (classes_default, excluded_default) = match flavor {
        LdapFlavor::Ad => (AD_OBJECT_CLASSES, AD_EXCLUDED_ATTRIBUTES),
        LdapFlavor::Ldap => (LDAP_OBJECT_CLASSES, LDAP_EXCLUDED_ATTRIBUTES),
    };
    let object_classes = ctx
        .attr_list(
            c.object_classes.as_ref(),
            &key("object_classes"),
            classes_default,
        )
        .map(|v| v.iter().map(|a| a.as_str().to_string()).collect::<Vec<_>>());
    let filters = match &c.filters {
        None => Some(Vec::new()),
        Some(map) => {
            let mut out = Vec::new();
            let mut ok = true;
            for (class, f) in map.get_ref() {
                let k = format!("{p}.filters.{class}");
                let known = object_classes
                    .as_ref()
                    .is_none_or(|cl| cl.iter().any(|x| x.eq_ignore_ascii_case(class)));
                if !known {
                    ctx.report(
                        f.span().start,
                        &k,
                        format!(
                            "{class:?} is not one of this connector's object_classes ({})",
                            object_classes.as_deref().unwrap_or_default().join(", ")
                        ),
                    );
                    ok = false;
                    continue;
                }
                match filter_value(ctx, f, &k) {
                    Some(f) => out.push((class.clone(), f)),
                    None => ok = false,
                }
            }
            ok.then_some(out)
        }
    };
    let attributes = ctx.attr_list(c.attributes.as_ref(), &key("attributes"), &[]);
    let exclude_attributes = ctx.attr_list(
        c.exclude_attributes.as_ref(),
        &key("exclude_attributes"),
        excluded_default,
    );
    let reference_attributes = ctx.attr_list(
        c.reference_attributes.as_ref(),
        &key("reference_attributes"),
        DEFAULT_REFERENCE_ATTRIBUTES,
    );
    let binary_attributes = ctx.attr_list(
        c.binary_attributes.as_ref(),
        &key("binary_attributes"),
        DEFAULT_BINARY_ATTRIBUTES,
    );
    let page_size = match &c.page_size {
        None => Some(500),
        Some(v) => match u32::try_from(*v.get_ref()) {
            Ok(n) if (1..=100_000).contains(&n) => Some(n),
            _ => {
                ctx.report(
                    v.span().start,
                    &key("page_size"),
                    format!(
                        "expected a page size from 1 to 100000, found {}",
                        v.get_ref()
                    ),
                );
                None
            }
        },
    };
    let in_flight = super::scim::bounded(
        ctx,
        c.in_flight.as_ref(),
        &key("in_flight"),
        1..=64,
        8,
        "a number of operations",
    );
    let range_size = match &c.range_size {
        None => Some(None),
        Some(v) => match u32::try_from(*v.get_ref()) {
            Ok(n) if n >= 2 => Some(Some(n)),
            _ => {
                ctx.report(
                    v.span().start,
                    &key("range_size"),
                    format!(
                        "expected a number of values, 2 or more, found {}",
                        v.get_ref()
                    ),
                );
                None
            }
        },
    };
    let delta = match &c.delta {
        None => Some(DeltaMethod::Auto),
        Some(v) => {
            let options: &[(&str, DeltaMethod)] = match flavor {
                LdapFlavor::Ad => &[
                    ("auto", DeltaMethod::Auto),
                    ("dirsync", DeltaMethod::DirSync),
                    ("usn", DeltaMethod::Usn),
                    ("none", DeltaMethod::None),
                ],
                LdapFlavor::Ldap => &[
                    ("auto", DeltaMethod::Auto),
                    ("syncrepl", DeltaMethod::Syncrepl),
                    ("timestamp", DeltaMethod::Timestamp),
                    ("none", DeltaMethod::None),
                ],
            };
            ctx.choice(v, &key("delta"), options)
        }
    };
    let timeout = timeout_setting(ctx, c, p, Duration::from_secs(60));
    let watch = c.watch.as_ref().is_some_and(|v| *v.get_ref());
    let watch_window = match &c.watch_window {
        None => Some(DEFAULT_WATCH_WINDOW),
        Some(v) => match parse_window(v.get_ref()) {
            Some(d) if d <= MAX_WATCH_WINDOW => Some(d),
            _ => {
                ctx.report(
                    v.span().start,
                    &key("watch_window"),
                    format!(
                        "expected a duration from \"0s\" to \"5m\" like \"1s\" or \"250ms\", found {:?}",
                        v.get_ref()
                    ),
                );
                None
            }
        },
    };
    Some(LdapConfig {
        flavor,
        url: url?,
        starttls,
        danger_plaintext,
        bind_dn: bind_dn?,
        bind_password: bind_password?,
        agent_password_file: agent_password_file?,
        tls_verify: tls_verify?,
        ca_file: ca_file?,
        base_dn: base_dn?,
        include_ous: include_ous?,
        exclude_ous: exclude_ous?,
        member_of: member_of?,
        object_classes: object_classes?,
        filters: filters?,
        attributes: attributes?,
        exclude_attributes: exclude_attributes?,
        reference_attributes: reference_attributes?,
        binary_attributes: binary_attributes?,
        page_size: page_size?,
        in_flight: usize::try_from(in_flight?).ok()?,
        range_size: range_size?,
        delta: delta?,
        timeout: timeout?,
        watch,
        watch_window: watch_window?,
    })
}

/// How long a watched connector collects changes before their delta cycle, by default.
const DEFAULT_WATCH_WINDOW: Duration = Duration::from_secs(1);

/// A longer window would make "near real time" slower than a short schedule.
const MAX_WATCH_WINDOW: Duration = Duration::from_secs(300);

/// A batch window: `<n>ms`, or what `[schedule] interval` accepts (`1s`, `1m30s`).
fn parse_window(s: &str) -> Option<Duration> {
    match s.strip_suffix("ms") {
        Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
            n.parse().ok().map(Duration::from_millis)
        }
        Some(_) => None,
        None => parse_interval(s),
    }
}

/// `tls_verify` and `ca_file` of a connector that speaks TLS (ad, ldap, scim): the check
/// mode (default full) and the CA file, which must exist and which chain_only needs.
pub(super) fn tls_settings(
    ctx: &mut Ctx<'_>,
    c: &RawConnector,
    p: &str,
) -> (Option<TlsVerify>, Option<Option<PathBuf>>) {
    let key = |field: &str| format!("{p}.{field}");
    let tls_verify = match &c.tls_verify {
        None => Some(TlsVerify::Full),
        Some(v) => ctx.choice(
            v,
            &key("tls_verify"),
            &[
                ("full", TlsVerify::Full),
                ("chain_only", TlsVerify::ChainOnly),
                (
                    "danger_accept_invalid_certs",
                    TlsVerify::DangerAcceptInvalidCerts,
                ),
            ],
        ),
    };
    let ca_file = match &c.ca_file {
        None => Some(None),
        // A file that is not there yet (the CA handed over after the config) is this
        // connector's problem, reported by `check` and at connection time, not a reason to
        // refuse the whole config; something there that is not a file is a mistake here.
        Some(v) => ctx.path_value(v, &key("ca_file")).and_then(|path| {
            if path.is_file() || !path.exists() {
                Some(Some(path))
            } else {
                ctx.report(
                    v.span().start,
                    &key("ca_file"),
                    format!("{} is not a file", path.display()),
                );
                None
            }
        }),
    };
    if tls_verify == Some(TlsVerify::ChainOnly) && matches!(ca_file, Some(None)) {
        if let Some(v) = &c.tls_verify {
            ctx.report(
                v.span().start,
                &key("tls_verify"),
                "chain_only trusts one CA for any name, so it needs ca_file",
            );
        }
    }
    (tls_verify, ca_file)
}

/// A connector's `timeout` (at least 1 s), or `default`.
pub(super) fn timeout_setting(
    ctx: &mut Ctx<'_>,
    c: &RawConnector,
    p: &str,
    default: Duration,
) -> Option<Duration> {
    match &c.timeout {
        None => Some(default),
        Some(v) => match parse_interval(v.get_ref()) {
            Some(d) if d >= Duration::from_secs(1) => Some(d),
            _ => {
                ctx.report(
                    v.span().start,
                    &format!("{p}.timeout"),
                    format!(
                        "expected a duration like \"30s\" or \"2m\", found {:?}",
                        v.get_ref()
                    ),
                );
                None
            }
        },
    }
}
