#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod api_key;
mod audit;
#[cfg(feature = "axum")]
pub mod axum;
pub mod builder;
pub mod clock;
#[cfg(feature = "config")]
pub mod config;
mod erase;
mod error;
mod hex;
pub mod jwt;
pub mod keyring;
pub mod limit;
mod mac;
pub mod otp;
pub mod password;
mod random;
mod secret;
pub mod session;
pub mod store;
pub mod throttle;
pub mod token;
pub mod totp;

use std::marker::PhantomData;
use std::sync::Arc;

pub use api_key::{ApiKeyError, ApiKeyPolicy, ApiKeyVerified, ApiKeys, KeySpec};

pub use audit::AuditTag;
use builder::{NoKeys, NoStore, WithKeys, WithStore};
pub use clock::{Clock, SystemClock};
#[cfg(feature = "config")]
pub use config::{Config, ConfigError};
pub use erase::Erased;
pub use error::{Error, HashError, KeyringError, TokenError};
pub use jwt::{AccessClaims, AccessToken, Jwt, JwtError, JwtPolicy, SessionClaims};
pub use keyring::{JwtAlg, KeyRing};
pub use limit::{Allowance, Limit, LimitError, Limits};
pub use otp::{IssuedCode, Otp, OtpCode, OtpError, OtpPolicy, OtpVerified, Purpose};
pub use password::{HashInfo, PasswordPolicy, Passwords, Scheme, Verified};
#[allow(deprecated, reason = "the old name, kept for one release")]
pub use secret::Token;
pub use secret::{OpaqueToken, Password};
pub use session::{MfaChallenge, RefreshToken, SessionError, SessionPolicy, Sessions, TokenPair};
#[cfg(feature = "postgres")]
pub use store::PgStore;
#[cfg(feature = "redis")]
pub use store::RedisStore;
#[cfg(feature = "sqlite")]
pub use store::SqliteStore;
#[cfg(feature = "test-util")]
pub use store::testing;
pub use store::{MemoryStore, Store, StoreError};
pub use throttle::{Throttle, ThrottlePolicy, Throttles};
pub use token::{NewToken, ParsedToken, TokenDigest, Tokens};
pub use totp::{Recovered, SecondFactor, Totp, TotpError, TotpPolicy, TotpVerified};

/// The one value a backend keeps in its state: every keyward capability is
/// reached from it. Cheap to clone.
///
/// ```
/// use keyward::{Keyward, Password};
/// # fn main() -> Result<(), keyward::Error> {
/// let kw = Keyward::builder().build()?;
/// let stored = kw.passwords().hash(&Password::from("correct horse battery"))?;
/// kw.passwords().verify("user", &Password::from("correct horse battery"), &stored)?;
/// # Ok(()) }
/// ```
///
/// The mode `M` says what the builder was given. A builder given a key
/// ring, a store, an issuer and an audience builds a
/// `Keyward<`[`Complete`]`>`, whose
/// [`sessions`](Keyward::<Complete>::sessions),
/// [`otp`](Keyward::<Complete>::otp) and [`jwt`](Keyward::<Complete>::jwt)
/// cannot fail: a configuration mistake is reported once, by `build`, not
/// in every request. Any other builder (and
/// [`build_partial`](KeywardBuilder::build_partial)) builds a plain
/// `Keyward`, that is `Keyward<`[`Partial`]`>`, whose service accessors
/// return [`Error::Config`] for a service it was not given.
///
/// A complete `Keyward` works wherever a `Keyward` is taken:
/// [`Keyward::from`] turns one into the other at the cost of dropping a
/// reference count.
///
/// ```
/// # use keyward::{JwtAlg, KeyRing, Keyward, MemoryStore};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), keyward::Error> {
/// let kw = Keyward::builder()
///     .keys(KeyRing::generate(JwtAlg::EdDSA)?)
///     .store(MemoryStore::new())
///     .issuer("https://auth.example")
///     .audience("example-api")
///     .build()?; // Keyward<Complete>: checked here, once
/// let pair = kw.sessions().dangerous_start_without_proof("user-42").await?;
/// kw.sessions().authenticate(pair.access.unprotected_as_str())?;
///
/// fn takes_any(kw: impl Into<Keyward>) -> Keyward {
///     kw.into()
/// }
/// let plain: Keyward = takes_any(kw);
/// plain.sessions()?.revoke_all("user-42").await?;
/// # Ok(())
/// # }
/// ```
pub struct Keyward<M = Partial> {
    inner: Arc<Inner>,
    mode: M,
}

