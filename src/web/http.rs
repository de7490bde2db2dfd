//! Requests and responses as the page code sees them: plain owned values, so that the pages
//! are tested without sockets or TLS. Parsing of cookies, query strings and forms, and the
//! security headers every response carries.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// The request methods the status page answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Get,
    /// HEAD (answered like GET, without a body).
    Head,
    /// POST.
    Post,
    /// Anything else (refused).
    Other,
}

/// One request.
#[derive(Clone, Debug)]
pub struct Req {
    /// The method.
    pub method: Method,
    /// The path, percent-encoded as sent.
    pub path: String,
    /// The query string without `?`.
    pub query: String,
    /// Headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body (bounded by the server).
    pub body: Vec<u8>,
    /// The client's address.
    pub peer: IpAddr,
    /// Set by the server when the client has gone, so that long work stops early.
    pub gone: Gone,
}

/// A flag the server raises when the client of a request has gone away.
#[derive(Clone, Debug, Default)]
pub struct Gone(Arc<AtomicBool>);

impl Gone {
    /// Raises the flag.
    pub fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether the client has gone.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// `%XX` and `+` decoding of a query or form component; invalid escapes stay as they are.
pub fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()));
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `a=1&b=2` as a map (the last of repeated keys wins).
pub fn parse_pairs(s: &str) -> HashMap<String, String> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (url_decode(k), url_decode(v)),
            None => (url_decode(p), String::new()),
        })
        .collect()
}

/// Percent-encodes a query component.
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Req {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A cookie's value.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n == "cookie")
            .flat_map(|(_, v)| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_string())
    }

    /// The query parameters.
    pub fn query_params(&self) -> HashMap<String, String> {
        parse_pairs(&self.query)
    }

    /// The form fields of a urlencoded body.
    pub fn form(&self) -> HashMap<String, String> {
        parse_pairs(&String::from_utf8_lossy(&self.body))
    }
}

/// One response.
#[derive(Clone, Debug)]
pub struct Resp {
    /// Status code.
    pub status: u16,
    /// Headers besides the security headers.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// How long the server holds the answer back (a throttled login under attack).
    pub hold_ms: u64,
}

impl Resp {
    /// A response with a body of some type.
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Resp {
        Resp {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.into(),
            hold_ms: 0,
        }
    }

    /// An HTML page.
    pub fn html(status: u16, body: String) -> Resp {
        Resp::new(status, "text/html; charset=utf-8", body)
    }

    /// A JSON value.
    pub fn json(status: u16, value: &impl serde::Serialize) -> Resp {
        match serde_json::to_vec_pretty(value) {
            Ok(b) => Resp::new(status, "application/json", b),
            Err(e) => Resp::text(500, &format!("cannot encode JSON: {e}")),
        }
    }

    /// Plain text.
    pub fn text(status: u16, body: &str) -> Resp {
        Resp::new(status, "text/plain; charset=utf-8", body)
    }

    /// A redirect after a POST (303: the browser follows with GET).
    pub fn see_other(location: &str) -> Resp {
        let mut r = Resp::new(303, "text/plain; charset=utf-8", "");
        r.headers.push(("location".into(), location.into()));
        r
    }

    /// Adds a header.
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Resp {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Holds the answer back for `ms`.
    pub fn held(mut self, ms: u64) -> Resp {
        self.hold_ms = ms;
        self
    }

    /// A header's value (tests).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Adds the headers every response carries; `cacheable` only for the stylesheet.
    pub fn secured(mut self, cacheable: bool) -> Resp {
        let csp = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";
        for (n, v) in [
            ("content-security-policy", csp),
            ("x-frame-options", "DENY"),
            ("x-content-type-options", "nosniff"),
            // Not no-referrer: browsers then send `Origin: null` on our own form posts.
            ("referrer-policy", "same-origin"),
            ("cross-origin-opener-policy", "same-origin"),
            ("strict-transport-security", "max-age=31536000"),
            (
                "cache-control",
                if cacheable {
                    "private, max-age=3600"
                } else {
                    "no-store"
                },
            ),
        ] {
            self.headers.push((n.into(), v.into()));
        }
        self
    }
}

/// A `Set-Cookie` value for a host-only, HTTPS-only cookie that scripts cannot read.
pub fn cookie(name: &str, value: &str, max_age_s: i64) -> String {
    format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={max_age_s}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_handles_escapes_plus_and_garbage() {
        assert_eq!(url_decode("J%C3%BCrgen+M%C3%BCller"), "Jürgen Müller");
        assert_eq!(url_decode("100%"), "100%");
        assert_eq!(url_decode("%zz%4"), "%zz%4");
        let m = parse_pairs("q=a%26b&x&q2=");
        assert_eq!(m.get("q").map(String::as_str), Some("a&b"));
        assert_eq!(m.get("x").map(String::as_str), Some(""));
        assert_eq!(url_encode("a b&ü"), "a%20b%26%C3%BC");
    }
}
