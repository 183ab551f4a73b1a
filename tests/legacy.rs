//! Imported password hashes (Django, Werkzeug, passlib, ASP.NET Identity):
//! known answers from the real libraries, Wycheproof through the SHA-1 and
//! SHA-512 cores, the policy switches, detection, and robustness.
#![allow(clippy::unwrap_used, clippy::panic, clippy::arithmetic_side_effects)]

mod common;

use std::collections::BTreeMap;
use std::num::NonZeroU32;

use base64ct::{Base64, Base64Unpadded, Encoding};
use keyward::password::{WERKZEUG_DEFAULT_ITERATIONS, pbkdf2_sha1, pbkdf2_sha256, pbkdf2_sha512};
use keyward::{Error, HashError, Keyward, Password, PasswordPolicy, Scheme, testing};

use common::{hex, unhex};

/// A PBKDF2 core: `keyward::password::pbkdf2_sha1`, `_sha256` or `_sha512`.
type Core = fn(&[u8], &[u8], NonZeroU32, &mut [u8]);

/// Encodes (iterations, salt, derived key) as a stored hash, when the
/// format's bounds allow them.
type Encoder = dyn Fn(u32, &[u8], &[u8]) -> Option<String>;

const VECTORS: &str = include_str!("data/legacy/vectors.tsv");

fn nz(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).unwrap()
}

fn kw_with(f: impl FnOnce(&mut PasswordPolicy)) -> Keyward {
    let mut p = PasswordPolicy::default();
    f(&mut p);
    Keyward::builder().password_policy(p).build().unwrap()
}

/// One row of `vectors.tsv`.
struct Vector {
    scheme: Scheme,
    password: Vec<u8>,
    hash: String,
    origin: String,
}

fn vectors() -> Vec<Vector> {
    let mut lines = VECTORS.lines();
    assert_eq!(
        lines.next(),
        Some("scheme\tpassword_hex\thash\torigin"),
        "header"
    );
    lines
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            assert_eq!(cols.len(), 4, "{line}");
            Vector {
                scheme: Scheme::from_name(cols[0]).unwrap_or_else(|| panic!("{}", cols[0])),
                password: unhex(cols[1]),
                hash: cols[2].to_owned(),
                origin: cols[3].to_owned(),
            }
        })
        .collect()
}

