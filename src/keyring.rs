//! The key ring: every server-side secret keyward uses, in one file.
//!
//! - a server MAC key (HMAC-SHA256), from which each service derives its
//!   own key ([`KeyRing::derive`]): refresh tokens, one-time codes and
//!   keyed token digests never share one, and none holds the MAC key
//!   itself;
//! - optional password peppers, each with an id stored in the hashes it
//!   made, so an old pepper still verifies while new hashes use the current
//!   one;
//! - JWT signing keys, each with a `kid` and a pinned algorithm.
//!
//! The file is JSON with a version number and base64 fields. keyward writes
//! it with mode 0600 and never overwrites an existing one; on Unix,
//! [`KeyRing::load`] refuses a file that its group or other users may write,
//! and warns about one that any user may read. It is as
//! sensitive as a database password: keep it out of version control and
//! backups that are less protected than the database.
//!
//! ```
//! use keyward::{JwtAlg, KeyRing};
//! # fn main() -> Result<(), keyward::Error> {
//! let mut keys = KeyRing::generate(JwtAlg::EdDSA)?;
//! keys.add_pepper()?; // opt in to a pepper for new password hashes
//! let json = keys.to_json();
//! let again = KeyRing::from_json(&json)?;
//! assert_eq!(again.current_jwt_key().kid(), keys.current_jwt_key().kid());
//! # Ok(()) }
//! ```

use std::fmt;
use std::io::Write;
use std::path::Path;

use base64ct::{Base64, Encoding};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{Error, KeyringError};
use crate::mac::hmac_sha256;
use crate::random::fill_random;

pub use crate::secret::SecretBytes;

/// The key ring file format version this build reads and writes.
pub const KEYRING_VERSION: u32 = 1;
/// Length of the server MAC key and of HS256 and pepper keys: 32 bytes,
/// the HMAC-SHA256 block-size-safe length RFC 2104 §3 recommends (≥ L).
const SYMMETRIC_KEY_LEN: usize = 32;

/// What [`KeyRing::derive`] MACs before the label. The NUL ends the fixed
/// part, so no derivation input begins like another MAC keyward computes
/// under the server MAC key.
const DERIVE_DOMAIN: &[u8] = b"keyward derive v1\0";
/// The label of the refresh-token key (see [`KeyRing::derive`]).
pub(crate) const SESSION_KEY_LABEL: &str = "session";
/// The label of the one-time-code key (see [`KeyRing::derive`]).
pub(crate) const OTP_KEY_LABEL: &str = "otp";
/// The label of the API-key owner-tag key (see [`KeyRing::derive`]).
pub(crate) const API_KEY_LABEL: &str = "api_key";
/// The label of the rate-limit key-tag key (see [`KeyRing::derive`]).
pub(crate) const LIMIT_KEY_LABEL: &str = "limit";
/// The whole input of the keyed token-digest key, which predates
/// [`KeyRing::derive`] and is kept as it was, so that stored digests still
/// match: `HMAC-SHA256(mac_key, "keyward token digest v1")`. HMAC-SHA256 as
/// a PRF over a fixed label, as key derivation functions do (RFC 5869,
/// NIST SP 800-108r1).
const TOKEN_DIGEST_LABEL: &[u8] = b"keyward token digest v1";

/// A JWT signing algorithm. Each key is pinned to one; a token's own `alg`
/// header never chooses (RFC 8725 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum JwtAlg {
    /// Ed25519 signatures (RFC 8037). The default.
    EdDSA,
    /// HMAC-SHA256 with a 32-byte random key (never a passphrase).
    HS256,
    /// ECDSA P-256 with SHA-256.
    ES256,
}

impl JwtAlg {
    /// The JOSE name: `EdDSA`, `HS256` or `ES256`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::EdDSA => "EdDSA",
            Self::HS256 => "HS256",
            Self::ES256 => "ES256",
        }
    }
}

impl fmt::Display for JwtAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for JwtAlg {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "EdDSA" => Ok(Self::EdDSA),
            "HS256" => Ok(Self::HS256),
            "ES256" => Ok(Self::ES256),
            _ => Err(Error::Config(format!(
                "unsupported JWT algorithm {s:?}; use EdDSA, HS256 or ES256"
            ))),
        }
    }
}

/// A JWT signing key: PKCS#8 DER for EdDSA and ES256, raw bytes for HS256.
pub struct JwtKey {
    kid: String,
    alg: JwtAlg,
    secret: SecretBytes,
}

