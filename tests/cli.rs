//! The `keyward` binary, end to end, against the contract in the README.
#![allow(clippy::unwrap_used, clippy::panic, clippy::arithmetic_side_effects)]

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use common::cli::{Run, keyward};

use sha2::{Digest, Sha256};

#[test]
fn init_writes_a_private_keyring_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let run = keyward(dir.path(), &["init"], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let out = run.json();
    assert_eq!(out["keyring"], "keyward.keys");
    assert_eq!(out["alg"], "EdDSA");
    assert!(out["kid"].as_str().unwrap().len() >= 8);
    let path = dir.path().join("keyward.keys");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let before = std::fs::read(&path).unwrap();
    let again = keyward(dir.path(), &["init"], b"");
    assert!(again.usage_error().contains("exists"), "{}", again.stderr);
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the key ring is untouched"
    );

    for alg in ["HS256", "ES256"] {
        let run = keyward(
            dir.path(),
            &["--keyring", &format!("{alg}.keys"), "init", "--alg", alg],
            b"",
        );
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(run.json()["alg"], alg);
        assert_eq!(run.json()["keyring"], format!("{alg}.keys"));
    }
    keyward(dir.path(), &["init", "--alg", "RS256"], b"").usage_error();
}

#[test]
fn hash_verify_inspect_rows() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // hash: the bare PHC string.
    let run = keyward(d, &["hash", "--iterations", "1000"], b"correct horse\n");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let low = run.line().to_owned();
    assert!(low.starts_with("$pbkdf2-sha256$i=1000,l=32$"), "{low}");
    let run = keyward(d, &["hash"], b"correct horse\n");
    let current = run.line().to_owned();
    assert!(
        current.starts_with("$pbkdf2-sha256$i=600000,l=32$"),
        "{current}"
    );

    // verify: valid and current.
    let run = keyward(d, &["verify", &current], b"correct horse\n");
    assert_eq!(run.code, 0);
    assert_eq!(
        run.json(),
        serde_json::json!({"valid": true, "scheme": "pbkdf2-sha256", "needs_rehash": false, "new_hash": null})
    );
    // verify: valid and due for a rehash, which is returned.
    let run = keyward(d, &["verify", &low], b"correct horse\n");
    assert_eq!(run.code, 0);
    let out = run.json();
    assert_eq!(out["valid"], true);
    assert_eq!(out["needs_rehash"], true);
    let new_hash = out["new_hash"].as_str().unwrap();
    assert!(new_hash.starts_with("$pbkdf2-sha256$i=600000,l=32$"));
    assert_eq!(keyward(d, &["verify", new_hash], b"correct horse").code, 0);
    // verify: invalid, exit 1 with a JSON reason and no new hash.
    let run = keyward(d, &["verify", &low], b"correct horsE\n");
    assert_eq!(run.code, 1);
    assert_eq!(run.json()["valid"], false);
    assert_eq!(run.json()["new_hash"], serde_json::Value::Null);
    // verify: malformed, exit 2.
    let err = keyward(
        d,
        &["verify", "$pbkdf2-sha256$i=1000$c2FsdHNhbHQ$AAAA"],
        b"x\n",
    );
    assert!(
        err.usage_error().contains("i=") || err.stderr.contains("l"),
        "{}",
        err.stderr
    );
    keyward(
        d,
        &["verify", "$pbkdf2-sha256$i=999,l=32$c2FsdHNhbHQ$AAAA"],
        b"x\n",
    )
    .usage_error();

    // inspect.
    let run = keyward(d, &["inspect", &low], b"");
    assert_eq!(run.code, 0);
    assert_eq!(
        run.json(),
        serde_json::json!({"scheme": "pbkdf2-sha256", "iterations": 1000, "salt_len": 16, "hash_len": 32, "needs_rehash": true})
    );
    assert_eq!(
        keyward(d, &["inspect", &current], b"").json()["needs_rehash"],
        false
    );
    let err = keyward(d, &["inspect", "not a hash"], b"");
    assert!(
        err.usage_error().contains("no supported scheme"),
        "{}",
        err.stderr
    );
}

/// Exactly one trailing `\n` or `\r\n` is removed; every other byte counts.
#[test]
fn stdin_loses_exactly_one_line_ending() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let stored = keyward(d, &["hash", "--iterations", "1000"], b"pass word \n")
        .line()
        .to_owned();
    assert_eq!(keyward(d, &["verify", &stored], b"pass word ").code, 0);
    assert_eq!(keyward(d, &["verify", &stored], b"pass word \r\n").code, 0);
    assert_eq!(keyward(d, &["verify", &stored], b"pass word \n\n").code, 1);
    assert_eq!(keyward(d, &["verify", &stored], b"pass word").code, 1);
    assert_eq!(keyward(d, &["verify", &stored], b"pass word \r").code, 1);
}

