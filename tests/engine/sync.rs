//! The sync engine on its own, without a connector or the runner (here rather than inside
//! `src/sync`, whose lane may not use `config`, which builds the rules): connector-space records
//! are written straight into a store, queued, synced, and the metaverse and the pending
//! exports read back. Inbound: precedence and its fallback, join order, an ambiguous join,
//! scope exit. Outbound: provisioning, a rename from the DN template, deprovisioning, and
//! references rendered as the target's own DNs.

use std::collections::HashMap;

use bridgehead::config::Config;
use bridgehead::model::{
    Anchor, AttrName, ChangeOp, ConnectorName, CsId, Dn, ExportKind, MvId, RefTarget, Value,
    ValueSet,
};
use bridgehead::store::{CsRecord, MvRecord, PendingExportRecord, Store};
use bridgehead::sync::{SyncContext, SyncStats, inbound_batch, outbound_batch};

const RULES: &str = r#"
state_file = "state.redb"

[[connector]]
name = "hr"
type = "ldif"
mode = "source"
path = "hr.ldif"
anchor = "entryUUID"

[[connector]]
name = "crm"
type = "ldif"
mode = "source"
path = "crm.ldif"
anchor = "entryUUID"

[[connector]]
name = "out"
type = "ldif"
mode = "target"
path = "out.ldif"
anchor = "entryUUID"

[[inbound]]
name = "hr-people"
connector = "hr"
object_class = "inetOrgPerson"
object_type = "person"
precedence = 10
scope = [{ attribute = "employeeType", operator = "notEqual", value = "left" }]
join = [[{ cs = "employeeNumber", mv = "employeeNumber" }]]
flows = [
  { target = "uid", source = "uid" },
  { target = "cn", source = "cn" },
  { target = "mail", source = "mail" },
  { target = "employeeNumber", source = "employeeNumber" },
]

[[inbound]]
name = "crm-people"
connector = "crm"
object_class = "inetOrgPerson"
object_type = "person"
precedence = 20
project = false
join = [
  [{ cs = "employeeNumber", mv = "employeeNumber" }],
  [{ cs = "mail", mv = "mail" }],
]
flows = [
  { target = "mail", source = "mail" },
  { target = "telephoneNumber", source = "telephoneNumber" },
]

[[inbound]]
name = "hr-groups"
connector = "hr"
object_class = "groupOfNames"
object_type = "group"
precedence = 10
flows = [
  { target = "cn", source = "cn" },
  { target = "member", source = "member" },
]

[[outbound]]
name = "out-people"
connector = "out"
object_type = "person"
object_class = "inetOrgPerson"
dn = "uid={uid},ou=people,dc=out"
deprovision = "delete"
flows = [
  { target = "uid", source = "uid" },
  { target = "cn", source = "cn" },
  { target = "mail", source = "mail" },
  { target = "telephoneNumber", source = "telephoneNumber" },
]

[[outbound]]
name = "out-groups"
connector = "out"
object_type = "group"
object_class = "groupOfNames"
dn = "cn={cn},ou=groups,dc=out"
deprovision = "delete"
flows = [
  { target = "cn", source = "cn" },
  { target = "member", source = "member" },
]
"#;

struct Bench {
    _dir: tempfile::TempDir,
    config: Config,
    store: Store,
    partitions: HashMap<ConnectorName, Vec<Dn>>,
    unique: HashMap<ConnectorName, Vec<AttrName>>,
}

fn dn(s: &str) -> Dn {
    Dn::parse(s).unwrap()
}

