//! `keyward key`, end to end: the contract's rows, and separate processes
//! sharing one store (SQLite, PostgreSQL, Redis) racing a revoke and
//! living through a roll's overlap.
#![allow(clippy::unwrap_used, clippy::panic, clippy::arithmetic_side_effects)]

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::cli::{Run, keyward};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A fresh directory with a key ring.
fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let run = keyward(dir.path(), &["init", "--alg", "HS256"], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    dir
}

/// `keyward --store STORE key ARGS < stdin`.
fn key(dir: &Path, store: &str, args: &[&str], stdin: &[u8]) -> Run {
    let mut all = vec!["--store", store, "key"];
    all.extend_from_slice(args);
    keyward(dir, &all, stdin)
}

fn ok(run: &Run) -> serde_json::Value {
    assert_eq!(
        run.code, 0,
        "stdout {:?} stderr {:?}",
        run.stdout, run.stderr
    );
    run.json()
}

/// Exit 1 with `{"error": reason}`.
fn refused(run: &Run, reason: &str) {
    assert_eq!(
        run.code, 1,
        "stdout {:?} stderr {:?}",
        run.stdout, run.stderr
    );
    assert_eq!(run.json(), serde_json::json!({ "error": reason }));
}

fn created(dir: &Path, store: &str, owner: &str) -> (String, String) {
    let out = ok(&key(dir, store, &["create", "--owner", owner], b""));
    (
        out["key"].as_str().unwrap().to_owned(),
        out["id"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn key_commands_rows() {
    let dir = setup();
    let d = dir.path();
    let store = "sqlite:keys.db";

    let (t0, run, t1) = (
        now(),
        key(
            d,
            store,
            &[
                "create",
                "--owner",
                "alice",
                "--name",
                "ci",
                "--scope",
                "repo:read",
                "--scope",
                "repo:write",
                "--expires-in",
                "3600",
                "--prefix",
                "kw_live",
            ],
            b"",
        ),
        now(),
    );
    let out = ok(&run);
    let keys: Vec<&str> = out
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "created_at",
            "expires_at",
            "id",
            "key",
            "name",
            "owner",
            "scopes"
        ]
    );
    let the_key = out["key"].as_str().unwrap().to_owned();
    let id = out["id"].as_str().unwrap().to_owned();
    assert!(the_key.starts_with(&format!("kw_live_{id}_")), "{the_key}");
    assert_eq!(out["owner"], "alice");
    assert_eq!(out["name"], "ci");
    assert_eq!(
        out["scopes"],
        serde_json::json!(["repo:read", "repo:write"])
    );
    let created_at = out["created_at"].as_u64().unwrap();
    assert!((t0..=t1).contains(&created_at));
    assert_eq!(out["expires_at"].as_u64().unwrap(), created_at + 3600);

    // verify: the key on stdin, with one trailing newline removed.
    let out = ok(&key(
        d,
        store,
        &["verify"],
        format!("{the_key}\n").as_bytes(),
    ));
    assert_eq!(
        out,
        serde_json::json!({
            "id": id, "owner": "alice", "name": "ci",
            "scopes": ["repo:read", "repo:write"], "expires_at": created_at + 3600,
        })
    );

    // Defaults: prefix kw, empty name, no scopes, no expiry.
    let (plain, plain_id) = created(d, store, "alice");
    assert!(plain.starts_with("kw_"));
    let out = ok(&key(d, store, &["verify"], plain.as_bytes()));
    assert_eq!(out["expires_at"], serde_json::Value::Null);

    // roll: same id, the old key ends at once by default.
    let out = ok(&key(d, store, &["roll", "--id", &plain_id], b""));
    let (t, new) = (now(), out["key"].as_str().unwrap().to_owned());
    assert_eq!(out["id"], plain_id.as_str());
    assert!(out["previous_valid_until"].as_u64().unwrap() <= t);
    refused(&key(d, store, &["verify"], plain.as_bytes()), "expired");
    ok(&key(d, store, &["verify"], new.as_bytes()));

    // disable, enable.
    assert_eq!(
        ok(&key(d, store, &["disable", "--id", &plain_id], b"")),
        serde_json::json!({"id": plain_id, "enabled": false})
    );
    refused(&key(d, store, &["verify"], new.as_bytes()), "disabled");
    assert_eq!(
        ok(&key(d, store, &["enable", "--id", &plain_id], b"")),
        serde_json::json!({"id": plain_id, "enabled": true})
    );
    ok(&key(d, store, &["verify"], new.as_bytes()));

    // list: newest first, no key, no digest; last_used_at was written.
    let out = ok(&key(d, store, &["list", "--owner", "alice"], b""));
    let listed = out["keys"].as_array().unwrap();
    assert_eq!(listed.len(), 2);
    for k in listed {
        let fields: Vec<&str> = k.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            fields,
            [
                "created_at",
                "enabled",
                "expires_at",
                "id",
                "last_used_at",
                "name",
                "scopes"
            ]
        );
    }
    let text = out.to_string();
    for secret in [&the_key, &plain, &new] {
        assert!(
            !text.contains(&secret[secret.len() - 49..]),
            "a secret listed"
        );
    }
    assert!(listed[0]["created_at"].as_u64() >= listed[1]["created_at"].as_u64());
    assert!(
        listed
            .iter()
            .any(|k| k["id"] == plain_id.as_str() && k["last_used_at"].is_u64())
    );
    assert_eq!(
        ok(&key(d, store, &["list", "--owner", "nobody"], b"")),
        serde_json::json!({"keys": []})
    );

    // revoke: final, and idempotent.
    for _ in 0..2 {
        assert_eq!(
            ok(&key(d, store, &["revoke", "--id", &plain_id], b"")),
            serde_json::json!({"id": plain_id, "revoked": true})
        );
    }
    refused(&key(d, store, &["verify"], new.as_bytes()), "revoked");
    refused(&key(d, store, &["roll", "--id", &plain_id], b""), "revoked");
    refused(
        &key(d, store, &["enable", "--id", &plain_id], b""),
        "revoked",
    );
    refused(
        &key(d, store, &["disable", "--id", &plain_id], b""),
        "revoked",
    );
    let out = ok(&key(d, store, &["list", "--owner", "alice"], b""));
    assert_eq!(out["keys"].as_array().unwrap().len(), 1);

    // Unknown ids and keys.
    for cmd in ["roll", "revoke", "disable", "enable"] {
        refused(
            &key(d, store, &[cmd, "--id", "AAAAAAAAAAAA"], b""),
            "unknown",
        );
    }
    let mut forged = the_key.clone();
    forged.replace_range(forged.len() - 20..forged.len() - 10, "0123456789");
    // A forged secret fails its checksum offline: bad input, exit 2.
    key(d, store, &["verify"], forged.as_bytes()).usage_error();
}

