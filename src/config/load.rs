//! Reading the config file: TOML text → raw structs with spans → a checked [`Config`].
//!
//! Serde only decides the shape (which keys exist and their TOML types); every rule about
//! values is checked here, after deserialising, so that all such problems are reported in one
//! go, each with a line, a column and a dotted key like `inbound[0].flows[3].source`.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use toml::Spanned;

use super::{
    Config, ConnectorConfig, ConnectorKind, DEFAULT_BINARY_ATTRIBUTES,
    DEFAULT_REFERENCE_ATTRIBUTES, DeletionThreshold, LdifConfig, LdifMode, Schedule, Secret,
};
use crate::model::{AttrName, ConnectorName, Dn, ObjectType, Value};
use crate::rules::expr::{CompileContext, Expr};
use crate::rules::{
    Deprovision, DnPart, DnTemplate, Flow, FlowSource, InboundRule, JoinCondition, JoinRule,
    OutboundRule, RuleSet, ScopeClause, ScopeOp,
};

/// Why a config file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: cannot read config: {source}")]
    Io {
        /// The config file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// Something is wrong at a place in the file.
    #[error("{path}:{line}:{column}: {key}: {message}")]
    At {
        /// The config file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        column: usize,
        /// Dotted key, e.g. `connector[2].mode`.
        key: String,
        /// What was expected and what was found.
        message: String,
    },
    /// Several problems (all are reported, not just the first).
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Many(Vec<ConfigError>),
}

impl Config {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Checks config text; `path` is used for messages and to resolve relative paths (against its parent folder).
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        let mut ctx = Ctx::new(text, path);
        let raw: RawConfig = toml::from_str(text).map_err(|e| toml_error(&ctx, &e))?;
        let config = check_config(&mut ctx, &raw);
        ctx.finish()?;
        // `check_config` returns None only after reporting an error, so this is unreachable;
        // it is still an error rather than a panic.
        config.ok_or_else(|| ctx.error(0, "(top level)", "config could not be checked"))
    }
}

// ---------------------------------------------------------------------------------------------
// Raw shapes. Every key is optional here so that a missing key is reported together with all
// other problems instead of stopping serde at the first one.

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "the config document")]
struct RawConfig {
    state_file: Option<Spanned<String>>,
    log_dir: Option<Spanned<String>>,
    schedule: Option<Spanned<RawSchedule>>,
    staging: Option<Spanned<bool>>,
    #[serde(default)]
    connector: Vec<Spanned<RawConnector>>,
    #[serde(default)]
    inbound: Vec<Spanned<RawInbound>>,
    #[serde(default)]
    outbound: Vec<Spanned<RawOutbound>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [schedule] table")]
struct RawSchedule {
    interval: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a [[connector]] table")]
struct RawConnector {
    name: Option<Spanned<String>>,
    #[serde(rename = "type")]
    kind: Option<Spanned<String>>,
    mode: Option<Spanned<String>>,
    path: Option<Spanned<String>>,
    anchor: Option<Spanned<String>>,
    partitions: Option<Vec<Spanned<String>>>,
    reference_attributes: Option<Vec<Spanned<String>>>,
    binary_attributes: Option<Vec<Spanned<String>>>,
    deletion_threshold: Option<Spanned<i64>>,
    deletion_threshold_percent: Option<Spanned<i64>>,
    unique_attributes: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "an [[inbound]] rule table")]
struct RawInbound {
    name: Option<Spanned<String>>,
    connector: Option<Spanned<String>>,
    object_class: Option<Spanned<String>>,
    object_type: Option<Spanned<String>>,
    precedence: Option<Spanned<i64>>,
    project: Option<Spanned<bool>>,
    #[serde(default)]
    scope: Vec<Spanned<RawClause>>,
    scope_expression: Option<Spanned<String>>,
    #[serde(default)]
    join: Vec<Spanned<Vec<Spanned<RawCondition>>>>,
    #[serde(default)]
    flows: Vec<Spanned<RawFlow>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "an [[outbound]] rule table")]
