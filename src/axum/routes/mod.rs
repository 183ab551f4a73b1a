//! keyward's ready auth router: see [`AuthRoutes`].

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ::axum::extract::{FromRef, FromRequestParts};
use ::axum::http::request::Parts;
use ::axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use ::axum::response::{IntoResponse, Response};
use ::axum::routing::{delete, get, post};
use ::axum::{Extension, Router};
use serde::de::DeserializeOwned;
use serde_json::json;

use super::{ClientAddr, LoginGate};
use crate::Keyward;
use crate::error::Error;
use crate::limit::{CODE_VERIFY_PER_SOURCE, LOGIN_PER_ACCOUNT, LOGIN_PER_SOURCE, Limit};

mod account;
mod login;

pub use account::MAX_ROLL_OVERLAP_SECS;
pub use login::device_meta;

/// An error of the application's user table, logged and answered 503.
pub type DirectoryError = Box<dyn std::error::Error + Send + Sync>;

/// The application's user table, as the router needs it: the login name is
/// the subject of keyward's records (sessions, codes, keys).
///
/// Implement the methods with `async fn`. A name the router passes has 1
/// to 64 characters from `A–Z a–z 0–9 _ . @ -`.
pub trait UserDirectory: Send + Sync + 'static {
    /// The stored password hash of `login`, or `None` when there is no such
    /// user.
    fn find(
        &self,
        login: &str,
    ) -> impl Future<Output = Result<Option<String>, DirectoryError>> + Send;

    /// Creates `login` with `hash`; `false` when the name is taken.
    fn create(
        &self,
        login: &str,
        hash: &str,
    ) -> impl Future<Output = Result<bool, DirectoryError>> + Send;

    /// Replaces `login`'s hash with `new` only if it is still `old` (for
    /// SQL: `UPDATE … SET hash = $new WHERE login = $login AND hash =
    /// $old`), so that a password changed meanwhile is never overwritten
    /// by the upgrade of the old one; `false` when it was not replaced.
    fn update_hash(
        &self,
        login: &str,
        old: &str,
        new: &str,
    ) -> impl Future<Output = Result<bool, DirectoryError>> + Send;

    /// Deletes `login`, after keyward has erased everything it held for
    /// them; `false` when there was no such user.
    fn delete(&self, login: &str) -> impl Future<Output = Result<bool, DirectoryError>> + Send;
}

/// Delivers one-time codes (an e-mail, a text message). Called off the
/// request path, on a blocking thread, and only for a name the directory
/// knows: it may block and take its time. A closure `Fn(&str, &str)` of
/// the login name and the code is one.
pub trait CodeSender: Send + Sync + 'static {
    /// Delivers `code` to the user `login`.
    fn send_code(&self, login: &str, code: &str);
}

impl<F: Fn(&str, &str) + Send + Sync + 'static> CodeSender for F {
    fn send_code(&self, login: &str, code: &str) {
        self(login, code);
    }
}

/// Code requests per source address: a burst of 10, then 10 a minute.
/// keyward limits code sends per subject (one a minute); this bounds one
/// source asking codes for many names, each a mail or a text someone pays
/// for (OWASP Forgot Password cheat sheet: limit code requests).
pub const CODE_SEND_PER_SOURCE: Limit = Limit::new("code_send_source", 10, Duration::from_secs(60));

/// The rate limits the router takes from, all kept in keyward's store:
/// each allowed request is one compare-and-swap on the store, so the
/// counts are exact for all the replicas that share it, and a restart
/// forgets nothing. A check the store cannot answer refuses the request
/// (503): these limits fail closed.
///
/// | route | per source address | per account |
/// |---|---|---|
/// | `/login`, `/register` | `login_per_source` | `login_per_account` |
/// | `/otp/send` | `code_send_per_source` | keyward's code-send limit |
/// | `/otp/verify`, `/login/mfa` | `code_verify_per_source` | keyward's lockout |
///
/// `/login` and `/register` take from the same two limits, so spreading
/// password attempts over the two routes gains nothing. A code is checked
/// against its subject's lockout (3 wrong codes), which no rate adds to;
/// the per-source limit bounds one source guessing across many names.
#[derive(Debug, Clone)]
pub struct RateLimits {
    /// Password attempts per source address
    /// ([`LOGIN_PER_SOURCE`]: 10 at once, then 10 a minute).
    pub login_per_source: Limit,
    /// Password attempts per account name, from any source
    /// ([`LOGIN_PER_ACCOUNT`]: 10 at once, then 10 a minute).
    pub login_per_account: Limit,
    /// Code requests per source address ([`CODE_SEND_PER_SOURCE`]).
    pub code_send_per_source: Limit,
    /// Code checks per source address
    /// ([`CODE_VERIFY_PER_SOURCE`]: 10 at once, then 10 a minute).
    pub code_verify_per_source: Limit,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            login_per_source: LOGIN_PER_SOURCE,
            login_per_account: LOGIN_PER_ACCOUNT,
            code_send_per_source: CODE_SEND_PER_SOURCE,
            code_verify_per_source: CODE_VERIFY_PER_SOURCE,
        }
    }
}

