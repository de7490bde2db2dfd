//! A connector run through an agent, against a real slapd: `bridgehead run` with an
//! `[agents]` listener and a source connector with `agent_group = "fab"`, an enrolled agent
//! of that group as a separate process. The appliance never contacts the directory itself
//! (`check` says so); a cycle through the agent gives the same LDIF target as a direct cycle
//! of the same config; a second cycle is quiet and a syncrepl delta arrives through it; an agent of another group never receives
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

    // A delta through the agent: syncrepl from the watermark the last import committed.
    let mut mods = String::new();
    for i in 2..5 {
        mods.push_str(&format!(
            "dn: uid=u{i:02},{ou}\nchangetype: modify\nreplace: description\ndescription: via agent {i}\n\n"
        ));
    }
    mods.push_str(&format!("dn: uid=u20,{ou}\nchangetype: delete\n\n"));
    mods.push_str(&format!(
        "dn: cn=Staff\\, all,{ou}\nchangetype: modify\ndelete: member\nmember: uid=u20,{ou}\n\n"
    ));
    src.ldapmodify(&mods);
    let record = cycle_now(&d);
    assert!(record["failure"].is_null(), "{record}");
    let got = actual(&dir.join("out.ldif"));
    assert_eq!(got, expectation(src, &ou));
    assert!(got.0.iter().any(|p| p.3 == "via agent 3"), "{got:?}");
    assert!(!got.0.iter().any(|p| p.0 == "u20"), "{got:?}");

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

/// Source OU → target OU of the same slapd; the target connector runs through agents, which
/// read its bind password from a file of their own host.
pub(super) fn export_config(
    dir: &TestDir,
    src: &slapd::Slapd,
    from: &str,
    to: &str,
) -> std::path::PathBuf {
    let ldap = |name: &str, ou: &str, password: &str, extra: &str| {
        format!(
            r#"[[connector]]
name = "{name}"
type = "ldap"
url = "{url}"
starttls = true
ca_file = "{ca}"
bind_dn = "{bind}"
{password} = "{pw}"
base_dn = "{base}"
include_ous = ["{ou}"]
object_classes = ["inetOrgPerson"]
delta = "syncrepl"
{extra}
"#,
            url = src.ldap_url,
            ca = src.ca_file.display(),
            bind = src.bind_dn,
            pw = src.password_file.display(),
            base = src.base_dn,
        )
    };
    let text = format!(
        r#"state_file = "state.redb"

[schedule]
interval = "1h"

[agents]
listen = "127.0.0.1:0"
heartbeat = "1s"

{src_c}
{dst_c}
[[inbound]]
name = "people"
connector = "src"
object_class = "inetOrgPerson"
object_type = "person"
precedence = 10
join = [[ {{ cs = "uid", mv = "uid" }} ]]
flows = [
  {{ target = "uid", source = "uid" }},
  {{ target = "cn", source = "cn" }},
  {{ target = "sn", source = "sn" }},
  {{ target = "mail", source = "mail" }},
  {{ target = "description", source = "description" }},
]

[[outbound]]
name = "to-dst"
connector = "dst"
object_type = "person"
object_class = "inetOrgPerson"
dn = "uid={{uid}},{to}"
deprovision = "delete"
flows = [
  {{ target = "uid", source = "uid" }},
  {{ target = "cn", source = "cn" }},
  {{ target = "sn", source = "sn" }},
  {{ target = "mail", source = "mail" }},
  {{ target = "description", source = "description" }},
]
"#,
        src_c = ldap("src", from, "bind_password_file", ""),
        // The target's password is read by the agent from its own file: the appliance has
        // none for it.
        dst_c = ldap(
            "dst",
            to,
            "agent_bind_password_file",
            "agent_group = \"fab\""
        ),
    );
    let path = dir.config();
    std::fs::write(&path, text).must("writing the config");
    path
}

/// People under `ou` as (uid, cn, mail, description), sorted.
pub(super) fn people(src: &slapd::Slapd, ou: &str) -> Vec<(String, String, String, String)> {
    let mut p: Vec<_> = src
        .ldapsearch(
            ou,
            crate::support::lab::Scope::Sub,
            "(objectClass=inetOrgPerson)",
            &["uid", "cn", "mail", "description"],
        )
        .iter()
        .map(|e| {
            (
                e.first("uid").unwrap_or_default(),
                e.first("cn").unwrap_or_default(),
                e.first("mail").unwrap_or_default(),
                e.first("description").unwrap_or_default(),
            )
        })
        .collect();
    p.sort();
    p
}

#[test]
fn agent_slapd_export_through_an_agent() {
    let src = slapd::shared();
    let from = src.create_ou("agent-export-src");
    let to = src.create_ou("agent-export-dst");
    load_fixture(src, &from);
    let dir = TestDir::new("agent-slapd-export");
    let config = export_config(&dir, src, &from, &to);
    let d = start_run(&dir, Some(API));
    let log = dir.join("run.stderr");
    let server = format!("https://{}", listener_addr(&log));
    let fp = ca_fingerprint(dir.path());
    let fab = dir.join("agent-fab");
    let r = enroll(&fab, &token(&config, "fab", None), &server, &fp);
    assert!(r.status.success(), "{}", r.stderr);
    let _fab = Background::start(
        &["agent", "--dir", &fab.to_string_lossy()],
        &dir.join("agent-fab.stderr"),
    );
    wait_until("the agent connected", Duration::from_secs(30), || {
        agents(&d).iter().any(|a| a["state"] == "connected")
    });

    // Adds through the agent (the start-up cycle may have done them already), confirmed
    // by the import through it that follows.
    let record = cycle_now(&d);
    assert!(record["failure"].is_null(), "{record}");
    let want: Vec<_> = people(src, &from);
    assert_eq!(want.len(), 30);
    assert_eq!(people(src, &to), want);

    // A modify and a delete at the source become a modify and a delete in the target.
    src.ldapmodify(&format!(
        "dn: uid=u05,{from}\nchangetype: modify\nreplace: description\ndescription: exported via agent\n\ndn: uid=u06,{from}\nchangetype: delete\n\n"
    ));
    let record = cycle_now(&d);
    assert!(record["failure"].is_null(), "{record}");
    let got = people(src, &to);
    assert_eq!(got, people(src, &from));
    assert!(got.iter().any(|p| p.3 == "exported via agent"), "{got:?}");
    assert_eq!(got.len(), 29);
    let agent_log = std::fs::read_to_string(dir.join("agent-fab.stderr")).must("the agent's log");
    assert!(
        agent_log.contains("job received") && agent_log.contains("connector=dst"),
        "{agent_log}"
    );
}