struct RawOutbound {
    name: Option<Spanned<String>>,
    connector: Option<Spanned<String>>,
    object_type: Option<Spanned<String>>,
    object_class: Option<Spanned<String>>,
    provision: Option<Spanned<bool>>,
    dn: Option<Spanned<String>>,
    deprovision: Option<Spanned<String>>,
    disable_attribute: Option<Spanned<String>>,
    disable_value: Option<Spanned<RawScalar>>,
    #[serde(default)]
    scope: Vec<Spanned<RawClause>>,
    scope_expression: Option<Spanned<String>>,
    #[serde(default)]
    flows: Vec<Spanned<RawFlow>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a scope clause like { attribute = \"department\", operator = \"equal\", value = \"Sales\" }"
)]
struct RawClause {
    attribute: Option<Spanned<String>>,
    operator: Option<Spanned<String>>,
    value: Option<Spanned<RawScalar>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a join condition like { cs = \"employeeID\", mv = \"employeeID\" }"
)]
struct RawCondition {
    cs: Option<Spanned<String>>,
    mv: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a flow like { target = \"displayName\", source = \"displayName\" }"
)]
struct RawFlow {
    target: Option<Spanned<String>>,
    source: Option<Spanned<String>>,
    constant: Option<Spanned<RawScalar>>,
    dn: Option<Spanned<String>>,
    expression: Option<Spanned<String>>,
}

/// A constant as TOML spells it; the TOML type picks the [`Value`] variant.
enum RawScalar {
    String(String),
    Integer(i64),
    Boolean(bool),
}

impl RawScalar {
    fn to_value(&self) -> Value {
        match self {
            RawScalar::String(s) => Value::String(s.clone()),
            RawScalar::Integer(i) => Value::Integer(*i),
            RawScalar::Boolean(b) => Value::Boolean(*b),
        }
    }
}

