//! The demo company: "Contoso", one AD forest with two domains written as one LDIF export,
//! and the config that synchronises it into an LDIF directory target.
//!
//! Pure and deterministic: a fixed-seed xorshift is the only source of variety, so one size
//! always gives byte-identical output (tests and docs rely on that). The data exercises what
//! a real forest throws at a sync engine: names that need DN escaping, non-ASCII values
//! (base64 in LDIF), a manager chain across domains, nested and cross-domain groups, one large
//! group, disabled members, contacts in distribution groups, and member values that differ
//! from the referenced DN only in letter case.

use std::collections::HashSet;
use std::io::{self, Write};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::model::dn::escape_value;

/// Size of the generated company.
#[derive(Clone, Copy, Debug)]
pub struct DemoSize {
    /// Number of user accounts.
    pub users: usize,
    /// Number of groups.
    pub groups: usize,
}

impl DemoSize {
    /// The size `bridgehead demo` uses.
    pub const DEMO: DemoSize = DemoSize {
        users: 2400,
        groups: 120,
    };
}

/// Writes the fictional company's LDIF to `w` (deterministic for a given size; no randomness
/// source other than a fixed-seed xorshift).
pub fn write_company_ldif(w: &mut impl Write, size: DemoSize) -> io::Result<()> {
    writeln!(w, "version: 1")?;
    writeln!(
        w,
        "# Contoso: a fictional AD forest with two domains, {} users, {} groups.",
        size.users, size.groups
    )?;
    for entry in company(size) {
        writeln!(w)?;
        write_entry(w, &entry)?;
    }
    Ok(())
}

/// The demo config text (TOML) for a demo folder: state file, source and target LDIF
/// connectors, rules.
pub fn demo_config() -> &'static str {
    DEMO_CONFIG
}

const DEMO_CONFIG: &str = r#"# Bridgehead demo: the Contoso forest (two domains, one LDIF export) synchronised into a
# directory target written as LDIF. Paths are relative to this file.
state_file = "state.redb"
log_dir = "logs"

[schedule]
interval = "1m"

[[connector]]
name = "contoso"
type = "ldif"
mode = "source"
path = "contoso.ldif"
anchor = "objectGUID"
partitions = ["DC=corp,DC=contoso,DC=com", "DC=emea,DC=contoso,DC=com"]

[[connector]]
name = "directory"
type = "ldif"
mode = "target"
path = "directory.ldif"
anchor = "entryUUID"

# ---- Inbound: the two domains of the forest into the metaverse ----------------------------

[[inbound]]
name = "corp-users"
connector = "contoso"
object_class = "user"
object_type = "person"
precedence = 10
scope = [ { attribute = "dn", operator = "endsWith", value = "DC=corp,DC=contoso,DC=com" } ]
join = [[ { cs = "employeeID", mv = "employeeID" } ]]
flows = [
  { target = "domain", constant = "corp" },
  { target = "container", dn = "container" },
  { target = "uid", source = "sAMAccountName" },
  { target = "cn", source = "cn" },
  { target = "sn", source = "sn" },
  { target = "givenName", source = "givenName" },
  { target = "displayName", source = "displayName" },
  { target = "mail", source = "mail" },
  { target = "department", source = "department" },
  { target = "title", source = "title" },
  { target = "telephoneNumber", source = "telephoneNumber" },
  { target = "employeeID", source = "employeeID" },
  { target = "userPrincipalName", source = "userPrincipalName" },
  { target = "userAccountControl", source = "userAccountControl" },
  { target = "manager", source = "manager" },
  { target = "sourceAnchor", source = "objectGUID" },
]

[[inbound]]
name = "corp-contacts"
connector = "contoso"
object_class = "contact"
object_type = "contact"
precedence = 10
scope = [ { attribute = "dn", operator = "endsWith", value = "DC=corp,DC=contoso,DC=com" } ]
join = [[ { cs = "mail", mv = "mail" } ]]
flows = [
  { target = "domain", constant = "corp" },
  { target = "container", dn = "container" },
  { target = "cn", source = "cn" },
  { target = "sn", source = "sn" },
  { target = "givenName", source = "givenName" },
  { target = "displayName", source = "displayName" },
  { target = "mail", source = "mail" },
]

[[inbound]]
name = "corp-groups"
connector = "contoso"
object_class = "group"
object_type = "group"
precedence = 10
scope = [ { attribute = "dn", operator = "endsWith", value = "DC=corp,DC=contoso,DC=com" } ]
flows = [
  { target = "domain", constant = "corp" },
  { target = "container", dn = "container" },
  { target = "cn", source = "cn" },
  { target = "uid", source = "sAMAccountName" },
  { target = "description", source = "description" },
  { target = "mail", source = "mail" },
  { target = "member", source = "member" },
]