/// The mode of a [`Keyward`] that may lack a service: its service
/// accessors return `Result`, [`Error::Config`] for a service the builder
/// was not given. What [`build`](KeywardBuilder::build) makes from a
/// builder without a key ring or a store, and what
/// [`build_partial`](KeywardBuilder::build_partial) always makes.
///
/// A service of a partial `Keyward` is used through `?`:
///
/// ```compile_fail
/// # use keyward::{JwtAlg, KeyRing, Keyward, MemoryStore};
/// # async fn f() -> Result<(), keyward::Error> {
/// let kw = Keyward::builder()
///     .keys(KeyRing::generate(JwtAlg::EdDSA)?)
///     .store(MemoryStore::new())
///     .build_partial()?;
/// // `sessions()` is a `Result` here: no `start` without the `?`.
/// kw.sessions().dangerous_start_without_proof("user-42").await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Partial(());

/// The mode of a [`Keyward`] built with a key ring, a store, an issuer and
/// an audience: every service is there, and its accessors return it
/// directly. What [`build`](KeywardBuilder::build) makes from a builder
/// given [`keys`](KeywardBuilder::keys) and
/// [`store`](KeywardBuilder::store).
#[derive(Clone)]
pub struct Complete(Arc<Services>);

impl std::fmt::Debug for Partial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Partial").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Complete {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The services are the ones `Inner` prints; the keys stay out.
        f.debug_struct("Complete").finish_non_exhaustive()
    }
}

/// The services a complete [`Keyward`] has for certain: the same values
/// as in its `Inner`, without the `Option`s.
struct Services {
    jwt: Arc<Jwt>,
    sessions: Sessions,
    otp: Otp,
    totp: Totp,
    api_keys: ApiKeys,
    limits: Limits,
    salts: Arc<audit::Salts>,
}

impl<M: Clone> Clone for Keyward<M> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            mode: self.mode.clone(),
        }
    }
}

impl<M: std::fmt::Debug> std::fmt::Debug for Keyward<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyward")
            .field("inner", &self.inner)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// A complete `Keyward` works wherever a `Keyward` is taken: this keeps
/// the same services and drops only the proof that every one is there.
/// Where nothing else names the target, name it:
/// `let kw: Keyward = Keyward::from(complete);`.
impl From<Keyward<Complete>> for Keyward {
    fn from(kw: Keyward<Complete>) -> Self {
        Self {
            inner: kw.inner,
            mode: Partial(()),
        }
    }
}

#[derive(Debug)]
struct Inner {
    passwords: Passwords,
    tokens: Tokens,
    keys: Option<KeyRing>,
    jwt: Option<Arc<Jwt>>,
    sessions: Option<Sessions>,
    otp: Option<Otp>,
    totp: Option<Totp>,
    api_keys: Option<ApiKeys>,
    limits: Option<Limits>,
    throttles: Arc<Throttles>,
    salts: Option<Arc<audit::Salts>>,
}

impl Keyward {
    /// Starts a builder with the secure defaults of `SECURITY.md`.
    pub fn builder() -> KeywardBuilder {
        KeywardBuilder::default()
    }
}

impl<M> Keyward<M> {
    /// Password hashing and verification.
    #[must_use]
    pub fn passwords(&self) -> &Passwords {
        &self.inner.passwords
    }

    /// Opaque tokens (API keys and the like): mint, parse, digest. Plain
    /// SHA-256 digests unless the builder chose
    /// [`keyed_token_digests`](KeywardBuilder::keyed_token_digests).
    #[must_use]
    pub fn tokens(&self) -> &Tokens {
        &self.inner.tokens
    }

    /// The key ring, when one was given.
    #[must_use]
    pub fn keys(&self) -> Option<&KeyRing> {
        self.inner.keys.as_ref()
    }
}

impl Keyward {
    /// Access tokens: issue, verify, JWKS.
    ///
    /// # Errors
    /// [`Error::Config`] when the builder was given no key ring, issuer or
    /// audience.
    pub fn jwt(&self) -> Result<&Jwt, Error> {
        self.inner.jwt.as_deref().ok_or_else(|| {
            Error::Config("access tokens need a key ring, an issuer and an audience".into())
        })
    }

