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
    DEFAULT_REFERENCE_ATTRIBUTES, DeletionThreshold, LdapFlavor, LdifConfig, LdifMode, Schedule,
    Secret, ThresholdHolds,
};
use crate::model::{AttrName, ConnectorName, Dn, ObjectType, Value};
use crate::rules::expr::{CompileContext, Expr};
use crate::rules::{
    Deprovision, DnPart, DnSource, DnTemplate, Flow, FlowSource, InboundRule, JoinCondition,
    JoinRule, OutboundRule, RuleSet, ScopeClause, ScopeOp,
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

mod agents;
mod connectors;
mod graph;
mod ldap;
mod raw;
mod rule_set;
mod rules;
mod scim;
mod toml_errors;
mod web;

use agents::*;
use connectors::*;
use raw::*;
use rules::*;
use toml_errors::*;
use web::*;

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

    /// Records an error already built (sorted in at `at`).
    fn push_at(&mut self, at: usize, e: ConfigError) {
        self.errors.push((at, e));
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
        // Whitespace is allowed only inside a SCIM value filter: emails[type eq "work"].value.
        let mut depth = 0i32;
        let bad = name.is_empty()
            || name.chars().any(|c| {
                match c {
                    '[' => depth += 1,
                    ']' => depth -= 1,
                    _ => {}
                }
                (c.is_whitespace() && depth == 0)
                    || c.is_control()
                    || (depth == 0 && matches!(c, ',' | '=' | '{' | '}'))
            })
            || depth != 0;
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
    let web = check_web(ctx, raw.web.as_ref());
    let agents = raw.agents.as_ref().map(|a| check_agents(ctx, a));
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
    let mut connectors = connectors?;
    let mut rules = RuleSet {
        inbound: inbound.into_iter().collect::<Option<_>>()?,
        outbound: outbound.into_iter().collect::<Option<_>>()?,
    };
    rule_set::apply(ctx, raw, &mut connectors, &mut rules)?;
    Some(Config {
        path: ctx.path.to_path_buf(),
        state_file: state_file?,
        log_dir: log_dir?,
        schedule: schedule?,
        staging: raw.staging.as_ref().is_some_and(|v| *v.get_ref()),
        web: web?,
        agents: agents.map_or(Some(None), |a| a.map(Some))?,
        connectors,
        rules,
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
pub(super) fn parse_interval(s: &str) -> Option<Duration> {
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

/// Reads a secret given as `<key>_file` or `<key>_env` (exactly one); None when neither is set.
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

#[cfg(test)]
mod ldap_tests;
#[cfg(test)]
mod tests;