/// The iteration count the origin column states, read from the text the
/// generating script wrote (not from the hash string).
fn stated_iterations(origin: &str) -> u32 {
    for marker in [
        "iterations=",
        "rounds=",
        "pbkdf2:sha256:",
        "pbkdf2:sha1:",
        "pbkdf2:sha512:",
        "implied ",
        "HMAC-SHA1, ",
        "HMAC-SHA256, ",
        "HMAC-SHA512, ",
    ] {
        if let Some(at) = origin.find(marker) {
            let digits: String = origin[at + marker.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            return digits.parse().unwrap();
        }
    }
    panic!("no iteration count in {origin:?}");
}

/// The salt and hash lengths each origin writes.
fn stated_lengths(scheme: Scheme) -> (usize, usize) {
    match scheme {
        Scheme::DjangoPbkdf2Sha256 => (22, 32),
        Scheme::DjangoPbkdf2Sha1 => (22, 20),
        Scheme::WerkzeugPbkdf2Sha256 => (16, 32),
        Scheme::WerkzeugPbkdf2Sha1 => (16, 20),
        Scheme::WerkzeugPbkdf2Sha512 => (16, 64),
        Scheme::PasslibPbkdf2Sha1 => (16, 20),
        Scheme::PasslibPbkdf2Sha256 => (16, 32),
        Scheme::PasslibPbkdf2Sha512 => (16, 64),
        Scheme::AspnetIdentityV2 | Scheme::AspnetIdentityV3 => (16, 32),
        other => panic!("not a legacy scheme: {other}"),
    }
}

fn ab64_encode(bytes: &[u8]) -> String {
    Base64Unpadded::encode_string(bytes).replace('+', ".")
}

fn ab64_decode(s: &str) -> Vec<u8> {
    Base64Unpadded::decode_vec(&s.replace('.', "+")).unwrap()
}

/// The stored string with one bit of its hash (the derived key) flipped,
/// re-encoded in the scheme's own format so that it still parses.
fn flip_hash_bit(scheme: Scheme, stored: &str, bit: usize) -> String {
    let flip = |bytes: &mut Vec<u8>| {
        let i = bytes.len() - 1 - (bit / 8) % bytes.len();
        bytes[i] ^= 1 << (bit % 8);
    };
    let name = scheme.name();
    if name.starts_with("aspnet-identity-") {
        let mut blob = Base64::decode_vec(stored).unwrap();
        // The subkey is the blob's tail: flip within its last 16 bytes.
        let i = blob.len() - 1 - (bit / 8) % 16;
        blob[i] ^= 1 << (bit % 8);
        return Base64::encode_string(&blob);
    }
    let (head, encoded) = stored.rsplit_once('$').unwrap();
    let reencoded = if name.starts_with("django-") {
        let mut h = Base64::decode_vec(encoded).unwrap();
        flip(&mut h);
        Base64::encode_string(&h)
    } else if name.starts_with("werkzeug-") {
        let mut h = unhex(encoded);
        flip(&mut h);
        hex(&h)
    } else if name.starts_with("passlib-") {
        let mut h = ab64_decode(encoded);
        flip(&mut h);
        ab64_encode(&h)
    } else {
        panic!("{name}")
    };
    format!("{head}${reencoded}")
}

/// Every row of `tests/data/legacy/vectors.tsv` (real Django 5.2.19,
/// Werkzeug 3.1.9/2.0.3 and passlib 1.7.4 output, and ASP.NET Identity per
/// its documented layout): the right password verifies and is upgraded to
/// the current PHC form, which itself verifies; a wrong password and a
/// flipped hash bit are both mismatches.
#[test]
fn legacy_known_answers_accept_reject_and_upgrade() {
    let kw = kw_with(|p| p.iterations = 1_000);
    let mut ran = BTreeMap::<&str, usize>::new();
    for v in vectors() {
        let what = format!("{} {}", v.scheme, v.origin);
        let pw = Password::from_bytes(v.password.clone());

        let info = kw.passwords().inspect(&v.hash).unwrap();
        assert_eq!(info.scheme, v.scheme, "{what}");
        assert_eq!(info.iterations, stated_iterations(&v.origin), "{what}");
        assert_eq!(
            (info.salt_len, info.hash_len),
            stated_lengths(v.scheme),
            "{what}"
        );
        assert_eq!(info.pepper_id, None, "{what}");
        assert!(info.needs_rehash, "{what}: legacy is always upgraded");

        // Accept, and upgrade to the current PHC form.
        let verified = kw
            .passwords()
            .verify("user", &pw, &v.hash)
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(verified.scheme(), v.scheme, "{what}");
        assert_eq!(verified.old_hash(), v.hash, "{what}");
        let new = verified
            .rehash()
            .unwrap_or_else(|| panic!("{what}: no rehash"));
        assert!(
            new.starts_with("$pbkdf2-sha256$i=1000,l=32$"),
            "{what}: {new}"
        );
        let again = kw.passwords().verify("user", &pw, new).unwrap();
        assert_eq!(again.scheme(), Scheme::Pbkdf2Sha256);
        assert!(again.rehash().is_none(), "{what}: the upgrade is current");

        // Reject: one character appended to the password.
        let mut longer = v.password.clone();
        longer.push(b'!');
        let r = kw
            .passwords()
            .verify("user", &Password::from_bytes(longer), &v.hash);
        assert!(matches!(r, Err(Error::PasswordMismatch)), "{what}: {r:?}");

        // Reject: one bit of the stored hash flipped (still well-formed).
        let flipped = flip_hash_bit(v.scheme, &v.hash, 0);
        assert_ne!(flipped, v.hash);
        assert_eq!(kw.passwords().inspect(&flipped).unwrap().scheme, v.scheme);
        let r = kw.passwords().verify("user", &pw, &flipped);
        assert!(matches!(r, Err(Error::PasswordMismatch)), "{what}: {r:?}");

        *ran.entry(v.scheme.name()).or_default() += 1;
    }
    let expected: BTreeMap<&str, usize> = [
        ("django-pbkdf2-sha256", 7),
        ("django-pbkdf2-sha1", 6),
        ("werkzeug-pbkdf2-sha256", 6),
        ("werkzeug-pbkdf2-sha1", 4),
        ("werkzeug-pbkdf2-sha512", 4),
        ("passlib-pbkdf2-sha1", 4),
        ("passlib-pbkdf2-sha256", 4),
        ("passlib-pbkdf2-sha512", 4),
        ("aspnet-identity-v2", 3),
        ("aspnet-identity-v3", 6),
    ]
    .into_iter()
    .collect();
    assert_eq!(ran, expected);
    assert_eq!(ran.values().sum::<usize>(), 48, "all 48 rows ran");
}

/// Werkzeug's no-count form means 260,000 iterations (Werkzeug 2.0's
/// default), not Werkzeug 3.1's 1,000,000: the vectors were accepted by
/// Werkzeug 2.0.3 and would be refused by 3.1.9.
#[test]
fn werkzeug_no_count_form_means_260000() {
    assert_eq!(WERKZEUG_DEFAULT_ITERATIONS, 260_000);
    let kw = kw_with(|p| p.iterations = 1_000);
    let no_count: Vec<Vector> = vectors()
        .into_iter()
        .filter(|v| v.hash.starts_with("pbkdf2:sha256$"))
        .collect();
    assert_eq!(no_count.len(), 2);
    for v in &no_count {
        assert_eq!(kw.passwords().inspect(&v.hash).unwrap().iterations, 260_000);
        // The same salt and hash with the count written out verify too; with
        // Werkzeug 3.1's reading (1,000,000) they do not.
        let explicit = v
            .hash
            .replacen("pbkdf2:sha256$", "pbkdf2:sha256:260000$", 1);
        let pw = Password::from_bytes(v.password.clone());
        let verified = kw.passwords().verify("user", &pw, &explicit).unwrap();
        assert!(verified.rehash().is_some());
        let as_werkzeug_3 = v
            .hash
            .replacen("pbkdf2:sha256$", "pbkdf2:sha256:1000000$", 1);
        assert!(matches!(
            kw.passwords().verify("user", &pw, &as_werkzeug_3),
            Err(Error::PasswordMismatch)
        ));
    }
    // The implied count is still bounded by the policy.
    let tight = kw_with(|p| {
        p.iterations = 1_000;
        p.max_iterations = 200_000;
    });
    assert_eq!(
        tight
            .passwords()
            .inspect(&no_count[0].hash)
            .unwrap_err()
            .to_string(),
        Error::Hash(HashError::Iterations {
            found: 260_000,
            min: 1_000,
            max: 200_000
        })
        .to_string()
    );
}

/// Runs a Wycheproof PBKDF2 file through a core, and through `verify` in
/// every legacy format whose bounds the vector fits, with an accept and a
/// reject case each. Returns (through the core, through verify).
fn wycheproof_legacy(
    file: &str,
    expected: usize,
    core: Core,
    encoders: &[&Encoder],
) -> (usize, usize) {
    let doc = testing::wycheproof(file);
    let kw = kw_with(|p| {
        p.iterations = 1_000;
        p.min_iterations = 1;
    });
    let (mut ran, mut through_verify) = (0, 0);
    for (_, case) in testing::wycheproof_cases(&doc) {
        let id = &case["tcId"];
        let password = unhex(case["password"].as_str().unwrap());
        let salt = unhex(case["salt"].as_str().unwrap());
        let iterations = u32::try_from(case["iterationCount"].as_u64().unwrap()).unwrap();
        let dk = unhex(case["dk"].as_str().unwrap());
        assert_eq!(case["result"], "valid", "this file has only valid cases");
        let mut out = vec![0u8; usize::try_from(case["dkLen"].as_u64().unwrap()).unwrap()];
        core(&password, &salt, nz(iterations), &mut out);
        assert_eq!(hex(&out), hex(&dk), "tcId {id}");
        ran += 1;

        if iterations > kw.passwords().policy().max_iterations {
            continue;
        }
        for encode in encoders {
            let Some(stored) = encode(iterations, &salt, &dk) else {
                continue;
            };
            let v = kw
                .passwords()
                .verify("user", &Password::from_bytes(password.clone()), &stored);
            assert!(v.is_ok(), "tcId {id} accept {stored}: {v:?}");
            assert!(v.unwrap().rehash().is_some(), "tcId {id}");
            // HMAC zero-pads its key (RFC 2104 §2): "" and "\0" are the same
            // key, so an empty password gets a non-zero byte appended.
            let mut wrong = password.clone();
            match wrong.first_mut() {
                Some(b) => *b ^= 1,
                None => wrong.push(1),
            }
            let r = kw
                .passwords()
                .verify("user", &Password::from_bytes(wrong), &stored);
            assert!(
                matches!(r, Err(Error::PasswordMismatch)),
                "tcId {id} reject"
            );
            through_verify += 1;
        }
    }
    assert_eq!(ran, expected);
    (ran, through_verify)
}

fn passlib_encoder(
    ident: &'static str,
    digest_len: usize,
) -> impl Fn(u32, &[u8], &[u8]) -> Option<String> {
    move |iterations, salt, dk| {
        ((8..=64).contains(&salt.len()) && dk.len() == digest_len).then(|| {
            format!(
                "${ident}${iterations}${}${}",
                ab64_encode(salt),
                ab64_encode(dk)
            )
        })
    }
}

fn aspnet_v3(prf: u32, iterations: u32, salt: &[u8], subkey: &[u8]) -> String {
    let mut blob = vec![0x01];
    blob.extend_from_slice(&prf.to_be_bytes());
    blob.extend_from_slice(&iterations.to_be_bytes());
    blob.extend_from_slice(&u32::try_from(salt.len()).unwrap().to_be_bytes());
    blob.extend_from_slice(salt);
    blob.extend_from_slice(subkey);
    Base64::encode_string(&blob)
}

fn aspnet_v3_encoder(prf: u32) -> impl Fn(u32, &[u8], &[u8]) -> Option<String> {
    move |iterations, salt, dk| {
        ((16..=64).contains(&salt.len()) && (16..=64).contains(&dk.len()))
            .then(|| aspnet_v3(prf, iterations, salt, dk))
    }
}

/// Wycheproof PBKDF2-HMAC-SHA1: all 64 vectors through `pbkdf2_sha1`, the
/// core every SHA-1 legacy scheme uses, and those that fit a format's
/// bounds through `verify` as passlib and ASP.NET Identity v3 hashes.
#[test]
fn wycheproof_pbkdf2_hmacsha1() {
    let passlib = passlib_encoder("pbkdf2", 20);
    let aspnet = aspnet_v3_encoder(0);
    let (ran, through_verify) = wycheproof_legacy(
        "pbkdf2_hmacsha1_test.json",
        64,
        pbkdf2_sha1,
        &[&passlib, &aspnet],
    );
    println!(
        "wycheproof pbkdf2_hmacsha1: {ran} of 64 through the core, {through_verify} accept/reject pairs through verify"
    );
    assert!(through_verify > 0);
}

/// Wycheproof PBKDF2-HMAC-SHA512: all 58 vectors through `pbkdf2_sha512`,
/// and those that fit through `verify` as passlib and ASP.NET Identity v3.
#[test]
fn wycheproof_pbkdf2_hmacsha512() {
    let passlib = passlib_encoder("pbkdf2-sha512", 64);
    let aspnet = aspnet_v3_encoder(2);
    let (ran, through_verify) = wycheproof_legacy(
        "pbkdf2_hmacsha512_test.json",
        58,
        pbkdf2_sha512,
        &[&passlib, &aspnet],
    );
    println!(
        "wycheproof pbkdf2_hmacsha512: {ran} of 58 through the core, {through_verify} accept/reject pairs through verify"
    );
    assert!(through_verify > 0);
}

/// The first vector of each legacy scheme.
fn one_per_scheme() -> Vec<Vector> {
    let mut seen = Vec::new();
    vectors()
        .into_iter()
        .filter(|v| {
            let first = !seen.contains(&v.scheme);
            seen.push(v.scheme);
            first
        })
        .collect()
}

/// Each scheme can be turned off: its hashes are then refused with
/// `SchemeDisabled` before any work, whatever the password, while every
/// other scheme still verifies.
#[test]
fn disabled_schemes_are_refused_and_the_others_still_verify() {
    let samples = one_per_scheme();
    assert_eq!(samples.len(), 10);
    for off in Scheme::ALL.into_iter().filter(|s| s.is_legacy()) {
        let kw = kw_with(|p| {
            p.iterations = 1_000;
            p.disabled_schemes.insert(off);
        });
        for v in &samples {
            let pw = Password::from_bytes(v.password.clone());
            let r = kw.passwords().verify("user", &pw, &v.hash);
            if v.scheme == off {
                match r {
                    Err(Error::Hash(HashError::SchemeDisabled(name))) => {
                        assert_eq!(name, off.name());
                    }
                    other => panic!("{off}: {other:?}"),
                }
                assert_eq!(
                    kw.passwords()
                        .verify("user", &Password::from("wrong"), &v.hash)
                        .unwrap_err()
                        .to_string(),
                    format!("invalid password hash: scheme {off} is disabled by the policy")
                );
                assert!(matches!(
                    kw.passwords().inspect(&v.hash),
                    Err(Error::Hash(HashError::SchemeDisabled(_)))
                ));
            } else {
                let verified = r.unwrap_or_else(|e| panic!("{off} off, {}: {e}", v.scheme));
                assert!(verified.rehash().is_some());
            }
        }
    }

    // A disabled scheme is refused as soon as it is recognised, even when
    // the rest of the string is malformed.
    let kw = kw_with(|p| {
        p.disabled_schemes.insert(Scheme::DjangoPbkdf2Sha1);
    });
    assert!(matches!(
        kw.passwords().inspect("pbkdf2_sha1$0$x$y"),
        Err(Error::Hash(HashError::SchemeDisabled("django-pbkdf2-sha1")))
    ));

    // A whole family, and the PHC SHA-512 scheme, can be turned off too.
    let kw = kw_with(|p| {
        p.iterations = 1_000;
        p.disabled_schemes.extend(
            Scheme::ALL
                .into_iter()
                .filter(|s| s.name().starts_with("werkzeug-")),
        );
        p.disabled_schemes.insert(Scheme::Pbkdf2Sha512);
    });
    for v in &samples {
        let r = kw.passwords().inspect(&v.hash);
        assert_eq!(
            r.is_err(),
            v.scheme.name().starts_with("werkzeug-"),
            "{}",
            v.scheme
        );
    }
    let sha512 = "$pbkdf2-sha512$i=1000,l=64$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    assert!(matches!(
        kw.passwords().inspect(sha512),
        Err(Error::Hash(HashError::SchemeDisabled("pbkdf2-sha512")))
    ));
    // Nothing is off by default.
    assert!(PasswordPolicy::default().disabled_schemes.is_empty());

    // The scheme of new hashes cannot be turned off.
    let mut p = PasswordPolicy::default();
    p.disabled_schemes.insert(Scheme::Pbkdf2Sha256);
    assert!(matches!(
        Keyward::builder().password_policy(p).build(),
        Err(Error::Config(_))
    ));
}