#[test]
fn bad_input_and_usage_exit_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(
        keyward(d, &["--bogus", "inspect", "x"], b"")
            .usage_error()
            .contains("--bogus")
    );
    keyward(d, &["frobnicate"], b"").usage_error();
    // A missing argument is named on the one line.
    assert!(
        keyward(d, &["verify"], b"")
            .usage_error()
            .contains("<HASH>")
    );
    assert!(
        keyward(d, &["hash"], b"short\n")
            .usage_error()
            .contains("shorter than 8")
    );
    let long = vec![b'a'; 2000];
    assert!(
        keyward(d, &["hash"], &long)
            .usage_error()
            .contains("longer than 1024")
    );
    // A key ring named explicitly must exist.
    assert!(
        keyward(d, &["--keyring", "missing.keys", "hash"], b"correct horse")
            .usage_error()
            .contains("missing.keys")
    );
    // A config file named explicitly must exist.
    keyward(d, &["--config", "missing.toml", "hash"], b"correct horse").usage_error();
    // Help is not an error.
    assert_eq!(keyward(d, &["--help"], b"").code, 0);
}

#[test]
fn config_file_sets_policy_and_rejects_unknown_keys() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("keyward.toml"),
        "[password]\niterations = 2000\nmin_length = 4\n",
    )
    .unwrap();
    let stored = keyward(d, &["hash"], b"four\n").line().to_owned();
    assert!(
        stored.starts_with("$pbkdf2-sha256$i=2000,l=32$"),
        "{stored}"
    );
    let low = keyward(d, &["hash", "--iterations", "1000"], b"four\n")
        .line()
        .to_owned();
    assert_eq!(
        keyward(d, &["inspect", &low], b"").json()["needs_rehash"],
        true
    );

    std::fs::write(d.join("keyward.toml"), "[password]\niteration = 2000\n").unwrap();
    assert!(
        keyward(d, &["hash"], b"correct horse\n")
            .usage_error()
            .contains("iteration")
    );
    std::fs::write(d.join("other.toml"), "[passwords]\niterations = 2000\n").unwrap();
    keyward(d, &["--config", "other.toml", "hash"], b"correct horse\n").usage_error();
    std::fs::write(d.join("other.toml"), "[password]\niterations = 10\n").unwrap();
    assert!(
        keyward(d, &["--config", "other.toml", "hash"], b"correct horse\n")
            .usage_error()
            .contains("iterations")
    );
}

/// With a peppered key ring, new hashes carry the pepper id, and verify
/// needs the key ring.
#[test]
fn peppered_keyring_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(keyward(d, &["init", "--pepper"], b"").code, 0);
    let stored = keyward(d, &["hash", "--iterations", "1000"], b"correct horse\n")
        .line()
        .to_owned();
    assert!(stored.contains(",k="), "{stored}");
    assert_eq!(keyward(d, &["verify", &stored], b"correct horse\n").code, 0);
    assert_eq!(keyward(d, &["verify", &stored], b"correct horsf\n").code, 1);
    std::fs::rename(d.join("keyward.keys"), d.join("elsewhere.keys")).unwrap();
    assert!(
        keyward(d, &["verify", &stored], b"correct horse\n")
            .usage_error()
            .contains("pepper")
    );
    assert_eq!(
        keyward(
            d,
            &["--keyring", "elsewhere.keys", "verify", &stored],
            b"correct horse\n"
        )
        .code,
        0
    );
}

