//! Config loading: valid files and every kind of error, each at its line and key.

// A failed unwrap is a failed test, with the location in the panic message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

const FULL: &str = r#"
state_file = "state.redb"
log_dir = "/var/log/bridgehead"

[schedule]
interval = "1h30m"

[[connector]]
name = "corp"
type = "ldif"
mode = "source"
path = "corp.ldif"
anchor = "objectGUID"
partitions = ["dc=corp,dc=example"]

[[connector]]
name = "target"
type = "ldif"
mode = "target"
path = "out/target.ldif"
anchor = "entryUUID"
reference_attributes = ["member"]
binary_attributes = []

[[inbound]]
name = "corp users"
connector = "corp"
object_class = "user"
object_type = "person"
precedence = 10
scope = [
  { attribute = "userAccountControl", operator = "isNotBitSet", value = "2" },
  { attribute = "mail", operator = "isNotNull" },
]
join = [ [ { cs = "employeeID", mv = "employeeID" } ], [ { cs = "mail", mv = "mail" } ] ]
flows = [
  { target = "displayName", source = "displayName" },
  { target = "company", constant = "Contoso" },
  { target = "container", dn = "container" },
  { target = "level", constant = 3 },
  { target = "active", constant = true },
]

[[inbound]]
name = "read back"
connector = "target"
object_class = "inetOrgPerson"
object_type = "person"
precedence = 4294967295
project = false

[[outbound]]
name = "target-users"
connector = "target"
object_type = "person"
object_class = "inetOrgPerson"
dn = "cn={cn},{container:dn},ou=People,dc=target,dc=example"
deprovision = "disable"
disable_attribute = "employeeType"
disable_value = "disabled"
scope = [ { attribute = "department", operator = "equal", value = "Sales" } ]
flows = [ { target = "cn", source = "cn" }, { target = "o", constant = "Fabrikam" } ]

[[outbound]]
name = "target-groups"
connector = "target"
object_type = "group"
object_class = "groupOfNames"
provision = false
dn = "cn={cn},ou=Groups,dc=target,dc=example"
deprovision = "keep"
"#;

/// Lines 1-15; text appended to it starts on line 16.
const BASE: &str = r#"state_file = "s.redb"

[[connector]]
name = "corp"
type = "ldif"
mode = "source"
path = "corp.ldif"
anchor = "objectGUID"

[[connector]]
name = "out"
type = "ldif"
mode = "target"
path = "out.ldif"
anchor = "entryUUID"
"#;

fn cfg_path() -> &'static Path {
    Path::new("/etc/bridgehead/bridgehead.toml")
}

/// (line, key, message) of every error.
fn errors(text: &str) -> Vec<(usize, String, String)> {
    fn flatten(e: ConfigError, out: &mut Vec<(usize, String, String)>) {
        match e {
            ConfigError::At {
                line, key, message, ..
            } => out.push((line, key, message)),
            ConfigError::Many(v) => v.into_iter().for_each(|e| flatten(e, out)),
            ConfigError::Io { .. } => panic!("unexpected io error"),
        }
    }
    let mut out = Vec::new();
    match Config::parse(text, cfg_path()) {
        Ok(_) => panic!("config was accepted:\n{text}"),
        Err(e) => flatten(e, &mut out),
    }
    out
}

/// The single error (not wrapped in Many).
fn one_error(text: &str) -> (usize, String, String) {
    let e = Config::parse(text, cfg_path()).expect_err("config was accepted");
    assert!(
        !matches!(e, ConfigError::Many(_)),
        "expected one error: {e}"
    );
    let all = errors(text);
    assert_eq!(all.len(), 1);
    all.into_iter().next().unwrap()
}

fn assert_error(text: &str, line: usize, key: &str, contains: &str) {
    let (l, k, m) = one_error(text);
    assert_eq!((l, k.as_str()), (line, key), "message: {m}");
    assert!(m.contains(contains), "{m:?} does not contain {contains:?}");
}

