//! Exports into slapd with several operations in flight: a test that they are (and that
//! each add reads its anchor from the post-read control, no read-back), and a benchmark
//! (ignored by default; it prints numbers): the first full export of 10,000 and
//! 100,000 users into an empty slapd (StartTLS), beside `ldapadd` of the same entries into
//! another fresh slapd in the same run, the sequential floor: one operation at a time, each
//! waiting for its answer. Bridgehead's export puts `in_flight` independent operations on
//! the connection at once (1 = sequential, as before).
//!
//! ```text
//! cargo test --release --test main bench_ldap_export -- --ignored --nocapture --test-threads 1
//! ```

use std::time::Instant;

use crate::support::lab::slapd::{self, Slapd, SlapdOptions};
use crate::support::lab::{LdapServer, Scope};
use crate::support::{Must, TestDir, cycle_json};

const ATTRS: [&str; 9] = [
    "uid",
    "cn",
    "givenName",
    "sn",
    "displayName",
    "mail",
    "departmentNumber",
    "title",
    "employeeNumber",
];

fn users(ou: &str, n: usize) -> String {
    let mut s = String::with_capacity(n * 300);
    for i in 0..n {
        s.push_str(&format!(
            "dn: uid=bench{i:06},{ou}\nobjectClass: inetOrgPerson\nuid: bench{i:06}\ncn: Bench User {i:06}\ngivenName: Bench\nsn: User {i:06}\ndisplayName: Bench User {i:06}\nmail: bench{i:06}@example.test\ndepartmentNumber: {}\ntitle: Engineer\nemployeeNumber: B{i:06}\n\n",
            i % 50
        ));
    }
    s
}

pub(super) fn fresh() -> Slapd {
    slapd::start(SlapdOptions {
        syncprov: false,
        refint: false,
    })
}

/// `n` users from an LDIF source exported into `target`'s `ou=people`: the test folder and
/// the export phase's wall time in ms.
pub(super) fn export_users(target: &Slapd, n: usize, in_flight: usize) -> (TestDir, u64) {
    let dir = TestDir::new("ldap-export");
    // The same users as the floor's, with an anchor of their own for the source.
    let mut source = String::from("version: 1\n\n");
    for (i, entry) in users("ou=people,dc=hr", n).split("\n\n").enumerate() {
        if !entry.is_empty() {
            source.push_str(&format!(
                "{entry}\nentryUUID: 00000000-0000-4000-8000-{i:012}\n\n"
            ));
        }
    }
    std::fs::write(dir.join("hr.ldif"), source).must("writing the source");
    let flows: Vec<String> = ATTRS
        .iter()
        .map(|a| format!("  {{ target = \"{a}\", source = \"{a}\" }},"))
        .collect();
    let flows = flows.join("\n");
    std::fs::write(
        dir.config(),
        format!(
            "state_file = \"state.redb\"\n\n[[connector]]\nname = \"hr\"\ntype = \"ldif\"\nmode = \"source\"\npath = \"hr.ldif\"\nanchor = \"entryUUID\"\n\n\
             [[connector]]\nname = \"ol\"\ntype = \"ldap\"\nurl = \"{url}\"\nstarttls = true\nca_file = \"{ca}\"\nbind_dn = \"{bind}\"\nbind_password_file = \"{pw}\"\nbase_dn = \"{base}\"\nin_flight = {in_flight}\ndeletion_threshold = 1000000\n\n\
             [[inbound]]\nname = \"people\"\nconnector = \"hr\"\nobject_class = \"inetOrgPerson\"\nobject_type = \"person\"\nprecedence = 10\nflows = [\n{flows}\n]\n\n\
             [[outbound]]\nname = \"ol-people\"\nconnector = \"ol\"\nobject_type = \"person\"\nobject_class = \"inetOrgPerson\"\ndn = \"uid={{uid}},ou=people,{base}\"\ndeprovision = \"delete\"\nflows = [\n{flows}\n]\n",
            url = target.ldap_url,
            ca = target.ca_file.display(),
            bind = target.bind_dn,
            pw = target.password_file.display(),
            base = target.base_dn,
        ),
    )
    .must("writing the config");
    let run = cycle_json(&dir.config(), false);
    run.ok();
    let json = run.json();
    let export_ms = json["phases"]
        .as_array()
        .must("phases")
        .iter()
        .filter(|p| p["phase"] == "export")
        .map(|p| p["ms"].as_u64().unwrap_or(0))
        .sum();
    let found = target.ldapsearch(
        &format!("ou=people,{}", target.base_dn),
        Scope::One,
        "(objectClass=inetOrgPerson)",
        &["1.1"],
    );
    assert_eq!(found.len(), n, "entries in the target");
    (dir, export_ms)
}

fn case(n: usize) {
    let floor_server = fresh();
    let ldif = users(&format!("ou=people,{}", floor_server.base_dn), n);
    let t = Instant::now();
    floor_server.ldapadd(&ldif);
    let floor = t.elapsed().as_millis() as u64;
    drop(floor_server);
    let rate = |ms: u64| n as f64 * 1000.0 / ms.max(1) as f64;
    let mut line = format!(
        "BENCH first export of {n} users into slapd (StartTLS): ldapadd {:.2} s = {:.0}/s",
        floor as f64 / 1000.0,
        rate(floor)
    );
    for in_flight in [1, 8, 32] {
        let ms = export_users(&fresh(), n, in_flight).1;
        line.push_str(&format!(
            " | in_flight={in_flight} {:.2} s = {:.0}/s ({:.2}x ldapadd)",
            ms as f64 / 1000.0,
            rate(ms),
            ms as f64 / floor.max(1) as f64
        ));
    }
    println!("{line}");
}

#[test]
#[ignore]
fn bench_ldap_export_slapd_10k() {
    case(10_000);
}

#[test]
#[ignore]
fn bench_ldap_export_slapd_100k() {
    case(100_000);
}

#[test]
fn ldap_export_adds_in_flight_read_their_anchor_from_the_post_read_control() {
    const N: usize = 200;
    let target = fresh();
    let (dir, _) = export_users(&target, N, 8);
    let log = std::fs::read_to_string(target.dir.join("slapd.log")).must("slapd's log");
    let adds = target
        .logged_writes()
        .into_iter()
        .filter(|w| w.op == "ADD" && w.rc == 0 && w.dn.starts_with("uid=bench"))
        .count();
    assert_eq!(adds, N, "each user added once");
    // No read-back: slapd answered each add with the entry's entryUUID (RFC 4527).
    let reads = log
        .lines()
        .filter(|l| l.contains("SRCH base=\"uid=bench"))
        .count();
    assert_eq!(reads, 0, "base reads of added entries");
    // Several operations were outstanding on one connection at once: some add's request
    // line comes before the result of the add before it.
    let mut open = 0usize;
    let mut most = 0usize;
    for l in log.lines() {
        if l.contains(" ADD dn=\"uid=bench") {
            open += 1;
            most = most.max(open);
        } else if l.contains(" RESULT tag=105 ") {
            open = open.saturating_sub(1);
        }
    }
    assert!(most > 1, "never more than one add in flight");
    // The anchors taken from the control are right: the next cycle is quiet.
    let again = cycle_json(&dir.config(), false);
    again.ok();
    let counts = crate::support::connector_counts(&again.json());
    assert_eq!(
        counts.get("ol").map(|c| (c.1, c.2)),
        Some((crate::support::Counts::default(), 0)),
        "{}",
        again.stdout
    );
}
