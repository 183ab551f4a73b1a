//! Password hashing: known answers, the rehash matrix, round trips and
//! robustness against malformed hash strings.
#![allow(clippy::unwrap_used, clippy::panic, clippy::arithmetic_side_effects)]

mod common;

use std::num::NonZeroU32;

use base64ct::{Base64Unpadded, Encoding};
use keyward::password::pbkdf2_sha256;
use keyward::{
    Error, HashError, JwtAlg, KeyRing, Keyward, Password, PasswordPolicy, Scheme, testing,
};
use proptest::prelude::*;

use common::{hex, unhex};

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

fn policy(iterations: u32) -> PasswordPolicy {
    let mut p = PasswordPolicy::default();
    p.iterations = iterations;
    p
}

fn kw(iterations: u32) -> Keyward {
    Keyward::builder()
        .password_policy(policy(iterations))
        .build()
        .unwrap()
}

fn phc(id: &str, iterations: u32, salt: &[u8], hash: &[u8]) -> String {
    format!(
        "${id}$i={iterations},l={}${}${}",
        hash.len(),
        Base64Unpadded::encode_string(salt),
        Base64Unpadded::encode_string(hash)
    )
}

/// Wycheproof PBKDF2-HMAC-SHA256: every vector through the raw core, and
/// every vector within the PHC bounds through `verify` too, with a reject
/// case (one password byte changed) beside each accept case.
#[test]
fn wycheproof_pbkdf2_hmacsha256() {
    let doc = testing::wycheproof("pbkdf2_hmacsha256_test.json");
    let kw = {
        let mut p = policy(1000);
        p.min_iterations = 1;
        Keyward::builder().password_policy(p).build().unwrap()
    };
    let (mut ran, mut through_verify) = (0, 0);
    for (_, case) in testing::wycheproof_cases(&doc) {
        let password = unhex(case["password"].as_str().unwrap());
        let salt = unhex(case["salt"].as_str().unwrap());
        let iterations = u32::try_from(case["iterationCount"].as_u64().unwrap()).unwrap();
        let dk = unhex(case["dk"].as_str().unwrap());
        assert_eq!(case["result"], "valid", "this file has only valid cases");
        let mut out = vec![0u8; usize::try_from(case["dkLen"].as_u64().unwrap()).unwrap()];
        pbkdf2_sha256(&password, &salt, nz(iterations), &mut out);
        assert_eq!(hex(&out), hex(&dk), "tcId {}", case["tcId"]);
        ran += 1;

        if (8..=64).contains(&salt.len()) && (16..=64).contains(&dk.len()) {
            let stored = phc("pbkdf2-sha256", iterations, &salt, &dk);
            let v = kw
                .passwords()
                .verify("user", &Password::from_bytes(password.clone()), &stored);
            assert!(v.is_ok(), "tcId {} accept", case["tcId"]);
            // HMAC zero-pads its key (RFC 2104 §2), so "" and "\0" are the same
            // key: the reject case appends a non-zero byte to an empty password.
            let mut wrong = password.clone();
            match wrong.first_mut() {
                Some(b) => *b ^= 1,
                None => wrong.push(1),
            }
            let r = kw
                .passwords()
                .verify("user", &Password::from_bytes(wrong), &stored);
            assert!(
                matches!(r, Err(Error::PasswordMismatch)),
                "tcId {} reject",
                case["tcId"]
            );
            through_verify += 1;
        }
    }
    assert_eq!(ran, 60);
    println!(
        "wycheproof pbkdf2_hmacsha256: {ran} of 60 through the core, {through_verify} through verify"
    );
    assert!(through_verify > 0);
}

/// RFC 7914 §11, the two PBKDF2-HMAC-SHA256 test vectors.
#[test]
fn rfc7914_pbkdf2_sha256_vectors() {
    let mut out = [0u8; 64];
    pbkdf2_sha256(b"passwd", b"salt", nz(1), &mut out);
    assert_eq!(
        hex(&out),
        "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc\
         49ca9cccf179b645991664b39d77ef317c71b845b1e30bd509112041d3a19783"
    );
    pbkdf2_sha256(b"Password", b"NaCl", nz(80_000), &mut out);
    assert_eq!(
        hex(&out),
        "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56\
         a1d425a1225833549adb841b51c9b3176a272bdebba1d078478f62b397f33c8d"
    );
}