/// The header a browser client sends with every request to the router
/// (any non-empty value) to have its refresh token kept in a cookie; see
/// the [`AuthRoutes`] docs.
pub const CSRF_HEADER: HeaderName = HeaderName::from_static("x-keyward-csrf");

/// The refresh cookie for browser clients: `HttpOnly`, `Secure`,
/// `SameSite=Strict`, scoped to the path of the token routes.
#[derive(Debug, Clone)]
pub struct RefreshCookie {
    name: String,
    path: String,
}

impl RefreshCookie {
    /// The cookie `__Secure-keyward-refresh` on the path `path`: where
    /// `/token/refresh` and `/token/revoke` are served, `/token` when the
    /// router is not nested, `/auth/token` under `nest("/auth", …)`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a path that does not start with `/` or
    /// holds a character a cookie attribute cannot.
    pub fn at(path: &str) -> Result<Self, Error> {
        let fits = path.starts_with('/')
            && path.len() <= 256
            && path.bytes().all(|b| b.is_ascii_graphic() && b != b';');
        if !fits {
            return Err(Error::InvalidInput(
                "a refresh cookie's path starts with / and holds no ; or space".into(),
            ));
        }
        Ok(Self {
            name: "__Secure-keyward-refresh".to_owned(),
            path: path.to_owned(),
        })
    }

    /// `Set-Cookie` for `value`, kept `max_age` seconds; an empty value
    /// with 0 clears it.
    fn header(&self, value: &str, max_age: u64) -> Option<HeaderValue> {
        HeaderValue::from_str(&format!(
            "{}={value}; Path={}; Max-Age={max_age}; HttpOnly; Secure; SameSite=Strict",
            self.name, self.path
        ))
        .ok()
    }

    /// The cookie's value in the request, if it is there.
    fn read<'h>(&self, headers: &'h HeaderMap) -> Option<&'h str> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|line| line.split(';'))
            .find_map(|pair| {
                let (name, value) = pair.trim().split_once('=')?;
                (name == self.name).then_some(value)
            })
    }
}

/// A ready [`Router`] with the standard endpoints (see [`AuthRoutes`])
/// over `users`, with the defaults of [`AuthRoutes::new`]. It takes
/// [`Keyward`] from the state, directly or through [`FromRef`].
///
/// ```no_run
/// # async fn run(kw: keyward::Keyward, users: impl keyward::axum::UserDirectory) {
/// let app = axum::Router::new()
///     .merge(keyward::axum::routes(users))
///     .with_state(kw);
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await.unwrap();
/// axum::serve(
///     listener,
///     app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
/// )
/// .await
/// .unwrap();
/// # }
/// ```
pub fn routes<S, U>(users: U) -> Router<S>
where
    U: UserDirectory,
    Keyward: FromRef<S>,
    S: Clone + Send + Sync + 'static,
{
    AuthRoutes::new(users).router()
}

