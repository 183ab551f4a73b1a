//! The binary form of a key's record: a verify decodes one per request, so
//! it is a flat layout read in one pass rather than JSON. (The owner index
//! is JSON, through the crate's versioned codec.)
//!
//! After the format byte `0x02`, little-endian:
//!
//! ```text
//! flags u8            bit 0 enabled, 1 keyed, 2 expires_at, 3 revoked_at,
//!                     4 previous, 5 last_used_at, 6 audit_tag
//! created_at u64
//! expires_at u64      if bit 2
//! revoked_at u64      if bit 3
//! last_used_at u64    if bit 5
//! digest [32]
//! previous [32] u64   if bit 4: its digest and end
//! owner               u16 length, UTF-8
//! name                u8 length, UTF-8
//! prefix              u8 length, UTF-8
//! scopes              u8 count, then each u8 length, UTF-8
//! metadata            u8 count, then each key (u8 length) and value (u16)
//! audit_tag [16]      if bit 6
//! ```
//!
//! A record in the JSON form (format byte `0x01`) reads too.

use std::ops::Range;

use super::*;

/// The binary form's format byte.
const FORMAT_BINARY_V1: u8 = 2;

const ENABLED: u8 = 1;
const KEYED: u8 = 1 << 1;
const EXPIRES: u8 = 1 << 2;
const REVOKED: u8 = 1 << 3;
const PREVIOUS: u8 = 1 << 4;
const LAST_USED: u8 = 1 << 5;
const AUDIT: u8 = 1 << 6;

crate::store::json_stored!(OwnerIndex);

