//! The out-of-box rule set (`rule_set = "azure-ad-connect"`, one line) syncing a real Samba
//! AD forest into a real OpenLDAP directory and an LDIF file. The expectation for about a
//! dozen objects is written out by hand: enabled and disabled users, a consistency GUID,
//! proxy addresses and an extension attribute, a manager chain, security, distribution,
//! nested and empty groups, contacts with and without mail, a computer as a device, and
//! system objects the scoping leaves out. `preview` for one user prints the decisions and
//! values the real sync then makes. (Samba's schema has no Exchange attributes such as
//! mailNickname or extensionAttribute1-15; the unit tests of the rule set cover those.)

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::support::lab::samba::{self, Forest};
use crate::support::lab::slapd::{self, Slapd, SlapdOptions};
use crate::support::lab::{LdapServer, Scope};
use crate::support::{LdifEntry, Must, TestDir, norm_dn, read_ldif, run};

/// The config; without `rule_set` it only imports (no rules at all).
fn config(dir: &TestDir, f: &Forest, ou: &str, t: &Slapd, rule_set: bool) -> PathBuf {
    let top = if rule_set {
        "rule_set = \"azure-ad-connect\"\ndirectory_extensions = [\"employeeType\"]\n"
    } else {
        ""
    };
    // The admin's own rules override two default flows: one inbound by precedence, one
    // outbound by coming first.
    let overrides = if rule_set {
        format!(
            r#"
[[inbound]]
name = "corp: display name as Last, First"
connector = "corp"
object_class = "user"
object_type = "person"
precedence = 50
project = false
flows = [ {{ target = "displayName", expression = "IIF(IsPresent([givenName]), [sn] & \", \" & [givenName], IgnoreThisFlow)" }} ]

[[outbound]]
name = "openldap: titles in capitals"
connector = "openldap"
object_type = "person"
object_class = "inetOrgPerson"
dn = "uid={{accountName}},ou=people,{tbase}"
flows = [ {{ target = "title", expression = "UCase([title])" }} ]
"#,
            tbase = t.base_dn
        )
    } else {
        String::new()
    };
    let text = format!(
        r#"state_file = "state.redb"
{top}
[[connector]]
name = "corp"
type = "ad"
url = "{url}"
ca_file = "{ca}"
bind_dn = "{bind}"
bind_password_file = "{pw}"
base_dn = "{base}"
include_ous = ["{ou}", "CN=Administrator,CN=Users,{base}", "CN=Domain Admins,CN=Users,{base}"]

[[connector]]
name = "openldap"
type = "ldap"
url = "{turl}"
starttls = true
ca_file = "{tca}"
bind_dn = "{tbind}"
bind_password_file = "{tpw}"
base_dn = "{tbase}"

[[connector]]
name = "export"
type = "ldif"
mode = "target"
path = "export.ldif"
anchor = "entryUUID"
partitions = ["o=export"]
{overrides}"#,
        url = f.ldaps_url,
        ca = f.ca_file.display(),
        bind = f.bind_dn,
        pw = f.password_file.display(),
        base = f.base_dn,
        turl = t.ldap_url,
        tca = t.ca_file.display(),
        tbind = t.bind_dn,
        tpw = t.password_file.display(),
        tbase = t.base_dn,
    );
    let path = dir.join(if rule_set {
        "rules.toml"
    } else {
        "import.toml"
    });
    std::fs::write(&path, text).must("writing the config");
    path
}