    /// Erases every record keyward keeps for `subject`: its session
    /// families and list, its API keys and their index, its pending codes
    /// and lockout state, and its own records. Needs sessions, one-time
    /// codes and API keys configured, so that every record is found.
    ///
    /// The first step marks the subject: from then until a run completes,
    /// no session of it refreshes, authenticates strictly or starts, no
    /// code is issued or accepted, no key is created, and the first 31 of
    /// its API keys are already gone (any others follow a commit later).
    /// Access tokens already issued stay valid until they expire (the
    /// access-token lifetime, 15 minutes by default) for
    /// [`Sessions::authenticate`], and are refused at once by
    /// [`Sessions::authenticate_strict`].
    ///
    /// Idempotent and resumable: interrupted anywhere, running it again
    /// finishes the job, and a run over a subject with nothing left
    /// reports zeros.
    ///
    /// ```
    /// # use keyward::{JwtAlg, KeyRing, Keyward, MemoryStore};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), keyward::Error> {
    /// let kw = Keyward::builder()
    ///     .store(MemoryStore::new())
    ///     .keys(KeyRing::generate(JwtAlg::EdDSA)?)
    ///     .issuer("https://auth.example")
    ///     .audience("example-api")
    ///     .build_partial()?;
    /// let pair = kw.sessions()?.dangerous_start_without_proof("user-42").await?;
    /// let erased = kw.erase("user-42").await?;
    /// assert_eq!(erased.sessions, 1);
    /// assert!(kw.sessions()?.refresh(pair.refresh.unprotected_as_str()).await.is_err());
    /// assert_eq!(kw.erase("user-42").await?, keyward::Erased::default());
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an empty subject or one over 1,024
    /// bytes; [`Error::Config`] when a service is not configured;
    /// [`Error::Store`] and [`Error::Busy`] (run it again).
    pub async fn erase(&self, subject: &str) -> Result<Erased, Error> {
        check_subject(subject)?;
        let salts = self.salts()?;
        erase::erase(
            subject,
            self.sessions()?,
            self.otp()?,
            self.totp()?,
            self.api_keys()?,
            salts,
        )
        .await
    }
}

impl<M> Keyward<M> {
    /// The tag that `subject`'s audit events carry (target
    /// `keyward::audit`), to find them in the logs; `None` when the subject
    /// has no salt: it was erased, or has had no session, code or key
    /// issued since its last one lapsed. One store read.
    ///
    /// ```
    /// # use keyward::{JwtAlg, KeyRing, Keyward, MemoryStore};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), keyward::Error> {
    /// let kw = Keyward::builder()
    ///     .store(MemoryStore::new())
    ///     .keys(KeyRing::generate(JwtAlg::EdDSA)?)
    ///     .issuer("https://auth.example")
    ///     .audience("example-api")
    ///     .build()?;
    /// assert_eq!(kw.audit_tag("user-42").await?, None);
    /// kw.sessions().dangerous_start_without_proof("user-42").await?;
    /// let tag = kw.audit_tag("user-42").await?.expect("a session was issued");
    /// assert_eq!(tag.to_hex().len(), 32);
    /// kw.erase("user-42").await?;
    /// assert_eq!(kw.audit_tag("user-42").await?, None);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an empty subject or one over 1,024
    /// bytes; [`Error::Config`] without a store; [`Error::Store`].
    pub async fn audit_tag(&self, subject: &str) -> Result<Option<AuditTag>, Error> {
        check_subject(subject)?;
        self.salts()?.tag(subject).await
    }

    fn salts(&self) -> Result<&audit::Salts, Error> {
        self.inner
            .salts
            .as_deref()
            .ok_or_else(|| Error::Config("audit tags need a store and a key ring".into()))
    }
}

impl Keyward {
    /// Sessions: start, refresh with rotation and reuse detection, revoke.
    ///
    /// # Errors
    /// [`Error::Config`] when the builder was given no store, or no key
    /// ring, issuer and audience.
    pub fn sessions(&self) -> Result<&Sessions, Error> {
        self.inner.sessions.as_ref().ok_or_else(|| {
            Error::Config("sessions need a store, a key ring, an issuer and an audience".into())
        })
    }