/// An empty `--sub` is bad input: exit 2, with the bound named on stderr.
#[test]
fn jwt_issue_refuses_an_empty_subject() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(keyward(d, &["init"], b"").code, 0);
    let run = keyward(d, &["jwt", "issue", "--sub", ""], b"");
    assert_eq!(
        run.usage_error(),
        "keyward: subject and session id must not be empty"
    );
    assert!(run.stdout.is_empty(), "{:?}", run.stdout);
    let run = keyward(d, &["jwt", "issue", "--sub", "a"], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn jwt_issue_verify_jwks_rows() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(keyward(d, &["init"], b"").code, 0);

    let run = keyward(d, &["jwt", "issue", "--sub", "alice"], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let token = run.line().to_owned();
    assert_eq!(token.matches('.').count(), 2);

    let run = keyward(d, &["jwt", "verify"], format!("{token}\n").as_bytes());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let claims = run.json();
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["iss"], "keyward");
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        900
    );
    for c in ["jti", "sid", "aud"] {
        assert!(!claims[c].is_null(), "{c}");
    }

    // --ttl sets the lifetime.
    let short = keyward(d, &["jwt", "issue", "--sub", "bob", "--ttl", "60"], b"")
        .line()
        .to_owned();
    let c = keyward(d, &["jwt", "verify"], short.as_bytes()).json();
    assert_eq!(c["exp"].as_u64().unwrap() - c["iat"].as_u64().unwrap(), 60);

    // A rejected token: exit 1 with the reason.
    std::fs::write(d.join("keyward.toml"), "[jwt]\naudience = \"billing\"\n").unwrap();
    let run = keyward(d, &["jwt", "verify"], token.as_bytes());
    assert_eq!(run.code, 1);
    assert_eq!(run.json(), serde_json::json!({"error": "wrong_audience"}));
    std::fs::write(d.join("keyward.toml"), "[jwt]\nissuer = \"someone-else\"\n").unwrap();
    assert_eq!(
        keyward(d, &["jwt", "verify"], token.as_bytes()).json()["error"],
        "wrong_issuer"
    );
    std::fs::remove_file(d.join("keyward.toml")).unwrap();

    // A token from another key ring: unknown key.
    assert_eq!(
        keyward(d, &["--keyring", "other.keys", "init"], b"").code,
        0
    );
    let run = keyward(
        d,
        &["--keyring", "other.keys", "jwt", "verify"],
        token.as_bytes(),
    );
    assert_eq!(run.code, 1);
    assert_eq!(run.json()["error"], "unknown_key");

    // Not a JWT at all: exit 2, and the input is not echoed.
    let err = keyward(d, &["jwt", "verify"], b"not-a-jwt-secret-ish\n");
    assert!(!err.usage_error().contains("secret-ish"));
    keyward(d, &["jwt", "verify"], b"a.b\n").usage_error();

    // JWKS: the public key; none for an HS256-only key ring.
    let jwks = keyward(d, &["jwt", "jwks"], b"").json();
    assert_eq!(jwks["keys"][0]["kty"], "OKP");
    assert!(jwks["keys"][0].get("d").is_none());
    assert_eq!(
        keyward(d, &["--keyring", "hs.keys", "init", "--alg", "HS256"], b"").code,
        0
    );
    assert_eq!(
        keyward(d, &["--keyring", "hs.keys", "jwt", "jwks"], b"").json(),
        serde_json::json!({"keys": []})
    );

    // No key ring: exit 2 naming it; a leeway above 30 s in config is refused.
    keyward(d, &["--keyring", "absent.keys", "jwt", "jwks"], b"").usage_error();
    std::fs::write(d.join("keyward.toml"), "[jwt]\nleeway_secs = 120\n").unwrap();
    assert!(
        keyward(d, &["jwt", "jwks"], b"")
            .usage_error()
            .contains("leeway")
    );
}

/// Runs `keyward` with stdin read from a file, as an operator would pipe a
/// dump.
fn keyward_from_file(dir: &Path, args: &[&str], stdin: &Path) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_keyward"))
        .args(args)
        .current_dir(dir)
        .env_remove("KEYWARD_KEYRING")
        .env_remove("KEYWARD_STORE")
        .stdin(Stdio::from(std::fs::File::open(stdin).unwrap()))
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// (scheme, password, hash) for every row of the legacy vectors.
fn legacy_vectors() -> Vec<(String, Vec<u8>, String)> {
    include_str!("data/legacy/vectors.tsv")
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
        .collect()
}

#[test]
fn verify_and_inspect_accept_every_legacy_scheme() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("keyward.toml"), "[password]\niterations = 1000\n").unwrap();
    let expected_lengths = |scheme: &str| match scheme {
        "django-pbkdf2-sha256" => (22, 32),
        "django-pbkdf2-sha1" => (22, 20),
        "werkzeug-pbkdf2-sha1" | "passlib-pbkdf2-sha1" => (16, 20),
        "werkzeug-pbkdf2-sha512" | "passlib-pbkdf2-sha512" => (16, 64),
        _ => (16, 32),
    };
    let mut seen = Vec::new();
    for (scheme, password, hash) in legacy_vectors() {
        if seen.contains(&scheme) {
            continue;
        }
        seen.push(scheme.clone());
        let run = keyward(d, &["inspect", &hash], b"");
        assert_eq!(run.code, 0, "{scheme}: {}", run.stderr);
        let info = run.json();
        assert_eq!(info["scheme"], scheme.as_str());
        assert_eq!(info["needs_rehash"], true);
        let (salt_len, hash_len) = expected_lengths(&scheme);
        assert_eq!(
            (info["salt_len"].as_u64(), info["hash_len"].as_u64()),
            (Some(salt_len), Some(hash_len)),
            "{scheme}"
        );
        assert_eq!(info.as_object().unwrap().len(), 5, "{info}");

        let mut stdin = password.clone();
        stdin.push(b'\n');
        let run = keyward(d, &["verify", &hash], &stdin);
        assert_eq!(run.code, 0, "{scheme}: {}", run.stderr);
        let out = run.json();
        assert_eq!(out["valid"], true);
        assert_eq!(out["scheme"], scheme.as_str());
        assert_eq!(out["needs_rehash"], true);
        let new_hash = out["new_hash"].as_str().unwrap().to_owned();
        assert!(
            new_hash.starts_with("$pbkdf2-sha256$i=1000,l=32$"),
            "{new_hash}"
        );
        assert_eq!(
            keyward(d, &["verify", &new_hash], &stdin).json(),
            serde_json::json!({"valid": true, "scheme": "pbkdf2-sha256", "needs_rehash": false, "new_hash": null})
        );

        let mut wrong = password.clone();
        wrong.extend_from_slice(b"!\n");
        let run = keyward(d, &["verify", &hash], &wrong);
        assert_eq!(run.code, 1, "{scheme}");
        assert_eq!(
            run.json(),
            serde_json::json!({"valid": false, "scheme": scheme, "needs_rehash": true, "new_hash": null})
        );
    }
    assert_eq!(seen.len(), 10);

    // Strings of no scheme are bad input, with the reason.
    for bad in [
        "pbkdf2_sha512$1000$saltsaltsalt$aGFzaA==",
        "$pbkdf2-sha1$1000$x$y",
    ] {
        let err = keyward(d, &["inspect", bad], b"");
        assert!(
            err.usage_error().contains("no supported scheme"),
            "{}",
            err.stderr
        );
    }
    let err = keyward(d, &["verify", "pbkdf2:sha256:0$saltsaltsalt$00"], b"x\n");
    assert!(
        err.usage_error().contains("iteration count 0"),
        "{}",
        err.stderr
    );
}

