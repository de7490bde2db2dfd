//! Two disconnected Samba AD forests: `corp` (CORP.EXAMPLE.TEST on 127.0.0.1) and `fabrikam`
//! (FABRIKAM.EXAMPLE.TEST on 127.0.0.2), each provisioned and started on first use, once per
//! test process, in its own folder under the lab root.
//!
//! Each DC presents a certificate from the lab CA (`tls certfile`/`keyfile`/`cafile`) with
//! its IP and host name in the subjectAltName, so clients verify it by address, and runs only
//! the `ldap` service: LDAP, LDAPS and the global catalog are all the tests use, and the
//! fewer services the faster it starts.
//!
//! Samba runs in the foreground (`-i`) as our child with its stdin a pipe we hold: it exits
//! when that pipe closes, that is when the test process ends, even without the watchdog.
//!
//! The addresses are fixed, so two test runs on one machine cannot both have forests: the
//! first to provision one claims Samba for the rest of its life ([`super::process::claim`])
//! and another run waits for it to end.
//!
//! Costs on a 2-core machine: provisioning ~5 s (up to ~15 s while other builds run),
//! starting ~1 s; [`Forest::bulk_load`] of 1,000 users ~2 s, 5,000 users ~7-11 s, 5,000
//! contacts plus one group holding all of them ~4 s (each includes the stop and restart).
//!
//! Simple binds work only over TLS (as on Windows AD), so every helper uses LDAPS. Samba
//! differs from Windows AD in ways tests must handle (LAB.md): no MaxPageSize, whole
//! 5,000-value `member` attributes unless a range is asked for, referrals from the domain
//! root, DN escapes as hex.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::client::{LdapTools, Scope};
use super::{
    Gate, LdapServer, ServerProcess, log_tail, require_program, root, run, set_up_once, tls,
    try_run, try_run_watched, wait_until, write_secret,
};
use crate::support::{Must, tail};

/// The Administrator password of every lab forest (meets AD's complexity rules).
pub const PASSWORD: &str = "Bridgehead-Lab-Adm1n";

/// How long a DC may take to answer an LDAPS bind after starting (generous: two cores
/// shared with the tests that are already running).
const START_LIMIT: Duration = Duration::from_secs(120);

/// How long to wait for another test process to finish with the forests' addresses.
const CLAIM_LIMIT: Duration = Duration::from_secs(1200);

/// How long provisioning or a bulk load may take.
const SLOW_LIMIT: Duration = Duration::from_secs(900);

/// The loader run by [`Forest::bulk_load`].
const LOADER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/support/lab/samba_load.py"
);

/// Debian's Python, which has the `samba` module (a pyenv shim earlier on PATH does not).
const PYTHON: &str = "/usr/bin/python3";

/// The ports Samba's ldap service binds on its address.
const LDAP_PORTS: [u16; 4] = [389, 636, 3268, 3269];

/// What distinguishes one lab forest.
struct Spec {
    name: &'static str,
    realm: &'static str,
    domain: &'static str,
    ip: &'static str,
}

/// One running Samba AD DC, the only DC of its forest.
pub struct Forest {
    /// Short name of the lab forest ("corp", "fabrikam").
    pub name: String,
    /// Kerberos realm, e.g. CORP.EXAMPLE.TEST.
    pub realm: String,
    /// NetBIOS domain name, e.g. CORP.
    pub domain: String,
    /// DNS domain, e.g. corp.example.test.
    pub dns_domain: String,
    /// The address the DC listens on.
    pub ip: String,
    /// The DC's host name, e.g. dc1.corp.example.test (in its certificate's SAN).
    pub host: String,
    /// The domain's naming context, e.g. DC=corp,DC=example,DC=test.
    pub base_dn: String,
    /// What to bind as: Administrator@<dns domain>.
    pub bind_dn: String,
    /// The bind password.
    pub password: String,
    /// A 0600 file holding exactly the password (no newline), for configs.
    pub password_file: PathBuf,
    /// The lab CA certificate the DC's certificate chains to.
    pub ca_file: PathBuf,
    /// e.g. ldaps://127.0.0.1:636
    pub ldaps_url: String,
    /// Plain LDAP (simple binds are refused here: "Strong(er) authentication required").
    pub ldap_url: String,
    /// The forest's folder (etc/smb.conf, private/sam.ldb, log/).
    pub dir: PathBuf,
    smb_conf: PathBuf,
    tools: LdapTools,
    gate: Gate,
    process: Mutex<Option<ServerProcess>>,
}

const CORP: Spec = Spec {
    name: "corp",
    realm: "CORP.EXAMPLE.TEST",
    domain: "CORP",
    ip: "127.0.0.1",
};

