//! The PHC string format for PBKDF2, as keyward writes and reads it:
//!
//! ```text
//! $pbkdf2-sha256$i=600000,l=32$<salt>$<hash>
//! $pbkdf2-sha256$i=600000,l=32,k=<pepper id>$<salt>$<hash>
//! ```
//!
//! Salt and hash are the PHC "B64" encoding: the standard base64 alphabet
//! without padding. `i=` (iterations) and `l=` (hash length in bytes) are
//! required: a missing cost parameter is an error, never a default, so a
//! tampered row cannot quietly lower the cost. `k=` names the pepper key.

use crate::keyring::is_valid_pepper_id;
use base64ct::{Base64Unpadded, Encoding};

use super::kdf::Digest;
use crate::error::HashError;

/// Salts shorter than this are rejected when verifying. New hashes use 16.
pub(crate) const MIN_SALT_LEN: usize = 8;
/// Longest salt accepted; longer ones only cost memory and parsing time.
pub(crate) const MAX_SALT_LEN: usize = 64;
/// Shortest hash accepted (`l=`).
pub(crate) const MIN_HASH_LEN: usize = 16;
/// Longest hash accepted (`l=`); 64 bytes is one SHA-512 block of output.
pub(crate) const MAX_HASH_LEN: usize = 64;

/// The PRF of a PHC PBKDF2 string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Prf {
    Sha256,
    Sha512,
}

impl Prf {
    pub(crate) fn phc_id(self) -> &'static str {
        match self {
            Self::Sha256 => "pbkdf2-sha256",
            Self::Sha512 => "pbkdf2-sha512",
        }
    }

    pub(crate) fn digest(self) -> Digest {
        match self {
            Self::Sha256 => Digest::Sha256,
            Self::Sha512 => Digest::Sha512,
        }
    }
}

/// A fixed-capacity byte buffer for decoded salts and hashes: no allocation
/// while parsing untrusted input, and the capacity is the length bound.
#[derive(Clone)]
pub(crate) struct Bytes64 {
    buf: [u8; 64],
    len: usize,
}

impl Bytes64 {
    /// Copies `bytes` in; `None` when they exceed the capacity.
    pub(crate) fn from_slice(bytes: &[u8]) -> Option<Self> {
        let mut buf = [0u8; 64];
        buf.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(Self {
            buf,
            len: bytes.len(),
        })
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or(&[])
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

/// A parsed PHC PBKDF2 string. Borrows the pepper id from the input.
pub(crate) struct PhcHash<'a> {
    pub(crate) prf: Prf,
    pub(crate) iterations: u32,
    pub(crate) pepper_id: Option<&'a str>,
    pub(crate) salt: Bytes64,
    pub(crate) hash: Bytes64,
}

/// Parses a PHC PBKDF2 string, checking every bound before any hashing.
/// The work bound (iterations × output blocks, where `l=` longer than the
/// digest costs more than one block) is checked by the caller on the result,
/// for every scheme alike.
pub(crate) fn parse(s: &str, min_iter: u32, max_iter: u32) -> Result<PhcHash<'_>, HashError> {
    let rest = s.strip_prefix('$').ok_or(HashError::UnknownScheme)?;
    let mut fields = rest.split('$');
    let id = fields.next().ok_or(HashError::UnknownScheme)?;
    let prf = match id {
        "pbkdf2-sha256" => Prf::Sha256,
        "pbkdf2-sha512" => Prf::Sha512,
        _ => return Err(HashError::UnknownScheme),
    };
    let params = fields
        .next()
        .ok_or(HashError::Structure("missing parameters"))?;
    let salt_b64 = fields.next().ok_or(HashError::Structure("missing salt"))?;
    let hash_b64 = fields.next().ok_or(HashError::Structure("missing hash"))?;
    if fields.next().is_some() {
        return Err(HashError::Structure("too many fields"));
    }

    let mut iterations = None;
    let mut out_len = None;
    let mut pepper_id = None;
    for param in params.split(',') {
        let (name, value) = param
            .split_once('=')
            .ok_or(HashError::Structure("parameter without '='"))?;
        match name {
            "i" if iterations.is_none() => iterations = Some(parse_decimal(value, "i")?),
            "l" if out_len.is_none() => out_len = Some(parse_decimal(value, "l")?),
            "k" if pepper_id.is_none() => pepper_id = Some(parse_pepper_id(value)?),
            "i" | "l" | "k" => return Err(HashError::BadParam("repeated parameter")),
            _ => return Err(HashError::BadParam("unknown parameter")),
        }
    }
    let iterations = iterations.ok_or(HashError::MissingParam("i"))?;
    let out_len = out_len.ok_or(HashError::MissingParam("l"))?;