impl<'de> Deserialize<'de> for RawScalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;
        impl Visitor<'_> for ScalarVisitor {
            type Value = RawScalar;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string, integer or boolean")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawScalar, E> {
                Ok(RawScalar::String(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RawScalar, E> {
                Ok(RawScalar::Integer(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RawScalar, E> {
                i64::try_from(v)
                    .map(RawScalar::Integer)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<RawScalar, E> {
                Ok(RawScalar::Boolean(v))
            }
        }
        d.deserialize_any(ScalarVisitor)
    }
}

// ---------------------------------------------------------------------------------------------
// Error collection.

/// The file being checked and the errors found so far.
struct Ctx<'a> {
    path: &'a Path,
    text: &'a str,
    dir: PathBuf,
    /// Byte offset of each error, so they can be reported in file order.
    errors: Vec<(usize, ConfigError)>,
}

impl<'a> Ctx<'a> {
    fn new(text: &'a str, path: &'a Path) -> Self {
        Ctx {
            path,
            text,
            dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
            errors: Vec::new(),
        }
    }

    fn error(&self, at: usize, key: &str, message: impl Into<String>) -> ConfigError {
        let (line, column) = line_col(self.text, at);
        ConfigError::At {
            path: self.path.to_path_buf(),
            line,
            column,
            key: key.to_string(),
            message: message.into(),
        }
    }

    fn report(&mut self, at: usize, key: &str, message: impl Into<String>) {
        let e = self.error(at, key, message);
        self.errors.push((at, e));
    }

    fn finish(&mut self) -> Result<(), ConfigError> {
        let mut errors = std::mem::take(&mut self.errors);
        errors.sort_by_key(|(at, _)| *at);
        let mut errors: Vec<ConfigError> = errors.into_iter().map(|(_, e)| e).collect();
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.remove(0)),
            _ => Err(ConfigError::Many(errors)),
        }
    }

    fn resolve(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        }
    }

    /// The key's value, or an error at the start of its table when it is missing.
    fn required<'r, T>(
        &mut self,
        field: &'r Option<Spanned<T>>,
        table: &Range<usize>,
        key: &str,
        expected: &str,
    ) -> Option<&'r Spanned<T>> {
        if field.is_none() {
            self.report(
                table.start,
                key,
                format!("missing required key; expected {expected}"),
            );
        }
        field.as_ref()
    }

    fn non_empty(&mut self, v: &Spanned<String>, key: &str, expected: &str) -> Option<String> {
        if v.get_ref().trim().is_empty() {
            self.report(
                v.span().start,
                key,
                format!("expected {expected}, found an empty string"),
            );
            return None;
        }
        Some(v.get_ref().clone())
    }

    fn path_value(&mut self, v: &Spanned<String>, key: &str) -> Option<PathBuf> {
        let text = self.non_empty(v, key, "a file path")?;
        Some(self.resolve(&text))
    }

    fn attr(&mut self, v: &Spanned<String>, key: &str) -> Option<AttrName> {
        let name = v.get_ref();
        let bad = name.is_empty()
            || name
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || matches!(c, ',' | '=' | '{' | '}'));
        if bad {
            self.report(
                v.span().start,
                key,
                format!("expected an attribute name like \"displayName\", found {name:?}"),
            );
            return None;
        }
        Some(AttrName::new(name))
    }

    fn attr_list(
        &mut self,
        list: Option<&Vec<Spanned<String>>>,
        key: &str,
        default: &[&str],
    ) -> Option<Vec<AttrName>> {
        let Some(list) = list else {
            return Some(default.iter().map(|a| AttrName::new(a)).collect());
        };
        let attrs: Vec<Option<AttrName>> = list
            .iter()
            .enumerate()
            .map(|(i, a)| self.attr(a, &format!("{key}[{i}]")))
            .collect();
        attrs.into_iter().collect()
    }

    fn choice<T: Copy>(
        &mut self,
        v: &Spanned<String>,
        key: &str,
        options: &[(&str, T)],
    ) -> Option<T> {
        let found = v.get_ref();
        if let Some((_, t)) = options.iter().find(|(name, _)| name == found) {
            return Some(*t);
        }
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        self.report(v.span().start, key, expected_one_of(&names, found));
        None
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.matches('\n').count() + 1;
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// `expected "a", "b" or "c", found "x"`, with a suggestion when `x` is a near miss.
fn expected_one_of(options: &[&str], found: &str) -> String {
    let quoted: Vec<String> = options.iter().map(|o| format!("{o:?}")).collect();
    let list = match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        Some((last, _)) => last.clone(),
        None => String::new(),
    };
    let mut msg = format!("expected {list}, found {found:?}");
    if let Some(near) = did_you_mean(found, options) {
        let _ = write!(msg, " (did you mean {near:?}?)");
    }
    msg
}

fn did_you_mean<'o>(found: &str, options: &[&'o str]) -> Option<&'o str> {
    let found = found.to_lowercase();
    options
        .iter()
        .map(|o| (edit_distance(&found, &o.to_lowercase()), *o))
        .filter(|(d, _)| *d <= 2 && *d < found.chars().count())
        .min_by_key(|(d, _)| *d)
        .map(|(_, o)| o)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = Vec::with_capacity(b.len() + 1);
        cur.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

// ---------------------------------------------------------------------------------------------
// Semantic checks. Each returns None only after reporting why.

fn check_config(ctx: &mut Ctx<'_>, raw: &RawConfig) -> Option<Config> {
    let whole = 0..0;
    let state_file = ctx
        .required(
            &raw.state_file,
            &whole,
            "state_file",
            "a file path like \"state.redb\"",
        )
        .and_then(|v| ctx.path_value(v, "state_file"));
    let log_dir = match &raw.log_dir {
        Some(v) => ctx.path_value(v, "log_dir").map(Some),
        None => Some(None),
    };
    let schedule = match &raw.schedule {
        Some(s) => check_schedule(ctx, s.get_ref()),
        None => Some(Schedule::default()),
    };
    let (connectors, known) = check_connectors(ctx, &raw.connector);
    let inbound: Vec<Option<InboundRule>> = {
        let mut names = HashMap::new();
        raw.inbound
            .iter()
            .enumerate()
            .map(|(i, r)| check_inbound(ctx, r, i, &known, &mut names))
            .collect()
    };
    let outbound: Vec<Option<OutboundRule>> = {
        let mut names = HashMap::new();
        raw.outbound
            .iter()
            .enumerate()
            .map(|(i, r)| check_outbound(ctx, r, i, &known, &mut names))
            .collect()
    };
    Some(Config {
        path: ctx.path.to_path_buf(),
        state_file: state_file?,
        log_dir: log_dir?,
        schedule: schedule?,
        staging: raw.staging.as_ref().is_some_and(|v| *v.get_ref()),
        connectors: connectors?,
        rules: RuleSet {
            inbound: inbound.into_iter().collect::<Option<_>>()?,
            outbound: outbound.into_iter().collect::<Option<_>>()?,
        },
    })
}

