//! AD: the change-notification control, or a DirSync poll where it is refused.
//!
//! What Samba's implementation allows (source4/dsdb/samdb/ldb_modules/dsdb_notification.c
//! and source4/ldap_server/ldap_backend.c): the filter must be `(objectClass=*)` or another
//! presence test on objectClass, objectGUID, distinguishedName or name (anything else is
//! `unwillingToPerform`, "Search filter too complex"); any scope; at most five
//! notification searches per connection (`MaxNotificationPerConn`, then
//! `adminLimitExceeded`). Samba re-runs each pending notification search as a
//! `uSNChanged >` search right after any LDAP write it serves, else every 5 s, and sends the
//! objects changed since; the search itself never ends. Windows AD documents the same
//! filter rule and a default of five per connection.
//!
//! Samba's "right after any write" covers only writes served by the same worker process,
//! and a search does not count: with the prefork process model a change made through
//! another connection usually waits for the 5 s re-run (measured: 4.6 s). So beside the
//! notifications the watch reads the rootDSE's `highestCommittedUSN` every
//! [`PROBE`]; when it moved, one indexed `uSNChanged>=` search over the watched subtrees
//! (and the Deleted Objects container, for deletes, which notifications never report)
//! says whether the change is in scope. The read also finds a half-open connection. A
//! notification for a USN the probe already reported is not reported again.

use std::time::Duration;

use ldap3::Scope as LdapScope;
use ldap3::controls::RawControl;
use tokio::sync::mpsc;

use super::{End, LdapWatcher, SETTLE, TICK, Watch, ldap_failure};
use crate::connector::WatchEvent;
use crate::connector::ldap::controls;
use crate::connector::ldap::entry::{RawEntry, decode_entry};
use crate::connector::ldap::scope::Scope;
use crate::connector::ldap::session::{Failure, Item, Search, Session};

/// LDAP_SERVER_NOTIFICATION_OID.
pub const NOTIFICATION: &str = "1.2.840.113556.1.4.528";

/// How often the watch reads `highestCommittedUSN` while notifications are open.
const PROBE: Duration = Duration::from_millis(500);

/// A probe that takes longer than this means the connection is unusable (and must not
/// hold up a shutdown for the whole operation timeout).
const PROBE_LIMIT: Duration = Duration::from_secs(10);

/// The most notification searches AD and Samba accept on one connection.
const MAX_SEARCHES: usize = 5;

/// How often the fallback polls DirSync. Samba's DirSync costs ~0.3 s whatever the change
/// count, so this keeps a poll to about a tenth of one core.
pub const POLL: Duration = Duration::from_secs(3);

/// The change-notification request control: critical, no value.
fn notification() -> RawControl {
    RawControl {
        ctype: NOTIFICATION.into(),
        crit: true,
        val: None,
    }
}

/// What a notification search reports to the watch loop.
enum Msg {
    /// An object changed; its uSNChanged when the server sent it.
    Changed(Option<u64>),
    Ended(Failure),
}

/// The first value of `attr` as a number.
fn number(e: &RawEntry, attr: &str) -> Option<u64> {
    e.text(attr).and_then(|t| t.trim().parse().ok())
}

/// The USN probe: the DC's highest committed USN as last read, and where to look when it
/// moves.
struct Probe {
    last: Option<u64>,
    bases: Vec<String>,
    deleted: String,
    /// The Deleted Objects container can be read (admins only by default).
    deletes_visible: bool,
}

impl Probe {
    /// Whether an in-scope object changed since the last probe.
    async fn changed(&mut self, s: &mut Session, name: &str) -> Result<Option<u64>, Failure> {
        let root = s
            .read("", &["highestCommittedUSN".to_string()], Vec::new())
            .await?
            .ok_or_else(|| Failure::BadData("no rootDSE".into()))?;
        let usn = number(&root, "highestCommittedUSN")
            .ok_or_else(|| Failure::BadData("rootDSE without highestCommittedUSN".into()))?;
        let Some(last) = self.last.replace(usn) else {
            return Ok(None);
        };
        if usn <= last {
            return Ok(None);
        }
        let filter = format!("(uSNChanged>={})", last + 1);
        for base in &self.bases {
            if count(s, base, &filter, Vec::new()).await? > 0 {
                return Ok(Some(usn));
            }
        }
        if self.deletes_visible {
            match count(s, &self.deleted, &filter, vec![controls::show_deleted()]).await {
                Ok(0) => {}
                Ok(_) => return Ok(Some(usn)),
                Err(Failure::Refused { rc, text }) => {
                    tracing::info!(
                        connector = name,
                        "deletes are not seen by the watch ({rc}: {text}); the next scheduled \
                         cycle carries them"
                    );
                    self.deletes_visible = false;
                }
                Err(f) => return Err(f),
            }
        }
        Ok(None)
    }
}

