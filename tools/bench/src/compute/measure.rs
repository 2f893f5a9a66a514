//! One measured run of the release `punchctl attendance compute` on generated files: wall and
//! CPU seconds and peak RSS (from `/usr/bin/time`, which reads the child's own rusage), and a
//! check of what it printed (well-formed, sorted, the reference employee's month as expected).

use std::fs::File;
use std::io::{BufRead as _, BufReader, BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail, ensure};
use serde::Serialize;
use serde_json::Value;

use crate::compute::data::{self, Shape};

/// The figures of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Measured {
    /// Employees in the data.
    pub employees: usize,
    /// Punch lines in the data.
    pub punches: usize,
    /// Calendar days the data spans.
    pub days: usize,
    /// Wall seconds of the command.
    pub wall_secs: f64,
    /// User plus system CPU seconds.
    pub cpu_secs: f64,
    /// Peak resident set size, MiB.
    pub peak_rss_mib: f64,
    /// Punches per wall second.
    pub punches_per_sec: f64,
    /// Day records printed.
    pub day_records: usize,
    /// Month records printed.
    pub month_records: usize,
}

/// Writes the rules and punch files of `shape` into `dir` and returns their paths and what was
/// written.
pub fn write_data(dir: &Path, shape: Shape) -> anyhow::Result<(PathBuf, PathBuf, data::Written)> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let rules = dir.join("RULES.json");
    std::fs::write(&rules, data::RULES_JSON)
        .with_context(|| format!("writing {}", rules.display()))?;
    let punches = dir.join("PUNCHES.jsonl");
    let mut out = BufWriter::new(
        File::create(&punches).with_context(|| format!("creating {}", punches.display()))?,
    );
    let written = data::write_punches(shape, &mut out)?;
    out.flush()?;
    Ok((rules, punches, written))
}

/// Generates `shape` in `dir`, runs `punchctl attendance compute` on it `runs` times under
/// `/usr/bin/time` and checks the output. Times are the best run's (the machine is shared: the
/// fastest run is the one least disturbed), RSS the largest.
pub fn run(punchctl: &Path, dir: &Path, shape: Shape, runs: u32) -> anyhow::Result<Measured> {
    let (rules, punches, written) = write_data(dir, shape)?;
    let output = dir.join("OUTPUT.jsonl");
    let mut best: Option<[f64; 3]> = None;
    let mut rss_kib: f64 = 0.0;
    for _ in 0..runs.max(1) {
        let [wall, cpu, rss] = time_once(punchctl, dir, &rules, &punches, &output)?;
        rss_kib = rss_kib.max(rss);
        if best.is_none_or(|[w, _, _]| wall < w) {
            best = Some([wall, cpu, rss]);
        }
        if let Some([_, c, _]) = &mut best {
            *c = c.min(cpu);
        }
    }
    let [wall, cpu, _] = best.unwrap_or_default();
    let (day_records, month_records) = check_output(&output)?;
    Ok(Measured {
        employees: shape.employees,
        punches: written.lines,
        days: written.days,
        wall_secs: wall,
        cpu_secs: cpu,
        peak_rss_mib: rss_kib / 1024.0,
        punches_per_sec: written.lines as f64 / wall.max(0.001),
        day_records,
        month_records,
    })
}

/// One run: wall seconds, CPU seconds, peak RSS in KiB.
fn time_once(
    punchctl: &Path,
    dir: &Path,
    rules: &Path,
    punches: &Path,
    output: &Path,
) -> anyhow::Result<[f64; 3]> {
    let times = dir.join("time.txt");
    let status = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%e %U %S %M")
        .arg("-o")
        .arg(&times)
        .arg(punchctl)
        .args(["attendance", "compute", "--rules"])
        .arg(rules)
        .arg("--punches")
        .arg(punches)
        .stdout(File::create(output)?)
        .stderr(Stdio::inherit())
        .status()
        .context("running /usr/bin/time (apt-get install time)")?;
    ensure!(
        status.success(),
        "punchctl attendance compute failed: {status}"
    );
    let text = std::fs::read_to_string(&times)?;
    let figures: Vec<f64> = text
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .with_context(|| format!("reading /usr/bin/time's {text:?}"))?;
    let [wall, user, system, rss_kib] = figures[..] else {
        bail!("/usr/bin/time printed {text:?}");
    };
    Ok([wall, user + system, rss_kib])
}

/// Checks the records: JSON objects, employees in order, days by date then months by month per
/// employee, and the reference employee's November; returns (days, months).
pub fn check_output(path: &Path) -> anyhow::Result<(usize, usize)> {
    let (mut days, mut months) = (0, 0);
    let mut last: Option<(String, u8, String)> = None;
    let mut reference_month = None;
    for (i, line) in BufReader::new(File::open(path)?).lines().enumerate() {
        let line = line?;
        let v: Value = serde_json::from_str(&line)
            .with_context(|| format!("output line {} is not JSON: {line}", i + 1))?;
        let employee = v["employee_id"].as_str().unwrap_or_default().to_owned();
        let (rank, key, counter) = match v["record"].as_str() {
            Some("day") => (0, &v["work_date"], &mut days),
            Some("month") => (1, &v["month"], &mut months),
            _ => bail!("output line {}: no record kind: {line}", i + 1),
        };
        *counter += 1;
        let key = (employee, rank, key.as_str().unwrap_or_default().to_owned());
        ensure!(
            last.as_ref().is_none_or(|l| *l < key),
            "output line {} is out of order: {line}",
            i + 1
        );
        if key.0 == "E00000" && key.1 == 1 && key.2 == "2026-11" {
            reference_month = Some(v.clone());
        }
        last = Some(key);
    }
    if let Some(m) = reference_month {
        let (worked_days, worked, breaks, within) = data::reference_figures();
        let got = |f: &str| m[f].as_i64().unwrap_or(-1);
        ensure!(
            (
                got("days_worked"),
                got("worked_seconds"),
                got("break_seconds"),
                got("within_statutory_seconds")
            ) == (worked_days, worked, breaks, within),
            "the reference employee's 2026-11 is not as expected: {m}"
        );
    }
    Ok((days, months))
}
