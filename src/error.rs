//! The crate's one error type.
//!
//! Messages are lower case and never contain a password, a token, a code or
//! a stored hash: errors end up in logs, and logs are read by more people
//! than credentials should be.

use std::fmt;
use std::time::Duration;

/// Everything that can go wrong in keyward.
///
/// Callers usually branch on a few variants ([`Error::PasswordMismatch`],
/// [`Error::Busy`]) and report the rest. New variants may be added in minor
/// releases.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The password does not match the stored hash.
    ///
    /// [`Passwords::verify_unknown_user`](crate::Passwords::verify_unknown_user)
    /// returns this too, so that an unknown account and a wrong password look
    /// the same to the caller's client.
    PasswordMismatch,
    /// The password is longer than the policy allows. Checked before any
    /// hashing work, so an attacker cannot make the server hash megabytes.
    PasswordTooLong {
        /// The policy's limit, in bytes.
        max_bytes: usize,
    },
    /// A new password is shorter than the policy's minimum.
    PasswordTooShort {
        /// The policy's minimum, in characters.
        min_chars: usize,
    },
    /// A stored hash string is malformed, unsupported, or outside the
    /// policy's bounds. Nothing was hashed.
    Hash(HashError),
    /// A stored hash names a pepper id that the key ring does not hold.
    UnknownPepper {
        /// The pepper id found in the hash (an id, not key material).
        id: String,
    },
    /// The concurrency cap for password hashing was full for longer than the
    /// policy's queue timeout, the memory an Argon2 hash declares could not
    /// be allocated, or a state-store operation lost its compare-and-swap
    /// `max_retries` times in a row. Shed the request (for example with
    /// HTTP 429).
    Busy,
    /// The subject is being erased ([`Keyward::erase`](crate::Keyward::erase)
    /// began and has not finished): nothing of it starts, refreshes or
    /// verifies until a run of the erase completes.
    Erasing,
    /// The operating system's random number generator failed.
    Rng,
    /// A policy or builder setting is invalid: a fault of the service's
    /// configuration (an HTTP service answers 500).
    Config(String),
    /// An argument of the call is invalid: a subject, a label, a name or
    /// metadata out of its bounds, most often taken from a request (an
    /// HTTP service answers 400). The message names the bound, never the
    /// value.
    InvalidInput(String),
    /// The key ring could not be read, parsed or written.
    Keyring(KeyringError),
    /// An access token was rejected.
    Jwt(JwtError),
    /// A refresh token was refused.
    Session(SessionError),
    /// The state store failed. Nothing was issued or accepted (fail closed).
    Store(StoreError),
    /// An opaque token, a token prefix or a stored token digest is
    /// malformed. The message names the problem, never the token.
    Token(TokenError),
    /// A one-time code was refused, or could not be issued.
    Otp(OtpError),
    /// An API key was refused, or a key operation could not be done.
    ApiKey(ApiKeyError),
    /// A second-factor code or recovery code was refused, or a factor
    /// operation could not be done.
    Totp(TotpError),
    /// An in-process rate limit ([`Throttle`](crate::throttle::Throttle))
    /// refused the call. Nothing was done; try again after `retry_after`.
    Throttled {
        /// How long until the key is allowed again, in whole seconds
        /// (rounded up, at least one).
        retry_after: Duration,
    },
    /// A rate limit kept in the store ([`Limits`](crate::limit::Limits))
    /// refused the request: exact across every process sharing the store.
    /// Nothing was counted; try again after `retry_after`.
    RateLimited {
        /// How long until a request of the same cost would be allowed,
        /// rounded up to the millisecond.
        retry_after: Duration,
    },
    /// A rate limit or a check of it is invalid.
    Limit(LimitError),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PasswordMismatch => f.write_str("password does not match"),
            Self::PasswordTooLong { max_bytes } => {
                write!(f, "password is longer than {max_bytes} bytes")
            }
            Self::PasswordTooShort { min_chars } => {
                write!(f, "password is shorter than {min_chars} characters")
            }
            Self::Hash(e) => write!(f, "invalid password hash: {e}"),
            Self::UnknownPepper { id } => {
                write!(
                    f,
                    "password hash uses pepper id {id:?}, which the key ring does not hold"
                )
            }
            Self::Busy => f.write_str(
                "at capacity (password hashing, or contention on the state store); try again later",
            ),
            Self::Erasing => f.write_str("the subject is being erased"),
            Self::Rng => f.write_str("the operating system random number generator failed"),
            Self::Config(msg) => write!(f, "invalid configuration: {msg}"),
            Self::InvalidInput(msg) => write!(f, "invalid input: {msg}"),
            Self::Keyring(e) => write!(f, "key ring: {e}"),
            Self::Jwt(e) => write!(f, "access token rejected: {e}"),
            Self::Session(e) => write!(f, "{e}"),
            Self::Store(e) => write!(f, "{e}"),
            Self::Token(e) => write!(f, "token: {e}"),
            Self::Otp(e) => write!(f, "{e}"),
            Self::ApiKey(e) => write!(f, "{e}"),
            Self::Totp(e) => write!(f, "{e}"),
            Self::Throttled { retry_after } => write!(
                f,
                "too many requests; retry after {} s",
                retry_after.as_secs()
            ),
            Self::RateLimited { retry_after } => write!(
                f,
                "rate limited; retry after {} ms",
                retry_after.as_millis()
            ),
            Self::Limit(e) => write!(f, "{e}"),
        }
    }
}

