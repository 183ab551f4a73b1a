//! The routes a logged-in user manages their account with: API keys,
//! sessions, the second factor and the account itself; and the JWKS.
//!
//! They take an access token whose session is still live
//! (`authenticate_strict`), never an API key: a key cannot mint keys wider
//! than itself or outlive its own revocation by making another, and a
//! logged-out session's access token manages nothing.
//!
//! API keys: `POST /api-keys` `{"name", "scopes"?, "expires_in"?}` answers
//! 201 with the key, shown this once; `GET /api-keys` the public views,
//! newest first; `POST /api-keys/{id}/roll` `{"overlap_secs"?}` (or no
//! body: 0) the new key, the old one working `overlap_secs` more (at most
//! [`MAX_ROLL_OVERLAP_SECS`]); `DELETE /api-keys/{id}` 204. An unknown,
//! malformed or revoked id and another user's key get the same 404
//! `not_found`, so that ids tell nothing; a spec the library refuses is a
//! 400 `bad_spec` whose `detail` names the field, never its value; 409
//! `too_many_keys` (with `max`) when the owner holds the policy's limit of
//! live keys, 409 `expired` for rolling an expired key.
//!
//! Sessions: `GET /sessions` lists the live sessions, oldest first, each
//! `{"session", "started_at", "refreshed_at", "generation", "expires_at",
//! "meta", "current"}` (`meta` is the `User-Agent` of the login, `current`
//! marks the asking session); `DELETE /sessions/{id}` ends one (404
//! `unknown` alike for an unknown id and another user's session).

use std::time::Duration;

use ::axum::body::Bytes;
use ::axum::extract::Path;
use ::axum::extract::{FromRef, FromRequestParts};
use ::axum::http::request::Parts;
use ::axum::http::{HeaderMap, StatusCode, header};
use ::axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::login::code_refused;
use super::{
    App, UserDirectory, bearer, body, error, invalid_token, no_store, not_found, ok_json, too_many,
    unavailable,
};
use crate::Keyward;
use crate::api_key::{ApiKeyView, ApiKeys, KeySpec};
use crate::error::{ApiKeyError, Error, JwtError, SessionError};
use crate::jwt::AccessClaims;
use crate::session::SessionInfo;

/// The longest overlap `POST /api-keys/{id}/roll` grants: a week. A longer
/// one would keep the old key alive for as long as a key that was never
/// rolled.
pub const MAX_ROLL_OVERLAP_SECS: u64 = 7 * 86_400;

/// `POST /api-keys`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    name: String,
    #[serde(default)]
    scopes: Vec<String>,
    /// Seconds; absent or `null` for a key that lives until revoked.
    #[serde(default)]
    expires_in: Option<u64>,
}

/// `POST /api-keys/{id}/roll`; an empty body is an overlap of 0.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Roll {
    #[serde(default)]
    overlap_secs: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TotpCode {
    code: String,
}

/// The caller of an account route: the claims of the request's access
/// token, checked against its session. Refused with 401 `invalid_token`
/// for a missing, malformed, expired or forged token, for one whose
/// session has ended, and for an API key.
pub(super) struct Caller(pub(super) AccessClaims);

impl<S> FromRequestParts<S> for Caller
where
    Keyward: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        let kw = Keyward::from_ref(state);
        let sessions = kw.sessions().map_err(|e| unavailable("sessions", &e))?;
        let Some(token) = bearer(&parts.headers) else {
            return Err(invalid_token());
        };
        match sessions.authenticate_strict(token).await {
            Ok(c) => Ok(Self(c)),
            Err(Error::Jwt(_) | Error::Session(_)) => Err(invalid_token()),
            Err(Error::Busy) => Err(too_many(1)),
            Err(e) => Err(unavailable("authenticate", &e)),
        }
    }
}

