//! `ApiKeys::verify` on a `MemoryStore` holding a few keys in every state,
//! in a tokio current-thread runtime, with a `ManualClock` that stands
//! still once the keys are made. Two services share the store, one with
//! plain and one with keyed digests, and keys are made by both: each
//! verifies every key. Two modes:
//!
//! - an arbitrary string, and the same string with its checksum made
//!   right (so that it reaches the store);
//! - one of the keys' exact strings, then a sequence of edits to it
//!   (a character replaced, flipped, removed or inserted; a truncation;
//!   another key's id, secret or prefix spliced in; the checksum made
//!   right), verified after each edit.
//!
//! The oracle: `verify` accepts a string only if it is exactly a live
//! secret (the current secret of a live key, or the secret a roll replaced
//! while its overlap lasts), and then the proof is that key's; the exact
//! secret of a revoked, disabled or expired key, or one rolled out, is
//! refused for that reason; anything else is refused as a malformed token
//! or an unknown key.
#![no_main]

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use keyward::clock::ManualClock;
use keyward::store::Store;
use keyward::token::{CHECKSUM_LEN, ID_LEN, SECRET_LEN};
use keyward::{ApiKeyError, ApiKeyVerified, ApiKeys, Error, KeySpec, Keyward, MemoryStore};
use keyward_fuzz::NOW;
use libfuzzer_sys::fuzz_target;

/// The base62 alphabet of tokens, in the order of the digits' values.
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Everything after the prefix: `_`, id, `_`, secret, checksum.
const FIXED_LEN: usize = 1 + ID_LEN + 1 + SECRET_LEN + CHECKSUM_LEN;
/// The most edits one input makes.
const MAX_EDITS: usize = 32;
const DAY: u64 = 86_400;

static RT: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
});

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| RT.block_on(Fixture::new()));

/// What verifying one exact key string must give.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    /// Accepted, with this proof.
    Live(Proof),
    /// Refused for this reason.
    Refused(ApiKeyError),
}

/// The parts of an [`ApiKeyVerified`] the oracle checks.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Proof {
    id: String,
    owner: String,
    scopes: Vec<String>,
    expires_at: Option<u64>,
    rolled_until: Option<u64>,
}

impl Proof {
    fn of(v: &ApiKeyVerified) -> Self {
        Self {
            id: v.id().to_owned(),
            owner: v.owner().to_owned(),
            scopes: v.scopes().map(str::to_owned).collect(),
            expires_at: v.expires_at(),
            rolled_until: v.rolled_until(),
        }
    }
}

struct Fixture {
    /// Plain digests, then keyed digests, over one store.
    services: [Keyward; 2],
    /// Every key string ever minted, with what verifying it must give.
    expect: BTreeMap<String, Expect>,
    /// The same strings, in a fixed order, for the structured mode.
    keys: Vec<String>,
}

