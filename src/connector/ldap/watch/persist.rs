//! LDAP: RFC 4533 syncrepl refreshAndPersist (mode 3) from a cookie of its own.
//!
//! The first cookie comes from a refreshOnly search whose filter matches nothing, so that
//! starting a watch does not stream the whole directory; after a reconnect the last cookie
//! seen replays what changed meanwhile. Only DNs and UUIDs travel (`1.1`): the runner's
//! delta import reads the changed entries.

use ldap3::Scope as LdapScope;
use ldap3::controls::RawControl;

use super::{End, LdapWatcher, SETTLE, TICK, Watch, ldap_failure};
use crate::connector::WatchEvent;
use crate::connector::ldap::ber::{self, ENUMERATED, OCTET_STRING};
use crate::connector::ldap::controls::{self, SyncInfo, SyncStateKind};
use crate::connector::ldap::entry::decode_intermediate;
use crate::connector::ldap::scope::Scope;
use crate::connector::ldap::session::{Failure, Item, Search, Session};

/// A refreshAndPersist sync request from `cookie`.
fn refresh_and_persist(cookie: &[u8]) -> RawControl {
    RawControl {
        ctype: controls::SYNC_REQUEST.into(),
        crit: true,
        val: Some(ber::sequence(&[
            ber::int(ENUMERATED, 3),
            ber::tlv(OCTET_STRING, cookie),
        ])),
    }
}

/// A cookie for "now", without reading any entry.
async fn position(w: &LdapWatcher, s: &mut Session) -> Result<Vec<u8>, Failure> {
    let search = Search {
        base: w.cfg.base_dn.as_str().to_string(),
        subtree: true,
        filter: "(!(objectClass=*))".into(),
        attrs: vec!["1.1".into()],
        controls: Vec::new(),
    };
    let mut last = None;
    let done = s
        .stream(
            &search,
            vec![controls::sync_refresh_only(None)],
            &mut |item| {
                if let Item::Intermediate(name, v) = item {
                    if name == controls::SYNC_INFO {
                        if let Some(SyncInfo::NewCookie(c)) = controls::parse_sync_info(&v) {
                            last = Some(c);
                        }
                    }
                }
                Ok(())
            },
        )
        .await?;
    done.controls
        .iter()
        .find(|c| c.ctype == controls::SYNC_DONE)
        .and_then(|c| c.val.as_deref())
        .and_then(controls::parse_sync_done)
        .and_then(|d| d.cookie)
        .or(last)
        .ok_or_else(|| Failure::BadData("syncrepl answer without a cookie".into()))
}

/// What one message of the persist search means for the watch.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    /// Something changed since the cookie.
    changed: bool,
    /// The refresh phase is over: from here on, changes arrive as they happen.
    refreshed: bool,
    /// A newer cookie.
    cookie: Option<Vec<u8>>,
}

/// Reads one syncrepl message: an entry's syncState control value, or a syncInfo value.
fn read_entry_state(state: Option<&[u8]>) -> Result<Seen, Failure> {
    let st = state
        .and_then(controls::parse_sync_state)
        .ok_or_else(|| Failure::BadData("a syncrepl entry without a valid syncState".into()))?;
    Ok(Seen {
        // A present entry is unchanged (refresh phase without a session log).
        changed: st.state != SyncStateKind::Present,
        refreshed: false,
        cookie: st.cookie,
    })
}

fn read_info(value: &[u8]) -> Result<Seen, Failure> {
    let seen = match controls::parse_sync_info(value) {
        Some(SyncInfo::NewCookie(c)) => Seen {
            changed: false,
            refreshed: false,
            cookie: Some(c),
        },
        Some(SyncInfo::RefreshDone { cookie, .. }) => Seen {
            changed: false,
            refreshed: true,
            cookie,
        },
        Some(SyncInfo::IdSet {
            cookie, deletes, ..
        }) => Seen {
            changed: deletes,
            refreshed: false,
            cookie,
        },
        None => return Err(Failure::BadData("malformed syncInfo message".into())),
    };
    Ok(seen)
}

