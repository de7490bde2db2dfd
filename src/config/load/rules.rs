//! Checks the `[[inbound]]` and `[[outbound]]` rules: names, scope, joins, flows,
//! expressions, DN templates and deprovisioning.

use super::*;

/// Checks a rule name and that no earlier rule of the same direction uses it.
pub(super) fn rule_name(
    ctx: &mut Ctx<'_>,
    v: &Spanned<String>,
    key: &str,
    section: &str,
    index: usize,
    names: &mut HashMap<String, usize>,
) -> Option<String> {
    let name = ctx.non_empty(v, key, "a rule name")?;
    if let Some(first) = names.get(&name) {
        ctx.report(
            v.span().start,
            key,
            format!("rule name {name:?} is already used by {section}[{first}]"),
        );
        return None;
    }
    names.insert(name.clone(), index);
    Some(name)
}

pub(super) fn object_type(ctx: &mut Ctx<'_>, v: &Spanned<String>, key: &str) -> Option<ObjectType> {
    ctx.choice(v, key, &ObjectType::ALL.map(|t| (t.as_str(), t)))
}

pub(super) fn check_inbound(
    ctx: &mut Ctx<'_>,
    table: &Spanned<RawInbound>,
    i: usize,
    known: &[KnownConnector],
    names: &mut HashMap<String, usize>,
) -> Option<InboundRule> {
    let span = table.span();
    let r = table.get_ref();
    let p = format!("inbound[{i}]");
    let key = |field: &str| format!("{p}.{field}");

    let name = ctx
        .required(&r.name, &span, &key("name"), "a rule name")
        .and_then(|v| rule_name(ctx, v, &key("name"), "inbound", i, names));
    // Inbound rules may read ldif targets too: a target is read back after export.
    let connector = ctx
        .required(&r.connector, &span, &key("connector"), "a connector name")
        .and_then(|v| connector_ref(ctx, v, &key("connector"), known))
        .map(|(n, _)| n);
    let object_class = ctx
        .required(
            &r.object_class,
            &span,
            &key("object_class"),
            "an object class like \"user\"",
        )
        .and_then(|v| ctx.non_empty(v, &key("object_class"), "an object class"));
    let object_type = ctx
        .required(
            &r.object_type,
            &span,
            &key("object_type"),
            "person, group, contact or device",
        )
        .and_then(|v| object_type(ctx, v, &key("object_type")));
    let precedence = ctx
        .required(
            &r.precedence,
            &span,
            &key("precedence"),
            "an integer (lower wins)",
        )
        .and_then(|v| match u32::try_from(*v.get_ref()) {
            Ok(n) => Some(n),
            Err(_) => {
                ctx.report(
                    v.span().start,
                    &key("precedence"),
                    format!(
                        "expected an integer from 0 to {}, found {}",
                        u32::MAX,
                        v.get_ref()
                    ),
                );
                None
            }
        });
    let project = r.project.as_ref().is_none_or(|v| *v.get_ref());
    let scope = check_scope(ctx, &r.scope, &p);
    let scope_expression = r
        .scope_expression
        .as_ref()
        .map(|v| compile_expression(ctx, v, &key("scope_expression"), true));
    let join = check_join(ctx, &r.join, &p);
    let flows = check_flows(ctx, &r.flows, &p, true);
    Some(InboundRule {
        name: name?,
        connector: connector?,
        object_class: object_class?,
        scope: scope?,
        scope_expression: scope_expression.map(|e| e.ok_or(())).transpose().ok()?,
        object_type: object_type?,
        join: join?,
        project,
        precedence: precedence?,
        flows: flows?,
    })
}

#[derive(Clone, Copy)]
pub(super) enum DeprovisionKind {
    Delete,
    Keep,
    Disable,
}

