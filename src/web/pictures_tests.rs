//! The pictures: escaping, health colours, stacking, marks, the objects line.

#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;
use crate::store::{ConnectorRunStats, PhaseTime};

fn view(name: &str, errors: u64, pending: u64) -> Node {
    Node {
        name: name.into(),
        kind: "ldif".into(),
        objects: 10,
        pending,
        errors,
        blocked_deletes: 0,
        agents: None,
    }
}

#[test]
fn names_are_escaped_and_health_is_coloured() {
    let text = r#"
state_file = "s.redb"
[[connector]]
name = "src"
type = "ldif"
mode = "source"
path = "in.ldif"
anchor = "objectGUID"
[[connector]]
name = "dst"
type = "ldif"
mode = "target"
path = "out.ldif"
anchor = "entryUUID"
[[inbound]]
name = "in"
connector = "src"
object_class = "user"
object_type = "person"
precedence = 10
flows = [ { target = "cn", source = "cn" } ]
[[outbound]]
name = "out"
connector = "dst"
object_type = "person"
object_class = "inetOrgPerson"
dn = "cn={cn},dc=x"
flows = [ { target = "cn", source = "cn" } ]
"#;
    let dir = tempfile::tempdir().unwrap();
    let config = Config::parse(text, &dir.path().join("b.toml")).unwrap();
    let mut src = view("src", 0, 0);
    src.agents = Some(("fab".into(), 1));
    let mut dst = view("dst", 2, 5);
    dst.kind = "<script>alert(1)</script>".into();
    let svg = topology(&config, &[src, dst], 10, &[]);
    assert!(svg.contains("ldif · agents fab (1 up)"), "{svg}");
    assert!(!svg.contains("<script>"), "{svg}");
    assert!(svg.contains("&lt;script&gt;"), "{svg}");
    assert!(svg.contains("node source health-ok"), "{svg}");
    assert!(svg.contains("node target health-bad"), "{svg}");
    assert!(
        svg.contains(">10 objects<") && svg.contains(">5 pending · 2 errors<"),
        "{svg}"
    );
    assert!(!svg.contains("style="), "no inline style under the CSP");
}

#[test]
fn history_stacks_phases_and_marks_errors_and_held_deletes() {
    let now = 1_800_000_000_000;
    let run = |i: i64, errors: u64, held: u64| RunRecord {
        started_ms: now - 3_600_000 * (10 - i),
        finished_ms: now - 3_600_000 * (10 - i) + 2000,
        mode: "delta".into(),
        trigger: "scheduler".into(),
        connectors: vec![ConnectorRunStats {
            connector: "a\"b".into(),
            errors,
            blocked_deletes: held,
            ..Default::default()
        }],
        phases: vec![
            PhaseTime {
                phase: "import".into(),
                connector: Some("a\"b".into()),
                objects: 1,
                ms: 1500,
            },
            PhaseTime {
                phase: "sync".into(),
                connector: None,
                objects: 1,
                ms: 500,
            },
            PhaseTime {
                phase: RunRecord::OBJECTS_PHASE.into(),
                connector: Some("a\"b".into()),
                objects: 100 + i as u64,
                ms: 0,
            },
        ],
        ..Default::default()
    };
    // Newest first, as the store gives them; one run too old to show.
    let mut runs: Vec<(u64, RunRecord)> = (0..10)
        .rev()
        .map(|i| {
            (
                i as u64 + 1,
                run(i, u64::from(i == 3), u64::from(i == 5) * 600),
            )
        })
        .collect();
    let mut old = run(0, 0, 0);
    old.started_ms = now - 30 * 86_400_000;
    runs.push((99, old));
    let svg = history(&runs, now);
    assert_eq!(svg.matches("<g class=\"run\">").count(), 10, "{svg}");
    assert!(!svg.contains("/runs/99"), "too old");
    assert_eq!(
        svg.matches(r#"class="mark-error"/>"#).count(),
        1 + 1,
        "legend + one run"
    );
    assert_eq!(
        svg.matches(r#"class="mark-held"/>"#).count(),
        1 + 1,
        "legend + one run"
    );
    assert!(
        svg.find("/runs/1\"").unwrap() < svg.find("/runs/10\"").unwrap(),
        "oldest first"
    );
    let objects = objects_over_time("a\"b", &runs, now);
    assert!(objects.contains("a&quot;b"), "{objects}");
    assert!(objects.contains("now: 109"), "{objects}");
    assert!(objects.contains(">100<"), "the lowest value: {objects}");
    assert!(objects_over_time("other", &runs, now).contains("no cycle recorded yet"));
}

#[test]
fn a_connector_run_through_agents_shows_its_group_and_warns_without_one_connected() {
    let mut n = view("fab", 0, 0);
    assert_eq!(health(&n, false), "ok");
    n.agents = Some(("fab-dc".into(), 0));
    assert_eq!(
        health(&n, false),
        "warn",
        "no agent of the group is connected"
    );
    n.agents = Some(("fab-dc".into(), 2));
    assert_eq!(health(&n, false), "ok");
}
