//! One recorder's loop: take pending punches, send them, read the receipt, and wait as its
//! behaviour says after anything but a `200`.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::header::HeaderValue;
use rand::Rng as _;
use serde::Deserialize;
use tokio::sync::watch;

use super::config::{Behaviour, PUNCHES_PATH, SimError, StormConfig};
use super::fleet::punch_of;
use super::live::Live;
use super::outcome::{RecorderOutcome, SeqSet};
use crate::http::{Answer, Client};

/// The receipt of a `200`.
#[derive(Debug, Deserialize)]
struct Receipt {
    acked: Vec<u64>,
    #[serde(default)]
    rejected: Vec<RejectedItem>,
}

#[derive(Debug, Deserialize)]
struct RejectedItem {
    seq: Option<u64>,
}

/// One recorder's loop.
pub(super) struct RecorderTask {
    config: Arc<StormConfig>,
    live: Arc<Live>,
    index: usize,
    authorization: HeaderValue,
    client: Client,
    stop: watch::Receiver<bool>,
    started: Instant,
    start_delay: Duration,
    trickle_phase: Duration,
}

/// A recorder's pending punches: `retry` (sent, not yet acked, in seq order) before
/// `next..created` (never sent). Seqs are contiguous, so nothing is materialised.
#[derive(Debug, Default)]
struct Pending {
    retry: std::collections::VecDeque<u64>,
    next: u64,
    created: u64,
}

impl Pending {
    fn len(&self) -> u64 {
        self.retry.len() as u64 + (self.created + 1 - self.next)
    }

    /// Up to `n` seqs to send, oldest first; they move to `retry` until answered.
    fn take(&mut self, n: usize) -> Vec<u64> {
        let mut out: Vec<u64> = self.retry.iter().take(n).copied().collect();
        while out.len() < n && self.next <= self.created {
            self.retry.push_back(self.next);
            out.push(self.next);
            self.next += 1;
        }
        out
    }

    /// Removes answered seqs (acked or rejected) from `retry`.
    fn answered(&mut self, seqs: &[u64]) {
        if seqs.is_empty() {
            return;
        }
        let mut sorted = seqs.to_vec();
        sorted.sort_unstable();
        self.retry.retain(|s| sorted.binary_search(s).is_err());
    }
}

impl RecorderTask {
    /// Recorder `index` of `config`, online after its share of the start spread, its trickle
    /// phased likewise so the fleet's new punches do not arrive in lockstep.
    pub(super) fn new(
        config: &Arc<StormConfig>,
        live: &Arc<Live>,
        index: usize,
        stop: watch::Receiver<bool>,
        started: Instant,
    ) -> Result<Self, SimError> {
        let n = config.recorders.len();
        let recorder = &config.recorders[index];
        let authorization = HeaderValue::from_str(&format!("Bearer {}", recorder.token))
            .map_err(|_| SimError::Token(recorder.device.to_string()))?;
        let delay = config.start_spread.mul_f64(index as f64 / n as f64);
        Ok(Self {
            config: Arc::clone(config),
            live: Arc::clone(live),
            index,
            authorization,
            client: Client::new(config.target, config.request_timeout),
            stop,
            started,
            start_delay: delay,
            trickle_phase: config
                .trickle_every
                .map(|every| every.mul_f64(index as f64 / n as f64))
                .unwrap_or_default(),
        })
    }

    fn stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Sleeps `duration` unless the storm stops first; true if it stopped.
    async fn pause(&self, duration: Duration) -> bool {
        let mut stop = self.stop.clone();
        tokio::select! {
            _ = tokio::time::sleep(duration) => self.stopped(),
            _ = stop.wait_for(|s| *s) => true,
        }
    }

    /// Punches created by now: the pool, then one per `trickle_every` since the start.
    fn created_by_now(&self) -> u64 {
        let pool = self.config.pool;
        match self.config.trickle_every {
            Some(every) if !every.is_zero() => {
                let elapsed = self.started.elapsed();
                let since = elapsed.saturating_sub(self.trickle_phase);
                pool + (since.as_secs_f64() / every.as_secs_f64()) as u64
            }
            _ => pool,
        }
    }