#[test]
fn key_commands_refuse_bad_input() {
    let dir = setup();
    let d = dir.path();
    let store = "sqlite:keys.db";
    for (args, stdin, names) in [
        (&["create", "--owner", ""][..], &b""[..], "owner"),
        (
            &["create", "--owner", "a", "--prefix", "Bad"],
            b"",
            "prefix",
        ),
        (
            &["create", "--owner", "a", "--scope", "has space"],
            b"",
            "scope",
        ),
        (
            &["create", "--owner", "a", "--expires-in", "0"],
            b"",
            "expires_in",
        ),
        (
            &["create", "--owner", "a", "--expires-in", "-5"],
            b"",
            "'-5'",
        ),
        (&["create"], b"", "--owner"),
        (&["roll", "--id", "short"], b"", "key id"),
        (
            &["roll", "--id", "AAAAAAAAAAAA", "--overlap", "x"],
            b"",
            "overlap",
        ),
        (&["revoke", "--id", "AAAAAAAAAAA!"], b"", "key id"),
        (&["verify"], b"", "length"),
        (&["verify"], b"kw_AAAAAAAAAAAA_notakey", "length"),
        (&["verify"], b"\xff\xfe", "UTF-8"),
        (&["list"], b"", "--owner"),
    ] {
        let run = key(d, store, args, stdin);
        let line = run.usage_error();
        assert!(line.contains(names), "{args:?}: {line}");
        assert!(run.stdout.is_empty(), "{args:?}: {:?}", run.stdout);
    }
    // A store that cannot be reached is bad input too, and its URL's
    // password is not repeated.
    let run = key(
        d,
        "redis://u:hunter2@127.0.0.1:1",
        &["list", "--owner", "a"],
        b"",
    );
    assert!(!run.usage_error().contains("hunter2"));
    // The cap is exit 1, from keyward.toml's [api_keys].
    std::fs::write(
        d.join("keyward.toml"),
        "[api_keys]\nmax_keys_per_owner = 1\n",
    )
    .unwrap();
    created(d, store, "bob");
    refused(
        &key(d, store, &["create", "--owner", "bob"], b""),
        "too_many_keys",
    );
    std::fs::write(
        d.join("keyward.toml"),
        "[api_keys]\nmax_key_per_owner = 1\n",
    )
    .unwrap();
    assert!(
        key(d, store, &["list", "--owner", "bob"], b"")
            .usage_error()
            .contains("max_key_per_owner")
    );
}

/// One verify run by a racing process: when it started and ended, and its
/// exit code and answer.
struct Seen {
    started: Instant,
    ended: Instant,
    code: i32,
    answer: String,
}

