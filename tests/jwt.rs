//! Access tokens: the negative table, key rotation and the JWKS.
#![allow(clippy::unwrap_used, clippy::panic, clippy::arithmetic_side_effects)]

use std::sync::Arc;

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
use base64ct::{Base64, Base64UrlUnpadded, Encoding};
use hmac::{KeyInit, Mac};
use keyward::clock::ManualClock;
use keyward::{Error, JwtAlg, JwtError, JwtPolicy, KeyRing, Keyward};
use serde_json::{Value, json};

const NOW: u64 = 1_700_000_000;

struct Fixture {
    kw: Keyward,
    clock: ManualClock,
    /// kid → (alg, private key bytes: PKCS#8 or the HS256 secret)
    keys: Vec<(String, JwtAlg, Vec<u8>)>,
}

/// A key ring with an EdDSA (current), an ES256 and an HS256 key.
fn fixture() -> Fixture {
    let mut ring = KeyRing::generate(JwtAlg::HS256).unwrap();
    ring.rotate_jwt(JwtAlg::ES256).unwrap();
    ring.rotate_jwt(JwtAlg::EdDSA).unwrap();
    let file: Value = serde_json::from_str(&ring.to_json()).unwrap();
    let keys = file["jwt_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            let alg = k["alg"].as_str().unwrap().parse().unwrap();
            (
                k["kid"].as_str().unwrap().to_owned(),
                alg,
                Base64::decode_vec(k["key"].as_str().unwrap()).unwrap(),
            )
        })
        .collect();
    let clock = ManualClock::new(NOW);
    let kw = Keyward::builder()
        .issuer("https://auth.example.com")
        .audience("api")
        .keys(ring)
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    Fixture { kw, clock, keys }
}

impl Fixture {
    fn key(&self, alg: JwtAlg) -> &(String, JwtAlg, Vec<u8>) {
        self.keys.iter().find(|k| k.1 == alg).unwrap()
    }

    fn claims(&self) -> Value {
        json!({
            "iss": "https://auth.example.com", "aud": "api", "sub": "user-42",
            "iat": NOW, "exp": NOW + 900, "jti": "j-1", "sid": "s-1",
        })
    }

    fn header(&self, alg: JwtAlg) -> Value {
        json!({"alg": alg.name(), "typ": "at+jwt", "kid": self.key(alg).0})
    }

    /// Signs `header.claims` with the ring's key of `alg`.
    fn forge(&self, header: &Value, claims: &Value, alg: JwtAlg) -> String {
        let (h, p) = (b64(header), b64(claims));
        let message = format!("{h}.{p}");
        let sig = sign(alg, &self.key(alg).2, message.as_bytes());
        format!("{message}.{}", Base64UrlUnpadded::encode_string(&sig))
    }

    fn check(&self, token: &str) -> Result<(), JwtError> {
        match self.kw.jwt().unwrap().verify(token) {
            Ok(_) => Ok(()),
            Err(Error::Jwt(e)) => Err(e),
            Err(e) => panic!("unexpected error {e}"),
        }
    }
}

fn b64(v: &Value) -> String {
    Base64UrlUnpadded::encode_string(v.to_string().as_bytes())
}

fn hs256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

fn sign(alg: JwtAlg, key: &[u8], message: &[u8]) -> Vec<u8> {
    match alg {
        JwtAlg::HS256 => hs256(key, message),
        JwtAlg::EdDSA => Ed25519KeyPair::from_pkcs8(key)
            .unwrap()
            .sign(message)
            .as_ref()
            .to_vec(),
        JwtAlg::ES256 => {
            let k = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, key).unwrap();
            k.sign(&aws_lc_rs::rand::SystemRandom::new(), message)
                .unwrap()
                .as_ref()
                .to_vec()
        }
        _ => unreachable!(),
    }
}

