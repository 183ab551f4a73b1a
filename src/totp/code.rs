//! TOTP codes: RFC 4226 HOTP with RFC 6238 time steps, the base32 form of
//! a secret, and the `otpauth://` URI an authenticator app reads.
//!
//! Nothing here validates parameters: the TOTP service checks digits,
//! period, issuer and account before it calls in, and each function says
//! what it assumes.

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha1::Sha1;
use sha2::{Sha256, Sha512};
use subtle::ConstantTimeEq;

/// The HMAC of a TOTP factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum TotpAlg {
    /// HMAC-SHA1: what authenticator apps support. The default.
    #[default]
    #[serde(rename = "SHA1")]
    Sha1,
    /// HMAC-SHA256.
    #[serde(rename = "SHA256")]
    Sha256,
    /// HMAC-SHA512.
    #[serde(rename = "SHA512")]
    Sha512,
}

impl TotpAlg {
    /// The name of the algorithm in an `otpauth://` URI's `algorithm`
    /// parameter (Key Uri Format): `SHA1`, `SHA256` or `SHA512`. It is
    /// also the serialized form.
    ///
    /// ```
    /// use keyward::totp::TotpAlg;
    /// assert_eq!(TotpAlg::default().name(), "SHA1");
    /// assert_eq!(TotpAlg::Sha256.name(), "SHA256");
    /// ```
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
            Self::Sha512 => "SHA512",
        }
    }
}

/// The HOTP value (RFC 4226 §5.3) of `secret` at `counter`: HMAC over the
/// counter as 8 big-endian bytes, dynamic truncation to 31 bits, then
/// modulo 10^`digits`.
///
/// The caller keeps `digits` in 6..=8 (RFC 4226 §5.3 requires at least
/// 6). Outside that range the result is still defined: 0 digits gives 0,
/// and 10 or more gives the whole 31-bit truncated value, which is less
/// than 10^10.
pub(crate) fn hotp(alg: TotpAlg, secret: &[u8], counter: u64, digits: u8) -> u32 {
    let value = match alg {
        TotpAlg::Sha1 => truncated::<Hmac<Sha1>>(secret, counter),
        TotpAlg::Sha256 => truncated::<Hmac<Sha256>>(secret, counter),
        TotpAlg::Sha512 => truncated::<Hmac<Sha512>>(secret, counter),
    };
    match 10u32.checked_pow(u32::from(digits)) {
        Some(modulus) => value.checked_rem(modulus).unwrap_or(value),
        // 10^digits exceeds u32, so it exceeds the 31-bit value too.
        None => value,
    }
}

/// `DT(HMAC(secret, counter))` of RFC 4226 §5.3: the 31-bit number at the
/// offset named by the low 4 bits of the MAC's last byte.
fn truncated<M: Mac + KeyInit>(secret: &[u8], counter: u64) -> u32 {
    // RFC 2104 §2: HMAC takes keys of any length (long keys are hashed), so
    // `new_from_slice` cannot fail for HMAC.
    #[allow(clippy::expect_used, reason = "infallible for HMAC")]
    let mut mac = <M as KeyInit>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    // RFC 4226 §5.2: the counter is an 8-byte big-endian value.
    mac.update(&counter.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest.last().copied().unwrap_or(0) & 0x0f);
    // The offset is at most 15 and the shortest MAC (SHA-1) has 20 bytes,
    // so the four bytes at the offset always exist.
    let mut word = [0u8; 4];
    for (w, d) in word.iter_mut().zip(digest.iter().skip(offset)) {
        *w = *d;
    }
    // The top bit is masked off so the value is the same whether a reader
    // treats it as signed or unsigned (RFC 4226 §5.3).
    u32::from_be_bytes(word) & 0x7fff_ffff
}

/// `value` in decimal, zero-padded on the left to `digits` characters, as
/// an authenticator app shows it. A value with more digits than that is
/// not cut (`hotp` never returns one).
pub(crate) fn format_code(value: u32, digits: u8) -> String {
    format!("{value:0width$}", width = usize::from(digits))
}

