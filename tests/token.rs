//! Opaque tokens: format, round trips, checksum, digests (plain and keyed),
//! randomness, and robustness of `parse` against malformed input.
#![allow(clippy::unwrap_used, clippy::panic, clippy::arithmetic_side_effects)]

mod common;

use std::collections::{BTreeMap, HashSet};

use base64ct::{Base64, Encoding};
use hmac::{Hmac, KeyInit, Mac};
use keyward::token::{CHECKSUM_LEN, ID_LEN, SECRET_LEN};
use keyward::{Error, JwtAlg, KeyRing, Keyward, TokenDigest, TokenError, Tokens};
use proptest::prelude::*;
use sha2::{Digest, Sha256};

use common::{SplitMix, hex};

const BASE62: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn sha256_hex(s: &str) -> String {
    hex(&Sha256::digest(s.as_bytes()))
}

fn token_error(r: Result<impl std::fmt::Debug, Error>) -> TokenError {
    match r {
        Err(Error::Token(e)) => e,
        other => panic!("expected a token error, got {other:?}"),
    }
}

/// The secret part of a token string: the 43 characters before the
/// checksum.
fn secret_part(token: &str) -> &str {
    let end = token.len() - CHECKSUM_LEN;
    &token[end - SECRET_LEN..end]
}

/// A deterministic RNG for `generate_with_rng`. Marked as a CryptoRng only
/// so the API accepts it; SplitMix is not one.
struct TestRng(SplitMix);

impl rand::TryRng for TestRng {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let [a, b, c, d, ..] = self.0.next().to_le_bytes();
        Ok(u32::from_le_bytes([a, b, c, d]))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(self.0.next())
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for chunk in dst.chunks_mut(8) {
            let bytes = self.0.next().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        Ok(())
    }
}

impl rand::TryCryptoRng for TestRng {}

/// An RNG that fails, or one that returns only the byte 0xFF (which
/// rejection sampling never accepts).
enum BadRng {
    Failing,
    AllOnes,
}

impl rand::TryRng for BadRng {
    type Error = std::io::Error;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        match self {
            Self::Failing => Err(std::io::Error::other("no entropy")),
            Self::AllOnes => {
                dst.fill(0xFF);
                Ok(())
            }
        }
    }
}

impl rand::TryCryptoRng for BadRng {}

/// Known answers computed independently with Python (`zlib.crc32`, a
/// hand-written base62 encoder, `hashlib.sha256`): the checksum of the
/// body and the SHA-256 of the whole token.
#[test]
fn known_answer_tokens_parse_to_their_id_and_digest() {
    let tokens = Tokens::plain();
    let cases = [
        (
            "kw_test_000000000000_00000000000000000000000000000000000000000002Kqs9L",
            "kw_test",
            "000000000000",
            "9eca8fee410418b15072c19f05aa2d83256f7c0573b0b765ab69a27d115aba1b",
        ),
        // A prefix ending in `_`: the token parses from the right.
        (
            "a__Z9z8Y7x6W5v4_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ4Cltja",
            "a_",
            "Z9z8Y7x6W5v4",
            "86a64872e805799ccf1741c4dd26dc6a1e0a49c18742234fc96ebee75841dfaa",
        ),
    ];
    for (token, prefix, id, digest) in cases {
        let parsed = tokens.parse(token).unwrap();
        assert_eq!(parsed.prefix(), prefix);
        assert_eq!(parsed.id(), id);
        assert_eq!(parsed.digest().to_string(), digest);
        // The reject path from the same vector: the checksum's last
        // character moved by one.
        let mut wrong = token.to_owned();
        let last = wrong.pop().unwrap();
        wrong.push(if last == 'a' { 'b' } else { 'a' });
        assert_eq!(
            token_error(tokens.parse(&wrong)),
            TokenError::BadChecksum,
            "{wrong}"
        );
    }
}

#[test]
fn generated_tokens_have_the_documented_shape() {
    let kw = Keyward::builder().build().unwrap();
    let new = kw.tokens().generate("kw_live").unwrap();
    let t = new.token().unprotected_as_str();
    assert_eq!(
        t.len(),
        "kw_live".len() + 1 + ID_LEN + 1 + SECRET_LEN + CHECKSUM_LEN
    );
    assert!(t.starts_with("kw_live_"));
    assert_eq!(&t[8..8 + ID_LEN], new.id());
    assert_eq!(&t[8 + ID_LEN..9 + ID_LEN], "_");
    assert!(t[9 + ID_LEN..].chars().all(|c| BASE62.contains(c)), "{t}");
    assert_eq!(new.digest().to_string(), sha256_hex(t));
    assert!(!kw.tokens().is_keyed());
}

