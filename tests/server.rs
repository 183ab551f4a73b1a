//! The reference auth server (examples/server), end to end: it is served on
//! an ephemeral loopback port and driven with a real HTTP client.
#![cfg(feature = "sqlite")]
#![allow(clippy::unwrap_used, clippy::panic, clippy::arithmetic_side_effects)]

#[path = "../examples/server/app.rs"]
mod app;

use std::net::SocketAddr;
use std::sync::Arc;

use keyward::clock::{Clock, ManualClock, SystemClock};
use keyward::{JwtAlg, KeyRing, Keyward, SqliteStore};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A django-pbkdf2-sha256 hash made by Django 5.2.19 (tests/data/legacy)
/// for "correct horse battery staple".
const DJANGO_HASH: &str =
    "pbkdf2_sha256$1000$tA0jUhl26X9Qf7Y2KbDERg$y60Tjp/vlE6maCpHoGXXUCU+VtNad/l6uUukUbgYQI0=";

struct Server {
    base: String,
    client: reqwest::Client,
    users: app::Users,
    clock: ManualClock,
    outbox: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

async fn serve() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("server.db");
    let clock = ManualClock::new(SystemClock.now());
    let mut policy = app::password_policy();
    policy.iterations = 10_000; // test speed; the example binary uses the default
    let kw = Keyward::builder()
        .password_policy(policy)
        .issuer("http://keyward.test")
        .audience("keyward-server")
        .keys(KeyRing::generate(JwtAlg::EdDSA).unwrap())
        .store(SqliteStore::open(&db).await.unwrap())
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let users = app::Users::open(&db).await.unwrap();
    let state = app::App {
        kw,
        users: users.clone(),
        mailer: Arc::new(app::OutboxMailer(dir.path().join("outbox.jsonl"))),
        trust_forwarded_for: true,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app::router(state).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    Server {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
        users,
        clock,
        outbox: dir.path().join("outbox.jsonl"),
        _dir: dir,
    }
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
    assert!(s.codes_for("nobody").is_empty());

    // The right code logs in.
    assert_eq!(
        s.post("/otp/send", json!({"username": "dora"})).await.0,
        StatusCode::ACCEPTED
    );
    let code = s.codes_for("dora").pop().unwrap();
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

    // Three wrong codes lock the subject for an hour; then even the right one is refused.
    s.post("/otp/send", json!({"username": "erin"})).await;
    let right = s.codes_for("erin").pop().unwrap();
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
    s.clock.advance(3600);
    // After the hour, a new code works (the lock discarded the old one).
    s.clock.advance(60);
    s.post("/otp/send", json!({"username": "erin"})).await;
    let fresh = s.codes_for("erin").pop().unwrap();
    assert_eq!(
        s.post("/otp/verify", json!({"username": "erin", "code": fresh}))
            .await
            .0,
        StatusCode::OK
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_floods_from_one_source_are_throttled_with_retry_after() {
    let s = serve().await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for i in 0..12 {
        let r = s
            .client
            .post(format!("{}/login", s.base))
            .header("x-forwarded-for", "203.0.113.7")
            .json(&json!({"username": format!("user{i}"), "password": "wrong password"}))
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            retry_after = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
        }
        statuses.push(r.status());
    }
    assert!(
        statuses[..10]
            .iter()
            .all(|s| *s == StatusCode::UNAUTHORIZED),
        "{statuses:?}"
    );
    assert!(
        statuses[10..]
            .iter()
            .all(|s| *s == StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    assert!(retry_after.unwrap().parse::<u64>().unwrap() >= 1);
    // Another source is not affected.
    let r = s
        .client
        .post(format!("{}/login", s.base))
        .header("x-forwarded-for", "198.51.100.9")
        .json(&json!({"username": "someone", "password": "wrong password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}
