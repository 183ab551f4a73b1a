//! Every error's HTTP answer: status, code and `Retry-After`, and that
//! neither the code nor the status depends on anything a caller sent.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::time::Duration;

use keyward::jwt::JwtError;
use keyward::{
    ApiKeyError, Error, HashError, KeyringError, LimitError, OtpError, SessionError, StoreError,
    TokenError, TotpError,
};

fn secs(s: u64) -> Option<Duration> {
    Some(Duration::from_secs(s))
}

#[test]
fn every_error_has_its_answer() {
    let table: Vec<(Error, u16, &str, Option<Duration>)> = vec![
        (Error::PasswordMismatch, 401, "invalid_credentials", None),
        (
            Error::PasswordTooLong { max_bytes: 1024 },
            400,
            "password_too_long",
            None,
        ),
        (
            Error::PasswordTooShort { min_chars: 8 },
            400,
            "password_too_short",
            None,
        ),
        (
            Error::Hash(HashError::UnknownScheme),
            500,
            "server_error",
            None,
        ),
        (
            Error::UnknownPepper { id: "p1".into() },
            500,
            "server_error",
            None,
        ),
        (Error::Busy, 503, "busy", secs(1)),
        (Error::Erasing, 409, "erasing", None),
        (Error::Rng, 500, "server_error", None),
        (Error::Config("x".into()), 500, "server_error", None),
        (
            Error::InvalidInput("x".into()),
            400,
            "invalid_request",
            None,
        ),
        (
            Error::Keyring(KeyringError::Exists),
            500,
            "server_error",
            None,
        ),
        (Error::Jwt(JwtError::Expired), 401, "invalid_token", None),
        (
            Error::Jwt(JwtError::BadSignature),
            401,
            "invalid_token",
            None,
        ),
        (
            Error::Jwt(JwtError::MfaRequired),
            401,
            "insufficient_user_authentication",
            None,
        ),
        (Error::Session(SessionError::Reused), 401, "reused", None),
        (Error::Session(SessionError::Invalid), 401, "invalid", None),
        (Error::Session(SessionError::Unknown), 404, "unknown", None),
        (
            Error::Session(SessionError::ChallengeInvalid),
            401,
            "invalid_challenge",
            None,
        ),
        (
            Error::Store(StoreError::Unavailable("down".into())),
            503,
            "unavailable",
            None,
        ),
        (
            Error::Store(StoreError::Corrupt("x")),
            500,
            "server_error",
            None,
        ),
        (
            Error::Token(TokenError::BadChecksum),
            401,
            "invalid_token",
            None,
        ),
        (
            Error::Otp(OtpError::Invalid { attempts_left: 2 }),
            401,
            "invalid",
            None,
        ),
        (
            Error::Otp(OtpError::Locked {
                retry_after: Duration::from_secs(3600),
            }),
            423,
            "locked",
            secs(3600),
        ),
        (
            Error::Otp(OtpError::LockedUntilUnlock),
            423,
            "locked_until_unlock",
            None,
        ),
        (Error::Otp(OtpError::NoCode), 401, "no_code", None),
        (Error::ApiKey(ApiKeyError::Unknown), 401, "unknown", None),
        (Error::ApiKey(ApiKeyError::Revoked), 401, "revoked", None),
        (
            Error::ApiKey(ApiKeyError::MissingScope("reports:read".into())),
            403,
            "insufficient_scope",
            None,
        ),
        (
            Error::ApiKey(ApiKeyError::BadSpec("name")),
            400,
            "bad_spec",
            None,
        ),
        (
            Error::ApiKey(ApiKeyError::TooManyKeys { max: 20 }),
            409,
            "too_many_keys",
            None,
        ),
        (
            Error::Totp(TotpError::Invalid { attempts_left: 0 }),
            401,
            "invalid",
            None,
        ),
        (Error::Totp(TotpError::Replayed), 401, "replayed", None),
        (Error::Totp(TotpError::Used), 401, "used", None),
        (
            Error::Totp(TotpError::NotEnrolled),
            409,
            "not_enrolled",
            None,
        ),
        (
            Error::Totp(TotpError::AlreadyEnrolled),
            409,
            "already_enrolled",
            None,
        ),
        (
            Error::Totp(TotpError::BadLabel("issuer")),
            400,
            "bad_label",
            None,
        ),
        (
            Error::Throttled {
                retry_after: Duration::from_secs(6),
            },
            429,
            "rate_limited",
            secs(6),
        ),
        (
            Error::RateLimited {
                retry_after: Duration::from_millis(1500),
            },
            429,
            "rate_limited",
            Some(Duration::from_millis(1500)),
        ),
        (Error::Limit(LimitError::BadKey), 500, "server_error", None),
    ];
    for (e, status, code, retry) in &table {
        assert_eq!(
            (e.status(), e.code(), e.retry_after()),
            (*status, *code, *retry),
            "{e:?}"
        );
        // Codes are fixed snake_case words, never built from input.
        assert!(
            e.code()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_'),
            "{e:?}"
        );
    }
}

#[test]
fn what_a_caller_sent_changes_no_answer() {
    // A scope name, a pepper id, a configuration message: different
    // inputs, one answer.
    for (a, b) in [
        (
            Error::ApiKey(ApiKeyError::MissingScope("a".into())),
            Error::ApiKey(ApiKeyError::MissingScope("secret-looking".into())),
        ),
        (
            Error::UnknownPepper { id: "a".into() },
            Error::UnknownPepper { id: "b".into() },
        ),
        (
            Error::Config("a".into()),
            Error::Config("password=hunter2".into()),
        ),
        (
            Error::InvalidInput("a".into()),
            Error::InvalidInput("subject=hunter2".into()),
        ),
    ] {
        assert_eq!((a.status(), a.code()), (b.status(), b.code()));
    }
}