[[inbound]]
name = "emea-users"
connector = "contoso"
object_class = "user"
object_type = "person"
precedence = 10
scope = [ { attribute = "dn", operator = "endsWith", value = "DC=emea,DC=contoso,DC=com" } ]
join = [[ { cs = "employeeID", mv = "employeeID" } ]]
flows = [
  { target = "domain", constant = "emea" },
  { target = "container", dn = "container" },
  { target = "uid", source = "sAMAccountName" },
  { target = "cn", source = "cn" },
  { target = "sn", source = "sn" },
  { target = "givenName", source = "givenName" },
  { target = "displayName", source = "displayName" },
  { target = "mail", source = "mail" },
  { target = "department", source = "department" },
  { target = "title", source = "title" },
  { target = "telephoneNumber", source = "telephoneNumber" },
  { target = "employeeID", source = "employeeID" },
  { target = "userPrincipalName", source = "userPrincipalName" },
  { target = "userAccountControl", source = "userAccountControl" },
  { target = "manager", source = "manager" },
  { target = "sourceAnchor", source = "objectGUID" },
]

[[inbound]]
name = "emea-contacts"
connector = "contoso"
object_class = "contact"
object_type = "contact"
precedence = 10
scope = [ { attribute = "dn", operator = "endsWith", value = "DC=emea,DC=contoso,DC=com" } ]
join = [[ { cs = "mail", mv = "mail" } ]]
flows = [
  { target = "domain", constant = "emea" },
  { target = "container", dn = "container" },
  { target = "cn", source = "cn" },
  { target = "sn", source = "sn" },
  { target = "givenName", source = "givenName" },
  { target = "displayName", source = "displayName" },
  { target = "mail", source = "mail" },
]

[[inbound]]
name = "emea-groups"
connector = "contoso"
object_class = "group"
object_type = "group"
precedence = 10
scope = [ { attribute = "dn", operator = "endsWith", value = "DC=emea,DC=contoso,DC=com" } ]
flows = [
  { target = "domain", constant = "emea" },
  { target = "container", dn = "container" },
  { target = "cn", source = "cn" },
  { target = "uid", source = "sAMAccountName" },
  { target = "description", source = "description" },
  { target = "mail", source = "mail" },
  { target = "member", source = "member" },
]

# ---- Outbound: the metaverse into the directory target -----------------------------------

[[outbound]]
name = "directory-people"
connector = "directory"
object_type = "person"
object_class = "inetOrgPerson"
scope = [ { attribute = "userAccountControl", operator = "isNotBitSet", value = "2" } ]
dn = "cn={cn},{container:dn},ou={domain},dc=contoso,dc=example"
deprovision = "delete"
flows = [
  { target = "uid", source = "uid" },
  { target = "cn", source = "cn" },
  { target = "sn", source = "sn" },
  { target = "givenName", source = "givenName" },
  { target = "displayName", source = "displayName" },
  { target = "mail", source = "mail" },
  { target = "title", source = "title" },
  { target = "telephoneNumber", source = "telephoneNumber" },
  { target = "manager", source = "manager" },
  { target = "employeeNumber", source = "employeeID" },
  { target = "departmentNumber", source = "department" },
]

[[outbound]]
name = "directory-contacts"
connector = "directory"
object_type = "contact"
object_class = "inetOrgPerson"
dn = "cn={cn},{container:dn},ou={domain},dc=contoso,dc=example"
deprovision = "delete"
flows = [
  { target = "cn", source = "cn" },
  { target = "sn", source = "sn" },
  { target = "givenName", source = "givenName" },
  { target = "displayName", source = "displayName" },
  { target = "mail", source = "mail" },
]

[[outbound]]
name = "directory-groups"
connector = "directory"
object_type = "group"
object_class = "groupOfNames"
dn = "cn={cn},{container:dn},ou={domain},dc=contoso,dc=example"
deprovision = "delete"
flows = [
  { target = "cn", source = "cn" },
  { target = "description", source = "description" },
  { target = "mail", source = "mail" },
  { target = "member", source = "member" },
]
"#;

// ---------------------------------------------------------------------------------------------
// The company's shape.

struct Domain {
    /// The dc value and the constant the rules flow (`corp`, `emea`).
    dc: &'static str,
    /// The naming context.
    root: &'static str,
    /// The UPN and mail suffix.
    suffix: &'static str,
    /// Telephone number prefix.
    phone: &'static str,
}

const DOMAINS: [Domain; 2] = [
    Domain {
        dc: "corp",
        root: "DC=corp,DC=contoso,DC=com",
        suffix: "corp.contoso.com",
        phone: "+1 425 555 ",
    },
    Domain {
        dc: "emea",
        root: "DC=emea,DC=contoso,DC=com",
        suffix: "emea.contoso.com",
        phone: "+44 20 7946 ",
    },
];