    /// One-time codes: issue, verify with lockouts, unlock.
    ///
    /// # Errors
    /// [`Error::Config`] when the builder was given no store or no key ring.
    pub fn otp(&self) -> Result<&Otp, Error> {
        self.inner
            .otp
            .as_ref()
            .ok_or_else(|| Error::Config("one-time codes need a store and a key ring".into()))
    }

    /// The second factor: TOTP enrollment, verification with a replay
    /// guard, and recovery codes.
    ///
    /// # Errors
    /// [`Error::Config`] when the builder was given no store or no key ring.
    pub fn totp(&self) -> Result<&Totp, Error> {
        self.inner
            .totp
            .as_ref()
            .ok_or_else(|| Error::Config("a second factor needs a store and a key ring".into()))
    }

    /// API keys: create, verify, roll, revoke, disable, list. Digests are
    /// keyed when the builder chose
    /// [`keyed_token_digests`](KeywardBuilder::keyed_token_digests).
    ///
    /// # Errors
    /// [`Error::Config`] when the builder was given no store or no key
    /// ring.
    pub fn api_keys(&self) -> Result<&ApiKeys, Error> {
        self.inner
            .api_keys
            .as_ref()
            .ok_or_else(|| Error::Config("API keys need a store and a key ring".into()))
    }

    /// Rate limits kept in the store, exact across every process that
    /// shares it: [`limit`].
    ///
    /// # Errors
    /// [`Error::Config`] when the builder was given no store or no key
    /// ring.
    pub fn limits(&self) -> Result<&Limits, Error> {
        self.inner
            .limits
            .as_ref()
            .ok_or_else(|| Error::Config("rate limits need a store and a key ring".into()))
    }
}

impl<M> Keyward<M> {
    /// The in-process throttles: password verifications per key, per
    /// process only (see [`throttle`]); the exact, shared tier is
    /// [`limits`](Self::limits).
    #[must_use]
    pub fn throttles(&self) -> &Throttles {
        &self.inner.throttles
    }

    /// The in-process throttles: [`throttles`](Self::throttles).
    #[deprecated(note = "renamed to `throttles`")]
    #[must_use]
    pub fn throttle(&self) -> &Throttles {
        self.throttles()
    }
}

/// The accessors of a complete `Keyward`: every service is there, so none
/// of them can fail.
impl Keyward<Complete> {
    /// Access tokens: issue, verify, JWKS.
    #[must_use]
    pub fn jwt(&self) -> &Jwt {
        &self.mode.0.jwt
    }

    /// Sessions: start, refresh with rotation and reuse detection, revoke.
    #[must_use]
    pub fn sessions(&self) -> &Sessions {
        &self.mode.0.sessions
    }

    /// One-time codes: issue, verify with lockouts, unlock.
    #[must_use]
    pub fn otp(&self) -> &Otp {
        &self.mode.0.otp
    }

    /// The second factor: TOTP enrollment, verification with a replay
    /// guard, and recovery codes.
    #[must_use]
    pub fn totp(&self) -> &Totp {
        &self.mode.0.totp
    }

    /// API keys: create, verify, roll, revoke, disable, list. Digests are
    /// keyed when the builder chose
    /// [`keyed_token_digests`](KeywardBuilder::keyed_token_digests).
    #[must_use]
    pub fn api_keys(&self) -> &ApiKeys {
        &self.mode.0.api_keys
    }

    /// Rate limits kept in the store, exact across every process that
    /// shares it: [`limit`].
    #[must_use]
    pub fn limits(&self) -> &Limits {
        &self.mode.0.limits
    }

    /// Erases every record keyward keeps for `subject`, as the erase of a
    /// partial [`Keyward`] does (its documentation says what and in which
    /// order); every service it needs is there.
    ///
    /// ```
    /// # use keyward::{JwtAlg, KeyRing, Keyward, MemoryStore};
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), keyward::Error> {
    /// let kw = Keyward::builder()
    ///     .store(MemoryStore::new())
    ///     .keys(KeyRing::generate(JwtAlg::EdDSA)?)
    ///     .issuer("https://auth.example")
    ///     .audience("example-api")
    ///     .build()?;
    /// let pair = kw.sessions().dangerous_start_without_proof("user-42").await?;
    /// assert_eq!(kw.erase("user-42").await?.sessions, 1);
    /// assert!(kw.sessions().refresh(pair.refresh.unprotected_as_str()).await.is_err());
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an empty subject or one over 1,024
    /// bytes; [`Error::Store`] and [`Error::Busy`] (run it again).
    pub async fn erase(&self, subject: &str) -> Result<Erased, Error> {
        check_subject(subject)?;
        let s = &*self.mode.0;
        erase::erase(subject, &s.sessions, &s.otp, &s.totp, &s.api_keys, &s.salts).await
    }
}