impl Fixture {
    async fn new() -> Self {
        let clock = ManualClock::new(NOW);
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
        let build = |keyed: bool| {
            let builder = Keyward::builder()
                .keys(keyward_fuzz::keyring())
                .shared_store(Arc::clone(&store))
                .clock(Arc::new(clock.clone()));
            let builder = if keyed {
                builder.keyed_token_digests()
            } else {
                builder
            };
            builder.build_partial().expect("the fuzz Keyward builds")
        };
        let services = [build(false), build(true)];
        let plain = services[0].api_keys().expect("api keys");
        let keyed = services[1].api_keys().expect("api keys");
        let mut fx = Fixture {
            expect: BTreeMap::new(),
            keys: Vec::new(),
            services: services.clone(),
        };
        let rw = || vec!["repo:read".to_owned(), "repo:write".to_owned()];

        // Live, no expiry.
        let spec = KeySpec::named("ci").scope("repo:read").scope("repo:write");
        let live = plain.create("user-1", spec).await.expect("create");
        let live_id = live.id().to_owned();
        // Live, keyed, expires in a year.
        let spec = KeySpec::named("deploy")
            .prefix("kw_live")
            .scope("deploy")
            .expires_in(Duration::from_secs(365 * DAY));
        let expiring = keyed.create("user-1", spec).await.expect("create");
        let expiring_id = expiring.id().to_owned();
        // Rolled once with a long overlap: both secrets live.
        let rolled = plain
            .create("user-2", KeySpec::named("rolled").scope("read"))
            .await
            .expect("create");
        let rolled_id = rolled.id().to_owned();
        // Keyed, rolled twice: the first secret is two rolls old.
        let twice = keyed
            .create("user-2", KeySpec::named("twice").prefix("kw_test_2"))
            .await
            .expect("create");
        let twice_id = twice.id().to_owned();
        // Rolled with a one-minute overlap, an hour ago.
        let rolled_out = plain
            .create("user-3", KeySpec::named("rolled out"))
            .await
            .expect("create");
        let rolled_out_id = rolled_out.id().to_owned();
        let rolled_out_new = plain
            .roll(&rolled_out_id, Duration::from_secs(60))
            .await
            .expect("roll");
        // Keyed, rolled with a long overlap, then revoked.
        let revoked = keyed
            .create("user-3", KeySpec::named("revoked").scope("admin"))
            .await
            .expect("create");
        let revoked_id = revoked.id().to_owned();
        // Disabled.
        let disabled = plain
            .create("user-4", KeySpec::named("disabled").prefix("a"))
            .await
            .expect("create");
        let disabled_id = disabled.id().to_owned();
        // Keyed, expired an hour ago.
        let spec = KeySpec::named("short").expires_in(Duration::from_secs(60));
        let expired = keyed.create("user-4", spec).await.expect("create");

        clock.advance(3_600);
        let now = NOW + 3_600;
        let rolled_new = plain
            .roll(&rolled_id, Duration::from_secs(30 * DAY))
            .await
            .expect("roll");
        assert_eq!(rolled_new.previous_valid_until(), now + 30 * DAY);
        let twice_1 = keyed
            .roll(&twice_id, Duration::from_secs(10 * DAY))
            .await
            .expect("roll");
        let twice_2 = keyed
            .roll(&twice_id, Duration::from_secs(10 * DAY))
            .await
            .expect("roll");
        let revoked_new = keyed
            .roll(&revoked_id, Duration::from_secs(30 * DAY))
            .await
            .expect("roll");
        keyed.revoke(&revoked_id).await.expect("revoke");
        plain.disable(&disabled_id).await.expect("disable");

        let proof = |id: &str, owner: &str, scopes: Vec<String>| Proof {
            id: id.to_owned(),
            owner: owner.to_owned(),
            scopes,
            expires_at: None,
            rolled_until: None,
        };
        let s = |t: &keyward::OpaqueToken| t.unprotected_as_str().to_owned();
        fx.add(s(live.key()), Expect::Live(proof(&live_id, "user-1", rw())));
        fx.add(
            s(expiring.key()),
            Expect::Live(Proof {
                expires_at: Some(NOW + 365 * DAY),
                ..proof(&expiring_id, "user-1", vec!["deploy".to_owned()])
            }),
        );
        let read = vec!["read".to_owned()];
        fx.add(
            s(rolled.key()),
            Expect::Live(Proof {
                rolled_until: Some(now + 30 * DAY),
                ..proof(&rolled_id, "user-2", read.clone())
            }),
        );
        fx.add(
            s(rolled_new.key()),
            Expect::Live(proof(&rolled_id, "user-2", read)),
        );
        fx.add(s(twice.key()), Expect::Refused(ApiKeyError::Unknown));
        fx.add(
            s(twice_1.key()),
            Expect::Live(Proof {
                // A roll during an overlap ends the older secret, not this one.
                rolled_until: Some(twice_2.previous_valid_until()),
                ..proof(&twice_id, "user-2", Vec::new())
            }),
        );
        fx.add(
            s(twice_2.key()),
            Expect::Live(proof(&twice_id, "user-2", Vec::new())),
        );
        fx.add(s(rolled_out.key()), Expect::Refused(ApiKeyError::Expired));
        fx.add(
            s(rolled_out_new.key()),
            Expect::Live(proof(&rolled_out_id, "user-3", Vec::new())),
        );
        fx.add(s(revoked.key()), Expect::Refused(ApiKeyError::Revoked));
        fx.add(s(revoked_new.key()), Expect::Refused(ApiKeyError::Revoked));
        fx.add(s(disabled.key()), Expect::Refused(ApiKeyError::Disabled));
        fx.add(s(expired.key()), Expect::Refused(ApiKeyError::Expired));

        // The fixture is what it claims, and `reseal` computes the same
        // checksums keyward does.
        for key in fx.keys.clone() {
            let mut resealed = key.clone().into_bytes();
            reseal(&mut resealed);
            assert_eq!(resealed, key.as_bytes(), "reseal disagrees with keyward");
            fx.check(&key).await;
        }
        fx
    }

    fn add(&mut self, key: String, expect: Expect) {
        assert!(
            self.expect.insert(key.clone(), expect).is_none(),
            "a key was minted twice"
        );
        self.keys.push(key);
    }

    /// Verifies `presented` with both services and holds the outcome to
    /// the oracle.
    async fn check(&self, presented: &str) {
        for kw in &self.services {
            let keys: &ApiKeys = kw.api_keys().expect("api keys");
            let got = keys.verify(presented).await;
            match (self.expect.get(presented), got) {
                (Some(Expect::Live(want)), Ok(v)) => {
                    assert_eq!(&Proof::of(&v), want, "the proof is not the key's");
                }
                (Some(Expect::Live(want)), Err(e)) => {
                    panic!("the live key {} was refused: {e:?}", want.id)
                }
                (Some(Expect::Refused(want)), Err(Error::ApiKey(e))) => {
                    assert_eq!(&e, want, "refused for the wrong reason");
                }
                (Some(Expect::Refused(want)), other) => {
                    panic!("expected {want:?}, got {other:?}")
                }
                (None, Ok(v)) => panic!(
                    "accepted a string that is no live secret, as key {} of {}",
                    v.id(),
                    v.owner()
                ),
                (None, Err(Error::Token(_) | Error::ApiKey(ApiKeyError::Unknown))) => {}
                (None, Err(e)) => panic!("a string no key has was refused as {e:?}"),
            }
        }
    }
}

