//! A directory that goes away in the middle of a cycle: the cycle reports it (exit code 3),
//! keeps what it had, and the next cycle completes with nothing lost or doubled. Real slapd
//! instances are stopped mid-import and mid-export.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::lab::slapd::{self, Slapd, SlapdOptions};
use crate::support::lab::{LdapServer, Scope};
use crate::support::{Must, TestDir, connector_counts, cycle_json, read_ldif};

fn people(ou: &str, n: usize) -> String {
    let mut ldif = String::new();
    for i in 0..n {
        ldif.push_str(&format!(
            "dn: uid=p{i:05},{ou}\nobjectClass: inetOrgPerson\nuid: p{i:05}\ncn: Person {i}\nsn: P\nmail: p{i:05}@example.test\n\n"
        ));
    }
    ldif
}

fn count(server: &Slapd, base: &str) -> usize {
    server
        .ldapsearch(base, Scope::One, "(objectClass=inetOrgPerson)", &["1.1"])
        .len()
}

#[test]
fn ldap_directory_down_mid_import() {
    const N: usize = 20_000;
    let src = slapd::start(SlapdOptions {
        syncprov: true,
        refint: false,
    });
    let ou = format!("ou=people,{}", src.base_dn);
    src.bulk_load(&people(&ou, N));
    let dir = TestDir::new("ldap-down-import");
    let cfg = super::ldap_slapd::config_to_ldif(&dir, &src, &ou, "syncrepl");

    let started = Instant::now();
    let first = std::thread::spawn({
        let cfg = cfg.clone();
        move || cycle_json(&cfg, false)
    });
    std::thread::sleep(Duration::from_millis(800));
    let outage = src.exclusive();
    src.stop();
    let Ok(first) = first.join() else {
        panic!("the first cycle's thread panicked")
    };
    assert_eq!(
        first.code(),
        Some(3),
        "the source went away {:?} into the cycle, which should report it: {}",
        started.elapsed(),
        crate::support::tail(&first.stderr)
    );
    src.start();
    drop(outage);

    let run = cycle_json(&cfg, false);
    run.ok();
    let counts = connector_counts(&run.json());
    let target = read_ldif(&dir.join("out.ldif"));
    assert_eq!(target.len(), N, "every person exactly once: {counts:?}");
    assert_eq!(counts["out"].2, 0, "{counts:?}");
    let again = cycle_json(&cfg, false);
    again.ok();
    let c = connector_counts(&again.json());
    assert_eq!(c["src"].0, Default::default(), "{c:?}");
}

fn config_to_slapd(dir: &TestDir, src: &Slapd, src_ou: &str, dst: &Slapd) -> std::path::PathBuf {
    let conn = |name: &str, s: &Slapd, extra: &str| {
        format!(
            "[[connector]]\nname = \"{name}\"\ntype = \"ldap\"\nurl = \"{}\"\nstarttls = true\nca_file = \"{}\"\nbind_dn = \"{}\"\nbind_password_file = \"{}\"\nbase_dn = \"{}\"\n{extra}\n",
            s.ldap_url,
            s.ca_file.display(),
            s.bind_dn,
            s.password_file.display(),
            s.base_dn
        )
    };
    let text = format!(
        r#"state_file = "state.redb"

{src_c}
{dst_c}
[[inbound]]
name = "people"
connector = "src"
object_class = "inetOrgPerson"
object_type = "person"
precedence = 10
flows = [
  {{ target = "uid", source = "uid" }},
  {{ target = "cn", source = "cn" }},
  {{ target = "mail", source = "mail" }},
]

[[outbound]]
name = "copy"
connector = "dst"
object_type = "person"
object_class = "inetOrgPerson"
dn = "uid={{uid}},ou=people,{dbase}"
deprovision = "delete"
flows = [
  {{ target = "uid", source = "uid" }},
  {{ target = "cn", source = "cn" }},
  {{ target = "sn", source = "uid" }},
  {{ target = "mail", source = "mail" }},
]
"#,
        src_c = conn("src", src, &format!("include_ous = [\"{src_ou}\"]")),
        dst_c = conn("dst", dst, "deletion_threshold = 5000"),
        dbase = dst.base_dn,
    );
    let path = dir.config();
    std::fs::write(&path, text).must("writing the config");
    path
}

#[test]
fn ldap_directory_down_mid_export() {
    const N: usize = 3_000;
    let src = slapd::start(SlapdOptions {
        syncprov: true,
        refint: false,
    });
    let dst = slapd::start(SlapdOptions {
        syncprov: true,
        refint: false,
    });
    let ou = format!("ou=people,{}", src.base_dn);
    src.bulk_load(&people(&ou, N));
    let dir = TestDir::new("ldap-down-export");
    let cfg = config_to_slapd(&dir, &src, &ou, &dst);
    let dst_people = format!("ou=people,{}", dst.base_dn);

    let first = std::thread::spawn({
        let cfg = cfg.clone();
        move || cycle_json(&cfg, false)
    });
    // Stop the target once the export is under way.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let n = dst
            .tools()
            .try_search(
                &dst_people,
                Scope::One,
                "(objectClass=inetOrgPerson)",
                &["1.1"],
            )
            .map(|v| v.len())
            .unwrap_or(0);
        if n >= 100 {
            break;
        }
        assert!(Instant::now() < deadline, "the export never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let outage = dst.exclusive();
    dst.stop();
    let Ok(first) = first.join() else {
        panic!("the first cycle's thread panicked")
    };
    assert_eq!(
        first.code(),
        Some(3),
        "{}",
        crate::support::tail(&first.stderr)
    );
    dst.start();
    drop(outage);
    let partial = count(&dst, &dst_people);
    assert!(
        partial > 0 && partial < N,
        "stopped mid-export: {partial} of {N}"
    );

    let run = cycle_json(&cfg, false);
    run.ok();
    let counts = connector_counts(&run.json());
    assert_eq!(counts["dst"].2, 0, "no object errors: {counts:?}");
    assert_eq!(
        count(&dst, &dst_people),
        N,
        "every person exactly once: {counts:?}"
    );
    // Nothing left to do, nothing doubled.
    let again = cycle_json(&cfg, false);
    again.ok();
    let c = connector_counts(&again.json());
    assert_eq!(c["dst"].1, Default::default(), "{c:?}");
    assert_eq!(count(&dst, &dst_people), N);
    assert!(Path::new(&dir.join("state.redb")).exists());
}
