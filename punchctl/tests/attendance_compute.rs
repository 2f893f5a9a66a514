//! `punchctl attendance compute` by example: the contract's worked examples (through the
//! binary, byte for byte), daylight saving, corrections, payroll months, and bad input named by
//! file, line and field with exit status 2.

use serde_json::{Value, json};

use punchctl::ops::compute::{InputError, read_inputs, read_rules, render};

fn run(rules: &str, punches: &str, corrections: Option<&str>) -> Result<Vec<Value>, InputError> {
    let book = read_rules("rules.json", rules)?;
    let inputs = read_inputs(
        "punches.jsonl",
        punches,
        corrections.map(|c| ("corrections.jsonl", c)),
    )?;
    Ok(render(&book, &inputs)
        .lines()
        .map(|l| serde_json::from_str(l).expect("output is JSON"))
        .collect())
}

fn lines(punches: &[(&str, &str, &str)]) -> String {
    punches
        .iter()
        .enumerate()
        .map(|(i, (id, kind, at))| {
            json!({"employee_id": "E1", "punch_id": id, "seq": i, "kind": kind, "at": at})
                .to_string()
                + "\n"
        })
        .collect()
}

const DEFAULTS: &str = r#"{"versions": [{"effective_from": "2026-01-01"}]}"#;

fn days(out: &[Value]) -> Vec<&Value> {
    out.iter().filter(|r| r["record"] == "day").collect()
}

fn months(out: &[Value]) -> Vec<&Value> {
    out.iter().filter(|r| r["record"] == "month").collect()
}

/// `text` with the §4.9 fields cut from each month line (they come last, in this order).
fn without_art36(text: &str) -> String {
    text.lines()
        .map(
            |line| match line.split_once(", \"overtime_and_holiday_seconds\": ") {
                Some((head, tail)) => {
                    assert!(
                        tail.contains("\"year_overtime_seconds\": ")
                            && tail.contains("\"months_over_limit\": ")
                            && tail.contains("\"max_average_seconds\": ")
                            && tail.contains("\"art36_alerts\": ["),
                        "{line}"
                    );
                    format!("{head}}}\n")
                }
                None => format!("{line}\n"),
            },
        )
        .collect()
}

#[test]
fn the_contracts_worked_examples_give_their_files_byte_for_byte() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/attendance");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("examples") {
        let example = entry.expect("entry").path();
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_punchctl"))
            .args(["attendance", "compute", "--rules"])
            .arg(example.join("rules.json"))
            .arg("--punches")
            .arg(example.join("punches.jsonl"))
            .output()
            .expect("punchctl runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let expected = std::fs::read(example.join("expected.jsonl")).expect("expected");
        // The examples list the §4.8 fields; month records then carry the §4.9 ones.
        assert_eq!(
            without_art36(&String::from_utf8_lossy(&output.stdout)),
            String::from_utf8_lossy(&expected),
            "{}",
            example.display()
        );
        seen += 1;
    }
    assert_eq!(seen, 4);
}

#[test]
fn bad_input_exits_with_status_2_naming_file_line_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rules = dir.path().join("rules.json");
    std::fs::write(&rules, DEFAULTS).expect("write");
    let punches = dir.path().join("punches.jsonl");
    std::fs::write(
        &punches,
        "\n{\"employee_id\": \"E1\", \"punch_id\": \"p\", \"seq\": 1, \"kind\": \"clockin\", \"at\": \"2026-11-02T09:00:00Z\"}\n",
    )
    .expect("write");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_punchctl"))
        .args(["attendance", "compute", "--rules"])
        .arg(&rules)
        .arg("--punches")
        .arg(&punches)
        .output()
        .expect("punchctl runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("{}:2: kind:", punches.display())),
        "{stderr}"
    );
}

