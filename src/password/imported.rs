//! bcrypt and Argon2 hashes imported from other stacks: Rails, Laravel,
//! Node, Spring, PHP, Python. keyward verifies each through a maintained
//! crate (`bcrypt`; RustCrypto's `argon2`), never writes one, and parses
//! and bounds the stored string itself before any work.
//!
//! | scheme | stored form | salt | hash | bounds, checked before any work |
//! |---|---|---|---|---|
//! | `bcrypt` | `$2b$<cost>$<22 chars salt><31 chars hash>`, or `$2a$`, `$2y$`: 60 characters in all, bcrypt's base64 (`./A-Za-z0-9`, no padding) | 16 bytes | 23 bytes | cost (two digits) 4 to 16 |
//! | `argon2id`, `argon2i`, `argon2d` | `$argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<B64 salt>$<B64 hash>` (PHC; B64 is standard base64 without padding) | 8 to 64 bytes | 16 to 64 bytes | `v` 19 or 16; `p` 1 to 64; `t` 1 to 10; `m` 8 × `p` to the policy's `argon2_max_memory_kib` (default 256 MiB) |
//!
//! [`Passwords::inspect`](super::Passwords::inspect) reports a bcrypt hash's
//! iterations as its rounds, 2^cost, and an Argon2 hash's as `t`, with `m`
//! and `p` in [`HashInfo`](super::HashInfo)'s `memory_kib` and
//! `parallelism`.
//!
//! # bcrypt
//!
//! - `$2a$`, `$2b$` and `$2y$` are one algorithm for every password of at
//!   most 72 bytes: they differ only in the bugs of past implementations
//!   that each prefix marks as fixed. `$2x$` (crypt_blowfish's mark for
//!   hashes made by its sign-extension bug, CVE-2011-2483) and `$2$` (the
//!   first OpenBSD version) are refused as unsupported: verifying them
//!   would need the bugs.
//! - Only the first 72 bytes of a password count, as in every bcrypt
//!   implementation that wrote these hashes (OpenBSD, PHP, Ruby, Node,
//!   Spring Security before its CVE-2025-22228 fix, Python's `bcrypt`
//!   before 5.0): a user who chose a
//!   longer password typed all of it and logs in with all of it. Every
//!   byte is used, NUL included, as Python's `bcrypt` and the `bcrypt` crate
//!   hash it; a C implementation stopped at the first NUL, so a password
//!   with a NUL whose hash came from one fails to verify (a mismatch,
//!   never a false accept). The upgrade hashes the whole password as
//!   typed, so the 72-byte limit ends with it.
//!
//! # Argon2
//!
//! - `v=19` (version 0x13, RFC 9106) and `v=16` (0x10, the 2015 original,
//!   which the `argon2` crate also computes) are accepted. A string without
//!   `v=` is refused, not defaulted: the reference implementation reads it
//!   as 0x10, other libraries as 0x13, and keyward never guesses a
//!   parameter.
//! - `m=`, `t=` and `p=` come in that order, as every writer puts them
//!   (the reference implementation, libsodium, argon2-cffi, PHP, Spring);
//!   `keyid=` and `data=` are refused.
//! - The memory is allocated with a fallible reservation: when it cannot be
//!   had, the verification fails with [`Error::Busy`] instead of aborting
//!   the process. It is wiped after use, as the reference implementation
//!   does.
//! - The tag is compared in constant time.

use std::str::FromStr;

use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::phc::{self, Bytes64, MAX_HASH_LEN, MAX_SALT_LEN, MIN_HASH_LEN, MIN_SALT_LEN};
use super::{ARGON2_MAX_PARALLELISM, ARGON2_MAX_TIME, BCRYPT_MAX_COST, BCRYPT_MIN_COST, Scheme};
use crate::error::{Error, HashError};

/// A bcrypt hash is always 60 characters: `$2b$`, two digits, `$`, then 22
/// characters of salt and 31 of hash.
const BCRYPT_LEN: usize = 60;
/// bcrypt's salt and hash sizes, fixed by the format.
const BCRYPT_SALT_LEN: usize = 16;
const BCRYPT_HASH_LEN: usize = 23;
/// Argon2's own floor for `m`: 8 KiB per lane (RFC 9106 §3.1).
const ARGON2_BLOCKS_PER_LANE: u64 = 8;

/// Whether a scheme is one of this module's.
pub(crate) fn handles(scheme: Scheme) -> bool {
    matches!(
        scheme,
        Scheme::Bcrypt | Scheme::Argon2id | Scheme::Argon2i | Scheme::Argon2d
    )
}

