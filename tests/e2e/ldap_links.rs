//! References are links, not strings (issue 14, cases 3 and 4): a real Samba AD forest into a
//! real OpenLDAP directory and a real SCIM service (scim2-server), with hand-written rules
//! and DirSync deltas. Each test changes the directory the way an admin would and runs one
//! delta cycle, then reads both targets back with their own tools:
//!
//! - a member deleted and re-created at its DN is not a member of the old account's groups
//!   (Samba's DirSync reports only the tombstone and the new object, never the group);
//! - a member moved into scope appears in its groups in the same cycle, and leaves them when
//!   it leaves the scope again;
//! - members moved and renamed stay members (DirSync reports no change on the group);
//! - a manager out of scope is filled in the cycle it comes into scope;
//! - the children of a renamed OU follow it (DirSync and uSNChanged polling report only the
//!   OU), and a link made later to a child resolves; an OU moved into an excluded OU takes
//!   its children out of scope.
//!
//! slapd as a source is in `ldap_links_slapd`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crate::support::lab::samba::{self, Forest};
use crate::support::lab::scim::{self, ScimServer};
use crate::support::lab::slapd::{self, Slapd, SlapdOptions};
use crate::support::lab::{LdapServer, Scope};
use crate::support::{Must, TestDir, connector_counts, cycle_json, norm_dn};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// The three servers of one test and its own OU in corp.
struct Lab {
    ad: &'static Forest,
    ou: String,
    slapd: Slapd,
    scim: ScimServer,
    config: PathBuf,
    _dir: TestDir,
}

impl Lab {
    fn new(name: &str) -> Lab {
        Lab::with_delta(name, "auto")
    }

    /// A lab whose AD connector uses this delta method (`auto` is DirSync here).
    fn with_delta(name: &str, delta: &str) -> Lab {
        Lab::with_settings(name, &format!("delta = \"{delta}\""))
    }

    /// A lab whose AD connector has these extra settings (TOML lines).
    fn with_settings(name: &str, settings: &str) -> Lab {
        let ad = samba::corp();
        let ou = ad.create_ou(&format!("e2e-links-{name}"));
        ad.ldapadd(&format!(
            "dn: OU=Excluded,{ou}\nobjectClass: organizationalUnit\nou: Excluded\n"
        ));
        let slapd = slapd::start(SlapdOptions::default());
        let scim = scim::start();
        let dir = TestDir::new(&format!("ldap-links-{name}"));
        let config = dir.config();
        std::fs::write(&config, config_text(ad, &ou, &slapd, &scim.url, settings))
            .must("writing the config");
        Lab {
            ad,
            ou,
            slapd,
            scim,
            config,
            _dir: dir,
        }
    }

    /// One cycle; returns the export counts of (openldap, cloud).
    fn cycle(&self) -> BTreeMap<String, (crate::support::Counts, crate::support::Counts, u64)> {
        let run = cycle_json(&self.config, false);
        run.ok();
        connector_counts(&run.json())
    }

    /// Users by uid with (description, manager uid) in OpenLDAP, and groups by cn with
    /// their member uids.
    fn openldap(&self) -> Target {
        let t = &self.slapd;
        let uid_of = |dn: &str| -> String {
            let rdn = dn.split(',').next().unwrap_or_default();
            rdn.trim_start_matches("uid=").to_string()
        };
        let mut users = BTreeMap::new();
        for e in t.ldapsearch(
            &format!("ou=people,{}", t.base_dn),
            Scope::One,
            "(objectClass=inetOrgPerson)",
            &["uid", "description", "manager"],
        ) {
            users.insert(
                e.first("uid").must("uid"),
                (
                    e.first("description").unwrap_or_default(),
                    e.first("manager").map(|m| uid_of(&m)).unwrap_or_default(),
                ),
            );
        }
        let mut groups = BTreeMap::new();
        for e in t.ldapsearch(
            &format!("ou=groups,{}", t.base_dn),
            Scope::One,
            "(objectClass=groupOfNames)",
            &["cn", "member"],
        ) {
            let members = e.values("member").iter().map(|m| uid_of(m)).collect();
            groups.insert(e.first("cn").must("cn"), members);
        }
        Target { users, groups }
    }