#[test]
fn issued_tokens_verify_with_every_algorithm() {
    let f = fixture();
    for alg in [JwtAlg::EdDSA, JwtAlg::ES256, JwtAlg::HS256] {
        let t = f.forge(&f.header(alg), &f.claims(), alg);
        assert_eq!(f.check(&t), Ok(()), "{alg}");
    }
    let token = f.kw.jwt().unwrap().issue("user-42", "s-1").unwrap();
    let claims =
        f.kw.jwt()
            .unwrap()
            .verify(token.unprotected_as_str())
            .unwrap();
    assert_eq!(
        (claims.sub.as_str(), claims.sid.as_str()),
        ("user-42", "s-1")
    );
    assert_eq!((claims.iat, claims.exp), (NOW, NOW + 900));
    assert_eq!(claims.aud, ["api"]);
    let header: Value = serde_json::from_slice(
        &Base64UrlUnpadded::decode_vec(token.unprotected_as_str().split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["kid"], f.key(JwtAlg::EdDSA).0);
    // Unique jti per token.
    let other = f.kw.jwt().unwrap().issue("user-42", "s-1").unwrap();
    let other =
        f.kw.jwt()
            .unwrap()
            .verify(other.unprotected_as_str())
            .unwrap();
    assert_ne!(claims.jti, other.jti);
    assert!(!format!("{token:?}").contains(token.unprotected_as_str().split('.').nth(2).unwrap()));
}

/// Each forged or broken token is rejected with the right typed reason.
#[test]
fn negative_table() {
    let f = fixture();
    let ed = JwtAlg::EdDSA;
    let good = f.forge(&f.header(ed), &f.claims(), ed);
    let with_claims = |edit: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut c = f.claims();
        edit(c.as_object_mut().unwrap());
        f.forge(&f.header(ed), &c, ed)
    };
    let with_header = |edit: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut h = f.header(ed);
        edit(h.as_object_mut().unwrap());
        f.forge(&h, &f.claims(), ed)
    };
    let (h64, p64, s64) = {
        let mut it = good.split('.');
        (
            it.next().unwrap().to_owned(),
            it.next().unwrap().to_owned(),
            it.next().unwrap().to_owned(),
        )
    };

    let short_sig = {
        let raw = Base64UrlUnpadded::decode_vec(&s64).unwrap();
        Base64UrlUnpadded::encode_string(&raw[..raw.len() - 8])
    };

    // alg: none, with and without a signature.
    let none_header = json!({"alg": "none", "typ": "at+jwt", "kid": f.key(ed).0});
    let none_unsigned = format!("{}.{}.", b64(&none_header), b64(&f.claims()));
    let none_signed = format!("{}.{}.{s64}", b64(&none_header), b64(&f.claims()));

    // Key confusion: HS256 keyed with the public key of the EdDSA / ES256 key.
    let confusion = |alg: JwtAlg| {
        let public =
            f.kw.keys()
                .unwrap()
                .jwt_keys()
                .find(|k| k.alg() == alg)
                .unwrap()
                .public_key()
                .unwrap()
                .unwrap();
        let header = json!({"alg": "HS256", "typ": "at+jwt", "kid": f.key(alg).0});
        let message = format!("{}.{}", b64(&header), b64(&f.claims()));
        let sig = hs256(&public, message.as_bytes());
        format!("{message}.{}", Base64UrlUnpadded::encode_string(&sig))
    };

    // The header's alg changed after signing, and a token signed with HS512.
    let alg_swapped = format!(
        "{}.{p64}.{s64}",
        b64(&json!({"alg": "ES256", "typ": "at+jwt", "kid": f.key(ed).0}))
    );

    // Non-URL-safe alphabet: standard base64 of a payload that needs '+' or '/'.
    let mut c = f.claims();
    c["note"] = json!("~~~???>>>");
    let std_payload = Base64::encode_string(c.to_string().as_bytes())
        .trim_end_matches('=')
        .to_owned();
    assert!(std_payload.contains('+') || std_payload.contains('/'));
    let std_alphabet = {
        let message = format!("{h64}.{std_payload}");
        let sig = sign(ed, &f.key(ed).2, message.as_bytes());
        format!("{message}.{}", Base64UrlUnpadded::encode_string(&sig))
    };

    let cases: Vec<(&str, String, JwtError)> = vec![
        ("alg none, no signature", none_unsigned, JwtError::Malformed),
        (
            "alg none, with a signature",
            none_signed,
            JwtError::BadSignature,
        ),
        (
            "HS256 keyed with the EdDSA public key",
            confusion(JwtAlg::EdDSA),
            JwtError::BadSignature,
        ),
        (
            "HS256 keyed with the ES256 public key",
            confusion(JwtAlg::ES256),
            JwtError::BadSignature,
        ),
        (
            "alg changed in the header",
            alg_swapped,
            JwtError::BadSignature,
        ),
        (
            "exp as a string",
            with_claims(&|c| {
                c.insert("exp".into(), json!((NOW + 900).to_string()));
            }),
            JwtError::InvalidClaim("exp"),
        ),
        (
            "nbf as a string",
            with_claims(&|c| {
                c.insert("nbf".into(), json!(NOW.to_string()));
            }),
            JwtError::InvalidClaim("nbf"),
        ),
        (
            "iat as a float",
            with_claims(&|c| {
                c.insert("iat".into(), json!(1.5));
            }),
            JwtError::InvalidClaim("iat"),
        ),
        (
            "missing exp",
            with_claims(&|c| {
                c.remove("exp");
            }),
            JwtError::MissingClaim("exp"),
        ),
        (
            "missing aud",
            with_claims(&|c| {
                c.remove("aud");
            }),
            JwtError::MissingClaim("aud"),
        ),
        (
            "missing iss",
            with_claims(&|c| {
                c.remove("iss");
            }),
            JwtError::MissingClaim("iss"),
        ),
        (
            "missing sub",
            with_claims(&|c| {
                c.remove("sub");
            }),
            JwtError::MissingClaim("sub"),
        ),
        (
            "missing jti",
            with_claims(&|c| {
                c.remove("jti");
            }),
            JwtError::MissingClaim("jti"),
        ),
        (
            "missing iat",
            with_claims(&|c| {
                c.remove("iat");
            }),
            JwtError::MissingClaim("iat"),
        ),
        (
            "missing sid",
            with_claims(&|c| {
                c.remove("sid");
            }),
            JwtError::MissingClaim("sid"),
        ),
        (
            "empty sub",
            with_claims(&|c| {
                c.insert("sub".into(), json!(""));
            }),
            JwtError::InvalidClaim("sub"),
        ),
        (
            "wrong aud",
            with_claims(&|c| {
                c.insert("aud".into(), json!("other-api"));
            }),
            JwtError::WrongAudience,
        ),
        (
            "wrong aud in a list",
            with_claims(&|c| {
                c.insert("aud".into(), json!(["a", "b"]));
            }),
            JwtError::WrongAudience,
        ),
        (
            "wrong iss",
            with_claims(&|c| {
                c.insert("iss".into(), json!("https://evil.example"));
            }),
            JwtError::WrongIssuer,
        ),
        (
            "typ JWT",
            with_header(&|h| {
                h.insert("typ".into(), json!("JWT"));
            }),
            JwtError::WrongType,
        ),
        (
            "typ missing",
            with_header(&|h| {
                h.remove("typ");
            }),
            JwtError::WrongType,
        ),
        (
            "exp one second past the leeway",
            with_claims(&|c| {
                c.insert("exp".into(), json!(NOW - 31));
            }),
            JwtError::Expired,
        ),
        (
            "nbf past the leeway",
            with_claims(&|c| {
                c.insert("nbf".into(), json!(NOW + 31));
            }),
            JwtError::NotYetValid,
        ),
        (
            "iat past the leeway",
            with_claims(&|c| {
                c.insert("iat".into(), json!(NOW + 31));
            }),
            JwtError::NotYetValid,
        ),
        (
            "unknown kid",
            with_header(&|h| {
                h.insert("kid".into(), json!("no-such-key"));
            }),
            JwtError::UnknownKey,
        ),
        (
            "no kid",
            with_header(&|h| {
                h.remove("kid");
            }),
            JwtError::UnknownKey,
        ),
        (
            "crit header",
            with_header(&|h| {
                h.insert("crit".into(), json!(["exp"]));
            }),
            JwtError::Malformed,
        ),
        (
            "signature truncated by 8 bytes",
            format!("{h64}.{p64}.{short_sig}"),
            JwtError::BadSignature,
        ),
        (
            "signature truncated by 1 character",
            format!("{h64}.{p64}.{}", &s64[..s64.len() - 1]),
            JwtError::Malformed,
        ),
        (
            "signature of another payload",
            format!("{h64}.{}.{s64}", b64(&json!({"sub": "admin"}))),
            JwtError::BadSignature,
        ),
        (
            "an extra dot segment",
            format!("{good}.{s64}"),
            JwtError::Malformed,
        ),
        (
            "an empty extra segment",
            format!("{good}."),
            JwtError::Malformed,
        ),
        ("two segments", format!("{h64}.{p64}"), JwtError::Malformed),
        (
            "base64 padding",
            format!("{h64}.{p64}.{s64}=="),
            JwtError::Malformed,
        ),
        (
            "padding in the payload",
            format!("{h64}.{p64}=.{s64}"),
            JwtError::Malformed,
        ),
        (
            "standard base64 alphabet",
            std_alphabet,
            JwtError::Malformed,
        ),
        (
            "header not JSON",
            format!(
                "{}.{p64}.{s64}",
                Base64UrlUnpadded::encode_string(b"not json")
            ),
            JwtError::Malformed,
        ),
        (
            "header a JSON array",
            format!("{}.{p64}.{s64}", b64(&json!(["alg"]))),
            JwtError::Malformed,
        ),
        ("empty string", String::new(), JwtError::Malformed),
        (
            "too long",
            format!("{h64}.{}.{s64}", "A".repeat(9000)),
            JwtError::Malformed,
        ),
    ];
    assert_eq!(f.check(&good), Ok(()), "the baseline verifies");
    for (what, token, want) in &cases {
        assert_eq!(f.check(token).err().as_ref(), Some(want), "{what}");
    }

    // Boundaries of the leeway: accepted one second inside it.
    let inside = with_claims(&|c| {
        c.insert("exp".into(), json!(NOW - 29));
        c.insert("nbf".into(), json!(NOW + 30));
    });
    assert_eq!(f.check(&inside), Ok(()));
    f.clock.advance(1);
    assert_eq!(f.check(&inside), Err(JwtError::Expired));
}

