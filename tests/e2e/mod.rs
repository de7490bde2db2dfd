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
mod nrt_ad;
mod nrt_bench;
mod nrt_lab;
mod nrt_scim;
mod nrt_slapd;
mod rules_ad;
mod rules_bench;
mod rules_forests;
mod rules_scim;
mod safety_backup;
mod safety_backup_bench;
mod safety_conflict;
mod safety_crash;
mod safety_lab;
mod safety_signals;
mod safety_staging;
mod safety_state_file;
mod safety_threshold;
mod scim;
mod scim_bench;
mod signals;
mod web_api;
mod web_browser;
mod web_client;
