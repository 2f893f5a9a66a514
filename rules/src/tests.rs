//! The rules' unit tests and properties (moved whole from the attendance crate).

use super::*;
use crate::night::offset_ms;
use crate::units::{DAY_MS, HOUR_MS, MINUTE_MS};
use chrono::DateTime;
use chrono::{NaiveDate, NaiveTime};
use chrono_tz::Tz;
use dakoku_schemas::PunchKind;
use dakoku_schemas::{DeviceId, PunchId, TenantId};
use proptest::prelude::*;
use uuid::Uuid;

const TOKYO: Tz = chrono_tz::Asia::Tokyo;

fn millis(rfc3339: &str) -> i64 {
    DateTime::parse_from_rfc3339(rfc3339)
        .expect("valid RFC 3339 in test")
        .timestamp_millis()
}

fn id(seq: u64) -> Uuid {
    let tenant: TenantId = "acme".parse().expect("tenant");
    let device: DeviceId = "PT-1".parse().expect("device");
    PunchId::derive(&tenant, &device, seq).into()
}

/// Punches with seq 1, 2, ... from `(kind, RFC 3339)` pairs.
fn day(spec: &[(PunchKind, &str)]) -> Vec<Punch> {
    spec.iter()
        .enumerate()
        .map(|(i, (kind, at))| Punch {
            punch_id: id(i as u64 + 1),
            seq: i as u64 + 1,
            kind: *kind,
            at: millis(at),
        })
        .collect()
}

use PunchKind::{BreakEnd, BreakStart, ClockIn, ClockOut};

#[test]
fn a_regular_day() {
    let f = compute_day(
        &day(&[
            (ClockIn, "2020-12-04T08:59:30+09:00"),
            (BreakStart, "2020-12-04T12:00:00+09:00"),
            (BreakEnd, "2020-12-04T12:59:59+09:00"),
            (ClockOut, "2020-12-04T18:00:29+09:00"),
        ]),
        TOKYO,
    );
    assert_eq!(
        f,
        DayFigures {
            first_in: Some(millis("2020-12-04T08:59:30+09:00")),
            last_out: Some(millis("2020-12-04T18:00:29+09:00")),
            // 9h00m59s span minus a 59m59s break: 8h01m00s worked.
            worked_minutes: 481,
            break_minutes: 59,
            night_minutes: 0,
            overtime_minutes: 1,
            punch_count: 4,
            anomalies: vec![],
            double_taps: 0,
        }
    );
}

#[test]
fn seconds_are_summed_before_rounding_down() {
    // Two spans of 30m40s each: 61m20s in total, 61 minutes (not 30 + 30).
    let f = compute_day(
        &day(&[
            (ClockIn, "2020-12-04T09:00:00+09:00"),
            (ClockOut, "2020-12-04T09:30:40+09:00"),
            (ClockIn, "2020-12-04T10:00:00+09:00"),
            (ClockOut, "2020-12-04T10:30:40+09:00"),
        ]),
        TOKYO,
    );
    assert_eq!((f.worked_minutes, f.anomalies.len()), (61, 0));
}

#[test]
fn double_taps_are_ignored_and_counted() {
    let f = compute_day(
        &day(&[
            (ClockIn, "2020-12-04T09:00:00+09:00"),
            (ClockIn, "2020-12-04T09:00:45+09:00"),
            (ClockIn, "2020-12-04T09:01:00+09:00"),
            (ClockOut, "2020-12-04T17:00:00+09:00"),
            // 61 s after the kept clock_out: a second, real clock_out with no open span.
            (ClockOut, "2020-12-04T17:01:01+09:00"),
        ]),
        TOKYO,
    );
    assert_eq!(f.double_taps, 2, "45 s and 60 s after the kept clock_in");
    assert_eq!(f.punch_count, 3);
    assert_eq!(f.worked_minutes, 480);
    assert_eq!(f.anomalies, vec![Anomaly::MissingClockIn]);
    assert_eq!(f.last_out, Some(millis("2020-12-04T17:01:01+09:00")));
}

