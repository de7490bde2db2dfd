//! What the near-real-time tests and benchmarks share: configs (Samba AD or slapd source in
//! `watch` mode → slapd target, schedule set to hours), a running `bridgehead run`, and the
//! one function that reads a value from the target (a SCIM variant replaces just that).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::lab::samba::Forest;
use crate::support::lab::slapd::Slapd;
use crate::support::lab::{LdapServer, Scope};
use crate::support::{Background, Must, TestDir, wait_for_log};

/// The scheduled cycle never comes during a test: only the watch can carry a change.
const INTERVAL: &str = "6h";

/// The people that flow from the source to the target, and the target side.
fn rules(src_class: &str, uid_attr: &str, target_ou: &str) -> String {
    format!(
        r#"
[[inbound]]
name = "people"
connector = "src"
object_class = "{src_class}"
object_type = "person"
precedence = 10
join = [[ {{ cs = "{uid_attr}", mv = "uid" }} ]]
flows = [
  {{ target = "uid", source = "{uid_attr}" }},
  {{ target = "cn", source = "cn" }},
  {{ target = "sn", source = "sn" }},
  {{ target = "description", source = "description" }},
]

[[outbound]]
name = "to-target"
connector = "target"
object_type = "person"
object_class = "inetOrgPerson"
dn = "uid={{uid}},{target_ou}"
deprovision = "delete"
flows = [
  {{ target = "uid", source = "uid" }},
  {{ target = "cn", source = "cn" }},
  {{ target = "sn", source = "sn" }},
  {{ target = "description", source = "description" }},
]
"#
    )
}

/// The slapd target connector over its OU.
fn target_connector(target: &Slapd, target_ou: &str) -> String {
    format!(
        r#"
[[connector]]
name = "target"
type = "ldap"
url = "{url}"
starttls = true
ca_file = "{ca}"
bind_dn = "{bind}"
bind_password_file = "{pw}"
base_dn = "{base}"
include_ous = ["{target_ou}"]
"#,
        url = target.ldap_url,
        ca = target.ca_file.display(),
        bind = target.bind_dn,
        pw = target.password_file.display(),
        base = target.base_dn,
    )
}

fn head() -> String {
    format!(
        "state_file = \"state.redb\"\n\n[schedule]\ninterval = \"{INTERVAL}\"\n\n[web]\nenabled = false\n"
    )
}

/// Samba AD (its OU `ad_ou`, watched) → slapd target (its OU `target_ou`).
pub(super) fn ad_config(
    dir: &TestDir,
    ad: &Forest,
    ad_ou: &str,
    target: &Slapd,
    target_ou: &str,
) -> PathBuf {
    let text = format!(
        r#"{head}
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
{target}{rules}"#,
        head = head(),
        url = ad.ldaps_url,
        ca = ad.ca_file.display(),
        bind = ad.bind_dn,
        pw = ad.password_file.display(),
        base = ad.base_dn,
        target = target_connector(target, target_ou),
        rules = rules("user", "sAMAccountName", target_ou),
    );
    let path = dir.config();
    std::fs::write(&path, text).must("writing the config");
    path
}

/// slapd source (its OU `src_ou`, watched with refreshAndPersist) → slapd target.
pub(super) fn slapd_config(
    dir: &TestDir,
    src: &Slapd,
    src_ou: &str,
    target: &Slapd,
    target_ou: &str,
) -> PathBuf {
    let text = format!(
        r#"{head}
[[connector]]
name = "src"
type = "ldap"
url = "{url}"
starttls = true
ca_file = "{ca}"
bind_dn = "{bind}"
bind_password_file = "{pw}"
base_dn = "{base}"
include_ous = ["{src_ou}"]
object_classes = ["inetOrgPerson"]
watch = true
watch_window = "1s"
{target}{rules}"#,
        head = head(),
        url = src.ldap_url,
        ca = src.ca_file.display(),
        bind = src.bind_dn,
        pw = src.password_file.display(),
        base = src.base_dn,
        target = target_connector(target, target_ou),
        rules = rules("inetOrgPerson", "uid", target_ou),
    );
    let path = dir.config();
    std::fs::write(&path, text).must("writing the config");
    path
}

