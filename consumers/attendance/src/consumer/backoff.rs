//! Exponential backoff between retries of one group's consumer, interruptible by a cancel
//! future (shutdown, or the drain deadline).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// The current retry delay: doubles on every wait up to `max`, back to `initial` on success.
#[derive(Debug)]
pub(super) struct Backoff {
    delay: Duration,
    initial: Duration,
    max: Duration,
}

impl Backoff {
    pub(super) fn new(initial: Duration, max: Duration) -> Self {
        Self {
            delay: initial,
            initial,
            max,
        }
    }

    /// The delay the next wait takes.
    pub(super) fn delay(&self) -> Duration {
        self.delay
    }

    /// After a success: the next failure waits the initial delay again.
    pub(super) fn reset(&mut self) {
        self.delay = self.initial;
    }

    /// Waits the current delay (doubling it), or returns false when `cancel` fires.
    pub(super) async fn wait(&mut self, cancel: &mut Pin<&mut impl Future<Output = ()>>) -> bool {
        let delay = self.delay;
        self.delay = (self.delay * 2).min(self.max);
        tokio::select! {
            biased;
            () = cancel.as_mut() => false,
            () = tokio::time::sleep(delay) => true,
        }
    }
}
