//! `Passwords::verify` under the default policy, for a PHC hash at the
//! default 600,000 iterations and for each imported scheme at the cost its
//! origin writes by default. Two groups:
//!
//! - `verify_correct`: a correct password, as at login. An imported hash
//!   (or a PHC SHA-512 one) is then rehashed to PHC SHA-256 at 600,000
//!   iterations inside `verify`, so its row is its own cost plus one
//!   current hash.
//! - `verify_wrong`: a wrong password: the scheme's cost alone.
//!
//! The PBKDF2 strings are built here with the `pbkdf2` crate, in each
//! origin's documented format, from fixed salts; the bcrypt and Argon2 ones
//! are rows of `tests/data/imports/vectors.tsv`, made by pyca/bcrypt and
//! argon2-cffi (bcrypt at cost 12, the default of Rails, Laravel and
//! Python; Argon2id at argon2-cffi's default; Argon2i at PHP's; Argon2d at
//! a small cost, as nothing defaults to it). An Argon2 hash is not rehashed
//! under the default policy. Before anything is timed,
//! each one must verify with the right password, under the expected scheme
//! and iteration count, and fail with a wrong one.
//!
//! Each row is a few hundred milliseconds at most, so the groups take 10
//! samples of one iteration each; the whole bench runs in about a minute.
//! `KEYWARD_BENCH_CLOCK=thread-cpu` measures the benchmarking thread's CPU
//! time instead of wall time (Linux only), as for `harness/benches/pbkdf2.rs`.
#![allow(missing_docs, clippy::unwrap_used, clippy::arithmetic_side_effects)]

#[macro_use]
mod support;

use std::hint::black_box;
use std::time::Duration;

use base64ct::{Base64, Base64Unpadded, Encoding};
use criterion::measurement::Measurement;
use criterion::{Criterion, SamplingMode};
use keyward::password::RECOMMENDED_ITERATIONS;
use keyward::{Error, Keyward, Password, Passwords, Scheme};
use pbkdf2::pbkdf2_hmac;
use sha1::Sha1;
use sha2::{Sha256, Sha512};

const PASSWORD: &str = "correct horse battery staple";

/// Django 5.2's `PBKDF2PasswordHasher.iterations`, which its SHA-1 hasher
/// inherits.
const DJANGO_ITERATIONS: u32 = 1_000_000;
/// Werkzeug 3.1's `DEFAULT_PBKDF2_ITERATIONS`, for `method="pbkdf2:<hash>"`.
const WERKZEUG_ITERATIONS: u32 = 1_000_000;
/// passlib 1.7's default rounds for `pbkdf2_sha1`, `pbkdf2_sha256` and
/// `pbkdf2_sha512`.
const PASSLIB_SHA1_ROUNDS: u32 = 131_000;
const PASSLIB_SHA256_ROUNDS: u32 = 29_000;
const PASSLIB_SHA512_ROUNDS: u32 = 25_000;
/// ASP.NET Core Identity: v2 is fixed at 1,000 (HMAC-SHA1); v3 defaults to
/// HMAC-SHA512 at 100,000 since .NET 7.
const ASPNET_V2_ITERATIONS: u32 = 1_000;
const ASPNET_V3_ITERATIONS: u32 = 100_000;
/// PBKDF2-HMAC-SHA512 in PHC form: OWASP's figure for SHA-512, the `pbkdf2`
/// crate's `RECOMMENDED_SHA512_ROUNDS`.
const PHC_SHA512_ITERATIONS: u32 = 210_000;

struct Case {
    label: String,
    scheme: Scheme,
    iterations: u32,
    stored: String,
}

