//! Every stored-hash parser (PHC and each imported scheme) through
//! `Passwords::inspect`, which parses and bound-checks without hashing.
#![no_main]

use std::sync::LazyLock;

use keyward::{Keyward, PasswordPolicy, Scheme};
use libfuzzer_sys::fuzz_target;

/// The default policy, and a permissive one (any iteration count) so that
/// the parsers behind the iteration bounds are reached too.
static KW: LazyLock<[Keyward; 2]> = LazyLock::new(|| {
    let mut wide = PasswordPolicy::default();
    wide.min_iterations = 1;
    wide.max_iterations = u32::MAX;
    [
        Keyward::builder().build().expect("default"),
        Keyward::builder()
            .password_policy(wide)
            .build()
            .expect("wide"),
    ]
});

fuzz_target!(|data: &[u8]| {
    let Ok(stored) = std::str::from_utf8(data) else {
        return;
    };
    for kw in KW.iter() {
        let policy = kw.passwords().policy();
        if let Ok(info) = kw.passwords().inspect(stored) {
            assert_eq!(Scheme::from_name(info.scheme.name()), Some(info.scheme));
            assert!(
                (policy.min_iterations..=policy.max_iterations).contains(&info.iterations),
                "iterations out of the policy's bounds"
            );
            assert!(info.hash_len > 0, "an empty hash was accepted");
        }
    }
});