/// How an HTTP API answers an [`Error`]: a status, a stable snake_case
/// code for the body, and a wait for `Retry-After`. Nothing here holds a
/// secret or a caller's input, so an answer built from it is safe to send
/// and to log.
///
/// ```
/// use keyward::{Error, OtpError};
/// use std::time::Duration;
///
/// let locked = Error::Otp(OtpError::Locked { retry_after: Duration::from_secs(60) });
/// assert_eq!((locked.status(), locked.code()), (423, "locked"));
/// assert_eq!(locked.retry_after(), Some(Duration::from_secs(60)));
/// let mismatch = Error::PasswordMismatch;
/// assert_eq!((mismatch.status(), mismatch.code()), (401, "invalid_credentials"));
/// ```
impl Error {
    /// The HTTP status a client should see:
    ///
    /// - 400 for a request the caller must change (a password outside the
    ///   policy, a subject or metadata out of its bounds, a bad key spec or
    ///   label);
    /// - 401 for a credential refused (a wrong password, code or recovery
    ///   code; a bad, expired or revoked token, key or challenge; a session
    ///   without the second factor a route asks for);
    /// - 403 for an API key without a scope the route asks for;
    /// - 404 for a session id that is not the caller's;
    /// - 409 for a request in conflict with the state (a factor enrolled
    ///   already, a subject being erased, too many keys);
    /// - 423 for a locked subject;
    /// - 429 for a rate limit;
    /// - 503 when the store is unreachable or the service is shedding load;
    /// - 500 for the rest: a configuration, key ring, stored-hash or store
    ///   error, which is the operator's to fix.
    #[must_use]
    pub fn status(&self) -> u16 {
        match self {
            Self::PasswordTooLong { .. } | Self::PasswordTooShort { .. } => 400,
            Self::InvalidInput(_) => 400,
            Self::PasswordMismatch | Self::Token(_) => 401,
            Self::Jwt(_) => 401,
            Self::Session(SessionError::Unknown) => 404,
            Self::Session(_) => 401,
            Self::Otp(OtpError::Locked { .. } | OtpError::LockedUntilUnlock) => 423,
            Self::Otp(_) => 401,
            Self::ApiKey(ApiKeyError::MissingScope(_)) => 403,
            Self::ApiKey(ApiKeyError::BadSpec(_)) => 400,
            Self::ApiKey(ApiKeyError::TooManyKeys { .. }) => 409,
            Self::ApiKey(_) => 401,
            Self::Totp(TotpError::BadLabel(_)) => 400,
            Self::Totp(
                TotpError::NotEnrolled | TotpError::AlreadyEnrolled | TotpError::Expired,
            ) => 409,
            Self::Totp(_) => 401,
            Self::Erasing => 409,
            Self::Throttled { .. } | Self::RateLimited { .. } => 429,
            Self::Busy | Self::Store(StoreError::Unavailable(_)) => 503,
            Self::Hash(_)
            | Self::UnknownPepper { .. }
            | Self::Rng
            | Self::Config(_)
            | Self::Keyring(_)
            | Self::Store(_)
            | Self::Limit(_) => 500,
        }
    }

