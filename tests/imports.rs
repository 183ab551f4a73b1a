//! Imported bcrypt and Argon2 hashes: known answers made fresh by the
//! origin libraries (tests/data/imports), the 72-byte and NUL rules of
//! bcrypt, the upgrade policy, the cost bounds, detection, and robustness.
#![allow(clippy::unwrap_used, clippy::panic, clippy::arithmetic_side_effects)]

mod common;

use std::collections::BTreeMap;

use base64ct::{Base64Unpadded, Encoding};
use keyward::password::{
    ARGON2_DEFAULT_MAX_MEMORY_KIB, ARGON2_MAX_MEMORY_CEILING_KIB, ARGON2_MAX_PARALLELISM,
    ARGON2_MAX_TIME, BCRYPT_MAX_COST, BCRYPT_MIN_COST,
};
use keyward::{Error, HashError, Keyward, Password, PasswordPolicy, Scheme};

use common::unhex;

const VECTORS: &str = include_str!("data/imports/vectors.tsv");

fn kw_with(f: impl FnOnce(&mut PasswordPolicy)) -> Keyward {
    let mut p = PasswordPolicy::default();
    p.iterations = 1_000;
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

impl Vector {
    fn password(&self) -> Password {
        Password::from_bytes(self.password.clone())
    }

    fn is_argon2(&self) -> bool {
        self.scheme != Scheme::Bcrypt
    }

    /// A number the origin column states, read from the text the generator
    /// wrote (not from the hash string).
    fn stated(&self, key: &str) -> u64 {
        let at = self
            .origin
            .find(&format!("{key}="))
            .unwrap_or_else(|| panic!("no {key}= in {:?}", self.origin));
        let digits: String = self.origin[at + key.len() + 1..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().unwrap()
    }
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

/// The vector whose origin contains `needle` and whose hash starts with
/// `prefix`; exactly one must.
fn vector(prefix: &str, needle: &str) -> Vector {
    let mut found: Vec<Vector> = vectors()
        .into_iter()
        .filter(|v| v.hash.starts_with(prefix) && v.origin.contains(needle))
        .collect();
    assert_eq!(found.len(), 1, "{prefix} {needle}");
    found.pop().unwrap()
}

/// bcrypt's base64 alphabet, in its order.
const BCRYPT_ALPHABET: &[u8] = b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// The stored string with a different hash (still well-formed): bcrypt's
/// character at `at` (counted from the end of its 31-character hash, never
/// the last one, whose low bits are unused) moved one place in the
/// alphabet; Argon2's hash with one bit flipped.
fn flip_hash(v: &Vector, at: usize) -> String {
    if v.scheme == Scheme::Bcrypt {
        let mut b = v.hash.clone().into_bytes();
        let i = b.len() - 2 - at % 30;
        let pos = BCRYPT_ALPHABET.iter().position(|&c| c == b[i]).unwrap();
        b[i] = BCRYPT_ALPHABET[(pos + 1) % 64];
        return String::from_utf8(b).unwrap();
    }
    let (head, encoded) = v.hash.rsplit_once('$').unwrap();
    let mut h = Base64Unpadded::decode_vec(encoded).unwrap();
    let i = h.len() - 1 - (at / 8) % h.len();
    h[i] ^= 1 << (at % 8);
    format!("{head}${}", Base64Unpadded::encode_string(&h))
}

/// Every vector verifies with its password, and is refused with a wrong one
/// and with a changed hash; `inspect` reads the parameters the origin
/// column states; the upgrade follows the policy: always for bcrypt, for
/// Argon2 only with `upgrade_argon2`, and the new hash is the current PHC
/// PBKDF2 string, which verifies without a further rehash.
#[test]
fn imported_known_answers_accept_reject_and_upgrade() {
    let keep = kw_with(|_| {});
    let upgrade = kw_with(|p| p.upgrade_argon2 = true);
    let mut ran = BTreeMap::<String, usize>::new();
    for v in vectors() {
        let what = format!("{} {} {}", v.scheme, v.hash, v.origin);
        let pw = v.password();

        for (kw, upgrades) in [(&keep, !v.is_argon2()), (&upgrade, true)] {
            let info = kw.passwords().inspect(&v.hash).unwrap();
            assert_eq!(info.scheme, v.scheme, "{what}");
            assert_eq!(info.pepper_id, None, "{what}");
            assert_eq!(info.needs_rehash, upgrades, "{what}");
            if v.is_argon2() {
                assert_eq!(u64::from(info.iterations), v.stated("time_cost"), "{what}");
                assert_eq!(
                    info.memory_kib.map(u64::from),
                    Some(v.stated("memory_cost"))
                );
                assert_eq!(
                    info.parallelism.map(u64::from),
                    Some(v.stated("parallelism"))
                );
                assert_eq!(
                    u64::try_from(info.salt_len).unwrap(),
                    v.stated("salt_len"),
                    "{what}"
                );
                assert_eq!(
                    u64::try_from(info.hash_len).unwrap(),
                    v.stated("hash_len"),
                    "{what}"
                );
            } else {
                assert_eq!(
                    u64::from(info.iterations),
                    1 << v.stated("rounds"),
                    "{what}"
                );
                assert_eq!((info.memory_kib, info.parallelism), (None, None));
                assert_eq!((info.salt_len, info.hash_len), (16, 23), "{what}");
            }

            let verified = kw
                .passwords()
                .verify("user", &pw, &v.hash)
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(verified.scheme(), v.scheme, "{what}");
            assert_eq!(verified.old_hash(), v.hash, "{what}");
            match verified.rehash() {
                Some(new) => {
                    assert!(upgrades, "{what}: a rehash against the policy");
                    assert!(
                        new.starts_with("$pbkdf2-sha256$i=1000,l=32$"),
                        "{what}: {new}"
                    );
                    let again = kw.passwords().verify("user", &pw, new).unwrap();
                    assert_eq!(again.scheme(), Scheme::Pbkdf2Sha256);
                    assert!(again.rehash().is_none(), "{what}: the upgrade is current");
                }
                None => assert!(!upgrades, "{what}: no rehash"),
            }
        }

        // Reject: a different password (different within bcrypt's first
        // 72 bytes).
        let mut other = v.password.clone();
        if other.len() >= 72 {
            other[0] ^= 1;
        } else {
            other.push(b'!');
        }
        let r = upgrade
            .passwords()
            .verify("user", &Password::from_bytes(other), &v.hash);
        assert!(matches!(r, Err(Error::PasswordMismatch)), "{what}: {r:?}");

        // Reject: a different hash, still well-formed.
        let flipped = flip_hash(&v, 3);
        assert_ne!(flipped, v.hash);
        assert_eq!(
            upgrade.passwords().inspect(&flipped).unwrap().scheme,
            v.scheme
        );
        let r = upgrade.passwords().verify("user", &pw, &flipped);
        assert!(matches!(r, Err(Error::PasswordMismatch)), "{what}: {r:?}");

        *ran.entry(v.hash[..v.hash[1..].find('$').unwrap() + 2].to_owned())
            .or_default() += 1;
    }
    let expected: BTreeMap<String, usize> = [
        ("$2a$", 5),
        ("$2b$", 11),
        ("$2y$", 5),
        ("$argon2id$", 9),
        ("$argon2i$", 3),
        ("$argon2d$", 2),
    ]
    .into_iter()
    .map(|(k, n)| (k.to_owned(), n))
    .collect();
    assert_eq!(ran, expected);
    assert_eq!(ran.values().sum::<usize>(), 35, "all 35 rows ran");
}

/// bcrypt reads the first 72 bytes of a password, as its origins did: a
/// password typed in full verifies against a hash of its first 72 bytes,
/// and so does anything sharing those bytes. The upgrade binds the whole
/// password as typed.
#[test]
fn bcrypt_reads_only_the_first_72_bytes() {
    let kw = kw_with(|_| {});
    let exactly: Vec<Vector> = vectors()
        .into_iter()
        .filter(|v| v.scheme == Scheme::Bcrypt && v.password.len() == 72)
        .collect();
    assert_eq!(exactly.len(), 2, "the 72-byte rows, $2b$ and $2y$");
    for v in &exactly {
        let mut longer = v.password.clone();
        longer.extend_from_slice(b"and then some");
        let longer = Password::from_bytes(longer);
        let verified = kw.passwords().verify("user", &longer, &v.hash).unwrap();
        let new = verified.rehash().unwrap().to_owned();
        // The new hash is of the whole password.
        let _ = kw.passwords().verify("user", &longer, &new).unwrap();
        assert!(matches!(
            kw.passwords().verify("user", &v.password(), &new),
            Err(Error::PasswordMismatch)
        ));
        // One byte fewer is a different password.
        let shorter = Password::from_bytes(v.password[..71].to_vec());
        assert!(matches!(
            kw.passwords().verify("user", &shorter, &v.hash),
            Err(Error::PasswordMismatch)
        ));
    }

    // Rows made from the first 72 bytes of a longer password: the whole
    // password and its first 72 bytes both verify, a change within them
    // does not.
    let over: Vec<Vector> = vectors()
        .into_iter()
        .filter(|v| v.scheme == Scheme::Bcrypt && v.password.len() > 72)
        .collect();
    assert_eq!(over.len(), 5, "73 bytes, 100 bytes (3 prefixes), 71 + é");
    for v in &over {
        assert!(v.origin.contains("hashpw(password[:72]"), "{}", v.origin);
        let _ = kw
            .passwords()
            .verify("user", &v.password(), &v.hash)
            .unwrap();
        let first72 = Password::from_bytes(v.password[..72].to_vec());
        let _ = kw.passwords().verify("user", &first72, &v.hash).unwrap();
        let mut changed = v.password.clone();
        changed[71] ^= 1;
        assert!(matches!(
            kw.passwords()
                .verify("user", &Password::from_bytes(changed), &v.hash),
            Err(Error::PasswordMismatch)
        ));
    }
    // The cut may split a UTF-8 character: it counts bytes.
    let split = over
        .iter()
        .find(|v| v.password.ends_with("é".as_bytes()))
        .unwrap();
    assert_eq!(split.password.len(), 73);
    assert!(std::str::from_utf8(&split.password[..72]).is_err());
}

/// A NUL byte is a password byte like any other, as pyca/bcrypt and the
/// bcrypt crate hash it: the password does not end there.
#[test]
fn bcrypt_and_argon2_use_every_byte_nul_included() {
    let kw = kw_with(|p| p.upgrade_argon2 = true);
    let rows: Vec<Vector> = vectors()
        .into_iter()
        .filter(|v| v.password == b"ab\0cd")
        .collect();
    assert_eq!(rows.len(), 2, "one bcrypt, one Argon2");
    for v in &rows {
        let _ = kw
            .passwords()
            .verify("user", &v.password(), &v.hash)
            .unwrap();
        for cut in [&b"ab"[..], b"ab\0", b"ab\0c"] {
            assert!(
                matches!(
                    kw.passwords()
                        .verify("user", &Password::from_bytes(cut.to_vec()), &v.hash),
                    Err(Error::PasswordMismatch)
                ),
                "{} {cut:?}",
                v.scheme
            );
        }
    }
}

/// The Argon2 upgrade is off by default and a policy switch; bcrypt is
/// always upgraded. The switch changes nothing else.
#[test]
fn the_argon2_upgrade_is_a_policy_choice_off_by_default() {
    assert!(!PasswordPolicy::default().upgrade_argon2);
    let default = Keyward::builder().build().unwrap();
    let argon2 = vector("$argon2id$", "PasswordHasher() defaults, RFC 9106");
    let bcrypt = vector("$2b$", "rounds=10))");
    let v = default
        .passwords()
        .verify("user", &argon2.password(), &argon2.hash)
        .unwrap();
    assert!(v.rehash().is_none());
    assert!(
        !default
            .passwords()
            .inspect(&argon2.hash)
            .unwrap()
            .needs_rehash
    );
    assert!(
        default
            .passwords()
            .inspect(&bcrypt.hash)
            .unwrap()
            .needs_rehash
    );

    let on = kw_with(|p| p.upgrade_argon2 = true);
    let v = on
        .passwords()
        .verify("user", &argon2.password(), &argon2.hash)
        .unwrap();
    assert!(
        v.rehash()
            .unwrap()
            .starts_with("$pbkdf2-sha256$i=1000,l=32$")
    );
    // A PHC hash below the policy is still rehashed with the switch off.
    let low = kw_with(|p| p.iterations = 1_000)
        .passwords()
        .hash(&Password::from("correct horse"))
        .unwrap();
    let v = kw_with(|p| p.iterations = 2_000)
        .passwords()
        .verify("user", &Password::from("correct horse"), &low)
        .unwrap();
    assert!(v.rehash().is_some());
}

/// The costs are bounded before any work: bcrypt's cost above 16, Argon2's
/// `m` above the policy's bound or under 8 KiB per lane, `t` above 10, `p`
/// above 64, are refused by `verify` and `inspect` with the bound. (The
/// time a refusal takes is measured by `benches/imports.rs`, not here.)
#[test]
fn over_cost_hashes_are_refused_before_any_work() {
    let kw = kw_with(|_| {});
    let pw = Password::from("correct horse battery staple");
    let cost = |param: &'static str, found: u64, min: u64, max: u64| HashError::Cost {
        param,
        found,
        min,
        max,
    };
    assert_eq!((BCRYPT_MIN_COST, BCRYPT_MAX_COST), (4, 16));
    assert_eq!((ARGON2_MAX_TIME, ARGON2_MAX_PARALLELISM), (10, 64));
    let bcrypt = vector("$2b$", "rounds=12))").hash;
    let argon2 = vector("$argon2id$", "PasswordHasher() defaults, RFC 9106").hash;
    let mut cases = vec![];
    for (rounds, found) in [("17", 17), ("20", 20), ("31", 31), ("99", 99), ("03", 3)] {
        cases.push((
            bcrypt.replacen("$12$", &format!("${rounds}$"), 1),
            cost("cost", found, 4, 16),
        ));
    }
    let max_m = u64::from(ARGON2_DEFAULT_MAX_MEMORY_KIB);
    for (params, want) in [
        ("m=262145,t=3,p=4", cost("m", 262_145, 32, max_m)),
        ("m=4194304,t=1,p=4", cost("m", 4_194_304, 32, max_m)),
        ("m=4294967295,t=1,p=1", cost("m", 4_294_967_295, 8, max_m)),
        (
            "m=9999999999999999999,t=1,p=1",
            cost("m", 9_999_999_999_999_999_999, 8, max_m),
        ),
        ("m=31,t=3,p=4", cost("m", 31, 32, max_m)),
        ("m=65536,t=11,p=4", cost("t", 11, 1, 10)),
        ("m=65536,t=4294967295,p=4", cost("t", 4_294_967_295, 1, 10)),
        ("m=65536,t=0,p=4", cost("t", 0, 1, 10)),
        ("m=65536,t=3,p=65", cost("p", 65, 1, 64)),
        ("m=65536,t=3,p=16777215", cost("p", 16_777_215, 1, 64)),
        ("m=65536,t=3,p=0", cost("p", 0, 1, 64)),
    ] {
        cases.push((argon2.replacen("m=65536,t=3,p=4", params, 1), want));
    }
    for (stored, want) in &cases {
        for r in [
            kw.passwords().verify("user", &pw, stored).map(|_| ()),
            kw.passwords().inspect(stored).map(|_| ()),
        ] {
            match r {
                Err(Error::Hash(e)) => assert_eq!(&e, want, "{stored}"),
                other => panic!("{stored}: {other:?}"),
            }
        }
    }
    assert_eq!(
        Error::Hash(cost("cost", 31, 4, 16)).to_string(),
        "invalid password hash: parameter cost = 31 is outside the accepted range 4..=16"
    );

    // The memory bound is the policy's: a lower one refuses the
    // argon2-cffi default, a higher one admits more.
    let tight = kw_with(|p| p.argon2_max_memory_kib = 65_535);
    assert_eq!(
        tight.passwords().inspect(&argon2).unwrap_err().to_string(),
        "invalid password hash: parameter m = 65536 is outside the accepted range 32..=65535"
    );
    let exact = kw_with(|p| p.argon2_max_memory_kib = 65_536);
    exact.passwords().inspect(&argon2).unwrap();
    let wide = kw_with(|p| p.argon2_max_memory_kib = ARGON2_MAX_MEMORY_CEILING_KIB);
    let big = argon2.replacen("m=65536", "m=2097152", 1);
    assert_eq!(
        wide.passwords().inspect(&big).unwrap().memory_kib,
        Some(2_097_152)
    );
    // The bound itself is checked when the Keyward is built.
    for bad in [0, 7, ARGON2_MAX_MEMORY_CEILING_KIB + 1, u32::MAX] {
        let mut p = PasswordPolicy::default();
        p.argon2_max_memory_kib = bad;
        match Keyward::builder().password_policy(p).build() {
            Err(Error::Config(msg)) => assert!(msg.contains("argon2_max_memory_kib"), "{msg}"),
            other => panic!("{bad}: {other:?}"),
        }
    }
}

/// Malformed strings of every new prefix are refused with the problem
/// named, never a panic, and never repeat the string.
#[test]
fn malformed_strings_are_refused_with_the_problem_named() {
    let kw = kw_with(|_| {});
    let bcrypt = vector("$2b$", "rounds=10))").hash;
    let argon2 = vector("$argon2id$", "OWASP minimum").hash;
    let (argon2_head, argon2_hash) = argon2.rsplit_once('$').unwrap();
    let mut last_salt_char = bcrypt.clone().into_bytes();
    // The salt's 22nd character carries 2 bits and 4 unused ones, which a
    // writer leaves clear; 'B', 3 in bcrypt's alphabet, sets them.
    last_salt_char[28] = b'B';
    let last_salt_char = String::from_utf8(last_salt_char).unwrap();
    let cases: Vec<(String, HashError)> = vec![
        (
            bcrypt.replacen("$2b$", "$2x$", 1),
            HashError::Unsupported(
                "bcrypt $2x$ (hashes made by crypt_blowfish's sign-extension bug)",
            ),
        ),
        (
            bcrypt.replacen("$2b$", "$2$", 1),
            HashError::Unsupported("bcrypt $2$ (the first OpenBSD version)"),
        ),
        (bcrypt.replacen("$2b$", "$2c$", 1), HashError::UnknownScheme),
        (bcrypt.replacen("$2b$", "$2B$", 1), HashError::UnknownScheme),
        (
            bcrypt.replacen("$10$", "$1a$", 1),
            HashError::BadParam("cost"),
        ),
        (
            bcrypt.replacen("$10$", "$10", 1),
            HashError::BadParam("cost"),
        ),
        (
            bcrypt[..59].to_owned(),
            HashError::Structure("bcrypt hash is not 60 characters"),
        ),
        (
            format!("{bcrypt}."),
            HashError::Structure("bcrypt hash is not 60 characters"),
        ),
        (
            format!("{}+", &bcrypt[..59]),
            HashError::Encoding("bcrypt salt and hash"),
        ),
        (
            format!("{}=", &bcrypt[..59]),
            HashError::Encoding("bcrypt salt and hash"),
        ),
        (
            format!("{}é", &bcrypt[..58]),
            HashError::Encoding("bcrypt salt and hash"),
        ),
        (
            last_salt_char.clone(),
            HashError::Encoding("bcrypt salt and hash"),
        ),
        (
            argon2.replacen("v=19$", "", 1),
            HashError::MissingParam("v"),
        ),
        (argon2.replacen("v=19", "v=20", 1), HashError::BadParam("v")),
        (
            argon2.replacen("v=19", "v=019", 1),
            HashError::BadParam("v"),
        ),
        (
            argon2.replacen("m=19456,t=2,p=1", "m=19456,t=2", 1),
            HashError::MissingParam("p"),
        ),
        (
            argon2.replacen("m=19456,t=2,p=1", "t=2,m=19456,p=1", 1),
            HashError::BadParam("parameters must be m, t, p in that order"),
        ),
        (
            argon2.replacen("p=1", "p=1,keyid=AAAA", 1),
            HashError::BadParam("unknown parameter"),
        ),
        (
            argon2.replacen("p=1", "p=1,data=AAAA", 1),
            HashError::BadParam("unknown parameter"),
        ),
        (
            argon2.replacen("m=19456", "m=+19456", 1),
            HashError::BadParam("m"),
        ),
        (
            argon2.replacen("t=2", "t", 1),
            HashError::Structure("parameter without '='"),
        ),
        (
            format!("{argon2}$"),
            HashError::Structure("too many fields"),
        ),
        (argon2_head.to_owned(), HashError::Structure("missing hash")),
        (
            format!("{argon2_head}${argon2_hash}="),
            HashError::Encoding("hash"),
        ),
        (
            format!("{argon2_head}${}", &argon2_hash[..20]),
            HashError::OutputLength {
                found: 15,
                min: 16,
                max: 64,
            },
        ),
        (
            format!(
                "$argon2id$v=19$m=19456,t=2,p=1${}${argon2_hash}",
                Base64Unpadded::encode_string(&[7; 7])
            ),
            HashError::SaltLength {
                found: 7,
                min: 8,
                max: 64,
            },
        ),
        (
            format!(
                "$argon2id$v=19$m=19456,t=2,p=1${}${argon2_hash}",
                Base64Unpadded::encode_string(&[7; 65])
            ),
            HashError::SaltLength {
                found: 65,
                min: 8,
                max: 64,
            },
        ),
        (format!("argon2{argon2}"), HashError::UnknownScheme),
        (
            argon2.replacen("$argon2id$", "$argon2$", 1),
            HashError::UnknownScheme,
        ),
    ];
    for (stored, want) in &cases {
        for r in [
            kw.passwords()
                .verify("user", &Password::from("hunter2"), stored)
                .map(|_| ()),
            kw.passwords().inspect(stored).map(|_| ()),
        ] {
            match r {
                Err(Error::Hash(e)) => {
                    assert_eq!(&e, want, "{stored}");
                    let msg = e.to_string();
                    let tail: String = stored.chars().rev().take(8).collect();
                    let tail: String = tail.chars().rev().collect();
                    assert!(!msg.contains(&tail), "{msg}");
                }
                other => panic!("{stored}: {other:?}"),
            }
        }
    }
}

/// Each prefix names its scheme, and each name its scheme.
#[test]
fn detection_and_names_of_every_prefix() {
    let kw = kw_with(|_| {});
    for (prefix, scheme) in [
        ("$2a$", Scheme::Bcrypt),
        ("$2b$", Scheme::Bcrypt),
        ("$2y$", Scheme::Bcrypt),
        ("$argon2id$", Scheme::Argon2id),
        ("$argon2i$", Scheme::Argon2i),
        ("$argon2d$", Scheme::Argon2d),
    ] {
        let rows: Vec<Vector> = vectors()
            .into_iter()
            .filter(|v| v.hash.starts_with(prefix))
            .collect();
        assert!(!rows.is_empty(), "{prefix}");
        for v in rows {
            assert_eq!(v.scheme, scheme);
            assert_eq!(kw.passwords().inspect(&v.hash).unwrap().scheme, scheme);
        }
    }
    for (name, scheme) in [
        ("bcrypt", Scheme::Bcrypt),
        ("argon2id", Scheme::Argon2id),
        ("argon2i", Scheme::Argon2i),
        ("argon2d", Scheme::Argon2d),
    ] {
        assert_eq!(scheme.name(), name);
        assert_eq!(Scheme::from_name(name), Some(scheme));
        assert!(scheme.is_legacy());
        assert!(Scheme::ALL.contains(&scheme));
    }
}

/// The new schemes can be turned off like the others; the rest still
/// verify.
#[test]
fn the_new_schemes_can_be_disabled() {
    let all = vectors();
    for off in [
        Scheme::Bcrypt,
        Scheme::Argon2id,
        Scheme::Argon2i,
        Scheme::Argon2d,
    ] {
        let kw = kw_with(|p| {
            p.disabled_schemes.insert(off);
        });
        for v in &all {
            let r = kw.passwords().inspect(&v.hash);
            if v.scheme == off {
                assert_eq!(
                    r.unwrap_err().to_string(),
                    format!("invalid password hash: scheme {off} is disabled by the policy")
                );
            } else {
                assert_eq!(r.unwrap().scheme, v.scheme);
            }
        }
        // Refused as soon as it is recognised, however the rest looks.
        let stub = if off == Scheme::Bcrypt {
            "$2y$99$".to_owned()
        } else {
            format!("${off}$v=0")
        };
        assert!(matches!(
            kw.passwords().verify("user", &Password::from("x"), &stub),
            Err(Error::Hash(HashError::SchemeDisabled(name))) if name == off.name()
        ));
    }
}

/// `verify_async` runs bcrypt and Argon2 on the blocking pool, as PBKDF2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_async_verify_runs_the_new_schemes() {
    let kw = kw_with(|p| {
        p.upgrade_argon2 = true;
        p.max_in_flight = 1;
    });
    for v in [
        vector("$argon2i$", "PHP 7.2"),
        vector("$2y$", "hashpw(password, gensalt(rounds=5))"),
    ] {
        let ok = kw
            .passwords()
            .verify_async("user", &v.password(), &v.hash)
            .await
            .unwrap();
        assert!(ok.rehash().is_some());
        let wrong = kw
            .passwords()
            .verify_async("user", &Password::from("wrong"), &v.hash)
            .await;
        assert!(matches!(wrong, Err(Error::PasswordMismatch)));
    }
}

/// 20,000 random and mutated strings seeded from bcrypt and Argon2 hashes:
/// each is a clear error, a mismatch or (a mutation that left it intact) a
/// match, never a panic, and `inspect` refuses exactly what `verify` calls
/// malformed. Strings whose cost stays valid but high are only inspected,
/// to keep the test quick. Fixed seed.
#[test]
fn new_schemes_survive_20k_random_and_mutated_hashes() {
    let kw = kw_with(|p| p.argon2_max_memory_kib = 1_024);
    let password = Password::from("seed password");
    // The cheap vectors: bcrypt at cost 4, Argon2 with at most 1 MiB.
    let seeds: Vec<(Scheme, String)> = vectors()
        .into_iter()
        .filter(|v| {
            ["$04$", "m=8,", "m=256,", "m=1024,"]
                .iter()
                .any(|cheap| v.hash.contains(cheap))
        })
        .map(|v| (v.scheme, v.hash))
        .collect();
    let schemes: std::collections::BTreeSet<Scheme> = seeds.iter().map(|s| s.0).collect();
    assert_eq!(schemes.len(), 4, "bcrypt and every Argon2: {seeds:?}");
    let alphabet: Vec<char> = "$,=+/.:-_ 0123456789abdimptvxyAZ!\u{0}\r\n\u{7f}é日"
        .chars()
        .collect();
    let extremes = [
        "0",
        "1",
        "4",
        "16",
        "17",
        "19",
        "31",
        "64",
        "65",
        "4294967295",
        "99999999999999999999",
        "",
    ];
    let mut rng = common::SplitMix(0x696d_706f_7274_7321);
    let mut outcomes = BTreeMap::<(&str, &str), usize>::new();
    for n in 0..20_000 {
        let (origin, s) = if n % 10 == 0 {
            let len = rng.below(120);
            let mut s: String = (0..len).map(|_| *rng.pick(&alphabet)).collect();
            let prefixes: [&str; 4] = ["$2b$", "$argon2id$v=19$", "$2y$04$", ""];
            let prefix: &&str = rng.pick(&prefixes);
            s.insert_str(0, prefix);
            ("random", s)
        } else {
            let (scheme, seed) = rng.pick(&seeds);
            (
                scheme.name(),
                common::mutate(&mut rng, seed, &alphabet, &extremes),
            )
        };
        let info = kw.passwords().inspect(&s);
        let cheap = match &info {
            Ok(i) if i.scheme == Scheme::Bcrypt => i.iterations <= 32,
            Ok(_) => true,
            Err(_) => true,
        };
        let outcome = if cheap {
            match kw.passwords().verify("user", &password, &s) {
                Ok(_) => "ok",
                Err(Error::PasswordMismatch) => "mismatch",
                Err(Error::Hash(_)) => "malformed",
                Err(e) => panic!("unexpected error {e:?} for {s:?}"),
            }
        } else {
            "inspected"
        };
        assert_eq!(info.is_err(), outcome == "malformed", "{s:?}");
        *outcomes.entry((origin, outcome)).or_default() += 1;
    }
    println!("20,000 bcrypt and Argon2 strings: {outcomes:?}");
    for scheme in &schemes {
        let count = |outcome| {
            outcomes
                .get(&(scheme.name(), outcome))
                .copied()
                .unwrap_or(0)
        };
        assert!(count("malformed") > 100, "{scheme}: {outcomes:?}");
        assert!(count("mismatch") > 0, "{scheme}: {outcomes:?}");
    }
}
