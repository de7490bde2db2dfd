//! The `scim` connector against a real, independent SCIM service (scim2-server from PyPI):
//! provisioning read back with plain HTTP, PATCHes of exactly what changed (counted from
//! the server's log and a recording proxy), deletes and disables, soft match, conflicts,
//! throttling and a service that hangs mid-export.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value as Json, json};

use crate::support::lab::scim::{self, Proxy, ScimServer};
use crate::support::{Must, TestDir, connector_counts, run};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// A source person.
#[derive(Clone)]
pub struct Person {
    pub n: usize,
    pub given: String,
    pub sn: String,
    pub department: String,
    pub title: String,
    pub disabled: bool,
    pub manager: Option<usize>,
    pub upn: Option<String>,
}

impl Person {
    pub fn new(n: usize) -> Person {
        Person {
            n,
            given: if n % 7 == 3 {
                "Åsa".into()
            } else {
                format!("Given{n}")
            },
            sn: format!("Surname{n}"),
            department: ["Sales", "R&D", "Finance"][n % 3].into(),
            title: format!("Title {}", n % 5),
            disabled: n % 10 == 9,
            manager: if n > 0 { Some(n / 4) } else { None },
            upn: None,
        }
    }

    pub fn upn(&self) -> String {
        self.upn
            .clone()
            .unwrap_or_else(|| format!("user{}@corp.example.test", self.n))
    }
}

/// A source group: name and member indexes (people, then groups by name).
#[derive(Clone)]
pub struct Group {
    pub name: String,
    pub people: Vec<usize>,
    pub groups: Vec<String>,
}

fn guid(kind: u8, n: usize) -> Vec<u8> {
    let mut g = vec![kind; 16];
    g[..8].copy_from_slice(&(n as u64).to_le_bytes());
    g
}

/// The sourceAnchor (externalId) of person `n` / group `name`.
pub fn person_anchor(n: usize) -> String {
    base64::engine::general_purpose::STANDARD.encode(guid(0xA1, n))
}

fn group_index(name: &str) -> usize {
    name.bytes()
        .fold(7usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize))
        % 1_000_000
}

pub fn group_anchor(name: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(guid(0xB2, group_index(name)))
}

fn person_dn(n: usize) -> String {
    format!("CN=User {n},OU=People,DC=corp,DC=example,DC=test")
}

fn group_dn(name: &str) -> String {
    format!("CN={name},OU=Groups,DC=corp,DC=example,DC=test")
}

/// The source directory as LDIF, shaped like an AD export.
pub fn source_ldif(people: &[Person], groups: &[Group]) -> String {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let mut out = String::from("version: 1\n");
    for p in people {
        let _ = write!(
            out,
            "\ndn: {}\nobjectClass: top\nobjectClass: person\nobjectClass: user\nobjectGUID:: {}\n\
             cn: User {}\nsAMAccountName: user{}\nuserPrincipalName: {}\ngivenName:: {}\nsn: {}\n\
             displayName:: {}\nmail: {}\ndepartment: {}\ntitle: {}\nemployeeID: E{:05}\n\
             userAccountControl: {}\n",
            person_dn(p.n),
            b64(&guid(0xA1, p.n)),
            p.n,
            p.n,
            p.upn(),
            b64(p.given.as_bytes()),
            p.sn,
            b64(format!("{} {}", p.given, p.sn).as_bytes()),
            p.upn(),
            p.department,
            p.title,
            p.n,
            if p.disabled { 514 } else { 512 },
        );
        if let Some(m) = p.manager {
            if people.iter().any(|q| q.n == m) {
                let _ = writeln!(out, "manager: {}", person_dn(m));
            }
        }
    }
    for g in groups {
        let _ = write!(
            out,
            "\ndn: {}\nobjectClass: top\nobjectClass: group\nobjectGUID:: {}\ncn: {}\n",
            group_dn(&g.name),
            b64(&guid(0xB2, group_index(&g.name))),
            g.name
        );
        for m in &g.people {
            let _ = writeln!(out, "member: {}", person_dn(*m));
        }
        for m in &g.groups {
            let _ = writeln!(out, "member: {}", group_dn(m));
        }
    }
    out
}