    /// The stable snake_case code for the answer's body: `invalid_token`
    /// for every refused access token or malformed bearer,
    /// `insufficient_user_authentication` (RFC 9470) for a session without
    /// a second factor, `insufficient_scope` (RFC 6750) for a missing
    /// scope, the refusal's own reason for codes, sessions, keys and
    /// second factors (as the CLI prints it), `rate_limited`, `busy`,
    /// `unavailable`, and `server_error` for every 500.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::PasswordMismatch => "invalid_credentials",
            Self::PasswordTooLong { .. } => "password_too_long",
            Self::PasswordTooShort { .. } => "password_too_short",
            Self::InvalidInput(_) => "invalid_request",
            Self::Token(_) => "invalid_token",
            Self::Jwt(JwtError::MfaRequired) => "insufficient_user_authentication",
            Self::Jwt(_) => "invalid_token",
            Self::Session(e) => e.reason(),
            Self::Otp(e) => e.reason(),
            Self::ApiKey(ApiKeyError::MissingScope(_)) => "insufficient_scope",
            Self::ApiKey(e) => e.reason(),
            Self::Totp(e) => e.reason(),
            Self::Erasing => "erasing",
            Self::Throttled { .. } | Self::RateLimited { .. } => "rate_limited",
            Self::Busy => "busy",
            Self::Store(StoreError::Unavailable(_)) => "unavailable",
            Self::Hash(_)
            | Self::UnknownPepper { .. }
            | Self::Rng
            | Self::Config(_)
            | Self::Keyring(_)
            | Self::Store(_)
            | Self::Limit(_) => "server_error",
        }
    }

    /// How long the client should wait before trying again, for
    /// `Retry-After`: the rate limit's or the lock's own wait, one second
    /// when the service is shedding load, `None` otherwise (a lock that
    /// waits for an operator included).
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Throttled { retry_after }
            | Self::RateLimited { retry_after }
            | Self::Otp(OtpError::Locked { retry_after }) => Some(*retry_after),
            Self::Busy => Some(Duration::from_secs(1)),
            _ => None,
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Hash(e) => Some(e),
            Self::Keyring(e) => Some(e),
            Self::Jwt(e) => Some(e),
            Self::Session(e) => Some(e),
            Self::Store(e) => Some(e),
            Self::Token(e) => Some(e),
            Self::Otp(e) => Some(e),
            Self::ApiKey(e) => Some(e),
            Self::Totp(e) => Some(e),
            Self::Limit(e) => Some(e),
            _ => None,
        }
    }
}

impl From<HashError> for Error {
    fn from(e: HashError) -> Self {
        Self::Hash(e)
    }
}

impl From<SessionError> for Error {
    fn from(e: SessionError) -> Self {
        Self::Session(e)
    }
}

impl From<OtpError> for Error {
    fn from(e: OtpError) -> Self {
        Self::Otp(e)
    }
}

impl From<ApiKeyError> for Error {
    fn from(e: ApiKeyError) -> Self {
        Self::ApiKey(e)
    }
}

impl From<TotpError> for Error {
    fn from(e: TotpError) -> Self {
        Self::Totp(e)
    }
}

