//! Password hashing: PBKDF2-HMAC-SHA256 in PHC strings, with rehash on login.
//!
//! The paved path is [`Passwords::hash`] to store a new password and
//! [`Passwords::verify`] to check one, which returns a [`Verified`] proof.
//! When the stored hash is below the current policy, the proof carries the
//! replacement string: store it with a guarded `UPDATE … WHERE hash = old`.
//!
//! ```
//! use keyward::{Keyward, Password, PasswordPolicy};
//!
//! # fn main() -> Result<(), keyward::Error> {
//! let mut old_policy = PasswordPolicy::default();
//! old_policy.iterations = 1_000; // a low cost, as an old deployment had
//! let old = Keyward::builder().password_policy(old_policy).build()?;
//! let stored = old.passwords().hash(&Password::from("correct horse battery"))?;
//!
//! let kw = Keyward::builder().build()?; // today's policy: 600,000 iterations
//! let verified = kw.passwords().verify("user", &Password::from("correct horse battery"), &stored)?;
//! let new = verified.rehash().expect("1,000 iterations is below the policy");
//! assert!(new.starts_with("$pbkdf2-sha256$i=600000,l=32$"));
//! assert_eq!(verified.old_hash(), stored);
//!
//! let wrong = kw.passwords().verify("user", &Password::from("wrong password"), &stored);
//! assert!(matches!(wrong, Err(keyward::Error::PasswordMismatch)));
//! # Ok(()) }
//! ```
//!
//! `verify` and `inspect` also accept PBKDF2 hashes imported from Django,
//! Werkzeug, passlib and ASP.NET Identity (see [`Scheme`]). They are
//! verified exactly as their origin wrote them, with the same bounds as PHC
//! strings, and a correct password on one always yields a rehash to the
//! current form. [`PasswordPolicy::disabled_schemes`] turns schemes off.
//!
//! They accept bcrypt (`$2a$`, `$2b$`, `$2y$`) and Argon2 (`$argon2id$`,
//! `$argon2i$`, `$argon2d$`) hashes too, verified through the `bcrypt` and
//! RustCrypto `argon2` crates with their costs bounded before any work
//! ([`BCRYPT_MAX_COST`], [`ARGON2_MAX_TIME`], [`ARGON2_MAX_PARALLELISM`],
//! [`PasswordPolicy::argon2_max_memory_kib`]). A correct password on a
//! bcrypt hash always yields a rehash; on an Argon2 hash only when
//! [`PasswordPolicy::upgrade_argon2`] is set, because PBKDF2 is not
//! memory-hard and the upgrade is a step down in that respect.

mod imported;
mod kdf;
mod legacy;
mod phc;

use std::collections::BTreeSet;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use subtle::ConstantTimeEq;

pub use kdf::{pbkdf2_sha1, pbkdf2_sha256, pbkdf2_sha512};

use crate::error::{Error, HashError};
use crate::jwt::SessionClaims;
use crate::keyring::KeyRing;
use crate::random::fill_random;
use crate::secret::{Password, SecretBytes};
use kdf::Digest;
use phc::{Bytes64, Prf};

/// OWASP Password Storage Cheat Sheet (2023+): "PBKDF2-HMAC-SHA256: 600,000
/// iterations". Also ASVS 5.0 Appendix C.
pub const RECOMMENDED_ITERATIONS: u32 = 600_000;
/// Salt length of new hashes: 16 bytes (128 bits), NIST SP 800-132 §5.1
/// asks for at least 128 bits.
pub const SALT_LEN: usize = 16;
/// Length of new hashes: 32 bytes, one SHA-256 output. A longer output only
/// multiplies the defender's work, never the attacker's.
pub const HASH_LEN: usize = 32;
/// Fewest iterations accepted when verifying (djangohashers' floor).
pub const DEFAULT_MIN_ITERATIONS: u32 = 1_000;
/// Most work accepted when verifying, in iterations of a one-block hash: a
/// stored string cannot make the server spend more than this on one login
/// (a DoS guard). A hash longer than its digest costs one PBKDF2 chain per
/// output block, so it may declare proportionally fewer iterations (see
/// [`PasswordPolicy::max_iterations`]).
pub const DEFAULT_MAX_ITERATIONS: u32 = 5_000_000;
/// Longest password accepted, in bytes, checked before any work (ASVS 5.0
/// 6.2.9 asks for at least 64 characters; Django CVE-2013-1443 shows why a
/// limit is needed).
pub const DEFAULT_MAX_LENGTH: usize = 1024;
/// Shortest new password, in characters (ASVS 5.0 6.2.1).
pub const DEFAULT_MIN_LENGTH: usize = 8;
/// The iteration count of a Werkzeug hash written without one
/// (`pbkdf2:sha256$<salt>$<hex>`): 260,000, the `DEFAULT_PBKDF2_ITERATIONS`
/// of Werkzeug 2.0, whose `generate_password_hash` wrote that form.
///
/// The form's meaning depends on the Werkzeug version that reads it:
/// Werkzeug 3.1 reads a missing count as its own default, 1,000,000, and so
/// refuses hashes that Werkzeug 2.0 wrote. keyward follows the writer. A
/// hash written without a count by another Werkzeug version fails to verify
/// (a mismatch, never a false accept); such a deployment should rewrite
/// those rows with the count made explicit before importing them.
pub const WERKZEUG_DEFAULT_ITERATIONS: u32 = 260_000;
/// How long async password work waits for a slot before failing with
/// [`Error::Busy`].
pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(1);
/// Lowest bcrypt cost accepted: 4, the format's own floor (OpenBSD's
/// `bcrypt_gensalt` and every implementation refuse less).
pub const BCRYPT_MIN_COST: u32 = 4;
/// Highest bcrypt cost accepted: 16, that is 2^16 = 65,536 rounds, checked
/// before any work. Defaults in the wild are 10 (PHP before 8.4, Spring,
/// Node) to 12 (Rails, Laravel, Python, PHP 8.4); each step doubles the
/// work, so 16 is 16 times the most common default, a few seconds of CPU
/// per login, while the format allows 31 (two days).
pub const BCRYPT_MAX_COST: u32 = 16;
/// Most passes (`t`) an Argon2 hash may declare: 10, checked before any
/// work. RFC 9106 §4 recommends t = 1 (with 2 GiB) or t = 3 (with 64 MiB);
/// argon2-cffi and node-argon2 default to 3, PHP to 4, Keycloak to 5,
/// OWASP's Password Storage Cheat Sheet lists t = 1 to 5, and libsodium's
/// most expensive Argon2id setting is 4. Work grows with `m` × `t`.
pub const ARGON2_MAX_TIME: u32 = 10;
/// Most lanes (`p`) an Argon2 hash may declare: 64, checked before any
/// work. keyward computes the lanes one after the other, and `m` is shared
/// between them, so `p` adds no work; the bound only refuses nonsense.
/// RFC 9106 §4 recommends 4; PHP, Spring and libsodium write 1.
pub const ARGON2_MAX_PARALLELISM: u32 = 64;
/// Default of [`PasswordPolicy::argon2_max_memory_kib`]: 262,144 KiB
/// (256 MiB), four times the 64 MiB that RFC 9106 §4's second recommended
/// option, argon2-cffi, node-argon2, PHP and Laravel use, and the "moderate"
/// setting of libsodium. RFC 9106's first option (2 GiB) needs it raised.
pub const ARGON2_DEFAULT_MAX_MEMORY_KIB: u32 = 262_144;
/// Highest value [`PasswordPolicy::argon2_max_memory_kib`] may be set to:
/// 4,194,304 KiB (4 GiB), twice RFC 9106 §4's first recommended option.
pub const ARGON2_MAX_MEMORY_CEILING_KIB: u32 = 4_194_304;
/// Lowest value [`PasswordPolicy::argon2_max_memory_kib`] may be set to:
/// 8 KiB, Argon2's own floor for one lane (RFC 9106 §3.1).
pub const ARGON2_MIN_MEMORY_KIB: u32 = 8;

