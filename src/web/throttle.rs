//! Login throttling that slows a password guesser without locking the owner out: OWASP's
//! device-cookie scheme ("Slow Down Online Guessing Attacks with Device Cookies").
//!
//! - A browser that logged in before carries a device cookie and has a budget of its own:
//!   nothing another client does (a flood from other addresses, NAT, a proxy) touches it.
//! - Every other client is counted by address (IPv6 by /64, since one host holds a whole
//!   prefix); an address that failed [`FAILS_PER_CLIENT`] times waits out the window.
//! - When untrusted clients together fail [`FAILS_ACCOUNT`] times in a window the account is
//!   "under attack": an untrusted address that already failed in the window is refused, and
//!   a fresh address still gets its attempt, answered after [`ATTACK_HOLD_MS`]. So the
//!   correct password from a fresh address always gets in after a short, bounded delay,
//!   while a guesser gets one try per address per window, each held back.
//!
//! An attempt is counted as a failure when it starts and taken back when it succeeds, so
//! that parallel requests from one client cannot all slip through before the first fails.
//! Time is the injected clock's (milliseconds); nothing here sleeps.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::net::IpAddr;

/// The device cookie of a browser that logged in before.
pub const DEVICE_COOKIE: &str = "__Host-bh_device";
/// How long a device cookie stays trusted (also its Max-Age).
pub const DEVICE_TTL_MS: i64 = 30 * 24 * 3600 * 1000;
/// Failed logins a trusted device may have per [`DEVICE_WINDOW_MS`].
const FAILS_PER_DEVICE: usize = 5;
/// The device budget's window.
const DEVICE_WINDOW_MS: i64 = 10 * 60_000;
/// Failed logins one untrusted address may have per [`WINDOW_MS`].
const FAILS_PER_CLIENT: usize = 5;
/// Failed logins of untrusted clients together per window that mean "under attack".
const FAILS_ACCOUNT: usize = 50;
/// The window of the address and account budgets.
pub const WINDOW_MS: i64 = 60_000;
/// How long an untrusted attempt is held back while the account is under attack.
pub const ATTACK_HOLD_MS: u64 = 1_000;
/// Trusted devices kept (the oldest is forgotten first).
const MAX_DEVICES: usize = 256;
/// Addresses tracked before the ones without recent failures are forgotten.
const MAX_KEYS: usize = 10_000;

/// Failures in a sliding window per key, at most `2 * limit` timestamps kept per key.
pub struct Window<K> {
    limit: usize,
    span_ms: i64,
    hits: HashMap<K, VecDeque<i64>>,
}

impl<K: Hash + Eq + Clone> Window<K> {
    /// A window allowing `limit` hits per `span_ms` per key.
    pub fn new(limit: usize, span_ms: i64) -> Window<K> {
        Window {
            limit,
            span_ms,
            hits: HashMap::new(),
        }
    }

    fn prune(&mut self, key: &K, now: i64) -> usize {
        let cutoff = now - self.span_ms;
        let Some(q) = self.hits.get_mut(key) else {
            return 0;
        };
        while q.front().is_some_and(|t| *t <= cutoff) {
            q.pop_front();
        }
        let n = q.len();
        if n == 0 {
            self.hits.remove(key);
        }
        n
    }

    /// Hits of `key` still in the window.
    pub fn count(&mut self, key: &K, now: i64) -> usize {
        self.prune(key, now)
    }

    /// Seconds until `key` may try again, when its budget is spent.
    pub fn wait_s(&mut self, key: &K, now: i64) -> Option<u64> {
        let n = self.prune(key, now);
        if n < self.limit {
            return None;
        }
        // The budget is back when all but `limit - 1` of the hits have aged out.
        let q = self.hits.get(key)?;
        let freeing = q.get(n - self.limit).copied()?;
        Some(((freeing + self.span_ms - now).max(1000) / 1000) as u64)
    }

    /// Counts one hit.
    pub fn add(&mut self, key: K, now: i64) {
        if self.hits.len() >= MAX_KEYS && !self.hits.contains_key(&key) {
            let cutoff = now - self.span_ms;
            self.hits
                .retain(|_, q| q.back().is_some_and(|t| *t > cutoff));
            if self.hits.len() >= MAX_KEYS {
                // Still full of live keys: forget the quietest half rather than grow.
                let mut lasts: Vec<i64> = self
                    .hits
                    .values()
                    .filter_map(|q| q.back().copied())
                    .collect();
                lasts.sort_unstable();
                let median = lasts.get(lasts.len() / 2).copied().unwrap_or(now);
                self.hits
                    .retain(|_, q| q.back().is_some_and(|t| *t > median));
            }
        }
        let q = self.hits.entry(key).or_default();
        q.push_back(now);
        // Twice the budget is kept, so that hits taken back still leave the count right.
        while q.len() > 2 * self.limit {
            q.pop_front();
        }
    }

