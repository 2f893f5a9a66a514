//! Device tokens, now in the `dakoku-token` crate; this path stays for callers not yet moved.

pub use dakoku_token::*;
