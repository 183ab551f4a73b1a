//! `keyward.toml`: the policies of a [`Keyward`] in a
//! file, as the `keyward` command reads it.
//!
//! Four optional tables, `[password]`, `[session]`, `[otp]` and `[jwt]`,
//! whose keys are the library's policy fields. Every key is optional and
//! falls back to the secure default. An unknown table or key is an error,
//! never a silent default: a typo such as `iteration = 2000` must not leave
//! the default in force while the operator believes it changed.
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
//! assert_eq!(kw.jwt()?.policy().issuer(), "https://auth.example.com");
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

use serde::Deserialize;

use crate::error::Error;
use crate::jwt::JwtPolicy;
use crate::otp::OtpPolicy;
use crate::password::{PasswordPolicy, Scheme};
use crate::session::SessionPolicy;
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
    /// [`PasswordPolicy::disabled_schemes`], by [`Scheme::name`].
    pub disabled_schemes: Option<Vec<String>>,
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
        let c = &self.password;
        if let Some(v) = c.iterations {
            p.iterations = v;
        }
        if let Some(v) = c.min_iterations {
            p.min_iterations = v;
        }
        if let Some(v) = c.max_iterations {
            p.max_iterations = v;
        }
        if let Some(v) = c.min_length {
            p.min_length = v;
        }
        if let Some(v) = c.max_length {
            p.max_length = v;
        }
        for name in c.disabled_schemes.iter().flatten() {
            let scheme = Scheme::from_name(name).ok_or_else(|| {
                Error::Config(format!(
                    "password.disabled_schemes: unknown scheme name {name:?}"
                ))
            })?;
            p.disabled_schemes.insert(scheme);
        }
        Ok(p)
    }

    /// The `[session]` table over [`SessionPolicy::default`].
    /// [`KeywardBuilder::build`] checks the numbers.
    #[must_use]
    pub fn session_policy(&self) -> SessionPolicy {
        let mut p = SessionPolicy::default();
        let c = &self.session;
        if let Some(v) = c.reuse_grace_secs {
            p.reuse_grace_secs = v;
        }
        if let Some(v) = c.idle_ttl_secs {
            p.idle_ttl_secs = v;
        }
        if let Some(v) = c.absolute_ttl_secs {
            p.absolute_ttl_secs = v;
        }
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
        let c = &self.otp;
        if let Some(v) = c.digits {
            p.digits = v;
        }
        if let Some(v) = c.code_ttl_secs {
            p.code_ttl_secs = v;
        }
        if let Some(v) = c.max_attempts {
            p.max_attempts = v;
        }
        if let Some(v) = c.lockout_secs {
            p.lockout_secs = v;
        }
        if let Some(v) = c.max_consecutive_failures {
            p.max_consecutive_failures = v;
        }
        p
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

    /// A [`Keyward::builder`] with the file's password, session and
    /// one-time-code policies, and its access-token policy when the file
    /// [sets one](Self::sets_jwt) (which then overrides the builder's
    /// [`issuer`](KeywardBuilder::issuer) and
    /// [`audience`](KeywardBuilder::audience)). Add the key ring and the
    /// store, then build; the build checks every number.
    ///
    /// # Errors
    /// As [`password_policy`](Self::password_policy) and
    /// [`jwt_policy`](Self::jwt_policy).
    pub fn builder(&self) -> Result<KeywardBuilder, Error> {
        let mut builder = Keyward::builder()
            .password_policy(self.password_policy()?)
            .session_policy(self.session_policy())
            .otp_policy(self.otp_policy());
        if self.sets_jwt() {
            builder = builder.jwt_policy(self.jwt_policy()?);
        }
        Ok(builder)
    }
}
