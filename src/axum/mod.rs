//! keyward in an axum service (feature `axum`): extractors for the bearer
//! of a request, and one rejection type that answers every keyward error
//! the way a client expects.
//!
//! The extractors take [`Keyward`] from the router's state, directly or
//! through [`FromRef`]; a [`Keyward<Complete>`](Complete) as the state
//! works too. Each also works as `Option<T>`: `None` when the
//! request carries no credential at all, a rejection when it carries a
//! bad one.
//!
//! | extractor | accepts |
//! |---|---|
//! | [`Claims`] | `Authorization: Bearer <access JWT>`, signature and claims checked |
//! | [`StrictClaims`] | the same, and its session still live in the store (a revoked session is refused at once) |
//! | [`Mfa`] | [`StrictClaims`] of a session started with a second factor |
//! | [`ApiKey`] | `Authorization: Bearer <API key>` or `X-Api-Key: <API key>` |
//! | [`Principal`] | either: a bearer with dots is a JWT, one without is a key |
//!
//! ```
//! use axum::{Router, routing::get};
//! use keyward::axum::{ApiKey, Claims, Rejection};
//! use keyward::Keyward;
//!
//! async fn me(Claims(claims): Claims) -> String {
//!     claims.sub
//! }
//!
//! async fn reports(ApiKey(key): ApiKey) -> Result<String, Rejection> {
//!     key.require_scope("reports:read")?;
//!     Ok(format!("reports of {}", key.owner()))
//! }
//!
//! fn app(kw: Keyward) -> Router {
//!     Router::new()
//!         .route("/me", get(me))
//!         .route("/reports", get(reports))
//!         .with_state(kw)
//! }
//! ```
//!
//! A [`Rejection`] answers with [`Error::status`], a JSON body
//! `{"error": code}` ([`Error::code`]), `Retry-After` when the error has a
//! wait, and for 401 and 403 a `WWW-Authenticate: Bearer` challenge (RFC
//! 6750 §3): with no error code when no credential was sent,
//! `invalid_token`, `insufficient_scope` with the scope, or RFC 9470's
//! `insufficient_user_authentication` for a route that needs a second
//! factor. Nothing in it is taken from the request.

use std::fmt;

use ::axum::extract::{FromRef, FromRequestParts, OptionalFromRequestParts};
use ::axum::http::request::Parts;
use ::axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use ::axum::response::{IntoResponse, Response};

use crate::api_key::ApiKeyVerified;
use crate::{Complete, Keyward};

mod client;
mod gate;
mod limit;
mod routes;

use crate::error::{ApiKeyError, Error};
use crate::jwt::{AccessClaims, JwtError};
pub use client::{ClientAddr, MAX_TRUSTED_PROXIES, forwarded_client, source_key};
pub use gate::{Admission, LoginGate, MAX_TICKETS, hashing_runtime};
pub use limit::{LimitLayer, Limited};
pub use routes::{
    AuthRoutes, CODE_SEND_PER_SOURCE, CSRF_HEADER, CodeSender, DirectoryError,
    MAX_ROLL_OVERLAP_SECS, RateLimits, RefreshCookie, UserDirectory, device_meta, routes,
};

/// A complete [`Keyward`] as the state serves every extractor and router
/// that takes a `Keyward`.
impl FromRef<Keyward<Complete>> for Keyward {
    fn from_ref(kw: &Keyward<Complete>) -> Self {
        Self {
            inner: std::sync::Arc::clone(&kw.inner),
            mode: crate::Partial(()),
        }
    }
}

/// The header an API key may come in instead of `Authorization`.
pub const X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// A request refused: every keyward error, and a missing credential,
/// answered as a client expects (see the [module](self) docs).
pub struct Rejection {
    error: Option<Error>,
}

impl Rejection {
    /// No credential was sent: 401 with a bare `Bearer` challenge.
    #[must_use]
    pub fn missing() -> Self {
        Self { error: None }
    }

