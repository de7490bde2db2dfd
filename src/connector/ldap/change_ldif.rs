//! Pending exports as LDIF change records (RFC 2849), operation for operation as
//! [`super::export`] sends them: an add (on AD without the password and account control,
//! which follow as a modify), a modrdn before the modify of a renamed object, value-level
//! adds and removes, a delete. Fed to `ldapmodify`, the records make the same changes the
//! export would; that is what `bridgehead pending --format ldif` is reviewed against.

use super::export::octets;
use crate::config::LdapFlavor;
use crate::connector::ldif::format::write_attr_line;
use crate::model::{AttrChange, AttrName, ChangeOp, ExportItem, ExportKind};

/// Attributes whose values a review never shows (an initial password set by a flow).
const SECRET: &[&str] = &["unicodePwd", "userPassword"];

fn io(e: std::io::Error) -> String {
    format!("writing LDIF: {e}")
}

fn values(
    w: &mut Vec<u8>,
    attr: &AttrName,
    vals: &crate::model::ValueSet,
    flavor: LdapFlavor,
) -> Result<(), String> {
    if SECRET.iter().any(|s| attr.is(s)) {
        // The line is a comment, so ldapmodify skips it: a review shows that a password is
        // set, never the password.
        w.extend_from_slice(format!("# {attr}: (a value is set; not shown)\n").as_bytes());
        return Ok(());
    }
    for v in vals.iter() {
        write_attr_line(w, attr.as_str(), &octets(attr, v, flavor)?).map_err(io)?;
    }
    Ok(())
}

fn modify(
    w: &mut Vec<u8>,
    dn: &str,
    changes: &[AttrChange],
    flavor: LdapFlavor,
) -> Result<(), String> {
    if changes.is_empty() {
        return Ok(());
    }
    write_attr_line(w, "dn", dn.as_bytes()).map_err(io)?;
    w.extend_from_slice(b"changetype: modify\n");
    for c in changes {
        let (verb, vals) = match &c.op {
            ChangeOp::Add(v) => ("add", v),
            ChangeOp::Remove(v) => ("delete", v),
            ChangeOp::Replace(v) => ("replace", v),
        };
        write_attr_line(w, verb, c.attr.as_str().as_bytes()).map_err(io)?;
        values(w, &c.attr, vals, flavor)?;
        w.extend_from_slice(b"-\n");
    }
    w.extend_from_slice(b"\n");
    Ok(())
}

/// Appends the change records of one pending export to `w`.
pub fn write_item(w: &mut Vec<u8>, item: &ExportItem, flavor: LdapFlavor) -> Result<(), String> {
    match item.kind {
        ExportKind::Delete => {
            write_attr_line(w, "dn", item.dn.as_str().as_bytes()).map_err(io)?;
            w.extend_from_slice(b"changetype: delete\n\n");
        }
        ExportKind::Add => {
            let (attrs, after) = super::export::add_parts(item, flavor);
            write_attr_line(w, "dn", item.dn.as_str().as_bytes()).map_err(io)?;
            w.extend_from_slice(b"changetype: add\n");
            for (name, vals) in attrs.iter() {
                values(w, name, vals, flavor)?;
            }
            w.extend_from_slice(b"\n");
            modify(w, item.dn.as_str(), &after, flavor)?;
        }
        ExportKind::Update => {
            let mut dn = item.dn.clone();
            if let Some(new_dn) = &item.new_dn {
                if new_dn.as_str() != dn.as_str() {
                    write_attr_line(w, "dn", dn.as_str().as_bytes()).map_err(io)?;
                    w.extend_from_slice(b"changetype: modrdn\n");
                    write_attr_line(w, "newrdn", new_dn.rdn().as_bytes()).map_err(io)?;
                    w.extend_from_slice(b"deleteoldrdn: 1\n");
                    let parent = new_dn.parent();
                    if parent.norm() != dn.parent().norm() {
                        write_attr_line(w, "newsuperior", parent.as_str().as_bytes())
                            .map_err(io)?;
                    }
                    w.extend_from_slice(b"\n");
                    dn = new_dn.clone();
                }
            }
            modify(w, dn.as_str(), &item.changes, flavor)?;
        }
    }
    Ok(())
}

/// The change records of pending exports, in the order given, as one LDIF text.
pub fn change_records(items: &[ExportItem], flavor: LdapFlavor) -> Result<String, String> {
    let mut w = b"version: 1\n\n".to_vec();
    for item in items {
        write_item(&mut w, item, flavor)?;
    }
    // Every line is ASCII: unsafe values went out as base64.
    String::from_utf8(w).map_err(|e| format!("LDIF output: {e}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::{CsId, Dn, Value, ValueSet};

    fn change(attr: &str, op: fn(ValueSet) -> ChangeOp, v: &str) -> AttrChange {
        AttrChange {
            attr: AttrName::new(attr),
            op: op(ValueSet::one(Value::str(v.to_string()))),
        }
    }

    fn item(
        kind: ExportKind,
        dn: &str,
        new_dn: Option<&str>,
        changes: Vec<AttrChange>,
    ) -> ExportItem {
        ExportItem {
            cs_id: CsId(1),
            kind,
            anchor: None,
            dn: Dn::parse(dn).unwrap(),
            new_dn: new_dn.map(|d| Dn::parse(d).unwrap()),
            object_class: "inetOrgPerson".into(),
            changes,
            stage: 0,
        }
    }

    #[test]
    fn each_export_becomes_the_change_records_the_export_sends() {
        let text = change_records(
            &[
                item(ExportKind::Delete, "uid=gone,o=t", None, Vec::new()),
                item(
                    ExportKind::Update,
                    "uid=a,ou=old,o=t",
                    Some("uid=b,ou=new,o=t"),
                    vec![
                        change("mail", ChangeOp::Add, "b@example.org"),
                        change("member", ChangeOp::Remove, "uid=x,o=t"),
                        change("title", ChangeOp::Replace, "Zoë"),
                    ],
                ),
                item(
                    ExportKind::Add,
                    "uid=new,o=t",
                    None,
                    vec![
                        change("uid", ChangeOp::Replace, "new"),
                        change("userPassword", ChangeOp::Replace, "s3cret"),
                    ],
                ),
            ],
            LdapFlavor::Ldap,
        )
        .unwrap();
        assert!(!text.contains("s3cret"), "{text}");
        let want = "version: 1\n\n\
            dn: uid=gone,o=t\nchangetype: delete\n\n\
            dn: uid=a,ou=old,o=t\nchangetype: modrdn\nnewrdn: uid=b\ndeleteoldrdn: 1\nnewsuperior: ou=new,o=t\n\n\
            dn: uid=b,ou=new,o=t\nchangetype: modify\nadd: mail\nmail: b@example.org\n-\n\
            delete: member\nmember: uid=x,o=t\n-\nreplace: title\ntitle:: Wm/Dqw==\n-\n\n";
        assert!(text.starts_with(want), "{text}");
        assert!(
            text.contains("dn: uid=new,o=t\nchangetype: add\n"),
            "{text}"
        );
        assert!(text.contains("objectClass: inetOrgPerson\n"), "{text}");
        // One record per operation: delete, modrdn, modify, add.
        assert_eq!(text.matches("changetype: ").count(), 4, "{text}");
    }
}
