//! Secret newtypes.
//!
//! A secret is a type, never a `String`: its `Debug` prints `OMITTED`, it is
//! zeroized when dropped, it has no `Display`, `Clone` or `Serialize`, and its
//! raw bytes are reached only through `unprotected_as_bytes()`, a name that
//! is easy to find in review.

use std::fmt;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A password, as received: no trimming, truncation or normalisation.
///
/// Build it from the request body's `String` (which moves the buffer, so no
/// copy is left behind) or from raw bytes.
///
/// ```
/// use keyward::Password;
/// let pw = Password::from(String::from("correct horse battery staple"));
/// assert_eq!(format!("{pw:?}"), "Password(OMITTED)");
/// ```
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct Password(Vec<u8>);

impl Password {
    /// Wraps raw bytes. The bytes need not be UTF-8.
    #[must_use]
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The raw password bytes. Use them only to hand to a KDF.
    #[must_use]
    pub fn unprotected_as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the password is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Length in characters (Unicode scalar values) when the password is
    /// UTF-8, otherwise in bytes.
    #[must_use]
    pub fn char_len(&self) -> usize {
        std::str::from_utf8(&self.0).map_or(self.0.len(), |s| s.chars().count())
    }
}

impl From<String> for Password {
    /// Takes the string's buffer without copying it.
    fn from(s: String) -> Self {
        Self(s.into_bytes())
    }
}

impl From<&str> for Password {
    fn from(s: &str) -> Self {
        Self(s.as_bytes().to_vec())
    }
}

impl From<&[u8]> for Password {
    fn from(b: &[u8]) -> Self {
        Self(b.to_vec())
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(OMITTED)")
    }
}

/// An opaque bearer token (an API key, a personal access token) as minted
/// by [`Tokens::generate`](crate::Tokens::generate): shown to its owner
/// once, never stored.
///
/// Its `Debug` prints `OMITTED`; it has no `Display`, `Clone` or
/// `Serialize`; it is zeroized on drop. The string is reached only through
/// [`unprotected_as_str`](Self::unprotected_as_str).
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct Token(String);

impl Token {
    /// Wraps a token string that the token module has just built.
    pub(crate) fn new(token: String) -> Self {
        Self(token)
    }

    /// The token string, to show to its owner once.
    #[must_use]
    pub fn unprotected_as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(OMITTED)")
    }
}

/// Key material held by the key ring: zeroized on drop, never printed.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct SecretBytes(Vec<u8>);

impl SecretBytes {
    pub(crate) fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    pub(crate) fn unprotected_as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBytes(OMITTED)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_secret_bytes() {
        let pw = Password::from("hunter2-secret");
        let shown = format!("{pw:?} {pw:#?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        let key = SecretBytes::new(b"super-secret-key".to_vec());
        let shown = format!("{key:?}");
        assert!(!shown.contains("super"), "{shown}");
    }

    #[test]
    fn char_len_counts_scalars_for_utf8_and_bytes_otherwise() {
        assert_eq!(Password::from("pässwörd").char_len(), 8);
        assert_eq!(Password::from("pässwörd").len(), 10);
        assert_eq!(Password::from_bytes(vec![0xff, 0xfe, 0x41]).char_len(), 3);
    }
}