/// Time moves: an issued token is valid for 900 s plus the 30 s leeway.
#[test]
fn issued_tokens_expire_after_ttl_plus_leeway() {
    let f = fixture();
    let t = f.kw.jwt().unwrap().issue("user-42", "s-1").unwrap();
    f.clock.advance(900 + 29);
    assert_eq!(f.check(t.unprotected_as_str()), Ok(()));
    f.clock.advance(1);
    assert_eq!(f.check(t.unprotected_as_str()), Err(JwtError::Expired));
}

#[test]
fn rotation_keeps_old_tokens_until_the_key_is_retired() {
    let clock = ManualClock::new(NOW);
    let build = |ring: &KeyRing| {
        Keyward::builder()
            .issuer("iss")
            .audience("aud")
            .keys(KeyRing::from_json(&ring.to_json()).unwrap())
            .clock(Arc::new(clock.clone()))
            .build()
            .unwrap()
    };
    let mut ring = KeyRing::generate(JwtAlg::EdDSA).unwrap();
    let old_kid = ring.current_jwt_key().kid().to_owned();
    let old_token = build(&ring).jwt().unwrap().issue("u", "s").unwrap();

    ring.rotate_jwt(JwtAlg::EdDSA).unwrap();
    let kw = build(&ring);
    kw.jwt()
        .unwrap()
        .verify(old_token.unprotected_as_str())
        .unwrap();
    let new_token = kw.jwt().unwrap().issue("u", "s").unwrap();
    assert!(new_token.unprotected_as_str() != old_token.unprotected_as_str());
    let jwks: Value = serde_json::from_str(kw.jwt().unwrap().jwks()).unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);

    assert!(
        ring.retire_jwt(ring.current_jwt_key().kid().to_owned().as_str())
            .is_err(),
        "current key stays"
    );
    ring.retire_jwt(&old_kid).unwrap();
    let kw = build(&ring);
    assert!(matches!(
        kw.jwt().unwrap().verify(old_token.unprotected_as_str()),
        Err(Error::Jwt(JwtError::UnknownKey))
    ));
    kw.jwt()
        .unwrap()
        .verify(new_token.unprotected_as_str())
        .unwrap();
}