/// The subjects [`Keyward::erase`] and [`Keyward::audit_tag`] take.
fn check_subject(subject: &str) -> Result<(), Error> {
    if subject.is_empty() || subject.len() > 1024 {
        return Err(Error::InvalidInput(
            "subject must be 1 to 1024 bytes".into(),
        ));
    }
    Ok(())
}

/// Builds a [`Keyward`]. Every setting has a safe default; `build` checks
/// the combination once.
///
/// The parameters record whether the builder has a key ring ([`NoKeys`]
/// or [`WithKeys`]) and a store ([`NoStore`] or [`WithStore`]):
/// [`keys`](Self::keys) and [`store`](Self::store) change them. With
/// both, [`build`](Self::build) makes a `Keyward<`[`Complete`]`>`, whose
/// services need no `?`, and refuses a builder without an issuer and an
/// audience; without either, a plain [`Keyward`].
/// [`build_partial`](Self::build_partial) makes a plain `Keyward` from any
/// builder.
#[derive(Debug)]
#[must_use]
pub struct KeywardBuilder<K = NoKeys, S = NoStore> {
    settings: Settings,
    state: PhantomData<fn() -> (K, S)>,
}

/// A builder's settings, whatever its state.
#[derive(Debug)]
struct Settings {
    password_policy: PasswordPolicy,
    keys: Option<KeyRing>,
    issuer: Option<String>,
    audience: Option<String>,
    jwt_policy: Option<JwtPolicy>,
    session_policy: SessionPolicy,
    otp_policy: OtpPolicy,
    totp_policy: TotpPolicy,
    api_key_policy: ApiKeyPolicy,
    throttle_policy: ThrottlePolicy,
    store: Option<Arc<dyn Store>>,
    limits_store: Option<Arc<dyn Store>>,
    clock: Option<Arc<dyn Clock>>,
    keyed_token_digests: bool,
}

impl Default for KeywardBuilder {
    fn default() -> Self {
        Self {
            settings: Settings {
                password_policy: PasswordPolicy::default(),
                keys: None,
                issuer: None,
                audience: None,
                jwt_policy: None,
                session_policy: SessionPolicy::default(),
                otp_policy: OtpPolicy::default(),
                totp_policy: TotpPolicy::default(),
                api_key_policy: ApiKeyPolicy::default(),
                throttle_policy: ThrottlePolicy::default(),
                store: None,
                limits_store: None,
                clock: None,
                keyed_token_digests: false,
            },
            state: PhantomData,
        }
    }
}

impl<K, S> KeywardBuilder<K, S> {
    /// Sets the password policy.
    pub fn password_policy(mut self, policy: PasswordPolicy) -> Self {
        self.settings.password_policy = policy;
        self
    }

    /// Sets the key ring: peppers for passwords, and the keys later
    /// capabilities sign and MAC with.
    pub fn keys(mut self, keys: KeyRing) -> KeywardBuilder<WithKeys, S> {
        self.settings.keys = Some(keys);
        self.retype()
    }

