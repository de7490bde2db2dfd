//! Near-real-time latency benchmarks (ignored; run with
//! `cargo test --release --test main bench_nrt -- --ignored --nocapture --test-threads 1`).
//!
//! End to end: a modify made with `ldapmodify` on the source, until `ldapsearch` on the
//! OpenLDAP target shows the new value (polled in a tight loop; one ldapsearch process
//! costs ~10-20 ms, the resolution of these figures). Latency is counted from the moment
//! ldapmodify returned (the source has committed the write); the tool's own run time is
//! printed beside it. `bridgehead run` runs with the schedule set to hours and
//! `watch_window = "1s"`.
//!
//! 1. 100 changes spaced a second apart: p50, p99, max.
//! 2. 1,000 modifies in one LDIF (200 people × 5 rounds): time until the last is visible,
//!    from the start of the burst and from the moment the source had taken all of it.

use std::time::{Duration, Instant};

use super::nrt_lab::{
    Daemon, ad_config, ad_user, ldap_person, set_description, slapd_config, slapd_value,
    wait_for_value,
};
use crate::support::TestDir;
use crate::support::lab::slapd::{self, SlapdOptions};
use crate::support::lab::{LdapServer, Scope, samba};

const CHANGES: usize = 100;
const BURST_PEOPLE: usize = 200;
const BURST_ROUNDS: usize = 5;

/// The nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

/// What one benchmark needs from its source.
struct Source<'a> {
    what: &'a str,
    server: &'a dyn LdapServer,
    /// The DN of person `i` in the source.
    dn: &'a dyn Fn(usize) -> String,
    /// The uid person `i` has in the target.
    uid: &'a dyn Fn(usize) -> String,
}

/// How a benchmark reads its target.
struct Target<'a> {
    /// The description person `uid` has there.
    one: &'a dyn Fn(&str) -> Option<String>,
    /// (uid, description) of everyone there.
    all: &'a dyn Fn() -> Vec<(String, String)>,
}

/// Measures into an OpenLDAP target's OU.
fn measure_slapd(src: &Source<'_>, target: &slapd::Slapd, target_ou: &str, daemon: &Daemon) {
    let one = |uid: &str| slapd_value(target, target_ou, uid, "description");
    let all = || {
        target
            .ldapsearch(
                target_ou,
                Scope::Sub,
                "(description=burst-*)",
                &["uid", "description"],
            )
            .iter()
            .filter_map(|e| Some((e.first("uid")?, e.first("description")?)))
            .collect()
    };
    measure(
        src,
        &Target {
            one: &one,
            all: &all,
        },
        daemon,
    );
}

