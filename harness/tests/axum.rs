//! `keyward::axum` through real HTTP: every extractor's accept and reject
//! paths, and every rejection's status, headers and body.
#![cfg(feature = "axum")]
#![allow(clippy::unwrap_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::FromRef;
use axum::routing::get;
use keyward::axum::{ApiKey, Claims, Mfa, Principal, Rejection, StrictClaims};
use keyward::{
    Complete, Error, JwtAlg, KeyRing, KeySpec, Keyward, MemoryStore, OtpError, Password,
    PasswordPolicy, StoreError,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// State with more than keyward in it: the extractors find it by `FromRef`.
#[derive(Clone)]
struct AppState {
    kw: Keyward,
}

impl FromRef<AppState> for Keyward {
    fn from_ref(state: &AppState) -> Self {
        state.kw.clone()
    }
}

fn router(kw: Keyward) -> Router {
    Router::new()
        .route("/claims", get(|Claims(c): Claims| async move { c.sub }))
        .route(
            "/maybe",
            get(|c: Option<Claims>| async move {
                c.map_or_else(|| "anonymous".to_owned(), |Claims(c)| c.sub)
            }),
        )
        .route(
            "/strict",
            get(|StrictClaims(c): StrictClaims| async move { c.sub }),
        )
        .route("/mfa", get(|Mfa(c): Mfa| async move { c.sub }))
        .route(
            "/key",
            get(|ApiKey(k): ApiKey| async move { k.owner().to_owned() }),
        )
        .route(
            "/principal",
            get(|p: Principal| async move {
                match p {
                    Principal::User(c) => format!("user:{}", c.sub),
                    Principal::Key(k) => format!("key:{}", k.owner()),
                }
            }),
        )
        .route(
            "/reports",
            get(|p: Principal| async move {
                p.require_scope("reports:read")?;
                Ok::<_, Rejection>(format!("reports of {}", p.subject()))
            }),
        )
        .route(
            "/fail/{what}",
            get(
                |axum::extract::Path(what): axum::extract::Path<String>| async move {
                    Err::<(), Rejection>(Rejection::from(match what.as_str() {
                        "rate" => Error::RateLimited {
                            retry_after: Duration::from_millis(1_500),
                        },
                        "locked" => Error::Otp(OtpError::Locked {
                            retry_after: Duration::from_secs(60),
                        }),
                        "forever" => Error::Otp(OtpError::LockedUntilUnlock),
                        "busy" => Error::Busy,
                        "down" => Error::Store(StoreError::Unavailable("db".into())),
                        "password" => Error::PasswordTooShort { min_chars: 8 },
                        _ => Error::Config("a secret-looking detail: hunter2".into()),
                    }))
                },
            ),
        )
        .with_state(AppState { kw })
}

struct Reply {
    status: StatusCode,
    challenge: Option<String>,
    retry_after: Option<String>,
    content_type: Option<String>,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }
}

struct Served {
    base: String,
    client: reqwest::Client,
}

