//! Editing the source as AD would (attribute changes, deletes, moves, a group rename, a new
//! user) exports exactly those changes and their knock-on reference updates.

use std::collections::{BTreeSet, HashMap};

use crate::support::{
    LdifEntry, LdifValue, Must, TestDir, assert_quiet_cycle, assert_same_target, by_dn,
    cycle_counts, cycle_json, demo_once, escape_rdn_value, expected_target, norm_dn, read_ldif,
    read_target, write_ldif,
};

/// Splits `CN=a\,b,OU=x,...` into its first RDN and the parent DN.
fn split_first_rdn(dn: &str) -> (&str, &str) {
    let bytes = dn.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b',' => return (&dn[..i], &dn[i + 1..]),
            _ => i += 1,
        }
    }
    (dn, "")
}

fn is_enabled_user(e: &LdifEntry) -> bool {
    e.class() == "user" && e.first("userAccountControl").as_deref() == Some("512")
}

/// Rewrites every member/manager value: drops those naming a deleted entry, re-points those
/// naming a moved or renamed one (values are matched as DNs, so other spellings count).
fn fix_references(
    entries: &mut [LdifEntry],
    deleted: &BTreeSet<String>,
    moved: &HashMap<String, String>,
) {
    for e in entries.iter_mut() {
        e.attrs
            .retain(|(name, v)| !(is_reference(name) && deleted.contains(&norm_dn(&v.as_text()))));
        for (name, v) in e.attrs.iter_mut() {
            if is_reference(name) {
                if let Some(new_dn) = moved.get(&norm_dn(&v.as_text())) {
                    *v = LdifValue::text(new_dn);
                }
            }
        }
    }
}

fn is_reference(name: &str) -> bool {
    name.eq_ignore_ascii_case("member") || name.eq_ignore_ascii_case("manager")
}