/// Runs both measurements against a started daemon.
fn measure(src: &Source<'_>, target: &Target<'_>, daemon: &Daemon) {
    let mut latencies = Vec::with_capacity(CHANGES);
    let mut tool = Duration::ZERO;
    for n in 0..CHANGES {
        let tick = Instant::now();
        let value = format!("lat-{n}");
        let i = n % 10;
        src.server
            .ldapmodify(&set_description(&(src.dn)(i), &value));
        let written = Instant::now();
        tool += written - tick;
        let took = wait_for_value(Duration::from_secs(30), &value, || {
            (target.one)(&(src.uid)(i))
        })
        .unwrap_or_else(|e| panic!("{e}; log:\n{}", daemon.text()));
        latencies.push(took);
        if let Some(rest) = Duration::from_secs(1).checked_sub(tick.elapsed()) {
            std::thread::sleep(rest);
        }
    }
    latencies.sort();
    println!(
        "bench_nrt {}: {CHANGES} changes 1 s apart: p50 {} p99 {} max {} (min {}; ldapmodify itself {} on average)",
        src.what,
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.99)),
        ms(latencies[latencies.len() - 1]),
        ms(latencies[0]),
        ms(tool / CHANGES as u32),
    );

    let mut burst = String::new();
    for round in 1..=BURST_ROUNDS {
        for i in 0..BURST_PEOPLE {
            burst.push_str(&set_description(
                &(src.dn)(i),
                &format!("burst-{round}-{i}"),
            ));
        }
    }
    let cycles_before = daemon.text().matches("watch cycle finished").count();
    let start = Instant::now();
    src.server.ldapmodify(&burst);
    let written = start.elapsed();
    let deadline = Duration::from_secs(300);
    loop {
        let got = (target.all)();
        let done = (0..BURST_PEOPLE).all(|i| {
            let want = format!("burst-{BURST_ROUNDS}-{i}");
            got.iter()
                .any(|(uid, d)| *uid == (src.uid)(i) && *d == want)
        });
        if done {
            break;
        }
        assert!(
            start.elapsed() < deadline,
            "burst not complete after {deadline:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let all = start.elapsed();
    // The target shows the values before the cycle that wrote them logs its end.
    std::thread::sleep(Duration::from_secs(2));
    let cycles = daemon.text().matches("watch cycle finished").count() - cycles_before;
    println!(
        "bench_nrt {}: burst of {} modifies in one LDIF: source took it in {}, last visible {} after the start ({} after the source finished), {cycles} watch cycles",
        src.what,
        BURST_PEOPLE * BURST_ROUNDS,
        ms(written),
        ms(all),
        ms(all.saturating_sub(written)),
    );
}

#[test]
#[ignore = "benchmark: run explicitly, see the module doc"]
fn bench_nrt_samba_ad_to_openldap() {
    let ad = samba::corp();
    let _up = ad.hold();
    let target = slapd::shared();
    let ad_ou = ad.create_ou("nrt-bench");
    let target_ou = target.create_ou("nrt-bench-ad-target");
    let mut ldif = String::new();
    for i in 0..BURST_PEOPLE {
        ldif.push_str(&ad_user(&ad_ou, &format!("nb{i}"), "v0"));
    }
    ad.ldapadd(&ldif);
    let dir = TestDir::new("nrt-bench-ad");
    let config = ad_config(&dir, ad, &ad_ou, target, &target_ou);
    let daemon = Daemon::start(&dir, &config);
    let dn = |i: usize| format!("CN=nb{i},{ad_ou}");
    let uid = |i: usize| format!("nb{i}");
    let src = Source {
        what: "Samba AD -> OpenLDAP",
        server: ad,
        dn: &dn,
        uid: &uid,
    };
    measure_slapd(&src, target, &target_ou, &daemon);
    daemon.stop();
}

#[test]
#[ignore = "benchmark: run explicitly, see the module doc"]
fn bench_nrt_openldap_to_openldap() {
    let source = slapd::start(SlapdOptions {
        syncprov: true,
        refint: false,
    });
    let target = slapd::shared();
    let src_ou = source.create_ou("nrt-bench-src");
    let target_ou = target.create_ou("nrt-bench-ldap-target");
    let mut ldif = String::new();
    for i in 0..BURST_PEOPLE {
        ldif.push_str(&ldap_person(&src_ou, &format!("nl{i}"), "v0"));
    }
    source.ldapadd(&ldif);
    let dir = TestDir::new("nrt-bench-ldap");
    let config = slapd_config(&dir, &source, &src_ou, target, &target_ou);
    let daemon = Daemon::start(&dir, &config);
    let dn = |i: usize| format!("uid=nl{i},{src_ou}");
    let uid = |i: usize| format!("nl{i}");
    let src = Source {
        what: "OpenLDAP -> OpenLDAP",
        server: &source,
        dn: &dn,
        uid: &uid,
    };
    measure_slapd(&src, target, &target_ou, &daemon);
    daemon.stop();
}

#[test]
#[ignore = "benchmark: run explicitly, see the module doc"]
fn bench_nrt_samba_ad_to_scim() {
    let ad = samba::corp();
    let _up = ad.hold();
    let server = crate::support::lab::scim::start();
    let ad_ou = ad.create_ou("nrt-bench-scim");
    let mut ldif = String::new();
    for i in 0..BURST_PEOPLE {
        ldif.push_str(&ad_user(&ad_ou, &format!("ns{i}"), "v0"));
    }
    ad.ldapadd(&ldif);
    let dir = TestDir::new("nrt-bench-scim");
    std::fs::write(
        dir.config(),
        super::nrt_scim::config(ad, &ad_ou, &server.url),
    )
    .unwrap_or_else(|e| panic!("writing the config: {e}"));
    let daemon = Daemon::start(&dir, &dir.config());
    let dn = |i: usize| format!("CN=ns{i},{ad_ou}");
    let uid = |i: usize| format!("ns{i}");
    let src = Source {
        what: "Samba AD -> SCIM (scim2-server)",
        server: ad,
        dn: &dn,
        uid: &uid,
    };
    measure_scim(&src, &server, &daemon);
    daemon.stop();
}

/// Measures into a SCIM service: the title a user has there, by userName.
fn measure_scim(src: &Source<'_>, server: &crate::support::lab::scim::ScimServer, daemon: &Daemon) {
    let one = |uid: &str| super::nrt_scim::scim_title(server, uid);
    let all = || {
        server
            .all("/Users")
            .iter()
            .filter_map(|u| {
                Some((
                    u["userName"].as_str()?.to_string(),
                    u["title"].as_str()?.to_string(),
                ))
            })
            .collect()
    };
    measure(
        src,
        &Target {
            one: &one,
            all: &all,
        },
        daemon,
    );
}

/// Fills a SCIM service with `n` users of its own (cloud-only: no source object), in /Bulk
/// requests of 1,000.
fn populate_scim(server: &crate::support::lab::scim::ScimServer, n: usize) -> Duration {
    let start = Instant::now();
    let mut done = 0;
    while done < n {
        let ops: Vec<serde_json::Value> = (done..(done + 1000).min(n))
            .map(|i| {
                serde_json::json!({
                    "method": "POST",
                    "path": "/Users",
                    "bulkId": format!("c{i}"),
                    "data": {
                        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                        "userName": format!("cloud-only-{i}@x.test"),
                        "externalId": format!("cloud-only-{i}"),
                        "title": "cloud",
                    }
                })
            })
            .collect();
        done += ops.len();
        let body = serde_json::json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "Operations": ops,
        });
        let answer = server.request("POST", "/Bulk", Some(&body));
        assert_eq!(answer.status, 200, "POST /Bulk: {}", answer.json);
    }
    start.elapsed()
}