    /// The `iss` of access tokens (with the default [`JwtPolicy`]).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.settings.issuer = Some(issuer.into());
        self
    }

    /// The `aud` of access tokens (with the default [`JwtPolicy`]).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.settings.audience = Some(audience.into());
        self
    }

    /// A full access-token policy; overrides `issuer` and `audience`.
    pub fn jwt_policy(mut self, policy: JwtPolicy) -> Self {
        self.settings.jwt_policy = Some(policy);
        self
    }

    /// The state store for sessions and one-time codes.
    pub fn store(mut self, store: impl Store + 'static) -> KeywardBuilder<K, WithStore> {
        self.settings.store = Some(Arc::new(store));
        self.retype()
    }

    /// The state store, shared with other owners.
    pub fn shared_store(mut self, store: Arc<dyn Store>) -> KeywardBuilder<K, WithStore> {
        self.settings.store = Some(store);
        self.retype()
    }

    /// Keeps the counts of the rate limits ([`limits`](Keyward::limits))
    /// in `store` instead of the state store. The one-time codes' send
    /// limit stays in the state store: a code and the send it takes are
    /// one commit.
    ///
    /// Limits write on every request they count, sessions only on a login
    /// or a refresh, so the two may live apart: limits in Redis beside
    /// sessions in PostgreSQL, say. Every replica must use the same limits
    /// store, or each counts apart. Erasing a subject touches no limit
    /// (their keys are keyed digests of the names the application
    /// counts).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use keyward::{JwtAlg, KeyRing, Keyward, MemoryStore};
    /// # fn main() -> Result<(), keyward::Error> {
    /// let limits_store = Arc::new(MemoryStore::new());
    /// let kw = Keyward::builder()
    ///     .keys(KeyRing::generate(JwtAlg::EdDSA)?)
    ///     .issuer("https://auth.example.com")
    ///     .audience("api")
    ///     .store(MemoryStore::new())
    ///     .limits_store(limits_store)
    ///     .build()?;
    /// # let _ = kw;
    /// # Ok(())
    /// # }
    /// ```
    pub fn limits_store(mut self, store: Arc<dyn Store>) -> Self {
        self.settings.limits_store = Some(store);
        self
    }

    /// The refresh-token policy.
    pub fn session_policy(mut self, policy: SessionPolicy) -> Self {
        self.settings.session_policy = policy;
        self
    }

    /// The one-time-code policy.
    pub fn otp_policy(mut self, policy: OtpPolicy) -> Self {
        self.settings.otp_policy = policy;
        self
    }

    /// The second-factor (TOTP) policy.
    pub fn totp_policy(mut self, policy: TotpPolicy) -> Self {
        self.settings.totp_policy = policy;
        self
    }

    /// The API-key policy.
    pub fn api_key_policy(mut self, policy: ApiKeyPolicy) -> Self {
        self.settings.api_key_policy = policy;
        self
    }

    /// The throttle policy.
    pub fn throttle_policy(mut self, policy: ThrottlePolicy) -> Self {
        self.settings.throttle_policy = policy;
        self
    }

    /// The clock; [`SystemClock`] by default. Tests use
    /// [`ManualClock`](clock::ManualClock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.settings.clock = Some(clock);
        self
    }

    /// Digests opaque tokens with HMAC-SHA256 under a key derived from the
    /// key ring's server MAC key, instead of plain SHA-256, so that a stolen
    /// digest table is useless without the key ring. Needs
    /// [`keys`](Self::keys). Rotating that key is described in `SECURITY.md`.
    pub fn keyed_token_digests(mut self) -> Self {
        self.settings.keyed_token_digests = true;
        self
    }

    /// Checks the settings and builds a plain [`Keyward`], whose service
    /// accessors return [`Error::Config`] for a service it lacks, whatever
    /// the builder was given: for code that builds with or without a store
    /// or an issuer, or a service that wants API keys and no sessions.
    ///
    /// # Errors
    /// [`Error::Config`] for an inconsistent policy (including an issuer
    /// without an audience, either without a key ring, or keyed token
    /// digests without a key ring), [`Error::Rng`] if the OS RNG fails.
    pub fn build_partial(self) -> Result<Keyward, Error> {
        Ok(Keyward {
            inner: Arc::new(self.build_inner()?),
            mode: Partial(()),
        })
    }

    /// The same settings in another state.
    fn retype<K2, S2>(self) -> KeywardBuilder<K2, S2> {
        KeywardBuilder {
            settings: self.settings,
            state: PhantomData,
        }
    }

    /// Checks the settings and builds the services it can.
    fn build_inner(self) -> Result<Inner, Error> {
        let settings = self.settings;
        if let Some(warning) = unoptimized_warning(env!("KEYWARD_OPT_LEVEL")) {
            static ONCE: std::sync::Once = std::sync::Once::new();
            ONCE.call_once(|| tracing::warn!(opt_level = env!("KEYWARD_OPT_LEVEL"), "{warning}"));
        }
        let clock = settings.clock.unwrap_or_else(|| Arc::new(SystemClock));
        let passwords = Passwords::new(settings.password_policy, settings.keys.as_ref())?;
        let jwt_policy = match (settings.jwt_policy, settings.issuer, settings.audience) {
            (Some(p), _, _) => Some(p),
            (None, Some(iss), Some(aud)) => Some(JwtPolicy::new(iss, aud)),
            (None, None, None) => None,
            (None, _, _) => {
                return Err(Error::Config(
                    "set both issuer and audience, or neither".into(),
                ));
            }
        };
        let jwt = match (jwt_policy, &settings.keys) {
            (Some(p), Some(keys)) => Some(Arc::new(Jwt::new(p, keys, Arc::clone(&clock))?)),
            (Some(_), None) => {
                return Err(Error::Config(
                    "access tokens need a key ring: call .keys()".into(),
                ));
            }
            (None, _) => None,
        };
        if (settings.store.is_some() || settings.limits_store.is_some()) && settings.keys.is_none()
        {
            return Err(Error::Config(
                "a store is for sessions, one-time codes, API keys and rate limits, which need a key ring: call .keys()"
                    .into(),
            ));
        }
        let sessions = match (&settings.store, &jwt, &settings.keys) {
            (Some(store), Some(jwt), Some(keys)) => Some(Sessions::new(
                Arc::clone(store),
                Arc::clone(jwt),
                keys.derive(keyring::SESSION_KEY_LABEL),
                settings.session_policy,
                Arc::clone(&clock),
                audit::Audit::new(keys),
            )?),
            _ => None,
        };
        settings.otp_policy.validate()?;
        let throttles = Arc::new(Throttles::new(&settings.throttle_policy, &clock)?);
        let limits_store = settings.limits_store.as_ref().or(settings.store.as_ref());
        let limits = match (limits_store, &settings.keys) {
            (Some(store), Some(keys)) => Some(Limits::new(
                Arc::clone(store),
                Arc::clone(&clock),
                keys.derive(keyring::LIMIT_KEY_LABEL),
                store::DEFAULT_MAX_RETRIES,
            )),
            _ => None,
        };
        let code_send = settings.throttle_policy.code_send_limit()?;
        let otp = match (&settings.store, &settings.keys, &limits) {
            (Some(store), Some(keys), Some(limits)) => Some(Otp::new(
                Arc::clone(store),
                keys.derive(keyring::OTP_KEY_LABEL),
                settings.otp_policy,
                Arc::clone(&clock),
                limits.clone(),
                code_send,
                audit::Audit::new(keys),
            )?),
            _ => None,
        };
        settings.totp_policy.validate()?;
        let totp = match (&otp, &settings.keys) {
            (Some(otp), Some(keys)) => Some(Totp::new(otp.clone(), keys, settings.totp_policy)?),
            _ => None,
        };
        let tokens = match (settings.keyed_token_digests, settings.keys.as_ref()) {
            (false, _) => Tokens::plain(),
            (true, Some(keys)) => Tokens::keyed(keys),
            (true, None) => {
                return Err(Error::Config(
                    "keyed token digests need a key ring (set keys)".to_owned(),
                ));
            }
        };
        settings.api_key_policy.validate()?;
        let api_keys = match (&settings.store, &settings.keys) {
            (Some(store), Some(keys)) => Some(ApiKeys::new(
                Arc::clone(store),
                Arc::clone(&clock),
                keys,
                settings.keyed_token_digests,
                settings.api_key_policy,
            )?),
            _ => None,
        };
        let salts = match (&settings.store, &settings.keys) {
            (Some(store), Some(keys)) => Some(Arc::new(audit::Salts::new(
                audit::Audit::new(keys),
                Arc::clone(store),
                Arc::clone(&clock),
            ))),
            _ => None,
        };
        Ok(Inner {
            passwords,
            tokens,
            keys: settings.keys,
            jwt,
            sessions,
            otp,
            totp,
            api_keys,
            limits,
            throttles,
            salts,
        })
    }
}