#[test]
fn no_versions_means_every_default() {
    let punches = lines(&[
        ("a", "clock_in", "2026-11-02T22:00:00+09:00"),
        ("b", "clock_out", "2026-11-03T07:00:00+09:00"),
    ]);
    let out = run(r#"{"versions": []}"#, &punches, None).expect("valid");
    assert_eq!(days(&out)[0]["night_seconds"], 25200);
}

#[test]
fn a_night_shift_across_the_spring_dst_change_counts_real_seconds() {
    // New York springs forward at 02:00 on 2026-03-08: 22:00 EST to 07:00 EDT is 8 h.
    let rules =
        r#"{"versions": [{"effective_from": "2026-01-01", "time_zone": "America/New_York"}]}"#;
    let out = run(
        rules,
        &lines(&[
            ("a", "clock_in", "2026-03-07T22:00:00-05:00"),
            ("b", "clock_out", "2026-03-08T07:00:00-04:00"),
        ]),
        None,
    )
    .expect("valid");
    let day = days(&out)[0];
    assert_eq!(day["work_date"], "2026-03-07");
    assert_eq!(day["worked_seconds"], 8 * 3600);
    // 22:00-05:00 on the wall clock less the skipped hour.
    assert_eq!(day["night_seconds"], 6 * 3600);
}

#[test]
fn a_forgotten_clock_out_is_fixed_by_an_added_punch_and_undone_by_voiding_it() {
    let punches = lines(&[("in", "clock_in", "2026-11-04T09:00:00+09:00")]);
    let out = run(DEFAULTS, &punches, None).expect("valid");
    assert_eq!(days(&out)[0]["anomalies"], json!(["missing_clock_out"]));
    assert_eq!(days(&out)[0]["worked_seconds"], 0);

    let add = r#"{"correction_id": "c1", "action": "add", "employee_id": "E1", "kind": "clock_out", "at": "2026-11-04T17:30:00+09:00", "reason": "forgot"}"#;
    let out = run(DEFAULTS, &punches, Some(add)).expect("valid");
    let day = days(&out)[0];
    assert_eq!(day["worked_seconds"], 30600);
    assert_eq!(day["anomalies"], json!(["break_short"]));
    assert_eq!(day["corrected"], true);
    assert_eq!(day["punch_count"], 2);

    let void = format!(
        "{add}\n{}\n",
        r#"{"correction_id": "c2", "action": "void", "punch_id": "c1", "reason": "wrong"}"#
    );
    let out = run(DEFAULTS, &punches, Some(&void)).expect("valid");
    let day = days(&out)[0];
    assert_eq!(day["worked_seconds"], 0);
    assert_eq!(day["anomalies"], json!(["missing_clock_out"]));
    assert_eq!(day["corrected"], true, "the voided add's own date");
}

#[test]
fn a_date_whose_only_punch_is_voided_keeps_a_zero_corrected_record() {
    let punches = lines(&[("x", "clock_out", "2026-11-04T18:00:00+09:00")]);
    let void = r#"{"correction_id": "v", "action": "void", "punch_id": "x"}"#;
    let out = run(DEFAULTS, &punches, Some(void)).expect("valid");
    let day = days(&out)[0];
    assert_eq!(
        (day["punch_count"].clone(), day["corrected"].clone()),
        (json!(0), json!(true))
    );
    assert_eq!(day["anomalies"], json!([]));
    assert_eq!(months(&out)[0]["days_worked"], 0);
}

#[test]
fn a_void_may_name_a_later_add_and_resent_lines_count_once() {
    let punches = lines(&[
        ("in", "clock_in", "2026-11-04T09:00:00+09:00"),
        ("in", "clock_in", "2026-11-04T09:00:00+09:00"),
    ]);
    let corrections = concat!(
        r#"{"correction_id": "v", "action": "void", "punch_id": "a"}"#,
        "\n",
        r#"{"correction_id": "a", "action": "add", "employee_id": "E1", "kind": "clock_out", "at": "2026-11-04T10:00:00+09:00"}"#,
        "\n",
        r#"{"correction_id": "a", "action": "add", "employee_id": "E1", "kind": "clock_out", "at": "2026-11-04T18:00:00+09:00"}"#,
        "\n"
    );
    let out = run(DEFAULTS, &punches, Some(corrections)).expect("valid");
    let day = days(&out)[0];
    assert_eq!(day["punch_count"], 1);
    assert_eq!(day["anomalies"], json!(["missing_clock_out"]));
}

#[test]
fn max_shift_double_taps_and_bad_spans_add_no_time() {
    let out = run(
        DEFAULTS,
        &lines(&[
            ("1", "clock_in", "2026-11-02T09:00:00+09:00"),
            ("2", "clock_in", "2026-11-02T09:00:40+09:00"), // double tap
            ("3", "break_end", "2026-11-02T12:00:00+09:00"), // without start: bad span
            ("4", "clock_out", "2026-11-02T18:00:00+09:00"),
            ("5", "clock_in", "2026-11-03T09:00:00+09:00"),
            ("6", "clock_out", "2026-11-04T10:00:00+09:00"), // 25 h later: beyond max_shift
        ]),
        None,
    )
    .expect("valid");
    let d = days(&out);
    assert_eq!(d[0]["work_date"], "2026-11-02");
    assert_eq!(d[0]["worked_seconds"], 0);
    assert_eq!(d[0]["punch_count"], 3);
    assert_eq!(d[0]["anomalies"], json!(["break_end_without_start"]));
    assert_eq!(d[1]["anomalies"], json!(["missing_clock_out"]));
    assert_eq!(d[2]["work_date"], "2026-11-04");
    assert_eq!(d[2]["anomalies"], json!(["missing_clock_in"]));
    assert_eq!(d[2]["last_out"], "2026-11-04T01:00:00Z");
}

#[test]
fn payroll_months_follow_the_closing_day_with_over60_and_rounding() {
    let rules = r#"{"versions": [{"effective_from": "2026-01-01", "closing_day": 20,
        "monthly_rounding": "half_hour_to_hour", "weekly_limit_minutes": 10080}]}"#;
    // 2026-11-21 .. 2026-12-04: fourteen days of 13 h 10 min (12 h 10 min worked, 1 h break).
    let mut punches = Vec::new();
    for day in 0..14 {
        let date =
            chrono::NaiveDate::from_ymd_opt(2026, 11, 21).expect("date") + chrono::Days::new(day);
        for (kind, time) in [
            ("clock_in", "08:00"),
            ("break_start", "12:00"),
            ("break_end", "13:00"),
            ("clock_out", "21:10"),
        ] {
            punches.push((
                format!("{date}{kind}"),
                kind,
                format!("{date}T{time}:00+09:00"),
            ));
        }
    }
    let text: String = punches
        .iter()
        .enumerate()
        .map(|(i, (id, kind, at))| {
            json!({"employee_id": "E1", "punch_id": id, "seq": i, "kind": kind, "at": at})
                .to_string()
                + "\n"
        })
        .collect();
    let out = run(rules, &text, None).expect("valid");
    let m = months(&out);
    assert_eq!(m.len(), 1);
    assert_eq!(m[0]["month"], "2026-12");
    // Daily overtime 4 h 10 min x 14 = 58 h 20 min: under 60 h.
    assert_eq!(m[0]["overtime_seconds"], 14 * (4 * 3600 + 600));
    assert_eq!(m[0]["overtime_over60_seconds"], 0);
    assert_eq!(
        m[0]["overtime_minutes"],
        58 * 60,
        "20 min remainder dropped"
    );
    assert_eq!(m[0]["night_minutes"], 0);
}

