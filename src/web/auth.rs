//! Who may see the status page: the admin password (argon2id), login sessions held in
//! memory (a restart logs everyone out), CSRF tokens, the failed-login throttle and the
//! optional API bearer token. Time comes from the injected clock, so expiry and throttling
//! are tested without sleeping.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::config::Secret;

/// A session ends this long after login whatever its activity (OWASP: 8-12 h).
const SESSION_MAX_MS: i64 = 12 * 3600 * 1000;
/// Failed logins from one address allowed per window before it must wait.
const FAILS_PER_ADDR: usize = 5;
/// Failed logins from all addresses together per window (a spread-out guessing attack).
const FAILS_GLOBAL: usize = 50;
/// The throttle's window.
const WINDOW_MS: i64 = 60_000;
/// Fewest characters a new admin password may have.
pub const MIN_PASSWORD_LEN: usize = 12;

/// `n` random bytes from the OS, URL-safe base64.
pub fn random_token(n: usize) -> Result<String, String> {
    let mut buf = vec![0u8; n];
    getrandom::fill(&mut buf).map_err(|e| format!("the OS random source failed: {e}"))?;
    Ok(URL_SAFE_NO_PAD.encode(buf))
}

/// A random 20-character password without look-alike characters (0/O, 1/l/I).
pub fn generate_password() -> Result<String, String> {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut out = String::with_capacity(20);
    let mut buf = [0u8; 1];
    while out.len() < 20 {
        getrandom::fill(&mut buf).map_err(|e| format!("the OS random source failed: {e}"))?;
        // Rejection sampling keeps every character equally likely.
        let limit = 256 - 256 % ALPHABET.len();
        if usize::from(buf[0]) < limit {
            out.push(char::from(ALPHABET[usize::from(buf[0]) % ALPHABET.len()]));
        }
    }
    Ok(out)
}

fn argon2id() -> Result<Argon2<'static>, String> {
    // OWASP's minimum for argon2id: 19 MiB, 2 passes, 1 lane.
    let params = Params::new(19 * 1024, 2, 1, None).map_err(|e| e.to_string())?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// The argon2id PHC string of a password (checks the minimum length).
pub fn hash_password(password: &str) -> Result<String, String> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(format!(
            "the password must have at least {MIN_PASSWORD_LEN} characters"
        ));
    }
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| format!("the OS random source failed: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Ok(argon2id()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| format!("cannot hash the password: {e}"))?
        .to_string())
}

/// Whether `password` matches a stored PHC string (constant-time inside argon2).
pub fn verify_password(phc: &str, password: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        tracing::error!(
            "the stored admin password hash is not a PHC string; set a new one with `bridgehead passwd`"
        );
        return false;
    };
    // The parameters come from the stored string, so older hashes keep verifying.
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// Compares two secrets without an early exit on the first differing byte.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// One logged-in browser.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The token every POST of this session must carry.
    pub csrf: String,
    /// Unix ms of the login.
    pub created_ms: i64,
    /// Unix ms of the latest request.
    pub last_ms: i64,
}

/// Why a login is refused before the password is even checked.
#[derive(Debug, PartialEq, Eq)]
pub struct Throttled {
    /// Seconds until another try is allowed.
    pub retry_after_s: u64,
}

#[derive(Default)]
struct Failures {
    by_addr: HashMap<IpAddr, Vec<i64>>,
    all: Vec<i64>,
}

