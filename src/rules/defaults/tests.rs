//! The out-of-box rules evaluated on AD-shaped objects, the SCIM generator's names, and the
//! README table kept in step with the code.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::model::{Attributes, Value, ValueSet};
use crate::rules::expr::Outcome;
use crate::rules::{ObjectView, rule_in_scope};

fn conn(n: &str) -> ConnectorName {
    ConnectorName::new(n).unwrap()
}

fn corp() -> Source {
    Source {
        connector: conn("corp"),
        base: Some(Dn::parse("DC=corp,DC=example,DC=test").unwrap()),
    }
}

fn obj(pairs: &[(&str, Vec<Value>)]) -> Attributes {
    let mut a = Attributes::new();
    for (n, vs) in pairs {
        a.set(AttrName::new(n), vs.iter().cloned().collect());
    }
    a
}

fn s(v: &str) -> Vec<Value> {
    vec![Value::str(v)]
}

const GUID: [u8; 16] = [
    0x67, 0x45, 0x23, 0x01, 0xab, 0x89, 0xef, 0xcd, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef,
];

/// The rule for `class` from the generated inbound rules.
fn inbound(class: &str, extensions: &[AttrName]) -> InboundRule {
    inbound_rules(&corp(), 0, extensions)
        .unwrap()
        .into_iter()
        .find(|r| r.object_class == class)
        .unwrap()
}

/// What a rule's flows produce on an object, as text per attribute (sets joined by "|").
fn run(flows: &[Flow], attrs: &Attributes) -> Vec<(String, String)> {
    let view = ObjectView { attrs, dn: None };
    let mut out = Vec::new();
    for f in flows {
        let vs: ValueSet = match &f.source {
            FlowSource::Attribute(a) => attrs.get(a.key()).cloned().unwrap_or_default(),
            FlowSource::Expression(e) => match e.eval(&view, 0) {
                Outcome::Values(v) => v,
                other => panic!("{}: {other:?}", f.target),
            },
            other => panic!("unexpected source {other:?}"),
        };
        if !vs.is_empty() {
            let text: Vec<String> = vs.iter().map(Value::to_text).collect();
            out.push((f.target.as_str().to_string(), text.join("|")));
        }
    }
    out
}

fn get<'a>(out: &'a [(String, String)], attr: &str) -> Option<&'a str> {
    out.iter()
        .find(|(a, _)| a.eq_ignore_ascii_case(attr))
        .map(|(_, v)| v.as_str())
}

fn in_scope(rule: &InboundRule, attrs: &Attributes) -> bool {
    rule_in_scope(&rule.scope, rule.scope_expression.as_ref(), attrs, None, 0)
}

#[test]
fn every_generated_rule_compiles_and_is_uniquely_named() {
    let sources = [
        corp(),
        Source {
            connector: conn("fabrikam"),
            base: None,
        },
    ];
    let targets = [
        Target::Ldap {
            connector: conn("openldap"),
            base: Dn::parse("dc=example,dc=test").unwrap(),
        },
        Target::Ldif {
            connector: conn("file"),
            base: Dn::parse("o=export").unwrap(),
        },
        Target::Scim {
            connector: conn("cloud"),
            extension_urn: "urn:x:2.0:User".into(),
        },
        Target::Graph {
            connector: conn("entra"),
        },
    ];
    let set = generate(&sources, &targets, &[AttrName::new("employeeType")]).unwrap();
    assert_eq!(set.inbound.len(), 2 * 5);
    assert_eq!(set.outbound.len(), 4 + 4 + 2 + 2);
    let mut names: Vec<&str> = set.inbound.iter().map(|r| r.name.as_str()).collect();
    names.extend(set.outbound.iter().map(|r| r.name.as_str()));
    let n = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), n, "rule names are unique");
    // The second source's rules lose to the first's, and both to an admin's below 100.
    assert_eq!(set.inbound[0].precedence, 100);
    assert_eq!(set.inbound[5].precedence, 110);
    // Without a domain the UPN has no made-up suffix.
    let fab_user = &set.inbound[5];
    let upn = fab_user
        .flows
        .iter()
        .find(|f| f.target.is("userPrincipalName"))
        .unwrap();
    assert_eq!(
        upn.source,
        FlowSource::Attribute(AttrName::new("userPrincipalName"))
    );
}

