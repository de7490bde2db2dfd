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
        let is_ldif = ctx
            .required(&c.kind, &span, &key("type"), "\"ldif\"")
            .and_then(|v| {
                if v.get_ref() == "ldif" {
                    return Some(());
                }
                ctx.report(
                    v.span().start,
                    &key("type"),
                    format!(
                        "expected \"ldif\", found {:?} (only ldif exists so far; ad, ldap, scim \
                         and graph connectors come later)",
                        v.get_ref()
                    ),
                );
                None
            });
        let mode = ctx
            .required(&c.mode, &span, &key("mode"), "\"source\" or \"target\"")
            .and_then(|v| {
                ctx.choice(
                    v,
                    &key("mode"),
                    &[("source", LdifMode::Source), ("target", LdifMode::Target)],
                )
            });
        let path = ctx
            .required(&c.path, &span, &key("path"), "the LDIF file's path")
            .and_then(|v| ctx.path_value(v, &key("path")));
        let anchor = ctx
            .required(
                &c.anchor,
                &span,
                &key("anchor"),
                "an attribute name like \"objectGUID\"",
            )
            .and_then(|v| ctx.attr(v, &key("anchor")));
        let partitions: Option<Vec<Dn>> = c
            .partitions
            .iter()
            .flatten()
            .enumerate()
            .map(|(j, v)| match Dn::parse(v.get_ref()) {
                Ok(dn) => Some(dn),
                Err(e) => {
                    ctx.report(
                        v.span().start,
                        &format!("{p}.partitions[{j}]"),
                        format!(
                            "expected a DN like \"dc=corp,dc=example\", found {:?} ({} at byte {})",
                            v.get_ref(),
                            e.reason,
                            e.at
                        ),
                    );
                    None
                }
            })
            // Collected in full first so that every bad DN is reported, not just the first.
            .collect::<Vec<_>>()
            .into_iter()
            .collect();
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
        let unique_attributes =
            ctx.attr_list(c.unique_attributes.as_ref(), &key("unique_attributes"), &[]);
        let deletion_threshold = match (count, percent) {
            (Some(count), Some(percent)) => Some(DeletionThreshold { count, percent }),
            _ => None,
        };

        // Registered even when invalid, so rules naming it do not add a second, misleading
        // "no such connector" error.
        if let Some(v) = &c.name {
            if !known.iter().any(|k| k.name == *v.get_ref()) {
                known.push(KnownConnector {
                    name: v.get_ref().clone(),
                    index: i,
                    ldif_mode: is_ldif.and(mode),
                });
            }
        }

        // All fields were checked above; only now may a missing one end this connector.
        out.push((|| {
            Some(ConnectorConfig {
                name: name?,
                deletion_threshold: deletion_threshold?,
                unique_attributes: unique_attributes?,
                kind: {
                    is_ldif?;
                    ConnectorKind::Ldif(LdifConfig {
                        path: path?,
                        mode: mode?,
                        anchor: anchor?,
                        partitions: partitions?,
                        reference_attributes: reference_attributes?,
                        binary_attributes: binary_attributes?,
                    })
                },
            })
        })());
    }
    (out.into_iter().collect(), known)
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
