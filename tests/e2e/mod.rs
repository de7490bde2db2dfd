//! End-to-end tests against the real `bridgehead` binary, each in its own temp folder so
//! they run in parallel.

mod crash;
mod demo;
mod edit;
mod errors;
mod ldap_ad;
mod ldap_bench;
mod ldap_faults;
mod ldap_large_group;
mod ldap_scope;
mod ldap_slapd;
mod ldap_writeback;
mod scale_bench;
mod signals;
mod web_api;
mod web_browser;
mod web_client;