/// A ready auth router: the standard endpoints of an auth backend over the
/// application's own user table, which it reaches through
/// [`UserDirectory`].
///
/// | route | does |
/// |---|---|
/// | `POST /register` `{"username", "password"}` | 201; 409 `user_exists` |
/// | `POST /login` `{"username", "password"}` | a token pair, or an MFA challenge for a user with a second factor; a hash in an old scheme or with old parameters is upgraded through [`UserDirectory::update_hash`] |
/// | `POST /login/mfa` `{"mfa_token", "code" \| "recovery_code"}` | a token pair |
/// | `POST /token/refresh` `{"refresh_token"}` | the next token pair (reuse of an old refresh token ends the session) |
/// | `POST /logout` `{"refresh_token"}` | 204, the session ended |
/// | `POST /token/revoke` | 204, the session of the refresh cookie ended (browser clients) |
/// | `POST /logout-all` (access token) | 204, every session of the user ended |
/// | `POST /otp/send` `{"username"}`, `POST /otp/verify` `{"username", "code"}` | e-mailed one-time codes, with [`AuthRoutes::codes`] |
/// | `GET /totp`, `POST /totp/enroll`, `POST /totp/confirm`, `POST /totp/recovery`, `DELETE /totp` | the second factor |
/// | `POST /api-keys`, `GET /api-keys`, `POST /api-keys/{id}/roll`, `DELETE /api-keys/{id}` | the user's API keys |
/// | `GET /sessions`, `DELETE /sessions/{id}` | the user's sessions ("your devices") |
/// | `DELETE /account` | erases the user from keyward, then from the directory |
/// | `GET /.well-known/jwks.json` | the public keys of the access tokens |
///
/// A token pair is the token response of RFC 6749 §5.1:
/// `{"access_token", "token_type": "Bearer", "expires_in", "refresh_token"}`,
/// without `refresh_token` for a browser client, whose refresh token is in
/// its cookie.
///
/// The routes that manage an account take an access token, checked
/// against its session (a logged-out session manages nothing), never an
/// API key. Token answers are `Cache-Control: no-store`. Error answers
/// are JSON with a stable `error` code and never echo a secret.
///
/// **Limits and load shedding.** `/login` and `/register` take from a
/// per-source and a per-account rate limit, the code routes from
/// per-source ones ([`RateLimits`]); the counts live in keyward's store,
/// so replicas sharing it share them, and a store that cannot be asked
/// refuses the request (503). Password work passes a [`LoginGate`] that
/// answers 429 with `Retry-After` when the hashing queue is full and
/// lets a client that comes back after that wait go first; with
/// [`AuthRoutes::hashing`] it runs on a runtime of its own at a lower
/// priority ([`hashing_runtime`]), so that a login flood does not slow
/// the requests that never hash.
///
/// **Browser clients** (with [`AuthRoutes::refresh_cookie`]): a request
/// that carries the [`CSRF_HEADER`] gets its refresh token in an
/// `HttpOnly`, `Secure`, `SameSite=Strict` cookie scoped to the token
/// routes instead of the body, and `/token/refresh` and `/token/revoke`
/// read that cookie only from a request that carries the header. A page
/// of another site cannot send the header (not without a CORS preflight
/// the router never approves), nor the cookie (`SameSite=Strict`).
/// Requests without the header are answered as before: bearer clients
/// are unaffected. A CORS layer in front of the router must not allow
/// this header, nor credentials, for other origins: that would undo the
/// protection.
///
/// [`router`](Self::router) builds it; [`routes`] is the router with the
/// defaults.
///
/// [`LoginGate`]: super::LoginGate
/// [`hashing_runtime`]: super::hashing_runtime
pub struct AuthRoutes<U> {
    users: U,
    codes: Option<Arc<dyn CodeSender>>,
    client: ClientAddr,
    limits: RateLimits,
    hashing: Option<tokio::runtime::Handle>,
    cookie: Option<RefreshCookie>,
    totp_issuer: String,
    totp_picture: Option<fn(&str) -> Option<String>>,
}

impl<U: UserDirectory> AuthRoutes<U> {
    /// The routes over `users`: no code routes, the socket's peer as the
    /// client address, the default [`RateLimits`], password work on the
    /// serving runtime's blocking pool, no refresh cookie, and `keyward`
    /// as the issuer an authenticator app shows.
    #[must_use]
    pub fn new(users: U) -> Self {
        Self {
            users,
            codes: None,
            client: ClientAddr::socket(),
            limits: RateLimits::default(),
            hashing: None,
            cookie: None,
            totp_issuer: "keyward".to_owned(),
            totp_picture: None,
        }
    }

    /// Serves `/otp/send` and `/otp/verify`, with codes delivered by
    /// `sender`.
    #[must_use]
    pub fn codes(mut self, sender: impl CodeSender) -> Self {
        self.codes = Some(Arc::new(sender));
        self
    }

    /// How the client address is found, for the rate limits and the login
    /// gate.
    #[must_use]
    pub fn client_addr(mut self, client: ClientAddr) -> Self {
        self.client = client;
        self
    }

