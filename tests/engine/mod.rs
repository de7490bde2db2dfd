//! The engine's parts through the library's public API, without servers or the binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod sync;