/// The password policy: costs, bounds and limits.
///
/// Fields are public so that a policy reads like its configuration; the
/// [`KeywardBuilder`](crate::KeywardBuilder) validates them once, in
/// `build()`.
///
/// With the `config` feature it is `Deserialize`: the keys are the field
/// names, except `queue_timeout_ms` (whole milliseconds) for
/// [`queue_timeout`](Self::queue_timeout); `disabled_schemes` is a list of
/// [scheme names](Scheme::name). An absent key keeps its default; an
/// unknown key or scheme name is an error.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "config",
    derive(serde::Deserialize),
    serde(deny_unknown_fields, default)
)]
#[non_exhaustive]
pub struct PasswordPolicy {
    /// Iterations for new hashes; stored hashes below it are rehashed on
    /// login. Default [`RECOMMENDED_ITERATIONS`].
    pub iterations: u32,
    /// Lowest iteration count a stored hash may have. Default 1,000.
    pub min_iterations: u32,
    /// Most work a stored hash may ask for, counted in iterations of a
    /// one-block hash. Default 5,000,000.
    ///
    /// PBKDF2 runs one chain of `iterations` PRF calls per output block
    /// (RFC 8018 §5.2), so a stored hash costs `iterations × blocks`, where
    /// `blocks = ceil(hash length / digest length)`. That product must not
    /// exceed this value; equivalently, a hash may declare at most
    /// `max_iterations / blocks` iterations (rounded down). Every hash that
    /// keyward writes, and every Django, Werkzeug and passlib hash, is one
    /// block long, so for them this is simply the highest iteration count.
    /// Longer outputs get a proportionally lower ceiling: a PHC
    /// `pbkdf2-sha256` hash with `l=64` (2 blocks) at most 2,500,000
    /// iterations by default, an ASP.NET Identity v3 HMAC-SHA1 subkey of 64
    /// bytes (4 blocks) at most 1,250,000, and ASP.NET Identity v2 (a 32-byte
    /// HMAC-SHA1 subkey, 2 blocks, 1,000 iterations) needs at least 2,000.
    ///
    /// The bound is checked before any hashing. A hash over it is refused
    /// with [`HashError::Iterations`], whose `found` is the hash's own
    /// iteration count and whose `max` is the ceiling for that hash's shape
    /// (`max_iterations / blocks`).
    pub max_iterations: u32,
    /// Shortest new password, in characters. Applies to `hash` only, never
    /// to `verify`: a user with an old short password can still log in.
    pub min_length: usize,
    /// Longest password, in bytes, for both `hash` and `verify`.
    pub max_length: usize,
    /// Most password hashes computed at once by the async API. Default: the
    /// number of CPUs.
    pub max_in_flight: usize,
    /// Longest wait for a slot in the async API before [`Error::Busy`].
    #[cfg_attr(
        feature = "config",
        serde(rename = "queue_timeout_ms", deserialize_with = "de::millis")
    )]
    pub queue_timeout: Duration,
    /// Schemes that `verify` and `inspect` refuse with
    /// [`HashError::SchemeDisabled`], as soon as the scheme is recognised and
    /// before the rest of the string is parsed. Empty by default: every
    /// scheme is on, and each imported hash is upgraded on its next correct
    /// login.
    ///
    /// Turn a scheme off once none of its hashes are left (`keyward audit`
    /// counts them), or to refuse one outright. [`Scheme::Pbkdf2Sha256`], the
    /// scheme of new hashes, cannot be turned off. To turn off a family:
    ///
    /// ```
    /// use keyward::{PasswordPolicy, Scheme};
    /// let mut policy = PasswordPolicy::default();
    /// policy.disabled_schemes.extend(
    ///     Scheme::ALL.into_iter().filter(|s| s.name().starts_with("aspnet-identity-")),
    /// );
    /// assert!(policy.disabled_schemes.contains(&Scheme::AspnetIdentityV2));
    /// ```
    #[cfg_attr(feature = "config", serde(deserialize_with = "de::scheme_names"))]
    pub disabled_schemes: BTreeSet<Scheme>,
    /// Whether a correct password on an imported Argon2 hash (`argon2id`,
    /// `argon2i`, `argon2d`) yields [`Verified::rehash`] to PBKDF2. Off by
    /// default.
    ///
    /// Argon2 is memory-hard and PBKDF2 is not: an attacker with GPUs or
    /// ASICs pays far less per guess against PBKDF2 than against Argon2 at
    /// a comparable login time, so the upgrade is a step down in that
    /// respect. Turn it on to have one scheme in the table, for FIPS 140-3
    /// or for verifiers that have only PBKDF2 (WebCrypto, edge runtimes),
    /// or when the Argon2 hashes are weaker than the PBKDF2 policy (below
    /// OWASP's m = 19 MiB, t = 2, p = 1). bcrypt is always upgraded: it is
    /// not memory-hard either, and truncates passwords at 72 bytes.
    pub upgrade_argon2: bool,
    /// Most memory an imported Argon2 hash may declare (its `m`), in KiB,
    /// checked before any work. Default
    /// [`ARGON2_DEFAULT_MAX_MEMORY_KIB`] (256 MiB); at most
    /// [`ARGON2_MAX_MEMORY_CEILING_KIB`].
    ///
    /// Each Argon2 verification allocates its `m`, so the async API can
    /// hold up to `max_in_flight × argon2_max_memory_kib` at once (1 GiB
    /// with 4 CPUs and the defaults), and the blocking API that much per
    /// calling thread. Raise it only as far as the hashes being imported
    /// need (`keyward inspect` shows a hash's `m`) and the host can hold.
    pub argon2_max_memory_kib: u32,
}

