//! PBKDF2-HMAC-SHA256's core, on sha2's `compress256`.

use std::num::NonZeroU32;

use sha2::Sha256;
use sha2::block_api::{Sha256VarCore, compress256};
use sha2::digest::block_api::{CtOutWrapper, UpdateCore};
use sha2::digest::common::hazmat::SerializableState;
use sha2::digest::consts::U32;
use zeroize::Zeroize;

use super::{HmacKeys, be_words32, ipad_block, ipad_to_opad};

/// SHA-256's block-level core, as inside `sha2::Sha256`.
type Core = CtOutWrapper<Sha256VarCore, U32>;

/// SHA-256's output and HMAC-SHA256's `hLen`, in bytes.
const LEN: usize = 32;

/// SHA-256's block size, HMAC's `B` (RFC 2104 §2), in bytes.
const BLOCK: usize = 64;

/// A SHA-256 message block, aligned to a cache line so that no load or
/// store of it is split across two lines.
#[repr(C, align(64))]
struct Block([u8; BLOCK]);

impl Block {
    /// The one block SHA-256 compresses for an HMAC-SHA256 message of
    /// exactly 32 bytes (a U value, or the inner digest in the outer hash),
    /// after the 64-byte key block: the message (zeros here, until it is
    /// written), the 0x80 terminator, zeros, and the 64-bit big-endian bit
    /// length (FIPS 180-4 §5.1.1) of key block plus message,
    /// (64 + 32) × 8 = 768 = 0x0300.
    fn padded() -> Self {
        let mut block = [0u8; BLOCK];
        block[LEN] = 0x80;
        block[BLOCK - 2] = 0x03;
        Self(block)
    }

    /// Writes the digest in `state` into the message, one 16-byte store
    /// per half.
    #[inline(always)]
    fn put(&mut self, state: &State) {
        let halves = self.0.as_chunks_mut::<16>().0;
        for (half, words) in halves.iter_mut().zip(state.0.as_chunks::<4>().0) {
            *half = be_words32(words);
        }
    }
}

/// A SHA-256 chaining state, aligned like [`Block`].
#[repr(C, align(32))]
#[derive(Clone, Copy)]
struct State([u32; 8]);

/// HMAC-SHA256's two chaining states for one key: SHA-256 after the block
/// `K ⊕ ipad`, and after `K ⊕ opad`.
pub(super) struct Keys {
    inner: State,
    outer: State,
}

impl HmacKeys for Keys {
    const LEN: usize = LEN;

    fn new(key: &[u8]) -> Self {
        let mut block = ipad_block::<Sha256, BLOCK>(key);
        let inner = state_after(&block);
        ipad_to_opad(&mut block);
        let outer = state_after(&block);
        block.zeroize();
        Self { inner, outer }
    }

    fn t(&self, password: &[u8], salt: &[u8], i: u32, c: NonZeroU32, out: &mut [u8]) {
        // U_1 = PRF(P, S || INT(i)): the message is of any length, so it goes
        // through the streaming HMAC.
        let mut u = crate::mac::hmac_sha256(password, &[salt, &i.to_be_bytes()]);
        let mut block = Block::padded();
        block.0[..LEN].copy_from_slice(&u);
        let mut t = State([0; 8]);
        for (word, bytes) in t.0.iter_mut().zip(u.as_chunks::<4>().0) {
            *word = u32::from_be_bytes(*bytes);
        }
        u.zeroize();

        let mut state = State([0; 8]);
        self.chain(c, &mut state, &mut block, &mut t);

        for (bytes, word) in out.chunks_mut(4).zip(&t.0) {
            bytes.copy_from_slice(&word.to_be_bytes()[..bytes.len()]);
        }
        state.0.zeroize();
        block.0.zeroize();
        t.0.zeroize();
    }
}

impl Keys {
    /// U_j = PRF(P, U_{j-1}) for j = 2..=c, each XORed into `t`: the inner
    /// hash, then the outer hash of its digest, each one compression of
    /// `block` from a key state.
    ///
    /// Every buffer is borrowed and the function is kept out of line, so
    /// the arrays stay whole in memory. The callers zeroize them element by
    /// element; once this loop was inlined beside that, the optimiser split
    /// the arrays into scalars and copied the state word by word, and each
    /// compression's 128-bit loads then waited on four 32-bit stores
    /// (about 25% slower at 600,000 iterations).
    #[inline(never)]
    fn chain(&self, c: NonZeroU32, state: &mut State, block: &mut Block, t: &mut State) {
        for _ in 1..c.get() {
            *state = self.inner;
            compress256(&mut state.0, core::slice::from_ref(&block.0));
            block.put(state);
            *state = self.outer;
            compress256(&mut state.0, core::slice::from_ref(&block.0));
            block.put(state);
            for (t, u) in t.0.iter_mut().zip(&state.0) {
                *t ^= u;
            }
        }
    }
}

impl Drop for Keys {
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
fn state_after(block: &[u8; BLOCK]) -> State {
    let mut core = Core::default();
    core.update_blocks(core::slice::from_ref(&(*block).into()));
    let mut serialized = core.serialize();
    let mut state = State([0; 8]);
    for (word, bytes) in state.0.iter_mut().zip(serialized.as_chunks::<4>().0) {
        *word = u32::from_le_bytes(*bytes);
    }
    serialized.as_mut_slice().zeroize();
    state
}