#[test]
fn user_flows_follow_azure_ad_connect() {
    let rule = inbound("user", &[AttrName::new("employeeType")]);
    assert_eq!(rule.object_type, ObjectType::Person);
    // Disabled, with a consistency GUID, non-ASCII and padded values, duplicate proxies,
    // no UPN and no displayName.
    let user = obj(&[
        ("objectGUID", vec![Value::Binary(GUID.to_vec())]),
        (
            "mS-DS-ConsistencyGuid",
            vec![Value::Binary(vec![0x11, 0x22, 0x33, 0x44])],
        ),
        ("cn", s("Zoë Ångström")),
        ("displayName", s("")),
        ("givenName", s("  Zoë ")),
        ("sn", s("Ångström")),
        ("sAMAccountName", s("zoe")),
        ("userAccountControl", s("514")),
        (
            "proxyAddresses",
            vec![
                Value::str("SMTP:zoe@corp.example.test"),
                Value::str(" SMTP:zoe@corp.example.test"),
                Value::str("smtp:z@corp.example.test"),
            ],
        ),
        ("extensionAttribute7", s("cost-7")),
        ("employeeType", s("contractor")),
        ("c", s("SE")),
        ("department", s("Försäljning")),
    ]);
    let out = run(&rule.flows, &user);
    assert_eq!(get(&out, "sourceAnchor"), Some("ESIzRA=="));
    assert_eq!(
        get(&out, "userPrincipalName"),
        Some("zoe@corp.example.test")
    );
    assert_eq!(
        get(&out, "displayName"),
        Some("Zoë Ångström"),
        "cn fills in"
    );
    assert_eq!(get(&out, "givenName"), Some("Zoë"));
    assert_eq!(get(&out, "accountEnabled"), Some("FALSE"));
    assert_eq!(
        get(&out, "proxyAddresses"),
        Some("SMTP:zoe@corp.example.test|smtp:z@corp.example.test"),
        "trimmed, duplicates removed"
    );
    assert_eq!(get(&out, "extensionAttribute7"), Some("cost-7"));
    assert_eq!(get(&out, "employeeType"), Some("contractor"));
    assert_eq!(get(&out, "usageLocation"), Some("SE"));
    assert_eq!(get(&out, "department"), Some("Försäljning"));
    assert_eq!(get(&out, "accountName"), Some("zoe"));
    assert_eq!(get(&out, "domainFQDN"), Some("corp.example.test"));
    assert_eq!(get(&out, "mail"), None, "no mail, no value");

    // Enabled, objectGUID as the anchor, a UPN of its own.
    let user = obj(&[
        ("objectGUID", vec![Value::Binary(GUID.to_vec())]),
        ("cn", s("Ann")),
        ("displayName", s("Ann Smith")),
        ("userPrincipalName", s("ann@example.com")),
        ("userAccountControl", s("512")),
    ]);
    let out = run(&rule.flows, &user);
    assert_eq!(get(&out, "sourceAnchor"), Some("Z0UjAauJ780BI0VniavN7w=="));
    assert_eq!(get(&out, "userPrincipalName"), Some("ann@example.com"));
    assert_eq!(get(&out, "displayName"), Some("Ann Smith"));
    assert_eq!(get(&out, "accountEnabled"), Some("TRUE"));

    // Neither UPN nor sAMAccountName: Azure AD Connect's error quarantines the object.
    let view_attrs = obj(&[("cn", s("x"))]);
    let upn = rule
        .flows
        .iter()
        .find(|f| f.target.is("userPrincipalName"))
        .unwrap();
    let FlowSource::Expression(e) = &upn.source else {
        panic!("UPN is an expression")
    };
    assert_eq!(
        e.eval(
            &ObjectView {
                attrs: &view_attrs,
                dn: None
            },
            0
        ),
        Outcome::Error("AccountName is not present".into())
    );
}

