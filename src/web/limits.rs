//! What one bad client may hold of the status page's server: connections per address
//! and in all, counted from accept to close; whether a connection is idle (nothing read
//! and no request in progress), which hyper's header timeout does not cover before the
//! first request; and the flag that tells a request's work its client has gone.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::http::Gone;
use super::throttle::client_key;

/// Open connections from one address (IPv6: one /64); a browser opens about six.
pub const CONNECTIONS_PER_ADDRESS: usize = 16;
/// Open connections in all.
pub const CONNECTIONS: usize = 256;

/// Open connections, per address and in all.
#[derive(Default)]
pub struct Counts {
    by_addr: HashMap<IpAddr, usize>,
    all: usize,
}

/// One admitted connection, counted until dropped.
pub struct Admitted {
    counts: Arc<Mutex<Counts>>,
    key: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        c.all = c.all.saturating_sub(1);
        if let Some(n) = c.by_addr.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                c.by_addr.remove(&self.key);
            }
        }
    }
}

/// Counts a new connection from `peer`, or says which cap it would pass.
pub fn admit(counts: &Arc<Mutex<Counts>>, peer: IpAddr) -> Result<Admitted, &'static str> {
    let key = client_key(peer);
    let mut c = counts.lock().unwrap_or_else(|p| p.into_inner());
    if c.all >= CONNECTIONS {
        return Err("too many connections in all");
    }
    let mine = c.by_addr.entry(key).or_default();
    if *mine >= CONNECTIONS_PER_ADDRESS {
        return Err("too many connections from this address");
    }
    *mine += 1;
    c.all += 1;
    Ok(Admitted {
        counts: Arc::clone(counts),
        key,
    })
}

/// Raises a request's [`Gone`] flag when the request's future is dropped unfinished
/// (hyper drops it when the client goes away).
pub struct RaiseOnDrop(pub Option<Gone>);

impl Drop for RaiseOnDrop {
    fn drop(&mut self) {
        if let Some(g) = self.0.take() {
            g.set();
        }
    }
}

/// When a connection last read anything, and how many of its requests are in progress.
pub struct Activity {
    started: Instant,
    last_read_ms: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    /// A connection that starts now.
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            started: Instant::now(),
            last_read_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether nothing was read for `limit` and no request is in progress.
    pub fn idle_for(&self, limit: Duration) -> bool {
        let quiet = self.now_ms() - self.last_read_ms.load(Ordering::Relaxed);
        self.in_flight.load(Ordering::Relaxed) == 0 && quiet >= limit.as_millis() as u64
    }

    /// Counts a request in progress until the guard drops.
    pub fn request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }
}

/// One request in progress.
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An IO stream that notes in its [`Activity`] when it read something.
pub struct Watched<T> {
    inner: T,
    activity: Arc<Activity>,
}

impl<T> Watched<T> {
    /// Wraps `inner`.
    pub fn new(inner: T, activity: Arc<Activity>) -> Watched<T> {
        Watched { inner, activity }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            let now = self.activity.now_ms();
            self.activity.last_read_ms.store(now, Ordering::Relaxed);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn connections_are_capped_per_address_and_freed_on_drop() {
        let counts = Arc::new(Mutex::new(Counts::default()));
        let a = IpAddr::from([10, 0, 0, 1]);
        let held: Vec<_> = (0..CONNECTIONS_PER_ADDRESS)
            .map(|_| admit(&counts, a).unwrap())
            .collect();
        assert!(admit(&counts, a).is_err());
        assert!(admit(&counts, IpAddr::from([10, 0, 0, 2])).is_ok());
        drop(held);
        assert!(admit(&counts, a).is_ok());
        assert!(counts.lock().unwrap().by_addr.is_empty());
    }

    #[test]
    fn a_request_in_progress_is_not_idle() {
        let activity = Activity::new();
        assert!(activity.idle_for(Duration::ZERO));
        let req = activity.request();
        assert!(!activity.idle_for(Duration::ZERO));
        drop(req);
        assert!(activity.idle_for(Duration::ZERO));
        assert!(!activity.idle_for(Duration::from_secs(3600)));
    }
}
