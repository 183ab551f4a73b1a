//! `keyward erase --sub S`, end to end on SQLite, PostgreSQL and Redis: a
//! subject with sessions, API keys and a pending code is erased, every
//! credential of it is refused, another subject beside it keeps every one
//! of its own, a second run reports zeros, and a raw read of the store
//! finds no record of the erased subject, neither its name nor any record
//! it added; and bad input, which is exit 2.
#![cfg(feature = "cli")]
#![allow(clippy::unwrap_used, clippy::panic, clippy::arithmetic_side_effects)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use sqlx::Connection as _;

use common::cli::{Run, keyward};

/// Lifetimes as in the session tests: records left on a shared server end
/// within the hour. Grace 0: a replayed refresh token is reuse at once.
const CONFIG: &str =
    "[session]\nreuse_grace_secs = 0\nidle_ttl_secs = 1800\nabsolute_ttl_secs = 3600\n";

/// A fresh directory with a key ring and [`CONFIG`].
fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let run = keyward(dir.path(), &["init", "--alg", "HS256"], b"");
    assert_eq!(run.code, 0, "{}", run.stderr);
    std::fs::write(dir.path().join("keyward.toml"), CONFIG).unwrap();
    dir
}

/// A subject of this run's own, so that reruns and parallel tests on a
/// shared server never meet, and so that no subject contains another.
fn subject(who: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let n = N.fetch_add(1, Ordering::SeqCst);
    format!("{who}-{}-{nanos}-{n}@example.com", std::process::id())
}

fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn now_ms() -> i64 {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    i64::try_from(ms).unwrap()
}

/// A store for one test, and a raw way into it that bypasses keyward.
enum Raw {
    /// The SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL schema of the test's own: `url` has it as its search
    /// path, `base` is the server's URL.
    Postgres {
        base: String,
        url: String,
        schema: String,
    },
    /// A Redis key prefix of the test's own.
    Redis { base: String, prefix: String },
}

/// One record as stored: its key, its raw value, and whether it is live.
struct Row {
    key: String,
    value: Vec<u8>,
    live: bool,
}

struct TestStore {
    /// The `--store` argument.
    url: String,
    raw: Raw,
}

impl TestStore {
    fn sqlite(dir: &Path) -> Self {
        Self {
            url: "sqlite:erase.db".into(),
            raw: Raw::Sqlite(dir.join("erase.db")),
        }
    }

    fn postgres(base: String) -> Self {
        let schema = common::unique_prefix("cli_erase")
            .replace(['.', ':', '-'], "_")
            .to_ascii_lowercase();
        block_on(async {
            let mut conn = sqlx::PgConnection::connect(&base).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA \"{schema}\"")))
                .execute(&mut conn)
                .await
                .unwrap();
        });
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
        Self {
            url: url.clone(),
            raw: Raw::Postgres { base, url, schema },
        }
    }

    fn redis(base: String) -> Self {
        let prefix = common::unique_prefix("cli-erase");
        let sep = if base.contains('?') { '&' } else { '?' };
        Self {
            url: format!("{base}{sep}prefix={prefix}"),
            raw: Raw::Redis { base, prefix },
        }
    }

    /// Every record of the store's table (live, expired or deleted but
    /// not yet purged), or every key under the test's Redis prefix.
    fn dump(&self) -> Vec<Row> {
        match &self.raw {
            Raw::Sqlite(path) => block_on(async {
                use sqlx::ConnectOptions as _;
                let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(path)
                    .connect()
                    .await
                    .unwrap();
                let rows: Vec<(String, Vec<u8>, i64)> =
                    sqlx::query_as("SELECT key, value, expires_at FROM keyward_records")
                        .fetch_all(&mut conn)
                        .await
                        .unwrap();
                let now = now_ms();
                rows.into_iter()
                    .map(|(key, value, expires_at)| Row {
                        key,
                        value,
                        live: expires_at > now,
                    })
                    .collect()
            }),
            Raw::Postgres { url, .. } => block_on(async {
                let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
                let rows: Vec<(String, Vec<u8>, bool)> =
                    sqlx::query_as("SELECT key, value, expires_at > now() FROM keyward_records")
                        .fetch_all(&mut conn)
                        .await
                        .unwrap();
                rows.into_iter()
                    .map(|(key, value, live)| Row { key, value, live })
                    .collect()
            }),
            Raw::Redis { base, prefix } => {
                let mut conn = redis::Client::open(base.as_str())
                    .unwrap()
                    .get_connection()
                    .unwrap();
                let keys: BTreeSet<String> = common::raw::redis_keys(&mut conn, prefix)
                    .into_iter()
                    .collect();
                keys.into_iter()
                    .filter_map(|key| {
                        // A key that expired since the scan is gone.
                        let value: Option<Vec<u8>> =
                            redis::cmd("GET").arg(&key).query(&mut conn).unwrap();
                        value.map(|value| Row {
                            key,
                            value,
                            live: true,
                        })
                    })
                    .collect()
            }
        }
    }

    /// The keys of the live records.
    fn live_keys(&self) -> BTreeSet<String> {
        self.dump()
            .into_iter()
            .filter(|r| r.live)
            .map(|r| r.key)
            .collect()
    }

    /// How many records, keys or values, hold `needle`.
    fn holding(&self, needle: &str) -> usize {
        let needle = needle.as_bytes();
        let has = |hay: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
        self.dump()
            .iter()
            .filter(|r| has(r.key.as_bytes()) || has(&r.value))
            .count()
    }
}