/// How [`PasswordPolicy`] reads the fields that are not plain numbers.
#[cfg(feature = "config")]
mod de {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use serde::de::{Deserialize, Deserializer, Error as _};

    use super::Scheme;

    /// A duration in whole milliseconds.
    pub(super) fn millis<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }

    /// A list of [`Scheme::name`]s.
    pub(super) fn scheme_names<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeSet<Scheme>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|name| {
                Scheme::from_name(name)
                    .ok_or_else(|| D::Error::custom(format!("unknown scheme name {name:?}")))
            })
            .collect()
    }
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            iterations: RECOMMENDED_ITERATIONS,
            min_iterations: DEFAULT_MIN_ITERATIONS,
            max_iterations: DEFAULT_MAX_ITERATIONS,
            min_length: DEFAULT_MIN_LENGTH,
            max_length: DEFAULT_MAX_LENGTH,
            max_in_flight: std::thread::available_parallelism()
                .map_or(1, std::num::NonZeroUsize::get),
            queue_timeout: DEFAULT_QUEUE_TIMEOUT,
            disabled_schemes: BTreeSet::new(),
            upgrade_argon2: false,
            argon2_max_memory_kib: ARGON2_DEFAULT_MAX_MEMORY_KIB,
        }
    }
}

impl PasswordPolicy {
    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.min_iterations == 0 || self.min_iterations > self.max_iterations {
            return Err(Error::Config(
                "password.min_iterations must be at least 1 and at most max_iterations".into(),
            ));
        }
        if !(self.min_iterations..=self.max_iterations).contains(&self.iterations) {
            return Err(Error::Config(
                "password.iterations must lie within min_iterations..=max_iterations".into(),
            ));
        }
        if self.max_length == 0 || self.min_length > self.max_length {
            return Err(Error::Config(
                "password.min_length must not exceed max_length".into(),
            ));
        }
        if self.max_in_flight == 0 {
            return Err(Error::Config(
                "password.max_in_flight must be at least 1".into(),
            ));
        }
        if self.disabled_schemes.contains(&Scheme::Pbkdf2Sha256) {
            return Err(Error::Config(
                "password.disabled_schemes cannot contain pbkdf2-sha256, the scheme of new hashes"
                    .into(),
            ));
        }
        if !(ARGON2_MIN_MEMORY_KIB..=ARGON2_MAX_MEMORY_CEILING_KIB)
            .contains(&self.argon2_max_memory_kib)
        {
            return Err(Error::Config(format!(
                "password.argon2_max_memory_kib must lie within \
                 {ARGON2_MIN_MEMORY_KIB}..={ARGON2_MAX_MEMORY_CEILING_KIB}"
            )));
        }
        Ok(())
    }
}

/// The scheme of a stored password hash, named as the CLI names it.
///
/// Every scheme but [`Pbkdf2Sha256`](Self::Pbkdf2Sha256) is verify-only: a
/// correct password on any other scheme yields [`Verified::rehash`], always
/// but for Argon2, where [`PasswordPolicy::upgrade_argon2`] decides. The
/// imported ("legacy") schemes are verified exactly as their origin writes
/// them, without a pepper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Scheme {
    /// `$pbkdf2-sha256$i=…,l=…$…$…`: the current scheme.
    Pbkdf2Sha256,
    /// `$pbkdf2-sha512$i=…,l=…$…$…`: verified, and rehashed to SHA-256.
    Pbkdf2Sha512,
    /// passlib's `pbkdf2_sha1`: `$pbkdf2$<rounds>$<ab64 salt>$<ab64 hash>`.
    PasslibPbkdf2Sha1,
    /// passlib's `pbkdf2_sha256`: `$pbkdf2-sha256$<rounds>$<ab64 salt>$<ab64 hash>`.
    PasslibPbkdf2Sha256,
    /// passlib's `pbkdf2_sha512`: `$pbkdf2-sha512$<rounds>$<ab64 salt>$<ab64 hash>`.
    PasslibPbkdf2Sha512,
    /// Django's `PBKDF2PasswordHasher`: `pbkdf2_sha256$<iter>$<salt>$<base64 hash>`.
    DjangoPbkdf2Sha256,
    /// Django's `PBKDF2SHA1PasswordHasher`: `pbkdf2_sha1$<iter>$<salt>$<base64 hash>`.
    DjangoPbkdf2Sha1,
    /// Werkzeug: `pbkdf2:sha256:<iter>$<salt>$<hex>`, or `pbkdf2:sha256$…`
    /// with [`WERKZEUG_DEFAULT_ITERATIONS`].
    WerkzeugPbkdf2Sha256,
    /// Werkzeug: `pbkdf2:sha1:<iter>$<salt>$<hex>`.
    WerkzeugPbkdf2Sha1,
    /// Werkzeug: `pbkdf2:sha512:<iter>$<salt>$<hex>`.
    WerkzeugPbkdf2Sha512,
    /// ASP.NET Identity v2: base64 of `0x00 ‖ salt[16] ‖ subkey[32]`,
    /// PBKDF2-HMAC-SHA1 with 1,000 iterations.
    AspnetIdentityV2,
    /// ASP.NET Identity v3: base64 of `0x01 ‖ prf ‖ iterations ‖ salt_len ‖
    /// salt ‖ subkey` (big-endian u32s; PRF 0 SHA-1, 1 SHA-256, 2 SHA-512).
    AspnetIdentityV3,
    /// bcrypt: `$2b$<cost>$<salt><hash>`, also `$2a$` and `$2y$` (Rails,
    /// Laravel, PHP, Node, Spring, Python). Cost 4 to [`BCRYPT_MAX_COST`].
    Bcrypt,
    /// Argon2id in its PHC string: `$argon2id$v=19$m=…,t=…,p=…$…$…`.
    Argon2id,
    /// Argon2i in its PHC string: `$argon2i$v=19$m=…,t=…,p=…$…$…`.
    Argon2i,
    /// Argon2d in its PHC string: `$argon2d$v=19$m=…,t=…,p=…$…$…`.
    Argon2d,
}