/// The AD objects of the test, in the test's own OU.
fn fixture(ou: &str) -> String {
    let user = |cn: &str, sam: &str, uac: u32, extra: &str| {
        format!(
            "dn: CN={cn},{ou}\nobjectClass: user\ncn: {cn}\nsAMAccountName: {sam}\n\
             userAccountControl: {uac}\n{extra}\n"
        )
    };
    let mut l = String::new();
    l.push_str(&user(
        "Fay Chief",
        "fay",
        512,
        "givenName: Fay\nsn: Chief\ndisplayName: Fay Chief\ntitle: CEO\n",
    ));
    l.push_str(&user(
        "Eve Boss",
        "eve",
        512,
        &format!(
            "givenName: Eve\nsn: Boss\ndisplayName: Eve Boss\ntitle: VP Sales\n\
             manager: CN=Fay Chief,{ou}\n"
        ),
    ));
    l.push_str(&user(
        "Ann Enabled",
        "ann",
        512,
        &format!(
            "givenName: Ann\nsn: Enabled\ndisplayName: Ann Enabled\n\
             userPrincipalName: ann.enabled@corp.example.test\nmail: ann@corp.example.test\n\
             title: Seller\ndepartment: Sales\ncompany: Corp AB\nemployeeID: E100\n\
             telephoneNumber: +46 40 123\nstreetAddress: Storgatan 1\nl: Malmö\n\
             postalCode: 211 22\nemployeeType: contractor\nmanager: CN=Eve Boss,{ou}\n"
        ),
    ));
    l.push_str(&user(
        "Bob Disabled",
        "bob",
        514,
        "givenName: Bob\nsn: Disabled\nmail: bob-disabled@corp.example.test\n",
    ));
    // Moved from another forest: the consistency GUID carries its sourceAnchor.
    l.push_str(&user(
        "Cid Moved",
        "cid",
        512,
        "sn: Moved\nmS-DS-ConsistencyGuid:: ESIzRFVmd4iZqrvM3e7/AA==\n",
    ));
    l.push_str(&user(
        "Dee Mailbox",
        "dee",
        512,
        "sn: Mailbox\ndisplayName: Dee Mailbox\nmail: dee@corp.example.test\n\
         proxyAddresses: SMTP:dee@corp.example.test\nproxyAddresses: smtp:dee@old.example.test\n",
    ));
    // Azure AD Connect's own service account: left out by scoping.
    l.push_str(&user(
        "MSOL_0a1b2c3d4e5f",
        "MSOL_0a1b2c3d4e5f",
        512,
        "sn: Sync\n",
    ));
    let group = |cn: &str, gt: i64, extra: &str| {
        format!(
            "dn: CN={cn},{ou}\nobjectClass: group\ncn: {cn}\nsAMAccountName: {sam}\n\
             groupType: {gt}\n{extra}\n",
            sam = cn.replace(' ', "-").to_lowercase()
        )
    };
    l.push_str(&group(
        "Sec Team",
        -2147483646,
        &format!("member: CN=Ann Enabled,{ou}\nmember: CN=Bob Disabled,{ou}\n"),
    ));
    l.push_str(&group(
        "Dist List",
        8,
        &format!("mail: dist@corp.example.test\nmember: CN=Dee Mailbox,{ou}\n"),
    ));
    l.push_str(&group(
        "All Staff",
        -2147483640,
        &format!("member: CN=Sec Team,{ou}\nmember: CN=Eve Boss,{ou}\n"),
    ));
    l.push_str(&group("Empty Group", -2147483646, ""));
    l.push_str(&format!(
        "dn: CN=Partner Pat,{ou}\nobjectClass: contact\ncn: Partner Pat\nsn: Pat\n\
         displayName: Partner Pat\nmail: pat@partner.example\n\
         proxyAddresses: SMTP:pat@partner.example\n\n"
    ));
    l.push_str(&format!(
        "dn: CN=No Mail,{ou}\nobjectClass: contact\ncn: No Mail\nsn: Mail\n\n"
    ));
    l.push_str(&format!(
        "dn: CN=WS01,{ou}\nobjectClass: computer\ncn: WS01\nsAMAccountName: WS01$\n\
         userAccountControl: 4096\noperatingSystem: Windows 11 Enterprise\n\
         operatingSystemVersion: 10.0 (22631)\ndNSHostName: ws01.corp.example.test\n\n"
    ));
    l
}

/// Attribute → sorted values (names lower-cased), of one LDAP or LDIF entry; binary
/// values in base64, as Bridgehead prints them.
fn attrs(e: &LdifEntry) -> BTreeMap<String, Vec<String>> {
    use base64::Engine as _;
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in &e.attrs {
        let text = match std::str::from_utf8(&v.bytes) {
            Ok(t) => t.to_string(),
            Err(_) => base64::engine::general_purpose::STANDARD.encode(&v.bytes),
        };
        m.entry(k.to_ascii_lowercase()).or_default().push(text);
    }
    for v in m.values_mut() {
        v.sort();
    }
    m
}

fn want(pairs: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
    pairs
        .iter()
        .map(|(k, v)| {
            let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
            v.sort();
            (k.to_ascii_lowercase(), v)
        })
        .collect()
}

