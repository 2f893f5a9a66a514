//! Cross-implementation check with Python's fastavro, an independent Avro implementation:
//! what our codec writes, fastavro reads (marker, fingerprint, every field); what fastavro
//! writes in single-object encoding, our codec reads. Driven by `tests/fastavro_check.py`.
//!
//! Python comes from `DAKOKU_PYTHON`, else `python3`; it must have fastavro (pinned in
//! `tests/requirements.txt`). This test fails, never skips, when it does not.

mod common;

use std::{
    fmt::Debug,
    path::{Path, PathBuf},
    process::Command,
};

use common::*;
use dakoku_schemas::{AvroRecord, decode, encode};
use proptest::{
    strategy::{Strategy, ValueTree},
    test_runner::{Config, TestRunner},
};
use serde::Serialize;

const FIX: &str = "scripts/test installs it; or: pip install -r schemas/tests/requirements.txt";

fn python() -> String {
    std::env::var("DAKOKU_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn require_fastavro(python: &str) {
    let probe = Command::new(python)
        .args(["-c", "import fastavro"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run Python {python:?} ({e}): set DAKOKU_PYTHON; {FIX}"));
    assert!(
        probe.status.success(),
        "fastavro is not importable by {python:?}: {FIX}\n{}",
        String::from_utf8_lossy(&probe.stderr)
    );
}

/// A fixed pseudo-random sample, the same on every run, so a failure reproduces.
fn sample<S: Strategy>(strategy: S, n: usize) -> Vec<S::Value> {
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    (0..n)
        .map(|_| {
            strategy
                .new_tree(&mut runner)
                .expect("strategy generates")
                .current()
        })
        .collect()
}

/// Decodes fastavro's bytes for one value and compares.
type Check = Box<dyn Fn(&[u8])>;

struct Written {
    name: String,
    check: Check,
}

fn write_all<T>(dir: &Path, records: Vec<T>) -> Vec<Written>
where
    T: AvroRecord + Serialize + PartialEq + Debug + Clone + 'static,
{
    let record = T::schema().name().trim_start_matches("dakoku.").to_owned();
    records
        .into_iter()
        .enumerate()
        .map(|(i, value)| {
            let name = format!("{record}.{i}");
            let bytes = encode(&value).expect("encodes");
            std::fs::write(dir.join(format!("{name}.bin")), &bytes).expect("write .bin");
            let expected = serde_json::to_vec_pretty(&value).expect("to JSON");
            std::fs::write(dir.join(format!("{name}.json")), expected).expect("write .json");
            let label = name.clone();
            Written {
                name,
                check: Box::new(move |theirs: &[u8]| {
                    let decoded: T = decode(theirs)
                        .unwrap_or_else(|e| panic!("{label}: fastavro's bytes do not decode: {e}"));
                    assert_eq!(decoded, value, "{label}: decoded from fastavro differs");
                    // Avro binary is canonical for these types: both must write the same bytes.
                    assert_eq!(
                        theirs,
                        bytes.as_slice(),
                        "{label}: fastavro wrote other bytes"
                    );
                }),
            }
        })
        .collect()
}

#[test]
fn fastavro_reads_ours_and_we_read_fastavros() {
    let python = python();
    require_fastavro(&python);

    let work = tempfile::tempdir().expect("temp dir");
    let rust_dir: PathBuf = work.path().join("rust");
    std::fs::create_dir(&rust_dir).expect("mkdir");

    let mut written = Vec::new();
    let mut raws = raw_examples();
    raws.extend(sample(raw_punch(), 40));
    written.extend(write_all(&rust_dir, raws));
    let mut checked = checked_examples();
    checked.extend(sample(checked_punch(), 40));
    written.extend(write_all(&rust_dir, checked));
    let mut quarantined = quarantine_examples();
    quarantined.extend(sample(quarantined_input(), 40));
    written.extend(write_all(&rust_dir, quarantined));
    let mut days = attendance_examples();
    days.extend(sample(attendance_day(), 40));
    written.extend(write_all(&rust_dir, days));
    let mut months = vec![monthly_example(), adjustment_example()];
    months.extend(sample(monthly_attendance(), 40));
    written.extend(write_all(&rust_dir, months));
    written.extend(write_all(&rust_dir, correction_examples()));

    let out = Command::new(&python)
        .arg(crate_dir().join("tests/fastavro_check.py"))
        .arg(crate_dir().join("avro"))
        .arg(work.path())
        .output()
        .expect("run fastavro_check.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "fastavro_check.py failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains(&format!("checked {} values, 0 mismatches", written.len())),
        "{stdout}"
    );

    for w in &written {
        let theirs = std::fs::read(work.path().join("python").join(format!("{}.bin", w.name)))
            .unwrap_or_else(|e| panic!("{}: fastavro wrote nothing: {e}", w.name));
        (w.check)(&theirs);
    }
}
