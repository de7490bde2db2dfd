//! Connectors: one protocol each. They turn directory data into model changes on import
//! and apply pending exports on export; they know nothing of rules and never open the
//! store (the runner hands them what they need).

pub mod agent_served;
pub mod graph;
pub mod http;
pub mod ldap;
pub mod ldif;
pub mod scim;
pub mod tls;

use crate::config::{ConnectorConfig, ConnectorKind};
use crate::model::{
    Anchor, ConnectorName, CsObject, Dn, ExportItem, ExportOutcome, ImportChange, Watermark,
};

/// Why a connector could not do its job as a whole (per-object export failures are
/// [`ExportOutcome::Failed`] instead).
#[derive(Debug, thiserror::Error)]
#[error("connector {connector}: {message}")]
pub struct ConnectorError {
    /// The connector.
    pub connector: ConnectorName,
    /// Unreachable directory, bad data, or refused operation.
    pub kind: ConnectorErrorKind,
    /// What happened, naming the object and the directory's own words.
    pub message: String,
}

/// The class of a connector failure (it decides the exit code).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectorErrorKind {
    /// The directory (or file) could not be reached or read.
    Unreachable,
    /// The directory sent something that cannot be taken (names the object or line).
    BadData,
    /// The operation is not possible with this connector's configuration.
    Unsupported,
}

/// Where an import delivers changes; the runner commits them in batches.
pub trait ImportSink {
    /// Takes one change. An error stops the import (the store failed).
    fn push(&mut self, change: ImportChange) -> Result<(), String>;

    /// Whether the connector space holds a live object with this anchor, so that a
    /// [`ImportChange::Merge`] can apply to it (otherwise the connector reads it whole).
    fn knows(&mut self, anchor: &Anchor) -> Result<bool, String>;

    /// The DN the connector space knows the object with this anchor by, if it holds it:
    /// an import that reads a few objects names their references without listing all.
    fn dn_of(&mut self, _anchor: &Anchor) -> Result<Option<Dn>, String> {
        Ok(None)
    }

    /// Whether the connector space holds at least `n` objects from the directory (what a
    /// full listing would move); false when the sink cannot tell.
    fn holds_at_least(&mut self, _n: u64) -> bool {
        false
    }

    /// The run's time in Unix milliseconds, for connectors that schedule full listings.
    fn now_ms(&self) -> Option<i64> {
        None
    }

    /// When the connector space holds the object with this anchor at a DN other than
    /// `now_at` (None: the object is gone), the DNs of the objects whose holograms name that
    /// old DN as a string. A server that repairs such references itself without reporting
    /// the repaired entries (slapd's refint overlay leaves their entryCSN as it was, so
    /// syncrepl never sends them) has them read again.
    fn string_referrers(
        &mut self,
        anchor: &Anchor,
        now_at: Option<&Dn>,
    ) -> Result<Vec<Dn>, String> {
        let _ = (anchor, now_at);
        Ok(Vec::new())
    }
}

/// How an import ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportEnd {
    /// The new watermark, to be committed with the last batch.
    pub watermark: Option<Watermark>,
    /// The changes were a complete snapshot: objects not delivered are gone.
    pub complete: bool,
}

/// A read view of the connector's space as it stands after an export's outcomes were
/// applied; whole-file writers render from it.
pub trait SpaceView {
    /// Calls `f` for every object that exists in the directory (has an anchor).
    fn for_each(&self, f: &mut dyn FnMut(&CsObject)) -> Result<(), String>;
}

/// What a connector's watcher tells the runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// The directory reported a change: a delta cycle should run soon.
    Changed,
    /// The watch is established; `how` names the mechanism ("change notification",
    /// "DirSync poll every 3 s", "syncrepl refreshAndPersist"). `resumed` is set after a
    /// lost connection: changes made meanwhile were not reported, so a delta import is due.
    Watching {
        /// The mechanism.
        how: String,
        /// This follows a lost connection.
        resumed: bool,
    },
    /// The watch failed; it is tried again after `retry`.
    Lost {
        /// The directory's own words.
        reason: String,
        /// When the next attempt starts.
        retry: std::time::Duration,
    },
}