#[test]
fn jwks_lists_public_keys_only() {
    let f = fixture();
    let jwks: Value = serde_json::from_str(f.kw.jwt().unwrap().jwks()).unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "EdDSA and ES256; never the HS256 secret");
    let ed = keys.iter().find(|k| k["alg"] == "EdDSA").unwrap();
    assert_eq!(
        (ed["kty"].as_str(), ed["crv"].as_str()),
        (Some("OKP"), Some("Ed25519"))
    );
    assert_eq!(
        Base64UrlUnpadded::decode_vec(ed["x"].as_str().unwrap())
            .unwrap()
            .len(),
        32
    );
    assert!(ed.get("d").is_none());
    let ec = keys.iter().find(|k| k["alg"] == "ES256").unwrap();
    assert_eq!(
        (ec["kty"].as_str(), ec["crv"].as_str()),
        (Some("EC"), Some("P-256"))
    );
    assert!(ec.get("d").is_none());
    let hs_secret = Base64UrlUnpadded::encode_string(&f.key(JwtAlg::HS256).2);
    assert!(!f.kw.jwt().unwrap().jwks().contains(&hs_secret));
}

#[test]
fn policy_weakening_needs_a_dangerous_method() {
    let p = JwtPolicy::new("i", "a");
    assert!(p.clone().access_ttl_secs(901).is_err());
    assert!(p.clone().leeway_secs(31).is_err());
    assert_eq!(p.clone().access_ttl_secs(300).unwrap().access_ttl(), 300);
    assert_eq!(
        p.clone()
            .dangerous_access_ttl_secs(3600)
            .unwrap()
            .access_ttl(),
        3600
    );
    assert_eq!(p.clone().dangerous_leeway_secs(120).unwrap().leeway(), 120);
    assert!(p.dangerous_access_ttl_secs(0).is_err());
    assert!(
        Keyward::builder().issuer("i").build().is_err(),
        "issuer without audience"
    );
    assert!(
        Keyward::builder()
            .issuer("i")
            .audience("a")
            .build()
            .is_err(),
        "no key ring"
    );
    let kw = Keyward::builder().build().unwrap();
    assert!(matches!(kw.jwt(), Err(Error::Config(_))));
}