impl Bench {
    fn new() -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        let config = Config::parse(RULES, &path).unwrap();
        let store = Store::open(&config.state_file).unwrap();
        {
            let mut tx = store.write().unwrap();
            tx.ensure_join_index(&config.rules.join_attributes())
                .unwrap();
            tx.commit().unwrap();
        }
        Bench {
            _dir: dir,
            config,
            store,
            partitions: HashMap::new(),
            unique: HashMap::new(),
        }
    }

    /// Writes (or rewrites) a source object as an import would, and queues it.
    fn import(
        &self,
        conn: &str,
        anchor: &str,
        at: &str,
        class: &str,
        attrs: &[(&str, &[&str])],
    ) -> CsId {
        let tx = self.store.write().unwrap();
        let c = ConnectorName::new(conn).unwrap();
        let id = match tx
            .cs_by_anchor(&c, &Anchor::new(anchor.as_bytes().to_vec()))
            .unwrap()
        {
            Some(id) => id,
            None => tx.new_cs_id().unwrap(),
        };
        let mut rec = tx.cs(id).unwrap().unwrap_or(CsRecord {
            connector: conn.into(),
            anchor: Some(anchor.as_bytes().to_vec()),
            dn: dn(at),
            object_class: class.into(),
            attrs: Default::default(),
            deleted: false,
            object_type: None,
            export: None,
            error: None,
            unresolved: Vec::new(),
            unconfirmed: false,
            claims: Vec::new(),
        });
        rec.dn = dn(at);
        rec.attrs = Default::default();
        for (name, values) in attrs {
            let mut set = ValueSet::new();
            for v in *values {
                set.insert(if name.eq_ignore_ascii_case("member") {
                    Value::Reference(RefTarget::Dn(dn(v)))
                } else {
                    Value::str(*v)
                });
            }
            rec.attrs.set(AttrName::new(name), set);
        }
        tx.put_cs(id, &rec).unwrap();
        tx.mark_inbound(conn, id).unwrap();
        tx.commit().unwrap();
        id
    }

    /// Marks a source object deleted, as an import that saw it go does.
    fn delete(&self, id: CsId) {
        let tx = self.store.write().unwrap();
        let mut rec = tx.cs(id).unwrap().unwrap();
        rec.deleted = true;
        tx.put_cs(id, &rec).unwrap();
        tx.mark_inbound(&rec.connector, id).unwrap();
        tx.commit().unwrap();
    }

    /// Inbound until the queue is empty, then outbound.
    fn sync(&self) -> SyncStats {
        let ctx = SyncContext {
            rules: &self.config.rules,
            partitions: &self.partitions,
            unique: &self.unique,
            now_ms: 1_000,
        };
        let mut stats = SyncStats::default();
        let tx = self.store.write().unwrap();
        while inbound_batch(&tx, &ctx, 100, &mut stats).unwrap() > 0 {}
        // As the runner does: what found nothing to join gets one more try after this
        // pass's projections.
        if stats.projected > 0 {
            for (conn, id) in tx.join_waiting().unwrap() {
                tx.mark_inbound(&conn, id).unwrap();
            }
            while inbound_batch(&tx, &ctx, 100, &mut stats).unwrap() > 0 {}
        }
        while outbound_batch(&tx, &ctx, 100, &mut stats).unwrap() > 0 {}
        tx.commit().unwrap();
        stats
    }

    fn mv_of(&self, cs: CsId) -> Option<(MvId, MvRecord)> {
        let tx = self.store.write().unwrap();
        let (id, _) = tx.link_of(cs).unwrap()?;
        Some((id, tx.mv(id).unwrap()?))
    }

    /// The target object of an MV object, and its pending export.
    fn target_of(&self, mv: MvId) -> Option<(CsId, CsRecord)> {
        let tx = self.store.write().unwrap();
        let id = tx.link_in(mv, "out").unwrap()?;
        Some((id, tx.cs(id).unwrap()?))
    }

    /// A target object (by DN) after the exports were applied, as a confirming import
    /// would leave it: the pending export taken into the hologram and cleared.
    fn applied(&self, at: &str) {
        let tx = self.store.write().unwrap();
        let c = ConnectorName::new("out").unwrap();
        let id = tx.cs_by_dn(&c, &dn(at)).unwrap().unwrap();
        let mut rec = tx.cs(id).unwrap().unwrap();
        let export = rec.export.take().unwrap();
        bridgehead::sync::apply_changes(&mut rec.attrs, &export.changes);
        if let Some(new_dn) = export.new_dn {
            rec.dn = new_dn;
        }
        if rec.anchor.is_none() {
            rec.anchor = Some(format!("out-{}", id.0).into_bytes());
        }
        tx.put_cs(id, &rec).unwrap();
        tx.commit().unwrap();
    }
}

