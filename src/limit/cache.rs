//! The per-process deny cache.
//!
//! A denial observed the stored TAT `tat` at store time `s`, after a local
//! (monotonic) reading `i` taken before the load. The store's clock had not
//! passed `s` at `i`, so at a later local reading `x` it has not passed
//! `s + (x − i)`; and the TAT only grows. A request of `cost` is therefore
//! certainly denied while `tat + cost × emission − span > s + (x − i)`,
//! that is while `x + span − cost × emission < free_at`, with
//! `free_at = i + (tat − s)`. The cache keeps `free_at` per record and
//! answers only such certain denials; anything else goes to the store. It
//! can make a request wait for the store, never refuse one wrongly.
//!
//! Two things outside the rule can break the premise, and both are
//! documented on [`Limits`](super::Limits): a `reset` in another process
//! (this process's cache keeps denying until `free_at`), and a store on the
//! host's wall clock (memory, SQLite) that jumps forward.
//!
//! Memory is bounded: at most `cap` entries. An entry is dropped once no
//! cost can be denied by it any more; a full map is swept of such entries,
//! and when none has lapsed a new denial is simply not cached.

use std::collections::HashMap;
use std::sync::Mutex;

use super::gcra::Rule;

/// Entries held at most, per [`Limits`](super::Limits).
pub(crate) const DEFAULT_CAP: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Entry {
    rule: Rule,
    /// Local nanoseconds (monotonic) at which a request of the full burst
    /// would no longer be certainly denied.
    free_at: u64,
}

#[derive(Debug, Default)]
struct Map {
    entries: HashMap<String, Entry>,
    /// No entry lapses before this local time: a full map is not swept
    /// again until then.
    next_sweep: u64,
}

#[derive(Debug)]
pub(crate) struct DenyCache {
    map: Mutex<Map>,
    cap: usize,
}

impl DenyCache {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            map: Mutex::new(Map::default()),
            cap,
        }
    }

    /// Whether a request of `cost` on `key` under `rule` at local time
    /// `now` is certainly denied, and if so the least time until it could
    /// be allowed.
    pub(crate) fn denied(&self, key: &str, rule: Rule, cost: u32, now: u64) -> Option<u64> {
        let mut map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = *map.entries.get(key)?;
        if entry.rule != rule || now >= entry.free_at {
            // Another definition under the same name, or lapsed.
            map.entries.remove(key);
            return None;
        }
        let reach = now.saturating_add(rule.span_ns().saturating_sub(rule.cost_ns(cost)));
        (reach < entry.free_at).then(|| entry.free_at.saturating_sub(reach))
    }

    /// Records a denial: the TAT `tat` seen at store time `store_now`, for a
    /// load that began at local time `began` (all in nanoseconds).
    pub(crate) fn deny(&self, key: &str, rule: Rule, tat: u64, store_now: u64, began: u64) {
        let free_at = began.saturating_add(tat.saturating_sub(store_now));
        let mut map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.entries.len() >= self.cap && !map.entries.contains_key(key) {
            if began < map.next_sweep {
                return;
            }
            map.entries.retain(|_, e| e.free_at > began);
            map.next_sweep = map.entries.values().map(|e| e.free_at).min().unwrap_or(0);
            if map.entries.len() >= self.cap {
                return;
            }
        }
        let fresh = Entry { rule, free_at };
        let entry = map.entries.entry(key.to_owned()).or_insert(fresh);
        // Two denials of one key under one rule: each bound holds, keep
        // the later one.
        if entry.rule == rule {
            entry.free_at = entry.free_at.max(free_at);
        } else {
            *entry = fresh;
        }
    }

    /// Forgets `key` (after a reset in this process).
    pub(crate) fn forget(&self, key: &str) {
        let mut map = self
            .map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entries.remove(key);
    }

    /// Entries held now.
    pub(crate) fn len(&self) -> usize {
        self.map
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entries
            .len()
    }
}