/// Known answers at the production cost, 600,000 iterations. Computed with
/// Python's `hashlib.pbkdf2_hmac` (OpenSSL 3.0), an independent
/// implementation.
#[test]
fn known_answer_at_600k_iterations() {
    let mut out = [0u8; 32];
    pbkdf2_sha256(b"password", b"salt", nz(600_000), &mut out);
    assert_eq!(
        hex(&out),
        "669cfe52482116fda1aa2cbe409b2f56c8e4563752b7a28f6eaab614ee005178"
    );

    let salt: Vec<u8> = (0u8..16).collect();
    let stored = phc(
        "pbkdf2-sha256",
        600_000,
        &salt,
        &unhex("ef177144eec9420cbc1093d2a8b344a92bc506d0d4ec9c028dd19f8324d8c1e6"),
    );
    let kw = Keyward::builder().build().unwrap();
    let v = kw
        .passwords()
        .verify(
            "user",
            &Password::from("correct horse battery staple"),
            &stored,
        )
        .unwrap();
    assert!(v.rehash().is_none(), "current parameters never rehash");
    let r = kw.passwords().verify(
        "user",
        &Password::from("correct horse battery stapler"),
        &stored,
    );
    assert!(matches!(r, Err(Error::PasswordMismatch)));
}

/// A stored hash below the policy gives `rehash()` on a correct password,
/// and never on a wrong one.
#[test]
fn rehash_matrix() {
    let pw = Password::from("correct horse");
    let wrong = Password::from("correct horsf");
    let current = kw(2000);
    let salt16: Vec<u8> = (1u8..=16).collect();
    let salt8: Vec<u8> = (1u8..=8).collect();
    let derive256 = |salt: &[u8], iterations: u32, len: usize| {
        let mut out = vec![0u8; len];
        pbkdf2_sha256(pw.unprotected_as_bytes(), salt, nz(iterations), &mut out);
        out
    };
    let mut sha512 = [0u8; 64];
    pbkdf2::pbkdf2_hmac::<sha2::Sha512>(pw.unprotected_as_bytes(), &salt16, 2000, &mut sha512);

    let cases = [
        (
            "lower iterations",
            phc(
                "pbkdf2-sha256",
                1000,
                &salt16,
                &derive256(&salt16, 1000, 32),
            ),
        ),
        (
            "short salt",
            phc("pbkdf2-sha256", 2000, &salt8, &derive256(&salt8, 2000, 32)),
        ),
        (
            "short output",
            phc(
                "pbkdf2-sha256",
                2000,
                &salt16,
                &derive256(&salt16, 2000, 16),
            ),
        ),
        (
            "sha-512 scheme",
            phc("pbkdf2-sha512", 2000, &salt16, &sha512),
        ),
    ];
    for (what, stored) in &cases {
        let v = current
            .passwords()
            .verify("user", &pw, stored)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let new = v
            .rehash()
            .unwrap_or_else(|| panic!("{what}: expected a rehash"));
        assert!(
            new.starts_with("$pbkdf2-sha256$i=2000,l=32$"),
            "{what}: {new}"
        );
        assert_eq!(v.old_hash(), stored);
        // The new hash verifies and is current.
        let again = current.passwords().verify("user", &pw, new).unwrap();
        assert!(again.rehash().is_none(), "{what}: the rehash is current");
        let r = current.passwords().verify("user", &wrong, stored);
        assert!(
            matches!(r, Err(Error::PasswordMismatch)),
            "{what}: wrong password"
        );
        assert!(
            current.passwords().inspect(stored).unwrap().needs_rehash,
            "{what}"
        );
    }
    assert_eq!(
        current
            .passwords()
            .verify("user", &pw, &cases[3].1)
            .unwrap()
            .scheme(),
        Scheme::Pbkdf2Sha512
    );

    // Higher iterations than the target are not downgraded.
    let higher = phc(
        "pbkdf2-sha256",
        3000,
        &salt16,
        &derive256(&salt16, 3000, 32),
    );
    assert!(
        current
            .passwords()
            .verify("user", &pw, &higher)
            .unwrap()
            .rehash()
            .is_none()
    );
}

