//! A 5,000-member group in Active Directory (Samba) arrives whole through ranged retrieval
//! (`member;range=0-999`, then the next ranges), as Windows answers past 1,500 values; the
//! target lists exactly the members ldapsearch reads from the DC.

use crate::support::lab::samba;
use crate::support::lab::{LdapServer, Scope};
use crate::support::{Must, TestDir, connector_counts, cycle_json, read_ldif};

const MEMBERS: usize = 5_000;

#[test]
fn ldap_ad_5000_member_group_arrives_whole() {
    let ad = samba::corp();
    let ou = ad.create_ou("e2e-large-group");
    let mut ldif = String::new();
    for i in 0..MEMBERS {
        ldif.push_str(&format!(
            "dn: CN=Contact {i:04},{ou}\nobjectClass: contact\ncn: Contact {i:04}\nsn: C{i:04}\nmail: contact{i:04}@partner.test\n\n"
        ));
    }
    ldif.push_str(&format!(
        "dn: CN=Everyone,{ou}\nobjectClass: group\ncn: Everyone\nsAMAccountName: everyone-e2e\n"
    ));
    for i in 0..MEMBERS {
        ldif.push_str(&format!("member: CN=Contact {i:04},{ou}\n"));
    }
    let took = ad.bulk_load(&ldif);
    eprintln!(
        "bulk load of {MEMBERS} contacts and the group: {:.1} s",
        took.as_secs_f64()
    );
    let _hold = ad.hold();

    let dir = TestDir::new("ldap-large-group");
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
include_ous = ["{ou}"]
range_size = 1000
page_size = 1000

[[connector]]
name = "out"
type = "ldif"
mode = "target"
path = "out.ldif"
anchor = "entryUUID"
deletion_threshold = 10000

[[inbound]]
name = "contacts"
connector = "corp"
object_class = "contact"
object_type = "contact"
precedence = 10
flows = [ {{ target = "cn", source = "cn" }}, {{ target = "mail", source = "mail" }} ]

[[inbound]]
name = "groups"
connector = "corp"
object_class = "group"
object_type = "group"
precedence = 10
flows = [ {{ target = "cn", source = "cn" }}, {{ target = "member", source = "member" }} ]

[[outbound]]
name = "out-contacts"
connector = "out"
object_type = "contact"
object_class = "inetOrgPerson"
dn = "cn={{cn}},ou=contacts,dc=target"
deprovision = "delete"
flows = [ {{ target = "cn", source = "cn" }}, {{ target = "sn", source = "cn" }}, {{ target = "mail", source = "mail" }} ]

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
    std::fs::write(dir.config(), text).must("writing the config");
    let run = cycle_json(&dir.config(), false);
    run.ok();
    let counts = connector_counts(&run.json());
    // The contacts, the group, and the domain's well-known foreign security principals.
    let fsps = ad
        .ldapsearch(
            &format!("CN=ForeignSecurityPrincipals,{}", ad.base_dn),
            Scope::One,
            "(objectClass=foreignSecurityPrincipal)",
            &["1.1"],
        )
        .len();
    assert_eq!(
        counts["corp"].0.adds as usize,
        MEMBERS + 1 + fsps,
        "{counts:?}"
    );
    assert_eq!(counts["out"].1.adds as usize, MEMBERS + 1, "{counts:?}");

    // The DC's own answer, read in ranges by ldapsearch.
    let group = ad.ldapsearch(
        &format!("CN=Everyone,{ou}"),
        Scope::Base,
        "(objectClass=*)",
        &["member;range=0-*"],
    );
    let from_dc = group[0]
        .attrs
        .iter()
        .filter(|(k, _)| k.to_ascii_lowercase().starts_with("member"))
        .count();
    assert_eq!(from_dc, MEMBERS);
    let target = read_ldif(&dir.join("out.ldif"));
    let everyone = target
        .iter()
        .find(|e| e.first("cn").as_deref() == Some("Everyone"))
        .must("the group in the target");
    assert_eq!(
        everyone.values("member").len(),
        MEMBERS,
        "all members arrived"
    );
}