impl Scheme {
    /// Every scheme, in declaration order.
    pub const ALL: [Self; 16] = [
        Self::Pbkdf2Sha256,
        Self::Pbkdf2Sha512,
        Self::PasslibPbkdf2Sha1,
        Self::PasslibPbkdf2Sha256,
        Self::PasslibPbkdf2Sha512,
        Self::DjangoPbkdf2Sha256,
        Self::DjangoPbkdf2Sha1,
        Self::WerkzeugPbkdf2Sha256,
        Self::WerkzeugPbkdf2Sha1,
        Self::WerkzeugPbkdf2Sha512,
        Self::AspnetIdentityV2,
        Self::AspnetIdentityV3,
        Self::Bcrypt,
        Self::Argon2id,
        Self::Argon2i,
        Self::Argon2d,
    ];

    /// The scheme's name: `pbkdf2-sha256`, `pbkdf2-sha512`,
    /// `django-pbkdf2-sha256`, `aspnet-identity-v3`, `bcrypt`, `argon2id`, …
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Pbkdf2Sha256 => "pbkdf2-sha256",
            Self::Pbkdf2Sha512 => "pbkdf2-sha512",
            Self::PasslibPbkdf2Sha1 => "passlib-pbkdf2-sha1",
            Self::PasslibPbkdf2Sha256 => "passlib-pbkdf2-sha256",
            Self::PasslibPbkdf2Sha512 => "passlib-pbkdf2-sha512",
            Self::DjangoPbkdf2Sha256 => "django-pbkdf2-sha256",
            Self::DjangoPbkdf2Sha1 => "django-pbkdf2-sha1",
            Self::WerkzeugPbkdf2Sha256 => "werkzeug-pbkdf2-sha256",
            Self::WerkzeugPbkdf2Sha1 => "werkzeug-pbkdf2-sha1",
            Self::WerkzeugPbkdf2Sha512 => "werkzeug-pbkdf2-sha512",
            Self::AspnetIdentityV2 => "aspnet-identity-v2",
            Self::AspnetIdentityV3 => "aspnet-identity-v3",
            Self::Bcrypt => "bcrypt",
            Self::Argon2id => "argon2id",
            Self::Argon2i => "argon2i",
            Self::Argon2d => "argon2d",
        }
    }

    /// The scheme with this [`name`](Self::name), if any.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Whether the scheme is imported from another stack (Django, Werkzeug,
    /// passlib, ASP.NET Identity, bcrypt, Argon2) rather than keyward's own
    /// PHC PBKDF2 strings.
    #[must_use]
    pub fn is_legacy(self) -> bool {
        !matches!(self, Self::Pbkdf2Sha256 | Self::Pbkdf2Sha512)
    }
}

impl std::fmt::Display for Scheme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// As its [`name`](Scheme::name): `"pbkdf2-sha256"`, `"bcrypt"`, …
impl serde::Serialize for Scheme {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// From its [`name`](Scheme::name); an unknown name is an error.
impl<'de> serde::Deserialize<'de> for Scheme {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::from_name(&name)
            .ok_or_else(|| serde::de::Error::custom("unknown password hash scheme"))
    }
}

/// What a stored hash declares, read without the password.
///
/// `Serialize` and `Deserialize` for JSON answers, with the field names
/// below; `scheme` is the scheme's [`name`](Scheme::name).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct HashInfo {
    /// The scheme.
    pub scheme: Scheme,
    /// The iteration count: PBKDF2's iterations, bcrypt's rounds (2^cost),
    /// or Argon2's passes (`t`).
    pub iterations: u32,
    /// The salt length in bytes.
    pub salt_len: usize,
    /// The hash (derived key) length in bytes.
    pub hash_len: usize,
    /// Argon2's memory (`m`), in KiB; `None` for other schemes.
    pub memory_kib: Option<u32>,
    /// Argon2's lanes (`p`); `None` for other schemes.
    pub parallelism: Option<u32>,
    /// The pepper id, if the hash was made with a pepper. Always `None` for
    /// imported schemes, which have no pepper.
    pub pepper_id: Option<String>,
    /// Whether a correct login would rehash it under the current policy.
    pub needs_rehash: bool,
}

/// Proof that a subject's password matched its stored hash.
///
/// Only [`Passwords::verify`] makes one, from the subject, the password and
/// the subject's stored hash together, so code that takes a `&Verified`
/// (such as [`Sessions::start`](crate::Sessions::start)) cannot run without
/// a password check, and starts a session for the subject that was checked
/// and no other: the subject is not an argument of `start`.
///
/// ```compile_fail
/// # async fn login(sessions: &keyward::Sessions, proof: &keyward::Verified) {
/// // Does not compile: the session's subject is the proof's.
/// let _ = sessions.start(proof, "someone-else").await;
/// # }
/// ```
#[must_use = "a Verified may carry a rehash that should be stored"]
pub struct Verified {
    subject: String,
    scheme: Scheme,
    old: String,
    rehash: Option<String>,
    claims: Option<SessionClaims>,
}

