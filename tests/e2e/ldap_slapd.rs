//! The `ldap` connector against a real OpenLDAP slapd: full import over StartTLS with the
//! lab CA verified, syncrepl deltas (modify, delete, rename, move), the modifyTimestamp
//! fallback on a server without syncprov, and export into a slapd target.

use std::path::Path;

use crate::support::lab::slapd::{self, Slapd, SlapdOptions};
use crate::support::lab::{LdapServer, Scope};
use crate::support::{Must, TestDir, connector_counts, cycle_json, read_ldif};

/// People as (uid, cn, mail, description) and groups as (cn, member uids), sorted.
pub(super) type Content = (
    Vec<(String, String, String, String)>,
    Vec<(String, Vec<String>)>,
);

/// A config: slapd `src` (its OU `ou`) → an LDIF target file.
pub(super) fn config_to_ldif(
    dir: &TestDir,
    src: &Slapd,
    ou: &str,
    delta: &str,
) -> std::path::PathBuf {
    let text = format!(
        r#"state_file = "state.redb"

[[connector]]
name = "src"
type = "ldap"
url = "{url}"
starttls = true
ca_file = "{ca}"
bind_dn = "{bind}"
bind_password_file = "{pw}"
base_dn = "{base}"
include_ous = ["{ou}"]
delta = "{delta}"
page_size = 7

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
join = [[ {{ cs = "uid", mv = "uid" }} ]]
flows = [
  {{ target = "uid", source = "uid" }},
  {{ target = "cn", source = "cn" }},
  {{ target = "sn", source = "sn" }},
  {{ target = "mail", source = "mail" }},
  {{ target = "description", source = "description" }},
  {{ target = "photo", source = "jpegPhoto" }},
]

[[inbound]]
name = "groups"
connector = "src"
object_class = "groupOfNames"
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
flows = [
  {{ target = "uid", source = "uid" }},
  {{ target = "cn", source = "cn" }},
  {{ target = "sn", source = "sn" }},
  {{ target = "mail", source = "mail" }},
  {{ target = "description", source = "description" }},
  {{ target = "jpegPhoto", source = "photo" }},
]

[[outbound]]
name = "out-groups"
connector = "out"
object_type = "group"
object_class = "groupOfNames"
dn = "cn={{cn}},ou=groups,dc=target"
deprovision = "delete"
flows = [
  {{ target = "cn", source = "cn" }},
  {{ target = "member", source = "member" }},
]
"#,
        url = src.ldap_url,
        ca = src.ca_file.display(),
        bind = src.bind_dn,
        pw = src.password_file.display(),
        base = src.base_dn,
    );
    let path = dir.config();
    std::fs::write(&path, text).must("writing the config");
    path
}

fn person(ou: &str, uid: &str, cn: &str, extra: &str) -> String {
    format!(
        "dn: uid={uid},{ou}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {cn}\nsn: {cn}\nmail: {uid}@example.test\n{extra}\n"
    )
}

/// What the target should hold, computed from the source with ldapsearch: uid → (cn, mail,
/// description), and group cn → member uids.
pub(super) fn expectation(src: &Slapd, ou: &str) -> Content {
    let people = src.ldapsearch(
        ou,
        Scope::Sub,
        "(objectClass=inetOrgPerson)",
        &["uid", "cn", "mail", "description"],
    );
    let mut p: Vec<_> = people
        .iter()
        .map(|e| {
            (
                e.first("uid").unwrap_or_default(),
                e.first("cn").unwrap_or_default(),
                e.first("mail").unwrap_or_default(),
                e.first("description").unwrap_or_default(),
            )
        })
        .collect();
    p.sort();
    let groups = src.ldapsearch(
        ou,
        Scope::Sub,
        "(objectClass=groupOfNames)",
        &["cn", "member"],
    );
    let mut g: Vec<_> = groups
        .iter()
        .map(|e| {
            let mut m: Vec<String> = e
                .values("member")
                .iter()
                .map(|dn| {
                    dn.split(',')
                        .next()
                        .unwrap_or_default()
                        .trim_start_matches("uid=")
                        .to_string()
                })
                .collect();
            m.sort();
            (e.first("cn").unwrap_or_default(), m)
        })
        .collect();
    g.sort();
    (p, g)
}

