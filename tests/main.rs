//! One integration-test binary (Cargo builds each top-level file under `tests/` as its own
//! binary, so the tests live in modules below this one).
//!
//! - [`support`]: run the real binary; an independent LDIF reader/writer and DN normaliser;
//!   the demo rules applied by hand.
//! - [`e2e`]: the demo end to end, source edits, kill -9 recovery, signals, error reporting.
//! - [`architecture`]: the module lanes of STYLE.md, checked on the sources.
//! - [`engine`]: the sync engine through the library's API, no servers and no binary.

mod architecture;
mod e2e;
mod engine;
mod support;
