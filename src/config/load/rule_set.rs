//! `rule_set = "azure-ad-connect"`: generates the out-of-box rules for the connectors
//! present and adds them to the admin's own.
//!
//! ```toml
//! rule_set = "azure-ad-connect"
//! # optional: the AD-shaped sources (default: every type = "ad" connector)
//! rule_set_sources = ["corp", "ad-export"]
//! # optional: more source attributes that flow to every target
//! directory_extensions = ["employeeType", "msDS-cloudExtensionAttribute1"]
//! ```
//!
//! Sources get inbound rules (precedence 100 and up; the admin's rules below 100 win an
//! attribute). Every other `ldap` connector and every `ldif` target gets outbound rules after
//! the admin's, where the first in-scope rule writing an attribute wins it.

use super::*;
use crate::config::LdapConfig;
use crate::rules::defaults::{self, AZURE_AD_CONNECT, Source, Target};

/// Adds the generated rules to `rules`; None after reporting a problem.
pub(super) fn apply(
    ctx: &mut Ctx<'_>,
    raw: &RawConfig,
    connectors: &mut [ConnectorConfig],
    rules: &mut RuleSet,
) -> Option<()> {
    let Some(name) = &raw.rule_set else {
        for (v, key) in [
            (raw.rule_set_sources.as_ref(), "rule_set_sources"),
            (raw.directory_extensions.as_ref(), "directory_extensions"),
        ] {
            if let Some(first) = v.and_then(|l| l.first()) {
                ctx.report(
                    first.span().start,
                    key,
                    format!(
                        "{key} only applies with the out-of-box rule set; add \
                         rule_set = \"{AZURE_AD_CONNECT}\" or remove it"
                    ),
                );
                return None;
            }
        }
        return Some(());
    };
    ctx.choice(name, "rule_set", &[(AZURE_AD_CONNECT, ())])?;
    let extensions = extensions(ctx, raw.directory_extensions.as_ref())?;
    let chosen = chosen_sources(ctx, raw.rule_set_sources.as_ref(), connectors)?;

    let mut sources = Vec::new();
    let mut targets = Vec::new();
    for c in connectors.iter_mut() {
        let is_source = match &chosen {
            Some(list) => list.contains(&c.name),
            None => matches!(&c.kind, ConnectorKind::Ldap(l) if l.flavor == LdapFlavor::Ad),
        };
        if is_source {
            let base = match &mut c.kind {
                ConnectorKind::Ldap(l) => {
                    keep_critical_flag(l);
                    Some(l.base_dn.clone())
                }
                ConnectorKind::Ldif(l) => l.partitions.first().cloned(),
                // A SCIM service as an AD-shaped source has no domain to name.
                ConnectorKind::Scim(_) => None,
                ConnectorKind::Graph(_) => None,
            };
            sources.push(Source {
                connector: c.name.clone(),
                base,
            });
            continue;
        }
        // The one place that maps connector types to generated outbound rules.
        match &c.kind {
            // An AD connector that is not a source is left to the admin's rules
            // (writeback is not part of the out-of-box set).
            ConnectorKind::Ldap(l) if l.flavor == LdapFlavor::Ad => {}
            ConnectorKind::Ldap(l) => targets.push(Target::Ldap {
                connector: c.name.clone(),
                base: l.base_dn.clone(),
            }),
            ConnectorKind::Ldif(l) if l.mode == LdifMode::Target => match l.partitions.first() {
                Some(base) => targets.push(Target::Ldif {
                    connector: c.name.clone(),
                    base: base.clone(),
                }),
                None => {
                    ctx.report(
                        name.span().start,
                        "rule_set",
                        format!(
                            "ldif target {:?} needs partitions = [\"dc=example,dc=com\"] so \
                             the rule set can name the objects it writes there",
                            c.name.as_str()
                        ),
                    );
                    return None;
                }
            },
            ConnectorKind::Ldif(_) => {}
            ConnectorKind::Graph(_) => targets.push(Target::Graph {
                connector: c.name.clone(),
            }),
            ConnectorKind::Scim(s) => targets.push(Target::Scim {
                connector: c.name.clone(),
                // Directory extensions, proxyAddresses and extensionAttributes go to the
                // connector's own extension schema; without one they are not sent.
                extension_urn: s.extension_urn.clone().unwrap_or_default(),
            }),
        }
    }
    let generated = match defaults::generate(&sources, &targets, &extensions) {
        Ok(g) => g,
        Err(e) => {
            ctx.report(name.span().start, "rule_set", e);
            return None;
        }
    };
    for r in &generated.inbound {
        if rules.inbound.iter().any(|a| a.name == r.name) {
            ctx.report(
                name.span().start,
                "rule_set",
                format!(
                    "an [[inbound]] rule is named {:?}, which the rule set uses; rename yours",
                    r.name
                ),
            );
            return None;
        }
    }
    for r in &generated.outbound {
        if rules.outbound.iter().any(|a| a.name == r.name) {
            ctx.report(
                name.span().start,
                "rule_set",
                format!(
                    "an [[outbound]] rule is named {:?}, which the rule set uses; rename yours",
                    r.name
                ),
            );
            return None;
        }
    }
    rules.inbound.extend(generated.inbound);
    rules.outbound.extend(generated.outbound);
    Some(())
}

