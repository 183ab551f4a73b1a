//! A subject's erasure, on the session side: the mark that stops every
//! session of the subject at once, the deletion of its families and list,
//! and the mark's removal, which comes last. Each step is one transaction
//! over records it reloads, so an erasure interrupted anywhere resumes
//! where it stopped.

use super::*;

/// Families deleted per commit: the commit's other operation is the list.
const FAMILIES_PER_COMMIT: usize = crate::store::MAX_COMMIT_OPS.saturating_sub(1);

impl Sessions {
    /// Marks the subject as being erased, in its record: the epoch passes
    /// every family (no refresh or strict authentication succeeds from
    /// now on) and no session starts until [`erase_end`](Self::erase_end).
    pub(crate) async fn erase_mark(&self, subject: &str) -> Result<(), Error> {
        let key = subject_key(&self.subject_tag(subject));
        transact(
            &*self.inner.store,
            &*self.inner.clock,
            &[&key],
            self.inner.policy.max_retries,
            |(record,): (Option<SubjectRecord>,), now| {
                let marked = SubjectRecord {
                    erasing: true,
                    ..decide_revoke_all(record, now)
                };
                Ok(Decision::only(()).write(0, &marked, crate::store::MAX_TTL)?)
            },
        )
        .await
    }

    /// Deletes every family the subject's list names, and the list, a
    /// commit at a time. The number of family records deleted.
    pub(crate) async fn erase_families(&self, subject: &str) -> Result<u64, Error> {
        let tag = self.subject_tag(subject);
        let list_key = list_key(&tag);
        let mut deleted = 0u64;
        loop {
            let listed = transact(
                &*self.inner.store,
                &*self.inner.clock,
                &[&list_key],
                self.inner.policy.max_retries,
                |(list,): (Option<SessionList>,), _now| Ok(Decision::only(list)),
            )
            .await?;
            let Some(listed) = listed else {
                return Ok(deleted);
            };
            let batch: Vec<String> = listed
                .sessions
                .iter()
                .take(FAMILIES_PER_COMMIT)
                .map(|e| e.id.clone())
                .collect();
            let fam_keys: Vec<String> = batch
                .iter()
                .map(|id| listed_family_key(id))
                .collect::<Result<_, _>>()?;
            let mut keys: Vec<&str> = vec![&list_key];
            keys.extend(fam_keys.iter().map(String::as_str));
            deleted = deleted.saturating_add(
                transact(
                    &*self.inner.store,
                    &*self.inner.clock,
                    &keys,
                    self.inner.policy.max_retries,
                    |(list, families): (Option<SessionList>, Vec<Option<Family>>), now| {
                        let found = families.iter().flatten().count();
                        let mut d = Decision::only(u64::try_from(found).unwrap_or(u64::MAX));
                        for (at, family) in families.iter().enumerate() {
                            if family.is_some() {
                                d = d.delete(at.saturating_add(1));
                            }
                        }
                        let mut list = list.unwrap_or_default();
                        list.sessions.retain(|e| !batch.contains(&e.id));
                        Ok(if list.sessions.is_empty() {
                            d.delete(0)
                        } else {
                            d.write(0, &list, list_ttl(&list, now))?
                        })
                    },
                )
                .await?,
            );
        }
    }

    /// Deletes the subject's record, mark and all: the erasure's last
    /// step, after every other record of the subject is gone.
    pub(crate) async fn erase_end(&self, subject: &str) -> Result<(), Error> {
        let key = subject_key(&self.subject_tag(subject));
        transact(
            &*self.inner.store,
            &*self.inner.clock,
            &[&key],
            self.inner.policy.max_retries,
            |(record,): (Option<SubjectRecord>,), _now| {
                Ok(match record {
                    Some(_) => Decision::only(()).delete(0),
                    None => Decision::only(()),
                })
            },
        )
        .await
    }
}