/// Pepper rotation: a hash made with an old pepper still verifies, and is
/// rehashed to the current one; a hash naming an unknown pepper is an error.
#[test]
fn pepper_rotation_rehashes_to_the_current_pepper() {
    let pw = Password::from("correct horse");
    let mut keys = KeyRing::generate(JwtAlg::HS256).unwrap();
    let old_id = keys.add_pepper().unwrap().to_owned();
    let json = keys.to_json();
    let kw_old = Keyward::builder()
        .password_policy(policy(1000))
        .keys(KeyRing::from_json(&json).unwrap())
        .build()
        .unwrap();
    let stored = kw_old.passwords().hash(&pw).unwrap();
    assert!(stored.contains(&format!(",k={old_id}$")), "{stored}");
    assert!(
        kw_old
            .passwords()
            .verify("user", &pw, &stored)
            .unwrap()
            .rehash()
            .is_none()
    );

    // A pepper changes the hash: without it, the same password fails.
    let unpeppered_salt_and_hash = stored.replace(&format!(",k={old_id}"), "");
    assert!(matches!(
        kw(1000)
            .passwords()
            .verify("user", &pw, &unpeppered_salt_and_hash),
        Err(Error::PasswordMismatch)
    ));

    keys.add_pepper().unwrap();
    let new_id = keys.current_pepper_id().unwrap().to_owned();
    let kw_new = Keyward::builder()
        .password_policy(policy(1000))
        .keys(keys)
        .build()
        .unwrap();
    let v = kw_new.passwords().verify("user", &pw, &stored).unwrap();
    let new = v.rehash().expect("old pepper id triggers a rehash");
    assert!(new.contains(&format!(",k={new_id}$")), "{new}");
    assert!(
        kw_new
            .passwords()
            .verify("user", &pw, new)
            .unwrap()
            .rehash()
            .is_none()
    );
    assert!(matches!(
        kw_new
            .passwords()
            .verify("user", &Password::from("correct horsf"), &stored),
        Err(Error::PasswordMismatch)
    ));

    // Without the key ring, the peppered hash cannot be checked at all.
    let r = kw(1000).passwords().verify("user", &pw, &stored);
    assert!(
        matches!(r, Err(Error::UnknownPepper { ref id }) if *id == old_id),
        "{r:?}"
    );
}

/// Passwords are verified exactly as received: no trimming, truncation or
/// normalisation.
#[test]
fn passwords_are_used_exactly_as_received() {
    let kw = kw(1000);
    let stored = kw.passwords().hash(&Password::from("pässwörd ")).unwrap();
    let _ = kw
        .passwords()
        .verify("user", &Password::from("pässwörd "), &stored)
        .unwrap();
    for variant in [
        "pässwörd",
        " pässwörd ",
        "pa\u{308}sswo\u{308}rd ",
        "PÄSSWÖRD ",
    ] {
        let r = kw
            .passwords()
            .verify("user", &Password::from(variant), &stored);
        assert!(matches!(r, Err(Error::PasswordMismatch)), "{variant:?}");
    }
    // Non-UTF-8 bytes are passwords too.
    let raw = Password::from_bytes(vec![0xff, 0x00, 0xfe, 0x41, 0x42, 0x43, 0x44, 0x45]);
    let stored = kw.passwords().hash(&raw).unwrap();
    let _ = kw.passwords().verify("user", &raw, &stored).unwrap();
}

/// A 1 MB password is refused before any hashing: by its error.
#[test]
fn a_one_megabyte_password_is_rejected_before_work() {
    // With 5,000,000 iterations, hashing 1 MB would take seconds; the
    // error comes from the length check instead.
    let mut p = policy(5_000_000);
    p.max_iterations = 5_000_000;
    let kw = Keyward::builder().password_policy(p).build().unwrap();
    let huge = Password::from_bytes(vec![b'x'; 1 << 20]);
    let stored = "$pbkdf2-sha256$i=5000000,l=32$c2FsdHNhbHRzYWx0c2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    assert!(matches!(
        kw.passwords().hash(&huge),
        Err(Error::PasswordTooLong { max_bytes: 1024 })
    ));
    assert!(matches!(
        kw.passwords().verify("user", &huge, stored),
        Err(Error::PasswordTooLong { .. })
    ));
    assert!(matches!(
        kw.passwords().verify_unknown_user(&huge),
        Error::PasswordTooLong { .. }
    ));
}

