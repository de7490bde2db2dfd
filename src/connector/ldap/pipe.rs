//! The import pipeline: the connector reads the directory on a worker thread and hands
//! changes through a bounded channel to the runner's sink on the calling thread. The bound
//! keeps memory flat (a slow store slows the reader down); questions to the sink
//! (`knows`) travel the same channel, so they are answered after every earlier change.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};

use crate::connector::ImportSink;
use crate::model::{Anchor, Dn, ImportChange};

/// Changes in flight between reader and writer.
pub const DEPTH: usize = 2048;

/// A message from the reader.
pub enum Msg {
    /// A change for the sink.
    Change(ImportChange),
    /// Does the sink know this anchor? The answer goes back on the sender.
    Knows(Anchor, SyncSender<Result<bool, String>>),
    /// Which objects name this one's old DN as a string? See
    /// [`ImportSink::string_referrers`].
    Referrers(Anchor, Option<Dn>, SyncSender<Result<Vec<Dn>, String>>),
}

/// The sink's first error, shared so the reader stops at its next push.
#[derive(Clone, Default)]
pub struct Failed(Arc<Mutex<Option<String>>>);

impl Failed {
    fn get(&self) -> Option<String> {
        self.0.lock().ok().and_then(|g| g.clone())
    }

    fn set(&self, e: String) {
        if let Ok(mut g) = self.0.lock() {
            g.get_or_insert(e);
        }
    }
}

/// The reader's end: an [`ImportSink`] that sends.
pub struct ChannelSink {
    tx: SyncSender<Msg>,
    failed: Failed,
}

impl ChannelSink {
    /// A sink sending on `tx`.
    pub fn new(tx: SyncSender<Msg>, failed: Failed) -> Self {
        ChannelSink { tx, failed }
    }
}

impl ImportSink for ChannelSink {
    fn push(&mut self, change: ImportChange) -> Result<(), String> {
        if let Some(e) = self.failed.get() {
            return Err(e);
        }
        self.tx
            .send(Msg::Change(change))
            .map_err(|_| "the store writer stopped".to_string())
    }

    fn knows(&mut self, anchor: &Anchor) -> Result<bool, String> {
        if let Some(e) = self.failed.get() {
            return Err(e);
        }
        let (reply, answer) = sync_channel(1);
        self.tx
            .send(Msg::Knows(anchor.clone(), reply))
            .map_err(|_| "the store writer stopped".to_string())?;
        answer
            .recv()
            .map_err(|_| "the store writer stopped".to_string())?
    }

    fn string_referrers(
        &mut self,
        anchor: &Anchor,
        now_at: Option<&Dn>,
    ) -> Result<Vec<Dn>, String> {
        if let Some(e) = self.failed.get() {
            return Err(e);
        }
        let (reply, answer) = sync_channel(1);
        self.tx
            .send(Msg::Referrers(anchor.clone(), now_at.cloned(), reply))
            .map_err(|_| "the store writer stopped".to_string())?;
        answer
            .recv()
            .map_err(|_| "the store writer stopped".to_string())?
    }
}

/// The writer's loop: until the reader hangs up, changes go to `sink` and questions are
/// answered. After a sink error the rest is dropped (the reader learns of it and stops).
pub fn drain(rx: Receiver<Msg>, sink: &mut dyn ImportSink, failed: &Failed) {
    for msg in rx {
        match msg {
            Msg::Change(c) => {
                if failed.get().is_none() {
                    if let Err(e) = sink.push(c) {
                        failed.set(e);
                    }
                }
            }
            Msg::Knows(anchor, reply) => {
                let answer = match failed.get() {
                    Some(e) => Err(e),
                    None => sink.knows(&anchor),
                };
                let _ = reply.send(answer);
            }
            Msg::Referrers(anchor, now_at, reply) => {
                let answer = match failed.get() {
                    Some(e) => Err(e),
                    None => sink.string_referrers(&anchor, now_at.as_ref()),
                };
                let _ = reply.send(answer);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    struct Recorder(Vec<ImportChange>, usize);

    impl ImportSink for Recorder {
        fn push(&mut self, c: ImportChange) -> Result<(), String> {
            if self.0.len() == self.1 {
                return Err("disk full".into());
            }
            self.0.push(c);
            Ok(())
        }
        fn knows(&mut self, a: &Anchor) -> Result<bool, String> {
            Ok(self
                .0
                .iter()
                .any(|c| matches!(c, ImportChange::Present(x) if x == a)))
        }
    }

    #[test]
    fn questions_see_every_earlier_change_and_errors_stop_the_reader() {
        let mut sink = Recorder(Vec::new(), 100);
        let (tx, rx) = sync_channel(4);
        let failed = Failed::default();
        let reader_failed = failed.clone();
        let reader = std::thread::spawn(move || {
            let mut s = ChannelSink::new(tx, reader_failed);
            for i in 0..50u8 {
                s.push(ImportChange::Present(Anchor::new(vec![i]))).unwrap();
            }
            // Asked right after the push: it must already be there.
            assert!(s.knows(&Anchor::new(vec![49])).unwrap());
            assert!(!s.knows(&Anchor::new(vec![200])).unwrap());
            let mut err = None;
            for i in 50..=255u8 {
                if let Err(e) = s.push(ImportChange::Present(Anchor::new(vec![i]))) {
                    err = Some(e);
                    break;
                }
            }
            err
        });
        drain(rx, &mut sink, &failed);
        assert_eq!(reader.join().unwrap().as_deref(), Some("disk full"));
        assert_eq!(sink.0.len(), 100);
    }
}