struct Department {
    name: &'static str,
    /// Short name for group names.
    short: &'static str,
    titles: &'static [&'static str],
    head: &'static str,
}

const DEPARTMENTS: [Department; 8] = [
    Department {
        name: "Sales",
        short: "Sales",
        titles: &["Account Executive", "Sales Representative", "Sales Manager"],
        head: "Vice President, Sales",
    },
    Department {
        name: "Engineering",
        short: "Eng",
        titles: &[
            "Software Engineer",
            "Senior Software Engineer",
            "Engineering Manager",
        ],
        head: "Chief Technology Officer",
    },
    Department {
        name: "Finance",
        short: "Fin",
        titles: &["Accountant", "Financial Analyst", "Controller"],
        head: "Chief Financial Officer",
    },
    Department {
        name: "Human Resources",
        short: "HR",
        titles: &["HR Generalist", "Recruiter", "HR Business Partner"],
        head: "Chief People Officer",
    },
    Department {
        name: "Marketing",
        short: "Mkt",
        titles: &[
            "Marketing Specialist",
            "Content Strategist",
            "Brand Manager",
        ],
        head: "Chief Marketing Officer",
    },
    Department {
        name: "Support",
        short: "Support",
        titles: &[
            "Support Engineer",
            "Support Team Lead",
            "Escalation Engineer",
        ],
        head: "Director of Support",
    },
    Department {
        name: "Legal",
        short: "Legal",
        titles: &["Paralegal", "Counsel", "Senior Counsel"],
        head: "General Counsel",
    },
    Department {
        name: "Operations",
        short: "Ops",
        titles: &[
            "Operations Analyst",
            "Facilities Coordinator",
            "Operations Manager",
        ],
        head: "Chief Operating Officer",
    },
];

/// (name as written, ASCII form for account names and mail).
type Name = (&'static str, &'static str);

const GIVEN: &[Name] = &[
    ("James", "james"),
    ("Mary", "mary"),
    ("Robert", "robert"),
    ("Patricia", "patricia"),
    ("John", "john"),
    ("Jennifer", "jennifer"),
    ("Michael", "michael"),
    ("Linda", "linda"),
    ("David", "david"),
    ("Elizabeth", "elizabeth"),
    ("William", "william"),
    ("Barbara", "barbara"),
    ("Richard", "richard"),
    ("Susan", "susan"),
    ("Joseph", "joseph"),
    ("Jessica", "jessica"),
    ("Thomas", "thomas"),
    ("Sarah", "sarah"),
    ("Charles", "charles"),
    ("Karen", "karen"),
    ("Daniel", "daniel"),
    ("Nancy", "nancy"),
    ("Matthew", "matthew"),
    ("Lisa", "lisa"),
    ("Anthony", "anthony"),
    ("Betty", "betty"),
    ("Mark", "mark"),
    ("Sandra", "sandra"),
    ("Paul", "paul"),
    ("Ashley", "ashley"),
    ("Steven", "steven"),
    ("Emily", "emily"),
    ("Andrew", "andrew"),
    ("Olivia", "olivia"),
    ("Priya", "priya"),
    ("Ahmed", "ahmed"),
    ("Jürgen", "juergen"),
    ("Åsa", "asa"),
    ("Zoë", "zoe"),
    ("Søren", "soren"),
    ("José", "jose"),
    ("Łukasz", "lukasz"),
    ("Renée", "renee"),
    ("François", "francois"),
];

const SURNAMES: &[Name] = &[
    ("Smith", "smith"),
    ("Johnson", "johnson"),
    ("Williams", "williams"),
    ("Brown", "brown"),
    ("Jones", "jones"),
    ("Garcia", "garcia"),
    ("Miller", "miller"),
    ("Davis", "davis"),
    ("Rodriguez", "rodriguez"),
    ("Martinez", "martinez"),
    ("Hernandez", "hernandez"),
    ("Lopez", "lopez"),
    ("Gonzalez", "gonzalez"),
    ("Wilson", "wilson"),
    ("Anderson", "anderson"),
    ("Taylor", "taylor"),
    ("Moore", "moore"),
    ("Jackson", "jackson"),
    ("Martin", "martin"),
    ("Lee", "lee"),
    ("Thompson", "thompson"),
    ("White", "white"),
    ("Harris", "harris"),
    ("Clark", "clark"),
    ("Lewis", "lewis"),
    ("Walker", "walker"),
    ("Young", "young"),
    ("Allen", "allen"),
    ("King", "king"),
    ("Wright", "wright"),
    ("Scott", "scott"),
    ("Patel", "patel"),
    ("Nguyen", "nguyen"),
    ("O'Brien", "obrien"),
    ("van der Berg", "vanderberg"),
    ("Ñúñez", "nunez"),
    ("Çelik", "celik"),
    ("Björk", "bjork"),
    ("Müller", "mueller"),
    ("Østergaard", "ostergaard"),
    ("Nowak", "nowak"),
    ("Dubois", "dubois"),
];

