//! `keyward.toml`: the policies of a [`Keyward`] in a
//! file, as the `keyward` command reads it.
//!
//! Six optional tables, `[password]`, `[session]`, `[otp]`, `[jwt]`,
//! `[throttle]` and `[api_keys]`, whose keys are the library's policy
//! fields: every field of [`PasswordPolicy`], [`SessionPolicy`],
//! [`OtpPolicy`], [`JwtPolicy`], [`ThrottlePolicy`] and [`ApiKeyPolicy`]
//! has its key, under the field's name, with these exceptions:
//!
//! - `password.queue_timeout_ms` is [`PasswordPolicy::queue_timeout`] in
//!   whole milliseconds, and `password.disabled_schemes` a list of
//!   [scheme names](Scheme::name);
//! - the access-token lifetime is `session.access_ttl_secs`, beside the
//!   refresh-token lifetimes, and `[jwt]` has `issuer`, `audience` and
//!   `leeway_secs`.
//!
//! Each policy is also `Deserialize` on its own, with the same keys, for
//! a service that keeps its settings in its own file.
//!
//! Every key is optional and falls back to the secure default. An unknown
//! table or key is an error, never a silent default: a typo such as
//! `iteration = 2000` must not leave the default in force while the
//! operator believes it changed.
//!
//! Parsing checks the file's shape (tables, keys, types). The numbers
//! themselves are checked where the library checks them anyway: by the
//! policy constructors ([`Config::jwt_policy`]) and by
//! [`KeywardBuilder::build`](crate::KeywardBuilder::build), so that a file
//! can never allow what the builder refuses.
//!
//! ```
//! use keyward::config::Config;
//! use keyward::{Error, KeyRing, JwtAlg, MemoryStore};
//!
//! let config = Config::from_toml_str(
//!     r#"
//!     [password]
//!     iterations = 700000
//!     disabled_schemes = ["aspnet-identity-v2"]
//!
//!     [otp]
//!     max_attempts = 5
//!
//!     [jwt]
//!     issuer = "https://auth.example.com"
//!     audience = "api"
//!     "#,
//! )?;
//! assert_eq!(config.otp_policy().max_attempts, 5);
//!
//! let kw = config
//!     .builder()?
//!     .keys(KeyRing::generate(JwtAlg::EdDSA)?)
//!     .store(MemoryStore::new())
//!     .build()?;
//! assert_eq!(kw.passwords().policy().iterations, 700_000);
//! assert_eq!(kw.jwt().policy().issuer(), "https://auth.example.com");
//!
//! // A typo is an error that names the key, not a silent default.
//! let err = Config::from_toml_str("[password]\niteration = 700000\n").unwrap_err();
//! assert!(err.message().contains("unknown field `iteration`"));
//! // A value out of range parses, and the builder refuses it.
//! let config = Config::from_toml_str("[otp]\nmax_attempts = 0\n")?;
//! assert!(matches!(config.builder()?.build(), Err(Error::Config(_))));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

use crate::api_key::ApiKeyPolicy;
use crate::error::Error;
use crate::jwt::JwtPolicy;
use crate::otp::OtpPolicy;
use crate::password::{PasswordPolicy, Scheme};
use crate::session::SessionPolicy;
use crate::throttle::ThrottlePolicy;
use crate::{Keyward, KeywardBuilder};

/// The `iss` of access tokens when the file names none.
pub const DEFAULT_ISSUER: &str = "keyward";
/// The `aud` of access tokens when the file names none.
pub const DEFAULT_AUDIENCE: &str = "keyward";

/// A parsed `keyward.toml`. Every table and key is optional; what is
/// absent keeps the library's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Config {
    /// `[password]`.
    #[serde(default)]
    pub password: PasswordConfig,
    /// `[jwt]`.
    #[serde(default)]
    pub jwt: JwtConfig,
    /// `[session]`.
    #[serde(default)]
    pub session: SessionConfig,
    /// `[otp]`.
    #[serde(default)]
    pub otp: OtpConfig,
    /// `[throttle]`: the [`ThrottlePolicy`] itself, whose keys are its
    /// field names.
    #[serde(default)]
    pub throttle: ThrottlePolicy,
    /// `[api_keys]`: the [`ApiKeyPolicy`] itself, whose keys are its field
    /// names.
    #[serde(default)]
    pub api_keys: ApiKeyPolicy,
}

