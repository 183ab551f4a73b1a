//! Every stored-hash parser (PHC and each imported scheme, bcrypt and
//! Argon2 included) through `Passwords::inspect`, which parses and
//! bound-checks without hashing.
#![no_main]

use std::sync::LazyLock;

use keyward::password::{
    ARGON2_MAX_PARALLELISM, ARGON2_MAX_TIME, BCRYPT_MAX_COST, BCRYPT_MIN_COST,
};
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
            match info.scheme {
                // 2^cost rounds, cost 4..=16.
                Scheme::Bcrypt => assert!(
                    info.iterations.is_power_of_two()
                        && (1 << BCRYPT_MIN_COST..=1 << BCRYPT_MAX_COST).contains(&info.iterations),
                    "bcrypt cost out of bounds"
                ),
                Scheme::Argon2id | Scheme::Argon2i | Scheme::Argon2d => {
                    let (m, p) = (info.memory_kib.unwrap_or(0), info.parallelism.unwrap_or(0));
                    assert!(
                        (1..=ARGON2_MAX_TIME).contains(&info.iterations)
                            && (1..=ARGON2_MAX_PARALLELISM).contains(&p)
                            && (p.saturating_mul(8)..=policy.argon2_max_memory_kib).contains(&m),
                        "argon2 parameters out of bounds"
                    );
                }
                _ => assert!(
                    (policy.min_iterations..=policy.max_iterations).contains(&info.iterations),
                    "iterations out of the policy's bounds"
                ),
            }
            assert!(info.hash_len > 0, "an empty hash was accepted");
        }
    }
});