#[test]
fn scheme_names_round_trip() {
    for s in Scheme::ALL {
        assert_eq!(Scheme::from_name(s.name()), Some(s));
        assert_eq!(s.to_string(), s.name());
        assert_eq!(s.is_legacy(), !s.name().starts_with("pbkdf2-"));
    }
    assert_eq!(Scheme::from_name("pbkdf2-sha1"), None);
    assert_eq!(Scheme::from_name("Django-pbkdf2-sha256"), None);
}

/// A string matching no scheme, or a scheme's prefix with a broken body, is
/// an error that names the problem; the message never repeats the string.
#[test]
fn unknown_and_ambiguous_strings_name_the_problem() {
    let kw = kw_with(|p| p.iterations = 1_000);
    let salt16 = ab64_encode(&[7u8; 16]);
    let h20 = ab64_encode(&[1u8; 20]);
    let h32 = ab64_encode(&[1u8; 32]);
    let b64_32 = Base64::encode_string(&[1u8; 32]);
    let hex32 = "ab".repeat(32);
    let it = |found: u64| HashError::Iterations {
        found,
        min: 1_000,
        max: 5_000_000,
    };
    let cases: Vec<(String, HashError)> = vec![
        // Nothing like any scheme.
        (String::new(), HashError::UnknownScheme),
        ("hunter2".into(), HashError::UnknownScheme),
        // bcrypt is imported (tests/imports.rs), but not its buggy $2x$.
        (
            "$2x$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW".into(),
            HashError::Unsupported(
                "bcrypt $2x$ (hashes made by crypt_blowfish's sign-extension bug)",
            ),
        ),
        (
            "argon2$argon2id$v=19$m=102400,t=2,p=8$c2FsdA$aGFzaA".into(),
            HashError::UnknownScheme,
        ),
        (
            "pbkdf2_sha512$1000$saltsaltsalt$aGFzaA==".into(),
            HashError::UnknownScheme,
        ),
        (
            format!("pbkdf2:md5:1000$saltsaltsalt${hex32}"),
            HashError::UnknownScheme,
        ),
        (
            format!("scrypt:32768:8:1$saltsaltsalt${hex32}"),
            HashError::UnknownScheme,
        ),
        (
            format!("$pbkdf2-sha1$1000${salt16}${h20}"),
            HashError::UnknownScheme,
        ),
        (
            format!(" pbkdf2_sha256$1000$saltsaltsalt${b64_32}"),
            HashError::UnknownScheme,
        ),
        // ASP.NET Identity's format byte is 0x00 or 0x01, nothing else.
        (Base64::encode_string(&[2u8; 49]), HashError::UnknownScheme),
        // PHC and passlib share `$pbkdf2-sha256$`: the second field decides.
        (
            format!("$pbkdf2-sha256$1000,l=32${salt16}${h32}"),
            HashError::BadParam("rounds"),
        ),
        (
            format!("$pbkdf2-sha256$x1000${salt16}${h32}"),
            HashError::Structure("parameter without '='"),
        ),
        (
            format!("$pbkdf2$i=1000,l=20${salt16}${h20}"),
            HashError::BadParam("rounds"),
        ),
        // Structure.
        (
            "pbkdf2_sha256$1000$saltsaltsalt".into(),
            HashError::Structure("missing hash"),
        ),
        (
            format!("pbkdf2_sha256$1000$saltsaltsalt${b64_32}$"),
            HashError::Structure("too many fields"),
        ),
        (
            "pbkdf2:sha256:1000".into(),
            HashError::Structure("missing salt"),
        ),
        ("pbkdf2:sha256".into(), HashError::Structure("missing salt")),
        (
            format!("$pbkdf2-sha256$1000${salt16}"),
            HashError::Structure("missing hash"),
        ),
        // Iteration counts, before any work.
        (format!("pbkdf2_sha256$0$saltsaltsalt${b64_32}"), it(0)),
        (
            format!("pbkdf2:sha256:4294967295$saltsaltsalt${hex32}"),
            it(4_294_967_295),
        ),
        (format!("$pbkdf2-sha256$999${salt16}${h32}"), it(999)),
        (aspnet_v3(1, 0, &[7; 16], &[1; 32]), it(0)),
        (
            aspnet_v3(1, u32::MAX, &[7; 16], &[1; 32]),
            it(4_294_967_295),
        ),
        (
            format!("pbkdf2_sha256$01000$saltsaltsalt${b64_32}"),
            HashError::BadParam("iterations"),
        ),
        (
            format!("pbkdf2:sha256:+1000$saltsaltsalt${hex32}"),
            HashError::BadParam("iterations"),
        ),
        (
            format!("pbkdf2:sha256:$saltsaltsalt${hex32}"),
            HashError::BadParam("iterations"),
        ),
        // Salts.
        (
            format!("pbkdf2_sha256$1000$seasalt${b64_32}"),
            HashError::SaltLength {
                found: 7,
                min: 8,
                max: 64,
            },
        ),
        (
            format!("pbkdf2:sha256:1000${}${hex32}", "s".repeat(65)),
            HashError::SaltLength {
                found: 65,
                min: 8,
                max: 64,
            },
        ),
        (
            format!("pbkdf2_sha256$1000$salt\tsalt${b64_32}"),
            HashError::Encoding("salt"),
        ),
        (
            format!("$pbkdf2-sha256$1000${}${h32}", ab64_encode(&[7; 4])),
            HashError::SaltLength {
                found: 4,
                min: 8,
                max: 64,
            },
        ),
        (
            aspnet_v3(1, 10_000, &[7; 8], &[1; 32]),
            HashError::SaltLength {
                found: 8,
                min: 16,
                max: 64,
            },
        ),
        // Hashes: wrong length or encoding.
        (
            format!(
                "pbkdf2_sha256$1000$saltsaltsalt${}",
                Base64::encode_string(&[1; 20])
            ),
            HashError::OutputLength {
                found: 20,
                min: 32,
                max: 32,
            },
        ),
        (
            format!(
                "pbkdf2_sha256$1000$saltsaltsalt${}",
                Base64Unpadded::encode_string(&[1; 32])
            ),
            HashError::Encoding("hash"),
        ),
        (
            format!("pbkdf2:sha1:1000$saltsaltsalt${hex32}"),
            HashError::OutputLength {
                found: 32,
                min: 20,
                max: 20,
            },
        ),
        (
            format!("pbkdf2:sha256:1000$saltsaltsalt${}", hex32.to_uppercase()),
            HashError::Encoding("hash"),
        ),
        (
            format!(
                "$pbkdf2-sha256$1000${salt16}${}",
                Base64Unpadded::encode_string(&[0xfb; 32])
            ),
            HashError::Encoding("hash"),
        ),
        (
            format!("$pbkdf2-sha256$1000${salt16}${h32}="),
            HashError::Encoding("hash"),
        ),
        (
            Base64::encode_string(&[0u8; 48]),
            HashError::Structure("aspnet identity v2 is not 49 bytes"),
        ),
        (
            aspnet_v3(3, 10_000, &[7; 16], &[1; 32]),
            HashError::BadParam("prf"),
        ),
        (
            aspnet_v3(1, 10_000, &[7; 16], &[1; 15]),
            HashError::OutputLength {
                found: 15,
                min: 16,
                max: 64,
            },
        ),
        (
            Base64::encode_string(&[1u8, 0, 0]),
            HashError::Structure("aspnet identity v3 header is truncated"),
        ),
        (
            Base64::encode_string(&[1u8, 0, 0, 0, 1, 0, 0, 0x27, 0x10, 0, 0, 0, 32, 7, 7]),
            HashError::Structure("aspnet identity v3 salt is truncated"),
        ),
        (
            "AQAAAAEAACcQAAAAE".into(),
            HashError::Encoding("aspnet identity base64"),
        ),
        (
            format!("{}A", "A".repeat(200)),
            HashError::Structure("aspnet identity hash is too long"),
        ),
    ];
    let pw = Password::from("correct horse");
    for (stored, want) in &cases {
        match kw.passwords().verify("user", &pw, stored) {
            Err(Error::Hash(got)) => assert_eq!(&got, want, "{stored:?}"),
            other => panic!("{stored:?}: {other:?}"),
        }
        let msg = kw.passwords().inspect(stored).unwrap_err().to_string();
        assert!(msg.starts_with("invalid password hash: "), "{msg}");
        assert!(stored.is_empty() || !msg.contains(stored.as_str()), "{msg}");
        assert!(!msg.contains("correct horse"), "{msg}");
    }

    // The same bytes are PHC with `i=` and passlib with a bare count.
    let phc = format!(
        "$pbkdf2-sha256$i=1000,l=32${}${}",
        Base64Unpadded::encode_string(&[7; 16]),
        Base64Unpadded::encode_string(&[1; 32])
    );
    let passlib = format!("$pbkdf2-sha256$1000${salt16}${h32}");
    assert_eq!(
        kw.passwords().inspect(&phc).unwrap().scheme,
        Scheme::Pbkdf2Sha256
    );
    assert_eq!(
        kw.passwords().inspect(&passlib).unwrap().scheme,
        Scheme::PasslibPbkdf2Sha256
    );
}