/// A config: the LDIF source `hr` and the SCIM target `cloud` at `url`.
pub fn config(url: &str, cloud_extra: &str, user_rule_extra: &str) -> String {
    format!(
        r#"state_file = "state.redb"
log_dir = "logs"

[schedule]
interval = "1h"

[[connector]]
name = "hr"
type = "ldif"
mode = "source"
path = "hr.ldif"
anchor = "objectGUID"
partitions = ["DC=corp,DC=example,DC=test"]

[[connector]]
name = "cloud"
type = "scim"
url = "{url}"
danger_plaintext = true
{cloud_extra}

[[inbound]]
name = "people"
connector = "hr"
object_class = "user"
object_type = "person"
precedence = 10
flows = [
  {{ target = "sourceAnchor", source = "objectGUID" }},
  {{ target = "userPrincipalName", source = "userPrincipalName" }},
  {{ target = "givenName", source = "givenName" }},
  {{ target = "sn", source = "sn" }},
  {{ target = "displayName", source = "displayName" }},
  {{ target = "mail", source = "mail" }},
  {{ target = "department", source = "department" }},
  {{ target = "title", source = "title" }},
  {{ target = "employeeID", source = "employeeID" }},
  {{ target = "manager", source = "manager" }},
  {{ target = "accountEnabled", expression = "BitAnd([userAccountControl], 2) = 0" }},
]

[[inbound]]
name = "groups"
connector = "hr"
object_class = "group"
object_type = "group"
precedence = 10
flows = [
  {{ target = "sourceAnchor", source = "objectGUID" }},
  {{ target = "cn", source = "cn" }},
  {{ target = "member", source = "member" }},
]

[[outbound]]
name = "cloud-users"
connector = "cloud"
object_type = "person"
object_class = "User"
dn = "externalId={{sourceAnchor}},ou=Users"
deprovision = "delete"
{user_rule_extra}
flows = [
  {{ target = "externalId", source = "sourceAnchor" }},
  {{ target = "userName", source = "userPrincipalName" }},
  {{ target = "displayName", source = "displayName" }},
  {{ target = "name.givenName", source = "givenName" }},
  {{ target = "name.familyName", source = "sn" }},
  {{ target = 'emails[type eq "work"].value', source = "mail" }},
  {{ target = "title", source = "title" }},
  {{ target = "active", source = "accountEnabled" }},
  {{ target = "{ENTERPRISE}:department", source = "department" }},
  {{ target = "{ENTERPRISE}:employeeNumber", source = "employeeID" }},
  {{ target = "{ENTERPRISE}:manager", source = "manager" }},
]

[[outbound]]
name = "cloud-groups"
connector = "cloud"
object_type = "group"
object_class = "Group"
dn = "externalId={{sourceAnchor}},ou=Groups"
deprovision = "delete"
flows = [
  {{ target = "externalId", source = "sourceAnchor" }},
  {{ target = "displayName", source = "cn" }},
  {{ target = "members", source = "member" }},
]
"#
    )
}

/// A test folder with the config and source written.
pub fn setup(name: &str, url: &str, people: &[Person], groups: &[Group]) -> TestDir {
    setup_with(name, &config(url, "", ""), people, groups)
}

pub fn setup_with(name: &str, cfg: &str, people: &[Person], groups: &[Group]) -> TestDir {
    let dir = TestDir::new(name);
    std::fs::write(dir.config(), cfg).must("writing the config");
    std::fs::write(dir.join("hr.ldif"), source_ldif(people, groups)).must("writing hr.ldif");
    dir
}

/// `bridgehead cycle --json` with its exit code and JSON.
pub fn cycle(dir: &TestDir) -> (Option<i32>, Json) {
    let config = dir.config();
    let r = run(&["cycle", "-c", &config.to_string_lossy(), "--json"]);
    let json = serde_json::from_str(r.stdout.trim()).unwrap_or(Json::Null);
    (r.code(), json)
}