    /// The error behind it; `None` when no credential was sent.
    #[must_use]
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    /// The HTTP status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        let code = self.error.as_ref().map_or(401, Error::status);
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// The `error` code of the body: [`Error::code`], or `missing_token`
    /// when no credential was sent.
    #[must_use]
    pub fn code(&self) -> &'static str {
        self.error.as_ref().map_or("missing_token", Error::code)
    }

    fn challenge(&self) -> Option<String> {
        let Some(e) = &self.error else {
            return Some("Bearer".to_owned());
        };
        match (e.status(), e) {
            (403, Error::ApiKey(ApiKeyError::MissingScope(scope))) => Some(format!(
                "Bearer error=\"insufficient_scope\", scope=\"{}\"",
                quoted(scope)
            )),
            (_, Error::Jwt(JwtError::MfaRequired)) => Some(
                "Bearer error=\"insufficient_user_authentication\", \
                 error_description=\"a second factor is required\""
                    .to_owned(),
            ),
            (401, _) => Some("Bearer error=\"invalid_token\"".to_owned()),
            _ => None,
        }
    }
}

/// A scope name as an RFC 6750 `scope` value: the characters RFC 6749 §3.3
/// allows, others dropped (a scope is named by the application, never by
/// the request, but the header must stay well formed).
fn quoted(scope: &str) -> String {
    scope
        .chars()
        .filter(|&c| c == '!' || ('#'..='[').contains(&c) || (']'..='~').contains(&c))
        .collect()
}

impl From<Error> for Rejection {
    fn from(error: Error) -> Self {
        Self { error: Some(error) }
    }
}

impl fmt::Debug for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rejection")
            .field("status", &self.status().as_u16())
            .field("code", &self.code())
            .finish()
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.error {
            Some(e) => write!(f, "{e}"),
            None => f.write_str("no credential"),
        }
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error()
            && let Some(e) = &self.error
        {
            tracing::error!(error = %e, "request refused: a keyward error");
        }
        let body = serde_json::json!({ "error": self.code() }).to_string();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(challenge) = self.challenge()
            && let Ok(v) = HeaderValue::from_str(&challenge)
        {
            headers.insert(header::WWW_AUTHENTICATE, v);
        }
        if let Some(wait) = self.error.as_ref().and_then(Error::retry_after) {
            // Whole seconds, rounded up (RFC 9110 §10.2.3).
            let secs = wait
                .as_secs()
                .saturating_add(u64::from(wait.subsec_nanos() > 0));
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        response
    }
}

/// The bearer credential of `Authorization`, if any; `Err` for an
/// `Authorization` header that is not `Bearer <token>`.
fn bearer(headers: &HeaderMap) -> Result<Option<&str>, Rejection> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let invalid = || Rejection::from(Error::Jwt(JwtError::Malformed));
    let value = value.to_str().map_err(|_| invalid())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(invalid)?;
    // The scheme is case-insensitive (RFC 9110 §11.1).
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(invalid());
    }
    let token = token.trim_start_matches(' ');
    if token.is_empty() {
        return Err(invalid());
    }
    Ok(Some(token))
}

/// The API key of the request: the bearer, or `X-Api-Key`.
fn api_key(headers: &HeaderMap) -> Result<Option<&str>, Rejection> {
    if let Some(token) = bearer(headers)? {
        return Ok(Some(token));
    }
    match headers.get(&X_API_KEY) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(Some)
            .map_err(|_| Rejection::from(Error::ApiKey(ApiKeyError::Unknown))),
    }
}

/// The verified claims of the request's access token: signature, issuer,
/// audience, type and lifetime checked, without a store round trip.
#[derive(Debug, Clone)]
pub struct Claims(pub AccessClaims);

/// The verified claims of the request's access token, and its session
/// still live in the store: a revoked session or subject is refused at
/// once, not at the token's expiry.
#[derive(Debug, Clone)]
pub struct StrictClaims(pub AccessClaims);

/// The claims of a live session started with a second factor (`amr` holds
/// `mfa`): for step-up routes.
#[derive(Debug, Clone)]
pub struct Mfa(pub AccessClaims);

/// The verified API key of the request.
#[derive(Debug)]
pub struct ApiKey(pub ApiKeyVerified);

