//! One round of a phase, with a progress bar and per-process CPU accounting, and a phase
//! accumulated over its rounds.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::context::Context;
use crate::load::{self, Outcome, Pace, Sender, Spec, Window};
use crate::process;
use crate::report::{self, PhaseReport};

/// Round `r` runs ingest-api first (`true`) on even rounds and its baseline first on odd ones,
/// so a linear drift of the machine's speed favours neither.
pub(super) fn ordered(r: u32) -> [bool; 2] {
    if r.is_multiple_of(2) {
        [true, false]
    } else {
        [false, true]
    }
}

/// A phase accumulated over its rounds.
#[derive(Debug)]
pub(super) struct Rounds {
    name: &'static str,
    target: &'static str,
    workers: usize,
    spec: Spec,
    rounds: u32,
    outcome: Outcome,
    cpu: BTreeMap<String, f64>,
    measured: Duration,
    warmup: Duration,
}

impl Rounds {
    pub(super) fn new(
        name: &'static str,
        target: &'static str,
        workers: usize,
        spec: Spec,
    ) -> Self {
        Self {
            name,
            target,
            workers,
            spec,
            rounds: 0,
            outcome: Outcome::new(),
            cpu: BTreeMap::new(),
            measured: Duration::ZERO,
            warmup: Duration::ZERO,
        }
    }

    pub(super) fn add(&mut self, (outcome, cpu, window): (Outcome, BTreeMap<String, f64>, Window)) {
        self.rounds += 1;
        self.outcome.merge(outcome);
        for (process, secs) in cpu {
            *self.cpu.entry(process).or_default() += secs;
        }
        self.measured += window.measured();
        self.warmup += window.from - window.start;
    }

    pub(super) fn report(self) -> PhaseReport {
        let mut report = PhaseReport::new(
            self.name,
            self.target,
            self.workers,
            self.spec,
            self.measured,
            self.warmup,
            &self.outcome,
            self.cpu,
        );
        report.rounds = self.rounds;
        report
    }
}

/// Runs one round of a phase with a progress bar and per-process CPU accounting.
pub(super) async fn round<S: Sender>(
    cx: &Context,
    phase: &Rounds,
    r: u32,
    senders: Vec<S>,
    measure_secs: f64,
) -> (Outcome, BTreeMap<String, f64>, Window) {
    let spec = phase.spec;
    let window = Window::starting_now(
        Duration::from_secs_f64(cx.args.warmup_secs),
        Duration::from_secs_f64(measure_secs),
    );
    let label = if cx.args.rounds > 1 && !matches!(spec.pace, Pace::Open { .. }) {
        format!("{} {}/{}", phase.name, r + 1, cx.args.rounds)
    } else {
        phase.name.to_owned()
    };
    let acked = Arc::new(AtomicU64::new(0));
    let progress = Progress::start(&label, window, Arc::clone(&acked), spec.punches_per_request);
    let meter = tokio::spawn(cpu_over(cx.pids.clone(), window));
    let outcome = load::drive(senders, &cx.fleet, spec, window, &acked).await;
    progress.finish();
    let cpu = meter.await.unwrap_or_default();
    let secs = window.measured().as_secs_f64();
    let failed: u64 = outcome.failures.values().sum();
    let latency = &outcome.latency_us;
    eprintln!(
        "  {label:<26} {:>10.0} req/s {:>10.0} punches/s  p50 {:.2} ms  p99 {:.2} ms{}",
        outcome.requests as f64 / secs,
        outcome.punches as f64 / secs,
        latency.value_at_quantile(0.5) as f64 / 1000.0,
        latency.value_at_quantile(0.99) as f64 / 1000.0,
        if failed > 0 {
            format!("  ({failed} failed: {:?})", outcome.failures)
        } else {
            String::new()
        }
    );
    (outcome, cpu, window)
}

/// CPU seconds each process used between `window.from` and `window.until`.
async fn cpu_over(pids: Vec<(&'static str, u32)>, window: Window) -> BTreeMap<String, f64> {
    let sample = |pids: &[(&'static str, u32)]| -> Vec<Option<f64>> {
        pids.iter()
            .map(|&(_, pid)| process::usage(pid).map(|u| u.cpu_secs))
            .collect()
    };
    tokio::time::sleep_until(window.from.into()).await;
    let before = sample(&pids);
    tokio::time::sleep_until(window.until.into()).await;
    let after = sample(&pids);
    pids.iter()
        .zip(before.into_iter().zip(after))
        .filter_map(|(&(name, _), (b, a))| Some((name.to_owned(), a? - b?)))
        .collect()
}

/// A phase's progress bar: elapsed time against the phase's length, and the current rate.
struct Progress {
    bar: ProgressBar,
    ticker: tokio::task::JoinHandle<()>,
}

impl Progress {
    fn start(name: &str, window: Window, acked: Arc<AtomicU64>, per_request: usize) -> Self {
        let total = window.until - window.start;
        let bar = ProgressBar::new(total.as_millis() as u64);
        bar.set_style(
            ProgressStyle::with_template("  {prefix:<24} [{bar:16}] {elapsed:>4}/{len_secs} {msg}")
                .map(|style| {
                    style.progress_chars("=> ").with_key(
                        "len_secs",
                        move |_: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                            let _ = write!(w, "{}s", total.as_secs());
                        },
                    )
                })
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_prefix(name.to_owned());
        let ticker = {
            let bar = bar.clone();
            tokio::spawn(async move {
                let tick = Duration::from_millis(250);
                let mut last = 0;
                loop {
                    tokio::time::sleep(tick).await;
                    let now = acked.load(Ordering::Relaxed);
                    let rate = (now - last) as f64 / tick.as_secs_f64();
                    last = now;
                    let phase = if std::time::Instant::now() < window.from {
                        "warm-up"
                    } else {
                        "measuring"
                    };
                    bar.set_position(window.start.elapsed().as_millis() as u64);
                    let unit = if per_request > 1 {
                        "punches/s"
                    } else {
                        "req/s"
                    };
                    bar.set_message(format!("{phase} {} {unit}", report::thousands(rate)));
                }
            })
        };
        Self { bar, ticker }
    }

    fn finish(self) {
        self.ticker.abort();
        self.bar.finish_and_clear();
    }
}
