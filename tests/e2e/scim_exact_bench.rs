//! Benchmark (prints numbers; `#[ignore]`): what one changed user costs in a delta cycle
//! into scim2-server holding 5,000 users: the delta import (a full listing, or nothing
//! with `full_import_every`), the export, and the confirming import (one read-back GET).
//!
//! cargo test --release --test main bench_scim_exact -- --ignored --nocapture --test-threads 1

use serde_json::Value as Json;

use super::scim::{config, cycle, people, setup_with, source_ldif};
use crate::support::lab::scim;
use crate::support::{Must, TestDir};

const USERS: usize = 5_000;

/// The wall time (ms) of one phase of `connector` in a `cycle --json`.
fn phase_ms(json: &Json, phase: &str, connector: &str) -> u64 {
    json["phases"]
        .as_array()
        .must("phases")
        .iter()
        .find(|p| p["phase"] == phase && p["connector"] == connector)
        .and_then(|p| p["ms"].as_u64())
        .unwrap_or(0)
}

fn one_change(dir: &TestDir, round: usize, ppl: &mut [super::scim::Person]) -> Json {
    ppl[round].title = format!("Changed {round}");
    std::fs::write(dir.join("hr.ldif"), source_ldif(ppl, &[])).must("writing hr.ldif");
    let (code, json) = cycle(dir);
    assert_eq!(code, Some(0), "{json}");
    json
}

#[test]
#[ignore = "benchmark: prints numbers"]
fn bench_scim_exact_one_change_among_5000_users() {
    for (what, extra) in [
        ("listing every delta import", ""),
        ("full_import_every = \"1h\"", "full_import_every = \"1h\""),
    ] {
        let server = scim::start();
        let mut ppl = people(USERS);
        let dir = setup_with(
            "bench-scim-exact",
            &config(&server.url, extra, ""),
            &ppl,
            &[],
        );
        let (code, json) = cycle(&dir);
        assert_eq!(code, Some(0), "{json}");
        for round in 1..=3 {
            let before = server.requests().len();
            let json = one_change(&dir, round, &mut ppl);
            let requests = server.requests().len() - before;
            eprintln!(
                "{what}: one change among {USERS}: delta import {} ms, export {} ms, confirming \
                 import {} ms, cycle {} ms, {requests} requests",
                phase_ms(&json, "import", "cloud"),
                phase_ms(&json, "export", "cloud"),
                phase_ms(&json, "confirm", "cloud"),
                json["finished_ms"].as_u64().unwrap_or(0)
                    - json["started_ms"].as_u64().unwrap_or(0),
            );
        }
    }
}
