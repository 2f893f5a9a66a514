//! One look for long work, shared by `replay`, `rebuild` and `recheck`: a progress bar on
//! stderr (drawn only when stderr is a terminal, so scripts and tests see nothing of it) and a
//! summary at the end, on the command's output:
//!
//! ```text
//! rebuild of group g1: done in 21.4 s
//!   replayed: 1040000 records (61236/s)
//!   days: 251000 recomputed, 0 changed, 251000 unchanged
//! ```
//!
//! The summary's lines are `label: value`, so a script can pick one with `grep '^  label:'`.

use std::io::Write;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar with stages (scan, publish; replay, recompute), each with its own length.
#[derive(Debug, Clone)]
pub struct Bar(ProgressBar);

impl Bar {
    /// A bar with nothing to do yet; call [`Bar::stage`].
    pub fn new() -> Self {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template("{msg:24} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        Self(bar)
    }

    /// Starts a stage of `total` units.
    pub fn stage(&self, message: &str, total: u64) {
        self.0.set_length(total);
        self.0.set_position(0);
        self.0.reset_eta();
        self.0.set_message(message.to_owned());
    }

    /// `n` more units are done.
    pub fn advance(&self, n: u64) {
        self.0.inc(n);
    }

    /// Removes the bar (before the summary is written).
    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}

impl Default for Bar {
    fn default() -> Self {
        Self::new()
    }
}

impl dakoku_licence_check::recheck::Progress for Bar {
    fn scanning(&self, records: u64) {
        self.stage("scanning verdicts", records);
    }

    fn scanned(&self, records: u64) {
        self.advance(records);
    }

    fn publishing(&self, verdicts: u64) {
        self.stage("publishing new verdicts", verdicts);
    }

    fn published(&self, verdicts: u64) {
        self.advance(verdicts);
    }
}

impl dakoku_attendance::rebuild::Progress for Bar {
    fn stage(&self, name: &str, total: u64) {
        Bar::stage(self, name, total);
    }

    fn advance(&self, n: u64) {
        Bar::advance(self, n);
    }
}

/// The summary of a command: a title with the duration, then `label: value` lines.
#[derive(Debug)]
pub struct Summary {
    title: String,
    started: Instant,
    lines: Vec<(String, String)>,
}

impl Summary {
    /// Starts the clock for `title` (e.g. "rebuild of group g1").
    pub fn start(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            started: Instant::now(),
            lines: Vec::new(),
        }
    }

    /// Time since the start.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Replaces the title (when the scope is only known after the start).
    pub fn set_title(&mut self, title: impl Into<String>) {
        self.title = title.into();
    }

    /// Adds `label: value`.
    pub fn line(&mut self, label: &str, value: impl std::fmt::Display) {
        self.lines.push((label.to_owned(), value.to_string()));
    }

    /// Adds `label: <count> <unit> (<rate>/s)`, the rate over `took`.
    pub fn rate(&mut self, label: &str, count: u64, unit: &str, took: Duration) {
        self.line(
            label,
            format!("{count} {unit} ({}/s)", per_second(count, took)),
        );
    }

    /// Writes the title with the total duration, then the lines, indented.
    pub fn write(&self, out: &mut dyn Write) -> std::io::Result<()> {
        writeln!(out, "{}: done in {}", self.title, human(self.elapsed()))?;
        for (label, value) in &self.lines {
            writeln!(out, "  {label}: {value}")?;
        }
        Ok(())
    }
}

/// `count` per second over `took`, rounded down (0 for no time).
pub fn per_second(count: u64, took: Duration) -> u64 {
    let secs = took.as_secs_f64();
    if secs <= 0.0 {
        return 0;
    }
    (count as f64 / secs) as u64
}

/// A duration as people read it: "850 ms", "12.3 s", "4 min 05 s".
pub fn human(took: Duration) -> String {
    let secs = took.as_secs_f64();
    if secs < 1.0 {
        format!("{} ms", took.as_millis())
    } else if secs < 60.0 {
        format!("{secs:.1} s")
    } else {
        let whole = took.as_secs();
        format!("{} min {:02} s", whole / 60, whole % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_rates_read_naturally() {
        assert_eq!(human(Duration::from_millis(850)), "850 ms");
        assert_eq!(human(Duration::from_millis(12_340)), "12.3 s");
        assert_eq!(human(Duration::from_secs(245)), "4 min 05 s");
        assert_eq!(per_second(1_000, Duration::from_millis(500)), 2_000);
        assert_eq!(per_second(1_000, Duration::ZERO), 0);
    }

    #[test]
    fn the_summary_is_a_title_and_label_value_lines() {
        let mut summary = Summary::start("rebuild of group g");
        summary.line("days", "3 recomputed");
        summary.rate("replayed", 10, "records", Duration::from_secs(2));
        let mut out = Vec::new();
        summary.write(&mut out).expect("written");
        let text = String::from_utf8(out).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("rebuild of group g: done in "),
            "{text}"
        );
        assert_eq!(
            lines[1..],
            ["  days: 3 recomputed", "  replayed: 10 records (5/s)"]
        );
    }
}
