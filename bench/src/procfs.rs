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

/// CPU time a process has used (all its threads), in seconds, to 10 ms.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CpuTimes {
    /// In user space: the program's own work.
    pub user: f64,
    /// In the kernel on its behalf: system calls (a socket write, with loopback's delivery to
    /// the reader) and the interrupts they raise.
    pub system: f64,
}

impl CpuTimes {
    /// User plus system time.
    pub fn total(&self) -> f64 {
        self.user + self.system
    }
}

/// User and system CPU time of process `pid` (all its threads).
pub fn cpu_times(pid: u32) -> Option<CpuTimes> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name in parentheses may hold spaces: fields are counted after its `)`.
    let fields: Vec<&str> = stat.get(stat.rfind(')')? + 2..)?.split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let user: u64 = fields.get(11)?.parse().ok()?;
    let system: u64 = fields.get(12)?.parse().ok()?;
    Some(CpuTimes {
        user: user as f64 / TICKS_PER_SECOND,
        system: system as f64 / TICKS_PER_SECOND,
    })
}

/// User plus system CPU time of process `pid` (all its threads), in seconds, to 10 ms.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    cpu_times(pid).map(|times| times.total())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_has_a_resident_size_and_some_cpu_time() {
        let me = std::process::id();
        assert!(rss_kib(me).is_some_and(|kib| kib > 0));
        assert!(cpu_seconds(me).is_some());
        // Burn some user time, and some system time in system calls, and see both counted.
        let before = cpu_times(me).unwrap();
        let started = std::time::Instant::now();
        let mut spin = 0u64;
        while started.elapsed() < std::time::Duration::from_millis(300) {
            spin = std::hint::black_box(spin.wrapping_mul(31).wrapping_add(1));
            let _ = std::fs::metadata("/proc/self/stat");
        }
        let after = cpu_times(me).unwrap();
        assert!(after.total() > before.total());
        assert!(after.user >= before.user && after.system >= before.system);
        assert_eq!(cpu_seconds(u32::MAX), None);
        assert_eq!(rss_kib(u32::MAX), None);
    }
}
