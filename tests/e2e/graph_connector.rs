//! The `graph` connector against the lab's Graph double, through the real binary: an LDIF
//! source shaped like AD, the admin's own outbound rules (the out-of-box rule set has no
//! Graph generator yet). Users with their required properties, immutableId, employeeId,
//! extensionAttribute1 and manager; security groups with nested members; a quiet second
//! cycle (the double's own write count); a delta that sends exactly its changes; soft match
//! of a pre-created cloud user; a load under a low write budget with nothing lost or doubled.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::json;

use super::scim::{Group, Person, cycle, people, person_anchor, setup_with, source_ldif};
use crate::support::lab::graph::{self, Budget, GraphDouble, Kind, Options};
use crate::support::lab::write_secret;
use crate::support::{Must, TestDir, connector_counts};

fn config(g: &GraphDouble, dir_secret: &str, extra: &str) -> String {
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
name = "entra"
type = "graph"
tenant_id = "{tenant}"
client_id = "{client}"
client_secret_file = "{dir_secret}"
authority = "{authority}"
graph_url = "{graph_url}"
ca_file = "{ca}"
{extra}

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
  {{ target = "mailNickname", source = "sAMAccountName" }},
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
name = "entra-users"
connector = "entra"
object_type = "person"
object_class = "user"
dn = "userPrincipalName={{userPrincipalName}},ou=Users"
deprovision = "delete"
flows = [
  {{ target = "onPremisesImmutableId", source = "sourceAnchor" }},
  {{ target = "userPrincipalName", source = "userPrincipalName" }},
  {{ target = "displayName", source = "displayName" }},
  {{ target = "givenName", source = "givenName" }},
  {{ target = "surname", source = "sn" }},
  {{ target = "mail", source = "mail" }},
  {{ target = "mailNickname", source = "mailNickname" }},
  {{ target = "jobTitle", source = "title" }},
  {{ target = "department", source = "department" }},
  {{ target = "employeeId", source = "employeeID" }},
  {{ target = "extensionAttribute1", source = "department" }},
  {{ target = "usageLocation", expression = "\"DE\"" }},
  {{ target = "accountEnabled", source = "accountEnabled" }},
  {{ target = "manager", source = "manager" }},
]

[[outbound]]
name = "entra-groups"
connector = "entra"
object_type = "group"
object_class = "group"
dn = "mailNickname={{cn}},ou=Groups"
deprovision = "delete"
flows = [
  {{ target = "displayName", source = "cn" }},
  {{ target = "mailNickname", source = "cn" }},
  {{ target = "members", source = "member" }},
]
"#,
        tenant = g.tenant_id,
        client = g.client_id,
        authority = g.base,
        graph_url = g.graph_url(),
        ca = g.ca_file.display(),
    )
}

fn groups(ppl: &[Person]) -> Vec<Group> {
    vec![
        Group {
            name: "sales".into(),
            people: ppl
                .iter()
                .filter(|p| p.department == "Sales")
                .map(|p| p.n)
                .collect(),
            groups: vec![],
        },
        Group {
            name: "everyone".into(),
            people: ppl
                .iter()
                .filter(|p| p.department != "Sales")
                .map(|p| p.n)
                .collect(),
            groups: vec!["sales".into()],
        },
    ]
}

fn setup(name: &str, g: &GraphDouble, ppl: &[Person], grp: &[Group], extra: &str) -> TestDir {
    let dir = setup_with(name, "", ppl, grp);
    let secret = dir.join("client-secret");
    write_secret(&secret, &g.client_secret);
    let cfg = config(g, &secret.display().to_string(), extra);
    std::fs::write(dir.config(), cfg).must("writing the config");
    dir
}

/// The double's users as (immutableId → (UPN, displayName, jobTitle, employeeId, ext1, manager immutableId)).
fn check_users(g: &GraphDouble, ppl: &[Person], when: &str) {
    let users = g.users();
    assert_eq!(users.len(), ppl.len(), "{when}: users in Graph");
    let by_id: std::collections::HashMap<String, String> = users
        .values()
        .map(|u| {
            (
                u.id.clone(),
                u.text("onPremisesImmutableId").unwrap_or("").to_string(),
            )
        })
        .collect();
    for p in ppl {
        let u = users
            .get(&p.upn())
            .must(&format!("{when}: {} in Graph", p.upn()));
        assert_eq!(
            u.text("onPremisesImmutableId"),
            Some(person_anchor(p.n).as_str()),
            "{when}: {:?}",
            u.props
        );
        assert_eq!(
            u.text("jobTitle"),
            Some(p.title.as_str()),
            "{when}: {}",
            p.upn()
        );
        assert_eq!(
            u.text("employeeId"),
            Some(format!("E{:05}", p.n).as_str()),
            "{when}"
        );
        assert_eq!(u.text("usageLocation"), Some("DE"), "{when}");
        assert_eq!(
            u.props["accountEnabled"],
            json!(!p.disabled),
            "{when}: {}",
            p.upn()
        );
        assert_eq!(
            u.props["onPremisesExtensionAttributes"]["extensionAttribute1"],
            json!(p.department),
            "{when}"
        );
        let manager = u.manager.as_ref().and_then(|m| by_id.get(m)).cloned();
        let want = p
            .manager
            .filter(|m| ppl.iter().any(|q| q.n == *m))
            .map(person_anchor);
        assert_eq!(manager, want, "{when}: manager of {}", p.upn());
    }
}

