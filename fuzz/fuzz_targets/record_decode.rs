//! Any bytes as a stored record: decoding never panics and never allocates past what the
//! bytes can hold (postcard checks lengths against the input).
#![no_main]

use bridgehead::store::records::decode;
use bridgehead::store::{CsRecord, MvRecord, RunRecord};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = decode::<CsRecord>(data);
    let _ = decode::<MvRecord>(data);
    let _ = decode::<RunRecord>(data);
    // A record that decodes encodes back to something that decodes the same.
    if let Ok(rec) = decode::<CsRecord>(data) {
        let again = bridgehead::store::records::encode(&rec);
        assert_eq!(decode::<CsRecord>(&again).ok(), Some(rec));
    }
});
