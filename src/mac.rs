//! HMAC-SHA256 for the crate's keyed values (peppers, code MACs, keyed
//! digests). Tags are checked with `verify_slice`, which is constant-time.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

fn keyed(key: &[u8], parts: &[&[u8]]) -> HmacSha256 {
    // RFC 2104 §2: HMAC takes keys of any length (long keys are hashed), so
    // `new_from_slice` cannot fail for HMAC-SHA256.
    #[allow(clippy::expect_used, reason = "infallible for HMAC")]
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    for part in parts {
        mac.update(part);
    }
    mac
}

/// HMAC-SHA256 over the concatenation of `parts`.
pub(crate) fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    keyed(key, parts).finalize().into_bytes().into()
}

/// Checks an HMAC-SHA256 tag in constant time. A tag of any other length,
/// including a truncated one, is rejected.
#[allow(dead_code, reason = "used by the token and one-time code modules")]
pub(crate) fn verify_hmac_sha256(key: &[u8], parts: &[&[u8]], tag: &[u8]) -> bool {
    keyed(key, parts).verify_slice(tag).is_ok()
}
