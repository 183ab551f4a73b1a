//! The API-key rules one by one and as a property test against a model,
//! with a manual clock; the service over a `MemoryStore`, its round trips
//! counted.

#![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]
#![allow(clippy::arithmetic_side_effects, reason = "tests")]

use super::*;
use crate::clock::ManualClock;
use crate::store::MemoryStore;
use crate::store::testing::CountingStore;
use crate::{JwtAlg, KeyRing, Keyward};
use proptest::prelude::*;

const T0: u64 = 1_700_000_000;
const RETAIN: u64 = DEFAULT_RETENTION_SECS;

fn digest(n: u8) -> TokenDigest {
    TokenDigest::from_bytes([n; 32])
}

fn record(expires_at: Option<u64>) -> KeyRecord {
    KeyRecord {
        owner: "alice".into(),
        name: "ci".into(),
        prefix: "kw".into(),
        scopes: vec!["repo:read".into()],
        metadata: BTreeMap::new(),
        created_at: T0,
        expires_at,
        enabled: true,
        revoked_at: None,
        keyed: false,
        digest: digest(1),
        previous: None,
        last_used_at: None,
        audit_tag: None,
    }
}

fn entry(id: &str, expires_at: Option<u64>) -> IndexEntry {
    IndexEntry {
        id: id.into(),
        expires_at,
        revoked_until: None,
    }
}

// ---- The rules. ----

#[test]
fn verify_accepts_the_current_secret_and_nothing_else() {
    let r = record(None);
    assert_eq!(check(Some(&r), &digest(1), T0), Ok(Matched::Current));
    assert_eq!(check(Some(&r), &digest(2), T0), Err(ApiKeyError::Unknown));
    assert_eq!(check(None, &digest(1), T0), Err(ApiKeyError::Unknown));
}

#[test]
fn expiry_holds_at_its_boundary() {
    let r = record(Some(T0 + 100));
    assert_eq!(check(Some(&r), &digest(1), T0 + 99), Ok(Matched::Current));
    assert_eq!(
        check(Some(&r), &digest(1), T0 + 100),
        Err(ApiKeyError::Expired)
    );
    // A wrong secret learns nothing about the key.
    assert_eq!(
        check(Some(&r), &digest(9), T0 + 100),
        Err(ApiKeyError::Unknown)
    );
}

#[test]
fn revoked_and_disabled_are_told_only_to_the_holder() {
    let mut r = record(Some(T0 + 10));
    r.enabled = false;
    assert_eq!(check(Some(&r), &digest(1), T0), Err(ApiKeyError::Disabled));
    assert_eq!(check(Some(&r), &digest(2), T0), Err(ApiKeyError::Unknown));
    let r = decide_revoke(Some(r), T0).unwrap().unwrap();
    // Revoked outranks expired and disabled.
    assert_eq!(
        check(Some(&r), &digest(1), T0 + 50),
        Err(ApiKeyError::Revoked)
    );
    assert_eq!(check(Some(&r), &digest(2), T0), Err(ApiKeyError::Unknown));
}

#[test]
fn a_roll_keeps_the_old_secret_for_its_overlap_only() {
    let (r, until) = decide_roll(Some(record(None)), digest(2), 60, T0).unwrap();
    assert_eq!(until, T0 + 60);
    assert_eq!(r.digest, digest(2));
    // Inside the overlap both work; the old one says when it ends.
    assert_eq!(check(Some(&r), &digest(2), T0 + 59), Ok(Matched::Current));
    assert_eq!(
        check(Some(&r), &digest(1), T0 + 59),
        Ok(Matched::Previous(T0 + 60))
    );
    // After it, only the new one.
    assert_eq!(
        check(Some(&r), &digest(1), T0 + 60),
        Err(ApiKeyError::Expired)
    );
    assert_eq!(check(Some(&r), &digest(2), T0 + 60), Ok(Matched::Current));
}

#[test]
fn a_roll_inside_an_overlap_ends_the_older_secret() {
    let (r, _) = decide_roll(Some(record(None)), digest(2), 60, T0).unwrap();
    let (r, until) = decide_roll(Some(r), digest(3), 60, T0 + 10).unwrap();
    assert_eq!(until, T0 + 70);
    assert_eq!(
        check(Some(&r), &digest(1), T0 + 10),
        Err(ApiKeyError::Unknown)
    );
    assert_eq!(
        check(Some(&r), &digest(2), T0 + 10),
        Ok(Matched::Previous(T0 + 70))
    );
    assert_eq!(check(Some(&r), &digest(3), T0 + 10), Ok(Matched::Current));
}