#[test]
fn full_config_parses() {
    let c = Config::parse(FULL, cfg_path()).unwrap();
    assert_eq!(c.path, cfg_path());
    assert_eq!(c.state_file, PathBuf::from("/etc/bridgehead/state.redb"));
    assert_eq!(c.log_dir, Some(PathBuf::from("/var/log/bridgehead")));
    assert_eq!(c.schedule.interval, Duration::from_secs(5400));

    assert_eq!(c.connectors.len(), 2);
    assert_eq!(c.connectors[0].name.as_str(), "corp");
    let ConnectorKind::Ldif(corp) = &c.connectors[0].kind else {
        panic!("corp is an ldif connector")
    };
    assert_eq!(corp.path, PathBuf::from("/etc/bridgehead/corp.ldif"));
    assert_eq!(corp.mode, LdifMode::Source);
    assert!(corp.anchor.is("objectguid"));
    assert_eq!(
        corp.partitions,
        vec![Dn::parse("dc=corp,dc=example").unwrap()]
    );
    assert_eq!(
        corp.reference_attributes.len(),
        DEFAULT_REFERENCE_ATTRIBUTES.len()
    );
    assert_eq!(
        corp.binary_attributes.len(),
        DEFAULT_BINARY_ATTRIBUTES.len()
    );
    let ConnectorKind::Ldif(target) = &c.connectors[1].kind else {
        panic!("the target is an ldif connector")
    };
    assert_eq!(
        target.path,
        PathBuf::from("/etc/bridgehead/out/target.ldif")
    );
    assert_eq!(target.mode, LdifMode::Target);
    assert_eq!(target.reference_attributes, vec![AttrName::new("member")]);
    assert!(target.binary_attributes.is_empty());
    assert!(target.partitions.is_empty());

    let corp_name = ConnectorName::new("corp").unwrap();
    let target_name = ConnectorName::new("target").unwrap();
    assert!(c.connector(&target_name).is_some());
    let inbound = &c.rules.inbound;
    assert_eq!(inbound.len(), 2);
    assert_eq!(
        inbound[0],
        InboundRule {
            name: "corp users".into(),
            connector: corp_name.clone(),
            object_class: "user".into(),
            scope_expression: None,
            scope: vec![
                ScopeClause {
                    attr: AttrName::new("userAccountControl"),
                    op: ScopeOp::IsNotBitSet,
                    value: "2".into(),
                },
                ScopeClause {
                    attr: AttrName::new("mail"),
                    op: ScopeOp::IsNotNull,
                    value: String::new(),
                },
            ],
            object_type: ObjectType::Person,
            join: vec![
                JoinRule {
                    conditions: vec![JoinCondition {
                        cs: AttrName::new("employeeID"),
                        mv: AttrName::new("employeeID"),
                    }],
                },
                JoinRule {
                    conditions: vec![JoinCondition {
                        cs: AttrName::new("mail"),
                        mv: AttrName::new("mail"),
                    }],
                },
            ],
            project: true,
            precedence: 10,
            flows: vec![
                Flow {
                    target: AttrName::new("displayName"),
                    source: FlowSource::Attribute(AttrName::new("displayName")),
                    apply_once: false,
                },
                Flow {
                    target: AttrName::new("company"),
                    source: FlowSource::Constant(Value::str("Contoso")),
                    apply_once: false,
                },
                Flow {
                    target: AttrName::new("container"),
                    source: FlowSource::Dn(DnPart::Container),
                    apply_once: false,
                },
                Flow {
                    target: AttrName::new("level"),
                    source: FlowSource::Constant(Value::Integer(3)),
                    apply_once: false,
                },
                Flow {
                    target: AttrName::new("active"),
                    source: FlowSource::Constant(Value::Boolean(true)),
                    apply_once: false,
                },
            ],
        }
    );
    assert_eq!(inbound[1].connector, target_name);
    assert_eq!(inbound[1].precedence, u32::MAX);
    assert!(!inbound[1].project);
    assert!(inbound[1].flows.is_empty() && inbound[1].join.is_empty());

    let outbound = &c.rules.outbound;
    assert_eq!(outbound.len(), 2);
    assert_eq!(
        outbound[0],
        OutboundRule {
            name: "target-users".into(),
            connector: target_name.clone(),
            object_type: ObjectType::Person,
            scope_expression: None,
            scope: vec![ScopeClause {
                attr: AttrName::new("department"),
                op: ScopeOp::Equal,
                value: "Sales".into(),
            }],
            provision: true,
            object_class: "inetOrgPerson".into(),
            dn_template: DnSource::Template(
                DnTemplate::parse("cn={cn},{container:dn},ou=People,dc=target,dc=example").unwrap(),
            ),
            flows: vec![
                Flow {
                    target: AttrName::new("cn"),
                    source: FlowSource::Attribute(AttrName::new("cn")),
                    apply_once: false,
                },
                Flow {
                    target: AttrName::new("o"),
                    source: FlowSource::Constant(Value::str("Fabrikam")),
                    apply_once: false,
                },
            ],
            deprovision: Deprovision::Disable {
                attr: AttrName::new("employeeType"),
                value: Value::str("disabled"),
            },
        }
    );
    assert!(!outbound[1].provision);
    assert_eq!(outbound[1].deprovision, Deprovision::Keep);
    assert_eq!(outbound[1].object_type, ObjectType::Group);
}

