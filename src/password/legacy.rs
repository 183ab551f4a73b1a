//! PBKDF2 password hashes imported from other stacks: Django, Werkzeug,
//! passlib and ASP.NET Identity. (bcrypt and Argon2 are in `imported.rs`;
//! this module only names them, in [`detect`].) keyward verifies each exactly as
//! its origin wrote it, never writes one, and upgrades it to the current
//! PHC form on the first correct login.
//!
//! | scheme | stored form | salt bytes | hash |
//! |---|---|---|---|
//! | `django-pbkdf2-sha256`, `-sha1` | `pbkdf2_sha256$<iter>$<salt>$<b64>` | the salt text's UTF-8 | base64, padded |
//! | `werkzeug-pbkdf2-sha256`, `-sha1`, `-sha512` | `pbkdf2:<hash>:<iter>$<salt>$<hex>` | the salt text's UTF-8 | lowercase hex |
//! | `passlib-pbkdf2-sha1`, `-sha256`, `-sha512` | `$pbkdf2$<rounds>$<ab64>$<ab64>` (`$pbkdf2-sha256$`, `$pbkdf2-sha512$`) | decoded ab64 | ab64 |
//! | `aspnet-identity-v2` | base64 of `0x00 ‖ salt[16] ‖ subkey[32]`, SHA-1, 1,000 iterations | raw | raw |
//! | `aspnet-identity-v3` | base64 of `0x01 ‖ prf ‖ iter ‖ salt_len ‖ salt ‖ subkey` (u32 big-endian) | raw | raw |
//!
//! The Django, Werkzeug and passlib hashes are one digest long (RFC 8018
//! `hLen`: 20, 32 or 64 bytes), exactly as those libraries write them.
//! passlib's "adapted base64" is the standard alphabet with `.` for `+` and
//! no padding; keyward accepts only what passlib writes (`.`, never `+` or
//! `=`). Werkzeug's `pbkdf2:<hash>$…` form, without a count, means
//! [`WERKZEUG_DEFAULT_ITERATIONS`](super::WERKZEUG_DEFAULT_ITERATIONS).
//!
//! Bounds are PHC's, checked before any hashing: iterations within the
//! policy, iterations × output blocks within its work bound (only ASP.NET
//! Identity hashes can be longer than one digest), salts of 8 to 64 bytes
//! (16 to 64 for ASP.NET Identity v3, which refuses shorter ones itself)
//! and the hash lengths above. Salt text must not contain ASCII control
//! characters.
//!
//! # Detection
//!
//! [`detect`] names the scheme from a prefix, without parsing the rest. The
//! prefixes cannot overlap, so a string belongs to one scheme or to none:
//!
//! - `$` starts PHC, passlib, bcrypt and Argon2; the identifier, up to the
//!   second `$`, decides. `pbkdf2` is passlib's SHA-1. After
//!   `pbkdf2-sha256` or `pbkdf2-sha512`, a field starting with a digit is
//!   passlib's bare round count; PHC parameters always start with a letter
//!   (`i=`). `2a`, `2b` and `2y` are bcrypt; `2x` and `2` are bcrypt
//!   variants that need their bugs to verify, refused with
//!   [`HashError::Unsupported`]. `argon2id`, `argon2i` and `argon2d` are
//!   Argon2's PHC strings.
//! - `pbkdf2_sha256$` and `pbkdf2_sha1$` are Django.
//! - `pbkdf2:sha256`, `pbkdf2:sha1` and `pbkdf2:sha512`, followed by `:` or
//!   `$`, are Werkzeug.
//! - A string made only of base64 characters is ASP.NET Identity when it
//!   starts with the encoding of its format byte: `AA`…`AP` (`0x00`, v2) or
//!   `AQ`…`Af` (`0x01`, v3). None of the other forms can start this way:
//!   they all contain `$`.
//! - Anything else is [`HashError::UnknownScheme`].

use base64ct::{Base64, Base64Unpadded, Encoding};

use super::Scheme;
use super::kdf::Digest;
use super::phc::{self, Bytes64, MAX_HASH_LEN, MAX_SALT_LEN, MIN_SALT_LEN};
use crate::error::HashError;