/// The bearer of the request: a user by an access token, or a client by an
/// API key. A JWT has dots; a key never does.
#[derive(Debug)]
pub enum Principal {
    /// An access token's verified claims.
    User(AccessClaims),
    /// A verified API key.
    Key(ApiKeyVerified),
}

impl Principal {
    /// The subject: the user, or the key's owner.
    #[must_use]
    pub fn subject(&self) -> &str {
        match self {
            Self::User(c) => &c.sub,
            Self::Key(k) => k.owner(),
        }
    }

    /// Whether the principal may act under `scope`: a user always (the
    /// user's full authority), a key only with that scope.
    ///
    /// # Errors
    /// [`ApiKeyError::MissingScope`] for a key without it: a 403 with
    /// `insufficient_scope` as a [`Rejection`].
    pub fn require_scope(&self, scope: &str) -> Result<(), Error> {
        match self {
            Self::User(_) => Ok(()),
            Self::Key(k) => k.require_scope(scope),
        }
    }
}

fn claims_of(kw: &Keyward, token: &str) -> Result<AccessClaims, Rejection> {
    Ok(kw.jwt()?.verify(token)?)
}

async fn strict_claims_of(kw: &Keyward, token: &str) -> Result<AccessClaims, Rejection> {
    Ok(kw.sessions()?.authenticate_strict(token).await?)
}

async fn key_of(kw: &Keyward, key: &str) -> Result<ApiKeyVerified, Rejection> {
    Ok(kw.api_keys()?.verify(key).await?)
}

/// Implements `FromRequestParts` (a missing credential is a rejection) and
/// `OptionalFromRequestParts` (a missing credential is `None`) for an
/// extractor, from one function of the state and the parts.
macro_rules! extractor {
    ($t:ty, |$kw:ident, $parts:ident| $body:expr) => {
        impl<S> OptionalFromRequestParts<S> for $t
        where
            Keyward: FromRef<S>,
            S: Send + Sync,
        {
            type Rejection = Rejection;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &S,
            ) -> Result<Option<Self>, Self::Rejection> {
                let $kw = Keyward::from_ref(state);
                let $parts: &Parts = parts;
                $body
            }
        }

        impl<S> FromRequestParts<S> for $t
        where
            Keyward: FromRef<S>,
            S: Send + Sync,
        {
            type Rejection = Rejection;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &S,
            ) -> Result<Self, Self::Rejection> {
                <Self as OptionalFromRequestParts<S>>::from_request_parts(parts, state)
                    .await?
                    .ok_or_else(Rejection::missing)
            }
        }
    };
}

extractor!(Claims, |kw, parts| match bearer(&parts.headers)? {
    Some(token) => claims_of(&kw, token).map(|c| Some(Self(c))),
    None => Ok(None),
});

extractor!(StrictClaims, |kw, parts| match bearer(&parts.headers)? {
    Some(token) => strict_claims_of(&kw, token).await.map(|c| Some(Self(c))),
    None => Ok(None),
});

extractor!(Mfa, |kw, parts| match bearer(&parts.headers)? {
    Some(token) => {
        let claims = strict_claims_of(&kw, token).await?;
        claims.require_mfa()?;
        Ok(Some(Self(claims)))
    }
    None => Ok(None),
});

extractor!(ApiKey, |kw, parts| match api_key(&parts.headers)? {
    Some(key) => key_of(&kw, key).await.map(|k| Some(Self(k))),
    None => Ok(None),
});

extractor!(Principal, |kw, parts| match bearer(&parts.headers)? {
    Some(token) if token.contains('.') => claims_of(&kw, token).map(|c| Some(Self::User(c))),
    Some(_) => ApiKey::key_principal(&kw, &parts.headers).await,
    None => ApiKey::key_principal(&kw, &parts.headers).await,
});

impl ApiKey {
    async fn key_principal(
        kw: &Keyward,
        headers: &HeaderMap,
    ) -> Result<Option<Principal>, Rejection> {
        match api_key(headers)? {
            Some(key) => key_of(kw, key).await.map(|k| Some(Principal::Key(k))),
            None => Ok(None),
        }
    }
}
