//! A connector that agents serve (`agent_group`), as any process but the daemon sees it:
//! the appliance never contacts that directory itself, so every operation is refused as
//! unreachable, naming the group. `bridgehead run` replaces it with the remote connector
//! that sends the work to an agent of the group.

use super::{Connector, ConnectorError, ConnectorErrorKind, ImportEnd, ImportSink, SpaceView};
use crate::model::{ConnectorName, ExportItem, ExportOutcome, Watermark};

/// The placeholder for a connector run by agents.
pub struct AgentServed {
    name: ConnectorName,
    group: String,
}

impl AgentServed {
    /// For connector `name`, served by agents of `group`.
    pub fn new(name: ConnectorName, group: String) -> AgentServed {
        AgentServed { name, group }
    }

    fn refuse(&self) -> ConnectorError {
        ConnectorError {
            connector: self.name.clone(),
            kind: ConnectorErrorKind::Unreachable,
            message: format!(
                "this directory is reached only through agents of group {:?}; only `bridgehead \
                 run` with an [agents] table sends them work",
                self.group
            ),
        }
    }
}

impl Connector for AgentServed {
    fn name(&self) -> &ConnectorName {
        &self.name
    }

    fn check(&mut self) -> Result<(), ConnectorError> {
        Err(self.refuse())
    }

    fn import(
        &mut self,
        _watermark: Option<&Watermark>,
        _full: bool,
        _sink: &mut dyn ImportSink,
    ) -> Result<ImportEnd, ConnectorError> {
        Err(self.refuse())
    }

    fn export(&mut self, _items: &[ExportItem]) -> Result<Vec<ExportOutcome>, ConnectorError> {
        Err(self.refuse())
    }

    fn finish_export(
        &mut self,
        _space: &dyn SpaceView,
    ) -> Result<Option<Watermark>, ConnectorError> {
        Err(self.refuse())
    }
}
