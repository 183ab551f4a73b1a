//! Access-token verification with a fixed HS256 key ring at a fixed time.
//! Two modes: an arbitrary token string, or an arbitrary header and payload
//! signed here with the fixed key, so that everything after the signature
//! check (header `typ`, claim types and values, times) is fuzzed too.
#![no_main]

use std::sync::LazyLock;

use base64ct::{Base64UrlUnpadded, Encoding};
use hmac::{Hmac, KeyInit, Mac};
use keyward::clock::ManualClock;
use keyward::{AccessClaims, Complete, Error, Keyward};
use keyward_fuzz::{AUDIENCE, HS256_KEY, ISSUER, NOW};
use libfuzzer_sys::fuzz_target;

static KW: LazyLock<Keyward<Complete>> =
    LazyLock::new(|| keyward_fuzz::keyward(&ManualClock::new(NOW)));

fn sign(header: &[u8], payload: &[u8]) -> String {
    let input = format!(
        "{}.{}",
        Base64UrlUnpadded::encode_string(header),
        Base64UrlUnpadded::encode_string(payload)
    );
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&HS256_KEY).expect("any key length");
    mac.update(input.as_bytes());
    let tag = mac.finalize().into_bytes();
    format!("{input}.{}", Base64UrlUnpadded::encode_string(&tag))
}

fn check(result: Result<AccessClaims, Error>) {
    if let Ok(claims) = result {
        let policy = KW.jwt().policy();
        assert_eq!(claims.iss, ISSUER);
        assert!(claims.aud.iter().any(|a| a == AUDIENCE));
        assert!(
            claims.exp.saturating_add(policy.leeway()) >= NOW,
            "expired token accepted"
        );
        if let Some(nbf) = claims.nbf {
            assert!(
                nbf <= NOW.saturating_add(policy.leeway()),
                "token before nbf accepted"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let jwt = KW.jwt();
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        if let Ok(token) = std::str::from_utf8(rest) {
            check(jwt.verify(token));
        }
    } else {
        // [header length][header][payload], signed with the fixed key.
        let Some((&len, rest)) = rest.split_first() else {
            return;
        };
        let Some((header, payload)) = rest.split_at_checked(usize::from(len)) else {
            return;
        };
        check(jwt.verify(&sign(header, payload)));
    }
});
