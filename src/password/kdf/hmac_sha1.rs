//! PBKDF2-HMAC-SHA1's core, on `sha1`'s block-level `compress`.

use std::num::NonZeroU32;

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha1::block_api::{Sha1Core, compress};
use sha1::digest::block_api::UpdateCore;
use sha1::digest::common::hazmat::SerializableState;
use zeroize::Zeroize;

use super::{HmacKeys, be_words32, ipad_block, ipad_to_opad};

/// SHA-1's output and HMAC-SHA1's `hLen`, in bytes.
const LEN: usize = 20;

/// SHA-1's block size, HMAC's `B` (RFC 2104 §2), in bytes.
const BLOCK: usize = 64;

/// A SHA-1 message block, aligned to a cache line.
#[repr(C, align(64))]
struct Block([u8; BLOCK]);

impl Block {
    /// The one block SHA-1 compresses for an HMAC-SHA1 message of exactly
    /// 20 bytes, after the 64-byte key block: the message (zeros until it
    /// is written), the 0x80 terminator, zeros, and the 64-bit big-endian
    /// bit length (FIPS 180-4 §5.1.1) of key block plus message,
    /// (64 + 20) × 8 = 672 = 0x02a0.
    fn padded() -> Self {
        let mut block = [0u8; BLOCK];
        block[LEN] = 0x80;
        block[BLOCK - 2] = 0x02;
        block[BLOCK - 1] = 0xa0;
        Self(block)
    }
}

/// A SHA-1 chaining state, aligned so that its first four words are one
/// 16-byte load.
#[repr(C, align(32))]
#[derive(Clone, Copy)]
struct State([u32; 5]);

/// The second 16 bytes of [`Block`], as four native-endian words: the
/// fifth digest word, then the terminator and zeros.
///
/// They are written as `(e & MASK) | PAD` with the digest word `e`
/// (big-endian) repeated in every lane, and with both constants read
/// through [`black_box`](core::hint::black_box), so that the compiler does
/// not see their values: it then builds the 16 bytes in one register and
/// writes them in one store. With the constants in view it writes the 16
/// bytes in several smaller stores, and the compression's 16-byte load of
/// them waits until they reach the cache (measured about 10% slower at
/// 1,000,000 iterations). The result does not depend on it: were
/// `black_box` to do nothing, the same bytes would be written by smaller
/// stores.
const MASK: [u32; 4] = [u32::MAX, 0, 0, 0];
/// See [`MASK`].
const PAD: [u32; 4] = [0, u32::from_ne_bytes([0x80, 0, 0, 0]), 0, 0];

/// HMAC-SHA1's two chaining states for one key: SHA-1 after the block
/// `K ⊕ ipad`, and after `K ⊕ opad`.
pub(super) struct Keys {
    inner: State,
    outer: State,
}

impl HmacKeys for Keys {
    const LEN: usize = LEN;

    fn new(key: &[u8]) -> Self {
        let mut block = ipad_block::<Sha1, BLOCK>(key);
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
            Hmac::<Sha1>::new_from_slice(password).expect("HMAC accepts keys of any length");
        mac.update(salt);
        mac.update(&i.to_be_bytes());
        let mut u = mac.finalize().into_bytes();
        let mut block = Block::padded();
        block.0[..LEN].copy_from_slice(&u);
        let mut t = State([0; 5]);
        for (word, bytes) in t.0.iter_mut().zip(u.as_chunks::<4>().0) {
            *word = u32::from_be_bytes(*bytes);
        }
        u.as_mut_slice().zeroize();

        let mut state = State([0; 5]);
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
    /// U_j = PRF(P, U_{j-1}) for j = 2..=c, each XORed into `t`: two
    /// compressions of `block` from the key states. Out of line, with
    /// borrowed buffers, for the reason given on the SHA-256 chain.
    #[inline(never)]
    fn chain(&self, c: NonZeroU32, state: &mut State, block: &mut Block, t: &mut State) {
        let tail = core::hint::black_box(&[MASK, PAD]);
        for _ in 1..c.get() {
            *state = self.inner;
            compress(&mut state.0, core::slice::from_ref(&block.0));
            put(state, tail, block);
            *state = self.outer;
            compress(&mut state.0, core::slice::from_ref(&block.0));
            put(state, tail, block);
            for (t, u) in t.0.iter_mut().zip(&state.0) {
                *t ^= u;
            }
        }
    }
}

/// Writes the digest in `state` into the first 32 bytes of `block`: the
/// first four words, then the fifth with the padding that follows it
/// (`tail`: [`MASK`] and [`PAD`]), each 16 bytes in one store.
#[inline(always)]
fn put(state: &State, tail: &[[u32; 4]; 2], block: &mut Block) {
    let (head, e) = state.0.as_chunks::<4>();
    let [mask, pad] = tail;
    let e = u32::from_ne_bytes(e[0].to_be_bytes());
    let tail: [u32; 4] = core::array::from_fn(|k| (e & mask[k]) | pad[k]);
    let halves = block.0.as_chunks_mut::<16>().0;
    halves[0] = be_words32(&head[0]);
    for (bytes, word) in halves[1].as_chunks_mut::<4>().0.iter_mut().zip(&tail) {
        *bytes = word.to_ne_bytes();
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        self.inner.0.zeroize();
        self.outer.0.zeroize();
    }
}

/// The SHA-1 chaining state after compressing one block from the initial
/// hash value, read back from `sha1`'s own core through its serialized
/// state (the five state words, little-endian, then the block count).
fn state_after(block: &[u8; BLOCK]) -> State {
    let mut core = Sha1Core::default();
    core.update_blocks(core::slice::from_ref(&(*block).into()));
    let mut serialized = core.serialize();
    let mut state = State([0; 5]);
    for (word, bytes) in state.0.iter_mut().zip(serialized.as_chunks::<4>().0) {
        *word = u32::from_le_bytes(*bytes);
    }
    serialized.as_mut_slice().zeroize();
    state
}