/// Builds one valid hash of every scheme (and both Werkzeug forms) for
/// `password`, at `iterations` where the format takes a count.
fn seeds(kw: &Keyward, password: &[u8], iterations: u32) -> Vec<(Scheme, String)> {
    let salt16: Vec<u8> = (1u8..=16).collect();
    let text_salt = "kwSeedSalt012345";
    let derive = |f: Core, salt: &[u8], it: u32, len: usize| {
        let mut out = vec![0u8; len];
        f(password, salt, nz(it), &mut out);
        out
    };
    let mut v = vec![
        (
            Scheme::Pbkdf2Sha256,
            kw.passwords()
                .hash(&Password::from_bytes(password.to_vec()))
                .unwrap(),
        ),
        (
            Scheme::Pbkdf2Sha512,
            format!(
                "$pbkdf2-sha512$i={iterations},l=64${}${}",
                Base64Unpadded::encode_string(&salt16),
                Base64Unpadded::encode_string(&derive(pbkdf2_sha512, &salt16, iterations, 64))
            ),
        ),
    ];
    let digests: [(Core, usize, &str); 3] = [
        (pbkdf2_sha1, 20, "sha1"),
        (pbkdf2_sha256, 32, "sha256"),
        (pbkdf2_sha512, 64, "sha512"),
    ];
    for (f, len, name) in digests {
        let passlib_ident = if name == "sha1" {
            "pbkdf2".to_owned()
        } else {
            format!("pbkdf2-{name}")
        };
        v.push((
            Scheme::from_name(&format!("passlib-pbkdf2-{name}")).unwrap(),
            format!(
                "${passlib_ident}${iterations}${}${}",
                ab64_encode(&salt16),
                ab64_encode(&derive(f, &salt16, iterations, len))
            ),
        ));
        v.push((
            Scheme::from_name(&format!("werkzeug-pbkdf2-{name}")).unwrap(),
            format!(
                "pbkdf2:{name}:{iterations}${text_salt}${}",
                hex(&derive(f, text_salt.as_bytes(), iterations, len))
            ),
        ));
        if name != "sha512" {
            v.push((
                Scheme::from_name(&format!("django-pbkdf2-{name}")).unwrap(),
                format!(
                    "pbkdf2_{name}${iterations}${text_salt}${}",
                    Base64::encode_string(&derive(f, text_salt.as_bytes(), iterations, len))
                ),
            ));
        }
    }
    v.push((
        Scheme::WerkzeugPbkdf2Sha256,
        format!(
            "pbkdf2:sha256${text_salt}${}",
            hex(&derive(pbkdf2_sha256, text_salt.as_bytes(), 260_000, 32))
        ),
    ));
    let mut v2 = vec![0x00];
    v2.extend_from_slice(&salt16);
    v2.extend_from_slice(&derive(pbkdf2_sha1, &salt16, 1_000, 32));
    v.push((Scheme::AspnetIdentityV2, Base64::encode_string(&v2)));
    for (prf, f) in [
        (0u32, pbkdf2_sha1 as Core),
        (1, pbkdf2_sha256),
        (2, pbkdf2_sha512),
    ] {
        v.push((
            Scheme::AspnetIdentityV3,
            aspnet_v3(
                prf,
                iterations,
                &salt16,
                &derive(f, &salt16, iterations, 32),
            ),
        ));
    }
    v
}

