//! Benchmark (prints numbers; `#[ignore]`): initial provisioning of 10,000 users and 200
//! groups into scim2-server by Bridgehead, beside a naive client that POSTs the same users
//! one by one over fresh connections, in the same run on the same machine.
//!
//! cargo test --release --test main bench_scim -- --ignored --nocapture --test-threads 1

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Instant;

use serde_json::json;

use super::scim::{Group, Person, config, cycle, person_anchor, setup_with};
use crate::support::Must;
use crate::support::lab::scim;

const USERS: usize = 10_000;
const GROUPS: usize = 200;

fn naive_post(port: u16, body: &str) -> u16 {
    let mut s = TcpStream::connect(("127.0.0.1", port)).must("connecting");
    let req = format!(
        "POST /v2/Users HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/scim+json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).must("sending");
    let mut answer = String::new();
    s.read_to_string(&mut answer).must("reading");
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

#[test]
#[ignore = "benchmark: prints numbers"]
fn bench_scim_initial_provisioning() {
    let ppl: Vec<Person> = (0..USERS)
        .map(|n| Person {
            manager: None,
            ..Person::new(n)
        })
        .collect();
    let grp: Vec<Group> = (0..GROUPS)
        .map(|g| Group {
            name: format!("Team {g}"),
            people: (0..USERS).filter(|n| n % GROUPS == g).collect(),
            groups: vec![],
        })
        .collect();

    // The naive client: the same users, one POST each, one connection each.
    let naive_server = scim::start();
    let started = Instant::now();
    for p in &ppl {
        let body = json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            "externalId": person_anchor(p.n),
            "userName": p.upn(),
            "displayName": format!("{} {}", p.given, p.sn),
            "name": {"givenName": p.given, "familyName": p.sn},
            "emails": [{"type": "work", "value": p.upn()}],
            "title": p.title,
            "active": !p.disabled,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":
                {"department": p.department, "employeeNumber": format!("E{:05}", p.n)},
        })
        .to_string();
        assert_eq!(naive_post(naive_server.port, &body), 201);
    }
    let naive = started.elapsed();
    naive_server.stop();

    // Bridgehead: one cycle from the LDIF source into an empty service.
    let server = scim::start();
    let dir = setup_with(
        "bench-scim",
        &config(&server.url, "in_flight = 4", ""),
        &ppl,
        &grp,
    );
    let started = Instant::now();
    let (code, json) = cycle(&dir);
    let whole = started.elapsed();
    assert_eq!(code, Some(0), "{json}");
    let export_ms = json["phases"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["connector"] == "cloud" && p["phase"] == "export")
        .filter_map(|p| p["ms"].as_u64())
        .sum::<u64>();
    assert_eq!(server.all("/Users").len(), USERS);
    assert_eq!(server.all("/Groups").len(), GROUPS);

    let naive_rate = USERS as f64 / naive.as_secs_f64();
    let export_rate = (USERS + GROUPS) as f64 / (export_ms as f64 / 1000.0);
    let whole_rate = USERS as f64 / whole.as_secs_f64();
    println!("scim2-server 0.8.3, {USERS} users + {GROUPS} groups, loopback:");
    println!(
        "  naive client (one POST per user, one connection each): {:.1} s, {naive_rate:.0} users/s",
        naive.as_secs_f64()
    );
    println!(
        "  bridgehead export phase: {:.1} s, {export_rate:.0} objects/s ({:.2}x the naive client)",
        export_ms as f64 / 1000.0,
        export_rate / naive_rate
    );
    println!(
        "  bridgehead whole cycle (read source, sync, export, confirming import): {:.1} s, \
         {whole_rate:.0} users/s ({:.2}x)",
        whole.as_secs_f64(),
        whole_rate / naive_rate
    );
}
