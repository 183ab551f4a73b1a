//! The operators' extras of the `keyward` command, end to end: global
//! options after the subcommand, error messages that name the fix,
//! `found` on `otp unlock` and `session revoke-all`, `otp status`, the
//! key-ring commands, `unverifiable` in `audit`, `jwt verify` on a JWT
//! that fails a check, and one `keyward.toml` for the command and a
//! service. Each point: the exit code, stdout, and the stderr hint.
#![cfg(feature = "cli")]
#![allow(clippy::unwrap_used, clippy::panic, clippy::arithmetic_side_effects)]

mod common;

use std::path::Path;

use base64ct::{Base64UrlUnpadded, Encoding};
use serde_json::{Value, json};

use common::cli::{Run, keyward, keyward_env};
use keyward::config::Config;
use keyward::{Error, JwtError, KeyRing};

/// A fresh directory with a key ring of `alg`.
fn setup(alg: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let run = keyward(dir.path(), &["init", "--alg", alg], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    dir
}

/// Exit 0, nothing on stderr, and the JSON line.
fn ok(run: &Run) -> Value {
    assert_eq!(
        run.code, 0,
        "stdout {:?} stderr {:?}",
        run.stdout, run.stderr
    );
    assert!(run.stderr.is_empty(), "{:?}", run.stderr);
    run.json()
}

/// Exit 2, nothing on stdout, one line on stderr containing each of
/// `needles`; returns that line.
fn usage(run: &Run, needles: &[&str]) -> String {
    let line = run.usage_error().to_owned();
    assert!(run.stdout.is_empty(), "{:?}", run.stdout);
    for n in needles {
        assert!(line.contains(n), "{n:?} not in {line:?}");
    }
    line
}

/// Exit 1 with `{"error": reason}`.
fn refused(run: &Run, reason: &str) {
    assert_eq!(
        run.code, 1,
        "stdout {:?} stderr {:?}",
        run.stdout, run.stderr
    );
    assert_eq!(run.json(), json!({ "error": reason }));
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The file names in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

// ---- Global options after the subcommand ----

#[test]
fn global_options_work_after_the_subcommand() {
    let dir = setup("HS256");
    let d = dir.path();
    std::fs::rename(d.join("keyward.keys"), d.join("other.keys")).unwrap();
    std::fs::write(d.join("short.toml"), "[session]\naccess_ttl_secs = 300\n").unwrap();

    // After the subcommand: every global option.
    let out = ok(&keyward(
        d,
        &[
            "session",
            "start",
            "--sub",
            "a",
            "--store",
            "memory:",
            "--keyring",
            "other.keys",
            "--config",
            "short.toml",
        ],
        b"",
    ));
    assert_eq!(out["expires_in"], 300);
    assert_eq!(out["access_token"].as_str().unwrap().split('.').count(), 3);
    assert!(!d.join("keyward.db").exists(), "memory: was used");

    // Before it, as always.
    let out = ok(&keyward(
        d,
        &[
            "--store",
            "memory:",
            "--keyring",
            "other.keys",
            "session",
            "start",
            "--sub",
            "a",
        ],
        b"",
    ));
    assert_eq!(out["expires_in"], 900);
    assert!(!d.join("keyward.db").exists());

    // The environment still fills in, and a flag after the subcommand
    // still overrides it.
    let env = [
        ("KEYWARD_STORE", "sqlite:env.db"),
        ("KEYWARD_KEYRING", "other.keys"),
    ];
    ok(&keyward_env(
        d,
        &["session", "start", "--sub", "a"],
        b"",
        &env,
    ));
    assert!(d.join("env.db").exists());
    let env2 = [
        ("KEYWARD_STORE", "sqlite:env2.db"),
        ("KEYWARD_KEYRING", "missing.keys"),
    ];
    ok(&keyward_env(
        d,
        &[
            "session",
            "start",
            "--sub",
            "a",
            "--store",
            "memory:",
            "--keyring",
            "other.keys",
        ],
        b"",
        &env2,
    ));
    assert!(!d.join("env2.db").exists());

    // A global option after the subcommand without its value: exit 2,
    // naming it.
    usage(
        &keyward(
            d,
            &[
                "session",
                "start",
                "--sub",
                "a",
                "--keyring",
                "other.keys",
                "--store",
            ],
            b"",
        ),
        &["--store"],
    );
}

// ---- Errors name the fix ----

#[test]
fn a_missing_key_ring_says_to_run_init() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for args in [
        &["session", "start", "--sub", "a", "--store", "memory:"][..],
        &["jwt", "issue", "--sub", "a"],
        &["otp", "status", "--sub", "a", "--store", "memory:"],
        &["keyring", "show"],
    ] {
        let line = usage(&keyward(d, args, b""), &["keyward.keys", "`keyward init`"]);
        assert!(!line.contains("os error"), "{line}");
    }
    // A path named explicitly: the command for that path.
    usage(
        &keyward(
            d,
            &["--keyring", "ops.keys", "jwt", "issue", "--sub", "a"],
            b"",
        ),
        &["ops.keys", "`keyward init --keyring ops.keys`"],
    );
    // Once created, the same command works.
    assert_eq!(keyward(d, &["init"], b"").code, 0);
    ok(&keyward(d, &["keyring", "show"], b""));
}

#[test]
fn a_store_url_without_its_colon_shows_the_form() {
    let dir = setup("HS256");
    let d = dir.path();
    for bare in ["sqlite", "memory", "postgres"] {
        usage(
            &keyward(d, &["--store", bare, "session", "start", "--sub", "a"], b""),
            &[&format!("--store {bare}"), "sqlite:PATH"],
        );
    }
    assert!(!d.join("sqlite").exists() && !d.join("keyward.db").exists());
    // The forms it shows work.
    ok(&keyward(
        d,
        &["--store", "sqlite:ops.db", "session", "start", "--sub", "a"],
        b"",
    ));
    assert!(d.join("ops.db").exists());
}

/// Nothing listens on port 1: the refusal is named, not a pool timeout.
#[test]
fn an_unreachable_postgres_says_connection_refused() {
    let dir = setup("HS256");
    let d = dir.path();
    for args in [
        &["session", "revoke-all", "--sub", "a"][..],
        &["otp", "status", "--sub", "a"],
    ] {
        let mut all = vec!["--store", "postgres://postgres@127.0.0.1:1/test"];
        all.extend_from_slice(args);
        let line = usage(&keyward(d, &all, b""), &["postgres"]);
        let lower = line.to_lowercase();
        assert!(lower.contains("connection refused"), "{line}");
        assert!(!lower.contains("timed out"), "{line}");
        assert!(!line.contains("127.0.0.1:1/test"), "the URL is not echoed");
    }
}

#[test]
fn iterations_out_of_bounds_state_the_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for n in ["10", "999", "5000001", "0"] {
        usage(
            &keyward(d, &["hash", "--iterations", n], b"correct horse\n"),
            &[&format!("--iterations {n}"), "1000", "5000000"],
        );
    }
    // The bounds themselves are accepted.
    let run = keyward(d, &["hash", "--iterations", "1000"], b"correct horse\n");
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.line().starts_with("$pbkdf2-sha256$i=1000,"));
    // The bounds come from the policy, and so does a value in the file.
    std::fs::write(
        d.join("keyward.toml"),
        "[password]\nmin_iterations = 2000\n",
    )
    .unwrap();
    usage(
        &keyward(d, &["hash", "--iterations", "1000"], b"correct horse\n"),
        &["--iterations 1000", "2000", "5000000"],
    );
    std::fs::write(d.join("keyward.toml"), "[password]\niterations = 10\n").unwrap();
    usage(
        &keyward(d, &["hash"], b"correct horse\n"),
        &["password.iterations = 10", "1000", "5000000"],
    );
}

