//! keyward's ready router (`keyward::axum::AuthRoutes`) through real HTTP,
//! as `examples/axum_service.rs` serves it: register, login with rehash,
//! a protected route, refresh, logout, an e-mailed code, API keys; then
//! the refresh cookie of browser clients with its CSRF header, and the
//! limit layer.
#![cfg(all(feature = "axum", feature = "sqlite"))]
#![allow(clippy::unwrap_used, clippy::panic, unreachable_pub)]

#[allow(dead_code)]
#[path = "../examples/axum_service.rs"]
mod service;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use keyward::axum::{
    AuthRoutes, CSRF_HEADER, ClientAddr, LimitLayer, RefreshCookie, UserDirectory,
};
use keyward::limit::Limit;
use keyward::{Complete, JwtAlg, KeyRing, Keyward, MemoryStore, PasswordPolicy, SessionPolicy};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER, SET_COOKIE, WWW_AUTHENTICATE};
use serde_json::{Value, json};

/// A django-pbkdf2-sha256 hash made by Django 5.2.19 (tests/data/legacy)
/// for "correct horse battery staple".
const DJANGO_HASH: &str =
    "pbkdf2_sha256$1000$tA0jUhl26X9Qf7Y2KbDERg$y60Tjp/vlE6maCpHoGXXUCU+VtNad/l6uUukUbgYQI0=";

/// keyward at a test's cost, with no grace for a replayed refresh token:
/// any replay is a reuse.
fn keyward() -> Keyward<Complete> {
    let mut policy = PasswordPolicy::default();
    policy.iterations = 10_000;
    let mut sessions = SessionPolicy::default();
    sessions.reuse_grace_secs = 0;
    Keyward::builder()
        .password_policy(policy)
        .session_policy(sessions)
        .keys(KeyRing::generate(JwtAlg::EdDSA).unwrap())
        .store(MemoryStore::new())
        .issuer("http://keyward.test")
        .audience("service")
        .build()
        .unwrap()
}

async fn users(dir: &tempfile::TempDir) -> service::Users {
    let url = format!("sqlite:{}?mode=rwc", dir.path().join("users.db").display());
    service::Users::open(sqlx::SqlitePool::connect(&url).await.unwrap())
        .await
        .unwrap()
}

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    format!("http://{addr}")
}

struct Client {
    base: String,
    http: reqwest::Client,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Client {
    async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let r = req.send().await.unwrap();
        let (status, headers) = (r.status(), r.headers().clone());
        let text = r.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer {
            status,
            headers,
            body,
        }
    }

    async fn post(&self, path: &str, body: Value) -> Answer {
        let url = format!("{}{path}", self.base);
        self.send(self.http.post(url).json(&body)).await
    }

    async fn get(&self, path: &str, bearer: Option<&str>) -> Answer {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        self.send(req).await
    }
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap()
}

