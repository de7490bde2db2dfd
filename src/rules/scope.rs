//! Scope filters as Azure-style clause lists: attribute, operator, value; all must hold.

use crate::model::{AttrName, Attributes, Value};

/// A scope operator (the Azure AD Connect names, in lower camel case in config).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScopeOp {
    /// Some value equals (case-insensitive).
    Equal,
    /// No value equals.
    NotEqual,
    /// Some value starts with.
    StartsWith,
    /// No value starts with.
    NotStartsWith,
    /// Some value ends with.
    EndsWith,
    /// No value ends with.
    NotEndsWith,
    /// Some value contains.
    Contains,
    /// No value contains.
    NotContains,
    /// The attribute has no value.
    IsNull,
    /// The attribute has a value.
    IsNotNull,
    /// The integer value has all bits of the mask set.
    IsBitSet,
    /// The integer value lacks a bit of the mask.
    IsNotBitSet,
}

impl ScopeOp {
    /// Parses the config spelling.
    pub fn parse(s: &str) -> Option<ScopeOp> {
        Some(match s {
            "equal" => ScopeOp::Equal,
            "notEqual" => ScopeOp::NotEqual,
            "startsWith" => ScopeOp::StartsWith,
            "notStartsWith" => ScopeOp::NotStartsWith,
            "endsWith" => ScopeOp::EndsWith,
            "notEndsWith" => ScopeOp::NotEndsWith,
            "contains" => ScopeOp::Contains,
            "notContains" => ScopeOp::NotContains,
            "isNull" => ScopeOp::IsNull,
            "isNotNull" => ScopeOp::IsNotNull,
            "isBitSet" => ScopeOp::IsBitSet,
            "isNotBitSet" => ScopeOp::IsNotBitSet,
            _ => return None,
        })
    }

    /// Every config spelling, for error hints.
    pub const NAMES: &'static str = "equal, notEqual, startsWith, notStartsWith, endsWith, \
        notEndsWith, contains, notContains, isNull, isNotNull, isBitSet, isNotBitSet";

    /// Whether the operator takes no value.
    pub fn is_unary(self) -> bool {
        matches!(self, ScopeOp::IsNull | ScopeOp::IsNotNull)
    }
}

/// One clause. The attribute `dn` reads the object's DN.
#[derive(Clone, Debug, PartialEq)]
pub struct ScopeClause {
    /// The attribute tested.
    pub attr: AttrName,
    /// The operator.
    pub op: ScopeOp,
    /// The comparison value (empty for unary operators).
    pub value: String,
}

impl ScopeClause {
    /// Evaluates the clause against an object's attributes and DN.
    pub fn holds(&self, attrs: &Attributes, dn: &str) -> bool {
        let texts: Vec<String> = if self.attr.is("dn") {
            vec![dn.to_string()]
        } else {
            attrs
                .get(self.attr.key())
                .map(|vs| vs.iter().map(Value::to_text).collect())
                .unwrap_or_default()
        };
        let want = self.value.to_lowercase();
        let any = |f: &dyn Fn(&str) -> bool| texts.iter().any(|t| f(&t.to_lowercase()));
        match self.op {
            ScopeOp::Equal => any(&|t| t == want),
            ScopeOp::NotEqual => !any(&|t| t == want),
            ScopeOp::StartsWith => any(&|t| t.starts_with(&want)),
            ScopeOp::NotStartsWith => !any(&|t| t.starts_with(&want)),
            ScopeOp::EndsWith => any(&|t| t.ends_with(&want)),
            ScopeOp::NotEndsWith => !any(&|t| t.ends_with(&want)),
            ScopeOp::Contains => any(&|t| t.contains(&want)),
            ScopeOp::NotContains => !any(&|t| t.contains(&want)),
            ScopeOp::IsNull => texts.is_empty(),
            ScopeOp::IsNotNull => !texts.is_empty(),
            ScopeOp::IsBitSet | ScopeOp::IsNotBitSet => {
                let mask: i64 = self.value.trim().parse().unwrap_or(0);
                let set = texts
                    .iter()
                    .filter_map(|t| t.trim().parse::<i64>().ok())
                    .any(|v| v & mask == mask);
                set == (self.op == ScopeOp::IsBitSet)
            }
        }
    }
}

/// Whether all clauses hold.
pub fn in_scope(clauses: &[ScopeClause], attrs: &Attributes, dn: &str) -> bool {
    clauses.iter().all(|c| c.holds(attrs, dn))
}
