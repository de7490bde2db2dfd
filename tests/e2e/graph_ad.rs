//! Samba AD (the lab's `corp` forest) into the Graph double with the out-of-box rule set
//! (`rule_set = "azure-ad-connect"`): users with their sourceAnchor as onPremisesImmutableId,
//! a manager chain, a security group holding a user and a nested security group; a second
//! cycle sends nothing; a user deleted in AD is deleted in Graph and leaves its group.
//! (Samba's schema has no Exchange attributes such as extensionAttribute1-15; the LDIF e2e
//! tests and the rule set's unit tests cover those.)

use std::collections::BTreeSet;

use crate::support::lab::graph;
use crate::support::lab::samba;
use crate::support::lab::{LdapServer as _, write_secret};
use crate::support::{Must, TestDir, run};

#[test]
fn graph_ad_users_groups_and_managers_arrive_and_stay_quiet() {
    let corp = samba::corp();
    let _hold = corp.hold();
    let ou = corp.create_ou("e2e-graph");
    let user = |cn: &str, sam: &str, extra: &str| {
        format!(
            "dn: CN={cn},{ou}\nobjectClass: user\ncn: {cn}\nsAMAccountName: {sam}\n\
             userPrincipalName: {sam}@corp.example.test\nuserAccountControl: 512\n\
             givenName: {cn}\ndisplayName: {cn}\n{extra}\n"
        )
    };
    let mut l = String::new();
    l.push_str(&user("Gfay Chief", "gfay", "title: CEO\n"));
    l.push_str(&user(
        "Geve Boss",
        "geve",
        &format!("title: VP\nmanager: CN=Gfay Chief,{ou}\n"),
    ));
    l.push_str(&user(
        "Gann Seller",
        "gann",
        &format!("title: Seller\nemployeeID: E100\nmanager: CN=Geve Boss,{ou}\n"),
    ));
    l.push_str(&format!(
        "dn: CN=GLeads,{ou}\nobjectClass: group\nsAMAccountName: GLeads\ngroupType: -2147483646\n\
         member: CN=Gfay Chief,{ou}\nmember: CN=Geve Boss,{ou}\n\n\
         dn: CN=GSales,{ou}\nobjectClass: group\nsAMAccountName: GSales\ngroupType: -2147483646\n\
         member: CN=Gann Seller,{ou}\nmember: CN=GLeads,{ou}\n\n"
    ));
    corp.ldapadd(&l);

    let g = graph::start();
    let dir = TestDir::new("graph-ad");
    let secret = dir.join("client-secret");
    write_secret(&secret, &g.client_secret);
    let cfg = format!(
        "state_file = \"state.redb\"\nrule_set = \"azure-ad-connect\"\n\n\
         [[connector]]\nname = \"corp\"\ntype = \"ad\"\nurl = \"{}\"\nca_file = \"{}\"\n\
         bind_dn = \"{}\"\nbind_password_file = \"{}\"\nbase_dn = \"{}\"\ninclude_ous = [\"{ou}\"]\n\n\
         [[connector]]\nname = \"entra\"\ntype = \"graph\"\ntenant_id = \"{}\"\nclient_id = \"{}\"\n\
         client_secret_file = \"{}\"\nauthority = \"{}\"\ngraph_url = \"{}\"\nca_file = \"{}\"\n",
        corp.ldaps_url,
        corp.ca_file.display(),
        corp.bind_dn,
        corp.password_file.display(),
        corp.base_dn,
        g.tenant_id,
        g.client_id,
        secret.display(),
        g.base,
        g.graph_url(),
        g.ca_file.display()
    );
    std::fs::write(dir.config(), cfg).must("writing the config");
    let c = dir.config().display().to_string();
    let cycle = || {
        let r = run(&["cycle", "-c", &c, "--json"]);
        let json: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap_or_default();
        assert_eq!(r.code(), Some(0), "{json}\n{}", r.stderr);
        json
    };
    let json = cycle();

    let users = g.users();
    let upn = |s: &str| format!("{s}@corp.example.test");
    for s in ["gfay", "geve", "gann"] {
        let u = users.get(&upn(s)).must(&format!("{s} in Graph: {json}"));
        assert!(
            u.text("onPremisesImmutableId")
                .is_some_and(|v| !v.is_empty()),
            "{s}"
        );
        assert_eq!(u.props["accountEnabled"], serde_json::json!(true), "{s}");
    }
    assert_eq!(users[&upn("gann")].text("employeeId"), Some("E100"));
    assert_eq!(users[&upn("gann")].text("jobTitle"), Some("Seller"));
    let id = |s: &str| users[&upn(s)].id.clone();
    assert_eq!(
        users[&upn("gann")].manager,
        Some(id("geve")),
        "manager chain"
    );
    assert_eq!(
        users[&upn("geve")].manager,
        Some(id("gfay")),
        "manager chain"
    );
    assert_eq!(users[&upn("gfay")].manager, None);
    let groups = g.groups();
    let leads = groups.get("GLeads").must("GLeads in Graph");
    let sales = groups.get("GSales").must("GSales in Graph");
    assert_eq!(leads.members, BTreeSet::from([id("gfay"), id("geve")]));
    assert_eq!(
        sales.members,
        BTreeSet::from([id("gann"), leads.id.clone()]),
        "nested"
    );

    let (before, log_before) = (g.writes(), g.log().len());
    cycle();
    let sent: Vec<String> = g.log()[log_before..]
        .iter()
        .filter(|l| l.method != "GET" && !l.target.ends_with("$batch"))
        .map(|l| format!("{} {} {}", l.method, l.target, l.status))
        .collect();
    assert_eq!(g.writes(), before, "a quiet cycle wrote to Graph: {sent:?}");

    corp.ldapdelete(&format!("CN=Gann Seller,{ou}"));
    cycle();
    assert!(
        !g.users().contains_key(&upn("gann")),
        "deleted in AD, deleted in Graph"
    );
    let sales = &g.groups()["GSales"];
    assert_eq!(sales.members, BTreeSet::from([leads.id.clone()]));
}