/// A key-management call the library refused.
fn key_admin_refused(what: &str, e: Error) -> Response {
    match e {
        Error::ApiKey(ApiKeyError::BadSpec(detail)) => error(
            StatusCode::BAD_REQUEST,
            json!({"error": "bad_spec", "detail": detail}),
        ),
        // A bad prefix: the router names none, but keep the answer a 400.
        Error::Token(_) => error(StatusCode::BAD_REQUEST, json!({"error": "bad_spec"})),
        Error::ApiKey(e @ ApiKeyError::TooManyKeys { max }) => error(
            StatusCode::CONFLICT,
            json!({"error": e.reason(), "max": max}),
        ),
        Error::ApiKey(e @ ApiKeyError::Expired) => {
            error(StatusCode::CONFLICT, json!({"error": e.reason()}))
        }
        // Revoked or forgotten between the ownership check and the call.
        Error::ApiKey(ApiKeyError::Unknown | ApiKeyError::Revoked) => not_found(),
        Error::Busy => too_many(1),
        e => unavailable(what, &e),
    }
}

/// Checks that key `id` belongs to `owner`. An unknown, malformed or
/// revoked id and another owner's key all get the same 404.
async fn owned_key(keys: &ApiKeys, owner: &str, id: &str) -> Result<ApiKeyView, Response> {
    match keys.get(id).await {
        Ok(view) if view.owner == owner => Ok(view),
        Ok(view) => {
            // `view.id` is a well-formed id, safe to log; the owner is not
            // logged.
            tracing::warn!(key_id = %view.id, "request for another user's api key refused");
            Err(not_found())
        }
        Err(Error::ApiKey(
            ApiKeyError::Unknown | ApiKeyError::Revoked | ApiKeyError::BadSpec(_),
        )) => Err(not_found()),
        Err(Error::Busy) => Err(too_many(1)),
        Err(e) => Err(unavailable("api key lookup", &e)),
    }
}

pub(super) async fn create_key<U: UserDirectory>(
    app: App<U>,
    Caller(claims): Caller,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let owner = claims.sub;
    let req: NewKey = match body(&headers, &bytes) {
        Ok(r) => r,
        Err(bad) => return bad.answer(),
    };
    let mut spec = KeySpec::named(req.name);
    for scope in req.scopes {
        spec = spec.scope(scope);
    }
    if let Some(secs) = req.expires_in {
        spec = spec.expires_in(Duration::from_secs(secs));
    }
    let keys = match app.kw.api_keys() {
        Ok(k) => k,
        Err(e) => return unavailable("api keys", &e),
    };
    match keys.create(&owner, spec).await {
        Ok(made) => {
            let v = made.view();
            no_store(
                StatusCode::CREATED,
                json!({
                    "key": made.key().unprotected_as_str(),
                    "id": v.id,
                    "name": v.name,
                    "scopes": v.scopes,
                    "created_at": v.created_at,
                    "expires_at": v.expires_at,
                }),
            )
        }
        Err(e) => key_admin_refused("api key create", e),
    }
}

pub(super) async fn list_keys<U: UserDirectory>(app: App<U>, Caller(claims): Caller) -> Response {
    let owner = claims.sub;
    let listed = match app.kw.api_keys() {
        Ok(k) => k.list(&owner).await,
        Err(e) => return unavailable("api keys", &e),
    };
    match listed {
        Ok(views) => ok_json(json!({"keys": views})),
        Err(e) => key_admin_refused("api key list", e),
    }
}

pub(super) async fn roll_key<U: UserDirectory>(
    app: App<U>,
    Caller(claims): Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let owner = claims.sub;
    let req: Roll = if bytes.is_empty() {
        Roll::default()
    } else {
        match body(&headers, &bytes) {
            Ok(r) => r,
            Err(bad) => return bad.answer(),
        }
    };
    if req.overlap_secs > MAX_ROLL_OVERLAP_SECS {
        return error(
            StatusCode::BAD_REQUEST,
            json!({"error": "bad_request", "max_overlap_secs": MAX_ROLL_OVERLAP_SECS}),
        );
    }
    let keys = match app.kw.api_keys() {
        Ok(k) => k,
        Err(e) => return unavailable("api keys", &e),
    };
    if let Err(refused) = owned_key(keys, &owner, &id).await {
        return refused;
    }
    match keys.roll(&id, Duration::from_secs(req.overlap_secs)).await {
        Ok(rolled) => no_store(
            StatusCode::OK,
            json!({
                "key": rolled.key().unprotected_as_str(),
                "id": rolled.id(),
                "previous_valid_until": rolled.previous_valid_until(),
            }),
        ),
        Err(e) => key_admin_refused("api key roll", e),
    }
}

