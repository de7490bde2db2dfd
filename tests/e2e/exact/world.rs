//! One world of the differential test: its own OUs in the two Samba forests and in slapd
//! (the sources), the targets of the state file under test (an OpenLDAP OU and a
//! scim2-server), and the config both state files use. A reference state file is built on
//! demand from the same sources into fresh target instances.

use std::path::{Path, PathBuf};

use crate::support::lab::samba::{self, Forest};
use crate::support::lab::scim::{self, ScimServer};
use crate::support::lab::slapd::{self, Slapd};
use crate::support::lab::{LdapServer as _, Scope};
use crate::support::{Must, Run, TestDir, cycle_json};

/// The enterprise extension's schema URN.
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// Groups every world starts with, in corp: `g1` is nested in `g0`; `g3` is the large one
/// (range retrieval at `range_size = 3` is exercised from four members on).
pub const GROUPS: [&str; 4] = ["g0", "g1", "g2", "g3"];

/// Where one world's objects live in the sources.
pub struct Sources {
    /// corp: the included root; users go in `OU=<team>,root` or in `OU=Out,root`.
    pub corp_root: String,
    /// fabrikam: users in `OU=Team,root`; in scope only as direct members of `CN=Pilot`.
    pub fab_root: String,
    /// slapd source: people and one group under `ou=src-…`.
    pub ldap_root: String,
}

/// One set of target instances (the state file under test has one; each checkpoint's
/// reference gets new ones).
pub struct Targets {
    /// The OpenLDAP OU the target connector writes under (`ou=people` / `ou=groups` below).
    pub ldap_base: String,
    /// The SCIM service.
    pub scim: ScimServer,
}

/// A world: sources, the state file under test with its targets, the config writer.
pub struct World {
    /// Short, unique per world (OU names).
    pub tag: String,
    pub sources: Sources,
    pub dir: TestDir,
    pub targets: Targets,
    references: usize,
}

pub fn corp() -> &'static Forest {
    samba::corp()
}

pub fn fab() -> &'static Forest {
    samba::fabrikam()
}

pub fn ldap() -> &'static Slapd {
    slapd::shared()
}

impl World {
    /// Creates the source OUs (and the fixed groups), the first targets and the config.
    pub fn new(tag: &str) -> World {
        let corp_root = corp().create_ou(&format!("xd-{tag}"));
        for ou in ["Team0", "Team1", "Out", "Groups"] {
            corp().ldapadd(&format!(
                "dn: OU={ou},{corp_root}\nobjectClass: organizationalUnit\nou: {ou}\n"
            ));
        }
        // The keeper is in every group and never changed: a groupOfNames target entry
        // must have a member, and the random changes may take all the others away.
        let keeper = format!("CN={tag}-keeper,OU=Groups,{corp_root}");
        corp().ldapadd(&format!(
            "dn: {keeper}\nobjectClass: user\nsAMAccountName: {tag}-keeper\nsn: keeper\n\
             employeeID: {tag}-keeper\nuserAccountControl: 544\n"
        ));
        // Created in reverse so that g0 can nest g1 at once.
        for g in GROUPS.iter().rev() {
            let nested = if *g == "g0" {
                format!("member: CN={tag}-g1,OU=Groups,{corp_root}\n")
            } else {
                String::new()
            };
            corp().ldapadd(&format!(
                "dn: CN={tag}-{g},OU=Groups,{corp_root}\nobjectClass: group\n\
                 sAMAccountName: {tag}-{g}\ndescription: group {g}\nmember: {keeper}\n{nested}"
            ));
        }
        let fab_root = fab().create_ou(&format!("xd-{tag}"));
        fab().ldapadd(&format!(
            "dn: OU=Team,{fab_root}\nobjectClass: organizationalUnit\nou: Team\n"
        ));
        fab().ldapadd(&format!(
            "dn: CN=Pilot,{fab_root}\nobjectClass: group\nsAMAccountName: {tag}-pilot\n"
        ));
        let ldap_root = ldap().create_ou(&format!("xs-{tag}"));
        ldap().ldapadd(&format!(
            "dn: uid={tag}-lkeeper,{ldap_root}\nobjectClass: inetOrgPerson\nuid: {tag}-lkeeper\n\
             cn: {tag}-lkeeper\nsn: keeper\nemployeeNumber: {tag}-lkeeper\n\n\
             dn: cn={tag}-staff,{ldap_root}\nobjectClass: groupOfNames\ncn: {tag}-staff\n\
             member: uid={tag}-lkeeper,{ldap_root}\n"
        ));
        let sources = Sources {
            corp_root,
            fab_root,
            ldap_root,
        };
        let dir = TestDir::new(&format!("exact-{tag}"));
        let targets = new_targets(&format!("xa-{tag}"));
        let world = World {
            tag: tag.to_string(),
            sources,
            dir,
            targets,
            references: 0,
        };
        write_config(&world.dir.config(), &world.sources, &world.targets);
        world
    }

