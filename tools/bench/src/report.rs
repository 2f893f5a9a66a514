//! The results of a run: one serialisable [`Report`], printed as a human summary and written
//! as JSON with `--json`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use std::time::Duration;

use crate::load::{Outcome, Pace, Spec};

/// Everything a run found.
#[derive(Debug, Serialize)]
pub struct Report {
    /// `ingest-bench` version.
    pub bench_version: &'static str,
    /// When the run started (RFC 3339, UTC).
    pub started_at: String,
    /// The machine it ran on.
    pub machine: Machine,
    /// What was set up and how the servers were configured.
    pub setup: Setup,
    /// Each phase, in the order run.
    pub phases: Vec<PhaseReport>,
    /// The goals: ingest-api against its baselines.
    pub comparisons: Vec<Comparison>,
    /// Ack latency under an open-loop load at a fraction of each peak.
    pub latency: Vec<LatencyAtLoad>,
    /// Topic end offsets against the punches acked: the acks were real.
    pub log_checks: Vec<LogCheck>,
    /// ingest-api's memory and CPU.
    pub ingest_api: ProcessReport,
    /// The bare endpoint's memory and CPU.
    pub bare_endpoint: ProcessReport,
    /// CPU time per punch (or request) of the process doing the work, microseconds.
    pub cpu_us_per_unit: BTreeMap<String, f64>,
    /// Things that make the figures suspect or that cleanup could not do.
    pub warnings: Vec<String>,
}

/// The machine.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Logical CPUs available.
    pub cpus: usize,
    /// `model name` from /proc/cpuinfo.
    pub cpu_model: String,
    /// Kernel release.
    pub kernel: String,
    /// Total memory, GiB.
    pub memory_gib: f64,
    /// The compiler that built the bench.
    pub rustc: String,
    /// Kafka version of the local stack (from `stack/kafka/pom.xml`), if found.
    pub kafka_version: Option<String>,
}

impl Machine {
    /// What /proc says about this machine.
    pub fn detect() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_else(|| "unknown".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let mem_kib: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        let kafka_version = std::fs::read_to_string("stack/kafka/pom.xml")
            .ok()
            .and_then(|pom| {
                let start = pom.find("<kafka.version>")? + "<kafka.version>".len();
                let end = pom[start..].find('<')? + start;
                Some(pom[start..end].trim().to_owned())
            });
        Self {
            cpus: std::thread::available_parallelism().map_or(0, usize::from),
            cpu_model,
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_owned())
                .unwrap_or_default(),
            memory_gib: mem_kib / (1024.0 * 1024.0),
            rustc: env!("BENCH_RUSTC_VERSION").to_owned(),
            kafka_version,
        }
    }
}

/// What was set up.
#[derive(Debug, Clone, Serialize)]
pub struct Setup {
    /// The bench tenant group (and tenant).
    pub group: String,
    /// Devices the load was spread over, one token each.
    pub devices: usize,
    /// Partitions of the raw topic.
    pub partitions: i32,
    /// The ingest-api binary.
    pub ingest_api_bin: String,
    /// ingest-api's per-device rate limit (left at its defaults).
    pub device_rate_limit: String,
    /// Producer settings shared by ingest-api and the raw producer.
    pub producer: BTreeMap<String, String>,
    /// How often /metrics was scraped during the run (seconds; 0 = never).
    pub scrape_secs: f64,
    /// Whether the topics and master data were kept.
    pub kept: bool,
}

/// Latency quantiles, milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Latency {
    /// Requests measured.
    pub count: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
}