/// Users by externalId (the attributes compared), and groups by externalId: display
/// name and member externalIds.
type Content = (
    BTreeMap<String, Json>,
    BTreeMap<String, (String, BTreeSet<String>)>,
);

/// What the service should hold, by externalId, computed from the source by hand.
fn expected(people: &[Person], groups: &[Group]) -> Content {
    let users = people
        .iter()
        .map(|p| {
            let manager = p
                .manager
                .filter(|m| people.iter().any(|q| q.n == *m))
                .map(person_anchor);
            (
                person_anchor(p.n),
                json!({
                    "userName": p.upn(),
                    "displayName": format!("{} {}", p.given, p.sn),
                    "givenName": p.given,
                    "familyName": p.sn,
                    "email": p.upn(),
                    "title": p.title,
                    "active": !p.disabled,
                    "department": p.department,
                    "employeeNumber": format!("E{:05}", p.n),
                    "manager": manager,
                }),
            )
        })
        .collect();
    let groups = groups
        .iter()
        .map(|g| {
            let members = g
                .people
                .iter()
                .filter(|n| people.iter().any(|p| p.n == **n))
                .map(|n| person_anchor(*n))
                .chain(g.groups.iter().map(|m| group_anchor(m)))
                .collect();
            (group_anchor(&g.name), (g.name.clone(), members))
        })
        .collect();
    (users, groups)
}

/// What the service holds, in the same shape, read with plain HTTP GETs.
fn actual(server: &ScimServer) -> Content {
    let users = server.all("/Users");
    let groups = server.all("/Groups");
    let mut anchor_of: BTreeMap<String, String> = BTreeMap::new();
    for r in users.iter().chain(groups.iter()) {
        anchor_of.insert(
            r["id"].as_str().unwrap_or_default().to_string(),
            r["externalId"]
                .as_str()
                .unwrap_or("(no externalId)")
                .to_string(),
        );
    }
    let mut u = BTreeMap::new();
    for r in &users {
        let ext = r["externalId"]
            .as_str()
            .unwrap_or("(no externalId)")
            .to_string();
        let work = r["emails"]
            .as_array()
            .and_then(|a| a.iter().find(|e| e["type"] == "work"))
            .map(|e| e["value"].clone())
            .unwrap_or(Json::Null);
        let manager = r[ENTERPRISE]["manager"]["value"].as_str().map(|id| {
            anchor_of
                .get(id)
                .cloned()
                .unwrap_or(format!("unknown id {id}"))
        });
        let prev = u.insert(
            ext.clone(),
            json!({
                "userName": r["userName"],
                "displayName": r["displayName"],
                "givenName": r["name"]["givenName"],
                "familyName": r["name"]["familyName"],
                "email": work,
                "title": r["title"],
                "active": r["active"],
                "department": r[ENTERPRISE]["department"],
                "employeeNumber": r[ENTERPRISE]["employeeNumber"],
                "manager": manager,
            }),
        );
        assert!(prev.is_none(), "two users with externalId {ext}");
    }
    let mut g = BTreeMap::new();
    for r in &groups {
        let ext = r["externalId"]
            .as_str()
            .unwrap_or("(no externalId)")
            .to_string();
        let members = r["members"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| {
                let id = m["value"].as_str().unwrap_or_default();
                anchor_of
                    .get(id)
                    .cloned()
                    .unwrap_or(format!("unknown id {id}"))
            })
            .collect();
        let prev = g.insert(
            ext.clone(),
            (
                r["displayName"].as_str().unwrap_or_default().to_string(),
                members,
            ),
        );
        assert!(prev.is_none(), "two groups with externalId {ext}");
    }
    (u, g)
}

pub fn assert_matches(server: &ScimServer, people: &[Person], groups: &[Group], what: &str) {
    let (want_u, want_g) = expected(people, groups);
    let (got_u, got_g) = actual(server);
    for (k, v) in &want_u {
        assert_eq!(got_u.get(k), Some(v), "{what}: user {k}");
    }
    assert_eq!(got_u.len(), want_u.len(), "{what}: number of users");
    assert_eq!(got_g, want_g, "{what}: groups");
}