fn derive<const N: usize>(
    f: fn(&[u8], &[u8], u32, &mut [u8]),
    salt: &[u8],
    iterations: u32,
) -> [u8; N] {
    let mut out = [0u8; N];
    f(PASSWORD.as_bytes(), salt, iterations, &mut out);
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// passlib's "adapted base64": standard alphabet, `.` for `+`, no padding.
fn ab64(bytes: &[u8]) -> String {
    Base64Unpadded::encode_string(bytes).replace('+', ".")
}

fn cases(passwords: &Passwords) -> Vec<Case> {
    let sha1 = pbkdf2_hmac::<Sha1>;
    let sha256 = pbkdf2_hmac::<Sha256>;
    let sha512 = pbkdf2_hmac::<Sha512>;
    // Django: 22 alphanumeric characters; Werkzeug: 16; the others take 16
    // raw bytes.
    let django_salt = "Qx7bK2mV9pL4sT8wN3cR6d";
    let werkzeug_salt = "h4Tn8Kq2Zr6Wb1Yc";
    let raw_salt: [u8; 16] = core::array::from_fn(|i| u8::try_from(i * 11 + 3).unwrap());

    let mut cases = Vec::new();
    let mut push = |label: &str, scheme, iterations, stored: String| {
        cases.push(Case {
            label: format!("{label} ({iterations})"),
            scheme,
            iterations,
            stored,
        });
    };

    let phc = passwords.hash(&Password::from(PASSWORD)).unwrap();
    push(
        "pbkdf2-sha256 (PHC, current)",
        Scheme::Pbkdf2Sha256,
        RECOMMENDED_ITERATIONS,
        phc,
    );
    let h: [u8; 64] = derive(sha512, &raw_salt, PHC_SHA512_ITERATIONS);
    push(
        "pbkdf2-sha512 (PHC)",
        Scheme::Pbkdf2Sha512,
        PHC_SHA512_ITERATIONS,
        format!(
            "$pbkdf2-sha512$i={PHC_SHA512_ITERATIONS},l=64${}${}",
            Base64Unpadded::encode_string(&raw_salt),
            Base64Unpadded::encode_string(&h)
        ),
    );

    let h: [u8; 32] = derive(sha256, django_salt.as_bytes(), DJANGO_ITERATIONS);
    push(
        "django-pbkdf2-sha256",
        Scheme::DjangoPbkdf2Sha256,
        DJANGO_ITERATIONS,
        format!(
            "pbkdf2_sha256${DJANGO_ITERATIONS}${django_salt}${}",
            Base64::encode_string(&h)
        ),
    );
    let h: [u8; 20] = derive(sha1, django_salt.as_bytes(), DJANGO_ITERATIONS);
    push(
        "django-pbkdf2-sha1",
        Scheme::DjangoPbkdf2Sha1,
        DJANGO_ITERATIONS,
        format!(
            "pbkdf2_sha1${DJANGO_ITERATIONS}${django_salt}${}",
            Base64::encode_string(&h)
        ),
    );

    let h: [u8; 32] = derive(sha256, werkzeug_salt.as_bytes(), WERKZEUG_ITERATIONS);
    push(
        "werkzeug-pbkdf2-sha256",
        Scheme::WerkzeugPbkdf2Sha256,
        WERKZEUG_ITERATIONS,
        format!(
            "pbkdf2:sha256:{WERKZEUG_ITERATIONS}${werkzeug_salt}${}",
            hex(&h)
        ),
    );
    let legacy = keyward::password::WERKZEUG_DEFAULT_ITERATIONS;
    let h: [u8; 32] = derive(sha256, werkzeug_salt.as_bytes(), legacy);
    push(
        "werkzeug-pbkdf2-sha256, no count (Werkzeug 2.0)",
        Scheme::WerkzeugPbkdf2Sha256,
        legacy,
        format!("pbkdf2:sha256${werkzeug_salt}${}", hex(&h)),
    );
    let h: [u8; 20] = derive(sha1, werkzeug_salt.as_bytes(), WERKZEUG_ITERATIONS);
    push(
        "werkzeug-pbkdf2-sha1",
        Scheme::WerkzeugPbkdf2Sha1,
        WERKZEUG_ITERATIONS,
        format!(
            "pbkdf2:sha1:{WERKZEUG_ITERATIONS}${werkzeug_salt}${}",
            hex(&h)
        ),
    );
    let h: [u8; 64] = derive(sha512, werkzeug_salt.as_bytes(), WERKZEUG_ITERATIONS);
    push(
        "werkzeug-pbkdf2-sha512",
        Scheme::WerkzeugPbkdf2Sha512,
        WERKZEUG_ITERATIONS,
        format!(
            "pbkdf2:sha512:{WERKZEUG_ITERATIONS}${werkzeug_salt}${}",
            hex(&h)
        ),
    );

    let h: [u8; 20] = derive(sha1, &raw_salt, PASSLIB_SHA1_ROUNDS);
    push(
        "passlib-pbkdf2-sha1",
        Scheme::PasslibPbkdf2Sha1,
        PASSLIB_SHA1_ROUNDS,
        format!(
            "$pbkdf2${PASSLIB_SHA1_ROUNDS}${}${}",
            ab64(&raw_salt),
            ab64(&h)
        ),
    );
    let h: [u8; 32] = derive(sha256, &raw_salt, PASSLIB_SHA256_ROUNDS);
    push(
        "passlib-pbkdf2-sha256",
        Scheme::PasslibPbkdf2Sha256,
        PASSLIB_SHA256_ROUNDS,
        format!(
            "$pbkdf2-sha256${PASSLIB_SHA256_ROUNDS}${}${}",
            ab64(&raw_salt),
            ab64(&h)
        ),
    );
    let h: [u8; 64] = derive(sha512, &raw_salt, PASSLIB_SHA512_ROUNDS);
    push(
        "passlib-pbkdf2-sha512",
        Scheme::PasslibPbkdf2Sha512,
        PASSLIB_SHA512_ROUNDS,
        format!(
            "$pbkdf2-sha512${PASSLIB_SHA512_ROUNDS}${}${}",
            ab64(&raw_salt),
            ab64(&h)
        ),
    );

    // ASP.NET Identity v2: 0x00 ‖ salt[16] ‖ subkey[32], HMAC-SHA1.
    let h: [u8; 32] = derive(sha1, &raw_salt, ASPNET_V2_ITERATIONS);
    let blob = [&[0x00][..], &raw_salt, &h].concat();
    push(
        "aspnet-identity-v2",
        Scheme::AspnetIdentityV2,
        ASPNET_V2_ITERATIONS,
        Base64::encode_string(&blob),
    );
    // v3: 0x01 ‖ prf ‖ iterations ‖ salt length (u32 big-endian) ‖ salt ‖
    // subkey; prf 2 is HMAC-SHA512.
    let h: [u8; 32] = derive(sha512, &raw_salt, ASPNET_V3_ITERATIONS);
    let blob = [
        &[0x01][..],
        &2u32.to_be_bytes(),
        &ASPNET_V3_ITERATIONS.to_be_bytes(),
        &16u32.to_be_bytes(),
        &raw_salt,
        &h,
    ]
    .concat();
    push(
        "aspnet-identity-v3, HMAC-SHA512",
        Scheme::AspnetIdentityV3,
        ASPNET_V3_ITERATIONS,
        Base64::encode_string(&blob),
    );
    for (prefix, label) in [
        ("$2b$12$", "bcrypt, cost 12, rounds"),
        (
            "$argon2id$v=19$m=65536,t=3,p=4$",
            "argon2id, m=65536 p=4, t",
        ),
        ("$argon2i$v=19$m=65536,t=4,p=1$", "argon2i, m=65536 p=1, t"),
        ("$argon2d$v=19$m=4096,t=2,p=2$", "argon2d, m=4096 p=2, t"),
    ] {
        let hash = imported_vector(prefix);
        let info = passwords.inspect(&hash).unwrap();
        push(label, info.scheme, info.iterations, hash);
    }
    cases
}

/// The hash of the first row of the imported vectors whose hash starts
/// with `prefix` and whose password is [`PASSWORD`].
fn imported_vector(prefix: &str) -> String {
    let password_hex = hex(PASSWORD.as_bytes());
    include_str!("../../tests/data/imports/vectors.tsv")
        .lines()
        .map(|line| line.split('\t').collect::<Vec<_>>())
        .find(|cols| cols[1] == password_hex && cols[2].starts_with(prefix))
        .map(|cols| cols[2].to_owned())
        .unwrap()
}

fn verify<M: Measurement>(c: &mut Criterion<M>) {
    let kw = Keyward::builder().build().unwrap();
    let passwords = kw.passwords();
    let right = Password::from(PASSWORD);
    let wrong = Password::from("correct horse battery stapler");
    let cases = cases(passwords);

    // Every stored string is what it claims, before anything is timed.
    let covered: Vec<Scheme> = cases.iter().map(|c| c.scheme).collect();
    for scheme in Scheme::ALL {
        assert!(covered.contains(&scheme), "no case for {scheme}");
    }
    for case in &cases {
        let info = passwords.inspect(&case.stored).unwrap();
        assert_eq!(
            (info.scheme, info.iterations),
            (case.scheme, case.iterations),
            "{}",
            case.label
        );
        let verified = passwords.verify("user", &right, &case.stored).unwrap();
        assert_eq!(verified.scheme(), case.scheme, "{}", case.label);
        let argon2 = matches!(
            case.scheme,
            Scheme::Argon2id | Scheme::Argon2i | Scheme::Argon2d
        );
        assert_eq!(
            verified.rehash().is_some(),
            case.scheme != Scheme::Pbkdf2Sha256 && !argon2,
            "{}",
            case.label
        );
        assert!(
            matches!(
                passwords.verify("user", &wrong, &case.stored),
                Err(Error::PasswordMismatch)
            ),
            "{}",
            case.label
        );
    }

    for (group, password, correct) in [
        ("verify_correct", &right, true),
        ("verify_wrong", &wrong, false),
    ] {
        let mut g = c.benchmark_group(group);
        g.sampling_mode(SamplingMode::Flat);
        g.sample_size(10);
        g.warm_up_time(Duration::from_millis(500));
        g.measurement_time(Duration::from_secs(1));
        for case in &cases {
            g.bench_function(&case.label, |b| {
                b.iter(|| {
                    let result =
                        passwords.verify("user", black_box(password), black_box(&case.stored));
                    assert_eq!(result.is_ok(), correct);
                    result
                });
            });
        }
        g.finish();
    }
}

clock_main!(verify);
