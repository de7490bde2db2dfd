//! Sync rules: what moves from connector spaces into the metaverse (inbound) and back out
//! (outbound), with scope filters, join rules, attribute flows and DN templates.
//!
//! Plain data and pure evaluation over model values; no store, no IO. Flows are direct
//! mappings, constants and DN parts for now; the expression language will plug in as another
//! [`FlowSource`].

pub mod defaults;
pub mod expr;
mod scope;
mod template;

use crate::model::{AttrName, Attributes, ConnectorName, Dn, ObjectType, Value};

pub use scope::{ScopeClause, ScopeOp, in_scope};
pub use template::{DnTemplate, TemplateError};

/// Where a flow's value comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum FlowSource {
    /// The values of one attribute of the source object (references are mapped across).
    Attribute(AttrName),
    /// A fixed value.
    Constant(Value),
    /// A part of the source object's DN (inbound only).
    Dn(DnPart),
    /// An expression in the Azure AD Connect function language.
    Expression(expr::Expr),
}

/// Which part of a CS object's DN an inbound flow reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DnPart {
    /// The whole DN.
    Full,
    /// The parent container's DN.
    Parent,
    /// The parent container relative to the connector's partition that holds the object
    /// (`ou=Sales,ou=People` under `dc=corp,dc=example`): how a target can mirror the OU tree.
    Container,
}

/// One attribute flow.
#[derive(Clone, Debug, PartialEq)]
pub struct Flow {
    /// The attribute written.
    pub target: AttrName,
    /// Where its value comes from.
    pub source: FlowSource,
    /// Outbound only: written when the target object is created, never afterwards (Azure
    /// AD Connect's "apply once"), for an initial password or a value the target owns.
    pub apply_once: bool,
}

/// One join rule: all its conditions must hold (CS attribute value = MV attribute value).
#[derive(Clone, Debug, PartialEq)]
pub struct JoinRule {
    /// (CS attribute, MV attribute) pairs.
    pub conditions: Vec<JoinCondition>,
}

/// CS attribute `cs` must equal MV attribute `mv` (case-insensitive text compare).
#[derive(Clone, Debug, PartialEq)]
pub struct JoinCondition {
    /// The connector-space attribute.
    pub cs: AttrName,
    /// The metaverse attribute.
    pub mv: AttrName,
}

/// CS → MV rule.
#[derive(Clone, Debug, PartialEq)]
pub struct InboundRule {
    /// Unique rule name, shown in lineage.
    pub name: String,
    /// The connector whose objects it reads.
    pub connector: ConnectorName,
    /// The CS object class it applies to (case-insensitive).
    pub object_class: String,
    /// Every clause must hold for the object to be in scope.
    pub scope: Vec<ScopeClause>,
    /// And this boolean expression, if given.
    pub scope_expression: Option<expr::Expr>,
    /// The MV type its objects join to or project as.
    pub object_type: ObjectType,
    /// Tried in order; the first that finds exactly one MV object joins.
    pub join: Vec<JoinRule>,
    /// Whether an unjoined object creates a new MV object.
    pub project: bool,
    /// Lower wins when several connectors supply one MV attribute.
    pub precedence: u32,
    /// Attribute flows into the metaverse.
    pub flows: Vec<Flow>,
}

/// How an outbound rule builds target DNs.
#[derive(Clone, Debug, PartialEq)]
pub enum DnSource {
    /// A template with `{attr}` placeholders.
    Template(DnTemplate),
    /// An expression whose (string) value is the DN, as in Azure AD Connect's rules.
    Expression(expr::Expr),
}

impl DnSource {
    /// Renders the DN for an MV object's attributes.
    pub fn render(&self, attrs: &Attributes, now_secs: i64) -> Result<Dn, String> {
        match self {
            DnSource::Template(t) => t
                .render(&|a: &AttrName| attrs.first_text(a.key()))
                .map_err(|e| e.to_string()),
            DnSource::Expression(e) => {
                let view = ObjectView { attrs, dn: None };
                match e.eval(&view, now_secs) {
                    expr::Outcome::Values(vs) => {
                        let text = vs
                            .first()
                            .map(Value::to_text)
                            .ok_or_else(|| format!("DN expression {:?} gave no value", e.text()))?;
                        Dn::parse(&text).map_err(|err| {
                            format!("DN expression {:?} gave an invalid DN: {err}", e.text())
                        })
                    }
                    expr::Outcome::Error(m) => Err(m),
                    _ => Err(format!("DN expression {:?} gave no value", e.text())),
                }
            }
        }
    }
}

