//! Taking a new config while `run` goes on (SIGHUP): the file was read and checked by the
//! caller; here the runner swaps it in between cycles, or refuses what needs a restart.

use std::sync::Arc;

use super::{Derived, Runner};
use crate::config::Config;

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
