//! Private OpenLDAP instances: [`shared`] (one per test process, syncprov on) and [`start`]
//! for a test that needs its own configuration (e.g. no syncprov, to test the fallback).
//!
//! Each instance has its own folder under the lab root holding a cn=config tree built
//! offline with `slapadd -n0` (schemas core, cosine, nis, inetorgperson), an mdb database
//! for `dc=example,dc=test` with `olcDbNoSync` (LAB.md: an fsync-bound syncrepl consumer is
//! 15× slower), and the lab CA-signed certificate, so `ldaps://` and StartTLS on `ldap://`
//! both verify. It listens on two free ports and on an `ldapi://` socket in its folder.
//! slapd runs in the foreground (`-d stats`) as our child, in its own process group, watched;
//! its log (every operation, every error) is `slapd.log` in its folder.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::client::{LdapTools, Scope};
use super::{
    Gate, LdapServer, ServerProcess, free_port, log_tail, require_program, root, run, set_up_once,
    tls, wait_until, write_secret,
};
use crate::support::Must;

/// The suffix of every lab slapd.
pub const BASE_DN: &str = "dc=example,dc=test";

/// The root DN's password.
pub const PASSWORD: &str = "bridgehead-lab-slapd";

/// How long slapd may take to answer a StartTLS bind after starting.
const START_LIMIT: Duration = Duration::from_secs(60);

/// What a test can choose about its own instance.
#[derive(Clone, Debug)]
pub struct SlapdOptions {
    /// Load the syncprov overlay (RFC 4533 content sync); off to test a client's fallback.
    pub syncprov: bool,
    /// Load the refint overlay on `member` and `manager`: slapd then rewrites those values
    /// when the entry they name is renamed and removes them when it is deleted.
    pub refint: bool,
}

impl Default for SlapdOptions {
    fn default() -> SlapdOptions {
        SlapdOptions {
            syncprov: true,
            refint: false,
        }
    }
}

/// One running slapd. Dropping it stops it (the shared one lives until the process ends).
pub struct Slapd {
    /// `ldap://127.0.0.1:PORT` (StartTLS available).
    pub ldap_url: String,
    /// `ldaps://127.0.0.1:PORT`.
    pub ldaps_url: String,
    /// `ldapi://…` (the socket in `dir`; root's peer credentials manage cn=config).
    pub ldapi_url: String,
    /// The database suffix, `dc=example,dc=test`.
    pub base_dn: String,
    /// The root DN, `cn=admin,dc=example,dc=test`.
    pub bind_dn: String,
    /// The root DN's password.
    pub password: String,
    /// A 0600 file holding exactly the password (no newline), for configs.
    pub password_file: PathBuf,
    /// The lab CA certificate the server's certificate chains to.
    pub ca_file: PathBuf,
    /// The instance's folder (slapd.d, db, slapd.log, ldapi).
    pub dir: PathBuf,
    /// What it was started with.
    pub options: SlapdOptions,
    name: String,
    listen: String,
    tools: LdapTools,
    gate: Gate,
    process: Mutex<Option<ServerProcess>>,
}

/// The process-wide shared instance (syncprov on), started on first use.
pub fn shared() -> &'static Slapd {
    static SHARED: OnceLock<Result<Slapd, String>> = OnceLock::new();
    set_up_once(&SHARED, "shared slapd", || start(SlapdOptions::default()))
}