pub(super) fn check_outbound(
    ctx: &mut Ctx<'_>,
    table: &Spanned<RawOutbound>,
    i: usize,
    known: &[KnownConnector],
    names: &mut HashMap<String, usize>,
) -> Option<OutboundRule> {
    let span = table.span();
    let r = table.get_ref();
    let p = format!("outbound[{i}]");
    let key = |field: &str| format!("{p}.{field}");

    let name = ctx
        .required(&r.name, &span, &key("name"), "a rule name")
        .and_then(|v| rule_name(ctx, v, &key("name"), "outbound", i, names));
    let connector = ctx
        .required(&r.connector, &span, &key("connector"), "a connector name")
        .and_then(|v| {
            let (n, k) = connector_ref(ctx, v, &key("connector"), known)?;
            if k.ldif_mode == Some(LdifMode::Source) {
                ctx.report(
                    v.span().start,
                    &key("connector"),
                    format!(
                        "connector {:?} is an ldif source, and an ldif source cannot be exported \
                         to; name a connector with mode = \"target\"",
                        v.get_ref()
                    ),
                );
                return None;
            }
            Some(n)
        });
    let object_type = ctx
        .required(
            &r.object_type,
            &span,
            &key("object_type"),
            "person, group, contact or device",
        )
        .and_then(|v| object_type(ctx, v, &key("object_type")));
    let object_class = ctx
        .required(
            &r.object_class,
            &span,
            &key("object_class"),
            "an object class like \"inetOrgPerson\"",
        )
        .and_then(|v| ctx.non_empty(v, &key("object_class"), "an object class"));
    let provision = r.provision.as_ref().is_none_or(|v| *v.get_ref());
    let dn_template = match (&r.dn, &r.dn_expression) {
        (Some(_), Some(e)) => {
            ctx.report(
                e.span().start,
                &key("dn_expression"),
                "give either dn (a template) or dn_expression, not both",
            );
            None
        }
        (None, Some(e)) => {
            compile_expression(ctx, e, &key("dn_expression"), false).map(DnSource::Expression)
        }
        _ => ctx
            .required(
                &r.dn,
                &span,
                &key("dn"),
                "a DN template like \"cn={cn},ou=People,dc=example,dc=com\" (or dn_expression)",
            )
            .and_then(|v| match DnTemplate::parse(v.get_ref()) {
                Ok(t) => Some(DnSource::Template(t)),
                Err(e) => {
                    ctx.report(v.span().start, &key("dn"), e.to_string());
                    None
                }
            }),
    };
    let deprovision = check_deprovision(ctx, r, &span, &p);
    let scope = check_scope(ctx, &r.scope, &p);
    let scope_expression = r
        .scope_expression
        .as_ref()
        .map(|v| compile_expression(ctx, v, &key("scope_expression"), true));
    let flows = check_flows(ctx, &r.flows, &p, false);
    Some(OutboundRule {
        name: name?,
        connector: connector?,
        object_type: object_type?,
        scope: scope?,
        scope_expression: scope_expression.map(|e| e.ok_or(())).transpose().ok()?,
        provision,
        object_class: object_class?,
        dn_template: dn_template?,
        flows: flows?,
        deprovision: deprovision?,
    })
}

pub(super) fn check_deprovision(
    ctx: &mut Ctx<'_>,
    r: &RawOutbound,
    span: &Range<usize>,
    p: &str,
) -> Option<Deprovision> {
    let kind = match &r.deprovision {
        None => Some(DeprovisionKind::Delete),
        Some(v) => ctx.choice(
            v,
            &format!("{p}.deprovision"),
            &[
                ("delete", DeprovisionKind::Delete),
                ("keep", DeprovisionKind::Keep),
                ("disable", DeprovisionKind::Disable),
            ],
        ),
    };
    let attr_key = format!("{p}.disable_attribute");
    let value_key = format!("{p}.disable_value");
    match kind? {
        DeprovisionKind::Disable => {
            let attr = ctx
                .required(
                    &r.disable_attribute,
                    span,
                    &attr_key,
                    "the attribute that marks a target object disabled (needed because \
                     deprovision = \"disable\")",
                )
                .and_then(|v| ctx.attr(v, &attr_key));
            let value = ctx
                .required(
                    &r.disable_value,
                    span,
                    &value_key,
                    "the value that means disabled (needed because deprovision = \"disable\")",
                )
                .map(|v| v.get_ref().to_value());
            Some(Deprovision::Disable {
                attr: attr?,
                value: value?,
            })
        }
        other => {
            let shown = match other {
                DeprovisionKind::Keep => "keep",
                _ => "delete",
            };
            let spans = [
                (r.disable_attribute.as_ref().map(Spanned::span), attr_key),
                (r.disable_value.as_ref().map(Spanned::span), value_key),
            ];
            let mut ok = true;
            for (s, k) in spans {
                if let Some(s) = s {
                    ok = false;
                    ctx.report(
                        s.start,
                        &k,
                        format!(
                            "only used with deprovision = \"disable\", but deprovision is \
                             {shown:?}; remove it or set deprovision = \"disable\""
                        ),
                    );
                }
            }
            if !ok {
                return None;
            }
            Some(match other {
                DeprovisionKind::Keep => Deprovision::Keep,
                _ => Deprovision::Delete,
            })
        }
    }
}

