//! A day's figures ([`DayFigures`]), its anomaly codes, and [`fields`]: the one list of the
//! day's counted figures, so that a new figure is one line here (plus the schema and a
//! migration) and the store's columns, the audit's diff and payroll follow it.

use std::fmt;

/// An anomaly code (CONTRACT §4). The variants are declared in the codes' alphabetical order,
/// so sorting the enum sorts the codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Anomaly {
    /// A break punch with no open span, or a `break_end` with no open break.
    BreakOutsideSpan,
    /// A `clock_out` with no open span.
    MissingClockIn,
    /// A span still open at the next `clock_in` or at the end of the day.
    MissingClockOut,
    /// A break still open at `clock_out` or at the next `break_start`: the span is bad.
    UnclosedBreak,
}

impl Anomaly {
    /// Every code, sorted.
    pub const ALL: [Anomaly; 4] = [
        Anomaly::BreakOutsideSpan,
        Anomaly::MissingClockIn,
        Anomaly::MissingClockOut,
        Anomaly::UnclosedBreak,
    ];

    /// The code as stored and published.
    pub fn as_str(self) -> &'static str {
        match self {
            Anomaly::BreakOutsideSpan => "break_outside_span",
            Anomaly::MissingClockIn => "missing_clock_in",
            Anomaly::MissingClockOut => "missing_clock_out",
            Anomaly::UnclosedBreak => "unclosed_break",
        }
    }

    /// The anomaly a stored code names.
    pub fn parse(code: &str) -> Option<Anomaly> {
        Anomaly::ALL.into_iter().find(|a| a.as_str() == code)
    }
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The figures of one employee's work date: the `attendance_days` columns that follow from
/// the punches (CONTRACT §4 "Figures"), plus the ignored double taps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct DayFigures {
    /// Earliest kept `clock_in`, milliseconds since the Unix epoch.
    pub first_in: Option<i64>,
    /// Latest kept `clock_out`, milliseconds since the Unix epoch.
    pub last_out: Option<i64>,
    /// Whole minutes worked in good spans (spans minus their breaks), rounded down.
    pub worked_minutes: i32,
    /// Whole minutes of breaks in good spans, rounded down.
    pub break_minutes: i32,
    /// Whole minutes of worked time at 22:00-05:00 local wall-clock time, rounded down.
    pub night_minutes: i32,
    /// `max(0, worked_minutes - 480)`.
    pub overtime_minutes: i32,
    /// Kept punches (distinct, double taps excluded).
    pub punch_count: i32,
    /// Distinct anomalies, sorted.
    pub anomalies: Vec<Anomaly>,
    /// Double taps ignored (not in `punch_count`; stored for audit and metrics).
    pub double_taps: i32,
}

impl DayFigures {
    /// The anomaly codes as strings, sorted.
    pub fn anomaly_codes(&self) -> Vec<String> {
        self.anomalies
            .iter()
            .map(|a| a.as_str().to_owned())
            .collect()
    }
}

/// One counted figure of a day: an `int` column of `attendance_days`.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// The figure's name, as the audit and payroll print it.
    pub name: &'static str,
    /// Its column in `attendance_days`.
    pub column: &'static str,
    /// Reads it from a day's figures.
    pub get: fn(&DayFigures) -> i32,
    /// Sets it in a day's figures (reading a stored row).
    pub set: fn(&mut DayFigures, i32),
}

/// The counted figures of a day, in column order. `first_in`, `last_out` (instants) and
/// `anomalies` (codes) are not counts and are not in the list.
pub const FIELDS: [Field; 6] = [
    Field {
        name: "worked_minutes",
        column: "worked_minutes",
        get: |f| f.worked_minutes,
        set: |f, v| f.worked_minutes = v,
    },
    Field {
        name: "break_minutes",
        column: "break_minutes",
        get: |f| f.break_minutes,
        set: |f, v| f.break_minutes = v,
    },
    Field {
        name: "night_minutes",
        column: "night_minutes",
        get: |f| f.night_minutes,
        set: |f, v| f.night_minutes = v,
    },
    Field {
        name: "overtime_minutes",
        column: "overtime_minutes",
        get: |f| f.overtime_minutes,
        set: |f, v| f.overtime_minutes = v,
    },
    Field {
        name: "punch_count",
        column: "punch_count",
        get: |f| f.punch_count,
        set: |f, v| f.punch_count = v,
    },
    Field {
        name: "double_taps",
        column: "double_taps",
        get: |f| f.double_taps,
        set: |f, v| f.double_taps = v,
    },
];

/// The counted figures of a day ([`FIELDS`]).
pub fn fields() -> &'static [Field] {
    &FIELDS
}