#[test]
fn defaults_apply_and_relative_config_paths_work() {
    let c = Config::parse(BASE, Path::new("bridgehead.toml")).unwrap();
    assert_eq!(c.state_file, PathBuf::from("s.redb"));
    assert_eq!(c.log_dir, None);
    assert_eq!(c.schedule, Schedule::default());
    assert!(c.rules.inbound.is_empty() && c.rules.outbound.is_empty());
    let text = format!(
        "{BASE}[[outbound]]\nname = \"o\"\nconnector = \"out\"\nobject_type = \"person\"\n\
         object_class = \"x\"\ndn = \"cn={{cn}},dc=x\"\n"
    );
    let c = Config::parse(&text, cfg_path()).unwrap();
    assert_eq!(c.rules.outbound[0].deprovision, Deprovision::Delete);
    assert!(c.rules.outbound[0].provision);
}

#[test]
fn toml_syntax_error_has_line_and_key() {
    let text = BASE.replace("path = \"out.ldif\"", "path = \"out.ldif");
    let (line, key, msg) = one_error(&text);
    assert_eq!((line, key.as_str()), (14, "connector[1].path"), "{msg}");
    let e = Config::parse(&text, cfg_path()).unwrap_err().to_string();
    assert!(e.starts_with("/etc/bridgehead/bridgehead.toml:14:"), "{e}");
}

#[test]
fn unknown_key_is_named_with_a_hint() {
    let text = BASE.replace("path = \"out.ldif\"", "pathh = \"out.ldif\"");
    let (line, key, msg) = one_error(&text);
    assert_eq!((line, key.as_str()), (14, "connector[1].pathh"));
    assert!(msg.contains("unknown field `pathh`"), "{msg}");
    assert!(msg.contains("did you mean `path`?"), "{msg}");
    let text = format!("{BASE}[[inbound]]\nflows = [\n  {{ target = \"a\", sorce = \"b\" }},\n]\n");
    assert_error(
        &text,
        18,
        "inbound[0].flows[0].sorce",
        "did you mean `source`?",
    );
}

#[test]
fn wrong_toml_type_is_named() {
    let text = format!("{BASE}[[inbound]]\nprecedence = \"ten\"\n");
    assert_error(&text, 17, "inbound[0].precedence", "expected an integer");
    let text = format!("{BASE}[[inbound]]\njoin = [ {{ cs = \"a\", mv = \"a\" }} ]\n");
    assert_error(&text, 17, "inbound[0].join[0]", "each a list of conditions");
}