/// Every proper prefix of every scheme's hash is refused as malformed,
/// except ASP.NET Identity v3 cut at a whole byte with a subkey of 16 bytes
/// or more: that format takes the subkey length from the blob's length (as
/// ASP.NET does), and a PBKDF2 prefix is itself a valid PBKDF2 output.
#[test]
fn truncated_hashes_of_every_scheme_are_refused() {
    let kw = kw_with(|p| {
        p.iterations = 1;
        p.min_iterations = 1;
        p.max_iterations = 300_000;
    });
    let pw = b"seed password one";
    let password = Password::from_bytes(pw.to_vec());
    let seeds = seeds(&kw, pw, 2);
    assert_eq!(seeds.len(), 15);
    for (scheme, stored) in &seeds {
        let v = kw
            .passwords()
            .verify("user", &password, stored)
            .unwrap_or_else(|e| panic!("{scheme} seed {stored}: {e}"));
        assert_eq!(v.scheme(), *scheme);
        for cut in 0..stored.len() {
            let prefix = &stored[..cut];
            let r = kw.passwords().inspect(prefix);
            if *scheme == Scheme::AspnetIdentityV3
                && cut % 4 == 0
                && cut >= 4 * (13 + 16 + 16_usize).div_ceil(3)
            {
                // 13-byte header, 16-byte salt, a 16..=31-byte subkey prefix.
                assert!(r.is_ok(), "{prefix}");
                continue;
            }
            assert!(
                matches!(r, Err(Error::Hash(_))),
                "{scheme} cut at {cut}: {r:?}"
            );
        }
    }
}

