//! Export order among updates: an update that takes a value (or a DN) which another update
//! of the same export gives up goes after it. Deletes already go before every update; this
//! settles the rest, e.g. a userName or a mail passed from one object to another in one
//! delta, or a rename into the DN another rename leaves, which a directory that enforces
//! uniqueness (SCIM's userName, AD's sAMAccountName, any DN) would otherwise refuse.

use std::collections::{HashMap, HashSet};

use crate::model::{ChangeOp, CsId, ExportKind};
use crate::store::CsRecord;

/// A value claimed or given up: the attribute (lower case, or `dn`) and the value's text
/// (lower case: directories compare unique values without case).
type Claim = (String, String);

/// What one pending update gives up and takes.
#[derive(Default)]
pub struct Claims {
    frees: Vec<Claim>,
    takes: Vec<Claim>,
}

/// What a pending update gives up and takes; None for anything else (deletes go first
/// anyway, adds give nothing up).
pub fn claims(rec: &CsRecord) -> Option<Claims> {
    let mut out = Claims::default();
    let export = rec.export.as_ref()?;
    if export.kind != ExportKind::Update {
        return None;
    }
    if let Some(new_dn) = &export.new_dn {
        out.frees.push(("dn".into(), rec.dn.norm().to_string()));
        out.takes.push(("dn".into(), new_dn.norm().to_string()));
    }
    for change in &export.changes {
        let attr = change.attr.to_string().to_ascii_lowercase();
        let text = |v: &crate::model::Value| v.to_text().to_lowercase();
        match &change.op {
            ChangeOp::Replace(values) => {
                for old in rec.attrs.get(change.attr.key()).into_iter().flatten() {
                    out.frees.push((attr.clone(), text(old)));
                }
                out.takes
                    .extend(values.iter().map(|v| (attr.clone(), text(v))));
            }
            ChangeOp::Remove(values) => {
                out.frees
                    .extend(values.iter().map(|v| (attr.clone(), text(v))));
            }
            ChangeOp::Add(values) => {
                out.takes
                    .extend(values.iter().map(|v| (attr.clone(), text(v))));
            }
        }
    }
    Some(out)
}

/// For each update that must wait for others, how many steps it waits (1: after the
/// updates that free what it takes; 2: after those, …). Updates not listed wait for
/// nothing. A cycle (two objects swapping a value) cannot be ordered; its members keep the
/// depth reached when the bound stops the walk, and the directory's answer decides.
pub fn update_depths(all: &[(CsId, Claims)]) -> HashMap<CsId, u8> {
    let mut freed_by: HashMap<&Claim, Vec<CsId>> = HashMap::new();
    for (id, c) in all {
        for claim in &c.frees {
            freed_by.entry(claim).or_default().push(*id);
        }
    }
    // id → the other updates it must follow.
    let mut after: HashMap<CsId, HashSet<CsId>> = HashMap::new();
    for (id, c) in all {
        for claim in &c.takes {
            for other in freed_by.get(claim).into_iter().flatten() {
                if other != id {
                    after.entry(*id).or_default().insert(*other);
                }
            }
        }
    }
    let mut depth: HashMap<CsId, u8> = HashMap::new();
    // Longest path by relaxation; the bound ends cycles.
    for _ in 0..after.len().min(32) {
        let mut changed = false;
        for (id, before) in &after {
            let want = before
                .iter()
                .map(|b| depth.get(b).copied().unwrap_or(0).saturating_add(1))
                .max()
                .unwrap_or(0);
            if depth.get(id).copied().unwrap_or(0) < want {
                depth.insert(*id, want);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    depth
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AttrChange, AttrName, Attributes, Dn, Value, ValueSet};
    use crate::store::PendingExportRecord;

    fn update(user_name: &str, to: &str) -> CsRecord {
        let mut attrs = Attributes::new();
        attrs.set(
            AttrName::new("userName"),
            ValueSet::one(Value::str(user_name)),
        );
        CsRecord {
            connector: "cloud".into(),
            anchor: Some(user_name.as_bytes().to_vec()),
            dn: Dn::parse(&format!("externalId={user_name},ou=Users"))
                .unwrap_or_else(|_| Dn::root()),
            object_class: "User".into(),
            attrs,
            deleted: false,
            object_type: None,
            export: Some(PendingExportRecord {
                kind: ExportKind::Update,
                new_dn: None,
                changes: vec![AttrChange {
                    attr: AttrName::new("userName"),
                    op: ChangeOp::Replace(ValueSet::one(Value::str(to))),
                }],
                rule: "r".into(),
            }),
            error: None,
            unresolved: Vec::new(),
            unconfirmed: false,
            claims: Vec::new(),
        }
    }

    #[test]
    fn an_update_taking_a_freed_value_waits_for_the_one_freeing_it() {
        // a gives "ann" up for "ann2"; b takes "ann" (any case); c takes b's old "bob".
        let a = update("ann", "ann2");
        let b = update("bob", "ANN");
        let c = update("carl", "bob");
        let d = update("dora", "dora2");
        let all: Vec<(CsId, Claims)> = [(4, &d), (3, &c), (2, &b), (1, &a)]
            .into_iter()
            .filter_map(|(id, rec)| Some((CsId(id), claims(rec)?)))
            .collect();
        let depths = update_depths(&all);
        assert_eq!(depths.get(&CsId(1)), None);
        assert_eq!(depths.get(&CsId(2)), Some(&1));
        assert_eq!(depths.get(&CsId(3)), Some(&2));
        assert_eq!(depths.get(&CsId(4)), None);
    }

    #[test]
    fn a_swap_is_bounded() {
        let a = update("ann", "bob");
        let b = update("bob", "ann");
        let all: Vec<(CsId, Claims)> = [(1, &a), (2, &b)]
            .into_iter()
            .filter_map(|(id, rec)| Some((CsId(id), claims(rec)?)))
            .collect();
        let depths = update_depths(&all);
        assert!(depths.values().all(|d| *d <= 32), "{depths:?}");
    }
}