/// What happens to a target object when its MV object leaves scope or is deleted.
#[derive(Clone, Debug, PartialEq)]
pub enum Deprovision {
    /// Delete it in the target directory.
    Delete,
    /// Set an attribute to mark it disabled and leave it, disconnected.
    Disable {
        /// The attribute to set.
        attr: AttrName,
        /// The value meaning "disabled".
        value: Value,
    },
    /// Leave it as it is, disconnected.
    Keep,
}

/// MV → CS rule.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboundRule {
    /// Unique rule name.
    pub name: String,
    /// The target connector.
    pub connector: ConnectorName,
    /// The MV type it applies to.
    pub object_type: ObjectType,
    /// Every clause must hold (on MV attributes) for the object to be in scope.
    pub scope: Vec<ScopeClause>,
    /// And this boolean expression, if given.
    pub scope_expression: Option<expr::Expr>,
    /// Whether an MV object in scope without a target object gets one created.
    pub provision: bool,
    /// The structural object class of created objects.
    pub object_class: String,
    /// Builds the target DN from MV attributes.
    pub dn_template: DnSource,
    /// Attribute flows to the target.
    pub flows: Vec<Flow>,
    /// What to do when the MV object goes away or leaves scope.
    pub deprovision: Deprovision,
}

/// All rules, in config order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuleSet {
    /// CS → MV rules.
    pub inbound: Vec<InboundRule>,
    /// MV → CS rules.
    pub outbound: Vec<OutboundRule>,
}

impl RuleSet {
    /// The inbound rules for one connector and object class, in precedence order.
    pub fn inbound_for<'a, 'b>(
        &'a self,
        connector: &'b ConnectorName,
        object_class: &'b str,
    ) -> impl Iterator<Item = &'a InboundRule> + use<'a, 'b> {
        self.inbound.iter().filter(move |r| {
            &r.connector == connector && r.object_class.eq_ignore_ascii_case(object_class)
        })
    }

    /// The MV attributes that join rules look up, so the store can index them.
    pub fn join_attributes(&self) -> Vec<AttrName> {
        let mut v: Vec<AttrName> = self
            .inbound
            .iter()
            .flat_map(|r| r.join.iter())
            .flat_map(|j| j.conditions.iter().map(|c| c.mv.clone()))
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

/// Reads a DN part for an inbound flow; `partitions` are the connector's naming contexts.
pub fn dn_part(dn: &Dn, part: DnPart, partitions: &[Dn]) -> Option<Value> {
    match part {
        DnPart::Full => Some(Value::str(dn.as_str())),
        DnPart::Parent => Some(Value::str(dn.parent().as_str())),
        DnPart::Container => {
            let parent = dn.parent();
            let best = partitions
                .iter()
                .filter(|p| parent.is_within(p))
                .max_by_key(|p| p.depth());
            match best {
                Some(p) => parent.relative_to(p).map(Value::str),
                None => Some(Value::str(parent.as_str())),
            }
        }
    }
}

/// An object's attributes and DN as an expression reads them.
pub struct ObjectView<'a> {
    /// The attributes.
    pub attrs: &'a Attributes,
    /// The DN (connector-space objects only).
    pub dn: Option<&'a Dn>,
}

impl expr::AttrSource for ObjectView<'_> {
    fn get(&self, name: &str) -> Option<&crate::model::ValueSet> {
        self.attrs.get(name)
    }
    fn dn(&self) -> Option<&Dn> {
        self.dn
    }
}

/// Whether an object is in a rule's scope: every clause holds and the expression, if any,
/// is true. An expression that fails to evaluate counts as out of scope.
pub fn rule_in_scope(
    clauses: &[ScopeClause],
    expression: Option<&expr::Expr>,
    attrs: &Attributes,
    dn: Option<&Dn>,
    now_secs: i64,
) -> bool {
    let dn_text = dn.map(Dn::as_str).unwrap_or("");
    in_scope(clauses, attrs, dn_text)
        && expression.is_none_or(|e| {
            e.eval_bool(&ObjectView { attrs, dn }, now_secs)
                .unwrap_or(false)
        })
}
