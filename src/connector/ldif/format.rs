//! RFC 2849 LDIF content records: a streaming parser ([`LdifReader`]) and a
//! writer ([`write_entry`]). Pure format code — no files, no connector logic.

use std::io::{self, BufRead, Read, Write};

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// Encoding is canonical (padded); decoding also accepts unpadded input, which some exporters emit.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// RFC 2849 recommends physical lines of at most 76 bytes.
const FOLD_WIDTH: usize = 76;

/// Longest excerpt of an offending line quoted in an error message.
const QUOTE_CHARS: usize = 80;

/// Longest logical line (one attribute and its value, unfolded) read: a 12 MB photo in
/// base64; anything longer is not a directory entry (`/dev/zero`, a binary file).
pub const MAX_LINE_BYTES: usize = 16 << 20;
/// Most bytes one entry may hold in all (a group of a million members is ~64 MB).
pub const MAX_ENTRY_BYTES: usize = 256 << 20;
/// Most values one entry may hold.
pub const MAX_ENTRY_VALUES: usize = 4_000_000;

/// One attribute value as it appeared in the file.
///
/// `Bytes` means the value was base64-encoded (`attr::`), `Text` a plain `attr:` value.
/// [`write_entry`] base64-encodes any `Text` that is not an RFC 2849 SAFE-STRING (e.g.
/// non-ASCII), so such values read back as `Bytes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LdifValue {
    /// A plain (`attr: value`) value.
    Text(String),
    /// A base64-encoded (`attr:: value`) value, decoded.
    Bytes(Vec<u8>),
}

/// One content record (an entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdifEntry {
    /// 1-based line number of the record's `dn:` line.
    pub line: usize,
    /// The distinguished name, decoded.
    pub dn: String,
    /// Attributes in file order; names as written, including options such as `;binary`.
    pub attrs: Vec<(String, LdifValue)>,
}

/// A parse error tied to the 1-based physical line where the offending logical line starts.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: {reason}")]
pub struct LdifError {
    /// 1-based physical line number.
    pub line: usize,
    /// Human-readable explanation.
    pub reason: String,
}

fn too_long(line: usize) -> LdifError {
    err(
        line,
        format!(
            "the line is longer than {} MiB: not an LDIF file (is `path` a device or a binary file?)",
            MAX_LINE_BYTES >> 20
        ),
    )
}

fn err(line: usize, reason: impl Into<String>) -> LdifError {
    LdifError {
        line,
        reason: reason.into(),
    }
}

/// Quotes (lossily, truncated) a line so the user can find it in the file.
fn quote(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut shown: String = text.chars().take(QUOTE_CHARS).collect();
    if text.chars().nth(QUOTE_CHARS).is_some() {
        shown.push('…');
    }
    format!("{shown:?}")
}

/// A logical line: physical lines after unfolding, comments already dropped.
enum Logical {
    Blank,
    Line { line: usize, bytes: Vec<u8> },
}

/// Streaming reader: yields entries one at a time with bounded memory (one entry buffered).
pub struct LdifReader<R: BufRead> {
    src: R,
    /// Physical lines consumed so far.
    line_no: usize,
    /// One physical line of look-ahead, needed to know whether the next line is a continuation.
    peeked: Option<(usize, Vec<u8>)>,
    /// Whether the optional `version:` line has been checked for.
    started: bool,
    /// Set after EOF or an error; the input position is meaningless after an error.
    done: bool,
}

impl<R: BufRead> LdifReader<R> {
    /// Wraps a buffered source; nothing is read until the first `next()`.
    pub fn new(r: R) -> Self {
        Self {
            src: r,
            line_no: 0,
            peeked: None,
            started: false,
            done: false,
        }
    }

