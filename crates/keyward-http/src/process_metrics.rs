//! The standard `process_*` series of a Prometheus client, read from Linux's `/proc/self` at
//! scrape time (nothing runs in the background), and `keyward_build_info`. On a system without
//! `/proc` the process series are left out.

use std::fmt::Write as _;

/// The kernel's fixed tick rate for `/proc` times (USER_HZ), 100 on every Linux architecture.
const TICKS_PER_SECOND: f64 = 100.0;

/// What `keyward --version` says, as a metric.
#[derive(Clone, Copy, Debug)]
pub struct BuildInfo {
    pub version: &'static str,
    pub commit: &'static str,
}

/// Spans the trace exporter sent and those it failed to send (zero when traces are off).
#[derive(Debug, Default)]
pub struct TraceExportStats {
    pub exported: std::sync::atomic::AtomicU64,
    pub failed: std::sync::atomic::AtomicU64,
}

/// Appends `keyward_build_info`, the trace exporter's counters and the `process_*` series.
pub(crate) fn render(build: BuildInfo, traces: &TraceExportStats, out: &mut String) {
    use std::sync::atomic::Ordering::Relaxed;
    out.push_str("# HELP keyward_trace_spans_exported_total Spans the OTLP exporter delivered.\n# TYPE keyward_trace_spans_exported_total counter\n");
    let _ = writeln!(
        out,
        "keyward_trace_spans_exported_total {}",
        traces.exported.load(Relaxed)
    );
    out.push_str("# HELP keyward_trace_export_failures_total Spans the OTLP exporter could not deliver (collector down, slow or refusing); calls are not affected.\n# TYPE keyward_trace_export_failures_total counter\n");
    let _ = writeln!(
        out,
        "keyward_trace_export_failures_total {}",
        traces.failed.load(Relaxed)
    );
    out.push_str("# HELP keyward_build_info The running build: version and git commit (always 1).\n# TYPE keyward_build_info gauge\n");
    let _ = writeln!(
        out,
        "keyward_build_info{{version=\"{}\",commit=\"{}\"}} 1",
        build.version, build.commit
    );
    let Some(process) = read_process() else {
        return;
    };
    let series = [
        (
            "process_cpu_seconds_total",
            "counter",
            "User and system CPU time spent, in seconds.",
            process.cpu_seconds,
        ),
        (
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            process.resident_bytes,
        ),
        (
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            process.virtual_bytes,
        ),
        (
            "process_open_fds",
            "gauge",
            "Open file descriptors (sockets included).",
            process.open_fds,
        ),
        (
            "process_max_fds",
            "gauge",
            "The limit of open file descriptors.",
            process.max_fds,
        ),
        (
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since the Unix epoch, in seconds.",
            process.start_time,
        ),
        (
            "process_threads",
            "gauge",
            "Operating system threads.",
            process.threads,
        ),
    ];
    for (name, kind, help, value) in series {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    }
}

struct Process {
    cpu_seconds: f64,
    resident_bytes: f64,
    virtual_bytes: f64,
    open_fds: f64,
    max_fds: f64,
    start_time: f64,
    threads: f64,
}

fn read_process() -> Option<Process> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split_whitespace().collect();
    let field = |index: usize| fields.get(index)?.parse::<f64>().ok();
    // Numbered as in proc(5) minus 3: utime 14, stime 15, threads 20, starttime 22, vsize 23.
    let (utime, stime) = (field(11)?, field(12)?);
    let boot_time = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("btime "))?
        .trim()
        .parse::<f64>()
        .ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let resident_kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })?;
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let max_fds = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .and_then(|line| line.split_whitespace().nth(3))
        .and_then(|soft| soft.parse::<f64>().ok())
        .unwrap_or(f64::INFINITY);
    Some(Process {
        cpu_seconds: (utime + stime) / TICKS_PER_SECOND,
        resident_bytes: resident_kib * 1024.0,
        virtual_bytes: field(20)?,
        open_fds: std::fs::read_dir("/proc/self/fd").ok()?.count() as f64,
        max_fds,
        start_time: boot_time + field(19)? / TICKS_PER_SECOND,
        threads: field(17)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_build_info_and_this_process() {
        let mut out = String::new();
        render(
            BuildInfo {
                version: "9.9.9",
                commit: "abc123",
            },
            &TraceExportStats::default(),
            &mut out,
        );
        assert!(out.contains("keyward_build_info{version=\"9.9.9\",commit=\"abc123\"} 1"));
        if std::path::Path::new("/proc/self/stat").exists() {
            let value = |name: &str| -> f64 {
                out.lines()
                    .find_map(|line| line.strip_prefix(&format!("{name} ")))
                    .and_then(|value| value.parse().ok())
                    .unwrap_or(-1.0)
            };
            assert!(
                value("process_resident_memory_bytes") > 1_000_000.0,
                "{out}"
            );
            assert!(value("process_open_fds") >= 3.0);
            assert!(value("process_threads") >= 1.0);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|elapsed| elapsed.as_secs_f64())
                .unwrap_or(0.0);
            let start = value("process_start_time_seconds");
            assert!(
                start > now - 3600.0 && start <= now + 1.0,
                "{start} vs {now}"
            );
        }
    }
}