/// Write requests (POST/PUT/PATCH/DELETE) in the server's log since `from`.
pub fn writes(server: &ScimServer, from: usize) -> Vec<(String, String, u16)> {
    server.requests()[from..]
        .iter()
        .filter(|(m, _, _)| m != "GET")
        .cloned()
        .collect()
}

pub fn people(n: usize) -> Vec<Person> {
    (0..n).map(Person::new).collect()
}

fn groups_of(people: &[Person]) -> Vec<Group> {
    let ids: Vec<usize> = people.iter().map(|p| p.n).collect();
    vec![
        Group {
            name: "All Staff".into(),
            people: ids.clone(),
            groups: vec![],
        },
        Group {
            name: "Sales".into(),
            people: ids.iter().copied().filter(|n| n % 3 == 0).collect(),
            groups: vec![],
        },
        Group {
            name: "Leads".into(),
            people: vec![0, 1],
            groups: vec!["Sales".into()],
        },
    ]
}

#[test]
fn scim_provisions_everything_and_then_patches_exactly_the_changes() {
    let server = scim::start();
    let proxy = Proxy::start(server.port, "", 0, 0);
    let mut ppl = people(40);
    let mut grp = groups_of(&ppl);
    let dir = setup("scim-provision", &proxy.url, &ppl, &grp);

    let (code, json) = cycle(&dir);
    assert_eq!(code, Some(0), "{json}");
    let counts = connector_counts(&json);
    assert_eq!(counts["cloud"].1.adds, 43, "{json}");
    assert_matches(&server, &ppl, &grp, "after the first cycle");

    // A second cycle finds nothing to write.
    let before = server.requests().len();
    let (code, json) = cycle(&dir);
    assert_eq!(code, Some(0), "{json}");
    assert_eq!(writes(&server, before), vec![], "a quiet cycle wrote");

    // One title, one member added to a group, one removed from another.
    ppl[5].title = "Chief".into();
    grp[1].people.push(1);
    grp[0].people.retain(|n| *n != 7);
    std::fs::write(dir.join("hr.ldif"), source_ldif(&ppl, &grp)).must("writing hr.ldif");
    let before = server.requests().len();
    proxy.clear();
    let (code, json) = cycle(&dir);
    assert_eq!(code, Some(0), "{json}");
    let w = writes(&server, before);
    assert_eq!(w.len(), 3, "three objects changed, one PATCH each: {w:?}");
    assert!(w.iter().all(|(m, _, s)| m == "PATCH" && *s == 204), "{w:?}");
    let patches: Vec<Json> = proxy
        .seen()
        .iter()
        .filter(|s| s.method == "PATCH")
        .map(|s| serde_json::from_str(&s.body).must("a PATCH body"))
        .collect();
    let ops: BTreeSet<String> = patches
        .iter()
        .flat_map(|p| p["Operations"].as_array().cloned().unwrap_or_default())
        .map(|o| {
            format!(
                "{} {}",
                o["op"].as_str().unwrap_or(""),
                o["path"].as_str().unwrap_or("")
            )
        })
        .collect();
    let user7 = server
        .all("/Users")
        .into_iter()
        .find(|u| u["externalId"] == person_anchor(7))
        .must("user 7");
    let want: BTreeSet<String> = [
        "replace title".to_string(),
        "add members".to_string(),
        format!(
            "remove members[value eq \"{}\"]",
            user7["id"].as_str().unwrap_or("")
        ),
    ]
    .into();
    assert_eq!(ops, want, "{patches:?}");
    assert_matches(&server, &ppl, &grp, "after the changes");
}

