//! One LDAP connection: connect with TLS, bind, paged and streaming searches, reads and
//! writes, each with a time limit and every result code checked. This is the narrow
//! directory interface the connector's import and export are written against (and that a
//! remote agent could one day serve).

use std::collections::HashSet;
use std::time::Duration;

use ldap3::controls::RawControl;
use ldap3::{LdapConnAsync, LdapConnSettings, LdapError, Mod, Scope, StdStream};

use super::controls;
use super::entry::{RawEntry, decode_entry, decode_intermediate, split_range};
use super::wire::{self, Guard};
use crate::config::LdapConfig;

/// Why an operation failed.
#[derive(Debug)]
pub enum Failure {
    /// The directory could not be reached, or the connection broke or timed out.
    Unreachable(String),
    /// The directory answered with an error result.
    Refused {
        /// The LDAP result code.
        rc: u32,
        /// The server's diagnostic text.
        text: String,
    },
    /// The directory sent something we cannot decode.
    BadData(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Unreachable(m) | Failure::BadData(m) => f.write_str(m),
            Failure::Refused { rc, text } if text.is_empty() => {
                write!(f, "{} ({rc})", rc_name(*rc))
            }
            Failure::Refused { rc, text } => write!(f, "{} ({rc}): {text}", rc_name(*rc)),
        }
    }
}

/// The RFC 4511 name of a result code.
pub fn rc_name(rc: u32) -> &'static str {
    match rc {
        0 => "success",
        1 => "operationsError",
        2 => "protocolError",
        3 => "timeLimitExceeded",
        4 => "sizeLimitExceeded",
        8 => "strongerAuthRequired",
        10 => "referral",
        11 => "adminLimitExceeded",
        12 => "unavailableCriticalExtension",
        13 => "confidentialityRequired",
        16 => "noSuchAttribute",
        17 => "undefinedAttributeType",
        19 => "constraintViolation",
        20 => "attributeOrValueExists",
        21 => "invalidAttributeSyntax",
        32 => "noSuchObject",
        34 => "invalidDNSyntax",
        49 => "invalidCredentials",
        50 => "insufficientAccessRights",
        51 => "busy",
        52 => "unavailable",
        53 => "unwillingToPerform",
        64 => "namingViolation",
        65 => "objectClassViolation",
        66 => "notAllowedOnNonLeaf",
        67 => "notAllowedOnRDN",
        68 => "entryAlreadyExists",
        69 => "objectClassModsProhibited",
        80 => "other",
        4096 => "e-syncRefreshRequired",
        _ => "error",
    }
}

impl Failure {
    /// Whether trying the same operation later may succeed.
    pub fn retryable(&self) -> bool {
        match self {
            Failure::Unreachable(_) => true,
            Failure::Refused { rc, .. } => matches!(rc, 3 | 11 | 51 | 52 | 80),
            Failure::BadData(_) => false,
        }
    }

    /// The result code, when the server answered.
    pub fn rc(&self) -> Option<u32> {
        match self {
            Failure::Refused { rc, .. } => Some(*rc),
            _ => None,
        }
    }
}

fn failure(e: LdapError) -> Failure {
    match e {
        LdapError::LdapResult { result } => Failure::Refused {
            rc: result.rc,
            text: result.text,
        },
        LdapError::Timeout { .. } => {
            Failure::Unreachable("the directory did not answer in time".into())
        }
        other => Failure::Unreachable(other.to_string()),
    }
}

fn check(res: ldap3::LdapResult) -> Result<ldap3::LdapResult, Failure> {
    if res.rc == 0 {
        Ok(res)
    } else {
        Err(Failure::Refused {
            rc: res.rc,
            text: res.text,
        })
    }
}

/// A search request.
#[derive(Clone, Debug)]
pub struct Search {
    /// Base DN.
    pub base: String,
    /// Subtree or base.
    pub subtree: bool,
    /// The filter.
    pub filter: String,
    /// Attributes to return.
    pub attrs: Vec<String>,
    /// Controls besides paging.
    pub controls: Vec<RawControl>,
}

