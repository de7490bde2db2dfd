//! Keeps the module lanes of STYLE.md: reads every `crate::…` path in `src/` and fails on an
//! edge the table does not allow (a connector that opens the store, sync that calls a
//! connector, the web layer that calls sync, ...).

use std::collections::BTreeSet;
use std::path::Path;

/// Who may use whom (besides itself).
const ALLOWED: &[(&str, &[&str])] = &[
    ("model", &[]),
    ("rules", &["model"]),
    ("config", &["model", "rules"]),
    ("store", &["model"]),
    ("connector", &["model", "config"]),
    ("sync", &["model", "rules", "store"]),
    ("runner", &["model", "config", "store", "connector", "sync"]),
    ("web", &["model", "config", "store", "runner"]),
    (
        "cli",
        &[
            "model",
            "rules",
            "config",
            "store",
            "connector",
            "sync",
            "runner",
            "web",
        ],
    ),
];

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The modules named as `crate::NAME` in a file's text (comments included: a doc link to a
/// forbidden module is as much a smell as a use).
fn used_modules(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.insert(name);
        }
    }
    out
}

#[test]
fn modules_stay_in_their_lanes() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    assert!(
        files.len() > 10,
        "found too few sources under {}",
        src.display()
    );
    let mut violations = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).unwrap_or(file);
        let Some(first) = rel.components().next() else {
            continue;
        };
        let module = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        let Some((_, allowed)) = ALLOWED.iter().find(|(m, _)| *m == module) else {
            // lib.rs and main.rs compose everything.
            continue;
        };
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for used in used_modules(&text) {
            if used != module && !allowed.contains(&used.as_str()) {
                violations.push(format!("{} uses crate::{used}", rel.display()));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "module lanes broken (see STYLE.md):\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_checker_sees_a_forbidden_edge() {
    let used = used_modules("use crate::store::Store; // crate::sync::x\nuse crate::model::Dn;");
    assert!(used.contains("store") && used.contains("sync") && used.contains("model"));
    let (_, connector) = ALLOWED
        .iter()
        .find(|(m, _)| *m == "connector")
        .copied()
        .unwrap_or(("", &[]));
    assert!(
        !connector.contains(&"store"),
        "a connector must never open the store"
    );
}