/// 100,000 random and mutated hash strings seeded from every scheme through
/// `verify` and `inspect`: truncated, over-long, bad base64 and hex, and
/// iteration counts of 0 and 2^32-1 (in text, and in ASP.NET Identity's
/// binary fields). Each is a clear error (or a mismatch, or, for a mutation
/// that leaves the hash intact, a match), never a panic. Fixed seed.
#[test]
fn every_scheme_survives_100k_random_and_mutated_hashes() {
    let kw = kw_with(|p| {
        p.iterations = 1;
        p.min_iterations = 1;
        // Bounded so that a mutation that stays valid stays cheap.
        p.max_iterations = 2_000;
    });
    let pw = b"seed password one";
    let password = Password::from_bytes(pw.to_vec());
    let seeds = seeds(&kw, pw, 3);
    assert_eq!(seeds.len(), 15);
    let alphabet: Vec<char> = "$,=+/.:-_ 0123456789abcdefgiklpsxAQZ!\u{0}\r\n\u{7f}\u{ff}é日"
        .chars()
        .collect();
    let extremes = [
        "0",
        "4294967295",
        "4294967296",
        "18446744073709551615",
        "99999999999999999999",
        "-1",
        "",
    ];
    let mut rng = common::SplitMix(0x6c65_6761_6379_2133);
    let mut outcomes = BTreeMap::<(&str, &str), usize>::new();
    for n in 0..100_000 {
        let (origin, s) = if n % 10 == 0 {
            let len = rng.below(200);
            (
                "random",
                (0..len).map(|_| *rng.pick(&alphabet)).collect::<String>(),
            )
        } else {
            let (scheme, seed) = rng.pick(&seeds);
            (scheme.name(), mutate(&mut rng, seed, &alphabet, &extremes))
        };
        let outcome = match kw.passwords().verify("user", &password, &s) {
            Ok(_) => "ok",
            Err(Error::PasswordMismatch) => "mismatch",
            Err(Error::Hash(_)) => "malformed",
            Err(e) => panic!("unexpected error {e:?} for {s:?}"),
        };
        *outcomes.entry((origin, outcome)).or_default() += 1;
        assert_eq!(
            kw.passwords().inspect(&s).is_err(),
            outcome == "malformed",
            "{s:?}"
        );
    }
    println!("100,000 legacy hash strings: {outcomes:?}");
    let total = |outcome: &str| -> usize {
        outcomes
            .iter()
            .filter(|((_, o), _)| *o == outcome)
            .map(|(_, n)| n)
            .sum()
    };
    assert!(total("malformed") > 50_000, "{outcomes:?}");
    // Every scheme's seeds were mutated into errors, and some mutations of
    // each left a well-formed string that was verified for real. (bcrypt
    // and Argon2 have their own run in tests/imports.rs.)
    for scheme in Scheme::ALL
        .into_iter()
        .filter(|s| !matches!(s.name(), "bcrypt" | "argon2id" | "argon2i" | "argon2d"))
    {
        let malformed = outcomes
            .get(&(scheme.name(), "malformed"))
            .copied()
            .unwrap_or(0);
        assert!(malformed > 100, "{scheme}: {outcomes:?}");
    }
    assert!(total("mismatch") > 0 && total("ok") > 0, "{outcomes:?}");
}

