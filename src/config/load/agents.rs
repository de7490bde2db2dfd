//! Checks the `[agents]` table: where lightweight agents connect, the names the listener's
//! certificate carries, how long an enrolment token lives and the heartbeat.

use std::net::SocketAddr;

use super::*;
use crate::config::AgentsConfig;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "an [agents] table")]
pub(super) struct RawAgents {
    pub(super) listen: Option<Spanned<String>>,
    pub(super) names: Option<Vec<Spanned<String>>>,
    pub(super) token_lifetime: Option<Spanned<String>>,
    pub(super) heartbeat: Option<Spanned<String>>,
}

/// Reads a duration key within bounds, reporting a value outside them.
fn bounded(
    ctx: &mut Ctx<'_>,
    v: &Spanned<String>,
    key: &str,
    min: Duration,
    max: Duration,
    hint: &str,
) -> Option<Duration> {
    match parse_interval(v.get_ref()) {
        Some(d) if d >= min && d <= max => Some(d),
        _ => {
            ctx.report(
                v.span().start,
                key,
                format!("expected {hint}, found {:?}", v.get_ref()),
            );
            None
        }
    }
}

/// The `[agents]` table as an [`AgentsConfig`]; None only after reporting why.
pub(super) fn check_agents(ctx: &mut Ctx<'_>, table: &Spanned<RawAgents>) -> Option<AgentsConfig> {
    let raw = table.get_ref();
    let mut agents = AgentsConfig::default();
    let mut ok = true;
    if let Some(v) = &raw.listen {
        match v.get_ref().parse::<SocketAddr>() {
            Ok(addr) => agents.listen = addr,
            Err(_) => {
                ctx.report(
                    v.span().start,
                    "agents.listen",
                    format!(
                        "expected an address and port like \"0.0.0.0:8444\" or \"[::]:8444\" \
                         (port 0 picks a free one), found {:?}",
                        v.get_ref()
                    ),
                );
                ok = false;
            }
        }
    }
    for (i, n) in raw.names.iter().flatten().enumerate() {
        let name = n.get_ref().trim();
        let fits = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '*'));
        if fits {
            agents.names.push(name.to_string());
        } else {
            ctx.report(
                n.span().start,
                &format!("agents.names[{i}]"),
                format!(
                    "expected a DNS name or IP address agents use for the appliance, found {:?}",
                    n.get_ref()
                ),
            );
            ok = false;
        }
    }
    if let Some(v) = &raw.token_lifetime {
        match bounded(
            ctx,
            v,
            "agents.token_lifetime",
            Duration::from_secs(1),
            Duration::from_secs(24 * 3600),
            "a duration between 1s and 24h like \"15m\"",
        ) {
            Some(d) => agents.token_lifetime = d,
            None => ok = false,
        }
    }
    if let Some(v) = &raw.heartbeat {
        match bounded(
            ctx,
            v,
            "agents.heartbeat",
            Duration::from_secs(1),
            Duration::from_secs(300),
            "a duration between 1s and 5m like \"10s\"",
        ) {
            Some(d) => agents.heartbeat = d,
            None => ok = false,
        }
    }
    ok.then_some(agents)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::config::ConnectorKind;

    fn parse(extra: &str) -> Result<Config, ConfigError> {
        let text = format!("state_file = \"s.redb\"\n{extra}");
        Config::parse(&text, Path::new("/etc/bh/bridgehead.toml"))
    }

    #[test]
    fn no_agents_table_means_no_listener() {
        assert!(parse("").unwrap().agents.is_none());
    }

    #[test]
    fn an_empty_table_takes_the_defaults() {
        let a = parse("[agents]\n").unwrap().agents.unwrap();
        assert_eq!(a, AgentsConfig::default());
        assert_eq!(a.listen.port(), 8444);
    }

    #[test]
    fn a_full_table() {
        let a = parse(
            "[agents]\nlisten = \"[::1]:0\"\nnames = [\"bh.example.com\", \"169.254.7.1\"]\n\
             token_lifetime = \"2m\"\nheartbeat = \"3s\"\n",
        )
        .unwrap()
        .agents
        .unwrap();
        assert_eq!(a.listen.to_string(), "[::1]:0");
        assert_eq!(a.names, ["bh.example.com", "169.254.7.1"]);
        assert_eq!(a.token_lifetime, Duration::from_secs(120));
        assert_eq!(a.heartbeat, Duration::from_secs(3));
    }

    fn ldap(extra: &str, pw: &std::path::Path) -> String {
        format!(
            "[[connector]]\nname = \"fab\"\ntype = \"ad\"\nurl = \"ldaps://dc.fab.example\"\n\
             bind_dn = \"sync@fab.example\"\nbind_password_file = {:?}\n\
             base_dn = \"DC=fab,DC=example\"\n{extra}",
            pw.display().to_string()
        )
    }

    #[test]
    fn agent_group_on_directory_connectors_only() {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "secret\n").unwrap();
        let c = parse(&ldap("agent_group = \"fab\"\n", &pw)).unwrap();
        assert_eq!(c.connectors[0].agent_group.as_deref(), Some("fab"));
        assert!(
            parse(&ldap("", &pw)).unwrap().connectors[0]
                .agent_group
                .is_none()
        );
        let e = parse(&ldap("agent_group = \"a b\"\n", &pw))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("agent_group: expected an agent group name"),
            "{e}"
        );
        let c = parse(&ldap("agent_group = \"fab\"\nwatch = true\n", &pw)).unwrap();
        assert_eq!(c.connectors[0].agent_group.as_deref(), Some("fab"));
        let e = parse(
            "[[connector]]\nname = \"f\"\ntype = \"ldif\"\nmode = \"source\"\npath = \"f.ldif\"\n\
             anchor = \"uid\"\nagent_group = \"fab\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("only ad and ldap connectors run through agents"),
            "{e}"
        );
    }

    #[test]
    fn a_password_file_on_the_agents_host() {
        let agent_only = "[[connector]]\nname = \"fab\"\ntype = \"ad\"\nurl = \"ldaps://dc.fab.example\"\n\
             bind_dn = \"sync@fab.example\"\nbase_dn = \"DC=fab,DC=example\"\n";
        // The appliance reads no password: the file is on the agents' hosts only.
        let c = parse(&format!(
            "{agent_only}agent_group = \"fab\"\nagent_bind_password_file = \"/etc/bh-agent/fab.pw\"\n"
        ))
        .unwrap();
        let ConnectorKind::Ldap(l) = &c.connectors[0].kind else {
            panic!("an ldap connector");
        };
        assert_eq!(
            l.agent_password_file.as_deref(),
            Some(Path::new("/etc/bh-agent/fab.pw"))
        );
        assert_eq!(l.bind_password.expose(), "");
        let e = parse(&format!(
            "{agent_only}agent_bind_password_file = \"/etc/bh-agent/fab.pw\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("only for a connector with agent_group"), "{e}");
        let e = parse(&format!(
            "{agent_only}agent_group = \"fab\"\nagent_bind_password_file = \"fab.pw\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("absolute path"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "x").unwrap();
        let e = parse(&ldap(
            "agent_group = \"fab\"\nagent_bind_password_file = \"/x\"\n",
            &pw,
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("not both"), "{e}");
    }

    #[test]
    fn bad_values_are_reported_each_at_its_place() {
        let e = parse(
            "[agents]\nlisten = \"nowhere\"\nnames = [\"a b\"]\ntoken_lifetime = \"3d\"\n\
             heartbeat = \"0s\"\n",
        )
        .unwrap_err()
        .to_string();
        for key in [
            ":3:10: agents.listen",
            ":4:10: agents.names[0]",
            ":5:18: agents.token_lifetime",
            ":6:13: agents.heartbeat",
        ] {
            assert!(e.contains(key), "{key} in {e}");
        }
    }
}