/// The `[password]` table: the fields of [`PasswordPolicy`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct PasswordConfig {
    /// [`PasswordPolicy::iterations`].
    pub iterations: Option<u32>,
    /// [`PasswordPolicy::min_iterations`].
    pub min_iterations: Option<u32>,
    /// [`PasswordPolicy::max_iterations`].
    pub max_iterations: Option<u32>,
    /// [`PasswordPolicy::min_length`].
    pub min_length: Option<usize>,
    /// [`PasswordPolicy::max_length`].
    pub max_length: Option<usize>,
    /// [`PasswordPolicy::max_in_flight`].
    pub max_in_flight: Option<usize>,
    /// [`PasswordPolicy::queue_timeout`], in whole milliseconds.
    pub queue_timeout_ms: Option<u64>,
    /// [`PasswordPolicy::disabled_schemes`], by [`Scheme::name`].
    pub disabled_schemes: Option<Vec<String>>,
    /// [`PasswordPolicy::upgrade_argon2`].
    pub upgrade_argon2: Option<bool>,
    /// [`PasswordPolicy::argon2_max_memory_kib`].
    pub argon2_max_memory_kib: Option<u32>,
}

/// The `[jwt]` table: the access-token policy ([`JwtPolicy`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct JwtConfig {
    /// [`JwtPolicy::issuer`]; [`DEFAULT_ISSUER`] when absent.
    pub issuer: Option<String>,
    /// [`JwtPolicy::audience`]; [`DEFAULT_AUDIENCE`] when absent.
    pub audience: Option<String>,
    /// [`JwtPolicy::leeway_secs`]: 0 to 30.
    pub leeway_secs: Option<u64>,
}

/// The `[session]` table: the fields of [`SessionPolicy`], and the access
/// token's lifetime.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SessionConfig {
    /// [`JwtPolicy::access_ttl_secs`]: 1 to 900.
    pub access_ttl_secs: Option<u64>,
    /// [`SessionPolicy::reuse_grace_secs`].
    pub reuse_grace_secs: Option<u64>,
    /// [`SessionPolicy::idle_ttl_secs`].
    pub idle_ttl_secs: Option<u64>,
    /// [`SessionPolicy::absolute_ttl_secs`].
    pub absolute_ttl_secs: Option<u64>,
    /// [`SessionPolicy::max_retries`].
    pub max_retries: Option<u32>,
}

/// The `[otp]` table: the fields of [`OtpPolicy`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OtpConfig {
    /// [`OtpPolicy::digits`].
    pub digits: Option<u32>,
    /// [`OtpPolicy::code_ttl_secs`].
    pub code_ttl_secs: Option<u64>,
    /// [`OtpPolicy::max_attempts`].
    pub max_attempts: Option<u32>,
    /// [`OtpPolicy::lockout_secs`].
    pub lockout_secs: Option<u64>,
    /// [`OtpPolicy::max_consecutive_failures`].
    pub max_consecutive_failures: Option<u32>,
    /// [`OtpPolicy::max_retries`].
    pub max_retries: Option<u32>,
}

/// A `keyward.toml` that is not valid TOML, or has an unknown table or
/// key, or a value of the wrong type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    message: String,
    key: Option<String>,
    line: Option<usize>,
}

impl ConfigError {
    fn from_toml(text: &str, mut e: toml::de::Error) -> Self {
        let message = e
            .message()
            .lines()
            .next()
            .unwrap_or("invalid configuration")
            .to_owned();
        let line = e.span().map(|span| {
            let start = span.start.min(text.len());
            let newlines = text
                .as_bytes()
                .get(..start)
                .unwrap_or_default()
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            newlines.saturating_add(1)
        });
        // Without the input, toml renders the message and, on the line
        // after it, the dotted key it was reading ("in `otp.digits`").
        e.set_input(None);
        let rendered = e.to_string();
        let key = rendered
            .lines()
            .filter_map(|l| l.strip_prefix("in `")?.strip_suffix('`'))
            .next_back()
            .filter(|k| !k.is_empty())
            .map(str::to_owned);
        Self { message, key, line }
    }