#[test]
fn config_can_disable_schemes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let vectors = legacy_vectors();
    let (_, password, django) = vectors
        .iter()
        .find(|(s, _, _)| s == "django-pbkdf2-sha256")
        .unwrap();
    let (_, _, aspnet) = vectors
        .iter()
        .find(|(s, _, _)| s == "aspnet-identity-v2")
        .unwrap();
    std::fs::write(
        d.join("keyward.toml"),
        "[password]\niterations = 1000\ndisabled_schemes = [\"aspnet-identity-v2\", \"aspnet-identity-v3\"]\n",
    )
    .unwrap();
    let err = keyward(d, &["verify", aspnet], b"anything\n");
    assert!(
        err.usage_error()
            .contains("scheme aspnet-identity-v2 is disabled by the policy"),
        "{}",
        err.stderr
    );
    keyward(d, &["inspect", aspnet], b"").usage_error();
    assert_eq!(keyward(d, &["verify", django], password).code, 0);

    std::fs::write(
        d.join("keyward.toml"),
        "[password]\ndisabled_schemes = [\"md5\"]\n",
    )
    .unwrap();
    assert!(
        keyward(d, &["inspect", django], b"")
            .usage_error()
            .contains("unknown scheme name \"md5\""),
    );
    std::fs::write(
        d.join("keyward.toml"),
        "[password]\ndisabled_schemes = [\"pbkdf2-sha256\"]\n",
    )
    .unwrap();
    assert!(
        keyward(d, &["inspect", django], b"")
            .usage_error()
            .contains("cannot contain pbkdf2-sha256"),
    );
}

