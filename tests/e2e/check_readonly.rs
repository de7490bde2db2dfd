//! `bridgehead check` looks and writes nothing: no state file appears in a fresh folder,
//! an existing one is left byte for byte; and a `ca_file` that is not there yet fails only
//! its own connector's check, not the whole config.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use crate::support::{Must, TestDir, demo_once, fresh_copy, run};

/// Every file under `dir` with its size, modification time and bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, (u64, SystemTime, Vec<u8>)> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).must("listing the folder").flatten() {
            let p = e.path();
            let meta = e.metadata().must("file metadata");
            if meta.is_dir() {
                todo.push(p);
            } else {
                let name = p
                    .strip_prefix(dir)
                    .must("relative path")
                    .display()
                    .to_string();
                let bytes = std::fs::read(&p).must("reading a file");
                out.insert(name, (meta.len(), meta.modified().must("mtime"), bytes));
            }
        }
    }
    out
}

#[test]
fn check_writes_nothing_and_a_missing_ca_file_fails_only_its_connector() {
    let template = TestDir::new("check-template");
    demo_once(&template);

    // A fresh folder: config and source only.
    let dir = fresh_copy(&template, "check-fresh");
    let before = snapshot(dir.path());
    let check = run(&["check", "-c", &dir.config().to_string_lossy()]);
    check.ok();
    assert!(check.stdout.contains("not there yet"), "{}", check.stdout);
    assert!(
        !dir.join("state.redb").exists(),
        "check created the state file"
    );
    let after = snapshot(dir.path());
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>(),
        "check created or removed files"
    );
    assert!(before == after, "check changed a file");

    // An existing state file (the demo's) is opened read-only: nothing changes.
    let before = snapshot(template.path());
    let check = run(&["check", "-c", &template.config().to_string_lossy()]);
    check.ok();
    assert!(check.stdout.contains("state.redb: ok"), "{}", check.stdout);
    assert!(
        before == snapshot(template.path()),
        "check changed the demo folder"
    );

    // An AD connector whose CA file is not there yet: the config is valid, that one
    // connector fails its check naming the file, the others pass.
    std::fs::write(dir.join("corp.pw"), "s3cret\n").must("password file");
    let text = std::fs::read_to_string(dir.config()).must("reading the config");
    let missing = dir.join("pki").join("corp-ca.pem");
    let text = text.replacen(
        "[[connector]]",
        &format!(
            "[[connector]]\nname = \"corp\"\ntype = \"ad\"\nurl = \"ldaps://127.0.0.1:1\"\nbind_dn = \"svc@corp.example.com\"\nbind_password_file = \"corp.pw\"\nbase_dn = \"DC=corp,DC=example,DC=com\"\nca_file = \"{}\"\n\n[[connector]]",
            missing.display()
        ),
        1,
    );
    std::fs::write(dir.config(), text).must("writing the config");
    let check = run(&["check", "-c", &dir.config().to_string_lossy()]);
    check.expect_code(3);
    let line = check
        .stdout
        .lines()
        .find(|l| l.starts_with("connector corp:"))
        .must("a line for corp");
    assert!(
        line.contains("ca_file") && line.contains(&missing.display().to_string()),
        "{line}"
    );
    for other in ["contoso", "directory"] {
        assert!(
            check.stdout.contains(&format!("connector {other}: ok")),
            "{other}: {}",
            check.stdout
        );
    }
    assert!(
        !dir.join("state.redb").exists(),
        "check created the state file"
    );
}
