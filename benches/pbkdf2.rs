//! PBKDF2-HMAC-SHA256 at the production cost, 600,000 iterations, 32-byte
//! output: keyward's core, the `pbkdf2` crate and ring, beside the bare
//! chain of the 1,200,000 SHA-256 compressions the derivation cannot avoid
//! (two per iteration, each depending on the last). All four run in one
//! group, so their ratios come from one run on one machine.
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
use sha2::block_api::compress256;

/// OWASP's PBKDF2-HMAC-SHA256 recommendation, keyward's default.
const ITERATIONS: u32 = 600_000;

/// PBKDF2-HMAC-SHA256 with a 32-byte output: one block of output, two
/// compressions per iteration.
const COMPRESSIONS: u32 = 2 * ITERATIONS;

/// The serial chain: each compression starts from the state the previous one
/// left, one block per call through sha2's block API, as PBKDF2 must.
fn bare_chain(state: &mut [u32; 8], block: &[u8; 64]) {
    for _ in 0..COMPRESSIONS {
        compress256(state, core::slice::from_ref(block));
    }
}

fn pbkdf2_600k<M: Measurement>(c: &mut Criterion<M>) {
    let iterations = NonZeroU32::new(ITERATIONS).expect("non-zero");
    let password = b"correct horse battery staple";
    let salt: [u8; 16] = core::array::from_fn(|i| u8::try_from(i).expect("small"));

    // The three implementations agree before any of them is timed.
    let mut keyward_out = [0u8; 32];
    let mut crate_out = [0u8; 32];
    let mut ring_out = [0u8; 32];
    keyward::password::pbkdf2_sha256(password, &salt, iterations, &mut keyward_out);
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, &salt, ITERATIONS, &mut crate_out);
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        &salt,
        password,
        &mut ring_out,
    );
    assert_eq!(
        keyward_out, crate_out,
        "keyward and the pbkdf2 crate differ"
    );
    assert_eq!(keyward_out, ring_out, "keyward and ring differ");

    let mut group = c.benchmark_group("pbkdf2_600k");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));

    group.bench_function("sha256 chain, 1.2M compressions (bare)", |b| {
        let block = [0x5a; 64];
        b.iter(|| {
            let mut state: [u32; 8] =
                black_box(core::array::from_fn(|i| u32::try_from(i).expect("small")));
            bare_chain(&mut state, black_box(&block));
            state
        });
    });
    group.bench_function("keyward", |b| {
        let mut out = [0u8; 32];
        b.iter(|| {
            keyward::password::pbkdf2_sha256(
                black_box(password),
                black_box(&salt),
                iterations,
                &mut out,
            );
            out
        });
    });
    group.bench_function("pbkdf2 crate", |b| {
        let mut out = [0u8; 32];
        b.iter(|| {
            pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
                black_box(password),
                black_box(&salt),
                ITERATIONS,
                &mut out,
            );
            out
        });
    });
    group.bench_function("ring", |b| {
        let mut out = [0u8; 32];
        b.iter(|| {
            ring::pbkdf2::derive(
                ring::pbkdf2::PBKDF2_HMAC_SHA256,
                iterations,
                black_box(&salt),
                black_box(password),
                &mut out,
            );
            out
        });
    });
    group.finish();
}

clock_main!(pbkdf2_600k);