#[tokio::test]
async fn a_new_service_does_the_whole_round_on_the_ready_router() {
    let dir = tempfile::tempdir().unwrap();
    let users = users(&dir).await;
    let codes: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let mailbox = Arc::clone(&codes);
    let mail = move |to: &str, code: &str| {
        mailbox
            .lock()
            .unwrap()
            .push((to.to_owned(), code.to_owned()));
    };
    let kw = keyward();
    let c = Client {
        base: serve(service::app(kw.clone(), users.clone(), mail)).await,
        http: reqwest::Client::new(),
    };
    let ada = json!({"username": "ada", "password": "correct horse battery"});

    // Register, once.
    assert_eq!(
        c.post("/register", ada.clone()).await.status,
        StatusCode::CREATED
    );
    let again = c.post("/register", ada.clone()).await;
    assert_eq!(
        (again.status, again.body),
        (StatusCode::CONFLICT, json!({"error": "user_exists"}))
    );
    let weak = c
        .post("/register", json!({"username": "bo", "password": "short"}))
        .await;
    assert_eq!(
        (weak.status, &weak.body["error"]),
        (StatusCode::BAD_REQUEST, &json!("weak_password"))
    );
    let garbage = c.post("/register", json!({"user": "x"})).await;
    assert_eq!(
        (garbage.status, garbage.body),
        (StatusCode::BAD_REQUEST, json!({"error": "bad_request"}))
    );

    // Log in: a wrong password and an unknown user get the same answer.
    let wrong = c
        .post(
            "/login",
            json!({"username": "ada", "password": "wrong horse battery"}),
        )
        .await;
    let nobody = c
        .post(
            "/login",
            json!({"username": "nobody", "password": "correct horse battery"}),
        )
        .await;
    for refused in [&wrong, &nobody] {
        assert_eq!(
            (refused.status, &refused.body),
            (
                StatusCode::UNAUTHORIZED,
                &json!({"error": "invalid_credentials"})
            )
        );
    }
    // A form of another site can post text/plain without a preflight:
    // only JSON is read.
    let form = c
        .send(
            c.http
                .post(format!("{}/login", c.base))
                .header("content-type", "text/plain")
                .body(ada.to_string()),
        )
        .await;
    assert_eq!(
        (form.status, form.body),
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            json!({"error": "unsupported_media_type"})
        )
    );
    let pair = c.post("/login", ada.clone()).await;
    assert_eq!(pair.status, StatusCode::OK, "{}", pair.body);
    assert_eq!(pair.headers["cache-control"], "no-store");
    assert!(
        pair.headers.get(SET_COOKIE).is_none(),
        "a bearer client gets no cookie"
    );
    let access = text(&pair.body["access_token"]);

    // The protected route.
    let me = c.get("/me", Some(access)).await;
    assert_eq!(
        (me.status, me.body),
        (StatusCode::OK, json!("hello, ada\n"))
    );
    let anonymous = c.get("/me", None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.headers[WWW_AUTHENTICATE], "Bearer");

    // Refresh rotates; the old refresh token, presented again, ends the
    // session.
    let first = text(&pair.body["refresh_token"]);
    let next = c
        .post("/token/refresh", json!({"refresh_token": first}))
        .await;
    assert_eq!(next.status, StatusCode::OK, "{}", next.body);
    let reused = c
        .post("/token/refresh", json!({"refresh_token": first}))
        .await;
    assert_eq!(reused.status, StatusCode::UNAUTHORIZED);
    let after_reuse = c
        .post(
            "/token/refresh",
            json!({"refresh_token": next.body["refresh_token"]}),
        )
        .await;
    assert_eq!(
        after_reuse.status,
        StatusCode::UNAUTHORIZED,
        "the family ended"
    );

    // Log out.
    let pair = c.post("/login", ada.clone()).await;
    let refresh = pair.body["refresh_token"].clone();
    let out = c.post("/logout", json!({"refresh_token": refresh})).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let gone = c
        .post("/token/refresh", json!({"refresh_token": refresh}))
        .await;
    assert_eq!(gone.status, StatusCode::UNAUTHORIZED);

    // An imported Django hash logs in and is upgraded in the table.
    assert!(users.create("grace", DJANGO_HASH).await.unwrap());
    let grace = json!({"username": "grace", "password": "correct horse battery staple"});
    assert_eq!(c.post("/login", grace.clone()).await.status, StatusCode::OK);
    let upgraded = users.find("grace").await.unwrap().unwrap();
    assert_ne!(upgraded, DJANGO_HASH);
    let verified = kw
        .passwords()
        .verify(
            "user",
            &keyward::Password::from("correct horse battery staple"),
            &upgraded,
        )
        .unwrap();
    assert!(
        verified.rehash().is_none(),
        "upgraded to the current policy"
    );
    assert_eq!(c.post("/login", grace).await.status, StatusCode::OK);

    // Log in with an e-mailed code; a code is sent to users only.
    let sent = c.post("/otp/send", json!({"username": "ada"})).await;
    assert_eq!(sent.status, StatusCode::ACCEPTED);
    let stranger = c.post("/otp/send", json!({"username": "stranger"})).await;
    assert_eq!(
        stranger.status,
        StatusCode::ACCEPTED,
        "the answer tells nothing"
    );
    let code = loop {
        if let Some((_, code)) = codes.lock().unwrap().first() {
            break code.clone();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let wrong_code = c
        .post("/otp/verify", json!({"username": "ada", "code": "000000x"}))
        .await;
    assert_eq!(wrong_code.status, StatusCode::UNAUTHORIZED);
    let by_code = c
        .post("/otp/verify", json!({"username": "ada", "code": code}))
        .await;
    assert_eq!(by_code.status, StatusCode::OK, "{}", by_code.body);
    let access = text(&by_code.body["access_token"]).to_owned();
    assert_eq!(
        codes
            .lock()
            .unwrap()
            .iter()
            .map(|(to, _)| to.as_str())
            .collect::<Vec<_>>(),
        ["ada"],
        "nothing was sent for a name without a user"
    );

    // API keys: create, authenticate, list, revoke.
    let made = c
        .send(
            c.http
                .post(format!("{}/api-keys", c.base))
                .bearer_auth(&access)
                .json(&json!({"name": "ci", "scopes": ["reports:read"]})),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let key = text(&made.body["key"]).to_owned();
    let id = text(&made.body["id"]).to_owned();
    let reports = c
        .send(
            c.http
                .get(format!("{}/reports", c.base))
                .header("x-api-key", &key),
        )
        .await;
    assert_eq!(
        (reports.status, reports.body),
        (StatusCode::OK, json!("the reports of ada\n"))
    );
    let listed = c.get("/api-keys", Some(&access)).await;
    assert_eq!(listed.body["keys"][0]["id"], json!(id));
    assert!(
        !listed.body.to_string().contains(&key),
        "a list never shows a key"
    );
    let by_key = c.get("/api-keys", Some(&key)).await;
    assert_eq!(
        by_key.status,
        StatusCode::UNAUTHORIZED,
        "a key manages no keys"
    );
    let revoked = c
        .send(
            c.http
                .delete(format!("{}/api-keys/{id}", c.base))
                .bearer_auth(&access),
        )
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    let refused = c
        .send(c.http.get(format!("{}/reports", c.base)).bearer_auth(&key))
        .await;
    assert_eq!(
        (refused.status, refused.body),
        (StatusCode::UNAUTHORIZED, json!({"error": "revoked"}))
    );
}

/// The router with refresh cookies, over the example's user table.
async fn cookie_service(dir: &tempfile::TempDir) -> Client {
    let auth = AuthRoutes::new(users(dir).await)
        .refresh_cookie(RefreshCookie::at("/token").unwrap())
        .router();
    Client {
        base: serve(Router::new().merge(auth).with_state(keyward())).await,
        http: reqwest::Client::new(),
    }
}

/// The cookie a `Set-Cookie` sets, as `name=value`, and its attributes.
fn set_cookie(a: &Answer) -> (String, String) {
    let line = a.headers[SET_COOKIE].to_str().unwrap();
    let (pair, attributes) = line.split_once("; ").unwrap();
    (pair.to_owned(), attributes.to_owned())
}

#[tokio::test]
async fn a_browser_keeps_its_refresh_token_in_a_strict_cookie_behind_the_csrf_header() {
    let dir = tempfile::tempdir().unwrap();
    let c = cookie_service(&dir).await;
    let ada = json!({"username": "ada", "password": "correct horse battery"});
    assert_eq!(
        c.post("/register", ada.clone()).await.status,
        StatusCode::CREATED
    );
    let browser = |req: reqwest::RequestBuilder| req.header(CSRF_HEADER, "1");

    // A browser login: the refresh token in the cookie only.
    let login = c
        .send(browser(c.http.post(format!("{}/login", c.base))).json(&ada))
        .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.body);
    assert!(login.body.get("refresh_token").is_none(), "{}", login.body);
    assert!(login.body["access_token"].is_string());
    let (cookie, attributes) = set_cookie(&login);
    assert!(
        cookie.starts_with("__Secure-keyward-refresh=kwr"),
        "{cookie}"
    );
    for attribute in ["Path=/token", "HttpOnly", "Secure", "SameSite=Strict"] {
        assert!(
            attributes.split("; ").any(|a| a == attribute),
            "{attributes}"
        );
    }

    // The cookie is read only with the CSRF header.
    let refresh = format!("{}/token/refresh", c.base);
    let forged = c
        .send(c.http.post(&refresh).header("cookie", &cookie))
        .await;
    assert_eq!(
        (forged.status, forged.body),
        (StatusCode::UNAUTHORIZED, json!({"error": "missing_token"}))
    );
    let empty_header = c
        .send(
            c.http
                .post(&refresh)
                .header("cookie", &cookie)
                .header(CSRF_HEADER, ""),
        )
        .await;
    assert_eq!(empty_header.status, StatusCode::UNAUTHORIZED);
    let rotated = c
        .send(browser(c.http.post(&refresh)).header("cookie", &cookie))
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    assert!(rotated.body.get("refresh_token").is_none());
    let (next, _) = set_cookie(&rotated);
    assert_ne!(next, cookie, "rotated");

    // The old cookie again is a reuse: the session ends.
    let reused = c
        .send(browser(c.http.post(&refresh)).header("cookie", &cookie))
        .await;
    assert_eq!(reused.status, StatusCode::UNAUTHORIZED);
    let after = c
        .send(browser(c.http.post(&refresh)).header("cookie", &next))
        .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);

    // Log out: the session ends and the cookie is cleared.
    let login = c
        .send(browser(c.http.post(format!("{}/login", c.base))).json(&ada))
        .await;
    let (cookie, _) = set_cookie(&login);
    let revoke = format!("{}/token/revoke", c.base);
    let unguarded = c.send(c.http.post(&revoke).header("cookie", &cookie)).await;
    assert_eq!(
        unguarded.status,
        StatusCode::UNAUTHORIZED,
        "no CSRF header, no logout"
    );
    let out = c
        .send(browser(c.http.post(&revoke)).header("cookie", &cookie))
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    let (cleared, attributes) = set_cookie(&out);
    assert_eq!(cleared, "__Secure-keyward-refresh=");
    assert!(attributes.contains("Max-Age=0"), "{attributes}");
    let ended = c
        .send(browser(c.http.post(&refresh)).header("cookie", &cookie))
        .await;
    assert_eq!(ended.status, StatusCode::UNAUTHORIZED);

    // A bearer client on the same router is unaffected.
    let bearer = c.post("/login", ada).await;
    assert!(bearer.body["refresh_token"].is_string());
    assert!(bearer.headers.get(SET_COOKIE).is_none());
}