#[test]
fn bad_input_names_file_line_and_field() {
    let err = |rules: &str, punches: &str, corrections: Option<&str>| {
        run(rules, punches, corrections)
            .expect_err("bad input")
            .to_string()
    };
    let rules = "{\n  \"versions\": [\n    {\"effective_from\": \"2026-01-01\",\n     \"nite_start\": \"22:00\"}\n  ]\n}";
    assert!(err(rules, "", None).starts_with("rules.json:4: nite_start: unknown rule"));
    let twice = "{\"versions\": [\n{\"effective_from\": \"2026-01-01\"},\n{\"effective_from\": \"2026-01-01\"}\n]}";
    assert!(err(twice, "", None).starts_with("rules.json:3: effective_from:"));
    let good = lines(&[("a", "clock_in", "2026-11-04T09:00:00+09:00")]);
    for (line, field) in [
        (
            r#"{"employee_id": "E1", "punch_id": "b", "seq": 1, "kind": "clockin", "at": "2026-11-04T09:00:00+09:00"}"#,
            "kind",
        ),
        (
            r#"{"employee_id": "E1", "punch_id": "b", "seq": 1, "kind": "clock_in", "at": "2026-11-04T09:00:00"}"#,
            "at",
        ),
        (
            r#"{"employee_id": "E1", "punch_id": "b", "kind": "clock_in", "at": "2026-11-04T09:00:00Z"}"#,
            "seq",
        ),
        (
            r#"{"employee_id": "E1", "punch_id": "b", "seq": -1, "kind": "clock_in", "at": "2026-11-04T09:00:00Z"}"#,
            "seq",
        ),
        (
            r#"{"employee_id": "E1", "punch_id": "b", "seq": 1, "kind": "clock_in", "at": "2026-11-04T09:00:00Z", "x": 1}"#,
            "x",
        ),
    ] {
        let text = format!("{good}\n{line}\n");
        assert!(
            err(DEFAULTS, &text, None).starts_with(&format!("punches.jsonl:3: {field}:")),
            "{line}: {}",
            err(DEFAULTS, &text, None)
        );
    }
    let void = r#"{"correction_id": "v", "action": "void", "punch_id": "nope"}"#;
    assert!(err(DEFAULTS, &good, Some(void)).starts_with("corrections.jsonl:1: punch_id:"));
}

