//! Outbound rules for a Microsoft Graph target (Entra ID): users and security groups,
//! attribute names as Graph spells them, mapped from the metaverse the way Entra Connect's
//! default rules do (ATTRIBUTES.md §5), the sourceAnchor sent as onPremisesImmutableId.

use super::table::{OutRow, out};
use super::{flow, template};
use crate::model::{ConnectorName, ObjectType};
use crate::rules::{Deprovision, OutboundRule};

/// Users: Graph property ← metaverse expression.
pub const GRAPH_USER: &[OutRow] = &[
    out("onPremisesImmutableId", "[sourceAnchor]"),
    out("userPrincipalName", "[userPrincipalName]"),
    out("accountEnabled", "[accountEnabled]"),
    out("displayName", "[displayName]"),
    out("mailNickname", "Coalesce([mailNickname], [accountName])"),
    out("givenName", "[givenName]"),
    out("surname", "[sn]"),
    out("jobTitle", "[title]"),
    out("department", "[department]"),
    out("companyName", "[company]"),
    out("employeeId", "[employeeID]"),
    out("mail", "[mail]"),
    out("mobilePhone", "[mobile]"),
    out("businessPhones", "[telephoneNumber]"),
    out("streetAddress", "[streetAddress]"),
    out("city", "[l]"),
    out("state", "[st]"),
    out("postalCode", "[postalCode]"),
    out("usageLocation", "[usageLocation]"),
    out("preferredLanguage", "[preferredLanguage]"),
    out("manager", "[manager]"),
    out("extensionAttribute1", "[extensionAttribute1]"),
    out("extensionAttribute2", "[extensionAttribute2]"),
    out("extensionAttribute3", "[extensionAttribute3]"),
    out("extensionAttribute4", "[extensionAttribute4]"),
    out("extensionAttribute5", "[extensionAttribute5]"),
    out("extensionAttribute6", "[extensionAttribute6]"),
    out("extensionAttribute7", "[extensionAttribute7]"),
    out("extensionAttribute8", "[extensionAttribute8]"),
    out("extensionAttribute9", "[extensionAttribute9]"),
    out("extensionAttribute10", "[extensionAttribute10]"),
    out("extensionAttribute11", "[extensionAttribute11]"),
    out("extensionAttribute12", "[extensionAttribute12]"),
    out("extensionAttribute13", "[extensionAttribute13]"),
    out("extensionAttribute14", "[extensionAttribute14]"),
    out("extensionAttribute15", "[extensionAttribute15]"),
];

/// Security groups. The nickname is the account name, which also names the object, so
/// that what import reads back is named as what export wrote.
pub const GRAPH_GROUP: &[OutRow] = &[
    out("displayName", "Coalesce([displayName], [cn])"),
    out("description", "[description]"),
    out("mailNickname", "[accountName]"),
    out("securityEnabled", "True"),
    out("mailEnabled", "False"),
    out("members", "[member]"),
];

/// The outbound rules for graph connector `connector`: persons with a sourceAnchor and a
/// userPrincipalName as `user` at `userPrincipalName=<upn>,ou=Users`, security groups as
/// `group` at `mailNickname=<account name>,ou=Groups`. Distribution and mail-enabled
/// security groups are left out (Graph cannot create them); contacts too (orgContact is
/// read-only in Graph). An object that leaves the metaverse is deleted.
pub fn graph_outbound(connector: &ConnectorName) -> Result<Vec<OutboundRule>, String> {
    let user_name = format!("Out to Entra ID - User [{connector}]");
    let group_name = format!("Out to Entra ID - Group [{connector}]");
    let user_scope = super::compile(
        "IsPresent([sourceAnchor]) && IsPresent([userPrincipalName])",
        &format!("{user_name}, scope"),
    )?;
    let group_scope = super::compile(
        "IsPresent([sourceAnchor]) && IsPresent([accountName]) && [securityEnabled] = True && !([mailEnabled] = True)",
        &format!("{group_name}, scope"),
    )?;
    let flows = |rows: &[OutRow], what: &str| -> Result<Vec<_>, String> {
        rows.iter()
            .map(|r| flow(r.target, r.expr, &format!("{what}, flow to {}", r.target)))
            .collect()
    };
    Ok(vec![
        OutboundRule {
            flows: flows(GRAPH_USER, &user_name)?,
            dn_template: template("userPrincipalName={userPrincipalName},ou=Users", &user_name)?,
            name: user_name,
            connector: connector.clone(),
            object_type: ObjectType::Person,
            scope: Vec::new(),
            scope_expression: Some(user_scope),
            provision: true,
            object_class: "user".to_string(),
            deprovision: Deprovision::Delete,
        },
        OutboundRule {
            flows: flows(GRAPH_GROUP, &group_name)?,
            dn_template: template("mailNickname={accountName},ou=Groups", &group_name)?,
            name: group_name,
            connector: connector.clone(),
            object_type: ObjectType::Group,
            scope: Vec::new(),
            scope_expression: Some(group_scope),
            provision: true,
            object_class: "group".to_string(),
            deprovision: Deprovision::Delete,
        },
    ])
}