#[test]
fn a_cookie_path_that_would_break_the_header_is_refused() {
    for path in ["token", "/a;b", "/a b", ""] {
        assert!(
            matches!(
                RefreshCookie::at(path),
                Err(keyward::Error::InvalidInput(_))
            ),
            "{path:?}"
        );
    }
    assert!(RefreshCookie::at("/auth/token").is_ok());
}

#[tokio::test]
async fn the_limit_layer_counts_each_client_and_answers_429_with_retry_after() {
    const TWO: Limit = Limit::new("layer_test", 2, Duration::from_secs(60));
    let kw = keyward();
    let by_client = Router::new()
        .route("/search", get(|| async { "results" }))
        .layer(LimitLayer::new(kw.clone(), TWO).client_addr(ClientAddr::behind_proxies(1)));
    let by_tenant = Router::new()
        .route("/tenant", get(|| async { "tenant" }))
        .layer(LimitLayer::new(kw.clone(), TWO).by(|req| {
            req.headers()
                .get("x-tenant")
                .and_then(|v| v.to_str().ok())
                .map(|t| format!("tenant:{t}"))
        }));
    let c = Client {
        base: serve(by_client.merge(by_tenant)).await,
        http: reqwest::Client::new(),
    };
    let search = |from: &'static str| {
        c.send(
            c.http
                .get(format!("{}/search", c.base))
                .header("x-forwarded-for", from),
        )
    };
    for _ in 0..2 {
        assert_eq!(search("198.51.100.7").await.status, StatusCode::OK);
    }
    let refused = search("198.51.100.7").await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.body, json!({"error": "rate_limited"}));
    let wait: u64 = refused.headers[RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&wait), "{wait}");
    // Another client has its own budget; an address the client wrote
    // left of the trusted hop changes nothing.
    assert_eq!(search("203.0.113.1").await.status, StatusCode::OK);
    assert_eq!(
        search("203.0.113.1, 198.51.100.7").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    // IPv6 clients count by their /64.
    for _ in 0..2 {
        assert_eq!(search("2001:db8::1").await.status, StatusCode::OK);
    }
    assert_eq!(
        search("2001:db8::2").await.status,
        StatusCode::TOO_MANY_REQUESTS
    );

    // By a function of the request; without a key, uncounted.
    let tenant = |t: Option<&'static str>| {
        let mut req = c.http.get(format!("{}/tenant", c.base));
        if let Some(t) = t {
            req = req.header("x-tenant", t);
        }
        c.send(req)
    };
    for _ in 0..2 {
        assert_eq!(tenant(Some("acme")).await.status, StatusCode::OK);
    }
    assert_eq!(
        tenant(Some("acme")).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(tenant(Some("globex")).await.status, StatusCode::OK);
    for _ in 0..3 {
        assert_eq!(tenant(None).await.status, StatusCode::OK);
    }
}

#[tokio::test]
async fn the_limit_layer_fails_closed_without_a_store() {
    const ONE: Limit = Limit::new("closed", 1, Duration::from_secs(60));
    // No store: keyward can't count, so the layer refuses.
    let kw = Keyward::builder()
        .keys(KeyRing::generate(JwtAlg::EdDSA).unwrap())
        .build()
        .unwrap();
    let app = Router::new()
        .route("/x", get(|| async { "x" }))
        .layer(LimitLayer::new(kw, ONE));
    let c = Client {
        base: serve(app).await,
        http: reqwest::Client::new(),
    };
    let refused = c.get("/x", None).await;
    assert!(refused.status.is_server_error(), "{}", refused.status);
    assert_eq!(refused.body["error"], json!("server_error"));
}