/// The RFC 6238 §4.2 time step `T = floor((t - T0) / X)` with `T0 = 0`
/// (the Unix epoch) and `X = period`. The caller keeps `period` above 0;
/// a period of 0 gives step 0 rather than a panic.
pub(crate) fn step(unix_secs: u64, period: u64) -> u64 {
    unix_secs.checked_div(period).unwrap_or(0)
}

/// The RFC 4648 §6 base32 alphabet.
const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Symbols in the base32 form of 0 to 5 bytes (RFC 4648 §6: 8 bits per
/// byte, 5 per symbol, the last symbol padded with zero bits).
const SYMBOLS_FOR_BYTES: [usize; 6] = [0, 2, 4, 5, 7, 8];

/// Bytes in the base32 group of 0 to 8 symbols; `None` for a count no
/// byte string encodes to (1, 3 and 6).
const BYTES_FOR_SYMBOLS: [Option<usize>; 9] = [
    Some(0),
    None,
    Some(1),
    None,
    Some(2),
    Some(3),
    None,
    Some(4),
    Some(5),
];

/// Base32 (RFC 4648 §6) of `bytes`: uppercase and without `=` padding,
/// the form `otpauth://` URIs carry (Key Uri Format).
///
/// Not constant-time: each symbol is a lookup in a 32-byte table.
pub(crate) fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5).saturating_mul(8));
    for chunk in bytes.chunks(5) {
        // The group's 40 bits, short groups filled with zero bits.
        let mut group = [0u8; 8];
        for (g, b) in group.iter_mut().skip(3).zip(chunk) {
            *g = *b;
        }
        let bits = u64::from_be_bytes(group);
        let symbols = SYMBOLS_FOR_BYTES.get(chunk.len()).copied().unwrap_or(8);
        for shift in [35u32, 30, 25, 20, 15, 10, 5, 0].into_iter().take(symbols) {
            let [.., low] = bits.wrapping_shr(shift).to_be_bytes();
            out.push(char::from(BASE32[usize::from(low & 0x1f)]));
        }
    }
    out
}

/// The bytes of base32 (RFC 4648 §6) text. Letters may be in either case;
/// `=` padding may follow, and if it does it must fill the last group of
/// 8 exactly.
///
/// `None` for any other character (spaces included), a length no byte
/// string encodes to, or non-zero bits after the last byte (RFC 4648
/// §3.5: such text is not canonical, and accepting it would let two
/// strings name one secret).
pub(crate) fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let data = s.trim_end_matches('=');
    let padding = s.len().checked_sub(data.len())?;
    if padding != 0 && (padding >= 8 || !s.len().is_multiple_of(8)) {
        return None;
    }
    let mut out = Vec::with_capacity(data.len().div_ceil(8).saturating_mul(5));
    for chunk in data.as_bytes().chunks(8) {
        let len = BYTES_FOR_SYMBOLS.get(chunk.len()).copied().flatten()?;
        // The group's 40 bits, missing symbols as zero.
        let mut bits = 0u64;
        for i in 0..8 {
            let value = match chunk.get(i) {
                Some(&c) => base32_value(c)?,
                None => 0,
            };
            bits = bits.wrapping_shl(5) | u64::from(value);
        }
        let [_, _, _, group @ ..] = bits.to_be_bytes();
        let (bytes, rest) = group.split_at(len);
        if rest.iter().any(|&b| b != 0) {
            return None;
        }
        out.extend_from_slice(bytes);
    }
    Some(out)
}

/// The value of one base32 symbol, in either case.
fn base32_value(c: u8) -> Option<u8> {
    match c.to_ascii_uppercase() {
        c @ b'A'..=b'Z' => c.checked_sub(b'A'),
        c @ b'2'..=b'7' => c.checked_sub(b'2')?.checked_add(26),
        _ => None,
    }
}