    /// One line naming the problem (and, for an unknown key, the key), as
    /// the TOML parser words it.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The dotted key being read when the error arose (`otp.digits`, or
    /// `password` for an unknown key in `[password]`), when known.
    #[must_use]
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// The line of the file the error points at, from 1, when known.
    #[must_use]
    pub fn line(&self) -> Option<usize> {
        self.line
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.key, self.line) {
            (Some(key), Some(line)) => write!(f, "line {line}, `{key}`: {}", self.message),
            (Some(key), None) => write!(f, "`{key}`: {}", self.message),
            (None, Some(line)) => write!(f, "line {line}: {}", self.message),
            (None, None) => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Self::Config(e.to_string())
    }
}

impl Config {
    /// Reads and parses the `keyward.toml` at `path`: the same file, read
    /// the same way, as the `keyward` command's `--config`. A service that
    /// builds its [`Keyward`] with [`builder`](Self::builder) from the file
    /// the operators' tool reads, and loads the same key ring, accepts the
    /// access tokens the tool mints (`keyward jwt issue`, `keyward session
    /// start`), and the tool's `jwt verify` accepts the service's. Set
    /// `issuer` and `audience` in the file's `[jwt]` table: the tool falls
    /// back to [`DEFAULT_ISSUER`] and [`DEFAULT_AUDIENCE`] without them,
    /// while the builder then keeps the service's own
    /// [`issuer`](KeywardBuilder::issuer) and
    /// [`audience`](KeywardBuilder::audience).
    ///
    /// ```
    /// use keyward::config::Config;
    /// use keyward::{JwtAlg, KeyRing, MemoryStore};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let config_path = dir.path().join("keyward.toml");
    /// # let keys_path = dir.path().join("keyward.keys");
    /// # std::fs::write(&config_path, "[jwt]\nissuer = \"https://auth.example.com\"\naudience = \"api\"\n")?;
    /// # KeyRing::generate(JwtAlg::EdDSA)?.save_new(&keys_path)?;
    /// // keyward.toml, as `keyward --config` reads it:
    /// //   [jwt]
    /// //   issuer = "https://auth.example.com"
    /// //   audience = "api"
    /// let kw = Config::load(&config_path)?
    ///     .builder()?
    ///     .keys(KeyRing::load(&keys_path)?) // as `keyward --keyring` reads it
    ///     .store(MemoryStore::new())
    ///     .build()?;
    /// let token = kw.jwt().issue("user-42", "session-1")?;
    /// let claims = kw.jwt().verify(token.unprotected_as_str())?;
    /// assert_eq!((claims.iss.as_str(), claims.sub.as_str()), ("https://auth.example.com", "user-42"));
    ///
    /// // A file that is missing, or says something keyward does not know,
    /// // is an error naming the file.
    /// let missing = Config::load(dir.path().join("nope.toml")).unwrap_err();
    /// assert!(missing.to_string().contains("nope.toml"));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`], naming the path, when the file cannot be read or
    /// [`from_toml_str`](Self::from_toml_str) refuses it.
    pub fn load(path: impl AsRef<std::path::Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        Self::from_toml_str(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
    }

    /// Parses the text of a `keyward.toml`.
    ///
    /// # Errors
    /// [`ConfigError`] when the text is not TOML, or has an unknown table
    /// or key, or a value of the wrong type (a string for a number, a
    /// negative or too large number). Values of the right type are checked
    /// later, by the policy methods and the builder.
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::from_toml(text, e))
    }

    /// The `[password]` table over [`PasswordPolicy::default`].
    /// [`KeywardBuilder::build`] checks the numbers.
    ///
    /// # Errors
    /// [`Error::Config`] when `disabled_schemes` names no scheme keyward
    /// knows (see [`Scheme::name`]).
    pub fn password_policy(&self) -> Result<PasswordPolicy, Error> {
        let mut p = PasswordPolicy::default();
        // Every field, by name: a policy field without its key here does
        // not compile.
        let PasswordPolicy {
            iterations,
            min_iterations,
            max_iterations,
            min_length,
            max_length,
            max_in_flight,
            queue_timeout,
            disabled_schemes,
            upgrade_argon2,
            argon2_max_memory_kib,
        } = &mut p;
        let c = &self.password;
        set(iterations, c.iterations);
        set(min_iterations, c.min_iterations);
        set(max_iterations, c.max_iterations);
        set(min_length, c.min_length);
        set(max_length, c.max_length);
        set(max_in_flight, c.max_in_flight);
        set(queue_timeout, c.queue_timeout_ms.map(Duration::from_millis));
        set(upgrade_argon2, c.upgrade_argon2);
        set(argon2_max_memory_kib, c.argon2_max_memory_kib);
        for name in c.disabled_schemes.iter().flatten() {
            let scheme = Scheme::from_name(name).ok_or_else(|| {
                Error::Config(format!(
                    "password.disabled_schemes: unknown scheme name {name:?}"
                ))
            })?;
            disabled_schemes.insert(scheme);
        }
        Ok(p)
    }

    /// The `[session]` table over [`SessionPolicy::default`].
    /// [`KeywardBuilder::build`] checks the numbers.
    #[must_use]
    pub fn session_policy(&self) -> SessionPolicy {
        let mut p = SessionPolicy::default();
        let SessionPolicy {
            reuse_grace_secs,
            idle_ttl_secs,
            absolute_ttl_secs,
            max_retries,
        } = &mut p;
        let c = &self.session;
        set(reuse_grace_secs, c.reuse_grace_secs);
        set(idle_ttl_secs, c.idle_ttl_secs);
        set(absolute_ttl_secs, c.absolute_ttl_secs);
        set(max_retries, c.max_retries);
        p
    }

    /// The access-token policy: `[jwt]`, with [`DEFAULT_ISSUER`] and
    /// [`DEFAULT_AUDIENCE`] where it names none, and
    /// `session.access_ttl_secs`.
    ///
    /// # Errors
    /// [`Error::Config`] for a leeway above 30 s or a lifetime outside 1 to
    /// 900 s: the file cannot reach the `dangerous_…` settings.
    pub fn jwt_policy(&self) -> Result<JwtPolicy, Error> {
        let j = &self.jwt;
        let mut p = JwtPolicy::new(
            j.issuer.as_deref().unwrap_or(DEFAULT_ISSUER),
            j.audience.as_deref().unwrap_or(DEFAULT_AUDIENCE),
        );
        if let Some(v) = j.leeway_secs {
            p = p.leeway_secs(v)?;
        }
        if let Some(v) = self.session.access_ttl_secs {
            p = p.access_ttl_secs(v)?;
        }
        Ok(p)
    }

    /// The `[otp]` table over [`OtpPolicy::default`].
    /// [`KeywardBuilder::build`] checks the numbers.
    #[must_use]
    pub fn otp_policy(&self) -> OtpPolicy {
        let mut p = OtpPolicy::default();
        let OtpPolicy {
            digits,
            code_ttl_secs,
            max_attempts,
            lockout_secs,
            max_consecutive_failures,
            max_retries,
        } = &mut p;
        let c = &self.otp;
        set(digits, c.digits);
        set(code_ttl_secs, c.code_ttl_secs);
        set(max_attempts, c.max_attempts);
        set(lockout_secs, c.lockout_secs);
        set(max_consecutive_failures, c.max_consecutive_failures);
        set(max_retries, c.max_retries);
        p
    }

    /// The `[throttle]` table: [`ThrottlePolicy::default`] where it names
    /// no value. [`KeywardBuilder::build`] checks the numbers.
    #[must_use]
    pub fn throttle_policy(&self) -> ThrottlePolicy {
        self.throttle.clone()
    }

    /// The `[api_keys]` table: [`ApiKeyPolicy::default`] where it names no
    /// value. [`KeywardBuilder::build`] checks the numbers.
    #[must_use]
    pub fn api_key_policy(&self) -> ApiKeyPolicy {
        self.api_keys.clone()
    }

    /// Whether the file says anything about access tokens: a key in
    /// `[jwt]`, or `session.access_ttl_secs`.
    #[must_use]
    pub fn sets_jwt(&self) -> bool {
        let j = &self.jwt;
        j.issuer.is_some()
            || j.audience.is_some()
            || j.leeway_secs.is_some()
            || self.session.access_ttl_secs.is_some()
    }

    /// A [`Keyward::builder`] with the file's password, session,
    /// one-time-code and throttle policies, and its access-token policy
    /// when the file [sets one](Self::sets_jwt) (which then overrides the
    /// builder's [`issuer`](KeywardBuilder::issuer) and
    /// [`audience`](KeywardBuilder::audience)). Add the key ring and the
    /// store, then build; the build checks every number. With both,
    /// [`build`](KeywardBuilder::build) makes a complete
    /// [`Keyward`](crate::Complete) and needs an issuer and an audience
    /// (the file's `[jwt]`, or the builder's); a program that runs with or
    /// without them builds with
    /// [`build_partial`](KeywardBuilder::build_partial).
    ///
    /// # Errors
    /// As [`password_policy`](Self::password_policy) and
    /// [`jwt_policy`](Self::jwt_policy).
    pub fn builder(&self) -> Result<KeywardBuilder, Error> {
        let mut builder = Keyward::builder()
            .password_policy(self.password_policy()?)
            .session_policy(self.session_policy())
            .otp_policy(self.otp_policy())
            .throttle_policy(self.throttle_policy())
            .api_key_policy(self.api_key_policy());
        if self.sets_jwt() {
            builder = builder.jwt_policy(self.jwt_policy()?);
        }
        Ok(builder)
    }
}