#[test]
fn debug_output_shows_no_secret_bytes() {
    let new = Tokens::plain().generate("kw_live").unwrap();
    let t = new.token().unprotected_as_str().to_owned();
    let secret = secret_part(&t);
    for shown in [
        format!("{:?}", new.token()),
        format!("{:#?}", new.token()),
        format!("{new:?}"),
        format!("{new:#?}"),
        format!("{:?}", Tokens::plain().parse(&t).unwrap()),
    ] {
        assert!(!shown.contains(secret), "{shown}");
        // Not even a fragment of the secret: no 8-character window of it.
        for w in secret.as_bytes().windows(8) {
            assert!(!shown.contains(std::str::from_utf8(w).unwrap()), "{shown}");
        }
    }
    assert_eq!(format!("{:?}", new.token()), "OpaqueToken(OMITTED)");
    let keyed = Tokens::keyed(&KeyRing::generate(JwtAlg::EdDSA).unwrap());
    let keys_shown = format!("{keyed:?}");
    assert!(keys_shown.contains("OMITTED"), "{keys_shown}");
}

#[test]
fn prefixes_are_checked() {
    let tokens = Tokens::plain();
    for good in ["a", "0", "_", "kw_live", "abcdefghij0123456789", "a__b"] {
        let new = tokens.generate(good).unwrap();
        let parsed = tokens.parse(new.token().unprotected_as_str()).unwrap();
        assert_eq!(parsed.prefix(), good);
    }
    for bad in [
        "",
        "abcdefghij0123456789x",
        "KW",
        "kw-live",
        "kw live",
        "kw.live",
        "é",
        "kw\n",
    ] {
        assert_eq!(
            token_error(tokens.generate(bad)),
            TokenError::BadPrefix,
            "{bad:?}"
        );
    }
}

#[test]
fn each_malformation_is_named() {
    let tokens = Tokens::plain();
    let new = tokens.generate("kw").unwrap();
    let t = new.token().unprotected_as_str();
    let err = |s: &str| token_error(tokens.parse(s));
    assert_eq!(err(""), TokenError::BadLength);
    assert_eq!(err(&t[..t.len() - 1]), TokenError::BadSeparator);
    // The first character dropped leaves a valid shape with prefix "w".
    assert_eq!(err(&t[1..]), TokenError::BadChecksum);
    assert_eq!(err(&t[2..]), TokenError::BadLength); // the prefix gone
    assert_eq!(
        err(&format!("{}{t}", "x".repeat(20))),
        TokenError::BadLength
    );
    // The id's separator replaced by a base62 character.
    assert_eq!(
        err(&format!("{}A{}", &t[..2], &t[3..])),
        TokenError::BadSeparator
    );
    // An upper-case prefix: the shape is right but the prefix is not.
    assert_eq!(err(&format!("KW{}", &t[2..])), TokenError::BadPrefix);
    // A `-` in the secret, and a multi-byte character in the id.
    let mut s = t.to_owned();
    s.replace_range(20..21, "-");
    assert_eq!(err(&s), TokenError::BadCharacter);
    let s = format!("{}é{}", &t[..3], &t[5..]);
    assert_eq!(err(&s), TokenError::BadCharacter);
    // One secret character changed to another base62 character.
    let mut s = t.to_owned();
    let c = if &s[30..31] == "a" { "b" } else { "a" };
    s.replace_range(30..31, c);
    assert_eq!(err(&s), TokenError::BadChecksum);
    // The error message names the problem and never holds the token.
    let msg = tokens.parse(&s).unwrap_err().to_string();
    assert_eq!(
        msg,
        "token: the checksum does not match (a typo or an altered token)"
    );
    assert!(!msg.contains(new.id()));
}