pub(super) fn check_scope(
    ctx: &mut Ctx<'_>,
    raw: &[Spanned<RawClause>],
    p: &str,
) -> Option<Vec<ScopeClause>> {
    let clauses: Vec<Option<ScopeClause>> = raw
        .iter()
        .enumerate()
        .map(|(i, table)| {
            let span = table.span();
            let c = table.get_ref();
            let k = format!("{p}.scope[{i}]");
            let key = |field: &str| format!("{k}.{field}");
            let attr = ctx
                .required(&c.attribute, &span, &key("attribute"), "an attribute name")
                .and_then(|v| ctx.attr(v, &key("attribute")));
            let op = ctx
                .required(&c.operator, &span, &key("operator"), ScopeOp::NAMES)
                .and_then(|v| {
                    let op = ScopeOp::parse(v.get_ref());
                    if op.is_none() {
                        let names: Vec<&str> = ScopeOp::NAMES.split(',').map(str::trim).collect();
                        ctx.report(
                            v.span().start,
                            &key("operator"),
                            expected_one_of(&names, v.get_ref()),
                        );
                    }
                    op.map(|op| (op, v.get_ref().as_str()))
                });
            let value = match (op, &c.value) {
                (Some((op, name)), Some(v)) if op.is_unary() => {
                    ctx.report(
                        v.span().start,
                        &key("value"),
                        format!("operator {name:?} takes no value; remove \"value\""),
                    );
                    None
                }
                (Some((op, name)), None) if !op.is_unary() => {
                    ctx.report(
                        span.start,
                        &key("value"),
                        format!("missing required key; operator {name:?} needs a value"),
                    );
                    None
                }
                (Some((op, name)), Some(v)) => {
                    let text = v.get_ref().to_value().to_text();
                    let is_mask = matches!(op, ScopeOp::IsBitSet | ScopeOp::IsNotBitSet);
                    if is_mask && text.trim().parse::<i64>().is_err() {
                        ctx.report(
                            v.span().start,
                            &key("value"),
                            format!("operator {name:?} needs an integer bit mask, found {text:?}"),
                        );
                        None
                    } else {
                        Some(text)
                    }
                }
                (Some(_), None) => Some(String::new()),
                (None, _) => None,
            };
            Some(ScopeClause {
                attr: attr?,
                op: op?.0,
                value: value?,
            })
        })
        .collect();
    clauses.into_iter().collect()
}

pub(super) fn check_join(
    ctx: &mut Ctx<'_>,
    raw: &[Spanned<Vec<Spanned<RawCondition>>>],
    p: &str,
) -> Option<Vec<JoinRule>> {
    let rules: Vec<Option<JoinRule>> = raw
        .iter()
        .enumerate()
        .map(|(i, rule)| {
            let k = format!("{p}.join[{i}]");
            if rule.get_ref().is_empty() {
                ctx.report(
                    rule.span().start,
                    &k,
                    "a join rule needs at least one condition, e.g. \
                     [ { cs = \"employeeID\", mv = \"employeeID\" } ]",
                );
                return None;
            }
            let conditions: Vec<Option<JoinCondition>> = rule
                .get_ref()
                .iter()
                .enumerate()
                .map(|(j, table)| {
                    let span = table.span();
                    let c = table.get_ref();
                    let cs_key = format!("{k}[{j}].cs");
                    let mv_key = format!("{k}[{j}].mv");
                    let cs = ctx
                        .required(&c.cs, &span, &cs_key, "the connector-space attribute")
                        .and_then(|v| ctx.attr(v, &cs_key));
                    let mv = ctx
                        .required(&c.mv, &span, &mv_key, "the metaverse attribute")
                        .and_then(|v| ctx.attr(v, &mv_key));
                    Some(JoinCondition { cs: cs?, mv: mv? })
                })
                .collect();
            Some(JoinRule {
                conditions: conditions.into_iter().collect::<Option<_>>()?,
            })
        })
        .collect();
    rules.into_iter().collect()
}

/// Compiles an expression; its errors point into the TOML string (offset + the quote).
pub(super) fn compile_expression(
    ctx: &mut Ctx<'_>,
    v: &Spanned<String>,
    key: &str,
    boolean: bool,
) -> Option<Expr> {
    match Expr::compile(v.get_ref(), &CompileContext::default()) {
        Ok(e) if boolean && !e.is_boolean() => {
            ctx.report(
                v.span().start,
                key,
                format!(
                    "a scope expression must be true or false, but {:?} is not a comparison or \
                     test (hint: compare it, e.g. [department] = \"Sales\")",
                    crate::rules::expr::excerpt(v.get_ref(), 0)
                ),
            );
            None
        }
        Ok(e) => Some(e),
        Err(e) => {
            let hint = e.hint.map(|h| format!(" (hint: {h})")).unwrap_or_default();
            ctx.report(
                v.span().start + 1 + e.offset,
                key,
                format!(
                    "in expression {:?}: {}{hint}",
                    crate::rules::expr::excerpt(v.get_ref(), e.offset),
                    e.message
                ),
            );
            None
        }
    }
}