const FABRIKAM: Spec = Spec {
    name: "fabrikam",
    realm: "FABRIKAM.EXAMPLE.TEST",
    domain: "FABRIKAM",
    ip: "127.0.0.2",
};

/// The corp forest (CORP.EXAMPLE.TEST on 127.0.0.1), running.
pub fn corp() -> &'static Forest {
    static CORP_FOREST: OnceLock<Result<Forest, String>> = OnceLock::new();
    set_up_once(&CORP_FOREST, "the corp forest", || Forest::provision(&CORP))
}

/// The fabrikam forest (FABRIKAM.EXAMPLE.TEST on 127.0.0.2), running.
pub fn fabrikam() -> &'static Forest {
    static FABRIKAM_FOREST: OnceLock<Result<Forest, String>> = OnceLock::new();
    set_up_once(&FABRIKAM_FOREST, "the fabrikam forest", || {
        Forest::provision(&FABRIKAM)
    })
}

impl Forest {
    fn provision(spec: &Spec) -> Forest {
        require_program("samba", "samba");
        require_program("samba-tool", "samba-common-bin");
        // Another test run on this machine may be using the fixed addresses: wait for it.
        // One claim for both forests: two runs each holding one and waiting for the other
        // would deadlock.
        super::process::claim("samba", CLAIM_LIMIT);
        let dns_domain = spec.realm.to_ascii_lowercase();
        let host = format!("dc1.{dns_domain}");
        let dir = root().join(spec.name);
        let _ = std::fs::remove_dir_all(&dir);
        for sub in ["run", "log", "ldif"] {
            std::fs::create_dir_all(dir.join(sub)).must("creating the forest's folders");
        }
        ensure_loopback_address(spec.ip);
        let cert = tls::server_cert(spec.name, spec.ip, &host);
        let ca_file = tls::ca().cert.clone();

        let d = dir.display();
        let options = [
            format!("interfaces={}", spec.ip),
            "bind interfaces only=yes".into(),
            format!("pid directory={d}/run"),
            format!("ncalrpc dir={d}/run/ncalrpc"),
            format!("winbindd socket directory={d}/run/winbindd"),
            format!("log file={d}/log/log.%m"),
            "server services=ldap".into(),
            "tls enabled=yes".into(),
            format!("tls keyfile={}", cert.key.display()),
            format!("tls certfile={}", cert.cert.display()),
            format!("tls cafile={}", ca_file.display()),
            // Lets a test extend the schema over LDAP (e.g. extensionAttribute1-15, which
            // are Exchange schema, not base AD).
            "dsdb:schema update allowed=yes".into(),
        ];
        // corp and fabrikam may provision at the same time: they share no files, and on two
        // busy cores two at once took 14.6 s against 10 s for one alone (20 s in turn).
        let started = Instant::now();
        let mut cmd = Command::new("samba-tool");
        cmd.args([
            "domain",
            "provision",
            "--server-role=dc",
            "--dns-backend=NONE",
        ])
        .arg(format!("--targetdir={d}"))
        .arg(format!("--realm={}", spec.realm))
        .arg(format!("--domain={}", spec.domain))
        .arg("--host-name=DC1")
        .arg(format!("--host-ip={}", spec.ip))
        .arg(format!("--adminpass={PASSWORD}"));
        for o in &options {
            cmd.arg(format!("--option={o}"));
        }
        let out = try_run_watched(&mut cmd, SLOW_LIMIT).must("running samba-tool domain provision");
        let log = [&out.stdout[..], &out.stderr[..]].concat();
        std::fs::write(dir.join("log/provision.log"), log).must("writing provision.log");
        assert!(
            out.status.success(),
            "provisioning the {} forest failed ({}):\n{}",
            spec.name,
            out.status,
            tail(&String::from_utf8_lossy(&out.stderr))
        );
        eprintln!(
            "bridgehead lab: provisioned {} in {:.1} s",
            spec.name,
            started.elapsed().as_secs_f64()
        );

        let password_file = dir.join("password");
        write_secret(&password_file, PASSWORD);
        let bind_dn = format!("Administrator@{dns_domain}");
        let ldaps_url = format!("ldaps://{}:636", spec.ip);
        let forest = Forest {
            name: spec.name.to_string(),
            realm: spec.realm.to_string(),
            domain: spec.domain.to_string(),
            base_dn: dns_domain
                .split('.')
                .map(|p| format!("DC={p}"))
                .collect::<Vec<_>>()
                .join(","),
            dns_domain,
            ip: spec.ip.to_string(),
            host,
            bind_dn: bind_dn.clone(),
            password: PASSWORD.to_string(),
            password_file: password_file.clone(),
            ca_file: ca_file.clone(),
            ldaps_url: ldaps_url.clone(),
            ldap_url: format!("ldap://{}:389", spec.ip),
            smb_conf: dir.join("etc/smb.conf"),
            tools: LdapTools {
                url: ldaps_url,
                starttls: false,
                bind_dn,
                password_file,
                ca_file,
                scratch: dir.join("ldif"),
            },
            dir,
            gate: Gate::default(),
            process: Mutex::new(None),
        };
        forest.start();
        forest
    }

