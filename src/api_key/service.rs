//! The service: each operation is one transaction on the store.

use std::future::Future;
use std::pin::Pin;

use super::*;
use crate::token::ID_LEN;

/// The API-key service. Reached through
/// [`Keyward::api_keys`](crate::Keyward::api_keys). Cheap to clone.
#[derive(Clone)]
pub struct ApiKeys {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    /// Plain SHA-256 digests.
    plain: Tokens,
    /// HMAC-SHA256 digests under the key ring's token key.
    keyed: Tokens,
    /// Whether new keys get keyed digests. A record says which its digest
    /// is, so a verify matches keys made in either mode.
    keyed_default: bool,
    tag_key: SecretBytes,
    policy: ApiKeyPolicy,
    audit: Audit,
}

impl fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeys")
            .field("store", &self.inner.store)
            .field("keyed_digests", &self.inner.keyed_default)
            .field("policy", &self.inner.policy)
            .finish_non_exhaustive()
    }
}

/// A `last_used_at` write a verify found due: the record's new bytes, to
/// write over the version loaded.
struct Touch {
    version: u64,
    value: Vec<u8>,
    ttl: Duration,
}

/// A refused verify's event, for a refusal by the rule; the error to
/// return.
#[cold]
fn refused(name: &KeyName, e: Error) -> Error {
    match e {
        Error::ApiKey(e) => {
            let id = std::str::from_utf8(key_id(name)).unwrap_or_default();
            tracing::info!(target: audit::TARGET, event = "key.refused", key_id = %id, reason = e.reason(), "api key refused");
            e.into()
        }
        e => e,
    }
}

/// A verify's failure, as its answer.
#[cold]
#[inline(never)]
fn failed(e: Error) -> Result<ApiKeyVerified, Error> {
    Err(e)
}

/// A record in the JSON form, read in full, in the binary form, and its
/// view.
#[cold]
fn in_binary_form(value: &[u8]) -> Result<(Vec<u8>, KeyView), Error> {
    let value = KeyRecord::from_bytes(value)?.to_bytes()?;
    let view = KeyView::of(&value).ok_or(ApiKeyError::Unknown)?;
    Ok((value, view))
}

/// The `last_used_at` write of a verify at `now`: the record loaded at
/// `version`, with `last_used_at` set.
#[cold]
fn touch_of(version: u64, value: &[u8], now: u64, retention: u64) -> Result<Box<Touch>, Error> {
    let mut r = KeyRecord::from_bytes(value)?;
    r.last_used_at = Some(now);
    Ok(Box::new(Touch {
        version,
        ttl: record_ttl(&r, now, retention),
        value: r.to_bytes()?,
    }))
}

/// Key records deleted per commit of an erasure: the commit's other
/// operation is the owner's index.
const KEYS_PER_COMMIT: usize = crate::store::MAX_COMMIT_OPS.saturating_sub(1);

/// The store key of a key's record, on the stack: a verify allocates
/// only for the load and its answer.
type KeyName = [u8; KEY_KEY_PREFIX.len() + ID_LEN];

/// The [`KeyName`] for the id where a well-formed key holds it: the
/// [`ID_LEN`] characters before its `_`, secret and checksum (a token
/// parses from the right). Unchecked, with zeros for a key too short:
/// the key's parse checks it.
fn key_name(presented: &str) -> KeyName {
    let mut name = [0u8; KEY_KEY_PREFIX.len() + ID_LEN];
    let (head, tail) = name.split_at_mut(KEY_KEY_PREFIX.len());
    head.copy_from_slice(KEY_KEY_PREFIX.as_bytes());
    let end = presented
        .len()
        .saturating_sub(1 + crate::token::SECRET_LEN + crate::token::CHECKSUM_LEN);
    let id = end
        .checked_sub(ID_LEN)
        .and_then(|start| presented.as_bytes().get(start..end));
    if let Some(id) = id.filter(|id| id.len() == tail.len()) {
        tail.copy_from_slice(id);
    }
    name
}