/// The unknown-user path runs a real verification at the current cost:
/// its dummy hash declares the current parameters.
#[test]
fn unknown_user_dummy_is_at_current_cost() {
    let kw = kw(1000);
    let r = kw
        .passwords()
        .verify_unknown_user(&Password::from("whatever-password"));
    assert!(matches!(r, Error::PasswordMismatch));
    // Same error, same message, as a wrong password on a real account.
    let stored = kw
        .passwords()
        .hash(&Password::from("the right one"))
        .unwrap();
    let real = kw
        .passwords()
        .verify("user", &Password::from("whatever-password"), &stored)
        .unwrap_err();
    assert_eq!(real.to_string(), r.to_string());
}

/// Missing `i=` or `l=`, and out-of-bounds values, are errors before any work.
#[test]
fn malformed_hashes_name_the_problem() {
    let kw = kw(1000);
    let pw = Password::from("correct horse");
    let h = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let cases = [
        (
            format!("$pbkdf2-sha256$l=32$c2FsdHNhbHQ${h}"),
            HashError::MissingParam("i"),
        ),
        (
            format!("$pbkdf2-sha256$i=1000$c2FsdHNhbHQ${h}"),
            HashError::MissingParam("l"),
        ),
        (
            format!("$pbkdf2-sha256$i=0,l=32$c2FsdHNhbHQ${h}"),
            HashError::Iterations {
                found: 0,
                min: 1000,
                max: 5_000_000,
            },
        ),
        (
            format!("$pbkdf2-sha256$i=5000001,l=32$c2FsdHNhbHQ${h}"),
            HashError::Iterations {
                found: 5_000_001,
                min: 1000,
                max: 5_000_000,
            },
        ),
        (
            format!("$pbkdf2-sha256$i=1000,l=32$c2FsdA${h}"),
            HashError::SaltLength {
                found: 4,
                min: 8,
                max: 64,
            },
        ),
        ("bcrypt$2b$whatever".to_owned(), HashError::UnknownScheme),
    ];
    for (stored, want) in cases {
        match kw.passwords().verify("user", &pw, &stored) {
            Err(Error::Hash(got)) => assert_eq!(got, want, "{stored}"),
            other => panic!("{stored}: {other:?}"),
        }
        let msg = kw
            .passwords()
            .verify("user", &pw, &stored)
            .unwrap_err()
            .to_string();
        assert!(
            !msg.contains("correct horse") && !msg.contains(&stored),
            "{msg}"
        );
    }
}

