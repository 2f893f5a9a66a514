//! The administrators' verbs through the binary on a database of their own: `attendance show`
//! and `anomalies` print exactly what an administrator reads, and exit statuses tell scripts
//! what happened (0 done, 2 fix the request, 1 retry later).

// The admin crate's test world: tenant `acme`, rows written where the consumer writes them.
#[path = "../../admin/tests/support/mod.rs"]
mod support;

use std::process::{Command, Output};

fn punchctl(w: &support::World, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_punchctl"))
        .args(args)
        .env("DATABASE_URL", &w.db.url)
        .env("KAFKA_BROKERS", &w.stack.brokers)
        .env("USER", "tester")
        .output()
        .expect("punchctl runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Exits with `code`; returns stdout and stderr.
fn exits(output: &Output, code: i32) -> (String, String) {
    let (out, err) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(
        output.status.code(),
        Some(code),
        "stdout: {out}\nstderr: {err}"
    );
    (out, err)
}

#[tokio::test]
async fn attendance_show_and_anomalies_print_what_is_stored() -> anyhow::Result<()> {
    let w = support::world(false).await?;
    let s = w.scenario().await?;
    let (out, _) = exits(
        &punchctl(
            &w,
            &[
                "attendance",
                "show",
                "--tenant",
                "acme",
                "--employee",
                "E1",
                "--date",
                "2026-11-03",
            ],
        ),
        0,
    );
    let mut ids = [s.add.to_string(), s.void.to_string()];
    ids.sort();
    let expected = format!(
        "acme E1 2026-11-03 (times in Asia/Tokyo)

day: rules version 1, revision 3, computed 2026-11-04T00:00:00Z, corrected
figure            value
worked            8:00:00                    28800 s
break             1:00:00                    3600 s
night             0:00:00                    0 s
holiday           0:00:00                    0 s
overtime daily    0:00:00                    0 s
overtime weekly   0:00:00                    0 s
within statutory  0:00:00                    0 s
first in          2026-11-03T09:00:00+09:00
last out          -
punches counted   2                          0 double taps ignored
anomalies         missing_clock_out
corrected by: {ids0}, {ids1}

punches (raw, as recorded):
at                         kind         work_date   device  seq  verdict                  punch_id
2026-11-02T18:00:00+09:00  clock_out    2026-11-02  PT-1    1    accepted                 {p1}
2026-11-03T09:00:00+09:00  clock_in     2026-11-03  PT-1    2    accepted                 {p2}
2026-11-03T09:00:30+09:00  clock_in     2026-11-03  PT-1    3    rejected (not_licensed)  {p3}
2026-11-03T12:00:00+09:00  break_start  2026-11-03  PT-1    4    accepted, voided         {p4}

corrections:
created_at            action  punch / target                          actor   reason               correction_id
2026-11-04T01:00:00Z  add     clock_out at 2026-11-03T18:00:00+09:00  cli:hr  forgot to clock out  {add}
2026-11-04T02:00:00Z  void    {p4}    cli:hr  no break taken       {void}
",
        ids0 = ids[0],
        ids1 = ids[1],
        p1 = s.day_before,
        p2 = s.clock_in,
        p3 = s.rejected,
        p4 = s.break_start,
        add = s.add,
        void = s.void,
    );
    assert_eq!(out, expected);

    let (out, err) = exits(
        &punchctl(&w, &["anomalies", "--tenant", "acme", "--month", "2026-11"]),
        0,
    );
    assert_eq!(
        out,
        "work_date,employee_id,anomalies,punches\n\
         2026-11-03,E1,missing_clock_out,clock_out@18:00:00 clock_in@09:00:00\n\
         2026-11-10,E2,break_short,\n"
    );
    assert_eq!(err, "anomalies acme 2026-11: 2 days\n");
    let (out, _) = exits(
        &punchctl(
            &w,
            &[
                "anomalies",
                "--tenant",
                "acme",
                "--month",
                "2026-11",
                "--format",
                "json",
            ],
        ),
        0,
    );
    let json: serde_json::Value = serde_json::from_str(&out)?;
    assert_eq!(json[0]["punches"].as_array().map(Vec::len), Some(4));
    w.end().await
}

#[tokio::test]
async fn exit_statuses_say_whether_to_fix_the_request_or_retry() -> anyhow::Result<()> {
    let w = support::world(true).await?;
    let s = w.scenario().await?;
    let add = |employee: &'static str, reason: &'static str| {
        vec![
            "correct",
            "add",
            "--tenant",
            "acme",
            "--employee",
            employee,
            "--kind",
            "clock_out",
            "--at",
            "2026-11-03T18:00:00+09:00",
            "--reason",
            reason,
        ]
    };
    let (out, _) = exits(&punchctl(&w, &add("E1", "forgot to clock out")), 0);
    let id = out.lines().next().unwrap_or_default();
    assert!(id.parse::<uuid::Uuid>().is_ok(), "{out}");
    assert!(
        out.contains("adds clock_out at 2026-11-03T09:00:00Z for acme/E1 (by cli:tester: forgot to clock out)"),
        "{out}"
    );

    let (_, err) = exits(&punchctl(&w, &add("E9", "x")), 2);
    assert!(err.contains("employee acme/E9 not found"), "{err}");
    let (_, err) = exits(&punchctl(&w, &add("E1", "")), 2);
    assert!(err.contains("reason"), "{err}");
    let bad_at = [
        "correct",
        "add",
        "--tenant",
        "acme",
        "--employee",
        "E1",
        "--kind",
        "clock_out",
        "--at",
        "18:00",
        "--reason",
        "r",
    ];
    exits(&punchctl(&w, &bad_at), 2);
    let target = s.break_start.to_string();
    let void = [
        "correct", "void", "--tenant", "acme", "--target", &target, "--reason", "again",
    ];
    let (_, err) = exits(&punchctl(&w, &void), 2);
    assert!(err.contains("already voided"), "{err}");

    let close = ["close", "--tenant", "acme", "--month", "2026-11"];
    let (out, _) = exits(&punchctl(&w, &close), 0);
    assert!(out.starts_with("closed acme 2026-11 (closing "), "{out}");
    assert!(out.contains("by cli:tester"), "{out}");
    let (_, err) = exits(&punchctl(&w, &close), 2);
    assert!(err.contains("already closed"), "{err}");
    let reopen = |reason: &'static str| {
        vec![
            "reopen", "--tenant", "acme", "--month", "2026-11", "--reason", reason,
        ]
    };
    let (_, err) = exits(&punchctl(&w, &reopen(" ")), 2);
    assert!(err.contains("reason"), "{err}");
    let (out, _) = exits(&punchctl(&w, &reopen("late punch")), 0);
    assert!(out.contains("late punch"), "{out}");
    let (_, err) = exits(&punchctl(&w, &reopen("again")), 2);
    assert!(err.contains("not closed"), "{err}");

    // Reading needs no Kafka.
    let show = Command::new(env!("CARGO_BIN_EXE_punchctl"))
        .args([
            "attendance",
            "show",
            "--tenant",
            "acme",
            "--employee",
            "E1",
            "--date",
            "2026-11-03",
        ])
        .env("DATABASE_URL", &w.db.url)
        .env("KAFKA_BROKERS", "127.0.0.1:1")
        .output()?;
    let (out, _) = exits(&show, 0);
    assert!(out.starts_with("acme E1 2026-11-03"), "{out}");

    // Postgres unreachable: retry later.
    let down = Command::new(env!("CARGO_BIN_EXE_punchctl"))
        .args(close)
        .env(
            "DATABASE_URL",
            "postgres://dakoku:dakoku@127.0.0.1:1/dakoku",
        )
        .output()?;
    let (_, err) = exits(&down, 1);
    assert!(err.contains("retry"), "{err}");
    w.end().await
}
