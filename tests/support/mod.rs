//! Helpers for the end-to-end tests: run the real binary, read its JSON, and an LDIF reader,
//! writer and DN normaliser of our own.
//!
//! The LDIF and DN code here is deliberately independent of `bridgehead::connector::ldif` and
//! `bridgehead::model::Dn`: a test that used the crate's parser to check the crate's output
//! would share its bugs. It handles what the demo files contain (folding, `::` base64,
//! comments, RFC 4514 escapes), no more.

pub mod lab;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsStr;
use std::fmt::{Display, Write as _};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

// ---------------------------------------------------------------------------------------------
// Failing loudly without unwrap().

/// `unwrap` with a message saying what was being done (clippy denies `unwrap`/`expect`).
pub trait Must<T> {
    /// The value, or a panic naming `what` and the error.
    fn must(self, what: &str) -> T;
}

impl<T, E: Display> Must<T> for Result<T, E> {
    fn must(self, what: &str) -> T {
        match self {
            Ok(v) => v,
            Err(e) => panic!("{what}: {e}"),
        }
    }
}

impl<T> Must<T> for Option<T> {
    fn must(self, what: &str) -> T {
        match self {
            Some(v) => v,
            None => panic!("{what}: nothing there"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Folders.

/// A temporary folder per test, kept (and its path printed) when the test fails.
pub struct TestDir {
    dir: tempfile::TempDir,
}

impl TestDir {
    /// A fresh empty folder.
    pub fn new(name: &str) -> TestDir {
        let dir = tempfile::Builder::new()
            .prefix(&format!("bridgehead-{name}-"))
            .tempdir()
            .must("creating a temp dir");
        TestDir { dir }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A file in it.
    pub fn join(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The demo config file in it.
    pub fn config(&self) -> PathBuf {
        self.join("bridgehead.toml")
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dir.disable_cleanup(true);
            eprintln!(
                "test failed; its folder is kept at {}",
                self.dir.path().display()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Running the binary.

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_bridgehead")
}

/// How long any one command may take before the test gives up on it.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(600);

/// What a finished command left behind.
pub struct Run {
    /// The command line, for messages.
    pub what: String,
    /// Exit status.
    pub status: ExitStatus,
    /// Standard output.
    pub stdout: String,
    /// Standard error (logs).
    pub stderr: String,
    /// Wall-clock time.
    pub took: Duration,
}

impl Run {
    /// The exit code (None when killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Panics with the whole output unless the exit code is `want`.
    pub fn expect_code(&self, want: i32) -> &Run {
        assert_eq!(
            self.code(),
            Some(want),
            "`{}` exited with {:?}, expected {want}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what,
            self.status,
            tail(&self.stdout),
            tail(&self.stderr)
        );
        self
    }

    /// Panics unless the command succeeded.
    pub fn ok(&self) -> &Run {
        self.expect_code(0)
    }

    /// Stdout parsed as exactly one JSON value.
    pub fn json(&self) -> serde_json::Value {
        match serde_json::from_str(self.stdout.trim()) {
            Ok(v) => v,
            Err(e) => panic!(
                "`{}` did not print one JSON object on stdout ({e}):\n{}\n--- stderr ---\n{}",
                self.what,
                tail(&self.stdout),
                tail(&self.stderr)
            ),
        }
    }
}

/// The last lines of a long output, for failure messages.
pub fn tail(text: &str) -> String {
    const KEEP: usize = 60;
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() <= KEEP {
        return text.to_string();
    }
    format!(
        "[… {} lines left out …]\n{}",
        lines.len() - KEEP,
        lines[lines.len() - KEEP..].join("\n")
    )
}

fn describe<S: AsRef<OsStr>>(args: &[S]) -> String {
    let mut s = String::from("bridgehead");
    for a in args {
        s.push(' ');
        s.push_str(&a.as_ref().to_string_lossy());
    }
    s
}

/// Starts the binary with piped output.
pub fn spawn<S: AsRef<OsStr>>(args: &[S]) -> Child {
    Command::new(bin())
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .must(&format!("starting `{}`", describe(args)))
}

/// Reads a child's stdout and stderr on threads (so neither pipe fills up) until it ends.
fn drain(
    child: &mut Child,
) -> (
    std::thread::JoinHandle<String>,
    std::thread::JoinHandle<String>,
) {
    fn reader(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut bytes);
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
    }
    (reader(child.stdout.take()), reader(child.stderr.take()))
}

/// Runs the binary to completion (killing it after a generous timeout).
pub fn run<S: AsRef<OsStr>>(args: &[S]) -> Run {
    let what = describe(args);
    let start = Instant::now();
    let mut child = spawn(args);
    let (out, err) = drain(&mut child);
    let status = loop {
        if let Some(status) = child.try_wait().must("waiting for the binary") {
            break status;
        }
        if start.elapsed() > COMMAND_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`{what}` did not finish within {COMMAND_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let took = start.elapsed();
    Run {
        what,
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        took,
    }
}

/// Starts the binary and SIGKILLs it after `delay` if it is still running. Returns None when
/// it was killed, or how long it took when it finished on its own first (successfully).
pub fn run_and_kill<S: AsRef<OsStr>>(args: &[S], delay: Duration) -> Option<Duration> {
    let mut child = spawn(args);
    let (out, err) = drain(&mut child);
    let start = Instant::now();
    let mut finished = None;
    while start.elapsed() < delay {
        if child.try_wait().must("polling the binary").is_some() {
            finished = Some(start.elapsed());
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    if finished.is_none() {
        // std's Child::kill sends SIGKILL on Unix: no chance to clean up.
        let _ = child.kill();
    }
    let status = child.wait().must("waiting for the killed binary");
    let _ = out.join();
    let stderr = err.join().unwrap_or_default();
    if finished.is_some() {
        assert!(
            status.success(),
            "`{}` failed before it could be killed: {status:?}\n{}",
            describe(args),
            tail(&stderr)
        );
    }
    finished
}

/// A background process killed (SIGKILL) and reaped when dropped, even if the test panics.
pub struct Background {
    child: Child,
    stdout: Option<std::thread::JoinHandle<String>>,
}

impl Background {
    /// Starts the binary with stderr going to a file we can watch while it runs.
    pub fn start<S: AsRef<OsStr>>(args: &[S], stderr_file: &Path) -> Background {
        Background::start_with_env(args, stderr_file, &[])
    }

    /// Like [`Background::start`], with extra environment variables (systemd's, say).
    pub fn start_with_env<S: AsRef<OsStr>>(
        args: &[S],
        stderr_file: &Path,
        env: &[(&str, &OsStr)],
    ) -> Background {
        let log = std::fs::File::create(stderr_file).must("creating the stderr file");
        let mut child = Command::new(bin())
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .must(&format!("starting `{}`", describe(args)));
        let (out, _) = drain(&mut child);
        Background {
            child,
            stdout: Some(out),
        }
    }

    /// Its process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends a signal by name (`TERM`, `INT`) with the system's `kill`.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .must("running kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits up to `limit` for the process to exit; its exit code, or None if still running.
    pub fn wait_for_exit(&mut self, limit: Duration) -> Option<i32> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status.code().unwrap_or(-1));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

/// Polls a log file until it contains `needle`, for at most `limit`.
pub fn wait_for_log(path: &Path, needle: &str, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if std::fs::read_to_string(path).is_ok_and(|t| t.contains(needle)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.stdout.take() {
            let _ = reader.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The CLI's commands as the tests use them.

/// A folder holding only the demo's config and source from `template`, so that the next
/// cycle there is a first full run.
pub fn fresh_copy(template: &TestDir, name: &str) -> TestDir {
    let dir = TestDir::new(name);
    for f in ["bridgehead.toml", "contoso.ldif"] {
        std::fs::copy(template.join(f), dir.join(f)).must(&format!("copying {f}"));
    }
    dir
}

/// `bridgehead demo --dir DIR --once`, which must succeed.
pub fn demo_once(dir: &TestDir) -> Run {
    let run = run(&[
        OsStr::new("demo"),
        OsStr::new("--dir"),
        dir.path().as_os_str(),
        OsStr::new("--once"),
    ]);
    run.ok();
    for f in ["contoso.ldif", "bridgehead.toml", "directory.ldif"] {
        assert!(dir.join(f).is_file(), "demo --once did not write {f}");
    }
    run
}

/// `bridgehead cycle -c CONFIG [--full] --json`, not yet checked.
pub fn cycle_json(config: &Path, full: bool) -> Run {
    let mut args = vec![OsStr::new("cycle"), OsStr::new("-c"), config.as_os_str()];
    if full {
        args.push(OsStr::new("--full"));
    }
    args.push(OsStr::new("--json"));
    run(&args)
}

/// One connector's add/update/delete/rename counts from the cycle JSON.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub adds: u64,
    pub updates: u64,
    pub deletes: u64,
    pub renames: u64,
}

/// The demo's cycle JSON: its two connectors' (import, export, errors).
pub fn cycle_counts(json: &serde_json::Value) -> BTreeMap<String, (Counts, Counts, u64)> {
    let out = connector_counts(json);
    let names: Vec<&str> = out.keys().map(String::as_str).collect();
    assert_eq!(names, ["contoso", "directory"], "{json}");
    out
}

/// Checks a cycle JSON's shape and returns each connector's (import, export, errors).
pub fn connector_counts(json: &serde_json::Value) -> BTreeMap<String, (Counts, Counts, u64)> {
    let shown = || serde_json::to_string_pretty(json).unwrap_or_default();
    let obj = json.as_object().must("cycle --json prints an object");
    for key in ["started_ms", "finished_ms"] {
        assert!(
            obj.get(key).is_some_and(|v| v.is_u64()),
            "{key} missing: {}",
            shown()
        );
    }
    assert!(
        matches!(
            obj.get("mode").and_then(|m| m.as_str()),
            Some("delta" | "full")
        ),
        "mode: {}",
        shown()
    );
    assert_eq!(
        obj.get("trigger").and_then(|t| t.as_str()),
        Some("cli"),
        "{}",
        shown()
    );
    assert!(
        obj.get("failure").is_some_and(|f| f.is_null()),
        "failure: {}",
        shown()
    );
    let counts = |v: Option<&serde_json::Value>, what: &str| -> Counts {
        let v = v.must(&format!("{what} in {}", shown()));
        let n = |k: &str| {
            v.get(k)
                .and_then(|x| x.as_u64())
                .must(&format!("{what}.{k} in {}", shown()))
        };
        Counts {
            adds: n("adds"),
            updates: n("updates"),
            deletes: n("deletes"),
            renames: n("renames"),
        }
    };
    let mut out = BTreeMap::new();
    for c in obj
        .get("connectors")
        .and_then(|c| c.as_array())
        .must("connectors array")
    {
        let name = c
            .get("connector")
            .and_then(|n| n.as_str())
            .must("connector name")
            .to_string();
        let import = counts(c.get("import"), "import");
        let export = counts(c.get("export"), "export");
        let errors = c
            .get("errors")
            .and_then(|e| e.as_u64())
            .must(&format!("errors in {}", shown()));
        out.insert(name, (import, export, errors));
    }
    out
}

/// Asserts that a cycle exported nothing anywhere and had no errors.
pub fn assert_quiet_cycle(run: &Run) {
    run.ok();
    let json = run.json();
    for (name, (_, export, errors)) in cycle_counts(&json) {
        assert_eq!(
            (export, errors),
            (Counts::default(), 0),
            "connector {name} exported again in a cycle with nothing to do:\n{}",
            run.stdout
        );
    }
}

// ---------------------------------------------------------------------------------------------
// LDIF.

/// One attribute value as read: the bytes, and whether the file had it base64-encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LdifValue {
    pub bytes: Vec<u8>,
    pub base64: bool,
}

impl LdifValue {
    /// A text value (encoded on writing if it needs to be).
    pub fn text(s: &str) -> LdifValue {
        LdifValue {
            bytes: s.as_bytes().to_vec(),
            base64: false,
        }
    }

    /// The value as text (lossy for binary values).
    pub fn as_text(&self) -> String {
        String::from_utf8_lossy(&self.bytes).into_owned()
    }
}

/// One LDIF entry: DN and attributes in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LdifEntry {
    pub dn: String,
    pub attrs: Vec<(String, LdifValue)>,
}

impl LdifEntry {
    /// All values of an attribute (name case-insensitive), as text.
    pub fn values(&self, name: &str) -> Vec<String> {
        self.attrs
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_text())
            .collect()
    }

    /// The first value of an attribute, as text.
    pub fn first(&self, name: &str) -> Option<String> {
        self.values(name).into_iter().next()
    }

    /// The most specific object class (AD lists it last).
    pub fn class(&self) -> String {
        self.values("objectClass").pop().unwrap_or_default()
    }

    /// Replaces all values of an attribute (removing it when `values` is empty); a new
    /// attribute goes at the end.
    pub fn set(&mut self, name: &str, values: &[&str]) {
        let at = self
            .attrs
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case(name))
            .unwrap_or(self.attrs.len());
        self.attrs.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        let at = at.min(self.attrs.len());
        for (i, v) in values.iter().enumerate() {
            self.attrs
                .insert(at + i, (name.to_string(), LdifValue::text(v)));
        }
    }
}

/// Reads an LDIF file of content records.
pub fn read_ldif(path: &Path) -> Vec<LdifEntry> {
    let bytes = std::fs::read(path).must(&format!("reading {}", path.display()));
    parse_ldif(&bytes).must(&format!("parsing {}", path.display()))
}

/// Parses LDIF content records: unfolds continuation lines, skips comments and `version:`,
/// decodes `::` base64.
pub fn parse_ldif(bytes: &[u8]) -> Result<Vec<LdifEntry>, String> {
    // Physical lines → logical lines (None = a blank line, which ends a record).
    let mut logical: Vec<Option<(usize, Vec<u8>)>> = Vec::new();
    let mut in_comment = false;
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = raw.strip_suffix(b"\r").unwrap_or(raw);
        if let Some(rest) = line.strip_prefix(b" ") {
            if in_comment {
                continue;
            }
            match logical.last_mut() {
                Some(Some((_, text))) => text.extend_from_slice(rest),
                _ => {
                    return Err(format!(
                        "line {}: continuation line with nothing to continue",
                        i + 1
                    ));
                }
            }
            continue;
        }
        in_comment = line.first() == Some(&b'#');
        if in_comment {
            continue;
        }
        if line.is_empty() {
            logical.push(None);
        } else {
            logical.push(Some((i + 1, line.to_vec())));
        }
    }

    let mut entries = Vec::new();
    let mut current: Option<LdifEntry> = None;
    let mut first_line = true;
    for item in logical {
        let Some((line_no, text)) = item else {
            entries.extend(current.take());
            continue;
        };
        let colon = text.iter().position(|&b| b == b':').ok_or_else(|| {
            format!(
                "line {line_no}: no ':' in {:?}",
                String::from_utf8_lossy(&text)
            )
        })?;
        let name = String::from_utf8_lossy(&text[..colon]).into_owned();
        let rest = &text[colon + 1..];
        let value = if let Some(b64) = rest.strip_prefix(b":") {
            let b64: Vec<u8> = b64.iter().copied().filter(|b| *b != b' ').collect();
            LdifValue {
                bytes: BASE64
                    .decode(&b64)
                    .map_err(|e| format!("line {line_no}: bad base64: {e}"))?,
                base64: true,
            }
        } else if rest.starts_with(b"<") {
            return Err(format!("line {line_no}: URL values are not supported here"));
        } else {
            let mut start = 0;
            while rest.get(start) == Some(&b' ') {
                start += 1;
            }
            LdifValue {
                bytes: rest[start..].to_vec(),
                base64: false,
            }
        };
        let is_version = first_line && name == "version";
        first_line = false;
        if is_version {
            continue;
        }
        match &mut current {
            None if name.eq_ignore_ascii_case("dn") => {
                current = Some(LdifEntry {
                    dn: String::from_utf8(value.bytes)
                        .map_err(|_| format!("line {line_no}: DN is not UTF-8"))?,
                    attrs: Vec::new(),
                });
            }
            None => return Err(format!("line {line_no}: record does not start with dn:")),
            Some(e) => {
                if name == "changetype" || name == "-" {
                    return Err(format!(
                        "line {line_no}: change records are not supported here"
                    ));
                }
                e.attrs.push((name, value));
            }
        }
    }
    entries.extend(current);
    Ok(entries)
}

/// RFC 2849 SAFE-STRING: may be written plain after `attr: `.
fn is_safe(bytes: &[u8]) -> bool {
    match bytes.first() {
        None => true,
        Some(b' ' | b':' | b'<') => false,
        Some(_) => {
            bytes
                .iter()
                .all(|&b| b.is_ascii() && b != 0 && b != b'\n' && b != b'\r')
                && bytes.last() != Some(&b' ')
        }
    }
}

fn write_value(out: &mut String, name: &str, bytes: &[u8], force_base64: bool) {
    if !force_base64 && is_safe(bytes) {
        let _ = writeln!(out, "{name}: {}", String::from_utf8_lossy(bytes));
    } else {
        let _ = writeln!(out, "{name}:: {}", BASE64.encode(bytes));
    }
}

/// Writes entries as LDIF (unfolded lines; base64 where the value needs it or was base64).
pub fn write_ldif(path: &Path, entries: &[LdifEntry]) {
    let mut out = String::from("version: 1\n");
    for e in entries {
        out.push('\n');
        write_value(&mut out, "dn", e.dn.as_bytes(), false);
        for (name, v) in &e.attrs {
            // objectGUID stays base64 even when its 16 bytes happen to be printable.
            write_value(
                &mut out,
                name,
                &v.bytes,
                name.eq_ignore_ascii_case("objectGUID"),
            );
        }
    }
    std::fs::write(path, out).must(&format!("writing {}", path.display()));
}

// ---------------------------------------------------------------------------------------------
// DNs.

/// A DN's RDNs in canonical form: lower-case types and values, escapes removed and put back
/// the one canonical way, multi-valued RDNs sorted. Two spellings of one DN give one result.
pub fn dn_rdns(dn: &str) -> Vec<String> {
    let b = dn.as_bytes();
    let mut i = 0;
    let mut rdns = Vec::new();
    let mut avas: Vec<String> = Vec::new();
    let skip_spaces = |i: &mut usize| {
        while *i < b.len() && b[*i] == b' ' {
            *i += 1;
        }
    };
    skip_spaces(&mut i);
    if i >= b.len() {
        return rdns;
    }
    loop {
        skip_spaces(&mut i);
        let start = i;
        while i < b.len() && b[i] != b'=' {
            i += 1;
        }
        assert!(i < b.len(), "DN {dn:?}: no '=' after {:?}", &dn[start..]);
        let attr = dn[start..i].trim().to_ascii_lowercase();
        i += 1;
        skip_spaces(&mut i);
        let mut value: Vec<u8> = Vec::new();
        let mut significant = 0;
        while i < b.len() && !matches!(b[i], b',' | b'+' | b';') {
            if b[i] == b'\\' {
                let hex = b.get(i + 1..i + 3).and_then(|h| {
                    std::str::from_utf8(h)
                        .ok()
                        .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                });
                match hex {
                    Some(byte) => {
                        value.push(byte);
                        i += 3;
                    }
                    None => {
                        let c = *b.get(i + 1).must(&format!("DN {dn:?} ends with '\\'"));
                        value.push(c);
                        i += 2;
                    }
                }
                significant = value.len();
            } else {
                value.push(b[i]);
                if b[i] != b' ' {
                    significant = value.len();
                }
                i += 1;
            }
        }
        value.truncate(significant);
        let text = String::from_utf8(value).must(&format!("DN {dn:?} value is not UTF-8"));
        avas.push(format!("{attr}={}", escape_rdn_value(&text.to_lowercase())));
        let sep = b.get(i).copied();
        i += 1;
        if sep != Some(b'+') {
            avas.sort();
            rdns.push(avas.join("+"));
            avas.clear();
        }
        if sep.is_none() {
            break;
        }
    }
    rdns
}

/// The canonical comparison form of a DN.
pub fn norm_dn(dn: &str) -> String {
    dn_rdns(dn).join(",")
}

/// Escapes an RDN value per RFC 4514 §2.4 (our canonical choice of escapes).
pub fn escape_rdn_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 4);
    let n = v.chars().count();
    for (i, c) in v.chars().enumerate() {
        match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i + 1 == n => out.push_str("\\ "),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The demo rules, applied by hand.

/// A target directory as a comparable value: normalised DN → lower-cased attribute name → set
/// of values (DN-valued attributes normalised).
pub type Target = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

/// Attributes whose values are DNs in the target.
const DN_VALUED: &[&str] = &["member", "manager"];

/// Reads a target LDIF file as a [`Target`]; `with_entry_uuid` keeps entryUUID values.
pub fn read_target(path: &Path, with_entry_uuid: bool) -> Target {
    let mut target = Target::new();
    for e in read_ldif(path) {
        let mut attrs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (name, v) in &e.attrs {
            let name = name.to_ascii_lowercase();
            if name == "entryuuid" && !with_entry_uuid {
                continue;
            }
            let text = v.as_text();
            let text = if DN_VALUED.contains(&name.as_str()) {
                norm_dn(&text)
            } else {
                text
            };
            attrs.entry(name).or_default().insert(text);
        }
        let key = norm_dn(&e.dn);
        assert!(
            target.insert(key, attrs).is_none(),
            "{}: DN {} appears twice",
            path.display(),
            e.dn
        );
    }
    target
}

/// One expected target object: its normalised DN and attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    pub dn: String,
    pub attrs: BTreeMap<String, BTreeSet<String>>,
}

/// The expected target, keyed by the source object's objectGUID (base64), so that a test can
/// tell renames from adds and deletes.
pub type ExpectedById = BTreeMap<String, Expected>;

/// Applies the demo rules to a source LDIF file by hand: users with userAccountControl bit 2
/// clear, all contacts and all groups of the two domains, DN `cn=<cn>,<container>,ou=<domain>,
/// dc=contoso,dc=example`, renamed attributes, references mapped to target DNs or dropped.
pub fn expected_target(source: &[LdifEntry]) -> ExpectedById {
    const DOMAINS: [&str; 2] = ["corp", "emea"];
    struct Planned<'a> {
        id: String,
        entry: &'a LdifEntry,
        kind: &'static str,
        dn: String,
    }
    let mut planned: Vec<Planned<'_>> = Vec::new();
    for e in source {
        let kind = match e.class().to_ascii_lowercase().as_str() {
            "user" => "person",
            "contact" => "contact",
            "group" => "group",
            _ => continue,
        };
        let rdns = dn_rdns(&e.dn);
        let Some(domain) = DOMAINS.iter().find(|d| {
            rdns.len() >= 4
                && rdns[rdns.len() - 3..]
                    == [format!("dc={d}"), "dc=contoso".into(), "dc=com".into()]
        }) else {
            continue;
        };
        if kind == "person" {
            let uac: i64 = e
                .first("userAccountControl")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if uac & 2 != 0 {
                continue;
            }
        }
        let cn = e.first("cn").must(&format!("cn of {}", e.dn));
        let mut target_rdns = vec![format!("cn={}", escape_rdn_value(&cn.to_lowercase()))];
        target_rdns.extend_from_slice(&rdns[1..rdns.len() - 3]);
        target_rdns.extend([
            format!("ou={domain}"),
            "dc=contoso".into(),
            "dc=example".into(),
        ]);
        let id = e
            .attrs
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("objectGUID"))
            .map(|(_, v)| BASE64.encode(&v.bytes))
            .must(&format!("objectGUID of {}", e.dn));
        planned.push(Planned {
            id,
            entry: e,
            kind,
            dn: target_rdns.join(","),
        });
    }

    // Source DN → target DN, for references.
    let target_of: HashMap<String, String> = planned
        .iter()
        .map(|p| (norm_dn(&p.entry.dn), p.dn.clone()))
        .collect();

    let mut out = ExpectedById::new();
    for p in &planned {
        let (class, flows): (&str, &[(&str, &str)]) = match p.kind {
            "person" => (
                "inetOrgPerson",
                &[
                    ("uid", "sAMAccountName"),
                    ("cn", "cn"),
                    ("sn", "sn"),
                    ("givenName", "givenName"),
                    ("displayName", "displayName"),
                    ("mail", "mail"),
                    ("title", "title"),
                    ("telephoneNumber", "telephoneNumber"),
                    ("manager", "manager"),
                    ("employeeNumber", "employeeID"),
                    ("departmentNumber", "department"),
                ],
            ),
            "contact" => (
                "inetOrgPerson",
                &[
                    ("cn", "cn"),
                    ("sn", "sn"),
                    ("givenName", "givenName"),
                    ("displayName", "displayName"),
                    ("mail", "mail"),
                ],
            ),
            _ => (
                "groupOfNames",
                &[
                    ("cn", "cn"),
                    ("description", "description"),
                    ("mail", "mail"),
                    ("member", "member"),
                ],
            ),
        };
        let mut attrs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        attrs.insert("objectclass".into(), BTreeSet::from([class.to_string()]));
        for (target, source) in flows {
            let mut values = BTreeSet::new();
            for v in p.entry.values(source) {
                if DN_VALUED.contains(target) {
                    if let Some(t) = target_of.get(&norm_dn(&v)) {
                        values.insert(t.clone());
                    }
                } else {
                    values.insert(v);
                }
            }
            if !values.is_empty() {
                attrs.insert(target.to_ascii_lowercase(), values);
            }
        }
        let previous = out.insert(
            p.id.clone(),
            Expected {
                dn: p.dn.clone(),
                attrs,
            },
        );
        assert!(
            previous.is_none(),
            "two source entries share objectGUID {}",
            p.id
        );
    }
    let mut dns = BTreeSet::new();
    for e in out.values() {
        assert!(
            dns.insert(e.dn.clone()),
            "the demo rules map two objects to {}",
            e.dn
        );
    }
    out
}

/// The expected target as a [`Target`].
pub fn by_dn(expected: &ExpectedById) -> Target {
    expected
        .values()
        .map(|e| (e.dn.clone(), e.attrs.clone()))
        .collect()
}

/// Asserts two targets are equal, listing the first differences when they are not.
pub fn assert_same_target(actual: &Target, expected: &Target, what: &str) {
    if actual == expected {
        return;
    }
    const SHOW: usize = 8;
    let mut report = format!(
        "{what}: target differs from the expectation ({} entries found, {} expected)\n",
        actual.len(),
        expected.len()
    );
    let missing: Vec<&String> = expected
        .keys()
        .filter(|k| !actual.contains_key(*k))
        .collect();
    let extra: Vec<&String> = actual
        .keys()
        .filter(|k| !expected.contains_key(*k))
        .collect();
    let _ = writeln!(report, "{} expected entries missing, e.g.:", missing.len());
    for k in missing.iter().take(SHOW) {
        let _ = writeln!(report, "  - {k}");
    }
    let _ = writeln!(report, "{} unexpected entries, e.g.:", extra.len());
    for k in extra.iter().take(SHOW) {
        let _ = writeln!(report, "  + {k}");
    }
    let differing: Vec<&String> = expected
        .keys()
        .filter(|k| actual.get(*k).is_some_and(|a| Some(a) != expected.get(*k)))
        .collect();
    let _ = writeln!(
        report,
        "{} entries with other attributes, e.g.:",
        differing.len()
    );
    for k in differing.iter().take(SHOW) {
        let (Some(a), Some(e)) = (actual.get(*k), expected.get(*k)) else {
            continue;
        };
        let _ = writeln!(report, "  * {k}");
        let names: BTreeSet<&String> = a.keys().chain(e.keys()).collect();
        for n in names {
            if a.get(n) != e.get(n) {
                let _ = writeln!(report, "      {n}: found {:?}", a.get(n).map(short));
                let _ = writeln!(report, "      {n}: wanted {:?}", e.get(n).map(short));
            }
        }
    }
    panic!("{report}");
}

/// A value set for messages: the full set when small, else its size and the difference-prone
/// first few values.
fn short(values: &BTreeSet<String>) -> String {
    if values.len() <= 6 {
        format!("{values:?}")
    } else {
        let first: Vec<&String> = values.iter().take(4).collect();
        format!("{} values: {first:?}…", values.len())
    }
}
