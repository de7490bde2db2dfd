//! The connection under ldap3, opened by us: TCP, then TLS (`ldaps://`) or StartTLS, and
//! every message the server sends passes a length check before ldap3 sees it.
//!
//! ldap3 0.12 buffers each message whole before decoding it and has no size limit, so a
//! broken or hostile server could make it allocate without bound by announcing a huge
//! message and sending it slowly (the operation timeout only bounds the time). ldap3 takes an
//! already connected stream, so it gets one end of a local socket pair and a relay task here
//! carries the bytes: the server's side is read through [`Framer`], which knows where each
//! message starts and refuses one whose header announces more than [`MAX_MESSAGE`] before its
//! body is read. The relay copies in chunks and holds no message, so the only buffer that
//! grows is ldap3's own, and only up to the limit.

use std::io;
use std::sync::{Arc, OnceLock};

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::ber;
use super::session::{Failure, rc_name};
use crate::config::LdapConfig;
use crate::connector::tls;

/// The largest LDAP message accepted from a server: far above any real entry (AD caps a
/// value at a few MB and hands out long member lists in ranges), far below what hurts.
pub const MAX_MESSAGE: u64 = 64 << 20;

/// Where a refused connection's reason is kept, for the operation that fails because of it.
#[derive(Clone, Default)]
pub struct Guard(Arc<OnceLock<String>>);

impl Guard {
    /// Why the relay cut the connection, if it did.
    pub fn cause(&self) -> Option<&str> {
        self.0.get().map(String::as_str)
    }

    /// The failure to report for an ldap3 error: the relay's reason when it cut the
    /// connection (the error ldap3 sees then only says the connection closed).
    pub fn explain(&self, fallback: Failure) -> Failure {
        match self.cause() {
            Some(c) => Failure::BadData(c.to_string()),
            None => fallback,
        }
    }

    fn set(&self, cause: String) {
        let _ = self.0.set(cause);
    }
}

/// A byte stream to the server, plain or TLS.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Host, port and whether TLS starts at once (`ldaps://`), as the config checked them.
fn endpoint(url: &str) -> Result<(String, u16, bool), Failure> {
    crate::config::ldap_endpoint(url).map_err(|m| Failure::BadData(format!("{url}: {m}")))
}

/// Connects to the server as the config says and returns the local end for ldap3, with the
/// guard that tells why the relay cut the connection.
pub async fn open(cfg: &LdapConfig) -> Result<(std::os::unix::net::UnixStream, Guard), Failure> {
    let (host, port, implicit_tls) = endpoint(&cfg.url)?;
    let unreachable = |what: &str, e: &dyn std::fmt::Display| {
        Failure::Unreachable(format!("cannot connect to {}: {what}: {e}", cfg.url))
    };
    // The TLS settings first: a missing ca_file is the connector's problem to report,
    // whether or not the server is up.
    let tls_config = if implicit_tls || cfg.starttls {
        Some(tls::client_config(cfg.tls_verify, cfg.ca_file.as_deref()).map_err(Failure::BadData)?)
    } else {
        None
    };
    let connect = async {
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| unreachable("TCP", &e))?;
        let _ = tcp.set_nodelay(true);
        let io: Box<dyn Io> = match tls_config {
            Some(config) => {
                let mut tcp = tcp;
                if cfg.starttls {
                    starttls(&mut tcp, &cfg.url).await?;
                }
                let name = ServerName::try_from(host.clone())
                    .map_err(|e| Failure::BadData(format!("{}: host name: {e}", cfg.url)))?;
                let stream = tokio_rustls::TlsConnector::from(config)
                    .connect(name, tcp)
                    .await
                    .map_err(|e| unreachable("TLS", &e))?;
                Box::new(stream)
            }
            None => Box::new(tcp),
        };
        Ok::<_, Failure>(io)
    };
    let server = tokio::time::timeout(cfg.timeout, connect)
        .await
        .map_err(|_| unreachable("no answer", &format_args!("within {:?}", cfg.timeout)))??;
    let (ours, theirs) =
        std::os::unix::net::UnixStream::pair().map_err(|e| unreachable("socket pair", &e))?;
    ours.set_nonblocking(true)
        .map_err(|e| unreachable("socket pair", &e))?;
    let ours =
        tokio::net::UnixStream::from_std(ours).map_err(|e| unreachable("socket pair", &e))?;
    let guard = Guard::default();
    tokio::spawn(relay(server, ours, guard.clone(), cfg.url.clone()));
    Ok((theirs, guard))
}

