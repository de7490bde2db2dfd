//! Checks the `[[connector]]` tables.

use super::*;

/// What rules need to know about a configured connector.
pub(super) struct KnownConnector {
    pub(super) name: String,
    pub(super) index: usize,
    /// Set for ldif connectors whose mode is valid.
    pub(super) ldif_mode: Option<LdifMode>,
}

pub(super) fn check_connectors(
    ctx: &mut Ctx<'_>,
    raw: &[Spanned<RawConnector>],
) -> (Option<Vec<ConnectorConfig>>, Vec<KnownConnector>) {
    let mut known: Vec<KnownConnector> = Vec::new();
    let mut out = Vec::new();
    for (i, table) in raw.iter().enumerate() {
        let span = table.span();
        let c = table.get_ref();
        let p = format!("connector[{i}]");
        let key = |field: &str| format!("{p}.{field}");

        let name = ctx
            .required(
                &c.name,
                &span,
                &key("name"),
                "a connector name like \"corp\"",
            )
            .and_then(|v| {
                if let Some(first) = known.iter().find(|k| k.name == *v.get_ref()) {
                    ctx.report(
                        v.span().start,
                        &key("name"),
                        format!(
                            "connector name {:?} is already used by connector[{}]",
                            v.get_ref(),
                            first.index
                        ),
                    );
                    return None;
                }
                match ConnectorName::new(v.get_ref()) {
                    Ok(n) => Some(n),
                    Err(e) => {
                        ctx.report(v.span().start, &key("name"), e.to_string());
                        None
                    }
                }
            });
        let kind_name = ctx
            .required(
                &c.kind,
                &span,
                &key("type"),
                "\"ad\", \"ldap\", \"scim\" or \"ldif\"",
            )
            .and_then(|v| {
                ctx.choice(
                    v,
                    &key("type"),
                    &[
                        ("ldif", KindName::Ldif),
                        ("ad", KindName::Ad),
                        ("ldap", KindName::Ldap),
                        ("scim", KindName::Scim),
                        ("graph", KindName::Graph),
                    ],
                )
            });
        let (kind, ldif_mode) = match kind_name {
            Some(KindName::Ldif) => {
                reject_keys(ctx, &p, "an ldif connector", &ldap_keys(c));
                reject_keys(ctx, &p, "an ldif connector", &scim_keys(c));
                reject_keys(ctx, &p, "an ldif connector", &graph_keys(c));
                let (k, mode) = check_ldif(ctx, c, &span, &p);
                (k.map(ConnectorKind::Ldif), mode)
            }
            Some(k @ (KindName::Ad | KindName::Ldap)) => {
                let (flavor, what) = match k {
                    KindName::Ad => (LdapFlavor::Ad, "an ad connector"),
                    _ => (LdapFlavor::Ldap, "an ldap connector"),
                };
                reject_keys(ctx, &p, what, &ldif_keys(c));
                reject_keys(ctx, &p, what, &scim_keys(c));
                reject_keys(ctx, &p, what, &graph_keys(c));
                let k = super::ldap::check_ldap(ctx, c, &span, &p, flavor);
                (k.map(|k| ConnectorKind::Ldap(Box::new(k))), None)
            }
            Some(KindName::Scim) => {
                let what = "a scim connector";
                reject_keys(ctx, &p, what, &ldif_keys(c));
                let ldap_only: Vec<_> = ldap_keys(c)
                    .into_iter()
                    .filter(|(name, _)| !SHARED_WITH_SCIM.contains(name))
                    .collect();
                reject_keys(ctx, &p, what, &ldap_only);
                reject_keys(ctx, &p, what, &graph_keys(c));
                let k = super::scim::check_scim(ctx, c, &span, &p);
                (k.map(|k| ConnectorKind::Scim(Box::new(k))), None)
            }
            Some(KindName::Graph) => {
                let what = "a graph connector";
                reject_keys(ctx, &p, what, &ldif_keys(c));
                let ldap_only: Vec<_> = ldap_keys(c)
                    .into_iter()
                    .filter(|(name, _)| !SHARED_WITH_SCIM.contains(name) || *name == "url")
                    .collect();
                reject_keys(ctx, &p, what, &ldap_only);
                let scim_only: Vec<_> = scim_keys(c)
                    .into_iter()
                    .filter(|(name, _)| !["in_flight", "max_retries"].contains(name))
                    .collect();
                reject_keys(ctx, &p, what, &scim_only);
                let k = super::graph::check_graph(ctx, c, &span, &p);
                (k.map(|k| ConnectorKind::Graph(Box::new(k))), None)
            }
            None => (None, None),
        };

        let count = match &c.deletion_threshold {
            None => Some(DeletionThreshold::default().count),
            Some(v) => match u64::try_from(*v.get_ref()) {
                Ok(n) => Some(n),
                Err(_) => {
                    ctx.report(
                        v.span().start,
                        &key("deletion_threshold"),
                        format!(
                            "expected a number of objects (0 or more), found {}",
                            v.get_ref()
                        ),
                    );
                    None
                }
            },
        };
        let percent = match &c.deletion_threshold_percent {
            None => Some(None),
            Some(v) => match u8::try_from(*v.get_ref()) {
                Ok(n) if (1..=100).contains(&n) => Some(Some(n)),
                _ => {
                    ctx.report(
                        v.span().start,
                        &key("deletion_threshold_percent"),
                        format!("expected a percentage from 1 to 100, found {}", v.get_ref()),
                    );
                    None
                }
            },
        };
        let holds = match c
            .deletion_threshold_holds
            .as_ref()
            .map(|v| v.get_ref().as_str())
        {
            None | Some("export") => Some(ThresholdHolds::Export),
            Some("deletes") => Some(ThresholdHolds::Deletes),
            Some(other) => {
                if let Some(v) = &c.deletion_threshold_holds {
                    ctx.report(
                        v.span().start,
                        &key("deletion_threshold_holds"),
                        format!(
                            "expected \"export\" (hold the whole export run) or \"deletes\" \
                             (hold only the deletes), found {other:?}"
                        ),
                    );
                }
                None
            }
        };
        let unique_attributes =
            ctx.attr_list(c.unique_attributes.as_ref(), &key("unique_attributes"), &[]);
        let agent_group = match (&c.agent_group, kind_name) {
            (None, _) => Some(None),
            (Some(v), Some(KindName::Ad | KindName::Ldap)) => {
                let g = v.get_ref();
                let fits = !g.is_empty()
                    && g.len() <= 64
                    && g.chars()
                        .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.'));
                if fits {
                    Some(Some(g.clone()))
                } else {
                    ctx.report(
                        v.span().start,
                        &key("agent_group"),
                        format!(
                            "expected an agent group name (1 to 64 letters, digits, '-', '_' \
                             or '.'), found {g:?}"
                        ),
                    );
                    None
                }
            }
            (Some(v), _) => {
                ctx.report(
                    v.span().start,
                    &key("agent_group"),
                    "only ad and ldap connectors run through agents",
                );
                None
            }
        };
        let deletion_threshold = match (count, percent, holds) {
            (Some(count), Some(percent), Some(holds)) => Some(DeletionThreshold {
                count,
                percent,
                holds,
            }),
            _ => None,
        };

        // Registered even when invalid, so rules naming it do not add a second, misleading
        // "no such connector" error.
        if let Some(v) = &c.name {
            if !known.iter().any(|k| k.name == *v.get_ref()) {
                known.push(KnownConnector {
                    name: v.get_ref().clone(),
                    index: i,
                    ldif_mode,
                });
            }
        }

        // All fields were checked above; only now may a missing one end this connector.
        out.push((|| {
            Some(ConnectorConfig {
                name: name?,
                deletion_threshold: deletion_threshold?,
                unique_attributes: unique_attributes?,
                kind: kind?,
                agent_group: agent_group?,
            })
        })());
    }
    (out.into_iter().collect(), known)
}

