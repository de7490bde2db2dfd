//! Turns toml's own errors (syntax, unknown keys, wrong types) into errors with a line,
//! a column and the dotted key.

use super::*;

pub(super) fn toml_error(ctx: &Ctx<'_>, e: &toml::de::Error) -> ConfigError {
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
pub(super) fn unknown_field(message: &str) -> Option<(&str, Vec<&str>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (field, rest) = rest.split_once('`')?;
    let expected = rest.split('`').skip(1).step_by(2).collect();
    Some((field, expected))
}

pub(super) fn push_key(path: &mut String, key: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(key);
}

/// Any TOML value with the spans of everything inside it; used only to name the key of a
/// serde error, whose span toml reports but whose path it does not.
pub(super) enum Node {
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
pub(super) fn locate(node: &Node, offset: usize, path: &mut String) {
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
pub(super) fn syntax_key(text: &str, offset: usize) -> String {
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
pub(super) fn header(line: &str) -> Option<(Vec<&str>, bool)> {
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

pub(super) fn header_path(
    segments: &[&str],
    is_array: bool,
    counts: &mut HashMap<String, usize>,
) -> String {
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