#[test]
fn each_anomaly_follows_the_state_machine() {
    let f = compute_day(
        &day(&[
            (BreakStart, "2020-12-04T08:00:00+09:00"), // break_outside_span, ignored
            (ClockIn, "2020-12-04T09:00:00+09:00"),
            (ClockIn, "2020-12-04T10:00:00+09:00"), // first span discarded: missing_clock_out
            (BreakEnd, "2020-12-04T11:00:00+09:00"), // no open break: break_outside_span
            (ClockOut, "2020-12-04T12:00:00+09:00"), // good span 10:00-12:00
        ]),
        TOKYO,
    );
    assert_eq!(f.worked_minutes, 120);
    assert_eq!(
        f.anomalies,
        vec![Anomaly::BreakOutsideSpan, Anomaly::MissingClockOut]
    );

    let unclosed = compute_day(
        &day(&[
            (ClockIn, "2020-12-04T09:00:00+09:00"),
            (BreakStart, "2020-12-04T12:00:00+09:00"),
            (ClockOut, "2020-12-04T18:00:00+09:00"),
            (ClockIn, "2020-12-04T19:00:00+09:00"),
            (BreakStart, "2020-12-04T19:30:00+09:00"),
            (BreakStart, "2020-12-04T19:40:00+09:00"), // restarts the break, span bad
            (BreakEnd, "2020-12-04T19:50:00+09:00"),
            (ClockOut, "2020-12-04T20:00:00+09:00"),
        ]),
        TOKYO,
    );
    assert_eq!(unclosed.worked_minutes, 0, "both spans are bad");
    assert_eq!(unclosed.break_minutes, 0);
    assert_eq!(unclosed.anomalies, vec![Anomaly::UnclosedBreak]);
    assert_eq!(unclosed.punch_count, 8);

    let dangling = compute_day(
        &day(&[
            (ClockOut, "2020-12-04T08:00:00+09:00"),
            (ClockIn, "2020-12-04T09:00:00+09:00"),
        ]),
        TOKYO,
    );
    assert_eq!(
        dangling.anomalies,
        vec![Anomaly::MissingClockIn, Anomaly::MissingClockOut]
    );
    assert_eq!(dangling.worked_minutes, 0);
    assert_eq!(dangling.first_in, Some(millis("2020-12-04T09:00:00+09:00")));
}

#[test]
fn an_empty_day_is_all_zero() {
    assert_eq!(compute_day(&[], TOKYO), DayFigures::default());
}

#[test]
fn ties_in_time_are_ordered_by_seq() {
    // Same instant: seq decides that the clock_in comes first.
    let at = "2020-12-04T09:00:00+09:00";
    let mut punches = day(&[(ClockOut, at), (ClockIn, at)]);
    punches[0].seq = 9;
    let f = compute_day(&punches, TOKYO);
    assert_eq!(
        f.anomalies,
        vec![],
        "clock_in (seq 2) then clock_out (seq 9)"
    );
    assert_eq!(f.punch_count, 2);
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
}

fn five() -> NaiveTime {
    DEFAULT_DAY_CHANGE
}

#[test]
fn an_overnight_shift_before_the_day_change_is_one_work_date() {
    let punches = day(&[
        (ClockIn, "2020-12-04T20:00:00+09:00"),
        (BreakStart, "2020-12-05T00:00:00+09:00"),
        (BreakEnd, "2020-12-05T01:00:00+09:00"),
        (ClockOut, "2020-12-05T04:59:00+09:00"),
    ]);
    for p in &punches {
        assert_eq!(work_date(p.at, TOKYO, five()), date(2020, 12, 4));
    }
    let f = compute_day(&punches, TOKYO);
    assert_eq!(f.worked_minutes, 7 * 60 + 59);
    assert_eq!(f.break_minutes, 60);
    // 22:00-00:00 and 01:00-04:59.
    assert_eq!(f.night_minutes, 120 + 239);
    assert_eq!(f.overtime_minutes, 0);
    assert!(f.anomalies.is_empty());
}

