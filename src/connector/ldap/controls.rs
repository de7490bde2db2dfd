//! LDAP controls by value: requests we send and fallible parsers for what servers answer.

use ldap3::controls::RawControl;

use super::ber::{self, ENUMERATED, INTEGER, OCTET_STRING, Reader, SEQUENCE, SET};

/// RFC 2696 simple paged results.
pub const PAGED: &str = "1.2.840.113556.1.4.319";
/// AD DirSync.
pub const DIRSYNC: &str = "1.2.840.113556.1.4.841";
/// AD extended DN: DN-syntax values (and entry DNs) as `<GUID=…>;<SID=…>;DN`.
pub const EXTENDED_DN: &str = "1.2.840.113556.1.4.529";
/// AD show deleted objects (tombstones).
pub const SHOW_DELETED: &str = "1.2.840.113556.1.4.417";
/// RFC 4533 sync request.
pub const SYNC_REQUEST: &str = "1.3.6.1.4.1.4203.1.9.1.1";
/// RFC 4533 sync state (on each entry).
pub const SYNC_STATE: &str = "1.3.6.1.4.1.4203.1.9.1.2";
/// RFC 4533 sync done (on the final result).
pub const SYNC_DONE: &str = "1.3.6.1.4.1.4203.1.9.1.3";
/// RFC 4533 sync info (intermediate response name).
pub const SYNC_INFO: &str = "1.3.6.1.4.1.4203.1.9.1.4";

/// RFC 4527 post-read: the entry as it is after the operation, in the response.
pub const POST_READ: &str = "1.3.6.1.1.13.2";

/// DirSync: return only changed values of linked attributes (member;range=1-1 / 0-0).
pub const DIRSYNC_INCREMENTAL_VALUES: u32 = 0x8000_0000;
/// DirSync: run with the caller's own read rights (no replication right needed).
pub const DIRSYNC_OBJECT_SECURITY: u32 = 0x0000_0001;

/// A paged-results request for `size` entries after `cookie`.
pub fn paged(size: u32, cookie: &[u8]) -> RawControl {
    RawControl {
        ctype: PAGED.into(),
        crit: false,
        val: Some(ber::sequence(&[
            ber::int(INTEGER, size as i64),
            ber::tlv(OCTET_STRING, cookie),
        ])),
    }
}

/// The cookie of a paged-results response; empty means the last page.
pub fn parse_paged(val: &[u8]) -> Option<Vec<u8>> {
    let seq = Reader::new(val).expect(SEQUENCE)?;
    let mut r = Reader::new(seq.body);
    r.expect(INTEGER)?;
    Some(r.expect(OCTET_STRING)?.body.to_vec())
}

/// A DirSync request; critical, as Samba requires.
pub fn dirsync(flags: u32, max_bytes: u32, cookie: &[u8]) -> RawControl {
    RawControl {
        ctype: DIRSYNC.into(),
        crit: true,
        val: Some(ber::sequence(&[
            // Sent as a 32-bit signed INTEGER: 0x80000000 is negative on the wire.
            ber::int(INTEGER, flags as i32 as i64),
            ber::int(INTEGER, max_bytes as i64),
            ber::tlv(OCTET_STRING, cookie),
        ])),
    }
}

/// A DirSync response.
#[derive(Debug, PartialEq, Eq)]
pub struct DirSyncResponse {
    /// Call again with the new cookie: there is more.
    pub more: bool,
    /// The cookie to store (opaque).
    pub cookie: Vec<u8>,
}

/// Parses a DirSync response value.
pub fn parse_dirsync(val: &[u8]) -> Option<DirSyncResponse> {
    let seq = Reader::new(val).expect(SEQUENCE)?;
    let mut r = Reader::new(seq.body);
    let more = ber::int_value(r.expect(INTEGER)?.body)?;
    r.expect(INTEGER)?;
    let cookie = r.expect(OCTET_STRING)?.body.to_vec();
    Some(DirSyncResponse {
        more: more != 0,
        cookie,
    })
}

/// Extended DNs with the GUID in its string form (flag 1), not critical: a server without
/// it answers plain DNs, which stay DN references.
pub fn extended_dn() -> RawControl {
    RawControl {
        ctype: EXTENDED_DN.into(),
        crit: false,
        val: Some(ber::sequence(&[ber::int(INTEGER, 1)])),
    }
}

/// Show deleted objects.
pub fn show_deleted() -> RawControl {
    RawControl {
        ctype: SHOW_DELETED.into(),
        crit: true,
        val: None,
    }
}

/// An RFC 4533 refreshOnly sync request from `cookie` (None: from the beginning).
pub fn sync_refresh_only(cookie: Option<&[u8]>) -> RawControl {
    let mut parts = vec![ber::int(ENUMERATED, 1)];
    if let Some(c) = cookie {
        parts.push(ber::tlv(OCTET_STRING, c));
    }
    RawControl {
        ctype: SYNC_REQUEST.into(),
        crit: true,
        val: Some(ber::sequence(&parts)),
    }
}