// ---- found ----

#[test]
fn otp_unlock_says_whether_the_subject_had_records() {
    let dir = setup("HS256");
    let d = dir.path();
    let run = keyward(d, &["otp", "unlock", "--sub", "nobody"], b"");
    assert_eq!(
        ok(&run),
        json!({"subject": "nobody", "unlocked": true, "found": false})
    );
    assert_eq!(keyward(d, &["otp", "issue", "--sub", "alice"], b"").code, 0);
    assert_eq!(
        ok(&keyward(d, &["otp", "unlock", "--sub", "alice"], b"")),
        json!({"subject": "alice", "unlocked": true, "found": true})
    );
    // A bad subject is bad input.
    usage(
        &keyward(d, &["otp", "unlock", "--sub", ""], b""),
        &["subject"],
    );
}

#[test]
fn session_revoke_all_says_whether_the_subject_had_sessions() {
    let dir = setup("HS256");
    let d = dir.path();
    assert_eq!(
        ok(&keyward(
            d,
            &["session", "revoke-all", "--sub", "nobody"],
            b""
        )),
        json!({"subject": "nobody", "revoked": true, "found": false})
    );
    let started = ok(&keyward(d, &["session", "start", "--sub", "carol"], b""));
    assert_eq!(
        ok(&keyward(
            d,
            &["session", "revoke-all", "--sub", "carol"],
            b""
        )),
        json!({"subject": "carol", "revoked": true, "found": true})
    );
    refused(
        &keyward(
            d,
            &["session", "refresh"],
            started["refresh_token"].as_str().unwrap().as_bytes(),
        ),
        "revoked",
    );
    // Another subject's sessions are not this one's.
    assert_eq!(
        ok(&keyward(
            d,
            &["session", "revoke-all", "--sub", "carl"],
            b""
        ))["found"],
        false
    );
}

