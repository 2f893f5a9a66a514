//! `archcheck [ROOT] [--graph]`: checks the workspace's shape (see the library) and prints
//! what breaks it; `--graph` also prints the crate graph. Exit status 1 when anything does.

use std::path::PathBuf;

use anyhow::Context as _;
use dakoku_archcheck::{Limits, check_workspace, crates};

fn main() -> anyhow::Result<()> {
    let mut root = PathBuf::from(".");
    let mut graph = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--graph" => graph = true,
            "-h" | "--help" => {
                eprintln!("usage: archcheck [ROOT] [--graph]");
                return Ok(());
            }
            path => root = PathBuf::from(path),
        }
    }
    if graph {
        let members = crates::members(&root).context("reading the workspace")?;
        print!("{}", crates::render(&members));
    }
    let report = check_workspace(&root, Limits::default()).context("checking the workspace")?;
    print!("{report}");
    if !report.is_clean() {
        std::process::exit(1);
    }
    Ok(())
}