#[test]
fn expressions_compile_at_load_and_errors_point_into_them() {
    let rule = "[[inbound]]\nname = \"r\"\nconnector = \"corp\"\nobject_class = \"user\"\n\
                object_type = \"person\"\nprecedence = 1\n";
    let ok = format!(
        "{BASE}{rule}scope_expression = \"IsPresent([mail])\"\n\
         flows = [ {{ target = \"displayName\", expression = \"Trim([givenName] & \\\" \\\" & [sn])\" }} ]\n"
    );
    let c = Config::parse(&ok, cfg_path()).unwrap();
    assert!(c.rules.inbound[0].scope_expression.is_some());
    assert!(matches!(
        c.rules.inbound[0].flows[0].source,
        FlowSource::Expression(_)
    ));
    // An unknown function: line 22 of the file, the column of the name inside the string.
    let bad =
        format!("{BASE}{rule}flows = [ {{ target = \"cn\", expression = \"LCasee([cn])\" }} ]\n");
    let e = Config::parse(&bad, cfg_path()).unwrap_err().to_string();
    assert!(
        e.starts_with("/etc/bridgehead/bridgehead.toml:22:42:"),
        "{e}"
    );
    assert!(e.contains("inbound[0].flows[0].expression"), "{e}");
    assert!(
        e.contains("LCase"),
        "the hint names the close function: {e}"
    );
    // A scope expression must be boolean.
    let not_bool = format!("{BASE}{rule}scope_expression = \"[mail]\"\n");
    assert_error(
        &not_bool,
        22,
        "inbound[0].scope_expression",
        "true or false",
    );
}

#[test]
fn wrong_mode_value() {
    let text = BASE.replace("mode = \"source\"", "mode = \"sorce\"");
    let (line, key, msg) = one_error(&text);
    assert_eq!((line, key.as_str()), (6, "connector[0].mode"));
    assert_eq!(
        msg,
        "expected \"source\" or \"target\", found \"sorce\" (did you mean \"source\"?)"
    );
    let e = Config::parse(&text, cfg_path()).unwrap_err().to_string();
    assert_eq!(
        e,
        format!("/etc/bridgehead/bridgehead.toml:6:8: connector[0].mode: {msg}")
    );
}

#[test]
fn duplicate_connector_name() {
    let text = BASE.replace("name = \"out\"", "name = \"corp\"");
    assert_error(
        &text,
        11,
        "connector[1].name",
        "already used by connector[0]",
    );
}

#[test]
fn missing_key_points_at_the_table() {
    let text = BASE.replace("anchor = \"entryUUID\"\n", "");
    assert_error(&text, 10, "connector[1].anchor", "missing required key");
    let text = BASE.replace("state_file = \"s.redb\"", "");
    assert_error(&text, 1, "state_file", "missing required key");
}

#[test]
fn unknown_connector_type_lists_the_types() {
    let text = BASE.replace("type = \"ldif\"", "type = \"entra\"");
    let all = errors(&text);
    assert_eq!((all[0].0, all[0].1.as_str()), (5, "connector[0].type"));
    assert!(all[0].2.contains("\"ldap\""), "{}", all[0].2);
    assert!(all[0].2.contains("\"graph\""), "{}", all[0].2);
}

#[test]
fn graph_keys_on_another_connector_are_refused() {
    let text = BASE.replacen("type = \"ldif\"", "type = \"ldif\"\ntenant_id = \"t\"", 1);
    let all = errors(&text);
    assert!(all.iter().any(|e| e.1.ends_with("tenant_id")), "{all:?}");
}

#[test]
fn a_graph_connector_needs_its_application_and_https() {
    let text = BASE.replace(
        "type = \"ldif\"",
        "type = \"graph\"\nclient_id = \"11111111-2222-3333-4444-555555555555\"\n\
         client_secret_env = \"BRIDGEHEAD_TEST_NO_SUCH_VAR\"\ngraph_url = \"http://graph.example\"",
    );
    let all = errors(&text);
    let keys: Vec<&str> = all.iter().map(|e| e.1.as_str()).collect();
    assert!(keys.contains(&"connector[0].tenant_id"), "{all:?}");
    assert!(keys.contains(&"connector[0].graph_url"), "{all:?}");
    assert!(
        all.iter()
            .any(|e| e.1 == "connector[0].graph_url" && e.2.contains("https://")),
        "{all:?}"
    );
}

