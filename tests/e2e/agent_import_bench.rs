//! Full import through an agent versus direct (ignored; run with
//! `cargo test --test main bench_agent_import -- --ignored --nocapture`): 20,000 slapd
//! entries, the same config but for `agent_group`, each measured as the import phase of a
//! second full cycle (the first fills the space; the agent's first job also waits for the
//! agent to connect). Prints both times and the ratio, and the agent's peak RSS.

use std::time::{Duration, Instant};

use super::agent_trust::{TOKEN, agents, ca_fingerprint, enroll, listener_addr, token, wait_until};
use super::web_client::{Daemon, https, start_run};
use crate::support::lab::slapd::{self, SlapdOptions};
use crate::support::{Background, Must, TestDir, run};

const N: usize = 20_000;

fn people(ou: &str, n: usize) -> String {
    let mut ldif = String::new();
    for i in 0..n {
        ldif.push_str(&format!(
            "dn: uid=p{i:05},{ou}\nobjectClass: inetOrgPerson\nuid: p{i:05}\ncn: Person {i}\nsn: P\nmail: p{i:05}@example.test\ndescription: bench person {i}\n\n"
        ));
    }
    ldif
}

fn import_ms(run: &serde_json::Value) -> u64 {
    run["phases"]
        .as_array()
        .must("phases")
        .iter()
        .find(|p| p["phase"] == "import" && p["connector"] == "src")
        .and_then(|p| p["ms"].as_u64())
        .must("the import phase of src")
}

fn api(d: &Daemon, method: &str, path: &str, body: &str) -> serde_json::Value {
    let auth = format!("Bearer {TOKEN}");
    let r = https(
        d,
        method,
        path,
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        body,
    );
    assert!(r.status < 300, "{path}: {}", r.body);
    r.json()
}

#[test]
#[ignore = "benchmark: run explicitly, see the module doc"]
fn bench_agent_import_direct_versus_agent() {
    let src = slapd::start(SlapdOptions {
        syncprov: true,
        refint: false,
    });
    let ou = format!("ou=people,{}", src.base_dn);
    src.bulk_load(&people(&ou, N));

    let direct = TestDir::new("agent-bench-direct");
    let config = super::ldap_slapd::config_to_ldif(&direct, &src, &ou, "syncrepl");
    let text = std::fs::read_to_string(&config).must("config").replacen(
        "page_size = 7\n",
        "page_size = 500\n",
        1,
    );
    std::fs::write(&config, &text).must("config");
    let c = config.to_string_lossy().into_owned();
    assert!(
        run(&["cycle", "-c", &c, "--full", "--json"])
            .status
            .success()
    );
    let second = run(&["cycle", "-c", &c, "--full", "--json"]);
    assert!(second.status.success(), "{}", second.stderr);
    let direct_ms = import_ms(&second.json());

    let dir = TestDir::new("agent-bench-agent");
    let config = super::ldap_slapd::config_to_ldif(&dir, &src, &ou, "syncrepl");
    let text = std::fs::read_to_string(&config)
        .must("config")
        .replacen("page_size = 7\n", "page_size = 500\n", 1)
        .replacen(
            "name = \"src\"\n",
            "name = \"src\"\nagent_group = \"fab\"\n",
            1,
        );
    let text =
        format!("{text}\n[schedule]\ninterval = \"1h\"\n\n[agents]\nlisten = \"127.0.0.1:0\"\n");
    std::fs::write(&config, text).must("config");
    let d = start_run(&dir, Some(TOKEN));
    let server = format!("https://{}", listener_addr(&dir.join("run.stderr")));
    let fp = ca_fingerprint(dir.path());
    let folder = dir.join("agent");
    let r = enroll(&folder, &token(&config, "fab", None), &server, &fp);
    assert!(r.status.success(), "{}", r.stderr);
    let agent = Background::start(
        &["agent", "--dir", &folder.to_string_lossy()],
        &dir.join("agent.stderr"),
    );
    wait_until("the agent connected", Duration::from_secs(30), || {
        agents(&d).iter().any(|a| a["state"] == "connected")
    });
    let wait_runs = |n: usize| {
        let start = Instant::now();
        loop {
            let list = api(&d, "GET", "/api/runs", "");
            let list = list.as_array().must("runs").clone();
            if list.len() >= n {
                return list[0].clone();
            }
            assert!(start.elapsed() < Duration::from_secs(900), "no run");
            std::thread::sleep(Duration::from_millis(300));
        }
    };
    wait_runs(1);
    api(&d, "POST", "/api/actions/cycle", "{\"mode\":\"full\"}");
    let summary = wait_runs(2);
    let id = summary["id"].as_u64().must("run id");
    let detail = api(&d, "GET", &format!("/api/runs/{id}"), "");
    assert!(detail["failure"].is_null(), "{detail}");
    let agent_ms = import_ms(&detail);
    let status = std::fs::read_to_string(format!("/proc/{}/status", agent.id())).must("status");
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .must("VmHWM");
    println!(
        "full import of {N} slapd entries: direct {direct_ms} ms, through an agent {agent_ms} ms \
         (throughput ratio {:.2}); agent peak RSS {:.1} MiB",
        direct_ms as f64 / agent_ms as f64,
        hwm as f64 / 1024.0
    );
}
