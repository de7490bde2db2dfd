//! The README's tables of the out-of-box rule set, generated from the same rows and scope
//! lists the rules are built from (a unit test compares them with README.md).

use super::table::{self, OutRow};
use super::{CLASSES, Kinds, compile, inbound_rows, scope_clauses, scope_expression};

/// The README's tables of the rule set, generated from [`table`].
pub fn readme_tables() -> String {
    use std::fmt::Write as _;
    let esc = |s: &str| s.replace('|', "\\|");
    let mut s = String::new();
    s.push_str("#### Scope: an object is synced only when all of these hold\n\n");
    s.push_str("| AD object | conditions |\n|---|---|\n");
    for spec in CLASSES.iter().filter(|c| c.class != "inetOrgPerson") {
        let mut conds: Vec<String> = scope_clauses(spec.kinds)
            .iter()
            .map(|c| {
                // The config spelling: notEqual, notStartsWith.
                let op = format!("{:?}", c.op);
                let op = op[..1].to_lowercase() + &op[1..];
                format!("`{} {op} {}`", c.attr, c.value)
            })
            .collect();
        conds.extend(scope_expression(spec.kinds).map(|e| format!("`{}`", esc(e))));
        let class = if spec.class == "user" {
            "user, inetOrgPerson"
        } else {
            spec.class
        };
        let _ = writeln!(s, "| {class} | {} |", conds.join("<br>"));
    }
    s.push_str("\n#### Inbound: Active Directory → metaverse\n\n");
    s.push_str("| AD object | source attribute | expression | metaverse attribute |\n");
    s.push_str("|---|---|---|---|\n");
    let mut seen: Vec<(String, String)> = Vec::new();
    let all = [Kinds::USER, Kinds::CONTACT, Kinds::GROUP, Kinds::DEVICE];
    for k in all {
        for (mv, expr) in inbound_rows(k, Some("<domain>")) {
            if seen.contains(&(mv.clone(), expr.clone())) {
                continue;
            }
            seen.push((mv.clone(), expr.clone()));
            // Which kinds share this exact flow.
            let kinds: Vec<&str> = all
                .iter()
                .filter(|k2| {
                    inbound_rows(**k2, Some("<domain>"))
                        .iter()
                        .any(|(m, e)| m == &mv && e == &expr)
                })
                .map(|k2| match *k2 {
                    Kinds::USER => "user",
                    Kinds::CONTACT => "contact",
                    Kinds::GROUP => "group",
                    _ => "computer",
                })
                .collect();
            let sources = source_attributes(&expr);
            let _ = writeln!(
                s,
                "| {} | {} | `{}` | {mv} |",
                kinds.join(", "),
                sources.join(", "),
                esc(&expr)
            );
        }
    }
    let outbound = |s: &mut String, title: &str, parts: &[(&str, &[OutRow])]| {
        let _ = writeln!(s, "\n#### {title}\n");
        s.push_str("| object | metaverse attribute | expression | target attribute |\n");
        s.push_str("|---|---|---|---|\n");
        for (what, rows) in parts {
            for r in rows.iter() {
                let _ = writeln!(
                    s,
                    "| {what} | {} | `{}` | `{}` |",
                    source_attributes(r.expr).join(", "),
                    esc(r.expr),
                    esc(r.target)
                );
            }
        }
    };
    outbound(
        &mut s,
        "Outbound: metaverse → LDAP (`type = \"ldap\"`)",
        &[
            ("user", table::LDAP_USER),
            ("user, contact", table::LDAP_PERSON),
            ("group", table::LDAP_GROUP),
            ("device", table::LDAP_DEVICE),
        ],
    );
    outbound(
        &mut s,
        "Outbound: metaverse → SCIM (`type = \"scim\"`; `{ent}` = the enterprise extension, \
         `{urn}` = the connector's `extension_urn`; rows with `{urn}` and directory extensions \
         are sent only when it is set)",
        &[("user", table::SCIM_USER), ("group", table::SCIM_GROUP)],
    );
    s
}

/// The attributes an expression reads, for the README.
fn source_attributes(expr: &str) -> Vec<String> {
    match compile(expr, "README") {
        Ok(e) => e
            .attributes()
            .iter()
            .map(|a| a.as_str().to_string())
            .collect(),
        Err(_) => Vec::new(),
    }
}