impl From<LimitError> for Error {
    fn from(e: LimitError) -> Self {
        Self::Limit(e)
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

impl From<JwtError> for Error {
    fn from(e: JwtError) -> Self {
        Self::Jwt(e)
    }
}

impl From<KeyringError> for Error {
    fn from(e: KeyringError) -> Self {
        Self::Keyring(e)
    }
}

impl From<TokenError> for Error {
    fn from(e: TokenError) -> Self {
        Self::Token(e)
    }
}

/// Why a stored password hash was rejected before any hashing work.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HashError {
    /// The string matches no supported scheme.
    UnknownScheme,
    /// The scheme is recognised but turned off by the policy.
    SchemeDisabled(&'static str),
    /// The string does not have the scheme's structure (fields, separators).
    Structure(&'static str),
    /// A required parameter is missing, for example `i=` or `l=` in a PHC
    /// string. keyward never defaults a missing cost parameter.
    MissingParam(&'static str),
    /// A parameter is repeated, unknown or not a valid value.
    BadParam(&'static str),
    /// The iteration count is outside the policy's verification bounds:
    /// below the floor, or asking for more work (iterations × output
    /// blocks) than the policy's ceiling.
    Iterations {
        /// The count found in the hash.
        found: u64,
        /// The policy's lower bound.
        min: u32,
        /// The highest iteration count for this hash's shape: the policy's
        /// ceiling divided by the hash's output blocks.
        max: u32,
    },
    /// The salt length is outside the accepted range.
    SaltLength {
        /// The decoded salt length in bytes.
        found: usize,
        /// The smallest accepted length.
        min: usize,
        /// The largest accepted length.
        max: usize,
    },
    /// The hash (derived key) length is outside the accepted range, or does
    /// not agree with the declared length.
    OutputLength {
        /// The decoded or declared length in bytes.
        found: usize,
        /// The smallest accepted length.
        min: usize,
        /// The largest accepted length.
        max: usize,
    },
    /// A field is not valid in its encoding (base64, hex, digits).
    Encoding(&'static str),
    /// A cost parameter other than a PBKDF2 iteration count is outside its
    /// bound: bcrypt's `cost`, or Argon2's `m` (KiB), `t` or `p`.
    Cost {
        /// The parameter's name as the hash string writes it.
        param: &'static str,
        /// The value found in the hash.
        found: u64,
        /// The smallest accepted value.
        min: u64,
        /// The largest accepted value.
        max: u64,
    },
    /// The string is of a known scheme's variant that keyward does not
    /// verify (bcrypt's `$2x$` and `$2$`).
    Unsupported(&'static str),
}

impl fmt::Display for HashError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownScheme => f.write_str("the string matches no supported scheme"),
            Self::SchemeDisabled(s) => write!(f, "scheme {s} is disabled by the policy"),
            Self::Structure(what) => write!(f, "malformed structure: {what}"),
            Self::MissingParam(p) => write!(f, "required parameter {p} is missing"),
            Self::BadParam(p) => write!(f, "parameter {p} is invalid"),
            Self::Iterations { found, min, max } => {
                write!(
                    f,
                    "iteration count {found} is outside the accepted range {min}..={max}"
                )
            }
            Self::SaltLength { found, min, max } => {
                write!(
                    f,
                    "salt of {found} bytes is outside the accepted range {min}..={max}"
                )
            }
            Self::OutputLength { found, min, max } => {
                write!(
                    f,
                    "hash of {found} bytes is outside the accepted range {min}..={max}"
                )
            }
            Self::Encoding(what) => write!(f, "{what} is not validly encoded"),
            Self::Cost {
                param,
                found,
                min,
                max,
            } => write!(
                f,
                "parameter {param} = {found} is outside the accepted range {min}..={max}"
            ),
            Self::Unsupported(what) => write!(f, "{what} is not supported"),
        }
    }
}

impl std::error::Error for HashError {}

/// Why a key ring could not be used.
#[derive(Debug)]
#[non_exhaustive]
pub enum KeyringError {
    /// Reading or writing the file failed.
    Io(std::io::Error),
    /// The file already exists; keyward never overwrites a key ring.
    Exists,
    /// The contents are not a valid key ring.
    Format(String),
}

impl fmt::Display for KeyringError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io(e) => write!(f, "{e}"),
            Self::Exists => f.write_str("file already exists; refusing to overwrite"),
            Self::Format(msg) => write!(f, "invalid format: {msg}"),
        }
    }
}

impl std::error::Error for KeyringError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// Why an opaque token (or its prefix, or a stored digest) was rejected.
///
/// The checks run in this order, all before any hashing: length, separators,
/// prefix, characters, checksum. None of them needs a database lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenError {
    /// The prefix is not 1 to 20 characters of `a-z`, `0-9` and `_`.
    BadPrefix,
    /// The token is too short or too long to hold a prefix, an id, a
    /// secret and a checksum.
    BadLength,
    /// The `_` separators around the id are missing or misplaced.
    BadSeparator,
    /// The id, secret or checksum holds a character outside base62.
    BadCharacter,
    /// The checksum does not match: a typo, or a truncated or altered token.
    BadChecksum,
    /// A stored digest is not 64 hexadecimal characters.
    BadDigest,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BadPrefix => "the prefix must be 1 to 20 characters of a-z, 0-9 and _",
            Self::BadLength => "wrong length for a token",
            Self::BadSeparator => "missing _ separators around the id",
            Self::BadCharacter => "a non-base62 character in the id, secret or checksum",
            Self::BadChecksum => "the checksum does not match (a typo or an altered token)",
            Self::BadDigest => "a digest must be 64 hexadecimal characters",
        })
    }
}

impl std::error::Error for TokenError {}

// ---- JwtError: re-exported by `jwt`. ----

