//! The conventional `process_*` metrics (what Prometheus client libraries export), read
//! from /proc for this process.

/// This process as `/metrics` reports it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProcessStats {
    /// User plus system CPU time, seconds.
    pub cpu_seconds: f64,
    /// Resident set, bytes.
    pub resident_bytes: u64,
    /// Virtual memory, bytes.
    pub virtual_bytes: u64,
    /// Open file descriptors.
    pub open_fds: u64,
    /// The soft limit on open file descriptors, if there is one.
    pub max_fds: Option<u64>,
    /// When the process started, Unix seconds.
    pub start_time_seconds: f64,
}

/// Reads the figures; None where /proc is not there or not readable (a sandbox).
pub fn read() -> Option<ProcessStats> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name is in parentheses and may hold spaces: fields count from the last ')'.
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    // fields[0] is field 3 (state) of proc_pid_stat(5).
    let field = |n: usize| -> Option<u64> { fields.get(n - 3)?.parse().ok() };
    let ticks = rustix::param::clock_ticks_per_second() as f64;
    let page = rustix::param::page_size() as u64;
    let boot = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse::<u64>().ok())?;
    let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    let max_fds = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    Some(ProcessStats {
        cpu_seconds: (field(14)? + field(15)?) as f64 / ticks,
        resident_bytes: field(24)? * page,
        virtual_bytes: field(23)?,
        // read_dir's own descriptor is in the listing.
        open_fds: open_fds.saturating_sub(1),
        max_fds,
        start_time_seconds: boot as f64 + field(22)? as f64 / ticks,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    #[test]
    fn this_process_reads_sensibly() {
        let p = read().expect("/proc/self");
        assert!(p.resident_bytes > 1 << 20, "{p:?}");
        assert!(p.virtual_bytes >= p.resident_bytes, "{p:?}");
        assert!(p.open_fds >= 3, "{p:?}");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            p.start_time_seconds <= now + 2.0 && p.start_time_seconds > now - 86_400.0,
            "{p:?} now {now}"
        );
        assert!(p.max_fds.is_some_and(|m| m >= p.open_fds), "{p:?}");
        assert!(p.cpu_seconds >= 0.0, "{p:?}");
    }
}