/// Replaces `field` with the file's value, when it has one.
fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *field = value;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde::de::{DeserializeOwned, Visitor};

    use super::*;

    /// The keys a type reads: the field names its `Deserialize` hands to
    /// `deserialize_struct`.
    fn keys_of<T: DeserializeOwned>() -> BTreeSet<&'static str> {
        struct Probe(&'static [&'static str]);

        impl<'de> serde::Deserializer<'de> for &mut Probe {
            type Error = serde::de::value::Error;

            fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
                Err(serde::de::Error::custom("not a struct"))
            }

            fn deserialize_struct<V: Visitor<'de>>(
                self,
                _: &'static str,
                fields: &'static [&'static str],
                _: V,
            ) -> Result<V::Value, Self::Error> {
                self.0 = fields;
                Err(serde::de::Error::custom("probed"))
            }

            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str
                string bytes byte_buf option unit unit_struct newtype_struct
                seq tuple tuple_struct map enum identifier ignored_any
            }
        }

        let mut probe = Probe(&[]);
        let _ = T::deserialize(&mut probe);
        probe.0.iter().copied().collect()
    }

    /// A policy field without its key in the file, or a key without its
    /// field, fails here.
    #[test]
    fn each_table_has_the_keys_of_its_policy() {
        assert_eq!(keys_of::<PasswordConfig>(), keys_of::<PasswordPolicy>());
        assert_eq!(keys_of::<OtpConfig>(), keys_of::<OtpPolicy>());
        // The access-token lifetime sits in `[session]`, beside the
        // refresh-token lifetimes.
        let mut session = keys_of::<SessionPolicy>();
        session.insert("access_ttl_secs");
        assert_eq!(keys_of::<SessionConfig>(), session);
        let mut jwt = keys_of::<JwtConfig>();
        jwt.insert("access_ttl_secs");
        assert_eq!(jwt, keys_of::<JwtPolicy>());
        assert_eq!(
            keys_of::<Config>(),
            BTreeSet::from(["api_keys", "jwt", "otp", "password", "session", "throttle"])
        );
        assert!(keys_of::<ThrottlePolicy>().contains("login_burst"));
        assert!(keys_of::<PasswordPolicy>().contains("queue_timeout_ms"));
    }

    /// Each table gives the policy that the policy's own `Deserialize`
    /// gives for the same keys.
    #[test]
    fn a_table_reads_as_its_policy_reads() {
        let password = "iterations = 700000\nmin_iterations = 2000\n\
                        max_iterations = 4000000\nmin_length = 12\nmax_length = 512\n\
                        max_in_flight = 3\nqueue_timeout_ms = 250\n\
                        disabled_schemes = [\"aspnet-identity-v2\", \"django-pbkdf2-sha1\"]\n";
        let session = "reuse_grace_secs = 5\nidle_ttl_secs = 86400\n\
                       absolute_ttl_secs = 604800\nmax_retries = 4\n";
        let otp = "digits = 8\ncode_ttl_secs = 300\nmax_attempts = 5\nlockout_secs = 900\n\
                   max_consecutive_failures = 50\nmax_retries = 7\n";
        let throttle = "code_send_period_secs = 30\ncode_send_burst = 2\n\
                        login_period_secs = 3\nlogin_burst = 20\npurge_every = 100\n";
        let jwt = "issuer = \"https://auth.example.com\"\naudience = \"api\"\nleeway_secs = 10\n";
        let api_keys = "max_keys_per_owner = 10\ntouch_interval_secs = 300\n\
                        retention_secs = 86400\nmax_retries = 5\n";
        let config = Config::from_toml_str(&format!(
            "[password]\n{password}[session]\naccess_ttl_secs = 600\n{session}\
             [otp]\n{otp}[throttle]\n{throttle}[jwt]\n{jwt}[api_keys]\n{api_keys}"
        ))
        .expect("config");
        let a: ApiKeyPolicy = toml::from_str(api_keys).expect("api_keys");
        assert_eq!(config.api_key_policy(), a);
        assert_eq!((a.max_keys_per_owner, a.touch_interval_secs), (10, 300));
        assert_ne!(a, ApiKeyPolicy::default());

        let p: PasswordPolicy = toml::from_str(password).expect("password");
        assert_eq!(config.password_policy().expect("password"), p);
        assert_eq!(p.queue_timeout, Duration::from_millis(250));
        assert_eq!((p.max_in_flight, p.disabled_schemes.len()), (3, 2));
        let s: SessionPolicy = toml::from_str(session).expect("session");
        assert_eq!(config.session_policy(), s);
        assert_eq!(s.max_retries, 4);
        let o: OtpPolicy = toml::from_str(otp).expect("otp");
        assert_eq!(config.otp_policy(), o);
        assert_eq!(o.max_retries, 7);
        let t: ThrottlePolicy = toml::from_str(throttle).expect("throttle");
        assert_eq!(config.throttle_policy(), t);
        assert_eq!((t.login_burst, t.purge_every), (20, 100));
        let j: JwtPolicy = toml::from_str(&format!("{jwt}access_ttl_secs = 600\n")).expect("jwt");
        assert_eq!(config.jwt_policy().expect("jwt"), j);
        assert_eq!((j.access_ttl(), j.leeway()), (600, 10));

        // Every policy differs from its default: each key was read.
        assert_ne!(p, PasswordPolicy::default());
        assert_ne!(s, SessionPolicy::default());
        assert_ne!(o, OtpPolicy::default());
        assert_ne!(t, ThrottlePolicy::default());
    }

    #[test]
    fn a_policy_read_alone_keeps_the_defaults_of_absent_keys() {
        let p: PasswordPolicy = toml::from_str("min_length = 10").expect("password");
        assert_eq!(
            p,
            PasswordPolicy {
                min_length: 10,
                ..PasswordPolicy::default()
            }
        );
        let t: ThrottlePolicy = toml::from_str("").expect("throttle");
        assert_eq!(t, ThrottlePolicy::default());
        for (text, needle) in [
            ("iteration = 1", "unknown field `iteration`"),
            (
                "disabled_schemes = [\"md5\"]",
                "unknown scheme name \"md5\"",
            ),
            ("queue_timeout = 1", "unknown field `queue_timeout`"),
        ] {
            let e = toml::from_str::<PasswordPolicy>(text).expect_err(text);
            assert!(e.message().contains(needle), "{text}: {e}");
        }
        let e = toml::from_str::<SessionPolicy>("access_ttl_secs = 5").expect_err("session");
        assert!(e.message().contains("unknown field"), "{e}");
    }

    /// A JWT policy read alone needs its issuer and audience, and reaches
    /// no `dangerous_…` setting.
    #[test]
    fn a_jwt_policy_read_alone_is_checked_as_its_setters_check() {
        let ok = "issuer = \"i\"\naudience = \"a\"\n";
        let j: JwtPolicy = toml::from_str(ok).expect("jwt");
        assert_eq!(j, JwtPolicy::new("i", "a"));
        for (text, needle) in [
            ("issuer = \"i\"\n".to_owned(), "missing field `audience`"),
            ("audience = \"a\"\n".to_owned(), "missing field `issuer`"),
            (format!("{ok}leeway_secs = 31\n"), "leeway"),
            (format!("{ok}access_ttl_secs = 3600\n"), "lifetime"),
            (format!("{ok}access_ttl_secs = 0\n"), "lifetime"),
            (format!("{ok}leeway = 1\n"), "unknown field `leeway`"),
            (
                "issuer = \"\"\naudience = \"a\"\n".to_owned(),
                "must not be empty",
            ),
        ] {
            let e = toml::from_str::<JwtPolicy>(&text).expect_err(&text);
            assert!(e.message().contains(needle), "{text}: {e}");
        }
    }
}
