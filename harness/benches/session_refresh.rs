//! A refresh (rotation + new access token) on `MemoryStore`, against the sum
//! of its parts measured in the same group: a bare jsonwebtoken signature
//! of the same claims, the two HMAC-SHA256 it computes (check the presented
//! token, derive the successor) and the 16 random bytes of the `jti`. Then
//! rotations per second on each store: memory, SQLite (with every commit
//! synced, `synchronous=FULL`, as `SqliteStore::open` opens it, and beside
//! it with `synchronous=NORMAL`, the setting keyward used before, so that one
//! run gives the cost of durability), and PostgreSQL and Redis over
//! loopback (`$KEYWARD_POSTGRES_URL`, `$KEYWARD_REDIS_URL`).
#![allow(missing_docs, clippy::unwrap_used, clippy::arithmetic_side_effects)]

mod support;

use std::hint::black_box;
use std::sync::Arc;

use base64ct::{Base64, Base64UrlUnpadded, Encoding};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hmac::{KeyInit, Mac};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use keyward::{Complete, JwtAlg, KeyRing, Keyward, MemoryStore, SqliteStore, Store};
use serde::Serialize;

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    iat: u64,
    exp: u64,
    jti: String,
    sid: &'a str,
}

fn keyward(alg: JwtAlg, store: Arc<dyn Store>) -> (Keyward<Complete>, Vec<u8>, String) {
    let ring = KeyRing::generate(alg).unwrap();
    let file: serde_json::Value = serde_json::from_str(&ring.to_json()).unwrap();
    let secret = Base64::decode_vec(file["jwt_keys"][0]["key"].as_str().unwrap()).unwrap();
    let kid = ring.current_jwt_key().kid().to_owned();
    let kw = Keyward::builder()
        .issuer("https://auth.example.com")
        .audience("api")
        .keys(ring)
        .shared_store(store)
        .build()
        .unwrap();
    (kw, secret, kid)
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for alg in [JwtAlg::EdDSA, JwtAlg::HS256] {
        let (kw, secret, kid) = keyward(alg, Arc::new(MemoryStore::new()));
        let sessions = kw.sessions().clone();
        let mut token = rt
            .block_on(sessions.dangerous_start_without_proof("user-42"))
            .unwrap()
            .refresh
            .unprotected_as_str()
            .to_owned();

        let (enc, jalg) = match alg {
            JwtAlg::HS256 => (EncodingKey::from_secret(&secret), Algorithm::HS256),
            _ => (EncodingKey::from_ed_der(&secret), Algorithm::EdDSA),
        };
        let mut header = Header::new(jalg);
        header.typ = Some("at+jwt".into());
        header.kid = Some(kid);
        let mac_key = [7u8; 32];

        let mut group = c.benchmark_group(format!("session_refresh_{}", alg.name()));
        group.bench_function("keyward refresh (memory store)", |b| {
            b.iter(|| {
                let pair = rt.block_on(sessions.refresh(&token)).unwrap();
                token = pair.refresh.unprotected_as_str().to_owned();
                black_box(pair);
            });
        });
        group.bench_function("tokio block_on of a ready future", |b| {
            b.iter(|| rt.block_on(async { black_box(1) }));
        });
        group.bench_function("parts: jwt sign + 2 hmac + rng", |b| {
            b.iter(|| {
                let mut jti = [0u8; 16];
                rand::TryRng::try_fill_bytes(&mut rand::rngs::SysRng, &mut jti).unwrap();
                for part in [b"presented".as_slice(), b"successor".as_slice()] {
                    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(&mac_key).unwrap();
                    m.update(black_box(part));
                    black_box(m.finalize());
                }
                let now = jsonwebtoken::get_current_timestamp();
                let claims = Claims {
                    iss: "https://auth.example.com",
                    aud: "api",
                    sub: "user-42",
                    iat: now,
                    exp: now + 900,
                    jti: Base64UrlUnpadded::encode_string(&jti),
                    sid: "0123456789abcdef0123456789abcdef",
                };
                black_box(jsonwebtoken::encode(&header, &claims, &enc).unwrap());
            });
        });
        group.finish();
    }

    // Rotations per second on each store: a refresh is one load_many and
    // one commit, so this is the store's round trip plus the
    // work measured above. PostgreSQL and Redis are skipped, with one
    // line, when their servers are unreachable.
    //
    // The SQLite files live under target/ (CARGO_TARGET_TMPDIR), not in
    // the system's temporary folder: that is a tmpfs on many systems,
    // where a sync costs nothing and FULL would look free.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    #[cfg_attr(
        not(any(feature = "postgres", feature = "redis")),
        allow(unused_mut, reason = "only the network stores are pushed")
    )]
    let mut stores: Vec<(&str, Arc<dyn Store>)> = vec![
        ("memory", Arc::new(MemoryStore::new())),
        (
            "sqlite synchronous=NORMAL",
            Arc::new(
                rt.block_on(SqliteStore::dangerous_open_synchronous_normal(
                    dir.path().join("normal.db"),
                ))
                .unwrap(),
            ),
        ),
        (
            "sqlite",
            Arc::new(
                rt.block_on(SqliteStore::open(dir.path().join("bench.db")))
                    .unwrap(),
            ),
        ),
    ];
    #[cfg(feature = "postgres")]
    if let Some(url) = support::services::postgres("postgres bench") {
        let store = rt.block_on(keyward::PgStore::connect(&url)).unwrap();
        stores.push(("postgres", Arc::new(store)));
    }
    #[cfg(feature = "redis")]
    if let Some(url) = support::services::redis("redis bench") {
        let options = keyward::store::RedisOptions::default()
            .prefix(support::services::unique_prefix("bench"));
        let store = rt
            .block_on(keyward::RedisStore::connect_with(&url, options))
            .unwrap();
        stores.push(("redis", Arc::new(store)));
    }
    let mut group = c.benchmark_group("session_rotations");
    group.throughput(Throughput::Elements(1));
    for (name, store) in stores {
        let (kw, _, _) = keyward(JwtAlg::EdDSA, store);
        let sessions = kw.sessions().clone();
        let mut token = rt
            .block_on(sessions.dangerous_start_without_proof("user-42"))
            .unwrap()
            .refresh
            .unprotected_as_str()
            .to_owned();
        group.bench_function(format!("keyward refresh ({name} store, EdDSA)"), |b| {
            b.iter(|| {
                let pair = rt.block_on(sessions.refresh(&token)).unwrap();
                token = pair.refresh.unprotected_as_str().to_owned();
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