#[derive(Clone, Copy)]
enum KindName {
    Ldif,
    Ad,
    Ldap,
    Scim,
    Graph,
}

/// Keys of ad/ldap connectors that scim connectors use too, with the same meaning.
const SHARED_WITH_SCIM: &[&str] = &[
    "url",
    "danger_plaintext",
    "tls_verify",
    "ca_file",
    "page_size",
    "in_flight",
    "timeout",
];

/// The keys that belong to scim connectors only, with the position of each one present.
fn scim_keys(c: &RawConnector) -> Vec<(&'static str, usize)> {
    let at = |v: &Option<Spanned<String>>| v.as_ref().map(|v| v.span().start);
    let at_n = |v: &Option<Spanned<i64>>| v.as_ref().map(|v| v.span().start);
    [
        ("bearer_token_file", at(&c.bearer_token_file)),
        ("bearer_token_env", at(&c.bearer_token_env)),
        ("extension_urn", at(&c.extension_urn)),
        ("full_import_every", at(&c.full_import_every)),
        ("max_retries", at_n(&c.max_retries)),
        ("member_chunk", at_n(&c.member_chunk)),
        ("bulk_size", at_n(&c.bulk_size)),
    ]
    .into_iter()
    .filter_map(|(name, at)| at.map(|a| (name, a)))
    .collect()
}

