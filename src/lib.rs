//! Bridgehead: an identity-sync appliance.
//!
//! ```text
//! directory ─import→ connector space ─inbound sync→ metaverse ─outbound sync→ connector space ─export→ directory
//! ```
//!
//! - [`model`]: the vocabulary (names, values, DNs, anchors, objects, changes).
//! - [`rules`]: inbound and outbound sync rules.
//! - [`config`]: the TOML file turned into typed, checked values.
//! - [`store`]: the redb state file; the only code that touches redb.
//! - [`connector`]: one protocol each; import changes, apply exports.
//! - [`sync`]: inbound and outbound sync over one store transaction.
//! - [`runner`]: run profiles, the cycle and the scheduler; where connectors meet the store.
//! - [`web`]: the HTTPS status page, JSON API and metrics; reads snapshots, asks the runner.
//! - [`agent`]: lightweight agents: enrolment, trust and the channel to the appliance.
//! - [`cli`]: the command line, the composition root.

pub mod agent;
pub mod cli;
pub mod config;
pub mod connector;
pub mod model;
pub mod rules;
pub mod runner;
pub mod store;
pub mod sync;
pub mod web;
