//! `Passwords::verify` on an arbitrary password and an arbitrary stored
//! hash, every scheme on, iterations capped at 2,000, Argon2 at 1 MiB and
//! bcrypt at cost 6 so that each input is cheap. A correct password that asks for a rehash must verify against
//! the new hash, and that one must not ask again.
#![no_main]

use std::sync::LazyLock;

use keyward::{Keyward, Password, PasswordPolicy, Scheme};
use libfuzzer_sys::fuzz_target;

static KW: LazyLock<Keyward> = LazyLock::new(|| {
    let mut policy = PasswordPolicy::default();
    policy.min_iterations = 1;
    policy.max_iterations = 2_000;
    policy.iterations = 1_000;
    policy.min_length = 0;
    // Argon2 at most 1 MiB, and upgraded, so the rehash path is taken.
    policy.argon2_max_memory_kib = 1_024;
    policy.upgrade_argon2 = true;
    Keyward::builder()
        .password_policy(policy)
        .build()
        .expect("policy")
});

fuzz_target!(|data: &[u8]| {
    // [password length][password][stored hash]
    let Some((&len, rest)) = data.split_first() else {
        return;
    };
    let Some((password, stored)) = rest.split_at_checked(usize::from(len)) else {
        return;
    };
    let Ok(stored) = std::str::from_utf8(stored) else {
        return;
    };
    let passwords = KW.passwords();
    // bcrypt's cost is bounded at 16 whatever the policy: leave the costly
    // ones (over 2^6 rounds) to parse_hash, so that each input stays cheap.
    if let Ok(info) = passwords.inspect(stored)
        && info.scheme == Scheme::Bcrypt
        && info.iterations > 64
    {
        return;
    }
    let password = Password::from_bytes(password.to_vec());
    if let Ok(verified) = passwords.verify("user", &password, stored) {
        assert_eq!(verified.old_hash(), stored);
        if let Some(new) = verified.rehash() {
            let again = passwords
                .verify("user", &password, new)
                .expect("the rehashed hash verifies");
            assert!(again.rehash().is_none(), "a fresh hash asks for a rehash");
        }
    }
});