pub(super) async fn revoke_key<U: UserDirectory>(
    app: App<U>,
    Path(id): Path<String>,
    Caller(claims): Caller,
) -> Response {
    let owner = claims.sub;
    let keys = match app.kw.api_keys() {
        Ok(k) => k,
        Err(e) => return unavailable("api keys", &e),
    };
    if let Err(refused) = owned_key(keys, &owner, &id).await {
        return refused;
    }
    match keys.revoke(&id).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => key_admin_refused("api key revoke", e),
    }
}

/// One entry of `GET /sessions`: the session's own JSON, and whether it
/// is the asking one.
#[derive(Serialize)]
struct SessionEntry<'a> {
    #[serde(flatten)]
    info: &'a SessionInfo,
    current: bool,
}

pub(super) async fn list_sessions<U: UserDirectory>(
    app: App<U>,
    Caller(claims): Caller,
) -> Response {
    let listed = match app.kw.sessions() {
        Ok(s) => s.list(&claims.sub).await,
        Err(e) => return unavailable("sessions", &e),
    };
    match listed {
        Ok(infos) => {
            let sessions: Vec<_> = infos
                .iter()
                .map(|info| SessionEntry {
                    info,
                    current: info.id == claims.sid,
                })
                .collect();
            ok_json(json!({"sessions": sessions}))
        }
        Err(Error::Busy) => too_many(1),
        Err(e) => unavailable("session list", &e),
    }
}

pub(super) async fn revoke_session<U: UserDirectory>(
    app: App<U>,
    Path(id): Path<String>,
    Caller(claims): Caller,
) -> Response {
    let revoked = match app.kw.sessions() {
        Ok(s) => s.revoke_session(&claims.sub, &id).await,
        Err(e) => return unavailable("sessions", &e),
    };
    match revoked {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(Error::Session(e @ SessionError::Unknown)) => {
            error(StatusCode::NOT_FOUND, json!({"error": e.reason()}))
        }
        Err(Error::Busy) => too_many(1),
        Err(e) => unavailable("session revoke", &e),
    }
}

/// `DELETE /account`: erases the caller from keyward (sessions, API keys,
/// codes, second factor, lockout state), then deletes the user from the
/// directory. In that order: if the user cannot be deleted, the caller can
/// still sign in and ask again, while nothing of what keyward held
/// survives.
pub(super) async fn delete_account<U: UserDirectory>(
    app: App<U>,
    Caller(claims): Caller,
) -> Response {
    match app.kw.erase(&claims.sub).await {
        Ok(_) => {}
        Err(Error::Busy) => return too_many(1),
        Err(e) => return unavailable("erase", &e),
    }
    match app.users().delete(&claims.sub).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => unavailable("user delete after an erase", &e),
    }
}

pub(super) async fn jwks<U: UserDirectory>(app: App<U>) -> Response {
    match app.kw.jwt() {
        Ok(j) => (
            [(header::CONTENT_TYPE, "application/json")],
            j.jwks().to_owned(),
        )
            .into_response(),
        Err(e) => unavailable("jwks", &e),
    }
}

// ---- The second factor ----

/// A route that changes the second factor itself (regenerate the recovery
/// codes, disable it) asks for a session that passed it: a stolen password
/// alone must not remove the factor. 401 with RFC 9470's
/// `insufficient_user_authentication` otherwise: the refusal, or `None`.
fn step_up(claims: &AccessClaims) -> Option<Response> {
    claims
        .require_mfa()
        .err()
        .map(|_| crate::axum::Rejection::from(Error::Jwt(JwtError::MfaRequired)).into_response())
}

/// `GET /totp`: whether the caller has a second factor, and how many
/// recovery codes are left.
pub(super) async fn totp_status<U: UserDirectory>(app: App<U>, Caller(claims): Caller) -> Response {
    let left = match app.kw.totp() {
        Ok(t) => t.recovery_left(&claims.sub).await,
        Err(e) => return unavailable("totp", &e),
    };
    match left {
        Ok(left) => ok_json(json!({
            "enrolled": left.is_some(),
            "recovery_codes_left": left,
        })),
        Err(e) => code_refused("totp status", e),
    }
}