/// Asserts that `entry` has exactly these values for these attributes.
fn assert_has(what: &str, entry: Option<&LdifEntry>, pairs: &[(&str, &[&str])]) {
    let e = entry.unwrap_or_else(|| panic!("{what} is missing"));
    let have = attrs(e);
    for (k, v) in want(pairs) {
        assert_eq!(have.get(&k), Some(&v), "{what}: {k} in {have:?}");
    }
}

fn slapd_entries(t: &Slapd) -> BTreeMap<String, LdifEntry> {
    t.ldapsearch(&t.base_dn, Scope::Sub, "(objectClass=*)", &["*"])
        .into_iter()
        .map(|e| (norm_dn(&e.dn), e))
        .collect()
}

fn ldif_entries(path: &Path) -> BTreeMap<String, LdifEntry> {
    read_ldif(path)
        .into_iter()
        .map(|e| (norm_dn(&e.dn), e))
        .collect()
}

/// The MV attribute lines (`    name: values  [connector / rule]`) of the first object in
/// `search` or `preview` output.
fn mv_lines(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text
        .lines()
        .skip_while(|l| !l.starts_with("    ") || l.starts_with("    replace"))
        .take_while(|l| l.starts_with("    ") && !l.trim_start().starts_with("replace "))
        .map(str::to_string)
        .collect();
    v.sort();
    v
}