impl crate::store::Stored for KeyRecord {
    fn to_bytes(&self) -> Result<Vec<u8>, StoreError> {
        let too_long = || StoreError::Corrupt("api key record field too long");
        let mut out = Vec::with_capacity(128);
        out.push(FORMAT_BINARY_V1);
        let flag = |on: bool, bit: u8| if on { bit } else { 0 };
        out.push(
            flag(self.enabled, ENABLED)
                | flag(self.keyed, KEYED)
                | flag(self.expires_at.is_some(), EXPIRES)
                | flag(self.revoked_at.is_some(), REVOKED)
                | flag(self.previous.is_some(), PREVIOUS)
                | flag(self.last_used_at.is_some(), LAST_USED)
                | flag(self.audit_tag.is_some(), AUDIT),
        );
        out.extend_from_slice(&self.created_at.to_le_bytes());
        for t in [self.expires_at, self.revoked_at, self.last_used_at]
            .into_iter()
            .flatten()
        {
            out.extend_from_slice(&t.to_le_bytes());
        }
        out.extend_from_slice(self.digest.as_bytes());
        if let Some(p) = &self.previous {
            out.extend_from_slice(p.digest.as_bytes());
            out.extend_from_slice(&p.until.to_le_bytes());
        }
        put16(&mut out, &self.owner).ok_or_else(too_long)?;
        put8(&mut out, &self.name).ok_or_else(too_long)?;
        put8(&mut out, &self.prefix).ok_or_else(too_long)?;
        out.push(u8::try_from(self.scopes.len()).map_err(|_| too_long())?);
        for scope in &self.scopes {
            put8(&mut out, scope).ok_or_else(too_long)?;
        }
        out.push(u8::try_from(self.metadata.len()).map_err(|_| too_long())?);
        for (k, v) in &self.metadata {
            put8(&mut out, k).ok_or_else(too_long)?;
            put16(&mut out, v).ok_or_else(too_long)?;
        }
        if let Some(tag) = &self.audit_tag {
            out.extend_from_slice(tag.as_bytes());
        }
        Ok(out)
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, StoreError> {
        match bytes.split_first() {
            Some((&FORMAT_BINARY_V1, rest)) => {
                read(rest).ok_or(StoreError::Corrupt("api key record does not decode"))
            }
            _ => crate::store::decode(bytes),
        }
    }
}

fn put8(out: &mut Vec<u8>, s: &str) -> Option<()> {
    out.push(u8::try_from(s.len()).ok()?);
    out.extend_from_slice(s.as_bytes());
    Some(())
}

fn put16(out: &mut Vec<u8>, s: &str) -> Option<()> {
    out.extend_from_slice(&u16::try_from(s.len()).ok()?.to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    Some(())
}

/// Reads the bytes after the format byte; `None` for anything short,
/// long or not UTF-8.
fn read(bytes: &[u8]) -> Option<KeyRecord> {
    let mut r = Reader(bytes);
    let Fixed {
        flags,
        created_at,
        expires_at,
        revoked_at,
        last_used_at,
        digest,
        previous,
    } = Fixed::read(&mut r)?;
    let on = |bit: u8| flags & bit != 0;
    let owner = r.str16()?;
    let name = r.str8()?;
    let prefix = r.str8()?;
    let scopes = (0..r.u8()?).map(|_| r.str8()).collect::<Option<_>>()?;
    let metadata = (0..r.u8()?)
        .map(|_| Some((r.str8()?, r.str16()?)))
        .collect::<Option<_>>()?;
    let audit_tag = if on(AUDIT) {
        Some(AuditTag::from_bytes(r.take::<16>()?))
    } else {
        None
    };
    if !r.0.is_empty() {
        return None;
    }
    Some(KeyRecord {
        owner,
        name,
        prefix,
        scopes,
        metadata,
        created_at,
        expires_at,
        enabled: on(ENABLED),
        revoked_at,
        keyed: on(KEYED),
        digest,
        previous,
        last_used_at,
        audit_tag,
    })
}

/// The fixed part of a record in the binary form, as a proof keeps it;
/// `None` for a record in another form.
pub(crate) fn fixed_part(bytes: &[u8]) -> Option<Fixed> {
    let (&FORMAT_BINARY_V1, rest) = bytes.split_first()? else {
        return None;
    };
    Fixed::read(&mut Reader(rest))
}

/// The fixed part of a record in the binary form: the flags, the times
/// and the digests, before the strings.
pub(crate) struct Fixed {
    flags: u8,
    created_at: u64,
    pub(crate) expires_at: Option<u64>,
    revoked_at: Option<u64>,
    last_used_at: Option<u64>,
    digest: TokenDigest,
    pub(crate) previous: Option<Previous>,
}

impl Fixed {
    /// Reads it; `None` if short, or if a flag keyward does not know is
    /// set.
    #[inline(always)]
    fn read(r: &mut Reader<'_>) -> Option<Self> {
        let flags = r.u8()?;
        if flags >> 7 != 0 {
            return None;
        }
        let on = |bit: u8| flags & bit != 0;
        let created_at = r.u64()?;
        let expires_at = if on(EXPIRES) { Some(r.u64()?) } else { None };
        let revoked_at = if on(REVOKED) { Some(r.u64()?) } else { None };
        let last_used_at = if on(LAST_USED) { Some(r.u64()?) } else { None };
        let digest = r.digest()?;
        let previous = if on(PREVIOUS) {
            Some(Previous {
                digest: r.digest()?,
                until: r.u64()?,
            })
        } else {
            None
        };
        Some(Self {
            flags,
            created_at,
            expires_at,
            revoked_at,
            last_used_at,
            digest,
            previous,
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|[b]| b)
    }

    fn u64(&mut self) -> Option<u64> {
        self.take::<8>().map(u64::from_le_bytes)
    }

    fn digest(&mut self) -> Option<TokenDigest> {
        self.take::<32>().map(TokenDigest::from_bytes)
    }

    fn str(&mut self, len: usize) -> Option<String> {
        let (s, rest) = self.0.split_at_checked(len)?;
        self.0 = rest;
        std::str::from_utf8(s).ok().map(str::to_owned)
    }

    fn str8(&mut self) -> Option<String> {
        let len = self.u8()?;
        self.str(usize::from(len))
    }

    fn str16(&mut self) -> Option<String> {
        let len = self.take::<2>().map(u16::from_le_bytes)?;
        self.str(usize::from(len))
    }
}

/// What a verify reads of a record in the binary form: the status,
/// `last_used_at`, where the digests lie, and where the proof's strings
/// lie in the record's bytes. It borrows nothing, so the bytes can move
/// into the proof; it allocates nothing and checks no UTF-8 (the proof
/// checks its strings once).
pub(crate) struct KeyView {
    pub(crate) status: Status,
    pub(crate) last_used_at: Option<u64>,
    /// Whether the digests are keyed.
    pub(crate) keyed: bool,
    /// Where the current digest starts; the previous one, if any, follows
    /// it.
    pub(crate) digest_at: usize,
    /// The owner's bytes.
    pub(crate) owner: Range<usize>,
    /// The name's bytes.
    pub(crate) name: Range<usize>,
    /// The scopes' bytes: each with its length byte before it.
    pub(crate) scopes: Range<usize>,
}

impl KeyView {
    /// The view of `bytes`, or `None` if they are not a record in the
    /// binary form (a record in the JSON form has no view).
    #[inline(always)]
    pub(crate) fn of(bytes: &[u8]) -> Option<Self> {
        let (&FORMAT_BINARY_V1, rest) = bytes.split_first()? else {
            return None;
        };
        let mut r = Reader(rest);
        // A position in `bytes`, from what is left to read.
        let at = |r: &Reader<'_>| bytes.len().checked_sub(r.0.len());
        let fixed = Fixed::read(&mut r)?;
        let len16 = r.take::<2>().map(u16::from_le_bytes)?;
        let owner = span(&mut r, at, usize::from(len16))?;
        let len8 = r.u8()?;
        let name = span(&mut r, at, usize::from(len8))?;
        let _prefix = r.bytes8()?;
        let count = r.u8()?;
        let start = at(&r)?;
        for _ in 0..count {
            r.bytes8()?;
        }
        Some(Self {
            status: Status {
                digest: fixed.digest,
                previous: fixed.previous,
                revoked: fixed.revoked_at.is_some(),
                expires_at: fixed.expires_at,
                enabled: fixed.flags & ENABLED != 0,
            },
            last_used_at: fixed.last_used_at,
            keyed: fixed.flags & KEYED != 0,
            digest_at: digest_at(fixed.flags),
            owner,
            name,
            scopes: start..at(&r)?,
        })
    }
}

/// Where the current digest starts in a record in the binary form with
/// these flags: after the format byte, the flags, `created_at` and each
/// optional time.
fn digest_at(flags: u8) -> usize {
    let times = (flags & (EXPIRES | REVOKED | LAST_USED)).count_ones();
    // At most three times: no overflow.
    usize::try_from(times).map_or(0, |t| 10usize.saturating_add(t.saturating_mul(8)))
}

/// Reads `len` bytes and says where they lay.
fn span(
    r: &mut Reader<'_>,
    at: impl Fn(&Reader<'_>) -> Option<usize>,
    len: usize,
) -> Option<Range<usize>> {
    let start = at(r)?;
    r.bytes(len)?;
    Some(start..at(r)?)
}

/// Each scope's bytes in `scopes`, where each has its length byte before
/// it (a view's `scopes`), in order.
pub(crate) fn scope_slices(scopes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut r = Reader(scopes);
    std::iter::from_fn(move || r.bytes8())
}

impl<'a> Reader<'a> {
    fn bytes(&mut self, len: usize) -> Option<&'a [u8]> {
        let (s, rest) = self.0.split_at_checked(len)?;
        self.0 = rest;
        Some(s)
    }

    fn bytes8(&mut self) -> Option<&'a [u8]> {
        let len = self.u8()?;
        self.bytes(usize::from(len))
    }
}
