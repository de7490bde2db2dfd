//! The appliance's register of enrolled agents: who they are (id, group, certificate
//! fingerprint), kept in `registry.json` in the agent folder, and how they are doing now
//! (address, version, connected since, last heartbeat, current job), kept in memory. The
//! listener's verifier asks it at every handshake, so a revocation takes effect at once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::write_private;
use crate::model::Clock;

/// One enrolled agent as kept on disk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRecord {
    /// Its id (also its certificate's common name).
    pub id: String,
    /// The group whose jobs it may take.
    pub group: String,
    /// SHA-256 of its client certificate.
    pub fingerprint: String,
    /// The host name it gave when enrolling.
    pub host: String,
    /// When it enrolled (Unix ms).
    pub enrolled_ms: i64,
    /// When it was revoked, and by whom.
    pub revoked: Option<(i64, String)>,
}

/// What a connected agent is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Live {
    /// Its version.
    pub version: String,
    /// The address it connects from.
    pub address: String,
    /// When this connection said hello (Unix ms).
    pub connected_ms: i64,
    /// Its last heartbeat (Unix ms).
    pub heartbeat_ms: i64,
    /// The jobs it holds, by job id.
    pub jobs: BTreeMap<u64, String>,
}

/// One agent as the status page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentView {
    /// Its id.
    pub id: String,
    /// Its group.
    pub group: String,
    /// The host it enrolled from.
    pub host: String,
    /// "connected", "lost" (no heartbeat for three intervals), "offline" or "revoked".
    pub state: &'static str,
    /// Its version, when connected.
    pub version: Option<String>,
    /// Its address, when connected.
    pub address: Option<String>,
    /// Connected since (Unix ms).
    pub connected_ms: Option<i64>,
    /// Last heartbeat (Unix ms).
    pub heartbeat_ms: Option<i64>,
    /// Its current jobs (a watch beside an import, say), comma-separated.
    pub job: Option<String>,
    /// When it enrolled.
    pub enrolled_ms: i64,
    /// When it was revoked.
    pub revoked_ms: Option<i64>,
}

#[derive(Default)]
struct Inner {
    agents: BTreeMap<String, AgentRecord>,
    live: BTreeMap<String, Live>,
}

