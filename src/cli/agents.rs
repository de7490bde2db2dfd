//! Wiring for lightweight agents: `bridgehead agent-token`, `bridgehead agent` (enrol, or
//! run until SIGTERM), and the appliance's agent listener started beside the scheduler.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::{exit, load_config};
use crate::agent::ca::AgentCa;
use crate::agent::client::{self, Server};
use crate::agent::jobs::Jobs;
use crate::agent::protocol::Appliance;
use crate::agent::registry::Registry;
use crate::agent::remote::RemoteConnector;
use crate::agent::{appliance_dir, listener, tokens};
use crate::config::{Config, ConnectorKind};
use crate::model::{Clock, SystemClock};
use crate::runner::{Runner, Shutdown};

/// `bridgehead agent-token --group G`: prints a one-time enrolment token and how to use it.
pub(super) fn token(config_path: &Path, group: &str, valid: Option<&str>) -> u8 {
    let _guard = super::init_logging(None);
    let config = match load_config(config_path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(agents) = &config.agents else {
        eprintln!(
            "error: {}: no [agents] table, so no agent can connect; add one (see the README, \
             Agents)",
            config_path.display()
        );
        return exit::CONFIG;
    };
    let lifetime = match valid {
        None => agents.token_lifetime,
        Some(v) => match crate::config::parse_duration(v) {
            Some(d) if d >= Duration::from_secs(1) && d <= Duration::from_secs(24 * 3600) => d,
            _ => {
                eprintln!(
                    "error: --valid {v:?}: expected a duration between 1s and 24h like \"15m\""
                );
                return exit::CONFIG;
            }
        },
    };
    let dir = appliance_dir(&config.state_file);
    let ca = match AgentCa::load_or_create(&dir) {
        Ok(ca) => ca,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::OBJECT_ERRORS;
        }
    };
    let now = SystemClock.now_ms();
    match tokens::create(&dir, group, now, lifetime.as_millis() as i64) {
        Ok(token) => {
            out!("{token}");
            eprintln!(
                "one-time token for group {group}, valid for {} s; on the agent's host run:\n  \
                 bridgehead agent --enroll {token} --server https://APPLIANCE:{} \
                 --ca-fingerprint {}",
                lifetime.as_secs(),
                agents.listen.port(),
                ca.fingerprint()
            );
            exit::OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::CONFIG
        }
    }
}

/// What `bridgehead agent` was asked to do.
pub(super) struct AgentArgs {
    /// The agent's folder.
    pub dir: std::path::PathBuf,
    /// Enrol with this token, then exit.
    pub enroll: Option<String>,
    /// The appliance, for enrolment.
    pub server: Option<String>,
    /// The agent CA's fingerprint, for enrolment.
    pub ca_fingerprint: Option<String>,
}

/// `bridgehead agent`: enrols (with `--enroll`) or runs until SIGTERM.
pub(super) fn agent(args: AgentArgs) -> u8 {
    let _guard = super::init_logging(None);
    let Ok(rt) = super::runtime() else {
        return exit::OBJECT_ERRORS;
    };
    if let Some(token) = &args.enroll {
        let (Some(server), Some(fp)) = (&args.server, &args.ca_fingerprint) else {
            eprintln!(
                "error: --enroll needs --server https://APPLIANCE:8444 and --ca-fingerprint SHA256"
            );
            return exit::CONFIG;
        };
        let server = match Server::parse(server) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return exit::CONFIG;
            }
        };
        return match rt.block_on(client::enroll(&args.dir, &server, token, fp)) {
            Ok(e) => {
                out!("enrolled as {} in group {}", e.id, e.group);
                exit::OK
            }
            Err(e) => {
                eprintln!("error: {e}");
                exit::CONFIG
            }
        };
    }
    let shutdown = Shutdown::default();
    super::shutdown_on_signals(&rt, &shutdown);
    let stop = shutdown.clone();
    match rt.block_on(client::run(&args.dir, move || stop.requested())) {
        Ok(()) => {
            tracing::info!("agent stopped");
            exit::OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            tracing::error!("{e}");
            exit::CONFIG
        }
    }
}

/// Starts the agent listener on `rt` when the config has `[agents]`, and gives the runner
/// a remote connector for each connector with `agent_group`; returns the register the
/// status page shows. A failure is logged and the sync goes on without agents (their
/// connectors then fail as unreachable, never contacted directly).
pub(super) fn start_listener(
    rt: &tokio::runtime::Runtime,
    config: &Config,
    runner: &mut Runner,
    clock: Arc<dyn Clock>,
    shutdown: &Shutdown,
) -> Option<Registry> {
    let cfg = config.agents.as_ref()?;
    let dir = appliance_dir(&config.state_file);
    let heartbeat_ms = cfg.heartbeat.as_millis() as u64;
    let started = AgentCa::load_or_create(&dir).and_then(|ca| {
        let registry = Registry::open(&dir, clock, heartbeat_ms as i64)?;
        Ok((ca, registry))
    });
    let (ca, registry) = match started {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("agent listener: {e}; no agent can connect");
            return None;
        }
    };
    let fingerprint = ca.fingerprint();
    let jobs = Jobs::default();
    let appliance = Appliance {
        dir,
        ca: Arc::new(ca),
        registry: registry.clone(),
        heartbeat_ms,
        jobs: jobs.clone(),
    };
    match rt.block_on(listener::bind(cfg, appliance)) {
        Ok(bound) => {
            tracing::info!(address = %bound.addr, ca_sha256 = %fingerprint, "agent listener ready");
            let stop = shutdown.clone();
            rt.spawn(bound.serve(move || stop.requested()));
            // Built again after a reload, so that a SIGHUP keeps them running through agents.
            let remote: crate::runner::SpecialConnectors =
                Arc::new(move |c| match (&c.agent_group, &c.kind) {
                    (Some(group), ConnectorKind::Ldap(l)) => Some(Box::new(RemoteConnector::new(
                        c.name.clone(),
                        group.clone(),
                        (**l).clone(),
                        jobs.clone(),
                    ))
                        as Box<dyn crate::connector::Connector>),
                    _ => None,
                });
            for name in runner.use_special_connectors(remote) {
                tracing::info!(connector = %name, "connector runs through agents");
            }
            Some(registry)
        }
        Err(e) => {
            tracing::error!("agent listener: {e}; no agent can connect");
            None
        }
    }
}
