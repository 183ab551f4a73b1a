//! The `keyward` binary, end to end, against the contract in the README.
#![allow(clippy::unwrap_used, clippy::panic, clippy::arithmetic_side_effects)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim_end())
            .unwrap_or_else(|e| panic!("{e}: {:?}", self.stdout))
    }

    /// stdout is exactly one line.
    fn line(&self) -> &str {
        assert!(
            self.stdout.ends_with('\n') && self.stdout.matches('\n').count() == 1,
            "{:?}",
            self.stdout
        );
        self.stdout.trim_end()
    }

    /// stderr is one human line naming the problem, with no backtrace.
    fn usage_error(&self) -> &str {
        assert_eq!(
            self.code, 2,
            "stdout {:?} stderr {:?}",
            self.stdout, self.stderr
        );
        assert_eq!(self.stderr.matches('\n').count(), 1, "{:?}", self.stderr);
        assert!(!self.stderr.contains("panicked") && !self.stderr.contains("backtrace"));
        self.stderr.trim_end()
    }
}

fn keyward(dir: &Path, args: &[&str], stdin: &[u8]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_keyward"))
        .args(args)
        .current_dir(dir)
        .env_remove("KEYWARD_KEYRING")
        .env_remove("KEYWARD_STORE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command that fails on its arguments exits without reading stdin;
    // writing to it then meets a closed pipe, which is not the test's concern.
    if let Err(e) = child.stdin.take().unwrap().write_all(stdin) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

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
