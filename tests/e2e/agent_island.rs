//! A disconnected forest: the test creates a network namespace (`ip netns`) with a veth
//! pair (link-local addresses), provisions a Samba AD forest of its own and starts it
//! inside, bound only to the namespace's own loopback. A check first proves the appliance
//! cannot reach that forest; the same config run inside the namespace (a direct import)
//! gives the reference target; then `bridgehead run` outside, with the connector set to
//! `agent_group`, and an agent enrolled and running inside the namespace, which reaches the
//! appliance over the veth pair, give the same LDIF target, and the same people in a slapd
//! target the appliance writes itself.

use std::process::Command;
use std::time::{Duration, Instant};

use super::agent_trust::{TOKEN, agents, ca_fingerprint, listener_addr, token, wait_until};
use super::web_client::https;
use crate::support::lab::{
    LdapServer, Scope, ServerProcess, log_tail, require_program, root, slapd, tls, try_run,
};
use crate::support::{Must, TestDir, read_ldif, run};

const REALM: &str = "ISLAND.EXAMPLE.TEST";
const BASE: &str = "DC=island,DC=example,DC=test";
const PASSWORD: &str = "Bridgehead-Isl4nd-Adm1n";

/// A network namespace with a veth pair: host side `.1`, namespace side `.2` of a /30 in
/// 169.254.0.0/16; deleted (with the pair) when dropped.
struct Island {
    name: String,
    host_ip: String,
    ns_ip: String,
}

fn ip(args: &[&str]) {
    let out = try_run(Command::new("ip").args(args), Duration::from_secs(30)).must("running ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Island {
    fn create() -> Island {
        require_program("ip", "iproute2");
        let pid = std::process::id();
        let name = format!("bh-island-{pid}");
        let octet = pid % 250 + 1;
        let (host_ip, ns_ip) = (format!("169.254.{octet}.1"), format!("169.254.{octet}.2"));
        let (host_if, ns_if) = (
            format!("bhi{}h", pid % 100_000),
            format!("bhi{}n", pid % 100_000),
        );
        // A namespace left by a killed run of this pid (there is normally none).
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(std::process::Stdio::null())
            .status();
        ip(&["netns", "add", &name]);
        ip(&[
            "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if,
        ]);
        ip(&["link", "set", &ns_if, "netns", &name]);
        ip(&["addr", "add", &format!("{host_ip}/30"), "dev", &host_if]);
        ip(&["link", "set", &host_if, "up"]);
        ip(&[
            "netns",
            "exec",
            &name,
            "ip",
            "addr",
            "add",
            &format!("{ns_ip}/30"),
            "dev",
            &ns_if,
        ]);
        ip(&["netns", "exec", &name, "ip", "link", "set", &ns_if, "up"]);
        ip(&["netns", "exec", &name, "ip", "link", "set", "lo", "up"]);
        Island {
            name,
            host_ip,
            ns_ip,
        }
    }

    /// `program` run inside the namespace.
    fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }
}

