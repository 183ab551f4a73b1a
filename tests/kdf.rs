//! The PBKDF2 cores against the `pbkdf2` crate, for every digest: random
//! passwords, salts, iteration counts and output lengths, then every
//! combination of the edges; and the RFC 6070 PBKDF2-HMAC-SHA1 vectors.
//! (RFC 7914 and Wycheproof vectors run in `tests/password.rs` and
//! `tests/legacy.rs`.)
#![allow(clippy::unwrap_used, clippy::panic)]

use std::num::NonZeroU32;

use keyward::password::{pbkdf2_sha1, pbkdf2_sha256, pbkdf2_sha512};
use proptest::prelude::*;

/// One of keyward's cores and the `pbkdf2` crate on the same digest.
type Core = fn(&[u8], &[u8], NonZeroU32, &mut [u8]);
type Reference = fn(&[u8], &[u8], u32, &mut [u8]);

const SHA1: (&str, Core, Reference, usize) =
    ("sha1", pbkdf2_sha1, pbkdf2::pbkdf2_hmac::<sha1::Sha1>, 20);
const SHA256: (&str, Core, Reference, usize) = (
    "sha256",
    pbkdf2_sha256,
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>,
    32,
);
const SHA512: (&str, Core, Reference, usize) = (
    "sha512",
    pbkdf2_sha512,
    pbkdf2::pbkdf2_hmac::<sha2::Sha512>,
    64,
);

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// keyward's core and the reference on the same input, as hex.
fn both(
    (_, core, reference, _): (&str, Core, Reference, usize),
    password: &[u8],
    salt: &[u8],
    iterations: u32,
    dk_len: usize,
) -> (String, String) {
    let mut ours = vec![0u8; dk_len];
    let mut theirs = vec![0u8; dk_len];
    core(password, salt, nz(iterations), &mut ours);
    reference(password, salt, iterations, &mut theirs);
    (hex(&ours), hex(&theirs))
}

/// Iteration counts: mostly small, since the cost of a case grows with
/// them, but up to 4096 and always including the edges.
fn iterations() -> impl Strategy<Value = u32> {
    prop_oneof![
        8 => 1u32..=16,
        3 => 17u32..=256,
        1 => 257u32..=4096,
        1 => Just(1u32),
        1 => Just(2u32),
        1 => Just(4096u32),
    ]
}

/// Passwords on both sides of every block size (64 bytes for SHA-1 and
/// SHA-256, 128 for SHA-512; longer keys are hashed first), any salt, and
/// outputs of partial, whole and several blocks of every digest.
fn inputs() -> impl Strategy<Value = (Vec<u8>, Vec<u8>, u32, usize)> {
    (
        proptest::collection::vec(any::<u8>(), 0..300),
        proptest::collection::vec(any::<u8>(), 0..150),
        iterations(),
        1usize..=200,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn pbkdf2_sha1_matches_the_pbkdf2_crate((password, salt, c, dk_len) in inputs()) {
        let (ours, theirs) = both(SHA1, &password, &salt, c, dk_len);
        prop_assert_eq!(ours, theirs);
    }

    #[test]
    fn pbkdf2_sha256_matches_the_pbkdf2_crate((password, salt, c, dk_len) in inputs()) {
        let (ours, theirs) = both(SHA256, &password, &salt, c, dk_len);
        prop_assert_eq!(ours, theirs);
    }

    #[test]
    fn pbkdf2_sha512_matches_the_pbkdf2_crate((password, salt, c, dk_len) in inputs()) {
        let (ours, theirs) = both(SHA512, &password, &salt, c, dk_len);
        prop_assert_eq!(ours, theirs);
    }
}

/// Every combination of the edges, for every digest: keys around both
/// block sizes, outputs around one, two and three digests, and the
/// smallest iteration counts (one iteration never enters the chain).
#[test]
fn every_core_matches_the_pbkdf2_crate_at_the_edges() {
    let mut cases = 0;
    for digest in [SHA1, SHA256, SHA512] {
        let (name, _, _, len) = digest;
        for key_len in [0usize, 1, 20, 63, 64, 65, 127, 128, 129, 300] {
            let password: Vec<u8> = (0..key_len)
                .map(|i| u8::try_from(i % 251).unwrap())
                .collect();
            for dk_len in [1, len - 1, len, len + 1, 2 * len, 2 * len + 1, 3 * len] {
                for iterations in [1u32, 2, 3, 1000] {
                    let (ours, theirs) = both(digest, &password, b"salt", iterations, dk_len);
                    assert_eq!(ours, theirs, "{name} {key_len} {dk_len} {iterations}");
                    cases += 1;
                }
            }
        }
        // An empty output derives nothing and touches nothing.
        let (_, core, _, _) = digest;
        core(b"password", b"salt", nz(1), &mut []);
    }
    assert_eq!(cases, 3 * 10 * 7 * 4);
}

/// RFC 6070 §2: the PBKDF2-HMAC-SHA1 test vectors but the one at
/// 16,777,216 iterations.
#[test]
fn rfc6070_pbkdf2_sha1_vectors() {
    let vectors: [(&[u8], &[u8], u32, &str); 5] = [
        (
            b"password",
            b"salt",
            1,
            "0c60c80f961f0e71f3a9b524af6012062fe037a6",
        ),
        (
            b"password",
            b"salt",
            2,
            "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957",
        ),
        (
            b"password",
            b"salt",
            4096,
            "4b007901b765489abead49d926f721d065a429c1",
        ),
        (
            b"passwordPASSWORDpassword",
            b"saltSALTsaltSALTsaltSALTsaltSALTsalt",
            4096,
            "3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038",
        ),
        (
            b"pass\0word",
            b"sa\0lt",
            4096,
            "56fa6aa75548099dcc37d7f03425e0c3",
        ),
    ];
    for (password, salt, iterations, expected) in vectors {
        let mut out = vec![0u8; expected.len() / 2];
        pbkdf2_sha1(password, salt, nz(iterations), &mut out);
        assert_eq!(hex(&out), expected, "{iterations}");
    }
}