#[test]
fn scoping_leaves_out_system_objects() {
    let rule = inbound("user", &[]);
    let base = |extra: &[(&str, Vec<Value>)]| {
        let mut v = vec![("sAMAccountName", s("ann")), ("cn", s("Ann"))];
        v.extend(extra.iter().cloned());
        obj(&v)
    };
    assert!(in_scope(&rule, &base(&[])));
    assert!(in_scope(
        &rule,
        &base(&[("isCriticalSystemObject", s("FALSE"))])
    ));
    for (attr, value) in [
        ("isCriticalSystemObject", "TRUE"),
        ("sAMAccountName", "MSOL_0123456789ab"),
        ("sAMAccountName", "AAD_0123456789ab"),
        ("sAMAccountName", "SUPPORT_388945a0"),
        ("sAMAccountName", "krbtgt"),
        ("sAMAccountName", "CAS_{1234}"),
        ("adminDescription", "User_written-back"),
        ("mailNickname", "SystemMailbox{1f05a927}"),
        ("mailNickname", "CAS_{abc}"),
        ("msExchRecipientTypeDetails", "8388608"),
    ] {
        assert!(
            !in_scope(&rule, &base(&[(attr, s(value))])),
            "{attr} = {value} is out of scope"
        );
    }
    // CAS_ without a brace is an ordinary name.
    assert!(in_scope(&rule, &base(&[("mailNickname", s("CAS_team"))])));

    let contact = inbound("contact", &[]);
    assert!(!in_scope(&contact, &obj(&[("cn", s("No Mail"))])));
    assert!(in_scope(
        &contact,
        &obj(&[("cn", s("P")), ("mail", s("p@partner.test"))])
    ));
    assert!(in_scope(
        &contact,
        &obj(&[("cn", s("P")), ("proxyAddresses", s("SMTP:p@partner.test"))])
    ));
    let group = inbound("group", &[]);
    assert!(!in_scope(
        &group,
        &obj(&[
            ("cn", s("Domain Admins")),
            ("isCriticalSystemObject", s("TRUE"))
        ])
    ));
    assert!(!in_scope(
        &group,
        &obj(&[("cn", s("G")), ("adminDescription", s("Group_abc"))])
    ));
    let computer = inbound("computer", &[]);
    assert_eq!(computer.object_type, ObjectType::Device);
    assert!(!in_scope(
        &computer,
        &obj(&[("cn", s("DC1")), ("isCriticalSystemObject", s("TRUE"))])
    ));
}

#[test]
fn group_type_gives_security_mail_and_scope() {
    let rule = inbound("group", &[]);
    let cases = [
        // global security, no mail
        ("-2147483646", false, "TRUE", "FALSE", Some("Global")),
        // domain-local security
        ("-2147483644", false, "TRUE", "FALSE", Some("DomainLocal")),
        // universal distribution with mail
        ("8", true, "FALSE", "TRUE", Some("Universal")),
        // universal security, mail-enabled
        ("-2147483640", true, "TRUE", "TRUE", Some("Universal")),
    ];
    for (gt, mail, sec, mail_enabled, scope) in cases {
        let mut pairs = vec![("cn", s("G")), ("groupType", s(gt))];
        if mail {
            pairs.push(("mail", s("g@corp.example.test")));
        }
        let out = run(&rule.flows, &obj(&pairs));
        assert_eq!(get(&out, "securityEnabled"), Some(sec), "groupType {gt}");
        assert_eq!(
            get(&out, "mailEnabled"),
            Some(mail_enabled),
            "groupType {gt}"
        );
        assert_eq!(get(&out, "groupScope"), scope, "groupType {gt}");
        assert_eq!(get(&out, "displayName"), Some("G"));
    }
}

