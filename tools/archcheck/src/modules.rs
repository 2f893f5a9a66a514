//! The module graph of one crate and its cycles. An edge `a -> b` is any `use` or path in `a`
//! that reaches into `b` (through `crate::`, `super::`, `self::`, a child module's name, or a
//! `pub use` re-export that leads there). Only edges between modules of which neither contains
//! the other count: a parent declaring its children and a child naming its parent's items are
//! the tree itself. A cycle is judged among the sibling subtrees under their common parent, so
//! `a::x -> b::y -> a::z` is the cycle `a <-> b`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use syn::spanned::Spanned as _;
use syn::visit::Visit;
use syn::{Item, UseTree};

use crate::source::{CrateTree, attrs_of, is_test_only};

/// One reference from a module into another.
#[derive(Debug, Clone)]
pub struct Edge {
    /// The module that refers.
    pub from: Vec<String>,
    /// The module referred to.
    pub to: Vec<String>,
    /// Where: file and line.
    pub file: PathBuf,
    /// The line of the first such reference.
    pub line: usize,
    /// The path as written.
    pub via: String,
}

/// Sibling modules that reach each other.
#[derive(Debug, Clone)]
pub struct Cycle {
    /// Their common parent (empty: the crate root).
    pub parent: Vec<String>,
    /// The siblings in the cycle.
    pub members: Vec<String>,
    /// One reference for each edge between them.
    pub evidence: Vec<Edge>,
}

/// A path found in a module, with its line.
#[derive(Debug)]
struct Found {
    segments: Vec<String>,
    line: usize,
}

#[derive(Default)]
struct Collector {
    found: Vec<Found>,
    /// `pub use` names of this module: name -> the path it re-exports.
    reexports: Vec<(String, Vec<String>)>,
}

impl<'ast> Visit<'ast> for Collector {
    fn visit_item(&mut self, item: &'ast Item) {
        if matches!(item, Item::Mod(_)) {
            return; // its own module
        }
        if attrs_of(item).is_some_and(|attrs| is_test_only(attrs)) {
            return;
        }
        syn::visit::visit_item(self, item);
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        if item.leading_colon.is_some() {
            return;
        }
        let public = !matches!(item.vis, syn::Visibility::Inherited);
        let mut paths = Vec::new();
        expand(&item.tree, Vec::new(), &mut paths);
        let line = item.span().start().line;
        for (segments, name) in paths {
            if public && let Some(name) = name {
                self.reexports.push((name, segments.clone()));
            }
            self.found.push(Found { segments, line });
        }
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        if path.leading_colon.is_none() && path.segments.len() > 1 {
            self.found.push(Found {
                segments: path.segments.iter().map(|s| s.ident.to_string()).collect(),
                line: path.span().start().line,
            });
        }
        syn::visit::visit_path(self, path);
    }
}

/// Flattens a `use` tree into paths, each with the name it binds (`None` for a glob).
fn expand(tree: &UseTree, prefix: Vec<String>, out: &mut Vec<(Vec<String>, Option<String>)>) {
    let with = |ident: &syn::Ident| {
        let mut p = prefix.clone();
        p.push(ident.to_string());
        p
    };
    match tree {
        UseTree::Path(p) => expand(&p.tree, with(&p.ident), out),
        UseTree::Name(n) if n.ident == "self" => {
            let name = prefix.last().cloned();
            out.push((prefix, name));
        }
        UseTree::Name(n) => out.push((with(&n.ident), Some(n.ident.to_string()))),
        UseTree::Rename(r) => out.push((with(&r.ident), Some(r.rename.to_string()))),
        UseTree::Glob(_) => out.push((prefix, None)),
        UseTree::Group(g) => {
            for tree in &g.items {
                expand(tree, prefix.clone(), out);
            }
        }
    }
}

/// The module graph of one crate.
#[derive(Debug)]
pub struct Graph<'t> {
    tree: &'t CrateTree,
    reexports: HashMap<Vec<String>, Vec<(String, Vec<String>)>>,
    found: Vec<(usize, Found)>,
}

impl<'t> Graph<'t> {
    /// Reads every module's references.
    pub fn new(tree: &'t CrateTree) -> Self {
        let mut reexports = HashMap::new();
        let mut found = Vec::new();
        for (index, module) in tree.modules.iter().enumerate() {
            let mut collector = Collector::default();
            for item in &module.items {
                collector.visit_item(item);
            }
            reexports.insert(module.path.clone(), collector.reexports);
            found.extend(collector.found.into_iter().map(|f| (index, f)));
        }
        Self {
            tree,
            reexports,
            found,
        }
    }