/// `audit` on 100,000 lines of every scheme, current and due for a rehash,
/// and of several kinds of malformed line, shuffled, with blank lines and
/// CRLF endings mixed in: the counts are exact.
#[test]
fn audit_counts_a_100k_line_mixed_dump_exactly() {
    use keyward::{Keyward, Password, PasswordPolicy};

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("keyward.toml"), "[password]\niterations = 2000\n").unwrap();
    let at = |iterations: u32| {
        let mut p = PasswordPolicy::default();
        p.iterations = iterations;
        Keyward::builder().password_policy(p).build().unwrap()
    };
    let current = at(2000)
        .passwords()
        .hash(&Password::from("correct horse"))
        .unwrap();
    let old = at(1000)
        .passwords()
        .hash(&Password::from("correct horse"))
        .unwrap();
    let sha512 = format!(
        "$pbkdf2-sha512$i=2000,l=64${}${}",
        "c2FsdHNhbHRzYWx0c2FsdA",
        "A".repeat(86)
    );

    // (line bytes, how many times).
    let mut plan: Vec<(Vec<u8>, usize)> = vec![
        (current.clone().into_bytes(), 40_000),
        (old.into_bytes(), 10_000),
        (sha512.into_bytes(), 2_000),
    ];
    let legacy_counts = [
        ("django-pbkdf2-sha256", 10_000),
        ("django-pbkdf2-sha1", 3_000),
        ("werkzeug-pbkdf2-sha256", 6_000),
        ("werkzeug-pbkdf2-sha1", 2_000),
        ("werkzeug-pbkdf2-sha512", 2_000),
        ("passlib-pbkdf2-sha1", 1_000),
        ("passlib-pbkdf2-sha256", 4_000),
        ("passlib-pbkdf2-sha512", 1_000),
        ("aspnet-identity-v2", 5_000),
        ("aspnet-identity-v3", 7_000),
    ];
    let vectors = legacy_vectors();
    for (scheme, count) in legacy_counts {
        // Spread the count over every vector of the scheme.
        let rows: Vec<&String> = vectors
            .iter()
            .filter(|(s, _, _)| s == scheme)
            .map(|(_, _, h)| h)
            .collect();
        for (i, row) in rows.iter().enumerate() {
            let share = count / rows.len() + usize::from(i < count % rows.len());
            plan.push((row.as_bytes().to_vec(), share));
        }
    }
    let malformed: Vec<(Vec<u8>, usize)> = vec![
        (b"not a hash".to_vec(), 2_000),
        (current.as_bytes()[..current.len() - 5].to_vec(), 1_000),
        (
            b"pbkdf2:sha256:1000$saltsaltsalt$ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
                .to_vec(),
            1_000,
        ),
        (b"pbkdf2_sha256$0$saltsaltsaltsalt$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_vec(), 1_000),
        (vec![0xff, 0xfe, b'$', b'p', 0x80], 997),
        (b"   ".to_vec(), 1_000),
        (vec![b'A'; 5_000], 3),
    ];
    plan.extend(malformed);
    let total: usize = plan.iter().map(|(_, n)| n).sum();
    assert_eq!(total, 100_000);

    let mut lines: Vec<Vec<u8>> = plan
        .iter()
        .flat_map(|(line, n)| std::iter::repeat_n(line.clone(), *n))
        .collect();
    // Blank lines (with LF or CRLF endings, below) are skipped and not
    // counted.
    lines.extend(std::iter::repeat_n(Vec::new(), 500));
    let mut rng = common::SplitMix(0x6175_6469_7431_3030);
    for i in (1..lines.len()).rev() {
        lines.swap(i, rng.below(i + 1));
    }
    let mut file = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        file.extend_from_slice(line);
        // Every seventh line ends in CRLF; the very last has no line ending.
        if i + 1 < lines.len() {
            file.extend_from_slice(if i % 7 == 0 { b"\r\n" } else { b"\n" });
        }
    }
    let path = d.join("dump.txt");
    std::fs::write(&path, &file).unwrap();

    let run = keyward_from_file(d, &["audit"], &path);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let line = run.line().to_owned();
    let mut schemes = serde_json::Map::new();
    schemes.insert("pbkdf2-sha256".into(), (40_000 + 10_000).into());
    schemes.insert("pbkdf2-sha512".into(), 2_000.into());
    for (scheme, count) in legacy_counts {
        schemes.insert(scheme.into(), count.into());
    }
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&line).unwrap(),
        serde_json::json!({
            "total": 100_000,
            "needs_rehash": 10_000 + 2_000 + 41_000,
            "malformed": 7_000,
            "unverifiable": 0,
            "schemes": schemes,
        }),
        "{line}"
    );
}

/// `audit` edge cases: blank lines, CRLF, whitespace, non-UTF-8, a line far
/// over the length cap, a last line without a line ending, empty input,
/// and a disabled scheme.
#[test]
fn audit_edge_cases() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("keyward.toml"), "[password]\niterations = 1000\n").unwrap();
    let current = keyward(d, &["hash"], b"correct horse\n").line().to_owned();
    let vectors = legacy_vectors();
    let django = &vectors[0].2;
    let aspnet = &vectors
        .iter()
        .find(|v| v.0 == "aspnet-identity-v3")
        .unwrap()
        .2;

    let mut input = Vec::new();
    input.extend_from_slice(b"\n\r\n");
    input.extend_from_slice(format!("{current}\r\n").as_bytes());
    input.extend_from_slice(b" \n");
    input.extend_from_slice(&[0xc3, 0x28, b'\n']);
    input.extend(std::iter::repeat_n(b'A', 8 << 20));
    input.extend_from_slice(b"\n\n");
    input.extend_from_slice(format!("{aspnet}\n").as_bytes());
    input.extend_from_slice(django.as_bytes());
    let run = keyward(d, &["audit"], &input);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(run.line()).unwrap(),
        serde_json::json!({
            "total": 6,
            "needs_rehash": 2,
            "malformed": 3,
            "unverifiable": 0,
            "schemes": {"pbkdf2-sha256": 1, "aspnet-identity-v3": 1, "django-pbkdf2-sha256": 1},
        })
    );

    let run = keyward(d, &["audit"], b"");
    assert_eq!(
        run.json(),
        serde_json::json!({"total": 0, "needs_rehash": 0, "malformed": 0, "unverifiable": 0, "schemes": {}})
    );

    // A disabled scheme's lines cannot be verified: they count as malformed.
    std::fs::write(
        d.join("keyward.toml"),
        "[password]\niterations = 1000\ndisabled_schemes = [\"aspnet-identity-v3\"]\n",
    )
    .unwrap();
    let run = keyward(d, &["audit"], &input);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(run.line()).unwrap(),
        serde_json::json!({
            "total": 6,
            "needs_rehash": 1,
            "malformed": 4,
            "unverifiable": 0,
            "schemes": {"pbkdf2-sha256": 1, "django-pbkdf2-sha256": 1},
        })
    );
}