/// The StartTLS extended operation (RFC 4511 §4.14), sent before ldap3 takes over: ldap3
/// never learns the connection was upgraded, and its first message id (1) is free again
/// because this one has completed.
async fn starttls(tcp: &mut TcpStream, url: &str) -> Result<(), Failure> {
    const OID: &[u8] = b"1.3.6.1.4.1.1466.20037";
    let request = ber::sequence(&[
        ber::int(ber::INTEGER, 1),
        ber::tlv(0x77, &ber::tlv(0x80, OID)),
    ]);
    let lost = |e: io::Error| Failure::Unreachable(format!("StartTLS with {url}: {e}"));
    tcp.write_all(&request).await.map_err(lost)?;
    // The response is small; anything larger is not a StartTLS response.
    let mut framer = Framer::new(64 << 10);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    let end = loop {
        let n = tcp.read(&mut chunk).await.map_err(lost)?;
        if n == 0 {
            return Err(Failure::Unreachable(format!(
                "StartTLS with {url}: the server closed the connection"
            )));
        }
        buf.extend_from_slice(&chunk[..n]);
        match framer.feed(&chunk[..n]) {
            Ok(Some(end)) => break end,
            Ok(None) => {}
            Err(e) => return Err(Failure::BadData(format!("StartTLS with {url}: {e}"))),
        }
    };
    let malformed = || Failure::BadData(format!("StartTLS with {url}: malformed response"));
    let mut msg = ber::Reader::new(&buf[..end]);
    let mut body = ber::Reader::new(msg.expect(ber::SEQUENCE).ok_or_else(malformed)?.body);
    body.expect(ber::INTEGER).ok_or_else(malformed)?;
    let mut res = ber::Reader::new(body.expect(0x78).ok_or_else(malformed)?.body);
    let rc = res
        .expect(ber::ENUMERATED)
        .and_then(|t| ber::int_value(t.body))
        .ok_or_else(malformed)?;
    res.expect(ber::OCTET_STRING).ok_or_else(malformed)?;
    let text = res
        .expect(ber::OCTET_STRING)
        .map(|t| String::from_utf8_lossy(t.body).into_owned())
        .unwrap_or_default();
    if rc != 0 {
        let rc = u32::try_from(rc).unwrap_or(u32::MAX);
        return Err(Failure::Unreachable(format!(
            "StartTLS refused by {url}: {} ({rc}): {text}",
            rc_name(rc)
        )));
    }
    if end != buf.len() {
        // RFC 4511: nothing may follow the response before the TLS handshake.
        return Err(malformed());
    }
    Ok(())
}