/// A new instance of the test's own, running; stopped when dropped.
pub fn start(options: SlapdOptions) -> Slapd {
    require_program("slapd", "slapd");
    require_program("slapadd", "slapd");
    static N: AtomicUsize = AtomicUsize::new(0);
    let name = format!("slapd-{}", N.fetch_add(1, Ordering::Relaxed));
    let dir = root().join(&name);
    let _ = std::fs::remove_dir_all(&dir);
    for sub in ["slapd.d", "db", "ldif"] {
        std::fs::create_dir_all(dir.join(sub)).must("creating the slapd folders");
    }
    let cert = tls::server_cert("slapd", "127.0.0.1", "ldap.example.test");
    let ca_file = tls::ca().cert.clone();
    let password_file = dir.join("password");
    write_secret(&password_file, PASSWORD);

    let config = dir.join("config.ldif");
    std::fs::write(&config, config_ldif(&dir, &cert, &ca_file, &options))
        .must("writing config.ldif");
    run(Command::new("slapadd")
        .args(["-n0", "-F"])
        .arg(dir.join("slapd.d"))
        .arg("-l")
        .arg(&config));

    let (ldap_port, ldaps_port) = (free_port(), free_port());
    let ldap_url = format!("ldap://127.0.0.1:{ldap_port}");
    let ldapi_url = format!(
        "ldapi://{}",
        percent_encode(&dir.join("ldapi").to_string_lossy())
    );
    let bind_dn = format!("cn=admin,{BASE_DN}");
    let slapd = Slapd {
        ldaps_url: format!("ldaps://127.0.0.1:{ldaps_port}"),
        listen: format!("{ldap_url}/ ldaps://127.0.0.1:{ldaps_port}/ {ldapi_url}/"),
        ldap_url: ldap_url.clone(),
        ldapi_url,
        base_dn: BASE_DN.to_string(),
        bind_dn: bind_dn.clone(),
        password: PASSWORD.to_string(),
        password_file: password_file.clone(),
        ca_file: ca_file.clone(),
        options,
        tools: LdapTools {
            url: ldap_url,
            starttls: true,
            bind_dn,
            password_file,
            ca_file,
            scratch: dir.join("ldif"),
        },
        dir,
        name,
        gate: Gate::default(),
        process: Mutex::new(None),
    };
    // The base entries go in offline: the suffix, ou=people, ou=groups.
    slapd.slapadd(&format!(
        "dn: {BASE_DN}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n\
         dn: ou=people,{BASE_DN}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: ou=groups,{BASE_DN}\nobjectClass: organizationalUnit\nou: groups\n"
    ));
    slapd.start();
    slapd
}

/// cn=config for one instance. Size limits are unlimited, so a client pages only when it
/// asks to; the root DN is the one account; every bound user may read.
fn config_ldif(
    dir: &std::path::Path,
    cert: &tls::ServerCert,
    ca: &std::path::Path,
    options: &SlapdOptions,
) -> String {
    let d = dir.display();
    let mut ldif = format!(
        "dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {d}/slapd.pid
olcArgsFile: {d}/slapd.args
olcTLSCACertificateFile: {ca}
olcTLSCertificateFile: {cert}
olcTLSCertificateKeyFile: {key}
olcSizeLimit: unlimited

dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb
{syncprov_module}
dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif

include: file:///etc/ldap/schema/cosine.ldif

include: file:///etc/ldap/schema/nis.ldif

include: file:///etc/ldap/schema/inetorgperson.ldif

dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend
olcSizeLimit: unlimited

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcAccess: {{0}}to * by dn.exact=gidNumber=0+uidNumber=0,cn=peercred,cn=external,cn=auth manage by * none

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcDbDirectory: {d}/db
olcSuffix: {BASE_DN}
olcRootDN: cn=admin,{BASE_DN}
olcRootPW: {PASSWORD}
olcDbNoSync: TRUE
olcDbMaxSize: 8589934592
olcDbIndex: objectClass eq
olcDbIndex: entryUUID eq
olcDbIndex: entryCSN eq
olcSizeLimit: unlimited
olcLimits: {{0}}* size.prtotal=unlimited
olcAccess: {{0}}to attrs=userPassword by self write by anonymous auth by * none
olcAccess: {{1}}to * by users read by * none
",
        ca = ca.display(),
        cert = cert.cert.display(),
        key = cert.key.display(),
        syncprov_module = match (options.syncprov, options.refint) {
            (true, true) => "olcModuleLoad: syncprov\nolcModuleLoad: refint\n",
            (true, false) => "olcModuleLoad: syncprov\n",
            (false, true) => "olcModuleLoad: refint\n",
            (false, false) => "",
        },
    );
    // Overlays run in the order listed, {0} first. refint goes first: its repairs of the
    // referring entries then pass through syncprov, which reports them to consumers.
    let mut index = 0;
    if options.refint {
        ldif.push_str(&format!(
            "
dn: olcOverlay={{{index}}}refint,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcRefintConfig
olcOverlay: {{{index}}}refint
olcRefintAttribute: member manager
"
        ));
        index += 1;
    }
    if options.syncprov {
        // A session log, so that a refresh after deletes lists the deleted entryUUIDs
        // instead of sending every present entry.
        ldif.push_str(&format!(
            "
dn: olcOverlay={{{index}}}syncprov,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcSyncProvConfig
olcOverlay: {{{index}}}syncprov
olcSpCheckpoint: 100 10
olcSpSessionlog: 10000
"
        ));
    }
    ldif
}

