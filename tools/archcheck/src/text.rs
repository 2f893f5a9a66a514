//! Rules about where a thing may be written at all: one Kafka client factory (the `kafka`
//! crate creates every `ClientConfig`, so security settings are set in one place) and one
//! Postgres door (`store::connect`, which decides TLS).

use std::path::{Path, PathBuf};

/// A forbidden spelling where it may not be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Misplaced {
    /// The file (relative to the workspace root).
    pub file: PathBuf,
    /// The line.
    pub line: usize,
    /// What was found.
    pub what: &'static str,
    /// Where it belongs.
    pub allowed: &'static str,
}

/// `(spelling, where it may appear: a path prefix relative to the workspace root)`.
pub const RULES: &[(&str, &str)] = &[
    ("ClientConfig::new()", "kafka/"),
    ("NoTls", "store/src/connect.rs"),
];

/// Finds the rules' spellings in `text` (the file `relative`), outside comments.
pub fn check_text(relative: &Path, text: &str) -> Vec<Misplaced> {
    let mut out = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("//") {
            continue;
        }
        for (what, allowed) in RULES {
            if code.contains(what) && !relative.starts_with(allowed) {
                out.push(Misplaced {
                    file: relative.to_owned(),
                    line: index + 1,
                    what,
                    allowed,
                });
            }
        }
    }
    out
}

/// Every `.rs` file under `root` except build output, fixtures of this checker and
/// directories that are not part of the workspace.
pub fn rust_files(root: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .filter_entry(|e| {
            let name = e.file_name().to_string_lossy();
            !(e.file_type().is_dir()
                && (name == "target"
                    || name.starts_with('.') && e.depth() > 0
                    || name == "archcheck"))
        })
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && e.path().extension().is_some_and(|x| x == "rs"))
        .map(|e| e.into_path())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_outside_their_place_are_found_and_comments_ignored() {
        let text = "let c = ClientConfig::new();\n// ClientConfig::new() in a comment\n";
        let found = check_text(Path::new("punchctl/src/lag.rs"), text);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].line, 1);
        assert!(check_text(Path::new("kafka/src/client.rs"), text).is_empty());
        assert_eq!(
            check_text(Path::new("store/src/snapshot.rs"), "connect(url, NoTls)").len(),
            1
        );
        assert!(check_text(Path::new("store/src/connect.rs"), "connect(url, NoTls)").is_empty());
    }
}