#[test]
fn an_overlap_of_zero_ends_the_old_secret_at_once() {
    let (r, until) = decide_roll(Some(record(None)), digest(2), 0, T0).unwrap();
    assert_eq!(until, T0);
    assert_eq!(check(Some(&r), &digest(1), T0), Err(ApiKeyError::Expired));
}

#[test]
fn an_old_secret_never_outlives_the_key() {
    let (r, until) = decide_roll(Some(record(Some(T0 + 30))), digest(2), 3_600, T0).unwrap();
    assert_eq!(until, T0 + 30, "the overlap stops at expires_at");
    assert_eq!(r.expires_at, Some(T0 + 30), "a roll never extends a key");
    assert_eq!(
        check(Some(&r), &digest(1), T0 + 30),
        Err(ApiKeyError::Expired)
    );
    assert_eq!(
        check(Some(&r), &digest(2), T0 + 30),
        Err(ApiKeyError::Expired)
    );
}

#[test]
fn revoked_expired_and_unknown_keys_do_not_roll() {
    assert_eq!(
        decide_roll(None, digest(2), 0, T0),
        Err(ApiKeyError::Unknown)
    );
    assert_eq!(
        decide_roll(Some(record(Some(T0))), digest(2), 0, T0),
        Err(ApiKeyError::Expired)
    );
    let revoked = decide_revoke(Some(record(None)), T0).unwrap();
    assert_eq!(
        decide_roll(revoked, digest(2), 0, T0),
        Err(ApiKeyError::Revoked)
    );
}

#[test]
fn revoke_is_final_and_idempotent() {
    let r = decide_revoke(Some(record(None)), T0).unwrap().unwrap();
    assert_eq!(r.revoked_at, Some(T0));
    assert_eq!(decide_revoke(Some(r.clone()), T0 + 5), Ok(None));
    assert_eq!(decide_revoke(None, T0), Err(ApiKeyError::Unknown));
    assert_eq!(decide_enabled(Some(r), true), Err(ApiKeyError::Revoked));
}

#[test]
fn disable_and_enable_flip_the_flag_once() {
    let off = decide_enabled(Some(record(None)), false).unwrap().unwrap();
    assert!(!off.enabled);
    assert_eq!(decide_enabled(Some(off.clone()), false), Ok(None));
    let on = decide_enabled(Some(off), true).unwrap().unwrap();
    assert_eq!(check(Some(&on), &digest(1), T0), Ok(Matched::Current));
    assert_eq!(decide_enabled(None, true), Err(ApiKeyError::Unknown));
}

#[test]
fn the_owner_cap_counts_live_keys() {
    let index = OwnerIndex {
        keys: vec![entry("a", None), entry("b", Some(T0 + 10))],
        erasing: false,
    };
    // Two live keys and a cap of two: the index asks for the records.
    assert_eq!(
        decide_create(Some(index.clone()), entry("c", None), 2, RETAIN, T0),
        Ok(Room::AskRecords(vec!["a".into(), "b".into()]))
    );
    // Once b has expired, there is room.
    let Ok(Room::Yes(grown)) =
        decide_create(Some(index.clone()), entry("c", None), 2, RETAIN, T0 + 10)
    else {
        panic!("room expected");
    };
    assert_eq!(grown.keys.len(), 3, "an expired key stays listed");
    // Forgotten entries (expired longer than the retention) are dropped.
    let Ok(Room::Yes(pruned)) = decide_create(
        Some(index.clone()),
        entry("c", None),
        2,
        RETAIN,
        T0 + 10 + RETAIN,
    ) else {
        panic!("room expected");
    };
    assert_eq!(pruned.keys, vec![entry("a", None), entry("c", None)]);
    // With the records: a revoked key and a vanished one do not count. The
    // vanished one is dropped; the revoked one stays listed until its
    // record ends, so that an erasure finds it.
    let mut revoked = record(None);
    revoked.revoked_at = Some(T0);
    let exact = decide_create_exact(
        Some(index.clone()),
        &[Some(revoked), None],
        entry("c", None),
        2,
        RETAIN,
        T0,
    )
    .unwrap();
    let marked = IndexEntry {
        revoked_until: Some(T0 + RETAIN),
        ..entry("a", None)
    };
    assert_eq!(exact.keys, vec![marked.clone(), entry("c", None)]);
    // It counts as no live key, and goes once its record has ended.
    let Ok(Room::Yes(after)) = decide_create(Some(exact.clone()), entry("d", None), 2, RETAIN, T0)
    else {
        panic!("room expected");
    };
    assert_eq!(after.keys.len(), 3);
    let Ok(Room::Yes(later)) = decide_create(Some(exact), entry("d", None), 2, RETAIN, T0 + RETAIN)
    else {
        panic!("room expected");
    };
    assert!(later.keys.iter().all(|e| e.id != "a"));
    // Both live: refused.
    assert_eq!(
        decide_create_exact(
            Some(index),
            &[Some(record(None)), Some(record(Some(T0 + 10)))],
            entry("c", None),
            2,
            RETAIN,
            T0,
        ),
        Err(ApiKeyError::TooManyKeys { max: 2 })
    );
}

