//! DN templates: `cn={displayName},{container:dn},ou=People,dc=example,dc=com`.
//!
//! `{attr}` inserts an MV attribute's first value escaped as an RDN value; `{attr:dn}` inserts
//! it verbatim as a DN fragment (several RDNs, or none: an empty fragment drops out with its
//! comma). Templates are parsed at config load; rendering fails only on a missing value.

use crate::model::{AttrName, Dn, dn::escape_value};

/// Why a template could not be parsed or rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// Bad template syntax.
    #[error("DN template {template:?}: {reason}")]
    Syntax {
        /// The template text.
        template: String,
        /// What is wrong.
        reason: String,
    },
    /// A placeholder's attribute has no value on this object.
    #[error("DN template needs attribute {0}, which has no value")]
    Missing(String),
    /// The rendered text is not a valid DN.
    #[error("DN template rendered an invalid DN: {0}")]
    Invalid(String),
}

#[derive(Clone, Debug, PartialEq)]
enum Piece {
    Text(String),
    Escaped(AttrName),
}

#[derive(Clone, Debug, PartialEq)]
enum Component {
    Fragment(AttrName),
    Rdn(Vec<Piece>),
}

/// A parsed DN template.
#[derive(Clone, Debug, PartialEq)]
pub struct DnTemplate {
    text: String,
    components: Vec<Component>,
}

impl DnTemplate {
    /// Parses a template.
    pub fn parse(text: &str) -> Result<DnTemplate, TemplateError> {
        let syntax = |reason: &str| TemplateError::Syntax {
            template: text.to_string(),
            reason: reason.to_string(),
        };
        let mut components = Vec::new();
        for raw in split_unescaped(text, ',') {
            let part = raw.trim();
            if part.is_empty() {
                return Err(syntax("empty RDN (two commas in a row?)"));
            }
            if let Some(inner) = part.strip_prefix('{').and_then(|p| p.strip_suffix(":dn}")) {
                if !inner.contains(['{', '}']) {
                    components.push(Component::Fragment(AttrName::new(inner.trim())));
                    continue;
                }
            }
            let mut pieces = Vec::new();
            let mut rest = part;
            while let Some(open) = rest.find('{') {
                if open > 0 {
                    pieces.push(Piece::Text(rest[..open].to_string()));
                }
                let close = rest[open..]
                    .find('}')
                    .ok_or_else(|| syntax("'{' without a matching '}'"))?;
                let name = rest[open + 1..open + close].trim();
                if name.is_empty() || name.contains(':') {
                    return Err(syntax(
                        "a placeholder is {attribute}, or {attribute:dn} as a whole RDN list",
                    ));
                }
                pieces.push(Piece::Escaped(AttrName::new(name)));
                rest = &rest[open + close + 1..];
            }
            if rest.contains('}') {
                return Err(syntax("'}' without a matching '{'"));
            }
            if !rest.is_empty() {
                pieces.push(Piece::Text(rest.to_string()));
            }
            match pieces.first() {
                Some(Piece::Text(t)) if t.contains('=') => {}
                _ => return Err(syntax("each RDN must start with 'type=' (e.g. cn={cn})")),
            }
            components.push(Component::Rdn(pieces));
        }
        if components.is_empty() {
            return Err(syntax("template is empty"));
        }
        Ok(DnTemplate {
            text: text.to_string(),
            components,
        })
    }

    /// The template as configured.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The attributes the template reads.
    pub fn attributes(&self) -> Vec<&AttrName> {
        self.components
            .iter()
            .flat_map(|c| match c {
                Component::Fragment(a) => vec![a],
                Component::Rdn(pieces) => pieces
                    .iter()
                    .filter_map(|p| match p {
                        Piece::Escaped(a) => Some(a),
                        Piece::Text(_) => None,
                    })
                    .collect(),
            })
            .collect()
    }

    /// Renders the DN; `value` gives an attribute's first value as text.
    pub fn render(&self, value: &dyn Fn(&AttrName) -> Option<String>) -> Result<Dn, TemplateError> {
        let mut parts = Vec::with_capacity(self.components.len());
        for c in &self.components {
            match c {
                Component::Fragment(a) => {
                    // A fragment attribute that is absent means "no container", as an empty one.
                    let v = value(a).unwrap_or_default();
                    if !v.trim().is_empty() {
                        parts.push(v.trim().to_string());
                    }
                }
                Component::Rdn(pieces) => {
                    let mut s = String::new();
                    for p in pieces {
                        match p {
                            Piece::Text(t) => s.push_str(t),
                            Piece::Escaped(a) => {
                                let v = value(a)
                                    .filter(|v| !v.is_empty())
                                    .ok_or_else(|| TemplateError::Missing(a.to_string()))?;
                                s.push_str(&escape_value(&v));
                            }
                        }
                    }
                    parts.push(s);
                }
            }
        }
        let text = parts.join(",");
        Dn::parse(&text).map_err(|e| TemplateError::Invalid(e.to_string()))
    }
}

fn split_unescaped(text: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    let mut depth = 0;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '{' => depth += 1,
            '}' => depth -= 1,
            c if c == sep && depth == 0 => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(t: &str, vals: &[(&str, &str)]) -> Result<String, TemplateError> {
        let t = DnTemplate::parse(t)?;
        t.render(&|a| {
            vals.iter()
                .find(|(k, _)| a.is(k))
                .map(|(_, v)| v.to_string())
        })
        .map(|d| d.to_string())
    }

    #[test]
    fn renders_escaped_values_and_fragments() {
        assert_eq!(
            render(
                "cn={cn},{c:dn},dc=t",
                &[("cn", "Smith, Ann"), ("c", "ou=Sales,ou=P")]
            ),
            Ok("cn=Smith\\, Ann,ou=Sales,ou=P,dc=t".to_string())
        );
        assert_eq!(
            render("cn={cn},{c:dn},dc=t", &[("cn", "A"), ("c", "")]),
            Ok("cn=A,dc=t".to_string())
        );
        assert_eq!(
            render("cn={cn},dc=t", &[]),
            Err(TemplateError::Missing("cn".into()))
        );
    }

    #[test]
    fn bad_templates_are_refused() {
        for bad in ["", "cn={cn", "{cn}", "cn={a:b},dc=x", "cn=a,,dc=x"] {
            assert!(DnTemplate::parse(bad).is_err(), "{bad}");
        }
    }
}