#[test]
fn generate_with_rng_is_deterministic_and_fails_closed() {
    let tokens = Tokens::plain();
    let a = tokens
        .generate_with_rng("kw", &mut TestRng(SplitMix(7)))
        .unwrap();
    let b = tokens
        .generate_with_rng("kw", &mut TestRng(SplitMix(7)))
        .unwrap();
    let c = tokens
        .generate_with_rng("kw", &mut TestRng(SplitMix(8)))
        .unwrap();
    assert_eq!(
        a.token().unprotected_as_str(),
        b.token().unprotected_as_str()
    );
    assert_ne!(
        a.token().unprotected_as_str(),
        c.token().unprotected_as_str()
    );
    assert!(tokens.parse(a.token().unprotected_as_str()).is_ok());
    assert!(matches!(
        tokens.generate_with_rng("kw", &mut BadRng::Failing),
        Err(Error::Rng)
    ));
    // An RNG whose every byte is rejected ends in an error, not a hang.
    assert!(matches!(
        tokens.generate_with_rng("kw", &mut BadRng::AllOnes),
        Err(Error::Rng)
    ));
    // A bad prefix is reported before the RNG is touched.
    assert!(matches!(
        tokens.generate_with_rng("KW", &mut BadRng::Failing),
        Err(Error::Token(TokenError::BadPrefix))
    ));
}

#[test]
fn keyed_digests_are_hmac_under_a_key_derived_from_the_mac_key() {
    let keys = KeyRing::generate(JwtAlg::EdDSA).unwrap();
    let json: serde_json::Value = serde_json::from_str(&keys.to_json()).unwrap();
    let mac_key = Base64::decode_vec(json["mac_key"].as_str().unwrap()).unwrap();
    let kw = Keyward::builder()
        .keys(KeyRing::from_json(&keys.to_json()).unwrap())
        .keyed_token_digests()
        .build()
        .unwrap();
    assert!(kw.tokens().is_keyed());
    let new = kw.tokens().generate("kw_live").unwrap();
    let t = new.token().unprotected_as_str();

    // Independently: k = HMAC(mac_key, label); digest = HMAC(k, token).
    let mut derive = <Hmac<Sha256> as KeyInit>::new_from_slice(&mac_key).unwrap();
    derive.update(b"keyward token digest v1");
    let k = derive.finalize().into_bytes();
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&k).unwrap();
    mac.update(t.as_bytes());
    let want = hex(&mac.finalize().into_bytes());
    assert_eq!(new.digest().to_string(), want);
    assert_eq!(kw.tokens().parse(t).unwrap().digest(), new.digest());

    // Not the plain digest, and not the digest under another key ring.
    let plain = Tokens::plain().parse(t).unwrap().digest();
    assert_ne!(plain, new.digest());
    assert_eq!(plain.to_string(), sha256_hex(t));
    let other = Tokens::keyed(&KeyRing::generate(JwtAlg::EdDSA).unwrap());
    assert_ne!(other.parse(t).unwrap().digest(), new.digest());

    // Keyed mode without a key ring is a configuration error.
    assert!(matches!(
        Keyward::builder().keyed_token_digests().build(),
        Err(Error::Config(_))
    ));
}

#[test]
fn digests_round_trip_through_hex_and_serde() {
    let new = Tokens::plain().generate("kw").unwrap();
    let d = new.digest();
    let text = d.to_string();
    assert_eq!(text.len(), 64);
    assert_eq!(text, text.to_lowercase());
    assert_eq!(text.parse::<TokenDigest>().unwrap(), d);
    assert_eq!(text.to_uppercase().parse::<TokenDigest>().unwrap(), d);
    assert_eq!(TokenDigest::from_bytes(*d.as_bytes()), d);
    assert_eq!(format!("{d:?}"), format!("TokenDigest({text})"));

    let json = serde_json::to_string(&d).unwrap();
    assert_eq!(json, format!("\"{text}\""));
    assert_eq!(serde_json::from_str::<TokenDigest>(&json).unwrap(), d);

    let mut other = *d.as_bytes();
    other[0] ^= 1;
    assert_ne!(TokenDigest::from_bytes(other), d);

    for bad in [
        "",
        &text[..62],
        &format!("{text}00"),
        &format!("{}g", &text[..63]),
        &format!("{}é", &text[..62]),
        &format!(" {}", &text[..63]),
    ] {
        assert!(
            matches!(
                bad.parse::<TokenDigest>(),
                Err(Error::Token(TokenError::BadDigest))
            ),
            "{bad:?}"
        );
    }
    assert!(serde_json::from_str::<TokenDigest>("\"abc\"").is_err());
    assert!(serde_json::from_str::<TokenDigest>("42").is_err());
}

