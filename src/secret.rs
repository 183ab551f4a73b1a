//! Secret newtypes.
//!
//! A secret is a type, never a `String`: its `Debug` prints `OMITTED`, it is
//! zeroized when dropped, it has no `Display`, `Clone` or `Serialize`, and its
//! raw bytes are reached only through `unprotected_as_bytes()` (or
//! `unprotected_as_str()`), a name that is easy to find in review.
//!
//! Every secret type of the crate is declared with [`secret_type!`], so
//! these properties hold for all of them by construction: the module that
//! owns a type declares it where it is used, and adds its own constructors
//! and methods in a separate `impl` block.

/// Declares a secret newtype over `Vec<u8>` or `String`.
///
/// ```text
/// crate::secret::secret_type! {
///     /// A refresh token.
///     pub struct RefreshToken(String);
///     /// The token string, to hand to the client.
///     fn unprotected_as_str;
/// }
/// ```
///
/// The type gets the doc comments and attributes written before `struct`,
/// `Zeroize` and `ZeroizeOnDrop`, a `Debug` that prints `Name(OMITTED)`,
/// and the accessor named after `fn`, with the struct's visibility:
/// `unprotected_as_bytes() -> &[u8]` for `Vec<u8>`,
/// `unprotected_as_str() -> &str` for `String`. It gets no `Clone`,
/// `Display`, `Serialize` or constructor: the defining module builds it
/// from its field, whose visibility the declaration states.
macro_rules! secret_type {
    (
        $(#[$attr:meta])*
        $vis:vis struct $name:ident($field_vis:vis Vec<u8>);
        $(#[$accessor_attr:meta])*
        fn unprotected_as_bytes;
    ) => {
        $(#[$attr])*
        #[derive(::zeroize::Zeroize, ::zeroize::ZeroizeOnDrop)]
        $vis struct $name($field_vis ::std::vec::Vec<u8>);

        impl $name {
            $(#[$accessor_attr])*
            #[must_use]
            $vis fn unprotected_as_bytes(&self) -> &[u8] {
                &self.0
            }
        }

        $crate::secret::redacted_debug!($name);
    };
    (
        $(#[$attr:meta])*
        $vis:vis struct $name:ident($field_vis:vis String);
        $(#[$accessor_attr:meta])*
        fn unprotected_as_str;
    ) => {
        $(#[$attr])*
        #[derive(::zeroize::Zeroize, ::zeroize::ZeroizeOnDrop)]
        $vis struct $name($field_vis ::std::string::String);

        impl $name {
            $(#[$accessor_attr])*
            #[must_use]
            $vis fn unprotected_as_str(&self) -> &str {
                &self.0
            }
        }

        $crate::secret::redacted_debug!($name);
    };
}

/// The `Debug` of a secret: `Name(OMITTED)`, whatever the value, with
/// `{:?}` and `{:#?}` alike. [`secret_type!`] uses it; a type that must
/// keep other derives (a stored MAC that is `Copy` and `Serialize`) uses
/// it alone.
macro_rules! redacted_debug {
    ($name:ident) => {
        impl ::core::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.write_str(::core::concat!(::core::stringify!($name), "(OMITTED)"))
            }
        }
    };
}

pub(crate) use {redacted_debug, secret_type};

secret_type! {
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
    pub struct Password(Vec<u8>);
    /// The raw password bytes. Use them only to hand to a KDF.
    fn unprotected_as_bytes;
}

impl Password {
    /// A second copy, zeroized on drop like the first, for work that must
    /// own it (the blocking pool). Not `Clone`, so that copies stay
    /// deliberate.
    pub(crate) fn duplicate(&self) -> Self {
        Self(self.0.clone())
    }

    /// Wraps raw bytes. The bytes need not be UTF-8.
    #[must_use]
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
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

secret_type! {
    /// An opaque secret string, shown to its owner once and never stored: an
    /// API key or personal access token as minted by
    /// [`Tokens::generate`](crate::Tokens::generate), and a second factor's
    /// secret, enrollment URI and recovery codes. Not a JWT like
    /// [`AccessToken`](crate::AccessToken), nor a
    /// [`RefreshToken`](crate::RefreshToken).
    ///
    /// Its `Debug` prints `OMITTED`; it has no `Display`, `Clone` or
    /// `Serialize`; it is zeroized on drop. The string is reached only through
    /// [`unprotected_as_str`](Self::unprotected_as_str).
    pub struct OpaqueToken(String);
    /// The token string, to show to its owner once.
    fn unprotected_as_str;
}

impl OpaqueToken {
    /// Wraps a token string that the token module has just built.
    pub(crate) fn new(token: String) -> Self {
        Self(token)
    }
}

/// The former name of [`OpaqueToken`].
#[deprecated(note = "renamed to `OpaqueToken`")]
pub type Token = OpaqueToken;

secret_type! {
    /// Key material: a key of the key ring, or a key derived from one with
    /// [`KeyRing::derive`](crate::KeyRing::derive). Zeroized on drop; its
    /// `Debug` prints `OMITTED`; it has no `Display`, `Clone` or
    /// `Serialize`.
    pub struct SecretBytes(Vec<u8>);
    /// The raw key bytes, to hand to a MAC or a KDF.
    fn unprotected_as_bytes;
}

impl SecretBytes {
    pub(crate) fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

#[cfg(test)]
mod tests {
    use std::marker::PhantomData;

    use super::*;
    use crate::jwt::AccessToken;
    use crate::otp::OtpCode;
    use crate::session::RefreshToken;

    /// Whether `T` has the traits a secret must not have. The inherent
    /// constants apply only when their bound holds; otherwise the trait's
    /// `false` is used.
    struct Probe<T>(PhantomData<T>);

    trait Lacks {
        const CLONE: bool = false;
        const DISPLAY: bool = false;
        const SERIALIZE: bool = false;
    }

    impl<T> Lacks for Probe<T> {}

    impl<T: Clone> Probe<T> {
        const CLONE: bool = true;
    }

    impl<T: std::fmt::Display> Probe<T> {
        const DISPLAY: bool = true;
    }

    impl<T: serde::Serialize> Probe<T> {
        const SERIALIZE: bool = true;
    }

    // Both checks run at compile time.
    #[test]
    fn the_probe_sees_the_traits_a_type_has() {
        const {
            assert!(Probe::<String>::CLONE && Probe::<String>::DISPLAY);
            assert!(Probe::<String>::SERIALIZE);
            assert!(Probe::<PhantomData<u8>>::CLONE && !Probe::<PhantomData<u8>>::DISPLAY);
        }
    }

    #[test]
    fn no_secret_type_is_clone_display_or_serialize() {
        macro_rules! lacks {
            ($($t:ty),*) => {$(
                const {
                    assert!(!Probe::<$t>::CLONE, concat!(stringify!($t), " is Clone"));
                    assert!(!Probe::<$t>::DISPLAY, concat!(stringify!($t), " is Display"));
                    assert!(!Probe::<$t>::SERIALIZE, concat!(stringify!($t), " is Serialize"));
                }
            )*};
        }
        lacks!(
            Password,
            OpaqueToken,
            SecretBytes,
            AccessToken,
            RefreshToken,
            OtpCode
        );
    }

    #[test]
    fn every_secret_type_is_zeroized_on_drop() {
        fn zeroized<T: zeroize::Zeroize + zeroize::ZeroizeOnDrop>() {}
        zeroized::<Password>();
        zeroized::<OpaqueToken>();
        zeroized::<SecretBytes>();
        zeroized::<AccessToken>();
        zeroized::<RefreshToken>();
        zeroized::<OtpCode>();
    }

    #[test]
    fn debug_shows_no_secret_bytes() {
        let pw = Password::from("hunter2-secret");
        let shown = format!("{pw:?} {pw:#?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(shown, "Password(OMITTED) Password(OMITTED)");
        let key = SecretBytes::new(b"super-secret-key".to_vec());
        let shown = format!("{key:?} {key:#?}");
        assert_eq!(shown, "SecretBytes(OMITTED) SecretBytes(OMITTED)");
        let token = OpaqueToken::new("kw_live_secret-token".into());
        assert_eq!(
            format!("{token:?} {token:#?}"),
            "OpaqueToken(OMITTED) OpaqueToken(OMITTED)"
        );
        let refresh = RefreshToken::new("kwr_secret-refresh".into());
        assert_eq!(format!("{refresh:?}"), "RefreshToken(OMITTED)");
        let code = OtpCode("493817".into());
        assert_eq!(format!("{code:?}"), "OtpCode(OMITTED)");
    }

    #[test]
    fn accessors_return_the_value_unchanged() {
        assert_eq!(Password::from("pw").unprotected_as_bytes(), b"pw");
        assert_eq!(SecretBytes::new(vec![1, 2]).unprotected_as_bytes(), [1, 2]);
        assert_eq!(OpaqueToken::new("t".into()).unprotected_as_str(), "t");
        assert_eq!(RefreshToken::new("r".into()).unprotected_as_str(), "r");
    }

    #[test]
    fn char_len_counts_scalars_for_utf8_and_bytes_otherwise() {
        assert_eq!(Password::from("pässwörd").char_len(), 8);
        assert_eq!(Password::from("pässwörd").len(), 10);
        assert_eq!(Password::from_bytes(vec![0xff, 0xfe, 0x41]).char_len(), 3);
    }
}
