//! A state file written by an earlier release, opened by this build: the committed folder
//! `tests/data/state-format-2` (config, source and target LDIF, and the state file that two
//! cycles of record format 2 left) must keep working with every later build. Search shows
//! exactly what it showed then, a cycle over the unchanged source is quiet, and a change
//! flows through. A format change that breaks this needs a version bump and a migration
//! (see `src/store/golden_tests.rs` for the record bytes).

use std::path::Path;

use crate::support::{Counts, Must, TestDir, connector_counts, cycle_json, run};

/// A private copy of the committed folder (the state file is written to by the cycle).
fn copy_fixture(dir: &TestDir) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/state-format-2");
    for name in ["bridgehead.toml", "hr.ldif", "out.ldif", "state.redb"] {
        std::fs::copy(from.join(name), dir.join(name)).must(&format!("copying {name}"));
    }
}

#[test]
fn golden_state_file_of_format_2_opens_searches_and_syncs() {
    let dir = TestDir::new("golden-state-2");
    copy_fixture(&dir);
    let config = dir.config();
    let config = config.to_string_lossy();
    let want = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/state-format-2/search.txt"),
    )
    .must("the expected search output");
    let mut got = run(&["search", "-c", &config, "ada"])
        .expect_code(0)
        .stdout
        .clone();
    got.push_str(
        &run(&["search", "-c", &config, "pioneers"])
            .expect_code(0)
            .stdout,
    );
    assert_eq!(
        got, want,
        "search shows something else than it did in format 2"
    );

    let out_before = std::fs::read_to_string(dir.join("out.ldif")).must("out.ldif");
    let quiet = cycle_json(&dir.config(), false);
    quiet.expect_code(0);
    let counts = connector_counts(&quiet.json());
    for (name, (import, export, errors)) in &counts {
        assert_eq!(
            (*import, *export, *errors),
            (Counts::default(), Counts::default(), 0),
            "{name}: the old state file's cycle was not quiet: {}",
            quiet.stdout
        );
    }
    assert_eq!(
        std::fs::read_to_string(dir.join("out.ldif")).must("out.ldif"),
        out_before
    );

    // A change goes through: Ada's mail, and Alan leaves the group.
    let source = std::fs::read_to_string(dir.join("hr.ldif")).must("hr.ldif");
    let source = source
        .replace("mail: ada@example.test", "mail: ada.lovelace@example.test")
        .replace("member: uid=alan,ou=people,dc=hr\n", "");
    std::fs::write(dir.join("hr.ldif"), source).must("writing hr.ldif");
    run(&["cycle", "-c", &config]).expect_code(0);
    let out = std::fs::read_to_string(dir.join("out.ldif")).must("out.ldif");
    assert!(out.contains("mail: ada.lovelace@example.test"), "{out}");
    assert!(!out.contains("member: uid=alan,ou=people,dc=out"), "{out}");
    assert!(out.contains("member: uid=ada,ou=people,dc=out"), "{out}");
}
