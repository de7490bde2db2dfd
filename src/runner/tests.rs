//! Engine scenarios driven through the runner with small LDIF files: precedence across
//! connectors, joins, late references, moves, deprovisioning.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::{CycleOptions, Runner, Shutdown};
use crate::config::Config;
use crate::connector::ldif::format::{LdifReader, LdifValue};
use crate::model::{Dn, FixedClock};
use crate::store::{RunRecord, Store};

type Entries = BTreeMap<String, BTreeMap<String, Vec<String>>>;

fn target(path: &Path) -> Entries {
    let mut out = Entries::new();
    let Ok(f) = std::fs::File::open(path) else {
        return out;
    };
    for e in LdifReader::new(std::io::BufReader::new(f)) {
        let e = e.unwrap();
        let mut attrs: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in e.attrs {
            let v = match v {
                LdifValue::Text(t) => t,
                LdifValue::Bytes(b) => String::from_utf8(b).unwrap(),
            };
            attrs.entry(k.to_lowercase()).or_default().push(v);
        }
        for vs in attrs.values_mut() {
            vs.sort();
        }
        out.insert(Dn::parse(&e.dn).unwrap().norm().to_string(), attrs);
    }
    out
}

pub(super) struct Lab {
    pub(super) dir: tempfile::TempDir,
    pub(super) runner: Runner,
    clock: Arc<FixedClock>,
}

impl Lab {
    pub(super) fn new(config: &str, files: &[(&str, &str)]) -> Lab {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        std::fs::write(dir.path().join("c.toml"), config).unwrap();
        let config = Config::load(&dir.path().join("c.toml")).unwrap();
        let store = Store::open(&config.state_file).unwrap();
        let clock = Arc::new(FixedClock::at(1_000));
        let runner = Runner::new(config, store, clock.clone(), Shutdown::default());
        Lab { dir, runner, clock }
    }

    pub(super) fn write(&self, name: &str, text: &str) {
        std::fs::write(self.dir.path().join(name), text).unwrap();
    }

    pub(super) fn cycle(&mut self) -> RunRecord {
        self.runner
            .cycle(&CycleOptions {
                trigger: "test".into(),
                ..Default::default()
            })
            .unwrap()
    }

    pub(super) fn target(&self) -> Entries {
        target(&self.dir.path().join("out.ldif"))
    }
}

fn key(dn: &str) -> String {
    Dn::parse(dn).unwrap().norm().to_string()
}

const TARGET: &str = r#"
[[connector]]
name = "out"
type = "ldif"
mode = "target"
path = "out.ldif"
anchor = "entryUUID"

[[outbound]]
name = "out-people"
connector = "out"
object_type = "person"
object_class = "inetOrgPerson"
dn = "uid={uid},ou=people,o=t"
deprovision = "DEPROVISION"
disable_attribute_LINE
flows = [ { target = "uid", source = "uid" }, { target = "title", source = "title" }, { target = "manager", source = "manager" } ]

[[outbound]]
name = "out-groups"
connector = "out"
object_type = "group"
object_class = "groupOfNames"
dn = "cn={cn},ou=groups,o=t"
flows = [ { target = "cn", source = "cn" }, { target = "member", source = "member" } ]
"#;

pub(super) fn config(sources: &str, deprovision: &str) -> String {
    let target = TARGET.replace("DEPROVISION", deprovision).replace(
        "disable_attribute_LINE",
        if deprovision == "disable" {
            "disable_attribute = \"employeeType\"\ndisable_value = \"disabled\""
        } else {
            ""
        },
    );
    format!("state_file = \"s.redb\"\n{sources}\n{target}")
}

pub(super) const AD: &str = r#"
[[connector]]
name = "ad"
type = "ldif"
mode = "source"
path = "ad.ldif"
anchor = "uuid"

[[inbound]]
name = "ad-users"
connector = "ad"
object_class = "user"
object_type = "person"
precedence = 20
join = [ [ { cs = "employeeID", mv = "employeeID" } ] ]
flows = [ { target = "uid", source = "uid" }, { target = "title", source = "title" }, { target = "employeeID", source = "employeeID" }, { target = "manager", source = "manager" } ]