/// Carries bytes both ways until either side closes, cutting the connection (with the
/// reason in `guard`) when the server's stream is not a sequence of acceptable messages.
async fn relay(server: Box<dyn Io>, ours: tokio::net::UnixStream, guard: Guard, url: String) {
    let (mut from_server, mut to_server) = tokio::io::split(server);
    let (mut from_ldap3, mut to_ldap3) = ours.into_split();
    let down = async {
        let mut framer = Framer::new(MAX_MESSAGE);
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = match from_server.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if let Err(e) = framer.feed(&buf[..n]) {
                tracing::warn!(target: "ldap", "{url}: connection cut: {e}");
                guard.set(e);
                return;
            }
            if to_ldap3.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let up = async {
        let _ = tokio::io::copy(&mut from_ldap3, &mut to_server).await;
        let _ = to_server.shutdown().await;
    };
    // Either side ending ends both: the halves are dropped, which closes the sockets.
    tokio::select! {
        () = down => {}
        () = up => {}
    }
}

/// Follows the message boundaries of a BER stream of LDAP messages without holding them.
pub struct Framer {
    limit: u64,
    /// Header bytes of the message being started (tag and length octets).
    header: Vec<u8>,
    /// Bytes of the current message's body still to come.
    remaining: u64,
    /// The first bytes of the current message's body, kept to name an oversized entry.
    peek: Vec<u8>,
}

/// How many body bytes are kept to name an oversized message's entry.
const PEEK: usize = 1024;

impl Framer {
    /// A framer that refuses messages longer than `limit` bytes.
    pub fn new(limit: u64) -> Framer {
        Framer {
            limit,
            header: Vec::with_capacity(10),
            remaining: 0,
            peek: Vec::new(),
        }
    }

    /// Follows one chunk. Returns the offset just past the first message that ends in it,
    /// if one does (StartTLS reads exactly one), or why the stream is refused.
    pub fn feed(&mut self, mut chunk: &[u8]) -> Result<Option<usize>, String> {
        let total = chunk.len();
        let mut first_end = None;
        let mut pending_oversize = None;
        while !chunk.is_empty() || pending_oversize.is_some() {
            if let Some(len) = pending_oversize.take() {
                // Name the entry from what this chunk holds of the body, then refuse.
                let take = chunk.len().min(PEEK);
                self.peek.extend_from_slice(&chunk[..take]);
                let of = match entry_dn(&self.peek) {
                    Some(dn) => format!(" (the entry {dn:?})"),
                    None => String::new(),
                };
                return Err(format!(
                    "the server sent an LDAP message of {len} bytes{of}, over the limit of {} \
                     MiB; refused before reading it",
                    self.limit >> 20
                ));
            }
            if self.remaining > 0 {
                let take =
                    usize::try_from(self.remaining).map_or(chunk.len(), |r| r.min(chunk.len()));
                self.remaining -= take as u64;
                chunk = &chunk[take..];
                if self.remaining == 0 && first_end.is_none() {
                    first_end = Some(total - chunk.len());
                }
                continue;
            }
            self.header.push(chunk[0]);
            chunk = &chunk[1..];
            match header_length(&self.header)? {
                None => {}
                Some(len) => {
                    self.header.clear();
                    if len > self.limit {
                        self.peek.clear();
                        pending_oversize = Some(len);
                        continue;
                    }
                    self.remaining = len;
                    if len == 0 && first_end.is_none() {
                        first_end = Some(total - chunk.len());
                    }
                }
            }
        }
        Ok(first_end)
    }
}

/// The body length a message header announces, once the header is complete.
fn header_length(h: &[u8]) -> Result<Option<u64>, String> {
    if h[0] != ber::SEQUENCE {
        return Err(format!(
            "the server sent a byte that does not start an LDAP message (0x{:02x})",
            h[0]
        ));
    }
    let Some(&first) = h.get(1) else {
        return Ok(None);
    };
    if first < 0x80 {
        return Ok(Some(u64::from(first)));
    }
    let octets = usize::from(first & 0x7f);
    if octets == 0 || octets > 8 {
        // 0x80 is BER's indefinite length, which LDAP forbids (RFC 4511 §5.1).
        return Err(format!(
            "the server sent an LDAP message with an invalid length octet (0x{first:02x})"
        ));
    }
    if h.len() < 2 + octets {
        return Ok(None);
    }
    Ok(Some(
        h[2..2 + octets]
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)),
    ))
}