/// A `bridgehead run` daemon and its log.
pub(super) struct Daemon {
    pub(super) process: Background,
    pub(super) log: PathBuf,
}

impl Daemon {
    /// Starts `run` and waits until the first (scheduled) cycle is done and the watch is
    /// established.
    pub(super) fn start(dir: &TestDir, config: &Path) -> Daemon {
        let log = dir.join("run.stderr");
        let config = config.to_string_lossy().into_owned();
        let process = Background::start(&["run", "-c", &config], &log);
        let d = Daemon { process, log };
        d.wait_log("scheduled cycle finished", Duration::from_secs(120));
        d.wait_log("watching for changes", Duration::from_secs(30));
        d
    }

    /// The log so far.
    pub(super) fn text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `needle`; panics with the log otherwise.
    pub(super) fn wait_log(&self, needle: &str, limit: Duration) {
        assert!(
            wait_for_log(&self.log, needle, limit),
            "the daemon never logged {needle:?} within {limit:?}; log:\n{}",
            self.text()
        );
    }

    /// Restarts Samba under the daemon (its notification connection killed server-side)
    /// and waits until the watch is lost and re-established.
    pub(super) fn restart_under(&self, ad: &Forest) {
        {
            let _alone = ad.exclusive();
            ad.stop();
            self.wait_log("watch lost", Duration::from_secs(30));
            ad.start();
        }
        self.wait_log("watch re-established", Duration::from_secs(60));
    }

    /// SIGTERM, and the exit within 10 s with code 0.
    pub(super) fn stop(mut self) -> String {
        self.process.signal("TERM");
        let code = self.process.wait_for_exit(Duration::from_secs(10));
        let text = self.text();
        assert_eq!(
            code,
            Some(0),
            "run must stop within 10 s of SIGTERM; log:\n{text}"
        );
        text
    }
}

/// The target's value of `attr` on the person `uid` (None: no such person or no value).
/// This is the one place a test reads the target.
pub(super) fn slapd_value(
    target: &Slapd,
    target_ou: &str,
    uid: &str,
    attr: &str,
) -> Option<String> {
    target
        .tools()
        .try_search(target_ou, Scope::Sub, &format!("(uid={uid})"), &[attr])
        .ok()?
        .first()?
        .first(attr)
}

/// Polls `read` until it returns `want`, as fast as the tool allows; the time it took.
pub(super) fn wait_for_value(
    limit: Duration,
    want: &str,
    mut read: impl FnMut() -> Option<String>,
) -> Result<Duration, String> {
    let start = Instant::now();
    let mut last = None;
    while start.elapsed() < limit {
        last = read();
        if last.as_deref() == Some(want) {
            return Ok(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Err(format!(
        "after {limit:?} the target holds {last:?}, not {want:?}"
    ))
}

/// An AD user under `ou` with a description.
pub(super) fn ad_user(ou: &str, sam: &str, description: &str) -> String {
    format!(
        "dn: CN={sam},{ou}\nobjectClass: user\nsAMAccountName: {sam}\ncn: {sam}\nsn: {sam}\ndescription: {description}\n\n"
    )
}

/// An inetOrgPerson under `ou` with a description.
pub(super) fn ldap_person(ou: &str, uid: &str, description: &str) -> String {
    format!(
        "dn: uid={uid},{ou}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\ndescription: {description}\n\n"
    )
}

/// One modify that replaces `description` on `dn`.
pub(super) fn set_description(dn: &str, value: &str) -> String {
    format!("dn: {dn}\nchangetype: modify\nreplace: description\ndescription: {value}\n-\n\n")
}
