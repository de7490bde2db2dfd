//! The lab's certificates, made with the `openssl` command-line tool: one CA for the whole
//! lab (so one `ca.pem` verifies every server) and one certificate per server, signed by it.
//!
//! A server certificate's subjectAltName holds both `IP:<address>` and `DNS:<host name>`:
//! rustls matches an IP address only against IP SAN entries (never the CN), and a client
//! that connects by name needs the DNS entry. Keys are ECDSA P-256: made in milliseconds
//! (RSA takes a quarter of a second each), and accepted by rustls, GnuTLS (Samba, slapd and
//! the OpenLDAP tools) and OpenSSL alike.
//!
//! [`foreign_ca`] is a second CA that signed nothing here, for tests that must see
//! verification fail.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use super::{require_program, root, run};
use crate::support::Must;

/// How long lab certificates are valid (a lab lives for one test run).
const DAYS: &str = "30";

/// The openssl configuration: a non-interactive `req`, and the CA's extensions.
const OPENSSL_CNF: &str = "\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
";

/// A certificate authority: its certificate and private key.
#[derive(Clone, Debug)]
pub struct Ca {
    /// The CA certificate (PEM): what clients trust.
    pub cert: PathBuf,
    /// Its private key (PEM, mode 0600).
    pub key: PathBuf,
}

/// A server's certificate and key, signed by the lab CA.
#[derive(Clone, Debug)]
pub struct ServerCert {
    /// The certificate (PEM), leaf only.
    pub cert: PathBuf,
    /// The private key (PEM PKCS#8, mode 0600: Samba refuses a key others can read).
    pub key: PathBuf,
}

fn tls_dir() -> PathBuf {
    let dir = root().join("tls");
    std::fs::create_dir_all(&dir).must("creating the lab's tls folder");
    let cnf = dir.join("openssl.cnf");
    if !cnf.exists() {
        std::fs::write(&cnf, OPENSSL_CNF).must("writing openssl.cnf");
    }
    dir
}

fn restrict(key: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(key, std::fs::Permissions::from_mode(0o600))
        .must(&format!("chmod 600 {}", key.display()));
}

/// Makes a self-signed CA named `name` in the lab's tls folder.
fn make_ca(name: &str, subject: &str) -> Ca {
    require_program("openssl", "openssl");
    let dir = tls_dir();
    let ca = Ca {
        cert: dir.join(format!("{name}.pem")),
        key: dir.join(format!("{name}.key")),
    };
    run(Command::new("openssl")
        .args(["req", "-x509", "-new", "-newkey", "ec"])
        .args([
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            DAYS,
        ])
        .arg("-keyout")
        .arg(&ca.key)
        .arg("-out")
        .arg(&ca.cert)
        .args(["-subj", subject, "-extensions", "ca_ext", "-config"])
        .arg(dir.join("openssl.cnf")));
    restrict(&ca.key);
    ca
}

/// The lab CA, made on first use.
pub fn ca() -> &'static Ca {
    static CA: OnceLock<Ca> = OnceLock::new();
    CA.get_or_init(|| make_ca("ca", "/CN=Bridgehead lab CA"))
}

/// A CA that signed nothing in the lab: verifying a lab server against it must fail.
pub fn foreign_ca() -> &'static Path {
    static FOREIGN: OnceLock<Ca> = OnceLock::new();
    &FOREIGN
        .get_or_init(|| make_ca("foreign-ca", "/CN=Not the Bridgehead lab CA"))
        .cert
}

/// The certificate for server `name` at `ip` with host name `dns` (made once per name and
/// reused, so every instance of a server presents the same certificate).
pub fn server_cert(name: &str, ip: &str, dns: &str) -> ServerCert {
    static MADE: Mutex<Option<HashMap<String, ServerCert>>> = Mutex::new(None);
    static SERIAL: AtomicU64 = AtomicU64::new(1);
    // Held while making one so that two threads asking for one name get one certificate.
    let mut made = MADE.lock().unwrap_or_else(|e| e.into_inner());
    let made = made.get_or_insert_with(HashMap::new);
    if let Some(c) = made.get(name) {
        return c.clone();
    }
    let ca = ca();
    let dir = tls_dir();
    let cert = ServerCert {
        cert: dir.join(format!("{name}.pem")),
        key: dir.join(format!("{name}.key")),
    };
    let csr = dir.join(format!("{name}.csr"));
    let ext = dir.join(format!("{name}.ext"));
    std::fs::write(
        &ext,
        format!(
            "basicConstraints = critical, CA:FALSE\n\
             keyUsage = critical, digitalSignature\n\
             extendedKeyUsage = serverAuth\n\
             subjectKeyIdentifier = hash\n\
             authorityKeyIdentifier = keyid\n\
             subjectAltName = IP:{ip}, DNS:{dns}\n"
        ),
    )
    .must("writing the certificate's extensions");
    run(Command::new("openssl")
        .args(["req", "-new", "-newkey", "ec"])
        .args(["-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"])
        .arg("-keyout")
        .arg(&cert.key)
        .arg("-out")
        .arg(&csr)
        .args(["-subj", &format!("/CN={dns}"), "-config"])
        .arg(dir.join("openssl.cnf")));
    restrict(&cert.key);
    // An explicit serial (pid and counter) instead of -CAcreateserial: no shared serial file
    // for concurrent signings to race on, and distinct serials across runs.
    let serial = format!(
        "0x{:x}{:04x}",
        std::process::id(),
        SERIAL.fetch_add(1, Ordering::Relaxed)
    );
    run(Command::new("openssl")
        .args(["x509", "-req", "-days", DAYS, "-set_serial", &serial])
        .arg("-in")
        .arg(&csr)
        .arg("-CA")
        .arg(&ca.cert)
        .arg("-CAkey")
        .arg(&ca.key)
        .arg("-extfile")
        .arg(&ext)
        .arg("-out")
        .arg(&cert.cert));
    made.insert(name.to_string(), cert.clone());
    cert
}