// ---- otp status ----

#[test]
fn otp_status_shows_failures_lock_and_purposes_never_a_code() {
    let dir = setup("HS256");
    let d = dir.path();
    std::fs::write(
        d.join("keyward.toml"),
        "[throttle]\ncode_send_burst = 1000\n",
    )
    .unwrap();
    let status = |sub: &str| ok(&keyward(d, &["otp", "status", "--sub", sub], b""));

    assert_eq!(
        status("nobody"),
        json!({
            "subject": "nobody", "found": false, "failures": 0, "locked": false,
            "retry_after": null, "locked_until_unlock": false, "pending": [],
        })
    );

    let issue = |purpose: &str| {
        let run = keyward(
            d,
            &["otp", "issue", "--sub", "alice", "--purpose", purpose],
            b"",
        );
        ok(&run)["code"].as_str().unwrap().to_owned()
    };
    let login = issue("login");
    let email = issue("email_change");
    let wrong = if login == "000000" {
        "000001"
    } else {
        "000000"
    };
    let verify = |code: &str| keyward(d, &["otp", "verify", "--sub", "alice"], code.as_bytes());
    assert_eq!(verify(wrong).code, 1);
    let run = keyward(d, &["otp", "status", "--sub", "alice"], b"");
    assert_eq!(
        ok(&run),
        json!({
            "subject": "alice", "found": true, "failures": 1, "locked": false,
            "retry_after": null, "locked_until_unlock": false,
            "pending": ["login", "email_change"],
        })
    );
    assert!(!run.stdout.contains(&login) && !run.stdout.contains(&email));
    // Reading changes nothing: the next wrong code still has one left.
    assert_eq!(verify(wrong).json()["attempts_left"], 1);

    // Locked: the time left, and no code pending any more.
    assert_eq!(verify(wrong).json()["attempts_left"], 0);
    let out = status("alice");
    let retry = out["retry_after"].as_u64().unwrap();
    assert!(retry > 0 && retry <= 3_600, "{retry}");
    assert_eq!(
        (
            &out["found"],
            &out["failures"],
            &out["locked"],
            &out["locked_until_unlock"],
            &out["pending"]
        ),
        (
            &json!(true),
            &json!(3),
            &json!(true),
            &json!(false),
            &json!([])
        )
    );
    // The unlock clears it.
    assert_eq!(
        ok(&keyward(d, &["otp", "unlock", "--sub", "alice"], b""))["found"],
        true
    );
    assert_eq!(
        status("alice"),
        json!({
            "subject": "alice", "found": true, "failures": 0, "locked": false,
            "retry_after": null, "locked_until_unlock": false, "pending": [],
        })
    );

    // Locked until an operator unlocks: no time to show.
    std::fs::write(
        d.join("strict.toml"),
        "[otp]\nmax_attempts = 1\nmax_consecutive_failures = 1\n",
    )
    .unwrap();
    let strict = |args: &[&str], stdin: &[u8]| {
        let mut all = vec!["--config", "strict.toml"];
        all.extend_from_slice(args);
        keyward(d, &all, stdin)
    };
    let code = ok(&strict(&["otp", "issue", "--sub", "bob"], b""))["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let wrong = if code == "000000" { "000001" } else { "000000" };
    assert_eq!(
        strict(&["otp", "verify", "--sub", "bob"], wrong.as_bytes()).code,
        1
    );
    let out = ok(&strict(&["otp", "status", "--sub", "bob"], b""));
    assert_eq!(
        (
            &out["locked"],
            &out["locked_until_unlock"],
            &out["retry_after"]
        ),
        (&json!(true), &json!(true), &Value::Null)
    );

    // Bad input: exit 2.
    usage(
        &keyward(d, &["otp", "status", "--sub", ""], b""),
        &["subject"],
    );
    usage(&keyward(d, &["otp", "status"], b""), &["--sub"]);
}

// ---- Key-ring commands ----

#[test]
fn keyring_show_prints_public_facts_only() {
    let dir = setup("EdDSA");
    let d = dir.path();
    assert_eq!(keyward(d, &["keyring", "add-pepper"], b"").code, 0);
    let run = keyward(d, &["keyring", "show"], b"");
    let out = ok(&run);
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("keyward.keys")).unwrap()).unwrap();
    let kid = file["current_jwt"].as_str().unwrap();
    let pepper = file["current_pepper"].as_str().unwrap();
    assert_eq!(
        out,
        json!({
            "jwt": [{"kid": kid, "alg": "EdDSA", "current": true}],
            "peppers": [pepper],
            "current_pepper": pepper,
        })
    );
    // No key material: not the MAC key, not a JWT key, not a pepper.
    let secrets = [
        file["mac_key"].as_str().unwrap(),
        file["jwt_keys"][0]["key"].as_str().unwrap(),
        file["peppers"][0]["key"].as_str().unwrap(),
    ];
    for secret in secrets {
        assert!(!run.stdout.contains(secret) && !run.stderr.contains(secret));
    }
    // A key ring without a pepper.
    assert_eq!(
        keyward(d, &["--keyring", "plain.keys", "init"], b"").code,
        0
    );
    let out = ok(&keyward(
        d,
        &["--keyring", "plain.keys", "keyring", "show"],
        b"",
    ));
    assert_eq!(
        (&out["peppers"], &out["current_pepper"]),
        (&json!([]), &Value::Null)
    );
    // A file that is not a key ring: exit 2, naming it.
    std::fs::write(d.join("junk.keys"), "{}").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d.join("junk.keys"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
    }
    usage(
        &keyward(d, &["--keyring", "junk.keys", "keyring", "show"], b""),
        &["junk.keys"],
    );
}

