//! The checker finds what it is for, so a clean workspace report means something.

use std::path::Path;

use dakoku_archcheck::modules::{Graph, cycles};
use dakoku_archcheck::sizes::{functions, non_test_lines};
use dakoku_archcheck::source::{parse, read_crate};

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    }
}

fn cycles_of(files: &[(&str, &str)]) -> Vec<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), files);
    let tree = read_crate(&dir.path().join("lib.rs")).expect("reads");
    cycles(&Graph::new(&tree).edges())
        .into_iter()
        .map(|c| format!("{}: {}", c.parent.join("::"), c.members.join(" <-> ")))
        .collect()
}

#[test]
fn a_sibling_cycle_through_use_is_found() {
    let found = cycles_of(&[
        ("lib.rs", "mod a;\nmod b;\n"),
        ("a.rs", "use crate::b::B;\npub struct A;\n"),
        ("b.rs", "pub struct B;\nfn f() { let _ = crate::a::A; }\n"),
    ]);
    assert_eq!(found, vec![": a <-> b"]);
}

#[test]
fn a_cycle_between_subtrees_and_through_reexports_and_super_is_found() {
    let found = cycles_of(&[
        ("lib.rs", "mod a;\nmod b;\n"),
        ("a/mod.rs", "mod x;\nmod z;\npub use z::Z;\n"),
        ("a/x.rs", "use super::super::b::y::Y;\n"),
        ("a/z.rs", "pub struct Z;\n"),
        ("b/mod.rs", "pub mod y;\n"),
        ("b/y.rs", "pub struct Y;\nuse crate::a::Z;\n"),
    ]);
    assert_eq!(found, vec![": a <-> b"]);
}

#[test]
fn a_tree_without_cycles_and_test_modules_are_clean() {
    let found = cycles_of(&[
        ("lib.rs", "mod a;\nmod b;\npub use b::B;\n"),
        (
            "a.rs",
            "use crate::B;\nuse super::b;\n#[cfg(test)]\nmod tests { use crate::a; }\n",
        ),
        (
            "b.rs",
            "pub struct B;\nfn f() -> super::B { B }\n#[cfg(test)]\nmod tests { use crate::a; }\n",
        ),
    ]);
    assert!(found.is_empty(), "{found:?}");
    // The same tree with b using a in non-test code is a cycle: the check can fail.
    let found = cycles_of(&[
        ("lib.rs", "mod a;\nmod b;\npub use b::B;\n"),
        ("a.rs", "use crate::B;\npub fn g() {}\n"),
        ("b.rs", "pub struct B;\nfn f() { crate::a::g() }\n"),
    ]);
    assert_eq!(found, vec![": a <-> b"]);
}

#[test]
fn long_functions_and_non_test_lines_are_measured() {
    let dir = tempfile::tempdir().expect("tempdir");
    let body = "    let _ = 1;\n".repeat(130);
    let text = format!(
        "pub fn long() {{\n{body}}}\nstruct S;\nimpl S {{\n    fn short(&self) {{}}\n}}\n\
         #[cfg(test)]\nmod tests {{\n    fn also_long() {{\n{body}    }}\n}}\n"
    );
    write(dir.path(), &[("lib.rs", &text)]);
    let tree = read_crate(&dir.path().join("lib.rs")).expect("reads");
    let mut fns: Vec<(String, usize)> = functions(&tree)
        .into_iter()
        .map(|f| (f.name, f.lines))
        .collect();
    fns.sort();
    assert_eq!(fns, vec![("long".into(), 132), ("short".into(), 1)]);
    let (text, parsed) = parse(&dir.path().join("lib.rs")).expect("parses");
    assert_eq!(non_test_lines(&text, &parsed), 132 + 4);
}
