//! Files the binary creates are private whatever the umask it starts with: under `umask
//! 000` the state file, a backup, the log folder and its log, the certificate key and the
//! generated password come out 0600 (folders 0700).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::safety_state_file::setup_with;
use crate::support::{Must, TestDir, bin, wait_for_log};

/// Runs the binary under `umask 000` (through sh, which sets it and execs).
fn with_umask_000(args: &[&str]) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg("umask 000 && exec \"$0\" \"$@\"")
        .arg(bin())
        .args(args)
        .stdin(Stdio::null());
    c
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .must(&format!("{}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn safety_files_are_private_under_umask_000() {
    let dir = TestDir::new("file-modes");
    let state = dir.join("state.redb");
    let config = setup_with(dir.path(), &state, 20);
    let mut text = std::fs::read_to_string(&config).must("the config");
    text = format!("log_dir = \"logs\"\n{text}\n[web]\nlisten = \"127.0.0.1:0\"\n");
    std::fs::write(&config, text).must("writing the config");
    let cfg = config.to_string_lossy().into_owned();

    let cycle = with_umask_000(&["cycle", "-c", &cfg])
        .output()
        .must("cycle");
    assert!(
        cycle.status.success(),
        "{}",
        String::from_utf8_lossy(&cycle.stderr)
    );
    let backup = dir.join("backups/copy.redb");
    std::fs::create_dir(dir.join("backups")).must("a backup folder");
    let b = with_umask_000(&["backup", "-c", &cfg, &backup.to_string_lossy()])
        .output()
        .must("backup");
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));

    // The daemon makes the log folder, its log, the certificate and the first password.
    let log = dir.join("run.stderr");
    let mut daemon = with_umask_000(&["run", "-c", &cfg])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).must("the stderr file"))
        .spawn()
        .must("run");
    let up = wait_for_log(&log, "status page listening", Duration::from_secs(60));
    let _ = daemon.kill();
    let _ = daemon.wait();
    assert!(up, "{}", std::fs::read_to_string(&log).unwrap_or_default());

    let logs = dir.join("logs");
    let log_files: Vec<_> = std::fs::read_dir(&logs)
        .must("the log folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    assert!(!log_files.is_empty(), "no log file in {}", logs.display());
    let mut checked = vec![
        (state.clone(), 0o600),
        (backup, 0o600),
        (logs, 0o700),
        (dir.join("state.web-key.pem"), 0o600),
        (dir.join("state.admin-password"), 0o600),
    ];
    checked.extend(log_files.into_iter().map(|f| (f, 0o600)));
    for (path, want) in checked {
        assert_eq!(mode(&path), want, "{} is {:o}", path.display(), mode(&path));
    }
}
