//! Benchmark (ignored by default; it prints numbers): the cost of expression evaluation. A
//! full sync of 100,000 AD-shaped users from an LDIF source into an LDIF target, once with
//! the out-of-box rule set and once with direct mappings of the same attributes only.
//! The sync phase (inbound + outbound, from `cycle --json`) is what the rules change.
//!
//! ```text
//! cargo test --release --test main bench_rules -- --ignored --nocapture --test-threads 1
//! ```

use std::fmt::Write as _;

use base64::Engine as _;

use crate::support::{Must, TestDir, cycle_json};

/// 100,000 unless `BRIDGEHEAD_BENCH_USERS` says otherwise (a quick check of the benchmark).
fn users() -> usize {
    std::env::var("BRIDGEHEAD_BENCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

/// Users as `ldifde` exports them from AD: binary objectGUID, a consistency GUID on every
/// tenth, proxy addresses, account control, a manager, non-ASCII names.
fn ad_export(n: usize) -> String {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let ou = "OU=Staff,DC=corp,DC=example,DC=test";
    let mut s = String::with_capacity(n * 900);
    s.push_str("version: 1\n\n");
    for i in 0..n {
        let mut guid = [0u8; 16];
        guid[..8].copy_from_slice(&(i as u64).to_le_bytes());
        guid[8..].copy_from_slice(&0x5a5a_5a5a_5a5a_5a5au64.to_le_bytes());
        let uac = if i % 20 == 0 { 514 } else { 512 };
        let _ = write!(
            s,
            "dn: CN=Usér {i:06},{ou}\nobjectClass: top\nobjectClass: person\n\
             objectClass: organizationalPerson\nobjectClass: user\ncn: Usér {i:06}\n\
             sn: Ångström{i}\ngivenName: Zoë\ndisplayName: Zoë Ångström {i}\n\
             sAMAccountName: u{i:06}\nmail: u{i:06}@corp.example.test\n\
             proxyAddresses: SMTP:u{i:06}@corp.example.test\nproxyAddresses: smtp:u{i:06}@old.example.test\n\
             department: Dept {d}\ntitle: Title {t}\ncompany: Corp AB\nemployeeID: E{i:06}\n\
             telephoneNumber: +46 40 {i:06}\nl: Malmö\nstreetAddress: Storgatan {d}\n\
             extensionAttribute1: cost-{d}\nuserAccountControl: {uac}\nobjectGUID:: {g}\n",
            d = i % 50,
            t = i % 7,
            g = b64(&guid),
        );
        if i % 10 == 0 {
            let _ = writeln!(s, "userPrincipalName: zoe.{i}@example.com");
            let _ = writeln!(s, "mS-DS-ConsistencyGuid:: {}", b64(&guid[..]));
        }
        if i > 0 {
            let _ = writeln!(s, "manager: CN=Usér {:06},{ou}", i / 10);
        }
        s.push('\n');
    }
    s
}

const CONNECTORS: &str = r#"
[[connector]]
name = "src"
type = "ldif"
mode = "source"
path = "ad.ldif"
anchor = "objectGUID"
partitions = ["DC=corp,DC=example,DC=test"]

[[connector]]
name = "out"
type = "ldif"
mode = "target"
path = "out.ldif"
anchor = "entryUUID"
partitions = ["o=export"]
"#;

/// The same attributes as the rule set's LDIF output for these users, mapped directly.
const DIRECT: &str = r#"
[[inbound]]
name = "users"
connector = "src"
object_class = "user"
object_type = "person"
precedence = 10
flows = [
  { target = "cn", source = "cn" },
  { target = "sn", source = "sn" },
  { target = "givenName", source = "givenName" },
  { target = "displayName", source = "displayName" },
  { target = "accountName", source = "sAMAccountName" },
  { target = "userPrincipalName", source = "userPrincipalName" },
  { target = "mail", source = "mail" },
  { target = "proxyAddresses", source = "proxyAddresses" },
  { target = "department", source = "department" },
  { target = "title", source = "title" },
  { target = "company", source = "company" },
  { target = "employeeID", source = "employeeID" },
  { target = "telephoneNumber", source = "telephoneNumber" },
  { target = "l", source = "l" },
  { target = "streetAddress", source = "streetAddress" },
  { target = "extensionAttribute1", source = "extensionAttribute1" },
  { target = "userAccountControl", source = "userAccountControl" },
  { target = "sourceAnchorBinary", source = "objectGUID" },
  { target = "manager", source = "manager" },
]

[[outbound]]
name = "out-users"
connector = "out"
object_type = "person"
object_class = "inetOrgPerson"
dn = "uid={accountName},ou=people,o=export"
flows = [
  { target = "cn", source = "cn" },
  { target = "sn", source = "sn" },
  { target = "givenName", source = "givenName" },
  { target = "displayName", source = "displayName" },
  { target = "accountName", source = "accountName" },
  { target = "userPrincipalName", source = "userPrincipalName" },
  { target = "mail", source = "mail" },
  { target = "proxyAddresses", source = "proxyAddresses" },
  { target = "department", source = "department" },
  { target = "title", source = "title" },
  { target = "company", source = "company" },
  { target = "employeeID", source = "employeeID" },
  { target = "telephoneNumber", source = "telephoneNumber" },
  { target = "l", source = "l" },
  { target = "streetAddress", source = "streetAddress" },
  { target = "extensionAttribute1", source = "extensionAttribute1" },
  { target = "userAccountControl", source = "userAccountControl" },
  { target = "sourceAnchorBinary", source = "sourceAnchorBinary" },
  { target = "manager", source = "manager" },
]
"#;

/// One full cycle of `rules` over a fresh state: (sync ms, sync objects, cycle ms, entries
/// written).
fn run(name: &str, ldif: &str, rules: &str) -> (u64, u64, u64, usize) {
    let dir = TestDir::new(name);
    std::fs::write(dir.join("ad.ldif"), ldif).must("writing the source");
    std::fs::write(
        dir.config(),
        format!("state_file = \"state.redb\"\n{rules}\n{CONNECTORS}"),
    )
    .must("writing the config");
    let run = cycle_json(&dir.config(), true);
    run.ok();
    let json = run.json();
    let phases = json["phases"].as_array().must("phases");
    let sync = phases
        .iter()
        .find(|p| p["phase"] == "sync")
        .must("a sync phase");
    let total =
        json["finished_ms"].as_u64().unwrap_or(0) - json["started_ms"].as_u64().unwrap_or(0);
    let out = std::fs::read(dir.join("out.ldif")).must("reading the target");
    let entries = out.windows(4).filter(|w| w == b"dn: ").count();
    (
        sync["ms"].as_u64().unwrap_or(0),
        sync["objects"].as_u64().unwrap_or(0),
        total,
        entries,
    )
}

#[test]
#[ignore = "benchmark: run with --release --ignored --nocapture"]
fn bench_rules_out_of_box_vs_direct_100k() {
    let n = users();
    let ldif = ad_export(n);
    let cases = [
        (
            "out-of-box rule set",
            "rule_set = \"azure-ad-connect\"\nrule_set_sources = [\"src\"]\n",
        ),
        ("direct mappings", DIRECT),
    ];
    println!("\nfull sync of {n} AD-shaped users, LDIF source → LDIF target (release build):");
    for (label, rules) in cases {
        let (sync_ms, objects, total_ms, entries) = run("rules-bench", &ldif, rules);
        // Every user arrives (the disabled ones too), in both cases.
        assert_eq!(entries, n, "{label}: entries written");
        let per_s = n as f64 / (sync_ms.max(1) as f64 / 1000.0);
        println!(
            "  {label:<20} sync phase {sync_ms:>6} ms ({objects} objects processed) = {per_s:>8.0} users/s; whole cycle {total_ms} ms"
        );
    }
}