/// `POST /totp/enroll`: a new, unconfirmed factor for the caller, as the
/// `otpauth://` URI and the secret for typing in (and a QR code, with
/// [`AuthRoutes::totp_qr_svg`](super::AuthRoutes::totp_qr_svg)). Shown
/// once; `POST /totp/confirm` with a first code makes it count.
pub(super) async fn totp_enroll<U: UserDirectory>(app: App<U>, Caller(claims): Caller) -> Response {
    let enrolled = match app.kw.totp() {
        Ok(t) => {
            t.enroll(&claims.sub, &app.shared.totp_issuer, &claims.sub)
                .await
        }
        Err(e) => return unavailable("totp", &e),
    };
    let enrollment = match enrolled {
        Ok(e) => e,
        Err(e) => return code_refused("totp enroll", e),
    };
    let uri = enrollment.uri().unprotected_as_str();
    let mut answer = json!({
        "factor": enrollment.factor(),
        "uri": uri,
        "secret": enrollment.secret().unprotected_as_str(),
    });
    if let Some(picture) = app.shared.totp_picture {
        match picture(uri).map(zeroize::Zeroizing::new) {
            Some(svg) => answer["qr_svg"] = json!(svg.as_str()),
            None => return unavailable("qr code", &"the picture could not be drawn"),
        }
    }
    no_store(StatusCode::CREATED, answer)
}

fn recovery_body(codes: &crate::totp::RecoveryCodes) -> Response {
    let codes: Vec<&str> = codes
        .codes()
        .iter()
        .map(|c| c.unprotected_as_str())
        .collect();
    no_store(StatusCode::OK, json!({"recovery_codes": codes}))
}

/// `POST /totp/confirm`: the first code from the app confirms the factor;
/// the answer holds the recovery codes, shown once. Every session of the
/// caller ends: the next login asks for the factor.
pub(super) async fn totp_confirm<U: UserDirectory>(
    app: App<U>,
    Caller(claims): Caller,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let req: TotpCode = match body(&headers, &bytes) {
        Ok(r) => r,
        Err(bad) => return bad.answer(),
    };
    let confirmed = match app.kw.totp() {
        Ok(t) => t.confirm(&claims.sub, &req.code).await,
        Err(e) => return unavailable("totp", &e),
    };
    let codes = match confirmed {
        Ok(codes) => codes,
        Err(e) => return code_refused("totp confirm", e),
    };
    // Every session so far, this one included, passed the password alone:
    // they end, and the next login asks for the factor. A session taken
    // before the factor existed does not outlive it.
    let revoked = match app.kw.sessions() {
        Ok(s) => s.revoke_all(&claims.sub).await,
        Err(e) => Err(e),
    };
    if let Err(e) = revoked {
        // The factor counts already; the sessions end at their expiry.
        tracing::error!(error = %e, "sessions not revoked after a second factor was confirmed");
    }
    recovery_body(&codes)
}

/// `POST /totp/recovery`: a new set of recovery codes; the old set stops
/// working. Needs a session that passed the second factor.
pub(super) async fn totp_regenerate<U: UserDirectory>(
    app: App<U>,
    Caller(claims): Caller,
) -> Response {
    if let Some(refused) = step_up(&claims) {
        return refused;
    }
    let codes = match app.kw.totp() {
        Ok(t) => t.regenerate_recovery(&claims.sub).await,
        Err(e) => return unavailable("totp", &e),
    };
    match codes {
        Ok(codes) => recovery_body(&codes),
        Err(e) => code_refused("totp recovery", e),
    }
}

/// `DELETE /totp`: removes the caller's factor and its recovery codes.
/// Needs a session that passed the second factor, unless the factor was
/// never confirmed.
pub(super) async fn totp_disable<U: UserDirectory>(
    app: App<U>,
    Caller(claims): Caller,
) -> Response {
    let totp = match app.kw.totp() {
        Ok(t) => t,
        Err(e) => return unavailable("totp", &e),
    };
    match app.has_second_factor(&claims.sub).await {
        Ok(true) => {
            if let Some(refused) = step_up(&claims) {
                return refused;
            }
        }
        Ok(false) => {}
        Err(refused) => return refused,
    }
    match totp.disable(&claims.sub).await {
        Ok(true) => StatusCode::NO_CONTENT.into_response(),
        Ok(false) => not_found(),
        Err(e) => code_refused("totp disable", e),
    }
}
