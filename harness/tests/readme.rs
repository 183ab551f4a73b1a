//! The README's "In an axum service" quotes `examples/axum_minimal.rs`
//! whole; the example is compiled and linted, so the quote must be it.
#![allow(clippy::unwrap_used, clippy::panic, clippy::arithmetic_side_effects)]

use std::path::Path;

/// The text of the first ```` ```rust,ignore ```` block after `marker` in
/// `readme`.
fn quoted_after<'a>(readme: &'a str, marker: &str) -> &'a str {
    let at = readme
        .find(marker)
        .unwrap_or_else(|| panic!("the README no longer says {marker:?}"));
    let fence = "```rust,ignore\n";
    let start = readme[at..].find(fence).unwrap() + at + fence.len();
    let len = readme[start..].find("```\n").unwrap();
    &readme[start..start + len]
}

#[test]
fn the_readme_quotes_axum_minimal_as_it_is() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("../README.md")).unwrap();
    let example = std::fs::read_to_string(root.join("examples/axum_minimal.rs")).unwrap();
    let quoted = quoted_after(&readme, "`harness/examples/axum_minimal.rs`, whole:");
    assert!(
        quoted == example,
        "README.md's quote of harness/examples/axum_minimal.rs differs from the file; copy the file into it"
    );
}
