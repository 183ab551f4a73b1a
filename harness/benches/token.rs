//! Opaque tokens: what checking a presented token costs beside the SHA-256
//! it needs anyway. `parse` + digest and a bare SHA-256 of the same bytes
//! run in one group, so their ratio comes from one run on one machine.
//!
//! `cargo bench --bench token`

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use keyward::{JwtAlg, KeyRing, Tokens};
use sha2::{Digest, Sha256};

fn parse_versus_bare_sha256(c: &mut Criterion) {
    let plain = Tokens::plain();
    let keyed = Tokens::keyed(&KeyRing::generate(JwtAlg::EdDSA).expect("key ring"));
    let new = plain.generate("kw_live").expect("token");
    let token = new.token().unprotected_as_str();

    let mut group = c.benchmark_group("token");
    group.throughput(Throughput::Bytes(
        u64::try_from(token.len()).expect("short"),
    ));
    group.bench_function("sha256 of the token (bare)", |b| {
        b.iter(|| Sha256::digest(black_box(token.as_bytes())));
    });
    group.bench_function("parse + digest", |b| {
        b.iter(|| plain.parse(black_box(token)).map(|p| p.digest()));
    });
    group.bench_function("parse + keyed digest", |b| {
        b.iter(|| keyed.parse(black_box(token)).map(|p| p.digest()));
    });
    group.finish();
}

criterion_group!(benches, parse_versus_bare_sha256);
criterion_main!(benches);