    /// Takes back the newest hit of `key` (an attempt that turned out well).
    pub fn take_back(&mut self, key: &K) {
        if let Some(q) = self.hits.get_mut(key) {
            q.pop_back();
            if q.is_empty() {
                self.hits.remove(key);
            }
        }
    }
}

/// The address a budget is kept for: IPv4 as is, IPv6 by its /64.
pub fn client_key(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::from([s[0], s[1], s[2], s[3], 0, 0, 0, 0])
            }
        },
        v4 => v4,
    }
}

/// Who is trying to log in, as far as the throttle is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Client {
    /// A browser holding a device cookie it was given at an earlier login.
    Device(String),
    /// Anyone else, by address.
    Untrusted(IpAddr),
}

/// What the throttle says about one attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Check the password; answer after `hold_ms`.
    Go {
        /// How long the answer is held back (0 unless under attack).
        hold_ms: u64,
    },
    /// Refused without checking the password.
    Wait {
        /// Seconds until this client may try again.
        retry_after_s: u64,
    },
}

/// The login throttle.
pub struct LoginThrottle {
    /// Trusted device cookies and when they were issued.
    devices: HashMap<String, i64>,
    device_fails: Window<String>,
    addr_fails: Window<IpAddr>,
    account_fails: Window<()>,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        LoginThrottle {
            devices: HashMap::new(),
            device_fails: Window::new(FAILS_PER_DEVICE, DEVICE_WINDOW_MS),
            addr_fails: Window::new(FAILS_PER_CLIENT, WINDOW_MS),
            account_fails: Window::new(FAILS_ACCOUNT, WINDOW_MS),
        }
    }
}

impl LoginThrottle {
    /// The client behind a request: its device cookie if that is one we issued and it is
    /// still valid, else its address.
    pub fn client(&mut self, device_cookie: Option<&str>, peer: IpAddr, now: i64) -> Client {
        if let Some(c) = device_cookie {
            match self.devices.get(c) {
                Some(issued) if now - issued < DEVICE_TTL_MS => return Client::Device(c.into()),
                Some(_) => {
                    self.devices.remove(c);
                }
                None => {}
            }
        }
        Client::Untrusted(client_key(peer))
    }

    /// Whether the account is under attack (many recent failures from untrusted clients).
    pub fn under_attack(&mut self, now: i64) -> bool {
        self.account_fails.count(&(), now) >= FAILS_ACCOUNT
    }

    /// Decides on one attempt and, when it may go ahead, counts it as failed until
    /// [`LoginThrottle::succeeded`] takes that back.
    pub fn begin(&mut self, client: &Client, now: i64) -> Verdict {
        match client {
            Client::Device(id) => {
                if let Some(s) = self.device_fails.wait_s(id, now) {
                    return Verdict::Wait { retry_after_s: s };
                }
                self.device_fails.add(id.clone(), now);
                Verdict::Go { hold_ms: 0 }
            }
            Client::Untrusted(addr) => {
                if let Some(s) = self.addr_fails.wait_s(addr, now) {
                    return Verdict::Wait { retry_after_s: s };
                }
                let attacked = self.under_attack(now);
                if attacked && self.addr_fails.count(addr, now) > 0 {
                    let s = self.addr_fails.wait_s(addr, now).unwrap_or(0);
                    // This address already failed in the window: one try per window now.
                    return Verdict::Wait {
                        retry_after_s: s.max(WINDOW_MS as u64 / 1000),
                    };
                }
                self.addr_fails.add(*addr, now);
                self.account_fails.add((), now);
                Verdict::Go {
                    hold_ms: if attacked { ATTACK_HOLD_MS } else { 0 },
                }
            }
        }
    }

    /// The attempt `begin` let through had the right password: takes its failure back and
    /// returns a device cookie to hand out (the client's own one, or a new one from
    /// `fresh`).
    pub fn succeeded(&mut self, client: &Client, now: i64, fresh: String) -> String {
        match client {
            Client::Device(id) => {
                self.device_fails.take_back(id);
                id.clone()
            }
            Client::Untrusted(addr) => {
                self.addr_fails.take_back(addr);
                self.account_fails.take_back(&());
                if self.devices.len() >= MAX_DEVICES {
                    if let Some(oldest) = self
                        .devices
                        .iter()
                        .min_by_key(|(_, t)| **t)
                        .map(|(k, _)| k.clone())
                    {
                        self.devices.remove(&oldest);
                    }
                }
                self.devices.insert(fresh.clone(), now);
                fresh
            }
        }
    }