#[test]
fn keyring_rotate_and_retire_jwt_keys() {
    let dir = setup("EdDSA");
    let d = dir.path();
    let path = d.join("keyward.keys");
    let show = || ok(&keyward(d, &["keyring", "show"], b""));
    let first = show()["jwt"][0]["kid"].as_str().unwrap().to_owned();
    let old_token = keyward(d, &["jwt", "issue", "--sub", "alice"], b"")
        .line()
        .to_owned();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    }

    // Rotate: a new current key of the algorithm asked for.
    let out = ok(&keyward(
        d,
        &["keyring", "rotate-jwt", "--alg", "ES256"],
        b"",
    ));
    let second = out["kid"].as_str().unwrap().to_owned();
    assert_eq!(out, json!({"kid": second, "alg": "ES256"}));
    assert_ne!(first, second);
    #[cfg(unix)]
    assert_eq!(mode(&path), 0o600);
    assert_eq!(names(d), ["keyward.keys"], "no file left beside it");
    assert_eq!(
        show()["jwt"],
        json!([
            {"kid": first, "alg": "EdDSA", "current": false},
            {"kid": second, "alg": "ES256", "current": true},
        ])
    );
    // Older keys keep verifying; new tokens carry the new kid.
    assert_eq!(
        ok(&keyward(d, &["jwt", "verify"], old_token.as_bytes()))["sub"],
        "alice"
    );
    let new_token = keyward(d, &["jwt", "issue", "--sub", "bob"], b"")
        .line()
        .to_owned();
    let header = new_token.split('.').next().unwrap();
    let header: Value =
        serde_json::from_slice(&Base64UrlUnpadded::decode_vec(header).unwrap()).unwrap();
    assert_eq!(
        (&header["kid"], &header["alg"]),
        (&json!(second), &json!("ES256"))
    );

    // Without --alg: the current key's algorithm.
    let third = ok(&keyward(d, &["keyring", "rotate-jwt"], b""));
    assert_eq!(third["alg"], "ES256");
    let third = third["kid"].as_str().unwrap().to_owned();

    // The current key and an unknown kid are refused; the file is untouched.
    let before = std::fs::read(&path).unwrap();
    usage(
        &keyward(d, &["keyring", "retire-jwt", "--kid", &third], b""),
        &["current", &third],
    );
    usage(
        &keyward(d, &["keyring", "retire-jwt", "--kid", "nope"], b""),
        &["nope"],
    );
    usage(
        &keyward(d, &["keyring", "rotate-jwt", "--alg", "RS256"], b""),
        &["RS256"],
    );
    usage(&keyward(d, &["keyring", "retire-jwt"], b""), &["--kid"]);
    assert_eq!(std::fs::read(&path).unwrap(), before);

    // Retire the first key: its tokens stop verifying; the others go on.
    assert_eq!(
        ok(&keyward(
            d,
            &["keyring", "retire-jwt", "--kid", &first],
            b""
        )),
        json!({ "retired": first })
    );
    refused(
        &keyward(d, &["jwt", "verify"], old_token.as_bytes()),
        "unknown_key",
    );
    assert_eq!(
        ok(&keyward(d, &["jwt", "verify"], new_token.as_bytes()))["sub"],
        "bob"
    );
    let kids: Vec<Value> = show()["jwt"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].clone())
        .collect();
    assert_eq!(kids, [json!(second), json!(third)]);
    #[cfg(unix)]
    assert_eq!(mode(&path), 0o600);
    assert_eq!(names(d), ["keyward.keys"]);
}