#[test]
fn scim_one_member_of_a_five_thousand_member_group_is_one_small_patch() {
    let server = scim::start();
    let proxy = Proxy::start(server.port, "", 0, 0);
    let mut ppl: Vec<Person> = (0..5001)
        .map(|n| Person {
            manager: None,
            ..Person::new(n)
        })
        .collect();
    let mut grp = vec![Group {
        name: "Everyone".into(),
        people: (0..5000).collect(),
        groups: vec![],
    }];
    let dir = setup_with(
        "scim-large-group",
        &config(&proxy.url, "in_flight = 8", ""),
        &ppl,
        &grp,
    );
    let (code, json) = cycle(&dir);
    assert_eq!(code, Some(0), "{json}");
    let everyone = &server.all("/Groups")[0];
    let sent: Vec<String> = proxy
        .seen()
        .iter()
        .filter(|s| s.path.contains("/Groups") && s.method != "GET")
        .map(|s| {
            format!(
                "{} {} {} bytes -> {}",
                s.method,
                s.path,
                s.body.len(),
                s.status
            )
        })
        .collect();
    assert_eq!(
        everyone["members"].as_array().map(Vec::len),
        Some(5000),
        "requests to /Groups: {sent:#?}"
    );
    // The group's 5,000 members went in chunks (100 per operation), never in one huge
    // request: count the member values each group create or PATCH operation carried.
    let mut most = 0;
    for s in proxy.seen().iter().filter(|s| s.method != "GET") {
        let body: Json = serde_json::from_str(&s.body).unwrap_or(Json::Null);
        let ops = body["Operations"].as_array().cloned().unwrap_or_default();
        for op in ops.iter().chain(std::iter::once(&body)) {
            for list in [&op["data"]["members"], &op["value"], &op["members"]] {
                most = most.max(list.as_array().map_or(0, Vec::len));
            }
        }
    }
    assert!(most <= 100, "one operation carried {most} members");

    grp[0].people.push(5000);
    ppl[0].title = ppl[0].title.clone();
    std::fs::write(dir.join("hr.ldif"), source_ldif(&ppl, &grp)).must("writing hr.ldif");
    proxy.clear();
    let (code, json) = cycle(&dir);
    assert_eq!(code, Some(0), "{json}");
    let sent: Vec<_> = proxy
        .seen()
        .into_iter()
        .filter(|s| s.method != "GET")
        .collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].method, "PATCH");
    assert!(
        sent[0].body.len() < 300,
        "the PATCH was {} bytes: {}",
        sent[0].body.len(),
        sent[0].body
    );
    let everyone = &server.all("/Groups")[0];
    assert_eq!(everyone["members"].as_array().map(Vec::len), Some(5001));

    // 250 members leave: removals go 100 to an operation, like additions.
    grp[0].people.retain(|n| *n >= 250);
    std::fs::write(dir.join("hr.ldif"), source_ldif(&ppl, &grp)).must("writing hr.ldif");
    proxy.clear();
    let (code, json) = cycle(&dir);
    assert_eq!(code, Some(0), "{json}");
    let sent: Vec<_> = proxy
        .seen()
        .into_iter()
        .filter(|s| s.method != "GET")
        .collect();
    let removed: Vec<usize> = sent
        .iter()
        .map(|s| {
            let body: Json = serde_json::from_str(&s.body).unwrap_or(Json::Null);
            let ops = body["Operations"].as_array().cloned().unwrap_or_default();
            assert_eq!(ops.len(), 1, "{}", s.body);
            ops[0]["path"]
                .as_str()
                .unwrap_or("")
                .matches("value eq")
                .count()
        })
        .collect();
    assert_eq!(removed, vec![100, 100, 50], "{sent:?}");
    let everyone = &server.all("/Groups")[0];
    assert_eq!(everyone["members"].as_array().map(Vec::len), Some(4751));
}

