//! References and renamed OUs with slapd as the source (issue 14): syncrepl and
//! modifyTimestamp polling report a renamed OU alone, yet its children's DNs follow; `member`
//! values are DN strings, kept as slapd holds them, and with the refint overlay (which
//! repairs groups without changing their entryCSN, so syncrepl never sends them) the groups
//! that named a renamed or deleted member are read again.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::ldap_links::modrdn;
use crate::support::lab::slapd::{self, Slapd, SlapdOptions};
use crate::support::lab::{LdapServer, Scope, wait_until};
use crate::support::{Must, TestDir, connector_counts, cycle_json, norm_dn, read_ldif};

/// slapd as a source: syncrepl reports a renamed OU alone; its children follow.
#[test]
fn ldap_links_slapd_children_of_a_renamed_ou_follow_it() {
    let src = slapd::shared();
    let _up = src.hold();
    slapd_ou_rename_case(src, "auto");
}

/// The same with modifyTimestamp polling (no syncprov): only the OU's timestamp moves.
#[test]
fn ldap_links_slapd_children_of_a_renamed_ou_follow_it_timestamp() {
    let src = slapd::start(SlapdOptions {
        syncprov: false,
        refint: false,
    });
    slapd_ou_rename_case(&src, "timestamp");
}

fn slapd_ou_rename_case(src: &Slapd, delta: &str) {
    let ou = src.create_ou(&format!("links-ou-rename-{delta}"));
    src.ldapadd(&format!(
        "dn: ou=Team,{ou}\nobjectClass: organizationalUnit\nou: Team\n\n\
         dn: uid=p1,ou=Team,{ou}\nobjectClass: inetOrgPerson\nuid: p1\ncn: p1\nsn: p1\n\n\
         dn: uid=p2,ou=Team,{ou}\nobjectClass: inetOrgPerson\nuid: p2\ncn: p2\nsn: p2\n"
    ));
    let dir = TestDir::new(&format!("ldap-links-slapd-ou-{delta}"));
    let config = dir.config();
    std::fs::write(&config, slapd_config(src, &ou, delta)).must("writing the config");
    let containers = |path: &Path| -> BTreeMap<String, String> {
        read_ldif(path)
            .iter()
            .filter_map(|e| Some((e.first("uid")?, norm_dn(&e.first("description")?))))
            .collect()
    };
    cycle_json(&config, false).ok();
    let out = dir.join("out.ldif");
    let before = norm_dn(&format!("ou=Team,{ou}"));
    assert_eq!(
        containers(&out),
        [("p1".into(), before.clone()), ("p2".into(), before)].into()
    );

    src.ldapmodify(&modrdn(&format!("ou=Team,{ou}"), "ou=Team2", None));
    let run = cycle_json(&config, false);
    run.ok();
    let counts = connector_counts(&run.json());
    assert_eq!(
        counts["src"].0.renames, 2,
        "both children moved: {counts:?}"
    );
    let after = norm_dn(&format!("ou=Team2,{ou}"));
    assert_eq!(
        containers(&out),
        [("p1".into(), after.clone()), ("p2".into(), after)].into()
    );
}

fn slapd_config(src: &Slapd, ou: &str, delta: &str) -> String {
    format!(
        r#"state_file = "state.redb"

[web]
enabled = false

[[connector]]
name = "src"
type = "ldap"
url = "{url}"
starttls = true
ca_file = "{ca}"
bind_dn = "{bind}"
bind_password_file = "{pw}"
base_dn = "{ou}"
delta = "{delta}"

[[connector]]
name = "out"
type = "ldif"
mode = "target"
path = "out.ldif"
anchor = "entryUUID"

[[inbound]]
name = "people"
connector = "src"
object_class = "inetOrgPerson"
object_type = "person"
precedence = 10
flows = [
  {{ target = "uid", source = "uid" }},
  {{ target = "container", dn = "parent" }},
]

[[outbound]]
name = "out-people"
connector = "out"
object_type = "person"
object_class = "inetOrgPerson"
dn = "uid={{uid}},ou=people,dc=target"
deprovision = "delete"
flows = [
  {{ target = "uid", source = "uid" }},
  {{ target = "cn", source = "uid" }},
  {{ target = "sn", source = "uid" }},
  {{ target = "description", source = "container" }},
]
"#,
        url = src.ldap_url,
        ca = src.ca_file.display(),
        bind = src.bind_dn,
        pw = src.password_file.display(),
    )
}

/// slapd as a source, its `member` values strings: with the refint overlay slapd rewrites a
/// renamed member and drops a deleted one, syncrepl reports the group, and the target
/// follows; without it the group keeps the DN strings it holds, and the target shows what
/// those name now, as a full import would.
#[test]
fn ldap_links_slapd_member_rename_and_recreate_with_refint() {
    let src = slapd::start(SlapdOptions {
        syncprov: true,
        refint: true,
    });
    let members = slapd_members_case(&src, "refint", true);
    assert_eq!(members, ["p1".to_string()].into(), "refint dropped p2");
}