    fn read_physical(&mut self) -> Result<Option<(usize, Vec<u8>)>, LdifError> {
        if let Some(p) = self.peeked.take() {
            return Ok(Some(p));
        }
        let mut buf = Vec::new();
        // One byte past the limit tells a line at the limit from a longer one.
        let n = (&mut self.src)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf)
            .map_err(|e| err(self.line_no + 1, format!("read error: {e}")))?;
        if n == 0 {
            return Ok(None);
        }
        self.line_no += 1;
        if buf.len() > MAX_LINE_BYTES && buf.last() != Some(&b'\n') {
            return Err(too_long(self.line_no));
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
        }
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        Ok(Some((self.line_no, buf)))
    }

    /// Unfolds at byte level so a fold inside a multibyte UTF-8 sequence is rejoined before decoding.
    fn next_logical(&mut self) -> Result<Option<Logical>, LdifError> {
        loop {
            let Some((line, mut bytes)) = self.read_physical()? else {
                return Ok(None);
            };
            match bytes.first() {
                None => return Ok(Some(Logical::Blank)),
                Some(b' ') => {
                    return Err(err(
                        line,
                        "continuation line (starting with a space) has no line to continue",
                    ));
                }
                Some(_) => {}
            }
            loop {
                match self.read_physical()? {
                    Some((_, next)) if next.first() == Some(&b' ') => {
                        if bytes.len() + next.len() > MAX_LINE_BYTES {
                            return Err(too_long(line));
                        }
                        bytes.extend_from_slice(next.get(1..).unwrap_or_default());
                    }
                    other => {
                        self.peeked = other;
                        break;
                    }
                }
            }
            if bytes.first() != Some(&b'#') {
                return Ok(Some(Logical::Line { line, bytes }));
            }
        }
    }

    fn next_nonblank(&mut self) -> Result<Option<(usize, Vec<u8>)>, LdifError> {
        loop {
            match self.next_logical()? {
                None => return Ok(None),
                Some(Logical::Blank) => {}
                Some(Logical::Line { line, bytes }) => return Ok(Some((line, bytes))),
            }
        }
    }

    fn read_record(&mut self) -> Result<Option<LdifEntry>, LdifError> {
        let Some((mut line, mut bytes)) = self.next_nonblank()? else {
            return Ok(None);
        };
        if !self.started {
            self.started = true;
            let (name, value) = parse_attr_line(line, &bytes)?;
            if name.eq_ignore_ascii_case("version") {
                match value {
                    LdifValue::Text(v) if v.trim_end() == "1" => {}
                    _ => {
                        return Err(err(
                            line,
                            format!(
                                "unsupported LDIF version {} (only \"version: 1\" is supported)",
                                quote(&bytes)
                            ),
                        ));
                    }
                }
                // The version line may be followed directly by the first record, no blank needed.
                let Some(next) = self.next_nonblank()? else {
                    return Ok(None);
                };
                (line, bytes) = next;
            }
        }

        let (name, value) = parse_attr_line(line, &bytes)?;
        if !name.eq_ignore_ascii_case("dn") {
            return Err(err(
                line,
                format!("a record must start with \"dn:\", found {}", quote(&bytes)),
            ));
        }
        let dn = match value {
            LdifValue::Text(s) => s,
            LdifValue::Bytes(b) => String::from_utf8(b)
                .map_err(|_| err(line, "base64 DN (dn::) does not decode to valid UTF-8"))?,
        };

        let mut attrs = Vec::new();
        let mut held = bytes.len();
        while let Some(Logical::Line { line: at, bytes }) = self.next_logical()? {
            held += bytes.len();
            if held > MAX_ENTRY_BYTES || attrs.len() >= MAX_ENTRY_VALUES {
                return Err(err(
                    line,
                    format!(
                        "the entry holds more than {} MiB or {MAX_ENTRY_VALUES} values (at line {at}); split it or check the file",
                        MAX_ENTRY_BYTES >> 20
                    ),
                ));
            }
            let (name, value) = parse_attr_line(at, &bytes)?;
            if name.eq_ignore_ascii_case("changetype") {
                return Err(err(
                    at,
                    "change records (changetype: ...) are not supported; give a content LDIF",
                ));
            }
            if name.eq_ignore_ascii_case("dn") {
                return Err(err(
                    at,
                    "\"dn:\" inside a record; records must be separated by a blank line",
                ));
            }
            attrs.push((name, value));
        }
        Ok(Some(LdifEntry { line, dn, attrs }))
    }
}