/// ASP.NET Identity v2: PBKDF2-HMAC-SHA1 with 1,000 iterations, fixed by
/// the format (ASP.NET Core `PasswordHasher`, `PasswordHasherCompatibilityMode.IdentityV2`).
const ASPNET_V2_ITERATIONS: u32 = 1_000;
/// ASP.NET Identity v2: a 16-byte salt and a 32-byte subkey.
const ASPNET_V2_SALT_LEN: usize = 16;
const ASPNET_V2_SUBKEY_LEN: usize = 32;
/// ASP.NET Identity v3 refuses salts and subkeys under 128 bits itself.
const ASPNET_V3_MIN_LEN: usize = 16;
/// The longest ASP.NET Identity blob accepted: the v3 header (13 bytes),
/// the longest salt and the longest subkey.
const ASPNET_MAX_LEN: usize = 13 + MAX_SALT_LEN + MAX_HASH_LEN;
/// Its standard padded base64 length.
const ASPNET_MAX_ENCODED: usize = ASPNET_MAX_LEN.div_ceil(3) * 4;

/// A legacy hash, parsed and checked against every bound. Legacy hashes
/// never carry a pepper.
pub(crate) struct LegacyHash {
    pub(crate) digest: Digest,
    pub(crate) iterations: u32,
    pub(crate) salt: Bytes64,
    pub(crate) hash: Bytes64,
}

/// Names the scheme of a stored hash from its prefix (see the module docs).
/// Covers the PHC schemes too, so that the one place deciding between PHC
/// and passlib is here.
pub(crate) fn detect(s: &str) -> Result<Scheme, HashError> {
    if let Some(rest) = s.strip_prefix('$') {
        let (ident, after) = rest.split_once('$').unwrap_or((rest, ""));
        let bare_rounds = after.as_bytes().first().is_some_and(u8::is_ascii_digit);
        return match (ident, bare_rounds) {
            ("pbkdf2", _) => Ok(Scheme::PasslibPbkdf2Sha1),
            ("pbkdf2-sha256", true) => Ok(Scheme::PasslibPbkdf2Sha256),
            ("pbkdf2-sha512", true) => Ok(Scheme::PasslibPbkdf2Sha512),
            ("pbkdf2-sha256", false) => Ok(Scheme::Pbkdf2Sha256),
            ("pbkdf2-sha512", false) => Ok(Scheme::Pbkdf2Sha512),
            ("2a" | "2b" | "2y", _) => Ok(Scheme::Bcrypt),
            ("2x", _) => Err(HashError::Unsupported(
                "bcrypt $2x$ (hashes made by crypt_blowfish's sign-extension bug)",
            )),
            ("2", _) => Err(HashError::Unsupported(
                "bcrypt $2$ (the first OpenBSD version)",
            )),
            ("argon2id", _) => Ok(Scheme::Argon2id),
            ("argon2i", _) => Ok(Scheme::Argon2i),
            ("argon2d", _) => Ok(Scheme::Argon2d),
            _ => Err(HashError::UnknownScheme),
        };
    }
    if s.starts_with("pbkdf2_sha256$") {
        return Ok(Scheme::DjangoPbkdf2Sha256);
    }
    if s.starts_with("pbkdf2_sha1$") {
        return Ok(Scheme::DjangoPbkdf2Sha1);
    }
    if let Some(rest) = s.strip_prefix("pbkdf2:") {
        let end = rest.find([':', '$']).unwrap_or(rest.len());
        return match rest.get(..end) {
            Some("sha256") => Ok(Scheme::WerkzeugPbkdf2Sha256),
            Some("sha1") => Ok(Scheme::WerkzeugPbkdf2Sha1),
            Some("sha512") => Ok(Scheme::WerkzeugPbkdf2Sha512),
            _ => Err(HashError::UnknownScheme),
        };
    }
    let bytes = s.as_bytes();
    if bytes.first() == Some(&b'A') && bytes.iter().all(|&b| is_base64_char(b)) {
        // The first byte is the format marker: 6 zero bits ('A'), then its
        // low 2 bits in the top of the second character.
        return match bytes.get(1) {
            Some(b'A'..=b'P') => Ok(Scheme::AspnetIdentityV2),
            Some(b'Q'..=b'Z' | b'a'..=b'f') => Ok(Scheme::AspnetIdentityV3),
            _ => Err(HashError::UnknownScheme),
        };
    }
    Err(HashError::UnknownScheme)
}