    /// Takes from `limits` instead of the defaults.
    #[must_use]
    pub fn limits(mut self, limits: RateLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Runs password work on `hashing` (see
    /// [`hashing_runtime`](super::hashing_runtime)). keyward's cap on
    /// concurrent hashing holds either way.
    #[must_use]
    pub fn hashing(mut self, hashing: tokio::runtime::Handle) -> Self {
        self.hashing = Some(hashing);
        self
    }

    /// Keeps the refresh token of browser clients in `cookie`.
    #[must_use]
    pub fn refresh_cookie(mut self, cookie: RefreshCookie) -> Self {
        self.cookie = Some(cookie);
        self
    }

    /// The issuer an authenticator app shows beside the account name.
    #[must_use]
    pub fn totp_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.totp_issuer = issuer.into();
        self
    }

    /// Adds a picture of the enrollment URI to `POST /totp/enroll`'s
    /// answer, as `qr_svg`: `picture` draws the `otpauth://` URI as a QR
    /// code in SVG (`None` when it cannot).
    #[must_use]
    pub fn totp_qr_svg(mut self, picture: fn(&str) -> Option<String>) -> Self {
        self.totp_picture = Some(picture);
        self
    }

    /// The router.
    pub fn router<S>(self) -> Router<S>
    where
        Keyward: FromRef<S>,
        S: Clone + Send + Sync + 'static,
    {
        let with_codes = self.codes.is_some();
        let shared = Arc::new(Shared {
            users: Arc::new(self.users),
            codes: self.codes,
            client: self.client,
            limits: self.limits,
            hashing: self.hashing,
            cookie: self.cookie,
            totp_issuer: self.totp_issuer,
            totp_picture: self.totp_picture,
            gate: OnceLock::new(),
            outgoing: OnceLock::new(),
        });
        let mut router = Router::new()
            .route("/register", post(login::register::<U>))
            .route("/login", post(login::login::<U>))
            .route("/login/mfa", post(login::login_mfa::<U>))
            .route("/token/refresh", post(login::refresh::<U>))
            .route("/token/revoke", post(login::revoke_cookie::<U>))
            .route("/logout", post(login::logout::<U>))
            .route("/logout-all", post(login::logout_all::<U>))
            .route(
                "/api-keys",
                post(account::create_key::<U>).get(account::list_keys::<U>),
            )
            .route("/api-keys/{id}", delete(account::revoke_key::<U>))
            .route("/api-keys/{id}/roll", post(account::roll_key::<U>))
            .route("/sessions", get(account::list_sessions::<U>))
            .route("/sessions/{id}", delete(account::revoke_session::<U>))
            .route("/account", delete(account::delete_account::<U>))
            .route(
                "/totp",
                get(account::totp_status::<U>).delete(account::totp_disable::<U>),
            )
            .route("/totp/enroll", post(account::totp_enroll::<U>))
            .route("/totp/confirm", post(account::totp_confirm::<U>))
            .route("/totp/recovery", post(account::totp_regenerate::<U>))
            .route("/.well-known/jwks.json", get(account::jwks::<U>));
        if with_codes {
            router = router
                .route("/otp/send", post(login::otp_send::<U>))
                .route("/otp/verify", post(login::otp_verify::<U>));
        }
        router.layer(Extension(shared))
    }
}

/// What the handlers share, behind an `Arc` in the request's extensions.
struct Shared<U> {
    users: Arc<U>,
    codes: Option<Arc<dyn CodeSender>>,
    client: ClientAddr,
    limits: RateLimits,
    hashing: Option<tokio::runtime::Handle>,
    cookie: Option<RefreshCookie>,
    totp_issuer: String,
    totp_picture: Option<fn(&str) -> Option<String>>,
    /// Made at the first login, sized to the password policy's cap.
    gate: OnceLock<LoginGate>,
    /// Started at the first code, on the serving runtime.
    outgoing: OnceLock<Outgoing>,
}

/// Everything a handler needs: keyward from the state, the router's own
/// settings, and the request's client address.
struct App<U> {
    kw: Keyward,
    shared: Arc<Shared<U>>,
    source: IpAddr,
}

impl<S, U> FromRequestParts<S> for App<U>
where
    Keyward: FromRef<S>,
    S: Send + Sync,
    U: UserDirectory,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let Some(shared) = parts.extensions.get::<Arc<Shared<U>>>().cloned() else {
            return Err(unavailable("router", &"the router's settings are missing"));
        };
        let source = shared.client.source_of(parts).unwrap_or_else(|| {
            static WARNED: std::sync::atomic::AtomicBool =
                std::sync::atomic::AtomicBool::new(false);
            if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                tracing::warn!(
                    "no client address: serve with into_make_service_with_connect_info::<SocketAddr>(); until then every client shares one rate-limit budget (logged once)"
                );
            }
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        });
        Ok(Self {
            kw: Keyward::from_ref(state),
            shared,
            source,
        })
    }
}

