//! Application claims that a session carries into every access token.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::Error;

use super::REGISTERED;

/// The most a session's application claims may take, as compact JSON: 1
/// KiB. Every access token of the session carries them, and the session's
/// record keeps them; a bound keeps both small (RFC 9068 access tokens
/// travel in every request header).
pub const MAX_SESSION_CLAIMS_BYTES: usize = 1024;

/// Application claims (roles, `scope`, a tenant) for the access tokens of a
/// session: a JSON object of at most [`MAX_SESSION_CLAIMS_BYTES`] that
/// reuses none of the claim names keyward sets (`iss`, `aud`, `sub`,
/// `exp`, `iat`, `nbf`, `jti`, `sid`, `amr`).
///
/// They are given with the proof that starts a session
/// ([`Verified::with_claims`](crate::Verified::with_claims),
/// [`OtpVerified::with_claims`](crate::OtpVerified::with_claims)), kept
/// with the session, written into every access token it issues, refreshes
/// included, and changed only by
/// [`Sessions::set_claims`](crate::Sessions::set_claims), from the next
/// refresh on. [`AccessClaims::extra`](crate::AccessClaims::extra) reads
/// them back from a verified token.
///
/// ```
/// use keyward::SessionClaims;
/// use serde_json::json;
///
/// let claims = SessionClaims::new(&json!({"roles": ["admin"], "scope": "read write"}))?;
/// assert_eq!(claims.get("scope"), Some(&json!("read write")));
///
/// // Not an object, a name keyward sets, or over 1 KiB: refused.
/// assert!(SessionClaims::new(&json!(["admin"])).is_err());
/// assert!(SessionClaims::new(&json!({"sub": "someone-else"})).is_err());
/// assert!(SessionClaims::new(&json!({"blob": "x".repeat(1024)})).is_err());
/// # Ok::<(), keyward::Error>(())
/// ```
///
/// The checks hold for every value of the type: claims read back with
/// `Deserialize` (from the store, or from a verified token's custom claims)
/// pass through them too, so a `SessionClaims` never carries a second
/// `sub` into a token.
///
/// ```
/// use keyward::SessionClaims;
/// use serde_json::json;
///
/// let refused = serde_json::from_value::<SessionClaims>(json!({"sub": "admin"})).unwrap_err();
/// assert!(refused.to_string().contains("may not set `sub`"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Map<String, Value>")]
pub struct SessionClaims(Map<String, Value>);

impl Serialize for SessionClaims {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl TryFrom<Map<String, Value>> for SessionClaims {
    type Error = Error;

    /// The checks of [`new`](SessionClaims::new), on a map: the way in for
    /// `Deserialize`.
    fn try_from(map: Map<String, Value>) -> Result<Self, Error> {
        Self::checked(map)
    }
}

impl SessionClaims {
    /// Checks `claims` and keeps them: anything that serializes to a JSON
    /// object, such as a `#[derive(Serialize)]` struct or `serde_json::json!`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when `claims` do not serialize to a JSON
    /// object, reuse a claim name keyward sets, or take more than
    /// [`MAX_SESSION_CLAIMS_BYTES`] as compact JSON.
    pub fn new(claims: &impl Serialize) -> Result<Self, Error> {
        let Ok(Value::Object(map)) = serde_json::to_value(claims) else {
            return Err(Error::InvalidInput(
                "session claims must serialize to a JSON object".into(),
            ));
        };
        Self::checked(map)
    }

    /// The checks of [`new`](Self::new), on a map.
    pub(crate) fn checked(map: Map<String, Value>) -> Result<Self, Error> {
        let claims = Self(map);
        claims.check()?;
        Ok(claims)
    }

    /// The checks of [`new`](Self::new), which every way of making a
    /// `SessionClaims` passes: a registered name among them would put a
    /// second `sub` (or `exp`, …) into the token.
    fn check(&self) -> Result<(), Error> {
        let map = &self.0;
        if let Some(name) = REGISTERED.iter().find(|name| map.contains_key(**name)) {
            return Err(Error::InvalidInput(format!(
                "session claims may not set `{name}`, which keyward sets"
            )));
        }
        let len = serde_json::to_vec(&map).map_or(usize::MAX, |json| json.len());
        if len > MAX_SESSION_CLAIMS_BYTES {
            return Err(Error::InvalidInput(format!(
                "session claims take {len} bytes as JSON; the most is {MAX_SESSION_CLAIMS_BYTES}"
            )));
        }
        Ok(())
    }

    /// The claim `name`, if it is set.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }

    /// Whether no claim is set.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The claims as a JSON object.
    #[must_use]
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    /// The claims, as a type of the application's: the way back from
    /// [`new`](Self::new).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when they do not deserialize into `T`.
    pub fn to_typed<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        T::deserialize(Value::Object(self.0.clone())).map_err(|_| {
            Error::InvalidInput("session claims do not match the requested type".into())
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::arithmetic_side_effects, reason = "tests")]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn accepted_and_refused() {
        let ok = SessionClaims::new(&json!({"roles": ["admin"], "tenant": 7})).unwrap();
        assert_eq!(ok.get("tenant"), Some(&json!(7)));
        assert!(!ok.is_empty());
        assert!(SessionClaims::new(&json!({})).unwrap().is_empty());
        for bad in [json!("admin"), json!(7), json!(null), json!(["a"])] {
            let e = SessionClaims::new(&bad).unwrap_err();
            assert_eq!(
                e.to_string(),
                "invalid input: session claims must serialize to a JSON object"
            );
        }
        for name in REGISTERED {
            let e = SessionClaims::new(&json!({ name: "x" })).unwrap_err();
            assert!(e.to_string().contains(&format!("`{name}`")), "{e}");
        }
    }

    #[test]
    fn bounded_at_one_kib_of_json() {
        // {"k":"…"} is 8 bytes of framing around the string.
        let at = SessionClaims::new(&json!({"k": "x".repeat(MAX_SESSION_CLAIMS_BYTES - 8)}));
        assert_eq!(
            serde_json::to_vec(at.as_ref().unwrap()).unwrap().len(),
            MAX_SESSION_CLAIMS_BYTES
        );
        let over = SessionClaims::new(&json!({"k": "x".repeat(MAX_SESSION_CLAIMS_BYTES - 7)}))
            .unwrap_err();
        assert_eq!(
            over.to_string(),
            "invalid input: session claims take 1025 bytes as JSON; the most is 1024"
        );
    }

    #[test]
    fn typed_round_trip() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Roles {
            roles: Vec<String>,
        }
        let roles = Roles {
            roles: vec!["admin".into()],
        };
        let claims = SessionClaims::new(&roles).unwrap();
        assert_eq!(claims.to_typed::<Roles>().unwrap(), roles);
        assert!(claims.to_typed::<u32>().is_err());
    }
}
