//! The routes that start, carry on and end sessions: register, log in
//! (with a password, an e-mailed code, a second factor), refresh and log
//! out.

use ::axum::body::Bytes;
use ::axum::http::{HeaderMap, StatusCode, header};
use ::axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::{
    App, BadBody, UserDirectory, bad_request, body, browser, error, no_store, too_many,
    unavailable, valid_login,
};
use crate::Password;
use crate::error::{Error, OtpError, SessionError, TotpError};
use crate::otp::Purpose;
use crate::password::Verified;
use crate::session::{MAX_META_LEN, MFA_CHALLENGE_TTL_SECS, MfaChallenge, TokenPair};

#[derive(Deserialize)]
struct Credentials {
    username: String,
    password: String,
}

#[derive(Deserialize)]
struct OtpSend {
    username: String,
}

#[derive(Deserialize)]
struct OtpCheck {
    username: String,
    code: String,
}

/// `/token/refresh` and `/logout`: the refresh token in the body, or (a
/// browser client) in the cookie.
#[derive(Deserialize, Default)]
struct RefreshRequest {
    #[serde(default)]
    refresh_token: Option<String>,
}

/// `POST /login/mfa`: the challenge from `/login` (or `/otp/verify`) with
/// either a code from the authenticator app or a recovery code.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MfaLogin {
    mfa_token: String,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    recovery_code: Option<String>,
}

/// What a user should recognise a session by on `GET /sessions`: the
/// request's `User-Agent`, made fit for keyward's session metadata (1 to
/// [`MAX_META_LEN`] bytes, no control characters). Bytes that are not
/// UTF-8 become U+FFFD, control characters (a tab, say, which a header may
/// hold) become spaces, and the text is cut to [`MAX_META_LEN`] bytes on a
/// character boundary. `None` without the header, or when nothing is left
/// of it.
#[must_use]
pub fn device_meta(headers: &HeaderMap) -> Option<String> {
    let raw = headers.get(header::USER_AGENT)?.as_bytes();
    let text: String = String::from_utf8_lossy(raw)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let text = text.trim();
    let end = (0..=text.len().min(MAX_META_LEN))
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    let text = text.get(..end)?.trim_end();
    (!text.is_empty()).then(|| text.to_owned())
}

/// 200 with a token pair, never cached on the way (RFC 6749 §5.1). A
/// browser client's refresh token goes in the cookie instead of the body.
fn pair_answer<U>(app: &App<U>, headers: &HeaderMap, pair: &TokenPair) -> Response {
    pair_answer_with(app, headers, pair, None)
}

