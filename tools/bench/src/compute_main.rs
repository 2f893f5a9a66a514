//! The `compute-bench` binary: generates punch files of realistic shifts and measures the
//! release `punchctl attendance compute` on them (wall, CPU, peak RSS, time ratio across sizes).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use dakoku_bench::compute::data::Shape;
use dakoku_bench::compute::measure::{self, Measured};

/// Measures `punchctl attendance compute` on generated data at several sizes.
///
/// Build and run (no stack needed):
///   cargo build --release -p punchctl -p dakoku-bench
///   target/release/compute-bench [--shape 100x100000 --shape 1000x1000000]
#[derive(Debug, Parser)]
#[command(name = "compute-bench", version, about, verbatim_doc_comment)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// The punchctl binary (default: `punchctl` next to this executable).
    #[arg(long)]
    punchctl: Option<PathBuf>,
    /// Sizes as EMPLOYEESxPUNCHES, measured in order. Default: the brief's 100 employees x 100k
    /// and 1,000 x 1M punches (about 11 months of shifts each), then 1,100 x 100k and 11,000 x
    /// 1M (one month each).
    #[arg(long = "shape", value_parser = parse_shape)]
    shapes: Vec<(usize, usize)>,
    /// Seed of the generated data.
    #[arg(long, default_value_t = 13)]
    seed: u64,
    /// Runs of each size; the fastest counts.
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// Working directory for the files (default: a fresh one under the system's temp dir,
    /// removed at the end).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Only write RULES.json and PUNCHES.jsonl of one size into a directory.
    Data {
        /// Employees.
        #[arg(long)]
        employees: usize,
        /// Punch lines in all.
        #[arg(long)]
        punches: usize,
        /// Seed of the generated data.
        #[arg(long, default_value_t = 13)]
        seed: u64,
        /// Where to write the files.
        #[arg(long)]
        out: PathBuf,
    },
}

fn parse_shape(s: &str) -> Result<(usize, usize), String> {
    let (e, p) = s
        .split_once('x')
        .ok_or_else(|| format!("{s:?}: expected EMPLOYEESxPUNCHES, e.g. 100x100000"))?;
    let number = |t: &str| t.parse::<usize>().map_err(|e| format!("{t:?}: {e}"));
    Ok((number(e)?.max(1), number(p)?))
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("compute-bench: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if let Some(Command::Data {
        employees,
        punches,
        seed,
        out,
    }) = cli.command
    {
        let shape = Shape {
            employees,
            punches,
            seed,
        };
        let (_, _, written) = measure::write_data(&out, shape)?;
        eprintln!(
            "compute-bench: {} punch lines over {} days in {}",
            written.lines,
            written.days,
            out.display()
        );
        return Ok(());
    }
    let punchctl = match cli.punchctl {
        Some(path) => path,
        None => std::env::current_exe()?.with_file_name("punchctl"),
    };
    anyhow::ensure!(
        punchctl.exists(),
        "{} not found: cargo build --release -p punchctl",
        punchctl.display()
    );
    let shapes = if cli.shapes.is_empty() {
        vec![
            (100, 100_000),
            (1_000, 1_000_000),
            (1_100, 100_000),
            (11_000, 1_000_000),
        ]
    } else {
        cli.shapes
    };
    let temp = std::env::temp_dir().join(format!("compute-bench-{}", std::process::id()));
    let dir = cli.dir.clone().unwrap_or_else(|| temp.clone());
    let mut results = Vec::new();
    println!(
        "employees  punches  days   wall s   cpu s  punches/s  peak RSS MiB  day/month records"
    );
    for (employees, punches) in shapes {
        let shape = Shape {
            employees,
            punches,
            seed: cli.seed,
        };
        let m = measure::run(
            &punchctl,
            &dir.join(format!("{employees}x{punches}")),
            shape,
            cli.runs,
        )?;
        println!(
            "{:>9} {:>8} {:>5} {:>8.2} {:>7.2} {:>10.0} {:>13.1}  {}/{}",
            m.employees,
            m.punches,
            m.days,
            m.wall_secs,
            m.cpu_secs,
            m.punches_per_sec,
            m.peak_rss_mib,
            m.day_records,
            m.month_records
        );
        results.push(m);
    }
    for line in ratios(&results) {
        println!("{line}");
    }
    if cli.dir.is_none() {
        std::fs::remove_dir_all(&temp).ok();
    }
    if let Some(path) = cli.json {
        let file =
            std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        serde_json::to_writer_pretty(file, &results)?;
    }
    Ok(())
}

/// For each pair of runs with the same punches per employee, the time ratio against the
/// punch ratio (linear: equal).
fn ratios(results: &[Measured]) -> Vec<String> {
    let mut out = Vec::new();
    for (i, big) in results.iter().enumerate() {
        for small in &results[..i] {
            if big.punches / big.employees == small.punches / small.employees
                && big.punches > small.punches
                && small.wall_secs >= 0.01
            {
                out.push(format!(
                    "{} / {} punches ({} punches per employee): wall x{:.2}, cpu x{:.2}, punches x{:.2}",
                    big.punches,
                    small.punches,
                    big.punches / big.employees,
                    big.wall_secs / small.wall_secs,
                    big.cpu_secs / small.cpu_secs,
                    big.punches as f64 / small.punches as f64
                ));
            }
        }
    }
    out
}