/// Where a watcher reports; implemented by the runner.
pub trait WatchSink: Send {
    /// Reports an event.
    fn report(&self, event: WatchEvent);

    /// Whether the daemon is shutting down: the watcher returns promptly when it is.
    fn stopping(&self) -> bool;
}

/// A connector's near-real-time watch: runs on a thread of its own, with its own
/// connection, until the sink says the daemon is stopping.
pub trait Watcher: Send {
    /// How long changes are collected before the delta cycle they wake starts, at most.
    fn batch_window(&self) -> std::time::Duration;

    /// Watches until the sink says stop.
    fn run(self: Box<Self>, sink: Box<dyn WatchSink>);
}

/// The one object [`Connector::import_one`] reads: its DN, and its anchor when the
/// connector space knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneObject {
    /// Where it is (as last imported, or as an admin named it).
    pub dn: Dn,
    /// Its anchor, when known.
    pub anchor: Option<Anchor>,
}

/// One configured connector.
pub trait Connector: Send {
    /// Its name.
    fn name(&self) -> &ConnectorName;

    /// Checks that the directory can be reached and read.
    fn check(&mut self) -> Result<(), ConnectorError>;

    /// Imports changes since `watermark` (everything when `full` or there is none).
    fn import(
        &mut self,
        watermark: Option<&Watermark>,
        full: bool,
        sink: &mut dyn ImportSink,
    ) -> Result<ImportEnd, ConnectorError>;

    /// Reads one object from the directory (a base-scope read) and pushes it: an upsert
    /// when it is in scope, a delete when it left scope. False when the directory has no
    /// such object. Connectors that cannot read one object say so.
    fn import_one(
        &mut self,
        which: &OneObject,
        sink: &mut dyn ImportSink,
    ) -> Result<bool, ConnectorError> {
        let _ = (which, sink);
        Err(ConnectorError {
            connector: self.name().clone(),
            kind: ConnectorErrorKind::Unsupported,
            message: "this connector type cannot read one object on its own; run a cycle".into(),
        })
    }

    /// Applies exports; one outcome per item, in order.
    fn export(&mut self, items: &[ExportItem]) -> Result<Vec<ExportOutcome>, ConnectorError>;

    /// Called once after all export batches were applied to the space; returns the new
    /// watermark if the export itself moved it (a rewritten file has a new digest).
    fn finish_export(&mut self, space: &dyn SpaceView)
    -> Result<Option<Watermark>, ConnectorError>;

    /// A watcher for near-real-time mode, when the connector is configured for one.
    fn watcher(&self) -> Option<Box<dyn Watcher>> {
        None
    }
}

/// Builds the connector for a config entry (one that agents serve is never contacted from
/// here: see [`agent_served`]).
pub fn build(cfg: &ConnectorConfig) -> Box<dyn Connector> {
    if let Some(group) = &cfg.agent_group {
        return Box::new(agent_served::AgentServed::new(
            cfg.name.clone(),
            group.clone(),
        ));
    }
    match &cfg.kind {
        ConnectorKind::Ldif(l) => Box::new(ldif::LdifConnector::new(cfg.name.clone(), l.clone())),
        ConnectorKind::Ldap(l) => {
            Box::new(ldap::LdapConnector::new(cfg.name.clone(), (**l).clone()))
        }
        ConnectorKind::Graph(g) => {
            Box::new(graph::GraphConnector::new(cfg.name.clone(), (**g).clone()))
        }
        ConnectorKind::Scim(s) => {
            Box::new(scim::ScimConnector::new(cfg.name.clone(), (**s).clone()))
        }
    }
}
