#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;
pub mod keyring;
mod mac;
pub mod password;
mod secret;
pub mod token;

use std::sync::Arc;

pub use error::{Error, HashError, KeyringError, TokenError};
pub use keyring::{JwtAlg, KeyRing};
pub use password::{HashInfo, PasswordPolicy, Passwords, Scheme, Verified};
pub use secret::{Password, Token};
pub use token::{NewToken, ParsedToken, TokenDigest, Tokens};

/// The one value a backend keeps in its state: every keyward capability is
/// reached from it. Cheap to clone.
///
/// ```
/// use keyward::{Keyward, Password};
/// # fn main() -> Result<(), keyward::Error> {
/// let kw = Keyward::builder().build()?;
/// let stored = kw.passwords().hash(&Password::from("correct horse battery"))?;
/// kw.passwords().verify(&Password::from("correct horse battery"), &stored)?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Keyward {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    passwords: Passwords,
    tokens: Tokens,
    keys: Option<KeyRing>,
}

impl Keyward {
    /// Starts a builder with the secure defaults of `SECURITY.md`.
    pub fn builder() -> KeywardBuilder {
        KeywardBuilder::default()
    }

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

/// Builds a [`Keyward`]. Every setting has a safe default; `build` checks
/// the combination once.
#[derive(Debug, Default)]
#[must_use]
pub struct KeywardBuilder {
    password_policy: PasswordPolicy,
    keys: Option<KeyRing>,
    keyed_token_digests: bool,
}

impl KeywardBuilder {
    /// Sets the password policy.
    pub fn password_policy(mut self, policy: PasswordPolicy) -> Self {
        self.password_policy = policy;
        self
    }

    /// Sets the key ring: peppers for passwords, and the keys later
    /// capabilities sign and MAC with.
    pub fn keys(mut self, keys: KeyRing) -> Self {
        self.keys = Some(keys);
        self
    }

    /// Digests opaque tokens with HMAC-SHA256 under a key derived from the
    /// key ring's server MAC key, instead of plain SHA-256, so that a stolen
    /// digest table is useless without the key ring. Needs
    /// [`keys`](Self::keys). Rotating that key is described in `SECURITY.md`.
    pub fn keyed_token_digests(mut self) -> Self {
        self.keyed_token_digests = true;
        self
    }

    /// Checks the settings and builds.
    ///
    /// # Errors
    /// [`Error::Config`] for an inconsistent policy or keyed token digests
    /// without a key ring, [`Error::Rng`] if the OS RNG fails.
    pub fn build(self) -> Result<Keyward, Error> {
        let passwords = Passwords::new(self.password_policy, self.keys.as_ref())?;
        let tokens = match (self.keyed_token_digests, self.keys.as_ref()) {
            (false, _) => Tokens::plain(),
            (true, Some(keys)) => Tokens::keyed(keys),
            (true, None) => {
                return Err(Error::Config(
                    "keyed token digests need a key ring (set keys)".to_owned(),
                ));
            }
        };
        Ok(Keyward {
            inner: Arc::new(Inner {
                passwords,
                tokens,
                keys: self.keys,
            }),
        })
    }
}
