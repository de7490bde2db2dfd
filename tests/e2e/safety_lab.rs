//! What the safety tests share: LDIF sources of people and groups synced into a real slapd
//! target through the `ldap` connector, and reading that target back with the OpenLDAP
//! tools (not our own LDAP code).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::support::lab::slapd::Slapd;
use crate::support::lab::{LdapServer, Scope};
use crate::support::{Must, TestDir, norm_dn};

/// One person of a source file.
#[derive(Clone, Debug)]
pub struct Person {
    /// uid, also the source anchor and the target RDN.
    pub uid: String,
    /// mail.
    pub mail: String,
}

impl Person {
    /// Person number `i` with its own mail.
    pub fn numbered(i: usize) -> Person {
        Person {
            uid: format!("p{i:05}"),
            mail: format!("p{i:05}@example.test"),
        }
    }
}

/// A group of a source file: its cn and the uids of its members.
#[derive(Clone, Debug)]
pub struct Group {
    /// cn, also the target RDN.
    pub cn: String,
    /// Member uids (people of the same file).
    pub members: Vec<String>,
}

/// Writes a source LDIF file of people (and groups listing them) under `dc=<name>`.
pub fn write_source(path: &Path, name: &str, people: &[Person], groups: &[Group]) {
    let mut ldif = String::from("version: 1\n");
    for p in people {
        ldif.push_str(&format!(
            "\ndn: uid={uid},ou=people,dc={name}\nobjectClass: inetOrgPerson\nuid: {uid}\n\
             cn: Person {uid}\nsn: {uid}\nmail: {mail}\n",
            uid = p.uid,
            mail = p.mail
        ));
    }
    for g in groups {
        ldif.push_str(&format!(
            // The file's anchor attribute is uid, for groups too (an LDIF file has no schema).
            "\ndn: cn={cn},ou=groups,dc={name}\nobjectClass: groupOfNames\ncn: {cn}\nuid: group-{cn}\n",
            cn = g.cn
        ));
        for m in &g.members {
            ldif.push_str(&format!("member: uid={m},ou=people,dc={name}\n"));
        }
    }
    std::fs::write(path, ldif).must(&format!("writing {}", path.display()));
}

/// What a config file holds besides its connectors' fixed parts.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Source connector names; each reads `<name>.ldif` beside the config.
    pub sources: Vec<String>,
    /// Extra keys for the target connector (`deletion_threshold = 1000`, …).
    pub target_keys: String,
    /// Top-level keys (`staging = true`, `[schedule]` …) written first.
    pub top: String,
}

/// Writes `bridgehead.toml` in `dir`: each source's people (and groups) into `base` of
/// slapd `dst` as `uid=<uid>,<base>` / `cn=<cn>,<base>`, deletes deprovisioned as deletes.
pub fn write_config(dir: &TestDir, dst: &Slapd, base: &str, opts: &Options) -> PathBuf {
    let mut text = format!("state_file = \"state.redb\"\n{}\n", opts.top);
    for s in &opts.sources {
        text.push_str(&format!(
            "[[connector]]\nname = \"{s}\"\ntype = \"ldif\"\nmode = \"source\"\n\
             path = \"{s}.ldif\"\nanchor = \"uid\"\n\n"
        ));
    }
    text.push_str(&format!(
        "[[connector]]\nname = \"dst\"\ntype = \"ldap\"\nurl = \"{url}\"\nstarttls = true\n\
         ca_file = \"{ca}\"\nbind_dn = \"{bind}\"\nbind_password_file = \"{pw}\"\n\
         base_dn = \"{base}\"\n{keys}\n\n",
        url = dst.ldap_url,
        ca = dst.ca_file.display(),
        bind = dst.bind_dn,
        pw = dst.password_file.display(),
        keys = opts.target_keys,
    ));
    for (n, s) in opts.sources.iter().enumerate() {
        text.push_str(&format!(
            r#"[[inbound]]
name = "{s}-people"
connector = "{s}"
object_class = "inetOrgPerson"
object_type = "person"
precedence = {prec}
flows = [
  {{ target = "uid", source = "uid" }},
  {{ target = "cn", source = "cn" }},
  {{ target = "sn", source = "sn" }},
  {{ target = "mail", source = "mail" }},
]

[[inbound]]
name = "{s}-groups"
connector = "{s}"
object_class = "groupOfNames"
object_type = "group"
precedence = {prec}
flows = [
  {{ target = "cn", source = "cn" }},
  {{ target = "member", source = "member" }},
]

"#,
            prec = 10 + n
        ));
    }
    text.push_str(&format!(
        r#"[[outbound]]
name = "dst-people"
connector = "dst"
object_type = "person"
object_class = "inetOrgPerson"
dn = "uid={{uid}},{base}"
deprovision = "delete"
flows = [
  {{ target = "uid", source = "uid" }},
  {{ target = "cn", source = "cn" }},
  {{ target = "sn", source = "sn" }},
  {{ target = "mail", source = "mail" }},
]

[[outbound]]
name = "dst-groups"
connector = "dst"
object_type = "group"
object_class = "groupOfNames"
dn = "cn={{cn}},{base}"
deprovision = "delete"
flows = [
  {{ target = "cn", source = "cn" }},
  {{ target = "member", source = "member" }},
]
"#
    ));
    let path = dir.config();
    std::fs::write(&path, text).must("writing the config");
    path
}

/// The target as read back with ldapsearch: normalised DN → lower-cased attribute →
/// values (DN values normalised), entryUUID included (it proves an object was not
/// deleted and added again).
pub type Content = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

/// Reads every person and group under `base` of `dst`.
pub fn read_back(dst: &Slapd, base: &str) -> Content {
    let mut out = Content::new();
    for e in dst.ldapsearch(
        base,
        Scope::One,
        "(|(objectClass=inetOrgPerson)(objectClass=groupOfNames))",
        &["*", "entryUUID"],
    ) {
        let mut attrs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (name, v) in &e.attrs {
            let name = name.to_ascii_lowercase();
            let text = if name == "member" {
                norm_dn(&v.as_text())
            } else {
                v.as_text()
            };
            attrs.entry(name).or_default().insert(text);
        }
        out.insert(norm_dn(&e.dn), attrs);
    }
    out
}

/// The number of people under `base` of `dst`.
pub fn count_people(dst: &Slapd, base: &str) -> usize {
    dst.ldapsearch(base, Scope::One, "(objectClass=inetOrgPerson)", &["1.1"])
        .len()
}