fn check_schedule(ctx: &mut Ctx<'_>, raw: &RawSchedule) -> Option<Schedule> {
    let Some(v) = &raw.interval else {
        return Some(Schedule::default());
    };
    let key = "schedule.interval";
    match parse_interval(v.get_ref()) {
        None => {
            ctx.report(
                v.span().start,
                key,
                format!(
                    "expected a duration like \"30s\", \"5m\" or \"1h30m\", found {:?}",
                    v.get_ref()
                ),
            );
            None
        }
        Some(d) if d < Duration::from_secs(1) => {
            ctx.report(
                v.span().start,
                key,
                format!("the interval must be at least 1s, found {:?}", v.get_ref()),
            );
            None
        }
        Some(interval) => Some(Schedule { interval }),
    }
}

/// `<n>h`, `<n>m`, `<n>s` or combinations in that order (`1h30m`, `2m30s`).
fn parse_interval(s: &str) -> Option<Duration> {
    if s.is_empty() {
        return None;
    }
    let mut rest = s;
    let mut total: u64 = 0;
    // Units must come largest first, each at most once, so "30m1h" and "5m5m" are refused.
    let mut last_rank = 3;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        let (rank, secs) = match rest[digits..].chars().next()? {
            'h' => (2, 3600),
            'm' => (1, 60),
            's' => (0, 1),
            _ => return None,
        };
        if rank >= last_rank {
            return None;
        }
        last_rank = rank;
        total = total.checked_add(n.checked_mul(secs)?)?;
        rest = &rest[digits + 1..];
    }
    Some(Duration::from_secs(total))
}

/// What rules need to know about a configured connector.
struct KnownConnector {
    name: String,
    index: usize,
    /// Set for ldif connectors whose mode is valid.
    ldif_mode: Option<LdifMode>,
}