impl Latency {
    fn of(outcome: &Outcome) -> Self {
        let h = &outcome.latency_us;
        if h.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            count: h.len(),
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p99: ms(h.value_at_quantile(0.99)),
            p999: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

/// One phase's figures.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseReport {
    /// Short name, e.g. `batch/ingest-api`.
    pub name: String,
    /// What was driven against what.
    pub target: String,
    /// `closed loop` or `open loop`.
    pub pace: String,
    /// Open loop: the scheduled total request rate.
    pub target_requests_per_sec: Option<f64>,
    /// Connections or producer tasks.
    pub workers: usize,
    /// Punches per request.
    pub punches_per_request: usize,
    /// Rounds the phase was split into (interleaved with its baseline).
    pub rounds: u32,
    /// Measured seconds (warm-up excluded), all rounds together.
    pub measured_secs: f64,
    /// Warm-up seconds.
    pub warmup_secs: f64,
    /// Requests counted.
    pub requests: u64,
    /// Counted requests per second.
    pub requests_per_sec: f64,
    /// Punches acked by counted requests.
    pub punches: u64,
    /// Acked punches per second.
    pub punches_per_sec: f64,
    /// Punches acked in the whole phase, warm-up and tail included.
    pub punches_total: u64,
    /// Open loop: requests issued more than 1 ms after their scheduled time because their
    /// connection was still busy (their latency still counts from the scheduled time).
    pub late_starts: u64,
    /// Failed requests by kind.
    pub failures: BTreeMap<String, u64>,
    /// One example per failure kind.
    pub failure_examples: BTreeMap<String, String>,
    /// Ack latency of counted requests (open loop: from the scheduled time).
    pub latency_ms: Latency,
    /// CPU seconds (user + system) each process used during the measured window.
    pub cpu_secs: BTreeMap<String, f64>,
}

impl PhaseReport {
    /// Figures from a phase's outcome.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: &str,
        target: &str,
        workers: usize,
        spec: Spec,
        measured: Duration,
        warmup: Duration,
        outcome: &Outcome,
        cpu_secs: BTreeMap<String, f64>,
    ) -> Self {
        let secs = measured.as_secs_f64();
        let (pace, target_rate) = match spec.pace {
            Pace::Closed => ("closed loop".to_owned(), None),
            Pace::Open { requests_per_sec } => ("open loop".to_owned(), Some(requests_per_sec)),
        };
        Self {
            name: name.to_owned(),
            target: target.to_owned(),
            pace,
            target_requests_per_sec: target_rate,
            workers,
            punches_per_request: spec.punches_per_request,
            rounds: 1,
            measured_secs: secs,
            warmup_secs: warmup.as_secs_f64(),
            requests: outcome.requests,
            requests_per_sec: outcome.requests as f64 / secs,
            punches: outcome.punches,
            punches_per_sec: outcome.punches as f64 / secs,
            punches_total: outcome.punches_total,
            late_starts: outcome.late,
            failures: outcome.failures.clone(),
            failure_examples: outcome.failure_examples.clone(),
            latency_ms: Latency::of(outcome),
            cpu_secs,
        }
    }

    /// CPU seconds of `process` in the window, 0 if not measured.
    pub fn cpu(&self, process: &str) -> f64 {
        self.cpu_secs.get(process).copied().unwrap_or(0.0)
    }

    /// Failed requests of every kind.
    pub fn failed(&self) -> u64 {
        self.failures.values().sum()
    }
}

/// ingest-api against a baseline.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// What is compared.
    pub what: String,
    /// Unit of `ours` and `baseline`.
    pub unit: String,
    /// ingest-api's figure.
    pub ours: f64,
    /// The baseline's figure.
    pub baseline: f64,
    /// What the baseline is.
    pub baseline_is: String,
    /// `ours / baseline`.
    pub ratio: f64,
    /// The lowest acceptable ratio.
    pub goal: f64,
    /// `ratio >= goal`.
    pub met: bool,
    /// The same comparison in CPU time: the baseline's CPU microseconds per unit over
    /// ingest-api's, each counting only the process doing the work (not the load generator).
    /// Much less sensitive to noisy neighbours than the throughput ratio.
    pub cpu_ratio: Option<f64>,
}

impl Comparison {
    /// A comparison of `ours` with `baseline` against `goal`.
    pub fn new(
        what: &str,
        unit: &str,
        ours: f64,
        baseline: f64,
        baseline_is: &str,
        goal: f64,
    ) -> Self {
        let ratio = if baseline > 0.0 { ours / baseline } else { 0.0 };
        Self {
            what: what.to_owned(),
            unit: unit.to_owned(),
            ours,
            baseline,
            baseline_is: baseline_is.to_owned(),
            ratio,
            goal,
            met: ratio >= goal,
            cpu_ratio: None,
        }
    }

