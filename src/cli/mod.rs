//! The command line: argument parsing, logging setup, subcommands and exit codes. The
//! composition root: the only module that wires config, store, runner and output together.

/// Prints a line on stdout; a closed pipe (`bridgehead search … | head`) ends the process
/// quietly, as it does for other Unix tools, instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if writeln!(std::io::stdout(), $($arg)*).is_err() {
            std::process::exit(0);
        }
    }};
}

mod agents;
mod demo;
pub mod demo_data;
mod output;
mod state_file;
mod status_page;
mod sync_object;
mod systemd;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use clap::{Parser, Subcommand};

use crate::config::{Config, ConfigError};
use crate::model::SystemClock;
use crate::runner::{CycleOptions, RunError, Runner, Shutdown, scheduler};
use crate::store::{Store, StoreError};

/// Exit codes (DESIGN.md): 0 ok, 1 object errors, 2 config/usage, 3 directory unreachable.
pub mod exit {
    /// Everything worked.
    pub const OK: u8 = 0;
    /// The run finished, but some objects failed.
    pub const OBJECT_ERRORS: u8 = 1;
    /// Bad config or usage (also: state file in use or too new).
    pub const CONFIG: u8 = 2;
    /// A directory could not be reached or read.
    pub const UNREACHABLE: u8 = 3;
    /// A source sent data that cannot be taken (malformed LDIF, a malformed answer).
    pub const BAD_DATA: u8 = 4;
}