#[test]
fn seq_takes_the_whole_unsigned_range_and_fractions_are_dropped() {
    let text = concat!(
        r#"{"employee_id": "E1", "punch_id": "a", "seq": 18446744073709551615, "kind": "clock_in", "at": "2026-11-04T09:00:00.999+09:00"}"#,
        "\n",
        r#"{"employee_id": "E1", "punch_id": "b", "seq": 0, "kind": "clock_out", "at": "2026-11-04T10:00:00.5Z"}"#,
        "\n"
    );
    let out = run(DEFAULTS, text, None).expect("valid");
    assert_eq!(days(&out)[0]["first_in"], "2026-11-04T00:00:00Z");
    assert_eq!(days(&out)[0]["worked_seconds"], 10 * 3600);
}

#[test]
fn month_records_carry_the_article_36_fields() {
    // Example 3 (daily overtime Monday to Friday, weekly on Saturday) in one month: the
    // month's overtime is its own, the agreement year's so far, and no alert.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/attendance/03_example3_weekly");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_punchctl"))
        .args(["attendance", "compute", "--rules"])
        .arg(dir.join("rules.json"))
        .arg("--punches")
        .arg(dir.join("punches.jsonl"))
        .output()
        .expect("punchctl runs");
    assert!(output.status.success());
    let records: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let month = months(&records)[0];
    let overtime = month["overtime_seconds"].as_i64().expect("overtime");
    let holiday = month["holiday_seconds"].as_i64().expect("holiday");
    assert_eq!(
        overtime,
        5 * 3_600 + 21_600,
        "the example's daily and weekly overtime"
    );
    assert_eq!(month["overtime_and_holiday_seconds"], overtime + holiday);
    assert_eq!(month["year_overtime_seconds"], overtime);
    assert_eq!(month["months_over_limit"], 0);
    assert_eq!(month["max_average_seconds"], (overtime + holiday) / 2);
    assert_eq!(month["art36_alerts"], serde_json::json!([]));
}