/// The `otpauth://totp/` URI (Key Uri Format) that enrolls a factor in an
/// authenticator app, usually shown as a QR code:
///
/// `otpauth://totp/<issuer>:<account>?secret=<secret_b32>&issuer=<issuer>&algorithm=<ALG>&digits=<N>&period=<P>`
///
/// Issuer and account are percent-encoded (every UTF-8 byte outside the
/// RFC 3986 §2.3 unreserved set, uppercase hex); the `:` between them is
/// literal. The caller has checked that both are non-empty with no `:`
/// and no control characters, and that `secret_b32` is unpadded base32
/// (which has nothing to encode).
pub(crate) fn otpauth_uri(
    issuer: &str,
    account: &str,
    secret_b32: &str,
    alg: TotpAlg,
    digits: u8,
    period: u64,
) -> String {
    // The URI holds the secret, so it is built in one buffer that never
    // grows: a reallocation would leave a copy of the secret in freed
    // memory. Each encoded byte takes at most 3; 128 covers the fixed text,
    // the algorithm name and the two numbers (at most 3 and 20 digits).
    let encoded = issuer
        .len()
        .saturating_mul(2)
        .saturating_add(account.len())
        .saturating_add(secret_b32.len());
    let mut uri = String::with_capacity(encoded.saturating_mul(3).saturating_add(128));
    uri.push_str("otpauth://totp/");
    push_percent_encoded(&mut uri, issuer);
    uri.push(':');
    push_percent_encoded(&mut uri, account);
    uri.push_str("?secret=");
    push_percent_encoded(&mut uri, secret_b32);
    uri.push_str("&issuer=");
    push_percent_encoded(&mut uri, issuer);
    uri.push_str("&algorithm=");
    uri.push_str(alg.name());
    uri.push_str("&digits=");
    uri.push_str(&digits.to_string());
    uri.push_str("&period=");
    uri.push_str(&period.to_string());
    uri
}

/// Appends `s` to `out` with every byte outside the RFC 3986 §2.3
/// unreserved set (`A-Z a-z 0-9 - . _ ~`) written as `%XX` (uppercase hex,
/// §2.1).
fn push_percent_encoded(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
}

