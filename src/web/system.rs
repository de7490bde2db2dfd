//! The host page (CPU, memory, disk where the state file lives, this process) via sysinfo,
//! and the effective-config page with secrets redacted.

use std::path::Path;
use std::sync::Mutex;

use serde::Serialize;
use sysinfo::{Disks, Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use crate::config::Config;

/// The host page.
#[derive(Clone, Debug, Serialize)]
pub struct HostView {
    /// Host name.
    pub hostname: Option<String>,
    /// OS and version.
    pub os: Option<String>,
    /// Logical CPUs.
    pub cpus: usize,
    /// CPU use over all cores since the previous look, percent.
    pub cpu_percent: f32,
    /// Load average over 1, 5 and 15 minutes.
    pub load: [f64; 3],
    /// Memory in bytes.
    pub memory_total: u64,
    /// Memory available to new work.
    pub memory_available: u64,
    /// This process's resident set.
    pub process_rss: u64,
    /// This process's CPU use, percent of one core.
    pub process_cpu_percent: f32,
    /// Seconds since this process started.
    pub process_uptime_s: u64,
    /// The file system holding the state file.
    pub disk_mount: Option<String>,
    /// Its free space.
    pub disk_available: Option<u64>,
    /// Its size.
    pub disk_total: Option<u64>,
    /// The state file's size.
    pub state_file_bytes: Option<u64>,
}

/// Keeps one sysinfo view so that CPU use is measured between two looks.
pub struct Host {
    sys: Mutex<System>,
    pid: Option<Pid>,
}

impl Host {
    /// Takes the first CPU sample.
    pub fn new() -> Host {
        let mut sys = System::new();
        sys.refresh_cpu_usage();
        Host {
            sys: Mutex::new(sys),
            pid: sysinfo::get_current_pid().ok(),
        }
    }

    /// Reads the host figures now.
    pub fn view(&self, state_file: &Path) -> HostView {
        let mut sys = self.sys.lock().unwrap_or_else(|p| p.into_inner());
        sys.refresh_cpu_usage();
        sys.refresh_memory();
        let (rss, pcpu, uptime) = match self.pid {
            Some(pid) => {
                sys.refresh_processes_specifics(
                    ProcessesToUpdate::Some(&[pid]),
                    false,
                    ProcessRefreshKind::nothing().with_memory().with_cpu(),
                );
                sys.process(pid)
                    .map_or((0, 0.0, 0), |p| (p.memory(), p.cpu_usage(), p.run_time()))
            }
            None => (0, 0.0, 0),
        };
        // The mount point with the longest prefix of the state file's path holds it.
        let state = std::fs::canonicalize(state_file).unwrap_or_else(|_| state_file.to_path_buf());
        let disks = Disks::new_with_refreshed_list();
        let disk = disks
            .list()
            .iter()
            .filter(|d| state.starts_with(d.mount_point()))
            .max_by_key(|d| d.mount_point().as_os_str().len());
        let load = System::load_average();
        HostView {
            hostname: System::host_name(),
            os: System::long_os_version(),
            cpus: sys.cpus().len(),
            cpu_percent: sys.global_cpu_usage(),
            load: [load.one, load.five, load.fifteen],
            memory_total: sys.total_memory(),
            memory_available: sys.available_memory(),
            process_rss: rss,
            process_cpu_percent: pcpu,
            process_uptime_s: uptime,
            disk_mount: disk.map(|d| d.mount_point().display().to_string()),
            disk_available: disk.map(|d| d.available_space()),
            disk_total: disk.map(|d| d.total_space()),
            state_file_bytes: std::fs::metadata(state_file).ok().map(|m| m.len()),
        }
    }
}

/// One rule, summarised.
#[derive(Clone, Debug, Serialize)]
pub struct RuleView {
    /// Its name.
    pub name: String,
    /// Its connector.
    pub connector: String,
    /// The CS object class.
    pub object_class: String,
    /// The MV type.
    pub object_type: String,
    /// Precedence (inbound).
    pub precedence: Option<u32>,
    /// Projects (inbound) or provisions (outbound).
    pub creates: bool,
    /// The attributes its flows write.
    pub targets: Vec<String>,
}

/// One connector's settings.
#[derive(Clone, Debug, Serialize)]
pub struct ConnectorSettings {
    /// Its name.
    pub name: String,
    /// Type-specific settings as the config loader holds them; secrets print as [redacted].
    pub settings: String,
    /// Deletion threshold.
    pub deletion_threshold: u64,
    /// Deletion threshold, percent.
    pub deletion_threshold_percent: Option<u8>,
    /// Unique attributes.
    pub unique_attributes: Vec<String>,
}

/// The effective config.
#[derive(Clone, Debug, Serialize)]
pub struct ConfigView {
    /// The config file.
    pub path: String,
    /// The state file.
    pub state_file: String,
    /// The log folder.
    pub log_dir: Option<String>,
    /// The schedule's interval in seconds.
    pub interval_s: u64,
    /// staging = … in the file.
    pub staging_in_config: bool,
    /// Staging as applied now (the file, less a run-time override).
    pub staging: bool,
    /// The status page's address.
    pub listen: String,
    /// Where its certificate comes from.
    pub certificate: String,
    /// Whether an API token is configured (never the token).
    pub api_token: bool,
    /// Session idle timeout, seconds.
    pub session_timeout_s: u64,
    /// Connectors.
    pub connectors: Vec<ConnectorSettings>,
    /// Inbound rules.
    pub inbound: Vec<RuleView>,
    /// Outbound rules.
    pub outbound: Vec<RuleView>,
}

/// The effective config, redacted.
pub fn config_view(c: &Config, staging_now: bool, certificate: &str) -> ConfigView {
    ConfigView {
        path: c.path.display().to_string(),
        state_file: c.state_file.display().to_string(),
        log_dir: c.log_dir.as_ref().map(|d| d.display().to_string()),
        interval_s: c.schedule.interval.as_secs(),
        staging_in_config: c.staging,
        staging: staging_now,
        listen: c.web.listen.to_string(),
        certificate: certificate.to_string(),
        api_token: c.web.api_token.is_some(),
        session_timeout_s: c.web.session_idle.as_secs(),
        connectors: c
            .connectors
            .iter()
            .map(|k| ConnectorSettings {
                name: k.name.to_string(),
                // Debug of the config types: secrets are `Secret`, whose Debug is redacted.
                settings: format!("{:#?}", k.kind),
                deletion_threshold: k.deletion_threshold.count,
                deletion_threshold_percent: k.deletion_threshold.percent,
                unique_attributes: k.unique_attributes.iter().map(|a| a.to_string()).collect(),
            })
            .collect(),
        inbound: c
            .rules
            .inbound
            .iter()
            .map(|r| RuleView {
                name: r.name.clone(),
                connector: r.connector.to_string(),
                object_class: r.object_class.clone(),
                object_type: r.object_type.to_string(),
                precedence: Some(r.precedence),
                creates: r.project,
                targets: r.flows.iter().map(|f| f.target.to_string()).collect(),
            })
            .collect(),
        outbound: c
            .rules
            .outbound
            .iter()
            .map(|r| RuleView {
                name: r.name.clone(),
                connector: r.connector.to_string(),
                object_class: r.object_class.clone(),
                object_type: r.object_type.to_string(),
                precedence: None,
                creates: r.provision,
                targets: r.flows.iter().map(|f| f.target.to_string()).collect(),
            })
            .collect(),
    }
}
