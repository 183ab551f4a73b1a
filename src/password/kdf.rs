//! The PBKDF2 core (RFC 8018 §5.2).
//!
//! Every password path in keyward ends here: the PHC scheme calls
//! [`pbkdf2_sha256`], and the other digests go through [`pbkdf2_sha512`] and
//! [`pbkdf2_sha1`]. Keeping one entry point per digest means one place to
//! verify against the published vectors, and one place to make fast.
//!
//! All three run the same core on their digest's block API (`sha2`'s
//! `compress256` and `compress512`, `sha1`'s `compress`). PBKDF2 with an
//! output of at most one digest is one serial chain of two compressions per
//! iteration, each depending on the last. The core adds to that chain only
//! what the block API makes necessary:
//!
//! - HMAC's two key states are computed once per derivation, not twice per
//!   iteration;
//! - every message of the chain is one digest long after a key block, so it
//!   fits one pre-padded block, and only the digest in it changes: no
//!   finalisation, no allocation;
//! - between two compressions, the digest is read from the state, swapped
//!   to big-endian and written into the block so that each of the
//!   compression's loads takes its data from a single store still in
//!   flight (a load that needs several smaller stores waits until they
//!   reach the cache). SHA-256 and SHA-1 write it 16 bytes per store, for
//!   their compressions' 16-byte loads. SHA-512 writes it 8 bytes per
//!   store: sha2 writes the SHA-512 state one 8-byte word at a time, so
//!   16-byte reads of it would wait in the same way, and they measured
//!   slower;
//! - `T` is kept as the XOR of the state words, never read back from the
//!   block.
//!
//! `harness/benches/pbkdf2.rs` measures each core against the bare chain of its
//! compressions, the `pbkdf2` crate and ring; `tests/kdf.rs` checks each
//! against the `pbkdf2` crate.

mod hmac_sha1;
mod hmac_sha256;
mod hmac_sha512;

use std::num::NonZeroU32;

use zeroize::Zeroize;

/// The HMAC digest a PBKDF2 derivation runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Digest {
    /// HMAC-SHA1: only in imported hashes (Django, Werkzeug, passlib,
    /// ASP.NET Identity); never for new ones.
    Sha1,
    /// HMAC-SHA256: new hashes.
    Sha256,
    /// HMAC-SHA512.
    Sha512,
}

impl Digest {
    /// The digest's output size in bytes, which is also the default PBKDF2
    /// output length of every legacy format (RFC 8018 §5.2 `hLen`).
    pub(crate) fn output_len(self) -> usize {
        match self {
            Self::Sha1 => hmac_sha1::Keys::LEN,
            Self::Sha256 => hmac_sha256::Keys::LEN,
            Self::Sha512 => hmac_sha512::Keys::LEN,
        }
    }

    /// PBKDF2 with this digest, filling all of `out`.
    pub(crate) fn pbkdf2(
        self,
        password: &[u8],
        salt: &[u8],
        iterations: NonZeroU32,
        out: &mut [u8],
    ) {
        match self {
            Self::Sha1 => pbkdf2_sha1(password, salt, iterations, out),
            Self::Sha256 => pbkdf2_sha256(password, salt, iterations, out),
            Self::Sha512 => pbkdf2_sha512(password, salt, iterations, out),
        }
    }
}