fn is_base64_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=')
}

/// Parses a legacy hash of the scheme [`detect`] named, checking every bound
/// before any hashing.
pub(crate) fn parse(
    s: &str,
    scheme: Scheme,
    min_iter: u32,
    max_iter: u32,
) -> Result<LegacyHash, HashError> {
    let bounds = Bounds { min_iter, max_iter };
    match scheme {
        Scheme::DjangoPbkdf2Sha256 => django(s, "pbkdf2_sha256$", Digest::Sha256, bounds),
        Scheme::DjangoPbkdf2Sha1 => django(s, "pbkdf2_sha1$", Digest::Sha1, bounds),
        Scheme::WerkzeugPbkdf2Sha256 => werkzeug(s, "pbkdf2:sha256", Digest::Sha256, bounds),
        Scheme::WerkzeugPbkdf2Sha1 => werkzeug(s, "pbkdf2:sha1", Digest::Sha1, bounds),
        Scheme::WerkzeugPbkdf2Sha512 => werkzeug(s, "pbkdf2:sha512", Digest::Sha512, bounds),
        Scheme::PasslibPbkdf2Sha1 => passlib(s, "$pbkdf2$", Digest::Sha1, bounds),
        Scheme::PasslibPbkdf2Sha256 => passlib(s, "$pbkdf2-sha256$", Digest::Sha256, bounds),
        Scheme::PasslibPbkdf2Sha512 => passlib(s, "$pbkdf2-sha512$", Digest::Sha512, bounds),
        Scheme::AspnetIdentityV2 => aspnet(s, 0x00, bounds),
        Scheme::AspnetIdentityV3 => aspnet(s, 0x01, bounds),
        // PHC strings are parsed by `phc`, bcrypt and Argon2 by `imported`.
        Scheme::Pbkdf2Sha256
        | Scheme::Pbkdf2Sha512
        | Scheme::Bcrypt
        | Scheme::Argon2id
        | Scheme::Argon2i
        | Scheme::Argon2d => Err(HashError::UnknownScheme),
    }
}

#[derive(Clone, Copy)]
struct Bounds {
    min_iter: u32,
    max_iter: u32,
}

impl Bounds {
    fn iterations(self, found: u64) -> Result<u32, HashError> {
        phc::check_iterations(found, self.min_iter, self.max_iter)
    }
}

/// `pbkdf2_sha256$<iterations>$<salt>$<base64 hash>` (Django's
/// `PBKDF2PasswordHasher.encode`). The salt is used as its UTF-8 bytes.
fn django(s: &str, prefix: &str, digest: Digest, bounds: Bounds) -> Result<LegacyHash, HashError> {
    let rest = s.strip_prefix(prefix).ok_or(HashError::UnknownScheme)?;
    let [iterations, salt, hash] =
        fields(rest, ["missing iterations", "missing salt", "missing hash"])?;
    let iterations = bounds.iterations(phc::parse_decimal(iterations, "iterations")?)?;
    let salt = text_salt(salt)?;
    let hash = decode_padded_b64(hash, digest.output_len())?;
    Ok(LegacyHash {
        digest,
        iterations,
        salt,
        hash,
    })
}

/// `pbkdf2:<hash>:<iterations>$<salt>$<hex>`, or `pbkdf2:<hash>$<salt>$<hex>`
/// with the count implied (Werkzeug's `generate_password_hash`). The salt is
/// used as its UTF-8 bytes.
fn werkzeug(
    s: &str,
    prefix: &str,
    digest: Digest,
    bounds: Bounds,
) -> Result<LegacyHash, HashError> {
    let rest = s.strip_prefix(prefix).ok_or(HashError::UnknownScheme)?;
    let (count, rest) = match rest.strip_prefix(':') {
        Some(counted) => {
            let (count, rest) = counted
                .split_once('$')
                .ok_or(HashError::Structure("missing salt"))?;
            (Some(count), rest)
        }
        None => (
            None,
            rest.strip_prefix('$')
                .ok_or(HashError::Structure("missing salt"))?,
        ),
    };
    let iterations = match count {
        Some(count) => phc::parse_decimal(count, "iterations")?,
        None => u64::from(super::WERKZEUG_DEFAULT_ITERATIONS),
    };
    let iterations = bounds.iterations(iterations)?;
    let [salt, hash] = fields(rest, ["missing salt", "missing hash"])?;
    let salt = text_salt(salt)?;
    let hash = decode_lower_hex(hash, digest.output_len())?;
    Ok(LegacyHash {
        digest,
        iterations,
        salt,
        hash,
    })
}