    /// Starts the DC (no-op when running) and waits until an LDAPS simple bind with the CA
    /// verified succeeds. Hold [`LdapServer::exclusive`] around `stop()`…`start()`.
    pub fn start(&self) {
        let mut process = self.process.lock().unwrap_or_else(|e| e.into_inner());
        if process.is_some() {
            return;
        }
        clear_address(&self.ip);
        let log = self.dir.join("log/samba.out");
        let started = Instant::now();
        let mut cmd = Command::new("samba");
        cmd.arg("-i").arg("-s").arg(&self.smb_conf);
        let mut p = ServerProcess::spawn(&format!("samba-{}", self.name), &mut cmd, &log, true);
        let ready = wait_until(
            &format!("{} DC at {}", self.name, self.ldaps_url),
            START_LIMIT,
            || {
                if let Some(status) = p.exited() {
                    return Ok(Some(status));
                }
                self.tools
                    .try_search("", Scope::Base, "(objectClass=*)", &["dnsHostName"])
                    .map(|_| None)
                    .map_err(|e| e.stderr.trim().to_string())
            },
        );
        match ready {
            Ok(None) => {
                eprintln!(
                    "bridgehead lab: started {} in {:.1} s",
                    self.name,
                    started.elapsed().as_secs_f64()
                );
                *process = Some(p);
            }
            Ok(Some(status)) => {
                p.stop(Duration::from_secs(1));
                panic!(
                    "samba for {} exited during startup ({status})\n{}\n{}",
                    self.name,
                    log_tail(&log),
                    log_tail(&self.dir.join("log/log.samba"))
                );
            }
            Err(e) => {
                p.stop(Duration::from_secs(10));
                panic!(
                    "{e}\n{}\n{}",
                    log_tail(&log),
                    log_tail(&self.dir.join("log/log.samba"))
                );
            }
        }
    }

    /// Stops the DC and waits until all its processes are gone. Only inside
    /// [`LdapServer::exclusive`], so that no other test finds it down by surprise.
    pub fn stop(&self) {
        assert!(
            self.gate.held_exclusively(),
            "Forest::stop: hold `let _outage = forest.exclusive();` first, so that tests \
             using {} in parallel wait instead of failing",
            self.name
        );
        let taken = self
            .process
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(p) = taken {
            p.stop(Duration::from_secs(20));
        }
    }

    /// Loads LDIF (content records, or add/modify change records) offline: stops the DC,
    /// adds everything to sam.ldb in one transaction through Samba's Python bindings, and
    /// starts it again. Far faster than LDAP for thousands of objects. Returns the time taken
    /// from stop to ready again.
    pub fn bulk_load(&self, ldif: &str) -> Duration {
        let _outage = self.exclusive();
        std::fs::create_dir_all(self.dir.join("ldif")).must("creating the ldif folder");
        static N: AtomicUsize = AtomicUsize::new(0);
        let file = self.dir.join(format!(
            "ldif/bulk-{}.ldif",
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&file, ldif).must(&format!("writing {}", file.display()));
        let started = Instant::now();
        self.stop();
        let out = try_run_watched(
            Command::new(PYTHON)
                .arg(LOADER)
                .arg(&self.smb_conf)
                .arg(&file)
                .env_remove("PYTHONPATH")
                .env_remove("PYTHONHOME"),
            SLOW_LIMIT,
        );
        // Back up before judging the load, so that a failed load leaves the forest usable.
        self.start();
        let took = started.elapsed();
        let out = out.must("running samba_load.py");
        assert!(
            out.status.success(),
            "bulk load into {} failed (input kept in {}):\n{}",
            self.name,
            file.display(),
            tail(&String::from_utf8_lossy(&out.stderr))
        );
        let _ = std::fs::remove_file(&file);
        eprintln!(
            "bridgehead lab: bulk load into {}: {}; {:.1} s with stop and start",
            self.name,
            String::from_utf8_lossy(&out.stdout).trim(),
            took.as_secs_f64()
        );
        took
    }

    /// The objectSid of an entry as text (S-1-5-21-…), e.g. to add it as a foreign member in
    /// the other forest (`member: <SID=…>`).
    pub fn sid_of(&self, dn: &str) -> String {
        let entry = self
            .entry(dn, &["objectSid"])
            .must(&format!("{dn} in {}", self.name));
        let (_, value) = entry
            .attrs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("objectSid"))
            .must(&format!("objectSid of {dn}"));
        sid_to_string(&value.bytes)
    }
}