/// PBKDF2-HMAC-SHA256 (RFC 8018 §5.2), filling all of `out`.
///
/// This is the single PBKDF2-HMAC-SHA256 implementation that keyward's
/// password hashing uses. It is exposed so that benchmarks and known-answer
/// tests reach exactly the code that production runs. It never compares
/// anything: use [`Passwords::verify`](crate::Passwords::verify) to check a
/// password.
///
/// An empty `out` derives nothing. The password may be any bytes, including
/// empty or non-UTF-8.
///
/// It runs close to the cost of the SHA-256 compressions PBKDF2 needs: the
/// HMAC key blocks are compressed once, and each iteration is exactly two
/// compressions of pre-padded blocks through sha2's block API, with no
/// finalisation and no allocation.
/// `tests/kdf.rs` checks it against the `pbkdf2` crate, and
/// `tests/password.rs` against RFC 7914 and Wycheproof.
///
/// # Panics
///
/// If `out` is longer than (2³² − 1) × 32 bytes, which RFC 8018 §5.2 step 1
/// calls "derived key too long". No password path comes near it: stored
/// hashes are at most 64 bytes long.
///
/// ```
/// use std::num::NonZeroU32;
/// let mut out = [0u8; 32];
/// let one = NonZeroU32::new(1).expect("non-zero");
/// keyward::password::pbkdf2_sha256(b"password", b"salt", one, &mut out);
/// // RFC 7914 §11, first PBKDF2-HMAC-SHA256 vector (first 32 bytes).
/// assert_eq!(out[..4], [0x12, 0x0f, 0xb6, 0xcf]);
/// ```
// Not API: public, and hidden from the docs, only so that the known-answer
// tests (tests/kdf.rs, tests/password.rs, tests/legacy.rs) and
// harness/benches/pbkdf2.rs reach the core directly. It may change in any
// release; callers hash and verify through `Passwords`.
#[doc(hidden)]
pub fn pbkdf2_sha256(password: &[u8], salt: &[u8], iterations: NonZeroU32, out: &mut [u8]) {
    derive::<hmac_sha256::Keys>(password, salt, iterations, out);
}

/// PBKDF2-HMAC-SHA512 (RFC 8018 §5.2), filling all of `out`.
///
/// The single PBKDF2-HMAC-SHA512 implementation: `pbkdf2-sha512` PHC
/// strings and the SHA-512 legacy schemes (Werkzeug, passlib, ASP.NET
/// Identity v3) all derive here. Exposed, like [`pbkdf2_sha256`], for
/// known-answer tests; it never compares anything.
///
/// The same core as [`pbkdf2_sha256`], on sha2's `compress512`: two
/// compressions per iteration, no finalisation, no allocation.
///
/// # Panics
///
/// If `out` is longer than (2³² − 1) × 64 bytes (RFC 8018 §5.2 step 1).
///
/// ```
/// use std::num::NonZeroU32;
/// let mut out = [0u8; 64];
/// let one = NonZeroU32::new(1).expect("non-zero");
/// keyward::password::pbkdf2_sha512(b"password", b"salt", one, &mut out);
/// assert_eq!(out[..4], [0x86, 0x7f, 0x70, 0xcf]);
/// ```
// Not API, hidden from the docs: see `pbkdf2_sha256`.
#[doc(hidden)]
pub fn pbkdf2_sha512(password: &[u8], salt: &[u8], iterations: NonZeroU32, out: &mut [u8]) {
    derive::<hmac_sha512::Keys>(password, salt, iterations, out);
}

/// PBKDF2-HMAC-SHA1 (RFC 8018 §5.2), filling all of `out`.
///
/// Used only to verify imported hashes (Django, Werkzeug, passlib and
/// ASP.NET Identity SHA-1 variants), which are always upgraded to
/// PBKDF2-HMAC-SHA256 on a correct login; keyward never writes a SHA-1
/// hash. Exposed, like [`pbkdf2_sha256`], for known-answer tests; it never
/// compares anything.
///
/// The same core as [`pbkdf2_sha256`], on `sha1`'s block-level `compress`:
/// two compressions per iteration, no finalisation, no allocation.
///
/// # Panics
///
/// If `out` is longer than (2³² − 1) × 20 bytes (RFC 8018 §5.2 step 1).
///
/// ```
/// use std::num::NonZeroU32;
/// let mut out = [0u8; 20];
/// let one = NonZeroU32::new(1).expect("non-zero");
/// keyward::password::pbkdf2_sha1(b"password", b"salt", one, &mut out);
/// // RFC 6070 §2, first test vector.
/// assert_eq!(out[..4], [0x0c, 0x60, 0xc8, 0x0f]);
/// ```
// Not API, hidden from the docs: see `pbkdf2_sha256`.
#[doc(hidden)]
pub fn pbkdf2_sha1(password: &[u8], salt: &[u8], iterations: NonZeroU32, out: &mut [u8]) {
    derive::<hmac_sha1::Keys>(password, salt, iterations, out);
}