#[derive(Parser, Debug)]
#[command(
    name = "bridgehead",
    version,
    about = "Identity sync between directories"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Daemon: cycles on the configured schedule until SIGTERM (what systemd starts).
    Run {
        /// The config file.
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Run one cycle, print a summary, exit.
    Cycle {
        /// The config file.
        #[arg(short, long)]
        config: PathBuf,
        /// Full import and full sync instead of delta.
        #[arg(long)]
        full: bool,
        /// Only this connector's import and export.
        #[arg(long)]
        connector: Option<String>,
        /// Print the run as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Validate the config and test each connection.
    Check {
        /// The config file.
        #[arg(short, long)]
        config: PathBuf,
    },
    /// What sync would do to one object (as last imported), changing nothing.
    Preview {
        /// The config file.
        #[arg(short, long)]
        config: PathBuf,
        /// The connector whose space holds the object.
        #[arg(long)]
        connector: String,
        /// The object's DN.
        #[arg(long)]
        dn: String,
    },
    /// Every pending export of one connector with its exact changes (the review before
    /// `approve` or leaving staging).
    Pending {
        /// The config file.
        #[arg(short, long)]
        config: PathBuf,
        /// The target connector.
        #[arg(long)]
        connector: String,
        /// text, json, or ldif (change records, for ad and ldap targets).
        #[arg(long, value_enum, default_value_t = PendingFormat::Text)]
        format: PendingFormat,
    },
    /// Sync one object now: read it from its source, sync it, export what it causes to
    /// every target, and report each step (waits for a running cycle).
    SyncObject {
        /// The config file.
        #[arg(short, long)]
        config: PathBuf,
        /// The source connector.
        #[arg(long)]
        connector: String,
        /// The object's DN in that directory.
        #[arg(long, conflicts_with = "anchor")]
        dn: Option<String>,
        /// Or its anchor (objectGUID, entryUUID, SCIM id) as `search` prints it.
        #[arg(long)]
        anchor: Option<String>,
        /// Import and sync, then stop before export (the exports stay pending).
        #[arg(long)]
        dry_run: bool,
        /// Print the report as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Find metaverse and connector-space objects by name, DN, mail or anchor; print lineage.
    Search {
        /// The config file.
        #[arg(short, long)]
        config: PathBuf,
        /// Text to look for (case-insensitive substring).
        query: String,
        /// Print at most this many metaverse objects.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Release what the safety gates hold for connectors: the deletes (and the export run)
    /// the deletion threshold holds back, an import the empty-import guard stopped.
    Approve {
        /// The config file.
        #[arg(short, long)]
        config: PathBuf,
        /// A connector to approve (repeat for several).
        #[arg(long, required = true)]
        connector: Vec<String>,
        /// Print what was released as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// List objects with errors: quarantined by a rule, ambiguous joins, refused exports.
    Errors {
        /// The config file.
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Consistent copy of the state file, also while `run` is active.
    Backup {
        /// The config file.
        #[arg(short, long)]
        config: PathBuf,
        /// Where to write the copy.
        dest: PathBuf,
    },
    /// Replace the state file with a backup (refused while another process holds it).
    Restore {
        /// The config file.
        #[arg(short, long)]
        config: PathBuf,
        /// The backup to restore.
        src: PathBuf,
    },
    /// Self-contained demo: bundled company data synced into an LDIF directory.
    Demo {
        /// Folder for the demo files.
        #[arg(long, default_value = "demo")]
        dir: PathBuf,
        /// Run one cycle and exit instead of staying on the schedule.
        #[arg(long)]
        once: bool,
        /// The status page's address (default from the config: 127.0.0.1:8443).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Set the status page's admin password (also while `run` is active).
    Passwd {
        /// The config file.
        #[arg(short, long)]
        config: PathBuf,
        /// Generate a random password and write it to a 0600 file beside the state file.
        #[arg(long)]
        generate: bool,
    },
    /// Print a one-time token with which an agent of GROUP enrols (see `agent --enroll`).
    AgentToken {
        /// The config file (with an [agents] table).
        #[arg(short, long)]
        config: PathBuf,
        /// The agent group, as connectors name it in `agent_group`.
        #[arg(long)]
        group: String,
        /// How long the token stays usable (default [agents] token_lifetime, 15m).
        #[arg(long)]
        valid: Option<String>,
    },
    /// Agent mode: run next to a directory and serve the appliance (enrol first).
    Agent {
        /// The agent's folder: its key, certificate and the appliance's CA.
        #[arg(long, default_value = "/var/lib/bridgehead-agent")]
        dir: PathBuf,
        /// Enrol with this one-time token from `bridgehead agent-token`, then exit.
        #[arg(long, requires_all = ["server", "ca_fingerprint"])]
        enroll: Option<String>,
        /// The appliance's agent listener, https://HOST:PORT.
        #[arg(long)]
        server: Option<String>,
        /// SHA-256 fingerprint of the appliance's agent CA (printed by `agent-token`).
        #[arg(long)]
        ca_fingerprint: Option<String>,
    },
}

/// How `pending` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum PendingFormat {
    /// One block per export, for reading.
    Text,
    /// The list as JSON.
    Json,
    /// LDIF change records, as `ldapmodify` takes them.
    Ldif,
}

/// Parses arguments, runs the command, returns the process exit code.
pub fn main() -> ExitCode {
    private_files();
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Run { config } => cmd_run(&config),
        Command::Cycle {
            config,
            full,
            connector,
            json,
        } => cmd_cycle(&config, full, connector, json),
        Command::Check { config } => cmd_check(&config),
        Command::Preview {
            config,
            connector,
            dn,
        } => cmd_preview(&config, &connector, &dn),
        Command::Pending {
            config,
            connector,
            format,
        } => cmd_pending(&config, &connector, format),
        Command::SyncObject {
            config,
            connector,
            dn,
            anchor,
            dry_run,
            json,
        } => sync_object::run(&sync_object::Args {
            config: &config,
            connector: &connector,
            dn: dn.as_deref(),
            anchor: anchor.as_deref(),
            dry_run,
            json,
        }),
        Command::Search {
            config,
            query,
            limit,
        } => cmd_search(&config, &query, limit),
        Command::Errors { config } => cmd_errors(&config),
        Command::Approve {
            config,
            connector,
            json,
        } => cmd_approve(&config, &connector, json),
        Command::Backup { config, dest } => state_file::backup(&config, &dest),
        Command::Restore { config, src } => state_file::restore(&config, &src),
        Command::Demo { dir, once, listen } => demo::run(&dir, once, listen),
        Command::Passwd { config, generate } => status_page::passwd(&config, generate),
        Command::AgentToken {
            config,
            group,
            valid,
        } => agents::token(&config, &group, valid.as_deref()),
        Command::Agent {
            dir,
            enroll,
            server,
            ca_fingerprint,
        } => agents::agent(agents::AgentArgs {
            dir,
            enroll,
            server,
            ca_fingerprint,
        }),
    };
    ExitCode::from(code)
}

/// Logs go to stderr; in `run` mode also to daily files in `log_dir`.
fn init_logging(log_dir: Option<&Path>) -> Option<tracing_appender::non_blocking::WorkerGuard> {
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_env("BRIDGEHEAD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: the journal and log scrapers get plain text.
    let stderr = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let (file_layer, guard) = match log_dir.map(|d| (d, std::fs::create_dir_all(d))) {
        Some((dir, Ok(()))) => {
            let appender = tracing_appender::rolling::daily(dir, "bridgehead.log");
            let (w, guard) = tracing_appender::non_blocking(appender);
            (
                Some(
                    tracing_subscriber::fmt::layer()
                        .with_ansi(false)
                        .with_writer(w),
                ),
                Some(guard),
            )
        }
        Some((dir, Err(e))) => {
            eprintln!(
                "warning: cannot create log folder {}: {e}; logging to stderr only",
                dir.display()
            );
            (None, None)
        }
        None => (None, None),
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(stderr)
        .with(file_layer)
        .try_init();
    guard
}

/// Makes every file and folder this process creates the service user's alone (0600 and
/// 0700), whatever umask it was started with: the state file, its backups and the logs
/// hold the admin password hash and every identity. systemd sets `UMask=0077` too; a
/// shell or cron job usually gives 0022.
fn private_files() {
    #[cfg(unix)]
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

/// Logging to stderr, then the config: how every one-shot command begins.
fn start(path: &Path) -> Result<(Option<tracing_appender::non_blocking::WorkerGuard>, Config), u8> {
    let guard = init_logging(None);
    Ok((guard, load_config(path)?))
}

fn load_config(path: &Path) -> Result<Config, u8> {
    let config = Config::load(path).map_err(|e: ConfigError| {
        eprintln!("{e}");
        exit::CONFIG
    })?;
    state_file::blame_redb_panics_on(&config.state_file);
    Ok(config)
}

/// The exit code for a state file that cannot be used: 1 for a file that is damaged or
/// cannot be read or written, 2 for one that is in use or too new (a usage problem).
fn store_exit(e: &StoreError) -> u8 {
    match e {
        StoreError::Db { .. }
        | StoreError::Record { .. }
        | StoreError::Corrupted(..)
        | StoreError::NotOurs(..)
        | StoreError::Unwritable(..) => exit::OBJECT_ERRORS,
        StoreError::InUse(_) | StoreError::TooNew { .. } => exit::CONFIG,
    }
}

fn open_store(config: &Config) -> Result<Store, u8> {
    Store::open(&config.state_file).map_err(|e: StoreError| {
        eprintln!("error: {e}");
        store_exit(&e)
    })
}

/// Read-only, so that it works beside a running daemon.
fn open_store_read_only(config: &Config) -> Result<Store, u8> {
    Store::open_read_only(&config.state_file).map_err(|e| {
        eprintln!("error: {e}");
        store_exit(&e)
    })
}

fn runner_for(config: Config, shutdown: Shutdown) -> Result<Runner, u8> {
    let store = open_store(&config)?;
    Ok(Runner::new(config, store, Arc::new(SystemClock), shutdown))
}

fn report_failure(e: &RunError) -> u8 {
    eprintln!("error: {e}");
    e.exit_code()
}

/// Installs SIGTERM/SIGINT handlers that request a shutdown after the current batch.
fn shutdown_on_signals(rt: &tokio::runtime::Runtime, shutdown: &Shutdown) {
    let s = shutdown.clone();
    rt.spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                tracing::error!("cannot install signal handlers");
                return;
            };
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: stopping after the current batch"),
                _ = int.recv() => tracing::info!("SIGINT: stopping after the current batch"),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        s.request();
    });
}

fn runtime() -> Result<tokio::runtime::Runtime, u8> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start the async runtime: {e}");
            exit::OBJECT_ERRORS
        })
}

/// Runs the scheduler and the status page until a signal; shared by `run` and `demo`
/// (which also prints where the status page is).
fn serve(config: Config, announce: bool, reload_from: Option<&Path>) -> u8 {
    let Ok(rt) = runtime() else {
        return exit::OBJECT_ERRORS;
    };
    let shutdown = Shutdown::default();
    let interval = config.schedule.interval;
    let state = config.state_file.clone();
    let clock: Arc<dyn crate::model::Clock> = Arc::new(SystemClock);
    let mut runner = match runner_for(config.clone(), shutdown.clone()) {
        Ok(r) => r,
        Err(code) => return code,
    };
    tracing::info!(state_file = %state.display(), ?interval, "bridgehead running");
    let (handle, inbox) = crate::runner::handle::channel(Arc::clone(&clock));
    handle.live().set_config(Arc::new(config.clone()));
    runner.attach(handle.live());
    shutdown_on_signals(&rt, &shutdown);
    let notifier = systemd::Notifier::from_env().map(Arc::new);
    let agents = agents::start_listener(&rt, &config, &mut runner, Arc::clone(&clock), &shutdown);
    let web = config
        .web
        .enabled
        .then(|| {
            let h = handle.clone();
            status_page::start(&rt, &config, &runner, h, clock, &shutdown, announce, agents)
        })
        .flatten();
    systemd::started(&rt, notifier.clone(), reload_from, handle);
    let runner = Arc::new(Mutex::new(runner));
    rt.block_on(scheduler::run(
        Arc::clone(&runner),
        interval,
        shutdown,
        inbox,
    ));
    // The last reference is dropped here, outside the runtime: directory connectors own a
    // runtime of their own, which tokio refuses to drop inside an async context (a panic,
    // exit 101, on every SIGTERM of a daemon with an LDAP connector).
    drop(runner);
    if let Some(n) = &notifier {
        n.stopping();
    }
    if let Some(server) = web {
        // The server saw the same shutdown flag; give open requests a moment to finish.
        let _ = rt.block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(12), server).await
        });
    }
    tracing::info!("stopped");
    exit::OK
}