/// The keys that belong to graph connectors only, with the position of each one present.
fn graph_keys(c: &RawConnector) -> Vec<(&'static str, usize)> {
    let at = |v: &Option<Spanned<String>>| v.as_ref().map(|v| v.span().start);
    [
        ("tenant_id", at(&c.tenant_id)),
        ("client_id", at(&c.client_id)),
        ("client_secret_file", at(&c.client_secret_file)),
        ("client_secret_env", at(&c.client_secret_env)),
        ("authority", at(&c.authority)),
        ("graph_url", at(&c.graph_url)),
        (
            "write_budget",
            c.write_budget.as_ref().map(|v| v.span().start),
        ),
    ]
    .into_iter()
    .filter_map(|(name, at)| at.map(|a| (name, a)))
    .collect()
}

/// The keys that belong to ldif connectors, with the position of each one present.
fn ldif_keys(c: &RawConnector) -> Vec<(&'static str, usize)> {
    let mut out = Vec::new();
    let mut add = |name: &'static str, at: Option<usize>| {
        if let Some(at) = at {
            out.push((name, at));
        }
    };
    add("mode", c.mode.as_ref().map(|v| v.span().start));
    add("path", c.path.as_ref().map(|v| v.span().start));
    add("anchor", c.anchor.as_ref().map(|v| v.span().start));
    add(
        "partitions",
        c.partitions
            .as_ref()
            .and_then(|v| v.first())
            .map(|v| v.span().start),
    );
    out
}