#[test]
fn session_rows() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(keyward(d, &["init"], b"").code, 0);
    let run = keyward(d, &["session", "start", "--sub", "alice"], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let start = run.json();
    assert_eq!(start["expires_in"], 900);
    let session = start["session"].as_str().unwrap().to_owned();
    let refresh = start["refresh_token"].as_str().unwrap().to_owned();
    let claims = keyward(
        d,
        &["jwt", "verify"],
        start["access_token"].as_str().unwrap().as_bytes(),
    )
    .json();
    assert_eq!(
        (claims["sub"].as_str(), claims["sid"].as_str()),
        (Some("alice"), Some(session.as_str()))
    );
    assert!(
        d.join("keyward.db").exists(),
        "the default store is sqlite:keyward.db"
    );

    let run = keyward(
        d,
        &["session", "refresh"],
        format!("{refresh}\n").as_bytes(),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let next = run.json();
    assert_eq!(next["session"], session.as_str());
    assert_ne!(next["refresh_token"], start["refresh_token"]);

    // Reuse outside the grace window (set to 0 here) revokes the family.
    std::fs::write(d.join("keyward.toml"), "[session]\nreuse_grace_secs = 0\n").unwrap();
    let run = keyward(d, &["session", "refresh"], refresh.as_bytes());
    assert_eq!(
        (run.code, run.json()),
        (1, serde_json::json!({"error": "reused"}))
    );
    let run = keyward(
        d,
        &["session", "refresh"],
        next["refresh_token"].as_str().unwrap().as_bytes(),
    );
    assert_eq!(
        (run.code, run.json()),
        (1, serde_json::json!({"error": "revoked"}))
    );
    let run = keyward(d, &["session", "refresh"], b"kwr_not_a_token\n");
    assert_eq!(
        (run.code, run.json()),
        (1, serde_json::json!({"error": "invalid"}))
    );
    std::fs::remove_file(d.join("keyward.toml")).unwrap();

    // revoke: the whole family, by any of its tokens.
    let s2 = keyward(d, &["session", "start", "--sub", "bob"], b"").json();
    let run = keyward(
        d,
        &["session", "revoke"],
        s2["refresh_token"].as_str().unwrap().as_bytes(),
    );
    assert_eq!(
        (run.code, run.json()),
        (0, serde_json::json!({"revoked": s2["session"]}))
    );
    let run = keyward(
        d,
        &["session", "refresh"],
        s2["refresh_token"].as_str().unwrap().as_bytes(),
    );
    assert_eq!(run.json()["error"], "revoked");
    assert_eq!(keyward(d, &["session", "revoke"], b"junk").code, 1);

    // revoke-all.
    let s3 = keyward(d, &["session", "start", "--sub", "carol"], b"").json();
    let s4 = keyward(d, &["session", "start", "--sub", "carol"], b"").json();
    let run = keyward(d, &["session", "revoke-all", "--sub", "carol"], b"");
    assert_eq!(
        (run.code, run.json()),
        (
            0,
            serde_json::json!({"subject": "carol", "revoked": true, "found": true})
        )
    );
    for s in [&s3, &s4] {
        let run = keyward(
            d,
            &["session", "refresh"],
            s["refresh_token"].as_str().unwrap().as_bytes(),
        );
        assert_eq!(run.json()["error"], "revoked");
    }

    // Other stores: memory: works within one process; unknown schemes exit 2.
    assert_eq!(
        keyward(
            d,
            &["--store", "memory:", "session", "start", "--sub", "x"],
            b""
        )
        .code,
        0
    );
    assert!(
        keyward(
            d,
            &["--store", "ftp://x", "session", "start", "--sub", "x"],
            b""
        )
        .usage_error()
        .contains("ftp")
    );
    keyward(
        d,
        &["--store", "sqlite:", "session", "start", "--sub", "x"],
        b"",
    )
    .usage_error();
    // An unwritable database path is a usage error, not a panic.
    keyward(
        d,
        &[
            "--store",
            "sqlite:/nonexistent-dir/k.db",
            "session",
            "start",
            "--sub",
            "x",
        ],
        b"",
    )
    .usage_error();
}

/// 8 `keyward session refresh` processes on one SQLite file race the same
/// token: with the default grace, one rotation and 7 replays of the same
/// successor; with grace 0, one winner and the family revoked.
#[test]
fn session_refresh_race_across_processes() {
    refresh_race_across_processes("sqlite", None);
}

/// The same race with the 8 processes standing in for 8 replicas of a
/// service that share one PostgreSQL server.
#[test]
fn session_refresh_race_across_replicas_on_postgres() {
    if let Some(url) = common::postgres("keyward replicas on postgres") {
        refresh_race_across_processes("postgres", Some(&url));
    }
}

/// The same race with 8 replicas sharing one Redis server.
#[test]
fn session_refresh_race_across_replicas_on_redis() {
    if let Some(url) = common::redis("keyward replicas on redis") {
        let sep = if url.contains('?') { '&' } else { '?' };
        let prefix = common::unique_prefix("cli-race");
        refresh_race_across_processes("redis", Some(&format!("{url}{sep}prefix={prefix}")));
    }
}

/// 8 `keyward session refresh` processes on `store` (the default SQLite
/// file when `None`) race the same refresh token.
fn refresh_race_across_processes(label: &str, store: Option<&str>) {
    let with_store = |args: &[&'static str]| -> Vec<String> {
        let mut all: Vec<String> = store
            .map(|url| vec!["--store".to_owned(), url.to_owned()])
            .unwrap_or_default();
        all.extend(args.iter().map(|a| (*a).to_owned()));
        all
    };
    for grace in [10u64, 0] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert_eq!(keyward(d, &["init"], b"").code, 0);
        // Lifetimes of an hour: the families a run leaves on a shared
        // server expire soon. The race itself takes no time on the clock.
        std::fs::write(
            d.join("keyward.toml"),
            format!(
                "[session]\nreuse_grace_secs = {grace}\nidle_ttl_secs = 3600\nabsolute_ttl_secs = 3600\n"
            ),
        )
        .unwrap();
        let args = with_store(&["session", "start", "--sub", "racer"]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let started = keyward(d, &args, b"");
        assert_eq!(started.code, 0, "{label}: {}", started.stderr);
        let token = started.json()["refresh_token"].as_str().unwrap().to_owned();
        let refresh = with_store(&["session", "refresh"]);
        let children: Vec<_> = (0..8)
            .map(|_| {
                let mut c = Command::new(env!("CARGO_BIN_EXE_keyward"))
                    .args(&refresh)
                    .current_dir(d)
                    .env_remove("KEYWARD_KEYRING")
                    .env_remove("KEYWARD_STORE")
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                c.stdin.take().unwrap().write_all(token.as_bytes()).unwrap();
                c
            })
            .collect();
        let mut successors = std::collections::BTreeSet::new();
        let mut refused = std::collections::BTreeMap::<String, usize>::new();
        for c in children {
            let out = c.wait_with_output().unwrap();
            let json: serde_json::Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|_| panic!("stderr: {}", String::from_utf8_lossy(&out.stderr)));
            match out.status.code() {
                Some(0) => {
                    successors.insert(json["refresh_token"].as_str().unwrap().to_owned());
                }
                Some(1) => {
                    *refused
                        .entry(json["error"].as_str().unwrap().to_owned())
                        .or_default() += 1
                }
                other => panic!("exit {other:?}: {}", String::from_utf8_lossy(&out.stderr)),
            }
        }
        println!(
            "{label}: 8 processes, grace {grace}: {} distinct successor(s), refused {refused:?}",
            successors.len()
        );
        assert_eq!(successors.len(), 1, "one successor, no fork");
        let successor = successors.into_iter().next().unwrap();
        let refresh: Vec<&str> = refresh.iter().map(String::as_str).collect();
        let after = keyward(d, &refresh, successor.as_bytes());
        if grace > 0 {
            assert!(refused.is_empty(), "{refused:?}");
            assert_eq!(after.code, 0, "the family goes on");
        } else {
            assert_eq!(refused.values().sum::<usize>(), 7);
            assert!(refused.contains_key("reused"), "{refused:?}");
            assert_eq!(
                after.json()["error"],
                "revoked",
                "the losers revoked the family"
            );
        }
    }
}

