//! PBKDF2-HMAC-SHA512's core, on sha2's `compress512`.

use std::num::NonZeroU32;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha512;
use sha2::block_api::{Sha512VarCore, compress512};
use sha2::digest::block_api::{CtOutWrapper, UpdateCore};
use sha2::digest::common::hazmat::SerializableState;
use sha2::digest::consts::U64;
use zeroize::Zeroize;

use super::{HmacKeys, ipad_block, ipad_to_opad};

/// SHA-512's block-level core, as inside `sha2::Sha512`.
type Core = CtOutWrapper<Sha512VarCore, U64>;

/// SHA-512's output and HMAC-SHA512's `hLen`, in bytes.
const LEN: usize = 64;

/// SHA-512's block size, HMAC's `B` (RFC 2104 §2), in bytes.
const BLOCK: usize = 128;

/// A SHA-512 message block, aligned to a cache line.
#[repr(C, align(64))]
struct Block([u8; BLOCK]);

impl Block {
    /// The one block SHA-512 compresses for an HMAC-SHA512 message of
    /// exactly 64 bytes, after the 128-byte key block: the message (zeros
    /// until it is written), the 0x80 terminator, zeros, and the 128-bit
    /// big-endian bit length (FIPS 180-4 §5.1.2) of key block plus message,
    /// (128 + 64) × 8 = 1536 = 0x0600.
    fn padded() -> Self {
        let mut block = [0u8; BLOCK];
        block[LEN] = 0x80;
        block[BLOCK - 2] = 0x06;
        Self(block)
    }

    /// Writes the digest in `state` into the message, each word big-endian
    /// in one 8-byte store. `compress512` writes the state word by word, so
    /// each word is read back with the load that matches its store; pairing
    /// two words into one 16-byte store would need a 16-byte read across
    /// two of those stores, which waits for them to reach the cache, and it
    /// measured about 4% slower.
    #[inline(always)]
    fn put(&mut self, state: &State) {
        for (bytes, word) in self.0.as_chunks_mut::<8>().0.iter_mut().zip(&state.0) {
            *bytes = word.to_be_bytes();
        }
    }
}

/// A SHA-512 chaining state, aligned like [`Block`].
#[repr(C, align(64))]
#[derive(Clone, Copy)]
struct State([u64; 8]);

/// HMAC-SHA512's two chaining states for one key: SHA-512 after the block
/// `K ⊕ ipad`, and after `K ⊕ opad`.
pub(super) struct Keys {
    inner: State,
    outer: State,
}

impl HmacKeys for Keys {
    const LEN: usize = LEN;

    fn new(key: &[u8]) -> Self {
        let mut block = ipad_block::<Sha512, BLOCK>(key);
        let inner = state_after(&block);
        ipad_to_opad(&mut block);
        let outer = state_after(&block);
        block.zeroize();
        Self { inner, outer }
    }

    fn t(&self, password: &[u8], salt: &[u8], i: u32, c: NonZeroU32, out: &mut [u8]) {
        // U_1 = PRF(P, S || INT(i)), through the streaming HMAC. RFC 2104
        // §2: HMAC takes keys of any length, so `new_from_slice` cannot fail.
        #[allow(clippy::expect_used, reason = "infallible for HMAC")]
        let mut mac =
            Hmac::<Sha512>::new_from_slice(password).expect("HMAC accepts keys of any length");
        mac.update(salt);
        mac.update(&i.to_be_bytes());
        let mut u = mac.finalize().into_bytes();
        let mut block = Block::padded();
        block.0[..LEN].copy_from_slice(&u);
        let mut t = State([0; 8]);
        for (word, bytes) in t.0.iter_mut().zip(u.as_chunks::<8>().0) {
            *word = u64::from_be_bytes(*bytes);
        }
        u.as_mut_slice().zeroize();

        let mut state = State([0; 8]);
        self.chain(c, &mut state, &mut block, &mut t);

        for (bytes, word) in out.chunks_mut(8).zip(&t.0) {
            bytes.copy_from_slice(&word.to_be_bytes()[..bytes.len()]);
        }
        state.0.zeroize();
        block.0.zeroize();
        t.0.zeroize();
    }
}

impl Keys {
    /// U_j = PRF(P, U_{j-1}) for j = 2..=c, each XORed into `t`: two
    /// compressions of `block` from the key states. Out of line, with
    /// borrowed buffers, for the reason given on the SHA-256 chain.
    #[inline(never)]
    fn chain(&self, c: NonZeroU32, state: &mut State, block: &mut Block, t: &mut State) {
        for _ in 1..c.get() {
            *state = self.inner;
            compress512(&mut state.0, core::slice::from_ref(&block.0));
            block.put(state);
            *state = self.outer;
            compress512(&mut state.0, core::slice::from_ref(&block.0));
            block.put(state);
            for (t, u) in t.0.iter_mut().zip(&state.0) {
                *t ^= u;
            }
        }
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        self.inner.0.zeroize();
        self.outer.0.zeroize();
    }
}

/// The SHA-512 chaining state after compressing one block from the initial
/// hash value, read back from sha2's own core through its serialized state
/// (the eight state words, little-endian, then the block count).
fn state_after(block: &[u8; BLOCK]) -> State {
    let mut core = Core::default();
    core.update_blocks(core::slice::from_ref(&(*block).into()));
    let mut serialized = core.serialize();
    let mut state = State([0; 8]);
    for (word, bytes) in state.0.iter_mut().zip(serialized.as_chunks::<8>().0) {
        *word = u64::from_le_bytes(*bytes);
    }
    serialized.as_mut_slice().zeroize();
    state
}