fn check_groups(g: &GraphDouble, ppl: &[Person], grp: &[Group], when: &str) {
    let users = g.users();
    let groups = g.groups();
    assert_eq!(groups.len(), grp.len(), "{when}: groups in Graph");
    for want in grp {
        let have = groups
            .get(&want.name)
            .must(&format!("{when}: group {}", want.name));
        let mut expect: BTreeSet<String> = want
            .people
            .iter()
            .filter_map(|n| ppl.iter().find(|p| p.n == *n))
            .filter_map(|p| users.get(&p.upn()).map(|u| u.id.clone()))
            .collect();
        for sub in &want.groups {
            expect.insert(groups.get(sub).must("nested group").id.clone());
        }
        assert_eq!(have.members, expect, "{when}: members of {}", want.name);
    }
}

#[test]
fn graph_provisions_then_is_quiet_then_sends_exactly_the_changes() {
    let g = graph::start();
    let mut ppl = people(30);
    let mut grp = groups(&ppl);
    let dir = setup("graph-provision", &g, &ppl, &grp, "");
    let (code, json) = cycle(&dir);
    assert_eq!(code, Some(0), "{json}");
    assert_eq!(connector_counts(&json)["entra"].1.adds, 32, "{json}");
    check_users(&g, &ppl, "after the first cycle");
    check_groups(&g, &ppl, &grp, "after the first cycle");
    assert!(
        g.log().iter().any(|l| l.in_batch),
        "writes went through $batch"
    );

    let before = g.writes();
    let (code, json) = cycle(&dir);
    assert_eq!(code, Some(0), "{json}");
    assert_eq!(g.writes(), before, "a quiet cycle wrote to Graph: {json}");

    // One title, one member added, one removed: three writes.
    ppl[5].title = "Chief".into();
    grp[0].people.push(1);
    grp[1].people.retain(|n| *n != 7);
    std::fs::write(dir.join("hr.ldif"), source_ldif(&ppl, &grp)).must("writing hr.ldif");
    let before = g.writes();
    let log_before = g.log().len();
    let (code, json) = cycle(&dir);
    assert_eq!(code, Some(0), "{json}");
    let sent: Vec<String> = g.log()[log_before..]
        .iter()
        .filter(|l| l.in_batch)
        .map(|l| format!("{} {}", l.method, l.target))
        .collect();
    assert_eq!(
        g.writes() - before,
        3,
        "exactly the three changes: {sent:?}"
    );
    check_users(&g, &ppl, "after the changes");
    check_groups(&g, &ppl, &grp, "after the changes");

    // A person leaves: the user is deleted.
    let gone = ppl.remove(9);
    for gr in &mut grp {
        gr.people.retain(|n| *n != gone.n);
    }
    for p in &mut ppl {
        if p.manager == Some(gone.n) {
            p.manager = None;
        }
    }
    std::fs::write(dir.join("hr.ldif"), source_ldif(&ppl, &grp)).must("writing hr.ldif");
    let (code, json) = cycle(&dir);
    assert_eq!(code, Some(0), "{json}");
    assert!(!g.users().contains_key(&gone.upn()), "the user left Graph");
    check_groups(&g, &ppl, &grp, "after the delete");
}

