//! The directory changes of the differential test: a model of what each world's sources
//! hold, random changes drawn from it (seeded), and their application to the real servers
//! with the OpenLDAP tools. A change carries everything needed to replay it, and is skipped
//! on replay when the model says it no longer applies (a shrunk sequence may have lost the
//! change that created its object).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use base64::Engine as _;

use super::world::{self, GROUPS, Sources};
use crate::support::escape_rdn_value;
use crate::support::lab::LdapServer;

/// A small, seedable generator (SplitMix64): the same seed gives the same sequence on every
/// machine and every Rust version.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> Option<T> {
        (!items.is_empty()).then(|| items[self.below(items.len())])
    }
}

/// Where a corp user lives: a team OU (in scope) or `OU=Out` (excluded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    Team(usize),
    Out,
}

/// A group member as written into a corp group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Member {
    User(u32),
    Group(usize),
    /// A fabrikam user, through a foreign security principal (`<SID=…>`).
    Foreign(u32),
}

/// One change to the sources.
#[derive(Clone, Debug)]
pub enum Op {
    AddUser {
        id: u32,
        place: Place,
        odd_name: bool,
        manager: Option<u32>,
        title: String,
    },
    Delete {
        id: u32,
    },
    /// Delete and create again with the same DN and sAMAccountName: a new object, in no group.
    Recreate {
        id: u32,
    },
    Move {
        id: u32,
        to: Place,
    },
    Rename {
        id: u32,
        suffix: u32,
    },
    SetTitle {
        id: u32,
        title: Option<String>,
    },
    SetDescription {
        id: u32,
        description: Option<String>,
    },
    /// `from` gives up its mail, `to` takes it, in the same delta.
    TakeMail {
        from: u32,
        to: u32,
    },
    /// `from` gives up its sAMAccountName (the SCIM userName), `to` takes it.
    TakeSam {
        from: u32,
        to: u32,
        suffix: u32,
    },
    SetManager {
        id: u32,
        manager: Option<u32>,
    },
    SetDisabled {
        id: u32,
        disabled: bool,
    },
    Membership {
        group: usize,
        member: Member,
        add: bool,
    },
    RenameTeam {
        team: usize,
        suffix: u32,
    },
    FabAdd {
        id: u32,
        /// Joins the corp user with this id (same employeeID).
        joins: Option<u32>,
        pilot: bool,
    },
    FabPilot {
        id: u32,
        pilot: bool,
    },
    FabDelete {
        id: u32,
    },
    LdapAdd {
        id: u32,
        joins: Option<u32>,
        staff: bool,
    },
    LdapTitle {
        id: u32,
        title: String,
    },
    LdapRename {
        id: u32,
        suffix: u32,
    },
    LdapDelete {
        id: u32,
    },
    LdapStaff {
        id: u32,
        add: bool,
    },
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self:?}")
    }
}

#[derive(Clone, Debug)]
pub struct CorpUser {
    pub cn: String,
    pub sam: String,
    pub place: Place,
    pub mail: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub disabled: bool,
    pub manager: Option<u32>,
    pub emp: String,
}

#[derive(Clone, Debug)]
pub struct FabUser {
    pub cn: String,
    /// Its employeeID: a corp user's (to join it) or its own.
    pub emp: String,
    pub pilot: bool,
}

#[derive(Clone, Debug)]
pub struct LdapPerson {
    pub uid: String,
    /// Its employeeNumber: a corp user's (to join it) or its own.
    pub emp: String,
    pub title: Option<String>,
    pub staff: bool,
}

/// What the sources of one world hold.
pub struct Model {
    pub tag: String,
    corp_root: String,
    fab_root: String,
    ldap_root: String,
    pub teams: [String; 2],
    pub corp: BTreeMap<u32, CorpUser>,
    pub fab: BTreeMap<u32, FabUser>,
    pub ldap: BTreeMap<u32, LdapPerson>,
    /// Direct members of each corp group (besides the keeper and g0's nested g1).
    pub members: Vec<BTreeSet<Member>>,
    next: u32,
    /// False while drawing a sequence: the model changes, the servers are not touched.
    live: bool,
}

