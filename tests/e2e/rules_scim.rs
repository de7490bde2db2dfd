//! The out-of-box rule set into a real SCIM service (scim2-server): an AD-shaped source
//! (an `ldifde`-style export) with one config line for the rules, and the service's
//! content, read back with plain HTTP, compared with an expectation written by hand.

use base64::Engine as _;
use serde_json::{Value as Json, json};

use crate::support::lab::scim;
use crate::support::{Must, TestDir, connector_counts, cycle_json};

const ENT: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

fn guid(n: u8) -> [u8; 16] {
    [n; 16]
}

const BASE: &str = "DC=corp,DC=example,DC=test";

fn source() -> String {
    let user = |cn: &str, sam: &str, n: u8, uac: u32, extra: &str| {
        format!(
            "dn: CN={cn},OU=Staff,{BASE}\nobjectClass: top\nobjectClass: person\n\
             objectClass: organizationalPerson\nobjectClass: user\ncn: {cn}\n\
             sAMAccountName: {sam}\nobjectGUID:: {}\nuserAccountControl: {uac}\n{extra}\n",
            b64(&guid(n))
        )
    };
    let group = |cn: &str, n: u8, group_type: i64, extra: &str| {
        format!(
            "dn: CN={cn},OU=Groups,{BASE}\nobjectClass: top\nobjectClass: group\ncn: {cn}\n\
             displayName: {cn}\nsAMAccountName: {cn}\nobjectGUID:: {}\ngroupType: {group_type}\n{extra}\n",
            b64(&guid(n))
        )
    };
    let mut s = String::from("version: 1\n\n");
    s += &user(
        "Ann Archer",
        "ann",
        1,
        512,
        "userPrincipalName: ann@corp.example.test\ngivenName: Ann\nsn: Archer\n\
         displayName: Ann Archer\nmail: ann@corp.example.test\ntitle: CEO\n\
         department: Board\nemployeeID: E1\ncompany: Contoso\n\
         telephoneNumber: +47 1111\nmobile: +47 2222\nl: Oslo\nc: NO\n",
    );
    s += &user(
        "Bob Baker",
        "bob",
        2,
        514,
        &format!(
            "userPrincipalName: bob@corp.example.test\ngivenName: Bob\nsn: Baker\n\
             displayName: Bob Baker\nmanager: CN=Ann Archer,OU=Staff,{BASE}\n\
             mS-DS-ConsistencyGuid:: {}\n",
            b64(&guid(42))
        ),
    );
    s += &user(
        "Celik Cak",
        "celik",
        3,
        512,
        &format!(
            "userPrincipalName: celik@corp.example.test\ngivenName:: {}\nsn: Çak\n\
             displayName:: {}\nmanager: CN=Bob Baker,OU=Staff,{BASE}\n",
            b64("Çelik".as_bytes()),
            b64("Çelik Çak".as_bytes())
        ),
    );
    s += &user("krbtgt", "krbtgt", 4, 514, "");
    s += &user(
        "Dora Critical",
        "dora",
        5,
        512,
        "userPrincipalName: dora@corp.example.test\nisCriticalSystemObject: TRUE\n",
    );
    s += &group(
        "Staff",
        10,
        -2_147_483_646,
        &format!(
            "member: CN=Ann Archer,OU=Staff,{BASE}\nmember: CN=Bob Baker,OU=Staff,{BASE}\n\
             member: CN=Celik Cak,OU=Staff,{BASE}\n"
        ),
    );
    s += &group(
        "Leads",
        11,
        -2_147_483_646,
        &format!("member: CN=Ann Archer,OU=Staff,{BASE}\nmember: CN=Staff,OU=Groups,{BASE}\n"),
    );
    s += &group(
        "Newsletter",
        12,
        2,
        &format!("mail: news@corp.example.test\nmember: CN=Celik Cak,OU=Staff,{BASE}\n"),
    );
    s += &group("No Mail List", 13, 2, "");
    s += &format!(
        "dn: CN=Eve Extern,OU=Contacts,{BASE}\nobjectClass: top\nobjectClass: contact\n\
         cn: Eve Extern\nmail: eve@example.org\nobjectGUID:: {}\n\n",
        b64(&guid(20))
    );
    s += &format!(
        "dn: CN=PC01,OU=Computers,{BASE}\nobjectClass: top\nobjectClass: computer\n\
         cn: PC01\nsAMAccountName: PC01$\nobjectGUID:: {}\nuserAccountControl: 4096\n\n",
        b64(&guid(21))
    );
    s
}

