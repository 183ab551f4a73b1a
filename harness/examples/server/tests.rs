//! The reference auth server, end to end: it is served on an ephemeral
//! loopback port and driven with a real HTTP client. Two instances sharing
//! one store (SQLite, PostgreSQL or Redis) stand in for two replicas behind
//! a load balancer. `cargo test --all-features` runs these tests (the
//! example is built in test mode).
#![allow(clippy::unwrap_used, clippy::panic, clippy::arithmetic_side_effects)]

use super::app;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use keyward::clock::{Clock, ManualClock, SystemClock};
use keyward::{ApiKeyPolicy, Complete, JwtAlg, KeyRing, Keyward, SqliteStore};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tempfile::TempDir;

/// A django-pbkdf2-sha256 hash made by Django 5.2.19 (tests/data/legacy)
/// for "correct horse battery staple".
const DJANGO_HASH: &str =
    "pbkdf2_sha256$1000$tA0jUhl26X9Qf7Y2KbDERg$y60Tjp/vlE6maCpHoGXXUCU+VtNad/l6uUukUbgYQI0=";

struct Server {
    base: String,
    client: reqwest::Client,
    users: app::Users,
    clock: ManualClock,
    outbox: PathBuf,
    _dir: Arc<TempDir>,
}

/// The library defaults, at a cost that keeps the tests quick; the example
/// binary uses the default iterations.
fn test_policy() -> keyward::PasswordPolicy {
    let mut policy = app::password_policy();
    policy.iterations = 10_000;
    policy
}

/// The low-priority runtime for password work, as the server binary runs
/// it; one for the whole test process (never dropped).
fn hashing() -> tokio::runtime::Handle {
    static HASHING: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    HASHING
        .get_or_init(|| keyward::axum::hashing_runtime(10).unwrap())
        .handle()
        .clone()
}

/// Serves `kw` and `users` on an ephemeral loopback port, behind one
/// trusted proxy (the tests set `X-Forwarded-For`), with codes going to
/// `dir/outbox.jsonl`, hashing passwords on the low-priority runtime.
async fn start(
    kw: Keyward<Complete>,
    users: app::Users,
    clock: ManualClock,
    dir: Arc<TempDir>,
) -> Server {
    let outbox = dir.path().join("outbox.jsonl");
    let options = app::Options {
        mailer: Arc::new(app::OutboxMailer::open(&outbox).unwrap()),
        trusted_proxies: 1,
        limits: keyward::axum::RateLimits::default(),
        hashing: Some(hashing()),
    };
    let router = app::router(kw, users.clone(), options);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    Server {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
        users,
        clock,
        outbox,
        _dir: dir,
    }
}

/// One server on a SQLite file of its own (store and user table).
async fn serve() -> Server {
    serve_with(ApiKeyPolicy::default()).await
}

/// [`serve`], with `api_keys` as the API-key policy.
async fn serve_with(api_keys: ApiKeyPolicy) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("server.db");
    let clock = ManualClock::new(SystemClock.now());
    let kw = Keyward::builder()
        .password_policy(test_policy())
        .issuer("http://keyward.test")
        .audience("keyward-server")
        .keys(KeyRing::generate(JwtAlg::EdDSA).unwrap())
        .store(SqliteStore::open(&db).await.unwrap())
        .clock(Arc::new(clock.clone()))
        .api_key_policy(api_keys)
        .build()
        .unwrap();
    let users = app::Users::open(&db).await.unwrap();
    start(kw, users, clock, Arc::new(dir)).await
}

/// Two replicas, as two processes behind a load balancer would be: each
/// opens its own connections to the store at `store_url` and to the user
/// table at `users_url`, and loads the same key ring file from `dir`. They
/// share one clock and one outbox.
async fn replicas(dir: TempDir, store_url: &str, users_url: &str) -> (Server, Server) {
    let dir = Arc::new(dir);
    let keyring = dir.path().join("keyward.keys");
    KeyRing::generate(JwtAlg::EdDSA)
        .unwrap()
        .save_new(&keyring)
        .unwrap();
    let clock = ManualClock::new(SystemClock.now());
    let mut servers = Vec::new();
    for _ in 0..2 {
        let kw = Keyward::builder()
            .password_policy(test_policy())
            .issuer("http://keyward.test")
            .audience("keyward-server")
            .keys(KeyRing::load(&keyring).unwrap())
            .shared_store(app::open_store(store_url).await.unwrap())
            .clock(Arc::new(clock.clone()))
            .build()
            .unwrap();
        let users = app::Users::connect(users_url).await.unwrap();
        servers.push(start(kw, users, clock.clone(), Arc::clone(&dir)).await);
    }
    let b = servers.pop().unwrap();
    let a = servers.pop().unwrap();
    (a, b)
}

/// `sqlite:` and a path in `dir`.
fn sqlite_url(dir: &TempDir, file: &str) -> String {
    format!("sqlite:{}", dir.path().join(file).display())
}

/// A user name no earlier run used: the PostgreSQL database and the Redis
/// server outlive the tests.
fn unique_user(test: &str, who: &str) -> String {
    let name = format!(
        "{}.{who}",
        common::unique_prefix(test).trim_end_matches(':')
    );
    assert!(name.len() <= 64, "{name}");
    name
}

