//! Fixtures shared by the fuzz targets: a fixed key ring, a fixed clock and
//! a "random" source that replays fuzzer bytes. Nothing here is secret: the
//! keys are public test keys, used only inside the fuzzer.

use std::sync::Arc;

use keyward::clock::ManualClock;
use keyward::{Complete, KeyRing, Keyward, MemoryStore};

/// The time every target runs at: 2027-01-15T08:00:00Z.
pub const NOW: u64 = 1_800_000_000;
/// The issuer and audience of the fixed `Keyward`.
pub const ISSUER: &str = "https://auth.example.com";
/// See [`ISSUER`].
pub const AUDIENCE: &str = "api";
/// The kid of the fixed HS256 key.
pub const KID: &str = "fuzz-hs256";
/// The fixed HS256 key: bytes 32..64, which are printable ASCII.
pub const HS256_KEY: [u8; 32] = *b" !\"#$%&'()*+,-./0123456789:;<=>?";

/// A key ring with a fixed MAC key (bytes 0..32), a fixed pepper `p1`
/// (bytes 64..96) and one fixed HS256 key ([`HS256_KEY`]).
pub const KEYRING_JSON: &str = r#"{
  "version": 1,
  "mac_key": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
  "peppers": [{"id": "p1", "key": "QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8="}],
  "current_pepper": null,
  "jwt_keys": [{"kid": "fuzz-hs256", "alg": "HS256", "key": "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8="}],
  "current_jwt": "fuzz-hs256"
}"#;

/// The fixed key ring.
pub fn keyring() -> KeyRing {
    KeyRing::from_json(KEYRING_JSON).expect("the fixed key ring parses")
}

/// A `Keyward` over the fixed key ring, a fresh `MemoryStore` and `clock`.
pub fn keyward(clock: &ManualClock) -> Keyward<Complete> {
    Keyward::builder()
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .keys(keyring())
        .store(MemoryStore::new())
        .clock(Arc::new(clock.clone()))
        .build()
        .expect("the fixed Keyward builds")
}

/// A random-number source that hands out the fuzzer's bytes, then fails.
pub struct ByteRng<'a>(pub &'a [u8]);

/// [`ByteRng`] ran out of bytes.
#[derive(Debug)]
pub struct Exhausted;

impl std::fmt::Display for Exhausted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("fuzz input exhausted")
    }
}

impl std::error::Error for Exhausted {}

impl rand_core::TryRng for ByteRng<'_> {
    type Error = Exhausted;

    fn try_next_u32(&mut self) -> Result<u32, Exhausted> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Exhausted> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Exhausted> {
        let (head, tail) = self.0.split_at_checked(dst.len()).ok_or(Exhausted)?;
        dst.copy_from_slice(head);
        self.0 = tail;
        Ok(())
    }
}

impl rand_core::TryCryptoRng for ByteRng<'_> {}