impl Verified {
    fn new(subject: &str, stored: &str, scheme: Scheme, rehash: Option<String>) -> Self {
        Self {
            subject: subject.to_owned(),
            scheme,
            old: stored.to_owned(),
            rehash,
            claims: None,
        }
    }

    /// The subject whose password was checked: the one given to
    /// [`Passwords::verify`].
    #[must_use]
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The proof with application claims for the session it starts: every
    /// access token of that session carries them (see [`SessionClaims`]).
    /// They pass through [`Sessions::challenge`](crate::Sessions::challenge)
    /// to the session a second factor starts.
    pub fn with_claims(mut self, claims: SessionClaims) -> Self {
        self.claims = Some(claims);
        self
    }

    /// The claims given with [`with_claims`](Self::with_claims).
    #[must_use]
    pub fn claims(&self) -> Option<&SessionClaims> {
        self.claims.as_ref()
    }

    /// The replacement hash under the current policy, when the stored one is
    /// below it (scheme, iterations, salt length, hash length or pepper id).
    /// Store it with `UPDATE … SET hash = new WHERE hash = old` so that a
    /// concurrent password change is never overwritten.
    #[must_use]
    pub fn rehash(&self) -> Option<&str> {
        self.rehash.as_deref()
    }

    /// The stored hash that was verified, for the guarded `UPDATE`.
    #[must_use]
    pub fn old_hash(&self) -> &str {
        &self.old
    }

    /// The scheme of the stored hash.
    #[must_use]
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }
}

impl std::fmt::Debug for Verified {
    // Hash strings are offline-crackable; they are not printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Nor is the subject, a user identifier.
        f.debug_struct("Verified")
            .field("scheme", &self.scheme)
            .field("rehash", &self.rehash.is_some())
            .finish_non_exhaustive()
    }
}

/// A stored hash, parsed and checked against every bound: a PBKDF2 hash
/// (PHC or an imported format), or a bcrypt or Argon2 hash.
enum Stored<'a> {
    Pbkdf2(Parsed<'a>),
    Imported(Scheme, imported::Imported),
}

/// A stored PBKDF2 hash of any scheme, parsed and checked against every
/// bound.
struct Parsed<'a> {
    scheme: Scheme,
    digest: Digest,
    iterations: u32,
    pepper_id: Option<&'a str>,
    salt: Bytes64,
    hash: Bytes64,
}

/// A pepper: a server-side key mixed into every new hash, identified by an
/// id stored in the hash so that it can be rotated.
struct Pepper {
    id: String,
    key: SecretBytes,
}

struct Core {
    policy: PasswordPolicy,
    peppers: Vec<Pepper>,
    /// Index into `peppers` of the pepper new hashes use.
    current_pepper: Option<usize>,
    /// A hash nobody knows the password of, at current parameters, for
    /// `verify_unknown_user`.
    dummy: String,
    #[cfg(feature = "tokio")]
    slots: Arc<tokio::sync::Semaphore>,
}

/// The password service: hash, verify, inspect. Cheap to clone.
#[derive(Clone)]
pub struct Passwords {
    core: Arc<Core>,
}

impl std::fmt::Debug for Passwords {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passwords")
            .field("policy", &self.core.policy)
            .finish_non_exhaustive()
    }
}

impl Passwords {
    pub(crate) fn new(policy: PasswordPolicy, keys: Option<&KeyRing>) -> Result<Self, Error> {
        policy.validate()?;
        let mut peppers = Vec::new();
        let mut current_pepper = None;
        if let Some(keys) = keys {
            for (id, key) in keys.peppers() {
                if keys.current_pepper_id() == Some(id) {
                    current_pepper = Some(peppers.len());
                }
                peppers.push(Pepper {
                    id: id.to_owned(),
                    key: SecretBytes::new(key.unprotected_as_bytes().to_vec()),
                });
            }
        }
        let mut salt = [0u8; SALT_LEN];
        let mut hash = [0u8; HASH_LEN];
        fill_random(&mut salt)?;
        fill_random(&mut hash)?;
        let pepper_id = current_pepper
            .and_then(|i| peppers.get(i))
            .map(|p: &Pepper| p.id.as_str());
        let dummy = phc::encode(Prf::Sha256, policy.iterations, pepper_id, &salt, &hash);
        Ok(Self {
            core: Arc::new(Core {
                #[cfg(feature = "tokio")]
                slots: Arc::new(tokio::sync::Semaphore::new(policy.max_in_flight)),
                policy,
                peppers,
                current_pepper,
                dummy,
            }),
        })
    }

    /// The policy in force.
    #[must_use]
    pub fn policy(&self) -> &PasswordPolicy {
        &self.core.policy
    }

    /// Hashes a new password under the current policy, with a fresh 16-byte
    /// salt from the operating system's CSPRNG.
    ///
    /// # Errors
    /// [`Error::PasswordTooLong`] or [`Error::PasswordTooShort`] (checked
    /// before any work), or [`Error::Rng`] if the OS RNG fails.
    pub fn hash(&self, password: &Password) -> Result<String, Error> {
        self.check_max_length(password)?;
        if password.char_len() < self.core.policy.min_length {
            return Err(Error::PasswordTooShort {
                min_chars: self.core.policy.min_length,
            });
        }
        self.hash_unchecked_min(password)
    }

    /// Hashes without the minimum-length rule: a rehash must work for a user
    /// whose old password predates the rule.
    fn hash_unchecked_min(&self, password: &Password) -> Result<String, Error> {
        let mut salt = [0u8; SALT_LEN];
        fill_random(&mut salt)?;
        let pepper = self
            .core
            .current_pepper
            .and_then(|i| self.core.peppers.get(i));
        let iterations = nonzero(self.core.policy.iterations);
        let mut out = zeroize::Zeroizing::new([0u8; HASH_LEN]);
        derive(
            Digest::Sha256,
            password,
            pepper,
            &salt,
            iterations,
            &mut out[..],
        );
        Ok(phc::encode(
            Prf::Sha256,
            iterations.get(),
            pepper.map(|p| p.id.as_str()),
            &salt,
            &out[..],
        ))
    }