    /// One delta cycle of the state file under test.
    pub fn cycle(&self) -> Run {
        cycle_json(&self.dir.config(), false)
    }

    /// A state file built from nothing by one (full) cycle of the same sources into fresh
    /// targets: the oracle.
    pub fn reference(&mut self) -> (TestDir, Targets, Run) {
        self.references += 1;
        let dir = TestDir::new(&format!("exact-{}-ref{}", self.tag, self.references));
        let targets = new_targets(&format!("xb-{}-{}", self.tag, self.references));
        write_config(&dir.config(), &self.sources, &targets);
        let run = cycle_json(&dir.config(), true);
        (dir, targets, run)
    }
}

fn new_targets(name: &str) -> Targets {
    let ldap_base = ldap().create_ou(name);
    for ou in ["people", "groups"] {
        ldap().ldapadd(&format!(
            "dn: ou={ou},{ldap_base}\nobjectClass: organizationalUnit\nou: {ou}\n"
        ));
    }
    Targets {
        ldap_base,
        scim: scim::start(),
    }
}

fn ad_connector(name: &str, f: &Forest, root: &str, extra: &str) -> String {
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
include_ous = ["{root}"]
range_size = 3
{extra}
"#,
        url = f.ldaps_url,
        ca = f.ca_file.display(),
        bind = f.bind_dn,
        pw = f.password_file.display(),
        base = f.base_dn,
    )
}

/// The hand-written rules of the exact-deltas issue: not the out-of-box set.
fn write_config(path: &Path, s: &Sources, t: &Targets) {
    let l = ldap();
    let person = |anchor: &str| {
        format!(
            r#"flows = [
  {{ target = "sourceAnchor", expression = "{anchor}" }},
  {{ target = "uid", source = "sAMAccountName" }},
  {{ target = "cn", source = "cn" }},
  {{ target = "sn", source = "sn" }},
  {{ target = "givenName", source = "givenName" }},
  {{ target = "mail", source = "mail" }},
  {{ target = "title", source = "title" }},
  {{ target = "description", source = "description" }},
  {{ target = "employeeID", source = "employeeID" }},
  {{ target = "manager", source = "manager" }},
  {{ target = "objectSid", source = "objectSid" }},
  {{ target = "accountEnabled", expression = "BitAnd([userAccountControl], 2) = 0" }},
]"#
        )
    };
    let ad_anchor = "ConvertToBase64([objectGUID])";
    let text = format!(
        r#"state_file = "state.redb"
{corp_c}
{fab_c}
[[connector]]
name = "src"
type = "ldap"
url = "{lurl}"
starttls = true
ca_file = "{lca}"
bind_dn = "{lbind}"
bind_password_file = "{lpw}"
base_dn = "{lroot}"

[[connector]]
name = "openldap"
type = "ldap"
url = "{lurl}"
starttls = true
ca_file = "{lca}"
bind_dn = "{lbind}"
bind_password_file = "{lpw}"
base_dn = "{tbase}"

[[connector]]
name = "cloud"
type = "scim"
url = "{scim}"
danger_plaintext = true

[[inbound]]
name = "corp-users"
connector = "corp"
object_class = "user"
object_type = "person"
precedence = 10
join = [[ {{ cs = "employeeID", mv = "employeeID" }} ]]
{corp_person}

[[inbound]]
name = "fabrikam-users"
connector = "fabrikam"
object_class = "user"
object_type = "person"
precedence = 20
join = [[ {{ cs = "employeeID", mv = "employeeID" }} ]]
{fab_person}

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
  {{ target = "sourceAnchor", expression = "{ad_anchor}" }},
  {{ target = "cn", source = "cn" }},
  {{ target = "description", source = "description" }},
  {{ target = "member", source = "member" }},
]