pub(super) fn check_flows(
    ctx: &mut Ctx<'_>,
    raw: &[Spanned<RawFlow>],
    p: &str,
    inbound: bool,
) -> Option<Vec<Flow>> {
    const ONE_OF: &str = "\"source\", \"constant\", \"expression\" or \"dn\"";
    let one_of = if inbound {
        ONE_OF
    } else {
        "\"source\", \"constant\" or \"expression\""
    };
    let mut targets: HashMap<String, usize> = HashMap::new();
    let flows: Vec<Option<Flow>> = raw
        .iter()
        .enumerate()
        .map(|(i, table)| {
            let span = table.span();
            let f = table.get_ref();
            let k = format!("{p}.flows[{i}]");
            let key = |field: &str| format!("{k}.{field}");

            let target = ctx
                .required(&f.target, &span, &key("target"), "the attribute written")
                .and_then(|v| {
                    let a = ctx.attr(v, &key("target"))?;
                    if let Some(first) = targets.get(a.key()) {
                        ctx.report(
                            v.span().start,
                            &key("target"),
                            format!(
                                "{p}.flows[{first}] already writes {:?}; a rule has one flow per \
                                 target attribute",
                                a.as_str()
                            ),
                        );
                        return None;
                    }
                    targets.insert(a.key().to_string(), i);
                    Some(a)
                });

            let mut dn = f.dn.as_ref();
            if let (false, Some(v)) = (inbound, dn) {
                ctx.report(
                    v.span().start,
                    &key("dn"),
                    "\"dn\" flows read a connector-space DN and are inbound-only; use \"source\" \
                     or \"constant\"",
                );
                dn = None;
            }
            // Sorted by position so that "found both" points at the one written second.
            let mut given: Vec<(&str, usize)> = [
                ("source", f.source.as_ref().map(|v| v.span().start)),
                ("constant", f.constant.as_ref().map(|v| v.span().start)),
                ("dn", dn.map(|v| v.span().start)),
                ("expression", f.expression.as_ref().map(|v| v.span().start)),
            ]
            .into_iter()
            .filter_map(|(n, s)| s.map(|s| (n, s)))
            .collect();
            given.sort_by_key(|(_, s)| *s);
            let source = match given.as_slice() {
                [] => {
                    if inbound || f.dn.is_none() {
                        ctx.report(
                            span.start,
                            &k,
                            format!("a flow needs one of {one_of}, found none"),
                        );
                    }
                    None
                }
                [(first, _), (second, at), ..] => {
                    ctx.report(
                        *at,
                        &key(second),
                        format!(
                            "a flow takes exactly one of {one_of}, found both {first:?} and \
                             {second:?}"
                        ),
                    );
                    None
                }
                [_] => {
                    if let Some(v) = &f.source {
                        ctx.attr(v, &key("source")).map(FlowSource::Attribute)
                    } else if let Some(v) = &f.constant {
                        Some(FlowSource::Constant(v.get_ref().to_value()))
                    } else if let Some(v) = &f.expression {
                        compile_expression(ctx, v, &key("expression"), false)
                            .map(FlowSource::Expression)
                    } else if let Some(v) = dn {
                        ctx.choice(
                            v,
                            &key("dn"),
                            &[
                                ("full", DnPart::Full),
                                ("parent", DnPart::Parent),
                                ("container", DnPart::Container),
                            ],
                        )
                        .map(FlowSource::Dn)
                    } else {
                        None
                    }
                }
            };
            let apply_once = match &f.apply_once {
                Some(v) if inbound && *v.get_ref() => {
                    ctx.report(
                        v.span().start,
                        &key("apply_once"),
                        "apply_once is for outbound flows (written when the target object is \
                         created); an inbound flow always applies",
                    );
                    false
                }
                Some(v) => *v.get_ref(),
                None => false,
            };
            Some(Flow {
                target: target?,
                source: source?,
                apply_once,
            })
        })
        .collect();
    flows.into_iter().collect()
}

// ---------------------------------------------------------------------------------------------
// Secrets.
