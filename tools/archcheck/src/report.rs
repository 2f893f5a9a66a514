//! [`check_workspace`]: every rule over the whole workspace, and the [`Report`] that says
//! what breaks them, with file and line.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::crates::{self, MetadataError};
use crate::modules::{Cycle, Graph, cycles};
use crate::sizes::{LongFn, functions, non_test_lines};
use crate::source::{SourceError, parse, read_crate};
use crate::text::{Misplaced, check_text, rust_files};

/// The limits a reader can take in one sitting.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Non-test lines of a source file.
    pub file_lines: usize,
    /// Lines of a non-test function.
    pub fn_lines: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            file_lines: 800,
            fn_lines: 120,
        }
    }
}

/// What the check found.
#[derive(Debug, Default)]
pub struct Report {
    /// Crates whose module trees were read (a library or a binary each).
    pub crates_checked: usize,
    /// Modules read.
    pub modules_checked: usize,
    /// Cycles between sibling modules, by crate root.
    pub module_cycles: Vec<(PathBuf, Cycle)>,
    /// Cycles between workspace members.
    pub crate_cycles: Vec<Vec<String>>,
    /// Source files over the limit, with their non-test lines.
    pub big_files: Vec<(PathBuf, usize)>,
    /// Functions over the limit.
    pub long_fns: Vec<LongFn>,
    /// Spellings outside their place.
    pub misplaced: Vec<Misplaced>,
}

impl Report {
    /// Whether nothing breaks a rule.
    pub fn is_clean(&self) -> bool {
        self.module_cycles.is_empty()
            && self.crate_cycles.is_empty()
            && self.big_files.is_empty()
            && self.long_fns.is_empty()
            && self.misplaced.is_empty()
    }
}

/// Why the check could not run.
#[derive(Debug, thiserror::Error)]
pub enum ArchError {
    /// The workspace's metadata.
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    /// A source file.
    #[error(transparent)]
    Source(#[from] SourceError),
}

/// Checks the workspace at `root`.
pub fn check_workspace(root: &Path, limits: Limits) -> Result<Report, ArchError> {
    let root = &root.canonicalize().map_err(|source| SourceError::Read {
        path: root.to_owned(),
        source,
    })?;
    let members = crates::members(root)?;
    let mut report = Report {
        crate_cycles: crates::cycles(&members),
        ..Report::default()
    };
    let mut sizes = BTreeMap::new();
    for member in &members {
        if member.name == env!("CARGO_PKG_NAME") {
            continue; // its fixtures spell what it looks for
        }
        for root_file in &member.roots {
            let tree = read_crate(root_file)?;
            report.crates_checked += 1;
            report.modules_checked += tree.modules.len();
            let graph = Graph::new(&tree);
            for mut cycle in cycles(&graph.edges()) {
                for edge in &mut cycle.evidence {
                    edge.file = relative(root, &edge.file);
                }
                report
                    .module_cycles
                    .push((relative(root, root_file), cycle));
            }
            for f in functions(&tree) {
                if f.lines > limits.fn_lines && !report.long_fns.contains(&f) {
                    report.long_fns.push(f);
                }
            }
            for module in tree.modules.iter().filter(|m| !m.inline) {
                if !sizes.contains_key(&module.file) {
                    let (text, parsed) = parse(&module.file)?;
                    sizes.insert(module.file.clone(), non_test_lines(&text, &parsed));
                }
            }
        }
    }
    report.big_files = sizes
        .into_iter()
        .filter(|(_, lines)| *lines > limits.file_lines)
        .map(|(file, lines)| (relative(root, &file), lines))
        .collect();
    for f in &mut report.long_fns {
        f.file = relative(root, &f.file);
    }
    for file in rust_files(root) {
        let text = std::fs::read_to_string(&file).map_err(|source| SourceError::Read {
            path: file.clone(),
            source,
        })?;
        report
            .misplaced
            .extend(check_text(&relative(root, &file), &text));
    }
    Ok(report)
}

fn relative(root: &Path, file: &Path) -> PathBuf {
    file.strip_prefix(root).unwrap_or(file).to_owned()
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} crates, {} modules checked",
            self.crates_checked, self.modules_checked
        )?;
        for (root, cycle) in &self.module_cycles {
            let parent = if cycle.parent.is_empty() {
                "crate".to_owned()
            } else {
                cycle.parent.join("::")
            };
            writeln!(
                f,
                "module cycle in {} under {parent}: {}",
                root.display(),
                cycle.members.join(" <-> ")
            )?;
            for edge in &cycle.evidence {
                writeln!(
                    f,
                    "    {} -> {}: `{}` at {}:{}",
                    edge.from.join("::"),
                    edge.to.join("::"),
                    edge.via,
                    edge.file.display(),
                    edge.line
                )?;
            }
        }
        for cycle in &self.crate_cycles {
            writeln!(f, "crate cycle: {}", cycle.join(" <-> "))?;
        }
        for (file, lines) in &self.big_files {
            writeln!(f, "file over the limit: {} ({lines} lines)", file.display())?;
        }
        for long in &self.long_fns {
            writeln!(
                f,
                "function over the limit: {}:{} `{}` ({} lines)",
                long.file.display(),
                long.line,
                long.name,
                long.lines
            )?;
        }
        for m in &self.misplaced {
            writeln!(
                f,
                "`{}` outside {}: {}:{}",
                m.what,
                m.allowed,
                m.file.display(),
                m.line
            )?;
        }
        Ok(())
    }
}