#[test]
fn scim_deletes_disables_and_takes_over_existing_users() {
    let server = scim::start();
    // Already in the service: one by externalId (another client made it), one by userName.
    let by_ext = server.create(
        "/Users",
        &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "old-name-1@corp.example.test", "externalId": person_anchor(1)}),
    );
    let by_name = server.create(
        "/Users",
        &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "user2@corp.example.test", "title": "set by hand"}),
    );
    let mut ppl = people(12);
    let mut grp = groups_of(&ppl);
    let dir = setup("scim-lifecycle", &server.url, &ppl, &grp);
    let (code, json) = cycle(&dir);
    assert_eq!(code, Some(0), "{json}");
    assert_matches(&server, &ppl, &grp, "after the first cycle");
    let users = server.all("/Users");
    let id_of = |n: usize| {
        users
            .iter()
            .find(|u| u["externalId"] == person_anchor(n))
            .and_then(|u| u["id"].as_str())
            .map(str::to_string)
    };
    assert_eq!(
        id_of(1).as_deref(),
        by_ext["id"].as_str(),
        "matched by externalId"
    );
    assert_eq!(
        id_of(2).as_deref(),
        by_name["id"].as_str(),
        "matched by userName"
    );

    // Disabled in the source: active false. Deleted in the source: gone, and out of groups.
    ppl[3].disabled = true;
    let gone = ppl.remove(4);
    for g in &mut grp {
        g.people.retain(|n| *n != gone.n);
    }
    std::fs::write(dir.join("hr.ldif"), source_ldif(&ppl, &grp)).must("writing hr.ldif");
    let before = server.requests().len();
    let (code, json) = cycle(&dir);
    assert_eq!(code, Some(0), "{json}");
    assert_matches(&server, &ppl, &grp, "after a disable and a delete");
    let w = writes(&server, before);
    assert_eq!(
        w.iter().filter(|(m, _, _)| m == "DELETE").count(),
        1,
        "{w:?}"
    );
}

#[test]
fn scim_a_uniqueness_conflict_quarantines_one_object_and_the_rest_exports() {
    let server = scim::start();
    let mut ppl = people(10);
    // Two people who would get the same userName.
    ppl[6].upn = Some("twin@corp.example.test".into());
    ppl[7].upn = Some("Twin@corp.example.test".into());
    let grp = groups_of(&ppl);
    let dir = setup_with(
        "scim-conflict",
        &config(&server.url, "in_flight = 1", ""),
        &ppl,
        &grp,
    );
    let (code, json) = cycle(&dir);
    // The run finishes (exit 1: with object errors); one object carries the refusal.
    assert_eq!(code, Some(1), "{json}");
    let users = server.all("/Users");
    assert_eq!(users.len(), 9, "all but the twin");
    let errors = run(&["errors", "-c", &dir.config().to_string_lossy()]);
    let text = format!("{}{}", errors.stdout, errors.stderr);
    assert!(
        text.contains("Twin@corp.example.test") || text.contains("twin@corp.example.test"),
        "the error names the userName: {text}"
    );
    assert!(
        text.contains(&person_anchor(6)),
        "and the other object: {text}"
    );

    // It stays pending, not lost.
    let pending = json["connectors"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["connector"] == "cloud"))
        .map(|c| c["pending"].clone());
    assert_eq!(pending, Some(json!(1)), "{json}");
    let _ = (&mut ppl, &grp);
}

#[test]
fn scim_attributes_the_service_does_not_have_are_refused_by_name() {
    let server = scim::start();
    let ppl = people(3);
    let cfg = config(&server.url, "", "").replace(
        "  { target = \"active\", source = \"accountEnabled\" },",
        &format!("  {{ target = \"{ENTERPRISE}:shoeSize\", source = \"title\" }},"),
    );
    assert!(cfg.contains("shoeSize"));
    let dir = setup_with("scim-schema", &cfg, &ppl, &[]);
    let (code, json) = cycle(&dir);
    assert_eq!(code, Some(1), "{json}");
    assert!(server.all("/Users").is_empty());
    let errors = run(&["errors", "-c", &dir.config().to_string_lossy()]);
    let text = format!("{}{}", errors.stdout, errors.stderr);
    assert!(text.contains("no attribute \"shoeSize\""), "{text}");
}

