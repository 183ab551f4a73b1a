//! keyward's harness: no library of its own. Its examples (the reference
//! server, the axum examples), its HTTP tests and its criterion benches
//! live here, apart from keyward, so that building keyward's quick start
//! does not build their dependencies.
