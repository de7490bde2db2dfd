//! Outbound rules for a SCIM 2.0 target: Users and Groups, attribute names as Entra ID's
//! SCIM mappings spell them, the sourceAnchor carried as externalId.

use super::table::{self, OutRow};
use super::{flow, template};
use crate::model::{AttrName, ConnectorName, ObjectType};
use crate::rules::{Deprovision, Flow, OutboundRule, ScopeClause, ScopeOp};

/// The SCIM target attribute of a table row: `{ent}` and `{urn}` filled in.
fn target_name(row: &OutRow, extension_urn: &str) -> String {
    row.target
        .replace("{ent}", table::ENTERPRISE)
        .replace("{urn}", extension_urn)
}

fn flows(
    rows: &[OutRow],
    extension_urn: &str,
    extensions: &[AttrName],
    what: &str,
) -> Result<Vec<Flow>, String> {
    let mut out = Vec::new();
    // Without an extension schema of its own, the service gets only what its standard
    // schemas hold (anything else would be refused on every object that has it).
    let has_urn = !extension_urn.is_empty();
    for r in rows {
        if !has_urn && r.target.contains("{urn}") {
            continue;
        }
        let target = target_name(r, extension_urn);
        out.push(flow(&target, r.expr, &format!("{what}, flow to {target}"))?);
    }
    // Directory extensions: `<extension_urn>:<attribute>`.
    for e in extensions.iter().filter(|_| has_urn) {
        out.push(Flow {
            target: AttrName::new(&format!("{extension_urn}:{}", e.as_str())),
            source: crate::rules::FlowSource::Attribute(e.clone()),
            apply_once: false,
        });
    }
    Ok(out)
}

/// The outbound rules for SCIM connector `connector` whose custom extension schema is
/// `extension_urn`: persons with a sourceAnchor as `User` at
/// `externalId=<sourceAnchor>,ou=Users`, security or mail-enabled groups as `Group` at
/// `externalId=<sourceAnchor>,ou=Groups`. A disabled account is sent as `active = false`;
/// an object that leaves the metaverse is deleted. Contacts and devices have no SCIM
/// resource type and are not sent.
pub fn scim_outbound(
    connector: &ConnectorName,
    extension_urn: &str,
    extensions: &[AttrName],
) -> Result<Vec<OutboundRule>, String> {
    let has_anchor = ScopeClause {
        attr: AttrName::new("sourceAnchor"),
        op: ScopeOp::IsNotNull,
        value: String::new(),
    };
    let user_name = format!("Out to SCIM - User [{connector}]");
    let group_name = format!("Out to SCIM - Group [{connector}]");
    // Azure AD Connect sends a group only when it is a security group or mail-enabled.
    let group_scope = super::compile(
        "[securityEnabled] = True || [mailEnabled] = True",
        &format!("{group_name}, scope"),
    )?;
    Ok(vec![
        OutboundRule {
            flows: flows(table::SCIM_USER, extension_urn, extensions, &user_name)?,
            dn_template: template("externalId={sourceAnchor},ou=Users", &user_name)?,
            name: user_name,
            connector: connector.clone(),
            object_type: ObjectType::Person,
            scope: vec![has_anchor.clone()],
            scope_expression: None,
            provision: true,
            object_class: "User".to_string(),
            deprovision: Deprovision::Delete,
        },
        OutboundRule {
            flows: flows(table::SCIM_GROUP, extension_urn, extensions, &group_name)?,
            dn_template: template("externalId={sourceAnchor},ou=Groups", &group_name)?,
            name: group_name,
            connector: connector.clone(),
            object_type: ObjectType::Group,
            scope: vec![has_anchor],
            scope_expression: Some(group_scope),
            provision: true,
            object_class: "Group".to_string(),
            deprovision: Deprovision::Delete,
        },
    ])
}