#[test]
fn scim_obeys_retry_after_and_loses_nothing_when_the_service_hangs() {
    let server = scim::start_with(Some("s3cret-token"));
    // Throttled: the first three creates get 429 with Retry-After: 1.
    let proxy = Proxy::start(server.port, "POST", 3, 1);
    let mut ppl = people(20);
    let grp = groups_of(&ppl);
    let dir = setup_with(
        "scim-faults",
        &config(
            &proxy.url,
            "bearer_token_file = \"token\"\ntimeout = \"2s\"\nmax_retries = 4\nbulk_size = 5",
            "",
        ),
        &ppl,
        &grp,
    );
    crate::support::lab::write_secret(&dir.join("token"), "s3cret-token");
    let (code, json) = cycle(&dir);
    assert_eq!(code, Some(0), "{json}");
    assert_matches(&server, &ppl, &grp, "after throttling");
    let seen = proxy.seen();
    let throttled: Vec<_> = seen.iter().filter(|s| s.status == 429).collect();
    assert_eq!(throttled.len(), 3, "{seen:?}");
    for t in throttled {
        let retry = seen
            .iter()
            .find(|s| s.method == "POST" && s.status < 300 && s.body == t.body)
            .must("the throttled create, sent again");
        assert!(
            retry.at >= t.at + Duration::from_millis(950),
            "retried after {:?}, before the 1 s the service asked for",
            retry.at - t.at
        );
    }

    // The service hangs mid-export (SIGSTOP): the cycle stops with "unreachable"
    // (exit 3), what went through is kept; after it resumes, the next cycle completes
    // without duplicates.
    ppl.extend((20..60).map(Person::new));
    std::fs::write(dir.join("hr.ldif"), source_ldif(&ppl, &grp)).must("writing hr.ldif");
    let bulk_before = server.log_text().matches("\"POST /v2/Bulk").count();
    let hang = std::thread::spawn({
        let port = server.port;
        let log = server.log.clone();
        move || {
            // Freeze it once some of the new users are in (5 per bulk request).
            let start = std::time::Instant::now();
            while start.elapsed() < Duration::from_secs(60) {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                if text.matches("\"POST /v2/Bulk").count() >= bulk_before + 3 {
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            port
        }
    });
    let config_arg = dir.config().to_string_lossy().into_owned();
    let cycle_run = std::thread::spawn(move || run(&["cycle", "-c", &config_arg, "--json"]));
    hang.join().ok().must("the watcher");
    server.pause();
    let interrupted = cycle_run.join().ok().must("the cycle");
    server.resume();
    assert_eq!(interrupted.code(), Some(3), "{}", interrupted.stderr);
    let (code, json) = cycle(&dir);
    assert_eq!(code, Some(0), "{json}");
    assert_matches(&server, &ppl, &grp, "after the hang and one more cycle");
}

#[test]
fn scim_over_https_verifies_the_certificate() {
    let server = scim::start();
    let front = scim::TlsFront::start(server.port);
    let ppl = people(3);
    let ca = crate::support::lab::tls::ca().cert.display().to_string();
    // Trusting the lab CA: it works.
    let trusted = setup_with(
        "scim-tls",
        &config(&front.url, &format!("ca_file = \"{ca}\""), "")
            .replace("danger_plaintext = true\n", ""),
        &ppl,
        &[],
    );
    let (code, json) = cycle(&trusted);
    assert_eq!(code, Some(0), "{json}");
    assert_eq!(server.all("/Users").len(), 3);
    // Trusting only the system's CAs (the default): refused, and the run says why.
    let untrusted = setup_with(
        "scim-tls-untrusted",
        &config(&front.url, "", "").replace("danger_plaintext = true\n", ""),
        &ppl,
        &[],
    );
    let r = run(&["cycle", "-c", &untrusted.config().to_string_lossy()]);
    assert_eq!(r.code(), Some(3), "{}", r.stderr);
    assert!(
        r.stderr.contains("certificate") && r.stderr.contains(&front.url.replace("/v2", "")),
        "{}",
        r.stderr
    );
}