impl Drop for Island {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// People and a group of them, as the loader adds them.
fn seed(ou: &str) -> String {
    let mut ldif = format!("dn: {ou}\nobjectClass: organizationalUnit\nou: island-people\n\n");
    for i in 0..25 {
        ldif.push_str(&format!(
            "dn: CN=Islander {i:02},{ou}\nobjectClass: user\nsAMAccountName: isl{i:02}\n\
             sn: Islander\ngivenName: Number {i}\ndisplayName: Islander {i:02}\n\
             mail: isl{i:02}@island.example.test\nemployeeID: I{i:04}\n\n"
        ));
    }
    ldif.push_str(&format!(
        "dn: CN=Island staff,{ou}\nobjectClass: group\nsAMAccountName: island-staff\n"
    ));
    for i in 0..25 {
        ldif.push_str(&format!("member: CN=Islander {i:02},{ou}\n"));
    }
    ldif.push('\n');
    ldif
}

fn config(password_file: &str, ca: &str, ou: &str, extra: &str) -> String {
    format!(
        r#"state_file = "state.redb"

[schedule]
interval = "1h"

[[connector]]
name = "island"
type = "ad"
url = "ldaps://127.0.0.1:636"
ca_file = "{ca}"
bind_dn = "Administrator@island.example.test"
bind_password_file = "{password_file}"
base_dn = "{BASE}"
include_ous = ["{ou}"]
{extra}

[[connector]]
name = "out"
type = "ldif"
mode = "target"
path = "out.ldif"
anchor = "entryUUID"

[[inbound]]
name = "people"
connector = "island"
object_class = "user"
object_type = "person"
precedence = 10
join = [[ {{ cs = "employeeID", mv = "employeeID" }} ]]
flows = [
  {{ target = "uid", source = "sAMAccountName" }},
  {{ target = "cn", source = "cn" }},
  {{ target = "sn", source = "sn" }},
  {{ target = "mail", source = "mail" }},
  {{ target = "employeeID", source = "employeeID" }},
]

[[inbound]]
name = "groups"
connector = "island"
object_class = "group"
object_type = "group"
precedence = 10
flows = [
  {{ target = "cn", source = "cn" }},
  {{ target = "member", source = "member" }},
]

[[outbound]]
name = "out-people"
connector = "out"
object_type = "person"
object_class = "inetOrgPerson"
dn = "uid={{uid}},ou=people,dc=target"
deprovision = "delete"
flows = [
  {{ target = "uid", source = "uid" }},
  {{ target = "cn", source = "cn" }},
  {{ target = "sn", source = "sn" }},
  {{ target = "mail", source = "mail" }},
  {{ target = "employeeNumber", source = "employeeID" }},
]

[[outbound]]
name = "out-groups"
connector = "out"
object_type = "group"
object_class = "groupOfNames"
dn = "cn={{cn}},ou=groups,dc=target"
deprovision = "delete"
flows = [
  {{ target = "cn", source = "cn" }},
  {{ target = "member", source = "member" }},
]
"#
    )
}

/// A slapd target connector and its outbound rule for people.
fn slapd_target(t: &slapd::Slapd, ou: &str) -> String {
    format!(
        r#"
[[connector]]
name = "dir"
type = "ldap"
url = "{url}"
starttls = true
ca_file = "{ca}"
bind_dn = "{bind}"
bind_password_file = "{pw}"
base_dn = "{base}"
include_ous = ["{ou}"]
object_classes = ["inetOrgPerson"]

[[outbound]]
name = "to-slapd"
connector = "dir"
object_type = "person"
object_class = "inetOrgPerson"
dn = "uid={{uid}},{ou}"
deprovision = "delete"
flows = [
  {{ target = "uid", source = "uid" }},
  {{ target = "cn", source = "cn" }},
  {{ target = "sn", source = "sn" }},
  {{ target = "mail", source = "mail" }},
]
"#,
        url = t.ldap_url,
        ca = t.ca_file.display(),
        bind = t.bind_dn,
        pw = t.password_file.display(),
        base = t.base_dn,
    )
}

/// The target's entries as sorted (dn, sorted attribute lines) for comparison.
fn content(path: &std::path::Path) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<_> = read_ldif(path)
        .iter()
        .map(|e| {
            let mut names: Vec<String> = e
                .attrs
                .iter()
                .map(|(a, _)| a.to_ascii_lowercase())
                .collect();
            names.sort();
            names.dedup();
            let mut lines: Vec<String> = names
                .iter()
                .flat_map(|a| e.values(a).into_iter().map(move |v| format!("{a}: {v}")))
                .collect();
            lines.sort();
            (e.dn.to_ascii_lowercase(), lines)
        })
        .collect();
    out.sort();
    out
}