fn cmd_run(path: &Path) -> u8 {
    let config = match load_config(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let _guard = init_logging(config.log_dir.as_deref());
    serve(config, false, Some(path))
}

fn cmd_cycle(path: &Path, full: bool, only: Option<String>, json: bool) -> u8 {
    let (_guard, config) = match start(path) {
        Ok(started) => started,
        Err(code) => return code,
    };
    let Ok(rt) = runtime() else {
        return exit::OBJECT_ERRORS;
    };
    let shutdown = Shutdown::default();
    shutdown_on_signals(&rt, &shutdown);
    let mut runner = match runner_for(config, shutdown) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let opts = CycleOptions {
        full,
        only,
        trigger: "cli".into(),
        progress: !json && std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    match runner.cycle(&opts) {
        Ok(record) => {
            if json {
                output::print_json(&record);
            } else {
                output::print_summary(&record);
            }
            if record
                .connectors
                .iter()
                .any(|c| c.errors > 0 || c.blocked_deletes > 0)
            {
                exit::OBJECT_ERRORS
            } else {
                exit::OK
            }
        }
        Err(e) => report_failure(&e),
    }
}

fn cmd_check(path: &Path) -> u8 {
    let (_guard, config) = match start(path) {
        Ok(started) => started,
        Err(code) => return code,
    };
    out!(
        "config {}: {} connectors, {} inbound and {} outbound rules",
        path.display(),
        config.connectors.len(),
        config.rules.inbound.len(),
        config.rules.outbound.len()
    );
    let state_ok = state_file::check(&config.state_file);
    let mut connectors: Vec<_> = config
        .connectors
        .iter()
        .map(crate::connector::build)
        .collect();
    let mut code = if state_ok { exit::OK } else { exit::CONFIG };
    for c in connectors.iter_mut() {
        match c.check() {
            Ok(()) => out!("connector {}: ok", c.name()),
            Err(e) => {
                out!("connector {}: {}", c.name(), e.message);
                code = exit::UNREACHABLE;
            }
        }
    }
    code
}

fn cmd_search(path: &Path, query: &str, limit: usize) -> u8 {
    let (_guard, config) = match start(path) {
        Ok(started) => started,
        Err(code) => return code,
    };
    let store = match open_store_read_only(&config) {
        Ok(s) => s,
        Err(code) => return code,
    };
    match output::search(&store, query, limit) {
        Ok(0) => {
            out!("nothing matches {query:?}");
            exit::OBJECT_ERRORS
        }
        Ok(_) => exit::OK,
        Err(e) => {
            eprintln!("error: {e}");
            exit::OBJECT_ERRORS
        }
    }
}

fn cmd_preview(path: &Path, connector: &str, dn: &str) -> u8 {
    let _guard = init_logging(None);
    let dn = match crate::model::Dn::parse(dn) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: --dn: {e}");
            return exit::CONFIG;
        }
    };
    let config = match load_config(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let runner = match runner_for(config, Shutdown::default()) {
        Ok(r) => r,
        Err(code) => return code,
    };
    match runner.preview(connector, &dn) {
        Ok(Some(p)) => {
            output::print_preview(connector, &dn, &p);
            exit::OK
        }
        Ok(None) => {
            eprintln!("error: connector {connector} has no object at {dn} (as last imported)");
            exit::OBJECT_ERRORS
        }
        Err(e) => report_failure(&e),
    }
}

fn cmd_errors(path: &Path) -> u8 {
    let (_guard, config) = match start(path) {
        Ok(started) => started,
        Err(code) => return code,
    };
    let store = match open_store_read_only(&config) {
        Ok(s) => s,
        Err(code) => return code,
    };
    match output::errors(&store) {
        Ok(0) => {
            out!("no object has an error");
            exit::OK
        }
        Ok(_) => exit::OBJECT_ERRORS,
        Err(e) => {
            eprintln!("error: {e}");
            exit::OBJECT_ERRORS
        }
    }
}

fn cmd_pending(path: &Path, connector: &str, format: PendingFormat) -> u8 {
    let (_guard, config) = match start(path) {
        Ok(started) => started,
        Err(code) => return code,
    };
    let runner = match runner_for(config, Shutdown::default()) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let shown = match format {
        // The records end in their blank line; `out!` adds none of its own.
        PendingFormat::Ldif => runner
            .pending_ldif(connector)
            .map(|text| out!("{}", text.trim_end_matches('\n'))),
        PendingFormat::Json => runner.pending(connector).and_then(|list| {
            serde_json::to_string_pretty(&list)
                .map(|text| out!("{text}"))
                .map_err(|e| RunError::Unsupported(format!("the pending exports as JSON: {e}")))
        }),
        PendingFormat::Text => runner
            .pending(connector)
            .map(|list| output::print_pending(&list)),
    };
    match shown {
        Ok(()) => exit::OK,
        Err(e) => report_failure(&e),
    }
}

fn cmd_approve(path: &Path, connectors: &[String], json: bool) -> u8 {
    let (_guard, config) = match start(path) {
        Ok(started) => started,
        Err(code) => return code,
    };
    let runner = match runner_for(config, Shutdown::default()) {
        Ok(r) => r,
        Err(code) => return code,
    };
    match runner.approve_all(connectors) {
        Ok(approvals) if json => match serde_json::to_string_pretty(&approvals) {
            Ok(text) => {
                out!("{text}");
                exit::OK
            }
            Err(e) => {
                eprintln!("error: the approvals as JSON: {e}");
                exit::OBJECT_ERRORS
            }
        },
        Ok(approvals) => {
            for a in &approvals {
                output::print_approval(a);
            }
            exit::OK
        }
        Err(e) => report_failure(&e),
    }
}