impl Served {
    async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = self.client.get(format!("{}{path}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let r = req.send().await.unwrap();
        let header = |name| {
            r.headers()
                .get(name)
                .map(|v: &reqwest::header::HeaderValue| v.to_str().unwrap().to_owned())
        };
        Reply {
            status: r.status(),
            challenge: header(reqwest::header::WWW_AUTHENTICATE),
            retry_after: header(reqwest::header::RETRY_AFTER),
            content_type: header(reqwest::header::CONTENT_TYPE),
            body: r.text().await.unwrap(),
        }
    }

    async fn bearer(&self, path: &str, token: &str) -> Reply {
        self.get(path, &[("authorization", &format!("Bearer {token}"))])
            .await
    }
}

async fn serve(kw: impl Into<Keyward>) -> Served {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let app = router(kw.into());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Served {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
    }
}

fn keyward() -> Keyward<Complete> {
    let mut policy = PasswordPolicy::default();
    policy.iterations = 1_000;
    Keyward::builder()
        .password_policy(policy)
        .keys(KeyRing::generate(JwtAlg::EdDSA).unwrap())
        .issuer("https://auth.example")
        .audience("api")
        .store(MemoryStore::new())
        .build()
        .unwrap()
}

/// A refusal of a credential: 401, `invalid_token` in the challenge, and
/// `code` in the body.
fn invalid_token(r: &Reply, code: &str) {
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    assert_eq!(
        r.challenge.as_deref(),
        Some("Bearer error=\"invalid_token\"")
    );
    assert_eq!(r.content_type.as_deref(), Some("application/json"));
    assert_eq!(r.json(), json!({ "error": code }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_tokens_are_taken_and_refused_as_rfc_6750_says() {
    let kw = keyward();
    let s = serve(kw.clone()).await;
    let sessions = kw.sessions();
    let pw = Password::from("correct horse battery staple");
    let stored = kw.passwords().hash(&pw).unwrap();
    let verified = kw.passwords().verify("ada", &pw, &stored).unwrap();
    let pair = sessions.start(&verified).await.unwrap();
    let token = pair.access.unprotected_as_str();

    // No credential: a bare challenge, no error code (RFC 6750 §3.1).
    let r = s.get("/claims", &[]).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.challenge.as_deref(), Some("Bearer"));
    assert_eq!(r.json(), json!({"error": "missing_token"}));
    // As an Option: none is fine, a bad one is not.
    assert_eq!(s.get("/maybe", &[]).await.body, "anonymous");
    invalid_token(&s.bearer("/maybe", "not.a.jwt").await, "invalid_token");
    assert_eq!(s.bearer("/maybe", token).await.body, "ada");

    // Accepted, with the scheme in any case.
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let r = s
            .get(
                "/claims",
                &[("authorization", &format!("{scheme} {token}"))],
            )
            .await;
        assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "ada"));
    }
    // Another scheme, an empty token, a forged one: invalid_token.
    for value in [
        format!("Basic {token}"),
        "Bearer ".to_owned(),
        "Bearer".to_owned(),
        format!("Bearer {token}x"),
    ] {
        invalid_token(
            &s.get("/claims", &[("authorization", &value)]).await,
            "invalid_token",
        );
    }

    // A revoked session: the stateless check takes the token until it
    // expires, the strict one refuses it at once.
    assert_eq!(s.bearer("/strict", token).await.body, "ada");
    sessions.revoke_all("ada").await.unwrap();
    assert_eq!(s.bearer("/claims", token).await.status, StatusCode::OK);
    invalid_token(&s.bearer("/strict", token).await, "revoked");