impl<S> KeywardBuilder<NoKeys, S> {
    /// Checks the settings and builds a plain [`Keyward`]: without a key
    /// ring it has password hashing and plain token digests, and its
    /// service accessors return [`Error::Config`].
    ///
    /// # Errors
    /// [`Error::Config`] for an inconsistent policy (including an issuer
    /// or a store without a key ring, or keyed token digests), [`Error::Rng`]
    /// if the OS RNG fails.
    pub fn build(self) -> Result<Keyward, Error> {
        self.build_partial()
    }
}

impl KeywardBuilder<WithKeys, NoStore> {
    /// Checks the settings and builds a plain [`Keyward`]: without a store
    /// it has password hashing, tokens and (given an issuer and an
    /// audience) access tokens, reached through
    /// [`jwt`](Keyward::<Partial>::jwt)`?`; sessions, codes and API keys
    /// return [`Error::Config`].
    ///
    /// # Errors
    /// [`Error::Config`] for an inconsistent policy (including an issuer
    /// without an audience), [`Error::Rng`] if the OS RNG fails.
    pub fn build(self) -> Result<Keyward, Error> {
        self.build_partial()
    }
}

impl KeywardBuilder<WithKeys, WithStore> {
    /// Checks the settings and builds a complete [`Keyward`]: every
    /// service is there, and its accessors need no `?`. Without an issuer
    /// and an audience (or a [`JwtPolicy`]) the sessions cannot be made,
    /// and this fails here, once, instead of in every request;
    /// [`build_partial`](Self::build_partial) builds without them.
    ///
    /// # Errors
    /// [`Error::Config`] without an issuer and an audience, and for an
    /// inconsistent policy; [`Error::Rng`] if the OS RNG fails.
    pub fn build(self) -> Result<Keyward<Complete>, Error> {
        if self.settings.jwt_policy.is_none()
            && (self.settings.issuer.is_none() || self.settings.audience.is_none())
        {
            return Err(Error::Config(
                "sessions need an issuer and an audience: call .issuer() and .audience() (or \
                 .jwt_policy()), or build_partial() for a keyward without sessions"
                    .into(),
            ));
        }
        let inner = self.build_inner()?;
        let services = match (
            &inner.jwt,
            &inner.sessions,
            &inner.otp,
            &inner.totp,
            &inner.api_keys,
            &inner.limits,
            &inner.salts,
        ) {
            (
                Some(jwt),
                Some(sessions),
                Some(otp),
                Some(totp),
                Some(api_keys),
                Some(limits),
                Some(salts),
            ) => Services {
                jwt: Arc::clone(jwt),
                sessions: sessions.clone(),
                otp: otp.clone(),
                totp: totp.clone(),
                api_keys: api_keys.clone(),
                limits: limits.clone(),
                salts: Arc::clone(salts),
            },
            // Not reached: a key ring, a store and a JWT policy make
            // every service.
            _ => {
                return Err(Error::Config(
                    "a complete keyward needs a key ring, a store, an issuer and an audience"
                        .into(),
                ));
            }
        };
        Ok(Keyward {
            inner: Arc::new(inner),
            mode: Complete(Arc::new(services)),
        })
    }
}