/// 10,000 tokens from the OS CSPRNG are distinct, and their secret parts
/// (430,000 characters) pass a chi-square test of uniformity over the 62
/// base62 characters: 61 degrees of freedom, within the 0.1% tails on both
/// sides (31.4 < χ² < 100.9). A too-small statistic is as suspect as a
/// too-large one: it means output too regular to be random. A correct
/// generator fails this test in 0.2% of runs.
#[test]
fn ten_thousand_tokens_are_distinct_and_uniform() {
    let tokens = Tokens::plain();
    let mut seen = HashSet::new();
    let mut ids = HashSet::new();
    let mut counts = [0u32; 62];
    for _ in 0..10_000 {
        let new = tokens.generate("kw").unwrap();
        let t = new.token().unprotected_as_str();
        for c in secret_part(t).bytes() {
            counts[BASE62.bytes().position(|b| b == c).unwrap()] += 1;
        }
        ids.insert(new.id().to_owned());
        assert!(seen.insert(t.to_owned()));
    }
    assert_eq!(seen.len(), 10_000);
    assert_eq!(ids.len(), 10_000);
    let total: u32 = counts.iter().sum();
    assert_eq!(total, 10_000 * 43);
    let expected = f64::from(total) / 62.0;
    let chi2: f64 = counts
        .iter()
        .map(|&o| (f64::from(o) - expected).powi(2) / expected)
        .sum();
    println!("chi-square of 430,000 secret characters over 62 bins (61 df): {chi2:.2}");
    assert!(chi2 > 31.4 && chi2 < 100.9, "chi-square {chi2}");
}

/// `parse` never panics: 100,000 random and mutated inputs from a fixed
/// seed. Every check is reached, and every outcome is an error or a token
/// that really is well-formed.
#[test]
fn parse_never_panics_on_malformed_input() {
    let tokens = Tokens::plain();
    let mut rng = SplitMix(0x746f_6b65_6e73_2121);
    // The seed tokens come from the same fixed seed, so every run sees the
    // same 100,000 inputs.
    let mut seed_rng = TestRng(SplitMix(0x7365_6564_7321));
    let seeds: Vec<String> = ["kw", "kw_live", "a", "_", "abcdefghij0123456789"]
        .iter()
        .map(|p| {
            tokens
                .generate_with_rng(p, &mut seed_rng)
                .unwrap()
                .token()
                .unprotected_as_str()
                .to_owned()
        })
        .collect();
    let alphabet: Vec<char> = format!("{BASE62}_-. é\0\n\u{1F511}").chars().collect();
    let mut outcomes = BTreeMap::<String, usize>::new();
    for n in 0..100_000 {
        let s: String = if n % 10 == 0 {
            let len = rng.below(100);
            (0..len).map(|_| *rng.pick(&alphabet)).collect()
        } else {
            {
                let seed = rng.pick(&seeds).to_string();
                common::mutate(
                    &mut rng,
                    &seed,
                    &alphabet,
                    &["0", "4294967295", "99999999999999999999"],
                )
            }
        };
        let key = match tokens.parse(&s) {
            Ok(p) => {
                // Accepted only if it really is well-formed (a mutation can
                // give one back, for example by swapping equal characters).
                assert!(well_formed(&s), "{s:?}");
                assert_eq!(p.digest().to_string(), sha256_hex(&s));
                "ok".to_owned()
            }
            Err(Error::Token(e)) => format!("{e:?}"),
            Err(e) => panic!("unexpected error {e:?}"),
        };
        *outcomes.entry(key).or_default() += 1;
    }
    println!("parse outcomes over 100,000 inputs: {outcomes:?}");
    assert_eq!(outcomes.values().sum::<usize>(), 100_000);
    for check in [
        "BadLength",
        "BadSeparator",
        "BadPrefix",
        "BadCharacter",
        "BadChecksum",
    ] {
        assert!(outcomes.get(check).copied().unwrap_or(0) > 0, "{check}");
    }
}

