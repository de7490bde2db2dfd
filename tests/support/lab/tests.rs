//! Tests of the lab itself: the servers come up, TLS verifies against the lab CA (and only
//! against it), the helpers do what they say. Names start with `lab_`:
//! `cargo test --test main lab_ -- --nocapture`. The `lab_measure_*` tests are ignored by
//! default; they print the figures the README quotes (`-- --ignored lab_measure`).

use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::client::LdapTools;
use super::samba::{self, Forest};
use super::slapd::{self, SlapdOptions};
use super::{Gate, LdapServer, Scope, tls, try_run};
use crate::support::Must;

/// A TLS handshake with rustls (what the connectors use) against `addr`, verifying the
/// certificate for `server_name` (an IP address or a host name) against `ca`.
fn rustls_handshake(addr: &str, server_name: &str, ca: &Path) -> Result<(), String> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).must("reading the CA file") {
        roots
            .add(cert.must("parsing the CA certificate"))
            .must("trusting the CA");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .must("rustls protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(server_name.to_string()).must("a server name");
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).must("a TLS client");
    let mut sock = TcpStream::connect(addr).must(&format!("connecting to {addr}"));
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .must("setting a read timeout");
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The same tools with another CA file.
fn with_ca(tools: &LdapTools, ca: &Path) -> LdapTools {
    LdapTools {
        ca_file: ca.to_path_buf(),
        ..tools.clone()
    }
}

fn root_dse(server: &impl LdapServer, attr: &str) -> Vec<String> {
    server
        .ldapsearch("", Scope::Base, "(objectClass=*)", &[attr])
        .first()
        .must("the rootDSE")
        .values(attr)
}

/// Users (enabled, no password), then contacts, then one group holding them all.
fn ad_fixture(ou: &str, prefix: &str, users: usize, contacts: usize) -> String {
    let mut ldif = String::new();
    let mut members = Vec::new();
    for i in 0..users {
        let dn = format!("CN={prefix} user {i},{ou}");
        ldif.push_str(&format!(
            "dn: {dn}\nobjectClass: user\nsAMAccountName: {prefix}{i}\ngivenName: User\n\
             sn: N{i}\ndisplayName: {prefix} user {i}\nmail: {prefix}{i}@corp.example.test\n\
             userAccountControl: 544\n\n"
        ));
        members.push(dn);
    }
    for i in 0..contacts {
        let dn = format!("CN={prefix} contact {i},{ou}");
        ldif.push_str(&format!(
            "dn: {dn}\nobjectClass: contact\ngivenName: Contact\nsn: N{i}\n\
             mail: {prefix}c{i}@example.net\n\n"
        ));
        members.push(dn);
    }
    ldif.push_str(&format!(
        "dn: CN={prefix} all,{ou}\nobjectClass: group\nsAMAccountName: {prefix}all\n"
    ));
    for m in members {
        ldif.push_str(&format!("member: {m}\n"));
    }
    ldif
}

#[test]
fn lab_samba_corp_ldaps_verified() {
    let corp = samba::corp();
    let _up = corp.hold();
    assert_eq!(
        root_dse(corp, "defaultNamingContext"),
        [corp.base_dn.as_str()]
    );

    // Another CA: the OpenLDAP tools (GnuTLS, REQCERT=demand) refuse the server.
    let foreign = with_ca(corp.tools(), tls::foreign_ca());
    let refused = foreign
        .try_search("", Scope::Base, "(objectClass=*)", &[])
        .err()
        .must("LDAPS verified against a foreign CA must fail");
    assert!(
        refused.stderr.contains("Can't contact LDAP server"),
        "{refused:?}"
    );

    // Plain LDAP: simple binds are refused, as on Windows AD; StartTLS on 389 verifies too.
    let plain = LdapTools {
        url: corp.ldap_url.clone(),
        ..corp.tools().clone()
    };
    let strong = plain
        .try_search("", Scope::Base, "(objectClass=*)", &[])
        .err()
        .must("a simple bind without TLS must be refused");
    assert!(strong.stderr.contains("Strong"), "{strong:?}");
    let starttls = LdapTools {
        starttls: true,
        ..plain
    };
    assert_eq!(
        starttls
            .search("", Scope::Base, "(objectClass=*)", &["dnsHostName"])
            .len(),
        1
    );

    // rustls accepts the certificate by IP address and by host name, with the lab CA only.
    let addr = format!("{}:636", corp.ip);
    rustls_handshake(&addr, &corp.ip, &corp.ca_file).must("rustls by IP with the lab CA");
    rustls_handshake(&addr, &corp.host, &corp.ca_file).must("rustls by name with the lab CA");
    let err = rustls_handshake(&addr, &corp.ip, tls::foreign_ca())
        .err()
        .must("rustls with a foreign CA must fail");
    assert!(err.contains("UnknownIssuer"), "{err}");
    let err = rustls_handshake(&addr, "dc1.fabrikam.example.test", &corp.ca_file)
        .err()
        .must("rustls with the wrong name must fail");
    assert!(err.contains("not valid for name"), "{err}");

    // The password file holds exactly the password, private to its owner.
    use std::os::unix::fs::PermissionsExt as _;
    let meta = std::fs::metadata(&corp.password_file).must("the password file");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert_eq!(
        std::fs::read_to_string(&corp.password_file).must("reading it"),
        corp.password
    );
}

#[test]
fn lab_samba_two_forests() {
    let (corp, fabrikam) = (samba::corp(), samba::fabrikam());
    let (_c, _f) = (corp.hold(), fabrikam.hold());
    assert_eq!(fabrikam.ip, "127.0.0.2");
    assert_eq!(
        (fabrikam.realm.as_str(), fabrikam.domain.as_str()),
        ("FABRIKAM.EXAMPLE.TEST", "FABRIKAM")
    );
    assert_eq!(
        fabrikam.bind_dn,
        format!("Administrator@{}", fabrikam.dns_domain)
    );
    assert_eq!(corp.bind_dn, "Administrator@corp.example.test");
    assert_eq!(
        root_dse(corp, "ldapServiceName"),
        [format!("{}:dc1$@{}", corp.dns_domain, corp.realm)]
    );
    assert_eq!(fabrikam.base_dn, "DC=fabrikam,DC=example,DC=test");
    assert_eq!(
        root_dse(fabrikam, "defaultNamingContext"),
        [fabrikam.base_dn.as_str()]
    );
    assert_eq!(
        root_dse(corp, "defaultNamingContext"),
        [corp.base_dn.as_str()]
    );
    assert_ne!(
        corp.sid_of(&corp.base_dn),
        fabrikam.sid_of(&fabrikam.base_dn)
    );
    // One lab CA verifies both DCs.
    assert_eq!(corp.ca_file, fabrikam.ca_file);
    rustls_handshake("127.0.0.2:636", &fabrikam.host, &fabrikam.ca_file)
        .must("rustls to fabrikam with the lab CA");

    // A corp user with a password set over LDAPS can bind; fabrikam takes it as a foreign
    // member by SID and makes the ForeignSecurityPrincipal itself.
    let ou = corp.create_ou("lab-two-forests");
    let user = format!("CN=Two Forests,{ou}");
    corp.ldapadd(&format!(
        "dn: {user}\nobjectClass: user\nsAMAccountName: labtwoforests\nuserAccountControl: 512\n\
         unicodePwd:: {}\n",
        samba::unicode_pwd("First-Passw0rd!")
    ));
    corp.ldapmodify(&samba::set_password_ldif(&user, "Second-Passw0rd!"));
    std::fs::write(corp.dir.join("ldif/two-forests-pw"), "Second-Passw0rd!").must("pw file");
    let as_user = LdapTools {
        bind_dn: "labtwoforests@corp.example.test".into(),
        password_file: corp.dir.join("ldif/two-forests-pw"),
        ..corp.tools().clone()
    };
    as_user
        .try_search("", Scope::Base, "(objectClass=*)", &[])
        .must("binding as the user with the password set by ldapmodify");

    let sid = corp.sid_of(&user);
    assert!(
        sid.starts_with(&format!("{}-", corp.sid_of(&corp.base_dn))),
        "{sid}"
    );
    let f_ou = fabrikam.create_ou("lab-two-forests");
    let group = format!("CN=Partners,{f_ou}");
    fabrikam.ldapadd(&format!(
        "dn: {group}\nobjectClass: group\nsAMAccountName: labpartners\nmember: <SID={sid}>\n"
    ));
    let member = fabrikam
        .entry(&group, &["member"])
        .must("the fabrikam group")
        .values("member");
    assert_eq!(member.len(), 1);
    assert!(
        member[0].starts_with(&format!("CN={sid},CN=ForeignSecurityPrincipals,")),
        "{member:?}"
    );
    fabrikam.ldapdelete(&group);
    assert!(fabrikam.entry(&group, &[]).is_none());
}

#[test]
fn lab_samba_bulk_load_and_restart() {
    let corp = samba::corp();
    let ou = corp.create_ou("lab-bulk");
    let mut ldif = ad_fixture(&ou, "labbulk", 200, 300);
    ldif.push_str(&format!(
        "\ndn: CN=With Password,{ou}\nobjectClass: user\nsAMAccountName: labbulkpw\n\
         userAccountControl: 512\nunicodePwd:: {}\n",
        samba::unicode_pwd("Bulk-Passw0rd!")
    ));
    corp.bulk_load(&ldif);
    let found = corp.ldapsearch(&ou, Scope::One, "(objectClass=user)", &["objectGUID"]);
    assert_eq!(found.len(), 200 + 1, "200 users and one with a password");
    let contacts = corp.ldapsearch(&ou, Scope::One, "(objectClass=contact)", &["cn"]);
    assert_eq!(contacts.len(), 300);
    let group = corp
        .entry(&format!("CN=labbulk all,{ou}"), &["member"])
        .must("the group");
    assert_eq!(group.values("member").len(), 500);
    std::fs::write(corp.dir.join("ldif/bulk-pw"), "Bulk-Passw0rd!").must("pw file");
    LdapTools {
        bind_dn: "labbulkpw@corp.example.test".into(),
        password_file: corp.dir.join("ldif/bulk-pw"),
        ..corp.tools().clone()
    }
    .try_search("", Scope::Base, "(objectClass=*)", &[])
    .must("binding as a user whose password came in through bulk_load");

    // Down means down (connection refused), and back up with the data.
    let outage = corp.exclusive();
    corp.stop();
    let down = corp
        .tools()
        .try_search("", Scope::Base, "(objectClass=*)", &[])
        .err()
        .must("a stopped DC must not answer");
    assert!(down.stderr.contains("Can't contact"), "{down:?}");
    corp.start();
    drop(outage);
    assert_eq!(
        corp.ldapsearch(&ou, Scope::One, "(objectClass=contact)", &["cn"])
            .len(),
        300
    );
}

#[test]
fn lab_slapd_starttls_and_syncprov() {
    let s = slapd::shared();
    let _up = s.hold();
    assert!(s.options.syncprov);
    assert_eq!(s.bind_dn, "cn=admin,dc=example,dc=test");
    assert_eq!(
        std::fs::read_to_string(&s.password_file).must("the password file"),
        s.password
    );
    assert!(
        root_dse(s, "supportedControl").contains(&"1.3.6.1.4.1.4203.1.9.1.1".to_string()),
        "syncprov's content sync control is missing from the rootDSE"
    );
    assert_eq!(root_dse(s, "namingContexts"), [s.base_dn.as_str()]);
    for ou in ["ou=people", "ou=groups"] {
        assert!(
            s.entry(&format!("{ou},{}", s.base_dn), &[]).is_some(),
            "{ou}"
        );
    }

    // StartTLS and LDAPS verify against the lab CA, and fail against another.
    let foreign = with_ca(s.tools(), tls::foreign_ca());
    assert!(
        foreign
            .try_search("", Scope::Base, "(objectClass=*)", &[])
            .is_err()
    );
    let ldaps = LdapTools {
        url: s.ldaps_url.clone(),
        starttls: false,
        ..s.tools().clone()
    };
    ldaps
        .try_search("", Scope::Base, "(objectClass=*)", &[])
        .must("LDAPS with the lab CA");
    assert!(
        with_ca(&ldaps, tls::foreign_ca())
            .try_search("", Scope::Base, "(objectClass=*)", &[])
            .is_err()
    );
    let port = s.ldaps_url.rsplit(':').next().must("a port");
    rustls_handshake(&format!("127.0.0.1:{port}"), "127.0.0.1", &s.ca_file)
        .must("rustls to slapd by IP");

    // ldapi with root's peer credentials manages cn=config.
    let out = try_run(
        Command::new("ldapsearch")
            .args(["-Q", "-LLL", "-Y", "EXTERNAL", "-H", &s.ldapi_url])
            .args(["-b", "cn=config", "-s", "base", "dn"]),
        Duration::from_secs(30),
    )
    .must("ldapsearch over ldapi");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The helpers round-trip, and a refreshOnly content sync sees the entry.
    let ou = s.create_ou("lab-slapd");
    let dn = format!("uid=ann,{ou}");
    s.ldapadd(&format!(
        "dn: {dn}\nobjectClass: inetOrgPerson\nuid: ann\ncn: Ann\nsn: Lee\n"
    ));
    s.ldapmodify(&format!(
        "dn: {dn}\nchangetype: modify\nreplace: sn\nsn: Lim\n"
    ));
    assert_eq!(s.entry(&dn, &["sn"]).must("ann").values("sn"), ["Lim"]);
    let sync = try_run(
        s.tools().command("ldapsearch").args([
            "-LLL",
            "-E",
            "!sync=ro",
            "-b",
            &ou,
            "(uid=ann)",
            "entryUUID",
        ]),
        Duration::from_secs(30),
    )
    .must("a content sync search");
    assert!(
        sync.status.success(),
        "{}",
        String::from_utf8_lossy(&sync.stderr)
    );
    let synced = crate::support::parse_ldif(&sync.stdout).must("parsing the sync output");
    assert_eq!(synced.len(), 1, "{synced:?}");
    assert_eq!(
        crate::support::norm_dn(&synced[0].dn),
        crate::support::norm_dn(&dn)
    );
    assert_eq!(
        s.ldapsearch(&s.base_dn, Scope::Sub, "(uid=ann)", &["cn"])
            .len(),
        1
    );
    s.ldapdelete(&dn);
    assert!(s.entry(&dn, &[]).is_none());
}

#[test]
fn lab_slapd_without_syncprov() {
    let s = slapd::start(SlapdOptions {
        syncprov: false,
        refint: false,
    });
    assert!(!root_dse(&s, "supportedControl").contains(&"1.3.6.1.4.1.4203.1.9.1.1".to_string()));
    // A critical sync control is refused (unavailableCriticalExtension, 12).
    let sync = try_run(
        s.tools().command("ldapsearch").args([
            "-LLL",
            "-E",
            "!sync=ro",
            "-b",
            &s.base_dn,
            "(objectClass=*)",
        ]),
        Duration::from_secs(30),
    )
    .must("a content sync search");
    assert_eq!(
        sync.status.code(),
        Some(12),
        "{}",
        String::from_utf8_lossy(&sync.stderr)
    );

    // Dropping it stops it.
    let pid: u32 = std::fs::read_to_string(s.dir.join("slapd.pid"))
        .must("slapd.pid")
        .trim()
        .parse()
        .must("a pid");
    drop(s);
    assert!(
        super::process::proc_stat(pid).is_none_or(|p| p.state == 'Z'),
        "slapd {pid} survived drop"
    );
}

fn people_ldif(ou: &str, n: usize) -> String {
    let mut ldif = format!("dn: {ou}\nobjectClass: organizationalUnit\nou: bulk\n\n");
    for i in 0..n {
        ldif.push_str(&format!(
            "dn: uid=u{i:06},{ou}\nobjectClass: inetOrgPerson\nuid: u{i:06}\ncn: User {i}\n\
             sn: N{i}\nmail: u{i:06}@example.test\n\n"
        ));
    }
    ldif
}

#[test]
fn lab_slapd_bulk_load() {
    let s = slapd::start(SlapdOptions::default());
    let ou = format!("ou=bulk,{}", s.base_dn);
    s.bulk_load(&people_ldif(&ou, 10_000));
    // More than the default 500-entry limit, for a non-root user too: limits are raised.
    let found = s.ldapsearch(&ou, Scope::One, "(objectClass=inetOrgPerson)", &["uid"]);
    assert_eq!(found.len(), 10_000);
    // The restart kept the ports, and syncprov knows the loaded state (contextCSN).
    let base = s.entry(&s.base_dn, &["contextCSN"]).must("the suffix");
    assert_eq!(
        base.values("contextCSN").len(),
        1,
        "slapadd -w sets contextCSN"
    );
}

#[test]
fn lab_gate_nests_and_excludes() {
    let gate = Arc::new(Gate::default());
    let outer = gate.shared();
    let inner = gate.exclusive(); // only this thread holds it: an upgrade is allowed
    assert!(gate.held_exclusively());
    let nested = gate.shared();
    drop((nested, inner));
    let other = {
        let gate = Arc::clone(&gate);
        std::thread::spawn(move || {
            let t = Instant::now();
            let _x = gate.exclusive();
            t.elapsed()
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    drop(outer);
    let waited = other.join().ok().must("the other thread");
    assert!(
        waited >= Duration::from_millis(150),
        "exclusive did not wait: {waited:?}"
    );
}

#[test]
fn lab_gate_two_holders_may_both_upgrade() {
    // Two tests that hold a server shared and then each restart it: both finish.
    let gate = Arc::new(Gate::default());
    let ready = Arc::new(std::sync::Barrier::new(2));
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (gate, ready) = (Arc::clone(&gate), Arc::clone(&ready));
            std::thread::spawn(move || {
                let _up = gate.shared();
                ready.wait();
                let _alone = gate.exclusive();
                assert!(gate.held_exclusively());
            })
        })
        .collect();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let done = workers.into_iter().all(|w| w.join().is_ok());
        let _ = tx.send(done);
    });
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(10)).ok(),
        Some(true),
        "two upgrading holders deadlocked or failed"
    );
}