impl Drop for TestStore {
    /// The test's schema or keys go, so that nothing is left on a shared
    /// server. Errors are ignored: a failed test has already said why.
    fn drop(&mut self) {
        match &self.raw {
            Raw::Sqlite(_) => {}
            Raw::Postgres { base, schema, .. } => {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async {
                    if let Ok(mut conn) = sqlx::PgConnection::connect(base).await {
                        let drop = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
                        let _ = sqlx::query(sqlx::AssertSqlSafe(drop))
                            .execute(&mut conn)
                            .await;
                    }
                });
            }
            Raw::Redis { base, prefix } => {
                let Ok(mut conn) =
                    redis::Client::open(base.as_str()).and_then(|c| c.get_connection())
                else {
                    return;
                };
                let keys: Vec<String> = redis::cmd("KEYS")
                    .arg(format!("{prefix}*"))
                    .query(&mut conn)
                    .unwrap_or_default();
                for key in keys {
                    let _: Result<(), _> = redis::cmd("DEL").arg(key).query(&mut conn);
                }
            }
        }
    }
}

/// `keyward --store STORE ARGS < stdin`.
fn run(dir: &Path, store: &TestStore, args: &[&str], stdin: &[u8]) -> Run {
    let mut all = vec!["--store", store.url.as_str()];
    all.extend_from_slice(args);
    keyward(dir, &all, stdin)
}