#[test]
fn computers_become_devices() {
    let rule = inbound("computer", &[]);
    let sid = {
        let mut b = vec![1, 5, 0, 0, 0, 0, 0, 5];
        for sub in [21u32, 1, 2, 3, 1104] {
            b.extend(sub.to_le_bytes());
        }
        b
    };
    let out = run(
        &rule.flows,
        &obj(&[
            ("cn", s("WS01")),
            ("objectGUID", vec![Value::Binary(GUID.to_vec())]),
            ("objectSid", vec![Value::Binary(sid)]),
            ("operatingSystem", s("Windows 11 Enterprise")),
            ("operatingSystemVersion", s("10.0 (22631)")),
            ("userAccountControl", s("4096")),
        ]),
    );
    assert_eq!(
        get(&out, "deviceId"),
        Some("01234567-89ab-cdef-0123-456789abcdef")
    );
    assert_eq!(get(&out, "displayName"), Some("WS01"));
    assert_eq!(get(&out, "deviceOSType"), Some("Windows 11 Enterprise"));
    assert_eq!(get(&out, "deviceTrustType"), Some("ServerAd"));
    assert_eq!(get(&out, "accountEnabled"), Some("TRUE"));
    assert_eq!(
        get(&out, "onPremisesSecurityIdentifier"),
        Some("S-1-5-21-1-2-3-1104")
    );
}

#[test]
fn scim_generator_uses_the_convention_names() {
    let urn = "urn:ietf:params:scim:schemas:extension:bridgehead:2.0:User";
    let rules = scim_outbound(&conn("cloud"), urn, &[AttrName::new("employeeType")]).unwrap();
    let [user, group] = rules.as_slice() else {
        panic!("two rules: {rules:?}")
    };
    assert_eq!(
        (user.object_type, user.object_class.as_str()),
        (ObjectType::Person, "User")
    );
    assert_eq!(
        (group.object_type, group.object_class.as_str()),
        (ObjectType::Group, "Group")
    );
    let mut mv = Attributes::new();
    for (a, v) in [
        ("sourceAnchor", Value::str("ESIzRA==")),
        ("userPrincipalName", Value::str("zoe@corp.example.test")),
        ("accountEnabled", Value::Boolean(false)),
        ("givenName", Value::str("Zoë")),
        ("sn", Value::str("Ångström")),
        ("mail", Value::str("zoe@corp.example.test")),
        ("mobile", Value::str("+46 70 000")),
        ("l", Value::str("Malmö")),
        ("employeeID", Value::str("E1")),
        ("extensionAttribute15", Value::str("x15")),
        ("employeeType", Value::str("contractor")),
        ("proxyAddresses", Value::str("SMTP:zoe@corp.example.test")),
    ] {
        mv.add(&AttrName::new(a), v);
    }
    let dn = user.dn_template.render(&mv, 0).unwrap();
    assert_eq!(dn.as_str(), "externalId=ESIzRA\\=\\=,ou=Users");
    let out = run(&user.flows, &mv);
    let ent = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    let want = [
        ("externalId", "ESIzRA=="),
        ("userName", "zoe@corp.example.test"),
        ("active", "FALSE"),
        ("name.givenName", "Zoë"),
        ("name.familyName", "Ångström"),
        ("name.formatted", "Zoë Ångström"),
        ("emails[type eq \"work\"].value", "zoe@corp.example.test"),
        ("phoneNumbers[type eq \"mobile\"].value", "+46 70 000"),
        ("addresses[type eq \"work\"].locality", "Malmö"),
        (&format!("{ent}:employeeNumber"), "E1"),
        (&format!("{urn}:extensionAttribute15"), "x15"),
        (&format!("{urn}:employeeType"), "contractor"),
        (
            &format!("{urn}:proxyAddresses"),
            "SMTP:zoe@corp.example.test",
        ),
    ];
    for (attr, value) in want {
        assert_eq!(get(&out, attr), Some(value), "{attr}: {out:?}");
    }
    assert_eq!(out.len(), want.len(), "nothing else flows: {out:?}");
    assert!(
        user.flows
            .iter()
            .any(|f| f.target.as_str() == format!("{ent}:manager")),
        "manager flows as a reference"
    );
    let targets: Vec<&str> = group.flows.iter().map(|f| f.target.as_str()).collect();
    assert_eq!(
        targets,
        [
            "externalId",
            "displayName",
            "members",
            &format!("{urn}:employeeType")
        ]
    );
    // A distribution group without mail is not sent; a security group is.
    let mut g = Attributes::new();
    g.add(&AttrName::new("sourceAnchor"), Value::str("AAAA"));
    g.add(&AttrName::new("securityEnabled"), Value::Boolean(false));
    g.add(&AttrName::new("mailEnabled"), Value::Boolean(false));
    let scoped =
        |g: &Attributes| rule_in_scope(&group.scope, group.scope_expression.as_ref(), g, None, 0);
    assert!(!scoped(&g));
    g.set(
        AttrName::new("securityEnabled"),
        ValueSet::one(Value::Boolean(true)),
    );
    assert!(scoped(&g));
    assert_eq!(
        group.dn_template.render(&g, 0).unwrap().as_str(),
        "externalId=AAAA,ou=Groups"
    );
}