#[test]
fn edit_exports_exactly_the_changes() {
    let dir = TestDir::new("edit");
    demo_once(&dir);
    let source_path = dir.join("contoso.ldif");
    let original = read_ldif(&source_path);
    let before = expected_target(&original);
    let mut entries = original.clone();

    // How often each entry is named as a manager and as a member.
    let mut manager_refs: HashMap<String, usize> = HashMap::new();
    let mut member_refs: HashMap<String, usize> = HashMap::new();
    for e in &entries {
        for m in e.values("manager") {
            *manager_refs.entry(norm_dn(&m)).or_default() += 1;
        }
        for m in e.values("member") {
            *member_refs.entry(norm_dn(&m)).or_default() += 1;
        }
    }
    let refs = |e: &LdifEntry, map: &HashMap<String, usize>| {
        map.get(&norm_dn(&e.dn)).copied().unwrap_or(0)
    };
    let enabled: Vec<usize> = (0..entries.len())
        .filter(|&i| is_enabled_user(&entries[i]))
        .collect();
    let mut used: BTreeSet<usize> = BTreeSet::new();

    // Three deletes of users that are someone's manager and some group's member.
    let deleted: Vec<usize> = enabled
        .iter()
        .copied()
        .filter(|&i| refs(&entries[i], &manager_refs) > 0 && refs(&entries[i], &member_refs) > 0)
        .take(3)
        .collect();
    assert_eq!(deleted.len(), 3, "not enough referenced users to delete");
    used.extend(&deleted);

    // Two moves: the user whose name needs `\+`, and one with a non-ASCII name; both referenced.
    let existing: BTreeSet<String> = entries.iter().map(|e| norm_dn(&e.dn)).collect();
    let mut moves: HashMap<String, String> = HashMap::new();
    let mut moved: Vec<usize> = Vec::new();
    let pickers: [&dyn Fn(&LdifEntry) -> bool; 2] = [
        &|e| e.first("cn").is_some_and(|cn| cn.contains('+')),
        &|e| e.first("cn").is_some_and(|cn| !cn.is_ascii()),
    ];
    for pick in pickers {
        let candidate = enabled.iter().copied().find(|&i| {
            let e = &entries[i];
            !used.contains(&i) && pick(e) && refs(e, &member_refs) + refs(e, &manager_refs) > 0
        });
        let i = candidate.must("a user to move");
        let e = &entries[i];
        let department = e.first("department").must("department");
        let new_department = if department == "Legal" {
            "Finance"
        } else {
            "Legal"
        };
        let (rdn, parent) = split_first_rdn(&e.dn);
        let domain_root = parent
            .split_once(",OU=Users,")
            .map(|(_, root)| root)
            .must(&format!("domain of {}", e.dn));
        let new_dn = format!("{rdn},OU={new_department},OU=Users,{domain_root}");
        assert!(!existing.contains(&norm_dn(&new_dn)), "{new_dn} is taken");
        moves.insert(norm_dn(&e.dn), new_dn);
        moved.push(i);
        used.insert(i);
    }

    // One group rename: a group that is itself a member of another group.
    let group = (0..entries.len())
        .find(|&i| entries[i].class() == "group" && refs(&entries[i], &member_refs) > 0)
        .must("a nested group to rename");
    let old_cn = entries[group].first("cn").must("group cn");
    let new_cn = format!("{old_cn}-Renamed");
    let (_, group_parent) = split_first_rdn(&entries[group].dn);
    let new_group_dn = format!("CN={},{group_parent}", escape_rdn_value(&new_cn));
    moves.insert(norm_dn(&entries[group].dn), new_group_dn.clone());

    // Ten title changes, spread over the file.
    let retitled: Vec<usize> = enabled
        .iter()
        .copied()
        .filter(|i| !used.contains(i))
        .step_by(97)
        .take(10)
        .collect();
    assert_eq!(retitled.len(), 10);

    // Apply the edits.
    for &i in &retitled {
        let old = entries[i].first("title").must("title");
        entries[i].set("title", &[&format!("{old} (acting)")]);
    }
    for &i in &moved {
        let new_dn = moves.get(&norm_dn(&entries[i].dn)).must("moved DN").clone();
        entries[i].dn = new_dn;
    }
    entries[group].dn = new_group_dn.clone();
    entries[group].set("cn", &[&new_cn]);
    let deleted_dns: BTreeSet<String> = deleted.iter().map(|&i| norm_dn(&entries[i].dn)).collect();
    // (A moved DN is keyed by its old spelling in `moves`, so fix references before removing.)
    fix_references(&mut entries, &deleted_dns, &moves);

    // One new user, member of an existing group that is otherwise untouched.
    let manager_dn = entries[retitled[0]].dn.clone();
    let new_user_dn = "CN=Newcomer\\, Nora,OU=Sales,OU=Users,DC=corp,DC=contoso,DC=com";
    let mut new_user = LdifEntry {
        dn: new_user_dn.to_string(),
        attrs: Vec::new(),
    };
    for class in ["top", "person", "organizationalPerson", "user"] {
        new_user
            .attrs
            .push(("objectClass".into(), LdifValue::text(class)));
    }
    new_user.attrs.push((
        "objectGUID".into(),
        LdifValue {
            bytes: b"\x01new-user-guid\xfe\xff".to_vec(),
            base64: true,
        },
    ));
    for (name, value) in [
        ("cn", "Newcomer, Nora"),
        ("sn", "Newcomer"),
        ("givenName", "Nora"),
        ("displayName", "Nora Newcomer"),
        ("sAMAccountName", "nnewcomer"),
        ("userPrincipalName", "nnewcomer@corp.contoso.com"),
        ("mail", "nnewcomer@corp.contoso.com"),
        ("department", "Sales"),
        ("title", "Account Executive"),
        ("employeeID", "E99001"),
        ("userAccountControl", "512"),
        ("manager", &manager_dn),
    ] {
        new_user.attrs.push((name.into(), LdifValue::text(value)));
    }
    assert!(!existing.contains(&norm_dn(new_user_dn)));
    let last_user = (0..entries.len())
        .rev()
        .find(|&i| entries[i].class() == "user")
        .must("a user entry");
    let host_group = (0..entries.len())
        .rev()
        .find(|&i| entries[i].class() == "group" && i != group)
        .must("a group for the new user");
    entries[host_group]
        .attrs
        .push(("member".into(), LdifValue::text(new_user_dn)));
    entries.insert(last_user + 1, new_user);
    entries.retain(|e| !deleted_dns.contains(&norm_dn(&e.dn)));
    assert_eq!(entries.len(), original.len() + 1 - 3);
    write_ldif(&source_path, &entries);

    // What should happen, by identity (objectGUID) rather than DN.
    let after = expected_target(&read_ldif(&source_path));
    let adds = after.keys().filter(|k| !before.contains_key(*k)).count();
    let deletes = before.keys().filter(|k| !after.contains_key(*k)).count();
    let both: Vec<&String> = after.keys().filter(|k| before.contains_key(*k)).collect();
    let renames = both
        .iter()
        .filter(|k| before[**k].dn != after[**k].dn)
        .count();
    let changed = both.iter().filter(|k| before[**k] != after[**k]).count();
    // The test's own edits must produce what it claims before the engine is judged.
    assert_eq!((adds, deletes, renames), (1, 3, 3));
    assert!(
        changed > renames + 10,
        "only {changed} changed entries expected"
    );

    let run = cycle_json(&dir.config(), false);
    run.ok();
    let counts = cycle_counts(&run.json());
    eprintln!(
        "expected: {adds} adds, {deletes} deletes, {renames} renames, {changed} changed; \
         cycle reported {counts:?}"
    );
    let (_, export, errors) = counts["directory"];
    assert_eq!(errors, 0, "{}", run.stdout);
    assert_eq!(counts["contoso"].2, 0, "{}", run.stdout);
    let source_import = counts["contoso"].0;
    assert_eq!(
        (
            source_import.adds,
            source_import.deletes,
            source_import.renames
        ),
        (1, 3, 3),
        "source import counts: {}",
        run.stdout
    );
    assert_eq!(export.adds, 1, "{}", run.stdout);
    assert_eq!(export.deletes, 3, "{}", run.stdout);
    assert_eq!(export.renames, 3, "{}", run.stdout);
    assert_eq!(
        export.updates + export.renames,
        changed as u64,
        "{changed} target entries change DN or attributes (of them {renames} renames); \
         export reported {export:?}\n{}",
        run.stdout
    );

    let actual = read_target(&dir.join("directory.ldif"), false);
    assert_same_target(&actual, &by_dn(&after), "after editing the source");
    assert_quiet_cycle(&cycle_json(&dir.config(), false));
}
