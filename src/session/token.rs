//! Refresh tokens: their format, MAC and parsing, and the pair a login or
//! a refresh hands out.

use super::*;

crate::secret::secret_type! {
    /// A refresh token: a bearer credential. Redacted `Debug`, zeroized on drop.
    pub struct RefreshToken(String);
    /// The token string, to hand to the client.
    fn unprotected_as_str;
}

impl RefreshToken {
    /// Wraps a token received from a client.
    #[must_use]
    pub fn new(token: String) -> Self {
        Self(token)
    }
}

/// What a login or a refresh hands to the client.
///
/// # Serialize writes both tokens
///
/// Its `Serialize` is the HTTP response body of a token endpoint (RFC 6749
/// §5.1), and so writes the two bearer secrets in clear:
///
/// ```json
/// {"access_token": "eyJ…", "token_type": "Bearer", "expires_in": 900,
///  "refresh_token": "kwr_…", "session": "9f…"}
/// ```
///
/// (`session` is the session id, as in [`SessionInfo`]'s JSON.) Serialize
/// it only into the answer to the client that owns it: never into a log,
/// an event, an error, a cache or a store. A browser client whose refresh
/// token travels in a cookie needs the body without it, built by hand.
/// [`AccessToken`] and [`RefreshToken`] themselves have no `Serialize`.
/// There is no `Deserialize`.
#[derive(Debug)]
#[non_exhaustive]
pub struct TokenPair {
    /// The access JWT.
    pub access: AccessToken,
    /// The refresh token.
    pub refresh: RefreshToken,
    /// Access-token lifetime in seconds.
    pub expires_in: u64,
    /// The session (family) id: public, safe to log.
    pub session_id: String,
}

impl Serialize for TokenPair {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        // RFC 6749 §5.1: `access_token`, `token_type` (RFC 6750 §6.1.1,
        // "Bearer"), `expires_in` in seconds, and `refresh_token`.
        let mut out = s.serialize_struct("TokenPair", 5)?;
        out.serialize_field("access_token", self.access.unprotected_as_str())?;
        out.serialize_field("token_type", "Bearer")?;
        out.serialize_field("expires_in", &self.expires_in)?;
        out.serialize_field("refresh_token", self.refresh.unprotected_as_str())?;
        out.serialize_field("session", &self.session_id)?;
        out.end()
    }
}

/// The parts of a refresh token.
pub(crate) struct Parsed {
    pub(crate) subject_tag: [u8; 16],
    pub(crate) family: [u8; 16],
    pub(crate) generation: u64,
}

/// `HMAC-SHA256(key, domain ‖ subject tag ‖ family ‖ generation)`.
fn token_mac(key: &[u8], p: &Parsed) -> [u8; 32] {
    crate::mac::hmac_sha256(
        key,
        &[
            TOKEN_DOMAIN,
            &p.subject_tag,
            &p.family,
            &p.generation.to_be_bytes(),
        ],
    )
}

/// The refresh token of these parts: `kwr_<tag>_<family>_<generation>_<mac>`.
pub(crate) fn format_token(key: &[u8], p: &Parsed) -> RefreshToken {
    RefreshToken(format!(
        "{TOKEN_PREFIX}_{}_{}_{}_{}",
        hex(&p.subject_tag),
        hex(&p.family),
        p.generation,
        hex(&token_mac(key, p))
    ))
}

/// Checks the shape and MAC of a presented token, before any I/O.
pub(crate) fn parse_token(key: &[u8], token: &str) -> Result<Parsed, Error> {
    let invalid = || Error::Session(SessionError::Invalid);
    if token.len() > 256 {
        return Err(invalid());
    }
    let mut parts = token.split('_');
    let (Some(TOKEN_PREFIX), Some(tag), Some(fam), Some(generation), Some(mac), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err(invalid());
    };
    let canonical = !generation.is_empty()
        && generation.len() <= 19
        && generation.bytes().all(|b| b.is_ascii_digit())
        && (generation == "0" || !generation.starts_with('0'));
    if !canonical {
        return Err(invalid());
    }
    let parsed = Parsed {
        subject_tag: unhex::<16>(tag).ok_or_else(invalid)?,
        family: unhex::<16>(fam).ok_or_else(invalid)?,
        generation: generation.parse().map_err(|_| invalid())?,
    };
    let mac = unhex::<32>(mac).ok_or_else(invalid)?;
    let ok = crate::mac::verify_hmac_sha256(
        key,
        &[
            TOKEN_DOMAIN,
            &parsed.subject_tag,
            &parsed.family,
            &parsed.generation.to_be_bytes(),
        ],
        &mac,
    );
    if ok { Ok(parsed) } else { Err(invalid()) }
}
