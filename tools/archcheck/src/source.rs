//! A crate's module tree, found from its root file the way rustc finds module files
//! (`x.rs` or `x/mod.rs`, `#[path]`), with test-only modules (`#[cfg(test)]`) left out.

use std::path::{Path, PathBuf};

use syn::{Attribute, Item};

/// One module of a crate: its path from the crate root and the items written in it.
#[derive(Debug)]
pub struct Module {
    /// Segments from the crate root (empty for the root itself).
    pub path: Vec<String>,
    /// The file the module's items are written in (an inline module's is its parent's).
    pub file: PathBuf,
    /// Whether the module is written inline (`mod x { ... }`) rather than in a file of its own.
    pub inline: bool,
    /// The module's items, nested modules included (callers skip them).
    pub items: Vec<Item>,
}

/// Every non-test module of one crate (a library or one binary).
#[derive(Debug)]
pub struct CrateTree {
    /// The crate's root file (`lib.rs`, `main.rs`, `bin/x.rs`).
    pub root: PathBuf,
    /// The modules, the root first.
    pub modules: Vec<Module>,
}

impl CrateTree {
    /// Whether `path` names a module of this crate.
    pub fn has(&self, path: &[String]) -> bool {
        self.modules.iter().any(|m| m.path == path)
    }
}

/// Why a crate's tree could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A file is not Rust that `syn` parses.
    #[error("{path}: cannot parse: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// A `mod x;` whose file is neither `x.rs` nor `x/mod.rs`.
    #[error("{parent}: module `{name}` has no file")]
    MissingModule {
        /// The file declaring it.
        parent: PathBuf,
        /// The module's name.
        name: String,
    },
}

/// Reads a whole file and parses it.
pub fn parse(path: &Path) -> Result<(String, syn::File), SourceError> {
    let text = std::fs::read_to_string(path).map_err(|source| SourceError::Read {
        path: path.to_owned(),
        source,
    })?;
    let file = syn::parse_file(&text).map_err(|e| SourceError::Parse {
        path: path.to_owned(),
        message: format!("{e} at line {}", e.span().start().line),
    })?;
    Ok((text, file))
}

/// Reads the module tree of the crate whose root file is `root`.
pub fn read_crate(root: &Path) -> Result<CrateTree, SourceError> {
    let (_, file) = parse(root)?;
    let children = root.parent().unwrap_or(Path::new(".")).to_owned();
    let mut modules = Vec::new();
    collect(
        Vec::new(),
        root.to_owned(),
        false,
        file.items,
        &children,
        &mut modules,
    )?;
    Ok(CrateTree {
        root: root.to_owned(),
        modules,
    })
}

/// Whether the attributes make an item test-only (`#[cfg(test)]`, `#[cfg(all(test, ..))]`).
pub fn is_test_only(attrs: &[Attribute]) -> bool {
    attrs.iter().any(|attr| {
        attr.path().is_ident("cfg")
            && attr.meta.require_list().is_ok_and(|list| {
                let tokens = list.tokens.to_string();
                tokens == "test"
                    || tokens.starts_with("all (test")
                    || tokens.starts_with("all(test")
            })
    })
}

/// The attributes of an item, for the kinds whose attributes the checks read.
pub fn attrs_of(item: &Item) -> Option<&Vec<Attribute>> {
    Some(match item {
        Item::Mod(i) => &i.attrs,
        Item::Fn(i) => &i.attrs,
        Item::Impl(i) => &i.attrs,
        Item::Use(i) => &i.attrs,
        Item::Const(i) => &i.attrs,
        Item::Static(i) => &i.attrs,
        Item::Struct(i) => &i.attrs,
        Item::Enum(i) => &i.attrs,
        Item::Trait(i) => &i.attrs,
        _ => return None,
    })
}

fn path_attr(attrs: &[Attribute]) -> Option<String> {
    attrs.iter().find_map(|attr| {
        if !attr.path().is_ident("path") {
            return None;
        }
        match &attr.meta.require_name_value().ok()?.value {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) => Some(s.value()),
            _ => None,
        }
    })
}

/// Adds the module at `path` (items `items`, written in `file`) and its descendants;
/// `children` is the directory its file modules live in.
fn collect(
    path: Vec<String>,
    file: PathBuf,
    inline: bool,
    items: Vec<Item>,
    children: &Path,
    out: &mut Vec<Module>,
) -> Result<(), SourceError> {
    let mut nested = Vec::new();
    for item in &items {
        let Item::Mod(decl) = item else { continue };
        if is_test_only(&decl.attrs) {
            continue;
        }
        let name = decl.ident.to_string();
        let mut child_path = path.clone();
        child_path.push(name.clone());
        match &decl.content {
            Some((_, inner)) => nested.push((
                child_path,
                file.clone(),
                true,
                inner.clone(),
                children.join(&name),
            )),
            None => {
                let here = file.parent().unwrap_or(Path::new("."));
                let candidates = match path_attr(&decl.attrs) {
                    Some(p) => vec![here.join(p)],
                    None => vec![
                        children.join(format!("{name}.rs")),
                        children.join(&name).join("mod.rs"),
                    ],
                };
                let found = candidates
                    .into_iter()
                    .find(|c| c.is_file())
                    .ok_or_else(|| SourceError::MissingModule {
                        parent: file.clone(),
                        name: name.clone(),
                    })?;
                let (_, parsed) = parse(&found)?;
                let grandchildren = if found.file_name().is_some_and(|f| f == "mod.rs") {
                    found.parent().unwrap_or(Path::new(".")).to_owned()
                } else {
                    found.with_extension("")
                };
                nested.push((child_path, found, false, parsed.items, grandchildren));
            }
        }
    }
    out.push(Module {
        path,
        file,
        inline,
        items,
    });
    for (path, file, inline, items, children) in nested {
        collect(path, file, inline, items, &children, out)?;
    }
    Ok(())
}
