//! The admin password's files beside the state file: the one-time file a first start
//! writes the generated password to, and the request file `bridgehead passwd` leaves for a
//! running daemon (which holds the state file as its only writer) to pick up.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::auth::{generate_password, hash_password};

/// Where a first start writes the generated password.
pub fn password_file(state_file: &Path) -> PathBuf {
    state_file.with_extension("admin-password")
}

/// Where `bridgehead passwd` leaves a new hash for a running daemon.
pub fn request_file(state_file: &Path) -> PathBuf {
    state_file.with_extension("admin-password-request")
}

/// Writes `text` to a new 0600 file (replacing an old one), then syncs it.
fn write_private(path: &Path, text: &str) -> Result<(), String> {
    let tmp = path.with_extension("tmp-private");
    let _ = std::fs::remove_file(&tmp);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let written = opts.open(&tmp).and_then(|mut f| {
        f.write_all(text.as_bytes())?;
        f.sync_all()
    });
    written
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            format!("cannot write {}: {e}", path.display())
        })
}

/// Generates a password, writes it once to [`password_file`] (0600) and returns its hash
/// and the file.
pub fn first_start(state_file: &Path) -> Result<(String, PathBuf), String> {
    let password = generate_password()?;
    let phc = hash_password(&password)?;
    let file = password_file(state_file);
    write_private(&file, &format!("{password}\n"))?;
    Ok((phc, file))
}

/// Leaves a hash for the running daemon; as root, hands the file to the state file's owner
/// (the service user) so that the daemon may read and remove it.
pub fn write_request(state_file: &Path, phc: &str) -> Result<PathBuf, String> {
    let file = request_file(state_file);
    write_private(&file, phc)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let Ok(meta) = std::fs::metadata(state_file) {
            // Fails harmlessly when not root, and is not needed then (same user).
            let _ = std::os::unix::fs::chown(&file, Some(meta.uid()), Some(meta.gid()));
        }
    }
    Ok(file)
}

/// The hash waiting in the request file, if there is one and it looks like an argon2 PHC.
pub fn read_request(state_file: &Path) -> Option<Result<String, String>> {
    let file = request_file(state_file);
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => return Some(Err(format!("cannot read {}: {e}", file.display()))),
    };
    let phc = text.trim().to_string();
    if !phc.starts_with("$argon2id$") {
        let _ = std::fs::remove_file(&file);
        return Some(Err(format!(
            "{} does not hold an argon2id hash; removed",
            file.display()
        )));
    }
    Some(Ok(phc))
}

/// Removes the request file once its hash is stored.
pub fn request_done(state_file: &Path) {
    let _ = std::fs::remove_file(request_file(state_file));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn first_start_writes_a_private_file_that_verifies() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state.redb");
        let (phc, file) = first_start(&state).unwrap();
        assert_eq!(file, dir.path().join("state.admin-password"));
        let pw = std::fs::read_to_string(&file).unwrap();
        assert!(super::super::auth::verify_password(&phc, pw.trim()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(read_request(&state).is_none());
        write_request(&state, &phc).unwrap();
        assert_eq!(read_request(&state), Some(Ok(phc)));
        request_done(&state);
        std::fs::write(request_file(&state), "plain text").unwrap();
        assert!(matches!(read_request(&state), Some(Err(_))));
        assert!(!request_file(&state).exists());
    }
}