pub(super) fn actual(path: &Path) -> Content {
    let entries = read_ldif(path);
    let mut p: Vec<_> = entries
        .iter()
        .filter(|e| e.class().eq_ignore_ascii_case("inetOrgPerson"))
        .map(|e| {
            (
                e.first("uid").unwrap_or_default(),
                e.first("cn").unwrap_or_default(),
                e.first("mail").unwrap_or_default(),
                e.first("description").unwrap_or_default(),
            )
        })
        .collect();
    p.sort();
    let mut g: Vec<_> = entries
        .iter()
        .filter(|e| e.class().eq_ignore_ascii_case("groupOfNames"))
        .map(|e| {
            let mut m: Vec<String> = e
                .values("member")
                .iter()
                .map(|dn| {
                    dn.split(',')
                        .next()
                        .unwrap_or_default()
                        .trim_start_matches("uid=")
                        .to_string()
                })
                .collect();
            m.sort();
            (e.first("cn").unwrap_or_default(), m)
        })
        .collect();
    g.sort();
    (p, g)
}

fn cycle(
    config: &Path,
) -> std::collections::BTreeMap<String, (crate::support::Counts, crate::support::Counts, u64)> {
    let run = cycle_json(config, false);
    run.ok();
    connector_counts(&run.json())
}

pub(super) fn load_fixture(src: &Slapd, ou: &str) {
    let mut ldif = String::new();
    for i in 0..30 {
        let extra = match i {
            0 => "description: Zoë Ångström — ünïcödé\n".to_string(),
            1 => "jpegPhoto:: /9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAMCAgICAgMCAgIDAwMDBAYEBAQEBAgGBgUGCQgKCgkICQkKDA8MCgsOCwkJDRENDg8QEBEQCgwSExIQEw8QEBD/\n".to_string(),
            _ => format!("description: person {i}\n"),
        };
        ldif.push_str(&person(
            ou,
            &format!("u{i:02}"),
            &format!("User {i:02}"),
            &extra,
        ));
    }
    ldif.push_str(&format!(
        "dn: cn=Staff\\, all,{ou}\nobjectClass: groupOfNames\ncn: Staff, all\n{}\n",
        (0..30)
            .map(|i| format!("member: uid=u{i:02},{ou}\n"))
            .collect::<String>()
    ));
    src.ldapadd(&ldif);
}

#[test]
fn ldap_slapd_syncrepl_import_and_deltas() {
    let src = slapd::start(SlapdOptions {
        syncprov: true,
        refint: false,
    });
    let ou = src.create_ou("syncrepl");
    load_fixture(&src, &ou);
    let dir = TestDir::new("ldap-syncrepl");
    let config = config_to_ldif(&dir, &src, &ou, "syncrepl");

    let counts = cycle(&config);
    assert_eq!(counts["src"].0.adds, 31, "{counts:?}");
    assert_eq!(actual(&dir.join("out.ldif")), expectation(&src, &ou));
    let out = read_ldif(&dir.join("out.ldif"));
    assert!(out.iter().any(|e| {
        e.first("description")
            .is_some_and(|d| d.contains("Ångström"))
    }));
    assert!(
        out.iter().any(|e| e.values("jpegPhoto").len() == 1),
        "binary jpegPhoto flowed"
    );

    // A quiet delta: nothing changed, nothing imported.
    let counts = cycle(&config);
    assert_eq!(counts["src"].0, Default::default(), "{counts:?}");

    // 4 modifies, 2 deletes (one a group member), 1 rename, 1 move out of scope.
    let mut mods = String::new();
    for i in 2..6 {
        mods.push_str(&format!("dn: uid=u{i:02},{ou}\nchangetype: modify\nreplace: description\ndescription: changed {i}\n\n"));
    }
    mods.push_str(&format!(
        "dn: uid=u10,{ou}\nchangetype: delete\n\ndn: uid=u11,{ou}\nchangetype: delete\n\n"
    ));
    mods.push_str(&format!(
        "dn: uid=u12,{ou}\nchangetype: modrdn\nnewrdn: uid=u12b\ndeleteoldrdn: 1\n\n"
    ));
    let away = src.create_ou("syncrepl-away");
    mods.push_str(&format!("dn: uid=u13,{ou}\nchangetype: modrdn\nnewrdn: uid=u13\ndeleteoldrdn: 1\nnewsuperior: {away}\n\n"));
    // What slapd's refint overlay (not loaded here) would do to the group.
    mods.push_str(&format!(
        "dn: cn=Staff\\, all,{ou}\nchangetype: modify\ndelete: member\nmember: uid=u10,{ou}\nmember: uid=u11,{ou}\nmember: uid=u12,{ou}\nmember: uid=u13,{ou}\n-\nadd: member\nmember: uid=u12b,{ou}\n\n"
    ));
    src.ldapmodify(&mods);

    let counts = cycle(&config);
    let import = counts["src"].0;
    // u13 left the included OU: a delete for the engine. u12's rename changes uid (and the
    // group's member value follows it server-side only if refint runs; here it does not).
    assert_eq!(import.deletes, 3, "{counts:?}");
    assert_eq!(import.updates, 5, "4 people and the group: {counts:?}");
    assert_eq!(import.renames, 1, "{counts:?}");
    assert_eq!(actual(&dir.join("out.ldif")), expectation(&src, &ou));
}