/// What to tell a developer whose build leaves keyward's PBKDF2 core at
/// `opt-level` `level` (Cargo's `OPT_LEVEL`), if anything. Only level 0
/// is slow enough to matter: there a login at the default 600,000
/// iterations takes seconds, and concurrent logins come back `Busy`. (The warning covers keyward's own
/// level; the README's set-up lines optimise its hash crates too.)
fn unoptimized_warning(level: &str) -> Option<&'static str> {
    (level == "0").then_some(
        "keyward is built unoptimised (opt-level 0): password hashing is many times slower \
         than in a release build, and logins may time out as Busy; add \
         [profile.dev.package.keyward] opt-level = 3 (and the same for sha2, sha1 and hmac) to \
         the application's Cargo.toml",
    )
}

#[cfg(test)]
mod build_tests {
    use super::unoptimized_warning;

    #[test]
    fn only_an_unoptimised_build_is_warned_about() {
        let warning = unoptimized_warning("0").expect("opt-level 0 is warned about");
        assert!(warning.contains("[profile.dev.package.keyward] opt-level = 3"));
        for level in ["1", "2", "3", "s", "z"] {
            assert_eq!(unoptimized_warning(level), None, "opt-level {level}");
        }
    }

    #[test]
    fn the_build_knows_its_level() {
        // This crate's own dev profile is opt-level 1, release 3.
        assert!(["1", "2", "3"].contains(&env!("KEYWARD_OPT_LEVEL")));
    }
}