impl Server {
    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        (
            status,
            if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap()
            },
        )
    }

    async fn with_bearer(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        (
            status,
            if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap()
            },
        )
    }

    async fn login(&self, user: &str, pw: &str) -> (StatusCode, Value) {
        self.post("/login", json!({"username": user, "password": pw}))
            .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_and_login_paths() {
    let s = serve().await;
    let (st, _) = s
        .post(
            "/register",
            json!({"username": "alice", "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, body) = s
        .post(
            "/register",
            json!({"username": "alice", "password": "another long one"}),
        )
        .await;
    assert_eq!(
        (st, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("user_exists"))
    );
    let (st, body) = s
        .post("/register", json!({"username": "bob", "password": "short"}))
        .await;
    assert_eq!(
        (st, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("weak_password"))
    );
    let (st, body) = s
        .post(
            "/register",
            json!({"username": "bad name!", "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(
        (st, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_username"))
    );

    // Unknown user and wrong password: the same answer.
    let (st_unknown, unknown) = s.login("mallory", "correct horse battery").await;
    let (st_wrong, wrong) = s.login("alice", "wrong horse battery").await;
    assert_eq!(
        (st_unknown, st_wrong),
        (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED)
    );
    assert_eq!(unknown, json!({"error": "invalid_credentials"}));
    assert_eq!(unknown, wrong);

    let (st, pair) = s.login("alice", "correct horse battery").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(pair["expires_in"], 900);
    // RFC 6749 §5.1: the token type is required, and a bearer token's is
    // "Bearer" (RFC 6750 §6.1.1).
    assert_eq!(pair["token_type"], "Bearer");
    let access = pair["access_token"].as_str().unwrap();
    let (st, me) = s
        .with_bearer(reqwest::Method::GET, "/me", Some(access))
        .await;
    assert_eq!((st, me["sub"].as_str()), (StatusCode::OK, Some("alice")));
    assert_eq!(
        s.with_bearer(reqwest::Method::GET, "/me", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.with_bearer(reqwest::Method::GET, "/me", Some("not.a.jwt"))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );

    let (st, jwks) = s
        .with_bearer(reqwest::Method::GET, "/.well-known/jwks.json", None)
        .await;
    assert_eq!(
        (st, jwks["keys"][0]["kty"].as_str()),
        (StatusCode::OK, Some("OKP"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_django_hash_is_upgraded_inside_login() {
    let s = serve().await;
    assert!(s.users.insert("django-user", DJANGO_HASH).await.unwrap());
    let (st, _) = s
        .login("django-user", "correct horse battery stapler")
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(
        s.users.stored_hash("django-user").await.unwrap(),
        DJANGO_HASH,
        "no rehash on a wrong password"
    );
    let (st, _) = s.login("django-user", "correct horse battery staple").await;
    assert_eq!(st, StatusCode::OK);
    let upgraded = s.users.stored_hash("django-user").await.unwrap();
    assert!(
        upgraded.starts_with("$pbkdf2-sha256$i=10000,l=32$"),
        "{upgraded}"
    );
    assert_eq!(
        s.login("django-user", "correct horse battery staple")
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_reuse_logout_and_logout_all() {
    let s = serve().await;
    s.post(
        "/register",
        json!({"username": "carol", "password": "correct horse battery"}),
    )
    .await;
    let (_, first) = s.login("carol", "correct horse battery").await;
    let (_, other) = s.login("carol", "correct horse battery").await;

    let (st, second) = s
        .post(
            "/token/refresh",
            json!({"refresh_token": first["refresh_token"]}),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    // Within the grace window the predecessor gets the same successor.
    let (st, again) = s
        .post(
            "/token/refresh",
            json!({"refresh_token": first["refresh_token"]}),
        )
        .await;
    assert_eq!(
        (st, &again["refresh_token"]),
        (StatusCode::OK, &second["refresh_token"])
    );
    // After it: reuse, and the family is revoked.
    s.clock.advance(11);
    let (st, body) = s
        .post(
            "/token/refresh",
            json!({"refresh_token": first["refresh_token"]}),
        )
        .await;
    assert_eq!(
        (st, body),
        (StatusCode::UNAUTHORIZED, json!({"error": "reused"}))
    );
    let (st, body) = s
        .post(
            "/token/refresh",
            json!({"refresh_token": second["refresh_token"]}),
        )
        .await;
    assert_eq!(
        (st, body),
        (StatusCode::UNAUTHORIZED, json!({"error": "revoked"}))
    );
    let (st, body) = s
        .post("/token/refresh", json!({"refresh_token": "kwr_forged"}))
        .await;
    assert_eq!(
        (st, body),
        (StatusCode::UNAUTHORIZED, json!({"error": "invalid"}))
    );

    // logout: 204, and the family is gone.
    let (_, third) = s.login("carol", "correct horse battery").await;
    assert_eq!(
        s.post("/logout", json!({"refresh_token": third["refresh_token"]}))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let (st, body) = s
        .post(
            "/token/refresh",
            json!({"refresh_token": third["refresh_token"]}),
        )
        .await;
    assert_eq!(
        (st, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("revoked"))
    );

    // logout-all: every session of the user.
    let (_, fourth) = s.login("carol", "correct horse battery").await;
    let access = fourth["access_token"].as_str().unwrap();
    assert_eq!(
        s.with_bearer(reqwest::Method::POST, "/logout-all", None)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        s.with_bearer(reqwest::Method::POST, "/logout-all", Some(access))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    for pair in [&other, &fourth] {
        let (st, body) = s
            .post(
                "/token/refresh",
                json!({"refresh_token": pair["refresh_token"]}),
            )
            .await;
        assert_eq!(
            (st, body["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("revoked"))
        );
    }
    // The revoked session's access token no longer passes the strict check.
    assert_eq!(
        s.with_bearer(reqwest::Method::POST, "/logout-all", Some(access))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
}

impl Server {
    /// The codes sent to `user`, from the outbox.
    fn codes_for(&self, user: &str) -> Vec<String> {
        std::fs::read_to_string(&self.outbox)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|v| v["to"] == user)
            .map(|v| v["code"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Asks for a code for `user` (an account) and returns it once the
    /// mail task has written it to the outbox: the answer does not wait
    /// for the mail.
    async fn send_code(&self, user: &str) -> String {
        let before = self.codes_for(user).len();
        let (st, _) = self.post("/otp/send", json!({"username": user})).await;
        assert_eq!(st, StatusCode::ACCEPTED);
        for _ in 0..500 {
            let mut codes = self.codes_for(user);
            if codes.len() > before {
                return codes.pop().unwrap();
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("no code for {user} within 5 s");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_time_code_login_and_lockout() {
    let s = serve().await;
    for user in ["dora", "erin"] {
        s.post(
            "/register",
            json!({"username": user, "password": "correct horse battery"}),
        )
        .await;
    }
    // Unknown users get the same 202, and no code.
    assert_eq!(
        s.post("/otp/send", json!({"username": "nobody"})).await.0,
        StatusCode::ACCEPTED
    );

    // The right code logs in.
    let code = s.send_code("dora").await;
    // One mail task, in order: nobody's turn has passed, and no mail.
    assert!(s.codes_for("nobody").is_empty());
    assert_eq!(code.len(), 6);
    let (st, pair) = s
        .post("/otp/verify", json!({"username": "dora", "code": code}))
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, me) = s
        .with_bearer(reqwest::Method::GET, "/me", pair["access_token"].as_str())
        .await;
    assert_eq!((st, me["sub"].as_str()), (StatusCode::OK, Some("dora")));
    // Single use.
    let (st, _) = s
        .post("/otp/verify", json!({"username": "dora", "code": code}))
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);

    // Three wrong codes lock the subject for an hour; then even the right
    // one is refused.
    let right = s.send_code("erin").await;
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    let mut left = Vec::new();
    for _ in 0..3 {
        let (st, body) = s
            .post("/otp/verify", json!({"username": "erin", "code": wrong}))
            .await;
        assert_eq!(
            (st, body["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid"))
        );
        left.push(body["attempts_left"].as_u64().unwrap());
    }
    assert_eq!(left, [2, 1, 0]);
    let (st, body) = s
        .post("/otp/verify", json!({"username": "erin", "code": right}))
        .await;
    assert_eq!(
        (st, body["error"].as_str()),
        (StatusCode::LOCKED, Some("locked"))
    );
    assert_eq!(body["retry_after"].as_u64(), Some(3600));
    // After the hour, a new code works (the lock discarded the old one).
    s.clock.advance(3600);
    let fresh = s.send_code("erin").await;
    assert_eq!(
        s.post("/otp/verify", json!({"username": "erin", "code": fresh}))
            .await
            .0,
        StatusCode::OK
    );
}

/// Seconds the per-source login limit takes to earn back one attempt:
/// what a source over its limit is told to wait, from the moment it is
/// refused.
fn login_emission_secs() -> u64 {
    let l = keyward::limit::LOGIN_PER_SOURCE;
    l.period().as_secs() / u64::from(l.count())
}

/// The 429 of a rate limit, as a client sees it: `Retry-After` in whole
/// seconds, and the same number in the body.
fn too_many(answer: &Answer) -> u64 {
    let (st, headers, body) = answer;
    assert_eq!(*st, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let header: Vec<u64> = headers
        .iter()
        .filter(|(h, _)| h == "retry-after")
        .map(|(_, v)| v.parse().unwrap())
        .collect();
    assert_eq!(header.len(), 1, "{headers:?}");
    assert_eq!(
        *body,
        json!({"error": "too_many_requests", "retry_after": header[0]})
    );
    header[0]
}

/// One source gets the per-source limit's burst of password attempts,
/// then 429 with `Retry-After`, rounded up to whole seconds; a client that
/// waits that long is let through. Another source is not affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_floods_from_one_source_are_limited_with_retry_after() {
    let s = serve().await;
    let wrong = |i: u32| json!({"username": format!("user{i}"), "password": "wrong password"});
    let mut answers = Vec::new();
    for i in 0..12 {
        answers.push(s.post_from("203.0.113.7", "/login", wrong(i)).await);
    }
    let burst = usize::try_from(keyward::limit::LOGIN_PER_SOURCE.burst_size()).unwrap();
    for (st, _, body) in &answers[..burst] {
        assert_eq!(
            (*st, body),
            (
                StatusCode::UNAUTHORIZED,
                &json!({"error": "invalid_credentials"})
            )
        );
    }
    let emission = login_emission_secs();
    for refused in &answers[burst..] {
        assert_eq!(too_many(refused), emission);
    }
    // Half a second on, 5.5 s are left: rounded up, never down, so that a
    // client waiting what it is told is not refused again.
    s.clock.advance_ms(500);
    let wait = too_many(&s.post_from("203.0.113.7", "/login", wrong(12)).await);
    assert_eq!(wait, emission);
    s.clock.advance(wait);
    let (st, _, _) = s.post_from("203.0.113.7", "/login", wrong(13)).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED, "waited as told");
    // Another source is not affected.
    let (st, _, _) = s.post_from("198.51.100.9", "/login", wrong(14)).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
}

/// The user table's contract, on any database: a taken name is refused,
/// and a rehash lands only over the hash that was verified.
async fn user_table_contract(users: &app::Users, name: &str) {
    assert_eq!(users.get(name).await.unwrap(), None);
    assert!(users.insert(name, "hash-1").await.unwrap());
    assert!(!users.insert(name, "hash-2").await.unwrap(), "name taken");
    assert!(
        !users.replace_hash(name, "stale", "hash-3").await.unwrap(),
        "a hash changed since the verify is not overwritten"
    );
    assert_eq!(users.stored_hash(name).await.as_deref(), Some("hash-1"));
    assert!(users.replace_hash(name, "hash-1", "hash-3").await.unwrap());
    assert_eq!(users.stored_hash(name).await.as_deref(), Some("hash-3"));
    assert!(
        !users.replace_hash(name, "hash-1", "hash-4").await.unwrap(),
        "a second rehash from the same old hash loses"
    );
    assert_eq!(users.stored_hash(name).await.as_deref(), Some("hash-3"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_user_table_inserts_once_and_rehashes_by_compare_and_swap() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir, "users.db");
    let users = app::Users::connect(&url).await.unwrap();
    user_table_contract(&users, "frank").await;
    // Reopening keeps the table (the DDL is idempotent).
    let again = app::Users::connect(&url).await.unwrap();
    assert_eq!(again.stored_hash("frank").await.as_deref(), Some("hash-3"));
}

#[test]
fn store_and_user_urls_are_dispatched_by_scheme() {
    assert_eq!(app::scheme("sqlite:keyward.db"), Some("sqlite"));
    assert_eq!(app::scheme("postgres://h/db"), Some("postgres"));
    assert_eq!(app::scheme("PostgreSQL://h/db"), Some("postgres"));
    assert_eq!(app::scheme("redis://h?prefix=a:"), Some("redis"));
    assert_eq!(app::scheme("mysql://h/db"), None);
    assert_eq!(app::scheme("keyward.db"), None);
    assert_eq!(
        app::default_users_url("sqlite:a.db"),
        "sqlite:a.db",
        "SQLite: the store's own file"
    );
    assert_eq!(
        app::default_users_url("postgres://h/db"),
        "postgres://h/db",
        "PostgreSQL: the store's own database"
    );
    assert_eq!(
        app::default_users_url("redis://h"),
        "sqlite:keyward-server-users.db",
        "Redis holds no tables"
    );
}

/// Every refusal is one line without the URL, which may hold a password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_urls_are_refused_without_echoing_them() {
    let mut refusals = vec![
        app::open_store("mysql://app:s3cret-pw@db/app").await.err(),
        app::open_store("sqlite:").await.err(),
        app::Users::connect("redis://:s3cret-pw@cache:6379")
            .await
            .err(),
        app::Users::connect("mysql://app:s3cret-pw@db/app")
            .await
            .err(),
        app::Users::connect("s3cret-pw").await.err(),
    ];
    #[cfg(feature = "postgres")]
    {
        // Nothing listens on port 1: the connection is refused (after the
        // pool's 5 s of retries).
        refusals.push(
            app::Users::connect("postgres://app:s3cret-pw@127.0.0.1:1/app")
                .await
                .err(),
        );
        refusals.push(
            app::Users::connect("postgres://app:s3cret-pw@[bad")
                .await
                .err(),
        );
    }
    #[cfg(feature = "redis")]
    refusals.push(
        app::open_store("redis://:s3cret-pw@127.0.0.1:1")
            .await
            .err(),
    );
    #[cfg(not(feature = "postgres"))]
    {
        let e = app::open_store("postgres://app:s3cret-pw@db/app")
            .await
            .err()
            .unwrap();
        assert!(e.contains("--features postgres"), "{e}");
        refusals.push(Some(e));
    }
    #[cfg(not(feature = "redis"))]
    {
        let e = app::open_store("redis://:s3cret-pw@cache")
            .await
            .err()
            .unwrap();
        assert!(e.contains("--features redis"), "{e}");
        refusals.push(Some(e));
    }
    for refusal in refusals {
        let e = refusal.expect("refused");
        assert!(!e.contains("s3cret"), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }
    // The accept path of the same dispatch.
    let dir = tempfile::tempdir().unwrap();
    assert!(app::open_store(&sqlite_url(&dir, "store.db")).await.is_ok());
}

async fn refresh(s: &Server, pair: &Value) -> (StatusCode, Value) {
    s.post(
        "/token/refresh",
        json!({"refresh_token": pair["refresh_token"]}),
    )
    .await
}

async fn verify(s: &Server, user: &str, code: &str) -> (StatusCode, Value) {
    s.post("/otp/verify", json!({"username": user, "code": code}))
        .await
}

/// Register on one replica, log in on the other; rotate on A and replay
/// the spent token on B: reuse, and the family is revoked on both.
async fn replicas_share_users_and_refresh_families(a: &Server, b: &Server, user: &str) {
    let password = "correct horse battery";
    let (st, _) = a
        .post("/register", json!({"username": user, "password": password}))
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let (st, body) = b
        .post("/register", json!({"username": user, "password": password}))
        .await;
    assert_eq!(
        (st, body["error"].as_str()),
        (StatusCode::CONFLICT, Some("user_exists")),
        "B sees the user A registered"
    );
    assert_eq!(
        b.login(user, "wrong horse battery").await.0,
        StatusCode::UNAUTHORIZED
    );
    let (st, first) = b.login(user, password).await;
    assert_eq!(st, StatusCode::OK);
    // A verifies B's access token: one key ring file.
    let (st, me) = a
        .with_bearer(reqwest::Method::GET, "/me", first["access_token"].as_str())
        .await;
    assert_eq!((st, me["sub"].as_str()), (StatusCode::OK, Some(user)));

    // Rotation crosses replicas: A rotates B's token, B rotates A's.
    let (st, second) = refresh(a, &first).await;
    assert_eq!(st, StatusCode::OK);
    let (st, third) = refresh(b, &second).await;
    assert_eq!(st, StatusCode::OK);
    assert_ne!(second["refresh_token"], third["refresh_token"]);
    // Inside the grace window, B's predecessor replayed on A gets the same
    // successor, not a fork.
    let (st, again) = refresh(a, &second).await;
    assert_eq!(
        (st, &again["refresh_token"]),
        (StatusCode::OK, &third["refresh_token"])
    );

    // Outside it, a token spent on A and replayed on B is reuse.
    a.clock.advance(11);
    let (st, body) = refresh(b, &first).await;
    assert_eq!(
        (st, body),
        (StatusCode::UNAUTHORIZED, json!({"error": "reused"}))
    );
    // The whole family is revoked, on both replicas.
    for s in [a, b] {
        let (st, body) = refresh(s, &third).await;
        assert_eq!(
            (st, body),
            (StatusCode::UNAUTHORIZED, json!({"error": "revoked"}))
        );
    }
    // Another session of the same user is untouched.
    let (st, other) = a.login(user, password).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(refresh(b, &other).await.0, StatusCode::OK);
}

/// A code sent by one replica is checked on the other, once; wrong codes
/// spread over both replicas lock the subject after 3, on both.
async fn replicas_share_code_lockouts(a: &Server, b: &Server, ok: &str, locked: &str) {
    for user in [ok, locked] {
        let (st, _) = a
            .post(
                "/register",
                json!({"username": user, "password": "correct horse battery"}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED);
    }

    let code = b.send_code(ok).await;
    // keyward's send limit (one code a minute per name) is kept in the
    // store: the other replica refuses a second code.
    let again = a
        .post_from("192.0.2.1", "/otp/send", json!({"username": ok}))
        .await;
    assert!((1..=60).contains(&too_many(&again)), "{again:?}");
    let (st, pair) = verify(a, ok, &code).await;
    assert_eq!(st, StatusCode::OK);
    let (st, me) = b
        .with_bearer(reqwest::Method::GET, "/me", pair["access_token"].as_str())
        .await;
    assert_eq!((st, me["sub"].as_str()), (StatusCode::OK, Some(ok)));
    assert_eq!(
        verify(b, ok, &code).await.0,
        StatusCode::UNAUTHORIZED,
        "single use across replicas"
    );

    let right = a.send_code(locked).await;
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    let mut left = Vec::new();
    for s in [a, b, a] {
        let (st, body) = verify(s, locked, wrong).await;
        assert_eq!(
            (st, body["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid")),
            "{body}"
        );
        left.push(body["attempts_left"].as_u64().unwrap());
    }
    assert_eq!(left, [2, 1, 0]);
    let locked_at = std::time::Instant::now();
    // Locked on both, even for the right code, for the hour less what has
    // passed since (the store's clock counts whole seconds).
    for s in [b, a] {
        let (st, body) = verify(s, locked, &right).await;
        assert_eq!(
            (st, body["error"].as_str()),
            (StatusCode::LOCKED, Some("locked")),
            "{body}"
        );
        let waited = locked_at.elapsed().as_secs() + 1;
        let retry_after = body["retry_after"].as_u64().unwrap();
        assert!(
            (3600 - waited..=3600).contains(&retry_after),
            "{retry_after} after {waited} s"
        );
    }
    // The user who never failed is not locked (423): a wrong guess is a
    // plain 401, on either replica.
    for s in [a, b] {
        let (st, body) = verify(s, ok, &right).await;
        assert_eq!(st, StatusCode::UNAUTHORIZED, "{body}");
    }
}

/// Two processes on one machine can share a SQLite file the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_sqlite_file_share_users_sessions_and_lockouts() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir, "server.db");
    let (a, b) = replicas(dir, &url, app::default_users_url(&url)).await;
    replicas_share_users_and_refresh_families(&a, &b, &unique_user("srvlite", "alice")).await;
    replicas_share_code_lockouts(
        &a,
        &b,
        &unique_user("srvlite", "dora"),
        &unique_user("srvlite", "erin"),
    )
    .await;
}

/// Wrong-password logins for fresh names from `source`, the `i`-th sent to
/// `servers[i % servers.len()]`: their statuses, in order.
async fn spread_logins(servers: &[&Server], source: &str, tag: &str, n: usize) -> Vec<u16> {
    let mut out = Vec::new();
    for i in 0..n {
        let body = json!({"username": format!("{tag}{i}"), "password": "wrong password"});
        let s = servers[i % servers.len()];
        out.push(s.post_from(source, "/login", body).await.0.as_u16());
    }
    out
}

/// The per-source and per-account login limits live in the store: two
/// replicas (two `Keyward`s, each with its own deny cache, on one SQLite
/// file and one key ring) let one source make as many password attempts
/// as one server does, however the attempts alternate between them. So
/// with one account tried from many sources.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_store_count_login_attempts_as_one_server() {
    let attempts = 16;
    let single = serve().await;
    let one = spread_logins(&[&single], "203.0.113.20", "one", attempts).await;

    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir, "server.db");
    let (a, b) = replicas(dir, &url, app::default_users_url(&url)).await;
    let two = spread_logins(&[&a, &b], "203.0.113.20", "two", attempts).await;

    let evaluated = |v: &[u16]| v.iter().filter(|st| **st == 401).count();
    let burst = usize::try_from(keyward::limit::LOGIN_PER_SOURCE.burst_size()).unwrap();
    assert_eq!(evaluated(&one), burst, "{one:?}");
    assert_eq!(evaluated(&two), evaluated(&one), "{two:?}");
    // The same answers in the same order: the first `burst` evaluated, the
    // rest refused by both replicas.
    assert_eq!(two, one);
    assert!(two[burst..].iter().all(|st| *st == 429), "{two:?}");

    // One account from a new source each time, alternating replicas.
    let mut by_account = Vec::new();
    for i in 0..attempts {
        let s = if i % 2 == 0 { &a } else { &b };
        let body = json!({"username": "shared-victim", "password": "wrong password"});
        let ip = format!("198.18.20.{i}");
        by_account.push(s.post_from(&ip, "/login", body).await.0.as_u16());
    }
    let burst = usize::try_from(keyward::limit::LOGIN_PER_ACCOUNT.burst_size()).unwrap();
    assert_eq!(
        by_account,
        [vec![401; burst], vec![429; attempts - burst]].concat()
    );
}

/// A limit the store cannot check refuses the request (503) instead of
/// letting it through uncounted: a wrong password is not evaluated (no
/// 401) and no user is created. When the store is back, so is the server.
#[cfg(feature = "test-util")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limits_fail_closed_when_the_store_is_down() {
    use keyward::MemoryStore;
    use keyward::testing::FaultyStore;
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(SystemClock.now());
    let store = Arc::new(FaultyStore::new(Arc::new(MemoryStore::new())));
    let kw = Keyward::builder()
        .password_policy(test_policy())
        .issuer("http://keyward.test")
        .audience("keyward-server")
        .keys(KeyRing::generate(JwtAlg::EdDSA).unwrap())
        .shared_store(Arc::clone(&store) as Arc<dyn keyward::Store>)
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let users = app::Users::open(&dir.path().join("users.db"))
        .await
        .unwrap();
    let s = start(kw, users, clock, Arc::new(dir)).await;
    let password = "correct horse battery";
    let (st, _) = s
        .post(
            "/register",
            json!({"username": "alice", "password": password}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);

    store.down(true);
    let unavailable = (
        StatusCode::SERVICE_UNAVAILABLE,
        json!({"error": "unavailable"}),
    );
    assert_eq!(s.login("alice", "wrong horse battery").await, unavailable);
    assert_eq!(
        s.post(
            "/register",
            json!({"username": "bob", "password": password})
        )
        .await,
        unavailable
    );
    assert_eq!(s.users.stored_hash("bob").await, None, "bob was created");
    assert_eq!(
        s.post("/otp/send", json!({"username": "alice"})).await,
        unavailable
    );
    assert_eq!(
        s.post(
            "/otp/verify",
            json!({"username": "alice", "code": "000000"})
        )
        .await,
        unavailable
    );

    store.down(false);
    assert_eq!(
        s.login("alice", "wrong horse battery").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(s.login("alice", password).await.0, StatusCode::OK);
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_postgres_share_users_sessions_and_lockouts() {
    let Some(url) = common::postgres("server replicas on postgres") else {
        return;
    };
    // The user table defaults to the store's own database.
    let users = app::default_users_url(&url);
    let (a, b) = replicas(tempfile::tempdir().unwrap(), &url, users).await;
    user_table_contract(&a.users, &unique_user("srvpg", "table")).await;
    replicas_share_users_and_refresh_families(&a, &b, &unique_user("srvpg", "alice")).await;
    replicas_share_code_lockouts(
        &a,
        &b,
        &unique_user("srvpg", "dora"),
        &unique_user("srvpg", "erin"),
    )
    .await;
    // A Django hash upgraded at a login on B is what A reads back.
    let legacy = unique_user("srvpg", "django");
    assert!(a.users.insert(&legacy, DJANGO_HASH).await.unwrap());
    assert_eq!(
        b.login(&legacy, "correct horse battery stapler").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(a.users.stored_hash(&legacy).await.unwrap(), DJANGO_HASH);
    assert_eq!(
        b.login(&legacy, "correct horse battery staple").await.0,
        StatusCode::OK
    );
    let upgraded = a.users.stored_hash(&legacy).await.unwrap();
    assert!(
        upgraded.starts_with("$pbkdf2-sha256$i=10000,l=32$"),
        "{upgraded}"
    );
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_redis_share_sessions_and_lockouts() {
    let Some(url) = common::redis("server replicas on redis") else {
        return;
    };
    let prefix = common::unique_prefix("srvredis");
    let sep = if url.contains('?') { '&' } else { '?' };
    let store_url = format!("{url}{sep}prefix={prefix}");
    // The user table is a SQLite file both replicas reach, standing in for
    // the shared database `--users postgres://…` would name.
    let dir = tempfile::tempdir().unwrap();
    let users = sqlite_url(&dir, "users.db");
    let (a, b) = replicas(dir, &store_url, &users).await;
    replicas_share_users_and_refresh_families(&a, &b, &unique_user("srvredis", "alice")).await;
    replicas_share_code_lockouts(
        &a,
        &b,
        &unique_user("srvredis", "dora"),
        &unique_user("srvredis", "erin"),
    )
    .await;
}

/// A source told to come back gets one attempt past the login gate, and
/// only when it honours `Retry-After` and returns within the window.
#[test]
fn login_gate_tickets_are_one_use_and_honour_retry_after() {
    use std::time::{Duration, Instant};
    let gate = keyward::axum::LoginGate::new(1);
    let (alice, mallory): (std::net::IpAddr, std::net::IpAddr) = (
        "192.0.2.10".parse().unwrap(),
        "198.51.100.7".parse().unwrap(),
    );
    let t0 = Instant::now();
    assert!(!gate.redeem(alice, t0), "no ticket, no priority");
    gate.ticket(alice, Duration::from_secs(1), t0);
    gate.ticket(mallory, Duration::from_secs(1), t0);
    assert_eq!(gate.tickets(), 2);
    // Early: refused, and the ticket is kept for later.
    assert!(!gate.redeem(alice, t0 + Duration::from_millis(500)));
    assert!(gate.redeem(alice, t0 + Duration::from_secs(1)));
    // Used up.
    assert!(!gate.redeem(alice, t0 + Duration::from_secs(2)));
    // Too late: past the 30 s window, and dropped.
    assert!(!gate.redeem(mallory, t0 + Duration::from_secs(32)));
    assert_eq!(gate.tickets(), 0);
}

/// Password work runs at the lower priority, on the hashing runtime's
/// async thread and on its blocking threads (where PBKDF2 runs), while the
/// serving threads keep theirs.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn password_work_runs_at_a_lower_priority() {
    let nice = || rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap();
    let serving = nice();
    if serving >= 10 {
        println!("SKIPPED: the tests already run at nice {serving}; nothing to lower");
        return;
    }
    let (worker, blocking) = hashing()
        .spawn(async move {
            let blocking = tokio::task::spawn_blocking(nice).await.unwrap();
            (nice(), blocking)
        })
        .await
        .unwrap();
    assert_eq!((worker, blocking), (10, 10));
}

/// When the tickets are full, new ones are refused until old ones expire,
/// and the expired ones are swept out at most once a second, so a flood
/// that keeps the map full does not make every refusal scan it.
#[test]
fn login_gate_tickets_are_bounded_and_swept_at_most_once_a_second() {
    use std::time::{Duration, Instant};
    let gate = keyward::axum::LoginGate::new(1);
    let t0 = Instant::now();
    let ip = |n: u32| std::net::IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + n));
    let max = u32::try_from(keyward::axum::MAX_TICKETS).unwrap();
    for n in 0..max {
        gate.ticket(ip(n), Duration::from_secs(1), t0);
    }
    assert_eq!(gate.tickets(), keyward::axum::MAX_TICKETS);
    let newcomer = ip(max);
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    // At 31 s every ticket is still within its window: the sweep frees
    // nothing and the newcomer is refused.
    gate.ticket(newcomer, Duration::from_secs(1), at(31_000));
    assert_eq!(gate.tickets(), keyward::axum::MAX_TICKETS);
    assert!(!gate.redeem(newcomer, at(33_000)));
    // At 31.5 s they have all expired, but the last sweep was under a
    // second ago: no sweep, still refused.
    gate.ticket(newcomer, Duration::from_secs(1), at(31_500));
    assert_eq!(gate.tickets(), keyward::axum::MAX_TICKETS);
    // At 32 s the sweep runs, empties the map, and the newcomer gets in.
    gate.ticket(newcomer, Duration::from_secs(1), at(32_000));
    assert_eq!(gate.tickets(), 1);
    assert!(gate.redeem(newcomer, at(33_000)));
}

/// One answer, as a client sees it: status, headers (all but `date`) and
/// body.
type Answer = (StatusCode, Vec<(String, String)>, Value);

impl Server {
    /// POSTs `body` to `path` as relayed by the trusted proxy, whose
    /// `X-Forwarded-For` is `forwarded` (one header line per line).
    async fn post_from(&self, forwarded: &str, path: &str, body: Value) -> Answer {
        let mut req = self.client.post(format!("{}{path}", self.base));
        for line in forwarded.lines() {
            req = req.header("x-forwarded-for", line);
        }
        let r = req.json(&body).send().await.unwrap();
        let status = r.status();
        let mut headers: Vec<(String, String)> = r
            .headers()
            .iter()
            .filter(|(name, _)| *name != "date")
            .map(|(name, v)| (name.to_string(), v.to_str().unwrap().to_owned()))
            .collect();
        headers.sort();
        let text = r.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        (status, headers, body)
    }

    /// The newest code for `user` once more than `before` were sent to it.
    async fn code_after(&self, user: &str, before: usize) -> String {
        for _ in 0..500 {
            let mut codes = self.codes_for(user);
            if codes.len() > before {
                return codes.pop().unwrap();
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("no code for {user} within 5 s");
    }
}

/// An unknown username and a real one get the same answers from
/// `/otp/send` and `/otp/verify`, step by step: before any code, the send,
/// a second send within the minute (429), three wrong codes
/// (`attempts_left` 2, 1, 0), the lock, and a send while locked. Only the
/// real account gets mail. (Each name asks from a source of its own, so
/// that the per-source limits stay out of the way.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_time_codes_do_not_tell_whether_a_username_exists() {
    let s = serve().await;
    let (st, _, _) = s
        .post_from(
            "192.0.2.1",
            "/register",
            json!({"username": "known", "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let users = [("known", "198.51.100.1"), ("unknown", "198.51.100.2")];
    let mut answers: [Vec<Answer>; 2] = [Vec::new(), Vec::new()];
    let verify_all = async |answers: &mut [Vec<Answer>; 2], code: &str| {
        for (i, (user, ip)) in users.iter().enumerate() {
            answers[i].push(
                s.post_from(ip, "/otp/verify", json!({"username": user, "code": code}))
                    .await,
            );
        }
    };
    let send_all = async |answers: &mut [Vec<Answer>; 2]| {
        for (i, (user, ip)) in users.iter().enumerate() {
            answers[i].push(
                s.post_from(ip, "/otp/send", json!({"username": user}))
                    .await,
            );
        }
    };

    verify_all(&mut answers, "123456").await;
    send_all(&mut answers).await;
    // Within the minute: keyward's send limit, for either name.
    send_all(&mut answers).await;
    let right = s.code_after("known", 0).await;
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    for _ in 0..3 {
        verify_all(&mut answers, wrong).await;
    }
    // Locked now, even for the right code; and a send while locked, once
    // the send limit allows one.
    verify_all(&mut answers, &right).await;
    s.clock.advance(60);
    send_all(&mut answers).await;

    let [known, unknown] = answers;
    assert_eq!(known, unknown, "the answers differ");
    let summary: Vec<_> = unknown
        .iter()
        .map(|(st, _, body)| (st.as_u16(), body.clone()))
        .collect();
    assert_eq!(
        summary,
        [
            (401, json!({"error": "no_code"})),
            (202, Value::Null),
            (
                429,
                json!({"error": "too_many_requests", "retry_after": 60})
            ),
            (401, json!({"error": "invalid", "attempts_left": 2})),
            (401, json!({"error": "invalid", "attempts_left": 1})),
            (401, json!({"error": "invalid", "attempts_left": 0})),
            (423, json!({"error": "locked", "retry_after": 3600})),
            (202, Value::Null),
        ]
    );
    // Mail goes to the account only: by the time the known user's code was
    // written, the unknown name's turn in the one mail queue had passed.
    assert_eq!(s.codes_for("known").len(), 1);
    assert!(s.codes_for("unknown").is_empty());
}

/// The statuses of `requests`, each `(source, route, body)`, in order.
async fn statuses(
    s: &Server,
    requests: impl IntoIterator<Item = (String, &str, Value)>,
) -> Vec<u16> {
    let mut out = Vec::new();
    for (ip, route, body) in requests {
        out.push(s.post_from(&ip, route, body).await.0.as_u16());
    }
    out
}

/// `/register`, `/otp/send` and `/otp/verify` are limited per source as
/// `/login` is: 10 at once, then 429 with `Retry-After`. Per name,
/// `/register` shares `/login`'s limit, `/otp/send` has keyward's send
/// limit (one a minute), and `/otp/verify` the subject's lockout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_and_one_time_codes_are_limited_per_source_and_per_account() {
    let s = serve().await;
    let register = |user: &str| json!({"username": user, "password": "correct horse battery"});
    let send = |user: &str| json!({"username": user});
    let check = |user: &str| json!({"username": user, "code": "000000"});
    let limited = |first: &[u16]| [first, &[429]].concat();

    // One source, a new name each time.
    let one_source = |n: u32, route: &'static str, body: &dyn Fn(&str) -> Value| {
        (0..11)
            .map(|i| {
                (
                    format!("203.0.113.{n}"),
                    route,
                    body(&format!("src{n}-user{i}")),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        statuses(&s, one_source(1, "/register", &register)).await,
        limited(&[201; 10])
    );
    assert_eq!(
        statuses(&s, one_source(2, "/otp/send", &send)).await,
        limited(&[202; 10])
    );
    assert_eq!(
        statuses(&s, one_source(3, "/otp/verify", &check)).await,
        limited(&[401; 10])
    );
    let (_, headers, _) = s
        .post_from("203.0.113.3", "/otp/verify", check("src3-more"))
        .await;
    assert!(
        headers
            .iter()
            .any(|(h, v)| h == "retry-after" && v.parse::<u64>().unwrap() >= 1),
        "{headers:?}"
    );

    // One name, a new source each time.
    let one_name = |n: u32, route: &'static str, body: Value| {
        (0..11)
            .map(|i| (format!("198.18.{n}.{i}"), route, body.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        statuses(&s, one_name(1, "/register", register("account1"))).await,
        limited(&[[201].as_slice(), &[409; 9]].concat())
    );
    let (st, _, _) = s
        .post_from("192.0.2.2", "/register", register("account2"))
        .await;
    assert_eq!(st, StatusCode::CREATED);
    let sends = statuses(&s, one_name(2, "/otp/send", send("account2"))).await;
    assert_eq!(sends, [[202].as_slice(), &[429; 10]].concat());
    // One code was sent: three wrong guesses from three sources lock the
    // name, and the fourth source is told so.
    let right = s.code_after("account2", 0).await;
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    let guess = json!({"username": "account2", "code": wrong});
    let guesses = one_name(3, "/otp/verify", guess).into_iter().take(4);
    assert_eq!(statuses(&s, guesses).await, [401, 401, 401, 423]);
    assert_eq!(s.codes_for("account2").len(), 1);

    // `/login` and `/register` share the per-source limit: spreading
    // password attempts over the two gains nothing. Codes are checked
    // against a limit of their own.
    let ip = "203.0.113.99";
    for i in 0..5 {
        let (st, _, _) = s
            .post_from(
                ip,
                "/login",
                json!({"username": format!("mix{i}"), "password": "wrong password"}),
            )
            .await;
        assert_eq!(st, StatusCode::UNAUTHORIZED);
        let (st, _, _) = s
            .post_from(ip, "/register", register(&format!("mix{i}")))
            .await;
        assert_eq!(st, StatusCode::CREATED);
    }
    let (st, _, _) = s
        .post_from(
            ip,
            "/login",
            json!({"username": "mix-last", "password": "wrong password"}),
        )
        .await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
    let (st, _, _) = s.post_from(ip, "/register", register("mix-last")).await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
    let (st, _, body) = s.post_from(ip, "/otp/verify", check("mix0")).await;
    assert_eq!(
        (st, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("no_code"))
    );
}

/// Statuses of 15 wrong-password logins, the `i`-th sent with the
/// `X-Forwarded-For` that `forwarded(i)` gives, each for a name of its own.
async fn logins_from(s: &Server, tag: &str, forwarded: impl Fn(u32) -> String) -> Vec<u16> {
    let mut statuses = Vec::new();
    for i in 0..15 {
        let body = json!({"username": format!("{tag}{i}"), "password": "wrong password"});
        statuses.push(s.post_from(&forwarded(i), "/login", body).await.0.as_u16());
    }
    statuses
}

/// The client writes the start of `X-Forwarded-For`; the trusted proxy
/// appends the address it saw. A fresh random first entry on each of 15
/// logins from one client is limited like 15 logins from that client
/// alone; so are 15 from addresses of one IPv6 /64.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_for_is_read_from_the_right_and_ipv6_by_its_64() {
    use std::hash::BuildHasher;
    let s = serve().await;
    let limited = [[401; 10].as_slice(), &[429; 5]].concat();
    // A different fresh address each time, never seen before.
    let random = std::collections::hash_map::RandomState::new();
    let fresh = |i: u32| {
        let [a, b, c, d, ..] = random.hash_one(i).to_be_bytes();
        std::net::Ipv4Addr::new(a, b, c, d).to_string()
    };

    let plain = logins_from(&s, "plain", |_| "192.0.2.50".to_owned()).await;
    assert_eq!(plain, limited);
    let spoofed = logins_from(&s, "spoofed", |i| format!("{}, 192.0.2.60", fresh(i))).await;
    assert_eq!(spoofed, limited, "a client-written entry was trusted");
    // The client's own X-Forwarded-For line comes first; the proxy's last.
    let lines = logins_from(&s, "lines", |i| format!("{}\n192.0.2.70", fresh(i))).await;
    assert_eq!(lines, limited);
    let v6 = logins_from(&s, "v6", |i| format!("2001:db8:7:7::{:x}", i + 1)).await;
    assert_eq!(v6, limited, "one /64 is one source");
    // Another /64 is another source.
    let other = logins_from(&s, "v6b", |_| "2001:db8:7:8::1".to_owned()).await;
    assert_eq!(&other[..10], &[401; 10]);
}

/// The outbox holds live codes: owner only.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_is_created_owner_only_and_a_shared_one_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let s = serve().await;
    s.post(
        "/register",
        json!({"username": "olive", "password": "correct horse battery"}),
    )
    .await;
    s.send_code("olive").await;
    assert_eq!(mode(&s.outbox), 0o600);

    // Created by the mailer itself, if it went missing.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("codes.jsonl");
    let mailer = app::OutboxMailer::open(&path).unwrap();
    assert_eq!(mode(&path), 0o600);
    std::fs::remove_file(&path).unwrap();
    keyward::axum::CodeSender::send_code(&mailer, "olive", "123456");
    assert_eq!(mode(&path), 0o600);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "{\"code\":\"123456\",\"to\":\"olive\"}\n"
    );

    // An existing outbox that others may read is refused, not used.
    for loose in [0o644, 0o640, 0o602] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(loose)).unwrap();
        let e = app::OutboxMailer::open(&path).err().unwrap();
        assert!(e.contains("chmod 600"), "{e}");
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(app::OutboxMailer::open(&path).is_ok());
}

/// `X-Forwarded-For` is read from the right: the client address is the
/// N-th entry from the right behind N trusted proxies, and anything else
/// falls back to the socket address.
#[test]
fn forwarded_for_parser() {
    use axum::http::{HeaderMap, HeaderValue};
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    let headers = |lines: &[&[u8]]| {
        let mut h = HeaderMap::new();
        for line in lines {
            h.append("x-forwarded-for", HeaderValue::from_bytes(line).unwrap());
        }
        h
    };
    let client = |lines: &[&[u8]], n| keyward::axum::forwarded_client(&headers(lines), n);

    let chain: &[&[u8]] = &[b"203.0.113.1, 198.51.100.2,192.0.2.3"];
    assert_eq!(client(chain, 0), None, "no trusted proxy: the socket");
    assert_eq!(client(chain, 1), Some(ip("192.0.2.3")), "rightmost");
    assert_eq!(client(chain, 2), Some(ip("198.51.100.2")), "one more hop");
    assert_eq!(client(chain, 3), Some(ip("203.0.113.1")));
    assert_eq!(client(chain, 4), None, "fewer entries than proxies");
    assert_eq!(client(&[], 1), None, "no header");

    // Several lines are one list, in order.
    let lines: &[&[u8]] = &[b"203.0.113.1", b"198.51.100.2, 192.0.2.3"];
    assert_eq!(client(lines, 1), Some(ip("192.0.2.3")));
    assert_eq!(client(lines, 3), Some(ip("203.0.113.1")));

    // Whatever the client wrote left of the proxies' entries is not read.
    for junk in [
        &b"unknown, 192.0.2.3"[..],
        b"\xff\xfe, 192.0.2.3",
        b", ,192.0.2.3",
        b"not an address at all,192.0.2.3",
    ] {
        assert_eq!(client(&[junk], 1), Some(ip("192.0.2.3")), "{junk:?}");
    }
    // A malformed entry among the proxies' is not skipped: the socket.
    for bad in [
        &b"192.0.2.3, unknown"[..],
        b"192.0.2.3,",
        b"192.0.2.3, ",
        b"192.0.2.3, 192.0.2.300",
        b"192.0.2.3, fe80::1%eth0",
        b"192.0.2.3, \xff",
        b"",
    ] {
        assert_eq!(client(&[bad], 1), None, "{bad:?}");
    }
    assert_eq!(
        client(&[b"192.0.2.3, junk, 198.51.100.2"], 2),
        None,
        "the hop skipped must be an address too"
    );

    // Ports, brackets and spaces, as proxies write them.
    for (entry, want) in [
        (&b" 192.0.2.3 "[..], "192.0.2.3"),
        (b"\t192.0.2.3", "192.0.2.3"),
        (b"192.0.2.3:4711", "192.0.2.3"),
        (b"2001:db8::1", "2001:db8::1"),
        (b"[2001:db8::1]", "2001:db8::1"),
        (b"[2001:db8::1]:443", "2001:db8::1"),
    ] {
        assert_eq!(client(&[entry], 1), Some(ip(want)), "{entry:?}");
    }

    // IPv6 by its /64; IPv4, and IPv4-mapped IPv6, as the IPv4 address.
    let key = |s: &str| keyward::axum::source_key(ip(s));
    assert_eq!(
        key("2001:db8:1:2:aaaa:bbbb:cccc:dddd"),
        ip("2001:db8:1:2::")
    );
    assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
    assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
    assert_eq!(key("192.0.2.3"), ip("192.0.2.3"));
    assert_eq!(key("::ffff:192.0.2.3"), ip("192.0.2.3"));
    assert_ne!(key("::ffff:192.0.2.3"), key("::ffff:192.0.2.4"));
}

// ---- API keys ----

/// A request body for the API-key routes.
enum Body {
    Empty,
    Json(Value),
    Raw(&'static str),
}

/// An answer: status, `Cache-Control`, and the JSON body (`Null` when
/// empty).
struct Reply {
    status: StatusCode,
    cache_control: Option<String>,
    body: Value,
}

impl Server {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Body,
    ) -> Reply {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req = match body {
            Body::Empty => req,
            Body::Json(v) => req.json(&v),
            Body::Raw(text) => req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(text),
        };
        let r = req.send().await.unwrap();
        let status = r.status();
        let cache_control = r
            .headers()
            .get(reqwest::header::CACHE_CONTROL)
            .map(|v| v.to_str().unwrap().to_owned());
        let text = r.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        Reply {
            status,
            cache_control,
            body,
        }
    }

    /// Registers `user` and logs in: the access token.
    async fn access_token(&self, user: &str) -> String {
        let pw = "correct horse battery";
        let (st, _) = self
            .post("/register", json!({"username": user, "password": pw}))
            .await;
        assert_eq!(st, StatusCode::CREATED);
        let (st, pair) = self.login(user, pw).await;
        assert_eq!(st, StatusCode::OK);
        pair["access_token"].as_str().unwrap().to_owned()
    }

    /// `POST /api-keys` with `spec`, as the holder of `token`.
    async fn create_key(&self, token: &str, spec: Value) -> Reply {
        self.call(
            reqwest::Method::POST,
            "/api-keys",
            Some(token),
            Body::Json(spec),
        )
        .await
    }

    /// `GET /api-keys`.
    async fn list_keys(&self, token: &str) -> Reply {
        self.call(reqwest::Method::GET, "/api-keys", Some(token), Body::Empty)
            .await
    }

    /// `POST /api-keys/{id}/roll` with `body`.
    async fn roll_key(&self, token: &str, id: &str, body: Body) -> Reply {
        let path = format!("/api-keys/{id}/roll");
        self.call(reqwest::Method::POST, &path, Some(token), body)
            .await
    }

    /// `DELETE /api-keys/{id}`.
    async fn revoke_key(&self, token: &str, id: &str) -> Reply {
        let path = format!("/api-keys/{id}");
        self.call(reqwest::Method::DELETE, &path, Some(token), Body::Empty)
            .await
    }

    /// `GET path` with `bearer`: status and body.
    async fn get_as(&self, path: &str, bearer: &str) -> (StatusCode, Value) {
        self.with_bearer(reqwest::Method::GET, path, Some(bearer))
            .await
    }
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_are_created_listed_used_rolled_and_revoked() {
    let s = serve().await;
    let alice = s.access_token("alice").await;

    let made = s
        .create_key(
            &alice,
            json!({"name": "ci", "scopes": ["reports:read", "deploy"], "expires_in": 86_400}),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED);
    assert_eq!(made.cache_control.as_deref(), Some("no-store"));
    let b = &made.body;
    let (key, id) = (text(&b["key"]).to_owned(), text(&b["id"]).to_owned());
    assert_eq!(id.len(), 12);
    assert!(
        key.starts_with(&format!("kw_{id}_")),
        "the key names its id"
    );
    assert_eq!(b["name"], "ci");
    assert_eq!(b["scopes"], json!(["reports:read", "deploy"]));
    let created_at = b["created_at"].as_u64().unwrap();
    assert_eq!(created_at, s.clock.now());
    assert_eq!(b["expires_at"].as_u64(), Some(created_at + 86_400));
    let mut fields: Vec<&str> = b.as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        ["created_at", "expires_at", "id", "key", "name", "scopes"]
    );

    // The list shows the key's public view, and nothing secret.
    let listed = s.list_keys(&alice).await;
    assert_eq!(listed.status, StatusCode::OK);
    let keys = listed.body["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let view = keys[0].as_object().unwrap();
    let mut fields: Vec<&str> = view.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "created_at",
            "enabled",
            "expires_at",
            "id",
            "last_used_at",
            "metadata",
            "name",
            "owner",
            "prefix",
            "scopes"
        ]
    );
    assert_eq!(
        (&view["id"], &view["owner"], &view["name"], &view["enabled"]),
        (&json!(id), &json!("alice"), &json!("ci"), &json!(true))
    );
    let secret = &key[key.len() - 49..];
    let raw = listed.body.to_string();
    assert!(!raw.contains(secret) && !raw.contains(&key));

    // The key authenticates the bearer routes.
    let (st, me) = s.get_as("/me", &key).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(
        me,
        json!({"sub": "alice", "key_id": id, "scopes": ["reports:read", "deploy"], "rolled_until": null})
    );
    let (st, reports) = s.get_as("/api/reports", &key).await;
    assert_eq!(
        (st, reports),
        (StatusCode::OK, json!({"owner": "alice", "reports": []}))
    );
    // The access token still works on /me as before.
    let (st, me) = s.get_as("/me", &alice).await;
    assert_eq!((st, &me["sub"]), (StatusCode::OK, &json!("alice")));

    // A roll with an overlap: the old key and the new one both work, the
    // old one saying until when.
    let rolled = s
        .roll_key(&alice, &id, Body::Json(json!({"overlap_secs": 60})))
        .await;
    assert_eq!(rolled.status, StatusCode::OK);
    assert_eq!(rolled.cache_control.as_deref(), Some("no-store"));
    let second = text(&rolled.body["key"]).to_owned();
    assert_ne!(second, key);
    assert_eq!(rolled.body["id"], json!(id));
    let until = s.clock.now() + 60;
    assert_eq!(rolled.body["previous_valid_until"].as_u64(), Some(until));
    let (st, me) = s.get_as("/me", &key).await;
    assert_eq!(
        (st, &me["key_id"], &me["rolled_until"]),
        (StatusCode::OK, &json!(id), &json!(until))
    );
    let (st, me) = s.get_as("/me", &second).await;
    assert_eq!((st, &me["rolled_until"]), (StatusCode::OK, &Value::Null));
    // Once the overlap is over, only the new key works.
    s.clock.advance(60);
    let (st, body) = s.get_as("/me", &key).await;
    assert_eq!(
        (st, body),
        (StatusCode::UNAUTHORIZED, json!({"error": "expired"}))
    );
    let (st, _) = s.get_as("/api/reports", &second).await;
    assert_eq!(st, StatusCode::OK);

    // A roll without a body has no overlap: the key it replaces fails at
    // once, and the first key is two rolls old.
    let rolled = s.roll_key(&alice, &id, Body::Empty).await;
    assert_eq!(rolled.status, StatusCode::OK);
    assert_eq!(
        rolled.body["previous_valid_until"].as_u64(),
        Some(s.clock.now())
    );
    let third = text(&rolled.body["key"]).to_owned();
    let (st, body) = s.get_as("/me", &second).await;
    assert_eq!(
        (st, body),
        (StatusCode::UNAUTHORIZED, json!({"error": "expired"}))
    );
    let (st, body) = s.get_as("/me", &key).await;
    assert_eq!(
        (st, body),
        (StatusCode::UNAUTHORIZED, json!({"error": "unknown"}))
    );
    let (st, _) = s.get_as("/me", &third).await;
    assert_eq!(st, StatusCode::OK);
    let listed = s.list_keys(&alice).await;
    let keys = listed.body["keys"].as_array().unwrap();
    assert_eq!((keys.len(), &keys[0]["id"]), (1, &json!(id)));
    assert!(!listed.body.to_string().contains(&third[third.len() - 49..]));

    // Revoked: refused as revoked, gone from the list, and gone for the
    // management routes.
    let revoked = s.revoke_key(&alice, &id).await;
    assert_eq!(
        (revoked.status, revoked.body),
        (StatusCode::NO_CONTENT, Value::Null)
    );
    for path in ["/me", "/api/reports"] {
        let (st, body) = s.get_as(path, &third).await;
        assert_eq!(
            (st, body),
            (StatusCode::UNAUTHORIZED, json!({"error": "revoked"})),
            "{path}"
        );
    }
    assert_eq!(s.list_keys(&alice).await.body, json!({"keys": []}));
    let again = s.revoke_key(&alice, &id).await;
    assert_eq!(
        (again.status, again.body),
        (StatusCode::NOT_FOUND, json!({"error": "not_found"}))
    );
    let roll = s.roll_key(&alice, &id, Body::Empty).await;
    assert_eq!(roll.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_api_key_is_not_found_like_an_unknown_one() {
    let s = serve().await;
    let alice = s.access_token("alice").await;
    let bob = s.access_token("bob").await;
    let made = s
        .create_key(&alice, json!({"name": "alice's", "scopes": []}))
        .await;
    assert_eq!(made.status, StatusCode::CREATED);
    let (key, id) = (text(&made.body["key"]), text(&made.body["id"]));

    assert_eq!(s.list_keys(&bob).await.body, json!({"keys": []}));
    let not_found = json!({"error": "not_found"});
    // Alice's key, a well-formed id nobody holds, and a malformed one: one
    // answer for all three.
    for target in [id, "AAAAAAAAAAAA", "not-an-id"] {
        let r = s
            .roll_key(&bob, target, Body::Json(json!({"overlap_secs": 0})))
            .await;
        assert_eq!(
            (r.status, &r.body),
            (StatusCode::NOT_FOUND, &not_found),
            "{target}"
        );
        let r = s.revoke_key(&bob, target).await;
        assert_eq!(
            (r.status, &r.body),
            (StatusCode::NOT_FOUND, &not_found),
            "{target}"
        );
    }
    // Bob changed nothing: the key is neither rolled nor revoked.
    let (st, me) = s.get_as("/me", key).await;
    assert_eq!(
        (st, &me["sub"], &me["rolled_until"]),
        (StatusCode::OK, &json!("alice"), &Value::Null)
    );
    // Bob's own key is his to roll and revoke.
    let his = s.create_key(&bob, json!({"name": "bob's"})).await;
    let his_id = text(&his.body["id"]);
    assert_eq!(
        s.roll_key(&bob, his_id, Body::Empty).await.status,
        StatusCode::OK
    );
    assert_eq!(
        s.revoke_key(&bob, his_id).await.status,
        StatusCode::NO_CONTENT
    );
    // And Alice's is hers.
    assert_eq!(
        s.revoke_key(&alice, id).await.status,
        StatusCode::NO_CONTENT
    );
    let (st, body) = s.get_as("/me", key).await;
    assert_eq!(
        (st, body),
        (StatusCode::UNAUTHORIZED, json!({"error": "revoked"}))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_key_scopes_and_bad_bearers() {
    let s = serve().await;
    let alice = s.access_token("alice").await;
    let reader = s
        .create_key(&alice, json!({"name": "r", "scopes": ["reports:read"]}))
        .await;
    let other = s
        .create_key(&alice, json!({"name": "o", "scopes": ["reports:write"]}))
        .await;
    let (reader, other) = (text(&reader.body["key"]), text(&other.body["key"]));

    // The scope decides /api/reports; /me asks for none.
    let (st, _) = s.get_as("/api/reports", reader).await;
    assert_eq!(st, StatusCode::OK);
    // RFC 6750 §3.1: 403 `insufficient_scope`, naming the scope.
    let refused = s
        .client
        .get(format!("{}/api/reports", s.base))
        .bearer_auth(other)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        refused.headers()["www-authenticate"],
        "Bearer error=\"insufficient_scope\", scope=\"reports:read\""
    );
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body, json!({"error": "insufficient_scope"}));
    let (st, _) = s.get_as("/me", other).await;
    assert_eq!(st, StatusCode::OK);
    // An access token carries its user's full authority.
    let (st, body) = s.get_as("/api/reports", &alice).await;
    assert_eq!(
        (st, body),
        (StatusCode::OK, json!({"owner": "alice", "reports": []}))
    );

    // Malformed keys, a key with a broken checksum, and no bearer at all.
    let mut flipped = reader.to_owned().into_bytes();
    let at = flipped.len() - 10;
    flipped[at] = if flipped[at] == b'a' { b'b' } else { b'a' };
    let flipped = String::from_utf8(flipped).unwrap();
    let invalid = json!({"error": "invalid_token"});
    for path in ["/me", "/api/reports"] {
        for bad in ["kw_nope", "not a key", flipped.as_str(), "a.b.c"] {
            let (st, body) = s.get_as(path, bad).await;
            assert_eq!(
                (st, &body),
                (StatusCode::UNAUTHORIZED, &invalid),
                "{path} {bad:?}"
            );
        }
        // No credential at all: RFC 6750 §3.1, no error code in the
        // challenge.
        let (st, body) = s.with_bearer(reqwest::Method::GET, path, None).await;
        assert_eq!(
            (st, &body),
            (StatusCode::UNAUTHORIZED, &json!({"error": "missing_token"})),
            "{path}"
        );
    }
    // A well-formed key this server never issued.
    let elsewhere = serve().await;
    let token = elsewhere.access_token("alice").await;
    let foreign = elsewhere.create_key(&token, json!({"name": "x"})).await;
    let (st, body) = s.get_as("/me", text(&foreign.body["key"])).await;
    assert_eq!(
        (st, body),
        (StatusCode::UNAUTHORIZED, json!({"error": "unknown"}))
    );

    // An API key cannot manage keys, nor can a logged-out session.
    let made = s.create_key(reader, json!({"name": "minted"})).await;
    assert_eq!(
        (made.status, &made.body),
        (StatusCode::UNAUTHORIZED, &invalid)
    );
    let listed = s.list_keys(reader).await;
    assert_eq!(
        (listed.status, &listed.body),
        (StatusCode::UNAUTHORIZED, &invalid)
    );
    let r = s
        .call(reqwest::Method::GET, "/api-keys", None, Body::Empty)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let (st, _) = s
        .with_bearer(reqwest::Method::POST, "/logout-all", Some(&alice))
        .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let made = s.create_key(&alice, json!({"name": "after logout"})).await;
    assert_eq!(
        (made.status, &made.body),
        (StatusCode::UNAUTHORIZED, &invalid)
    );
    // The keys outlive the sessions.
    let (st, _) = s.get_as("/api/reports", reader).await;
    assert_eq!(st, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_api_key_requests_are_400_and_the_key_limit_409() {
    let mut policy = ApiKeyPolicy::default();
    policy.max_keys_per_owner = 2;
    let s = serve_with(policy).await;
    let alice = s.access_token("alice").await;
    let post = |body: Body| s.call(reqwest::Method::POST, "/api-keys", Some(&alice), body);

    for raw in [
        "{",
        "[]",
        r#"{"scopes": []}"#,
        r#"{"name": "x", "scopes": "reports:read"}"#,
        r#"{"name": "x", "expires_in": -1}"#,
        r#"{"name": "x", "scope": ["reports:read"]}"#,
    ] {
        let r = post(Body::Raw(raw)).await;
        assert_eq!(
            (r.status, r.body),
            (StatusCode::BAD_REQUEST, json!({"error": "bad_request"})),
            "{raw}"
        );
    }
    let r = post(Body::Empty).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    for spec in [
        json!({"name": "x", "scopes": ["has space"]}),
        json!({"name": "x", "scopes": [""]}),
        json!({"name": "x", "expires_in": 0}),
        json!({"name": "line\nbreak"}),
        json!({"name": "x".repeat(129)}),
    ] {
        let r = post(Body::Json(spec.clone())).await;
        assert_eq!(
            (r.status, &r.body["error"]),
            (StatusCode::BAD_REQUEST, &json!("bad_spec")),
            "{spec}"
        );
        assert!(r.body["detail"].is_string(), "{spec}");
    }
    // Nothing was created by the refused requests.
    assert_eq!(s.list_keys(&alice).await.body, json!({"keys": []}));

    // The limit: two live keys; revoking one makes room.
    let first = post(Body::Json(json!({"name": "1"}))).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let second = post(Body::Json(json!({"name": "2", "expires_in": null}))).await;
    assert_eq!(second.status, StatusCode::CREATED);
    let third = post(Body::Json(json!({"name": "3"}))).await;
    assert_eq!(
        (third.status, third.body),
        (
            StatusCode::CONFLICT,
            json!({"error": "too_many_keys", "max": 2})
        )
    );
    let id = text(&first.body["id"]);
    assert_eq!(
        s.revoke_key(&alice, id).await.status,
        StatusCode::NO_CONTENT
    );
    let third = post(Body::Json(json!({"name": "3"}))).await;
    assert_eq!(third.status, StatusCode::CREATED);

    // Roll bodies: bad JSON and too long an overlap are refused, and the key
    // keeps working as it was.
    let id = text(&third.body["id"]);
    let key = text(&third.body["key"]);
    for body in [
        Body::Raw("{"),
        Body::Raw(r#"{"overlap": 5}"#),
        Body::Json(json!({"overlap_secs": "5"})),
        Body::Json(json!({"overlap_secs": keyward::axum::MAX_ROLL_OVERLAP_SECS + 1})),
    ] {
        let r = s.roll_key(&alice, id, body).await;
        assert_eq!(
            (r.status, &r.body["error"]),
            (StatusCode::BAD_REQUEST, &json!("bad_request"))
        );
    }
    let (st, me) = s.get_as("/me", key).await;
    assert_eq!((st, &me["rolled_until"]), (StatusCode::OK, &Value::Null));
    let r = s
        .roll_key(
            &alice,
            id,
            Body::Json(json!({"overlap_secs": keyward::axum::MAX_ROLL_OVERLAP_SECS})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);

    // An expired key cannot be rolled, and is refused as expired.
    let id = text(&second.body["id"]);
    assert_eq!(
        s.revoke_key(&alice, id).await.status,
        StatusCode::NO_CONTENT
    );
    let short = post(Body::Json(json!({"name": "short", "expires_in": 30}))).await;
    assert_eq!(short.status, StatusCode::CREATED);
    s.clock.advance(30);
    let (st, body) = s.get_as("/me", text(&short.body["key"])).await;
    assert_eq!(
        (st, body),
        (StatusCode::UNAUTHORIZED, json!({"error": "expired"}))
    );
    let r = s
        .roll_key(&alice, text(&short.body["id"]), Body::Empty)
        .await;
    assert_eq!(
        (r.status, r.body),
        (StatusCode::CONFLICT, json!({"error": "expired"}))
    );
}

// ---- Sessions ("your devices") ----

impl Server {
    /// Registers `user` (the password of [`Server::access_token`]).
    async fn register(&self, user: &str) {
        let (st, _) = self
            .post(
                "/register",
                json!({"username": user, "password": "correct horse battery"}),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED);
    }

    /// Logs `user` in, sending `agent` as the `User-Agent`: the token pair.
    async fn login_from(&self, user: &str, agent: Option<&str>) -> Value {
        let mut req = self
            .client
            .post(format!("{}/login", self.base))
            .json(&json!({"username": user, "password": "correct horse battery"}));
        if let Some(a) = agent {
            req = req.header(reqwest::header::USER_AGENT, a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.unwrap()
    }

    /// `GET /sessions`.
    async fn list_sessions(&self, token: &str) -> Reply {
        self.call(reqwest::Method::GET, "/sessions", Some(token), Body::Empty)
            .await
    }

    /// `DELETE /sessions/{id}`.
    async fn revoke_session(&self, token: &str, id: &str) -> Reply {
        let path = format!("/sessions/{id}");
        self.call(reqwest::Method::DELETE, &path, Some(token), Body::Empty)
            .await
    }

    /// The session id (`sid`) of an access token, from `/me`.
    async fn sid(&self, pair: &Value) -> String {
        let (st, me) = self.get_as("/me", text(&pair["access_token"])).await;
        assert_eq!(st, StatusCode::OK);
        text(&me["sid"]).to_owned()
    }

    /// The session ids `token`'s user sees, in the listed order.
    async fn session_ids(&self, token: &str) -> Vec<String> {
        let listed = self.list_sessions(token).await;
        assert_eq!(listed.status, StatusCode::OK);
        listed.body["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| text(&e["session"]).to_owned())
            .collect()
    }
}

fn access(pair: &Value) -> &str {
    text(&pair["access_token"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_listed_with_the_current_one_marked() {
    let s = serve().await;
    s.register("alice").await;
    let started = s.clock.now();
    let phone = s.login_from("alice", Some("Phone/1.0 (Android)")).await;
    s.clock.advance(5);
    let laptop = s.login_from("alice", None).await;
    let (phone_sid, laptop_sid) = (s.sid(&phone).await, s.sid(&laptop).await);
    assert_ne!(phone_sid, laptop_sid);

    let listed = s.list_sessions(access(&laptop)).await;
    assert_eq!(listed.status, StatusCode::OK);
    let idle = keyward::session::DEFAULT_IDLE_TTL_SECS;
    // Oldest first; the laptop's token asked, so the laptop is current.
    assert_eq!(
        listed.body,
        json!({"sessions": [
            {
                "session": phone_sid,
                "started_at": started,
                "refreshed_at": started,
                "generation": 0,
                "expires_at": started + idle,
                "meta": "Phone/1.0 (Android)",
                "current": false,
            },
            {
                "session": laptop_sid,
                "started_at": started + 5,
                "refreshed_at": started + 5,
                "generation": 0,
                "expires_at": started + 5 + idle,
                "meta": null,
                "current": true,
            },
        ]})
    );
    // Nothing secret in the list.
    let raw = listed.body.to_string();
    for pair in [&phone, &laptop] {
        assert!(!raw.contains(text(&pair["refresh_token"])));
        assert!(!raw.contains(access(pair)));
    }

    // Asked with the phone's token, the phone is current; a refresh shows.
    s.clock.advance(60);
    let (st, refreshed) = refresh(&s, &phone).await;
    assert_eq!(st, StatusCode::OK);
    let listed = s.list_sessions(access(&refreshed)).await;
    let entries = listed.body["sessions"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    let current: Vec<&Value> = entries.iter().filter(|e| e["current"] == true).collect();
    assert_eq!(current.len(), 1);
    let now = s.clock.now();
    assert_eq!(
        (
            &current[0]["session"],
            &current[0]["generation"],
            &current[0]["refreshed_at"],
            &current[0]["expires_at"],
        ),
        (
            &json!(phone_sid),
            &json!(1),
            &json!(now),
            &json!(now + idle)
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_revoked_by_id_refuses_its_refresh_token() {
    let s = serve().await;
    s.register("alice").await;
    let phone = s.login_from("alice", Some("Phone/1.0")).await;
    let laptop = s.login_from("alice", Some("Laptop/2.0")).await;
    let (phone_sid, laptop_sid) = (s.sid(&phone).await, s.sid(&laptop).await);

    // The laptop signs the phone out.
    let revoked = s.revoke_session(access(&laptop), &phone_sid).await;
    assert_eq!(
        (revoked.status, revoked.body),
        (StatusCode::NO_CONTENT, Value::Null)
    );
    let (st, body) = refresh(&s, &phone).await;
    assert_eq!(
        (st, body),
        (StatusCode::UNAUTHORIZED, json!({"error": "revoked"}))
    );
    // The phone's access token no longer passes the session check.
    let listed = s.list_sessions(access(&phone)).await;
    assert_eq!(
        (listed.status, listed.body),
        (StatusCode::UNAUTHORIZED, json!({"error": "invalid_token"}))
    );
    let listed = s.list_sessions(access(&laptop)).await;
    assert_eq!(listed.status, StatusCode::OK);
    let entries = listed.body["sessions"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(
        (&entries[0]["session"], &entries[0]["current"]),
        (&json!(laptop_sid), &json!(true))
    );
    // Ending it again changes nothing and says so alike.
    let again = s.revoke_session(access(&laptop), &phone_sid).await;
    assert_eq!(again.status, StatusCode::NO_CONTENT);
    // The laptop's session is untouched.
    let (st, laptop2) = refresh(&s, &laptop).await;
    assert_eq!(st, StatusCode::OK);

    // Ending the current session logs this device out.
    let own = s.revoke_session(access(&laptop2), &laptop_sid).await;
    assert_eq!(own.status, StatusCode::NO_CONTENT);
    let (st, _) = refresh(&s, &laptop2).await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(
        s.list_sessions(access(&laptop2)).await.status,
        StatusCode::UNAUTHORIZED
    );
    let fresh = s.login_from("alice", None).await;
    assert_eq!(s.session_ids(access(&fresh)).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_an_unknown_session_is_404_unknown() {
    let s = serve().await;
    s.register("alice").await;
    let pair = s.login_from("alice", None).await;
    let sid = s.sid(&pair).await;
    let unknown = json!({"error": "unknown"});
    // A well-formed id nobody holds, the real id in upper case, malformed
    // ids: one answer for all.
    for id in [
        "0".repeat(32),
        sid.to_uppercase(),
        format!("{sid}00"),
        "not-a-session".to_owned(),
    ] {
        let r = s.revoke_session(access(&pair), &id).await;
        assert_eq!(
            (r.status, &r.body),
            (StatusCode::NOT_FOUND, &unknown),
            "{id}"
        );
    }
    // Nothing was revoked.
    assert_eq!(s.session_ids(access(&pair)).await, [sid]);
    assert_eq!(refresh(&s, &pair).await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_session_cannot_be_revoked() {
    let s = serve().await;
    s.register("alice").await;
    s.register("bob").await;
    let alice = s.login_from("alice", Some("Alice's browser")).await;
    let bob = s.login_from("bob", None).await;
    let (alice_sid, bob_sid) = (s.sid(&alice).await, s.sid(&bob).await);

    // Bob sees only his own session, and cannot end Alice's: 404, as for
    // an id nobody holds.
    assert_eq!(s.session_ids(access(&bob)).await, [bob_sid.as_str()]);
    let r = s.revoke_session(access(&bob), &alice_sid).await;
    assert_eq!(
        (r.status, r.body),
        (StatusCode::NOT_FOUND, json!({"error": "unknown"}))
    );
    // Alice's session still works: her access token, then her refresh.
    assert_eq!(s.session_ids(access(&alice)).await, [alice_sid.as_str()]);
    let (st, alice2) = refresh(&s, &alice).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(s.session_ids(access(&alice2)).await, [alice_sid.as_str()]);
    // Nor can Alice end Bob's.
    let r = s.revoke_session(access(&alice2), &bob_sid).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(refresh(&s, &bob).await.0, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_routes_need_a_live_access_token() {
    let s = serve().await;
    s.register("alice").await;
    let pair = s.login_from("alice", None).await;
    let sid = s.sid(&pair).await;
    let made = s
        .create_key(access(&pair), json!({"name": "ci", "scopes": []}))
        .await;
    assert_eq!(made.status, StatusCode::CREATED);
    let key = text(&made.body["key"]).to_owned();
    let invalid = json!({"error": "invalid_token"});
    let one = format!("/sessions/{sid}");
    // No bearer, a malformed one, and an API key (which manages no
    // sessions): 401 on both routes.
    for bearer in [None, Some("not.a.jwt"), Some(key.as_str())] {
        for (method, path) in [
            (reqwest::Method::GET, "/sessions"),
            (reqwest::Method::DELETE, one.as_str()),
        ] {
            let r = s.call(method.clone(), path, bearer, Body::Empty).await;
            assert_eq!(
                (r.status, &r.body),
                (StatusCode::UNAUTHORIZED, &invalid),
                "{method} {path}"
            );
        }
    }
    // None of them ended the session.
    assert_eq!(s.session_ids(access(&pair)).await, [sid.as_str()]);
    // After logout-all, the access token is refused too.
    assert_eq!(
        s.with_bearer(reqwest::Method::POST, "/logout-all", Some(access(&pair)))
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let r = s.list_sessions(access(&pair)).await;
    assert_eq!((r.status, r.body), (StatusCode::UNAUTHORIZED, invalid));
    let fresh = s.login_from("alice", None).await;
    assert_eq!(s.session_ids(access(&fresh)).await.len(), 1);
}

#[test]
fn the_user_agent_becomes_session_metadata_keyward_accepts() {
    use axum::http::{HeaderMap, HeaderValue, header};
    let device = |ua: &[u8]| {
        let mut headers = HeaderMap::new();
        headers.insert(header::USER_AGENT, HeaderValue::from_bytes(ua).unwrap());
        keyward::axum::device_meta(&headers)
    };
    let max = keyward::session::MAX_META_LEN;
    assert_eq!(keyward::axum::device_meta(&HeaderMap::new()), None);
    assert_eq!(
        device(b"Mozilla/5.0 (X11; Linux x86_64)").as_deref(),
        Some("Mozilla/5.0 (X11; Linux x86_64)")
    );
    // A tab is allowed in a header but is a control character: a space.
    assert_eq!(device(b"a\tb").as_deref(), Some("a b"));
    // Nothing but blanks: no metadata.
    assert_eq!(device(b" \t ").as_deref(), None);
    // Bytes that are not UTF-8 are replaced.
    assert_eq!(device(b"caf\xe9").as_deref(), Some("caf\u{fffd}"));
    // Too long: cut to MAX_META_LEN bytes, never inside a character.
    let long = "x".repeat(max + 10);
    assert_eq!(device(long.as_bytes()).unwrap().len(), max);
    // "é" is two bytes; one "x" in front puts a boundary just past the cut.
    let accented = format!("x{}", "é".repeat(max));
    let cut = device(accented.as_bytes()).unwrap();
    assert_eq!(cut.len(), max - 1);
    assert!(cut.starts_with('x') && cut[1..].chars().all(|c| c == 'é'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_or_odd_user_agent_still_logs_in_and_is_listed_cut() {
    let s = serve().await;
    s.register("alice").await;
    let max = keyward::session::MAX_META_LEN;
    let long = format!("Agent/1.0 {}", "é".repeat(max));
    // A second apart, so that the list (oldest first) has their order.
    let pair = s.login_from("alice", Some(&long)).await;
    s.clock.advance(1);
    let odd = s.login_from("alice", Some("tab\there")).await;
    s.clock.advance(1);
    let blank = s.login_from("alice", Some("   ")).await;
    let listed = s.list_sessions(access(&blank)).await;
    let entries = listed.body["sessions"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    let meta: Vec<&Value> = entries.iter().map(|e| &e["meta"]).collect();
    let cut = text(meta[0]);
    assert!(cut.len() <= max && long.starts_with(cut), "{cut}");
    assert!(cut.len() > max - 2, "{}", cut.len());
    assert_eq!(meta[1], "tab here");
    assert_eq!(meta[2], &Value::Null);
    assert_eq!(refresh(&s, &pair).await.0, StatusCode::OK);
    assert_eq!(refresh(&s, &odd).await.0, StatusCode::OK);
}

/// The PostgreSQL and Redis servers of the replica tests, and fresh key
/// namespaces on them: the integration tests' own helpers.
#[path = "../../../tests/common/services.rs"]
mod common;

// ---- Account deletion ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_account_erases_the_caller_and_only_the_caller() {
    let s = serve().await;
    s.register("alice").await;
    s.register("bob").await;
    let phone = s.login_from("alice", None).await;
    let laptop = s.login_from("alice", None).await;
    let alice_key = s
        .create_key(access(&laptop), json!({"name": "ci"}))
        .await
        .body["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let bob = s.login_from("bob", None).await;
    let bob_key = s.create_key(access(&bob), json!({"name": "ci"})).await.body["key"]
        .as_str()
        .unwrap()
        .to_owned();

    // Without a live access token: refused, nothing erased.
    let anon = s
        .call(reqwest::Method::DELETE, "/account", None, Body::Empty)
        .await;
    assert_eq!(anon.status, StatusCode::UNAUTHORIZED);
    assert_eq!(s.get_as("/me", &alice_key).await.0, StatusCode::OK);

    let gone = s
        .call(
            reqwest::Method::DELETE,
            "/account",
            Some(access(&phone)),
            Body::Empty,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    // Every credential of alice is refused; her name no longer logs in.
    for pair in [&phone, &laptop] {
        assert_eq!(refresh(&s, pair).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(
            s.list_sessions(access(pair)).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        s.get_as("/me", &alice_key).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (st, _) = s
        .post(
            "/login",
            json!({"username": "alice", "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // Bob is untouched.
    assert_eq!(s.get_as("/me", &bob_key).await.0, StatusCode::OK);
    assert_eq!(refresh(&s, &bob).await.0, StatusCode::OK);
    // The name is free again, and starts with nothing.
    s.register("alice").await;
    let again = s.login_from("alice", None).await;
    assert_eq!(s.session_ids(access(&again)).await.len(), 1);
    assert_eq!(s.list_keys(access(&again)).await.body["keys"], json!([]));
}

// ---- The second factor. ----

/// RFC 4648 §6 base32, unpadded, as the enrollment shows the secret.
fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0u32);
    for c in text.bytes() {
        let v = ALPHABET.iter().position(|&a| a == c).unwrap();
        acc = (acc << 5) | u32::try_from(v).unwrap();
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).unwrap());
        }
    }
    out
}

/// The 6-digit SHA-1 TOTP code of `secret` (base32) at `unix` seconds, 30 s
/// steps (RFC 6238 over RFC 4226 §5.3), computed here from the secret the
/// enrollment showed: what an authenticator app would show.
fn app_code(secret: &str, unix: u64) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let mut mac = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(&base32_decode(secret)).unwrap();
    mac.update(&(unix / 30).to_be_bytes());
    let h = mac.finalize().into_bytes();
    let at = usize::from(h[19] & 0x0f);
    let bin = u32::from_be_bytes([h[at] & 0x7f, h[at + 1], h[at + 2], h[at + 3]]);
    format!("{:06}", bin % 1_000_000)
}

impl Server {
    /// The code the app shows now, on the server's clock, after moving the
    /// clock to the next step (so that no earlier code's step repeats).
    fn next_code(&self, secret: &str) -> String {
        self.clock.advance(30);
        app_code(secret, self.clock.now())
    }

    /// `POST /login/mfa` with the challenge and `second` (`code` or
    /// `recovery_code`).
    async fn mfa(&self, challenge: &Value, second: Value) -> (StatusCode, Value) {
        let mut body = second;
        body["mfa_token"] = challenge["mfa_token"].clone();
        self.post("/login/mfa", body).await
    }

    /// `GET /me`'s `amr` for the access token of `pair`.
    async fn amr(&self, pair: &Value) -> Value {
        let (st, me) = self.get_as("/me", access(pair)).await;
        assert_eq!(st, StatusCode::OK, "{me}");
        me["amr"].clone()
    }
}

/// The answer to a login whose password was right for a user with a
/// second factor: a challenge, no tokens.
fn assert_challenge(st: StatusCode, body: &Value) {
    assert_eq!(st, StatusCode::OK, "{body}");
    assert_eq!(body["mfa_required"], json!(true), "{body}");
    assert!(text(&body["mfa_token"]).starts_with("kwm_"), "{body}");
    assert_eq!(body["expires_in"], json!(300));
    assert!(body.get("access_token").is_none(), "{body}");
    assert!(body.get("refresh_token").is_none(), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_factor_is_enrolled_asked_at_login_and_shown_in_me() {
    let s = serve().await;
    s.register("ada").await;
    let before = s.login_from("ada", None).await;
    assert_eq!(s.amr(&before).await, json!(["pwd"]));
    let status = s
        .call(
            reqwest::Method::GET,
            "/totp",
            Some(access(&before)),
            Body::Empty,
        )
        .await;
    assert_eq!(
        status.body,
        json!({"enrolled": false, "recovery_codes_left": null})
    );

    // Enrollment: the URI, the same secret in base32, and a QR code a
    // browser can show; never cached.
    let anon = s
        .call(reqwest::Method::POST, "/totp/enroll", None, Body::Empty)
        .await;
    assert_eq!(anon.status, StatusCode::UNAUTHORIZED);
    let enrolled = s
        .call(
            reqwest::Method::POST,
            "/totp/enroll",
            Some(access(&before)),
            Body::Empty,
        )
        .await;
    assert_eq!(enrolled.status, StatusCode::CREATED, "{}", enrolled.body);
    assert_eq!(enrolled.cache_control.as_deref(), Some("no-store"));
    let secret = text(&enrolled.body["secret"]).to_owned();
    let uri = text(&enrolled.body["uri"]);
    assert!(uri.starts_with("otpauth://totp/"), "{uri}");
    assert!(uri.contains(&format!("secret={secret}")), "{uri}");
    let svg = text(&enrolled.body["qr_svg"]);
    assert!(
        svg.contains("<svg") && svg.trim_end().ends_with("</svg>"),
        "{svg}"
    );
    // Not confirmed yet: a login still gets tokens at once.
    let (st, pair) = s.login("ada", "correct horse battery").await;
    assert_eq!(st, StatusCode::OK);
    assert!(pair["access_token"].is_string());

    // A wrong first code is counted; the app's code confirms, once.
    let code = s.next_code(&secret);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let confirm = |c: &str| {
        s.call(
            reqwest::Method::POST,
            "/totp/confirm",
            Some(access(&before)),
            Body::Json(json!({"code": c})),
        )
    };
    let refused = confirm(wrong).await;
    assert_eq!(
        (refused.status, refused.body.clone()),
        (
            StatusCode::UNAUTHORIZED,
            json!({"error": "invalid", "attempts_left": 2})
        )
    );
    let confirmed = confirm(&code).await;
    assert_eq!(confirmed.status, StatusCode::OK, "{}", confirmed.body);
    assert_eq!(confirmed.cache_control.as_deref(), Some("no-store"));
    let recovery: Vec<String> = confirmed.body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| text(c).to_owned())
        .collect();
    assert_eq!(recovery.len(), 10);
    // Every session so far passed the password alone: they ended with
    // the confirmation.
    assert_eq!(confirm(&code).await.status, StatusCode::UNAUTHORIZED);
    for ended in [&before, &pair] {
        let r = s
            .call(
                reqwest::Method::GET,
                "/totp",
                Some(access(ended)),
                Body::Empty,
            )
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert_eq!(refresh(&s, ended).await.0, StatusCode::UNAUTHORIZED);
    }

    // From now on the password alone gets a challenge, not tokens.
    let (st, challenge) = s.login("ada", "correct horse battery").await;
    assert_challenge(st, &challenge);
    // The confirming code was spent: a replay, not counted.
    assert_eq!(
        s.mfa(&challenge, json!({"code": code})).await,
        (StatusCode::UNAUTHORIZED, json!({"error": "replayed"}))
    );
    let answer = s
        .call(
            reqwest::Method::POST,
            "/login/mfa",
            None,
            Body::Json(json!({
                "mfa_token": challenge["mfa_token"],
                "code": s.next_code(&secret),
            })),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.cache_control.as_deref(), Some("no-store"));
    let pair = answer.body;
    assert_eq!(s.amr(&pair).await, json!(["pwd", "otp", "mfa"]));
    // A second enrollment waits for this one to be disabled.
    let twice = s
        .call(
            reqwest::Method::POST,
            "/totp/enroll",
            Some(access(&pair)),
            Body::Empty,
        )
        .await;
    assert_eq!(
        (twice.status, twice.body),
        (StatusCode::CONFLICT, json!({"error": "already_enrolled"}))
    );
    // A refresh keeps it.
    let (st, refreshed) = refresh(&s, &pair).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(s.amr(&refreshed).await, json!(["pwd", "otp", "mfa"]));
    // The challenge started one session.
    assert_eq!(
        s.mfa(&challenge, json!({"code": s.next_code(&secret)}))
            .await,
        (
            StatusCode::UNAUTHORIZED,
            json!({"error": "invalid_challenge"})
        )
    );

    // A recovery code instead: `mfa` without `otp`, and the count left.
    let (st, challenge) = s.login("ada", "correct horse battery").await;
    assert_challenge(st, &challenge);
    let (st, pair) = s
        .mfa(&challenge, json!({"recovery_code": recovery[0]}))
        .await;
    assert_eq!(st, StatusCode::OK, "{pair}");
    assert_eq!(pair["recovery_codes_left"], json!(9));
    assert_eq!(s.amr(&pair).await, json!(["pwd", "mfa"]));
    let (st, challenge) = s.login("ada", "correct horse battery").await;
    assert_challenge(st, &challenge);
    assert_eq!(
        s.mfa(&challenge, json!({"recovery_code": recovery[0]}))
            .await,
        (StatusCode::UNAUTHORIZED, json!({"error": "used"}))
    );
    // One of the two, not both or neither; and only a challenge keyward
    // issued.
    let both = json!({"code": s.next_code(&secret), "recovery_code": recovery[1]});
    assert_eq!(s.mfa(&challenge, both).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(
        s.mfa(&challenge, json!({})).await.0,
        StatusCode::BAD_REQUEST
    );
    let forged = json!({"mfa_token": format!("{}0", text(&challenge["mfa_token"]))});
    assert_eq!(
        s.mfa(&forged, json!({"code": s.next_code(&secret)})).await,
        (
            StatusCode::UNAUTHORIZED,
            json!({"error": "invalid_challenge"})
        )
    );

    // An emailed login code stands in for the password, not for the
    // second factor.
    let emailed = s.send_code("ada").await;
    let (st, challenge) = s
        .post("/otp/verify", json!({"username": "ada", "code": emailed}))
        .await;
    assert_challenge(st, &challenge);
    let (st, otp_pair) = s
        .mfa(&challenge, json!({"code": s.next_code(&secret)}))
        .await;
    assert_eq!(st, StatusCode::OK, "{otp_pair}");
    assert_eq!(s.amr(&otp_pair).await, json!(["otp", "mfa"]));

    let status = s
        .call(
            reqwest::Method::GET,
            "/totp",
            Some(access(&pair)),
            Body::Empty,
        )
        .await;
    assert_eq!(
        status.body,
        json!({"enrolled": true, "recovery_codes_left": 9})
    );
    // A new set replaces the old one: an old code is a wrong one now.
    let fresh = s
        .call(
            reqwest::Method::POST,
            "/totp/recovery",
            Some(access(&pair)),
            Body::Empty,
        )
        .await;
    assert_eq!(fresh.status, StatusCode::OK);
    assert_eq!(fresh.body["recovery_codes"].as_array().unwrap().len(), 10);
    let (st, challenge) = s.login("ada", "correct horse battery").await;
    assert_challenge(st, &challenge);
    assert_eq!(
        s.mfa(&challenge, json!({"recovery_code": recovery[1]}))
            .await,
        (
            StatusCode::UNAUTHORIZED,
            json!({"error": "invalid", "attempts_left": 1})
        )
    );

    // Disabled, with a session that passed it: the password is enough
    // again.
    let gone = s
        .call(
            reqwest::Method::DELETE,
            "/totp",
            Some(access(&pair)),
            Body::Empty,
        )
        .await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    let (st, pair) = s.login("ada", "correct horse battery").await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(s.amr(&pair).await, json!(["pwd"]));
    let again = s
        .call(
            reqwest::Method::DELETE,
            "/totp",
            Some(access(&pair)),
            Body::Empty,
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_second_factor_codes_lock_the_login_and_are_not_a_bypass() {
    let s = serve().await;
    s.register("bea").await;
    let token = s.login_from("bea", None).await;
    let enrolled = s
        .call(
            reqwest::Method::POST,
            "/totp/enroll",
            Some(access(&token)),
            Body::Empty,
        )
        .await;
    let secret = text(&enrolled.body["secret"]).to_owned();
    let confirmed = s
        .call(
            reqwest::Method::POST,
            "/totp/confirm",
            Some(access(&token)),
            Body::Json(json!({"code": s.next_code(&secret)})),
        )
        .await;
    assert_eq!(confirmed.status, StatusCode::OK);

    // A wrong password gets no challenge.
    let (st, body) = s.login("bea", "not the password").await;
    assert_eq!(
        (st, body),
        (
            StatusCode::UNAUTHORIZED,
            json!({"error": "invalid_credentials"})
        )
    );
    // Three wrong codes, TOTP or recovery, lock bea: then even the right
    // code is refused, and the challenge mints nothing.
    let (st, challenge) = s.login("bea", "correct horse battery").await;
    assert_challenge(st, &challenge);
    let right = s.next_code(&secret);
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    let mut left = Vec::new();
    for second in [
        json!({"code": wrong}),
        json!({"recovery_code": "aaaa-bbbb-cccc-dddd"}),
        json!({"code": wrong}),
    ] {
        let (st, body) = s.mfa(&challenge, second).await;
        assert_eq!(
            (st, body["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid"))
        );
        left.push(body["attempts_left"].as_u64().unwrap());
    }
    assert_eq!(left, [2, 1, 0]);
    let (st, body) = s.mfa(&challenge, json!({"code": right})).await;
    assert_eq!(
        (st, body["error"].as_str()),
        (StatusCode::LOCKED, Some("locked"))
    );
    // The challenge's lifetime (5 minutes) is shorter than the lock.
    s.clock.advance(3_600);
    let (st, challenge) = s.login("bea", "correct horse battery").await;
    assert_challenge(st, &challenge);
    let (st, pair) = s
        .mfa(&challenge, json!({"code": s.next_code(&secret)}))
        .await;
    assert_eq!(st, StatusCode::OK, "{pair}");
    assert_eq!(s.amr(&pair).await, json!(["pwd", "otp", "mfa"]));
}

#[tokio::test]
async fn changing_the_factor_asks_for_a_session_that_passed_it() {
    let kw = Keyward::builder()
        .password_policy(test_policy())
        .issuer("http://keyward.test")
        .audience("keyward-server")
        .keys(KeyRing::generate(JwtAlg::EdDSA).unwrap())
        .store(keyward::MemoryStore::new())
        .build()
        .unwrap();
    let (sessions, totp) = (kw.sessions(), kw.totp());
    let pw = keyward::Password::from("correct horse battery");
    let stored = kw.passwords().hash(&pw).unwrap();
    let verified = kw.passwords().verify("ada", &pw, &stored).unwrap();
    let enrollment = totp.enroll("ada", "t", "ada").await.unwrap();
    let code = totp.dangerous_code_now(&enrollment).unwrap();
    let codes = totp.confirm("ada", &code).await.unwrap();

    // The password alone: 401, with RFC 9470's challenge.
    let plain = sessions.start(&verified).await.unwrap();
    let claims = sessions
        .authenticate(plain.access.unprotected_as_str())
        .unwrap();
    let refused = axum::response::IntoResponse::into_response(keyward::axum::Rejection::from(
        claims.require_mfa().unwrap_err(),
    ));
    assert_eq!(refused.status(), axum::http::StatusCode::UNAUTHORIZED);
    let challenge = refused.headers()[axum::http::header::WWW_AUTHENTICATE]
        .to_str()
        .unwrap();
    assert!(
        challenge.starts_with("Bearer error=\"insufficient_user_authentication\""),
        "{challenge}"
    );

    // With the factor: through.
    let second = totp
        .recover("ada", codes.codes()[0].unprotected_as_str())
        .await
        .unwrap();
    let mfa = sessions
        .start_with_second_factor(&verified, second)
        .await
        .unwrap();
    let claims = sessions
        .authenticate(mfa.access.unprotected_as_str())
        .unwrap();
    assert!(claims.require_mfa().is_ok());
}
