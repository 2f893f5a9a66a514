//! Backpressure: per-device rate limits, the in-flight budgets that bound memory, and the
//! jitter that spreads retries out.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use rand::Rng as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Per-device token buckets, keyed by `<tenant>/<device>`.
///
/// Keys come only from verified tokens, so their number is bounded by the registered devices;
/// idle ones are forgotten by [`DeviceLimiter::forget_idle`].
#[derive(Debug)]
pub struct DeviceLimiter {
    limiter: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

impl DeviceLimiter {
    /// `per_sec` requests per second with bursts of `burst`.
    pub fn new(per_sec: NonZeroU32, burst: NonZeroU32) -> Self {
        Self {
            limiter: RateLimiter::keyed(Quota::per_second(per_sec).allow_burst(burst)),
            clock: DefaultClock::default(),
        }
    }

    /// `Ok` if `device` may make a request now, else how long until it may.
    // `&String`, not `&str`: governor's keyed store is looked up by `&K`, and the caller already
    // owns the key, so no copy is made per request.
    #[allow(clippy::ptr_arg)]
    pub fn check(&self, device: &String) -> Result<(), Duration> {
        self.limiter
            .check_key(device)
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Drops the state of devices that have not been seen for a while.
    pub fn forget_idle(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }

    /// Devices currently tracked.
    pub fn len(&self) -> usize {
        self.limiter.len()
    }

    /// Whether no device is tracked.
    pub fn is_empty(&self) -> bool {
        self.limiter.is_empty()
    }
}

/// A bounded budget of units (punches or bytes) held while a request is in flight.
#[derive(Debug, Clone)]
pub struct Budget {
    semaphore: Arc<Semaphore>,
    capacity: usize,
    high_water: Arc<AtomicUsize>,
}

/// Units of a [`Budget`] held by one request, returned when dropped.
#[derive(Debug)]
pub struct Held {
    _permit: Option<OwnedSemaphorePermit>,
}

impl Budget {
    /// A budget of `capacity` units.
    pub fn new(capacity: usize) -> Self {
        Self {
            semaphore: Arc::new(Semaphore::new(capacity)),
            capacity,
            high_water: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Takes `units` now or refuses at once: waiting would queue work in memory.
    pub fn try_take(&self, units: usize) -> Option<Held> {
        if units == 0 {
            return Some(Held { _permit: None });
        }
        let units_u32 = u32::try_from(units).ok()?;
        let permit = Arc::clone(&self.semaphore)
            .try_acquire_many_owned(units_u32)
            .ok()?;
        let in_use = self.in_use();
        self.high_water.fetch_max(in_use, Ordering::Relaxed);
        Some(Held {
            _permit: Some(permit),
        })
    }

    /// Units held right now.
    pub fn in_use(&self) -> usize {
        self.capacity - self.semaphore.available_permits()
    }

    /// The most units ever held at once.
    pub fn high_water(&self) -> usize {
        self.high_water.load(Ordering::Relaxed)
    }

    /// The budget's size.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

/// A `Retry-After` between `base` and `2 * base` seconds, uniformly: "full jitter" on top of
/// a floor, so a crowd refused together comes back spread over a whole `base`.
pub fn jittered(base: u32) -> u32 {
    let base = base.max(1);
    rand::rng().random_range(base..=base.saturating_mul(2))
}

/// A `Retry-After` for a rate-limited device: the bucket's own wait, rounded up, plus up to
/// half of it again (at least a second of spread).
pub fn jittered_wait(wait: Duration) -> u32 {
    let floor = u32::try_from(wait.as_secs())
        .unwrap_or(u32::MAX)
        .saturating_add(u32::from(wait.subsec_nanos() > 0))
        .max(1);
    let spread = (floor / 2).max(1);
    floor.saturating_add(rand::rng().random_range(0..=spread))
}

/// An operator's `Retry-After` with up to 10% added, never less than asked.
pub fn jittered_operator(seconds: u32) -> u32 {
    let seconds = seconds.max(1);
    seconds.saturating_add(rand::rng().random_range(0..=(seconds / 10).max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nz(n: u32) -> NonZeroU32 {
        NonZeroU32::new(n).expect("non-zero")
    }

    #[test]
    fn a_device_gets_its_burst_then_waits_and_others_are_unaffected() {
        let limiter = DeviceLimiter::new(nz(1), nz(3));
        for _ in 0..3 {
            assert!(limiter.check(&"t/a".to_owned()).is_ok());
        }
        let wait = limiter
            .check(&"t/a".to_owned())
            .expect_err("over the limit");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        assert!(
            limiter.check(&"t/b".to_owned()).is_ok(),
            "another device has its own bucket"
        );
        assert_eq!(limiter.len(), 2);
    }

    #[test]
    fn budget_refuses_instead_of_waiting_and_returns_units_on_drop() {
        let budget = Budget::new(10);
        let a = budget.try_take(6).expect("fits");
        assert!(budget.try_take(5).is_none(), "would exceed the budget");
        let b = budget.try_take(4).expect("fits exactly");
        assert_eq!(budget.in_use(), 10);
        drop(a);
        drop(b);
        assert_eq!(budget.in_use(), 0);
        assert_eq!(budget.high_water(), 10);
        assert!(
            budget.try_take(11).is_none(),
            "more than the whole budget never fits"
        );
        assert!(budget.try_take(0).is_some());
    }

    #[test]
    fn jitter_stays_in_its_range_and_actually_varies() {
        let values: Vec<u32> = (0..200).map(|_| jittered(5)).collect();
        assert!(values.iter().all(|v| (5..=10).contains(v)));
        assert!(
            values.iter().any(|&v| v != values[0]),
            "no jitter: {values:?}"
        );
        let waits: Vec<u32> = (0..200)
            .map(|_| jittered_wait(Duration::from_millis(200)))
            .collect();
        assert!(waits.iter().all(|v| (1..=2).contains(v)));
        let op: Vec<u32> = (0..200).map(|_| jittered_operator(300)).collect();
        assert!(op.iter().all(|v| (300..=330).contains(v)));
        assert!(op.iter().any(|&v| v != op[0]));
    }
}