#[test]
fn rules_ad_out_of_box_rule_set_to_openldap_and_ldif() {
    let corp = samba::corp();
    let _hold = corp.hold();
    let target = slapd::start(SlapdOptions::default());
    for ou in ["contacts", "devices"] {
        target.ldapadd(&format!(
            "dn: ou={ou},{}\nobjectClass: organizationalUnit\nou: {ou}\n",
            target.base_dn
        ));
    }
    let ou = corp.create_ou("e2e-rule-set");
    corp.ldapadd(&fixture(&ou));

    let dir = TestDir::new("rules-ad");
    let import = config(&dir, corp, &ou, &target, false);
    let rules = config(&dir, corp, &ou, &target, true);
    let c = |p: &Path| p.display().to_string();

    // Import only (no rules yet); then preview one user under the rule set.
    crate::support::cycle_json(&import, false).ok();
    let bob_dn = format!("CN=Bob Disabled,{ou}");
    let preview = run(&[
        "preview",
        "-c",
        &c(&rules),
        "--connector",
        "corp",
        "--dn",
        &bob_dn,
    ]);
    preview.ok();
    let p = &preview.stdout;
    assert!(
        p.contains("  rule \"In from AD - User [corp]\": in scope"),
        "{p}"
    );
    assert!(
        p.contains("  decision: projects a new metaverse object"),
        "{p}"
    );
    assert!(
        p.contains("    accountEnabled: FALSE  [corp / In from AD - User [corp]]"),
        "{p}"
    );
    assert!(
        p.contains("    displayName: Disabled, Bob  [corp / corp: display name as Last, First]"),
        "the admin's rule wins by precedence: {p}"
    );
    assert!(
        p.contains(
            "    userPrincipalName: bob@corp.example.test  [corp / In from AD - User [corp]]"
        ),
        "the UPN falls back to sAMAccountName@domain: {p}"
    );
    let ldap_bob = format!("uid=bob,ou=people,{}", target.base_dn);
    assert!(
        p.contains(&format!("  export to openldap: Add {ldap_bob}")),
        "{p}"
    );
    assert!(
        p.contains("  export to export: Add uid=bob,ou=people,o=export"),
        "{p}"
    );
    let preview_mv = mv_lines(p);
    assert!(preview_mv.len() > 8, "{preview_mv:?}");
    // The preview's replace lines per target, to compare with what arrives.
    let mut preview_exports: BTreeMap<String, Vec<(String, Vec<String>)>> = BTreeMap::new();
    let mut current = String::new();
    for l in p.lines() {
        if let Some(rest) = l.strip_prefix("  export to ") {
            current = rest.split(':').next().unwrap_or_default().to_string();
        } else if let Some(r) = l.trim_start().strip_prefix("replace ") {
            let (attr, vals) = r.split_once(": ").must("a replace line");
            let mut vals: Vec<String> = vals.split("; ").map(str::to_string).collect();
            vals.sort();
            preview_exports
                .entry(current.clone())
                .or_default()
                .push((attr.to_ascii_lowercase(), vals));
        }
    }
    let excluded = run(&[
        "preview",
        "-c",
        &c(&rules),
        "--connector",
        "corp",
        "--dn",
        &format!("CN=MSOL_0a1b2c3d4e5f,{ou}"),
    ]);
    excluded.ok();
    assert!(
        excluded.stdout.contains("decision: stays a disconnector")
            && excluded.stdout.contains("exports: none"),
        "{}",
        excluded.stdout
    );

    // The real sync, with the rule set.
    crate::support::cycle_json(&rules, true).ok();
    let found = run(&["search", "-c", &c(&rules), "bob-disabled@corp.example.test"]);
    found.ok();
    assert_eq!(
        mv_lines(&found.stdout),
        preview_mv,
        "preview's metaverse values are the sync's"
    );

    let ldap = slapd_entries(&target);
    let base = &target.base_dn;
    let at = |rdn: &str| norm_dn(&format!("{rdn},{base}"));
    for (attr, vals) in &preview_exports["openldap"] {
        let e = ldap.get(&norm_dn(&ldap_bob)).must("bob in OpenLDAP");
        assert_eq!(attrs(e).get(attr), Some(vals), "preview said {attr}");
    }
    // Users: the standard inetOrgPerson names; the extension under its own name.
    assert_has(
        "ann",
        ldap.get(&at("uid=ann,ou=people")),
        &[
            ("objectClass", &["inetOrgPerson"]),
            ("cn", &["Ann Enabled"]),
            ("displayName", &["Enabled, Ann"]),
            ("sn", &["Enabled"]),
            ("givenName", &["Ann"]),
            ("mail", &["ann@corp.example.test"]),
            ("title", &["SELLER"]),
            ("departmentNumber", &["Sales"]),
            ("o", &["Corp AB"]),
            ("employeeNumber", &["E100"]),
            ("telephoneNumber", &["+46 40 123"]),
            ("street", &["Storgatan 1"]),
            ("l", &["Malmö"]),
            ("postalCode", &["211 22"]),
            ("employeeType", &["contractor"]),
            ("manager", &[&format!("uid=eve,ou=people,{base}")]),
        ],
    );
    assert_has(
        "eve",
        ldap.get(&at("uid=eve,ou=people")),
        &[("manager", &[&format!("uid=fay,ou=people,{base}")])],
    );
    assert_has(
        "bob",
        ldap.get(&at("uid=bob,ou=people")),
        &[("sn", &["Disabled"]), ("cn", &["Bob Disabled"])],
    );
    // No sn in AD: the displayName (here the cn) fills the required one.
    assert_has(
        "cid",
        ldap.get(&at("uid=cid,ou=people")),
        &[("sn", &["Moved"])],
    );
    assert_has(
        "dee",
        ldap.get(&at("uid=dee,ou=people")),
        &[("mail", &["dee@corp.example.test"])],
    );
    // Groups: members as DNs, nested groups as groups, the type in businessCategory.
    assert_has(
        "Sec Team",
        ldap.get(&at("cn=Sec Team,ou=groups")),
        &[
            (
                "member",
                &[
                    &format!("uid=ann,ou=people,{base}"),
                    &format!("uid=bob,ou=people,{base}"),
                ],
            ),
            ("businessCategory", &["Security Global"]),
        ],
    );
    assert_has(
        "Dist List",
        ldap.get(&at("cn=Dist List,ou=groups")),
        &[
            ("member", &[&format!("uid=dee,ou=people,{base}")]),
            ("businessCategory", &["Distribution Universal"]),
        ],
    );
    assert_has(
        "All Staff",
        ldap.get(&at("cn=All Staff,ou=groups")),
        &[
            (
                "member",
                &[
                    &format!("cn=Sec Team,ou=groups,{base}"),
                    &format!("uid=eve,ou=people,{base}"),
                ],
            ),
            ("businessCategory", &["Security Universal"]),
        ],
    );
    assert_has(
        "Partner Pat",
        ldap.get(&at("cn=Partner Pat,ou=contacts")),
        &[("mail", &["pat@partner.example"]), ("sn", &["Pat"])],
    );
    assert_has(
        "WS01",
        ldap.get(&at("cn=WS01,ou=devices")),
        &[
            ("objectClass", &["device"]),
            ("description", &["Windows 11 Enterprise 10.0 (22631)"]),
        ],
    );
    // Left out: an empty group (groupOfNames needs a member), a contact without mail,
    // the sync account, and the critical system objects.
    for rdn in [
        "cn=Empty Group,ou=groups",
        "cn=No Mail,ou=contacts",
        "uid=MSOL_0a1b2c3d4e5f,ou=people",
        "uid=Administrator,ou=people",
        "cn=Domain Admins,ou=groups",
    ] {
        assert!(!ldap.contains_key(&at(rdn)), "{rdn} must not be synced");
    }
    let people = ldap
        .keys()
        .filter(|k| k.ends_with(&norm_dn(&format!("ou=people,{base}"))) && k.starts_with("uid="))
        .count();
    assert_eq!(people, 6, "fay, eve, ann, bob, cid, dee: {:?}", ldap.keys());

    // The LDIF file holds the metaverse as it is.
    let file = ldif_entries(&dir.join("export.ldif"));
    for (attr, vals) in &preview_exports["export"] {
        let e = file
            .get(&norm_dn("uid=bob,ou=people,o=export"))
            .must("bob in the file");
        assert_eq!(attrs(e).get(attr), Some(vals), "preview said {attr}");
    }
    let guid_b64 = |dn: &str| {
        use base64::Engine as _;
        let e = corp.ldapsearch(dn, Scope::Base, "(objectClass=*)", &["objectGUID"]);
        let raw = &e[0]
            .attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("objectGUID"))
            .must("objectGUID")
            .1
            .bytes;
        base64::engine::general_purpose::STANDARD.encode(raw)
    };
    let ann_anchor = guid_b64(&format!("CN=Ann Enabled,{ou}"));
    assert_has(
        "ann in the file",
        file.get(&norm_dn("uid=ann,ou=people,o=export")),
        &[
            ("accountEnabled", &["TRUE"]),
            ("userPrincipalName", &["ann.enabled@corp.example.test"]),
            ("sourceAnchor", &[&ann_anchor]),
            ("employeeType", &["contractor"]),
        ],
    );
    assert_has(
        "bob in the file",
        file.get(&norm_dn("uid=bob,ou=people,o=export")),
        &[("accountEnabled", &["FALSE"])],
    );
    assert_has(
        "cid in the file",
        file.get(&norm_dn("uid=cid,ou=people,o=export")),
        &[
            ("sourceAnchor", &["ESIzRFVmd4iZqrvM3e7/AA=="]),
            // No givenName: the admin's flow ignores itself and the default's value flows.
            ("displayName", &["Cid Moved"]),
        ],
    );
    assert_has(
        "dee in the file",
        file.get(&norm_dn("uid=dee,ou=people,o=export")),
        &[(
            "proxyAddresses",
            &["SMTP:dee@corp.example.test", "smtp:dee@old.example.test"],
        )],
    );
    assert_has(
        "Sec Team in the file",
        file.get(&norm_dn("cn=Sec Team,ou=groups,o=export")),
        &[
            ("securityEnabled", &["TRUE"]),
            ("mailEnabled", &["FALSE"]),
            ("groupScope", &["Global"]),
        ],
    );
    assert_has(
        "Dist List in the file",
        file.get(&norm_dn("cn=Dist List,ou=groups,o=export")),
        &[
            ("securityEnabled", &["FALSE"]),
            ("mailEnabled", &["TRUE"]),
            ("mail", &["dist@corp.example.test"]),
        ],
    );
    assert!(
        file.contains_key(&norm_dn("cn=Empty Group,ou=groups,o=export")),
        "an LDIF file takes an empty group"
    );
    assert_has(
        "WS01 in the file",
        file.get(&norm_dn("cn=WS01,ou=devices,o=export")),
        &[
            ("deviceOSType", &["Windows 11 Enterprise"]),
            ("deviceTrustType", &["ServerAd"]),
            ("accountEnabled", &["TRUE"]),
            ("dNSHostName", &["ws01.corp.example.test"]),
        ],
    );
    for dn in [
        "cn=No Mail,ou=contacts,o=export",
        "uid=MSOL_0a1b2c3d4e5f,ou=people,o=export",
        "uid=Administrator,ou=people,o=export",
        "cn=Domain Admins,ou=groups,o=export",
    ] {
        assert!(!file.contains_key(&norm_dn(dn)), "{dn} must not be synced");
    }

    // The confirming cycle is quiet.
    let again = crate::support::cycle_json(&rules, false);
    again.ok();
    for (name, (_, export, errors)) in crate::support::connector_counts(&again.json()) {
        assert_eq!(
            (export, errors),
            (crate::support::Counts::default(), 0),
            "{name} exported again: {}",
            again.stdout
        );
    }
}