#[test]
fn graph_soft_match_takes_over_a_cloud_user() {
    let g = graph::start();
    let ppl = people(5);
    let pre = g.seed(
        Kind::User,
        json!({"userPrincipalName": ppl[3].upn(), "displayName": "made in the cloud",
               "accountEnabled": true, "mailNickname": "cloud3",
               "onPremisesImmutableId": person_anchor(3)}),
    );
    let dir = setup("graph-softmatch", &g, &ppl, &[], "");
    let (code, json) = cycle(&dir);
    assert_eq!(code, Some(0), "{json}");
    let users = g.users();
    assert_eq!(users.len(), 5, "no duplicate");
    let u = &users[&ppl[3].upn()];
    assert_eq!(u.id, pre, "the cloud user was taken over");
    assert_eq!(
        u.text("jobTitle"),
        Some(ppl[3].title.as_str()),
        "and updated"
    );

    // Graph forgets the deltaLinks (they expire after 7 days). A new process starts with a
    // full round anyway (what it knows of the tenant is kept in memory only): the cycle
    // reads every object again, without the stale link, and writes nothing.
    g.expire_delta_links();
    let (before, log_before) = (g.writes(), g.log().len());
    let (code, json) = cycle(&dir);
    assert_eq!(code, Some(0), "{json}");
    let log = g.log();
    let rounds: Vec<&str> = log[log_before..]
        .iter()
        .filter(|l| l.target.contains("/delta"))
        .map(|l| l.target.as_str())
        .collect();
    assert!(
        rounds.iter().all(|t| !t.contains("$deltatoken"))
            && log[log_before..].iter().all(|l| l.status < 400),
        "full rounds, nothing refused: {rounds:?}"
    );
    assert_eq!(
        g.writes(),
        before,
        "nothing to write after the full import: {json}"
    );
}

#[test]
fn graph_a_load_under_a_low_budget_loses_nothing() {
    // 500 writes per 5 s at the double, for about 4,000 writes. The connector is told the
    // same rate, but its budget counts per 150 s (Microsoft's window), so it may burst past
    // the double's short window: the double throttles, and every 429 is waited out and sent
    // again, once.
    // Tokens also stop working after 10 s while saying they last an hour: the connector
    // meets 401s mid-export and gets a new token each time.
    let g = graph::start_with(Options {
        budget: Some(Budget {
            writes: 500,
            window: Duration::from_secs(5),
        }),
        revoke_after: Some(Duration::from_secs(10)),
        ..Options::default()
    });
    let ppl = people(2000);
    let dir = setup("graph-throttle", &g, &ppl, &[], "write_budget = 15000");
    let started = std::time::Instant::now();
    let (code, json) = cycle(&dir);
    assert_eq!(code, Some(0), "{json}");
    check_users(&g, &ppl, "after the load");
    let (writes, throttled, peak) = g.with(|d| (d.writes, d.throttled, d.peak_window));
    assert!(peak <= 500, "never past the budget: {peak}");
    let refused = g.log().iter().filter(|l| l.status == 401).count();
    let tokens = g.with(|d| d.tokens.len());
    assert!(
        refused > 0 && tokens > refused,
        "401s met ({refused}), new tokens taken ({tokens})"
    );
    // Creates plus manager links, each once.
    let managers = ppl.iter().filter(|p| p.manager.is_some()).count() as u64;
    assert_eq!(writes, 2000 + managers, "no write lost or doubled");
    eprintln!(
        "graph load: {writes} writes in {:.1} s, {throttled} throttled",
        started.elapsed().as_secs_f64()
    );
}

/// Security groups as AD writes them (groupType, sAMAccountName), for the out-of-box rules.
fn ad_groups(groups: &[Group]) -> String {
    use base64::Engine as _;
    let mut out = String::new();
    for (i, g) in groups.iter().enumerate() {
        let mut guid = vec![0xC3u8; 16];
        guid[..8].copy_from_slice(&(i as u64).to_le_bytes());
        out.push_str(&format!(
            "\ndn: CN={0},OU=Groups,DC=corp,DC=example,DC=test\nobjectClass: top\nobjectClass: group\n\
             objectGUID:: {1}\ncn: {0}\nsAMAccountName: {0}\ngroupType: -2147483646\n",
            g.name,
            base64::engine::general_purpose::STANDARD.encode(&guid)
        ));
        for m in &g.people {
            out.push_str(&format!(
                "member: CN=User {m},OU=People,DC=corp,DC=example,DC=test\n"
            ));
        }
        for m in &g.groups {
            out.push_str(&format!(
                "member: CN={m},OU=Groups,DC=corp,DC=example,DC=test\n"
            ));
        }
    }
    out
}