/// The DN of a search result entry from the first bytes of its message body (message id,
/// then `[APPLICATION 4]` with the DN first), when they hold it.
fn entry_dn(body: &[u8]) -> Option<String> {
    let mut r = ber::Reader::new(body);
    r.expect(ber::INTEGER)?;
    let rest = r.rest();
    // The entry's own TLV is incomplete (it is the oversized part): skip its header only.
    if *rest.first()? != 0x64 {
        return None;
    }
    let len_octet = *rest.get(1)?;
    let skip = if len_octet < 0x80 {
        2
    } else {
        2 + usize::from(len_octet & 0x7f)
    };
    let mut inner = ber::Reader::new(rest.get(skip..)?);
    let dn = inner.expect(ber::OCTET_STRING)?;
    Some(String::from_utf8_lossy(dn.body).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: &[u8]) -> Vec<u8> {
        ber::tlv(ber::SEQUENCE, body)
    }

    #[test]
    fn follows_messages_across_chunk_boundaries() {
        let mut stream = message(&[0x02, 0x01, 0x05]);
        stream.extend(message(&vec![0x04; 300]));
        stream.extend(message(&vec![0x04; 70_000]));
        for split in [1, 2, 3, 7, 300, 4096] {
            let mut f = Framer::new(MAX_MESSAGE);
            for c in stream.chunks(split) {
                assert!(f.feed(c).is_ok(), "chunks of {split}");
            }
            assert_eq!((f.remaining, f.header.len()), (0, 0), "chunks of {split}");
        }
    }

    #[test]
    fn reports_where_the_first_message_ends() {
        let mut stream = message(&[0x02, 0x01, 0x01]);
        let first = stream.len();
        stream.extend(message(&[0x02, 0x01, 0x02]));
        assert_eq!(Framer::new(100).feed(&stream), Ok(Some(first)));
        let mut f = Framer::new(100);
        assert_eq!(f.feed(&stream[..3]), Ok(None));
        assert_eq!(f.feed(&stream[3..]), Ok(Some(first - 3)));
    }

    #[test]
    fn refuses_an_oversized_message_from_its_header_and_names_the_entry() {
        // A search result entry announcing 1 GiB: message id 2, [APPLICATION 4], the DN.
        let dn = b"cn=huge,dc=example,dc=test";
        let mut head = vec![0x30, 0x84, 0x40, 0x00, 0x00, 0x00, 0x02, 0x01, 0x02];
        head.extend([0x64, 0x84, 0x3f, 0xff, 0xff, 0xf0]);
        head.extend(ber::tlv(ber::OCTET_STRING, dn));
        let Err(err) = Framer::new(MAX_MESSAGE).feed(&head) else {
            panic!("accepted")
        };
        assert!(err.contains("1073741824 bytes"), "{err}");
        assert!(err.contains("cn=huge,dc=example,dc=test"), "{err}");
        assert!(err.contains("64 MiB"), "{err}");
        // Split just after the header: still refused, without the name.
        let mut f = Framer::new(MAX_MESSAGE);
        let Err(err) = f.feed(&head[..6]) else {
            panic!("accepted")
        };
        assert!(err.contains("1073741824 bytes"), "{err}");
    }

    #[test]
    fn refuses_what_is_not_an_ldap_message() {
        let Err(err) = Framer::new(100).feed(b"HTTP/1.1 400") else {
            panic!("accepted")
        };
        assert!(err.contains("0x48"), "{err}");
        // Indefinite length and over-long length octets.
        assert!(Framer::new(100).feed(&[0x30, 0x80]).is_err());
        assert!(Framer::new(100).feed(&[0x30, 0x89]).is_err());
    }

    #[test]
    fn endpoints_with_default_and_explicit_ports() {
        assert_eq!(
            endpoint("ldaps://dc1.example.test").ok(),
            Some(("dc1.example.test".into(), 636, true))
        );
        assert_eq!(
            endpoint("ldap://127.0.0.2:3389/").ok(),
            Some(("127.0.0.2".into(), 3389, false))
        );
        assert_eq!(
            endpoint("ldaps://[::1]:6360").ok(),
            Some(("::1".into(), 6360, true))
        );
        assert_eq!(
            endpoint("ldap://[::1]").ok(),
            Some(("::1".into(), 389, false))
        );
        assert!(endpoint("http://x").is_err());
        assert!(endpoint("ldap://x:port").is_err());
    }
}
