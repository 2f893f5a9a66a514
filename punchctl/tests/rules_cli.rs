//! `punchctl rules set|show` through the binary on a database of its own: a tenant's first
//! version, a change and its repetition, bad input that names the field and writes nothing,
//! and `rules show --json` read back by `attendance compute --rules`.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

fn admin_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| dakoku_store::DEFAULT_DATABASE_URL.into())
}

fn punchctl(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_punchctl"))
        .args(args)
        .env("DATABASE_URL", url)
        .output()
        .expect("punchctl runs")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Exits non-zero and names `field` on stderr.
fn refused(output: &Output, field: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "expected a refusal naming {field}"
    );
    assert!(stderr.contains(field), "{field} not named: {stderr}");
}

#[tokio::test]
async fn rules_set_and_show_round_trip_through_attendance_compute() -> anyhow::Result<()> {
    let admin = admin_url();
    let name = format!("dakoku_test_rules_cli_{}", std::process::id());
    let db = dakoku_store::ScratchDatabase::create(&admin, &name).await?;
    let result = scenario(db.url());
    db.drop(Duration::from_secs(30)).await?;
    result
}

fn scenario(url: &str) -> anyhow::Result<()> {
    stdout(&punchctl(
        url,
        &[
            "tenant",
            "add",
            "--tenant",
            "acme",
            "--name",
            "Acme",
            "--group",
            "rules-cli",
        ],
    ));
    let shown = stdout(&punchctl(url, &["rules", "show", "--tenant", "acme"]));
    assert!(shown.contains("daily_limit_minutes"), "{shown}");
    assert!(shown.contains("v1"), "a new tenant has version 1: {shown}");

    let set = |args: &[&str]| {
        let mut all = vec!["rules", "set", "--tenant", "acme"];
        all.extend_from_slice(args);
        punchctl(url, &all)
    };
    let recorded = stdout(&set(&[
        "--from",
        "2026-06-01",
        "--reason",
        "seven-hour days",
        "daily_limit_minutes=420",
    ]));
    assert!(
        recorded.contains("recorded version 2 from 2026-06-01"),
        "{recorded}"
    );
    assert!(
        recorded.contains("daily_limit_minutes: 480 -> 420"),
        "{recorded}"
    );
    assert!(
        recorded.contains("recomputes acme's days from 2026-05-31"),
        "{recorded}"
    );
    let again = stdout(&set(&["--from", "2026-06-01", "daily_limit_minutes=420"]));
    assert!(again.contains("unchanged"), "{again}");

    let json = || {
        stdout(&punchctl(
            url,
            &["rules", "show", "--tenant", "acme", "--json"],
        ))
    };
    let before = json();
    refused(
        &set(&["--from", "2026-07-01", "nite_start=22:00"]),
        "nite_start",
    );
    refused(
        &set(&["--from", "2026-07-01", "daily_limit_minutes=abc"]),
        "daily_limit_minutes",
    );
    refused(
        &set(&["--from", "2026-13-01", "week_start=monday"]),
        "--from",
    );
    refused(
        &set(&["--from", "2026-07-01", "closing_day=20"]),
        "closing_day",
    );
    refused(
        &punchctl(
            url,
            &[
                "rules",
                "set",
                "--tenant",
                "nobody",
                "--from",
                "2026-07-01",
                "week_start=monday",
            ],
        ),
        "unknown tenant nobody",
    );
    refused(
        &punchctl(url, &["rules", "show", "--tenant", "nobody"]),
        "unknown tenant nobody",
    );
    assert_eq!(json(), before, "bad input wrote nothing");

    let versions: Value = serde_json::from_str(&before)?;
    assert_eq!(versions["versions"].as_array().map(Vec::len), Some(2));
    assert_eq!(versions["versions"][1]["daily_limit_minutes"], 420);

    // The stored rules preview attendance: 9 h without a break on Friday May 29th (limit
    // 480) and on Tuesday June 2nd (limit 420).
    let dir = tempfile::tempdir()?;
    let rules = dir.path().join("rules.json");
    std::fs::write(&rules, &before)?;
    let punches = dir.path().join("punches.jsonl");
    std::fs::write(
        &punches,
        [
            ("p1", "clock_in", "2026-05-29T09:00:00+09:00"),
            ("p2", "clock_out", "2026-05-29T18:00:00+09:00"),
            ("p3", "clock_in", "2026-06-02T09:00:00+09:00"),
            ("p4", "clock_out", "2026-06-02T18:00:00+09:00"),
        ]
        .iter()
        .enumerate()
        .map(|(i, (id, kind, at))| {
            serde_json::json!({"employee_id": "E1", "punch_id": id, "seq": i, "kind": kind, "at": at})
                .to_string()
                + "\n"
        })
        .collect::<String>(),
    )?;
    let computed = stdout(&compute(&rules, &punches));
    let overtime: Vec<(String, i64)> = computed
        .lines()
        .map(serde_json::from_str::<Value>)
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|r| r["record"] == "day")
        .map(|r| {
            (
                r["work_date"].as_str().unwrap_or_default().to_owned(),
                r["overtime_daily_seconds"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(
        overtime,
        vec![
            ("2026-05-29".to_owned(), 3_600),
            ("2026-06-02".to_owned(), 7_200)
        ]
    );
    Ok(())
}

fn compute(rules: &Path, punches: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_punchctl"))
        .args(["attendance", "compute", "--rules"])
        .arg(rules)
        .arg("--punches")
        .arg(punches)
        .output()
        .expect("punchctl runs")
}
