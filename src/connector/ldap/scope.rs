//! Which directory objects a connector imports: object classes, per-class LDAP filters,
//! included and excluded OUs, and membership of one group (Azure AD Connect's filtering
//! options), as server-side filters where the protocol allows and client-side checks
//! where it does not (DirSync filters on objectClass only, or deletes vanish).

use std::collections::HashSet;

use crate::config::{LdapConfig, LdapFlavor};
use crate::model::Dn;

/// The scope of one connector.
pub struct Scope {
    base: Dn,
    include: Vec<Dn>,
    exclude: Vec<Dn>,
    classes: Vec<String>,
    filters: Vec<(String, String)>,
    /// The filter group and the normalised DNs of its direct members, once read.
    pub group: Option<(Dn, HashSet<String>)>,
}

impl Scope {
    /// The scope configured for a connector (group members not read yet).
    pub fn new(cfg: &LdapConfig) -> Self {
        let mut include = cfg.include_ous.clone();
        let fsp_class = cfg
            .object_classes
            .iter()
            .any(|c| c.eq_ignore_ascii_case("foreignSecurityPrincipal"));
        if cfg.flavor == LdapFlavor::Ad && !include.is_empty() && fsp_class {
            // Members from other forests are foreign security principals in this one
            // container; without them cross-forest memberships cannot be resolved.
            if let Ok(fsp) = Dn::parse(&format!("CN=ForeignSecurityPrincipals,{}", cfg.base_dn)) {
                include.push(fsp);
            }
        }
        Scope {
            base: cfg.base_dn.clone(),
            include,
            exclude: cfg.exclude_ous.clone(),
            classes: cfg.object_classes.clone(),
            filters: cfg.filters.clone(),
            group: cfg.member_of.clone().map(|g| (g, HashSet::new())),
        }
    }

    /// The subtrees to search: the included OUs, or the whole base.
    pub fn bases(&self) -> Vec<Dn> {
        if self.include.is_empty() {
            vec![self.base.clone()]
        } else {
            self.include.clone()
        }
    }

    /// `(|(objectClass=a)(objectClass=b)…)`: what DirSync may filter on.
    pub fn class_filter(&self) -> String {
        let mut f = String::from("(|");
        for c in &self.classes {
            f.push_str(&format!("(objectClass={c})"));
        }
        f.push(')');
        f
    }

    /// The class filter with each class's own attribute filter.
    pub fn full_filter(&self) -> String {
        let mut f = String::from("(|");
        for c in &self.classes {
            match self.filters.iter().find(|(k, _)| k.eq_ignore_ascii_case(c)) {
                Some((_, extra)) => f.push_str(&format!("(&(objectClass={c}){extra})")),
                None => f.push_str(&format!("(objectClass={c})")),
            }
        }
        f.push(')');
        f
    }

    /// Whether a changed object must be read whole to decide its scope (attribute filters
    /// and group membership are judged on the whole object).
    pub fn needs_reread(&self) -> bool {
        !self.filters.is_empty() || self.group.is_some()
    }

    /// Whether a DN lies in the included, not excluded subtrees (and, with a filter group,
    /// is a direct member or the group itself).
    pub fn contains(&self, dn: &Dn) -> bool {
        if !dn.is_within(&self.base) {
            return false;
        }
        if !self.include.is_empty() && !self.include.iter().any(|i| dn.is_within(i)) {
            return false;
        }
        if self.exclude.iter().any(|x| dn.is_within(x)) {
            return false;
        }
        match &self.group {
            None => true,
            Some((g, members)) => g.norm() == dn.norm() || members.contains(dn.norm()),
        }
    }

    /// A fingerprint of the settings a delta position depends on: when they change, the
    /// next import must be full.
    pub fn fingerprint(&self) -> u64 {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(self.base.norm());
        for d in self.include.iter().chain([&self.base]).chain(&self.exclude) {
            h.update([0]);
            h.update(d.norm());
        }
        for c in &self.classes {
            h.update([1]);
            h.update(c.to_ascii_lowercase());
        }
        for (c, f) in &self.filters {
            h.update([2]);
            h.update(c.to_ascii_lowercase());
            h.update(f);
        }
        if let Some((g, _)) = &self.group {
            h.update([3]);
            h.update(g.norm());
        }
        let d = h.finalize();
        let mut b = [0u8; 8];
        b.copy_from_slice(&d[..8]);
        u64::from_le_bytes(b)
    }
}

/// An octet string as an LDAP filter value (`\xx` for every byte).
pub fn escape_bytes(b: &[u8]) -> String {
    b.iter().map(|x| format!("\\{x:02x}")).collect()
}
