//! Failover between two agents of one group, against a slapd of the test's own: the agent
//! holding a job is killed with SIGKILL in the middle of a 20,000-entry full import, and in
//! the middle of a 3,000-add export; the cycle completes through the other agent, the
//! target holds exactly what it should, and slapd's own operation log shows no add applied
//! twice. The time from the kill to the job running on the other agent is printed.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use super::agent_trust::{TOKEN, agents, ca_fingerprint, enroll, listener_addr, token, wait_until};
use super::web_client::{Daemon, https, start_run};
use crate::support::lab::LdapServer;
use crate::support::lab::slapd::{self, SlapdOptions};
use crate::support::{Background, Must, TestDir, read_ldif};

fn people(ou: &str, n: usize) -> String {
    let mut ldif = String::new();
    for i in 0..n {
        ldif.push_str(&format!(
            "dn: uid=p{i:05},{ou}\nobjectClass: inetOrgPerson\nuid: p{i:05}\ncn: Person {i}\nsn: P\nmail: p{i:05}@example.test\n\n"
        ));
    }
    ldif
}

fn runs(d: &Daemon) -> Vec<serde_json::Value> {
    let auth = format!("Bearer {TOKEN}");
    let r = https(d, "GET", "/api/runs", &[("Authorization", &auth)], "");
    assert_eq!(r.status, 200, "{}", r.body);
    r.json().as_array().must("runs").clone()
}

/// Two enrolled, running agents of group fab: (id, process) each.
fn two_agents(dir: &TestDir, d: &Daemon, config: &Path) -> Vec<(String, Background)> {
    let log = dir.join("run.stderr");
    let server = format!("https://{}", listener_addr(&log));
    let fp = ca_fingerprint(dir.path());
    let mut out = Vec::new();
    for name in ["agent-a", "agent-b"] {
        let folder = dir.join(name);
        let r = enroll(&folder, &token(config, "fab", None), &server, &fp);
        assert!(r.status.success(), "{}", r.stderr);
        let id = r
            .stdout
            .split_whitespace()
            .nth(2)
            .must("the enrolled id")
            .to_string();
        let p = Background::start(
            &["agent", "--dir", &folder.to_string_lossy()],
            &dir.join(&format!("{name}.stderr")),
        );
        out.push((id, p));
    }
    wait_until("both agents connected", Duration::from_secs(30), || {
        agents(d)
            .iter()
            .filter(|a| a["state"] == "connected")
            .count()
            == 2
    });
    out
}

