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
//! - the children of a renamed OU follow it (DirSync and syncrepl report only the OU), and
//!   a link made later to a child resolves; an OU moved into an excluded OU takes its
//!   children out of scope.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::support::lab::samba::{self, Forest};
use crate::support::lab::scim::{self, ScimServer};
use crate::support::lab::slapd::{self, Slapd, SlapdOptions};
use crate::support::lab::{LdapServer, Scope, wait_until};
use crate::support::{Must, TestDir, connector_counts, cycle_json, norm_dn, read_ldif};

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
        let ad = samba::corp();
        let ou = ad.create_ou(&format!("e2e-links-{name}"));
        ad.ldapadd(&format!(
            "dn: OU=Excluded,{ou}\nobjectClass: organizationalUnit\nou: Excluded\n"
        ));
        let slapd = slapd::start(SlapdOptions::default());
        let scim = scim::start();
        let dir = TestDir::new(&format!("ldap-links-{name}"));
        let config = dir.config();
        std::fs::write(&config, config_text(ad, &ou, &slapd, &scim.url, delta))
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

fn config_text(ad: &Forest, ou: &str, t: &Slapd, scim_url: &str, delta: &str) -> String {
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
delta = "{delta}"

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

fn modrdn(dn: &str, rdn: &str, superior: Option<&str>) -> String {
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
