//! Every scripted fault, reduced (a few recorders, a few thousand punches, seconds of
//! downtime), each on a private stack of its own: broker SIGKILL, licence-check and attendance
//! SIGKILL mid-batch, Postgres restart, acceptor SIGKILL with requests in flight. Each must end
//! with every acked punch stored exactly once and both consumers caught up.

use std::path::PathBuf;
use std::time::Duration;

use dakoku_storm::faults::{Fault, FaultOptions, run_fault};

fn options() -> FaultOptions {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut options = FaultOptions::new(repo, PathBuf::from(env!("CARGO_BIN_EXE_storm")));
    options.devices = 6;
    options.pool = 1_500;
    options.batch = 50;
    options.inject_at = 0.3;
    options.down_for = Duration::from_secs(2);
    options.deadline = Duration::from_secs(180);
    options
}

/// One after the other: each private stack runs a JVM, and two cores do not want five.
#[tokio::test]
async fn no_acked_punch_is_lost_or_doubled_through_any_fault() -> anyhow::Result<()> {
    let options = options();
    let mut failed = Vec::new();
    for fault in Fault::ALL {
        let result = run_fault(&options, fault).await?;
        eprintln!("{result}");
        assert!(result.acked >= 6 * 1_500, "{result}");
        if !result.passed() {
            failed.push(result.to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "faults that lost or doubled:\n{}",
        failed.join("\n")
    );
    Ok(())
}