/// Exit 0, nothing on stderr, one JSON line.
fn ok(run: &Run) -> Value {
    assert_eq!(
        run.code, 0,
        "stdout {:?} stderr {:?}",
        run.stdout, run.stderr
    );
    assert!(run.stderr.is_empty(), "{:?}", run.stderr);
    run.json()
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

/// What a subject holds: three sessions' refresh tokens, two API keys and
/// a pending login code.
struct Held {
    refresh: Vec<String>,
    keys: Vec<String>,
    code: String,
}

fn give(d: &Path, store: &TestStore, sub: &str) -> Held {
    let refresh = (0..3)
        .map(|_| {
            let out = ok(&run(d, store, &["session", "start", "--sub", sub], b""));
            out["refresh_token"].as_str().unwrap().to_owned()
        })
        .collect();
    let keys = ["ci", "deploy"]
        .iter()
        .map(|name| {
            let args = ["key", "create", "--owner", sub, "--name", name];
            let out = ok(&run(d, store, &args, b""));
            assert_eq!(out["owner"], sub);
            out["key"].as_str().unwrap().to_owned()
        })
        .collect();
    let out = ok(&run(d, store, &["otp", "issue", "--sub", sub], b""));
    Held {
        refresh,
        keys,
        code: out["code"].as_str().unwrap().to_owned(),
    }
}

fn erase(d: &Path, store: &TestStore, sub: &str) -> Value {
    ok(&run(d, store, &["erase", "--sub", sub], b""))
}

fn erased(sub: &str, sessions: u64, api_keys: u64, codes: u64) -> Value {
    json!({
        "subject": sub,
        "erased": {"sessions": sessions, "api_keys": api_keys, "codes": codes, "factors": 0},
    })
}

/// Two subjects with the same credentials; one is erased, twice.
fn erase_one_of_two(store: &TestStore, dir: &Path) {
    let alice = subject("alice");
    let bob = subject("bob");

    let b = give(dir, store, &bob);
    let only_bob = store.live_keys();
    assert!(!only_bob.is_empty());
    let a = give(dir, store, &alice);
    let with_alice = store.live_keys();
    let alices: BTreeSet<&String> = with_alice.difference(&only_bob).collect();
    // Every kind of record alice holds: three session families and her
    // session list, two API keys and her owner index, her code record, her
    // code-send limit's record and her audit salt.
    let kinds: Vec<(&str, usize)> = [
        "kw:fam:", "kw:sess:", "kw:ak:", "kw:ako:", "kw:otp:", "kw:rl:", "kw:salt:",
    ]
    .into_iter()
    .map(|kind| (kind, alices.iter().filter(|k| k.contains(kind)).count()))
    .collect();
    assert_eq!(
        kinds,
        [
            ("kw:fam:", 3),
            ("kw:sess:", 1),
            ("kw:ak:", 2),
            ("kw:ako:", 1),
            ("kw:otp:", 1),
            ("kw:rl:", 1),
            ("kw:salt:", 1)
        ],
        "alice's records: {alices:?}"
    );
    assert_eq!(alices.len(), 10, "alice's records: {alices:?}");
    // Both names are there to be found before the erase: the checks
    // after it can fail.
    assert!(store.holding(&alice) > 0, "alice's name is stored");
    assert!(store.holding(&bob) > 0, "bob's name is stored");
    // Her audit tag too: her session families keep it for their events.
    let tag = ok(&run(dir, store, &["tag", "--sub", &alice], b""));
    assert_eq!(tag["subject"], alice.as_str());
    let tag = tag["tag"].as_str().unwrap().to_owned();
    assert!(store.holding(&tag) > 0, "alice's tag is stored");

    assert_eq!(erase(dir, store, &alice), erased(&alice, 3, 2, 1));
    // Her tag is gone with her salt: no one can compute it again.
    refused(&run(dir, store, &["tag", "--sub", &alice], b""), "unknown");
    assert_eq!(store.holding(&tag), 0, "alice's tag is still stored");

    // Nothing of alice's is left: no record she added is live, no record
    // holds her name, live or not. Bob's name is still there.
    let after = store.live_keys();
    let left: Vec<&String> = after.difference(&only_bob).collect();
    assert!(left.is_empty(), "records left after the erase: {left:?}");
    assert_eq!(store.holding(&alice), 0, "alice's name is still stored");
    assert!(store.holding(&bob) > 0, "bob's name is gone");

    // Every credential of alice's is refused. A refresh token whose family
    // record is gone is answered as one whose family outlived its store
    // lifetime.
    for token in &a.refresh {
        let r = run(dir, store, &["session", "refresh"], token.as_bytes());
        refused(&r, "expired");
    }
    for key in &a.keys {
        let r = run(dir, store, &["key", "verify"], key.as_bytes());
        refused(&r, "unknown");
    }
    let r = run(
        dir,
        store,
        &["otp", "verify", "--sub", &alice],
        a.code.as_bytes(),
    );
    refused(&r, "no_code");
    assert_eq!(
        ok(&run(dir, store, &["session", "list", "--sub", &alice], b"")),
        json!({ "sessions": [] })
    );
    assert_eq!(
        ok(&run(dir, store, &["key", "list", "--owner", &alice], b"")),
        json!({ "keys": [] })
    );

    // Every credential of bob's still works.
    for key in &b.keys {
        let out = ok(&run(dir, store, &["key", "verify"], key.as_bytes()));
        assert_eq!(out["owner"], bob.as_str());
    }
    let r = run(
        dir,
        store,
        &["otp", "verify", "--sub", &bob],
        b.code.as_bytes(),
    );
    assert_eq!(ok(&r), json!({ "ok": true }));
    for token in &b.refresh {
        let out = ok(&run(dir, store, &["session", "refresh"], token.as_bytes()));
        assert!(out["refresh_token"].is_string(), "{out}");
    }
    assert_eq!(
        ok(&run(dir, store, &["session", "list", "--sub", &bob], b""))["sessions"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // A second run finds nothing, and writes nothing of alice's.
    assert_eq!(erase(dir, store, &alice), erased(&alice, 0, 0, 0));
    assert_eq!(store.holding(&alice), 0);
    let left: Vec<String> = store.live_keys().difference(&only_bob).cloned().collect();
    assert!(left.is_empty(), "records after a second erase: {left:?}");

    // The erase is over, not pending: alice may start afresh, under a new
    // tag.
    ok(&run(
        dir,
        store,
        &["session", "start", "--sub", &alice],
        b"",
    ));
    assert!(store.holding(&alice) > 0);
    let new_tag = ok(&run(dir, store, &["tag", "--sub", &alice], b""));
    assert_ne!(new_tag["tag"].as_str().unwrap(), tag);
}

#[test]
fn erase_on_sqlite() {
    let dir = setup();
    let store = TestStore::sqlite(dir.path());
    erase_one_of_two(&store, dir.path());
}

#[test]
fn erase_on_postgres() {
    if let Some(url) = common::postgres("keyward erase on postgres") {
        let dir = setup();
        let store = TestStore::postgres(url);
        erase_one_of_two(&store, dir.path());
    }
}

#[test]
fn erase_on_redis() {
    if let Some(url) = common::redis("keyward erase on redis") {
        let dir = setup();
        let store = TestStore::redis(url);
        erase_one_of_two(&store, dir.path());
    }
}

/// Bad input is exit 2 with one line on stderr naming the problem, and
/// nothing on stdout; nothing is erased.
#[test]
fn bad_input_is_a_usage_error() {
    let dir = setup();
    let d = dir.path();
    let store = TestStore::sqlite(d);
    let sub = subject("carol");
    let held = give(d, &store, &sub);

    let long = "a".repeat(1025);
    let cases: [(&[&str], &str); 8] = [
        (&["erase"], "--sub"),
        (&["erase", "--sub", ""], "--sub"),
        (&["erase", "--sub", &long], "--sub"),
        (&["erase", "--sub", "a", "--sub", "b"], "--sub"),
        (&["tag"], "--sub"),
        (&["tag", "--sub", ""], "--sub"),
        (&["tag", "--sub", &long], "--sub"),
        (&["tag", "--sub", "a", "--sub", "b"], "--sub"),
    ];
    for (args, names) in cases {
        let r = run(d, &store, args, b"");
        let line = r.usage_error();
        assert!(line.contains(names), "{args:?}: {line}");
        assert!(r.stdout.is_empty(), "{args:?}: {:?}", r.stdout);
    }
    for command in ["erase", "tag"] {
        let r = run(d, &store, &[command, "--sub", ""], b"");
        assert!(r.usage_error().contains("subject"), "{}", r.stderr);
    }

    // A store that cannot be reached, without echoing its password.
    for url in [
        "redis://u:hunter2@127.0.0.1:1",
        "postgres://u:hunter2@127.0.0.1:1/db",
    ] {
        for command in ["erase", "tag"] {
            let r = keyward(d, &["--store", url, command, "--sub", &sub], b"");
            let line = r.usage_error();
            assert!(line.starts_with("keyward: store "), "{line}");
            assert!(!line.contains("hunter2"), "{line}");
            assert!(r.stdout.is_empty());
        }
    }
    // A key ring that is not there.
    for command in ["erase", "tag"] {
        let r = run(
            d,
            &store,
            &["--keyring", "missing.keys", command, "--sub", &sub],
            b"",
        );
        assert!(r.usage_error().contains("missing.keys"), "{}", r.stderr);
    }

    // 1,024 bytes is a subject, with nothing to erase and no tag.
    let longest = "a".repeat(1024);
    assert_eq!(erase(d, &store, &longest), erased(&longest, 0, 0, 0));
    refused(&run(d, &store, &["tag", "--sub", &longest], b""), "unknown");
    // Another key ring does not know carol's salt record.
    let other = tempfile::tempdir().unwrap();
    let r = keyward(other.path(), &["init", "--alg", "HS256"], b"");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let other_keys = other.path().join("keyward.keys");
    let r = run(
        d,
        &store,
        &[
            "--keyring",
            other_keys.to_str().unwrap(),
            "tag",
            "--sub",
            &sub,
        ],
        b"",
    );
    refused(&r, "unknown");
    ok(&run(d, &store, &["tag", "--sub", &sub], b""));

    // None of it touched carol's credentials.
    for key in &held.keys {
        ok(&run(d, &store, &["key", "verify"], key.as_bytes()));
    }
    let r = run(
        d,
        &store,
        &["otp", "verify", "--sub", &sub],
        held.code.as_bytes(),
    );
    assert_eq!(ok(&r), json!({ "ok": true }));
    for token in &held.refresh {
        ok(&run(d, &store, &["session", "refresh"], token.as_bytes()));
    }
}