impl JwtKey {
    /// The key id, sent in the token header.
    #[must_use]
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The algorithm this key is pinned to.
    #[must_use]
    pub fn alg(&self) -> JwtAlg {
        self.alg
    }

    pub(crate) fn secret(&self) -> &SecretBytes {
        &self.secret
    }

    /// The public key: the raw 32-byte Ed25519 key (RFC 8032), or the
    /// uncompressed P-256 point `0x04 ‖ x ‖ y` (SEC 1 §2.3.3). `None` for
    /// HS256, which has no public half.
    ///
    /// # Errors
    /// [`Error::Keyring`] when the stored private key does not parse.
    pub fn public_key(&self) -> Result<Option<Vec<u8>>, Error> {
        use aws_lc_rs::signature::{
            ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
        };
        let bad = || {
            Error::Keyring(KeyringError::Format(format!(
                "JWT key {} does not parse",
                self.kid
            )))
        };
        let der = self.secret.unprotected_as_bytes();
        match self.alg {
            JwtAlg::EdDSA => Ed25519KeyPair::from_pkcs8(der)
                .map(|k| Some(k.public_key().as_ref().to_vec()))
                .map_err(|_| bad()),
            JwtAlg::ES256 => EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                .map(|k| Some(k.public_key().as_ref().to_vec()))
                .map_err(|_| bad()),
            JwtAlg::HS256 => Ok(None),
        }
    }

    fn generate(alg: JwtAlg) -> Result<Self, Error> {
        use aws_lc_rs::rand::SystemRandom;
        use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair};
        let rng = SystemRandom::new();
        let secret = match alg {
            // PKCS#8 v1 (RFC 8410): the form every other tool reads; v2's
            // extra public-key field is refused by some (Python's cryptography).
            JwtAlg::EdDSA => Ed25519KeyPair::generate_pkcs8v1(&rng)
                .map_err(|_| Error::Rng)?
                .as_ref()
                .to_vec(),
            JwtAlg::ES256 => EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(|_| Error::Rng)?
                .as_ref()
                .to_vec(),
            JwtAlg::HS256 => random_vec(SYMMETRIC_KEY_LEN)?,
        };
        Ok(Self {
            kid: random_id()?,
            alg,
            secret: SecretBytes::new(secret),
        })
    }
}

impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// Every server-side secret keyward uses. See the [module docs](self).
pub struct KeyRing {
    mac_key: SecretBytes,
    peppers: Vec<(String, SecretBytes)>,
    current_pepper: Option<String>,
    jwt_keys: Vec<JwtKey>,
    current_jwt: usize,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field(
                "peppers",
                &self.peppers.iter().map(|(id, _)| id).collect::<Vec<_>>(),
            )
            .field("current_pepper", &self.current_pepper)
            .field("jwt_keys", &self.jwt_keys)
            .finish_non_exhaustive()
    }
}

impl KeyRing {
    /// Generates a key ring from the OS CSPRNG: a MAC key and one JWT key of
    /// the given algorithm. No pepper; see [`add_pepper`](Self::add_pepper).
    ///
    /// # Errors
    /// [`Error::Rng`] if the OS RNG fails.
    pub fn generate(alg: JwtAlg) -> Result<Self, Error> {
        Ok(Self {
            mac_key: SecretBytes::new(random_vec(SYMMETRIC_KEY_LEN)?),
            peppers: Vec::new(),
            current_pepper: None,
            jwt_keys: vec![JwtKey::generate(alg)?],
            current_jwt: 0,
        })
    }

    /// Adds a new random pepper and makes it current. Hashes made with older
    /// peppers still verify, and are rehashed to this one on login.
    ///
    /// # Errors
    /// [`Error::Rng`] if the OS RNG fails.
    pub fn add_pepper(&mut self) -> Result<&str, Error> {
        let id = random_id()?;
        self.peppers
            .push((id.clone(), SecretBytes::new(random_vec(SYMMETRIC_KEY_LEN)?)));
        self.current_pepper = Some(id);
        Ok(self.current_pepper.as_deref().unwrap_or_default())
    }

    /// The id of the pepper new password hashes use, if any.
    #[must_use]
    pub fn current_pepper_id(&self) -> Option<&str> {
        self.current_pepper.as_deref()
    }