/// 8 processes verify one key in a loop while a ninth revokes it. Every
/// verify that started after the revoke returned is refused; every one
/// that ended before the revoke started was accepted.
fn revoke_race(store: &str) {
    let dir = setup();
    let d = dir.path();
    if store.starts_with("sqlite:") {
        // Create the file before the racers open it.
        created(d, store, "setup");
    }
    let (the_key, id) = created(d, store, "alice");
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let (stop, seen) = (Arc::clone(&stop), Arc::clone(&seen));
            let (dir, store, the_key) = (d.to_owned(), store.to_owned(), the_key.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let started = Instant::now();
                    let run = key(&dir, &store, &["verify"], the_key.as_bytes());
                    let ended = Instant::now();
                    seen.lock().unwrap().push(Seen {
                        started,
                        ended,
                        code: run.code,
                        answer: format!("{}{}", run.stdout, run.stderr),
                    });
                }
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(1_500));
    let revoke_started = Instant::now();
    ok(&key(d, store, &["revoke", "--id", &id], b""));
    let revoke_returned = Instant::now();
    thread::sleep(Duration::from_millis(1_500));
    stop.store(true, Ordering::SeqCst);
    for r in racers {
        r.join().unwrap();
    }
    let seen = seen.lock().unwrap();
    let (mut before, mut during, mut after) = (0, 0, 0);
    for s in seen.iter() {
        if s.started > revoke_returned {
            after += 1;
            assert_eq!(s.code, 1, "a verify after the revoke: {}", s.answer);
            assert_eq!(s.answer.trim(), r#"{"error":"revoked"}"#);
        } else if s.ended < revoke_started {
            before += 1;
            assert_eq!(s.code, 0, "a verify before the revoke: {}", s.answer);
        } else {
            during += 1;
            assert!(s.code == 0 || s.answer.contains("revoked"), "{}", s.answer);
        }
    }
    println!(
        "{store_kind}: {before} verifies accepted before the revoke, {during} overlapping it, \
         {after} started after it returned, all refused",
        store_kind = store.split(':').next().unwrap_or_default()
    );
    assert!(
        before > 0 && after > 0,
        "the race ran: {before} before, {after} after"
    );
}

/// A roll with a 5 s overlap: the old key works until the overlap ends
/// and fails after it; the new key works throughout. Each verify is its
/// own process.
fn roll_overlap(store: &str) {
    let dir = setup();
    let d = dir.path();
    let (old, id) = created(d, store, "alice");
    let out = ok(&key(
        d,
        store,
        &["roll", "--id", &id, "--overlap", "5"],
        b"",
    ));
    let new = out["key"].as_str().unwrap().to_owned();
    let until = out["previous_valid_until"].as_u64().unwrap();
    assert!(until >= now() + 3 && until <= now() + 6, "{until}");
    ok(&key(d, store, &["verify"], old.as_bytes()));
    ok(&key(d, store, &["verify"], new.as_bytes()));
    // Until the overlap has surely ended (a second past it, for the
    // store's clock), both keep working or the old one has just ended.
    while now() < until + 1 {
        let run = key(d, store, &["verify"], old.as_bytes());
        assert!(
            run.code == 0 || run.stdout.contains("expired"),
            "{}",
            run.stdout
        );
        ok(&key(d, store, &["verify"], new.as_bytes()));
        thread::sleep(Duration::from_millis(200));
    }
    refused(&key(d, store, &["verify"], old.as_bytes()), "expired");
    ok(&key(d, store, &["verify"], new.as_bytes()));
}

fn redis_store(test: &str) -> Option<String> {
    let url = common::redis(test)?;
    let sep = if url.contains('?') { '&' } else { '?' };
    Some(format!(
        "{url}{sep}prefix={}",
        common::unique_prefix("cli-keys")
    ))
}

#[test]
fn revoke_race_on_sqlite() {
    revoke_race("sqlite:keys.db");
}

#[test]
fn revoke_race_on_postgres() {
    if let Some(url) = common::postgres("keyward key revoke race on postgres") {
        revoke_race(&url);
    }
}

#[test]
fn revoke_race_on_redis() {
    if let Some(url) = redis_store("keyward key revoke race on redis") {
        revoke_race(&url);
    }
}

#[test]
fn roll_overlap_on_sqlite() {
    roll_overlap("sqlite:keys.db");
}

#[test]
fn roll_overlap_on_postgres() {
    if let Some(url) = common::postgres("keyward key roll on postgres") {
        roll_overlap(&url);
    }
}

#[test]
fn roll_overlap_on_redis() {
    if let Some(url) = redis_store("keyward key roll on redis") {
        roll_overlap(&url);
    }
}