    /// Adds the CPU-time view: `ours_us` and `baseline_us` CPU microseconds per unit.
    pub fn with_cpu(mut self, ours_us: f64, baseline_us: f64) -> Self {
        self.cpu_ratio = (ours_us > 0.0 && baseline_us > 0.0).then(|| baseline_us / ours_us);
        self
    }
}

/// Latency at a fixed open-loop rate.
#[derive(Debug, Clone, Serialize)]
pub struct LatencyAtLoad {
    /// What was driven.
    pub what: String,
    /// Fraction of the measured peak.
    pub load: f64,
    /// Scheduled requests per second.
    pub target_requests_per_sec: f64,
    /// Achieved punches per second.
    pub punches_per_sec: f64,
    /// Ack latency from the scheduled send time.
    pub latency_ms: Latency,
    /// Requests issued late because their connection was still busy.
    pub late_starts: u64,
    /// Failed requests.
    pub failed: u64,
}

/// Whether the acks were real: a topic holds at least as many records as were acked into it.
#[derive(Debug, Clone, Serialize)]
pub struct LogCheck {
    /// Which topic, when.
    pub what: String,
    /// The topic.
    pub topic: String,
    /// Punches acked into it so far (warm-ups and tails included).
    pub acked: u64,
    /// Sum of its partitions' end offsets.
    pub end_offsets_sum: i64,
    /// `end_offsets_sum >= acked`.
    pub holds: bool,
}

/// A server process's resources over the whole run.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessReport {
    /// Process id.
    pub pid: u32,
    /// Peak resident set (VmHWM), MiB.
    pub peak_rss_mib: f64,
    /// Resident set at the end, MiB.
    pub rss_mib: f64,
    /// User + system CPU seconds over its life.
    pub cpu_secs: f64,
    /// Goal for the peak RSS, MiB (ingest-api only).
    pub rss_goal_mib: Option<f64>,
    /// Whether the peak stayed under the goal.
    pub met: Option<bool>,
}

/// `1234567.0` as `1,234,567`.
pub fn thousands(value: f64) -> String {
    let n = value.round() as i64;
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

fn yes_no(met: bool) -> &'static str {
    if met { "yes" } else { "NO" }
}

