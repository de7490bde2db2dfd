//! Taking a new config while `run` goes on (SIGHUP): the file was read and checked by the
//! caller; here the runner swaps it in between cycles, or refuses what needs a restart.

use std::collections::HashMap;
use std::sync::Arc;

use super::Runner;
use crate::config::Config;
use crate::connector::{self, Connector};
use crate::model::{AttrName, ConnectorName, Dn};

/// A config read and checked from its file, for the runner to take between cycles.
#[derive(Clone, Debug)]
pub struct NewConfig(pub Arc<Config>);

// Requests compare by identity: two reloads are the same only if they carry the same file read.
impl PartialEq for NewConfig {
    fn eq(&self, other: &NewConfig) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for NewConfig {}

/// What the runner builds from its config: the connectors and the per-connector lookups.
pub(super) struct Derived {
    pub(super) connectors: Vec<Box<dyn Connector>>,
    pub(super) partitions: HashMap<ConnectorName, Vec<Dn>>,
    pub(super) unique: HashMap<ConnectorName, Vec<AttrName>>,
    pub(super) write_only: HashMap<ConnectorName, Vec<AttrName>>,
}

impl Derived {
    pub(super) fn of(config: &Config) -> Derived {
        let connectors = config.connectors.iter().map(connector::build).collect();
        let partitions = config
            .connectors
            .iter()
            .map(|c| {
                let parts = match &c.kind {
                    crate::config::ConnectorKind::Ldif(l) => l.partitions.clone(),
                    crate::config::ConnectorKind::Ldap(l) => vec![l.base_dn.clone()],
                    crate::config::ConnectorKind::Scim(_)
                    | crate::config::ConnectorKind::Graph(_) => Vec::new(),
                };
                (c.name.clone(), parts)
            })
            .collect();
        let unique = config
            .connectors
            .iter()
            .map(|c| (c.name.clone(), c.unique_attributes.clone()))
            .collect();
        let mut write_only: HashMap<ConnectorName, Vec<AttrName>> = HashMap::new();
        for r in &config.rules.outbound {
            for f in r.flows.iter().filter(|f| f.apply_once) {
                write_only
                    .entry(r.connector.clone())
                    .or_default()
                    .push(f.target.clone());
            }
        }
        Derived {
            connectors,
            partitions,
            unique,
            write_only,
        }
    }
}

impl Runner {
    /// Takes `new` for the next cycle: connectors, rules, schedule and staging. A different
    /// state file is refused (the open store is this one); status-page settings are kept
    /// until a restart, with a warning.
    pub fn reload(&mut self, new: &Config) -> Result<String, String> {
        if new.state_file != self.config.state_file {
            return Err(format!(
                "state_file changed from {} to {}: that needs a restart; the running config stays",
                self.config.state_file.display(),
                new.state_file.display()
            ));
        }
        let (old_web, new_web) = (&self.config.web, &new.web);
        if old_web.enabled != new_web.enabled
            || old_web.listen != new_web.listen
            || old_web.tls != new_web.tls
            || old_web.session_idle != new_web.session_idle
        {
            tracing::warn!(
                "the [web] settings changed; the status page keeps its current ones until a restart"
            );
        }
        let Derived {
            connectors,
            partitions,
            unique,
            write_only,
        } = Derived::of(new);
        // The old connectors own runtimes of their own; they go down here, on the blocking
        // thread the scheduler runs requests on.
        drop(std::mem::replace(&mut self.connectors, connectors));
        self.partitions = partitions;
        self.unique = unique;
        self.write_only = write_only;
        self.config = new.clone();
        if let Some(special) = self.special.clone() {
            self.use_special_connectors(special);
        }
        // A staging mode left at run time stays left; the live status shows the new value.
        self.apply_staging_override();
        if let Some(live) = &self.live {
            live.set_staging(self.config.staging);
        }
        Ok(format!(
            "config reloaded: {} connectors, {} inbound and {} outbound rules; the next cycle uses it",
            self.config.connectors.len(),
            self.config.rules.inbound.len(),
            self.config.rules.outbound.len()
        ))
    }
}
