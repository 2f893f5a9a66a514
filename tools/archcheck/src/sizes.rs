//! Files and functions past their limits. A file's size is its lines outside test-only items
//! (an inline `#[cfg(test)] mod tests` is test code, not what a reader of the module reads); a
//! function's is from its `fn` to its closing brace.

use std::path::PathBuf;

use syn::spanned::Spanned as _;
use syn::visit::Visit;
use syn::{ImplItemFn, Item, ItemFn, TraitItemFn};

use crate::source::{CrateTree, attrs_of, is_test_only};

/// A function and its length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LongFn {
    /// Its file.
    pub file: PathBuf,
    /// Its name.
    pub name: String,
    /// The line of its `fn`.
    pub line: usize,
    /// Lines from `fn` to the closing brace.
    pub lines: usize,
}

/// The non-test lines of a file's module: its length less the lines of its test-only items.
pub fn non_test_lines(text: &str, file: &syn::File) -> usize {
    let total = text.lines().count();
    let test: usize = file
        .items
        .iter()
        .filter(|item| attrs_of(item).is_some_and(|attrs| is_test_only(attrs)))
        .map(|item| {
            let span = item.span();
            span.end().line + 1 - span.start().line
        })
        .sum();
    total.saturating_sub(test)
}

struct Functions<'a> {
    file: &'a PathBuf,
    out: Vec<LongFn>,
}

impl Functions<'_> {
    fn push(&mut self, name: &syn::Ident, fn_token: &syn::token::Fn, body: &syn::Block) {
        let line = fn_token.span.start().line;
        let end = body.brace_token.span.close().end().line;
        self.out.push(LongFn {
            file: self.file.clone(),
            name: name.to_string(),
            line,
            lines: end + 1 - line,
        });
    }
}

impl<'ast> Visit<'ast> for Functions<'_> {
    fn visit_item(&mut self, item: &'ast Item) {
        if matches!(item, Item::Mod(_)) || attrs_of(item).is_some_and(|a| is_test_only(a)) {
            return; // nested modules are their own; test-only items are test code
        }
        syn::visit::visit_item(self, item);
    }
    fn visit_item_fn(&mut self, f: &'ast ItemFn) {
        self.push(&f.sig.ident, &f.sig.fn_token, &f.block);
        syn::visit::visit_item_fn(self, f);
    }
    fn visit_impl_item_fn(&mut self, f: &'ast ImplItemFn) {
        if !is_test_only(&f.attrs) {
            self.push(&f.sig.ident, &f.sig.fn_token, &f.block);
            syn::visit::visit_impl_item_fn(self, f);
        }
    }
    fn visit_trait_item_fn(&mut self, f: &'ast TraitItemFn) {
        if let Some(body) = &f.default {
            self.push(&f.sig.ident, &f.sig.fn_token, body);
        }
        syn::visit::visit_trait_item_fn(self, f);
    }
}

/// Every non-test function of the crate's modules with its length.
pub fn functions(tree: &CrateTree) -> Vec<LongFn> {
    let mut out = Vec::new();
    for module in &tree.modules {
        let mut visitor = Functions {
            file: &module.file,
            out: Vec::new(),
        };
        for item in &module.items {
            visitor.visit_item(item);
        }
        out.extend(visitor.out);
    }
    out
}