fn check_connectors(
    ctx: &mut Ctx<'_>,
    raw: &[Spanned<RawConnector>],
) -> (Option<Vec<ConnectorConfig>>, Vec<KnownConnector>) {
    let mut known: Vec<KnownConnector> = Vec::new();
    let mut out = Vec::new();
    for (i, table) in raw.iter().enumerate() {
        let span = table.span();
        let c = table.get_ref();
        let p = format!("connector[{i}]");
        let key = |field: &str| format!("{p}.{field}");

        let name = ctx
            .required(
                &c.name,
                &span,
                &key("name"),
                "a connector name like \"corp\"",
            )
            .and_then(|v| {
                if let Some(first) = known.iter().find(|k| k.name == *v.get_ref()) {
                    ctx.report(
                        v.span().start,
                        &key("name"),
                        format!(
                            "connector name {:?} is already used by connector[{}]",
                            v.get_ref(),
                            first.index
                        ),
                    );
                    return None;
                }
                match ConnectorName::new(v.get_ref()) {
                    Ok(n) => Some(n),
                    Err(e) => {
                        ctx.report(v.span().start, &key("name"), e.to_string());
                        None
                    }
                }
            });
        let is_ldif = ctx
            .required(&c.kind, &span, &key("type"), "\"ldif\"")
            .and_then(|v| {
                if v.get_ref() == "ldif" {
                    return Some(());
                }
                ctx.report(
                    v.span().start,
                    &key("type"),
                    format!(
                        "expected \"ldif\", found {:?} (only ldif exists so far; ad, ldap, scim \
                         and graph connectors come later)",
                        v.get_ref()
                    ),
                );
                None
            });
        let mode = ctx
            .required(&c.mode, &span, &key("mode"), "\"source\" or \"target\"")
            .and_then(|v| {
                ctx.choice(
                    v,
                    &key("mode"),
                    &[("source", LdifMode::Source), ("target", LdifMode::Target)],
                )
            });
        let path = ctx
            .required(&c.path, &span, &key("path"), "the LDIF file's path")
            .and_then(|v| ctx.path_value(v, &key("path")));
        let anchor = ctx
            .required(
                &c.anchor,
                &span,
                &key("anchor"),
                "an attribute name like \"objectGUID\"",
            )
            .and_then(|v| ctx.attr(v, &key("anchor")));
        let partitions: Option<Vec<Dn>> = c
            .partitions
            .iter()
            .flatten()
            .enumerate()
            .map(|(j, v)| match Dn::parse(v.get_ref()) {
                Ok(dn) => Some(dn),
                Err(e) => {
                    ctx.report(
                        v.span().start,
                        &format!("{p}.partitions[{j}]"),
                        format!(
                            "expected a DN like \"dc=corp,dc=example\", found {:?} ({} at byte {})",
                            v.get_ref(),
                            e.reason,
                            e.at
                        ),
                    );
                    None
                }
            })
            // Collected in full first so that every bad DN is reported, not just the first.
            .collect::<Vec<_>>()
            .into_iter()
            .collect();
        let reference_attributes = ctx.attr_list(
            c.reference_attributes.as_ref(),
            &key("reference_attributes"),
            DEFAULT_REFERENCE_ATTRIBUTES,
        );
        let binary_attributes = ctx.attr_list(
            c.binary_attributes.as_ref(),
            &key("binary_attributes"),
            DEFAULT_BINARY_ATTRIBUTES,
        );

        let count = match &c.deletion_threshold {
            None => Some(DeletionThreshold::default().count),
            Some(v) => match u64::try_from(*v.get_ref()) {
                Ok(n) => Some(n),
                Err(_) => {
                    ctx.report(
                        v.span().start,
                        &key("deletion_threshold"),
                        format!(
                            "expected a number of objects (0 or more), found {}",
                            v.get_ref()
                        ),
                    );
                    None
                }
            },
        };
        let percent = match &c.deletion_threshold_percent {
            None => Some(None),
            Some(v) => match u8::try_from(*v.get_ref()) {
                Ok(n) if (1..=100).contains(&n) => Some(Some(n)),
                _ => {
                    ctx.report(
                        v.span().start,
                        &key("deletion_threshold_percent"),
                        format!("expected a percentage from 1 to 100, found {}", v.get_ref()),
                    );
                    None
                }
            },
        };
        let unique_attributes =
            ctx.attr_list(c.unique_attributes.as_ref(), &key("unique_attributes"), &[]);
        let deletion_threshold = match (count, percent) {
            (Some(count), Some(percent)) => Some(DeletionThreshold { count, percent }),
            _ => None,
        };

        // Registered even when invalid, so rules naming it do not add a second, misleading
        // "no such connector" error.
        if let Some(v) = &c.name {
            if !known.iter().any(|k| k.name == *v.get_ref()) {
                known.push(KnownConnector {
                    name: v.get_ref().clone(),
                    index: i,
                    ldif_mode: is_ldif.and(mode),
                });
            }
        }

        // All fields were checked above; only now may a missing one end this connector.
        out.push((|| {
            Some(ConnectorConfig {
                name: name?,
                deletion_threshold: deletion_threshold?,
                unique_attributes: unique_attributes?,
                kind: {
                    is_ldif?;
                    ConnectorKind::Ldif(LdifConfig {
                        path: path?,
                        mode: mode?,
                        anchor: anchor?,
                        partitions: partitions?,
                        reference_attributes: reference_attributes?,
                        binary_attributes: binary_attributes?,
                    })
                },
            })
        })());
    }
    (out.into_iter().collect(), known)
}

