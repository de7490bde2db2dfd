//! Any bytes as an LDIF file: the reader yields entries or an error naming a line, and
//! never panics.
#![no_main]

use bridgehead::connector::ldif::format::LdifReader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for entry in LdifReader::new(data) {
        match entry {
            Ok(e) => assert!(e.line >= 1),
            Err(e) => {
                assert!(e.line >= 1);
                break;
            }
        }
    }
});
