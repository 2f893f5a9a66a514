//! The figures payroll pays from: a day's ([`DayFigures`], §4.3) and a payroll month's
//! ([`MonthFigures`], §4.4), in exact seconds, with the one list of day figures ([`DAY_FIELDS`])
//! that the store's columns, the audit's comparison and the payroll columns are built from.

use std::fmt;

/// An anomaly code. Declared in the codes' alphabetical order, so sorting sorts the codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Anomaly {
    /// A `break_end` inside a span with no break open: the span is bad.
    BreakEndWithoutStart,
    /// A break punch with no span open: ignored.
    BreakOutsideSpan,
    /// Worked over 6 h with breaks under 45 min, or over 8 h with breaks under 60 min
    /// (LSA art. 34): flagged, never deducted.
    BreakShort,
    /// A `clock_out` with no span open.
    MissingClockIn,
    /// A span never closed: by the next `clock_in`, by `max_shift`, or by the end of the punches.
    MissingClockOut,
    /// A break still open at `clock_out` or at the next `break_start`: the span is bad.
    UnclosedBreak,
}

impl Anomaly {
    /// Every code, sorted.
    pub const ALL: [Anomaly; 6] = [
        Anomaly::BreakEndWithoutStart,
        Anomaly::BreakOutsideSpan,
        Anomaly::BreakShort,
        Anomaly::MissingClockIn,
        Anomaly::MissingClockOut,
        Anomaly::UnclosedBreak,
    ];

    /// The contract's code.
    pub fn as_str(self) -> &'static str {
        match self {
            Anomaly::BreakEndWithoutStart => "break_end_without_start",
            Anomaly::BreakOutsideSpan => "break_outside_span",
            Anomaly::BreakShort => "break_short",
            Anomaly::MissingClockIn => "missing_clock_in",
            Anomaly::MissingClockOut => "missing_clock_out",
            Anomaly::UnclosedBreak => "unclosed_break",
        }
    }

    /// The anomaly a code names.
    pub fn parse(code: &str) -> Option<Self> {
        Anomaly::ALL.into_iter().find(|a| a.as_str() == code)
    }
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One employee's figures for one work date (§4.3). Seconds throughout.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayFigures {
    /// Sum over good spans of clock_out - clock_in - their breaks.
    pub worked_seconds: i64,
    /// The breaks of good spans.
    pub break_seconds: i64,
    /// Worked seconds inside the night window (wall clock).
    pub night_seconds: i64,
    /// Worked seconds on the legal holiday's calendar day (wall clock).
    pub holiday_seconds: i64,
    /// max(0, regular - daily limit), regular being worked less holiday.
    pub overtime_daily_seconds: i64,
    /// The part of this day that takes the week's running regular time past the weekly limit.
    pub overtime_weekly_seconds: i64,
    /// 法定内残業: max(0, min(regular, daily limit) - scheduled).
    pub within_statutory_seconds: i64,
    /// Earliest kept `clock_in` assigned to the date, good span or not (Unix seconds).
    pub first_in: Option<i64>,
    /// Latest kept `clock_out` assigned to the date, good span or not (Unix seconds).
    pub last_out: Option<i64>,
    /// Kept punches assigned to the date.
    pub punch_count: i64,
    /// Distinct codes, sorted.
    pub anomalies: Vec<Anomaly>,
    /// An added punch is assigned to the date, or a voided punch's own work date is it.
    pub corrected: bool,
    /// The ids of the corrections that made it `corrected`, sorted.
    pub correction_ids: Vec<String>,
}

impl DayFigures {
    /// Regular time: worked less holiday work (which counts towards no overtime).
    pub fn regular_seconds(&self) -> i64 {
        self.worked_seconds - self.holiday_seconds
    }

    /// What the day adds to the week's running regular time (regular less daily overtime).
    pub fn weekly_base_seconds(&self) -> i64 {
        self.regular_seconds() - self.overtime_daily_seconds
    }
}

/// One integer day figure: its name (the contract's field, the store's column) and getter.
#[derive(Debug, Clone, Copy)]
pub struct DayField {
    /// Field and column name.
    pub name: &'static str,
    /// Reads it.
    pub get: fn(&DayFigures) -> i64,
}

macro_rules! day_fields {
    ($($f:ident),* $(,)?) => {
        /// The integer figures of a day, in the contract's order: one line each, so a new
        /// figure is one line here plus schema and migration.
        pub const DAY_FIELDS: &[DayField] = &[
            $(DayField { name: stringify!($f), get: |d| d.$f },)*
        ];
    };
}

day_fields!(
    worked_seconds,
    break_seconds,
    night_seconds,
    holiday_seconds,
    overtime_daily_seconds,
    overtime_weekly_seconds,
    within_statutory_seconds,
    punch_count,
);

/// One employee's figures for one payroll month (§4.4).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MonthFigures {
    /// Work dates with worked > 0.
    pub days_worked: i64,
    /// Work dates with an anomaly (`break_short` included).
    pub anomaly_days: i64,
    /// Sum of the days' worked seconds.
    pub worked_seconds: i64,
    /// Sum of the days' break seconds.
    pub break_seconds: i64,
    /// Sum of the days' night seconds.
    pub night_seconds: i64,
    /// Sum of the days' holiday seconds.
    pub holiday_seconds: i64,
    /// Sum of the days' within-statutory seconds.
    pub within_statutory_seconds: i64,
    /// Daily plus weekly overtime of the month's days.
    pub overtime_seconds: i64,
    /// The part of the month's running overtime beyond 60 h (LSA art. 37(1)).
    pub overtime_over60_seconds: i64,
    /// floor(worked / 60).
    pub worked_minutes: i64,
    /// floor(overtime / 60), then the monthly rounding.
    pub overtime_minutes: i64,
    /// floor(over-60 / 60), then the monthly rounding.
    pub overtime_over60_minutes: i64,
    /// floor(night / 60), then the monthly rounding.
    pub night_minutes: i64,
    /// floor(holiday / 60), then the monthly rounding.
    pub holiday_minutes: i64,
}

/// One integer month figure: name and getter.
#[derive(Debug, Clone, Copy)]
pub struct MonthField {
    /// Field and column name.
    pub name: &'static str,
    /// Reads it.
    pub get: fn(&MonthFigures) -> i64,
}

macro_rules! month_fields {
    ($($f:ident),* $(,)?) => {
        /// The month's figures in the contract's order (§4.8 output), one line each.
        pub const MONTH_FIELDS: &[MonthField] = &[
            $(MonthField { name: stringify!($f), get: |m| m.$f },)*
        ];
    };
}

month_fields!(
    days_worked,
    anomaly_days,
    worked_seconds,
    break_seconds,
    night_seconds,
    holiday_seconds,
    within_statutory_seconds,
    overtime_seconds,
    overtime_over60_seconds,
    worked_minutes,
    overtime_minutes,
    overtime_over60_minutes,
    night_minutes,
    holiday_minutes,
);