const CJK_GIVEN: &[Name] = &[
    ("伟", "wei"),
    ("芳", "fang"),
    ("娜", "na"),
    ("秀英", "xiuying"),
];
const CJK_SURNAMES: &[Name] = &[("李", "li"), ("王", "wang"), ("张", "zhang"), ("刘", "liu")];

/// Users whose names need RFC 4514 escapes beyond the comma: (index, surname, given name).
const SPECIAL_NAMES: &[(usize, &str, &str)] = &[
    (5, "Smith+Jones", "Ann"),
    (17, "#Hashemi", "Harry"),
    (29, "Doe;Roe", "Jane"),
    (41, "Baker", "Tom \"Bud\""),
    (53, "Lt<Gt>", "Eq=Sign"),
];

/// Every `DISABLED_EVERY`th user is disabled (userAccountControl 514).
const DISABLED_EVERY: usize = 25;

/// Whether entry `i` (user, contact or group) lives in the EMEA domain (30%).
fn domain_of(i: usize) -> usize {
    usize::from(matches!(i % 10, 3 | 6 | 9))
}

/// A fixed-seed xorshift64 generator: the only source of variety.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        Rng(0x9E37_79B9_7F4A_7C15)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `0..n` (n > 0).
    fn below(&mut self, n: usize) -> usize {
        // usize fits in u64 on every supported target; the remainder is below n.
        (self.next() % n.max(1) as u64) as usize
    }

    /// True with probability 1/n.
    fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// splitmix64: a bijection on u64, so distinct indices give distinct GUID halves.
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The objectGUID of the entry written `index`th.
fn guid(index: usize) -> Vec<u8> {
    let i = index as u64;
    let mut bytes = Vec::with_capacity(16);
    bytes.extend_from_slice(&splitmix(i).to_le_bytes());
    bytes.extend_from_slice(&splitmix(i ^ 0xC0_7050).to_le_bytes());
    bytes
}

/// One attribute value to write.
enum Val {
    Text(String),
    Bytes(Vec<u8>),
}