/// Waits for an agent to hold a job whose description contains `what`; its id.
fn holder(d: &Daemon, what: &str) -> String {
    let start = Instant::now();
    loop {
        if let Some(a) = agents(d)
            .iter()
            .find(|a| a["job"].as_str().is_some_and(|j| j.contains(what)))
        {
            return a["id"].as_str().must("id").to_string();
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no agent took the {what} job"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills the agent holding the job, and measures until the other agent holds it.
fn kill_holder(d: &Daemon, agents_: &mut [(String, Background)], what: &str) -> Duration {
    let id = holder(d, what);
    let (_, p) = agents_
        .iter_mut()
        .find(|(a, _)| *a == id)
        .must("the holder's process");
    // Timed from just before the kill command starts.
    let killed = Instant::now();
    p.signal("KILL");
    let other = agents_
        .iter()
        .find(|(a, _)| *a != id)
        .map(|(a, _)| a.clone())
        .must("the other agent");
    let start = Instant::now();
    loop {
        let list = agents(d);
        if list.iter().any(|a| {
            a["id"] == other.as_str() && a["job"].as_str().is_some_and(|j| j.contains(what))
        }) {
            return killed.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the job never moved to {other}: {list:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_for_runs(d: &Daemon, n: usize) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let list = runs(d);
        if list.len() >= n {
            return list[0].clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "the cycle never ended"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn agent_failover_mid_import_and_mid_export() {
    const N: usize = 20_000;
    const ADDS: usize = 3_000;
    let src = slapd::start(SlapdOptions {
        syncprov: true,
        refint: false,
    });
    let ou = format!("ou=people,{}", src.base_dn);
    src.bulk_load(&people(&ou, N));
    let target_ou = src.create_ou("failover-target");

    // Import: slapd (through agents) → LDIF.
    let dir = TestDir::new("agent-failover");
    let config = super::ldap_slapd::config_to_ldif(&dir, &src, &ou, "syncrepl");
    let text = std::fs::read_to_string(&config).must("reading the config");
    let text = text
        .replacen(
            "name = \"src\"\n",
            "name = \"src\"\nagent_group = \"fab\"\n",
            1,
        )
        .replacen("page_size = 7\n", "page_size = 50\n", 1);
    let text = format!(
        "{text}\n[schedule]\ninterval = \"1h\"\n\n[agents]\nlisten = \"127.0.0.1:0\"\nheartbeat = \"1s\"\n"
    );
    std::fs::write(&config, text).must("writing the config");
    let d = start_run(&dir, Some(TOKEN));
    let mut pair = two_agents(&dir, &d, &config);
    // The start-up cycle's full import waits for an agent; kill whichever takes it.
    let moved = kill_holder(&d, &mut pair, "import");
    let record = wait_for_runs(&d, 1);
    assert!(record["failure"].is_null(), "{record}");
    let log = std::fs::read_to_string(dir.join("run.stderr")).must("the log");
    assert!(
        log.contains("the job goes to another agent"),
        "the kill did not land mid-import"
    );
    let out = read_ldif(&dir.join("out.ldif"));
    let mut uids: Vec<String> = out.iter().filter_map(|e| e.first("uid")).collect();
    uids.sort();
    uids.dedup();
    assert_eq!(uids.len(), N, "every person, once");
    assert_eq!(out.len(), N);
    println!(
        "failover mid-import: the job ran on the other agent {} ms after SIGKILL",
        moved.as_millis()
    );
    drop(pair);
    drop(d);

    // Export: slapd (direct) → slapd (through agents), 3,000 adds.
    let dir = TestDir::new("agent-failover-export");
    let from = src.create_ou("failover-source");
    src.ldapadd(&people(&from, ADDS));
    let config = super::agent_slapd::export_config(&dir, &src, &from, &target_ou);
    let d = start_run(&dir, Some(TOKEN));
    let mut pair = two_agents(&dir, &d, &config);
    let writes_before = src.logged_writes().len();
    let moved = kill_holder(&d, &mut pair, "export");
    let record = wait_for_runs(&d, 1);
    assert!(record["failure"].is_null(), "{record}");
    let log = std::fs::read_to_string(dir.join("run.stderr")).must("the log");
    assert!(
        log.contains("the exports without an outcome go to another agent"),
        "the kill did not land mid-export"
    );
    let exported = super::agent_slapd::people(&src, &target_ou);
    assert_eq!(exported, super::agent_slapd::people(&src, &from));
    assert_eq!(exported.len(), ADDS);
    // slapd's own record: each target DN added (successfully) once.
    let mut adds: HashMap<String, usize> = HashMap::new();
    for w in src.logged_writes().into_iter().skip(writes_before) {
        if w.op == "ADD"
            && w.rc == 0
            && w.dn
                .to_ascii_lowercase()
                .ends_with(&target_ou.to_ascii_lowercase())
        {
            *adds.entry(w.dn.to_ascii_lowercase()).or_default() += 1;
        }
    }
    assert_eq!(adds.len(), ADDS, "adds logged by slapd");
    let twice: Vec<_> = adds.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "added twice: {twice:?}");
    println!(
        "failover mid-export: the job ran on the other agent {} ms after SIGKILL",
        moved.as_millis()
    );
}

#[test]
fn agent_revoked_mid_import_loses_its_job_to_the_other_agent() {
    const N: usize = 20_000;
    let src = slapd::start(SlapdOptions {
        syncprov: true,
        refint: false,
    });
    let ou = format!("ou=people,{}", src.base_dn);
    src.bulk_load(&people(&ou, N));
    let dir = TestDir::new("agent-revoke-mid-job");
    let config = super::ldap_slapd::config_to_ldif(&dir, &src, &ou, "syncrepl");
    let text = std::fs::read_to_string(&config).must("reading the config");
    let text = text
        .replacen(
            "name = \"src\"\n",
            "name = \"src\"\nagent_group = \"fab\"\n",
            1,
        )
        .replacen("page_size = 7\n", "page_size = 50\n", 1);
    let text = format!(
        "{text}\n[schedule]\ninterval = \"1h\"\n\n[agents]\nlisten = \"127.0.0.1:0\"\nheartbeat = \"1s\"\n"
    );
    std::fs::write(&config, text).must("writing the config");
    let d = start_run(&dir, Some(TOKEN));
    let pair = two_agents(&dir, &d, &config);
    let id = holder(&d, "import");
    let auth = format!("Bearer {TOKEN}");
    let r = https(
        &d,
        "POST",
        "/api/actions/revoke-agent",
        &[
            ("Authorization", &auth),
            ("Content-Type", "application/json"),
        ],
        &format!("{{\"agent\":\"{id}\"}}"),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let record = wait_for_runs(&d, 1);
    assert!(record["failure"].is_null(), "{record}");
    let log = std::fs::read_to_string(dir.join("run.stderr")).must("the log");
    assert!(
        log.contains("the job goes to another agent"),
        "the revocation did not land mid-import"
    );
    let out = read_ldif(&dir.join("out.ldif"));
    assert_eq!(out.len(), N);
    // The revoked agent keeps knocking and is refused at the handshake.
    let revoked = if pair[0].0 == id {
        "agent-a"
    } else {
        "agent-b"
    };
    assert!(crate::support::wait_for_log(
        &dir.join(&format!("{revoked}.stderr")),
        "refused at the TLS handshake",
        Duration::from_secs(30)
    ));
}

#[test]
fn agent_watch_moves_when_its_agent_is_killed() {
    let src = slapd::shared();
    let ou = src.create_ou("agent-watch");
    super::ldap_slapd::load_fixture(src, &ou);
    let dir = TestDir::new("agent-watch");
    let config = super::ldap_slapd::config_to_ldif(&dir, src, &ou, "syncrepl");
    let text = std::fs::read_to_string(&config).must("reading the config");
    let text = text.replacen(
        "name = \"src\"\n",
        "name = \"src\"\nagent_group = \"fab\"\nwatch = true\nwatch_window = \"200ms\"\n",
        1,
    );
    let text = format!(
        "{text}\n[schedule]\ninterval = \"1h\"\n\n[agents]\nlisten = \"127.0.0.1:0\"\nheartbeat = \"1s\"\n"
    );
    std::fs::write(&config, text).must("writing the config");
    let d = start_run(&dir, Some(TOKEN));
    let mut pair = two_agents(&dir, &d, &config);
    wait_for_runs(&d, 1);
    let out = dir.join("out.ldif");
    let shows = |text: &str| {
        read_ldif(&out)
            .iter()
            .any(|e| e.first("description").is_some_and(|v| v == text))
    };
    let change = |uid: &str, text: &str| {
        src.ldapmodify(&format!(
            "dn: uid={uid},{ou}\nchangetype: modify\nreplace: description\ndescription: {text}\n\n"
        ));
    };
    // The watch is held by one agent; a change arrives without a scheduled cycle.
    let watcher = holder(&d, "watch");
    let started = Instant::now();
    change("u03", "seen by the watch");
    wait_until("the watched change", Duration::from_secs(30), || {
        shows("seen by the watch")
    });
    let first = started.elapsed();
    // Kill the agent holding the watch: the other takes it, and a later change arrives.
    let (_, p) = pair
        .iter_mut()
        .find(|(a, _)| *a == watcher)
        .must("the watcher's process");
    p.signal("KILL");
    let other = pair
        .iter()
        .find(|(a, _)| *a != watcher)
        .map(|(a, _)| a.clone())
        .must("the other agent");
    wait_until("the watch moved", Duration::from_secs(30), || {
        agents(&d).iter().any(|a| {
            a["id"] == other.as_str() && a["job"].as_str().is_some_and(|j| j.contains("watch"))
        })
    });
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    change("u04", "seen after the failover");
    wait_until(
        "the change after the failover",
        Duration::from_secs(30),
        || shows("seen after the failover"),
    );
    let after = started.elapsed();
    println!(
        "watch through an agent: change to target {} ms; after the watching agent was killed {} ms",
        first.as_millis(),
        after.as_millis()
    );
}
