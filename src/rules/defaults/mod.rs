//! The out-of-box rule set (`rule_set = "azure-ad-connect"`): the rules Azure AD Connect's
//! default synchronization rules amount to, generated at config load for the connectors
//! present.
//!
//! - every AD-shaped source gets inbound rules for `user`, `inetOrgPerson`, `contact`,
//!   `group` and `computer` (→ device) with Azure AD Connect's scoping, a join on the
//!   sourceAnchor (so one person in several forests is one metaverse object), and the flows
//!   of [`table`];
//! - every target gets outbound rules for what it can hold: an LDAP directory the standard
//!   inetOrgPerson / groupOfNames / device schema under its base DN, an LDIF file the
//!   metaverse as it is, a SCIM service Users and Groups named as Entra ID's SCIM mappings
//!   name them.
//!
//! Generated inbound rules have precedence 100 and up (as Azure AD Connect's own, which
//! leaves 0-99 to the admin); generated outbound rules come after the admin's, and the
//! first in-scope rule that writes an attribute wins it, so an admin rule overrides a
//! default flow without copying the rest.

mod graph;
mod readme;
mod scim;
pub mod table;
#[cfg(test)]
mod tests;

use crate::model::{AttrName, ConnectorName, Dn, ObjectType};
use crate::rules::expr::{CompileContext, Expr};
use crate::rules::{
    Deprovision, DnSource, DnTemplate, Flow, FlowSource, InboundRule, JoinCondition, JoinRule,
    OutboundRule, RuleSet, ScopeClause, ScopeOp,
};

pub use graph::graph_outbound;
pub use readme::readme_tables;
pub use scim::scim_outbound;
use table::{InRow, Kinds, OutRow};

/// The config name of the rule set.
pub const AZURE_AD_CONNECT: &str = "azure-ad-connect";

/// Precedence of the first source's generated inbound rules; each further source adds 10.
pub const FIRST_PRECEDENCE: u32 = 100;

/// A connector whose objects are shaped like Active Directory's.
#[derive(Clone, Debug)]
pub struct Source {
    /// The connector.
    pub connector: ConnectorName,
    /// Its naming context (the DNS domain is read from its `DC=` parts).
    pub base: Option<Dn>,
}

/// A connector the rule set exports to.
#[derive(Clone, Debug)]
pub enum Target {
    /// An LDAP directory with the standard schema; objects go under `base`.
    Ldap {
        /// The connector.
        connector: ConnectorName,
        /// Its base DN (`ou=people`, `ou=groups`, `ou=contacts`, `ou=devices` below it).
        base: Dn,
    },
    /// An LDIF file: the metaverse as it is, under `base`.
    Ldif {
        /// The connector.
        connector: ConnectorName,
        /// The container the entries are named under.
        base: Dn,
    },
    /// Microsoft Entra ID through Graph: users and security groups.
    Graph {
        /// The connector.
        connector: ConnectorName,
    },
    /// A SCIM 2.0 service: Users and Groups.
    Scim {
        /// The connector.
        connector: ConnectorName,
        /// The schema URN of its custom extension attributes.
        extension_urn: String,
    },
}

/// One AD object class and what the rule set makes of it.
struct ClassSpec {
    class: &'static str,
    label: &'static str,
    kinds: Kinds,
    object_type: ObjectType,
}

const CLASSES: &[ClassSpec] = &[
    ClassSpec {
        class: "user",
        label: "User",
        kinds: Kinds::USER,
        object_type: ObjectType::Person,
    },
    ClassSpec {
        class: "inetOrgPerson",
        label: "InetOrgPerson",
        kinds: Kinds::USER,
        object_type: ObjectType::Person,
    },
    ClassSpec {
        class: "contact",
        label: "Contact",
        kinds: Kinds::CONTACT,
        object_type: ObjectType::Contact,
    },
    ClassSpec {
        class: "group",
        label: "Group",
        kinds: Kinds::GROUP,
        object_type: ObjectType::Group,
    },
    ClassSpec {
        class: "computer",
        label: "Device",
        kinds: Kinds::DEVICE,
        object_type: ObjectType::Device,
    },
];