/// `$pbkdf2-sha256$<rounds>$<ab64 salt>$<ab64 hash>` (passlib's
/// `pbkdf2_sha256`; `$pbkdf2$` is its SHA-1). The salt is decoded.
fn passlib(s: &str, prefix: &str, digest: Digest, bounds: Bounds) -> Result<LegacyHash, HashError> {
    let rest = s.strip_prefix(prefix).ok_or(HashError::UnknownScheme)?;
    let [rounds, salt, hash] = fields(rest, ["missing rounds", "missing salt", "missing hash"])?;
    let iterations = bounds.iterations(phc::parse_decimal(rounds, "rounds")?)?;
    let salt = decode_ab64(salt, Field::Salt, MIN_SALT_LEN, MAX_SALT_LEN)?;
    let len = digest.output_len();
    let hash = decode_ab64(hash, Field::Hash, len, len)?;
    Ok(LegacyHash {
        digest,
        iterations,
        salt,
        hash,
    })
}

/// ASP.NET Core Identity's `PasswordHasher` output: standard padded base64
/// of a format byte and its fields.
fn aspnet(s: &str, marker: u8, bounds: Bounds) -> Result<LegacyHash, HashError> {
    const WHAT: &str = "aspnet identity base64";
    if s.len() > ASPNET_MAX_ENCODED {
        return Err(HashError::Structure("aspnet identity hash is too long"));
    }
    if !s.len().is_multiple_of(4) {
        return Err(HashError::Encoding(WHAT));
    }
    let mut buf = [0u8; ASPNET_MAX_LEN];
    let bytes = Base64::decode(s, &mut buf).map_err(|_| HashError::Encoding(WHAT))?;
    match bytes.split_first() {
        Some((&0x00, rest)) if marker == 0x00 => aspnet_v2(rest, bounds),
        Some((&0x01, rest)) if marker == 0x01 => aspnet_v3(rest, bounds),
        _ => Err(HashError::Structure("aspnet identity format marker")),
    }
}

/// `0x00 ‖ salt[16] ‖ subkey[32]`: PBKDF2-HMAC-SHA1, 1,000 iterations.
fn aspnet_v2(rest: &[u8], bounds: Bounds) -> Result<LegacyHash, HashError> {
    if rest.len() != ASPNET_V2_SALT_LEN.saturating_add(ASPNET_V2_SUBKEY_LEN) {
        return Err(HashError::Structure("aspnet identity v2 is not 49 bytes"));
    }
    let iterations = bounds.iterations(u64::from(ASPNET_V2_ITERATIONS))?;
    let (salt, subkey) = rest
        .split_at_checked(ASPNET_V2_SALT_LEN)
        .ok_or(HashError::Structure("aspnet identity v2 is not 49 bytes"))?;
    Ok(LegacyHash {
        digest: Digest::Sha1,
        iterations,
        salt: Bytes64::from_slice(salt).ok_or(HashError::Structure("salt"))?,
        hash: Bytes64::from_slice(subkey).ok_or(HashError::Structure("subkey"))?,
    })
}