fn text(rec: &MvRecord, attr: &str) -> Option<String> {
    rec.attrs.first_text(attr)
}

fn change<'a>(e: &'a PendingExportRecord, attr: &str) -> Option<&'a ChangeOp> {
    e.changes.iter().find(|c| c.attr.is(attr)).map(|c| &c.op)
}

fn values(op: Option<&ChangeOp>) -> Vec<String> {
    match op {
        Some(ChangeOp::Replace(v) | ChangeOp::Add(v) | ChangeOp::Remove(v)) => {
            v.iter().map(Value::to_text).collect()
        }
        None => Vec::new(),
    }
}

#[test]
fn inbound_the_lowest_precedence_with_a_value_wins_and_the_next_takes_over() {
    let b = Bench::new();
    let hr = b.import(
        "hr",
        "h1",
        "uid=ada,ou=p,dc=hr",
        "inetOrgPerson",
        &[
            ("uid", &["ada"]),
            ("cn", &["Ada"]),
            ("mail", &["ada@hr.test"]),
            ("employeeNumber", &["E1"]),
        ],
    );
    let crm = b.import(
        "crm",
        "c1",
        "cn=ada,dc=crm",
        "inetOrgPerson",
        &[
            ("employeeNumber", &["E1"]),
            ("mail", &["ada@crm.test"]),
            ("telephoneNumber", &["+1 555"]),
        ],
    );
    let stats = b.sync();
    assert_eq!((stats.projected, stats.joined), (1, 1));
    let (id, mv) = b.mv_of(hr).unwrap();
    assert_eq!(
        b.mv_of(crm).map(|m| m.0),
        Some(id),
        "crm joined hr's object"
    );
    assert_eq!(text(&mv, "mail").as_deref(), Some("ada@hr.test"));
    assert_eq!(text(&mv, "telephoneNumber").as_deref(), Some("+1 555"));
    assert_eq!(
        mv.contributor("mail").map(|c| c.rule.as_str()),
        Some("hr-people")
    );
    // HR drops the mail: CRM's value, next in precedence, takes over.
    b.import(
        "hr",
        "h1",
        "uid=ada,ou=p,dc=hr",
        "inetOrgPerson",
        &[
            ("uid", &["ada"]),
            ("cn", &["Ada"]),
            ("employeeNumber", &["E1"]),
        ],
    );
    b.sync();
    let (_, mv) = b.mv_of(hr).unwrap();
    assert_eq!(text(&mv, "mail").as_deref(), Some("ada@crm.test"));
    assert_eq!(
        mv.contributor("mail").map(|c| c.rule.as_str()),
        Some("crm-people")
    );
}