/// Store URLs: a scheme the CLI does not know, TLS Redis (not built in)
/// and an unreachable server are usage errors on one line that never echo
/// a password from the URL.
#[test]
fn store_urls_are_checked_and_never_echo_a_password() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(keyward(d, &["init"], b"").code, 0);
    let start = |url: &str| keyward(d, &["--store", url, "session", "start", "--sub", "u"], b"");
    let run = start("mysql://u:hunter2@127.0.0.1/db");
    let line = run.usage_error();
    assert!(line.contains("\"mysql\" is not supported"), "{line}");
    let run = start("rediss://u:hunter2@127.0.0.1:6379");
    let line = run.usage_error();
    assert!(line.contains("TLS"), "{line}");
    assert!(!line.contains("hunter2"), "{line}");
    // Port 1 on the loopback: nothing listens there.
    for url in [
        "redis://u:hunter2@127.0.0.1:1",
        "postgres://u:hunter2@127.0.0.1:1/db",
        "postgresql://u:hunter2@127.0.0.1:1/db",
    ] {
        let run = start(url);
        let line = run.usage_error();
        assert!(line.starts_with("keyward: store "), "{line}");
        assert!(!line.contains("hunter2"), "{line}");
    }
}

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `token new` prints the token once with its id and the SHA-256 of the
/// whole token string; `token check` reads it back from stdin.
#[test]
fn token_new_and_check_rows() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = keyward(d, &["token", "new", "--prefix", "kw_live"], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.line();
    let out = run.json();
    assert_eq!(out.as_object().unwrap().len(), 3, "{out}");
    let token = out["token"].as_str().unwrap().to_owned();
    let id = out["id"].as_str().unwrap();
    assert!(token.starts_with("kw_live_"), "{token}");
    assert_eq!(token.len(), "kw_live".len() + 63);
    assert_eq!(&token[8..20], id);
    assert_eq!(out["digest"], sha256_hex(&token));
    let want = serde_json::json!({"id": id, "digest": sha256_hex(&token)});

    for stdin in [format!("{token}\n"), format!("{token}\r\n"), token.clone()] {
        let run = keyward(d, &["token", "check"], stdin.as_bytes());
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.line();
        assert_eq!(run.json(), want);
        assert!(run.stderr.is_empty());
    }

    // A key ring present changes nothing: the CLI digest is plain SHA-256.
    assert_eq!(keyward(d, &["init"], b"").code, 0);
    assert_eq!(
        keyward(d, &["token", "check"], token.as_bytes()).json(),
        want
    );
    // Two tokens are never the same.
    let again = keyward(d, &["token", "new", "--prefix", "kw_live"], b"").json();
    assert_ne!(again["token"], out["token"]);
}