/// `0x01 ‖ prf ‖ iterations ‖ salt_len ‖ salt ‖ subkey`, the three numbers
/// as big-endian u32. PRF 0 is HMAC-SHA1, 1 HMAC-SHA256, 2 HMAC-SHA512.
fn aspnet_v3(rest: &[u8], bounds: Bounds) -> Result<LegacyHash, HashError> {
    const TRUNCATED: HashError = HashError::Structure("aspnet identity v3 header is truncated");
    let (prf, rest) = rest.split_first_chunk::<4>().ok_or(TRUNCATED)?;
    let (iterations, rest) = rest.split_first_chunk::<4>().ok_or(TRUNCATED)?;
    let (salt_len, rest) = rest.split_first_chunk::<4>().ok_or(TRUNCATED)?;
    let digest = match u32::from_be_bytes(*prf) {
        0 => Digest::Sha1,
        1 => Digest::Sha256,
        2 => Digest::Sha512,
        _ => return Err(HashError::BadParam("prf")),
    };
    let iterations = bounds.iterations(u64::from(u32::from_be_bytes(*iterations)))?;
    let salt_len = usize::try_from(u32::from_be_bytes(*salt_len)).unwrap_or(usize::MAX);
    if !(ASPNET_V3_MIN_LEN..=MAX_SALT_LEN).contains(&salt_len) {
        return Err(HashError::SaltLength {
            found: salt_len,
            min: ASPNET_V3_MIN_LEN,
            max: MAX_SALT_LEN,
        });
    }
    let (salt, subkey) = rest
        .split_at_checked(salt_len)
        .ok_or(HashError::Structure("aspnet identity v3 salt is truncated"))?;
    if !(ASPNET_V3_MIN_LEN..=MAX_HASH_LEN).contains(&subkey.len()) {
        return Err(HashError::OutputLength {
            found: subkey.len(),
            min: ASPNET_V3_MIN_LEN,
            max: MAX_HASH_LEN,
        });
    }
    Ok(LegacyHash {
        digest,
        iterations,
        salt: Bytes64::from_slice(salt).ok_or(HashError::Structure("salt"))?,
        hash: Bytes64::from_slice(subkey).ok_or(HashError::Structure("subkey"))?,
    })
}

/// Splits on `$` into exactly `N` fields, naming the first missing one.
fn fields<'a, const N: usize>(
    s: &'a str,
    missing: [&'static str; N],
) -> Result<[&'a str; N], HashError> {
    let mut out = [""; N];
    let mut parts = s.split('$');
    for (slot, what) in out.iter_mut().zip(missing) {
        *slot = parts.next().ok_or(HashError::Structure(what))?;
    }
    if parts.next().is_some() {
        return Err(HashError::Structure("too many fields"));
    }
    Ok(out)
}

/// A salt stored as text and used as its UTF-8 bytes (Django, Werkzeug).
fn text_salt(salt: &str) -> Result<Bytes64, HashError> {
    let bytes = salt.as_bytes();
    let length_error = HashError::SaltLength {
        found: bytes.len(),
        min: MIN_SALT_LEN,
        max: MAX_SALT_LEN,
    };
    if !(MIN_SALT_LEN..=MAX_SALT_LEN).contains(&bytes.len()) {
        return Err(length_error);
    }
    if bytes.iter().any(u8::is_ascii_control) {
        return Err(HashError::Encoding("salt"));
    }
    Bytes64::from_slice(bytes).ok_or(length_error)
}

/// Which field a decoder reads: it names the field in errors and picks the
/// length error.
#[derive(Clone, Copy)]
enum Field {
    Salt,
    Hash,
}

impl Field {
    fn name(self) -> &'static str {
        match self {
            Self::Salt => "salt",
            Self::Hash => "hash",
        }
    }

    fn length_error(self, found: usize, min: usize, max: usize) -> HashError {
        match self {
            Self::Salt => HashError::SaltLength { found, min, max },
            Self::Hash => HashError::OutputLength { found, min, max },
        }
    }
}

/// Standard base64 with padding, of exactly `len` bytes (Django's hash).
/// The length is read from the encoded length before decoding.
fn decode_padded_b64(field: &str, len: usize) -> Result<Bytes64, HashError> {
    let n = field.len();
    if !n.is_multiple_of(4) {
        return Err(HashError::Encoding("hash"));
    }
    let padding = field
        .bytes()
        .rev()
        .take_while(|&b| b == b'=')
        .count()
        .min(2);
    let found = (n / 4).saturating_mul(3).saturating_sub(padding);
    if found != len {
        return Err(Field::Hash.length_error(found, len, len));
    }
    let mut buf = [0u8; MAX_HASH_LEN];
    let decoded = Base64::decode(field, &mut buf).map_err(|_| HashError::Encoding("hash"))?;
    Bytes64::from_slice(decoded).ok_or(HashError::Encoding("hash"))
}

