//! Properties of the engine over random punch streams, corrections and rules versions.

use std::collections::BTreeMap;

use chrono::{NaiveDate, NaiveTime, Weekday};
use dakoku_rules::v2::calendar::{Month, work_date};
use dakoku_rules::v2::rulebook::{MonthlyRounding, RuleVersion, Rulebook};
use dakoku_rules::v2::window::{merge, needed_dates, plan};
use dakoku_rules::v2::{
    Correction, CorrectionAction, DayFigures, Punch, PunchKind, compute, correction, daily,
};
use proptest::prelude::*;

/// 2026-03-01T00:00:00Z: the weeks around the March and April DST changes.
const BASE: i64 = 1_772_323_200;

fn kinds() -> impl Strategy<Value = PunchKind> {
    prop::sample::select(vec![
        PunchKind::ClockIn,
        PunchKind::ClockOut,
        PunchKind::BreakStart,
        PunchKind::BreakEnd,
    ])
}

fn zones() -> impl Strategy<Value = chrono_tz::Tz> {
    prop::sample::select(vec![
        chrono_tz::Asia::Tokyo,
        chrono_tz::America::New_York,
        chrono_tz::Europe::Berlin,
        chrono_tz::Australia::Lord_Howe,
    ])
}

fn weekdays() -> impl Strategy<Value = Weekday> {
    prop::sample::select(vec![
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ])
}

fn version() -> impl Strategy<Value = RuleVersion> {
    (
        (
            0u32..4,
            zones(),
            0u32..8,
            prop::sample::select(vec![300i64, 600, 1440]),
        ),
        (
            prop::sample::select(vec![0i64, 60, 600]),
            20u32..24,
            3u32..7,
        ),
        (
            prop::sample::select(vec![420i64, 480]),
            1500i64..3000,
            weekdays(),
        ),
        (prop::option::of(weekdays()), 360i64..500, any::<bool>()),
    )
        .prop_map(|(a, b, c, d)| {
            let mut v =
                RuleVersion::defaults(NaiveDate::from_ymd_opt(2026, 3, 1 + a.0 * 5).expect("date"));
            v.time_zone = a.1;
            v.day_change = NaiveTime::from_hms_opt(a.2, 0, 0).expect("time");
            v.max_shift_minutes = a.3;
            v.double_tap_seconds = b.0;
            v.night_start = NaiveTime::from_hms_opt(b.1, 0, 0).expect("time");
            v.night_end = NaiveTime::from_hms_opt(b.2, 0, 0).expect("time");
            v.daily_limit_minutes = c.0;
            v.weekly_limit_minutes = c.1;
            v.week_start = c.2;
            v.legal_holiday = d.0;
            v.scheduled_daily_minutes = d.1;
            if d.2 {
                v.monthly_rounding = MonthlyRounding::HalfHourToHour;
            }
            v
        })
}

fn rulebook() -> impl Strategy<Value = Rulebook> {
    (
        prop::collection::vec(version(), 0..3),
        prop::option::of(10u32..25),
    )
        .prop_map(|(versions, closing)| {
            let mut seen = std::collections::BTreeSet::new();
            let versions: Vec<(usize, RuleVersion)> = versions
                .into_iter()
                .filter(|v| seen.insert(v.effective_from))
                .map(|mut v| {
                    v.closing_day = closing;
                    v
                })
                .enumerate()
                .collect();
            Rulebook::new(versions).expect("valid generated rules")
        })
}

/// Punches over about three weeks: mostly shifts of a working day's shape (in, perhaps a
/// break, out; some overnight, some long), plus stray punches that make double taps, ties and
/// anomalies.
fn punches() -> impl Strategy<Value = Vec<Punch>> {
    let shift = (
        0i64..21,
        0i64..24 * 60,
        240i64..14 * 60,
        prop::option::of((60i64..300, 10i64..90)),
        0i64..60,
    );
    let stray = (kinds(), 0i64..21, 0i64..(26 * 60), 0i64..90, 0u64..3);
    (
        prop::collection::vec(shift, 0..14),
        prop::collection::vec(stray, 0..8),
    )
        .prop_map(|(shifts, strays)| {
            let mut out = Vec::new();
            let mut push = |kind, at: i64, seq: u64| {
                let id = format!("p{:03}", out.len());
                out.push(Punch {
                    id,
                    seq,
                    kind,
                    at,
                    added: false,
                });
            };
            for (day, start, length, brk, second) in shifts {
                let at = BASE + day * 86_400 + start * 60 + second;
                push(PunchKind::ClockIn, at, 1);
                if let Some((after, minutes)) = brk.filter(|(after, _)| *after < length) {
                    push(PunchKind::BreakStart, at + after * 60, 2);
                    push(
                        PunchKind::BreakEnd,
                        at + (after + minutes).min(length) * 60,
                        3,
                    );
                }
                push(PunchKind::ClockOut, at + length * 60 + second, 4);
            }
            for (kind, day, minute, second, seq) in strays {
                push(kind, BASE + day * 86_400 + minute * 60 + second, seq);
            }
            out
        })
}

