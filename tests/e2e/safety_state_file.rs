//! A state file on a full file system, a state file the service user cannot write, and a
//! damaged state file: each stops the command with a non-zero exit and an error naming
//! the file, the cause and what to do, and never leaves a partial write behind (the next
//! cycle, once the cause is gone, converges).
//!
//! The full disk is a real one: a 1 MiB tmpfs mounted for the test (this needs root, as CI
//! has; without it the test says why and checks nothing else). The read-only file is
//! checked as an unprivileged user (setpriv to `nobody`), because root writes through
//! file modes.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{Must, Run, TestDir, bin, connector_counts, cycle_json, read_ldif, run, tail};

const PEOPLE: usize = 3000;

/// An LDIF → LDIF config in `dir` whose state file is `state`.
fn setup(dir: &Path, state: &Path) -> PathBuf {
    setup_with(dir, state, PEOPLE)
}

/// [`setup`] with `people` source entries.
pub(super) fn setup_with(dir: &Path, state: &Path, people: usize) -> PathBuf {
    let mut ldif = String::from("version: 1\n");
    for i in 0..people {
        ldif.push_str(&format!(
            "\ndn: uid=p{i:05},ou=people,dc=hr\nobjectClass: inetOrgPerson\nuid: p{i:05}\n\
             cn: Person {i}\nsn: P\nmail: p{i:05}@example.test\n"
        ));
    }
    std::fs::write(dir.join("hr.ldif"), ldif).must("writing the source");
    let config = dir.join("bridgehead.toml");
    std::fs::write(
        &config,
        format!(
            r#"state_file = "{state}"

[[connector]]
name = "hr"
type = "ldif"
mode = "source"
path = "hr.ldif"
anchor = "uid"

[[connector]]
name = "out"
type = "ldif"
mode = "target"
path = "out.ldif"
anchor = "entryUUID"
deletion_threshold = 10000

[[inbound]]
name = "people"
connector = "hr"
object_class = "inetOrgPerson"
object_type = "person"
precedence = 10
flows = [
  {{ target = "uid", source = "uid" }},
  {{ target = "cn", source = "cn" }},
  {{ target = "sn", source = "sn" }},
  {{ target = "mail", source = "mail" }},
]

[[outbound]]
name = "out-people"
connector = "out"
object_type = "person"
object_class = "inetOrgPerson"
dn = "uid={{uid}},ou=people,dc=out"
deprovision = "delete"
flows = [
  {{ target = "uid", source = "uid" }},
  {{ target = "cn", source = "cn" }},
  {{ target = "sn", source = "sn" }},
  {{ target = "mail", source = "mail" }},
]
"#,
            state = state.display()
        ),
    )
    .must("writing the config");
    config
}

