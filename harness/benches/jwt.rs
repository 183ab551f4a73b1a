//! Access tokens: keyward's issue + verify against bare jsonwebtoken calls
//! with the same claims, header and keys, side by side in one group per
//! algorithm so the ratio comes from one run.
#![allow(missing_docs, clippy::unwrap_used, clippy::arithmetic_side_effects)]

use std::hint::black_box;

use base64ct::{Base64, Encoding};
use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use keyward::{JwtAlg, KeyRing, Keyward};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    sub: String,
    iat: u64,
    exp: u64,
    jti: String,
    sid: String,
}

fn bench(c: &mut Criterion, alg: JwtAlg) {
    let ring = KeyRing::generate(alg).unwrap();
    let file: serde_json::Value = serde_json::from_str(&ring.to_json()).unwrap();
    let secret = Base64::decode_vec(file["jwt_keys"][0]["key"].as_str().unwrap()).unwrap();
    let kid = ring.current_jwt_key().kid().to_owned();
    let public = ring.current_jwt_key().public_key().unwrap();
    let kw = Keyward::builder()
        .issuer("https://auth.example.com")
        .audience("api")
        .keys(ring)
        .build()
        .unwrap();
    let jwt = kw.jwt().unwrap();

    let (enc, dec, jalg) = match alg {
        JwtAlg::HS256 => (
            EncodingKey::from_secret(&secret),
            DecodingKey::from_secret(&secret),
            Algorithm::HS256,
        ),
        _ => (
            EncodingKey::from_ed_der(&secret),
            DecodingKey::from_ed_der(&public.unwrap()),
            Algorithm::EdDSA,
        ),
    };
    let mut header = Header::new(jalg);
    header.typ = Some("at+jwt".into());
    header.kid = Some(kid);
    let mut validation = Validation::new(jalg);
    validation.leeway = 30;
    validation.set_audience(&["api"]);
    validation.set_issuer(&["https://auth.example.com"]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);

    let mut group = c.benchmark_group(format!("jwt_{}", alg.name()));
    group.bench_function("keyward issue+verify", |b| {
        b.iter(|| {
            let t = jwt
                .issue(black_box("user-42"), black_box("session-1"))
                .unwrap();
            black_box(jwt.verify(t.unprotected_as_str()).unwrap());
        });
    });
    group.bench_function("jsonwebtoken encode+decode", |b| {
        b.iter(|| {
            let now = jsonwebtoken::get_current_timestamp();
            let mut jti = [0u8; 16];
            rand::TryRng::try_fill_bytes(&mut rand::rngs::SysRng, &mut jti).unwrap();
            let claims = Claims {
                iss: "https://auth.example.com".into(),
                aud: "api".into(),
                sub: black_box("user-42").into(),
                iat: now,
                exp: now + 900,
                jti: base64ct::Base64UrlUnpadded::encode_string(&jti),
                sid: black_box("session-1").into(),
            };
            let t = jsonwebtoken::encode(&header, &claims, &enc).unwrap();
            black_box(jsonwebtoken::decode::<Claims>(&t, &dec, &validation).unwrap());
        });
    });
    group.finish();
}

fn jwt(c: &mut Criterion) {
    bench(c, JwtAlg::HS256);
    bench(c, JwtAlg::EdDSA);
}

criterion_group!(benches, jwt);
criterion_main!(benches);