#[test]
fn keyring_add_pepper_makes_new_hashes_use_it() {
    let dir = setup("HS256");
    let d = dir.path();
    let plain = keyward(d, &["hash", "--iterations", "1000"], b"correct horse\n")
        .line()
        .to_owned();
    assert!(!plain.contains(",k="), "{plain}");

    let out = ok(&keyward(d, &["keyring", "add-pepper"], b""));
    let pepper = out["pepper"].as_str().unwrap().to_owned();
    assert_eq!(out, json!({ "pepper": pepper }));
    #[cfg(unix)]
    assert_eq!(mode(&d.join("keyward.keys")), 0o600);
    assert_eq!(names(d), ["keyward.keys"]);
    let shown = ok(&keyward(d, &["keyring", "show"], b""));
    assert_eq!(
        (&shown["peppers"], &shown["current_pepper"]),
        (&json!([pepper]), &json!(pepper))
    );

    // New hashes carry it; the older hash still verifies, and is due for
    // a rehash to it.
    let peppered = keyward(d, &["hash", "--iterations", "1000"], b"correct horse\n")
        .line()
        .to_owned();
    assert!(peppered.contains(&format!(",k={pepper}")), "{peppered}");
    assert_eq!(
        keyward(d, &["verify", &peppered], b"correct horse\n").code,
        0
    );
    let out = ok(&keyward(d, &["verify", &plain], b"correct horse\n"));
    assert_eq!(out["needs_rehash"], true);
    assert!(
        out["new_hash"]
            .as_str()
            .unwrap()
            .contains(&format!(",k={pepper}"))
    );

    // A second pepper becomes current; the first stays for its hashes.
    let second = ok(&keyward(d, &["keyring", "add-pepper"], b""))["pepper"]
        .as_str()
        .unwrap()
        .to_owned();
    let shown = ok(&keyward(d, &["keyring", "show"], b""));
    assert_eq!(
        (&shown["peppers"], &shown["current_pepper"]),
        (&json!([pepper, second]), &json!(second))
    );
    assert_eq!(
        keyward(d, &["verify", &peppered], b"correct horse\n").code,
        0
    );
}

// ---- audit: unverifiable ----

