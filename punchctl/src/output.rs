//! How commands write what they found: aligned tables, JSON, timestamps and durations as an
//! operator reads them. Shared by every verb, so no verb reaches into another for formatting.

use std::io::Write;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

/// Writes `rows` under `headers` as left-aligned columns separated by two spaces.
pub fn write_table(
    out: &mut dyn Write,
    headers: &[&str],
    rows: &[Vec<String>],
) -> std::io::Result<()> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut line = |cells: &mut dyn Iterator<Item = &str>| -> std::io::Result<()> {
        let mut text = String::new();
        for (i, (cell, width)) in cells.zip(&widths).enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            text.push_str(cell);
            text.extend(std::iter::repeat_n(' ', width - cell.chars().count()));
        }
        writeln!(out, "{}", text.trim_end())
    };
    line(&mut headers.iter().copied())?;
    for row in rows {
        line(&mut row.iter().map(String::as_str))?;
    }
    Ok(())
}

/// Writes `value` as pretty JSON followed by a newline (one object per command).
pub fn write_json(out: &mut dyn Write, value: &impl serde::Serialize) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    writeln!(out)
}

/// An instant as RFC 3339 in UTC, to the second.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `d` as a short human duration: `42s`, `5m 3s`, `3h 12m`, `2d 4h`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3_600 => format!("{}m {}s", s / 60, s % 60),
        3_600..86_400 => format!("{}h {}m", s / 3_600, s % 3_600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3_600),
    }
}

/// Reports an administrator operation's refusal on `err` and returns its exit status: 2 when
/// the request must change (invalid, not found, conflict), 1 when Postgres or Kafka is
/// unavailable (run it again later).
pub fn admin_refusal(
    err: &mut dyn Write,
    error: &dakoku_admin::AdminError,
) -> std::io::Result<std::process::ExitCode> {
    writeln!(err, "punchctl: {error}")?;
    Ok(std::process::ExitCode::from(if error.is_client_error() {
        2
    } else {
        1
    }))
}

/// The actor recorded for an administrator's change made here: `cli:<name>`, with `name`
/// from `--actor`, else `$USER`, else `punchctl`.
pub fn cli_actor(given: Option<&str>) -> String {
    let name = given
        .map(str::to_owned)
        .or_else(|| std::env::var("USER").ok())
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| "punchctl".to_owned());
    format!("cli:{}", name.trim())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(Duration::from_secs(42)), "42s");
        assert_eq!(human_duration(Duration::from_secs(303)), "5m 3s");
        assert_eq!(
            human_duration(Duration::from_secs(3 * 3600 + 720)),
            "3h 12m"
        );
        assert_eq!(
            human_duration(Duration::from_secs(2 * 86_400 + 4 * 3600)),
            "2d 4h"
        );
    }

    #[test]
    fn tables_align_columns_and_trim_line_ends() {
        let mut out = Vec::new();
        let rows = vec![
            vec!["a".to_owned(), String::new()],
            vec!["bbb".to_owned(), "x".to_owned()],
        ];
        write_table(&mut out, &["K", "V"], &rows).expect("write");
        assert_eq!(
            String::from_utf8(out).expect("utf-8"),
            "K    V\na\nbbb  x\n"
        );
    }
}