#[test]
fn lab_ad_value_encodings() {
    assert_eq!(samba::unicode_pwd("abc"), "IgBhAGIAYwAiAA==");
    let sid = [
        1, 4, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0xe9, 3, 0, 0,
    ];
    assert_eq!(samba::sid_to_string(&sid), "S-1-5-21-1-2-1001");
    let ldif = samba::set_password_ldif("CN=Zoë,DC=x", "p");
    assert!(
        ldif.starts_with("dn:: "),
        "non-ASCII DN goes base64: {ldif}"
    );
}

/// Prints how long the lab's setup and bulk loads take on this machine.
#[test]
#[ignore = "measurement: minutes of Samba loads; run with --ignored"]
fn lab_measure_bulk_loads() {
    let t = Instant::now();
    let corp: &Forest = samba::corp();
    eprintln!(
        "measure: corp provisioned and started in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    for (name, users, contacts) in [("m1k", 1_000, 0), ("m5k", 5_000, 0), ("c5k", 0, 5_000)] {
        let ou = corp.create_ou(&format!("lab-measure-{name}"));
        let took = corp.bulk_load(&ad_fixture(&ou, name, users, contacts));
        eprintln!(
            "measure: samba bulk_load {users} users + {contacts} contacts + a group of all: {:.1} s",
            took.as_secs_f64()
        );
    }
    let t = Instant::now();
    let s = slapd::start(SlapdOptions::default());
    eprintln!(
        "measure: slapd instance made and started in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let ldif = people_ldif(&format!("ou=bulk,{}", s.base_dn), 100_000);
    let took = s.bulk_load(&ldif);
    eprintln!(
        "measure: slapd bulk_load 100k users (slapadd): {:.2} s",
        took.as_secs_f64()
    );
}
