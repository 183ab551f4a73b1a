//! The PBKDF2 core (RFC 8018 §5.2).
//!
//! Every password path in keyward ends here: the PHC scheme calls
//! [`pbkdf2_sha256`], and the other digests go through [`pbkdf2_sha512`] and
//! [`pbkdf2_sha1`]. Keeping one entry point per digest means one place to
//! verify against the published vectors, and one place to make fast.

use std::num::NonZeroU32;

/// The HMAC digest a PBKDF2 derivation runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Digest {
    /// HMAC-SHA1: only in imported hashes (Django, Werkzeug, passlib,
    /// ASP.NET Identity); never for new ones.
    Sha1,
    /// HMAC-SHA256: new hashes.
    Sha256,
    /// HMAC-SHA512.
    Sha512,
}

impl Digest {
    /// The digest's output size in bytes, which is also the default PBKDF2
    /// output length of every legacy format (RFC 8018 §5.2 `hLen`).
    pub(crate) fn output_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha512 => 64,
        }
    }

    /// PBKDF2 with this digest, filling all of `out`.
    pub(crate) fn pbkdf2(
        self,
        password: &[u8],
        salt: &[u8],
        iterations: NonZeroU32,
        out: &mut [u8],
    ) {
        match self {
            Self::Sha1 => pbkdf2_sha1(password, salt, iterations, out),
            Self::Sha256 => pbkdf2_sha256(password, salt, iterations, out),
            Self::Sha512 => pbkdf2_sha512(password, salt, iterations, out),
        }
    }
}

/// PBKDF2-HMAC-SHA256 (RFC 8018 §5.2), filling all of `out`.
///
/// This is the single PBKDF2-HMAC-SHA256 implementation that keyward's
/// password hashing uses. It is exposed so that benchmarks and known-answer
/// tests reach exactly the code that production runs. It never compares
/// anything: use [`Passwords::verify`](crate::Passwords::verify) to check a
/// password.
///
/// An empty `out` derives nothing. The password may be any bytes, including
/// empty or non-UTF-8.
///
/// ```
/// use std::num::NonZeroU32;
/// let mut out = [0u8; 32];
/// let one = NonZeroU32::new(1).expect("non-zero");
/// keyward::password::pbkdf2_sha256(b"password", b"salt", one, &mut out);
/// // RFC 7914 §11, first PBKDF2-HMAC-SHA256 vector (first 32 bytes).
/// assert_eq!(out[..4], [0x12, 0x0f, 0xb6, 0xcf]);
/// ```
pub fn pbkdf2_sha256(password: &[u8], salt: &[u8], iterations: NonZeroU32, out: &mut [u8]) {
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, salt, iterations.get(), out);
}

/// PBKDF2-HMAC-SHA512 (RFC 8018 §5.2), filling all of `out`.
///
/// The single PBKDF2-HMAC-SHA512 implementation: `pbkdf2-sha512` PHC
/// strings and the SHA-512 legacy schemes (Werkzeug, passlib, ASP.NET
/// Identity v3) all derive here. Exposed, like [`pbkdf2_sha256`], for
/// known-answer tests; it never compares anything.
///
/// ```
/// use std::num::NonZeroU32;
/// let mut out = [0u8; 64];
/// let one = NonZeroU32::new(1).expect("non-zero");
/// keyward::password::pbkdf2_sha512(b"password", b"salt", one, &mut out);
/// assert_eq!(out[..4], [0x86, 0x7f, 0x70, 0xcf]);
/// ```
pub fn pbkdf2_sha512(password: &[u8], salt: &[u8], iterations: NonZeroU32, out: &mut [u8]) {
    pbkdf2::pbkdf2_hmac::<sha2::Sha512>(password, salt, iterations.get(), out);
}

/// PBKDF2-HMAC-SHA1 (RFC 8018 §5.2), filling all of `out`.
///
/// Used only to verify imported hashes (Django, Werkzeug, passlib and
/// ASP.NET Identity SHA-1 variants), which are always upgraded to
/// PBKDF2-HMAC-SHA256 on a correct login; keyward never writes a SHA-1
/// hash. Exposed, like [`pbkdf2_sha256`], for known-answer tests; it never
/// compares anything.
///
/// ```
/// use std::num::NonZeroU32;
/// let mut out = [0u8; 20];
/// let one = NonZeroU32::new(1).expect("non-zero");
/// keyward::password::pbkdf2_sha1(b"password", b"salt", one, &mut out);
/// // RFC 6070 §2, first test vector.
/// assert_eq!(out[..4], [0x0c, 0x60, 0xc8, 0x0f]);
/// ```
pub fn pbkdf2_sha1(password: &[u8], salt: &[u8], iterations: NonZeroU32, out: &mut [u8]) {
    pbkdf2::pbkdf2_hmac::<sha1::Sha1>(password, salt, iterations.get(), out);
}