[[inbound]]
name = "ad-groups"
connector = "ad"
object_class = "group"
object_type = "group"
precedence = 20
flows = [ { target = "cn", source = "cn" }, { target = "member", source = "member" } ]
"#;

const HR: &str = r#"
[[connector]]
name = "hr"
type = "ldif"
mode = "source"
path = "hr.ldif"
anchor = "uuid"

[[inbound]]
name = "hr-people"
connector = "hr"
object_class = "worker"
object_type = "person"
precedence = 5
project = false
join = [ [ { cs = "employeeID", mv = "employeeID" } ] ]
flows = [ { target = "title", source = "title" } ]
"#;

fn user(uuid: &str, dn: &str, uid: &str, extra: &str) -> String {
    format!("dn: {dn}\nuuid: {uuid}\nobjectClass: user\nuid: {uid}\nemployeeID: E-{uid}\n{extra}\n")
}

#[test]
fn precedence_picks_the_lowest_rule_with_a_value() {
    let ad = user("1", "cn=Ann,ou=x,dc=ad", "ann", "title: Engineer\n");
    let hr = "dn: wid=1,o=hr\nuuid: h1\nobjectClass: worker\nemployeeID: E-ann\ntitle: Principal Engineer\n\n";
    let mut lab = Lab::new(
        &config(&format!("{AD}{HR}"), "delete"),
        &[("ad.ldif", &ad), ("hr.ldif", hr)],
    );
    lab.cycle();
    let t = lab.target();
    assert_eq!(
        t[&key("uid=ann,ou=people,o=t")]["title"],
        vec!["Principal Engineer"]
    );
    // HR loses its value: the AD rule supplies it again.
    lab.write(
        "hr.ldif",
        "dn: wid=1,o=hr\nuuid: h1\nobjectClass: worker\nemployeeID: E-ann\n\n",
    );
    let run = lab.cycle();
    assert_eq!(
        lab.target()[&key("uid=ann,ou=people,o=t")]["title"],
        vec!["Engineer"]
    );
    assert_eq!(run.connectors[2].export.updates, 1);
    // The HR object joined; it did not project a second person.
    assert_eq!(lab.target().len(), 1);
}

#[test]
fn a_reference_to_an_object_that_arrives_later_resolves_then() {
    let group = "dn: cn=g,dc=ad\nuuid: g\nobjectClass: group\ncn: g\nmember: cn=Bob,dc=ad\nmember: cn=Ann,dc=ad\n\n";
    let ann = user("1", "cn=Ann,dc=ad", "ann", "");
    let mut lab = Lab::new(
        &config(AD, "delete"),
        &[("ad.ldif", &format!("{ann}{group}"))],
    );
    lab.cycle();
    assert_eq!(
        lab.target()[&key("cn=g,ou=groups,o=t")]["member"],
        vec!["uid=ann,ou=people,o=t"]
    );
    let bob = user("2", "cn=Bob,dc=ad", "bob", "manager: cn=Ann,dc=ad\n");
    lab.write("ad.ldif", &format!("{ann}{group}{bob}"));
    lab.cycle();
    let t = lab.target();
    assert_eq!(
        t[&key("cn=g,ou=groups,o=t")]["member"],
        vec!["uid=ann,ou=people,o=t", "uid=bob,ou=people,o=t"]
    );
    assert_eq!(
        t[&key("uid=bob,ou=people,o=t")]["manager"],
        vec!["uid=ann,ou=people,o=t"]
    );
}

#[test]
fn a_move_keeps_references_and_renames_nothing_the_template_does_not_use() {
    // The import re-points the hologram of every referrer when an object moves (AD reports
    // no change on groups then); an LDIF export that also rewrote the member agrees with it.
    let group = "dn: cn=g,dc=ad\nuuid: g\nobjectClass: group\ncn: g\nmember: cn=Ann,ou=a,dc=ad\n\n";
    let ann = user("1", "cn=Ann,ou=a,dc=ad", "ann", "");
    let mut lab = Lab::new(
        &config(AD, "delete"),
        &[("ad.ldif", &format!("{ann}{group}"))],
    );
    lab.cycle();
    let moved = user("1", "cn=Ann,ou=b,dc=ad", "ann", "");
    let group_after =
        "dn: cn=g,dc=ad\nuuid: g\nobjectClass: group\ncn: g\nmember: cn=Ann,ou=b,dc=ad\n\n";
    lab.write("ad.ldif", &format!("{moved}{group_after}"));
    let run = lab.cycle();
    assert_eq!(run.connectors[0].import.renames, 1);
    assert_eq!(
        lab.target()[&key("cn=g,ou=groups,o=t")]["member"],
        vec!["uid=ann,ou=people,o=t"]
    );
    // Nothing changed in the target: the DN template does not use the OU.
    assert_eq!(run.connectors[1].export.total(), 0);
}

