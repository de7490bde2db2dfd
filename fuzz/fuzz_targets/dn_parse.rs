//! Any text as a DN: parsing never panics, and a parsed DN prints as text that parses to
//! the same normalised DN.
#![no_main]

use bridgehead::model::Dn;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(dn) = Dn::parse(text) {
        let again = Dn::parse(&dn.to_string()).expect("a printed DN parses");
        assert_eq!(again.norm(), dn.norm());
    }
});