    let iterations = check_iterations(iterations, min_iter, max_iter)?;
    let out_len = usize::try_from(out_len).unwrap_or(usize::MAX);
    if !(MIN_HASH_LEN..=MAX_HASH_LEN).contains(&out_len) {
        return Err(HashError::OutputLength {
            found: out_len,
            min: MIN_HASH_LEN,
            max: MAX_HASH_LEN,
        });
    }
    let salt = decode_b64(salt_b64, "salt", MIN_SALT_LEN, MAX_SALT_LEN)
        .map_err(|e| salt_error(e, salt_b64))?;
    let hash = decode_b64(hash_b64, "hash", out_len, out_len).map_err(|e| match e {
        HashError::OutputLength { found, .. } => HashError::OutputLength {
            found,
            min: out_len,
            max: out_len,
        },
        other => other,
    })?;
    Ok(PhcHash {
        prf,
        iterations,
        pepper_id,
        salt,
        hash,
    })
}

/// Checks an iteration count against the policy bounds.
pub(crate) fn check_iterations(found: u64, min: u32, max: u32) -> Result<u32, HashError> {
    match u32::try_from(found) {
        Ok(i) if (min..=max).contains(&i) => Ok(i),
        _ => Err(HashError::Iterations { found, min, max }),
    }
}

fn salt_error(e: HashError, _b64: &str) -> HashError {
    match e {
        HashError::OutputLength { found, .. } => HashError::SaltLength {
            found,
            min: MIN_SALT_LEN,
            max: MAX_SALT_LEN,
        },
        other => other,
    }
}

/// Parses a non-negative decimal with no sign and no leading zeros.
pub(crate) fn parse_decimal(value: &str, name: &'static str) -> Result<u64, HashError> {
    let canonical = !value.is_empty()
        && value.len() <= 19
        && value.bytes().all(|b| b.is_ascii_digit())
        && (value == "0" || !value.starts_with('0'));
    if !canonical {
        return Err(HashError::BadParam(name));
    }
    value.parse::<u64>().map_err(|_| HashError::BadParam(name))
}

fn parse_pepper_id(value: &str) -> Result<&str, HashError> {
    if is_valid_pepper_id(value) {
        Ok(value)
    } else {
        Err(HashError::BadParam("k"))
    }
}

/// Decodes unpadded standard base64 into a bounded buffer. The length is
/// checked from the encoded length first, so an oversized field is rejected
/// without decoding it. Length errors come back as `OutputLength` and are
/// renamed by the caller.
pub(crate) fn decode_b64(
    field: &str,
    what: &'static str,
    min: usize,
    max: usize,
) -> Result<Bytes64, HashError> {
    // Unpadded base64: 4 characters carry 3 bytes; a remainder of 1 is never valid.
    let n = field.len();
    if n % 4 == 1 {
        return Err(HashError::Encoding(what));
    }
    let found = (n / 4)
        .saturating_mul(3)
        .saturating_add((n % 4).saturating_sub(1));
    if !(min..=max).contains(&found) {
        return Err(HashError::OutputLength { found, min, max });
    }
    let mut out = Bytes64 {
        buf: [0u8; 64],
        len: 0,
    };
    let decoded =
        Base64Unpadded::decode(field, &mut out.buf).map_err(|_| HashError::Encoding(what))?;
    out.len = decoded.len();
    Ok(out)
}