/// What a syncState control says about one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncStateKind {
    /// Unchanged (present phase): DN and UUID only.
    Present,
    /// Added.
    Add,
    /// Modified (slapd sends full entries as Add in a refresh).
    Modify,
    /// Deleted.
    Delete,
}

/// A parsed syncState control.
#[derive(Debug, PartialEq, Eq)]
pub struct SyncState {
    /// What happened.
    pub state: SyncStateKind,
    /// The entryUUID, 16 octets.
    pub uuid: Vec<u8>,
    /// A cookie, when the server sent one here.
    pub cookie: Option<Vec<u8>>,
}

/// Parses a syncState control value.
pub fn parse_sync_state(val: &[u8]) -> Option<SyncState> {
    let seq = Reader::new(val).expect(SEQUENCE)?;
    let mut r = Reader::new(seq.body);
    let state = match ber::int_value(r.expect(ENUMERATED)?.body)? {
        0 => SyncStateKind::Present,
        1 => SyncStateKind::Add,
        2 => SyncStateKind::Modify,
        3 => SyncStateKind::Delete,
        _ => return None,
    };
    let uuid = r.expect(OCTET_STRING)?.body.to_vec();
    let cookie = r.expect(OCTET_STRING).map(|t| t.body.to_vec());
    Some(SyncState {
        state,
        uuid,
        cookie,
    })
}

/// A parsed syncDone control.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SyncDone {
    /// The cookie to store.
    pub cookie: Option<Vec<u8>>,
    /// True: deletes were sent explicitly; false: the present phase ran, and every known
    /// entry not reported is gone.
    pub refresh_deletes: bool,
}

/// Parses a syncDone control value.
pub fn parse_sync_done(val: &[u8]) -> Option<SyncDone> {
    let seq = Reader::new(val).expect(SEQUENCE)?;
    let mut r = Reader::new(seq.body);
    let cookie = r.expect(OCTET_STRING).map(|t| t.body.to_vec());
    let refresh_deletes = r
        .expect(ber::BOOLEAN)
        .is_some_and(|t| t.body.first().is_some_and(|b| *b != 0));
    Some(SyncDone {
        cookie,
        refresh_deletes,
    })
}

/// A parsed syncInfo intermediate message.
#[derive(Debug, PartialEq, Eq)]
pub enum SyncInfo {
    /// A new cookie.
    NewCookie(Vec<u8>),
    /// End of a refresh phase (delete or present).
    RefreshDone {
        /// The cookie, if any.
        cookie: Option<Vec<u8>>,
        /// The present phase ended (unreported entries are deleted).
        present: bool,
    },
    /// A batch of UUIDs: deleted (`deletes`) or present.
    IdSet {
        /// The cookie, if any.
        cookie: Option<Vec<u8>>,
        /// True: these entries are deleted; false: they are present.
        deletes: bool,
        /// entryUUIDs, 16 octets each.
        uuids: Vec<Vec<u8>>,
    },
}

/// Parses a syncInfo value.
pub fn parse_sync_info(val: &[u8]) -> Option<SyncInfo> {
    let t = Reader::new(val).next()?;
    match t.tag {
        0x80 => Some(SyncInfo::NewCookie(t.body.to_vec())),
        0xa1 | 0xa2 => {
            let mut r = Reader::new(t.body);
            let cookie = r.expect(OCTET_STRING).map(|t| t.body.to_vec());
            Some(SyncInfo::RefreshDone {
                cookie,
                present: t.tag == 0xa2,
            })
        }
        0xa3 => {
            let mut r = Reader::new(t.body);
            let cookie = r.expect(OCTET_STRING).map(|t| t.body.to_vec());
            let deletes = r
                .expect(ber::BOOLEAN)
                .is_some_and(|t| t.body.first().is_some_and(|b| *b != 0));
            let set = r.expect(SET)?;
            let mut ids = Reader::new(set.body);
            let mut uuids = Vec::new();
            while !ids.is_empty() {
                uuids.push(ids.expect(OCTET_STRING)?.body.to_vec());
            }
            Some(SyncInfo::IdSet {
                cookie,
                deletes,
                uuids,
            })
        }
        _ => None,
    }
}

/// A post-read request for `attrs`; not critical, so a server without it simply answers
/// without the entry (and the caller reads it back).
pub fn post_read(attrs: &[&str]) -> RawControl {
    let names: Vec<Vec<u8>> = attrs
        .iter()
        .map(|a| ber::tlv(OCTET_STRING, a.as_bytes()))
        .collect();
    RawControl {
        ctype: POST_READ.into(),
        crit: false,
        val: Some(ber::sequence(&names)),
    }
}

