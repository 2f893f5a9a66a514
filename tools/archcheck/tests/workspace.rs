//! The workspace itself keeps its shape: no module or crate cycle, one Kafka client factory,
//! one Postgres door, files and functions within their limits.

use std::path::Path;

use dakoku_archcheck::{Limits, check_workspace};

#[test]
fn the_workspace_keeps_its_shape() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let report = check_workspace(&root, Limits::default()).expect("the check runs");
    assert!(report.crates_checked > 10, "{report}");
    assert!(report.is_clean(), "{report}");
}
