//! Driving load: pacing, the workers (closed or open loop) and what they measured.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::fleet::Fleet;
use super::senders::{Failure, Sender};

/// An open-loop request issued later than this after its scheduled time counts as late.
const LATE: Duration = Duration::from_millis(1);
/// Pause after a failure in closed loop, so refusals do not turn into a busy loop.
const FAILURE_PAUSE: Duration = Duration::from_millis(20);

/// How requests are paced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// Each worker sends its next request as soon as the previous one is answered.
    Closed,
    /// Requests are scheduled at this total rate, spread evenly over the workers.
    Open {
        /// Total requests per second.
        requests_per_sec: f64,
    },
}

/// What one phase sends.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// Punches per request.
    pub punches_per_request: usize,
    /// Pacing.
    pub pace: Pace,
}

/// The phase's timeline: warm-up from `start`, measurement from `from` until `until`.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// When the workers start.
    pub start: Instant,
    /// When measurement starts.
    pub from: Instant,
    /// When measurement ends (no request is started after it).
    pub until: Instant,
}

impl Window {
    /// A window starting now.
    pub fn starting_now(warmup: Duration, measure: Duration) -> Self {
        let start = Instant::now();
        Self {
            start,
            from: start + warmup,
            until: start + warmup + measure,
        }
    }

    /// Length of the measured part.
    pub fn measured(&self) -> Duration {
        self.until - self.from
    }
}

/// What the workers of a phase did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Requests fully acked and counted (closed loop: completed in the window; open loop:
    /// scheduled in the window).
    pub requests: u64,
    /// Punches acked by counted requests.
    pub punches: u64,
    /// Punches acked over the whole phase, warm-up and tail included (for the log check).
    pub punches_total: u64,
    /// Open loop: counted requests issued more than 1 ms after their scheduled time.
    pub late: u64,
    /// Failures by kind, over the whole phase.
    pub failures: BTreeMap<String, u64>,
    /// One example message per failure kind.
    pub failure_examples: BTreeMap<String, String>,
    /// Latency of counted requests, microseconds.
    pub latency_us: Histogram<u64>,
}

impl Default for Outcome {
    fn default() -> Self {
        Self::new()
    }
}

impl Outcome {
    /// Nothing yet.
    pub fn new() -> Self {
        Self {
            requests: 0,
            punches: 0,
            punches_total: 0,
            late: 0,
            failures: BTreeMap::new(),
            failure_examples: BTreeMap::new(),
            latency_us: new_histogram(),
        }
    }

    fn fail(&mut self, failure: Failure) {
        *self.failures.entry(failure.kind.clone()).or_default() += 1;
        self.failure_examples
            .entry(failure.kind)
            .or_insert(failure.detail);
    }

    /// Adds another outcome (another worker, or another round of the same phase).
    pub fn merge(&mut self, other: Outcome) {
        self.requests += other.requests;
        self.punches += other.punches;
        self.punches_total += other.punches_total;
        self.late += other.late;
        for (kind, count) in other.failures {
            *self.failures.entry(kind).or_default() += count;
        }
        for (kind, example) in other.failure_examples {
            self.failure_examples.entry(kind).or_insert(example);
        }
        // Both histograms have the same bounds; values beyond them were already clamped.
        let _ = self.latency_us.add(&other.latency_us);
    }
}

fn new_histogram() -> Histogram<u64> {
    // 1 µs to 10 min at 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

/// Runs one sender per worker over `window`, each worker sending for the devices
/// `w, w + workers, ...`; `progress` counts acked punches as they come.
pub async fn drive<S: Sender>(
    senders: Vec<S>,
    fleet: &Arc<Fleet>,
    spec: Spec,
    window: Window,
    progress: &Arc<AtomicU64>,
) -> Outcome {
    let workers = senders.len();
    let tasks: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(w, sender)| {
            let devices: Vec<usize> = (w..fleet.len()).step_by(workers).collect();
            tokio::spawn(worker(
                sender,
                w,
                workers,
                devices,
                Arc::clone(fleet),
                spec,
                window,
                Arc::clone(progress),
            ))
        })
        .collect();
    let mut outcome = Outcome::new();
    for task in futures::future::join_all(tasks).await {
        match task {
            Ok(part) => outcome.merge(part),
            Err(error) => outcome.fail(Failure::new("worker panicked", error)),
        }
    }
    outcome
}

#[allow(clippy::too_many_arguments)]
async fn worker<S: Sender>(
    mut sender: S,
    index: usize,
    workers: usize,
    devices: Vec<usize>,
    fleet: Arc<Fleet>,
    spec: Spec,
    window: Window,
    progress: Arc<AtomicU64>,
) -> Outcome {
    let mut outcome = Outcome::new();
    if devices.is_empty() {
        return outcome;
    }
    let n = spec.punches_per_request;
    let (interval, mut due) = match spec.pace {
        Pace::Closed => (None, window.start),
        Pace::Open { requests_per_sec } => (
            Some(Duration::from_secs_f64(workers as f64 / requests_per_sec)),
            window.start + Duration::from_secs_f64(index as f64 / requests_per_sec),
        ),
    };
    let mut turn = 0;
    loop {
        let intended = match interval {
            None => {
                let now = Instant::now();
                if now >= window.until {
                    break;
                }
                now
            }
            Some(interval) => {
                if due >= window.until {
                    break;
                }
                let now = Instant::now();
                if due > now {
                    tokio::time::sleep_until(due.into()).await;
                } else if now - due > LATE && due >= window.from {
                    outcome.late += 1;
                }
                let scheduled = due;
                due += interval;
                scheduled
            }
        };
        let device = devices[turn % devices.len()];
        turn += 1;
        let first_seq = fleet.take_seqs(device, n);
        let result = sender.send(device, first_seq, n).await;
        let done = Instant::now();
        let counted = match spec.pace {
            Pace::Closed => done >= window.from && done <= window.until,
            Pace::Open { .. } => intended >= window.from,
        };
        match result {
            Ok(acked) => {
                progress.fetch_add(acked, Ordering::Relaxed);
                outcome.punches_total += acked;
                if acked < n as u64 {
                    outcome.fail(Failure::new(
                        "partial",
                        format!("{acked} of {n} punches acked"),
                    ));
                }
                if counted {
                    outcome.requests += 1;
                    outcome.punches += acked;
                    let micros = u64::try_from((done - intended).as_micros()).unwrap_or(u64::MAX);
                    outcome.latency_us.saturating_record(micros.max(1));
                }
            }
            Err(failure) => {
                outcome.fail(failure);
                if interval.is_none() {
                    tokio::time::sleep(FAILURE_PAUSE).await;
                }
            }
        }
    }
    outcome
}