#[test]
fn inbound_rule_with_unknown_connector() {
    let text = format!(
        "{BASE}[[inbound]]\nname = \"r\"\nconnector = \"crop\"\nobject_class = \"user\"\n\
         object_type = \"person\"\nprecedence = 1\n"
    );
    assert_error(
        &text,
        18,
        "inbound[0].connector",
        "no connector named \"crop\"",
    );
    let (_, _, msg) = one_error(&text);
    assert!(
        msg.contains("corp, out") && msg.contains("did you mean \"corp\"?"),
        "{msg}"
    );
}

const RULE: &str = "[[inbound]]\nname = \"r\"\nconnector = \"corp\"\nobject_class = \"user\"\n\
                    object_type = \"person\"\nprecedence = 1\n";

#[test]
fn bad_scope_operator_lists_the_operators() {
    let text = format!(
        "{BASE}{RULE}scope = [\n  {{ attribute = \"a\", operator = \"isnotbitset\", value = \"2\" }},\n]\n"
    );
    assert_error(
        &text,
        23,
        "inbound[0].scope[0].operator",
        "did you mean \"isNotBitSet\"?",
    );
    let (_, _, msg) = one_error(&text);
    assert!(msg.contains("\"equal\", \"notEqual\""), "{msg}");
}

#[test]
fn unary_scope_operator_with_a_value() {
    let text = format!(
        "{BASE}{RULE}scope = [\n  {{ attribute = \"mail\", operator = \"isNull\", value = \"x\" }},\n]\n"
    );
    assert_error(&text, 23, "inbound[0].scope[0].value", "takes no value");
    let text =
        format!("{BASE}{RULE}scope = [\n  {{ attribute = \"mail\", operator = \"equal\" }},\n]\n");
    assert_error(&text, 23, "inbound[0].scope[0].value", "needs a value");
    let text = format!(
        "{BASE}{RULE}scope = [\n  {{ attribute = \"uac\", operator = \"isBitSet\", value = \"x\" }},\n]\n"
    );
    assert_error(&text, 23, "inbound[0].scope[0].value", "integer bit mask");
}

#[test]
fn flow_with_source_and_constant() {
    let text = format!(
        "{BASE}{RULE}flows = [\n  {{ target = \"a\", source = \"a\" }},\n  {{ target = \"b\", source = \"b\", constant = \"c\" }},\n]\n"
    );
    assert_error(
        &text,
        24,
        "inbound[0].flows[1].constant",
        "found both \"source\" and \"constant\"",
    );
    let text = format!("{BASE}{RULE}flows = [ {{ target = \"a\" }} ]\n");
    assert_error(&text, 22, "inbound[0].flows[0]", "found none");
    let text = format!("{BASE}{RULE}flows = [ {{ target = \"a\", dn = \"parnt\" }} ]\n");
    assert_error(
        &text,
        22,
        "inbound[0].flows[0].dn",
        "did you mean \"parent\"?",
    );
    let text = format!(
        "{BASE}{RULE}flows = [ {{ target = \"a\", source = \"x\" }}, {{ target = \"A\", source = \"y\" }} ]\n"
    );
    assert_error(&text, 22, "inbound[0].flows[1].target", "already writes");
}

const OUT: &str = "[[outbound]]\nname = \"o\"\nconnector = \"out\"\nobject_type = \"person\"\n\
                   object_class = \"inetOrgPerson\"\n";

#[test]
fn bad_dn_template() {
    let text = format!("{BASE}{OUT}dn = \"cn={{cn,dc=x\"\n");
    assert_error(&text, 21, "outbound[0].dn", "without a matching");
}

#[test]
fn bad_partition_dn() {
    let text = BASE.replace(
        "anchor = \"objectGUID\"",
        "anchor = \"objectGUID\"\npartitions = [\"dc=corp,dc=example\", \"corp.example\"]",
    );
    assert_error(
        &text,
        9,
        "connector[0].partitions[1]",
        "found \"corp.example\"",
    );
}