#[test]
fn audit_counts_hashes_of_an_unknown_pepper_as_unverifiable() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_eq!(keyward(d, &["init", "--pepper"], b"").code, 0);
    assert_eq!(
        keyward(d, &["--keyring", "other.keys", "init", "--pepper"], b"").code,
        0
    );
    let hash = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend_from_slice(&["hash", "--iterations", "1000"]);
        keyward(d, &all, b"correct horse\n").line().to_owned()
    };
    let known = hash(&[]);
    let foreign = hash(&["--keyring", "other.keys"]);
    // A current hash, at full cost, under the current pepper.
    let current = keyward(d, &["hash"], b"correct horse\n").line().to_owned();
    // And one without a pepper, from a key ring without one.
    assert_eq!(
        keyward(d, &["--keyring", "plain.keys", "init"], b"").code,
        0
    );
    let plain = hash(&["--keyring", "plain.keys"]);
    assert!(!plain.contains(",k=") && known.contains(",k=") && foreign.contains(",k="));
    let input = format!("{known}\n{foreign}\n{current}\n{plain}\nnot a hash\n");

    let run = keyward(d, &["audit"], input.as_bytes());
    assert_eq!(
        ok(&run),
        json!({
            "total": 5, "needs_rehash": 2, "malformed": 1, "unverifiable": 1,
            "schemes": {"pbkdf2-sha256": 4},
        })
    );
    // The foreign hash is one no password gets past here.
    usage(
        &keyward(d, &["verify", &foreign], b"correct horse\n"),
        &["pepper"],
    );

    // The other key ring sees it the other way round.
    let out = ok(&keyward(
        d,
        &["--keyring", "other.keys", "audit"],
        input.as_bytes(),
    ));
    assert_eq!(
        (&out["unverifiable"], &out["needs_rehash"]),
        (&json!(2), &json!(2))
    );
}

// ---- jwt verify: a JWT that fails a check is exit 1 ----

/// `header.payload.signature` of a token, and the parts decoded.
fn parts(token: &str) -> (String, String, String) {
    let mut it = token.split('.');
    let p = (
        it.next().unwrap().to_owned(),
        it.next().unwrap().to_owned(),
        it.next().unwrap().to_owned(),
    );
    assert!(it.next().is_none());
    p
}

fn b64(v: &Value) -> String {
    Base64UrlUnpadded::encode_string(v.to_string().as_bytes())
}

#[test]
fn jwt_verify_refuses_a_jwt_that_fails_a_check_with_exit_1() {
    for alg in ["EdDSA", "HS256", "ES256"] {
        let dir = setup(alg);
        let d = dir.path();
        let token = keyward(d, &["jwt", "issue", "--sub", "alice"], b"")
            .line()
            .to_owned();
        ok(&keyward(d, &["jwt", "verify"], token.as_bytes()));
        let (h64, p64, s64) = parts(&token);
        let header: Value =
            serde_json::from_slice(&Base64UrlUnpadded::decode_vec(&h64).unwrap()).unwrap();
        let kid = header["kid"].as_str().unwrap();
        let sig = Base64UrlUnpadded::decode_vec(&s64).unwrap();
        let none = |h: Value| format!("{}.{p64}.", b64(&h));

        let cases: Vec<(&str, String, &str)> = vec![
            (
                "alg none, no signature",
                none(json!({"alg": "none", "typ": "at+jwt", "kid": kid})),
                "bad_signature",
            ),
            (
                "alg none, with a signature",
                format!(
                    "{}.{p64}.{s64}",
                    b64(&json!({"alg": "none", "typ": "at+jwt", "kid": kid}))
                ),
                "bad_signature",
            ),
            (
                "alg none, no kid",
                none(json!({"alg": "none", "typ": "at+jwt"})),
                "unknown_key",
            ),
            (
                "the signature cut by one character (not base64url)",
                format!("{h64}.{p64}.{}", &s64[..s64.len() - 1]),
                "bad_signature",
            ),
            (
                "the signature cut by four bytes",
                format!(
                    "{h64}.{p64}.{}",
                    Base64UrlUnpadded::encode_string(&sig[..sig.len() - 4])
                ),
                "bad_signature",
            ),
            (
                "the signature one byte longer",
                format!(
                    "{h64}.{p64}.{}",
                    Base64UrlUnpadded::encode_string(&[sig.as_slice(), &[0]].concat())
                ),
                "bad_signature",
            ),
            ("no signature", format!("{h64}.{p64}."), "bad_signature"),
            (
                "a signature that is not base64url",
                format!("{h64}.{p64}.!!!!"),
                "bad_signature",
            ),
            (
                "another payload",
                format!("{h64}.{}.{s64}", b64(&json!({"sub": "mallory"}))),
                "bad_signature",
            ),
            (
                "a critical extension",
                format!(
                    "{}.{p64}.{s64}",
                    b64(&json!({"alg": alg, "typ": "at+jwt", "kid": kid, "crit": ["x"]}))
                ),
                "malformed",
            ),
            (
                "over 8 KiB",
                format!("{h64}.{}.{s64}", b64(&json!({"pad": "x".repeat(9_000)}))),
                "malformed",
            ),
        ];
        for (what, input, reason) in cases {
            let run = keyward(d, &["jwt", "verify"], input.as_bytes());
            assert_eq!(
                (run.code, run.json()),
                (1, json!({ "error": reason })),
                "{alg}: {what}: {:?}",
                run.stderr
            );
            assert!(run.stderr.is_empty(), "{alg}: {what}: {:?}", run.stderr);
        }

        // Not a JWT at all: exit 2, naming it, without echoing the input.
        for input in [
            "not-a-jwt-secret-ish".to_owned(),
            "a.b".to_owned(),
            "a.b.c".to_owned(),
            format!("{h64}.{p64}.{s64}.{s64}"),
            format!("{}.{p64}.{s64}", b64(&json!(["alg", "none"]))),
            format!("{h64}.!!!.{s64}"),
            format!("{h64}.{p64}"),
        ] {
            let line = usage(
                &keyward(d, &["jwt", "verify"], input.as_bytes()),
                &["not a JWT"],
            );
            assert!(!line.contains(&input), "{line}");
        }
    }
}