    /// Verifies `subject`'s password against its stored hash, of any
    /// [`Scheme`]: PHC, or a hash imported from Django, Werkzeug, passlib,
    /// ASP.NET Identity, bcrypt or Argon2. The proof it returns names
    /// `subject` (the id the application keys the stored hash by), and a
    /// session it starts is that subject's.
    ///
    /// The password is used exactly as given (bcrypt alone reads only its
    /// first 72 bytes, as every bcrypt implementation did). The stored string
    /// is fully parsed and checked against the policy's bounds before any
    /// hashing, so a tampered row cannot make the server do unbounded work.
    /// The comparison is constant-time. A correct password on any scheme but
    /// `pbkdf2-sha256` yields [`Verified::rehash`]: always, except on Argon2
    /// where [`PasswordPolicy::upgrade_argon2`] decides.
    ///
    /// # Errors
    /// - [`Error::PasswordMismatch`] for a wrong password;
    /// - [`Error::PasswordTooLong`] before any work;
    /// - [`Error::Hash`] for a malformed, unsupported or out-of-bounds hash,
    ///   or one of a scheme the policy disables
    ///   ([`HashError::SchemeDisabled`]);
    /// - [`Error::UnknownPepper`] when the hash names a pepper the key ring
    ///   lacks;
    /// - [`Error::Busy`] when the memory an Argon2 hash declares cannot be
    ///   allocated;
    /// - [`Error::Rng`] if a due rehash cannot draw a salt.
    pub fn verify(
        &self,
        subject: &str,
        password: &Password,
        stored: &str,
    ) -> Result<Verified, Error> {
        let (scheme, rehash) = self.check(password, stored)?;
        Ok(Verified::new(subject, stored, scheme, rehash))
    }

    /// The work of [`verify`](Self::verify): the scheme of `stored` and the
    /// rehash due, when `password` matches it.
    fn check(&self, password: &Password, stored: &str) -> Result<(Scheme, Option<String>), Error> {
        self.check_max_length(password)?;
        let parsed = match self.parse(stored)? {
            Stored::Pbkdf2(parsed) => parsed,
            Stored::Imported(scheme, imported) => {
                return self.check_imported(password, stored, scheme, &imported);
            }
        };
        let pepper = match parsed.pepper_id {
            None => None,
            Some(id) => Some(
                self.core
                    .peppers
                    .iter()
                    .find(|p| p.id == id)
                    .ok_or_else(|| Error::UnknownPepper { id: id.to_owned() })?,
            ),
        };
        let expected = parsed.hash.as_slice();
        let mut out = zeroize::Zeroizing::new([0u8; 64]);
        let out = out
            .get_mut(..expected.len())
            .ok_or(HashError::Structure("hash length"))?;
        derive(
            parsed.digest,
            password,
            pepper,
            parsed.salt.as_slice(),
            nonzero(parsed.iterations),
            out,
        );
        if !bool::from(out.ct_eq(expected)) {
            return Err(Error::PasswordMismatch);
        }
        let scheme = parsed.scheme;
        let rehash = if self.needs_rehash_parts(
            scheme,
            parsed.iterations,
            parsed.salt.len(),
            expected.len(),
            parsed.pepper_id,
        ) {
            Some(self.hash_unchecked_min(password)?)
        } else {
            None
        };
        Ok((scheme, rehash))
    }

    /// The end of [`check`](Self::check) for bcrypt and Argon2.
    fn check_imported(
        &self,
        password: &Password,
        stored: &str,
        scheme: Scheme,
        imported: &imported::Imported,
    ) -> Result<(Scheme, Option<String>), Error> {
        if !imported.matches(password.unprotected_as_bytes(), stored)? {
            return Err(Error::PasswordMismatch);
        }
        let rehash = if self.upgrades(scheme) {
            Some(self.hash_unchecked_min(password)?)
        } else {
            None
        };
        Ok((scheme, rehash))
    }

    /// Whether a correct login on an imported bcrypt or Argon2 hash yields a
    /// rehash.
    fn upgrades(&self, scheme: Scheme) -> bool {
        match scheme {
            Scheme::Argon2id | Scheme::Argon2i | Scheme::Argon2d => self.core.policy.upgrade_argon2,
            _ => true,
        }
    }

    /// Runs a full verification against a fixed dummy hash at the current
    /// cost, for a login whose account does not exist, so that a missing
    /// account cannot be told apart by timing (ASVS 5.0 6.3.8; Django
    /// CVE-2024-39329). It returns the error to answer with, as a real
    /// verify with a wrong password would.
    ///
    /// ```
    /// # use keyward::{Keyward, Password, Error};
    /// # let kw = Keyward::builder().build().expect("default policy");
    /// # let lookup = |_: &str| -> Option<(String, String)> { None };
    /// let password = Password::from("guess-guess");
    /// let result = match lookup("nobody") {
    ///     Some((subject, stored)) => kw.passwords().verify(&subject, &password, &stored),
    ///     None => Err(kw.passwords().verify_unknown_user(&password)),
    /// };
    /// assert!(matches!(result, Err(Error::PasswordMismatch)));
    /// ```
    ///
    /// [`Error::PasswordMismatch`], or [`Error::PasswordTooLong`] exactly
    /// where a real verify would give it.
    #[must_use = "answer the login with this error"]
    pub fn verify_unknown_user(&self, password: &Password) -> Error {
        match self.check(password, &self.core.dummy) {
            Err(e @ Error::PasswordTooLong { .. }) => e,
            // Nobody knows the dummy's password; even a match is a mismatch.
            _ => Error::PasswordMismatch,
        }
    }