#[test]
fn bad_interval() {
    let text = format!("{BASE}[schedule]\ninterval = \"5 minutes\"\n");
    assert_error(&text, 17, "schedule.interval", "expected a duration like");
    let text = format!("{BASE}[schedule]\ninterval = \"0s\"\n");
    assert_error(&text, 17, "schedule.interval", "at least 1s");
    assert_eq!(parse_interval("2m30s"), Some(Duration::from_secs(150)));
    assert_eq!(parse_interval("90s"), Some(Duration::from_secs(90)));
    for bad in [
        "",
        "5",
        "m",
        "30m1h",
        "5m5m",
        "1h 30m",
        "99999999999999999999h",
    ] {
        assert_eq!(parse_interval(bad), None, "{bad}");
    }
}

#[test]
fn outbound_to_an_ldif_source() {
    let text = format!("{BASE}{OUT}dn = \"cn={{cn}},dc=x\"\n")
        .replace("connector = \"out\"", "connector = \"corp\"");
    assert_error(
        &text,
        18,
        "outbound[0].connector",
        "an ldif source cannot be exported to",
    );
}

#[test]
fn outbound_dn_flow_is_refused() {
    let text = format!(
        "{BASE}{OUT}dn = \"cn={{cn}},dc=x\"\nflows = [ {{ target = \"a\", dn = \"full\" }} ]\n"
    );
    assert_error(&text, 22, "outbound[0].flows[0].dn", "inbound-only");
}

#[test]
fn disable_without_disable_attribute() {
    let text = format!(
        "{BASE}{OUT}dn = \"cn={{cn}},dc=x\"\ndeprovision = \"disable\"\ndisable_value = true\n"
    );
    assert_error(
        &text,
        16,
        "outbound[0].disable_attribute",
        "missing required key",
    );
    let text = format!("{BASE}{OUT}dn = \"cn={{cn}},dc=x\"\ndisable_attribute = \"x\"\n");
    assert_error(&text, 22, "outbound[0].disable_attribute", "only used with");
}

#[test]
fn two_errors_are_both_reported() {
    let text = BASE
        .replace("mode = \"source\"", "mode = \"sorce\"")
        .replace("name = \"out\"", "name = \"corp\"");
    let e = Config::parse(&text, cfg_path()).unwrap_err();
    let ConfigError::Many(list) = &e else {
        panic!("expected Many, got {e}");
    };
    assert_eq!(list.len(), 2);
    let all = errors(&text);
    assert_eq!((all[0].0, all[0].1.as_str()), (6, "connector[0].mode"));
    assert_eq!((all[1].0, all[1].1.as_str()), (11, "connector[1].name"));
    assert_eq!(e.to_string().lines().count(), 2);
}

#[test]
fn load_reports_a_missing_file() {
    let e = Config::load(Path::new("/nonexistent/bridgehead.toml")).unwrap_err();
    assert!(matches!(e, ConfigError::Io { .. }));
    assert!(
        e.to_string()
            .starts_with("/nonexistent/bridgehead.toml: cannot read config")
    );
}

#[test]
fn line_col_counts_characters() {
    assert_eq!(line_col("ab\ncé d", 7), (2, 4));
    assert_eq!(line_col("", 5), (1, 1));
}

#[test]
fn syntax_key_follows_array_table_headers() {
    let text = "[[inbound]]\nx = 1\n[[inbound]]\n[[inbound.flows]]\ntarget = \n";
    let offset = text.len() - 1;
    assert_eq!(syntax_key(text, offset), "inbound[1].flows[0].target");
}

/// Spans as the raw structs would carry them, for secret tests.
fn spanned(text: &str, value: &str) -> Spanned<String> {
    let start = text.find(value).unwrap();
    Spanned::new(start..start + value.len(), value.to_string())
}

