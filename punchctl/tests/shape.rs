//! The layering of punchctl's modules, checked on its sources: `cli` -> `commands` -> `ops`,
//! `output`, `progress`; no verb holds SQL or Kafka code, and nothing reaches back up.

use std::fs;
use std::path::Path;

fn sources(dir: &str) -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(dir);
    let mut out = Vec::new();
    let mut stack = vec![dir];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).expect("source directory") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = fs::read_to_string(&path).expect("source");
                out.push((path.display().to_string(), text));
            }
        }
    }
    assert!(!out.is_empty(), "no sources found");
    out
}

#[test]
fn commands_hold_no_sql_and_no_kafka_code() {
    for (path, text) in sources("commands") {
        for banned in [
            "rdkafka",
            "ClientConfig",
            "tokio_postgres",
            ".query(",
            ".execute(",
            "SELECT ",
            "INSERT ",
            "UPDATE ",
            "DELETE ",
        ] {
            assert!(!text.contains(banned), "{path} contains {banned:?}");
        }
    }
}

#[test]
fn nothing_below_the_command_line_reaches_back_up() {
    for (path, text) in sources("commands") {
        assert!(!text.contains("crate::cli"), "{path} uses crate::cli");
    }
    for (path, text) in sources("ops") {
        for upward in ["crate::cli", "crate::commands"] {
            assert!(!text.contains(upward), "{path} uses {upward}");
        }
    }
}

#[test]
fn values_are_parsed_by_their_types_not_by_helpers() {
    for dir in ["commands", "ops"] {
        for (path, text) in sources(dir) {
            assert!(
                !text.contains("fn parse_"),
                "{path} defines a parse_ helper"
            );
        }
    }
}
