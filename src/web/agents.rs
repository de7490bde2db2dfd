//! The Agents page's data and its one action, revocation (a POST behind the same session,
//! CSRF and Origin checks as every other action).

use super::App;
use crate::agent::registry::AgentView;

impl App {
    /// The enrolled agents (empty without a listener).
    pub(super) fn agents_list(&self) -> Vec<AgentView> {
        self.agents.as_ref().map(|r| r.list()).unwrap_or_default()
    }

    /// Revokes an agent: (status, text) as the other actions answer.
    pub(super) fn revoke_agent(&self, id: &str, who: &str) -> (u16, String) {
        let Some(registry) = &self.agents else {
            return (
                409,
                "no [agents] table in the config: there is no agent".into(),
            );
        };
        if id.is_empty() {
            return (400, "name the agent to revoke".into());
        }
        match registry.revoke(id, who) {
            Ok(()) => (
                200,
                format!("agent {id} revoked: its certificate is refused from now on"),
            ),
            Err(e) => (409, e),
        }
    }
}