#[test]
fn secret_from_file_relative_to_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pw.txt"), "s3cret\n").unwrap();
    let cfg = dir.path().join("bridgehead.toml");
    let text = "password_file = \"pw.txt\"\n";
    let ctx = Ctx::new(text, &cfg);
    let f = spanned(text, "pw.txt");
    let s = resolve_secret(Some(&f), None, "connector[0].password", &ctx)
        .unwrap()
        .unwrap();
    assert_eq!(s.expose(), "s3cret");
    assert_eq!(
        resolve_secret(None, None, "x", &ctx)
            .unwrap()
            .map(|s| s.to_string()),
        None
    );
}

#[test]
fn secret_errors_name_the_key_not_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bridgehead.toml");
    let text =
        "password_file = \"missing.txt\"\npassword_env = \"BRIDGEHEAD_TEST_NEVER_SET_VAR\"\n";
    let ctx = Ctx::new(text, &cfg);
    let f = spanned(text, "missing.txt");
    let e = spanned(text, "BRIDGEHEAD_TEST_NEVER_SET_VAR");
    let key = "connector[0].password";

    let err = resolve_secret(Some(&f), Some(&e), key, &ctx).unwrap_err();
    let ConfigError::At {
        line,
        key: k,
        message,
        ..
    } = &err
    else {
        panic!("{err}");
    };
    assert_eq!((*line, k.as_str()), (2, "connector[0].password_env"));
    assert!(message.contains("not both"), "{message}");

    let err = resolve_secret(Some(&f), None, key, &ctx).unwrap_err();
    assert!(
        err.to_string()
            .contains("connector[0].password_file: cannot read secret file")
    );

    let err = resolve_secret(None, Some(&e), key, &ctx).unwrap_err();
    assert!(
        err.to_string()
            .contains("connector[0].password_env: environment variable")
    );
    assert!(err.to_string().contains("is not set"));

    std::fs::write(dir.path().join("missing.txt"), "\n").unwrap();
    let err = resolve_secret(Some(&f), None, key, &ctx).unwrap_err();
    assert!(err.to_string().contains("is empty"), "{err}");
}

#[test]
fn secret_from_env() {
    let (name, value) = std::env::vars()
        .find(|(k, v)| !v.is_empty() && !k.is_empty())
        .unwrap();
    let text = format!("password_env = \"{name}\"\n");
    let ctx = Ctx::new(&text, cfg_path());
    let e = spanned(&text, &name);
    let s = resolve_secret(None, Some(&e), "p", &ctx).unwrap().unwrap();
    assert_eq!(s.expose(), value);
    assert_eq!(format!("{s:?}"), "[redacted]");
}

#[test]
fn scim_connectors_check_url_token_and_numbers() {
    let scim = |extra: &str| {
        format!(
            "state_file = \"s.redb\"\n\n[[connector]]\nname = \"cloud\"\ntype = \"scim\"\n{extra}\n"
        )
    };
    let all = errors(&scim("url = \"http://scim.example.test/v2\""));
    assert!(
        all.iter()
            .any(|e| e.1 == "connector[0].url" && e.2.contains("clear text")),
        "{all:?}"
    );
    let all = errors(&scim(
        "url = \"http://scim.example.test/v2\"\ndanger_plaintext = true",
    ));
    assert!(
        all.iter()
            .any(|e| e.1 == "connector[0].danger_plaintext" && e.2.contains("loopback")),
        "{all:?}"
    );
    let all = errors(&scim(
        "url = \"https://scim.example.test/v2\"\nin_flight = 0\nbind_dn = \"cn=x\"",
    ));
    assert!(
        all.iter()
            .any(|e| e.1 == "connector[0].in_flight" && e.2.contains("from 1 to 64")),
        "{all:?}"
    );
    assert!(
        all.iter()
            .any(|e| e.1 == "connector[0].bind_dn" && e.2.contains("not a setting of a scim")),
        "{all:?}"
    );
    let all = errors(&scim(
        "url = \"https://scim.example.test/v2\"\nbearer_token_env = \"A\"\nbearer_token_file = \"f\"",
    ));
    assert!(all.iter().any(|e| e.2.contains("not both")), "{all:?}");
}