#[test]
fn custom_claims_round_trip_and_may_not_shadow_registered_ones() {
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Roles {
        roles: Vec<String>,
    }
    let f = fixture();
    let jwt = f.kw.jwt().unwrap();
    let t = jwt
        .issue_with(
            "u",
            "s",
            &Roles {
                roles: vec!["admin".into()],
            },
        )
        .unwrap();
    let claims = jwt.verify_with::<Roles>(t.unprotected_as_str()).unwrap();
    assert_eq!(
        claims.extra,
        Roles {
            roles: vec!["admin".into()]
        }
    );
    assert!(matches!(
        jwt.verify_with::<Roles>(jwt.issue("u", "s").unwrap().unprotected_as_str()),
        Err(Error::Jwt(JwtError::InvalidClaim("custom")))
    ));
    for refused in [
        jwt.issue_with("u", "s", &json!({"exp": 1})),
        jwt.issue_with("u", "s", &json!([1, 2])),
        jwt.issue_with("", "s", &json!({"roles": []})),
        jwt.issue("", "s"),
        jwt.issue("u", ""),
    ] {
        let refused = refused.unwrap_err();
        assert!(matches!(refused, Error::InvalidInput(_)), "{refused:?}");
        assert_eq!((refused.status(), refused.code()), (400, "invalid_request"));
    }
    jwt.issue_with("u", "s", &json!({})).unwrap();

    // `verify` reads custom claims as `SessionClaims`, at most 1 KiB: larger
    // ones from `issue_with` are refused there and read by `verify_with`.
    let big = json!({"blob": "x".repeat(keyward::jwt::MAX_SESSION_CLAIMS_BYTES)});
    let t = jwt.issue_with("u", "s", &big).unwrap();
    assert!(matches!(
        jwt.verify(t.unprotected_as_str()),
        Err(Error::Jwt(JwtError::InvalidClaim("custom")))
    ));
    let claims = jwt
        .verify_with::<serde_json::Value>(t.unprotected_as_str())
        .unwrap();
    assert_eq!(claims.extra, big);
    let small = jwt.issue_with("u", "s", &json!({"blob": "x"})).unwrap();
    let claims = jwt.verify(small.unprotected_as_str()).unwrap();
    assert_eq!(claims.extra.get("blob"), Some(&json!("x")));
}
