//! An API-key verify on each store, beside its floor in the same group:
//! the bare `token parse` (shape, checksum, SHA-256) plus one `load` of
//! the key's record from the same store. What a verify adds to that floor
//! is decoding the record, the constant-time digest comparison (two
//! during a roll's overlap), the store's clock (the host's for a store
//! that keeps none, as the memory store) and the proof; `last_used_at` is
//! written once a minute at most, so a run of a few seconds writes it
//! once.
//!
//! Stores: memory, SQLite (as `SqliteStore::open` opens it), PostgreSQL
//! and Redis over loopback (`$KEYWARD_POSTGRES_URL`,
//! `$KEYWARD_REDIS_URL`; left out with one `SKIPPED:` line when they do
//! not answer). Each group's throughput is verifies per second.
#![allow(missing_docs, clippy::unwrap_used, clippy::arithmetic_side_effects)]

#[macro_use]
mod support;

use std::hint::black_box;
use std::sync::Arc;

use criterion::measurement::Measurement;
use criterion::{Criterion, Throughput};
use keyward::api_key::KeySpec;
use keyward::{JwtAlg, KeyRing, Keyward, Tokens};

fn bench<M: Measurement>(c: &mut Criterion<M>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The SQLite file lives under target/, not in a tmpfs.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let stores = support::services::stores(&rt, dir.path(), "api_keys");
    for (name, store) in stores {
        let kw = Keyward::builder()
            .keys(KeyRing::generate(JwtAlg::HS256).unwrap())
            .shared_store(Arc::clone(&store))
            .build_partial()
            .unwrap();
        let keys = kw.api_keys().unwrap().clone();
        let spec = KeySpec::named("ci").scope("repo:read").scope("repo:write");
        let made = rt.block_on(keys.create("user-42", spec)).unwrap();
        let presented = made.key().unprotected_as_str().to_owned();
        // The record a verify loads: the key's public id names it.
        let record_key = format!("kw:ak:{}", made.id());
        let tokens = Tokens::plain();

        let mut group = c.benchmark_group(format!("api_key_verify_{name}"));
        group.throughput(Throughput::Elements(1));
        group.bench_function("keyward verify", |b| {
            b.iter(|| black_box(rt.block_on(keys.verify(black_box(&presented))).unwrap()));
        });
        group.bench_function("floor: token parse + one load", |b| {
            b.iter(|| {
                let parsed = tokens.parse(black_box(&presented)).unwrap();
                black_box(parsed.digest());
                black_box(rt.block_on(store.load(&record_key)).unwrap().unwrap());
            });
        });
        group.finish();
    }
}

clock_main!(bench);
