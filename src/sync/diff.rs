//! The outbound diff: the changes that turn a hologram into what the rules want,
//! compared up to notation (model `same_as`), with the values a directory did not keep
//! held back; and the application of exported changes to a hologram.

use crate::model::{AttrChange, AttrName, Attributes, ChangeOp, CsId, ValueSet};
use crate::store::{StoreError, WriteTx};

/// The changes that turn `holo` into `desired` for the flowed attributes: single values as
/// Replace, multi-valued sets as value-level Add/Remove (a large group never rewritten whole).
pub(super) fn diff(holo: &Attributes, desired: &[(AttrName, ValueSet)]) -> Vec<AttrChange> {
    let empty = ValueSet::new();
    let mut out = Vec::new();
    let mut seen: Vec<&AttrName> = Vec::new();
    for (attr, want) in desired {
        if seen.contains(&attr) {
            continue;
        }
        seen.push(attr);
        let have = holo.get(attr.key()).unwrap_or(&empty);
        // A directory that holds links by anchor (AD read with extended DNs) is written by
        // DN: its links compare as the DNs they name.
        let as_dns;
        let have = match have.links_as_dns() {
            Some(d) => {
                as_dns = d;
                &as_dns
            }
            None => have,
        };
        // Directories hand values back in their own notation (512 flowed as a number is
        // the "512" LDAP returns, "True" from an expression is SCIM's true): compared up
        // to notation, or a quiet cycle would write the same values forever.
        if have.same_as(want) {
            continue;
        }
        if have.len() <= 1 && want.len() <= 1 {
            out.push(AttrChange {
                attr: attr.clone(),
                op: ChangeOp::Replace(want.clone()),
            });
            continue;
        }
        let adds: ValueSet = want.unmatched(have).cloned().collect();
        let removes: ValueSet = have.unmatched(want).cloned().collect();
        if !removes.is_empty() {
            out.push(AttrChange {
                attr: attr.clone(),
                op: ChangeOp::Remove(removes),
            });
        }
        if !adds.is_empty() {
            out.push(AttrChange {
                attr: attr.clone(),
                op: ChangeOp::Add(adds),
            });
        }
    }
    out
}

/// Leaves out the changes the directory did not keep last time they were sent, as long
/// as the values to send are still those: sending them again would change nothing, and
/// the object's error already says so.
pub(super) fn hold_back_not_kept(
    tx: &WriteTx,
    cs: CsId,
    changes: Vec<AttrChange>,
    desired: &[(AttrName, ValueSet)],
) -> Result<Vec<AttrChange>, StoreError> {
    if changes.is_empty() {
        return Ok(changes);
    }
    let Some(sent) = tx.not_kept(cs)? else {
        return Ok(changes);
    };
    let resent = |attr: &AttrName| {
        let want = desired.iter().find(|(a, _)| a == attr).map(|(_, v)| v);
        match (sent.get(attr.key()), want) {
            (Some(s), Some(w)) => s.same_as(w),
            _ => false,
        }
    };
    Ok(changes.into_iter().filter(|c| !resent(&c.attr)).collect())
}

/// Applies attribute changes to a hologram (after the directory took an export).
pub fn apply_changes(attrs: &mut Attributes, changes: &[AttrChange]) {
    for c in changes {
        match &c.op {
            ChangeOp::Replace(v) => attrs.set(c.attr.clone(), v.clone()),
            ChangeOp::Add(v) => {
                for x in v {
                    attrs.add(&c.attr, x.clone());
                }
            }
            ChangeOp::Remove(v) => {
                let mut cur = attrs.get(c.attr.key()).cloned().unwrap_or_default();
                for x in v {
                    cur.remove(x);
                }
                attrs.set(c.attr.clone(), cur);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Value;

    fn set(vals: &[&str]) -> ValueSet {
        vals.iter().map(|v| Value::str(*v)).collect()
    }

    #[test]
    fn diff_uses_value_deltas_for_multi_valued_attributes() {
        let mut holo = Attributes::new();
        holo.set(AttrName::new("member"), set(&["a", "b", "c"]));
        holo.set(AttrName::new("title"), set(&["x"]));
        let desired = vec![
            (AttrName::new("member"), set(&["a", "c", "d"])),
            (AttrName::new("title"), set(&["y"])),
        ];
        let changes = diff(&holo, &desired);
        assert_eq!(
            changes,
            vec![
                AttrChange {
                    attr: AttrName::new("member"),
                    op: ChangeOp::Remove(set(&["b"]))
                },
                AttrChange {
                    attr: AttrName::new("member"),
                    op: ChangeOp::Add(set(&["d"]))
                },
                AttrChange {
                    attr: AttrName::new("title"),
                    op: ChangeOp::Replace(set(&["y"]))
                },
            ]
        );
        apply_changes(&mut holo, &changes);
        assert_eq!(holo.get("member"), Some(&set(&["a", "c", "d"])));
        assert_eq!(holo.get("title"), Some(&set(&["y"])));
        assert!(diff(&holo, &desired).is_empty());
    }
}
