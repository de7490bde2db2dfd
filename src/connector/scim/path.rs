//! Connector-space attribute names of a SCIM connector: SCIM attribute paths spelled the way
//! Microsoft Entra ID's SCIM mappings spell them (`name.givenName`,
//! `emails[type eq "work"].value`, `urn:…:enterprise:2.0:User:department`).

/// The enterprise User extension (RFC 7643 §4.3).
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// The core User schema.
pub const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The core Group schema.
pub const CORE_GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// One attribute of a resource as the connector space names it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttrPath {
    /// The schema URN for extension attributes; None for the resource's core schema.
    pub urn: Option<String>,
    /// The attribute (`userName`, `emails`, `department`).
    pub attr: String,
    /// For a multi-valued complex attribute, the `type` of the entry (`work`).
    pub typed: Option<String>,
    /// The sub-attribute (`givenName`, `value`, `streetAddress`).
    pub sub: Option<String>,
}

impl AttrPath {
    /// Parses a connector-space attribute name; None when it is not a SCIM path.
    pub fn parse(name: &str) -> Option<AttrPath> {
        let (urn, rest) = split_urn(name);
        let (attr, typed, sub) = match rest.find('[') {
            Some(open) => {
                let attr = &rest[..open];
                let close = rest[open..].find(']')? + open;
                let filter = rest[open + 1..close].trim();
                let ty = parse_type_filter(filter)?;
                let tail = &rest[close + 1..];
                let sub = match tail.strip_prefix('.') {
                    Some(s) if !s.is_empty() => s.to_string(),
                    Some(_) => return None,
                    None if tail.is_empty() => "value".to_string(),
                    None => return None,
                };
                (attr.to_string(), Some(ty), Some(sub))
            }
            None => match rest.split_once('.') {
                Some((a, s)) if !a.is_empty() && !s.is_empty() && !s.contains('.') => {
                    (a.to_string(), None, Some(s.to_string()))
                }
                Some(_) => return None,
                None => (rest.to_string(), None, None),
            },
        };
        let valid = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$')
        };
        if !valid(&attr) || !sub.as_deref().is_none_or(valid) {
            return None;
        }
        Some(AttrPath {
            urn,
            attr,
            typed,
            sub,
        })
    }

    /// The PATCH `path` (RFC 7644 §3.5.2) that addresses this attribute.
    pub fn patch_path(&self) -> String {
        let mut out = String::new();
        if let Some(urn) = &self.urn {
            out.push_str(urn);
            out.push(':');
        }
        out.push_str(&self.attr);
        if let Some(t) = &self.typed {
            out.push_str(&format!("[type eq {}]", json_string(t)));
        }
        if let Some(s) = &self.sub {
            out.push('.');
            out.push_str(s);
        }
        out
    }

    /// The connector-space name (the same spelling [`AttrPath::parse`] reads).
    pub fn name(&self) -> String {
        self.patch_path()
    }

    /// The PATCH path of the whole typed entry (`emails[type eq "work"]`).
    pub fn entry_path(&self) -> Option<String> {
        let t = self.typed.as_ref()?;
        let mut out = String::new();
        if let Some(urn) = &self.urn {
            out.push_str(urn);
            out.push(':');
        }
        out.push_str(&format!("{}[type eq {}]", self.attr, json_string(t)));
        Some(out)
    }

    /// Whether this names `attr` of the core schema without sub-attribute or filter.
    pub fn is_plain(&self, attr: &str) -> bool {
        self.urn.is_none()
            && self.typed.is_none()
            && self.sub.is_none()
            && self.attr.eq_ignore_ascii_case(attr)
    }
}

/// Splits `urn:…:User:department` into the URN and `department`.
fn split_urn(name: &str) -> (Option<String>, &str) {
    if !name.to_ascii_lowercase().starts_with("urn:") {
        return (None, name);
    }
    // The attribute follows the last ':' before any '[' (URNs hold dots, as in "2.0").
    let stop = name.find('[').unwrap_or(name.len());
    match name[..stop].rfind(':') {
        Some(i) if i > 4 => (Some(name[..i].to_string()), &name[i + 1..]),
        _ => (None, name),
    }
}

/// `type eq "work"` → `work`.
fn parse_type_filter(filter: &str) -> Option<String> {
    let mut words = filter.splitn(3, char::is_whitespace);
    let (attr, op, value) = (words.next()?, words.next()?, words.next()?.trim());
    if !attr.eq_ignore_ascii_case("type") || !op.eq_ignore_ascii_case("eq") {
        return None;
    }
    serde_json::from_str::<String>(value).ok()
}

/// A JSON string literal (filters use JSON string syntax, RFC 7644 §3.4.2.2).
pub fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn p(s: &str) -> AttrPath {
        AttrPath::parse(s).unwrap_or_else(|| panic!("{s} should parse"))
    }

    #[test]
    fn paths_parse_and_print_back() {
        for s in [
            "userName",
            "name.givenName",
            "emails[type eq \"work\"].value",
            "addresses[type eq \"work\"].streetAddress",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
            "urn:ietf:params:scim:schemas:extension:contoso:2.0:User:costCentre",
            "members",
        ] {
            assert_eq!(p(s).name(), s);
        }
        let e = p("emails[type eq \"work\"]");
        assert_eq!(e.sub.as_deref(), Some("value"));
        assert_eq!(e.entry_path().as_deref(), Some("emails[type eq \"work\"]"));
        let d = p("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department");
        assert_eq!(d.urn.as_deref(), Some(ENTERPRISE));
        assert_eq!(d.attr, "department");
        assert!(p("userName").is_plain("USERNAME"));
    }

    #[test]
    fn odd_names_are_refused() {
        for s in [
            "",
            "emails[type ne \"work\"].value",
            "emails[type eq work].value",
            "emails[type eq \"work\"",
            "a.b.c",
            "name.",
            "user name",
        ] {
            assert!(AttrPath::parse(s).is_none(), "{s:?} should not parse");
        }
    }
}