#[test]
fn ldap_slapd_without_syncprov_polls_modify_timestamp() {
    let src = slapd::start(SlapdOptions {
        syncprov: false,
        refint: false,
    });
    let ou = src.create_ou("timestamp");
    load_fixture(&src, &ou);
    let dir = TestDir::new("ldap-timestamp");
    // "auto" finds no syncrepl on this server and falls back to modifyTimestamp polling.
    let config = config_to_ldif(&dir, &src, &ou, "auto");
    let counts = cycle(&config);
    assert_eq!(counts["src"].0.adds, 31, "{counts:?}");
    assert_eq!(actual(&dir.join("out.ldif")), expectation(&src, &ou));

    let counts = cycle(&config);
    assert_eq!(counts["src"].0, Default::default(), "{counts:?}");

    src.ldapmodify(&format!(
        "dn: uid=u03,{ou}\nchangetype: modify\nreplace: description\ndescription: polled\n\n\
         dn: uid=u04,{ou}\nchangetype: modify\nreplace: mail\nmail: new4@example.test\n\n\
         dn: cn=Staff\\, all,{ou}\nchangetype: modify\ndelete: member\nmember: uid=u05,{ou}\n\n\
         dn: uid=u05,{ou}\nchangetype: delete\n"
    ));
    let counts = cycle(&config);
    let import = counts["src"].0;
    // Deletes leave no timestamp: the anchor sweep finds them.
    assert_eq!((import.updates, import.deletes), (3, 1), "{counts:?}");
    assert_eq!(actual(&dir.join("out.ldif")), expectation(&src, &ou));
}

#[test]
fn ldap_check_verifies_tls_and_credentials() {
    let src = slapd::shared();
    let _hold = src.hold();
    let ou = src.create_ou("check");
    let dir = TestDir::new("ldap-check");
    let config = config_to_ldif(&dir, src, &ou, "auto");
    let ok = crate::support::run(&["check", "-c", &config.display().to_string()]);
    ok.ok();
    assert!(ok.stdout.contains("connector src: ok"), "{}", ok.stdout);

    // A wrong password: the directory's refusal, named, exit code 3.
    let text = std::fs::read_to_string(&config).must("reading the config");
    let bad_pw = dir.join("bad.pw");
    std::fs::write(&bad_pw, "not-the-password").must("writing a password file");
    std::fs::write(
        &config,
        text.replace(
            &src.password_file.display().to_string(),
            &bad_pw.display().to_string(),
        ),
    )
    .must("writing the config");
    let refused = crate::support::run(&["check", "-c", &config.display().to_string()]);
    refused.expect_code(3);
    assert!(
        refused.stdout.contains("invalidCredentials"),
        "{}",
        refused.stdout
    );

    // A CA that did not sign the server's certificate: the TLS handshake fails.
    let foreign = crate::support::lab::tls::foreign_ca();
    std::fs::write(
        &config,
        text.replace(
            &src.ca_file.display().to_string(),
            &foreign.display().to_string(),
        ),
    )
    .must("writing the config");
    let untrusted = crate::support::run(&["check", "-c", &config.display().to_string()]);
    untrusted.expect_code(3);
    assert!(
        untrusted.stdout.to_lowercase().contains("certificate"),
        "{}",
        untrusted.stdout
    );
}
