//! Azure AD Connect's filtering options on a real AD (Samba): included and excluded OUs,
//! group-based filtering (direct members of one group) and an attribute filter per object
//! class. Objects outside never reach the metaverse; an object that leaves the scope is
//! deprovisioned from the target. Run with DirSync deltas and with uSNChanged polling.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::support::lab::samba::{self, Forest};
use crate::support::lab::{LdapServer, Scope};
use crate::support::{Must, TestDir, connector_counts, cycle_json, read_ldif};

fn config(dir: &TestDir, ad: &Forest, ou: &str, delta: &str) -> PathBuf {
    let text = format!(
        r#"state_file = "state.redb"

[[connector]]
name = "corp"
type = "ad"
url = "{url}"
ca_file = "{ca}"
bind_dn = "{bind}"
bind_password_file = "{pw}"
base_dn = "{base}"
include_ous = ["OU=In,{ou}"]
exclude_ous = ["OU=Out,OU=In,{ou}"]
member_of = "CN=Pilot,OU=In,{ou}"
filters = {{ user = "(department=Sales)" }}
delta = "{delta}"

[[connector]]
name = "out"
type = "ldif"
mode = "target"
path = "out.ldif"
anchor = "entryUUID"

[[inbound]]
name = "users"
connector = "corp"
object_class = "user"
object_type = "person"
precedence = 10
flows = [
  {{ target = "uid", source = "sAMAccountName" }},
  {{ target = "cn", source = "cn" }},
]

[[inbound]]
name = "groups"
connector = "corp"
object_class = "group"
object_type = "group"
precedence = 10
flows = [
  {{ target = "cn", source = "cn" }},
  {{ target = "member", source = "member" }},
]

[[outbound]]
name = "out-people"
connector = "out"
object_type = "person"
object_class = "inetOrgPerson"
dn = "uid={{uid}},ou=people,dc=target"
deprovision = "delete"
flows = [ {{ target = "uid", source = "uid" }}, {{ target = "cn", source = "cn" }}, {{ target = "sn", source = "uid" }} ]

[[outbound]]
name = "out-groups"
connector = "out"
object_type = "group"
object_class = "groupOfNames"
dn = "cn={{cn}},ou=groups,dc=target"
deprovision = "delete"
flows = [ {{ target = "cn", source = "cn" }}, {{ target = "member", source = "member" }} ]
"#,
        url = ad.ldaps_url,
        ca = ad.ca_file.display(),
        bind = ad.bind_dn,
        pw = ad.password_file.display(),
        base = ad.base_dn,
    );
    let path = dir.config();
    std::fs::write(&path, text).must("writing the config");
    path
}

/// The uids in the target, and the uids the Pilot group lists there.
fn target(path: &Path) -> (BTreeSet<String>, BTreeSet<String>) {
    let entries = read_ldif(path);
    let people = entries.iter().filter_map(|e| e.first("uid")).collect();
    let members = entries
        .iter()
        .find(|e| e.first("cn").as_deref() == Some("Pilot"))
        .map(|g| {
            g.values("member")
                .iter()
                .map(|m| {
                    m.split(',')
                        .next()
                        .unwrap_or_default()
                        .trim_start_matches("uid=")
                        .to_string()
                })
                .collect()
        })
        .unwrap_or_default();
    (people, members)
}

fn set(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn scope_case(delta: &str) {
    let ad = samba::corp();
    let _hold = ad.hold();
    let ou = ad.create_ou(&format!("e2e-scope-{delta}"));
    let (inn, out, other) = (
        format!("OU=In,{ou}"),
        format!("OU=Out,OU=In,{ou}"),
        format!("OU=Other,{ou}"),
    );
    for (dn, name) in [(&inn, "In"), (&out, "Out"), (&other, "Other")] {
        ad.ldapadd(&format!(
            "dn: {dn}\nobjectClass: organizationalUnit\nou: {name}\n"
        ));
    }
    let user = |ou: &str, sam: &str, dept: &str| {
        format!(
            "dn: CN={sam},{ou}\nobjectClass: user\ncn: {sam}\nsAMAccountName: {sam}-{delta}\ndepartment: {dept}\nuserAccountControl: 544\n\n"
        )
    };
    let mut ldif = String::new();
    for (o, sam, dept) in [
        (&inn, "in1", "Sales"),
        (&inn, "in2", "Sales"),
        (&inn, "in3", "Marketing"),
        (&inn, "in4", "Sales"),
        (&inn, "in5", "Sales"),
        (&out, "out1", "Sales"),
        (&other, "other1", "Sales"),
    ] {
        ldif.push_str(&user(o, sam, dept));
    }
    ldif.push_str(&format!(
        "dn: CN=Pilot,{inn}\nobjectClass: group\ncn: Pilot\nsAMAccountName: pilot-{delta}\nmember: CN=in1,{inn}\nmember: CN=in2,{inn}\nmember: CN=in3,{inn}\nmember: CN=out1,{out}\nmember: CN=other1,{other}\n"
    ));
    ad.ldapadd(&ldif);

    let dir = TestDir::new(&format!("ldap-scope-{delta}"));
    let cfg = config(&dir, ad, &ou, delta);
    let run = cycle_json(&cfg, false);
    run.ok();
    let counts = connector_counts(&run.json());
    assert_eq!(
        counts["corp"].0.adds, 3,
        "in1, in2 and the group only: {counts:?}"
    );
    let u = |s: &str| format!("{s}-{delta}");
    assert_eq!(
        target(&dir.join("out.ldif")),
        (set(&[&u("in1"), &u("in2")]), set(&[&u("in1"), &u("in2")]))
    );

    // in3 becomes Sales, in1 moves to the excluded OU, in2 leaves the group, in4 joins it.
    ad.ldapmodify(&format!(
        "dn: CN=in3,{inn}\nchangetype: modify\nreplace: department\ndepartment: Sales\n\n\
         dn: CN=in1,{inn}\nchangetype: modrdn\nnewrdn: CN=in1\ndeleteoldrdn: 1\nnewsuperior: {out}\n\n\
         dn: CN=Pilot,{inn}\nchangetype: modify\ndelete: member\nmember: CN=in2,{inn}\n-\nadd: member\nmember: CN=in4,{inn}\n\n"
    ));
    let run = cycle_json(&cfg, false);
    run.ok();
    let want = set(&[&u("in3"), &u("in4")]);
    assert_eq!(target(&dir.join("out.ldif")), (want.clone(), want));
    // The members the source lists that are in scope, read with ldapsearch.
    let pilot = ad.ldapsearch(
        &format!("CN=Pilot,{inn}"),
        Scope::Base,
        "(objectClass=*)",
        &["member"],
    );
    assert_eq!(
        pilot[0].values("member").len(),
        5,
        "the group itself lists more than the scope takes"
    );
}

#[test]
fn ldap_ad_scope_filters_dirsync() {
    scope_case("dirsync");
}

#[test]
fn ldap_ad_scope_filters_usn() {
    scope_case("usn");
}