/// How many entries a subtree search finds (only DNs travel).
async fn count(
    s: &mut Session,
    base: &str,
    filter: &str,
    ctrls: Vec<RawControl>,
) -> Result<u64, Failure> {
    let search = Search {
        base: base.to_string(),
        subtree: true,
        filter: filter.to_string(),
        attrs: vec!["1.1".into()],
        controls: Vec::new(),
    };
    let mut n = 0;
    s.stream(&search, ctrls, &mut |item| {
        if matches!(item, Item::Entry(..)) {
            n += 1;
        }
        Ok(())
    })
    .await?;
    Ok(n)
}

/// The subtrees watched: the included OUs when the server takes one search for each, else
/// the whole naming context (a change outside the scope then costs one empty delta).
fn bases(w: &LdapWatcher) -> Vec<String> {
    let bases = Scope::new(&w.cfg).bases();
    if bases.len() <= MAX_SEARCHES {
        bases.iter().map(|b| b.as_str().to_string()).collect()
    } else {
        vec![w.cfg.base_dn.as_str().to_string()]
    }
}

/// Holds notification searches open until one ends or the daemon stops.
pub(super) async fn notify(w: &LdapWatcher, s: &mut Session, watch: &mut Watch<'_>) -> End {
    let (tx, mut rx) = mpsc::unbounded_channel::<Msg>();
    let mut tasks = Vec::new();
    for base in bases(w) {
        let mut ldap = s.ldap().clone();
        let guard = s.guard();
        let tx = tx.clone();
        tasks.push(tokio::spawn(async move {
            // No time limit: the search is meant to stay open.
            let started = ldap
                .with_controls(vec![notification()])
                .streaming_search(
                    &base,
                    LdapScope::Subtree,
                    "(objectClass=*)",
                    vec!["uSNChanged"],
                )
                .await;
            let mut stream = match started {
                Ok(st) => st,
                Err(e) => {
                    let _ = tx.send(Msg::Ended(ldap_failure(&guard, e)));
                    return;
                }
            };
            loop {
                match stream.next().await {
                    Ok(Some(re)) if !re.is_ref() => {
                        let usn = decode_entry(re.0).and_then(|e| number(&e, "uSNChanged"));
                        if tx.send(Msg::Changed(usn)).is_err() {
                            return;
                        }
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        let res = stream.finish().await;
                        let f = if res.rc == 0 {
                            Failure::Unreachable("the server ended the notification search".into())
                        } else {
                            Failure::Refused {
                                rc: res.rc,
                                text: res.text,
                            }
                        };
                        let _ = tx.send(Msg::Ended(f));
                        return;
                    }
                    Err(e) => {
                        let _ = tx.send(Msg::Ended(ldap_failure(&guard, e)));
                        return;
                    }
                }
            }
        }));
    }
    drop(tx);
    let started = tokio::time::Instant::now();
    let mut announced = false;
    let mut probe = Probe {
        last: None,
        bases: bases(w),
        deleted: format!("CN=Deleted Objects,{}", w.cfg.base_dn),
        deletes_visible: true,
    };
    // The highest USN already reported: a notification at or below it is old news.
    let mut reported = 0u64;
    let mut ticker = tokio::time::interval(PROBE);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let end = loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(Msg::Changed(Some(usn))) if usn <= reported => {}
                Some(Msg::Changed(usn)) => {
                    reported = reported.max(usn.unwrap_or(0));
                    watch.sink.report(WatchEvent::Changed);
                }
                Some(Msg::Ended(f @ Failure::Refused { .. })) if !announced => {
                    break End::Refused(f.to_string());
                }
                Some(Msg::Ended(f)) => break End::Lost(f.to_string()),
                None => break End::Lost("the notification searches ended".into()),
            },
            _ = tokio::time::sleep(TICK) => {
                if watch.sink.stopping() {
                    break End::Stopping;
                }
                if !announced && started.elapsed() >= SETTLE {
                    announced = true;
                    watch.established("change notification");
                }
            }
            _ = ticker.tick() => {
                match tokio::time::timeout(PROBE_LIMIT, probe.changed(s, w.name())).await {
                    Ok(Ok(Some(usn))) => {
                        reported = reported.max(usn);
                        watch.sink.report(WatchEvent::Changed);
                    }
                    Ok(Ok(None)) => {}
                    Ok(Err(f)) => break End::Lost(format!("USN probe: {f}")),
                    Err(_) => break End::Lost(format!("USN probe: no answer in {PROBE_LIMIT:?}")),
                }
            }
        }
    };
    for t in tasks {
        t.abort();
    }
    end
}