/// A source server, or nothing while drawing.
struct Live<'a>(Option<&'a dyn LdapServer>);

impl Live<'_> {
    fn ldapadd(&self, ldif: &str) {
        if let Some(s) = self.0 {
            s.ldapadd(ldif);
        }
    }
    fn ldapmodify(&self, ldif: &str) {
        if let Some(s) = self.0 {
            s.ldapmodify(ldif);
        }
    }
    fn ldapdelete(&self, dn: &str) {
        if let Some(s) = self.0 {
            s.ldapdelete(dn);
        }
    }
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// `name: value`, base64 when LDIF's safe-string rules need it.
fn line(name: &str, value: &str) -> String {
    let safe = value.bytes().all(|b| (0x20..0x7f).contains(&b))
        && !value.starts_with([' ', ':', '<'])
        && !value.ends_with(' ');
    if safe {
        format!("{name}: {value}\n")
    } else {
        format!("{name}:: {}\n", b64(value))
    }
}

impl Model {
    pub fn new(tag: &str, s: &Sources) -> Model {
        Model {
            tag: tag.to_string(),
            corp_root: s.corp_root.clone(),
            fab_root: s.fab_root.clone(),
            ldap_root: s.ldap_root.clone(),
            teams: ["Team0".into(), "Team1".into()],
            corp: BTreeMap::new(),
            fab: BTreeMap::new(),
            ldap: BTreeMap::new(),
            members: vec![BTreeSet::new(); GROUPS.len()],
            next: 1,
            live: true,
        }
    }

    /// A model that only plans: [`Model::plan`] changes it without touching a server.
    pub fn planner() -> Model {
        let none = Sources {
            corp_root: String::new(),
            fab_root: String::new(),
            ldap_root: String::new(),
        };
        Model {
            live: false,
            ..Model::new("plan", &none)
        }
    }

    /// [`Model::apply`] on a planner: whether the change applies, and the model after it.
    pub fn plan(&mut self, op: &Op) -> bool {
        self.apply(op)
    }

