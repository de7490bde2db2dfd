//! A connector run through an agent, against a real slapd: `bridgehead run` with an
//! `[agents]` listener and a source connector with `agent_group = "fab"`, an enrolled agent
//! of that group as a separate process. The appliance never contacts the directory itself
//! (`check` says so); a cycle through the agent gives the same LDIF target as a direct cycle
//! of the same config; a second cycle is quiet; an agent of another group never receives
//! the job; the bind password is in neither the appliance's log nor its state file.

use std::time::{Duration, Instant};

use super::agent_trust::{agents, ca_fingerprint, enroll, listener_addr, token, wait_until};
use super::ldap_slapd::{actual, config_to_ldif, expectation, load_fixture};
use super::web_client::{Daemon, https, start_run};
use crate::support::lab::LdapServer;
use crate::support::lab::slapd;
use crate::support::{Background, Must, TestDir, cycle_json, run};

const API: &str = super::agent_trust::TOKEN;

/// The runs in the history.
fn runs(d: &Daemon) -> Vec<serde_json::Value> {
    let auth = format!("Bearer {API}");
    let r = https(d, "GET", "/api/runs", &[("Authorization", &auth)], "");
    assert_eq!(r.status, 200, "{}", r.body);
    r.json().as_array().must("runs").clone()
}

/// Asks for a cycle and waits for it to be in the history; its record.
fn cycle_now(d: &Daemon) -> serde_json::Value {
    let before = runs(d).len();
    let auth = format!("Bearer {API}");
    let r = https(
        d,
        "POST",
        "/api/actions/cycle",
        &[("Authorization", &auth)],
        "",
    );
    assert!(r.status == 202 || r.status == 200, "{}", r.body);
    let start = Instant::now();
    loop {
        let list = runs(d);
        if list.len() > before {
            return list[0].clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "the cycle never ran: {list:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn agent_slapd_import_through_an_agent_equals_direct() {
    let src = slapd::shared();
    let ou = src.create_ou("agent-import");
    load_fixture(src, &ou);

    // The reference: the same config, the directory contacted directly.
    let direct = TestDir::new("agent-slapd-direct");
    let config = config_to_ldif(&direct, src, &ou, "syncrepl");
    cycle_json(&config, false).ok();
    let want = actual(&direct.join("out.ldif"));
    assert_eq!(want, expectation(src, &ou));

    // Through an agent of group fab.
    let dir = TestDir::new("agent-slapd");
    let config = config_to_ldif(&dir, src, &ou, "syncrepl");
    let text = std::fs::read_to_string(&config).must("reading the config");
    let text = text.replacen(
        "name = \"src\"\n",
        "name = \"src\"\nagent_group = \"fab\"\n",
        1,
    );
    let text = format!(
        "{text}\n[schedule]\ninterval = \"1h\"\n\n[agents]\nlisten = \"127.0.0.1:0\"\nheartbeat = \"1s\"\n"
    );
    std::fs::write(&config, text).must("writing the config");

    // The appliance's own processes never reach the directory.
    let c = run(&["check", "-c", &config.to_string_lossy()]);
    assert_eq!(c.status.code(), Some(3), "{}", c.stdout);
    assert!(
        c.stdout
            .contains("reached only through agents of group \"fab\""),
        "{}",
        c.stdout
    );

    let d = start_run(&dir, Some(API));
    let log = dir.join("run.stderr");
    let server = format!("https://{}", listener_addr(&log));
    let fp = ca_fingerprint(dir.path());
    // An agent of another group first: it must get nothing.
    let other = dir.join("agent-other");
    let r = enroll(&other, &token(&config, "other", None), &server, &fp);
    assert!(r.status.success(), "{}", r.stderr);
    let other_log = dir.join("agent-other.stderr");
    let _other = Background::start(&["agent", "--dir", &other.to_string_lossy()], &other_log);
    let fab = dir.join("agent-fab");
    let r = enroll(&fab, &token(&config, "fab", None), &server, &fp);
    assert!(r.status.success(), "{}", r.stderr);
    let fab_log = dir.join("agent-fab.stderr");
    let _fab = Background::start(&["agent", "--dir", &fab.to_string_lossy()], &fab_log);
    wait_until("both agents connected", Duration::from_secs(30), || {
        agents(&d)
            .iter()
            .filter(|a| a["state"] == "connected")
            .count()
            == 2
    });

    // The start-up cycle waited for the agent; one asked for now runs through it as well.
    let record = cycle_now(&d);
    assert!(record["failure"].is_null(), "{record}");
    assert_eq!(actual(&dir.join("out.ldif")), want);
    let fab_text = std::fs::read_to_string(&fab_log).must("the agent's log");
    assert!(fab_text.contains("job received"), "{fab_text}");
    let other_text = std::fs::read_to_string(&other_log).must("the other agent's log");
    assert!(!other_text.contains("job received"), "{other_text}");

    // Quiet: a second cycle through the agent changes nothing in the target.
    let before = std::fs::read(dir.join("out.ldif")).must("out.ldif");
    let record = cycle_now(&d);
    assert!(record["failure"].is_null(), "{record}");
    assert_eq!(std::fs::read(dir.join("out.ldif")).must("out.ldif"), before);

    // The bind password went to the agent over mTLS and nowhere else on the appliance.
    let password = std::fs::read_to_string(&src.password_file).must("the bind password");
    let password = password.trim();
    assert!(password.len() >= 8, "a password worth looking for");
    let log_text = std::fs::read(&log).must("the appliance's log");
    let state = std::fs::read(dir.join("state.redb")).must("the state file");
    for (what, bytes) in [("log", &log_text), ("state file", &state)] {
        assert!(
            !bytes
                .windows(password.len())
                .any(|w| w == password.as_bytes()),
            "the bind password is in the appliance's {what}"
        );
    }
    for f in std::fs::read_dir(&fab).must("the agent's folder") {
        let bytes = std::fs::read(f.must("entry").path()).must("an agent file");
        assert!(
            !bytes
                .windows(password.len())
                .any(|w| w == password.as_bytes()),
            "the bind password was kept by the agent"
        );
    }
}