/// The register; cheap to share.
#[derive(Clone)]
pub struct Registry {
    file: PathBuf,
    clock: Arc<dyn Clock>,
    heartbeat_ms: i64,
    inner: Arc<Mutex<Inner>>,
    revoked: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Registry {
    /// The register in the agent folder `dir` (empty when it has none yet).
    pub fn open(dir: &Path, clock: Arc<dyn Clock>, heartbeat_ms: i64) -> Result<Registry, String> {
        super::private_dir(dir)?;
        let file = dir.join("registry.json");
        let agents: Vec<AgentRecord> = match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| format!("{}: not an agent register: {e}", file.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(format!("cannot read {}: {e}", file.display())),
        };
        Ok(Registry {
            file,
            clock,
            heartbeat_ms,
            inner: Arc::new(Mutex::new(Inner {
                agents: agents.into_iter().map(|a| (a.id.clone(), a)).collect(),
                live: BTreeMap::new(),
            })),
            revoked: Arc::new(tokio::sync::watch::channel(0).0),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn save(&self, inner: &Inner) -> Result<(), String> {
        let list: Vec<&AgentRecord> = inner.agents.values().collect();
        let json = serde_json::to_vec_pretty(&list).map_err(|e| format!("agent register: {e}"))?;
        write_private(&self.file, &json)
    }

    /// The clock's time.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Adds a newly enrolled agent.
    pub fn add(&self, record: AgentRecord) -> Result<(), String> {
        let mut inner = self.lock();
        inner.agents.insert(record.id.clone(), record);
        self.save(&inner)
    }

    /// The agent whose certificate has this fingerprint, if it is enrolled and not revoked.
    pub fn trusted(&self, fingerprint: &str) -> Option<AgentRecord> {
        self.lock()
            .agents
            .values()
            .find(|a| a.fingerprint == fingerprint && a.revoked.is_none())
            .cloned()
    }

    /// Revokes an agent: its certificate is refused from the next handshake on and its
    /// open connection is closed.
    pub fn revoke(&self, id: &str, who: &str) -> Result<(), String> {
        let mut inner = self.lock();
        let now = self.clock.now_ms();
        let Some(a) = inner.agents.get_mut(id) else {
            return Err(format!("there is no agent {id:?}"));
        };
        if a.revoked.is_some() {
            return Err(format!("agent {id} was already revoked"));
        }
        a.revoked = Some((now, who.to_string()));
        inner.live.remove(id);
        self.save(&inner)?;
        drop(inner);
        self.revoked.send_modify(|n| *n += 1);
        tracing::warn!(agent = id, by = who, "agent revoked");
        Ok(())
    }

    /// A receiver that changes whenever an agent is revoked.
    pub fn revocations(&self) -> tokio::sync::watch::Receiver<u64> {
        self.revoked.subscribe()
    }

    /// Records a hello: the agent is connected from `address` with `version`.
    pub fn connected(&self, id: &str, version: &str, address: &str) {
        let now = self.clock.now_ms();
        self.lock().live.insert(
            id.to_string(),
            Live {
                version: version.to_string(),
                address: address.to_string(),
                connected_ms: now,
                heartbeat_ms: now,
                jobs: BTreeMap::new(),
            },
        );
    }

    /// Records a heartbeat; false when the agent has no connection on record (it must say
    /// hello again).
    pub fn heartbeat(&self, id: &str) -> bool {
        let now = self.clock.now_ms();
        match self.lock().live.get_mut(id) {
            Some(l) => {
                l.heartbeat_ms = now;
                true
            }
            None => false,
        }
    }

    /// Records that an agent took job `job`, described as `what`.
    pub fn job_started(&self, id: &str, job: u64, what: String) {
        if let Some(l) = self.lock().live.get_mut(id) {
            l.jobs.insert(job, what);
        }
    }

    /// Records that an agent finished job `job`.
    pub fn job_ended(&self, id: &str, job: u64) {
        if let Some(l) = self.lock().live.get_mut(id) {
            l.jobs.remove(&job);
        }
    }

    /// Records that a connection ended, unless a newer one replaced it.
    pub fn disconnected(&self, id: &str, connected_ms: i64) {
        let mut inner = self.lock();
        if inner
            .live
            .get(id)
            .is_some_and(|l| l.connected_ms == connected_ms)
        {
            inner.live.remove(id);
        }
    }

    /// The live record of an agent.
    pub fn live(&self, id: &str) -> Option<Live> {
        self.lock().live.get(id).cloned()
    }

    /// Every enrolled agent, for the status page.
    pub fn list(&self) -> Vec<AgentView> {
        let now = self.clock.now_ms();
        let inner = self.lock();
        inner
            .agents
            .values()
            .map(|a| {
                let live = inner.live.get(&a.id);
                let state = match (&a.revoked, live) {
                    (Some(_), _) => "revoked",
                    (None, Some(l)) if now - l.heartbeat_ms > 3 * self.heartbeat_ms => "lost",
                    (None, Some(_)) => "connected",
                    (None, None) => "offline",
                };
                AgentView {
                    id: a.id.clone(),
                    group: a.group.clone(),
                    host: a.host.clone(),
                    state,
                    version: live.map(|l| l.version.clone()),
                    address: live.map(|l| l.address.clone()),
                    connected_ms: live.map(|l| l.connected_ms),
                    heartbeat_ms: live.map(|l| l.heartbeat_ms),
                    job: live
                        .filter(|l| !l.jobs.is_empty())
                        .map(|l| l.jobs.values().cloned().collect::<Vec<_>>().join(", ")),
                    enrolled_ms: a.enrolled_ms,
                    revoked_ms: a.revoked.as_ref().map(|r| r.0),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::FixedClock;

    fn record(id: &str) -> AgentRecord {
        AgentRecord {
            id: id.into(),
            group: "fab".into(),
            fingerprint: format!("FP-{id}"),
            host: "h".into(),
            enrolled_ms: 1,
            revoked: None,
        }
    }

    #[test]
    fn enrolled_agents_are_kept_and_revocation_is_final() {
        let d = tempfile::tempdir().unwrap();
        let clock = Arc::new(FixedClock::at(10_000));
        let r = Registry::open(d.path(), clock.clone(), 1_000).unwrap();
        r.add(record("a1")).unwrap();
        r.add(record("a2")).unwrap();
        assert_eq!(r.trusted("FP-a1").unwrap().id, "a1");
        assert!(r.trusted("FP-zz").is_none());
        r.connected("a1", "0.1.0", "127.0.0.1:5000");
        let rx = r.revocations();
        r.revoke("a1", "admin").unwrap();
        assert!(rx.has_changed().unwrap());
        assert!(r.revoke("a1", "admin").is_err());
        assert!(r.revoke("nobody", "admin").is_err());
        assert!(r.trusted("FP-a1").is_none());
        assert!(!r.heartbeat("a1"));
        // Kept across a restart.
        let again = Registry::open(d.path(), clock, 1_000).unwrap();
        assert!(again.trusted("FP-a1").is_none());
        assert!(again.trusted("FP-a2").is_some());
        let states: Vec<_> = again
            .list()
            .iter()
            .map(|v| (v.id.clone(), v.state))
            .collect();
        assert_eq!(states, [("a1".into(), "revoked"), ("a2".into(), "offline")]);
    }

    #[test]
    fn an_agent_without_heartbeats_is_lost() {
        let d = tempfile::tempdir().unwrap();
        let clock = Arc::new(FixedClock::at(10_000));
        let r = Registry::open(d.path(), clock.clone(), 1_000).unwrap();
        r.add(record("a1")).unwrap();
        r.connected("a1", "0.1.0", "127.0.0.1:5000");
        assert_eq!(r.list()[0].state, "connected");
        clock.advance(3_500);
        assert_eq!(r.list()[0].state, "lost");
        assert!(r.heartbeat("a1"));
        assert_eq!(r.list()[0].state, "connected");
        let since = r.live("a1").unwrap().connected_ms;
        r.disconnected("a1", since);
        assert_eq!(r.list()[0].state, "offline");
    }
}