/// Percent-encodes a socket path for an ldapi:// URL.
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Slapd {
    /// Starts slapd (no-op when running) and waits until a StartTLS bind as the root DN
    /// succeeds. Hold [`LdapServer::exclusive`] around `stop()`…`start()`.
    pub fn start(&self) {
        let mut process = self.process.lock().unwrap_or_else(|e| e.into_inner());
        if process.is_some() {
            return;
        }
        let log = self.dir.join("slapd.log");
        let started = Instant::now();
        let mut cmd = Command::new("slapd");
        // `-d stats` keeps slapd in the foreground and logs each operation and every error
        // to stderr (our slapd.log); `-d 0` would log nothing, not even why it stopped.
        cmd.args(["-d", "stats", "-F"])
            .arg(self.dir.join("slapd.d"))
            .args(["-h", &self.listen]);
        let mut p = ServerProcess::spawn(&self.name, &mut cmd, &log, false);
        let ready = wait_until(&format!("slapd at {}", self.ldap_url), START_LIMIT, || {
            if let Some(status) = p.exited() {
                return Ok(Some(status));
            }
            self.tools
                .try_search("", Scope::Base, "(objectClass=*)", &["namingContexts"])
                .map(|_| None)
                .map_err(|e| e.stderr.trim().to_string())
        });
        match ready {
            Ok(None) => {
                eprintln!(
                    "bridgehead lab: started {} in {:.2} s ({})",
                    self.name,
                    started.elapsed().as_secs_f64(),
                    self.ldap_url
                );
                *process = Some(p);
            }
            Ok(Some(status)) => {
                p.stop(Duration::from_secs(1));
                panic!("slapd exited during startup ({status})\n{}", log_tail(&log));
            }
            Err(e) => {
                p.stop(Duration::from_secs(5));
                panic!("{e}\n{}", log_tail(&log));
            }
        }
    }

    /// Stops slapd (SIGTERM: it syncs the database) and waits until it is gone. On the
    /// shared instance, only inside [`LdapServer::exclusive`].
    pub fn stop(&self) {
        assert!(
            self.gate.held_exclusively(),
            "Slapd::stop: hold `let _outage = slapd.exclusive();` first, so that tests using \
             {} in parallel wait instead of failing",
            self.name
        );
        self.stop_now();
    }

    fn stop_now(&self) {
        let taken = self
            .process
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(p) = taken {
            p.stop(Duration::from_secs(10));
        }
    }

    /// Loads LDIF content records offline (`slapadd -q -w`, slapd stopped and started again
    /// around it). Returns the time taken from stop to ready again.
    pub fn bulk_load(&self, ldif: &str) -> Duration {
        let _outage = self.exclusive();
        let started = Instant::now();
        self.stop();
        let loading = Instant::now();
        self.slapadd(ldif);
        let slapadd = loading.elapsed();
        self.start();
        let took = started.elapsed();
        eprintln!(
            "bridgehead lab: bulk load into {}: slapadd {:.2} s; {:.2} s with stop and start",
            self.name,
            slapadd.as_secs_f64(),
            took.as_secs_f64()
        );
        took
    }

    /// slapadd with the server stopped (the caller's job): quick mode, contextCSN updated so
    /// syncrepl consumers see the new entries as part of the current state.
    fn slapadd(&self, ldif: &str) {
        static N: AtomicUsize = AtomicUsize::new(0);
        let file = self.dir.join(format!(
            "ldif/slapadd-{}.ldif",
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&file, ldif).must(&format!("writing {}", file.display()));
        run(Command::new("slapadd")
            .args(["-q", "-w", "-F"])
            .arg(self.dir.join("slapd.d"))
            .args(["-b", BASE_DN, "-l"])
            .arg(&file));
        let _ = std::fs::remove_file(&file);
    }
}

impl LdapServer for Slapd {
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

impl Drop for Slapd {
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// One write operation slapd finished, as its `-d stats` log records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedWrite {
    /// `ADD`, `MOD`, `DEL` or `MODRDN`.
    pub op: String,
    /// The target DN as the client sent it.
    pub dn: String,
    /// The LDAP result code (0 = applied).
    pub rc: u32,
}

impl Slapd {
    /// Every write operation slapd has answered so far, in log order, read from its own
    /// `-d stats` log: the server's record of what it applied, independent of our client.
    /// An operation shows as a request line (`conn=C op=O ADD dn="…"`) and, later, its
    /// result (`conn=C op=O RESULT tag=105 err=0 …`); connection numbers restart with each
    /// slapd start, so pairs are matched within one run of the server only.
    pub fn logged_writes(&self) -> Vec<LoggedWrite> {
        let path = self.dir.join("slapd.log");
        let text = std::fs::read(&path).must(&format!("reading {}", path.display()));
        parse_logged_writes(&String::from_utf8_lossy(&text))
    }
}

/// Parses a `-d stats` log into the write operations that got a result.
pub fn parse_logged_writes(text: &str) -> Vec<LoggedWrite> {
    let mut open: std::collections::HashMap<(String, String), (String, String)> =
        std::collections::HashMap::new();
    let mut done = Vec::new();
    for line in text.lines() {
        if line.ends_with("slapd starting") {
            open.clear();
            continue;
        }
        // "<time> <thread> conn=C op=O VERB rest"
        let mut words = line.splitn(6, ' ');
        let (Some(_), Some(_), Some(conn), Some(op), Some(verb)) = (
            words.next(),
            words.next(),
            words.next(),
            words.next(),
            words.next(),
        ) else {
            continue;
        };
        if !conn.starts_with("conn=") || !op.starts_with("op=") {
            continue;
        }
        let rest = words.next().unwrap_or_default();
        let key = (conn.to_string(), op.to_string());
        match verb {
            "ADD" | "MOD" | "DEL" | "MODRDN" => {
                if let Some(dn) = rest.strip_prefix("dn=\"").and_then(|d| d.strip_suffix('"')) {
                    open.insert(key, (verb.to_string(), dn.to_string()));
                }
            }
            "RESULT" => {
                if let Some((op, dn)) = open.remove(&key) {
                    let rc = rest
                        .split(' ')
                        .find_map(|w| w.strip_prefix("err="))
                        .and_then(|n| n.parse().ok())
                        .must(&format!("the result code in slapd log line {line:?}"));
                    done.push(LoggedWrite { op, dn, rc });
                }
            }
            _ => {}
        }
    }
    done
}

#[test]
fn stats_log_writes_are_paired_with_their_results() {
    let log = "\
6b07c604.37bf3f2f 0x7f12 slapd starting
6b07c607.1 0x7f69 conn=1006 op=2 ADD dn=\"uid=a,ou=x,dc=example,dc=test\"
6b07c607.2 0x7f69 conn=1007 op=2 ADD dn=\"uid=b,ou=x,dc=example,dc=test\"
6b07c607.3 0x7f69 conn=1006 op=3 MOD dn=\"uid=a,ou=x,dc=example,dc=test\"
6b07c607.4 0x7f69 conn=1006 op=3 MOD attr=description
6b07c607.5 0x7f69 conn=1007 op=2 RESULT tag=105 err=68 qtime=0.000011 etime=0.000151 text=Already exists
6b07c607.6 0x7f69 conn=1006 op=2 RESULT tag=105 err=0 qtime=0.000011 etime=0.000151 text=
6b07c607.7 0x7f69 conn=1006 op=3 RESULT tag=103 err=0 qtime=0.000011 etime=0.000151 text=
6b07c607.8 0x7f69 conn=1006 op=4 DEL dn=\"uid=c,ou=x,dc=example,dc=test\"
6b07c604.37bf3f2f 0x7f12 slapd starting
6b07c607.9 0x7f69 conn=1006 op=4 RESULT tag=107 err=0 qtime=0.000011 etime=0.000151 text=
";
    let w = |op: &str, dn: &str, rc: u32| LoggedWrite {
        op: op.into(),
        dn: format!("uid={dn},ou=x,dc=example,dc=test"),
        rc,
    };
    // The DEL's result came from another run of slapd (connection numbers restart): no pair.
    assert_eq!(
        parse_logged_writes(log),
        vec![w("ADD", "b", 68), w("ADD", "a", 0), w("MOD", "a", 0)]
    );
}
