//! The OpenLDAP command-line tools (ldapadd, ldapmodify, ldapdelete, ldapsearch) pointed at
//! one lab server, always over TLS with the lab CA verified (`LDAPTLS_REQCERT=demand`), and
//! results read with the tests' own LDIF parser. Independent of the crate's LDAP code on
//! purpose: what a test checks in a directory must not pass through the code under test.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{Gate, GateHold, TOOL_LIMIT, try_run};
use crate::support::{LdifEntry, Must, parse_ldif, tail};

/// An LDAP search scope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The base entry only.
    Base,
    /// The base entry's children.
    One,
    /// The base entry and everything below it.
    Sub,
}

impl Scope {
    fn arg(self) -> &'static str {
        match self {
            Scope::Base => "base",
            Scope::One => "one",
            Scope::Sub => "sub",
        }
    }
}

/// How the tools reach one server: URL, TLS mode, credentials and the CA to verify against.
#[derive(Clone, Debug)]
pub struct LdapTools {
    /// `ldaps://…` or, with `starttls`, `ldap://…`.
    pub url: String,
    /// Whether to upgrade `ldap://` with StartTLS (`-ZZ`: fail if it cannot).
    pub starttls: bool,
    /// The DN (or, for AD, UPN) to bind as.
    pub bind_dn: String,
    /// A file holding the password (passed with `-y`, so it is not on a command line).
    pub password_file: PathBuf,
    /// The CA certificate the server's certificate must chain to.
    pub ca_file: PathBuf,
    /// Where LDIF inputs are written (kept when a command fails).
    pub scratch: PathBuf,
}

/// The result of an LDAP tool that failed: its exit code (the LDAP result code for the
/// OpenLDAP tools) and its stderr.
#[derive(Clone, Debug)]
pub struct ToolError {
    /// Exit code; the tools exit with the LDAP result code (32 = noSuchObject).
    pub code: Option<i32>,
    /// Standard error.
    pub stderr: String,
}

impl std::fmt::Display for ToolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {:?}: {}", self.code, self.stderr.trim())
    }
}

impl LdapTools {
    /// A tool command with the environment that makes it verify the server against our CA
    /// only (not the system store, not a user's ~/.ldaprc).
    pub fn command(&self, tool: &str) -> Command {
        let mut cmd = Command::new(tool);
        cmd.env("LDAPTLS_CACERT", &self.ca_file)
            .env("LDAPTLS_REQCERT", "demand")
            .env("LDAPRC", "bridgehead-lab-no-ldaprc")
            .env_remove("LDAPTLS_CERT")
            .env_remove("LDAPTLS_KEY")
            .env_remove("LDAPTLS_CACERTDIR")
            .args(["-H", &self.url, "-x", "-D", &self.bind_dn, "-y"])
            .arg(&self.password_file)
            .args(["-o", "nettimeout=30"]);
        if self.starttls {
            cmd.arg("-ZZ");
        }
        cmd
    }

