//! The test process's own memory, for "memory stays flat" assertions on a
//! gateway running in-process.

/// Resident set size of this process in KiB (`VmRSS` of
/// `/proc/self/status`); `None` where there is no procfs.
pub fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Memory of another process, from `/proc/PID/status`, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessMemory {
    /// `VmRSS`: resident now.
    pub rss_kib: u64,
    /// `VmHWM`: the peak resident set size since the process started.
    pub hwm_kib: u64,
}

/// `VmRSS` and `VmHWM` of process `pid`; `None` where there is no procfs
/// or the process is gone.
pub fn process_memory(pid: u32) -> Option<ProcessMemory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    Some(ProcessMemory {
        rss_kib: field("VmRSS:")?,
        hwm_kib: field("VmHWM:")?,
    })
}

/// This process's open-file soft limit (`Max open files` of
/// `/proc/self/limits`); tests that hold many sockets size themselves by
/// it instead of failing on a small `ulimit -n`.
pub fn nofile_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line
        .get("Max open files".len()..)?
        .split_whitespace()
        .next()?;
    match soft {
        "unlimited" => Some(u64::MAX),
        n => n.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rss_and_fd_limit_are_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(super::rss_kib().is_some_and(|kib| kib > 0));
            assert!(super::nofile_limit().is_some_and(|n| n > 0));
            let own = super::process_memory(std::process::id()).expect("own status");
            assert!(own.rss_kib > 0 && own.hwm_kib >= own.rss_kib, "{own:?}");
        }
    }
}