/// Sessions, the login throttle and the API token.
pub struct Auth {
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<Failures>,
    idle_ms: i64,
    token: Option<Secret>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Plain maps: a panic while one was held leaves nothing worse than a stale entry.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Auth {
    /// Sessions expire after `idle_ms` without a request; `token` enables bearer access.
    pub fn new(idle_ms: i64, token: Option<Secret>) -> Auth {
        Auth {
            sessions: Mutex::new(HashMap::new()),
            failures: Mutex::new(Failures::default()),
            idle_ms,
            token,
        }
    }

    /// Refuses a login attempt from `addr` while it (or everyone) failed too often lately.
    pub fn check_throttle(&self, addr: IpAddr, now: i64) -> Result<(), Throttled> {
        let mut f = lock(&self.failures);
        let cutoff = now - WINDOW_MS;
        f.all.retain(|t| *t > cutoff);
        let mine = f.by_addr.entry(addr).or_default();
        mine.retain(|t| *t > cutoff);
        let oldest = if mine.len() >= FAILS_PER_ADDR {
            mine.first().copied()
        } else if f.all.len() >= FAILS_GLOBAL {
            f.all.first().copied()
        } else {
            None
        };
        match oldest {
            Some(t) => Err(Throttled {
                retry_after_s: ((t + WINDOW_MS - now).max(1000) / 1000) as u64,
            }),
            None => Ok(()),
        }
    }

    /// Counts a failed login.
    pub fn record_failure(&self, addr: IpAddr, now: i64) {
        let mut f = lock(&self.failures);
        f.all.push(now);
        f.by_addr.entry(addr).or_default().push(now);
        // Bound the map under a flood of addresses: forget those with nothing recent.
        if f.by_addr.len() > 10_000 {
            let cutoff = now - WINDOW_MS;
            f.by_addr.retain(|_, v| v.iter().any(|t| *t > cutoff));
        }
    }

    /// Starts a session; returns its id (the cookie value).
    pub fn login(&self, now: i64) -> Result<String, String> {
        let id = random_token(32)?;
        let csrf = random_token(32)?;
        let mut s = lock(&self.sessions);
        s.retain(|_, v| !self.expired(v, now));
        s.insert(
            id.clone(),
            Session {
                csrf,
                created_ms: now,
                last_ms: now,
            },
        );
        Ok(id)
    }

    fn expired(&self, s: &Session, now: i64) -> bool {
        now - s.last_ms >= self.idle_ms || now - s.created_ms >= SESSION_MAX_MS
    }

    /// The live session with this id, its activity time moved to `now`.
    pub fn session(&self, id: &str, now: i64) -> Option<Session> {
        let mut s = lock(&self.sessions);
        let expired = self.expired(s.get(id)?, now);
        if expired {
            s.remove(id);
            return None;
        }
        let sess = s.get_mut(id)?;
        sess.last_ms = now;
        Some(sess.clone())
    }

    /// Ends one session.
    pub fn logout(&self, id: &str) {
        lock(&self.sessions).remove(id);
    }

    /// Ends every session (after a password change).
    pub fn logout_all(&self) {
        lock(&self.sessions).clear();
    }

    /// Whether an `Authorization` header carries the configured API token.
    pub fn bearer_ok(&self, header: Option<&str>) -> bool {
        let (Some(token), Some(h)) = (&self.token, header) else {
            return false;
        };
        let Some(given) = h.strip_prefix("Bearer ") else {
            return false;
        };
        same_secret(given.trim().as_bytes(), token.expose().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn hashes_verify_and_short_passwords_are_refused() {
        let phc = hash_password("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password(&phc, "correct horse battery"));
        assert!(!verify_password(&phc, "correct horse batterY"));
        assert!(!verify_password("not a hash", "x"));
        assert!(hash_password("short").is_err());
    }

    #[test]
    fn generated_passwords_are_long_and_differ() {
        let a = generate_password().unwrap();
        let b = generate_password().unwrap();
        assert_eq!(a.len(), 20);
        assert_ne!(a, b);
        assert!(!a.contains(['0', 'O', '1', 'l', 'I']));
    }

    #[test]
    fn the_throttle_counts_per_address_and_forgets_after_the_window() {
        let auth = Auth::new(60_000, None);
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        for i in 0..FAILS_PER_ADDR as i64 {
            assert!(auth.check_throttle(a, 1000 + i).is_ok());
            auth.record_failure(a, 1000 + i);
        }
        let t = auth.check_throttle(a, 2000).unwrap_err();
        assert!((59..=60).contains(&t.retry_after_s), "{t:?}");
        assert!(auth.check_throttle(b, 2000).is_ok());
        assert!(auth.check_throttle(a, 1000 + WINDOW_MS + 10).is_ok());
    }

    #[test]
    fn sessions_expire_when_idle_and_absolutely() {
        let auth = Auth::new(1000, None);
        let id = auth.login(0).unwrap();
        assert!(auth.session(&id, 999).is_some());
        assert!(auth.session(&id, 1998).is_some());
        assert!(auth.session(&id, 2998).is_none());
        let auth = Auth::new(SESSION_MAX_MS * 2, None);
        let id = auth.login(0).unwrap();
        assert!(auth.session(&id, SESSION_MAX_MS - 1).is_some());
        assert!(auth.session(&id, SESSION_MAX_MS).is_none());
    }

    #[test]
    fn bearer_tokens_must_match_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t");
        std::fs::write(&f, "abc123").unwrap();
        let auth = Auth::new(1000, Some(Secret::from_file(&f).unwrap()));
        assert!(auth.bearer_ok(Some("Bearer abc123")));
        assert!(!auth.bearer_ok(Some("Bearer abc124")));
        assert!(!auth.bearer_ok(Some("abc123")));
        assert!(!auth.bearer_ok(None));
        assert!(!Auth::new(1000, None).bearer_ok(Some("Bearer ")));
    }
}
