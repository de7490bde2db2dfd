//! The HTTPS status page, its JSON API and `/metrics`.
//!
//! Reads the state file only through read snapshots of its own read-only handle, so a page
//! never holds a write transaction and never waits for a cycle; everything that changes
//! state (a cycle now, approving deletes, leaving staging, a new admin password) is a
//! request to the runner through a [`RunnerHandle`]. Never calls the sync engine.
//!
//! - [`app`]: authentication, CSRF, routing, pages, API and actions (no sockets).
//! - [`server`]: hyper over rustls; [`tls`]: the certificate.
//! - [`views`], [`objects`], [`system`], [`metrics`]: what the pages show; [`pages`]: the
//!   templates.
//! - [`auth`], [`password`]: the admin password, sessions, and its files; [`throttle`]:
//!   login throttling that cannot lock the owner out; [`quiet_log`]: summarised logging
//!   of repeated events.

pub mod app;
pub mod auth;
pub mod http;
mod limits;
mod metrics;
pub mod objects;
mod pages;
pub mod password;
mod pending;
mod pictures;
mod process;
pub mod quiet_log;
mod server;
mod system;
pub mod throttle;
pub mod tls;
pub mod views;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::agent::registry::Registry;
use crate::config::Config;
use crate::model::Clock;
use crate::runner::Shutdown;
use crate::runner::handle::{Answer, Request, RunnerHandle};
use crate::store::Store;

/// A bound status page, before it serves.
pub struct Bound {
    /// `https://ADDR:PORT/` as bound (the real port when 0 was configured).
    pub url: String,
    /// SHA-256 fingerprint of the certificate.
    pub fingerprint: String,
    /// The certificate file.
    pub certificate: PathBuf,
    /// Whether the certificate was generated on this start.
    pub generated: bool,
}

/// Why the status page could not start.
#[derive(Debug, thiserror::Error)]
#[error("status page: {0}")]
pub struct WebError(String);

/// Loads the certificate, opens the state file read-only and binds the listener; returns
/// what to announce and the server future (serving until `shutdown`).
pub async fn bind(
    config: &Config,
    handle: RunnerHandle,
    clock: Arc<dyn Clock>,
    shutdown: Shutdown,
) -> Result<(Bound, impl Future<Output = ()> + use<>), WebError> {
    bind_with_agents(config, handle, clock, shutdown, None).await
}

/// [`bind`], with the register of agents the Agents page lists and revokes.
pub async fn bind_with_agents(
    config: &Config,
    handle: RunnerHandle,
    clock: Arc<dyn Clock>,
    shutdown: Shutdown,
    agents: Option<Registry>,
) -> Result<(Bound, impl Future<Output = ()> + use<>), WebError> {
    let web = &config.web;
    let tls = tls::load(web.tls.as_ref(), &config.state_file, web.listen).map_err(WebError)?;
    let store = Store::open_read_only(&config.state_file)
        .map_err(|e| WebError(format!("cannot read the state file: {e}")))?;
    let listener = tokio::net::TcpListener::bind(web.listen)
        .await
        .map_err(|e| {
            WebError(format!(
                "cannot listen on {}: {e} (set [web] listen)",
                web.listen
            ))
        })?;
    let addr = listener
        .local_addr()
        .map_err(|e| WebError(format!("cannot read the bound address: {e}")))?;
    let certificate = if tls.generated || web.tls.is_none() {
        format!(
            "self-signed {} (SHA-256 {})",
            tls.files.certificate.display(),
            tls.fingerprint
        )
    } else {
        format!(
            "{} (SHA-256 {})",
            tls.files.certificate.display(),
            tls.fingerprint
        )
    };
    let app = Arc::new(
        app::App::new(config.clone(), store, handle.clone(), clock, certificate)
            .with_agents(agents),
    );
    let bound = Bound {
        url: format!("https://{addr}/"),
        fingerprint: tls.fingerprint.clone(),
        certificate: tls.files.certificate.clone(),
        generated: tls.generated,
    };
    let state_file = config.state_file.clone();
    let watcher_app = Arc::clone(&app);
    let stop = shutdown.clone();
    let serve = async move {
        let requests = watch_password_requests(state_file, handle, watcher_app, stop);
        tokio::join!(server::serve(listener, tls.server, app, shutdown), requests);
    };
    Ok((bound, serve))
}

/// Picks up `bridgehead passwd`'s request file and has the runner store the hash.
async fn watch_password_requests(
    state_file: PathBuf,
    handle: RunnerHandle,
    app: Arc<app::App>,
    shutdown: Shutdown,
) {
    while !shutdown.requested() {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let Some(found) = password::read_request(&state_file) else {
            continue;
        };
        let phc = match found {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("{e}");
                continue;
            }
        };
        let h = handle.clone();
        let asked = tokio::task::spawn_blocking(move || {
            h.ask_blocking(
                Request::SetAdminPassword {
                    phc,
                    who: "bridgehead passwd".into(),
                },
                Duration::from_secs(3600),
            )
        })
        .await;
        match asked {
            Ok(Answer::Done(Ok(_))) => {
                password::request_done(&state_file);
                app.logout_all();
            }
            Ok(Answer::Done(Err(e))) => tracing::error!("cannot store the new admin password: {e}"),
            Ok(Answer::Queued) => {}
            Ok(Answer::Stopped) | Err(_) => return,
        }
    }
}