    /// The ids of every pepper, oldest first: public facts, never a key.
    /// A password hash names the pepper it was made with by this id; one
    /// that names an id not listed here cannot be verified with this ring.
    pub fn pepper_ids(&self) -> impl Iterator<Item = &str> {
        self.peppers.iter().map(|(id, _)| id.as_str())
    }

    pub(crate) fn peppers(&self) -> impl Iterator<Item = (&str, &SecretBytes)> {
        self.peppers.iter().map(|(id, k)| (id.as_str(), k))
    }

    /// A 32-byte key for one purpose, derived from the server MAC key:
    /// `HMAC-SHA256(mac_key, "keyward derive v1\0" ‖ label)`, HMAC-SHA256
    /// used as a PRF over a fixed label, as key derivation functions do
    /// (RFC 5869, NIST SP 800-108r1).
    ///
    /// The same ring and label always give the same key; another label or
    /// another ring gives an unrelated one, and no derived key reveals the
    /// MAC key or another derived key. So each service holds only its own
    /// key, and a key leaked from one purpose cannot forge another's
    /// values.
    ///
    /// A label names a purpose and is an ASCII constant of the program,
    /// never input: `"csrf"`, `"cookie v2"`. keyward itself uses
    /// `"session"` (refresh tokens) and `"otp"` (one-time codes); an
    /// application picks other labels. Changing a label, like replacing
    /// the key ring, changes the key.
    ///
    /// ```
    /// use keyward::{JwtAlg, KeyRing};
    /// # fn main() -> Result<(), keyward::Error> {
    /// let keys = KeyRing::generate(JwtAlg::EdDSA)?;
    /// let csrf = keys.derive("csrf");
    /// assert_eq!(csrf.unprotected_as_bytes().len(), 32);
    /// assert_eq!(csrf.unprotected_as_bytes(), keys.derive("csrf").unprotected_as_bytes());
    /// assert_ne!(csrf.unprotected_as_bytes(), keys.derive("cookie").unprotected_as_bytes());
    /// assert_eq!(format!("{csrf:?}"), "SecretBytes(OMITTED)");
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn derive(&self, label: &str) -> SecretBytes {
        self.subkey(&[DERIVE_DOMAIN, label.as_bytes()])
    }

    /// The key of keyed token digests ([`Tokens::keyed`](crate::Tokens::keyed)),
    /// derived as it always was (see `TOKEN_DIGEST_LABEL`).
    pub(crate) fn token_digest_key(&self) -> SecretBytes {
        self.subkey(&[TOKEN_DIGEST_LABEL])
    }

    /// `HMAC-SHA256(mac_key, parts…)`, as a key. The one use of the server
    /// MAC key.
    fn subkey(&self, parts: &[&[u8]]) -> SecretBytes {
        let key = Zeroizing::new(hmac_sha256(self.mac_key.unprotected_as_bytes(), parts));
        SecretBytes::new(key.to_vec())
    }

    /// The key that signs new JWTs.
    #[must_use]
    pub fn current_jwt_key(&self) -> &JwtKey {
        // `current_jwt` always indexes `jwt_keys`: every constructor checks it.
        &self.jwt_keys[self.current_jwt]
    }

    /// Every JWT key, current and older.
    pub fn jwt_keys(&self) -> impl Iterator<Item = &JwtKey> {
        self.jwt_keys.iter()
    }

    /// Adds a new JWT signing key and makes it current. Older keys keep
    /// verifying tokens until [`retire_jwt`](Self::retire_jwt) removes them;
    /// wait at least one access-token lifetime before retiring.
    ///
    /// # Errors
    /// [`Error::Rng`] if key generation fails.
    pub fn rotate_jwt(&mut self, alg: JwtAlg) -> Result<&JwtKey, Error> {
        let key = JwtKey::generate(alg)?;
        self.jwt_keys.push(key);
        self.current_jwt = self.jwt_keys.len().saturating_sub(1);
        Ok(self.current_jwt_key())
    }

    /// Removes a JWT key: tokens it signed are rejected from then on.
    ///
    /// # Errors
    /// [`Error::Config`] when `kid` is unknown or is the current key.
    pub fn retire_jwt(&mut self, kid: &str) -> Result<(), Error> {
        let index = self
            .jwt_keys
            .iter()
            .position(|k| k.kid == kid)
            .ok_or_else(|| Error::Config(format!("no JWT key with kid {kid:?}")))?;
        if index == self.current_jwt {
            return Err(Error::Config(
                "the current JWT key cannot be retired; rotate first".into(),
            ));
        }
        self.jwt_keys.remove(index);
        if index < self.current_jwt {
            self.current_jwt = self.current_jwt.saturating_sub(1);
        }
        Ok(())
    }