impl<U: UserDirectory> App<U> {
    fn users(&self) -> &U {
        &self.shared.users
    }

    fn gate(&self) -> &LoginGate {
        self.shared
            .gate
            .get_or_init(|| LoginGate::new(self.kw.passwords().policy().max_in_flight))
    }

    /// Runs `work` (a keyward password call) on the hashing runtime, if
    /// there is one. keyward's cap on concurrent hashing holds either way.
    async fn password_work<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T, Error>> + Send + 'static,
    ) -> Result<T, Error> {
        let Some(hashing) = &self.shared.hashing else {
            return work.await;
        };
        match hashing.spawn(work).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // The hashing runtime is shutting down.
            Err(_) => Err(Error::Busy),
        }
    }

    /// Takes one unit of `limit` for `key` from the limits in keyward's
    /// store. `Err` is the answer to send instead: 429 with `Retry-After`
    /// when over the limit (the same answer whichever limit refused, and
    /// whether or not the name has an account), 429 after lost races on
    /// the record, and 503 when the store cannot be asked: the limits fail
    /// closed, so a request is never let through uncounted.
    async fn take(&self, limit: &Limit, key: &str) -> Result<(), Response> {
        let limits = self
            .kw
            .limits()
            .map_err(|e| unavailable("rate limits", &e))?;
        match limits.check(limit, key).await {
            Ok(_) => Ok(()),
            Err(Error::RateLimited { retry_after }) => Err(rate_limited(retry_after)),
            Err(Error::Busy) => Err(too_many(1)),
            Err(e) => Err(unavailable("rate limit check", &e)),
        }
    }

    /// [`take`](Self::take) for two limits at once, in one commit: both
    /// counted, or neither.
    async fn take_both(
        &self,
        first: (&Limit, &str),
        second: (&Limit, &str),
    ) -> Result<(), Response> {
        let limits = self
            .kw
            .limits()
            .map_err(|e| unavailable("rate limits", &e))?;
        match limits.check_both(first, second).await {
            Ok(_) => Ok(()),
            Err(Error::RateLimited { retry_after }) => Err(rate_limited(retry_after)),
            Err(Error::Busy) => Err(too_many(1)),
            Err(e) => Err(unavailable("rate limit check", &e)),
        }
    }

    /// One code check (a one-time code, a TOTP code or a recovery code)
    /// from the request's source: per source only, since per name the
    /// subject's lockout (3 wrong codes of any kind) is the limit.
    async fn take_code_check(&self) -> Result<(), Response> {
        let limit = &self.shared.limits.code_verify_per_source;
        self.take(limit, &self.source.to_string()).await
    }

    /// Whether `login` has a confirmed second factor, so that a login must
    /// pass it too.
    async fn has_second_factor(&self, login: &str) -> Result<bool, Response> {
        let totp = self.kw.totp().map_err(|e| unavailable("totp", &e))?;
        totp.is_enrolled(login)
            .await
            .map_err(|e| unavailable("totp lookup", &e))
    }
}

/// A code for `login`, to send if it names a user.
struct Delivery {
    login: String,
    code: crate::otp::OtpCode,
}

/// Codes waiting to be sent.
const CODE_QUEUE: usize = 1_024;

/// The way from `/otp/send` to the [`CodeSender`].
///
/// `/otp/send` issues a code for every well-formed name, whether or not
/// it names a user, and hands it here. A background task looks the name
/// up and sends the code only to a real user; a code for a name without
/// one is dropped unseen (it still counts wrong guesses, so `/otp/verify`
/// answers alike). The request never waits for the lookup or the send, so
/// neither can show in its answer or its timing.
struct Outgoing {
    queue: tokio::sync::mpsc::Sender<Delivery>,
}