/// Azure AD Connect's scoping: which objects of a class are never synchronised.
fn scope_clauses(kinds: Kinds) -> Vec<ScopeClause> {
    let clause = |attr: &str, op, value: &str| ScopeClause {
        attr: AttrName::new(attr),
        op,
        value: value.to_string(),
    };
    // Built-in accounts and groups (Administrator, krbtgt, Domain Admins, domain
    // controllers) are critical system objects.
    let mut out = vec![clause("isCriticalSystemObject", ScopeOp::NotEqual, "TRUE")];
    if kinds.has(Kinds::USER) {
        out.extend([
            // Objects that Azure AD Connect's own writeback created carry User_ here.
            clause("adminDescription", ScopeOp::NotStartsWith, "User_"),
            clause("sAMAccountName", ScopeOp::NotStartsWith, "SUPPORT_388945a0"),
            clause("sAMAccountName", ScopeOp::NotStartsWith, "MSOL_"),
            clause("sAMAccountName", ScopeOp::NotStartsWith, "AAD_"),
            clause("sAMAccountName", ScopeOp::NotStartsWith, "krbtgt"),
            clause("mailNickname", ScopeOp::NotStartsWith, "SystemMailbox{"),
            // Exchange arbitration and discovery mailboxes.
            clause("msExchRecipientTypeDetails", ScopeOp::NotEqual, "8388608"),
            clause("msExchRecipientTypeDetails", ScopeOp::NotEqual, "536870912"),
        ]);
    }
    if kinds.has(Kinds::GROUP) {
        out.extend([
            clause("adminDescription", ScopeOp::NotStartsWith, "Group_"),
            clause("mailNickname", ScopeOp::NotStartsWith, "SystemMailbox{"),
        ]);
    }
    if kinds.has(Kinds::CONTACT) {
        out.push(clause(
            "adminDescription",
            ScopeOp::NotStartsWith,
            "Contact_",
        ));
    }
    out
}

/// The scope conditions a clause list cannot say (AND of clauses only).
fn scope_expression(kinds: Kinds) -> Option<&'static str> {
    if kinds.has(Kinds::USER) {
        // Exchange's CAS_{...} system mailboxes.
        Some(
            "!(Left([mailNickname], 4) = \"CAS_\" && InStr([mailNickname], \"}\") > 0) && \
             !(Left([sAMAccountName], 4) = \"CAS_\" && InStr([sAMAccountName], \"}\") > 0)",
        )
    } else if kinds.has(Kinds::CONTACT) {
        // Only mail-enabled contacts are synchronised.
        Some("IsPresent([mail]) || IsPresent([proxyAddresses])")
    } else {
        None
    }
}

/// The DNS domain of a naming context: `DC=corp,DC=example,DC=test` → `corp.example.test`.
pub fn dns_domain(base: &Dn) -> Option<String> {
    let labels: Vec<&str> = base
        .norm()
        .split(',')
        .filter_map(|rdn| rdn.trim().strip_prefix("dc="))
        .collect();
    (!labels.is_empty()).then(|| labels.join("."))
}

/// Compiles one generated expression; a failure names the rule and flow (a bug in the
/// table, caught by the unit tests, but still an error rather than a panic).
fn compile(text: &str, what: &str) -> Result<Expr, String> {
    Expr::compile(text, &CompileContext::default())
        .map_err(|e| format!("rule set {AZURE_AD_CONNECT}: {what}: expression {text:?}: {e}"))
}

/// A flow from a row's expression: `[attr]` alone is a direct attribute flow.
fn flow(target: &str, expr: &str, what: &str) -> Result<Flow, String> {
    let direct = expr
        .strip_prefix('[')
        .and_then(|e| e.strip_suffix(']'))
        .filter(|a| !a.contains(['[', ']', '(', '"']));
    let source = match direct {
        Some(a) => FlowSource::Attribute(AttrName::new(a)),
        None => FlowSource::Expression(compile(expr, what)?),
    };
    Ok(Flow {
        target: AttrName::new(target),
        source,
        apply_once: false,
    })
}

/// The inbound rows for some kinds, as (metaverse attribute, expression) with `{domain}`
/// filled in; direct attributes as `[name]`.
pub fn inbound_rows(kinds: Kinds, domain: Option<&str>) -> Vec<(String, String)> {
    let quoted = domain.map(|d| format!("\"{}\"", d.replace('"', "\"\"")));
    let mut out = Vec::new();
    for r in table::INBOUND.iter().filter(|r| kinds_match(r, kinds)) {
        let expr = match (&quoted, r.expr.contains("{domain}")) {
            (Some(q), true) => r.expr.replace("{domain}", q),
            (None, true) if r.expr == "{domain}" => continue,
            // Without a domain the UPN falls back to nothing rather than a made-up suffix.
            (None, true) => "[userPrincipalName]".to_string(),
            (_, false) => r.expr.to_string(),
        };
        out.push((r.mv.to_string(), expr));
    }
    for (k, names) in table::DIRECT {
        if k.has(kinds) {
            out.extend(names.iter().map(|n| (n.to_string(), format!("[{n}]"))));
        }
    }
    out
}

