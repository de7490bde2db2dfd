//! One-time enrolment tokens. `bridgehead agent-token` writes one file per token into the
//! appliance's agent folder, named by the token's SHA-256 (the token itself is printed once
//! and kept nowhere). Redeeming renames the file to `….used`: a rename succeeds once, so two
//! agents racing with the same token cannot both enrol, and a reuse is told apart from a
//! token that never existed.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::{hex, random, write_private};

/// What a token file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// The group the agent joins.
    pub group: String,
    /// When it was made (Unix ms).
    pub created_ms: i64,
    /// After this (Unix ms) it is refused.
    pub expires_ms: i64,
}

/// Why a token was refused (the message goes back to the agent and into the log).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No such token was ever made here.
    #[error("the enrolment token is not known to this appliance")]
    Unknown,
    /// It was redeemed before.
    #[error("the enrolment token was already used; make a new one with `bridgehead agent-token`")]
    Used,
    /// Its time ran out.
    #[error("the enrolment token expired {0} s ago; make a new one with `bridgehead agent-token`")]
    Expired(i64),
    /// The folder could not be read or written.
    #[error("the enrolment tokens cannot be read: {0}")]
    Io(String),
}

fn dir(agents_dir: &Path) -> PathBuf {
    agents_dir.join("tokens")
}

fn digest(token: &str) -> String {
    use sha2::Digest as _;
    hex(&sha2::Sha256::digest(token.trim().as_bytes()))
}

/// Whether a group name can be used (it names files and appears in certificates).
pub fn valid_group(group: &str) -> bool {
    !group.is_empty()
        && group.len() <= 64
        && group
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Makes a token for `group` valid for `lifetime_ms`; returns the token text.
pub fn create(
    agents_dir: &Path,
    group: &str,
    now_ms: i64,
    lifetime_ms: i64,
) -> Result<String, String> {
    if !valid_group(group) {
        return Err(format!(
            "group {group:?}: use 1 to 64 letters, digits, '-', '_' or '.'"
        ));
    }
    let d = dir(agents_dir);
    super::private_dir(&d)?;
    let token = format!(
        "bh1.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random::<32>()?)
    );
    let record = TokenRecord {
        group: group.to_string(),
        created_ms: now_ms,
        expires_ms: now_ms.saturating_add(lifetime_ms),
    };
    let json = serde_json::to_vec(&record).map_err(|e| format!("token record: {e}"))?;
    write_private(&d.join(digest(&token)), &json)?;
    Ok(token)
}

/// Redeems a token once: its group, or why it is refused.
pub fn redeem(agents_dir: &Path, token: &str, now_ms: i64) -> Result<String, TokenError> {
    let d = dir(agents_dir);
    let name = digest(token);
    let live = d.join(&name);
    let used = d.join(format!("{name}.used"));
    match std::fs::rename(&live, &used) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(if used.exists() {
                TokenError::Used
            } else {
                TokenError::Unknown
            });
        }
        Err(e) => return Err(TokenError::Io(format!("{}: {e}", live.display()))),
    }
    let text =
        std::fs::read(&used).map_err(|e| TokenError::Io(format!("{}: {e}", used.display())))?;
    let record: TokenRecord = serde_json::from_slice(&text)
        .map_err(|e| TokenError::Io(format!("{}: {e}", used.display())))?;
    if now_ms > record.expires_ms {
        return Err(TokenError::Expired((now_ms - record.expires_ms) / 1000));
    }
    Ok(record.group)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_token_enrols_once() {
        let d = tempfile::tempdir().unwrap();
        let t = create(d.path(), "fab", 1_000, 60_000).unwrap();
        assert!(t.starts_with("bh1.") && t.len() > 40, "{t}");
        // The token's text is nowhere on disk.
        for f in std::fs::read_dir(d.path().join("tokens")).unwrap() {
            let f = f.unwrap();
            assert!(!f.file_name().to_string_lossy().contains(&t[4..]));
            let body = std::fs::read_to_string(f.path()).unwrap();
            assert!(!body.contains(&t[4..]));
        }
        assert_eq!(redeem(d.path(), &t, 2_000).unwrap(), "fab");
        assert_eq!(redeem(d.path(), &t, 2_000), Err(TokenError::Used));
        assert_eq!(
            redeem(d.path(), "bh1.nope", 2_000),
            Err(TokenError::Unknown)
        );
    }

    #[test]
    fn an_expired_token_is_refused_and_spent() {
        let d = tempfile::tempdir().unwrap();
        let t = create(d.path(), "fab", 0, 1_000).unwrap();
        assert_eq!(redeem(d.path(), &t, 6_000), Err(TokenError::Expired(5)));
        assert_eq!(redeem(d.path(), &t, 500), Err(TokenError::Used));
    }

    #[test]
    fn group_names_are_checked() {
        let d = tempfile::tempdir().unwrap();
        assert!(create(d.path(), "../x", 0, 1).is_err());
        assert!(create(d.path(), "", 0, 1).is_err());
        assert!(valid_group("fab-2.east_1"));
    }
}