/// The shared mutations, plus, one time in eight, a rewrite of the decoded
/// binary fields of an ASP.NET Identity blob.
fn mutate(rng: &mut common::SplitMix, seed: &str, alphabet: &[char], extremes: &[&str]) -> String {
    if rng.below(8) == 0
        && let Ok(mut blob) = Base64::decode_vec(seed)
    {
        mutate_blob(rng, &mut blob);
        return Base64::encode_string(&blob);
    }
    common::mutate(rng, seed, alphabet, extremes)
}

fn mutate_blob(rng: &mut common::SplitMix, blob: &mut Vec<u8>) {
    let extremes = [0u32, 1, 15, 16, 64, 65, 2_000, 2_001, u32::MAX];
    match rng.below(5) {
        // The v3 iteration count or salt length (bytes 5..9 and 9..13).
        0 | 1 => {
            let at = if rng.below(2) == 0 { 5 } else { 9 };
            if blob.len() >= at + 4 {
                blob[at..at + 4].copy_from_slice(&rng.pick(&extremes).to_be_bytes());
            }
        }
        2 => blob.truncate(rng.below(blob.len() + 1)),
        3 => {
            for _ in 0..rng.below(120) {
                blob.push(u8::try_from(rng.below(256)).unwrap());
            }
        }
        _ => {
            if !blob.is_empty() {
                let i = rng.below(blob.len());
                blob[i] = u8::try_from(rng.below(256)).unwrap();
            }
        }
    }
}