    /// Forgets every trusted device (after a password change: a new password, new trust).
    pub fn forget_devices(&mut self) {
        self.devices.clear();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn addr(i: u8) -> Client {
        Client::Untrusted(IpAddr::from([10, 0, 0, i]))
    }

    fn go(v: Verdict) -> u64 {
        match v {
            Verdict::Go { hold_ms } => hold_ms,
            Verdict::Wait { retry_after_s } => panic!("refused, retry after {retry_after_s} s"),
        }
    }

    #[test]
    fn an_address_waits_after_its_failures_and_is_forgotten_after_the_window() {
        let mut t = LoginThrottle::default();
        for i in 0..FAILS_PER_CLIENT as i64 {
            assert_eq!(go(t.begin(&addr(1), 1000 + i)), 0);
        }
        let Verdict::Wait { retry_after_s } = t.begin(&addr(1), 2000) else {
            panic!("not throttled")
        };
        assert!((59..=60).contains(&retry_after_s), "{retry_after_s}");
        assert_eq!(go(t.begin(&addr(2), 2000)), 0);
        assert_eq!(go(t.begin(&addr(1), 1000 + WINDOW_MS + 10)), 0);
    }

    #[test]
    fn under_attack_a_fresh_address_gets_in_after_a_hold_and_a_device_without_one() {
        let mut t = LoginThrottle::default();
        let now = 1_000_000;
        let owner = addr(200);
        let device = t.succeeded(&owner, now, "dev".into());
        let device = t.client(Some(&device), IpAddr::from([10, 0, 0, 200]), now);
        assert_eq!(device, Client::Device("dev".into()));
        // 10 addresses, 5 failures each: the account is under attack.
        for a in 0..10 {
            for i in 0..5 {
                let _ = t.begin(&addr(a), now + i);
            }
        }
        assert!(t.under_attack(now + 10));
        // The guessers are refused outright, also after their own budget would allow more.
        assert!(matches!(t.begin(&addr(3), now + 10), Verdict::Wait { .. }));
        // A fresh address goes ahead, held back; once is all it gets while it failed.
        let fresh = addr(100);
        assert_eq!(go(t.begin(&fresh, now + 20)), ATTACK_HOLD_MS);
        assert!(matches!(t.begin(&fresh, now + 30), Verdict::Wait { .. }));
        // The right password from another fresh address: held, then trusted.
        let other = addr(101);
        assert_eq!(go(t.begin(&other, now + 40)), ATTACK_HOLD_MS);
        let cookie = t.succeeded(&other, now + 40, "dev2".into());
        assert_eq!(cookie, "dev2");
        // The device that logged in before is untouched by all of it.
        assert_eq!(go(t.begin(&device, now + 50)), 0);
        t.succeeded(&device, now + 50, "unused".into());
        // ... and has its own budget when it is the one guessing.
        for i in 0..FAILS_PER_DEVICE as i64 {
            assert_eq!(go(t.begin(&device, now + 60 + i)), 0);
        }
        assert!(matches!(t.begin(&device, now + 70), Verdict::Wait { .. }));
    }

    #[test]
    fn unknown_and_expired_device_cookies_count_as_untrusted() {
        let mut t = LoginThrottle::default();
        let peer = IpAddr::from([10, 0, 0, 9]);
        assert_eq!(t.client(Some("forged"), peer, 0), Client::Untrusted(peer));
        let id = t.succeeded(&Client::Untrusted(peer), 0, "d".into());
        assert!(matches!(t.client(Some(&id), peer, 1), Client::Device(_)));
        assert_eq!(
            t.client(Some(&id), peer, DEVICE_TTL_MS),
            Client::Untrusted(peer)
        );
        t.succeeded(&Client::Untrusted(peer), 0, "e".into());
        t.forget_devices();
        assert_eq!(t.client(Some("e"), peer, 1), Client::Untrusted(peer));
    }

    #[test]
    fn ipv6_clients_share_a_budget_per_64() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        let mapped: IpAddr = "::ffff:127.0.0.2".parse().unwrap();
        assert_eq!(client_key(mapped), IpAddr::from([127, 0, 0, 2]));
    }

    #[test]
    fn a_flood_of_addresses_stays_bounded() {
        let mut w: Window<IpAddr> = Window::new(5, WINDOW_MS);
        for i in 0..(MAX_KEYS as u32 * 3) {
            w.add(IpAddr::from(i.to_be_bytes()), i64::from(i));
        }
        assert!(w.hits.len() <= MAX_KEYS, "{}", w.hits.len());
    }
}