    // A step-up route: a password-only session gets RFC 9470's challenge.
    let pair = sessions.start(&verified).await.unwrap();
    let r = s.bearer("/mfa", pair.access.unprotected_as_str()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(
        r.challenge
            .as_deref()
            .unwrap()
            .starts_with("Bearer error=\"insufficient_user_authentication\""),
        "{:?}",
        r.challenge
    );
    assert_eq!(
        r.json(),
        json!({"error": "insufficient_user_authentication"})
    );
    // With a second factor, through.
    let totp = kw.totp();
    let enrollment = totp.enroll("ada", "t", "ada").await.unwrap();
    let codes = totp
        .confirm("ada", &totp.dangerous_code_now(&enrollment).unwrap())
        .await
        .unwrap();
    let second = totp
        .recover("ada", codes.codes()[0].unprotected_as_str())
        .await
        .unwrap();
    let mfa = sessions
        .start_with_second_factor(&verified, second)
        .await
        .unwrap();
    let r = s.bearer("/mfa", mfa.access.unprotected_as_str()).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "ada"));
    // A JWT is a user principal.
    assert_eq!(
        s.bearer("/principal", mfa.access.unprotected_as_str())
            .await
            .body,
        "user:ada"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_come_as_bearer_or_x_api_key_and_scopes_answer_403() {
    let kw = keyward();
    let s = serve(kw.clone()).await;
    let keys = kw.api_keys();
    let plain = keys.create("ada", KeySpec::named("ci")).await.unwrap();
    let plain = plain.key().unprotected_as_str().to_owned();
    let reader = keys
        .create("bob", KeySpec::named("reports").scope("reports:read"))
        .await
        .unwrap();
    let reader = reader.key().unprotected_as_str().to_owned();

    let r = s.bearer("/key", &plain).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "ada"));
    let r = s.get("/key", &[("x-api-key", &plain)]).await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "ada"));
    assert_eq!(s.bearer("/principal", &plain).await.body, "key:ada");
    assert_eq!(
        s.get("/principal", &[("x-api-key", &reader)]).await.body,
        "key:bob"
    );
    // No key at all.
    let r = s.get("/key", &[]).await;
    assert_eq!(
        (r.status, r.challenge.as_deref()),
        (StatusCode::UNAUTHORIZED, Some("Bearer"))
    );
    // A key that is no key, or a revoked one: 401.
    let mut wrong = plain.clone();
    wrong.pop();
    wrong.push(if plain.ends_with('A') { 'B' } else { 'A' });
    let r = s.bearer("/key", &wrong).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    assert_eq!(
        r.challenge.as_deref(),
        Some("Bearer error=\"invalid_token\"")
    );
    let id = keys.verify(&plain).await.unwrap().id().to_owned();
    keys.revoke(&id).await.unwrap();
    invalid_token(&s.get("/key", &[("x-api-key", &plain)]).await, "revoked");

    // The scope: a key without it gets 403 insufficient_scope, naming it.
    let r = s.bearer("/reports", &plain).await;
    let r = if r.status == StatusCode::UNAUTHORIZED {
        // The revoked key is refused first; a fresh key without the scope:
        let other = keys.create("ada", KeySpec::named("ci2")).await.unwrap();
        s.bearer("/reports", other.key().unprotected_as_str()).await
    } else {
        r
    };
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(
        r.challenge.as_deref(),
        Some("Bearer error=\"insufficient_scope\", scope=\"reports:read\"")
    );
    assert_eq!(r.json(), json!({"error": "insufficient_scope"}));
    let r = s.bearer("/reports", &reader).await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (StatusCode::OK, "reports of bob")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_locks_outages_and_operator_errors_are_answered_apart() {
    let s = serve(keyward()).await;
    let cases = [
        (
            "rate",
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            Some("2"),
        ),
        ("locked", StatusCode::LOCKED, "locked", Some("60")),
        ("forever", StatusCode::LOCKED, "locked_until_unlock", None),
        ("busy", StatusCode::SERVICE_UNAVAILABLE, "busy", Some("1")),
        ("down", StatusCode::SERVICE_UNAVAILABLE, "unavailable", None),
        (
            "password",
            StatusCode::BAD_REQUEST,
            "password_too_short",
            None,
        ),
        (
            "config",
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            None,
        ),
    ];
    for (what, status, code, retry) in cases {
        let r = s.get(&format!("/fail/{what}"), &[]).await;
        assert_eq!(r.status, status, "{what}");
        assert_eq!(r.json(), json!({ "error": code }), "{what}");
        assert_eq!(r.retry_after.as_deref(), retry, "{what}");
        // Only a refused credential asks for one.
        assert_eq!(r.challenge, None, "{what}");
        // Nothing of the error's detail reaches the client.
        assert!(
            !r.body.contains("hunter2") && !r.body.contains("db"),
            "{what}"
        );
    }
}

/// A complete keyward as the router's state: the extractors take a
/// `Keyward` from it through `FromRef`, and `LimitLayer` takes it as is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_complete_keyward_serves_as_the_state() {
    use keyward::axum::{ClientAddr, LimitLayer};
    use keyward::limit::Limit;

    let kw = keyward();
    const EVERY: Limit = Limit::new("every", 1_000, Duration::from_secs(60));
    let app: Router = Router::new()
        .route("/claims", get(|Claims(c): Claims| async move { c.sub }))
        .route(
            "/key",
            get(|ApiKey(k): ApiKey| async move { k.owner().to_owned() }),
        )
        .layer(LimitLayer::new(kw.clone(), EVERY).client_addr(ClientAddr::behind_proxies(1)))
        .with_state(kw.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap()
    });
    let s = Served {
        base: format!("http://{addr}"),
        client: reqwest::Client::new(),
    };

    let pair = kw
        .sessions()
        .dangerous_start_without_proof("ada")
        .await
        .unwrap();
    let r = s
        .get(
            "/claims",
            &[
                (
                    "authorization",
                    &format!("Bearer {}", pair.access.unprotected_as_str()),
                ),
                ("x-forwarded-for", "203.0.113.7"),
            ],
        )
        .await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "ada"));
    let key = kw
        .api_keys()
        .create("bob", KeySpec::named("ci"))
        .await
        .unwrap();
    let r = s
        .get(
            "/key",
            &[
                ("x-api-key", key.key().unprotected_as_str()),
                ("x-forwarded-for", "203.0.113.7"),
            ],
        )
        .await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "bob"));
    let r = s
        .get("/claims", &[("x-forwarded-for", "203.0.113.7")])
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}