/// Why an access token was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JwtError {
    /// Not a compact JWS: wrong number of segments, bad base64url, a header
    /// that is not a JSON object, an unsupported `crit`, or too long.
    Malformed,
    /// A required claim is missing.
    MissingClaim(&'static str),
    /// A claim has the wrong JSON type or an empty value.
    InvalidClaim(&'static str),
    /// `exp` plus the leeway has passed.
    Expired,
    /// `nbf` or `iat` is further in the future than the leeway.
    NotYetValid,
    /// The signature does not verify under the key's pinned algorithm, or
    /// the header's `alg` is not that algorithm.
    BadSignature,
    /// `aud` does not contain this service's audience.
    WrongAudience,
    /// `iss` is not this service's issuer.
    WrongIssuer,
    /// The header's `typ` is not `at+jwt`.
    WrongType,
    /// No key in the ring has the header's `kid` (or it has none).
    UnknownKey,
    /// The token is valid, but its session was not started with a second
    /// factor (`amr` has no `mfa`): [`AccessClaims::require_mfa`](crate::AccessClaims::require_mfa).
    MfaRequired,
}

impl fmt::Display for JwtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed => f.write_str("token is not a well-formed compact JWS"),
            Self::MissingClaim(c) => write!(f, "required claim {c} is missing"),
            Self::InvalidClaim(c) => write!(f, "claim {c} has the wrong type or an empty value"),
            Self::Expired => f.write_str("token has expired"),
            Self::NotYetValid => f.write_str("token is not valid yet"),
            Self::BadSignature => f.write_str("signature does not verify"),
            Self::WrongAudience => f.write_str("token is for another audience"),
            Self::WrongIssuer => f.write_str("token is from another issuer"),
            Self::WrongType => f.write_str("token type is not at+jwt"),
            Self::UnknownKey => f.write_str("token is signed by an unknown key"),
            Self::MfaRequired => f.write_str("a second factor is required"),
        }
    }
}

impl std::error::Error for JwtError {}

// ---- SessionError: re-exported by `session`. ----

/// Why a refresh token was refused. Callers branch on these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionError {
    /// A spent token was presented outside the grace window: the whole
    /// family is now revoked.
    Reused,
    /// The family passed its idle or absolute lifetime.
    Expired,
    /// The family was revoked (logout, reuse, or revoke-all).
    Revoked,
    /// Not a refresh token keyward issued: bad shape or bad MAC. Nothing
    /// was changed.
    Invalid,
    /// No session of that id belongs to the subject (a session id of
    /// another subject, or one no longer stored).
    Unknown,
    /// Not a live MFA challenge: one keyward did not issue, or one expired
    /// or used. The client logs in again.
    ChallengeInvalid,
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Reused => f.write_str("refresh token reused; the session was revoked"),
            Self::Expired => f.write_str("session expired"),
            Self::Revoked => f.write_str("session revoked"),
            Self::Invalid => f.write_str("not a valid refresh token"),
            Self::Unknown => f.write_str("no such session for this subject"),
            Self::ChallengeInvalid => {
                f.write_str("not a live MFA challenge (unknown, expired or used); log in again")
            }
        }
    }
}

impl std::error::Error for SessionError {}

// ---- StoreError: re-exported by `store`. ----

/// Why a store operation failed. Every failure fails closed: the service
/// returns the error, never a success or a skipped check.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// The key is empty, too long, or has a character outside
    /// `[A-Za-z0-9:_.-]`.
    BadKey,
    /// The value is larger than
    /// [`MAX_VALUE_LEN`](crate::store::MAX_VALUE_LEN) (64 KiB).
    ValueTooLarge,
    /// The TTL is zero or longer than [`MAX_TTL`](crate::store::MAX_TTL).
    BadTtl,
    /// The backend could not be reached or failed.
    Unavailable(String),
    /// A stored row could not be read back.
    Corrupt(&'static str),
    /// [`store::open`](crate::store::open) was given a URL it cannot open:
    /// an unknown scheme, a backend this build leaves out, or no path. The
    /// message never repeats the URL, which may hold a password.
    BadUrl(String),
    /// A [`commit`](crate::store::Store::commit) that no backend may run:
    /// no operations, more than
    /// [`MAX_COMMIT_OPS`](crate::store::MAX_COMMIT_OPS), or one key named
    /// twice.
    BadCommit(&'static str),
    /// A store built on the application's own pool (`from_pool`) whose
    /// connections are set up against keyward's guarantees: a PostgreSQL
    /// pool not at READ COMMITTED, a SQLite pool not in WAL mode with
    /// `synchronous=FULL`. A mistake to fix in the code, not an outage to
    /// retry; the message names the setting that fixes it.
    Misconfigured(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadKey => f.write_str("invalid store key"),
            // 64 KiB is `store::MAX_VALUE_LEN`; a test there keeps the two in step.
            Self::ValueTooLarge => f.write_str("value larger than 65536 bytes"),
            Self::BadTtl => f.write_str("ttl must be between 1 ms and 36525 days"),
            Self::Unavailable(msg) => write!(f, "store unavailable: {msg}"),
            Self::Corrupt(what) => write!(f, "store returned a corrupt record: {what}"),
            Self::BadUrl(msg) => write!(f, "bad store URL: {msg}"),
            Self::BadCommit(what) => write!(f, "invalid store commit: {what}"),
            Self::Misconfigured(msg) => write!(f, "store misconfigured: {msg}"),
        }
    }
}

