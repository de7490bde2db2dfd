//! `bridgehead sync-object` from a real Samba AD into a real slapd and a real
//! scim2-server at once: one changed user goes through import, sync and export in one call
//! while another changed user waits for the next cycle; the report names the scope
//! verdict, the join, each attribute's source and each export with the directory's
//! answer; `--dry-run` writes nothing (slapd's own op log, the SCIM server's request log);
//! while a cycle holds the state file, it waits and then runs.

use std::time::Duration;

use serde_json::Value as Json;

use crate::support::lab::samba::{self, Forest};
use crate::support::lab::scim::{self, ScimServer};
use crate::support::lab::slapd::{self, Slapd, SlapdOptions};
use crate::support::lab::{LdapServer, Scope};
use crate::support::{Background, Must, TestDir, cycle_json, norm_dn, run, wait_for_log};

fn config(dir: &TestDir, f: &Forest, ou: &str, t: &Slapd, scim_url: &str) -> std::path::PathBuf {
    let text = format!(
        r#"state_file = "state.redb"

[[connector]]
name = "corp"
type = "ad"
url = "{url}"
ca_file = "{ca}"
bind_dn = "{bind}"
bind_password_file = "{pw}"
base_dn = "{base}"
include_ous = ["{ou}"]

[[connector]]
name = "ldapt"
type = "ldap"
url = "{turl}"
starttls = true
ca_file = "{tca}"
bind_dn = "{tbind}"
bind_password_file = "{tpw}"
base_dn = "{tbase}"

[[connector]]
name = "cloud"
type = "scim"
url = "{scim_url}"
danger_plaintext = true
timeout = "60s"

[[inbound]]
name = "corp-users"
connector = "corp"
object_class = "user"
object_type = "person"
precedence = 10
flows = [
  {{ target = "sourceAnchor", source = "objectGUID" }},
  {{ target = "uid", source = "sAMAccountName" }},
  {{ target = "cn", source = "cn" }},
  {{ target = "sn", source = "sn" }},
  {{ target = "title", source = "title" }},
  {{ target = "userPrincipalName", source = "userPrincipalName" }},
]

[[outbound]]
name = "ldapt-people"
connector = "ldapt"
object_type = "person"
object_class = "inetOrgPerson"
dn = "uid={{uid}},{tbase}"
flows = [
  {{ target = "uid", source = "uid" }},
  {{ target = "cn", source = "cn" }},
  {{ target = "sn", source = "sn" }},
  {{ target = "title", source = "title" }},
]

[[outbound]]
name = "cloud-users"
connector = "cloud"
object_type = "person"
object_class = "User"
dn = "externalId={{sourceAnchor}},ou=Users"
flows = [
  {{ target = "externalId", source = "sourceAnchor" }},
  {{ target = "userName", source = "userPrincipalName" }},
  {{ target = "displayName", source = "cn" }},
  {{ target = "title", source = "title" }},
]
"#,
        url = f.ldaps_url,
        ca = f.ca_file.display(),
        bind = f.bind_dn,
        pw = f.password_file.display(),
        base = f.base_dn,
        turl = t.ldap_url,
        tca = t.ca_file.display(),
        tbind = t.bind_dn,
        tpw = t.password_file.display(),
        tbase = t.base_dn,
    );
    let path = dir.config();
    std::fs::write(&path, text).must("writing the config");
    path
}

fn set_title(f: &Forest, dn: &str, title: &str) {
    f.ldapmodify(&format!(
        "dn: {dn}\nchangetype: modify\nreplace: title\ntitle: {title}\n-\n"
    ));
}

fn slapd_title(t: &Slapd, uid: &str) -> Option<String> {
    t.ldapsearch(&t.base_dn, Scope::One, &format!("(uid={uid})"), &["title"])
        .first()
        .and_then(|e| e.first("title"))
}

fn scim_title(s: &ScimServer, user_name: &str) -> Option<String> {
    s.all("/Users")
        .into_iter()
        .find(|u| u["userName"] == user_name)
        .and_then(|u| u["title"].as_str().map(str::to_string))
}

/// Writes the SCIM server answered, and slapd's successful writes, since the marks.
fn writes_since(t: &Slapd, s: &ScimServer, marks: (usize, usize)) -> (usize, usize) {
    let ldap = t.logged_writes()[marks.0..]
        .iter()
        .filter(|w| w.rc == 0)
        .count();
    let scim = s.requests()[marks.1..]
        .iter()
        .filter(|(m, _, _)| m != "GET")
        .count();
    (ldap, scim)
}