// ---- One configuration for the command and a service ----

#[test]
fn tokens_the_command_mints_verify_in_a_service_reading_the_same_file() {
    let dir = setup("EdDSA");
    let d = dir.path();
    let toml = "[jwt]\nissuer = \"https://auth.example.com\"\naudience = \"api\"\n\
                [session]\naccess_ttl_secs = 600\n";
    std::fs::write(d.join("keyward.toml"), toml).unwrap();
    let from_jwt = keyward(d, &["jwt", "issue", "--sub", "alice"], b"")
        .line()
        .to_owned();
    let from_session = ok(&keyward(
        d,
        &["--store", "memory:", "session", "start", "--sub", "bob"],
        b"",
    ))["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // The service: the same two files, through the library.
    let service = |config: &Path| {
        Config::load(config)
            .unwrap()
            .builder()
            .unwrap()
            .keys(KeyRing::load(d.join("keyward.keys")).unwrap())
            .build()
            .unwrap()
    };
    let kw = service(&d.join("keyward.toml"));
    for (token, sub) in [(&from_jwt, "alice"), (&from_session, "bob")] {
        let claims = kw.jwt().unwrap().verify(token).unwrap();
        assert_eq!(claims.sub, sub);
        assert_eq!(claims.iss, "https://auth.example.com");
        assert_eq!(claims.aud, ["api"]);
        assert_eq!(claims.exp - claims.iat, 600);
    }
    // And the other way: a token the service mints verifies in the command.
    let minted = kw.jwt().unwrap().issue("carol", "s-1").unwrap();
    let out = ok(&keyward(
        d,
        &["jwt", "verify"],
        minted.unprotected_as_str().as_bytes(),
    ));
    assert_eq!(
        (&out["sub"], &out["iss"]),
        (&json!("carol"), &json!("https://auth.example.com"))
    );

    // A service reading another file refuses them.
    std::fs::write(
        d.join("other.toml"),
        "[jwt]\nissuer = \"https://other.example.com\"\naudience = \"api\"\n",
    )
    .unwrap();
    let other = service(&d.join("other.toml"));
    assert!(matches!(
        other.jwt().unwrap().verify(&from_jwt),
        Err(Error::Jwt(JwtError::WrongIssuer))
    ));
    // A file that does not parse is refused by both, naming it.
    std::fs::write(d.join("bad.toml"), "[jwt]\nissuer = 1\n").unwrap();
    let err = Config::load(d.join("bad.toml")).unwrap_err();
    assert!(
        matches!(&err, Error::Config(m) if m.contains("bad.toml")),
        "{err}"
    );
    usage(
        &keyward(
            d,
            &["--config", "bad.toml", "jwt", "issue", "--sub", "a"],
            b"",
        ),
        &["bad.toml", "issuer"],
    );
}