impl Outgoing {
    /// Starts the delivery task on the current Tokio runtime.
    fn start<U: UserDirectory>(users: Arc<U>, sender: Arc<dyn CodeSender>) -> Self {
        let (queue, mut pending) = tokio::sync::mpsc::channel::<Delivery>(CODE_QUEUE);
        tokio::spawn(async move {
            while let Some(d) = pending.recv().await {
                match users.find(&d.login).await {
                    Ok(Some(_)) => {
                        let sender = Arc::clone(&sender);
                        let sent = tokio::task::spawn_blocking(move || {
                            sender.send_code(&d.login, d.code.unprotected_as_str());
                        })
                        .await;
                        if let Err(e) = sent {
                            tracing::error!(error = %e, "code sender failed");
                        }
                    }
                    // No such user: nobody to send to.
                    Ok(None) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "user lookup for a code failed; code not sent");
                    }
                }
            }
        });
        Self { queue }
    }

    /// Queues `code` for `login`; a full queue drops it (logged): the user
    /// asks again.
    fn send(&self, login: &str, code: crate::otp::OtpCode) {
        let d = Delivery {
            login: login.to_owned(),
            code,
        };
        if self.queue.try_send(d).is_err() {
            tracing::warn!("code queue full or closed; one-time code dropped");
        }
    }
}

// ---- Answers ----

fn error(status: StatusCode, body: serde_json::Value) -> Response {
    let mut r = (status, body.to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn ok_json(body: serde_json::Value) -> Response {
    error(StatusCode::OK, body)
}

fn too_many(retry_after: u64) -> Response {
    let mut r = error(
        StatusCode::TOO_MANY_REQUESTS,
        json!({"error": "too_many_requests", "retry_after": retry_after}),
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after.max(1)));
    r
}

/// The 429 for a rate limit's refusal: `Retry-After` in whole seconds,
/// rounded up, so that a client that waits that long is allowed (the limit
/// counts in milliseconds).
fn rate_limited(retry_after: Duration) -> Response {
    let secs = u64::try_from(retry_after.as_millis().div_ceil(1_000)).unwrap_or(u64::MAX);
    too_many(secs.max(1))
}

fn unavailable(what: &str, e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "{what} failed");
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        json!({"error": "unavailable"}),
    )
}

fn bad_request() -> Response {
    error(StatusCode::BAD_REQUEST, json!({"error": "bad_request"}))
}

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, json!({"error": "not_found"}))
}

fn invalid_token() -> Response {
    error(StatusCode::UNAUTHORIZED, json!({"error": "invalid_token"}))
}

/// An answer that holds a secret (a token, a key, a code): never cached on
/// the way (RFC 6749 §5.1).
fn no_store(status: StatusCode, body: serde_json::Value) -> Response {
    let mut r = error(status, body);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Why a request's body was not taken.
enum BadBody {
    /// Not sent as `application/json`: a form of another site can post
    /// `text/plain` without a CORS preflight, never JSON.
    NotJson,
    /// Not the JSON asked for.
    Malformed,
}

impl BadBody {
    fn answer(self) -> Response {
        match self {
            Self::NotJson => error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                json!({"error": "unsupported_media_type"}),
            ),
            Self::Malformed => bad_request(),
        }
    }
}

/// A JSON body, sent as `application/json` (or a `+json` type, with or
/// without parameters).
fn body<T: DeserializeOwned>(headers: &HeaderMap, bytes: &[u8]) -> Result<T, BadBody> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|essence| essence.trim().to_ascii_lowercase())
        .is_some_and(|t| {
            t == "application/json" || (t.starts_with("application/") && t.ends_with("+json"))
        });
    // An empty body is no JSON whatever its type: a 400.
    if !json && !bytes.is_empty() {
        return Err(BadBody::NotJson);
    }
    serde_json::from_slice(bytes).map_err(|_| BadBody::Malformed)
}

/// Whether `login` could name a user: 1 to 64 characters from
/// `A–Z a–z 0–9 _ . @ -`.
fn valid_login(login: &str) -> bool {
    (1..=64).contains(&login.len())
        && login
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.@-".contains(&b))
}

/// The bearer token of `Authorization`, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

/// Whether the request is a browser client's: it carries the
/// [`CSRF_HEADER`] and the router keeps refresh cookies.
fn browser<'c, U>(app: &'c App<U>, headers: &HeaderMap) -> Option<&'c RefreshCookie> {
    let cookie = app.shared.cookie.as_ref()?;
    headers
        .get(&CSRF_HEADER)
        .is_some_and(|v| !v.is_empty())
        .then_some(cookie)
}