/// Looks up a rule's connector; reports unknown names.
fn connector_ref<'k>(
    ctx: &mut Ctx<'_>,
    v: &Spanned<String>,
    key: &str,
    known: &'k [KnownConnector],
) -> Option<(ConnectorName, &'k KnownConnector)> {
    let found = v.get_ref();
    let Some(k) = known.iter().find(|k| k.name == *found) else {
        let names: Vec<&str> = known.iter().map(|k| k.name.as_str()).collect();
        let mut msg = if names.is_empty() {
            format!("no connector named {found:?}; no [[connector]] is configured")
        } else {
            format!(
                "no connector named {found:?}; configured connectors are {}",
                names.join(", ")
            )
        };
        if let Some(near) = did_you_mean(found, &names) {
            let _ = write!(msg, " (did you mean {near:?}?)");
        }
        ctx.report(v.span().start, key, msg);
        return None;
    };
    // An invalid name was already reported where the connector is defined.
    ConnectorName::new(found).ok().map(|n| (n, k))
}

/// Checks a rule name and that no earlier rule of the same direction uses it.
fn rule_name(
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

fn object_type(ctx: &mut Ctx<'_>, v: &Spanned<String>, key: &str) -> Option<ObjectType> {
    ctx.choice(v, key, &ObjectType::ALL.map(|t| (t.as_str(), t)))
}

fn check_inbound(
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
enum DeprovisionKind {
    Delete,
    Keep,
    Disable,
}

fn check_outbound(
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
    let dn_template = ctx
        .required(
            &r.dn,
            &span,
            &key("dn"),
            "a DN template like \"cn={cn},ou=People,dc=example,dc=com\"",
        )
        .and_then(|v| match DnTemplate::parse(v.get_ref()) {
            Ok(t) => Some(t),
            Err(e) => {
                ctx.report(v.span().start, &key("dn"), e.to_string());
                None
            }
        });
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

fn check_deprovision(
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

fn check_scope(ctx: &mut Ctx<'_>, raw: &[Spanned<RawClause>], p: &str) -> Option<Vec<ScopeClause>> {
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

fn check_join(
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
fn compile_expression(
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
                    v.get_ref()
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
                format!("in expression {:?}: {}{hint}", v.get_ref(), e.message),
            );
            None
        }
    }
}

fn check_flows(
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
            Some(Flow {
                target: target?,
                source: source?,
            })
        })
        .collect();
    flows.into_iter().collect()
}

// ---------------------------------------------------------------------------------------------
// Secrets.

/// Reads a secret given as `<key>_file` or `<key>_env` (exactly one); None when neither is set.
#[allow(dead_code)] // used by the ad/ldap/scim connectors (issues 3, 4)
fn resolve_secret(
    file: Option<&Spanned<String>>,
    env: Option<&Spanned<String>>,
    key: &str,
    ctx: &Ctx<'_>,
) -> Result<Option<Secret>, ConfigError> {
    let field = key.rsplit('.').next().unwrap_or(key);
    let file_key = format!("{key}_file");
    let env_key = format!("{key}_env");
    match (file, env) {
        (None, None) => Ok(None),
        (Some(f), Some(e)) => {
            let second = if e.span().start > f.span().start {
                (e, &env_key)
            } else {
                (f, &file_key)
            };
            Err(ctx.error(
                second.0.span().start,
                second.1,
                format!("give either {field}_file or {field}_env, not both"),
            ))
        }
        (Some(f), None) => {
            if f.get_ref().trim().is_empty() {
                return Err(ctx.error(
                    f.span().start,
                    &file_key,
                    "expected a file path, found an empty string",
                ));
            }
            let path = ctx.resolve(f.get_ref());
            // The io error names only the problem (not found, permission), never the contents.
            let secret = Secret::from_file(&path).map_err(|e| {
                ctx.error(
                    f.span().start,
                    &file_key,
                    format!("cannot read secret file {}: {e}", path.display()),
                )
            })?;
            if secret.expose().is_empty() {
                // An empty password can turn an LDAP bind into an anonymous one.
                return Err(ctx.error(
                    f.span().start,
                    &file_key,
                    format!("secret file {} is empty", path.display()),
                ));
            }
            Ok(Some(secret))
        }
        (None, Some(e)) => {
            let var = e.get_ref();
            let secret = Secret::from_env(var).ok_or_else(|| {
                ctx.error(
                    e.span().start,
                    &env_key,
                    format!("environment variable {var:?} is not set (or not valid Unicode)"),
                )
            })?;
            if secret.expose().is_empty() {
                return Err(ctx.error(
                    e.span().start,
                    &env_key,
                    format!("environment variable {var:?} is empty"),
                ));
            }
            Ok(Some(secret))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// TOML errors (syntax, unknown keys, wrong TOML types).

fn toml_error(ctx: &Ctx<'_>, e: &toml::de::Error) -> ConfigError {
    let offset = e.span().map_or(0, |s| s.start);
    let mut message = e
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
        .replace("expected i64", "expected an integer")
        .replace("expected a sequence", "expected an array");
    let mut key = match toml::from_str::<Node>(ctx.text) {
        Ok(root) => {
            let mut path = String::new();
            locate(&root, offset, &mut path);
            path
        }
        Err(_) => syntax_key(ctx.text, offset),
    };
    let mut hint = None;
    if let Some((field, expected)) = unknown_field(&message) {
        push_key(&mut key, field);
        hint = did_you_mean(field, &expected).map(|near| format!(" (did you mean `{near}`?)"));
    }
    if let Some(hint) = hint {
        message.push_str(&hint);
    }
    if key.ends_with(']') && key.contains(".join[") && message.contains("expected an array") {
        message.push_str(
            "; join is a list of rules, each a list of conditions: \
             join = [ [ { cs = \"employeeID\", mv = \"employeeID\" } ] ]",
        );
    }
    if key.is_empty() {
        key = "(top level)".to_string();
    }
    ctx.error(offset, &key, message)
}

/// From serde's "unknown field `x`, expected one of `a`, `b`": the field and the choices.
fn unknown_field(message: &str) -> Option<(&str, Vec<&str>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, rest) = rest.split_once('`')?;
    let expected = rest.split('`').skip(1).step_by(2).collect();
    Some((field, expected))
}

fn push_key(path: &mut String, key: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(key);
}

/// Any TOML value with the spans of everything inside it; used only to name the key of a
/// serde error, whose span toml reports but whose path it does not.
enum Node {
    Table(Vec<(String, Spanned<Node>)>),
    Array(Vec<Spanned<Node>>),
    Leaf,
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct NodeVisitor;
        impl<'de> Visitor<'de> for NodeVisitor {
            type Value = Node;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any TOML value")
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Node, E> {
                Ok(Node::Leaf)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<Node>>()? {
                    items.push(item);
                }
                Ok(Node::Array(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
                let mut entries = Vec::new();
                let mut datetime = false;
                while let Some(k) = map.next_key::<String>()? {
                    // toml hands dates and times over as a map with one private key.
                    if k.starts_with("$__toml_private") {
                        map.next_value::<IgnoredAny>()?;
                        datetime = true;
                    } else {
                        entries.push((k, map.next_value::<Spanned<Node>>()?));
                    }
                }
                Ok(if datetime {
                    Node::Leaf
                } else {
                    Node::Table(entries)
                })
            }
        }
        d.deserialize_any(NodeVisitor)
    }
}

/// Appends to `path` the keys down to the innermost value whose span holds `offset`.
fn locate(node: &Node, offset: usize, path: &mut String) {
    match node {
        Node::Table(entries) => {
            if let Some((k, v)) = entries.iter().find(|(_, v)| v.span().contains(&offset)) {
                push_key(path, k);
                locate(v.get_ref(), offset, path);
            }
        }
        Node::Array(items) => {
            if let Some((i, v)) = items
                .iter()
                .enumerate()
                .find(|(_, v)| v.span().contains(&offset))
            {
                let _ = write!(path, "[{i}]");
                locate(v.get_ref(), offset, path);
            }
        }
        Node::Leaf => {}
    }
}

/// Best-effort key for a syntax error, which leaves no tree to search: the table header in
/// effect (counting `[[array]]` headers for the index) plus the key on the error's line.
fn syntax_key(text: &str, offset: usize) -> String {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut table = String::new();
    for line in text[..line_start].lines() {
        if let Some((segments, is_array)) = header(line) {
            table = header_path(&segments, is_array, &mut counts);
        }
    }
    let line = text[line_start..].lines().next().unwrap_or("");
    if let Some((segments, is_array)) = header(line) {
        return header_path(&segments, is_array, &mut counts);
    }
    if let Some(k) = line.split_once('=').map(|(k, _)| k.trim()) {
        let bare = !k.is_empty()
            && k.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if bare {
            push_key(&mut table, k);
        }
    }
    table
}

/// `[a.b]` or `[[a.b]]` → (["a", "b"], is_array) for bare keys; None for anything else.
fn header(line: &str) -> Option<(Vec<&str>, bool)> {
    let line = line.split('#').next().unwrap_or("").trim();
    let (inner, is_array) = match line.strip_prefix("[[").and_then(|l| l.strip_suffix("]]")) {
        Some(inner) => (inner, true),
        None => (line.strip_prefix('[')?.strip_suffix(']')?, false),
    };
    let segments: Vec<&str> = inner.split('.').map(str::trim).collect();
    let bare = segments.iter().all(|s| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
    });
    bare.then_some((segments, is_array))
}

fn header_path(segments: &[&str], is_array: bool, counts: &mut HashMap<String, usize>) -> String {
    let mut path = String::new();
    for (i, seg) in segments.iter().enumerate() {
        push_key(&mut path, seg);
        let index = if is_array && i + 1 == segments.len() {
            let n = counts.entry(path.clone()).or_insert(0);
            *n += 1;
            Some(*n - 1)
        } else {
            counts.get(&path).map(|n| n.saturating_sub(1))
        };
        if let Some(index) = index {
            let _ = write!(path, "[{index}]");
        }
    }
    path
}

#[cfg(test)]
// A failed unwrap is a failed test, with the location in the panic message.
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
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
        let ConnectorKind::Ldif(corp) = &c.connectors[0].kind;
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
        let ConnectorKind::Ldif(target) = &c.connectors[1].kind;
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
                    },
                    Flow {
                        target: AttrName::new("company"),
                        source: FlowSource::Constant(Value::str("Contoso")),
                    },
                    Flow {
                        target: AttrName::new("container"),
                        source: FlowSource::Dn(DnPart::Container),
                    },
                    Flow {
                        target: AttrName::new("level"),
                        source: FlowSource::Constant(Value::Integer(3)),
                    },
                    Flow {
                        target: AttrName::new("active"),
                        source: FlowSource::Constant(Value::Boolean(true)),
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
                dn_template: DnTemplate::parse(
                    "cn={cn},{container:dn},ou=People,dc=target,dc=example"
                )
                .unwrap(),
                flows: vec![
                    Flow {
                        target: AttrName::new("cn"),
                        source: FlowSource::Attribute(AttrName::new("cn")),
                    },
                    Flow {
                        target: AttrName::new("o"),
                        source: FlowSource::Constant(Value::str("Fabrikam")),
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
        let text =
            format!("{BASE}[[inbound]]\nflows = [\n  {{ target = \"a\", sorce = \"b\" }},\n]\n");
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
        let bad = format!(
            "{BASE}{rule}flows = [ {{ target = \"cn\", expression = \"LCasee([cn])\" }} ]\n"
        );
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
    fn unknown_connector_type_hints_at_later_ones() {
        let text = BASE.replace("type = \"ldif\"", "type = \"ad\"");
        let all = errors(&text);
        assert_eq!(all.len(), 2);
        assert_eq!((all[0].0, all[0].1.as_str()), (5, "connector[0].type"));
        assert!(all[0].2.contains("come later"), "{}", all[0].2);
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
        let text = format!(
            "{BASE}{RULE}scope = [\n  {{ attribute = \"mail\", operator = \"equal\" }},\n]\n"
        );
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
}
