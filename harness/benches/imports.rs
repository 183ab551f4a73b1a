//! How long `Passwords::verify` takes to refuse an imported hash whose cost
//! is over its bound: bcrypt at cost 17 and 31, Argon2 asking for 4 GiB,
//! 2^32 - 1 passes or 2^24 - 1 lanes. Each must be refused before any
//! hashing, well within 10 ms; each row is beside the refusal of a string
//! of no scheme and the `inspect` of an accepted hash, which do no hashing
//! either.
//!
//! Before anything is timed, every over-cost string must be refused with
//! `HashError::Cost` and the accepted ones must parse.
//!
//! `cargo bench --bench imports` (add `KEYWARD_BENCH_CLOCK=thread-cpu` on a
//! shared machine, as for `harness/benches/pbkdf2.rs`).
#![allow(missing_docs, clippy::unwrap_used, clippy::panic)]

#[macro_use]
mod support;

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use criterion::measurement::Measurement;
use keyward::{Error, HashError, Keyward, Password};

/// A row of `tests/data/imports/vectors.tsv` whose hash starts with
/// `prefix`.
fn vector(prefix: &str) -> String {
    include_str!("../../tests/data/imports/vectors.tsv")
        .lines()
        .filter_map(|line| line.split('\t').nth(2))
        .find(|hash| hash.starts_with(prefix))
        .unwrap()
        .to_owned()
}

fn refusals<M: Measurement>(c: &mut Criterion<M>) {
    let kw = Keyward::builder().build().unwrap();
    let passwords = kw.passwords();
    let password = Password::from("correct horse battery staple");
    let bcrypt = vector("$2b$12$");
    let argon2 = vector("$argon2id$v=19$m=65536,t=3,p=4$");
    let argon2_params = "m=65536,t=3,p=4";

    let over_cost = [
        ("bcrypt cost 17", bcrypt.replacen("$12$", "$17$", 1)),
        ("bcrypt cost 31", bcrypt.replacen("$12$", "$31$", 1)),
        (
            "argon2id m=4194304 (4 GiB)",
            argon2.replacen(argon2_params, "m=4194304,t=3,p=4", 1),
        ),
        (
            "argon2id t=4294967295",
            argon2.replacen(argon2_params, "m=65536,t=4294967295,p=4", 1),
        ),
        (
            "argon2id p=16777215",
            argon2.replacen(argon2_params, "m=65536,t=3,p=16777215", 1),
        ),
    ];
    for (label, stored) in &over_cost {
        match passwords.verify("user", &password, stored) {
            Err(Error::Hash(HashError::Cost { .. })) => {}
            other => panic!("{label}: {other:?}"),
        }
    }
    passwords.inspect(&bcrypt).unwrap();
    passwords.inspect(&argon2).unwrap();

    let mut g = c.benchmark_group("imports_refused");
    g.warm_up_time(Duration::from_millis(500));
    g.measurement_time(Duration::from_secs(2));
    for (label, stored) in &over_cost {
        g.bench_function(format!("verify, {label}"), |b| {
            b.iter(|| {
                let r = passwords.verify("user", black_box(&password), black_box(stored));
                assert!(r.is_err());
                r
            });
        });
    }
    g.bench_function("verify, no scheme", |b| {
        b.iter(|| passwords.verify("user", black_box(&password), black_box("hunter2")));
    });
    g.bench_function("inspect, bcrypt cost 12 (accepted)", |b| {
        b.iter(|| passwords.inspect(black_box(&bcrypt)));
    });
    g.bench_function("inspect, argon2id m=65536 (accepted)", |b| {
        b.iter(|| passwords.inspect(black_box(&argon2)));
    });
    g.finish();
}

clock_main!(refusals);
