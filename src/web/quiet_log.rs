//! Rate-limited logging of the status page's repeated events (failed logins, wrong tokens,
//! refused connections): the first few of a kind from one address per minute are logged
//! as they happen, the rest are counted and written as one summary line when the minute
//! ends ("1,204 failed logins from 127.0.0.2 in the last minute"). A flood then costs the
//! journal a few lines a minute instead of one line per request.
//!
//! Sans-IO like the app: [`QuietLog::note`] says whether to log an event now and
//! [`QuietLog::due`] returns the summaries whose minute is over; the caller writes them.

use std::collections::HashMap;
use std::net::IpAddr;

/// The repeated events that are summarised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Event {
    /// A wrong user name or password.
    FailedLogin,
    /// A login refused by the throttle.
    ThrottledLogin,
    /// A wrong API bearer token.
    WrongToken,
    /// A wrong current password in the password-change form.
    WrongCurrentPassword,
    /// A POST refused by the CSRF or origin check.
    RefusedPost,
    /// A connection refused by the per-address or global cap.
    RefusedConnection,
    /// A request cut off because its headers or body came too slowly.
    SlowRequest,
}

impl Event {
    /// The plural noun of the summary line.
    fn plural(self) -> &'static str {
        match self {
            Event::FailedLogin => "failed logins",
            Event::ThrottledLogin => "throttled logins",
            Event::WrongToken => "requests with a wrong API token",
            Event::WrongCurrentPassword => "wrong current passwords",
            Event::RefusedPost => "refused POSTs",
            Event::RefusedConnection => "refused connections",
            Event::SlowRequest => "requests cut off as too slow",
        }
    }
}

/// Events of one kind from one address logged in full per minute.
const IN_FULL: u64 = 3;
/// Events of all kinds logged in full per minute, whatever their address.
const IN_FULL_TOTAL: u64 = 30;
/// Summary lines written at once; the rest are folded into one line.
const SUMMARY_LINES: usize = 10;
/// Distinct (event, address) pairs tracked; beyond it the address is not told apart.
const MAX_KEYS: usize = 4096;
/// The summary period.
const MINUTE_MS: i64 = 60_000;

struct Tally {
    since_ms: i64,
    count: u64,
    logged: u64,
}

/// The counters.
#[derive(Default)]
pub struct QuietLog {
    tallies: HashMap<(Event, Option<IpAddr>), Tally>,
    total_since_ms: i64,
    total_logged: u64,
}

/// `1204` as `1,204`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl QuietLog {
    /// Counts one event; true when it should be logged in full now.
    pub fn note(&mut self, event: Event, peer: IpAddr, now: i64) -> bool {
        if now - self.total_since_ms >= MINUTE_MS {
            self.total_since_ms = now;
            self.total_logged = 0;
        }
        let mut key = (event, Some(peer));
        if self.tallies.len() >= MAX_KEYS && !self.tallies.contains_key(&key) {
            key.1 = None;
        }
        let t = self.tallies.entry(key).or_insert(Tally {
            since_ms: now,
            count: 0,
            logged: 0,
        });
        t.count += 1;
        if t.logged < IN_FULL && self.total_logged < IN_FULL_TOTAL {
            t.logged += 1;
            self.total_logged += 1;
            return true;
        }
        false
    }

    /// The summary lines of every tally whose minute is over (those with nothing held back
    /// end silently).
    pub fn due(&mut self, now: i64) -> Vec<String> {
        let mut ended: Vec<((Event, Option<IpAddr>), u64)> = Vec::new();
        self.tallies.retain(|k, t| {
            if now - t.since_ms < MINUTE_MS {
                return true;
            }
            if t.count > t.logged {
                ended.push((*k, t.count));
            }
            false
        });
        // The loudest first; the rest in one line so that many addresses cost one line.
        ended.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut lines: Vec<String> = ended
            .iter()
            .take(SUMMARY_LINES)
            .map(|((event, peer), count)| {
                let from = match peer {
                    Some(p) => format!("from {p}"),
                    None => "from other addresses".into(),
                };
                format!(
                    "{} {} {from} in the last minute",
                    thousands(*count),
                    event.plural()
                )
            })
            .collect();
        if ended.len() > SUMMARY_LINES {
            let rest = &ended[SUMMARY_LINES..];
            let events: u64 = rest.iter().map(|(_, c)| c).sum();
            lines.push(format!(
                "{} more repeated events from {} other address/event pairs in the last minute",
                thousands(events),
                thousands(rest.len() as u64)
            ));
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_costs_a_few_lines_and_one_summary() {
        let mut q = QuietLog::default();
        let peer = IpAddr::from([127, 0, 0, 2]);
        let logged = (0..1204)
            .filter(|i| q.note(Event::FailedLogin, peer, 1000 + i))
            .count();
        assert_eq!(logged, IN_FULL as usize);
        assert!(q.due(30_000).is_empty(), "not before the minute is over");
        assert_eq!(
            q.due(61_000),
            vec!["1,204 failed logins from 127.0.0.2 in the last minute"]
        );
        assert!(q.due(200_000).is_empty());
        // A new minute logs in full again.
        assert!(q.note(Event::FailedLogin, peer, 200_000));
    }

    #[test]
    fn many_addresses_fold_into_few_lines() {
        let mut q = QuietLog::default();
        let mut logged = 0;
        for i in 0..20_000u32 {
            let peer = IpAddr::from((0x0a00_0000 + i).to_be_bytes());
            for _ in 0..2 {
                logged += usize::from(q.note(Event::FailedLogin, peer, 1000));
            }
        }
        assert_eq!(logged, IN_FULL_TOTAL as usize);
        let lines = q.due(70_000);
        assert_eq!(lines.len(), SUMMARY_LINES + 1, "{lines:?}");
        assert!(lines[0].contains("from other addresses"), "{lines:?}");
        assert!(q.tallies.is_empty());
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