/// An imported bcrypt or Argon2 hash, parsed and checked against every
/// bound: verifying it costs at most what the bounds allow.
pub(crate) enum Imported {
    Bcrypt { cost: u32 },
    Argon2(Box<Argon2Hash>),
}

pub(crate) struct Argon2Hash {
    algorithm: Algorithm,
    version: Version,
    params: Params,
    salt: Bytes64,
    hash: Bytes64,
}

impl Imported {
    /// The iteration count `inspect` reports: bcrypt's rounds (2^cost),
    /// Argon2's passes (`t`).
    pub(crate) fn iterations(&self) -> u32 {
        match self {
            // cost <= 16, so the shift cannot overflow.
            Self::Bcrypt { cost } => 1u32.checked_shl(*cost).unwrap_or(u32::MAX),
            Self::Argon2(a) => a.params.t_cost(),
        }
    }

    pub(crate) fn salt_len(&self) -> usize {
        match self {
            Self::Bcrypt { .. } => BCRYPT_SALT_LEN,
            Self::Argon2(a) => a.salt.len(),
        }
    }

    pub(crate) fn hash_len(&self) -> usize {
        match self {
            Self::Bcrypt { .. } => BCRYPT_HASH_LEN,
            Self::Argon2(a) => a.hash.len(),
        }
    }

    /// Argon2's `m`, in KiB.
    pub(crate) fn memory_kib(&self) -> Option<u32> {
        match self {
            Self::Bcrypt { .. } => None,
            Self::Argon2(a) => Some(a.params.m_cost()),
        }
    }

    /// Argon2's `p`.
    pub(crate) fn parallelism(&self) -> Option<u32> {
        match self {
            Self::Bcrypt { .. } => None,
            Self::Argon2(a) => Some(a.params.p_cost()),
        }
    }

    /// Runs the scheme on the password and compares in constant time.
    /// `stored` is the string this was parsed from.
    pub(crate) fn matches(&self, password: &[u8], stored: &str) -> Result<bool, Error> {
        match self {
            // The crate truncates at 72 bytes and appends the NUL
            // terminator, as the origins did (see the module docs); its
            // comparison is constant-time.
            Self::Bcrypt { .. } => bcrypt::verify(password, stored)
                .map_err(|_| Error::Hash(HashError::Encoding("bcrypt salt and hash"))),
            Self::Argon2(a) => a.matches(password),
        }
    }
}

impl Argon2Hash {
    fn matches(&self, password: &[u8]) -> Result<bool, Error> {
        let blocks = self.params.block_count();
        let mut memory = Vec::new();
        memory.try_reserve_exact(blocks).map_err(|_| Error::Busy)?;
        memory.resize(blocks, Block::new());
        let mut memory = Zeroizing::new(memory);
        let expected = self.hash.as_slice();
        let mut out = Zeroizing::new([0u8; MAX_HASH_LEN]);
        let out = out
            .get_mut(..expected.len())
            .ok_or(HashError::Structure("hash length"))?;
        Argon2::new(self.algorithm, self.version, self.params.clone())
            .hash_password_into_with_memory(
                password,
                self.salt.as_slice(),
                out,
                memory.as_mut_slice(),
            )
            // Unreachable: parsing checked every input the crate checks.
            .map_err(|_| HashError::BadParam("argon2 parameters"))?;
        Ok(bool::from(out.ct_eq(expected)))
    }
}

/// Parses a hash of a scheme that [`handles`] accepts, checking every bound
/// before any work.
pub(crate) fn parse(s: &str, scheme: Scheme, max_memory_kib: u32) -> Result<Imported, HashError> {
    match scheme {
        Scheme::Bcrypt => parse_bcrypt(s),
        Scheme::Argon2id => parse_argon2(s, "$argon2id$", Algorithm::Argon2id, max_memory_kib),
        Scheme::Argon2i => parse_argon2(s, "$argon2i$", Algorithm::Argon2i, max_memory_kib),
        Scheme::Argon2d => parse_argon2(s, "$argon2d$", Algorithm::Argon2d, max_memory_kib),
        _ => Err(HashError::UnknownScheme),
    }
}

