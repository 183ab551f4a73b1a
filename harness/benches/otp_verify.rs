//! `Otp::verify` on the memory and SQLite stores: a wrong code (a counted
//! failure: one load, one HMAC-SHA256, one compare-and-swap) and the right
//! code (the same, and the code is used up). Each measured verification is
//! for a fresh subject whose code was issued in criterion's untimed setup,
//! so that no lockout and no send throttle is ever reached, and every
//! iteration does the same work. Before timing, each store's first wrong
//! and right codes must give `Invalid { attempts_left: 2 }` and `Ok`.
#![allow(missing_docs, clippy::unwrap_used, clippy::arithmetic_side_effects)]

use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use keyward::{
    Error, JwtAlg, KeyRing, Keyward, MemoryStore, Otp, OtpError, Purpose, SqliteStore, Store,
};

/// The issued code with its first digit changed.
fn wrong(code: &str) -> String {
    let first = code.as_bytes()[0] - b'0';
    format!("{}{}", (first + 1) % 10, &code[1..])
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let stores: Vec<(&str, Arc<dyn Store>)> = vec![
        ("memory", Arc::new(MemoryStore::new())),
        (
            "sqlite",
            Arc::new(
                rt.block_on(SqliteStore::open(dir.path().join("bench.db")))
                    .unwrap(),
            ),
        ),
    ];

    let mut group = c.benchmark_group("otp_verify");
    group.sample_size(20);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    for (name, store) in stores {
        let kw = Keyward::builder()
            .keys(KeyRing::generate(JwtAlg::HS256).unwrap())
            .shared_store(store)
            .build_partial()
            .unwrap();
        let otp: &Otp = kw.otp().unwrap();
        let next = Cell::new(0u64);
        // A fresh subject and its code, issued outside the timing.
        let issue = || {
            next.set(next.get() + 1);
            let subject = format!("user-{}", next.get());
            let issued = rt.block_on(otp.issue(&subject, Purpose::Login)).unwrap();
            (subject, issued.code.unprotected_as_str().to_owned())
        };

        let (subject, code) = issue();
        assert!(matches!(
            rt.block_on(otp.verify(&subject, Purpose::Login, &wrong(&code))),
            Err(Error::Otp(OtpError::Invalid { attempts_left: 2 }))
        ));
        rt.block_on(otp.verify(&subject, Purpose::Login, &code))
            .unwrap();

        group.bench_function(format!("wrong code ({name} store)"), |b| {
            b.iter_batched(
                || {
                    let (subject, code) = issue();
                    (subject, wrong(&code))
                },
                |(subject, wrong)| {
                    let result = rt.block_on(otp.verify(&subject, Purpose::Login, &wrong));
                    assert!(result.is_err());
                    result
                },
                BatchSize::SmallInput,
            );
        });
        group.bench_function(format!("right code ({name} store)"), |b| {
            b.iter_batched(
                issue,
                |(subject, code)| {
                    rt.block_on(otp.verify(&subject, Purpose::Login, &code))
                        .unwrap()
                },
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
