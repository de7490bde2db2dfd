//! The few BER values our LDAP controls need (RFC 2696 paging, AD DirSync, RFC 4533
//! syncrepl), encoded and decoded here so that a malformed value from a server is an error
//! on the object, never a panic in a library parser.

/// One decoded TLV: its tag byte and its content octets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tlv<'a> {
    /// The identifier octet (class, constructed bit and tag number < 31).
    pub tag: u8,
    /// The content octets.
    pub body: &'a [u8],
}

/// Universal tags and context tags used below.
pub const BOOLEAN: u8 = 0x01;
/// INTEGER.
pub const INTEGER: u8 = 0x02;
/// OCTET STRING.
pub const OCTET_STRING: u8 = 0x04;
/// ENUMERATED.
pub const ENUMERATED: u8 = 0x0a;
/// SEQUENCE (constructed).
pub const SEQUENCE: u8 = 0x30;
/// SET (constructed).
pub const SET: u8 = 0x31;

/// Reads TLVs one after another from a buffer.
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { rest: buf }
    }

    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// What is left to read.
    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }

    /// The next TLV, without consuming it.
    pub fn peek(&self) -> Option<Tlv<'a>> {
        Reader { rest: self.rest }.next()
    }

    /// The next TLV; None at the end or on malformed input.
    #[allow(clippy::should_implement_trait)] // fallible reader, not an iterator contract
    pub fn next(&mut self) -> Option<Tlv<'a>> {
        let (&tag, rest) = self.rest.split_first()?;
        if tag & 0x1f == 0x1f {
            return None; // high tag numbers never occur in these controls
        }
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            first as usize
        } else {
            let n = (first & 0x7f) as usize;
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let mut len = 0usize;
            for &b in &rest[..n] {
                len = (len << 8) | b as usize;
            }
            rest = &rest[n..];
            len
        };
        if rest.len() < len {
            return None;
        }
        let (body, rest) = rest.split_at(len);
        self.rest = rest;
        Some(Tlv { tag, body })
    }

    /// The next TLV if it has this tag.
    pub fn expect(&mut self, tag: u8) -> Option<Tlv<'a>> {
        let t = self.peek()?;
        if t.tag != tag {
            return None;
        }
        self.next()
    }
}

/// The value of an INTEGER or ENUMERATED body (two's complement, at most 8 octets).
pub fn int_value(body: &[u8]) -> Option<i64> {
    if body.is_empty() || body.len() > 8 {
        return None;
    }
    let mut x: i64 = if body[0] & 0x80 != 0 { -1 } else { 0 };
    for &b in body {
        x = (x << 8) | b as i64;
    }
    Some(x)
}

fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = (len as u32).to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (4 - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
}

/// A TLV with this tag around `body`.
pub fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 6);
    out.push(tag);
    push_len(&mut out, body.len());
    out.extend_from_slice(body);
    out
}

/// An INTEGER (or ENUMERATED with that tag) in its shortest two's-complement form.
pub fn int(tag: u8, v: i64) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let mut start = 0;
    while start < 7 {
        let (b, next) = (bytes[start], bytes[start + 1]);
        if (b == 0 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    tlv(tag, &bytes[start..])
}

/// A SEQUENCE of already-encoded parts.
pub fn sequence(parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(SEQUENCE, &parts.concat())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn dirsync_request_encodes_as_checked_against_samba() {
        // PROTOCOLS.md §1.1: flags 0x80000001, MaxBytes 0x100000, empty cookie.
        let v = sequence(&[
            int(INTEGER, 0x8000_0001u32 as i32 as i64),
            int(INTEGER, 0x10_0000),
            tlv(OCTET_STRING, b""),
        ]);
        assert_eq!(
            v,
            [
                0x30, 0x0d, 0x02, 0x04, 0x80, 0, 0, 1, 0x02, 0x03, 0x10, 0, 0, 0x04, 0x00
            ]
        );
    }

    #[test]
    fn integers_round_trip() {
        for v in [
            0i64,
            1,
            127,
            128,
            255,
            256,
            -1,
            -128,
            -129,
            i32::MIN as i64,
            i64::MAX,
        ] {
            let enc = int(INTEGER, v);
            let t = Reader::new(&enc).next().unwrap();
            assert_eq!(int_value(t.body), Some(v), "{v}");
        }
    }

    #[test]
    fn long_lengths_and_truncation() {
        let body = vec![7u8; 300];
        let enc = tlv(OCTET_STRING, &body);
        assert_eq!(&enc[..4], &[0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(Reader::new(&enc).next().unwrap().body, &body[..]);
        assert!(Reader::new(&enc[..100]).next().is_none());
        assert!(Reader::new(&[0x04, 0x85, 1, 1, 1, 1, 1]).next().is_none());
        assert!(Reader::new(&[]).next().is_none());
    }
}
