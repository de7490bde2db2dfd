//! End-to-end tests against the real `bridgehead` binary, each in its own temp folder so
//! they run in parallel.

mod crash;
mod demo;
mod edit;
mod errors;
mod signals;
