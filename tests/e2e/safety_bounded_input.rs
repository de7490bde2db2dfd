//! Unbounded sources against the real binary: an LDIF connector whose `path` is
//! `/dev/zero` fails at once with exit 4 and an error naming the file and line 1 (and
//! without growing), and a source that never ends (a pipe fed forever) stops on SIGTERM.

use std::io::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::safety_state_file::setup_with;
use crate::support::{Background, Must, TestDir, run, tail, wait_for_log};

/// Points the config's source at `path`.
fn source_at(config: &Path, path: &str) {
    let text = std::fs::read_to_string(config).must("the config");
    std::fs::write(
        config,
        text.replace("path = \"hr.ldif\"", &format!("path = \"{path}\"")),
    )
    .must("writing the config");
}

#[test]
fn safety_dev_zero_as_ldif_fails_fast_with_the_line() {
    let dir = TestDir::new("input-dev-zero");
    let config = setup_with(dir.path(), &dir.join("state.redb"), 0);
    source_at(&config, "/dev/zero");
    let started = Instant::now();
    let r = run(&["cycle", "-c", &config.to_string_lossy()]);
    let took = started.elapsed();
    eprintln!(
        "/dev/zero: exit {:?} after {took:?}: {}",
        r.code(),
        r.stderr.trim()
    );
    r.expect_code(4);
    assert!(took < Duration::from_secs(20), "{took:?}");
    for w in ["/dev/zero", "line 1", "longer than 16 MiB"] {
        assert!(r.stderr.contains(w), "{w}: {}", tail(&r.stderr));
    }
}

#[test]
fn safety_a_source_that_never_ends_stops_on_sigterm() {
    let dir = TestDir::new("input-endless");
    let config = setup_with(dir.path(), &dir.join("state.redb"), 0);
    let fifo = dir.join("endless.ldif");
    let made = Command::new("mkfifo").arg(&fifo).status().must("mkfifo");
    assert!(made.success());
    source_at(&config, &fifo.to_string_lossy());
    // Entries for ever, until the reader goes away (the write then fails: EPIPE).
    let writer = std::thread::spawn({
        let fifo = fifo.clone();
        move || {
            let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&fifo) else {
                return 0u64;
            };
            let mut n = 0u64;
            while write!(
                f,
                "dn: uid=p{n},ou=people,dc=hr\nobjectClass: inetOrgPerson\nuid: p{n}\ncn: P {n}\nsn: P\n\n"
            )
            .is_ok()
            {
                n += 1;
            }
            n
        }
    });
    let log = dir.join("cycle.stderr");
    let mut cycle = Background::start(&["cycle", "-c", &config.to_string_lossy()], &log);
    // Well into the import: some batches committed, the source still going.
    assert!(
        wait_for_log(&log, "import connector=hr", Duration::from_secs(60)),
        "{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(cycle.running(), "the cycle ended by itself");
    let asked = Instant::now();
    cycle.signal("TERM");
    let code = cycle.wait_for_exit(Duration::from_secs(15));
    let took = asked.elapsed();
    let written = writer.join().unwrap_or_default();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    eprintln!(
        "stopped {took:?} after SIGTERM, exit {code:?}, {written} entries written:\n{}",
        tail(&text)
    );
    assert!(code.is_some(), "still running 15 s after SIGTERM");
    assert_ne!(code, Some(0), "an interrupted cycle is not a success");
    assert!(text.contains("shutdown"), "{}", tail(&text));
}

/// Reads one BER-framed LDAP message from a client: (protocol-op tag, message id).
fn read_request(s: &mut std::net::TcpStream) -> Option<(u8, u8)> {
    use std::io::Read as _;
    let mut head = [0u8; 2];
    s.read_exact(&mut head).ok()?;
    let len = if head[1] < 0x80 {
        usize::from(head[1])
    } else {
        let mut n = vec![0u8; usize::from(head[1] & 0x7f)];
        s.read_exact(&mut n).ok()?;
        n.iter().fold(0usize, |a, b| (a << 8) | usize::from(*b))
    };
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).ok()?;
    // Body: INTEGER id (short), then the operation's tag.
    let id_len = usize::from(*body.get(1)?);
    Some((*body.get(2 + id_len)?, *body.get(2 + id_len - 1)?))
}

/// A hostile LDAP server on loopback: it accepts the bind, answers the first search with an
/// entry whose header announces 1 GiB, then sends zeros for as long as the client reads.
/// Returns its port and a handle giving how many bytes the client took.
fn hostile_ldap_server() -> (u16, std::thread::JoinHandle<u64>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").must("binding the hostile server");
    let port = listener.local_addr().must("its address").port();
    let handle = std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return 0;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
        let mut sent = 0u64;
        while let Some((op, id)) = read_request(&mut s) {
            match op {
                // bindRequest: success.
                0x60 => {
                    let ok = [
                        0x30, 0x0c, 0x02, 0x01, id, 0x61, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04,
                        0x00,
                    ];
                    if s.write_all(&ok).is_err() {
                        return sent;
                    }
                }
                // searchRequest: a 1 GiB entry, then zeros until the client hangs up.
                0x63 => {
                    let dn = b"cn=huge,dc=hostile,dc=test";
                    let mut head = vec![0x30, 0x84, 0x40, 0x00, 0x00, 0x00, 0x02, 0x01, id];
                    head.extend([0x64, 0x84, 0x3f, 0xff, 0xff, 0xf0, 0x04, dn.len() as u8]);
                    head.extend(dn);
                    if s.write_all(&head).is_err() {
                        return sent;
                    }
                    let zeros = vec![0u8; 1 << 16];
                    while sent < (1 << 30) && s.write_all(&zeros).is_ok() {
                        sent += zeros.len() as u64;
                    }
                    return sent;
                }
                _ => {}
            }
        }
        sent
    });
    (port, handle)
}

#[test]
fn safety_an_ldap_message_over_the_limit_is_refused_from_its_header() {
    let dir = TestDir::new("input-ldap-huge");
    let (port, server) = hostile_ldap_server();
    std::fs::write(dir.join("pw"), "secret\n").must("writing the password");
    let config = dir.join("bridgehead.toml");
    std::fs::write(
        &config,
        format!(
            r#"state_file = "{state}"

[[connector]]
name = "hostile"
type = "ldap"
url = "ldap://127.0.0.1:{port}"
danger_plaintext = true
bind_dn = "cn=reader,dc=hostile,dc=test"
bind_password_file = "{pw}"
base_dn = "dc=hostile,dc=test"
object_classes = ["inetOrgPerson"]
"#,
            state = dir.join("state.redb").display(),
            pw = dir.join("pw").display(),
        ),
    )
    .must("writing the config");
    let started = Instant::now();
    let r = run(&["cycle", "--full", "-c", &config.to_string_lossy()]);
    let took = started.elapsed();
    let sent = server
        .join()
        .unwrap_or_else(|_| panic!("the hostile server panicked"));
    eprintln!(
        "1 GiB message: exit {:?} after {took:?}, the client read {sent} bytes of zeros: {}",
        r.code(),
        r.stderr.trim()
    );
    r.expect_code(4);
    for w in [
        "1073741824 bytes",
        "cn=huge,dc=hostile,dc=test",
        "over the limit of 64 MiB",
    ] {
        assert!(r.stderr.contains(w), "{w}: {}", tail(&r.stderr));
    }
    // The body was never read: what the server could send is what the socket buffers hold
    // before the client hung up (a few MiB at most), not the gigabyte it announced.
    assert!(sent < 32 << 20, "the client read {sent} bytes");
    assert!(took < Duration::from_secs(20), "{took:?}");
}