    /// The same, read from the SCIM service (title carries the description, the enterprise
    /// manager and group members are resolved from ids to userNames).
    fn cloud(&self) -> Target {
        let all = self.scim.all("/Users");
        let name_of: BTreeMap<String, String> = all
            .iter()
            .map(|u| {
                (
                    u["id"].as_str().unwrap_or_default().to_string(),
                    u["userName"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        let lookup = |id: &str| {
            name_of
                .get(id)
                .cloned()
                .unwrap_or_else(|| format!("(dangling {id})"))
        };
        let mut users = BTreeMap::new();
        for u in &all {
            let manager = u[ENTERPRISE]["manager"]["value"]
                .as_str()
                .map(lookup)
                .unwrap_or_default();
            users.insert(
                u["userName"].as_str().must("userName").to_string(),
                (u["title"].as_str().unwrap_or_default().to_string(), manager),
            );
        }
        let mut groups = BTreeMap::new();
        for g in self.scim.all("/Groups") {
            let members = g["members"]
                .as_array()
                .map(|m| {
                    m.iter()
                        .filter_map(|x| x["value"].as_str())
                        .map(lookup)
                        .collect()
                })
                .unwrap_or_default();
            groups.insert(
                g["displayName"].as_str().must("displayName").to_string(),
                members,
            );
        }
        Target { users, groups }
    }

    /// Asserts both targets hold these members in group `g` and these users.
    fn assert_targets(&self, users: &[&str], group: &str, members: &[&str], when: &str) {
        let users: BTreeSet<String> = users.iter().map(|u| u.to_string()).collect();
        let members: BTreeSet<String> = members.iter().map(|u| u.to_string()).collect();
        for (name, t) in [("OpenLDAP", self.openldap()), ("SCIM", self.cloud())] {
            assert_eq!(
                t.users.keys().cloned().collect::<BTreeSet<_>>(),
                users,
                "{when}: the users in {name}: {t:?}"
            );
            assert_eq!(
                t.groups.get(group),
                Some(&members),
                "{when}: the members of {group} in {name}: {t:?}"
            );
        }
    }
}

/// What a target holds: uid → (description or title, manager uid); group → member uids.
#[derive(Debug)]
struct Target {
    users: BTreeMap<String, (String, String)>,
    groups: BTreeMap<String, BTreeSet<String>>,
}

fn config_text(ad: &Forest, ou: &str, t: &Slapd, scim_url: &str, settings: &str) -> String {
    format!(
        r#"state_file = "state.redb"

[web]
enabled = false

[[connector]]
name = "corp"
type = "ad"
url = "{url}"
ca_file = "{ca}"
bind_dn = "{bind}"
bind_password_file = "{pw}"
base_dn = "{base}"
include_ous = ["{ou}"]
exclude_ous = ["OU=Excluded,{ou}"]
object_classes = ["user", "group"]
{settings}

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
name = "cloud"
type = "scim"
url = "{scim_url}"
danger_plaintext = true

[[inbound]]
name = "users"
connector = "corp"
object_class = "user"
object_type = "person"
precedence = 10
flows = [
  {{ target = "uid", source = "sAMAccountName" }},
  {{ target = "cn", source = "cn" }},
  {{ target = "manager", source = "manager" }},
  {{ target = "container", dn = "parent" }},
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
name = "ol-people"
connector = "openldap"
object_type = "person"
object_class = "inetOrgPerson"
dn = "uid={{uid}},ou=people,{tbase}"
deprovision = "delete"
flows = [
  {{ target = "uid", source = "uid" }},
  {{ target = "cn", source = "cn" }},
  {{ target = "sn", source = "uid" }},
  {{ target = "manager", source = "manager" }},
  {{ target = "description", source = "container" }},
]

[[outbound]]
name = "ol-groups"
connector = "openldap"
object_type = "group"
object_class = "groupOfNames"
dn = "cn={{cn}},ou=groups,{tbase}"
deprovision = "delete"
flows = [
  {{ target = "cn", source = "cn" }},
  {{ target = "member", source = "member" }},
]

[[outbound]]
name = "cloud-users"
connector = "cloud"
object_type = "person"
object_class = "User"
dn = "externalId={{uid}},ou=Users"
deprovision = "delete"
flows = [
  {{ target = "externalId", source = "uid" }},
  {{ target = "userName", source = "uid" }},
  {{ target = "name.familyName", source = "uid" }},
  {{ target = "title", source = "container" }},
  {{ target = "{ENTERPRISE}:manager", source = "manager" }},
]

[[outbound]]
name = "cloud-groups"
connector = "cloud"
object_type = "group"
object_class = "Group"
dn = "externalId={{cn}},ou=Groups"
deprovision = "delete"
flows = [
  {{ target = "externalId", source = "cn" }},
  {{ target = "displayName", source = "cn" }},
  {{ target = "members", source = "member" }},
]
"#,
        url = ad.ldaps_url,
        ca = ad.ca_file.display(),
        bind = ad.bind_dn,
        pw = ad.password_file.display(),
        base = ad.base_dn,
        turl = t.ldap_url,
        tca = t.ca_file.display(),
        tbind = t.bind_dn,
        tpw = t.password_file.display(),
        tbase = t.base_dn,
    )
}

/// An AD user entry (enabled, no password).
fn user(parent: &str, cn: &str, sam: &str, extra: &str) -> String {
    format!(
        "dn: CN={cn},{parent}\nobjectClass: user\ncn: {cn}\nsAMAccountName: {sam}\n\
         userAccountControl: 544\n{extra}\n"
    )
}

/// An AD group entry with these member DNs.
fn group(parent: &str, cn: &str, members: &[String]) -> String {
    let mut g =
        format!("dn: CN={cn},{parent}\nobjectClass: group\ncn: {cn}\nsAMAccountName: {cn}\n");
    for m in members {
        g.push_str(&format!("member: {m}\n"));
    }
    g.push('\n');
    g
}

/// A modrdn change record (`superior`: move under it).
pub(super) fn modrdn(dn: &str, rdn: &str, superior: Option<&str>) -> String {
    let sup = superior
        .map(|s| format!("newsuperior: {s}\n"))
        .unwrap_or_default();
    format!("dn: {dn}\nchangetype: modrdn\nnewrdn: {rdn}\ndeleteoldrdn: 1\n{sup}\n")
}

#[test]
fn ldap_links_a_member_deleted_and_recreated_at_its_dn_inherits_no_membership() {
    let lab = Lab::new("recreate");
    let _up = lab.ad.hold();
    let ou = &lab.ou;
    let (a, b) = (format!("CN=la,{ou}"), format!("CN=lb,{ou}"));
    let mut ldif = user(ou, "la", "rc-a", "");
    ldif.push_str(&user(ou, "lb", "rc-b", ""));
    ldif.push_str(&group(ou, "rc-staff", &[a.clone(), b.clone()]));
    lab.ad.ldapadd(&ldif);
    lab.cycle();
    lab.assert_targets(
        &["rc-a", "rc-b"],
        "rc-staff",
        &["rc-a", "rc-b"],
        "first cycle",
    );

    // The account is deleted and a new one made at the same DN, in no group. (A new
    // sAMAccountName keeps the targets' own names apart; the DN is what is reused.)
    lab.ad.ldapdelete(&a);
    lab.ad.ldapadd(&user(ou, "la", "rc-a2", ""));
    let staff = lab
        .ad
        .entry(&format!("CN=rc-staff,{ou}"), &["member"])
        .must("the group");
    assert_eq!(
        staff.values("member").len(),
        1,
        "AD itself dropped the deleted member: {staff:?}"
    );
    lab.cycle();
    lab.assert_targets(
        &["rc-a2", "rc-b"],
        "rc-staff",
        &["rc-b"],
        "after delete and re-create",
    );
    // The next cycle finds nothing to change in OpenLDAP.
    let counts = lab.cycle();
    assert_eq!(counts["openldap"].1, Default::default(), "{counts:?}");
}

#[test]
fn ldap_links_members_moved_and_renamed_stay_members() {
    let lab = Lab::new("move");
    let _up = lab.ad.hold();
    let ou = &lab.ou;
    let sub = format!("OU=Sub,{ou}");
    lab.ad.ldapadd(&format!(
        "dn: {sub}\nobjectClass: organizationalUnit\nou: Sub\n"
    ));
    let (a, b, c) = (
        format!("CN=ma,{ou}"),
        format!("CN=mb,{ou}"),
        format!("CN=mc,{ou}"),
    );
    let mut ldif = user(ou, "ma", "mv-a", "");
    ldif.push_str(&user(ou, "mb", "mv-b", &format!("manager: {a}\n")));
    ldif.push_str(&user(ou, "mc", "mv-c", ""));
    ldif.push_str(&group(ou, "mv-staff", &[a.clone(), b.clone(), c.clone()]));
    lab.ad.ldapadd(&ldif);
    lab.cycle();
    lab.assert_targets(
        &["mv-a", "mv-b", "mv-c"],
        "mv-staff",
        &["mv-a", "mv-b", "mv-c"],
        "first",
    );

    // a (b's manager) moves to a sub-OU, c is renamed; DirSync reports neither group nor b.
    lab.ad.ldapmodify(&format!(
        "{}{}",
        modrdn(&a, "CN=ma", Some(&sub)),
        modrdn(&c, "CN=mc renamed", None)
    ));
    // A new user at c's old DN is no member of anything.
    lab.ad.ldapadd(&user(ou, "mc", "mv-d", ""));
    lab.cycle();
    lab.assert_targets(
        &["mv-a", "mv-b", "mv-c", "mv-d"],
        "mv-staff",
        &["mv-a", "mv-b", "mv-c"],
        "after the move and the rename",
    );
    for (name, t) in [("OpenLDAP", lab.openldap()), ("SCIM", lab.cloud())] {
        assert_eq!(t.users["mv-b"].1, "mv-a", "b's manager in {name}: {t:?}");
        assert_eq!(
            norm_dn(&t.users["mv-a"].0),
            norm_dn(&sub),
            "a's container in {name}: {t:?}"
        );
    }
}

#[test]
fn ldap_links_a_member_moved_into_scope_appears_in_its_groups_in_one_cycle() {
    let lab = Lab::new("scope");
    let _up = lab.ad.hold();
    let ou = &lab.ou;
    let excluded = format!("OU=Excluded,{ou}");
    let (a, m) = (format!("CN=sa,{ou}"), format!("CN=sm,{excluded}"));
    let mut ldif = user(ou, "sa", "sc-a", "");
    ldif.push_str(&user(&excluded, "sm", "sc-m", ""));
    ldif.push_str(&group(ou, "sc-staff", &[a.clone(), m.clone()]));
    lab.ad.ldapadd(&ldif);
    lab.cycle();
    lab.assert_targets(&["sc-a"], "sc-staff", &["sc-a"], "m excluded");

    // DirSync reports m (moved), not the group: the link to m is what carries it there.
    lab.ad.ldapmodify(&modrdn(&m, "CN=sm", Some(ou)));
    lab.cycle();
    lab.assert_targets(
        &["sc-a", "sc-m"],
        "sc-staff",
        &["sc-a", "sc-m"],
        "one delta cycle after m came into scope",
    );

    // Back out of scope: deprovisioned, and out of the group in the same cycle.
    lab.ad
        .ldapmodify(&modrdn(&format!("CN=sm,{ou}"), "CN=sm", Some(&excluded)));
    lab.cycle();
    lab.assert_targets(&["sc-a"], "sc-staff", &["sc-a"], "m excluded again");
}

#[test]
fn ldap_links_a_member_that_passes_the_attribute_filter_appears_in_its_groups_in_one_cycle() {
    let lab = Lab::with_settings("filter", r#"filters = { user = "(department=Sales)" }"#);
    let _up = lab.ad.hold();
    let ou = &lab.ou;
    let (a, m) = (format!("CN=fa,{ou}"), format!("CN=fm,{ou}"));
    let mut ldif = user(ou, "fa", "fl-a", "department: Sales\n");
    ldif.push_str(&user(ou, "fm", "fl-m", "department: Marketing\n"));
    ldif.push_str(&group(ou, "fl-staff", &[a.clone(), m.clone()]));
    lab.ad.ldapadd(&ldif);
    lab.cycle();
    lab.assert_targets(&["fl-a"], "fl-staff", &["fl-a"], "m filtered out");

    lab.ad.ldapmodify(&format!(
        "dn: {m}\nchangetype: modify\nreplace: department\ndepartment: Sales\n\n"
    ));
    lab.cycle();
    lab.assert_targets(
        &["fl-a", "fl-m"],
        "fl-staff",
        &["fl-a", "fl-m"],
        "one delta cycle after m passed the filter",
    );
}

#[test]
fn ldap_links_a_manager_out_of_scope_is_filled_in_when_it_comes_into_scope() {
    let lab = Lab::new("manager");
    let _up = lab.ad.hold();
    let ou = &lab.ou;
    let excluded = format!("OU=Excluded,{ou}");
    let boss = format!("CN=boss,{excluded}");
    let mut ldif = user(&excluded, "boss", "mg-boss", "");
    ldif.push_str(&user(
        ou,
        "worker",
        "mg-worker",
        &format!("manager: {boss}\n"),
    ));
    ldif.push_str(&group(ou, "mg-staff", &[format!("CN=worker,{ou}")]));
    lab.ad.ldapadd(&ldif);
    lab.cycle();
    for (name, t) in [("OpenLDAP", lab.openldap()), ("SCIM", lab.cloud())] {
        assert_eq!(
            t.users["mg-worker"].1, "",
            "no manager yet in {name}: {t:?}"
        );
    }

    lab.ad.ldapmodify(&modrdn(&boss, "CN=boss", Some(ou)));
    lab.cycle();
    for (name, t) in [("OpenLDAP", lab.openldap()), ("SCIM", lab.cloud())] {
        assert_eq!(
            t.users["mg-worker"].1, "mg-boss",
            "the manager, one cycle after it came into scope, in {name}: {t:?}"
        );
    }

    // And it goes when the manager is deleted (DirSync: only the tombstone).
    lab.ad.ldapdelete(&format!("CN=boss,{ou}"));
    lab.cycle();
    for (name, t) in [("OpenLDAP", lab.openldap()), ("SCIM", lab.cloud())] {
        assert_eq!(
            t.users["mg-worker"].1, "",
            "manager deleted, in {name}: {t:?}"
        );
        assert!(!t.users.contains_key("mg-boss"), "{name}: {t:?}");
    }
}

#[test]
fn ldap_links_children_of_a_renamed_ou_follow_it() {
    ou_rename_case("auto");
}

#[test]
fn ldap_links_children_of_a_renamed_ou_follow_it_usn() {
    ou_rename_case("usn");
}

fn ou_rename_case(delta: &str) {
    let lab = Lab::with_delta(&format!("ou-{delta}"), delta);
    // sAMAccountNames are unique in the domain: each variant has its own.
    let name = |n: &str| format!("{delta}-{n}");
    let (t1, t2, keep, staff) = (name("t1"), name("t2"), name("keep"), name("staff"));
    let (t1, t2, keep, staff) = (t1.as_str(), t2.as_str(), keep.as_str(), staff.as_str());
    let _up = lab.ad.hold();
    let ou = &lab.ou;
    let team = format!("OU=Team,{ou}");
    lab.ad.ldapadd(&format!(
        "dn: {team}\nobjectClass: organizationalUnit\nou: Team\n"
    ));
    // keep stays in scope throughout, so that the group is never empty (groupOfNames
    // needs a member).
    let mut ldif = user(&team, "t1", t1, "");
    ldif.push_str(&user(&team, "t2", t2, ""));
    ldif.push_str(&user(ou, "keep", keep, ""));
    ldif.push_str(&group(
        ou,
        staff,
        &[format!("CN=t1,{team}"), format!("CN=keep,{ou}")],
    ));
    lab.ad.ldapadd(&ldif);
    lab.cycle();
    let all = [keep, t1, t2];
    lab.assert_targets(&all, staff, &[keep, t1], "first");

    // The OU is renamed: its children change DN with no change of their own.
    lab.ad.ldapmodify(&modrdn(&team, "OU=Team2", None));
    let team2 = format!("OU=Team2,{ou}");
    lab.cycle();
    for (name, t) in [("OpenLDAP", lab.openldap()), ("SCIM", lab.cloud())] {
        for u in [t1, t2] {
            assert_eq!(
                norm_dn(&t.users[u].0),
                norm_dn(&team2),
                "{u}'s container after the OU rename, in {name}: {t:?}"
            );
        }
    }
    // A link made now, to a child at its new DN, resolves.
    lab.ad.ldapmodify(&format!(
        "dn: CN={staff},{ou}\nchangetype: modify\nadd: member\nmember: CN=t2,{team2}\n\n"
    ));
    lab.cycle();
    lab.assert_targets(&all, staff, &all, "t2 added");

    // The OU moves into the excluded one: its children leave the scope with it.
    lab.ad.ldapmodify(&modrdn(
        &team2,
        "OU=Team2",
        Some(&format!("OU=Excluded,{ou}")),
    ));
    lab.cycle();
    lab.assert_targets(&[keep], staff, &[keep], "the OU moved out of scope");
}
