//! The reader's size limits: an endless line, an endless fold and an endless entry each
//! end in an error naming the line, after reading little more than the limit.

use std::io::{BufReader, Read};

use super::*;

/// An endless source of one byte, counting what was read.
struct Endless {
    byte: u8,
    read: usize,
}

impl Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        buf.fill(self.byte);
        self.read += buf.len();
        Ok(buf.len())
    }
}

fn first_error(r: impl BufRead) -> LdifError {
    match LdifReader::new(r).find_map(Result::err) {
        Some(e) => e,
        None => panic!("no error"),
    }
}

#[test]
fn an_endless_line_fails_at_line_one_after_the_limit() {
    let mut zero = Endless { byte: 0, read: 0 };
    let e = first_error(BufReader::new(&mut zero));
    assert_eq!(e.line, 1);
    assert!(e.reason.contains("longer than 16 MiB"), "{e}");
    assert!(zero.read < MAX_LINE_BYTES + (1 << 20), "read {}", zero.read);
}

#[test]
fn an_endless_fold_fails_at_the_line_it_continues() {
    let mut input = b"version: 1\n\ndn: cn=a,dc=x\ndescription: x\n".to_vec();
    let fold = vec![b' '; 1 << 20];
    for _ in 0..20 {
        input.extend_from_slice(&fold[..fold.len() - 1]);
        input.push(b'\n');
    }
    let e = first_error(input.as_slice());
    assert_eq!(e.line, 4, "{e}");
    assert!(e.reason.contains("longer than"), "{e}");
}

#[test]
fn an_entry_with_too_many_values_fails_at_its_dn() {
    let mut input = b"dn: cn=big,dc=x\n".to_vec();
    for _ in 0..=MAX_ENTRY_VALUES {
        input.extend_from_slice(b"m: 1\n");
    }
    let e = first_error(input.as_slice());
    assert_eq!(e.line, 1, "{e}");
    assert!(e.reason.contains("values"), "{e}");
}