#[test]
fn a_full_index_sheds_only_entries_whose_record_is_gone() {
    let limit = usize::try_from(MAX_INDEX_LEN).unwrap();
    let mut keys: Vec<IndexEntry> = (0..limit - 2)
        .map(|i| entry(&i.to_string(), None))
        .collect();
    keys.push(entry("late", Some(T0 + 5)));
    keys.push(entry("early", Some(T0 + 1)));
    let full = OwnerIndex {
        keys,
        erasing: false,
    };
    // Expired, but their records are kept: an erasure must find them, so
    // the index has no room.
    assert_eq!(
        decide_create(
            Some(full.clone()),
            entry("new", None),
            MAX_INDEX_LEN,
            RETAIN,
            T0 + 10,
        ),
        Err(ApiKeyError::TooManyKeys { max: MAX_INDEX_LEN })
    );
    // Once the earlier one's record has ended, it makes room.
    let Ok(Room::Yes(index)) = decide_create(
        Some(full),
        entry("new", None),
        MAX_INDEX_LEN,
        RETAIN,
        T0 + 1 + RETAIN,
    ) else {
        panic!("room expected");
    };
    assert_eq!(index.keys.len(), limit);
    assert!(index.keys.iter().all(|e| e.id != "early"));
    assert!(index.keys.iter().any(|e| e.id == "late"));
}

#[test]
fn touches_are_due_once_per_interval() {
    assert!(touch_due(None, T0, 60));
    let last = Some(T0);
    assert!(!touch_due(last, T0 + 59, 60));
    assert!(touch_due(last, T0 + 60, 60));
    // A replica whose clock is behind does not write.
    assert!(!touch_due(last, T0 - 5, 60));
}

#[test]
fn records_are_kept_as_long_as_they_can_answer() {
    assert_eq!(record_ttl(&record(None), T0, RETAIN), MAX_TTL);
    assert_eq!(
        record_ttl(&record(Some(T0 + 100)), T0, RETAIN),
        Duration::from_secs(100 + RETAIN)
    );
    let mut revoked = record(None);
    revoked.revoked_at = Some(T0);
    assert_eq!(
        record_ttl(&revoked, T0 + 10, RETAIN),
        Duration::from_secs(RETAIN - 10)
    );
    assert_eq!(
        record_ttl(&revoked, T0 + 2 * RETAIN, RETAIN),
        Duration::from_secs(1)
    );
}

#[test]
fn specs_are_checked_field_by_field() {
    let ok = KeySpec::named("ci")
        .scope("repo:read")
        .metadata("team", "infra");
    assert!(ok.validate("alice").is_ok());
    let cases: Vec<(KeySpec, &str)> = vec![
        (KeySpec::named("ci"), ""),
        (KeySpec::named("a\nb"), "alice"),
        (KeySpec::named("x".repeat(MAX_NAME_LEN + 1)), "alice"),
        (KeySpec::named("ci").scope(""), "alice"),
        (KeySpec::named("ci").scope("has space"), "alice"),
        (KeySpec::named("ci").metadata("", "v"), "alice"),
        (KeySpec::named("ci").metadata("k", "v\u{7}"), "alice"),
        (
            KeySpec::named("ci").expires_in(Duration::from_millis(500)),
            "alice",
        ),
    ];
    for (spec, owner) in cases {
        assert!(
            matches!(spec.validate(owner), Err(ApiKeyError::BadSpec(_))),
            "{spec:?} for {owner:?}"
        );
    }
    let many = (0..=MAX_SCOPES).fold(KeySpec::named("ci"), |s, i| s.scope(format!("s{i}")));
    assert!(many.validate("alice").is_err());
    // A repeated scope is kept once.
    assert_eq!(KeySpec::named("ci").scope("a").scope("a").scopes.len(), 1);
}

// ---- The model. ----