/// The keys that belong to ad/ldap connectors, with the position of each one present.
fn ldap_keys(c: &RawConnector) -> Vec<(&'static str, usize)> {
    let mut out = Vec::new();
    let mut add = |name: &'static str, at: Option<usize>| {
        if let Some(at) = at {
            out.push((name, at));
        }
    };
    let first = |v: &Option<Vec<Spanned<String>>>| {
        v.as_ref().and_then(|v| v.first()).map(|v| v.span().start)
    };
    add("url", c.url.as_ref().map(|v| v.span().start));
    add("starttls", c.starttls.as_ref().map(|v| v.span().start));
    add(
        "danger_plaintext",
        c.danger_plaintext.as_ref().map(|v| v.span().start),
    );
    add("bind_dn", c.bind_dn.as_ref().map(|v| v.span().start));
    add(
        "bind_password_file",
        c.bind_password_file.as_ref().map(|v| v.span().start),
    );
    add(
        "bind_password_env",
        c.bind_password_env.as_ref().map(|v| v.span().start),
    );
    add(
        "agent_bind_password_file",
        c.agent_bind_password_file.as_ref().map(|v| v.span().start),
    );
    add("tls_verify", c.tls_verify.as_ref().map(|v| v.span().start));
    add("ca_file", c.ca_file.as_ref().map(|v| v.span().start));
    add("base_dn", c.base_dn.as_ref().map(|v| v.span().start));
    add("include_ous", first(&c.include_ous));
    add("exclude_ous", first(&c.exclude_ous));
    add("member_of", c.member_of.as_ref().map(|v| v.span().start));
    add("object_classes", first(&c.object_classes));
    add("filters", c.filters.as_ref().map(|v| v.span().start));
    add("attributes", first(&c.attributes));
    add("exclude_attributes", first(&c.exclude_attributes));
    add("page_size", c.page_size.as_ref().map(|v| v.span().start));
    add("in_flight", c.in_flight.as_ref().map(|v| v.span().start));
    add("range_size", c.range_size.as_ref().map(|v| v.span().start));
    add("delta", c.delta.as_ref().map(|v| v.span().start));
    add("timeout", c.timeout.as_ref().map(|v| v.span().start));
    add("watch", c.watch.as_ref().map(|v| v.span().start));
    add(
        "watch_window",
        c.watch_window.as_ref().map(|v| v.span().start),
    );
    out
}

/// Reports keys that do not belong to this connector type.
fn reject_keys(ctx: &mut Ctx<'_>, p: &str, what: &str, keys: &[(&'static str, usize)]) {
    for (name, at) in keys {
        ctx.report(
            *at,
            &format!("{p}.{name}"),
            format!("{name} is not a setting of {what}"),
        );
    }
}

fn check_ldif(
    ctx: &mut Ctx<'_>,
    c: &RawConnector,
    span: &std::ops::Range<usize>,
    p: &str,
) -> (Option<LdifConfig>, Option<LdifMode>) {
    let key = |field: &str| format!("{p}.{field}");
    let mode = ctx
        .required(&c.mode, span, &key("mode"), "\"source\" or \"target\"")
        .and_then(|v| {
            ctx.choice(
                v,
                &key("mode"),
                &[("source", LdifMode::Source), ("target", LdifMode::Target)],
            )
        });
    let path = ctx
        .required(&c.path, span, &key("path"), "the LDIF file's path")
        .and_then(|v| ctx.path_value(v, &key("path")));
    let anchor = ctx
        .required(
            &c.anchor,
            span,
            &key("anchor"),
            "an attribute name like \"objectGUID\"",
        )
        .and_then(|v| ctx.attr(v, &key("anchor")));
    let partitions = super::ldap::dn_list(ctx, c.partitions.as_ref(), &key("partitions"));
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
    let cfg = (|| {
        Some(LdifConfig {
            path: path?,
            mode: mode?,
            anchor: anchor?,
            partitions: partitions?,
            reference_attributes: reference_attributes?,
            binary_attributes: binary_attributes?,
        })
    })();
    (cfg, mode)
}

/// Looks up a rule's connector; reports unknown names.
pub(super) fn connector_ref<'k>(
    ctx: &mut Ctx<'_>,
    v: &Spanned<String>,
    key: &str,
    known: &'k [KnownConnector],
) -> Option<(ConnectorName, &'k KnownConnector)> {
    let found = v.get_ref();
    let Some(k) = known.iter().find(|k| k.name == *found) else {
        let names: Vec<&str> = known.iter().map(|k| k.name.as_str()).collect();
        let mut msg = if names.is_empty() {
            format!("no connector named {found:?}; no [[connector]] is configured")
        } else {
            format!(
                "no connector named {found:?}; configured connectors are {}",
                names.join(", ")
            )
        };
        if let Some(near) = did_you_mean(found, &names) {
            let _ = write!(msg, " (did you mean {near:?}?)");
        }
        ctx.report(v.span().start, key, msg);
        return None;
    };
    // An invalid name was already reported where the connector is defined.
    ConnectorName::new(found).ok().map(|n| (n, k))
}
