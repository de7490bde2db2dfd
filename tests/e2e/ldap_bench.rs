//! Benchmarks (ignored by default; they print numbers): a full import of 10,000 and
//! 100,000 users from slapd and of 10,000 users from Samba AD, each beside the time
//! `ldapsearch` with paging takes to read the same entries from the same server in the
//! same run — the server's own limit. Run them with the release binary:
//!
//! ```text
//! cargo test --release --test main bench_ -- --ignored --nocapture --test-threads 1
//! ```
//!
//! The Samba fixture takes minutes to load (LAB.md), which is why none of this runs in CI.

use std::process::Command;
use std::time::Instant;

use crate::support::lab::LdapServer;
use crate::support::lab::samba::{self, Forest};
use crate::support::lab::slapd::{self, Slapd, SlapdOptions};
use crate::support::{Must, TestDir, cycle_json};

/// Where the benchmark reads from.
struct Source {
    kind: &'static str,
    url: String,
    starttls: bool,
    ca: String,
    bind: String,
    pw: String,
    base: String,
    /// More connector keys.
    extra: &'static str,
}

/// Import-only config: one source connector, no rules.
fn config(dir: &TestDir, s: &Source, ou: &str) {
    let text = format!(
        "state_file = \"state.redb\"\n\n[[connector]]\nname = \"src\"\ntype = \"{}\"\nurl = \"{}\"\nstarttls = {}\nca_file = \"{}\"\nbind_dn = \"{}\"\nbind_password_file = \"{}\"\nbase_dn = \"{}\"\ninclude_ous = [\"{ou}\"]\npage_size = 1000\n{}\n",
        s.kind, s.url, s.starttls, s.ca, s.bind, s.pw, s.base, s.extra
    );
    std::fs::write(dir.config(), text).must("writing the config");
}

/// The import phase's wall time (ms) and object count from `cycle --json`.
fn import_ms(dir: &TestDir) -> (u64, u64) {
    let run = cycle_json(&dir.config(), false);
    run.ok();
    let json = run.json();
    let phases = json["phases"].as_array().must("phases");
    let p = phases
        .iter()
        .find(|p| p["phase"] == "import")
        .must("an import phase");
    (
        p["ms"].as_u64().unwrap_or(0),
        p["objects"].as_u64().unwrap_or(0),
    )
}

/// ldapsearch's own paged read of the same entries (all user attributes), in ms.
fn ldapsearch_ms(server: &impl LdapServer, ou: &str) -> (u64, usize) {
    let mut cmd: Command = server.tools().command("ldapsearch");
    cmd.args([
        "-LLL",
        "-o",
        "ldif-wrap=no",
        "-E",
        "pr=1000/noprompt",
        "-b",
        ou,
        "(objectClass=person)",
        "*",
    ]);
    let t = Instant::now();
    let out = cmd.output().must("running ldapsearch");
    let ms = t.elapsed().as_millis() as u64;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let n = out.stdout.windows(4).filter(|w| w == b"dn: ").count();
    (ms, n)
}

fn report(what: &str, n: u64, ours_ms: u64, theirs_ms: u64) {
    let rate = |ms: u64| n as f64 * 1000.0 / ms.max(1) as f64;
    println!(
        "BENCH {what}: {n} entries | bridgehead import {:.2} s = {:.0} entries/s | ldapsearch {:.2} s = {:.0} entries/s | ratio {:.2}x",
        ours_ms as f64 / 1000.0,
        rate(ours_ms),
        theirs_ms as f64 / 1000.0,
        rate(theirs_ms),
        rate(ours_ms) / rate(theirs_ms)
    );
}

fn users_ldif(ou: &str, n: usize, ad: bool) -> String {
    let mut s = String::with_capacity(n * 300);
    for i in 0..n {
        if ad {
            s.push_str(&format!(
                "dn: CN=Bench User {i:06},{ou}\nobjectClass: user\ncn: Bench User {i:06}\nsAMAccountName: bench{i:06}\ngivenName: Bench\nsn: User {i:06}\ndisplayName: Bench User {i:06}\nmail: bench{i:06}@corp.example.test\ndepartment: Dept {}\ntitle: Engineer\nemployeeID: B{i:06}\nuserAccountControl: 544\n\n",
                i % 50
            ));
        } else {
            s.push_str(&format!(
                "dn: uid=bench{i:06},{ou}\nobjectClass: inetOrgPerson\nuid: bench{i:06}\ncn: Bench User {i:06}\ngivenName: Bench\nsn: User {i:06}\ndisplayName: Bench User {i:06}\nmail: bench{i:06}@example.test\ndepartmentNumber: {}\ntitle: Engineer\nemployeeNumber: B{i:06}\n\n",
                i % 50
            ));
        }
    }
    s
}

fn slapd_case(n: usize) {
    let server: Slapd = slapd::start(SlapdOptions {
        syncprov: true,
        refint: false,
    });
    let ou = format!("ou=people,{}", server.base_dn);
    server.bulk_load(&users_ldif(&ou, n, false));
    let (theirs, found) = ldapsearch_ms(&server, &ou);
    assert_eq!(found, n);
    let dir = TestDir::new("bench-slapd");
    let source = Source {
        kind: "ldap",
        url: server.ldap_url.clone(),
        starttls: true,
        ca: server.ca_file.display().to_string(),
        bind: server.bind_dn.clone(),
        pw: server.password_file.display().to_string(),
        base: server.base_dn.clone(),
        extra: "",
    };
    config(&dir, &source, &ou);
    let (ours, objects) = import_ms(&dir);
    assert_eq!(objects as usize, n);
    report(
        &format!("slapd {n} users (StartTLS)"),
        n as u64,
        ours,
        theirs,
    );
}

#[test]
#[ignore]
fn bench_ldap_slapd_10k() {
    slapd_case(10_000);
}

#[test]
#[ignore]
fn bench_ldap_slapd_100k() {
    slapd_case(100_000);
}

#[test]
#[ignore]
fn bench_ldap_samba_10k() {
    const N: usize = 10_000;
    let ad: &Forest = samba::corp();
    let ou = ad.create_ou("bench");
    let t = Instant::now();
    ad.bulk_load(&users_ldif(&ou, N, true));
    println!(
        "BENCH samba fixture: {N} users loaded in {:.0} s",
        t.elapsed().as_secs_f64()
    );
    let _hold = ad.hold();
    let (theirs, found) = ldapsearch_ms(ad, &ou);
    assert_eq!(found, N);
    let dir = TestDir::new("bench-samba");
    let source = Source {
        kind: "ad",
        url: ad.ldaps_url.clone(),
        starttls: false,
        ca: ad.ca_file.display().to_string(),
        bind: ad.bind_dn.clone(),
        pw: ad.password_file.display().to_string(),
        base: ad.base_dn.clone(),
        // Users only: no foreign security principals beside them.
        extra: "object_classes = [\"user\"]",
    };
    config(&dir, &source, &ou);
    let (ours, objects) = import_ms(&dir);
    assert_eq!(objects as usize, N);
    report(
        &format!("samba AD {N} users (LDAPS)"),
        N as u64,
        ours,
        theirs,
    );
}