/// One LDIF entry to write.
struct Entry {
    dn: String,
    attrs: Vec<(&'static str, Val)>,
}

impl Entry {
    fn new(dn: String, guid_index: usize, classes: &[&'static str]) -> Entry {
        let mut attrs: Vec<(&'static str, Val)> = classes
            .iter()
            .map(|c| ("objectClass", Val::Text((*c).to_string())))
            .collect();
        attrs.push(("objectGUID", Val::Bytes(guid(guid_index))));
        Entry { dn, attrs }
    }

    fn text(&mut self, name: &'static str, value: impl Into<String>) {
        self.attrs.push((name, Val::Text(value.into())));
    }
}

/// A user, contact or group as other entries reference it.
struct Referable {
    dn: String,
    /// The same DN spelled with other letter case (lower-case types and OU names).
    dn_other_case: String,
}

fn referable(rdn_value: &str, containers: &[&str], root: &str) -> Referable {
    let escaped = escape_value(rdn_value);
    let mut dn = format!("CN={escaped}");
    let mut other = format!("cn={escaped}");
    for c in containers {
        dn.push_str(&format!(",OU={}", escape_value(c)));
        other.push_str(&format!(",ou={}", escape_value(&c.to_lowercase())));
    }
    dn.push_str(&format!(",{root}"));
    other.push_str(&format!(",{root}"));
    Referable {
        dn,
        dn_other_case: other,
    }
}

struct User {
    domain: usize,
    disabled: bool,
    at: Referable,
}

/// The whole company, in file order.
fn company(size: DemoSize) -> Vec<Entry> {
    let mut rng = Rng::new();
    let mut entries = Vec::new();
    let mut next_guid = 0usize;
    let mut new_entry = |dn: String, classes: &[&'static str]| {
        next_guid += 1;
        Entry::new(dn, next_guid, classes)
    };

    // Domain roots, then OUs (parents first).
    for d in &DOMAINS {
        let mut e = new_entry(d.root.to_string(), &["top", "domainDNS"]);
        e.text("dc", d.dc);
        entries.push(e);
    }
    for d in &DOMAINS {
        let mut ous: Vec<(String, &str)> = vec![(format!("OU=Users,{}", d.root), "Users")];
        for dept in &DEPARTMENTS {
            ous.push((format!("OU={},OU=Users,{}", dept.name, d.root), dept.name));
        }
        ous.push((format!("OU=Groups,{}", d.root), "Groups"));
        ous.push((format!("OU=Contacts,{}", d.root), "Contacts"));
        for (dn, ou) in ous {
            let mut e = new_entry(dn, &["top", "organizationalUnit"]);
            e.text("ou", ou);
            entries.push(e);
        }
    }

    // Users.
    let mut cns: Taken<(usize, usize, String)> = Default::default();
    let mut sams: Taken<String> = Default::default();
    let mut users: Vec<User> = Vec::with_capacity(size.users);
    let mut by_dept: Vec<Vec<usize>> = vec![Vec::new(); DEPARTMENTS.len()];
    for i in 0..size.users {
        let domain = domain_of(i);
        let d = &DOMAINS[domain];
        let dept = rng.below(DEPARTMENTS.len());
        let department = &DEPARTMENTS[dept];
        let ((given, given_ascii), (sn, sn_ascii)) = if rng.one_in(40) {
            (*rng.pick(CJK_GIVEN), *rng.pick(CJK_SURNAMES))
        } else {
            (*rng.pick(GIVEN), *rng.pick(SURNAMES))
        };
        let (given, sn) = match SPECIAL_NAMES.iter().find(|(at, _, _)| *at == i) {
            Some((_, s, g)) => (*g, *s),
            None => (given, sn),
        };
        let cn = unique_cn(&mut cns, (domain, dept), &format!("{sn}, {given}"));
        let sam = unique_sam(&mut sams, given_ascii, sn_ascii);
        let upn = format!("{sam}@{}", d.suffix);
        let disabled = (i + 1) % DISABLED_EVERY == 0;
        let at = referable(&cn, &[department.name, "Users"], d.root);

        let mut e = new_entry(
            at.dn.clone(),
            &["top", "person", "organizationalPerson", "user"],
        );
        e.text("cn", cn.clone());
        e.text("sn", sn);
        e.text("givenName", given);
        e.text("displayName", format!("{given} {sn}"));
        e.text("sAMAccountName", sam.clone());
        e.text("userPrincipalName", upn.clone());
        if i % 20 != 13 {
            e.text("mail", upn);
        }
        e.text("department", department.name);
        let head = by_dept[dept].is_empty();
        let title = if head {
            department.head
        } else {
            *rng.pick(department.titles)
        };
        e.text("title", title);
        if rng.below(10) < 6 {
            e.text("telephoneNumber", format!("{}{:04}", d.phone, i % 10_000));
        }
        e.text("employeeID", format!("E{:05}", i + 1));
        e.text("userAccountControl", if disabled { "514" } else { "512" });
        if !head {
            let earlier = &by_dept[dept];
            let manager = earlier[rng.below(earlier.len())];
            e.text("manager", users[manager].at.dn.clone());
        }
        entries.push(e);
        by_dept[dept].push(i);
        users.push(User {
            domain,
            disabled,
            at,
        });
    }

    // Contacts.
    let contact_count = (size.users * 3 / 100).max(50);
    let mut mails: HashSet<String> = HashSet::new();
    let mut next_mail: std::collections::HashMap<String, usize> = Default::default();
    let mut contacts: Vec<Referable> = Vec::with_capacity(contact_count);
    for i in 0..contact_count {
        let d = &DOMAINS[domain_of(i)];
        let (given, given_ascii) = *rng.pick(GIVEN);
        let (sn, sn_ascii) = *rng.pick(SURNAMES);
        let cn = unique_cn(
            &mut cns,
            (domain_of(i), usize::MAX),
            &format!("{sn}, {given}"),
        );
        // Resumes where the last mail of this name stopped, as in `unique_cn`.
        let base = format!("{given_ascii}.{sn_ascii}");
        let mut n = next_mail.get(&base).copied().unwrap_or(1);
        let mail = loop {
            let mail = if n == 1 {
                format!("{base}@fabrikam.example")
            } else {
                format!("{base}{n}@fabrikam.example")
            };
            n += 1;
            if mails.insert(mail.clone()) {
                next_mail.insert(base, n);
                break mail;
            }
        };
        let at = referable(&cn, &["Contacts"], d.root);
        let mut e = new_entry(
            at.dn.clone(),
            &["top", "person", "organizationalPerson", "contact"],
        );
        e.text("cn", cn);
        e.text("sn", sn);
        e.text("givenName", given);
        e.text("displayName", format!("{given} {sn} (Fabrikam)"));
        e.text("mail", mail);
        entries.push(e);
        contacts.push(at);
    }

    // Groups: each may nest only groups written before it, so nesting is acyclic.
    let mut groups: Vec<Referable> = Vec::with_capacity(size.groups);
    let mut team_numbers = [0usize; DEPARTMENTS.len()];
    let disabled_users: Vec<usize> = (0..users.len()).filter(|&u| users[u].disabled).collect();
    for g in 0..size.groups {
        let domain = domain_of(g);
        let d = &DOMAINS[domain];
        let dept = g % DEPARTMENTS.len();
        let department = &DEPARTMENTS[dept];
        team_numbers[dept] += 1;
        let k = team_numbers[dept];
        let distribution = g % 20 == 7;
        let all_staff = g == 1;
        let (cn, description) = if all_staff {
            (
                "GG-All-Staff".to_string(),
                "Everyone in both domains (large group)".to_string(),
            )
        } else if distribution {
            (
                format!("DL-{}-News-{k}", department.short),
                format!("{} newsletter, with external partners", department.name),
            )
        } else {
            (
                format!("GG-{}-Team-{k}", department.short),
                format!("{} team {k} ({})", department.name, d.dc),
            )
        };

        // Member indices: users, contacts, earlier groups; BTreeSet keeps file order stable.
        // Members chosen on purpose come first; random users fill up to 5–80 members.
        let mut member_users = std::collections::BTreeSet::new();
        if g == 0 {
            for (at, _, _) in SPECIAL_NAMES {
                if *at < users.len() {
                    member_users.insert(*at);
                }
            }
        }
        if !all_staff {
            // Cross-domain membership on purpose: at least one user of the other domain.
            if let Some(u) = (0..users.len())
                .map(|n| (n * 7 + g * 13) % users.len())
                .find(|&u| users[u].domain != domain)
            {
                member_users.insert(u);
            }
            if g % 10 == 4 && !disabled_users.is_empty() {
                member_users.insert(disabled_users[g % disabled_users.len()]);
            }
        }
        let mut member_contacts = std::collections::BTreeSet::new();
        if distribution && !contacts.is_empty() {
            let want = 3 + rng.below(8);
            for _ in 0..want {
                member_contacts.insert(rng.below(contacts.len()));
            }
        }
        let mut member_groups = std::collections::BTreeSet::new();
        if g >= 2 && g % 6 == 0 {
            let want = 1 + rng.below(3);
            for _ in 0..want {
                member_groups.insert(rng.below(g));
            }
        }
        let want_users = if all_staff {
            users.len().min(1000)
        } else {
            (5 + rng.below(76))
                .saturating_sub(member_contacts.len() + member_groups.len())
                .max(member_users.len())
                .min(users.len())
        };
        let same_dept = &by_dept[dept];
        let mut tries = 0;
        while member_users.len() < want_users && tries < want_users * 20 {
            tries += 1;
            let u = if !all_staff && !same_dept.is_empty() && rng.below(10) < 8 {
                same_dept[rng.below(same_dept.len())]
            } else {
                rng.below(users.len())
            };
            member_users.insert(u);
        }

        let at = referable(&cn, &["Groups"], d.root);
        let mut e = new_entry(at.dn.clone(), &["top", "group"]);
        e.text("cn", cn.clone());
        e.text("sAMAccountName", cn.clone());
        e.text("description", description);
        e.text("groupType", if distribution { "2" } else { "-2147483646" });
        if g % 2 == 0 || distribution {
            e.text("mail", format!("{}@{}", cn.to_lowercase(), d.suffix));
        }
        let refs = member_users
            .iter()
            .map(|&u| &users[u].at)
            .chain(member_contacts.iter().map(|&c| &contacts[c]))
            .chain(member_groups.iter().map(|&h| &groups[h]));
        for r in refs {
            // About 2% of member values spell the DN in other letter case, as AD may.
            let value = if rng.one_in(50) {
                &r.dn_other_case
            } else {
                &r.dn
            };
            e.text("member", value.clone());
        }
        entries.push(e);
        groups.push(at);
    }
    entries
}

/// `cn`, or `cn 2`, `cn 3`, … so that it is unique (case-insensitively) within its OU.
///
/// `taken.1` remembers, per base, the suffix after the last one handed out: every earlier
/// candidate is taken for good, so resuming there gives the same names without retrying
/// them (at a million users, retrying made generation quadratic).
fn unique_cn(
    taken: &mut Taken<(usize, usize, String)>,
    (domain, ou): (usize, usize),
    cn: &str,
) -> String {
    let base = (domain, ou, cn.to_lowercase());
    let mut n = taken.1.get(&base).copied().unwrap_or(1);
    loop {
        let candidate = if n == 1 {
            cn.to_string()
        } else {
            format!("{cn} {n}")
        };
        n += 1;
        if taken.0.insert((domain, ou, candidate.to_lowercase())) {
            taken.1.insert(base, n);
            return candidate;
        }
    }
}

/// Names handed out, and per base name the next suffix to try (see [`unique_cn`]).
type Taken<K> = (HashSet<K>, std::collections::HashMap<K, usize>);

/// A unique ASCII sAMAccountName of at most 20 characters.
fn unique_sam(taken: &mut Taken<String>, given: &str, surname: &str) -> String {
    let mut base: String = given.chars().take(1).collect();
    base.extend(surname.chars().filter(char::is_ascii_alphanumeric));
    let base: String = base.to_ascii_lowercase().chars().take(15).collect();
    // Resumes where the last name with this base stopped, as in `unique_cn`.
    let mut n = taken.1.get(&base).copied().unwrap_or(1);
    loop {
        let candidate = if n == 1 {
            base.clone()
        } else {
            format!("{base}{n}")
        };
        n += 1;
        if taken.0.insert(candidate.clone()) {
            taken.1.insert(base, n);
            return candidate;
        }
    }
}

/// RFC 2849 SAFE-STRING: may be written after `attr: ` as is.
fn is_safe(value: &str) -> bool {
    let bytes = value.as_bytes();
    match bytes.first() {
        None => true,
        Some(b' ' | b':' | b'<') => false,
        Some(_) => {
            bytes
                .iter()
                .all(|&b| b.is_ascii() && b != 0 && b != b'\n' && b != b'\r')
                && !value.ends_with(' ')
        }
    }
}

fn write_line(w: &mut impl Write, name: &str, value: &Val) -> io::Result<()> {
    match value {
        Val::Text(t) if is_safe(t) => writeln!(w, "{name}: {t}"),
        Val::Text(t) => writeln!(w, "{name}:: {}", BASE64.encode(t.as_bytes())),
        Val::Bytes(b) => writeln!(w, "{name}:: {}", BASE64.encode(b)),
    }
}

fn write_entry(w: &mut impl Write, entry: &Entry) -> io::Result<()> {
    write_line(w, "dn", &Val::Text(entry.dn.clone()))?;
    for (name, value) in &entry.attrs {
        write_line(w, name, value)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};

    use super::*;
    use crate::model::Dn;

    #[test]
    fn resumed_suffixes_give_the_names_retrying_gives() {
        // The plain retry loop the memo replaces.
        fn naive(taken: &mut HashSet<String>, base: &str) -> String {
            let mut candidate = base.to_string();
            let mut n = 2;
            while !taken.insert(candidate.clone()) {
                candidate = format!("{base}{n}");
                n += 1;
            }
            candidate
        }
        let mut rng = Rng::new();
        let mut plain = HashSet::new();
        let mut memo: Taken<String> = Default::default();
        // Bases that collide with each other's suffixed forms ("js" + "2" vs "js2").
        let bases = ["js", "js2", "j", "js22", "ab"];
        for _ in 0..5000 {
            let b = *rng.pick(&bases);
            let expected = naive(&mut plain, b);
            let surname = &b[1..];
            assert_eq!(unique_sam(&mut memo, &b[..1], surname), expected);
        }
    }

    /// A parsed entry of the generated file: DN and (attribute, decoded value) pairs.
    type Parsed = (String, Vec<(String, String)>);

    fn generate(size: DemoSize) -> Vec<u8> {
        let mut out = Vec::new();
        if let Err(e) = write_company_ldif(&mut out, size) {
            panic!("writing to a Vec failed: {e}");
        }
        out
    }

    /// Reads the generator's own output (unfolded lines, `::` base64) back.
    fn parse(bytes: &[u8]) -> Vec<Parsed> {
        let text = match std::str::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => panic!("output is not UTF-8: {e}"),
        };
        let mut entries = Vec::new();
        for block in text.split("\n\n") {
            let mut dn = None;
            let mut attrs = Vec::new();
            for line in block.lines() {
                if line.starts_with('#') || line.starts_with("version:") || line.is_empty() {
                    continue;
                }
                assert!(!line.starts_with(' '), "folded line in output: {line}");
                let Some((name, rest)) = line.split_once(':') else {
                    panic!("line without a colon: {line}");
                };
                let value = match rest.strip_prefix(':') {
                    Some(b64) => match BASE64.decode(b64.trim()) {
                        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                        Err(e) => panic!("bad base64 in {line}: {e}"),
                    },
                    None => {
                        let v = rest.strip_prefix(' ').unwrap_or(rest);
                        assert!(v.is_ascii(), "non-ASCII value written plain: {line}");
                        v.to_string()
                    }
                };
                if name == "dn" {
                    dn = Some(value);
                } else {
                    attrs.push((name.to_string(), value));
                }
            }
            if let Some(dn) = dn {
                entries.push((dn, attrs));
            }
        }
        entries
    }

    fn norm(dn: &str) -> String {
        match Dn::parse(dn) {
            Ok(d) => d.norm().to_string(),
            Err(e) => panic!("{e}"),
        }
    }

    fn values<'a>(e: &'a Parsed, name: &str) -> Vec<&'a str> {
        e.1.iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn class(e: &Parsed) -> &str {
        values(e, "objectClass").last().copied().unwrap_or_default()
    }