    fn server<'a>(&self, s: &'a dyn LdapServer) -> Live<'a> {
        Live(self.live.then_some(s))
    }

    /// The SID of a fabrikam user (a placeholder while planning).
    fn fab_sid(&self, dn: &str) -> String {
        if self.live {
            world::fab().sid_of(dn)
        } else {
            "S-1-5-21-0-0-0-1".into()
        }
    }

    fn fresh(&mut self) -> u32 {
        let id = self.next;
        self.next += 1;
        id
    }

    fn parent(&self, place: Place) -> String {
        match place {
            Place::Team(t) => format!("OU={},{}", self.teams[t], self.corp_root),
            Place::Out => format!("OU=Out,{}", self.corp_root),
        }
    }

    fn user_dn(&self, id: u32) -> Option<String> {
        let u = self.corp.get(&id)?;
        Some(format!(
            "CN={},{}",
            escape_rdn_value(&u.cn),
            self.parent(u.place)
        ))
    }

    fn group_dn(&self, g: usize) -> String {
        format!("CN={}-{},OU=Groups,{}", self.tag, GROUPS[g], self.corp_root)
    }

    fn fab_dn(&self, id: u32) -> Option<String> {
        let u = self.fab.get(&id)?;
        Some(format!("CN={},OU=Team,{}", u.cn, self.fab_root))
    }

    fn ldap_dn(&self, id: u32) -> Option<String> {
        let p = self.ldap.get(&id)?;
        Some(format!("uid={},{}", p.uid, self.ldap_root))
    }

    fn staff_dn(&self) -> String {
        format!("cn={}-staff,{}", self.tag, self.ldap_root)
    }

    fn ids(&self) -> Vec<u32> {
        self.corp.keys().copied().collect()
    }

    /// A random change that applies to the current model (None: try again).
    pub fn draw(&mut self, rng: &mut Rng) -> Option<Op> {
        let ids = self.ids();
        let any = |rng: &mut Rng| rng.pick(&ids);
        let op = match rng.below(100) {
            0..=17 => {
                let id = self.fresh();
                let place = if rng.chance(20) {
                    Place::Out
                } else {
                    Place::Team(rng.below(2))
                };
                Op::AddUser {
                    id,
                    place,
                    odd_name: rng.chance(25),
                    manager: if rng.chance(40) { any(rng) } else { None },
                    title: format!("t{}", rng.below(4)),
                }
            }
            18..=22 => Op::Delete { id: any(rng)? },
            23..=28 => Op::Recreate { id: any(rng)? },
            29..=36 => {
                let id = any(rng)?;
                let to = match self.corp[&id].place {
                    Place::Out => Place::Team(rng.below(2)),
                    Place::Team(t) if rng.chance(50) => Place::Team(1 - t),
                    Place::Team(_) => Place::Out,
                };
                Op::Move { id, to }
            }
            37..=40 => Op::Rename {
                id: any(rng)?,
                suffix: self.fresh(),
            },
            41..=44 => Op::SetTitle {
                id: any(rng)?,
                title: rng.chance(75).then(|| format!("t{}", rng.below(6))),
            },
            45..=47 => Op::SetDescription {
                id: any(rng)?,
                description: rng.chance(60).then(|| format!("d{}", rng.below(9))),
            },
            48..=50 => {
                let with_mail: Vec<u32> = ids
                    .iter()
                    .copied()
                    .filter(|i| self.corp[i].mail.is_some())
                    .collect();
                let from = rng.pick(&with_mail)?;
                let to = any(rng)?;
                (from != to).then_some(Op::TakeMail { from, to })?
            }
            51..=53 => {
                let (from, to) = (any(rng)?, any(rng)?);
                (from != to).then_some(Op::TakeSam {
                    from,
                    to,
                    suffix: self.fresh(),
                })?
            }
            54..=59 => Op::SetManager {
                id: any(rng)?,
                manager: if rng.chance(80) { any(rng) } else { None },
            },
            60..=62 => {
                let id = any(rng)?;
                Op::SetDisabled {
                    id,
                    disabled: !self.corp[&id].disabled,
                }
            }
            63..=76 => {
                // g3 gets most additions, so that it grows past the range size.
                let group = if rng.chance(40) { 3 } else { rng.below(4) };
                let current: Vec<Member> = self.members[group].iter().copied().collect();
                if rng.chance(35) && !current.is_empty() {
                    Op::Membership {
                        group,
                        member: rng.pick(&current)?,
                        add: false,
                    }
                } else {
                    let member = match rng.below(10) {
                        0 => Member::Group(rng.below(4)),
                        1 | 2 => Member::Foreign(
                            rng.pick(&self.fab.keys().copied().collect::<Vec<_>>())?,
                        ),
                        _ => Member::User(any(rng)?),
                    };
                    Op::Membership {
                        group,
                        member,
                        add: true,
                    }
                }
            }
            77..=79 => Op::RenameTeam {
                team: rng.below(2),
                suffix: self.fresh(),
            },
            80..=84 => {
                let id = self.fresh();
                Op::FabAdd {
                    id,
                    joins: if rng.chance(50) { any(rng) } else { None },
                    pilot: rng.chance(70),
                }
            }
            85..=87 => {
                let id = rng.pick(&self.fab.keys().copied().collect::<Vec<_>>())?;
                Op::FabPilot {
                    id,
                    pilot: !self.fab[&id].pilot,
                }
            }
            88 => Op::FabDelete {
                id: rng.pick(&self.fab.keys().copied().collect::<Vec<_>>())?,
            },
            89..=92 => {
                let id = self.fresh();
                Op::LdapAdd {
                    id,
                    joins: if rng.chance(30) { any(rng) } else { None },
                    staff: rng.chance(60),
                }
            }
            93..=95 => Op::LdapTitle {
                id: rng.pick(&self.ldap.keys().copied().collect::<Vec<_>>())?,
                title: format!("lt{}", rng.below(5)),
            },
            96 => Op::LdapRename {
                id: rng.pick(&self.ldap.keys().copied().collect::<Vec<_>>())?,
                suffix: self.fresh(),
            },
            97 => Op::LdapDelete {
                id: rng.pick(&self.ldap.keys().copied().collect::<Vec<_>>())?,
            },
            _ => {
                let id = rng.pick(&self.ldap.keys().copied().collect::<Vec<_>>())?;
                Op::LdapStaff {
                    id,
                    add: !self.ldap[&id].staff,
                }
            }
        };
        Some(op)
    }

    /// Applies a change to the real servers and to the model; false when it does not apply
    /// (then nothing was changed).
    pub fn apply(&mut self, op: &Op) -> bool {
        let corp = self.server(world::corp());
        let fab = self.server(world::fab());
        let ldap = self.server(world::ldap());
        match op {
            Op::AddUser {
                id,
                place,
                odd_name,
                manager,
                title,
            } => {
                if self.corp.contains_key(id) {
                    return false;
                }
                let cn = if *odd_name {
                    format!("Åsa, {}-u{id}", self.tag)
                } else {
                    format!("{}-u{id}", self.tag)
                };
                let user = CorpUser {
                    cn,
                    sam: format!("{}u{id}", self.tag),
                    place: *place,
                    mail: Some(format!("u{id}.{}@x.test", self.tag)),
                    title: Some(title.clone()),
                    description: None,
                    disabled: false,
                    manager: manager.filter(|m| self.corp.contains_key(m)),
                    emp: format!("{}-e{id}", self.tag),
                };
                self.corp.insert(*id, user);
                self.add_corp_entry(*id);
            }
            Op::Delete { id } => {
                let Some(dn) = self.user_dn(*id) else {
                    return false;
                };
                corp.ldapdelete(&dn);
                self.forget_corp(*id);
            }
            Op::Recreate { id } => {
                let Some(dn) = self.user_dn(*id) else {
                    return false;
                };
                corp.ldapdelete(&dn);
                let old = self.corp[id].clone();
                self.forget_corp(*id);
                // Same DN, same sAMAccountName, new objectGUID, no groups, no manager.
                self.corp.insert(
                    *id,
                    CorpUser {
                        manager: None,
                        description: None,
                        disabled: false,
                        title: Some("recreated".into()),
                        ..old
                    },
                );
                self.add_corp_entry(*id);
            }
            Op::Move { id, to } => {
                let Some(dn) = self.user_dn(*id) else {
                    return false;
                };
                if self.corp[id].place == *to {
                    return false;
                }
                let rdn = format!("CN={}", escape_rdn_value(&self.corp[id].cn));
                corp.ldapmodify(&format!(
                    "{}changetype: modrdn\n{}deleteoldrdn: 1\n{}",
                    line("dn", &dn),
                    line("newrdn", &rdn),
                    line("newsuperior", &self.parent(*to))
                ));
                if let Some(u) = self.corp.get_mut(id) {
                    u.place = *to;
                }
            }
            Op::Rename { id, suffix } => {
                let Some(dn) = self.user_dn(*id) else {
                    return false;
                };
                let cn = format!("{}-r{suffix}", self.corp[id].cn);
                corp.ldapmodify(&format!(
                    "{}changetype: modrdn\n{}deleteoldrdn: 1\n",
                    line("dn", &dn),
                    line("newrdn", &format!("CN={}", escape_rdn_value(&cn)))
                ));
                if let Some(u) = self.corp.get_mut(id) {
                    u.cn = cn;
                }
            }
            Op::SetTitle { id, title } => {
                let Some(dn) = self.user_dn(*id) else {
                    return false;
                };
                let had = self.corp[id].title.is_some();
                if !self.replace(&dn, "title", title.as_deref(), had) {
                    return false;
                }
                if let Some(u) = self.corp.get_mut(id) {
                    u.title = title.clone();
                }
            }
            Op::SetDescription { id, description } => {
                let Some(dn) = self.user_dn(*id) else {
                    return false;
                };
                let had = self.corp[id].description.is_some();
                if !self.replace(&dn, "description", description.as_deref(), had) {
                    return false;
                }
                if let Some(u) = self.corp.get_mut(id) {
                    u.description = description.clone();
                }
            }
            Op::TakeMail { from, to } => {
                let (Some(from_dn), Some(to_dn)) = (self.user_dn(*from), self.user_dn(*to)) else {
                    return false;
                };
                let Some(mail) = self.corp[from].mail.clone() else {
                    return false;
                };
                if from == to {
                    return false;
                }
                self.replace(&from_dn, "mail", None, true);
                self.replace(&to_dn, "mail", Some(&mail), self.corp[to].mail.is_some());
                if let Some(u) = self.corp.get_mut(from) {
                    u.mail = None;
                }
                if let Some(u) = self.corp.get_mut(to) {
                    u.mail = Some(mail);
                }
            }
            Op::TakeSam { from, to, suffix } => {
                let (Some(from_dn), Some(to_dn)) = (self.user_dn(*from), self.user_dn(*to)) else {
                    return false;
                };
                if from == to {
                    return false;
                }
                let freed = self.corp[from].sam.clone();
                let new = format!("{}s{suffix}", self.tag);
                self.replace(&from_dn, "sAMAccountName", Some(&new), true);
                self.replace(&to_dn, "sAMAccountName", Some(&freed), true);
                if let Some(u) = self.corp.get_mut(from) {
                    u.sam = new;
                }
                if let Some(u) = self.corp.get_mut(to) {
                    u.sam = freed;
                }
            }
            Op::SetManager { id, manager } => {
                let Some(dn) = self.user_dn(*id) else {
                    return false;
                };
                let manager = manager.filter(|m| self.corp.contains_key(m));
                let had = self.corp[id].manager.is_some();
                let value = manager.and_then(|m| self.user_dn(m));
                if !self.replace(&dn, "manager", value.as_deref(), had) {
                    return false;
                }
                if let Some(u) = self.corp.get_mut(id) {
                    u.manager = manager;
                }
            }
            Op::SetDisabled { id, disabled } => {
                let Some(dn) = self.user_dn(*id) else {
                    return false;
                };
                let uac = if *disabled { "546" } else { "544" };
                self.replace(&dn, "userAccountControl", Some(uac), true);
                if let Some(u) = self.corp.get_mut(id) {
                    u.disabled = *disabled;
                }
            }
            Op::Membership { group, member, add } => {
                if self.members[*group].contains(member) == *add {
                    return false;
                }
                let value = match member {
                    Member::User(u) => match self.user_dn(*u) {
                        Some(dn) => dn,
                        None => return false,
                    },
                    Member::Group(g) if *g == *group => return false,
                    // g1 is nested in g0 from the start; keep the nesting acyclic.
                    Member::Group(g) if *add && self.reaches(*g, *group) => return false,
                    Member::Group(g) => self.group_dn(*g),
                    Member::Foreign(f) => match self.fab_dn(*f) {
                        Some(dn) => format!("<SID={}>", self.fab_sid(&dn)),
                        None if !*add => return false,
                        None => return false,
                    },
                };
                let verb = if *add { "add" } else { "delete" };
                corp.ldapmodify(&format!(
                    "{}changetype: modify\n{verb}: member\n{}-\n",
                    line("dn", &self.group_dn(*group)),
                    line("member", &value)
                ));
                if *add {
                    self.members[*group].insert(*member);
                } else {
                    self.members[*group].remove(member);
                }
            }
            Op::RenameTeam { team, suffix } => {
                let dn = format!("OU={},{}", self.teams[*team], self.corp_root);
                let name = format!("Team{team}-{suffix}");
                corp.ldapmodify(&format!(
                    "{}changetype: modrdn\n{}deleteoldrdn: 1\n",
                    line("dn", &dn),
                    line("newrdn", &format!("OU={name}"))
                ));
                self.teams[*team] = name;
            }
            Op::FabAdd { id, joins, pilot } => {
                if self.fab.contains_key(id) {
                    return false;
                }
                // Two objects of one connector with the same join value would make the
                // result depend on the order they are read in (one metaverse object holds
                // one object per connector): a join is drawn only to a free corp user.
                let emp = match joins.and_then(|j| self.corp.get(&j)) {
                    Some(u) if !self.fab.values().any(|f| f.emp == u.emp) => u.emp.clone(),
                    _ => format!("{}-f{id}", self.tag),
                };
                let cn = format!("{}-f{id}", self.tag);
                fab.ldapadd(&format!(
                    "dn: CN={cn},OU=Team,{root}\nobjectClass: user\nsAMAccountName: {tag}f{id}\n\
                     sn: fab{id}\ntitle: fab title\nemployeeID: {emp}\nuserAccountControl: 544\n",
                    root = self.fab_root,
                    tag = self.tag
                ));
                self.fab.insert(
                    *id,
                    FabUser {
                        cn,
                        emp,
                        pilot: false,
                    },
                );
                if *pilot {
                    self.apply(&Op::FabPilot {
                        id: *id,
                        pilot: true,
                    });
                }
            }
            Op::FabPilot { id, pilot } => {
                let Some(dn) = self.fab_dn(*id) else {
                    return false;
                };
                if self.fab[id].pilot == *pilot {
                    return false;
                }
                let verb = if *pilot { "add" } else { "delete" };
                fab.ldapmodify(&format!(
                    "dn: CN=Pilot,{}\nchangetype: modify\n{verb}: member\n{}-\n",
                    self.fab_root,
                    line("member", &dn)
                ));
                if let Some(u) = self.fab.get_mut(id) {
                    u.pilot = *pilot;
                }
            }
            Op::FabDelete { id } => {
                let Some(dn) = self.fab_dn(*id) else {
                    return false;
                };
                fab.ldapdelete(&dn);
                self.fab.remove(id);
                // AD keeps the FSP as a member of corp's groups: the membership stays in the
                // model (it resolves to nobody now) so that a later removal still applies.
            }
            Op::LdapAdd { id, joins, staff } => {
                if self.ldap.contains_key(id) {
                    return false;
                }
                let emp = match joins.and_then(|j| self.corp.get(&j)) {
                    Some(u) if !self.ldap.values().any(|p| p.emp == u.emp) => u.emp.clone(),
                    _ => format!("{}-l{id}", self.tag),
                };
                let uid = format!("{}-l{id}", self.tag);
                ldap.ldapadd(&format!(
                    "dn: uid={uid},{root}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\n\
                     sn: ldap{id}\nemployeeNumber: {emp}\nmail: {uid}@l.test\n",
                    root = self.ldap_root
                ));
                self.ldap.insert(
                    *id,
                    LdapPerson {
                        uid,
                        emp,
                        title: None,
                        staff: false,
                    },
                );
                if *staff {
                    self.apply(&Op::LdapStaff { id: *id, add: true });
                }
            }
            Op::LdapTitle { id, title } => {
                let Some(dn) = self.ldap_dn(*id) else {
                    return false;
                };
                ldap.ldapmodify(&format!(
                    "{}changetype: modify\nreplace: title\n{}-\n",
                    line("dn", &dn),
                    line("title", title)
                ));
                if let Some(p) = self.ldap.get_mut(id) {
                    p.title = Some(title.clone());
                }
            }
            Op::LdapRename { id, suffix } => {
                let Some(dn) = self.ldap_dn(*id) else {
                    return false;
                };
                let uid = format!("{}-l{id}r{suffix}", self.tag);
                ldap.ldapmodify(&format!(
                    "{}changetype: modrdn\n{}deleteoldrdn: 1\n",
                    line("dn", &dn),
                    line("newrdn", &format!("uid={uid}"))
                ));
                // slapd has no referential integrity here: the staff group keeps the old DN,
                // which now names nobody, exactly as the directory says.
                if let Some(p) = self.ldap.get_mut(id) {
                    p.uid = uid;
                    p.staff = false;
                }
            }
            Op::LdapDelete { id } => {
                let Some(dn) = self.ldap_dn(*id) else {
                    return false;
                };
                ldap.ldapdelete(&dn);
                self.ldap.remove(id);
            }
            Op::LdapStaff { id, add } => {
                let Some(dn) = self.ldap_dn(*id) else {
                    return false;
                };
                if self.ldap[id].staff == *add {
                    return false;
                }
                let verb = if *add { "add" } else { "delete" };
                ldap.ldapmodify(&format!(
                    "{}changetype: modify\n{verb}: member\n{}-\n",
                    line("dn", &self.staff_dn()),
                    line("member", &dn)
                ));
                if let Some(p) = self.ldap.get_mut(id) {
                    p.staff = *add;
                }
            }
        }
        true
    }

    /// Whether group `from` contains group `to`, directly or through nesting.
    fn reaches(&self, from: usize, to: usize) -> bool {
        let mut seen = BTreeSet::new();
        let mut stack = vec![from];
        while let Some(g) = stack.pop() {
            if g == to {
                return true;
            }
            if !seen.insert(g) {
                continue;
            }
            if g == 0 {
                stack.push(1);
            }
            for m in &self.members[g] {
                if let Member::Group(n) = m {
                    stack.push(*n);
                }
            }
        }
        false
    }

    fn add_corp_entry(&self, id: u32) {
        let u = &self.corp[&id];
        let Some(dn) = self.user_dn(id) else {
            return;
        };
        let mut ldif = line("dn", &dn);
        ldif += "objectClass: user\n";
        ldif += &line("cn", &u.cn);
        ldif += &line("sAMAccountName", &u.sam);
        ldif += &line("sn", &format!("sn{id}"));
        ldif += &line("givenName", &format!("Given{id}"));
        ldif += &line("employeeID", &u.emp);
        ldif += "userAccountControl: 544\n";
        for (name, value) in [("mail", &u.mail), ("title", &u.title)] {
            if let Some(v) = value {
                ldif += &line(name, v);
            }
        }
        if let Some(m) = u.manager.and_then(|m| self.user_dn(m)) {
            ldif += &line("manager", &m);
        }
        self.server(world::corp()).ldapadd(&ldif);
    }

    /// The model side of a deleted corp user: AD drops its memberships and the manager
    /// links that named it.
    fn forget_corp(&mut self, id: u32) {
        self.corp.remove(&id);
        for set in &mut self.members {
            set.remove(&Member::User(id));
        }
        for u in self.corp.values_mut() {
            if u.manager == Some(id) {
                u.manager = None;
            }
        }
    }

    /// Replaces (or with None, deletes) one attribute of a corp entry; false when there is
    /// nothing to delete.
    fn replace(&self, dn: &str, attr: &str, value: Option<&str>, had: bool) -> bool {
        let change = match value {
            Some(v) => format!("replace: {attr}\n{}-\n", line(attr, v)),
            None if had => format!("delete: {attr}\n-\n"),
            None => return false,
        };
        self.server(world::corp())
            .ldapmodify(&format!("{}changetype: modify\n{change}", line("dn", dn)));
        true
    }
}
