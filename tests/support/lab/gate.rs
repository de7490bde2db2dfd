//! Sharing one server between tests that run as threads of one process.

use std::collections::HashMap;
use std::sync::{Condvar, Mutex};
use std::thread::ThreadId;

/// A readers–writer lock over one server's availability, keyed by thread so that a thread
/// may nest shared uses inside each other and inside its own exclusive use (a test that holds
/// `exclusive()` can still call `ldapsearch`). Waiting writers do not block new readers:
/// nesting is what matters here, and every test ends.
#[derive(Default)]
pub struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Default)]
struct GateState {
    writer: Option<(ThreadId, usize)>,
    readers: HashMap<ThreadId, usize>,
}

/// A shared or exclusive hold on a [`Gate`], released on drop.
#[must_use = "the hold ends when this is dropped"]
pub struct GateHold<'a> {
    gate: &'a Gate,
    exclusive: bool,
}

impl Gate {
    /// Waits until no other thread holds the gate exclusively, then holds it shared.
    pub fn shared(&self) -> GateHold<'_> {
        let me = std::thread::current().id();
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while s.writer.is_some_and(|(w, _)| w != me) {
            s = self.changed.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        *s.readers.entry(me).or_default() += 1;
        GateHold {
            gate: self,
            exclusive: false,
        }
    }

    /// Waits until no other thread holds the gate at all, then holds it exclusively.
    pub fn exclusive(&self) -> GateHold<'_> {
        let me = std::thread::current().id();
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        // This thread's own shared holds are set aside while it waits (it is blocked here,
        // not using the server): two tests that both hold the gate shared and both ask for
        // it exclusively would otherwise wait for each other forever.
        let mine = s.readers.remove(&me).unwrap_or(0);
        if mine > 0 {
            self.changed.notify_all();
        }
        while s.writer.is_some_and(|(w, _)| w != me) || !s.readers.is_empty() {
            s = self.changed.wait(s).unwrap_or_else(|e| e.into_inner());
        }
        if mine > 0 {
            s.readers.insert(me, mine);
        }
        let depth = s.writer.map_or(0, |(_, d)| d);
        s.writer = Some((me, depth + 1));
        GateHold {
            gate: self,
            exclusive: true,
        }
    }

    /// Whether the calling thread holds the gate exclusively.
    pub fn held_exclusively(&self) -> bool {
        let me = std::thread::current().id();
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.writer.is_some_and(|(w, _)| w == me)
    }
}

impl Drop for GateHold<'_> {
    fn drop(&mut self) {
        let me = std::thread::current().id();
        let mut s = self.gate.state.lock().unwrap_or_else(|e| e.into_inner());
        if self.exclusive {
            s.writer = match s.writer {
                Some((w, d)) if d > 1 => Some((w, d - 1)),
                _ => None,
            };
        } else if let Some(n) = s.readers.get_mut(&me) {
            *n -= 1;
            if *n == 0 {
                s.readers.remove(&me);
            }
        }
        drop(s);
        self.gate.changed.notify_all();
    }
}
