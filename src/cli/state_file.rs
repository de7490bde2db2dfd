//! The commands that handle the state file as a whole (`backup`, `restore`), and the
//! error a damaged state file deserves when redb panics reading it.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{exit, start};
use crate::store::{Store, StoreError};

/// The file a panic inside redb is blamed on: the state file, or a backup being read.
static READING: Mutex<Option<PathBuf>> = Mutex::new(None);

/// redb returns errors for a damaged header or a truncated file, but panics on a damaged
/// page it meets later ("Invalid page type byte"). Such a panic ends the process at once
/// with the error a damaged file deserves and exit code 1: nothing more is written, and
/// redb's atomic commits leave the file at its last commit.
pub(super) fn blame_redb_panics_on(path: &Path) {
    *READING.lock().unwrap_or_else(|e| e.into_inner()) = Some(path.to_path_buf());
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(install_redb_panic_hook);
}

fn install_redb_panic_hook() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let Some(place) = info
            .location()
            .filter(|l| l.file().contains("/redb-") || l.file().starts_with("redb-"))
        else {
            return default(info);
        };
        let what = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let blamed = READING.lock().unwrap_or_else(|e| e.into_inner()).clone();
        // None: the caller expects the panic and catches it (restore over a damaged file).
        let Some(file) = blamed else { return };
        let e = StoreError::Corrupted(file, format!("redb: {what} at {place}"));
        // Logging is set up before any state file is opened; its stderr layer writes
        // synchronously (the journal under systemd).
        tracing::error!("{e}");
        std::process::exit(i32::from(exit::OBJECT_ERRORS));
    }));
}

/// `bridgehead backup`: a verified copy from one read snapshot, also beside a running daemon.
pub(super) fn backup(path: &Path, dest: &Path) -> u8 {
    let (_guard, config) = match start(path) {
        Ok(started) => started,
        Err(code) => return code,
    };
    let started = std::time::Instant::now();
    let result = Store::open_read_only(&config.state_file)
        .and_then(|s| s.backup_to(dest))
        .and_then(|()| Store::open_read_only(dest))
        .and_then(|copy| copy.read()?.counts());
    match result {
        Ok((cs, mv, pending)) => {
            out!(
                "backup {} written and verified in {:.2} s: {cs} connector-space objects, {mv} metaverse objects, {pending} pending exports",
                dest.display(),
                started.elapsed().as_secs_f64()
            );
            exit::OK
        }
        Err(e) => {
            eprintln!("error: backup to {} failed: {e}", dest.display());
            exit::OBJECT_ERRORS
        }
    }
}

/// `bridgehead restore`: a checked backup put in place of the state file, unless in use.
pub(super) fn restore(path: &Path, src: &Path) -> u8 {
    let (_guard, config) = match start(path) {
        Ok(started) => started,
        Err(code) => return code,
    };
    blame_redb_panics_on(src);
    let counts = match Store::open_read_only(src).and_then(|s| s.read()?.counts()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {} is not a usable backup: {e}", src.display());
            return exit::CONFIG;
        }
    };
    let state = &config.state_file;
    // Holding the state file as its writer proves no daemon or cycle is using it, and
    // keeps one from starting on the old file until the backup has taken its name. The
    // file being replaced may be damaged (the reason to restore): a panic of redb reading
    // it is caught here instead of ending the process.
    *READING.lock().unwrap_or_else(|e| e.into_inner()) = None;
    let held = if state.exists() {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Store::open(state))) {
            Ok(Ok(held)) => Some(held),
            Ok(Err(e @ StoreError::InUse(_))) => {
                eprintln!("error: {e}; stop the daemon before restoring");
                return exit::CONFIG;
            }
            Ok(Err(e)) => {
                eprintln!("warning: the current state file is damaged ({e}); replacing it");
                None
            }
            Err(_) => {
                eprintln!(
                    "warning: the current state file {} is damaged (redb cannot read it); \
                     replacing it",
                    state.display()
                );
                None
            }
        }
    } else {
        None
    };
    blame_redb_panics_on(state);
    let tmp = state.with_extension("restore-tmp");
    let copied = std::fs::copy(src, &tmp)
        .and_then(|_| std::fs::File::open(&tmp)?.sync_all())
        .and_then(|()| std::fs::rename(&tmp, state));
    // Released only now, on the replaced file's inode.
    drop(held);
    if let Err(e) = copied {
        let _ = std::fs::remove_file(&tmp);
        eprintln!(
            "error: cannot restore {} to {}: {e}",
            src.display(),
            state.display()
        );
        return exit::OBJECT_ERRORS;
    }
    out!(
        "restored {} to {}: {} connector-space objects, {} metaverse objects, {} pending exports",
        src.display(),
        state.display(),
        counts.0,
        counts.1,
        counts.2
    );
    exit::OK
}

/// `check`'s look at the state file, writing nothing: an existing one is opened read-only
/// (so its format is checked, also beside a running daemon); a missing one needs a folder
/// this user can create it in. Prints one line; true when it is usable.
pub(super) fn check(path: &Path) -> bool {
    if path.exists() {
        return match Store::open_read_only(path) {
            Ok(_) => {
                out!("state file {}: ok", path.display());
                true
            }
            Err(e) => {
                out!("state file: {e}");
                false
            }
        };
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    match rustix::fs::access(
        dir,
        rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK,
    ) {
        Ok(()) if dir.is_dir() => {
            out!(
                "state file {}: not there yet; the first `run` or `cycle` creates it",
                path.display()
            );
            true
        }
        Ok(()) => {
            out!(
                "state file {}: {} is not a folder",
                path.display(),
                dir.display()
            );
            false
        }
        Err(e) => {
            out!(
                "state file {}: cannot be created in {}: {e}",
                path.display(),
                dir.display()
            );
            false
        }
    }
}