#[test]
fn token_rejections_exit_2_and_never_echo_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = keyward(d, &["token", "new", "--prefix", "kw"], b"").json();
    let token = out["token"].as_str().unwrap().to_owned();
    let secret = &token[token.len() - 49..token.len() - 6];

    let mut altered = token.clone().into_bytes();
    altered[30] = if altered[30] == b'a' { b'b' } else { b'a' };
    let mut non_utf8 = token.clone().into_bytes();
    non_utf8[30] = 0xff;
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (altered, "checksum does not match"),
        (token.as_bytes()[..token.len() - 1].to_vec(), "separators"),
        (format!("{token}\n\n").into_bytes(), "separators"),
        (format!("{token} ").into_bytes(), "separators"),
        (format!("KW{}", &token[2..]).into_bytes(), "prefix"),
        (
            format!("{}-{}", &token[..30], &token[31..]).into_bytes(),
            "non-base62",
        ),
        (non_utf8, "non-base62"),
        (b"".to_vec(), "wrong length"),
        (b"\n".to_vec(), "wrong length"),
    ];
    for (stdin, reason) in cases {
        let run = keyward(d, &["token", "check"], &stdin);
        let line = run.usage_error();
        assert!(line.starts_with("keyward: token: "), "{line}");
        assert!(line.contains(reason), "{reason}: {line}");
        assert!(run.stdout.is_empty(), "{}", run.stdout);
        for w in secret.as_bytes().windows(8) {
            assert!(!line.contains(std::str::from_utf8(w).unwrap()), "{line}");
        }
    }

    for prefix in ["Bad", "", "kw-live", "abcdefghij0123456789x"] {
        let run = keyward(d, &["token", "new", "--prefix", prefix], b"");
        assert!(run.usage_error().contains("prefix"), "{}", run.stderr);
        assert!(run.stdout.is_empty());
    }
    // --prefix is required.
    assert!(
        keyward(d, &["token", "new"], b"")
            .usage_error()
            .contains("--prefix")
    );
}

/// A world-readable key ring works, with one warning on stderr; a
/// group-writable one is refused (exit 2) with one line naming the fix.
#[cfg(unix)]
#[test]
fn key_ring_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let run = keyward(d, &["init", "--alg", "HS256"], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let keys = d.join("keyward.keys");
    let set = |mode: u32| {
        std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    let run = keyward(d, &["jwt", "issue", "--sub", "a"], b"");
    assert_eq!((run.code, run.stderr.as_str()), (0, ""));
    set(0o644);
    let run = keyward(d, &["jwt", "issue", "--sub", "a"], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stderr.matches('\n').count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("warning") && run.stderr.contains("chmod 600"),
        "{}",
        run.stderr
    );
    set(0o620);
    let run = keyward(d, &["jwt", "issue", "--sub", "a"], b"");
    let msg = run.usage_error();
    assert!(
        msg.contains("keyward.keys") && msg.contains("chmod"),
        "{msg}"
    );
}