/// One DirSync call: how many entries came, and the server's answer.
async fn dirsync_once(
    s: &mut Session,
    search: &Search,
    flags: u32,
    cookie: &[u8],
) -> Result<(u64, controls::DirSyncResponse), Failure> {
    let mut n = 0u64;
    let done = s
        .stream(
            search,
            vec![controls::dirsync(flags, 0, cookie)],
            &mut |item| {
                if matches!(item, Item::Entry(..)) {
                    n += 1;
                }
                Ok(())
            },
        )
        .await?;
    let resp = done
        .controls
        .iter()
        .find(|c| c.ctype == controls::DIRSYNC)
        .and_then(|c| c.val.as_deref())
        .and_then(controls::parse_dirsync)
        .ok_or_else(|| Failure::BadData("DirSync answer without a valid DirSync control".into()))?;
    Ok((n, resp))
}

/// DirSync from `cookie` until the server has no more; the number of changed objects.
async fn dirsync_all(
    s: &mut Session,
    search: &Search,
    flags: u32,
    cookie: &mut Vec<u8>,
) -> Result<u64, Failure> {
    let mut total = 0;
    loop {
        let (n, resp) = dirsync_once(s, search, flags, cookie).await?;
        total += n;
        *cookie = resp.cookie;
        if !resp.more {
            return Ok(total);
        }
    }
}

/// Polls DirSync every [`POLL`] with a cookie of its own (never the import's watermark).
pub(super) async fn poll(w: &LdapWatcher, s: &mut Session, watch: &mut Watch<'_>) -> End {
    let base = w.cfg.base_dn.as_str().to_string();
    // A filter nothing matches takes the position without reading the directory.
    let mut search = Search {
        base,
        subtree: true,
        filter: "(&(objectClass=user)(!(objectClass=user)))".into(),
        attrs: vec!["objectGUID".into()],
        controls: Vec::new(),
    };
    let mut cookie = Vec::new();
    let mut flags = controls::DIRSYNC_INCREMENTAL_VALUES;
    if let Err(f) = dirsync_all(s, &search, flags, &mut cookie).await {
        match f {
            // Without replication rights: the caller's own read rights will do.
            Failure::Refused { rc: 50, .. } => {
                flags |= controls::DIRSYNC_OBJECT_SECURITY;
                cookie.clear();
                if let Err(f) = dirsync_all(s, &search, flags, &mut cookie).await {
                    return End::Lost(f.to_string());
                }
            }
            f => return End::Lost(f.to_string()),
        }
    }
    search.filter = "(objectClass=*)".into();
    watch.established(&format!("DirSync poll every {} s", POLL.as_secs()));
    loop {
        if !watch.pause(POLL).await {
            return End::Stopping;
        }
        match dirsync_all(s, &search, flags, &mut cookie).await {
            Ok(0) => {}
            Ok(n) => {
                tracing::debug!(
                    connector = w.name(),
                    changed = n,
                    "DirSync poll saw changes"
                );
                watch.sink.report(WatchEvent::Changed);
            }
            Err(f) => return End::Lost(f.to_string()),
        }
    }
}