/// Latency into SCIM as the service grows: the same 200 synced users, with 500, 5,000 and
/// 50,000 cloud-only users beside them (`BRIDGEHEAD_BENCH_SCIM_SIZES=500,5000` to choose).
/// A delta costs what changed: the three rows should be the same.
#[test]
#[ignore = "benchmark: run explicitly, see the module doc"]
fn bench_nrt_samba_ad_to_scim_by_service_size() {
    let sizes: Vec<usize> = std::env::var("BRIDGEHEAD_BENCH_SCIM_SIZES")
        .unwrap_or_else(|_| "500,5000,50000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let ad = samba::corp();
    let _up = ad.hold();
    let ad_ou = ad.create_ou("nrt-bench-scim-size");
    let mut ldif = String::new();
    for i in 0..BURST_PEOPLE {
        ldif.push_str(&ad_user(&ad_ou, &format!("nz{i}"), "v0"));
    }
    ad.ldapadd(&ldif);
    for size in sizes {
        let server = crate::support::lab::scim::start();
        let filled = populate_scim(&server, size);
        println!(
            "bench_nrt scim by size: {size} cloud-only users loaded in {:.1} s",
            filled.as_secs_f64()
        );
        let dir = TestDir::new(&format!("nrt-bench-scim-{size}"));
        std::fs::write(
            dir.config(),
            super::nrt_scim::config(ad, &ad_ou, &server.url),
        )
        .unwrap_or_else(|e| panic!("writing the config: {e}"));
        let daemon = Daemon::start(&dir, &dir.config());
        let dn = |i: usize| format!("CN=nz{i},{ad_ou}");
        let uid = |i: usize| format!("nz{i}");
        let what = format!("Samba AD -> SCIM with {size} other users in the service");
        let src = Source {
            what: &what,
            server: ad,
            dn: &dn,
            uid: &uid,
        };
        measure_scim(&src, &server, &daemon);
        daemon.stop();
        server.stop();
    }
}
