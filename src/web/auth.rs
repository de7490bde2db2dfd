//! Who may see the status page: the admin password (argon2id), login sessions held in
//! memory (a restart logs everyone out), CSRF tokens, the failed-login throttle and the
//! optional API bearer token. Time comes from the injected clock, so expiry and throttling
//! are tested without sleeping.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::throttle::{Client, LoginThrottle, Verdict, WINDOW_MS, Window, client_key};
use crate::config::Secret;

/// A session ends this long after login whatever its activity (OWASP: 8-12 h).
const SESSION_MAX_MS: i64 = 12 * 3600 * 1000;
/// Wrong API tokens one address may send per window before its token requests wait.
const TOKEN_FAILS_PER_ADDR: usize = 10;
/// Wrong current passwords one session may give the password form per window.
const CHANGE_FAILS_PER_SESSION: usize = 5;
/// Password hashes computed at once: each takes 19 MiB and a core for ~20 ms, so a flood
/// of parallel logins must queue instead of exhausting memory.
const HASHING_AT_ONCE: usize = 4;
/// How long a login waits for a hashing slot before it is answered "busy".
const HASHING_WAIT: Duration = Duration::from_secs(3);
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

/// Why a request is refused before its secret is even checked.
#[derive(Debug, PartialEq, Eq)]
pub struct Throttled {
    /// Seconds until another try is allowed.
    pub retry_after_s: u64,
}

/// What an `Authorization` header amounts to.
#[derive(Debug, PartialEq, Eq)]
pub enum Bearer {
    /// No bearer token (or none configured).
    Absent,
    /// The configured token.
    Valid,
    /// A wrong token (counted against the address).
    Wrong,
    /// This address sent too many wrong tokens lately; not checked.
    Throttled(Throttled),
}

/// Sessions, the login throttle and the API token.
pub struct Auth {
    sessions: Mutex<HashMap<String, Session>>,
    throttle: Mutex<LoginThrottle>,
    token_fails: Mutex<Window<IpAddr>>,
    change_fails: Mutex<Window<String>>,
    hashing: (Mutex<usize>, Condvar),
    idle_ms: i64,
    token: Option<Secret>,
}

/// A hashing slot, given back when dropped.
pub struct HashSlot<'a>(&'a (Mutex<usize>, Condvar));