#[derive(Debug, Clone)]
enum Step {
    Create { expires_in: Option<u64> },
    Roll { key: usize, overlap: u64 },
    Revoke { key: usize },
    Disable { key: usize },
    Enable { key: usize },
    Verify { key: usize, secret: usize },
    Wait { secs: u64 },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => prop::option::of(1..60u64).prop_map(|expires_in| Step::Create { expires_in }),
        2 => (0..4usize, 0..30u64).prop_map(|(key, overlap)| Step::Roll { key, overlap }),
        1 => (0..4usize).prop_map(|key| Step::Revoke { key }),
        1 => (0..4usize).prop_map(|key| Step::Disable { key }),
        1 => (0..4usize).prop_map(|key| Step::Enable { key }),
        6 => (0..4usize, 0..4usize).prop_map(|(key, secret)| Step::Verify { key, secret }),
        3 => (0..20u64).prop_map(|secs| Step::Wait { secs }),
    ]
}

/// What the model knows of one key.
struct ModelKey {
    id: String,
    /// Every secret ever issued for it, oldest first.
    secrets: Vec<String>,
    expires_at: Option<u64>,
    revoked: bool,
    enabled: bool,
    /// The previous secret's position in `secrets` and its end.
    previous: Option<(usize, u64)>,
}

impl ModelKey {
    /// The model's verdict for `secrets[i]` at `now`.
    fn verdict(&self, i: usize, now: u64) -> Result<(), ApiKeyError> {
        let current = i + 1 == self.secrets.len();
        let previous = self.previous.filter(|(p, _)| *p == i);
        if !current && previous.is_none() {
            return Err(ApiKeyError::Unknown);
        }
        if self.revoked {
            return Err(ApiKeyError::Revoked);
        }
        if self.expires_at.is_some_and(|e| now >= e) {
            return Err(ApiKeyError::Expired);
        }
        if let (false, Some((_, until))) = (current, previous)
            && now >= until
        {
            return Err(ApiKeyError::Expired);
        }
        if !self.enabled {
            return Err(ApiKeyError::Disabled);
        }
        Ok(())
    }
}

fn service(clock: &ManualClock, store: Arc<dyn Store>, policy: ApiKeyPolicy) -> Keyward {
    Keyward::builder()
        .keys(KeyRing::generate(JwtAlg::HS256).unwrap())
        .shared_store(store)
        .clock(Arc::new(clock.clone()))
        .api_key_policy(policy)
        .build_partial()
        .unwrap()
}

fn refusal<T: fmt::Debug>(r: Result<T, Error>) -> ApiKeyError {
    match r {
        Err(Error::ApiKey(e)) => e,
        other => panic!("expected an API key refusal, got {other:?}"),
    }
}

