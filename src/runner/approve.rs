//! Approvals: what `approve` releases — the deletes (and with them the export run) the
//! deletion threshold holds, and an import the empty-import guard stopped — named so an
//! admin can see whom they release.

use super::{RunError, Runner};
use crate::model::Attributes;
use crate::store::{CsRecord, HeldImport};

/// One object an approval releases.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Released {
    /// Its DN in the target (for SCIM the `externalId=…` form the engine keys it by).
    pub dn: String,
    /// A name an admin recognises: display name, then UPN or user name, then mail.
    pub name: Option<String>,
    /// The UPN, user name or mail, when it is not already the name.
    pub id: Option<String>,
}

/// What one connector's approval released.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Approval {
    /// The connector.
    pub connector: String,
    /// The deletes released (with them, a held export run goes out).
    pub deletes: Vec<Released>,
    /// The import the empty-import guard had stopped, now let through once.
    pub import: Option<ImportApproval>,
}

/// An import approved past the empty-import guard.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ImportApproval {
    /// Objects the connector space held.
    pub held: u64,
    /// Objects the stopped import found.
    pub found: u64,
}

impl Approval {
    /// Whether there was nothing to approve.
    pub fn is_empty(&self) -> bool {
        self.deletes.is_empty() && self.import.is_none()
    }
}

/// The first value among these attributes (SCIM paths included).
fn first_of(attrs: &Attributes, names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| {
        attrs.first_text(n).filter(|v| !v.is_empty()).or_else(|| {
            // SCIM's multi-valued attributes are held by path, e.g.
            // `emails[type eq "work"].value`.
            let prefix = format!("{}[", n.to_ascii_lowercase());
            attrs.iter().find_map(|(k, v)| {
                k.as_str()
                    .to_ascii_lowercase()
                    .starts_with(&prefix)
                    .then(|| v.first().map(|x| x.to_text()))
                    .flatten()
            })
        })
    })
}

/// How an object is named in an approval, from its hologram.
pub fn released(rec: &CsRecord) -> Released {
    let display = first_of(&rec.attrs, &["displayName", "cn"]);
    let id = first_of(
        &rec.attrs,
        &["userPrincipalName", "userName", "mail", "emails"],
    );
    let (name, id) = match (display, id) {
        (Some(d), id) => (Some(d), id),
        (None, Some(i)) => (Some(i), None),
        (None, None) => (None, None),
    };
    Released {
        dn: rec.dn.to_string(),
        name,
        id,
    }
}

impl Runner {
    /// Approves what the gates hold for `connector`: exactly the deletes the threshold
    /// holds back (they, and a held export run, go out with the next export) and an import
    /// the empty-import guard stopped (the next such import goes through once).
    pub fn approve(&self, connector: &str) -> Result<Approval, RunError> {
        let conn = self.connector_name(connector)?;
        let tx = self.store.write()?;
        let ids = tx.approve_deletes(&conn)?;
        let mut deletes = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(rec) = tx.cs(id)? {
                deletes.push(released(&rec));
            }
        }
        let import = match tx.held_import(&conn)? {
            Some(h) if !h.approved => {
                tx.set_held_import(
                    &conn,
                    Some(HeldImport {
                        approved: true,
                        ..h
                    }),
                )?;
                Some(ImportApproval {
                    held: h.held,
                    found: h.found,
                })
            }
            _ => None,
        };
        tx.commit()?;
        Ok(Approval {
            connector: conn.to_string(),
            deletes,
            import,
        })
    }

    /// Approves several connectors at once, all or none: an unknown name refuses the lot
    /// before anything is approved.
    pub fn approve_all(&self, connectors: &[String]) -> Result<Vec<Approval>, RunError> {
        for c in connectors {
            self.connector_name(c)?;
        }
        connectors.iter().map(|c| self.approve(c)).collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::{AttrName, Dn, Value, ValueSet};

    fn rec(attrs: &[(&str, &str)]) -> CsRecord {
        let mut a = Attributes::new();
        for (k, v) in attrs {
            a.set(AttrName::new(k), ValueSet::one(Value::String((*v).into())));
        }
        CsRecord {
            connector: "t".into(),
            anchor: None,
            dn: Dn::parse("externalId=abc").unwrap(),
            object_class: "User".into(),
            attrs: a,
            deleted: false,
            object_type: None,
            export: None,
            error: None,
            unresolved: Vec::new(),
            unconfirmed: false,
            claims: Vec::new(),
        }
    }

    #[test]
    fn a_released_object_is_named_by_display_name_and_upn_or_mail_not_only_its_dn() {
        let r = released(&rec(&[
            ("displayName", "Ada Lovelace"),
            ("userName", "ada@example.org"),
        ]));
        assert_eq!(r.name.as_deref(), Some("Ada Lovelace"));
        assert_eq!(r.id.as_deref(), Some("ada@example.org"));
        assert_eq!(r.dn, "externalId=abc");
        let r = released(&rec(&[("emails[type eq \"work\"].value", "b@example.org")]));
        assert_eq!(r.name.as_deref(), Some("b@example.org"));
        assert_eq!(r.id, None);
        assert_eq!(released(&rec(&[])).name, None);
    }
}