#[test]
fn agent_island_forest_reached_only_through_an_agent() {
    require_program("samba-tool", "samba-common-bin");
    let island = Island::create();
    let forest_dir = root().join(format!("island-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&forest_dir);
    std::fs::create_dir_all(forest_dir.join("run")).must("forest folders");
    std::fs::create_dir_all(forest_dir.join("log")).must("forest folders");
    let cert = tls::server_cert("island", "127.0.0.1", "dc1.island.example.test");
    let ca = tls::ca().cert.clone();
    let d = forest_dir.display().to_string();
    let mut provision = Command::new("samba-tool");
    provision
        .args([
            "domain",
            "provision",
            "--server-role=dc",
            "--dns-backend=NONE",
        ])
        .arg(format!("--targetdir={d}"))
        .arg(format!("--realm={REALM}"))
        .arg("--domain=ISLAND")
        .arg("--host-name=DC1")
        .arg("--host-ip=127.0.0.1")
        .arg(format!("--adminpass={PASSWORD}"));
    for o in [
        "interfaces=127.0.0.1".to_string(),
        "bind interfaces only=yes".into(),
        format!("pid directory={d}/run"),
        format!("ncalrpc dir={d}/run/ncalrpc"),
        format!("winbindd socket directory={d}/run/winbindd"),
        format!("log file={d}/log/log.%m"),
        "server services=ldap".into(),
        "tls enabled=yes".into(),
        format!("tls keyfile={}", cert.key.display()),
        format!("tls certfile={}", cert.cert.display()),
        format!("tls cafile={}", ca.display()),
    ] {
        provision.arg(format!("--option={o}"));
    }
    let out = try_run(&mut provision, Duration::from_secs(900)).must("samba-tool provision");
    assert!(
        out.status.success(),
        "provision: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let smb_conf = forest_dir.join("etc/smb.conf");
    let ou = format!("OU=island-people,{BASE}");
    let seed_file = forest_dir.join("seed.ldif");
    std::fs::write(&seed_file, seed(&ou)).must("seed file");
    let loader = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/lab/samba_load.py"
    );
    let out = try_run(
        Command::new("/usr/bin/python3")
            .arg(loader)
            .arg(&smb_conf)
            .arg(&seed_file)
            .env_remove("PYTHONPATH")
            .env_remove("PYTHONHOME"),
        Duration::from_secs(600),
    )
    .must("samba_load.py");
    assert!(
        out.status.success(),
        "seed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let password_file = forest_dir.join("password");
    crate::support::lab::write_secret(&password_file, PASSWORD);

    let mut samba = island.command("samba");
    samba.arg("-i").arg("-s").arg(&smb_conf);
    let dc_log = forest_dir.join("log/samba.out");
    let dc = ServerProcess::spawn("samba-island", &mut samba, &dc_log, true);
    let start = Instant::now();
    loop {
        let probe = island
            .command("ldapsearch")
            .env("LDAPTLS_CACERT", &ca)
            .args([
                "-H",
                "ldaps://127.0.0.1:636",
                "-x",
                "-D",
                "Administrator@island.example.test",
            ])
            .arg("-y")
            .arg(&password_file)
            .args(["-b", &ou, "-s", "base", "dn"])
            .output()
            .must("ldapsearch in the namespace");
        if probe.status.success() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the island DC did not come up: {}\n{}",
            String::from_utf8_lossy(&probe.stderr),
            log_tail(&dc_log)
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    // From the appliance's side the forest is not there: nothing answers on the
    // namespace's address, and the same config checked here does not reach it.
    assert!(
        std::net::TcpStream::connect_timeout(
            &format!("{}:636", island.ns_ip).parse().must("address"),
            Duration::from_secs(3)
        )
        .is_err(),
        "the island DC answers from outside its namespace"
    );
    let direct = TestDir::new("agent-island-direct");
    let pw = password_file.display().to_string();
    let cafile = ca.display().to_string();
    std::fs::write(direct.config(), config(&pw, &cafile, &ou, "")).must("config");
    let c = run(&["check", "-c", &direct.config().to_string_lossy()]);
    assert_ne!(c.status.code(), Some(0), "{}", c.stdout);
    assert!(!c.stdout.contains("connector island: ok"), "{}", c.stdout);

    // The reference: the appliance's binary run inside the namespace, directly.
    let inside = island
        .command(crate::support::bin())
        .args(["cycle", "-c", &direct.config().to_string_lossy(), "--json"])
        .output()
        .must("a cycle inside the namespace");
    assert!(
        inside.status.success(),
        "{}",
        String::from_utf8_lossy(&inside.stderr)
    );
    let want = content(&direct.join("out.ldif"));
    assert_eq!(want.len(), 26, "25 people and a group: {want:?}");

    // Through an agent in the namespace, the appliance outside.
    let dir = TestDir::new("agent-island");
    // Beside the LDIF target, a slapd target the appliance reaches itself.
    let target = slapd::shared();
    let target_ou = target.create_ou("island-target");
    let text = config(&pw, &cafile, &ou, "agent_group = \"island\"")
        + &slapd_target(target, &target_ou)
        + &format!(
            "\n[agents]\nlisten = \"{}:0\"\nnames = [\"{}\"]\nheartbeat = \"1s\"\n",
            island.host_ip, island.host_ip
        );
    std::fs::write(dir.config(), text).must("config");
    let daemon = super::web_client::start_run(&dir, Some(TOKEN));
    let addr = listener_addr(&dir.join("run.stderr"));
    let fp = ca_fingerprint(dir.path());
    let tok = token(&dir.config(), "island", None);
    let folder = dir.join("agent");
    let enrolled = island
        .command(crate::support::bin())
        .args([
            "agent",
            "--dir",
            &folder.to_string_lossy(),
            "--enroll",
            &tok,
        ])
        .args([
            "--server",
            &format!("https://{addr}"),
            "--ca-fingerprint",
            &fp,
        ])
        .output()
        .must("enrolling inside the namespace");
    assert!(
        enrolled.status.success(),
        "{}",
        String::from_utf8_lossy(&enrolled.stderr)
    );
    let agent_log = dir.join("agent.stderr");
    let _agent = Killed(
        island
            .command(crate::support::bin())
            .args(["agent", "--dir", &folder.to_string_lossy()])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&agent_log).must("the agent's log"))
            .spawn()
            .must("starting the agent in the namespace"),
    );
    wait_until("the agent connected", Duration::from_secs(30), || {
        agents(&daemon).iter().any(|a| a["state"] == "connected")
    });
    let list = agents(&daemon);
    assert!(
        list[0]["address"]
            .as_str()
            .is_some_and(|a| a.starts_with(&island.ns_ip)),
        "the agent connects from the namespace over the veth pair: {list:?}"
    );
    let auth = format!("Bearer {TOKEN}");
    let before = https(&daemon, "GET", "/api/runs", &[("Authorization", &auth)], "")
        .json()
        .as_array()
        .map_or(0, Vec::len);
    let r = https(
        &daemon,
        "POST",
        "/api/actions/cycle",
        &[("Authorization", &auth)],
        "",
    );
    assert!(r.status < 300, "{}", r.body);
    let start = Instant::now();
    loop {
        let runs = https(&daemon, "GET", "/api/runs", &[("Authorization", &auth)], "").json();
        let runs = runs.as_array().must("runs").clone();
        if runs.len() > before {
            assert!(runs[0]["failure"].is_null(), "{:?}", runs[0]);
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "the cycle never ran"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(content(&dir.join("out.ldif")), want);
    let mut in_slapd: Vec<(String, String, String)> = target
        .ldapsearch(
            &target_ou,
            Scope::Sub,
            "(objectClass=inetOrgPerson)",
            &["uid", "cn", "mail"],
        )
        .iter()
        .map(|e| {
            (
                e.first("uid").unwrap_or_default(),
                e.first("cn").unwrap_or_default(),
                e.first("mail").unwrap_or_default(),
            )
        })
        .collect();
    in_slapd.sort();
    let mut in_ldif: Vec<(String, String, String)> = read_ldif(&direct.join("out.ldif"))
        .iter()
        .filter(|e| !e.values("uid").is_empty())
        .map(|e| {
            (
                e.first("uid").unwrap_or_default(),
                e.first("cn").unwrap_or_default(),
                e.first("mail").unwrap_or_default(),
            )
        })
        .collect();
    in_ldif.sort();
    assert_eq!(in_slapd.len(), 25, "{in_slapd:?}");
    assert_eq!(in_slapd, in_ldif);
    let agent_text = std::fs::read_to_string(&agent_log).must("the agent's log");
    assert!(agent_text.contains("job received"), "{agent_text}");
    dc.stop(Duration::from_secs(10));
}

/// A child killed and reaped when dropped.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