    /// How long until the next trickle punch exists.
    fn until_next_trickle(&self, created: u64) -> Option<Duration> {
        let every = self.config.trickle_every?;
        let k = created + 1 - self.config.pool;
        let due = self.trickle_phase + every.mul_f64(k as f64);
        Some(due.saturating_sub(self.started.elapsed()))
    }

    fn body(&self, seqs: &[u64]) -> Bytes {
        use std::fmt::Write as _;
        let recorder = &self.config.recorders[self.index];
        let mut body = String::with_capacity(48 + seqs.len() * 100);
        let _ = write!(body, r#"{{"device_id":"{}","punches":["#, recorder.device);
        for (i, &seq) in seqs.iter().enumerate() {
            if i > 0 {
                body.push(',');
            }
            let punch = punch_of(recorder, self.config.first_day, seq);
            let _ = write!(
                body,
                r#"{{"seq":{seq},"card_id":"{}","kind":"{}","at":"{}"}}"#,
                punch.card,
                punch.kind.as_str(),
                punch.at
            );
        }
        body.push_str("]}");
        Bytes::from(body)
    }

    pub(super) async fn run(mut self) -> RecorderOutcome {
        let recorder = &self.config.recorders[self.index];
        let mut outcome = RecorderOutcome {
            tenant: recorder.tenant.to_string(),
            device: recorder.device.to_string(),
            acked: SeqSet::default(),
            created: 0,
            pending: 0,
            pool_drained_after_secs: (self.config.pool == 0).then_some(0.0),
        };
        if outcome.pool_drained_after_secs.is_some() {
            self.live.drained.fetch_add(1, Ordering::Relaxed);
        }
        let mut pending = Pending {
            next: 1,
            ..Pending::default()
        };
        let mut last_pending = 0u64;
        let mut failures: u32 = 0;
        if !self.start_delay.is_zero() && self.pause(self.start_delay).await {
            return self.finish(outcome, &pending, last_pending);
        }
        loop {
            if self.stopped() {
                break;
            }
            pending.created = self.created_by_now();
            let now_pending = pending.len();
            self.live_pending(&mut last_pending, now_pending);
            if now_pending == 0 {
                let wait = self
                    .until_next_trickle(pending.created)
                    .unwrap_or(Duration::from_secs(3600));
                if self.pause(wait.max(Duration::from_millis(1))).await {
                    break;
                }
                continue;
            }
            let per_request = match self.config.behaviour {
                Behaviour::Legacy => 1,
                Behaviour::Contract => self.config.batch,
            };
            let seqs = pending.take(per_request);
            let wait = self
                .send(&seqs, &mut outcome, &mut pending, &mut failures)
                .await;
            if outcome.pool_drained_after_secs.is_none()
                && pending.next > self.config.pool
                && pending.retry.front().is_none_or(|&s| s > self.config.pool)
            {
                outcome.pool_drained_after_secs = Some(self.started.elapsed().as_secs_f64());
                self.live.drained.fetch_add(1, Ordering::Relaxed);
            }
            if let Some(wait) = wait
                && self.pause(wait).await
            {
                break;
            }
        }
        self.finish(outcome, &pending, last_pending)
    }

    /// Sends `seqs` once and records the answer; the wait before the next request, if any.
    async fn send(
        &mut self,
        seqs: &[u64],
        outcome: &mut RecorderOutcome,
        pending: &mut Pending,
        failures: &mut u32,
    ) -> Option<Duration> {
        let body = self.body(seqs);
        let sent = Instant::now();
        let result = self
            .client
            .post_json(PUNCHES_PATH, &self.authorization, body)
            .await;
        let latency = sent.elapsed();
        let second = self.started.elapsed().as_secs() as usize;
        match result {
            Ok(answer) if answer.status == 200 => {
                let (acked, rejected) = self.receipt(&answer);
                self.live.record(
                    second,
                    "200",
                    latency,
                    acked.len() as u64,
                    rejected.len() as u64,
                );
                for &seq in &acked {
                    outcome.acked.insert(seq);
                }
                pending.answered(&acked);
                pending.answered(&rejected);
                *failures = 0;
                None
            }
            Ok(answer) => {
                let label = answer.status.as_str().to_owned();
                self.live.record(second, &label, latency, 0, 0);
                let retry_after = answer.retry_after();
                if matches!(answer.status.as_u16(), 429 | 503) && retry_after.is_none() {
                    self.live.missing_retry_after();
                }
                *failures = failures.saturating_add(1);
                Some(self.wait_after_failure(retry_after, *failures))
            }
            Err(error) => {
                self.live.record(second, error.label(), latency, 0, 0);
                tracing::debug!(device = %self.config.recorders[self.index].device, %error, "request failed");
                *failures = failures.saturating_add(1);
                Some(self.wait_after_failure(None, *failures))
            }
        }
    }

    fn live_pending(&self, last: &mut u64, now: u64) {
        if now >= *last {
            self.live.pending.fetch_add(now - *last, Ordering::Relaxed);
        } else {
            self.live.pending.fetch_sub(*last - now, Ordering::Relaxed);
        }
        *last = now;
    }

    fn finish(
        &self,
        mut outcome: RecorderOutcome,
        pending: &Pending,
        mut last_pending: u64,
    ) -> RecorderOutcome {
        outcome.created = pending.created;
        outcome.pending = if pending.created == 0 {
            0
        } else {
            pending.len()
        };
        self.live_pending(&mut last_pending, 0);
        outcome
    }

    /// The acked and rejected seqs of a `200`; an unreadable receipt acks nothing (the
    /// punches stay pending and are sent again, which is harmless).
    fn receipt(&self, answer: &Answer) -> (Vec<u64>, Vec<u64>) {
        match serde_json::from_slice::<Receipt>(&answer.body) {
            Ok(receipt) => (
                receipt.acked,
                receipt.rejected.into_iter().filter_map(|r| r.seq).collect(),
            ),
            Err(error) => {
                tracing::warn!(%error, "unreadable receipt; the punches stay pending");
                (Vec::new(), Vec::new())
            }
        }
    }

    fn wait_after_failure(&self, retry_after: Option<u64>, failures: u32) -> Duration {
        match self.config.behaviour {
            Behaviour::Legacy => self.config.legacy_resend,
            Behaviour::Contract => match retry_after {
                Some(seconds) => Duration::from_secs(seconds),
                None => full_jitter(self.config.backoff_base, self.config.backoff_cap, failures),
            },
        }
    }
}

/// Exponential backoff with full jitter: uniform in `[0, min(cap, base * 2^(failures - 1))]`.
pub fn full_jitter(base: Duration, cap: Duration, failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(30);
    let ceiling = base.saturating_mul(1u32 << exp).min(cap);
    ceiling.mul_f64(rand::rng().random_range(0.0..=1.0))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn pending_sends_retries_first_and_in_order() {
        let mut p = Pending {
            next: 1,
            created: 5,
            ..Pending::default()
        };
        assert_eq!(p.take(2), vec![1, 2]);
        p.answered(&[2]);
        assert_eq!(p.take(3), vec![1, 3, 4]);
        p.answered(&[1, 3, 4]);
        assert_eq!(p.len(), 1);
        assert_eq!(p.take(5), vec![5]);
    }

    #[test]
    fn full_jitter_stays_under_its_ceiling() {
        let base = Duration::from_secs(1);
        let cap = Duration::from_secs(300);
        for failures in 1..40 {
            let wait = full_jitter(base, cap, failures);
            assert!(wait <= cap);
            assert!(wait <= base * 2u32.pow(failures.saturating_sub(1).min(20)));
        }
    }
}