#[test]
fn inbound_join_rules_are_tried_in_order_and_an_ambiguous_join_is_an_error() {
    let b = Bench::new();
    let mut hr = Vec::new();
    for (a, uid, mail, num) in [
        ("h1", "ada", "ada@x.test", "E1"),
        ("h2", "alan", "alan@x.test", "E2"),
    ] {
        hr.push(b.import(
            "hr",
            a,
            &format!("uid={uid},ou=p,dc=hr"),
            "inetOrgPerson",
            &[
                ("uid", &[uid]),
                ("mail", &[mail]),
                ("employeeNumber", &[num]),
            ],
        ));
    }
    // The first join rule (employeeNumber) decides before the second (mail) is tried: this
    // object's mail is Alan's but its number is Ada's.
    let by_number = b.import(
        "crm",
        "c1",
        "cn=one,dc=crm",
        "inetOrgPerson",
        &[("employeeNumber", &["E1"]), ("mail", &["alan@x.test"])],
    );
    // No number: the mail rule joins, without regard to case.
    let by_mail = b.import(
        "crm",
        "c2",
        "cn=two,dc=crm",
        "inetOrgPerson",
        &[("mail", &["ALAN@x.test"])],
    );
    b.sync();
    let ada = b.mv_of(hr[0]).unwrap().0;
    let alan = b.mv_of(hr[1]).unwrap().0;
    assert_eq!(b.mv_of(by_number).map(|m| m.0), Some(ada));
    assert_eq!(b.mv_of(by_mail).map(|m| m.0), Some(alan));
    // Two HR people with one employeeNumber: the second cannot join the first's MV object
    // (it holds an HR object already), so each projects its own, and the number join is
    // ambiguous for a new CRM object: it joins neither and carries an error naming the rule.
    for (a, uid) in [("h3", "ada2"), ("h4", "ada3")] {
        b.import(
            "hr",
            a,
            &format!("uid={uid},ou=p,dc=hr"),
            "inetOrgPerson",
            &[("uid", &[uid]), ("employeeNumber", &["E9"])],
        );
    }
    b.sync();
    let ambiguous = b.import(
        "crm",
        "c3",
        "cn=three,dc=crm",
        "inetOrgPerson",
        &[("employeeNumber", &["E9"])],
    );
    b.sync();
    assert!(
        b.mv_of(ambiguous).is_none(),
        "an ambiguous join must not join"
    );
    let tx = b.store.write().unwrap();
    let err = tx.cs(ambiguous).unwrap().unwrap().error.unwrap();
    for w in ["ambiguous join", "crm-people", "matches 2"] {
        assert!(err.message.contains(w), "{w}: {}", err.message);
    }
}

#[test]
fn inbound_leaving_scope_disconnects_and_outbound_deprovisions() {
    let b = Bench::new();
    let hr = b.import(
        "hr",
        "h1",
        "uid=ada,ou=p,dc=hr",
        "inetOrgPerson",
        &[
            ("uid", &["ada"]),
            ("cn", &["Ada"]),
            ("employeeNumber", &["E1"]),
        ],
    );
    b.sync();
    let (mv, _) = b.mv_of(hr).unwrap();
    b.applied("uid=ada,ou=people,dc=out");
    b.import(
        "hr",
        "h1",
        "uid=ada,ou=p,dc=hr",
        "inetOrgPerson",
        &[
            ("uid", &["ada"]),
            ("cn", &["Ada"]),
            ("employeeNumber", &["E1"]),
            ("employeeType", &["left"]),
        ],
    );
    let stats = b.sync();
    assert_eq!(
        (stats.disconnected, stats.deprovisioned),
        (1, 1),
        "{stats:?}"
    );
    assert!(b.mv_of(hr).is_none(), "still linked after leaving scope");
    let tx = b.store.write().unwrap();
    let c = ConnectorName::new("out").unwrap();
    let target = tx
        .cs_by_dn(&c, &dn("uid=ada,ou=people,dc=out"))
        .unwrap()
        .unwrap();
    let export = tx.cs(target).unwrap().unwrap().export.unwrap();
    assert_eq!(export.kind, ExportKind::Delete);
    drop(tx);
    // The MV object is gone once nothing contributes and the target's delete is queued.
    let tx = b.store.write().unwrap();
    assert!(tx.mv(mv).unwrap().is_none_or(|m| m.deleted));
}

