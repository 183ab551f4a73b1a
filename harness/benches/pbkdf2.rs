//! PBKDF2 at each digest's cost, with a one-digest output, in one group per
//! digest: keyward's core, the `pbkdf2` crate and ring, beside the bare
//! chain of the compressions the derivation cannot avoid (two per
//! iteration, each depending on the last). The rows of a group run one
//! after the other in one run, so their ratios come from one machine at
//! one time.
//!
//! - `pbkdf2_sha256_600k`: PBKDF2-HMAC-SHA256 at 600,000 iterations, keyward's
//!   default (OWASP), 32-byte output.
//! - `pbkdf2_sha512_210k`: PBKDF2-HMAC-SHA512 at 210,000 iterations (OWASP for
//!   HMAC-SHA512), 64-byte output.
//! - `pbkdf2_sha1_1m`: PBKDF2-HMAC-SHA1 at 1,000,000 iterations (Django's
//!   and Werkzeug's default), 20-byte output.
//!
//! `cargo bench --bench pbkdf2` measures wall time, criterion's default.
//! On a shared machine, where other processes take the core mid-sample,
//! `KEYWARD_BENCH_CLOCK=thread-cpu cargo bench --bench pbkdf2` measures the
//! CPU time of the benchmarking thread instead (Linux only), which leaves
//! out the time the thread spent waiting for a core.

#[macro_use]
mod support;

use std::hint::black_box;
use std::num::NonZeroU32;
use std::time::Duration;

use criterion::Criterion;
use criterion::measurement::Measurement;
use sha2::block_api::{compress256, compress512};

/// One of keyward's PBKDF2 cores.
type Core = fn(&[u8], &[u8], NonZeroU32, &mut [u8]);
/// The `pbkdf2` crate on the same digest.
type Reference = fn(&[u8], &[u8], u32, &mut [u8]);

/// One group: a digest at one cost.
struct Digest {
    group: &'static str,
    iterations: u32,
    /// The output length: one digest.
    len: usize,
    /// The bare chain's row name.
    chain_row: &'static str,
    /// `2 × iterations` compressions in a serial chain.
    chain: fn(u32),
    keyward: Core,
    reference: Reference,
    ring: ring::pbkdf2::Algorithm,
}

/// The serial chains: each compression starts from the state the previous
/// one left, one block per call through the block API, as PBKDF2 must.
fn sha256_chain(compressions: u32) {
    let mut state: [u32; 8] = black_box(core::array::from_fn(|i| u32::try_from(i).expect("small")));
    let block = black_box([0x5a; 64]);
    for _ in 0..compressions {
        compress256(&mut state, core::slice::from_ref(&block));
    }
    black_box(state);
}

fn sha512_chain(compressions: u32) {
    let mut state: [u64; 8] = black_box(core::array::from_fn(|i| u64::try_from(i).expect("small")));
    let block = black_box([0x5a; 128]);
    for _ in 0..compressions {
        compress512(&mut state, core::slice::from_ref(&block));
    }
    black_box(state);
}

fn sha1_chain(compressions: u32) {
    let mut state: [u32; 5] = black_box(core::array::from_fn(|i| u32::try_from(i).expect("small")));
    let block = black_box([0x5a; 64]);
    for _ in 0..compressions {
        sha1::block_api::compress(&mut state, core::slice::from_ref(&block));
    }
    black_box(state);
}

const DIGESTS: [Digest; 3] = [
    Digest {
        group: "pbkdf2_sha256_600k",
        iterations: 600_000,
        len: 32,
        chain_row: "sha256 chain, 1.2M compressions (bare)",
        chain: sha256_chain,
        keyward: keyward::password::pbkdf2_sha256,
        reference: pbkdf2::pbkdf2_hmac::<sha2::Sha256>,
        ring: ring::pbkdf2::PBKDF2_HMAC_SHA256,
    },
    Digest {
        group: "pbkdf2_sha512_210k",
        iterations: 210_000,
        len: 64,
        chain_row: "sha512 chain, 420k compressions (bare)",
        chain: sha512_chain,
        keyward: keyward::password::pbkdf2_sha512,
        reference: pbkdf2::pbkdf2_hmac::<sha2::Sha512>,
        ring: ring::pbkdf2::PBKDF2_HMAC_SHA512,
    },
    Digest {
        group: "pbkdf2_sha1_1m",
        iterations: 1_000_000,
        len: 20,
        chain_row: "sha1 chain, 2M compressions (bare)",
        chain: sha1_chain,
        keyward: keyward::password::pbkdf2_sha1,
        reference: pbkdf2::pbkdf2_hmac::<sha1::Sha1>,
        ring: ring::pbkdf2::PBKDF2_HMAC_SHA1,
    },
];

fn pbkdf2<M: Measurement>(c: &mut Criterion<M>) {
    let password = b"correct horse battery staple";
    let salt: [u8; 16] = core::array::from_fn(|i| u8::try_from(i).expect("small"));

    for digest in &DIGESTS {
        let iterations = NonZeroU32::new(digest.iterations).expect("non-zero");
        let compressions = digest.iterations.checked_mul(2).expect("small");

        // The three implementations agree before any of them is timed.
        let mut keyward_out = vec![0u8; digest.len];
        let mut crate_out = vec![0u8; digest.len];
        let mut ring_out = vec![0u8; digest.len];
        (digest.keyward)(password, &salt, iterations, &mut keyward_out);
        (digest.reference)(password, &salt, digest.iterations, &mut crate_out);
        ring::pbkdf2::derive(digest.ring, iterations, &salt, password, &mut ring_out);
        assert_eq!(
            keyward_out, crate_out,
            "{}: keyward and the pbkdf2 crate differ",
            digest.group
        );
        assert_eq!(
            keyward_out, ring_out,
            "{}: keyward and ring differ",
            digest.group
        );

        let mut group = c.benchmark_group(digest.group);
        group.sample_size(10);
        group.measurement_time(Duration::from_secs(10));

        group.bench_function(digest.chain_row, |b| {
            b.iter(|| (digest.chain)(black_box(compressions)));
        });
        group.bench_function("keyward", |b| {
            let mut out = vec![0u8; digest.len];
            b.iter(|| {
                (digest.keyward)(black_box(password), black_box(&salt), iterations, &mut out);
                black_box(&out);
            });
        });
        group.bench_function("pbkdf2 crate", |b| {
            let mut out = vec![0u8; digest.len];
            b.iter(|| {
                (digest.reference)(
                    black_box(password),
                    black_box(&salt),
                    digest.iterations,
                    &mut out,
                );
                black_box(&out);
            });
        });
        group.bench_function("ring", |b| {
            let mut out = vec![0u8; digest.len];
            b.iter(|| {
                ring::pbkdf2::derive(
                    digest.ring,
                    iterations,
                    black_box(&salt),
                    black_box(password),
                    &mut out,
                );
                black_box(&out);
            });
        });
        group.finish();
    }
}

clock_main!(pbkdf2);
