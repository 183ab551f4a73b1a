//! The PBKDF2 core (RFC 8018 §5.2).
//!
//! Every password path in keyward ends here: the PHC scheme calls
//! [`pbkdf2_sha256`], and the other digests go through [`pbkdf2_sha512`] and
//! [`pbkdf2_sha1`]. Keeping one entry point per digest means one place to
//! verify against the published vectors, and one place to make fast.
//!
//! [`pbkdf2_sha256`], the cost of every new hash and every login, runs on
//! sha2's block-level API: PBKDF2-HMAC-SHA256 with a 32-byte output is one
//! serial chain of two SHA-256 compressions per iteration. This core adds
//! to that chain only what the block API makes necessary: each digest is
//! read back from the state, byte-swapped and written into the next block
//! (`benches/pbkdf2.rs` measures it against the bare chain). SHA-1 and
//! SHA-512, which only imported hashes use, go through the generic `pbkdf2`
//! crate.

use std::num::NonZeroU32;

use sha2::Digest as _;
use sha2::Sha256;
use sha2::block_api::{Sha256VarCore, compress256};
use sha2::digest::block_api::{CtOutWrapper, UpdateCore};
use sha2::digest::common::hazmat::SerializableState;
use sha2::digest::consts::U32;
use zeroize::Zeroize;

/// SHA-256's block-level core, as inside `sha2::Sha256`.
type Sha256Core = CtOutWrapper<Sha256VarCore, U32>;

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
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha512 => 64,
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
/// `tests/password.rs` checks it against the `pbkdf2` crate, RFC 7914 and
/// Wycheproof.
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
pub fn pbkdf2_sha256(password: &[u8], salt: &[u8], iterations: NonZeroU32, out: &mut [u8]) {
    assert!(
        u32::try_from(out.len().div_ceil(SHA256_LEN)).is_ok(),
        "PBKDF2 derived key too long (RFC 8018 §5.2 step 1)"
    );
    let keys = HmacSha256States::new(password);
    // RFC 8018 §5.2 step 3: T_i for i = 1, 2, …, INT(i) a 4-byte big-endian
    // counter; the assert above keeps every i within u32.
    for (chunk, i) in out.chunks_mut(SHA256_LEN).zip(1..=u32::MAX) {
        let mut t = keys.block(password, salt, i, iterations);
        chunk.copy_from_slice(&t[..chunk.len()]);
        t.zeroize();
    }
}

/// SHA-256's output and HMAC-SHA256's `hLen`, in bytes.
const SHA256_LEN: usize = 32;

/// SHA-256's block size, HMAC's `B` (RFC 2104 §2), in bytes.
const SHA256_BLOCK: usize = 64;

/// A SHA-256 message block, aligned to a cache line so that no load or
/// store of it is split across two lines.
#[repr(C, align(64))]
struct Block([u8; SHA256_BLOCK]);

impl Block {
    /// The one block SHA-256 compresses for an HMAC-SHA256 message of
    /// exactly 32 bytes (a U value, or the inner digest in the outer hash),
    /// after the 64-byte key block: the message (zeros here, until it is
    /// written), the 0x80 terminator, zeros, and the 64-bit big-endian bit
    /// length (FIPS 180-4 §5.1.1) of key block plus message,
    /// (64 + 32) × 8 = 768 = 0x0300.
    fn padded() -> Self {
        let mut block = [0u8; SHA256_BLOCK];
        block[SHA256_LEN] = 0x80;
        block[SHA256_BLOCK - 2] = 0x03;
        Self(block)
    }
}

/// A SHA-256 chaining state, aligned like [`Block`].
#[repr(C, align(32))]
#[derive(Clone, Copy)]
struct State([u32; 8]);

/// HMAC-SHA256's two chaining states for one key (RFC 2104 §2): SHA-256
/// after the block `K ⊕ ipad`, and after `K ⊕ opad`. Computing them once
/// takes two compressions off every one of PBKDF2's HMAC calls.
struct HmacSha256States {
    inner: State,
    outer: State,
}

