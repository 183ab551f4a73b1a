//! Codes: their purposes, generation, MACs, and the proof a correct one gives.

use super::*;

/// What a code is for. A code issued for one purpose never verifies for
/// another; the lockout is shared by all purposes of a subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Purpose {
    /// Signing in (`login`).
    Login,
    /// Confirming a new email address (`email_change`).
    EmailChange,
    /// Resetting a password (`password_reset`).
    PasswordReset,
    /// Another purpose, by a validated name.
    Custom(CustomPurpose),
}

/// The name of a custom [`Purpose`]: 1 to 32 characters of `a-z`, `0-9`,
/// `_` and `-`, starting with a letter, and none of the built-in names.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CustomPurpose(String);

impl CustomPurpose {
    /// The name.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Purpose {
    /// The purpose named `name`: a built-in name gives the built-in
    /// purpose, any other valid name a [`Purpose::Custom`].
    ///
    /// ```
    /// use keyward::Purpose;
    /// assert_eq!(Purpose::parse("login")?, Purpose::Login);
    /// assert_eq!(Purpose::parse("delete_account")?.name(), "delete_account");
    /// assert!(Purpose::parse("Delete Account").is_err());
    /// # Ok::<(), keyward::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when the name is empty, longer than 32
    /// bytes, or has a character outside `a-z`, `0-9`, `_`, `-`, or does
    /// not start with a letter.
    pub fn parse(name: &str) -> Result<Self, Error> {
        Ok(match name {
            "login" => Self::Login,
            "email_change" => Self::EmailChange,
            "password_reset" => Self::PasswordReset,
            _ => {
                let valid = name.len() <= MAX_PURPOSE_LEN
                    && name.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
                    && name.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-')
                    });
                if !valid {
                    return Err(Error::InvalidInput(
                        "a purpose is 1 to 32 characters of a-z, 0-9, '_' and '-', starting with a letter"
                            .into(),
                    ));
                }
                Self::Custom(CustomPurpose(name.to_owned()))
            }
        })
    }

    /// The purpose's name, as stored and as the CLI spells it.
    #[must_use]
    pub fn name(&self) -> &str {
        match self {
            Self::Login => "login",
            Self::EmailChange => "email_change",
            Self::PasswordReset => "password_reset",
            Self::Custom(c) => c.as_str(),
        }
    }
}

impl FromStr for Purpose {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

crate::secret::secret_type! {
    /// An issued code, to send to the user. Redacted `Debug`, zeroized on drop;
    /// no `Clone`, `Display` or `Serialize`.
    pub struct OtpCode(pub(crate) String);
    /// The digits, to put in the email or text message.
    fn unprotected_as_str;
}

/// What [`Otp::issue`] returns.
#[derive(Debug)]
#[non_exhaustive]
pub struct IssuedCode {
    /// The code.
    pub code: OtpCode,
    /// When it expires, in seconds since the Unix epoch.
    pub expires_at: u64,
    /// What it is for.
    pub purpose: Purpose,
}

/// Proof that a subject presented a correct code: what
/// [`Sessions::start_with_otp`](crate::session::Sessions::start_with_otp)
/// requires. Only [`Otp::verify`] makes one.
pub struct OtpVerified {
    pub(crate) subject: String,
    pub(crate) purpose: Purpose,
    pub(crate) verified_at: u64,
    pub(crate) claims: Option<crate::jwt::SessionClaims>,
}

impl OtpVerified {
    /// The subject the code was issued to.
    #[must_use]
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The purpose the code was issued for.
    #[must_use]
    pub fn purpose(&self) -> &Purpose {
        &self.purpose
    }

    /// When it was verified, in seconds since the Unix epoch.
    #[must_use]
    pub fn verified_at(&self) -> u64 {
        self.verified_at
    }

    /// The proof with application claims for the session it starts: every
    /// access token of that session carries them (see
    /// [`SessionClaims`](crate::SessionClaims)).
    #[must_use]
    pub fn with_claims(mut self, claims: crate::jwt::SessionClaims) -> Self {
        self.claims = Some(claims);
        self
    }

    /// The claims given with [`with_claims`](Self::with_claims).
    #[must_use]
    pub fn claims(&self) -> Option<&crate::jwt::SessionClaims> {
        self.claims.as_ref()
    }
}

impl fmt::Debug for OtpVerified {
    // The subject is a user identifier: not for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtpVerified")
            .field("purpose", &self.purpose)
            .field("verified_at", &self.verified_at)
            .finish_non_exhaustive()
    }
}

/// A stored code's MAC. Equality is constant-time; `Debug` is redacted.
/// It is stored, so unlike the secret types it is `Copy` and serialised.
#[derive(Clone, Copy)]
pub(crate) struct CodeMac(pub(crate) [u8; 32]);

crate::secret::redacted_debug!(CodeMac);

impl PartialEq for CodeMac {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for CodeMac {}

impl Serialize for CodeMac {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex(&self.0))
    }
}

impl<'de> Deserialize<'de> for CodeMac {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        decode_array::<32>(&s, Case::Lower)
            .map(CodeMac)
            .ok_or_else(|| serde::de::Error::custom("code mac is not 64 hex digits"))
    }
}

/// A uniform code of `digits` digits: rejection sampling over `u32`, so
/// that every code is equally likely (no modulo bias).
pub(crate) fn generate_code<R: TryCryptoRng + ?Sized>(
    rng: &mut R,
    digits: u32,
) -> Result<OtpCode, Error> {
    let modulus = 10u32
        .checked_pow(digits)
        .ok_or_else(|| Error::Config("otp.digits must be 6 to 9".into()))?;
    let width = usize::try_from(digits).map_err(|_| Error::Config("otp.digits".into()))?;
    // The largest multiple of `modulus` not above 2^32: draws at or above it
    // would make the low codes more likely, and are drawn again.
    let span = 1u64 << 32;
    let zone = span.saturating_sub(span.checked_rem(u64::from(modulus)).unwrap_or(0));
    for _ in 0..MAX_DRAWS {
        let draw = rng.try_next_u32().map_err(|_| Error::Rng)?;
        if u64::from(draw) < zone {
            let value = draw.checked_rem(modulus).unwrap_or(0);
            return Ok(OtpCode(format!("{value:0width$}")));
        }
    }
    Err(Error::Rng)
}

/// A length prefix for the MAC framing. Every framed field is bounded
/// (at most 1,024 bytes) before it gets here.
pub(crate) fn len_prefix(bytes: &[u8]) -> [u8; 8] {
    u64::try_from(bytes.len()).unwrap_or(u64::MAX).to_be_bytes()
}

/// `HMAC-SHA256(key, domain ‖ len ‖ subject ‖ len ‖ purpose ‖ len ‖ code)`:
/// the length prefixes make the framing unambiguous.
pub(crate) fn code_mac(key: &[u8], subject: &str, purpose: &str, code: &[u8]) -> CodeMac {
    let (subject, purpose) = (subject.as_bytes(), purpose.as_bytes());
    CodeMac(crate::mac::hmac_sha256(
        key,
        &[
            CODE_DOMAIN,
            &len_prefix(subject),
            subject,
            &len_prefix(purpose),
            purpose,
            &len_prefix(code),
            code,
        ],
    ))
}