/// Encodes a PHC PBKDF2 string.
pub(crate) fn encode(
    prf: Prf,
    iterations: u32,
    pepper_id: Option<&str>,
    salt: &[u8],
    hash: &[u8],
) -> String {
    let salt = Base64Unpadded::encode_string(salt);
    let hash_b64 = Base64Unpadded::encode_string(hash);
    let id = prf.phc_id();
    let len = hash.len();
    match pepper_id {
        Some(k) => format!("${id}$i={iterations},l={len},k={k}${salt}${hash_b64}"),
        None => format!("${id}$i={iterations},l={len}${salt}${hash_b64}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str =
        "$pbkdf2-sha256$i=1000,l=32$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

    #[test]
    fn parses_a_well_formed_string() {
        let p = parse(OK, 1000, 5_000_000).expect("valid");
        assert_eq!(p.prf, Prf::Sha256);
        assert_eq!(p.iterations, 1000);
        assert_eq!(p.salt.as_slice(), b"saltsalt");
        assert_eq!(p.hash.len(), 32);
        assert!(p.pepper_id.is_none());
    }

    #[test]
    fn encode_then_parse_round_trips() {
        let s = encode(Prf::Sha512, 4096, Some("pep-1"), &[7u8; 16], &[9u8; 64]);
        assert!(s.starts_with("$pbkdf2-sha512$i=4096,l=64,k=pep-1$"), "{s}");
        let p = parse(&s, 1000, 5_000_000).expect("valid");
        assert_eq!(p.prf, Prf::Sha512);
        assert_eq!(p.pepper_id, Some("pep-1"));
        assert_eq!(p.salt.as_slice(), &[7u8; 16]);
        assert_eq!(p.hash.as_slice(), &[9u8; 64]);
    }

    #[test]
    fn rejects_each_malformation_with_its_reason() {
        let h = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let cases: &[(String, HashError)] = &[
            (
                format!("$pbkdf2-sha256$l=32$c2FsdHNhbHQ${h}"),
                HashError::MissingParam("i"),
            ),
            (
                format!("$pbkdf2-sha256$i=1000$c2FsdHNhbHQ${h}"),
                HashError::MissingParam("l"),
            ),
            (
                format!("$pbkdf2-sha256$i=999,l=32$c2FsdHNhbHQ${h}"),
                HashError::Iterations {
                    found: 999,
                    min: 1000,
                    max: 5_000_000,
                },
            ),
            (
                format!("$pbkdf2-sha256$i=4294967295,l=32$c2FsdHNhbHQ${h}"),
                HashError::Iterations {
                    found: 4_294_967_295,
                    min: 1000,
                    max: 5_000_000,
                },
            ),
            (
                format!("$pbkdf2-sha256$i=01000,l=32$c2FsdHNhbHQ${h}"),
                HashError::BadParam("i"),
            ),
            (
                format!("$pbkdf2-sha256$i=+1000,l=32$c2FsdHNhbHQ${h}"),
                HashError::BadParam("i"),
            ),
            (
                format!("$pbkdf2-sha256$i=1000,i=1000,l=32$c2FsdHNhbHQ${h}"),
                HashError::BadParam("repeated parameter"),
            ),
            (
                format!("$pbkdf2-sha256$i=1000,l=32,x=1$c2FsdHNhbHQ${h}"),
                HashError::BadParam("unknown parameter"),
            ),
            (
                format!("$pbkdf2-sha256$i=1000,l=8$c2FsdHNhbHQ${h}"),
                HashError::OutputLength {
                    found: 8,
                    min: 16,
                    max: 64,
                },
            ),
            (
                format!("$pbkdf2-sha256$i=1000,l=65$c2FsdHNhbHQ${h}"),
                HashError::OutputLength {
                    found: 65,
                    min: 16,
                    max: 64,
                },
            ),
            (
                format!("$pbkdf2-sha256$i=1000,l=32$c2FsdA${h}"),
                HashError::SaltLength {
                    found: 4,
                    min: 8,
                    max: 64,
                },
            ),
            (
                format!("$pbkdf2-sha256$i=1000,l=16$c2FsdHNhbHQ${h}"),
                HashError::OutputLength {
                    found: 32,
                    min: 16,
                    max: 16,
                },
            ),
            (
                format!("$pbkdf2-sha256$i=1000,l=32$c2FsdHNh!HQ${h}"),
                HashError::Encoding("salt"),
            ),
            (
                format!("$pbkdf2-sha256$i=1000,l=32$c2FsdHNhbHQ=${h}"),
                HashError::Encoding("salt"),
            ),
            (
                format!("$pbkdf2-sha256$i=1000,l=32$c2FsdHNhbHQ${h}$"),
                HashError::Structure("too many fields"),
            ),
            (
                format!("$pbkdf2-sha256$i=1000,l=32,k=$c2FsdHNhbHQ${h}"),
                HashError::BadParam("k"),
            ),
            (
                format!("$pbkdf2-sha1$i=1000,l=32$c2FsdHNhbHQ${h}"),
                HashError::UnknownScheme,
            ),
            ("pbkdf2-sha256".to_owned(), HashError::UnknownScheme),
        ];
        for (s, want) in cases {
            let got = parse(s, 1000, 5_000_000).err();
            assert_eq!(got.as_ref(), Some(want), "{s}");
        }
    }
}