#[test]
fn rules_scim_out_of_box_rules_provision_a_scim_service() {
    let server = scim::start();
    let dir = TestDir::new("rules-scim");
    std::fs::write(dir.join("corp.ldif"), source()).must("writing corp.ldif");
    std::fs::write(
        dir.config(),
        format!(
            "state_file = \"state.redb\"\nrule_set = \"azure-ad-connect\"\n\
             rule_set_sources = [\"corp\"]\n\n\
             [[connector]]\nname = \"corp\"\ntype = \"ldif\"\nmode = \"source\"\npath = \"corp.ldif\"\n\
             anchor = \"objectGUID\"\npartitions = [\"{BASE}\"]\n\n\
             [[connector]]\nname = \"cloud\"\ntype = \"scim\"\nurl = \"{}\"\ndanger_plaintext = true\n",
            server.url
        ),
    )
    .must("writing the config");
    let run = cycle_json(&dir.config(), true);
    let json = run.json();
    assert_eq!(run.code(), Some(0), "{json}\n{}", run.stderr);
    let counts = connector_counts(&json);
    assert_eq!(counts["cloud"].2, 0, "errors: {json}");

    let users = server.all("/Users");
    let groups = server.all("/Groups");
    let by_ext = |list: &[Json], ext: &str| -> Json {
        list.iter()
            .find(|r| r["externalId"] == ext)
            .cloned()
            .unwrap_or_else(|| panic!("no resource with externalId {ext}: {list:#?}"))
    };
    let id_of = |ext: &str| {
        by_ext(&users, ext)["id"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    // Users: the system accounts are left out; contacts and computers have no SCIM type.
    let mut names: Vec<&str> = users
        .iter()
        .filter_map(|u| u["userName"].as_str())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "ann@corp.example.test",
            "bob@corp.example.test",
            "celik@corp.example.test"
        ]
    );
    let ann = by_ext(&users, &b64(&guid(1)));
    let want_ann = json!({
        "userName": "ann@corp.example.test", "active": true, "displayName": "Ann Archer",
        "name": {"givenName": "Ann", "familyName": "Archer"},
        "emails": [{"type": "work", "value": "ann@corp.example.test"}],
        "title": "CEO", "locality": "Oslo", "country": "NO",
        "work": "+47 1111", "mobile": "+47 2222",
        "department": "Board", "employeeNumber": "E1", "organization": "Contoso",
    });
    let phone = |u: &Json, t: &str| {
        u["phoneNumbers"]
            .as_array()
            .and_then(|a| a.iter().find(|p| p["type"] == t))
            .map(|p| p["value"].clone())
            .unwrap_or(Json::Null)
    };
    let address = |u: &Json, k: &str| {
        u["addresses"]
            .as_array()
            .and_then(|a| a.iter().find(|p| p["type"] == "work"))
            .map(|p| p[k].clone())
            .unwrap_or(Json::Null)
    };
    let got_ann = json!({
        "userName": ann["userName"], "active": ann["active"], "displayName": ann["displayName"],
        "name": {"givenName": ann["name"]["givenName"], "familyName": ann["name"]["familyName"]},
        "emails": ann["emails"].as_array().map(|a| a.iter().map(|e| json!({"type": e["type"], "value": e["value"]})).collect::<Vec<_>>()),
        "title": ann["title"], "locality": address(&ann, "locality"), "country": address(&ann, "country"),
        "work": phone(&ann, "work"), "mobile": phone(&ann, "mobile"),
        "department": ann[ENT]["department"], "employeeNumber": ann[ENT]["employeeNumber"],
        "organization": ann[ENT]["organization"],
    });
    assert_eq!(got_ann, want_ann);
    // Bob: disabled, anchored on his ms-DS-ConsistencyGuid, managed by Ann.
    let bob = by_ext(&users, &b64(&guid(42)));
    assert_eq!(bob["active"], false);
    assert_eq!(bob[ENT]["manager"]["value"], json!(id_of(&b64(&guid(1)))));
    // Çelik: non-ASCII names, managed by Bob.
    let celik = by_ext(&users, &b64(&guid(3)));
    assert_eq!(celik["name"]["givenName"], "Çelik");
    assert_eq!(celik["displayName"], "Çelik Çak");
    assert_eq!(
        celik[ENT]["manager"]["value"],
        json!(id_of(&b64(&guid(42))))
    );

    // Groups: security groups and the mail-enabled list; not the list without mail.
    let mut gnames: Vec<&str> = groups
        .iter()
        .filter_map(|g| g["displayName"].as_str())
        .collect();
    gnames.sort();
    assert_eq!(gnames, ["Leads", "Newsletter", "Staff"]);
    let members = |ext: &str| {
        let mut m: Vec<String> = by_ext(&groups, ext)["members"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m["value"].as_str().map(str::to_string))
            .collect();
        m.sort();
        m
    };
    let staff_id = by_ext(&groups, &b64(&guid(10)))["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut want_staff = vec![
        id_of(&b64(&guid(1))),
        id_of(&b64(&guid(42))),
        id_of(&b64(&guid(3))),
    ];
    want_staff.sort();
    assert_eq!(members(&b64(&guid(10))), want_staff);
    let mut want_leads = vec![id_of(&b64(&guid(1))), staff_id];
    want_leads.sort();
    assert_eq!(members(&b64(&guid(11))), want_leads);
    assert_eq!(members(&b64(&guid(12))), vec![id_of(&b64(&guid(3)))]);

    // Nothing more to do on the next cycle.
    let again = cycle_json(&dir.config(), false);
    let json = again.json();
    let counts = connector_counts(&json);
    assert_eq!(counts["cloud"].1, Default::default(), "{json}");
}