    fn output(&self, cmd: &mut Command) -> Result<Output, ToolError> {
        let out = try_run(cmd, TOOL_LIMIT).must("running an LDAP tool");
        if out.status.success() {
            Ok(out)
        } else {
            Err(ToolError {
                code: out.status.code(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            })
        }
    }

    /// Writes LDIF to a fresh file under `scratch` (files make failures reproducible by hand).
    fn ldif_file(&self, what: &str, ldif: &str) -> PathBuf {
        static N: AtomicUsize = AtomicUsize::new(0);
        std::fs::create_dir_all(&self.scratch).must("creating the scratch folder");
        let path = self
            .scratch
            .join(format!("{what}-{}.ldif", N.fetch_add(1, Ordering::Relaxed)));
        std::fs::write(&path, ldif).must(&format!("writing {}", path.display()));
        path
    }

    /// Applies LDIF with `ldapmodify` (`add` = `-a`: records without changetype are adds).
    fn apply(&self, ldif: &str, add: bool) {
        let file = self.ldif_file(if add { "add" } else { "modify" }, ldif);
        let mut cmd = self.command("ldapmodify");
        if add {
            cmd.arg("-a");
        }
        cmd.arg("-f").arg(&file);
        match self.output(&mut cmd) {
            Ok(_) => {
                let _ = std::fs::remove_file(&file);
            }
            Err(e) => panic!(
                "ldap{} against {} failed (exit {:?}); input kept in {}\n--- stderr ---\n{}\n--- input ---\n{}",
                if add { "add" } else { "modify" },
                self.url,
                e.code,
                file.display(),
                tail(&e.stderr),
                tail(ldif)
            ),
        }
    }

    /// ldapadd: LDIF content records (or changetype records).
    pub fn add(&self, ldif: &str) {
        self.apply(ldif, true);
    }

    /// ldapmodify: LDIF change records.
    pub fn modify(&self, ldif: &str) {
        self.apply(ldif, false);
    }

    /// ldapdelete of one entry.
    pub fn delete(&self, dn: &str) {
        let mut cmd = self.command("ldapdelete");
        cmd.arg(dn);
        if let Err(e) = self.output(&mut cmd) {
            panic!(
                "ldapdelete {dn:?} against {} failed (exit {:?})\n{}",
                self.url,
                e.code,
                tail(&e.stderr)
            );
        }
    }

    /// ldapsearch with paging, unwrapped lines and no comments; Err carries the exit code.
    pub fn try_search(
        &self,
        base: &str,
        scope: Scope,
        filter: &str,
        attrs: &[&str],
    ) -> Result<Vec<LdifEntry>, ToolError> {
        let mut cmd = self.command("ldapsearch");
        // -LLL leaves only entries: search references and paging cookies would be
        // comments, which the parser skips anyway.
        cmd.args(["-LLL", "-o", "ldif-wrap=no", "-E", "pr=1000/noprompt"])
            .args(["-b", base, "-s", scope.arg(), filter])
            .args(attrs);
        let out = self.output(&mut cmd)?;
        Ok(parse_ldif(&out.stdout).must(&format!(
            "parsing ldapsearch output from {} (base {base}, filter {filter})",
            self.url
        )))
    }

    /// ldapsearch that must succeed.
    pub fn search(&self, base: &str, scope: Scope, filter: &str, attrs: &[&str]) -> Vec<LdifEntry> {
        self.try_search(base, scope, filter, attrs)
            .unwrap_or_else(|e| {
                panic!(
                    "ldapsearch -b {base:?} -s {} {filter:?} against {} failed (exit {:?})\n{}",
                    scope.arg(),
                    self.url,
                    e.code,
                    tail(&e.stderr)
                )
            })
    }
}

/// What every lab server offers a test: the tools above behind its [`Gate`], and an OU of the
/// test's own. Bring it into scope to call these on a `Forest` or a `Slapd`.
pub trait LdapServer {
    /// The tools pointed at this server.
    fn tools(&self) -> &LdapTools;
    /// The server's availability gate (held shared by every call below).
    fn gate(&self) -> &Gate;
    /// The naming context tests work under.
    fn base_dn(&self) -> &str;

    /// Holds the server up (shared) for as long as the result lives: a test that points the
    /// code under test at a shared server holds this, so no other test stops it meanwhile.
    fn hold(&self) -> GateHold<'_> {
        self.gate().shared()
    }

    /// Waits until no other test uses the server and keeps them out while the result lives:
    /// required around `stop()`…`start()` on a shared server.
    fn exclusive(&self) -> GateHold<'_> {
        self.gate().exclusive()
    }

    /// Adds LDIF content records; panics with ldapadd's stderr on failure.
    fn ldapadd(&self, ldif: &str) {
        let _hold = self.gate().shared();
        self.tools().add(ldif);
    }

    /// Applies LDIF change records (`changetype: modify/add/delete/modrdn`).
    fn ldapmodify(&self, ldif: &str) {
        let _hold = self.gate().shared();
        self.tools().modify(ldif);
    }

    /// Deletes one entry.
    fn ldapdelete(&self, dn: &str) {
        let _hold = self.gate().shared();
        self.tools().delete(dn);
    }

    /// Searches (paged, so any size works); panics on any failure.
    fn ldapsearch(&self, base: &str, scope: Scope, filter: &str, attrs: &[&str]) -> Vec<LdifEntry> {
        let _hold = self.gate().shared();
        self.tools().search(base, scope, filter, attrs)
    }

    /// One entry by DN, or None when it does not exist (noSuchObject).
    fn entry(&self, dn: &str, attrs: &[&str]) -> Option<LdifEntry> {
        let _hold = self.gate().shared();
        match self
            .tools()
            .try_search(dn, Scope::Base, "(objectClass=*)", attrs)
        {
            Ok(mut found) => found.pop(),
            Err(e) if e.code == Some(32) => None,
            Err(e) => panic!(
                "reading {dn:?} from {} failed (exit {:?})\n{}",
                self.tools().url,
                e.code,
                tail(&e.stderr)
            ),
        }
    }

    /// Creates `OU=<name>` under the base DN and returns its DN as the server spells it
    /// (slapd writes `ou=`). Give each test its own name: a second OU of the same name fails
    /// (entryAlreadyExists) rather than be shared.
    fn create_ou(&self, name: &str) -> String {
        let dn = format!("OU={name},{}", self.base_dn());
        self.ldapadd(&format!(
            "dn: {dn}\nobjectClass: top\nobjectClass: organizationalUnit\nou: {name}\n"
        ));
        self.entry(&dn, &["1.1"])
            .must(&format!("the new OU {dn}"))
            .dn
    }
}
