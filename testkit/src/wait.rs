//! Waiting on a condition with a deadline, and names that do not collide between tests.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::bail;

/// A short random suffix for names that must not collide between tests and runs.
pub fn unique_suffix() -> String {
    format!("{:08x}", rand::random::<u32>())
}

/// Polls `check` every 100 ms until it returns `Some`, or fails after `deadline`.
pub async fn eventually<T, F, Fut>(
    what: &str,
    deadline: Duration,
    mut check: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Option<T>>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        if start.elapsed() > deadline {
            bail!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