/// A [`KeyName`] as the store key.
#[inline]
fn record_key(name: &KeyName) -> Result<&str, Error> {
    Ok(std::str::from_utf8(name).map_err(|_| ApiKeyError::Unknown)?)
}

/// The key id in a [`KeyName`].
fn key_id(name: &KeyName) -> &[u8; ID_LEN] {
    name.last_chunk().unwrap_or(&[0; ID_LEN])
}

/// The store key of a key's record.
pub(crate) fn key_key(id: &str) -> String {
    format!("{KEY_KEY_PREFIX}{id}")
}

/// What a key's record key starts with.
const KEY_KEY_PREFIX: &str = "kw:ak:";

/// The store key of an owner's index.
fn owner_key(tag: &[u8; 16]) -> String {
    format!("kw:ako:{}", hex(tag))
}

impl ApiKeys {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        keys: &KeyRing,
        keyed_default: bool,
        policy: ApiKeyPolicy,
    ) -> Result<Self, Error> {
        policy.validate()?;
        Ok(Self {
            inner: Arc::new(Inner {
                store,
                clock,
                plain: Tokens::plain(),
                keyed: Tokens::keyed(keys),
                keyed_default,
                tag_key: keys.derive(crate::keyring::API_KEY_LABEL),
                policy,
                audit: Audit::new(keys),
            }),
        })
    }

    fn tokens(&self, keyed: bool) -> &Tokens {
        if keyed {
            &self.inner.keyed
        } else {
            &self.inner.plain
        }
    }

    /// The policy in force.
    #[must_use]
    pub fn policy(&self) -> &ApiKeyPolicy {
        &self.inner.policy
    }

    /// Creates a key for `owner`. The answer holds the key, to show once:
    /// keyward keeps only its digest. The key's record and the owner's
    /// index are written in one commit.
    ///
    /// # Errors
    /// [`ApiKeyError::BadSpec`] for an invalid owner or spec (the message
    /// names the field), [`ApiKeyError::TooManyKeys`] when the owner holds
    /// [`max_keys_per_owner`](ApiKeyPolicy::max_keys_per_owner) live keys,
    /// [`Error::Token`] for a bad prefix, [`Error::Store`] (nothing is
    /// created), [`Error::Busy`], [`Error::Rng`].
    pub async fn create(&self, owner: &str, spec: KeySpec) -> Result<CreatedKey, Error> {
        spec.validate(owner)?;
        let keyed = self.inner.keyed_default;
        let new = self.tokens(keyed).generate(&spec.prefix)?;
        let id = new.id().to_owned();
        let index_key = owner_key(&self.owner_tag(owner));
        let record_key = key_key(&id);
        let salt_key = self.inner.audit.salt_key(owner);
        let policy = &self.inner.policy;
        let (max, retention) = (policy.max_keys_per_owner, policy.retention_secs);
        let expires_in = spec.expires_in.map(|d| d.as_secs());
        let record = |now: u64, audit_tag: AuditTag| -> Result<KeyRecord, Error> {
            let expires_at = match expires_in {
                None => None,
                Some(secs) => {
                    let at = now.saturating_add(secs);
                    let kept = Duration::from_secs(secs.saturating_add(retention));
                    if kept > MAX_TTL {
                        return Err(ApiKeyError::BadSpec("expires_in is too far ahead").into());
                    }
                    Some(at)
                }
            };
            Ok(KeyRecord {
                owner: owner.to_owned(),
                name: spec.name.clone(),
                prefix: spec.prefix.clone(),
                scopes: spec.scopes.clone(),
                metadata: spec.metadata.clone(),
                created_at: now,
                expires_at,
                enabled: true,
                revoked_at: None,
                keyed,
                digest: new.digest(),
                previous: None,
                last_used_at: None,
                audit_tag: Some(audit_tag),
            })
        };
        let collision = || Error::from(StoreError::Corrupt("api key id collision"));
        // First by the index alone: one load, one commit. Only an owner at
        // the cap by the index costs a second look, at the listed records.
        let mut created = None;
        let mut listed: Option<Vec<String>> = None;
        for _ in 0..policy.max_retries {
            let outcome = match listed.take() {
                None => {
                    self.transact_many(
                        &[&index_key, &record_key, &salt_key],
                        |(index, existing, salt, _): Records, now| {
                            if existing.is_some() {
                                return Err(collision());
                            }
                            if index.as_ref().is_some_and(|i| i.erasing) {
                                return Err(Error::Erasing);
                            }
                            let salt = Salt::for_issuance(salt, now)?;
                            let r = record(now, salt.0.tag(owner)?)?;
                            let entry = IndexEntry {
                                id: id.clone(),
                                expires_at: r.expires_at,
                                revoked_until: None,
                            };
                            match decide_create(index, entry, max, retention, now)? {
                                Room::AskRecords(ids) => Ok(Decision::only(Err(ids))),
                                Room::Yes(index) => {
                                    let ttl = record_ttl(&r, now, retention);
                                    let d = Decision::only(Ok(r.clone()))
                                        .write(0, &index, MAX_TTL)?
                                        .write(1, &r, ttl)?;
                                    Ok(with_salt(d, salt)?)
                                }
                            }
                        },
                    )
                    .await?
                }
                Some(ids) => {
                    let mut keys = vec![index_key.clone(), record_key.clone(), salt_key.clone()];
                    keys.extend(ids.iter().map(|id| key_key(id)));
                    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                    self.transact_many(&keys, |(index, existing, salt, records): Records, now| {
                        if existing.is_some() {
                            return Err(collision());
                        }
                        if index.as_ref().is_some_and(|i| i.erasing) {
                            return Err(Error::Erasing);
                        }
                        let same = index.as_ref().is_some_and(|i| {
                            i.keys.len() == ids.len()
                                && i.keys.iter().zip(&ids).all(|(e, id)| e.id == *id)
                        });
                        if !same {
                            // The index changed since it was read: read again.
                            return Ok(Decision::only(Err(Vec::new())));
                        }
                        let salt = Salt::for_issuance(salt, now)?;
                        let r = record(now, salt.0.tag(owner)?)?;
                        let entry = IndexEntry {
                            id: id.clone(),
                            expires_at: r.expires_at,
                            revoked_until: None,
                        };
                        let index =
                            decide_create_exact(index, &records, entry, max, retention, now)?;
                        let ttl = record_ttl(&r, now, retention);
                        let d = Decision::only(Ok(r.clone()))
                            .write(0, &index, MAX_TTL)?
                            .write(1, &r, ttl)?;
                        Ok(with_salt(d, salt)?)
                    })
                    .await?
                }
            };
            match outcome {
                Ok(done) => {
                    created = Some(done);
                    break;
                }
                Err(ids) if ids.is_empty() => listed = None,
                Err(ids) => listed = Some(ids),
            }
        }
        let record = created.ok_or(Error::Busy)?;
        tracing::info!(target: audit::TARGET, event = "key.created", tag = %Shown(record.audit_tag), key_id = %id, "api key created");
        Ok(CreatedKey {
            view: ApiKeyView::of(&id, &record),
            key: new.into_token(),
        })
    }

    /// Verifies a presented key: shape and checksum offline (a malformed
    /// key costs no store access), then one store round trip. Writes
    /// `last_used_at` when it is due; a failed write does not fail the
    /// verify.
    ///
    /// # Errors
    /// [`Error::Token`] for a malformed key or a bad checksum;
    /// [`Error::ApiKey`] with `Unknown`, `Revoked`, `Expired` or
    /// `Disabled`; [`Error::Store`] when the store fails (fail closed).
    pub async fn verify(&self, presented: &str) -> Result<ApiKeyVerified, Error> {
        // Only what the check needs lives across the load: a runtime moves
        // the future it is handed, so it is kept small. The record's name
        // is written before the parse, so that it has settled in memory
        // when it is read back as the store key. Every answer comes whole
        // from a call (the check, or a cold path for a failure), so that
        // the answer is moved as one block.
        let name = key_name(presented);
        let digest = match self.tokens(self.inner.keyed_default).parse(presented) {
            Ok(parsed) if parsed.id().as_bytes() == key_id(&name) => parsed.digest(),
            Ok(_) => return failed(ApiKeyError::Unknown.into()),
            Err(e) => return failed(e),
        };
        let Ok(record_key) = std::str::from_utf8(&name) else {
            return failed(ApiKeyError::Unknown.into());
        };
        let (record, now_ms) = match self.inner.store.load_one(record_key).await {
            Ok(loaded) => loaded,
            Err(e) => return failed(e.into()),
        };
        let write = {
            let mut touch = None;
            let proof = self.check(presented, &name, digest, record, now_ms, &mut touch);
            match touch {
                None => return proof,
                // Boxed, so that the rare write does not grow every
                // verify's future.
                Some(touch) => self.touch(&name, *touch, proof),
            }
        };
        write.await
    }

    /// The verify rule over the loaded record, at the store's time (the
    /// host's when the store keeps none): the proof, or the refusal (its
    /// event emitted). Sets `touch` to the `last_used_at` write when one
    /// is due, only with a proof.
    fn check(
        &self,
        presented: &str,
        name: &KeyName,
        presented_digest: TokenDigest,
        record: Option<Record>,
        now_ms: Option<u64>,
        touch: &mut Option<Box<Touch>>,
    ) -> Result<ApiKeyVerified, Error> {
        self.decide(presented, name, presented_digest, record, now_ms, touch)
            .map_err(|e| refused(name, e))
    }

    /// [`check`](Self::check) without the refusal's event.
    #[inline(always)]
    fn decide(
        &self,
        presented: &str,
        name: &KeyName,
        presented_digest: TokenDigest,
        record: Option<Record>,
        now_ms: Option<u64>,
        touch: &mut Option<Box<Touch>>,
    ) -> Result<ApiKeyVerified, Error> {
        let Some(Record { version, mut value }) = record else {
            return Err(ApiKeyError::Unknown.into());
        };
        let view = match KeyView::of(&value) {
            Some(view) => view,
            None => {
                let (binary, view) = in_binary_form(&value)?;
                value = binary;
                view
            }
        };
        // The digest in the record's mode: the one parsed, unless the key
        // was made in the other mode.
        let digest = if view.keyed == self.inner.keyed_default {
            presented_digest
        } else {
            self.tokens(view.keyed).parse(presented)?.digest()
        };
        let now = store_seconds(now_ms, &*self.inner.clock);
        let matched = check_status(Some(view.status), &digest, now)?;
        let policy = &self.inner.policy;
        let due = if touch_due(view.last_used_at, now, policy.touch_interval_secs) {
            Some(touch_of(version, &value, now, policy.retention_secs)?)
        } else {
            None
        };
        let proof = ApiKeyVerified::of_record(key_id(name), value, &view, matched)?;
        *touch = due;
        Ok(proof)
    }

    /// Writes `last_used_at` if the record is still the one loaded, and
    /// answers the proof. A conflict means another writer got there
    /// first; a failure is logged and never fails the verify.
    fn touch<'a>(
        &'a self,
        name: &'a KeyName,
        touch: Touch,
        proof: Result<ApiKeyVerified, Error>,
    ) -> Pin<Box<dyn Future<Output = Result<ApiKeyVerified, Error>> + Send + 'a>> {
        Box::pin(async move {
            let proof = proof?;
            let Touch {
                version,
                value,
                ttl,
            } = touch;
            let swapped = match record_key(name) {
                Ok(record_key) => {
                    self.inner
                        .store
                        .swap(record_key, Some(version), &value, ttl)
                        .await
                }
                Err(_) => Err(StoreError::Corrupt("api key id")),
            };
            if let Err(e) = swapped {
                tracing::warn!(key_id = %proof.id(), error = %e, "api key last_used_at not written");
            }
            Ok(proof)
        })
    }

    /// Rolls a key: a new secret under the same id, in one commit. The old
    /// secret stays valid until `min(now + overlap, expires_at)`; an
    /// overlap of zero ends it at once, and a roll during an overlap ends
    /// the older secret at once.
    ///
    /// # Errors
    /// [`ApiKeyError::BadSpec`] for an id that is not a key id; [`Error::ApiKey`]
    /// with `Unknown`, `Revoked` or `Expired`; [`Error::Store`],
    /// [`Error::Busy`], [`Error::Rng`].
    pub async fn roll(&self, id: &str, overlap: Duration) -> Result<RolledKey, Error> {
        check_id(id)?;
        let record_key = key_key(id);
        let retention = self.inner.policy.retention_secs;
        let (key, until, audit_tag) = self
            .transact_one(&record_key, |record: Option<KeyRecord>, now| {
                // The new secret's digest is in the record's mode.
                let new = match &record {
                    Some(r) => self.tokens(r.keyed).generate_for_id(&r.prefix, id)?,
                    None => return Err(ApiKeyError::Unknown.into()),
                };
                let (r, until) = decide_roll(record, new.digest(), overlap.as_secs(), now)?;
                let ttl = record_ttl(&r, now, retention);
                let tag = Shown(r.audit_tag);
                Ok(Decision::only((new.into_token(), until, tag)).write(0, &r, ttl)?)
            })
            .await?;
        tracing::info!(target: audit::TARGET, event = "key.rolled", tag = %audit_tag, key_id = %id, previous_valid_until = until, "api key rolled");
        Ok(RolledKey {
            key,
            id: id.to_owned(),
            previous_valid_until: until,
        })
    }

    /// Revokes a key, for good. Once this returns, no verify on any replica
    /// accepts it, whichever secret is presented. Revoking a revoked key
    /// succeeds and changes nothing.
    ///
    /// # Errors
    /// [`ApiKeyError::BadSpec`] for an id that is not a key id; [`Error::ApiKey`]
    /// with `Unknown`; [`Error::Store`], [`Error::Busy`].
    pub async fn revoke(&self, id: &str) -> Result<(), Error> {
        check_id(id)?;
        let record_key = key_key(id);
        let retention = self.inner.policy.retention_secs;
        let revoked = self
            .transact_one(&record_key, |record: Option<KeyRecord>, now| {
                Ok(match decide_revoke(record, now)? {
                    None => Decision::only(None),
                    Some(r) => Decision::only(Some(Shown(r.audit_tag))).write(
                        0,
                        &r,
                        record_ttl(&r, now, retention),
                    )?,
                })
            })
            .await?;
        if let Some(audit_tag) = revoked {
            tracing::info!(target: audit::TARGET, event = "key.revoked", tag = %audit_tag, key_id = %id, "api key revoked");
        }
        Ok(())
    }

    /// Disables a key: verifies answer `Disabled` until it is enabled.
    ///
    /// # Errors
    /// As [`set_enabled`](Self::set_enabled).
    pub async fn disable(&self, id: &str) -> Result<(), Error> {
        self.set_enabled(id, false).await
    }

    /// Enables a disabled key.
    ///
    /// # Errors
    /// As [`set_enabled`](Self::set_enabled).
    pub async fn enable(&self, id: &str) -> Result<(), Error> {
        self.set_enabled(id, true).await
    }

    /// Sets the `enabled` flag; setting it to its value changes nothing.
    ///
    /// # Errors
    /// [`ApiKeyError::BadSpec`] for an id that is not a key id; [`Error::ApiKey`]
    /// with `Unknown` or `Revoked`; [`Error::Store`], [`Error::Busy`].
    pub async fn set_enabled(&self, id: &str, enabled: bool) -> Result<(), Error> {
        check_id(id)?;
        let record_key = key_key(id);
        let retention = self.inner.policy.retention_secs;
        let changed = self
            .transact_one(&record_key, |record: Option<KeyRecord>, now| {
                Ok(match decide_enabled(record, enabled)? {
                    None => Decision::only(None),
                    Some(r) => Decision::only(Some(Shown(r.audit_tag))).write(
                        0,
                        &r,
                        record_ttl(&r, now, retention),
                    )?,
                })
            })
            .await?;
        if let Some(audit_tag) = changed {
            let event = if enabled {
                "key.enabled"
            } else {
                "key.disabled"
            };
            tracing::info!(target: audit::TARGET, event, tag = %audit_tag, key_id = %id, "api key enabled flag set");
        }
        Ok(())
    }

    /// One key's public view, revoked keys excepted: for a handler that
    /// checks a key belongs to its caller before rolling or revoking it.
    ///
    /// # Errors
    /// [`ApiKeyError::BadSpec`] for an id that is not a key id; [`Error::ApiKey`]
    /// with `Unknown` or `Revoked`; [`Error::Store`].
    pub async fn get(&self, id: &str) -> Result<ApiKeyView, Error> {
        check_id(id)?;
        let record_key = key_key(id);
        self.transact_one(&record_key, |record: Option<KeyRecord>, _| match record {
            None => Err(ApiKeyError::Unknown.into()),
            Some(r) if r.revoked_at.is_some() => Err(ApiKeyError::Revoked.into()),
            Some(r) => Ok(Decision::only(ApiKeyView::of(id, &r))),
        })
        .await
    }

    /// The owner's keys that are not revoked (expired ones included, until
    /// they are forgotten), newest first. Never a key, never a digest.
    ///
    /// # Errors
    /// [`ApiKeyError::BadSpec`] for an invalid owner; [`Error::Store`].
    pub async fn list(&self, owner: &str) -> Result<Vec<ApiKeyView>, Error> {
        KeySpec::default().validate(owner)?;
        let index_key = owner_key(&self.owner_tag(owner));
        let index = self
            .transact_one(&index_key, |index: Option<OwnerIndex>, _| {
                Ok(Decision::only(index.unwrap_or_default()))
            })
            .await?;
        if index.keys.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = index.keys.iter().map(|e| key_key(&e.id)).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let snapshot = self.inner.store.load_many(&keys).await?;
        let mut views = Vec::with_capacity(index.keys.len());
        for (entry, raw) in index.keys.iter().zip(&snapshot.records) {
            let Some(raw) = raw else { continue };
            let r = KeyRecord::from_bytes(&raw.value)?;
            if r.revoked_at.is_none() && r.owner == owner {
                views.push(ApiKeyView::of(&entry.id, &r));
            }
        }
        views.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(views)
    }

    fn owner_tag(&self, owner: &str) -> [u8; 16] {
        crate::mac::tag128(
            self.inner.tag_key.unprotected_as_bytes(),
            &[OWNER_DOMAIN, owner.as_bytes()],
        )
    }

    async fn transact_one<R, T, F>(&self, key: &str, mut decide: F) -> Result<T, Error>
    where
        R: Stored,
        F: FnMut(Option<R>, u64) -> Result<Decision<T>, Error>,
    {
        transact(
            &*self.inner.store,
            &*self.inner.clock,
            &[key],
            self.inner.policy.max_retries,
            |(record,): (Option<R>,), now| decide(record, now),
        )
        .await
    }

    /// Deletes every key of the owner that its index lists, a commit at
    /// a time. The first commit marks the index and deletes the first
    /// keys: from then on no key is created for the owner, until
    /// [`erase_end`](Self::erase_end). The number of key records deleted.
    pub(crate) async fn erase_keys(&self, owner: &str) -> Result<u64, Error> {
        let index_key = owner_key(&self.owner_tag(owner));
        let mut deleted = 0u64;
        loop {
            // The ids of the next commit's batch.
            let batch = self
                .transact_many(&[&index_key], |(index,): (Option<OwnerIndex>,), _now| {
                    let batch: Vec<String> = index
                        .iter()
                        .flat_map(|i| &i.keys)
                        .take(KEYS_PER_COMMIT)
                        .map(|e| e.id.clone())
                        .collect();
                    Ok(Decision::only(batch))
                })
                .await?;
            if batch.is_empty() {
                // No key listed: the mark alone, so that none is created.
                self.transact_many(&[&index_key], |(index,): (Option<OwnerIndex>,), _now| {
                    let mut index = index.unwrap_or_default();
                    if index.erasing {
                        return Ok(Decision::only(()));
                    }
                    index.erasing = true;
                    Ok(Decision::only(()).write(0, &index, MAX_TTL)?)
                })
                .await?;
                return Ok(deleted);
            }
            let mut keys = vec![index_key.clone()];
            keys.extend(batch.iter().map(|id| key_key(id)));
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            let found = self
                .transact_many(
                    &keys,
                    |(index, records): (Option<OwnerIndex>, Vec<Option<KeyRecord>>), _now| {
                        let mut index = index.unwrap_or_default();
                        index.keys.retain(|e| !batch.contains(&e.id));
                        index.erasing = true;
                        let found = records.iter().flatten().count();
                        let mut d = Decision::only(u64::try_from(found).unwrap_or(u64::MAX))
                            .write(0, &index, MAX_TTL)?;
                        for (at, record) in records.iter().enumerate() {
                            if record.is_some() {
                                d = d.delete(at.saturating_add(1));
                            }
                        }
                        Ok(d)
                    },
                )
                .await?;
            deleted = deleted.saturating_add(found);
        }
    }

    /// Deletes the owner's index, mark and all: the last of an erasure's
    /// steps for keys, once [`erase_keys`](Self::erase_keys) has emptied
    /// it.
    pub(crate) async fn erase_end(&self, owner: &str) -> Result<(), Error> {
        let index_key = owner_key(&self.owner_tag(owner));
        self.transact_many(&[&index_key], |(index,): (Option<OwnerIndex>,), _now| {
            Ok(match index {
                Some(_) => Decision::only(()).delete(0),
                None => Decision::only(()),
            })
        })
        .await
    }

    async fn transact_many<T, R, F>(&self, keys: &[&str], decide: F) -> Result<T, Error>
    where
        R: crate::store::Records,
        F: FnMut(R, u64) -> Result<Decision<T>, Error>,
    {
        transact(
            &*self.inner.store,
            &*self.inner.clock,
            keys,
            self.inner.policy.max_retries,
            decide,
        )
        .await
    }
}

/// What a create loads: the owner's index, the new key's record (absent),
/// and the records the index lists, when it asks for them.
type Records = (
    Option<OwnerIndex>,
    Option<KeyRecord>,
    Option<Salt>,
    Vec<Option<KeyRecord>>,
);

/// A create's decision with the owner's audit salt (at position 2) written
/// when new or renewed: a key is an issuance.
fn with_salt<T>(
    d: Decision<T>,
    (salt, ttl): (Salt, Option<Duration>),
) -> Result<Decision<T>, StoreError> {
    Ok(match ttl {
        Some(ttl) => d.write(2, &salt, ttl)?,
        None => d.check(2),
    })
}

fn check_id(id: &str) -> Result<(), Error> {
    if crate::token::is_token_id(id) {
        Ok(())
    } else {
        Err(ApiKeyError::BadSpec("a key id is 12 characters of a-z, A-Z and 0-9").into())
    }
}