fn pair_answer_with<U>(
    app: &App<U>,
    headers: &HeaderMap,
    pair: &TokenPair,
    recovery_codes_left: Option<usize>,
) -> Response {
    // RFC 6749 §5.1, with `refresh_token` only for bearer clients; a
    // browser's goes into its cookie.
    let mut body = json!({
        "access_token": pair.access.unprotected_as_str(),
        "token_type": "Bearer",
        "expires_in": pair.expires_in,
    });
    if let Some(left) = recovery_codes_left {
        body["recovery_codes_left"] = json!(left);
    }
    let cookie = browser(app, headers);
    if cookie.is_none() {
        body["refresh_token"] = json!(pair.refresh.unprotected_as_str());
    }
    let mut r = no_store(StatusCode::OK, body);
    if let Some(cookie) = cookie {
        let max_age = app.kw.sessions().map_or(0, |s| s.policy().idle_ttl_secs);
        match cookie.header(pair.refresh.unprotected_as_str(), max_age) {
            Some(v) => {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            None => return unavailable("refresh cookie", &"not a header value"),
        }
    }
    r
}

/// Takes one password attempt from the source's budget and, when `login`
/// could name a user, from that user's: the limits `/login` and
/// `/register` share. A malformed name names no user; the source's budget
/// still bounds it.
async fn take_password_attempt<U: UserDirectory>(
    app: &App<U>,
    login: &str,
) -> Result<(), Response> {
    let limits = &app.shared.limits;
    let source = app.source.to_string();
    if valid_login(login) {
        // Both in one commit: one store write per attempt, not two.
        app.take_both(
            (&limits.login_per_source, &source),
            (&limits.login_per_account, login),
        )
        .await
    } else {
        app.take(&limits.login_per_source, &source).await
    }
}

pub(super) async fn register<U: UserDirectory>(
    app: App<U>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let req: Credentials = match body(&headers, &bytes) {
        Ok(r) => r,
        Err(bad) => return bad.answer(),
    };
    if let Err(refused) = take_password_attempt(&app, &req.username).await {
        return refused;
    }
    if !valid_login(&req.username) {
        return error(
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid_username"}),
        );
    }
    let passwords = app.kw.passwords().clone();
    let password = Password::from(req.password);
    let hash = match app
        .password_work(async move { passwords.hash_async(&password).await })
        .await
    {
        Ok(h) => h,
        Err(Error::PasswordTooShort { min_chars }) => {
            return error(
                StatusCode::BAD_REQUEST,
                json!({"error": "weak_password", "min_length": min_chars}),
            );
        }
        Err(Error::PasswordTooLong { max_bytes }) => {
            return error(
                StatusCode::BAD_REQUEST,
                json!({"error": "weak_password", "max_bytes": max_bytes}),
            );
        }
        Err(Error::Busy) => return too_many(1),
        Err(e) => return unavailable("hashing", &e),
    };
    match app.users().create(&req.username, &hash).await {
        Ok(true) => {
            tracing::info!("user registered");
            StatusCode::CREATED.into_response()
        }
        Ok(false) => error(StatusCode::CONFLICT, json!({"error": "user_exists"})),
        Err(e) => unavailable("user insert", &e),
    }
}

pub(super) async fn login<U: UserDirectory>(
    app: App<U>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let req: Credentials = match body(&headers, &bytes) {
        Ok(r) => r,
        Err(bad) => return bad.answer(),
    };
    // The gate first: an attempt the hashing queue has no room for is
    // answered 429 without a store write, so that a flood of fresh
    // addresses costs the store (and the requests that share it, such as
    // /token/refresh) only the attempts that can be hashed.
    let wait = app.kw.passwords().policy().queue_timeout;
    let Some(_admitted) = app.gate().admit(app.source, wait).await else {
        return too_many(1);
    };
    // Then the per-source and per-account limits, before any user lookup
    // or PBKDF2 work: one store round trip each, none while this
    // replica's deny cache already knows the source is over its limit.
    if let Err(refused) = take_password_attempt(&app, &req.username).await {
        return refused;
    }
    let busy = || {
        app.gate().ticket(
            app.source,
            std::time::Duration::from_secs(1),
            std::time::Instant::now(),
        );
        too_many(1)
    };
    let invalid = || {
        error(
            StatusCode::UNAUTHORIZED,
            json!({"error": "invalid_credentials"}),
        )
    };
    let stored = if valid_login(&req.username) {
        match app.users().find(&req.username).await {
            Ok(s) => s,
            Err(e) => return unavailable("user lookup", &e),
        }
    } else {
        None
    };
    let password = Password::from(req.password);
    let passwords = app.kw.passwords().clone();
    let subject = req.username.clone();
    let verified = match stored {
        Some(stored) => {
            app.password_work(
                async move { passwords.verify_async(&subject, &password, &stored).await },
            )
            .await
        }
        // The same work and the same answer as a wrong password.
        None => {
            app.password_work(
                async move { Err(passwords.verify_unknown_user_async(&password).await) },
            )
            .await
        }
    };
    let verified = match verified {
        Ok(v) => v,
        Err(Error::Busy) => return busy(),
        Err(Error::PasswordMismatch | Error::PasswordTooLong { .. }) => return invalid(),
        Err(e) => {
            // A malformed stored hash, a missing pepper: an operator
            // problem, logged; the client sees the same refusal.
            tracing::error!(error = %e, "login verification failed");
            return invalid();
        }
    };
    if let Some(new) = verified.rehash() {
        match app
            .users()
            .update_hash(&req.username, verified.old_hash(), new)
            .await
        {
            Ok(true) => {
                tracing::info!(scheme = %verified.scheme(), "password hash upgraded on login");
            }
            Ok(false) => tracing::info!("hash changed concurrently; rehash skipped"),
            Err(e) => tracing::warn!(error = %e, "rehash not stored"),
        }
    }
    // A user with a second factor gets a challenge, not tokens: the
    // session starts at `/login/mfa`.
    match app.has_second_factor(&req.username).await {
        Ok(true) => {
            let challenge = match app.kw.sessions() {
                Ok(s) => s.challenge(&verified).await,
                Err(e) => Err(e),
            };
            return mfa_required(challenge);
        }
        Ok(false) => {}
        Err(refused) => return refused,
    }
    let device = device_meta(&headers);
    match start_session(&app, &verified, device.as_deref()).await {
        Ok(pair) => pair_answer(&app, &headers, &pair),
        Err(Error::Busy) => too_many(1),
        Err(e) => unavailable("session start", &e),
    }
}

/// Starts the session of a password check's subject, with `device` as its
/// metadata when there is one. Metadata keyward refuses never costs the
/// user their login: the session starts without it (logged, without the
/// value).
async fn start_session<U: UserDirectory>(
    app: &App<U>,
    proof: &Verified,
    device: Option<&str>,
) -> Result<TokenPair, Error> {
    let sessions = app.kw.sessions()?;
    if let Some(meta) = device {
        match sessions.start_with_meta(proof, meta).await {
            Err(Error::InvalidInput(e)) => {
                tracing::warn!(error = %e, "session metadata refused; session started without it");
            }
            started => return started,
        }
    }
    sessions.start(proof).await
}

/// The answer to a login whose first factor passed for a user with a
/// second factor: a challenge for `/login/mfa`, in place of tokens.
fn mfa_required(challenge: Result<MfaChallenge, Error>) -> Response {
    match challenge {
        Ok(c) => no_store(
            StatusCode::OK,
            json!({
                "mfa_required": true,
                "mfa_token": c.unprotected_as_str(),
                "expires_in": MFA_CHALLENGE_TTL_SECS,
                "methods": ["totp", "recovery_code"],
            }),
        ),
        Err(Error::Busy) => too_many(1),
        Err(e) => unavailable("mfa challenge", &e),
    }
}

/// A code the library refused: 401 with the attempts left, 423 for a lock
/// (with `retry_after`, `null` for a lock only an operator lifts).
pub(super) fn code_refused(what: &str, e: Error) -> Response {
    match e {
        Error::Otp(OtpError::Invalid { attempts_left })
        | Error::Totp(TotpError::Invalid { attempts_left }) => error(
            StatusCode::UNAUTHORIZED,
            json!({"error": "invalid", "attempts_left": attempts_left}),
        ),
        Error::Otp(OtpError::Locked { retry_after }) => error(
            StatusCode::LOCKED,
            json!({"error": "locked", "retry_after": retry_after.as_secs()}),
        ),
        Error::Otp(OtpError::LockedUntilUnlock) => error(
            StatusCode::LOCKED,
            json!({"error": "locked", "retry_after": null}),
        ),
        Error::Otp(e) => error(StatusCode::UNAUTHORIZED, json!({"error": e.reason()})),
        Error::Totp(e @ (TotpError::Replayed | TotpError::Used)) => {
            error(StatusCode::UNAUTHORIZED, json!({"error": e.reason()}))
        }
        Error::Totp(e) => error(StatusCode::CONFLICT, json!({"error": e.reason()})),
        Error::Session(e @ SessionError::ChallengeInvalid) => {
            error(StatusCode::UNAUTHORIZED, json!({"error": e.reason()}))
        }
        // The account is being deleted.
        Error::Erasing => error(StatusCode::CONFLICT, json!({"error": "erasing"})),
        Error::Busy => too_many(1),
        e => unavailable(what, &e),
    }
}

pub(super) async fn otp_send<U: UserDirectory>(
    app: App<U>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let req: OtpSend = match body(&headers, &bytes) {
        Ok(r) => r,
        Err(bad) => return bad.answer(),
    };
    let limit = &app.shared.limits.code_send_per_source;
    if let Err(refused) = app.take(limit, &app.source.to_string()).await {
        return refused;
    }
    // 202 whether or not the name has a user or is locked, so the answer
    // tells neither. Only the send limit answers otherwise (429), and it
    // counts codes for every name alike.
    let accepted = StatusCode::ACCEPTED.into_response();
    if !valid_login(&req.username) {
        return accepted;
    }
    let Some(sender) = app.shared.codes.as_ref() else {
        return unavailable("otp", &"no code sender");
    };
    let otp = match app.kw.otp() {
        Ok(o) => o,
        Err(e) => return unavailable("otp", &e),
    };
    // A code for every name, user or not: the same store work and the
    // same send limit for both (keyward's, per name, kept in the store:
    // one a minute across all replicas), and afterwards `/otp/verify`
    // counts wrong guesses for both alike. Whether the name has a user is
    // looked up off the request path, by the delivery task.
    match otp.issue(&req.username, Purpose::Login).await {
        Ok(issued) => {
            let outgoing = app.shared.outgoing.get_or_init(|| {
                super::Outgoing::start(std::sync::Arc::clone(&app.shared.users), sender.clone())
            });
            outgoing.send(&req.username, issued.code);
        }
        // Locked: no code, and the same 202.
        Err(Error::Otp(_)) => {}
        Err(Error::RateLimited { retry_after }) => return super::rate_limited(retry_after),
        Err(Error::Busy) => return too_many(1),
        Err(e) => return unavailable("otp issue", &e),
    }
    accepted
}

pub(super) async fn otp_verify<U: UserDirectory>(
    app: App<U>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let req: OtpCheck = match body(&headers, &bytes) {
        Ok(r) => r,
        Err(bad) => return bad.answer(),
    };
    if let Err(refused) = app.take_code_check().await {
        return refused;
    }
    let (otp, sessions) = match (app.kw.otp(), app.kw.sessions()) {
        (Ok(o), Ok(s)) => (o, s),
        (Err(e), _) | (_, Err(e)) => return unavailable("otp", &e),
    };
    if !valid_login(&req.username) {
        return error(
            StatusCode::UNAUTHORIZED,
            json!({"error": "invalid", "attempts_left": 0}),
        );
    }
    let proof = match otp.verify(&req.username, Purpose::Login, &req.code).await {
        Ok(proof) => proof,
        Err(e) => return code_refused("otp verify", e),
    };
    // Codes go to users only, but one is issued for any name: a lucky
    // guess for a name without a user mints nothing. (Only a right code
    // reaches this lookup.)
    match app.users().find(&req.username).await {
        Ok(Some(_)) => {}
        Ok(None) => return error(StatusCode::UNAUTHORIZED, json!({"error": "no_code"})),
        Err(e) => return unavailable("user lookup", &e),
    }
    // An e-mailed code stands in for the password, not for the second
    // factor.
    match app.has_second_factor(&req.username).await {
        Ok(true) => return mfa_required(sessions.challenge_after_otp(proof).await),
        Ok(false) => {}
        Err(refused) => return refused,
    }
    match sessions.start_with_otp(proof).await {
        Ok(pair) => pair_answer(&app, &headers, &pair),
        Err(Error::Busy) => too_many(1),
        Err(e) => unavailable("session start", &e),
    }
}

pub(super) async fn login_mfa<U: UserDirectory>(
    app: App<U>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let req: MfaLogin = match body(&headers, &bytes) {
        Ok(r) => r,
        Err(bad) => return bad.answer(),
    };
    if let Err(refused) = app.take_code_check().await {
        return refused;
    }
    let (totp, sessions) = match (app.kw.totp(), app.kw.sessions()) {
        (Ok(t), Ok(s)) => (t, s),
        (Err(e), _) | (_, Err(e)) => return unavailable("totp", &e),
    };
    let subject = match sessions.challenge_subject(&req.mfa_token).await {
        Ok(s) => s,
        Err(e) => return code_refused("mfa challenge", e),
    };
    let device = device_meta(&headers);
    let (started, left) = match (&req.code, &req.recovery_code) {
        (Some(code), None) => match totp.verify(&subject, code).await {
            Ok(proof) => (
                sessions
                    .start_after_challenge(&req.mfa_token, proof, device.as_deref())
                    .await,
                None,
            ),
            Err(e) => return code_refused("totp verify", e),
        },
        (None, Some(code)) => match totp.recover(&subject, code).await {
            Ok(proof) => {
                let left = proof.left();
                (
                    sessions
                        .start_after_challenge(&req.mfa_token, proof, device.as_deref())
                        .await,
                    Some(left),
                )
            }
            Err(e) => return code_refused("recovery code", e),
        },
        _ => return bad_request(),
    };
    match started {
        Ok(pair) => pair_answer_with(&app, &headers, &pair, left),
        // `device` is always metadata keyward takes, and the proof is for
        // the challenge's subject: any other refusal is the store's.
        Err(e) => code_refused("session start", e),
    }
}

/// Why a `/token/refresh` or `/logout` request has no refresh token.
enum NoToken {
    /// The body is not the JSON asked for.
    Body(BadBody),
    /// Neither the body nor (a browser client's) cookie holds one.
    Missing,
}

impl NoToken {
    fn answer(self) -> Response {
        match self {
            Self::Body(bad) => bad.answer(),
            Self::Missing => error(StatusCode::UNAUTHORIZED, json!({"error": "missing_token"})),
        }
    }
}

/// The refresh token of a `/token/refresh` or `/logout` request: the
/// body's, or a browser client's cookie.
fn presented_refresh<U>(
    app: &App<U>,
    headers: &HeaderMap,
    bytes: &[u8],
) -> Result<String, NoToken> {
    let req: RefreshRequest = if bytes.is_empty() {
        RefreshRequest::default()
    } else {
        body(headers, bytes).map_err(NoToken::Body)?
    };
    if let Some(token) = req.refresh_token {
        return Ok(token);
    }
    // Only a request with the CSRF header reads the cookie.
    browser(app, headers)
        .and_then(|c| c.read(headers))
        .map(str::to_owned)
        .ok_or(NoToken::Missing)
}

pub(super) async fn refresh<U: UserDirectory>(
    app: App<U>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let token = match presented_refresh(&app, &headers, &bytes) {
        Ok(t) => t,
        Err(no) => return no.answer(),
    };
    let sessions = match app.kw.sessions() {
        Ok(s) => s,
        Err(e) => return unavailable("sessions", &e),
    };
    match sessions.refresh(&token).await {
        Ok(pair) => pair_answer(&app, &headers, &pair),
        Err(Error::Session(e)) => error(StatusCode::UNAUTHORIZED, json!({"error": e.reason()})),
        Err(Error::Busy) => too_many(1),
        Err(e) => unavailable("refresh", &e),
    }
}

async fn end_session<U: UserDirectory>(app: &App<U>, token: &str) -> Response {
    let sessions = match app.kw.sessions() {
        Ok(s) => s,
        Err(e) => return unavailable("sessions", &e),
    };
    match sessions.revoke(token).await {
        // Logging out with a dead or foreign token leaves nothing to do.
        Ok(_) | Err(Error::Session(_)) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => unavailable("logout", &e),
    }
}

pub(super) async fn logout<U: UserDirectory>(
    app: App<U>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    match presented_refresh(&app, &headers, &bytes) {
        Ok(token) => end_session(&app, &token).await,
        Err(no) => no.answer(),
    }
}

/// `POST /token/revoke`: a browser client's logout. It ends the session
/// of the refresh cookie (or of a `refresh_token` in the body) and clears
/// the cookie.
pub(super) async fn revoke_cookie<U: UserDirectory>(
    app: App<U>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let mut r = match presented_refresh(&app, &headers, &bytes) {
        Ok(token) => end_session(&app, &token).await,
        Err(no) => return no.answer(),
    };
    if r.status().is_success()
        && let Some(clear) = browser(&app, &headers).and_then(|c| c.header("", 0))
    {
        r.headers_mut().insert(header::SET_COOKIE, clear);
    }
    r
}

pub(super) async fn logout_all<U: UserDirectory>(
    app: App<U>,
    super::account::Caller(claims): super::account::Caller,
) -> Response {
    let sessions = match app.kw.sessions() {
        Ok(s) => s,
        Err(e) => return unavailable("sessions", &e),
    };
    match sessions.revoke_all(&claims.sub).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(Error::Busy) => too_many(1),
        Err(e) => unavailable("logout-all", &e),
    }
}