async fn run_model(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let clock = ManualClock::new(T0);
    let kw = service(
        &clock,
        Arc::new(MemoryStore::new()),
        ApiKeyPolicy::default(),
    );
    let keys = kw.api_keys().unwrap();
    let mut model: Vec<ModelKey> = Vec::new();
    for step in steps {
        let now = clock.now();
        match step {
            Step::Create { expires_in } => {
                let mut spec = KeySpec::named("k");
                if let Some(secs) = expires_in {
                    spec = spec.expires_in(Duration::from_secs(secs));
                }
                let made = keys.create("alice", spec).await.unwrap();
                prop_assert_eq!(made.view().expires_at, expires_in.map(|s| now + s));
                model.push(ModelKey {
                    id: made.id().to_owned(),
                    secrets: vec![made.key().unprotected_as_str().to_owned()],
                    expires_at: expires_in.map(|s| now + s),
                    revoked: false,
                    enabled: true,
                    previous: None,
                });
            }
            Step::Roll { key, overlap } => {
                let Some(k) = model.get_mut(key) else {
                    continue;
                };
                let got = keys.roll(&k.id, Duration::from_secs(overlap)).await;
                let want = if k.revoked {
                    Err(ApiKeyError::Revoked)
                } else if k.expires_at.is_some_and(|e| now >= e) {
                    Err(ApiKeyError::Expired)
                } else {
                    Ok(())
                };
                match (got, want) {
                    (Ok(rolled), Ok(())) => {
                        let until = k.expires_at.map_or(now + overlap, |e| e.min(now + overlap));
                        prop_assert_eq!(rolled.previous_valid_until(), until);
                        prop_assert_eq!(rolled.id(), k.id.as_str());
                        k.previous = Some((k.secrets.len() - 1, until));
                        k.secrets.push(rolled.key().unprotected_as_str().to_owned());
                    }
                    (got, want) => prop_assert_eq!(refusal(got), want.unwrap_err()),
                }
            }
            Step::Revoke { key } => {
                let Some(k) = model.get_mut(key) else {
                    continue;
                };
                keys.revoke(&k.id).await.unwrap();
                k.revoked = true;
            }
            Step::Disable { key } | Step::Enable { key } => {
                let enable = matches!(step, Step::Enable { .. });
                let Some(k) = model.get_mut(key) else {
                    continue;
                };
                let got = keys.set_enabled(&k.id, enable).await;
                if k.revoked {
                    prop_assert_eq!(refusal(got), ApiKeyError::Revoked);
                } else {
                    got.unwrap();
                    k.enabled = enable;
                }
            }
            Step::Verify { key, secret } => {
                let Some(k) = model.get(key) else { continue };
                let Some(presented) = k.secrets.get(secret) else {
                    continue;
                };
                let got = keys.verify(presented).await;
                match (got, k.verdict(secret, now)) {
                    (Ok(proof), Ok(())) => {
                        prop_assert_eq!(proof.id(), k.id.as_str());
                        prop_assert_eq!(proof.owner(), "alice");
                    }
                    (got, want) => prop_assert_eq!(refusal(got), want.unwrap_err()),
                }
            }
            Step::Wait { secs } => clock.advance(secs),
        }
        // Invariants, over every secret of every key, at this moment.
        let now = clock.now();
        for k in &model {
            let mut live = 0;
            for (i, s) in k.secrets.iter().enumerate() {
                if keys.verify(s).await.is_ok() {
                    live += 1;
                    prop_assert!(i + 2 >= k.secrets.len(), "a secret two rolls old verified");
                    prop_assert!(
                        k.expires_at.is_none_or(|e| now < e),
                        "a secret outlived expires_at"
                    );
                }
            }
            prop_assert!(live <= 2, "more than one old secret is live");
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn keys_behave_as_the_model_says(steps in prop::collection::vec(step(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(run_model(steps))?;
    }
}

// ---- The service. ----

fn counted(clock: &ManualClock) -> (Keyward, Arc<CountingStore>) {
    let store = Arc::new(CountingStore::new(Arc::new(MemoryStore::new())));
    let kw = service(
        clock,
        Arc::clone(&store) as Arc<dyn Store>,
        ApiKeyPolicy::default(),
    );
    (kw, store)
}

#[tokio::test]
async fn each_operation_costs_one_load_and_one_commit() {
    let clock = ManualClock::new(T0);
    let (kw, store) = counted(&clock);
    let keys = kw.api_keys().unwrap();
    let made = keys.create("alice", KeySpec::named("ci")).await.unwrap();
    let one_each = crate::store::testing::Counts {
        loads: 0,
        load_manys: 1,
        commits: 1,
    };
    assert_eq!(store.take(), one_each, "create");
    let rolled = keys.roll(made.id(), Duration::from_secs(5)).await.unwrap();
    assert_eq!(store.take(), one_each, "roll");
    keys.revoke(made.id()).await.unwrap();
    assert_eq!(store.take(), one_each, "revoke");
    // A malformed key costs no store access at all.
    let mut typo = rolled.key().unprotected_as_str().to_owned();
    let last = typo.pop().unwrap();
    typo.push(if last == 'x' { 'y' } else { 'x' });
    assert!(matches!(keys.verify(&typo).await, Err(Error::Token(_))));
    // So does one of any length, too short to hold an id or longer.
    let key = rolled.key().unprotected_as_str();
    for end in 0..key.len() {
        let cut = key.get(..end).unwrap();
        assert!(
            matches!(keys.verify(cut).await, Err(Error::Token(_))),
            "{end}"
        );
    }
    let longer = format!("{key}0");
    assert!(matches!(keys.verify(&longer).await, Err(Error::Token(_))));
    assert_eq!(store.take().round_trips(), 0);
}

#[tokio::test]
async fn ten_thousand_verifies_in_a_minute_write_last_used_once() {
    let clock = ManualClock::new(T0);
    let (kw, store) = counted(&clock);
    let keys = kw.api_keys().unwrap();
    let made = keys.create("alice", KeySpec::named("ci")).await.unwrap();
    let presented = made.key().unprotected_as_str();
    let _ = store.take();
    for i in 0..10_000u64 {
        // 10,000 verifies spread over 59 seconds.
        clock.set(T0 + i * 59 / 10_000);
        let _ = keys.verify(presented).await.unwrap();
    }
    let counts = store.take();
    assert_eq!(counts.load_manys, 10_000, "one load per verify");
    assert_eq!(counts.commits, 1, "one touch in the minute");
    assert_eq!(keys.get(made.id()).await.unwrap().last_used_at, Some(T0));
    // The next interval writes once more.
    clock.set(T0 + 60);
    let _ = keys.verify(presented).await.unwrap();
    let _ = keys.verify(presented).await.unwrap();
    assert_eq!(store.take().commits, 1);
    assert_eq!(
        keys.get(made.id()).await.unwrap().last_used_at,
        Some(T0 + 60)
    );
}

#[tokio::test]
async fn a_failed_touch_does_not_fail_the_verify() {
    use crate::store::testing::FaultyStore;
    let clock = ManualClock::new(T0);
    let faulty = Arc::new(FaultyStore::new(Arc::new(MemoryStore::new())));
    let kw = service(
        &clock,
        Arc::clone(&faulty) as Arc<dyn Store>,
        ApiKeyPolicy::default(),
    );
    let keys = kw.api_keys().unwrap();
    let made = keys.create("alice", KeySpec::named("ci")).await.unwrap();
    faulty.fail_commits(true);
    let _ = keys.verify(made.key().unprotected_as_str()).await.unwrap();
    // A failed load fails closed.
    faulty.fail_loads(true);
    assert!(matches!(
        keys.verify(made.key().unprotected_as_str()).await,
        Err(Error::Store(_))
    ));
}

#[tokio::test]
async fn the_cap_is_exact_once_revoked_keys_are_looked_at() {
    let clock = ManualClock::new(T0);
    let policy = ApiKeyPolicy {
        max_keys_per_owner: 3,
        ..ApiKeyPolicy::default()
    };
    let kw = service(&clock, Arc::new(MemoryStore::new()), policy);
    let keys = kw.api_keys().unwrap();
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(
            keys.create("alice", KeySpec::named("k"))
                .await
                .unwrap()
                .id()
                .to_owned(),
        );
    }
    assert_eq!(
        refusal(keys.create("alice", KeySpec::named("k")).await),
        ApiKeyError::TooManyKeys { max: 3 }
    );
    // Another owner is not affected.
    keys.create("bob", KeySpec::named("k")).await.unwrap();
    keys.revoke(&ids[1]).await.unwrap();
    let fourth = keys.create("alice", KeySpec::named("k")).await.unwrap();
    let listed: Vec<String> = keys
        .list("alice")
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.id)
        .collect();
    assert_eq!(listed.len(), 3);
    assert!(!listed.contains(&ids[1]), "revoked keys are not listed");
    assert!(listed.contains(&fourth.id().to_owned()));
    // An expired key stops counting at its expiry, and is still listed.
    let short = keys
        .create(
            "carol",
            KeySpec::named("short").expires_in(Duration::from_secs(10)),
        )
        .await
        .unwrap();
    for _ in 0..2 {
        keys.create("carol", KeySpec::named("k")).await.unwrap();
    }
    assert!(keys.create("carol", KeySpec::named("k")).await.is_err());
    clock.advance(10);
    keys.create("carol", KeySpec::named("k")).await.unwrap();
    assert!(
        keys.list("carol")
            .await
            .unwrap()
            .iter()
            .any(|v| v.id == short.id())
    );
}

#[tokio::test]
async fn lists_are_newest_first_and_hold_no_secret() {
    let clock = ManualClock::new(T0);
    let kw = service(
        &clock,
        Arc::new(MemoryStore::new()),
        ApiKeyPolicy::default(),
    );
    let keys = kw.api_keys().unwrap();
    let first = keys.create("alice", KeySpec::named("first")).await.unwrap();
    clock.advance(1);
    let second = keys
        .create(
            "alice",
            KeySpec::named("second").scope("a").metadata("env", "prod"),
        )
        .await
        .unwrap();
    keys.disable(first.id()).await.unwrap();
    let list = keys.list("alice").await.unwrap();
    let names: Vec<&str> = list.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["second", "first"]);
    assert!(!list[1].enabled);
    let json = serde_json::to_string(&list).unwrap();
    for secret in [first.key(), second.key()] {
        let s = secret.unprotected_as_str();
        let tail = &s[s.len() - 49..];
        assert!(!json.contains(tail), "a secret in the list");
    }
    assert!(!json.contains("digest"));
    assert!(keys.list("nobody").await.unwrap().is_empty());
    assert!(format!("{first:?}").contains(first.id()));
    assert!(!format!("{first:?}").contains(first.key().unprotected_as_str()));
}

#[tokio::test]
async fn keyed_digests_verify_only_under_their_key_ring() {
    let clock = ManualClock::new(T0);
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    // One key ring, loaded twice.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyward.keys");
    KeyRing::generate(JwtAlg::HS256)
        .unwrap()
        .save_new(&path)
        .unwrap();
    let build = |ring: KeyRing, keyed: bool| {
        let b = Keyward::builder()
            .keys(ring)
            .shared_store(Arc::clone(&store))
            .clock(Arc::new(clock.clone()));
        if keyed { b.keyed_token_digests() } else { b }
            .build_partial()
            .unwrap()
    };
    let keyed = |ring: KeyRing| build(ring, true);
    let kw = keyed(KeyRing::load(&path).unwrap());
    let made = kw
        .api_keys()
        .unwrap()
        .create("alice", KeySpec::named("k"))
        .await
        .unwrap();
    let presented = made.key().unprotected_as_str();
    let _ = kw.api_keys().unwrap().verify(presented).await.unwrap();
    // The stored digest is not the plain SHA-256 of the key.
    let raw = store.load(&key_key(made.id())).await.unwrap().unwrap();
    let stored = KeyRecord::from_bytes(&raw.value).unwrap();
    assert_ne!(
        stored.digest,
        Tokens::plain().parse(presented).unwrap().digest()
    );
    // Another key ring's service does not accept it.
    let other = keyed(KeyRing::generate(JwtAlg::HS256).unwrap());
    assert_eq!(
        refusal(other.api_keys().unwrap().verify(presented).await),
        ApiKeyError::Unknown
    );
    // The record says its mode: a service with the same key ring whose new
    // keys are plain still verifies it, and rolls it in its own mode.
    let plain = build(KeyRing::load(&path).unwrap(), false);
    let plain_keys = plain.api_keys().unwrap();
    let _ = plain_keys.verify(presented).await.unwrap();
    let rolled = plain_keys.roll(made.id(), Duration::ZERO).await.unwrap();
    let _ = kw
        .api_keys()
        .unwrap()
        .verify(rolled.key().unprotected_as_str())
        .await
        .unwrap();
    let raw = store.load(&key_key(made.id())).await.unwrap().unwrap();
    let stored = KeyRecord::from_bytes(&raw.value).unwrap();
    assert!(stored.keyed, "a roll keeps the record's mode");
}

#[tokio::test]
async fn the_scope_helper_names_what_is_missing() {
    let clock = ManualClock::new(T0);
    let kw = service(
        &clock,
        Arc::new(MemoryStore::new()),
        ApiKeyPolicy::default(),
    );
    let keys = kw.api_keys().unwrap();
    let made = keys
        .create("alice", KeySpec::named("ci").scope("repo:read"))
        .await
        .unwrap();
    let proof = keys.verify(made.key().unprotected_as_str()).await.unwrap();
    proof.require_scope("repo:read").unwrap();
    assert_eq!(
        refusal(proof.require_scope("repo:write")),
        ApiKeyError::MissingScope("repo:write".into())
    );
    assert!(!proof.has_scope("repo"));
}

// ---- The record's binary form. ----

fn any_record() -> impl Strategy<Value = KeyRecord> {
    let text = "[^\u{0}-\u{1f}]{0,40}";
    (
        (
            text,
            text,
            "[a-z_]{1,20}",
            prop::collection::vec("[!-~]{1,20}", 0..5),
        ),
        prop::collection::btree_map("[a-z]{1,10}", text, 0..4),
        (
            any::<u64>(),
            prop::option::of(any::<u64>()),
            prop::option::of(any::<u64>()),
        ),
        (
            any::<bool>(),
            any::<bool>(),
            any::<[u8; 32]>(),
            prop::option::of(any::<[u8; 16]>()),
        ),
        prop::option::of((any::<[u8; 32]>(), any::<u64>())),
        prop::option::of(any::<u64>()),
    )
        .prop_map(
            |(
                (owner, name, prefix, scopes),
                metadata,
                (created_at, expires_at, revoked_at),
                (enabled, keyed, d, audit_tag),
                previous,
                last_used_at,
            )| KeyRecord {
                owner,
                name,
                prefix,
                scopes,
                metadata,
                created_at,
                expires_at,
                enabled,
                revoked_at,
                keyed,
                digest: TokenDigest::from_bytes(d),
                previous: previous.map(|(p, until)| Previous {
                    digest: TokenDigest::from_bytes(p),
                    until,
                }),
                last_used_at,
                audit_tag: audit_tag.map(crate::audit::AuditTag::from_bytes),
            },
        )
}

proptest! {
    /// Every record round-trips, its view agrees with it, and every
    /// truncation or extension of its bytes is refused.
    #[test]
    fn the_binary_form_round_trips(r in any_record()) {
        let bytes = r.to_bytes().unwrap();
        prop_assert_eq!(bytes.first(), Some(&2u8));
        prop_assert_eq!(&KeyRecord::from_bytes(&bytes).unwrap(), &r);
        let view = KeyView::of(&bytes).unwrap();
        prop_assert_eq!(view.status, r.status());
        prop_assert_eq!(view.last_used_at, r.last_used_at);
        prop_assert_eq!((&bytes[view.owner.clone()], &bytes[view.name.clone()]), (r.owner.as_bytes(), r.name.as_bytes()));
        prop_assert_eq!(scope_slices(&bytes[view.scopes.clone()]).collect::<Vec<_>>(), r.scopes.iter().map(String::as_bytes).collect::<Vec<_>>());
        let proof = ApiKeyVerified::of_record(b"AAAAAAAAAAAA", bytes.clone(), &view, Matched::Current).unwrap();
        prop_assert_eq!((proof.id(), proof.owner(), proof.name()), ("AAAAAAAAAAAA", r.owner.as_str(), r.name.as_str()));
        prop_assert_eq!(proof.scopes().collect::<Vec<_>>(), r.scopes.iter().map(String::as_str).collect::<Vec<_>>());
        prop_assert_eq!(proof.expires_at(), r.expires_at);
        prop_assert_eq!(proof.rolled_until(), None);
        if let Some(p) = &r.previous {
            let rolled = ApiKeyVerified::of_record(b"AAAAAAAAAAAA", bytes.clone(), &view, Matched::Previous(p.until)).unwrap();
            prop_assert_eq!((rolled.expires_at(), rolled.rolled_until()), (r.expires_at, Some(p.until)));
        }
        // The proof keeps the strings, never a digest.
        prop_assert!(!proof.record.windows(32).any(|w| w == r.digest.as_bytes()));
        if let Some(p) = &r.previous {
            prop_assert!(!proof.record.windows(32).any(|w| w == p.digest.as_bytes()));
        }
        prop_assert_eq!(view.keyed, r.keyed);
        // A byte that is not UTF-8 in the owner, the name or a scope makes
        // no proof.
        let first_scope = view.scopes.start.checked_add(1).filter(|_| !r.scopes.is_empty());
        for at in [Some(view.owner.start).filter(|_| !r.owner.is_empty()), Some(view.name.start).filter(|_| !r.name.is_empty()), first_scope].into_iter().flatten() {
            let mut bad = bytes.clone();
            bad[at] = 0xff;
            let view = KeyView::of(&bad).unwrap();
            prop_assert!(ApiKeyVerified::of_record(b"AAAAAAAAAAAA", bad.clone(), &view, Matched::Current).is_err(), "0xff at {}", at);
        }
        for end in 1..bytes.len() {
            prop_assert!(KeyRecord::from_bytes(&bytes[..end]).is_err(), "cut at {}", end);
        }
        let mut longer = bytes.clone();
        longer.push(0);
        prop_assert!(KeyRecord::from_bytes(&longer).is_err());
        // The JSON form reads too, and has no view.
        let json = crate::store::encode(&r).unwrap();
        prop_assert_eq!(&KeyRecord::from_bytes(&json).unwrap(), &r);
        prop_assert!(KeyView::of(&json).is_none());
    }
}

#[tokio::test]
async fn a_record_in_the_json_form_still_verifies() {
    let clock = ManualClock::new(T0);
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let kw = service(&clock, Arc::clone(&store), ApiKeyPolicy::default());
    let keys = kw.api_keys().unwrap();
    let made = keys
        .create("alice", KeySpec::named("ci").scope("a"))
        .await
        .unwrap();
    let rk = key_key(made.id());
    let raw = store.load(&rk).await.unwrap().unwrap();
    let json = crate::store::encode(&KeyRecord::from_bytes(&raw.value).unwrap()).unwrap();
    let _ = store
        .swap(&rk, Some(raw.version), &json, MAX_TTL)
        .await
        .unwrap();
    let proof = keys.verify(made.key().unprotected_as_str()).await.unwrap();
    assert_eq!((proof.owner(), proof.name()), ("alice", "ci"));
    assert_eq!(proof.scopes().collect::<Vec<_>>(), ["a"]);
    // The touch rewrote it in the binary form.
    let raw = store.load(&rk).await.unwrap().unwrap();
    assert_eq!(raw.value.first(), Some(&2));
}