[[inbound]]
name = "src-people"
connector = "src"
object_class = "inetOrgPerson"
object_type = "person"
precedence = 30
join = [[ {{ cs = "employeeNumber", mv = "employeeID" }} ]]
flows = [
  {{ target = "sourceAnchor", expression = "\"L-\" & [uid]" }},
  {{ target = "uid", source = "uid" }},
  {{ target = "cn", source = "cn" }},
  {{ target = "sn", source = "sn" }},
  {{ target = "mail", source = "mail" }},
  {{ target = "title", source = "title" }},
  {{ target = "employeeID", source = "employeeNumber" }},
  {{ target = "accountEnabled", expression = "True" }},
]

[[inbound]]
name = "src-groups"
connector = "src"
object_class = "groupOfNames"
object_type = "group"
precedence = 30
flows = [
  {{ target = "sourceAnchor", expression = "\"L-\" & [cn]" }},
  {{ target = "cn", source = "cn" }},
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
  {{ target = "sn", expression = "IIF(IsPresent([sn]), [sn], [cn])" }},
  {{ target = "givenName", source = "givenName" }},
  {{ target = "mail", source = "mail" }},
  {{ target = "title", source = "title" }},
  {{ target = "description", source = "description" }},
  {{ target = "employeeNumber", source = "employeeID" }},
  {{ target = "manager", source = "manager" }},
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

[[outbound]]
name = "cloud-users"
connector = "cloud"
object_type = "person"
object_class = "User"
dn = "externalId={{sourceAnchor}},ou=Users"
deprovision = "delete"
flows = [
  {{ target = "externalId", source = "sourceAnchor" }},
  {{ target = "userName", expression = "[uid] & \"@x.test\"" }},
  {{ target = "displayName", source = "cn" }},
  {{ target = "name.givenName", source = "givenName" }},
  {{ target = "name.familyName", source = "sn" }},
  {{ target = 'emails[type eq "work"].value', source = "mail" }},
  {{ target = 'emails[type eq "work"].primary', expression = "IIF(IsPresent([mail]), True, IgnoreThisFlow)" }},
  {{ target = "title", source = "title" }},
  {{ target = "active", source = "accountEnabled" }},
  {{ target = "{ENTERPRISE}:employeeNumber", source = "employeeID" }},
  {{ target = "{ENTERPRISE}:department", source = "description" }},
  {{ target = "{ENTERPRISE}:manager", source = "manager" }},
]

[[outbound]]
name = "cloud-groups"
connector = "cloud"
object_type = "group"
object_class = "Group"
dn = "externalId={{sourceAnchor}},ou=Groups"
deprovision = "delete"
flows = [
  {{ target = "externalId", source = "sourceAnchor" }},
  {{ target = "displayName", source = "cn" }},
  {{ target = "members", source = "member" }},
]
"#,
        corp_c = ad_connector("corp", corp(), &s.corp_root, ""),
        fab_c = ad_connector(
            "fabrikam",
            fab(),
            &s.fab_root,
            &format!("member_of = \"CN=Pilot,{}\"", s.fab_root)
        ),
        corp_person = person(ad_anchor),
        fab_person = person(ad_anchor),
        lurl = l.ldap_url,
        lca = l.ca_file.display(),
        lbind = l.bind_dn,
        lpw = l.password_file.display(),
        lroot = s.ldap_root,
        tbase = t.ldap_base,
        scim = t.scim.url,
    );
    std::fs::write(path, text).must("writing the differential test's config");
}

/// The state file of a config written by [`write_config`].
pub fn state_file(dir: &TestDir) -> PathBuf {
    dir.join("state.redb")
}

/// Every entry under a target's OpenLDAP OU (people and groups), with the attributes the
/// rules write.
pub fn ldap_entries(base: &str) -> Vec<crate::support::LdifEntry> {
    ldap().ldapsearch(
        base,
        Scope::Sub,
        "(|(objectClass=inetOrgPerson)(objectClass=groupOfNames))",
        &[
            "uid",
            "cn",
            "sn",
            "givenName",
            "mail",
            "title",
            "description",
            "employeeNumber",
            "manager",
            "member",
        ],
    )
}
