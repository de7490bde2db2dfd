//! The `ad` connector against two real, disconnected Samba AD forests, exported to a real
//! OpenLDAP target: full import (paged, ranged member retrieval, binary and non-ASCII
//! values, escaped commas), a cross-forest group member resolved through the metaverse
//! (the foreign security principal joined on objectSid), a DirSync delta of modifies,
//! deletes, moves and a rename, and writeback of a user with a password that then binds.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::support::lab::samba::{self, Forest};
use crate::support::lab::slapd::{self, Slapd, SlapdOptions};
use crate::support::lab::{LdapServer, Scope};
use crate::support::{Counts, Must, TestDir, connector_counts, cycle_json};

fn ad_connector(name: &str, f: &Forest, ou: &str, excluded: &str) -> String {
    format!(
        r#"
[[connector]]
name = "{name}"
type = "ad"
url = "{url}"
ca_file = "{ca}"
bind_dn = "{bind}"
bind_password_file = "{pw}"
base_dn = "{base}"
include_ous = ["{ou}"]
exclude_ous = [{excluded}]
range_size = 3
"#,
        url = f.ldaps_url,
        ca = f.ca_file.display(),
        bind = f.bind_dn,
        pw = f.password_file.display(),
        base = f.base_dn,
    )
}

fn config(
    dir: &TestDir,
    corp: &Forest,
    corp_ou: &str,
    fab: &Forest,
    fab_ou: &str,
    target: &Slapd,
) -> PathBuf {
    let person_flows = r#"flows = [
  { target = "uid", source = "sAMAccountName" },
  { target = "cn", source = "cn" },
  { target = "sn", source = "sn" },
  { target = "displayName", source = "displayName" },
  { target = "mail", source = "mail" },
  { target = "employeeID", source = "employeeID" },
  { target = "description", source = "description" },
  { target = "photo", source = "thumbnailPhoto" },
  { target = "objectSid", source = "objectSid" },
  { target = "sourceAnchor", expression = "ConvertToBase64(IIF(IsPresent([mS-DS-ConsistencyGuid]), [mS-DS-ConsistencyGuid], [objectGUID]))" },
]"#;
    let text = format!(
        r#"state_file = "state.redb"
{corp_c}
{fab_c}
[[connector]]
name = "openldap"
type = "ldap"
url = "{turl}"
starttls = true
ca_file = "{tca}"
bind_dn = "{tbind}"
bind_password_file = "{tpw}"
base_dn = "{tbase}"

[[inbound]]
name = "corp-users"
connector = "corp"
object_class = "user"
object_type = "person"
precedence = 10
join = [[ {{ cs = "employeeID", mv = "employeeID" }} ]]
{person_flows}

[[inbound]]
name = "fabrikam-users"
connector = "fabrikam"
object_class = "user"
object_type = "person"
precedence = 20
join = [[ {{ cs = "employeeID", mv = "employeeID" }} ]]
{person_flows}

[[inbound]]
name = "corp-foreign-members"
connector = "corp"
object_class = "foreignSecurityPrincipal"
object_type = "person"
precedence = 90
project = false
join = [[ {{ cs = "objectSid", mv = "objectSid" }} ]]
flows = []

[[inbound]]
name = "corp-groups"
connector = "corp"
object_class = "group"
object_type = "group"
precedence = 10
flows = [
  {{ target = "cn", source = "cn" }},
  {{ target = "description", source = "description" }},
  {{ target = "member", source = "member" }},
]

[[outbound]]
name = "ol-people"
connector = "openldap"
object_type = "person"
object_class = "inetOrgPerson"
dn = "cn={{cn}},ou=people,{tbase}"
deprovision = "delete"
flows = [
  {{ target = "uid", source = "uid" }},
  {{ target = "cn", source = "cn" }},
  {{ target = "sn", source = "sn" }},
  {{ target = "displayName", source = "displayName" }},
  {{ target = "mail", source = "mail" }},
  {{ target = "employeeNumber", source = "employeeID" }},
  {{ target = "description", source = "description" }},
  {{ target = "jpegPhoto", source = "photo" }},
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
  {{ target = "description", source = "description" }},
  {{ target = "member", source = "member" }},
]
"#,
        corp_c = ad_connector("corp", corp, corp_ou, &format!("\"OU=Excluded,{corp_ou}\"")),
        fab_c = ad_connector("fabrikam", fab, fab_ou, ""),
        turl = target.ldap_url,
        tca = target.ca_file.display(),
        tbind = target.bind_dn,
        tpw = target.password_file.display(),
        tbase = target.base_dn,
    );
    let path = dir.config();
    std::fs::write(&path, text).must("writing the config");
    path
}

