//! The double's tenant: directory objects, their change sequence (what delta queries
//! replay), the write budget and the request log.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use serde_json::{Map, Value as Json, json};

/// The kinds of directory object the double holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `microsoft.graph.user`.
    User,
    /// `microsoft.graph.group`.
    Group,
    /// `microsoft.graph.orgContact` (read-only in Graph).
    Contact,
    /// `microsoft.graph.device`.
    Device,
}

impl Kind {
    /// The collection segment (`users`, …).
    pub fn segment(self) -> &'static str {
        match self {
            Kind::User => "users",
            Kind::Group => "groups",
            Kind::Contact => "contacts",
            Kind::Device => "devices",
        }
    }

    /// The `@odata.type` value.
    pub fn odata_type(self) -> &'static str {
        match self {
            Kind::User => "#microsoft.graph.user",
            Kind::Group => "#microsoft.graph.group",
            Kind::Contact => "#microsoft.graph.orgContact",
            Kind::Device => "#microsoft.graph.device",
        }
    }
}

/// One directory object.
#[derive(Clone, Debug)]
pub struct Obj {
    /// Its object id (a GUID).
    pub id: String,
    /// Its kind.
    pub kind: Kind,
    /// Its stored properties (no `id`, no navigation properties).
    pub props: Map<String, Json>,
    /// Group members, by id.
    pub members: BTreeSet<String>,
    /// Group owners, by id.
    pub owners: BTreeSet<String>,
    /// A user's manager, by id.
    pub manager: Option<String>,
    /// When it was created (for the replication lag).
    pub created: Instant,
    /// The change sequence number of its last change.
    pub seq: u64,
    /// Deleted (soft-deleted for users and groups): kept for delta's `@removed`.
    pub deleted: bool,
}

impl Obj {
    /// A property as text.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.props.get(name).and_then(Json::as_str)
    }
}

/// One member change of a group, for `members@delta`.
#[derive(Clone, Debug)]
pub struct MemberChange {
    /// Its sequence number.
    pub seq: u64,
    /// The group.
    pub group: String,
    /// The member.
    pub member: String,
    /// Added (true) or removed.
    pub added: bool,
}

/// A delta round in progress or a deltaLink: where it starts, and what it selects.
#[derive(Clone, Debug)]
pub struct DeltaState {
    /// The collection.
    pub kind: Kind,
    /// Changes after this sequence number are reported.
    pub from: u64,
    /// ... up to this one (fixed when the round started).
    pub upto: u64,
    /// `$select`, as the first request gave it.
    pub select: Option<Vec<String>>,
    /// Entries already sent in this round.
    pub offset: usize,
}

/// A budget of directory writes: at most `writes` in any sliding `window`.
#[derive(Clone, Copy, Debug)]
pub struct Budget {
    /// Writes allowed per window.
    pub writes: usize,
    /// The window.
    pub window: Duration,
}

/// One logged request: method, path with query, status, and whether it was inside a batch.
#[derive(Clone, Debug)]
pub struct Logged {
    /// The method.
    pub method: String,
    /// The path and query.
    pub target: String,
    /// The answer's status.
    pub status: u16,
    /// Sent inside a `$batch`.
    pub in_batch: bool,
}

/// The tenant's whole state.
#[derive(Default)]
pub struct Directory {
    /// Every object ever made, by id (deleted ones stay, marked).
    pub objects: BTreeMap<String, Obj>,
    /// The last change sequence number handed out.
    pub seq: u64,
    /// Group member changes, in order.
    pub member_log: Vec<MemberChange>,
    /// Delta rounds and deltaLinks, by token.
    pub delta: HashMap<String, DeltaState>,
    /// The write budget, if any.
    pub budget: Option<Budget>,
    /// When recent accepted writes happened (for the budget).
    pub recent_writes: VecDeque<Instant>,
    /// Accepted writes, in all.
    pub writes: u64,
    /// Writes refused with 429.
    pub throttled: u64,
    /// The most accepted writes seen in any window of the budget.
    pub peak_window: usize,
    /// Every request, in order.
    pub log: Vec<Logged>,
    /// Access tokens handed out, with their expiry.
    pub tokens: HashMap<String, Instant>,
    /// How long after a create the object is not yet readable (replication).
    pub create_lag: Duration,
    /// Directory extension properties registered on applications: (app object id, name).
    pub extensions: Vec<(String, Json)>,
}

impl Directory {
    /// The next change sequence number.
    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// A live (not deleted) object.
    pub fn live(&self, id: &str) -> Option<&Obj> {
        self.objects.get(id).filter(|o| !o.deleted)
    }

    /// Whether a live object is still within its replication lag.
    pub fn lagging(&self, id: &str) -> bool {
        self.live(id)
            .is_some_and(|o| o.created.elapsed() < self.create_lag)
    }