/// The entry of a post-read response: `[APPLICATION 4] { dn, SEQUENCE OF { type, SET OF
/// value } }`, the shape of a search result entry.
pub fn parse_post_read(val: &[u8]) -> Option<super::entry::RawEntry> {
    let entry = Reader::new(val).expect(0x64)?;
    let mut r = Reader::new(entry.body);
    let dn = String::from_utf8(r.expect(OCTET_STRING)?.body.to_vec()).ok()?;
    let mut attrs = Vec::new();
    let mut list = Reader::new(r.expect(SEQUENCE)?.body);
    while !list.is_empty() {
        let mut a = Reader::new(list.expect(SEQUENCE)?.body);
        let name = String::from_utf8(a.expect(OCTET_STRING)?.body.to_vec()).ok()?;
        let mut vals = Reader::new(a.expect(SET)?.body);
        let mut values = Vec::new();
        while !vals.is_empty() {
            values.push(vals.expect(OCTET_STRING)?.body.to_vec());
        }
        attrs.push(super::entry::RawAttr { name, values });
    }
    Some(super::entry::RawEntry { dn, attrs })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn paged_round_trip() {
        let c = paged(500, b"17");
        let cookie = parse_paged(c.val.as_deref().unwrap()).unwrap();
        assert_eq!(cookie, b"17");
    }

    #[test]
    fn dirsync_response_parses_and_rejects_garbage() {
        let v = ber::sequence(&[
            ber::int(INTEGER, 1),
            ber::int(INTEGER, 0),
            ber::tlv(OCTET_STRING, b"MSDS\x01"),
        ]);
        assert_eq!(
            parse_dirsync(&v),
            Some(DirSyncResponse {
                more: true,
                cookie: b"MSDS\x01".to_vec()
            })
        );
        assert_eq!(parse_dirsync(&v[..v.len() - 1]), None);
        assert_eq!(parse_dirsync(b"\x04\x00"), None);
    }

    #[test]
    fn sync_state_and_info() {
        let uuid = [7u8; 16];
        let v = ber::sequence(&[
            ber::int(ENUMERATED, 3),
            ber::tlv(OCTET_STRING, &uuid),
            ber::tlv(OCTET_STRING, b"rid=000,csn=1"),
        ]);
        let s = parse_sync_state(&v).unwrap();
        assert_eq!(s.state, SyncStateKind::Delete);
        assert_eq!(s.uuid, uuid);
        assert_eq!(s.cookie.as_deref(), Some(&b"rid=000,csn=1"[..]));

        // syncIdSet [3] { cookie, refreshDeletes TRUE, SET { uuid, uuid } }
        let set = ber::tlv(
            SET,
            &[
                ber::tlv(OCTET_STRING, &uuid),
                ber::tlv(OCTET_STRING, &[9u8; 16]),
            ]
            .concat(),
        );
        let body = [
            ber::tlv(OCTET_STRING, b"c"),
            ber::tlv(ber::BOOLEAN, &[0xff]),
            set,
        ]
        .concat();
        let info = parse_sync_info(&ber::tlv(0xa3, &body)).unwrap();
        assert_eq!(
            info,
            SyncInfo::IdSet {
                cookie: Some(b"c".to_vec()),
                deletes: true,
                uuids: vec![uuid.to_vec(), vec![9u8; 16]]
            }
        );
        assert_eq!(
            parse_sync_info(&ber::tlv(0x80, b"k")),
            Some(SyncInfo::NewCookie(b"k".to_vec()))
        );
        assert_eq!(
            parse_sync_info(&ber::tlv(0xa2, &[])),
            Some(SyncInfo::RefreshDone {
                cookie: None,
                present: true
            })
        );
        assert_eq!(parse_sync_info(b"\x05\x00"), None);
    }

    #[test]
    fn sync_done_defaults() {
        let v = ber::sequence(&[ber::tlv(OCTET_STRING, b"x")]);
        assert_eq!(
            parse_sync_done(&v),
            Some(SyncDone {
                cookie: Some(b"x".to_vec()),
                refresh_deletes: false
            })
        );
    }

    #[test]
    fn post_read_request_and_response() {
        let c = post_read(&["entryUUID"]);
        assert_eq!((c.ctype.as_str(), c.crit), (POST_READ, false));
        assert_eq!(
            c.val.as_deref(),
            Some(
                &[
                    0x30, 0x0b, 0x04, 0x09, b'e', b'n', b't', b'r', b'y', b'U', b'U', b'I', b'D'
                ][..]
            )
        );
        let attr = ber::sequence(&[
            ber::tlv(OCTET_STRING, b"entryUUID"),
            ber::tlv(SET, &ber::tlv(OCTET_STRING, b"5f1c")),
        ]);
        let body = [
            ber::tlv(OCTET_STRING, b"uid=a,dc=x"),
            ber::sequence(&[attr]),
        ]
        .concat();
        let e = parse_post_read(&ber::tlv(0x64, &body)).unwrap_or_else(|| panic!("not parsed"));
        assert_eq!(e.dn, "uid=a,dc=x");
        assert_eq!(e.values("entryUUID"), [b"5f1c".to_vec()]);
        // Truncated or of another shape: None, never a panic.
        assert!(parse_post_read(&ber::tlv(0x64, &body)[..10]).is_none());
        assert!(parse_post_read(&ber::tlv(0x30, &body)).is_none());
    }
}
