//! `punchctl attendance compute` on the benchmark's data, reduced to 1,000 punch lines (10
//! employees over 38 days: day, evening and night shifts, double taps, resends, missing punches,
//! a second rules version on 2026-11-16; written by `compute-bench data --employees 10
//! --punches 1000 --seed 13`). The figures are checked for form, order and the contract's
//! invariants, and the reference employee `E00000` (09:00-18:00 with a 12:00-13:00 break every
//! weekday) for its exact figures.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

fn records() -> Vec<Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/compute-scale");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_punchctl"))
        .args(["attendance", "compute", "--rules"])
        .arg(dir.join("RULES.json"))
        .arg("--punches")
        .arg(dir.join("PUNCHES.jsonl"))
        .output()
        .expect("punchctl runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

const DAY_KEYS: [&str; 15] = [
    "record",
    "employee_id",
    "work_date",
    "worked_seconds",
    "break_seconds",
    "night_seconds",
    "holiday_seconds",
    "overtime_daily_seconds",
    "overtime_weekly_seconds",
    "within_statutory_seconds",
    "first_in",
    "last_out",
    "punch_count",
    "anomalies",
    "corrected",
];

const MONTH_SUMS: [(&str, &str); 5] = [
    ("worked_seconds", "worked_seconds"),
    ("break_seconds", "break_seconds"),
    ("night_seconds", "night_seconds"),
    ("holiday_seconds", "holiday_seconds"),
    ("within_statutory_seconds", "within_statutory_seconds"),
];

fn n(v: &Value, key: &str) -> i64 {
    v[key]
        .as_i64()
        .unwrap_or_else(|| panic!("{key} is a number in {v}"))
}

#[test]
fn every_record_is_well_formed_sorted_and_keeps_the_invariants() {
    let records = records();
    let mut last: Option<(String, u8, String)> = None;
    let mut employees = std::collections::BTreeSet::new();
    // (employee, month) -> sums of the days, for the month records.
    let mut sums: BTreeMap<(String, String), [i64; 8]> = BTreeMap::new();
    for r in &records {
        let employee = r["employee_id"].as_str().expect("employee_id").to_owned();
        employees.insert(employee.clone());
        let (rank, key) = match r["record"].as_str() {
            Some("day") => {
                let keys: Vec<&str> = r
                    .as_object()
                    .expect("object")
                    .keys()
                    .map(String::as_str)
                    .collect();
                let mut want = DAY_KEYS.to_vec();
                want.sort_unstable();
                assert_eq!(keys, want, "{r}");
                let worked = n(r, "worked_seconds");
                assert!(n(r, "night_seconds") <= worked, "{r}");
                assert!(
                    n(r, "overtime_daily_seconds")
                        + n(r, "overtime_weekly_seconds")
                        + n(r, "holiday_seconds")
                        <= worked,
                    "{r}"
                );
                let date = r["work_date"].as_str().expect("work_date").to_owned();
                // The calendar month: the rules file has no closing_day.
                let s = sums
                    .entry((employee.clone(), date[..7].to_owned()))
                    .or_default();
                for (i, (day_key, _)) in MONTH_SUMS.iter().enumerate() {
                    s[i] += n(r, day_key);
                }
                s[5] += n(r, "overtime_daily_seconds") + n(r, "overtime_weekly_seconds");
                s[6] += i64::from(worked > 0);
                s[7] += i64::from(!r["anomalies"].as_array().expect("anomalies").is_empty());
                (0, date)
            }
            Some("month") => {
                let s = sums
                    .remove(&(
                        employee.clone(),
                        r["month"].as_str().expect("month").to_owned(),
                    ))
                    .unwrap_or_else(|| panic!("a month with days: {r}"));
                for (i, (_, month_key)) in MONTH_SUMS.iter().enumerate() {
                    assert_eq!(
                        n(r, month_key),
                        s[i],
                        "{month_key}: the sum of the days, {r}"
                    );
                }
                assert_eq!(n(r, "overtime_seconds"), s[5], "{r}");
                assert_eq!(
                    (n(r, "days_worked"), n(r, "anomaly_days")),
                    (s[6], s[7]),
                    "{r}"
                );
                assert_eq!(n(r, "worked_minutes"), n(r, "worked_seconds") / 60, "{r}");
                (1, r["month"].as_str().expect("month").to_owned())
            }
            _ => panic!("no record kind: {r}"),
        };
        let key = (employee, rank, key);
        assert!(last.as_ref().is_none_or(|l| *l < key), "out of order: {r}");
        last = Some(key);
    }
    assert!(sums.is_empty(), "days without their month: {sums:?}");
    assert_eq!(employees.len(), 10);
    let with = |key: &str| {
        records
            .iter()
            .filter(|r| r["record"] == "day" && r[key].as_i64().is_some_and(|v| v > 0))
            .count()
    };
    assert!(
        with("night_seconds") > 0
            && with("holiday_seconds") > 0
            && with("overtime_weekly_seconds") > 0
    );
    let anomalies: std::collections::BTreeSet<String> = records
        .iter()
        .filter_map(|r| r["anomalies"].as_array())
        .flatten()
        .map(|a| a.as_str().expect("code").to_owned())
        .collect();
    assert!(
        anomalies.contains("missing_clock_out") && anomalies.contains("break_short"),
        "{anomalies:?}"
    );
}

#[test]
fn the_reference_employee_has_its_known_figures() {
    let records = records();
    let reference: Vec<&Value> = records
        .iter()
        .filter(|r| r["employee_id"] == "E00000")
        .collect();
    assert_eq!(
        reference[0].to_string(),
        serde_json::json!({
            "record": "day", "employee_id": "E00000", "work_date": "2026-11-02",
            "worked_seconds": 28_800, "break_seconds": 3_600, "night_seconds": 0,
            "holiday_seconds": 0, "overtime_daily_seconds": 0, "overtime_weekly_seconds": 0,
            "within_statutory_seconds": 0, "first_in": "2026-11-02T00:00:00Z",
            "last_out": "2026-11-02T09:00:00Z", "punch_count": 4, "anomalies": [],
            "corrected": false
        })
        .to_string()
    );
    // From 2026-11-16 the scheduled day is 450 min: 30 min within-statutory overtime a day.
    let day = |date: &str| {
        reference
            .iter()
            .find(|r| r["work_date"] == date)
            .unwrap_or_else(|| panic!("E00000 works on {date}"))
    };
    assert_eq!(n(day("2026-11-13"), "within_statutory_seconds"), 0);
    assert_eq!(n(day("2026-11-16"), "within_statutory_seconds"), 1_800);
    let months: Vec<(&str, [i64; 6])> = reference
        .iter()
        .filter(|r| r["record"] == "month")
        .map(|m| {
            (
                m["month"].as_str().expect("month"),
                [
                    n(m, "days_worked"),
                    n(m, "worked_seconds"),
                    n(m, "break_seconds"),
                    n(m, "within_statutory_seconds"),
                    n(m, "overtime_seconds"),
                    n(m, "anomaly_days"),
                ],
            )
        })
        .collect();
    // November: 21 weekdays, 11 of them from 11-16; December: 1-4 (its 100 punches end there).
    assert_eq!(
        months,
        [
            ("2026-11", [21, 21 * 28_800, 21 * 3_600, 11 * 1_800, 0, 0]),
            ("2026-12", [4, 4 * 28_800, 4 * 3_600, 4 * 1_800, 0, 0]),
        ]
    );
}
