//! The attendance consumer run in-process on a task, stoppable, for the end-to-end tests
//! (scenarios, the oracle and readers of what it wrote are in `dakoku_testkit`).

use std::time::Duration;

use anyhow::Context as _;
use dakoku_attendance::{AttendanceError, Config};
use dakoku_schemas::GroupId;
use dakoku_testkit::Stack;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The attendance consumer running in-process on a task.
#[derive(Debug)]
pub struct TestAttendance {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), AttendanceError>>>,
}

impl TestAttendance {
    /// Starts the consumer of `group` on `database_url` with test-friendly settings (small
    /// batches, short waits and retries), changed by `tweak`.
    pub fn start(
        stack: &Stack,
        database_url: &str,
        group: &GroupId,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        let mut config = Config::new(&stack.brokers, database_url, vec![group.clone()]);
        config.batch_max_records = 500;
        config.batch_max_wait_ms = 50;
        config.retry_initial_ms = 50;
        config.retry_max_ms = 1_000;
        config.statement_timeout_ms = 10_000;
        config.session_timeout_ms = 10_000;
        config.drain_timeout_ms = 5_000;
        config.client_id = Some(format!("test-attendance-{group}"));
        tweak(&mut config);
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(dakoku_attendance::run_with_listener(config, None, async {
            let _ = rx.await;
        }));
        Self {
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// Asks the consumer to stop and waits until it has drained and returned.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(60), task)
                .await
                .context("attendance did not stop within 60 s")???;
        }
        Ok(())
    }

    /// Whether the consumer task has ended (it only ends on its own with an error).
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(JoinHandle::is_finished)
    }
}

impl Drop for TestAttendance {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}
