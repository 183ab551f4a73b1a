//! Tells the library the optimisation level it is built at, so that a
//! `Keyward` can warn when its PBKDF2 core is unoptimised: a debug build
//! that leaves its dependencies at `opt-level = 0` makes one login at the
//! default cost take seconds.

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    let level = std::env::var("OPT_LEVEL").unwrap_or_default();
    println!("cargo::rustc-env=KEYWARD_OPT_LEVEL={level}");
}