#[test]
fn deprovision_actions() {
    let ann = user("1", "cn=Ann,dc=ad", "ann", "");
    let bob = user("2", "cn=Bob,dc=ad", "bob", "");
    for action in ["delete", "disable", "keep"] {
        let mut lab = Lab::new(&config(AD, action), &[("ad.ldif", &format!("{ann}{bob}"))]);
        lab.cycle();
        assert_eq!(lab.target().len(), 2, "{action}");
        lab.write("ad.ldif", &ann);
        let run = lab.cycle();
        let t = lab.target();
        let bob_dn = key("uid=bob,ou=people,o=t");
        match action {
            "delete" => {
                assert!(!t.contains_key(&bob_dn));
                assert_eq!(run.connectors[1].export.deletes, 1);
            }
            "disable" => assert_eq!(t[&bob_dn]["employeetype"], vec!["disabled"]),
            _ => {
                assert!(t.contains_key(&bob_dn));
                assert!(!t[&bob_dn].contains_key("employeetype"));
            }
        }
        // A second cycle has nothing left to do.
        assert_eq!(lab.cycle().connectors[1].export.total(), 0, "{action}");
    }
}

#[test]
fn an_ambiguous_join_is_an_error_on_the_object_not_a_failed_run() {
    let ad = format!(
        "{}{}",
        user("1", "cn=A1,dc=ad", "a1", ""),
        user("2", "cn=A2,dc=ad", "a2", "")
    );
    // Both AD users get employeeID E-x: HR's worker with E-x matches two MV objects.
    let ad = ad.replace("E-a1", "E-x").replace("E-a2", "E-x");
    let hr = "dn: wid=1,o=hr\nuuid: h1\nobjectClass: worker\nemployeeID: E-x\ntitle: T\n\n";
    let mut lab = Lab::new(
        &config(&format!("{AD}{HR}"), "delete"),
        &[("ad.ldif", &ad), ("hr.ldif", hr)],
    );
    lab.cycle();
    let tx = lab.runner.store().read().unwrap();
    let mut errors = Vec::new();
    tx.for_each_cs(None, &mut |_, rec| {
        if let Some(e) = rec.error {
            errors.push(e.message);
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("ambiguous join"), "{}", errors[0]);
}

#[test]
fn a_target_object_deleted_in_its_directory_is_provisioned_again() {
    let ann = user("1", "cn=Ann,dc=ad", "ann", "title: T\n");
    let mut lab = Lab::new(&config(AD, "delete"), &[("ad.ldif", &ann)]);
    lab.cycle();
    let before = lab.target();
    assert_eq!(before.len(), 1);
    // Someone removes the target file (or the entry) behind our back.
    std::fs::remove_file(lab.dir.path().join("out.ldif")).unwrap();
    let run = lab.cycle();
    assert_eq!(run.connectors[1].import.deletes, 1);
    assert_eq!(run.connectors[1].export.adds, 1);
    assert_eq!(lab.target(), before);
}

const HR_EXPR: &str = r#"
[[connector]]
name = "hr"
type = "ldif"
mode = "source"
path = "hr.ldif"
anchor = "uuid"

[[inbound]]
name = "hr-people"
connector = "hr"
object_class = "worker"
object_type = "person"
precedence = 5
project = false
scope_expression = "[status] <> \"ignored\""
join = [ [ { cs = "employeeID", mv = "employeeID" } ] ]
flows = [ { target = "title", expression = "IIF([status] = \"left\", AuthoritativeNull, IIF([status] = \"bad\", Error(\"HR record is bad: \" & [employeeID]), IIF(IsPresent([title]), UCase([title]), IgnoreThisFlow)))" } ]
"#;

fn hr_worker(status: &str, title: &str) -> String {
    format!(
        "dn: wid=1,o=hr\nuuid: h1\nobjectClass: worker\nemployeeID: E-ann\nstatus: {status}\n{title}\n"
    )
}

#[test]
fn expressions_drive_flows_precedence_and_quarantine() {
    let ad = user("1", "cn=Ann,dc=ad", "ann", "title: Engineer\n");
    let title_of = |lab: &Lab| {
        lab.target()[&key("uid=ann,ou=people,o=t")]
            .get("title")
            .cloned()
    };
    let mut lab = Lab::new(
        &config(&format!("{AD}{HR_EXPR}"), "delete"),
        &[
            ("ad.ldif", &ad),
            ("hr.ldif", &hr_worker("active", "title: lead")),
        ],
    );
    lab.cycle();
    assert_eq!(title_of(&lab), Some(vec!["LEAD".to_string()]));

    // IgnoreThisFlow: HR supplies nothing, so AD's value flows.
    lab.write("hr.ldif", &hr_worker("active", ""));
    lab.cycle();
    assert_eq!(title_of(&lab), Some(vec!["Engineer".to_string()]));

    // AuthoritativeNull wins by precedence and clears the value although AD has one.
    lab.write("hr.ldif", &hr_worker("left", "title: lead"));
    lab.cycle();
    assert_eq!(title_of(&lab), None);

    // Error("...") quarantines the HR object with its message; AD's value flows meanwhile.
    lab.write("hr.ldif", &hr_worker("bad", "title: lead"));
    lab.cycle();
    assert_eq!(title_of(&lab), Some(vec!["Engineer".to_string()]));
    let mut errors = Vec::new();
    lab.runner
        .store()
        .read()
        .unwrap()
        .for_each_cs(None, &mut |_, rec| {
            if let Some(e) = rec.error {
                errors.push(e.message);
            }
            Ok(())
        })
        .unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("HR record is bad: E-ann"),
        "{}",
        errors[0]
    );

    // Out of the expression scope: the HR object disconnects; fixed, the error clears.
    lab.write("hr.ldif", &hr_worker("ignored", "title: lead"));
    lab.cycle();
    assert_eq!(title_of(&lab), Some(vec!["Engineer".to_string()]));
    lab.write("hr.ldif", &hr_worker("active", "title: boss"));
    lab.cycle();
    assert_eq!(title_of(&lab), Some(vec!["BOSS".to_string()]));
}

#[test]
fn preview_shows_what_the_real_sync_then_does() {
    let ann = user("1", "cn=Ann,dc=ad", "ann", "title: Engineer\n");
    let bob = user("2", "cn=Bob,dc=ad", "bob", "manager: cn=Ann,dc=ad\n");
    let mut lab = Lab::new(
        &config(AD, "delete"),
        &[("ad.ldif", &format!("{ann}{bob}"))],
    );
    lab.runner.import_only(false).unwrap();
    let dn = Dn::parse("cn=Ann,dc=ad").unwrap();
    let p = lab.runner.preview("ad", &dn).unwrap().unwrap();
    assert_eq!(p.decision, crate::sync::Decision::Projects);
    assert_eq!(p.rules.len(), 1);
    assert!(p.rules[0].in_scope);
    let title = p.attributes.iter().find(|(a, _, _)| a == "title").unwrap();
    assert_eq!(title.2.as_ref().unwrap().rule, "ad-users");
    assert_eq!(p.exports.len(), 1);
    let export = &p.exports[0];
    assert_eq!(export.kind, crate::model::ExportKind::Add);
    assert_eq!(export.dn.norm(), key("uid=ann,ou=people,o=t"));
    // The preview changed nothing: a second one decides the same.
    let again = lab.runner.preview("ad", &dn).unwrap().unwrap();
    assert_eq!(again.decision, crate::sync::Decision::Projects);
    // And the real sync does what the preview said.
    lab.cycle();
    let t = lab.target();
    let entry = &t[&key("uid=ann,ou=people,o=t")];
    for change in &export.changes {
        let want: Vec<String> = match &change.op {
            crate::model::ChangeOp::Replace(v) => v.iter().map(|v| v.to_text()).collect(),
            other => panic!("an add carries replaces, not {other:?}"),
        };
        assert_eq!(entry[change.attr.key()], want, "{}", change.attr);
    }
    let after = lab.runner.preview("ad", &dn).unwrap().unwrap();
    assert!(matches!(
        after.decision,
        crate::sync::Decision::StaysJoined(_)
    ));
    assert!(after.exports.is_empty());
}

pub(super) fn users(range: std::ops::Range<usize>) -> String {
    range
        .map(|i| {
            user(
                &format!("u{i}"),
                &format!("cn=U{i},dc=ad"),
                &format!("u{i}"),
                "",
            )
        })
        .collect()
}

pub(super) fn reopen(lab: &mut Lab, config_text: &str) {
    // A new runner over the same folder: what a restart with an edited config does.
    std::fs::write(lab.dir.path().join("c.toml"), config_text).unwrap();
    let config = Config::load(&lab.dir.path().join("c.toml")).unwrap();
    let state = config.state_file.clone();
    let placeholder = Runner::new(
        config.clone(),
        Store::open(&lab.dir.path().join("scratch.redb")).unwrap(),
        Arc::new(FixedClock::at(1_000)),
        Shutdown::default(),
    );
    drop(std::mem::replace(&mut lab.runner, placeholder));
    lab.runner = Runner::new(
        config,
        Store::open(&state).unwrap(),
        Arc::new(FixedClock::at(2_000)),
        Shutdown::default(),
    );
}

#[test]
fn a_threshold_holding_only_deletes_holds_them_until_exactly_that_batch_is_approved() {
    let text = config(AD, "delete").replace(
        "anchor = \"entryUUID\"",
        "anchor = \"entryUUID\"\ndeletion_threshold = 5\ndeletion_threshold_holds = \"deletes\"",
    );
    let mut lab = Lab::new(&text, &[("ad.ldif", &users(0..20))]);
    lab.cycle();
    assert_eq!(lab.target().len(), 20);
    // Seven deletes: more than 5, so none goes; everything else still exports.
    lab.write("ad.ldif", &format!("{}{}", users(7..20), users(100..101)));
    let run = lab.cycle();
    assert_eq!(run.connectors[1].export.deletes, 0);
    assert_eq!(run.connectors[1].export.adds, 1);
    assert_eq!(run.connectors[1].blocked_deletes, 7);
    assert_eq!(lab.target().len(), 21);
    // Still held on the next cycle.
    assert_eq!(lab.cycle().connectors[1].blocked_deletes, 7);
    // Approval releases exactly those seven; two more deletes that arrive meanwhile are
    // under the threshold on their own and go too, but nothing else.
    let released = lab.runner.approve_deletes("out").unwrap();
    assert_eq!(released.len(), 7);
    lab.write("ad.ldif", &format!("{}{}", users(9..20), users(100..101)));
    let run = lab.cycle();
    assert_eq!(run.connectors[1].export.deletes, 9);
    assert_eq!(run.connectors[1].blocked_deletes, 0);
    assert_eq!(lab.target().len(), 12);
    // With a higher threshold, a batch under it goes at once.
    let higher = text.replace("deletion_threshold = 5", "deletion_threshold = 50");
    reopen(&mut lab, &higher);
    lab.write("ad.ldif", &users(100..101));
    let run = lab.cycle();
    assert_eq!(run.connectors[1].export.deletes, 11);
    assert_eq!(lab.target().len(), 1);
}

#[test]
fn staging_mode_exports_nothing_and_leaving_it_exports_exactly_what_was_pending() {
    let staged = format!("staging = true\n{}", config(AD, "delete"));
    let mut lab = Lab::new(&staged, &[("ad.ldif", &users(0..10))]);
    let run = lab.cycle();
    assert!(run.staging);
    assert_eq!(run.connectors[1].export.total(), 0);
    assert_eq!(run.connectors[1].pending, 10);
    assert!(lab.target().is_empty(), "staging wrote the target");
    // Changes keep accumulating as pending exports, still without touching the target.
    lab.write("ad.ldif", &users(0..12));
    assert_eq!(lab.cycle().connectors[1].pending, 12);
    assert!(lab.target().is_empty());
    // Leaving staging is an explicit config change; the next cycle exports what was shown.
    reopen(&mut lab, &config(AD, "delete"));
    let run = lab.cycle();
    assert!(!run.staging);
    assert_eq!(run.connectors[1].export.adds, 12);
    assert_eq!(run.connectors[1].pending, 0);
    assert_eq!(lab.target().len(), 12);
}

/// A target that refuses exports to chosen DNs the way a directory does, and records
/// every export it is asked for; everything else goes to a real LDIF target.
struct Refusing {
    inner: Box<dyn crate::connector::Connector>,
    refuse: Arc<std::sync::Mutex<Vec<String>>>,
    asked: Arc<std::sync::Mutex<Vec<String>>>,
}

impl crate::connector::Connector for Refusing {
    fn name(&self) -> &crate::model::ConnectorName {
        self.inner.name()
    }
    fn check(&mut self) -> Result<(), crate::connector::ConnectorError> {
        self.inner.check()
    }
    fn import(
        &mut self,
        watermark: Option<&crate::model::Watermark>,
        full: bool,
        sink: &mut dyn crate::connector::ImportSink,
    ) -> Result<crate::connector::ImportEnd, crate::connector::ConnectorError> {
        self.inner.import(watermark, full, sink)
    }
    fn export(
        &mut self,
        items: &[crate::model::ExportItem],
    ) -> Result<Vec<crate::model::ExportOutcome>, crate::connector::ConnectorError> {
        let mut out = Vec::new();
        for item in items {
            self.asked.lock().unwrap().push(item.dn.norm().to_string());
            if self
                .refuse
                .lock()
                .unwrap()
                .contains(&item.dn.norm().to_string())
            {
                out.push(crate::model::ExportOutcome::Failed {
                    message: "00002071: UpdErr: DSID-030503F8, problem 6005 (ENTRY_EXISTS)".into(),
                    retryable: false,
                });
            } else {
                out.extend(self.inner.export(std::slice::from_ref(item))?);
            }
        }
        Ok(out)
    }
    fn finish_export(
        &mut self,
        space: &dyn crate::connector::SpaceView,
    ) -> Result<Option<crate::model::Watermark>, crate::connector::ConnectorError> {
        self.inner.finish_export(space)
    }
}

#[test]
fn a_refused_export_stays_pending_with_the_directory_message_and_is_retried_with_backoff() {
    let mut lab = Lab::new(&config(AD, "delete"), &[("ad.ldif", &users(0..4))]);
    let bad = key("uid=u1,ou=people,o=t");
    let refuse = Arc::new(std::sync::Mutex::new(vec![bad.clone()]));
    let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let target = lab.runner.config().connectors[1].clone();
    lab.runner.replace_connector(
        1,
        Box::new(Refusing {
            inner: crate::connector::build(&target),
            refuse: refuse.clone(),
            asked: asked.clone(),
        }),
    );
    let tries = |asked: &Arc<std::sync::Mutex<Vec<String>>>| {
        asked.lock().unwrap().iter().filter(|d| **d == bad).count()
    };
    let run = lab.cycle();
    assert_eq!(run.connectors[1].export.adds, 3);
    assert_eq!(run.connectors[1].errors, 1);
    assert_eq!(run.connectors[1].pending, 1);
    assert_eq!(lab.target().len(), 3);
    assert_eq!(tries(&asked), 1);
    let error = |lab: &Lab| {
        let tx = lab.runner.store().read().unwrap();
        let mut found = None;
        tx.for_each_cs(None, &mut |_, rec| {
            if rec.error.is_some() {
                found = rec.error;
            }
            Ok(())
        })
        .unwrap();
        found
    };
    let e = error(&lab).unwrap();
    assert!(e.message.contains("ENTRY_EXISTS"), "{}", e.message);
    assert!(
        e.message.contains("uid=u1"),
        "the error names the object: {}",
        e.message
    );
    // Straight away: not asked again (30 s backoff).
    lab.cycle();
    assert_eq!(tries(&asked), 1);
    lab.clock.advance(31_000);
    lab.cycle();
    assert_eq!(tries(&asked), 2);
    assert_eq!(error(&lab).unwrap().attempts, 2);
    // The delay doubles: 31 s later is too early, 61 s is not.
    lab.clock.advance(31_000);
    lab.cycle();
    assert_eq!(tries(&asked), 2);
    lab.clock.advance(30_000);
    lab.cycle();
    assert_eq!(tries(&asked), 3);
    // The directory accepts it now: exported, error gone, nothing pending.
    refuse.lock().unwrap().clear();
    lab.clock.advance(600_000);
    let run = lab.cycle();
    assert_eq!(run.connectors[1].export.adds, 1);
    assert_eq!(run.connectors[1].pending, 0);
    assert!(error(&lab).is_none());
    assert_eq!(lab.target().len(), 4);
}

fn mv_errors(lab: &Lab) -> Vec<String> {
    let mut out = Vec::new();
    lab.runner
        .store()
        .read()
        .unwrap()
        .for_each_mv(&mut |_, rec| {
            if let Some(e) = rec.error {
                out.push(e.message);
            }
            Ok(())
        })
        .unwrap();
    out
}

#[test]
fn a_unique_value_conflict_quarantines_the_later_object_and_clears_itself() {
    let text = config(AD, "delete")
        .replace(
            "anchor = \"entryUUID\"",
            "anchor = \"entryUUID\"\nunique_attributes = [\"mail\"]",
        )
        .replace(
            "{ target = \"uid\", source = \"uid\" }, { target = \"title\"",
            "{ target = \"uid\", source = \"uid\" }, { target = \"mail\", source = \"mail\" }, { target = \"title\"",
        );
    let a = user("1", "cn=A,dc=ad", "a", "mail: same@x.test\n");
    let b = user("2", "cn=B,dc=ad", "b", "mail: Same@X.test\n");
    let mut lab = Lab::new(&text, &[("ad.ldif", &format!("{a}{b}"))]);
    let run = lab.cycle();
    assert_eq!(
        run.connectors[1].export.adds, 1,
        "only the first object goes out"
    );
    let t = lab.target();
    assert!(t.contains_key(&key("uid=a,ou=people,o=t")));
    assert!(!t.contains_key(&key("uid=b,ou=people,o=t")));
    let errors = mv_errors(&lab);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("uid=a,ou=people,o=t") && errors[0].contains("same@x.test"),
        "the message names the holder and the value: {}",
        errors[0]
    );
    // The holder changes its mail: the value frees up and the waiting object goes out.
    let a2 = user("1", "cn=A,dc=ad", "a", "mail: other@x.test\n");
    lab.write("ad.ldif", &format!("{a2}{b}"));
    let run = lab.cycle();
    assert_eq!(run.connectors[1].export.adds, 1);
    assert_eq!(run.connectors[1].export.updates, 1);
    assert!(mv_errors(&lab).is_empty(), "{:?}", mv_errors(&lab));
    assert_eq!(lab.target().len(), 2);
    // A new clash, fixed on the later object's side.
    let c = user("3", "cn=C,dc=ad", "c", "mail: other@x.test\n");
    lab.write("ad.ldif", &format!("{a2}{b}{c}"));
    lab.cycle();
    assert_eq!(mv_errors(&lab).len(), 1);
    let c2 = user("3", "cn=C,dc=ad", "c", "mail: c@x.test\n");
    lab.write("ad.ldif", &format!("{a2}{b}{c2}"));
    lab.cycle();
    assert!(mv_errors(&lab).is_empty());
    assert_eq!(lab.target().len(), 3);
}

#[test]
fn a_dn_expression_places_objects_and_moves_them_when_it_changes() {
    let text = config(AD, "delete").replace(
        "dn = \"uid={uid},ou=people,o=t\"",
        "dn_expression = \"\\\"uid=\\\" & LCase([uid]) & \\\",ou=\\\" & IIF([title] = \\\"Boss\\\", \\\"bosses\\\", \\\"people\\\") & \\\",o=t\\\"\"",
    );
    let ann = |title: &str| user("1", "cn=Ann,dc=ad", "Ann", &format!("title: {title}\n"));
    let mut lab = Lab::new(&text, &[("ad.ldif", &ann("Boss"))]);
    lab.cycle();
    assert!(lab.target().contains_key(&key("uid=ann,ou=bosses,o=t")));
    lab.write("ad.ldif", &ann("Engineer"));
    let run = lab.cycle();
    assert_eq!(run.connectors[1].export.renames, 1);
    let t = lab.target();
    assert!(
        t.contains_key(&key("uid=ann,ou=people,o=t")),
        "{:?}",
        t.keys()
    );
    assert_eq!(t.len(), 1);
}