/// `$2b$<cost>$<salt><hash>` (also `$2a$`, `$2y$`).
fn parse_bcrypt(s: &str) -> Result<Imported, HashError> {
    let b = s.as_bytes();
    let prefix_ok = matches!(b, [b'$', b'2', b'a' | b'b' | b'y', b'$', ..]);
    if !prefix_ok {
        return Err(HashError::UnknownScheme);
    }
    let cost = match b.get(4..7) {
        Some([d1 @ b'0'..=b'9', d2 @ b'0'..=b'9', b'$']) => u32::from(d1.saturating_sub(b'0'))
            .saturating_mul(10)
            .saturating_add(u32::from(d2.saturating_sub(b'0'))),
        _ => return Err(HashError::BadParam("cost")),
    };
    if !(BCRYPT_MIN_COST..=BCRYPT_MAX_COST).contains(&cost) {
        return Err(HashError::Cost {
            param: "cost",
            found: u64::from(cost),
            min: u64::from(BCRYPT_MIN_COST),
            max: u64::from(BCRYPT_MAX_COST),
        });
    }
    if b.len() != BCRYPT_LEN {
        return Err(HashError::Structure("bcrypt hash is not 60 characters"));
    }
    let body = b.get(7..).unwrap_or_default();
    if !body
        .iter()
        .all(|&c| c.is_ascii_alphanumeric() || c == b'.' || c == b'/')
    {
        return Err(HashError::Encoding("bcrypt salt and hash"));
    }
    // The crate's own parser decodes the salt and hash (refusing unused
    // bits that are set), so that `inspect` refuses exactly what `verify`
    // would. No hashing happens here.
    bcrypt::HashParts::from_str(s).map_err(|_| HashError::Encoding("bcrypt salt and hash"))?;
    Ok(Imported::Bcrypt { cost })
}

/// `$argon2id$v=19$m=<KiB>,t=<passes>,p=<lanes>$<salt>$<hash>`.
fn parse_argon2(
    s: &str,
    prefix: &str,
    algorithm: Algorithm,
    max_memory_kib: u32,
) -> Result<Imported, HashError> {
    let rest = s.strip_prefix(prefix).ok_or(HashError::UnknownScheme)?;
    let mut fields = rest.split('$');
    let version = fields.next().unwrap_or_default();
    let version = version
        .strip_prefix("v=")
        .ok_or(HashError::MissingParam("v"))?;
    let version = match phc::parse_decimal(version, "v")? {
        0x13 => Version::V0x13,
        0x10 => Version::V0x10,
        _ => return Err(HashError::BadParam("v")),
    };
    let params = fields
        .next()
        .ok_or(HashError::Structure("missing parameters"))?;
    let salt = fields.next().ok_or(HashError::Structure("missing salt"))?;
    let hash = fields.next().ok_or(HashError::Structure("missing hash"))?;
    if fields.next().is_some() {
        return Err(HashError::Structure("too many fields"));
    }

    let mut values = params.split(',');
    let mut next = |name: &'static str| -> Result<u64, HashError> {
        let param = values.next().ok_or(HashError::MissingParam(name))?;
        match param.split_once('=') {
            Some((n, value)) if n == name => phc::parse_decimal(value, name),
            Some(_) => Err(HashError::BadParam(
                "parameters must be m, t, p in that order",
            )),
            None => Err(HashError::Structure("parameter without '='")),
        }
    };
    let (m, t, p) = (next("m")?, next("t")?, next("p")?);
    if values.next().is_some() {
        return Err(HashError::BadParam("unknown parameter"));
    }

    let p = bounded("p", p, 1, u64::from(ARGON2_MAX_PARALLELISM))?;
    let t = bounded("t", t, 1, u64::from(ARGON2_MAX_TIME))?;
    let min_m = u64::from(p).saturating_mul(ARGON2_BLOCKS_PER_LANE);
    let m = bounded("m", m, min_m, u64::from(max_memory_kib))?;

    let salt = phc::decode_b64(salt, "salt", MIN_SALT_LEN, MAX_SALT_LEN).map_err(|e| match e {
        HashError::OutputLength { found, min, max } => HashError::SaltLength { found, min, max },
        other => other,
    })?;
    let hash = phc::decode_b64(hash, "hash", MIN_HASH_LEN, MAX_HASH_LEN)?;
    let params = Params::new(m, t, p, Some(hash.len()))
        // Unreachable: the bounds above are inside the crate's.
        .map_err(|_| HashError::BadParam("argon2 parameters"))?;
    Ok(Imported::Argon2(Box::new(Argon2Hash {
        algorithm,
        version,
        params,
        salt,
        hash,
    })))
}

