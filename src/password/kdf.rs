//! The PBKDF2 core (RFC 8018 §5.2).
//!
//! Every password path in keyward ends here: the PHC scheme calls
//! [`pbkdf2_sha256`], and the other digests go through [`pbkdf2_sha512`].
//! Keeping one entry point per digest means one place to verify against
//! the published vectors, and one place to make fast.

use std::num::NonZeroU32;

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
pub(crate) fn pbkdf2_sha512(password: &[u8], salt: &[u8], iterations: NonZeroU32, out: &mut [u8]) {
    pbkdf2::pbkdf2_hmac::<sha2::Sha512>(password, salt, iterations.get(), out);
}