/// Lowercase hex of exactly `len` bytes (Werkzeug's hash), decoded into a
/// fixed buffer. Uppercase is refused: Werkzeug writes lowercase and
/// compares the hex text, so it would refuse uppercase too.
fn decode_lower_hex(field: &str, len: usize) -> Result<Bytes64, HashError> {
    let bytes = field.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return Err(HashError::Encoding("hash"));
    }
    let found = bytes.len() / 2;
    if found != len {
        return Err(Field::Hash.length_error(found, len, len));
    }
    let mut buf = [0u8; MAX_HASH_LEN];
    let out = buf.get_mut(..len).ok_or(HashError::Encoding("hash"))?;
    crate::hex::decode_into(bytes, out, crate::hex::Case::Lower)
        .ok_or(HashError::Encoding("hash"))?;
    Bytes64::from_slice(out).ok_or(HashError::Encoding("hash"))
}

/// passlib's adapted base64 (the standard alphabet with `.` for `+`, no
/// padding), decoded to `min..=max` bytes. `.` is mapped to `+` in a stack
/// buffer sized for the longest accepted field; `+` and `=` are refused.
fn decode_ab64(field: &str, what: Field, min: usize, max: usize) -> Result<Bytes64, HashError> {
    if field.bytes().any(|c| c == b'+' || c == b'=') {
        return Err(HashError::Encoding(what.name()));
    }
    let n = field.len();
    if n % 4 == 1 {
        return Err(HashError::Encoding(what.name()));
    }
    let found = (n / 4)
        .saturating_mul(3)
        .saturating_add((n % 4).saturating_sub(1));
    if !(min..=max).contains(&found) {
        return Err(what.length_error(found, min, max));
    }
    // 64 bytes, the most any field holds, are 86 characters unpadded.
    let mut mapped = [0u8; 88];
    let mapped = mapped
        .get_mut(..n)
        .ok_or(what.length_error(found, min, max))?;
    for (out, &c) in mapped.iter_mut().zip(field.as_bytes()) {
        *out = if c == b'.' { b'+' } else { c };
    }
    let mut buf = [0u8; 64];
    let decoded =
        Base64Unpadded::decode(&*mapped, &mut buf).map_err(|_| HashError::Encoding(what.name()))?;
    Bytes64::from_slice(decoded).ok_or(what.length_error(found, min, max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_is_by_prefix_and_never_overlaps() {
        let cases: &[(&str, Option<Scheme>)] = &[
            ("$pbkdf2-sha256$i=1000,l=32$x$y", Some(Scheme::Pbkdf2Sha256)),
            ("$pbkdf2-sha512$i=1000,l=64$x$y", Some(Scheme::Pbkdf2Sha512)),
            ("$pbkdf2-sha256$1000$x$y", Some(Scheme::PasslibPbkdf2Sha256)),
            ("$pbkdf2-sha512$1000$x$y", Some(Scheme::PasslibPbkdf2Sha512)),
            ("$pbkdf2$1000$x$y", Some(Scheme::PasslibPbkdf2Sha1)),
            ("$pbkdf2-sha256$", Some(Scheme::Pbkdf2Sha256)),
            ("$pbkdf2-sha1$i=1000,l=32$x$y", None),
            ("$pbkdf2-sha384$1000$x$y", None),
            (
                "pbkdf2_sha256$1000$salt$hash",
                Some(Scheme::DjangoPbkdf2Sha256),
            ),
            ("pbkdf2_sha1$1000$salt$hash", Some(Scheme::DjangoPbkdf2Sha1)),
            ("pbkdf2_sha512$1000$salt$hash", None),
            ("pbkdf2_sha256", None),
            ("pbkdf2:sha256:1000$s$h", Some(Scheme::WerkzeugPbkdf2Sha256)),
            ("pbkdf2:sha256$s$h", Some(Scheme::WerkzeugPbkdf2Sha256)),
            ("pbkdf2:sha1:1000$s$h", Some(Scheme::WerkzeugPbkdf2Sha1)),
            ("pbkdf2:sha512:1000$s$h", Some(Scheme::WerkzeugPbkdf2Sha512)),
            ("pbkdf2:sha256x:1000$s$h", None),
            ("pbkdf2:md5:1000$s$h", None),
            ("pbkdf2$s$h", None),
            ("scrypt:32768:8:1$s$h", None),
            ("AAAA", Some(Scheme::AspnetIdentityV2)),
            ("APxx", Some(Scheme::AspnetIdentityV2)),
            ("AQAA", Some(Scheme::AspnetIdentityV3)),
            ("Afxx", Some(Scheme::AspnetIdentityV3)),
            ("Agxx", None),
            ("A", None),
            ("AQ A", None),
            ("BAAA", None),
            ("", None),
            ("bcrypt$2b$whatever", None),
            ("$2a$10$x", Some(Scheme::Bcrypt)),
            ("$2b$12$x", Some(Scheme::Bcrypt)),
            ("$2y$04$x", Some(Scheme::Bcrypt)),
            ("$2b", Some(Scheme::Bcrypt)),
            ("$2c$10$x", None),
            ("$2B$10$x", None),
            ("$3$10$x", None),
            ("$argon2id$v=19$m=8,t=1,p=1$x$y", Some(Scheme::Argon2id)),
            ("$argon2i$v=19$m=8,t=1,p=1$x$y", Some(Scheme::Argon2i)),
            ("$argon2d$v=19$m=8,t=1,p=1$x$y", Some(Scheme::Argon2d)),
            ("$argon2id", Some(Scheme::Argon2id)),
            ("$argon2$v=19$m=8,t=1,p=1$x$y", None),
            ("$argon2ds$v=19$m=8,t=1,p=1$x$y", None),
            ("$Argon2id$v=19$m=8,t=1,p=1$x$y", None),
            ("argon2$argon2id$v=19$m=8,t=1,p=1$x$y", None),
        ];
        for (s, want) in cases {
            match want {
                Some(scheme) => assert_eq!(detect(s).ok(), Some(*scheme), "{s}"),
                None => assert_eq!(detect(s).err(), Some(HashError::UnknownScheme), "{s}"),
            }
        }
        for s in ["$2x$10$x", "$2$10$x"] {
            assert!(
                matches!(detect(s), Err(HashError::Unsupported(what)) if what.starts_with("bcrypt")),
                "{s}"
            );
        }
    }

    #[test]
    fn hex_decoder_is_strict_lowercase() {
        let ok = decode_lower_hex("00ff7f80", 4).map(|b| b.as_slice().to_vec());
        assert_eq!(ok.ok(), Some(vec![0x00, 0xff, 0x7f, 0x80]));
        for bad in ["00FF7f80", "00ff7f8g", "00ff7f8 ", "0xff7f80"] {
            assert_eq!(
                decode_lower_hex(bad, 4).err(),
                Some(HashError::Encoding("hash")),
                "{bad}"
            );
        }
        assert_eq!(
            decode_lower_hex("00ff7f8", 4).err(),
            Some(HashError::Encoding("hash"))
        );
        assert_eq!(
            decode_lower_hex("00ff7f", 4).err(),
            Some(HashError::OutputLength {
                found: 3,
                min: 4,
                max: 4
            })
        );
    }

    #[test]
    fn ab64_maps_dot_and_refuses_plus_and_padding() {
        // 0xfb 0xef 0xbe is "++++" in standard base64, "...." in ab64.
        let ok = decode_ab64("....", Field::Hash, 3, 3).map(|b| b.as_slice().to_vec());
        assert_eq!(ok.ok(), Some(vec![0xfb, 0xef, 0xbe]));
        for bad in ["++++", "..=="] {
            assert_eq!(
                decode_ab64(bad, Field::Hash, 1, 3).err(),
                Some(HashError::Encoding("hash")),
                "{bad}"
            );
        }
        // A non-canonical last character (unused bits set) is refused.
        assert_eq!(
            decode_ab64("AB", Field::Salt, 1, 3).err(),
            Some(HashError::Encoding("salt"))
        );
        assert_eq!(
            decode_ab64("AAAAA", Field::Salt, 1, 8).err(),
            Some(HashError::Encoding("salt"))
        );
    }
}
