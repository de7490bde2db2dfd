//! Writeback to Active Directory: people from an OpenLDAP source are provisioned as users
//! into an OU of the corp forest (Samba AD) with an initial password (an apply-once flow
//! over LDAPS as unicodePwd) and enabled through userAccountControl; the user can then
//! bind with that password. A delete in the source disables the AD account (deprovision =
//! disable) instead of deleting it.

use std::path::{Path, PathBuf};

use crate::support::lab::client::LdapTools;
use crate::support::lab::samba::{self, Forest};
use crate::support::lab::slapd::{self, Slapd, SlapdOptions};
use crate::support::lab::{LdapServer, Scope, write_secret};
use crate::support::{Must, TestDir, connector_counts, cycle_json};

const INITIAL_PASSWORD: &str = "Br1dgehead-Init!";

fn config(dir: &TestDir, src: &Slapd, src_ou: &str, ad: &Forest, ad_ou: &str) -> PathBuf {
    let text = format!(
        r#"state_file = "state.redb"

[[connector]]
name = "hr"
type = "ldap"
url = "{surl}"
starttls = true
ca_file = "{sca}"
bind_dn = "{sbind}"
bind_password_file = "{spw}"
base_dn = "{sbase}"
include_ous = ["{src_ou}"]

[[connector]]
name = "corp"
type = "ad"
url = "{aurl}"
ca_file = "{aca}"
bind_dn = "{abind}"
bind_password_file = "{apw}"
base_dn = "{abase}"
include_ous = ["{ad_ou}"]

[[inbound]]
name = "hr-people"
connector = "hr"
object_class = "inetOrgPerson"
object_type = "person"
precedence = 10
join = [[ {{ cs = "employeeNumber", mv = "employeeID" }} ]]
flows = [
  {{ target = "uid", source = "uid" }},
  {{ target = "cn", source = "cn" }},
  {{ target = "sn", source = "sn" }},
  {{ target = "givenName", source = "givenName" }},
  {{ target = "title", source = "title" }},
  {{ target = "employeeID", source = "employeeNumber" }},
]

[[inbound]]
name = "corp-users"
connector = "corp"
object_class = "user"
object_type = "person"
precedence = 50
join = [[ {{ cs = "employeeID", mv = "employeeID" }} ]]
project = false
flows = []

[[outbound]]
name = "corp-writeback"
connector = "corp"
object_type = "person"
object_class = "user"
dn = "CN={{cn}},{ad_ou}"
deprovision = "disable"
disable_attribute = "userAccountControl"
disable_value = 514
flows = [
  {{ target = "sAMAccountName", source = "uid" }},
  {{ target = "userPrincipalName", expression = "[uid] & \"@{realm}\"" }},
  {{ target = "sn", source = "sn" }},
  {{ target = "givenName", source = "givenName" }},
  {{ target = "displayName", source = "cn" }},
  {{ target = "title", source = "title" }},
  {{ target = "employeeID", source = "employeeID" }},
  {{ target = "unicodePwd", constant = "{INITIAL_PASSWORD}", apply_once = true }},
  {{ target = "userAccountControl", constant = 512 }},
]
"#,
        surl = src.ldap_url,
        sca = src.ca_file.display(),
        sbind = src.bind_dn,
        spw = src.password_file.display(),
        sbase = src.base_dn,
        aurl = ad.ldaps_url,
        aca = ad.ca_file.display(),
        abind = ad.bind_dn,
        apw = ad.password_file.display(),
        abase = ad.base_dn,
        realm = ad.dns_domain,
    );
    let path = dir.config();
    std::fs::write(&path, text).must("writing the config");
    path
}

fn cycle(
    config: &Path,
) -> std::collections::BTreeMap<String, (crate::support::Counts, crate::support::Counts, u64)> {
    let run = cycle_json(config, false);
    run.ok();
    connector_counts(&run.json())
}

/// Whether `upn` can bind to the forest with `password` (an LDAPS simple bind).
fn can_bind(ad: &Forest, dir: &TestDir, upn: &str, password: &str) -> bool {
    let pw = dir.join(&format!("{upn}.pw"));
    write_secret(&pw, password);
    let tools = LdapTools {
        bind_dn: upn.to_string(),
        password_file: pw,
        ..ad.tools().clone()
    };
    tools
        .try_search("", Scope::Base, "(objectClass=*)", &["1.1"])
        .is_ok()
}