fn kinds_match(r: &InRow, kinds: Kinds) -> bool {
    r.kinds.has(kinds)
}

/// The metaverse attributes the rule set fills for one kind (plus directory extensions).
fn mv_attributes(kinds: Kinds, extensions: &[AttrName]) -> Vec<String> {
    let mut v: Vec<String> = inbound_rows(kinds, Some("example.com"))
        .into_iter()
        .map(|(mv, _)| mv)
        .collect();
    if extends(kinds) {
        v.extend(extensions.iter().map(|e| e.as_str().to_string()));
    }
    v
}

/// Directory extensions apply to users and groups, as in Azure AD Connect.
fn extends(kinds: Kinds) -> bool {
    kinds == Kinds::USER || kinds == Kinds::GROUP
}

/// The inbound rules for one AD-shaped source; `index` is its position among the sources.
pub fn inbound_rules(
    source: &Source,
    index: usize,
    extensions: &[AttrName],
) -> Result<Vec<InboundRule>, String> {
    let domain = source.base.as_ref().and_then(dns_domain);
    let precedence = FIRST_PRECEDENCE + 10 * u32::try_from(index).unwrap_or(u32::MAX / 20);
    let mut rules = Vec::new();
    for spec in CLASSES {
        let name = format!("In from AD - {} [{}]", spec.label, source.connector);
        let mut flows = Vec::new();
        for (mv, expr) in inbound_rows(spec.kinds, domain.as_deref()) {
            flows.push(flow(&mv, &expr, &format!("{name}, flow to {mv}"))?);
        }
        if extends(spec.kinds) {
            flows.extend(extensions.iter().map(|e| Flow {
                target: e.clone(),
                source: FlowSource::Attribute(e.clone()),
                apply_once: false,
            }));
        }
        let scope_expression = scope_expression(spec.kinds)
            .map(|e| compile(e, &format!("{name}, scope")))
            .transpose()?;
        // A person moved between forests keeps its sourceAnchor in ms-DS-ConsistencyGuid:
        // that joins first; an object seen in several forests joins on its objectGUID
        // where another forest's consistency GUID carries it.
        let join = ["mS-DS-ConsistencyGuid", "objectGUID"]
            .iter()
            .map(|cs| JoinRule {
                conditions: vec![JoinCondition {
                    cs: AttrName::new(cs),
                    mv: AttrName::new("sourceAnchorBinary"),
                }],
            })
            .collect();
        rules.push(InboundRule {
            name,
            connector: source.connector.clone(),
            object_class: spec.class.to_string(),
            scope: scope_clauses(spec.kinds),
            scope_expression,
            object_type: spec.object_type,
            join,
            project: true,
            precedence,
            flows,
        });
    }
    Ok(rules)
}

fn template(text: &str, what: &str) -> Result<DnSource, String> {
    DnTemplate::parse(text)
        .map(DnSource::Template)
        .map_err(|e| format!("rule set {AZURE_AD_CONNECT}: {what}: {e}"))
}

fn out_flows(rows: &[OutRow], what: &str) -> Result<Vec<Flow>, String> {
    rows.iter()
        .map(|r| flow(r.target, r.expr, &format!("{what}, flow to {}", r.target)))
        .collect()
}

fn not_null(attr: &str) -> ScopeClause {
    ScopeClause {
        attr: AttrName::new(attr),
        op: ScopeOp::IsNotNull,
        value: String::new(),
    }
}

/// One LDAP outbound rule before it is built.
struct LdapSpec {
    label: &'static str,
    object_type: ObjectType,
    class: &'static str,
    dn: String,
    rows: &'static [&'static [OutRow]],
    scope: Vec<ScopeClause>,
    extensions: bool,
}