/// See [`ldap_links_slapd_member_rename_and_recreate_with_refint`].
#[test]
fn ldap_links_slapd_member_rename_and_recreate_without_refint() {
    let src = slapd::start(SlapdOptions {
        syncprov: true,
        refint: false,
    });
    let members = slapd_members_case(&src, "plain", false);
    // The group still names cn=P1 (gone) and cn=P2 (now the new entry).
    assert_eq!(members, ["p2new".to_string()].into());
}

/// Runs the rename / delete / re-create sequence; returns the target group's member uids,
/// after checking they are what the source group's values name now.
fn slapd_members_case(src: &Slapd, name: &str, refint: bool) -> BTreeSet<String> {
    let ou = src.create_ou(&format!("links-members-{name}"));
    src.ldapadd(&format!(
        "dn: cn=P1,{ou}\nobjectClass: inetOrgPerson\nuid: p1\ncn: P1\nsn: p1\n\n\
         dn: cn=P2,{ou}\nobjectClass: inetOrgPerson\nuid: p2\ncn: P2\nsn: p2\n\n\
         dn: cn=g,{ou}\nobjectClass: groupOfNames\ncn: g\nmember: cn=P1,{ou}\nmember: cn=P2,{ou}\n"
    ));
    let dir = TestDir::new(&format!("ldap-links-slapd-members-{name}"));
    let config = dir.config();
    let mut text = slapd_config(src, &ou, "auto");
    text.push_str(
        r#"
[[inbound]]
name = "groups"
connector = "src"
object_class = "groupOfNames"
object_type = "group"
precedence = 10
flows = [ { target = "cn", source = "cn" }, { target = "member", source = "member" } ]

[[outbound]]
name = "out-groups"
connector = "out"
object_type = "group"
object_class = "groupOfNames"
dn = "cn={cn},ou=groups,dc=target"
deprovision = "delete"
flows = [ { target = "cn", source = "cn" }, { target = "member", source = "member" } ]
"#,
    );
    std::fs::write(&config, text).must("writing the config");
    let out = dir.join("out.ldif");
    let target_members = || -> BTreeSet<String> {
        let entries = read_ldif(&out);
        let uid_of: BTreeMap<String, String> = entries
            .iter()
            .filter_map(|e| Some((norm_dn(&e.dn), e.first("uid")?)))
            .collect();
        entries
            .iter()
            .find(|e| e.first("cn").as_deref() == Some("g"))
            .map(|g| {
                g.values("member")
                    .iter()
                    .map(|m| uid_of.get(&norm_dn(m)).cloned().unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default()
    };
    // What the source group's values name now, read with ldapsearch.
    let source_members = || -> BTreeSet<String> {
        let people: BTreeMap<String, String> = src
            .ldapsearch(&ou, Scope::One, "(objectClass=inetOrgPerson)", &["uid"])
            .iter()
            .map(|e| (norm_dn(&e.dn), e.first("uid").must("uid")))
            .collect();
        src.ldapsearch(
            &format!("cn=g,{ou}"),
            Scope::Base,
            "(objectClass=*)",
            &["member"],
        )[0]
        .values("member")
        .iter()
        .filter_map(|m| people.get(&norm_dn(m)).cloned())
        .collect()
    };
    cycle_json(&config, false).ok();
    assert_eq!(
        target_members(),
        ["p1".to_string(), "p2".to_string()].into()
    );

    src.ldapmodify(&modrdn(&format!("cn=P1,{ou}"), "cn=P1 Renamed", None));
    src.ldapdelete(&format!("cn=P2,{ou}"));
    src.ldapadd(&format!(
        "dn: cn=P2,{ou}\nobjectClass: inetOrgPerson\nuid: p2new\ncn: P2\nsn: p2\n"
    ));
    if refint {
        // refint repairs in the background: the cycle starts once the group shows it.
        let old = norm_dn(&format!("cn=P1,{ou}"));
        wait_until(
            "refint's repair of the group",
            std::time::Duration::from_secs(10),
            || {
                let g = src.ldapsearch(
                    &format!("cn=g,{ou}"),
                    Scope::Base,
                    "(objectClass=*)",
                    &["member"],
                );
                match g[0].values("member").iter().any(|m| norm_dn(m) == old) {
                    true => Err("the group still names cn=P1".to_string()),
                    false => Ok(()),
                }
            },
        )
        .must("refint repaired the group");
    }
    cycle_json(&config, false).ok();
    let got = target_members();
    assert_eq!(
        got,
        source_members(),
        "{name}: the target names what the source names"
    );
    got
}