#[test]
fn ldap_writeback_to_ad_with_password() {
    let ad = samba::corp();
    let _hold = ad.hold();
    let src = slapd::start(SlapdOptions {
        syncprov: true,
        refint: false,
    });
    let src_ou = src.create_ou("hr");
    let ad_ou = ad.create_ou("e2e-writeback");
    let mut ldif = String::new();
    for i in 0..3 {
        ldif.push_str(&format!(
            "dn: uid=wb{i},{src_ou}\nobjectClass: inetOrgPerson\nuid: wb{i}\ncn: Writeback {i}\nsn: Back\ngivenName: Write{i}\ntitle: Engineer\nemployeeNumber: W{i:03}\n\n"
        ));
    }
    src.ldapadd(&ldif);

    let dir = TestDir::new("ldap-writeback");
    let cfg = config(&dir, &src, &src_ou, ad, &ad_ou);
    let counts = cycle(&cfg);
    assert_eq!(counts["corp"].1.adds, 3, "{counts:?}");
    assert_eq!(counts["corp"].2, 0, "{counts:?}");

    let users = ad.ldapsearch(
        &ad_ou,
        Scope::One,
        "(objectClass=user)",
        &[
            "sAMAccountName",
            "title",
            "employeeID",
            "userAccountControl",
            "userPrincipalName",
        ],
    );
    assert_eq!(users.len(), 3, "{users:?}");
    for u in &users {
        assert_eq!(u.first("title").as_deref(), Some("Engineer"));
        assert_eq!(
            u.first("userAccountControl").as_deref(),
            Some("512"),
            "enabled: {u:?}"
        );
    }
    let upn = format!("wb1@{}", ad.dns_domain);
    assert!(
        can_bind(ad, &dir, &upn, INITIAL_PASSWORD),
        "{upn} binds with the flowed password"
    );
    assert!(
        !can_bind(ad, &dir, &upn, "wrong-Passw0rd!"),
        "and not with another one"
    );

    // The confirming cycle neither resets the password nor changes anything.
    let counts = cycle(&cfg);
    assert_eq!(counts["corp"].1, Default::default(), "{counts:?}");

    // A change flows; the user's own password survives it (apply once).
    src.ldapmodify(&format!(
        "dn: uid=wb1,{src_ou}\nchangetype: modify\nreplace: title\ntitle: Architect\n"
    ));
    let new_pw = "Ch4nged-by-user!";
    ad.ldapmodify(&samba::set_password_ldif(
        &format!("CN=Writeback 1,{ad_ou}"),
        new_pw,
    ));
    let counts = cycle(&cfg);
    assert_eq!(counts["corp"].1.updates, 1, "{counts:?}");
    let u = ad.ldapsearch(
        &format!("CN=Writeback 1,{ad_ou}"),
        Scope::Base,
        "(objectClass=*)",
        &["title"],
    );
    assert_eq!(u[0].first("title").as_deref(), Some("Architect"));
    assert!(
        can_bind(ad, &dir, &upn, new_pw),
        "the user's own password is kept"
    );

    // Leaving the source disables the account.
    src.ldapdelete(&format!("uid=wb2,{src_ou}"));
    let counts = cycle(&cfg);
    assert_eq!(counts["corp"].1.updates, 1, "{counts:?}");
    let u = ad.ldapsearch(
        &format!("CN=Writeback 2,{ad_ou}"),
        Scope::Base,
        "(objectClass=*)",
        &["userAccountControl"],
    );
    assert_eq!(
        u[0].first("userAccountControl").as_deref(),
        Some("514"),
        "disabled"
    );
}

#[test]
fn ldap_writeback_password_refused_by_policy_leaves_no_half_made_user() {
    let ad = samba::corp();
    let _hold = ad.hold();
    let src = slapd::start(SlapdOptions {
        syncprov: true,
        refint: false,
    });
    let src_ou = src.create_ou("hr");
    let ad_ou = ad.create_ou("e2e-weak-password");
    src.ldapadd(&format!(
        "dn: uid=weak0,{src_ou}\nobjectClass: inetOrgPerson\nuid: weak0\ncn: Weak 0\nsn: Weak\ngivenName: W\ntitle: T\nemployeeNumber: K000\n"
    ));
    let dir = TestDir::new("ldap-weak-password");
    let cfg = config(&dir, &src, &src_ou, ad, &ad_ou);
    let text = std::fs::read_to_string(&cfg).must("reading the config");
    std::fs::write(&cfg, text.replace(INITIAL_PASSWORD, "abc")).must("writing the config");

    let run = cycle_json(&cfg, false);
    run.expect_code(1);
    let counts = connector_counts(&run.json());
    assert_eq!(counts["corp"].2, 1, "one object error: {counts:?}");
    let users = ad.ldapsearch(&ad_ou, Scope::One, "(objectClass=user)", &["1.1"]);
    assert!(users.is_empty(), "no user without its password: {users:?}");
    let errors = crate::support::run(&["errors", "-c", &cfg.display().to_string()]);
    assert!(
        errors.stdout.contains("CN=Weak 0")
            && (errors.stdout.contains("constraintViolation (19)")
                || errors.stdout.contains("unwillingToPerform (53)")),
        "the directory's refusal is kept on the object: {}",
        errors.stdout
    );
}