    #[test]
    fn output_is_deterministic() {
        let small = DemoSize {
            users: 300,
            groups: 20,
        };
        assert_eq!(generate(small), generate(small));
        assert_eq!(generate(DemoSize::DEMO), generate(DemoSize::DEMO));
    }

    #[test]
    fn demo_size_has_the_promised_shape() {
        let entries = parse(&generate(DemoSize::DEMO));
        let count = |c: &str| entries.iter().filter(|e| class(e) == c).count();
        assert!(count("user") >= 2000, "{}", count("user"));
        assert!(count("group") >= 100, "{}", count("group"));
        assert!(count("contact") >= 50, "{}", count("contact"));
        assert_eq!(count("domainDNS"), 2);

        let users: Vec<&Parsed> = entries.iter().filter(|e| class(e) == "user").collect();
        let corp = users
            .iter()
            .filter(|e| e.0.ends_with("DC=corp,DC=contoso,DC=com"))
            .count();
        assert!((65..=75).contains(&(corp * 100 / users.len())), "{corp}");
        let non_ascii = users
            .iter()
            .filter(|e| values(e, "cn").iter().any(|v| !v.is_ascii()))
            .count();
        assert!(non_ascii * 10 >= users.len(), "{non_ascii} non-ASCII names");
        assert!(users.iter().any(|e| values(e, "sn") == ["李"]));
        let disabled = users
            .iter()
            .filter(|e| values(e, "userAccountControl") == ["514"])
            .count();
        assert_eq!(disabled, users.len() / DISABLED_EVERY);

        // Every entry has an objectGUID; GUIDs, employeeIDs and sAMAccountNames are unique.
        for attr in ["objectGUID", "employeeID", "sAMAccountName"] {
            let all: Vec<&str> = entries.iter().flat_map(|e| values(e, attr)).collect();
            let distinct: HashSet<&str> = all.iter().copied().collect();
            assert_eq!(all.len(), distinct.len(), "{attr} not unique");
        }
        assert!(entries.iter().all(|e| values(e, "objectGUID").len() == 1));
        for u in &users {
            let sam = values(u, "sAMAccountName");
            assert!(sam[0].is_ascii() && sam[0].len() <= 20, "{sam:?}");
        }

        // The DN escapes promised for special names are in the file.
        for escaped in [
            "CN=Smith\\+Jones\\, Ann,",
            "CN=\\#Hashemi\\, Harry,",
            "CN=Doe\\;Roe\\, Jane,",
            "CN=Baker\\, Tom \\\"Bud\\\",",
        ] {
            assert!(users.iter().any(|e| e.0.starts_with(escaped)), "{escaped}");
        }

        // One large group; nested, cross-domain and contact memberships exist.
        let groups: Vec<&Parsed> = entries.iter().filter(|e| class(e) == "group").collect();
        let largest = groups.iter().map(|g| values(g, "member").len()).max();
        assert!(largest.unwrap_or(0) >= 1000, "{largest:?}");
        let ordinary = groups.iter().filter(|g| values(g, "member").len() < 1000);
        for g in ordinary {
            let n = values(g, "member").len();
            assert!((5..=80).contains(&n), "{} has {n} members", g.0);
        }
        let kinds: HashMap<String, &str> = entries.iter().map(|e| (norm(&e.0), class(e))).collect();
        let member_kinds: HashSet<&str> = groups
            .iter()
            .flat_map(|g| values(g, "member"))
            .filter_map(|m| kinds.get(&norm(m)).copied())
            .collect();
        assert_eq!(member_kinds, HashSet::from(["user", "contact", "group"]));
        let case_variants = groups
            .iter()
            .flat_map(|g| values(g, "member"))
            .filter(|m| m.starts_with("cn="))
            .count();
        assert!(case_variants > 0);
    }

