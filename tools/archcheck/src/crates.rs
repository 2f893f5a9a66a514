//! The workspace's crate graph, dev- and build-dependencies included, from `cargo metadata`.
//! Cargo allows a dev-dependency cycle (a crate's tests depending on a crate that depends on
//! it), but it builds the crate twice and ties the layers together: it counts here.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::modules::strongly_connected;

/// One workspace member.
#[derive(Debug, Clone)]
pub struct Member {
    /// The package name.
    pub name: String,
    /// Its directory.
    pub dir: PathBuf,
    /// Its library and binary root files (integration tests, benches and examples are not
    /// sources the limits apply to).
    pub roots: Vec<PathBuf>,
    /// Other members it depends on, with the kind (`normal`, `dev`, `build`).
    pub depends_on: Vec<(String, String)>,
}

/// Why the metadata could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// `cargo metadata` did not run or failed.
    #[error("cargo metadata: {0}")]
    Cargo(String),
    /// Its output was not what cargo writes.
    #[error("cargo metadata output: {0}")]
    Shape(String),
}

/// The workspace's members, read with `cargo metadata --no-deps` in `root`.
pub fn members(root: &Path) -> Result<Vec<Member>, MetadataError> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--offline",
        ])
        .current_dir(root)
        .output()
        .map_err(|e| MetadataError::Cargo(e.to_string()))?;
    if !output.status.success() {
        return Err(MetadataError::Cargo(
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ));
    }
    let json: Value =
        serde_json::from_slice(&output.stdout).map_err(|e| MetadataError::Shape(e.to_string()))?;
    parse_members(&json)
}

fn parse_members(json: &Value) -> Result<Vec<Member>, MetadataError> {
    let shape = |what: &str| MetadataError::Shape(format!("no {what}"));
    let packages = json["packages"]
        .as_array()
        .ok_or_else(|| shape("packages"))?;
    let names: Vec<&str> = packages.iter().filter_map(|p| p["name"].as_str()).collect();
    let mut out = Vec::new();
    for package in packages {
        let name = package["name"].as_str().ok_or_else(|| shape("name"))?;
        let manifest = package["manifest_path"]
            .as_str()
            .ok_or_else(|| shape("manifest_path"))?;
        let roots = package["targets"]
            .as_array()
            .ok_or_else(|| shape("targets"))?
            .iter()
            .filter(|t| {
                t["kind"].as_array().is_some_and(|kinds| {
                    kinds
                        .iter()
                        .any(|k| matches!(k.as_str(), Some("lib" | "bin" | "rlib")))
                })
            })
            .filter_map(|t| t["src_path"].as_str().map(PathBuf::from))
            .collect();
        let depends_on = package["dependencies"]
            .as_array()
            .ok_or_else(|| shape("dependencies"))?
            .iter()
            .filter_map(|d| {
                let dep = d["name"].as_str()?;
                names.contains(&dep).then(|| {
                    let kind = d["kind"].as_str().unwrap_or("normal").to_owned();
                    (dep.to_owned(), kind)
                })
            })
            .collect();
        out.push(Member {
            name: name.to_owned(),
            dir: Path::new(manifest)
                .parent()
                .ok_or_else(|| shape("package directory"))?
                .to_owned(),
            roots,
            depends_on,
        });
    }
    Ok(out)
}

/// The cycles between members, each a sorted list of package names.
pub fn cycles(members: &[Member]) -> Vec<Vec<String>> {
    let graph: BTreeMap<String, BTreeMap<String, ()>> = members
        .iter()
        .map(|m| {
            let deps = m
                .depends_on
                .iter()
                .map(|(name, _)| (name.clone(), ()))
                .collect();
            (m.name.clone(), deps)
        })
        .collect();
    strongly_connected(&graph)
}

/// The crate graph as lines `a -> b (kind)`, for the `archcheck --graph` listing.
pub fn render(members: &[Member]) -> String {
    let mut out = String::new();
    for member in members {
        for (dep, kind) in &member.depends_on {
            out.push_str(&format!("{} -> {dep} ({kind})\n", member.name));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(name: &str, deps: &[(&str, &str)]) -> Member {
        Member {
            name: name.into(),
            dir: PathBuf::new(),
            roots: Vec::new(),
            depends_on: deps
                .iter()
                .map(|(d, k)| ((*d).to_owned(), (*k).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn a_dev_dependency_loop_is_a_cycle() {
        let members = [
            member("attendance", &[("schemas", "normal"), ("e2e", "dev")]),
            member("e2e", &[("attendance", "normal")]),
            member("schemas", &[]),
        ];
        assert_eq!(cycles(&members), vec![vec!["attendance", "e2e"]]);
        let layered = [
            member("attendance", &[("schemas", "normal"), ("testkit", "dev")]),
            member("testkit", &[("schemas", "normal")]),
            member("schemas", &[]),
        ];
        assert!(cycles(&layered).is_empty());
    }

    #[test]
    fn metadata_members_keep_workspace_dependencies_only() {
        let json = serde_json::json!({"packages": [
            {"name": "a", "manifest_path": "/w/a/Cargo.toml",
             "targets": [{"kind": ["lib"], "src_path": "/w/a/src/lib.rs"},
                         {"kind": ["test"], "src_path": "/w/a/tests/t.rs"}],
             "dependencies": [{"name": "b", "kind": "dev"}, {"name": "serde", "kind": null}]},
            {"name": "b", "manifest_path": "/w/b/Cargo.toml", "targets": [], "dependencies": []}
        ]});
        let members = parse_members(&json).expect("parses");
        assert_eq!(members[0].roots, vec![PathBuf::from("/w/a/src/lib.rs")]);
        assert_eq!(members[0].depends_on, vec![("b".into(), "dev".into())]);
        assert_eq!(members[0].dir, PathBuf::from("/w/a"));
    }
}