#[test]
fn ldap_generator_writes_standard_schema_names() {
    let rules = ldap_outbound(
        &conn("openldap"),
        &Dn::parse("dc=example,dc=test").unwrap(),
        &[],
    )
    .unwrap();
    let user = &rules[0];
    let mut mv = Attributes::new();
    for (a, v) in [
        ("accountName", "zoe"),
        ("cn", "Zoë Ångström"),
        ("displayName", "Zoë Ångström"),
        ("department", "Sales"),
        ("company", "Corp"),
        ("employeeID", "E1"),
        ("streetAddress", "Storgatan 1"),
    ] {
        mv.add(&AttrName::new(a), Value::str(v));
    }
    assert_eq!(
        user.dn_template.render(&mv, 0).unwrap().as_str(),
        "uid=zoe,ou=people,dc=example,dc=test"
    );
    let out = run(&user.flows, &mv);
    assert_eq!(get(&out, "uid"), Some("zoe"));
    assert_eq!(get(&out, "sn"), Some("Zoë Ångström"), "sn is required");
    assert_eq!(get(&out, "departmentNumber"), Some("Sales"));
    assert_eq!(get(&out, "o"), Some("Corp"));
    assert_eq!(get(&out, "employeeNumber"), Some("E1"));
    assert_eq!(get(&out, "street"), Some("Storgatan 1"));
    let group = &rules[2];
    let mut g = Attributes::new();
    g.add(&AttrName::new("cn"), Value::str("Team"));
    g.add(&AttrName::new("securityEnabled"), Value::Boolean(true));
    g.add(&AttrName::new("groupScope"), Value::str("Global"));
    assert_eq!(
        get(&run(&group.flows, &g), "businessCategory"),
        Some("Security Global")
    );
}

#[test]
fn extensions_may_not_shadow_rule_set_attributes() {
    assert!(reserved_attribute(&AttrName::new("department")));
    assert!(reserved_attribute(&AttrName::new("extensionattribute3")));
    assert!(!reserved_attribute(&AttrName::new("employeeType")));
}

#[test]
fn readme_table_matches_the_code() {
    let readme = include_str!("../../../README.md");
    let start = "<!-- rule-set-table:start -->\n";
    let end = "<!-- rule-set-table:end -->";
    let (Some(a), Some(b)) = (readme.find(start), readme.find(end)) else {
        panic!("README.md lacks the {start:?} … {end:?} markers");
    };
    let found = &readme[a + start.len()..b];
    let want = readme_tables();
    if found != want {
        // Print the generated table so that it can be pasted in.
        println!("{want}");
        panic!("README.md's rule-set table differs from the code; the current one is above");
    }
}