    /// Takes one write from the budget; Err(seconds to wait) when it is spent.
    pub fn take_write(&mut self) -> Result<(), u64> {
        let now = Instant::now();
        if let Some(b) = self.budget {
            while self
                .recent_writes
                .front()
                .is_some_and(|t| now.duration_since(*t) >= b.window)
            {
                self.recent_writes.pop_front();
            }
            if self.recent_writes.len() >= b.writes {
                self.throttled += 1;
                let oldest = self.recent_writes.front().copied().unwrap_or(now);
                let free_at = b.window.saturating_sub(now.duration_since(oldest));
                return Err(free_at.as_secs_f64().ceil().max(1.0) as u64);
            }
            self.recent_writes.push_back(now);
            self.peak_window = self.peak_window.max(self.recent_writes.len());
        }
        self.writes += 1;
        Ok(())
    }

    /// How much of the budget's window is used, in percent (for `x-ms-throttle-*`).
    pub fn budget_used_percent(&self) -> Option<usize> {
        let b = self.budget?;
        Some(self.recent_writes.len() * 100 / b.writes.max(1))
    }

    /// Adds an object (a create, or a test's seed); returns its id.
    pub fn insert(&mut self, kind: Kind, props: Map<String, Json>) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let seq = self.next_seq();
        self.objects.insert(
            id.clone(),
            Obj {
                id: id.clone(),
                kind,
                props,
                members: BTreeSet::new(),
                owners: BTreeSet::new(),
                manager: None,
                created: Instant::now(),
                seq,
                deleted: false,
            },
        );
        id
    }

    /// Marks an object changed now.
    pub fn touch(&mut self, id: &str) {
        let seq = self.next_seq();
        if let Some(o) = self.objects.get_mut(id) {
            o.seq = seq;
        }
    }

    /// Adds or removes a member; false when nothing changed.
    pub fn set_member(&mut self, group: &str, member: &str, added: bool) -> bool {
        let seq = self.next_seq();
        let Some(g) = self.objects.get_mut(group) else {
            return false;
        };
        let changed = if added {
            g.members.insert(member.to_string())
        } else {
            g.members.remove(member)
        };
        if changed {
            self.member_log.push(MemberChange {
                seq,
                group: group.to_string(),
                member: member.to_string(),
                added,
            });
        }
        changed
    }

    /// Deletes an object: it leaves every group it was in, and the groups' deltas say so.
    pub fn delete(&mut self, id: &str) {
        let groups: Vec<String> = self
            .objects
            .values()
            .filter(|g| !g.deleted && g.members.contains(id))
            .map(|g| g.id.clone())
            .collect();
        for g in groups {
            self.set_member(&g, id, false);
        }
        let reports: Vec<String> = self
            .objects
            .values()
            .filter(|u| u.manager.as_deref() == Some(id))
            .map(|u| u.id.clone())
            .collect();
        for u in reports {
            if let Some(o) = self.objects.get_mut(&u) {
                o.manager = None;
            }
        }
        let seq = self.next_seq();
        if let Some(o) = self.objects.get_mut(id) {
            o.deleted = true;
            o.seq = seq;
        }
    }

    /// The live objects of one kind whose property `name` equals `value` (case-insensitive, as
    /// Graph compares names; exact for onPremisesImmutableId, whose base64 is case-sensitive),
    /// or holds it, for a multi-valued property.
    pub fn find<'a>(
        &'a self,
        kind: Kind,
        name: &'a str,
        value: &'a str,
    ) -> impl Iterator<Item = &'a Obj> + 'a {
        self.objects
            .values()
            .filter(move |o| o.kind == kind && !o.deleted)
            .filter(move |o| match o.props.get(name) {
                Some(Json::String(s)) if name == "onPremisesImmutableId" => s == value,
                Some(Json::String(s)) => s.eq_ignore_ascii_case(value),
                Some(Json::Array(a)) => a
                    .iter()
                    .any(|v| v.as_str().is_some_and(|s| s.eq_ignore_ascii_case(value))),
                _ => false,
            })
    }

    /// One object as Graph shows it, limited to `select` (or the kind's default set).
    pub fn render(&self, o: &Obj, select: Option<&[String]>) -> Json {
        let mut out = Map::new();
        out.insert("@odata.type".into(), json!(o.kind.odata_type()));
        out.insert("id".into(), json!(o.id));
        match select {
            Some(names) => {
                for n in names {
                    if n == "id" || n == "members" || n == "manager" {
                        continue;
                    }
                    // Graph returns a selected property it knows even when unset, as null.
                    out.insert(n.clone(), o.props.get(n).cloned().unwrap_or(Json::Null));
                }
            }
            None => {
                for (k, v) in &o.props {
                    if default_property(o.kind, k) {
                        out.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        Json::Object(out)
    }
}

/// Whether a property is returned without `$select`. Graph's default set for users is
/// small (the user resource's documentation lists it); `onPremises*`, `employeeId` and the
/// like come only when selected. Groups and the rest: everything stored.
fn default_property(kind: Kind, name: &str) -> bool {
    const USER_DEFAULT: &[&str] = &[
        "businessPhones",
        "displayName",
        "givenName",
        "jobTitle",
        "mail",
        "mobilePhone",
        "officeLocation",
        "preferredLanguage",
        "surname",
        "userPrincipalName",
    ];
    match kind {
        Kind::User => USER_DEFAULT.contains(&name),
        _ => name != "passwordProfile",
    }
}