impl std::error::Error for StoreError {}

// ---- OtpError: re-exported by `otp`. ----

/// Why a code was refused or not issued. Callers branch on these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum OtpError {
    /// The code is wrong. `attempts_left` more wrong guesses are allowed
    /// before a lock or before the code is used up; 0 means this failure
    /// locked the subject or used up the code (issue a new one).
    Invalid {
        /// Wrong guesses left before the subject is locked or the code is
        /// used up, whichever comes first.
        attempts_left: u32,
    },
    /// Too many failures: the subject is locked, and every code is refused
    /// (even the right one) and none is issued until `retry_after` has
    /// passed.
    Locked {
        /// Time until the lock ends, in whole seconds.
        retry_after: Duration,
    },
    /// Too many consecutive failures: the subject stays locked until an
    /// operator calls [`Otp::unlock`](crate::otp::Otp::unlock).
    LockedUntilUnlock,
    /// The code for this purpose has expired; issue a new one.
    Expired,
    /// No code is pending for this subject and purpose (never issued,
    /// already used, or discarded by a lock). Not counted as a failure:
    /// there is nothing to guess.
    NoCode,
    /// [`Sessions::start_with_otp`](crate::session::Sessions::start_with_otp)
    /// was given a proof for a purpose other than
    /// [`Purpose::Login`](crate::otp::Purpose::Login).
    NotForLogin,
}

impl OtpError {
    /// The CLI's and HTTP API's name for it.
    #[must_use]
    pub fn reason(self) -> &'static str {
        match self {
            Self::Invalid { .. } => "invalid",
            Self::Locked { .. } => "locked",
            Self::LockedUntilUnlock => "locked_until_unlock",
            Self::Expired => "expired",
            Self::NoCode => "no_code",
            Self::NotForLogin => "not_for_login",
        }
    }
}

impl fmt::Display for OtpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid { attempts_left } => write!(
                f,
                "wrong one-time code; {attempts_left} attempts left before a lockout"
            ),
            Self::Locked { retry_after } => write!(
                f,
                "too many wrong one-time codes; locked for {} s",
                retry_after.as_secs()
            ),
            Self::LockedUntilUnlock => {
                f.write_str("too many wrong one-time codes; locked until an operator unlocks")
            }
            Self::Expired => f.write_str("one-time code expired"),
            Self::NoCode => f.write_str("no one-time code pending"),
            Self::NotForLogin => f.write_str("the one-time code was not issued for login"),
        }
    }
}

impl std::error::Error for OtpError {}

// ---- TotpError: re-exported by `totp`. ----

/// Why a second-factor code or recovery code was refused, or a factor
/// operation was not done. A lock is reported as
/// [`OtpError::Locked`] or [`OtpError::LockedUntilUnlock`]: codes, TOTP
/// codes and recovery codes share one lockout. Callers branch on these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TotpError {
    /// The code is wrong, or is no recovery code of the subject's.
    /// `attempts_left` more wrong guesses are allowed before a lock.
    Invalid {
        /// Wrong guesses left before the subject is locked.
        attempts_left: u32,
    },
    /// The code's time step is at or before the last accepted one: it was
    /// used already. Not counted as a failure.
    Replayed,
    /// The recovery code was used already. Not counted as a failure.
    Used,
    /// The subject has no confirmed factor (none enrolled, or its
    /// enrollment was never confirmed).
    NotEnrolled,
    /// The subject has a confirmed factor already: disable it first.
    AlreadyEnrolled,
    /// The enrollment was not confirmed in time; enroll again.
    Expired,
    /// An issuer or account label that an authenticator app cannot show:
    /// empty, over 256 bytes, or with a ':' or a control character.
    BadLabel(&'static str),
}