#[test]
fn an_overnight_shift_across_the_day_change_splits_as_written() {
    // The contract assigns each punch its own work date, so a shift past 05:00 is cut in
    // two anomalous halves and pays nothing (see consumers/attendance/README.md, "Rule problems").
    let punches = day(&[
        (ClockIn, "2020-12-04T22:00:00+09:00"),
        (ClockOut, "2020-12-05T07:00:00+09:00"),
    ]);
    assert_eq!(work_date(punches[0].at, TOKYO, five()), date(2020, 12, 4));
    assert_eq!(work_date(punches[1].at, TOKYO, five()), date(2020, 12, 5));
    let first = compute_day(&punches[..1], TOKYO);
    let second = compute_day(&punches[1..], TOKYO);
    assert_eq!(first.anomalies, vec![Anomaly::MissingClockOut]);
    assert_eq!(second.anomalies, vec![Anomaly::MissingClockIn]);
    assert_eq!(first.worked_minutes + second.worked_minutes, 0);

    // With a later day change (a tenant setting), the same shift is one good day.
    let ten = NaiveTime::from_hms_opt(10, 0, 0).expect("time");
    assert_eq!(work_date(punches[1].at, TOKYO, ten), date(2020, 12, 4));
    let whole = compute_day(&punches, TOKYO);
    assert_eq!((whole.worked_minutes, whole.night_minutes), (540, 420));
    assert_eq!(whole.overtime_minutes, 60);
}

#[test]
fn a_time_zone_other_than_tokyo() {
    // Kolkata is UTC+05:30: night is 22:00-05:00 there, 16:30Z-23:30Z.
    let kolkata = chrono_tz::Asia::Kolkata;
    let punches = day(&[
        (ClockIn, "2020-12-04T18:00:00+05:30"),
        (ClockOut, "2020-12-05T02:30:00+05:30"),
    ]);
    assert_eq!(work_date(punches[1].at, kolkata, five()), date(2020, 12, 4));
    let f = compute_day(&punches, kolkata);
    assert_eq!((f.worked_minutes, f.night_minutes), (510, 270));
    // The same instants in Tokyo (UTC+9) are 21:30-06:00 local: night 22:00-05:00.
    let in_tokyo = compute_day(&punches, TOKYO);
    assert_eq!(in_tokyo.night_minutes, 420);
}

#[test]
fn daylight_saving_days_count_the_real_time_worked() {
    let new_york = chrono_tz::America::New_York;
    // 2024-03-10 02:00 EST -> 03:00 EDT: 21:00-04:00 local is 6 real hours, of which
    // 22:00-04:00 local (5 real hours) is night.
    let spring = day(&[
        (ClockIn, "2024-03-09T21:00:00-05:00"),
        (ClockOut, "2024-03-10T04:00:00-04:00"),
    ]);
    assert!(
        spring
            .iter()
            .all(|p| work_date(p.at, new_york, five()) == date(2024, 3, 9))
    );
    let f = compute_day(&spring, new_york);
    assert_eq!((f.worked_minutes, f.night_minutes), (360, 300));

    // 2024-11-03 02:00 EDT -> 01:00 EST: 21:00-04:00 local is 8 real hours, 7 of them at
    // night (the repeated 01:00-02:00 hour counts twice because it was worked twice).
    let autumn = day(&[
        (ClockIn, "2024-11-02T21:00:00-04:00"),
        (ClockOut, "2024-11-03T04:00:00-05:00"),
    ]);
    let f = compute_day(&autumn, new_york);
    assert_eq!((f.worked_minutes, f.night_minutes), (480, 420));
    assert_eq!(f.overtime_minutes, 0);

    // Lord Howe shifts by 30 minutes; 2024-04-07 02:00 +11 -> 01:30 +10:30.
    let lord_howe = chrono_tz::Australia::Lord_Howe;
    let half = day(&[
        (ClockIn, "2024-04-06T23:00:00+11:00"),
        (ClockOut, "2024-04-07T03:00:00+10:30"),
    ]);
    let f = compute_day(&half, lord_howe);
    assert_eq!((f.worked_minutes, f.night_minutes), (270, 270));
}