    /// Reads what a stored hash declares, and whether a correct login would
    /// rehash it, without any hashing work.
    ///
    /// # Errors
    /// [`Error::Hash`] for a malformed or out-of-bounds hash, or one of a
    /// scheme the policy disables.
    pub fn inspect(&self, stored: &str) -> Result<HashInfo, Error> {
        let parsed = match self.parse(stored)? {
            Stored::Pbkdf2(parsed) => parsed,
            Stored::Imported(scheme, imported) => {
                return Ok(HashInfo {
                    scheme,
                    iterations: imported.iterations(),
                    salt_len: imported.salt_len(),
                    hash_len: imported.hash_len(),
                    memory_kib: imported.memory_kib(),
                    parallelism: imported.parallelism(),
                    pepper_id: None,
                    needs_rehash: self.upgrades(scheme),
                });
            }
        };
        let scheme = parsed.scheme;
        Ok(HashInfo {
            scheme,
            iterations: parsed.iterations,
            salt_len: parsed.salt.len(),
            hash_len: parsed.hash.len(),
            memory_kib: None,
            parallelism: None,
            pepper_id: parsed.pepper_id.map(str::to_owned),
            needs_rehash: self.needs_rehash_parts(
                scheme,
                parsed.iterations,
                parsed.salt.len(),
                parsed.hash.len(),
                parsed.pepper_id,
            ),
        })
    }

    /// Names the scheme, refuses a disabled one, then parses the rest and
    /// checks every bound. No hashing happens here.
    fn parse<'a>(&self, stored: &'a str) -> Result<Stored<'a>, HashError> {
        let policy = &self.core.policy;
        let scheme = legacy::detect(stored)?;
        if policy.disabled_schemes.contains(&scheme) {
            return Err(HashError::SchemeDisabled(scheme.name()));
        }
        if imported::handles(scheme) {
            let imported = imported::parse(stored, scheme, policy.argon2_max_memory_kib)?;
            return Ok(Stored::Imported(scheme, imported));
        }
        let (min, max) = (policy.min_iterations, policy.max_iterations);
        let parsed = parse_scheme(stored, scheme, min, max)?;
        check_work(&parsed, min, max)?;
        Ok(Stored::Pbkdf2(parsed))
    }

    fn needs_rehash_parts(
        &self,
        scheme: Scheme,
        iterations: u32,
        salt_len: usize,
        hash_len: usize,
        pepper_id: Option<&str>,
    ) -> bool {
        let current_pepper = self
            .core
            .current_pepper
            .and_then(|i| self.core.peppers.get(i))
            .map(|p| p.id.as_str());
        scheme != Scheme::Pbkdf2Sha256
            || iterations < self.core.policy.iterations
            || salt_len < SALT_LEN
            || hash_len < HASH_LEN
            || pepper_id != current_pepper
    }

    fn check_max_length(&self, password: &Password) -> Result<(), Error> {
        let max = self.core.policy.max_length;
        if password.len() > max {
            return Err(Error::PasswordTooLong { max_bytes: max });
        }
        Ok(())
    }
}

#[cfg(feature = "tokio")]
impl Passwords {
    /// [`hash`](Self::hash) on tokio's blocking pool, within the concurrency
    /// cap. The async executor never runs PBKDF2.
    ///
    /// # Errors
    /// As [`hash`](Self::hash), plus [`Error::Busy`] when no slot frees up
    /// within the policy's `queue_timeout`.
    ///
    /// # Panics
    /// When called outside a tokio runtime.
    pub async fn hash_async(&self, password: &Password) -> Result<String, Error> {
        self.check_max_length(password)?;
        let this = self.clone();
        let password = password.duplicate();
        self.run_blocking(move || this.hash(&password)).await
    }

    /// [`verify`](Self::verify) on tokio's blocking pool, within the
    /// concurrency cap.
    ///
    /// # Errors
    /// As [`verify`](Self::verify), plus [`Error::Busy`] when no slot frees
    /// up within the policy's `queue_timeout`.
    ///
    /// # Panics
    /// When called outside a tokio runtime.
    pub async fn verify_async(
        &self,
        subject: &str,
        password: &Password,
        stored: &str,
    ) -> Result<Verified, Error> {
        self.check_max_length(password)?;
        let this = self.clone();
        let password = password.duplicate();
        let stored_owned = stored.to_owned();
        let (scheme, rehash) = self
            .run_blocking(move || this.check(&password, &stored_owned))
            .await?;
        Ok(Verified::new(subject, stored, scheme, rehash))
    }

    /// [`verify_unknown_user`](Self::verify_unknown_user) on the blocking
    /// pool, under the same cap, so that it queues and sheds like a real
    /// verify: the error to answer with, [`Error::Busy`] included.
    ///
    /// # Panics
    /// When called outside a tokio runtime.
    #[must_use = "answer the login with this error"]
    pub async fn verify_unknown_user_async(&self, password: &Password) -> Error {
        if let Err(e) = self.check_max_length(password) {
            return e;
        }
        let this = self.clone();
        let password = password.duplicate();
        match self
            .run_blocking(move || Ok(this.verify_unknown_user(&password)))
            .await
        {
            Ok(e) | Err(e) => e,
        }
    }

    async fn run_blocking<T, F>(&self, work: F) -> Result<T, Error>
    where
        F: FnOnce() -> Result<T, Error> + Send + 'static,
        T: Send + 'static,
    {
        let slots = Arc::clone(&self.core.slots);
        let permit = tokio::time::timeout(self.core.policy.queue_timeout, slots.acquire_owned())
            .await
            .map_err(|_| Error::Busy)?
            // The semaphore is never closed.
            .map_err(|_| Error::Busy)?;
        let task = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        });
        match task.await {
            Ok(result) => result,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // The runtime is shutting down.
            Err(_) => Err(Error::Busy),
        }
    }
}

/// Parses a string of a known scheme. The iteration count is checked
/// against `min..=max` here; the work bound, which needs the hash length, is
/// [`check_work`].
fn parse_scheme(stored: &str, scheme: Scheme, min: u32, max: u32) -> Result<Parsed<'_>, HashError> {
    if scheme.is_legacy() {
        let l = legacy::parse(stored, scheme, min, max)?;
        return Ok(Parsed {
            scheme,
            digest: l.digest,
            iterations: l.iterations,
            pepper_id: None,
            salt: l.salt,
            hash: l.hash,
        });
    }
    let p = phc::parse(stored, min, max)?;
    let phc_scheme = match p.prf {
        Prf::Sha256 => Scheme::Pbkdf2Sha256,
        Prf::Sha512 => Scheme::Pbkdf2Sha512,
    };
    if phc_scheme != scheme {
        // Unreachable: `detect` and `phc::parse` read the same identifier.
        return Err(HashError::UnknownScheme);
    }
    Ok(Parsed {
        scheme,
        digest: p.prf.digest(),
        iterations: p.iterations,
        pepper_id: p.pepper_id,
        salt: p.salt,
        hash: p.hash,
    })
}