#[test]
fn console_sync_object_from_samba_into_slapd_and_scim_in_one_call() {
    let corp = samba::corp();
    let _hold = corp.hold();
    let t = slapd::start(SlapdOptions::default());
    let s = scim::start();
    let scim_url = format!("http://127.0.0.1:{}/v2", s.port);
    let ou = corp.create_ou("e2e-sync-object");
    let people = [("Ann", "so-ann"), ("Bob", "so-bob"), ("Cy", "so-cy")];
    for (cn, sam) in people {
        corp.ldapadd(&format!(
            "dn: CN={cn},{ou}\nobjectClass: user\ncn: {cn}\nsn: {cn}\nsAMAccountName: {sam}\n\
             userPrincipalName: {sam}@corp.example.test\ntitle: Start\n"
        ));
    }
    let dir = TestDir::new("sync-object");
    let cfg = config(&dir, corp, &ou, &t, &scim_url);
    let c = cfg.to_string_lossy().into_owned();
    cycle_json(&cfg, false).ok();
    assert_eq!(slapd_title(&t, "so-ann").as_deref(), Some("Start"));
    assert_eq!(
        scim_title(&s, "so-ann@corp.example.test").as_deref(),
        Some("Start")
    );

    // Ann and Bob change; a dry run of Ann imports and syncs, and writes nothing.
    let ann = format!("CN=Ann,{ou}");
    set_title(corp, &ann, "Chief");
    set_title(corp, &format!("CN=Bob,{ou}"), "Deputy");
    let marks = (t.logged_writes().len(), s.requests().len());
    let dry = run(&[
        "sync-object",
        "-c",
        &c,
        "--connector",
        "corp",
        "--dn",
        &ann,
        "--dry-run",
        "--json",
    ]);
    dry.ok();
    let report: Json = dry.json();
    assert_eq!(report["dry_run"], true, "{report}");
    let exports = report["exports"].as_array().must("exports");
    assert_eq!(exports.len(), 2, "{report}");
    assert!(
        exports
            .iter()
            .all(|e| e["result"] == "not exported: --dry-run"),
        "{report}"
    );
    assert_eq!(writes_since(&t, &s, marks), (0, 0), "a dry run wrote");
    assert_eq!(slapd_title(&t, "so-ann").as_deref(), Some("Start"));

    // The real call: Ann reaches both targets, Bob does not.
    let marks = (t.logged_writes().len(), s.requests().len());
    let done = run(&[
        "sync-object",
        "-c",
        &c,
        "--connector",
        "corp",
        "--dn",
        &ann,
        "--json",
    ]);
    done.ok();
    let report: Json = done.json();
    assert_eq!(report["found"], true, "{report}");
    assert_eq!(report["rules"][0]["rule"], "corp-users", "{report}");
    assert_eq!(report["rules"][0]["in_scope"], true, "{report}");
    assert!(
        report["decision"]
            .as_str()
            .is_some_and(|d| d.starts_with("stays joined")),
        "{report}"
    );
    let title = report["attributes"]
        .as_array()
        .must("attributes")
        .iter()
        .find(|a| a["name"] == "title")
        .must("the title attribute")
        .clone();
    assert_eq!(title["values"][0], "Chief");
    assert_eq!(
        (title["connector"].clone(), title["rule"].clone()),
        ("corp".into(), "corp-users".into())
    );
    let exports = report["exports"].as_array().must("exports");
    let mut targets: Vec<&str> = exports
        .iter()
        .map(|e| e["connector"].as_str().unwrap_or_default())
        .collect();
    targets.sort();
    assert_eq!(targets, ["cloud", "ldapt"], "{report}");
    for e in exports {
        assert_eq!(
            (e["op"].clone(), e["applied"].clone()),
            ("update".into(), true.into()),
            "{report}"
        );
        assert_eq!(e["result"], "applied", "{report}");
    }
    assert_eq!(
        norm_dn(
            exports
                .iter()
                .find(|e| e["connector"] == "ldapt")
                .must("ldapt")["dn"]
                .as_str()
                .unwrap_or_default()
        ),
        norm_dn(&format!("uid=so-ann,{}", t.base_dn))
    );
    assert_eq!(
        writes_since(&t, &s, marks),
        (1, 1),
        "one write to each target"
    );
    assert_eq!(slapd_title(&t, "so-ann").as_deref(), Some("Chief"));
    assert_eq!(
        scim_title(&s, "so-ann@corp.example.test").as_deref(),
        Some("Chief")
    );
    assert_eq!(slapd_title(&t, "so-bob").as_deref(), Some("Start"));
    assert_eq!(
        scim_title(&s, "so-bob@corp.example.test").as_deref(),
        Some("Start")
    );
    // The text report says the same.
    let text = run(&["sync-object", "-c", &c, "--connector", "corp", "--dn", &ann]);
    text.ok();
    assert!(
        text.stdout.contains("rule \"corp-users\": in scope"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("title: Chief  [corp / corp-users]"),
        "{}",
        text.stdout
    );

    // While a cycle holds the state file (stuck on a frozen SCIM service), it waits.
    set_title(corp, &format!("CN=Cy,{ou}"), "Third");
    s.pause();
    let cycle_log = dir.join("cycle.stderr");
    let mut cycle = Background::start(&["cycle", "-c", &c], &cycle_log);
    assert!(
        wait_for_log(&cycle_log, "import connector=corp", Duration::from_secs(30)),
        "the cycle did not start"
    );
    let one_log = dir.join("one.stderr");
    let cy = format!("CN=Cy,{ou}");
    let mut one = Background::start(
        &["sync-object", "-c", &c, "--connector", "corp", "--dn", &cy],
        &one_log,
    );
    assert!(
        wait_for_log(&one_log, "waiting: the state file", Duration::from_secs(30)),
        "sync-object did not wait: {}",
        std::fs::read_to_string(&one_log).unwrap_or_default()
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(one.running() && cycle.running(), "it ran beside the cycle");
    s.resume();
    assert_eq!(cycle.wait_for_exit(Duration::from_secs(90)), Some(0));
    assert_eq!(
        one.wait_for_exit(Duration::from_secs(90)),
        Some(0),
        "{}",
        std::fs::read_to_string(&one_log).unwrap_or_default()
    );
    assert_eq!(slapd_title(&t, "so-cy").as_deref(), Some("Third"));
    assert_eq!(
        scim_title(&s, "so-cy@corp.example.test").as_deref(),
        Some("Third")
    );
}

/// A SCIM source (the one resource read by its id) into an LDIF target.
#[test]
fn console_sync_object_reads_one_resource_from_a_scim_source() {
    let s = scim::start();
    let user = |name: &str, ext: &str| {
        s.create(
            "/Users",
            &serde_json::json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": name,
                "externalId": ext,
                "title": "Start",
            }),
        )
    };
    let a = user("scim-a", "ext-a");
    user("scim-b", "ext-b");
    let dir = TestDir::new("sync-object-scim");
    let cfg = dir.config();
    std::fs::write(
        &cfg,
        format!(
            r#"state_file = "state.redb"

[[connector]]
name = "cloud"
type = "scim"
url = "http://127.0.0.1:{port}/v2"
danger_plaintext = true

[[connector]]
name = "out"
type = "ldif"
mode = "target"
path = "out.ldif"
anchor = "entryUUID"

[[inbound]]
name = "cloud-users"
connector = "cloud"
object_class = "User"
object_type = "person"
precedence = 10
flows = [ {{ target = "uid", source = "userName" }}, {{ target = "title", source = "title" }} ]

[[outbound]]
name = "out-people"
connector = "out"
object_type = "person"
object_class = "inetOrgPerson"
dn = "uid={{uid}},o=t"
flows = [ {{ target = "uid", source = "uid" }}, {{ target = "title", source = "title" }} ]
"#,
            port = s.port
        ),
    )
    .must("writing the config");
    cycle_json(&cfg, false).ok();
    let id = a["id"].as_str().must("the id").to_string();
    for (who, ext) in [(&id, "a"), (&String::new(), "b")] {
        let target = if who.is_empty() {
            s.all("/Users")
                .into_iter()
                .find(|u| u["externalId"] == "ext-b")
                .and_then(|u| u["id"].as_str().map(str::to_string))
                .must("b's id")
        } else {
            who.clone()
        };
        let r = s.request(
            "PATCH",
            &format!("/Users/{target}"),
            Some(&serde_json::json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "title", "value": format!("New {ext}")}],
            })),
        );
        assert!(r.status == 200 || r.status == 204, "{:?}", r.json);
    }
    let c = cfg.to_string_lossy().into_owned();
    let done = run(&[
        "sync-object",
        "-c",
        &c,
        "--connector",
        "cloud",
        "--dn",
        "externalId=ext-a,ou=Users",
        "--json",
    ]);
    done.ok();
    let report: Json = done.json();
    assert_eq!(report["found"], true, "{report}");
    assert_eq!(report["import"]["updates"], 1, "{report}");
    assert_eq!(report["exports"][0]["result"], "applied", "{report}");
    let out = std::fs::read_to_string(dir.join("out.ldif")).must("reading out.ldif");
    assert!(out.contains("title: New a"), "{out}");
    assert!(
        !out.contains("title: New b"),
        "only the one resource went: {out}"
    );
    // By anchor (the SCIM id) it is the same object.
    let again = run(&[
        "sync-object",
        "-c",
        &c,
        "--connector",
        "cloud",
        "--anchor",
        &id,
    ]);
    again.ok();
    assert!(again.stdout.contains("exports: none"), "{}", again.stdout);
}