    /// Reads a key ring file.
    ///
    /// Whoever can write the file can replace the keys: sign access tokens
    /// for any subject, choose the pepper, forge one-time codes. So on Unix
    /// the permissions of the file opened (after any symlink, as a
    /// Kubernetes secret mount has) are checked before its contents are
    /// read:
    ///
    /// - **Group- or world-writable** (any of the bits `0o022`, for example
    ///   mode 0620, 0602 or 0666): refused with [`KeyringError::Io`] of kind
    ///   [`PermissionDenied`](std::io::ErrorKind::PermissionDenied), whose
    ///   message names the mode, who may write and the fix (`chmod go-w`),
    ///   never the contents: they are not read. (Like the other I/O errors,
    ///   it leaves the path to the caller, which knows what it asked for.)
    /// - **World-readable** (bit `0o004`, for example 0644): loaded, with one
    ///   `tracing` warning naming the path and the mode. Kubernetes mounts
    ///   secrets 0644 unless the volume sets `defaultMode`, and a container
    ///   is often the machine's only user, so this is not refused; elsewhere
    ///   make it 0600 (or 0640 for a group of readers). [`save_new`](Self::save_new)
    ///   and [`save`](Self::save) write 0600.
    /// - Anything else (0600, 0400, 0640, 0440) loads silently.
    ///
    /// Only the file's own mode is checked: its directory, ACLs and owner
    /// are the operator's to keep private.
    ///
    /// On other platforms (Windows) there is no mode to check: the file is
    /// read without any permission check or warning, and its ACL is the
    /// operator's to restrict.
    ///
    /// # Errors
    /// [`Error::Keyring`] when the file cannot be read, is group- or
    /// world-writable (Unix), or is not a valid key ring of a supported
    /// version.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, Error> {
        use std::io::Read;
        let path = path.as_ref();
        let mut file = std::fs::File::open(path).map_err(KeyringError::Io)?;
        // The mode of the file opened, not of the path looked up again:
        // nothing can swap the file between the check and the read.
        #[cfg(unix)]
        check_mode(path, &file.metadata().map_err(KeyringError::Io)?)?;
        let mut text = Zeroizing::new(String::new());
        file.read_to_string(&mut text).map_err(KeyringError::Io)?;
        Self::from_json(&text)
    }

    /// Writes a new key ring file with mode 0600 (on Unix). Never overwrites.
    ///
    /// # Errors
    /// [`Error::Keyring`] with [`KeyringError::Exists`] when the file exists,
    /// or an I/O error.
    pub fn save_new(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => KeyringError::Exists,
            _ => KeyringError::Io(e),
        })?;
        let json = self.to_json();
        file.write_all(json.as_bytes()).map_err(KeyringError::Io)?;
        file.sync_all().map_err(KeyringError::Io)?;
        Ok(())
    }

    /// Replaces a key ring file atomically, for rotation: the new contents
    /// go to a sibling file in the same directory, created with mode 0600
    /// (on Unix, by the `open` call itself, so the keys are never readable
    /// by others, not even for a moment), synced to disk, then renamed over
    /// `path`, and the directory is synced. A reader sees the old file or
    /// the new one, never a mix, and a crash leaves one of the two. The
    /// file ends with mode 0600 whatever the old one had. A `path` that is
    /// a symbolic link is replaced by the file, not followed. Use
    /// [`save_new`](Self::save_new) for a first write.
    ///
    /// Two processes rewriting the same file at once each write a whole
    /// ring; the last rename wins. Serialise rotations (one operator, one
    /// job).
    ///
    /// # Errors
    /// [`Error::Keyring`] on an I/O error; the old file is then unchanged
    /// and the sibling file removed.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        let path = path.as_ref();
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(format!(".tmp-{}", random_id()?));
        let tmp = std::path::PathBuf::from(tmp);
        if let Err(e) = self.save_new(&tmp) {
            // A failed write may leave a partial file behind.
            if !matches!(e, Error::Keyring(KeyringError::Exists)) {
                let _ = std::fs::remove_file(&tmp);
            }
            return Err(e);
        }
        std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            Error::Keyring(KeyringError::Io(e))
        })?;
        // The rename itself is durable once the directory is synced.
        #[cfg(unix)]
        {
            let dir = match path.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(KeyringError::Io)?;
        }
        Ok(())
    }

    /// The key ring as JSON. The result holds every secret: treat it as one.
    #[must_use]
    pub fn to_json(&self) -> Zeroizing<String> {
        let file = File {
            version: KEYRING_VERSION,
            mac_key: b64(&self.mac_key),
            peppers: self
                .peppers
                .iter()
                .map(|(id, key)| FilePepper {
                    id: id.clone(),
                    key: b64(key),
                })
                .collect(),
            current_pepper: self.current_pepper.clone(),
            jwt_keys: self
                .jwt_keys
                .iter()
                .map(|k| FileJwtKey {
                    kid: k.kid.clone(),
                    alg: k.alg,
                    key: b64(&k.secret),
                })
                .collect(),
            current_jwt: self.current_jwt_key().kid.clone(),
        };
        // Serialising plain strings and numbers cannot fail.
        Zeroizing::new(serde_json::to_string_pretty(&file).unwrap_or_default())
    }

    /// Parses a key ring from JSON.
    ///
    /// # Errors
    /// [`Error::Keyring`] when the JSON is not a valid key ring.
    pub fn from_json(json: &str) -> Result<Self, Error> {
        let bad = |msg: &str| Error::Keyring(KeyringError::Format(msg.to_owned()));
        let file: File = serde_json::from_str(json)
            // serde's own message can quote a value, which may be a key: only
            // the position and the kind of problem are reported.
            .map_err(|e| {
                let kind = match e.classify() {
                    serde_json::error::Category::Syntax => "not valid JSON",
                    serde_json::error::Category::Eof => "truncated JSON",
                    serde_json::error::Category::Data => "a missing, unknown or mistyped field",
                    serde_json::error::Category::Io => "unreadable",
                };
                bad(&format!("line {}, column {}: {kind}", e.line(), e.column()))
            })?;
        if file.version != KEYRING_VERSION {
            return Err(bad("unsupported version"));
        }
        let mac_key = unb64(&file.mac_key, "mac_key")?;
        if mac_key.unprotected_as_bytes().len() < SYMMETRIC_KEY_LEN {
            return Err(bad("mac_key is shorter than 32 bytes"));
        }
        let mut peppers = Vec::with_capacity(file.peppers.len());
        for p in &file.peppers {
            if !is_valid_pepper_id(&p.id) {
                return Err(bad("pepper id must be 1 to 32 characters of [A-Za-z0-9-]"));
            }
            if peppers
                .iter()
                .any(|(id, _): &(String, SecretBytes)| *id == p.id)
            {
                return Err(bad("duplicate pepper id"));
            }
            let key = unb64(&p.key, "pepper key")?;
            if key.unprotected_as_bytes().len() < SYMMETRIC_KEY_LEN {
                return Err(bad("pepper key is shorter than 32 bytes"));
            }
            peppers.push((p.id.clone(), key));
        }
        if let Some(cur) = &file.current_pepper
            && !peppers.iter().any(|(id, _)| id == cur)
        {
            return Err(bad("current_pepper names no pepper"));
        }
        let mut jwt_keys: Vec<JwtKey> = Vec::with_capacity(file.jwt_keys.len());
        for k in &file.jwt_keys {
            if k.kid.is_empty() || jwt_keys.iter().any(|j| j.kid == k.kid) {
                return Err(bad("JWT kids must be non-empty and unique"));
            }
            let secret = unb64(&k.key, "JWT key")?;
            if k.alg == JwtAlg::HS256 && secret.unprotected_as_bytes().len() < SYMMETRIC_KEY_LEN {
                return Err(bad("HS256 keys must be at least 32 bytes"));
            }
            jwt_keys.push(JwtKey {
                kid: k.kid.clone(),
                alg: k.alg,
                secret,
            });
        }
        let current_jwt = jwt_keys
            .iter()
            .position(|k| k.kid == file.current_jwt)
            .ok_or_else(|| bad("current_jwt names no key"))?;
        Ok(Self {
            mac_key,
            peppers,
            current_pepper: file.current_pepper.clone(),
            jwt_keys,
            current_jwt,
        })
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    version: u32,
    mac_key: Zeroizing<String>,
    #[serde(default)]
    peppers: Vec<FilePepper>,
    #[serde(default)]
    current_pepper: Option<String>,
    jwt_keys: Vec<FileJwtKey>,
    current_jwt: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePepper {
    id: String,
    key: Zeroizing<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileJwtKey {
    kid: String,
    alg: JwtAlg,
    key: Zeroizing<String>,
}

/// Refuses a key ring file that users other than its owner may write, and
/// warns when every user may read it. See [`KeyRing::load`].
#[cfg(unix)]
fn check_mode(path: &Path, meta: &std::fs::Metadata) -> Result<(), KeyringError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    let writable_by = match (mode & 0o020 != 0, mode & 0o002 != 0) {
        (false, false) => None,
        (true, false) => Some("its group"),
        (false, true) => Some("any user"),
        (true, true) => Some("its group and any user"),
    };
    if let Some(who) = writable_by {
        return Err(KeyringError::Io(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "refused: file mode {mode:04o} lets {who} write it, and so replace the keys; \
                 remove those write bits (chmod go-w, or chmod 600)"
            ),
        )));
    }
    if mode & 0o004 != 0 {
        tracing::warn!(
            path = %path.display(),
            mode = %format_args!("{mode:04o}"),
            "key ring file is readable by every user on this machine; \
             make it 0600 unless this is a container's secret mount"
        );
    }
    Ok(())
}