#[test]
fn night_ms_matches_a_minute_by_minute_count() {
    let zones = [
        TOKYO,
        chrono_tz::America::New_York,
        chrono_tz::Australia::Lord_Howe,
        chrono_tz::Asia::Kathmandu,
    ];
    let from = millis("2024-03-09T00:00:00Z");
    for tz in zones {
        for (start_h, hours) in [(0, 30), (13, 20), (40, 7), (5, 49)] {
            let a = from + start_h * HOUR_MS;
            let b = a + hours * HOUR_MS;
            let brute: i64 = (a..b)
                .step_by(MINUTE_MS as usize)
                .filter(|&t| {
                    let local = t + offset_ms(t, tz);
                    let of_day = local.rem_euclid(DAY_MS);
                    !(NIGHT_END_MS..NIGHT_START_MS).contains(&of_day)
                })
                .count() as i64
                * MINUTE_MS;
            assert_eq!(night_ms(a, b, tz), brute, "{tz} {start_h} {hours}");
        }
    }
}

#[test]
fn anomaly_codes_round_trip_and_sort() {
    let mut codes: Vec<&str> = Anomaly::ALL.iter().map(|a| a.as_str()).collect();
    let sorted = {
        let mut s = codes.clone();
        s.sort_unstable();
        s
    };
    assert_eq!(codes, sorted, "enum order is the codes' order");
    codes.retain(|c| Anomaly::parse(c).map(Anomaly::as_str) == Some(*c));
    assert_eq!(codes.len(), 4);
    assert_eq!(Anomaly::parse("late"), None);
}

// ---------------------------------------------------------------- properties

const ZONES: [Tz; 6] = [
    TOKYO,
    chrono_tz::Asia::Kolkata,
    chrono_tz::America::New_York,
    chrono_tz::Europe::Berlin,
    chrono_tz::Australia::Lord_Howe,
    chrono_tz::UTC,
];

fn any_zone() -> impl Strategy<Value = Tz> {
    proptest::sample::select(ZONES.to_vec())
}

fn any_kind() -> impl Strategy<Value = PunchKind> {
    proptest::sample::select(PunchKind::ALL.to_vec())
}

/// Around the 2024 March DST changes of New York and Europe, so offsets change sometimes.
const BASE: i64 = 1_710_000_000_000;

/// Arbitrary punches within about 30 hours, often close together (double taps, ties).
fn any_punches() -> impl Strategy<Value = Vec<Punch>> {
    prop::collection::vec((any_kind(), 0i64..30 * 60, 0i64..90_000, 0u64..4), 0..24).prop_map(
        |raw| {
            raw.into_iter()
                .enumerate()
                .map(|(i, (kind, minute, jitter, seq))| Punch {
                    punch_id: id(i as u64),
                    seq,
                    kind,
                    at: BASE + minute * MINUTE_MS + jitter,
                })
                .collect()
        },
    )
}

/// `punches`, shuffled, with some of them repeated.
fn resent(punches: Vec<Punch>) -> impl Strategy<Value = (Vec<Punch>, Vec<Punch>)> {
    let n = punches.len();
    (
        Just(punches.clone()),
        prop::collection::vec(0..n.max(1), 0..(2 * n + 1)),
    )
        .prop_flat_map(move |(punches, repeats)| {
            let mut arrival = punches.clone();
            if !punches.is_empty() {
                arrival.extend(repeats.iter().map(|&i| punches[i]));
            }
            (Just(punches), Just(arrival).prop_shuffle())
        })
}