/// Holds a refreshAndPersist search open until it ends or the daemon stops.
pub(super) async fn persist(
    w: &LdapWatcher,
    s: &mut Session,
    watch: &mut Watch<'_>,
    cookie: &mut Option<Vec<u8>>,
) -> End {
    let from = match cookie.clone() {
        Some(c) => c,
        None => match position(w, s).await {
            Ok(c) => {
                *cookie = Some(c.clone());
                c
            }
            Err(f) => return End::Lost(format!("syncrepl: {f}")),
        },
    };
    // One included subtree is watched alone; several, through their common base.
    let base = match Scope::new(&w.cfg).bases().as_slice() {
        [one] => one.as_str().to_string(),
        _ => w.cfg.base_dn.as_str().to_string(),
    };
    let guard = s.guard();
    // No time limit: the search is meant to stay open.
    let started = s
        .ldap()
        .with_controls(vec![refresh_and_persist(&from)])
        .streaming_search(&base, LdapScope::Subtree, "(objectClass=*)", vec!["1.1"])
        .await;
    let mut stream = match started {
        Ok(st) => st,
        Err(e) => return End::Lost(format!("syncrepl: {}", ldap_failure(&guard, e))),
    };
    let opened = tokio::time::Instant::now();
    let mut announced = false;
    loop {
        tokio::select! {
            next = stream.next() => {
                let seen = match next {
                    Ok(Some(re)) if re.is_intermediate() => match decode_intermediate(re.0) {
                        Some((name, v)) if name == controls::SYNC_INFO => read_info(&v),
                        _ => continue,
                    },
                    Ok(Some(re)) if re.is_ref() => continue,
                    Ok(Some(re)) => read_entry_state(
                        re.1.iter()
                            .find(|c| c.1.ctype == controls::SYNC_STATE)
                            .and_then(|c| c.1.val.as_deref()),
                    ),
                    Ok(None) => {
                        let res = stream.finish().await;
                        return match res.rc {
                            // The cookie is too old for the server: start from now; the
                            // resumed watch makes the runner run a delta import.
                            4096 => {
                                *cookie = None;
                                End::Lost("syncrepl: e-syncRefreshRequired".into())
                            }
                            0 => End::Lost("the server ended the syncrepl search".into()),
                            rc => End::Refused(format!(
                                "syncrepl: {}",
                                Failure::Refused { rc, text: res.text }
                            )),
                        };
                    }
                    Err(e) => return End::Lost(format!("syncrepl: {}", ldap_failure(&guard, e))),
                };
                let seen = match seen {
                    Ok(seen) => seen,
                    Err(f) => return End::Lost(f.to_string()),
                };
                if let Some(c) = seen.cookie {
                    *cookie = Some(c);
                }
                if seen.refreshed && !announced {
                    announced = true;
                    watch.established("syncrepl refreshAndPersist");
                }
                if seen.changed {
                    watch.sink.report(WatchEvent::Changed);
                }
            }
            _ = tokio::time::sleep(TICK) => {
                if watch.sink.stopping() {
                    return End::Stopping;
                }
                if !announced && opened.elapsed() >= SETTLE {
                    announced = true;
                    watch.established("syncrepl refreshAndPersist");
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::connector::ldap::ber::Reader;
    use crate::connector::ldap::ber::SEQUENCE;

    #[test]
    fn the_request_asks_for_mode_3_with_the_cookie() {
        let c = refresh_and_persist(b"rid=000,csn=1");
        assert!(c.crit);
        let v = c.val.unwrap();
        let seq = Reader::new(&v).expect(SEQUENCE).unwrap();
        let mut r = Reader::new(seq.body);
        assert_eq!(ber::int_value(r.expect(ENUMERATED).unwrap().body), Some(3));
        assert_eq!(r.expect(OCTET_STRING).unwrap().body, b"rid=000,csn=1");
    }

    #[test]
    fn entries_and_infos_are_read_as_changes_or_not() {
        let state = |kind: i64| {
            ber::sequence(&[
                ber::int(ENUMERATED, kind),
                ber::tlv(OCTET_STRING, &[1u8; 16]),
                ber::tlv(OCTET_STRING, b"k"),
            ])
        };
        // present (0) is no change; add, modify, delete are.
        assert!(!read_entry_state(Some(&state(0))).unwrap().changed);
        for kind in 1..=3 {
            let seen = read_entry_state(Some(&state(kind))).unwrap();
            assert!(seen.changed);
            assert_eq!(seen.cookie.as_deref(), Some(&b"k"[..]));
        }
        assert!(read_entry_state(None).is_err());
        let done = read_info(&ber::tlv(0xa2, &ber::tlv(OCTET_STRING, b"c"))).unwrap();
        assert_eq!(
            done,
            Seen {
                changed: false,
                refreshed: true,
                cookie: Some(b"c".to_vec())
            }
        );
        let deleted = ber::tlv(
            0xa3,
            &[
                ber::tlv(ber::BOOLEAN, &[0xff]),
                ber::tlv(ber::SET, &ber::tlv(OCTET_STRING, &[2u8; 16])),
            ]
            .concat(),
        );
        assert!(read_info(&deleted).unwrap().changed);
        assert!(read_info(b"\x05\x00").is_err());
    }
}