fn corrections(punches: &[Punch], picks: &[(u8, usize, PunchKind, i64)]) -> Vec<Correction> {
    let mut out: Vec<Correction> = Vec::new();
    for (i, &(what, pick, kind, at)) in picks.iter().enumerate() {
        let id = format!("c{i:02}");
        let action = match what % 3 {
            0 | 1 => CorrectionAction::Add {
                kind,
                at: BASE + at,
            },
            _ => {
                let targets: Vec<&str> = punches
                    .iter()
                    .map(|p| p.id.as_str())
                    .chain(out.iter().filter_map(|c| {
                        matches!(c.action, CorrectionAction::Add { .. }).then_some(c.id.as_str())
                    }))
                    .collect();
                match targets.get(pick % targets.len().max(1)) {
                    Some(target) => CorrectionAction::Void {
                        target: (*target).to_owned(),
                    },
                    None => continue,
                }
            }
        };
        out.push(Correction { id, action });
    }
    out
}

fn correction_picks() -> impl Strategy<Value = Vec<(u8, usize, PunchKind, i64)>> {
    prop::collection::vec(
        (any::<u8>(), any::<usize>(), kinds(), 0i64..21 * 86_400),
        0..6,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn arrival_order_and_duplicates_change_nothing(
        rules in rulebook(),
        punches in punches(),
        picks in correction_picks(),
        order in any::<u64>(),
        dups in prop::collection::vec(any::<usize>(), 0..10),
    ) {
        let corrections = corrections(&punches, &picks);
        let expected = compute(&rules, &punches, &corrections);
        let mut shuffled = punches.clone();
        for d in &dups {
            if !punches.is_empty() {
                shuffled.push(punches[d % punches.len()].clone());
            }
        }
        let mut rng = order;
        for i in (1..shuffled.len()).rev() {
            rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            shuffled.swap(i, (rng >> 33) as usize % (i + 1));
        }
        let mut corrections2 = corrections.clone();
        corrections2.reverse();
        corrections2.extend(corrections.iter().take(2).cloned());
        prop_assert_eq!(compute(&rules, &shuffled, &corrections2), expected);
    }

    #[test]
    fn figures_stay_within_worked_time_and_months_sum_their_days(
        rules in rulebook(),
        punches in punches(),
        picks in correction_picks(),
    ) {
        let corrections = corrections(&punches, &picks);
        let computed = compute(&rules, &punches, &corrections);
        let closing = rules.closing_day();
        let mut sums: BTreeMap<Month, (i64, i64, i64, i64)> = BTreeMap::new();
        for (date, d) in &computed.days {
            prop_assert!(d.night_seconds <= d.worked_seconds, "{date} {d:?}");
            prop_assert!(d.holiday_seconds <= d.worked_seconds, "{date} {d:?}");
            prop_assert!(
                d.overtime_daily_seconds + d.overtime_weekly_seconds + d.holiday_seconds
                    <= d.worked_seconds,
                "{date} {d:?}"
            );
            prop_assert!(d.worked_seconds >= 0 && d.break_seconds >= 0);
            prop_assert!(d.overtime_weekly_seconds >= 0 && d.within_statutory_seconds >= 0);
            let s = sums.entry(Month::of(*date, closing)).or_default();
            s.0 += d.worked_seconds;
            s.1 += d.overtime_daily_seconds + d.overtime_weekly_seconds;
            s.2 += d.night_seconds;
            s.3 += d.holiday_seconds;
        }
        prop_assert_eq!(computed.months.len(), sums.len());
        for (month, m) in &computed.months {
            let s = sums[month];
            prop_assert_eq!(
                (m.worked_seconds, m.overtime_seconds, m.night_seconds, m.holiday_seconds),
                s
            );
            prop_assert!(m.overtime_over60_seconds <= m.overtime_seconds);
        }
    }

    #[test]
    fn an_incremental_recompute_equals_a_full_one(
        rules in rulebook(),
        punches in punches(),
        picks in correction_picks(),
        late in prop::collection::vec(any::<bool>(), 0..46),
        load_days in 0u8..4,
    ) {
        let corrections = corrections(&punches, &picks);
        // Some punches and corrections arrive late; a void only after what it names.
        let is_late = |i: usize| late.get(i).copied().unwrap_or(false);
        let old_punches: Vec<Punch> =
            punches.iter().enumerate().filter(|(i, _)| !is_late(*i)).map(|(_, p)| p.clone()).collect();
        let new_punches: Vec<Punch> =
            punches.iter().enumerate().filter(|(i, _)| is_late(*i)).map(|(_, p)| p.clone()).collect();
        let old_corrections: Vec<Correction> = corrections
            .iter()
            .filter(|c| match &c.action {
                CorrectionAction::Void { target } => old_punches.iter().any(|p| &p.id == target)
                    || corrections.iter().any(|a| &a.id == target),
                CorrectionAction::Add { .. } => true,
            })
            .take(corrections.len() / 2)
            .cloned()
            .collect();
        let new_corrections: Vec<Correction> = corrections
            .iter()
            .filter(|c| !old_corrections.contains(c))
            .cloned()
            .collect();
        let before = compute(&rules, &old_punches, &old_corrections);
        let full = compute(&rules, &punches, &corrections);

        // What the consumer does: the instants the late input touches, the segments around
        // them over every event (kept, voided, added), then the window recomputed and merged.
        let instant_of = |id: &str| -> Option<i64> {
            punches.iter().find(|p| p.id == id).map(|p| p.at).or_else(|| {
                corrections.iter().find_map(|c| match c.action {
                    CorrectionAction::Add { at, .. } if c.id == id => Some(at),
                    _ => None,
                })
            })
        };
        let mut added: Vec<i64> = new_punches.iter().map(|p| p.at).collect();
        let mut removed: Vec<i64> = Vec::new();
        for c in &new_corrections {
            match &c.action {
                CorrectionAction::Add { at, .. } => added.push(*at),
                CorrectionAction::Void { target } => removed.extend(instant_of(target)),
            }
        }
        let touched: Vec<i64> = added.iter().chain(&removed).copied().collect();
        let Some((&low, &high)) = touched.iter().min().zip(touched.iter().max()) else {
            prop_assert_eq!(before, full);
            return Ok(());
        };
        // The kept stream after the change, loaded around the change (any window: a plan
        // that needs more says so), sorted as pairing reads it.
        let mut kept = correction::apply(&punches, &corrections).punches;
        kept.sort_by(|a, b| (a.at, a.seq, &a.id).cmp(&(b.at, b.seq, &b.id)));
        let span = i64::from(load_days) * 86_400;
        let from = kept.partition_point(|p| p.at < low - span);
        let to = kept.partition_point(|p| p.at <= high + span);
        let plan = plan(&rules, &kept[from..to], &added, &removed, (from == 0, to == kept.len()))
            .map(|p| (p.punches.start + from..p.punches.end + from, p.dates))
            .or_else(|| {
                plan(&rules, &kept, &added, &removed, (true, true)).map(|p| (p.punches, p.dates))
            })
            .expect("the whole history always plans");
        let (range, window_dates) = plan;
        let (lo, hi) = match (kept.get(range.start), range.end.checked_sub(1).and_then(|i| kept.get(i))) {
            (Some(a), Some(b)) if !range.is_empty() => (a.at, b.at),
            _ => (i64::MAX, i64::MIN),
        };
        // The window's input: the punches in it, and voided punches whose own date is one of
        // its dates (they only mark that date corrected), with their corrections.
        let own = |at: i64| work_date(at, rules.at_instant(at));
        let voided_here = |at: i64| (window_dates.0..=window_dates.1).contains(&own(at));
        let in_window = |at: i64| (lo..=hi).contains(&at);
        let voids: Vec<&str> = corrections
            .iter()
            .filter_map(|c| match &c.action {
                CorrectionAction::Void { target } => Some(target.as_str()),
                CorrectionAction::Add { .. } => None,
            })
            .collect();
        // A voided punch counts only on its own date, so it belongs to the window exactly when
        // that date does, wherever its instant lies.
        let window_punches: Vec<Punch> = punches
            .iter()
            .filter(|p| {
                if voids.contains(&p.id.as_str()) {
                    voided_here(p.at)
                } else {
                    in_window(p.at)
                }
            })
            .cloned()
            .collect();
        let window_corrections: Vec<Correction> = corrections
            .iter()
            .filter(|c| match &c.action {
                CorrectionAction::Add { at, .. } => {
                    if voids.contains(&c.id.as_str()) {
                        voided_here(*at)
                    } else {
                        in_window(*at)
                    }
                }
                CorrectionAction::Void { target } => instant_of(target).is_some_and(voided_here),
            })
            .cloned()
            .collect();
        let (fresh, _) = daily(&rules, &window_punches, &window_corrections);
        let needed = needed_dates(&rules, window_dates);
        let stored: BTreeMap<NaiveDate, DayFigures> = before
            .days
            .range(needed.0..=needed.1)
            .map(|(d, f)| (*d, f.clone()))
            .collect();
        let delta = merge(&rules, &stored, fresh, window_dates);

        let mut days = before.days.clone();
        for (date, day) in &delta.days {
            match day {
                Some(day) => days.insert(*date, day.clone()),
                None => days.remove(date),
            };
        }
        prop_assert_eq!(&days, &full.days);
        let mut months = before.months.clone();
        for (month, m) in &delta.months {
            match m {
                Some(m) => months.insert(*month, m.clone()),
                None => months.remove(month),
            };
        }
        prop_assert_eq!(&months, &full.months);
        // Exactly the changed days are written.
        for (date, day) in &delta.days {
            prop_assert_ne!(before.days.get(date), day.as_ref());
        }
    }
}