impl LdapServer for Forest {
    fn tools(&self) -> &LdapTools {
        &self.tools
    }
    fn gate(&self) -> &Gate {
        &self.gate
    }
    fn base_dn(&self) -> &str {
        &self.base_dn
    }
}

/// A binary SID (MS-DTYP 2.4.2.2) as S-1-…: revision, sub-authority count, a 48-bit
/// big-endian authority, then little-endian 32-bit sub-authorities.
pub fn sid_to_string(b: &[u8]) -> String {
    assert!(b.len() >= 8, "SID too short: {b:?}");
    let count = usize::from(b[1]);
    assert_eq!(
        b.len(),
        8 + 4 * count,
        "SID length does not match its count"
    );
    let authority = b[2..8].iter().fold(0u64, |a, x| (a << 8) | u64::from(*x));
    let mut s = format!("S-{}-{authority}", b[0]);
    for chunk in b[8..].chunks(4) {
        let sub = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        s.push_str(&format!("-{sub}"));
    }
    s
}

/// The `unicodePwd` value AD wants: base64 of the UTF-16LE of the password in double quotes.
pub fn unicode_pwd(password: &str) -> String {
    let quoted = format!("\"{password}\"");
    let bytes: Vec<u8> = quoted.encode_utf16().flat_map(u16::to_le_bytes).collect();
    BASE64.encode(bytes)
}

/// An LDIF change record that sets a user's password, for `ldapmodify` over LDAPS.
pub fn set_password_ldif(user_dn: &str, password: &str) -> String {
    let dn_line = if user_dn.is_ascii() && !user_dn.starts_with([' ', ':', '<']) {
        format!("dn: {user_dn}")
    } else {
        format!("dn:: {}", BASE64.encode(user_dn))
    };
    format!(
        "{dn_line}\nchangetype: modify\nreplace: unicodePwd\nunicodePwd:: {}\n-\n",
        unicode_pwd(password)
    )
}

/// Adds `ip` to the loopback interface unless it is there: Samba binds only addresses that
/// are on an interface (127.0.0.1/8 routes 127.0.0.2 but does not put it on `lo`).
fn ensure_loopback_address(ip: &str) {
    require_program("ip", "iproute2");
    let shown = run(Command::new("ip").args(["-o", "addr", "show", "dev", "lo"]));
    let text = String::from_utf8_lossy(&shown.stdout);
    if text.contains(&format!("inet {ip}/")) {
        return;
    }
    let out = try_run(
        Command::new("ip").args(["addr", "add", &format!("{ip}/32"), "dev", "lo"]),
        Duration::from_secs(30),
    )
    .must("running ip addr add");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() || err.contains("File exists"),
        "cannot add {ip} to lo (run as root, or add it once: ip addr add {ip}/32 dev lo): {err}"
    );
}

/// Makes sure nothing listens on `ip`'s LDAP ports. Called with the address claimed, so no
/// live lab uses it: a Samba still there was left by an earlier run that crashed past its
/// watchdog, and is killed; anything else is reported, not killed.
fn clear_address(ip: &str) {
    require_program("ss", "iproute2");
    for _ in 0..3 {
        let Some(&(port, pid)) = listeners(ip).first() else {
            return;
        };
        let pgid = super::process::proc_stat(pid).map_or(pid, |s| s.pgrp);
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
        assert!(
            exe.file_name().is_some_and(|n| n == "samba"),
            "{ip}:{port} is held by {} (pid {pid}), not by a lab samba: stop it (a system \
             slapd or samba? scripts/test.sh keeps those from starting)",
            exe.display()
        );
        eprintln!("bridgehead lab: killing leftover samba (process group {pgid}) on {ip}:{port}");
        super::process::kill_group_and_wait(pgid, Duration::from_secs(5));
    }
    panic!(
        "{ip}: LDAP ports still held after killing leftovers: {:?}",
        listeners(ip)
    );
}

/// (port, pid) of every listener that would clash with a Samba on `ip`.
fn listeners(ip: &str) -> Vec<(u16, u32)> {
    let out = run(Command::new("ss")
        .args(["-H", "-l", "-t", "-n", "-p"])
        .stdin(Stdio::null()));
    let mut found = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some((host, port)) = fields.get(3).and_then(|a| a.rsplit_once(':')) else {
            continue;
        };
        let Ok(port) = port.parse::<u16>() else {
            continue;
        };
        if !LDAP_PORTS.contains(&port) || ![ip, "0.0.0.0", "*", "[::]"].contains(&host) {
            continue;
        }
        for part in line.split("pid=").skip(1) {
            let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
            if let Ok(pid) = digits.parse() {
                found.push((port, pid));
            }
        }
    }
    found
}