fn user(ou: &str, cn: &str, sam: &str, emp: &str, extra: &str) -> String {
    let rdn = cn.replace(',', "\\,");
    format!(
        "dn: CN={rdn},{ou}\nobjectClass: user\ncn: {cn}\nsAMAccountName: {sam}\nsn: {sam}\ndisplayName: {cn}\nmail: {sam}@example.test\nemployeeID: {emp}\nuserAccountControl: 544\n{extra}\n"
    )
}

fn cycle(config: &Path) -> BTreeMap<String, (Counts, Counts, u64)> {
    let run = cycle_json(config, false);
    run.ok();
    connector_counts(&run.json())
}

type Expected = (
    BTreeMap<String, (String, String)>,
    BTreeMap<String, BTreeSet<String>>,
);

/// From the two forests, read with ldapsearch: uid → (cn, description) of every user in
/// scope, and group cn → member uids (a foreign member resolved by its SID in fabrikam).
fn expectation(corp: &Forest, corp_ou: &str, fab: &Forest, fab_ou: &str) -> Expected {
    let mut people = BTreeMap::new();
    let mut by_dn = BTreeMap::new();
    let mut by_sid = BTreeMap::new();
    let mut employees: BTreeMap<String, String> = BTreeMap::new();
    for (f, ou) in [(corp, corp_ou), (fab, fab_ou)] {
        for e in f.ldapsearch(
            ou,
            Scope::Sub,
            "(&(objectClass=user)(!(objectClass=computer)))",
            &[
                "sAMAccountName",
                "cn",
                "description",
                "objectSid",
                "employeeID",
            ],
        ) {
            if e.dn.to_ascii_lowercase().contains("ou=excluded,") {
                continue;
            }
            let uid = e.first("sAMAccountName").must("sAMAccountName");
            let emp = e.first("employeeID").unwrap_or_default();
            // A person already seen in corp (same employeeID) is one metaverse object;
            // corp's rule has the lower precedence number and supplies the values.
            let uid = match employees.get(&emp) {
                Some(first) => first.clone(),
                None => {
                    employees.insert(emp, uid.clone());
                    uid
                }
            };
            people.entry(uid.clone()).or_insert((
                e.first("cn").unwrap_or_default(),
                e.first("description").unwrap_or_default(),
            ));
            by_dn.insert(crate::support::norm_dn(&e.dn), uid.clone());
            if let Some((_, sid)) = e
                .attrs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("objectSid"))
            {
                by_sid.insert(samba::sid_to_string(&sid.bytes), uid);
            }
        }
    }
    let mut groups = BTreeMap::new();
    for e in corp.ldapsearch(
        corp_ou,
        Scope::Sub,
        "(objectClass=group)",
        &["cn", "member;range=0-*"],
    ) {
        let mut members = BTreeSet::new();
        for (k, v) in &e.attrs {
            if !k.to_ascii_lowercase().starts_with("member") {
                continue;
            }
            {
                let dn = v.as_text();
                let n = crate::support::norm_dn(&dn);
                if let Some(uid) = by_dn.get(&n) {
                    members.insert(uid.clone());
                } else if n.contains("cn=foreignsecurityprincipals") {
                    let sid = dn
                        .split(',')
                        .next()
                        .unwrap_or_default()
                        .trim_start_matches("CN=")
                        .to_string();
                    if let Some(uid) = by_sid.get(&sid) {
                        members.insert(uid.clone());
                    }
                }
            }
        }
        groups.insert(e.first("cn").must("cn"), members);
    }
    (people, groups)
}