/// CRC-32 (IEEE 802.3: reflected polynomial 0xEDB88320, initial value and
/// final XOR all ones), bit by bit.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

/// Rewrites the last [`CHECKSUM_LEN`] bytes as the checksum of the bytes
/// before them, so that an edited token passes the offline check.
fn reseal(s: &mut [u8]) {
    let Some(body_len) = s.len().checked_sub(CHECKSUM_LEN) else {
        return;
    };
    let (body, sum) = s.split_at_mut(body_len);
    let mut v = crc32(body);
    for slot in sum.iter_mut().rev() {
        *slot = BASE62[usize::try_from(v % 62).expect("small")];
        v /= 62;
    }
}

/// The range of the id in a token of `len` bytes, if it is long enough.
fn id_range(len: usize) -> Option<std::ops::Range<usize>> {
    let start = len.checked_sub(FIXED_LEN - 1)?;
    Some(start..start + ID_LEN)
}

/// The range of the secret in a token of `len` bytes.
fn secret_range(len: usize) -> Option<std::ops::Range<usize>> {
    let start = len.checked_sub(SECRET_LEN + CHECKSUM_LEN)?;
    Some(start..start + SECRET_LEN)
}

/// Splices `other[range(other)]` into `s[range(s)]`, then reseals.
fn splice(s: &mut Vec<u8>, other: &[u8], range: fn(usize) -> Option<std::ops::Range<usize>>) {
    let (Some(to), Some(from)) = (range(s.len()), range(other.len())) else {
        return;
    };
    s.splice(to, other[from].iter().copied());
    reseal(s);
}

/// Applies edit `op` with arguments `a` and `b`.
fn edit(s: &mut Vec<u8>, keys: &[String], op: u8, a: u8, b: u8) {
    let at = |len: usize| usize::from(a) % len.max(1);
    let other = keys[usize::from(b) % keys.len()].as_bytes();
    match op % 12 {
        0 if !s.is_empty() => {
            let i = at(s.len());
            s[i] = BASE62[usize::from(b) % 62];
        }
        1 if !s.is_empty() => {
            let i = at(s.len());
            s[i] ^= b;
        }
        2 => s.truncate(usize::from(a) % (s.len() + 1)),
        3 if !s.is_empty() => {
            s.remove(at(s.len()));
        }
        4 => s.insert(usize::from(a) % (s.len() + 1), b),
        5 => reseal(s),
        // This token's prefix and secret under another key's id.
        6 => splice(s, other, id_range),
        // Another key's secret under this token's id.
        7 => splice(s, other, secret_range),
        // Another key's prefix.
        8 => {
            if let (Some(here), Some(there)) = (
                s.len().checked_sub(FIXED_LEN),
                other.len().checked_sub(FIXED_LEN),
            ) {
                s.splice(..here, other[..there].iter().copied());
                reseal(s);
            }
        }
        9 if !s.is_empty() => {
            let i = at(s.len());
            s[i] = if s[i].is_ascii_lowercase() {
                s[i].to_ascii_uppercase()
            } else {
                s[i].to_ascii_lowercase()
            };
            if b & 1 == 1 {
                reseal(s);
            }
        }
        10 => {
            if b & 1 == 0 {
                s.extend_from_slice(other);
            } else {
                s.splice(..0, other.iter().copied());
            }
        }
        // Start again from another key.
        11 => *s = other.to_vec(),
        _ => {}
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let fx = &*FIXTURE;
    RT.block_on(async {
        if mode & 1 == 0 {
            let Ok(presented) = std::str::from_utf8(rest) else {
                return;
            };
            fx.check(presented).await;
            let mut resealed = rest.to_vec();
            reseal(&mut resealed);
            if let Ok(resealed) = std::str::from_utf8(&resealed) {
                fx.check(resealed).await;
            }
            return;
        }
        // [key][op a b]...
        let Some((&key, ops)) = rest.split_first() else {
            return;
        };
        let mut s = fx.keys[usize::from(key) % fx.keys.len()]
            .clone()
            .into_bytes();
        if let Ok(presented) = std::str::from_utf8(&s) {
            fx.check(presented).await;
        }
        for op in ops.chunks(3).take(MAX_EDITS) {
            let [op, a, b] = [0, 1, 2].map(|i| op.get(i).copied().unwrap_or(0));
            edit(&mut s, &fx.keys, op, a, b);
            if let Ok(presented) = std::str::from_utf8(&s) {
                fx.check(presented).await;
            }
        }
    });
});