impl<R: BufRead> Iterator for LdifReader<R> {
    type Item = Result<LdifEntry, LdifError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.read_record() {
            Ok(Some(entry)) => Some(Ok(entry)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// RFC 4512 attribute description: (keystring | numeric OID) *(";" option).
fn valid_attr_desc(name: &[u8]) -> bool {
    let mut parts = name.split(|&b| b == b';');
    let Some(ty) = parts.next() else {
        return false;
    };
    let keychar = |b: &u8| b.is_ascii_alphanumeric() || *b == b'-';
    let keystring = ty.first().is_some_and(u8::is_ascii_alphabetic) && ty.iter().all(keychar);
    let oid = ty
        .split(|&b| b == b'.')
        .all(|n| !n.is_empty() && n.iter().all(u8::is_ascii_digit));
    (keystring || oid) && parts.all(|opt| !opt.is_empty() && opt.iter().all(keychar))
}

fn parse_attr_line(line: usize, bytes: &[u8]) -> Result<(String, LdifValue), LdifError> {
    let Some(colon) = bytes.iter().position(|&b| b == b':') else {
        return Err(err(
            line,
            format!("expected \"attribute: value\", found {}", quote(bytes)),
        ));
    };
    let (name, rest) = bytes.split_at(colon);
    if !valid_attr_desc(name) {
        return Err(err(
            line,
            format!("invalid attribute description in {}", quote(bytes)),
        ));
    }
    // valid_attr_desc admits ASCII only, so this mapping is exact.
    let name: String = name.iter().map(|&b| char::from(b)).collect();
    let rest = rest.get(1..).unwrap_or_default();
    let strip_fill =
        |v: &[u8]| -> Vec<u8> { v.iter().copied().skip_while(|&b| b == b' ').collect() };
    let value = match rest.first() {
        Some(b':') => {
            let encoded = strip_fill(rest.get(1..).unwrap_or_default());
            let encoded = encoded.trim_ascii_end();
            let decoded = BASE64
                .decode(encoded)
                .map_err(|e| err(line, format!("invalid base64 value for {name:?}: {e}")))?;
            LdifValue::Bytes(decoded)
        }
        Some(b'<') => return Err(err(line, "URL values (attr:<) are not supported")),
        _ => LdifValue::Text(String::from_utf8(strip_fill(rest)).map_err(|_| {
            err(
                line,
                format!("value of {name:?} is not valid UTF-8 (use \"{name}::\" with base64)"),
            )
        })?),
    };
    Ok((name, value))
}

/// RFC 2849 SAFE-STRING, additionally excluding all control characters and a trailing space.
fn is_safe(v: &[u8]) -> bool {
    let plain = |b: &u8| (0x20..0x7f).contains(b);
    match v.first() {
        None => true,
        Some(b' ' | b':' | b'<') => false,
        Some(_) => v.iter().all(plain) && v.last() != Some(&b' '),
    }
}

fn write_folded<W: Write>(w: &mut W, line: &[u8]) -> io::Result<()> {
    let (first, mut rest) = line.split_at(line.len().min(FOLD_WIDTH));
    w.write_all(first)?;
    w.write_all(b"\n")?;
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(rest.len().min(FOLD_WIDTH - 1));
        w.write_all(b" ")?;
        w.write_all(chunk)?;
        w.write_all(b"\n")?;
        rest = tail;
    }
    Ok(())
}

/// Output is pure ASCII (unsafe values are base64), so byte-level folding never splits a character.
fn write_value_line<W: Write>(
    w: &mut W,
    name: &str,
    value: &[u8],
    force_b64: bool,
) -> io::Result<()> {
    let mut line = String::with_capacity(name.len() + 3 + value.len() * 4 / 3 + 4);
    line.push_str(name);
    if !force_b64 && is_safe(value) {
        line.push(':');
        if !value.is_empty() {
            line.push(' ');
            line.extend(value.iter().map(|&b| char::from(b)));
        }
    } else {
        line.push_str("::");
        if !value.is_empty() {
            line.push(' ');
            BASE64.encode_string(value, &mut line);
        }
    }
    write_folded(w, line.as_bytes())
}

/// Writes one `name: value` line (`name:: base64` when the value is not SAFE-STRING), folded
/// at 76 columns: the pieces of a change record.
pub fn write_attr_line<W: Write>(w: &mut W, name: &str, value: &[u8]) -> io::Result<()> {
    write_value_line(w, name, value, false)
}

/// Writes one entry plus its terminating blank line, folding at 76 columns and base64-encoding unsafe values.
///
/// `Text` values that are not SAFE-STRING (leading space/colon/`<`, trailing space, non-ASCII,
/// control characters) and all `Bytes` values are written as `attr::` base64, so a reader returns
/// them as [`LdifValue::Bytes`]. The DN is base64-encoded under the same rule. Attribute names
/// that are invalid, `dn` or `changetype` are rejected with `InvalidInput` because the output
/// would not read back as the same content record.
///
/// # Errors
/// `InvalidInput` for such attribute names (nothing is written then), or any error from `w`.
pub fn write_entry<W: Write>(w: &mut W, dn: &str, attrs: &[(&str, &LdifValue)]) -> io::Result<()> {
    for (name, _) in attrs {
        if !valid_attr_desc(name.as_bytes())
            || name.eq_ignore_ascii_case("dn")
            || name.eq_ignore_ascii_case("changetype")
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot write attribute description {name:?} in a content record"),
            ));
        }
    }
    write_value_line(w, "dn", dn.as_bytes(), false)?;
    for (name, value) in attrs {
        match value {
            LdifValue::Text(s) => write_value_line(w, name, s.as_bytes(), false)?,
            LdifValue::Bytes(b) => write_value_line(w, name, b, true)?,
        }
    }
    w.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(input: &str) -> Vec<Result<LdifEntry, LdifError>> {
        LdifReader::new(input.as_bytes()).collect()
    }

    fn parse_ok(input: &[u8]) -> Vec<LdifEntry> {
        match LdifReader::new(input).collect::<Result<Vec<_>, _>>() {
            Ok(entries) => entries,
            Err(e) => panic!("{e} in {:?}", String::from_utf8_lossy(input)),
        }
    }

    fn text(s: &str) -> LdifValue {
        LdifValue::Text(s.to_string())
    }

    fn attr(name: &str, v: LdifValue) -> (String, LdifValue) {
        (name.to_string(), v)
    }

    /// Parses input expected to fail; returns the error and checks the iterator then stops.
    fn parse_err(input: &[u8]) -> LdifError {
        let mut reader = LdifReader::new(input);
        let e = loop {
            match reader.next() {
                Some(Ok(_)) => {}
                Some(Err(e)) => break e,
                None => panic!("expected an error for {:?}", String::from_utf8_lossy(input)),
            }
        };
        assert!(reader.next().is_none());
        e
    }

    #[test]
    fn simple_entries_with_version() {
        let got = parse_ok(
            b"version: 1\ndn: cn=a,dc=x\ncn: a\nobjectClass: person\nuserCertificate;binary:: AAE=\n\ndn: cn=b\n1.2.3: x\nmail:\n",
        );
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].line, 2);
        assert_eq!(got[0].dn, "cn=a,dc=x");
        assert_eq!(
            got[0].attrs,
            vec![
                attr("cn", text("a")),
                attr("objectClass", text("person")),
                attr("userCertificate;binary", LdifValue::Bytes(vec![0, 1])),
            ]
        );
        assert_eq!(got[1].line, 7);
        assert_eq!(
            got[1].attrs,
            vec![attr("1.2.3", text("x")), attr("mail", text(""))]
        );
    }

    #[test]
    fn version_line_is_optional_and_may_be_alone() {
        assert_eq!(parse_ok(b"dn: cn=a\n").len(), 1);
        assert!(parse_ok(b"version: 1\n").is_empty());
        assert!(parse_ok(b"").is_empty());
        assert!(parse_ok(b"\n\n# only a comment\n").is_empty());
        assert_eq!(parse_ok(b"version: 1\n\n\ndn: cn=a\n")[0].line, 4);
    }

    #[test]
    fn folding() {
        // "Jürgen" with the fold between the two bytes of 'ü' (0xC3 0xBC).
        let mut input =
            b"dn: cn=lo\n ng,dc=x\ndescription: first \n  second\ncn: J\xC3\n \xBCrgen\n".to_vec();
        input.extend_from_slice(b"photo:: AAEC\n Aw==\n");
        let got = parse_ok(&input);
        assert_eq!(got[0].dn, "cn=long,dc=x");
        assert_eq!(
            got[0].attrs,
            vec![
                attr("description", text("first  second")),
                attr("cn", text("Jürgen")),
                attr("photo", LdifValue::Bytes(vec![0, 1, 2, 3])),
            ]
        );
    }

    #[test]
    fn base64_values_and_dn() {
        // "cn=Jürgen,dc=x" and "Ørsted"
        let got = parse_ok(b"dn:: Y249SsO8cmdlbixkYz14\nsn::   w5hyc3RlZA==  \nempty::\n");
        assert_eq!(got[0].dn, "cn=Jürgen,dc=x");
        assert_eq!(
            got[0].attrs,
            vec![
                attr("sn", LdifValue::Bytes("Ørsted".as_bytes().to_vec())),
                attr("empty", LdifValue::Bytes(Vec::new())),
            ]
        );
    }

    #[test]
    fn comments_are_ignored_including_folded_ones() {
        let got = parse_ok(
            b"# header comment\n continued: not an attribute\nversion: 1\n# between\n\ndn: cn=a\n# inside\n  still comment\ncn: a\n#tail\n",
        );
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].line, 6);
        assert_eq!(got[0].attrs, vec![attr("cn", text("a"))]);
    }

    #[test]
    fn crlf_and_multiple_blank_lines() {
        let got = parse_ok(b"\r\n\r\ndn: cn=a\r\ncn: a\r\n b\r\n\r\n\r\n\r\ndn: cn=b\r\nsn: c");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].line, 3);
        assert_eq!(got[0].attrs, vec![attr("cn", text("ab"))]);
        assert_eq!(got[1].line, 9);
        assert_eq!(got[1].attrs, vec![attr("sn", text("c"))]);
    }

    #[test]
    fn error_cases_name_their_line() {
        let cases: &[(&[u8], usize, &str)] = &[
            (b"version: 2\ndn: cn=a\n", 1, "version"),
            (b"\n# c\nversion: x\n", 3, "version"),
            (b"dn: cn=a\ncn: a\nnocolon\n", 3, "\"nocolon\""),
            (
                b"dn: cn=a\nbad_name: x\n",
                2,
                "invalid attribute description",
            ),
            (b"dn: cn=a\n;x: y\n", 2, "invalid attribute description"),
            (b"dn: cn=a\ncn;: y\n", 2, "invalid attribute description"),
            (b"dn: cn=a\n1..2: y\n", 2, "invalid attribute description"),
            (
                b"dn: cn=a\n\ndn: cn=b\njpegPhoto:< file:///x\n",
                4,
                "URL values (attr:<) are not supported",
            ),
            (
                b"dn: cn=a\nchangetype: modify\n",
                2,
                "change records (changetype: ...) are not supported; give a content LDIF",
            ),
            (b"dn: cn=a\nphoto:: @@@@\n", 2, "invalid base64"),
            (b"dn: cn=a\nphoto:: AA\n ==x\n", 2, "invalid base64"),
            (b"dn: cn=a\ncn: \xff\xfe\n", 2, "not valid UTF-8"),
            (b"dn:: /w==\n", 1, "does not decode to valid UTF-8"),
            (b"dn: cn=\xff\n", 1, "not valid UTF-8"),
            (b"cn: a\ndn: cn=a\n", 1, "must start with \"dn:\""),
            (b"version: 1\n\ncn: a\n", 3, "must start with \"dn:\""),
            (b" dn: cn=a\n", 1, "continuation line"),
            (b"dn: cn=a\n\n continued\n", 3, "continuation line"),
            (b"dn: cn=a\ncn: a\ndn: cn=b\n", 3, "blank line"),
            (b"dn: cn=a\ncn: a\n b\n c\nbad line\n", 5, "bad line"),
            // Error lines point at the first physical line of a folded logical line.
            (b"dn: cn=a\ncn: a\nchange\n type: add\n", 3, "changetype"),
        ];
        for (input, line, needle) in cases {
            let e = parse_err(input);
            assert_eq!(
                e.line,
                *line,
                "{e} for {:?}",
                String::from_utf8_lossy(input)
            );
            assert!(e.reason.contains(needle), "{e:?} lacks {needle:?}");
            assert!(e.to_string().starts_with(&format!("line {line}: ")));
        }
    }

    #[test]
    fn long_bad_lines_are_truncated_in_errors() {
        let input = format!("dn: cn=a\n{}\n", "x".repeat(300));
        let e = parse_err(input.as_bytes());
        assert_eq!(e.line, 2);
        assert!(
            e.reason.contains(&format!("\"{}…\"", "x".repeat(80))),
            "{e}"
        );
        assert!(!e.reason.contains(&"x".repeat(81)));
    }

    #[test]
    fn entries_before_an_error_are_still_yielded() {
        let got = parse("dn: cn=a\n\ndn: cn=b\nchangetype: delete\n\ndn: cn=c\n");
        assert_eq!(got.len(), 2);
        assert!(got[0].is_ok());
        assert_eq!(got[1].as_ref().map_err(|e| e.line), Err(4));
    }

    fn written(dn: &str, attrs: &[(&str, &LdifValue)]) -> String {
        let mut out = Vec::new();
        assert!(write_entry(&mut out, dn, attrs).is_ok());
        assert!(out.is_ascii());
        String::from_utf8_lossy(&out).into_owned()
    }

    #[test]
    fn writer_format_and_folding() {
        let long = "a".repeat(200);
        let out = written(
            "cn=a",
            &[
                ("cn", &text("a")),
                ("mail", &text("")),
                ("sn", &text(" lead")),
                ("o", &LdifValue::Bytes(b"ok".to_vec())),
                ("description", &text(&long)),
            ],
        );
        let mut lines = out.lines();
        assert_eq!(lines.next(), Some("dn: cn=a"));
        assert_eq!(lines.next(), Some("cn: a"));
        assert_eq!(lines.next(), Some("mail:"));
        assert_eq!(lines.next(), Some("sn:: IGxlYWQ="));
        assert_eq!(lines.next(), Some("o:: b2s="));
        assert!(out.ends_with("\n\n"));
        assert!(out.lines().all(|l| l.len() <= 76), "{out}");
        assert!(out.lines().filter(|l| l.starts_with(' ')).count() >= 2);
        assert_eq!(written("cn=Jürgen", &[]), "dn:: Y249SsO8cmdlbg==\n\n");
        assert_eq!(written("", &[]), "dn:\n\n");
    }

    #[test]
    fn writer_rejects_unreadable_names() {
        for name in ["dn", "changeType", "bad name", "a:b", "", "x\ny"] {
            let mut out = Vec::new();
            let Err(e) = write_entry(&mut out, "cn=a", &[(name, &text("v"))]) else {
                panic!("{name:?} was accepted");
            };
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
            assert!(out.is_empty());
        }
    }

    /// Values the writer base64-encodes read back as Bytes; map valid UTF-8 back to Text to compare.
    fn normalise(v: &LdifValue) -> LdifValue {
        match v {
            LdifValue::Bytes(b) => match std::str::from_utf8(b) {
                Ok(s) => LdifValue::Text(s.to_string()),
                Err(_) => v.clone(),
            },
            LdifValue::Text(_) => v.clone(),
        }
    }

    fn round_trip(dn: &str, attrs: &[(String, LdifValue)]) {
        let refs: Vec<(&str, &LdifValue)> = attrs.iter().map(|(n, v)| (n.as_str(), v)).collect();
        let mut out = b"version: 1\n".to_vec();
        assert!(write_entry(&mut out, dn, &refs).is_ok());
        assert!(write_entry(&mut out, "cn=second", &[]).is_ok());
        assert!(out.is_ascii());
        assert!(out.split(|&b| b == b'\n').all(|l| l.len() <= 76));
        let got = parse_ok(&out);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].dn, dn);
        assert_eq!(got[0].line, 2);
        let back: Vec<_> = got[0]
            .attrs
            .iter()
            .map(|(n, v)| (n.clone(), normalise(v)))
            .collect();
        let want: Vec<_> = attrs
            .iter()
            .map(|(n, v)| (n.clone(), normalise(v)))
            .collect();
        assert_eq!(back, want);
        assert_eq!(got[1].dn, "cn=second");
    }

    #[test]
    fn round_trip_tricky_values() {
        let all_bytes: Vec<u8> = (0..=255).collect();
        let values = vec![
            text(" leading space"),
            text(":leading colon"),
            text("<leading angle"),
            text("trailing space "),
            text("Jürgen Ørsted"),
            text("line one\nline two\r\n"),
            text("nul\0inside"),
            text("tab\tand del\x7f"),
            text("#not a comment"),
            text(""),
            text(" "),
            text(&"long value ".repeat(25)),
            text(&"ü".repeat(150)),
            LdifValue::Bytes(all_bytes.clone()),
            LdifValue::Bytes(all_bytes.repeat(3)),
            LdifValue::Bytes(Vec::new()),
        ];
        let attrs: Vec<_> = values
            .into_iter()
            .enumerate()
            .map(|(i, v)| (format!("attr{i};x-opt"), v))
            .collect();
        round_trip("cn=Jürgen Ørsted,ou= spaced ,dc=example", &attrs);
        round_trip(" :<dn", &attrs);
        round_trip(&"cn=long,".repeat(40), &[]);
    }

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn round_trip_random_values() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let alphabet: Vec<char> = " :<#=,\n\r\t\0aZ9-üØ€😀".chars().collect();
        for _ in 0..300 {
            let random_text = |rng: &mut XorShift| -> String {
                let len = rng.below(120);
                (0..len)
                    .map(|_| alphabet[rng.below(alphabet.len())])
                    .collect()
            };
            let dn = random_text(&mut rng);
            let attrs: Vec<_> = (0..rng.below(5))
                .map(|i| {
                    let v = if rng.below(3) == 0 {
                        LdifValue::Bytes((0..rng.below(300)).map(|_| rng.next() as u8).collect())
                    } else {
                        LdifValue::Text(random_text(&mut rng))
                    };
                    (format!("a{i}"), v)
                })
                .collect();
            round_trip(&dn, &attrs);
        }
    }

    #[test]
    fn fuzz_never_panics() {
        let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
        let pieces: &[&[u8]] = &[
            b"dn:",
            b"dn::",
            b"version: 1",
            b"changetype: add",
            b"cn",
            b":",
            b"::",
            b":<",
            b" ",
            b"\n",
            b"\r\n",
            b"\n\n",
            b"#",
            b";",
            b"1.2",
            b"AAEC",
            b"==",
            b"\xc3",
            b"\xff",
            b"\0",
            b"a",
            b"-",
        ];
        for _ in 0..2000 {
            let mut input = Vec::new();
            for _ in 0..rng.below(60) {
                if rng.below(4) == 0 {
                    input.push(rng.next() as u8);
                } else {
                    input.extend_from_slice(pieces[rng.below(pieces.len())]);
                }
            }
            let mut reader = LdifReader::new(input.as_slice());
            let mut steps = 0;
            while let Some(item) = reader.next() {
                steps += 1;
                assert!(steps <= input.len() + 1, "reader did not terminate");
                if let Err(e) = item {
                    assert!(e.line >= 1);
                    assert!(reader.next().is_none());
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "limits_tests.rs"]
mod limits_tests;