/// What a streaming search delivers.
pub enum Item {
    /// An entry with its controls.
    Entry(RawEntry, Vec<RawControl>),
    /// An intermediate response (name, value).
    Intermediate(String, Vec<u8>),
}

/// The end of a streaming search.
pub struct Done {
    /// Response controls.
    pub controls: Vec<RawControl>,
}

/// One bound LDAP connection. A clone shares the connection (ldap3 multiplexes operations
/// by message id), which is how several operations are put in flight at once.
#[derive(Clone)]
pub struct Session {
    ldap: ldap3::Ldap,
    timeout: Duration,
    /// AD: every search carries the extended-DN control, so that DN-syntax values (member,
    /// manager, managedBy) arrive with the GUID of the object they link to.
    extended_dn: bool,
    /// Why the connection was cut under ldap3, if it was.
    guard: Guard,
}

impl Session {
    /// Connects (TLS as configured) and binds.
    pub async fn connect(cfg: &LdapConfig) -> Result<Session, Failure> {
        let (stream, guard) = wire::open(cfg).await?;
        // ldap3 gets the already connected (and upgraded) stream; the URL only picks the
        // socket kind, so TLS and StartTLS are not done twice.
        let settings = LdapConnSettings::new().set_std_stream(StdStream::Unix(stream));
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, "ldapi:///")
            .await
            .map_err(|e| Failure::Unreachable(format!("cannot connect to {}: {e}", cfg.url)))?;
        ldap3::drive!(conn);
        let bound = ldap
            .with_timeout(cfg.timeout)
            .simple_bind(&cfg.bind_dn, cfg.bind_password.expose())
            .await
            .map_err(|e| {
                guard.explain(Failure::Unreachable(format!(
                    "bind to {} failed: {e}",
                    cfg.url
                )))
            })?;
        if bound.rc != 0 {
            // Without a bind nothing can be read: to the runner this directory is out of
            // reach (exit code 3), with the server's own reason.
            return Err(Failure::Unreachable(format!(
                "bind as {} refused: {} ({}): {}",
                cfg.bind_dn,
                rc_name(bound.rc),
                bound.rc,
                bound.text
            )));
        }
        Ok(Session {
            ldap,
            timeout: cfg.timeout,
            extended_dn: cfg.flavor == crate::config::LdapFlavor::Ad,
            guard,
        })
    }

    /// One page of a paged search: its entries (referrals dropped) and the next cookie
    /// (empty after the last page).
    pub async fn page(
        &mut self,
        s: &Search,
        size: u32,
        cookie: &[u8],
    ) -> Result<(Vec<RawEntry>, Vec<u8>), Failure> {
        let mut ctrls = s.controls.clone();
        ctrls.push(controls::paged(size, cookie));
        let mut entries = Vec::new();
        let done = self
            .stream(s, ctrls, &mut |item| {
                if let Item::Entry(e, _) = item {
                    entries.push(e);
                }
                Ok(())
            })
            .await?;
        let next = done
            .controls
            .iter()
            .find(|c| c.ctype == controls::PAGED)
            .and_then(|c| c.val.as_deref())
            .map(|v| {
                controls::parse_paged(v)
                    .ok_or_else(|| Failure::BadData("malformed paged-results response".into()))
            })
            .transpose()?
            .unwrap_or_default();
        Ok((entries, next))
    }

    /// A search whose entries go to `f` as they arrive.
    pub async fn stream(
        &mut self,
        s: &Search,
        ctrls: Vec<RawControl>,
        f: &mut dyn FnMut(Item) -> Result<(), Failure>,
    ) -> Result<Done, Failure> {
        let scope = if s.subtree {
            Scope::Subtree
        } else {
            Scope::Base
        };
        let mut ctrls = ctrls;
        if self.extended_dn && !ctrls.iter().any(|c| c.ctype == controls::EXTENDED_DN) {
            ctrls.push(controls::extended_dn());
        }
        let mut stream = self
            .ldap
            .with_controls(ctrls)
            .with_timeout(self.timeout)
            .streaming_search(&s.base, scope, &s.filter, s.attrs.clone())
            .await
            .map_err(|e| self.guard.explain(failure(e)))?;
        let mut stopped = None;
        loop {
            let next = match stream.next().await {
                Ok(n) => n,
                Err(e) => {
                    stopped = Some(self.guard.explain(failure(e)));
                    break;
                }
            };
            let Some(re) = next else { break };
            if re.is_ref() {
                continue; // Samba refers to CN=Configuration from the domain root; not chased.
            }
            let ctrls: Vec<RawControl> = re.1.iter().map(|c| c.1.clone()).collect();
            let item = if re.is_intermediate() {
                match decode_intermediate(re.0) {
                    Some((name, value)) => Item::Intermediate(name, value),
                    None => continue,
                }
            } else {
                match decode_entry(re.0) {
                    Some(e) => Item::Entry(e, ctrls),
                    None => {
                        stopped = Some(Failure::BadData(format!(
                            "malformed search result entry under {}",
                            s.base
                        )));
                        break;
                    }
                }
            };
            if let Err(e) = f(item) {
                stopped = Some(e);
                break;
            }
        }
        if let Some(e) = stopped {
            // Leave nothing running on the server for a search we stopped reading.
            let id = stream.ldap_handle().last_id();
            let _ = stream.finish().await;
            let _ = self.ldap.abandon(id).await;
            return Err(e);
        }
        let res = check(stream.finish().await)?;
        Ok(Done {
            controls: res.ctrls.into_iter().map(|c| c.1).collect(),
        })
    }

    /// Reads one entry (None when it does not exist).
    pub async fn read(
        &mut self,
        dn: &str,
        attrs: &[String],
        ctrls: Vec<RawControl>,
    ) -> Result<Option<RawEntry>, Failure> {
        let s = Search {
            base: dn.to_string(),
            subtree: false,
            filter: "(objectClass=*)".into(),
            attrs: attrs.to_vec(),
            controls: Vec::new(),
        };
        let mut found = None;
        match self
            .stream(&s, ctrls, &mut |item| {
                if let Item::Entry(e, _) = item {
                    found = Some(e);
                }
                Ok(())
            })
            .await
        {
            Ok(_) => Ok(found),
            Err(Failure::Refused { rc: 32, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Fetches the remaining values of ranged attributes (`member;range=0-1499`) so the
    /// entry holds every value under the plain name. `size` asks for chunks of that many.
    pub async fn complete_ranges(
        &mut self,
        e: &mut RawEntry,
        size: Option<u32>,
    ) -> Result<(), Failure> {
        let mut i = 0;
        while i < e.attrs.len() {
            let (base, range) = split_range(&e.attrs[i].name);
            let base = base.to_string();
            let Some(mut range) = range else {
                i += 1;
                continue;
            };
            let mut values = std::mem::take(&mut e.attrs[i].values);
            let mut guard = 0u32;
            while let Some(high) = range.high {
                guard += 1;
                if guard > 100_000 {
                    return Err(Failure::BadData(format!(
                        "{}: {base} ranges never end",
                        e.dn
                    )));
                }
                let low = high + 1;
                let want = match size {
                    Some(n) => format!("{base};range={low}-{}", low + n as u64 - 1),
                    None => format!("{base};range={low}-*"),
                };
                let next = self
                    .read(&e.dn, &[want], Vec::new())
                    .await?
                    .ok_or_else(|| {
                        Failure::BadData(format!("{} vanished while reading {base}", e.dn))
                    })?;
                let Some(part) = next
                    .attrs
                    .into_iter()
                    .find(|a| split_range(&a.name).0.eq_ignore_ascii_case(&base))
                else {
                    break; // no more values
                };
                let (_, r) = split_range(&part.name);
                values.extend(part.values);
                match r {
                    Some(r) if r.low == low => range = r,
                    Some(r) => {
                        return Err(Failure::BadData(format!(
                            "{}: asked for {base} from {low}, got a range from {}",
                            e.dn, r.low
                        )));
                    }
                    None => break,
                }
            }
            e.attrs[i].name = base;
            e.attrs[i].values = values;
            i += 1;
        }
        Ok(())
    }

    /// Adds an entry.
    pub async fn add(
        &mut self,
        dn: &str,
        attrs: Vec<(Vec<u8>, HashSet<Vec<u8>>)>,
    ) -> Result<(), Failure> {
        let res = self
            .ldap
            .with_timeout(self.timeout)
            .add(dn, attrs)
            .await
            .map_err(|e| self.guard.explain(failure(e)))?;
        check(res).map(|_| ())
    }

    /// Adds an entry and returns `read` of it as the server stored it, from the post-read
    /// control (RFC 4527) when the server answers with one: one round trip instead of an
    /// add and a read. None when it did not (AD, Samba), and the caller reads the entry.
    pub async fn add_reading(
        &mut self,
        dn: &str,
        attrs: Vec<(Vec<u8>, HashSet<Vec<u8>>)>,
        read: &[&str],
    ) -> Result<Option<RawEntry>, Failure> {
        let res = self
            .ldap
            .with_controls(vec![controls::post_read(read)])
            .with_timeout(self.timeout)
            .add(dn, attrs)
            .await
            .map_err(|e| self.guard.explain(failure(e)))?;
        let res = check(res)?;
        Ok(res
            .ctrls
            .iter()
            .find(|c| c.1.ctype == controls::POST_READ)
            .and_then(|c| c.1.val.as_deref())
            .and_then(controls::parse_post_read))
    }

    /// Modifies an entry.
    pub async fn modify(&mut self, dn: &str, mods: Vec<Mod<Vec<u8>>>) -> Result<(), Failure> {
        if mods.is_empty() {
            return Ok(());
        }
        let res = self
            .ldap
            .with_timeout(self.timeout)
            .modify(dn, mods)
            .await
            .map_err(|e| self.guard.explain(failure(e)))?;
        check(res).map(|_| ())
    }

    /// Deletes an entry.
    pub async fn delete(&mut self, dn: &str) -> Result<(), Failure> {
        let res = self
            .ldap
            .with_timeout(self.timeout)
            .delete(dn)
            .await
            .map_err(|e| self.guard.explain(failure(e)))?;
        check(res).map(|_| ())
    }

    /// Renames and/or moves an entry.
    pub async fn rename(
        &mut self,
        dn: &str,
        rdn: &str,
        new_parent: Option<&str>,
    ) -> Result<(), Failure> {
        let res = self
            .ldap
            .with_timeout(self.timeout)
            .modifydn(dn, rdn, true, new_parent)
            .await
            .map_err(|e| self.guard.explain(failure(e)))?;
        check(res).map(|_| ())
    }

    /// The connection itself, for a search that stays open (a watch): the per-operation
    /// time limit every other call sets would end it.
    pub fn ldap(&mut self) -> &mut ldap3::Ldap {
        &mut self.ldap
    }

    /// Whether the connection was cut under ldap3 (a failure then is not the server's answer,
    /// so it must not be taken as "this server lacks a feature").
    pub fn cut(&self) -> bool {
        self.guard.cause().is_some()
    }

    /// What tells why the connection was cut under ldap3 (for a watch's own errors).
    pub fn guard(&self) -> Guard {
        self.guard.clone()
    }

    /// Closes the connection politely.
    pub async fn close(mut self) {
        let _ = self.ldap.unbind().await;
    }
}