/// The bitwise CRC-32 (IEEE 802.3, reflected 0xEDB88320), written out here
/// independently of the crate's table-driven one.
fn crc32_reference(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The format, checked independently of `parse`.
fn well_formed(s: &str) -> bool {
    let fixed = 1 + ID_LEN + 1 + SECRET_LEN + CHECKSUM_LEN;
    if !s.is_ascii() || s.len() <= fixed || s.len() > 20 + fixed {
        return false;
    }
    let (prefix, rest) = s.split_at(s.len() - fixed);
    let (body, checksum) = s.split_at(s.len() - CHECKSUM_LEN);
    let base62 = |p: &str| p.chars().all(|c| BASE62.contains(c));
    let value = checksum.chars().try_fold(0u64, |v, c| {
        Some(v * 62 + u64::try_from(BASE62.find(c)?).unwrap())
    });
    prefix
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && rest.starts_with('_')
        && rest[1 + ID_LEN..].starts_with('_')
        && base62(&rest[1..1 + ID_LEN])
        && base62(&rest[2 + ID_LEN..])
        && value == Some(u64::from(crc32_reference(body.as_bytes())))
}

#[test]
fn the_independent_format_check_agrees_on_known_tokens() {
    let t = "kw_test_000000000000_00000000000000000000000000000000000000000002Kqs9L";
    assert!(well_formed(t));
    assert!(!well_formed(&t.replace("2Kqs9L", "2Kqs9M")));
    assert_eq!(crc32_reference(b"123456789"), 0xCBF4_3926);
}

fn prefix_strategy() -> impl Strategy<Value = String> {
    "[a-z0-9_]{1,20}"
}

proptest! {
    #[test]
    fn generate_then_parse_round_trips(prefix in prefix_strategy()) {
        let tokens = Tokens::plain();
        let new = tokens.generate(&prefix).unwrap();
        let t = new.token().unprotected_as_str();
        let parsed = tokens.parse(t).unwrap();
        prop_assert_eq!(parsed.prefix(), prefix.as_str());
        prop_assert_eq!(parsed.id(), new.id());
        prop_assert_eq!(parsed.digest(), new.digest());
        prop_assert_eq!(new.digest().to_string(), sha256_hex(t));
    }

    #[test]
    fn any_single_character_change_is_rejected(
        prefix in prefix_strategy(),
        at in any::<prop::sample::Index>(),
        with in prop::sample::select(format!("{BASE62}_-é").chars().collect::<Vec<_>>()),
    ) {
        let tokens = Tokens::plain();
        let new = tokens.generate(&prefix).unwrap();
        let t = new.token().unprotected_as_str();
        let mut chars: Vec<char> = t.chars().collect();
        let i = at.index(chars.len());
        prop_assume!(chars[i] != with);
        chars[i] = with;
        let changed: String = chars.into_iter().collect();
        prop_assert!(tokens.parse(&changed).is_err(), "{}", changed);
    }

    #[test]
    fn truncation_is_rejected(prefix in prefix_strategy(), keep in any::<prop::sample::Index>(), from_front in any::<bool>()) {
        let tokens = Tokens::plain();
        let new = tokens.generate(&prefix).unwrap();
        let t = new.token().unprotected_as_str();
        let cut = keep.index(t.len()); // 0..len: at least one character goes
        let shorter = if from_front { &t[t.len() - cut..] } else { &t[..cut] };
        prop_assert!(tokens.parse(shorter).is_err(), "{}", shorter);
    }

    #[test]
    fn extension_is_rejected(
        prefix in prefix_strategy(),
        extra in "[a-z0-9_A-Z]{1,5}",
        at_front in any::<bool>(),
    ) {
        let tokens = Tokens::plain();
        let new = tokens.generate(&prefix).unwrap();
        let t = new.token().unprotected_as_str();
        let longer = if at_front { format!("{extra}{t}") } else { format!("{t}{extra}") };
        prop_assert!(tokens.parse(&longer).is_err(), "{}", longer);
    }
}

/// The former name of `OpaqueToken`, kept for one release, is the same type.
#[test]
#[allow(deprecated)]
fn the_deprecated_token_name_is_opaque_token() {
    let new = Tokens::plain().generate("kw_test").unwrap();
    let token: &keyward::Token = new.token();
    let same: &keyward::OpaqueToken = token;
    assert_eq!(token.unprotected_as_str(), same.unprotected_as_str());
}
