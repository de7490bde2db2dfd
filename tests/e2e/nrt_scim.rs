//! Near-real-time into a cloud directory: with the schedule set to hours, a modify on Samba
//! AD reaches a real SCIM service (scim2-server) through the change-notification watch
//! alone, and keeps arriving after Samba restarts (the notification connection killed
//! server-side).

use std::time::Duration;

use super::nrt_lab::{Daemon, ad_user, set_description, wait_for_value};
use crate::support::lab::scim::{self, ScimServer};
use crate::support::lab::{LdapServer, samba};
use crate::support::{Must, TestDir};

/// The issue's bound for a change to travel with no scheduled cycle.
const LIMIT: Duration = Duration::from_secs(30);

/// The SCIM service's `title` of the user `user_name` (None: no such user or no title).
/// Read with a plain HTTP GET, not through the connector.
pub(super) fn scim_title(server: &ScimServer, user_name: &str) -> Option<String> {
    let filter = format!("userName%20eq%20%22{user_name}%22");
    let r = server
        .try_request("GET", &format!("/Users?filter={filter}"), None)
        .ok()?;
    r.json["Resources"][0]["title"].as_str().map(str::to_string)
}

/// Samba AD (its OU `ad_ou`, watched) → the SCIM service at `scim_url`; people's
/// description becomes their SCIM title.
pub(super) fn config(ad: &samba::Forest, ad_ou: &str, scim_url: &str) -> String {
    format!(
        r#"state_file = "state.redb"

[schedule]
interval = "6h"

[web]
enabled = false

[[connector]]
name = "src"
type = "ad"
url = "{url}"
ca_file = "{ca}"
bind_dn = "{bind}"
bind_password_file = "{pw}"
base_dn = "{base}"
include_ous = ["{ad_ou}"]
object_classes = ["user"]
watch = true
watch_window = "1s"

[[connector]]
name = "cloud"
type = "scim"
url = "{scim}"
danger_plaintext = true

[[inbound]]
name = "people"
connector = "src"
object_class = "user"
object_type = "person"
precedence = 10
flows = [
  {{ target = "uid", source = "sAMAccountName" }},
  {{ target = "sn", source = "sn" }},
  {{ target = "description", source = "description" }},
]

[[outbound]]
name = "to-cloud"
connector = "cloud"
object_type = "person"
object_class = "User"
dn = "externalId={{uid}},ou=Users"
deprovision = "delete"
flows = [
  {{ target = "externalId", source = "uid" }},
  {{ target = "userName", source = "uid" }},
  {{ target = "name.familyName", source = "sn" }},
  {{ target = "title", source = "description" }},
]
"#,
        url = ad.ldaps_url,
        ca = ad.ca_file.display(),
        bind = ad.bind_dn,
        pw = ad.password_file.display(),
        base = ad.base_dn,
        scim = scim_url,
    )
}

#[test]
fn nrt_scim_ad_modify_reaches_the_scim_service_and_survives_a_samba_restart() {
    let ad = samba::corp();
    let _up = ad.hold();
    let server = scim::start();
    let ad_ou = ad.create_ou("nrt-scim");
    ad.ldapadd(&ad_user(&ad_ou, "nrt-scim-ann", "first"));
    let ann = format!("CN=nrt-scim-ann,{ad_ou}");

    let dir = TestDir::new("nrt-scim");
    let config = config(ad, &ad_ou, &server.url);
    std::fs::write(dir.config(), config).must("writing the config");
    let daemon = Daemon::start(&dir, &dir.config());
    let read = || scim_title(&server, "nrt-scim-ann");
    assert_eq!(
        read().as_deref(),
        Some("first"),
        "the first cycle exported ann"
    );

    ad.ldapmodify(&set_description(&ann, "second"));
    let took = wait_for_value(LIMIT, "second", read)
        .unwrap_or_else(|e| panic!("{e}; log:\n{}", daemon.text()));
    eprintln!("AD modify visible in the SCIM service after {took:?}");

    daemon.restart_under(ad);
    ad.ldapmodify(&set_description(&ann, "third"));
    let took = wait_for_value(LIMIT, "third", read)
        .unwrap_or_else(|e| panic!("{e}; log:\n{}", daemon.text()));
    eprintln!("AD modify after the restart visible in the SCIM service after {took:?}");

    let log = daemon.stop();
    assert_eq!(
        log.matches("scheduled cycle finished").count(),
        1,
        "only the watch carried the changes; log:\n{log}"
    );
}