impl TotpError {
    /// The CLI's and HTTP API's name for it.
    #[must_use]
    pub fn reason(self) -> &'static str {
        match self {
            Self::Invalid { .. } => "invalid",
            Self::Replayed => "replayed",
            Self::Used => "used",
            Self::NotEnrolled => "not_enrolled",
            Self::AlreadyEnrolled => "already_enrolled",
            Self::Expired => "expired",
            Self::BadLabel(_) => "bad_label",
        }
    }
}

impl fmt::Display for TotpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid { attempts_left } => write!(
                f,
                "wrong second-factor code; {attempts_left} attempts left before a lockout"
            ),
            Self::Replayed => f.write_str("this second-factor code was used already"),
            Self::Used => f.write_str("this recovery code was used already"),
            Self::NotEnrolled => f.write_str("no second factor is enrolled"),
            Self::AlreadyEnrolled => f.write_str("a second factor is enrolled already"),
            Self::Expired => f.write_str("the second-factor enrollment expired; enroll again"),
            Self::BadLabel(what) => write!(
                f,
                "invalid {what}: 1 to 256 bytes, with no ':' and no control character"
            ),
        }
    }
}

impl std::error::Error for TotpError {}

// ---- ApiKeyError: re-exported by `api_key`. ----

/// Why an API key was refused, or a key operation was not done. Callers
/// branch on these.
///
/// A verify names `Revoked`, `Expired` or `Disabled` only to a caller who
/// presented that key's secret: a guess at a known id gets `Unknown`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiKeyError {
    /// No such key: never issued, a wrong secret for the id, a secret two
    /// rolls old, or a revoked or expired key no longer remembered.
    Unknown,
    /// The key was revoked. Final.
    Revoked,
    /// The key passed its `expires_at`, or the secret was rolled and its
    /// overlap has ended.
    Expired,
    /// The key is disabled; [`enable`](crate::api_key::ApiKeys::enable)
    /// makes it work again.
    Disabled,
    /// The owner already has `max` live keys.
    TooManyKeys {
        /// The policy's per-owner cap.
        max: u32,
    },
    /// A verified key lacks the scope a route requires.
    MissingScope(String),
    /// A key spec (owner, name, scopes, metadata, prefix, expiry) is
    /// invalid; the message names the field, never a value.
    BadSpec(&'static str),
}

impl ApiKeyError {
    /// The CLI's and HTTP API's name for it.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
            Self::Disabled => "disabled",
            Self::TooManyKeys { .. } => "too_many_keys",
            Self::MissingScope(_) => "missing_scope",
            Self::BadSpec(_) => "bad_spec",
        }
    }
}

impl fmt::Display for ApiKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown => f.write_str("unknown API key"),
            Self::Revoked => f.write_str("API key revoked"),
            Self::Expired => f.write_str("API key expired"),
            Self::Disabled => f.write_str("API key disabled"),
            Self::TooManyKeys { max } => {
                write!(f, "the owner already has {max} live API keys")
            }
            Self::MissingScope(scope) => write!(f, "API key lacks the scope {scope:?}"),
            Self::BadSpec(what) => write!(f, "invalid API key spec: {what}"),
        }
    }
}

impl std::error::Error for ApiKeyError {}

// ---- LimitError: re-exported by `limit`. ----

/// Why a rate-limit check could not be made. A refusal by the limit itself
/// is [`Error::RateLimited`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LimitError {
    /// The limit's definition is invalid; the message says what.
    BadLimit(&'static str),
    /// The cost is 0, or above the limit's burst (it could never be
    /// allowed).
    BadCost {
        /// The limit's burst.
        burst: u32,
    },
    /// The key is empty or longer than 1,024 bytes.
    BadKey,
}

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadLimit(what) => write!(f, "invalid rate limit: {what}"),
            Self::BadCost { burst } => write!(f, "the cost must be 1 to the burst, {burst}"),
            Self::BadKey => f.write_str("a rate-limit key must be 1 to 1024 bytes"),
        }
    }
}

impl std::error::Error for LimitError {}
