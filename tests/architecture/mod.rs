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
    ("agent", &["model", "config", "connector"]),
    ("web", &["model", "config", "store", "runner", "agent"]),
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
            "agent",
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

/// Files that compose every module and so belong to no lane.
const COMPOSITION_ROOTS: &[&str] = &["lib.rs", "main.rs"];

/// The lane violations in a set of sources, given as (path under `src/`, text): a use the
/// table forbids, or a top-level module the table does not know (a new module must be given
/// its lane before it is checked, never pass unchecked).
fn violations(files: &[(String, String)]) -> Vec<String> {
    let mut out = Vec::new();
    for (rel, text) in files {
        let first = rel.split('/').next().unwrap_or(rel);
        if COMPOSITION_ROOTS.contains(&first) {
            continue;
        }
        let module = first.trim_end_matches(".rs");
        let Some((_, allowed)) = ALLOWED.iter().find(|(m, _)| *m == module) else {
            out.push(format!(
                "{rel}: top-level module `{module}` has no lane in the table (add it to ALLOWED and STYLE.md)"
            ));
            continue;
        };
        for used in used_modules(text) {
            if used != module && !allowed.contains(&used.as_str()) {
                out.push(format!("{rel} uses crate::{used}"));
            }
        }
    }
    out
}

#[test]
fn modules_stay_in_their_lanes() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut paths = Vec::new();
    sources(&src, &mut paths);
    assert!(
        paths.len() > 10,
        "found too few sources under {}",
        src.display()
    );
    let files: Vec<(String, String)> = paths
        .iter()
        .map(|p| {
            let rel = p
                .strip_prefix(&src)
                .unwrap_or(p)
                .to_string_lossy()
                .into_owned();
            let text = std::fs::read_to_string(p)
                .unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
            (rel, text)
        })
        .collect();
    let found = violations(&files);
    assert!(
        found.is_empty(),
        "module lanes broken (see STYLE.md):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_checker_fails_a_forbidden_edge_and_an_unknown_module() {
    let file = |rel: &str, text: &str| (rel.to_string(), text.to_string());
    // A connector that opens the store, and sync that calls a connector (in a comment too).
    let bad = violations(&[
        file(
            "connector/ldap/import/mod.rs",
            "use crate::store::Store;\nuse crate::model::Dn;",
        ),
        file(
            "sync/inbound.rs",
            "// see crate::connector::ldap\nuse crate::store::WriteTx;",
        ),
    ]);
    assert_eq!(
        bad,
        [
            "connector/ldap/import/mod.rs uses crate::store",
            "sync/inbound.rs uses crate::connector"
        ],
        "{bad:?}"
    );
    // A new top-level module (a file or a folder) is refused until it has a lane.
    let unknown = violations(&[
        file("graph/mod.rs", "use crate::model::Dn;"),
        file("portal.rs", ""),
    ]);
    assert_eq!(unknown.len(), 2, "{unknown:?}");
    assert!(unknown[0].contains("`graph` has no lane"), "{unknown:?}");
    assert!(unknown[1].contains("`portal` has no lane"), "{unknown:?}");
    // Allowed edges and the composition roots pass.
    let fine = violations(&[
        file(
            "runner/mod.rs",
            "use crate::connector::Connector; use crate::sync::run;",
        ),
        file("lib.rs", "pub use crate::web::serve;"),
        file("main.rs", "use crate::cli::main;"),
    ]);
    assert!(fine.is_empty(), "{fine:?}");
}