impl Drop for HashSlot<'_> {
    fn drop(&mut self) {
        *lock(&self.0.0) -= 1;
        self.0.1.notify_one();
    }
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
            throttle: Mutex::new(LoginThrottle::default()),
            token_fails: Mutex::new(Window::new(TOKEN_FAILS_PER_ADDR, WINDOW_MS)),
            change_fails: Mutex::new(Window::new(CHANGE_FAILS_PER_SESSION, WINDOW_MS)),
            hashing: (Mutex::new(0), Condvar::new()),
            idle_ms,
            token,
        }
    }

    /// The throttle's view of a login request.
    pub fn login_client(&self, device_cookie: Option<&str>, peer: IpAddr, now: i64) -> Client {
        lock(&self.throttle).client(device_cookie, peer, now)
    }

    /// Whether one login attempt may check its password (and how long to hold the answer).
    pub fn login_begin(&self, client: &Client, now: i64) -> Verdict {
        lock(&self.throttle).begin(client, now)
    }

    /// The attempt had the right password: a new session id and the client's device cookie.
    pub fn login_succeeded(&self, client: &Client, now: i64) -> Result<(String, String), String> {
        let fresh = random_token(32)?;
        let device = lock(&self.throttle).succeeded(client, now, fresh);
        Ok((self.login(now)?, device))
    }

    /// Waits (bounded) for a slot to compute a password hash in.
    pub fn hashing_slot(&self) -> Option<HashSlot<'_>> {
        let (count, freed) = &self.hashing;
        let guard = lock(count);
        let (mut guard, _) = freed
            .wait_timeout_while(guard, HASHING_WAIT, |n| *n >= HASHING_AT_ONCE)
            .unwrap_or_else(|p| p.into_inner());
        if *guard >= HASHING_AT_ONCE {
            return None;
        }
        *guard += 1;
        Some(HashSlot(&self.hashing))
    }

    /// Whether a password change from this session may check the current password; counts
    /// the attempt until [`Auth::change_succeeded`] takes it back.
    pub fn change_begin(&self, session: &str, now: i64) -> Result<(), Throttled> {
        let mut w = lock(&self.change_fails);
        if let Some(s) = w.wait_s(&session.to_string(), now) {
            return Err(Throttled { retry_after_s: s });
        }
        w.add(session.to_string(), now);
        Ok(())
    }

    /// The current password was right.
    pub fn change_succeeded(&self, session: &str) {
        lock(&self.change_fails).take_back(&session.to_string());
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

    /// Ends every session and forgets every trusted device (after a password change).
    pub fn logout_all(&self) {
        lock(&self.sessions).clear();
        lock(&self.throttle).forget_devices();
    }

    /// Checks an `Authorization` header from `peer`: wrong tokens are counted per address,
    /// and an address past its budget is not checked until the window has passed.
    pub fn bearer(&self, header: Option<&str>, peer: IpAddr, now: i64) -> Bearer {
        let (Some(token), Some(h)) = (&self.token, header) else {
            return Bearer::Absent;
        };
        let Some(given) = h.strip_prefix("Bearer ") else {
            return Bearer::Absent;
        };
        let key = client_key(peer);
        let mut fails = lock(&self.token_fails);
        if let Some(s) = fails.wait_s(&key, now) {
            return Bearer::Throttled(Throttled { retry_after_s: s });
        }
        if same_secret(given.trim().as_bytes(), token.expose().as_bytes()) {
            Bearer::Valid
        } else {
            fails.add(key, now);
            Bearer::Wrong
        }
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
        let me: IpAddr = [10, 0, 0, 1].into();
        assert_eq!(auth.bearer(Some("Bearer abc123"), me, 0), Bearer::Valid);
        assert_eq!(auth.bearer(Some("Bearer abc124"), me, 0), Bearer::Wrong);
        assert_eq!(auth.bearer(Some("abc123"), me, 0), Bearer::Absent);
        assert_eq!(auth.bearer(None, me, 0), Bearer::Absent);
        assert_eq!(
            Auth::new(1000, None).bearer(Some("Bearer "), me, 0),
            Bearer::Absent
        );
    }

    #[test]
    fn wrong_bearer_tokens_are_throttled_per_address() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("t");
        std::fs::write(&f, "abc123").unwrap();
        let auth = Auth::new(1000, Some(Secret::from_file(&f).unwrap()));
        let (me, other): (IpAddr, IpAddr) = ([10, 0, 0, 1].into(), [10, 0, 0, 2].into());
        for i in 0..TOKEN_FAILS_PER_ADDR as i64 {
            assert_eq!(auth.bearer(Some("Bearer guess"), me, i), Bearer::Wrong);
        }
        assert!(matches!(
            auth.bearer(Some("Bearer abc123"), me, 100),
            Bearer::Throttled(_)
        ));
        assert_eq!(
            auth.bearer(Some("Bearer abc123"), other, 100),
            Bearer::Valid
        );
        assert_eq!(
            auth.bearer(Some("Bearer abc123"), me, WINDOW_MS + 100),
            Bearer::Valid
        );
    }

    #[test]
    fn the_password_form_is_throttled_per_session() {
        let auth = Auth::new(1000, None);
        for i in 0..CHANGE_FAILS_PER_SESSION as i64 {
            assert!(auth.change_begin("s1", i).is_ok());
        }
        assert!(auth.change_begin("s1", 10).is_err());
        assert!(auth.change_begin("s2", 10).is_ok());
        auth.change_succeeded("s2");
        assert!(auth.change_begin("s1", WINDOW_MS + 10).is_ok());
    }
}