    /// The module a path written in module `from` reaches, if it is one of this crate's.
    fn resolve(&self, from: &[String], segments: &[String], depth: usize) -> Option<Vec<String>> {
        let (mut current, rest): (Vec<String>, &[String]) = match segments.first()?.as_str() {
            "crate" => (Vec::new(), &segments[1..]),
            "self" => (from.to_vec(), &segments[1..]),
            "super" => {
                let ups = segments.iter().take_while(|s| *s == "super").count();
                let base = from.get(..from.len().checked_sub(ups)?)?.to_vec();
                (base, &segments[ups..])
            }
            first => {
                let mut child = from.to_vec();
                child.push(first.to_owned());
                if !self.tree.has(&child) {
                    return None;
                }
                (from.to_vec(), segments)
            }
        };
        for segment in rest {
            let mut next = current.clone();
            next.push(segment.clone());
            if self.tree.has(&next) {
                current = next;
                continue;
            }
            // An item: follow a re-export of it to the module that defines it.
            if depth < 4
                && let Some((_, target)) = self
                    .reexports
                    .get(&current)
                    .and_then(|names| names.iter().find(|(name, _)| name == segment))
                && let Some(module) = self.resolve(&current, target, depth + 1)
            {
                return Some(module);
            }
            break;
        }
        Some(current)
    }

    /// Every reference from one module into another (the first one per pair).
    pub fn edges(&self) -> Vec<Edge> {
        let mut seen = BTreeMap::new();
        for (index, found) in &self.found {
            let module = &self.tree.modules[*index];
            let Some(to) = self.resolve(&module.path, &found.segments, 0) else {
                continue;
            };
            if to == module.path {
                continue;
            }
            seen.entry((module.path.clone(), to.clone()))
                .or_insert_with(|| Edge {
                    from: module.path.clone(),
                    to,
                    file: module.file.clone(),
                    line: found.line,
                    via: found.segments.join("::"),
                });
        }
        seen.into_values().collect()
    }
}

/// The cycles between sibling modules, given a crate's edges.
pub fn cycles(edges: &[Edge]) -> Vec<Cycle> {
    // Parent -> (sibling -> siblings it reaches, with one edge each).
    let mut levels: BTreeMap<Vec<String>, BTreeMap<String, BTreeMap<String, Edge>>> =
        BTreeMap::new();
    for edge in edges {
        let common = edge
            .from
            .iter()
            .zip(&edge.to)
            .take_while(|(a, b)| a == b)
            .count();
        if common == edge.from.len() || common == edge.to.len() {
            continue; // one contains the other
        }
        levels
            .entry(edge.from[..common].to_vec())
            .or_default()
            .entry(edge.from[common].clone())
            .or_default()
            .entry(edge.to[common].clone())
            .or_insert_with(|| edge.clone());
    }
    let mut out = Vec::new();
    for (parent, graph) in levels {
        for component in strongly_connected(&graph) {
            let members: BTreeSet<&String> = component.iter().collect();
            let evidence = component
                .iter()
                .flat_map(|a| graph.get(a).into_iter().flatten())
                .filter(|(b, _)| members.contains(b))
                .map(|(_, edge)| edge.clone())
                .collect();
            out.push(Cycle {
                parent: parent.clone(),
                members: component,
                evidence,
            });
        }
    }
    out
}

/// The strongly connected components with more than one node (Tarjan), each sorted.
pub fn strongly_connected<V>(graph: &BTreeMap<String, BTreeMap<String, V>>) -> Vec<Vec<String>> {
    struct State<'g, V> {
        graph: &'g BTreeMap<String, BTreeMap<String, V>>,
        index: HashMap<&'g str, usize>,
        low: HashMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'g, V>(s: &mut State<'g, V>, v: &'g str) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.graph.get(v).into_iter().flat_map(|m| m.keys()) {
            if !s.index.contains_key(w.as_str()) {
                visit(s, w);
                let lw = s.low[w.as_str()];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w.as_str()) {
                let iw = s.index[w.as_str()];
                let lv = s.low.get_mut(v).expect("visited");
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.out.push(component);
            }
        }
    }
    let mut state = State {
        graph,
        index: HashMap::new(),
        low: HashMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !state.index.contains_key(v.as_str()) {
            visit(&mut state, v);
        }
    }
    state.out
}
