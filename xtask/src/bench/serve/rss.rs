//! A process's resident memory from Linux `/proc/<pid>/status`, and the calling thread's CPU
//! time from `/proc/thread-self/schedstat`.

/// The current resident set (VmRSS) of `pid` in MiB, if readable.
pub fn vm_rss_mb(pid: u32) -> Option<f64> {
    status_field_mb(&read_status(pid)?, "VmRSS")
}

/// The peak resident set (VmHWM, the high-water mark since the process started) in MiB.
pub fn vm_hwm_mb(pid: u32) -> Option<f64> {
    status_field_mb(&read_status(pid)?, "VmHWM")
}

/// CPU seconds the calling thread has run (the first field of `/proc/thread-self/schedstat`,
/// in ns), if readable.
pub fn thread_cpu_s() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e9)
}

fn read_status(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/status")).ok()
}

/// `field:   12345 kB` of a `/proc/<pid>/status` text, in MiB.
pub fn status_field_mb(status: &str, field: &str) -> Option<f64> {
    status.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        if key.trim() != field {
            return None;
        }
        let mut parts = value.split_whitespace();
        let number: f64 = parts.next()?.parse().ok()?;
        match parts.next() {
            Some("kB") => Some(number / 1024.0),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::{status_field_mb, thread_cpu_s, vm_hwm_mb, vm_rss_mb};

    #[test]
    fn reads_kilobyte_fields_as_mib() {
        let text = "Name:\tspectrans\nVmHWM:\t  204800 kB\nVmRSS:\t   102400 kB\nThreads:\t3\n";
        assert_eq!(status_field_mb(text, "VmHWM"), Some(200.0));
        assert_eq!(status_field_mb(text, "VmRSS"), Some(100.0));
        assert_eq!(status_field_mb(text, "VmSwap"), None);
        assert_eq!(status_field_mb(text, "Threads"), None, "no kB unit");
        assert_eq!(status_field_mb("VmRSS: lots kB\n", "VmRSS"), None);
    }

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        let rss = vm_rss_mb(pid).unwrap_or(0.0);
        let hwm = vm_hwm_mb(pid).unwrap_or(0.0);
        assert!(rss > 0.0 && hwm >= rss, "rss {rss} hwm {hwm}");
    }

    #[test]
    fn counts_this_threads_cpu_time() {
        let before = thread_cpu_s().unwrap_or(f64::NAN);
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while started.elapsed() < std::time::Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let used = thread_cpu_s().unwrap_or(f64::NAN) - before;
        assert!(used > 0.001 && used < 5.0, "{used} s");
    }
}