/// The DoS bound counts output blocks: a PHC hash with `l=` longer than its
/// digest runs one PBKDF2 chain per block, so `iterations × blocks` must not
/// exceed `max_iterations`. Refused before any hashing, with the iteration
/// bound's error and the ceiling for the hash's shape.
#[test]
fn the_work_bound_counts_output_blocks() {
    let salt = [3u8; 16];
    // Default bound, 5,000,000. `l=64` on SHA-256 is 2 blocks: 4,000,000
    // iterations are under the count bound but 8,000,000 of work. Today's
    // main ran them all, then answered "mismatch".
    let kw = kw(1000);
    let over = phc("pbkdf2-sha256", 4_000_000, &salt, &[0u8; 64]);
    let want = HashError::Iterations {
        found: 4_000_000,
        min: 1000,
        max: 2_500_000,
    };
    match kw
        .passwords()
        .verify("user", &Password::from("anything at all"), &over)
    {
        Err(Error::Hash(got)) => assert_eq!(got, want),
        other => panic!("{other:?}"),
    }
    match kw.passwords().inspect(&over) {
        Err(Error::Hash(got)) => assert_eq!(got, want),
        other => panic!("{other:?}"),
    }
    // At and just past the bound (inspect never hashes): 33 bytes is 2
    // blocks too; 32 bytes on SHA-256 and 64 on SHA-512 are one.
    let inspect = |id: &str, i: u32, len: usize| {
        kw.passwords()
            .inspect(&phc(id, i, &salt, &vec![0u8; len]))
            .map(|info| info.iterations)
    };
    for (id, len, ceiling) in [
        ("pbkdf2-sha256", 64, 2_500_000),
        ("pbkdf2-sha256", 33, 2_500_000),
        ("pbkdf2-sha256", 32, 5_000_000),
        ("pbkdf2-sha512", 64, 5_000_000),
        ("pbkdf2-sha512", 16, 5_000_000),
    ] {
        assert_eq!(inspect(id, ceiling, len).unwrap(), ceiling, "{id} l={len}");
        match inspect(id, ceiling + 1, len) {
            Err(Error::Hash(HashError::Iterations { found, max, .. })) => {
                assert_eq!(
                    (found, max),
                    (u64::from(ceiling) + 1, ceiling),
                    "{id} l={len}"
                );
            }
            other => panic!("{id} l={len}: {other:?}"),
        }
    }

    // A real verification at the bound, with a small one: 4,000.
    let mut p = policy(1000);
    p.min_iterations = 1;
    p.max_iterations = 4_000;
    let kw = Keyward::builder().password_policy(p).build().unwrap();
    let pw = Password::from("correct horse");
    let stored = |i: u32, len: usize| {
        let mut dk = vec![0u8; len];
        pbkdf2_sha256(b"correct horse", &salt, nz(i), &mut dk);
        phc("pbkdf2-sha256", i, &salt, &dk)
    };
    let v = kw
        .passwords()
        .verify("user", &pw, &stored(2_000, 64))
        .unwrap();
    assert!(v.rehash().is_none(), "2,000 iterations, 64 bytes: current");
    let v = kw
        .passwords()
        .verify("user", &pw, &stored(4_000, 32))
        .unwrap();
    assert!(v.rehash().is_none(), "4,000 iterations, 32 bytes: current");
    match kw.passwords().verify("user", &pw, &stored(2_001, 64)) {
        Err(Error::Hash(got)) => assert_eq!(
            got,
            HashError::Iterations {
                found: 2_001,
                min: 1,
                max: 2_000
            }
        ),
        other => panic!("{other:?}"),
    }
}