/// HMAC's two chaining states for one key (RFC 2104 §2), and PBKDF2's
/// chain on them, for one digest.
trait HmacKeys: Sized {
    /// The digest's output size, PBKDF2's `hLen`, in bytes.
    const LEN: usize;

    /// The states after the blocks `K ⊕ ipad` and `K ⊕ opad`.
    fn new(key: &[u8]) -> Self;

    /// The first `out.len()` bytes (at most [`Self::LEN`]) of
    /// `T_i = U_1 ⊕ U_2 ⊕ … ⊕ U_c` (RFC 8018 §5.2 step 3), with `self` the
    /// states of `password`.
    fn t(&self, password: &[u8], salt: &[u8], i: u32, c: NonZeroU32, out: &mut [u8]);
}

/// PBKDF2 (RFC 8018 §5.2) on `K`'s digest, filling all of `out`.
fn derive<K: HmacKeys>(password: &[u8], salt: &[u8], iterations: NonZeroU32, out: &mut [u8]) {
    assert!(
        u32::try_from(out.len().div_ceil(K::LEN)).is_ok(),
        "PBKDF2 derived key too long (RFC 8018 §5.2 step 1)"
    );
    let keys = K::new(password);
    // RFC 8018 §5.2 step 3: T_i for i = 1, 2, …, INT(i) a 4-byte big-endian
    // counter; the assert above keeps every i within u32.
    for (chunk, i) in out.chunks_mut(K::LEN).zip(1..=u32::MAX) {
        keys.t(password, salt, i, iterations, chunk);
    }
}

/// HMAC's key block `K ⊕ ipad` (RFC 2104 §2): a key longer than the block
/// is hashed first, and every key is zero-padded to the block size.
fn ipad_block<D: sha2::Digest, const B: usize>(key: &[u8]) -> [u8; B] {
    let mut block = [0u8; B];
    if key.len() > B {
        let mut digest = D::digest(key);
        block
            .iter_mut()
            .zip(digest.iter())
            .for_each(|(b, d)| *b = *d);
        digest.as_mut_slice().zeroize();
    } else {
        block.iter_mut().zip(key).for_each(|(b, k)| *b = *k);
    }
    for b in &mut block {
        *b ^= 0x36;
    }
    block
}

/// Turns `K ⊕ ipad` into `K ⊕ opad`: (K ⊕ ipad) ⊕ (0x36 ⊕ 0x5c).
fn ipad_to_opad(block: &mut [u8]) {
    for b in block {
        *b ^= 0x36 ^ 0x5c;
    }
}

/// Four 32-bit state words as the 16 bytes of a message block they make:
/// each word big-endian (FIPS 180-4 §3.1, §6.1.2 and §6.2.2 step 4).
///
/// The swap goes through 16-bit lanes (swap the bytes of each lane, then
/// the two lanes of each word), which the compiler writes for a baseline
/// `x86_64` in five SSE2 instructions and a single 16-byte store; its own
/// four-lane byte swap without SSSE3 takes eight, three more on the chain.
/// With SSSE3 it becomes one `pshufb`.
#[inline(always)]
fn be_words32(words: &[u32; 4]) -> [u8; 16] {
    let mut lanes = [0u16; 8];
    for (pair, word) in lanes.as_chunks_mut::<2>().0.iter_mut().zip(words) {
        let [b0, b1, b2, b3] = word.to_le_bytes();
        *pair = [u16::from_le_bytes([b0, b1]), u16::from_le_bytes([b2, b3])];
    }
    let swapped: [u16; 8] = core::array::from_fn(|k| lanes[k ^ 1].rotate_left(8));
    let mut bytes = [0u8; 16];
    for (out, lane) in bytes.as_chunks_mut::<2>().0.iter_mut().zip(&swapped) {
        *out = lane.to_le_bytes();
    }
    bytes
}