impl Report {
    /// The human summary.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        self.write_header(&mut s);
        self.write_phases(&mut s);
        self.write_goals(&mut s);
        self.write_latency(&mut s);
        self.write_checks(&mut s);
        s
    }

    /// The machine and the set-up.
    fn write_header(&self, s: &mut String) {
        let m = &self.machine;
        let _ = writeln!(
            s,
            "\ningest-bench {} — {} CPUs ({}), {:.1} GiB, Linux {}, {}, Kafka {}",
            self.bench_version,
            m.cpus,
            m.cpu_model,
            m.memory_gib,
            m.kernel,
            m.rustc,
            m.kafka_version.as_deref().unwrap_or("?")
        );
        let _ = writeln!(
            s,
            "group {}: {} devices, {} partitions; ingest-api {}; device limit {}",
            self.setup.group,
            self.setup.devices,
            self.setup.partitions,
            self.setup.ingest_api_bin,
            self.setup.device_rate_limit
        );
    }

    /// One line per phase, with its failures.
    fn write_phases(&self, s: &mut String) {
        let _ = writeln!(s, "\nPhases");
        let _ = writeln!(
            s,
            "  {:<22} {:>5} {:>6} {:>12} {:>12} {:>9} {:>9} {:>9}  cpu s (window)",
            "phase", "conns", "p/req", "req/s", "punches/s", "p50 ms", "p99 ms", "max ms"
        );
        for p in &self.phases {
            let cpu: Vec<String> = p
                .cpu_secs
                .iter()
                .map(|(k, v)| format!("{k} {v:.1}"))
                .collect();
            let _ = writeln!(
                s,
                "  {:<22} {:>5} {:>6} {:>12} {:>12} {:>9.2} {:>9.2} {:>9.2}  {}",
                p.name,
                p.workers,
                p.punches_per_request,
                thousands(p.requests_per_sec),
                thousands(p.punches_per_sec),
                p.latency_ms.p50,
                p.latency_ms.p99,
                p.latency_ms.max,
                cpu.join(", ")
            );
            if !p.failures.is_empty() {
                let failures: Vec<String> = p
                    .failures
                    .iter()
                    .map(|(k, v)| format!("{k} x{v}"))
                    .collect();
                let _ = writeln!(s, "  {:<22} failures: {}", "", failures.join(", "));
            }
        }
    }

    /// ingest-api against its baselines and the RSS goal.
    fn write_goals(&self, s: &mut String) {
        let _ = writeln!(s, "\nGoals");
        let _ = writeln!(
            s,
            "  {:<34} {:>14} {:>14} {:>7} {:>7}  {:<4} {:>9}",
            "", "ingest-api", "baseline", "ratio", "goal", "met", "cpu ratio"
        );
        for c in &self.comparisons {
            let _ = writeln!(
                s,
                "  {:<34} {:>14} {:>14} {:>7.2} {:>7}  {:<4} {:>9}",
                format!("{} ({})", c.what, c.unit),
                thousands(c.ours),
                thousands(c.baseline),
                c.ratio,
                format!(">={:.2}", c.goal),
                yes_no(c.met),
                c.cpu_ratio.map_or("-".to_owned(), |r| format!("{r:.2}"))
            );
        }
        let api = &self.ingest_api;
        let _ = writeln!(
            s,
            "  {:<34} {:>14} {:>14} {:>7} {:>7}  {}",
            "ingest-api peak RSS (MiB)",
            format!("{:.1}", api.peak_rss_mib),
            "",
            "",
            format!("<{:.0}", api.rss_goal_mib.unwrap_or(0.0)),
            yes_no(api.met.unwrap_or(false))
        );
    }

    /// Latency at a fraction of peak.
    fn write_latency(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "\nLatency at a fraction of peak (open loop, from scheduled send time)"
        );
        for l in &self.latency {
            let _ = writeln!(
                s,
                "  {:<22} {:>3.0}% = {:>9} req/s ({:>9} punches/s): p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms; late starts {}, failed {}",
                l.what,
                l.load * 100.0,
                thousands(l.target_requests_per_sec),
                thousands(l.punches_per_sec),
                l.latency_ms.p50,
                l.latency_ms.p99,
                l.latency_ms.p999,
                l.latency_ms.max,
                l.late_starts,
                l.failed
            );
        }
    }

    /// Log checks, resources, CPU per unit and warnings.
    fn write_checks(&self, s: &mut String) {
        let api = &self.ingest_api;
        let _ = writeln!(s, "\nLog checks (sum of end offsets >= punches acked)");
        for lc in &self.log_checks {
            let _ = writeln!(
                s,
                "  {:<44} {:>12} {} {:>12}  {}",
                lc.what,
                thousands(lc.end_offsets_sum as f64),
                if lc.holds { ">=" } else { "< " },
                thousands(lc.acked as f64),
                if lc.holds {
                    "ok"
                } else {
                    "FAILED: acks without records"
                }
            );
        }
        let _ = writeln!(
            s,
            "ingest-api: peak RSS {:.1} MiB (now {:.1}), CPU {:.1} s; bare endpoint: peak RSS {:.1} MiB, CPU {:.1} s",
            api.peak_rss_mib,
            api.rss_mib,
            api.cpu_secs,
            self.bare_endpoint.peak_rss_mib,
            self.bare_endpoint.cpu_secs
        );
        let _ = writeln!(s, "CPU per unit (µs):");
        for (what, us) in &self.cpu_us_per_unit {
            let _ = writeln!(s, "  {what:<52} {us:>8.2}");
        }
        if !self.warnings.is_empty() {
            let _ = writeln!(s, "\nWarnings:");
            for w in &self.warnings {
                let _ = writeln!(s, "  - {w}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1_000.0), "1,000");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
        assert_eq!(thousands(-12_345.0), "-12,345");
    }

    #[test]
    fn ratios_and_goals() {
        let c = Comparison::new("x", "u", 80.0, 100.0, "b", 0.8);
        assert!(c.met && (c.ratio - 0.8).abs() < 1e-12);
        assert!(!Comparison::new("x", "u", 1.0, 0.0, "b", 0.5).met);
    }
}