fn target_content(t: &Slapd) -> Expected {
    let mut people = BTreeMap::new();
    let mut uid_of = BTreeMap::new();
    for e in t.ldapsearch(
        &format!("ou=people,{}", t.base_dn),
        Scope::One,
        "(objectClass=inetOrgPerson)",
        &["uid", "cn", "description"],
    ) {
        uid_of.insert(crate::support::norm_dn(&e.dn), e.first("uid").must("uid"));
        people.insert(
            e.first("uid").must("uid"),
            (
                e.first("cn").unwrap_or_default(),
                e.first("description").unwrap_or_default(),
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
        let members = e
            .values("member")
            .iter()
            .map(|dn| {
                uid_of
                    .get(&crate::support::norm_dn(dn))
                    .cloned()
                    .unwrap_or_else(|| format!("(dangling {dn})"))
            })
            .collect();
        groups.insert(e.first("cn").must("cn"), members);
    }
    (people, groups)
}

#[test]
fn ldap_ad_two_forests_to_openldap_full_and_dirsync_delta() {
    let corp = samba::corp();
    let fab = samba::fabrikam();
    let _holds = (corp.hold(), fab.hold());
    let target = slapd::start(SlapdOptions {
        syncprov: true,
        refint: false,
    });

    let corp_ou = corp.create_ou("e2e-forests");
    let fab_ou = fab.create_ou("e2e-forests");
    let staff = format!("OU=Staff,{corp_ou}");
    let sub = format!("OU=Sub,{staff}");
    let excluded = format!("OU=Excluded,{corp_ou}");
    for dn in [&staff, &sub, &excluded] {
        let name = dn
            .split(',')
            .next()
            .unwrap_or_default()
            .trim_start_matches("OU=");
        corp.ldapadd(&format!(
            "dn: {dn}\nobjectClass: organizationalUnit\nou: {name}\n"
        ));
    }
    // 35 users: one with a comma in its name, one with non-ASCII text, one with a photo.
    let mut ldif = String::new();
    for i in 0..35 {
        let cn = match i {
            0 => "Smith, Ann".to_string(),
            1 => "Zoë Ångström".to_string(),
            _ => format!("User {i:02}"),
        };
        let extra = match i {
            1 => "description: Größe — ünïcödé\n".to_string(),
            2 => "thumbnailPhoto:: /9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAMCAgICAgMCAgIDAwMDBAYEBAQEBAgGBgUG\n".to_string(),
            // A user moved between forests keeps its sourceAnchor in ms-DS-ConsistencyGuid.
            4 => "mS-DS-ConsistencyGuid:: ESIzRFVmd4iZqrvM3e7/AA==\ndescription: person 4\n".to_string(),
            _ => format!("description: person {i}\n"),
        };
        ldif.push_str(&user(
            &staff,
            &cn,
            &format!("c{i:02}"),
            &format!("E{i:03}"),
            &extra,
        ));
    }
    ldif.push_str(&user(&excluded, "Hidden One", "hidden1", "E900", ""));
    corp.ldapadd(&ldif);
    let mut fab_ldif = String::new();
    for i in 0..3 {
        fab_ldif.push_str(&user(
            &fab_ou,
            &format!("Fab {i}"),
            &format!("f{i}"),
            // Fab 2 is the same person as corp's User 06: joined on employeeID.
            &if i == 2 {
                "E006".to_string()
            } else {
                format!("F{i:03}")
            },
            "description: fabrikam\n",
        ));
    }
    fab.ldapadd(&fab_ldif);
    let foreign_sid = fab.sid_of(&format!("CN=Fab 0,{fab_ou}"));
    // The team: ten corp users and one fabrikam user (as a foreign security principal).
    let mut team = format!(
        "dn: CN=Team,{staff}\nobjectClass: group\ncn: Team\nsAMAccountName: team-e2e\ndescription: cross-forest team\n"
    );
    for i in 0..10 {
        let cn = match i {
            0 => "Smith\\, Ann".to_string(),
            1 => "Zoë Ångström".to_string(),
            _ => format!("User {i:02}"),
        };
        team.push_str(&format!("member: CN={cn},{staff}\n"));
    }
    team.push_str(&format!("member: <SID={foreign_sid}>\n"));
    corp.ldapadd(&team);

    let dir = TestDir::new("ldap-ad");
    let cfg = config(&dir, corp, &corp_ou, fab, &fab_ou, &target);
    let counts = cycle(&cfg);
    // Foreign security principals are imported (to resolve cross-forest members), also
    // the well-known ones every domain has.
    let fsps = |f: &Forest| {
        f.ldapsearch(
            &format!("CN=ForeignSecurityPrincipals,{}", f.base_dn),
            Scope::One,
            "(objectClass=foreignSecurityPrincipal)",
            &["cn"],
        )
        .len() as u64
    };
    assert_eq!(
        counts["corp"].0.adds,
        35 + 1 + fsps(corp),
        "35 users, the team, FSPs: {counts:?}"
    );
    assert_eq!(counts["fabrikam"].0.adds, 3 + fsps(fab), "{counts:?}");
    // 35 corp users and 3 fabrikam ones, one of them joined to a corp user; the team.
    assert_eq!(counts["openldap"].1.adds, 37 + 1, "{counts:?}");
    let want = expectation(corp, &corp_ou, fab, &fab_ou);
    assert_eq!(
        want.1["Team"].len(),
        11,
        "the expectation has the foreign member: {want:?}"
    );
    assert_eq!(target_content(&target), want);
    let photo = target.ldapsearch(
        &format!("cn=User 02,ou=people,{}", target.base_dn),
        Scope::Base,
        "(objectClass=*)",
        &["jpegPhoto"],
    );
    assert_eq!(
        photo[0].values("jpegPhoto").len(),
        1,
        "the binary photo arrived"
    );

    // sourceAnchor: base64 of ms-DS-ConsistencyGuid where set, else of objectGUID.
    let anchor_of = |sam: &str| {
        let found = crate::support::run(&[
            "search",
            "-c",
            &cfg.display().to_string(),
            // By mail: no base64 value can contain an `@`, so only this person matches.
            &format!("{sam}@example.test"),
        ]);
        found
            .stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix("sourceAnchor: "))
            .map(|v| v.split_whitespace().next().unwrap_or_default().to_string())
            .must(&format!("a sourceAnchor for {sam}: {}", found.stdout))
    };
    assert_eq!(anchor_of("c04"), "ESIzRFVmd4iZqrvM3e7/AA==");
    let guid = corp.ldapsearch(
        &format!("CN=User 03,{staff}"),
        Scope::Base,
        "(objectClass=*)",
        &["objectGUID"],
    );
    let raw = &guid[0]
        .attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("objectGUID"))
        .must("objectGUID")
        .1
        .bytes;
    use base64::Engine as _;
    assert_eq!(
        anchor_of("c03"),
        base64::engine::general_purpose::STANDARD.encode(raw)
    );

    // The confirming cycle is quiet.
    let counts = cycle(&cfg);
    assert_eq!(counts["corp"].0, Counts::default(), "{counts:?}");
    assert_eq!(counts["openldap"].1, Counts::default(), "{counts:?}");

    // 20 modifies, 5 deletes, 3 moves, 1 rename, made on the DC directly.
    let mut mods = String::new();
    for i in 10..30 {
        mods.push_str(&format!("dn: CN=User {i:02},{staff}\nchangetype: modify\nreplace: description\ndescription: changed {i}\n\n"));
    }
    corp.ldapmodify(&mods);
    for i in 30..35 {
        corp.ldapdelete(&format!("CN=User {i:02},{staff}"));
    }
    let mut moves = String::new();
    for i in 2..5 {
        moves.push_str(&format!("dn: CN=User {i:02},{staff}\nchangetype: modrdn\nnewrdn: CN=User {i:02}\ndeleteoldrdn: 1\nnewsuperior: {sub}\n\n"));
    }
    moves.push_str(&format!("dn: CN=User 05,{staff}\nchangetype: modrdn\nnewrdn: CN=User 05 Renamed\ndeleteoldrdn: 1\n\n"));
    corp.ldapmodify(&moves);

    let counts = cycle(&cfg);
    let import = counts["corp"].0;
    assert_eq!(
        (import.updates, import.deletes, import.renames),
        (20, 5, 4),
        "{counts:?}"
    );
    assert_eq!(counts["fabrikam"].0, Counts::default(), "{counts:?}");
    // The renamed user's DN in OpenLDAP follows its cn: a modrdn.
    assert_eq!(counts["openldap"].1.renames, 1, "{counts:?}");
    assert_eq!(
        target_content(&target),
        expectation(corp, &corp_ou, fab, &fab_ou)
    );
}