    #[test]
    fn dns_are_unique_and_references_resolve() {
        for size in [
            DemoSize::DEMO,
            DemoSize {
                users: 60,
                groups: 10,
            },
        ] {
            let entries = parse(&generate(size));
            let mut seen = HashSet::new();
            for e in &entries {
                assert!(seen.insert(norm(&e.0)), "duplicate DN {}", e.0);
            }
            // Exact spellings; member values may differ in letter case only.
            let exact: HashSet<&str> = entries.iter().map(|e| e.0.as_str()).collect();
            let mut position = HashMap::new();
            for (i, e) in entries.iter().enumerate() {
                position.insert(norm(&e.0), i);
            }
            for (i, e) in entries.iter().enumerate() {
                for v in values(e, "manager") {
                    assert!(exact.contains(v), "manager {v} of {}", e.0);
                }
                for v in values(e, "member") {
                    let Some(&at) = position.get(&norm(v)) else {
                        panic!("member {v} of {} names no entry", e.0);
                    };
                    assert!(at < i, "member {v} of {} is written after it", e.0);
                    assert!(
                        exact.contains(v) || v.starts_with("cn="),
                        "member {v} is spelled differently"
                    );
                }
            }
        }
    }

    #[test]
    fn config_names_the_generated_partitions() {
        for d in &DOMAINS {
            assert!(DEMO_CONFIG.contains(&format!("\"{}\"", d.root)));
        }
    }
}