/// `found` within `min..=max`, as a `u32`, or the bound's error.
fn bounded(param: &'static str, found: u64, min: u64, max: u64) -> Result<u32, HashError> {
    match u32::try_from(found) {
        Ok(v) if (min..=max).contains(&found) => Ok(v),
        _ => Err(HashError::Cost {
            param,
            found,
            min,
            max,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BCRYPT: &str = "$2b$04$0E4DeuI1QnET7uiam9ss5OpDMPjU9E1QrxRzB6lkLl.DMOg2pI8Ua";
    const ARGON2: &str = "$argon2id$v=19$m=65536,t=3,p=4$ldoHzMe384QivZiAFjLbXA$I3J84W3FghcSEYNf2A+2glzQv6VxcZUSqyS4LOFxN14";
    const MAX_M: u32 = 262_144;

    #[test]
    fn well_formed_strings_parse() {
        let b = parse(BCRYPT, Scheme::Bcrypt, MAX_M).expect("bcrypt");
        assert_eq!((b.iterations(), b.salt_len(), b.hash_len()), (16, 16, 23));
        let a = parse(ARGON2, Scheme::Argon2id, MAX_M).expect("argon2");
        assert_eq!((a.iterations(), a.salt_len(), a.hash_len()), (3, 16, 32));
        assert_eq!((a.memory_kib(), a.parallelism()), (Some(65_536), Some(4)));
    }

    #[test]
    fn bcrypt_cost_is_bounded_before_the_rest_is_read() {
        for (cost, found) in [("03", 3), ("17", 17), ("31", 31), ("99", 99)] {
            let s = BCRYPT.replacen("$04$", &format!("${cost}$"), 1);
            assert_eq!(
                parse(&s, Scheme::Bcrypt, MAX_M).err(),
                Some(HashError::Cost {
                    param: "cost",
                    found,
                    min: 4,
                    max: 16
                }),
                "{s}"
            );
        }
        assert_eq!(
            parse("$2b$31$", Scheme::Bcrypt, MAX_M)
                .err()
                .map(|e| e.to_string()),
            Some("parameter cost = 31 is outside the accepted range 4..=16".to_owned())
        );
        for bad in ["$2b$4$", "$2b$+4$", "$2b$ 4$", "$2b$04", "$2b$004$"] {
            assert_eq!(
                parse(bad, Scheme::Bcrypt, MAX_M).err(),
                Some(HashError::BadParam("cost")),
                "{bad}"
            );
        }
    }

    #[test]
    fn argon2_parameters_are_bounded_in_order() {
        let with = |params: &str| ARGON2.replacen("m=65536,t=3,p=4", params, 1);
        let cost = |param, found, min, max| {
            Some(HashError::Cost {
                param,
                found,
                min,
                max,
            })
        };
        let cases = [
            ("m=65536,t=3,p=65", cost("p", 65, 1, 64)),
            ("m=65536,t=3,p=0", cost("p", 0, 1, 64)),
            ("m=65536,t=11,p=4", cost("t", 11, 1, 10)),
            ("m=65536,t=0,p=4", cost("t", 0, 1, 10)),
            ("m=262145,t=3,p=4", cost("m", 262_145, 32, 262_144)),
            ("m=31,t=3,p=4", cost("m", 31, 32, 262_144)),
            (
                "m=9999999999999999999,t=3,p=4",
                cost("m", 9_999_999_999_999_999_999, 32, 262_144),
            ),
            (
                "t=3,m=65536,p=4",
                Some(HashError::BadParam(
                    "parameters must be m, t, p in that order",
                )),
            ),
            ("m=65536,t=3", Some(HashError::MissingParam("p"))),
            (
                "m=65536,t=3,p=4,keyid=AAAA",
                Some(HashError::BadParam("unknown parameter")),
            ),
            ("m=065536,t=3,p=4", Some(HashError::BadParam("m"))),
        ];
        for (params, want) in cases {
            assert_eq!(
                parse(&with(params), Scheme::Argon2id, MAX_M).err(),
                want,
                "{params}"
            );
        }
        let v = |v: &str| ARGON2.replacen("v=19", v, 1);
        assert_eq!(
            parse(&v("v=18"), Scheme::Argon2id, MAX_M).err(),
            Some(HashError::BadParam("v"))
        );
        assert!(parse(&v("v=16"), Scheme::Argon2id, MAX_M).is_ok());
        let no_v = ARGON2.replacen("v=19$", "", 1);
        assert_eq!(
            parse(&no_v, Scheme::Argon2id, MAX_M).err(),
            Some(HashError::MissingParam("v"))
        );
    }
}