#[test]
fn outbound_provisions_renames_from_the_template_and_deletes() {
    let b = Bench::new();
    let hr = b.import(
        "hr",
        "h1",
        "uid=ada,ou=p,dc=hr",
        "inetOrgPerson",
        &[
            ("uid", &["ada"]),
            ("cn", &["Ada"]),
            ("mail", &["ada@x.test"]),
            ("employeeNumber", &["E1"]),
        ],
    );
    let stats = b.sync();
    assert_eq!(stats.provisioned, 1);
    let (mv, _) = b.mv_of(hr).unwrap();
    let (_, target) = b.target_of(mv).unwrap();
    assert_eq!(target.dn.as_str(), "uid=ada,ou=people,dc=out");
    let add = target.export.clone().unwrap();
    assert_eq!(add.kind, ExportKind::Add);
    assert_eq!(values(change(&add, "mail")), ["ada@x.test"]);
    assert_eq!(values(change(&add, "cn")), ["Ada"]);
    b.applied("uid=ada,ou=people,dc=out");
    // A new uid moves the object: an update with the new DN and the new value.
    b.import(
        "hr",
        "h1",
        "uid=ada,ou=p,dc=hr",
        "inetOrgPerson",
        &[
            ("uid", &["ada.l"]),
            ("cn", &["Ada"]),
            ("mail", &["ada@x.test"]),
            ("employeeNumber", &["E1"]),
        ],
    );
    b.sync();
    let (_, target) = b.target_of(mv).unwrap();
    let update = target.export.clone().unwrap();
    assert_eq!(update.kind, ExportKind::Update);
    assert_eq!(
        update.new_dn.as_ref().map(|d| d.to_string()).as_deref(),
        Some("uid=ada.l,ou=people,dc=out")
    );
    assert_eq!(values(change(&update, "uid")), ["ada.l"]);
    assert!(
        change(&update, "mail").is_none(),
        "an unchanged value is not exported"
    );
    b.applied("uid=ada,ou=people,dc=out");
    // Deleted at the source: deleted in the target.
    b.delete(hr);
    let stats = b.sync();
    assert_eq!(stats.deprovisioned, 1, "{stats:?}");
    let tx = b.store.write().unwrap();
    let c = ConnectorName::new("out").unwrap();
    let id = tx
        .cs_by_dn(&c, &dn("uid=ada.l,ou=people,dc=out"))
        .unwrap()
        .unwrap();
    assert_eq!(
        tx.cs(id).unwrap().unwrap().export.map(|e| e.kind),
        Some(ExportKind::Delete)
    );
}

#[test]
fn outbound_references_are_written_as_the_targets_own_dns() {
    let b = Bench::new();
    for (a, uid, num) in [("h1", "ada", "E1"), ("h2", "alan", "E2")] {
        b.import(
            "hr",
            a,
            &format!("uid={uid},ou=p,dc=hr"),
            "inetOrgPerson",
            &[("uid", &[uid]), ("cn", &[uid]), ("employeeNumber", &[num])],
        );
    }
    let group = b.import(
        "hr",
        "g1",
        "cn=pioneers,ou=g,dc=hr",
        "groupOfNames",
        &[
            ("cn", &["pioneers"]),
            ("member", &["uid=ada,ou=p,dc=hr", "UID=Alan,ou=p,dc=hr"]),
        ],
    );
    b.sync();
    let (mv, rec) = b.mv_of(group).unwrap();
    // In the metaverse the members are MV objects, whatever spelling the source used.
    let members: Vec<Option<MvId>> = rec
        .attrs
        .get("member")
        .unwrap()
        .iter()
        .map(Value::as_mv_ref)
        .collect();
    assert_eq!(members.len(), 2);
    assert!(members.iter().all(Option::is_some), "{members:?}");
    let (_, target) = b.target_of(mv).unwrap();
    let add = target.export.unwrap();
    let mut rendered = values(change(&add, "member"));
    rendered.sort();
    assert_eq!(
        rendered,
        ["uid=ada,ou=people,dc=out", "uid=alan,ou=people,dc=out"]
    );
}