impl HmacSha256States {
    fn new(key: &[u8]) -> Self {
        // RFC 2104 §2: a key longer than the block is hashed first; every key
        // is then zero-padded to the block size.
        let mut block = [0u8; SHA256_BLOCK];
        if key.len() > SHA256_BLOCK {
            let mut digest: [u8; SHA256_LEN] = Sha256::digest(key).into();
            block[..SHA256_LEN].copy_from_slice(&digest);
            digest.zeroize();
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        for b in &mut block {
            *b ^= 0x36;
        }
        let inner = state_after(&block);
        // (K ⊕ ipad) ⊕ (0x36 ⊕ 0x5c) = K ⊕ opad.
        for b in &mut block {
            *b ^= 0x36 ^ 0x5c;
        }
        let outer = state_after(&block);
        block.zeroize();
        Self { inner, outer }
    }

    /// T_i = U_1 ⊕ U_2 ⊕ … ⊕ U_c (RFC 8018 §5.2 step 3).
    fn block(&self, password: &[u8], salt: &[u8], i: u32, c: NonZeroU32) -> [u8; SHA256_LEN] {
        // U_1 = PRF(P, S || INT(i)): the message is of any length, so it goes
        // through the streaming HMAC.
        let mut u = crate::mac::hmac_sha256(password, &[salt, &i.to_be_bytes()]);
        let mut block = Block::padded();
        block.0[..SHA256_LEN].copy_from_slice(&u);
        // T is kept as the XOR of the U values' bytes, eight at a time.
        let mut t = [0u64; 4];
        for (word, bytes) in t.iter_mut().zip(u.as_chunks::<8>().0) {
            *word = u64::from_ne_bytes(*bytes);
        }
        u.zeroize();

        let mut state = State([0; 8]);
        self.chain(c, &mut state, &mut block, &mut t);

        let mut out = [0u8; SHA256_LEN];
        for (bytes, word) in out.as_chunks_mut::<8>().0.iter_mut().zip(&t) {
            *bytes = word.to_ne_bytes();
        }
        state.0.zeroize();
        block.0.zeroize();
        t.zeroize();
        out
    }

    /// U_j = PRF(P, U_{j-1}) for j = 2..=c, each XORed into `t`: the inner
    /// hash, then the outer hash of its digest. Both messages are 32 bytes
    /// after a key block, so one pre-padded block serves both, and only its
    /// first 32 bytes change. No finalisation, no allocation: two
    /// compressions per iteration, and between them a byte swap.
    ///
    /// Every buffer is borrowed and the function is kept out of line, so
    /// the arrays stay whole in memory. The callers zeroize them element by
    /// element; once this loop was inlined beside that, the optimiser split
    /// the arrays into scalars and copied the state word by word, and each
    /// compression's 128-bit loads then waited on four 32-bit stores
    /// (about 25% slower at 600,000 iterations).
    #[inline(never)]
    fn chain(&self, c: NonZeroU32, state: &mut State, block: &mut Block, t: &mut [u64; 4]) {
        for _ in 1..c.get() {
            *state = self.inner;
            compress256(&mut state.0, core::slice::from_ref(&block.0));
            put_be(state, block);
            *state = self.outer;
            compress256(&mut state.0, core::slice::from_ref(&block.0));
            put_be(state, block);
            for (t, u) in t.iter_mut().zip(block.0.as_chunks::<8>().0) {
                *t ^= u64::from_ne_bytes(*u);
            }
        }
    }
}

impl Drop for HmacSha256States {
    fn drop(&mut self) {
        // The states are as good as the password to anyone testing guesses.
        self.inner.0.zeroize();
        self.outer.0.zeroize();
    }
}

/// The SHA-256 chaining state after compressing one block from the initial
/// hash value. The initial value comes from sha2 itself: a fresh block-level
/// core, fed the block, then read back through its serialized state (the
/// eight state words, little-endian, then the block count).
fn state_after(block: &[u8; SHA256_BLOCK]) -> State {
    let mut core = Sha256Core::default();
    core.update_blocks(core::slice::from_ref(&(*block).into()));
    let mut serialized = core.serialize();
    let mut state = State([0; 8]);
    for (word, bytes) in state.0.iter_mut().zip(serialized.as_chunks::<4>().0) {
        *word = u32::from_le_bytes(*bytes);
    }
    serialized.as_mut_slice().zeroize();
    state
}

/// Writes the state words big-endian into the first 32 bytes of `block`:
/// the digest SHA-256 would output (FIPS 180-4 §6.2.2 step 4), in place.
#[inline(always)]
fn put_be(state: &State, block: &mut Block) {
    for (bytes, word) in block.0.as_chunks_mut::<4>().0.iter_mut().zip(&state.0) {
        *bytes = word.to_be_bytes();
    }
}

/// PBKDF2-HMAC-SHA512 (RFC 8018 §5.2), filling all of `out`.
///
/// The single PBKDF2-HMAC-SHA512 implementation: `pbkdf2-sha512` PHC
/// strings and the SHA-512 legacy schemes (Werkzeug, passlib, ASP.NET
/// Identity v3) all derive here. Exposed, like [`pbkdf2_sha256`], for
/// known-answer tests; it never compares anything.
///
/// ```
/// use std::num::NonZeroU32;
/// let mut out = [0u8; 64];
/// let one = NonZeroU32::new(1).expect("non-zero");
/// keyward::password::pbkdf2_sha512(b"password", b"salt", one, &mut out);
/// assert_eq!(out[..4], [0x86, 0x7f, 0x70, 0xcf]);
/// ```
pub fn pbkdf2_sha512(password: &[u8], salt: &[u8], iterations: NonZeroU32, out: &mut [u8]) {
    pbkdf2::pbkdf2_hmac::<sha2::Sha512>(password, salt, iterations.get(), out);
}

/// PBKDF2-HMAC-SHA1 (RFC 8018 §5.2), filling all of `out`.
///
/// Used only to verify imported hashes (Django, Werkzeug, passlib and
/// ASP.NET Identity SHA-1 variants), which are always upgraded to
/// PBKDF2-HMAC-SHA256 on a correct login; keyward never writes a SHA-1
/// hash. Exposed, like [`pbkdf2_sha256`], for known-answer tests; it never
/// compares anything.
///
/// ```
/// use std::num::NonZeroU32;
/// let mut out = [0u8; 20];
/// let one = NonZeroU32::new(1).expect("non-zero");
/// keyward::password::pbkdf2_sha1(b"password", b"salt", one, &mut out);
/// // RFC 6070 §2, first test vector.
/// assert_eq!(out[..4], [0x0c, 0x60, 0xc8, 0x0f]);
/// ```
pub fn pbkdf2_sha1(password: &[u8], salt: &[u8], iterations: NonZeroU32, out: &mut [u8]) {
    pbkdf2::pbkdf2_hmac::<sha1::Sha1>(password, salt, iterations.get(), out);
}
