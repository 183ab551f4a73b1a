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

/// The first 128 bits of HMAC-SHA256 over `parts`: a keyed tag that names
/// a record (a subject's) without revealing what it names.
pub(crate) fn tag128(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    let mac = hmac_sha256(key, parts);
    let mut tag = [0u8; 16];
    for (t, m) in tag.iter_mut().zip(mac) {
        *t = m;
    }
    tag
}

/// Checks an HMAC-SHA256 tag in constant time. A tag of any other length,
/// including a truncated one, is rejected.
#[allow(dead_code, reason = "used by the token and one-time code modules")]
pub(crate) fn verify_hmac_sha256(key: &[u8], parts: &[&[u8]], tag: &[u8]) -> bool {
    keyed(key, parts).verify_slice(tag).is_ok()
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::panic, clippy::expect_used, reason = "tests")]

    use super::*;
    use crate::hex::{Case, decode_into};
    use crate::store::testing::{wycheproof, wycheproof_cases};

    #[test]
    fn a_tag_is_the_first_half_of_the_mac() {
        let (key, parts): (&[u8], &[&[u8]]) = (b"key", &[b"a", b"bc"]);
        let mac = hmac_sha256(key, parts);
        assert_eq!(tag128(key, parts)[..], mac[..16]);
        assert_ne!(tag128(b"other key", parts), tag128(key, parts));
    }

    /// The bytes of a Wycheproof hex field.
    pub(crate) fn unhex(s: &str) -> Vec<u8> {
        let mut out = vec![0u8; s.len() / 2];
        decode_into(s.as_bytes(), &mut out, Case::Any).unwrap_or_else(|| panic!("not hex: {s:?}"));
        out
    }

    /// Wycheproof HMAC-SHA256, every case: a full-length (256-bit) tag is
    /// accepted or rejected as the file says, and the computed MAC is that
    /// tag exactly when the case is valid, whichever way the message is
    /// split into parts. A truncated (128-bit) tag is always rejected,
    /// valid or not, while the computed MAC still begins with a valid one.
    #[test]
    fn wycheproof_hmac_sha256() {
        let doc = wycheproof("hmac_sha256_test.json");
        let (mut accepted, mut rejected, mut truncated) = (0, 0, 0);
        for (group, case) in wycheproof_cases(&doc) {
            let id = &case["tcId"];
            let field = |name: &str| unhex(case[name].as_str().expect(name));
            let (key, msg, tag) = (field("key"), field("msg"), field("tag"));
            let valid = match case["result"].as_str().expect("result") {
                "valid" => true,
                "invalid" => false,
                other => panic!("tcId {id}: unexpected result {other:?}"),
            };
            let computed = hmac_sha256(&key, &[&msg]);
            let (head, tail) = msg.split_at(msg.len() / 2);
            assert_eq!(hmac_sha256(&key, &[head, tail]), computed, "tcId {id}");
            assert_eq!(hmac_sha256(&key, &[&[], &msg, &[]]), computed, "tcId {id}");
            let verified = verify_hmac_sha256(&key, &[&msg], &tag);
            let verified_in_parts = verify_hmac_sha256(&key, &[head, tail], &tag);
            assert_eq!(verified, verified_in_parts, "tcId {id}");
            match group["tagSize"].as_u64() {
                Some(256) => {
                    assert_eq!(computed.as_slice() == tag.as_slice(), valid, "tcId {id}");
                    assert_eq!(verified, valid, "tcId {id}");
                    if valid {
                        accepted += 1;
                    } else {
                        rejected += 1;
                    }
                }
                Some(128) => {
                    assert_eq!(tag.len(), 16, "tcId {id}");
                    assert_eq!(computed[..16] == *tag.as_slice(), valid, "tcId {id}");
                    assert!(!verified, "tcId {id}: a truncated tag is refused");
                    truncated += 1;
                }
                other => panic!("tcId {id}: unexpected tagSize {other:?}"),
            }
        }
        assert_eq!((accepted, rejected, truncated), (33, 54, 87));
    }

    /// Tags of every other length, empty included, are refused.
    #[test]
    fn tags_of_the_wrong_length_are_refused() {
        let tag = hmac_sha256(b"key", &[b"message"]);
        assert!(verify_hmac_sha256(b"key", &[b"message"], &tag));
        for len in 0..tag.len() {
            assert!(
                !verify_hmac_sha256(b"key", &[b"message"], &tag[..len]),
                "{len}"
            );
        }
        let mut longer = tag.to_vec();
        longer.push(0);
        assert!(!verify_hmac_sha256(b"key", &[b"message"], &longer));
    }
}
