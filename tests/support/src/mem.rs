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
        }
    }
}