/// The work bound counts output blocks, for every scheme: a hash costs
/// `iterations × ceil(hash length / digest length)` PRF chains' worth, and
/// that must not exceed `max_iterations`. Only ASP.NET Identity hashes can
/// be longer than their digest (v3 takes the subkey length from the blob; v2
/// is a 32-byte HMAC-SHA1 subkey, 2 blocks); the Django, Werkzeug and
/// passlib forms are one digest long, so their bound is the iteration
/// count, as before. Refusals come before any hashing, as the iteration
/// bound's error, with the ceiling for the hash's shape.
#[test]
fn the_work_bound_counts_output_blocks_in_every_scheme() {
    let salt16: Vec<u8> = (1u8..=16).collect();
    let text_salt = "kwSeedSalt012345";
    let password = b"correct horse";
    let derive = |f: Core, salt: &[u8], it: u32, len: usize| {
        let mut out = vec![0u8; len];
        f(password, salt, nz(it), &mut out);
        out
    };

    // The default bound, 5,000,000, read by `inspect` (which never hashes):
    // an ASP.NET Identity v3 HMAC-SHA1 subkey of 64 bytes is 4 blocks, so
    // 1,250,001 iterations, under the count bound, are over the work bound.
    let kw = kw_with(|p| p.iterations = 1_000);
    let blob = |prf: u32, it: u32| aspnet_v3(prf, it, &salt16, &[7u8; 64]);
    let over = HashError::Iterations {
        found: 1_250_001,
        min: 1_000,
        max: 1_250_000,
    };
    assert_eq!(
        kw.passwords()
            .inspect(&blob(0, 1_250_000))
            .unwrap()
            .iterations,
        1_250_000
    );
    assert_eq!(
        kw.passwords()
            .inspect(&blob(0, 1_250_001))
            .unwrap_err()
            .to_string(),
        Error::Hash(over.clone()).to_string()
    );
    // verify refuses it the same way, without running 5,000,004 SHA-1 PRF
    // iterations (which today's main did, then answered "mismatch").
    match kw.passwords().verify(
        "user",
        &Password::from("anything at all"),
        &blob(0, 1_250_001),
    ) {
        Err(Error::Hash(got)) => assert_eq!(got, over),
        other => panic!("{other:?}"),
    }
    // HMAC-SHA256, 2 blocks; HMAC-SHA512, one.
    assert!(kw.passwords().inspect(&blob(1, 2_500_000)).is_ok());
    assert_eq!(
        kw.passwords()
            .inspect(&blob(1, 2_500_001))
            .unwrap_err()
            .to_string(),
        Error::Hash(HashError::Iterations {
            found: 2_500_001,
            min: 1_000,
            max: 2_500_000
        })
        .to_string()
    );
    assert!(kw.passwords().inspect(&blob(2, 5_000_000)).is_ok());
    // One-block forms keep the whole count bound.
    for stored in [
        format!(
            "pbkdf2_sha1$5000000${text_salt}${}",
            Base64::encode_string(&[1u8; 20])
        ),
        format!("pbkdf2:sha1:5000000${text_salt}${}", hex(&[1u8; 20])),
        format!(
            "$pbkdf2$5000000${}${}",
            ab64_encode(&salt16),
            ab64_encode(&[1u8; 20])
        ),
        aspnet_v3(0, 5_000_000, &salt16, &[7u8; 20]),
    ] {
        assert_eq!(
            kw.passwords().inspect(&stored).unwrap().iterations,
            5_000_000,
            "{stored}"
        );
    }

    // Real verification at the bound, with a small one: 4,000.
    let kw = kw_with(|p| {
        p.iterations = 1_000;
        p.min_iterations = 1;
        p.max_iterations = 4_000;
    });
    let pw = Password::from_bytes(password.to_vec());
    let ceiling = |found: u32, max: u32| HashError::Iterations {
        found: u64::from(found),
        min: 1,
        max,
    };
    // (PRF, its core, subkey length, ceiling): 4, 2 and 1 blocks.
    let shapes: [(u32, Core, usize, u32); 5] = [
        (0, pbkdf2_sha1, 64, 1_000),
        (0, pbkdf2_sha1, 21, 2_000),
        (1, pbkdf2_sha256, 64, 2_000),
        (1, pbkdf2_sha256, 32, 4_000),
        (2, pbkdf2_sha512, 64, 4_000),
    ];
    for (prf, f, len, max) in shapes {
        let at = aspnet_v3(prf, max, &salt16, &derive(f, &salt16, max, len));
        let v = kw.passwords().verify("user", &pw, &at);
        assert!(v.is_ok(), "prf {prf}, {len} bytes at {max}: {v:?}");
        let past = aspnet_v3(prf, max + 1, &salt16, &derive(f, &salt16, 1, len));
        match kw.passwords().verify("user", &pw, &past) {
            Err(Error::Hash(got)) => assert_eq!(got, ceiling(max + 1, max), "prf {prf}, {len}"),
            other => panic!("prf {prf}, {len} bytes at {}: {other:?}", max + 1),
        }
    }
    // ASP.NET Identity v2: 1,000 iterations of a 2-block subkey need 2,000.
    let mut v2 = vec![0x00];
    v2.extend_from_slice(&salt16);
    v2.extend_from_slice(&derive(pbkdf2_sha1, &salt16, 1_000, 32));
    let v2 = Base64::encode_string(&v2);
    for (max, ok) in [(2_000, true), (1_999, false)] {
        let kw = kw_with(|p| {
            p.iterations = 1_000;
            p.min_iterations = 1;
            p.max_iterations = max;
        });
        match kw.passwords().verify("user", &pw, &v2) {
            Ok(v) if ok => assert!(v.rehash().is_some()),
            Err(Error::Hash(got)) if !ok => assert_eq!(got, ceiling(1_000, 999)),
            other => panic!("max {max}: {other:?}"),
        }
    }
    // Django, Werkzeug and passlib hashes at the count bound still verify.
    let sha1 = derive(pbkdf2_sha1, text_salt.as_bytes(), 4_000, 20);
    for stored in [
        format!(
            "pbkdf2_sha1$4000${text_salt}${}",
            Base64::encode_string(&sha1)
        ),
        format!("pbkdf2:sha1:4000${text_salt}${}", hex(&sha1)),
        format!(
            "$pbkdf2$4000${}${}",
            ab64_encode(&salt16),
            ab64_encode(&derive(pbkdf2_sha1, &salt16, 4_000, 20))
        ),
    ] {
        assert!(
            kw.passwords().verify("user", &pw, &stored).is_ok(),
            "{stored}"
        );
    }
}