fn b64(key: &SecretBytes) -> Zeroizing<String> {
    Zeroizing::new(Base64::encode_string(key.unprotected_as_bytes()))
}

fn unb64(s: &str, what: &str) -> Result<SecretBytes, Error> {
    Base64::decode_vec(s)
        .map(SecretBytes::new)
        .map_err(|_| Error::Keyring(KeyringError::Format(format!("{what} is not valid base64"))))
}

fn random_vec(len: usize) -> Result<Vec<u8>, Error> {
    let mut v = vec![0u8; len];
    fill_random(&mut v)?;
    Ok(v)
}

/// A random 64-bit id in lowercase hex, for kids and pepper ids.
fn random_id() -> Result<String, Error> {
    let mut b = [0u8; 8];
    fill_random(&mut b)?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Longest pepper id; ids are short labels, not key material.
const MAX_PEPPER_ID_LEN: usize = 32;

/// A pepper id: 1 to 32 characters of `[A-Za-z0-9-]`, which PHC allows as a
/// parameter value without escaping. The key ring owns pepper ids; the PHC
/// codec reads and writes them.
pub(crate) fn is_valid_pepper_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_PEPPER_ID_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_keeps_every_key() {
        for alg in [JwtAlg::EdDSA, JwtAlg::HS256, JwtAlg::ES256] {
            let mut k = KeyRing::generate(alg).expect("generate");
            k.add_pepper().expect("pepper");
            let back = KeyRing::from_json(&k.to_json()).expect("parse");
            assert_eq!(back.to_json(), k.to_json());
            assert_eq!(back.current_jwt_key().alg(), alg);
        }
    }

    #[test]
    fn debug_shows_no_key_material() {
        let mut k = KeyRing::generate(JwtAlg::HS256).expect("generate");
        k.add_pepper().expect("pepper");
        let shown = format!("{k:?}");
        let json = k.to_json();
        let parsed: serde_json::Value = serde_json::from_str(&json).expect("json");
        let mac = parsed["mac_key"].as_str().expect("mac_key");
        let jwt = parsed["jwt_keys"][0]["key"].as_str().expect("key");
        assert!(!shown.contains(mac) && !shown.contains(jwt), "{shown}");
    }

    #[test]
    fn malformed_files_are_rejected_with_reasons() {
        let good = KeyRing::generate(JwtAlg::EdDSA)
            .expect("generate")
            .to_json();
        let v: serde_json::Value = serde_json::from_str(&good).expect("json");
        let mutate = |f: &dyn Fn(&mut serde_json::Value)| {
            let mut v = v.clone();
            f(&mut v);
            KeyRing::from_json(&v.to_string())
        };
        assert!(mutate(&|v| v["version"] = 2.into()).is_err());
        assert!(mutate(&|v| v["mac_key"] = "AAAA".into()).is_err());
        assert!(mutate(&|v| v["mac_key"] = "!!!".into()).is_err());
        assert!(mutate(&|v| v["current_jwt"] = "nope".into()).is_err());
        assert!(mutate(&|v| v["extra"] = 1.into()).is_err());
        assert!(mutate(&|v| v["current_pepper"] = "ghost".into()).is_err());
        assert!(KeyRing::from_json("not json").is_err());
        let err = mutate(&|v| v["mac_key"] = "AAAA".into())
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("key ring: invalid format: mac_key is shorter than 32 bytes")
        );
    }

    /// A generated ring whose MAC key is the bytes 0 to 31.
    fn ring_with_known_mac_key() -> KeyRing {
        let mut ring = KeyRing::generate(JwtAlg::HS256).expect("generate");
        ring.mac_key = SecretBytes::new((0..32).collect());
        ring
    }

    fn hex_of(key: &SecretBytes) -> String {
        crate::hex::encode(key.unprotected_as_bytes())
    }

    /// Known answers, computed independently with Python's `hmac` module:
    /// `hmac.new(bytes(range(32)), msg, hashlib.sha256).hexdigest()`.
    #[test]
    fn derivations_match_known_answers() {
        let ring = ring_with_known_mac_key();
        for (label, want) in [
            (
                SESSION_KEY_LABEL,
                "539d3f7f729f5e85a8842d9c9d1a933ecf7325300924ce77321d6379125e681a",
            ),
            (
                OTP_KEY_LABEL,
                "02cdd69c2a454285c070471df84e4107b0659190735a5232d53e72fc69edc47f",
            ),
            (
                API_KEY_LABEL,
                "11a232aefa2573d5aa34b34d6d120cea26a3a56a68552b0a0983a393f1668115",
            ),
            (
                LIMIT_KEY_LABEL,
                "ea512cb0689de3bef03633dd326d955f5c8aa6ab851c4658b30ec05e7d5d304f",
            ),
        ] {
            assert_eq!(hex_of(&ring.derive(label)), want, "{label}");
        }
        assert_eq!(
            hex_of(&ring.token_digest_key()),
            "7f7648901cbac15d76e2e259a87434b78d402a010cfc06d08e263c079ca80c3c"
        );
    }

    #[test]
    fn each_label_gives_its_own_key_and_the_same_label_the_same_key() {
        let ring = KeyRing::generate(JwtAlg::EdDSA).expect("generate");
        let labels = [
            SESSION_KEY_LABEL,
            OTP_KEY_LABEL,
            "csrf",
            "sessio",
            "session ",
        ];
        let keys: Vec<SecretBytes> = labels.iter().map(|l| ring.derive(l)).collect();
        for (i, a) in keys.iter().enumerate() {
            assert_eq!(a.unprotected_as_bytes().len(), 32);
            assert_eq!(
                a.unprotected_as_bytes(),
                ring.derive(labels[i]).unprotected_as_bytes()
            );
            for b in keys.iter().skip(i + 1) {
                assert_ne!(a.unprotected_as_bytes(), b.unprotected_as_bytes());
            }
            // No derived key is the MAC key or the token-digest key.
            assert_ne!(
                a.unprotected_as_bytes(),
                ring.mac_key.unprotected_as_bytes()
            );
            assert_ne!(
                a.unprotected_as_bytes(),
                ring.token_digest_key().unprotected_as_bytes()
            );
        }
    }

    #[test]
    fn two_rings_derive_different_keys() {
        let a = KeyRing::generate(JwtAlg::EdDSA).expect("generate");
        let b = KeyRing::generate(JwtAlg::EdDSA).expect("generate");
        for label in [SESSION_KEY_LABEL, OTP_KEY_LABEL, "csrf"] {
            assert_ne!(
                a.derive(label).unprotected_as_bytes(),
                b.derive(label).unprotected_as_bytes()
            );
        }
        assert_ne!(
            a.token_digest_key().unprotected_as_bytes(),
            b.token_digest_key().unprotected_as_bytes()
        );
        // A ring read back from its file derives the same keys.
        let again = KeyRing::from_json(&a.to_json()).expect("parse");
        assert_eq!(
            again.derive("csrf").unprotected_as_bytes(),
            a.derive("csrf").unprotected_as_bytes()
        );
    }

    /// Keyed token digests keep the key they always had, so stored digests
    /// still match: the old computation, written out.
    #[test]
    fn the_token_digest_key_is_unchanged() {
        let ring = KeyRing::generate(JwtAlg::EdDSA).expect("generate");
        let old = hmac_sha256(
            ring.mac_key.unprotected_as_bytes(),
            &[b"keyward token digest v1"],
        );
        assert_eq!(ring.token_digest_key().unprotected_as_bytes(), old);
    }

    #[test]
    fn a_derived_key_debug_is_redacted() {
        let ring = ring_with_known_mac_key();
        let key = ring.derive(SESSION_KEY_LABEL);
        let shown = format!("{key:?} {key:#?}");
        assert_eq!(shown, "SecretBytes(OMITTED) SecretBytes(OMITTED)");
        assert!(!shown.contains(&hex_of(&key)), "{shown}");
    }

    #[test]
    fn save_new_refuses_to_overwrite_and_sets_mode() {
        let dir = std::env::temp_dir().join(format!("keyward-test-{}", random_id().expect("id")));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("k.keys");
        let k = KeyRing::generate(JwtAlg::EdDSA).expect("generate");
        k.save_new(&path).expect("first save");
        assert!(matches!(
            k.save_new(&path),
            Err(Error::Keyring(KeyringError::Exists))
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let back = KeyRing::load(&path).expect("load");
        assert_eq!(back.current_jwt_key().kid(), k.current_jwt_key().kid());
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn rotate_retire_and_add_pepper_keep_older_keys_until_retired() {
        let mut k = KeyRing::generate(JwtAlg::EdDSA).expect("generate");
        let first = k.current_jwt_key().kid().to_owned();
        assert_eq!(k.pepper_ids().count(), 0);

        let second = k
            .rotate_jwt(JwtAlg::ES256)
            .expect("rotate")
            .kid()
            .to_owned();
        assert_ne!(first, second);
        assert_eq!(k.current_jwt_key().kid(), second);
        assert_eq!(k.current_jwt_key().alg(), JwtAlg::ES256);
        let kids: Vec<&str> = k.jwt_keys().map(JwtKey::kid).collect();
        assert_eq!(kids, [first.as_str(), second.as_str()]);

        // The current key and an unknown kid are refused, and change nothing.
        let before = k.to_json();
        assert!(matches!(k.retire_jwt(&second), Err(Error::Config(m)) if m.contains("current")));
        assert!(matches!(k.retire_jwt("nope"), Err(Error::Config(m)) if m.contains("no JWT key")));
        assert_eq!(k.to_json(), before);
        k.retire_jwt(&first).expect("retire the older key");
        let kids: Vec<&str> = k.jwt_keys().map(JwtKey::kid).collect();
        assert_eq!(kids, [second.as_str()]);
        assert_eq!(k.current_jwt_key().kid(), second);

        let p1 = k.add_pepper().expect("pepper").to_owned();
        let p2 = k.add_pepper().expect("pepper").to_owned();
        assert_ne!(p1, p2);
        assert!(is_valid_pepper_id(&p2));
        assert_eq!(
            k.pepper_ids().collect::<Vec<_>>(),
            [p1.as_str(), p2.as_str()]
        );
        assert_eq!(k.current_pepper_id(), Some(p2.as_str()));
        let back = KeyRing::from_json(&k.to_json()).expect("parse");
        assert_eq!(
            back.pepper_ids().collect::<Vec<_>>(),
            [p1.as_str(), p2.as_str()]
        );
    }

    #[test]
    fn save_replaces_the_file_whole_with_mode_0600() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("k.keys");
        let mut k = KeyRing::generate(JwtAlg::EdDSA).expect("generate");
        k.save_new(&path).expect("first save");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        }
        k.rotate_jwt(JwtAlg::HS256).expect("rotate");
        k.save(&path).expect("save");
        let back = KeyRing::load(&path).expect("load");
        assert_eq!(back.to_json(), k.to_json());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        // Nothing is left beside it.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["k.keys"]);

        // A directory that does not exist: an error, and no file anywhere.
        let missing = dir.path().join("nowhere").join("k.keys");
        assert!(matches!(
            k.save(&missing),
            Err(Error::Keyring(KeyringError::Io(_)))
        ));
        assert!(!dir.path().join("nowhere").exists());
        // A path that cannot be renamed over (a non-empty directory): the
        // old contents stay, and the sibling file is removed.
        let blocked = dir.path().join("blocked");
        std::fs::create_dir(&blocked).expect("dir");
        std::fs::write(blocked.join("x"), b"x").expect("write");
        assert!(matches!(
            k.save(&blocked),
            Err(Error::Keyring(KeyringError::Io(_)))
        ));
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["blocked", "k.keys"]);
    }
}