#[test]
fn graph_out_of_box_rules_provision_users_groups_and_managers() {
    let g = graph::start();
    let ppl = people(20);
    let grp = groups(&ppl);
    let dir = TestDir::new("graph-rule-set");
    let secret = dir.join("client-secret");
    write_secret(&secret, &g.client_secret);
    let ldif = format!("{}{}", source_ldif(&ppl, &[]), ad_groups(&grp));
    std::fs::write(dir.join("hr.ldif"), ldif).must("writing hr.ldif");
    let cfg = format!(
        "state_file = \"state.redb\"\nrule_set = \"azure-ad-connect\"\nrule_set_sources = [\"hr\"]\n\n\
         [[connector]]\nname = \"hr\"\ntype = \"ldif\"\nmode = \"source\"\npath = \"hr.ldif\"\n\
         anchor = \"objectGUID\"\npartitions = [\"DC=corp,DC=example,DC=test\"]\n\n\
         [[connector]]\nname = \"entra\"\ntype = \"graph\"\ntenant_id = \"{}\"\nclient_id = \"{}\"\n\
         client_secret_file = \"{}\"\nauthority = \"{}\"\ngraph_url = \"{}\"\nca_file = \"{}\"\n",
        g.tenant_id,
        g.client_id,
        secret.display(),
        g.base,
        g.graph_url(),
        g.ca_file.display()
    );
    std::fs::write(dir.config(), cfg).must("writing the config");
    let (code, json) = cycle(&dir);
    assert_eq!(code, Some(0), "{json}");
    let users = g.users();
    assert_eq!(users.len(), ppl.len(), "{json}");
    let by_id: std::collections::HashMap<String, String> = users
        .values()
        .map(|u| {
            (
                u.id.clone(),
                u.text("onPremisesImmutableId").unwrap_or("").to_string(),
            )
        })
        .collect();
    for p in &ppl {
        let u = &users[&p.upn()];
        assert_eq!(
            u.text("onPremisesImmutableId"),
            Some(person_anchor(p.n).as_str())
        );
        assert_eq!(u.text("jobTitle"), Some(p.title.as_str()));
        assert_eq!(u.text("employeeId"), Some(format!("E{:05}", p.n).as_str()));
        assert_eq!(u.props["accountEnabled"], json!(!p.disabled), "{}", p.upn());
        let manager = u.manager.as_ref().and_then(|m| by_id.get(m)).cloned();
        assert_eq!(
            manager,
            p.manager.map(person_anchor),
            "manager of {}",
            p.upn()
        );
    }
    check_groups(&g, &ppl, &grp, "with the out-of-box rules");
    let before = g.writes();
    let (code, json) = cycle(&dir);
    assert_eq!(code, Some(0), "{json}");
    assert_eq!(g.writes(), before, "a quiet cycle wrote: {json}");
}

#[test]
fn graph_references_to_just_created_objects_wait_for_replication() {
    // For 2 s after a create Graph's replicas do not know the object: reads 404, and links
    // to it are refused as "references do not exist". The managers and members still land.
    let g = graph::start_with(Options {
        create_lag: Duration::from_secs(2),
        ..Options::default()
    });
    let ppl = people(12);
    let grp = groups(&ppl);
    let dir = setup("graph-lag", &g, &ppl, &grp, "");
    let (code, json) = cycle(&dir);
    assert_eq!(code, Some(0), "{json}");
    let refused = g
        .log()
        .iter()
        .filter(|l| l.in_batch && (l.status == 400 || l.status == 404))
        .count();
    assert!(refused > 0, "the lag was met");
    check_users(&g, &ppl, "after the lag");
    check_groups(&g, &ppl, &grp, "after the lag");
}

#[test]
fn graph_a_deprovisioned_user_is_disabled_when_so_configured() {
    let g = graph::start();
    let mut ppl = people(4);
    ppl.iter_mut().for_each(|p| p.disabled = false);
    let dir = setup("graph-disable", &g, &ppl, &[], "");
    let cfg = std::fs::read_to_string(dir.config()).must("reading the config");
    let cfg = cfg.replacen(
        "deprovision = \"delete\"",
        "deprovision = \"disable\"\ndisable_attribute = \"accountEnabled\"\ndisable_value = false",
        1,
    );
    std::fs::write(dir.config(), cfg).must("writing the config");
    let (code, json) = cycle(&dir);
    assert_eq!(code, Some(0), "{json}");
    let gone = ppl.remove(2);
    std::fs::write(dir.join("hr.ldif"), source_ldif(&ppl, &[])).must("writing hr.ldif");
    let (code, json) = cycle(&dir);
    assert_eq!(code, Some(0), "{json}");
    let users = g.users();
    assert_eq!(users.len(), 4, "disabled, not deleted");
    assert_eq!(users[&gone.upn()].props["accountEnabled"], json!(false));
    assert_eq!(users[&ppl[0].upn()].props["accountEnabled"], json!(true));
}