/// Checks a failed command: a clean non-zero exit (not a panic, not a signal) whose
/// stderr names the file and holds every one of `words`.
fn assert_clear_failure(r: &Run, file: &Path, words: &[&str]) {
    let code = r.code();
    assert!(
        matches!(code, Some(1..=3)),
        "`{}` should fail with exit 1-3, got {:?}\n{}",
        r.what,
        r.status,
        tail(&r.stderr)
    );
    assert!(
        r.stderr.contains(&file.display().to_string()),
        "`{}`: the error names {}:\n{}",
        r.what,
        file.display(),
        tail(&r.stderr)
    );
    assert!(
        !r.stderr.contains("panicked"),
        "`{}` panicked:\n{}",
        r.what,
        r.stderr
    );
    for w in words {
        assert!(
            r.stderr.to_lowercase().contains(&w.to_lowercase()),
            "`{}`: the error says {w:?}:\n{}",
            r.what,
            tail(&r.stderr)
        );
    }
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path, size: &str) -> Result<Mount, String> {
        std::fs::create_dir_all(at).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if out.status.success() {
            Ok(Mount(at.to_path_buf()))
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }

    fn resize(&self, size: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .output()
            .must("running mount -o remount");
        assert!(
            out.status.success(),
            "remount: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

fn cycle(config: &Path) -> Run {
    run(&["cycle", "-c", &config.to_string_lossy()])
}

#[test]
fn safety_full_disk_stops_the_cycle_and_the_next_one_converges() {
    let dir = TestDir::new("state-full-disk");
    // No escape hatch: a full-disk test that cannot fill a disk has not tested anything, so
    // it fails (the lab needs root for its servers anyway).
    let mount = Mount::tmpfs(&dir.join("small"), "1m").unwrap_or_else(|e| {
        panic!("cannot mount a 1 MiB tmpfs for the full-disk test (run the tests as root): {e}")
    });
    let state = dir.join("small/state.redb");
    let config = setup(dir.path(), &state);
    let full = cycle(&config);
    eprintln!("full disk: {}", full.stderr.trim());
    assert_clear_failure(&full, &state, &["no space left", "free space"]);
    assert!(
        !dir.join("out.ldif").exists(),
        "the target was written although the state could not be"
    );

    // Space again: the next cycle finishes the work from the last commit.
    mount.resize("256m");
    let next = cycle_json(&config, false);
    next.ok();
    let out = read_ldif(&dir.join("out.ldif"));
    assert_eq!(out.len(), PEOPLE, "every person exactly once");
    let quiet = cycle_json(&config, false);
    quiet.ok();
    let counts = connector_counts(&quiet.json());
    assert_eq!(counts["out"].1, Default::default(), "{counts:?}");
}

#[test]
fn safety_read_only_state_file_is_refused_clearly() {
    let dir = TestDir::new("state-read-only");
    let state = dir.join("state.redb");
    let config = setup(dir.path(), &state);
    cycle_json(&config, false).ok();
    let before = std::fs::read(dir.join("out.ldif")).must("reading the target");

    // The service user owns the folder (and a copy of the binary: the build folder may
    // be closed to it), but the state file is read-only to it.
    std::fs::copy(bin(), dir.join("bridgehead")).must("copying the binary");
    let chown = Command::new("chown")
        .args(["-R", "nobody:nogroup"])
        .arg(dir.path())
        .status()
        .must("running chown");
    assert!(chown.success());
    std::fs::set_permissions(&state, std::os::unix::fs::PermissionsExt::from_mode(0o444))
        .must("chmod 0444");
    let r = as_nobody(dir.path(), &["cycle", "-c", &config.to_string_lossy()]);
    eprintln!("read-only: {}", r.stderr.trim());
    assert_clear_failure(&r, &state, &["permission denied", "service user"]);
    assert_eq!(
        std::fs::read(dir.join("out.ldif")).must("reading the target"),
        before,
        "the target changed"
    );
}

/// Runs the copy of the binary in `dir` as `nobody` (setpriv, no capabilities, no
/// supplementary groups).
fn as_nobody(dir: &Path, args: &[&str]) -> Run {
    let binary = dir.join("bridgehead").to_string_lossy().into_owned();
    let mut all = vec![
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        "--inh-caps=-all",
        binary.as_str(),
    ];
    all.extend_from_slice(args);
    let started = std::time::Instant::now();
    let out = Command::new("setpriv")
        .args(&all)
        .output()
        .must("running setpriv");
    Run {
        what: format!("setpriv … bridgehead {}", args.join(" ")),
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: started.elapsed(),
    }
}

/// One way of damaging a state file's bytes.
type Damage = fn(&mut Vec<u8>);

#[test]
fn safety_damaged_state_file_is_refused_clearly() {
    let dir = TestDir::new("state-damaged");
    let state = dir.join("state.redb");
    let config = setup(dir.path(), &state);
    cycle_json(&config, false).ok();
    let good = std::fs::read(&state).must("reading the state file");
    let target = std::fs::read(dir.join("out.ldif")).must("reading the target");
    let cfg = config.to_string_lossy().into_owned();
    let backup = dir.join("good-backup.redb");
    run(&["backup", "-c", &cfg, &backup.to_string_lossy()]).ok();

    let damage: [(&str, Damage); 3] = [
        ("header overwritten", |b| b[..512].fill(0x5a)),
        ("truncated to half", |b| b.truncate(b.len() / 2)),
        ("pages overwritten", |b| {
            let from = b.len() / 3;
            let to = (from + 64 * 1024).min(b.len());
            b[from..to].fill(0xa5);
        }),
    ];
    for (what, f) in &damage {
        let mut bytes = good.clone();
        f(&mut bytes);
        std::fs::write(&state, &bytes).must("writing the damaged state file");
        let r = cycle(&config);
        assert_clear_failure(&r, &state, &["restore"]);
        eprintln!("{what}: {}", r.stderr.trim());
        assert_eq!(
            std::fs::read(dir.join("out.ldif")).must("reading the target"),
            target,
            "{what}: the target changed"
        );
        // What the error says to do works: restore the backup over the damaged file.
        let restored = run(&["restore", "-c", &cfg, &backup.to_string_lossy()]);
        restored.ok();
        let next = cycle_json(&config, false);
        next.ok();
        let counts = connector_counts(&next.json());
        assert_eq!(counts["out"].1, Default::default(), "{what}: {counts:?}");
        assert_eq!(
            std::fs::read(dir.join("out.ldif")).must("reading the target"),
            target,
            "{what}: the target changed after the restore"
        );
    }
}