/// Whether two codes are equal, comparing their bytes in constant time.
/// Codes of different lengths are unequal at once: a code's length is
/// public (it is the factor's digit count).
pub(crate) fn codes_equal(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// RFC 6238 Appendix B seeds: the ASCII digits "1234567890" repeated to
    /// the length of each hash's output (20, 32 and 64 bytes).
    const SEED_SHA1: &[u8] = b"12345678901234567890";
    const SEED_SHA256: &[u8] = b"12345678901234567890123456789012";
    const SEED_SHA512: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

    /// RFC 6238 Appendix B (TOTP, T0 = 0, X = 30, 8 digits): time in
    /// seconds, T, and the SHA1, SHA256 and SHA512 codes. Taken from the
    /// table in the RFC text.
    const RFC6238_APPENDIX_B: [(u64, u64, &str, &str, &str); 6] = [
        (
            59,
            0x0000_0000_0000_0001,
            "94287082",
            "46119246",
            "90693936",
        ),
        (
            1_111_111_109,
            0x0000_0000_0235_23EC,
            "07081804",
            "68084774",
            "25091201",
        ),
        (
            1_111_111_111,
            0x0000_0000_0235_23ED,
            "14050471",
            "67062674",
            "99943326",
        ),
        (
            1_234_567_890,
            0x0000_0000_0273_EF07,
            "89005924",
            "91819424",
            "93441116",
        ),
        (
            2_000_000_000,
            0x0000_0000_03F9_40AA,
            "69279037",
            "90698825",
            "38618901",
        ),
        (
            20_000_000_000,
            0x0000_0000_27BC_86AA,
            "65353130",
            "77737706",
            "47863826",
        ),
    ];

    /// RFC 4226 Appendix D (HOTP, HMAC-SHA-1, secret "12345678901234567890"):
    /// count, the truncated decimal value (Table 2) and the 6-digit HOTP.
    const RFC4226_APPENDIX_D: [(u64, u32, &str); 10] = [
        (0, 1_284_755_224, "755224"),
        (1, 1_094_287_082, "287082"),
        (2, 137_359_152, "359152"),
        (3, 1_726_969_429, "969429"),
        (4, 1_640_338_314, "338314"),
        (5, 868_254_676, "254676"),
        (6, 1_918_287_922, "287922"),
        (7, 82_162_583, "162583"),
        (8, 673_399_871, "399871"),
        (9, 645_520_489, "520489"),
    ];

    /// RFC 4648 §10 base32 test vectors, with their padding.
    const RFC4648_BASE32: [(&str, &str); 7] = [
        ("", ""),
        ("f", "MY======"),
        ("fo", "MZXQ===="),
        ("foo", "MZXW6==="),
        ("foob", "MZXW6YQ="),
        ("fooba", "MZXW6YTB"),
        ("foobar", "MZXW6YTBOI======"),
    ];

    fn totp(alg: TotpAlg, seed: &[u8], unix_secs: u64) -> String {
        format_code(hotp(alg, seed, step(unix_secs, 30), 8), 8)
    }

    #[test]
    fn rfc6238_appendix_b_steps() {
        for (time, t, ..) in RFC6238_APPENDIX_B {
            assert_eq!(step(time, 30), t, "T at {time}");
        }
    }

    #[test]
    fn rfc6238_appendix_b_sha1() {
        for (time, _, sha1, _, _) in RFC6238_APPENDIX_B {
            assert_eq!(totp(TotpAlg::Sha1, SEED_SHA1, time), sha1, "SHA1 at {time}");
        }
    }

    #[test]
    fn rfc6238_appendix_b_sha256() {
        for (time, _, _, sha256, _) in RFC6238_APPENDIX_B {
            assert_eq!(
                totp(TotpAlg::Sha256, SEED_SHA256, time),
                sha256,
                "SHA256 at {time}"
            );
        }
    }

    #[test]
    fn rfc6238_appendix_b_sha512() {
        for (time, _, _, _, sha512) in RFC6238_APPENDIX_B {
            assert_eq!(
                totp(TotpAlg::Sha512, SEED_SHA512, time),
                sha512,
                "SHA512 at {time}"
            );
        }
    }

    /// The reject path of the same vectors: the SHA-1 seed under SHA-256
    /// or SHA-512, a neighbouring step, or the wrong algorithm gives
    /// another code.
    #[test]
    fn rfc6238_vectors_reject_the_wrong_inputs() {
        for (time, t, sha1, sha256, sha512) in RFC6238_APPENDIX_B {
            assert_ne!(totp(TotpAlg::Sha256, SEED_SHA1, time), sha256, "at {time}");
            assert_ne!(totp(TotpAlg::Sha512, SEED_SHA1, time), sha512, "at {time}");
            assert_ne!(totp(TotpAlg::Sha1, SEED_SHA256, time), sha1, "at {time}");
            let next = format_code(hotp(TotpAlg::Sha1, SEED_SHA1, t + 1, 8), 8);
            assert_ne!(next, sha1, "at {time}");
        }
    }

    #[test]
    fn rfc4226_appendix_d() {
        for (count, truncated, code) in RFC4226_APPENDIX_D {
            // Ten digits or more leave the 31-bit value whole.
            assert_eq!(
                hotp(TotpAlg::Sha1, SEED_SHA1, count, 10),
                truncated,
                "count {count}"
            );
            assert_eq!(
                format_code(hotp(TotpAlg::Sha1, SEED_SHA1, count, 6), 6),
                code
            );
            assert_ne!(
                format_code(hotp(TotpAlg::Sha1, b"12345678901234567891", count, 6), 6),
                code
            );
        }
    }

    #[test]
    fn fewer_digits_are_the_low_digits() {
        // RFC 6238 Appendix B at T = 1: 94287082, and RFC 4226 count 1 is
        // 287082, the same HOTP value.
        assert_eq!(hotp(TotpAlg::Sha1, SEED_SHA1, 1, 8), 94_287_082);
        assert_eq!(hotp(TotpAlg::Sha1, SEED_SHA1, 1, 7), 4_287_082);
        assert_eq!(hotp(TotpAlg::Sha1, SEED_SHA1, 1, 6), 287_082);
        assert_eq!(hotp(TotpAlg::Sha1, SEED_SHA1, 1, 0), 0);
    }

    #[test]
    fn step_floors_and_survives_a_zero_period() {
        assert_eq!(step(0, 30), 0);
        assert_eq!(step(29, 30), 0);
        assert_eq!(step(30, 30), 1);
        assert_eq!(step(u64::MAX, 1), u64::MAX);
        assert_eq!(step(1_000, 0), 0);
    }

    #[test]
    fn format_code_pads_to_the_digit_count() {
        assert_eq!(format_code(5, 6), "000005");
        assert_eq!(format_code(0, 8), "00000000");
        assert_eq!(format_code(123_456, 6), "123456");
        assert_eq!(format_code(7_081_804, 8), "07081804");
    }

    #[test]
    fn codes_equal_compares_whole_codes() {
        assert!(codes_equal("287082", "287082"));
        assert!(codes_equal("", ""));
        assert!(!codes_equal("287082", "287083"));
        assert!(!codes_equal("287082", "187082"));
        assert!(!codes_equal("287082", "2870820"));
        assert!(!codes_equal("287082", "28708"));
        assert!(!codes_equal("287082", ""));
    }

    #[test]
    fn rfc4648_base32_vectors() {
        for (plain, padded) in RFC4648_BASE32 {
            let unpadded = padded.trim_end_matches('=');
            assert_eq!(
                base32_encode(plain.as_bytes()),
                unpadded,
                "encode {plain:?}"
            );
            assert_eq!(
                base32_decode(padded).unwrap(),
                plain.as_bytes(),
                "{padded:?}"
            );
            assert_eq!(
                base32_decode(unpadded).unwrap(),
                plain.as_bytes(),
                "{unpadded:?}"
            );
            let lower = padded.to_ascii_lowercase();
            assert_eq!(
                base32_decode(&lower).unwrap(),
                plain.as_bytes(),
                "{lower:?}"
            );
        }
        // The RFC 6238 SHA-1 seed as authenticator apps are given it.
        assert_eq!(base32_encode(SEED_SHA1), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    }

    #[test]
    fn base32_rejects_other_characters() {
        // Each is a possible length (8 bytes), so only the character is wrong.
        for bad in [
            "MY1=====",
            "MZXW6YT8",
            "MZXW6YT0",
            "MZXW 6YT",
            "MZXW6YT\n",
            "MZ-W6YTB",
            "MZXW6Yé",
            "MZXW6Y=B",
            "=ZXW6YTB",
            "MZXW6YT\0",
            "MZXW6YT+",
            "MZXW6YT/",
        ] {
            assert_eq!(base32_decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn base32_rejects_impossible_lengths() {
        for bad in [
            "A",
            "AAA",
            "AAAAAA",
            "MZXW6YTBA",
            "MZXW6YTBAAA",
            "MZXW6YTBAAAAAA",
        ] {
            assert_eq!(base32_decode(bad), None, "{bad:?}");
        }
        // Padding that does not end a group of 8, or a whole group of it.
        for bad in [
            "MY=",
            "MY=====",
            "MY=======",
            "MZXW6YTB========",
            "========",
            "MZXW6YQ==",
        ] {
            assert_eq!(base32_decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn base32_rejects_non_zero_trailing_bits() {
        // "f" is MY: Y carries 3 bits of "f" and 2 zero bits. MZ sets one
        // of those, and so do the last symbols of the others.
        for (canonical, other) in [
            ("MY", "MZ"),
            ("MZXQ", "MZXR"),
            ("MZXW6", "MZXW7"),
            ("MZXW6YQ", "MZXW6YR"),
            ("MZXW6YTBOI", "MZXW6YTBOJ"),
        ] {
            assert!(base32_decode(canonical).is_some(), "{canonical:?}");
            assert_eq!(base32_decode(other), None, "{other:?}");
        }
    }

    proptest! {
        #[test]
        fn base32_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
            let text = base32_encode(&bytes);
            // Both buffers hold a secret and are allocated once, never grown.
            prop_assert_eq!(text.capacity(), bytes.len().div_ceil(5) * 8);
            prop_assert_eq!(
                base32_decode(&text).unwrap().capacity(),
                text.len().div_ceil(8) * 5
            );
            prop_assert!(!text.contains('='));
            prop_assert!(text.bytes().all(|b| BASE32.contains(&b)));
            prop_assert_eq!(base32_decode(&text), Some(bytes.clone()));
            prop_assert_eq!(base32_decode(&text.to_ascii_lowercase()), Some(bytes.clone()));
            // The padded form decodes to the same bytes.
            let padded = format!("{text}{}", "=".repeat((8 - text.len() % 8) % 8));
            prop_assert_eq!(base32_decode(&padded), Some(bytes));
        }

        #[test]
        fn base32_ignores_case(text in "[A-Za-z2-7=]{0,24}") {
            prop_assert_eq!(
                base32_decode(&text.to_ascii_lowercase()),
                base32_decode(&text.to_ascii_uppercase())
            );
        }
    }

    #[test]
    fn otpauth_uri_simple() {
        let uri = otpauth_uri("ACME", "alice", "JBSWY3DPEHPK3PXP", TotpAlg::Sha1, 6, 30);
        assert_eq!(
            uri,
            "otpauth://totp/ACME:alice?secret=JBSWY3DPEHPK3PXP&issuer=ACME\
             &algorithm=SHA1&digits=6&period=30"
        );
        let uri = otpauth_uri("ACME", "alice", "JBSWY3DPEHPK3PXP", TotpAlg::Sha512, 8, 60);
        assert_eq!(
            uri,
            "otpauth://totp/ACME:alice?secret=JBSWY3DPEHPK3PXP&issuer=ACME\
             &algorithm=SHA512&digits=8&period=60"
        );
    }

    #[test]
    fn otpauth_uri_percent_encodes_issuer_and_account() {
        let uri = otpauth_uri(
            "Acme & Co/Dev=1",
            "jos\u{e9} x@example.com",
            "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
            TotpAlg::Sha256,
            6,
            30,
        );
        assert_eq!(
            uri,
            "otpauth://totp/Acme%20%26%20Co%2FDev%3D1:jos%C3%A9%20x%40example.com\
             ?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Acme%20%26%20Co%2FDev%3D1\
             &algorithm=SHA256&digits=6&period=30"
        );
    }

    fn percent_encode(s: &str) -> String {
        let mut out = String::new();
        push_percent_encoded(&mut out, s);
        out
    }

    /// The URI is built without growing its buffer, even when every byte
    /// of the label needs encoding and the numbers are at their longest.
    #[test]
    fn otpauth_uri_fits_its_first_buffer() {
        let issuer = "\u{1f511}".repeat(10);
        let account = " ".repeat(40);
        let secret = "A".repeat(103);
        let uri = otpauth_uri(
            &issuer,
            &account,
            &secret,
            TotpAlg::Sha512,
            u8::MAX,
            u64::MAX,
        );
        let bound = 3 * (2 * issuer.len() + account.len() + secret.len()) + 128;
        assert_eq!(uri.capacity(), bound);
        assert!(uri.ends_with("&algorithm=SHA512&digits=255&period=18446744073709551615"));
    }

    #[test]
    fn percent_encoding_keeps_only_unreserved_bytes() {
        assert_eq!(percent_encode("AZaz09-._~"), "AZaz09-._~");
        assert_eq!(percent_encode("a+b?c#d%e"), "a%2Bb%3Fc%23d%25e");
        // U+1F511 (a key) is 4 UTF-8 bytes.
        assert_eq!(percent_encode("\u{1f511}"), "%F0%9F%94%91");
        assert_eq!(percent_encode("\u{7f}\u{ff}"), "%7F%C3%BF");
    }

    #[test]
    fn alg_names_and_serde() {
        assert_eq!(TotpAlg::default(), TotpAlg::Sha1);
        for (alg, name) in [
            (TotpAlg::Sha1, "SHA1"),
            (TotpAlg::Sha256, "SHA256"),
            (TotpAlg::Sha512, "SHA512"),
        ] {
            assert_eq!(alg.name(), name);
            let json = serde_json::to_string(&alg).unwrap();
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<TotpAlg>(&json).unwrap(), alg);
        }
        assert!(serde_json::from_str::<TotpAlg>("\"Sha1\"").is_err());
        assert!(serde_json::from_str::<TotpAlg>("\"sha1\"").is_err());
    }
}