/// A well-formed span: clock_in, breaks, clock_out, as offsets from its start (minutes).
#[derive(Debug, Clone)]
struct SpanSpec {
    length_min: i64,
    breaks: Vec<(i64, i64)>,
    corruption: Corruption,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Corruption {
    None,
    DropClockIn,
    DropClockOut,
    DropBreakEnd,
}

fn any_span() -> impl Strategy<Value = SpanSpec> {
    (
        30i64..600,
        prop::collection::vec((2i64..90, 2i64..90), 0..3),
        prop_oneof![
            3 => Just(Corruption::None),
            1 => Just(Corruption::DropClockIn),
            1 => Just(Corruption::DropClockOut),
            1 => Just(Corruption::DropBreakEnd),
        ],
    )
        .prop_map(|(length, gaps, corruption)| {
            // Breaks laid out one after another inside the span, each at least 2 minutes
            // from its neighbours so nothing is a double tap.
            let mut breaks = Vec::new();
            let mut at = 0;
            for (gap, len) in gaps {
                let start = at + gap;
                let end = start + len;
                if end + 2 < length {
                    breaks.push((start, end));
                    at = end;
                }
            }
            let corruption = if corruption == Corruption::DropBreakEnd && breaks.is_empty() {
                Corruption::None
            } else {
                corruption
            };
            SpanSpec {
                length_min: length,
                breaks,
                corruption,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The result for a day is the same for every arrival order and any number of
    /// duplicates.
    #[test]
    fn order_and_resends_do_not_matter(
        (punches, arrival) in any_punches().prop_flat_map(resent),
        tz in any_zone(),
    ) {
        prop_assert_eq!(compute_day(&arrival, tz), compute_day(&punches, tz));
    }

    /// Night minutes never exceed worked minutes; overtime follows worked; counts add up.
    #[test]
    fn figures_are_consistent(punches in any_punches(), tz in any_zone()) {
        let f = compute_day(&punches, tz);
        prop_assert!(f.night_minutes <= f.worked_minutes);
        prop_assert_eq!(f.overtime_minutes, (f.worked_minutes - 480).max(0));
        prop_assert_eq!(f.punch_count + f.double_taps, punches.len() as i32);
        prop_assert!(f.worked_minutes >= 0 && f.break_minutes >= 0 && f.night_minutes >= 0);
        let mut sorted = f.anomalies.clone();
        sorted.sort_unstable();
        sorted.dedup();
        prop_assert_eq!(&sorted, &f.anomalies);
    }

    /// No minutes come from anomalous spans, and good spans count in full: a day of
    /// well-formed spans, some corrupted, pays exactly the uncorrupted ones.
    #[test]
    fn only_good_spans_add_minutes(
        spans in prop::collection::vec(any_span(), 1..5),
        gap_min in 2i64..120,
        tz in any_zone(),
    ) {
        let mut punches = Vec::new();
        let mut expected_worked = 0;
        let mut expected_break = 0;
        let mut expect_anomaly = false;
        let mut start = BASE;
        let mut previous = Corruption::None;
        let mut push = |kind, at: i64| {
            let n = punches.len() as u64;
            punches.push(Punch { punch_id: id(n), seq: n, kind, at });
        };
        for span in &spans {
            // A span without clock_in right after one without clock_out would be paired
            // into one long span by the rules (correctly); keep them apart.
            let corruption = if previous == Corruption::DropClockOut
                && span.corruption == Corruption::DropClockIn {
                Corruption::None
            } else {
                span.corruption
            };
            previous = corruption;
            let end = start + span.length_min * MINUTE_MS;
            if corruption != Corruption::DropClockIn {
                push(ClockIn, start);
            }
            let mut breaks_ms = 0;
            for (i, (b0, b1)) in span.breaks.iter().enumerate() {
                push(BreakStart, start + b0 * MINUTE_MS);
                if !(corruption == Corruption::DropBreakEnd && i == 0) {
                    push(BreakEnd, start + b1 * MINUTE_MS);
                }
                breaks_ms += (b1 - b0) * MINUTE_MS;
            }
            if corruption != Corruption::DropClockOut {
                push(ClockOut, end);
            }
            if corruption == Corruption::None {
                expected_worked += end - start - breaks_ms;
                expected_break += breaks_ms;
            } else {
                expect_anomaly = true;
            }
            start = end + gap_min * MINUTE_MS;
        }
        let f = compute_day(&punches, tz);
        prop_assert_eq!(f.worked_minutes as i64, expected_worked / MINUTE_MS);
        prop_assert_eq!(f.break_minutes as i64, expected_break / MINUTE_MS);
        prop_assert_eq!(!f.anomalies.is_empty(), expect_anomaly);
        prop_assert!(f.night_minutes <= f.worked_minutes);
        prop_assert_eq!(f.double_taps, 0);
    }

    /// Night time of an interval never exceeds its length and is additive.
    #[test]
    fn night_is_additive(a in 0i64..3 * DAY_MS, len1 in 0i64..DAY_MS, len2 in 0i64..DAY_MS,
                         tz in any_zone()) {
        let from = BASE + a;
        let mid = from + len1;
        let to = mid + len2;
        let whole = night_ms(from, to, tz);
        prop_assert!(whole <= to - from);
        prop_assert_eq!(whole, night_ms(from, mid, tz) + night_ms(mid, to, tz));
    }
}
