//! A process's resident memory and CPU time, read from Linux's `/proc`. Elsewhere these read
//! `None` and the report leaves the figures out.

/// Clock ticks per second in `/proc/PID/stat`: Linux's `USER_HZ`, 100 on every architecture
/// the kernel exports to user space with a fixed value (reading it needs `sysconf`, hence libc;
/// 100 is what it returns on x86-64 and arm64).
const TICKS_PER_SECOND: f64 = 100.0;

/// `VmRSS` of process `pid`, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The 1-minute load average, from `/proc/loadavg`.
pub fn load_average() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// User plus system CPU time of process `pid` (all its threads), in seconds, to 10 ms.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name in parentheses may hold spaces: fields are counted after its `)`.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some((user + system) as f64 / TICKS_PER_SECOND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_resident_size_and_some_cpu_time() {
        let me = std::process::id();
        assert!(rss_kib(me).is_some_and(|kib| kib > 0));
        assert!(cpu_seconds(me).is_some());
        assert_eq!(rss_kib(u32::MAX), None);
    }
}