/// Bounds the PRF work of a parsed hash, before any hashing: PBKDF2 runs a
/// separate chain of `iterations` PRF calls for each `hLen`-byte block of
/// output (RFC 8018 §5.2 steps 2 and 3), so a hash `blocks` long costs
/// `iterations × blocks`, and that must not exceed `max` (the policy's
/// `max_iterations`, a count of one-block iterations). The refusal is the
/// iteration bound's own error, with the ceiling for this hash's shape.
fn check_work(parsed: &Parsed<'_>, min: u32, max: u32) -> Result<(), HashError> {
    let blocks = parsed
        .hash
        .len()
        .div_ceil(parsed.digest.output_len())
        .max(1);
    // At most 4 (a 64-byte hash of 20-byte SHA-1 blocks).
    let blocks = u32::try_from(blocks)
        .ok()
        .and_then(NonZeroU32::new)
        .unwrap_or(NonZeroU32::MAX);
    let ceiling = max / blocks;
    if parsed.iterations > ceiling {
        return Err(HashError::Iterations {
            found: u64::from(parsed.iterations),
            min,
            max: ceiling,
        });
    }
    Ok(())
}

fn nonzero(iterations: u32) -> NonZeroU32 {
    // Policy validation and parsing both require iterations >= min >= 1.
    NonZeroU32::new(iterations).unwrap_or(NonZeroU32::MIN)
}

/// Derives `out` from the password, mixing in the pepper first when there is
/// one: `PBKDF2(HMAC-SHA256(pepper, password), salt)`. The HMAC keeps the
/// pepper out of the salt, so the PHC string stays the whole public state.
/// Imported hashes never have a pepper: they were made without one.
fn derive(
    digest: Digest,
    password: &Password,
    pepper: Option<&Pepper>,
    salt: &[u8],
    iterations: NonZeroU32,
    out: &mut [u8],
) {
    let peppered;
    let input: &[u8] = match pepper {
        Some(p) => {
            peppered = zeroize::Zeroizing::new(crate::mac::hmac_sha256(
                p.key.unprotected_as_bytes(),
                &[password.unprotected_as_bytes()],
            ));
            &peppered[..]
        }
        None => password.unprotected_as_bytes(),
    };
    digest.pbkdf2(input, salt, iterations, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Keyward;

    fn kw_with(iterations: u32) -> Keyward {
        let p = PasswordPolicy {
            iterations,
            ..PasswordPolicy::default()
        };
        Keyward::builder()
            .password_policy(p)
            .build()
            .expect("valid policy")
    }

    #[test]
    fn hash_then_verify_without_rehash_at_current_policy() {
        let kw = kw_with(1000);
        let pw = Password::from("correct horse");
        let stored = kw.passwords().hash(&pw).expect("hash");
        assert!(
            stored.starts_with("$pbkdf2-sha256$i=1000,l=32$"),
            "{stored}"
        );
        let v = kw
            .passwords()
            .verify("user", &pw, &stored)
            .expect("correct password");
        assert!(v.rehash().is_none());
        assert_eq!(v.old_hash(), stored);
        assert!(matches!(
            kw.passwords()
                .verify("user", &Password::from("correct horsE"), &stored),
            Err(Error::PasswordMismatch)
        ));
    }

    #[test]
    fn length_limits_are_checked_before_work() {
        let kw = kw_with(1000);
        let short = Password::from("seven77");
        assert!(matches!(
            kw.passwords().hash(&short),
            Err(Error::PasswordTooShort { min_chars: 8 })
        ));
        let long = Password::from_bytes(vec![b'a'; 1025]);
        assert!(matches!(
            kw.passwords().hash(&long),
            Err(Error::PasswordTooLong { max_bytes: 1024 })
        ));
        let exactly = Password::from_bytes(vec![b'a'; 1024]);
        let stored = kw
            .passwords()
            .hash(&exactly)
            .expect("1024 bytes is allowed");
        let _ = kw
            .passwords()
            .verify("user", &exactly, &stored)
            .expect("verifies");
    }

    #[test]
    fn invalid_policies_are_rejected() {
        let p = PasswordPolicy {
            iterations: 999,
            ..PasswordPolicy::default()
        };
        assert!(matches!(
            Keyward::builder().password_policy(p).build(),
            Err(Error::Config(_))
        ));
        let p = PasswordPolicy {
            min_length: 2000,
            ..PasswordPolicy::default()
        };
        assert!(matches!(
            Keyward::builder().password_policy(p).build(),
            Err(Error::Config(_))
        ));
        let p = PasswordPolicy {
            max_in_flight: 0,
            ..PasswordPolicy::default()
        };
        assert!(matches!(
            Keyward::builder().password_policy(p).build(),
            Err(Error::Config(_))
        ));
    }

    #[test]
    fn inspect_reports_parameters() {
        let kw = kw_with(2000);
        let stored = kw
            .passwords()
            .hash(&Password::from("correct horse"))
            .expect("hash");
        let info = kw.passwords().inspect(&stored).expect("inspect");
        assert_eq!(info.scheme, Scheme::Pbkdf2Sha256);
        assert_eq!(
            (info.iterations, info.salt_len, info.hash_len),
            (2000, 16, 32)
        );
        assert!(!info.needs_rehash);
        assert!(
            kw_with(3000)
                .passwords()
                .inspect(&stored)
                .expect("inspect")
                .needs_rehash
        );
    }

    #[test]
    fn unknown_user_always_mismatches() {
        let kw = kw_with(1000);
        let r = kw
            .passwords()
            .verify_unknown_user(&Password::from("anything at all"));
        assert!(matches!(r, Error::PasswordMismatch));
        let long = Password::from_bytes(vec![0u8; 5000]);
        assert!(matches!(
            kw.passwords().verify_unknown_user(&long),
            Error::PasswordTooLong { .. }
        ));
    }
}