/// The AD connector drops isCriticalSystemObject by default, but the rule set's scope
/// needs it to leave out built-in accounts and groups.
fn keep_critical_flag(l: &mut LdapConfig) {
    l.exclude_attributes
        .retain(|a| !a.is("isCriticalSystemObject"));
}

fn extensions(ctx: &mut Ctx<'_>, list: Option<&Vec<Spanned<String>>>) -> Option<Vec<AttrName>> {
    let mut out: Vec<AttrName> = Vec::new();
    let mut ok = true;
    for (i, v) in list.into_iter().flatten().enumerate() {
        let key = format!("directory_extensions[{i}]");
        let Some(a) = ctx.attr(v, &key) else {
            ok = false;
            continue;
        };
        if defaults::reserved_attribute(&a) {
            ctx.report(
                v.span().start,
                &key,
                format!(
                    "{:?} already flows in the out-of-box rule set; list only attributes it \
                     does not carry",
                    a.as_str()
                ),
            );
            ok = false;
        } else if out.contains(&a) {
            ctx.report(
                v.span().start,
                &key,
                format!("{:?} is listed twice", a.as_str()),
            );
            ok = false;
        } else {
            out.push(a);
        }
    }
    ok.then_some(out)
}

/// The connectors named in `rule_set_sources` (None: the default, every ad connector).
fn chosen_sources(
    ctx: &mut Ctx<'_>,
    list: Option<&Vec<Spanned<String>>>,
    connectors: &[ConnectorConfig],
) -> Option<Option<Vec<ConnectorName>>> {
    let Some(list) = list else {
        return Some(None);
    };
    let mut out = Vec::new();
    let mut ok = true;
    for (i, v) in list.iter().enumerate() {
        let key = format!("rule_set_sources[{i}]");
        let found = connectors.iter().find(|c| c.name.as_str() == v.get_ref());
        match found.map(|c| &c.kind) {
            Some(ConnectorKind::Ldap(_)) => out.push(found?.name.clone()),
            Some(ConnectorKind::Ldif(l)) if l.mode == LdifMode::Source => {
                out.push(found?.name.clone())
            }
            Some(_) => {
                ctx.report(
                    v.span().start,
                    &key,
                    format!(
                        "connector {:?} cannot be read as Active Directory; a source must be \
                         an ad, ldap or ldif source connector",
                        v.get_ref()
                    ),
                );
                ok = false;
            }
            None => {
                let names: Vec<&str> = connectors.iter().map(|c| c.name.as_str()).collect();
                ctx.report(v.span().start, &key, expected_one_of(&names, v.get_ref()));
                ok = false;
            }
        }
    }
    ok.then_some(Some(out))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    const CONNECTORS: &str = r#"state_file = "state.redb"

[[connector]]
name = "corp"
type = "ad"
url = "ldaps://dc1.corp.example.com"
bind_dn = "svc@corp.example.com"
bind_password_file = "pw"
base_dn = "DC=corp,DC=example,DC=com"

[[connector]]
name = "openldap"
type = "ldap"
url = "ldaps://ldap.example.com"
bind_dn = "cn=admin,dc=example,dc=com"
bind_password_file = "pw"
base_dn = "dc=example,dc=com"

[[connector]]
name = "export"
type = "ldif"
mode = "target"
path = "out.ldif"
anchor = "entryUUID"
partitions = ["o=export"]
"#;

    fn parse(extra_top: &str, rules: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pw"), "s3cret").unwrap();
        let text = format!("{extra_top}\n{CONNECTORS}\n{rules}");
        Config::parse(&text, &dir.path().join("bridgehead.toml"))
    }

    fn message(e: ConfigError) -> String {
        e.to_string()
    }

    #[test]
    fn one_line_generates_rules_for_the_connectors_present() {
        let c = parse("rule_set = \"azure-ad-connect\"", "").unwrap();
        let inbound: Vec<&str> = c.rules.inbound.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            inbound,
            [
                "In from AD - User [corp]",
                "In from AD - InetOrgPerson [corp]",
                "In from AD - Contact [corp]",
                "In from AD - Group [corp]",
                "In from AD - Device [corp]",
            ]
        );
        let outbound: Vec<&str> = c.rules.outbound.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(outbound.len(), 8, "{outbound:?}");
        assert!(outbound.contains(&"Out to LDAP - User [openldap]"));
        assert!(outbound.contains(&"Out to LDIF - Group [export]"));
        let ConnectorKind::Ldap(ad) = &c.connectors[0].kind else {
            panic!("ad connector")
        };
        assert!(
            !ad.exclude_attributes
                .iter()
                .any(|a| a.is("isCriticalSystemObject")),
            "the scope needs isCriticalSystemObject imported"
        );
        // Without the line, nothing is generated and the attribute stays excluded.
        let plain = parse("", "").unwrap();
        assert!(plain.rules.inbound.is_empty() && plain.rules.outbound.is_empty());
    }

    #[test]
    fn admin_rules_come_first_and_keep_their_precedence() {
        let c = parse(
            "rule_set = \"azure-ad-connect\"",
            r#"[[inbound]]
name = "mine"
connector = "corp"
object_class = "user"
object_type = "person"
precedence = 50
flows = [ { target = "displayName", expression = "[sn] & \", \" & [givenName]" } ]
"#,
        )
        .unwrap();
        assert_eq!(c.rules.inbound[0].name, "mine");
        assert_eq!(c.rules.inbound[0].precedence, 50);
        assert_eq!(c.rules.inbound[1].precedence, 100);
    }

    #[test]
    fn mistakes_are_reported_at_their_key() {
        let e = message(parse("rule_set = \"azure-ad-conect\"", "").unwrap_err());
        assert!(
            e.contains("bridgehead.toml:1:12: rule_set:")
                && e.contains("did you mean \"azure-ad-connect\""),
            "{e}"
        );
        let e = message(parse("directory_extensions = [\"employeeType\"]", "").unwrap_err());
        assert!(
            e.contains("directory_extensions: directory_extensions only applies"),
            "{e}"
        );
        let e = message(
            parse(
                "rule_set = \"azure-ad-connect\"\ndirectory_extensions = [\"employeeType\", \"department\"]",
                "",
            )
            .unwrap_err(),
        );
        assert!(
            e.contains("2:41: directory_extensions[1]: \"department\" already flows"),
            "{e}"
        );
        let e = message(
            parse(
                "rule_set = \"azure-ad-connect\"\nrule_set_sources = [\"crop\"]",
                "",
            )
            .unwrap_err(),
        );
        assert!(
            e.contains("rule_set_sources[0]") && e.contains("did you mean \"corp\""),
            "{e}"
        );
        let e = message(
            parse(
                "rule_set = \"azure-ad-connect\"",
                r#"[[inbound]]
name = "In from AD - User [corp]"
connector = "corp"
object_class = "user"
object_type = "person"
precedence = 5
flows = []
"#,
            )
            .unwrap_err(),
        );
        assert!(e.contains("which the rule set uses"), "{e}");
    }
}
