//! `keyward verify`, `inspect` and `audit` on bcrypt and Argon2 hashes,
//! against the contract's scheme names (`bcrypt`, `argon2id`, `argon2i`,
//! `argon2d`).
#![allow(clippy::unwrap_used, clippy::panic, clippy::arithmetic_side_effects)]

mod common;

use common::cli::keyward;
use serde_json::json;

/// (scheme, password, hash) of the first vector whose hash starts with
/// `prefix`.
fn vector(prefix: &str) -> (String, Vec<u8>, String) {
    include_str!("data/imports/vectors.tsv")
        .lines()
        .skip(1)
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            (
                cols[0].to_owned(),
                common::unhex(cols[1]),
                cols[2].to_owned(),
            )
        })
        .find(|(_, _, hash)| hash.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix} vector"))
}

#[test]
fn verify_inspect_and_audit_name_bcrypt_and_argon2() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("keyward.toml"), "[password]\niterations = 1000\n").unwrap();

    let cases = [
        // prefix, scheme, rehash under the default policy, (iterations,
        // salt_len, hash_len)
        ("$2b$12$", "bcrypt", true, (4096, 16, 23)),
        ("$2a$10$", "bcrypt", true, (1024, 16, 23)),
        ("$2y$05$", "bcrypt", true, (32, 16, 23)),
        (
            "$argon2id$v=19$m=65536,t=3,p=4$",
            "argon2id",
            false,
            (3, 16, 32),
        ),
        (
            "$argon2i$v=19$m=65536,t=4,p=1$",
            "argon2i",
            false,
            (4, 16, 32),
        ),
        (
            "$argon2d$v=19$m=4096,t=2,p=2$",
            "argon2d",
            false,
            (2, 16, 32),
        ),
    ];
    let mut dump = Vec::new();
    for (prefix, scheme, rehash, (iterations, salt_len, hash_len)) in cases {
        let (name, password, hash) = vector(prefix);
        assert_eq!(name, scheme);
        dump.extend_from_slice(hash.as_bytes());
        dump.push(b'\n');

        let run = keyward(d, &["inspect", &hash], b"");
        assert_eq!(run.code, 0, "{prefix}: {}", run.stderr);
        assert_eq!(
            run.json(),
            json!({
                "scheme": scheme,
                "iterations": iterations,
                "salt_len": salt_len,
                "hash_len": hash_len,
                "needs_rehash": rehash,
            }),
            "{prefix}"
        );

        let mut stdin = password.clone();
        stdin.push(b'\n');
        let run = keyward(d, &["verify", &hash], &stdin);
        assert_eq!(run.code, 0, "{prefix}: {}", run.stderr);
        let out = run.json();
        assert_eq!(out["valid"], true, "{prefix}");
        assert_eq!(out["scheme"], scheme, "{prefix}");
        assert_eq!(out["needs_rehash"], rehash, "{prefix}");
        if rehash {
            let new_hash = out["new_hash"].as_str().unwrap();
            assert!(
                new_hash.starts_with("$pbkdf2-sha256$i=1000,l=32$"),
                "{new_hash}"
            );
            assert_eq!(
                keyward(d, &["verify", new_hash], &stdin).json()["valid"],
                true
            );
        } else {
            assert_eq!(out["new_hash"], serde_json::Value::Null, "{prefix}");
        }

        let mut wrong = password.clone();
        wrong.extend_from_slice(b"!\n");
        let run = keyward(d, &["verify", &hash], &wrong);
        assert_eq!(run.code, 1, "{prefix}: {}", run.stderr);
        assert_eq!(
            run.json(),
            json!({"valid": false, "scheme": scheme, "needs_rehash": rehash, "new_hash": null})
        );
    }

    // audit counts each scheme; an over-cost or unsupported line is
    // malformed.
    let (_, _, bcrypt) = vector("$2b$12$");
    dump.extend_from_slice(bcrypt.replacen("$12$", "$17$", 1).as_bytes());
    dump.push(b'\n');
    dump.extend_from_slice(bcrypt.replacen("$2b$", "$2x$", 1).as_bytes());
    dump.push(b'\n');
    let run = keyward(d, &["audit"], &dump);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.json(),
        json!({
            "total": 8,
            "needs_rehash": 3,
            "malformed": 2,
            "unverifiable": 0,
            "schemes": {"bcrypt": 3, "argon2id": 1, "argon2i": 1, "argon2d": 1},
        })
    );

    // With the upgrade on, Argon2 is due for a rehash too.
    std::fs::write(
        d.join("keyward.toml"),
        "[password]\niterations = 1000\nupgrade_argon2 = true\n",
    )
    .unwrap();
    let run = keyward(d, &["audit"], &dump);
    assert_eq!(run.json()["needs_rehash"], 6);
    let (_, password, argon2) = vector("$argon2id$");
    let mut stdin = password.clone();
    stdin.push(b'\n');
    let out = keyward(d, &["verify", &argon2], &stdin).json();
    assert_eq!(out["needs_rehash"], true);
    assert!(
        out["new_hash"]
            .as_str()
            .unwrap()
            .starts_with("$pbkdf2-sha256$i=1000,l=32$")
    );

    // Over-cost and unsupported hashes are bad input, with the reason.
    let err = keyward(d, &["verify", &bcrypt.replacen("$12$", "$31$", 1)], b"x\n");
    assert!(
        err.usage_error()
            .contains("parameter cost = 31 is outside the accepted range 4..=16"),
        "{}",
        err.stderr
    );
    let err = keyward(
        d,
        &["inspect", &argon2.replacen("m=65536", "m=4194304", 1)],
        b"",
    );
    assert!(
        err.usage_error().contains("parameter m = 4194304"),
        "{}",
        err.stderr
    );
    let err = keyward(d, &["inspect", &bcrypt.replacen("$2b$", "$2x$", 1)], b"");
    assert!(
        err.usage_error().contains("not supported"),
        "{}",
        err.stderr
    );

    // The new names can be disabled from the file.
    std::fs::write(
        d.join("keyward.toml"),
        "[password]\ndisabled_schemes = [\"bcrypt\", \"argon2d\"]\n",
    )
    .unwrap();
    let err = keyward(d, &["inspect", &bcrypt], b"");
    assert!(
        err.usage_error().contains("scheme bcrypt is disabled"),
        "{}",
        err.stderr
    );
    assert_eq!(
        keyward(d, &["inspect", &argon2], b"").json()["scheme"],
        "argon2id"
    );
}