/// 100,000 random and mutated hash strings through `verify`: each is an
/// error (or, rarely, a mismatch), never a panic. Fixed seed.
#[test]
fn verify_survives_100k_random_and_mutated_hashes() {
    let mut p = PasswordPolicy::default();
    p.iterations = 1;
    p.min_iterations = 1;
    // Bounded so that a mutation that stays valid stays cheap.
    p.max_iterations = 2_000;
    let kw = Keyward::builder().password_policy(p).build().unwrap();
    let seeds: Vec<String> = vec![
        kw.passwords()
            .hash(&Password::from("seed password one"))
            .unwrap(),
        phc("pbkdf2-sha512", 3, &[9u8; 16], &[7u8; 64]),
        phc("pbkdf2-sha256", 2, &[1u8; 8], &[2u8; 16]),
        "$pbkdf2-sha256$i=1,l=32,k=abc-1$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
            .into(),
    ];
    let alphabet: Vec<char> = "$,=+/.:-_ 0123456789abcdefiklpsAZ\u{0}\u{ff}é日"
        .chars()
        .collect();
    let extremes = [
        "0",
        "4294967295",
        "4294967296",
        "18446744073709551615",
        "99999999999999999999",
        "-1",
        "",
    ];
    let mut rng = common::SplitMix(0x6b65_7977_6172_6421);
    let pw = Password::from("seed password one");
    let mut outcomes = std::collections::BTreeMap::<&str, usize>::new();
    for n in 0..100_000 {
        let s = if n % 10 == 0 {
            // Entirely random.
            let len = rng.below(120);
            (0..len).map(|_| *rng.pick(&alphabet)).collect::<String>()
        } else {
            {
                let seed = rng.pick(&seeds).to_string();
                common::mutate(&mut rng, &seed, &alphabet, &extremes)
            }
        };
        let outcome = match kw.passwords().verify("user", &pw, &s) {
            Ok(_) => "ok",
            Err(Error::PasswordMismatch) => "mismatch",
            Err(Error::Hash(_)) => "malformed",
            Err(Error::UnknownPepper { .. }) => "unknown pepper",
            Err(e) => panic!("unexpected error {e:?} for {s:?}"),
        };
        *outcomes.entry(outcome).or_default() += 1;
        // inspect must agree with verify on what is well-formed.
        assert_eq!(
            kw.passwords().inspect(&s).is_err(),
            outcome == "malformed",
            "{s:?}"
        );
    }
    println!("100,000 hash strings: {outcomes:?}");
    assert!(outcomes["malformed"] > 50_000, "{outcomes:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Hash then verify holds for arbitrary passwords up to 1024 bytes; a
    /// different password fails.
    #[test]
    fn hash_verify_round_trip(
        password in proptest::collection::vec(any::<u8>(), 0..=1024),
        other in proptest::collection::vec(any::<u8>(), 0..=1024),
    ) {
        let mut p = policy(1000);
        p.min_length = 0;
        let kw = Keyward::builder().password_policy(p).build().unwrap();
        let stored = kw.passwords().hash(&Password::from_bytes(password.clone())).unwrap();
        let v = kw.passwords().verify("user", &Password::from_bytes(password.clone()), &stored);
        prop_assert!(v.is_ok());
        prop_assert!(v.unwrap().rehash().is_none());
        if other != password {
            let r = kw.passwords().verify("user", &Password::from_bytes(other), &stored);
            prop_assert!(matches!(r, Err(Error::PasswordMismatch)));
        }
    }
}

/// Iteration counts for the differential test: mostly small, since the cost
/// of a case grows with them, but up to 4096 and always including the edges.
fn differential_iterations() -> impl Strategy<Value = u32> {
    prop_oneof![
        8 => 1u32..=16,
        3 => 17u32..=256,
        1 => 257u32..=4096,
        1 => Just(1u32),
        1 => Just(4096u32),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12_000))]

    /// keyward's PBKDF2-HMAC-SHA256 core against the `pbkdf2` crate: keys on
    /// both sides of HMAC's 64-byte block (longer ones are hashed first), any
    /// salt, and outputs of partial, whole and several 32-byte blocks.
    #[test]
    fn pbkdf2_sha256_matches_the_pbkdf2_crate(
        password in proptest::collection::vec(any::<u8>(), 0..200),
        salt in proptest::collection::vec(any::<u8>(), 0..100),
        iterations in differential_iterations(),
        dk_len in 1usize..=100,
    ) {
        let mut ours = vec![0u8; dk_len];
        let mut theirs = vec![0u8; dk_len];
        pbkdf2_sha256(&password, &salt, nz(iterations), &mut ours);
        pbkdf2::pbkdf2_hmac::<sha2::Sha256>(&password, &salt, iterations, &mut theirs);
        prop_assert_eq!(hex(&ours), hex(&theirs));
    }
}

/// The edges of the differential test, every combination: keys of 0, 63, 64,
/// 65 and 200 bytes, outputs of 1, 31, 32, 33, 64, 65 and 100 bytes.
#[test]
fn pbkdf2_sha256_matches_the_pbkdf2_crate_at_the_edges() {
    let mut cases = 0;
    for key_len in [0usize, 1, 63, 64, 65, 200] {
        let password: Vec<u8> = (0..key_len)
            .map(|i| u8::try_from(i % 251).unwrap())
            .collect();
        for dk_len in [1usize, 31, 32, 33, 64, 65, 100] {
            for iterations in [1u32, 2, 3, 1000] {
                let mut ours = vec![0u8; dk_len];
                let mut theirs = vec![0u8; dk_len];
                pbkdf2_sha256(&password, b"salt", nz(iterations), &mut ours);
                pbkdf2::pbkdf2_hmac::<sha2::Sha256>(&password, b"salt", iterations, &mut theirs);
                assert_eq!(hex(&ours), hex(&theirs), "{key_len} {dk_len} {iterations}");
                cases += 1;
            }
        }
    }
    assert_eq!(cases, 6 * 7 * 4);
    // An empty output derives nothing and touches nothing.
    pbkdf2_sha256(b"password", b"salt", nz(1), &mut []);
}
