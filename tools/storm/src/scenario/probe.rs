//! The `/healthz` probe: times the target's health answer every 100 ms on a connection and a
//! thread of its own, filling in missed ticks (no coordinated omission).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::sync::watch;

use crate::http::Client;

/// How often the health probe asks.
const PROBE_EVERY: Duration = Duration::from_millis(100);

/// The `/healthz` probe's results.
#[derive(Debug)]
pub(super) struct Probe {
    pub(super) histogram: Histogram<u64>,
    /// Slowest answer per second of the storm, µs.
    pub(super) per_second_max: Vec<u64>,
    pub(super) failures: u64,
}

async fn probe(
    addr: SocketAddr,
    started: Instant,
    probe: Arc<Mutex<Probe>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut client = Client::new(addr, Duration::from_secs(5));
    let mut ticker = tokio::time::interval(PROBE_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            _ = ticker.tick() => {}
        }
        let sent = Instant::now();
        let answer = client.get("/healthz").await;
        let micros = u64::try_from(sent.elapsed().as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        let second = started.elapsed().as_secs() as usize;
        let mut probe = probe.lock().unwrap_or_else(|e| e.into_inner());
        // A stalled probe would otherwise record one slow answer where a steady prober saw
        // many: fill in the missed ticks (no coordinated omission).
        let _ = probe.histogram.record_correct(
            micros.min(120_000_000),
            u64::try_from(PROBE_EVERY.as_micros()).unwrap_or(100_000),
        );
        if probe.per_second_max.len() <= second {
            probe.per_second_max.resize(second + 1, 0);
        }
        probe.per_second_max[second] = probe.per_second_max[second].max(micros);
        if !matches!(&answer, Ok(a) if a.status == 200) {
            probe.failures += 1;
        }
    }
}

/// The probe on a thread and runtime of its own: on the simulator's runtime, the time the probe
/// waits to be scheduled among a thousand busy recorder tasks would be counted as acceptor
/// latency.
pub(super) struct ProbeThread {
    state: Arc<Mutex<Probe>>,
    stop: watch::Sender<bool>,
    thread: std::thread::JoinHandle<std::io::Result<()>>,
}

impl ProbeThread {
    /// Starts probing `addr`; seconds count from `started`.
    pub(super) fn start(addr: SocketAddr, started: Instant) -> anyhow::Result<Self> {
        let (stop, stop_rx) = watch::channel(false);
        let state = Arc::new(Mutex::new(Probe {
            histogram: Histogram::new_with_max(120_000_000, 3)?,
            per_second_max: Vec::new(),
            failures: 0,
        }));
        let thread = {
            let state = Arc::clone(&state);
            std::thread::Builder::new()
                .name("healthz-probe".into())
                .spawn(move || -> std::io::Result<()> {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()?
                        .block_on(probe(addr, started, state, stop_rx));
                    Ok(())
                })?
        };
        Ok(Self {
            state,
            stop,
            thread,
        })
    }

    /// Stops the probe and waits for its thread.
    pub(super) async fn stop(self) -> ProbeResults {
        let _ = self.stop.send(true);
        let thread = self.thread;
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        ProbeResults(self.state)
    }
}

/// A stopped probe's state, taken once the run is over.
pub(super) struct ProbeResults(Arc<Mutex<Probe>>);

impl ProbeResults {
    /// What the probe measured.
    pub(super) fn take(self) -> anyhow::Result<Probe> {
        Ok(std::mem::replace(
            &mut *self.0.lock().unwrap_or_else(|e| e.into_inner()),
            Probe {
                histogram: Histogram::new(3)?,
                per_second_max: Vec::new(),
                failures: 0,
            },
        ))
    }
}