/// The outbound rules for an LDAP directory with the standard schema: persons as
/// inetOrgPerson `uid=<sAMAccountName>,ou=people`, contacts as inetOrgPerson
/// `cn=<cn>,ou=contacts`, groups with members as groupOfNames `cn=<cn>,ou=groups`, devices
/// as device `cn=<cn>,ou=devices`, all under `base`. Directory extensions flow under their
/// own names to persons and groups.
pub fn ldap_outbound(
    connector: &ConnectorName,
    base: &Dn,
    extensions: &[AttrName],
) -> Result<Vec<OutboundRule>, String> {
    let ext: Vec<Flow> = extensions
        .iter()
        .map(|e| Flow {
            target: e.clone(),
            source: FlowSource::Attribute(e.clone()),
            apply_once: false,
        })
        .collect();
    let b = base.as_str();
    let specs = [
        LdapSpec {
            label: "User",
            object_type: ObjectType::Person,
            class: "inetOrgPerson",
            dn: format!("uid={{accountName}},ou=people,{b}"),
            rows: &[table::LDAP_USER, table::LDAP_PERSON],
            scope: vec![not_null("accountName")],
            extensions: true,
        },
        LdapSpec {
            label: "Contact",
            object_type: ObjectType::Contact,
            class: "inetOrgPerson",
            dn: format!("cn={{cn}},ou=contacts,{b}"),
            rows: &[table::LDAP_PERSON],
            scope: Vec::new(),
            extensions: false,
        },
        LdapSpec {
            label: "Group",
            object_type: ObjectType::Group,
            class: "groupOfNames",
            dn: format!("cn={{cn}},ou=groups,{b}"),
            rows: &[table::LDAP_GROUP],
            // groupOfNames must have a member (RFC 4519): an empty group is not created.
            scope: vec![not_null("member")],
            extensions: true,
        },
        LdapSpec {
            label: "Device",
            object_type: ObjectType::Device,
            class: "device",
            dn: format!("cn={{cn}},ou=devices,{b}"),
            rows: &[table::LDAP_DEVICE],
            scope: Vec::new(),
            extensions: false,
        },
    ];
    let mut rules = Vec::new();
    for spec in specs {
        let name = format!("Out to LDAP - {} [{connector}]", spec.label);
        let mut flows = Vec::new();
        for part in spec.rows {
            flows.extend(out_flows(part, &name)?);
        }
        if spec.extensions {
            flows.extend(ext.iter().cloned());
        }
        rules.push(OutboundRule {
            dn_template: template(&spec.dn, &name)?,
            name,
            connector: connector.clone(),
            object_type: spec.object_type,
            scope: spec.scope,
            scope_expression: None,
            provision: true,
            object_class: spec.class.to_string(),
            flows,
            deprovision: Deprovision::Delete,
        });
    }
    Ok(rules)
}

/// The outbound rules for an LDIF file: every metaverse attribute the rule set fills, under
/// its metaverse name (LDIF has no schema to respect), DNs as for LDAP under `base`.
pub fn ldif_outbound(
    connector: &ConnectorName,
    base: &Dn,
    extensions: &[AttrName],
) -> Result<Vec<OutboundRule>, String> {
    let ldap = ldap_outbound(connector, base, &[])?;
    let mut rules = Vec::new();
    for (rule, spec) in
        ldap.into_iter()
            .zip([Kinds::USER, Kinds::CONTACT, Kinds::GROUP, Kinds::DEVICE])
    {
        let flows = mv_attributes(spec, extensions)
            .iter()
            .map(|a| Flow {
                target: AttrName::new(a),
                source: FlowSource::Attribute(AttrName::new(a)),
                apply_once: false,
            })
            .collect();
        rules.push(OutboundRule {
            name: rule.name.replace("Out to LDAP", "Out to LDIF"),
            // Every group, empty or not: an LDIF file has no schema to refuse one.
            scope: if spec == Kinds::USER {
                rule.scope
            } else {
                Vec::new()
            },
            flows,
            ..rule
        });
    }
    Ok(rules)
}

/// The whole generated rule set for these sources and targets.
pub fn generate(
    sources: &[Source],
    targets: &[Target],
    extensions: &[AttrName],
) -> Result<RuleSet, String> {
    let mut set = RuleSet::default();
    for (i, s) in sources.iter().enumerate() {
        set.inbound.extend(inbound_rules(s, i, extensions)?);
    }
    for t in targets {
        set.outbound.extend(match t {
            Target::Ldap { connector, base } => ldap_outbound(connector, base, extensions)?,
            Target::Ldif { connector, base } => ldif_outbound(connector, base, extensions)?,
            Target::Scim {
                connector,
                extension_urn,
            } => scim_outbound(connector, extension_urn, extensions)?,
            Target::Graph { connector } => graph_outbound(connector)?,
        });
    }
    Ok(set)
}

/// Metaverse attribute names that a directory extension must not reuse.
pub fn reserved_attribute(name: &AttrName) -> bool {
    [Kinds::USER, Kinds::CONTACT, Kinds::GROUP, Kinds::DEVICE]
        .iter()
        .any(|k| mv_attributes(*k, &[]).iter().any(|a| name.is(a)))
}
