//! Wiring for the status page: starting it beside the scheduler (with the first-start
//! admin password), and `bridgehead passwd`.

use std::io::BufRead as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{exit, load_config};
use crate::config::Config;
use crate::model::{Clock, SystemClock};
use crate::runner::handle::RunnerHandle;
use crate::runner::{Runner, Shutdown};
use crate::store::admin::AdminPasswordRecord;
use crate::store::{Store, StoreError};
use crate::web;

fn store_hash(store: &Store, phc: String, who: &str) -> Result<(), StoreError> {
    let tx = store.write()?;
    tx.set_admin_password(&AdminPasswordRecord {
        phc,
        set_ms: SystemClock.now_ms(),
        set_by: who.into(),
    })?;
    tx.commit()
}

/// Makes sure an admin password exists: a waiting `passwd` request first, else a generated
/// one on first start. Returns the generated password's file, if one exists.
fn ensure_password(runner: &Runner, state: &Path) -> Option<std::path::PathBuf> {
    let store = runner.store();
    if let Some(Ok(phc)) = web::password::read_request(state) {
        match store_hash(store, phc, "bridgehead passwd") {
            Ok(()) => {
                web::password::request_done(state);
                tracing::info!("admin password set from `bridgehead passwd`");
            }
            Err(e) => tracing::error!("cannot store the requested admin password: {e}"),
        }
    }
    let file = web::password::password_file(state);
    match store.read().and_then(|tx| tx.admin_password()) {
        Ok(Some(_)) => file.exists().then_some(file),
        Ok(None) => match web::password::first_start(state) {
            Ok((phc, file)) => match store_hash(store, phc, "first start") {
                Ok(()) => {
                    tracing::warn!(
                        file = %file.display(),
                        "no admin password was set: generated one and wrote it to this file (readable by this user only); change it with `bridgehead passwd`"
                    );
                    Some(file)
                }
                Err(e) => {
                    tracing::error!("cannot store the generated admin password: {e}");
                    None
                }
            },
            Err(e) => {
                tracing::error!("cannot generate an admin password: {e}");
                None
            }
        },
        Err(e) => {
            tracing::error!("cannot read the admin password: {e}");
            None
        }
    }
}

/// Starts the status page on `rt`; a failure is logged and the sync goes on without it.
#[allow(clippy::too_many_arguments)] // the daemon's parts, each handed over once here
pub(super) fn start(
    rt: &tokio::runtime::Runtime,
    config: &Config,
    runner: &Runner,
    handle: RunnerHandle,
    clock: Arc<dyn Clock>,
    shutdown: &Shutdown,
    announce: bool,
    agents: Option<crate::agent::registry::Registry>,
) -> Option<tokio::task::JoinHandle<()>> {
    let password_file = ensure_password(runner, &config.state_file);
    match rt.block_on(web::bind_with_agents(
        config,
        handle,
        clock,
        shutdown.clone(),
        agents,
    )) {
        Ok((bound, serve)) => {
            tracing::info!(
                url = %bound.url,
                certificate = %bound.certificate.display(),
                sha256 = %bound.fingerprint,
                generated = bound.generated,
                "status page listening"
            );
            if announce {
                out!("status page:   {}  (user admin)", bound.url);
                match &password_file {
                    Some(f) => out!("password:      in {}", f.display()),
                    None => out!("password:      as set with `bridgehead passwd`"),
                }
                out!(
                    "certificate:   {} (self-signed unless configured), SHA-256 {}",
                    bound.certificate.display(),
                    bound.fingerprint
                );
            }
            Some(rt.spawn(serve))
        }
        Err(e) => {
            tracing::error!("{e}; the sync runs on without the status page");
            if announce {
                out!("status page:   not available ({e})");
            }
            None
        }
    }
}

/// Reads the new password: generated, prompted twice on a terminal, or one line of stdin.
fn new_password(state: &Path, generate: bool) -> Result<(String, Option<String>), String> {
    if generate {
        let pw = web::auth::generate_password()?;
        return Ok((pw.clone(), Some(pw)));
    }
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        let a = rpassword::prompt_password(format!(
            "new admin password for {} (at least {} characters): ",
            state.display(),
            web::auth::MIN_PASSWORD_LEN
        ))
        .map_err(|e| format!("cannot read the password: {e}"))?;
        let b = rpassword::prompt_password("again: ")
            .map_err(|e| format!("cannot read the password: {e}"))?;
        if a != b {
            return Err("the two passwords differ".into());
        }
        return Ok((a, None));
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
    Ok((line.trim_end_matches(['\r', '\n']).to_string(), None))
}

/// `bridgehead passwd`: stores the hash directly, or hands it to the running daemon.
pub(super) fn passwd(config_path: &Path, generate: bool) -> u8 {
    let _guard = super::init_logging(None);
    let config = match load_config(config_path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let state = &config.state_file;
    let (password, generated) = match new_password(state, generate) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::CONFIG;
        }
    };
    let phc = match web::auth::hash_password(&password) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::CONFIG;
        }
    };
    if let Some(pw) = generated {
        let file = web::password::password_file(state);
        let written = std::fs::remove_file(&file)
            .or_else(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Ok(()),
                _ => Err(e),
            })
            .map_err(|e| e.to_string())
            .and_then(|()| write_new_private(&file, &pw));
        if let Err(e) = written {
            eprintln!("error: cannot write {}: {e}", file.display());
            return exit::OBJECT_ERRORS;
        }
        out!("new password written to {}", file.display());
    }
    match Store::open(state) {
        Ok(store) => match store_hash(&store, phc, "bridgehead passwd") {
            Ok(()) => {
                out!("admin password set in {}", state.display());
                exit::OK
            }
            Err(e) => {
                eprintln!("error: {e}");
                exit::OBJECT_ERRORS
            }
        },
        Err(StoreError::InUse(_)) => {
            // The daemon is the only writer: leave the hash for it and wait for it to take it.
            let file = match web::password::write_request(state, &phc) {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("error: {e}");
                    return exit::OBJECT_ERRORS;
                }
            };
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(15) {
                if !file.exists() {
                    out!(
                        "the running daemon took the new admin password; its sessions were logged out"
                    );
                    return exit::OK;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            out!(
                "the running daemon is busy (a cycle?); it takes the new password from {} when the cycle ends",
                file.display()
            );
            exit::OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::CONFIG
        }
    }
}

fn write_new_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write as _;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)
        .and_then(|mut f| {
            f.write_all(format!("{text}\n").as_bytes())?;
            f.sync_all()
        })
        .map_err(|e| e.to_string())
}
